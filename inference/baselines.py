"""Baseline per-user quality scores, to compare the joint model with (issue 4, item 2).

Every function takes the canonical votes table (see :func:`comparemode.load_votes`) and
scores each user; **higher always means better** (more attentive, more normal). A score is
NaN where it cannot be computed (for example a user without a single decisive vote). The
index is ``user``, in order of first appearance in the table, and covers every user.

- :func:`majority_agreement`: agreement with the leave-one-user-out majority on the same item;
- :func:`fastchat_outlier`: FastChat's per-user sequential outlier test (``outlier_detect``);
- :func:`noisy_bt_skills`: crowd-kit's ``NoisyBradleyTerry`` worker skills, called as released;
- :func:`plain_bt_agreement`: agreement with the plain Bradley-Terry leaderboard of all votes.

All of them compare the **model** a vote chose (``model_a`` when the winner is ``model_a``,
``model_b`` when it is ``model_b``), never the position, so two users who saw the same two
answers in opposite orders and preferred the same model agree. Ties are not choices: they are
left out of the agreement rates (FastChat's test scores them, as the original does).
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from comparemode.constants import (
    MODEL_A,
    MODEL_B,
    PROMPT_ID,
    USER,
    WIN_A,
    WIN_B,
    WINNER,
)
from comparemode.data import validate_votes
from comparemode.errors import ConfigError, MissingColumnError, NotIdentifiableError
from comparemode.inference.bradley_terry import fit_bradley_terry

__all__ = [
    "FASTCHAT_REFERENCE",
    "fastchat_outlier",
    "majority_agreement",
    "noisy_bt_skills",
    "plain_bt_agreement",
]

#: Where FastChat's outlier test lives (read for this port; not copied).
FASTCHAT_REFERENCE = "github.com/lm-sys/FastChat, fastchat/serve/monitor/elo_analysis.py, outlier_detect"

#: Default item key of :func:`majority_agreement` when the table has it (LLMFAO's pair id).
ID_COLUMN = "id"


# --------------------------------------------------------------------------- helpers


def _validated(votes: pd.DataFrame) -> pd.DataFrame:
    return validate_votes(votes)


def _user_index(votes: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(votes[USER])
    return codes, pd.Index(uniques, name=USER)


def _decisive(votes: pd.DataFrame) -> np.ndarray:
    w = votes[WINNER].to_numpy()
    return (w == WIN_A) | (w == WIN_B)


def _chosen_model(votes: pd.DataFrame) -> np.ndarray:
    """The model a vote chose (object array); meaningful on decisive rows only."""
    a = votes[MODEL_A].to_numpy(dtype=object)
    b = votes[MODEL_B].to_numpy(dtype=object)
    return np.where(votes[WINNER].to_numpy() == WIN_A, a, b)


def _ordered_pair(votes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The two models of each row sorted by name: (first, second) as object arrays."""
    a = votes[MODEL_A].to_numpy(dtype=object).astype(str)
    b = votes[MODEL_B].to_numpy(dtype=object).astype(str)
    swap = b < a
    return np.where(swap, b, a).astype(object), np.where(swap, a, b).astype(object)


def _rate(hits: np.ndarray, user: np.ndarray, n_users: int) -> np.ndarray:
    """Per-user mean of boolean ``hits`` (NaN for users with none)."""
    num = np.bincount(user, weights=hits.astype(float), minlength=n_users)
    den = np.bincount(user, minlength=n_users).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _key_columns(votes: pd.DataFrame, pair_key) -> list:
    if pair_key is None:
        if ID_COLUMN in votes.columns:
            return [ID_COLUMN]
        if PROMPT_ID in votes.columns:
            return [PROMPT_ID]
        return []
    cols = list(pair_key) if isinstance(pair_key, list) else [pair_key]
    bad = [c for c in cols if not isinstance(c, Hashable)]
    if bad or not cols:
        raise ConfigError(f"pair_key must be a column label or a non-empty list of column labels, got {pair_key!r}")
    missing = [c for c in cols if c not in votes.columns]
    if missing:
        raise MissingColumnError(
            f"pair_key names column(s) {missing!r} that the votes table does not have; "
            f"available columns: {list(votes.columns)!r}. Pass pair_key=None for the default "
            f"item key ({ID_COLUMN!r} if present, else {PROMPT_ID!r}, plus the model pair)"
        )
    return cols


# --------------------------------------------------------------------------- majority


