"""Sufficient statistics: the one pass over the raw votes (docs/design.md section 4).

Given the reference probabilities, a user's votes enter the model only through a few counts:
votes ``n``, ties ``t``, decisive picks of the first-shown answer ``f`` and the attentive
log-likelihood ``s`` of the decisive picks. With a scalar mu for two models, ``s`` depends
only on ``k``, the decisive picks of the stronger model, so users with equal ``(n, t, f, k)``
are interchangeable and collapse into one *pattern* weighted by how many users share it.

The aggregation is one pass over the votes. On large inputs a compiled loop (numba) adds,
per vote, one 64-bit integer that packs the vote and its three indicators (tie, first pick,
stronger pick; 15 bits a field) into the user's slot, and the patterns are read off the
packed sums without unpacking them per user (fresh per-user memory is what costs time at a
million users). Once a user reaches 16,384 votes a field could overflow, so the loop stops
and NumPy's weighted ``bincount`` counts instead, as it does on small inputs. Both engines
give identical statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from comparemode.constants import CODE_A, CODE_B
from comparemode.errors import ConfigError

__all__ = ["EncodedVotes", "UserStats", "Patterns", "aggregate", "without_ties", "compress", "patterns_for"]



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
    pairs : (a, b) int arrays or None. The joint model's model codes per vote (shown first,
        shown second), so that per-vote terms follow these votes' own order.
    """

    user: np.ndarray
    code: np.ndarray
    n_users: int
    mu: np.ndarray | None = None
    #: the joint model: the model codes shown first and second on each vote
    pairs: tuple | None = None

    @property
    def n_votes(self) -> int:
        return int(self.user.shape[0])

    @property
    def outcome(self) -> np.ndarray:
        return self.code % 3


class _CountsMixin:
    """``d`` and the attentive log-likelihood ``s`` from the counts (shared by users and
    patterns)."""

    @property
    def d(self) -> np.ndarray:
        return self.n - self.t

    @cached_property
    def s(self) -> np.ndarray:
        """Attentive log-likelihood of the decisive votes: given per vote (``s_row``) or,
        with a scalar mu, ``k log mu + (d - k) log(1 - mu)``."""
        if self.s_row is not None:
            return self.s_row
        return self.k * np.log(self.mu) + (self.d - self.k) * np.log1p(-self.mu)


class UserStats(_CountsMixin):
    """Per-user sufficient statistics (arrays of length ``n_users``).

    ``n, t, f`` always; scalar-mu case: ``k`` (decisive picks of the stronger model) and
    ``mu``; per-row case: ``s_row``, the attentive log-likelihood of each user's decisive
    votes. Built either from the count arrays or from the packed per-user sums of the
    compiled pass, which are unpacked only when a count is asked for.
    """

    def __init__(self, n=None, t=None, f=None, k=None, mu=None, s_row=None, packed=None):
        if packed is None and (n is None or t is None or f is None):
            raise ValueError("UserStats needs n, t and f, or packed sums")
        self.packed = packed
        if packed is not None:
            n, t, f, k_packed = _unpack_lazy(self)
            k = k_packed if mu is not None else None
        self._n, self._t, self._f, self._k = n, t, f, k
        self.mu = None if mu is None else float(mu)
        self.s_row = s_row

    def _get(self, name):
        value = getattr(self, name)
        return value() if callable(value) else value

    n = property(lambda self: self._get("_n"))
    t = property(lambda self: self._get("_t"))
    f = property(lambda self: self._get("_f"))
    k = property(lambda self: self._get("_k"))
    #: Whether ``k`` exists (the scalar-mu case), without unpacking it.
    has_k = property(lambda self: self._k is not None)

    @property
    def n_users(self) -> int:
        return int(self.packed.shape[0] if self.packed is not None else self._n.shape[0])


