"""Partisan users on many-model votes, and the leaderboard without their rigged votes
(docs/design.md section 10).

A partisan favours one model whenever it is on screen, whatever the opponent, and votes like an
attentive user otherwise. What tells the two apart is the opponent: an honest attentive user's
pick of a model falls with the opponent's strength (``sigmoid(beta_m - beta_opp)``), a
partisan's does not (``q``, the same against every opponent). So an honest user who likes the
best model is not a partisan: against weak opponents the best model wins anyway, and against
strong ones the honest user's picks fall off.

:class:`PartisanScreen` adds this third type to a fitted :class:`~comparemode.JointEM`:

- per user, the posterior over attentive, careless and "partisan for model m" (one component
  per model, prior share ``pi_m``), from the joint EM's per-user log-likelihoods of the two
  types and, for the partisan, the attentive log-likelihood with the user's decisive votes on
  m replaced by ``q`` for a pick of m and ``1 - q`` for a pick of the opponent;
- an EM that alternates these posteriors with the shares ``pi_m``, ``q`` and the strengths,
  refitted by weighted Bradley-Terry on the votes as attentive users cast them (each vote
  weighted by the posterior that its user is attentive, or partisan for a model not in the
  vote); the careless and tie parameters stay those of the joint EM;
- a calibrated test per user: the probability, were the user honest (the joint EM's mixture
  of the two types, per vote), of picking the suspected model at least as often as they did
  (exact Poisson-binomial tail), Bonferroni-corrected over the models the user was shown
  (``significant`` below ``level``; the test runs where the posterior is at least 0.05,
  ``p_value`` is NaN elsewhere). A rigger with few views of the target cannot be significant
  on their own; ``flagged`` is the posterior above 1/2, which pools the evidence of every
  account through the estimated shares.

Partisan shares are estimated per band of votes per user (:data:`ACTIVITY_BANDS`): rigging
takes many votes, so heavy accounts may hide a large share of partisans while light ones hide
none, and one share for all would spread the suspicion onto every light user who happened to
pick the model once.

Results: ``users_`` (``p_partisan``, ``target``, ``p_value``, ``significant``, ``flagged``, the
picks of the target against what an honest user would make), ``shares_`` (``pi_m`` by band of
votes per user and model), ``q_``,
``strengths_`` and ``leaderboard_`` (the robust leaderboard, sandwich intervals clustered by
user, from the weighted votes).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import expit

from comparemode._params import ParamsMixin
from comparemode.constants import CODE_A, CODE_TIE, LEADERBOARD_LEVEL, MODEL_A, MODEL_B
from comparemode.counting import count_votes
from comparemode.errors import ConfigError, NotFittedError
from comparemode.inference.bradley_terry import BradleyTerry, log_sigmoid
from comparemode.inference.joint import careless_first_rate
from comparemode.models.counts import VoteCounts

__all__ = ["PartisanScreen", "PARTISAN_LEVEL"]

#: Level of the partisan test (Bonferroni over the models a user saw): the share of honest
#: users flagged stays at most about this.
PARTISAN_LEVEL = 0.01
_Q_BOUNDS = (0.6, 0.99)
#: Partisan shares are estimated per band of votes per user (the lower edges of the bands above
#: the first): rigging needs many votes, so heavy accounts may hide more partisans than light ones.
ACTIVITY_BANDS = (10, 50, 200)
#: The test runs for users whose posterior P(partisan) is at least this (``p_value`` NaN otherwise).
_TESTED = 0.05


class PartisanScreen(ParamsMixin):
    """Partisan users and the robust leaderboard of a fitted joint EM (see the module docstring).

    Parameters: ``level`` (the test's level), ``min_shown`` (a user is a candidate partisan for
    a model shown in at least this many decisive votes), ``max_iter`` and ``tol`` (the EM over the shares,
    ``q`` and the strengths; ``tol`` on the largest change of a strength or share), ``ties``,
    ``prior_games`` and ``interval_level`` of the robust Bradley-Terry leaderboard.

    ``fit(joint, votes)``: ``joint`` a :class:`~comparemode.JointEM` fitted on ``votes`` (a
    votes table or their :class:`~comparemode.models.counts.VoteCounts`).
    """

    def __init__(self, level: float = PARTISAN_LEVEL, min_shown: int = 2, max_iter: int = 500, tol: float = 1e-5, ties: str = "drop",
                 prior_games: float = 1.0, interval_level: float = LEADERBOARD_LEVEL):
        self.level, self.min_shown, self.max_iter, self.tol = level, min_shown, max_iter, tol
        self.ties, self.prior_games, self.interval_level = ties, prior_games, interval_level

    def fit(self, joint, votes) -> "PartisanScreen":
        if not (isinstance(self.level, float) and 0 < self.level < 1):
            raise ConfigError(f"level must be a probability strictly between 0 and 1, got {self.level!r}")
        try:
            users, strengths, params = joint.users_, joint.strengths_, joint.params_
        except (AttributeError, NotFittedError):
            raise ConfigError("PartisanScreen.fit needs a fitted JointEM (JointEM().fit(votes)) and the same votes") from None
        counts = votes if isinstance(votes, VoteCounts) else count_votes(votes)
        if not counts.users.equals(users.index):
            raise ConfigError("these votes are not the ones the joint EM was fitted on (other users, or another order): pass the fitted votes")
        models = strengths.index
        m_of = models.get_indexer(counts.models.astype(str))
        ctx = counts.contexts
        a, b = m_of[ctx[MODEL_A].to_numpy()][counts.context], m_of[ctx[MODEL_B].to_numpy()][counts.context]
        n = counts.count.astype(float)
        dec = counts.outcome != CODE_TIE
        u, a, b, won_a, n_dec = counts.user[dec], a[dec], b[dec], counts.outcome[dec] == CODE_A, n[dec]
        n_users, n_models = counts.n_users, len(models)
        # one row per (decisive entry, model on screen): the model, its opponent, picked or not
        self._rows = _Rows(np.concatenate([u, u]), np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([won_a, ~won_a]),
                           np.concatenate([n_dec, n_dec]), np.concatenate([np.ones(u.size, bool), np.zeros(u.size, bool)]), n_models)
        rows = self._rows
        shown = np.bincount(rows.key_of, weights=rows.n, minlength=rows.key_user.size)  # per (user, model) key
        picks = np.bincount(rows.key_of, weights=rows.n * rows.picked, minlength=rows.key_user.size)
        self._eligible = shown >= self.min_shown  # a partisan for m shows it: fewer views cannot tell
        self._entry_keys = self._keys_of_entries(counts, m_of)
        p_att = users["p_attentive"].to_numpy(dtype=float)
        l_att0 = users["loglik_attentive"].to_numpy(dtype=float)
        l_care = users["loglik_careless"].to_numpy(dtype=float)
        pi = float(params["pi"])
        beta0 = strengths.to_numpy(dtype=float)

        def decisive_attentive(beta):  # per user, the attentive log-likelihood of the decisive picks
            return np.bincount(u, weights=n_dec * np.where(won_a, log_sigmoid(beta[a] - beta[b]), log_sigmoid(beta[b] - beta[a])), minlength=n_users)

        dec_att0 = decisive_attentive(beta0)
        # the EM: shares of partisans per activity band and model, q, strengths
        self._band = np.searchsorted(np.asarray(ACTIVITY_BANDS), users["n_votes"].to_numpy(), side="right")
        n_bands = len(ACTIVITY_BANDS) + 1
        band_size = np.bincount(self._band, minlength=n_bands).astype(float)
        shares, q, beta = np.full((n_bands, n_models), 0.01 / n_models), 0.95, beta0.copy()
        key_band = self._band[rows.key_user]
        bt = BradleyTerry(ties=self.ties, prior_games=self.prior_games, interval=None)
        for it in range(1, self.max_iter + 1):
            l_att = l_att0 - dec_att0 + decisive_attentive(beta)
            post_a, post_c, r, untested = self._posteriors(l_att, l_care, pi, shares, q, beta)
            cell = key_band * n_models + rows.key_model
            seen_r = np.bincount(cell, weights=r, minlength=n_bands * n_models).reshape(n_bands, n_models)
            seen_u = np.bincount(cell, weights=untested[rows.key_user], minlength=n_bands * n_models).reshape(n_bands, n_models)
            all_u = np.bincount(self._band, weights=untested, minlength=n_bands)[:, None]
            new_shares = (seen_r + shares * (all_u - seen_u)) / np.maximum(band_size, 1.0)[:, None]
            new_q = min(max(float(np.dot(r, picks) / max(np.dot(r, shown), 1e-300)), _Q_BOUNDS[0]), _Q_BOUNDS[1])
            weights = self._vote_weights(counts, post_c, r)
            new_beta = bt.fit(counts, weights=weights).strengths_.reindex(models).to_numpy()
            change = max(float(np.max(np.abs(new_shares - shares))), abs(new_q - q), float(np.max(np.abs(new_beta - beta))))
            shares, q, beta = np.maximum(new_shares, 1e-12), new_q, new_beta
            if change < self.tol:
                break
        self.n_iter_, self.converged_ = it, change < self.tol
        post_a, post_c, r, _ = self._posteriors(l_att, l_care, pi, shares, q, beta)
        self.q_ = q
        labels = [f"{lo}-{hi - 1}" for lo, hi in zip((1, *ACTIVITY_BANDS), ACTIVITY_BANDS)] + [f"{ACTIVITY_BANDS[-1]}+"]
        self.shares_ = pd.DataFrame(shares, index=pd.Index(labels, name="votes per user"), columns=models)
        rho = careless_first_rate(joint.careless, joint.user_params(), users["n_first"], users["n_decisive"])
        self.users_ = self._users_table(users.index, models, r, post_a, post_c, p_att, beta, rho)
        weights = self._vote_weights(counts, post_c, r)
        robust = BradleyTerry(ties=self.ties, prior_games=self.prior_games, interval="sandwich", level=self.interval_level)
        self.leaderboard_ = robust.fit(counts, weights=weights).leaderboard_
        self.leaderboard_.attrs["weights"] = "P(attentive or partisan for another model) per vote (PartisanScreen)"
        self.strengths_ = robust.strengths_
        return self

    def _posteriors(self, l_att, l_care, pi, shares, q, beta):
        """Per user P(attentive), P(careless) and, per (user, model shown) key, P(partisan for
        it); ``untested``: per user the posterior mass on partisans for models never shown."""
        rows = self._rows
        p_hon = expit(beta[rows.model] - beta[rows.opp])
        delta = rows.n * np.where(rows.picked, math.log(q) - np.log(p_hon), math.log1p(-q) - np.log1p(-p_hon))
        d_key = np.bincount(rows.key_of, weights=delta, minlength=rows.key_user.size)
        n_users = l_att.size
        total = shares.sum(axis=1)[self._band]  # per user, the partisan share of the user's band
        honest = np.log(np.maximum(1.0 - total, 1e-300))
        log_a = honest + math.log(pi) + l_att
        log_c = honest + math.log1p(-pi) + l_care
        key_share = shares[self._band[rows.key_user], rows.key_model]
        seen_share = np.bincount(rows.key_user, weights=key_share, minlength=n_users)
        log_unseen = np.log(np.maximum(total - seen_share, 1e-300)) + l_att  # partisans for models never shown: like attentive
        log_key = np.where(self._eligible, np.log(key_share) + l_att[rows.key_user] + d_key, -np.inf)
        # per-user normaliser over attentive, careless, unseen-partisan and every shown model
        m = np.maximum(np.maximum(log_a, log_c), log_unseen)
        np.maximum.at(m, rows.key_user, log_key)
        z = np.exp(log_a - m) + np.exp(log_c - m) + np.exp(log_unseen - m) + np.bincount(rows.key_user, weights=np.exp(log_key - m[rows.key_user]), minlength=n_users)
        log_z = m + np.log(z)
        r = np.exp(log_key - log_z[rows.key_user])
        untested_per_share = np.exp(l_att - log_z)  # times a share: the posterior of a partisan for an unseen model
        return np.exp(log_a - log_z), np.exp(log_c - log_z), r, untested_per_share

    def _keys_of_entries(self, counts, m_of) -> np.ndarray:
        """For each counts entry and each of its two models (shape ``(2, entries)``), the row of
        its (user, model) key in the posteriors, or ``-1`` where the user never voted
        decisively with that model shown."""
        rows = self._rows
        keys = rows.key_user.astype(np.int64) * rows.n_models + rows.key_model  # sorted (np.unique)
        out = np.empty((2, counts.count.size), dtype=np.intp)
        for i, side in enumerate((MODEL_A, MODEL_B)):
            key = counts.user.astype(np.int64) * rows.n_models + m_of[counts.contexts[side].to_numpy()][counts.context]
            at = np.minimum(np.searchsorted(keys, key), keys.size - 1)
            out[i] = np.where(keys[at] == key, at, -1)
        return out

    def _vote_weights(self, counts, post_c, r):
        """Per counts entry, the posterior that its user cast it as an attentive user would:
        ``1 - P(careless) - P(partisan for either model in the vote)`` (a partisan for a model
        not in the vote votes attentively)."""
        r_or_0 = np.append(r, 0.0)  # key -1: never shown decisively, no partisan posterior
        out = 1.0 - post_c[counts.user] - r_or_0[self._entry_keys[0]] - r_or_0[self._entry_keys[1]]
        return np.clip(out, 0.0, 1.0)

    def _users_table(self, index, models, r, post_a, post_c, p_att, beta, rho):
        rows = self._rows
        n_users = index.size
        p_partisan = np.bincount(rows.key_user, weights=r, minlength=n_users)
        order = np.lexsort((-r, rows.key_user))
        first = np.ones(order.size, bool)
        first[1:] = rows.key_user[order][1:] != rows.key_user[order][:-1]
        best = order[first]
        target = np.full(n_users, None, dtype=object)
        target[rows.key_user[best]] = models.to_numpy(dtype=object)[rows.key_model[best]]
        # the test: picks of the suspected model under the user's honest mixture, per vote
        n_tested = np.bincount(rows.key_user, minlength=n_users)
        chosen_key = np.full(n_users, -1)
        chosen_key[rows.key_user[best]] = best
        sel = chosen_key[rows.user] == rows.key_of
        pu, pm, po, pick, cnt, first_shown = rows.user[sel], rows.model[sel], rows.opp[sel], rows.picked[sel], rows.n[sel].astype(np.int64), rows.first[sel]
        p0 = p_att[pu] * expit(beta[pm] - beta[po]) + (1.0 - p_att[pu]) * np.where(first_shown, rho[pu], 1.0 - rho[pu])
        picks = np.bincount(pu, weights=cnt * pick, minlength=n_users)
        shown = np.bincount(pu, weights=cnt, minlength=n_users)
        expected = np.bincount(pu, weights=cnt * p0, minlength=n_users)
        p_value = np.full(n_users, np.nan)
        order = np.argsort(pu, kind="stable")
        bounds = np.searchsorted(pu[order], np.arange(n_users + 1))
        for user_id in np.flatnonzero(p_partisan >= _TESTED):  # the test where the posterior suspects at all
            rows_of_user = order[bounds[user_id] : bounds[user_id + 1]]
            if rows_of_user.size:
                probs = np.repeat(p0[rows_of_user], cnt[rows_of_user])
                p_value[user_id] = min(1.0, _poisson_binomial_tail(probs, int(picks[user_id])) * max(int(n_tested[user_id]), 1))
        table = pd.DataFrame(
            {"p_partisan": p_partisan, "target": target, "target_shown": shown, "target_picks": picks, "target_picks_expected": expected,
             "p_value": p_value, "p_attentive": post_a, "p_careless": post_c},
            index=index,
        )
        table["flagged"] = table["p_partisan"] > 0.5
        table["significant"] = table["p_value"] < self.level
        table.attrs.update(level=self.level, q=self.q_)
        return table


class _Rows:
    """One row per (decisive counts entry, model on screen); ``key``: the (user, model) pair."""

    def __init__(self, user, model, opp, picked, n, first, n_models):
        self.user, self.model, self.opp, self.picked, self.n, self.first, self.n_models = user, model, opp, picked, n, first, n_models
        key = user.astype(np.int64) * n_models + model
        keys, self.key_of = np.unique(key, return_inverse=True)
        self.key_user, self.key_model = (keys // n_models).astype(np.intp), (keys % n_models).astype(np.intp)


def _poisson_binomial_tail(p: np.ndarray, k: int) -> float:
    """P(at least ``k`` successes) of independent Bernoulli(p_i), exactly (dynamic programming)."""
    if k <= 0:
        return 1.0
    dist = np.zeros(p.size + 1)
    dist[0] = 1.0
    for i, pi in enumerate(p):
        dist[1 : i + 2] = dist[1 : i + 2] * (1.0 - pi) + dist[: i + 1] * pi
        dist[0] *= 1.0 - pi
    return float(dist[k:].sum())