def majority_agreement(votes: pd.DataFrame, pair_key=None) -> pd.Series:
    """Each user's agreement rate with the majority of the *other* users on the same item.

    An *item* is one answer pair: the columns ``pair_key`` plus the unordered pair of models.
    By default ``pair_key`` is the ``id`` column when present (LLMFAO's response-pair id),
    else ``prompt_id``, else nothing (the item is then the model pair alone). For each decisive
    vote, the majority is taken over the decisive votes that **other users** cast on the same
    item (all of the user's own votes on it are left out, so a user who voted twice does not
    vote with themselves). Votes on items with no other decisive vote, or whose other votes are
    split evenly, are not comparable and are skipped. Positions may differ between users: the
    chosen *model* is compared, not the position.

    Parameters
    ----------
    votes : DataFrame
        Canonical votes table.
    pair_key : column label or list of column labels, optional
        Columns that, with the model pair, identify an item.

    Returns
    -------
    Series ``majority_agreement`` indexed by ``user``: the share of the user's comparable
    decisive votes that chose the majority's model, in [0, 1]; NaN for a user with no
    comparable vote. ``attrs["n_comparable"]`` holds the per-user number of comparable votes.

    Raises
    ------
    MissingColumnError
        A canonical column or a ``pair_key`` column is missing.
    """
    votes = _validated(votes)
    keys = _key_columns(votes, pair_key)
    user, users = _user_index(votes)
    dec = _decisive(votes)
    first, second = _ordered_pair(votes)
    chosen = _chosen_model(votes)
    frame = {f"k{i}": votes[c].to_numpy() for i, c in enumerate(keys)}
    frame.update(first=first, second=second)
    item, _ = pd.factorize(pd.MultiIndex.from_frame(pd.DataFrame(frame)))
    item, u = item[dec], user[dec]
    picks_first = (chosen[dec] == first[dec]).astype(float)  # 1 when the alphabetically first model won
    # counts per item and per (item, user): others = item total - the user's own
    n_items = int(item.max()) + 1 if item.size else 0
    tot_first = np.bincount(item, weights=picks_first, minlength=n_items)
    tot_all = np.bincount(item, minlength=n_items).astype(float)
    iu, iu_codes = np.unique(np.stack([item, u]), axis=1, return_inverse=True) if item.size else (np.zeros((2, 0), int), np.zeros(0, int))
    iu_codes = np.asarray(iu_codes).ravel()
    own_first = np.bincount(iu_codes, weights=picks_first, minlength=iu.shape[1])[iu_codes]
    own_all = np.bincount(iu_codes, minlength=iu.shape[1]).astype(float)[iu_codes]
    oth_first = tot_first[item] - own_first
    oth_second = (tot_all[item] - own_all) - oth_first
    comparable = oth_first != oth_second  # also excludes "no other vote" (0 == 0)
    agree = np.where(oth_first > oth_second, picks_first == 1.0, picks_first == 0.0)
    score = _rate(agree[comparable], u[comparable], len(users))
    out = pd.Series(score, index=users, name="majority_agreement")
    out.attrs["n_comparable"] = pd.Series(np.bincount(u[comparable], minlength=len(users)), index=users, name="n_comparable")
    return out


# --------------------------------------------------------------------------- FastChat


