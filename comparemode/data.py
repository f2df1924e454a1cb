"""The votes table: data contract, loaders and validation.

Every part of comparemode reads votes from one *canonical* table, one row per vote, in the
Chatbot Arena convention:

Columns
-------
user : hashable
    Who cast the vote (any hashable, non-missing id). Read from a CSV or JSON file it is the
    text as written (``007``, ``TRUE``, ``NA`` stay as they are; only an empty field is
    missing); in a DataFrame or Parquet file ints stay ints and strings stay strings.
    Chatbot Arena files call it ``judge``, LLMFAO files ``worker``.
model_a : str
    The model whose answer was shown **first** (left). Read from a text file it is the text
    as written (``1.10`` stays ``1.10``); numbers in a DataFrame are turned into strings.
model_b : str
    The model whose answer was shown second (right). Never equal to ``model_a`` on a row.
winner : str
    ``"model_a"``, ``"model_b"``, ``"tie"`` or ``"tie (bothbad)"``
    (see :data:`comparemode.constants.WINNER_VALUES`).
prompt_id : hashable, optional
    Groups votes cast on the same prompt. Passed through unchecked.
mu : float64, optional
    Known probability, strictly inside (0, 1), that ``model_a``'s answer is truly better.

Every other column passes through unchanged, after the canonical ones, so kept votes keep
their ids and texts. Row labels are kept for a DataFrame input (they must be unique) and are
0-based data-row numbers (a ``RangeIndex``) for a file; row labels a file stores (a Parquet
index, the keys of a JSON object of rows) become a column, named as stored (``index`` when
unnamed). A column named twice in a file's header is refused. Only regular files are read.

Loaders never drop or repair a bad row silently: a row that breaks the contract raises an
error that names the column, the number of bad rows, the first row labels and the offending
values, and says how to fix it. The only rows ever removed are ties, and only on request
(``ties="drop"``), with the count recorded in ``out.attrs["comparemode"]``.

Functions
---------
load_votes
    Read a DataFrame or a file (CSV, Parquet, JSON lines, JSON), map its layout onto the
    canonical one (canonical, Chatbot Arena battles, LLMFAO crowd comparisons, or explicit
    column and winner mappings) and validate it.
validate_votes
    Check a table that already has the canonical columns.
read_arena, read_llmfao
    ``load_votes`` with the format fixed.
"""

from __future__ import annotations

import csv
import glob as _glob
import gzip
import json
import os
import stat
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ._columnar import TEXT_DTYPE, as_categorical, blank_text, from_dictionary, is_arrow_text, relabel, release_arrow_memory
from .constants import (
    MODEL_A,
    MODEL_B,
    MU,
    OPTIONAL_COLUMNS,
    PROMPT_ID,
    REQUIRED_COLUMNS,
    TIE,
    TIE_VALUES,
    USER,
    WIN_A,
    WIN_B,
    WINNER,
    WINNER_VALUES,
)
from .errors import (
    ComparemodeError,
    ConfigError,
    EmptyVotesError,
    InputNotFoundError,
    InvalidValueError,
    MissingColumnError,
    MissingDependencyError,
    MuError,
    VotesError,
)

__all__ = [
    "load_votes",
    "validate_votes",
    "to_input_layout",
    "read_table",
    "read_arena",
    "read_llmfao",
    "FORMATS",
    "FILE_EXTENSIONS",
]

#: Accepted values of ``format``.
FORMATS = ("auto", "canonical", "arena", "llmfao")

#: Accepted values of ``ties``.
TIES_OPTIONS = ("model", "drop")

#: File name endings understood by :func:`load_votes` (matched case-insensitively).
FILE_EXTENSIONS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}

#: Column each known layout reads a canonical column from (identity when absent).
_FORMAT_COLUMNS: dict[str, dict[str, str]] = {
    "canonical": {},
    "arena": {USER: "judge", PROMPT_ID: "question_id"},
    "llmfao": {USER: "worker", MODEL_A: "left", MODEL_B: "right", PROMPT_ID: "prompt"},
}

#: Winner values each known layout maps (on top of the canonical values).
_FORMAT_WINNER_VALUES: dict[str, dict[str, str]] = {
    "llmfao": {"left": WIN_A, "right": WIN_B, "tie": TIE},
}

#: Order in which ``format="auto"`` tries the layouts.
_AUTO_ORDER = ("canonical", "arena", "llmfao")

_ROLES = {
    USER: "who cast the vote",
    MODEL_A: "the model shown first",
    MODEL_B: "the model shown second",
    WINNER: "the vote: " + ", ".join(repr(v) for v in WINNER_VALUES),
    PROMPT_ID: "groups votes on the same prompt",
    MU: "probability that model_a's answer is better",
}

#: Column names other datasets use for a canonical column; suggested when present.
_ALIASES = {
    USER: ("judge", "worker", "annotator", "rater", "voter", "labeler", "performer", "user_id"),
    MODEL_A: ("left", "model_1", "model1", "system_a", "model_left"),
    MODEL_B: ("right", "model_2", "model2", "system_b", "model_right"),
    WINNER: ("label", "preference", "choice", "vote", "outcome", "result"),
}

_MAX_LABELS = 5

#: Canonical columns read as text as written: never parsed as numbers, booleans or missing markers.
_ID_COLUMNS = (USER, MODEL_A, MODEL_B, WINNER, PROMPT_ID)
#: The identifier columns with few distinct values, read as Categoricals with ``categorical=True``.
_CATEGORY_COLUMNS = (MODEL_A, MODEL_B, WINNER)
_MAX_VALUES = 10
_MAX_COLUMNS_SHOWN = 40


# --------------------------------------------------------------------------- public API


