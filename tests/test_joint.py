"""Joint EM: model strengths and user types together (issue 4, first part)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from comparemode import simulate_votes
from comparemode.errors import ConfigError, NotIdentifiableError
from comparemode.inference.joint import JointEM, _bt_mm_step, _bt_objective, fit_bradley_terry

from conftest import assert_monotone

STRENGTHS = {f"m{i:02d}": s for i, s in enumerate(np.linspace(-1.5, 1.5, 12))}


@pytest.fixture(scope="module")
def hard_sim():
    """40% ties, careless users favouring the first position (Beta mean 0.8)."""
    return simulate_votes(
        n_users=1500,
        votes_per_user=20,
        strengths=STRENGTHS,
        careless_first=(4.0, 1.0),
        tie_attentive=(4.0, 6.0),
        tie_careless=(3.0, 4.5),
        random_seed=3,
    )


def test_joint_recovers_strengths_and_types(hard_sim):
    assert (hard_sim.votes["winner"] == "tie").mean() == pytest.approx(0.4, abs=0.02)
    em = JointEM(random_seed=0).fit(hard_sim.votes)
    assert_monotone(em.loglik_history_)
    assert em.converged_
    true = pd.Series(STRENGTHS)
    est = em.strengths_.reindex(true.index)
    assert abs(est.mean()) < 1e-9  # centred
    assert np.corrcoef(est, true)[0, 1] > 0.99
    assert (est - (true - true.mean())).abs().max() < 0.2
    assert em.params_["pi"] == pytest.approx(0.6, abs=0.04)
    assert em.params_["careless_first_mean"] == pytest.approx(0.8, abs=0.04)
    truth = hard_sim.users["attentive"].reindex(em.users_.index)
    acc = ((em.users_["p_attentive"] >= 0.5) == truth).mean()
    oracle = ((hard_sim.true_p_attentive().reindex(em.users_.index) >= 0.5) == truth).mean()
    assert acc >= oracle - 0.02
    board = em.leaderboard_
    assert board["rank"].tolist() == list(range(1, 13)) and board["strength"].is_monotonic_decreasing
    assert board["games"].sum() == 2 * (hard_sim.votes["winner"] != "tie").sum()


def test_joint_beats_plain_bradley_terry_when_careless_users_click_first(hard_sim):
    plain = fit_bradley_terry(hard_sim.votes, prior_games=1.0)
    joint = JointEM(random_seed=0).fit(hard_sim.votes).strengths_
    true = pd.Series(STRENGTHS)
    err_plain = ((plain.reindex(true.index) - (true - true.mean())) ** 2).mean()
    err_joint = ((joint.reindex(true.index) - (true - true.mean())) ** 2).mean()
    assert err_joint < err_plain  # careless votes shrink the plain strengths towards zero


def test_mm_step_never_lowers_the_objective_and_reaches_the_optimum():
    rng = np.random.default_rng(0)
    n_models, n = 6, 400
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    beta_true = np.linspace(-1, 1, n_models)
    a_won = rng.random(n) < 1 / (1 + np.exp(-(beta_true[a] - beta_true[b])))
    w = rng.random(n)
    beta = np.zeros(n_models)
    obj = _bt_objective(beta, a, b, a_won, w, 1.0)
    for _ in range(300):
        beta = _bt_mm_step(beta, a, b, a_won, w, 1.0, n_models)
        new = _bt_objective(beta, a, b, a_won, w, 1.0)
        assert new >= obj - 1e-10
        obj = new
    direct = minimize(lambda x: -_bt_objective(x, a, b, a_won, w, 1.0), np.zeros(n_models), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(beta, direct.x, atol=1e-5)


def test_fit_bradley_terry_weights_and_errors(hard_sim):
    votes = hard_sim.votes
    unweighted = fit_bradley_terry(votes)
    ones = fit_bradley_terry(votes, weights=np.ones(len(votes)))
    pd.testing.assert_series_equal(unweighted, ones)
    with pytest.raises(ConfigError, match="weights"):
        fit_bradley_terry(votes, weights=np.ones(3))
    with pytest.raises(ConfigError, match="weights"):
        fit_bradley_terry(votes, weights=-np.ones(len(votes)))


def test_joint_refuses_all_ties_and_bad_prior(hard_sim):
    with pytest.raises(NotIdentifiableError, match="tie"):
        JointEM().fit(hard_sim.votes.assign(winner="tie"))
    with pytest.raises(ConfigError, match="prior_games"):
        JointEM(prior_games=-1).fit(hard_sim.votes)


def test_joint_on_llmfao_runs_and_is_monotone():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1].parent / "shared/data/llmfao/crowd-comparisons.csv"
    if not path.exists():
        pytest.skip(f"LLMFAO data not found at {path} (shared/ sits beside the repository in CI)")
    from comparemode import load_votes

    em = JointEM().fit(load_votes(path))
    assert_monotone(em.loglik_history_)
    assert len(em.strengths_) == 59 and len(em.users_) == 124
    assert em.converged_
