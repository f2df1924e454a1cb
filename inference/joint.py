"""Joint EM for many-model comparison data: model strengths and user types together
(docs/design.md section 3, case 4).

Nobody hands over mu: an attentive user's decisive vote picks model_a with probability
``sigmoid(beta_a - beta_b)`` (Bradley-Terry), where the strengths ``beta`` are estimated from
the same votes. Careless users pick by position (per-user rates from a Beta, a shared rate or
1/2), and each user's tie propensity follows a Beta distribution per type, as in
:class:`~comparemode.TwoTypeEM`.

With ``ties="davidson"`` an attentive user's ties are not a personal habit but follow
Davidson's (1970) tie model of the pair: ``P(a) : P(b) : P(tie) = e^{d/2} : e^{-d/2} : nu``
with ``d = beta_a - beta_b``, so ties are likeliest between models of equal strength; careless
users keep their Beta tie propensity. The strengths and ``log nu`` are then updated together
by a safeguarded Newton step of the gamma-weighted Davidson likelihood (concave in them),
accepted only when it does not lower it.

EM: the E-step is the two-type E-step with the attentive log-likelihood of every user
recomputed from the current strengths (one pass over the decisive votes). The M-step updates
pi, the careless and tie parameters as in ``TwoTypeEM`` and the strengths by one minorise-
maximise step of the gamma-weighted Bradley-Terry likelihood (Hunter 2004), which never
lowers it. Each model also plays one virtual win and one virtual loss against a model of
strength 0 (weight ``prior_games``), a weak prior that keeps the strengths finite when a
model never wins or never loses; the objective the EM climbs, and checks on every iteration,
is the observed log-likelihood plus that prior term.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from comparemode._progress import Progress
from comparemode.constants import (
    CHECK_DRAWS,
    CODE_A,
    CODE_TIE,
    MODEL_A,
    MODEL_B,
    WINNER,
)
from comparemode.data import validate_votes
from comparemode.errors import ConfigError, NotIdentifiableError
from comparemode.inference.em import TwoTypeEM
from comparemode.inference.steps import Problem
from comparemode.models.counts import VoteCounts, as_votes, count_votes, outcome_codes
from comparemode.models.likelihood import JOINT_TIE_MODES, davidson_logp
from comparemode.models.stats import EncodedVotes, Patterns
from comparemode.reference import Reference

__all__ = ["JointEM", "fit_bradley_terry", "encode_joint"]

#: Weight of the virtual win and loss each model plays against a model of strength 0.
DEFAULT_PRIOR_GAMES = 1.0
#: Bounds on Davidson's log tie parameter (nu from 1e-8 to e^10).
_LOG_NU_MIN, _LOG_NU_MAX = math.log(1e-8), 10.0


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _bt_objective(beta, a, b, a_won, w, prior_games):
    """Weighted Bradley-Terry log-likelihood of decisive votes plus the virtual games."""
    d = beta[a] - beta[b]
    ll = float(np.dot(w, np.where(a_won, _log_sigmoid(d), _log_sigmoid(-d))))
    return ll + prior_games * float(np.sum(_log_sigmoid(beta) + _log_sigmoid(-beta)))


def _best_shift(beta):
    """Shift the strengths to maximise the prior term (the likelihood ignores a common shift):
    Newton on the concave sum of log sigmoid(beta + c) + log sigmoid(-beta - c)."""
    from scipy.special import expit

    c = -float(np.mean(beta))
    for _ in range(50):
        q = expit(beta + c)
        grad = float(np.sum(1.0 - 2.0 * q))
        hess = -2.0 * float(np.sum(q * (1.0 - q)))
        step = -grad / hess
        c += step
        if abs(step) < 1e-13:
            break
    return beta + c


def _bt_mm_step(beta, a, b, a_won, w, prior_games, n_models):
    """One MM step (Hunter 2004) of the weighted Bradley-Terry likelihood with virtual games,
    p_i <- wins_i / sum over i's games of w / (p_i + p_opponent), then the common shift that
    maximises the prior term (the likelihood does not depend on it), so the slow drift of the
    overall level that plain MM shows does not hold up convergence. Neither part lowers the
    objective."""
    p = np.exp(beta - beta.max())  # scale-free: the virtual opponent is rescaled with it
    p0 = np.exp(-beta.max())
    winner = np.where(a_won, a, b)
    wins = np.bincount(winner, weights=w, minlength=n_models) + prior_games
    inv = w / (p[a] + p[b])
    denom = np.bincount(a, weights=inv, minlength=n_models) + np.bincount(b, weights=inv, minlength=n_models)
    denom += 2.0 * prior_games / (p + p0)
    new = np.log(wins / denom) + beta.max()
    return _best_shift(new) if prior_games > 0 else new - new.mean()


def _check_ml_strengths(a, b, a_won, models, prior_games) -> None:
    """Without virtual games (``prior_games=0``) the maximum-likelihood strengths are finite
    only if every model both wins and loses some decisive vote; refuse otherwise (the MM
    iteration would return NaN)."""
    if prior_games > 0:
        return
    n = len(models)
    winner = np.where(a_won, a, b)
    loser = np.where(a_won, b, a)
    wins = np.bincount(winner, minlength=n)
    losses = np.bincount(loser, minlength=n)
    bad = [str(m) for m, w, lo in zip(models, wins, losses) if w == 0 or lo == 0]
    if bad:
        raise NotIdentifiableError(
            f"with prior_games=0 the strengths are infinite: model(s) {bad[:10]} never win or never lose a decisive "
            "vote. Keep the default prior_games (virtual games that keep strengths finite) or add votes"
        )


def fit_bradley_terry(votes, *, weights=None, prior_games: float = DEFAULT_PRIOR_GAMES, max_iter: int = 2000, tol: float = 1e-10) -> pd.Series:
    """Plain (optionally weighted) Bradley-Terry strengths from the decisive votes of a votes
    table, by MM; ties are left out. Returns strengths centred to mean zero, by model."""
    if weights is not None and not isinstance(votes, pd.DataFrame):
        raise ConfigError("weights= are per vote: give the votes, not vote counts")
    votes = validate_votes(as_votes(votes)[0])
    if isinstance(prior_games, bool) or not isinstance(prior_games, (int, float, np.integer, np.floating)) or not (prior_games >= 0 and np.isfinite(prior_games)):
        raise ConfigError(f"prior_games must be a non-negative finite number, got {prior_games!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigError(f"max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not (tol > 0 and np.isfinite(tol)):
        raise ConfigError(f"tol must be a positive finite number, got {tol!r}")
    codes, models = pd.factorize(np.concatenate([votes[MODEL_A].to_numpy(dtype=object), votes[MODEL_B].to_numpy(dtype=object)]))
    n = len(votes)
    a_all, b_all = codes[:n], codes[n:]
    outcome = outcome_codes(votes[WINNER])
    dec = outcome != CODE_TIE
    if not dec.any():
        raise NotIdentifiableError(
            f"all {n:,} votes are ties: Bradley-Terry strengths come from decisive votes, and there are none"
        )
    try:
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"weights must be numbers, one per vote; got values such as {list(weights)[:5]!r}") from None
    if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ConfigError(f"weights must be one finite, non-negative number per vote ({n:,} votes); got shape {w.shape}")
    a, b, a_won, w = a_all[dec], b_all[dec], (outcome == CODE_A)[dec], w[dec]
    _check_ml_strengths(a, b, a_won, models, prior_games)
    beta = np.zeros(len(models))
    obj = _bt_objective(beta, a, b, a_won, w, prior_games)
    for _ in range(max_iter):
        new = _bt_mm_step(beta, a, b, a_won, w, prior_games, len(models))
        new_obj = _bt_objective(new, a, b, a_won, w, prior_games)
        beta, gain, obj = new, new_obj - obj, new_obj
        if gain < tol * (1 + abs(obj)):
            break
    return pd.Series(beta - beta.mean(), index=pd.Index(models.astype(str), name="model"), name="strength")


def encode_joint(votes, rows: bool = False):
    """Encode votes for the joint model (no reference), from their counts: the decisive-vote
    design (``user``, ``a``, ``b`` model codes, ``a_won``; ``models`` names; ``all_a``/``all_b``,
    ``all_user`` and ``all_outcome`` (0 model_a, 1 model_b, 2 tie) on every vote), the encoded
    votes for the per-user counts (their per-vote mu is a placeholder: the attentive term comes
    from the strengths) and the user index. ``votes``: a votes table or
    :class:`~comparemode.models.counts.VoteCounts`; the votes come grouped by user, context and
    outcome (what every fit reads), or with ``rows=True`` in the table's own row order."""
    counts = votes if isinstance(votes, VoteCounts) else count_votes(votes, keep_rows=rows)
    user, ctx, outcome = counts.vote_codes(rows)
    if len(counts.models) < 2:
        raise NotIdentifiableError("the votes compare fewer than two models")
    a_all = counts.contexts[MODEL_A].to_numpy()[ctx]
    b_all = counts.contexts[MODEL_B].to_numpy()[ctx]
    dec = outcome != CODE_TIE
    if not dec.any():
        raise NotIdentifiableError("every vote is a tie: with no decisive votes nothing separates the user types")
    user = user.astype(np.intp)
    design = {
        "user": user[dec],
        "a": a_all[dec],
        "b": b_all[dec],
        "a_won": outcome[dec] == CODE_A,
        "models": pd.Index(counts.models.astype(str), name="model"),
        "all_a": a_all,
        "all_b": b_all,
        "all_user": user,
        "all_outcome": outcome,
    }
    enc = EncodedVotes(user=user, code=outcome.astype(np.int8), n_users=counts.n_users, mu=np.full(len(user), 0.5), pairs=(a_all, b_all))
    return design, enc, counts.users


