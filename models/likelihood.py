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

import math
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
    "BetaBinomialLayout",
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


#: Largest indicator matrix (rows x 3 n_max entries) :class:`BetaBinomialLayout` keeps to
#: form the rising-factorial weights by one matrix-vector product; above it a bincount.
_INDICATOR_MAX = 1 << 16


class BetaBinomialLayout:
    """The ``(k, n)`` rows of Beta-Binomial data, prepared once for many weightings (the EM's
    M-steps fit the same count pairs with new weights every iteration): :meth:`data` gives the
    :class:`BetaBinomialData` of one weighting."""

    def __init__(self, k, n):
        self.k = np.asarray(k, dtype=float)
        self.n = np.asarray(n, dtype=float)
        rows = self.n.shape[0]
        n_max = int(self.n.max()) if rows else 0
        self.n_max = n_max
        self.rising = n_max <= 2 * rows + 64
        if not self.rising:
            return
        j = np.arange(n_max, dtype=float)
        self.j3 = np.tile(j, (3, 1))
        # scratch space of the evaluations (BetaBinomialData.terms, .value), filled and read
        # within one call (so a layout serves one thread at a time): a + j, b + j, a + b + j
        # and their logs, inverses and squared inverses
        self._off = np.empty((3, 1))
        self._x = np.empty((3, n_max))
        self._z = np.empty((3, 3, n_max))
        self._z_parts = tuple(self._z)
        counts = np.stack([self.k, self.n - self.k, self.n])  # (3, rows): the three rising products
        if rows * 3 * n_max <= _INDICATOR_MAX:
            # tails[r, j] = sum of w over rows with counts[r] > j, as one product with w
            self._indicator = (counts[:, None, :] > j[None, :, None]).astype(float).reshape(3 * n_max, rows)
        else:
            self._indicator = None
            offsets = (np.arange(3) * (n_max + 1))[:, None]
            self._keys = (counts.astype(np.int64) + offsets).ravel()

    def data(self, w) -> BetaBinomialData:
        """The data with weight ``w`` per row."""
        return BetaBinomialData(self.k, self.n, w, layout=self)

    def tails(self, w):
        """``(3, n_max)``: row ``r``, column ``j`` the sum of ``w`` over the rows whose ``k``
        (``r = 0``), ``n - k`` (1) or ``n`` (2) exceeds ``j``."""
        m = self.n_max
        if self._indicator is not None:
            return (self._indicator @ w).reshape(3, m)
        hist = np.bincount(self._keys, weights=np.tile(w, 3), minlength=3 * (m + 1)).reshape(3, m + 1)
        # sum over x > j from the top down: sums of non-negative weights, no cancellation
        return np.cumsum(hist[:, :0:-1], axis=1)[:, ::-1]


