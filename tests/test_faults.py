"""Fault injection for the command line's output (issue 12).

Every test runs ``comparemode run`` (or ``report``) in its own process, makes something go
wrong at a chosen point (a full file system, a read-only one, SIGINT or SIGTERM at several
points, a second run on the same ``--out``, SIGKILL between two files) and then checks three
things: the exit status, the one-line message (never a traceback), and that ``--out`` holds
exactly one complete result set, the old one or the new one, whose manifest checks out and
whose rows add up (kept plus dropped equals the input), with nothing left beside it (no
staging directory, no lock, no private temporary directory).

A fault is injected by a small script that patches one function of the package and then calls
``comparemode.cli.main``; the patch sends the signal to its own process (or raises the
error), so each fault happens at a known point of the run.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import comparemode as cm
from comparemode._output import MANIFEST, read_results
from comparemode.errors import ResultSetError

ROOT = Path(__file__).resolve().parents[1]
N_USERS, N_VOTES = 120, 8


# --------------------------------------------------------------------------- helpers


@pytest.fixture()
def votes_file(tmp_path) -> Path:
    sim = cm.simulate_votes(n_users=N_USERS, votes_per_user=N_VOTES, random_seed=12)
    path = tmp_path / "votes.csv"
    sim.votes.to_csv(path, index=False)
    return path


def run_args(votes: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(votes), "--mu", "model_x=0.7", "--out", str(out), "--quiet", *extra]


PATCHED = r"""
import os, signal, sys, time, json
import comparemode
from comparemode import _output
POINT, ACTION = sys.argv[1], sys.argv[2]
argv = json.loads(sys.argv[3])

def fault():
    if ACTION in ("SIGINT", "SIGTERM", "SIGKILL"):
        os.kill(os.getpid(), getattr(signal, ACTION))
        time.sleep(0.5)  # the handler runs here
    elif ACTION == "ENOSPC":
        raise OSError(28, "No space left on device")
    elif ACTION == "HOLD":  # wait until the test creates the release file (or 120 s)
        print("HOLDING", flush=True)
        release, t0 = os.environ.get("RELEASE", "/nonexistent"), time.monotonic()
        while not os.path.exists(release) and time.monotonic() - t0 < 120:
            time.sleep(0.05)
    elif ACTION == "FOREIGN":  # another program writes results into --out meanwhile
        out = argv[argv.index("--out") + 1]
        os.makedirs(out, exist_ok=True)
        open(os.path.join(out, "users.csv"), "w").write("someone else's\n")

def before(obj, name):
    real = getattr(obj, name)
    def patched(*a, **k):
        fault()
        return real(*a, **k)
    setattr(obj, name, patched)

if POINT == "read":
    import comparemode.data as d
    before(d, "_read_file")
elif POINT == "fit":
    from comparemode.inference.em import TwoTypeEM
    before(TwoTypeEM, "fit")
elif POINT == "between-files":  # after users.csv, before kept_votes.csv
    real_write = _output.ResultSet.write
    def write(self, name, fn):
        if name == "kept_votes.csv":
            fault()
        return real_write(self, name, fn)
    _output.ResultSet.write = write
elif POINT == "commit":
    before(_output.ResultSet, "commit")
elif POINT == "swap":  # inside the swap: the signal must wait until the set is in place
    before(_output.ResultSet, "_swap")
elif POINT == "none":
    pass
