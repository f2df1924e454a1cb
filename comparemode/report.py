"""The posterior diagnostic report (issue 5): one self-contained HTML file (figures embedded as
PNG data URIs) that a statistician can hand to a colleague.

Sections: data summary; fitted parameters from EM and MCMC side by side; sampler
diagnostics of every MCMC fit (failed checks shown as failed); posterior predictive checks;
user-level PSIS-LOO comparison of the homogeneous, two-type and continuous-quality models with
a plain-language verdict; the filtering decision with the threshold curve (users and votes
kept against alpha), the dropped users (heaviest first), their P(attentive) by decision and,
with more than two models, the leaderboard before and after filtering; and the command, the
exact settings and package versions needed to reproduce it. The verdict box at the top names
every failed check (sampler diagnostics, misfit and predictive checks) before the verdict.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from comparemode._output import ResultSet
from comparemode._progress import Progress
from comparemode._version import __version__
from comparemode.constants import (
    DEFAULT_FDR_ALPHA,
    DIAGNOSTIC_THRESHOLDS,
    INTERVAL_PROB,
    LEADERBOARD_LEVEL,
    TIE,
    TIE_BOTHBAD,
    WIN_A,
    WIN_B,
)
from comparemode.data import validate_votes
from comparemode.errors import ConfigError, NotIdentifiableError
from comparemode.inference.alternatives import BayesianAlternative, HomogeneousEM
from comparemode.inference.bradley_terry import BradleyTerry
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
    check_interval_prob,
    compare_models,
    plot_rate_distributions,
    posterior_predictive_check,
    ppc_table,
)
from comparemode.models.simulate import DEFAULT_SIMULATION, simulate_votes

__all__ = ["write_report", "ReportResult", "DEFAULT_REPORT_SAMPLER", "compose_verdict", "diagnostic_failures", "ppc_interval_table"]

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
    the model comparison's ``verdict``, the filter ``decision`` (a summary dict), the EM
    fit's misfit ``checks``, the ``failures`` the verdict box names, the ``command`` shown and
    the ``figures``."""

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
    #: every failed check the verdict box names (sampler diagnostics, misfit and predictive
    #: checks), in the order shown; empty when everything passed
    failures: list = field(default_factory=list)
    #: the command (or Python call) the page shows to reproduce it
    command: str | None = None
    #: (caption, matplotlib Figure) of every embedded figure, in page order (closed figures:
    #: their data stay readable)
    figures: list = field(default_factory=list, repr=False)


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


def _number(v, fmt: str = "{:.4g}") -> str:
    """A number as the page prints it: whole numbers (and any value of 1,000 or more) as whole
    numbers with thousands separators (``6,500``, never ``6.5e+03``), others with ``fmt``;
    NaN, infinities and missing values as a dash."""
    if v is None or v is pd.NA or isinstance(v, (bool, np.bool_)):
        return "—" if v is None or v is pd.NA else str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    x = float(v)
    if not np.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    if x == round(x) or abs(x) >= 1000:
        return f"{x:,.0f}"
    return fmt.format(x)


def _table(df: pd.DataFrame, fmt: str = "{:.4g}", bad_cols: tuple = (), table_id: str | None = None) -> str:
    """HTML table; boolean ``*_ok``-style columns render as pass/FAILED; numbers as
    :func:`_number` prints them."""
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
            elif v is None or v is pd.NA or (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))):
                cells.append(f"<td>{_number(v, fmt)}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    tid = f' id="{table_id}"' if table_id else ""
    return f"<table{tid}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


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
        self.figures: list = []  # (caption, Figure), for ReportResult.figures

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
        self.figures.append((caption, fig))
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(fig)}"/>'
            f"<figcaption>Figure {self.n_figures}. {html.escape(caption)}</figcaption></figure>"
        )


#: How the page names the outcomes of the ``winner`` column: by the position the reader saw.
OUTCOME_LABELS = {WIN_A: "first shown won", WIN_B: "second shown won", TIE: "tie", TIE_BOTHBAD: "tie (both bad)"}