def _unpack_lazy(stats: UserStats):
    """Four callables that unpack one field each on first use (and keep the result)."""
    cache = {}

    def field(i):
        def get():
            if i not in cache:
                shift = (3 - i) * _SHIFT
                v = stats.packed >> shift
                cache[i] = v if i == 0 else v & ((1 << _SHIFT) - 1)
            return cache[i]

        return get

    return field(0), field(1), field(2), field(3)


@dataclass(frozen=True)
class Patterns(_CountsMixin):
    """Distinct count patterns, each with the number of users sharing it.

    ``inverse[u]`` is the pattern of user ``u``.
    """

    n: np.ndarray
    t: np.ndarray
    f: np.ndarray
    weight: np.ndarray
    inverse: np.ndarray
    k: np.ndarray | None = None
    mu: float | None = None
    s_row: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.n.shape[0])


# Per vote code: (tie, first pick, stronger pick), code = outcome + 3 * stronger_first.
_TIE = np.array([0, 0, 1, 0, 0, 1], dtype=np.int64)
_FIRST = np.array([1, 0, 0, 1, 0, 0], dtype=np.int64)
_STRONGER = np.array([0, 1, 0, 1, 0, 0], dtype=np.int64)
#: Packed per-user sums in one int64: k in bits 0-14, f in 15-29, t in 30-44, n from 45.
_SHIFT = 15
#: The packed pass stops once a user reaches this many votes, so no field can overflow.
_PACKED_LIMIT = 1 << 14
#: From this many votes on, the compiled pass is used (no JIT compilation for small inputs).
NUMBA_MIN_VOTES = 200_000


def _packed_table(stronger: np.ndarray) -> np.ndarray:
    return stronger + (_FIRST << _SHIFT) + (_TIE << (2 * _SHIFT)) + (np.int64(1) << (3 * _SHIFT))


