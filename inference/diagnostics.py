"""Sampler diagnostics in one place (issue 5): R-hat, bulk and tail ESS, divergences and
E-BFMI, each judged against named thresholds (:data:`comparemode.constants.DIAGNOSTIC_THRESHOLDS`),
plus rank and energy plots. A failed diagnostic is reported as failed, never dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd

from comparemode.constants import DIAGNOSTIC_THRESHOLDS

__all__ = ["sampler_diagnostics", "bfmi", "plot_ranks", "plot_energy", "diagnostics_passed"]


def bfmi(idata) -> np.ndarray:
    """E-BFMI of each chain from the sampler's energy: ``sum(diff(E)^2) / sum((E - mean E)^2)``."""
    energy = np.asarray(idata["sample_stats"]["energy"].values, dtype=float)
    num = np.sum(np.diff(energy, axis=1) ** 2, axis=1)
    den = np.sum((energy - energy.mean(axis=1, keepdims=True)) ** 2, axis=1)
    return num / den


def sampler_diagnostics(idata, names: list[str], thresholds: dict | None = None) -> pd.DataFrame:
    """One row per scalar parameter (vector parameters get one row per element): ``r_hat``,
    ``ess_bulk``, ``ess_tail`` and whether each passes. ``attrs`` carry the sampler-level
    checks: ``divergences`` / ``divergences_ok``, ``bfmi`` (per chain) / ``bfmi_ok``, and the
    ``thresholds`` used."""
    import arviz as az

    th = dict(DIAGNOSTIC_THRESHOLDS)
    th.update(thresholds or {})
    rhat = az.rhat(idata, var_names=names)
    bulk = az.ess(idata, var_names=names, method="bulk")
    tail = az.ess(idata, var_names=names, method="tail")
    labels, r, eb, et = [], [], [], []
    post = idata["posterior"]
    for n in names:
        values = [np.asarray(x[n].values, dtype=float).reshape(-1) for x in (rhat, bulk, tail)]
        if values[0].size == 1:
            labels.append(n)
        else:
            labels += [f"{n}[{c}]" for c in post[n][post[n].dims[-1]].values]
        r += list(values[0])
        eb += list(values[1])
        et += list(values[2])
    table = pd.DataFrame({"r_hat": r, "ess_bulk": eb, "ess_tail": et}, index=pd.Index(labels, name="parameter"))
    table["r_hat_ok"] = table["r_hat"] <= th["r_hat_max"]
    table["ess_bulk_ok"] = table["ess_bulk"] >= th["ess_bulk_min"]
    table["ess_tail_ok"] = table["ess_tail"] >= th["ess_tail_min"]
    divergences = int(np.asarray(idata["sample_stats"]["diverging"].values).sum())
    table.attrs["divergences"] = divergences
    table.attrs["divergences_ok"] = divergences <= th["divergences_max"]
    b = bfmi(idata) if "energy" in idata["sample_stats"] else np.array([np.nan])
    table.attrs["bfmi"] = [float(x) for x in b]
    table.attrs["bfmi_ok"] = bool(np.all(b >= th["bfmi_min"]))
    table.attrs["thresholds"] = th
    return table


def diagnostics_passed(table: pd.DataFrame) -> bool:
    """True when every per-parameter and sampler-level check in ``table`` passed."""
    cols = ["r_hat_ok", "ess_bulk_ok", "ess_tail_ok"]
    return bool(table[cols].to_numpy().all() and table.attrs["divergences_ok"] and table.attrs["bfmi_ok"])


def plot_ranks(idata, names: list[str], max_params: int = 8, bins: int = 20):
    """Rank plots: for each parameter, the histogram of its draws' ranks (pooled over chains)
    per chain. Uniform bars mean the chains mix; a chain's histogram sloping or humped means
    it sits elsewhere. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from scipy.stats import rankdata

    post = idata["posterior"]
    series = []
    for n in names:
        v = np.asarray(post[n].values, dtype=float)
        if v.ndim == 2:
            series.append((n, v))
        else:
            flat = v.reshape(v.shape[0], v.shape[1], -1)
            labels = post[n][post[n].dims[-1]].values
            series += [(f"{n}[{labels[j]}]", flat[:, :, j]) for j in range(flat.shape[-1])]
    series = series[:max_params]
    cols = min(4, len(series))
    rows = int(np.ceil(len(series) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, (label, v) in zip(axes.ravel(), series):
        ranks = rankdata(v.reshape(-1)).reshape(v.shape)
        edges = np.linspace(0, ranks.size, bins + 1)
        for c in range(v.shape[0]):
            h, _ = np.histogram(ranks[c], bins=edges)
            ax.step(np.arange(bins), h, where="mid", label=f"chain {c}")
        ax.axhline(v.shape[1] / bins, color="k", lw=0.8, ls="--")
        ax.set_title(label, fontsize=9)
        ax.set_yticks([])
    for ax in axes.ravel()[len(series):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Rank plots (dashed: uniform)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_energy(idata):
    """Energy plot: the marginal energy distribution against the energy transitions, centred;
    a transition distribution much narrower than the marginal one (low E-BFMI) means the
    sampler explores the tails poorly. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    energy = np.asarray(idata["sample_stats"]["energy"].values, dtype=float)
    marginal = (energy - energy.mean(axis=1, keepdims=True)).ravel()
    transition = np.diff(energy, axis=1).ravel()
    fig, ax = plt.subplots(figsize=(5, 3))
    bins = np.histogram_bin_edges(np.concatenate([marginal, transition]), bins=40)
    ax.hist(marginal, bins=bins, alpha=0.6, density=True, label="marginal energy")
    ax.hist(transition, bins=bins, alpha=0.6, density=True, label="energy transition")
    b = bfmi(idata)
    ax.set_title("Energy (E-BFMI per chain: " + ", ".join(f"{x:.2f}" for x in b) + ")", fontsize=9)
    ax.legend(fontsize=8)
    ax.set_yticks([])
    fig.tight_layout()
    return fig
