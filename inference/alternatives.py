"""The alternative user models fitted to votes (issue 5): the homogeneous model by EM (closed
form) and by MCMC, the continuous-quality model by MCMC. See
:mod:`comparemode.models.alternatives` for the models.

Same data contract as :class:`~comparemode.TwoTypeEM`: ``fit(votes, mu=..., strengths=...)``
on the canonical votes table; results as pandas objects with a trailing underscore, or a
DataTree for the Bayesian fits.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from comparemode._params import ParamsMixin
from comparemode._progress import Progress
from comparemode.constants import (
    DEFAULT_MAX_ITER,
    DEFAULT_TOL,
    INTERVAL_PROB,
    LOGLIK_DECREASE_TOL,
    USER,
)
from comparemode.counting import encode_any
from comparemode.errors import ConfigError, LikelihoodDecreaseError, NotFittedError
from comparemode.inference.continuous import ContinuousQuality
from comparemode.inference.diagnostics import sampler_diagnostics
from comparemode.inference.sampling import DEFAULT_SAMPLER_CONFIG as _TWO_TYPE_SAMPLER
from comparemode.inference.sampling import (
    add_user_log_likelihood,
    check_log_likelihood,
    merge_config,
    sample_nuts,
    user_coordinate,
)
from comparemode.inference.steps import fit_tie_beta
from comparemode.models.alternatives import (
    ALT_CARELESS_MODES,
    CONTINUOUS_CARELESS_MODES,
    alternative_parameter_names,
    alternative_params,
    build_alternative_pymc_model,
    careless_weights,
    continuous_loglik,
    continuous_prob_attentive,
    continuous_quality_mean,
    continuous_terms,
    homogeneous_loglik,
    vote_types,
)
from comparemode.models.pymc_model import check_priors

__all__ = ["HomogeneousEM", "BayesianAlternative", "ALTERNATIVE_KINDS"]

ALTERNATIVE_KINDS = ("homogeneous", "continuous")
_ALT_TIES = ("model", "drop")


def _encode(votes, mu, strengths, scale):
    return encode_any(votes, mu=mu, strengths=strengths, scale=scale)


def _check(careless, ties, kind="homogeneous"):
    modes = CONTINUOUS_CARELESS_MODES if kind == "continuous" else ALT_CARELESS_MODES
    if careless not in modes:
        raise ConfigError(f"careless must be one of {modes} for the {kind} model, got {careless!r}")
    if ties not in _ALT_TIES:
        raise ConfigError(f"ties must be one of {_ALT_TIES}, got {ties!r}")


class HomogeneousEM(ParamsMixin):
    """The homogeneous model (no user effect on the picks) fitted by EM.

    Every decisive vote is attentive with probability ``theta`` and careless otherwise
    (first-shown answer with a shared rate ``careless_first``, or 1/2 with
    ``careless="random"``); tie habits follow one Beta for all users (``ties="model"``) or are
    left out (``"drop"``). The E-step gives each decisive vote's probability of being
    attentive; ``theta`` and ``careless_first`` then have closed forms; the tie Beta is a
    separate maximum-likelihood fit (safeguarded Newton). The likelihood never decreases and
    the loop checks it.

    Attributes after ``fit``: ``params_`` (``theta``, ``careless_first``, ``tie_a``, ``tie_b``,
    ``tie_mean``), ``loglik_``, ``loglik_history_``, ``n_iter_``, ``converged_``, ``users_``
    (counts and each user's log-likelihood ``loglik``; no per-user type: everyone is alike).
    """

    def __init__(self, careless: str = "shared", ties: str = "model", max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, verbose: bool = False):
        self.careless = careless
        self.ties = ties
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose

    def fit(self, votes: pd.DataFrame, *, mu=None, strengths=None, scale: str = "bt") -> "HomogeneousEM":
        _check(self.careless, self.ties)
        ref, enc, user_index = _encode(votes, mu, strengths, scale)
        return self.fit_encoded(enc, mu=ref.mu, user_index=user_index)

    def fit_encoded(self, enc, *, mu=None, user_index=None) -> "HomogeneousEM":
        _check(self.careless, self.ties)
        say = Progress(self.verbose)
        vt = vote_types(enc, mu)
        tie = self.ties == "model" and int(vt.t.sum()) > 0
        N = np.asarray(vt.counts.T @ vt.weight).ravel()  # votes of each type, all users
        A, first = vt.A, vt.first.astype(float)
        p = {"theta": 0.8, "careless_first": 0.5}
        if tie:
            p["tie"] = fit_tie_beta(vt)

        def loglik(q):
            return float(np.dot(vt.weight, homogeneous_loglik(vt, q, self.careless, tie=tie)))

        ll = loglik(p)
        history = [ll]
        converged = False
        W = float(vt.weight.sum())
        it = 0
        for it in range(1, self.max_iter + 1):
            rho = p["careless_first"] if self.careless == "shared" else 0.5
            att = p["theta"] * A
            car = (1 - p["theta"]) * (first * rho + (1 - first) * (1 - rho))
            r = att / (att + car)
            new = dict(p)
            new["theta"] = min(max(float(np.dot(N, r) / N.sum()), 1e-12), 1 - 1e-12)
            if self.careless == "shared":
                wc = N * (1 - r)
                if wc.sum() > 0:
                    new["careless_first"] = min(max(float(np.dot(wc, first) / wc.sum()), 1e-12), 1 - 1e-12)
            ll_new = loglik(new)
            if ll_new < ll - LOGLIK_DECREASE_TOL * (1 + abs(ll)):
                raise LikelihoodDecreaseError(f"homogeneous EM log-likelihood decreased from {ll!r} to {ll_new!r} at iteration {it}")
            gain = ll_new - ll
            p, ll = new, ll_new
            history.append(ll)
            if gain < self.tol * W:
                converged = True
                break
        say(f"homogeneous EM: {it} iterations, loglik {ll:.6g}, theta = {p['theta']:.4f}")
        self._p, self._vt, self._tie = p, vt, tie
        self.loglik_ = ll
        self.loglik_history_ = pd.Series(history, name="loglik", index=pd.RangeIndex(len(history), name="iteration"))
        self.n_iter_, self.converged_ = it, converged
        out = {"theta": p["theta"], "careless_first": p["careless_first"] if self.careless == "shared" else 0.5}
        if tie:
            a, b = p["tie"]
            out.update(tie_a=a, tie_b=b, tie_mean=a / (a + b), tie_kappa=a + b)
        self.params_ = pd.Series(out, name="estimate", dtype=float)
        ll_pat = homogeneous_loglik(vt, p, self.careless, tie=tie)
        index = user_index if user_index is not None else pd.RangeIndex(enc.n_users, name=USER)
        n = vt.n[vt.inverse]
        t = vt.t[vt.inverse]
        self.users_ = pd.DataFrame({"n_votes": n, "n_ties": t, "n_decisive": n - t, "loglik": ll_pat[vt.inverse]}, index=index)
        return self


class BayesianAlternative(ParamsMixin):
    """The homogeneous (``kind="homogeneous"``) or continuous-quality (``"continuous"``)
    model fitted by MCMC (PyMC), for model checking against the two-type model.

    ``model_config``: ``careless`` (homogeneous: ``"shared"``, default, or ``"random"``;
    continuous: ``"beta"``, default, the two-type model's per-user first-position rates, so
    that comparing the two asks only "two types or a continuum", or ``"shared"``,
    ``"random"``), ``ties`` (``"model"`` or ``"drop"``), ``priors`` (merged over
    :data:`comparemode.models.pymc_model.DEFAULT_PRIORS`; this model uses ``theta`` or
    ``quality_mean``/``quality_kappa``, ``careless_first`` or ``careless_first_mean``/
    ``careless_first_kappa``, ``tie_mean``/``tie_kappa``).
    ``sampler_config`` as for :class:`~comparemode.BayesianTwoType` (``draws``, ``tune``,
    ``chains``, ``cores``, ``target_accept``, ``random_seed``, ``progressbar``,
    ``log_likelihood``).

    ``fit`` returns the DataTree (also ``idata_``), with a ``log_likelihood`` group of one term
    per user (``votes``, dim ``user``) for ``arviz.loo`` / ``arviz.compare``;
    :meth:`pattern_log_likelihood` gives the same terms per count pattern. For the continuous
    model ``users_`` holds each user's posterior mean attentive share ``quality`` (a quality score, docs/design.md section 7)
    and ``p_attentive``, the posterior probability that the share is at least 1/2 (what the
    filters read).
    """

    #: ``careless`` None: the kind's default ("shared" homogeneous, "beta" continuous)
    DEFAULT_MODEL_CONFIG = {"careless": None, "ties": "model", "priors": {}}
    _DEFAULT_CARELESS = {"homogeneous": "shared", "continuous": "beta"}
    #: The two-type model's sampler defaults (PyMC's NUTS; nutpie is not offered here).
    DEFAULT_SAMPLER_CONFIG = {
        k: _TWO_TYPE_SAMPLER[k] for k in ("draws", "tune", "chains", "cores", "target_accept", "random_seed", "progressbar", "log_likelihood")
    }

    #: How the continuous model's likelihood is summed (``comparemode.models.alternatives.CONTINUOUS_METHODS``):
    #: ``"buckets"`` is the previous formulation, kept for ``benchmarks/report_speed.py --legacy``.
    _likelihood_method = "factored"

    def __init__(self, kind: str = "continuous", model_config: dict | None = None, sampler_config: dict | None = None):
        if kind not in ALTERNATIVE_KINDS:
            raise ConfigError(f"kind must be one of {ALTERNATIVE_KINDS}, got {kind!r}")
        self.kind = kind
        self.model_config = merge_config(self.DEFAULT_MODEL_CONFIG, model_config, "model_config")
        if self.model_config["careless"] is None:
            self.model_config["careless"] = self._DEFAULT_CARELESS[kind]
        self.sampler_config = merge_config(self.DEFAULT_SAMPLER_CONFIG, sampler_config, "sampler_config")
        check_log_likelihood(self.sampler_config["log_likelihood"])
        _check(self.model_config["careless"], self.model_config["ties"], kind)
        check_priors(self.model_config["priors"])
        self.model = None

    @property
    def param_names(self) -> list[str]:
        return alternative_parameter_names(self.kind, self.model_config["careless"], self._ties())

    def _ties(self):
        return getattr(self, "_ties_used", self.model_config["ties"])

    def build_model(self, votes: pd.DataFrame, *, mu=None, strengths=None, scale: str = "bt"):
        """Validate and encode the votes and build the PyMC model (no sampling)."""
        ref, enc, user_index = _encode(votes, mu, strengths, scale)
        return self.build_model_encoded(enc, mu=ref.mu, user_index=user_index)

    def build_model_encoded(self, enc, *, mu=None, user_index=None):
        cfg = self.model_config
        vt = vote_types(enc, mu)
        self._ties_used = "model" if cfg["ties"] == "model" and int(vt.t.sum()) > 0 else "drop"
        method = self._likelihood_method
        terms = continuous_terms(vt, cfg["careless"], legacy=method == "buckets") if self.kind == "continuous" else None
        self._vt, self._terms, self._enc, self._mu = vt, terms, enc, mu
        self._user_index = user_index if user_index is not None else pd.RangeIndex(enc.n_users, name=USER)
        self.model = build_alternative_pymc_model(
            vt, kind=self.kind, careless=cfg["careless"], ties=self._ties_used, priors=check_priors(cfg["priors"]), terms=terms,
            method=method,
        )
        return self.model

    def fit(self, votes: pd.DataFrame, *, mu=None, strengths=None, scale: str = "bt"):
        """Sample the posterior; returns the DataTree (also ``idata_``)."""
        self.build_model(votes, mu=mu, strengths=strengths, scale=scale)
        return self.sample()

    def fit_encoded(self, enc, *, mu=None, user_index=None):
        self.build_model_encoded(enc, mu=mu, user_index=user_index)
        return self.sample()

    def sample(self):
        """Sample the model last built by :meth:`build_model`; returns the DataTree."""
        if self.model is None:
            raise NotFittedError("build the model first: build_model(votes, ...) or fit(votes, ...)")
        import xarray as xr

        cfg = self.sampler_config
        say = Progress(cfg["progressbar"])
        say(f"sampling the {self.kind} model on {self._vt.size:,} patterns ({cfg['chains']} chains x {cfg['draws']} draws)")
        idata = sample_nuts(self.model, cfg, initvals=self._em_initvals())
        users = {USER: user_coordinate(self._user_index)}
        idata["user_data"] = xr.DataTree(xr.Dataset({"user_pattern": (USER, np.asarray(self._vt.inverse, dtype=np.int64))}, coords=users))
        idata.attrs.update(
            {
                "comparemode_model_id": f"comparemode.BayesianAlternative.{self.kind}",
                "model_config": json.dumps(self.model_config),
                "sampler_config": json.dumps(self.sampler_config),
            }
        )
        self.idata_ = idata
        self.__dict__.pop("_quality_cache", None)
        self.__dict__.pop("_pattern_ll_cache", None)
        add_user_log_likelihood(idata, self.pattern_log_likelihood, idata["user_data"]["user_pattern"], cfg["log_likelihood"])
        return idata

    def _em_initvals(self) -> dict:
        """Chains start at the maximum-likelihood estimate of the same model (the homogeneous
        EM; the continuous model's :class:`~comparemode.inference.continuous.ContinuousQuality`
        fit), not at the prior's centre: the mixture's likelihood can have a poor second mode
        with the roles of the attentive and careless parts swapped."""
        cfg = self.model_config
        clip = lambda x, lo, hi: float(min(max(x, lo), hi))  # noqa: E731
        init = {}
        if self.kind == "homogeneous":
            p = HomogeneousEM(careless=cfg["careless"], ties=self._ties()).fit_encoded(self._enc, mu=self._mu).params_
            init["theta"] = clip(p["theta"], 1e-3, 1 - 1e-3)
        else:
            p = ContinuousQuality(careless=cfg["careless"], ties=self._ties(), n_starts=2).fit_encoded(self._enc, mu=self._mu).params_
            init["quality_mean"] = clip(p["quality_mean"], 1e-3, 1 - 1e-3)
            init["quality_kappa"] = clip(p["quality_kappa"], 1e-2, 1e4)
        if cfg["careless"] == "beta":
            init["careless_first_mean"] = clip(p["careless_first_mean"], 1e-3, 1 - 1e-3)
            init["careless_first_kappa"] = clip(p["careless_first_kappa"], 1e-2, 1e5)
        elif cfg["careless"] == "shared":
            init["careless_first"] = clip(p["careless_first"], 1e-3, 1 - 1e-3)
        if self._ties() == "model":
            init["tie_mean"] = clip(p["tie_mean"], 1e-3, 1 - 1e-3)
            init["tie_kappa"] = clip(p["tie_kappa"], 1e-2, 1e5)
        return init

    def _fitted(self):
        if getattr(self, "idata_", None) is None:
            raise NotFittedError(f"BayesianAlternative({self.kind!r}) is not fitted yet: call fit(votes, ...) first")
        return self.idata_

    def _draw_params(self):
        post = self._fitted()["posterior"]
        vals = {n: np.asarray(post[n].values, dtype=float).reshape(-1) for n in self.param_names}
        return vals, (post.sizes["chain"], post.sizes["draw"])

    def pattern_log_likelihood(self) -> np.ndarray:
        """Each pattern's log-likelihood (one user's votes) for every draw: (chain, draw, pattern).
        Computed once per fit (the fit's ``log_likelihood`` group and
        :func:`~comparemode.inference.model_checks.compare_models` both read it) and returned
        read-only."""
        cached = self.__dict__.get("_pattern_ll_cache")
        if cached is not None and cached[0] is self._fitted():
            return cached[1]
        out = self._pattern_log_likelihood()
        out.flags.writeable = False
        self.__dict__["_pattern_ll_cache"] = (self.idata_, out)
        return out

    def _pattern_log_likelihood(self) -> np.ndarray:
        vals, shape = self._draw_params()
        size = shape[0] * shape[1]
        out = np.empty((size, self._vt.size))
        tie = self._ties() == "model"
        for s in range(size):
            p = alternative_params(self.kind, self.model_config["careless"], self._ties(), {k: v[s] for k, v in vals.items()})
            if self.kind == "homogeneous":
                out[s] = homogeneous_loglik(self._vt, p, self.model_config["careless"], tie=tie)
            else:
                out[s] = continuous_loglik(self._vt, self._terms, p, tie=tie, method=self._likelihood_method)
        return out.reshape(*shape, self._vt.size)

    def summary(self, interval_prob: float = INTERVAL_PROB) -> pd.DataFrame:
        import arviz as az

        return az.summary(self._fitted(), var_names=self.param_names, ci_kind="hdi", ci_prob=interval_prob, round_to="none")

    def diagnostics(self, thresholds: dict | None = None) -> pd.DataFrame:
        return sampler_diagnostics(self._fitted(), self.param_names, thresholds)

    @property
    def users_(self) -> pd.DataFrame:
        """One row per user: counts and, for the continuous model, ``quality`` (posterior mean
        of the user's attentive share, averaged over up to 500 draws, and ``p_attentive``,
        P(share >= 1/2), likewise)."""
        self._fitted()
        vt = self._vt
        n, t = vt.n[vt.inverse], vt.t[vt.inverse]
        cols = {"n_votes": n, "n_ties": t, "n_decisive": n - t}
        if self.kind == "continuous":
            cached = self.__dict__.get("_quality_cache")
            if cached is None:
                vals, shape = self._draw_params()
                size = shape[0] * shape[1]
                idx = np.linspace(0, size - 1, min(size, 500)).round().astype(int)
                acc, acc_p = np.zeros(vt.size), np.zeros(vt.size)
                for s in idx:
                    p = alternative_params(self.kind, self.model_config["careless"], self._ties(), {k: v[s] for k, v in vals.items()})
                    w = careless_weights(self._terms, p)  # once for both summaries
                    acc += continuous_quality_mean(self._terms, p, weights=w)
                    acc_p += continuous_prob_attentive(self._terms, p, weights=w)
                cached = (acc / idx.size, acc_p / idx.size)
                self.__dict__["_quality_cache"] = cached
            cols["quality"] = cached[0][vt.inverse]
            cols["p_attentive"] = cached[1][vt.inverse]
        return pd.DataFrame(cols, index=self._user_index)
