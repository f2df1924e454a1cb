"""Plain Bradley-Terry against Evalica (issue 14): time on arena-sized votes, and agreement.

Simulates ``--votes`` votes (default 2,000,000) from ``--users`` users over ``--models`` models
with Bradley-Terry outcomes and ties, then times, best of ``--repeat`` runs each:

- Evalica's ``bradley_terry`` (Rust core) from the vote columns (it indexes the models itself),
  with its defaults (tie weight 0.5, tolerance 1e-6, at most 100 iterations);
- ``comparemode.fit_bradley_terry(votes, ties="half", prior_games=0)`` from the votes table
  (the package's validation of the table included), and from the same votes' counts;
- ``comparemode.BradleyTerry(ties="half", prior_games=0)`` with its user-clustered sandwich
  intervals.

It prints the times, their ratio to Evalica's and the largest difference between the
normalised scores, and checks the issue's target: the package within 2x Evalica's time
(PASS or FAIL). ``pip install -e '.[bench]'`` installs Evalica.

    .venv/bin/python benchmarks/bradley_terry.py
    .venv/bin/python benchmarks/bradley_terry.py --votes 200000 --repeat 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import comparemode as cm


def simulate(n_votes: int, n_users: int, n_models: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    beta = rng.normal(0, 1, n_models)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p = 1 / (1 + np.exp(-(beta[a] - beta[b])))
    u = rng.random(n_votes)
    winner = np.where(u < 0.2, "tie", np.where(rng.random(n_votes) < p, "model_a", "model_b"))
    names = np.array([f"model-{i:03d}" for i in range(n_models)], dtype=object)
    return pd.DataFrame({"user": rng.integers(0, n_users, n_votes).astype(str), "model_a": names[a], "model_b": names[b], "winner": winner})


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--votes", type=int, default=2_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--models", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        import evalica
    except ImportError:
        raise SystemExit("this benchmark compares with Evalica: pip install -e '.[bench]'") from None

    votes = simulate(args.votes, args.users, args.models, args.seed)
    print(f"{len(votes):,} votes, {args.users:,} users, {args.models} models, {np.mean(votes['winner'] == 'tie'):.0%} ties; best of {args.repeat}")
    codes = {"model_a": evalica.Winner.X, "model_b": evalica.Winner.Y, "tie": evalica.Winner.Draw}

    def run_evalica():
        winners = votes["winner"].map(codes)
        return evalica.bradley_terry(votes["model_a"], votes["model_b"], winners).scores

    t_ev, ev = best_of(args.repeat, run_evalica)
    winners = votes["winner"].map(codes)
    t_ev_call, _ = best_of(args.repeat, lambda: evalica.bradley_terry(votes["model_a"], votes["model_b"], winners).scores)
    t_cm, s = best_of(args.repeat, lambda: cm.fit_bradley_terry(votes, ties="half", prior_games=0))
    counts = cm.count_votes(votes)
    t_counts, s_counts = best_of(args.repeat, lambda: cm.fit_bradley_terry(counts, ties="half", prior_games=0))
    t_sw, bt = best_of(max(1, args.repeat - 1), lambda: cm.BradleyTerry(ties="half", prior_games=0, interval="sandwich").fit(votes))

    def normalised(x):
        e = np.exp(x - x.max())
        return e / e.sum()

    ev_n = ev / ev.sum()
    diff = float(np.max(np.abs(normalised(s).reindex(ev_n.index) - ev_n)))
    diff_c = float(np.max(np.abs(normalised(s_counts).reindex(ev_n.index) - normalised(s).reindex(ev_n.index))))
    rows = [
        ("Evalica bradley_terry (tie weight 0.5), winners mapped to its enum", t_ev, "reference"),
        ("Evalica bradley_terry, winners mapped beforehand (not timed)", t_ev_call, "the call alone"),
        ("fit_bradley_terry(votes, ties='half', prior_games=0)", t_cm, f"max |score diff| vs Evalica {diff:.1e}"),
        ("fit_bradley_terry(counts, ...)", t_counts, f"vs the votes' fit {diff_c:.1e}"),
        ("BradleyTerry(ties='half', prior_games=0) + sandwich intervals", t_sw, f"median 95% width {float((bt.leaderboard_['upper'] - bt.leaderboard_['lower']).median()):.3f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'seconds':>8}  {'x Evalica':>9}")
    for name, t, note in rows:
        print(f"{name:{width}}  {t:8.3f}  {t / t_ev:9.2f}  {note}")
    ok = t_cm <= 2.0 * t_ev_call
    print(f"target: fit_bradley_terry from the votes within 2x Evalica's time (its call alone): {t_cm / t_ev_call:.2f}x -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
