"""The Dask backend against the pandas path, on multi-partition Parquet and a LocalCluster.

TwoTypeEM and BayesianTwoType (scalar mu, mu column, strengths): users, counts, probabilities
and parameters are equal bit for bit. The joint model: its per-user and per-model sums over
votes are taken in another order on Dask (per partition, then across), so floats agree to a
tolerance (the EM's accept/reject steps turn ~1e-15 differences in the sums into ~1e-9 in the
fit); counts, users and the leaderboard's wins and games are equal exactly.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import comparemode as cm
from comparemode import dask_backend
from comparemode.errors import (
    ConfigError,
    InputNotFoundError,
    InvalidValueError,
    MissingColumnError,
    MissingDependencyError,
    MuError,
)

dask = pytest.importorskip("dask", reason="Dask is an optional extra (in the test extra, so CI never skips this)")
dd = pytest.importorskip("dask.dataframe", reason="Dask is an optional extra (in the test extra, so CI never skips this)")
distributed = pytest.importorskip("distributed", reason="distributed is an optional extra (in the test extra, so CI never skips this)")

N_FILES = 4
FLOAT_TOL = {"rtol": 1e-8, "atol": 1e-8}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def write_parts(votes: pd.DataFrame, folder, n_files: int = N_FILES) -> str:
    """Votes in ``n_files`` Parquet files (row slices, so users span files)."""
    folder.mkdir()
    votes = votes.reset_index(drop=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(votes)), n_files)):
        votes.iloc[chunk].to_parquet(folder / f"part.{i:03d}.parquet", index=False)
    return str(folder)


@pytest.fixture(scope="module")
def scalar_votes(tmp_path_factory):
    sim = cm.simulate_votes(n_users=300, votes_per_user={"distribution": "poisson", "mean": 12}, random_seed=7)
    folder = write_parts(sim.votes, tmp_path_factory.mktemp("scalar") / "votes")
    return folder, pd.read_parquet(folder), sim.reference


@pytest.fixture(scope="module")
def arena_votes(tmp_path_factory):
    strengths = {f"m{i:02d}": s for i, s in enumerate(np.linspace(-1.5, 1.5, 8))}
    sim = cm.simulate_votes(n_users=250, votes_per_user=12, strengths=strengths, random_seed=11)
    votes = sim.votes.assign(mu=0.0)
    beta = pd.Series(strengths)
    votes["mu"] = 1.0 / (1.0 + np.exp(-(beta[votes["model_a"]].to_numpy() - beta[votes["model_b"]].to_numpy())))
    folder = write_parts(votes, tmp_path_factory.mktemp("arena") / "votes")
    return folder, pd.read_parquet(folder), sim.reference


def test_scalar_mu_equals_pandas_exactly(client, scalar_votes):
    folder, votes, reference = scalar_votes
    pandas_fit = cm.TwoTypeEM(random_seed=1).fit(votes, **reference)
    lazy = cm.load_votes(folder + "/*.parquet")
    assert lazy.npartitions == N_FILES
    dask_fit = cm.TwoTypeEM(random_seed=1).fit(lazy, **reference)
    pd.testing.assert_frame_equal(dask_fit.users_, pandas_fit.users_, check_exact=True)
    pd.testing.assert_series_equal(dask_fit.params_, pandas_fit.params_, check_exact=True)
    pd.testing.assert_series_equal(dask_fit.loglik_history_, pandas_fit.loglik_history_, check_exact=True)
    assert dask_fit.n_passes_ == 1


def test_integer_user_ids_and_a_directory(client, tmp_path):
    sim = cm.simulate_votes(n_users=200, votes_per_user=10, random_seed=3)
    votes = sim.votes.assign(user=sim.votes["user"].str[1:].astype("int64") * 7)
    folder = write_parts(votes, tmp_path / "votes", n_files=3)
    expected = cm.TwoTypeEM(random_seed=0).fit(pd.read_parquet(folder), **sim.reference).users_
    got = cm.TwoTypeEM(random_seed=0).fit(folder, **sim.reference).users_
    assert got.index.dtype == np.int64
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.parametrize("source", ["strengths", "column"])
def test_per_row_mu_equals_pandas(client, arena_votes, source):
    folder, votes, reference = arena_votes
    kw = reference if source == "strengths" else {"mu": "mu"}
    if source == "strengths":
        votes = votes.drop(columns="mu")
    a = cm.TwoTypeEM(random_seed=1).fit(votes, **kw)
    lazy = cm.load_votes(folder)
    b = cm.TwoTypeEM(random_seed=1).fit(lazy.drop(columns="mu") if source == "strengths" else lazy, **kw)
    # one counting pass; the fit reads the counts as the pandas fit does
    assert b.n_passes_ == 1
    pd.testing.assert_frame_equal(b.users_, a.users_, check_exact=True)
    pd.testing.assert_series_equal(b.params_, a.params_, check_exact=True)


def test_per_row_mu_compiled_engine_equals_pandas(client, tmp_path):
    """From NUMBA_MIN_VOTES votes on the pandas path sums with its compiled loop, whose
    logarithms differ from NumPy's in the last bit; the Dask path follows it."""
    from comparemode.models.stats import NUMBA_MIN_VOTES

    strengths = {f"m{i}": s for i, s in enumerate(np.linspace(-1.0, 1.0, 5))}
    sim = cm.simulate_votes(n_users=NUMBA_MIN_VOTES // 20 + 100, votes_per_user=20, strengths=strengths, random_seed=5)
    assert len(sim.votes) >= NUMBA_MIN_VOTES
    folder = write_parts(sim.votes, tmp_path / "votes", n_files=3)
    a = cm.TwoTypeEM(random_seed=0, n_starts=1).fit(pd.read_parquet(folder), **sim.reference)
    b = cm.TwoTypeEM(random_seed=0, n_starts=1).fit(folder, **sim.reference)
    pd.testing.assert_frame_equal(b.users_, a.users_, check_exact=True)


def test_joint_em_reads_the_votes_once_and_equals_pandas(client, arena_votes):
    """The joint EM on Dask: one counting pass (the EM's iterations run on the counts), and
    the same fit as in memory, bit for bit."""
    folder, votes, _ = arena_votes
    settings = {"n_starts": 2, "max_iter": 6, "random_seed": 0}
    a = cm.JointEM(**settings).fit(votes)
    b = cm.JointEM(**settings).fit(folder)
    assert b.n_passes_ == 1
    assert b.n_iter_ == a.n_iter_
    pd.testing.assert_frame_equal(b.leaderboard_, a.leaderboard_, check_exact=True)
    pd.testing.assert_series_equal(b.strengths_, a.strengths_, check_exact=True)
    pd.testing.assert_frame_equal(b.users_, a.users_, check_exact=True)


def test_filter_writes_partitioned_parquet_equal_to_pandas(client, scalar_votes, tmp_path):
    folder, votes, reference = scalar_votes
    a = cm.TwoTypeEM(random_seed=1).fit(votes, **reference)
    lazy = cm.load_votes(folder)
    b = cm.TwoTypeEM(random_seed=1).fit(lazy, **reference)
    expected = a.filter(votes, threshold=0.5)
    result = b.filter(lazy, threshold=0.5)
    assert isinstance(result.kept, dd.DataFrame)  # lazy: nothing collected yet
    summary = dask_backend.write_kept(result, tmp_path / "kept", dropped_path=tmp_path / "dropped")
    files = sorted(p.name for p in (tmp_path / "kept").glob("*.parquet"))
    assert len(files) == N_FILES
    kept = pd.read_parquet(tmp_path / "kept")
    dropped = pd.read_parquet(tmp_path / "dropped")
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), expected.kept.reset_index(drop=True), check_exact=True)
    pd.testing.assert_frame_equal(dropped.reset_index(drop=True), expected.dropped.reset_index(drop=True), check_exact=True)
    for key in ("users_kept", "users_dropped", "votes_kept", "votes_dropped"):
        assert summary[key] == expected.summary[key]
    assert summary["votes_kept_written"] == len(expected.kept)
    # the same win rates; the Dask fit runs the misfit checks on the counts (all but drift,
    # which needs the votes' order, and says so)
    assert result.summary["favoured_win_rate"] == expected.summary["favoured_win_rate"]
    assert expected.summary["promise"]["status"] == result.summary["promise"]["status"] == "kept"
    assert b.checks_.loc["drift", "status"] == "not run" and a.checks_.loc["drift", "status"] == "passed"
    pd.testing.assert_frame_equal(b.checks_.loc[["favoured-model dispersion"], ["observed", "statistic", "p_value"]],
                                  a.checks_.loc[["favoured-model dispersion"], ["observed", "statistic", "p_value"]], check_exact=True)
    np.testing.assert_array_equal(result.weights.compute().to_numpy(), expected.weights.to_numpy())


