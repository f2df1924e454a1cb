"""Speed of the two-type EM (``TwoTypeEM``) against one numpy pass and crowd-kit.

What it measures, at the default size of 10,000,000 votes from 1,000,000 users (votes per
user: 1 + Poisson(9), mean 10), each on simulated votes (``simulate_votes``):

Setting A, two models with a scalar mu (the target setting; ``random_seed=0``):

1. one numpy pass over the encoded votes, ``np.bincount(enc.user, minlength=enc.n_users)``;
2. the EM fit from the encoded arrays, ``TwoTypeEM().fit_encoded(enc, mu=ref.mu, ...)``:
   the pass over the votes, the compression into patterns, the EM iterations and the
   per-pattern probabilities; 2b. the same followed by building the per-user ``users_``
   DataFrame (one row per user, built on first access);
3. the full path from the pandas DataFrame, ``TwoTypeEM().fit(votes, **sim.reference)``
   (validation, reference, encoding and EM) and ``users_``;
4. the same with the misfit checks that ``fit`` runs by default;
5. the floor of row 3: one pass that gives every vote's user a code, which any path from this
   DataFrame must make over the text user ids: pandas' ``pd.factorize(votes["user"])``, (5b)
   the package's own (``comparemode._columnar.factorize``: two 64-bit hashes of each id in one
   compiled pass, then pandas' factorize of integers) and, where polars is installed (the bench
   extra), (5c) polars' ``unique(maintain_order=True)`` of the same column (uniques only, no
   codes: less than a factorize);
6. crowd-kit's ``NoisyBradleyTerry()`` with its released defaults on a random sample of
   100,000 decisive votes of the same data (it has no ties), run once because it is slow,
   and its time scaled per vote to the full size;
7. the same on all decisive votes of randomly drawn users up to 100,000 votes, so that its
   workers keep their ~10 votes each (in the vote sample nearly every worker has one vote,
   and its optimiser stops early). The 1,000x check uses the faster of rows 6 and 7.

It then checks three targets and prints PASS or FAIL with the measured values (issue 16's
acceptance): "EM from encoded arrays within 3x the single numpy pass", "the full path from
the DataFrame within 10x the pass" (printed beside the fastest of rows 5-5c, and the full
path as a multiple of that floor) and "per vote at least 1,000x faster than NoisyBradleyTerry" (the
check uses the encoded EM; the full path's speed-up is printed beside it).

Setting B, 20 models with a per-vote mu from Bradley-Terry strengths
``np.linspace(-1.5, 1.5, 20)`` (``random_seed=1``): rows 1 to 5, no targets.

Every row except crowd-kit is the minimum wall time (``time.perf_counter``) of ``--repeat``
runs. The simulation and the one-off encoding are not timed in the rows (the encoding time
is printed as context). Each EM fit reports its fitted pi and iteration count, so the fits
can be seen to be real.

Run from the repository root::

    .venv/bin/python benchmarks/em_speed.py                              # full size, minutes
    .venv/bin/python benchmarks/em_speed.py --votes 200000 --users 20000  # quick check

``--profile`` adds a cProfile of one full-path fit in setting A (top entries by cumulative
time). The full size needs a few GB of memory; the votes of one setting are freed before the
next is simulated.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import os
import platform
import pstats
import sys
import time

import numpy as np
import pandas as pd

import comparemode
from comparemode import TwoTypeEM, simulate_votes
from comparemode._columnar import factorize
from comparemode.reference import encode_rows, resolve_reference

DEFAULT_VOTES = 10_000_000
DEFAULT_USERS = 1_000_000
DEFAULT_NBT_SAMPLE = 100_000
#: Target (issue 16): the EM from encoded arrays takes at most this many times the single numpy pass.
TARGET_EM_VS_NUMPY = 3.0
#: Target (issue 16): the full path from the DataFrame takes at most this many times the pass.
TARGET_FULL_VS_NUMPY = 10.0
#: Target: per vote, the EM is at least this many times faster than NoisyBradleyTerry.
TARGET_SPEEDUP_VS_NBT = 1000.0


# --------------------------------------------------------------------------- helpers


def best_time(fn, repeat: int):
    """Minimum wall time of ``repeat`` calls of ``fn`` and the result of the last call."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def row(step: str, seconds: float, votes: int, note: str = "") -> dict:
    ns = seconds / votes * 1e9 if votes else float("nan")
    return {"step": step, "seconds": seconds, "votes": votes, "ns_per_vote": ns, "note": note}


