"""Votes beyond one machine: the pass over the votes on Dask (docs/design.md section 4).

The only pass over the raw votes is the per-user aggregation into sufficient statistics;
everything after it (the EM on count patterns, the filter's decisions) is small. This module
runs that pass with Dask DataFrame group-bys, so the votes can live in Parquet files larger
than memory (Dask's local scheduler reads them partition by partition) or on a cluster
(``dask.distributed``), and hands the small per-user statistics to the same EM code as the
pandas path.

Entry points (reached through the ordinary API; Dask is imported only when they run):

- :func:`load_votes_dask`: ``load_votes(ddf)`` / ``load_votes("votes/*.parquet")`` /
  ``load_votes("votes_dir/")``: the column mapping is resolved on the metadata at once and the
  row checks of :func:`comparemode.load_votes` run lazily, partition by partition;
- :func:`fit_two_type`: ``TwoTypeEM().fit(ddf, mu=...)`` (scalar mu, a mu column or strengths);
  :func:`prepare_bayesian`: ``BayesianTwoType().fit(ddf, mu=...)`` (the PyMC model is built on
  the aggregated count patterns as usual);
- :func:`fit_joint`: ``JointEM().fit(ddf)``: every EM iteration needs the raw votes twice
  (the strengths' MM step needs the iteration's posterior weights, the next E-step the new
  strengths), so it makes two distributed passes per iteration; ``n_passes_`` counts them;
- :func:`apply_decisions`: ``em.filter(ddf)``: kept and dropped votes as lazy Dask DataFrames;
  :func:`write_kept` writes them as partitioned Parquet in one pass.

Equality with the pandas path: users come out in order of first appearance (a row position
key ``partition << 40 | row`` minimised per user) and counts are integers, so with a scalar mu
the per-user table and every fitted number are identical. With a per-vote mu, a second pass
adds each user's attentive log-likelihood terms vote by vote in row order, with the engine the
pandas path would use (:func:`_ordered_attentive_pass`): identical too. The joint EM's sums
over votes are floating-point sums per partition, then across partitions (pandas group-bys use
compensated summation), so they differ in the last bits and the fit agrees to ~1e-8, not bit
for bit.

Passes over the votes (``n_passes_``): scalar mu 1; mu column 2; strengths 3 (the first lists
the models); joint EM 3 + 2 x its iterations over all starts.
"""

from __future__ import annotations

import glob as _glob
import json
import math
import os
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from comparemode._progress import Progress
from comparemode.constants import (
    CODE_A,
    CODE_B,
    CODE_TIE,
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
    EmptyVotesError,
    InputNotFoundError,
    MissingColumnError,
    MissingDependencyError,
    MuError,
    NotIdentifiableError,
    VotesError,
)
from comparemode.models.counts import outcome_codes

__all__ = [
    "INSTALL_HINT",
    "AggregatedVotes",
    "aggregate_votes",
    "apply_decisions",
    "fit_joint",
    "fit_two_type",
    "is_dask_collection",
    "is_lazy_input",
    "load_votes_dask",
    "write_kept",
]

INSTALL_HINT = "pip install comparemode[dask]"
#: Bits of the row-position key that hold the row within its partition.
_POS_BITS = 40
_GLOB_CHARS = "*?["
#: Partial per-user tables combined per step of the group-by's tree reduction (None: Dask's
#: default, 8). The group-bys use ``split_out=1``, a tree reduction into one table: the
#: per-user table is small by design, and Dask's automatic choice for many groups is a
#: shuffle, which on one machine held about twice as much memory in the benchmark.
SPLIT_EVERY = None


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


@dataclass(frozen=True)
class _Spec:
    """What the pass computes per vote (picklable; sent to every partition)."""

    kind: str  # "scalar", "row" or "joint"
    model: str | None = None
    ref: Any = None  # the Reference for per-row mu (column or strengths)
    models: pd.Index | None = None  # joint: the model codes


def _row_mu(part, ref, number):
    from comparemode.reference import _row_mu as row_mu

    try:
        return row_mu(part, ref)
    except MuError as exc:
        raise _in_partition(exc, number) from None


def _user_column(part) -> pd.Series:
    return part[USER].reset_index(drop=True)


def _rows_partition(part, spec: _Spec, partition_info=None):
    """Per vote: user, position key and the indicators the group-by sums."""
    number = _partition_number(partition_info)
    n = len(part)
    outcome = outcome_codes(part[WINNER])
    cols = {
        USER: _user_column(part),
        "pos": (np.int64(number) << _POS_BITS) + np.arange(n, dtype=np.int64),
        "n": np.ones(n, dtype=np.int64),
        "t": (outcome == CODE_TIE).astype(np.int64),
        "f": (outcome == CODE_A).astype(np.int64),
    }
    if spec.kind == "scalar":
        first = (part[MODEL_A] == spec.model).to_numpy(dtype=bool, na_value=False)
        cols["k"] = (((outcome == CODE_A) & first) | ((outcome == CODE_B) & ~first)).astype(np.int64)
        cols["sf"] = ((outcome != CODE_TIE) & first).astype(np.int64)
    return pd.DataFrame(cols)


