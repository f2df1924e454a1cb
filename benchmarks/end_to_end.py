"""End to end: ``comparemode run`` on a large votes file against polars and DuckDB (issue 16).

At the default size, 10,000,000 votes from 1,000,000 users (10 per user), two models
``model_x`` and ``model_y``, the script

1. simulates the votes with the package's own simulator, ``comparemode.simulate_votes(
   n_users, votes_per_user, mu=0.7, random_seed=--seed)`` (pi = 0.6, position-biased careless
   users, ties; user ids are the simulator's zero-padded strings, ``u000000`` ... ``u999999``),
   keeps the canonical columns ``user, model_a, model_b, winner`` and writes them to
   ``votes.parquet`` (pandas/pyarrow, snappy) and ``votes.csv`` in a temporary directory. The
   simulator takes about 12 s and 2.4 GB at 10M votes (2 cores), so numpy's generator is not
   needed.
   When ``--votes`` is not a multiple of ``--users`` each user gets ``ceil(votes / users)``
   votes and the first ``--votes`` rows of the (shuffled) table are kept;
2. runs the package once on the Parquet file, untimed in the table (a warm-up: numba compiles
   a kernel on the first call after an install or a change of its code and keeps it in its
   on-disk cache, so only a first run pays; its CPU is printed above the table), then runs,
   each as a whole child process, side by side on the same files, ``--repeat`` (3) rounds of
   every command once (so that drift on a shared machine reaches every command alike; one run
   varies by 10-20% in CPU, most of it system time: the kernel zeroing fresh pages):

   - ``comparemode run FILE --mu model_x=0.7 --out DIR --quiet`` on the Parquet file and on
     the CSV file, with the default output format (``auto``: CSV up to 1,000,000 votes,
     Parquet above, so at the default size the two package rows of an input run the same
     command twice) and with ``--format parquet``;
   - polars (``scan_parquet`` / ``scan_csv``, ``group_by("user")``) and DuckDB
     (``read_parquet`` / ``read_csv``, ``GROUP BY "user"``) computing the per-user statistics
     the package's two-model fit reads (``models/stats.py`` ``aggregate``: votes ``n``, ties
     ``t``, decisive picks of the answer shown first ``f``, decisive picks of ``model_x``, the
     model ``--mu`` names, ``k``) and writing that table (one row per user) to Parquet. They do
     not validate the votes or fit anything: they are the floor of reading the file and one
     group-by;
3. runs the package's pipeline once more in a child, in process, for a stage-by-stage
   breakdown (see below), and once under ``cProfile`` for the hotspots;
4. checks that polars, DuckDB and the package (from the Parquet and from the CSV file) give
   the same per-user counts (``n_votes, n_ties, n_first, n_stronger`` of the package's
   ``users`` table).

Measured per child: CPU seconds (user + system of the child and its threads, from
``os.wait4``'s resource usage), wall seconds, and peak resident memory (``ru_maxrss`` of the
child). The parent process imports only the standard library and never holds the votes: on
Linux a child's ``ru_maxrss`` starts at the RSS of the parent it was forked from (the old
memory map's high-water mark is carried over at ``exec``), so a large parent would inflate
every child's peak. The simulation and every check run in children for that reason.

It prints one table (per command the median over the rounds of CPU s, with its range and its
system part, of wall s and of peak MiB, with its range, and the ratios of the medians to
polars' on the same input file), the issue's acceptance checks with PASS or FAIL (the package's run with the
default output format: on Parquet within 3x polars' CPU, goal 2x; peak memory within 2x
polars'; on CSV within 3x polars' CPU on the CSV file), the breakdown, and the cProfile
hotspots.

The breakdown: ``comparemode.cli.main`` runs the same command in a child process with the
CLI's own stage functions wrapped by timers (``time.process_time`` and ``time.perf_counter``):
reading (``_load_votes_arg``, i.e. ``load_votes``), the fit (``_fit_em``, with the counting,
encoding, aggregation, EM and misfit checks inside ``TwoTypeEM.fit`` as sub-stages), the
filter (``filter_fdr``), the input checksum, the kept and dropped votes files (``_write_side``:
each side selected a row group at a time and written, the selection included; the layout of
the rows ``_votes_out`` apart), the other tables (``write_table``) and the commit. Each row
is *exclusive* time (a stage's time minus the wrapped stages called inside it), so the rows
add up to the child's total; what is not inside any wrapped stage is the row of the nearest
wrapped caller, and interpreter start-up and exit is the child's CPU
from ``wait4`` minus everything measured inside it. This runs the CLI's real code path with
negligible overhead (one timer pair per call of a few dozen calls), which is why it is used
for the breakdown instead of cProfile: cProfile's per-call overhead inflates Python-heavy
stages (validation, table building) against numpy-heavy ones. cProfile (``--profile-top``,
wall clock) is run apart, for the function-level hotspots.

Run from the repository root (``.venv/bin/pip install -e '.[bench]'`` installs polars and
DuckDB)::

    .venv/bin/python benchmarks/end_to_end.py                              # 10M votes: minutes
    .venv/bin/python benchmarks/end_to_end.py --votes 200000 --users 20000  # quick check, ~30 s

``--keep DIR`` writes the votes files and every run's output to DIR and keeps them (a later
run with the same ``--votes``, ``--users`` and ``--seed`` reuses the votes files);
``--no-profile`` skips the cProfile run; progress lines go to stderr unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_VOTES = 10_000_000
DEFAULT_USERS = 1_000_000
MODELS = ("model_x", "model_y")
MU_MODEL, MU_VALUE = "model_x", 0.7
#: Acceptance checks of issue 16: the package's run on Parquet within this many times polars'
#: CPU (and the goal), its peak memory within this many times polars', on CSV within this many
#: times polars' CPU on the CSV file.
TARGET_CPU, GOAL_CPU, TARGET_MEMORY, TARGET_CSV_CPU = 3.0, 2.0, 2.0, 3.0
TIE_VALUES = ("tie", "tie (bothbad)")
COUNT_COLUMNS = ("n_votes", "n_ties", "n_first", "n_stronger")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


# --------------------------------------------------------------------------- children
# Each child prints one JSON line last on its stdout; the parent reads it.


def _emit(obj) -> None:
    print(json.dumps(obj), flush=True)


def child_write(n_votes: int, n_users: int, seed: int, directory: str) -> None:
    """Simulate the votes and write votes.parquet and votes.csv (canonical columns)."""
    import comparemode

    per_user = math.ceil(n_votes / n_users)
    t0, w0 = time.process_time(), time.perf_counter()
    sim = comparemode.simulate_votes(n_users=n_users, votes_per_user=per_user, mu=MU_VALUE, models=MODELS, random_seed=seed)
    votes = sim.votes[["user", "model_a", "model_b", "winner"]]
    del sim
    if len(votes) > n_votes:
        votes = votes.iloc[:n_votes]
    t1, w1 = time.process_time(), time.perf_counter()
    pq, csv = os.path.join(directory, "votes.parquet"), os.path.join(directory, "votes.csv")
    votes.to_parquet(pq, index=False)
    t2, w2 = time.process_time(), time.perf_counter()
    votes.to_csv(csv, index=False)
    t3, w3 = time.process_time(), time.perf_counter()
    _emit({
        "rows": len(votes), "users": int(votes["user"].nunique()), "ties": int(votes["winner"].isin(TIE_VALUES).sum()),
        "simulate_cpu": t1 - t0, "simulate_wall": w1 - w0, "parquet_cpu": t2 - t1, "parquet_wall": w2 - w1,
        "csv_cpu": t3 - t2, "csv_wall": w3 - w2,
        "parquet_bytes": os.path.getsize(pq), "csv_bytes": os.path.getsize(csv),
    })


def child_polars(path: str, out: str) -> None:
    """Per-user n, t, f, k with polars (lazy scan, one group-by), written to Parquet."""
    import polars as pl

    lf = pl.scan_parquet(path) if path.endswith(".parquet") else pl.scan_csv(path)
    w = pl.col("winner")
    table = lf.group_by("user").agg(
        n_votes=pl.len(),
        n_ties=w.is_in(list(TIE_VALUES)).sum(),
        n_first=(w == "model_a").sum(),
        n_stronger=(((w == "model_a") & (pl.col("model_a") == MU_MODEL)) | ((w == "model_b") & (pl.col("model_b") == MU_MODEL))).sum(),
    ).collect()
    table.write_parquet(out)
    _emit({"users": table.height, **{c: int(table[c].sum()) for c in COUNT_COLUMNS}})


def child_duckdb(path: str, out: str) -> None:
    """Per-user n, t, f, k with DuckDB (one GROUP BY), written to Parquet."""
    import duckdb

    lit = lambda s: "'" + str(s).replace("'", "''") + "'"  # noqa: E731
    source = f"read_parquet({lit(path)})" if path.endswith(".parquet") else f"read_csv({lit(path)}, header = true)"
    ties = ", ".join(lit(t) for t in TIE_VALUES)
    query = (
        'SELECT "user", count(*) AS n_votes, '
        f"count(*) FILTER (WHERE winner IN ({ties})) AS n_ties, "
        "count(*) FILTER (WHERE winner = 'model_a') AS n_first, "
        f"count(*) FILTER (WHERE (winner = 'model_a' AND model_a = {lit(MU_MODEL)}) OR (winner = 'model_b' AND model_b = {lit(MU_MODEL)})) AS n_stronger "
        f'FROM {source} GROUP BY "user"'
    )
    con = duckdb.connect()
    con.execute(f"COPY ({query}) TO {lit(out)} (FORMAT parquet)")
    sums = con.execute(f"SELECT count(*), {', '.join(f'sum({c})' for c in COUNT_COLUMNS)} FROM read_parquet({lit(out)})").fetchone()
    _emit({"users": int(sums[0]), **{c: int(v) for c, v in zip(COUNT_COLUMNS, sums[1:])}})


def package_argv(path: str, out: str, fmt: str | None) -> list[str]:
    return ["run", path, "--mu", f"{MU_MODEL}={MU_VALUE:g}", "--out", out, "--quiet"] + (["--format", fmt] if fmt else [])


class Stages:
    """Exclusive CPU and wall time per stage, keyed by the path of wrapped stages it ran in."""

    def __init__(self):
        self.rows: dict[tuple, list] = {}  # path -> [cpu, wall, calls], in order of first entry
        self.stack: list[list] = []  # per open stage: [label, cpu of wrapped callees, wall of wrapped callees]

    def _add(self, path, cpu, wall):
        row = self.rows.setdefault(path, [0.0, 0.0, 0])
        row[0] += cpu
        row[1] += wall
        row[2] += 1

    def wrap(self, label, fn):
        import functools

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            path = tuple(s[0] for s in self.stack) + (label,)
            self.rows.setdefault(path, [0.0, 0.0, 0])  # the order of first entry
            self.stack.append([label, 0.0, 0.0])
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dc, dw = time.process_time() - c0, time.perf_counter() - w0
                _, kc, kw = self.stack.pop()
                self._add(path, dc - kc, dw - kw)
                if self.stack:
                    self.stack[-1][1] += dc
                    self.stack[-1][2] += dw

        return timed

    def patch(self, owner, name, label):
        setattr(owner, name, self.wrap(label, getattr(owner, name)))


def child_breakdown(path: str, out: str) -> None:
    """The package's run in process, its stages timed (exclusive times; see the docstring)."""
    c0, w0 = time.process_time(), time.perf_counter()
    import comparemode.cli as cli
    import comparemode.counting as counting
    import comparemode.inference.em as em
    from comparemode._output import ResultSet

    c1, w1 = time.process_time(), time.perf_counter()
    st = Stages()
    st._add(("import comparemode.cli",), c1 - c0, w1 - w0)
    for owner, name, label in [
        (cli, "main", "command line: parse, logging, signals, private temp dir"),
        (cli, "_run", "_run's own work: users and models counted, summary.json"),
        (cli, "_load_votes_arg", "read + validate the votes (load_votes)"),
        (cli, "_fit_em", "fit: starts, EM iterations, the rest (_fit_em)"),
        (em, "count_and_resolve", "validate + resolve reference + count (count_and_resolve)"),
        (counting, "validate_votes", "validate the votes again (validate_votes)"),
        (counting, "count_with", "count the votes (count_votes)"),
        (em, "encode_counts", "encode the counts (encode_counts)"),
        (em, "aggregate", "per-user statistics (aggregate)"),
        (em, "patterns_for", "count patterns (patterns_for)"),
        (em.TwoTypeEM, "_run_checks", "misfit checks (_run_checks)"),
        (em.TwoTypeEM, "_fit_alternatives", "alternative models (_fit_alternatives)"),
        (em.TwoTypeEM, "_users_table", "users table (_users_table)"),
        (cli, "filter_fdr", "filter (filter_fdr)"),
        (cli, "_data_integrity", "input checksum (_data_integrity)"),
        (cli, "_write_side", "kept/dropped votes files: select and write (_write_side)"),
        (cli, "_votes_out", "kept/dropped votes in the input layout (_votes_out)"),
        (cli, "write_table", "write the tables (write_table)"),
        (ResultSet, "commit", "commit the results (ResultSet.commit)"),
    ]:
        st.patch(owner, name, label)
    rc = cli.main(package_argv(path, out, None))
    c2, w2 = time.process_time(), time.perf_counter()
    _emit({"rc": rc, "measured_cpu": c2 - c0, "measured_wall": w2 - w0,
           "stages": [[list(p), *v] for p, v in st.rows.items() if v[2] or p == ("import comparemode.cli",)]})