def print_table(title: str, rows: list[dict]) -> None:
    """Columns: step, wall seconds, votes, ns per vote, per-vote ratio to the numpy pass (row 1)."""
    base = rows[0]["ns_per_vote"]
    width = max(len(r["step"]) for r in rows)
    print()
    print(title)
    header = f"  {'step':<{width}}  {'wall s':>10}  {'votes':>12}  {'ns/vote':>12}  {'x numpy pass':>12}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in rows:
        ratio = r["ns_per_vote"] / base
        line = f"  {r['step']:<{width}}  {r['seconds']:>10.4f}  {r['votes']:>12,}  {r['ns_per_vote']:>12.2f}  {ratio:>12.2f}"
        if r["note"]:
            line += f"  {r['note']}"
        print(line)
    print("  ('x numpy pass' is ns per vote divided by the numpy pass's ns per vote; on rows over")
    print("  the full data it equals the ratio of wall times.)")


def describe_fit(label: str, em: TwoTypeEM) -> str:
    return (
        f"  {label}: pi = {em.params_['pi']:.4f}, {em.n_iter_} iterations ({em.stop_reason_}), "
        f"{em.n_patterns_:,} count patterns, {em.n_votes_:,} votes, {len(em.users_):,} users"
    )


def machine_facts() -> None:
    try:
        from importlib.metadata import version

        ck = version("crowd-kit")
    except Exception:  # noqa: BLE001 - only informational
        ck = "not installed"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print("Machine")
    print(f"  CPU count: {os.cpu_count()} (usable by this process: {affinity})")
    print(f"  CPU: {platform.processor() or platform.machine()}; {platform.platform()}")
    print(f"  Python {platform.python_version()}; numpy {np.__version__}; pandas {pd.__version__}; "
          f"comparemode {comparemode.__version__}; crowd-kit {ck}")
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    if threads:
        print(f"  thread settings: {threads}")


def simulate(n_votes: int, n_users: int, seed: int, strengths=None):
    mean = n_votes / n_users
    kw = {"strengths": strengths} if strengths is not None else {}
    t0 = time.perf_counter()
    sim = simulate_votes(
        n_users=n_users,
        votes_per_user={"distribution": "poisson", "mean": mean},
        random_seed=seed,
        **kw,
    )
    seconds = time.perf_counter() - t0
    print(f"  simulated {len(sim.votes):,} votes from {n_users:,} users (votes per user: poisson, mean {mean:g}; "
          f"seed {seed}) in {seconds:.1f}s; true share of attentive users {sim.users['attentive'].mean():.4f}")
    return sim


def encode(votes: pd.DataFrame, reference: dict):
    t0 = time.perf_counter()
    ref = resolve_reference(votes, **reference)
    enc, user_index = encode_rows(votes, ref)
    seconds = time.perf_counter() - t0
    print(f"  context, not a row: resolve_reference + encode_rows once took {seconds:.3f}s "
          f"(reference kind {ref.kind!r}, {enc.n_users:,} users)")
    return ref, enc, user_index


