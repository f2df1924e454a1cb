"""NUTS for every PyMC model of the package: the sampler config (JSON-able, merged over
:data:`DEFAULT_SAMPLER_CONFIG`, checked) and :func:`sample_nuts`, shared by
:class:`~comparemode.inference.mcmc.BayesianTwoType` and
:class:`~comparemode.inference.alternatives.BayesianAlternative`. PyMC is imported only when
sampling runs.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from comparemode.errors import ConfigError

__all__ = ["SAMPLERS", "DEFAULT_SAMPLER_CONFIG", "merge_config", "check_sampler_config", "sample_nuts"]

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
