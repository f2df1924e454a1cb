"""Likelihood pieces: Beta-Binomial against SciPy, M-step derivatives against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from comparemode.models.likelihood import (
    BetaBinomialData,
    careless_position_loglik,
    log_betabinom_pmf,
    log_betabinom_seq,
    observed_loglik,
    posterior_attentive,
    type_logliks,
)


def test_betabinom_pmf_matches_scipy():
    n = np.array([0, 1, 5, 20, 300])
    for a, b in [(0.3, 0.7), (2.0, 5.0), (1e4, 1e4)]:
        for k_frac in (0.0, 0.4, 1.0):
            k = np.floor(n * k_frac)
            np.testing.assert_allclose(log_betabinom_pmf(k, n, a, b), stats.betabinom.logpmf(k, n, a, b), rtol=1e-10, atol=1e-10)


def test_sequence_probabilities_sum_to_one():
    # sum over all 2^n sequences = sum_k C(n, k) * seq(k): a proper distribution
    n, a, b = 7, 1.3, 0.6
    k = np.arange(n + 1)
    total = np.exp(log_betabinom_pmf(k, np.full_like(k, n), a, b)).sum()
    assert total == pytest.approx(1.0, abs=1e-12)


def test_random_clicker_is_the_limit_of_a_concentrated_beta():
    f, d = np.array([3, 10]), np.array([10, 12])
    beta = careless_position_loglik(f, d, "beta", (1e7, 1e7))
    np.testing.assert_allclose(beta, careless_position_loglik(f, d, "random"), atol=1e-5)
    np.testing.assert_allclose(careless_position_loglik(f, d, "shared", 0.5), careless_position_loglik(f, d, "random"))


def _random_bb_data(rng, rows, n_max):
    n = rng.integers(0, n_max, rows).astype(float)
    k = np.floor(rng.random(rows) * (n + 1))
    w = rng.random(rows) * 3
    return k, n, w


@pytest.mark.parametrize("rows,n_max", [(300, 40), (5, 5000)])  # rising-factorial form, special-function form
def test_bb_objective_value_gradient_hessian(rows, n_max):
    rng = np.random.default_rng(rows)
    k, n, w = _random_bb_data(rng, rows, n_max)
    data = BetaBinomialData(k, n, w)
    assert data.rising == (n_max == 40)
    h = 1e-5
    for la, lb in [(0.2, -0.4), (2.5, 3.0), (-2.0, 1.0)]:
        value, grad, hess = data.objective(la, lb, derivatives=True)
        direct = float(np.dot(w, log_betabinom_seq(k, n, np.exp(la), np.exp(lb))))
        assert value == pytest.approx(direct, rel=1e-10, abs=1e-8)
        fd_grad = np.array(
            [
                (data.objective(la + h, lb) - data.objective(la - h, lb)) / (2 * h),
                (data.objective(la, lb + h) - data.objective(la, lb - h)) / (2 * h),
            ]
        )
        np.testing.assert_allclose(grad, fd_grad, rtol=1e-5, atol=1e-5)
        fd_hess = np.empty((2, 2))
        for i, (da, db) in enumerate([(h, 0.0), (0.0, h)]):
            gp = data.objective(la + da, lb + db, derivatives=True)[1]
            gm = data.objective(la - da, lb - db, derivatives=True)[1]
            fd_hess[:, i] = (gp - gm) / (2 * h)
        np.testing.assert_allclose(hess, fd_hess, rtol=1e-4, atol=1e-4)


def test_both_objective_forms_agree():
    rng = np.random.default_rng(3)
    k, n, w = _random_bb_data(rng, 50, 30)
    rising = BetaBinomialData(k, n, w)
    special = BetaBinomialData(k, n, w)
    special.rising = False
    for la, lb in [(0.0, 0.0), (1.5, -0.5)]:
        r = rising.objective(la, lb, derivatives=True)
        s = special.objective(la, lb, derivatives=True)
        assert r[0] == pytest.approx(s[0], rel=1e-11)
        np.testing.assert_allclose(r[1], s[1], rtol=1e-9)
        np.testing.assert_allclose(r[2], s[2], rtol=1e-9)


def test_posterior_is_bayes_rule_and_stable_for_huge_evidence():
    l1 = np.array([-10.0, -5000.0, 0.0])
    l0 = np.array([-12.0, -1.0, -5000.0])
    p = posterior_attentive(l1, l0, 0.3)
    expected0 = 0.3 * np.exp(-10) / (0.3 * np.exp(-10) + 0.7 * np.exp(-12))
    assert p[0] == pytest.approx(expected0, rel=1e-12)
    assert p[1] == 0.0 and p[2] == 1.0
    assert np.isfinite(observed_loglik(l1, l0, 0.3))


def test_type_logliks_ignore_ties_when_dropped():
    params = {"careless_first": (2.0, 1.0), "tie_attentive": (2.0, 8.0), "tie_careless": (1.0, 4.0)}
    n, t, f, s = np.array([10.0]), np.array([0.0]), np.array([6.0]), np.array([-5.0])
    l1m, l0m = type_logliks(n, t, f, s, params, "beta", "model")
    l1d, l0d = type_logliks(n, t, f, s, params, "beta", "drop")
    assert l1d[0] == s[0]
    assert l1m[0] == pytest.approx(s[0] + log_betabinom_seq(0, 10, 2.0, 8.0))
    assert l0m[0] - l0d[0] == pytest.approx(float(log_betabinom_seq(0, 10, 1.0, 4.0)))