def em_rows(votes: pd.DataFrame, reference: dict, repeat: int, scalar: bool):
    """Rows 1-3 (numpy pass, encoded EM, full path) and the fit descriptions."""
    n = len(votes)
    ref, enc, user_index = encode(votes, reference)
    t_np, counts = best_time(lambda: np.bincount(enc.user, minlength=enc.n_users), repeat)
    assert counts.sum() == n
    del counts
    mu_kw = {"mu": ref.mu} if scalar else {}
    enc_label = f"EM fit_encoded(enc, mu={ref.mu:g})" if scalar else "EM fit_encoded(enc) (per-vote mu)"
    # the EM alone (checks=False); the misfit checks that fit runs by default are timed in row 4
    t_enc, em_enc = best_time(lambda: TwoTypeEM(checks=False).fit_encoded(enc, user_index=user_index, **mu_kw), repeat)

    def with_table():
        em = TwoTypeEM(checks=False).fit_encoded(enc, user_index=user_index, **mu_kw)
        return em, em.users_

    t_table, _ = best_time(with_table, repeat)
    del enc, user_index
    gc.collect()

    def full(checks=False):
        em = TwoTypeEM(checks=checks).fit(votes, **reference)
        em.users_
        return em

    t_full, em_full = best_time(full, repeat)
    t_checked, _ = best_time(lambda: full(checks=True), 1)
    # the floor of any full path from text user ids: one hash pass over them
    t_floor, _ = best_time(lambda: pd.factorize(votes["user"], sort=False), repeat)
    t_own, _ = best_time(lambda: factorize(votes["user"]), repeat)
    try:
        import polars as pl
    except ImportError:
        t_polars = None
    else:
        column = votes["user"].array.__arrow_array__()
        t_polars, _ = best_time(lambda: pl.from_arrow(column).unique(maintain_order=True), repeat)
    rows = [
        row("1. numpy pass: np.bincount(enc.user)", t_np, n),
        row(f"2. {enc_label}", t_enc, n),
        row("2b. the same, then the users_ DataFrame (built on access)", t_table, n),
        row("3. full path: TwoTypeEM(checks=False).fit(votes, ...) and users_", t_full, n),
        row("4. full path with the misfit checks (fit's default)", t_checked, n),
        row("5. floor of row 3: pd.factorize(votes['user']) alone", t_floor, n, note="(the text user ids hashed once)"),
        row("5b. the package's factorize of votes['user'] (used by row 3)", t_own, n, note="(two integer hashes per id, then integers)"),
    ]
    if t_polars is not None:
        rows.append(row("5c. polars: unique(maintain_order=True) of the user column", t_polars, n, note="(uniques only, no codes)"))
    fits = [describe_fit("fit_encoded", em_enc), describe_fit("fit (full path)", em_full)]
    del em_enc, em_full
    gc.collect()
    return rows, fits


def nbt_sample(votes: pd.DataFrame, size: int, seed: int, by: str = "vote") -> pd.DataFrame:
    """crowd-kit's pairwise format from a random sample of the decisive votes.

    ``by="vote"``: votes drawn at random (at this size nearly every worker has one vote);
    ``by="user"``: all decisive votes of randomly drawn users, until ``size`` votes, so each
    worker keeps the number of votes it has in the full data.
    """
    winner = votes["winner"].to_numpy()
    decisive = np.flatnonzero((winner == "model_a") | (winner == "model_b"))
    rng = np.random.default_rng(seed)
    if by == "user":
        users = votes["user"].to_numpy()[decisive]
        codes, uniques = pd.factorize(users)
        order = rng.permutation(len(uniques))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        per_vote_rank = rank[codes]
        sizes = np.bincount(codes)[order]
        n_take = int(np.searchsorted(np.cumsum(sizes), size) + 1)
        take = np.sort(decisive[per_vote_rank < n_take])
    else:
        take = np.sort(rng.choice(decisive, size=min(size, decisive.size), replace=False))
    sub = votes.iloc[take]
    a = sub["model_a"].to_numpy()
    b = sub["model_b"].to_numpy()
    label = np.where(sub["winner"].to_numpy() == "model_a", a, b)
    return pd.DataFrame({"worker": sub["user"].to_numpy(), "left": a, "right": b, "label": label})


@contextlib.contextmanager
def record_minimize(module):
    """Record what ``scipy.optimize.minimize`` returns inside ``module`` (crowd-kit's NBT keeps
    only the solution): its iterations, evaluations and stop message. The call is unchanged."""
    original = module.minimize
    results = []

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        results.append(result)
        return result

    module.minimize = recording
    try:
        yield results
    finally:
        module.minimize = original