def load_votes(
    source: pd.DataFrame | str | os.PathLike,
    *,
    format: str = "auto",
    user: Hashable | None = None,
    model_a: Hashable | None = None,
    model_b: Hashable | None = None,
    winner: Hashable | None = None,
    prompt_id: Hashable | None = None,
    mu: Hashable | None = None,
    winner_values: Mapping[Any, str] | None = None,
    ties: str = "model",
    categorical: bool = False,
) -> pd.DataFrame:
    """Load votes into the canonical table and validate them.

    Parameters
    ----------
    source : pandas.DataFrame or str or os.PathLike
        A DataFrame (never modified) or the path of a file: CSV (``.csv``, ``.csv.gz``),
        Parquet (``.parquet``, ``.pq``), JSON lines (``.jsonl``, ``.ndjson``) or ``.json``
        (a JSON array of records, as FastChat's ``clean_battle_*.json``, or JSON lines).
        A Dask DataFrame, a directory of Parquet files, a glob (``"votes/*.parquet"``) or a
        list of Parquet paths is read lazily and returns a Dask DataFrame whose rows are checked
        partition by partition (needs
        ``pip install comparemode[dask]``).
    format : {"auto", "canonical", "arena", "llmfao"}, default "auto"
        Layout of the input.

        - ``"canonical"``: columns ``user, model_a, model_b, winner`` (+ ``prompt_id``, ``mu``).
        - ``"arena"``: FastChat / Chatbot Arena battles; ``judge`` is the user and
          ``question_id`` the prompt id; winners are already canonical.
        - ``"llmfao"``: LLMFAO crowd comparisons (``id, prompt, model_x, model_y, worker,
          winner, left, right``); ``worker`` is the user, ``left``/``right`` the models shown
          first/second, ``prompt`` the prompt id, and winner ``left``/``right``/``tie``
          becomes ``model_a``/``model_b``/``tie``.
        - ``"auto"``: the first of canonical, arena, llmfao whose required columns are all
          present (``user/model_a/model_b/winner``, ``judge/model_a/model_b/winner``,
          ``worker/left/right/winner``).
    user, model_a, model_b, winner, prompt_id, mu : column label, optional
        Read this canonical column from another input column (the column is renamed, not
        copied). Overrides what ``format`` implies.
    winner_values : mapping, optional
        Maps raw winner values onto canonical ones, e.g.
        ``{"A": "model_a", "B": "model_b", "draw": "tie"}``. Keys are matched exactly, then
        (for strings) after ``str.strip().lower()``. Values not in the mapping are accepted
        if ``str.strip().lower()`` makes them canonical.
    ties : {"model", "drop"}, default "model"
        ``"model"`` keeps tie votes (they are data); ``"drop"`` removes rows whose winner is
        ``"tie"`` or ``"tie (bothbad)"`` (the paper's binary labels) and records how many.
    categorical : bool, default False
        Read a file's ``model_a``, ``model_b`` and ``winner`` columns as pandas Categoricals
        (Parquet: straight from the file's dictionary encoding; CSV: encoded after parsing, the
        text as written) instead of one string per row: the same values, a fraction of the
        memory and of the reading time on large files (``comparemode run`` reads this way). The values are
        the same as without it; only the dtype differs. A DataFrame passed in keeps its dtypes.

    Returns
    -------
    pandas.DataFrame
        Columns ``user, model_a, model_b, winner``, then ``prompt_id`` and ``mu`` when
        present, then every other input column unchanged. ``model_a``/``model_b`` hold
        strings (Categoricals of strings with ``categorical=True``), ``winner`` the canonical
        strings, ``mu`` float64, ``user`` its
        input values. The index is the input's (DataFrame) or a RangeIndex of data rows
        (file); ``ties="drop"`` keeps the labels of the remaining rows.
        ``out.attrs["comparemode"]`` records ``rows_in``, ``ties_dropped``, ``rows_out``,
        ``format`` (the detected one), ``source`` and ``columns`` (canonical column ->
        input column, for renamed ones).

    Raises
    ------
    ConfigError
        Unknown ``format``, ``ties`` or file extension; a bad ``winner_values``; mapping
        arguments that clash (two arguments naming one column, or a rename onto a column
        that already exists).
    InputNotFoundError
        ``source`` is a path that does not exist (also a ``FileNotFoundError``).
    EmptyVotesError
        The table has no rows (empty file, header only, empty DataFrame), or
        ``ties="drop"`` removed every row.
    MissingColumnError
        A required column is absent, or a mapping argument names a column that is absent.
        The message lists the available columns and the argument that fixes it.
    InvalidValueError
        Non-unique index; missing or unhashable user id; missing model; unknown winner
        value; ``model_a == model_b`` on a row. The message names the column, the number of
        rows, the first row labels and the values.
    MuError
        The ``mu`` column is not numeric, is NaN or infinite, or is not strictly inside
        (0, 1).
    VotesError
        A file exists but cannot be parsed.

    Examples
    --------
    >>> votes = load_votes("crowd-comparisons.csv")          # doctest: +SKIP
    >>> votes = load_votes(df, user="worker", winner_values={"A": "model_a", "B": "model_b"})
    ... # doctest: +SKIP
    """
    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not one of {FORMATS}")
    _check_ties(ties)
    if not isinstance(categorical, (bool, np.bool_)):
        raise ConfigError(f"categorical must be True or False, got {categorical!r}")
    explicit = {
        canon: src
        for canon, src in (
            (USER, user),
            (MODEL_A, model_a),
            (MODEL_B, model_b),
            (WINNER, winner),
            (PROMPT_ID, prompt_id),
            (MU, mu),
        )
        if src is not None
    }
    for canon, src in explicit.items():
        if not isinstance(src, Hashable):
            raise ConfigError(f"{canon}={src!r} must be a column label, got {type(src).__name__}")
    if winner_values is not None:
        _check_winner_values(winner_values)
    if is_lazy_input(source):  # a Dask DataFrame, a directory or glob of Parquet files
        return _load_lazily(source, format, explicit, winner_values, ties)

    if isinstance(source, pd.DataFrame):
        df = source
        from_file = False
        source_desc = "DataFrame"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)

        def layout_columns(canonical):  # the input columns of these canonical ones, once the header is known
            def pick(cols):
                if not canonical:
                    return []
                try:
                    _, mapping = _resolve_columns(pd.Index(cols), format, explicit)
                except ComparemodeError:
                    return []  # resolved again after reading, with the full message
                return [mapping[c] for c in canonical if c in mapping]

            return pick

        text_columns = layout_columns(_ID_COLUMNS)  # the identifier columns, read as text
        category_columns = layout_columns(_CATEGORY_COLUMNS if categorical else ())  # the few-valued ones, as Categoricals

        df = _read_file(path, text_columns, category_columns)
        from_file = True
        source_desc = str(path)
    else:
        raise ConfigError(
            f"source must be a pandas DataFrame or a file path, got {type(source).__name__}"
        )

    rows_in = len(df)
    if rows_in == 0:
        if from_file:
            raise EmptyVotesError(f"{source_desc} has a header but no rows: there are no votes")
        raise EmptyVotesError("the votes table has no rows: there are no votes")
    if not from_file:
        _check_index(df.index)

    fmt, mapping = _resolve_with_index_hint(df, format, explicit)
    renamed = {canon: src for canon, src in mapping.items() if src != canon}
    out = _to_canonical(df, mapping)

    values_map = dict(_FORMAT_WINNER_VALUES.get(fmt, {}))
    if winner_values is not None:
        values_map.update(winner_values)

    written: dict = {}
    out = _validate(out, winner_values=values_map, sources=renamed, from_file=from_file, written=written)

    ties_dropped = 0
    if ties == "drop":
        is_tie = out[WINNER].isin(TIE_VALUES).to_numpy(dtype=bool, na_value=False)
        ties_dropped = int(is_tie.sum())
        if ties_dropped:
            if ties_dropped == len(out):
                raise EmptyVotesError(
                    f"all {ties_dropped:,} votes are ties: ties='drop' leaves no votes; "
                    "use ties='model' to keep them"
                )
            out = out.loc[~is_tie]
    if out is df:
        out = df.copy(deep=False)  # never touch the caller's object, not even its attrs
    out.attrs["comparemode"] = {
        "rows_in": rows_in,
        "ties_dropped": ties_dropped,
        "rows_out": len(out),
        "format": fmt,
        "source": source_desc,
        "columns": renamed,
        "input_columns": list(df.columns),
        "winner_written": written,
        "ties": ties,
    }
    return out


def to_input_layout(votes: pd.DataFrame, meta: Mapping[str, Any] | None = None, *, extra: Sequence = ()) -> pd.DataFrame:
    """Rows of canonical votes back in the layout they were read in: the input's column names
    and order, its winner values (``left``/``right`` for LLMFAO), then the ``extra`` columns
    (e.g. ``weight``, ``decision``). ``meta`` is ``load_votes``' ``attrs["comparemode"]``
    (default: ``votes.attrs``); without it the votes are returned as they are. A winner value
    written several ways in the input (``A`` and ``a``) stays canonical. The index (the input's
    row labels) is kept."""
    meta = votes.attrs.get("comparemode", {}) if meta is None else meta
    order = meta.get("input_columns")
    if not order:
        return votes
    back = {canon: src for canon, src in meta.get("columns", {}).items()}
    out = votes.rename(columns=back) if back else votes.copy(deep=False)
    written = meta.get("winner_written") or {}
    win = back.get(WINNER, WINNER)
    if written and win in out.columns:
        out[win] = relabel(out[win], written)
    cols = [c for c in order if c in out.columns] + [c for c in extra if c in out.columns]
    return out.loc[:, cols]


def validate_votes(votes: pd.DataFrame) -> pd.DataFrame:
    """Check a table that already has the canonical columns and return it.

    Runs the checks of :func:`load_votes` (required columns, unique index, user ids, models,
    winner values, ``model_a != model_b``, ``mu``) without any column mapping. Winner values
    are accepted after ``str.strip().lower()``.

    Parameters
    ----------
    votes : pandas.DataFrame
        Columns ``user, model_a, model_b, winner`` and optionally ``prompt_id``, ``mu`` and
        any others.

    Returns
    -------
    pandas.DataFrame
        ``votes`` itself if nothing needs changing; otherwise a new table (the input is
        never modified) with the canonical columns first, non-string model names turned
        into strings, winners normalised and ``mu`` as float64.

    Raises
    ------
    EmptyVotesError, MissingColumnError, InvalidValueError, MuError
        As in :func:`load_votes`.
    """
    if not isinstance(votes, pd.DataFrame):
        raise ConfigError(f"votes must be a pandas DataFrame, got {type(votes).__name__}")
    if len(votes) == 0:
        raise EmptyVotesError("the votes table has no rows: there are no votes")
    _check_index(votes.index)
    _resolve_with_index_hint(votes, "canonical", {})
    out = _reorder(votes)
    return _validate(out, winner_values={}, sources={}, from_file=False)