def fastchat_outlier(
    votes: pd.DataFrame,
    alpha: float = 0.05,
    *,
    max_vote: int = 100,
    min_votes: int = 5,
    randomized: bool = False,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """FastChat's per-user sequential outlier test, ported from its description.

    Original: ``outlier_detect`` in ``fastchat/serve/monitor/elo_analysis.py`` of
    github.com/lm-sys/FastChat (read at commit 0060644a6f208c2cab1d99d4bf3daef1ca66221f).
    What it does, and what this port does the same way:

    1. History per **unordered model pair** (the two model names sorted): over *all* votes of
       the table (the tested user's own votes included, as in the original's
       ``get_model_pair_stats``), ``win`` = decisive votes for the alphabetically first model,
       ``loss`` = decisive votes for the second. Ties are not part of the history
       (the original's "only count win and loss").
    2. Only users with at least ``min_votes`` votes (default 5, ties included) are tested.
    3. A user's votes are taken in table order (the original iterates the battles in their
       order, which is time order in the arena logs). A vote scores ``v = 1`` if it chose the
       first model, ``0`` if the second and ``0.5`` for a tie. Against the pair's history of
       ``win`` ones and ``loss`` zeros it gets two one-sided p-values,
       ``p_upper = share of history <= v`` and ``p_lower = share of history >= v``.
    4. Running products ``M_upper = prod 1/(2 p_upper)`` and ``M_lower = prod 1/(2 p_lower)``
       over the votes so far (at most ``max_vote`` = 100 of them). As soon as either exceeds
       ``1/alpha`` (strictly) the user is flagged and testing stops. Each factor has
       expectation at most 1 for a user who votes like the pair's history, so the products are
       test supermartingales and Ville's inequality bounds the false-flag rate by ``alpha``.
    5. ``randomized=True`` adds uniform noise in (-1e-5, 1e-5) to the history and the vote, a
       random tie-break of equal values. Here it is drawn exactly from counts (the number of
       history entries equal to ``v`` that fall below the vote's noise is binomial), with
       ``numpy.random.default_rng(random_seed)``. (The original adds the noise in place to an
       integer array, which numpy refuses; the port follows the evident intent.)

    Deviation: a vote whose pair has no decisive history at all (only ties were cast on it)
    has no p-value. The original takes the mean of an empty array there (NaN), which turns both
    products into NaN for the rest of that user's votes, so the user can never be flagged
    afterwards; the port skips such votes instead (they do not count towards ``max_vote``).
    A p-value of 0 (a tie vote on a pair whose history goes one way only) makes the factor
    infinite and flags the user at once, as in the original.

    Parameters
    ----------
    votes : DataFrame
        Canonical votes table.
    alpha : float in (0, 1)
        Level of the test; flagged when a running product exceeds ``1/alpha``.
    max_vote : int
        At most this many votes per user are tested.
    min_votes : int
        Users with fewer votes are not tested (not flagged, statistic NaN).
    randomized : bool
        Random tie-breaking of the p-values (see above).
    random_seed : int or None
        Seed for ``randomized``.

    Returns
    -------
    DataFrame indexed by ``user`` with columns

    - ``n_votes``: the user's votes; ``tested``: whether the user was tested;
    - ``n_tested``: votes tested until the test stopped (at the flag, at ``max_vote`` or at
      the user's last vote);
    - ``log_m_upper``, ``log_m_lower``: the two running statistics (natural log of the
      products) where the test stopped; ``log_m``: the larger of the two;
    - ``flagged``: whether a product exceeded ``1/alpha``;
    - ``score = -log_m``: for ranking, **higher = more normal** (less evidence that the user
      votes against the crowd). Flagged users have ``score < -log(1/alpha)``, unflagged tested
      users ``score >= -log(1/alpha)``, so ranking by ``score`` agrees with the flags.
      ``-inf`` after a zero p-value; NaN for untested users and for tested users none of
      whose votes had a p-value.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (0.0 < alpha < 1.0):
        raise ConfigError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    for name, val, low in (("max_vote", max_vote, 1), ("min_votes", min_votes, 0)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {val!r}")
    votes = _validated(votes)
    rng = np.random.default_rng(random_seed) if randomized else None
    user, users = _user_index(votes)
    n_users = len(users)
    n = len(votes)
    first, second = _ordered_pair(votes)
    pair, _ = pd.factorize(pd.MultiIndex.from_arrays([first, second]))
    dec = _decisive(votes)
    chosen = _chosen_model(votes)
    v = np.full(n, 0.5)
    v[dec & (chosen == first)] = 1.0
    v[dec & (chosen != first)] = 0.0
    n_pairs = int(pair.max()) + 1
    win = np.bincount(pair[v == 1.0], minlength=n_pairs)[pair].astype(np.int64)
    loss = np.bincount(pair[v == 0.0], minlength=n_pairs)[pair].astype(np.int64)
    hist = win + loss
    # counts of history entries <= v and >= v
    le = np.where(v == 1.0, hist, loss).astype(float)  # v=0: the losses; v=0.5: the losses
    ge = np.where(v == 0.0, hist, win).astype(float)  # v=1: the wins; v=0.5: the wins
    if rng is not None:
        # entries equal to v split at random around the vote's noise
        eq = np.where(v == 1.0, win, np.where(v == 0.0, loss, 0))
        below = rng.binomial(eq, rng.random(n))
        le = np.where(v == 1.0, loss + below, np.where(v == 0.0, below, le)).astype(float)
        ge = np.where(v == 1.0, win - below, np.where(v == 0.0, hist - below, ge)).astype(float)
    has_p = hist > 0
    n_votes = np.bincount(user, minlength=n_users)
    tested_user = n_votes >= min_votes
    use = has_p & tested_user[user]
    idx = np.flatnonzero(use)
    # stable order: by user, then table order
    idx = idx[np.argsort(user[idx], kind="stable")]
    uu = user[idx]
    rank = np.arange(idx.size) - np.searchsorted(uu, uu, side="left")
    keep = rank < max_vote
    idx, uu = idx[keep], uu[keep]
    with np.errstate(divide="ignore"):
        step_up = -np.log(2.0 * le[idx] / hist[idx])
        step_lo = -np.log(2.0 * ge[idx] / hist[idx])
    log_up = np.zeros(n_users)
    log_lo = np.zeros(n_users)
    n_tested = np.zeros(n_users, dtype=np.int64)
    flagged = np.zeros(n_users, dtype=bool)
    thresh = np.log(1.0 / alpha)
    starts = np.searchsorted(uu, np.arange(n_users), side="left")
    ends = np.searchsorted(uu, np.arange(n_users), side="right")
    for j in np.flatnonzero(tested_user):
        s, e = starts[j], ends[j]
        if e == s:
            continue
        cu = np.cumsum(step_up[s:e])
        cl = np.cumsum(step_lo[s:e])
        hit = np.flatnonzero((cu > thresh) | (cl > thresh))
        stop = int(hit[0]) if hit.size else e - s - 1
        flagged[j] = hit.size > 0
        n_tested[j] = stop + 1
        log_up[j], log_lo[j] = cu[stop], cl[stop]
    scored = tested_user & (n_tested > 0)
    log_up = np.where(scored, log_up, np.nan)
    log_lo = np.where(scored, log_lo, np.nan)
    log_m = np.fmax(log_up, log_lo)
    return pd.DataFrame(
        {
            "n_votes": n_votes,
            "tested": tested_user,
            "n_tested": n_tested,
            "log_m_upper": log_up,
            "log_m_lower": log_lo,
            "log_m": log_m,
            "flagged": flagged,
            "score": -log_m,
        },
        index=users,
    )


# --------------------------------------------------------------------------- crowd-kit


def noisy_bt_skills(votes: pd.DataFrame, **kwargs) -> pd.Series:
    """crowd-kit's ``NoisyBradleyTerry`` worker skills, called as released.

    The decisive votes become crowd-kit's pairwise table: ``worker`` = user, ``left`` =
    ``model_a``, ``right`` = ``model_b``, ``label`` = the chosen model's name (crowd-kit has
    no ties). ``NoisyBradleyTerry(**kwargs).fit(...)`` runs with crowd-kit's defaults unless
    ``kwargs`` say otherwise (``n_iter``, ``tol``, ``regularization_ratio``, ``random_state``).
    Its skill is the probability that a worker's vote follows the Bradley-Terry choice rather
    than a biased coin: higher = better.

    crowd-kit seeds NumPy's *global* generator (``np.random.seed(random_state)``) inside
    ``fit``; the global state is saved and restored around the call so callers are not
    affected.

    Returns
    -------
    Series ``noisy_bt_skill`` indexed by ``user`` (NaN for users without a decisive vote).

    Raises
    ------
    ConfigError
        crowd-kit is not installed (the optional extra ``bench``).
    NotIdentifiableError
        No decisive votes.
    """
    try:
        from crowdkit.aggregation import NoisyBradleyTerry
    except ImportError as exc:
        raise ConfigError(
            "noisy_bt_skills needs crowd-kit, which is not installed: "
            "pip install 'comparemode[bench]' (or pip install crowd-kit)"
        ) from exc
    votes = _validated(votes)
    _, users = _user_index(votes)
    dec = _decisive(votes)
    if not dec.any():
        raise NotIdentifiableError("noisy_bt_skills: every vote is a tie; crowd-kit needs decisive votes")
    d = votes.loc[dec]
    data = pd.DataFrame(
        {
            "worker": d[USER].to_numpy(),
            "left": d[MODEL_A].to_numpy(dtype=object),
            "right": d[MODEL_B].to_numpy(dtype=object),
            "label": _chosen_model(d),
        }
    )
    state = np.random.get_state()
    try:
        model = NoisyBradleyTerry(**kwargs).fit(data)
    finally:
        np.random.set_state(state)
    skills = pd.Series(model.skills_.to_numpy(dtype=float), index=pd.Index(model.skills_.index))
    out = skills.reindex(users)
    out.index.name = USER
    return out.rename("noisy_bt_skill")


# --------------------------------------------------------------------------- plain BT


def plain_bt_agreement(votes: pd.DataFrame) -> pd.Series:
    """Each user's agreement rate with the plain Bradley-Terry leaderboard of all votes.

    Strengths come from :func:`comparemode.fit_bradley_terry` on every vote of the table
    (no user model; ties left out). A decisive vote agrees when it chose the model with the
    higher strength; votes between two models of exactly equal strength are skipped.

    Returns
    -------
    Series ``bt_agreement`` indexed by ``user``: share of the user's decisive votes that chose
    the stronger model; NaN for a user without such a vote.
    """
    votes = _validated(votes)
    user, users = _user_index(votes)
    beta = fit_bradley_terry(votes)
    ba = beta.reindex(votes[MODEL_A].astype(str)).to_numpy()
    bb = beta.reindex(votes[MODEL_B].astype(str)).to_numpy()
    dec = _decisive(votes) & (ba != bb)
    a_stronger = ba > bb
    agree = np.where(votes[WINNER].to_numpy() == WIN_A, a_stronger, ~a_stronger)
    return pd.Series(_rate(agree[dec], user[dec], len(users)), index=users, name="bt_agreement")
