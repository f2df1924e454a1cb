"""Full Bayesian inference for the two-type user model (docs/design.md section 6).

:class:`BayesianTwoType` follows the pymc-marketing model-builder pattern: the PyMC model is
an attribute (``model``), not a subclass; model and sampler configs are plain JSON-able dicts
merged over defaults; ``fit`` samples the posterior and returns an ArviZ ``DataTree``; prior
and posterior predictive sampling are their own methods; the model id, versions, configs and
a data summary are stored in the result's attributes, so ``save``/``load`` round-trips.

Per-user posterior probabilities of being attentive are averaged over the posterior draws
(not plugged in at the posterior mean), with their spread across draws.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from comparemode._atomic import atomic_write
from comparemode._params import ParamsMixin
from comparemode._progress import Progress
from comparemode._version import __version__
from comparemode.constants import (
    DIAGNOSTIC_THRESHOLDS,
    ELO_ANCHOR,
    INTERVAL_PROB,
    LEADERBOARD_LEVEL,
    USER,
)
from comparemode.counting import count_and_resolve
from comparemode.errors import ConfigError, MuError, NotFittedError
from comparemode.inference.diagnostics import sampler_diagnostics
from comparemode.inference.em import TwoTypeEM
from comparemode.inference.joint import JointEM, encode_joint
from comparemode.inference.leaderboard import leaderboard_table
from comparemode.inference.misfit import favoured_counts, favoured_from_counts
from comparemode.inference.sampling import (
    DEFAULT_SAMPLER_CONFIG,
    SAMPLERS,
    add_user_log_likelihood,
    check_sampler_config,
    merge_config,
    sample_nuts,
    user_coordinate,
)
from comparemode.models.likelihood import (
    CARELESS_MODES,
    JOINT_TIE_MODES,
    TIE_MODES,
    davidson_logp,
    mixture_loglik,
    posterior_attentive,
    type_logliks,
)
from comparemode.models.pymc_model import (
    beta_from_mean_kappa,
    build_joint_pymc_model,
    build_pymc_model,
    check_priors,
    parameter_names,
)
from comparemode.models.simulate import replicate_user_counts
from comparemode.models.stats import aggregate, patterns_for
from comparemode.reference import (
    Reference,
    check_identifiable,
    check_mu_identifiable,
    encode_counts,
    estimated_reference,
)

__all__ = ["BayesianTwoType", "MODEL_ID", "MODEL_VERSION", "SAMPLERS", "DIAGNOSTIC_THRESHOLDS"]

MODEL_ID = "comparemode.BayesianTwoType"
#: Bumped whenever the model or the saved layout changes; ``load`` refuses other versions.
MODEL_VERSION = "1"

DEFAULT_MODEL_CONFIG = {
    "careless": "beta",
    "ties": "model",
    "mu": "known",  # or "estimate" (two models) or "joint" (many models: strengths estimated)
    "mu_model": None,  # the model mu is about when estimated (default: first by name)
    "priors": {},
}
_GROUP_USERS = "user_data"


def _check_model_config(cfg: dict) -> dict:
    if cfg["careless"] not in CARELESS_MODES:
        raise ConfigError(f"model_config careless must be one of {CARELESS_MODES}, got {cfg['careless']!r}")
    if cfg["mu"] not in ("known", "estimate", "joint"):
        raise ConfigError(f"model_config mu must be 'known', 'estimate' or 'joint', got {cfg['mu']!r}")
    allowed = JOINT_TIE_MODES if cfg["mu"] == "joint" else TIE_MODES
    if cfg["ties"] not in allowed:
        hint = " ('davidson' needs mu='joint')" if cfg["ties"] == "davidson" else ""
        raise ConfigError(f"model_config ties must be one of {allowed}, got {cfg['ties']!r}{hint}")
    check_priors(cfg["priors"])
    return cfg


_DIGEST_ATTR = "comparemode_content_sha256"
_DIGESTED_ATTRS = ("model_config", "sampler_config", "reference", "data_summary", "user_ids", "comparemode_model_id", "comparemode_model_version")


def _content_digest(tree) -> str:
    """SHA-256 of every array (values, dtype kind, shape) in every group and of the package's
    attributes, in a form that a netCDF round trip does not change (numbers as float64,
    strings as text)."""
    import hashlib

    h = hashlib.sha256()
    for node in sorted(tree.subtree, key=lambda n: n.path):
        ds = node.to_dataset(inherit=False)
        for name in sorted(map(str, ds.variables)):
            arr = np.asarray(ds[name].values)
            h.update(f"{node.path}/{name}:{arr.shape}".encode())
            if arr.dtype.kind in "biuf":
                h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
            else:
                h.update("\x1f".join(map(str, arr.ravel().tolist())).encode())
    for key in _DIGESTED_ATTRS:
        h.update(f"{key}={tree.attrs.get(key)!s}".encode())
    return h.hexdigest()


def _id_to_json(v):
    """A user id as JSON that :func:`_id_from_json` turns back into an equal id of the same type."""
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return {"b": bool(v)}
    if isinstance(v, (int, np.integer)):
        return {"i": int(v)}
    if isinstance(v, (float, np.floating)):
        return {"f": float(v)}
    if isinstance(v, tuple):
        return {"t": [_id_to_json(x) for x in v]}
    raise ConfigError(
        f"user id {v!r} of type {type(v).__name__} cannot be stored exactly with the posterior; use str, int, "
        "float or tuple ids (e.g. votes['user'] = votes['user'].astype(str))"
    )


def _id_from_json(v):
    if isinstance(v, str):
        return v
    (tag, value), = v.items()
    if tag == "t":
        return tuple(_id_from_json(x) for x in value)
    return {"b": bool, "i": int, "f": float}[tag](value)


class BayesianTwoType(ParamsMixin):
    """The two-type user model fitted by MCMC (PyMC), on compressed count patterns.

    Parameters
    ----------
    model_config : dict, merged over :data:`DEFAULT_MODEL_CONFIG`
        ``careless`` ("beta", "shared", "random"), ``ties`` ("model", "drop"; with ``mu="joint"`` also "davidson"), ``mu``
        ("known": from the reference passed to ``fit``; "estimate": two models, mu gets a
        prior and is estimated with everything else), ``mu_model`` (the model mu is about),
        ``priors`` (merged over :data:`comparemode.models.pymc_model.DEFAULT_PRIORS`).
    sampler_config : dict, merged over :data:`DEFAULT_SAMPLER_CONFIG`
        ``draws``, ``tune``, ``chains``, ``cores``, ``target_accept``, ``sampler``
        ("pymc" or "nutpie"), ``random_seed``, ``progressbar``, ``user_draws``, ``init``,
        ``log_likelihood`` (the DataTree's ``log_likelihood`` group: "auto", True, False; see
        :func:`~comparemode.inference.sampling.add_user_log_likelihood`).

    Settings follow scikit-learn (``get_params``, ``set_params``, ``sklearn.base.clone``); the
    DataTree has a ``log_likelihood`` group with one term per user (variable ``votes``, dim
    ``user``), so ``arviz.loo(model.idata_)`` and ``arviz.compare`` run on it.

    Attributes (after ``fit``)
    --------------------------
    model : the PyMC model. idata_ : the ArviZ DataTree. users_ : one row per user with the
    posterior P(attentive) averaged over draws, its spread and interval.
    """

    def __init__(self, model_config: dict | None = None, sampler_config: dict | None = None):
        self.model_config = _check_model_config(merge_config(DEFAULT_MODEL_CONFIG, model_config, "model_config"))
        self.sampler_config = check_sampler_config(merge_config(DEFAULT_SAMPLER_CONFIG, sampler_config, "sampler_config"))
        self.model = None
        self.idata_ = None

    # -- data ------------------------------------------------------------------------
    def _prepare(self, votes, mu, strengths, scale):
        cfg = self.model_config
        if cfg["mu"] == "joint":
            return self._prepare_joint(votes, mu, strengths)
        if cfg["mu"] == "estimate":
            if mu is not None or strengths is not None:
                raise ConfigError("model_config mu='estimate' estimates mu: do not pass mu or strengths to fit")
            counts = count_and_resolve(votes)[0]
            try:
                ref = estimated_reference(counts.context_frame(), cfg["mu_model"])
            except MuError as exc:
                raise ConfigError(f"model_config mu='estimate': {exc}") from None
        else:
            counts, ref, _ = count_and_resolve(votes, mu=mu, strengths=strengths, scale=scale)
        enc, user_index = encode_counts(counts, ref)
        if ref.mu is not None or ref.kind == "row":
            check_identifiable(enc, ref, cfg["careless"])
        stats = aggregate(enc, mu=ref.mu if ref.mu is not None else 0.5)
        if cfg["mu"] == "estimate":
            check_mu_identifiable(enc, ref, cfg["careless"], stats.d)
        ties, pat = patterns_for(stats, cfg["ties"])
        return counts, ref, enc, user_index, stats, pat, ties

    def _prepare_joint(self, votes, mu, strengths):
        if mu is not None or strengths is not None:
            raise ConfigError("model_config mu='joint' estimates the strengths: do not pass mu or strengths to fit")
        votes = count_and_resolve(votes)[0]
        self._joint_design, enc, user_index = encode_joint(votes)
        stats = aggregate(enc)
        ties, pat = patterns_for(stats, self.model_config["ties"])
        ref = Reference(kind="joint", source="estimated strengths")
        return votes, ref, enc, user_index, stats, pat, ties

    # -- model -----------------------------------------------------------------------
    def build_model(self, votes: pd.DataFrame, *, mu=None, strengths=None, scale: str = "bt"):
        """Build (not sample) the PyMC model for these votes; returns it and sets ``model``."""
        votes, ref, enc, user_index, stats, pat, ties = self._prepare(votes, mu, strengths, scale)
        self._set_data(ref, enc, user_index, stats, pat, ties)
        if self.model_config["mu"] == "joint":
            self.model = build_joint_pymc_model(
                pat,
                self._joint_design,
                careless=self.model_config["careless"],
                ties=ties,
                priors=check_priors(self.model_config["priors"]),
            )
            return self.model
        self.model = build_pymc_model(
            pat,
            careless=self.model_config["careless"],
            ties=ties,
            priors=check_priors(self.model_config["priors"]),
            estimate_mu=self.model_config["mu"] == "estimate",
        )
        return self.model

    def _set_data(self, ref, enc, user_index, stats, pat, ties):
        self._ref, self._enc, self._user_index, self._stats, self._pat, self._ties = ref, enc, user_index, stats, pat, ties
        self.__dict__.pop("_user_cache", None)

    @property
    def param_names(self) -> list[str]:
        ties = getattr(self, "_ties", self.model_config["ties"])
        mode = self.model_config["mu"]
        return parameter_names(self.model_config["careless"], ties, mode == "estimate", joint=mode == "joint")

    def fit(self, votes: pd.DataFrame, *, mu=None, strengths=None, scale: str = "bt", progressbar=None, random_seed=None):
        """Sample the posterior; returns the ArviZ DataTree (also kept as ``idata_``).

        ``mu``/``strengths``/``scale`` say where mu comes from (as in
        :meth:`comparemode.TwoTypeEM.fit`) unless ``model_config["mu"] == "estimate"``.
        ``progressbar`` and ``random_seed`` override the sampler config for this call.
        """

        cfg = dict(self.sampler_config)
        if progressbar is not None:
            cfg["progressbar"] = bool(progressbar)
        if random_seed is not None:
            cfg["random_seed"] = random_seed
            check_sampler_config(cfg)
        say = Progress(cfg["progressbar"])
        self.build_model(votes, mu=mu, strengths=strengths, scale=scale)
        say(
            f"sampling the two-type model on {self._pat.size:,} count patterns from {len(self._user_index):,} users "
            f"({cfg['chains']} chains x {cfg['draws']} draws, sampler {cfg['sampler']})"
        )
        initvals = self._em_initvals(votes, mu, strengths, scale) if cfg["init"] == "em" else None
        idata = sample_nuts(self.model, cfg, initvals=initvals)
        self.idata_ = self._decorate(idata, cfg)
        self.__dict__.pop("_user_cache", None)
        add_user_log_likelihood(self.idata_, self.pattern_log_likelihood, self.idata_[_GROUP_USERS]["user_pattern"], cfg["log_likelihood"])
        return self.idata_

    def _em_initvals(self, votes, mu, strengths, scale) -> dict | None:
        """The EM estimate of the same model, as starting values for every chain (PyMC adds its
        jitter). Mixtures can have a second, poor mode (for example nearly everybody
        "careless" with the type labels' meaning shifted); EM's multi-start finds the best
        likelihood mode and the chains start there instead of at the prior's centre. None
        when mu is estimated (the EM needs it known)."""
        mode = self.model_config["mu"]
        settings = {"careless": self.model_config["careless"], "ties": self.model_config["ties"], "checks": False}
        if mode == "estimate":
            return None
        if mode == "joint":
            em = JointEM(**settings).fit(votes)
        else:  # the votes are already encoded for the model: fit the EM on the same arrays
            em = TwoTypeEM(**settings).fit_encoded(self._enc, mu=self._ref.mu, user_index=self._user_index)
        p = em.params_
        clip = lambda x, lo, hi: float(min(max(x, lo), hi))  # noqa: E731
        init = {"pi": clip(p["pi"], 1e-3, 1 - 1e-3)}
        for name in self.param_names:
            if name == "strength":
                init["strength"] = em.strengths_.reindex(self._joint_design["models"]).to_numpy()
            elif name == "davidson_nu":
                init[name] = clip(p[name], 1e-4, 1e3)
            elif name.endswith("_mean") or name == "careless_first":
                init[name] = clip(p[name], 1e-3, 1 - 1e-3)
            elif name.endswith("_kappa"):
                init[name] = clip(p[name], 1e-2, 1e5)
        return init

    def _decorate(self, idata, sampler_cfg: dict):
        """Store the per-user mapping and the configs in the DataTree."""
        import xarray as xr


        users = self._user_index
        coord = user_coordinate(users)
        st = self._stats
        data = {
            "user_pattern": (USER, np.asarray(self._pat.inverse, dtype=np.int64)),
            "user_n_votes": (USER, np.asarray(st.n, dtype=np.int64)),
            "user_n_ties": (USER, np.asarray(st.t, dtype=np.int64)),
            "user_n_first": (USER, np.asarray(st.f, dtype=np.int64)),
        }
        if st.k is not None:
            data["user_n_stronger"] = (USER, np.asarray(st.k, dtype=np.int64))
        for name, values in zip(("n_favoured", "n_informative", "expected_favoured"), self._favoured(idata)):
            data[f"user_{name}"] = (USER, np.asarray(values, dtype=float))
        if self._pat.k is not None and "n_stronger" not in idata["constant_data"]:
            idata["constant_data"]["n_stronger"] = xr.DataArray(self._pat.k.astype(float), dims=("pattern",))
        if "attentive_loglik" not in idata["constant_data"] and self.model_config["mu"] != "joint":
            idata["constant_data"]["attentive_loglik"] = xr.DataArray(np.asarray(self._pat.s, dtype=float), dims=("pattern",))
        idata[_GROUP_USERS] = xr.DataTree(xr.Dataset(data, coords={USER: coord}))
        ref = self._ref.describe()
        summary = {
            "n_votes": int(np.asarray(st.n).sum()),
            "n_users": int(len(users)),
            "n_patterns": int(self._pat.size),
            "ties": self._ties,
            "user_id_dtype": str(users.dtype),
        }
        if users.dtype == object and not all(isinstance(u, str) for u in users):
            # the coordinate holds str(id); mixed or non-string ids (1 and "1", tuples) are kept exactly here
            idata.attrs["user_ids"] = json.dumps([_id_to_json(u) for u in users])
        else:
            idata.attrs.pop("user_ids", None)
        idata.attrs.update(
            {
                "comparemode_model_id": MODEL_ID,
                "comparemode_model_version": MODEL_VERSION,
                "comparemode_version": __version__,
                "model_config": json.dumps(self.model_config),
                "sampler_config": json.dumps(sampler_cfg),
                "reference": json.dumps(ref),
                "data_summary": json.dumps(summary),
            }
        )
        return idata

    def _favoured(self, idata):
        """Per user: decisive picks of the model the reference favours, the votes on which it
        favours one and an attentive user's expected picks of it (what the filters' win rates
        read), with mu or the strengths at their posterior means where estimated; NaN for votes
        aggregated on Dask (no votes one by one)."""
        enc, n, st = self._enc, len(self._user_index), self._stats
        post = idata["posterior"]
        if st.k is not None and self.model_config["mu"] != "joint":  # two models: from the counts, on Dask too
            mu = float(post["mu"].mean()) if self.model_config["mu"] == "estimate" else float(self._ref.mu)
            return favoured_from_counts(st.k, st.n - st.t, mu)
        if enc is None:
            return (np.full(n, np.nan),) * 3
        if self.model_config["mu"] == "joint":
            from scipy.special import expit

            d = self._joint_design
            beta = np.asarray(post["strength"].mean(dim=("chain", "draw")).values, dtype=float)
            mu_row = expit(beta[d["all_a"]] - beta[d["all_b"]])
        else:
            mu_row = np.asarray(enc.mu, dtype=float)
        return favoured_counts(enc.user, n, enc.outcome, mu_row)

    # -- results -----------------------------------------------------------------------
    def _fitted_idata(self):
        if self.idata_ is None:
            raise NotFittedError("BayesianTwoType is not fitted yet: call fit(votes, ...) first")
        return self.idata_

    def _draws(self, thin_to: int | None = None) -> dict[str, np.ndarray]:
        """Posterior draws of every parameter, flattened over chains (optionally thinned)."""
        post = self._fitted_idata()["posterior"]
        out = {}
        for name in self.param_names:
            v = np.asarray(post[name].values, dtype=float)
            out[name] = v.reshape(-1, *v.shape[2:])  # (draws,) or (draws, models)
        size = next(iter(out.values())).shape[0]
        if thin_to is not None and size > thin_to:
            idx = np.linspace(0, size - 1, thin_to).round().astype(int)
            out = {k: v[idx] for k, v in out.items()}
        return out

    def _pattern_arrays(self):
        cd = self._fitted_idata()["constant_data"]
        get = lambda name: np.asarray(cd[name].values, dtype=float) if name in cd else None  # noqa: E731
        return get("n_votes"), get("n_ties"), get("n_first"), get("n_stronger"), get("attentive_loglik")

    def _gamma_chunks(self, draws: dict[str, np.ndarray], chunk: int = 256):
        """Per-pattern P(attentive | votes, theta) for each draw theta, in chunks of draws."""
        for l1, l0, pi in self._type_loglik_chunks(draws, chunk):
            yield posterior_attentive(l1, l0, pi)

    def pattern_log_likelihood(self, chunk: int = 256) -> np.ndarray:
        """Log-likelihood of each count pattern's votes (one user's; user types summed out)
        for every posterior draw: array (chain, draw, pattern). Users map to patterns through
        the DataTree's ``users`` group (``user_pattern``). This is the per-user term of a
        user-level PSIS-LOO."""
        post = self._fitted_idata()["posterior"]
        shape = (post.sizes["chain"], post.sizes["draw"])
        parts = [mixture_loglik(l1, l0, pi) for l1, l0, pi in self._type_loglik_chunks(self._draws(), chunk)]
        out = np.concatenate(parts, axis=0)
        return out.reshape(*shape, out.shape[-1])

    def _type_loglik_chunks(self, draws: dict[str, np.ndarray], chunk: int = 256):
        """Per-pattern ``(l1, l0, pi)`` for each draw, in chunks of draws."""
        n, t, f, k, s_known = self._pattern_arrays()
        careless = self.model_config["careless"]
        ties = json.loads(self._fitted_idata().attrs["data_summary"])["ties"]
        size = draws["pi"].shape[0]
        for lo in range(0, size, chunk):
            sl = slice(lo, min(size, lo + chunk))
            col = lambda name: draws[name][sl][:, None]  # noqa: E731
            params = {}
            if careless == "beta":
                params["careless_first"] = beta_from_mean_kappa(col("careless_first_mean"), col("careless_first_kappa"))
            elif careless == "shared":
                params["careless_first"] = col("careless_first")
            if ties in ("model", "davidson"):
                for kind in ("attentive", "careless") if ties == "model" else ("careless",):
                    params[f"tie_{kind}"] = beta_from_mean_kappa(col(f"tie_{kind}_mean"), col(f"tie_{kind}_kappa"))
            if "strength" in draws:
                nu = draws["davidson_nu"][sl] if ties == "davidson" else None
                s = self._joint_attentive(draws["strength"][sl], n.shape[0], nu)
            elif "mu" in draws:
                m = col("mu")
                s = k * np.log(m) + (n - t - k) * np.log1p(-m)
            else:
                s = np.broadcast_to(s_known, (sl.stop - sl.start, s_known.shape[0]))
            l1, l0 = type_logliks(n, t, f, s, params, careless, ties)
            yield l1, l0, col("pi")

    def _joint_attentive(self, strength: np.ndarray, n_users: int, nu: np.ndarray | None = None) -> np.ndarray:
        """Attentive log-likelihood of every user's votes for each draw of the strengths
        (draws x users): the decisive votes, or with Davidson ties (``nu`` given) every vote."""
        from scipy import sparse

        cd = self._fitted_idata()["constant_data"]
        user = np.asarray(cd["vote_user"].values, dtype=np.int64)
        a = np.asarray(cd["vote_a"].values, dtype=np.int64)
        b = np.asarray(cd["vote_b"].values, dtype=np.int64)
        d = strength[:, a] - strength[:, b]
        if nu is not None:
            out = np.asarray(cd["vote_outcome"].values, dtype=np.int64)
            ind = [(out == k).astype(float) for k in (0, 1, 2)]
            logp = davidson_logp(d, np.log(np.asarray(nu, dtype=float))[:, None], *ind)
        else:
            won = np.asarray(cd["vote_a_won"].values, dtype=float) > 0.5
            logp = np.where(won, -np.logaddexp(0.0, -d), -np.logaddexp(0.0, d))
        to_user = sparse.csr_matrix((np.ones(user.size), (np.arange(user.size), user)), shape=(user.size, n_users))
        return np.asarray((to_user.T @ logp.T).T)

    def leaderboard(self, interval_prob: float = LEADERBOARD_LEVEL, *, scale: str = "bt", elo_anchor=ELO_ANCHOR) -> pd.DataFrame:
        """Model strengths (``model_config["mu"] == "joint"``), centred to mean zero in every
        draw: posterior mean, ``sd`` and the HDI at ``interval_prob`` (ArviZ's ``hdi``) as
        ``lower``/``upper``, with the rank interval and the votes per model of
        :func:`~comparemode.inference.leaderboard.leaderboard_table`."""
        import arviz as az
        import xarray as xr

        if self.model_config["mu"] != "joint":
            raise ConfigError("a leaderboard needs model_config mu='joint' (strengths estimated)")
        post = self._fitted_idata()["posterior"]["strength"]
        models = [str(m) for m in post["model"].values]
        draws = np.asarray(post.transpose("chain", "draw", "model").values)
        draws = draws - draws.mean(axis=-1, keepdims=True)
        bounds = np.asarray(az.hdi(xr.DataArray(draws, dims=("chain", "draw", "model")), prob=interval_prob).values)
        flat = draws.reshape(-1, len(models))
        d = getattr(self, "_joint_design", None)
        counts = dict.fromkeys(("wins", "decisive", "ties"))  # unknown for a model loaded from a file
        if d is not None:
            counts = d["votes_per_model"]
        table = leaderboard_table(
            pd.Series(flat.mean(axis=0), index=models), bounds[:, 0], bounds[:, 1], **counts,
            scale=scale, elo_anchor=elo_anchor, level=interval_prob, interval="hdi", tie_rule=self.model_config["ties"],
        )
        sd = pd.Series(flat.std(axis=0), index=models) * (400 / np.log(10) if scale == "elo" else 1.0)
        table.insert(table.columns.get_loc("lower"), "sd", sd.reindex(table.index).to_numpy())
        table.attrs["interval_prob"] = interval_prob
        return table

    def _pattern_summary(self):
        cached = self.__dict__.get("_user_cache")
        if cached is not None:
            return cached
        idata = self._fitted_idata()
        n_pat = idata["constant_data"]["n_votes"].shape[0]
        keep = int(min(self.sampler_config["user_draws"], max(20, 20_000_000 // max(n_pat, 1))))
        all_draws = self._draws()
        total = all_draws["pi"].shape[0]
        acc = np.zeros(n_pat)
        acc2 = np.zeros(n_pat)
        for g in self._gamma_chunks(all_draws):
            acc += g.sum(axis=0)
            acc2 += (g * g).sum(axis=0)
        mean = acc / total
        sd = np.sqrt(np.maximum(acc2 / total - mean * mean, 0.0))
        kept = np.concatenate(list(self._gamma_chunks(self._draws(thin_to=keep))), axis=0).astype(np.float32)
        cached = {"mean": mean, "sd": sd, "draws": kept}
        self.__dict__["_user_cache"] = cached
        return cached

    def user_index(self) -> pd.Index:
        """The user ids, in the order of the DataTree's ``user`` dimension."""
        idata = self._fitted_idata()
        if "user_ids" in idata.attrs:
            decoded = json.loads(idata.attrs["user_ids"])
            ids = np.empty(len(decoded), dtype=object)
            for i, u in enumerate(decoded):  # element by element: tuple ids stay whole
                ids[i] = _id_from_json(u)
            return pd.Index(ids, name=USER)
        coord = idata[_GROUP_USERS][USER].values
        dtype = json.loads(idata.attrs["data_summary"])["user_id_dtype"]
        if dtype.startswith("int"):
            coord = coord.astype(dtype)
        return pd.Index(coord, name=USER)

    def users_table(self, interval_prob: float = INTERVAL_PROB) -> pd.DataFrame:
        """One row per user: counts, posterior P(attentive) (mean over draws), its standard
        deviation across draws and an equal-tailed ``interval_prob`` interval."""
        ud = self._fitted_idata()[_GROUP_USERS]
        inv = np.asarray(ud["user_pattern"].values)
        summ = self._pattern_summary()
        lo_q, hi_q = (1 - interval_prob) / 2, 1 - (1 - interval_prob) / 2
        lo = np.quantile(summ["draws"], lo_q, axis=0)
        hi = np.quantile(summ["draws"], hi_q, axis=0)
        n = np.asarray(ud["user_n_votes"].values)
        t = np.asarray(ud["user_n_ties"].values)
        f = np.asarray(ud["user_n_first"].values)
        cols = {"n_votes": n, "n_ties": t, "n_decisive": n - t, "n_first": f, "n_second": n - t - f}
        if "user_n_stronger" in ud:
            cols["n_stronger"] = np.asarray(ud["user_n_stronger"].values)
        for name in ("n_favoured", "n_informative", "expected_favoured"):
            if f"user_{name}" in ud:  # saved before these were stored: no win rates
                cols[name] = np.asarray(ud[f"user_{name}"].values, dtype=float)
        cols.update(
            p_attentive=summ["mean"][inv],
            p_attentive_sd=summ["sd"][inv],
            p_attentive_lower=lo[inv],
            p_attentive_upper=hi[inv],
        )
        return pd.DataFrame(cols, index=self.user_index())

    @property
    def users_(self) -> pd.DataFrame:
        """:meth:`users_table` at the package's interval probability."""
        return self.users_table(INTERVAL_PROB)

    def prob_attentive_above(self, level: float) -> pd.Series:
        """Per user, the posterior probability that P(attentive | votes, theta) exceeds
        ``level`` (share of the kept draws; see ``sampler_config["user_draws"]``)."""
        ud = self._fitted_idata()[_GROUP_USERS]
        inv = np.asarray(ud["user_pattern"].values)
        frac = (self._pattern_summary()["draws"] > level).mean(axis=0)
        return pd.Series(frac[inv], index=self.user_index(), name=f"prob_p_attentive_above_{level:g}")

    def summary(self, interval_prob: float = INTERVAL_PROB) -> pd.DataFrame:
        """Posterior summary of the population parameters (mean, sd, HDI at
        ``interval_prob``, ESS, R-hat) via ``arviz.summary``."""
        import arviz as az

        return az.summary(self._fitted_idata(), var_names=self.param_names, ci_kind="hdi", ci_prob=interval_prob, round_to="none")

    def diagnostics(self, thresholds: dict | None = None) -> pd.DataFrame:
        """R-hat, bulk and tail ESS per parameter, divergences and E-BFMI, each with pass/fail
        against ``thresholds`` (default :data:`DIAGNOSTIC_THRESHOLDS`); see
        :func:`comparemode.inference.diagnostics.sampler_diagnostics`."""
        return sampler_diagnostics(self._fitted_idata(), self.param_names, thresholds)

    # -- predictive ----------------------------------------------------------------------
    def sample_prior_predictive(self, votes: pd.DataFrame | None = None, *, draws: int = 500, random_seed=None, mu=None, strengths=None, scale: str = "bt"):
        """Draw parameters from the priors and replicate each user's counts on the same design
        (users, pairs and positions of ``votes``, or of the fitted votes). Returns a DataTree
        with groups ``prior`` (parameters), ``prior_predictive`` (per-user replicated counts)
        and ``observed_data`` (the observed counts)."""
        import pymc as pm

        if votes is not None:
            self.build_model(votes, mu=mu, strengths=strengths, scale=scale)
        elif self.model is None:
            raise NotFittedError("pass votes, or fit first: prior predictive sampling needs the voting design")
        rng = np.random.default_rng(random_seed)
        with warnings.catch_warnings():
            # the only Potential is the likelihood: ignoring it is what prior sampling means here
            warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
            prior = pm.sample_prior_predictive(draws=draws, model=self.model, var_names=self.param_names, random_seed=rng)
        params = {}
        for n in self.param_names:
            v = np.asarray(prior["prior"][n].values, dtype=float)
            params[n] = v.reshape(-1, *v.shape[2:])
        return self._predictive(params, rng, "prior", prior["prior"])

    def sample_posterior_predictive(self, *, draws: int | None = 200, random_seed=None):
        """Replicate each user's counts under posterior draws (thinned to ``draws``) on the
        fitted design. Returns a DataTree with ``posterior_predictive`` and ``observed_data``."""
        self._fitted_idata()
        if getattr(self, "_enc", None) is None:
            raise NotFittedError("posterior predictive sampling needs the voting design: fit the model in this session")
        rng = np.random.default_rng(random_seed)
        params = self._draws(thin_to=draws)
        return self._predictive(params, rng, "posterior", None)

    def _predictive(self, params: dict, rng, kind: str, param_group):
        import xarray as xr


        reps = replicate_user_counts(
            self._enc,
            params,
            careless=self.model_config["careless"],
            ties=self._ties,
            mu=self._ref.mu,
            rng=rng,
            pairs=(self._joint_design["all_a"], self._joint_design["all_b"]) if self.model_config["mu"] == "joint" else None,
        )
        users = user_coordinate(self._user_index)
        size = params["pi"].shape[0]
        coords = {"chain": [0], "draw": np.arange(size), USER: users}
        rep = xr.Dataset({k: (("chain", "draw", USER), v[None]) for k, v in reps.items()}, coords=coords)
        st = self._stats
        obs = {"n_ties": st.t, "n_first": st.f}
        if st.k is not None:
            obs["n_stronger"] = st.k
        observed = xr.Dataset({k: ((USER,), np.asarray(v)) for k, v in obs.items()}, coords={USER: users})
        tree = {f"{kind}_predictive": rep, "observed_data": observed}
        if param_group is not None:
            tree[kind] = param_group.to_dataset() if hasattr(param_group, "to_dataset") else param_group
        return xr.DataTree.from_dict(tree)

    # -- persistence -----------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the DataTree (posterior, data, configs) to a netCDF file."""
        idata = self._fitted_idata()
        # a checksum of the contents, checked by load: bytes damaged inside an array still parse
        idata.attrs[_DIGEST_ATTR] = _content_digest(idata)
        # a temporary file moved into place: an interrupted save leaves the old file or the new one
        return atomic_write(path, lambda tmp: idata.to_netcdf(tmp, engine="h5netcdf"))

    @classmethod
    def load(cls, path) -> "BayesianTwoType":
        """Read a model saved with :meth:`save`; refuses files of another model or version."""
        import xarray as xr

        path = Path(path)
        if not path.exists():
            raise ConfigError(f"saved model {str(path)!r} does not exist")
        try:
            idata = xr.open_datatree(path, engine="h5netcdf").load()
        except Exception as exc:  # noqa: BLE001 - any failure to parse the file means it is damaged
            raise ConfigError(
                f"{str(path)!r} is not a saved comparemode model, or is damaged (truncated or overwritten): "
                f"{type(exc).__name__}: {exc}. Save the fitted model again"
            ) from None
        attrs = idata.attrs
        if attrs.get("comparemode_model_id") != MODEL_ID:
            raise ConfigError(f"{str(path)!r} is not a saved {MODEL_ID} (model id {attrs.get('comparemode_model_id')!r})")
        if attrs.get("comparemode_model_version") != MODEL_VERSION:
            raise ConfigError(
                f"{str(path)!r} was saved by model version {attrs.get('comparemode_model_version')!r}; this is version "
                f"{MODEL_VERSION!r}. Refit the model with this version of comparemode"
            )
        try:
            model_config = json.loads(attrs["model_config"])
            sampler_config = json.loads(attrs["sampler_config"])
            ties = json.loads(attrs["data_summary"])["ties"]
            json.loads(attrs["reference"])
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{str(path)!r} has damaged configs ({type(exc).__name__}: {exc}); save the fitted model again") from None
        missing = [g for g in ("posterior", "constant_data", _GROUP_USERS) if g not in idata.children]
        if missing:
            raise ConfigError(f"{str(path)!r} is damaged: it lacks the group(s) {missing}; save the fitted model again")
        if _DIGEST_ATTR in attrs and attrs[_DIGEST_ATTR] != _content_digest(idata):
            raise ConfigError(
                f"{str(path)!r} is damaged: its contents do not match the checksum written when it was saved "
                "(some bytes changed on disk or in transfer); save the fitted model again"
            )
        obj = cls(model_config=model_config, sampler_config=sampler_config)
        obj.idata_ = idata
        obj._ties = ties
        if "log_likelihood" not in idata.children:  # saved before the group was stored: computed here
            add_user_log_likelihood(idata, obj.pattern_log_likelihood, idata[_GROUP_USERS]["user_pattern"], obj.sampler_config["log_likelihood"])
        return obj

    @property
    def reference_(self) -> dict:
        return json.loads(self._fitted_idata().attrs["reference"])