def _davidson_pair_arrays(pa, pb, wa, wb, wt, beta, log_nu):
    half = 0.5 * (beta[pa] - beta[pb])
    lse = np.logaddexp(np.logaddexp(half, -half), log_nu)
    return half, lse


def davidson_objective(x, pa, pb, wa, wb, wt, prior_games, derivatives=False):
    """Weighted Davidson log-likelihood of pair outcome weights plus the virtual games, as a
    function of ``x = (beta..., log nu)``; with ``derivatives`` also its gradient and Hessian.

    ``pa``, ``pb``: model codes of each pair; ``wa``, ``wb``, ``wt``: the weights of the pair's
    votes won by ``pa``, won by ``pb`` and tied. Concave in ``x``.
    """
    from scipy.special import expit

    beta, log_nu = x[:-1], x[-1]
    half, lse = _davidson_pair_arrays(pa, pb, wa, wb, wt, beta, log_nu)
    tot = wa + wb + wt
    value = float(np.sum(wa * half - wb * half + wt * log_nu - tot * lse))
    value += prior_games * float(np.sum(_log_sigmoid(beta) + _log_sigmoid(-beta)))
    if not derivatives:
        return value
    m = beta.size
    qa, qb, qt = np.exp(half - lse), np.exp(-half - lse), np.exp(log_nu - lse)
    ea, eb = qa + 0.5 * qt, qb + 0.5 * qt  # expected a- and b-features of the outcome
    grad = np.zeros(m + 1)
    grad[:m] += np.bincount(pa, weights=wa + 0.5 * wt - tot * ea, minlength=m)
    grad[:m] += np.bincount(pb, weights=wb + 0.5 * wt - tot * eb, minlength=m)
    grad[m] = float(np.sum(wt - tot * qt))
    sig = expit(beta)
    grad[:m] += prior_games * (1.0 - 2.0 * sig)
    # Hessian: minus the weighted covariance of the outcome's features (a, b, log nu)
    var_a = qa + 0.25 * qt - ea * ea
    var_b = qb + 0.25 * qt - eb * eb
    cov_ab = 0.25 * qt - ea * eb
    cov_at = 0.5 * qt - ea * qt
    cov_bt = 0.5 * qt - eb * qt
    var_t = qt - qt * qt
    h = np.zeros((m + 1, m + 1))
    np.add.at(h, (pa, pa), -tot * var_a)
    np.add.at(h, (pb, pb), -tot * var_b)
    np.add.at(h, (pa, pb), -tot * cov_ab)
    np.add.at(h, (pb, pa), -tot * cov_ab)
    np.add.at(h[:m, m], pa, -tot * cov_at)
    np.add.at(h[:m, m], pb, -tot * cov_bt)
    h[m, :m] = h[:m, m]
    h[m, m] = -float(np.sum(tot * var_t))
    h[np.arange(m), np.arange(m)] -= prior_games * 2.0 * sig * (1.0 - sig)
    return value, grad, h


