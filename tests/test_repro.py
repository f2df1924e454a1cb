"""Reproducibility and crash safety of outputs (issue 7, parts 4 and 5).

- the same seed gives identical results in one process and across processes (with different
  hash seeds, so nothing depends on set or dict ordering): EM, joint EM, Bradley-Terry,
  simulator, and (slow) MCMC;
- saved results load back exactly (the command line's CSV and JSON, the posterior file);
- the command line writes nothing outside ``--out`` and never overwrites results without
  ``--force``;
- an interrupted writer (an exception midway, or SIGKILL) leaves the old complete file or the
  new complete one, never part of one.
"""

from __future__ import annotations

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
from comparemode.cli import OUTPUT_FILES, main

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- same seed, same numbers

FIT_SCRIPT = r"""
import hashlib, json, sys, warnings
import numpy as np, pandas as pd
import comparemode as cm
warnings.simplefilter("ignore")

def digest(*objs):
    h = hashlib.sha256()
    for o in objs:
        if isinstance(o, (pd.DataFrame, pd.Series)):
            h.update(pd.util.hash_pandas_object(o, index=True).to_numpy().tobytes())
            h.update(repr(list(o.columns) if isinstance(o, pd.DataFrame) else o.name).encode())
        else:
            h.update(np.ascontiguousarray(o).tobytes())
    return h.hexdigest()

sim = cm.simulate_votes(n_users=300, votes_per_user={"distribution": "poisson", "mean": 8}, random_seed=11)
many = cm.simulate_votes(n_users=200, votes_per_user=10, strengths={"a": 1.0, "b": 0.2, "c": -0.5, "d": -0.7}, random_seed=12)
em = cm.TwoTypeEM(n_starts=4, random_seed=3).fit(sim.votes, **sim.reference)
joint = cm.JointEM(n_starts=3, random_seed=3).fit(many.votes)
bt = cm.fit_bradley_terry(many.votes)
out = {
    "simulation": digest(sim.votes, sim.users, many.votes),
    "em": digest(em.params_, em.users_, em.loglik_history_, em.starts_),
    "joint": digest(joint.params_, joint.users_, joint.strengths_, joint.loglik_history_),
    "bt": digest(bt),
    "filter": digest(em.filter(sim.votes).kept, cm.filter_fdr(sim.votes, em.users_, 0.1).users),
}
if len(sys.argv) > 1 and sys.argv[1] == "mcmc":
    model = cm.BayesianTwoType(sampler_config={"draws": 100, "tune": 100, "chains": 2, "cores": 1, "progressbar": False, "random_seed": 5})
    small = cm.simulate_votes(n_users=120, votes_per_user=8, random_seed=13)
    idata = model.fit(small.votes, **small.reference)
    out["mcmc"] = digest(*[np.asarray(idata["posterior"][n].values) for n in model.param_names], model.users_)
print(json.dumps(out))
"""


