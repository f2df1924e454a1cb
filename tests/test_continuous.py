"""The continuous-quality model with the two-type model's careless sub-model (per-user
first-position rates from a Beta), fitted by maximum likelihood (issue 11)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.optimize import approx_fprime

import comparemode as cm
from comparemode.errors import ConfigError
from comparemode.inference.continuous import ContinuousQuality, _objective
from comparemode.models.alternatives import (
    _log_poly_dp,
    _scalar_terms,
    continuous_loglik,
    continuous_prob_attentive,
    continuous_terms,
    vote_types,
)
from comparemode.models.stats import EncodedVotes
from comparemode.scenarios import simulate_scenario


def _one_user(A, first):
    """Encoded decisive votes of one user: per vote the attentive probability of its pick and
    whether it picked the first-shown answer (a per-vote mu)."""
    A, first = np.asarray(A, float), np.asarray(first, bool)
    mu = np.where(first, A, 1 - A)  # P(model_a better): the pick was model_a when first
    return EncodedVotes(user=np.zeros(A.size, np.intp), code=np.where(first, 0, 1).astype(np.int8), n_users=1, mu=mu)


def _quadrature(A, first, c, d, careless):
    """The user's decisive-vote likelihood by numerical integration over theta (and rho)."""
    A, first = np.asarray(A, float), np.asarray(first, bool)

    def lik(theta, rho):
        car = np.where(first, rho, 1 - rho)
        return np.prod(theta * A + (1 - theta) * car) * stats.beta.pdf(theta, c, d)

    if careless == "random":
        return integrate.quad(lambda th: lik(th, 0.5), 0, 1, epsabs=1e-13)[0]
    a, b = careless
    return integrate.dblquad(lambda rho, th: lik(th, rho) * stats.beta.pdf(rho, a, b), 0, 1, 0, 1, epsabs=1e-12)[0]


@pytest.mark.parametrize("careless", ["beta", "random"])
def test_exact_likelihood_equals_numerical_integration(careless):
    A = [0.7, 0.3, 0.7, 0.6, 0.2]
    first = [True, False, False, True, True]
    enc = _one_user(A, first)
    vt = vote_types(enc)
    terms = continuous_terms(vt, careless)
    c, d, a, b = 1.7, 2.3, 1.4, 0.9
    params = {"quality": (c, d), "careless_first": (a, b)}
    ll = continuous_loglik(vt, terms, params, tie=False)[0]
    ref = _quadrature(A, first, c, d, (a, b) if careless == "beta" else "random")
    assert ll == pytest.approx(math.log(ref), abs=1e-6)


def test_probability_attentive_equals_numerical_integration():
    A = [0.7, 0.7, 0.3, 0.7, 0.6, 0.2, 0.7]
    first = [True, False, False, True, True, False, True]
    vt = vote_types(_one_user(A, first))
    terms = continuous_terms(vt, "beta")
    c, d, a, b = 2.0, 1.5, 1.2, 0.8
    p = continuous_prob_attentive(terms, {"quality": (c, d), "careless_first": (a, b)})[0]
    An, fn = np.asarray(A), np.asarray(first)

    def lik(rho, th):
        return np.prod(th * An + (1 - th) * np.where(fn, rho, 1 - rho)) * stats.beta.pdf(th, c, d) * stats.beta.pdf(rho, a, b)

    above = integrate.dblquad(lik, 0.5, 1, 0, 1, epsabs=1e-12)[0]
    total = integrate.dblquad(lik, 0, 1, 0, 1, epsabs=1e-12)[0]
    assert p == pytest.approx(above / total, abs=1e-6)


def test_two_model_terms_in_closed_form_equal_the_vote_by_vote_recursion():
    rng = np.random.default_rng(0)
    mu = 0.7
    A = np.array([1 - mu, mu, mu, 1 - mu])
    first = np.array([True, False, True, False])
    for _ in range(100):
        counts = rng.integers(0, 6, 4)
        Al, fl = np.repeat(A, counts), np.repeat(first, counts)
        for with_g in (True, False):
            dp = _log_poly_dp(Al, fl, with_g)
            vals, i, g = _scalar_terms(counts, A, first, with_g)
            dense = np.full(dp.shape, -np.inf)
            if with_g:
                dense[i, g] = vals
            else:
                dense[i] = vals
            assert (np.isfinite(dp) == np.isfinite(dense)).all()
            np.testing.assert_allclose(dp[np.isfinite(dp)], dense[np.isfinite(dense)], rtol=1e-12)


