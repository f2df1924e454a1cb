"""Plain Bradley-Terry strengths with intervals: the leaderboard of all votes (docs/design.md
section 10).

``P(i beats j) = sigmoid(beta_i - beta_j)``. The votes enter only through the weight of each
ordered pair's outcomes, so the fit aggregates them once (a bincount over the votes, or over
the entries of :class:`~comparemode.models.counts.VoteCounts`) and then maximises the concave
log-likelihood by safeguarded Newton steps on the strengths: a handful of steps reach the
maximum to rounding, where MM (Hunter 2004) creeps towards it.

Ties, stated: ``ties="drop"`` (the default, as in the package's earlier releases and in the
joint model's attentive term) leaves them out; ``ties="half"`` counts a tie as half a win for
each side, the convention of Chatbot Arena and Evalica (``tie_weight=0.5``).

Prior: ``prior_games`` virtual games, a win and a loss of weight ``prior_games`` against a
model of strength 0, keep every strength finite; ``prior_games=0`` gives the plain maximum
likelihood, which exists only when the graph of "won (or half-won) against" is strongly
connected, and is refused otherwise.

Intervals, because a user's votes are not independent of each other (one careless or partisan
user moves many of them) are clustered by user: ``interval="sandwich"`` (the cluster-robust
covariance ``H^-1 (sum over users of s_u s_u^T) H^-1``, with ``s_u`` the user's score vector),
``"bootstrap"`` (users resampled with replacement, the strengths refitted, percentile
intervals), or ``None``. Strengths are centred to mean zero and the intervals are those of the
centred strengths. :func:`~comparemode.inference.leaderboard.leaderboard_table` turns them into
a leaderboard with rank intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

from comparemode._dist import norm_ppf
from comparemode._params import ParamsMixin
from comparemode.constants import (
    CODE_A,
    CODE_B,
    CODE_TIE,
    ELO_ANCHOR,
    LEADERBOARD_LEVEL,
    MODEL_A,
    MODEL_B,
    USER,
    WINNER,
)
from comparemode.data import validate_votes
from comparemode.errors import ConfigError, NotIdentifiableError
from comparemode.inference.leaderboard import leaderboard_table, model_vote_counts
from comparemode.models.counts import VoteCounts, outcome_codes

__all__ = [
    "BradleyTerry",
    "fit_bradley_terry",
    "DEFAULT_PRIOR_GAMES",
    "BT_TIES",
    "BT_INTERVALS",
    "log_sigmoid",
    "bt_objective",
    "bt_mm_step",
    "bt_newton_step",
    "check_ml_strengths",
]

#: Weight of the virtual win and loss each model plays against a model of strength 0.
DEFAULT_PRIOR_GAMES = 1.0
BT_TIES = ("drop", "half")
BT_INTERVALS = ("sandwich", "bootstrap", None)
#: Virtual games for a bootstrap resample fitted without a prior (see ``BradleyTerry._bootstrap``).
_VANISHING_PRIOR = 1e-6


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def bt_objective(beta, a, b, a_won, w, prior_games):
    """Weighted Bradley-Terry log-likelihood of decisive votes plus the virtual games."""
    d = beta[a] - beta[b]
    ll = float(np.dot(w, log_sigmoid(np.where(a_won, d, -d))))  # each vote's winner's side only
    return ll + prior_games * float(np.sum(log_sigmoid(beta) + log_sigmoid(-beta)))


def _best_shift(beta):
    """Shift the strengths to maximise the prior term (the likelihood ignores a common shift):
    Newton on the concave sum of log sigmoid(beta + c) + log sigmoid(-beta - c)."""
    c = -float(np.mean(beta))
    for _ in range(50):
        q = expit(beta + c)
        step = float(np.sum(1.0 - 2.0 * q)) / (2.0 * float(np.sum(q * (1.0 - q))))
        c += step
        if abs(step) < 1e-13:
            break
    return beta + c


def bt_mm_step(beta, a, b, a_won, w, prior_games, n_models):
    """One MM step (Hunter 2004) of the weighted Bradley-Terry likelihood with virtual games,
    p_i <- wins_i / sum over i's games of w / (p_i + p_opponent), then the common shift that
    maximises the prior term (the likelihood does not depend on it). Neither part lowers the
    objective: the joint EM's M-step for the strengths (a generalised EM step)."""
    p = np.exp(beta - beta.max())  # scale-free: the virtual opponent is rescaled with it
    p0 = np.exp(-beta.max())
    winner = np.where(a_won, a, b)
    wins = np.bincount(winner, weights=w, minlength=n_models) + prior_games
    inv = w / (p[a] + p[b])
    denom = np.bincount(a, weights=inv, minlength=n_models) + np.bincount(b, weights=inv, minlength=n_models)
    denom += 2.0 * prior_games / (p + p0)
    new = np.log(wins / denom) + beta.max()
    return _best_shift(new) if prior_games > 0 else new - new.mean()


