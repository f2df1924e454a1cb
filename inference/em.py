"""EM for the two-type user model: the fast path (docs/design.md section 5).

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

import dataclasses
import math
import time
import warnings
import weakref

import numpy as np
import pandas as pd

from comparemode._columnar import values_at
from comparemode._dist import chi2_1_ppf, chi2_1_sf
from comparemode._params import ParamsMixin
from comparemode._progress import Progress
from comparemode.constants import (
    BOUNDARY_TOL,
    CHECK_DRAWS,
    CODE_TIE,
    DEFAULT_MAX_ITER,
    DEFAULT_N_STARTS,
    DEFAULT_THRESHOLD,
    DEFAULT_TOL,
    INTERVAL_PROB,
    LOGLIK_DECREASE_TOL,
    MISFIT_LEVEL,
    USER,
)
from comparemode.counting import count_and_resolve
from comparemode.data import is_lazy_input, validate_votes
from comparemode.errors import (
    BoundaryWarning,
    ConfigError,
    LikelihoodDecreaseError,
    NotFittedError,
)
from comparemode.inference.continuous import ContinuousQuality
from comparemode.inference.crossfit import describe_votes, two_type_crossfit
from comparemode.inference.filter import filter_fdr, filter_votes, user_codes
from comparemode.inference.misfit import (
    checks_table,
    dispersion_check,
    drift_check,
    favoured_counts,
    favoured_from_counts,
    vote_agreement,
    warn_failed,
)
from comparemode.inference.model_checks import dispersion_statistic
from comparemode.inference.steps import LOG_MAX, LOG_MIN, Problem
from comparemode.models.counts import VoteCounts
from comparemode.models.likelihood import (
    CARELESS_MODES,
    TIE_MODES,
    posterior_attentive,
)
from comparemode.models.simulate import replicate_user_counts
from comparemode.models.stats import (
    EncodedVotes,
    Patterns,
    UserStats,
    aggregate,
    patterns_for,
)
from comparemode.reference import (
    ESTIMATE,
    Reference,
    check_identifiable,
    check_mu_identifiable,
    check_mu_value,
    encode_counts,
    encode_rows,
)

__all__ = ["TwoTypeEM"]

#: A decrease within this many ulps of the log-likelihood's largest cancelling terms
#: (``Problem.rounding_scale``) is rounding, not a decreasing EM.
_ROUNDING_ULPS = 64.0
#: Iterations of each start before the best start is run to convergence.
_SHORT_RUN = 5
#: The misfit checks, in the order of ``checks_``.
_CHECK_NAMES = ("mu", "favoured-model dispersion", "drift")
#: The dispersion check runs on at most this many users, drawn at random (seeded): its
#: parametric bootstrap redraws every user's votes, and at this size the check already
#: detects the departures it looks for (the misspecification benchmark runs 3,000 users).
CHECK_MAX_USERS = 20_000
#: Bound on |logit mu| in the profile likelihood (mu from about 6e-6 to 1 - 6e-6).
_LOGIT_MU_MAX = 12.0


def _users_sample(enc: EncodedVotes, mu_row: np.ndarray, pairs, size: int, rng):
    """The votes of at most ``size`` users drawn at random (all users if there are fewer), users
    recoded in their original order; with the per-vote mu and model pairs of those votes (None
    where not given)."""
    if enc.n_users <= size:
        return enc, mu_row, pairs
    chosen = np.zeros(enc.n_users, dtype=bool)
    chosen[rng.choice(enc.n_users, size, replace=False)] = True
    code = np.cumsum(chosen) - 1
    sel = chosen[enc.user]
    sub = EncodedVotes(user=code[enc.user[sel]], code=enc.code[sel], n_users=size, mu=None if enc.mu is None else enc.mu[sel])
    return sub, None if mu_row is None else mu_row[sel], None if pairs is None else (pairs[0][sel], pairs[1][sel])


def _time_order(votes: pd.DataFrame, order) -> np.ndarray | None:
    """Positions of the votes in time order (stable), from the column ``order``; None keeps the
    row order."""
    if order is None:
        return None
    if not isinstance(order, str) or order not in votes.columns:
        raise ConfigError(f"order must name a column of the votes that orders each user's votes in time; got {order!r}, columns {list(votes.columns)}")
    col = votes[order]
    if col.isna().any():
        rows = list(votes.index[col.isna().to_numpy()][:5])
        raise ConfigError(f"order column {order!r} is missing on {int(col.isna().sum())} vote(s), first rows {rows}; give every vote a time")
    try:
        return np.argsort(col.to_numpy(), kind="stable")
    except TypeError:
        raise ConfigError(f"order column {order!r} mixes values that cannot be sorted (dtype {col.dtype}); use times or numbers") from None


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
            if x <= LOG_MIN + BOUNDARY_TOL or x >= LOG_MAX - BOUNDARY_TOL:
                bound = "lower bound 1e-3" if x <= LOG_MIN + BOUNDARY_TOL else "upper bound 1e6"
                found.append(f"{name}_{part} = {value:.4g} is at the {bound} of a Beta parameter")
    if found:
        warnings.warn(
            "EM estimate(s) on the boundary of the parameter range: " + "; ".join(found) + ". A boundary value "
            "is not an interior maximum: read it as 'this extreme or beyond', and expect it to move with more data",
            BoundaryWarning,
            stacklevel=4,
        )


def _estimates_mu(ref) -> bool:
    """Whether a fit with this reference estimates mu (two models, mu not given)."""
    return ref.kind == "scalar" and ref.mu is None


def _totals(stats: UserStats, problem: Problem) -> tuple[float, float, float, float]:
    """All users' votes, ties, decisive votes and decisive picks of the stronger model (0
    without ``k``): from the count patterns, each weighted by its number of users, when they
    carry the ties (no pass over the users); from the users' counts when ties are dropped."""
    pat = problem.pat
    if problem.ties == "drop":
        n, t = float(stats.n.sum()), float(stats.t.sum())
        k = float(stats.k.sum()) if stats.k is not None else 0.0
        return n, t, n - t, k
    w = pat.weight
    n, t = float(pat.n @ w), float(pat.t @ w)
    k = float(pat.k @ w) if pat.k is not None else 0.0
    return n, t, n - t, k


