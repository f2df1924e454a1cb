"""Filtering acts on users (docs/design.md section 7).

A user's votes are kept or dropped together: per-vote filtering would keep more votes for
the stronger model and bias the kept data. Every input vote ends up on exactly one side,
and the summary says how many users and votes each side has.

Three rules, all returning the same :class:`FilterResult`:

- :func:`filter_votes`: keep users whose P(attentive) is at least a threshold (EM or MCMC);
- :func:`filter_fdr`: the Bayesian false-discovery rule: keep the largest set of users, taken
  in order of P(attentive), whose expected share of careless users is at most ``alpha``
  (with MCMC probabilities, or EM's as a plug-in);
- :func:`filter_credible`: keep users whose P(attentive | votes, theta) exceeds ``level``
  with posterior probability at least ``prob`` (MCMC only: it needs the posterior draws).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import expit

from comparemode._columnar import factorize, release_arrow_memory, select_rows, text_column, unique_index
from comparemode.constants import DEFAULT_THRESHOLD, NO_EVIDENCE_BAYES_FACTOR, USER
from comparemode.dask_backend import split_lazily
from comparemode.data import is_dask_collection
from comparemode.errors import (
    ConfigError,
    InvalidValueError,
    MissingColumnError,
    NotFittedError,
)
from comparemode.models.counts import user_codes

__all__ = ["FilterResult", "filter_votes", "filter_fdr", "filter_credible", "decide_users", "decide_fdr", "apply_decisions"]


def _spans(mask: np.ndarray, rows: int, block: int = 1 << 16):
    """The input rows ``(lo, hi)`` of consecutive pieces of ``rows`` selected rows of a boolean
    ``mask`` each (the last one fewer; none for an empty selection): ``hi`` is one past the
    piece's last selected row, ``lo`` its first. Found from the selected rows per block of
    ``block`` input rows and, where a piece ends, that block's positions: no array of every
    selected row's position (on ten million votes, up to 80 MB)."""
    per_block = np.add.reduceat(mask, np.arange(0, mask.size, block)) if mask.size else np.zeros(0, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(per_block)])  # selected rows before each block

    def position(j: int) -> int:  # input row of the j-th selected row (0-based)
        b = int(np.searchsorted(before, j, side="right")) - 1
        return b * block + int(np.flatnonzero(mask[b * block : (b + 1) * block])[j - before[b]])

    total = int(before[-1])
    for k in range(0, total, rows):
        yield position(k), position(min(k + rows, total) - 1) + 1


