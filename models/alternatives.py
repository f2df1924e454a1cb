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
attentive probabilities) does not depend on the parameters and is computed once per user by
dynamic programming. With ``careless="random"`` the ``g`` dimension collapses.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """The parameter-free part of the continuous model's exact likelihood: patterns in
    buckets of similar size (so a few heavy users do not pad everybody's terms), and the
    distinct ``(i, D)`` pairs the Beta term depends on (``pair_i``, ``pair_D``), and the
    distinct ``(g, m)`` pairs (careless first-position picks of ``m = D - i`` careless votes)
    the position term depends on (``pos_g``, ``pos_m``): the special functions run on the
    pairs, not on every term."""

    n_patterns: int
    buckets: list
    pair_i: np.ndarray
    pair_D: np.ndarray
    careless: str
    pos_g: np.ndarray | None = None
    pos_m: np.ndarray | None = None

    @property
    def n_terms(self) -> int:
        return int(sum(b.logK.size for b in self.buckets))


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


def _scalar_terms(counts: np.ndarray, A: np.ndarray, first: np.ndarray, with_g: bool):
    """``log K[i, g]`` of one pattern of two-model votes in closed form (no per-vote dynamic
    programming): the votes of each of the four types are interchangeable, so choosing ``x`` of
    a type's ``n`` votes as attentive weighs ``C(n, x) A^x``; the careless first-position picks
    ``g`` are the first-position picks not cast attentively, ``g = n_first - x_first``, so
    ``K[x_first + x_second, n_first - x_first] = F[x_first] S[x_second]`` with ``F`` (``S``)
    the convolution of the first-pick (second-pick) types' blocks. ``with_g=False`` sums over
    ``g`` (random clickers)."""
    blocks = {True: np.zeros(1), False: np.zeros(1)}
    for j in np.flatnonzero(counts):
        blocks[bool(first[j])] = _log_convolve(blocks[bool(first[j])], _log_binomial_block(int(counts[j]), float(A[j])))
    F, S = blocks[True], blocks[False]
    n_first = F.size - 1
    xf, xs = np.meshgrid(np.arange(F.size), np.arange(S.size), indexing="ij")
    i_idx, g_idx = (xf + xs).ravel(), (n_first - xf).ravel()
    vals = (F[:, None] + S[None, :]).ravel()
    if with_g:
        return vals, i_idx, g_idx
    out = np.full(F.size + S.size - 1, -np.inf)
    np.logaddexp.at(out, i_idx, vals)
    return out, np.arange(out.size), np.zeros(out.size, dtype=np.int64)


def _width(d: int, shared: bool) -> int:
    return (d + 1) * (d + 2) // 2 if shared else d + 1


def continuous_terms(vt: VoteTypes, careless: str) -> ContinuousTerms:
    """Precompute the continuous model's terms for every pattern (see the module docstring)."""
    if careless not in CONTINUOUS_CARELESS_MODES:
        raise ConfigError(f"careless must be one of {CONTINUOUS_CARELESS_MODES} for the continuous model, got {careless!r}")
    with_g = careless != "random"  # the careless first-position picks matter unless they are coin flips
    D = vt.d.astype(np.int64)
    csr = vt.counts
    if vt.scalar and with_g:  # first-pick types times second-pick types, at most ((D + 2) / 2)^2
        dense = csr.toarray()
        nf = dense[:, vt.first].sum(axis=1).astype(np.int64)
        sizes = (nf + 1) * (D - nf + 1)
    else:
        sizes = np.array([_width(int(x), with_g) for x in D], dtype=np.int64)
    total = int(sizes.sum())
    if total > MAX_CONTINUOUS_TERMS:
        raise ConfigError(
            f"the continuous model's exact likelihood needs {total:,} terms for {vt.size:,} patterns (largest user: "
            f"{int(D.max())} decisive votes), more than {MAX_CONTINUOUS_TERMS:,}; use careless='random' (terms grow "
            "linearly, not quadratically, with a user's votes) or leave out the users with the most votes"
        )
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
    m = int(D.max(initial=0)) + 1
    # buckets: decisive-vote counts in [2^j - 1, 2^(j+1) - 1)
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
    return ContinuousTerms(
        n_patterns=vt.size, buckets=buckets, pair_i=(uniq // m).astype(float), pair_D=(uniq % m).astype(float), careless=careless,
        pos_g=(pos_uniq // m).astype(float), pos_m=(pos_uniq % m).astype(float),
    )


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
    """The parameter-dependent parts of the terms, on their distinct pairs."""
    return _beta_term(terms, params, ops), _position_term(terms, params, ops)


def term_values(b: _Bucket, parts):
    beta_term, pos_term = parts
    return b.logK + pos_term[b.pos_index] + beta_term[b.pair_index]


def _beta_term(terms: ContinuousTerms, params: dict, ops=NUMPY_OPS):
    """log B(c + i, d + D - i) - log B(c, d) on the distinct (i, D) pairs."""
    c, d = params["quality"]
    return ops.betaln(c + terms.pair_i, d + terms.pair_D - terms.pair_i) - ops.betaln(c, d)


def continuous_loglik(vt: VoteTypes, terms: ContinuousTerms, params: dict, ops=NUMPY_OPS, tie: bool = True):
    """Per-pattern log-likelihood of the continuous-quality model (``theta_u`` integrated
    out exactly); ``params``: ``quality`` ``(c, d)``, ``careless_first`` (``"shared"``),
    ``tie`` ``(a, b)``."""
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


def continuous_quality_mean(terms: ContinuousTerms, params: dict) -> np.ndarray:
    """E[theta_u | the user's votes, params] per pattern: the user's own attentive share."""
    c, d = params["quality"]
    parts = term_parts(terms, params)
    out = np.empty(terms.n_patterns)
    for b in terms.buckets:
        vals = term_values(b, parts)
        w = np.exp(vals - logsumexp(vals, axis=-1, keepdims=True))
        out[b.rows] = np.sum(w * (c + b.i) / (c + d + b.D[:, None]), axis=-1)
    return out


def continuous_prob_attentive(terms: ContinuousTerms, params: dict, level: float = 0.5) -> np.ndarray:
    """P(theta_u >= level | the user's votes, params) per pattern: the probability that the user
    casts at least that share of votes attentively ("attentive" on the continuum). Given the
    (i, g) term, theta_u is Beta(c + i, d + D - i), so this is a mixture of Beta tails."""
    c, d = params["quality"]
    parts = term_parts(terms, params)
    tail = 1.0 - betainc(c + terms.pair_i, d + terms.pair_D - terms.pair_i, level)  # on the (i, D) pairs
    out = np.empty(terms.n_patterns)
    for b in terms.buckets:
        vals = term_values(b, parts)
        w = np.exp(vals - logsumexp(vals, axis=-1, keepdims=True))
        out[b.rows] = np.sum(w * tail[b.pair_index], axis=-1)
    return out


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


def build_alternative_pymc_model(vt: VoteTypes, *, kind: str, careless: str, ties: str, priors: dict, terms: ContinuousTerms | None = None):
    """PyMC model of the homogeneous or continuous-quality model on vote-type patterns, from
    the same likelihood functions as the NumPy code (evaluated with PyTensor)."""
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
            ll = continuous_loglik(vt, terms, params, ops, tie=tie)
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
