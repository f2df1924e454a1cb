"""The pyarrow-backed column operations (comparemode/_columnar.py) and ``load_votes(categorical=True)``:
each gives exactly what the pandas operation it replaces gives (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import comparemode as cm
from comparemode._columnar import (
    factorize,
    first_rows,
    relabel,
    renumber,
    select_rows,
    unique_index,
    write_parquet,
)
from comparemode.errors import ConfigError, InvalidValueError

STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _chunked(values, pieces=3) -> pd.Series:
    """A pandas ``str`` column held in several pyarrow chunks, as a Parquet read gives."""
    values = list(values)
    step = max(1, len(values) // pieces)
    chunks = [pa.array(values[i:i + step], type=pa.string()) for i in range(0, len(values), step)] or [pa.array([], type=pa.string())]
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(chunks, type=pa.string()), dtype=STR))


def _first_rows_naive(codes, n):
    out = np.full(n, codes.size, dtype=np.int64)
    for i in range(codes.size - 1, -1, -1):
        out[codes[i]] = i
    return out


@pytest.mark.parametrize("n, size, late", [(4, 0, None), (4, 10, None), (4, 300_000, 2), (16, 200_000, 15), (3, 70_000, 0), (40, 50_000, 39)])
def test_first_rows_and_renumber_equal_the_row_by_row_rule(n, size, late):
    """first_rows finds each code's first row (len for a code that never occurs), also when a
    code first appears far down, past the first blocks searched; renumber equals factorize."""
    rng = np.random.default_rng(size + n)
    codes = rng.integers(0, n, size).astype(np.int8 if n < 100 else np.int64)
    if late is not None:
        codes[codes == late] = (late + 1) % n
        codes[size - 7] = late  # the code's only row is near the end
    codes[codes == 1] = 2 if n > 2 else 0  # code 1 never occurs
    got = first_rows(codes, n)
    np.testing.assert_array_equal(got, _first_rows_naive(codes, n))
    new, seen = renumber(codes, n, np.int32)
    want, uniques = pd.factorize(codes, sort=False)
    np.testing.assert_array_equal(new, want)
    np.testing.assert_array_equal(seen, uniques)
    assert new.dtype == np.int32


def test_renumber_of_codes_already_in_order_keeps_them():
    codes = np.repeat(np.arange(5, dtype=np.int8), 3)
    new, seen = renumber(codes, 5, np.int32)
    np.testing.assert_array_equal(new, codes)
    np.testing.assert_array_equal(seen, np.arange(5))
    assert new.dtype == np.int32


@pytest.mark.parametrize("distinct", [1, 3, 50, 6000])
def test_factorize_equals_pandas_on_text_columns(distinct):
    rng = np.random.default_rng(distinct)
    values = [f"m{v}" for v in rng.integers(0, distinct, 20_000)]
    s = _chunked(values, pieces=7)
    assert s.array.__arrow_array__().num_chunks >= 7
    codes, uniques = factorize(s)
    want_codes, want_uniques = pd.factorize(s, sort=False)
    np.testing.assert_array_equal(codes, want_codes)
    assert codes.dtype == np.int64
    pd.testing.assert_index_equal(uniques, pd.Index(want_uniques), exact=True)


def test_factorize_of_categoricals_is_in_order_of_first_appearance():
    cat = pd.Series(pd.Categorical(["b", "c", "b", "a", "c"], categories=["a", "b", "c", "unused"]))
    codes, uniques = factorize(cat)
    np.testing.assert_array_equal(codes, [0, 1, 0, 2, 1])
    assert list(uniques) == ["b", "c", "a"]
    assert not isinstance(uniques, pd.CategoricalIndex)
    many = pd.Series(pd.Categorical([f"x{i % 40}" for i in range(400)][::-1]))
    codes, uniques = factorize(many)
    want_codes, want_uniques = pd.factorize(many.astype(str), sort=False)
    np.testing.assert_array_equal(codes, want_codes)
    assert list(uniques) == list(want_uniques)


def test_factorize_leaves_missing_values_and_other_dtypes_to_pandas():
    for s in (_chunked(["a", None, "b", "a"]), pd.Series([3, 1, 3, 2]), pd.Series(pd.Categorical(["a", None, "a"])), _chunked([])):
        codes, uniques = factorize(s)
        want_codes, want_uniques = pd.factorize(s, sort=False)
        np.testing.assert_array_equal(codes, want_codes)
        assert list(uniques) == list(want_uniques)


def _mixed_frame(n=500, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {  # a tuple per row in "obj": values that are not scalars
            "user": _chunked([f"u{v}" for v in rng.integers(0, 60, n)], pieces=4),
            "model_a": pd.Categorical(rng.choice(["x", "y", "z"], n)),
            "n": rng.integers(0, 9, n),
            "w": rng.random(n),
            "maybe": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 5, n)), dtype="Int64"),
            "obj": pd.Series([("t", i) for i in range(n)], dtype=object),
        }
    )
    frame.index = pd.Index([f"r{i}" for i in range(n)], name="row")
    frame.attrs["comparemode"] = {"rows_in": n}
    return frame


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_select_rows_equals_boolean_indexing(share):
    frame = _mixed_frame()
    mask = np.random.default_rng(1).random(len(frame)) < share
    got, want = select_rows(frame, mask), frame[mask]
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs == frame.attrs
    assert got.attrs is not frame.attrs  # the result's attrs are its own
    plain = frame.reset_index(drop=True)
    pd.testing.assert_frame_equal(select_rows(plain, mask), plain[mask], check_exact=True)


def test_select_rows_with_repeated_column_names_falls_back_to_pandas():
    frame = pd.DataFrame([[1, "a"], [2, "b"]], columns=["x", "x"])
    frame["x"]  # noqa: B018  (two columns under one name)
    pd.testing.assert_frame_equal(select_rows(frame, np.array([False, True])), frame[np.array([False, True])])


def test_relabel_maps_each_value_once_and_keeps_the_dtype():
    mapping = {"model_a": "left", "model_b": "right"}
    s = _chunked(["model_a", "tie", "model_b", "model_a"])
    got = relabel(s, mapping)
    assert list(got) == ["left", "tie", "right", "left"]
    assert got.dtype == s.dtype
    cat = pd.Series(pd.Categorical(["model_b", "tie", "model_b"]))
    got = relabel(cat, mapping)
    assert list(got) == ["right", "tie", "right"]
    assert isinstance(got.dtype, pd.CategoricalDtype)
    # a mapping that merges two categories still gives the mapped values
    merged = relabel(pd.Series(pd.Categorical(["a", "b", "c"])), {"a": "x", "b": "x"})
    assert list(merged) == ["x", "x", "c"]


@pytest.mark.parametrize("columns", [["row", "user", "model_a", "n", "w"], ["row", "user", "model_a", "n", "w", "maybe"], ["n", "w"]])
def test_write_parquet_reads_back_as_a_plain_write_of_the_same_values(tmp_path, columns):
    """Categoricals of text read back as text; every other dtype as pandas writes it (the
    nullable Int64 column takes the casting path)."""
    frame = _mixed_frame().reset_index()[columns]
    write_parquet(frame, tmp_path / "ours.parquet")
    plain = frame.astype({"model_a": STR}) if "model_a" in columns else frame
    plain.to_parquet(tmp_path / "plain.parquet", index=False)
    ours, theirs = pd.read_parquet(tmp_path / "ours.parquet"), pd.read_parquet(tmp_path / "plain.parquet")
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    if "model_a" in columns:
        assert ours["model_a"].dtype == STR


# --------------------------------------------------------------------------- load_votes(categorical=True)


def _votes(n=3000, seed=0) -> pd.DataFrame:
    sim = cm.simulate_votes(n // 6, 6, mu=0.7, random_seed=seed)
    return sim.votes[["user", "model_a", "model_b", "winner"]].assign(note=[f"n{i % 7}" for i in range(len(sim.votes))])


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_categorical_reading_gives_the_same_votes_and_counts(tmp_path, kind):
    votes = _votes()
    path = tmp_path / f"votes.{kind}"
    votes.to_csv(path, index=False) if kind == "csv" else votes.to_parquet(path, index=False)
    plain = cm.load_votes(path)
    lean = cm.load_votes(path, categorical=True)
    for col in ("model_a", "model_b", "winner"):
        assert isinstance(lean[col].dtype, pd.CategoricalDtype), col
    assert lean["user"].dtype == plain["user"].dtype
    pd.testing.assert_frame_equal(lean.astype({c: plain[c].dtype for c in plain.columns}), plain, check_exact=True)
    assert lean.attrs["comparemode"] == plain.attrs["comparemode"]
    assert cm.count_votes(lean).identical(cm.count_votes(plain))


def test_categorical_reading_maps_winner_values_and_keeps_the_checks(tmp_path):
    votes = _votes(600).rename(columns={"user": "worker"})
    votes["winner"] = votes["winner"].map({"model_a": "A", "model_b": "B", "tie": "draw"})
    path = tmp_path / "votes.parquet"
    votes.to_parquet(path, index=False)
    values = {"A": "model_a", "B": "model_b", "draw": "tie"}
    lean = cm.load_votes(path, user="worker", winner_values=values, categorical=True)
    plain = cm.load_votes(path, user="worker", winner_values=values)
    assert isinstance(lean["winner"].dtype, pd.CategoricalDtype)
    assert list(lean["winner"]) == list(plain["winner"])
    assert set(lean["winner"].cat.categories) <= {"model_a", "model_b", "tie"}
    bad = votes.copy()
    bad.loc[5, "model_b"] = bad.loc[5, "model_a"]
    bad.loc[9, "winner"] = "??"
    for column, edit, error in (("model_b", bad.loc[5, "model_a"], "model_a == model_b"), ("winner", "??", "values outside")):
        broken = votes.copy()
        broken.loc[5, column] = edit
        broken.to_parquet(path, index=False)
        with pytest.raises(InvalidValueError, match=error) as lean_err:
            cm.load_votes(path, user="worker", winner_values=values, categorical=True)
        with pytest.raises(InvalidValueError) as plain_err:
            cm.load_votes(path, user="worker", winner_values=values)
        assert str(lean_err.value) == str(plain_err.value)


def test_a_parquet_file_with_dictionary_columns_loads_in_both_modes(tmp_path):
    """model_a and model_b as Categoricals with different categories (pandas refuses ``==``
    between them): the same-model check compares them on shared categories."""
    votes = _votes(600)
    path = tmp_path / "votes.parquet"
    table = pa.Table.from_pandas(votes, preserve_index=False)
    for name in ("model_a", "model_b", "winner"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(i).dictionary_encode())
    pq.write_table(table, path)
    for categorical in (False, True):
        out = cm.load_votes(path, categorical=categorical)
        assert list(out["model_a"].astype(str)) == list(votes["model_a"])
    broken = table.to_pandas()
    broken.loc[3, "model_b"] = broken.loc[3, "model_a"]
    broken.to_parquet(path, index=False)
    with pytest.raises(InvalidValueError, match=r"model_a == model_b on 1 row\(s\).*\[3\]"):
        cm.load_votes(path, categorical=True)


def test_categorical_csv_keeps_model_names_as_written(tmp_path):
    """The models of a CSV are Categoricals of the text as written: "1.10" and "007" are not
    numbers (pandas' parser with dtype="category" would make "1.10" 1.1)."""
    path = tmp_path / "votes.csv"
    path.write_text("user,model_a,model_b,winner\nu1,1.10,007,model_a\nu2,007,1.10,tie\nu1,1.10,2.0,model_b\n")
    lean = cm.load_votes(path, categorical=True)
    assert list(lean["model_a"]) == ["1.10", "007", "1.10"] and list(lean["model_b"]) == ["007", "1.10", "2.0"]
    assert list(cm.count_votes(lean).models) == ["1.10", "007", "2.0"]


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_categorical_must_be_a_bool(bad):
    with pytest.raises(ConfigError, match="categorical must be True or False"):
        cm.load_votes(_votes(60), categorical=bad)


@pytest.mark.parametrize("extra", [[], ["u7"], [None, None], [None]])
def test_unique_index_equals_pandas_on_large_text_indexes(extra):
    """unique_index counts a large text index with pyarrow (no pandas hash table kept with the
    index) and answers as index.is_unique does: a repeated id or two missing ones are duplicates."""
    values = [f"u{j}" for j in range(70_000)] + extra
    index = pd.Index(values, dtype="str")
    assert unique_index(index) == pd.Index(values, dtype="str").is_unique == (len(extra) <= 1 and extra != ["u7"])
    assert unique_index(pd.Index(values[:100], dtype="str")) is True
