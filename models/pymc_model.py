"""The two-type user model as a PyMC model (docs/design.md section 6).

The same generative story as the EM, built from the same likelihood functions
(:mod:`comparemode.models.likelihood`, evaluated with PyTensor): user types are summed out
(log-sum-exp over the two types), so NUTS samples only the population parameters. The model
runs on the compressed count patterns, each weighted by the number of users sharing it, so its
cost depends on the number of distinct patterns, not on the number of users.

Parameters (all named, scalar):

- ``pi``: share of attentive users, ``Beta(pi.alpha, pi.beta)``;
- ``mu`` (two models, when estimated): P(``model`` beats ``other``), ``Beta(mu.alpha, mu.beta)``;
- careless first-position rates ``rho_u ~ Beta(m kappa, (1 - m) kappa)`` with
  ``careless_first_mean`` (m) ~ Beta and ``careless_first_kappa`` ~ LogNormal (``"beta"``), or
  one ``careless_first`` rate ~ Beta (``"shared"``), or none (``"random"``);
- tie propensities per type, ``tie_attentive_mean`` / ``tie_attentive_kappa`` and
  ``tie_careless_mean`` / ``tie_careless_kappa`` (``ties="model"``);
- joint model only: ``strength`` (vector over models) and, with ``ties="davidson"``,
  ``davidson_nu`` (Davidson's tie parameter of attentive votes; careless users keep
  ``tie_careless_mean`` / ``tie_careless_kappa``).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from comparemode.errors import ConfigError
from comparemode.models.likelihood import (
    davidson_logp,
    mixture_loglik,
    tensor_ops,
    type_logliks,
)
from comparemode.models.stats import Patterns

__all__ = [
    "DEFAULT_PRIORS",
    "check_priors",
    "build_pymc_model",
    "build_joint_pymc_model",
    "parameter_names",
    "beta_from_mean_kappa",
]

#: Default priors (plain JSON-able dicts; a user's dict is merged over these).
DEFAULT_PRIORS = {
    "pi": {"dist": "Beta", "alpha": 1.0, "beta": 1.0},
    "mu": {"dist": "Beta", "alpha": 2.0, "beta": 2.0},
    "careless_first_mean": {"dist": "Beta", "alpha": 1.0, "beta": 1.0},
    "careless_first_kappa": {"dist": "LogNormal", "mu": math.log(10.0), "sigma": 1.5},
    "careless_first": {"dist": "Beta", "alpha": 1.0, "beta": 1.0},
    "tie_mean": {"dist": "Beta", "alpha": 1.0, "beta": 1.0},
    "tie_kappa": {"dist": "LogNormal", "mu": math.log(10.0), "sigma": 1.5},
    "strength": {"dist": "ZeroSumNormal", "sigma": 1.5},
    "davidson_nu": {"dist": "LogNormal", "mu": math.log(0.5), "sigma": 1.5},
    # alternative models (model checking)
    "theta": {"dist": "Beta", "alpha": 1.0, "beta": 1.0},
    "quality_mean": {"dist": "Beta", "alpha": 1.0, "beta": 1.0},
    "quality_kappa": {"dist": "LogNormal", "mu": math.log(2.0), "sigma": 1.5},
}

_PRIOR_PARAMS = {
    "Beta": {"alpha": "positive", "beta": "positive"},
    "LogNormal": {"mu": "real", "sigma": "positive"},
    "ZeroSumNormal": {"sigma": "positive"},
}


def check_priors(priors: dict) -> dict:
    """Merge ``priors`` over :data:`DEFAULT_PRIORS` and check every entry; returns the merged
    dict or raises :class:`ConfigError` naming the bad prior and parameter."""
    merged = copy.deepcopy(DEFAULT_PRIORS)
    if priors is None:
        return merged
    if not isinstance(priors, dict):
        raise ConfigError(f"priors must be a dict of dicts, got {type(priors).__name__}")
    for name, spec in priors.items():
        if name not in DEFAULT_PRIORS:
            raise ConfigError(f"unknown prior {name!r}; the priors are {sorted(DEFAULT_PRIORS)}")
        if not isinstance(spec, dict):
            raise ConfigError(f"prior {name!r} must be a dict such as {DEFAULT_PRIORS[name]}, got {spec!r}")
        entry = dict(merged[name])
        if "dist" in spec and spec["dist"] != entry["dist"]:
            entry = {"dist": spec["dist"]}
        entry.update(spec)
        dist = entry["dist"]
        if dist not in _PRIOR_PARAMS or dist != DEFAULT_PRIORS[name]["dist"]:
            raise ConfigError(f"prior {name!r} must be a {DEFAULT_PRIORS[name]['dist']} distribution, got {dist!r}")
        for key, kind in _PRIOR_PARAMS[dist].items():
            if key not in entry:
                raise ConfigError(f"prior {name!r} ({dist}) needs parameter {key!r}")
            value = entry[key]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or (kind == "positive" and value <= 0):
                raise ConfigError(
                    f"prior {name!r}: {dist} parameter {key!r} must be a {'positive ' if kind == 'positive' else ''}"
                    f"finite number, got {value!r}"
                )
        extra = set(entry) - set(_PRIOR_PARAMS[dist]) - {"dist"}
        if extra:
            raise ConfigError(f"prior {name!r} ({dist}) has unknown parameter(s) {sorted(extra)}")
        merged[name] = entry
    return merged


def parameter_names(careless: str, ties: str, estimate_mu: bool, joint: bool = False) -> list[str]:
    """Names of the free parameters, in a fixed order (``strength`` is a vector over models)."""
    names = ["pi"]
    if joint:
        names.append("strength")
    elif estimate_mu:
        names.append("mu")
    if careless == "beta":
        names += ["careless_first_mean", "careless_first_kappa"]
    elif careless == "shared":
        names.append("careless_first")
    if ties == "model":
        names += ["tie_attentive_mean", "tie_attentive_kappa", "tie_careless_mean", "tie_careless_kappa"]
    elif ties == "davidson":
        names += ["davidson_nu", "tie_careless_mean", "tie_careless_kappa"]
    return names


def beta_from_mean_kappa(mean, kappa):
    """Beta(a, b) parameters from mean and concentration a + b."""
    return mean * kappa, (1 - mean) * kappa


def prior_variable(pm, name, spec, **kw):
    """A PyMC random variable from a checked prior spec (see :data:`DEFAULT_PRIORS`)."""
    return _prior(pm, name, spec, **kw)


def _prior(pm, name, spec, **kw):
    if spec["dist"] == "Beta":
        return pm.Beta(name, alpha=spec["alpha"], beta=spec["beta"], **kw)
    if spec["dist"] == "ZeroSumNormal":
        return pm.ZeroSumNormal(name, sigma=spec["sigma"], **kw)
    return pm.LogNormal(name, mu=spec["mu"], sigma=spec["sigma"], **kw)


def build_pymc_model(
    pat: Patterns,
    *,
    careless: str,
    ties: str,
    priors: dict,
    estimate_mu: bool = False,
    coords: dict | None = None,
):
    """PyMC model of the two-type user model on compressed patterns.

    With ``estimate_mu`` (two models), the patterns must carry ``k`` (decisive picks of the
    model the probability is about) and ``mu`` gets a prior; otherwise the attentive
    log-likelihood per pattern ``pat.s`` is data.
    """
    import pymc as pm
    import pytensor.tensor as pt

    ops = tensor_ops()
    coords = dict(coords or {})
    coords["pattern"] = np.arange(pat.size)
    with pm.Model(coords=coords) as model:
        n = pm.Data("n_votes", pat.n.astype(float), dims="pattern")
        t = pm.Data("n_ties", pat.t.astype(float), dims="pattern")
        f = pm.Data("n_first", pat.f.astype(float), dims="pattern")
        w = pm.Data("n_users", pat.weight.astype(float), dims="pattern")
        pi = _prior(pm, "pi", priors["pi"])
        params = {}
        if estimate_mu:
            if pat.k is None:
                raise ConfigError("estimating mu needs two models (a scalar mu); these votes have a per-vote mu")
            k = pm.Data("n_stronger", pat.k.astype(float), dims="pattern")
            mu = _prior(pm, "mu", priors["mu"])
            s = k * pt.log(mu) + (n - t - k) * pt.log1p(-mu)
        else:
            s = pm.Data("attentive_loglik", pat.s.astype(float), dims="pattern")
        params.update(_user_params(pm, priors, careless, ties))
        l1, l0 = type_logliks(n, t, f, s, params, careless, ties, ops)
        pm.Potential("loglik", pt.sum(w * mixture_loglik(l1, l0, pi, ops)))
    return model


def _user_params(pm, priors, careless, ties):
    params = {}
    if careless == "beta":
        m = _prior(pm, "careless_first_mean", priors["careless_first_mean"])
        kappa = _prior(pm, "careless_first_kappa", priors["careless_first_kappa"])
        params["careless_first"] = beta_from_mean_kappa(m, kappa)
    elif careless == "shared":
        params["careless_first"] = _prior(pm, "careless_first", priors["careless_first"])
    if ties in ("model", "davidson"):
        for kind in ("attentive", "careless") if ties == "model" else ("careless",):
            m = _prior(pm, f"tie_{kind}_mean", priors["tie_mean"])
            kappa = _prior(pm, f"tie_{kind}_kappa", priors["tie_kappa"])
            params[f"tie_{kind}"] = beta_from_mean_kappa(m, kappa)
    return params


def build_joint_pymc_model(pat: Patterns, design: dict, *, careless: str, ties: str, priors: dict):
    """PyMC model of model strengths and user types together (many models, no reference).

    ``pat`` holds one pattern per user (counts ``n, t, f``); ``design`` the votes (see
    :func:`comparemode.inference.joint.encode_joint`). Strengths ``strength ~
    ZeroSumNormal(sigma)`` over the ``model`` dimension; an attentive decisive vote picks
    model_a with probability ``sigmoid(strength_a - strength_b)``; with ``ties="davidson"``
    every attentive vote (ties included) follows Davidson's model with ``davidson_nu``
    (:func:`~comparemode.models.likelihood.davidson_logp`); the rest is
    :func:`build_pymc_model`'s story.
    """
    import pymc as pm
    import pytensor.tensor as pt

    ops = tensor_ops()
    davidson = ties == "davidson"
    if davidson:
        out = np.asarray(design["all_outcome"])
        user, a, b = design["all_user"], design["all_a"], design["all_b"]
    else:
        user, a, b = design["user"], design["a"], design["b"]
    coords = {"pattern": np.arange(pat.size), "model": list(design["models"]), "vote": np.arange(len(a))}
    with pm.Model(coords=coords) as model:
        n = pm.Data("n_votes", pat.n.astype(float), dims="pattern")
        t = pm.Data("n_ties", pat.t.astype(float), dims="pattern")
        f = pm.Data("n_first", pat.f.astype(float), dims="pattern")
        w = pm.Data("n_users", pat.weight.astype(float), dims="pattern")
        vu = pm.Data("vote_user", np.asarray(user, dtype=np.int64), dims="vote")
        va = pm.Data("vote_a", np.asarray(a, dtype=np.int64), dims="vote")
        vb = pm.Data("vote_b", np.asarray(b, dtype=np.int64), dims="vote")
        pi = _prior(pm, "pi", priors["pi"])
        strength = pm.ZeroSumNormal("strength", sigma=priors["strength"]["sigma"], dims="model")
        d = strength[va] - strength[vb]
        if davidson:
            vo = pm.Data("vote_outcome", out.astype(np.int64), dims="vote")
            nu = _prior(pm, "davidson_nu", priors["davidson_nu"])
            ind = [pt.cast(pt.eq(vo, k), "float64") for k in (0, 1, 2)]
            logp = davidson_logp(d, pt.log(nu), *ind, ops=ops)
        else:
            won = pm.Data("vote_a_won", np.asarray(design["a_won"], dtype=float), dims="vote")
            logp = won * -pt.softplus(-d) + (1.0 - won) * -pt.softplus(d)
        s = pt.inc_subtensor(pt.zeros(pat.size)[vu], logp)
        params = _user_params(pm, priors, careless, ties)
        l1, l0 = type_logliks(n, t, f, s, params, careless, ties, ops)
        pm.Potential("loglik", pt.sum(w * mixture_loglik(l1, l0, pi, ops)))
    return model
