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
    blank_text,
    factorize,
    first_rows,
    from_dictionary,
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


# --------------------------------------------------------------------------- hashed factorize


def _many_texts(n, distinct, seed):
    """Text ids with many distinct values: empty strings, non-ASCII text, long and short ids,
    and ids that differ only in their last byte or in their length."""
    rng = np.random.default_rng(seed)
    pool = np.array([f"u{i}" for i in range(distinct)] + ["", "ü", "üü", "a" * 300, "a" * 301, "u1\x00", "ユーザー"], dtype=object)
    return pool[rng.integers(0, pool.size, n)]


@pytest.mark.parametrize("block", [None, 1013])
@pytest.mark.parametrize("pieces", [1, 5])
@pytest.mark.parametrize("storage", ["str", "string[pyarrow]", "large"])
def test_hashed_factorize_equals_pandas(monkeypatch, pieces, storage, block):
    """The hashed path (many distinct values) gives pd.factorize's codes, in order of first
    appearance, and its uniques, for either pyarrow string type, one chunk or several, and a
    sliced column (a chunk that starts at an offset into its buffers); with the rows hashed a
    block at a time (``block`` rows, blocks that end inside chunks and chunks that end inside
    blocks: the table carried across both) as well as in one block per chunk."""
    from comparemode import _columnar

    monkeypatch.setattr(_columnar, "HASHED_MIN_ROWS", 1)
    if block is not None:
        monkeypatch.setattr(_columnar, "HASH_BLOCK", block)
    values = _many_texts(30_000, 9_000, seed=pieces)
    if storage == "large":
        chunks = [pa.array(list(part), type=pa.large_string()) for part in np.array_split(values, pieces)]
        s = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(chunks), dtype=STR))
    elif pieces > 1:
        s = _chunked(values, pieces=pieces)
    else:
        s = pd.Series(values, dtype=storage)
    s = s.iloc[17:]  # a slice: offsets start inside the buffers
    hashed = _columnar._factorize_hashed(s)
    assert hashed is not None, "the hashed path was not taken"
    for codes, uniques in (hashed, factorize(s)):
        want_codes, want_uniques = pd.factorize(s, sort=False)
        np.testing.assert_array_equal(codes, want_codes)
        assert codes.dtype == np.int64
        pd.testing.assert_index_equal(uniques, pd.Index(want_uniques), exact=True)


def test_hashed_factorize_sees_a_collision_and_falls_back(monkeypatch):
    """Two distinct values whose first hashes collide are not merged: the second hash tells
    them apart, the hashed path gives up, and factorize returns pandas' exact answer. The
    collision is forced by a first hash that keeps only each value's length."""
    from comparemode import _columnar

    monkeypatch.setattr(_columnar, "HASHED_MIN_ROWS", 1)
    hash_values, hash_table = _columnar._hash_kernels()

    def lengths_only(offsets, data, first, second):
        hash_values(offsets, data, first, second)
        first[:] = np.diff(offsets).astype(np.uint64)

    monkeypatch.setattr(_columnar, "_hash_kernels", lambda: (lengths_only, hash_table))
    values = _many_texts(20_000, 6_000, seed=3)
    s = pd.Series(values, dtype="str")
    assert _columnar._factorize_hashed(s) is None
    codes, uniques = factorize(s)
    want_codes, want_uniques = pd.factorize(s, sort=False)
    np.testing.assert_array_equal(codes, want_codes)
    assert len(uniques) == len(set(values)) and list(uniques) == list(want_uniques)


def test_hashed_factorize_with_every_hash_in_one_probe_chain(monkeypatch):
    """The hash table finds each value's code however its probes run: first hashes whose low
    20 bits are all zero start every lookup at the same slot (one long linear-probe chain,
    through every doubling of the table), and the codes are still pandas' exactly."""
    from comparemode import _columnar

    monkeypatch.setattr(_columnar, "HASHED_MIN_ROWS", 1)
    hash_values, hash_table = _columnar._hash_kernels()

    def one_chain(offsets, data, first, second):
        hash_values(offsets, data, first, second)
        first <<= np.uint64(20)

    monkeypatch.setattr(_columnar, "_hash_kernels", lambda: (one_chain, hash_table))
    s = pd.Series(_many_texts(20_000, 5_000, seed=4), dtype="str")
    hashed = _columnar._factorize_hashed(s)
    assert hashed is not None, "distinct first hashes were taken for a collision"
    want_codes, want_uniques = pd.factorize(s, sort=False)
    np.testing.assert_array_equal(hashed[0], want_codes)
    pd.testing.assert_index_equal(hashed[1], pd.Index(want_uniques), exact=True)