def _short(path: str) -> str:
    for root in (REPO + os.sep, "site-packages" + os.sep):
        if root in path:
            return path.split(root, 1)[1]
    return path


def child_profile(path: str, out: str, top: int) -> None:
    """cProfile of ``comparemode.cli.main`` on the same command; top entries by cumulative
    and by own time (the dispatch chain main/run/_run left out of the cumulative list)."""
    import cProfile
    import pstats

    import comparemode.cli as cli

    prof = cProfile.Profile()
    prof.enable()
    rc = cli.main(package_argv(path, out, None))
    prof.disable()
    stats = pstats.Stats(prof).stats
    rows = []
    for (file, line, name), (_cc, ncalls, tt, ct, _callers) in stats.items():
        where = f"{_short(file)}:{line}({name})" if line else name
        rows.append({"function": where, "calls": ncalls, "own": tt, "cumulative": ct})
    dispatch = {f"{_short(cli.__file__)}:{cli.main.__code__.co_firstlineno}(main)",
                f"{_short(cli.__file__)}:{cli.run.__code__.co_firstlineno}(run)",
                f"{_short(cli.__file__)}:{cli._run.__code__.co_firstlineno}(_run)"}
    skip = lambda r: r["function"] in dispatch or r["function"].startswith(("<", "{method 'disable'")) or "contextlib.py" in r["function"]  # noqa: E731
    total = max((r["cumulative"] for r in rows if r["function"] in dispatch), default=float("nan"))
    cumulative = sorted((r for r in rows if not skip(r)), key=lambda r: -r["cumulative"])[:top]
    own = sorted(rows, key=lambda r: -r["own"])[:top]
    _emit({"rc": rc, "total": total, "cumulative": cumulative, "own": own})


