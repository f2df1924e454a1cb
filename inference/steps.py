"""The EM's building blocks (docs/design.md section 5): the two-type problem on count
patterns (:class:`Problem`: each type's log-likelihood per pattern, the E-step's inputs and the
generalised M-step) and the safeguarded Beta-Binomial Newton steps it and the other models'
EMs use (:func:`bb_mstep`, :func:`bb_kappa_step`, :func:`fit_tie_beta`).

Below every estimator in ``inference/`` (the two-type and joint EMs, cross-fitting, the
homogeneous and continuous-quality models) and above ``models/``, whose likelihood pieces it
evaluates.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from comparemode.models.likelihood import BetaBinomialData, log_betabinom_seq
from comparemode.models.stats import Patterns

__all__ = ["LOG_MIN", "LOG_MAX", "Problem", "bb_mstep", "bb_kappa_step", "fit_tie_beta"]

# Bounds on log Beta parameters: 1e-3 (U-shaped) to 1e6 (a near point mass).
LOG_MIN = math.log(1e-3)
LOG_MAX = math.log(1e6)
_PI_MIN = 1e-12
#: An estimated mu stays this far inside (0, 1) (a vote against a model that never loses would
#: otherwise have probability 0 under the attentive type).
_MU_MIN = 1e-9


def _unique_pairs(x: np.ndarray, y: np.ndarray):
    """Distinct (x, y) pairs of non-negative ints and the index of each input row's pair."""
    m = int(y.max()) + 1 if y.size else 1
    key = x.astype(np.int64) * m + y
    uniq, inverse = np.unique(key, return_inverse=True)
    return (uniq // m).astype(float), (uniq % m).astype(float), inverse


def _ascent_step(m, g):
    """Solve ``m @ step = g`` for the 2x2 symmetric ``m`` (minus the Hessian), shifted to be
    positive definite where it is not, so the step always goes uphill."""
    a, b, c = float(m[0, 0]), float(m[0, 1]), float(m[1, 1])
    lowest = 0.5 * (a + c) - math.hypot(0.5 * (a - c), b)
    size = 1.0 + max(abs(a), abs(b), abs(c))
    if lowest <= 1e-10 * size:
        shift = abs(lowest) + 1e-6 * size
        a += shift
        c += shift
    det = a * c - b * b
    return np.array([(c * g[0] - b * g[1]) / det, (a * g[1] - b * g[0]) / det])


def _backtrack(value, x, step, f, clip):
    """The step from ``x``, halved until the objective ``value`` is no lower than ``f`` (down to
    a millionth of it): ``(x_new, value_new)``, or None where no such step exists."""
    t = 1.0
    while t > 1e-6:
        xn = clip(x + t * step)
        fn = value(xn)
        if fn >= f:
            return xn, fn
        t *= 0.5
    return None


def bb_mstep(k, n, w, ab, max_steps=2):
    """Safeguarded Newton ascent of the weighted Beta-Binomial objective from ``ab``.

    Returns parameters whose objective is at least that of ``ab`` (never lower).
    """
    if float(w.sum()) <= 0.0:
        return ab
    data = BetaBinomialData(k, n, w)
    x = np.log(np.asarray(ab, dtype=float))
    f, g, h = data.objective(x[0], x[1], derivatives=True)
    scale = 1.0 + abs(f)
    for _ in range(max_steps):
        step = _ascent_step(-h, g)
        length = float(np.abs(step).max())
        if length > 3.0:
            step *= 3.0 / length
        found = _backtrack(lambda z: data.objective(z[0], z[1]), x, step, f, lambda z: np.clip(z, LOG_MIN, LOG_MAX))
        if found is None:
            break
        xn, fn = found
        gain = fn - f
        x = xn
        if gain <= 1e-13 * scale:
            break
        f, g, h = data.objective(x[0], x[1], derivatives=True)
    return tuple(np.exp(x))


def bb_kappa_step(k, n, w, mean: float, kappa: float, max_steps: int = 3) -> float:
    """Safeguarded Newton ascent of the weighted Beta-Binomial objective in the concentration
    ``kappa`` alone, the mean held (``a = mean kappa``, ``b = (1 - mean) kappa``); never lowers
    the objective."""
    if float(w.sum()) <= 0.0:
        return kappa
    data = BetaBinomialData(k, n, w)
    la, lb = math.log(mean), math.log1p(-mean)
    lo, hi = LOG_MIN - min(la, lb), LOG_MAX - max(la, lb)  # both Beta parameters in bounds
    x = math.log(kappa)

    def at(x, derivatives=False):
        return data.objective(la + x, lb + x, derivatives=derivatives)

    f, g, h = at(x, True)
    for _ in range(max_steps):
        gx, hx = float(g[0] + g[1]), float(h[0, 0] + 2 * h[0, 1] + h[1, 1])
        step = gx / -hx if hx < 0 else math.copysign(1.0, gx)
        step = max(min(step, 3.0), -3.0)
        found = _backtrack(at, x, step, f, lambda z: min(max(z, lo), hi))
        if found is None:
            break
        xn, fn = found
        gain, x = fn - f, xn
        if gain <= 1e-13 * (1.0 + abs(f)):
            break
        f, g, h = at(x, True)
    return math.exp(x)


class Problem:
    """Compressed statistics plus the pair indices the E and M steps need."""

    def __init__(self, pat: Patterns, careless: str, ties: str, estimate_mu: bool = False, mu_spread: bool = False):
        self.pat = pat
        self.careless = careless
        self.ties = ties
        self.estimate_mu = estimate_mu
        self.mu_spread = mu_spread
        self.w = pat.weight
        self.W = float(pat.weight.sum())
        d = pat.d
        self.pos_d, self.pos_f, self.pos_idx = _unique_pairs(d, pat.f)
        self.f_tot_w = pat.f.astype(float)
        self.d_w = d.astype(float)
        if estimate_mu or mu_spread:  # two models, mu a parameter: the attentive term from k
            self.k_w = pat.k.astype(float)
            if mu_spread:  # attentive users' own mu ~ Beta: Beta-Binomial in k
                self.mu_d, self.mu_k, self.mu_idx = _unique_pairs(d, pat.k)
                self.mu_fixed = None if estimate_mu else float(pat.mu)
        else:
            self.s = pat.s.astype(float)
        if ties in ("model", "davidson"):
            self.tie_n, self.tie_t, self.tie_idx = _unique_pairs(pat.n, pat.t)

    def position_loglik(self, p):
        """Careless log-likelihood of each pattern's decisive votes (no tie term)."""
        if self.careless == "beta":
            return log_betabinom_seq(self.pos_f, self.pos_d, *p["careless_first"])[self.pos_idx]
        if self.careless == "shared":
            rho = p["careless_first"]
            return self.f_tot_w * math.log(rho) + (self.d_w - self.f_tot_w) * math.log1p(-rho)
        return -self.d_w * math.log(2.0)

    def attentive(self, p):
        """Attentive log-likelihood of each pattern's votes (the decisive votes here; the joint
        model's Davidson ties add the tie votes)."""
        if self.mu_spread:
            return log_betabinom_seq(self.mu_k, self.mu_d, *self.mu_beta(p))[self.mu_idx]
        if self.estimate_mu:
            mu = p["mu"]
            return self.k_w * math.log(mu) + (self.d_w - self.k_w) * math.log1p(-mu)
        return self.s

    def mu_beta(self, p):
        """Beta(a, b) of the attentive users' own mu (``mu_spread``): mean mu, concentration
        ``p["mu_kappa"]``."""
        mu = p["mu"] if self.estimate_mu else self.mu_fixed
        return mu * p["mu_kappa"], (1.0 - mu) * p["mu_kappa"]

    def decisive_attentive(self, p):
        """Attentive log-likelihood of each pattern's decisive votes alone."""
        return self.attentive(p)

    def logliks(self, p):
        l0 = self.position_loglik(p)
        l1 = self.attentive(p)
        if self.ties == "model":
            l1 = l1 + log_betabinom_seq(self.tie_t, self.tie_n, *p["tie_attentive"])[self.tie_idx]
        if self.ties in ("model", "davidson"):  # davidson: s already holds the attentive ties
            l0 = l0 + log_betabinom_seq(self.tie_t, self.tie_n, *p["tie_careless"])[self.tie_idx]
        return l1, l0

    def rounding_scale(self, p) -> float:
        """Size of the largest terms the log-likelihood sums and then cancels: ``betaln(a, b)``
        is ``gammaln(a) + gammaln(b) - gammaln(a + b)``, and with a Beta parameter near its
        1e6 bound each is about 1e7 per user, so the observed log-likelihood carries a rounding
        error of a few ulps of this, however small the log-likelihood itself is."""
        names = (["careless_first"] if self.careless == "beta" else []) + (
            ["tie_attentive", "tie_careless"] if self.ties == "model" else ["tie_careless"] if self.ties == "davidson" else []
        )
        pairs = [p[name] for name in names] + ([self.mu_beta(p)] if self.mu_spread else [])
        total = 0.0
        for a, b in pairs:
            total += abs(float(gammaln(a))) + abs(float(gammaln(b))) + abs(float(gammaln(a + b)))
        return self.W * total

    def evaluate(self, p, l1, l0):
        """Observed log-likelihood and the posterior P(attentive) of every pattern."""
        x = math.log(p["pi"]) + l1
        y = math.log1p(-p["pi"]) + l0
        diff = x - y
        lse = np.maximum(x, y) + np.log1p(np.exp(-np.abs(diff)))
        return float(np.dot(self.w, lse)), np.exp(x - lse)

    def mstep(self, p, gamma):
        w1 = self.w * gamma
        w0 = self.w - w1
        new = dict(p)
        new["pi"] = min(max(float(w1.sum()) / self.W, _PI_MIN), 1.0 - _PI_MIN)
        if self.mu_spread:  # Beta-Binomial fit of the attentive users' picks of the model
            wm = np.bincount(self.mu_idx, weights=w1, minlength=self.mu_d.size)
            if self.estimate_mu:
                a, b = bb_mstep(self.mu_k, self.mu_d, wm, self.mu_beta(p))
                new["mu"], new["mu_kappa"] = min(max(a / (a + b), _MU_MIN), 1.0 - _MU_MIN), a + b
            else:
                new["mu_kappa"] = bb_kappa_step(self.mu_k, self.mu_d, wm, self.mu_fixed, p["mu_kappa"])
        elif self.estimate_mu:  # the attentive users' decisive picks of the model mu is about
            den = float(np.dot(w1, self.d_w))
            if den > 0:
                new["mu"] = min(max(float(np.dot(w1, self.k_w)) / den, _MU_MIN), 1.0 - _MU_MIN)
        if self.careless == "beta":
            wp = np.bincount(self.pos_idx, weights=w0, minlength=self.pos_d.size)
            new["careless_first"] = bb_mstep(self.pos_f, self.pos_d, wp, p["careless_first"])
        elif self.careless == "shared":
            num = float(np.dot(w0, self.f_tot_w))
            den = float(np.dot(w0, self.d_w))
            if den > 0:
                new["careless_first"] = min(max(num / den, 1e-9), 1 - 1e-9)
        if self.ties == "model":
            wt1 = np.bincount(self.tie_idx, weights=w1, minlength=self.tie_n.size)
            new["tie_attentive"] = bb_mstep(self.tie_t, self.tie_n, wt1, p["tie_attentive"])
        if self.ties in ("model", "davidson"):
            wt0 = np.bincount(self.tie_idx, weights=w0, minlength=self.tie_n.size)
            new["tie_careless"] = bb_mstep(self.tie_t, self.tie_n, wt0, p["tie_careless"])
        return new


def fit_tie_beta(vt) -> tuple[float, float]:
    """Maximum-likelihood Beta of everybody's tie propensity (one Beta for all users, the tie
    part of the homogeneous and continuous models: it separates from the rest of their
    likelihood), by safeguarded Newton steps to convergence."""
    ab = (1.0, 1.0)
    for _ in range(200):
        new = bb_mstep(vt.t.astype(float), vt.n.astype(float), vt.weight, ab, max_steps=5)
        if np.allclose(new, ab, rtol=1e-12, atol=0):
            break
        ab = new
    return ab
