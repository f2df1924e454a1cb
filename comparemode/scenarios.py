"""Votes from processes that are *not* the package's model: misspecification scenarios.

This module is written apart from :mod:`comparemode.models.simulate` on purpose: it imports
nothing from ``comparemode.models`` or the likelihood code, draws its randomness in its own
way, and computes its own Bayes-optimal "oracle" for each process. It is what the
misspecification benchmark (``benchmarks/misspecification.py``) and the tests use to check the
package's promises on data its own model did not generate (docs/design.md section 9).

Two models, ``"alpha"`` and ``"beta"``; ``alpha``'s answer is better with probability
``mu_true`` (every scenario, except that ``topic`` varies it per user). Each vote shows the
two in a random order (alpha first with probability 1/2). A user's votes are in time order
in the table (a ``time`` column and the row order agree).

Scenarios (``SCENARIOS``):

``control``
    the package's own two-type model: attentive users pick the better answer with ``mu``,
    careless users pick the first-shown answer with a personal rate ``rho_u ~ Beta(1.5, 1)``;
    tie propensities ``Beta(2, 8)`` (attentive) and ``Beta(1, 4)`` (careless).
``mu_low`` / ``mu_high``
    as the control, but the true mu is 0.8 / 0.6 while the analyst is told 0.7 (told 0.1 too
    low / too high).
``partial``
    partial attention: every user casts a share ``theta_u ~ Beta(2, 2)`` of votes attentively
    and the rest by position; "careless" means ``theta_u < 0.5``. One tie propensity per user,
    ``Beta(2, 8)``, whatever the vote's state.
``drift``
    30% of users careless from the start, 35% attentive throughout, 35% attentive until a
    change point uniform over their votes and careless after it; "careless" means that at
    least half of the user's votes are careless. Ties as in ``partial``.
``topic``
    attentive users' own ``mu_u ~ Beta(mu * 20, (1 - mu) * 20)`` (sd about 0.1): their topics
    separate the two models by different amounts.
``careless_mix``
    careless users are a mixture of random clickers (rate 1/2, 40%), first-position clickers
    (0.92, 40%) and second-position clickers (0.08, 20%), not one Beta.
``heavy_tail``
    the control's process with heavy-tailed votes per user, as in a chat product: a discrete
    Pareto (median 2 to 3 votes, a few users with hundreds, capped at 1,000).

:func:`simulate_scenario` returns a :class:`Scenario`: the votes (canonical columns plus
``time``), the per-user truth, the per-vote truth and the oracle posterior P(attentive | votes)
computed with the true process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from comparemode._dist import beta_pdf
from comparemode.errors import ConfigError

__all__ = ["SCENARIOS", "Scenario", "simulate_scenario", "oracle_leave_one_out", "Arena", "simulate_arena", "simulate_tie_habits"]

SCENARIOS = ("control", "mu_low", "mu_high", "partial", "drift", "topic", "careless_mix", "heavy_tail")

#: What the analyst is told in every scenario.
TOLD_MU = 0.7
_TRUE_MU = {"mu_low": 0.8, "mu_high": 0.6}
_PI = 0.7
_POS = (1.5, 1.0)  # careless first-position rate Beta
_TIE_ATT = (2.0, 8.0)
_TIE_CAR = (1.0, 4.0)
_MIX_RATES = np.array([0.5, 0.92, 0.08])
_MIX_WEIGHTS = np.array([0.4, 0.4, 0.2])
_TOPIC_KAPPA = 20.0
_GRID = 81  # points per dimension of the oracle's numerical integrals


@dataclass
class Scenario:
    """One simulated data set.

    ``votes``: ``user``, ``model_a``, ``model_b``, ``winner``, ``time`` (rows in time order).
    ``users``: per user ``attentive`` (the truth the filter is judged by), ``theta`` (the
    user's attentive share: 0 or 1 for two types, the propensity each vote is drawn with under
    partial attention, the share of votes before the change point under drift), ``n_votes``,
    ``p_oracle`` (P(attentive | votes) under the true process). ``vote_attentive``: per vote, whether that vote was cast attentively.
    ``told_mu``: ``{"alpha": mu}``, what the analyst passes; ``mu_true``: the truth.
    """

    name: str
    votes: pd.DataFrame
    users: pd.DataFrame
    vote_attentive: np.ndarray
    told_mu: dict
    mu_true: float
    better: str = "alpha"


def _votes_per_user(name: str, n_users: int, rng) -> np.ndarray:
    if name == "heavy_tail":
        # discrete Pareto: floor(1.6 * U^(-1/1.1)), median 3, mean dominated by a few heavy users
        x = np.floor(1.6 * rng.random(n_users) ** (-1.0 / 1.1)).astype(np.int64)
        return np.clip(x, 1, 1000)
    return rng.integers(8, 25, n_users)  # 8 .. 24, mean 16


def simulate_scenario(name: str, n_users: int = 3000, random_seed: int = 0) -> Scenario:
    """Simulate ``n_users`` users of scenario ``name`` (see the module docstring)."""
    if name not in SCENARIOS:
        raise ConfigError(f"unknown scenario {name!r}; the scenarios are {SCENARIOS}")
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 2:
        raise ConfigError(f"n_users must be an integer of at least 2, got {n_users!r}")
    if isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)) or random_seed < 0:
        raise ConfigError(f"random_seed must be a non-negative integer, got {random_seed!r}")
    rng = np.random.default_rng([int(random_seed), SCENARIOS.index(name)])
    mu = _TRUE_MU.get(name, TOLD_MU)
    n = _votes_per_user(name, n_users, rng)
    total = int(n.sum())
    owner = np.repeat(np.arange(n_users), n)
    step = np.concatenate([np.arange(k) for k in n])  # position of the vote in its user's sequence

    # who is careless, vote by vote
    if name == "partial":
        theta = rng.beta(2.0, 2.0, n_users)
        vote_att = rng.random(total) < theta[owner]
        attentive = theta >= 0.5
    elif name == "drift":
        kind = rng.choice(3, size=n_users, p=[0.30, 0.35, 0.35])  # 0 careless, 1 attentive, 2 drifting
        change = np.where(kind == 0, 0, np.where(kind == 1, n, rng.integers(0, n + 1)))
        vote_att = step < change[owner]
        theta = change / n
        attentive = theta > 0.5
    else:
        attentive = rng.random(n_users) < _PI
        theta = attentive.astype(float)
        vote_att = attentive[owner]

    # careless first-position rates
    if name == "careless_mix":
        rho = _MIX_RATES[rng.choice(3, size=n_users, p=_MIX_WEIGHTS)]
    else:
        rho = rng.beta(*_POS, n_users)
    # tie propensities
    if name in ("partial", "drift"):
        tau = rng.beta(*_TIE_ATT, n_users)
        p_tie = tau[owner]
    else:
        tau = np.where(attentive, rng.beta(*_TIE_ATT, n_users), rng.beta(*_TIE_CAR, n_users))
        p_tie = tau[owner]
    mu_user = rng.beta(mu * _TOPIC_KAPPA, (1 - mu) * _TOPIC_KAPPA, n_users) if name == "topic" else np.full(n_users, mu)

    alpha_first = rng.random(total) < 0.5
    tie = rng.random(total) < p_tie
    picks_alpha_if_att = rng.random(total) < mu_user[owner]
    picks_first_if_careless = rng.random(total) < rho[owner]
    picks_first = np.where(vote_att, picks_alpha_if_att == alpha_first, picks_first_if_careless)
    winner = np.where(tie, "tie", np.where(picks_first, "model_a", "model_b"))

    # times: uniform, sorted within each user (the arrays above run user by user, in vote order)
    times = rng.random(total)
    times = times[np.lexsort((times, owner))]
    width = len(str(n_users - 1))
    ids = np.array([f"w{i:0{width}d}" for i in range(n_users)], dtype=object)
    votes = pd.DataFrame(
        {
            "user": ids[owner],
            "model_a": np.where(alpha_first, "alpha", "beta"),
            "model_b": np.where(alpha_first, "beta", "alpha"),
            "winner": winner,
            "time": times,
        }
    )
    chrono = np.argsort(times, kind="stable")
    votes = votes.iloc[chrono].reset_index(drop=True)
    vote_att_chrono = vote_att[chrono]

    users = pd.DataFrame({"attentive": attentive, "theta": theta, "n_votes": n}, index=pd.Index(ids, name="user"))
    users["p_oracle"] = _oracle(name, votes, ids, mu, users)
    return Scenario(name=name, votes=votes, users=users, vote_attentive=vote_att_chrono, told_mu={"alpha": TOLD_MU}, mu_true=mu)


# ----------------------------------------------------------------------------- oracle

def _user_counts(votes: pd.DataFrame, ids: np.ndarray):
    """Per user: votes, ties, and decisive counts by (alpha shown first?, first picked?)."""
    code = pd.Index(ids).get_indexer(votes["user"])
    w = votes["winner"].to_numpy()
    af = (votes["model_a"] == "alpha").to_numpy()
    dec = w != "tie"
    first = w == "model_a"
    u = len(ids)
    n = np.bincount(code, minlength=u)
    t = np.bincount(code[~dec], minlength=u)
    cells = {}
    for a in (True, False):
        for f in (True, False):
            cells[(a, f)] = np.bincount(code[dec & (af == a) & (first == f)], minlength=u)
    return code, n, t, cells


def _log_beta_binom(k, m, a, b):
    return special.betaln(k + a, m - k + b) - special.betaln(a, b)


def oracle_leave_one_out(sc: Scenario) -> np.ndarray | None:
    """Per vote, P(its user is attentive | the user's *other* votes) under the true process: the
    oracle of a cross-fitted decision. For the scenarios with two user types (None for
    ``partial`` and ``drift``, whose users are not of two types)."""
    if sc.name in ("partial", "drift"):
        return None
    v = sc.votes
    code = sc.users.index.get_indexer(v["user"])
    tie = (v["winner"] == "tie").to_numpy()
    first = (v["winner"] == "model_a").to_numpy()
    picked_alpha = (((v["winner"] == "model_a") & (v["model_a"] == "alpha")) | ((v["winner"] == "model_b") & (v["model_b"] == "alpha"))).to_numpy()
    u = len(sc.users)

    def others(x):  # the user's total minus the vote's own
        x = x.astype(float)
        return np.bincount(code, weights=x, minlength=u)[code] - x

    n, t, f, k = others(np.ones(len(v))), others(tie), others(first), others(picked_alpha)
    return _two_type_posterior(sc.name, n, t, f, k, sc.mu_true)


def _oracle(name: str, votes: pd.DataFrame, ids: np.ndarray, mu: float, users: pd.DataFrame) -> np.ndarray:
    code, n, t, c = _user_counts(votes, ids)
    # alpha picked: (alpha first, first picked) or (alpha second, second picked)
    k_alpha = c[(True, True)] + c[(False, False)]
    f = c[(True, True)] + c[(False, True)]
    if name == "partial":
        return _oracle_partial(c)
    if name == "drift":
        return _oracle_drift(votes, code, len(ids), users["n_votes"].to_numpy())
    return _two_type_posterior(name, n, t, f, k_alpha, mu)


def _two_type_posterior(name: str, n, t, f, k_alpha, mu: float) -> np.ndarray:
    """P(attentive | counts) for the scenarios with two user types."""
    d = n - t
    # two types: log P(votes | careless) - log P(votes | attentive), then Bayes
    if name == "careless_mix":
        comp = [np.log(w) + f * np.log(r) + (d - f) * np.log1p(-r) for w, r in zip(_MIX_WEIGHTS, _MIX_RATES)]
        l0 = special.logsumexp(np.stack(comp), axis=0)
    else:
        l0 = _log_beta_binom(f, d, *_POS)
    if name == "topic":
        l1 = _log_beta_binom(k_alpha, d, mu * _TOPIC_KAPPA, (1 - mu) * _TOPIC_KAPPA)
    else:
        l1 = k_alpha * math.log(mu) + (d - k_alpha) * math.log1p(-mu)
    l1 = l1 + _log_beta_binom(t, n, *_TIE_ATT)
    l0 = l0 + _log_beta_binom(t, n, *_TIE_CAR)
    return special.expit(math.log(_PI / (1 - _PI)) + l1 - l0)


def _grid(a: float, b: float):
    """Midpoint grid on (0, 1) with Beta(a, b) weights (normalised)."""
    x = (np.arange(_GRID) + 0.5) / _GRID
    w = beta_pdf(x, a, b)
    return x, w / w.sum()


def _oracle_partial(c) -> np.ndarray:
    """P(theta_u >= 1/2 | votes): a vote is attentive with probability theta (picks alpha with
    mu) or careless (picks first with rho); theta ~ Beta(2, 2) and rho ~ Beta(1.5, 1)
    integrated on a grid. Ties carry no information (one tie habit per user)."""
    th, wt = _grid(2.0, 2.0)
    rh, wr = _grid(*_POS)
    T, R = np.meshgrid(th, rh, indexing="ij")
    mu = TOLD_MU
    ll = 0.0
    for (a_first, first), count in c.items():
        picked_alpha = a_first == first
        att = mu if picked_alpha else 1 - mu
        car = R if first else 1 - R
        p = T * att + (1 - T) * car  # grid
        ll = ll + count[:, None, None] * np.log(p)[None]
    m = ll.max(axis=(1, 2), keepdims=True)
    post = np.exp(ll - m) * (wt[:, None] * wr[None, :])[None]
    hi = th >= 0.5
    return post[:, hi, :].sum(axis=(1, 2)) / post.sum(axis=(1, 2))


def _oracle_drift(votes: pd.DataFrame, code: np.ndarray, n_users: int, n_votes: np.ndarray) -> np.ndarray:
    """P(at least half of the votes attentive | votes in order), summing over the change point
    k (votes before k attentive, from k on careless): prior 0.30 on k = 0, 0.35 on k = n and
    0.35 spread uniformly over 0 .. n; the careless part's first-position picks are
    Beta-Binomial. Ties carry no information."""
    w = votes["winner"].to_numpy()
    af = (votes["model_a"] == "alpha").to_numpy()
    dec = (w != "tie").astype(float)
    first = (w == "model_a").astype(float)
    att_ll = np.where(dec > 0, np.where((first > 0) == af, math.log(TOLD_MU), math.log1p(-TOLD_MU)), 0.0)
    order = np.argsort(code, kind="stable")  # votes of each user together, time order kept
    out = np.empty(n_users)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(code, minlength=n_users))])
    for u in range(n_users):
        idx = order[bounds[u] : bounds[u + 1]]
        m = idx.size
        a_cum = np.concatenate([[0.0], np.cumsum(att_ll[idx])])  # attentive log-lik of votes < k
        d_suffix = np.concatenate([np.cumsum(dec[idx][::-1])[::-1], [0.0]])  # decisive votes >= k
        f_suffix = np.concatenate([np.cumsum(first[idx][::-1])[::-1], [0.0]])
        k = np.arange(m + 1)
        ll = a_cum + _log_beta_binom(f_suffix, d_suffix, *_POS)
        prior = np.full(m + 1, 0.35 / (m + 1))
        prior[0] += 0.30
        prior[m] += 0.35
        lp = ll + np.log(prior)
        post = np.exp(lp - lp.max())
        out[u] = post[k > m / 2].sum() / post.sum()
    return out


# --------------------------------------------------------------------------- many models


@dataclass
class Arena:
    """Arena votes on many models (:func:`simulate_arena`). ``votes``: canonical columns;
    ``users``: per user ``role`` ("attentive", "careless" or "partisan"), ``target`` (the model
    a partisan favours, else None), ``n_votes``; ``strengths``: the true Bradley-Terry
    log-strengths, mean zero, by model; ``target``: the partisans' model (None without them)."""

    votes: pd.DataFrame
    users: pd.DataFrame
    strengths: pd.Series
    target: str | None


def simulate_arena(n_users: int = 3000, n_models: int = 30, *, careless: float = 0.25, partisans: float = 0.0,
                   partisan_min_votes: int = 50, target_rank: int = 15, ties: float = 0.15, random_seed: int = 0) -> Arena:
    """Arena votes from a process written apart from the package's model.

    True log-strengths ``N(0, 1)``, models named at random; every vote shows a uniformly drawn
    pair in random order. Votes per user: a discrete Pareto (median 3, capped at 1,000).
    Attentive users: Bradley-Terry on the decisive votes, a tie with probability ``ties``.
    Careless users (share ``careless`` of the non-partisans): pick the first-shown answer at a
    rate of their own, uniform on (0.3, 0.95), tie at a rate uniform on (0, 0.4). Partisans
    (share ``partisans`` of all accounts, each with at least ``partisan_min_votes`` votes):
    vote for the model of true rank ``target_rank`` whenever it is on screen, and like
    attentive users otherwise.
    """
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 2:
        raise ConfigError(f"n_users must be an integer of at least 2, got {n_users!r}")
    if not (isinstance(n_models, (int, np.integer)) and 3 <= n_models <= 10_000):
        raise ConfigError(f"n_models must be an integer from 3 to 10,000, got {n_models!r}")
    if not (0 <= careless < 1 and 0 <= partisans < 1 and 0 <= ties < 1):
        raise ConfigError("careless, partisans and ties are shares in [0, 1)")
    if partisans > 0 and not (1 <= target_rank <= n_models):
        raise ConfigError(f"target_rank must lie in 1 .. {n_models}, got {target_rank!r}")
    rng = np.random.default_rng(random_seed)
    beta = rng.standard_normal(n_models)
    beta -= beta.mean()
    names = np.array([f"model-{i:03d}" for i in rng.permutation(n_models)], dtype=object)
    n_votes = np.clip(np.floor(1.6 * rng.random(n_users) ** (-1.0 / 1.1)).astype(np.int64), 1, 1000)
    role = np.where(rng.random(n_users) < careless, "careless", "attentive").astype(object)
    is_partisan = rng.random(n_users) < partisans
    role[is_partisan] = "partisan"
    n_votes[is_partisan] = np.maximum(n_votes[is_partisan], partisan_min_votes)
    target = int(np.argsort(-beta)[target_rank - 1]) if is_partisan.any() else -1
    user = np.repeat(np.arange(n_users), n_votes)
    a = rng.integers(0, n_models, user.size)
    b = (a + rng.integers(1, n_models, user.size)) % n_models
    first = rng.uniform(0.3, 0.95, n_users)[user]
    tie_rate = np.where(role == "careless", rng.uniform(0.0, 0.4, n_users), ties)[user]
    r = role[user]
    p_first = np.where(r == "careless", first, 1.0 / (1.0 + np.exp(-(beta[a] - beta[b]))))
    winner = np.where(rng.random(user.size) < p_first, "model_a", "model_b").astype(object)
    winner[rng.random(user.size) < tie_rate] = "tie"
    rigged = (r == "partisan") & ((a == target) | (b == target))
    winner[rigged] = np.where(a[rigged] == target, "model_a", "model_b")
    ids = np.array([f"user-{u:06d}" for u in range(n_users)], dtype=object)
    votes = pd.DataFrame({"user": ids[user], "model_a": names[a], "model_b": names[b], "winner": winner})
    users = pd.DataFrame({"role": role, "target": np.where(is_partisan, names[target] if target >= 0 else None, None), "n_votes": n_votes},
                         index=pd.Index(ids, name="user"))
    return Arena(votes=votes, users=users, strengths=pd.Series(beta, index=names, name="strength"), target=names[target] if target >= 0 else None)


def simulate_tie_habits(n_users: int = 600, votes_per_user: int = 20, random_seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Two models, ``x``'s answer better with probability 0.75; 60% attentive users and 25%
    careless random clickers, both tying on 15% of votes, and 15% "tie-heavy" users who answer
    tie to 90% of votes and pick at random otherwise. Returns the votes and each user's kind
    ("attentive", "careless", "tie_heavy"): users whose votes say little, for the "no
    evidence" policies."""
    rng = np.random.default_rng(random_seed)
    kind = rng.choice(["attentive", "careless", "tie_heavy"], n_users, p=[0.6, 0.25, 0.15])
    user = np.repeat(np.arange(n_users), votes_per_user)
    first_is_x = rng.random(user.size) < 0.5
    x_wins = rng.random(user.size) < 0.75
    k = kind[user]
    pick_first = np.where(k == "attentive", x_wins == first_is_x, rng.random(user.size) < 0.5)
    winner = np.where(pick_first, "model_a", "model_b").astype(object)
    winner[rng.random(user.size) < np.where(k == "tie_heavy", 0.9, 0.15)] = "tie"
    ids = np.array([f"w{u}" for u in range(n_users)], dtype=object)
    votes = pd.DataFrame({"user": ids[user], "model_a": np.where(first_is_x, "x", "y"), "model_b": np.where(first_is_x, "y", "x"), "winner": winner})
    return votes, pd.Series(kind, index=pd.Index(ids, name="user"), name="kind")
