"""Slow MCMC checks (marked slow; CI runs them): parameter recovery with mu unknown,
simulation-based calibration of pi and mu, and the EM against the posterior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from comparemode import BayesianTwoType, compare_em_mcmc, simulate_votes
from comparemode.constants import INTERVAL_PROB

from conftest import RECOVERY

pytestmark = pytest.mark.slow


def test_parameter_recovery_mu_unknown():
    """Every true parameter inside its 94% HDI; R-hat <= 1.01, bulk ESS >= 400, no divergences."""
    sim = simulate_votes(**RECOVERY, random_seed=20261127)
    model = BayesianTwoType(
        model_config={"mu": "estimate", "mu_model": "model_x"},
        sampler_config={"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 11, "progressbar": False},
    )
    model.fit(sim.votes)
    truth = sim.true_parameters
    assert set(truth) == set(model.param_names)
    summ = model.summary(INTERVAL_PROB)
    diag = model.diagnostics()
    print("\n" + summ[["mean", "hdi94_lb", "hdi94_ub", "ess_bulk", "r_hat"]].to_string())
    for name, value in truth.items():
        lo, hi = summ.loc[name, "hdi94_lb"], summ.loc[name, "hdi94_ub"]
        assert lo <= value <= hi, f"{name}: true {value} outside [{lo}, {hi}]"
    assert (diag["r_hat"] <= 1.01).all(), diag["r_hat"]
    assert (diag["ess_bulk"] >= 400).all(), diag["ess_bulk"]
    assert diag.attrs["divergences"] == 0


#: SBC set-up: the prior the data are drawn from is the model's prior (narrowed here so that
#: small data sets stay informative), no ties, 150 users x 10 votes.
SBC_PRIORS = {
    "pi": {"alpha": 2.0, "beta": 2.0},
    "mu": {"alpha": 4.0, "beta": 2.0},
    "careless_first_mean": {"alpha": 2.0, "beta": 2.0},
    "careless_first_kappa": {"mu": float(np.log(5.0)), "sigma": 0.5},
}
SBC_REPS = 100
SBC_BINS = 10


def _draw_from_prior(rng):
    p = SBC_PRIORS
    return {
        "pi": rng.beta(p["pi"]["alpha"], p["pi"]["beta"]),
        "mu": rng.beta(p["mu"]["alpha"], p["mu"]["beta"]),
        "careless_first_mean": rng.beta(p["careless_first_mean"]["alpha"], p["careless_first_mean"]["beta"]),
        "careless_first_kappa": rng.lognormal(p["careless_first_kappa"]["mu"], p["careless_first_kappa"]["sigma"]),
    }


def test_simulation_based_calibration_pi_mu():
    """Ranks of the true pi and mu among 99 thinned posterior draws are uniform (chi-square
    test at the 1% level over 10 bins) across 100 data sets drawn from the prior."""
    rng = np.random.default_rng(2026)
    ranks = {"pi": [], "mu": []}
    flagged = 0
    for rep in range(SBC_REPS):
        theta = _draw_from_prior(rng)
        m, kappa = theta["careless_first_mean"], theta["careless_first_kappa"]
        sim = simulate_votes(
            n_users=150,
            votes_per_user=10,
            pi=theta["pi"],
            mu=theta["mu"],
            careless_first=(m * kappa, (1 - m) * kappa),
            ties=False,
            random_seed=int(rng.integers(2**31)),
        )
        model = BayesianTwoType(
            model_config={"mu": "estimate", "mu_model": "model_x", "ties": "drop", "priors": SBC_PRIORS},
            # 2 x 250 draws thinned to 99: nearly independent for this four-parameter posterior
            # (autocorrelated draws would make the ranks non-uniform, so fewer draws cannot hide a fault)
            sampler_config={"draws": 250, "tune": 500, "chains": 2, "cores": 1, "target_accept": 0.95, "random_seed": rep, "progressbar": False},
        )
        idata = model.fit(sim.votes)
        flagged += int(np.asarray(idata["sample_stats"]["diverging"].values).sum() > 0)
        for name in ranks:
            draws = np.asarray(idata["posterior"][name].values).reshape(-1)
            thinned = draws[np.linspace(0, draws.size - 1, 99).round().astype(int)]
            ranks[name].append(int((thinned < theta[name]).sum()))
    print(f"\nSBC: {SBC_REPS} replications, {flagged} with any divergence")
    for name, r in ranks.items():
        counts = np.bincount(np.asarray(r) * SBC_BINS // 100, minlength=SBC_BINS)
        chi2, p = stats.chisquare(counts)
        print(f"SBC {name}: rank-histogram counts {counts.tolist()}, chi-square {chi2:.2f} (df {SBC_BINS - 1}), p = {p:.4f}")
        assert p > 0.01, f"{name}: ranks not uniform (chi-square {chi2:.2f}, p = {p:.4f})"


def test_em_inside_posterior_and_users_agree():
    """2,000 simulated users: EM estimates inside the 94% HDIs, per-user probabilities
    within 0.02 for users with 20 or more votes, diagnostics reported."""
    sim = simulate_votes(**RECOVERY, random_seed=5)
    result = compare_em_mcmc(
        sim.votes,
        **sim.reference,
        sampler_config={"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 1, "progressbar": False},
        interval_prob=INTERVAL_PROB,
        min_votes=20,
    )
    print("\n" + result.report())
    assert result.all_inside, result.params
    assert (result.users["n_votes"] >= 20).all()
    assert result.max_gap_min_votes <= 0.02
    assert result.divergences == 0
    assert (result.diagnostics["r_hat"] <= 1.01).all()