def test_hashed_factorize_is_not_used_on_small_or_incomplete_columns():
    from comparemode import _columnar

    small = pd.Series(_many_texts(5_000, 4_900, seed=1), dtype="str")
    assert len(small) < _columnar.HASHED_MIN_ROWS  # pandas below the threshold: numba not needed
    with_missing = pd.Series(list(_many_texts(100, 90, seed=2)) + [None], dtype="str")
    assert _columnar._factorize_hashed(with_missing) is None


# --------------------------------------------------------------------------- pyarrow CSV reader

CSV_CASES = {
    "plain": "user,model_a,model_b,winner\nu1,x,y,model_a\nu2,y,x,tie\n",
    "quoted-empty-is-missing": 'user,model_a,model_b,winner\n"",x,y,tie\nu1,x,y,""\n',
    "bom": "\ufeffuser,model_a,model_b,winner\nu1,x,y,model_a\n",
    "blank-lines": "\n\nuser,model_a,model_b,winner\n\nu1,x,y,model_a\n\n\nu2,y,x,tie\n",
    "crlf": "user,model_a,model_b,winner\r\nu1,x,y,model_a\r\n",
    "cr-only": "user,model_a,model_b,winner\ru1,x,y,model_a\ru2,x,y,tie\r",
    "newline-in-quotes": 'user,model_a,model_b,winner\n"u\n1",x,y,model_a\n',
    "quotes-and-commas": 'user,model_a,model_b,winner\n"u""1","a,b",y,model_a\n',
    "missing-markers-stay-text": "user,model_a,model_b,winner\nNA,null,None,tie\nNaN,007,1.10,model_a\n",
    "spaces-kept": "user,model_a,model_b,winner\n u1 ,x ,y,tie\n",
    "no-final-newline": "user,model_a,model_b,winner\nu1,x,y,tie",
    "header-only": "user,model_a,model_b,winner\n",
    "unicode": "user,model_a,model_b,winner\nユーザー,ß,y,tie\n",
    "numbers-beside-text": "user,model_a,model_b,winner,mu,w\nu1,x,y,tie,0.7,1\nu2,x,y,model_a,NA,\nu3,x,y,tie,1e-3,2.5\n",
    # pyarrow refuses these; pandas reads them (a short row, a line of spaces, an empty header name)
    "short-row": "user,model_a,model_b,winner\nu1,x,y\n",
    "whitespace-line": "user,model_a,model_b,winner\n   \nu1,x,y,tie\n",
    "unnamed-column": "user,model_a,model_b,winner,\nu1,x,y,tie,3\n",
}
REFUSED_BY_PYARROW = {"short-row", "whitespace-line", "unnamed-column"}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_pyarrow_csv_reader_reads_what_pandas_reads(monkeypatch, tmp_path, name):
    """From ``ARROW_CSV_MIN_BYTES`` on, the text columns are read by pyarrow: the same frame
    (values, missing values, dtypes, index) as pandas' reading, or, where pyarrow refuses
    the file, pandas' reading itself."""
    from comparemode import data

    path = tmp_path / "v.csv"
    path.write_bytes(CSV_CASES[name].encode("utf-8"))
    text = ["user", "model_a", "model_b", "winner"]
    monkeypatch.setattr(data, "ARROW_CSV_MIN_BYTES", 1 << 60)
    want = data.read_csv_text(path, text, low_memory=False, sep=",")
    monkeypatch.setattr(data, "ARROW_CSV_MIN_BYTES", 0)
    cols = list(want.columns)
    used = data._read_csv_arrow(path, cols, text, {"sep": ",", "low_memory": False})
    assert (used is None) == (name in REFUSED_BY_PYARROW)
    got = data.read_csv_text(path, text, low_memory=False, sep=",")
    pd.testing.assert_frame_equal(got, want)


