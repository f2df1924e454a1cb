"""The continuous-quality user model fitted by maximum likelihood: the fast path's alternative to
two types (docs/design.md sections 3 and 9).

Each user casts a share ``theta_u ~ Beta(c, d)`` of decisive votes attentively and the rest by
position: with ``careless="beta"`` (the default, and the two-type model's careless sub-model) a
per-user first-position rate ``rho_u ~ Beta(a, b)``, with ``"shared"`` one rate, with
``"random"`` 1/2. Everybody's tie propensity follows one Beta. ``theta_u`` and ``rho_u`` are
integrated out exactly (:func:`comparemode.models.alternatives.continuous_loglik`), and the
parameters maximise that likelihood (L-BFGS-B on log parameters with the analytic gradient,
from several starts; the tie Beta separates and is fitted on its own).

"Careless" on the continuum means ``theta_u < attentive_share`` (default 1/2: most of the
user's votes careless), so ``users_["p_attentive"] = P(theta_u >= attentive_share | votes)``,
which the package's filters take as they take the two-type model's P(attentive).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, logit, logsumexp

from comparemode._params import ParamsMixin
from comparemode._progress import Progress
from comparemode.constants import USER
from comparemode.counting import encode_any
from comparemode.data import validate_votes
from comparemode.errors import ConfigError, NotFittedError
from comparemode.inference.crossfit import check_crossfit_args, describe_votes, unit_of
from comparemode.inference.filter import user_codes
from comparemode.inference.misfit import favoured_counts
from comparemode.inference.steps import LOG_MAX, LOG_MIN, fit_tie_beta
from comparemode.models.alternatives import (
    CONTINUOUS_CARELESS_MODES,
    VoteTypes,
    continuous_loglik,
    continuous_prob_attentive,
    continuous_quality_mean,
    continuous_terms,
    term_parts,
    term_values,
    vote_types,
)
from comparemode.models.likelihood import log_betabinom_seq
from comparemode.reference import ESTIMATE, encode_rows

__all__ = ["ContinuousQuality"]

_TIES = ("model", "drop")
#: Starting (mean, concentration) of the quality Beta: mostly attentive, U-shaped, concentrated.
_STARTS = ((0.7, 2.0), (0.5, 0.5), (0.8, 10.0), (0.4, 1.0))


def _unpack(x: np.ndarray, careless: str) -> dict:
    p = {"quality": (math.exp(x[0]), math.exp(x[1]))}
    if careless == "beta":
        p["careless_first"] = (math.exp(x[2]), math.exp(x[3]))
    elif careless == "shared":
        p["careless_first"] = float(expit(x[2]))
    return p


def _objective(x: np.ndarray, vt, terms, careless: str):
    """Minus the decisive-vote log-likelihood (ties left out: they separate) and its gradient
    in the unconstrained parameters ``x``. Each term's derivatives depend only on its (i, D)
    and (g, m) pairs, so the softmax weights are summed per pair and the special functions run
    on the pairs."""
    p = _unpack(x, careless)
    c, d = p["quality"]
    parts = term_parts(terms, p)
    w_quality = np.zeros(terms.pair_i.size)  # softmax weight of the terms on each (i, D) pair
    w_position = np.zeros(terms.pos_g.size)
    value = 0.0
    for b in terms.buckets:
        vals = term_values(b, parts)
        lse = logsumexp(vals, axis=-1, keepdims=True)
        sw = np.exp(vals - lse) * vt.weight[b.rows][:, None]
        value += float(np.dot(vt.weight[b.rows], lse[:, 0]))
        w_quality += np.bincount(b.pair_index.ravel(), weights=sw.ravel(), minlength=w_quality.size)
        w_position += np.bincount(b.pos_index.ravel(), weights=sw.ravel(), minlength=w_position.size)
    pi_, pD = terms.pair_i, terms.pair_D
    common = digamma(c + d + pD) - digamma(c + d)
    grad = np.zeros(x.size)
    grad[0] = float(np.dot(w_quality, c * (digamma(c + pi_) - digamma(c) - common)))
    grad[1] = float(np.dot(w_quality, d * (digamma(d + pD - pi_) - digamma(d) - common)))
    g, m = terms.pos_g, terms.pos_m
    if careless == "beta":
        a, bb = p["careless_first"]
        cm = digamma(a + bb + m) - digamma(a + bb)
        grad[2] = float(np.dot(w_position, a * (digamma(a + g) - digamma(a) - cm)))
        grad[3] = float(np.dot(w_position, bb * (digamma(bb + m - g) - digamma(bb) - cm)))
    elif careless == "shared":
        grad[2] = float(np.dot(w_position, g - m * p["careless_first"]))
    return -value, -grad


class ContinuousQuality(ParamsMixin):
    """The continuous-quality model fitted by maximum likelihood (see the module docstring).

    Parameters
    ----------
    careless : {"beta", "shared", "random"}
        Careless votes' first-position rate: per user from a Beta (default, as the two-type
        model), one shared rate, or 1/2.
    ties : {"model", "drop"}
        One Beta tie propensity for everybody, or ties left out of the likelihood.
    attentive_share : float in (0, 1)
        A user counts as attentive when ``theta_u`` is at least this (default 1/2).
    n_starts : number of optimiser starts (at most 4; the best is kept).
    verbose : print progress.

    Data contract as :class:`~comparemode.TwoTypeEM` (``fit(votes, mu=..., strengths=...)``);
    ``mu="estimate"`` estimates mu for two models by maximising the profile likelihood.

    Attributes after ``fit``: ``params_`` (``quality_mean``, ``quality_kappa``, the careless
    and tie parameters, ``mu`` for two models), ``loglik_`` (votes' sequence log-likelihood,
    comparable with the two-type EM's ``loglik_`` on the same votes and tie setting),
    ``n_params_``, ``aic_``, ``users_`` (counts; the favoured model's picks ``n_favoured`` of
    ``n_informative`` votes and the attentive expectation ``expected_favoured``, as for
    ``TwoTypeEM``; ``quality`` = E[theta_u | votes], ``p_attentive`` = P(theta_u >=
    attentive_share | votes), ``loglik``).
    """

    def __init__(self, careless: str = "beta", ties: str = "model", attentive_share: float = 0.5, n_starts: int = 3, verbose: bool = False):
        self.careless = careless
        self.ties = ties
        self.attentive_share = attentive_share
        self.n_starts = n_starts
        self.verbose = verbose

    def _check(self) -> None:
        if self.careless not in CONTINUOUS_CARELESS_MODES:
            raise ConfigError(f"careless must be one of {CONTINUOUS_CARELESS_MODES}, got {self.careless!r}")
        if self.ties not in _TIES:
            raise ConfigError(f"ties must be one of {_TIES}, got {self.ties!r}")
        s = self.attentive_share
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 < float(s) < 1.0:
            raise ConfigError(f"attentive_share must be a share strictly between 0 and 1, got {s!r}")
        n = self.n_starts
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(_STARTS):
            raise ConfigError(f"n_starts must be an integer from 1 to {len(_STARTS)}, got {n!r}")

    def fit(self, votes: pd.DataFrame, *, mu=None, strengths=None, scale: str = "bt") -> "ContinuousQuality":
        """Fit to a votes table, vote counts or lazy votes (through the same counts); returns self."""
        self._check()
        ref, enc, user_index = encode_any(votes, mu=mu, strengths=strengths, scale=scale, allow_estimate=True)
        self.fit_encoded(enc, mu="estimate" if ref.kind == "scalar" and ref.mu is None else ref.mu, user_index=user_index)
        self._ref = ref
        self.reference_ = ref.describe() | ({"mu": float(self.params_["mu"])} if ref.kind == "scalar" else {})
        return self

    def fit_encoded(self, enc, *, mu=None, user_index=None) -> "ContinuousQuality":
        """Fit from encoded votes (:class:`~comparemode.models.stats.EncodedVotes`); ``mu`` is
        P(stronger model wins) for two-model codes, or ``"estimate"``."""
        self._check()
        say = Progress(self.verbose)
        if enc.mu is None and mu == ESTIMATE:
            best = None

            def profile(x):
                nonlocal best
                fit = self._fit_mu(enc, float(expit(x)))
                if best is None or fit["loglik"] > best["loglik"]:
                    best = fit
                return -fit["loglik"]

            from scipy.optimize import minimize_scalar  # imported on use: the command line need not load scipy.optimize

            res = minimize_scalar(profile, bounds=(-6.0, 6.0), method="bounded", options={"xatol": 1e-4})
            say(f"continuous model: mu estimated at {best['mu']:.4f} ({res.nfev} profile evaluations)")
            fit, n_extra = best, 1
        else:
            fit, n_extra = self._fit_mu(enc, None if enc.mu is not None else float(mu)), 0
        vt, terms, p, tie_ab = fit["vt"], fit["terms"], fit["params"], fit["tie"]
        self._vt, self._terms, self._p = vt, terms, dict(p, tie=tie_ab) if tie_ab is not None else p
        self.loglik_ = fit["loglik"]
        self.n_params_ = 2 + {"beta": 2, "shared": 1, "random": 0}[self.careless] + (2 if tie_ab is not None else 0) + n_extra
        self.aic_ = 2.0 * self.n_params_ - 2.0 * self.loglik_
        c, d = p["quality"]
        out = {"quality_mean": c / (c + d), "quality_kappa": c + d}
        if self.careless == "beta":
            a, b = p["careless_first"]
            out.update(careless_first_mean=a / (a + b), careless_first_kappa=a + b)
        elif self.careless == "shared":
            out["careless_first"] = p["careless_first"]
        if tie_ab is not None:
            out.update(tie_mean=tie_ab[0] / sum(tie_ab), tie_kappa=sum(tie_ab))
        if fit["mu"] is not None:
            out["mu"] = fit["mu"]
        self.params_ = pd.Series(out, name="estimate", dtype=float)
        index = user_index if user_index is not None else pd.RangeIndex(enc.n_users, name=USER)
        inv = vt.inverse
        n, t = vt.n[inv], vt.t[inv]
        ll = continuous_loglik(vt, terms, self._p, tie=tie_ab is not None)
        mu_row = enc.mu if enc.mu is not None else np.where(enc.code // 3 == 1, fit["mu"], 1.0 - fit["mu"])
        fav, inf, exp = favoured_counts(enc.user, enc.n_users, enc.outcome, mu_row)
        self.users_ = pd.DataFrame(
            {
                "n_votes": n,
                "n_ties": t,
                "n_decisive": n - t,
                "n_favoured": fav,
                "n_informative": inf,
                "expected_favoured": exp,
                "quality": continuous_quality_mean(terms, p)[inv],
                "p_attentive": continuous_prob_attentive(terms, p, float(self.attentive_share))[inv],
                "loglik": ll[inv],
            },
            index=index,
        )
        say(f"continuous model: loglik {self.loglik_:.6g}, quality mean {out['quality_mean']:.3f}, kappa {out['quality_kappa']:.3g}")
        return self

    def _fit_mu(self, enc, mu: float | None) -> dict:
        """Maximum likelihood with mu known (``mu``: two-model codes; None: per-vote mu)."""
        vt = vote_types(enc, mu)
        tie = self.ties == "model" and int(vt.t.sum()) > 0
        if not tie:  # the decisive votes only, as the two-type model with ties dropped sees them
            vt = _without_ties(vt)
        terms = continuous_terms(vt, self.careless)
        bounds = [(LOG_MIN, LOG_MAX)] * 2 + ([(LOG_MIN, LOG_MAX)] * 2 if self.careless == "beta" else [(-12.0, 12.0)] if self.careless == "shared" else [])
        best = None
        for mean, kappa in _STARTS[: self.n_starts]:
            x0 = [math.log(mean * kappa), math.log((1 - mean) * kappa)]
            if self.careless == "beta":
                x0 += [0.0, 0.0]
            elif self.careless == "shared":
                x0 += [float(logit(0.6))]
            from scipy.optimize import minimize  # imported on use (see above)

            res = minimize(_objective, np.array(x0), args=(vt, terms, self.careless), jac=True, method="L-BFGS-B", bounds=bounds)
            if best is None or res.fun < best.fun:
                best = res
        p = _unpack(best.x, self.careless)
        ll = -float(best.fun)
        tie_ab = None
        if tie:
            tie_ab = fit_tie_beta(vt)
            ll += float(np.dot(vt.weight, log_betabinom_seq(vt.t, vt.n, *tie_ab)))
        return {"vt": vt, "terms": terms, "params": p, "tie": tie_ab, "loglik": ll, "mu": mu}

    def _fitted(self):
        if not hasattr(self, "params_"):
            raise NotFittedError("ContinuousQuality is not fitted yet: call fit(votes, ...) first")

    def vote_terms(self, votes: pd.DataFrame) -> dict:
        """The fitted votes one by one (as ``TwoTypeEM.vote_terms``, without ``attentive``;
        ``encoded``: the encoded votes)."""
        self._fitted()
        if getattr(self, "_ref", None) is None:
            raise ConfigError("the votes one by one need the reference of the fit: fit this model with fit(votes, ...), not fit_encoded")
        votes = validate_votes(votes)
        enc, _ = encode_rows(votes, self._ref)
        mu_row = enc.mu if enc.mu is not None else np.where(enc.code // 3 == 1, float(self.params_["mu"]), 1.0 - float(self.params_["mu"]))
        out = describe_votes(enc.outcome, mu_row, user_codes(self.users_.index, votes[USER]))
        out["encoded"] = enc
        return out

    def crossfit_p_attentive(self, votes: pd.DataFrame, folds="loo", random_seed: int | None = 0, terms: dict | None = None) -> pd.Series:
        """P(theta_u >= attentive_share) of every vote's user from the user's other votes (all
        of them with ``folds="loo"``, the other folds of a seeded ``K``-fold split otherwise),
        under the fitted parameters; see :mod:`comparemode.inference.crossfit`. Ties do not
        enter (the tie part of this model separates from theta)."""
        from scipy import sparse


        k = check_crossfit_args(self, folds, random_seed)
        v = self.vote_terms(votes) if terms is None else terms
        enc = v["encoded"]
        user, outcome = v["user"], enc.outcome
        n_users = len(self.users_)
        dec = outcome != 2
        unit = unit_of(user, k, random_seed)
        if enc.mu is None:  # two models: four decisive vote types, as vote_types counts them
            mu = float(self.params_["mu"])
            typ = outcome.astype(np.int64) + 2 * (enc.code // 3).astype(np.int64)
            onehot = np.zeros((user.size, 4), dtype=np.int64)
            onehot[np.flatnonzero(dec), typ[dec]] = 1
            per_user = np.zeros((n_users, 4), dtype=np.int64)
            np.add.at(per_user, user, onehot)
            if unit is None:
                comp = per_user[user] - onehot
            else:
                per_unit = np.zeros((n_users * k, 4), dtype=np.int64)
                np.add.at(per_unit, unit, onehot)
                comp = per_user[user] - per_unit[unit]
            uniq, inv = np.unique(comp, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
            A = np.array([1 - mu, mu, mu, 1 - mu], dtype=float)
            first = np.array([True, False, True, False])
            vt = VoteTypes(n=uniq.sum(axis=1), t=np.zeros(len(uniq), np.int64), weight=np.ones(len(uniq)), inverse=np.arange(len(uniq)),
                           A=A, first=first, counts=sparse.csr_matrix(uniq.astype(float)), scalar=True)
        else:  # a per-vote mu: each unit's pattern is the user's other decisive votes
            key = np.arange(user.size) if unit is None else unit
            units, inv = np.unique(key, return_inverse=True)
            d_idx = np.flatnonzero(dec)
            order = d_idx[np.argsort(user[d_idx], kind="stable")]
            bounds = np.concatenate([[0], np.cumsum(np.bincount(user[d_idx], minlength=n_users))])
            rep = np.zeros(units.size, dtype=np.int64)
            rep[inv] = np.arange(user.size)  # a vote of each unit
            rows, cols = [], []
            for r, j in enumerate(rep):
                block = order[bounds[user[j]] : bounds[user[j] + 1]]
                mine = block == j if unit is None else unit[block] == unit[j]
                others = block[~mine]
                rows.append(np.full(others.size, r))
                cols.append(others)
            rows, cols = np.concatenate(rows), np.concatenate(cols)
            col_of = np.full(user.size, -1)
            col_of[d_idx] = np.arange(d_idx.size)
            mu_d = enc.mu[d_idx]
            A = np.where(outcome[d_idx] == 0, mu_d, 1.0 - mu_d)
            counts = sparse.csr_matrix((np.ones(rows.size), (rows, col_of[cols])), shape=(units.size, d_idx.size))
            d_unit = np.asarray(counts.sum(axis=1)).ravel().astype(np.int64)
            vt = VoteTypes(n=d_unit, t=np.zeros(units.size, np.int64), weight=np.ones(units.size), inverse=np.arange(units.size),
                           A=A, first=outcome[d_idx] == 0, counts=counts)
        terms = continuous_terms(vt, self.careless)
        prob = continuous_prob_attentive(terms, self._p, float(self.attentive_share))
        return pd.Series(prob[inv], index=votes.index, name="p_attentive_crossfit")


def _without_ties(vt):
    """The vote types with ties removed from the counts (``n`` becomes the decisive votes)."""
    from dataclasses import replace

    return replace(vt, n=vt.n - vt.t, t=np.zeros_like(vt.t))