@pytest.mark.parametrize("careless", ["beta", "shared", "random"])
def test_gradient_matches_finite_differences(careless):
    sc = simulate_scenario("partial", 300, 2)
    from comparemode.reference import encode_rows, resolve_reference

    ref = resolve_reference(sc.votes, mu=sc.told_mu)
    enc, _ = encode_rows(sc.votes, ref)
    vt = vote_types(enc, ref.mu)
    terms = continuous_terms(vt, careless)
    x = np.array([0.3, -0.2, 0.4, 0.1][: {"beta": 4, "shared": 3, "random": 2}[careless]])
    f, g = _objective(x, vt, terms, careless)
    numeric = approx_fprime(x, lambda y: _objective(y, vt, terms, careless)[0], 1e-6)
    np.testing.assert_allclose(g, numeric, rtol=1e-4, atol=1e-3)


def test_recovers_the_continuum_and_fits_it_better_than_two_types():
    """Partial attention (theta ~ Beta(2, 2), another simulator): the quality Beta is
    recovered and the continuous model beats the two-type model by AIC; on two-type data (the
    control) the continuous model piles its quality onto 0 and 1 and loses."""
    sc = simulate_scenario("partial", 3000, 1)
    cq = ContinuousQuality().fit(sc.votes, mu=sc.told_mu)
    assert abs(cq.params_["quality_mean"] - 0.5) < 0.05
    assert 2.5 < cq.params_["quality_kappa"] < 7.0  # truth 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = cm.TwoTypeEM(checks=False).fit(sc.votes, mu=sc.told_mu)
    assert cq.aic_ < 2 * em.n_params_ - 2 * em.loglik_ - 10
    truth = sc.users["attentive"].to_numpy()
    q = cq.users_["quality"].reindex(sc.users.index)
    assert np.corrcoef(q, sc.users["theta"])[0, 1] > 0.3  # 16 votes a user say little about one user's share
    p = cq.users_["p_attentive"].reindex(sc.users.index).to_numpy()
    assert ((p >= 0) & (p <= 1)).all()

    def auc(score):
        r = stats.rankdata(score)
        return (r[truth].sum() - truth.sum() * (truth.sum() + 1) / 2) / (truth.sum() * (~truth).sum())

    assert auc(p) > auc(sc.users["p_oracle"].to_numpy()) - 0.01  # as good as the Bayes rule of the true process
    ctrl = simulate_scenario("control", 3000, 1)
    cq2 = ContinuousQuality().fit(ctrl.votes, mu=ctrl.told_mu)
    em2 = cm.TwoTypeEM(checks=False).fit(ctrl.votes, mu=ctrl.told_mu)
    assert cq2.params_["quality_kappa"] < 0.5  # U-shaped: the two-type limit
    assert 2 * em2.n_params_ - 2 * em2.loglik_ < cq2.aic_


def test_mu_estimated_by_the_profile_likelihood():
    sc = simulate_scenario("partial", 800, 3)
    given = ContinuousQuality(n_starts=1).fit(sc.votes, mu=sc.told_mu)
    free = ContinuousQuality(n_starts=1).fit(sc.votes, mu="estimate")
    assert free.loglik_ >= given.loglik_ - 1e-6  # the maximum over mu
    assert free.n_params_ == given.n_params_ + 1 and 0.5 < free.params_["mu"] < 1
    assert free.reference_["source"] == "estimated"


def test_continuous_bad_input():
    votes = simulate_scenario("partial", 60, 1).votes
    for kw, match in (
        ({"careless": "mixture"}, "careless"),
        ({"ties": "davidson"}, "ties"),
        ({"attentive_share": 1.0}, "attentive_share"),
        ({"attentive_share": "half"}, "attentive_share"),
        ({"n_starts": 0}, "n_starts"),
        ({"n_starts": 9}, "n_starts"),
    ):
        with pytest.raises(ConfigError, match=match):
            ContinuousQuality(**kw).fit(votes, mu={"alpha": 0.7})
    cq = ContinuousQuality(n_starts=1)
    from comparemode.reference import encode_rows, resolve_reference

    ref = resolve_reference(votes, mu={"alpha": 0.7})
    enc, _ = encode_rows(votes, ref)
    cq.fit_encoded(enc, mu=0.7)
    with pytest.raises(ConfigError, match="fit this model with fit"):
        cq.crossfit_p_attentive(votes)
    with pytest.raises(ConfigError, match="careless"):
        cm.BayesianAlternative("homogeneous", {"careless": "beta"})


