"""Simulator: draws comparison-mode votes from the generative model (docs/design.md section 3).

Per user: a type (attentive with probability ``pi``), a tie propensity from the type's
Beta distribution, a first-position rate for careless users (Beta, shared or 1/2), and a
number of votes. Per vote: two models (the two of a two-model study, or a random pair of
``strengths``' models), a random order on screen, then a tie with the user's propensity,
otherwise an attentive pick of model_a with probability ``mu_t`` or a careless pick of the
first answer with the user's rate.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import betaln, expit, gammaln, xlog1py, xlogy

from comparemode.constants import (
    ELO_SCALE,
    MODEL_A,
    MODEL_B,
    PROMPT_ID,
    TIE,
    USER,
    WIN_A,
    WIN_B,
    WINNER,
)
from comparemode.errors import ConfigError
from comparemode.models.likelihood import (
    davidson_logp,
    posterior_attentive,
    type_logliks,
)
from comparemode.models.stats import aggregate, replicate_vote_counts, without_ties
from comparemode.reference import count_with, encode_counts, resolve_reference

__all__ = ["Simulation", "simulate_votes", "DEFAULT_SIMULATION"]

#: The built-in default: the setting of the foundation issue's recovery test.
DEFAULT_SIMULATION = {
    "n_users": 2000,
    "votes_per_user": 20,
    "pi": 0.6,
    "mu": 0.7,
    "models": ("model_x", "model_y"),
    "careless": "beta",
    "careless_first": (1.95, 1.05),  # mean 0.65, spans random to strong first-position clickers
    "tie_attentive": (2.0, 8.0),  # mean 0.2
    "tie_careless": (1.0, 4.0),  # mean 0.2, more dispersed
}


@dataclass
class Simulation:
    """Simulated votes and the truth behind them.

    ``votes``: canonical votes table. ``users``: one row per user with the true ``attentive``
    flag, ``first_rate`` (careless users; NaN for attentive ones), ``tie_rate`` and
    ``n_votes``. ``params``: the settings used (JSON-able). ``mu``: the reference to pass to
    ``fit`` (``{"model_x": 0.7}`` for two models, else None and ``strengths`` is set).
    """

    votes: pd.DataFrame
    users: pd.DataFrame
    params: dict
    mu: dict | None = None
    strengths: pd.Series | None = field(default=None)

    @property
    def reference(self) -> dict:
        """Keyword arguments that tell ``fit`` where mu comes from."""
        if self.mu is not None:
            return {"mu": self.mu}
        return {"strengths": self.strengths, "scale": self.params.get("scale", "bt")}

    @property
    def true_parameters(self) -> dict:
        """The simulation's parameters named as the Bayesian model names them."""
        return model_parameters(self.params)

    def true_p_attentive(self, ties: str = "model") -> pd.Series:
        """P(attentive | votes) computed with the true parameters (the oracle that an
        estimator's classification is compared with), one value per user. Only for votes
        simulated from the two-type model."""
        if self.params.get("quality") is not None:
            raise ConfigError("these votes were simulated without user types (quality=...): there is no true P(attentive)")
        ref = resolve_reference(self.votes, **self.reference)
        counts = count_with(self.votes, ref, keep_rows=True)  # the counts every fitter reads
        enc, user_index = encode_counts(counts, ref)
        stats = aggregate(enc, mu=ref.mu if ref.kind == "scalar" else None)
        s = stats.s
        if ties == "drop" or not self.params["ties"]:
            stats = without_ties(stats)
            s = stats.s
            ties = "drop"
        elif self.params.get("attentive_ties") == "davidson":
            ties = "davidson"
            factor = math.log(10.0) / ELO_SCALE if self.params.get("scale") == "elo" else 1.0
            beta = self.strengths.astype(float) * factor
            d = beta.reindex(self.votes[MODEL_A].astype(str)).to_numpy() - beta.reindex(self.votes[MODEL_B].astype(str)).to_numpy()
            w = self.votes[WINNER].to_numpy()
            logp = davidson_logp(d, math.log(self.params["davidson_nu"]), (w == WIN_A) * 1.0, (w == WIN_B) * 1.0, (w == TIE) * 1.0)
            s = np.bincount(counts.rows[0], weights=logp, minlength=enc.n_users)  # logp is in the votes' row order
        careless = self.params["careless"]
        first = self.params["careless_first"]
        params = {
            "careless_first": tuple(first) if careless == "beta" else first,
            "tie_attentive": tuple(self.params["tie_attentive"]),
            "tie_careless": tuple(self.params["tie_careless"]),
        }
        l1, l0 = type_logliks(stats.n, stats.t, stats.f, s, params, careless, ties)
        p = posterior_attentive(l1, l0, self.params["pi"])
        return pd.Series(p, index=user_index, name="p_attentive_true").reindex(self.users.index)