def _rows_meta(user_meta: pd.Series, kind: str) -> pd.DataFrame:
    cols = {USER: user_meta.reset_index(drop=True)}
    names = ["pos", "n", "t", "f"] + {"scalar": ["k", "sf"], "row": [], "joint": []}[kind]
    for c in names:
        cols[c] = pd.Series([], dtype=np.int64)
    return pd.DataFrame(cols)


def _summary_partition(part, spec: _Spec, partition_info=None):
    """One row per partition: its models (in order of appearance) and, for a per-row mu, what
    the identifiability check needs (first, lowest, highest and most extreme decisive mu)."""
    number = _partition_number(partition_info)
    row = {
        "number": number,
        "rows": len(part),
        "models_a": json.dumps([str(m) for m in pd.unique(part[MODEL_A])]),
        "models_b": json.dumps([str(m) for m in pd.unique(part[MODEL_B])]),
    }
    if spec.kind == "row":
        dec = outcome_codes(part[WINNER]) != CODE_TIE
        mu = _row_mu(part, spec.ref, number)[dec]
        if mu.size:
            row.update(first_mu=mu[0], min_mu=mu.min(), max_mu=mu.max(), dev_mu=mu[np.argmax(np.abs(mu - 0.5))])
        else:
            row.update(first_mu=np.nan, min_mu=np.nan, max_mu=np.nan, dev_mu=np.nan)
    return pd.DataFrame([row])


def _summary_meta(kind: str) -> pd.DataFrame:
    cols = {"number": np.int64, "rows": np.int64, "models_a": object, "models_b": object}
    if kind == "row":
        cols.update(first_mu=np.float64, min_mu=np.float64, max_mu=np.float64, dev_mu=np.float64)
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})


def _models_in(summary: pd.DataFrame) -> list:
    """Models in the pandas path's order: first appearance in model_a, then in model_b."""
    summary = summary.sort_values("number")
    a = [m for s in summary["models_a"] for m in json.loads(s)]
    b = [m for s in summary["models_b"] for m in json.loads(s)]
    return list(pd.unique(np.array(a + b, dtype=object)))


def _proxy(columns, models: list) -> pd.DataFrame:
    """A tiny stand-in for the votes: their columns and their models (what
    :func:`comparemode.reference.resolve_reference` looks at)."""
    frame = pd.DataFrame({c: pd.Series([None] * len(models), dtype=object) for c in columns})
    frame[MODEL_A] = pd.Series(models, dtype=object)
    frame[MODEL_B] = pd.Series(models, dtype=object)
    return frame


def _user_index(values, dtype) -> pd.Index:
    """User ids as the pandas path's ``pd.factorize`` gives them: the user column's dtype."""
    index = pd.Index(values, name=USER)
    if index.dtype != dtype:
        index = index.astype(dtype)
    return index


@dataclass
class AggregatedVotes:
    """The result of the pass: per-user statistics in the pandas path's user order."""

    stats: Any  # UserStats
    user_index: pd.Index
    ref: Any  # Reference
    n_votes: int
    models: list
    n_passes: int
    t0: float
    seconds: float
    favoured: Any = None  # a per-vote mu: per-user favoured counts (TwoTypeEM users_ columns)


def _compute(dask, *collections):
    return dask.compute(*collections)


def _pass_models(ddf, dask, progress: Progress) -> tuple[list, int]:
    """A pass over the model columns only (needed before the main pass when the reference
    depends on which models were voted: strengths, or the joint model's codes)."""
    t0 = time.perf_counter()
    summary = ddf[[MODEL_A, MODEL_B, WINNER]].map_partitions(_summary_partition, _Spec("joint"), meta=_summary_meta("joint"))
    (table,) = _compute(dask, summary)
    progress(f"pass over the model columns: {len(table)} partitions, {int(table['rows'].sum()):,} votes in {time.perf_counter() - t0:.2f}s")
    return _models_in(table), int(table["rows"].sum())


