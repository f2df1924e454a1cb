"""Leaderboards a platform can publish (issue 14): the joint EM's user-clustered bootstrap
intervals and rank intervals, and ``comparemode run`` on many-model votes with no reference.

The votes come from an arena simulator written here, apart from ``models/simulate.py`` and
with other assumptions: careless users pick the first-shown answer at a rate of their own drawn
from a uniform law, everyone ties at one rate, votes per user follow a Zipf law.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import comparemode as cm
from comparemode.cli import main
from comparemode.inference.joint import _resample_users


def arena(seed: int, n_users: int = 500, n_models: int = 20, careless: float = 0.3, ties: float = 0.15):
    rng = np.random.default_rng(seed)
    beta = np.sort(rng.normal(0.0, 0.8, n_models))
    n_votes = np.minimum(5 + rng.zipf(2.0, n_users), 150)
    user = np.repeat(np.arange(n_users), n_votes)
    is_careless = rng.random(n_users) < careless
    first_rate = rng.uniform(0.3, 0.9, n_users)
    a = rng.integers(0, n_models, user.size)
    b = (a + rng.integers(1, n_models, user.size)) % n_models
    p_first = np.where(is_careless[user], first_rate[user], 1.0 / (1.0 + np.exp(-(beta[a] - beta[b]))))
    winner = np.where(rng.random(user.size) < p_first, "model_a", "model_b")
    winner = np.where(rng.random(user.size) < ties, "tie", winner)
    names = np.array([f"model-{i:02d}" for i in range(n_models)], dtype=object)
    votes = pd.DataFrame({"user": [f"u{u}" for u in user], "model_a": names[a], "model_b": names[b], "winner": winner})
    truth = pd.Series(beta - beta.mean(), index=names)
    return votes, truth


def test_resampled_users_carry_their_own_counts():
    votes, _ = arena(0, n_users=60)
    counts = cm.count_votes(votes)
    order = np.argsort(counts.user, kind="stable")
    starts = np.searchsorted(counts.user[order], np.arange(counts.n_users + 1))
    rng = np.random.default_rng(3)
    chosen = np.random.default_rng(3).integers(0, counts.n_users, counts.n_users)
    boot = _resample_users(counts, order, starts, rng)
    per_user = counts.user_totals()["n_votes"].to_numpy()
    assert boot.n_users == counts.n_users and boot.n_votes == per_user[chosen].sum()
    np.testing.assert_array_equal(boot.user_totals()["n_votes"].to_numpy(), per_user[chosen])


def test_joint_bootstrap_intervals_are_reproducible_and_rank_intervals_nest():
    votes, _ = arena(1)
    em = cm.JointEM(random_seed=0, checks=False).fit(votes)
    assert em.leaderboard_["lower"].isna().all() and em.leaderboard_["rank_best"].isna().all()  # no intervals before asking
    board = em.bootstrap_leaderboard(n_boot=40, random_seed=5)
    assert em.boot_strengths_.shape == (40, 20)
    again = cm.JointEM(random_seed=0, checks=False).fit(votes).bootstrap_leaderboard(n_boot=40, random_seed=5)
    pd.testing.assert_frame_equal(board, again)
    assert (board["lower"] < board["upper"]).all()
    assert (board["rank_best"] <= board["rank"]).all() and (board["rank"] <= board["rank_worst"]).all()
    assert board.attrs["interval"] == "bootstrap (normal)" and board.attrs["level"] == 0.95 and board.attrs["n_boot"] == 40
    draws, est = em.boot_strengths_[board.index], em.strengths_.reindex(board.index)
    np.testing.assert_allclose(board["upper"] - est, 1.959963984540054 * draws.std(ddof=1), rtol=1e-12)
    pct = em.bootstrap_leaderboard(n_boot=40, random_seed=5, kind="percentile").loc[board.index]
    np.testing.assert_allclose(pct["lower"], draws.quantile(0.025), rtol=1e-12)
    basic = em.bootstrap_leaderboard(n_boot=40, random_seed=5, kind="basic").loc[board.index]
    np.testing.assert_allclose(basic["upper"], 2 * est - draws.quantile(0.025), rtol=1e-12)
    with pytest.raises(cm.errors.ConfigError, match="kind must be one of"):
        em.bootstrap_leaderboard(n_boot=40, kind="bca")
    board = em.bootstrap_leaderboard(n_boot=40, random_seed=5)
    elo = em.bootstrap_leaderboard(n_boot=40, random_seed=5, scale="elo")
    np.testing.assert_allclose((elo["upper"] - elo["lower"]).to_numpy(), 400 / np.log(10) * (board["upper"] - board["lower"]).to_numpy())
    with pytest.raises(cm.errors.ConfigError, match="n_boot"):
        em.bootstrap_leaderboard(n_boot=5)


def test_joint_bootstrap_intervals_cover_the_true_strengths_with_careless_users():
    """On votes from an outside simulator with 30% careless users: the 95% user-bootstrap
    intervals cover the true strengths near 95% of the time (the 50-data-set measurement is
    benchmarks/leaderboard.py), and plain Bradley-Terry's sandwich intervals, whose strengths
    careless votes shrink towards zero, cover far less often."""
    hits, plain_hits = [], []
    for seed in range(6):
        votes, truth = arena(100 + seed)
        board = cm.JointEM(random_seed=0, checks=False).fit(votes).bootstrap_leaderboard(n_boot=60, random_seed=seed)
        t = truth.reindex(board.index)
        hits.append(((board["lower"] <= t) & (t <= board["upper"])).to_numpy())
        plain = cm.BradleyTerry().fit(votes).leaderboard_
        t = truth.reindex(plain.index)
        plain_hits.append(((plain["lower"] <= t) & (t <= plain["upper"])).to_numpy())
    coverage, plain_coverage = float(np.mean(np.concatenate(hits))), float(np.mean(np.concatenate(plain_hits)))
    assert 0.85 <= coverage <= 1.0, coverage
    assert plain_coverage < coverage - 0.15, (plain_coverage, coverage)


def test_run_on_many_models_without_a_reference_runs_the_joint_model_and_says_so(tmp_path, capsys):
    votes, _ = arena(2, n_users=150, n_models=8)
    path = tmp_path / "arena.csv"
    votes.to_csv(path, index=False)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--boot", "20"]) == 0
    err = capsys.readouterr().err
    assert "8 models and no --mu, --strengths or mu column" in err and "--method joint" in err
    summary = json.loads((tmp_path / "o/summary.json").read_text())
    assert summary["fit"]["method_chosen"].startswith("automatic") and summary["leaderboard_intervals"]["n_boot"] == 20
    board = pd.read_csv(tmp_path / "o/leaderboard.csv", index_col=0)
    assert {"lower", "upper", "rank_best", "rank_worst"} <= set(board.columns) and board["lower"].notna().all()
    # asking for the two-type model by name: refused, the message naming the command line's flags
    assert main(["run", str(path), "--method", "em", "--out", str(tmp_path / "p"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "--mu MODEL=P" in err and "--strengths FILE" in err and "--method joint" in err and "mu={" not in err
    # in Python the message names Python arguments
    with pytest.raises(cm.errors.MuError, match=r"strengths=<table>.*JointEM"):
        cm.TwoTypeEM().fit(votes)


@pytest.mark.slow
def test_run_and_report_keep_the_same_users_on_llmfao(tmp_path, capsys):
    """One default decision rule for both commands (the Bayesian FDR rule at alpha = 0.1 on the
    fit comparemode run makes: here the joint EM, chosen because LLMFAO has 59 models and no
    reference), so the same votes give the same kept users; both say which rule and model."""
    llmfao = cm.datasets.llmfao_path()  # the shipped crowd-comparisons.csv.gz, a file on disk
    assert main(["run", str(llmfao), "--out", str(tmp_path / "run"), "--boot", "0"]) == 0
    said = capsys.readouterr()
    assert "--method joint" in said.err and "expected careless share <= 0.1 (the default rule)" in said.out
    users = pd.read_csv(tmp_path / "run/users.csv", dtype={"user": str}).set_index("user")
    kept_run = set(users.index[users["keep"]])
    res = cm.write_report(cm.load_votes(llmfao), tmp_path / "report.html", sampler_config={"draws": 150, "tune": 150, "chains": 2},
                          ppc_draws=30, quiet=True)
    assert res.reference.startswith("JointEM strengths")
    assert set(map(str, res.kept_users)) == kept_run and 0 < len(kept_run) < len(users)
    page = (tmp_path / "report.html").read_text()
    assert "the default of comparemode run and report alike" in page and "bootstrap" in page