def model_parameters(params: dict) -> dict:
    """Simulation settings (``Simulation.params``) in the parametrisation of the Bayesian
    model: ``pi``, ``mu`` (two models), Beta means and concentrations (``*_mean``,
    ``*_kappa``) of the careless first-position rates and of each type's tie propensity."""
    out = {"pi": params["pi"]}
    if "mu" in params:
        out["mu"] = params["mu"]
    if params["careless"] == "beta":
        a, b = params["careless_first"]
        out.update(careless_first_mean=a / (a + b), careless_first_kappa=a + b)
    elif params["careless"] == "shared":
        out["careless_first"] = params["careless_first"]
    if params["ties"]:
        davidson = params.get("attentive_ties") == "davidson"
        if davidson:
            out["davidson_nu"] = params["davidson_nu"]
        for kind in ("careless",) if davidson else ("attentive", "careless"):
            a, b = params[f"tie_{kind}"]
            out.update({f"tie_{kind}_mean": a / (a + b), f"tie_{kind}_kappa": a + b})
    return out


def _beta_pair(value, name):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (a, b) of positive numbers, got {value!r}") from None
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ConfigError(f"{name} must be a pair (a, b) of positive finite numbers, got {value!r}")
    return a, b


def _number(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


def _votes_per_user(spec, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """Votes per user from an int (fixed) or a dict ``{"distribution": ..., "mean": ...}``.

    Distributions: ``fixed``, ``poisson`` (1 + Poisson(mean - 1)), ``geometric`` (mean),
    ``negative_binomial`` (1 + NB with the given mean - 1 and ``dispersion``; heavy-tailed,
    like real crowds). Optional ``max`` caps the count.
    """
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if spec < 1:
            raise ConfigError(f"votes_per_user must be at least 1, got {spec}")
        return np.full(n_users, int(spec), dtype=np.int64)
    if not isinstance(spec, dict) or "distribution" not in spec:
        raise ConfigError(
            "votes_per_user must be a positive int or a dict like {'distribution': 'poisson', 'mean': 10}, "
            f"got {spec!r}"
        )
    dist = spec["distribution"]
    mean = float(spec.get("mean", 10))
    if not mean >= 1:
        raise ConfigError(f"votes_per_user mean must be at least 1, got {mean}")
    if dist == "fixed":
        counts = np.full(n_users, int(round(mean)), dtype=np.int64)
    elif dist == "poisson":
        counts = 1 + rng.poisson(mean - 1.0, n_users)
    elif dist == "geometric":
        counts = rng.geometric(1.0 / mean, n_users)
    elif dist == "negative_binomial":
        r = float(spec.get("dispersion", 1.0))
        if not r > 0:
            raise ConfigError(f"negative_binomial dispersion must be positive, got {r}")
        m1 = mean - 1.0
        counts = 1 + (rng.negative_binomial(r, r / (r + m1), n_users) if m1 > 0 else np.zeros(n_users, np.int64))
    else:
        raise ConfigError(
            f"unknown votes_per_user distribution {dist!r}; use fixed, poisson, geometric or negative_binomial"
        )
    if "max" in spec:
        cap = spec["max"]
        if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 1:
            raise ConfigError(f"votes_per_user max must be a positive integer, got {cap!r}")
        counts = np.minimum(counts, int(cap))
    return counts.astype(np.int64)


#: Memory a simulated vote takes at the peak of ``simulate_votes`` and a fit on its output
#: (the votes table with its string columns, the codes and the per-user arrays), measured
#: generously; used only to refuse a size that cannot fit before anything is allocated.
BYTES_PER_SIMULATED_VOTE = 400
BYTES_PER_SIMULATED_USER = 400


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_size(n_users: int, votes_per_user, n_votes: int | None = None) -> None:
    """Refuse a simulation that cannot fit in memory, with its size, before allocating it."""
    if n_votes is None:
        per = votes_per_user if isinstance(votes_per_user, (int, np.integer)) and not isinstance(votes_per_user, bool) else 1
        if isinstance(votes_per_user, dict):
            try:
                per = max(1.0, float(votes_per_user.get("mean", 10)))
            except (TypeError, ValueError):
                per = 1
        n_votes = int(n_users) * per
    need = int(n_votes) * BYTES_PER_SIMULATED_VOTE + int(n_users) * BYTES_PER_SIMULATED_USER
    have = available_memory()
    if have is not None and need > have:
        raise ConfigError(
            f"simulating {int(n_users):,} users and {int(n_votes):,} votes needs about {need / 2**30:,.1f} GiB of memory; "
            f"{have / 2**30:,.1f} GiB are available. Choose fewer users or votes per user"
        )


def simulate_votes(
    n_users: int = DEFAULT_SIMULATION["n_users"],
    votes_per_user=DEFAULT_SIMULATION["votes_per_user"],
    pi: float = DEFAULT_SIMULATION["pi"],
    mu: float = DEFAULT_SIMULATION["mu"],
    models=DEFAULT_SIMULATION["models"],
    strengths=None,
    scale: str = "bt",
    careless: str = DEFAULT_SIMULATION["careless"],
    careless_first=DEFAULT_SIMULATION["careless_first"],
    tie_attentive=DEFAULT_SIMULATION["tie_attentive"],
    tie_careless=DEFAULT_SIMULATION["tie_careless"],
    ties: bool = True,
    attentive_ties: str = "beta",
    davidson_nu: float = 0.5,
    quality=None,
    random_seed: int | None = None,
) -> Simulation:
    """Draw votes from the two-type model.

    Parameters
    ----------
    n_users : number of users.
    votes_per_user : int or dict, see :func:`_votes_per_user`.
    pi : probability that a user is attentive.
    mu : two-model case: P(``models[0]``'s answer beats ``models[1]``'s).
    models : the two models of a two-model study (ignored when ``strengths`` is given).
    strengths : many-model case: dict or Series model -> Bradley-Terry score (or Elo
        rating with ``scale="elo"``); each vote shows a uniformly drawn pair.
    careless : ``"beta"`` (per-user first-position rate from Beta(careless_first)),
        ``"shared"`` (``careless_first`` is the one rate) or ``"random"`` (1/2).
    tie_attentive, tie_careless : Beta parameters of each type's tie propensity.
    ties : False for no ties at all.
    attentive_ties : ``"beta"`` (each attentive user has a tie propensity drawn from
        ``tie_attentive``) or ``"davidson"`` (many-model case: an attentive vote is a win for
        model_a, a win for model_b or a tie in the ratio ``e^{d/2} : e^{-d/2} : davidson_nu``
        with ``d`` the strength difference; the users' ``tie_rate`` is then NaN for attentive
        users). Careless users always have a Beta tie propensity.
    davidson_nu : Davidson's tie parameter (``P(tie) = nu / (2 + nu)`` between equal models).
    quality : instead of two user types, each vote is attentive with a per-user probability:
        a number ``theta`` (the homogeneous model: every user alike) or a pair ``(c, d)``
        (the continuous-quality model: ``theta_u ~ Beta(c, d)``). Careless votes pick by
        position as ``careless`` says; every user's tie propensity is drawn from
        ``tie_attentive``; ``pi`` is ignored. The users table gets ``quality`` (theta_u), and
        ``attentive`` is ``theta_u >= 0.5``.
    random_seed : seed of ``numpy.random.default_rng``.
    """
    if random_seed is not None and (
        isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)) or random_seed < 0
    ):
        raise ConfigError(f"random_seed must be a non-negative integer or None, got {random_seed!r}")
    rng = np.random.default_rng(random_seed)
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ConfigError(f"n_users must be a positive integer, got {n_users!r}")
    pi = _number(pi, "pi")
    if not (0.0 <= pi <= 1.0):
        raise ConfigError(f"pi must lie in [0, 1], got {pi!r}")
    if scale not in ("bt", "elo"):
        raise ConfigError(f"scale must be 'bt' or 'elo', got {scale!r}")
    if careless not in ("beta", "shared", "random"):
        raise ConfigError(f"careless must be 'beta', 'shared' or 'random', got {careless!r}")
    if attentive_ties not in ("beta", "davidson"):
        raise ConfigError(f"attentive_ties must be 'beta' or 'davidson', got {attentive_ties!r}")
    davidson = attentive_ties == "davidson" and ties
    if davidson and strengths is None:
        raise ConfigError("attentive_ties='davidson' needs strengths (the many-model case)")
    if davidson and not (isinstance(davidson_nu, (int, float)) and math.isfinite(davidson_nu) and davidson_nu > 0):
        raise ConfigError(f"davidson_nu must be a positive number, got {davidson_nu!r}")
    ta = _beta_pair(tie_attentive, "tie_attentive")
    tc = _beta_pair(tie_careless, "tie_careless")
    _check_size(n_users, votes_per_user)
    counts = _votes_per_user(votes_per_user, n_users, rng)
    _check_size(n_users, votes_per_user, int(counts.sum()))
    theta = None
    if quality is not None:
        if np.ndim(quality) == 0:
            q = float(quality)
            if not 0.0 <= q <= 1.0:
                raise ConfigError(f"quality must be a share in [0, 1] or a Beta pair (c, d), got {quality!r}")
            theta = np.full(n_users, q)
        else:
            theta = rng.beta(*_beta_pair(quality, "quality"), n_users)
        if attentive_ties != "beta":
            raise ConfigError("quality (homogeneous or continuous users) works with attentive_ties='beta'")
    attentive = rng.random(n_users) < pi if theta is None else theta >= 0.5
    first_rate = np.full(n_users, np.nan)
    has_rate = ~attentive if theta is None else np.ones(n_users, dtype=bool)  # who has a position rate
    n_careless = int(has_rate.sum())
    if careless == "beta":
        first_rate[has_rate] = rng.beta(*_beta_pair(careless_first, "careless_first"), n_careless)
    elif careless == "shared":
        rho = _number(careless_first, "careless_first")
        if not 0.0 <= rho <= 1.0:
            raise ConfigError(f"careless_first must be a rate in [0, 1] for careless='shared', got {rho!r}")
        first_rate[has_rate] = rho
    else:
        first_rate[has_rate] = 0.5
    if ties and theta is not None:
        tie_rate = rng.beta(*ta, n_users)
    elif ties:
        tie_rate = np.where(attentive, rng.beta(*ta, n_users), rng.beta(*tc, n_users))
    else:
        tie_rate = np.zeros(n_users)

    total = int(counts.sum())
    user = np.repeat(np.arange(n_users), counts)
    if strengths is None:
        mu = _number(mu, "mu")
        if not (0.0 < mu < 1.0):
            raise ConfigError(f"mu must lie strictly between 0 and 1, got {mu!r}")
        if len(models) != 2 or str(models[0]) == str(models[1]):
            raise ConfigError(f"models must be two different names, got {models!r}")
        names = np.array([str(m) for m in models], dtype=object)
        x_first = rng.random(total) < 0.5
        a_idx = np.where(x_first, 0, 1)
        b_idx = 1 - a_idx
        mu_row = np.where(x_first, mu, 1.0 - mu)
        beta = None
    else:
        try:
            beta = pd.Series(strengths, dtype=float)
        except (TypeError, ValueError):
            raise ConfigError(f"strengths must map model names to numbers, got {strengths!r:.200}") from None
        if beta.size < 2:
            raise ConfigError("strengths must give at least two models")
        if not np.all(np.isfinite(beta.to_numpy())):
            raise ConfigError(f"strengths must be finite numbers; not finite: {beta[~np.isfinite(beta)].to_dict()}")
        if beta.index.map(str).has_duplicates:
            raise ConfigError(f"strengths name some models twice (after str()): {list(beta.index)}")
        names = np.array([str(m) for m in beta.index], dtype=object)
        k = beta.size
        a_idx = rng.integers(0, k, total)
        b_idx = (a_idx + rng.integers(1, k, total)) % k  # a different model, uniformly
        factor = math.log(10.0) / ELO_SCALE if scale == "elo" else 1.0
        vals = beta.to_numpy()
        mu_row = expit((vals[a_idx] - vals[b_idx]) * factor)
    att = attentive[user] if theta is None else rng.random(total) < theta[user]
    if davidson:
        tie_rate[attentive] = np.nan
        half = 0.5 * (vals[a_idx] - vals[b_idx]) * factor
        p_tie_att = davidson_nu / (np.exp(half) + np.exp(-half) + davidson_nu)
        is_tie = rng.random(total) < np.where(att, p_tie_att, tie_rate[user])
    else:
        is_tie = rng.random(total) < tie_rate[user]
    p_a = np.where(att, mu_row, first_rate[user])  # given a decisive vote: Davidson's is BT
    pick_a = rng.random(total) < p_a
    winner = np.where(is_tie, TIE, np.where(pick_a, WIN_A, WIN_B))
    width = len(str(max(n_users - 1, 0)))
    user_ids = np.array([f"u{i:0{width}d}" for i in range(n_users)], dtype=object)
    votes = pd.DataFrame(
        {
            USER: user_ids[user],
            MODEL_A: names[a_idx],
            MODEL_B: names[b_idx],
            WINNER: winner,
            PROMPT_ID: np.arange(total),
        }
    )
    # Shuffle so that votes are not grouped by user, as in a real log.
    votes = votes.iloc[rng.permutation(total)].reset_index(drop=True)
    users = pd.DataFrame(
        {"attentive": attentive, "first_rate": first_rate, "tie_rate": tie_rate, "n_votes": counts},
        index=pd.Index(user_ids, name=USER),
    )
    if theta is not None:
        users["quality"] = theta
    params = {
        "n_users": int(n_users),
        "votes_per_user": votes_per_user,
        "pi": float(pi),
        "careless": careless,
        "careless_first": careless_first if careless != "beta" else list(_beta_pair(careless_first, "careless_first")),
        "tie_attentive": list(ta),
        "tie_careless": list(tc),
        "ties": bool(ties),
        "attentive_ties": "davidson" if davidson else "beta",
        "quality": None if quality is None else (float(quality) if np.ndim(quality) == 0 else list(_beta_pair(quality, "quality"))),
        "random_seed": random_seed,
    }
    if davidson:
        params["davidson_nu"] = float(davidson_nu)
    if beta is None:
        params.update(mu=float(mu), models=[str(m) for m in models])
        return Simulation(votes=votes, users=users, params=params, mu={str(models[0]): float(mu)})
    params.update(strengths={str(k): float(v) for k, v in beta.items()}, scale=scale)
    return Simulation(votes=votes, users=users, params=params, strengths=beta.rename(index=str))