def child_verify(spec: str) -> None:
    """Whether every table in ``spec`` (name -> Parquet or CSV path) has the same per-user
    counts as the first one."""
    import pandas as pd

    def read(p):
        cols = ["user", *COUNT_COLUMNS]
        t = pd.read_parquet(p, columns=cols) if p.endswith(".parquet") else pd.read_csv(p, usecols=cols, dtype={"user": str})
        return t.astype({"user": str, **{c: "int64" for c in COUNT_COLUMNS}}).sort_values("user").reset_index(drop=True)

    files = json.loads(spec)
    names = list(files)
    first = read(files[names[0]])
    out = {}
    for name in names[1:]:
        other = read(files[name])
        if len(other) != len(first):
            out[name] = f"DIFFERENT: {len(other):,} users against {len(first):,}"
        elif not first.equals(other):
            bad = (first != other).any(axis=1)
            out[name] = f"DIFFERENT: {int(bad.sum()):,} users differ, e.g. {first[bad].head(1).to_dict('records')} against {other[bad].head(1).to_dict('records')}"
        else:
            out[name] = "same"
    _emit({"reference": names[0], "users": len(first), "result": out})


CHILDREN = {"write": child_write, "polars": child_polars, "duckdb": child_duckdb,
            "breakdown": child_breakdown, "profile": child_profile, "verify": child_verify}