def check_ml_strengths(pa, pb, wa, wb, models, prior_games) -> None:
    """Without virtual games (``prior_games=0``) the maximum-likelihood strengths are finite
    exactly when the directed graph "i won (or half-won) against j" is strongly connected
    (Ford 1957; Hunter 2004); refuse otherwise, naming models that never win or never lose."""
    if prior_games > 0:
        return
    n = len(models)
    pos_a, pos_b = wa > 0, wb > 0
    rows = np.concatenate([pa[pos_a], pb[pos_b]])  # winner -> loser
    cols = np.concatenate([pb[pos_a], pa[pos_b]])
    graph = sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    n_comp, _ = connected_components(graph, directed=True, connection="strong")
    if n_comp <= 1:
        return
    wins, losses = np.bincount(rows, minlength=n), np.bincount(cols, minlength=n)
    bad = [str(m) for m, w, lo in zip(models, wins, losses) if w == 0 or lo == 0]
    detail = f"model(s) {bad[:10]} never win or never lose a vote" if bad else f"the models fall into {n_comp} groups that never beat each other both ways"
    raise NotIdentifiableError(
        f"with prior_games=0 the strengths are infinite: {detail}. Keep the default prior_games "
        "(virtual games that keep strengths finite) or add votes"
    )


def _pair_value(x, pa, pb, wa, wb, prior_games):
    """Pair-aggregated Bradley-Terry log-likelihood at ``x`` plus the virtual games."""
    d = x[pa] - x[pb]
    out = float(np.dot(wa, log_sigmoid(d)) + np.dot(wb, log_sigmoid(-d)))
    return out + prior_games * float(np.sum(log_sigmoid(x) + log_sigmoid(-x)))


def _newton_direction(pa, pb, wa, wb, n_models, prior_games, beta):
    """The Newton direction of :func:`_pair_value` at ``beta`` (without virtual games the
    common shift, which the likelihood does not see, is fixed by adding ``1 / n_models`` to
    every entry of the information)."""
    r = wa - (wa + wb) * expit(beta[pa] - beta[pb])
    g = np.bincount(pa, weights=r, minlength=n_models) - np.bincount(pb, weights=r, minlength=n_models)
    info = _information(pa, pb, wa, wb, n_models, prior_games, beta)
    if prior_games > 0:
        g += prior_games * (1.0 - 2.0 * expit(beta))
    else:
        info += 1.0 / n_models
    return np.linalg.solve(info, g)


def _pair_fit(pa, pb, wa, wb, n_models, prior_games, beta, tol, max_iter):
    """Newton on the pair-aggregated log-likelihood from ``beta``; returns the strengths, the
    number of steps and whether the last step moved no strength by more than ``tol``."""
    f = _pair_value(beta, pa, pb, wa, wb, prior_games)
    for it in range(1, max_iter + 1):
        step = _newton_direction(pa, pb, wa, wb, n_models, prior_games, beta)
        t = 1.0
        for _ in range(60):
            new = beta + t * step
            f_new = _pair_value(new, pa, pb, wa, wb, prior_games)
            if f_new >= f - 1e-12 * abs(f):
                break
            t *= 0.5
        beta, f = (new - new.mean() if prior_games == 0 else new), f_new
        if float(np.max(np.abs(t * step))) < tol:
            return beta, it, True
    return beta, max_iter, False