def test_bad_input_errors_match_pandas(client, scalar_votes, tmp_path):
    folder, votes, reference = scalar_votes
    # a missing column: at once, from the metadata, naming the column
    with pytest.raises(MissingColumnError, match="'winner'"):
        cm.load_votes(dd.read_parquet(folder).drop(columns="winner"))
    # a bad winner value in one partition: raised when the pass runs, naming value and partition
    bad = votes.copy()
    bad.loc[len(bad) - 3, "winner"] = "left??"
    bad_folder = write_parts(bad, tmp_path / "bad")
    with pytest.raises(InvalidValueError, match=r"partition 3: .*'left\?\?'"):
        cm.TwoTypeEM().fit(bad_folder, **reference)
    with pytest.raises(InvalidValueError) as pandas_error:
        cm.TwoTypeEM().fit(bad, **reference)
    assert "bad values: ['left??']" in str(pandas_error.value)
    # a scalar mu naming a model that is not voted: the pandas path's message
    with pytest.raises(MuError, match="does not appear in the votes") as dask_error:
        cm.TwoTypeEM().fit(folder, mu={"model_q": 0.7})
    with pytest.raises(MuError) as pandas_error:
        cm.TwoTypeEM().fit(votes, mu={"model_q": 0.7})
    assert str(dask_error.value) == str(pandas_error.value)
    same = votes.copy()
    same.loc[5, "model_b"] = same.loc[5, "model_a"]
    with pytest.raises(InvalidValueError, match=r"partition 0: model_a == model_b on 1 row"):
        cm.TwoTypeEM().fit(write_parts(same, tmp_path / "same"), **reference)
    with pytest.raises(InputNotFoundError, match="no votes files match"):
        cm.load_votes(str(tmp_path / "nothing" / "*.parquet"))
    # mu estimated: from the counts, as in memory
    on_dask, in_memory = cm.TwoTypeEM(random_seed=0).fit(folder, mu="estimate"), cm.TwoTypeEM(random_seed=0).fit(votes, mu="estimate")
    pd.testing.assert_series_equal(on_dask.params_, in_memory.params_, check_exact=True)


