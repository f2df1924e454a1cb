"""Column operations on pyarrow-backed pandas columns, done by pyarrow compute (issue 16).

pandas 3 keeps text columns in pyarrow arrays (the ``str`` dtype), but its ``factorize`` and
boolean row selection on them go through extra copies and conversions: on 10,000,000 votes,
``pd.factorize`` of a two-value model column takes about 0.6 CPU s where
``pyarrow.compute.dictionary_encode`` takes 0.14 s, and ``frame[mask]`` of four text columns
about 1.2 s where ``pyarrow.compute.filter`` takes 0.3 s. The functions here give the same
results as the pandas calls they replace (the same codes, uniques, rows, dtypes, index and
attrs) and fall back to pandas wherever a column is not a pyarrow-backed text column.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["is_arrow_text", "blank_text", "factorize", "first_rows", "renumber", "as_categorical", "select_rows", "relabel", "text_column", "unique_index", "write_parquet", "write_parquet_parts", "writes_in_parts", "PART_ROWS"]

#: A column whose first rows hold more distinct values than this is factorized by pandas: the
#: per-chunk dictionaries of pyarrow's encoding are then large and unifying them costs more
#: than pandas' one hash table (user ids, millions of them).
FEW_DISTINCT = 4096
#: pandas' ``str`` dtype backed by pyarrow, missing values NaN: the text columns this module builds.
TEXT_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
_PROBE = 65536


def is_arrow_text(s: pd.Series) -> bool:
    """Whether ``s`` is a text column held in a pyarrow array (pandas' ``str`` / ``string[pyarrow]``)."""
    return isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"


def _chunks(s: pd.Series) -> pa.ChunkedArray:
    return s.array.__arrow_array__()


def factorize(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(s, sort=False)``: codes (int64; int32 for a Categorical) in order of first appearance and the
    uniques as an Index of ``s``'s dtype. A pyarrow-backed text column with few distinct values
    (models, winners) is encoded by pyarrow, one with many (user ids) from
    :data:`HASHED_MIN_ROWS` rows on through integer hashes; missing values are left to pandas
    (code -1)."""
    if isinstance(s.dtype, pd.CategoricalDtype) and not s.hasnans:
        return _factorize_categorical(s)
    if is_arrow_text(s) and not s.hasnans:
        if len(pc.unique(_chunks(s).slice(0, _PROBE))) <= FEW_DISTINCT:
            return _factorize_few(s)
        hashed = _factorize_hashed(s) if len(s) >= HASHED_MIN_ROWS else None
        if hashed is not None:
            return hashed
    codes, uniques = pd.factorize(s, sort=False)
    return codes.astype(np.int64, copy=False), pd.Index(uniques)


def release_arrow_memory() -> None:
    """Give the memory pyarrow's pool keeps from freed buffers back to the system. Reading a
    file decodes it through temporary buffers that the pool (mimalloc or jemalloc) otherwise
    keeps for reuse, although what comes after allocates mostly through numpy: on ten million
    votes read from Parquet about 350 MB of the process's resident memory, held to its end.
    Only unused memory is released; nothing held by a live array moves."""
    pa.default_memory_pool().release_unused()


def _factorize_few(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """:func:`factorize` of a pyarrow text column with no missing values and few distinct
    values, by pyarrow's dictionary encoding."""
    chunked = _chunks(s)
    # each chunk's dictionary is in order of first appearance within it; unifying appends the
    # values new to each later chunk, so the unified dictionary is in order of first appearance
    encoded = pc.dictionary_encode(chunked).unify_dictionaries()
    if encoded.num_chunks == 0:
        return np.zeros(0, dtype=np.int64), pd.Index(s.iloc[:0])
    codes = np.empty(len(s), dtype=np.int64)  # filled chunk by chunk: one allocation, one copy
    start = 0
    for chunk in encoded.chunks:
        codes[start:start + len(chunk)] = chunk.indices.to_numpy(zero_copy_only=False)
        start += len(chunk)
    values = encoded.chunk(0).dictionary
    return codes, pd.Index(type(s.array)(pa.chunked_array([values]), dtype=s.dtype), name=s.name)


#: From this many rows a text column with many distinct values (user ids) is factorized through
#: two 64-bit hashes of each value, computed in one compiled pass over pyarrow's buffers, and a
#: compiled hash table of integers instead of pandas' of strings (10,000,000 votes from 1,000,000
#: users: about 0.7 s against 2.7 s for ``pd.factorize``, ``benchmarks/em_speed.py`` rows 5b and
#: 5). Below it, pandas: numba is not imported for a small table.
HASHED_MIN_ROWS = 1 << 18


@lru_cache(maxsize=1)
def _hash_kernels():
    """The compiled loops of :func:`_factorize_hashed` (numba imported on first use)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def hash_values(offsets, data, first, second):  # pragma: no cover - compiled
        # FNV-1a and an independent multiply-xorshift over each value's UTF-8 bytes, each
        # finished by a 64-bit mixer; the second also takes the length
        for i in range(first.shape[0]):
            a = np.uint64(14695981039346656037)
            b = np.uint64(0x9E3779B97F4A7C15)
            for j in range(offsets[i], offsets[i + 1]):
                x = np.uint64(data[j])
                a = (a ^ x) * np.uint64(1099511628211)
                b = (b + x) * np.uint64(0xFF51AFD7ED558CCD)
                b ^= b >> np.uint64(29)
            a ^= a >> np.uint64(30)
            a *= np.uint64(0xBF58476D1CE4E5B9)
            a ^= a >> np.uint64(27)
            a *= np.uint64(0x94D049BB133111EB)
            a ^= a >> np.uint64(31)
            b ^= np.uint64(offsets[i + 1] - offsets[i])
            b ^= b >> np.uint64(33)
            b *= np.uint64(0xC4CEB9FE1A85EC53)
            b ^= b >> np.uint64(33)
            first[i] = a
            second[i] = b

    @numba.njit(cache=True, nogil=True)
    def hash_table(first, second, codes, start, slots, rows, k):  # pragma: no cover - compiled
        # codes in order of first appearance of the first hashes, by open addressing (linear
        # probing from the hash's low bits: the hash is already mixed), for the rows start,
        # start + 1, ... whose hashes are first and second (one block of rows; the table is
        # carried from block to block): a slot holds the first hash, the second hash of the
        # code's first row and the code + 1 (0: empty), side by side so that a lookup reads one
        # place; rows[c] is code c's first row, k the number of codes. The table doubles when
        # half full (slots has twice as many rows as rows has entries). Returns the table, rows, k and
        # whether every row's second hash is its code's first row's (two values sharing the
        # first hash differ in the second).
        mask = np.uint64(slots.shape[0] - 1)
        agree = True
        for i in range(first.shape[0]):
            h = first[i]
            j = h & mask
            while slots[j, 2] != 0 and slots[j, 0] != h:
                j = (j + np.uint64(1)) & mask
            if slots[j, 2] != 0:
                codes[start + i] = np.int64(slots[j, 2]) - 1
                if slots[j, 1] != second[i]:
                    agree = False
                continue
            if k == rows.shape[0]:
                grown = np.empty(2 * k, np.int64)
                grown[:k] = rows
                rows = grown
                old = slots
                mask = np.uint64(4 * k - 1)
                slots = np.zeros((4 * k, 3), np.uint64)
                for t in range(old.shape[0]):
                    if old[t, 2] != 0:
                        q = old[t, 0] & mask
                        while slots[q, 2] != 0:
                            q = (q + np.uint64(1)) & mask
                        slots[q, 0] = old[t, 0]
                        slots[q, 1] = old[t, 1]
                        slots[q, 2] = old[t, 2]
                j = h & mask
                while slots[j, 2] != 0:
                    j = (j + np.uint64(1)) & mask
            slots[j, 0] = h
            slots[j, 1] = second[i]
            slots[j, 2] = np.uint64(k + 1)
            rows[k] = start + i
            codes[start + i] = k
            k += 1
        return slots, rows, k, agree

    return hash_values, hash_table


def _factorize_hashed(s: pd.Series) -> tuple[np.ndarray, pd.Index] | None:
    """:func:`factorize` of a pyarrow text column with no missing values by hashing: each value's
    first 64-bit hash looked up in a compiled hash table of the hashes seen so far, which gives
    codes in order of first appearance (so the same codes as ``pd.factorize(s, sort=False)``;
    about twice as fast as pandas' factorize of the hashes, with no uniques array), and each
    code's value taken from its first row. Two distinct values with the same first hash would
    share a code; every row's second, independent hash is compared with its code's first
    row's, so such a merge is seen and None returned (the caller then factorizes the strings). A merge that both hashes miss
    needs two values to collide in all 128 bits."""
    chunked = _chunks(s)
    if not _plain_text(chunked):
        return None
    hash_values, hash_table = _hash_kernels()
    codes = np.empty(len(chunked), dtype=np.int64)
    # the table's state, carried from block to block: slots, first rows, number of codes
    slots, rows, k = np.zeros((1 << 12, 3), np.uint64), np.empty(1 << 11, np.int64), 0
    first = np.empty(HASH_BLOCK, dtype=np.uint64)  # one block's hashes at a time, not every row's
    second = np.empty(HASH_BLOCK, dtype=np.uint64)
    start = 0
    for offsets, data in _text_buffers(chunked):
        for lo in range(0, len(offsets) - 1, HASH_BLOCK):
            n = min(HASH_BLOCK, len(offsets) - 1 - lo)
            hash_values(offsets[lo : lo + n + 1], data, first[:n], second[:n])
            slots, rows, k, agree = hash_table(first[:n], second[:n], codes, start, slots, rows, k)
            if not agree:
                return None
            start += n
    del slots
    values = _take_ascending(chunked, rows[:k])
    return codes, pd.Index(type(s.array)(pa.chunked_array([values]), dtype=s.dtype))


def _take_ascending(chunked: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``chunked.take(rows)`` as one array, for ascending ``rows``: taken chunk by chunk (a
    chunked text array's own ``take`` first concatenates every chunk: ten million user ids,
    a 150 MB copy to take a million of them)."""
    bounds = np.cumsum([0] + [len(c) for c in chunked.chunks])
    cut = np.searchsorted(rows, bounds)
    pieces = [chunk.take(pa.array(rows[cut[i] : cut[i + 1]] - bounds[i])) for i, chunk in enumerate(chunked.chunks) if cut[i + 1] > cut[i]]
    return pa.concat_arrays(pieces) if pieces else pa.array([], type=chunked.type)


def values_at(s: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``s.take(rows).to_numpy(dtype=object)`` for ascending ``rows``; a pyarrow-backed text
    column is taken chunk by chunk (:func:`_take_ascending`), not concatenated first: a few
    hundred rows of ten million votes without a copy of the column."""
    if is_arrow_text(s):
        return np.asarray(_take_ascending(_chunks(s), np.asarray(rows, dtype=np.int64)).to_pylist(), dtype=object)
    return s.take(rows).to_numpy(dtype=object)


#: Rows hashed at a time by :func:`_factorize_hashed`: two arrays of this many 64-bit hashes,
#: small enough to stay in the processor's cache between the hashing and the table's lookups
#: (one pair of arrays for every row would be 160 MB on ten million votes).
HASH_BLOCK = 1 << 16


def _plain_text(arr: pa.Array | pa.ChunkedArray) -> bool:
    """Whether the hash kernels can read ``arr``: pyarrow text (``string`` or ``large_string``)
    with no missing value."""
    return not arr.null_count and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type))


def _text_buffers(arr: pa.ChunkedArray):
    """Each non-empty chunk of a text chunked array as its offsets (into its data, which may
    start past 0: a sliced chunk) and its data bytes, as numpy views (no copy)."""
    large = pa.types.is_large_string(arr.type)
    for chunk in arr.chunks:
        n = len(chunk)
        if not n:
            continue
        _, offsets_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int64 if large else np.int32)[chunk.offset : chunk.offset + n + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(1, dtype=np.uint8)
        yield offsets, data


def _hashes(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """The two independent 64-bit hashes of every value of a pyarrow text array (or chunked
    array, hashed chunk by chunk in place: its chunks are not combined into one copy) with no
    missing values (None for any other array), in one compiled pass over its buffers."""
    if not _plain_text(arr):
        return None
    chunked = arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])
    first_hash = np.empty(len(arr), dtype=np.uint64)
    second_hash = np.empty(len(arr), dtype=np.uint64)
    start = 0
    for offsets, data in _text_buffers(chunked):
        n = len(offsets) - 1
        _hash_kernels()[0](offsets, data, first_hash[start : start + n], second_hash[start : start + n])
        start += n
    return first_hash, second_hash


#: Lead bytes of a UTF-8 value that may be whitespace only: the ASCII characters pyarrow's
#: ``utf8_is_space`` (pandas' ``str.isspace``) calls space, asked of pyarrow itself, and every
#: byte from 0x80 (a non-ASCII first character: U+00A0, U+3000, ...).
_SPACE_LEAD = np.concatenate([
    np.asarray(pc.utf8_is_space(pa.array([chr(i) for i in range(128)])).to_numpy(zero_copy_only=False), dtype=bool),
    np.ones(128, dtype=bool),
])


def blank_text(s: pd.Series) -> np.ndarray:
    """Where a pyarrow-backed text column holds an empty or whitespace-only value
    (``s.eq("") | s.str.isspace()``, False where missing). Empty values are read off the
    offsets; only values whose first byte could start a run of whitespace are tested by
    pyarrow's ``utf8_is_space`` (a value is whitespace only if its first character is), so a
    column of ids costs one byte lookup per value instead of a pass over every character."""
    out = np.zeros(len(s), dtype=bool)
    start = 0
    for chunk in _chunks(s).chunks:
        n = len(chunk)
        if n:
            _, offsets_buf, data_buf = chunk.buffers()
            large = pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type)
            offsets = np.frombuffer(offsets_buf, dtype=np.int64 if large else np.int32)[chunk.offset : chunk.offset + n + 1]
            filled = offsets[1:] != offsets[:-1]
            blank = ~filled
            if data_buf is not None and len(data_buf):
                data = np.frombuffer(data_buf, dtype=np.uint8)
                # each value's first byte (an empty value's index is clipped into the buffer; it is not filled)
                lead = data[np.minimum(offsets[:-1], data.size - 1)]
                maybe = np.flatnonzero(_SPACE_LEAD[lead] & filled)
                if maybe.size:
                    blank[maybe] = np.asarray(pc.utf8_is_space(chunk.take(pa.array(maybe))).to_numpy(zero_copy_only=False), dtype=bool)
            if chunk.null_count:
                blank &= chunk.is_valid().to_numpy(zero_copy_only=False)
            out[start : start + n] = blank
        start += n
    return out


def as_categorical(s: pd.Series) -> pd.Series:
    """A text column with few distinct values as a Categorical of the same values (missing
    ones stay missing); a column with many, or of another kind, as it is."""
    if not is_arrow_text(s):
        return s
    codes, uniques = factorize(s)
    if len(uniques) > FEW_DISTINCT:
        return s
    return pd.Series(pd.Categorical.from_codes(codes, categories=uniques), index=s.index, name=s.name)


def from_dictionary(chunked: pa.ChunkedArray, dtype=TEXT_DTYPE, name=None, most: int | None = FEW_DISTINCT) -> pd.api.extensions.ExtensionArray:
    """What :func:`as_categorical` makes of the text column that a dictionary-encoded text
    column (a chunked array read as dictionaries, e.g. by pyarrow's CSV reader) decodes to,
    without ever building that text column: a Categorical of the values in order of first
    appearance (missing values missing), or, with more than ``most`` distinct values
    (:data:`FEW_DISTINCT`; None: no limit, as pandas' reading of a Parquet dictionary), the
    decoded text column of ``dtype``. Each chunk's dictionary is in order of first
    appearance within it and unifying appends the values new to each later chunk, so the
    categories are in order of first appearance, as ``factorize`` gives them (and named ``name``
    where no value is missing, as its pyarrow path names them)."""
    unified = chunked.unify_dictionaries()
    if unified.num_chunks:
        values = unified.chunk(0).dictionary.cast(pa.large_string())
    else:
        values = pa.array([], type=pa.large_string())
    if most is not None and len(values) > most:
        decoded = [c.dictionary_decode().cast(pa.large_string()) for c in unified.chunks]
        return pd.arrays.ArrowStringArray(pa.chunked_array(decoded, type=pa.large_string()), dtype=dtype)
    # -1 is missing; the type pandas gives codes of this many categories
    codes = np.empty(len(unified), dtype=np.int8 if len(values) < 127 else np.int16 if len(values) < 32767 else np.int32)
    start = 0
    for chunk in unified.chunks:
        codes[start:start + len(chunk)] = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        start += len(chunk)
    categories = pd.Index(pd.arrays.ArrowStringArray(pa.chunked_array([values], type=pa.large_string()), dtype=dtype),
                          name=None if chunked.null_count else name)
    return pd.Categorical.from_codes(codes, categories=categories)


def first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """The first row of each code 0 .. n - 1 of ``codes`` (none negative; ``len(codes)`` for a
    code that does not occur).
    Few codes (models, contexts): the first rows of those in the top 65,536 rows, then one
    comparison pass for each code not among them, no row-number array; many: ``np.minimum.at``."""
    out = np.full(n, codes.size, dtype=np.int64)
    if n <= 16:
        top = codes[: 1 << 16]
        values, index = np.unique(top, return_index=True)
        found = values < n
        out[values[found]] = index[found]
        for j in range(n):
            if out[j] == codes.size and top.size < codes.size:
                hit = codes == j
                if hit.any():
                    out[j] = int(hit.argmax())
        return out
    np.minimum.at(out, codes, np.arange(codes.size, dtype=np.int64))
    return out


def renumber(codes: np.ndarray, n: int, dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0 .. n - 1 (none negative) renumbered in order of first appearance, as ``dtype``,
    and the original codes that occur, in that order: a factorize of small integer codes with
    no hash table."""
    first = first_rows(codes, n)
    seen = np.flatnonzero(first < codes.size)
    seen = seen[np.argsort(first[seen], kind="stable")]
    if seen.size == n and np.array_equal(seen, np.arange(n)):  # already in that order: no lookup pass
        return codes.astype(dtype, copy=False), seen
    lookup = np.zeros(n, dtype=dtype)
    lookup[seen] = np.arange(seen.size)
    return lookup[codes], seen


def _factorize_categorical(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """:func:`factorize` of a Categorical from its codes: the categories that occur, renumbered
    in order of first appearance; the uniques a plain Index of the categories' dtype."""
    cats = s.cat.categories
    codes, seen = renumber(s.cat.codes.to_numpy(), len(cats), np.int32)  # 4 bytes a row: models and winners are few
    return codes, pd.Index(cats[seen], dtype=cats.dtype, name=s.name)


def select_rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``frame[mask]`` for a boolean numpy ``mask``: the same rows, index, columns, dtypes and
    attrs, with pyarrow-backed text columns filtered by pyarrow and every other column taken
    at the mask's positions, found once."""
    mask = np.asarray(mask, dtype=bool)
    if not frame.columns.is_unique:
        return frame[mask]
    rows = np.flatnonzero(mask)
    keep = pa.array(mask)
    columns = {}
    for name in frame.columns:
        s = frame[name]
        if is_arrow_text(s):
            columns[name] = type(s.array)(pc.filter(_chunks(s), keep), dtype=s.dtype)
        else:
            columns[name] = s.array.take(rows)
    out = pd.DataFrame(columns, index=frame.index.take(rows), columns=frame.columns, copy=False)
    return out.__finalize__(frame)


def relabel(s: pd.Series, mapping: dict) -> pd.Series | np.ndarray:
    """``s`` with each value ``v`` replaced by ``mapping.get(v, v)``, each distinct value looked
    up once; a pyarrow-backed text column stays one (taken by pyarrow, no Python string per
    row), any other column becomes an object array."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = list(s.cat.categories)
        renamed = [mapping.get(v, v) for v in cats]
        if len(set(renamed)) == len(renamed):
            return s.cat.rename_categories(renamed)
    codes, uniques = factorize(s)
    values = [mapping.get(v, v) for v in uniques]
    if is_arrow_text(s) and all(isinstance(v, str) for v in values) and not (codes < 0).any():
        return pd.Series(text_column(values, codes, dtype=s.dtype), index=s.index, name=s.name)
    out = np.array(values, dtype=object)
    return out[codes] if len(codes) else s


def unique_index(index: pd.Index) -> bool:
    """``index.is_unique``; for a large text index without pandas' hash table of the index
    (about 80 bytes a value, kept with the index once built; a million user ids: 78 MB), which
    is not built just to answer this. From :data:`HASHED_MIN_ROWS` values with none missing,
    the values' first 64-bit hashes (:func:`_factorize_hashed`'s) are compared as integers:
    all distinct means the values are (equal values hash alike), and only if some repeat are
    the values themselves compared, by pyarrow (a million user ids: about 0.07 s against
    0.35 s for pyarrow's ``count_distinct``). Smaller text indexes are counted by pyarrow's
    ``unique`` (missing values: one value, as pandas counts them)."""
    arr = index.array
    if len(index) > _PROBE and isinstance(arr, pd.arrays.ArrowStringArray):
        chunked = arr.__arrow_array__()
        if len(index) >= HASHED_MIN_ROWS:
            hashes = _hashes(chunked)
            if hashes is not None and len(pd.unique(hashes[0].view(np.int64))) == len(index):
                return True
        return len(pc.unique(chunked)) == len(index)
    return bool(index.is_unique)


#: Rows of each chunk of a :func:`text_column`: pyarrow's take grows its output by doubling, so
#: a column taken whole would hold about twice its size at the end (a million per-user reasons:
#: 200 MB for 100); taken in chunks of this many rows it holds its size and one chunk's.
TEXT_CHUNK_ROWS = 1 << 17


def text_column(texts, codes: np.ndarray, dtype=None) -> pd.api.extensions.ExtensionArray:
    """The text column ``texts[codes]`` (missing where a code is negative) as a pyarrow-backed
    text array of ``dtype`` (pandas' ``str`` by default), taken by pyarrow from the few distinct
    ``texts``: no Python string per row (per-user reasons of a million users are a few thousand
    distinct texts), in chunks of :data:`TEXT_CHUNK_ROWS` rows."""
    codes = np.asarray(codes, dtype=np.int64)
    values = pa.array(list(texts), type=pa.large_string())
    chunks = []
    for lo in range(0, len(codes), TEXT_CHUNK_ROWS):
        part = codes[lo : lo + TEXT_CHUNK_ROWS]
        chunks.append(values.take(pa.array(part, mask=part < 0)))  # a negative code is a missing text
    taken = pa.chunked_array(chunks, type=pa.large_string())
    return pd.arrays.ArrowStringArray(taken, dtype=TEXT_DTYPE if dtype is None else dtype)


def _text_categorical(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype) and isinstance(s.dtype.categories.dtype, pd.StringDtype)


def write_parquet(frame: pd.DataFrame, path) -> None:
    """``frame.to_parquet(path, index=False)``, except that Categoricals of text read back as
    text columns, as a table read with ``load_votes(categorical=True)`` was in its file. When
    every other column is a numpy or text column, they are written straight from their
    dictionary encoding (no string per row is built, and Parquet's own dictionary pass over
    them is skipped: about three times faster on ten million votes) and without the Arrow
    schema in the file's metadata (``store_schema=False``, which is what would make a reader
    rebuild them as dictionaries; pandas' extension dtypes also need it, hence the condition);
    otherwise they are cast to text first; the columns written from a dictionary then carry
    no min/max statistics (the others do). Columns with many distinct values are written
    without a dictionary (:func:`_dictionary_columns`)."""
    categorical = [c for c in frame.columns if _text_categorical(frame[c])]
    dictionary = _dictionary_columns(frame)
    if not categorical:
        frame.to_parquet(path, index=False, use_dictionary=dictionary)
        return
    if _from_arrow(frame):
        _write_arrow([frame], path)
        return
    frame.astype({c: TEXT_DTYPE for c in categorical}).to_parquet(path, index=False, use_dictionary=dictionary)


#: Rows of one part of :func:`write_parquet_parts`: pyarrow's default row group size, so that a
#: table written part by part has the row groups of one written whole.
PART_ROWS = 1 << 20


def _from_arrow(frame: pd.DataFrame) -> bool:
    """Whether :func:`write_parquet` writes ``frame`` straight from Arrow: text Categoricals
    beside numpy and text columns, no repeated names."""
    if not frame.columns.is_unique:
        return False
    categorical = [c for c in frame.columns if _text_categorical(frame[c])]
    return bool(categorical) and all(c in categorical or isinstance(frame[c].dtype, np.dtype) or is_arrow_text(frame[c]) for c in frame.columns)


def writes_in_parts(frame: pd.DataFrame) -> bool:
    """Whether :func:`write_parquet_parts` can write tables like ``frame`` part by part: written
    straight from Arrow (:func:`write_parquet`) and no object column, so that no column's type
    depends on the values of a part."""
    return _from_arrow(frame) and not any(frame[c].dtype == object for c in frame.columns)


def write_parquet_parts(parts, path) -> None:
    """:func:`write_parquet` of the concatenation of ``parts`` (an iterable of tables like the
    first, for which :func:`writes_in_parts` holds, in order), written one part at a time, each
    as one row group (of at most :data:`PART_ROWS` rows; parts of exactly that many rows give
    the file that writing the whole table at once gives): the whole table is never held. The
    dictionary columns are chosen on the first part (:func:`_dictionary_columns` reads only
    its first rows, so a first part of more than :data:`FEW_DISTINCT` rows chooses as the
    whole table does). At least one part."""
    _write_arrow(parts, path, check=True)


def _write_arrow(parts, path, check: bool = False) -> None:
    writer = None
    try:
        for part in parts:
            if writer is None and check and not writes_in_parts(part):
                raise ValueError("write_parquet_parts: these columns are not written straight from Arrow, or one holds objects; use write_parquet")
            table = pa.Table.from_pandas(part, preserve_index=False)
            if writer is None:
                # no min/max statistics for the columns written from a dictionary (models,
                # winners, decisions): pyarrow computes them from every row's index, about a
                # quarter of writing ten million votes, for bounds that span every row group
                # (a few values, in no order); the other columns keep theirs
                stats = [c for c in table.schema.names if not pa.types.is_dictionary(table.schema.field(c).type)]
                writer = pq.ParquetWriter(path, table.schema, store_schema=False, use_dictionary=_dictionary_columns(part), write_statistics=stats)
            writer.write_table(table, row_group_size=PART_ROWS)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError("write_parquet_parts needs at least one part")


def _dictionary_columns(frame: pd.DataFrame) -> list | bool:
    """The columns Parquet should dictionary-encode: Categoricals, and columns whose first
    :data:`_PROBE` values hold at most :data:`FEW_DISTINCT` distinct ones. A column with many
    (row ids, user ids, per-user probabilities) is written plainly: Parquet's writer would hash
    its values into a dictionary only to give the dictionary up at its page-size limit (about
    a tenth of the time of writing ten million votes). True (every column) when a column name
    is not a string or repeats, which pandas then handles or refuses itself."""
    if not frame.columns.is_unique or not all(isinstance(c, str) for c in frame.columns):
        return True
    out = []
    for name in frame.columns:
        s = frame[name]
        if isinstance(s.dtype, pd.CategoricalDtype) or len(s) <= FEW_DISTINCT:
            out.append(name)
            continue
        head = s.iloc[:_PROBE]
        try:
            n = len(pc.unique(_chunks(head))) if is_arrow_text(head) else len(pd.unique(head.to_numpy()))
        except (TypeError, ValueError, pa.ArrowException):  # unhashable or unusual values: Parquet decides
            n = 0
        if n <= FEW_DISTINCT:
            out.append(name)
    return out
