"""The continuous-quality model with the two-type model's careless sub-model (per-user
first-position rates from a Beta), fitted by maximum likelihood (issue 11)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
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
    continuous_quality_mean,
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


def _beta_pdf(x: float, a: float, b: float) -> float:
    """The Beta(a, b) density at a scalar ``x``: ``scipy.stats.beta.pdf`` written out for the
    quadratures' integrands, which call it about a million times (scipy's per-call overhead
    made these tests take about a minute). Checked against scipy below."""
    if not 0.0 < x < 1.0:
        return float(stats.beta.pdf(x, a, b))
    return math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))


def test_beta_density_of_the_quadratures_is_scipys():
    xs = np.concatenate([np.linspace(0.0, 1.0, 101), [1e-12, 1 - 1e-12]])
    for a, b in ((2.0, 1.5), (1.2, 0.8), (1.7, 2.3), (1.4, 0.9), (0.5, 0.5)):
        want = stats.beta.pdf(xs, a, b)
        got = np.array([_beta_pdf(float(x), a, b) for x in xs])
        np.testing.assert_allclose(got, want, rtol=1e-12)


def _quadrature(A, first, c, d, careless):
    """The user's decisive-vote likelihood by numerical integration over theta (and rho)."""
    A, first = np.asarray(A, float), np.asarray(first, bool)

    def lik(theta, rho):
        car = np.where(first, rho, 1 - rho)
        return np.prod(theta * A + (1 - theta) * car) * _beta_pdf(theta, c, d)

    if careless == "random":
        return integrate.quad(lambda th: lik(th, 0.5), 0, 1, epsabs=1e-13)[0]
    a, b = careless
    return integrate.dblquad(lambda rho, th: lik(th, rho) * _beta_pdf(rho, a, b), 0, 1, 0, 1, epsabs=1e-12)[0]


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
        return np.prod(th * An + (1 - th) * np.where(fn, rho, 1 - rho)) * _beta_pdf(th, c, d) * _beta_pdf(rho, a, b)

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


# --------------------------------------------------------------------------- the factored likelihood (issue 16)


def _random_params(rng, careless):
    q, kappa = rng.uniform(0.05, 0.95), math.exp(rng.uniform(-3.0, 6.0))
    p = {"quality": (q * kappa, (1 - q) * kappa), "tie": (1.3, 2.0)}
    if careless == "beta":
        a, k = rng.uniform(0.05, 0.95), math.exp(rng.uniform(-3.0, 8.0))
        p["careless_first"] = (a * k, (1 - a) * k)
    elif careless == "shared":
        p["careless_first"] = rng.uniform(0.02, 0.98)
    return p


def _vote_types_of(per_vote: bool):
    from comparemode.reference import encode_rows, resolve_reference

    if per_vote:  # a per-vote mu: every user their own pattern; a few heavy users
        sim = cm.simulate_votes(n_users=40, votes_per_user=12, strengths={"a": 1.0, "b": 0.0, "c": -0.7}, random_seed=5)
        votes = sim.votes
        heavy = votes[votes["user"].isin(votes["user"].unique()[:3])]
        votes = pd.concat([votes] + [heavy] * 5, ignore_index=True)  # three users with 72 votes
    else:  # two models, four vote types
        sim = cm.simulate_votes(n_users=300, votes_per_user=14, random_seed=5)
        votes = sim.votes
    ref = resolve_reference(votes, **sim.reference)
    enc, _ = encode_rows(votes, ref)
    return vote_types(enc, ref.mu)


def _bucket_reference(terms, params, what):
    """The previous implementation of the per-pattern summaries, on the bucket layout."""
    from scipy.special import betainc, logsumexp

    from comparemode.models.alternatives import term_parts, term_values

    c, d = params["quality"]
    parts = term_parts(terms, params)
    tail = 1.0 - betainc(c + terms.pair_i, d + terms.pair_D - terms.pair_i, 0.5)
    out = np.empty(terms.n_patterns)
    for b in terms.buckets:
        vals = term_values(b, parts)
        w = np.exp(vals - logsumexp(vals, axis=-1, keepdims=True))
        out[b.rows] = np.sum(w * ((c + b.i) / (c + d + b.D[:, None]) if what == "mean" else tail[b.pair_index]), axis=-1)
    return out