def test_local_scheduler_without_cluster(scalar_votes):
    folder, votes, reference = scalar_votes
    with dask.config.set(scheduler="threads"):
        got = cm.TwoTypeEM(random_seed=1).fit(folder, **reference)
    pd.testing.assert_frame_equal(got.users_, cm.TwoTypeEM(random_seed=1).fit(votes, **reference).users_, check_exact=True)


def test_without_dask_a_package_error_says_how_to_install(scalar_votes, monkeypatch):
    folder, _, reference = scalar_votes
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)
    with pytest.raises(MissingDependencyError, match=r"pip install comparemode\[dask\]"):
        cm.load_votes(folder + "/*.parquet")
    with pytest.raises(MissingDependencyError, match=r"pip install comparemode\[dask\]"):
        cm.TwoTypeEM().fit(folder, **reference)


def test_pymc_model_on_dask_equals_pandas(client, scalar_votes):
    folder, votes, reference = scalar_votes
    sampler = {"draws": 100, "tune": 100, "chains": 1, "cores": 1, "random_seed": 3, "progressbar": False}
    a = cm.BayesianTwoType(sampler_config=sampler)
    a.fit(votes, **reference)
    b = cm.BayesianTwoType(sampler_config=sampler)
    b.fit(folder, **reference)  # one Dask pass; the PyMC model runs on the same count patterns
    pd.testing.assert_frame_equal(b.users_, a.users_, check_exact=True)
    np.testing.assert_array_equal(b.idata_["posterior"]["pi"].values, a.idata_["posterior"]["pi"].values)
    assert cm.BayesianTwoType(model_config={"mu": "estimate"}).build_model(folder) is not None  # mu estimated: from the counts


def test_ties_drop_and_column_mapping_lazily(client, scalar_votes, tmp_path):
    _, votes, _ = scalar_votes
    llmfao = votes.rename(columns={"user": "worker", "model_a": "left", "model_b": "right"})
    llmfao["winner"] = llmfao["winner"].map({"model_a": "left", "model_b": "right", "tie": "tie"})
    other = write_parts(llmfao, tmp_path / "llmfao")
    lazy = cm.load_votes(other, ties="drop")  # LLMFAO layout detected, winners mapped, ties dropped
    expected = cm.load_votes(pd.read_parquet(other), ties="drop")
    pd.testing.assert_frame_equal(lazy.compute().reset_index(drop=True), expected.reset_index(drop=True), check_exact=True)


@pytest.mark.parametrize("which", ["scalar", "mu-column"])
def test_counts_on_dask_are_identical_to_counting_at_once(client, scalar_votes, arena_votes, which):
    """Dask as an executor (issue 13): each partition counted, the counts merged in partition
    order; the result is identical, array for array, to counting all the votes, and the fit
    from those counts equals the pandas fit from the same counts."""
    from comparemode.models.counts import VoteCounts

    folder, votes, reference = scalar_votes if which == "scalar" else arena_votes
    lazy = cm.count_votes(folder)
    whole = cm.count_votes(votes)
    assert isinstance(lazy, VoteCounts) and lazy.identical(whole)
    more = cm.count_votes(dd.from_pandas(votes, npartitions=7))  # partitions that split users
    assert more.identical(whole)
    kw = reference if which == "scalar" else {}
    a = cm.TwoTypeEM(random_seed=1, checks=False).fit(whole, **kw)
    b = cm.TwoTypeEM(random_seed=1, checks=False).fit(lazy, **kw)
    pd.testing.assert_frame_equal(b.users_, a.users_, check_exact=True)


