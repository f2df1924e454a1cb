"""Joint EM for many-model comparison data: model strengths and user types together
(DESIGN.md section 3, case 4).

Nobody hands over mu: an attentive user's decisive vote picks model_a with probability
``sigmoid(beta_a - beta_b)`` (Bradley-Terry), where the strengths ``beta`` are estimated from
the same votes. Careless users pick by position (per-user rates from a Beta, a shared rate or
1/2), and each user's tie propensity follows a Beta distribution per type, as in
:class:`~comparemode.TwoTypeEM`.

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

import numpy as np
import pandas as pd

from comparemode._progress import Progress
from comparemode.constants import CODE_A, CODE_B, MODEL_A, MODEL_B, USER, WINNER, WIN_A, WIN_B
from comparemode.errors import ConfigError, NotIdentifiableError
from comparemode.inference.em import TwoTypeEM, _Problem
from comparemode.models.stats import EncodedVotes, Patterns

__all__ = ["JointEM", "fit_bradley_terry", "encode_joint"]

#: Weight of the virtual win and loss each model plays against a model of strength 0.
DEFAULT_PRIOR_GAMES = 1.0


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


def fit_bradley_terry(votes: pd.DataFrame, *, weights=None, prior_games: float = DEFAULT_PRIOR_GAMES, max_iter: int = 2000, tol: float = 1e-10) -> pd.Series:
    """Plain (optionally weighted) Bradley-Terry strengths from the decisive votes of a votes
    table, by MM; ties are left out. Returns strengths centred to mean zero, by model."""
    from comparemode.data import validate_votes

    votes = validate_votes(votes)
    codes, models = pd.factorize(np.concatenate([votes[MODEL_A].to_numpy(dtype=object), votes[MODEL_B].to_numpy(dtype=object)]))
    n = len(votes)
    a_all, b_all = codes[:n], codes[n:]
    winner = votes[WINNER].to_numpy()
    dec = (winner == WIN_A) | (winner == WIN_B)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ConfigError("weights must be one finite, non-negative number per vote")
    a, b, a_won, w = a_all[dec], b_all[dec], (winner == WIN_A)[dec], w[dec]
    beta = np.zeros(len(models))
    obj = _bt_objective(beta, a, b, a_won, w, prior_games)
    for _ in range(max_iter):
        new = _bt_mm_step(beta, a, b, a_won, w, prior_games, len(models))
        new_obj = _bt_objective(new, a, b, a_won, w, prior_games)
        beta, gain, obj = new, new_obj - obj, new_obj
        if gain < tol * (1 + abs(obj)):
            break
    return pd.Series(beta - beta.mean(), index=pd.Index(models.astype(str), name="model"), name="strength")


def encode_joint(votes: pd.DataFrame):
    """Encode validated votes for the joint model (no reference): the decisive-vote design
    (``user``, ``a``, ``b`` model codes, ``a_won``; ``models`` names; ``all_a``/``all_b`` on
    every vote), the encoded votes for the per-user counts (their per-vote mu is a placeholder:
    the attentive term comes from the strengths) and the user index."""
    n = len(votes)
    codes, models = pd.factorize(np.concatenate([votes[MODEL_A].to_numpy(dtype=object), votes[MODEL_B].to_numpy(dtype=object)]))
    if len(models) < 2:
        raise NotIdentifiableError("the votes compare fewer than two models")
    user, user_values = pd.factorize(votes[USER])
    winner = votes[WINNER]
    outcome = np.full(n, 2, dtype=np.int8)
    outcome[(winner == WIN_A).to_numpy()] = CODE_A
    outcome[(winner == WIN_B).to_numpy()] = CODE_B
    dec = outcome != 2
    if not dec.any():
        raise NotIdentifiableError("every vote is a tie: with no decisive votes nothing separates the user types")
    design = {
        "user": user[dec].astype(np.intp),
        "a": codes[:n][dec],
        "b": codes[n:][dec],
        "a_won": outcome[dec] == CODE_A,
        "models": pd.Index(models.astype(str), name="model"),
        "all_a": codes[:n],
        "all_b": codes[n:],
    }
    enc = EncodedVotes(user=user.astype(np.intp), code=outcome, n_users=len(user_values), mu=np.full(n, 0.5))
    return design, enc, pd.Index(user_values, name=USER)


class _JointProblem(_Problem):
    """The two-type problem with the attentive term recomputed from the strengths."""

    def __init__(self, pat: Patterns, careless: str, ties: str, user, a, b, a_won, n_models: int, prior_games: float):
        super().__init__(pat, careless, ties)
        self.user, self.a, self.b, self.a_won = user, a, b, a_won
        self.n_models = n_models
        self.prior_games = prior_games
        self.n_users = pat.size

    def attentive(self, beta):
        d = beta[self.a] - beta[self.b]
        logp = np.where(self.a_won, _log_sigmoid(d), _log_sigmoid(-d))
        return np.bincount(self.user, weights=logp, minlength=self.n_users)

    def logliks(self, p):
        self.s = self.attentive(p["strengths"])
        return super().logliks(p)

    def evaluate(self, p, l1, l0):
        ll, gamma = super().evaluate(p, l1, l0)
        beta = p["strengths"]
        return ll + self.prior_games * float(np.sum(_log_sigmoid(beta) + _log_sigmoid(-beta))), gamma

    def mstep(self, p, gamma):
        new = super().mstep(p, gamma)
        new["strengths"] = _bt_mm_step(p["strengths"], self.a, self.b, self.a_won, gamma[self.user], self.prior_games, self.n_models)
        return new


class JointEM(TwoTypeEM):
    """Model strengths (Bradley-Terry) and user types estimated together by EM.

    Parameters are those of :class:`~comparemode.TwoTypeEM` plus ``prior_games`` (weight of
    the virtual win and loss per model; 0 for the plain maximum-likelihood strengths, which
    exist only when every model both wins and loses against a connected set of models).

    ``fit(votes)`` takes the canonical votes table (no reference: the strengths are
    estimated). Results as in ``TwoTypeEM`` (``users_``, ``params_``, ``loglik_history_``,
    which here includes the prior term), plus ``strengths_`` (Series by model, centred to
    mean zero) and ``leaderboard_`` (strengths sorted, with decisive wins and games).
    """

    def __init__(self, careless="beta", ties="model", n_starts=3, max_iter=2000, tol=1e-10, random_seed=0, verbose=False, prior_games=DEFAULT_PRIOR_GAMES):
        super().__init__(careless=careless, ties=ties, n_starts=n_starts, max_iter=max_iter, tol=tol, random_seed=random_seed, verbose=verbose)
        self.prior_games = prior_games

    def get_params(self) -> dict:
        return super().get_params() | {"prior_games": self.prior_games}

    def _check_settings(self) -> None:
        super()._check_settings()
        pg = self.prior_games
        if isinstance(pg, bool) or not isinstance(pg, (int, float)) or not (pg >= 0 and np.isfinite(pg)):
            raise ConfigError(f"prior_games must be a non-negative number, got {pg!r}")

    def fit(self, votes: pd.DataFrame) -> "JointEM":  # type: ignore[override]
        """Fit strengths and user types to a votes table; returns self."""
        from comparemode.dask_backend import is_lazy_input
        from comparemode.data import validate_votes
        from comparemode.reference import Reference

        if is_lazy_input(votes):  # a Dask DataFrame or Parquet files read lazily
            from comparemode.dask_backend import fit_joint

            return fit_joint(self, votes)
        self._check_settings()
        progress = Progress(self.verbose)
        votes = validate_votes(votes)
        self._design, enc, user_index = encode_joint(votes)
        ref = Reference(kind="joint", source="estimated strengths")
        progress(f"joint EM on {len(votes):,} votes, {len(self._design['models'])} models, {len(user_index):,} users")
        return self._fit(enc, ref, user_index, progress)

    def _check_identifiable(self, enc, ref) -> None:
        d = self._design
        if not np.any(d["a_won"]) and not np.any(~d["a_won"]) or len(d["a"]) == 0:
            raise NotIdentifiableError("no decisive votes: nothing separates the user types")

    def _make_problem(self, pat: Patterns, ties: str, enc: EncodedVotes) -> _Problem:
        d = self._design
        return _JointProblem(pat, self.careless, ties, d["user"], d["a"], d["b"], d["a_won"], len(d["models"]), float(self.prior_games))

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
        return p

    def _fit(self, enc, ref, user_index, progress):
        self.__dict__.pop("_bt_start", None)
        super()._fit(enc, ref, user_index, progress)
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

    def _params_series(self, p, ref, ties):
        q = {k: v for k, v in p.items() if k != "strengths"}
        return super()._params_series(q, ref, ties)