class TwoTypeEM(ParamsMixin):
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
        Seed of the random starts and of the misfit checks' bootstrap
        (``numpy.random.default_rng``).
    verbose : bool
        Print progress to standard error.
    checks : bool
        Run the misfit checks after the fit (default; :mod:`comparemode.inference.misfit`): a
        given mu against the votes, favoured-model dispersion, drift. A failed check raises a
        :class:`~comparemode.errors.MisfitWarning` and fits the models that might fit better.
    check_draws : int
        Parametric bootstrap replicates behind the dispersion check (at least 20).
    mu_spread : bool
        Two models: each attentive user has an own mu_u ~ Beta(mu kappa, (1 - mu) kappa)
        (users' topics separate the models by different amounts); kappa is estimated.
    warm_start : bool
        Start the next ``fit`` from this fit's parameters (one run; ``n_starts`` is then not
        used), as a streaming refit on yesterday's counts plus today's does
        (``starts_["warm"]`` says which fits did). The first fit, or a fit whose parameters
        do not carry over (other settings), starts cold.

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
    reference_ : dict describing where mu came from (with ``mu="estimate"`` its estimate).
    mu_interval_ : with mu estimated, its estimate and 94% profile-likelihood interval.
    n_params_ : free parameters (for information criteria).
    checks_ : DataFrame, one row per misfit check: ``status`` (passed, FAILED, not run),
        observed and expected values, interval, statistic, p-value, the check's level and a
        message that says what the data do; ``checks_summary()`` in brief.
    alternatives_ : after a failed check, the candidate models with log-likelihood, free
        parameters and AIC, the best ``chosen``; ``alternative_`` the chosen model (fitted;
        None when this fit is best) and ``alternative_users_`` its user table.

    ``users_`` also has ``n_favoured``, ``n_informative`` and ``expected_favoured``: the
    decisive picks of the model the reference favours, the votes on which it favours one, and
    an attentive user's expected picks of it (the filters' win rates come from these).
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
        checks: bool = True,
        check_draws: int = CHECK_DRAWS,
        mu_spread: bool = False,
        warm_start: bool = False,
    ):
        self.careless = careless
        self.ties = ties
        self.n_starts = n_starts
        self.max_iter = max_iter
        self.tol = tol
        self.random_seed = random_seed
        self.verbose = verbose
        self.checks = checks
        self.check_draws = check_draws
        self.mu_spread = mu_spread
        self.warm_start = warm_start

    # -- configuration (get_params / set_params / repr: ParamsMixin) ---------------------
    def _check_settings(self) -> None:
        if self.careless not in CARELESS_MODES:
            raise ConfigError(f"careless must be one of {CARELESS_MODES}, got {self.careless!r}")
        if self.ties not in TIE_MODES:
            raise ConfigError(f"ties must be one of {TIE_MODES}, got {self.ties!r}")
        for name in ("checks", "mu_spread"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("n_starts", "max_iter", "check_draws"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.check_draws < 20:
            raise ConfigError(f"check_draws must be at least 20 (bootstrap replicates behind the misfit checks), got {self.check_draws!r}")
        if not (isinstance(self.tol, (int, float)) and self.tol > 0 and math.isfinite(self.tol)):
            raise ConfigError(f"tol must be a positive finite number, got {self.tol!r}")
        seed = self.random_seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ConfigError(f"random_seed must be a non-negative integer or None, got {seed!r}")

    # -- fitting ---------------------------------------------------------------------
    def fit(self, votes, *, mu=None, strengths=None, scale: str = "bt", order: str | None = None) -> "TwoTypeEM":
        """Fit to a votes table, to :class:`~comparemode.models.counts.VoteCounts`, or to lazy
        votes (a Dask DataFrame, a directory or glob of Parquet files); see the class docstring
        for the data contract. Returns self.

        ``mu="estimate"`` (or ``{"model_x": "estimate"}``): two models, mu estimated with the
        rest (it is identified when users cast several votes). ``order``: a column that orders
        each user's votes in time, for the drift check (default: the table's row order).

        Every input goes through the same counts (docs/design.md section 11): the votes are
        counted, lazy votes counted on Dask in one pass (``n_passes_``), and the fit reads the
        counts, so the three give the same numbers. Counts keep no order: from counts (and from
        Dask) the drift check is reported as not run."""
        self._check_settings()
        progress = Progress(self.verbose)
        counts, ref, time_order = self._counted(votes, progress, order, mu=mu, strengths=strengths, scale=scale, allow_estimate=True)
        progress(f"encoding {counts.n_votes:,} votes (reference: {ref.source})")
        enc, user_index = encode_counts(counts, ref)
        self._in_order = (counts, ref) if counts.rows is not None else None  # encoded only if the drift check runs
        return self._fit(enc, ref, user_index, progress, time_order)

    def _counted(self, votes, progress, order, **reference):
        """``(counts, reference, time order)`` through the front door
        (:func:`comparemode.counting.count_and_resolve`), the votes' row order kept for the
        drift check; counts (and lazy votes, counted on Dask) keep no order."""
        lazy = is_lazy_input(votes)
        ordered = not (lazy or isinstance(votes, VoteCounts))
        if not ordered and order is not None:
            raise ConfigError("order= orders the votes in time, and vote counts keep no order: fit the votes in memory to check for drift")
        counts, ref, table = count_and_resolve(votes, keep_rows=ordered, progress=progress, **reference)
        # each vote's user as a position in users_ (the counts' user order), for the filter
        self._vote_users = (weakref.ref(votes), counts.rows[0]) if ordered and counts.rows is not None else None
        if lazy:
            self.n_passes_ = 1
        else:
            self.__dict__.pop("n_passes_", None)  # a previous Dask fit's count does not describe this one
        return counts, ref, (_time_order(table, order) if ordered else None)

    def user_codes_of(self, votes) -> np.ndarray | None:
        """The position in ``users_`` of every vote's user, when ``votes`` is the very table this
        estimator was fitted on (the codes the fit computed, so the filter does not look up
        every user id again); None otherwise. A sample of rows is checked against the table's
        user ids, so a table changed in place since the fit gets None."""
        held = getattr(self, "_vote_users", None)
        if held is None or held[0]() is not votes:
            return None
        codes = held[1]
        if len(codes) != len(votes):
            return None
        rows = np.unique(np.linspace(0, len(codes) - 1, min(len(codes), 257)).astype(np.int64))
        fitted = self.users_.index.take(codes[rows]).to_numpy(dtype=object)
        written = values_at(votes[USER], rows)  # a few rows: the column is not copied
        if any(not (f == w) for f, w in zip(fitted, written)):
            return None
        return codes

    def fit_encoded(self, enc: EncodedVotes, *, mu: float | None = None, user_index=None) -> "TwoTypeEM":
        """Fit from integer-encoded votes (the fast path; see :class:`EncodedVotes`).

        ``mu`` is P(stronger model wins) when ``enc`` carries no per-vote ``mu``.
        """
        self._check_settings()
        if enc.mu is None:
            value = None if mu == ESTIMATE else check_mu_value(mu, "mu")
            ref = Reference(kind="scalar", source="estimated" if value is None else "encoded", mu=value, model="stronger", other="weaker")
        else:
            ref = Reference(kind="row", source="encoded")
        if user_index is None:
            user_index = pd.RangeIndex(enc.n_users, name="user")
        self._in_order = enc  # the votes in the order given
        return self._fit(enc, ref, user_index, Progress(self.verbose))

    def _check_identifiable(self, enc: EncodedVotes, ref) -> None:
        if not _estimates_mu(ref):
            check_identifiable(enc, ref, self.careless)

    def _make_problem(self, pat: Patterns, ties: str, enc: EncodedVotes) -> Problem:
        return Problem(pat, self.careless, ties, estimate_mu=self._estimating_mu, mu_spread=self.mu_spread)

    def _fit(self, enc: EncodedVotes, ref, user_index, progress: Progress, time_order=None) -> "TwoTypeEM":
        if self.mu_spread and ref.kind != "scalar":
            raise ConfigError("mu_spread=True (each attentive user's own mu around mu) needs two models and a single mu, given or estimated")
        self._check_identifiable(enc, ref)
        t0 = time.perf_counter()
        estimate = _estimates_mu(ref)
        # with mu estimated the counts are taken relative to ref.model and s is recomputed
        stats = aggregate(enc, mu=(0.5 if estimate else ref.mu) if ref.kind == "scalar" else None)
        if estimate:
            check_mu_identifiable(enc, ref, self.careless, stats.d)
        self._fit_stats(stats, ref, user_index, progress, n_votes=enc.n_votes, t0=t0, enc=enc)
        if enc.mu is not None:  # per-vote mu: the favoured model differs from vote to vote
            self._favoured = self._favoured_from_votes(enc, self._problem_params)
        if self.checks:
            t1 = time.perf_counter()
            self.checks_ = self._run_checks(enc, ref, time_order)
            failed = int((~self.checks_["passed"]).sum())
            progress(f"misfit checks in {time.perf_counter() - t1:.2f}s: " + ("all passed" if not failed else f"{failed} FAILED"))
            if failed:
                t1 = time.perf_counter()
                self._fit_alternatives(enc, ref)
                best = self.alternatives_.index[self.alternatives_["chosen"]][0]
                progress(f"alternative models in {time.perf_counter() - t1:.2f}s: best fit {best}")
            warn_failed(self.checks_, stacklevel=4)
        self._in_order = None  # the votes in their order: read by the checks alone, freed once they ran
        return self

    def _n_params(self, p: dict) -> int:
        """Free parameters of the fitted two-type model (for information criteria)."""
        n = 1 + {"beta": 2, "shared": 1, "random": 0}[self.careless] + int("mu" in p) + int("mu_kappa" in p)
        n += {"model": 4, "davidson": 3, "drop": 0}[self.ties_]  # davidson: careless tie Beta and nu
        if "strengths" in p:
            n += len(p["strengths"]) - 1
        return n

    def _fit_alternatives(self, enc: EncodedVotes, ref) -> None:
        """After a failed check: the models that might fit better, by AIC. The two-type model
        with mu estimated (two models with a given mu), and the continuous-quality model with
        the same careless sub-model and mu as in this fit. Sets ``alternatives_`` (one row per
        model, the best ``chosen``), ``alternative_`` (the chosen model, fitted; None when this
        fit is best) and ``alternative_users_`` (its user table, P(attentive) in the column
        the filters read)."""
        p, user_index = self._user_inputs[3], self._user_inputs[4]
        quiet = Progress(False)
        rows = [{"model": "two-type, mu as fitted", "mu": self.params_.get("mu", np.nan), "loglik": self.loglik_, "n_params": self.n_params_}]
        models = {rows[0]["model"]: None}
        if "mu" in self.checks_.index and self.checks_.loc["mu", "status"] != "not run":
            alt = TwoTypeEM(**(self.get_params() | {"checks": False, "verbose": False}))
            alt._fit(enc, dataclasses.replace(ref, mu=None, source="estimated"), user_index, quiet)
            rows.append({"model": "two-type, mu estimated", "mu": alt.params_["mu"], "loglik": alt.loglik_, "n_params": alt.n_params_})
            models[rows[-1]["model"]] = alt
        if ref.kind == "scalar" and not self.mu_spread:
            alt = TwoTypeEM(**(self.get_params() | {"checks": False, "verbose": False, "mu_spread": True}))
            alt._fit(enc, dataclasses.replace(ref, mu=None, source="estimated"), user_index, quiet)
            rows.append({"model": "two-type, mu varies by user", "mu": alt.params_["mu"], "loglik": alt.loglik_, "n_params": alt.n_params_})
            models[rows[-1]["model"]] = alt
        if "strengths" not in p:
            cq = ContinuousQuality(careless=self.careless, ties="drop" if self.ties_ == "drop" else "model")
            mu = None if enc.mu is not None else (float(p["mu"]) if "mu" in p else float(self.params_["mu"]))
            cq.fit_encoded(enc, mu=mu, user_index=user_index)
            cq._ref = dataclasses.replace(ref, mu=mu) if ref.kind == "scalar" else ref
            rows.append({"model": "continuous quality, mu as fitted", "mu": cq.params_.get("mu", np.nan), "loglik": cq.loglik_, "n_params": cq.n_params_})
            models[rows[-1]["model"]] = cq
        out = pd.DataFrame(rows).set_index("model")
        out["aic"] = 2.0 * out["n_params"] - 2.0 * out["loglik"]
        out["delta_aic"] = out["aic"] - out["aic"].min()
        out["chosen"] = out["delta_aic"] == 0.0
        self.alternatives_ = out
        self.alternative_ = models[out.index[out["chosen"]][0]]
        self.alternative_users_ = None if self.alternative_ is None else self.alternative_.users_

    def _fit_stats(self, stats: UserStats, ref, user_index, progress: Progress, *, n_votes: int, t0: float, enc=None):
        """Everything after the pass over the votes: patterns, the EM runs and the results."""
        ties, pat = patterns_for(stats, self.ties)
        progress(
            f"aggregated {n_votes:,} votes from {stats.n_users:,} users into {pat.size:,} count patterns "
            f"in {time.perf_counter() - t0:.2f}s"
        )
        self._estimating_mu = _estimates_mu(ref)
        problem = self._make_problem(pat, ties, enc)
        rng = np.random.default_rng(self.random_seed)
        warm = self._warm_params(stats, rng, problem) if self.warm_start else None
        if warm is not None:  # the previous fit's parameters: one run from there (streaming refits)
            runs = [self._run(problem, warm, progress, 0, self.max_iter)]
        else:
            # "Short EM": every start runs a few iterations, the best one runs to convergence.
            short = self.max_iter if self.n_starts == 1 else min(self.max_iter, _SHORT_RUN)
            runs = [self._run(problem, self._start(i, stats, rng, problem), progress, i, short) for i in range(self.n_starts)]
        best_start = int(np.argmax([r["loglik"] for r in runs]))
        best = runs[best_start]
        if not best["converged"] and best["n_iter"] < self.max_iter:
            best = self._run(problem, best["params"], progress, best_start, self.max_iter - best["n_iter"], best)
        rows = [
            {"start": i, "loglik_short_run": r["loglik"], "n_iter_short_run": r["n_iter"], "chosen": i == best_start, "warm": warm is not None}
            for i, r in enumerate(runs)
        ]
        self.ties_ = ties
        self._ref = ref
        self._problem_params = best["params"]
        self.reference_ = ref.describe()
        if self._estimating_mu:
            self.reference_["mu"] = float(best["params"]["mu"])
        self.starts_ = pd.DataFrame(rows).set_index("start")
        self.loglik_history_ = pd.Series(best["history"], name="loglik", index=pd.RangeIndex(len(best["history"]), name="iteration"))
        self.loglik_ = best["loglik"]
        self.converged_ = best["converged"]
        self.stop_reason_ = "tolerance" if best["converged"] else "max_iter"
        self.n_iter_ = best["n_iter"]
        self.n_patterns_ = pat.size
        self.n_votes_ = n_votes
        self.params_ = self._params_series(best["params"], ref, ties)
        self.n_params_ = self._n_params(best["params"])
        self.alternatives_ = pd.DataFrame(columns=["mu", "loglik", "n_params", "aic", "delta_aic", "chosen"]).rename_axis("model")
        self.alternative_users_ = self.alternative_ = None
        self._user_inputs = (stats, pat, problem, best["params"], user_index)
        for stale in ("_users_cache", "_favoured"):
            self.__dict__.pop(stale, None)
        self.checks_ = checks_table(
            {name: {"reason": "checks=False"} for name in _CHECK_NAMES}, MISFIT_LEVEL  # replaced by _fit when the checks run
        )
        if self._estimating_mu:
            self.mu_interval_ = self._mu_interval(problem, best, INTERVAL_PROB)
        _warn_boundary(best["params"], self.careless, ties)
        progress(
            f"EM done: {self.stop_reason_} after {self.n_iter_} iterations, loglik {self.loglik_:.6g}, "
            f"pi = {best['params']['pi']:.4f}"
        )
        return self

    def _warm_params(self, stats: UserStats, rng: np.random.Generator, problem: Problem) -> dict | None:
        """``warm_start=True``: the previous fit's parameters as the start, when this estimator
        has fitted before with the same parameter set; None (a cold start) otherwise."""
        previous = getattr(self, "_problem_params", None)
        if previous is None:
            return None
        cold = self._start(0, stats, np.random.default_rng(0), problem)
        if set(previous) != set(cold) or any(np.shape(previous[k]) != np.shape(cold[k]) for k in cold if k != "strengths"):
            return None
        return {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in previous.items()}

    def _start(self, start: int, stats: UserStats, rng: np.random.Generator, problem: Problem) -> dict:
        n_tot, n_ties, n_dec, n_k = _totals(stats, problem)
        tie_rate = n_ties / n_tot if n_tot else 0.0
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
        if problem.estimate_mu:
            # careless picks of the model are 1/2 on average, so the overall rate is about
            # 1/2 + pi (mu - 1/2); start on the side of 1/2 the data point to
            d = n_dec
            lean = n_k / d - 0.5 if d else 0.0
            if abs(lean) < 0.01:
                lean = 0.01 if start % 2 == 0 else -0.01
            spread = 1.0 if start == 0 else math.exp(rng.normal(0.0, 0.3))
            p["mu"] = min(max(0.5 + spread * lean / pi, 0.02), 0.98)
        if problem.mu_spread:
            p["mu_kappa"] = 50.0 if start == 0 else math.exp(rng.uniform(math.log(5.0), math.log(500.0)))
        return p

    def _run(self, problem: Problem, p: dict, progress: Progress, start: int, max_iter: int, previous=None) -> dict:
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

    # -- misfit checks ------------------------------------------------------------------
    def _quiet_run(self, problem: Problem, p: dict) -> dict:
        return self._run(problem, p, Progress(False), 0, self.max_iter)

    def _profile_loglik(self, pat: Patterns, ties: str, mu: float, start: dict) -> dict:
        """EM with mu held at ``mu`` from ``start`` (the profile likelihood of mu)."""
        problem = Problem(dataclasses.replace(pat, mu=float(mu)), self.careless, ties, mu_spread=self.mu_spread)
        return self._quiet_run(problem, {k: v for k, v in start.items() if k != "mu"})

    def _profile_interval(self, pat: Patterns, ties: str, best: dict, prob: float) -> tuple[float, float]:
        """Profile-likelihood interval of mu at probability ``prob``: the mu whose profile
        log-likelihood is within ``chi2_1(prob) / 2`` of the maximum ``best`` (a fit with mu
        free). Regula falsi on logit mu, every step an EM run started from the nearest one."""
        from scipy.special import expit, logit

        c = float(chi2_1_ppf(prob)) / 2.0
        ll_hat = best["loglik"]
        x_hat = float(logit(best["params"]["mu"]))
        bounds = []
        for side in (-1.0, 1.0):
            edge = side * _LOGIT_MU_MAX
            lo_x, lo_g, start = x_hat, -c, best["params"]  # g = drop - c < 0 inside the interval
            x = x_hat + side * 0.05
            hi_x = hi_g = None
            for _ in range(40):  # find a point outside the interval
                if side * (x - edge) >= 0:
                    x = edge
                run = self._profile_loglik(pat, ties, float(expit(x)), start)
                g = ll_hat - run["loglik"] - c
                if g > 0:
                    hi_x, hi_g = x, g
                    break
                lo_x, lo_g, start = x, g, run["params"]
                if x == edge:
                    break
                drop = max(ll_hat - run["loglik"], 1e-12)
                x = x_hat + (x - x_hat) * min(max(math.sqrt(c / drop) * 1.2, 1.5), 10.0)
            if hi_x is None:  # the profile stays within c up to the edge of mu's range
                bounds.append(float(expit(edge)))
                continue
            side_flag = 0
            for _ in range(60):  # Illinois regula falsi between lo (g < 0) and hi (g > 0)
                x = hi_x - hi_g * (hi_x - lo_x) / (hi_g - lo_g)
                run = self._profile_loglik(pat, ties, float(expit(x)), start)
                g = ll_hat - run["loglik"] - c
                if abs(g) < 1e-4 * c or abs(hi_x - lo_x) < 1e-7:
                    break
                if g > 0:
                    hi_x, hi_g = x, g
                    if side_flag == 1:
                        lo_g /= 2.0
                    side_flag = 1
                else:
                    lo_x, lo_g, start = x, g, run["params"]
                    if side_flag == -1:
                        hi_g /= 2.0
                    side_flag = -1
            bounds.append(float(expit(x)))
        return bounds[0], bounds[1]

    def _mu_interval(self, problem: Problem, best: dict, prob: float) -> pd.Series:
        """Estimate and profile-likelihood interval of an estimated mu (``mu_interval_``)."""
        lo, hi = self._profile_interval(problem.pat, problem.ties, best, prob)
        return pd.Series({"estimate": float(best["params"]["mu"]), "lower": lo, "upper": hi, "prob": prob}, name="mu")

    def _mu_check(self, level: float, rng) -> dict:
        """Given mu against the votes: the EM with mu free, started from the given fit (so its
        likelihood is at least the given fit's) and from the usual first start; the
        likelihood-ratio test and the profile interval at ``1 - level``."""

        stats, pat, problem, p, _ = self._user_inputs
        given = float(self.params_["mu"])
        free = Problem(pat, self.careless, problem.ties, estimate_mu=True, mu_spread=self.mu_spread)
        runs = [self._quiet_run(free, dict(p, mu=given)), self._quiet_run(free, self._start(0, stats, rng, free))]
        best = max(runs, key=lambda r: r["loglik"])
        lr = max(2.0 * (best["loglik"] - self.loglik_), 0.0)
        lo, hi = self._profile_interval(pat, problem.ties, best, 1.0 - level)
        return {
            "observed": given,
            "expected": float(best["params"]["mu"]),
            "lower": lo,
            "upper": hi,
            "statistic": lr,
            "p_value": float(chi2_1_sf(lr)),
            "interval_prob": 1.0 - level,
        }

    def _check_design(self, enc: EncodedVotes, p: dict):
        """Per-vote P(model_a's answer is better) under the fit, and the model pairs replicates
        need (None: not a strengths model)."""
        if enc.mu is not None:
            return np.asarray(enc.mu, dtype=float), None
        mu = float(p["mu"]) if "mu" in p else float(self.params_["mu"])
        return np.where(enc.code // 3 == 1, mu, 1.0 - mu), None

    def _replicate_params(self, p: dict, ties: str, size: int) -> dict:
        """The fitted parameters, repeated ``size`` times, named as the replicator takes them."""
        full = lambda x: np.full(size, float(x))  # noqa: E731
        out = {"pi": full(p["pi"])}
        if "mu" in p:
            out["mu"] = full(p["mu"])
        if "mu_kappa" in p:
            out["mu_kappa"] = full(p["mu_kappa"])
        if self.careless == "beta":
            a, b = p["careless_first"]
            out.update(careless_first_mean=full(a / (a + b)), careless_first_kappa=full(a + b))
        elif self.careless == "shared":
            out["careless_first"] = full(p["careless_first"])
        kinds = ("attentive", "careless") if ties == "model" else ("careless",) if ties == "davidson" else ()
        for kind in kinds:
            a, b = p[f"tie_{kind}"]
            out.update({f"tie_{kind}_mean": full(a / (a + b)), f"tie_{kind}_kappa": full(a + b)})
        if ties == "davidson":
            out["davidson_nu"] = full(math.exp(p["log_nu"]))
        if "strengths" in p:
            out["strength"] = np.tile(np.asarray(p["strengths"], dtype=float), (size, 1))
        return out

    def _replicated_dispersion(self, enc: EncodedVotes, p: dict, pairs, rng) -> np.ndarray:
        """Favoured-model dispersion index of bootstrap replicates of the fitted model on the
        observed design (with ties left out of the likelihood, on the decisive votes only)."""
        ties = self.ties_
        if ties == "drop":  # the model says nothing about ties: replicate the decisive votes
            keep = enc.outcome != CODE_TIE
            enc = EncodedVotes(user=enc.user[keep], code=enc.code[keep], n_users=enc.n_users, mu=None if enc.mu is None else enc.mu[keep])
            pairs = None if pairs is None else (pairs[0][keep], pairs[1][keep])
        scalar = enc.mu is None
        draws = int(self.check_draws)
        chunk = max(1, int(2_000_000 // max(enc.n_users, 1)))
        mu = float(p["mu"]) if "mu" in p else (float(self.params_["mu"]) if scalar else None)
        n_user = np.bincount(enc.user, minlength=enc.n_users)
        out = []
        for lo in range(0, draws, chunk):
            size = min(chunk, draws - lo)
            rep = replicate_user_counts(enc, self._replicate_params(p, ties, size), careless=self.careless, ties=ties, mu=mu, rng=rng, pairs=pairs, first=False)
            if scalar:
                k, d = rep["n_stronger"], n_user - rep["n_ties"]
            else:
                k, d = rep["n_favoured"], rep["n_favoured_decisive"]
            out.append(dispersion_statistic(k, d))
        return np.concatenate(out)

    def _run_checks(self, enc: EncodedVotes, ref, time_order) -> pd.DataFrame:
        """The misfit checks of this fit (see :mod:`comparemode.inference.misfit`).

        Each pass over the votes is made once: the dispersion and drift checks need a user with
        two or more informative votes, and the drift check counts every user's informative votes
        anyway, so the grouped votes are read for that count only after a fit from counts (which
        keep no order, and no drift check). With two models and one mu a vote's mu follows
        from its code (:meth:`_vote_agreement`), so no per-vote mu is made for the votes."""
        stats, pat, problem, p, _ = self._user_inputs
        rng = np.random.default_rng(None if self.random_seed is None else [int(self.random_seed), 1])
        per_code = ref.kind == "scalar"
        mu_row, pairs = (None, None) if per_code else self._check_design(enc, p)
        row = self._votes_in_order()
        drift = None if row is None else self._drift(row, p, time_order, per_code)
        if drift is not None:
            n_checked = drift["n_users"]
        else:
            d = np.bincount(enc.user, weights=self._vote_agreement(enc, p, per_code, mu_row)[0], minlength=enc.n_users)
            n_checked = int((d >= 2).sum())
        rows = {}
        mu_applies = ref.kind == "scalar" and not self._estimating_mu
        if n_checked == 0:
            reason = "no user cast two or more decisive votes on which the reference favours a model"
            rows["favoured-model dispersion"] = {"reason": reason}
            rows["drift"] = {"reason": reason}
        else:
            s_enc, s_mu, s_pairs = _users_sample(enc, mu_row, pairs, CHECK_MAX_USERS, rng)
            s_inf, s_agree = self._vote_agreement(s_enc, p, per_code, s_mu)
            k = np.bincount(s_enc.user, weights=s_agree & s_inf, minlength=s_enc.n_users)
            d_s = np.bincount(s_enc.user, weights=s_inf, minlength=s_enc.n_users)
            rows["favoured-model dispersion"] = dispersion_check(float(dispersion_statistic(k, d_s)), self._replicated_dispersion(s_enc, p, s_pairs, rng))
            rows["favoured-model dispersion"].update(n_users=s_enc.n_users, draws=int(self.check_draws))
            if drift is None:
                rows["drift"] = {"reason": "fitted from vote counts, which keep no order of the votes: fit the votes themselves to check for drift"}
            else:
                rows["drift"] = drift
        ran = sum(np.isfinite(r.get("p_value", np.nan)) for r in rows.values()) + int(mu_applies)
        if mu_applies:
            rows = {"mu": self._mu_check(MISFIT_LEVEL / max(ran, 1), rng), **rows}
        else:
            why = "mu is estimated, not given" if self._estimating_mu else "mu is not a single given number (many models or a per-vote mu)"
            rows = {"mu": {"reason": why}, **rows}
        return checks_table(rows, MISFIT_LEVEL)

    def _vote_agreement(self, enc: EncodedVotes, p, per_code: bool, mu_row=None):
        """:func:`vote_agreement` of the votes under the fit (``mu_row``: their mu, if at hand).
        With two models and one mu (``per_code``) a vote's mu follows from its code (which model
        was shown first), so the two are decided for the six codes and looked up, with no
        per-vote mu."""
        if not per_code:
            return vote_agreement(enc.outcome, self._check_design(enc, p)[0] if mu_row is None else mu_row)
        codes = np.arange(6, dtype=np.int8)
        mu_code = self._check_design(EncodedVotes(user=np.zeros(6, np.intp), code=codes, n_users=1), p)[0]
        informative, agree = vote_agreement(codes % 3, mu_code)
        return informative[enc.code], agree[enc.code]

    def _drift(self, row: EncodedVotes, p, time_order, per_code: bool) -> dict:
        """The drift check on the votes in their own order (the fit itself reads them grouped,
        from the counts), put in time order when ``time_order`` is given."""
        informative, agree = self._vote_agreement(row, p, per_code)
        if time_order is None:
            return drift_check(row.user, informative, agree, row.n_users)
        return drift_check(row.user[time_order], informative[time_order], agree[time_order], row.n_users)

    def _votes_in_order(self) -> EncodedVotes | None:
        """The fitted votes encoded in their own order (what the drift check reads), or None
        after a fit from counts."""
        src = getattr(self, "_in_order", None)
        if src is None or isinstance(src, EncodedVotes):
            return src
        counts, ref = src
        return encode_counts(counts, ref, rows=True)[0]

    # -- votes one by one (cross-fitting) ---------------------------------------------------
    def _encode_again(self, votes: pd.DataFrame) -> EncodedVotes:
        """The fitted votes encoded as at fit time (the reference the fit used)."""
        return encode_rows(votes, self._ref)[0]

    def _vote_attentive(self, enc: EncodedVotes, mu_row: np.ndarray, p: dict) -> np.ndarray:
        """Attentive log-likelihood of every vote under the fit (0 for a tie: an attentive
        user's tie habit is the tie part of the model)."""
        out = enc.outcome
        with np.errstate(divide="ignore"):
            return np.where(out == 0, np.log(mu_row), np.where(out == 1, np.log1p(-mu_row), 0.0))

    def vote_terms(self, votes: pd.DataFrame) -> dict:
        """The fitted votes one by one, as the model sees them: ``user`` (row of ``users_``),
        ``outcome`` (0 model_a won, 1 model_b won, 2 tie), ``mu`` (P(model_a's answer is
        better) under the fit), ``attentive`` (each vote's attentive log-likelihood),
        ``informative`` and ``agree`` (decisive with a favoured model, and picked it). Used by
        the cross-fitted filter; ``votes`` must be the table the model was fitted on."""
        self._fitted("_user_inputs")
        votes = validate_votes(votes)
        p = self._problem_params
        enc = self._encode_again(votes)
        mu_row, _ = self._check_design(enc, p)
        user = user_codes(self._user_inputs[4], votes[USER])
        out = describe_votes(enc.outcome, mu_row, user, self._vote_attentive(enc, mu_row, p))
        if enc.mu is None:  # two models: did the vote pick the model mu is about
            shown_first = enc.code // 3 == 1
            out["picked_model"] = ((enc.outcome == 0) & shown_first) | ((enc.outcome == 1) & ~shown_first)
        return out

    def crossfit_p_attentive(self, votes: pd.DataFrame, folds="loo", random_seed: int | None = 0, terms: dict | None = None) -> pd.Series:
        """P(attentive) of every vote's user from the user's *other* votes: with ``folds="loo"``
        (default) every vote is decided by all other votes of its user; with an integer ``K``
        each user's votes are split at random into ``K`` folds (seeded) and every fold is
        decided by the other folds. A vote's own outcome thus never enters its decision (the
        population parameters are the fit's, which one vote moves by O(1/N)). Returns a
        Series aligned with the votes' index. ``terms``: :meth:`vote_terms` of these votes, if
        already at hand."""
        return two_type_crossfit(self, votes, folds=folds, random_seed=random_seed, terms=terms)

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
            out["mu"] = p["mu"] if _estimates_mu(ref) else ref.mu
        if "mu_kappa" in p:  # attentive users' own mu ~ Beta(mu kappa, (1 - mu) kappa)
            m, kappa = out["mu"], p["mu_kappa"]
            out.update(mu_kappa=kappa, mu_sd=math.sqrt(m * (1 - m) / (kappa + 1)))
        return pd.Series(out, name="estimate", dtype=float)

    def _users_table(self, stats: UserStats, pat: Patterns, problem: Problem, p: dict, user_index, favoured=None) -> pd.DataFrame:
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
        cols.update(zip(("n_favoured", "n_informative", "expected_favoured"), favoured if favoured is not None else self._favoured_counts(stats, p)))
        cols.update(
            loglik_attentive=l1[inv],
            loglik_careless=l0[inv],
            llr=llr[inv],
            llr_per_vote=per_vote[inv],
            llr_decisive_per_vote=per_decisive[inv],
            p_attentive=posterior_attentive(l1, l0, p["pi"])[inv],
        )
        return pd.DataFrame(cols, index=user_index)

    def _favoured_counts(self, stats: UserStats, p: dict):
        """Per user: decisive picks of the model the reference favours on the vote, the votes
        on which it favours one (mu not 1/2), and the picks of it an attentive user would make
        on average (the filter reports the favoured model's win rate from these). From the
        counts for two models; per vote, during the fit, for a per-vote mu (NaN where the fit
        saw per-user counts only)."""
        cached = self.__dict__.get("_favoured")
        if cached is not None:
            return cached
        if stats.k is None:
            nan = np.full(stats.n_users, np.nan)
            return nan, nan, nan
        return favoured_from_counts(stats.k, stats.n - stats.t, float(p["mu"]) if "mu" in p else float(self.params_["mu"]))

    def _favoured_from_votes(self, enc: EncodedVotes, p: dict):
        mu_row, _ = self._check_design(enc, p)
        return favoured_counts(enc.user, enc.n_users, enc.outcome, mu_row)

    @property
    def users_(self) -> pd.DataFrame:
        """One row per user (see the class docstring). Built from the fitted patterns on
        first access and kept; a million users take a few tens of milliseconds."""
        cached = self.__dict__.get("_users_cache")
        if cached is None:
            cached = self._users_table(*self._fitted("_user_inputs"))
            self.__dict__["_users_cache"] = cached
        cached.attrs["checks"] = self.checks_summary()
        return cached

    def checks_summary(self) -> dict:
        """The misfit checks in brief (JSON-able): whether all passed, the failed checks with
        their messages, the family-wise level, and the better-fitting model where one was
        found (``alternatives_``). Filters read it from ``users_.attrs["checks"]``."""
        table = self._fitted("checks_")
        failed = table[~table["passed"]]
        out = {
            "passed": bool(failed.empty),
            "ran": [str(n) for n in table.index[table["status"] != "not run"]],
            "not_run": {str(n): str(r["message"]) for n, r in table[table["status"] == "not run"].iterrows()},
            "failed": {str(n): str(r["message"]) for n, r in failed.iterrows()},
            "level": float(table.attrs.get("level", MISFIT_LEVEL)),
        }
        alt = self.__dict__.get("alternatives_")
        if alt is not None and not alt.empty:
            out["better_fit"] = str(alt.index[alt["chosen"]][0])
        return out

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

    def filter(self, votes: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, *, uninformative: str = "keep"):
        """Keep the users whose P(attentive) is at least ``threshold``; see
        :func:`comparemode.inference.filter.filter_votes`."""
        return filter_votes(votes, self, threshold=threshold, uninformative=uninformative)

    def filter_fdr(self, votes: pd.DataFrame, alpha: float = 0.1, *, uninformative: str = "keep"):
        """Keep the largest set of users whose expected careless share is at most ``alpha``;
        see :func:`comparemode.inference.filter.filter_fdr`. Where a misfit check failed, the
        result's summary says the promise is void and ``alternative`` holds the same rule under
        the better-fitting model."""
        return filter_fdr(votes, self, alpha=alpha, uninformative=uninformative)