def _whole_ticks(axis) -> None:
    """Tick labels of a count axis as whole numbers with thousands separators (no ``1e4`` offset)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))


def _label_missing(fig, xlabel: str, ylabel: str) -> None:
    """Give every axes of ``fig`` that shows data an x and a y label where it has none (for the
    figures other modules draw: rank, energy and leaderboard plots)."""
    added = False
    for ax in fig.axes:
        if not _has_data(ax):
            continue
        if not ax.get_xlabel():
            ax.set_xlabel(xlabel, fontsize=8)
            added = True
        if not ax.get_ylabel():
            ax.set_ylabel(ylabel, fontsize=8)
            added = True
    if added:
        from matplotlib.layout_engine import ConstrainedLayoutEngine

        if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
            fig.tight_layout()


def _has_data(ax) -> bool:
    return bool(ax.axison and (ax.lines or ax.patches or ax.collections or ax.images))


def _votes_figure(votes: pd.DataFrame):
    import matplotlib.pyplot as plt

    per_user = votes.groupby("user", sort=False).size()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].hist(per_user, bins=min(40, max(5, per_user.nunique())), color="tab:gray")
    axes[0].set_xlabel("votes per user")
    axes[0].set_ylabel("users")
    _whole_ticks(axes[0].xaxis)
    _whole_ticks(axes[0].yaxis)
    counts = votes["winner"].value_counts().reindex([c for c in OUTCOME_LABELS if c in set(votes["winner"])])
    axes[1].bar([OUTCOME_LABELS[c].replace(" won", "\nwon").replace(" (", "\n(") for c in counts.index], counts.to_numpy(), color="tab:gray")
    axes[1].set_xlabel("outcome (by position shown)")
    axes[1].set_ylabel("votes")
    _whole_ticks(axes[1].yaxis)
    axes[1].set_title("outcomes", fontsize=10)
    fig.tight_layout()
    return fig


#: How the verdict box names the per-parameter checks of a diagnostics table (any other
#: ``*_ok`` column is named after the column).
DIAGNOSTIC_NAMES = {"r_hat_ok": "R-hat", "ess_bulk_ok": "ESS bulk", "ess_tail_ok": "ESS tail"}
#: The sampler-level checks in a diagnostics table's ``attrs`` (any other ``*_ok`` key likewise).
SAMPLER_CHECK_NAMES = {"divergences_ok": "divergences", "bfmi_ok": "E-BFMI"}
#: target_accept the verdict suggests against divergences (the samplers' default is 0.9).
SUGGESTED_TARGET_ACCEPT = 0.95


def _limit_text(col: str, th: dict) -> str:
    return {"r_hat_ok": f"above {th.get('r_hat_max', DIAGNOSTIC_THRESHOLDS['r_hat_max'])}",
            "ess_bulk_ok": f"below {th.get('ess_bulk_min', DIAGNOSTIC_THRESHOLDS['ess_bulk_min']):,}",
            "ess_tail_ok": f"below {th.get('ess_tail_min', DIAGNOSTIC_THRESHOLDS['ess_tail_min']):,}"}.get(col, "failed")


def diagnostic_failures(diagnostics: dict) -> list[dict]:
    """Every failed check of the sampler diagnostics tables ``diagnostics`` (model name ->
    :func:`~comparemode.inference.diagnostics.sampler_diagnostics` table), one entry per model
    and check: ``model``, ``check`` (R-hat, ESS bulk, ESS tail, divergences, E-BFMI, or the
    name of any other ``*_ok`` column or attribute the table holds) and ``text``, a plain
    sentence with the parameters and values that failed. Empty when everything passed."""
    out = []
    for model, table in diagnostics.items():
        th = dict(DIAGNOSTIC_THRESHOLDS, **(table.attrs.get("thresholds") or {}))
        for col in [c for c in table.columns if str(c).endswith("_ok")]:
            label = DIAGNOSTIC_NAMES.get(col, str(col)[:-3].replace("_", " "))
            ok = table[col].astype(bool).to_numpy()
            if ok.all():
                continue
            bad = list(table.index[~ok])
            value = str(col)[:-3]
            worst = ""
            if value in table.columns:
                v = table.loc[bad, value].astype(float)
                w = v.max() if col == "r_hat_ok" else v.min()
                worst = f"; worst {_number(w, '{:.3g}')}"
            names = ", ".join(map(str, bad[:5])) + (f" and {len(bad) - 5:,} more" if len(bad) > 5 else "")
            out.append({"model": model, "check": label,
                        "text": f"{model} model: {label} {_limit_text(col, th)} for {len(bad):,} of {len(table):,} parameters ({names}{worst})"})
        for key in [k for k in table.attrs if str(k).endswith("_ok")]:
            if bool(table.attrs[key]):
                continue
            label = SAMPLER_CHECK_NAMES.get(key, str(key)[:-3].replace("_", " "))
            if key == "divergences_ok":
                text = (f"{model} model: divergences: {_number(table.attrs.get('divergences'))} divergent transitions "
                        f"(at most {th['divergences_max']:,} allowed)")
            elif key == "bfmi_ok":
                vals = table.attrs.get("bfmi", [])
                low = [f"chain {i}: {x:.2f}" for i, x in enumerate(vals) if not (x >= th["bfmi_min"])]
                text = f"{model} model: E-BFMI below {th['bfmi_min']} ({', '.join(low) or 'not computed'})"
            else:
                text = f"{model} model: {label} failed"
            out.append({"model": model, "check": label, "text": text})
    return out


def compose_verdict(comparison_verdict: str, evidence_of_careless: bool, diagnostics: dict, *, misfit: dict | None = None,
                    ppc_table: pd.DataFrame | None = None, sampler: dict | None = None) -> dict:
    """The verdict box at the top of the report, composed from the checks alone (no sampling:
    a pure function). It names every failed sampler diagnostic (:func:`diagnostic_failures`
    of ``diagnostics``), every failed misfit check of the EM fit (``misfit``:
    ``TwoTypeEM.checks_summary()``) and every flagged posterior predictive check
    (``ppc_table``: :func:`ppc_interval_table`), says in a plain sentence that the numbers are
    not trustworthy until these pass and what to do (through which argument), and only then
    gives the model comparison's ``comparison_verdict``. When everything passed it says so.

    Returns ``html`` (the box, ``<div id="verdict">``), ``failures`` (the named failures, in the
    order shown) and ``passed``."""
    cfg = dict(DEFAULT_REPORT_SAMPLER, **(sampler or {}))
    sampler_bad = diagnostic_failures(diagnostics)
    failures = [f["text"] for f in sampler_bad]
    misfit_bad = dict((misfit or {}).get("failed") or {})
    failures += [f"misfit check {name!r} of the EM fit: {msg}" for name, msg in misfit_bad.items()]
    flagged = [] if ppc_table is None else list(ppc_table.index[ppc_table["flagged"].astype(bool)])
    pct = "" if ppc_table is None else f"{100 * ppc_table.attrs.get('interval_prob', INTERVAL_PROB):g}%"
    failures += [f"posterior predictive check {stat!r}: the observed value lies outside the {pct} interval of the replicated data"
                 for stat in flagged]
    e = html.escape
    parts = []
    if failures:
        parts.append("<p class=\"verdict-caveat\"><b>The numbers below are not trustworthy until these pass:</b></p><ul>"
                     + "".join(f"<li>{e(t)}</li>" for t in failures) + "</ul>")
        todo = []
        checks = {f["check"] for f in sampler_bad}
        if checks & {"R-hat", "ESS bulk", "ESS tail", "E-BFMI"}:
            d = max(2 * int(cfg["draws"]), DEFAULT_REPORT_SAMPLER["draws"])
            t = max(2 * int(cfg["tune"]), DEFAULT_REPORT_SAMPLER["tune"])
            more_chains = int(cfg["chains"]) < 4
            todo.append(f"run longer chains: more draws and tuning steps, e.g. sampler_config={{'draws': {d}, 'tune': {t}"
                        + (", 'chains': 4" if more_chains else "") + f"}} in write_report (command line: --draws {d} --tune {t}"
                        + (" --chains 4" if more_chains else "") + ")")
        if "divergences" in checks:
            todo.append(f"against divergences, a smaller step size: sampler_config={{'target_accept': {SUGGESTED_TARGET_ACCEPT}}} "
                        f"(write_report only) and more tuning steps (--tune)")
        if misfit_bad:
            todo.append("the misfit checks fail on the votes themselves, not on the sampler: no setting of the sampler mends them; "
                        "read the misfit checks (section 6)" + (f" and the better-fitting model, {misfit['better_fit']}" if misfit.get("better_fit") else ""))
        if flagged:
            todo.append("the two-type model does not reproduce what the flagged statistics measure: read the predictive checks "
                        "(section 4) and the model comparison before using P(attentive)")
        if todo:
            parts.append("<p><b>What to do:</b> " + e("; ".join(todo)) + ".</p>")
        if misfit_bad:
            parts.append("<p><b>The model does not fit these votes.</b> " + e(
                "The filter's promise (the expected careless share of the kept users) and every P(attentive) below rest on "
                "the model, and its misfit checks failed.") + ' See <a href="#misfit">the misfit checks</a>.</p>')
    else:
        ran = ", ".join((misfit or {}).get("ran") or [])
        parts.append("<p class=\"verdict-ok\"><b>Every check passed:</b> " + e(
            f"the sampler diagnostics (R-hat, ESS bulk and tail, divergences, E-BFMI) of all {len(diagnostics)} MCMC fits"
            + (f", the EM fit's misfit checks ({ran})" if misfit is not None else "")
            + (f" and the posterior predictive checks ({pct} intervals)" if ppc_table is not None else "") + ".") + "</p>")
    lead = "Model comparison (read it with the failed checks above): " if failures else "Model comparison: "
    parts.append(f"<p><b>{e(lead)}</b>{e(comparison_verdict)}</p>")
    cls = "verdict" + ("" if evidence_of_careless and not failures else " warn")
    box = f'<div id="verdict" class="{cls}"><b>Verdict.</b> ' + "".join(parts) + "</div>"
    return {"html": box, "failures": failures, "passed": not failures}


def ppc_interval_table(ppc, interval_prob: float = INTERVAL_PROB) -> pd.DataFrame:
    """The posterior predictive checks as the report shows them, with ONE probability for the
    interval and the flag: per statistic the observed value, the replicated mean, the central
    ``interval_prob`` interval of the replicated values (``low``, ``high``), ``ppp`` =
    P(T_rep >= T_obs) and ``flagged``, which is True exactly when the observed value lies
    outside that interval (so "ok" means inside the interval shown beside it; for a continuous
    statistic, about ``ppp`` outside [(1 - p) / 2, (1 + p) / 2])."""
    interval_prob = check_interval_prob(interval_prob)
    pct = f"{100 * interval_prob:g}%"
    observed = ppc.table["observed"].to_dict()
    table = ppc_table(observed, {stat: ppc.replicated[stat] for stat in observed}, interval_prob).rename(
        columns={"replicated_mean": "replicated mean", "replicated_lower": f"{pct} low", "replicated_upper": f"{pct} high"})
    table.attrs["interval_prob"] = interval_prob
    return table


def _ppc_figure(ppc, table: pd.DataFrame):
    """Observed per-user rates against replicated ones (top row); each checked statistic's
    replicated distribution with its shaded interval (the table's) and the observed value
    (red when outside, which is exactly when the table flags it)."""
    import matplotlib.pyplot as plt

    prob = table.attrs["interval_prob"]
    pct = f"{100 * prob:g}%"
    kinds = [k for k in ("tie", "first-position", "favoured-model") if f"{k} dispersion" in table.index]
    fig, axes = plt.subplots(3, len(kinds), figsize=(4.2 * len(kinds), 8.4), squeeze=False)
    bins = np.linspace(0, 1, 21)
    for j, kind in enumerate(kinds):
        plot_rate_distributions(axes[0, j], ppc.observed_rates[kind], ppc.replicated_rates[kind], kind, bins)
        for i, stat in ((1, f"{kind} rate"), (2, f"{kind} dispersion")):
            ax = axes[i, j]
            row = table.loc[stat]
            rep = np.asarray(ppc.replicated[stat], dtype=float)
            ax.hist(rep[np.isfinite(rep)], bins=30, color="tab:blue", alpha=0.6)
            lo, hi = row[f"{pct} low"], row[f"{pct} high"]
            ax.axvspan(lo, hi, color="tab:green", alpha=0.15, gid=f"interval:{stat}", label=f"{pct} interval")
            bad = bool(row["flagged"])
            ax.axvline(row["observed"], color="tab:red" if bad else "k", lw=2, gid=f"observed:{stat}", label="observed")
            ax.set_title(f"{stat}: " + (f"OUTSIDE the {pct} interval" if bad else "ok"), fontsize=10, color="tab:red" if bad else "k")
            ax.set_xlabel(stat + (" (replicated, with the observed value)"))
            ax.set_ylabel("replicated data sets")
            _whole_ticks(ax.yaxis)
            if i == 1 and j == 0:
                ax.legend(fontsize=8)
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


#: Rows of the dropped-users table (the heaviest first); the rest are counted below it.
DROPPED_ROWS = 100


def dropped_users_table(result, votes: pd.DataFrame) -> pd.DataFrame:
    """The users a filter result drops, most votes first (ties by P(attentive), lowest first,
    then by user id as written): ``votes``, ``P(attentive)`` and the rule's ``reason``, indexed
    by the user id as written in the votes."""
    users = result.users
    n = votes.groupby("user", sort=False).size()
    drop = users[~users["keep"].to_numpy(dtype=bool)]
    table = pd.DataFrame({"votes": n.reindex(drop.index).fillna(0).astype(np.int64).to_numpy(),
                          "P(attentive)": drop["p_attentive"].to_numpy(dtype=float),
                          "reason": drop["reason"].astype(str).to_numpy() if "reason" in drop else ""},
                         index=pd.Index(drop.index, name="user"))
    order = np.lexsort((table.index.astype(str).to_numpy(), table["P(attentive)"].to_numpy(), -table["votes"].to_numpy()))
    return table.iloc[order]


def _p_attentive_figure(result, which: str):
    """Histogram of P(attentive) of the users, kept and dropped stacked, with the rule's cut."""
    import matplotlib.pyplot as plt

    users = result.users
    keep = users["keep"].to_numpy(dtype=bool)
    p = users["p_attentive"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.3))
    bins = np.linspace(0, 1, 26)
    ax.hist([p[keep], p[~keep]], bins=bins, stacked=True, color=["tab:green", "tab:red"],
            label=[f"kept ({int(keep.sum()):,} users)", f"dropped ({int((~keep).sum()):,} users)"])
    cut = result.summary.get("p_attentive_cut")
    if cut is not None and keep.any():
        ax.axvline(cut, color="k", ls="--", lw=1, label=f"cut {cut:.3f}")
    ax.set_xlabel(f"P(attentive) under the {which} fit")
    ax.set_ylabel("users")
    _whole_ticks(ax.yaxis)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def before_after_leaderboard(votes: pd.DataFrame, kept: pd.DataFrame, level: float = LEADERBOARD_LEVEL):
    """Bradley-Terry leaderboards (sandwich intervals, users clustered, at ``level``) of all
    votes and of the kept votes: the two :class:`~comparemode.inference.bradley_terry.BradleyTerry`
    leaderboards and one table, a row per model in the order of all votes, with the rank,
    strength and interval before and after filtering (a dash where the kept votes cannot rank
    the model)."""
    before = BradleyTerry(level=level).fit(votes).leaderboard_
    try:
        after = BradleyTerry(level=level).fit(kept).leaderboard_ if len(kept) else None
    except NotIdentifiableError:
        after = None
    pct = f"{100 * level:g}%"
    cols = {}
    for tag, board in (("all votes", before), ("kept votes", after)):
        b = (board if board is not None else before.iloc[:0]).reindex(before.index)
        cols[f"rank ({tag})"] = pd.array(b["rank"], dtype="Int64")
        cols[f"strength ({tag})"] = b["strength"].to_numpy(dtype=float)
        cols[f"{pct} low ({tag})"] = b["lower"].to_numpy(dtype=float)
        cols[f"{pct} high ({tag})"] = b["upper"].to_numpy(dtype=float)
        cols[f"decisive votes ({tag})"] = pd.array(b["decisive"], dtype="Int64")
    table = pd.DataFrame(cols, index=before.index)
    return before, after, table