@lru_cache(maxsize=1)
def _numba_kernels():
    """The compiled loops (numba is imported and the functions compiled on first use)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def scatter(user, code, table, n_users, mu, with_mu, limit):
        """One pass over the votes: packed[u] += table[code]; s[u] += log p (per-row mu).
        Returns (packed, s, status); status 0 done, 1 a user code outside 0..n_users-1,
        2 a user reached ``limit`` votes (the caller counts another way)."""
        packed = np.zeros(n_users, np.int64)
        s = np.zeros(n_users if with_mu else 0, np.float64)
        for i in range(user.shape[0]):
            u = user[i]
            if u < 0 or u >= n_users:
                return packed, s, 1
            c = code[i]
            v = packed[u] + table[c]
            packed[u] = v
            if (v >> 45) >= limit:  # 45 = 3 * _SHIFT, the vote-count field
                return packed, s, 2
            if with_mu:
                o = c % 3
                if o == 0:
                    s[u] += np.log(mu[i])
                elif o == 1:
                    s[u] += np.log1p(-mu[i])
        return packed, s, 0

    @numba.njit(cache=True, nogil=True)
    def dedupe(packed, m):
        """Patterns of the packed (n, t, f, k), every count below ``m``, through a dense
        table of size m**4 in key order: representative user, count, inverse per user."""
        mask = (1 << 15) - 1
        size = m * m * m * m
        slot = np.zeros(size, np.int64)
        for u in range(packed.shape[0]):
            v = packed[u]
            slot[(v >> 45) + m * (((v >> 30) & mask) + m * (((v >> 15) & mask) + m * (v & mask)))] += 1
        n_pat = 0
        for j in range(size):
            if slot[j] > 0:
                slot[j] = n_pat + 1  # from now on: 1 + pattern id
                n_pat += 1
        counts = np.zeros(n_pat, np.int64)
        first = np.empty(n_pat, np.int64)
        inverse = np.empty(packed.shape[0], np.int32)
        for u in range(packed.shape[0]):
            v = packed[u]
            q = slot[(v >> 45) + m * (((v >> 30) & mask) + m * (((v >> 15) & mask) + m * (v & mask)))] - 1
            inverse[u] = q
            counts[q] += 1
            first[q] = u
        return first, counts, inverse

    return scatter, dedupe


@lru_cache(maxsize=1)
def _gather_sum_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def gather_sum(groups, index, table, n_groups):
        """out[groups[i]] += table[index[i]], in row order (as np.bincount sums)."""
        out = np.zeros(n_groups, np.float64)
        for i in range(groups.shape[0]):
            out[groups[i]] += table[index[i]]
        return out

    return gather_sum


@lru_cache(maxsize=1)
def _replicate_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def replicate_votes(user, u_tie, u_pick, tau, p_tie_vote, attentive, mu_row, rho, favours_a, informative, first, n_ties, n_first, n_fav, n_fav_dec):
        """One replicate's per-user counts from its uniform draws, vote by vote: a tie when
        ``u_tie < p_tie`` (``p_tie_vote`` per vote when given, else the user's ``tau``),
        model_a picked when ``u_pick < p_a`` (the vote's mu for an attentive user, the user's
        ``rho`` otherwise). The count arrays are added to (the caller zeroes them)."""
        per_vote = p_tie_vote.shape[0] > 0
        for i in range(user.shape[0]):
            u = user[i]
            pt = p_tie_vote[i] if per_vote else tau[u]
            if u_tie[i] < pt:
                n_ties[u] += 1
                continue
            pa = mu_row[i] if attentive[u] else rho[u]
            pick = u_pick[i] < pa
            if first and pick:
                n_first[u] += 1
            if informative[i]:
                n_fav_dec[u] += 1
                if pick == favours_a[i]:
                    n_fav[u] += 1

    return replicate_votes


#: :func:`half_split_counts` counts in int32: it takes fewer votes than this.
HALF_SPLIT_MAX_VOTES = 1 << 31


@lru_cache(maxsize=1)
def _half_split_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def half_split(user, informative, agree, n_users):
        """Per user, over its informative votes in row order: their number ``d``, their
        agreements ``K`` and the agreements among the first ``d // 2`` of them. The second
        pass keeps a user's four counters side by side (one place read per vote); int32
        counters, so fewer than 2**31 votes."""
        d = np.zeros(n_users, np.int32)
        for i in range(user.shape[0]):
            if informative[i]:
                d[user[i]] += 1
        acc = np.zeros((n_users, 4), np.int32)  # votes seen, K, K among the first half, d // 2
        for u in range(n_users):
            acc[u, 3] = d[u] // 2
        for i in range(user.shape[0]):
            if informative[i]:
                u = user[i]
                if agree[i]:
                    acc[u, 1] += 1
                    if acc[u, 0] < acc[u, 3]:
                        acc[u, 2] += 1
                acc[u, 0] += 1
        return d, acc[:, 1].copy(), acc[:, 2].copy()

    return half_split


def half_split_counts(user: np.ndarray, informative: np.ndarray, agree: np.ndarray, n_users: int):
    """Per user ``(d, K, K_first)``: the number of its informative votes, their agreements and
    the agreements among the first ``d // 2`` of them in row order (the drift check's halves),
    in one compiled pass with no sort (:func:`comparemode.inference.misfit.drift_check` uses it
    from :data:`NUMBA_MIN_VOTES` votes on; its sort-based path gives the same integers).
    Fewer than :data:`HALF_SPLIT_MAX_VOTES` votes (int32 counters)."""
    if np.shape(user)[0] >= HALF_SPLIT_MAX_VOTES:
        raise OverflowError("half_split_counts counts in int32: fewer than 2**31 votes")
    return _half_split_kernel()(np.asarray(user), np.asarray(informative, dtype=bool), np.asarray(agree, dtype=bool), int(n_users))


#: Rows summed apart by the compiled mixture pass before the block sums are added: the product
#: of a block's 1 + exp(-|x - y|) (each in (1, 2]) stays below 2**512.
_MIXTURE_BLOCK = 512


@lru_cache(maxsize=1)
def _mixture_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def mixture_terms(l1, l0, w, log_pi, log_not_pi, gamma, block_sums):
        """Per row the posterior weight of the first component (``gamma``) and, per block of
        rows, the sum of w * log(pi e^l1 + (1 - pi) e^l0). With e = exp(-|x - y|) the row's
        log mixture is max(x, y) + log(1 + e) and its posterior 1 / (1 + e) or e / (1 + e):
        one exponential per row, and for rows of weight 1 one logarithm per block (of the
        product of their 1 + e) instead of one per row."""
        n = l1.shape[0]
        for b in range(block_sums.shape[0]):
            total = 0.0
            product = 1.0
            for i in range(b * _MIXTURE_BLOCK, min(n, (b + 1) * _MIXTURE_BLOCK)):
                x = log_pi + l1[i]
                y = log_not_pi + l0[i]
                if x >= y:
                    e = np.exp(y - x)
                    top = x
                    gamma[i] = 1.0 / (1.0 + e)
                else:
                    e = np.exp(x - y)
                    top = y
                    gamma[i] = e / (1.0 + e)
                if w[i] == 1.0:
                    total += top
                    product *= 1.0 + e
                else:
                    total += w[i] * (top + np.log1p(e))
            block_sums[b] = total + np.log(product)

    return mixture_terms


def mixture_posterior(pi: float, l1: np.ndarray, l0: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """A two-component mixture with weight ``pi`` on the component of per-row log-likelihood
    ``l1`` (and ``1 - pi`` on ``l0``), rows weighted by ``w``: the weighted sum of the rows' log
    mixture likelihoods, and the first component's posterior probability per row. From
    :data:`NUMBA_MIN_VOTES` rows on (the joint EM's patterns are its users) one compiled pass
    with one exponential per row (NumPy's way takes about ten passes, three of them
    transcendental); the two agree to about 1e-13 relative (other rounding, other maths
    library, block sums instead of one dot product)."""
    x0, y0 = math.log(pi), math.log1p(-pi)
    n = l1.shape[0]
    if n >= NUMBA_MIN_VOTES:
        gamma = np.empty(n)
        blocks = np.empty(-(-n // _MIXTURE_BLOCK))
        _mixture_kernel()(np.ascontiguousarray(l1, dtype=np.float64), np.ascontiguousarray(l0, dtype=np.float64),
                          np.ascontiguousarray(w, dtype=np.float64), x0, y0, gamma, blocks)
        return float(np.sum(blocks)), gamma
    x = x0 + l1
    y = y0 + l0
    lse = np.maximum(x, y) + np.log1p(np.exp(-np.abs(x - y)))
    return float(np.dot(w, lse)), np.exp(x - lse)


def check_engine(engine: str) -> None:
    """Refuse an ``engine=`` other than "auto", "numba" or "numpy" (a :class:`ConfigError`, a ``ValueError``)."""
    if engine not in ("auto", "numba", "numpy"):
        raise ConfigError(f"engine must be 'auto', 'numba' or 'numpy', got {engine!r}")


def replicate_vote_counts(user, u_tie, u_pick, tau, p_tie_vote, attentive, mu_row, rho, favours_a, informative, n_users: int, first: bool, engine: str = "auto"):
    """Per-user ``(n_ties, n_first or None, n_favoured, n_favoured_decisive)`` of one replicate
    of the votes from its two uniform draws per vote (see :func:`replicate_user_counts
    <comparemode.models.simulate.replicate_user_counts>`): from half :data:`NUMBA_MIN_VOTES`
    votes on (a replicate is many passes, so compiling pays sooner) one compiled pass, else bincounts of the indicators; the same integers either way
    (``engine``: "auto", "numba" or "numpy", as in :func:`aggregate`).
    ``p_tie_vote``: each vote's tie probability, or None for the user's ``tau``."""
    check_engine(engine)
    if engine == "numba" or (engine == "auto" and user.shape[0] >= NUMBA_MIN_VOTES // 2):
        out = [np.zeros(n_users, np.int64) for _ in range(4)]
        ptv = np.zeros(0) if p_tie_vote is None else np.ascontiguousarray(p_tie_vote, dtype=np.float64)
        _replicate_kernel()(user, u_tie, u_pick, np.ascontiguousarray(tau, dtype=np.float64), ptv, attentive, np.ascontiguousarray(mu_row, dtype=np.float64),
                            np.ascontiguousarray(rho, dtype=np.float64), favours_a, informative, first, *out)
        return out[0], (out[1] if first else None), out[2], out[3]
    is_tie = u_tie < (tau[user] if p_tie_vote is None else p_tie_vote)
    pick_a = u_pick < np.where(attentive[user], mu_row, rho[user])
    decisive = ~is_tie
    informative = decisive & informative
    n_first = np.bincount(user, weights=decisive & pick_a, minlength=n_users).astype(np.int64) if first else None
    return (np.bincount(user, weights=is_tie, minlength=n_users).astype(np.int64), n_first,
            np.bincount(user, weights=informative & (pick_a == favours_a), minlength=n_users).astype(np.int64),
            np.bincount(user, weights=informative, minlength=n_users).astype(np.int64))


def gather_bincount(groups: np.ndarray, index: np.ndarray, table: np.ndarray, n_groups: int) -> np.ndarray:
    """``np.bincount(groups, weights=table[index], minlength=n_groups)``: from
    :data:`NUMBA_MIN_VOTES` rows on one compiled pass, without the gathered array (the same
    sums in the same order, so the same bits). ``groups`` and ``index`` must lie in range."""
    if groups.shape[0] >= NUMBA_MIN_VOTES:
        return _gather_sum_kernel()(groups, index, np.ascontiguousarray(table, dtype=np.float64), int(n_groups))
    return np.bincount(groups, weights=table[index], minlength=n_groups)


def _counts_numpy(user, code, n_users, stronger):
    """Per-user (n, t, f, k) with NumPy: a float-weighted bincount of the indicators packed in
    base 2**15 (exact: the sums stay below 2**53 while no user reaches the limit), or, past
    the limit, one bincount each."""
    try:
        n = np.bincount(user, minlength=n_users)
    except ValueError:  # negative codes
        raise ValueError("user codes must lie in 0 .. n_users - 1") from None
    if n.shape[0] != n_users:
        raise ValueError("user codes must lie in 0 .. n_users - 1")
    if n_users == 0 or int(n.max()) < _PACKED_LIMIT:
        rest = _packed_table(stronger) & ((np.int64(1) << (3 * _SHIFT)) - 1)
        packed = np.bincount(user, weights=rest.astype(np.float64)[code], minlength=n_users).astype(np.int64)
        mask = (1 << _SHIFT) - 1
        return n, packed >> (2 * _SHIFT), (packed >> _SHIFT) & mask, packed & mask
    t = np.bincount(user, weights=_TIE[code], minlength=n_users).astype(np.int64)
    f = np.bincount(user, weights=_FIRST[code], minlength=n_users).astype(np.int64)
    k = np.bincount(user, weights=stronger[code], minlength=n_users).astype(np.int64)
    return n, t, f, k


def _row_s_numpy(user, code, mu, n_users):
    outcome = code % 3
    logp = np.where(outcome == CODE_A, np.log(mu), np.where(outcome == CODE_B, np.log1p(-mu), 0.0))
    return np.bincount(user, weights=logp, minlength=n_users)


def aggregate(enc: EncodedVotes, mu: float | None = None, engine: str = "auto") -> UserStats:
    """One pass over the encoded votes into per-user statistics.

    ``mu`` is the scalar P(stronger model wins) when ``enc.mu`` is None. ``engine``:
    ``"numba"`` (a compiled single pass), ``"numpy"`` (weighted bincounts) or ``"auto"``
    (numba from :data:`NUMBA_MIN_VOTES` votes on). Both give identical statistics.
    """
    user, code, n_users = enc.user, enc.code, enc.n_users
    scalar = enc.mu is None
    if scalar and mu is None:
        raise ValueError("aggregate needs mu when the encoded votes carry no per-vote mu")
    check_engine(engine)
    stronger = _STRONGER if scalar else np.zeros(6, dtype=np.int64)
    if engine == "numba" or (engine == "auto" and enc.n_votes >= NUMBA_MIN_VOTES):
        mu_row = np.zeros(0) if scalar else np.ascontiguousarray(enc.mu, dtype=np.float64)
        scatter = _numba_kernels()[0]
        packed, s_row, status = scatter(user, code, _packed_table(stronger), n_users, mu_row, not scalar, _PACKED_LIMIT)
        if status == 1:
            raise ValueError("user codes must lie in 0 .. n_users - 1")
        if status == 0:
            return UserStats(packed=packed, mu=mu if scalar else None, s_row=None if scalar else s_row)
    # the NumPy engine, or a user with too many votes for the packed pass
    n, t, f, k = _counts_numpy(user, code, n_users, stronger)
    if scalar:
        return UserStats(n=n, t=t, f=f, k=k, mu=mu)
    return UserStats(n=n, t=t, f=f, s_row=_row_s_numpy(user, code, enc.mu, n_users))


def without_ties(stats: UserStats) -> UserStats:
    """The statistics a model that ignores ties sees: ``n`` is the decisive votes, ``t = 0``."""
    return UserStats(n=stats.n - stats.t, t=np.zeros_like(stats.t), f=stats.f, k=stats.k, mu=stats.mu, s_row=stats.s_row)


def patterns_for(stats: UserStats, ties: str) -> tuple[str, Patterns]:
    """The patterns a model with the given tie setting runs on, and the tie setting in force:
    ``"drop"`` when asked, or when the votes hold no tie at all (the tie part is then empty)."""
    if ties == "drop":
        return ties, compress(without_ties(stats))
    pat = compress(stats)  # tie counts from the patterns: no per-user pass to find ties
    if not pat.t.any():  # no tie at all: these are the patterns of the votes without ties
        ties = "drop"
    return ties, pat


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
    """Collapse users with equal statistics into weighted patterns (sorted by pattern; the
    same patterns in the same order whichever engine aggregated the votes).

    In the scalar-mu case users are grouped on ``(n, t, f, k)``; in the per-row case the
    attentive term ``s`` is a real number per user, so each user is its own pattern.
    """
    n_users = stats.n_users
    if not stats.has_k:
        return Patterns(
            n=stats.n, t=stats.t, f=stats.f, weight=np.ones(n_users), inverse=np.arange(n_users), s_row=stats.s_row
        )
    if stats.packed is not None:
        m = int(stats.packed.max() >> (3 * _SHIFT)) + 1 if n_users else 1
        if m**4 <= 16 * n_users + (1 << 20):
            first, counts, inverse = _numba_kernels()[1](stats.packed, m)
            rep = stats.packed[first]
            mask = (1 << _SHIFT) - 1
            return Patterns(
                n=rep >> (3 * _SHIFT),
                t=(rep >> (2 * _SHIFT)) & mask,
                f=(rep >> _SHIFT) & mask,
                k=rep & mask,
                mu=stats.mu,
                weight=counts.astype(np.float64),
                inverse=inverse,
            )
    n, t, f, k = stats.n, stats.t, stats.f, stats.k
    m = int(n.max()) + 1 if n_users else 1
    if float(m) ** 4 < 2.0**62:
        key = n + m * (t + m * (f + m * k))
        uniq, counts, inverse = _dedupe(key, m**4)
        first = np.empty(uniq.shape[0], dtype=np.int64)
        first[inverse] = np.arange(n_users)  # any representative user of each pattern
    else:
        rows = np.stack([n, t, f, k], axis=1)
        _, first, inverse, counts = np.unique(rows, axis=0, return_index=True, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
    return Patterns(
        n=n[first], t=t[first], f=f[first], k=k[first], mu=stats.mu, weight=counts.astype(np.float64), inverse=inverse
    )
