"""scikit-learn's parameter conventions for every estimator of the package, in one place.

:class:`ParamsMixin` gives an estimator ``get_params(deep=True)``, ``set_params(**params)``, a
``repr`` that shows the settings that differ from the defaults (``TwoTypeEM(careless='shared')``)
and ``__sklearn_clone__``, so :func:`sklearn.base.clone` builds an unfitted estimator with the
same settings. The parameters are the constructor's arguments, read from its signature, and
each is stored on the estimator under its own name (as scikit-learn requires). scikit-learn
itself is not needed.
"""

from __future__ import annotations

import copy
import inspect

from comparemode.errors import ConfigError

__all__ = ["ParamsMixin"]


class ParamsMixin:
    """``get_params`` / ``set_params`` / ``repr`` / ``__sklearn_clone__`` from the constructor's
    signature. ``set_params`` goes through the constructor, so a setting is merged, checked and
    stored exactly as ``type(est)(**params)`` would (the Bayesian classes merge their config
    dicts over the defaults there)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        """The constructor's named arguments, in their order."""
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self" and p.kind not in skip]

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments as this estimator holds them: ``type(est)(**est.get_params())``
        is an estimator with the same settings. ``deep`` is accepted for scikit-learn; no
        parameter is itself an estimator, so it changes nothing."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Change settings (constructor arguments) and return self. Unknown names are refused
        with a :class:`~comparemode.errors.ConfigError` that lists the valid ones. A config dict
        (``model_config``, ``sampler_config``) replaces the old one and is merged over the
        defaults as in the constructor. Fitted results stay until the next ``fit``."""
        if not params:
            return self
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ConfigError(f"{type(self).__name__} has no parameter(s) {unknown}; its parameters are {names}")
        fresh = type(self)(**(self.get_params(deep=False) | params))
        for name in params:
            setattr(self, name, getattr(fresh, name))
        return self

    def __sklearn_clone__(self):
        """An unfitted estimator with a deep copy of these settings (:func:`sklearn.base.clone`)."""
        return type(self)(**copy.deepcopy(self.get_params(deep=False)))

    def __repr__(self) -> str:
        params = self.get_params(deep=False)
        signature = inspect.signature(type(self).__init__).parameters
        try:  # the same scalar settings with default configs: what each config dict is compared with
            reference = type(self)(**{k: v for k, v in params.items() if not isinstance(v, dict)}).get_params(deep=False)
        except Exception:  # noqa: BLE001 - a repr never fails: show the whole configs then
            reference = {}
        shown = []
        for name, value in params.items():
            if isinstance(value, dict):
                base = reference.get(name)
                base = base if isinstance(base, dict) else {}
                diff = {k: v for k, v in value.items() if k not in base or repr(base[k]) != repr(v)}
                if diff:
                    shown.append(f"{name}={diff!r}")
            elif repr(value) != repr(signature[name].default):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"