def _davidson_newton_step(x, pa, pb, wa, wb, wt, prior_games, max_halvings=30):
    """One safeguarded Newton step of :func:`davidson_objective` from ``x``; returns a point
    whose objective is not lower (``x`` itself when no step gains)."""
    f, g, h = davidson_objective(x, pa, pb, wa, wb, wt, prior_games, derivatives=True)
    neg = -h
    ridge = 1e-9 * (1.0 + float(np.abs(np.diag(neg)).max()))
    try:
        step = np.linalg.solve(neg + ridge * np.eye(neg.shape[0]), g)
    except np.linalg.LinAlgError:
        step = g / (1.0 + float(np.abs(np.diag(neg)).max()))
    t = 1.0
    for _ in range(max_halvings):
        xn = x + t * step
        xn[-1] = min(max(xn[-1], _LOG_NU_MIN), _LOG_NU_MAX)
        if davidson_objective(xn, pa, pb, wa, wb, wt, prior_games) >= f:
            if prior_games == 0:
                xn[:-1] -= xn[:-1].mean()
            return xn
        t *= 0.5
    return x


def decisive_evidence_sums(user, a, b, a_won, beta, rho, n_users):
    """Sums over each user's decisive votes of the per-vote evidence ``x = log P(pick |
    attentive, Bradley-Terry) - log P(pick | careless, first-position rate rho_user)`` and of
    ``x^2`` (the quality score's standard error; also run per partition on Dask)."""
    d = beta[a] - beta[b]
    att = np.where(a_won, _log_sigmoid(d), _log_sigmoid(-d))
    x = att - np.where(a_won, np.log(rho[user]), np.log1p(-rho[user]))
    return np.bincount(user, weights=x, minlength=n_users), np.bincount(user, weights=x * x, minlength=n_users)