def test_spread_mu_recovers_the_topic_concentration_and_never_lowers_the_likelihood():
    from comparemode.inference.steps import bb_kappa_step
    from comparemode.models.likelihood import BetaBinomialData

    rng = np.random.default_rng(4)
    n = rng.integers(1, 30, 400).astype(float)
    k = rng.binomial(n.astype(int), rng.beta(7, 3, 400)).astype(float)
    w = rng.random(400)
    data = BetaBinomialData(k, n, w)
    for kappa in (0.5, 5.0, 50.0, 5e4):
        new = bb_kappa_step(k, n, w, 0.7, kappa)
        before = data.objective(math.log(0.7 * kappa), math.log(0.3 * kappa))
        after = data.objective(math.log(0.7 * new), math.log(0.3 * new))
        assert after >= before - 1e-9
    sc = simulate_scenario("topic", 3000, 2)
    em = cm.TwoTypeEM(mu_spread=True, checks=False).fit(sc.votes, mu="estimate")
    assert abs(em.params_["mu"] - 0.7) < 0.03 and 8 < em.params_["mu_kappa"] < 60
    h = em.loglik_history_.to_numpy()
    assert np.all(np.diff(h) >= -1e-9 * (1 + abs(h[-1])))
    given = cm.TwoTypeEM(mu_spread=True).fit(sc.votes, mu=sc.told_mu)
    assert given.checks_.loc["favoured-model dispersion", "status"] == "passed"  # the spread is in the model now
    assert given.checks_.loc["mu", "status"] == "passed"


def test_per_user_replicates_match_the_vote_by_vote_replicates():
    """For two models the replicator draws each user's counts from the user's design; the
    same process drawn vote by vote (a per-vote mu) gives the same distribution."""
    from comparemode.models.simulate import replicate_user_counts

    rng = np.random.default_rng(0)
    n_users, per = 60, 14
    user = np.repeat(np.arange(n_users), per)
    shown_first = rng.random(user.size) < 0.5
    enc_two = EncodedVotes(user=user, code=(3 * shown_first).astype(np.int8), n_users=n_users)
    enc_row = EncodedVotes(user=user, code=np.zeros(user.size, np.int8), n_users=n_users, mu=np.where(shown_first, 0.7, 0.3))
    draws = 4000
    params = {"pi": np.full(draws, 0.6), "careless_first_mean": np.full(draws, 0.65), "careless_first_kappa": np.full(draws, 3.0),
              "tie_attentive_mean": np.full(draws, 0.2), "tie_attentive_kappa": np.full(draws, 10.0),
              "tie_careless_mean": np.full(draws, 0.25), "tie_careless_kappa": np.full(draws, 4.0)}
    a = replicate_user_counts(enc_two, params, careless="beta", ties="model", mu=0.7, rng=np.random.default_rng(1))
    b = replicate_user_counts(enc_row, params, careless="beta", ties="model", mu=None, rng=np.random.default_rng(2))
    for key in ("n_ties", "n_first"):
        ma, mb = a[key].mean(axis=0), b[key].mean(axis=0)
        va, vb = a[key].var(axis=0), b[key].var(axis=0)
        np.testing.assert_allclose(ma, mb, atol=5 * np.sqrt((va + vb) / draws).max())
        np.testing.assert_allclose(va.mean(), vb.mean(), rtol=0.05)
    # picks of the model mu is about = picks of the favoured model under a per-vote mu of 0.7 / 0.3
    np.testing.assert_allclose(a["n_stronger"].mean(axis=0), b["n_favoured"].mean(axis=0), atol=0.25)
    np.testing.assert_allclose(a["n_stronger"].var(axis=0).mean(), b["n_favoured"].var(axis=0).mean(), rtol=0.05)
