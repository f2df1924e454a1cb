"""Model checking (issue 5): alternative models, posterior predictive checks, user-level LOO,
sampler diagnostics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.stats import beta as beta_dist

from comparemode import BayesianTwoType, simulate_votes
from comparemode.errors import ConfigError
from comparemode.inference.alternatives import BayesianAlternative, HomogeneousEM
from comparemode.inference.diagnostics import diagnostics_passed, plot_energy, plot_ranks, sampler_diagnostics
from comparemode.inference.model_checks import dispersion_statistic, compare_models, posterior_predictive_check
from comparemode.models.alternatives import (
    continuous_loglik,
    continuous_quality_mean,
    continuous_terms,
    homogeneous_loglik,
    vote_types,
)
from comparemode.reference import encode_rows, resolve_reference

from conftest import assert_monotone

SAMPLER = {"draws": 400, "tune": 400, "chains": 2, "cores": 1, "random_seed": 3, "progressbar": False}


def _types(sim):
    ref = resolve_reference(sim.votes, **sim.reference)
    enc, _ = encode_rows(sim.votes, ref)
    return vote_types(enc, ref.mu), enc, ref


@pytest.fixture(scope="module")
def small_two_type():
    return simulate_votes(n_users=200, votes_per_user=10, random_seed=31)


@pytest.mark.parametrize("careless", ["shared", "random"])
@pytest.mark.parametrize("per_row", [False, True])
def test_continuous_likelihood_is_the_exact_integral(careless, per_row):
    """The expanded marginal likelihood equals numerical integration over theta_u."""
    if per_row:
        sim = simulate_votes(n_users=30, votes_per_user=8, strengths={"a": 1.0, "b": 0.0, "c": -0.7}, random_seed=2)
    else:
        sim = simulate_votes(n_users=60, votes_per_user=9, random_seed=2)
    vt, _, _ = _types(sim)
    terms = continuous_terms(vt, careless)
    c, d, rho = 1.3, 0.6, 0.72
    params = {"quality": (c, d), "careless_first": rho}
    ll = continuous_loglik(vt, terms, params, tie=False)
    r = rho if careless == "shared" else 0.5
    C = np.where(vt.first, r, 1 - r)
    for p in range(4):
        row = vt.counts[p].toarray().ravel()
        val, _ = integrate.quad(lambda th: np.prod((th * vt.A + (1 - th) * C) ** row) * beta_dist.pdf(th, c, d), 0, 1, limit=200)
        assert ll[p] == pytest.approx(np.log(val), rel=1e-7)
        mean, _ = integrate.quad(lambda th: th * np.prod((th * vt.A + (1 - th) * C) ** row) * beta_dist.pdf(th, c, d), 0, 1, limit=200)
        assert continuous_quality_mean(terms, params)[p] == pytest.approx(mean / val, rel=1e-6)


def test_homogeneous_em_is_monotone_and_recovers_its_parameters():
    sim = simulate_votes(n_users=1500, votes_per_user=15, quality=0.75, careless="shared", careless_first=0.8, random_seed=4)
    em = HomogeneousEM().fit(sim.votes, **sim.reference)
    assert_monotone(em.loglik_history_)
    assert em.converged_
    assert em.params_["theta"] == pytest.approx(0.75, abs=0.03)
    assert em.params_["careless_first"] == pytest.approx(0.8, abs=0.04)
    assert em.params_["tie_mean"] == pytest.approx(0.2, abs=0.02)
    # per-user log-likelihoods add up to the total
    assert em.users_["loglik"].sum() == pytest.approx(em.loglik_, rel=1e-10)
    assert len(em.users_) == 1500


def test_pymc_alternatives_have_the_numpy_likelihood(small_two_type):
    import pytensor

    sim = small_two_type
    em = HomogeneousEM().fit(sim.votes, **sim.reference)
    model = BayesianAlternative("homogeneous").build_model(sim.votes, **sim.reference)
    p = em.params_
    names = ["theta", "careless_first", "tie_mean", "tie_kappa"]
    fn = pytensor.function([model[n] for n in names], model["loglik"])
    assert float(fn(*[p[n] for n in names])) == pytest.approx(em.loglik_, rel=1e-10)

    for careless, vals, first in (
        ("shared", {"careless_first": 0.6}, 0.6),
        ("beta", {"careless_first_mean": 0.6, "careless_first_kappa": 3.0}, (1.8, 1.2)),  # the default: the two-type model's
    ):
        alt = BayesianAlternative("continuous", {"careless": careless})
        model = alt.build_model(sim.votes, **sim.reference)
        vals = {"quality_mean": 0.7, "quality_kappa": 1.5, **vals, "tie_mean": 0.2, "tie_kappa": 8.0}
        fn = pytensor.function([model[n] for n in vals], model["loglik"])
        params = {"quality": (0.7 * 1.5, 0.3 * 1.5), "careless_first": first, "tie": (0.2 * 8, 0.8 * 8)}
        expected = float(np.dot(alt._vt.weight, continuous_loglik(alt._vt, alt._terms, params)))
        assert float(fn(*vals.values())) == pytest.approx(expected, rel=1e-10)
        point = model.initial_point()
        assert np.isfinite(model.compile_logp()(point)) and np.all(np.isfinite(model.compile_dlogp()(point)))
    assert BayesianAlternative("continuous").model_config["careless"] == "beta"


def test_alternative_settings_are_checked():
    with pytest.raises(ConfigError, match="careless must be one of"):
        BayesianAlternative("homogeneous", model_config={"careless": "beta"})  # a per-user rate is a user effect
    with pytest.raises(ConfigError, match="careless must be one of"):
        BayesianAlternative("continuous", model_config={"careless": "mixture"})
    with pytest.raises(ConfigError, match="kind must be one of"):
        BayesianAlternative("three-type")
    with pytest.raises(ConfigError, match="unknown sampler_config"):
        BayesianAlternative("homogeneous", sampler_config={"drawz": 10})


def test_dispersion_index():
    rng = np.random.default_rng(0)
    n = np.full(4000, 20)
    same = rng.binomial(n, 0.6)
    mixed = rng.binomial(n, np.where(rng.random(4000) < 0.5, 0.3, 0.9))
    assert dispersion_statistic(same, n) == pytest.approx(1.0, abs=0.06)
    assert dispersion_statistic(mixed, n) > 5


# -- fitted checks (small real samples) ----------------------------------------------------

@pytest.fixture(scope="module")
def position_biased():
    """Careless users with strong first-position habits (Beta(8, 2))."""
    return simulate_votes(n_users=300, votes_per_user=12, careless_first=(8.0, 2.0), random_seed=5)


def test_ppc_flags_a_position_habit_the_model_leaves_out(position_biased):
    sim = position_biased
    wrong = BayesianTwoType(model_config={"careless": "random"}, sampler_config=SAMPLER)
    wrong.fit(sim.votes, **sim.reference)
    ppc = posterior_predictive_check(wrong, draws=200, random_seed=0)
    assert ppc.table.loc["first-position dispersion", "ppp"] < 0.01
    assert "first-position dispersion" in ppc.flagged
    right = BayesianTwoType(sampler_config=SAMPLER)
    right.fit(sim.votes, **sim.reference)
    ppc_right = posterior_predictive_check(right, draws=200, random_seed=0)
    assert 0.01 < ppc_right.table.loc["first-position dispersion", "ppp"] < 0.99
    assert not ppc_right.table.loc[["tie dispersion", "first-position dispersion"], "flagged"].any()
    fig = ppc.plot()
    assert len(fig.axes) == 6
    # the report's table applies the check's own rule: at the check's probability the same
    # intervals, ppp and flags, under the report's column names
    from comparemode.report import ppc_interval_table

    for check in (ppc, ppc_right):
        shown = ppc_interval_table(check, check.interval_prob)
        pct = f"{100 * check.interval_prob:g}%"
        np.testing.assert_array_equal(shown[[f"{pct} low", f"{pct} high", "ppp"]].to_numpy(),
                                      check.table[["replicated_lower", "replicated_upper", "ppp"]].to_numpy())
        assert shown["flagged"].tolist() == check.table["flagged"].tolist()


@pytest.mark.slow
def test_loo_prefers_two_types_on_two_type_data(small_two_type):
    sim = small_two_type
    fits = {"two-type": BayesianTwoType(sampler_config=SAMPLER), "homogeneous": BayesianAlternative("homogeneous", sampler_config=SAMPLER)}
    for m in fits.values():
        m.fit(sim.votes, **sim.reference)
    cmp = compare_models(fits)
    assert cmp.evidence_of_careless
    assert cmp.table.index[0] == "two-type"
    assert cmp.table.loc["homogeneous", "elpd_diff"] < -2 * cmp.table.loc["homogeneous", "se_diff"]
    assert "Evidence of careless users" in cmp.verdict
    assert len(cmp.pointwise) == 200 and (cmp.table["pareto_k_bad"] == 0).all()


@pytest.mark.slow
def test_loo_finds_no_careless_users_in_homogeneous_data():
    sim = simulate_votes(n_users=200, votes_per_user=10, quality=0.8, careless="shared", careless_first=0.6, random_seed=6)
    fits = {"two-type": BayesianTwoType(sampler_config=SAMPLER), "homogeneous": BayesianAlternative("homogeneous", sampler_config=SAMPLER)}
    for m in fits.values():
        m.fit(sim.votes, **sim.reference)
    cmp = compare_models(fits)
    assert not cmp.evidence_of_careless
    assert "No evidence of careless users" in cmp.verdict and "keep every user" in cmp.verdict


@pytest.mark.slow
def test_loo_prefers_or_ties_the_continuous_model_on_continuous_data():
    sim = simulate_votes(n_users=250, votes_per_user=16, quality=(2.0, 1.0), careless="shared", careless_first=0.75, random_seed=7)
    fits = {
        "two-type": BayesianTwoType(sampler_config=SAMPLER),
        "homogeneous": BayesianAlternative("homogeneous", sampler_config=SAMPLER),
        "continuous": BayesianAlternative("continuous", sampler_config=SAMPLER),
    }
    for m in fits.values():
        m.fit(sim.votes, **sim.reference)
    cmp = compare_models(fits)
    t = cmp.table
    d = t.loc["continuous", "elpd_loo"] - t.loc["two-type", "elpd_loo"]
    se = np.sqrt(len(cmp.pointwise) * np.var(cmp.pointwise["continuous_elpd_i"] - cmp.pointwise["two-type_elpd_i"]))
    assert d > -2 * se, f"continuous worse than two-type by {-d:.1f} (SE {se:.1f})"
    assert t.loc["continuous", "elpd_loo"] > t.loc["homogeneous", "elpd_loo"]
    # the quality score agrees with the oracle score (true parameters, the simulator's shared
    # careless rate; the fit has per-user careless rates, the two-type model's) and tracks the true share
    alt = fits["continuous"]
    assert alt.model_config["careless"] == "beta"
    oracle_terms = continuous_terms(alt._vt, "shared")
    oracle = continuous_quality_mean(oracle_terms, {"quality": (2.0, 1.0), "careless_first": 0.75})[alt._vt.inverse]
    q = alt.users_["quality"].to_numpy()
    assert np.corrcoef(q, oracle)[0, 1] > 0.97
    truth = sim.users["quality"].reindex(alt.users_.index).to_numpy()
    assert np.corrcoef(q, truth)[0, 1] > 0.3


def test_sampler_diagnostics_show_failures(bayes_fit):
    strict = sampler_diagnostics(bayes_fit.idata_, bayes_fit.param_names, {"ess_bulk_min": 1e9, "bfmi_min": 10.0})
    assert not strict["ess_bulk_ok"].any()
    assert strict.attrs["bfmi_ok"] is False and not diagnostics_passed(strict)
    lenient = sampler_diagnostics(bayes_fit.idata_, bayes_fit.param_names, {"ess_bulk_min": 1, "ess_tail_min": 1, "r_hat_max": 2.0})
    assert lenient["ess_bulk_ok"].all() and len(lenient.attrs["bfmi"]) == 2
    assert plot_ranks(bayes_fit.idata_, bayes_fit.param_names).axes
    assert plot_energy(bayes_fit.idata_).axes


def test_compare_models_refuses_mismatched_fits(bayes_fit):
    with pytest.raises(ConfigError, match="needs at least"):
        compare_models({"two-type": bayes_fit})


def test_homogeneous_loglik_ignores_ties_when_asked(small_two_type):
    vt, _, _ = _types(small_two_type)
    p = {"theta": 0.7, "careless_first": 0.6, "tie": (2.0, 8.0)}
    with_ties = homogeneous_loglik(vt, p, "shared")
    without = homogeneous_loglik(vt, p, "shared", tie=False)
    assert np.all(with_ties <= without + 1e-12)
    assert pd.Series(with_ties - without).nunique() > 1


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.9", None])
def test_ppc_table_refuses_an_interval_probability_outside_zero_one(bad):
    """ppc_table, the rule behind the check and the report, names a bad interval probability
    (a package ConfigError) instead of failing inside numpy; 0.5 and numpy floats are fine."""
    from comparemode.errors import ConfigError
    from comparemode.inference.model_checks import ppc_table

    rep = {"a rate": np.linspace(0.0, 1.0, 101)}
    with pytest.raises(ConfigError, match="interval_prob"):
        ppc_table({"a rate": 0.5}, rep, bad)
    for ok in (0.5, np.float32(0.9)):
        assert not ppc_table({"a rate": 0.5}, rep, ok).loc["a rate", "flagged"]


def test_dispersion_statistic_in_blocks_is_the_same_as_in_one_piece():
    """Many replicates are taken a block of rows at a time (issue 16): the same numbers as one
    pass over the whole array, for 1, 2 and 3 dimensions and a broadcast ``n``."""
    from comparemode.inference import model_checks as mc

    rng = np.random.default_rng(0)
    n = rng.integers(0, 30, (60, 5_000))
    k = rng.binomial(n, 0.6)
    whole = mc._dispersion_rows(k, n)
    assert whole.shape == (60,) and np.all(whole > 0)
    np.testing.assert_array_equal(mc.dispersion_statistic(k, n), whole)
    np.testing.assert_array_equal(mc.dispersion_statistic(k.reshape(3, 20, 5_000), n.reshape(3, 20, 5_000)), whole.reshape(3, 20))
    np.testing.assert_array_equal(mc.dispersion_statistic(k, n[0]), mc._dispersion_rows(k, n[0]))
    np.testing.assert_array_equal(mc.dispersion_statistic(k[0], n[0]), mc._dispersion_rows(k[0], n[0]))
