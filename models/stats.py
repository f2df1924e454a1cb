"""Sufficient statistics: the one pass over the raw votes (DESIGN.md section 4).

Given the reference probabilities, a user's votes enter the model only through a few counts:
votes ``n``, ties ``t``, decisive picks of the first-shown answer ``f`` and the attentive
log-likelihood ``s`` of the decisive picks. With a scalar mu for two models, ``s`` depends
only on ``k``, the decisive picks of the stronger model, so users with equal ``(n, t, f, k)``
are interchangeable and collapse into one *pattern* weighted by how many users share it.

The aggregation is one weighted ``numpy.bincount`` over the votes: the vote itself and its
three indicators (tie, first pick, stronger pick) are packed into one float64 weight in base
8192, which is exact while every user has fewer than 8192 votes; otherwise (detected
exactly) four separate counts are taken instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comparemode.constants import CODE_A, CODE_B

__all__ = ["EncodedVotes", "UserStats", "Patterns", "aggregate", "without_ties", "compress"]



@dataclass(frozen=True)
class EncodedVotes:
    """Votes as integer arrays, the input of the fast path.

    Attributes
    ----------
    user : int array, one code per vote in ``0 .. n_users - 1``.
    code : int8 array, ``outcome + 3 * stronger_first`` per vote, where outcome is
        0 (model_a won), 1 (model_b won) or 2 (tie), and ``stronger_first`` is 1 when the
        stronger of two models was shown first (scalar-mu case; always 0 otherwise).
    n_users : number of distinct users.
    mu : float array or None. Per-vote P(model_a's answer is better) (the per-row case);
        None in the scalar-mu case, where the probability is given to :func:`aggregate`.
    """

    user: np.ndarray
    code: np.ndarray
    n_users: int
    mu: np.ndarray | None = None

    @property
    def n_votes(self) -> int:
        return int(self.user.shape[0])

    @property
    def outcome(self) -> np.ndarray:
        return self.code % 3


@dataclass(frozen=True)
class UserStats:
    """Per-user sufficient statistics (arrays of length ``n_users``).

    ``k`` (decisive picks of the stronger model) is present only in the scalar-mu case.
    ``s`` is the attentive log-likelihood of the user's decisive votes.
    """

    n: np.ndarray
    t: np.ndarray
    f: np.ndarray
    s: np.ndarray
    k: np.ndarray | None = None

    @property
    def d(self) -> np.ndarray:
        return self.n - self.t


@dataclass(frozen=True)
class Patterns:
    """Distinct count patterns, each with the number of users sharing it.

    ``inverse[u]`` is the pattern of user ``u``.
    """

    n: np.ndarray
    t: np.ndarray
    f: np.ndarray
    s: np.ndarray
    weight: np.ndarray
    inverse: np.ndarray

    @property
    def size(self) -> int:
        return int(self.n.shape[0])

    @property
    def d(self) -> np.ndarray:
        return self.n - self.t


# Per vote code: (tie, first pick, stronger pick), code = outcome + 3 * stronger_first.
_TIE = np.array([0, 0, 1, 0, 0, 1], dtype=np.int64)
_FIRST = np.array([1, 0, 0, 1, 0, 0], dtype=np.int64)
_STRONGER = np.array([0, 1, 0, 1, 0, 0], dtype=np.int64)
#: Base of the packed per-vote weight ``stronger + B*first + B**2*tie + B**3*1``: exact while
#: every user has fewer than B votes (then every packed sum is below 2**52).
_BASE = 1 << 13  # the shifts in _counts (13, 26, 39) follow from this


def _counts(user: np.ndarray, code: np.ndarray, n_users: int, stronger: np.ndarray):
    """Per-user (n, t, f, k) in one weighted bincount when every user has < 8192 votes.

    The vote count sits in the top field, so a user with ``n >= B`` shows up as a packed sum
    of at least ``B**4 = 2**52`` (sums below 2**53 are exact in float64, and a true sum of at
    least 2**52 cannot round below it); only then are separate counts taken.
    """
    B = _BASE
    table = (stronger + B * _FIRST + B * B * _TIE + B * B * B).astype(np.float64)
    packed = np.bincount(user, weights=table[code], minlength=n_users)
    if packed.shape[0] != n_users:
        raise ValueError("user codes must lie in 0 .. n_users - 1")
    if n_users == 0 or float(packed.max()) < float(B) ** 4:
        p = packed.astype(np.int64)
        mask = B - 1
        return p >> 39, (p >> 26) & mask, (p >> 13) & mask, p & mask
    n = np.bincount(user, minlength=n_users)
    t = np.bincount(user, weights=_TIE[code], minlength=n_users).astype(np.int64)
    f = np.bincount(user, weights=_FIRST[code], minlength=n_users).astype(np.int64)
    k = np.bincount(user, weights=stronger[code], minlength=n_users).astype(np.int64)
    return n, t, f, k


def aggregate(enc: EncodedVotes, mu: float | None = None) -> UserStats:
    """One pass over the encoded votes into per-user statistics.

    ``mu`` is the scalar P(stronger model wins) when ``enc.mu`` is None.
    """
    user, code, n_users = enc.user, enc.code, enc.n_users
    scalar = enc.mu is None
    n, t, f, k = _counts(user, code, n_users, _STRONGER if scalar else np.zeros(6, dtype=np.int64))
    if scalar:
        if mu is None:
            raise ValueError("aggregate needs mu when the encoded votes carry no per-vote mu")
        d = n - t
        s = k * np.log(mu) + (d - k) * np.log1p(-mu)
        return UserStats(n=n, t=t, f=f, s=s, k=k)
    outcome = code % 3
    mu_row = enc.mu
    logp = np.where(outcome == CODE_A, np.log(mu_row), np.where(outcome == CODE_B, np.log1p(-mu_row), 0.0))
    s = np.bincount(user, weights=logp, minlength=n_users)
    return UserStats(n=n, t=t, f=f, s=s, k=None)


def without_ties(stats: UserStats) -> UserStats:
    """The statistics a model that ignores ties sees: ``n`` is the decisive votes, ``t = 0``."""
    return UserStats(n=stats.n - stats.t, t=np.zeros_like(stats.t), f=stats.f, s=stats.s, k=stats.k)


def _dedupe(key: np.ndarray, space: int | None):
    """Sorted unique keys, counts and inverse; a bincount when the key space is small."""
    if space is not None and space <= 16 * key.shape[0] + (1 << 20):
        counts = np.bincount(key, minlength=space)
        present = np.flatnonzero(counts)
        lookup = np.empty(space, dtype=np.int64)
        lookup[present] = np.arange(present.shape[0])
        return present, counts[present], lookup[key]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return uniq, counts, inverse


def compress(stats: UserStats) -> Patterns:
    """Collapse users with equal statistics into weighted patterns.

    In the scalar-mu case users are grouped on ``(n, t, f, k)``; in the per-row case the
    attentive term ``s`` is a real number per user, so each user is its own pattern.
    """
    n_users = stats.n.shape[0]
    if stats.k is None:
        return Patterns(
            n=stats.n,
            t=stats.t,
            f=stats.f,
            s=stats.s,
            weight=np.ones(n_users),
            inverse=np.arange(n_users),
        )
    m = int(stats.n.max()) + 1 if n_users else 1
    if float(m) ** 4 < 2.0**62:
        key = stats.n + m * (stats.t + m * (stats.f + m * stats.k))
        uniq, counts, inverse = _dedupe(key, m**4)
        first = np.empty(uniq.shape[0], dtype=np.int64)
        first[inverse] = np.arange(n_users)  # any representative user of each pattern
    else:
        rows = np.stack([stats.n, stats.t, stats.f, stats.k], axis=1)
        _, first, inverse, counts = np.unique(rows, axis=0, return_index=True, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
    return Patterns(
        n=stats.n[first],
        t=stats.t[first],
        f=stats.f[first],
        s=stats.s[first],
        weight=counts.astype(np.float64),
        inverse=inverse,
    )