#: With two models, users who share a design (votes, and votes with the model mu is about shown
#: first) are exchangeable. When at least as many users share one as a user's (ties, picks of
#: the model) has outcomes, and the design has at most this many votes, their replicates are
#: drawn as the number of them with each outcome (see :func:`_replicate_designs`), not one by one.
DESIGN_MAX_VOTES = 40


def replicate_user_counts(enc, params: dict, *, careless: str, ties: str, mu: float | None, rng, pairs=None, first: bool = True) -> dict:
    """Replicated per-user counts on a fixed voting design, one replicate per parameter draw.

    ``enc`` is the observed design (users, and per vote which model was shown first or the
    per-vote mu); ``params`` maps parameter names (as in the PyMC model: ``pi``, ``mu``,
    ``careless_first_mean``/``_kappa`` or ``careless_first``, ``tie_{attentive,careless}_
    {mean,kappa}``; ``mu_kappa`` for two models where attentive users have their own mu, drawn
    from Beta(mu mu_kappa, (1 - mu) mu_kappa)) to arrays of draws. Each draw redraws user
    types, tie propensities and
    position rates, then every vote (with two models and a scalar mu, every user at once from
    the user's design: votes, and how often the model mu is about was shown first). Returns
    arrays of shape (draws, users): ``n_ties``, ``n_first`` and, with two models,
    ``n_stronger``; with a per-vote mu (or strengths) also ``n_favoured``, the decisive picks
    of the model that mu favours on the vote, out of ``n_favoured_decisive`` decisive votes
    with mu other than 1/2. With estimated strengths
    (``params["strength"]``, draws x models), ``pairs`` gives the model codes shown first and
    second on every vote, and each draw's mu per vote is sigmoid(strength_a - strength_b).
    With ``ties="davidson"`` attentive votes tie with Davidson's probability
    (``params["davidson_nu"]``) and careless users keep their Beta tie propensity.

    ``first=False`` leaves ``n_first`` out, for what reads only the ties and the picks of the
    model (the favoured-model dispersion check). With two models and the same parameters on
    every draw (a parametric bootstrap of one fit) that lets users who share a design be
    replicated together (:func:`_replicate_designs`); the others, and every user otherwise,
    are drawn one by one (:func:`_replicate_two_models`), each rate only where the model uses
    it (:func:`_user_rates`). Each user's counts have the same distribution either way.
    """
    size = np.asarray(params["pi"]).shape[0]
    n_users, user = enc.n_users, enc.user
    scalar = enc.mu is None and "strength" not in params
    stronger_first = (enc.code // 3).astype(bool) if enc.mu is None else None
    out = {"n_ties": np.empty((size, n_users), np.int64)}
    if first:
        out["n_first"] = np.empty((size, n_users), np.int64)
    if scalar:
        # two models: a user's design is (votes, votes with the model mu is about shown first),
        # so each replicate draws per user, not per vote
        out["n_stronger"] = np.empty((size, n_users), np.int64)
        n_u = np.bincount(user, minlength=n_users)
        sf_u = np.bincount(user, weights=stronger_first, minlength=n_users).astype(np.int64)
        one_by_one = np.arange(n_users)
        if not first and all(np.all(np.asarray(v) == np.asarray(v)[0]) for v in params.values()):
            p = {k: float(np.asarray(v)[0]) for k, v in params.items()}
            one_by_one = _replicate_designs(n_u, sf_u, p, careless, ties, p.get("mu", mu), rng, out)
            if not one_by_one.size:
                return out
        n_u, sf_u = n_u[one_by_one], sf_u[one_by_one]
    prev_beta = mu_row = None  # per-vote mu and what follows from it, kept while the strengths repeat
    for i in range(size):
        p = {k: float(np.asarray(v)[i]) for k, v in params.items() if k != "strength"}
        if scalar:
            attentive = rng.random(one_by_one.size) < p["pi"]
            tau, rho = _user_rates(p, attentive, careless, ties, rng)
            m_x = p.get("mu", mu)
            if "mu_kappa" in p:  # attentive users' own mu ~ Beta(mu kappa, (1 - mu) kappa)
                own = np.full(one_by_one.size, m_x)
                own[attentive] = rng.beta(m_x * p["mu_kappa"], (1.0 - m_x) * p["mu_kappa"], int(attentive.sum()))
                m_x = own
            t, f, k = _replicate_two_models(n_u, sf_u, attentive, tau, rho, m_x, rng, first=first)
            out["n_ties"][i, one_by_one], out["n_stronger"][i, one_by_one] = t, k
            if first:
                out["n_first"][i, one_by_one] = f
            continue
        attentive = rng.random(n_users) < p["pi"]
        tau, rho = _user_rates(p, attentive, careless, ties, rng)
        if "strength" in params:
            beta = np.asarray(params["strength"])[i]
            if prev_beta is None or not np.array_equal(beta, prev_beta):  # a bootstrap of one fit: the same on every draw
                mu_row, prev_beta = expit(beta[pairs[0]] - beta[pairs[1]]), beta
                favours_a, informative_vote = mu_row > 0.5, mu_row != 0.5
        elif mu_row is None:
            mu_row = enc.mu
            favours_a, informative_vote = mu_row > 0.5, mu_row != 0.5
        p_tie = None  # the user's tau
        if ties == "davidson":
            half = 0.5 * (beta[pairs[0]] - beta[pairs[1]])
            p_tie = np.where(attentive[user], p["davidson_nu"] / (np.exp(half) + np.exp(-half) + p["davidson_nu"]), tau[user])
        u_tie = rng.random(user.shape[0])
        u_pick = rng.random(user.shape[0])
        # per user: ties, decisive picks of the answer shown first (model_a), and of the model
        # the vote's mu favours out of the decisive votes where mu is not 1/2 (no outcome
        # codes, no per-vote log-likelihood)
        t, f, k, d = replicate_vote_counts(user, u_tie, u_pick, tau, p_tie, attentive, mu_row, rho, favours_a, informative_vote, n_users, first)
        out["n_ties"][i] = t
        if first:
            out["n_first"][i] = f
        out.setdefault("n_favoured", np.empty((size, n_users), np.int64))[i] = k
        out.setdefault("n_favoured_decisive", np.empty((size, n_users), np.int64))[i] = d
    return out


def _user_rates(p: dict, attentive: np.ndarray, careless: str, ties: str, rng):
    """Every user's tie propensity and first-position rate for one replicate (``p``: the
    draw's parameters), each drawn only where the model uses it: the tie propensity from the
    user's own type's Beta (with Davidson ties, the careless Beta: the two-model design ties
    every user at that propensity, the per-vote design only careless users), the first-position
    rate for careless users only (an attentive pick follows mu; its entry is left at 1/2)."""
    n_users = attentive.shape[0]
    careless_users = ~attentive
    n_careless = int(careless_users.sum())
    tau = np.zeros(n_users)
    if ties == "model":
        a1, b1 = _beta_of(p, "tie_attentive")
        tau[attentive] = rng.beta(a1, b1, n_users - n_careless)
        tau[careless_users] = rng.beta(*_beta_of(p, "tie_careless"), n_careless)
    elif ties == "davidson":
        tau = rng.beta(*_beta_of(p, "tie_careless"), n_users)
    rho = np.full(n_users, 0.5)
    if careless == "beta":
        rho[careless_users] = rng.beta(*_beta_of(p, "careless_first"), n_careless)
    elif careless == "shared":
        rho[careless_users] = p["careless_first"]
    return tau, rho


def _beta_of(p: dict, name: str) -> tuple[float, float]:
    """The Beta parameters of a rate given by its mean and concentration in a draw."""
    mean, kappa = p[f"{name}_mean"], p[f"{name}_kappa"]
    return mean * kappa, (1.0 - mean) * kappa


def _replicate_two_models(n, sf, attentive, tau, rho, mu, rng, first: bool = True):
    """One replicate of every user's (ties, first-position picks, picks of the model mu is
    about) for two models, from each user's design: ``n`` votes, ``sf`` of them with that model
    shown first. Ties fall on the design's votes at random (hypergeometric); an attentive
    decisive vote picks the model with probability ``mu`` (a number, or per user) wherever it
    is shown, a careless one the first-shown answer with the user's rate ``rho``.

    ``first=False`` (no first-position picks wanted, None in their place): an attentive
    user's picks of the model are then one binomial of its decisive votes, the sum of the two
    by-position binomials it replaces, so only careless users' ties are placed by position."""
    t = rng.binomial(n, tau)
    k = np.empty_like(t)
    by_position = slice(None) if first else ~attentive
    if not first:
        k[attentive] = rng.binomial((n - t)[attentive], mu[attentive] if np.ndim(mu) else mu)
    n_p, sf_p, t_p = n[by_position], sf[by_position], t[by_position]
    t_sf = np.zeros_like(t_p)
    has = t_p > 0
    t_sf[has] = rng.hypergeometric(sf_p[has], (n_p - sf_p)[has], t_p[has])
    m = sf_p - t_sf  # decisive votes with the model shown first
    r = n_p - t_p - m  # decisive votes with it shown second
    att, rho_p, mu_p = attentive[by_position], rho[by_position], mu[by_position] if np.ndim(mu) else mu
    p_first = np.where(att, mu_p, rho_p)  # P(pick first | model shown first): picks the model
    p_second = np.where(att, 1.0 - mu_p, rho_p)  # P(pick first | model shown second)
    x = rng.binomial(m, p_first)  # first picks among m: each picks the model
    y = rng.binomial(r, p_second)  # first picks among r: each picks the other model
    k[by_position] = x + (r - y)
    return t, (x + y if first else None), k


def _replicate_designs(n, sf, p: dict, careless: str, ties: str, mu: float, rng, out: dict) -> np.ndarray:
    """Every replicate of the users whose design (``n`` votes, ``sf`` of them with the model shown
    first) is shared by at least as many users as a user's (ties, picks of the model) has
    outcomes, with at most :data:`DESIGN_MAX_VOTES` votes, under the parameters ``p`` of every
    draw; written into ``out``'s ``n_ties`` and ``n_stronger``. Returns the other users.

    Those users are exchangeable, and each one's counts a draw of the design's distribution
    (:func:`_design_pmf`): how many of them have each outcome is one multinomial draw per
    replicate, and the outcomes are then dealt to them in random order, so each user's counts,
    independent of the others', follow that distribution as when drawn one by one. The cost is
    the outcomes' number per design and replicate rather than a handful of draws per user."""
    size = out["n_ties"].shape[0]
    designs, inverse, count = np.unique(n.astype(np.int64) << 32 | sf, return_inverse=True, return_counts=True)
    d_n, d_sf = designs >> 32, designs & 0xFFFFFFFF
    together = (d_n <= DESIGN_MAX_VOTES) & (count >= (d_n + 1) * (d_n + 2) // 2)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(count)[:-1])
    for j in np.flatnonzero(together):
        users, votes = members[j], int(d_n[j])
        pmf = _design_pmf(votes, int(d_sf[j]), p, careless, ties, mu).ravel()
        per_outcome = rng.multinomial(users.size, pmf, size=size)
        outcome = np.repeat(np.tile(np.arange(pmf.size), size), per_outcome.ravel()).reshape(size, users.size)
        rng.permuted(outcome, axis=1, out=outcome)
        out["n_ties"][:, users], out["n_stronger"][:, users] = np.divmod(outcome, votes + 1)
    return np.flatnonzero(~together[inverse])


def _log_moment(i, j, beta=None, value=None):
    """log E[q^i (1 - q)^j] for a rate q ~ Beta(``beta``), or fixed at ``value`` (0 ** 0 = 1)."""
    if beta is not None:
        return betaln(beta[0] + i, beta[1] + j) - betaln(*beta)
    return xlogy(i, value) + xlog1py(j, -value)


def _design_pmf(n: int, sf: int, p: dict, careless: str, ties: str, mu: float) -> np.ndarray:
    """P(ties = t, picks of the model = k) of a user with ``n`` votes, ``sf`` of them with the
    model shown first, under the draw's parameters ``p``: an (n + 1) x (n + 1) array (zero
    where k > n - t), the mixture of the two types with every per-user rate (tie propensity,
    careless first-position rate, an attentive user's own mu) integrated out, as the one-by-one
    replicator (:func:`_user_rates`, :func:`_replicate_two_models`) draws them. Each rate is
    given as ``{"beta": (a, b)}`` or ``{"value": q}`` to :func:`_log_moment`."""
    if ties == "drop":
        tie_attentive = tie_careless = {"value": 0.0}
    elif ties == "davidson":  # the two-model design ties every user at the careless propensity
        tie_attentive = tie_careless = {"beta": _beta_of(p, "tie_careless")}
    else:
        tie_attentive, tie_careless = {"beta": _beta_of(p, "tie_attentive")}, {"beta": _beta_of(p, "tie_careless")}
    own_mu = {"beta": (mu * p["mu_kappa"], (1.0 - mu) * p["mu_kappa"])} if "mu_kappa" in p else {"value": mu}
    if careless == "beta":
        first_rate = {"beta": _beta_of(p, "careless_first")}
    else:
        first_rate = {"value": p["careless_first"] if careless == "shared" else 0.5}
    # attentive: t ties among the n votes, k picks of the model among the d decisive ones
    t, k = np.arange(n + 1)[:, None], np.arange(n + 1)[None, :]
    d = np.maximum(n - t - k, 0)
    log_a = _log_multinomial(n, t, k, d) + _log_moment(t, n - t, **tie_attentive) + _log_moment(k, d, **own_mu)
    attentive = np.where(k <= n - t, np.exp(log_a), 0.0)
    # careless: t1 ties and x picks of the model (shown first) among its sf votes shown first,
    # t2 ties and z picks of it (shown second) among the others; x and the other model's
    # r - z picks are picks of the first-shown answer
    t1, x = np.arange(sf + 1)[:, None, None, None], np.arange(sf + 1)[None, :, None, None]
    t2, z = np.arange(n - sf + 1)[None, None, :, None], np.arange(n - sf + 1)[None, None, None, :]
    m, r = sf - t1, n - sf - t2
    ok = (x <= m) & (z <= r)
    other1, other2 = np.maximum(m - x, 0), np.maximum(r - z, 0)
    log_c = _log_multinomial(sf, t1, x, other1) + _log_multinomial(n - sf, t2, z, other2) + _log_moment(x + other2, other1 + z, **first_rate)
    cell = np.broadcast_to((t1 + t2) * (n + 1) + x + z, ok.shape)
    careless_tk = np.bincount(cell[ok], weights=np.exp(log_c)[ok], minlength=(n + 1) ** 2).reshape(n + 1, n + 1)
    careless_tk *= np.exp(_log_moment(t, n - t, **tie_careless))
    pmf = p["pi"] * attentive + (1.0 - p["pi"]) * careless_tk
    return pmf / pmf.sum()


def _log_multinomial(n, *parts):
    """log of the multinomial coefficient n! / (parts[0]! parts[1]! ...)."""
    return gammaln(n + 1) - sum(gammaln(q + 1) for q in parts)