from comparemode.cli import main
sys.exit(main(argv))
"""


def run_patched(point: str, action: str, argv: list[str], tmpdir: Path, wait=True, env=None, umask=None):
    tmpdir.mkdir(exist_ok=True)
    full_env = {**os.environ, "TMPDIR": str(tmpdir), **(env or {})}
    cmd = [sys.executable, "-c", PATCHED, point, action, json.dumps(argv)]
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=full_env, preexec_fn=preexec)
    if not wait:
        return proc
    stdout, stderr = proc.communicate(timeout=600)
    return proc.returncode, stdout, stderr


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())} if out.exists() else {}


def assert_one_complete_set(out: Path, n_rows: int = N_USERS * N_VOTES) -> dict:
    """The manifest checks out, nothing else is there, and the rows add up."""
    res = read_results(out)
    files = set(res["manifest"]["files"])
    assert {p.name for p in out.iterdir()} == files | {MANIFEST}
    users, kept, summary = res["users"], res["kept_votes"], res["summary"]
    line = summary["data_integrity"]
    assert line["input_rows"] == n_rows == int(users["n_votes"].sum())
    assert line["kept_rows"] + line["dropped_rows"] == n_rows
    assert line["kept_rows"] == len(kept) == int(users.loc[users["keep"], "n_votes"].sum())
    assert line["distinct_users"] == len(users) == users.index.nunique()
    assert set(kept["user"]) == set(users.index[users["keep"]])
    return res


def assert_nothing_left(tmp_path: Path, out: Path, tmpdir: Path | None = None) -> None:
    beside = sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))
    assert beside == [], f"left beside --out: {beside}"
    if tmpdir is not None:
        assert list(tmpdir.iterdir()) == [], f"left in the temporary directory: {list(tmpdir.iterdir())}"


def assert_one_line(stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("comparemode:")]
    assert lines, stderr[-3000:]
    for w in words:
        assert w.lower() in lines[-1].lower(), lines[-1]


@pytest.fixture()
def old_set(tmp_path, votes_file) -> tuple[Path, dict[str, bytes]]:
    """--out holding the complete results of a first run (seed 1)."""
    out = tmp_path / "out"
    code, _, err = run_patched("none", "none", run_args(votes_file, out, "--seed", "1"), tmp_path / "tmp0")
    assert code == 0, err[-3000:]
    assert_one_complete_set(out)
    return out, snapshot(out)


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize("point", ["read", "fit", "between-files", "commit"])
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_at_each_point_leaves_the_old_set(tmp_path, votes_file, old_set, point, sig):
    out, before = old_set
    tmpdir = tmp_path / "tmp"
    code, _, err = run_patched(point, sig, run_args(votes_file, out, "--seed", "2", "--force"), tmpdir)
    assert code == (130 if sig == "SIGINT" else 1), err[-3000:]
    assert_one_line(err, "interrupted (ctrl-c)" if sig == "SIGINT" else "terminated (sigterm)", "holds what it held before")
    assert snapshot(out) == before  # the old set, byte for byte
    assert_one_complete_set(out)
    assert_nothing_left(tmp_path, out, tmpdir)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_during_the_swap_waits_for_the_new_set(tmp_path, votes_file, old_set, sig):
    """A signal that arrives while the new set is moved into place is held until it is in
    place: the run then stops with the signal's status, and --out holds the new set whole."""
    out, before = old_set
    tmpdir = tmp_path / "tmp"
    code, _, err = run_patched("swap", sig, run_args(votes_file, out, "--seed", "2", "--force"), tmpdir)
    assert code == (130 if sig == "SIGINT" else 1), err[-3000:]
    assert_one_line(err, "written to")
    assert snapshot(out) != before
    res = assert_one_complete_set(out)
    assert res["summary"]["settings"]["random_seed"] == 2
    assert_nothing_left(tmp_path, out, tmpdir)


def test_sigterm_from_outside_mid_run(tmp_path, votes_file, old_set):
    """SIGTERM sent by another process while the run works (held at the fit)."""
    out, before = old_set
    tmpdir = tmp_path / "tmp"
    proc = run_patched("fit", "HOLD", run_args(votes_file, out, "--seed", "2", "--force"), tmpdir, wait=False)
    try:
        assert proc.stdout.readline().strip() == "HOLDING"
        assert any(p.name.startswith(".out.staging-") for p in tmp_path.iterdir())  # staged, not in place
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert_one_line(err, "terminated (sigterm)")
    assert snapshot(out) == before
    assert_nothing_left(tmp_path, out, tmpdir)


def test_killed_between_two_files(tmp_path, votes_file, old_set):
    """SIGKILL after users.csv and before kept_votes.csv: no handler runs, yet --out is the
    old set; what the killed run staged is removed by the next run on --out."""
    out, before = old_set
    code, _, _ = run_patched("between-files", "SIGKILL", run_args(votes_file, out, "--seed", "2", "--force"), tmp_path / "tmp")
    assert code == -signal.SIGKILL
    assert snapshot(out) == before
    assert_one_complete_set(out)
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert left and all(n.startswith(".out.staging-") or n == ".out.lock" for n in left), left
    code, _, err = run_patched("none", "none", run_args(votes_file, out, "--seed", "3", "--force"), tmp_path / "tmp2")
    assert code == 0, err[-3000:]
    assert assert_one_complete_set(out)["summary"]["settings"]["random_seed"] == 3
    assert_nothing_left(tmp_path, out, tmp_path / "tmp2")


