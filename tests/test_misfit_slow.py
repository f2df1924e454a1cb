"""Issue 11, the MCMC path (slow): the posterior FDR rule on data from another simulator, and
user-level LOO asking "two types or a continuum" with the same careless sub-model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import comparemode as cm
from comparemode.models.alternatives import alternative_params, continuous_loglik
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
    # the per-draw pattern log-likelihoods are computed once per fit: the log_likelihood group and the comparison read the same
    for kind in ("homogeneous", "continuous"):
        fit = fits[kind]
        ll = fit.pattern_log_likelihood()
        assert ll is fit.pattern_log_likelihood() and not ll.flags.writeable
        users = fit.idata_["user_data"]["user_pattern"].values
        np.testing.assert_array_equal(fit.idata_["log_likelihood"]["votes"].values, ll[..., users])
    cont = fits["continuous"]
    p = {"quality_mean": 0.5, "quality_kappa": 4.0, "careless_first_mean": 0.6, "careless_first_kappa": 5.0, "tie_mean": 0.2, "tie_kappa": 8.0}
    params, tie = alternative_params("continuous", "beta", cont._ties(), p), cont._ties() == "model"
    ref = continuous_loglik(cont._vt, cont._terms, params, tie=tie, method="buckets")  # the previous formulation, on these votes
    new = continuous_loglik(cont._vt, cont._terms, params, tie=tie)
    np.testing.assert_allclose(new, ref, rtol=1e-10)


def test_loo_prefers_two_types_on_two_type_data():
    """The continuum holds two types as its limit: on two-type data it predicts held-out users
    as well as two types only by piling its quality onto 0 and 1, and the verdict says two
    types."""
    sc = simulate_scenario("control", 500, 2)
    cmp, _ = _loo_fits(sc.votes, sc.told_mu)
    assert cmp.types_or_continuum == "two-type", cmp.verdict
    assert cmp.evidence_of_careless
    assert cmp.table.loc["two-type", "elpd_loo"] >= cmp.table.loc["continuous", "elpd_loo"] - 2 * cmp.table.loc["continuous", "se_diff"]
