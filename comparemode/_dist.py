"""The few distribution functions the package needs, from ``scipy.special``.

``scipy.stats`` costs about half a second to import (its distribution classes), more than a
two-model fit of a million votes' counts; every ``comparemode run`` paid it for a normal tail
and a one-degree-of-freedom chi-squared quantile. These are the same functions written with
the special functions ``scipy.stats`` itself evaluates them by (tests compare the two).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, erfc, ndtr, ndtri, xlog1py, xlogy

__all__ = ["norm_sf", "norm_ppf", "norm_isf", "chi2_1_ppf", "chi2_1_sf", "beta_pdf"]


def norm_sf(z):
    """P(Z > z) for a standard normal Z."""
    return ndtr(-np.asarray(z, dtype=float))


def norm_ppf(q):
    """The standard normal quantile of ``q``."""
    return ndtri(np.asarray(q, dtype=float))


def norm_isf(q):
    """The z with P(Z > z) = ``q``."""
    return -ndtri(np.asarray(q, dtype=float))


def chi2_1_ppf(q):
    """The quantile of ``q`` of a chi-squared with one degree of freedom (the square of a
    standard normal): ``ndtri((1 + q) / 2) ** 2``."""
    return ndtri((1.0 + np.asarray(q, dtype=float)) / 2.0) ** 2


def chi2_1_sf(x):
    """P(X > x) for a chi-squared X with one degree of freedom: ``erfc(sqrt(x / 2))``."""
    x = np.asarray(x, dtype=float)
    return erfc(np.sqrt(np.maximum(x, 0.0) / 2.0))


def beta_pdf(x, a, b):
    """The Beta(a, b) density at ``x`` in [0, 1]."""
    x = np.asarray(x, dtype=float)
    return np.exp(xlogy(a - 1.0, x) + xlog1py(b - 1.0, -x) - betaln(a, b))