def bt_newton_step(beta, a, b, a_won, w, prior_games, n_models, max_halvings=20):
    """One Newton step of the weighted Bradley-Terry likelihood with virtual games (the
    objective of :func:`bt_mm_step`), halved until the objective does not fall, and
    :func:`bt_mm_step` where no halving gains (near the maximum, within rounding). Either way
    the objective does not fall: the joint EM's M-step for the strengths (a generalised EM
    step). Newton's step reaches the weighted maximum in a few steps where MM takes hundreds,
    so the EM's iterations are those its missing information needs, not MM's (issue 16)."""
    wa, wb = np.where(a_won, w, 0.0), np.where(a_won, 0.0, w)
    f = bt_objective(beta, a, b, a_won, w, prior_games)
    try:
        step = _newton_direction(a, b, wa, wb, n_models, prior_games, beta)
    except np.linalg.LinAlgError:
        step = None
    if step is not None and np.all(np.isfinite(step)):
        t = 1.0
        for _ in range(max_halvings):
            new = beta + t * step
            if prior_games == 0:
                new = new - new.mean()
            if bt_objective(new, a, b, a_won, w, prior_games) >= f:
                return new
            t *= 0.5
    return bt_mm_step(beta, a, b, a_won, w, prior_games, n_models)


def _information(pa, pb, wa, wb, n_models, prior_games, beta):
    """Minus the Hessian of the pair-aggregated log-likelihood (and prior) at ``beta``."""
    n = wa + wb
    s = expit(beta[pa] - beta[pb])
    h = n * s * (1.0 - s)
    k = np.arange(n_models)
    info = np.zeros((n_models, n_models))
    np.add.at(info, (pa, pb), -h)
    np.add.at(info, (pb, pa), -h)
    info[k, k] = np.bincount(pa, weights=h, minlength=n_models) + np.bincount(pb, weights=h, minlength=n_models)
    if prior_games > 0:
        q = expit(beta)
        info[k, k] += 2.0 * prior_games * q * (1.0 - q)
    return info