def test_cli_on_a_parquet_directory_records_its_integrity(scalar_votes, tmp_path):
    """summary.json's data_integrity for lazy input: the rows and users of all files, kept
    plus dropped equal to the input, and one checksum over the directory's files."""
    from comparemode.cli import main

    folder, votes, _ = scalar_votes
    assert main(["run", folder, "--mu", "model_x=0.7", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    back = cm.read_results(tmp_path / "o")
    line = back["summary"]["data_integrity"]
    assert line["input_files"] == N_FILES and len(line["input_sha256"]) == 64
    assert line["kept_rows"] + line["dropped_rows"] == len(votes) == line["input_rows"]
    assert line["distinct_users"] == votes["user"].nunique()
    kept, users = back["kept_votes"], back["users"]
    assert len(kept) == line["kept_rows"] and set(kept["user"]) == set(users.index[users["keep"]])
    assert main(["run", str(tmp_path / "all.csv"), "--mu", "model_x=0.7", "--out", str(tmp_path / "p"), "--quiet"]) == 1  # no such file
    votes.to_csv(tmp_path / "all.csv", index=False)
    assert main(["run", str(tmp_path / "all.csv"), "--mu", "model_x=0.7", "--out", str(tmp_path / "p"), "--quiet"]) == 0
    assert (tmp_path / "p" / "users.csv").read_bytes() == (tmp_path / "o" / "users.csv").read_bytes()  # the same decisions


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_cli_on_a_parquet_directory_writes_the_votes_tables_in_the_asked_format(scalar_votes, tmp_path, fmt):
    """--format reaches the votes tables of a lazy run: kept_votes and dropped_votes are written
    partition by partition as one file in that format (no CSV beside them), summary.json names
    the format, and the rows are the CSV run's, in the same order."""
    from comparemode.cli import main

    folder, votes, _ = scalar_votes
    assert main(["run", folder, "--mu", "model_x=0.7", "--out", str(tmp_path / "c"), "--format", "csv", "--quiet"]) == 0
    assert main(["run", folder, "--mu", "model_x=0.7", "--out", str(tmp_path / "o"), "--format", fmt, "--quiet"]) == 0
    written = {p.name for p in (tmp_path / "o").iterdir()}
    assert {f"kept_votes.{fmt}", f"dropped_votes.{fmt}", f"users.{fmt}"} <= written and not any(n.endswith(".csv") for n in written)
    back = cm.read_results(tmp_path / "o")
    assert back["summary"]["outputs"]["format"] == fmt
    read = pd.read_parquet if fmt == "parquet" else (lambda p: pd.read_json(p, lines=True, dtype=False))
    csv = {side: pd.read_csv(tmp_path / "c" / f"{side}_votes.csv", index_col=0, dtype=str, keep_default_na=False) for side in ("kept", "dropped")}
    total = 0
    for side in ("kept", "dropped"):
        got = read(tmp_path / "o" / f"{side}_votes.{fmt}")
        assert list(got.columns) == list(csv[side].columns)
        assert got.astype(str).reset_index(drop=True).equals(csv[side].reset_index(drop=True))
        total += len(got)
    assert total == len(votes)


def test_write_one_file_writes_the_frame_partition_by_partition(scalar_votes, tmp_path):
    """write_one_file: CSV byte for byte as Dask's single-file writer, Parquet and JSON lines
    the rows of compute() in order (no index); the rows written are returned."""
    from comparemode.dask_backend import write_one_file

    folder, votes, _ = scalar_votes
    lazy = cm.load_votes(folder)
    lazy = lazy[lazy["winner"] != "tie"]
    whole = lazy.compute().reset_index(drop=True)
    lazy.to_csv(str(tmp_path / "dask.csv"), single_file=True)
    assert write_one_file(lazy, tmp_path / "one.csv", "csv") == len(whole)
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    assert write_one_file(lazy, tmp_path / "one.parquet", "parquet") == len(whole)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), whole, check_dtype=False)
    assert write_one_file(lazy, tmp_path / "one.jsonl", "jsonl") == len(whole)
    back = pd.read_json(tmp_path / "one.jsonl", lines=True, dtype=False)
    assert back.astype(str).equals(whole.astype(str))
    with pytest.raises(cm.errors.ConfigError, match="format"):
        write_one_file(lazy, tmp_path / "x", "xlsx")
