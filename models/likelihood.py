"""Likelihood pieces of the two-type user model (docs/design.md sections 3 and 4).

One source of truth for the log-likelihood of a user's votes under each type; the EM and
(later) the PyMC model both build on these functions.

Notation, per user (or per compressed pattern of users with equal counts):

- ``n``: votes, ``t``: ties among them, ``d = n - t``: decisive votes,
- ``f``: decisive votes for the answer shown first,
- ``s``: the attentive log-likelihood of the decisive votes, sum over votes of
  ``log mu_t`` (picked model_a) or ``log(1 - mu_t)`` (picked model_b).

Every probability here is the probability of the observed *sequence* of votes (no binomial
coefficients), so log-likelihoods of different models of the same votes are comparable.

A user of type k has tie propensity ``tau ~ Beta(a_k, b_k)`` (summed out: the tie count
is Beta-Binomial). An attentive user's decisive vote picks model_a with probability mu_t. A
careless user's decisive vote ignores content and picks the first answer with probability
rho, which is

- ``"beta"``: per user, ``rho ~ Beta(a, b)``, summed out (Beta-Binomial in ``f``);
- ``"shared"``: one rate shared by all careless users;
- ``"random"``: 1/2 for every careless user (the paper's random clicker).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from scipy.special import betaln, expit, gammaln

CARELESS_MODES = ("beta", "shared", "random")
TIE_MODES = ("model", "drop")
#: Tie settings of the joint (many-model) model: also ``"davidson"``, where an attentive
#: user's ties follow Davidson's (1970) tie model of the pair instead of a per-user habit.
JOINT_TIE_MODES = ("model", "drop", "davidson")

__all__ = [
    "CARELESS_MODES",
    "TIE_MODES",
    "JOINT_TIE_MODES",
    "davidson_logp",
    "NUMPY_OPS",
    "tensor_ops",
    "log_betabinom_seq",
    "log_betabinom_pmf",
    "attentive_decisive_loglik",
    "careless_position_loglik",
    "type_logliks",
    "mixture_loglik",
    "posterior_attentive",
    "observed_loglik",
    "betabinom_objective",
    "BetaBinomialData",
]

#: The math the likelihood functions use, on NumPy arrays (EM, post-processing).
NUMPY_OPS = SimpleNamespace(
    name="numpy",
    betaln=betaln,
    log=np.log,
    log1p=np.log1p,
    logaddexp=np.logaddexp,
    asarray=lambda x: np.asarray(x, dtype=float),
)


def tensor_ops() -> SimpleNamespace:
    """The same math on PyTensor variables (the PyMC model), so both fitters share one
    likelihood."""
    import pytensor.tensor as pt

    def f64(x):
        # PyTensor turns Python floats that float32 holds exactly into float32 constants
        return pt.cast(pt.as_tensor_variable(x), "float64")

    def betaln(a, b):
        a, b = f64(a), f64(b)
        return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)

    return SimpleNamespace(
        name="pytensor",
        betaln=betaln,
        log=lambda x: pt.log(f64(x)),
        log1p=lambda x: pt.log1p(f64(x)),
        logaddexp=pt.logaddexp,
        asarray=f64,
    )


def log_betabinom_seq(k, n, a, b, ops=NUMPY_OPS):
    """Log-probability of one sequence with ``k`` successes in ``n`` Beta-Binomial trials.

    ``log B(k + a, n - k + b) - log B(a, b)``; the count's pmf adds ``log C(n, k)``.
    """
    k = ops.asarray(k)
    n = ops.asarray(n)
    return ops.betaln(k + a, n - k + b) - ops.betaln(a, b)


def log_betabinom_pmf(k, n, a, b):
    """Log pmf of the count ``k`` (used by tests against ``scipy.stats.betabinom``)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    log_choose = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return log_choose + log_betabinom_seq(k, n, a, b)


def attentive_decisive_loglik(k_stronger, d, mu, ops=NUMPY_OPS):
    """Attentive log-likelihood of ``d`` decisive two-model votes, ``k_stronger`` of them for
    the model that wins with probability ``mu`` (the scalar-mu case)."""
    k = ops.asarray(k_stronger)
    d = ops.asarray(d)
    return k * ops.log(mu) + (d - k) * ops.log1p(-mu)


