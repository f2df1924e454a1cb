"""Alternative user models for model checking (docs/design.md section 3): the homogeneous model and
the continuous-quality model, with the same data contract as the two-type model.

Both describe the same data as the two-type model, every user's sequence of votes (ties and
picks), so their per-user log-likelihoods are comparable (PSIS-LOO at the user level).

- **Homogeneous**: no user effect on the picks. Every decisive vote, whoever casts it, is
  attentive with probability ``theta`` (picks the answer the reference favours with the
  reference probability) and otherwise careless (picks the first-shown answer with a rate
  ``careless_first`` shared by all, or 1/2 with ``careless="random"``). Tie habits vary
  between users as one Beta(tie) for everybody: the tie part is not about carelessness, and
  a Binomial tie count would lose to the two-type model on tie over-dispersion alone.
- **Continuous quality**: user ``u`` casts each decisive vote attentively with probability
  ``theta_u ~ Beta(quality_mean * quality_kappa, (1 - quality_mean) * quality_kappa)``,
  otherwise carelessly as above; ties as in the homogeneous model. The two-type model is the
  limit where ``theta_u`` is 0 or 1.

The continuous model's marginal likelihood (``theta_u`` integrated out) is exact: expanding
the product over a user's votes, it is a sum over ``i`` (votes cast attentively) and ``g``
(careless votes for the first-shown answer) of ``K[i, g] rho^g (1 - rho)^(D - i - g)
B(c + i, d + D - i) / B(c, d)``, where ``K[i, g]`` (the sum over vote assignments of the
attentive probabilities) does not depend on the parameters and is computed once per user.
With ``careless="random"`` the ``g`` dimension collapses.

How it is computed (:class:`ContinuousTerms`): a pick of the first-shown answer is either
attentive or a careless first-position pick, a pick of the second likewise, so ``K[i, g] =
f[g] h[s]`` with ``s = D - i - g`` the careless second-position picks and ``f``, ``h`` one
polynomial per pattern for its first and its second picks (a one-dimensional recursion each).
The Beta functions are ratios of rising factorials, ``B(c + i, d + m) / B(c, d) = (c)_i
(d)_m / (c + d)_D``, computed once per parameter point for every count up to the largest
user's (a cumulative sum of logarithms). Each term is then ``uf[g] + us[s] + um[g + s]``, and a
compiled kernel (:func:`_lse_kernel`, also a PyTensor Op with its numba implementation, so the
PyMC model's gradient runs there too) sums each pattern's terms as scaled products, in log
space where products could underflow, and returns the softmax weights the gradient needs. The
previous formulation (every (i, g) slot a term, padded buckets, log-gamma functions per term)
is kept as ``method="buckets"`` and ``continuous_terms(..., legacy=True)``: it gives the same
values to rounding and is the reference of the tests and of ``benchmarks/report_speed.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.special import betainc, gammaln, logsumexp

from comparemode.errors import ConfigError
from comparemode.models.likelihood import NUMPY_OPS, log_betabinom_seq, tensor_ops
from comparemode.models.pymc_model import beta_from_mean_kappa, prior_variable
from comparemode.models.stats import EncodedVotes

__all__ = [
    "ALT_CARELESS_MODES",
    "CONTINUOUS_CARELESS_MODES",
    "continuous_prob_attentive",
    "VoteTypes",
    "vote_types",
    "homogeneous_loglik",
    "ContinuousTerms",
    "continuous_terms",
    "continuous_loglik",
    "continuous_quality_mean",
    "MAX_CONTINUOUS_TERMS",
    "CONTINUOUS_METHODS",
    "factored_inputs",
    "factored_lse",
    "careless_weights",
]

#: Careless settings of the homogeneous model (nobody differs: one shared rate, or 1/2).
ALT_CARELESS_MODES = ("shared", "random")
#: Careless settings of the continuous-quality model: also ``"beta"``, a first-position rate
#: per user from a Beta, the two-type model's careless sub-model, so that a comparison of the
#: two asks only "two types or a continuum" (the rate is integrated out exactly as well).
CONTINUOUS_CARELESS_MODES = ("beta", "shared", "random")
#: Largest number of (pattern, i, g) terms of the exact continuous-model likelihood.
MAX_CONTINUOUS_TERMS = 6_000_000


@dataclass
class VoteTypes:
    """Users' votes as counts of decisive-vote *types* (a type: the attentive probability
    ``A`` of the pick and whether the pick was the first-shown answer), grouped into patterns
    of users with equal counts.

    ``n``, ``t``, ``d``: votes, ties and decisive votes per pattern; ``weight``: users per
    pattern; ``inverse``: each user's pattern; ``A``, ``first``: per type; ``counts``: sparse
    (patterns x types) counts; ``entries``: the same as arrays ``(pattern, type, count)``.
    """

    n: np.ndarray
    t: np.ndarray
    weight: np.ndarray
    inverse: np.ndarray
    A: np.ndarray
    first: np.ndarray
    counts: sparse.csr_matrix
    #: two models with a scalar mu: four types (see :func:`vote_types`), users grouped
    scalar: bool = False

    @property
    def d(self) -> np.ndarray:
        return self.n - self.t

    @property
    def size(self) -> int:
        return int(self.n.shape[0])

    @property
    def entries(self):
        coo = self.counts.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(float)


def vote_types(enc: EncodedVotes, mu: float | None = None) -> VoteTypes:
    """Vote types of encoded votes: with a scalar ``mu`` (P(stronger model wins); ``enc.code``
    = outcome + 3 * stronger-shown-first) four types, users with equal counts grouped; with a
    per-vote ``enc.mu`` every decisive vote is its own type and every user its own pattern."""
    outcome = enc.code % 3
    dec = outcome != 2
    n = np.bincount(enc.user, minlength=enc.n_users)
    t = np.bincount(enc.user[~dec], minlength=enc.n_users)
    if enc.mu is None:
        if mu is None:
            raise ConfigError("vote types need a scalar mu when the votes carry no per-vote mu")
        stronger_first = enc.code // 3
        typ = (outcome + 2 * stronger_first)[dec]
        # type = outcome + 2 * stronger_first: picked first (0) or second (1), stronger shown first or not
        A = np.array([1 - mu, mu, mu, 1 - mu], dtype=float)
        first = np.array([True, False, True, False])
        rows = np.zeros((enc.n_users, 5), dtype=np.int64)
        rows[:, 0] = t
        rows[:, 1:] = np.bincount(enc.user[dec] * 4 + typ, minlength=4 * enc.n_users).reshape(enc.n_users, 4)
        uniq, inverse, weight = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        counts = sparse.csr_matrix(uniq[:, 1:].astype(float))
        counts.eliminate_zeros()
        return VoteTypes(n=uniq.sum(axis=1), t=uniq[:, 0], weight=weight.astype(float), inverse=inverse, A=A, first=first, counts=counts, scalar=True)
    mu_v = np.asarray(enc.mu, dtype=float)[dec]
    out_d = outcome[dec]
    A = np.where(out_d == 0, mu_v, 1.0 - mu_v)
    first = out_d == 0
    users = enc.user[dec]
    counts = sparse.csr_matrix((np.ones(users.size), (users, np.arange(users.size))), shape=(enc.n_users, users.size))
    return VoteTypes(
        n=n, t=t, weight=np.ones(enc.n_users), inverse=np.arange(enc.n_users), A=A, first=first, counts=counts
    )


def _careless_p(first, rho, ops=NUMPY_OPS):
    f = first.astype(float)
    return f * rho + (1.0 - f) * (1.0 - rho)


def homogeneous_loglik(vt: VoteTypes, params: dict, careless: str, ops=NUMPY_OPS, tie: bool = True):
    """Per-pattern log-likelihood of the homogeneous model: ``params`` has ``theta``,
    ``careless_first`` (``"shared"``) and ``tie`` ``(a, b)`` (unless ``tie=False``)."""
    rho = params["careless_first"] if careless == "shared" else 0.5
    theta = params["theta"]
    logp = ops.log(theta * vt.A + (1.0 - theta) * _careless_p(vt.first, rho, ops))
    if ops is NUMPY_OPS:
        dec = vt.counts @ logp
    else:
        import pytensor.tensor as pt

        row, col, cnt = vt.entries
        dec = pt.inc_subtensor(pt.zeros(vt.size)[row], cnt * logp[col])
    if tie:
        dec = dec + log_betabinom_seq(vt.t, vt.n, *params["tie"], ops)
    return dec


@dataclass
class _Bucket:
    """Patterns ``rows`` of similar size, padded to one width: ``logK`` (rows x terms, -inf
    where unused), ``i`` (votes cast attentively), ``g`` (careless first-position picks),
    ``D`` (decisive votes per row), ``pair_index`` (each term's (i, D) pair) and
    ``pos_index`` (each term's (g, D - i) pair: careless first-position picks and careless
    votes)."""

    rows: np.ndarray
    logK: np.ndarray
    i: np.ndarray
    g: np.ndarray
    D: np.ndarray
    pair_index: np.ndarray
    pos_index: np.ndarray | None = None


@dataclass
class ContinuousTerms:
    """The parameter-free part of the continuous model's exact likelihood, factored.

    A user's ``D`` decisive votes are ``n_first`` picks of the first-shown answer and
    ``n_second`` of the second. A pick of the first-shown answer is attentive (weight ``A``)
    or a careless first-position pick, a pick of the second likewise, so the sum over vote
    assignments factors: with ``g`` careless first-position picks and ``s`` careless
    second-position picks (``m = g + s`` careless votes, ``i = D - m`` attentive),
    ``K[i, g] = f[g] * h[s]``, where ``f[g]`` sums the attentive weights over the ways of
    casting ``n_first - g`` of the first picks attentively (``h`` likewise for the second
    picks): two one-dimensional polynomials per pattern, ``logf`` and ``logs`` (flat, pattern
    after pattern, ``g = 0 .. n_first`` and ``s = 0 .. n_second``). Every (g, s) is a term:
    ``n_terms = sum (n_first + 1) (n_second + 1)``, no padding. With ``careless="random"`` the
    position of a careless pick does not matter and the two blocks are convolved once:
    ``logf`` holds ``log K[D - m]`` over ``m`` (``n_first = D``, ``n_second = 0``).

    The bucket layout of the terms (``buckets``, ``pair_i``, ``pair_D``, ``pos_g``, ``pos_m``:
    patterns padded to a width per bucket, the distinct (i, D) and (g, m) pairs) is built
    from the factors on first use, for the code that works on terms one by one
    (:func:`term_values`); ``continuous_terms(..., legacy=True)`` builds it the previous way
    (a two-dimensional recursion per user, (D + 1)(D + 2) / 2 slots per pattern), the
    reference of the tests and of ``benchmarks/report_speed.py``.
    """

    n_patterns: int
    careless: str
    D: np.ndarray
    n_first: np.ndarray
    n_second: np.ndarray
    logf: np.ndarray
    logs: np.ndarray
    layout: dict | None = field(default=None, repr=False)

    def __post_init__(self):
        D = np.asarray(self.D, dtype=np.int64)
        nf = np.asarray(self.n_first, dtype=np.int64)
        ns = np.asarray(self.n_second, dtype=np.int64)
        self.D, self.n_first, self.n_second = D, nf, ns
        P = D.size
        self.off_f = np.concatenate([[0], np.cumsum(nf + 1)]).astype(np.int64)
        self.off_s = np.concatenate([[0], np.cumsum(ns + 1)]).astype(np.int64)
        self.off_m = np.concatenate([[0], np.cumsum(D + 1)]).astype(np.int64)
        self.pat_f = np.repeat(np.arange(P), nf + 1)
        self.pat_s = np.repeat(np.arange(P), ns + 1)
        self.pat_m = np.repeat(np.arange(P), D + 1)
        self.g_f = np.arange(self.off_f[-1]) - self.off_f[:-1][self.pat_f]  # g of every logf entry
        self.s_s = np.arange(self.off_s[-1]) - self.off_s[:-1][self.pat_s]
        self.m_m = np.arange(self.off_m[-1]) - self.off_m[:-1][self.pat_m]  # careless votes m
        self.D_m = D[self.pat_m]
        self.d_max = int(D.max(initial=0))

    @property
    def n_terms(self) -> int:
        if self.careless == "random":
            return int((self.D + 1).sum())
        return int(((self.n_first + 1) * (self.n_second + 1)).sum())

    def _layout(self) -> dict:
        if self.layout is None:
            self.layout = _pack_buckets(self._per_pattern_terms(), self.D)
        return self.layout

    def _per_pattern_terms(self):
        out = []
        for p in range(self.n_patterns):
            f = self.logf[self.off_f[p] : self.off_f[p + 1]]
            if self.careless == "random":
                m = np.arange(f.size)
                out.append((f, self.D[p] - m, np.zeros(f.size, dtype=np.int64)))
                continue
            s = self.logs[self.off_s[p] : self.off_s[p + 1]]
            g, ss = np.meshgrid(np.arange(f.size), np.arange(s.size), indexing="ij")
            out.append(((f[:, None] + s[None, :]).ravel(), (self.D[p] - g - ss).ravel(), g.ravel()))
        return out

    @property
    def buckets(self) -> list:
        return self._layout()["buckets"]

    @property
    def pair_i(self) -> np.ndarray:
        return self._layout()["pair_i"]

    @property
    def pair_D(self) -> np.ndarray:
        return self._layout()["pair_D"]

    @property
    def pos_g(self) -> np.ndarray:
        return self._layout()["pos_g"]

    @property
    def pos_m(self) -> np.ndarray:
        return self._layout()["pos_m"]


def _log_poly_dp(A_list, first_list, with_g: bool) -> np.ndarray:
    """log K[i, g] for one user's decisive votes, vote by vote (``g`` summed out unless
    ``with_g``)."""
    D = len(A_list)
    if not with_g:
        logK = np.full(D + 1, -np.inf)
        logK[0] = 0.0
        for a in A_list:  # careless factor 1/2 is applied outside
            new = logK.copy()
            new[1:] = np.logaddexp(logK[1:], np.log(a) + logK[:-1])
            logK = new
        return logK
    logK = np.full((D + 1, D + 1), -np.inf)
    logK[0, 0] = 0.0
    for a, fst in zip(A_list, first_list):
        new = np.full_like(logK, -np.inf)
        new[1:, :] = np.log(a) + logK[:-1, :]  # attentive
        if fst:  # careless, first: g + 1
            new[:, 1:] = np.logaddexp(new[:, 1:], logK[:, :-1])
        else:  # careless, second: g unchanged
            new = np.logaddexp(new, logK)
        logK = new
    return logK


def _log_binomial_block(n: int, a: float) -> np.ndarray:
    """``log C(n, x) + x log a`` for x = 0 .. n: ``x`` of ``n`` equal votes cast attentively."""
    x = np.arange(n + 1, dtype=float)
    return gammaln(n + 1.0) - gammaln(x + 1.0) - gammaln(n - x + 1.0) + x * np.log(a)


def _log_convolve(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Log of the convolution of two sequences given as logs."""
    out = np.full(p.size + q.size - 1, -np.inf)
    for j, v in enumerate(q):
        out[j : j + p.size] = np.logaddexp(out[j : j + p.size], p + v)
    return out


