"""The counting front door (docs/design.md section 11): the votes every fitter reads pass here.

Every model's sufficient statistic is the same table of integer counts (per user, context and
outcome: :class:`~comparemode.models.counts.VoteCounts`), so the chain validate → resolve the
reference → count is written once, here, for every kind of input: a votes table in memory,
counts made earlier (taken as they are) and lazy votes (a Dask DataFrame, a directory or a
glob of Parquet files), which are counted on Dask partition by partition and merged
(:func:`comparemode.dask_backend.count_votes_dask`). What comes out is the same counts
whichever way they were made, so every fit from them is the same computation.

This module sits above the data contract, the reference and ``models/`` and below
``inference/`` (the layering is checked by ``tests/test_layering.py``).
"""

from __future__ import annotations

from comparemode.dask_backend import count_votes_dask
from comparemode.data import is_lazy_input, validate_votes
from comparemode.models.counts import VoteCounts
from comparemode.models.counts import count_votes as count_table
from comparemode.models.stats import EncodedVotes
from comparemode.reference import (
    Reference,
    count_with,
    encode_counts,
    resolve_reference,
)

__all__ = ["count_votes", "count_and_resolve", "encode_any"]


def count_votes(votes, **kw) -> VoteCounts:
    """Count votes into :class:`~comparemode.models.counts.VoteCounts` (``comparemode.count_votes``):
    a votes table in memory (:func:`comparemode.models.counts.count_votes`, whose keywords it
    takes), or a Dask DataFrame, a directory or a glob of Parquet files, counted partition by
    partition and merged in partition order (:func:`comparemode.dask_backend.count_votes_dask`);
    counts are returned as they are."""
    if isinstance(votes, VoteCounts):
        return votes
    return count_votes_dask(votes) if is_lazy_input(votes) else count_table(votes, **kw)


def count_and_resolve(votes, *, keep_rows: bool = False, progress=None, **reference):
    """``(counts, reference, validated votes or None)`` for a votes table, :class:`VoteCounts`
    or lazy votes. A table is validated, its reference resolved and its votes counted
    (``keep_rows`` keeps each vote's codes in row order); lazy votes are counted on Dask in one
    pass; counts are taken as they are, their reference resolved on one row per context.
    ``reference``: ``mu``, ``strengths``, ``scale``, ``allow_estimate`` as in
    :func:`~comparemode.reference.resolve_reference`; none of them (the joint model) gives
    ``None`` for the reference."""
    if is_lazy_input(votes):
        if progress is not None:
            progress("counting the votes partition by partition (Dask)")
        votes = count_votes_dask(votes)
    if isinstance(votes, VoteCounts):
        return votes, (resolve_reference(votes.context_frame(), **reference) if reference else None), None
    votes = validate_votes(votes)
    ref = resolve_reference(votes, **reference) if reference else None
    return count_with(votes, ref, keep_rows), ref, votes


def encode_any(votes, **reference) -> tuple[Reference, EncodedVotes, object]:
    """:func:`count_and_resolve`, then :func:`~comparemode.reference.encode_counts`: the
    reference, the encoded votes a fitter reads and the user index."""
    counts, ref, _ = count_and_resolve(votes, **reference)
    enc, user_index = encode_counts(counts, ref)
    return ref, enc, user_index
