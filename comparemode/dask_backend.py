"""Votes beyond one machine: Dask as an executor, not a second implementation
(docs/design.md section 11).

Every model reads the votes only through their counts (:class:`~comparemode.models.counts.
VoteCounts`), and counts merge exactly. So the one thing done on Dask is counting: each
partition is counted by the same ``count_votes`` as in memory and the counts are merged in
partition order (:func:`count_votes_dask`); every fit then runs on the counts, whichever
executor made them, and gives the same numbers as the pandas path, bit for bit, for every
reference (scalar mu, a mu column, strengths, the joint model). No model knowledge lives here,
and no data contract either: votes are read and checked lazily by
:func:`comparemode.data.load_votes`, partition by partition.

Entry points (reached through the ordinary API; Dask is imported only when they run):

- :func:`count_votes_dask`: ``count_votes(ddf)``, and through it ``fit(ddf)`` of every model:
  one pass over the votes (``n_passes_ == 1``);
- :func:`split_lazily`: ``em.filter(ddf)``: kept and dropped votes as lazy Dask DataFrames;
  :func:`write_kept` writes them as partitioned Parquet in one pass (the second pass).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from comparemode._progress import Progress
from comparemode.constants import JSON_LINES, USER
from comparemode.data import (
    is_dask_collection,
    lazy_canonical,
    partition_number,
    require_dask,
)
from comparemode.errors import ConfigError, MissingColumnError, OutputExistsError
from comparemode.models.counts import VoteCounts, count_votes, user_codes

__all__ = ["count_votes_dask", "split_lazily", "write_kept", "write_one_file"]


def _count_partition(part: pd.DataFrame):
    return count_votes(part) if len(part) else VoteCounts.empty()


def count_votes_dask(votes, *, split_every: int = 8):
    """:func:`comparemode.models.counts.count_votes` on Dask: each partition counted on its own
    (``count_votes``), the counts merged in partition order in a tree of ``split_every``-wide
    merges (exact integer sums), computed once. The result is :meth:`identical
    <comparemode.models.counts.VoteCounts.identical>` to counting all the votes at once: no
    model knowledge here, only the count and the merge."""
    dask, _ = require_dask("counting votes lazily")
    ddf, _ = lazy_canonical(votes)
    level = [dask.delayed(_count_partition)(part) for part in ddf.to_delayed()]
    merge = dask.delayed(lambda *tables: sum(tables[1:], tables[0]))
    while len(level) > 1:
        level = [merge(*level[i : i + split_every]) for i in range(0, len(level), split_every)]
    (counts,) = dask.compute(level[0])
    return counts


# --------------------------------------------------------------------------- the pass


# --------------------------------------------------------------------------- joint EM


# --------------------------------------------------------------------------- filtering


def _broadcast(obj):
    """One task holding ``obj``, shared by every partition's task (shipped once per worker)."""
    import dask

    return dask.delayed(obj, traverse=False)


def _decision_arrays(table: pd.DataFrame):
    return table.index, table["keep"].to_numpy(dtype=bool), table["p_attentive"].to_numpy(dtype=float)


def _codes(part, decisions, partition_info):
    return user_codes(decisions[0], part[USER], where=f"partition {partition_number(partition_info)}: ")


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
    require_dask("filtering a Dask DataFrame of votes")
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
    dask, _ = require_dask("writing kept votes as partitioned Parquet")
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


def write_one_file(frame, path, fmt: str) -> int:
    """Write a lazy Dask DataFrame to one file at ``path`` in ``fmt`` (``"csv"``, ``"parquet"`` or
    ``"jsonl"``), partition by partition in order: one partition in memory at a time, the rows
    as ``frame.compute()`` would give them (CSV as Dask's single-file writer writes it, the header
    once and the index included; Parquet and JSON lines without the partitions' own index), each
    partition computed once. Parquet takes the first partition's schema and casts the others to
    it. Returns the rows written."""
    if fmt not in ("csv", "parquet", "jsonl"):
        raise ConfigError(f"format must be 'csv', 'parquet' or 'jsonl', got {fmt!r}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, writer = 0, None
    with open(path, "wb") as fh:
        for i in range(frame.npartitions):
            part = frame.get_partition(i).compute()
            rows += len(part)
            if fmt == "csv":  # as Dask's single-file writer: the header once, the index included
                fh.write(part.to_csv(header=i == 0).encode())
                continue
            if fmt == "jsonl":
                if len(part):
                    text = part.to_json(**JSON_LINES)
                    fh.write((text if text.endswith("\n") else text + "\n").encode())
                continue
            table = pa.Table.from_pandas(part, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(fh, table.schema)
            elif not table.schema.equals(writer.schema):
                table = table.cast(writer.schema)
            writer.write_table(table)
        if fmt == "parquet":
            if writer is None:  # no partition: an empty table with the frame's columns
                writer = pq.ParquetWriter(fh, pa.Table.from_pandas(frame._meta, preserve_index=False).schema)
            writer.close()
    return rows
