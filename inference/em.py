"""EM for the two-type user model: the fast path (DESIGN.md section 5).

E-step: ``gamma_u = P(attentive | votes) = sigmoid(logit pi + l1_u - l0_u)``.
M-step: ``pi`` = mean of gamma (exact); the Beta parameters of the careless first-position
rates and of each type's tie propensities by gamma-weighted Beta-Binomial fits, a few
safeguarded Newton steps in log parameters that are accepted only when they do not lower the
M-step objective (a generalised EM step), so the observed log-likelihood never decreases.
The loop checks that on every iteration and raises :class:`LikelihoodDecreaseError` if not.

Everything runs on compressed count patterns (:mod:`comparemode.models.stats`), so the cost
per iteration depends on the number of distinct patterns, not on the number of users.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import gammaln

from comparemode._progress import Progress
from comparemode.constants import (
    BOUNDARY_TOL,
    DEFAULT_MAX_ITER,
    DEFAULT_N_STARTS,
    DEFAULT_THRESHOLD,
    DEFAULT_TOL,
    LOGLIK_DECREASE_TOL,
)
from comparemode.errors import BoundaryWarning, ConfigError, LikelihoodDecreaseError, NotFittedError
from comparemode.models.likelihood import (
    CARELESS_MODES,
    TIE_MODES,
    BetaBinomialData,
    log_betabinom_seq,
    posterior_attentive,
)
from comparemode.models.stats import EncodedVotes, Patterns, UserStats, aggregate, patterns_for

__all__ = ["TwoTypeEM"]

# Bounds on log Beta parameters: 1e-3 (U-shaped) to 1e6 (a near point mass).
_LOG_MIN = math.log(1e-3)
_LOG_MAX = math.log(1e6)
_PI_MIN = 1e-12
#: A decrease within this many ulps of the log-likelihood's largest cancelling terms
#: (``_Problem.rounding_scale``) is rounding, not a decreasing EM.
_ROUNDING_ULPS = 64.0
#: Iterations of each start before the best start is run to convergence.
_SHORT_RUN = 5


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


def _bb_mstep(k, n, w, ab, max_steps=2):
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
        t = 1.0
        accepted = False
        while t > 1e-6:
            xn = np.clip(x + t * step, _LOG_MIN, _LOG_MAX)
            fn = data.objective(xn[0], xn[1])
            if fn >= f:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        gain = fn - f
        x = xn
        if gain <= 1e-13 * scale:
            break
        f, g, h = data.objective(x[0], x[1], derivatives=True)
    return tuple(np.exp(x))


class _Problem:
    """Compressed statistics plus the pair indices the E and M steps need."""

    def __init__(self, pat: Patterns, careless: str, ties: str):
        self.pat = pat
        self.careless = careless
        self.ties = ties
        self.w = pat.weight
        self.W = float(pat.weight.sum())
        d = pat.d
        self.s = pat.s.astype(float)
        self.pos_d, self.pos_f, self.pos_idx = _unique_pairs(d, pat.f)
        self.f_tot_w = pat.f.astype(float)
        self.d_w = d.astype(float)
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

    def decisive_attentive(self, p):
        """Attentive log-likelihood of each pattern's decisive votes alone."""
        return self.s

    def logliks(self, p):
        l0 = self.position_loglik(p)
        l1 = self.s
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
        total = 0.0
        for name in names:
            a, b = p[name]
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
        if self.careless == "beta":
            wp = np.bincount(self.pos_idx, weights=w0, minlength=self.pos_d.size)
            new["careless_first"] = _bb_mstep(self.pos_f, self.pos_d, wp, p["careless_first"])
        elif self.careless == "shared":
            num = float(np.dot(w0, self.f_tot_w))
            den = float(np.dot(w0, self.d_w))
            if den > 0:
                new["careless_first"] = min(max(num / den, 1e-9), 1 - 1e-9)
        if self.ties == "model":
            wt1 = np.bincount(self.tie_idx, weights=w1, minlength=self.tie_n.size)
            new["tie_attentive"] = _bb_mstep(self.tie_t, self.tie_n, wt1, p["tie_attentive"])
        if self.ties in ("model", "davidson"):
            wt0 = np.bincount(self.tie_idx, weights=w0, minlength=self.tie_n.size)
            new["tie_careless"] = _bb_mstep(self.tie_t, self.tie_n, wt0, p["tie_careless"])
        return new