def aggregate_votes(votes, *, mu=None, strengths=None, scale: str = "bt", careless: str = "beta", split_out: int = 1, split_every: int | None = SPLIT_EVERY, verbose: bool = False, progress: Progress | None = None) -> AggregatedVotes:
    """Validate lazy votes and aggregate them into per-user statistics: one Dask group-by pass
    (counts, order of first appearance, models), a second for a per-vote mu (the attentive
    log-likelihoods in row order), and with ``strengths`` a first pass listing the models.
    Raises the pandas path's errors."""
    from comparemode.models.stats import EncodedVotes, UserStats
    from comparemode.reference import check_identifiable, resolve_reference

    dask, _ = _require_dask("fitting on a Dask DataFrame or on Parquet files read lazily")
    progress = progress or Progress(verbose)
    t0 = time.perf_counter()
    ddf, columns = _canonical(votes, mu if isinstance(mu, str) else None)
    n_passes = 0
    if mu is not None and strengths is not None:
        raise MuError("give either mu or strengths, not both")
    models = None
    if strengths is not None:
        models, _ = _pass_models(ddf, dask, progress)
        n_passes += 1
        if not models:
            raise EmptyVotesError("the votes table has no rows: there are no votes")
        ref = resolve_reference(_proxy(columns, models), strengths=strengths, scale=scale)
    elif isinstance(mu, dict):
        (model, _), = mu.items() if len(mu) == 1 else ((None, None),)
        # checks the form and the value now; the models are checked after the pass
        ref = resolve_reference(_proxy(columns, [str(model), "\x00other"]), mu=mu)
    else:
        ref = resolve_reference(_proxy(columns, []), mu=mu)
    spec = _Spec(kind="scalar", model=ref.model) if ref.kind == "scalar" else _Spec(kind="row", ref=ref)
    rows = ddf.map_partitions(_rows_partition, spec, meta=_rows_meta(ddf._meta[USER], spec.kind))
    sums = {c: "sum" for c in rows.columns if c not in (USER, "pos")}
    sums["pos"] = "min"
    per_user = rows.groupby(USER, sort=False).agg(sums, split_out=split_out, split_every=split_every)
    # the summary reads its own columns (a second consumer of the same partitions would keep
    # them in memory until both ran, and stop Dask from fusing the read into the group-by)
    ddf_models, _ = _canonical(votes, mu if isinstance(mu, str) else None, with_user=False)
    summary = ddf_models.map_partitions(_summary_partition, spec, meta=_summary_meta(spec.kind))
    progress(f"pass over {ddf.npartitions:,} partitions: per-user statistics with a Dask group-by")
    table, parts = _compute(dask, per_user, summary)
    n_passes += 1
    table = table.sort_values("pos", kind="stable")
    n_votes = int(table["n"].sum()) if len(table) else 0
    if n_votes == 0:
        raise EmptyVotesError("the votes table has no rows: there are no votes")
    models = _models_in(parts)
    if isinstance(mu, dict):  # the same checks and messages as resolve_reference on the full votes
        ref = resolve_reference(_proxy(columns, models), mu=mu)
    arrays = {c: table[c].to_numpy(dtype=np.int64) for c in table.columns}
    n, t, f = arrays["n"], arrays["t"], arrays["f"]
    favoured = None  # two models: the EM derives the favoured counts from the per-user counts
    if ref.kind == "scalar":
        stats = UserStats(n=n, t=t, f=f, k=arrays["k"], mu=ref.mu)
        decisive = int(n.sum() - t.sum())
        first = int(arrays["sf"].sum())
        codes = [3] * (first > 0) + [CODE_A] * (decisive - first > 0) or [CODE_TIE]
        witness = EncodedVotes(user=np.zeros(len(codes), np.intp), code=np.array(codes, np.int8), n_users=1)
        check_identifiable(witness, ref, careless)
        user_index = _user_index(table.index, ddf._meta[USER].dtype)
    else:
        check_identifiable(_row_witness(parts), ref, careless)
        user_index = _user_index(table.index, ddf._meta[USER].dtype)
        s_row, favoured = _ordered_attentive_pass(ddf, dask, spec, user_index, n, progress)
        n_passes += 1
        stats = UserStats(n=n, t=t, f=f, s_row=s_row)
    seconds = time.perf_counter() - t0
    progress(f"aggregated {n_votes:,} votes from {len(user_index):,} users in {n_passes} pass(es), {seconds:.2f}s")
    return AggregatedVotes(stats=stats, user_index=user_index, ref=ref, n_votes=n_votes, models=models, n_passes=n_passes, t0=t0, seconds=seconds, favoured=favoured)


def _terms_partition(part, spec: _Spec, user_index: pd.Index, partition_info=None):
    """Per vote: the user's code in the final user order, the outcome and mu."""
    mu = _row_mu(part, spec.ref, _partition_number(partition_info))
    return pd.DataFrame({"u": user_index.get_indexer(part[USER]).astype(np.int64), "o": outcome_codes(part[WINNER]), "mu": mu})


@lru_cache(maxsize=1)
def _fold_kernel():
    import numba

    @numba.njit(nogil=True)
    def fold(acc, u, o, mu):
        # the same operations, in the same order, as the compiled pass of models/stats.py
        for i in range(u.shape[0]):
            if o[i] == 0:
                acc[u[i]] += np.log(mu[i])
            elif o[i] == 1:
                acc[u[i]] += np.log1p(-mu[i])
        return acc

    return fold