class FilterResult:
    """Outcome of a user filter.

    kept, dropped : the votes of kept and dropped users (rows of the input, index kept). From
        a pandas table they are selected on first access and then kept; :meth:`side` selects
        one without keeping it, and :meth:`sizes` counts both without selecting (the command
        line writes one side at a time, so the two copies of the votes never coexist).
        ``weights`` is likewise built on first access; :meth:`side_weights` gives one side's.
    users : decision table, one row per user: ``p_attentive``, ``keep``, ``reason`` (plus
        whatever columns the user table had).
    weights : per-vote soft weight (the P(attentive) of the vote's user), aligned with the
        input votes' index, for weighted training; ``1 - weights`` is a per-vote label-flip
        rate for robust preference losses.
    summary : dict with the rule, users and votes on each side (JSON-able); ``promise``: whether
        the rule's claim (the expected careless share of the kept users) stands, that is whether
        the model's misfit checks passed ("kept"), failed ("void", with the failed checks and
        the better-fitting model) or did not come with the user table ("unchecked");
        ``favoured_win_rate``: how often the model the reference favours won the decisive
        votes, among all votes, among the kept votes, and as the model expects of attentive
        votes on the kept votes' pairs, so that a filter that confirms its own reference
        (kept users were kept for agreeing with it) shows as a gap (``kept_minus_model``).
    alternative : the same rule under the better-fitting model when the checks failed and one
        was found (see ``TwoTypeEM.alternatives_``), else None.
    """

    def __init__(self, kept=None, dropped=None, users=None, weights=None, summary=None, alternative=None, *, votes=None, keep_vote=None,
                 user_weight=None, codes=None):
        self._sides = {"kept": kept, "dropped": dropped}
        if votes is not None and (keep_vote is None or (weights is None and (user_weight is None or codes is None))):
            raise ConfigError("FilterResult(votes=...) needs keep_vote, the per-vote keep mask, and weights or user_weight and codes")
        # weights given, or each user's weight and each vote's user (the Series built on access)
        self._weights, self._user_weight, self._codes = weights, user_weight, codes
        # a shallow copy: with copy-on-write, later changes to the caller's table do not reach it
        self._votes = None if votes is None else votes.copy(deep=False)
        self._keep_vote = None if keep_vote is None else np.asarray(keep_vote, dtype=bool)
        self.users, self.summary = users, {} if summary is None else summary
        #: where the model's misfit checks failed and a better-fitting model was found: the same
        #: rule under that model (its summary says which model); otherwise None
        self.alternative: FilterResult | None = alternative

    def side(self, which: str):
        """The votes of one side, ``"kept"`` or ``"dropped"``: selected from the input now if
        not yet selected, and not kept (the caller holds the only reference)."""
        if which not in self._sides:
            raise ConfigError(f"side must be 'kept' or 'dropped', got {which!r}")
        if self._sides[which] is not None or self._votes is None:
            return self._sides[which]
        return select_rows(self._votes, self._keep_vote if which == "kept" else ~self._keep_vote)

    @property
    def weights(self):
        if self._weights is None and self._user_weight is not None:
            self._weights = pd.Series(self._user_weight[self._codes], index=self._votes.index, name="weight", copy=False)
        return self._weights

    @weights.setter
    def weights(self, value):
        self._weights = value

    def side_weights(self, which: str) -> np.ndarray:
        """The weight of each vote of one side (:meth:`side`), in its order, without building
        :attr:`weights` for all votes."""
        if self._weights is not None or self._user_weight is None:
            part = self.side(which)
            return self.weights.reindex(part.index).to_numpy(dtype=float) if len(part) else np.zeros(0)
        mask = self._keep_vote if which == "kept" else ~self._keep_vote
        return self._user_weight[self._codes[mask]]

    def side_parts(self, which: str, rows: int):
        """:meth:`side` and :meth:`side_weights` in pieces of ``rows`` votes (the last one
        shorter), in order: pairs ``(votes, weights)`` whose concatenation is the side. Each
        piece is selected from the input when it is asked for, so the whole side is never held
        (what the command line's Parquet writer reads)."""
        if which not in self._sides:
            raise ConfigError(f"side must be 'kept' or 'dropped', got {which!r}")
        if rows < 1:
            raise ConfigError(f"rows must be at least 1, got {rows!r}")
        if self._sides[which] is not None or self._votes is None:
            part, weights = self.side(which), self.side_weights(which)
            for lo in range(0, len(part), rows):
                yield part.iloc[lo:lo + rows], weights[lo:lo + rows]
            return
        mask = self._keep_vote if which == "kept" else ~self._keep_vote
        given = self._weights is not None or self._user_weight is None
        for lo, hi in _spans(mask, rows):  # the input rows each piece spans
            part = select_rows(self._votes.iloc[lo:hi], mask[lo:hi])
            if given:
                weights = self.weights.reindex(part.index).to_numpy(dtype=float)
            else:
                weights = self._user_weight[self._codes[lo:hi][mask[lo:hi]]]
            yield part, weights

    def _kept_side(self, which: str):
        """:meth:`side`, selected once and then kept (what :attr:`kept` and :attr:`dropped` read)."""
        if self._sides[which] is None:
            self._sides[which] = self.side(which)
        return self._sides[which]

    kept = property(lambda self: self._kept_side("kept"))
    dropped = property(lambda self: self._kept_side("dropped"))

    def sizes(self) -> tuple[int, int]:
        """Kept and dropped votes, counted without selecting them."""
        if self._keep_vote is not None:
            n_kept = int(self._keep_vote.sum())
            return n_kept, int(self._keep_vote.size) - n_kept
        return len(self.kept), len(self.dropped)

    def __repr__(self) -> str:
        s = self.summary
        return (f"FilterResult(votes kept {s.get('votes_kept', '?')}, dropped {s.get('votes_dropped', '?')}; "
                f"users kept {s.get('users_kept', '?')}, dropped {s.get('users_dropped', '?')})")