def read_llmfao(path: str | os.PathLike, **kw: Any) -> pd.DataFrame:
    """Read an LLMFAO crowd-comparisons file: ``load_votes(path, format="llmfao", **kw)``."""
    return load_votes(path, format="llmfao", **kw)


def read_arena(path: str | os.PathLike, **kw: Any) -> pd.DataFrame:
    """Read a FastChat / Chatbot Arena battles file: ``load_votes(path, format="arena", **kw)``."""
    return load_votes(path, format="arena", **kw)


# --------------------------------------------------------------------------- arguments


def _check_ties(ties: Any) -> None:
    if not isinstance(ties, str) or ties not in TIES_OPTIONS:
        raise ConfigError(
            f"ties={ties!r} is not one of {TIES_OPTIONS}: 'model' keeps tie votes, "
            "'drop' removes them"
        )


def _check_winner_values(winner_values: Any) -> None:
    if not isinstance(winner_values, Mapping):
        raise ConfigError(
            f"winner_values must be a mapping from raw winner values to one of {WINNER_VALUES}, "
            f"got {type(winner_values).__name__}"
        )
    bad = {
        k: v
        for k, v in winner_values.items()
        if not (isinstance(v, str) and v in WINNER_VALUES)
    }
    if bad:
        raise ConfigError(
            f"winner_values maps onto values outside {WINNER_VALUES}: {bad!r}"
        )