def _fold(acc: np.ndarray, part: pd.DataFrame, engine: str) -> np.ndarray:
    """Add one partition's per-vote terms to the running per-user sums, vote by vote in row
    order (a copy: task inputs are never modified). Rows of ``acc``: the attentive
    log-likelihood, then the favoured model's picks, the votes on which mu favours a model, and
    the picks of it an attentive user would make on average (``TwoTypeEM``'s favoured counts;
    summed in row order, as ``np.bincount`` sums them on the pandas path)."""
    from comparemode.inference.misfit import vote_agreement

    acc = acc.copy()
    u = part["u"].to_numpy(dtype=np.int64)
    o = part["o"].to_numpy(dtype=np.int8)
    mu = part["mu"].to_numpy(dtype=np.float64)
    if engine == "numba":
        _fold_kernel()(acc[0], u, o, mu)
    else:
        np.add.at(acc[0], u, np.where(o == CODE_A, np.log(mu), np.where(o == CODE_B, np.log1p(-mu), 0.0)))
    informative, agree = vote_agreement(o, mu)
    np.add.at(acc[1], u, (agree & informative).astype(np.float64))
    np.add.at(acc[2], u, informative.astype(np.float64))
    np.add.at(acc[3], u, np.where(informative, np.maximum(mu, 1.0 - mu), 0.0))
    return acc


def _ordered_attentive_pass(ddf, dask, spec: _Spec, user_index: pd.Index, n: np.ndarray, progress: Progress):
    """Per-user attentive log-likelihood with a per-vote mu, summed exactly as the pandas path
    sums it: vote by vote in row order, with the engine it would use (its compiled pass from
    NUMBA_MIN_VOTES votes on while no user reaches the packed limit, NumPy otherwise; the two
    compute logarithms differently in the last bit). The terms are computed partition by
    partition in parallel; only the running sums pass from one partition's task to the next.
    Returns the sums and the per-user favoured counts (see :func:`_fold`)."""
    from comparemode.models.stats import _PACKED_LIMIT, NUMBA_MIN_VOTES

    t0 = time.perf_counter()
    engine = "numba" if int(n.sum()) >= NUMBA_MIN_VOTES and int(n.max()) < _PACKED_LIMIT else "numpy"
    meta = pd.DataFrame({"u": pd.Series([], dtype=np.int64), "o": pd.Series([], dtype=np.int8), "mu": pd.Series([], dtype=np.float64)})
    terms = ddf.map_partitions(_terms_partition, spec, _broadcast(user_index), meta=meta)
    acc = dask.delayed(np.zeros)((4, len(user_index)))
    for part in terms.to_delayed():
        acc = dask.delayed(_fold, pure=True)(acc, part, engine)
    (s,) = _compute(dask, acc)
    progress(f"pass over {ddf.npartitions:,} partitions: attentive log-likelihoods summed in row order ({engine}) in {time.perf_counter() - t0:.2f}s")
    return s[0], (s[1], s[2], s[3])


def _row_witness(parts: pd.DataFrame):
    """At most four decisive votes on which :func:`check_identifiable` decides exactly as on all
    votes: the first decisive vote, the lowest and highest mu, and the mu farthest from 1/2."""
    from comparemode.models.stats import EncodedVotes

    parts = parts.sort_values("number")
    has = parts["first_mu"].notna().to_numpy()
    if not has.any():
        return EncodedVotes(user=np.zeros(1, np.intp), code=np.array([CODE_TIE], np.int8), n_users=1, mu=np.array([0.5]))
    dev = parts["dev_mu"].to_numpy()[has]
    mu = np.array(
        [
            parts["first_mu"].to_numpy()[has][0],
            parts["min_mu"].to_numpy()[has].min(),
            parts["max_mu"].to_numpy()[has].max(),
            dev[np.argmax(np.abs(dev - 0.5))],
        ]
    )
    return EncodedVotes(user=np.zeros(4, np.intp), code=np.zeros(4, np.int8), n_users=1, mu=mu)


def fit_two_type(est, votes, *, mu=None, strengths=None, scale: str = "bt"):
    """``TwoTypeEM.fit`` on lazy votes: one Dask pass into per-user statistics, then the same EM.
    Sets ``n_passes_`` (passes over the votes) besides the usual results."""
    from comparemode.reference import _asks_estimate

    est._check_settings()
    if _asks_estimate(mu):
        raise ConfigError("mu='estimate' is not available for votes on Dask yet: pass a known mu, or fit the votes in memory (pandas)")
    progress = Progress(est.verbose)
    agg = aggregate_votes(votes, mu=mu, strengths=strengths, scale=scale, careless=est.careless, progress=progress)
    est._fit_stats(agg.stats, agg.ref, agg.user_index, progress, n_votes=agg.n_votes, t0=agg.t0)
    if agg.favoured is not None:
        est._favoured = agg.favoured
    est.n_passes_ = agg.n_passes
    return est