def check_probability(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (0.0 <= float(value) <= 1.0):
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _p_attentive(users: pd.DataFrame) -> np.ndarray:
    if not isinstance(users, pd.DataFrame):
        raise ConfigError(f"the user table must be a pandas DataFrame (a fitted estimator's users_), got {type(users).__name__}")
    if "p_attentive" not in users.columns:
        raise MissingColumnError(
            f"the user table needs a 'p_attentive' column; it has {list(users.columns)}. "
            "Pass a fitted estimator's users_ table."
        )
    if not unique_index(users.index):
        dup = list(users.index[users.index.duplicated()].unique()[:5])
        raise InvalidValueError(f"the user table lists some users more than once, for example {dup}; one row per user")
    col = users["p_attentive"]
    if pd.api.types.is_bool_dtype(col.dtype) or not (
        pd.api.types.is_numeric_dtype(col.dtype) or col.dtype == object
    ):
        raise InvalidValueError(f"p_attentive must hold probabilities, got dtype {col.dtype}")
    p = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(p).any():
        bad = list(users.index[np.isnan(p)][:5])
        raise InvalidValueError(
            f"p_attentive is missing or not a number for {int(np.isnan(p).sum())} user(s), for example {bad} "
            f"(values {list(col[np.isnan(p)][:5])})"
        )
    outside = (p < 0.0) | (p > 1.0)
    if outside.any():
        bad = list(users.index[outside][:5])
        raise InvalidValueError(
            f"p_attentive must lie in [0, 1], but does not for {int(outside.sum())} user(s), for example {bad} "
            f"(values {p[outside][:5].tolist()})"
        )
    return p


def _reasons(p: np.ndarray, keep: np.ndarray, kept_text: str, dropped_text: str):
    """Each user's reason, ``P(attentive) 0.937`` and what the rule did, as a Categorical: the
    few distinct texts built once (three decimals give at most 1,001) and a code per user.
    Each probability is formatted once per distinct value, not once per user; the text column
    is taken from them once, where the reasons are final (:func:`_text_reasons`)."""
    codes, shown = _formatted(p, "%.3f")
    texts = [f"P(attentive) {v}{kept_text}" for v in shown] + [f"P(attentive) {v}{dropped_text}" for v in shown]
    return pd.Categorical.from_codes(np.where(keep, codes, codes + len(shown)), categories=pd.Index(texts, dtype=object))


def _text_reasons(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a Categorical ``reason`` column (:func:`_reasons`) as a text column,
    taken from its distinct texts (:func:`~comparemode._columnar.text_column`: no Python
    string per user); any other table as it is."""
    reason = table["reason"] if "reason" in table.columns else None
    if reason is None or not isinstance(reason.dtype, pd.CategoricalDtype):
        return table
    table = table.copy(deep=False)
    table["reason"] = text_column([str(v) for v in reason.cat.categories], reason.cat.codes.to_numpy())
    return table


def _formatted(x: np.ndarray, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """``fmt % v`` for every value of ``x`` as codes into the distinct texts: each distinct
    value formatted once (users with the same counts share their probabilities)."""
    if not x.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    values, codes = np.unique(x, return_inverse=True)
    which, shown = pd.factorize(np.char.mod(fmt, values), sort=False)
    return which[codes.reshape(-1)], np.asarray(shown, dtype=object)


def _joined(reason: pd.Series, rows: np.ndarray, what: tuple, action: tuple):
    """The ``reason`` column with ``f"{reason}; {what}{action}"`` at ``rows``: ``what`` and
    ``action`` are (codes at ``rows``, distinct texts). Every distinct combination is built
    once and the column taken from the distinct texts (the users may be millions)."""
    codes, uniques = factorize(reason)
    texts = [str(v) for v in uniques] + [""]  # the last: a missing reason, which gets no "; "
    base = np.where(codes[rows] < 0, len(texts) - 1, codes[rows])
    (w_codes, w_texts), (a_codes, a_texts) = what, action
    key = (base * len(w_texts) + w_codes) * len(a_texts) + a_codes
    combo, uniq = pd.factorize(key, sort=False)
    r, rest = np.divmod(np.asarray(uniq, dtype=np.int64), len(w_texts) * len(a_texts))
    w, a = np.divmod(rest, len(a_texts))
    out = codes.copy()
    out[rows] = len(texts) + combo
    texts += [f"{texts[i]}; " * bool(texts[i]) + f"{w_texts[j]}{a_texts[k]}" for i, j, k in zip(r.tolist(), w.tolist(), a.tolist())]
    return text_column(texts, out)


UNINFORMATIVE_POLICIES = ("keep", "drop", "weight")


def mark_uninformative(table: pd.DataFrame, policy: str = "keep") -> pd.DataFrame:
    """Users whose decisive votes carry no evidence either way, and what a rule does with them.

    A user's evidence is the log Bayes factor, attentive against careless, of the picks in the
    decisive votes (``llr_decisive_per_vote`` times ``n_decisive`` of an EM user table): ties
    and a tie habit say nothing about attentiveness, and a user whose picks move the odds by
    less than a factor :data:`~comparemode.constants.NO_EVIDENCE_BAYES_FACTOR` either way
    (or who has no decisive vote: "tie-only") has "no evidence" added to the decision's reason,
    instead of riding on the prior silently. ``policy``: ``"keep"`` (the rule's decision stands, the reason says so),
    ``"drop"`` (dropped), ``"weight"`` (the rule's decision stands and their votes weigh no more
    than their picks support: the smaller of P(attentive) and the posterior from the decisive
    evidence alone under the population's attentive share, the mean P(attentive); a tie habit
    or the prior never raises it). Adds the
    columns ``evidence`` and ``uninformative`` and, under ``"weight"``, ``weight``; a table
    without the columns is returned as it is under ``"keep"`` and refused otherwise."""
    if policy not in UNINFORMATIVE_POLICIES:
        raise ConfigError(f"uninformative must be one of {UNINFORMATIVE_POLICIES}, got {policy!r}")
    needed = ("llr_decisive_per_vote", "n_decisive")
    if not all(c in table.columns for c in needed):
        if policy == "keep":
            return table
        raise ConfigError(f"uninformative={policy!r} needs the columns {list(needed)} of an EM fit's users_ (the evidence of each user's decisive votes)")
    n_dec = table["n_decisive"].to_numpy(dtype=float)
    evidence = np.where(n_dec > 0, np.nan_to_num(table["llr_decisive_per_vote"].to_numpy(dtype=float)) * n_dec, 0.0)
    none = np.abs(evidence) < math.log(NO_EVIDENCE_BAYES_FACTOR)
    table = table.copy(deep=False)  # copy-on-write: the caller's table is never changed
    table["evidence"], table["uninformative"] = evidence, none
    if not none.any():
        return table
    keep = table["keep"].to_numpy(dtype=bool).copy()
    rows = np.flatnonzero(none)  # only these users' reasons are rewritten
    codes, shown = _formatted(evidence[none], "%.2f")
    # what: 0 is tie-only, 1 + j the evidence's j-th distinct text
    what = (np.where(n_dec[none] == 0, 0, codes + 1),
            ["no evidence (tie-only: no decisive vote)"] + [f"no evidence (decisive log Bayes factor {v} within +-log {NO_EVIDENCE_BAYES_FACTOR:g})" for v in shown])
    kept_here = keep[none]
    if policy == "drop":
        keep[none] = False
        table["keep"] = keep
        action = (np.zeros(rows.size, dtype=np.int64), ["; dropped (uninformative='drop')"])
    elif policy == "weight":
        p = table["p_attentive"].to_numpy(dtype=float)
        share = min(max(float(p.mean()), 1e-12), 1.0 - 1e-12)  # the population's attentive share (pi at the EM's fixed point)
        from_picks = expit(math.log(share / (1.0 - share)) + evidence)
        table["weight"] = np.where(none, np.minimum(p, from_picks), p)
        action = (np.where(kept_here, 0, 1), ["; kept, its votes weighted by what its picks support (uninformative='weight')", "; dropped by the rule"])
    else:
        action = (np.where(kept_here, 0, 1), ["; kept by the rule (uninformative='keep')", "; dropped by the rule"])
    table["reason"] = _joined(table["reason"], rows, what, action)
    rule = dict(table.attrs.get("rule", {}))
    rule.update(uninformative=policy, users_uninformative=int(none.sum()), users_tie_only=int((none & (n_dec == 0)).sum()))
    if policy == "drop":
        p = table["p_attentive"].to_numpy(dtype=float)
        rule["expected_careless_share"] = float(np.mean(1.0 - p[keep])) if keep.any() else 0.0
    table.attrs["rule"] = rule
    return table


def _decide_users(users: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """:func:`decide_users` with the reasons a Categorical (:func:`_reasons`)."""
    threshold = check_probability(threshold, "threshold")
    p = _p_attentive(users)
    keep = p >= threshold
    table = users.copy(deep=False)  # copy-on-write: the caller's table is never changed
    table["keep"] = keep
    table["reason"] = _reasons(p, keep, f" >= {threshold:g}", f" < {threshold:g}")
    table.attrs["rule"] = {"rule": "p_attentive >= threshold", "threshold": threshold}
    return table


def decide_users(users: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Decision table from a user table with a ``p_attentive`` column: keep where
    ``p_attentive >= threshold``."""
    return _text_reasons(_decide_users(users, threshold))


def fdr_keep(p: np.ndarray, alpha: float):
    """The Bayesian false-discovery rule on probabilities ``p`` (of users, or of votes): rank by
    ``p``, keep the longest prefix whose mean of ``1 - p`` is at most ``alpha``, cutting only
    between distinct values (equal ones are kept or dropped together). Returns the keep mask,
    the kept set's expected careless share and the smallest kept ``p`` (1 if none)."""
    order = np.argsort(-p, kind="stable")
    careless = 1.0 - p[order]
    running = np.cumsum(careless) / np.arange(1, p.size + 1)
    # only cut between distinct probabilities (ties stay together)
    distinct_end = np.append(p[order][1:] != p[order][:-1], True)
    ok = (running <= alpha + 1e-12) & distinct_end
    n_keep = int(np.flatnonzero(ok)[-1]) + 1 if ok.any() else 0
    keep = np.zeros(p.size, dtype=bool)
    keep[order[:n_keep]] = True
    expected = float(running[n_keep - 1]) if n_keep else 0.0
    cut = float(p[order[n_keep - 1]]) if n_keep else 1.0
    return keep, expected, cut


def decide_fdr(users: pd.DataFrame, alpha: float = 0.1) -> pd.DataFrame:
    """Bayesian false-discovery rule: rank users by P(attentive), keep the longest prefix
    whose mean P(careless) is at most ``alpha``.

    The expected share of careless users among the kept ones is then at most ``alpha``
    (exactly so if the probabilities are calibrated). Users with equal probability are kept
    or dropped together, so the rule does not depend on row order.
    """
    return _text_reasons(_decide_fdr(users, alpha))


def _decide_fdr(users: pd.DataFrame, alpha: float = 0.1) -> pd.DataFrame:
    """:func:`decide_fdr` with the reasons a Categorical (:func:`_reasons`)."""
    alpha = check_probability(alpha, "alpha")
    p = _p_attentive(users)
    keep, expected, cut = fdr_keep(p, alpha)
    table = users.copy(deep=False)  # copy-on-write: the caller's table is never changed
    table["keep"] = keep
    table["reason"] = _reasons(
        p, keep, f" in the kept set (expected careless share {expected:.3f} <= {alpha:g})", f" below the cut {cut:.3f} of the alpha={alpha:g} rule"
    )
    table.attrs["rule"] = {"rule": "bayesian_fdr", "alpha": alpha, "expected_careless_share": expected, "p_attentive_cut": cut}
    return table


def apply_decisions(votes: pd.DataFrame, table: pd.DataFrame, codes: np.ndarray | None = None) -> FilterResult:
    """Split votes by their user's ``keep`` decision (a table indexed by user). A Dask
    DataFrame of votes is split lazily (:func:`comparemode.dask_backend.split_lazily`).
    ``codes``: each vote's user as a position in ``table`` where the caller has them (a fit's
    own codes, :meth:`~comparemode.TwoTypeEM.user_codes_of`); otherwise every user id is
    looked up."""
    if is_dask_collection(votes):
        return _apply_lazily(votes, table)
    if not isinstance(votes, pd.DataFrame):
        raise ConfigError(f"votes must be a pandas DataFrame, got {type(votes).__name__}")
    if USER not in votes.columns:
        raise MissingColumnError(f"the votes need a {USER!r} column; they have {list(votes.columns)}")
    if codes is None or len(codes) != len(votes):
        codes = user_codes(table.index, votes[USER])
    keep_user = table["keep"].to_numpy(dtype=bool)
    keep_vote = keep_user[codes]
    user_weight = table["weight" if "weight" in table.columns else "p_attentive"].to_numpy(dtype=float)
    n_kept = int(keep_vote.sum())
    voted = np.bincount(codes, minlength=len(table)) > 0
    summary = dict(table.attrs.get("rule", {}))
    summary.update(
        {
            "users_in": int(voted.sum()),
            "users_kept": int((keep_user & voted).sum()),
            "users_dropped": int((~keep_user & voted).sum()),
            "votes_in": int(len(votes)),
            "votes_kept": n_kept,
            "votes_dropped": int(len(votes)) - n_kept,
            "share_votes_kept": (n_kept / len(votes)) if len(votes) else math.nan,
        }
    )
    account(summary, table, keep_user, voted)
    # the two sides are selected when asked for (FilterResult.kept, .dropped, .side)
    return FilterResult(users=table, summary=summary, votes=votes, keep_vote=keep_vote, user_weight=user_weight, codes=codes)


def _apply_lazily(votes, table: pd.DataFrame) -> FilterResult:
    """:func:`apply_decisions` on a Dask DataFrame: kept and dropped votes and the weights are
    lazy (:func:`comparemode.dask_backend.split_lazily`; write them with
    :func:`~comparemode.dask_backend.write_kept`); the summary counts users from the table and
    votes from its ``n_votes`` column (the votes the model was fitted on); ``write_kept``
    recounts them while writing."""
    kept, dropped, weights = split_lazily(votes, table)
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


def account(summary: dict, table: pd.DataFrame, keep_user: np.ndarray, voted: np.ndarray) -> dict:
    """Add to a filter's ``summary`` what its decision means: the kept users' expected careless
    share (the rule's own where it has one), the promise, and the favoured model's win rates."""
    p_kept = table["p_attentive"].to_numpy(dtype=float)[keep_user & voted]
    summary.setdefault("expected_careless_share", float(np.mean(1.0 - p_kept)) if p_kept.size else 0.0)
    summary["promise"] = filter_promise(table, table.attrs.get("rule", {}))
    summary["favoured_win_rate"] = _win_rates(table, keep_user, voted)
    return summary


_CLAIMS = {
    "p_attentive >= threshold": "P(attentive) is calibrated, so the kept users' expected careless share is the mean of their P(careless)",
    "bayesian_fdr": "the expected share of careless users among the kept users is at most alpha",
    "credible_bound": "every kept user's P(attentive) is credibly above the level",
    "crossfit_threshold": "P(attentive) is calibrated, so the kept votes' expected careless share is the mean of their P(careless)",
    "crossfit_fdr": "the expected share of careless users' votes among the kept votes is at most alpha",
}


def filter_promise(table: pd.DataFrame, rule: dict) -> dict:
    """Whether the rule's claim stands: the model's misfit checks (``attrs["checks"]`` of the
    user table, set by the estimator) passed, failed or were not run."""
    claim = _CLAIMS.get(rule.get("rule"), "the rule's claim")
    if "alpha" in rule:
        claim = claim.replace("alpha", f"{rule['alpha']:g}")
    checks = table.attrs.get("checks")
    if not checks:
        return {"status": "unchecked", "claim": claim, "statement": f"unchecked: {claim}, if the model fits; no misfit checks came with this user table"}
    if checks.get("passed", False) and not checks.get("ran"):
        why = "; ".join(f"{k}: {v}" for k, v in checks.get("not_run", {}).items())
        return {"status": "unchecked", "claim": claim, "statement": f"unchecked: {claim}, if the model fits; no misfit check could run ({why})"}
    if checks.get("passed", False):
        ran = ", ".join(checks["ran"])
        return {"status": "kept", "claim": claim, "statement": f"{claim}: the model's misfit checks passed ({ran}; family-wise level {checks.get('level', float('nan')):g})"}
    failed = checks.get("failed", {})
    text = f"VOID: {claim} only if the model fits, and it does not: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
    if checks.get("better_fit"):
        text += f". Better fit: {checks['better_fit']} (see the result's alternative)"
    return {"status": "void", "claim": claim, "failed_checks": list(failed), "better_fit": checks.get("better_fit"), "statement": text}


def _win_rates(table: pd.DataFrame, keep: np.ndarray, voted: np.ndarray) -> dict | None:
    """The favoured model's decisive win rate among all and kept users' votes, and what the
    model expects of attentive votes on the kept votes; None without the columns."""
    cols = ("n_favoured", "n_informative", "expected_favoured")
    if not all(c in table.columns for c in cols):
        return None
    fav, inf, exp = (table[c].to_numpy(dtype=float) for c in cols)
    if not np.isfinite(inf).all():
        return None

    def rate(x, mask):
        den = float(inf[mask].sum())
        return float(x[mask].sum()) / den if den > 0 else math.nan

    kept = keep & voted
    out = {"all": rate(fav, voted), "kept": rate(fav, kept), "model_attentive": rate(exp, kept)}
    out["kept_minus_model"] = out["kept"] - out["model_attentive"]
    return out


def _decided(votes, users, decide, *args, uninformative: str = "keep") -> FilterResult:
    """Apply ``decide(table, *args)`` to the user table of ``users`` (a table, or a fitted
    estimator with ``users_``) and, when its checks failed and it found a better-fitting
    model, to that model's user table as ``alternative``."""
    table, alt, codes = users, None, None
    if not isinstance(users, pd.DataFrame):  # a fitted estimator (an unfitted one raises NotFittedError)
        try:
            table, alt = users.users_, getattr(users, "alternative_users_", None)
        except NotFittedError:
            raise
        except AttributeError:  # not an estimator: the table check names what it got
            pass
        if hasattr(users, "user_codes_of") and isinstance(table, pd.DataFrame):
            codes = users.user_codes_of(votes)  # the fit's own codes: no second lookup of every user id
    # the reasons stay codes until mark_uninformative has added to them: one text column
    decided = _text_reasons(mark_uninformative(decide(table, *args), uninformative))
    release_arrow_memory()  # the reason column mark_uninformative rewrote, otherwise kept by pyarrow's pool
    result = apply_decisions(votes, decided, codes if codes is not None and decided.index.equals(table.index) else None)
    if alt is not None and result.summary.get("promise", {}).get("status") == "void":
        alt_codes = codes if codes is not None and alt.index.equals(table.index) else None
        result.alternative = apply_decisions(votes, _text_reasons(mark_uninformative(decide(alt, *args), uninformative)), alt_codes)
        result.alternative.summary["model"] = result.summary["promise"].get("better_fit")
        result.alternative.summary["promise"] = {
            "status": "alternative",
            "statement": f"the same rule under the better-fitting model ({result.alternative.summary['model']}); its own fit was not checked",
        }
        result.summary["alternative"] = {
            k: result.alternative.summary[k] for k in ("model", "users_kept", "users_dropped", "votes_kept", "expected_careless_share") if k in result.alternative.summary
        }
    return result


def filter_votes(votes: pd.DataFrame, users: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, *, uninformative: str = "keep") -> FilterResult:
    """Keep the users whose ``p_attentive`` is at least ``threshold`` (default 0.5).

    Parameters
    ----------
    votes : the votes table the user table was fitted on (needs a ``user`` column).
    users : a user table with ``p_attentive`` indexed by user (an estimator's ``users_``), or
        the fitted estimator itself (then a failed misfit check also gives ``alternative``,
        the same rule under the better-fitting model).
    threshold : keep users whose ``p_attentive`` is at least this.
    uninformative : what to do with users whose decisive votes carry no evidence either way
        (:func:`mark_uninformative`): ``"keep"``, ``"drop"`` or ``"weight"``.
    """
    return _decided(votes, users, _decide_users, threshold, uninformative=uninformative)


def filter_fdr(votes: pd.DataFrame, users: pd.DataFrame, alpha: float = 0.1, *, uninformative: str = "keep") -> FilterResult:
    """Keep the largest set of users whose expected share of careless users is at most
    ``alpha`` (see :func:`decide_fdr`). ``users`` is a ``users_`` table of
    :class:`~comparemode.inference.mcmc.BayesianTwoType` (posterior probabilities) or of
    :class:`~comparemode.TwoTypeEM` (the plug-in version of the rule), or the fitted estimator
    itself (see :func:`filter_votes`). ``uninformative`` as in :func:`filter_votes`."""
    return _decided(votes, users, _decide_fdr, alpha, uninformative=uninformative)


def filter_credible(votes: pd.DataFrame, model, level: float = DEFAULT_THRESHOLD, prob: float = 0.9) -> FilterResult:
    """Keep users whose P(attentive | votes, theta) exceeds ``level`` with posterior
    probability at least ``prob``; ``model`` is a fitted
    :class:`~comparemode.inference.mcmc.BayesianTwoType`."""
    level = check_probability(level, "level")
    prob = check_probability(prob, "prob")
    if not hasattr(model, "prob_attentive_above"):
        raise ConfigError("filter_credible needs a fitted BayesianTwoType (it uses the posterior draws)")
    table = model.users_.copy()
    above = model.prob_attentive_above(level).reindex(table.index).to_numpy()
    keep = above >= prob
    table["prob_above_level"] = above
    table["keep"] = keep
    shown = np.char.mod("%.3f", above)
    text = f"P(P(attentive) > {level:g}) "
    table["reason"] = np.where(keep, np.char.add(np.char.add(text, shown), f" >= {prob:g}"), np.char.add(np.char.add(text, shown), f" < {prob:g}"))
    table.attrs["rule"] = {"rule": "credible_bound", "level": level, "prob": prob}
    return apply_decisions(votes, table)
