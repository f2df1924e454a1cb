"""Votes beyond one machine: Dask as an executor, not a second implementation
(docs/design.md section 11).

Every model reads the votes only through their counts (:class:`~comparemode.models.counts.
VoteCounts`), and counts merge exactly. So the one thing done on Dask is counting: each
partition is counted by the same ``count_votes`` as in memory and the counts are merged in
partition order (:func:`count_votes_dask`); every fit then runs on the counts, whichever
executor made them, and gives the same numbers as the pandas path, bit for bit, for every
reference (scalar mu, a mu column, strengths, the joint model). No model knowledge lives here.

Entry points (reached through the ordinary API; Dask is imported only when they run):

- :func:`load_votes_dask`: ``load_votes(ddf)`` / ``load_votes("votes/*.parquet")`` /
  ``load_votes("votes_dir/")``: the column mapping is resolved on the metadata at once and the
  row checks of :func:`comparemode.load_votes` run lazily, partition by partition;
- :func:`count_votes_dask`: ``count_votes(ddf)``, and through it ``fit(ddf)`` of every model:
  one pass over the votes (``n_passes_ == 1``);
- :func:`split_lazily`: ``em.filter(ddf)``: kept and dropped votes as lazy Dask DataFrames;
  :func:`write_kept` writes them as partitioned Parquet in one pass (the second pass).
"""

from __future__ import annotations

import glob as _glob
import os
import time
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from comparemode._progress import Progress
from comparemode.constants import (
    MODEL_A,
    MODEL_B,
    MU,
    PROMPT_ID,
    TIE_VALUES,
    USER,
    WINNER,
)
from comparemode.errors import (
    ConfigError,
    InputNotFoundError,
    MissingColumnError,
    MissingDependencyError,
    MuError,
    VotesError,
)

__all__ = [
    "INSTALL_HINT",
    "split_lazily",
    "count_votes_dask",
    "is_dask_collection",
    "is_lazy_input",
    "load_votes_dask",
    "write_kept",
]

INSTALL_HINT = "pip install comparemode[dask]"
_GLOB_CHARS = "*?["


# --------------------------------------------------------------------------- detection


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


def _require_dask(what: str):
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs Dask, which is not installed: {INSTALL_HINT} (or pip install 'dask[dataframe]' distributed)"
        ) from exc
    return dask, dd


def _broadcast(obj):
    """One task holding ``obj``, shared by every partition's task (shipped once per worker)."""
    import dask

    return dask.delayed(obj, traverse=False)


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


def _partition_number(partition_info) -> int:
    return int(partition_info["number"]) if partition_info else 0


def _in_partition(exc: Exception, number: int) -> Exception:
    """The same error class, its message saying which partition the rows are in."""
    return type(exc)(f"partition {number}: {exc} (row labels are those within the partition)")


def _validate_partition(part, winner_values, sources, dtypes, partition_info=None):
    from comparemode.data import _validate

    no_user = USER not in part.columns  # a pass that reads the model columns only
    try:
        out = _validate(part.assign(**{USER: 0}) if no_user else part, winner_values=winner_values, sources=sources, from_file=False)
    except (VotesError, MuError) as exc:
        raise _in_partition(exc, _partition_number(partition_info)) from None
    if no_user:
        out = out.drop(columns=USER)
    changed = {c: out[c].astype(t) for c, t in dtypes.items() if out[c].dtype != t}
    if changed:
        out = out.assign(**changed) if out is not part else part.assign(**changed)
    return out


def _drop_ties(part):
    return part[~part[WINNER].isin(TIE_VALUES).to_numpy(dtype=bool, na_value=False)]


def load_votes_dask(
    source,
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
):
    """:func:`comparemode.load_votes` for a Dask DataFrame or Parquet files read lazily.

    The layout is detected and the columns mapped on the metadata, so a missing column raises
    :class:`MissingColumnError` at once; the row checks (user ids, models, winner values,
    ``model_a != model_b``, ``mu``) run partition by partition when the votes are computed
    and raise the pandas path's errors, prefixed with the partition number. Returns a lazy
    Dask DataFrame in the canonical layout. ``ties="drop"`` removes tie votes lazily (their
    number is not recorded: that would need a pass).
    """
    from comparemode.data import (
        _FORMAT_WINNER_VALUES,
        FORMATS,
        _check_ties,
        _check_winner_values,
        _reorder,
        _resolve_columns,
    )

    _, dd = _require_dask("reading votes lazily (a Dask DataFrame, a directory or a glob of Parquet files)")
    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not one of {FORMATS}")
    _check_ties(ties)
    explicit = {
        canon: src
        for canon, src in ((USER, user), (MODEL_A, model_a), (MODEL_B, model_b), (WINNER, winner), (PROMPT_ID, prompt_id), (MU, mu))
        if src is not None
    }
    if winner_values is not None:
        _check_winner_values(winner_values)
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


def _count_partition(part: pd.DataFrame):
    from comparemode.models.counts import VoteCounts, count_votes

    return count_votes(part) if len(part) else VoteCounts.empty()