# --------------------------------------------------------------------------- the disk


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture()
def small_fs(tmp_path):
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "400k"):
        pytest.skip("a full file system needs a small tmpfs, which only root can mount here (not root, or mount refused)")
    yield mnt
    _umount(mnt)


def test_full_file_system_on_rerun_leaves_the_old_set(tmp_path, small_fs):
    """A real full disk (a 400 KB tmpfs): the first, small run fits; a rerun whose results do
    not fit fails with one line and exit 1, and the first run's set is untouched."""
    small = cm.simulate_votes(n_users=60, votes_per_user=6, random_seed=1)
    big = cm.simulate_votes(n_users=1500, votes_per_user=10, random_seed=2)
    small.votes.to_csv(tmp_path / "small.csv", index=False)
    big.votes.to_csv(tmp_path / "big.csv", index=False)
    out = small_fs / "out"
    code, _, err = run_patched("none", "none", run_args(tmp_path / "small.csv", out), tmp_path / "tmp0")
    assert code == 0, err[-3000:]
    before = snapshot(out)
    code, _, err = run_patched("none", "none", run_args(tmp_path / "big.csv", out, "--force"), tmp_path / "tmp1")
    assert code == 1
    assert_one_line(err, "no space left")
    assert snapshot(out) == before
    assert_one_complete_set(out, 360)
    assert_nothing_left(tmp_path, out, tmp_path / "tmp1")
    assert sorted(p.name for p in small_fs.iterdir()) == ["out"]


def test_full_file_system_on_first_run_writes_nothing(tmp_path, small_fs):
    big = cm.simulate_votes(n_users=1500, votes_per_user=10, random_seed=2)
    big.votes.to_csv(tmp_path / "big.csv", index=False)
    out = small_fs / "out"
    code, _, err = run_patched("none", "none", run_args(tmp_path / "big.csv", out), tmp_path / "tmp")
    assert code == 1
    assert_one_line(err, "no space left", "nothing was written")
    assert list(small_fs.iterdir()) == []


@pytest.mark.parametrize("point", ["between-files", "commit"])
def test_disk_error_injected_leaves_the_old_set(tmp_path, votes_file, old_set, point):
    """The same fault without root: the write of a file (or the final step) fails with ENOSPC."""
    out, before = old_set
    code, _, err = run_patched(point, "ENOSPC", run_args(votes_file, out, "--seed", "2", "--force"), tmp_path / "tmp")
    assert code == 1
    assert_one_line(err, "no space left")
    assert snapshot(out) == before
    assert_nothing_left(tmp_path, out, tmp_path / "tmp")


@pytest.fixture()
def read_only_out(tmp_path, votes_file):
    """A complete result set in a directory that cannot be written: a tmpfs remounted
    read-only where the tests run as root (root ignores file modes), else mode 0555."""
    mnt = tmp_path / "mnt"
    mounted = _mount_tmpfs(mnt, "4m")
    if not mounted:
        mnt.mkdir(exist_ok=True)
    out = mnt / "out"
    code, _, err = run_patched("none", "none", run_args(votes_file, out, "--seed", "1"), tmp_path / "tmp0")
    assert code == 0, err[-3000:]
    if mounted:
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode == 0
    else:
        os.chmod(out, 0o555)
        os.chmod(mnt, 0o555)
    yield out
    if mounted:
        _umount(mnt)
    else:
        os.chmod(mnt, 0o755)
        os.chmod(out, 0o755)


def test_read_only_out_fails_at_once(tmp_path, votes_file, read_only_out):
    out = read_only_out
    before = snapshot(out)
    t0 = time.monotonic()
    code, _, err = run_patched("fit", "SIGKILL", run_args(votes_file, out, "--force"), tmp_path / "tmp")
    # the fit is never reached (it would kill the process): the directory is checked first
    assert code == 1, err[-3000:]
    assert_one_line(err, "cannot write the results")
    assert any(w in err for w in ("read-only", "not writable", "permission denied"))
    assert snapshot(out) == before
    assert time.monotonic() - t0 < 120