def _scalar_blocks(counts: np.ndarray, A: np.ndarray, first: np.ndarray):
    """The first-pick and second-pick polynomials of one pattern of two-model votes, by the
    number of votes of the block cast attentively: the votes of each of the four types are
    interchangeable, so choosing ``x`` of a type's ``n`` votes as attentive weighs ``C(n, x)
    A^x``, and a block is the convolution of its types' terms."""
    blocks = {True: np.zeros(1), False: np.zeros(1)}
    for j in np.flatnonzero(counts):
        blocks[bool(first[j])] = _log_convolve(blocks[bool(first[j])], _log_binomial_block(int(counts[j]), float(A[j])))
    return blocks[True], blocks[False]


def _scalar_terms(counts: np.ndarray, A: np.ndarray, first: np.ndarray, with_g: bool):
    """``log K[i, g]`` of one pattern of two-model votes in closed form (no per-vote dynamic
    programming): the careless first-position picks ``g`` are the first-position picks not
    cast attentively, ``g = n_first - x_first``, so ``K[x_first + x_second, n_first -
    x_first] = F[x_first] S[x_second]`` with ``F`` (``S``) the first-pick (second-pick)
    polynomial of :func:`_scalar_blocks`. ``with_g=False`` sums over ``g`` (random clickers)."""
    F, S = _scalar_blocks(counts, A, first)
    n_first = F.size - 1
    xf, xs = np.meshgrid(np.arange(F.size), np.arange(S.size), indexing="ij")
    i_idx, g_idx = (xf + xs).ravel(), (n_first - xf).ravel()
    vals = (F[:, None] + S[None, :]).ravel()
    if with_g:
        return vals, i_idx, g_idx
    out = np.full(F.size + S.size - 1, -np.inf)
    np.logaddexp.at(out, i_idx, vals)
    return out, np.arange(out.size), np.zeros(out.size, dtype=np.int64)