def _before_after_figure(table: pd.DataFrame, level: float, top: int = 30):
    """Both leaderboards on one figure: the strengths with their intervals before (all votes)
    and after filtering (kept votes), a row per model in the order of all votes."""
    import matplotlib.pyplot as plt

    rows = table.head(top)
    pct = f"{100 * level:g}%"
    fig, ax = plt.subplots(figsize=(7, 0.36 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1].astype(float)
    for tag, dy, color in (("all votes", 0.17, "tab:gray"), ("kept votes", -0.17, "tab:blue")):
        s = rows[f"strength ({tag})"].to_numpy(dtype=float)
        lo, hi = rows[f"{pct} low ({tag})"].to_numpy(dtype=float), rows[f"{pct} high ({tag})"].to_numpy(dtype=float)
        has = np.isfinite(s) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(s[has], y[has] + dy, xerr=np.vstack([s[has] - lo[has], hi[has] - s[has]]), fmt="o", ms=3.5, capsize=2.5,
                    lw=1, color=color, label=f"{tag} ({pct} interval)")
    ax.set_yticks(y, [f"{r}. {m}" for r, m in zip(rows["rank (all votes)"], rows.index)], fontsize=8)
    ax.set_xlabel(f"log-strength (Bradley-Terry), {pct} sandwich interval (users clustered)")
    ax.set_ylabel("model (rank on all votes)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plain(v):
    """``v`` as plain Python values (so that its repr is Python code): Series and mappings as
    dicts, numpy scalars and arrays as numbers and lists."""
    if isinstance(v, pd.Series):
        v = v.to_dict()
    if isinstance(v, dict):
        return {_plain(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return v


def python_call(votes_given: bool, out, *, command_args: dict) -> str:
    """The Python call equivalent to a report: ``comparemode.write_report`` with its arguments
    (``command_args``; the effective sampler settings and seeds included), the votes as
    ``votes`` (a table passed in) or ``None`` (the built-in simulation)."""
    args = ["votes" if votes_given else "None", repr(str(out))]
    args += [f"{k}={_plain(v)!r}" for k, v in command_args.items()]
    return "import comparemode\ncomparemode.write_report(\n    " + ",\n    ".join(args) + ",\n)"


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
    command: str | None = None,
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

    ``command``: the command line that made the report (``comparemode report`` passes its own),
    shown on the page to reproduce it; ``None`` (a Python call) shows the equivalent
    ``write_report`` call with its arguments, the effective sampler settings and seeds included.
    """
    # checked, locked and staged before minutes of fitting; written and moved into place at the end
    with ResultSet(out, kind="file", force=force, option="the report path (--out)", force_hint="force=True (--force)") as target:
        return _build_report(
            target, votes, mu=mu, strengths=strengths, scale=scale, careless=careless, ties=ties, alpha=alpha,
            sampler_config=sampler_config, ppc_draws=ppc_draws, random_seed=random_seed, interval_prob=interval_prob,
            title=title, source=source, quiet=quiet, command=command,
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
    command=None,
) -> ReportResult:
    t0 = time.perf_counter()
    out = Path(target.shown)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha!r}")
    interval_prob = check_interval_prob(interval_prob)
    say = Progress(not quiet)
    scfg = dict(DEFAULT_REPORT_SAMPLER)
    unknown = set(sampler_config or {}) - {"draws", "tune", "chains", "cores", "random_seed", "target_accept"}
    if unknown:
        raise ConfigError(f"unknown sampler_config key(s) {sorted(unknown)}")
    scfg.update(sampler_config or {})
    scfg["progressbar"] = False
    # the equivalent Python call (write_report's own arguments, the effective sampler settings and seeds)
    call_args = {"mu": mu, "strengths": strengths, "scale": scale, "careless": careless, "ties": ties, "alpha": alpha,
                 "sampler_config": {k: v for k, v in scfg.items() if k != "progressbar"}, "ppc_draws": ppc_draws,
                 "random_seed": random_seed, "interval_prob": interval_prob}
    call_args.update({k: v for k, v in (("title", title), ("source", source)) if v is not None})
    shown_command = command if command is not None else python_call(votes is not None, target.shown, command_args=call_args)
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
    ppc_tab = ppc_interval_table(ppc, interval_prob)
    say("PSIS-LOO model comparison")
    comparison = compare_models(fits)
    diagnostics = {name: model.diagnostics() for name, model in fits.items()}
    verdict_box = compose_verdict(comparison.verdict, comparison.evidence_of_careless, diagnostics, misfit=checks,
                                  ppc_table=ppc_tab, sampler=scfg)

    # --- document -----------------------------------------------------------------------
    say("writing the report")
    doc.h(1, title or "comparemode posterior diagnostic report")
    doc.p(f"Data: {source}. Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by comparemode {__version__}.", cls="small")
    doc.raw('<p class="small">Sections: <a href="#data">data</a> · <a href="#params">parameters</a> · '
            '<a href="#diag">diagnostics</a> · <a href="#ppc">predictive checks</a> · <a href="#loo">model comparison</a> · '
            '<a href="#misfit">misfit checks</a> · <a href="#filter">filtering decision</a> · <a href="#repro">reproduce</a></p>')
    doc.raw(verdict_box["html"])

    doc.h(2, "1. Data summary", "data")
    users = em.users_
    summ_tab = pd.DataFrame(
        {"value": [f"{len(votes):,}", f"{len(users):,}", str(n_models), f"{(votes['winner'].str.startswith('tie')).mean():.1%}",
                   f"{_number(users['n_votes'].median())} (min {_number(users['n_votes'].min())}, max {_number(users['n_votes'].max())})",
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
        _label_missing(fig, "strength", "model (rank)")
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
    for name, diag in diagnostics.items():
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
    fig = plot_ranks(two.idata_, two.param_names)
    _label_missing(fig, "rank bin (all chains ranked together)", "draws")
    doc.figure(fig, "Rank plots of the two-type model's parameters (per chain).")
    fig = plot_energy(two.idata_)
    _label_missing(fig, "energy (centred)", "density")
    doc.figure(fig, "Energy plot of the two-type model's sampler.")

    doc.h(2, "4. Posterior predictive checks (two-type model)", "ppc")
    doc.p(f"Each user's counts are replicated under {ppc_draws} posterior draws on the same design (users, pairs, "
          "positions). Dispersion index: mean over users of (k - n p)^2 / (n p (1 - p)), about 1 when all users share "
          f"one rate. low and high bound the central {100 * interval_prob:g}% of the replicated values; a statistic is 'ok' "
          f"when its observed value lies inside that interval and flagged when outside (the same {100 * interval_prob:g}% "
          "interval is shaded in the figure). ppp = P(T_rep ≥ T_obs).")
    doc.raw(_table(ppc_tab, table_id="ppc-table"))
    ppc_flagged = list(ppc_tab.index[ppc_tab["flagged"]])
    if ppc_flagged:
        doc.raw(f'<div class="verdict warn">The model does not reproduce: {html.escape(", ".join(ppc_flagged))}.</div>')
    doc.figure(_ppc_figure(ppc, ppc_tab), f"Top: observed per-user rates (black) against replicated data sets (blue). Below: "
               f"each checked statistic's replicated values, its {100 * interval_prob:g}% interval (shaded) and the observed value "
               "(black inside, red outside).")

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
    dropped = dropped_users_table(result, votes)
    if len(dropped):
        heavy = dropped.head(2)
        doc.p(f"The {len(dropped):,} dropped users hold {int(dropped['votes'].sum()):,} of the {len(votes):,} votes; the heaviest "
              + (f"two, {heavy.index[0]} and {heavy.index[1]}, cast {int(heavy['votes'].sum()):,} of them."
                 if len(heavy) == 2 else f"one, {heavy.index[0]}, cast {int(heavy['votes'].iloc[0]):,}.")
              + f" Dropped users, most votes first{f' (the first {DROPPED_ROWS:,} shown)' if len(dropped) > DROPPED_ROWS else ''}:")
        doc.raw(_table(dropped.head(DROPPED_ROWS), fmt="{:.3f}", table_id="dropped-users"))
    else:
        doc.p("The rule drops no user.")
    doc.figure(_p_attentive_figure(result, which), f"P(attentive) of each user under the {which} fit, by the decision (kept or "
               "dropped); dashed: the rule's cut.")
    if n_models > 2:
        say("Bradley-Terry leaderboards before and after filtering")
        _, after, board_ba = before_after_leaderboard(votes, result.kept, LEADERBOARD_LEVEL)
        doc.p(f"Bradley-Terry leaderboard before filtering (all {len(votes):,} votes) and after (the {len(result.kept):,} kept votes), "
              f"ties dropped, with {LEADERBOARD_LEVEL:.0%} sandwich intervals (users clustered), in the order of all votes"
              + ("" if after is not None else "; the kept votes cannot rank the models") + ":")
        doc.raw(_table(board_ba.head(30), fmt="{:.3f}", table_id="leaderboard-before-after"))
        doc.figure(_before_after_figure(board_ba, LEADERBOARD_LEVEL), "Leaderboard before (all votes, grey) and after filtering "
                   f"(kept votes, blue), with {LEADERBOARD_LEVEL:.0%} intervals (the first 30 models).")
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
    doc.p("The command that made this report:" if command is not None else
          "The Python call that makes this report (votes: the votes table passed in, or None for the built-in simulation):")
    doc.raw(f'<pre id="command">{html.escape(shown_command)}</pre>')
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
                        kept_users=result.users.index[result.users["keep"].to_numpy(dtype=bool)],
                        failures=list(verdict_box["failures"]), command=shown_command, figures=list(doc.figures))