def _warn_boundary(p: dict, careless: str, ties: str) -> None:
    """BoundaryWarning for every estimate within BOUNDARY_TOL of the edge of its range.

    The careless (attentive) parameters are checked only while careless (attentive) users
    have a share above the tolerance: with no users of a type its parameters are undetermined
    and the warning about pi says so."""
    found = []
    pi = float(p["pi"])
    if pi <= BOUNDARY_TOL or pi >= 1.0 - BOUNDARY_TOL:
        side = "0 (no attentive users)" if pi <= BOUNDARY_TOL else "1 (no careless users)"
        found.append(f"pi = {pi:.3g} is at {side}; the other type's parameters are undetermined")
    beta_params = []
    if pi < 1.0 - BOUNDARY_TOL:
        if careless == "beta":
            beta_params.append(("careless_first", p["careless_first"]))
        elif careless == "shared":
            rho = float(p["careless_first"])
            if rho <= BOUNDARY_TOL or rho >= 1.0 - BOUNDARY_TOL:
                found.append(f"careless_first = {rho:.3g} is at the edge of [0, 1]")
        if ties in ("model", "davidson"):
            beta_params.append(("tie_careless", p["tie_careless"]))
    if ties == "model" and pi > BOUNDARY_TOL:
        beta_params.append(("tie_attentive", p["tie_attentive"]))
    for name, ab in beta_params:
        for part, value in zip(("a", "b"), ab):
            x = math.log(value)
            if x <= _LOG_MIN + BOUNDARY_TOL or x >= _LOG_MAX - BOUNDARY_TOL:
                bound = "lower bound 1e-3" if x <= _LOG_MIN + BOUNDARY_TOL else "upper bound 1e6"
                found.append(f"{name}_{part} = {value:.4g} is at the {bound} of a Beta parameter")
    if found:
        warnings.warn(
            "EM estimate(s) on the boundary of the parameter range: " + "; ".join(found) + ". A boundary value "
            "is not an interior maximum: read it as 'this extreme or beyond', and expect it to move with more data",
            BoundaryWarning,
            stacklevel=4,
        )