def _read_by_pandas_and_pyarrow(monkeypatch, path) -> pd.DataFrame:
    """``read_csv_text`` of ``path`` with ``user`` as text and the models and winner as
    Categoricals, by pandas (the threshold out of reach) and by pyarrow (threshold 0): the two
    frames are asserted equal and pyarrow's is returned."""
    from comparemode import data

    text, category = ["user"], ["model_a", "model_b", "winner"]
    monkeypatch.setattr(data, "ARROW_CSV_MIN_BYTES", 1 << 60)
    want = data.read_csv_text(path, text, category, low_memory=False, sep=",")
    monkeypatch.setattr(data, "ARROW_CSV_MIN_BYTES", 0)
    got = data.read_csv_text(path, text, category, low_memory=False, sep=",")
    pd.testing.assert_frame_equal(got, want)
    return got


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_pyarrow_csv_reader_reads_categoricals_as_pandas_and_as_categorical_do(monkeypatch, tmp_path, name):
    """With category columns, pyarrow reads them as dictionaries and makes the Categoricals
    straight from them: the frame of pandas' text reading followed by as_categorical (values,
    categories in order of first appearance, missing values, dtypes)."""
    path = tmp_path / "v.csv"
    path.write_bytes(CSV_CASES[name].encode("utf-8"))
    got = _read_by_pandas_and_pyarrow(monkeypatch, path)
    if name not in REFUSED_BY_PYARROW and len(got):
        assert isinstance(got["winner"].dtype, pd.CategoricalDtype)


def test_pyarrow_csv_categoricals_over_many_chunks_and_many_values(monkeypatch, tmp_path):
    """A file of many of pyarrow's blocks (each with its own dictionary), values first seen
    in later blocks, missing values, and a column with more than FEW_DISTINCT distinct values
    (left as text, as as_categorical leaves it): the same frame as pandas' reading."""
    from comparemode import _columnar

    rng = np.random.default_rng(8)
    n = 200_000
    late = np.where(np.arange(n) > 150_000, "late", "early")  # a category first seen in a later block
    frame = pd.DataFrame({
        "user": [f"u{v}" for v in rng.integers(0, 50_000, n)],
        "model_a": np.where(rng.random(n) < 0.01, "", rng.choice(["x", "y", "z"], n)),
        "model_b": [f"m{v}" for v in rng.integers(0, _columnar.FEW_DISTINCT + 500, n)],
        "winner": np.where(rng.random(n) < 0.5, late, rng.choice(["model_a", "model_b", "tie"], n)),
    })
    path = tmp_path / "v.csv"
    frame.to_csv(path, index=False)
    got = _read_by_pandas_and_pyarrow(monkeypatch, path)
    assert isinstance(got["model_a"].dtype, pd.CategoricalDtype) and got["model_a"].isna().any()
    assert got["model_b"].dtype == STR  # too many distinct values for a Categorical
    assert list(got["winner"].cat.categories)[-1] == "late"


def test_pyarrow_csv_reader_on_gzip_tsv_and_a_large_file(tmp_path, monkeypatch):
    """A CSV and a TSV above the default threshold, and a gzipped CSV (smaller on disk than
    the threshold, which is set to 0 for it), through ``load_votes``."""
    import gzip

    from comparemode import data

    rng = np.random.default_rng(5)
    n = 60_000
    frame = pd.DataFrame({
        "user": [f"u{v:05d}" for v in rng.integers(0, 9_000, n)],
        "model_a": rng.choice(["x", "y"], n), "winner": rng.choice(["model_a", "model_b", "tie"], n),
        "prompt": [f"p {i}, with a comma" for i in range(n)], "weight": rng.random(n),
    })
    frame["model_b"] = np.where(frame["model_a"] == "x", "y", "x")
    csv_text = frame.to_csv(index=False)
    assert len(csv_text) >= data.ARROW_CSV_MIN_BYTES  # the default threshold applies
    paths = {"csv": tmp_path / "v.csv", "gz": tmp_path / "v.csv.gz", "tsv": tmp_path / "v.tsv"}
    paths["csv"].write_text(csv_text)
    with gzip.open(paths["gz"], "wt") as fh:
        fh.write(csv_text)
    paths["tsv"].write_text(frame.to_csv(index=False, sep="\t"))
    for kind, path in paths.items():
        if kind == "gz":
            monkeypatch.setattr(data, "ARROW_CSV_MIN_BYTES", 0)
        sep = "\t" if kind == "tsv" else ","
        text = ["user", "model_a", "model_b", "winner", "prompt"]
        assert data._read_csv_arrow(path, list(frame.columns), text, {"sep": sep}) is not None, kind
        got = cm.load_votes(path)
        pd.testing.assert_frame_equal(got.reset_index(drop=True)[list(frame.columns)], frame.astype({c: STR for c in text}), check_dtype=False)
        assert got["user"].dtype == STR and got["weight"].dtype == np.float64


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