def run_nbt(votes: pd.DataFrame, size: int, seed: int, by: str = "vote"):
    import crowdkit.aggregation.pairwise.noisy_bt as noisy_bt

    data = nbt_sample(votes, size, seed, by=by)
    gc.collect()
    with record_minimize(noisy_bt) as results:
        t0 = time.perf_counter()
        nbt = noisy_bt.NoisyBradleyTerry().fit(data)
        seconds = time.perf_counter() - t0
    scores = ", ".join(f"{k}={v:.3f}" for k, v in nbt.scores_.items())
    info = (f"  NoisyBradleyTerry (defaults: n_iter={nbt.n_iter}, tol={nbt.tol}), sample by {by}: {len(data):,} decisive votes, "
            f"{data['worker'].nunique():,} workers, run once; scores {scores}")
    if results:
        r = results[-1]
        info += (f"\n    its L-BFGS-B: {r.nit} iterations, {r.nfev} likelihood+gradient evaluations, "
                 f"stopped with {str(r.message)!r}")
    return seconds, len(data), info


def profile_full_path(votes: pd.DataFrame, reference: dict, top: int = 15) -> None:
    prof = cProfile.Profile()
    gc.collect()
    t0 = time.perf_counter()
    prof.enable()
    TwoTypeEM().fit(votes, **reference)
    prof.disable()
    seconds = time.perf_counter() - t0
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    print()
    print(f"cProfile of one full-path fit, setting A ({seconds:.2f}s under the profiler), top {top} by cumulative time")
    text = out.getvalue()
    start = text.find("   ncalls")
    print(text[start:].rstrip() if start >= 0 else text.rstrip())


# --------------------------------------------------------------------------- settings


def setting_a(args) -> None:
    print()
    print("Setting A: two models (model_x, model_y), scalar mu = 0.7, pi = 0.6")
    sim = simulate(args.votes, args.users, seed=0)
    votes, reference = sim.votes, sim.reference
    del sim
    gc.collect()
    n = len(votes)
    rows, fits = em_rows(votes, reference, args.repeat, scalar=True)
    for line in fits:
        print(line)
    if args.profile:
        profile_full_path(votes, reference)
    nbt = None
    if not args.skip_nbt:
        scaled = []
        for number, by in (("6", "vote"), ("7", "user")):
            t_nbt, m, info = run_nbt(votes, args.nbt_sample, seed=0, by=by)
            print(info)
            rows.append(row(f"{number}. NoisyBradleyTerry, {m:,} votes sampled by {by} (1 run)", t_nbt, m))
            rows.append(row("   NoisyBradleyTerry scaled per vote to full size", t_nbt / m * n, n, note="(estimate)"))
            scaled.append(rows[-1])
        # the check uses the faster of the two samples: the conservative comparison
        nbt = min(scaled, key=lambda r: r["ns_per_vote"])
    del votes
    gc.collect()
    print_table(f"Setting A results ({n:,} votes; min of {args.repeat} runs; crowd-kit run once)", rows)

    np_row, enc_row, table_row, full_row = rows[0], rows[1], rows[2], rows[3]
    ratio = enc_row["seconds"] / np_row["seconds"]
    ok1 = ratio <= TARGET_EM_VS_NUMPY
    print()
    print("Target checks (setting A)")
    print(f"  EM from encoded arrays within {TARGET_EM_VS_NUMPY:g}x the single numpy pass: "
          f"{enc_row['seconds']:.4f}s / {np_row['seconds']:.4f}s = {ratio:.2f}x -> {'PASS' if ok1 else 'FAIL'}")
    print(f"    beside it, with the per-user users_ DataFrame built as well (row 2b): "
          f"{table_row['seconds'] / np_row['seconds']:.2f}x (not the check)")
    floor_row = min((r for r in rows if r["step"].startswith("5")), key=lambda r: r["seconds"])
    full_ratio = full_row["seconds"] / np_row["seconds"]
    print(f"  full path from the DataFrame within {TARGET_FULL_VS_NUMPY:g}x the single numpy pass: "
          f"{full_row['seconds']:.4f}s / {np_row['seconds']:.4f}s = {full_ratio:.2f}x -> {'PASS' if full_ratio <= TARGET_FULL_VS_NUMPY else 'FAIL'}")
    print(f"    beside it, coding the text user ids once (the fastest of rows 5-5c, '{floor_row['step']}', which any path from this DataFrame must do) is "
          f"{floor_row['seconds'] / np_row['seconds']:.2f}x the pass; the full path is "
          f"{full_row['seconds'] / floor_row['seconds']:.2f}x that floor")
    if nbt is None:
        print(f"  per vote at least {TARGET_SPEEDUP_VS_NBT:,.0f}x faster than NoisyBradleyTerry: NOT RUN (--skip-nbt)")
        return
    sp_enc = nbt["ns_per_vote"] / enc_row["ns_per_vote"]
    sp_full = nbt["ns_per_vote"] / full_row["ns_per_vote"]
    ok2 = sp_enc >= TARGET_SPEEDUP_VS_NBT
    print(f"  per vote at least {TARGET_SPEEDUP_VS_NBT:,.0f}x faster than NoisyBradleyTerry (check uses the encoded EM "
          "and the faster of the two NoisyBradleyTerry samples): "
          f"{nbt['ns_per_vote']:,.0f} / {enc_row['ns_per_vote']:.2f} ns per vote = {sp_enc:,.0f}x -> "
          f"{'PASS' if ok2 else 'FAIL'}")
    print(f"    beside it, the full path from the DataFrame: {nbt['ns_per_vote']:,.0f} / {full_row['ns_per_vote']:.2f} "
          f"ns per vote = {sp_full:,.0f}x ({'would pass' if sp_full >= TARGET_SPEEDUP_VS_NBT else 'would fail'}; "
          "not the check)")