def test_report_checks_its_out_before_fitting(tmp_path, read_only_out):
    """``comparemode report`` into a read-only place fails before minutes of fitting: the fit
    is patched to kill the process, so reaching it would show as SIGKILL."""
    target = read_only_out.parent / "report.html"
    code, _, err = run_patched("fit", "SIGKILL", ["report", "--out", str(target), "--quiet"], tmp_path / "tmp")
    assert code == 1, err[-3000:]
    assert_one_line(err, "cannot write the results")
    assert not target.exists()


REPORT_ARGS = ["--draws", "60", "--tune", "60", "--chains", "1", "--ppc-draws", "20", "--quiet", "--force"]


@pytest.mark.parametrize(("point", "sig"), [("fit", "SIGTERM"), ("commit", "SIGINT")])
def test_report_interrupted_leaves_the_old_report(tmp_path, point, sig):
    """``comparemode report`` stopped at its first fit or just before the new page is moved
    into place: the old report stays byte for byte, nothing is left beside it."""
    target = tmp_path / "report.html"
    target.write_text("<html>the old report</html>")
    code, _, err = run_patched(point, sig, ["report", "--out", str(target), *REPORT_ARGS], tmp_path / "tmp")
    assert code == (130 if sig == "SIGINT" else 1), err[-3000:]
    assert_one_line(err, "holds what it held before")
    assert target.read_text() == "<html>the old report</html>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "tmp"]
    assert list((tmp_path / "tmp").iterdir()) == []


# --------------------------------------------------------------------------- two runs, one --out


def test_concurrent_run_fails_instead_of_clobbering(tmp_path, votes_file):
    out = tmp_path / "out"
    release = tmp_path / "release"
    first = run_patched("fit", "HOLD", run_args(votes_file, out, "--seed", "1"), tmp_path / "tmp1", wait=False, env={"RELEASE": str(release)})
    try:
        assert first.stdout.readline().strip() == "HOLDING"
        code, _, err = run_patched("none", "none", run_args(votes_file, out, "--seed", "2", "--force"), tmp_path / "tmp2")
        assert code == 1
        assert_one_line(err, "another comparemode run is writing")
        release.touch()
        _, err1 = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err1[-3000:]
    res = assert_one_complete_set(out)
    assert res["summary"]["settings"]["random_seed"] == 1  # the first run's set, whole
    assert_nothing_left(tmp_path, out, tmp_path / "tmp1")
    release.unlink()


def test_results_that_appear_meanwhile_are_not_replaced(tmp_path, votes_file):
    """Results written into --out by something that takes no lock while the run works: the
    final check before the swap refuses to replace them (no --force), and nothing is mixed."""
    out = tmp_path / "out"
    code, _, err = run_patched("fit", "FOREIGN", run_args(votes_file, out), tmp_path / "tmp")
    assert code == 1
    assert_one_line(err, "written while this run was working")
    assert snapshot(out) == {"users.csv": b"someone else's\n"}
    assert_nothing_left(tmp_path, out, tmp_path / "tmp")


def test_force_rerun_leaves_no_stale_file(tmp_path, votes_file):
    """A --force rerun replaces the whole set: the joint run's leaderboard.csv does not stay
    beside an EM run's results."""
    out = tmp_path / "out"
    many = cm.simulate_votes(n_users=100, votes_per_user=8, strengths={"a": 1.0, "b": 0.0, "c": -0.5}, random_seed=3)
    many.votes.to_csv(tmp_path / "many.csv", index=False)
    code, _, err = run_patched("none", "none", ["run", str(tmp_path / "many.csv"), "--method", "joint", "--out", str(out), "--quiet"], tmp_path / "t1")
    assert code == 0, err[-3000:]
    assert "leaderboard.csv" in snapshot(out)
    code, _, err = run_patched("none", "none", run_args(votes_file, out, "--force"), tmp_path / "t2")
    assert code == 0, err[-3000:]
    assert "leaderboard.csv" not in snapshot(out)
    assert_one_complete_set(out)