def test_write_parquet_encodes_only_columns_with_few_distinct_values(tmp_path):
    """Columns with many distinct values (row ids, user ids, per-user numbers) are written
    plainly, those with few (models, decisions, Categoricals) with a dictionary; the file reads
    back equal to pandas' own write of the same frame either way."""
    n = 80_000
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({
        "row": np.arange(n),
        "user": pd.array([f"u{i}" for i in rng.permutation(n)], dtype="str"),
        "model_a": pd.array(rng.choice(["m1", "m2", "m3"], n), dtype="str"),
        "weight": rng.random(n),
        "level": rng.integers(0, 5, n).astype(float),
        "decision": pd.Categorical(["kept"] * n),
    })
    for name, categorical in (("ours.parquet", True), ("ours_plain.parquet", False)):
        table = frame if categorical else frame.drop(columns="decision")
        write_parquet(table, tmp_path / name)
        meta = pq.ParquetFile(tmp_path / name).metadata.row_group(0)
        encoded = {meta.column(i).path_in_schema: "RLE_DICTIONARY" in meta.column(i).encodings for i in range(meta.num_columns)}
        assert encoded == {"row": False, "user": False, "model_a": True, "weight": False, "level": True, **({"decision": True} if categorical else {})}
        # min/max statistics on every column but those written from a Categorical's dictionary
        stats = {meta.column(i).path_in_schema: meta.column(i).is_stats_set for i in range(meta.num_columns)}
        assert stats == {"row": True, "user": True, "model_a": True, "weight": True, "level": True, **({"decision": False} if categorical else {})}
        assert (meta.column(0).statistics.min, meta.column(0).statistics.max) == (0, n - 1)
        plain = table.astype({"decision": STR}) if categorical else table
        plain.to_parquet(tmp_path / "plain.parquet", index=False)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / name), pd.read_parquet(tmp_path / "plain.parquet"), check_exact=True)


_BLANK_CASES = ["", " ", "a", " a", "\u3000", "\u3000x", "\xa0\xa0", "ü", None, "\t\n", "x ", "\x1c", "\x00", "  b  ", "\u2028", "ユ"]


@pytest.mark.parametrize("storage", ["str", "string[pyarrow]", "large"])
def test_blank_text_equals_pandas_isspace(storage):
    """blank_text reads empty values off the offsets and tests only the values whose first
    byte may start whitespace: the same mask as ``s.eq("") | s.str.isspace()`` (missing values
    False), on every rotation of the cases (so each is first, last and inside a chunk), on
    sliced and chunked columns, and on columns of only empty or missing values."""
    def column(values):
        if storage == "large":
            return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(values, type=pa.large_string())]), dtype=STR))
        return pd.Series(values, dtype=storage)

    def want(s):
        return (s.eq("") | s.str.isspace()).to_numpy(dtype=bool, na_value=False)

    for k in range(len(_BLANK_CASES)):
        values = _BLANK_CASES[k:] + _BLANK_CASES[:k]
        for s in (column(values), column(values * 3).iloc[5:], _chunked(values * 3, pieces=4) if storage == "str" else column(values)):
            np.testing.assert_array_equal(blank_text(s), want(s))
    for only in ([""], [None], ["", None, ""], [], [" "]):
        np.testing.assert_array_equal(blank_text(column(only)), want(column(only)))


def test_blank_user_ids_are_refused_by_the_fast_check():
    """load_votes still names rows whose user id is empty or whitespace only (the check the
    fast path replaced), wherever they are."""
    votes = _votes(600)
    for bad in ("", "\u3000", " \t"):
        broken = votes.copy()
        broken.loc[[3, 599], "user"] = bad
        with pytest.raises(InvalidValueError, match=r"has no user id on rows 3 and 599|has no user id on .*3.*599"):
            cm.load_votes(broken)