def prepare_bayesian(model_config: dict, votes, mu=None, strengths=None, scale: str = "bt"):
    """``BayesianTwoType``'s data preparation on lazy votes: the same per-user counts and
    patterns from one Dask pass; the PyMC model is then built on the patterns as usual. Known
    mu only (scalar, column or strengths); the encoded votes are not kept, so predictive
    replication of a Dask fit is not available."""
    from comparemode.models.stats import patterns_for

    mode = model_config["mu"]
    if mode in ("estimate", "joint"):
        raise ConfigError(
            f"model_config mu={mode!r} is not available for votes on Dask yet; pass a known mu "
            "(mu={'<model>': p}, a mu column or strengths=...), or fit JointEM on Dask"
        )
    agg = aggregate_votes(votes, mu=mu, strengths=strengths, scale=scale, careless=model_config["careless"])
    ties, pat = patterns_for(agg.stats, model_config["ties"])
    return votes, agg.ref, None, agg.user_index, agg.stats, pat, ties


def em_from_stats(settings: dict, stats, ref, user_index):
    """A ``TwoTypeEM`` fitted on per-user statistics (the MCMC's starting values on Dask)."""
    from comparemode.inference.em import TwoTypeEM

    n_votes = int(np.asarray(stats.n).sum())
    return TwoTypeEM(**settings)._fit_stats(stats, ref, user_index, Progress(False), n_votes=n_votes, t0=time.perf_counter())


# --------------------------------------------------------------------------- joint EM


def _joint_rows(part, user_index: pd.Index, models: pd.Index):
    """Decisive votes as codes: user, a, b, a_won."""
    outcome = outcome_codes(part[WINNER])
    dec = outcome != CODE_TIE
    user = user_index.get_indexer(part[USER][dec])
    a = models.get_indexer(part[MODEL_A][dec].astype(str))
    b = models.get_indexer(part[MODEL_B][dec].astype(str))
    return user, a, b, outcome[dec] == CODE_A


def _pairs_partition(part, spec: _Spec):
    """Decisive votes counted per (model_a, model_b, a_won) code."""
    outcome = outcome_codes(part[WINNER])
    dec = outcome != CODE_TIE
    a = spec.models.get_indexer(part[MODEL_A][dec].astype(str))
    b = spec.models.get_indexer(part[MODEL_B][dec].astype(str))
    return pd.DataFrame({"a": a.astype(np.int64), "b": b.astype(np.int64), "a_won": (outcome[dec] == CODE_A).astype(np.int64), "count": np.ones(int(dec.sum()), np.int64)})


def _estep_partition(part, context, beta):
    from comparemode.inference.joint import _log_sigmoid

    user_index, models = context
    user, a, b, a_won = _joint_rows(part, user_index, models)
    d = beta[a] - beta[b]
    logp = np.where(a_won, _log_sigmoid(d), _log_sigmoid(-d))
    return pd.DataFrame({"u": user.astype(np.int64), "logp": logp})


def _evidence_partition(part, context, beta, rho):
    """Per user: sums of the per-vote evidence and of its square (quality score's SE), and the
    favoured model's picks, informative votes and attentive expectation (``users_`` columns)."""
    from scipy.special import expit

    from comparemode.inference.joint import decisive_evidence_sums
    from comparemode.inference.misfit import favoured_counts

    user_index, models = context
    n = len(user_index)
    user, a, b, a_won = _joint_rows(part, user_index, models)
    s1, s2 = decisive_evidence_sums(user, a, b, a_won, beta, rho, n)
    fav, inf, exp = favoured_counts(user, n, np.where(a_won, CODE_A, CODE_B), expit(beta[a] - beta[b]))
    keep = np.flatnonzero(np.bincount(user, minlength=n))
    return pd.DataFrame({"u": keep.astype(np.int64), "x": s1[keep], "x2": s2[keep], "fav": fav[keep], "inf": inf[keep], "exp": exp[keep]})


def _mstep_partition(part, context, beta, gamma):
    """Per model: gamma-weighted decisive wins and the MM denominator sum w / (p_a + p_b)."""
    user_index, models = context
    n_models = len(models)
    user, a, b, a_won = _joint_rows(part, user_index, models)
    p = np.exp(beta - beta.max())
    w = gamma[user]
    winner = np.where(a_won, a, b)
    inv = w / (p[a] + p[b])
    return pd.DataFrame(
        {
            "m": np.arange(n_models, dtype=np.int64),
            "wins": np.bincount(winner, weights=w, minlength=n_models),
            "den": np.bincount(a, weights=inv, minlength=n_models) + np.bincount(b, weights=inv, minlength=n_models),
        }
    )


