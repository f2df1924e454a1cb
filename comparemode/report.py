"""The posterior diagnostic report (issue 5): one self-contained HTML file (figures embedded as
PNG data URIs) that a statistician can hand to a colleague.

Sections: data summary; fitted parameters from EM and MCMC side by side; sampler
diagnostics of every MCMC fit (failed checks shown as failed); posterior predictive checks;
user-level PSIS-LOO comparison of the homogeneous, two-type and continuous-quality models with
a plain-language verdict; the filtering decision with the threshold curve (users and votes
kept against alpha); and the exact settings and package versions needed to reproduce it.

From Python: :func:`write_report`; from the command line: ``comparemode report``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from comparemode._output import ResultSet
from comparemode._progress import Progress
from comparemode._version import __version__
from comparemode.constants import DEFAULT_FDR_ALPHA, DIAGNOSTIC_THRESHOLDS, INTERVAL_PROB
from comparemode.data import validate_votes
from comparemode.errors import ConfigError
from comparemode.inference.alternatives import BayesianAlternative, HomogeneousEM
from comparemode.inference.crossfit import filter_crossfit
from comparemode.inference.diagnostics import (
    diagnostics_passed,
    plot_energy,
    plot_ranks,
)
from comparemode.inference.em import TwoTypeEM
from comparemode.inference.filter import filter_fdr
from comparemode.inference.joint import JointEM
from comparemode.inference.leaderboard import plot_leaderboard
from comparemode.inference.mcmc import BayesianTwoType
from comparemode.inference.model_checks import (
    compare_models,
    posterior_predictive_check,
)
from comparemode.models.simulate import DEFAULT_SIMULATION, simulate_votes

__all__ = ["write_report", "ReportResult", "DEFAULT_REPORT_SAMPLER"]

#: Sampler settings of the report's MCMC fits (plain dict; override with ``sampler_config``).
DEFAULT_REPORT_SAMPLER = {"draws": 1000, "tune": 1000, "chains": 4, "cores": 2, "random_seed": 20261127}
#: Above this many likelihood terms the report's continuous model uses careless="random"
#: (terms linear in a user's votes) instead of the two-type model's position habits (quadratic).
CONTINUOUS_MAX_TERMS = 600_000
#: Resamples of the users behind the report's leaderboard intervals.
REPORT_BOOT = 100
#: FDR levels of the threshold curve.
ALPHA_GRID = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
_VERSIONED = ("comparemode", "numpy", "pandas", "scipy", "pymc", "pytensor", "arviz", "xarray", "matplotlib")


@dataclass
class ReportResult:
    """What :func:`write_report` wrote: ``path``, ``seconds`` taken, ``n_figures`` embedded,
    the model ``comparison`` verdict, the filter ``decision`` (a summary dict) and the EM
    fit's misfit ``checks``."""

    path: Path
    seconds: float
    n_figures: int
    evidence_of_careless: bool
    verdict: str
    decision: dict
    #: the EM fit's misfit checks in brief (``TwoTypeEM.checks_summary``)
    checks: dict | None = None
    #: where the reference came from (given, or estimated: by the joint EM, or mu by the two-type EM)
    reference: str = "given"
    #: the users the decision keeps (the same set as ``comparemode run`` keeps by default)
    kept_users: pd.Index | None = None


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _versions() -> dict:
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _table(df: pd.DataFrame, fmt: str = "{:.4g}", bad_cols: tuple = ()) -> str:
    """HTML table; boolean ``*_ok``-style columns render as pass/FAILED."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [df.index.name or ""] + list(df.columns))
    rows = []
    for idx, row in df.iterrows():
        cells = [f"<td>{html.escape(str(idx))}</td>"]
        for c, v in row.items():
            if isinstance(v, (bool, np.bool_)) and (str(c).endswith("_ok") or c in bad_cols or c == "flagged" or c == "inside"):
                good = bool(v) if c != "flagged" else not bool(v)
                text = ("pass" if good else "FAILED") if c != "flagged" else ("flagged" if v else "ok")
                if c == "inside":
                    text = "inside" if v else "OUTSIDE"
                cells.append(f'<td class="{"ok" if good else "fail"}">{text}</td>')
            elif isinstance(v, (float, np.floating)):
                cells.append(f"<td>{'—' if not np.isfinite(v) else fmt.format(v)}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child{text-align:left}td.ok{color:#176b2c}td.fail{color:#fff;background:#c0392b;font-weight:bold}
.verdict{padding:.8em 1em;border-left:5px solid #2c6fbb;background:#eef4fb}.verdict.warn{border-color:#c0392b;background:#fbeeee}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.82em}.small{font-size:.85em;color:#555}
"""