# --------------------------------------------------------------------------- footprint


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_results_are_created_as_the_umask_says(tmp_path, votes_file, umask):
    out = tmp_path / "out"
    many = cm.simulate_votes(n_users=60, votes_per_user=6, strengths={"a": 1.0, "b": 0.0, "c": -0.5}, random_seed=3)
    many.votes.to_csv(tmp_path / "many.csv", index=False)
    code, _, err = run_patched("none", "none", ["run", str(tmp_path / "many.csv"), "--method", "joint", "--out", str(out), "--quiet"], tmp_path / "t", umask=umask)
    assert code == 0, err[-3000:]
    assert (out.stat().st_mode & 0o777) == 0o777 & ~umask
    for p in out.iterdir():
        assert (p.stat().st_mode & 0o777) == 0o666 & ~umask, (p.name, oct(p.stat().st_mode))


def test_atomic_write_follows_the_umask(tmp_path):
    """posterior.nc and the report go through atomic_write, whose temporary file would
    otherwise keep mkstemp's 0600."""
    from comparemode._atomic import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f.txt", lambda p: Path(p).write_text("x"))
    finally:
        os.umask(old)
    assert ((tmp_path / "f.txt").stat().st_mode & 0o777) == 0o644


# --------------------------------------------------------------------------- the reader


def test_read_results_trusts_only_a_complete_manifest(tmp_path, old_set):
    out, _ = old_set
    assert_one_complete_set(out)
    users = out / "users.csv"
    text = users.read_bytes()
    users.write_bytes(text[: len(text) // 2])  # a file that is not the run's
    with pytest.raises(ResultSetError, match="differs from the manifest"):
        read_results(out)
    users.write_bytes(text)
    (out / "leaderboard.csv").write_text("model,strength\na,1\n")  # a stale file beside the set
    with pytest.raises(ResultSetError, match="does not list"):
        read_results(out)
    (out / "leaderboard.csv").unlink()
    (out / MANIFEST).unlink()
    with pytest.raises(ResultSetError, match="no manifest.json"):
        read_results(out)


def test_data_integrity_checksum_names_the_input(tmp_path, votes_file, old_set):
    import hashlib

    out, _ = old_set
    line = read_results(out)["summary"]["data_integrity"]
    assert line["input_sha256"] == hashlib.sha256(votes_file.read_bytes()).hexdigest()
    assert line["input_bytes"] == votes_file.stat().st_size


# --------------------------------------------------------------------------- identifiers round-trip


def _text_ids():
    from hypothesis import strategies as st

    tricky = st.sampled_from(
        ["7", "07", "007", "1.10", "1.1", "1e3", "-0", "0x1F", "True", "TRUE", "true", "False", "NA", "N/A", "nan",
         "NaN", "null", "None", "NULL", "#N/A", "<NA>", "2026-01-01", "01/02/2026", "12:30", " 7", "7 ", "a,b",
         'say "hi"', "line\nbreak", "ünï", "用户"]
    )
    free = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp")), min_size=1, max_size=12)
    return st.lists(st.one_of(tricky, free).filter(lambda s: s.strip() != ""), min_size=3, max_size=10, unique=True)


def _write_votes(ids: list[str], fmt: str, path_base: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for k, u in enumerate(ids):
        for i in range(8):
            a, b = ("1.10", "007") if (i + k) % 2 == 0 else ("007", "1.10")
            rows.append({"user": u, "model_a": a, "model_b": b, "winner": str(rng.choice(["model_a", "model_b", "tie"]))})
    df = pd.DataFrame(rows)
    path = path_base.with_suffix({"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}[fmt])
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        df.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_ids_round_trip_through_the_command_line(tmp_path_factory, fmt):
    """Random text ids (numbers, booleans, dates, missing markers, quotes, commas, newlines,
    any script) written to a file, through ``comparemode run`` (model names ``1.10`` and ``007``,
    ``--mu 1.10=0.7``): ``users.csv`` holds the same ids, each once, and the kept votes name
    only those."""
    from hypothesis import HealthCheck, given, settings

    from comparemode.cli import main

    @settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ids=_text_ids())
    def check(ids):
        d = tmp_path_factory.mktemp(fmt)
        path = _write_votes(ids, fmt, d / "votes", seed=len(ids))
        out = d / "out"
        code = main(["run", str(path), "--mu", "1.10=0.7", "--out", str(out), "--quiet"])
        assert code == 0
        res = read_results(out)
        assert sorted(res["users"].index) == sorted(ids)
        assert res["users"].index.is_unique
        assert set(res["kept_votes"]["user"]) <= set(ids)
        assert set(res["kept_votes"]["model_a"]) <= {"1.10", "007"}

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check()