def _pattern_votes(vt: VoteTypes, p: int):
    """The attentive weights of pattern ``p``'s first-position picks and of its second-position
    picks (per-vote types: one entry per vote)."""
    csr = vt.counts
    lo, hi = csr.indptr[p], csr.indptr[p + 1]
    types, reps = csr.indices[lo:hi], csr.data[lo:hi].astype(np.int64)
    A_list, f_list = np.repeat(vt.A[types], reps), np.repeat(vt.first[types], reps)
    return A_list[f_list], A_list[~f_list]


def continuous_terms(vt: VoteTypes, careless: str, legacy: bool = False) -> ContinuousTerms:
    """Precompute the continuous model's terms for every pattern (see the module docstring and
    :class:`ContinuousTerms`): two one-dimensional recursions per pattern (per-vote types)
    or closed forms (two-model types). ``legacy=True`` also builds the bucket layout the
    previous way (kept as a reference for tests and benchmarks)."""
    if careless not in CONTINUOUS_CARELESS_MODES:
        raise ConfigError(f"careless must be one of {CONTINUOUS_CARELESS_MODES} for the continuous model, got {careless!r}")
    with_g = careless != "random"  # the careless first-position picks matter unless they are coin flips
    D = vt.d.astype(np.int64)
    csr = vt.counts
    if vt.scalar:
        dense = csr.toarray()
        nf = dense[:, vt.first].sum(axis=1).astype(np.int64)
    else:
        first = vt.first.astype(float)
        nf = np.rint(csr @ first).astype(np.int64)
    ns = D - nf
    sizes = (nf + 1) * (ns + 1) if with_g else D + 1
    total = int(sizes.sum())
    if total > MAX_CONTINUOUS_TERMS:
        raise ConfigError(
            f"the continuous model's exact likelihood needs {total:,} terms for {vt.size:,} patterns (largest user: "
            f"{int(D.max())} decisive votes), more than {MAX_CONTINUOUS_TERMS:,}; use careless='random' (terms grow "
            "linearly, not quadratically, with a user's votes) or leave out the users with the most votes"
        )
    logf, logs = [], []
    for p in range(vt.size):
        if vt.scalar:
            F, S = _scalar_blocks(dense[p], vt.A, vt.first)  # by attentive votes of the block
        else:
            A_first, A_second = _pattern_votes(vt, p)
            F, S = _log_poly_dp(A_first, None, False), _log_poly_dp(A_second, None, False)
        if with_g:
            logf.append(F[::-1])  # by careless first-position picks g = n_first - attentive
            logs.append(S[::-1])
        else:
            logf.append(_log_convolve(F, S)[::-1])  # by careless votes m = D - i
            logs.append(np.zeros(1))
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
    terms = ContinuousTerms(
        n_patterns=vt.size, careless=careless, D=D, n_first=nf if with_g else D, n_second=ns if with_g else np.zeros_like(D),
        logf=cat(logf), logs=cat(logs),
    )
    if legacy:
        terms.layout = _pack_buckets(_legacy_per_pattern_terms(vt, with_g), D)
    return terms