class _JointProblem(Problem):
    """The two-type problem with the attentive term recomputed from the strengths (and, with
    ``ties="davidson"``, Davidson's tie parameter)."""

    def __init__(self, pat: Patterns, careless: str, ties: str, design: dict, prior_games: float):
        super().__init__(pat, careless, ties)
        d = design
        self.user, self.a, self.b, self.a_won = d["user"], d["a"], d["b"], d["a_won"]
        self.n_models = len(d["models"])
        self.prior_games = prior_games
        self.n_users = pat.size
        self.davidson = ties == "davidson"
        if self.davidson:
            m = self.n_models
            out = d["all_outcome"]
            self.v_user = d["all_user"]
            self.v_a, self.v_b = d["all_a"], d["all_b"]
            self.is_a, self.is_b, self.is_tie = (out == 0).astype(float), (out == 1).astype(float), (out == 2).astype(float)
            key = self.v_a.astype(np.int64) * m + self.v_b
            uniq, self.v_pair = np.unique(key, return_inverse=True)
            self.pair_a, self.pair_b = (uniq // m).astype(np.intp), (uniq % m).astype(np.intp)

    def decisive_attentive(self, p):
        beta = p["strengths"]
        d = beta[self.a] - beta[self.b]
        logp = np.where(self.a_won, _log_sigmoid(d), _log_sigmoid(-d))
        return np.bincount(self.user, weights=logp, minlength=self.n_users)

    def decisive_evidence_sums(self, beta, rho):
        """Per user, the sum and the sum of squares over decisive votes of the evidence
        ``log P(pick | attentive) - log P(pick | careless with first-position rate rho_u)``."""
        return decisive_evidence_sums(self.user, self.a, self.b, self.a_won, beta, rho, self.n_users)

    def attentive(self, p):
        if not self.davidson:
            return self.decisive_attentive(p)
        beta = p["strengths"]
        logp = davidson_logp(beta[self.v_a] - beta[self.v_b], p["log_nu"], self.is_a, self.is_b, self.is_tie)
        return np.bincount(self.v_user, weights=logp, minlength=self.n_users)

    def evaluate(self, p, l1, l0):
        ll, gamma = super().evaluate(p, l1, l0)
        beta = p["strengths"]
        return ll + self.prior_games * float(np.sum(_log_sigmoid(beta) + _log_sigmoid(-beta))), gamma

    def pair_weights(self, gamma):
        """Attentive weight of each pair's votes won by model_a, by model_b and tied."""
        w = gamma[self.v_user]
        k = self.pair_a.size
        return tuple(np.bincount(self.v_pair, weights=w * ind, minlength=k) for ind in (self.is_a, self.is_b, self.is_tie))

    def mstep(self, p, gamma):
        new = super().mstep(p, gamma)
        if self.davidson:
            x = np.append(p["strengths"], p["log_nu"])
            x = _davidson_newton_step(x, self.pair_a, self.pair_b, *self.pair_weights(gamma), self.prior_games)
            new["strengths"], new["log_nu"] = x[:-1], float(x[-1])
        else:
            new["strengths"] = _bt_mm_step(p["strengths"], self.a, self.b, self.a_won, gamma[self.user], self.prior_games, self.n_models)
        return new


class JointEM(TwoTypeEM):
    """Model strengths (Bradley-Terry) and user types estimated together by EM.

    ``users_`` also has ``llr_decisive_se``, the standard error of the quality score
    ``llr_decisive_per_vote`` (see :meth:`_decisive_se`).

    Parameters are those of :class:`~comparemode.TwoTypeEM` plus ``prior_games`` (weight of
    the virtual win and loss per model; 0 for the plain maximum-likelihood strengths, which
    exist only when every model both wins and loses against a connected set of models).
    ``ties`` also takes ``"davidson"``: an attentive user's ties follow Davidson's tie model
    of the pair (one parameter ``nu``, reported as ``params_["davidson_nu"]``), a careless
    user's ties a Beta propensity as with ``"model"``.

    ``fit(votes)`` takes the canonical votes table (no reference: the strengths are
    estimated). Results as in ``TwoTypeEM`` (``users_``, ``params_``, ``loglik_history_``,
    which here includes the prior term), plus ``strengths_`` (Series by model, centred to
    mean zero) and ``leaderboard_`` (strengths sorted, with decisive wins and games).
    """

    def __init__(self, careless="beta", ties="model", n_starts=3, max_iter=2000, tol=1e-10, random_seed=0, verbose=False, prior_games=DEFAULT_PRIOR_GAMES,
                 checks: bool = True, check_draws: int = CHECK_DRAWS, warm_start: bool = False):
        super().__init__(careless=careless, ties=ties, n_starts=n_starts, max_iter=max_iter, tol=tol, random_seed=random_seed, verbose=verbose,
                         checks=checks, check_draws=check_draws, warm_start=warm_start)
        self.prior_games = prior_games

    def get_params(self) -> dict:
        params = super().get_params() | {"prior_games": self.prior_games}
        params.pop("mu_spread")  # two models only
        return params

    def _check_settings(self) -> None:
        ties = self.ties
        if ties not in JOINT_TIE_MODES:
            raise ConfigError(f"ties must be one of {JOINT_TIE_MODES}, got {ties!r}")
        try:  # the two-type checks, with the joint model's tie settings
            self.ties = "model"
            super()._check_settings()
        finally:
            self.ties = ties
        pg = self.prior_games
        if isinstance(pg, bool) or not isinstance(pg, (int, float)) or not (pg >= 0 and np.isfinite(pg)):
            raise ConfigError(f"prior_games must be a non-negative number, got {pg!r}")

    def fit(self, votes: pd.DataFrame, *, mu=None, strengths=None, order: str | None = None, **unknown) -> "JointEM":  # type: ignore[override]
        """Fit strengths and user types to a votes table; returns self. The strengths are
        estimated: ``mu`` and ``strengths`` are refused (use :class:`TwoTypeEM` for a known
        reference, or ``prior_games`` for a weak prior). ``order`` as in ``TwoTypeEM.fit``
        (the drift check's time order)."""
        if mu is not None or strengths is not None:
            raise ConfigError("JointEM estimates the model strengths from the votes: drop mu=/strengths= (TwoTypeEM takes a known reference)")
        if unknown:
            raise ConfigError(f"JointEM.fit got unknown argument(s) {sorted(unknown)}; it takes the votes only")

        self._check_settings()
        if self.mu_spread:
            raise ConfigError("mu_spread=True needs two models and a single mu; JointEM estimates model strengths")
        progress = Progress(self.verbose)
        counts, _, time_order = self._counted(votes, progress, order)
        self._design, enc, user_index = encode_joint(counts)
        self._in_order = counts if counts.rows is not None else None  # encoded only if the drift check runs
        ref = Reference(kind="joint", source="estimated strengths")
        progress(f"joint EM on {counts.n_votes:,} votes, {len(self._design['models'])} models, {len(user_index):,} users")
        return self._fit(enc, ref, user_index, progress, time_order)

    def _votes_in_order(self):
        src = getattr(self, "_in_order", None)
        if src is None or isinstance(src, EncodedVotes):
            return src
        return encode_joint(src, rows=True)[1]

    def _check_identifiable(self, enc, ref) -> None:
        d = self._design
        if not np.any(d["a_won"]) and not np.any(~d["a_won"]) or len(d["a"]) == 0:
            raise NotIdentifiableError("no decisive votes: nothing separates the user types")
        _check_ml_strengths(d["a"], d["b"], d["a_won"], d["models"], float(self.prior_games))

    def _make_problem(self, pat: Patterns, ties: str, enc: EncodedVotes) -> Problem:
        return _JointProblem(pat, self.careless, ties, self._design, float(self.prior_games))

    def _start(self, start, stats, rng, problem) -> dict:
        p = super()._start(start, stats, rng, problem)
        if not hasattr(self, "_bt_start"):
            d = self._design
            beta = np.zeros(len(d["models"]))
            w = np.ones(len(d["a"]))
            for _ in range(200):  # plain Bradley-Terry on all decisive votes
                beta = _bt_mm_step(beta, d["a"], d["b"], d["a_won"], w, float(self.prior_games), len(d["models"]))
            self._bt_start = beta
        p["strengths"] = self._bt_start.copy()
        if problem.davidson:
            # P(tie) = nu / (2 + nu) between equal models: start at the overall tie rate
            r = min(max(float(np.mean(self._design["all_outcome"] == 2)), 0.01), 0.95)
            p["log_nu"] = math.log(2.0 * r / (1.0 - r))
        return p

    def _warm_params(self, stats, rng, problem):
        """The previous strengths carried over by model name (a model new since then starts at
        the mean), the other parameters as in ``TwoTypeEM``."""
        previous = getattr(self, "strengths_", None)
        p = super()._warm_params(stats, rng, problem)
        if p is None or previous is None:
            return None
        models = self._design["models"]
        p["strengths"] = previous.reindex(models).fillna(0.0).to_numpy(dtype=float)
        return p

    def _check_design(self, enc, p):
        """Per-vote P(model_a wins | decisive, attentive) from the fitted strengths, and the
        model pairs the replicates need."""
        from scipy.special import expit

        a, b = enc.pairs if enc.pairs is not None else (self._design["all_a"], self._design["all_b"])
        beta = np.asarray(p["strengths"], dtype=float)
        return expit(beta[a] - beta[b]), (a, b)

    def _vote_attentive(self, enc, mu_row, p):
        if self.ties_ != "davidson":
            return super()._vote_attentive(enc, mu_row, p)
        a, b = enc.pairs if enc.pairs is not None else (self._design["all_a"], self._design["all_b"])
        beta = np.asarray(p["strengths"], dtype=float)
        out = enc.outcome
        return davidson_logp(beta[a] - beta[b], p["log_nu"], (out == 0) * 1.0, (out == 1) * 1.0, (out == 2) * 1.0)

    def _encode_again(self, votes):
        design, enc, _ = encode_joint(votes, rows=True)
        if not design["models"].equals(self._design["models"]):
            raise ConfigError("these votes name other models, or name them in another order, than the votes the model was fitted on; pass the fitted votes")
        return enc

    def _fit(self, enc, ref, user_index, progress, time_order=None):
        self.__dict__.pop("_bt_start", None)
        super()._fit(enc, ref, user_index, progress, time_order)
        beta = self._problem_params["strengths"]
        d = self._design
        self.strengths_ = pd.Series(beta - beta.mean(), index=d["models"], name="strength")
        winner = np.where(d["a_won"], d["a"], d["b"])
        n_models = len(d["models"])
        board = pd.DataFrame(
            {
                "strength": self.strengths_,
                "wins": np.bincount(winner, minlength=n_models),
                "games": np.bincount(d["a"], minlength=n_models) + np.bincount(d["b"], minlength=n_models),
            },
            index=d["models"],
        )
        self.leaderboard_ = board.sort_values("strength", ascending=False)
        self.leaderboard_.insert(0, "rank", np.arange(1, n_models + 1))
        return self

    def _users_table(self, stats, pat, problem, p, user_index):
        table = super()._users_table(stats, pat, problem, p, user_index)
        pos = table.columns.get_loc("llr_decisive_per_vote") + 1
        table.insert(pos, "llr_decisive_se", self._decisive_se(stats, problem, p))
        return table

    def _decisive_se(self, stats, problem, p) -> np.ndarray:
        """Standard error of ``llr_decisive_per_vote``: the spread of the per-vote evidence
        ``log P(pick | attentive) - log P(pick | careless)`` over the user's decisive votes,
        divided by the square root of their number. The careless side uses the user's own
        posterior-mean first-position rate ``(a + f) / (a + b + d)`` (``"beta"``), the shared
        rate or 1/2 (a plug-in, so the votes' terms are independent). NaN below 2 decisive votes."""
        n_dec = (stats.n - stats.t).astype(float)
        s1, s2 = problem.decisive_evidence_sums(p["strengths"], self._careless_rate(stats, p))
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (s2 - s1 * s1 / n_dec) / (n_dec - 1)
            se = np.sqrt(np.maximum(var, 0.0) / n_dec)
        return np.where(n_dec >= 2, se, np.nan)

    def _favoured_counts(self, stats, p):
        """As ``TwoTypeEM``'s, from the votes seen during the fit, or (votes on Dask) from the
        problem's pass over them."""
        cached = self.__dict__.get("_favoured")
        if cached is None and hasattr(self._user_inputs[2], "favoured"):
            cached = self._user_inputs[2].favoured(p["strengths"], self._careless_rate(stats, p))
        return cached if cached is not None else super()._favoured_counts(stats, p)

    def _careless_rate(self, stats, p) -> np.ndarray:
        """Each user's plug-in first-position rate if careless: the posterior mean
        ``(a + f) / (a + b + d)`` (``"beta"``), the shared rate or 1/2."""
        n_dec = (stats.n - stats.t).astype(float)
        if self.careless == "beta":
            ca, cb = p["careless_first"]
            rho = (ca + stats.f) / (ca + cb + n_dec)
        elif self.careless == "shared":
            rho = np.full(n_dec.shape, float(p["careless_first"]))
        else:
            rho = np.full(n_dec.shape, 0.5)
        return np.clip(rho, 1e-12, 1 - 1e-12)

    def _params_series(self, p, ref, ties):
        q = {k: v for k, v in p.items() if k not in ("strengths", "log_nu")}
        out = super()._params_series(q, ref, ties)
        if ties == "davidson":
            out["davidson_nu"] = math.exp(p["log_nu"])
        return out
