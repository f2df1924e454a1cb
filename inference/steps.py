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

from comparemode.models.likelihood import BetaBinomialData, BetaBinomialLayout, log_betabinom_seq
from comparemode.models.stats import Patterns, mixture_posterior

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


def _ascent_step2(a, b, c, g0, g1):
    """Solve ``m @ step = g`` for the 2x2 symmetric ``m = [[a, b], [b, c]]`` (minus the
    Hessian), shifted to be positive definite where it is not, so the step always goes uphill;
    ``g = (g0, g1)``, the step as two floats."""
    lowest = 0.5 * (a + c) - math.hypot(0.5 * (a - c), b)
    size = 1.0 + max(abs(a), abs(b), abs(c))
    if lowest <= 1e-10 * size:
        shift = abs(lowest) + 1e-6 * size
        a += shift
        c += shift
    det = a * c - b * b
    return (c * g0 - b * g1) / det, (a * g1 - b * g0) / det


#: The backtracking line search's step fractions: the step halved from 1 down to a millionth
#: of it (2^-19 > 1e-6 > 2^-20).
_FRACTIONS = tuple(0.5**i for i in range(20))


def _clip(v, lo=LOG_MIN, hi=LOG_MAX):
    return min(max(v, lo), hi)


def _first_not_lower(values, f):
    """Index of the first of ``values`` no lower than ``f``, or None."""
    for i, v in enumerate(values):
        if v >= f:
            return i
    return None


def _bb_ascent(data: BetaBinomialData, ab, max_steps: int):
    """:func:`bb_mstep` on prepared data: at most ``max_steps`` safeguarded Newton steps in
    ``(log a, log b)``, each from the objective's analytic gradient and Hessian
    (:meth:`BetaBinomialData.terms`), shortened to at most 3 and halved until the objective is
    no lower (down to a millionth of the step; no step where none is).

    The full step's point gets its derivatives in the same evaluation (they are the next
    step's; the last step's point its value alone), and after a refused full step the halved
    steps are evaluated together (:meth:`BetaBinomialData.values`) and the first no lower
    taken: the steps of evaluating one point at a time, in fewer calls."""
    x0, x1 = math.log(ab[0]), math.log(ab[1])
    f, g0, g1, h00, h01, h11 = data.terms(x0, x1)
    scale = 1.0 + abs(f)
    for it in range(max_steps):
        s0, s1 = _ascent_step2(-h00, -h01, -h11, g0, g1)
        length = max(abs(s0), abs(s1))
        if length > 3.0:
            r = 3.0 / length
            s0, s1 = s0 * r, s1 * r
        more = it + 1 < max_steps  # the new point's derivatives are needed
        y0, y1 = _clip(x0 + s0), _clip(x1 + s1)  # the full step (t = 1)
        found = data.terms(y0, y1) if more else (data.value(y0, y1),)
        if found[0] < f:  # halve: all the shorter steps at once, the first not lower taken
            ys0 = [_clip(x0 + t * s0) for t in _FRACTIONS[1:]]
            ys1 = [_clip(x1 + t * s1) for t in _FRACTIONS[1:]]
            values = data.values(ys0, ys1)
            i = _first_not_lower(values, f)
            if i is None:
                break
            y0, y1 = ys0[i], ys1[i]
            found = data.terms(y0, y1) if more else (values[i],)
        gain = found[0] - f
        x0, x1 = y0, y1
        if gain <= 1e-13 * scale or not more:
            break
        f, g0, g1, h00, h01, h11 = found
    return np.float64(math.exp(x0)), np.float64(math.exp(x1))


def bb_mstep(k, n, w, ab, max_steps=2):
    """Safeguarded Newton ascent of the weighted Beta-Binomial objective from ``ab``.

    Returns parameters whose objective is at least that of ``ab`` (never lower).
    """
    if float(w.sum()) <= 0.0:
        return ab
    return _bb_ascent(BetaBinomialData(k, n, w), ab, max_steps)


def bb_kappa_step(k, n, w, mean: float, kappa: float, max_steps: int = 3) -> float:
    """Safeguarded Newton ascent of the weighted Beta-Binomial objective in the concentration
    ``kappa`` alone, the mean held (``a = mean kappa``, ``b = (1 - mean) kappa``); never lowers
    the objective."""
    if float(w.sum()) <= 0.0:
        return kappa
    return _kappa_ascent(BetaBinomialData(k, n, w), mean, kappa, max_steps)