class _JointBackend:
    """The distributed passes of the joint EM, with a pass counter and a small cache of
    E-step results (every start begins from the same strengths)."""

    def __init__(self, ddf, dask, user_index: pd.Index, models: pd.Index, progress: Progress, cache_size: int = 22):
        self.ddf = ddf[[USER, MODEL_A, MODEL_B, WINNER]]
        self.dask = dask
        self.n_users = len(user_index)
        self.n_models = len(models)
        self.context = _broadcast((user_index, models))
        self.progress = progress
        self.n_passes = 0
        self.e_passes = 0
        self.m_passes = 0
        self._cache: dict[bytes, np.ndarray] = {}  # least recently used first
        self.cache_size = cache_size

    def e_pass(self, beta: np.ndarray) -> np.ndarray:
        key = np.asarray(beta, dtype=np.float64).tobytes()
        if key in self._cache:
            self._cache[key] = self._cache.pop(key)  # most recently used
            return self._cache[key].copy()
        meta = pd.DataFrame({"u": pd.Series([], dtype=np.int64), "logp": pd.Series([], dtype=np.float64)})
        rows = self.ddf.map_partitions(_estep_partition, self.context, np.array(beta, dtype=np.float64), meta=meta)
        (sums,) = _compute(self.dask, rows.groupby("u", sort=False)["logp"].sum(split_out=1, split_every=SPLIT_EVERY))
        self.n_passes += 1
        self.e_passes += 1
        s = np.zeros(self.n_users)
        s[sums.index.to_numpy(dtype=np.int64)] = sums.to_numpy(dtype=np.float64)
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = s
        return s.copy()

    def evidence_pass(self, beta: np.ndarray, rho: np.ndarray):
        """Per-user sums of the decisive votes' evidence and its square, and the favoured
        counts (:meth:`favoured`), in one pass (kept for the last strengths and rates)."""
        beta = np.array(beta, dtype=np.float64)
        rho = np.asarray(rho, dtype=np.float64)
        key = (beta.tobytes(), rho.tobytes())
        if getattr(self, "_evidence", (None,))[0] == key:
            return self._evidence[1]
        cols = ("x", "x2", "fav", "inf", "exp")
        meta = pd.DataFrame({"u": pd.Series([], dtype=np.int64), **{c: pd.Series([], dtype=np.float64) for c in cols}})
        parts = self.ddf.map_partitions(_evidence_partition, self.context, beta, _broadcast(rho), meta=meta)
        (sums,) = _compute(self.dask, parts.groupby("u", sort=False)[list(cols)].sum(split_out=1))
        self.n_passes += 1
        idx = sums.index.to_numpy(dtype=np.int64)
        out = []
        for c in cols:
            v = np.zeros(self.n_users)
            v[idx] = sums[c].to_numpy(dtype=np.float64)
            out.append(v)
        self._evidence = (key, (out[0], out[1]), tuple(out[2:]))
        return self._evidence[1]

    def favoured(self, beta: np.ndarray, rho: np.ndarray):
        """Per user: the favoured model's decisive picks, the votes on which the strengths
        favour a model and an attentive user's expected picks of it (the evidence pass)."""
        self.evidence_pass(beta, rho)
        return self._evidence[2]

    def m_pass(self, beta: np.ndarray, gamma: np.ndarray, prior_games: float) -> np.ndarray:
        """One MM step of :func:`comparemode.inference.joint._bt_mm_step`, sums on Dask."""
        from comparemode.inference.joint import _best_shift

        meta = pd.DataFrame({"m": pd.Series([], dtype=np.int64), "wins": pd.Series([], dtype=np.float64), "den": pd.Series([], dtype=np.float64)})
        parts = self.ddf.map_partitions(
            _mstep_partition, self.context, np.array(beta, dtype=np.float64), _broadcast(np.asarray(gamma, dtype=np.float64)), meta=meta
        )
        (sums,) = _compute(self.dask, parts.groupby("m", sort=False)[["wins", "den"]].sum(split_out=1))
        self.n_passes += 1
        self.m_passes += 1
        sums = sums.reindex(np.arange(self.n_models), fill_value=0.0)
        p = np.exp(beta - beta.max())
        p0 = np.exp(-beta.max())
        wins = sums["wins"].to_numpy() + prior_games
        denom = sums["den"].to_numpy() + 2.0 * prior_games / (p + p0)
        new = np.log(wins / denom) + beta.max()
        return _best_shift(new) if prior_games > 0 else new - new.mean()