_FIGURE_CHECK = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (im) { return im.complete && im.naturalWidth > 0; }).length;
  document.body.setAttribute('data-figures-total', String(imgs.length));
  document.body.setAttribute('data-figures-loaded', String(ok));
});
</script>
"""


class _Doc:
    def __init__(self):
        self.parts: list[str] = []
        self.n_figures = 0

    def h(self, level: int, text: str, anchor: str | None = None):
        a = f' id="{anchor}"' if anchor else ""
        self.parts.append(f"<h{level}{a}>{html.escape(text)}</h{level}>")

    def p(self, text: str, cls: str | None = None, raw: bool = False):
        c = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{c}>{text if raw else html.escape(text)}</p>")

    def raw(self, text: str):
        self.parts.append(text)

    def figure(self, fig, caption: str):
        self.n_figures += 1
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(fig)}"/>'
            f"<figcaption>Figure {self.n_figures}. {html.escape(caption)}</figcaption></figure>"
        )


def _votes_figure(votes: pd.DataFrame):
    import matplotlib.pyplot as plt

    per_user = votes.groupby("user", sort=False).size()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].hist(per_user, bins=min(40, max(5, per_user.nunique())), color="tab:gray")
    axes[0].set_xlabel("votes per user")
    axes[0].set_ylabel("users")
    counts = votes["winner"].value_counts()
    axes[1].bar(counts.index.astype(str), counts.to_numpy(), color="tab:gray")
    axes[1].set_ylabel("votes")
    axes[1].set_title("outcomes", fontsize=10)
    fig.tight_layout()
    return fig


def _threshold_curve(votes, users, alphas):
    import matplotlib.pyplot as plt


    rows = []
    for a in alphas:
        s = filter_fdr(votes, users, alpha=a).summary
        rows.append({"alpha": a, "users_kept": s["users_kept"], "votes_kept": s["votes_kept"],
                     "users_share": s["users_kept"] / s["users_in"], "votes_share": s["votes_kept"] / s["votes_in"]})
    curve = pd.DataFrame(rows).set_index("alpha")
    fig, ax = plt.subplots(figsize=(6, 3.3))
    ax.plot(curve.index, curve["users_share"], "o-", label="users kept")
    ax.plot(curve.index, curve["votes_share"], "s-", label="votes kept")
    ax.set_xlabel("alpha (target expected share of careless users among the kept)")
    ax.set_ylabel("share kept")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return curve, fig


def _side_by_side(em_params: pd.Series, summ: pd.DataFrame, interval_prob: float) -> pd.DataFrame:
    pct = round(100 * interval_prob)
    lo, hi = f"hdi{pct}_lb", f"hdi{pct}_ub"
    rows = []
    for name in summ.index:
        base = name.split("[")[0]
        em = em_params.get(name, em_params.get(base, np.nan)) if "[" not in name else np.nan
        row = {"EM": float(em), "MCMC mean": summ.loc[name, "mean"], "MCMC sd": summ.loc[name, "sd"],
               f"HDI {pct}% low": summ.loc[name, lo], f"HDI {pct}% high": summ.loc[name, hi]}
        row["inside"] = bool(np.isfinite(em) and summ.loc[name, lo] <= em <= summ.loc[name, hi]) if np.isfinite(em) else None
        rows.append(row)
    out = pd.DataFrame(rows, index=pd.Index(summ.index, name="parameter"))
    if out["inside"].isna().all():
        out = out.drop(columns="inside")
    return out


def write_report(
    votes: pd.DataFrame | None = None,
    out: str | os.PathLike = "report.html",
    *,
    mu=None,
    strengths=None,
    scale: str = "bt",
    careless: str = "beta",
    ties: str = "model",
    alpha: float = DEFAULT_FDR_ALPHA,
    sampler_config: dict | None = None,
    ppc_draws: int = 200,
    random_seed: int = 20261127,
    interval_prob: float = INTERVAL_PROB,
    title: str | None = None,
    source: str | None = None,
    force: bool = False,
    quiet: bool = False,
) -> ReportResult:
    """Fit, check and compare the models on ``votes`` and write the HTML report to ``out``.

    ``votes``: a canonical votes table (:func:`comparemode.load_votes`), or ``None`` for the
    built-in simulated data (:func:`comparemode.simulate_votes` defaults, seed
    ``random_seed``). Where mu comes from: ``mu`` / ``strengths`` / a ``mu`` column as in
    :meth:`comparemode.TwoTypeEM.fit`; with none of them, mu (two models) is estimated by the
    two-type EM, or the strengths (more models) by :class:`~comparemode.JointEM`, and then
    treated as known for every model in the report (stated in the report). ``careless``/
    ``ties`` set the two-type model; the continuous-quality model takes the same careless
    users, the homogeneous model a shared first-position rate. ``sampler_config`` is merged over
    :data:`DEFAULT_REPORT_SAMPLER`. Refuses to overwrite ``out`` unless ``force``. The file is
    written to a temporary file and moved into place.
    """
    # checked, locked and staged before minutes of fitting; written and moved into place at the end
    with ResultSet(out, kind="file", force=force, option="the report path (--out)", force_hint="force=True (--force)") as target:
        return _build_report(
            target, votes, mu=mu, strengths=strengths, scale=scale, careless=careless, ties=ties, alpha=alpha,
            sampler_config=sampler_config, ppc_draws=ppc_draws, random_seed=random_seed, interval_prob=interval_prob,
            title=title, source=source, quiet=quiet,
        )


def _build_report(
    target,
    votes,
    *,
    mu,
    strengths,
    scale,
    careless,
    ties,
    alpha,
    sampler_config,
    ppc_draws,
    random_seed,
    interval_prob,
    title,
    source,
    quiet,
) -> ReportResult:
    t0 = time.perf_counter()
    out = Path(target.shown)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha!r}")
    say = Progress(not quiet)
    scfg = dict(DEFAULT_REPORT_SAMPLER)
    unknown = set(sampler_config or {}) - {"draws", "tune", "chains", "cores", "random_seed", "target_accept"}
    if unknown:
        raise ConfigError(f"unknown sampler_config key(s) {sorted(unknown)}")
    scfg.update(sampler_config or {})
    scfg["progressbar"] = False
    settings = {
        "mu": mu, "strengths": None if strengths is None else "given", "scale": scale, "careless": careless, "ties": ties,
        "alpha": alpha, "sampler_config": scfg, "ppc_draws": ppc_draws, "random_seed": random_seed, "interval_prob": interval_prob,
    }

    doc = _Doc()
    notes = []
    if votes is None:
        sim = simulate_votes(**{k: v for k, v in DEFAULT_SIMULATION.items()}, random_seed=random_seed)
        votes, reference = sim.votes, sim.reference
        source = source or f"built-in simulation (comparemode.simulate_votes defaults, random_seed={random_seed})"
    else:
        votes = validate_votes(votes)
        reference = {}
        if mu is not None:
            reference["mu"] = mu
        elif strengths is not None:
            reference = {"strengths": strengths, "scale": scale}
        source = source or "votes table passed in"
    joint = estimated = None
    n_models = len(pd.unique(votes[["model_a", "model_b"]].to_numpy().ravel()))
    if not reference and "mu" not in votes.columns and n_models > 2:
        say("estimating the model strengths (joint EM) to serve as the reference")
        joint = JointEM(careless=careless, ties=ties, random_seed=0).fit(votes)  # as comparemode run fits it
        reference = {"strengths": joint.strengths_}
        notes.append("The votes came without a reference: the model strengths were estimated by the joint EM "
                     "(JointEM) and then treated as known by every model below (mu per vote = sigmoid of the strength "
                     "difference). Their uncertainty is not propagated into this report.")
        settings["reference"] = "JointEM strengths (estimated, then fixed)"
    elif not reference and "mu" not in votes.columns and n_models == 2:
        say("estimating mu from the votes (two-type EM) to serve as the reference")
        estimated = TwoTypeEM(careless=careless, ties=ties, random_seed=0).fit(votes, mu="estimate")  # as comparemode run fits it
        reference = {"mu": {estimated.reference_["model"]: float(estimated.params_["mu"])}}
        iv = estimated.mu_interval_
        notes.append(f"The votes came without a reference: mu = P({estimated.reference_['model']!r} beats "
                     f"{estimated.reference_['other']!r}) was estimated by the two-type EM, {iv['estimate']:.4f} "
                     f"({iv['prob']:.0%} profile-likelihood interval [{iv['lower']:.4f}, {iv['upper']:.4f}]), and then treated as "
                     "known by every model below. Its uncertainty is not propagated into this report.")
        settings["reference"] = "mu estimated by the two-type EM, then fixed"

    # --- fits ---------------------------------------------------------------------------
    say("EM fits")
    em = TwoTypeEM(careless=careless, ties=ties, random_seed=0).fit(votes, **reference)
    checks = em.checks_summary()
    hom_em = HomogeneousEM(ties=ties).fit(votes, **reference)
    fits = {}
    say(f"MCMC: two-type model ({scfg['chains']} chains x {scfg['draws']} draws)")
    two = BayesianTwoType(model_config={"careless": careless, "ties": ties}, sampler_config=scfg)
    two.fit(votes, **reference)
    fits["two-type"] = two
    say("MCMC: homogeneous model")
    hom = BayesianAlternative("homogeneous", model_config={"ties": ties}, sampler_config=scfg)
    hom.fit(votes, **reference)
    fits["homogeneous"] = hom
    # the two-type model's careless users, so that LOO compares two types with a continuum only
    cont_careless = careless
    cont = BayesianAlternative("continuous", model_config={"ties": ties, "careless": careless}, sampler_config=scfg)
    cont.build_model(votes, **reference)
    if careless != "random" and cont._terms.n_terms > CONTINUOUS_MAX_TERMS:
        cont_careless = "random"
        notes.append(f"The continuous-quality model uses careless='random', not the two-type model's careless={careless!r}: with "
                     f"per-user position habits its exact likelihood needs {cont._terms.n_terms:,} terms, too slow to sample here "
                     f"(limit {CONTINUOUS_MAX_TERMS:,}; the terms grow with the square of a user's votes). Its comparison with "
                     "the two-type model then mixes the position habits in, and the verdict says so.")
        cont = BayesianAlternative("continuous", model_config={"ties": ties, "careless": "random"}, sampler_config=scfg)
        cont.build_model(votes, **reference)
    say(f"MCMC: continuous-quality model (careless={cont_careless})")
    cont.sample()  # the model built above: its likelihood terms are not computed twice
    fits["continuous"] = cont
    say("posterior predictive checks")
    ppc = posterior_predictive_check(two, draws=ppc_draws, random_seed=random_seed)
    say("PSIS-LOO model comparison")
    comparison = compare_models(fits)

    # --- document -----------------------------------------------------------------------
    say("writing the report")
    doc.h(1, title or "comparemode posterior diagnostic report")
    doc.p(f"Data: {source}. Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by comparemode {__version__}.", cls="small")
    doc.raw('<p class="small">Sections: <a href="#data">data</a> · <a href="#params">parameters</a> · '
            '<a href="#diag">diagnostics</a> · <a href="#ppc">predictive checks</a> · <a href="#loo">model comparison</a> · '
            '<a href="#misfit">misfit checks</a> · <a href="#filter">filtering decision</a> · <a href="#repro">reproduce</a></p>')
    doc.raw(f'<div class="verdict{"" if comparison.evidence_of_careless else " warn"}"><b>Verdict.</b> '
            f"{html.escape(comparison.verdict)}</div>")
    if not checks["passed"]:
        doc.raw('<div class="verdict warn"><b>The model does not fit these votes.</b> The filter\'s promise (the expected '
                "careless share of the kept users) and every P(attentive) below rest on the model, and its misfit checks "
                "failed: " + html.escape("; ".join(f"{k}: {v}" for k, v in checks["failed"].items()))
                + "." + (f" Better fit: {html.escape(checks['better_fit'])} (section 6)." if checks.get("better_fit") else "")
                + ' See <a href="#misfit">the misfit checks</a>.</div>')

    doc.h(2, "1. Data summary", "data")
    users = em.users_
    summ_tab = pd.DataFrame(
        {"value": [f"{len(votes):,}", f"{len(users):,}", str(n_models), f"{(votes['winner'].str.startswith('tie')).mean():.1%}",
                   f"{users['n_votes'].median():.0f} (min {users['n_votes'].min()}, max {users['n_votes'].max()})",
                   em.reference_.get("source", "")]},
        index=pd.Index(["votes", "users", "models", "ties", "votes per user, median", "reference (mu)"], name="quantity"),
    )
    doc.raw(_table(summ_tab))
    for n in notes:
        doc.p(n, cls="small")
    doc.figure(_votes_figure(votes), "Votes per user and the outcome counts.")
    if joint is not None:
        say("bootstrap intervals of the joint EM leaderboard (users resampled)")
        board = joint.bootstrap_leaderboard(n_boot=REPORT_BOOT, random_seed=random_seed)
        doc.p(f"Joint EM leaderboard (the reference used below), with {board.attrs['level']:.0%} intervals from "
              f"{REPORT_BOOT} resamples of the users (a user's votes stay together) and the rank interval they allow "
              "(rank_best = 1 + models surely above, rank_worst = models not surely below):")
        doc.raw(_table(board.head(30)))
        fig = plot_leaderboard(board, top=30).figure
        doc.figure(fig, "Joint EM strengths with their bootstrap intervals (the first 30 models).")

    doc.h(2, "2. Fitted parameters: EM and MCMC side by side", "params")
    summ = two.summary(interval_prob)
    side = _side_by_side(em.params_, summ, interval_prob)
    doc.p(f"Two-type model (careless={careless}, ties={ties}). EM: {em.n_iter_} iterations, converged={em.converged_}, "
          f"log-likelihood {em.loglik_:.2f}. 'inside' checks that the EM estimate lies in the MCMC {round(100 * interval_prob)}% HDI.")
    doc.raw(_table(side))
    doc.p(f"Homogeneous model by EM: theta = {hom_em.params_['theta']:.4f} (share of decisive votes cast attentively), "
          f"careless first-position rate {hom_em.params_['careless_first']:.4f}; by MCMC:")
    doc.raw(_table(hom.summary(interval_prob)[["mean", "sd", f"hdi{round(100 * interval_prob)}_lb", f"hdi{round(100 * interval_prob)}_ub"]]))
    doc.p(f"Continuous-quality model by MCMC (careless={cont_careless}):")
    doc.raw(_table(cont.summary(interval_prob)[["mean", "sd", f"hdi{round(100 * interval_prob)}_lb", f"hdi{round(100 * interval_prob)}_ub"]]))

    doc.h(2, "3. Sampler diagnostics", "diag")
    th = DIAGNOSTIC_THRESHOLDS
    doc.p(f"Thresholds: R-hat ≤ {th['r_hat_max']}, bulk and tail ESS ≥ {th['ess_bulk_min']}, divergences ≤ "
          f"{th['divergences_max']}, E-BFMI ≥ {th['bfmi_min']} per chain. A failed check is shown as FAILED.")
    all_ok = True
    for name, model in fits.items():
        diag = model.diagnostics()
        ok = diagnostics_passed(diag)
        all_ok &= ok
        a = diag.attrs
        doc.h(3, f"{name} model: {'all checks passed' if ok else 'SOME CHECKS FAILED'}")
        doc.raw(_table(diag))
        sampler_rows = pd.DataFrame(
            {"value": [str(a["divergences"]), ", ".join(f"{x:.2f}" for x in a["bfmi"])], "ok": [a["divergences_ok"], a["bfmi_ok"]]},
            index=pd.Index(["divergences", "E-BFMI per chain"], name="sampler"),
        ).rename(columns={"ok": "check_ok"})
        doc.raw(_table(sampler_rows))
    doc.figure(plot_ranks(two.idata_, two.param_names), "Rank plots of the two-type model's parameters (per chain).")
    doc.figure(plot_energy(two.idata_), "Energy plot of the two-type model's sampler.")

    doc.h(2, "4. Posterior predictive checks (two-type model)", "ppc")
    doc.p(f"Each user's counts are replicated under {ppc_draws} posterior draws on the same design (users, pairs, "
          "positions). Dispersion index: mean over users of (k - n p)^2 / (n p (1 - p)), about 1 when all users share "
          f"one rate. ppp = P(T_rep ≥ T_obs); flagged outside [{ppc.ppp_extreme}, {1 - ppc.ppp_extreme}].")
    doc.raw(_table(ppc.table))
    if ppc.flagged:
        doc.raw(f'<div class="verdict warn">The model does not reproduce: {html.escape(", ".join(ppc.flagged))}.</div>')
    doc.figure(ppc.plot(), "Observed per-user rates (black) against replicated data sets (blue); bottom: replicated dispersion with the observed value.")

    doc.h(2, "5. Model comparison (PSIS-LOO at the user level)", "loo")
    doc.p("One log-likelihood term per user (all of the user's votes), so LOO asks how well each model predicts a new "
          "user. Pareto k above the threshold marks users whose LOO term is unreliable.")
    doc.raw(_table(comparison.table))
    doc.raw(f'<div class="verdict{"" if comparison.evidence_of_careless else " warn"}">{html.escape(comparison.verdict)}</div>')

    doc.h(2, "6. Misfit checks of the EM fit (fast path)", "misfit")
    doc.p("The checks that run with every EM fit, with no MCMC: the given mu against the mu the votes identify (two "
          "models), how much users differ in picking the favoured model against what two types allow (a parametric "
          "bootstrap of the fitted model), and first against second half of each user's votes (drift). Together they "
          f"raise a false alarm with probability at most {checks['level']:g} when the model holds.")
    doc.raw(_table(em.checks_.drop(columns=["passed"]), fmt="{:.4g}", bad_cols=()))
    if not em.alternatives_.empty:
        doc.p("After the failed check, the models that might fit better, by AIC (the lowest is chosen):")
        doc.raw(_table(em.alternatives_))

    doc.h(2, "7. Filtering decision", "filter")
    decided = two.users_.copy()  # the MCMC probabilities, judged by the EM fit's checks of the same model
    decided.attrs["checks"] = checks
    curve, fig = _threshold_curve(votes, two.users_, ALPHA_GRID)
    # the decision is comparemode run's default, on the same fit, so the two give one kept set
    decider, which = (joint, "joint EM") if joint is not None else (estimated, "two-type EM with mu estimated") if estimated is not None else (em, "two-type EM")
    result = filter_fdr(votes, decider, alpha=alpha)
    decision = dict(result.summary, rule=f"Bayesian FDR on the {which} fit: expected careless share among kept users <= {alpha:g}")
    doc.p(f"Rule, the default of comparemode run and report alike (so both give this kept set): keep the users with the highest "
          f"P(attentive) under the {which} fit while the expected share of careless users among the kept stays at most alpha = {alpha:g}.")
    promise = result.summary["promise"]
    doc.raw(f'<div class="verdict{" warn" if promise["status"] == "void" else ""}">{html.escape(promise["statement"])}</div>')
    posterior = filter_fdr(votes, decided, alpha=alpha)
    same = int((posterior.users["keep"].reindex(result.users.index) == result.users["keep"]).sum())
    doc.p(f"The same rule on the two-type posterior (MCMC) keeps {posterior.summary['users_kept']:,} of {posterior.summary['users_in']:,} "
          f"users; {same:,} of {len(result.users):,} users get the same decision from both.")
    if not comparison.evidence_of_careless:
        doc.p("The model comparison finds no evidence of careless users: keeping every user is what it supports. The kept set "
              "above is the rule's, shown because it is what comparemode run keeps by default.")
    dec_tab = pd.DataFrame({"value": [decision["rule"], f"{decision['users_kept']:,} of {decision['users_in']:,}",
                                      f"{decision['votes_kept']:,} of {decision['votes_in']:,}"]},
                           index=pd.Index(["rule", "users kept", "votes kept"], name="decision"))
    doc.raw(_table(dec_tab))
    doc.raw(_table(curve, fmt="{:.3g}"))
    doc.figure(fig, "Threshold curve: share of users and votes the Bayesian FDR rule keeps at each alpha.")
    basis = em if em.alternative_ is None else em.alternative_
    xfit = filter_crossfit(votes, basis)
    whole = result
    rates = {"all votes": whole.summary["favoured_win_rate"]["all"], f"kept whole users ({which}, FDR {alpha:g})": whole.summary["favoured_win_rate"]["kept"],
             f"kept by cross-fitting (vote-level FDR {xfit.summary['alpha']:g})": xfit.summary["favoured_win_rate"]["kept"],
             "the model, for attentive votes": xfit.summary["favoured_win_rate"]["model_attentive"]}
    doc.p("Users are kept for having agreed with the reference, so among their votes the reference looks more right than "
          "it is. The cross-fitted kept set decides each vote from its user's other votes, so that no vote is kept for its "
          f"own outcome ({'under the EM fit' if basis is em else 'under the better-fitting model, ' + html.escape(str(checks.get('better_fit')))}: "
          f"{xfit.summary['votes_kept']:,} of {xfit.summary['votes_in']:,} votes kept). The favoured model's decisive win rate:")
    doc.raw(_table(pd.DataFrame({"win rate": list(rates.values())}, index=pd.Index(list(rates), name="votes"))))
    if whole.alternative is not None:
        alt = whole.alternative.summary
        doc.p(f"Under the better-fitting model ({html.escape(str(alt['model']))}), the same FDR rule on the EM's probabilities keeps "
              f"{alt['users_kept']:,} of {alt['users_in']:,} users and {alt['votes_kept']:,} of {alt['votes_in']:,} votes (expected careless "
              f"share {alt['expected_careless_share']:.3f}); the decision above, under the {which} fit, does not "
              "keep its promise.")

    doc.h(2, "8. Reproduce", "repro")
    seconds = time.perf_counter() - t0
    doc.p(f"Report built in {seconds:.1f} s. Settings (pass the same to write_report or comparemode report):")
    doc.raw(f"<pre>{html.escape(json.dumps(settings, indent=2, default=str))}</pre>")
    doc.p("Package versions:")
    doc.raw(f"<pre>{html.escape(json.dumps(_versions(), indent=2))}</pre>")
    doc.p("Sampler diagnostics " + ("all passed." if all_ok else "did NOT all pass: read section 3 before trusting the numbers."))

    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            + html.escape(title or "comparemode report") + f"</title><style>{_CSS}</style></head><body>"
            + "\n".join(doc.parts) + _FIGURE_CHECK + "</body></html>\n")
    target.write_text(None, page)
    target.commit()
    say(f"report written to {out} in {seconds:.1f} s")
    return ReportResult(path=out, seconds=seconds, n_figures=doc.n_figures, evidence_of_careless=comparison.evidence_of_careless,
                        verdict=comparison.verdict, decision=decision, checks=checks, reference=str(settings.get("reference", "given")),
                        kept_users=result.users.index[result.users["keep"].to_numpy(dtype=bool)])