@pytest.mark.parametrize("per_vote", [True, False])
@pytest.mark.parametrize("careless", ["beta", "shared", "random"])
def test_factored_likelihood_equals_the_previous_formulation(careless, per_vote):
    """The factored sum (two one-dimensional polynomials per pattern, the compiled kernel)
    gives the previous likelihood (the two-dimensional recursion, padded buckets, a Beta
    function per term) to 1e-10 at random parameter points, and so do the quality summaries."""
    vt = _vote_types_of(per_vote)
    new = continuous_terms(vt, careless)
    old = continuous_terms(vt, careless, legacy=True)
    assert new.n_terms <= sum(b.logK.size for b in old.buckets)
    finite = sum(int(np.isfinite(b.logK).sum()) for b in old.buckets)
    assert new.n_terms == finite  # every term once, no padding
    rng = np.random.default_rng(11)
    for _ in range(6):
        p = _random_params(rng, careless)
        ll_new = continuous_loglik(vt, new, p)
        ll_old = continuous_loglik(vt, old, p, method="buckets")
        np.testing.assert_allclose(ll_new, ll_old, rtol=1e-10, atol=1e-10)
        # the lazily built bucket layout (ContinuousQuality's objective) is the same sum
        np.testing.assert_allclose(continuous_loglik(vt, new, p, method="buckets"), ll_old, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(continuous_quality_mean(new, p), _bucket_reference(old, p, "mean"), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(continuous_prob_attentive(new, p), _bucket_reference(old, p, "tail"), rtol=1e-9, atol=1e-12)
    with pytest.raises(ConfigError, match="method must be one of"):
        continuous_loglik(vt, new, p, method="padded")


def test_factored_kernel_is_exact_far_from_the_maxima():
    """The kernel sums scaled products where that is safe and falls back to log space (or
    leaves out what cannot matter) elsewhere: against brute force over every (g, s) term, with
    inputs spread over thousands of nats, -inf entries, and the softmax weights."""
    from scipy.special import logsumexp

    from comparemode.models.alternatives import ContinuousTerms, factored_lse

    rng = np.random.default_rng(3)
    nf = rng.integers(0, 40, 30)
    ns = rng.integers(0, 40, 30)
    D = nf + ns
    logf = [rng.normal(0, 1, n + 1) * rng.choice([1.0, 30.0, 400.0]) + rng.choice([0.0, -3000.0]) * np.arange(n + 1) / max(n, 1)
            for n in nf]
    logs = [rng.normal(0, 1, n + 1) * rng.choice([1.0, 30.0, 400.0]) for n in ns]
    logf[0][-1] = -np.inf
    terms = ContinuousTerms(n_patterns=30, careless="shared", D=D, n_first=nf, n_second=ns, logf=np.concatenate(logf),
                            logs=np.concatenate(logs))
    um = rng.normal(0, 50, terms.off_m[-1])
    L, wf, ws, wm = factored_lse(terms, terms.logf, terms.logs, um, weights=True)
    for p in range(30):
        f, s, m = logf[p], logs[p], um[terms.off_m[p] : terms.off_m[p + 1]]
        vals = f[:, None] + s[None, :] + m[np.add.outer(np.arange(f.size), np.arange(s.size))]
        ref = logsumexp(vals)
        assert L[p] == pytest.approx(ref, rel=1e-12, abs=1e-12)
        w = np.exp(vals - ref)
        np.testing.assert_allclose(wf[terms.off_f[p] : terms.off_f[p + 1]], w.sum(axis=1), rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(ws[terms.off_s[p] : terms.off_s[p + 1]], w.sum(axis=0), rtol=1e-9, atol=1e-15)
        by_m = np.bincount(np.add.outer(np.arange(f.size), np.arange(s.size)).ravel(), weights=w.ravel(), minlength=m.size)
        np.testing.assert_allclose(wm[terms.off_m[p] : terms.off_m[p + 1]], by_m, rtol=1e-9, atol=1e-15)
    assert np.isnan(factored_lse(terms, np.where(np.arange(terms.logf.size) == 3, np.nan, terms.logf), terms.logs, um)[0])


@pytest.mark.parametrize("careless", ["beta", "shared", "random"])
def test_pymc_model_has_the_previous_log_density_and_gradient(careless):
    """The PyMC model's log density and gradient equal the previous graph's (the bucket
    formulation) to 1e-10 at random points, with the default (numba) backend and the C one,
    and its likelihood equals the NumPy one."""
    import pytensor

    from comparemode.models.alternatives import build_alternative_pymc_model
    from comparemode.models.pymc_model import check_priors

    vt = _vote_types_of(True)
    priors = check_priors({})
    new = build_alternative_pymc_model(vt, kind="continuous", careless=careless, ties="model", priors=priors,
                                       terms=continuous_terms(vt, careless))
    old = build_alternative_pymc_model(vt, kind="continuous", careless=careless, ties="model", priors=priors,
                                       terms=continuous_terms(vt, careless, legacy=True), method="buckets")
    fns = {
        "old": (old.compile_logp(), old.compile_dlogp()),
        "numba": (new.compile_logp(), new.compile_dlogp()),
        "c": (new.compile_logp(mode="FAST_RUN"), new.compile_dlogp(mode="FAST_RUN")),
    }
    rng = np.random.default_rng(7)
    start = new.initial_point()
    for _ in range(5):
        point = {k: v + rng.normal(0, 1.0) for k, v in start.items()}
        ref_lp, ref_g = fns["old"][0](point), fns["old"][1](point)
        for name in ("numba", "c"):
            assert fns[name][0](point) == pytest.approx(ref_lp, rel=1e-10), name
            np.testing.assert_allclose(fns[name][1](point), ref_g, rtol=1e-9, atol=1e-9 * (1 + np.abs(ref_g).max()))
    names = ["quality_mean", "quality_kappa"] + {"beta": ["careless_first_mean", "careless_first_kappa"], "shared": ["careless_first"],
                                                  "random": []}[careless] + ["tie_mean", "tie_kappa"]
    vals = dict(zip(names, [0.7, 1.5] + {"beta": [0.6, 3.0], "shared": [0.6], "random": []}[careless] + [0.2, 8.0]))
    fn = pytensor.function([new[n] for n in names], new["loglik"])
    from comparemode.models.alternatives import alternative_params

    expected = float(np.dot(vt.weight, continuous_loglik(vt, continuous_terms(vt, careless), alternative_params("continuous", careless, "model", vals))))
    assert float(fn(*vals.values())) == pytest.approx(expected, rel=1e-10)


def test_compiled_model_survives_a_pickle_into_a_fresh_process(tmp_path):
    """PyMC's chain processes get the compiled model by cloudpickle: the kernel's Op is found
    by name in a process that never built a model."""
    import subprocess
    import sys

    import cloudpickle

    from comparemode.models.alternatives import build_alternative_pymc_model
    from comparemode.models.pymc_model import check_priors

    vt = _vote_types_of(True)
    model = build_alternative_pymc_model(vt, kind="continuous", careless="beta", ties="model", priors=check_priors({}),
                                         terms=continuous_terms(vt, "beta"))
    f = model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    x = np.linspace(-0.5, 0.5, len(f._grad_vars))
    expected, _ = f(x)
    path = tmp_path / "f.pkl"
    path.write_bytes(cloudpickle.dumps(f))
    code = ("import pickle, sys, numpy as np; f = pickle.loads(open(sys.argv[1], 'rb').read()); "
            f"print(repr(float(f(np.linspace(-0.5, 0.5, {len(x)}))[0])))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(float(expected), rel=1e-12)