def careless_position_loglik(f, d, careless, first=None, ops=NUMPY_OPS):
    """Careless log-likelihood of ``f`` first-position picks among ``d`` decisive votes.

    ``first`` is ``(a, b)`` for ``careless="beta"``, the shared rate for ``"shared"`` and
    ignored for ``"random"``.
    """
    f = ops.asarray(f)
    d = ops.asarray(d)
    if careless == "beta":
        a, b = first
        return log_betabinom_seq(f, d, a, b, ops)
    if careless == "shared":
        return f * ops.log(first) + (d - f) * ops.log1p(-first)
    if careless == "random":
        return -d * np.log(2.0)
    raise ValueError(f"unknown careless mode {careless!r}")


def davidson_logp(d, log_nu, is_a, is_b, is_tie, ops=NUMPY_OPS):
    """Log-probability of one vote under Davidson's tie model (an attentive vote with
    ``ties="davidson"``).

    With strengths difference ``d = beta_a - beta_b`` and tie parameter ``nu``,
    ``P(a) : P(b) : P(tie) = e^{d/2} : e^{-d/2} : nu``, so the decisive votes alone follow
    Bradley-Terry (``P(a | decisive) = sigmoid(d)``) and ties are likeliest between equal
    models. ``is_a``, ``is_b``, ``is_tie`` are 0/1 indicators of the outcome.
    """
    half = 0.5 * d
    lse = ops.logaddexp(ops.logaddexp(half, -half), log_nu)
    return is_a * half - is_b * half + is_tie * log_nu - lse


def type_logliks(n, t, f, s, params, careless, ties, ops=NUMPY_OPS):
    """Per-user log-likelihoods ``(l1, l0)`` of the votes if attentive / careless.

    ``params`` is a mapping with keys ``careless_first`` (see
    :func:`careless_position_loglik`), ``tie_attentive`` and ``tie_careless`` (each
    ``(a, b)``; ignored when ``ties="drop"``). With ``ties="drop"`` the caller passes
    ``t = 0`` and ``n`` equal to the decisive votes. With ``ties="davidson"`` (joint model)
    ``s`` already holds the attentive log-likelihood of every vote, ties included
    (:func:`davidson_logp`), and only the careless tie propensity enters here.
    ``ops`` selects NumPy or PyTensor.
    """
    n = ops.asarray(n)
    t = ops.asarray(t)
    d = n - t
    l1 = ops.asarray(s)
    l0 = careless_position_loglik(f, d, careless, params.get("careless_first"), ops)
    if ties == "model":
        l1 = l1 + log_betabinom_seq(t, n, *params["tie_attentive"], ops)
    if ties in ("model", "davidson"):
        l0 = l0 + log_betabinom_seq(t, n, *params["tie_careless"], ops)
    return l1, l0


def mixture_loglik(l1, l0, pi, ops=NUMPY_OPS):
    """Per-user log-likelihood with the type summed out: log(pi e^l1 + (1 - pi) e^l0)."""
    return ops.logaddexp(ops.log(pi) + l1, ops.log1p(-pi) + l0)


def posterior_attentive(l1, l0, pi):
    """P(attentive | votes) = sigmoid(logit pi + l1 - l0), computed in log space."""
    return expit(np.log(pi) - np.log1p(-pi) + np.asarray(l1) - np.asarray(l0))


def observed_loglik(l1, l0, pi, weight=None):
    """Observed (marginal) log-likelihood, types summed out, optionally weighted per pattern."""
    per = mixture_loglik(np.asarray(l1), np.asarray(l0), pi)
    if weight is None:
        return float(per.sum())
    return float(np.dot(weight, per))