def _legacy_per_pattern_terms(vt: VoteTypes, with_g: bool):
    """Every pattern's (log K, i, g) the previous way: per-vote types by the two-dimensional
    recursion over the user's votes, every (i, g) with i + g <= D a slot (-inf where no
    assignment gives it)."""
    csr = vt.counts
    per = []
    for p in range(vt.size):
        lo, hi = csr.indptr[p], csr.indptr[p + 1]
        types, reps = csr.indices[lo:hi], csr.data[lo:hi].astype(np.int64)
        if vt.scalar:
            full = np.zeros(vt.A.size, dtype=np.int64)
            full[types] = reps
            per.append(_scalar_terms(full, vt.A, vt.first, with_g))
            continue
        A_list = np.repeat(vt.A[types], reps)
        f_list = np.repeat(vt.first[types], reps)
        k = _log_poly_dp(A_list, f_list, with_g)
        dp = len(A_list)
        if with_g:
            i_idx, g_idx = np.nonzero(np.add.outer(np.arange(dp + 1), np.arange(dp + 1)) <= dp)
            vals = k[i_idx, g_idx]
        else:
            i_idx, g_idx, vals = np.arange(dp + 1), np.zeros(dp + 1, dtype=np.int64), k
        per.append((vals, i_idx, g_idx))
    return per


