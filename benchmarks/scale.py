"""More votes than memory: the pandas path against the Dask path, side by side in one run.

What it runs, each path in its own child process watched by this one (a watchdog samples the
resident memory of the child's whole process tree from /proc every 20 ms, records the peak,
and kills the tree as soon as it goes above the limit, if one is set):

1. at ``--votes`` (default 10,000,000) votes in Parquet files, without a memory limit:
   a. the pandas path: ``pd.read_parquet`` of the files, ``TwoTypeEM().fit(votes, mu=...)``,
      ``em.filter(votes)`` and the kept votes written with ``DataFrame.to_parquet``;
   b. the Dask path on the local threaded scheduler (2 threads, no cluster):
      ``TwoTypeEM().fit("dir/", mu=...)`` (one Dask group-by pass), ``em.filter(load_votes("dir/"))``
      and ``write_kept`` (a second pass, writing partitioned Parquet);
   c. the same on a ``dask.distributed`` LocalCluster (2 worker processes, 1 thread each);
   and checks that the Dask paths' per-user tables equal the pandas path's exactly
   (``assert_frame_equal(check_exact=True)``) and that they keep the same number of votes;
2. at ``--big-votes`` votes whose Parquet files are at least twice ``--limit-gib`` on disk
   (every vote carries a 64-character ``conversation`` id, a pass-through column the filter
   writes back), with the process tree limited to ``--limit-gib``:
   d. the pandas path (it has to load every column into memory: it is killed at the limit);
   e. the Dask path on the local threaded scheduler (it completes).

Votes are generated with NumPy (``default_rng(--seed)``) from the package's two-type model with
two models and a scalar mu = 0.7: users attentive with probability 0.6; attentive users pick
the stronger model with probability mu, careless users pick the first answer at a per-user rate
from Beta(2, 1); ties with probability 0.15 (attentive) and 0.3 (careless); each vote's user is
drawn uniformly from ``--users`` (``--big-users``) users; the stronger model is shown first on
half the votes. Files hold 1,000,000 votes each (one Dask partition per file).

Run from the repository root (about 4 minutes on 2 cores, about 8 GB of disk under
``--workdir``, removed at the end unless ``--keep``)::

    .venv/bin/python benchmarks/scale.py
    .venv/bin/python benchmarks/scale.py --votes 1000000 --big-votes 8000000 --limit-gib 0.5   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MU = 0.7
FILE_ROWS = 1_000_000
POLL = 0.02
GIB = 1 << 30


# --------------------------------------------------------------------------- data


def _strings(values: list[str], idx: np.ndarray):
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.take(pa.array(values, type=pa.string()), pa.array(idx))


def _hex_ids(rng: np.random.Generator, n: int, width: int = 64):
    """``n`` random hexadecimal strings of ``width`` characters as an Arrow string array."""
    import pyarrow as pa

    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    data = digits[rng.integers(0, 16, size=n * width, dtype=np.uint8)]
    offsets = (np.arange(n + 1, dtype=np.int64) * width).astype(np.int32 if n * width < 2**31 else np.int64)
    kind = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def generate(folder: Path, n_votes: int, n_users: int, seed: int, conversation: bool) -> dict:
    """Votes from the two-type model, written as Parquet files of FILE_ROWS votes each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    attentive = rng.random(n_users) < 0.6
    first_rate = rng.beta(2.0, 1.0, size=n_users)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    for i, lo in enumerate(range(0, n_votes, FILE_ROWS)):
        n = min(FILE_ROWS, n_votes - lo)
        user = rng.integers(0, n_users, size=n)
        att = attentive[user]
        x_first = rng.random(n) < 0.5  # the stronger model ("model_x") shown first
        tie = rng.random(n) < np.where(att, 0.15, 0.3)
        picks_x = rng.random(n) < MU
        picks_first = np.where(att, picks_x == x_first, rng.random(n) < first_rate[user])
        winner = np.where(tie, 2, np.where(picks_first, 0, 1))
        cols = {
            "user": pa.array(user),
            "model_a": _strings(["model_y", "model_x"], x_first.astype(np.int8)),
            "model_b": _strings(["model_x", "model_y"], x_first.astype(np.int8)),
            "winner": _strings(["model_a", "model_b", "tie"], winner.astype(np.int8)),
        }
        if conversation:
            cols["conversation"] = _hex_ids(rng, n)
        pq.write_table(pa.table(cols), folder / f"part.{i:04d}.parquet", row_group_size=FILE_ROWS)
    size = sum(p.stat().st_size for p in folder.glob("*.parquet"))
    return {"votes": n_votes, "bytes": size, "files": len(list(folder.glob("*.parquet"))), "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- children


def child(spec: dict) -> dict:
    """One path, run in a child process; returns what the table prints."""
    import pandas as pd

    import comparemode as cm
    from comparemode import dask_backend

    path, out, mode = spec["data"], Path(spec["out"]), spec["path"]
    mu = {"model_x": MU}
    t0 = time.perf_counter()
    if mode == "pandas":
        votes = cm.load_votes(pd.read_parquet(path))
        t_load = time.perf_counter() - t0
        # the Dask path aggregates per-user counts and runs no misfit check: compare like with like
        em = cm.TwoTypeEM(random_seed=0, checks=False).fit(votes, mu=mu)
        users = em.users_
        t_fit = time.perf_counter() - t0 - t_load
        result = em.filter(votes)
        result.kept.to_parquet(out / "kept.parquet")
        kept = len(result.kept)
    else:
        import dask

        client = cluster = None
        if mode == "dask-cluster":
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
            config = {}
        else:
            config = {"scheduler": "threads", "num_workers": 2}
        with dask.config.set(config):
            votes = cm.load_votes(path)  # lazy: nothing read yet
            t_load = time.perf_counter() - t0
            em = cm.TwoTypeEM(random_seed=0).fit(votes, mu=mu)
            users = em.users_
            t_fit = time.perf_counter() - t0 - t_load
            summary = dask_backend.write_kept(em.filter(votes), out / "kept")
            kept = summary["votes_kept_written"]
        if client is not None:
            client.close()
            cluster.close()
    total = time.perf_counter() - t0
    if spec.get("save_users"):
        users.to_parquet(out / "users.parquet")
    import resource

    return {
        "seconds": total,
        "fit_seconds": t_load + t_fit,
        "votes": int(em.n_votes_),
        "users": len(users),
        "pi": float(em.params_["pi"]),
        "kept": int(kept),
        "passes": getattr(em, "n_passes_", None),
        "self_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except OSError:
            pass
        todo.extend(parents.get(pid, []))
    return total


def run(spec: dict, limit: int | None, timeout: float) -> dict:
    """Run one path in a child process under the watchdog."""
    Path(spec["out"]).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak, killed = 0, None
    while proc.poll() is None:
        rss = _tree_rss(proc.pid)
        peak = max(peak, rss)
        if limit is not None and rss > limit:
            killed = f"killed above the memory limit (tree RSS {rss / GIB:.2f} GiB > {limit / GIB:.2f} GiB)"
        elif time.perf_counter() - t0 > timeout:
            killed = f"killed after the {timeout:.0f} s timeout"
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(POLL)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    row = {"wall": wall, "peak": peak, "status": "ok"}
    if killed:
        row["status"] = killed
    elif proc.returncode != 0:
        row["status"] = f"failed (exit {proc.returncode}): " + (err.strip().splitlines() or ["?"])[-1][:120]
    else:
        row.update(json.loads(out.strip().splitlines()[-1]))
        row["peak"] = max(peak, row["self_maxrss"])
    return row


# --------------------------------------------------------------------------- report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--votes", type=int, default=10_000_000, help="votes of the side-by-side comparison")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--big-votes", type=int, default=64_000_000, help="votes of the larger-than-memory run")
    ap.add_argument("--big-users", type=int, default=500_000)
    ap.add_argument("--limit-gib", type=float, default=2.0, help="memory limit of the larger-than-memory run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per path")
    ap.add_argument("--workdir", default=None, help="where the Parquet files go (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--skip-cluster", action="store_true", help="leave out the LocalCluster row")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    import dask
    import pandas as pd

    import comparemode

    print("Machine")
    print(f"  CPU count {os.cpu_count()}; {platform.platform()}; Python {platform.python_version()}")
    print(f"  comparemode {comparemode.__version__}; pandas {pd.__version__}; dask {dask.__version__}")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="comparemode-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    limit = int(args.limit_gib * GIB)
    try:
        small = work / "votes-small"
        big = work / "votes-big"
        for folder in (small, big):
            shutil.rmtree(folder, ignore_errors=True)
        g1 = generate(small, args.votes, args.users, args.seed, conversation=False)
        print(f"  generated {g1['votes']:,} votes ({args.users:,} users drawn per vote) in {g1['files']} files, "
              f"{g1['bytes'] / GIB:.2f} GiB on disk, in {g1['seconds']:.1f}s")
        g2 = generate(big, args.big_votes, args.big_users, args.seed + 1, conversation=True)
        print(f"  generated {g2['votes']:,} votes ({args.big_users:,} users, a 64-character conversation id per vote) in "
              f"{g2['files']} files, {g2['bytes'] / GIB:.2f} GiB on disk ({g2['bytes'] / limit:.2f} x the "
              f"{args.limit_gib:g} GiB limit), in {g2['seconds']:.1f}s")
        if g2["bytes"] < 2 * limit:
            print("  WARNING: the larger-than-memory files are less than twice the limit; raise --big-votes")

        plan = [
            ("a. pandas: read_parquet, fit, filter, to_parquet", "pandas", small, g1, None),
            ("b. Dask, local threaded scheduler (2 threads)", "dask-local", small, g1, None),
        ]
        if not args.skip_cluster:
            plan.append(("c. Dask, LocalCluster (2 worker processes)", "dask-cluster", small, g1, None))
        plan += [
            ("d. pandas: read_parquet, fit, filter, to_parquet", "pandas", big, g2, limit),
            ("e. Dask, local threaded scheduler (2 threads)", "dask-local", big, g2, limit),
        ]
        rows = []
        for i, (label, mode, data, gen, lim) in enumerate(plan):
            spec = {"data": str(data), "out": str(work / f"out-{i}"), "path": mode, "save_users": data == small}
            shutil.rmtree(spec["out"], ignore_errors=True)
            print(f"  running {label} on {gen['votes']:,} votes ...", flush=True)
            row = run(spec, lim, args.timeout)
            row.update(label=label, data=gen, limit=lim, out=spec["out"])
            rows.append(row)

        print()
        print("Per-user aggregation, EM fit and filter (kept votes written as Parquet); peak = resident memory of the")
        print("child's process tree (sampled every 20 ms, and the child's own maximum), limit enforced by killing the tree")
        header = f"  {'path':<52} {'votes':>12} {'on disk':>9} {'limit':>9} {'wall s':>8} {'peak RSS':>9}  result"
        print(header)
        print("  " + "-" * (len(header) + 30))
        for r in rows:
            lim = f"{r['limit'] / GIB:.2f} GiB" if r["limit"] else "none"
            if r["status"] == "ok":
                result = (f"ok: {r['users']:,} users, pi = {r['pi']:.4f}, {r['kept']:,} votes kept"
                          + (f", {r['passes']} pass(es) for the fit" if r.get("passes") else ""))
            else:
                result = r["status"]
            print(f"  {r['label']:<52} {r['data']['votes']:>12,} {r['data']['bytes'] / GIB:>5.2f} GiB {lim:>9} "
                  f"{r['wall']:>8.1f} {r['peak'] / GIB:>5.2f} GiB  {result}")

        print()
        print("Checks")
        base = rows[0]
        ok_all = True
        if base["status"] == "ok":
            ref = pd.read_parquet(Path(base["out"]) / "users.parquet")
            for r in rows[1 : len(plan) - 2]:
                if r["status"] != "ok":
                    print(f"  {r['label']}: did not complete")
                    ok_all = False
                    continue
                got = pd.read_parquet(Path(r["out"]) / "users.parquet")
                try:
                    pd.testing.assert_frame_equal(got, ref, check_exact=True)
                    same = True
                except AssertionError:
                    same = False
                ok_all &= same and r["kept"] == base["kept"]
                print(f"  {r['label'].split(',')[0]} vs pandas at {base['data']['votes']:,} votes: per-user table identical "
                      f"(assert_frame_equal, check_exact=True): {'yes' if same else 'NO'}; same votes kept: "
                      f"{'yes' if r['kept'] == base['kept'] else 'NO'} ({r['kept']:,})")
        big_pandas, big_dask = rows[-2], rows[-1]
        refused = big_pandas["status"] != "ok"
        done = big_dask["status"] == "ok" and big_dask["peak"] <= limit
        print(f"  files {g2['bytes'] / GIB:.2f} GiB >= 2 x limit {args.limit_gib:g} GiB: {'PASS' if g2['bytes'] >= 2 * limit else 'FAIL'}")
        print(f"  pandas path fails cleanly at that size: {'PASS' if refused else 'FAIL'} ({big_pandas['status']})")
        print(f"  Dask path completes within the limit: {'PASS' if done else 'FAIL'} "
              f"(peak {big_dask['peak'] / GIB:.2f} GiB of {args.limit_gib:g} GiB)")
        return 0 if (ok_all and refused and done) else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"  files kept in {work}")


if __name__ == "__main__":
    sys.exit(main())