def _joint_classes():
    """The Dask versions of the joint EM's problem and estimator (defined on first use, so
    importing this module does not import the inference code)."""
    from comparemode.inference.em import TwoTypeEM, _Problem
    from comparemode.inference.joint import JointEM, _bt_mm_step, _JointProblem

    class DaskJointProblem(_JointProblem):
        def __init__(self, pat, careless, ties, backend: _JointBackend, prior_games: float):
            _Problem.__init__(self, pat, careless, ties)
            self.backend = backend
            self.n_models = backend.n_models
            self.prior_games = prior_games
            self.n_users = pat.size

        def decisive_attentive(self, p):
            return self.backend.e_pass(p["strengths"])

        def decisive_evidence_sums(self, beta, rho):
            return self.backend.evidence_pass(beta, rho)

        def favoured(self, beta, rho):
            return self.backend.favoured(beta, rho)

        def attentive(self, p):
            return self.backend.e_pass(p["strengths"])

        def mstep(self, p, gamma):
            new = _Problem.mstep(self, p, gamma)
            new["strengths"] = self.backend.m_pass(p["strengths"], gamma, self.prior_games)
            return new

    class DaskJointEM(JointEM):
        def fit_lazy(self, votes) -> DaskJointEM:
            from comparemode.models.stats import UserStats
            from comparemode.reference import Reference

            dask, _ = _require_dask("fitting the joint model on a Dask DataFrame or on Parquet files read lazily")
            self._check_settings()
            if self.ties == "davidson":
                raise ConfigError("ties='davidson' is not available on Dask yet: use ties='model' or 'drop', or fit in memory")
            progress = Progress(self.verbose)
            t0 = time.perf_counter()
            ddf, _ = _canonical(votes)
            names, n_rows = _pass_models(ddf, dask, progress)
            if n_rows == 0:
                raise EmptyVotesError("the votes table has no rows: there are no votes")
            if len(names) < 2:
                raise NotIdentifiableError("the votes compare fewer than two models")
            models = pd.Index(np.array(names, dtype=object).astype(str), name="model")
            spec = _Spec(kind="joint", models=models)
            rows = ddf.map_partitions(_rows_partition, spec, meta=_rows_meta(ddf._meta[USER], "joint"))
            per_user = rows.groupby(USER, sort=False).agg({"n": "sum", "t": "sum", "f": "sum", "pos": "min"}, split_out=1, split_every=SPLIT_EVERY)
            pair_rows = ddf.map_partitions(_pairs_partition, spec, meta=pd.DataFrame({c: pd.Series([], dtype=np.int64) for c in ("a", "b", "a_won", "count")}))
            pairs = pair_rows.groupby(["a", "b", "a_won"], sort=False)["count"].sum(split_out=1)
            progress(f"pass over {ddf.npartitions:,} partitions: per-user counts and per-pair decisive votes")
            table, pair_counts = _compute(dask, per_user, pairs)
            table = table.sort_values("pos", kind="stable")
            n = table["n"].to_numpy(np.int64)
            t = table["t"].to_numpy(np.int64)
            if int(n.sum()) == int(t.sum()):
                raise NotIdentifiableError("every vote is a tie: with no decisive votes nothing separates the user types")
            user_index = _user_index(table.index, ddf._meta[USER].dtype)
            pair_counts = pair_counts.reset_index()
            self._pairs = {c: pair_counts[c].to_numpy(np.int64) for c in ("a", "b", "a_won", "count")}
            self._pairs["a_won"] = self._pairs["a_won"].astype(bool)
            self._models = models
            # the cache keeps every start's short run, so choosing a start costs no pass
            backend = _JointBackend(ddf, dask, user_index, models, progress, cache_size=4 + 6 * int(self.n_starts))
            backend.n_passes = 2  # the model pass and the aggregation pass
            self._backend = backend
            # the per-vote mu of the pandas path is a placeholder (the strengths give the
            # attentive term); d * log(1/2) keeps the statistics' shape
            d = (n - t).astype(np.float64)
            stats = UserStats(n=n, t=t, f=table["f"].to_numpy(np.int64), s_row=d * math.log(0.5))
            ref = Reference(kind="joint", source="estimated strengths")
            progress(f"joint EM on {int(n.sum()):,} votes, {len(models)} models, {len(user_index):,} users (two Dask passes per iteration)")
            self.__dict__.pop("_bt_start", None)
            TwoTypeEM._fit_stats(self, stats, ref, user_index, progress, n_votes=int(n.sum()), t0=t0)
            self._leaderboard()
            self.passes_ = {"models": 1, "aggregation": 1, "e_step": backend.e_passes, "m_step": backend.m_passes}
            self.n_passes_ = backend.n_passes
            progress(f"joint EM on Dask: {self.n_passes_} passes over the votes ({backend.e_passes} E-step, {backend.m_passes} M-step)")
            return self

        def _make_problem(self, pat, ties, enc):
            return DaskJointProblem(pat, self.careless, ties, self._backend, float(self.prior_games))

        def _start(self, start, stats, rng, problem) -> dict:
            p = TwoTypeEM._start(self, start, stats, rng, problem)
            if not hasattr(self, "_bt_start"):
                q = self._pairs
                beta = np.zeros(len(self._models))
                w = q["count"].astype(np.float64)
                for _ in range(200):  # plain Bradley-Terry on all decisive votes, from the pair counts
                    beta = _bt_mm_step(beta, q["a"], q["b"], q["a_won"], w, float(self.prior_games), len(self._models))
                self._bt_start = beta
            p["strengths"] = self._bt_start.copy()
            return p

        def _leaderboard(self):
            beta = self._problem_params["strengths"]
            models = self._models
            q = self._pairs
            n_models = len(models)
            self.strengths_ = pd.Series(beta - beta.mean(), index=models, name="strength")
            winner = np.where(q["a_won"], q["a"], q["b"])
            board = pd.DataFrame(
                {
                    "strength": self.strengths_,
                    "wins": np.bincount(winner, weights=q["count"], minlength=n_models).astype(np.int64),
                    "games": (np.bincount(q["a"], weights=q["count"], minlength=n_models) + np.bincount(q["b"], weights=q["count"], minlength=n_models)).astype(np.int64),
                },
                index=models,
            )
            self.leaderboard_ = board.sort_values("strength", ascending=False)
            self.leaderboard_.insert(0, "rank", np.arange(1, n_models + 1))

    return DaskJointEM


