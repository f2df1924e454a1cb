"""NUTS for every PyMC model of the package: the sampler config (JSON-able, merged over
:data:`DEFAULT_SAMPLER_CONFIG`, checked) and :func:`sample_nuts`, shared by
:class:`~comparemode.inference.mcmc.BayesianTwoType` and
:class:`~comparemode.inference.alternatives.BayesianAlternative`. PyMC is imported only when
sampling runs.

Every posterior DataTree of those models gets a ``log_likelihood`` group
(:func:`add_user_log_likelihood`): one term per user (the unit of leave-one-out), so
``arviz.loo`` and ``arviz.compare`` run on the fits as they are.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from comparemode.constants import USER
from comparemode.errors import ConfigError

__all__ = [
    "SAMPLERS",
    "DEFAULT_SAMPLER_CONFIG",
    "LOG_LIKELIHOOD_MAX_VALUES",
    "merge_config",
    "check_sampler_config",
    "sample_nuts",
    "user_coordinate",
    "add_user_log_likelihood",
    "check_log_likelihood",
]

#: ``sampler_config["log_likelihood"] = "auto"`` stores the per-user log-likelihood (chains x
#: draws x users float64 values) only up to this many values (800 MB); ``True`` always.
LOG_LIKELIHOOD_MAX_VALUES = 100_000_000

SAMPLERS = ("pymc", "nutpie")
DEFAULT_SAMPLER_CONFIG = {
    "draws": 1000,
    "tune": 1000,
    "chains": 4,
    "cores": None,
    "target_accept": 0.9,
    "sampler": "pymc",
    "random_seed": None,
    "progressbar": True,
    "user_draws": 1000,  # posterior draws kept per pattern for per-user intervals and rules
    "init": "em",  # start the chains at the EM estimate ("em") or at PyMC's default point ("default")
    # the DataTree's log_likelihood group, one term per user: "auto" (unless larger than
    # LOG_LIKELIHOOD_MAX_VALUES), True or False
    "log_likelihood": "auto",
}


def merge_config(defaults: dict, given: dict | None, what: str) -> dict:
    """``given`` merged over a deep copy of ``defaults`` (a JSON-able config dict), unknown keys
    refused with the list of known ones (``what`` names the config in the message)."""
    if given is None:
        return copy.deepcopy(defaults)
    if not isinstance(given, dict):
        raise ConfigError(f"{what} must be a dict, got {type(given).__name__}")
    unknown = set(given) - set(defaults)
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {sorted(unknown)}; the keys are {sorted(defaults)}")
    merged = copy.deepcopy(defaults)
    merged.update(copy.deepcopy(given))
    return merged


def check_sampler_config(cfg: dict) -> dict:
    if cfg["sampler"] not in SAMPLERS:
        raise ConfigError(f"sampler must be one of {SAMPLERS}, got {cfg['sampler']!r}")
    if cfg["sampler"] == "nutpie":
        try:
            import nutpie  # noqa: F401
        except ImportError:
            raise ConfigError("sampler 'nutpie' needs the nutpie package: pip install 'comparemode[nutpie]'") from None
    if cfg["init"] not in ("em", "default"):
        raise ConfigError(f"sampler_config init must be 'em' or 'default', got {cfg['init']!r}")
    check_log_likelihood(cfg["log_likelihood"])
    for key in ("draws", "tune", "chains", "user_draws"):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if key == "tune" else 1):
            raise ConfigError(f"sampler_config {key} must be a {'non-negative' if key == 'tune' else 'positive'} integer, got {v!r}")
    seed = cfg["random_seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"sampler_config random_seed must be a non-negative integer or None, got {seed!r}")
    if not isinstance(cfg["progressbar"], (bool, np.bool_)):
        raise ConfigError(f"sampler_config progressbar must be True or False, got {cfg['progressbar']!r}")
    if cfg["cores"] is not None and (isinstance(cfg["cores"], bool) or not isinstance(cfg["cores"], int) or cfg["cores"] < 1):
        raise ConfigError(f"sampler_config cores must be a positive integer or None, got {cfg['cores']!r}")
    ta = cfg["target_accept"]
    if not (isinstance(ta, (int, float)) and 0 < ta < 1):
        raise ConfigError(f"sampler_config target_accept must lie in (0, 1), got {ta!r}")
    return cfg


def sample_nuts(model, cfg: dict, initvals: dict | None = None):
    """NUTS on ``model`` with a sampler config (``draws``, ``tune``, ``chains``, ``cores``,
    ``target_accept``, ``random_seed``, ``progressbar``, ``sampler``: "pymc" unless given).
    The sampler is always named: PyMC 6 would otherwise pick nutpie whenever it is installed.
    Convergence checks are left to :mod:`comparemode.inference.diagnostics`."""
    import pymc as pm

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nutpie.*", category=UserWarning)
        return pm.sample(
            initvals=initvals,
            draws=cfg["draws"],
            tune=cfg["tune"],
            chains=cfg["chains"],
            cores=cfg["cores"],
            target_accept=cfg["target_accept"],
            random_seed=cfg["random_seed"],
            progressbar=cfg["progressbar"],
            nuts_sampler=cfg.get("sampler", "pymc"),
            compute_convergence_checks=False,
            model=model,
        )


def check_log_likelihood(value):
    """``sampler_config["log_likelihood"]``: True, False or "auto" (returned), else a ConfigError."""
    if not (value is True or value is False or (isinstance(value, str) and value == "auto")):
        raise ConfigError(f"sampler_config log_likelihood must be True, False or 'auto', got {value!r}")
    return value


def user_coordinate(users) -> np.ndarray:
    """The values of a DataTree's ``user`` coordinate for these user ids: the ids themselves, or
    ``str(id)`` for object ids (netCDF stores no Python objects; tuple ids stay whole)."""
    coord = np.asarray(users.to_numpy() if hasattr(users, "to_numpy") else users)
    if coord.dtype == object:
        coord = np.array([str(u) for u in coord])  # element-wise: tuple ids are not sequences here
    return coord


def add_user_log_likelihood(idata, pattern_log_likelihood, user_pattern, setting="auto"):
    """Add the ``log_likelihood`` group to a posterior DataTree: variable ``votes`` with dims
    (chain, draw, user), each user's log-likelihood of all their votes (the user's type or
    quality summed out) under each draw. The user is the unit of leave-one-out, so
    ``arviz.loo(idata)`` leaves out one user at a time and ``arviz.compare`` compares fits of the
    same votes user by user.

    ``pattern_log_likelihood`` is called (no arguments) for the (chain, draw, pattern) array of
    the model's count patterns; ``user_pattern`` is the DataArray (dim ``user``, with the ids as
    coordinate) mapping each user to their pattern. ``setting`` is
    ``sampler_config["log_likelihood"]``: False adds nothing; "auto" adds nothing, with a
    warning, when the group would hold more than :data:`LOG_LIKELIHOOD_MAX_VALUES` values.
    Returns the DataTree."""
    import xarray as xr

    check_log_likelihood(setting)
    if setting is False:
        return idata
    post = idata["posterior"]
    inv = np.asarray(user_pattern.values, dtype=np.int64)
    size = post.sizes["chain"] * post.sizes["draw"] * inv.size
    if setting == "auto" and size > LOG_LIKELIHOOD_MAX_VALUES:
        warnings.warn(
            f"the log_likelihood group (one term per user and draw) would hold {size:,} values, more than "
            f"{LOG_LIKELIHOOD_MAX_VALUES:,}: left out of the DataTree, so arviz.loo / arviz.compare cannot run on it "
            "(the package's compare_models works per count pattern and still does). sampler_config "
            "log_likelihood=True stores it anyway, False silences this",
            UserWarning,
            stacklevel=3,
        )
        return idata
    ll = np.asarray(pattern_log_likelihood(), dtype=float)[..., inv]
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, USER: user_pattern[USER].values}
    idata["log_likelihood"] = xr.DataTree(xr.Dataset({"votes": (("chain", "draw", USER), ll)}, coords=coords))
    return idata
