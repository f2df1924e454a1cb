"""Partisan users (issue 14): accounts that vote for one model whenever it is on screen and
honestly otherwise, on arena votes from :func:`comparemode.scenarios.simulate_arena` (written
apart from the package's model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import comparemode as cm
from comparemode.inference.partisan import _poisson_binomial_tail
from comparemode.scenarios import simulate_arena


def auc(score, positive):
    ranks = pd.Series(score).rank().to_numpy()
    n1 = int(positive.sum())
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * (positive.size - n1)))


@pytest.fixture(scope="module")
def rigged():
    arena = simulate_arena(3000, 30, careless=0.25, partisans=0.05, random_seed=1000)
    joint = cm.JointEM(random_seed=0, checks=False).fit(arena.votes)
    return arena, joint, cm.PartisanScreen().fit(joint, arena.votes)


def test_partisans_are_found_with_their_target_and_honest_users_are_not_flagged(rigged):
    arena, joint, screen = rigged
    users = screen.users_
    role = arena.users["role"].reindex(users.index)
    partisan = (role == "partisan").to_numpy()
    assert auc(users["p_partisan"].to_numpy(), partisan) >= 0.95
    flagged = users["flagged"].to_numpy()
    assert flagged[~partisan].mean() <= 0.01  # false flags among honest users (attentive and careless)
    assert flagged[partisan].mean() >= 0.5
    assert (users.loc[flagged & partisan, "target"] == arena.target).mean() >= 0.95
    # the estimated shares: the heavy accounts' band holds them, for the target only
    assert screen.shares_[arena.target].max() > 10 * screen.shares_.drop(columns=arena.target).to_numpy().max()


def test_the_robust_leaderboard_puts_the_rigged_model_back(rigged):
    arena, joint, screen = rigged
    true_rank = int((-arena.strengths).rank()[arena.target])
    rigged_rank = int(joint.leaderboard_.loc[arena.target, "rank"])
    board = screen.leaderboard_
    row = board.loc[arena.target]
    assert rigged_rank <= true_rank - 4  # the rigging worked on the joint model
    assert abs(int(row["rank"]) - true_rank) <= 2 and row["rank_best"] <= true_rank <= row["rank_worst"]
    rho = spearmanr(board["strength"], arena.strengths.reindex(board.index)).statistic
    assert rho >= spearmanr(joint.leaderboard_["strength"], arena.strengths.reindex(joint.leaderboard_.index)).statistic
    assert board.attrs["interval"] == "sandwich" and list(board["decisive"]) == list(joint.leaderboard_["decisive"].reindex(board.index))


def test_without_partisans_nobody_is_flagged_and_the_leaderboard_stays():
    """Honest heavy users who like the best model: their picks of it fall with the opponent's
    strength, so they are not partisans."""
    arena = simulate_arena(3000, 30, careless=0.25, partisans=0.0, random_seed=7)
    joint = cm.JointEM(random_seed=0, checks=False).fit(arena.votes)
    screen = cm.PartisanScreen().fit(joint, arena.votes)
    users = screen.users_
    assert users["flagged"].mean() <= 0.01
    heavy = arena.users["n_votes"].reindex(users.index) >= 50
    best = arena.strengths.idxmax()
    fans = heavy & (users["target"] == best)
    assert not users.loc[fans, "flagged"].any()
    a, b = screen.leaderboard_["strength"], joint.leaderboard_["strength"].reindex(screen.leaderboard_.index)
    assert spearmanr(a, b).statistic >= 0.99
    # the third type costs nothing in telling careless users from attentive ones
    careless = (arena.users["role"].reindex(users.index) == "careless").to_numpy()
    with_type = auc(users["p_careless"].to_numpy(), careless)
    without = auc(1 - joint.users_["p_attentive"].reindex(users.index).to_numpy(), careless)
    assert with_type >= without - 0.01, (with_type, without)


def test_poisson_binomial_tail_is_exact_and_the_votes_must_match():
    p = np.array([0.2, 0.5, 0.9])
    outcomes = np.array(np.meshgrid(*[[0, 1]] * 3)).reshape(3, -1).T
    prob = np.prod(np.where(outcomes == 1, p, 1 - p), axis=1)
    for k in range(5):
        assert _poisson_binomial_tail(p, k) == pytest.approx(prob[outcomes.sum(axis=1) >= k].sum())
    arena = simulate_arena(300, 6, random_seed=1)
    joint = cm.JointEM(random_seed=0, checks=False).fit(arena.votes)
    with pytest.raises(cm.errors.ConfigError, match="not the ones"):
        cm.PartisanScreen().fit(joint, arena.votes.iloc[::-1])
    with pytest.raises(cm.errors.ConfigError, match="fitted JointEM"):
        cm.PartisanScreen().fit(cm.JointEM(), arena.votes)