# --------------------------------------------------------------------------- the parent


def measure(cmd: list[str], env=None) -> dict:
    """Run ``cmd`` as a child; its CPU (user + sys), wall, peak RSS, exit code and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        w0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - w0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    lines = [s for s in stdout.splitlines() if s.strip()]
    result = None
    if lines:
        try:
            result = json.loads(lines[-1])
        except ValueError:
            pass
    return {"cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime, "sys": ru.ru_stime, "wall": wall,
            "peak_mib": ru.ru_maxrss / 1024.0, "rc": proc.returncode, "stdout": stdout, "stderr": stderr, "json": result}


def _medians(rs: list[dict]) -> dict:
    """The median CPU, wall and peak of repeated runs of one command (each its own median),
    with the smallest and largest of each: one run on a shared machine varies by 10-20%."""
    out = {}
    for f in ("cpu", "user", "sys", "wall", "peak_mib"):
        values = sorted(r[f] for r in rs)
        out[f] = statistics.median(values)
        out[f + "_range"] = (values[0], values[-1])
    out["n"] = len(rs)
    return out


def _child_cmd(kind: str, *args) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--child", kind, *map(str, args)]


def _package_cmd(path: str, out: str, fmt: str | None) -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "comparemode")
    head = [exe] if os.path.exists(exe) else [sys.executable, "-m", "comparemode.cli"]
    return head + package_argv(path, out, fmt)


def _fail(what: str, r: dict) -> None:
    sys.stderr.write(f"end_to_end: {what} failed (exit status {r['rc']}):\n{r['stderr'][-4000:]}{r['stdout'][-2000:]}\n")
    sys.exit(1)


def _fresh(path: str) -> str:
    if os.path.exists(path):
        shutil.rmtree(path)
    return path


def _mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes / 2**10:,.0f} KiB"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}", f"{os.cpu_count()} cores"]
    for pkg in ("comparemode", "pandas", "pyarrow", "numpy", "polars", "duckdb"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg} not installed")
    return ", ".join(parts)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        kind, rest = argv[1], argv[2:]
        fn = CHILDREN[kind]
        if kind == "write":
            fn(int(rest[0]), int(rest[1]), int(rest[2]), rest[3])
        elif kind == "profile":
            fn(rest[0], rest[1], int(rest[2]))
        else:
            fn(*rest)
        return 0

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--votes", type=int, default=DEFAULT_VOTES, help=f"votes (default: {DEFAULT_VOTES:,})")
    p.add_argument("--users", type=int, default=None, help=f"users (default: votes / 10, {DEFAULT_USERS:,} at the default size)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation (default: 0)")
    p.add_argument("--keep", metavar="DIR", help="write the votes files and the runs' outputs to DIR and keep them")
    p.add_argument("--profile-top", type=int, default=10, metavar="N", help="cProfile entries to print (default: 10)")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--repeat", type=int, default=3, metavar="R",
                   help="rounds of the timed runs; the table gives each run's median and range (default: 3)")
    args = p.parse_args(argv)
    n_users = args.users if args.users is not None else max(1, args.votes // 10)
    if args.repeat < 1:
        p.error("give --repeat >= 1")
    if args.votes < 1 or n_users < 1 or n_users > args.votes:
        p.error("give --votes >= --users >= 1")
    start = time.perf_counter()

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"[end_to_end {time.perf_counter() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    for mod in ("polars", "duckdb"):
        if subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True).returncode:
            sys.stderr.write(f"end_to_end: {mod} is not installed: .venv/bin/pip install -e '.[bench]'\n")
            return 1
    work = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="comparemode-e2e-")
    os.makedirs(work, exist_ok=True)
    try:
        return _bench(args, n_users, work, say)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _bench(args, n_users: int, work: str, say) -> int:
    pq, csv = os.path.join(work, "votes.parquet"), os.path.join(work, "votes.csv")
    meta_path = os.path.join(work, "votes.json")
    wanted = {"votes": args.votes, "users": n_users, "seed": args.seed}
    data = None
    if os.path.exists(meta_path) and os.path.exists(pq) and os.path.exists(csv):
        with open(meta_path) as fh:
            saved = json.load(fh)
        if {k: saved.get(k) for k in wanted} == wanted:
            data = saved["data"]
            say(f"reusing the votes files in {work}")
    if data is None:
        say(f"simulating {args.votes:,} votes from {n_users:,} users (seed {args.seed}) and writing Parquet and CSV to {work}")
        r = measure(_child_cmd("write", args.votes, n_users, args.seed, work))
        if r["rc"] or r["json"] is None:
            _fail("writing the votes", r)
        data = r["json"]
        with open(meta_path, "w") as fh:
            json.dump({**wanted, "data": data}, fh)
        say(f"simulated in {data['simulate_wall']:.1f} s, Parquet written in {data['parquet_wall']:.1f} s, CSV in "
            f"{data['csv_wall']:.1f} s (writer child: peak {r['peak_mib']:,.0f} MiB)")
    say(f"{data['rows']:,} votes, {data['users']:,} users, {data['ties']:,} ties; votes.parquet {_mib(data['parquet_bytes'])}, "
        f"votes.csv {_mib(data['csv_bytes'])}")

    auto = "parquet" if args.votes > 1_000_000 else "csv"  # comparemode.cli.PARQUET_ABOVE
    runs = [  # (key, row label, command)
        ("pkg_pq", f"package run, Parquet in (default output: {auto})", lambda o: _package_cmd(pq, o, None)),
        ("pkg_pq_pq", "package run, Parquet in, --format parquet", lambda o: _package_cmd(pq, o, "parquet")),
        ("pkg_csv", f"package run, CSV in (default output: {auto})", lambda o: _package_cmd(csv, o, None)),
        ("pkg_csv_pq", "package run, CSV in, --format parquet", lambda o: _package_cmd(csv, o, "parquet")),
        ("polars_pq", "polars count, Parquet in", lambda o: _child_cmd("polars", pq, o)),
        ("polars_csv", "polars count, CSV in", lambda o: _child_cmd("polars", csv, o)),
        ("duckdb_pq", "duckdb count, Parquet in", lambda o: _child_cmd("duckdb", pq, o)),
        ("duckdb_csv", "duckdb count, CSV in", lambda o: _child_cmd("duckdb", csv, o)),
    ]
    say("warm-up: one untimed package run on the Parquet file (numba's on-disk cache filled where it lacks a kernel) ...")
    warm = measure(_package_cmd(pq, _fresh(os.path.join(work, "out-warmup")), None))
    if warm["rc"]:
        _fail("the warm-up run", warm)
    say(f"warm-up: CPU {warm['cpu']:.2f} s, wall {warm['wall']:.2f} s")
    res, outs = {"warmup": warm}, {}
    samples = {key: [] for key, _, _ in runs}
    for round_ in range(args.repeat):  # round by round, every run once a round: drift on the machine reaches all alike
        for key, label, cmd in runs:
            out = _fresh(os.path.join(work, f"out-{key}"))
            if key.startswith(("polars", "duckdb")):
                out = out + ".parquet"
                if os.path.exists(out):
                    os.remove(out)
            say(f"{label} (round {round_ + 1} of {args.repeat}) ...")
            r = measure(cmd(out))
            if r["rc"]:
                _fail(label, r)
            samples[key].append(r)
            outs[key] = out  # the last round's outputs are the ones checked below
            say(f"{label}: CPU {r['cpu']:.2f} s, wall {r['wall']:.2f} s, peak {r['peak_mib']:,.0f} MiB")
    for key in samples:
        res[key] = _medians(samples[key])

    say("breakdown: the package's run in process, stage by stage ...")
    bd = measure(_child_cmd("breakdown", pq, _fresh(os.path.join(work, "out-breakdown"))))
    if bd["rc"] or bd["json"] is None or bd["json"]["rc"]:
        _fail("the breakdown run", bd)
    prof = None
    if not args.no_profile:
        say("cProfile of the package's run ...")
        prof = measure(_child_cmd("profile", pq, _fresh(os.path.join(work, "out-profile")), args.profile_top))
        if prof["rc"] or prof["json"] is None or prof["json"]["rc"]:
            _fail("the cProfile run", prof)

    say("checking that every run gives the same per-user counts ...")
    users_file = lambda key: os.path.join(outs[key], f"users.{auto}")  # noqa: E731
    spec = {"package (Parquet in)": users_file("pkg_pq"), "package (CSV in)": users_file("pkg_csv"),
            "package (Parquet in, --format parquet)": os.path.join(outs["pkg_pq_pq"], "users.parquet"),
            "polars (Parquet)": outs["polars_pq"], "polars (CSV)": outs["polars_csv"],
            "duckdb (Parquet)": outs["duckdb_pq"], "duckdb (CSV)": outs["duckdb_csv"]}
    ver = measure(_child_cmd("verify", json.dumps(spec)))
    if ver["rc"] or ver["json"] is None:
        _fail("the check of the counts", ver)
    _report(args, n_users, data, auto, runs, res, bd, prof, ver["json"])
    return 0


def _report(args, n_users, data, auto, runs, res, bd, prof, ver) -> None:
    try:  # run as a script from the repository root: benchmarks/ is on sys.path
        from _table import print_table
    except ImportError:  # pragma: no cover
        from benchmarks._table import print_table

    print(f"End to end: {data['rows']:,} votes from {data['users']:,} users (seed {args.seed}), two models, "
          f"--mu {MU_MODEL}={MU_VALUE:g}; votes.parquet {_mib(data['parquet_bytes'])}, votes.csv {_mib(data['csv_bytes'])}")
    print(_versions())
    print(f"Each row is one command run as a child process {res['pkg_pq']['n']} times, round by round (every command once a round): "
          "the median and the range of CPU = user + system seconds of the child (all its threads) and of peak = its ru_maxrss; "
          "the ratios are of the medians.")
    print(f"Warm-up before the table (untimed): the package's run on the Parquet file, CPU {res['warmup']['cpu']:.2f} s "
          "(more than the table's row only where numba compiled a kernel its on-disk cache lacked: a first run after install)")
    print()
    base = {"pq": res["polars_pq"], "csv": res["polars_csv"]}
    rows = []
    for key, label, _ in runs:
        r = res[key]
        b = base["csv" if "csv" in key else "pq"]
        rows.append([label, f"{r['cpu']:.2f}", "{:.2f}-{:.2f}".format(*r["cpu_range"]), f"{r['sys']:.2f}", f"{r['wall']:.2f}",
                     f"{r['peak_mib']:,.0f}", "{:,.0f}-{:,.0f}".format(*r["peak_mib_range"]),
                     f"{r['cpu'] / b['cpu']:.2f}x", f"{r['peak_mib'] / b['peak_mib']:.2f}x"])
    print_table(["run", "CPU s", "CPU range", "of it sys", "wall s", "peak MiB", "peak range", "CPU / polars (same input)",
                 "peak / polars (same input)"], rows)

    print()
    print("Acceptance checks (issue 16; the package's run with the default output format):")
    cpu_pq = res["pkg_pq"]["cpu"] / res["polars_pq"]["cpu"]
    mem_pq = res["pkg_pq"]["peak_mib"] / res["polars_pq"]["peak_mib"]
    cpu_csv = res["pkg_csv"]["cpu"] / res["polars_csv"]["cpu"]
    also = lambda k, b, f: f"; with --format parquet {res[k][f] / res[b][f]:.2f}x"  # noqa: E731
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    print(f"  {verdict(cpu_pq <= TARGET_CPU)}  Parquet in: CPU within {TARGET_CPU:g}x polars': {cpu_pq:.2f}x "
          f"({res['pkg_pq']['cpu']:.2f} s against {res['polars_pq']['cpu']:.2f} s{also('pkg_pq_pq', 'polars_pq', 'cpu')})")
    print(f"  {verdict(cpu_pq <= GOAL_CPU)}  Parquet in: CPU within {GOAL_CPU:g}x polars' (the goal): {cpu_pq:.2f}x")
    print(f"  {verdict(mem_pq <= TARGET_MEMORY)}  Parquet in: peak memory within {TARGET_MEMORY:g}x polars': {mem_pq:.2f}x "
          f"({res['pkg_pq']['peak_mib']:,.0f} MiB against {res['polars_pq']['peak_mib']:,.0f} MiB{also('pkg_pq_pq', 'polars_pq', 'peak_mib')})")
    print(f"  {verdict(cpu_csv <= TARGET_CSV_CPU)}  CSV in: CPU within {TARGET_CSV_CPU:g}x polars' on the CSV file: {cpu_csv:.2f}x "
          f"({res['pkg_csv']['cpu']:.2f} s against {res['polars_csv']['cpu']:.2f} s{also('pkg_csv_pq', 'polars_csv', 'cpu')})")
    same = all(v == "same" for v in ver["result"].values())
    print(f"  {verdict(same)}  the same per-user counts (n_votes, n_ties, n_first, n_stronger of {ver['users']:,} users) "
          f"from every run as from {ver['reference']}" + ("" if same else ": " + "; ".join(f"{k}: {v}" for k, v in ver["result"].items() if v != "same")))

    b = bd["json"]
    total_cpu, total_wall = bd["cpu"], bd["wall"]
    print()
    print(f"Breakdown of the package's run (Parquet in, default output {auto}; comparemode.cli.main in a child with its stage "
          f"functions timed; exclusive times, indented under the stage that called them; child total CPU {total_cpu:.2f} s, "
          f"wall {total_wall:.2f} s, peak {bd['peak_mib']:,.0f} MiB):")
    rows = []
    for path, cpu, wall, calls in b["stages"]:
        rows.append(["  " * (len(path) - 1) + path[-1], f"{cpu:.2f}", f"{wall:.2f}", f"{100 * cpu / total_cpu:.1f}%", str(calls or 1)])
    rows.append(["interpreter start-up and exit (child total minus the above)", f"{total_cpu - b['measured_cpu']:.2f}",
                 f"{total_wall - b['measured_wall']:.2f}", f"{100 * (total_cpu - b['measured_cpu']) / total_cpu:.1f}%", ""])
    rows.append(["total (the child process)", f"{total_cpu:.2f}", f"{total_wall:.2f}", "100.0%", ""])
    print_table(["stage", "CPU s", "wall s", "share of CPU", "calls"], rows)

    if prof is not None:
        j = prof["json"]
        print()
        print(f"cProfile of the same run (wall-clock timer, profiler overhead included: main() took {j['total']:.2f} s "
              f"under the profiler; the child {prof['cpu']:.2f} s CPU). Top {len(j['cumulative'])} by cumulative time "
              "(the dispatch chain main/run/_run left out):")
        print_table(["function", "cumulative s", "own s", "calls"],
                    [[r["function"], f"{r['cumulative']:.2f}", f"{r['own']:.2f}", f"{r['calls']:,}"] for r in j["cumulative"]])
        print()
        print(f"Top {len(j['own'])} by own time (time in the function itself, callees excluded):")
        print_table(["function", "own s", "cumulative s", "calls"],
                    [[r["function"], f"{r['own']:.2f}", f"{r['cumulative']:.2f}", f"{r['calls']:,}"] for r in j["own"]])


if __name__ == "__main__":
    sys.exit(main())