# --------------------------------------------------------------------------- files


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(FILE_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return FILE_EXTENSIONS[ext]
    ext = "".join(path.suffixes[-2:]) if path.suffixes else ""
    shown = repr(ext) if ext else "no extension"
    raise ConfigError(
        f"cannot read {str(path)!r}: unknown file extension ({shown}); supported: "
        + ", ".join(FILE_EXTENSIONS)
    )


_FILE_TYPES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_input_file(path, what: str = "votes file", error: type = VotesError) -> os.stat_result:
    """Refuse, before opening it, anything that is not a regular file (a FIFO would block the
    read forever, a device like ``/dev/zero`` never ends); returns the file's ``stat``.

    Raises :class:`InputNotFoundError` for a missing path and ``error`` otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputNotFoundError(f"{what} not found: {str(path)!r}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    if stat.S_ISREG(st.st_mode):
        return st
    kind = next((name for test, name in _FILE_TYPES if test(st.st_mode)), "not a regular file")
    hint = (
        "; a directory is read only when it holds Parquet files (*.parquet, *.pq)"
        if stat.S_ISDIR(st.st_mode) and error is VotesError else ""
    )
    raise error(
        f"{what} {str(path)!r} is {kind}, not a regular file: comparemode reads only regular files, "
        f"checked whole before any fit (a pipe can block forever and a device can be endless){hint}. "
        "Save the data to a file and pass that"
    )


#: The strings pandas reads as missing by default; comparemode applies them to every column
#: except identifiers (user, models, winner, prompt id), where only an empty field is missing.
PANDAS_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)


def _csv_header(path: Path, sep: str = ",") -> list[str] | None:
    """The header fields exactly as written (pandas renames duplicates to ``x.1``)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace") as fh:
            for row in csv.reader(fh, delimiter=sep):
                if any(f.strip() for f in row):
                    return row
    except (OSError, csv.Error, EOFError):
        return None  # pandas reports what is wrong with the file
    return None


def _check_duplicate_header(path: Path, header: list[str] | None) -> None:
    if not header:
        return
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        if name.strip():
            seen.setdefault(name, []).append(i + 1)
    dups = {name: pos for name, pos in seen.items() if len(pos) > 1}
    if dups:
        shown = "; ".join(f"{name!r} at fields {', '.join(map(str, pos))}" for name, pos in list(dups.items())[:5])
        raise InvalidValueError(
            f"cannot read {str(path)!r}: its header names a column more than once ({shown}); which one holds the "
            "data is ambiguous, so nothing is guessed: rename or remove the duplicates"
        )


#: A CSV file of at least this many bytes has its text columns read by pyarrow's multi-threaded
#: CSV reader, which builds pyarrow text columns directly: ten million votes in about 3.5 CPU s
#: against about 20 s for pandas' parser, which makes a Python string of every field first
#: (issue 16). Anything pyarrow refuses, or reads with other columns than pandas, is read by
#: pandas after all; smaller files always are.
ARROW_CSV_MIN_BYTES = 1 << 20


def _read_csv_arrow(path, cols: list, text: list, kw: dict, na: dict | None = None, category=()) -> pd.DataFrame | None:
    """``read_csv_text``'s table read by pyarrow (the text columns; those in ``category`` read
    as dictionaries and made Categoricals as :func:`~comparemode._columnar.as_categorical`
    makes them of the text, never one string per row: on ten million votes three model and
    winner columns would be 450 MB of text) and by pandas (the other
    columns, if any, each read as pandas reads it, through ``usecols``, with the missing-value
    markers ``na`` of ``read_csv_text``: pandas' own by default); None where pyarrow
    cannot be relied on to read the file exactly as pandas does: a small file, an option other
    than the separator, a header pandas renames (empty or mangled names), or any row pyarrow
    refuses (a short row, a whitespace-only line, a stray delimiter, text that is not UTF-8)."""
    if set(kw) - {"sep", "low_memory"} or not isinstance(path, (str, os.PathLike)):
        return None
    try:
        if os.stat(path).st_size < ARROW_CSV_MIN_BYTES:
            return None
    except OSError:
        return None
    sep = kw.get("sep", ",")
    if _csv_header(Path(path), sep) != cols:  # a name pandas made up or mangled (an empty or a repeated one)
        return None
    import pyarrow.csv as pcsv

    read = [c for c in cols if c in text]
    if not read:
        return None
    try:
        table = pcsv.read_csv(
            path,
            parse_options=pcsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                include_columns=read,
                column_types={c: pa.dictionary(pa.int32(), pa.large_string()) if c in category else pa.large_string() for c in read},
                null_values=[""],  # as in pandas' reading: only an empty field, quoted or not, is missing text
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, OSError, ValueError):
        return None
    columns = {c: from_dictionary(table.column(c), name=c) if c in category else pd.arrays.ArrowStringArray(table.column(c), dtype=TEXT_DTYPE) for c in read}
    del table
    others = [c for c in cols if c not in text]
    if others:
        markers = {c: (na or {}).get(c, list(PANDAS_NA_STRINGS)) for c in others}
        rest = pd.read_csv(path, usecols=others, keep_default_na=False, na_values=markers, **kw)
        if len(rest) != len(columns[read[0]]) or not isinstance(rest.index, pd.RangeIndex):
            return None
        columns.update({c: rest[c] for c in others})
    return pd.DataFrame({c: columns[c] for c in cols}, copy=False)


def read_csv_text(path, text_columns, category_columns=(), **kw) -> pd.DataFrame:
    """``pandas.read_csv`` with ``text_columns`` read as the text written in the file: never
    parsed as numbers, booleans or missing markers (``007``, ``TRUE``, ``1.10`` and ``NA`` stay
    as they are); only an empty field is missing there. ``text_columns`` is a list of column
    names or a callable that gets the header's names and returns the list;
    ``category_columns`` (the same kinds) are text columns read as Categoricals of that text."""
    cols = list(pd.read_csv(path, nrows=0, **kw).columns)
    text = list(text_columns(cols) if callable(text_columns) else text_columns)
    category = set(category_columns(cols) if callable(category_columns) else category_columns)
    text += [c for c in category if c not in text]
    na = {c: list(PANDAS_NA_STRINGS) for c in cols if c not in text}
    for c in text:
        na[c] = [""]
    df = _read_csv_arrow(path, cols, text, kw, na, category)
    if df is None:
        df = pd.read_csv(path, dtype={c: str for c in text if c in cols}, keep_default_na=False, na_values=na, **kw)
    # text first, then Categoricals: the parser's own dtype="category" reads "1.10" as 1.1
    for c in category:
        if c in df.columns and not isinstance(df[c], pd.DataFrame):
            df[c] = as_categorical(df[c])
    return df


def _read_file(path: Path, text_columns=lambda cols: [], category_columns=lambda cols: []) -> pd.DataFrame:
    """Read a votes file; ``text_columns(columns)`` names the identifier columns, which are
    read as text as written (CSV, JSON) once the header is known; ``category_columns(columns)``
    those of them read as Categoricals (CSV, and Parquet text columns, from the file's own
    dictionary encoding)."""
    st = check_input_file(path)  # a FIFO or a device is refused before anything opens it
    kind = _file_kind(path)
    if st.st_size == 0:
        raise EmptyVotesError(f"{str(path)!r} is empty: there are no votes")
    try:
        if kind in ("csv", "tsv"):
            sep = "\t" if kind == "tsv" else ","
            _check_duplicate_header(path, _csv_header(path, sep))
            df = read_csv_text(path, text_columns, category_columns, low_memory=False, sep=sep)
        elif kind == "parquet":
            df = _keep_index(_read_parquet(path, category_columns), path)
        else:
            df = _read_json(path, lines=kind == "jsonl", text_columns=text_columns)
    except pd.errors.EmptyDataError as exc:
        raise EmptyVotesError(f"{str(path)!r} is empty: there are no votes") from exc
    except (EmptyVotesError, VotesError):
        raise
    except pd.errors.ParserError as exc:
        hint = ""
        if "Expected" in str(exc):
            hint = (
                ". A row with more fields than the header usually holds a stray delimiter (an unquoted "
                "comma in a value, or a trailing comma): quote the value or remove the extra delimiter"
            )
        raise VotesError(f"cannot read {str(path)!r} as {kind}: {str(exc).strip()}{hint}") from exc
    except UnicodeDecodeError as exc:
        raise VotesError(f"cannot read {str(path)!r} as {kind}: it is not UTF-8 text ({exc}); save it as UTF-8, e.g. "
            "pd.read_csv(path, encoding='latin-1').to_csv(new_path, index=False)") from exc
    except (ValueError, OSError) as exc:
        raise VotesError(f"cannot read {str(path)!r} as {kind}: {exc}") from exc
    finally:
        release_arrow_memory()  # the reader's decoding buffers, kept by pyarrow's pool otherwise
    if kind in ("csv", "tsv") and not isinstance(df.index, pd.RangeIndex):
        # pandas turns the leading fields into an index when every data row has more fields
        # than the header; dropping that index would shift every value one column over
        extra = df.index.nlevels
        raise VotesError(
            f"cannot read {str(path)!r} as csv: the data rows have {len(df.columns) + extra} fields but the "
            f"header names {len(df.columns)} ({list(df.columns)[:10]}): a stray delimiter, for example a "
            "trailing comma on every row. Remove it, or add a name for the extra column to the header"
        )
    if kind == "csv" and len(df.columns) == 1 and isinstance(df.columns[0], str):
        seps = [sep for sep in (";", "\t", "|") if sep in df.columns[0]]
        if seps:
            raise VotesError(
                f"cannot read {str(path)!r} as csv: its header {df.columns[0][:200]!r} is one column holding "
                f"{seps[0]!r}: the file separates fields with {seps[0]!r}, not commas. Convert it, e.g. "
                f"pd.read_csv(path, sep={seps[0]!r}).to_csv(new_path, index=False), or pass that DataFrame"
            )
    return df


def _read_parquet(path: Path, category_columns) -> pd.DataFrame:
    """``pandas.read_parquet``; the text columns ``category_columns(columns)`` names are read as
    dictionaries (Categoricals), never as one string per row. Those are read by pyarrow and
    made Categoricals straight from the file's dictionaries (``_columnar.from_dictionary``: the
    Categorical pandas makes of them, without its copy of every chunk's codes in 32 bits and
    then in 8: on ten million votes 120 MB of fresh memory a column), the other columns by
    pandas with the index and attributes the file stores; where the columns cannot be put
    back in place by name (repeated or non-text names, a column that is also the index, no
    other column), pandas reads the dictionaries too."""
    schema = pq.read_schema(path)
    wanted = set(category_columns(list(schema.names)))
    dictionary = [f.name for f in schema if f.name in wanted and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
    if not dictionary:
        return pd.read_parquet(path)
    stored_index = {c for c in ((schema.pandas_metadata or {}).get("index_columns") or []) if isinstance(c, str)}
    others = [n for n in schema.names if n not in dictionary and n not in stored_index]
    if not others or stored_index & set(dictionary) or len(set(schema.names)) != len(schema.names):
        return pd.read_parquet(path, read_dictionary=dictionary)
    rest = pd.read_parquet(path, columns=others)
    if list(rest.columns) != others:  # names pandas restored to another type (e.g. integers)
        return pd.read_parquet(path, read_dictionary=dictionary)
    table = pq.read_table(path, columns=dictionary, read_dictionary=dictionary)
    if table.num_rows != len(rest):  # pragma: no cover - one file, two reads of its columns
        raise VotesError(f"cannot read {str(path)!r} as parquet: its columns have different numbers of rows")
    columns = {n: pd.Series(from_dictionary(table.column(n), most=None), index=rest.index, copy=False) if n in dictionary else rest[n]
               for n in schema.names if n not in stored_index}
    del table
    out = pd.DataFrame(columns, index=rest.index, copy=False)
    out.attrs = rest.attrs
    return out


def read_table(path) -> pd.DataFrame:
    """A table file (CSV, TSV, Parquet, JSON lines, JSON) read with the votes reader's checks
    and messages, without the votes' layout: e.g. the responses table of an export."""
    return _read_file(Path(path))


def _keep_index(df: pd.DataFrame, where) -> pd.DataFrame:
    """Row labels stored with the data (a Parquet file's index, a JSON object's keys) become
    columns, first, named as stored (``index`` when unnamed): a vote id must not be dropped.
    The default labels 0, 1, ... carry nothing and are dropped."""
    idx = df.index
    if isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1 and idx.name is None:
        return df
    names = [n if n is not None else ("index" if idx.nlevels == 1 else f"level_{i}") for i, n in enumerate(idx.names)]
    clash = [n for n in names if n in set(df.columns)]
    if clash:
        raise InvalidValueError(
            f"{str(where)!r} stores row labels named {clash[0]!r} beside a column of the same name: which one is "
            f"meant is ambiguous; rename one of them (e.g. df.rename_axis('vote_id').to_parquet(...))"
        )
    return df.reset_index(names=names)


class _JSONNumber(str):
    """A JSON number kept as the text it was written as (``1.10`` stays ``1.10``)."""

    __slots__ = ()


_JSON = json.JSONDecoder(parse_int=_JSONNumber, parse_float=_JSONNumber, parse_constant=_JSONNumber)


def _json_number(v: _JSONNumber):
    text = str(v)
    if text in ("NaN", "Infinity", "-Infinity"):
        return float(text.replace("Infinity", "inf"))
    try:
        return int(text)
    except ValueError:
        return float(text)


def _as_text(v):
    if isinstance(v, _JSONNumber):
        return str(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    return v


def _finish_json(df: pd.DataFrame, text: set) -> pd.DataFrame:
    """Identifier columns hold the text of each value as written (numbers and true/false
    included); every other column gets its numbers back as numbers."""
    out = {}
    for col in df.columns:
        values = df[col].to_numpy(dtype=object)
        if col in text:
            conv = [_as_text(v) for v in values]
            if all(isinstance(v, str) or v is None for v in conv):
                out[col] = pd.array(conv, dtype="str")
            else:
                out[col] = pd.array(conv, dtype=object)
            continue
        if not any(isinstance(v, _JSONNumber) for v in values):
            out[col] = df[col].infer_objects()
            continue
        conv = [_json_number(v) if isinstance(v, _JSONNumber) else v for v in values]
        series = pd.Series(conv, index=df.index, dtype=object)
        nonnull = [v for v in conv if v is not None]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in nonnull):
            series = pd.to_numeric(series)
        out[col] = series
    return pd.DataFrame({c: (v if isinstance(v, pd.Series) else pd.Series(v, index=df.index)) for c, v in out.items()},
                        index=df.index)[list(df.columns)]


_LAYOUT_NAMES = frozenset({"user", "judge", "worker", "model_a", "model_b", "left", "right", "winner"})


def _json_frame(obj, path: Path) -> pd.DataFrame:
    """A DataFrame from any orientation ``DataFrame.to_json`` writes: records (a list of
    objects), columns (the default: an object of columns, each an object of row labels),
    index (an object of rows), split and table; also an object of column lists and a single
    object. ``values`` (rows without column names) is refused."""
    shown = str(path)
    if isinstance(obj, list):
        if not obj:
            raise EmptyVotesError(f"{shown!r} holds an empty JSON array: there are no votes")
        if all(isinstance(r, dict) for r in obj):
            return pd.DataFrame(obj, dtype=object)
        if all(isinstance(r, list) for r in obj):
            raise VotesError(
                f"{shown!r} holds rows without column names (pandas' orient='values'): write it with "
                "df.to_json(path, orient='records') or pass pd.DataFrame(rows, columns=[...]) instead"
            )
        kinds = sorted({type(r).__name__ for r in obj})
        raise VotesError(f"{shown!r} holds a JSON array of {', '.join(kinds)}: one vote per element needs objects (orient='records')")
    if not isinstance(obj, dict):
        raise VotesError(f"{shown!r} holds a single JSON {type(obj).__name__}, not votes: write the table with df.to_json(path, orient='records')")
    if not obj:
        raise EmptyVotesError(f"{shown!r} holds an empty JSON object: there are no votes")
    keys = set(obj)
    if {"schema", "data"} <= keys and isinstance(obj["data"], list):  # orient="table"
        df = pd.DataFrame(obj["data"], dtype=object)
        key = obj["schema"].get("primaryKey") if isinstance(obj["schema"], dict) else None
        if key == ["index"] and list(df.get("index", [])) == list(map(_JSONNumber, map(str, range(len(df))))):
            df = df.drop(columns="index")  # the default labels 0, 1, ...
        return df
    if {"columns", "data"} <= keys <= {"columns", "index", "data"} and isinstance(obj["data"], list):  # orient="split"
        df = pd.DataFrame(obj["data"], columns=obj["columns"], dtype=object)
        if "index" in obj:
            labels = [str(v) for v in obj["index"]]
            if labels != [str(i) for i in range(len(df))]:
                df.index = pd.Index(labels)
                df = _keep_index(df, path)
        return df
    values = list(obj.values())
    if all(isinstance(v, dict) for v in values):
        inner = set().union(*(v.keys() for v in values))
        outer_named = len(keys & _LAYOUT_NAMES) >= 2
        inner_named = len(inner & _LAYOUT_NAMES) >= 2
        as_columns = outer_named or (not inner_named and len(keys) <= len(inner))
        if as_columns:  # orient="columns": {column: {row label: value}}
            labels = list(dict.fromkeys(k for v in values for k in v))
            df = pd.DataFrame({c: [col.get(k) for k in labels] for c, col in obj.items()}, dtype=object)
        else:  # orient="index": {row label: {column: value}}
            labels = list(obj)
            df = pd.DataFrame(values, dtype=object)
        if labels != [str(i) for i in range(len(df))]:
            df.index = pd.Index(labels)
            df = _keep_index(df, path)
        return df
    if all(isinstance(v, list) for v in values):
        lengths = {len(v) for v in values}
        if len(lengths) > 1:
            raise VotesError(f"{shown!r} holds an object of column lists of different lengths ({sorted(lengths)}): not a table")
        return pd.DataFrame(obj, dtype=object)
    if not any(isinstance(v, (dict, list)) for v in values):
        return pd.DataFrame([obj], dtype=object)  # one vote
    raise VotesError(
        f"{shown!r} holds a JSON object mixing lists, objects and single values: not a table pandas writes. "
        "Write the table with df.to_json(path, orient='records')"
    )


def _read_json_lines(path: Path) -> list:
    records = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:].lstrip()
            if not line:
                continue
            try:
                obj = _JSON.decode(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise VotesError(f"cannot read {str(path)!r} as JSON lines: line {lineno} is not UTF-8 text ({exc.reason})") from None
            except json.JSONDecodeError as exc:
                raise VotesError(
                    f"cannot read {str(path)!r} as JSON lines: line {lineno} is not valid JSON ({exc.msg}, at character "
                    f"{exc.colno} of the line); fix or remove that line"
                ) from None
            if not isinstance(obj, dict):
                raise VotesError(
                    f"cannot read {str(path)!r} as JSON lines: line {lineno} holds a JSON {type(obj).__name__}, not an "
                    'object; each line is one vote, as {"user": ..., "model_a": ..., "model_b": ..., "winner": ...}'
                )
            records.append(obj)
    if not records:
        raise EmptyVotesError(f"{str(path)!r} holds no JSON lines: there are no votes")
    return records


def _read_json(path: Path, lines: bool, text_columns) -> pd.DataFrame:
    """A ``.jsonl`` file (one object per line) or a ``.json`` file (any orientation pandas
    writes; JSON lines too). Numbers are kept as written until the identifier columns are
    known: those keep the text, the others get numbers."""
    if lines:
        df = pd.DataFrame(_read_json_lines(path), dtype=object)
    else:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
        if not text.strip():
            raise EmptyVotesError(f"{str(path)!r} is empty: there are no votes")
        try:
            obj = _JSON.decode(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":  # more than one document: JSON lines in a .json file
                df = pd.DataFrame(_read_json_lines(path), dtype=object)
                return _finish_json(df, set(text_columns(list(df.columns))))
            raise VotesError(
                f"cannot read {str(path)!r} as JSON: {exc.msg} at line {exc.lineno}, character {exc.colno}"
            ) from None
        df = _json_frame(obj, path)
    return _finish_json(df, set(text_columns(list(df.columns))))


# --------------------------------------------------------------------------- columns


def _shown_columns(columns: list) -> str:
    if len(columns) <= _MAX_COLUMNS_SHOWN:
        return repr(columns)
    more = len(columns) - _MAX_COLUMNS_SHOWN
    return repr(columns[:_MAX_COLUMNS_SHOWN])[:-1] + f", ... ({more} more)]"


def _case_variants(columns: list, name: Any) -> list:
    if not isinstance(name, str):
        return []
    key = name.strip().lower()
    return [c for c in columns if isinstance(c, str) and c != name and c.strip().lower() == key]


def _required_sources(fmt: str, explicit: Mapping[str, Any]) -> dict[str, Any]:
    implied = _FORMAT_COLUMNS[fmt]
    return {c: explicit.get(c, implied.get(c, c)) for c in REQUIRED_COLUMNS}


def _resolve_columns(
    columns: pd.Index, format: str, explicit: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Pick the layout and return it with the map canonical column -> input column."""
    cols = list(columns)
    present = set(cols)

    for canon, src in explicit.items():
        if src not in present:
            msg = f"{canon}={src!r}: the votes table has no column {src!r}"
            variants = _case_variants(cols, src)
            if variants:
                msg += f"; did you mean {variants[0]!r}? pass {canon}={variants[0]!r}"
            raise MissingColumnError(msg + f". Available columns: {_shown_columns(cols)}")

    if format == "auto":
        for fmt in _AUTO_ORDER:
            if all(s in present for s in _required_sources(fmt, explicit).values()):
                break
        else:
            raise MissingColumnError(_missing_message("auto", cols, explicit))
    else:
        fmt = format
        if not all(s in present for s in _required_sources(fmt, explicit).values()):
            raise MissingColumnError(_missing_message(fmt, cols, explicit))

    mapping: dict[str, Any] = _required_sources(fmt, explicit)
    for canon in OPTIONAL_COLUMNS:
        if canon in explicit:
            mapping[canon] = explicit[canon]
            continue
        implied = _FORMAT_COLUMNS[fmt].get(canon)
        if implied is not None and implied in present and canon not in present:
            mapping[canon] = implied
        elif canon in present:
            mapping[canon] = canon

    # Two canonical columns from one input column, or a rename onto an existing column.
    by_source: dict[Any, str] = {}
    for canon, src in mapping.items():
        if src in by_source:
            raise ConfigError(
                f"input column {src!r} is used for both {by_source[src]!r} and {canon!r}; "
                "each canonical column needs its own input column"
            )
        by_source[src] = canon
    for canon, src in mapping.items():
        if src != canon and canon in present and canon not in by_source:
            how = f"{canon}={src!r}" if canon in explicit else f"format={fmt!r}"
            raise ConfigError(
                f"{how} reads {canon!r} from column {src!r}, but the votes table already has a "
                f"column {canon!r}; drop or rename it first (e.g. df.drop(columns={canon!r})) "
                f"or pass {canon}={canon!r} to use it"
            )

    _check_unique_columns(cols, mapping)
    return fmt, mapping


def _check_unique_columns(cols: list, mapping: Mapping[str, Any]) -> None:
    for canon, src in mapping.items():
        n = sum(1 for c in cols if c == src)
        if n > 1:
            raise InvalidValueError(
                f"column {src!r} (read as {canon!r}) appears {n} times in the votes table; "
                "column names must be unique: rename or drop the duplicates"
            )


def _missing_message(fmt: str, cols: list, explicit: Mapping[str, Any]) -> str:
    """Message for a layout whose required columns are not all present."""
    present = set(cols)
    base = "canonical" if fmt == "auto" else fmt
    sources = _required_sources(base, explicit)
    missing = [(c, s) for c, s in sources.items() if s not in present]
    names = ", ".join(repr(s) for _, s in missing)
    if fmt == "auto" or fmt == "canonical":
        msg = f"the votes table lacks required column(s) {names}."
    else:
        msg = f"format={fmt!r} needs column(s) {names}, which the votes table lacks."
    msg += f" Available columns: {_shown_columns(cols)}."
    for canon, src in missing:
        role = f"{canon!r} ({_ROLES[canon]})"
        if src != canon:
            role = f"{canon!r} ({_ROLES[canon]}; format={base!r} reads it from {src!r})"
        variants = _case_variants(cols, src) or _case_variants(cols, canon)
        aliases = [a for a in _ALIASES.get(canon, ()) if a in present]
        if variants:
            hint = f"did you mean {variants[0]!r}? pass {canon}={variants[0]!r}"
        elif aliases:
            hint = f"pass {canon}={aliases[0]!r} to read it from column {aliases[0]!r}"
        else:
            hint = f"pass {canon}='<column>' to read it from another column"
        msg += f" {role}: {hint}."
    if fmt == "auto":
        layouts = "; ".join(
            f"{f}: " + ", ".join(_required_sources(f, {}).values()) for f in _AUTO_ORDER
        )
        msg += f" format='auto' recognises no known layout ({layouts})."
    else:
        fits = [
            f
            for f in _AUTO_ORDER
            if f != fmt and all(s in present for s in _required_sources(f, explicit).values())
        ]
        if fits:
            msg += f" The table looks like format={fits[0]!r}."
    return msg


def _to_canonical(df: pd.DataFrame, mapping: Mapping[str, Any]) -> pd.DataFrame:
    """Rename mapped columns and put the canonical ones first (a new object, data shared)."""
    renames = {src: canon for canon, src in mapping.items() if src != canon}
    out = df.rename(columns=renames) if renames else df
    return _reorder(out)


def _reorder(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical columns first, the others after in input order (positional: duplicated
    pass-through labels stay as they are)."""
    cols = list(df.columns)
    is_first = [isinstance(c, str) and c in _CANONICAL_SET for c in cols]
    rank = {c: i for i, c in enumerate(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}
    first = sorted((i for i, f in enumerate(is_first) if f), key=lambda i: rank[cols[i]])
    order = first + [i for i, f in enumerate(is_first) if not f]
    if order == list(range(len(cols))):
        return df
    return df.iloc[:, order]


_CANONICAL_SET = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)


# --------------------------------------------------------------------------- rows


def _check_index(index: pd.Index) -> None:
    if index.is_unique:
        return
    dup = index[index.duplicated()].unique()
    shown = list(dup[:_MAX_LABELS])
    names = [n for n in index.names if n is not None]
    keep = (
        f"votes.reset_index() first: it keeps {', '.join(map(repr, names))} as column(s)"
        if names else "votes.reset_index() first: it keeps the old labels as a column 'index'"
    )
    raise InvalidValueError(
        f"the votes table's index has {len(dup):,} duplicated label(s) (first: {shown!r}); "
        f"errors name rows by label, so labels must be unique: call {keep} "
        "(reset_index(drop=True) would delete them)"
    )


def _resolve_with_index_hint(df: pd.DataFrame, format: str, explicit: Mapping[str, Any]):
    """:func:`_resolve_columns`, saying so when a missing column is the table's index."""
    try:
        return _resolve_columns(df.columns, format, explicit)
    except MissingColumnError as exc:
        in_index = [n for n in df.index.names if n is not None and n not in set(df.columns)
                    and (n in _CANONICAL_SET or n in explicit.values() or any(n in m.values() for m in _FORMAT_COLUMNS.values()))]
        if not in_index:
            raise
        raise MissingColumnError(
            f"{', '.join(map(repr, in_index))} is the table's index, not a column: call votes.reset_index() to make it "
            f"a column (reset_index(drop=True) would delete it). {exc}"
        ) from None


class _Context:
    """What row-level error messages need to know."""

    def __init__(self, index: pd.Index, sources: Mapping[str, Any], from_file: bool) -> None:
        self.index = index
        self.sources = sources
        self.from_file = from_file

    def column(self, canon: str) -> str:
        src = self.sources.get(canon)
        return f"column {canon!r}" + (f" (input column {src!r})" if src is not None else "")

    def rows(self, mask: np.ndarray) -> str:
        pos = np.flatnonzero(mask)
        labels = ", ".join(repr(_py(v)) for v in self.index.take(pos[:_MAX_LABELS]))
        if len(pos) > _MAX_LABELS:
            labels += ", ..."
        where = ", 0-based data rows of the file" if self.from_file else ""
        return f"{len(pos):,} row(s) (first row labels{where}: [{labels}])"


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _shown_values(values: Any) -> str:
    """The distinct values (first few) as a list literal; only called on error paths."""
    seen: list = []
    keys: set = set()
    for i, v in enumerate(values):
        if i >= 100_000:
            break
        v = _py(v)
        key = (type(v).__name__, repr(v))
        if key in keys:
            continue
        keys.add(key)
        seen.append(v)
        if len(seen) > _MAX_VALUES:
            break
    text = ", ".join(repr(v) for v in seen[:_MAX_VALUES])
    if len(seen) > _MAX_VALUES:
        text += ", ..."
    return f"[{text}]"


def _blank_mask(s: pd.Series) -> np.ndarray:
    """True where a value is missing: NaN/None/NA or a string that is empty after strip()."""
    mask = np.array(s.isna().to_numpy(dtype=bool), dtype=bool, copy=True)
    dtype = s.dtype
    if is_arrow_text(s):
        mask |= blank_text(s)
    elif isinstance(dtype, pd.StringDtype):
        blank = s.eq("") | s.str.isspace()
        mask |= blank.to_numpy(dtype=bool, na_value=False)
    elif isinstance(dtype, pd.CategoricalDtype):
        cats = pd.Series(dtype.categories)
        cat_blank = _blank_mask(cats) if len(cats) else np.zeros(0, dtype=bool)
        if cat_blank.any():
            codes = s.cat.codes.to_numpy()
            mask |= (codes >= 0) & cat_blank[np.maximum(codes, 0)]
    elif dtype == object:
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind in ("string", "mixed", "mixed-integer"):
            blank = s.str.strip().eq("")
            mask |= blank.to_numpy(dtype=bool, na_value=False)
    return mask


def _is_str_valued(s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.StringDtype):
        return True
    if isinstance(s.dtype, pd.CategoricalDtype):  # Categoricals of strings stay Categoricals
        cats = s.dtype.categories
        return isinstance(cats.dtype, pd.StringDtype) or (cats.dtype == object and pd.api.types.infer_dtype(cats, skipna=True) in ("string", "empty"))
    return s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) == "string"


_HASHABLE_KINDS = {
    "string",
    "bytes",
    "integer",
    "floating",
    "mixed-integer-float",
    "decimal",
    "boolean",
    "empty",
}


def _check_user(s: pd.Series, ctx: _Context) -> None:
    missing = _blank_mask(s)
    if missing.any():
        raise InvalidValueError(
            f"{ctx.column(USER)} has no user id on {ctx.rows(missing)}; values: "
            f"{_shown_values(s[missing])}. Every vote needs the id of the user who cast it: "
            "fill in the ids or drop those rows"
        )
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in _HASHABLE_KINDS:
        try:
            pd.unique(s)
        except TypeError:
            bad = s.map(lambda v: not _hashable(v)).to_numpy(dtype=bool)
            raise InvalidValueError(
                f"{ctx.column(USER)} holds unhashable values on {ctx.rows(bad)}; values: "
                f"{_shown_values(s[bad])}. User ids must be hashable (str, int, tuple...): "
                "convert them, e.g. votes['user'] = votes['user'].astype(str)"
            ) from None


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _check_models(out: pd.DataFrame, ctx: _Context) -> dict[str, pd.Series]:
    """Check missing models; return converted model columns (only those that changed)."""
    changed: dict[str, pd.Series] = {}
    for canon in (MODEL_A, MODEL_B):
        s = out[canon]
        missing = _blank_mask(s)
        if missing.any():
            raise InvalidValueError(
                f"{ctx.column(canon)} has no model name on {ctx.rows(missing)}; values: "
                f"{_shown_values(s[missing])}. Every vote needs both models: fill them in or "
                "drop those rows"
            )
        if not _is_str_valued(s):
            changed[canon] = s.astype("str")
    return changed


def _winner_column(
    s: pd.Series, winner_values: Mapping[Any, str], ctx: _Context, written: dict | None = None
) -> pd.Series | None:
    """Validate the winner column; return the canonical column, or None if unchanged.
    ``written``, when given, receives {canonical value: the value as written} for every
    canonical value written one way only (the back-map of :func:`to_input_layout`)."""
    norm_map = {
        k.strip().lower(): v for k, v in winner_values.items() if isinstance(k, str)
    }

    def canonical(v: Any) -> str | None:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        try:
            if v in winner_values:
                return winner_values[v]
        except TypeError:
            return None
        if isinstance(v, str):
            key = v.strip().lower()
            if key in norm_map:
                return norm_map[key]
            if key in WINNER_VALUES:
                return key
        return None

    try:
        uniques = s.unique()
    except TypeError:
        bad = s.map(lambda v: not _hashable(v)).to_numpy(dtype=bool)
        raise InvalidValueError(
            f"{ctx.column(WINNER)} holds unhashable values on {ctx.rows(bad)}; values: "
            f"{_shown_values(s[bad])}. Allowed values: {WINNER_VALUES}"
        ) from None
    mapped = {}
    bad_values = []
    for v in uniques:
        v = _py(v)
        c = canonical(v)
        if c is None:
            bad_values.append(v)
        else:
            mapped[v] = c
    if bad_values:
        bad_mask = s.isin([v for v in bad_values if not pd.isna(v)]).to_numpy(
            dtype=bool, na_value=False
        )
        if any(pd.isna(v) for v in bad_values):
            bad_mask = bad_mask | s.isna().to_numpy(dtype=bool)
        raise InvalidValueError(
            f"{ctx.column(WINNER)} has values outside {WINNER_VALUES} on {ctx.rows(bad_mask)}; "
            f"bad values: {_shown_values(bad_values)}. Values are accepted after "
            "str.strip().lower(); pass winner_values={<raw value>: <allowed value>, ...} "
            "(e.g. winner_values={'A': 'model_a', 'B': 'model_b', 'draw': 'tie'}) to map "
            "other values, or drop those rows"
        )
    if written is not None:
        ways: dict[str, list] = {}
        for v, c in mapped.items():
            ways.setdefault(c, []).append(v)
        written.update({c: vs[0] for c, vs in ways.items() if len(vs) == 1})
    identity = all(isinstance(v, str) and v == c for v, c in mapped.items())
    if isinstance(s.dtype, pd.CategoricalDtype):  # recoded on the categories, a Categorical of the canonical values
        cats = [_py(v) for v in s.cat.categories]
        if identity and all(c in mapped for c in cats):
            return None
        targets = list(dict.fromkeys(mapped[c] for c in cats if c in mapped))
        where = np.array([targets.index(mapped[c]) if c in mapped else -1 for c in cats] + [-1], dtype=np.int64)
        codes = where[s.cat.codes.to_numpy()]  # code -1 (missing) reads the appended -1
        return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(targets, dtype="str")), index=s.index, name=s.name)
    if identity and (isinstance(s.dtype, pd.StringDtype) or s.dtype == object):
        return None
    codes, uniq = pd.factorize(s)
    targets = np.array([mapped[_py(v)] for v in uniq], dtype=object)
    return pd.Series(pd.array(targets[codes], dtype="str"), index=s.index, name=s.name)


def _same_values(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Row by row ``a == b`` (missing values equal nothing); two Categoricals are compared by
    their codes on shared categories (pandas refuses ``==`` on different categories)."""
    if isinstance(a.dtype, pd.CategoricalDtype) and isinstance(b.dtype, pd.CategoricalDtype):
        cats = a.cat.categories.union(b.cat.categories, sort=False)
        ca = pd.Categorical(a, categories=cats).codes if not a.cat.categories.equals(cats) else a.cat.codes.to_numpy()
        cb = pd.Categorical(b, categories=cats).codes if not b.cat.categories.equals(cats) else b.cat.codes.to_numpy()
        return (ca == cb) & (ca >= 0)
    if isinstance(a.dtype, pd.CategoricalDtype) or isinstance(b.dtype, pd.CategoricalDtype):
        a, b = a.astype(object), b.astype(object)
    return np.asarray(a.array == b.array, dtype=bool)


def _check_same_model(a: pd.Series, b: pd.Series, ctx: _Context) -> None:
    same = _same_values(a, b)
    if same.any():
        raise InvalidValueError(
            f"model_a == model_b on {ctx.rows(same)}; models: {_shown_values(a[same])}. "
            "Both answers from the same model: nothing to compare; drop those rows "
            "(e.g. votes[votes['model_a'] != votes['model_b']])"
        )


def _is_real_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


_NUMERIC_KINDS = {"integer", "floating", "mixed-integer-float", "decimal", "empty"}


def _mu_column(s: pd.Series, ctx: _Context) -> pd.Series | None:
    """Validate the mu column; return it as float64, or None if it already is."""
    dtype = s.dtype
    is_num = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if not is_num:
        kind = pd.api.types.infer_dtype(s, skipna=True) if dtype == object else None
        if kind not in _NUMERIC_KINDS:
            bad = s.map(lambda v: not (v is None or _is_real_number(v))).to_numpy(
                dtype=bool, na_value=True
            )
            if not bad.any():  # e.g. an all-missing column; the NaN check below names it
                bad = np.ones(len(s), dtype=bool)
            raise MuError(
                f"{ctx.column(MU)} must hold numbers (probabilities that model_a's answer is "
                f"better), but is not numeric on {ctx.rows(bad)}; values: "
                f"{_shown_values(s[bad])}. Convert it, e.g. "
                "pd.to_numeric(votes['mu']), or drop the column"
            )
    try:
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    nonfinite = ~np.isfinite(values)
    if nonfinite.any():
        raise MuError(
            f"{ctx.column(MU)} is NaN or infinite on {ctx.rows(nonfinite)}; values: "
            f"{_shown_values(values[nonfinite])}. mu is the probability that model_a's answer "
            "is better: fill it in, drop those rows, or drop the column"
        )
    outside = (values <= 0.0) | (values >= 1.0)
    if outside.any():
        raise MuError(
            f"{ctx.column(MU)} must lie strictly between 0 and 1, but does not on "
            f"{ctx.rows(outside)}; values: {_shown_values(values[outside])}. Clip it, e.g. "
            "votes['mu'].clip(1e-6, 1 - 1e-6), or fix its source"
        )
    if dtype == np.float64:
        return None
    return pd.Series(values, index=s.index, name=s.name)


def _validate(
    out: pd.DataFrame,
    *,
    winner_values: Mapping[Any, str],
    sources: Mapping[str, Any],
    from_file: bool,
    written: dict | None = None,
) -> pd.DataFrame:
    """Row checks on a table with canonical column names; returns ``out`` or a new frame."""
    ctx = _Context(out.index, sources, from_file)
    _check_user(out[USER], ctx)
    changed = _check_models(out, ctx)
    new_winner = _winner_column(out[WINNER], winner_values, ctx, written)
    if new_winner is not None:
        changed[WINNER] = new_winner
    _check_same_model(changed.get(MODEL_A, out[MODEL_A]), changed.get(MODEL_B, out[MODEL_B]), ctx)
    if MU in out.columns:
        new_mu = _mu_column(out[MU], ctx)
        if new_mu is not None:
            changed[MU] = new_mu
    if changed:
        out = out.copy(deep=False)
        for col, s in changed.items():
            out[col] = s
    return out


# --------------------------------------------------------------------------- votes read lazily (Dask)

#: How to install the optional Dask dependencies.
INSTALL_HINT = "pip install comparemode[dask]"
_GLOB_CHARS = "*?["


def is_dask_collection(obj: Any) -> bool:
    """True for a Dask DataFrame or Series (checked without importing Dask)."""
    module = type(obj).__module__ or ""
    return module.split(".")[0] in ("dask", "dask_expr") and hasattr(obj, "npartitions")


def _is_lazy_path(source: Any) -> bool:
    if isinstance(source, (list, tuple)):
        return bool(source) and all(isinstance(s, (str, os.PathLike)) for s in source)
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    if Path(text).is_file():
        return False
    return Path(text).is_dir() or any(c in text for c in _GLOB_CHARS)


def is_lazy_input(source: Any) -> bool:
    """A Dask collection, a directory of Parquet files, a glob pattern or a list of paths."""
    return is_dask_collection(source) or _is_lazy_path(source)


def require_dask(what: str):
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs Dask, which is not installed: {INSTALL_HINT} (or pip install 'dask[dataframe]' distributed)"
        ) from exc
    return dask, dd


# --------------------------------------------------------------------------- loading

#: Validated collections by name: the unvalidated frame and the validation settings, so a fit
#: can validate only the columns it reads (the validation is opaque to Dask's column
#: projection; without this a pass would read every pass-through column too).
_VALIDATED: dict[str, tuple] = {}


def _read(source, dd):
    if is_dask_collection(source):
        if not hasattr(source, "columns"):
            raise ConfigError("votes must be a Dask DataFrame, not a Dask Series")
        return source, "Dask DataFrame"
    paths = [os.fspath(s) for s in source] if isinstance(source, (list, tuple)) else [os.fspath(source)]
    for p in paths:
        if "://" in p:
            continue  # remote storage: Dask checks it
        if Path(p).is_dir():
            if not any(Path(p).rglob("*.parquet")) and not any(Path(p).rglob("*.pq")):
                raise InputNotFoundError(f"directory {p!r} holds no Parquet files (*.parquet, *.pq)")
        elif not _glob.glob(p):
            raise InputNotFoundError(f"no votes files match {p!r}")
        elif any(not f.lower().endswith((".parquet", ".pq")) for f in _glob.glob(p) if Path(f).is_file()):
            raise ConfigError(
                f"{p!r} matches files that are not Parquet; many files are read lazily only as Parquet "
                "(*.parquet, *.pq): convert them, or load one file at a time"
            )
    try:
        import dask

        # the columns get the dtypes pandas.read_parquet gives them (no conversion to Arrow
        # strings), so results match the pandas path on the same files
        with dask.config.set({"dataframe.convert-string": False}):
            return dd.read_parquet(paths if len(paths) > 1 else paths[0]), ", ".join(paths)
    except (OSError, ValueError) as exc:
        raise VotesError(f"cannot read {', '.join(paths)!r} as Parquet: {exc}") from exc


def _target_dtypes(meta: pd.DataFrame) -> dict:
    """Dtypes of the canonical columns after validation, the same in every partition."""
    out = {}
    for col in (MODEL_A, MODEL_B, WINNER):
        dtype = meta[col].dtype
        out[col] = dtype if isinstance(dtype, pd.StringDtype) else pd.Series([], dtype=object).astype("str").dtype
    if MU in meta.columns:
        out[MU] = np.dtype(np.float64)
    return out


def partition_number(partition_info) -> int:
    return int(partition_info["number"]) if partition_info else 0


def _in_partition(exc: Exception, number: int) -> Exception:
    """The same error class, its message saying which partition the rows are in."""
    return type(exc)(f"partition {number}: {exc} (row labels are those within the partition)")


def _validate_partition(part, winner_values, sources, dtypes, partition_info=None):
    no_user = USER not in part.columns  # a pass that reads the model columns only
    try:
        out = _validate(part.assign(**{USER: 0}) if no_user else part, winner_values=winner_values, sources=sources, from_file=False)
    except (VotesError, MuError) as exc:
        raise _in_partition(exc, partition_number(partition_info)) from None
    if no_user:
        out = out.drop(columns=USER)
    changed = {c: out[c].astype(t) for c, t in dtypes.items() if out[c].dtype != t}
    if changed:
        out = out.assign(**changed) if out is not part else part.assign(**changed)
    return out


def _drop_ties(part):
    return part[~part[WINNER].isin(TIE_VALUES).to_numpy(dtype=bool, na_value=False)]


def _load_lazily(source, format: str, explicit: dict, winner_values, ties: str):
    """:func:`load_votes` (whose arguments are checked) for a Dask DataFrame or Parquet files
    read lazily. The layout is detected and the columns mapped on the metadata, so a missing
    column raises :class:`MissingColumnError` at once; the row checks (user ids, models,
    winner values, ``model_a != model_b``, ``mu``) run partition by partition when the votes
    are computed and raise the pandas path's errors, prefixed with the partition number.
    Returns a lazy Dask DataFrame in the canonical layout. ``ties="drop"`` removes tie votes
    lazily (their number is not recorded: that would need a pass)."""
    _, dd = require_dask("reading votes lazily (a Dask DataFrame, a directory or a glob of Parquet files)")
    ddf, _ = _read(source, dd)
    fmt, mapping = _resolve_columns(ddf.columns, format, explicit)
    renames = {src: canon for canon, src in mapping.items() if src != canon}
    if renames:
        ddf = ddf.rename(columns=renames)
    order = list(_reorder(ddf._meta).columns)
    if order != list(ddf.columns):
        ddf = ddf[order]
    values_map = dict(_FORMAT_WINNER_VALUES.get(fmt, {}))
    if winner_values is not None:
        values_map.update(winner_values)
    return _validated(ddf, values_map, {c: s for c, s in mapping.items() if s != c}, ties)


def _validated(ddf, winner_values, sources, ties="model"):
    dtypes = _target_dtypes(ddf._meta)
    meta = ddf._meta.astype(dtypes)
    out = ddf.map_partitions(_validate_partition, winner_values, sources, dtypes, meta=meta)
    if ties == "drop":
        out = out.map_partitions(_drop_ties, meta=meta)
    if len(_VALIDATED) > 256:
        _VALIDATED.pop(next(iter(_VALIDATED)))
    _VALIDATED[out._name] = (ddf, winner_values, sources, ties)
    return out


def lazy_canonical(votes, mu_column=None, with_user: bool = True):
    """A validated canonical Dask DataFrame from any lazy input, with only the columns a pass
    reads: user, model_a, model_b, winner, the mu column (checked as in the pandas path even
    when the reference comes from elsewhere) and ``mu_column``; and the names of all columns."""
    if not (is_dask_collection(votes) and getattr(votes, "_name", None) in _VALIDATED):
        if is_dask_collection(votes):
            _resolve_columns(votes.columns, "canonical", {})
            order = list(_reorder(votes._meta).columns)
            votes = _validated(votes if order == list(votes.columns) else votes[order], {}, {})
        else:
            votes = _load_lazily(votes, "auto", {}, None, "model")
    raw, winner_values, sources, ties = _VALIDATED[votes._name]
    all_columns = list(raw.columns)
    needed = {MODEL_A, MODEL_B, WINNER, MU} | ({USER} if with_user else set()) | ({mu_column} if isinstance(mu_column, str) else set())
    columns = [c for c in raw.columns if c in needed]
    if columns == all_columns:
        return votes, all_columns
    return _validated(raw[columns], winner_values, sources, ties), all_columns