def _kappa_ascent(data: BetaBinomialData, mean: float, kappa: float, max_steps: int) -> float:
    """:func:`bb_kappa_step` on prepared data (evaluated as :func:`_bb_ascent` is)."""
    la, lb = math.log(mean), math.log1p(-mean)
    lo, hi = LOG_MIN - min(la, lb), LOG_MAX - max(la, lb)  # both Beta parameters in bounds
    x = math.log(kappa)
    f, g0, g1, h00, h01, h11 = data.terms(la + x, lb + x)
    for it in range(max_steps):
        gx, hx = g0 + g1, h00 + 2 * h01 + h11
        step = gx / -hx if hx < 0 else math.copysign(1.0, gx)
        step = max(min(step, 3.0), -3.0)
        more = it + 1 < max_steps
        y = _clip(x + step, lo, hi)
        found = data.terms(la + y, lb + y) if more else (data.value(la + y, lb + y),)
        if found[0] < f:
            ys = [_clip(x + t * step, lo, hi) for t in _FRACTIONS[1:]]
            values = data.values([la + v for v in ys], [lb + v for v in ys])
            i = _first_not_lower(values, f)
            if i is None:
                break
            y = ys[i]
            found = data.terms(la + y, lb + y) if more else (values[i],)
        gain, x = found[0] - f, y
        if gain <= 1e-13 * (1.0 + abs(f)) or not more:
            break
        f, g0, g1, h00, h01, h11 = found
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

    def _bb_data(self, name: str, k, n, w) -> BetaBinomialData:
        """The M-step data of the Beta-Binomial part ``name`` (count pairs ``k`` of ``n``) with
        weights ``w``; what does not depend on the weights is prepared on first use and kept
        (:class:`BetaBinomialLayout`)."""
        layouts = self.__dict__.setdefault("_bb_layouts", {})
        held = layouts.get(name)
        if held is None or held[0] is not k or held[1] is not n:
            held = layouts[name] = (k, n, BetaBinomialLayout(k, n))
        return held[2].data(w)

    def _bb_mstep(self, name: str, k, n, w, ab):
        """:func:`bb_mstep` of the part ``name``, on its kept layout."""
        if float(w.sum()) <= 0.0:
            return ab
        return _bb_ascent(self._bb_data(name, k, n, w), ab, 2)

    def _kappa_mstep(self, name: str, k, n, w, mean: float, kappa: float) -> float:
        """:func:`bb_kappa_step` of the part ``name``, on its kept layout."""
        if float(w.sum()) <= 0.0:
            return kappa
        return _kappa_ascent(self._bb_data(name, k, n, w), mean, kappa, 3)

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
        return mixture_posterior(p["pi"], l1, l0, self.w)

    def mstep(self, p, gamma):
        w1 = self.w * gamma
        w0 = self.w - w1
        new = dict(p)
        new["pi"] = min(max(float(w1.sum()) / self.W, _PI_MIN), 1.0 - _PI_MIN)
        if self.mu_spread:  # Beta-Binomial fit of the attentive users' picks of the model
            wm = np.bincount(self.mu_idx, weights=w1, minlength=self.mu_d.size)
            if self.estimate_mu:
                a, b = self._bb_mstep("mu", self.mu_k, self.mu_d, wm, self.mu_beta(p))
                new["mu"], new["mu_kappa"] = min(max(a / (a + b), _MU_MIN), 1.0 - _MU_MIN), a + b
            else:
                new["mu_kappa"] = self._kappa_mstep("mu", self.mu_k, self.mu_d, wm, self.mu_fixed, p["mu_kappa"])
        elif self.estimate_mu:  # the attentive users' decisive picks of the model mu is about
            den = float(np.dot(w1, self.d_w))
            if den > 0:
                new["mu"] = min(max(float(np.dot(w1, self.k_w)) / den, _MU_MIN), 1.0 - _MU_MIN)
        if self.careless == "beta":
            wp = np.bincount(self.pos_idx, weights=w0, minlength=self.pos_d.size)
            new["careless_first"] = self._bb_mstep("position", self.pos_f, self.pos_d, wp, p["careless_first"])
        elif self.careless == "shared":
            num = float(np.dot(w0, self.f_tot_w))
            den = float(np.dot(w0, self.d_w))
            if den > 0:
                new["careless_first"] = min(max(num / den, 1e-9), 1 - 1e-9)
        if self.ties == "model":
            wt1 = np.bincount(self.tie_idx, weights=w1, minlength=self.tie_n.size)
            new["tie_attentive"] = self._bb_mstep("tie", self.tie_t, self.tie_n, wt1, p["tie_attentive"])
        if self.ties in ("model", "davidson"):
            wt0 = np.bincount(self.tie_idx, weights=w0, minlength=self.tie_n.size)
            new["tie_careless"] = self._bb_mstep("tie", self.tie_t, self.tie_n, wt0, p["tie_careless"])
        return new


def fit_tie_beta(vt) -> tuple[float, float]:
    """Maximum-likelihood Beta of everybody's tie propensity (one Beta for all users, the tie
    part of the homogeneous and continuous models: it separates from the rest of their
    likelihood), by safeguarded Newton steps to convergence."""
    ab = (1.0, 1.0)
    if float(vt.weight.sum()) <= 0.0:
        return ab
    data = BetaBinomialData(vt.t.astype(float), vt.n.astype(float), vt.weight)  # the same data every round
    for _ in range(200):
        new = _bb_ascent(data, ab, 5)
        if np.allclose(new, ab, rtol=1e-12, atol=0):
            break
        ab = new
    return ab