@pytest.mark.parametrize("hashed", [True, False])
@pytest.mark.parametrize("extra", [[], ["u7"], [None, None], [None]])
def test_unique_index_by_hashes_equals_pandas(monkeypatch, hashed, extra):
    """From HASHED_MIN_ROWS values unique_index compares the values' first hashes; it answers
    as index.is_unique does, and a forced collision of every hash (a first hash that keeps
    only the value's length) makes it compare the values instead, not call them repeated."""
    from comparemode import _columnar

    monkeypatch.setattr(_columnar, "HASHED_MIN_ROWS", 1)
    if not hashed:
        hash_values, hash_table = _columnar._hash_kernels()

        def lengths_only(offsets, data, first, second):
            hash_values(offsets, data, first, second)
            first[:] = np.diff(offsets).astype(np.uint64)

        monkeypatch.setattr(_columnar, "_hash_kernels", lambda: (lengths_only, hash_table))
    values = [f"u{j}" for j in range(70_000)] + extra
    index = pd.Index(values, dtype="str")
    assert unique_index(index) == pd.Index(values, dtype="str").is_unique == (len(extra) <= 1 and extra != ["u7"])


# --------------------------------------------------------------------------- load_votes(categorical=True)


def _votes(n=3000, seed=0) -> pd.DataFrame:
    sim = cm.simulate_votes(n // 6, 6, mu=0.7, random_seed=seed)
    return sim.votes[["user", "model_a", "model_b", "winner"]].assign(note=[f"n{i % 7}" for i in range(len(sim.votes))])


def _parquet_files(tmp_path):
    """Parquet files of votes as readers meet them: written by pandas with a named index,
    attributes, missing models, many row groups (each its own dictionaries, a value first seen
    late) and more distinct values than FEW_DISTINCT; by pyarrow without pandas' metadata; one
    whose model column is also its index; one with integer column names."""
    from comparemode import _columnar

    rng = np.random.default_rng(9)
    n = 6000
    frame = pd.DataFrame({
        "user": [f"u{v}" for v in rng.integers(0, 400, n)],
        "model_a": np.where(rng.random(n) < 0.05, None, rng.choice(["x", "y", "z"], n)),
        "w": rng.random(n),
        "model_b": [f"m{v}" for v in rng.permutation(n) % (_columnar.FEW_DISTINCT + 300)],
        "winner": np.where(np.arange(n) > 5000, "late", rng.choice(["model_a", "model_b", "tie"], n)),
    }, index=pd.Index([f"r{i}" for i in range(n)], name="vote_id"))
    frame.attrs["note"] = "kept"
    files = {"pandas": tmp_path / "pandas.parquet", "pyarrow": tmp_path / "pyarrow.parquet",
             "index-is-a-model": tmp_path / "index.parquet", "integer-names": tmp_path / "ints.parquet"}
    frame.to_parquet(files["pandas"], row_group_size=777)
    pq.write_table(pa.table({c: pa.array([None if pd.isna(v) else v for v in frame[c]], type=pa.large_string()) for c in ("user", "model_a", "winner")}), files["pyarrow"], row_group_size=1000)
    frame.reset_index().set_index("model_b").to_parquet(files["index-is-a-model"])
    frame.reset_index(drop=True).set_axis(range(5), axis=1).to_parquet(files["integer-names"])
    return files


def test_parquet_dictionaries_made_categoricals_as_pandas_makes_them(tmp_path, monkeypatch):
    """The Parquet reader's Categoricals, made from the file's dictionaries, are the frame
    pandas' read_parquet(read_dictionary=...) gives: values, categories in order of first
    appearance over row groups, missing values, codes, index, attributes, column order; and
    the files it leaves to pandas (a model column that is the index, integer names) too."""
    from comparemode import data

    made = []
    monkeypatch.setattr(data, "from_dictionary", lambda *a, **k: made.append(a[0]) or from_dictionary(*a, **k))
    wanted = lambda cols: [c for c in cols if c in ("model_a", "model_b", "winner", "1", "4")]  # noqa: E731 - "1", "4": model_a, winner of the integer names
    for name, path in _parquet_files(tmp_path).items():
        made.clear()
        schema = pq.read_schema(path)
        dictionary = [f.name for f in schema if f.name in wanted(schema.names) and pa.types.is_string(f.type) | pa.types.is_large_string(f.type)]
        want = pd.read_parquet(path, read_dictionary=dictionary) if dictionary else pd.read_parquet(path)
        got = data._read_parquet(path, wanted)
        pd.testing.assert_frame_equal(got, want, obj=name)
        assert got.attrs == want.attrs, name
        assert len(made) == {"pandas": 3, "pyarrow": 2}.get(name, 0), name  # the file's dictionaries, or pandas' reading
        if name == "pandas":
            assert list(got["winner"].cat.categories)[-1] == "late" and got["model_a"].isna().any()
            assert got["model_b"].cat.categories.size > 4096  # a Categorical however many values, as pandas reads it


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


def test_parquet_written_in_parts_is_the_file_written_whole(tmp_path, monkeypatch):
    """write_parquet_parts of pieces of PART_ROWS rows writes the very bytes write_parquet
    writes for the whole table (the same row groups, dictionaries and metadata); a table whose
    columns are not written straight from Arrow is refused, as is no part at all."""
    from comparemode import _columnar

    monkeypatch.setattr(_columnar, "PART_ROWS", 5000)  # more than FEW_DISTINCT: the first part chooses the dictionaries as the whole does
    rng = np.random.default_rng(8)
    n = 12_345
    frame = pd.DataFrame({
        "row": np.arange(n) * 3,
        "user": pd.array([f"u{i}" for i in rng.integers(0, 900, n)], dtype="str"),
        "model_a": pd.Categorical.from_codes(rng.integers(0, 3, n), categories=pd.Index(["a", "b", "c"], dtype="str")),
        "weight": rng.random(n),
        "decision": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=pd.Index(["kept"], dtype="str")),
    })
    assert _columnar.writes_in_parts(frame)
    write_parquet(frame, tmp_path / "whole.parquet")
    _columnar.write_parquet_parts((frame.iloc[lo:lo + 5000] for lo in range(0, n, 5000)), tmp_path / "parts.parquet")
    assert (tmp_path / "parts.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "parts.parquet").metadata.num_row_groups == 3
    back = pd.read_parquet(tmp_path / "parts.parquet")
    assert list(back["model_a"]) == list(frame["model_a"]) and list(back["user"]) == list(frame["user"])
    plain = frame.assign(extra=[{"a": 1}] * n)  # an object column: its type depends on the values
    assert not _columnar.writes_in_parts(plain) and not _columnar.writes_in_parts(frame.drop(columns=["model_a", "decision"]))
    with pytest.raises(ValueError, match="not written straight from Arrow, or one holds objects"):
        _columnar.write_parquet_parts([plain], tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="at least one part"):
        _columnar.write_parquet_parts([], tmp_path / "y.parquet")


def test_take_ascending_and_values_at_take_chunk_by_chunk():
    """_take_ascending gives ChunkedArray.take's values (as one array) for ascending rows of a
    column of several chunks, empty and sliced ones among them, and none; values_at gives
    Series.take's values as objects, for a pyarrow text column and for any other."""
    from comparemode._columnar import _take_ascending, values_at

    rng = np.random.default_rng(5)
    values = [f"id{i}" for i in range(500)]
    chunks = [pa.array(values[:120]), pa.array([], type=pa.string()), pa.array(values[120:400]).slice(30), pa.array(values[400:])]
    chunked = pa.chunked_array(chunks)
    for rows in (np.zeros(0, dtype=np.int64), np.array([0]), np.array([len(chunked) - 1]), np.sort(rng.choice(len(chunked), 137, replace=False)), np.arange(len(chunked))):
        got = _take_ascending(chunked, rows)
        assert isinstance(got, pa.Array) and got.type == chunked.type
        assert got.to_pylist() == chunked.take(pa.array(rows, type=pa.int64())).to_pylist()
        s = pd.Series(pd.arrays.ArrowStringArray(chunked, dtype=STR))
        np.testing.assert_array_equal(values_at(s, rows), s.take(rows).to_numpy(dtype=object))
        ints = pd.Series(np.arange(len(chunked)) * 3)
        np.testing.assert_array_equal(values_at(ints, rows), ints.take(rows).to_numpy(dtype=object))


def test_text_column_in_chunks_equals_taking_it_whole(monkeypatch):
    """text_column taken in chunks of TEXT_CHUNK_ROWS rows gives the texts of the codes, a
    missing value where a code is negative, for lengths below, at and above a chunk."""
    from comparemode import _columnar

    monkeypatch.setattr(_columnar, "TEXT_CHUNK_ROWS", 4)
    texts = ["a", "bb", "", "ü"]
    rng = np.random.default_rng(2)
    for n in (0, 3, 4, 9):
        codes = rng.integers(-1, len(texts), n)
        col = _columnar.text_column(texts, codes)
        assert len(col) == n and isinstance(col.dtype, pd.StringDtype)
        want = [texts[c] if c >= 0 else None for c in codes]
        assert [None if pd.isna(v) else v for v in col] == want
        assert col.__arrow_array__().num_chunks == -(-n // 4)