class TwoTypeEM:
    """Two-type (attentive / careless) user model fitted by EM on compressed statistics.

    Parameters
    ----------
    careless : {"beta", "shared", "random"}
        How careless users pick a position. ``"beta"`` (default): each careless user has an
        own first-position rate drawn from an estimated Beta(a, b); ``"shared"``: one rate for
        all careless users; ``"random"``: every careless user picks the first answer with
        probability 1/2 (the paper's random clicker).
    ties : {"model", "drop"}
        ``"model"`` (default): each user's tie propensity follows a Beta distribution per
        type, so tie habits inform the type as far as the two distributions differ.
        ``"drop"``: the likelihood ignores tie votes (the paper's binary labels); the votes
        stay in the table and are filtered with their user.
    n_starts : int
        Number of EM starts (mixtures have local optima). Each start runs a few iterations;
        the one with the highest likelihood then runs to convergence.
    max_iter : int
        Iteration cap (of the chosen start, counting its short run).
    tol : float
        Stop when an iteration raises the log-likelihood by less than ``tol`` per user.
    random_seed : int or None
        Seed of the random starts (``numpy.random.default_rng``).
    verbose : bool
        Print progress to standard error.

    Data contract
    -------------
    ``fit(votes, mu=..., strengths=...)`` takes the canonical votes table of
    :func:`comparemode.load_votes`: one row per vote with columns ``user``, ``model_a``
    (shown first), ``model_b`` (shown second), ``winner`` in ``model_a | model_b | tie |
    tie (bothbad)``, and optionally ``mu``. The reference probability comes from ``mu``
    (``{"model_x": 0.7}`` for two models, or a column name), ``strengths`` (Bradley-Terry
    scores or Elo ratings per model) or the votes' ``mu`` column.

    Attributes (after ``fit``)
    --------------------------
    users_ : DataFrame, one row per user (index ``user``): ``n_votes``, ``n_ties``,
        ``n_decisive``, ``n_first``, ``n_second``, (``n_stronger`` for two models),
        ``loglik_attentive``, ``loglik_careless``, ``llr`` (their difference),
        ``llr_per_vote`` (a quality score that keeps ordering users after ``p_attentive``
        saturates), ``llr_decisive_per_vote`` (the same evidence from the decisive votes
        alone, per decisive vote: how well the user's picks follow the reference rather than a
        position habit, whatever the user's tie habit; NaN without decisive votes) and
        ``p_attentive``.
    params_ : Series of the fitted population parameters.
    loglik_history_ : Series, the observed log-likelihood after each iteration of the best
        start (non-decreasing). ``loss_history_`` is its negative.
    loglik_ : float, final observed log-likelihood.
    converged_ : bool; ``stop_reason_``: ``"tolerance"`` or ``"max_iter"``; ``n_iter_``.
    starts_ : DataFrame, one row per start: its log-likelihood after a short run (up to 5
        iterations) and whether it was chosen to run on to convergence.
    n_patterns_ : number of distinct count patterns the EM ran on.
    reference_ : dict describing where mu came from.
    """

    def __init__(
        self,
        careless: str = "beta",
        ties: str = "model",
        n_starts: int = DEFAULT_N_STARTS,
        max_iter: int = DEFAULT_MAX_ITER,
        tol: float = DEFAULT_TOL,
        random_seed: int | None = 0,
        verbose: bool = False,
    ):
        self.careless = careless
        self.ties = ties
        self.n_starts = n_starts
        self.max_iter = max_iter
        self.tol = tol
        self.random_seed = random_seed
        self.verbose = verbose

    # -- configuration ---------------------------------------------------------------
    def get_params(self) -> dict:
        """The constructor settings as a plain JSON-able dict."""
        return {
            "careless": self.careless,
            "ties": self.ties,
            "n_starts": self.n_starts,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "random_seed": self.random_seed,
            "verbose": self.verbose,
        }

    def _check_settings(self) -> None:
        if self.careless not in CARELESS_MODES:
            raise ConfigError(f"careless must be one of {CARELESS_MODES}, got {self.careless!r}")
        if self.ties not in TIE_MODES:
            raise ConfigError(f"ties must be one of {TIE_MODES}, got {self.ties!r}")
        for name in ("n_starts", "max_iter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.tol, (int, float)) and self.tol > 0 and math.isfinite(self.tol)):
            raise ConfigError(f"tol must be a positive finite number, got {self.tol!r}")
        seed = self.random_seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ConfigError(f"random_seed must be a non-negative integer or None, got {seed!r}")

    # -- fitting ---------------------------------------------------------------------
    def fit(self, votes: pd.DataFrame, *, mu=None, strengths=None, scale: str = "bt") -> "TwoTypeEM":
        """Fit to a votes table; see the class docstring for the data contract. Returns self.

        A Dask DataFrame or Parquet files (a directory or a glob) are aggregated on Dask in one
        pass (:func:`comparemode.dask_backend.fit_two_type`; ``n_passes_`` counts the passes)."""
        from comparemode.dask_backend import is_lazy_input
        from comparemode.data import validate_votes
        from comparemode.reference import encode_votes, resolve_reference

        if is_lazy_input(votes):  # a Dask DataFrame or Parquet files read lazily
            from comparemode.dask_backend import fit_two_type

            return fit_two_type(self, votes, mu=mu, strengths=strengths, scale=scale)
        self._check_settings()
        progress = Progress(self.verbose)
        votes = validate_votes(votes)
        ref = resolve_reference(votes, mu=mu, strengths=strengths, scale=scale)
        progress(f"encoding {len(votes):,} votes (reference: {ref.source})")
        enc, user_index = encode_votes(votes, ref)
        return self._fit(enc, ref, user_index, progress)

    def fit_encoded(self, enc: EncodedVotes, *, mu: float | None = None, user_index=None) -> "TwoTypeEM":
        """Fit from integer-encoded votes (the fast path; see :class:`EncodedVotes`).

        ``mu`` is P(stronger model wins) when ``enc`` carries no per-vote ``mu``.
        """
        from comparemode.reference import Reference, _check_mu_value

        self._check_settings()
        if enc.mu is None:
            ref = Reference(kind="scalar", source="encoded", mu=_check_mu_value(mu, "mu"), model="stronger", other="weaker")
        else:
            ref = Reference(kind="row", source="encoded")
        if user_index is None:
            user_index = pd.RangeIndex(enc.n_users, name="user")
        return self._fit(enc, ref, user_index, Progress(self.verbose))

    def _check_identifiable(self, enc: EncodedVotes, ref) -> None:
        from comparemode.reference import check_identifiable

        check_identifiable(enc, ref, self.careless)

    def _make_problem(self, pat: Patterns, ties: str, enc: EncodedVotes) -> _Problem:
        return _Problem(pat, self.careless, ties)

    def _fit(self, enc: EncodedVotes, ref, user_index, progress: Progress) -> "TwoTypeEM":
        self._check_identifiable(enc, ref)
        t0 = time.perf_counter()
        stats = aggregate(enc, mu=ref.mu if ref.kind == "scalar" else None)
        return self._fit_stats(stats, ref, user_index, progress, n_votes=enc.n_votes, t0=t0, enc=enc)

    def _fit_stats(self, stats: UserStats, ref, user_index, progress: Progress, *, n_votes: int, t0: float, enc=None):
        """Everything after the pass over the votes (also the entry of the Dask backend,
        :mod:`comparemode.dask_backend`, which aggregates the votes itself)."""
        ties, pat = patterns_for(stats, self.ties)
        progress(
            f"aggregated {n_votes:,} votes from {stats.n_users:,} users into {pat.size:,} count patterns "
            f"in {time.perf_counter() - t0:.2f}s"
        )
        problem = self._make_problem(pat, ties, enc)
        rng = np.random.default_rng(self.random_seed)
        # "Short EM": every start runs a few iterations, the best one runs to convergence.
        short = self.max_iter if self.n_starts == 1 else min(self.max_iter, _SHORT_RUN)
        runs = [self._run(problem, self._start(i, stats, rng, problem), progress, i, short) for i in range(self.n_starts)]
        best_start = int(np.argmax([r["loglik"] for r in runs]))
        best = runs[best_start]
        if not best["converged"] and best["n_iter"] < self.max_iter:
            best = self._run(problem, best["params"], progress, best_start, self.max_iter - best["n_iter"], best)
        rows = [
            {"start": i, "loglik_short_run": r["loglik"], "n_iter_short_run": r["n_iter"], "chosen": i == best_start}
            for i, r in enumerate(runs)
        ]
        self.ties_ = ties
        self._problem_params = best["params"]
        self.reference_ = ref.describe()
        self.starts_ = pd.DataFrame(rows).set_index("start")
        self.loglik_history_ = pd.Series(best["history"], name="loglik", index=pd.RangeIndex(len(best["history"]), name="iteration"))
        self.loglik_ = best["loglik"]
        self.converged_ = best["converged"]
        self.stop_reason_ = "tolerance" if best["converged"] else "max_iter"
        self.n_iter_ = best["n_iter"]
        self.n_patterns_ = pat.size
        self.n_votes_ = n_votes
        self.params_ = self._params_series(best["params"], ref, ties)
        self._user_inputs = (stats, pat, problem, best["params"], user_index)
        self.__dict__.pop("_users_cache", None)
        _warn_boundary(best["params"], self.careless, ties)
        progress(
            f"EM done: {self.stop_reason_} after {self.n_iter_} iterations, loglik {self.loglik_:.6g}, "
            f"pi = {best['params']['pi']:.4f}"
        )
        return self

    def _start(self, start: int, stats: UserStats, rng: np.random.Generator, problem: _Problem) -> dict:
        n_tot = float(stats.n.sum())
        tie_rate = float(stats.t.sum()) / n_tot if n_tot else 0.0
        tie_rate = min(max(tie_rate, 0.01), 0.99)
        if start == 0:
            pi, first_mean, first_conc, tie_conc1, tie_conc0, shift = 0.5, 0.5, 4.0, 10.0, 4.0, 1.0
        else:
            pi = rng.uniform(0.15, 0.9)
            first_mean = rng.uniform(0.3, 0.85)
            first_conc = math.exp(rng.uniform(math.log(1.0), math.log(40.0)))
            tie_conc1 = math.exp(rng.uniform(math.log(2.0), math.log(40.0)))
            tie_conc0 = math.exp(rng.uniform(math.log(1.0), math.log(40.0)))
            shift = math.exp(rng.normal(0.0, 0.3))
        tie0 = min(max(tie_rate * shift, 0.005), 0.995)
        p = {"pi": pi}
        if self.careless == "beta":
            p["careless_first"] = (first_mean * first_conc, (1 - first_mean) * first_conc)
        elif self.careless == "shared":
            p["careless_first"] = first_mean
        else:
            p["careless_first"] = None
        p["tie_attentive"] = (tie_rate * tie_conc1, (1 - tie_rate) * tie_conc1)
        p["tie_careless"] = (tie0 * tie_conc0, (1 - tie0) * tie_conc0)
        return p

    def _run(self, problem: _Problem, p: dict, progress: Progress, start: int, max_iter: int, previous=None) -> dict:
        """EM iterations from ``p``; ``previous`` is the run being continued, if any."""
        ll, gamma = problem.evaluate(p, *problem.logliks(p))
        history = list(previous["history"]) if previous else [ll]
        done = previous["n_iter"] if previous else 0
        converged = False
        it = 0
        for it in range(1, max_iter + 1):
            p_new = problem.mstep(p, gamma)
            ll_new, gamma = problem.evaluate(p_new, *problem.logliks(p_new))
            rounding = _ROUNDING_ULPS * np.finfo(float).eps * max(problem.rounding_scale(p), problem.rounding_scale(p_new))
            if ll_new < ll - LOGLIK_DECREASE_TOL * (1.0 + abs(ll)) - rounding:
                raise LikelihoodDecreaseError(
                    f"EM log-likelihood decreased from {ll!r} to {ll_new!r} at iteration {done + it} of start {start + 1}; "
                    "this is a bug, please report it with the data"
                )
            if ll_new < ll:
                # a decrease within rounding: no gain is resolvable any more, so the step is
                # rejected (the likelihood stays where it was) and the run has converged
                history.append(ll)
                converged = True
                break
            history.append(ll_new)
            gain = ll_new - ll
            p, ll = p_new, ll_new
            if gain < self.tol * problem.W:
                converged = True
                break
            if it % 200 == 0:
                progress(f"start {start + 1}: iteration {done + it}, loglik {ll:.8g}")
        progress(f"start {start + 1}/{self.n_starts}: {done + it} iterations, loglik {ll:.8g}, converged={converged}")
        return {"params": p, "loglik": ll, "history": history, "converged": converged, "n_iter": done + it}

    # -- results ---------------------------------------------------------------------
    def _params_series(self, p: dict, ref, ties: str) -> pd.Series:
        out = {"pi": p["pi"]}
        if self.careless == "beta":
            a, b = p["careless_first"]
            out.update(
                careless_first_a=a,
                careless_first_b=b,
                careless_first_mean=a / (a + b),
                careless_first_kappa=a + b,
                careless_first_sd=math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))),
            )
        elif self.careless == "shared":
            out.update(careless_first=p["careless_first"], careless_first_mean=p["careless_first"], careless_first_sd=0.0)
        else:
            out.update(careless_first_mean=0.5, careless_first_sd=0.0)
        for kind in ("attentive", "careless"):
            if ties == "model" or (ties == "davidson" and kind == "careless"):
                a, b = p[f"tie_{kind}"]
                out.update({f"tie_{kind}_a": a, f"tie_{kind}_b": b, f"tie_{kind}_mean": a / (a + b), f"tie_{kind}_kappa": a + b})
            else:
                out.update({f"tie_{kind}_a": np.nan, f"tie_{kind}_b": np.nan, f"tie_{kind}_mean": np.nan, f"tie_{kind}_kappa": np.nan})
        if ref.kind == "scalar":
            out["mu"] = ref.mu
        return pd.Series(out, name="estimate", dtype=float)

    def _users_table(self, stats: UserStats, pat: Patterns, problem: _Problem, p: dict, user_index) -> pd.DataFrame:
        # Everything model-based is computed per pattern, then spread to users.
        l1, l0 = problem.logliks(p)
        llr = l1 - l0
        n_model = pat.n.astype(float)
        per_vote = np.divide(llr, n_model, out=np.zeros_like(llr), where=n_model > 0)
        d_pat = pat.d.astype(float)
        llr_dec = problem.decisive_attentive(p) - problem.position_loglik(p)
        per_decisive = np.divide(llr_dec, d_pat, out=np.full_like(llr_dec, np.nan), where=d_pat > 0)
        inv = pat.inverse
        d = stats.n - stats.t
        cols = {
            "n_votes": stats.n,
            "n_ties": stats.t,
            "n_decisive": d,
            "n_first": stats.f,
            "n_second": d - stats.f,
        }
        if stats.k is not None:
            cols["n_stronger"] = stats.k
        cols.update(
            loglik_attentive=l1[inv],
            loglik_careless=l0[inv],
            llr=llr[inv],
            llr_per_vote=per_vote[inv],
            llr_decisive_per_vote=per_decisive[inv],
            p_attentive=posterior_attentive(l1, l0, p["pi"])[inv],
        )
        return pd.DataFrame(cols, index=user_index)

    @property
    def users_(self) -> pd.DataFrame:
        """One row per user (see the class docstring). Built from the fitted patterns on
        first access and kept; a million users take a few tens of milliseconds."""
        cached = self.__dict__.get("_users_cache")
        if cached is None:
            cached = self._users_table(*self._fitted("_user_inputs"))
            self.__dict__["_users_cache"] = cached
        return cached

    @property
    def loss_history_(self) -> pd.Series:
        """Negative observed log-likelihood per iteration (non-increasing)."""
        return -self._fitted("loglik_history_").rename("loss")

    def _fitted(self, name: str):
        try:
            return self.__dict__[name]
        except KeyError:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(votes, ...) first") from None

    def user_params(self) -> dict:
        """The fitted parameters in the form the likelihood functions take."""
        return dict(self._fitted("_problem_params"))

    def filter(self, votes: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD):
        """Keep the users whose P(attentive) is at least ``threshold``; see
        :func:`comparemode.inference.filter.filter_votes`."""
        from comparemode.inference.filter import filter_votes

        return filter_votes(votes, self.users_, threshold=threshold)