def count_votes_dask(votes, *, split_every: int = 8):
    """:func:`comparemode.models.counts.count_votes` on Dask: each partition counted on its own
    (``count_votes``), the counts merged in partition order in a tree of ``split_every``-wide
    merges (exact integer sums), computed once. The result is :meth:`identical
    <comparemode.models.counts.VoteCounts.identical>` to counting all the votes at once: no
    model knowledge here, only the count and the merge."""
    dask, _ = _require_dask("counting votes lazily")
    ddf, _ = _canonical(votes)
    level = [dask.delayed(_count_partition)(part) for part in ddf.to_delayed()]
    merge = dask.delayed(lambda *tables: sum(tables[1:], tables[0]))
    while len(level) > 1:
        level = [merge(*level[i : i + split_every]) for i in range(0, len(level), split_every)]
    (counts,) = dask.compute(level[0])
    return counts


def _canonical(votes, mu_column=None, with_user: bool = True):
    """A validated canonical Dask DataFrame from any lazy input, with only the columns a pass
    reads: user, model_a, model_b, winner, the mu column (checked as in the pandas path even
    when the reference comes from elsewhere) and ``mu_column``; and the names of all columns."""
    if not (is_dask_collection(votes) and getattr(votes, "_name", None) in _VALIDATED):
        if is_dask_collection(votes):
            from comparemode.data import _reorder, _resolve_columns

            _resolve_columns(votes.columns, "canonical", {})
            order = list(_reorder(votes._meta).columns)
            votes = _validated(votes if order == list(votes.columns) else votes[order], {}, {})
        else:
            votes = load_votes_dask(votes)
    raw, winner_values, sources, ties = _VALIDATED[votes._name]
    all_columns = list(raw.columns)
    needed = {MODEL_A, MODEL_B, WINNER, MU} | ({USER} if with_user else set()) | ({mu_column} if isinstance(mu_column, str) else set())
    columns = [c for c in raw.columns if c in needed]
    if columns == all_columns:
        return votes, all_columns
    return _validated(raw[columns], winner_values, sources, ties), all_columns


# --------------------------------------------------------------------------- the pass














































# --------------------------------------------------------------------------- joint EM


















# --------------------------------------------------------------------------- filtering


def _decision_arrays(table: pd.DataFrame):
    return table.index, table["keep"].to_numpy(dtype=bool), table["p_attentive"].to_numpy(dtype=float)


def _codes(part, decisions, partition_info):
    from comparemode.models.counts import user_codes

    return user_codes(decisions[0], part[USER], where=f"partition {_partition_number(partition_info)}: ")


def _split_partition(part, decisions, keep: bool, partition_info=None):
    codes = _codes(part, decisions, partition_info)
    take = decisions[1][codes]
    return part[take if keep else ~take]


def _weights_partition(part, decisions, partition_info=None):
    codes = _codes(part, decisions, partition_info)
    return pd.Series(decisions[2][codes], index=part.index, name="weight")


def split_lazily(votes, table: pd.DataFrame):
    """The kept votes, the dropped votes and the per-vote weights of a Dask DataFrame of votes,
    as lazy Dask objects, from a decision table indexed by user (``keep``, ``p_attentive``);
    :func:`comparemode.inference.filter.apply_decisions` builds the filter result around them
    and :func:`write_kept` writes them in one pass."""
    _require_dask("filtering a Dask DataFrame of votes")
    if USER not in votes.columns:
        raise MissingColumnError(f"the votes need a {USER!r} column; they have {list(votes.columns)}")
    decisions = _broadcast(_decision_arrays(table))
    meta = votes._meta
    kept = votes.map_partitions(_split_partition, decisions, True, meta=meta)
    dropped = votes.map_partitions(_split_partition, decisions, False, meta=meta)
    weights = votes.map_partitions(_weights_partition, decisions, meta=pd.Series([], dtype=np.float64, name="weight"))
    return kept, dropped, weights


def write_kept(result, path, *, dropped_path=None, overwrite: bool = False, verbose: bool = False) -> dict:
    """Write the kept votes of a lazy filter result as partitioned Parquet (one file per
    partition, in partition order) in one pass, without collecting the votes; ``dropped_path``
    also writes the dropped votes in the same pass. Returns the summary with the votes counted
    while writing."""
    from comparemode.errors import OutputExistsError

    dask, _ = _require_dask("writing kept votes as partitioned Parquet")
    if not is_dask_collection(result.kept):
        raise ConfigError("write_kept needs the result of filtering a Dask DataFrame (votes loaded lazily)")
    progress = Progress(verbose)
    targets = [(result.kept, path)] + ([(result.dropped, dropped_path)] if dropped_path is not None else [])
    for _, p in targets:
        if Path(p).exists() and any(Path(p).iterdir()) and not overwrite:
            raise OutputExistsError(f"{str(p)!r} exists and is not empty; pass overwrite=True to replace it")
    t0 = time.perf_counter()
    writes = [frame.to_parquet(os.fspath(p), compute=False, overwrite=overwrite and Path(p).exists()) for frame, p in targets]
    counts = [frame.map_partitions(len, meta=("rows", np.int64)).sum() for frame, _ in targets]
    out = dask.compute(*writes, *counts)
    written = [int(c) for c in out[len(writes):]]
    summary = dict(result.summary)
    summary["votes_kept_written"] = written[0]
    if dropped_path is not None:
        summary["votes_dropped_written"] = written[1]
    summary["path"] = os.fspath(path)
    progress(f"wrote {written[0]:,} kept votes to {os.fspath(path)!r} in {time.perf_counter() - t0:.2f}s")
    return summary