class BradleyTerry(ParamsMixin):
    """Bradley-Terry strengths of all votes, with user-clustered intervals and a leaderboard.

    Parameters
    ----------
    ties : {"drop", "half"}
        ``"drop"``: decisive votes only; ``"half"``: a tie is half a win for each side
        (Chatbot Arena, Evalica).
    prior_games : float
        Virtual win and loss per model against a model of strength 0 (0: plain maximum
        likelihood, refused when it does not exist).
    interval : {"sandwich", "bootstrap", None}
        User-clustered intervals (see the module docstring); the bootstrap resamples users
        ``n_boot`` times (seeded by ``random_seed``).
    level : float
        Interval probability.
    tol : float
        Convergence: the last Newton step moved no strength by more than ``tol`` (log units);
        Newton converges quadratically, so the strengths are then within about ``tol`` squared
        of the maximum. ``max_iter`` bounds the steps (``converged_`` says whether ``tol`` was met).
    scale, elo_anchor
        ``scale="elo"`` reports ratings, ``400 / ln 10`` per log-strength unit, anchored by
        ``elo_anchor``: a number (the mean rating) or ``(model, rating)``.

    ``fit(votes)`` takes a votes table (with ``weights``, one non-negative weight per vote) or
    :class:`~comparemode.models.counts.VoteCounts` (``weights``: one per counts entry, each
    multiplying the entry's votes). Results: ``strengths_`` (log-strengths by
    model, mean zero, sorted strongest first), ``cov_`` (the sandwich covariance of the centred
    strengths, with ``interval="sandwich"``), ``leaderboard_`` (rank, strength, lower, upper,
    rank_best, rank_worst, wins, decisive, ties; on the chosen scale), ``n_iter_``,
    ``converged_``.
    """

    def __init__(self, ties: str = "drop", prior_games: float = DEFAULT_PRIOR_GAMES, interval: str | None = "sandwich", level: float = LEADERBOARD_LEVEL,
                 n_boot: int = 200, random_seed: int | None = 0, tol: float = 1e-10, max_iter: int = 100, scale: str = "bt", elo_anchor=ELO_ANCHOR):
        self.ties, self.prior_games, self.interval, self.level = ties, prior_games, interval, level
        self.n_boot, self.random_seed, self.tol, self.max_iter = n_boot, random_seed, tol, max_iter
        self.scale, self.elo_anchor = scale, elo_anchor

    def _check(self) -> None:
        if self.ties not in BT_TIES:
            raise ConfigError(f"ties must be one of {BT_TIES} ('half': a tie is half a win for each side, as Chatbot Arena and Evalica count it), got {self.ties!r}")
        if self.interval not in BT_INTERVALS:
            raise ConfigError(f"interval must be one of {BT_INTERVALS}, got {self.interval!r}")
        pg = self.prior_games
        if isinstance(pg, bool) or not isinstance(pg, (int, float, np.integer, np.floating)) or not (pg >= 0 and np.isfinite(pg)):
            raise ConfigError(f"prior_games must be a non-negative finite number, got {pg!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ConfigError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not (tol > 0 and np.isfinite(tol)):
            raise ConfigError(f"tol must be a positive finite number, got {tol!r}")
        if not (isinstance(self.level, float) and 0 < self.level < 1):
            raise ConfigError(f"level must be a probability strictly between 0 and 1, got {self.level!r}")
        if self.interval == "bootstrap" and (isinstance(self.n_boot, bool) or not isinstance(self.n_boot, (int, np.integer)) or self.n_boot < 20):
            raise ConfigError(f"n_boot must be an integer of at least 20 (percentile intervals need replicates), got {self.n_boot!r}")

    def _units(self, votes, weights):
        """The votes as weighted units: (user, model_a, model_b, outcome, weight) codes, the
        model names and the user count; a unit is a vote, or an entry of the counts."""
        if isinstance(votes, VoteCounts):
            w = votes.count * _check_weights(weights, votes.count.size, "counts entry", "entries")
            ctx = votes.contexts
            return (votes.user, ctx[MODEL_A].to_numpy()[votes.context], ctx[MODEL_B].to_numpy()[votes.context], votes.outcome,
                    w, pd.Index(votes.models.astype(str), name="model"), votes.n_users)
        votes = validate_votes(votes)
        n = len(votes)
        codes, models = pd.factorize(np.concatenate([votes[MODEL_A].to_numpy(dtype=object), votes[MODEL_B].to_numpy(dtype=object)]))
        w = _check_weights(weights, n, "vote", "votes")
        user, users = pd.factorize(votes[USER], sort=False) if self.interval is not None else (np.zeros(n, np.int64), [0])
        return user, codes[:n], codes[n:], outcome_codes(votes[WINNER]), w, pd.Index(models.astype(str), name="model"), len(users)

    def fit(self, votes, *, weights=None) -> "BradleyTerry":
        self._check()
        user, a, b, outcome, w, models, n_users = self._units(votes, weights)
        n_models = len(models)
        if n_models < 2:
            raise NotIdentifiableError("the votes compare fewer than two models")
        tie = outcome == CODE_TIE
        if not (~tie).any():
            raise NotIdentifiableError(f"all {w.size:,} votes are ties: Bradley-Terry strengths come from decisive votes, and there are none")
        y = np.where(outcome == CODE_A, 1.0, np.where(outcome == CODE_B, 0.0, 0.5))
        if self.ties == "drop":
            w = np.where(tie, 0.0, w)
        key = a.astype(np.int64) * n_models + b
        pairs, self._pair_of = np.unique(key, return_inverse=True)
        self._pa, self._pb = (pairs // n_models).astype(np.intp), (pairs % n_models).astype(np.intp)
        self._units_ = (user, y, w, n_users)
        wa, wb = self._pair_weights(w)
        prior = float(self.prior_games)
        check_ml_strengths(self._pa, self._pb, wa, wb, models, prior)
        beta, self.n_iter_, self.converged_ = _pair_fit(self._pa, self._pb, wa, wb, n_models, prior, np.zeros(n_models), float(self.tol), int(self.max_iter))
        beta = beta - beta.mean()
        lower = upper = np.full(n_models, np.nan)
        self.cov_ = None
        if self.interval == "sandwich":
            self.cov_ = self._sandwich(beta, wa, wb, n_models, prior)
            half = norm_ppf(0.5 + self.level / 2.0) * np.sqrt(np.diag(self.cov_))
            lower, upper = beta - half, beta + half
        elif self.interval == "bootstrap":
            lower, upper = self._bootstrap(beta, n_models, prior)
        per_model = model_vote_counts(a, b, outcome, n_models, votes.count if isinstance(votes, VoteCounts) else None)  # votes, not weights
        self.leaderboard_ = leaderboard_table(pd.Series(beta, index=models), lower, upper, **per_model,
                                              scale=self.scale, elo_anchor=self.elo_anchor, level=self.level if self.interval else None,
                                              interval=self.interval)
        self.strengths_ = pd.Series(beta, index=models, name="strength").loc[self.leaderboard_.index]
        return self

    def _pair_weights(self, w):
        y, k = self._units_[1], self._pa.size
        return np.bincount(self._pair_of, weights=w * y, minlength=k), np.bincount(self._pair_of, weights=w * (1.0 - y), minlength=k)

    def _sandwich(self, beta, wa, wb, n_models, prior):
        """``P H^-1 (sum_u s_u s_u^T) H^-1 P``: the cluster-robust covariance of the centred
        strengths (``P`` centres; without the prior the shift is fixed by centring)."""
        user, y, w, n_users = self._units_
        pa, pb = self._pa[self._pair_of], self._pb[self._pair_of]
        c = w * (y - expit(beta[pa] - beta[pb]))
        rows = np.concatenate([user, user])
        score = sparse.coo_matrix((np.concatenate([c, -c]), (rows, np.concatenate([pa, pb]))), shape=(n_users, n_models)).tocsr()
        meat = (score.T @ score).toarray()
        info = _information(self._pa, self._pb, wa, wb, n_models, prior, beta)
        if prior == 0:
            info = info + np.full((n_models, n_models), 1.0 / n_models)
        bread = np.linalg.inv(info)
        centre = np.eye(n_models) - 1.0 / n_models
        return centre @ bread @ meat @ bread @ centre

    def _bootstrap(self, beta, n_models, prior):
        """Percentile intervals of the centred strengths over ``n_boot`` resamples of the users
        (each refit by Newton from the full fit's strengths)."""
        user, y, w, n_users = self._units_
        rng = np.random.default_rng(self.random_seed)
        draws = np.empty((int(self.n_boot), n_models))
        for i in range(int(self.n_boot)):
            times = np.bincount(rng.integers(0, n_users, n_users), minlength=n_users).astype(float)
            wa, wb = self._pair_weights(w * times[user])
            # without virtual games a resample may have no finite maximum (a model that never
            # loses in it): it is refitted with a vanishing prior, so its strengths run far out
            fit, _, _ = _pair_fit(self._pa, self._pb, wa, wb, n_models, max(prior, _VANISHING_PRIOR), beta.copy(), float(self.tol), int(self.max_iter))
            draws[i] = fit - fit.mean()
        self.boot_strengths_ = draws
        q = (1.0 - self.level) / 2.0
        return np.quantile(draws, q, axis=0), np.quantile(draws, 1.0 - q, axis=0)


def _check_weights(weights, n: int, unit: str, units: str) -> np.ndarray:
    """One finite, non-negative weight per unit (ones when None)."""
    if weights is None:
        return np.ones(n)
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"weights must be numbers, one per {unit}; got values such as {list(weights)[:5]!r}") from None
    if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ConfigError(f"weights must be one finite, non-negative number per {unit} ({n:,} {units}); got shape {w.shape}")
    return w


def fit_bradley_terry(votes, *, ties: str = "drop", weights=None, prior_games: float = DEFAULT_PRIOR_GAMES, max_iter: int = 100, tol: float = 1e-10) -> pd.Series:
    """Plain (optionally weighted) Bradley-Terry strengths of a votes table or vote counts, by
    Newton to the maximum: a Series by model, mean zero, strongest first. ``ties``: ``"drop"``
    (decisive votes only) or ``"half"`` (a tie is half a win for each side, as in Chatbot Arena
    and Evalica). :class:`BradleyTerry` adds intervals and the leaderboard."""
    return BradleyTerry(ties=ties, prior_games=prior_games, interval=None, max_iter=max_iter, tol=tol).fit(votes, weights=weights).strengths_
