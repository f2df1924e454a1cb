"""Leaderboards on arena votes (issue 14): interval coverage, rigged votes, real data.

Votes come from :func:`comparemode.scenarios.simulate_arena` (written apart from the package's
model: uniform first-position rates for careless users, a fixed tie rate, Pareto votes per
user, uniformly drawn pairs).

1. Coverage (``--coverage N`` data sets, default 50; 2,000 users, 30 models, 25% careless, no
   partisans): the share of (data set, model) pairs whose 95% interval holds the true
   strength, for the joint EM's user bootstrap (``--boot`` resamples), plain Bradley-Terry's
   user-clustered sandwich, and (``--bayes N`` data sets, slow) the Bayesian joint model's
   HDIs; with the Monte Carlo standard error. Target: 93-97% for the joint EM and the
   Bayesian HDIs.
2. Rigging (``--rigging N`` seeds, default 10; 5% of accounts partisan for the model of true
   rank 15, at least 50 votes each): per leaderboard (plain BT, BT weighted by the joint EM's
   P(attentive), BT on the votes the FDR rule keeps, the joint EM, the robust leaderboard of
   :class:`comparemode.PartisanScreen`), Spearman with the true strengths, where the target
   lands, whether its true rank is in its rank interval, coverage; the partisan AUC and flags;
   and on arenas without partisans the careless-user AUC with and without the partisan type.
3. LLMFAO (``../shared/data/llmfao``): runtimes of each leaderboard and the largest difference
   from Evalica's reference Bradley-Terry scores.

    .venv/bin/python benchmarks/leaderboard.py                      # about half an hour
    .venv/bin/python benchmarks/leaderboard.py --coverage 5 --rigging 2 --boot 50   # a quick look
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import comparemode as cm
from comparemode.inference.diagnostics import diagnostics_passed
from comparemode.scenarios import simulate_arena

ROOT = Path(__file__).resolve().parents[1]
LLMFAO = ROOT.parent / "shared/data/llmfao/crowd-comparisons.csv"
GOLDEN = ROOT / "tests/data/evalica-llmfao/bradley_terry.csv"


def covered(board: pd.DataFrame, truth: pd.Series) -> np.ndarray:
    t = truth.reindex(board.index)
    return ((board["lower"] <= t) & (t <= board["upper"])).to_numpy()


def share(hits: list) -> str:
    x = np.concatenate(hits).astype(float)
    return f"{x.mean():.3f} +- {x.std(ddof=1) / np.sqrt(x.size):.3f} ({x.size:,} intervals)"


def coverage(args) -> None:
    print(f"\n1. Coverage of 95% intervals: {args.coverage} data sets x 30 models (2,000 users, 25% careless, no partisans)")
    joint, plain, bayes, passed = {"normal": [], "basic": [], "percentile": []}, [], [], []
    t0 = time.perf_counter()
    for seed in range(args.coverage):
        arena = simulate_arena(2000, 30, careless=0.25, random_seed=seed)
        em = cm.JointEM(random_seed=0, checks=False).fit(arena.votes)
        board = em.bootstrap_leaderboard(n_boot=args.boot, random_seed=seed)
        draws, est = em.boot_strengths_[board.index], em.strengths_.reindex(board.index)
        lo, hi = draws.quantile(0.025), draws.quantile(0.975)
        kinds = {"normal": (board["lower"], board["upper"]), "basic": (2 * est - hi, 2 * est - lo), "percentile": (lo, hi)}
        for kind, (lower, upper) in kinds.items():  # the same replicates, each interval kind
            joint[kind].append(covered(pd.DataFrame({"lower": lower, "upper": upper}), arena.strengths))
        plain.append(covered(cm.BradleyTerry().fit(arena.votes).leaderboard_, arena.strengths))
        if seed < args.bayes:
            model = cm.BayesianTwoType(model_config={"mu": "joint"}, sampler_config={"draws": 500, "tune": 500, "chains": 2, "progressbar": False, "random_seed": seed})
            model.fit(arena.votes)
            hdi = model.leaderboard(interval_prob=0.95)
            bayes.append(covered(hdi.rename(columns={c: c.replace("hdi_", "") for c in hdi.columns}), arena.strengths))
            passed.append(diagnostics_passed(model.diagnostics()))
        if args.verbose:
            extra = f", Bayes {bayes[-1].mean():.2f} (diagnostics {'pass' if passed[-1] else 'FAIL'})" if seed < args.bayes else ""
            print(f"   data set {seed + 1}: joint {joint['normal'][-1].mean():.2f}, plain {plain[-1].mean():.2f}{extra} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for kind, hits in joint.items():
        print(f"   joint EM, user bootstrap ({args.boot} resamples), {kind:<10}: {share(hits)}   target 0.93-0.97")
    print(f"   plain Bradley-Terry, user sandwich:            {share(plain)}   (careless votes shrink it: no target)")
    if bayes:
        print(f"   Bayesian joint model, 95% HDI ({len(bayes)} data sets):  {share(bayes)}   target 0.93-0.97")
        print(f"   sampler diagnostics passed on {sum(passed)} of {len(passed)} data sets")
    print(f"   ({time.perf_counter() - t0:.0f} s)")


def rigging(args) -> None:
    print(f"\n2. Rigging: {args.rigging} seeds, 3,000 users, 30 models, 25% careless, 5% partisan accounts (>= 50 votes) for true rank 15")
    rows, users = [], []
    for seed in range(args.rigging):
        arena = simulate_arena(3000, 30, careless=0.25, partisans=0.05, random_seed=1000 + seed)
        votes, truth = arena.votes, arena.strengths
        true_rank = int((-truth).rank()[arena.target])
        em = cm.JointEM(random_seed=0, checks=False).fit(votes)
        t0 = time.perf_counter()
        screen = cm.PartisanScreen().fit(em, votes)
        t_screen = time.perf_counter() - t0
        p = em.users_["p_attentive"].reindex(votes["user"]).to_numpy()
        kept = cm.filter_fdr(votes, em, alpha=0.1).kept
        boards = {
            "plain BT (sandwich)": cm.BradleyTerry().fit(votes).leaderboard_,
            "BT weighted by P(attentive)": cm.BradleyTerry().fit(votes, weights=p).leaderboard_,
            "BT on FDR-kept votes": cm.BradleyTerry().fit(kept).leaderboard_,
            "joint EM (bootstrap)": em.bootstrap_leaderboard(n_boot=args.boot, random_seed=seed),
            "robust (PartisanScreen, sandwich)": screen.leaderboard_,
        }
        for name, board in boards.items():
            row = board.loc[arena.target]
            rows.append({"leaderboard": name, "spearman": spearmanr(board["strength"], truth.reindex(board.index)).statistic,
                         "target rank": int(row["rank"]), "within 2": abs(int(row["rank"]) - true_rank) <= 2,
                         "true rank in interval": bool(row["rank_best"] <= true_rank <= row["rank_worst"]), "coverage": covered(board, truth).mean()})
        u = screen.users_
        role = arena.users["role"].reindex(u.index).to_numpy()
        part = role == "partisan"
        users.append({"partisan AUC": _auc(u["p_partisan"].to_numpy(), part), "honest flagged": float(u["flagged"].to_numpy()[~part].mean()),
                      "partisans flagged": float(u["flagged"].to_numpy()[part].mean()),
                      "target named (flagged)": float((u.loc[u["flagged"] & part, "target"] == arena.target).mean()), "screen seconds": t_screen})
        if args.verbose:
            print(f"   seed {seed}: robust rank {int(screen.leaderboard_.loc[arena.target, 'rank'])}, joint {int(em.leaderboard_.loc[arena.target, 'rank'])}, true {true_rank}", flush=True)
    table = pd.DataFrame(rows).groupby("leaderboard", sort=False).agg(
        spearman=("spearman", "mean"), target_rank_median=("target rank", "median"), within_2=("within 2", "mean"),
        true_rank_in_interval=("true rank in interval", "mean"), coverage=("coverage", "mean"))
    print("   true rank of the target: 15. Target: robust within 2 and true rank in its interval in >= 90% of seeds")
    print(table.round(3).to_string())
    print("   partisan screen, mean over seeds: " + ", ".join(f"{k} {v:.3f}" for k, v in pd.DataFrame(users).mean().items()))
    print("   targets: partisan AUC >= 0.9, honest flagged <= 0.01")
    # without partisans: the careless-user AUC with and without the third type
    aucs = []
    for seed in range(args.rigging):
        arena = simulate_arena(3000, 30, careless=0.25, random_seed=2000 + seed)
        em = cm.JointEM(random_seed=0, checks=False).fit(arena.votes)
        screen = cm.PartisanScreen().fit(em, arena.votes)
        careless = (arena.users["role"].reindex(em.users_.index) == "careless").to_numpy()
        aucs.append((_auc(1 - em.users_["p_attentive"].to_numpy(), careless), _auc(screen.users_["p_careless"].to_numpy(), careless),
                     float(screen.users_["flagged"].mean())))
    a = np.array(aucs)
    print(f"   no partisans ({args.rigging} seeds): careless AUC joint EM {a[:, 0].mean():.4f}, with the partisan type {a[:, 1].mean():.4f} "
          f"(drop {a[:, 0].mean() - a[:, 1].mean():+.4f}; target <= 0.01); users flagged {a[:, 2].mean():.4f}")


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    ranks = pd.Series(score).rank().to_numpy()
    n1 = int(positive.sum())
    n0 = positive.size - n1
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)) if n1 and n0 else float("nan")


def real_data(args) -> None:
    print("\n3. LLMFAO (8,931 votes, 124 workers, 59 models)")
    if not LLMFAO.exists():
        print(f"   {LLMFAO} is not there: skipped")
        return
    votes = cm.load_votes(LLMFAO)
    golden = pd.read_csv(GOLDEN, dtype={"item": str}).set_index("item")["score"]
    timings = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t0
        return out

    s = timed("fit_bradley_terry(ties='half', prior_games=0)", lambda: cm.fit_bradley_terry(votes, ties="half", prior_games=0))
    timed("BradleyTerry + user sandwich", lambda: cm.BradleyTerry(ties="half").fit(votes))
    timed("BradleyTerry + user bootstrap (200)", lambda: cm.BradleyTerry(ties="half", interval="bootstrap").fit(votes))
    em = timed("JointEM fit", lambda: cm.JointEM(random_seed=0).fit(votes))
    board = timed(f"JointEM bootstrap ({args.boot})", lambda: em.bootstrap_leaderboard(n_boot=args.boot))
    screen = timed("PartisanScreen", lambda: cm.PartisanScreen().fit(em, votes))
    scores = np.exp(s) / np.exp(s).sum()
    print(f"   largest |score - Evalica's| (ties half, no prior, scores normalised): {np.abs(scores.reindex(golden.index) - golden).max():.1e}")
    for name, t in timings.items():
        print(f"   {name:<48} {t:7.2f} s")
    top = board.head(5)[["rank", "strength", "lower", "upper", "rank_best", "rank_worst", "decisive"]]
    print("   joint EM top 5:\n" + "\n".join("     " + line for line in top.round(3).to_string().splitlines()))
    u = screen.users_
    flagged = u[u["flagged"]]
    robust = screen.leaderboard_
    print(f"   partisan screen: {len(flagged)} of {len(u)} workers flagged (P(partisan) > 0.5)"
          + (": " + ", ".join(f"{i} for {t!r} ({int(k)} of {int(n)} picks, {e:.1f} expected)" for i, t, k, n, e in
                               zip(flagged.index, flagged["target"], flagged["target_picks"], flagged["target_shown"], flagged["target_picks_expected"])) if len(flagged) else ""))
    print(f"   robust against joint EM leaderboard: Spearman {spearmanr(robust['strength'], board['strength'].reindex(robust.index)).statistic:.4f}; "
          f"largest rank change {int((robust['rank'] - board['rank'].reindex(robust.index)).abs().max())}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coverage", type=int, default=50)
    ap.add_argument("--bayes", type=int, default=0, help="data sets of the coverage study also fitted by MCMC (slow)")
    ap.add_argument("--rigging", type=int, default=10)
    ap.add_argument("--boot", type=int, default=100)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.coverage:
        coverage(args)
    if args.rigging:
        rigging(args)
    real_data(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
