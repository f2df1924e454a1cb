"""comparemode._dist against scipy.stats: the same values (the package avoids importing
scipy.stats on the command line's path, issue 16)."""

import numpy as np
import pytest
from scipy import stats

from comparemode import _dist


def test_normal_functions_equal_scipy_stats():
    z = np.linspace(-9, 9, 721)
    np.testing.assert_allclose(_dist.norm_sf(z), stats.norm.sf(z), rtol=1e-12, atol=0)
    q = np.concatenate([np.logspace(-15, -1, 50), np.linspace(0.05, 0.95, 91), 1 - np.logspace(-1, -12, 50)])
    np.testing.assert_allclose(_dist.norm_ppf(q), stats.norm.ppf(q), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_dist.norm_isf(q), stats.norm.isf(q), rtol=1e-12, atol=1e-14)


def test_chi2_one_degree_of_freedom_equals_scipy_stats():
    x = np.concatenate([[0.0], np.logspace(-8, 2.5, 200)])
    np.testing.assert_allclose(_dist.chi2_1_sf(x), stats.chi2.sf(x, 1), rtol=1e-10, atol=0)
    q = np.linspace(0.01, 0.999, 120)
    np.testing.assert_allclose(_dist.chi2_1_ppf(q), stats.chi2.ppf(q, 1), rtol=1e-10)


@pytest.mark.parametrize("a,b", [(0.5, 0.5), (2.0, 2.0), (14.0, 6.0), (1.0, 3.0), (0.3, 7.0)])
def test_beta_density_equals_scipy_stats(a, b):
    x = np.linspace(0.001, 0.999, 301)
    np.testing.assert_allclose(_dist.beta_pdf(x, a, b), stats.beta.pdf(x, a, b), rtol=1e-11)
