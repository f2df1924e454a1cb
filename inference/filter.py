"""Filtering acts on users (DESIGN.md section 7).

A user's votes are kept or dropped together: per-vote filtering would keep more votes for
the stronger model and bias the kept data. Every input vote ends up on exactly one side,
and the summary says how many users and votes each side has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from comparemode.constants import DEFAULT_THRESHOLD, USER
from comparemode.errors import ConfigError, InvalidValueError, MissingColumnError

__all__ = ["FilterResult", "filter_votes", "decide_users"]


@dataclass
class FilterResult:
    """Outcome of a user filter.

    kept, dropped : the votes of kept and dropped users (rows of the input, index kept).
    users : decision table, one row per user: ``n_votes``, ``p_attentive``, ``keep``,
        ``reason`` (plus whatever score columns the user table had).
    weights : per-vote soft weight (the P(attentive) of the vote's user), aligned with the
        input votes' index, for weighted training; ``1 - weights`` is a per-vote label-flip
        rate for robust preference losses.
    summary : dict with the rule, users and votes on each side (JSON-able).
    """

    kept: pd.DataFrame
    dropped: pd.DataFrame
    users: pd.DataFrame
    weights: pd.Series
    summary: dict


def decide_users(users: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Decision table from a user table with a ``p_attentive`` column: keep where
    ``p_attentive >= threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not (
        0.0 <= float(threshold) <= 1.0
    ):
        raise ConfigError(f"threshold must be a probability in [0, 1], got {threshold!r}")
    if "p_attentive" not in users.columns:
        raise MissingColumnError(
            f"the user table needs a 'p_attentive' column; it has {list(users.columns)}. "
            "Pass a fitted estimator's users_ table."
        )
    p = users["p_attentive"].to_numpy(dtype=float)
    if np.isnan(p).any():
        bad = list(users.index[np.isnan(p)][:5])
        raise InvalidValueError(f"p_attentive is missing for {int(np.isnan(p).sum())} user(s), for example {bad}")
    keep = p >= threshold
    table = users.copy()
    table["keep"] = keep
    shown = f"{threshold:g}"
    table["reason"] = np.where(
        keep,
        np.char.add(np.char.add("P(attentive) ", np.char.mod("%.3f", p)), f" >= {shown}"),
        np.char.add(np.char.add("P(attentive) ", np.char.mod("%.3f", p)), f" < {shown}"),
    )
    return table


def filter_votes(votes: pd.DataFrame, users: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> FilterResult:
    """Split votes by their user's decision.

    Parameters
    ----------
    votes : the votes table the user table was fitted on (needs a ``user`` column).
    users : a user table with ``p_attentive`` indexed by user (an estimator's ``users_``).
    threshold : keep users whose ``p_attentive`` is at least this (default 0.5).
    """
    if USER not in votes.columns:
        raise MissingColumnError(f"the votes need a {USER!r} column; they have {list(votes.columns)}")
    table = decide_users(users, threshold)
    codes = table.index.get_indexer(votes[USER])
    unknown = codes < 0
    if unknown.any():
        missing = pd.unique(votes[USER].to_numpy()[unknown])
        raise InvalidValueError(
            f"{int(unknown.sum())} vote(s) come from {len(missing)} user(s) that the user table does not have, "
            f"for example {list(missing[:5])}; filter the votes the model was fitted on"
        )
    keep_vote = table["keep"].to_numpy()[codes]
    weights = pd.Series(table["p_attentive"].to_numpy(dtype=float)[codes], index=votes.index, name="weight")
    kept = votes[keep_vote]
    dropped = votes[~keep_vote]
    voted = np.bincount(codes, minlength=len(table)) > 0
    n_users_kept = int((table["keep"].to_numpy() & voted).sum())
    n_users_dropped = int((~table["keep"].to_numpy() & voted).sum())
    summary = {
        "rule": "p_attentive >= threshold",
        "threshold": float(threshold),
        "users_in": n_users_kept + n_users_dropped,
        "users_kept": n_users_kept,
        "users_dropped": n_users_dropped,
        "votes_in": int(len(votes)),
        "votes_kept": int(len(kept)),
        "votes_dropped": int(len(dropped)),
        "share_votes_kept": (len(kept) / len(votes)) if len(votes) else math.nan,
    }
    return FilterResult(kept=kept, dropped=dropped, users=table, weights=weights, summary=summary)
