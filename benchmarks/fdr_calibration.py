"""Calibration of the Bayesian false-discovery rule, with the EM plug-in version beside it.

The rule (:func:`comparemode.inference.filter.decide_fdr`) ranks users by P(attentive) and
keeps the longest prefix whose mean P(careless) is at most ``alpha``; if the probabilities are
calibrated, the share of careless users among the kept ones is then at most ``alpha`` on
average. This script checks that on simulated data, where the true types are known.

For each replication r = 0 .. R-1 it simulates 300 users x 10 votes (mu = 0.7, pi = 0.7; the
other settings at the simulator defaults: careless first-position rates from Beta(1.95, 1.05),
mean 0.65, ties about 20% of votes) with seed ``seed + r``, then

- fits :class:`~comparemode.BayesianTwoType` (mu known; 2 chains x 500 draws after 500 tuning
  steps, sampler seed ``seed + r``) and applies the rule to its posterior P(attentive)
  (averaged over the posterior draws): the **posterior rule**;
- fits :class:`~comparemode.TwoTypeEM` (seed ``seed + r``) and applies the same rule to its
  point-estimate probabilities: the **EM plug-in**;
- applies the rule to P(attentive) computed with the true parameters (``sim.true_p_attentive``):
  the **oracle**, a reference row whose probabilities are calibrated by construction.

For each method and alpha it records the realised careless share among kept users (the mean
of ``not attentive`` over them, defined as 0 when nobody is kept, and counted), the number
kept and the rule's own expected careless share. Per replication it also records the MCMC
diagnostics (largest R-hat, smallest bulk and tail ESS, divergences); replications with any
divergence or an R-hat above 1.01 are flagged, counted and reported, never dropped silently:
calibration is shown over all replications and again without the flagged ones.

It prints one table per alpha (mean realised careless share, its Monte Carlo standard error,
mean users kept, mean expected share, share of replications with nobody kept), a reliability
table of the probabilities pooled over all users and replications, and the target check:
posterior rule's mean realised careless share <= alpha + 0.02 at alpha = 0.1 (PASS/FAIL) with
the EM plug-in value beside it.

Fits run in ``--workers`` processes (chains sampled one after the other inside each worker,
``cores=1``); every fit is seeded from its replication number alone, so the results do not
depend on the number of workers or on scheduling.

Run from the repository root::

    .venv/bin/python benchmarks/fdr_calibration.py                # 200 replications, ~5-15 min
    .venv/bin/python benchmarks/fdr_calibration.py --reps 10      # quick check
    .venv/bin/python benchmarks/fdr_calibration.py --csv /tmp/fdr.csv   # also save per-replication rows
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
import pandas as pd

#: The acceptance setting.
SETTING = {"n_users": 300, "votes_per_user": 10, "pi": 0.7, "mu": 0.7}
TARGET_ALPHA = 0.1
TARGET_SLACK = 0.02
R_HAT_MAX = 1.01
METHODS = {"posterior": "posterior rule (MCMC)", "em": "EM plug-in", "oracle": "oracle (true params)"}
#: Bin edges of the reliability table (P(attentive)); the rule cuts in the upper bins.
BIN_EDGES = np.array([0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0])


def _quiet_libraries() -> None:
    for name in ("pymc", "pymc.sampling", "pymc.sampling.mcmc", "pytensor", "arviz"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _rule_outcome(p: np.ndarray, careless: np.ndarray, alpha: float) -> dict:
    """Apply ``decide_fdr`` to probabilities ``p`` and score it against the true types."""
    from comparemode.inference.filter import decide_fdr

    table = decide_fdr(pd.DataFrame({"p_attentive": p}), alpha)
    keep = table["keep"].to_numpy(dtype=bool)
    n_keep = int(keep.sum())
    return {
        "kept": n_keep,
        "realised": float(careless[keep].mean()) if n_keep else 0.0,
        "expected": float(table.attrs["rule"]["expected_careless_share"]),
        "none_kept": n_keep == 0,
    }


def _bin_counts(p: np.ndarray, attentive: np.ndarray) -> np.ndarray:
    """Per reliability bin: number of users, sum of P(attentive), number truly attentive."""
    idx = np.clip(np.searchsorted(BIN_EDGES, p, side="right") - 1, 0, BIN_EDGES.size - 2)
    nb = BIN_EDGES.size - 1
    return np.stack(
        [
            np.bincount(idx, minlength=nb),
            np.bincount(idx, weights=p, minlength=nb),
            np.bincount(idx, weights=attentive.astype(float), minlength=nb),
        ]
    )


def run_replication(rep: int, base_seed: int, alphas: tuple, draws: int, tune: int, chains: int) -> tuple[dict, dict]:
    """Simulate, fit MCMC and EM, apply the rule; returns (row, reliability bin counts)."""
    _quiet_libraries()
    from comparemode import BayesianTwoType, TwoTypeEM, simulate_votes

    seed = base_seed + rep
    t0 = time.perf_counter()
    sim = simulate_votes(**SETTING, random_seed=seed)
    mu = sim.reference["mu"]
    model = BayesianTwoType(
        sampler_config={"draws": draws, "tune": tune, "chains": chains, "cores": 1, "random_seed": seed, "progressbar": False}
    )
    model.fit(sim.votes, mu=mu)
    users_mcmc = model.users_
    diag = model.diagnostics()
    t_mcmc = time.perf_counter() - t0
    em = TwoTypeEM(random_seed=seed).fit(sim.votes, mu=mu)
    users_em = em.users_
    truth = sim.users["attentive"]
    probs = {
        "posterior": users_mcmc["p_attentive"],
        "em": users_em["p_attentive"],
        "oracle": sim.true_p_attentive(),
    }
    row = {
        "rep": rep,
        "seed": seed,
        "n_careless": int((~truth).sum()),
        "pi_mcmc": float(np.asarray(model.idata_["posterior"]["pi"].values).mean()),
        "pi_em": float(em.params_["pi"]),
        "r_hat_max": float(diag["r_hat"].max()),
        "ess_bulk_min": float(diag["ess_bulk"].min()),
        "ess_tail_min": float(diag["ess_tail"].min()),
        "divergences": int(diag.attrs["divergences"]),
    }
    row["flagged"] = bool(row["divergences"] > 0 or not row["r_hat_max"] <= R_HAT_MAX)
    bins = {}
    for method, p in probs.items():
        p = p.reindex(truth.index).to_numpy(dtype=float)
        if np.isnan(p).any():
            raise RuntimeError(f"replication {rep}: {method} probabilities do not cover every simulated user")
        attentive = truth.to_numpy(dtype=bool)
        bins[method] = _bin_counts(p, attentive)
        for alpha in alphas:
            out = _rule_outcome(p, ~attentive, alpha)
            for key, value in out.items():
                row[f"{method}_a{alpha:g}_{key}"] = value
    row["seconds_mcmc"] = t_mcmc
    row["seconds"] = time.perf_counter() - t0
    return row, bins


def _mean_se(x: pd.Series) -> tuple[float, float]:
    x = x.astype(float)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan
    return float(x.mean()), se


def _alpha_table(df: pd.DataFrame, alpha: float, label: str) -> None:
    print(f"\nalpha = {alpha:g}  ({label}, {len(df)} replications)")
    print(f"  {'method':<24} {'realised':>9} {'MC s.e.':>8} {'kept':>7} {'expected':>9} {'nobody kept':>12}")
    for method, name in METHODS.items():
        pre = f"{method}_a{alpha:g}_"
        mean, se = _mean_se(df[pre + "realised"])
        print(
            f"  {name:<24} {mean:>9.4f} {se:>8.4f} {df[pre + 'kept'].mean():>7.1f} "
            f"{df[pre + 'expected'].mean():>9.4f} {df[pre + 'none_kept'].mean():>12.3f}"
        )


def _reliability(bins: dict) -> None:
    print("\nreliability of P(attentive), pooled over all users and replications (mean P vs realised attentive share)")
    head = "  " + f"{'bin':<12}" + "".join(f"{METHODS[m]:>26}" for m in METHODS)
    print(head)
    print("  " + " " * 12 + "".join(f"{'n':>8} {'mean P':>8} {'real':>8}" for _ in METHODS))
    for b in range(BIN_EDGES.size - 1):
        line = f"  [{BIN_EDGES[b]:.2f},{BIN_EDGES[b + 1]:.2f}{']' if b == BIN_EDGES.size - 2 else ')'}"
        line = f"{line:<14}"
        for m in METHODS:
            n, sp, sa = bins[m][:, b]
            line += f"{int(n):>8} {sp / n if n else math.nan:>8.4f} {sa / n if n else math.nan:>8.4f}"
        print(line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=200, help="number of simulated data sets (default 200)")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.05, 0.1, 0.2], help="target careless shares")
    parser.add_argument("--seed", type=int, default=0, help="base seed; replication r uses seed + r")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1: run in this process)")
    parser.add_argument("--draws", type=int, default=500, help="posterior draws per chain")
    parser.add_argument("--tune", type=int, default=500, help="tuning steps per chain")
    parser.add_argument("--chains", type=int, default=2, help="chains per fit")
    parser.add_argument("--csv", default=None, help="save the per-replication results to this CSV file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.workers < 1:
        parser.error("--reps and --workers must be positive")
    alphas = tuple(dict.fromkeys(args.alphas))

    print(
        f"setting: {SETTING} (other settings at the simulator defaults); {args.reps} replications, seeds "
        f"{args.seed}..{args.seed + args.reps - 1}; MCMC {args.chains} chains x {args.draws} draws "
        f"(tune {args.tune}); alphas {list(alphas)}; {args.workers} worker(s)"
    )
    sys.stdout.flush()
    _quiet_libraries()
    task = (args.seed, alphas, args.draws, args.tune, args.chains)
    rows, bins = [], []
    t0 = time.perf_counter()

    def _progress(done: int) -> None:
        if not args.quiet and (done % 10 == 0 or done == args.reps):
            el = time.perf_counter() - t0
            print(f"  {done}/{args.reps} replications, {el:.0f}s elapsed, ~{el / done * (args.reps - done):.0f}s to go", flush=True)

    if args.workers == 1:
        for r in range(args.reps):
            row, b = run_replication(r, *task)
            rows.append(row)
            bins.append(b)
            _progress(len(rows))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
            futures = [pool.submit(run_replication, r, *task) for r in range(args.reps)]
            for fut in as_completed(futures):
                row, b = fut.result()
                rows.append(row)
                bins.append(b)
                _progress(len(rows))
    total = time.perf_counter() - t0

    df = pd.DataFrame(rows).sort_values("rep").reset_index(drop=True)
    pooled = {m: sum(b[m] for b in bins) for m in METHODS}
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"per-replication results written to {args.csv}")

    n_div = int((df["divergences"] > 0).sum())
    n_rhat = int((~(df["r_hat_max"] <= R_HAT_MAX)).sum())
    flagged = df["flagged"].to_numpy(dtype=bool)
    print(
        f"\nMCMC diagnostics: {n_div} of {len(df)} replications with divergences ({int(df['divergences'].sum())} in all), "
        f"{n_rhat} with max R-hat > {R_HAT_MAX}; {int(flagged.sum())} flagged (either). "
        f"Largest R-hat {df['r_hat_max'].max():.4f}; smallest bulk ESS {df['ess_bulk_min'].min():.0f} "
        f"(median of per-fit minima {df['ess_bulk_min'].median():.0f}; {int((df['ess_bulk_min'] < 400).sum())} fit(s) below 400), "
        f"smallest tail ESS {df['ess_tail_min'].min():.0f}."
    )
    print(
        f"pi: true {SETTING['pi']}, posterior mean {df['pi_mcmc'].mean():.4f} (sd over reps {df['pi_mcmc'].std():.4f}), "
        f"EM {df['pi_em'].mean():.4f} (sd {df['pi_em'].std():.4f}); realised careless share of all users "
        f"{df['n_careless'].mean() / SETTING['n_users']:.4f}"
    )
    for alpha in alphas:
        _alpha_table(df, alpha, "all replications")
        if flagged.any():
            _alpha_table(df[~flagged], alpha, "excluding flagged replications")
    _reliability(pooled)

    print()
    if TARGET_ALPHA in alphas:
        pre = f"a{TARGET_ALPHA:g}_realised"
        post, post_se = _mean_se(df[f"posterior_{pre}"])
        emv, em_se = _mean_se(df[f"em_{pre}"])
        limit = TARGET_ALPHA + TARGET_SLACK
        verdict = "PASS" if post <= limit else "FAIL"
        print(
            f"target: posterior rule: mean realised careless share <= alpha + {TARGET_SLACK:g} at alpha = {TARGET_ALPHA:g}: "
            f"{post:.4f} (MC s.e. {post_se:.4f}) <= {limit:.2f}: {verdict}; EM plug-in: {emv:.4f} (MC s.e. {em_se:.4f})"
        )
        if flagged.any():
            post_u, _ = _mean_se(df.loc[~flagged, f"posterior_{pre}"])
            em_u, _ = _mean_se(df.loc[~flagged, f"em_{pre}"])
            print(f"        without the {int(flagged.sum())} flagged replications: posterior rule {post_u:.4f}, EM plug-in {em_u:.4f}")
    else:
        print(f"target check skipped: alpha = {TARGET_ALPHA:g} is not among --alphas")
    print(
        f"time: {total:.1f}s in all, {total / len(df):.2f}s per replication (wall, {args.workers} worker(s)); "
        f"mean {df['seconds'].mean():.2f}s per replication inside a worker ({df['seconds_mcmc'].mean():.2f}s of it MCMC)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