class BetaBinomialData:
    """Weighted Beta-Binomial data (``k`` successes in ``n`` trials, weight ``w`` per row),
    prepared once for repeated evaluation of the M-step objective.

    When the largest ``n`` is small next to the number of rows, the rising-factorial form
    ``log B(k+a, n-k+b) - log B(a, b) = sum_{j<k} log(a+j) + sum_{j<n-k} log(b+j)
    - sum_{j<n} log(a+b+j)`` is used: the weights collapse onto ``j`` and no special function
    is needed. Otherwise digamma/trigamma of every row are used. Both give the same numbers.

    ``layout`` (a :class:`BetaBinomialLayout` of the same ``k``, ``n``) skips the preparation
    that does not depend on the weights.

    :meth:`terms`, :meth:`value` and :meth:`values` are the fast forms the M-steps use (plain
    floats; many points in one call); :meth:`objective` returns the same numbers as arrays.
    """

    def __init__(self, k, n, w, layout: BetaBinomialLayout | None = None):
        if layout is None:
            layout = BetaBinomialLayout(k, n)
        self.layout = layout
        self.k = layout.k
        self.n = layout.n
        self.w = np.asarray(w, dtype=float)
        self.W = float(self.w.sum())
        self.rising = layout.rising
        if self.rising:
            self.j = layout.j3[0]
            # rows A, B, C: the weights of log(a + j), log(b + j) and -log(a + b + j)
            self._P = layout.tails(self.w)

    A = property(lambda self: self._P[0], doc="Rising-factorial form: the weight of ``log(a + j)``.")
    B = property(lambda self: self._P[1], doc="Rising-factorial form: the weight of ``log(b + j)``.")
    C = property(lambda self: self._P[2], doc="Rising-factorial form: the weight of ``-log(a + b + j)``.")

    def _ab_rows(self, a, b):
        """``(3, n_max)``: ``a + j``, ``b + j`` and ``a + b + j`` (in the layout's scratch)."""
        layout = self.layout
        off = layout._off
        off[0, 0] = a
        off[1, 0] = b
        off[2, 0] = a + b
        return np.add(layout.j3, off, out=layout._x)

    def value(self, log_a, log_b):
        """The objective at ``(log a, log b)`` (a float; equal to ``terms(log_a, log_b)[0]``)."""
        a = math.exp(log_a)
        b = math.exp(log_b)
        if not self.rising:
            return self._special_value(a, b)
        x = self._ab_rows(a, b)
        np.log(x, out=x)
        np.multiply(x, self._P, out=x)
        la, lb, lab = np.add.reduce(x, axis=-1).tolist()
        return la + lb - lab

    def terms(self, log_a, log_b):
        """The objective at ``(log a, log b)`` with its gradient and Hessian in those
        coordinates, as floats: ``(value, g_a, g_b, h_aa, h_ab, h_bb)``."""
        a = math.exp(log_a)
        b = math.exp(log_b)
        if not self.rising:
            return self._special_terms(a, b)
        x = self._ab_rows(a, b)
        z = self.layout._z
        logs, inv, inv2 = self.layout._z_parts
        np.log(x, out=logs)
        np.reciprocal(x, out=inv)
        np.square(inv, out=inv2)
        np.multiply(z, self._P, out=z)  # each weighted by its row of tails
        (la, lb, lab), (ia, ib, iab), (qa, qb, qab) = np.add.reduce(z, axis=-1).tolist()
        value = la + lb - lab
        ga, gb = ia - iab, ib - iab
        haa, hbb = qab - qa, qab - qb
        return _log_coord_terms(value, a, b, ga, gb, haa, hbb, qab)

    def values(self, log_a, log_b):
        """The objective at each of the points ``(log_a[i], log_b[i])`` (sequences of floats),
        as a list of floats; each equals ``terms(log_a[i], log_b[i])[0]``."""
        a = [math.exp(v) for v in log_a]
        b = [math.exp(v) for v in log_b]
        if not self.rising:
            return [self._special_value(ai, bi) for ai, bi in zip(a, b)]
        m = len(a)
        off = np.array([a, b, [ai + bi for ai, bi in zip(a, b)]]).T.reshape(m, 3, 1)
        x = self.layout.j3 + off  # (m, 3, n_max)
        np.log(x, out=x)
        np.multiply(x, self._P, out=x)
        return [la + lb - lab for la, lb, lab in np.add.reduce(x, axis=-1).tolist()]

    def _special_value(self, a, b):
        k, n = self.k, self.n
        return float(np.dot(self.w, betaln(k + a, n - k + b))) - self.W * float(betaln(a, b))

    def _special_terms(self, a, b):
        from scipy.special import digamma, zeta

        k, n, w, W = self.k, self.n, self.w, self.W
        value = self._special_value(a, b)
        size = k.shape[0]
        args = np.concatenate([k + a, n - k + b, n + a + b, [a, b, a + b]])
        dg = digamma(args)
        tg = zeta(2.0, args)  # trigamma
        ka, nkb, nab = slice(0, size), slice(size, 2 * size), slice(2 * size, 3 * size)
        d_a, d_b, d_ab = dg[-3:].tolist()
        t_a, t_b, t_ab = tg[-3:].tolist()
        ga = float(np.dot(w, dg[ka] - dg[nab])) + W * (d_ab - d_a)
        gb = float(np.dot(w, dg[nkb] - dg[nab])) + W * (d_ab - d_b)
        haa = float(np.dot(w, tg[ka] - tg[nab])) + W * (t_ab - t_a)
        hbb = float(np.dot(w, tg[nkb] - tg[nab])) + W * (t_ab - t_b)
        hab = -float(np.dot(w, tg[nab])) + W * t_ab
        return _log_coord_terms(value, a, b, ga, gb, haa, hbb, hab)

    def objective(self, log_a, log_b, derivatives=False):
        """``sum w * log_betabinom_seq(k, n, a, b)`` at ``(log a, log b)``, or
        ``(value, gradient, hessian)`` in ``(log a, log b)`` coordinates."""
        if not derivatives:
            return self.value(float(log_a), float(log_b))
        value, ga, gb, haa, hab, hbb = self.terms(float(log_a), float(log_b))
        return value, np.array([ga, gb]), np.array([[haa, hab], [hab, hbb]])


def betabinom_objective(k, n, w, log_a, log_b, derivatives=False):
    """Weighted Beta-Binomial log-likelihood ``sum w * log_betabinom_seq(k, n, a, b)`` as a
    function of ``(log a, log b)``, with its gradient and Hessian in those coordinates.

    This is the M-step objective for the careless position rates and the tie propensities
    (see :class:`BetaBinomialData`, which this wraps).
    """
    return BetaBinomialData(k, n, w).objective(log_a, log_b, derivatives)


def _log_coord_terms(value, a, b, ga, gb, haa, hbb, hab):
    """Gradient and Hessian in (a, b) -> in (log a, log b), as floats
    ``(value, g_a, g_b, h_aa, h_ab, h_bb)``."""
    return value, a * ga, b * gb, a * a * haa + a * ga, a * b * hab, b * b * hbb + b * gb