class BetaBinomialData:
    """Weighted Beta-Binomial data (``k`` successes in ``n`` trials, weight ``w`` per row),
    prepared once for repeated evaluation of the M-step objective.

    When the largest ``n`` is small next to the number of rows, the rising-factorial form
    ``log B(k+a, n-k+b) - log B(a, b) = sum_{j<k} log(a+j) + sum_{j<n-k} log(b+j)
    - sum_{j<n} log(a+b+j)`` is used: the weights collapse onto ``j`` and no special function
    is needed. Otherwise digamma/trigamma of every row are used. Both give the same numbers.
    """

    def __init__(self, k, n, w):
        self.k = np.asarray(k, dtype=float)
        self.n = np.asarray(n, dtype=float)
        self.w = np.asarray(w, dtype=float)
        self.W = float(self.w.sum())
        n_max = int(self.n.max()) if self.n.size else 0
        self.rising = n_max <= 2 * self.n.size + 64
        if self.rising:
            self.j = np.arange(n_max, dtype=float)
            self.A = self._tail(self.k, n_max)
            self.B = self._tail(self.n - self.k, n_max)
            self.C = self._tail(self.n, n_max)

    def _tail(self, x, length):
        """``T[j] = sum of w over rows with x > j`` for ``j < length``."""
        hist = np.bincount(x.astype(np.int64), weights=self.w, minlength=length + 1)
        return self.W - np.cumsum(hist)[:length]

    def objective(self, log_a, log_b, derivatives=False):
        """``sum w * log_betabinom_seq(k, n, a, b)`` at ``(log a, log b)``, or
        ``(value, gradient, hessian)`` in ``(log a, log b)`` coordinates."""
        a = float(np.exp(log_a))
        b = float(np.exp(log_b))
        if self.rising:
            xa, xb, xab = a + self.j, b + self.j, a + b + self.j
            value = float(self.A @ np.log(xa) + self.B @ np.log(xb) - self.C @ np.log(xab))
            if not derivatives:
                return value
            ia, ib, iab = 1 / xa, 1 / xb, 1 / xab
            ga = float(self.A @ ia - self.C @ iab)
            gb = float(self.B @ ib - self.C @ iab)
            hab = float(self.C @ (iab * iab))
            haa = hab - float(self.A @ (ia * ia))
            hbb = hab - float(self.B @ (ib * ib))
            return (value, *_to_log_coords(a, b, ga, gb, haa, hbb, hab))
        from scipy.special import digamma, zeta

        k, n, w, W = self.k, self.n, self.w, self.W
        value = float(np.dot(w, betaln(k + a, n - k + b))) - W * float(betaln(a, b))
        if not derivatives:
            return value
        size = k.shape[0]
        args = np.concatenate([k + a, n - k + b, n + a + b, [a, b, a + b]])
        dg = digamma(args)
        tg = zeta(2.0, args)  # trigamma
        ka, nkb, nab = slice(0, size), slice(size, 2 * size), slice(2 * size, 3 * size)
        d_a, d_b, d_ab = dg[-3:]
        t_a, t_b, t_ab = tg[-3:]
        ga = float(np.dot(w, dg[ka] - dg[nab])) + W * (d_ab - d_a)
        gb = float(np.dot(w, dg[nkb] - dg[nab])) + W * (d_ab - d_b)
        haa = float(np.dot(w, tg[ka] - tg[nab])) + W * (t_ab - t_a)
        hbb = float(np.dot(w, tg[nkb] - tg[nab])) + W * (t_ab - t_b)
        hab = -float(np.dot(w, tg[nab])) + W * t_ab
        return (value, *_to_log_coords(a, b, ga, gb, haa, hbb, hab))


def betabinom_objective(k, n, w, log_a, log_b, derivatives=False):
    """Weighted Beta-Binomial log-likelihood ``sum w * log_betabinom_seq(k, n, a, b)`` as a
    function of ``(log a, log b)``, with its gradient and Hessian in those coordinates.

    This is the M-step objective for the careless position rates and the tie propensities
    (see :class:`BetaBinomialData`, which this wraps).
    """
    return BetaBinomialData(k, n, w).objective(log_a, log_b, derivatives)


def _to_log_coords(a, b, ga, gb, haa, hbb, hab):
    """Gradient and Hessian in (a, b) -> in (log a, log b)."""
    grad = np.array([a * ga, b * gb])
    hess = np.array([[a * a * haa + a * ga, a * b * hab], [a * b * hab, b * b * hbb + b * gb]])
    return grad, hess