def _pack_buckets(per, D: np.ndarray) -> dict:
    """The bucket layout of per-pattern terms ``(log K, i, g)``: patterns in buckets of
    decisive-vote counts in [2^j - 1, 2^(j+1) - 1) (so a few heavy users do not pad
    everybody's terms), and the distinct (i, D) and (g, m) pairs the special functions run on."""
    m = int(D.max(initial=0)) + 1
    level = np.floor(np.log2(D + 1)).astype(np.int64)
    pair_keys, buckets = [], []
    for lev in np.unique(level):
        rows = np.flatnonzero(level == lev)
        width = max(per[r][0].size for r in rows)
        logK = np.full((rows.size, width), -np.inf)
        ii = np.zeros((rows.size, width), dtype=np.int64)
        gg = np.zeros((rows.size, width), dtype=np.int64)
        for j, r in enumerate(rows):
            vals, i_idx, g_idx = per[r]
            logK[j, : vals.size], ii[j, : vals.size], gg[j, : vals.size] = vals, i_idx, g_idx
        pair_keys.append(ii * m + D[rows][:, None])
        buckets.append(_Bucket(rows=rows, logK=logK, i=ii, g=gg, D=D[rows], pair_index=None))
    uniq, inv = np.unique(np.concatenate([k.ravel() for k in pair_keys]) if pair_keys else np.zeros(0, np.int64), return_inverse=True)
    pos_keys = [b.g * m + (b.D[:, None] - b.i) for b in buckets]
    pos_uniq, pos_inv = np.unique(np.concatenate([k.ravel() for k in pos_keys]) if pos_keys else np.zeros(0, np.int64), return_inverse=True)
    start = 0
    for b in buckets:
        b.pair_index = inv[start : start + b.logK.size].reshape(b.logK.shape)
        b.pos_index = pos_inv[start : start + b.logK.size].reshape(b.logK.shape)
        start += b.logK.size
    return {
        "buckets": buckets, "pair_i": (uniq // m).astype(float), "pair_D": (uniq % m).astype(float),
        "pos_g": (pos_uniq // m).astype(float), "pos_m": (pos_uniq % m).astype(float),
    }


# --------------------------------------------------------------------------- the factored sum

#: The kernel scales runs of entries whose values lie within this many nats of each other by
#: the run's largest (see :func:`_lse_kernel`): a product of three scaled factors is then at
#: least exp(-3 _SPAN) = 1e-261, far above the smallest double, so nothing underflows.
_SPAN = 200.0


def _scale_runs(u, start, n, bounds, scales):
    """Split ``u[start:start + n]`` into runs whose finite values lie within ``_SPAN``
    nats; run r is ``[bounds[r], bounds[r + 1])``, ``scales[r]`` its largest value (-inf
    when it holds none). Returns the number of runs, or -1 when a value is NaN or +inf."""
    runs = 0
    bounds[0] = 0
    lo, hi = np.inf, -np.inf
    for i in range(n):
        x = u[start + i]
        if x != x or x == np.inf:
            return -1
        if x == -np.inf:
            continue
        nlo, nhi = min(lo, x), max(hi, x)
        if nhi - nlo > _SPAN:
            scales[runs] = hi
            runs += 1
            bounds[runs] = i
            nlo = nhi = x
        lo, hi = nlo, nhi
    scales[runs] = hi
    runs += 1
    bounds[runs] = n
    return runs


def _factored_lse_loops(uf, us, um, off_f, off_s, off_m, weights):
    """Per pattern ``log sum_{g, s} exp(uf[g] + us[s] + um[g + s])`` and, with ``weights``,
    each term's share (its softmax weight) summed over s (``wf``), over g (``ws``) and over
    the antidiagonals g + s = m (``wm``): the gradient with respect to the three inputs.

    Each of ``uf``, ``us``, ``um`` is cut into runs of values within ``_SPAN`` nats and
    every entry scaled by its run's largest value (one exponential per entry, none per
    term). For a run A of g, a run B of s and a run C of m, the terms are summed in linear
    space as sum_m conv_AB[m] em[m] over m in C, with conv_AB the convolution of the
    scaled runs (a vectorised multiply-add per term); every scaled factor lies in
    [exp(-_SPAN), 1], so no product underflows and each part's logarithm plus its three
    scales is exact to rounding. The parts (a few per pattern) are then combined by a
    log-sum-exp. The gradient pass reuses the scaled entries: a term's weight is
    ef[g] es[s] em[m] times its part's weight over the part's scaled sum."""
    P = off_f.shape[0] - 1
    out = np.empty(P)
    wf = np.zeros(uf.shape[0] if weights else 0)
    ws = np.zeros(us.shape[0] if weights else 0)
    wm = np.zeros(um.shape[0] if weights else 0)
    nmax_f, nmax_s, nmax_m = 1, 1, 1
    for p in range(P):
        nmax_f = max(nmax_f, off_f[p + 1] - off_f[p])
        nmax_s = max(nmax_s, off_s[p + 1] - off_s[p])
        nmax_m = max(nmax_m, off_m[p + 1] - off_m[p])
    ef, es, em = np.empty(nmax_f), np.empty(nmax_s), np.empty(nmax_m)
    bf, bs, bm = np.empty(nmax_f + 1, np.int64), np.empty(nmax_s + 1, np.int64), np.empty(nmax_m + 1, np.int64)
    cf, cs, cm = np.empty(nmax_f), np.empty(nmax_s), np.empty(nmax_m)
    run_m = np.empty(nmax_m, np.int64)  # the run of every m
    conv = np.empty(nmax_m)
    v = np.empty(nmax_m)
    part_r = np.empty(nmax_m)
    part_l = np.empty(64)  # every part's log value, (A, B, C) in order
    part_s = np.empty(64)  # and its scaled sum
    for p in range(P):
        f0, nf = off_f[p], off_f[p + 1] - off_f[p]
        s0, ns = off_s[p], off_s[p + 1] - off_s[p]
        m0, nm = off_m[p], off_m[p + 1] - off_m[p]
        nF = _SCALE_RUNS(uf, f0, nf, bf, cf)
        nS = _SCALE_RUNS(us, s0, ns, bs, cs)
        nM = _SCALE_RUNS(um, m0, nm, bm, cm)
        if nF < 0 or nS < 0 or nM < 0:
            out[p] = np.nan
            continue
        for A in range(nF):
            for j in range(bf[A], bf[A + 1]):
                ef[j] = np.exp(uf[f0 + j] - cf[A]) if cf[A] > -np.inf else 0.0
        for B in range(nS):
            for k in range(bs[B], bs[B + 1]):
                es[k] = np.exp(us[s0 + k] - cs[B]) if cs[B] > -np.inf else 0.0
        for C in range(nM):
            for q in range(bm[C], bm[C + 1]):
                em[q] = np.exp(um[m0 + q] - cm[C]) if cm[C] > -np.inf else 0.0
                run_m[q] = C
        if nF * nS * nM > part_l.shape[0]:
            part_l, part_s = np.empty(2 * nF * nS * nM), np.empty(2 * nF * nS * nM)
        best = -np.inf
        t = 0
        for A in range(nF):
            a0, a1 = bf[A], bf[A + 1]
            for B in range(nS):
                b0, b1 = bs[B], bs[B + 1]
                lo, hi = a0 + b0, a1 + b1 - 1  # the m of the runs' terms
                for q in range(lo, hi):
                    conv[q] = 0.0
                ee, nb = es[b0:b1], b1 - b0
                for j in range(a0, a1):
                    x = ef[j]
                    if x == 0.0:
                        continue
                    cv = conv[j + b0 : j + b1]  # views: the loop vectorises
                    for i in range(nb):
                        cv[i] += x * ee[i]
                for C in range(nM):
                    S = 0.0
                    for q in range(max(lo, bm[C]), min(hi, bm[C + 1])):
                        S += conv[q] * em[q]
                    part_s[t] = S
                    val = np.log(S) + cf[A] + cs[B] + cm[C] if S > 0.0 else -np.inf
                    part_l[t] = val
                    if val > best:
                        best = val
                    t += 1
        if best == -np.inf:
            out[p] = -np.inf
            continue
        acc = 0.0
        for i in range(t):
            acc += np.exp(part_l[i] - best)
        L = best + np.log(acc)
        out[p] = L
        if not weights:
            continue
        t = 0
        for A in range(nF):
            a0, a1 = bf[A], bf[A + 1]
            for B in range(nS):
                b0, b1 = bs[B], bs[B + 1]
                lo, hi = a0 + b0, a1 + b1 - 1
                some = False
                for C in range(nM):
                    w = np.exp(part_l[t + C] - L)
                    part_r[C] = w / part_s[t + C] if w > 0.0 else 0.0
                    some |= w > 0.0
                t += nM
                if not some:
                    continue
                for q in range(lo, hi):
                    v[q] = em[q] * part_r[run_m[q]]
                    conv[q] = 0.0
                ee, nb = es[b0:b1], b1 - b0
                ww = ws[s0 + b0 : s0 + b1]
                for j in range(a0, a1):
                    x = ef[j]
                    if x == 0.0:
                        continue
                    vv, cv = v[j + b0 : j + b1], conv[j + b0 : j + b1]
                    r0 = r1 = r2 = r3 = 0.0  # four partial sums: no chain of dependent additions
                    i = 0
                    while i + 4 <= nb:
                        r0 += ee[i] * vv[i]
                        r1 += ee[i + 1] * vv[i + 1]
                        r2 += ee[i + 2] * vv[i + 2]
                        r3 += ee[i + 3] * vv[i + 3]
                        i += 4
                    while i < nb:
                        r0 += ee[i] * vv[i]
                        i += 1
                    for i in range(nb):
                        ww[i] += x * ee[i] * vv[i]
                        cv[i] += x * ee[i]
                    wf[f0 + j] += x * ((r0 + r1) + (r2 + r3))
                for q in range(lo, hi):
                    wm[m0 + q] += conv[q] * v[q]
    return out, wf, ws, wm


#: The compiled :func:`_scale_runs`, set by :func:`_lse_kernel` (a module global, so that the
#: compiled kernel calling it can be cached on disk: numba does not cache closures over
#: compiled functions).
_SCALE_RUNS = None


@lru_cache(maxsize=1)
def _lse_kernel():
    """The compiled sum over a pattern's (g, s) terms, :func:`_factored_lse_loops` (numba is
    imported and the functions compiled on first use; the compiled code is cached on disk, so
    later processes load it)."""
    import numba

    global _SCALE_RUNS
    _SCALE_RUNS = numba.njit(cache=True, nogil=True)(_scale_runs)
    return numba.njit(cache=True, nogil=True)(_factored_lse_loops)


def _kernel_version() -> int:
    """Changes with the kernel's source (PyTensor's on-disk cache of compiled graphs keys on it)."""
    import inspect
    import zlib

    return zlib.crc32(f"{inspect.getsource(_scale_runs)} {inspect.getsource(_factored_lse_loops)} {_SPAN!r}".encode())


@lru_cache(maxsize=1)
def _lse_op_class():
    """The PyTensor Op of :func:`_lse_kernel` (defined on first use: PyTensor is imported only
    when a PyMC model is built), with its numba implementation registered, so the default
    (numba) backend runs the compiled kernel and no Python."""
    import pytensor.tensor as pt
    from pytensor.gradient import DisconnectedType, disconnected_type
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class FactoredLogSumExp(Op):
        """``log sum_{g, s} exp(uf[g] + us[s] + um[g + s])`` per pattern (inputs: ``uf``,
        ``us``, ``um``, their offsets per pattern and the pattern of every entry); outputs the
        sums and the softmax weights, which give the gradient."""

        __props__ = ()

        def make_node(self, uf, us, um, off_f, off_s, off_m, pat_f, pat_s, pat_m):
            floats = [pt.as_tensor_variable(x).astype("float64") for x in (uf, us, um)]
            ints = [pt.as_tensor_variable(np.asarray(x, dtype=np.int64)) for x in (off_f, off_s, off_m, pat_f, pat_s, pat_m)]
            outs = [pt.dvector() for _ in range(4)]
            return Apply(self, floats + ints, outs)

        def perform(self, node, inputs, output_storage):
            res = _lse_kernel()(*inputs[:6], True)
            for store, value in zip(output_storage, res):
                store[0] = value

        def infer_shape(self, *args):  # (node, shapes), or (fgraph, node, shapes) before PyTensor dropped fgraph
            node, shapes = args[-2:]
            return [(node.inputs[3].shape[0] - 1,), shapes[0], shapes[1], shapes[2]]

        def pullback(self, inputs, outputs, cotangents):
            # d L_p / d u = the softmax weight of u's terms (entries of other patterns: 0)
            if any(not isinstance(g.type, DisconnectedType) for g in cotangents[1:]):
                raise NotImplementedError("the weights of FactoredLogSumExp have no gradient (no second derivatives)")
            g_out = cotangents[0]
            grads = [g_out[pat] * w for pat, w in zip(inputs[6:], outputs[1:])]
            return grads + [disconnected_type() for _ in range(6)]

        def connection_pattern(self, node):
            return [[True] * 4] * 3 + [[False] * 4] * 6

    if "pullback" not in vars(Op):  # PyTensor before the pullback API
        FactoredLogSumExp.L_op = FactoredLogSumExp.pullback
    FactoredLogSumExp.__module__ = __name__
    FactoredLogSumExp.__qualname__ = FactoredLogSumExp.__name__ = "FactoredLogSumExp"

    try:
        from pytensor.link.numba.dispatch import basic as numba_basic
        from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
    except ImportError:  # no numba backend: the C and Python backends call perform
        return FactoredLogSumExp

    @register_funcify_default_op_cache_key(FactoredLogSumExp)
    def _numba_factored_lse(op, node, **kwargs):
        kernel = _lse_kernel()

        @numba_basic.numba_njit
        def factored_lse(uf, us, um, off_f, off_s, off_m, pat_f, pat_s, pat_m):
            return kernel(uf, us, um, off_f, off_s, off_m, True)

        return factored_lse, _kernel_version()

    return FactoredLogSumExp


def __getattr__(name):
    # the Op class by name, for pickles of compiled models (PyMC's chain processes)
    if name == "FactoredLogSumExp":
        return _lse_op_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _log_rising(x, n: int, ops):
    """``log (x)_k = log x (x + 1) ... (x + k - 1)`` for k = 0 .. n (the rising factorial, so
    ``log B(x + k, y + l) - log B(x, y) = log (x)_k + log (y)_l - log (x + y)_(k + l)``):
    n + 1 logarithms, where ``betaln`` would take three log-gamma functions per term."""
    k = np.arange(n, dtype=float)
    if ops is NUMPY_OPS:
        return np.concatenate([[0.0], np.cumsum(np.log(x + k))])
    import pytensor.tensor as pt

    return pt.concatenate([pt.zeros(1, dtype="float64"), pt.cumsum(ops.log(x + k))])


def factored_inputs(terms: ContinuousTerms, params: dict, ops=NUMPY_OPS):
    """The kernel's inputs ``(uf, us, um)``: every term is ``uf[g] + us[s] + um[g + s]`` with
    the parameter-free ``log f[g]`` and ``log h[s]``, the careless position part
    (``"beta"``: ``log (a)_g + log (b)_s - log (a + b)_m``, the per-user rate integrated out;
    ``"shared"``: ``g log rho + s log(1 - rho)``; ``"random"``: ``-m log 2``) and the
    quality part ``log B(c + i, d + m) - log B(c, d) = log (c)_i + log (d)_m - log (c +
    d)_D`` with ``i = D - m``."""
    c, d = params["quality"]
    n = terms.d_max
    Lc, Ld, Lcd = _log_rising(c, n, ops), _log_rising(d, n, ops), _log_rising(c + d, n, ops)
    D_m, m_m = terms.D_m, terms.m_m
    um = Lc[D_m - m_m] + Ld[m_m] - Lcd[D_m]
    uf, us = terms.logf, terms.logs
    if terms.careless == "beta":
        a, b = params["careless_first"]
        uf = uf + _log_rising(a, int(terms.n_first.max(initial=0)), ops)[terms.g_f]
        us = us + _log_rising(b, int(terms.n_second.max(initial=0)), ops)[terms.s_s]
        um = um - _log_rising(a + b, n, ops)[m_m]
    elif terms.careless == "shared":
        rho = params["careless_first"]
        uf = uf + terms.g_f * ops.log(rho)
        us = us + terms.s_s * ops.log1p(-rho)
    else:
        um = um - m_m * np.log(2.0)
    return uf, us, um


def factored_lse(terms: ContinuousTerms, uf, us, um, weights: bool = False):
    """Per pattern ``log sum_{g, s} exp(uf[g] + us[s] + um[g + s])`` (NumPy arrays), and with
    ``weights`` the softmax weights summed per entry of ``uf``, ``us`` and ``um``."""
    out = _lse_kernel()(
        np.ascontiguousarray(uf, dtype=float), np.ascontiguousarray(us, dtype=float), np.ascontiguousarray(um, dtype=float),
        terms.off_f, terms.off_s, terms.off_m, weights,
    )
    return out if weights else out[0]


def _position_term(terms: ContinuousTerms, params: dict, ops=NUMPY_OPS):
    """Log-probability of ``g`` first-position picks among ``m`` careless votes, on the distinct
    (g, m) pairs: the user's own rate ~ Beta(a, b) integrated out (``"beta"``), one shared
    rate, or 1/2."""
    g, m = terms.pos_g, terms.pos_m
    if terms.careless == "beta":
        a, b = params["careless_first"]
        return ops.betaln(a + g, b + m - g) - ops.betaln(a, b)
    if terms.careless == "shared":
        rho = params["careless_first"]
        return g * ops.log(rho) + (m - g) * ops.log1p(-rho)
    return ops.asarray(-m * np.log(2.0))


def term_parts(terms: ContinuousTerms, params: dict, ops=NUMPY_OPS):
    """The parameter-dependent parts of the terms of the bucket layout, on their distinct pairs."""
    return _beta_term(terms, params, ops), _position_term(terms, params, ops)


def term_values(b: _Bucket, parts):
    beta_term, pos_term = parts
    return b.logK + pos_term[b.pos_index] + beta_term[b.pair_index]


def _beta_term(terms: ContinuousTerms, params: dict, ops=NUMPY_OPS):
    """log B(c + i, d + D - i) - log B(c, d) on the distinct (i, D) pairs."""
    c, d = params["quality"]
    return ops.betaln(c + terms.pair_i, d + terms.pair_D - terms.pair_i) - ops.betaln(c, d)


#: How :func:`continuous_loglik` sums the terms: the factored kernel, or the bucket layout
#: (term by term, the previous formulation, kept as the tests' and benchmarks' reference).
CONTINUOUS_METHODS = ("factored", "buckets")


def continuous_loglik(vt: VoteTypes, terms: ContinuousTerms, params: dict, ops=NUMPY_OPS, tie: bool = True, method: str = "factored"):
    """Per-pattern log-likelihood of the continuous-quality model (``theta_u`` integrated
    out exactly); ``params``: ``quality`` ``(c, d)``, ``careless_first`` (``(a, b)`` for
    ``"beta"``, the rate for ``"shared"``), ``tie`` ``(a, b)``. ``method="buckets"`` sums the
    bucket layout term by term (the previous formulation; same value to rounding)."""
    if method not in CONTINUOUS_METHODS:
        raise ConfigError(f"method must be one of {CONTINUOUS_METHODS}, got {method!r}")
    if method == "factored":
        uf, us, um = factored_inputs(terms, params, ops)
        if ops is NUMPY_OPS:
            dec = factored_lse(terms, uf, us, um)
        else:
            op = _lse_op_class()()
            dec = op(uf, us, um, terms.off_f, terms.off_s, terms.off_m, terms.pat_f, terms.pat_s, terms.pat_m)[0]
    else:
        parts = term_parts(terms, params, ops)
        if ops is NUMPY_OPS:
            dec = np.empty(terms.n_patterns)
            for b in terms.buckets:
                dec[b.rows] = logsumexp(term_values(b, parts), axis=-1)
        else:
            import pytensor.tensor as pt

            dec = pt.zeros(terms.n_patterns)
            for b in terms.buckets:
                dec = pt.set_subtensor(dec[b.rows], pt.logsumexp(term_values(b, parts), axis=-1))
    if tie:
        dec = dec + log_betabinom_seq(vt.t, vt.n, *params["tie"], ops)
    return dec


def careless_weights(terms: ContinuousTerms, params: dict) -> np.ndarray:
    """Each pattern's posterior probabilities of m careless votes (flat, as ``terms.m_m``, the
    pattern ``terms.pat_m``)."""
    return factored_lse(terms, *factored_inputs(terms, params), weights=True)[3]


def continuous_quality_mean(terms: ContinuousTerms, params: dict, weights: np.ndarray | None = None) -> np.ndarray:
    """E[theta_u | the user's votes, params] per pattern: the user's own attentive share. Given
    m careless votes theta_u is Beta(c + D - m, d + m). ``weights``: the posterior
    probabilities of m (:func:`careless_weights`) when already computed."""
    c, d = params["quality"]
    w = careless_weights(terms, params) if weights is None else weights
    mean = (c + terms.D_m - terms.m_m) / (c + d + terms.D_m)
    return np.bincount(terms.pat_m, weights=w * mean, minlength=terms.n_patterns)


def continuous_prob_attentive(terms: ContinuousTerms, params: dict, level: float = 0.5, weights: np.ndarray | None = None) -> np.ndarray:
    """P(theta_u >= level | the user's votes, params) per pattern: the probability that the user
    casts at least that share of votes attentively ("attentive" on the continuum). Given
    m careless votes theta_u is Beta(c + D - m, d + m), so this is a mixture of Beta tails.
    ``weights`` as for :func:`continuous_quality_mean`."""
    c, d = params["quality"]
    w = careless_weights(terms, params) if weights is None else weights
    tail = betainc(d + terms.m_m, c + terms.D_m - terms.m_m, 1.0 - level)  # P(theta >= level), by symmetry
    return np.bincount(terms.pat_m, weights=w * tail, minlength=terms.n_patterns)


def alternative_parameter_names(kind: str, careless: str, ties: str) -> list[str]:
    """Free parameters of the alternative models, in a fixed order."""
    names = ["theta"] if kind == "homogeneous" else ["quality_mean", "quality_kappa"]
    if careless == "beta":
        names += ["careless_first_mean", "careless_first_kappa"]
    elif careless == "shared":
        names.append("careless_first")
    if ties == "model":
        names += ["tie_mean", "tie_kappa"]
    return names


def build_alternative_pymc_model(
    vt: VoteTypes, *, kind: str, careless: str, ties: str, priors: dict, terms: ContinuousTerms | None = None, method: str = "factored"
):
    """PyMC model of the homogeneous or continuous-quality model on vote-type patterns, from
    the same likelihood functions as the NumPy code (evaluated with PyTensor). ``method``: how
    the continuous model's terms are summed (:data:`CONTINUOUS_METHODS`; ``"buckets"`` is the
    previous, slower graph, kept as a reference)."""
    import pymc as pm
    import pytensor.tensor as pt

    ops = tensor_ops()
    tie = ties == "model"
    with pm.Model(coords={"pattern": np.arange(vt.size)}) as model:
        w = pm.Data("n_users", vt.weight.astype(float), dims="pattern")
        params = {}
        if kind == "homogeneous":
            params["theta"] = prior_variable(pm, "theta", priors["theta"])
        else:
            m = prior_variable(pm, "quality_mean", priors["quality_mean"])
            kappa = prior_variable(pm, "quality_kappa", priors["quality_kappa"])
            params["quality"] = beta_from_mean_kappa(m, kappa)
        if careless == "beta":
            m = prior_variable(pm, "careless_first_mean", priors["careless_first_mean"])
            kappa = prior_variable(pm, "careless_first_kappa", priors["careless_first_kappa"])
            params["careless_first"] = beta_from_mean_kappa(m, kappa)
        elif careless == "shared":
            params["careless_first"] = prior_variable(pm, "careless_first", priors["careless_first"])
        if tie:
            m = prior_variable(pm, "tie_mean", priors["tie_mean"])
            kappa = prior_variable(pm, "tie_kappa", priors["tie_kappa"])
            params["tie"] = beta_from_mean_kappa(m, kappa)
        if kind == "homogeneous":
            ll = homogeneous_loglik(vt, params, careless, ops, tie=tie)
        else:
            ll = continuous_loglik(vt, terms, params, ops, tie=tie, method=method)
        pm.Potential("loglik", pt.sum(w * ll))
    return model


def alternative_params(kind: str, careless: str, ties: str, values: dict) -> dict:
    """Likelihood parameters (as :func:`homogeneous_loglik` / :func:`continuous_loglik` take
    them) from named parameter values (scalars or arrays of draws)."""
    params = {}
    if kind == "homogeneous":
        params["theta"] = values["theta"]
    else:
        m, kappa = values["quality_mean"], values["quality_kappa"]
        params["quality"] = (m * kappa, (1 - m) * kappa)
    if careless == "beta":
        m, kappa = values["careless_first_mean"], values["careless_first_kappa"]
        params["careless_first"] = (m * kappa, (1 - m) * kappa)
    elif careless == "shared":
        params["careless_first"] = values["careless_first"]
    if ties == "model":
        m, kappa = values["tie_mean"], values["tie_kappa"]
        params["tie"] = (m * kappa, (1 - m) * kappa)
    return params