def fit_joint(est, votes):
    """``JointEM.fit`` on lazy votes. The E- and M-steps that need the votes run as Dask
    passes; ``n_passes_`` = 2 (models, aggregation) + 1 (first E-step, shared by the starts)
    + 2 x (EM iterations over all starts), and ``passes_`` splits it by kind."""
    helper = _joint_classes()(**est.get_params())
    helper.fit_lazy(votes)
    state = {k: v for k, v in helper.__dict__.items() if k not in est.get_params()}
    est.__dict__.update(state)
    # users_ recomputes the attentive term once (cached: no extra pass) through the problem
    return est


# --------------------------------------------------------------------------- filtering


def _decision_arrays(table: pd.DataFrame):
    return table.index, table["keep"].to_numpy(dtype=bool), table["p_attentive"].to_numpy(dtype=float)


def _codes(part, decisions, partition_info):
    from comparemode.inference.filter import user_codes

    return user_codes(decisions[0], part[USER], where=f"partition {_partition_number(partition_info)}: ")


def _split_partition(part, decisions, keep: bool, partition_info=None):
    codes = _codes(part, decisions, partition_info)
    take = decisions[1][codes]
    return part[take if keep else ~take]


def _weights_partition(part, decisions, partition_info=None):
    codes = _codes(part, decisions, partition_info)
    return pd.Series(decisions[2][codes], index=part.index, name="weight")


def apply_decisions(votes, table: pd.DataFrame):
    """:func:`comparemode.inference.filter.apply_decisions` on a Dask DataFrame of votes: the
    kept and dropped votes and the weights are lazy Dask objects (write them with
    :func:`write_kept`); the decision table is the usual one. The summary counts users from
    the table and votes from its ``n_votes`` column (the votes the model was fitted on);
    :func:`write_kept` recounts them while writing."""
    from comparemode.inference.filter import FilterResult, account

    _require_dask("filtering a Dask DataFrame of votes")
    if USER not in votes.columns:
        raise MissingColumnError(f"the votes need a {USER!r} column; they have {list(votes.columns)}")
    decisions = _broadcast(_decision_arrays(table))
    meta = votes._meta
    kept = votes.map_partitions(_split_partition, decisions, True, meta=meta)
    dropped = votes.map_partitions(_split_partition, decisions, False, meta=meta)
    weights = votes.map_partitions(_weights_partition, decisions, meta=pd.Series([], dtype=np.float64, name="weight"))
    keep_user = table["keep"].to_numpy(dtype=bool)
    summary = dict(table.attrs.get("rule", {}))
    summary.update({"users_in": len(table), "users_kept": int(keep_user.sum()), "users_dropped": int((~keep_user).sum())})
    if "n_votes" in table.columns:
        n_votes = table["n_votes"].to_numpy(dtype=np.int64)
        kept_votes = int(n_votes[keep_user].sum())
        summary.update(
            {
                "votes_in": int(n_votes.sum()),
                "votes_kept": kept_votes,
                "votes_dropped": int(n_votes.sum()) - kept_votes,
                "share_votes_kept": kept_votes / int(n_votes.sum()) if n_votes.sum() else math.nan,
                "votes_counted_from": "users table (n_votes)",
            }
        )
    account(summary, table, keep_user, np.ones(len(table), dtype=bool))  # every user of the table voted
    return FilterResult(kept=kept, dropped=dropped, users=table, weights=weights, summary=summary)


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
    out = _compute(dask, *writes, *counts)
    written = [int(c) for c in out[len(writes):]]
    summary = dict(result.summary)
    summary["votes_kept_written"] = written[0]
    if dropped_path is not None:
        summary["votes_dropped_written"] = written[1]
    summary["path"] = os.fspath(path)
    progress(f"wrote {written[0]:,} kept votes to {os.fspath(path)!r} in {time.perf_counter() - t0:.2f}s")
    return summary
