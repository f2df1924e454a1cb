"""Model checking (issue 5; docs/design.md sections 3 and 6): posterior predictive checks of the
two-type model and user-level PSIS-LOO comparison of the homogeneous, two-type and
continuous-quality models, with a plain-language verdict.

Thresholds are named constants in :mod:`comparemode.constants` (``INTERVAL_PROB``,
``PARETO_K_MAX``, ``ELPD_SE_FACTOR``, ``ELPD_MIN_DIFF``) and can be passed explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from comparemode.constants import (
    ELPD_MIN_DIFF,
    ELPD_SE_FACTOR,
    INTERVAL_PROB,
    PARETO_K_MAX,
    USER,
)
from comparemode.errors import ConfigError

__all__ = [
    "PPCResult",
    "posterior_predictive_check",
    "ppc_statistics",
    "ppc_table",
    "plot_rate_distributions",
    "ModelComparison",
    "compare_models",
    "user_loo",
]


# ----------------------------------------------------------------------------- PPC

def dispersion_statistic(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Binomial dispersion index of per-user counts ``k`` out of ``n`` (last axis: users):
    ``mean over users with n >= 2 of (k - n p)^2 / (n p (1 - p))``, ``p`` the pooled rate.
    About 1 when every user has the same rate; larger when users differ.

    Many replicates are taken a block of rows at a time, so the temporaries stay small (the
    same numbers: each row's sums are the same operations either way)."""
    k, n = np.asarray(k), np.asarray(n)
    shape = np.broadcast_shapes(k.shape, n.shape)
    rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    block = max(1, _DISPERSION_BLOCK // max(shape[-1] if shape else 1, 1))
    if rows <= block:
        return _dispersion_rows(k, n)
    k2 = np.broadcast_to(k, shape).reshape(rows, shape[-1])
    n2 = np.broadcast_to(n, shape).reshape(rows, shape[-1])
    out = np.empty(rows)
    for lo in range(0, rows, block):
        out[lo:lo + block] = _dispersion_rows(k2[lo:lo + block], n2[lo:lo + block])
    return out.reshape(shape[:-1])


#: Elements per block of :func:`dispersion_statistic` (temporaries of half a megabyte, which stay in cache).
_DISPERSION_BLOCK = 1 << 16


def _dispersion_rows(k, n):
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    use = n >= 2
    kk = np.where(use, k, 0.0)
    nn = np.where(use, n, 0.0)
    p = kk.sum(axis=-1, keepdims=True) / np.maximum(nn.sum(axis=-1, keepdims=True), 1.0)
    var = nn * p * (1 - p)
    term = np.divide((kk - nn * p) ** 2, var, out=np.zeros(np.broadcast_shapes(kk.shape, var.shape)), where=var > 0)
    return term.sum(axis=-1) / np.maximum(use.sum(axis=-1), 1)


def _rate(k, n):
    return np.asarray(k, dtype=float).sum(axis=-1) / np.maximum(np.asarray(n, dtype=float).sum(axis=-1), 1.0)


def ppc_statistics(n_votes, n_ties, n_first, n_stronger=None) -> dict[str, np.ndarray]:
    """The checked statistics of per-user counts (last axis: users; leading axes: replicates):
    pooled rate and dispersion index of ties (out of votes), of first-position picks and, with
    two models, of picks of the model the reference favours (out of decisive votes)."""
    n = np.asarray(n_votes, dtype=float)
    t = np.asarray(n_ties, dtype=float)
    d = n - t
    out = {
        "tie rate": _rate(t, n),
        "tie dispersion": dispersion_statistic(t, np.broadcast_to(n, t.shape)),
        "first-position rate": _rate(n_first, d),
        "first-position dispersion": dispersion_statistic(n_first, d),
    }
    if n_stronger is not None:
        out["favoured-model rate"] = _rate(n_stronger, d)
        out["favoured-model dispersion"] = dispersion_statistic(n_stronger, d)
    return out


@dataclass
class PPCResult:
    """Posterior predictive check: ``table`` (one row per statistic: observed value, mean and
    central ``interval_prob`` interval of the replicated values, ``ppp`` = P(T_rep >= T_obs),
    ``flagged`` exactly when the observed value lies outside that interval: the flag and the
    interval shown use one probability), the replicated statistics
    ``replicated`` (statistic -> array over draws) and the per-user observed and replicated
    rates for plots."""

    table: pd.DataFrame
    replicated: dict = field(repr=False)
    observed_rates: dict = field(repr=False)
    replicated_rates: dict = field(repr=False)
    interval_prob: float = INTERVAL_PROB

    @property
    def flagged(self) -> list[str]:
        return list(self.table.index[self.table["flagged"]])

    def plot(self):
        """Observed per-user rates against replicated ones (top) and each dispersion statistic's
        replicated distribution with the observed value (bottom). Returns the Figure."""
        import matplotlib.pyplot as plt

        kinds = [k for k in ("tie", "first-position", "favoured-model") if f"{k} dispersion" in self.replicated]
        fig, axes = plt.subplots(2, len(kinds), figsize=(4.2 * len(kinds), 6), squeeze=False)
        bins = np.linspace(0, 1, 21)
        for j, kind in enumerate(kinds):
            plot_rate_distributions(axes[0, j], self.observed_rates[kind], self.replicated_rates[kind], kind, bins)
            axes[0, j].set_title(f"per-user {kind} rate", fontsize=10)
            ax2 = axes[1, j]
            stat = f"{kind} dispersion"
            rep = self.replicated[stat]
            row = self.table.loc[stat]
            ax2.hist(rep, bins=30, color="tab:blue", alpha=0.6)
            ax2.axvline(row["observed"], color="k" if not row["flagged"] else "tab:red", lw=2)
            ax2.set_title(f"{stat}: ppp = {row['ppp']:.3f}" + ("  FLAGGED" if row["flagged"] else ""), fontsize=10,
                          color="tab:red" if row["flagged"] else "k")
            ax2.set_xlabel(f"{stat} (replicated, with the observed value)")
            ax2.set_ylabel("replicated data sets")
        fig.tight_layout()
        return fig


def plot_rate_distributions(ax, observed, replicated, kind: str, bins=None):
    """On ``ax``: the distribution over users of the observed per-user ``kind`` rate (black)
    against up to 40 replicated data sets' (blue), as step histograms, axes labelled."""
    bins = np.linspace(0, 1, 21) if bins is None else bins
    for r in replicated[: min(len(replicated), 40)]:
        h, _ = np.histogram(r[np.isfinite(r)], bins=bins, density=True)
        ax.step(bins[:-1], h, where="post", color="tab:blue", alpha=0.15, lw=0.8)
    h, _ = np.histogram(observed[np.isfinite(observed)], bins=bins, density=True)
    ax.step(bins[:-1], h, where="post", color="k", lw=2, label="observed")
    ax.plot([], [], color="tab:blue", alpha=0.5, label="replicated")
    ax.set_xlabel(f"per-user {kind} rate")
    ax.set_ylabel("density of users")
    ax.legend(fontsize=8)


def check_interval_prob(value) -> float:
    """The probability of the posterior predictive interval, checked: a number in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < 1:
        raise ConfigError(f"interval_prob must lie in (0, 1), got {value!r}")
    return float(value)


def ppc_table(observed: dict, replicated: dict, interval_prob: float = INTERVAL_PROB) -> pd.DataFrame:
    """The posterior predictive checks' one rule, for :func:`posterior_predictive_check` and the
    report alike: per statistic (the keys of ``observed``) the observed value, the mean and the
    central ``interval_prob`` interval (``replicated_lower``, ``replicated_upper``) of its finite
    replicated values, ``ppp`` = P(T_rep >= T_obs), and ``flagged``, True exactly when the
    observed value is not finite or lies outside that interval."""
    q = (1.0 - check_interval_prob(interval_prob)) / 2.0
    rows = []
    for name, value in observed.items():
        obs = float(value)
        r = np.asarray(replicated[name], dtype=float)
        r = r[np.isfinite(r)]
        lo, hi = np.quantile(r, [q, 1.0 - q]) if r.size else (np.nan, np.nan)
        rows.append({"statistic": name, "observed": obs, "replicated_mean": float(r.mean()) if r.size else np.nan,
                     "replicated_lower": float(lo), "replicated_upper": float(hi),
                     "ppp": float(np.mean(r >= obs)) if r.size else np.nan, "flagged": not (np.isfinite(obs) and lo <= obs <= hi)})
    return pd.DataFrame(rows).set_index("statistic")


def posterior_predictive_check(model, *, draws: int = 200, random_seed=None, interval_prob: float = INTERVAL_PROB) -> PPCResult:
    """Posterior predictive check of a fitted :class:`~comparemode.BayesianTwoType`: replicate
    every user's counts under ``draws`` posterior draws (``model.sample_posterior_predictive``)
    and compare the statistics of :func:`ppc_statistics` with the observed ones. A statistic is
    flagged when its observed value lies outside the central ``interval_prob`` interval of the
    replicated ones (the interval the table and the plot show)."""
    interval_prob = check_interval_prob(interval_prob)  # before the sampling, not after it
    pp = model.sample_posterior_predictive(draws=draws, random_seed=random_seed)
    rep = pp["posterior_predictive"]
    obs = pp["observed_data"]
    n = np.asarray(model.users_table()["n_votes"].to_numpy(), dtype=float)

    def arr(group, name):
        if name not in group:
            return None
        v = np.asarray(group[name].values, dtype=float)
        return v.reshape(-1, v.shape[-1])

    obs_stats = ppc_statistics(n, arr(obs, "n_ties")[0], arr(obs, "n_first")[0], None if arr(obs, "n_stronger") is None else arr(obs, "n_stronger")[0])
    rep_t, rep_f, rep_k = arr(rep, "n_ties"), arr(rep, "n_first"), arr(rep, "n_stronger")
    rep_stats = ppc_statistics(n, rep_t, rep_f, rep_k)
    table = ppc_table(obs_stats, rep_stats, interval_prob)

    def rates(t, f, k):
        d = n - t
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {"tie": t / n, "first-position": np.where(d > 0, f / np.maximum(d, 1), np.nan)}
            if k is not None:
                out["favoured-model"] = np.where(d > 0, k / np.maximum(d, 1), np.nan)
        return out

    o_t, o_f = arr(obs, "n_ties")[0], arr(obs, "n_first")[0]
    o_k = None if arr(obs, "n_stronger") is None else arr(obs, "n_stronger")[0]
    return PPCResult(
        table=table,
        replicated=rep_stats,
        observed_rates=rates(o_t, o_f, o_k),
        replicated_rates=rates(rep_t, rep_f, rep_k),
        interval_prob=float(interval_prob),
    )


# ----------------------------------------------------------------------------- LOO

def user_loo(pattern_loglik: np.ndarray, inverse: np.ndarray, posterior=None) -> dict:
    """User-level PSIS-LOO from per-pattern log-likelihood draws (chain, draw, pattern).

    Users with the same counts share a pattern and have the same leave-one-out term (the
    importance ratios ``1 / p(y_u | theta)`` are the same), so PSIS runs once per pattern and
    the terms are spread to users through ``inverse``. Returns per-user ``elpd_i``,
    ``pareto_k``, ``p_loo_i`` and the ``good_k`` threshold ArviZ computed."""
    import arviz as az
    import xarray as xr

    ll = np.asarray(pattern_loglik, dtype=float)
    groups = {"log_likelihood": xr.Dataset({"votes": (("chain", "draw", "pattern"), ll)})}
    if posterior is not None:
        groups["posterior"] = posterior
    else:
        groups["posterior"] = xr.Dataset({"dummy": (("chain", "draw"), np.zeros(ll.shape[:2]))})
    with np.errstate(all="ignore"):
        res = az.loo(xr.DataTree.from_dict(groups), var_name="votes", pointwise=True)
    elpd = np.asarray(res.elpd_i.values, dtype=float)
    k = np.asarray(res.pareto_k.values, dtype=float)
    from scipy.special import logsumexp

    flat = ll.reshape(-1, ll.shape[-1])
    lppd = logsumexp(flat, axis=0) - np.log(flat.shape[0])
    p_i = lppd - elpd  # effective number of parameters, per pattern
    inv = np.asarray(inverse)
    return {"elpd_i": elpd[inv], "pareto_k": k[inv], "p_loo_i": p_i[inv], "good_k": float(getattr(res, "good_k", PARETO_K_MAX))}


@dataclass
class ModelComparison:
    """User-level PSIS-LOO comparison. ``table``: one row per model (``elpd_loo``, ``se``,
    ``p_loo``, ``elpd_diff`` and ``se_diff`` against the best model, ``pareto_k_bad`` =
    users whose k exceeds the threshold, ``pareto_k_max``), best first; ``evidence_of_careless``
    and ``verdict`` (plain language); ``pointwise``: per-user elpd terms and k of every model."""

    table: pd.DataFrame
    evidence_of_careless: bool
    verdict: str
    pointwise: pd.DataFrame = field(repr=False)
    settings: dict = field(default_factory=dict)
    #: "continuous" (a continuum of quality predicts held-out users better than two types),
    #: "two-type", "tie", or None (no continuous fit, or one with another careless sub-model:
    #: then the comparison is not about types against a continuum)
    types_or_continuum: str | None = None


#: A tie in LOO between two types and a continuum counts for two types when the fitted
#: continuum puts less than this share of users between 10% and 90% attentive (its quality
#: Beta has collapsed onto the two types).
CONTINUUM_MIDDLE_MIN = 0.25


def continuum_middle_mass(model, lo: float = 0.1, hi: float = 0.9) -> float:
    """Posterior mean share of users whose attentive share lies in (lo, hi) under a fitted
    continuous-quality :class:`BayesianAlternative`."""
    from scipy.stats import beta

    vals, _ = model._draw_params()
    m, kappa = vals["quality_mean"], vals["quality_kappa"]
    return float(np.mean(beta.cdf(hi, m * kappa, (1 - m) * kappa) - beta.cdf(lo, m * kappa, (1 - m) * kappa)))


def compare_models(fits: dict, *, se_factor: float = ELPD_SE_FACTOR, min_diff: float = ELPD_MIN_DIFF, pareto_k_max: float = PARETO_K_MAX,
                   middle_min: float = CONTINUUM_MIDDLE_MIN) -> ModelComparison:
    """Compare fitted Bayesian models of the same votes by user-level PSIS-LOO.

    ``fits`` maps a name to a fitted model with ``pattern_log_likelihood()`` and a DataTree
    ``idata_`` whose ``user_data`` group maps users to patterns: :class:`~comparemode.BayesianTwoType`
    under ``"two-type"``, :class:`BayesianAlternative` under ``"homogeneous"`` and
    ``"continuous"``. The verdict says there is evidence of careless users only when the
    two-type model beats the homogeneous one by more than ``se_factor`` standard errors of
    the difference and by more than ``min_diff``. With a continuous fit (the two-type model's
    careless users) it also answers "two types or a continuum" (``types_or_continuum``): LOO
    decides where it can; where the two predict alike, a continuum that puts less than
    ``middle_min`` of users between 10% and 90% attentive has collapsed onto two types.
    """
    if isinstance(middle_min, bool) or not isinstance(middle_min, (int, float)) or not 0.0 < float(middle_min) < 1.0:
        raise ConfigError(f"middle_min must be a share strictly between 0 and 1, got {middle_min!r}")
    if "two-type" not in fits or "homogeneous" not in fits:
        raise ConfigError("compare_models needs at least the 'two-type' and the 'homogeneous' fits")
    point = {}
    rows = []
    n_users = None
    for name, model in fits.items():
        inv = np.asarray(model.idata_["user_data"]["user_pattern"].values)
        if n_users is None:
            n_users = inv.size
        elif inv.size != n_users:
            raise ConfigError(f"model {name!r} was fitted to {inv.size} users, the others to {n_users}: fit every model to the same votes")
        res = user_loo(model.pattern_log_likelihood(), inv)
        point[name] = res
        thr = min(pareto_k_max, res["good_k"])
        rows.append({
            "model": name,
            "elpd_loo": float(res["elpd_i"].sum()),
            "se": float(np.sqrt(n_users * np.var(res["elpd_i"]))),
            "p_loo": float(np.nansum(res["p_loo_i"])),
            "pareto_k_bad": int(np.sum(res["pareto_k"] > thr)),
            "pareto_k_max": float(np.max(res["pareto_k"])),
            "pareto_k_threshold": thr,
        })
    table = pd.DataFrame(rows).set_index("model").sort_values("elpd_loo", ascending=False)
    best = table.index[0]
    diffs, ses = [], []
    for name in table.index:
        d = point[best]["elpd_i"] - point[name]["elpd_i"]
        diffs.append(float(-d.sum()))
        ses.append(float(np.sqrt(n_users * np.var(d))))
    table.insert(1, "elpd_diff", diffs)
    table.insert(2, "se_diff", ses)

    d_th = point["two-type"]["elpd_i"] - point["homogeneous"]["elpd_i"]
    diff_th, se_th = float(d_th.sum()), float(np.sqrt(n_users * np.var(d_th)))
    evidence = diff_th > max(se_factor * se_th, min_diff)
    if evidence:
        verdict = (
            f"Evidence of careless users: the two-type model predicts held-out users better than the homogeneous model "
            f"(elpd difference {diff_th:+.1f}, SE {se_th:.1f}, more than {se_factor:g} SE). Filtering users is warranted."
        )
    else:
        verdict = (
            f"No evidence of careless users: the two-type model does not predict held-out users better than the homogeneous "
            f"model, where everybody votes alike (elpd difference {diff_th:+.1f}, SE {se_th:.1f}; evidence needs more than "
            f"{se_factor:g} SE and {min_diff:g}). The filter has nothing to find: keep every user."
        )
    continuum = None
    if "continuous" in point:
        d_ct = point["continuous"]["elpd_i"] - point["two-type"]["elpd_i"]
        diff_ct, se_ct = float(d_ct.sum()), float(np.sqrt(n_users * np.var(d_ct)))
        c_two = getattr(fits["two-type"], "model_config", {}).get("careless")
        c_cont = getattr(fits["continuous"], "model_config", {}).get("careless")
        if c_two != c_cont:
            verdict += (f" The continuous-quality model's careless users ({c_cont!r}) are not the two-type model's ({c_two!r}), so "
                        f"their difference (elpd {diff_ct:+.1f}, SE {se_ct:.1f}) mixes the position habits in; fit both with the same "
                        "careless setting to ask whether users come in two types or on a continuum.")
        elif diff_ct > se_factor * se_ct:
            continuum = "continuous"
            verdict += (f" The continuous-quality model fits better than two types (difference {diff_ct:+.1f}, SE {se_ct:.1f}): "
                        "users differ by degree (each attentive on part of their votes), so P(attentive) of the two-type model is "
                        "not calibrated; rank users by a quality score and decide on the continuous model's share.")
        elif -diff_ct > se_factor * se_ct:
            continuum = "two-type"
            verdict += f" Two distinct types fit better than a continuum of quality (difference {-diff_ct:+.1f}, SE {se_ct:.1f})."
        else:
            # The continuum holds two types as a limit (quality Beta piled onto 0 and 1), where the
            # two predict alike: its fitted shape says which the data are.
            middle = continuum_middle_mass(fits["continuous"])
            if middle < middle_min:
                continuum = "two-type"
                verdict += (f" Two types and a continuum predict held-out users about equally well (difference {diff_ct:+.1f}, SE "
                            f"{se_ct:.1f}), but the fitted continuum puts only {middle:.0%} of users between 10% and 90% attentive: "
                            "it collapses onto two types, so the data prefer two types.")
            else:
                continuum = "tie"
                verdict += (f" Two types and a continuum of quality fit about equally well (difference {diff_ct:+.1f}, SE {se_ct:.1f}); "
                            f"the fitted continuum puts {middle:.0%} of users between 10% and 90% attentive.")
    bad = table[table["pareto_k_bad"] > 0]
    for name, row in bad.iterrows():
        verdict += (f" Warning: {int(row['pareto_k_bad'])} user(s) have Pareto k above {row['pareto_k_threshold']:.2f} under the "
                    f"{name} model, so its LOO estimate is unreliable for them.")
    first = next(iter(fits.values()))
    index = first.users_.index if hasattr(first, "users_") else None
    pointwise = pd.DataFrame({f"{name}_{key}": point[name][key] for name in point for key in ("elpd_i", "pareto_k")}, index=index)
    pointwise.index.name = USER
    settings = {"se_factor": se_factor, "min_diff": min_diff, "pareto_k_max": pareto_k_max, "middle_min": middle_min}
    return ModelComparison(table=table, evidence_of_careless=bool(evidence), verdict=verdict, pointwise=pointwise, settings=settings, types_or_continuum=continuum)