def setting_b(args) -> None:
    names = [f"m{i:02d}" for i in range(20)]
    strengths = dict(zip(names, np.linspace(-1.5, 1.5, 20)))
    print()
    print("Setting B: 20 models, per-vote mu from Bradley-Terry strengths linspace(-1.5, 1.5, 20), pi = 0.6")
    sim = simulate(args.votes, args.users, seed=1, strengths=strengths)
    votes, reference = sim.votes, sim.reference
    del sim
    gc.collect()
    n = len(votes)
    rows, fits = em_rows(votes, reference, args.repeat, scalar=False)
    del votes
    gc.collect()
    for line in fits:
        print(line)
    print_table(f"Setting B results ({n:,} votes; min of {args.repeat} runs; no targets)", rows)


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the two-type EM against one numpy pass over the votes and crowd-kit's NoisyBradleyTerry.",
    )
    parser.add_argument("--votes", type=int, default=DEFAULT_VOTES,
                        help=f"target number of votes (default {DEFAULT_VOTES:,}); votes per user are 1 + Poisson(votes/users - 1)")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help=f"number of users (default {DEFAULT_USERS:,})")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per timed row; the minimum wall time is reported (default 3). "
                        "NoisyBradleyTerry always runs once.")
    parser.add_argument("--nbt-sample", type=int, default=DEFAULT_NBT_SAMPLE,
                        help=f"decisive votes sampled for NoisyBradleyTerry (default {DEFAULT_NBT_SAMPLE:,})")
    parser.add_argument("--skip-nbt", action="store_true", help="do not run NoisyBradleyTerry (its check is then NOT RUN)")
    parser.add_argument("--settings", default="AB", choices=["A", "B", "AB"], help="which settings to run (default AB)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile (top 15 by cumulative time) of one full-path fit in setting A")
    args = parser.parse_args(argv)
    if args.users < 1 or args.votes < args.users:
        parser.error("need --users >= 1 and --votes >= --users (every user casts at least one vote)")
    if args.repeat < 1 or args.nbt_sample < 1:
        parser.error("--repeat and --nbt-sample must be positive")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    machine_facts()
    t0 = time.perf_counter()
    if "A" in args.settings:
        setting_a(args)
        gc.collect()
    if "B" in args.settings:
        setting_b(args)
        gc.collect()
    print()
    print(f"Total benchmark time {time.perf_counter() - t0:.1f}s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