def run_fit_script(hash_seed: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
        [sys.executable, "-c", FIT_SCRIPT, *args], check=False, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_same_seed_same_results_in_one_process(small_sim):
    fits = [cm.TwoTypeEM(n_starts=4, random_seed=3).fit(small_sim.votes, **small_sim.reference) for _ in range(2)]
    pd.testing.assert_series_equal(fits[0].params_, fits[1].params_, check_exact=True)
    pd.testing.assert_frame_equal(fits[0].users_, fits[1].users_, check_exact=True)
    pd.testing.assert_series_equal(fits[0].loglik_history_, fits[1].loglik_history_, check_exact=True)
    sims = [cm.simulate_votes(n_users=50, votes_per_user=5, random_seed=9) for _ in range(2)]
    pd.testing.assert_frame_equal(sims[0].votes, sims[1].votes)
    other = cm.simulate_votes(n_users=50, votes_per_user=5, random_seed=10)
    assert not other.votes.equals(sims[0].votes)  # the seed matters


def test_same_seed_same_results_across_processes():
    """Two fresh interpreters with different hash seeds give bit-identical results."""
    a = run_fit_script("0")
    b = run_fit_script("4242")
    assert a == b
    assert set(a) == {"simulation", "em", "joint", "bt", "filter"}


@pytest.mark.slow
def test_mcmc_same_seed_same_posterior_across_processes():
    a = run_fit_script("1", "mcmc")
    b = run_fit_script("2", "mcmc")
    assert a["mcmc"] == b["mcmc"]
    assert a == b


# --------------------------------------------------------------------------- saved results load back exactly


def test_cli_outputs_load_back_exactly(tmp_path):
    sim = cm.simulate_votes(n_users=150, votes_per_user=10, random_seed=8)
    votes_path = tmp_path / "votes.csv"
    sim.votes.to_csv(votes_path, index=False)
    out = tmp_path / "out"
    assert main(["run", str(votes_path), "--mu", "model_x=0.7", "--out", str(out), "--quiet"]) == 0
    votes = cm.load_votes(votes_path)
    em = cm.TwoTypeEM(random_seed=0).fit(votes, mu={"model_x": 0.7})
    result = em.filter_fdr(votes, 0.1)  # the default rule of run (and report)
    back = read_results(out)  # ids read as the text they were written as
    users = back["users"]
    pd.testing.assert_frame_equal(users, result.users, check_exact=True)  # floats round-trip through CSV
    kept = back["kept_votes"]  # the input's columns, then the weight and the decision; the row id named
    assert kept.index.name == "row" and list(kept.columns[-2:]) == ["weight", "decision"] and set(kept["decision"]) == {"kept"}
    np.testing.assert_array_equal(kept["weight"].to_numpy(), result.weights.loc[result.kept.index].to_numpy())
    pd.testing.assert_frame_equal(kept.drop(columns=["weight", "decision"]).rename_axis(None), result.kept, check_exact=True, check_index_type=False)
    dropped = back["dropped_votes"]
    pd.testing.assert_frame_equal(dropped.drop(columns=["weight", "decision"]).rename_axis(None), result.dropped, check_exact=True, check_index_type=False)
    summary = back["summary"]
    assert summary["params"] == em.params_.to_dict()
    assert summary["fit"]["loglik"] == em.loglik_
    assert summary["filter"]["votes_kept"] == len(result.kept)


def test_posterior_file_loads_back_exactly(bayes_fit, tmp_path):
    path = bayes_fit.save(tmp_path / "posterior.nc")
    loaded = cm.BayesianTwoType.load(path)
    a, b = bayes_fit.idata_, loaded.idata_
    for group in ("posterior", "sample_stats", "constant_data", "user_data"):
        for name, var in a[group].data_vars.items():
            np.testing.assert_array_equal(np.asarray(var.values), np.asarray(b[group][name].values), err_msg=f"{group}/{name}")
    assert dict(a.attrs) == dict(b.attrs)
    pd.testing.assert_frame_equal(loaded.users_, bayes_fit.users_, check_exact=True)
    pd.testing.assert_frame_equal(loaded.summary(), bayes_fit.summary(), check_exact=True)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


@pytest.mark.slow
def test_posterior_keeps_user_ids_of_every_type(tmp_path):
    """Mixed user ids (0 and "0", ints, tuples) come back as they went in, after the fit and
    after save and load, so the fitted votes can be filtered with the loaded users."""
    sim = cm.simulate_votes(n_users=40, votes_per_user=8, random_seed=2)
    codes, uniques = pd.factorize(sim.votes["user"])
    ids = [0, "0", ("team", 1), 3.5] + [i if i % 2 else f"{i}" for i in range(4, len(uniques))]
    votes = sim.votes.assign(user=pd.Series([ids[c] for c in codes], index=sim.votes.index, dtype=object))
    model = cm.BayesianTwoType(sampler_config={"draws": 100, "tune": 100, "chains": 2, "cores": 1, "progressbar": False, "random_seed": 1})
    model.fit(votes, **sim.reference)
    assert model.users_.index.tolist() == ids
    loaded = cm.BayesianTwoType.load(model.save(tmp_path / "posterior.nc"))
    assert loaded.users_.index.tolist() == ids
    assert [type(u) for u in loaded.users_.index] == [type(u) for u in ids]
    pd.testing.assert_frame_equal(loaded.users_, model.users_, check_exact=True)
    result = cm.filter_votes(votes, loaded.users_)
    assert len(result.kept) + len(result.dropped) == len(votes)


# --------------------------------------------------------------------------- the command line's footprint


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (except under ``skip``) with its size and mtime."""
    out = {}
    for p in root.rglob("*"):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        st = p.stat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns) if p.is_file() else (-1, 0)
    return out


def run_cli(args, cwd: Path, tmpdir: Path, **kw):
    env = dict(os.environ, TMPDIR=str(tmpdir), TEMP=str(tmpdir), TMP=str(tmpdir))
    return subprocess.run(
        [sys.executable, "-m", "comparemode.cli", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False, **kw
    )


@pytest.mark.parametrize("method", ["em", "joint", pytest.param("mcmc", marks=pytest.mark.slow)])
def test_cli_writes_nothing_outside_out(tmp_path, method):
    """The run reads its votes from the working directory and writes only into --out:
    the working directory and the temporary directory are unchanged otherwise. (Library
    caches in the home directory, PyTensor's compiledir and matplotlib's font list, are
    outside this promise.)"""
    work, tmpdir = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmpdir.mkdir()
    sim = cm.simulate_votes(n_users=120, votes_per_user=8, random_seed=4)
    sim.votes.to_csv(work / "votes.csv", index=False)
    args = ["run", "votes.csv", "--out", "results", "--quiet", "--method", method]
    if method != "joint":
        args += ["--mu", "model_x=0.7"]
    if method == "mcmc":
        args += ["--draws", "100", "--tune", "100", "--chains", "2"]
    before_work, before_tmp = snapshot(work), snapshot(tmpdir)
    out = run_cli(args, work, tmpdir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert snapshot(work, skip=work / "results") == before_work
    assert snapshot(tmpdir) == before_tmp
    written = sorted(p.name for p in (work / "results").iterdir())
    expected = {"em": ["dropped_votes.csv", "kept_votes.csv", MANIFEST, "summary.json", "users.csv"]}
    expected["joint"] = sorted(expected["em"] + ["leaderboard.csv"])
    expected["mcmc"] = sorted(expected["em"] + ["posterior.nc"])
    assert written == expected[method]


@pytest.mark.parametrize("existing", OUTPUT_FILES)
def test_cli_never_overwrites_any_result_without_force(tmp_path, capsys, existing):
    """Existing results are refused without --force; --force replaces the whole set, so no
    file of the previous run (here a leaderboard.csv this run does not write) stays beside
    the new ones."""
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_bytes(b"old results\n")
    args = ["run", "--sim-users", "60", "--sim-votes", "6", "--out", str(out), "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--force" in err and existing in err
    assert sorted(p.name for p in out.iterdir()) == [existing]
    assert (out / existing).read_bytes() == b"old results\n"
    assert main(args + ["--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["users.csv", "kept_votes.csv", "dropped_votes.csv", "summary.json", MANIFEST])
    read_results(out)  # one complete set
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging directory or lock left beside it


def test_cli_refuses_a_directory_holding_other_files(tmp_path, capsys):
    """The result set replaces --out as a whole, so a directory with the user's own files in
    it is refused (naming them) rather than emptied."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["run", "--sim-users", "60", "--sim-votes", "6", "--out", str(out), "--quiet", "--force"]) == 1
    assert "notes.txt" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- crash safety


def first_run(out: Path) -> dict[str, bytes]:
    assert main(["run", "--sim-users", "80", "--sim-votes", "6", "--seed", "1", "--out", str(out), "--quiet"]) == 0
    return {p.name: p.read_bytes() for p in out.iterdir()}


def assert_old_or_new(out: Path, old: dict[str, bytes], new: dict[str, bytes] | None = None):
    for name, content in old.items():
        now = (out / name).read_bytes()
        assert now == content or (new is not None and now == new.get(name)), f"{name} is neither the old nor the new file"


def test_writer_raising_midway_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    old = first_run(out)
    real = pd.DataFrame.to_csv

    def half_then_fail(self, path=None, *args, **kwargs):
        text = real(self, None, *args, **kwargs)
        with open(path, "w") as fh:
            fh.write(text[: len(text) // 2])
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C halfway through the write

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    code = main(["run", "--sim-users", "80", "--sim-votes", "6", "--seed", "2", "--out", str(out), "--quiet", "--force"])
    assert code == 130  # Ctrl-C: one line and 130, no traceback
    assert_old_or_new(out, old)
    assert sorted(p.name for p in out.iterdir()) == sorted(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the staging directory was removed


def test_save_raising_midway_leaves_the_old_posterior(bayes_fit, tmp_path, monkeypatch):
    import xarray as xr

    path = bayes_fit.save(tmp_path / "posterior.nc")
    old = path.read_bytes()

    def half_then_fail(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(old[: len(old) // 3])
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        bayes_fit.save(path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["posterior.nc"]
    cm.BayesianTwoType.load(path)  # still a complete, loadable file


KILL_SCRIPT = r"""
import os, sys, time
import pandas as pd
real = pd.DataFrame.to_csv

def slow_to_csv(self, path=None, *args, **kwargs):
    text = real(self, None, *args, **kwargs)
    with open(path, "w") as fh:
        fh.write(text[: len(text) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        print("HALF", flush=True)
        time.sleep(600)  # killed here, halfway through writing users.csv
        fh.write(text[len(text) // 2 :])

pd.DataFrame.to_csv = slow_to_csv
from comparemode.cli import main
sys.exit(main(["run", "--sim-users", "80", "--sim-votes", "6", "--seed", "2", "--out", sys.argv[1], "--quiet", "--force"]))
"""

KILL_SAVE_SCRIPT = r"""
import os, sys, time
from pathlib import Path
import xarray as xr
import comparemode as cm

model = cm.BayesianTwoType.load(sys.argv[1])
real = xr.DataTree.to_netcdf

def slow_to_netcdf(self, filepath, *args, **kwargs):
    real(self, filepath, *args, **kwargs)
    data = Path(filepath).read_bytes()
    with open(filepath, "wb") as fh:  # rewrite it slowly: half now, the rest never
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        print("HALF", flush=True)
        time.sleep(600)

xr.DataTree.to_netcdf = slow_to_netcdf
model.save(sys.argv[1])
"""


def kill_when_half_written(script: str, *args: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.strip() == "HALF" or not line:
                break
        assert line.strip() == "HALF", proc.stderr.read()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_killed_while_writing_leaves_complete_files(tmp_path):
    """SIGKILL halfway through writing users.csv: --out is still the old complete set; the
    half-written data sits only in the staging directory beside it, which the next run on
    --out removes."""
    out = tmp_path / "out"
    old = first_run(out)
    kill_when_half_written(KILL_SCRIPT, str(out))
    assert_old_or_new(out, old)
    assert sorted(p.name for p in out.iterdir()) == sorted(old)
    users = read_results(out)["users"]
    assert len(users) == 80  # complete: one row per user
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "out"]
    assert all(name.startswith(".out.staging-") or name == ".out.lock" for name in leftovers), leftovers
    first_run_again = main(["run", "--sim-users", "80", "--sim-votes", "6", "--seed", "3", "--out", str(out), "--quiet", "--force"])
    assert first_run_again == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the killed run's staging directory is gone


@pytest.mark.slow
def test_posterior_save_killed_midway_leaves_the_old_file(bayes_fit, tmp_path):
    path = bayes_fit.save(tmp_path / "posterior.nc")
    old = path.read_bytes()
    kill_when_half_written(KILL_SAVE_SCRIPT, str(path))
    assert path.read_bytes() == old
    cm.BayesianTwoType.load(path)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "posterior.nc"]
    assert all(name.startswith(".posterior.nc.") and name.endswith(".tmp") for name in leftovers), leftovers


def test_python_dash_m_entry_point_exists():
    """``python -m comparemode.cli`` (used above to run the command line in a clean process)
    is the console script's entry point."""
    code = textwrap.dedent(
        """
        import runpy, sys
        sys.argv = ["comparemode", "run", "--help"]
        try:
            runpy.run_module("comparemode.cli", run_name="__main__")
        except SystemExit as exc:
            sys.exit(exc.code)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0 and "--force" in out.stdout
