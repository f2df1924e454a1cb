"""Sampler diagnostics in one place (issue 5): R-hat, bulk and tail ESS, divergences and
E-BFMI, each judged against named thresholds (:data:`comparemode.constants.DIAGNOSTIC_THRESHOLDS`),
plus rank and energy plots. A failed diagnostic is reported as failed, never dropped.

E-BFMI and both plots are ArviZ's (``arviz.bfmi``, ``arviz.plot_rank``, ``arviz.plot_energy``,
from arviz-stats and arviz-plots), drawn with matplotlib; the functions here keep the
package's names and return types (an array per chain, a matplotlib Figure with labelled axes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from comparemode.constants import DIAGNOSTIC_THRESHOLDS

__all__ = ["sampler_diagnostics", "bfmi", "plot_ranks", "plot_energy", "diagnostics_passed"]


def bfmi(idata) -> np.ndarray:
    """E-BFMI of each chain from the sampler's energy (``arviz.bfmi``:
    ``sum(diff(E)^2) / sum((E - mean E)^2)``), an array in chain order."""
    import arviz as az

    return np.asarray(az.bfmi(idata)["energy"].transpose("chain").values, dtype=float).reshape(-1)


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
    """Rank plots (``arviz.plot_rank``): for each parameter (a vector parameter's elements one
    by one, at most ``max_params`` panels), each chain's fractional ranks of its draws among all
    chains, as the difference of their ECDF from the uniform one with ArviZ's simultaneous
    multi-chain test. Lines near zero mean the chains mix; a chain's line leaving zero means it
    sits elsewhere. One chain is split into its two halves (as split R-hat does). ``bins`` is no longer used (the ECDF needs none; kept for callers). Returns
    the matplotlib Figure."""
    import arviz as az
    import xarray as xr

    post = idata["posterior"]
    series = {}
    for n in names:
        v = post[n]
        extra = [d for d in v.dims if d not in ("chain", "draw")]
        if not extra:
            series[n] = v.transpose("chain", "draw").drop_vars([c for c in v.coords if c not in ("chain", "draw")])
            continue
        flat = v.stack(_element=extra).transpose("chain", "draw", "_element")
        for j in range(flat.sizes["_element"]):
            label = ",".join(map(str, np.atleast_1d(flat["_element"].values[j])))
            series[f"{n}[{label}]"] = xr.DataArray(flat.values[:, :, j], dims=("chain", "draw"),
                                                   coords={"chain": v["chain"].values, "draw": v["draw"].values})
    series = dict(list(series.items())[:max_params])
    halves = post.sizes["chain"] < 2  # one chain: rank its two halves against each other (as split R-hat does)
    if halves:
        half = post.sizes["draw"] // 2
        series = {k: xr.DataArray(v.values[0, : 2 * half].reshape(2, half), dims=("chain", "draw"),
                                  coords={"chain": [0, 1], "draw": np.arange(half)}) for k, v in series.items()}
    cols = min(4, len(series))
    rows = int(np.ceil(len(series) / cols))
    pc = az.plot_rank(
        xr.DataTree.from_dict({"posterior": xr.Dataset(series)}),
        backend="matplotlib",
        visuals={"remove_axis": False},
        figure_kwargs={"figsize": (3.2 * cols, 2.6 * rows)},
    )
    pc.add_legend("chain")
    fig = pc.viz["figure"].item()
    for ax in fig.axes:
        if ax.axison:  # the grid's unused cells are switched off
            ax.set_ylabel("ECDF difference")
            ax.set_xlabel("fractional rank")
    fig.suptitle("Rank plots (ECDF difference from uniform, per " + ("half of the one chain)" if halves else "chain)"), fontsize=10)
    fig.set_layout_engine("constrained")
    return fig


def plot_energy(idata):
    """Energy plot (``arviz.plot_energy``): the marginal energy distribution against the energy
    transitions, and each chain's E-BFMI against the package's threshold; a transition
    distribution much narrower than the marginal one (low E-BFMI) means the sampler explores
    the tails poorly. Returns the matplotlib Figure."""
    import arviz as az

    pc = az.plot_energy(
        idata,
        backend="matplotlib",
        threshold=DIAGNOSTIC_THRESHOLDS["bfmi_min"],
        visuals={"remove_axis": False},
        figure_kwargs={"figsize": (8, 3)},
    )
    fig = pc.viz["figure"].item()
    plots = pc.viz["plot"]
    b_ax, e_ax = plots.sel(column="bfmi").item(), plots.sel(column="energy").item()
    b_ax.set_xlabel(f"E-BFMI (dashed: {DIAGNOSTIC_THRESHOLDS['bfmi_min']:g})")
    b_ax.set_ylabel("chain")
    e_ax.set_xlabel("energy, centred")
    e_ax.set_ylabel("density")
    e_ax.set_title("Energy (E-BFMI per chain: " + ", ".join(f"{x:.2f}" for x in bfmi(idata)) + ")", fontsize=9)
    fig.set_layout_engine("constrained")
    return fig
