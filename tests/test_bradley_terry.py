"""Plain Bradley-Terry (issue 14): Evalica's reference scores, the maximum reached, user-clustered
intervals that cover, leaderboards with rank intervals and Elo ratings.

The votes with user-level dependence come from a simulator written here (users with their own
perturbation of every model's strength), not from ``models/simulate.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import comparemode as cm
from comparemode.errors import ConfigError, NotIdentifiableError
from comparemode.inference.bradley_terry import bt_mm_step, bt_objective
from comparemode.inference.leaderboard import rank_intervals

HERE = Path(__file__).resolve().parent


def perturbed_users(seed: int, n_users: int, n_models: int = 8, tau: float = 0.8, ties: float = 0.2):
    """Users with votes per user from a heavy tail, each with a personal N(0, tau^2)
    perturbation of every model's strength (so one user's votes are dependent), ties at a
    fixed rate; the models shown first at random."""
    rng = np.random.default_rng(seed)
    beta = np.linspace(-1.2, 1.2, n_models)
    n_votes = np.minimum(1 + rng.zipf(1.8, n_users), 200)
    user = np.repeat(np.arange(n_users), n_votes)
    own = beta[None, :] + tau * rng.standard_normal((n_users, n_models))
    a = rng.integers(0, n_models, user.size)
    b = (a + rng.integers(1, n_models, user.size)) % n_models
    p = 1.0 / (1.0 + np.exp(-(own[user, a] - own[user, b])))
    win = np.where(rng.random(user.size) < p, "model_a", "model_b")
    win = np.where(rng.random(user.size) < ties, "tie", win)
    names = np.array([f"m{i}" for i in range(n_models)], dtype=object)
    return pd.DataFrame({"user": user.astype(str), "model_a": names[a], "model_b": names[b], "winner": win})


@pytest.fixture(scope="module")
def llmfao():
    return cm.datasets.load_llmfao().votes  # the LLMFAO copy shipped with the package


def test_ties_half_matches_evalica_reference_scores_for_llmfao(llmfao):
    golden = pd.read_csv(HERE / "data/evalica-llmfao/bradley_terry.csv", dtype={"item": str}).set_index("item")["score"]
    assert len(golden) == 59
    s = cm.fit_bradley_terry(llmfao, ties="half", prior_games=0)
    scores = np.exp(s) / np.exp(s).sum()
    assert set(scores.index) == set(golden.index)
    np.testing.assert_allclose(scores.reindex(golden.index).to_numpy(), golden.to_numpy(), rtol=0, atol=1e-6)
    assert list(s.index[:3]) == list(golden.sort_values(ascending=False).index[:3])
    # decisive-only is another convention, and gives other numbers
    drop = cm.fit_bradley_terry(llmfao, ties="drop", prior_games=0)
    assert np.abs(np.exp(drop) / np.exp(drop).sum() - scores.reindex(drop.index)).max() > 1e-4


@pytest.mark.parametrize("ties", ["drop", "half"])
@pytest.mark.parametrize("prior", [0.0, 1.0])
def test_newton_reaches_the_maximum_and_tol_means_what_it_says(ties, prior):
    votes = perturbed_users(1, 300)
    bt = cm.BradleyTerry(ties=ties, prior_games=prior, interval=None).fit(votes)
    assert bt.converged_ and bt.n_iter_ <= 25
    s = bt.strengths_
    names = sorted(s.index)
    code = {m: i for i, m in enumerate(names)}
    a, b = votes["model_a"].map(code).to_numpy(), votes["model_b"].map(code).to_numpy()
    win = votes["winner"].to_numpy()
    wa = (win == "model_a") + (0.5 * (win == "tie") if ties == "half" else 0.0)
    wb = (win == "model_b") + (0.5 * (win == "tie") if ties == "half" else 0.0)

    def negll(x):
        d = x[a] - x[b]
        return -(np.dot(wa, -np.logaddexp(0, -d)) + np.dot(wb, -np.logaddexp(0, d)) + prior * np.sum(-np.logaddexp(0, -x) - np.logaddexp(0, x)))

    x = s.reindex(names).to_numpy()
    if prior > 0:  # reported centred: the level the prior prefers (the likelihood ignores it)
        from scipy.optimize import minimize_scalar

        x = x + minimize_scalar(lambda c: negll(x + c), bracket=(-1, 1), tol=1e-12).x
    best = minimize(negll, np.zeros(len(names)), method="BFGS", options={"gtol": 1e-11, "maxiter": 10_000})
    assert negll(x) <= best.fun + 1e-9  # at least as high as a general optimiser gets
    ref = best.x - (best.x.mean() if prior == 0 else 0.0)
    np.testing.assert_allclose(x - x.mean(), ref - ref.mean(), atol=1e-5)
    # the gradient vanishes at the reported strengths (prior: the raw strengths are reported centred)
    eps = 1e-6
    grad = [(negll(x + eps * np.eye(len(x))[i]) - negll(x - eps * np.eye(len(x))[i])) / (2 * eps) for i in range(len(x))]
    if prior == 0:
        assert np.max(np.abs(grad)) < 1e-4
    # a loose tol stops early: fewer steps, and strengths further from the maximum
    loose = cm.BradleyTerry(ties=ties, prior_games=prior, interval=None, tol=0.05).fit(votes)
    assert loose.n_iter_ < bt.n_iter_


def test_decisive_only_agrees_with_the_mm_fixed_point():
    votes = perturbed_users(2, 200)
    s = cm.fit_bradley_terry(votes, prior_games=1.0)
    dec = votes[votes["winner"] != "tie"]
    codes, models = pd.factorize(np.concatenate([dec["model_a"], dec["model_b"]]))
    n = len(dec)
    a, b, a_won = codes[:n], codes[n:], (dec["winner"] == "model_a").to_numpy()
    beta = np.zeros(len(models))
    for _ in range(20_000):
        beta = bt_mm_step(beta, a, b, a_won, np.ones(n), 1.0, len(models))
    mm = pd.Series(beta, index=models)
    np.testing.assert_allclose(s.to_numpy(), (mm - mm.mean()).reindex(s.index).to_numpy(), atol=1e-7)
    # Newton's answer is at least as good as MM's under the same objective
    x = s.reindex(models).to_numpy()
    assert bt_objective(x + (beta.mean() - x.mean()), a, b, a_won, np.ones(n), 1.0) >= bt_objective(beta, a, b, a_won, np.ones(n), 1.0) - 1e-8


def test_counts_and_votes_give_the_same_strengths_and_intervals():
    votes = perturbed_users(3, 400)
    for ties in ("drop", "half"):
        v = cm.BradleyTerry(ties=ties).fit(votes)
        c = cm.BradleyTerry(ties=ties).fit(cm.count_votes(votes))
        np.testing.assert_allclose(v.strengths_.to_numpy(), c.strengths_.reindex(v.strengths_.index).to_numpy(), atol=1e-10)
        cols = ["lower", "upper", "wins", "decisive", "ties"]
        np.testing.assert_allclose(v.leaderboard_[cols].to_numpy(float), c.leaderboard_.loc[v.leaderboard_.index, cols].to_numpy(float), atol=1e-9)
    counts = cm.count_votes(votes)
    with pytest.raises(ConfigError, match="per counts entry"):
        cm.BradleyTerry().fit(counts, weights=np.ones(len(votes)))
    # a weight per counts entry multiplies its votes: doubling every entry is halving the virtual games
    twice = cm.BradleyTerry(interval=None).fit(counts, weights=np.full(counts.count.size, 2.0)).strengths_
    np.testing.assert_allclose(twice.to_numpy(), cm.BradleyTerry(interval=None, prior_games=0.5).fit(counts).strengths_.reindex(twice.index).to_numpy(), atol=1e-9)


def test_user_clustered_intervals_cover_where_vote_level_ones_would_not():
    """Votes that depend on their user: the sandwich's 95% intervals cover the population's
    strengths (the fit on 40 times as many users) about 95% of the time, the bootstrap's agree
    with them, and intervals that treat votes as independent are too narrow."""
    truth = cm.fit_bradley_terry(perturbed_users(10_000, 40 * 250), ties="half")
    hits, width_ratio, naive_hits = [], [], []
    for seed in range(40):
        votes = perturbed_users(seed, 250)
        bt = cm.BradleyTerry(ties="half").fit(votes)
        board = bt.leaderboard_
        t = truth.reindex(board.index).to_numpy()
        hits.append((board["lower"] <= t) & (t <= board["upper"]))
        if seed < 6:
            boot = cm.BradleyTerry(ties="half", interval="bootstrap", n_boot=200, random_seed=seed).fit(votes).leaderboard_.loc[board.index]
            width_ratio.append(((boot["upper"] - boot["lower"]) / (board["upper"] - board["lower"])).median())
        # one "user" per vote: the intervals a vote-level sandwich would give
        per_vote = votes.assign(user=np.arange(len(votes)).astype(str))
        naive = cm.BradleyTerry(ties="half").fit(per_vote).leaderboard_.loc[board.index]
        naive_hits.append((naive["lower"] <= t) & (t <= naive["upper"]))
    coverage = float(np.mean(np.concatenate(hits)))
    assert 0.90 <= coverage <= 0.99, coverage
    assert float(np.mean(np.concatenate(naive_hits))) < coverage - 0.05
    assert 0.75 < float(np.median(width_ratio)) < 1.3


def test_rank_intervals_follow_the_arena_rule():
    lower = np.array([2.0, 1.5, 0.0, -1.0])
    upper = np.array([3.0, 2.5, 1.0, 1.2])
    best, worst = rank_intervals(lower, upper)
    # model 0 overlaps model 1 only; model 3 overlaps model 2 only
    assert list(best) == [1, 1, 3, 3] and list(worst) == [2, 2, 4, 4]
    best, worst = rank_intervals(lower, np.full(4, np.nan))
    assert best.isna().all() and worst.isna().all()


def test_leaderboard_columns_elo_scale_and_anchor():
    votes = perturbed_users(4, 300)
    bt = cm.BradleyTerry(ties="half").fit(votes)
    board = bt.leaderboard_
    assert list(board.columns) == ["rank", "strength", "lower", "upper", "rank_best", "rank_worst", "wins", "decisive", "ties"]
    assert board["strength"].is_monotonic_decreasing and list(board["rank"]) == list(range(1, len(board) + 1))
    assert (board["rank_best"] <= board["rank"]).all() and (board["rank"] <= board["rank_worst"]).all()
    assert board["decisive"].sum() == 2 * (votes["winner"] != "tie").sum() and board["ties"].sum() == 2 * (votes["winner"] == "tie").sum()
    elo = cm.BradleyTerry(ties="half", scale="elo").fit(votes).leaderboard_
    factor = 400 / math.log(10)
    np.testing.assert_allclose(elo["strength"].to_numpy(), factor * board["strength"].to_numpy() + 1000.0)
    np.testing.assert_allclose((elo["upper"] - elo["lower"]).to_numpy(), factor * (board["upper"] - board["lower"]).to_numpy())
    assert list(elo["rank_best"]) == list(board["rank_best"])
    pinned = cm.BradleyTerry(ties="half", scale="elo", elo_anchor=("m0", 1200.0)).fit(votes).leaderboard_
    assert pinned.loc["m0", "strength"] == pytest.approx(1200.0)
    with pytest.raises(ConfigError, match="not on the leaderboard"):
        cm.BradleyTerry(scale="elo", elo_anchor=("nobody", 1.0)).fit(votes)
    ax = cm.plot_leaderboard(board, top=5)
    assert len(ax.get_yticks()) == 5


def test_plain_maximum_likelihood_needs_a_strongly_connected_graph():
    # x beats y and y beats z, never the other way: no finite maximum without the prior
    votes = pd.DataFrame({"user": ["u", "v", "w", "u"], "model_a": ["x", "y", "x", "z"], "model_b": ["y", "z", "z", "x"],
                          "winner": ["model_a", "model_a", "model_a", "model_b"]})
    with pytest.raises(NotIdentifiableError, match="infinite"):
        cm.fit_bradley_terry(votes, prior_games=0)
    assert np.isfinite(cm.fit_bradley_terry(votes)).all()  # the default virtual games
    # a tie counted as half a win for each side connects the graph
    tie = pd.concat([votes, pd.DataFrame({"user": ["u"], "model_a": ["z"], "model_b": ["x"], "winner": ["tie"]})], ignore_index=True)
    assert np.isfinite(cm.fit_bradley_terry(tie, ties="half", prior_games=0)).all()
    with pytest.raises(ConfigError, match="ties must be one of"):
        cm.fit_bradley_terry(votes, ties="davidson")
