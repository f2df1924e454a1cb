"""Issue 11, the MCMC path (slow): the posterior FDR rule on data from another simulator, and
user-level LOO asking "two types or a continuum" with the same careless sub-model."""

from __future__ import annotations

import warnings

import pytest

import comparemode as cm
from comparemode.scenarios import simulate_scenario

pytestmark = pytest.mark.slow

SAMPLER = {"draws": 400, "tune": 400, "chains": 2, "cores": 1, "random_seed": 3, "progressbar": False}


def _realised(sc, users, alpha=0.1):
    res = cm.filter_fdr(sc.votes, users, alpha=alpha)
    kept = res.users.index[res.users["keep"]]
    return float((~sc.users["attentive"]).reindex(kept).mean()), len(kept)


@pytest.mark.parametrize("name,estimate", [("control", False), ("mu_low", True), ("mu_high", True)])
def test_posterior_fdr_rule_keeps_its_promise(name, estimate):
    """BayesianTwoType and filter_fdr on its posterior: realised careless share at most 0.12 at
    alpha = 0.1, with mu known on the control and estimated where the analyst's mu is wrong."""
    sc = simulate_scenario(name, 2500, 7)
    model = cm.BayesianTwoType(model_config={"mu": "estimate"} if estimate else None, sampler_config=SAMPLER)
    model.fit(sc.votes, **({} if estimate else {"mu": sc.told_mu}))
    diag = model.diagnostics()
    assert diag["r_hat"].max() < 1.02 and diag.attrs["divergences"] == 0
    if estimate:
        assert abs(float(model.summary().loc["mu", "mean"]) - sc.mu_true) < 0.02
    realised, kept = _realised(sc, model.users_)
    assert kept > 0.3 * len(sc.users) and realised <= 0.12


def _loo_fits(votes, mu):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {"two-type": cm.BayesianTwoType(sampler_config=SAMPLER)}
        fits["two-type"].fit(votes, mu=mu)
        for kind in ("homogeneous", "continuous"):
            fits[kind] = cm.BayesianAlternative(kind, sampler_config=SAMPLER)
            fits[kind].fit(votes, mu=mu)
    assert fits["continuous"].model_config["careless"] == fits["two-type"].model_config["careless"] == "beta"
    return cm.compare_models(fits), fits


def test_loo_prefers_or_ties_the_continuum_on_partial_attention():
    sc = simulate_scenario("partial", 500, 2)
    cmp, fits = _loo_fits(sc.votes, sc.told_mu)
    assert cmp.types_or_continuum in ("continuous", "tie"), cmp.verdict
    from comparemode.inference.model_checks import continuum_middle_mass

    assert continuum_middle_mass(fits["continuous"]) > 0.5  # theta ~ Beta(2, 2): 94% of users in between
    assert cmp.table.loc["continuous", "elpd_loo"] >= cmp.table.loc["two-type", "elpd_loo"] - 2 * cmp.table.loc["two-type", "se_diff"]


def test_loo_prefers_two_types_on_two_type_data():
    """The continuum holds two types as its limit: on two-type data it predicts held-out users
    as well as two types only by piling its quality onto 0 and 1, and the verdict says two
    types."""
    sc = simulate_scenario("control", 500, 2)
    cmp, _ = _loo_fits(sc.votes, sc.told_mu)
    assert cmp.types_or_continuum == "two-type", cmp.verdict
    assert cmp.evidence_of_careless
    assert cmp.table.loc["two-type", "elpd_loo"] >= cmp.table.loc["continuous", "elpd_loo"] - 2 * cmp.table.loc["continuous", "se_diff"]
