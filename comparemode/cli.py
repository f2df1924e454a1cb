"""Command line: ``comparemode run [VOTES] [options]``.

With a votes file, fits the two-type user model by EM, filters users and writes the per-user
table, the kept votes and a JSON summary to ``--out``. Without one, runs on votes simulated
from the package's own generative model and prints the true parameters against the
recovered ones and the accuracy of the user classification.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from comparemode._output import COMMITTED, ResultSet, sha256_file, signals_held
from comparemode._progress import Progress
from comparemode._version import __version__
from comparemode.constants import (
    DEFAULT_MAX_ITER,
    DEFAULT_N_STARTS,
    DEFAULT_FDR_ALPHA,
    DEFAULT_THRESHOLD,
    DEFAULT_TOL,
    INTERVAL_PROB,
    PROGRESS_MIN_VOTES,
)
from comparemode.counting import count_votes
from comparemode.data import is_dask_collection, load_votes
from comparemode.errors import ComparemodeError, ConfigError
from comparemode.inference.continuous import ContinuousQuality
from comparemode.inference.crossfit import filter_crossfit
from comparemode.inference.em import TwoTypeEM
from comparemode.inference.filter import filter_fdr, filter_votes
from comparemode.inference.joint import JointEM
from comparemode.inference.mcmc import BayesianTwoType
from comparemode.models.counts import VoteCounts
from comparemode.models.simulate import simulate_votes
from comparemode.report import write_report

#: Resamples of the users behind the joint leaderboard's bootstrap intervals (``--boot``).
DEFAULT_BOOT = 100
OUTPUT_FILES = ("users.csv", "kept_votes.csv", "summary.json", "posterior.nc", "leaderboard.csv")


def _mu_arg(text: str) -> dict:
    model, sep, value = text.rpartition("=")
    if not sep or not model:
        raise argparse.ArgumentTypeError(
            f"--mu takes MODEL=P, the probability that MODEL's answer is better (e.g. model_x=0.7); got {text!r}"
        )
    try:
        p = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mu: {value!r} is not a number") from None
    return {model: p}


def _merge_mu(values) -> dict | None:
    """The --mu flags as one ``{model: p}``; flags that contradict each other are refused
    (argparse would keep the last one silently)."""
    if values is None or isinstance(values, dict):
        return values
    merged: dict = {}
    for item in values:
        ((model, p),) = item.items()
        if model in merged and merged[model] != p:
            raise ConfigError(f"--mu gives model {model!r} two values, {merged[model]:g} and {p:g}: give it once")
        merged[model] = p
    if len(merged) == 1:
        return merged
    if len(merged) == 2:
        (m0, p0), (m1, p1) = merged.items()
        if abs(p0 + p1 - 1.0) <= 1e-9:
            return {m0: p0}
        raise ConfigError(
            f"--mu {m0}={p0:g} and --mu {m1}={p1:g} contradict each other: P({m0} beats {m1}) and P({m1} beats {m0}) "
            f"add up to 1, these to {p0 + p1:g}; give one --mu"
        )
    raise ConfigError(
        f"--mu names {len(merged)} models ({', '.join(merged)}): --mu is for votes between two models; with more, pass "
        "--strengths FILE or use --method joint"
    )


def _add_layout_args(p: argparse.ArgumentParser):
    """The layout of VOTES (shared by run, report and count); returns the group."""
    data = p.add_argument_group("input layout")
    data.add_argument("--format", default="auto", choices=["auto", "canonical", "arena", "llmfao"], help="layout of VOTES")
    for canon in ("user", "model_a", "model_b", "winner", "prompt_id"):
        data.add_argument(
            f"--{canon.replace('_', '-')}-col",
            dest=f"{canon}_col",
            metavar="COL",
            help=f"read the {canon!r} column from COL",
        )
    data.add_argument("--mu-col", metavar="COL", help="read a per-vote mu (P(model_a better)) from column COL")
    return data


def _add_input_args(p: argparse.ArgumentParser) -> None:
    """VOTES, its layout and where mu comes from (shared by run and report)."""
    p.add_argument(
        "votes",
        nargs="?",
        metavar="VOTES",
        help="votes file (CSV, Parquet, JSON lines, JSON; arena and LLMFAO layouts are detected). "
        "Omit to run on simulated data",
    )
    data = _add_layout_args(p)
    data.add_argument(
        "--ties",
        default="model",
        choices=["model", "drop", "davidson"],
        help="'model': ties are data (a tie habit per user, per type); 'drop': the likelihood ignores ties "
        "(the paper's binary labels), tie votes stay with their user; 'davidson' (--method joint only): an "
        "attentive user's ties follow Davidson's tie model of the pair, a careless user's a tie habit",
    )
    ref = p.add_argument_group("reference (where mu comes from)")
    group = ref.add_mutually_exclusive_group()
    group.add_argument(
        "--mu",
        type=_mu_arg,
        action="append",
        metavar="MODEL=P",
        help="two models: P is the probability that MODEL's answer beats the other model's (given twice, the two "
        "must agree)",
    )
    group.add_argument(
        "--strengths",
        metavar="FILE",
        help="CSV or JSON of model strengths (columns model, score): mu = sigmoid(score_a - score_b)",
    )
    ref.add_argument("--scale", default="bt", choices=["bt", "elo"], help="scale of --strengths: Bradley-Terry or Elo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comparemode",
        description=(
            "Quality control for comparison-mode preference votes: infer which users vote attentively "
            "and filter their votes."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run = sub.add_parser(
        "run",
        help="fit the user model, filter users and write the results",
        description=(
            "Fit the two-type (attentive / careless) user model by EM, keep users whose P(attentive) is at "
            "least the threshold, and write users.csv, kept_votes.csv and summary.json to --out. Without "
            "VOTES, runs on simulated votes and prints true against recovered parameters."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_input_args(run)
    run.add_argument(
        "--counts",
        metavar="FILE",
        help="fit from vote counts (written by comparemode count) instead of VOTES; writes users.csv and summary.json "
        "(the counts hold no vote rows, so no kept_votes.csv), and skips the drift check (counts keep no order)",
    )
    model = run.add_argument_group("model and fit")
    model.add_argument(
        "--careless",
        default="beta",
        choices=["beta", "shared", "random"],
        help="careless users' first-position rate: per user from a Beta, one shared rate, or 1/2",
    )
    model.add_argument(
        "--method",
        default=None,
        choices=["em", "mcmc", "joint", "continuous"],
        help="'em': the fast EM point estimate, with misfit checks; 'mcmc': the full posterior (PyMC), per-user "
        "probabilities averaged over the draws; 'joint': many models without a reference, Bradley-Terry strengths and "
        "user types estimated together by EM (also writes leaderboard.csv); 'continuous': users attentive on a share "
        "of their votes (maximum likelihood), a user counting as attentive when the share is at least 1/2. Default: 'joint' "
        "for votes on more than two models with no --mu, --strengths or mu column, 'em' otherwise",
    )
    model.add_argument("--threshold", type=float, default=None, metavar="P",
                       help="keep users with P(attentive) >= P, instead of the default rule (--fdr %(fdr)s)" % {"fdr": DEFAULT_FDR_ALPHA})
    model.add_argument("--uninformative", default="keep", choices=["keep", "drop", "weight"],
                       help="users whose decisive votes carry no evidence either way (mostly ties, or too few decisive votes): "
                       "'keep' them as the rule decides (their reason says 'no evidence'), 'drop' them, or 'weight' their votes by no more "
                       "than their decisive picks support")
    model.add_argument("--boot", type=int, default=DEFAULT_BOOT, metavar="N",
                       help="--method joint: resamples of the users for the leaderboard's bootstrap intervals (0: no intervals)")
    model.add_argument(
        "--fdr",
        type=float,
        metavar="ALPHA",
        help="keep the largest set of users whose expected share of careless users is at most ALPHA (Bayesian "
        f"false-discovery rule; with an EM fit the plug-in version). The default rule, with ALPHA = {DEFAULT_FDR_ALPHA}, "
        "of run and report alike",
    )
    model.add_argument(
        "--estimate-mu",
        action="store_true",
        help="two models: estimate mu with everything else (by the EM; with --method mcmc under a Beta prior) instead of "
        "taking it from --mu. The default for two models when neither --mu nor --strengths nor a mu column is given",
    )
    model.add_argument(
        "--crossfit",
        action="store_true",
        help="decide each vote from its user's other votes (cross-fitting: a vote's own outcome never decides whether it "
        "is kept, so the kept votes do not overstate the reference); keeps the votes by the false-discovery rule over "
        "votes at --fdr (default 0.05). --method em, joint or continuous",
    )
    model.add_argument(
        "--mu-spread",
        action="store_true",
        help="two models: each attentive user has an own mu around mu (users' topics separate the models by different "
        "amounts); --method em",
    )
    model.add_argument(
        "--order",
        metavar="COL",
        help="column that orders each user's votes in time, for the drift check (default: the file's row order)",
    )
    model.add_argument("--starts", type=int, default=DEFAULT_N_STARTS, help="EM starts")
    model.add_argument("--max-iter", type=int, default=DEFAULT_MAX_ITER, help="EM iteration cap")
    model.add_argument("--tol", type=float, default=DEFAULT_TOL, help="EM tolerance (log-likelihood gain per user)")
    model.add_argument("--seed", type=int, default=0, help="random seed (EM starts, sampler and simulation)")
    mc = run.add_argument_group("MCMC (with --method mcmc)")
    mc.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    mc.add_argument("--tune", type=int, default=1000, help="tuning steps per chain")
    mc.add_argument("--chains", type=int, default=4, help="chains")
    mc.add_argument("--sampler", default="pymc", choices=["pymc", "nutpie"], help="NUTS implementation")
    sim = run.add_argument_group("simulation (without VOTES)")
    sim.add_argument("--sim-users", type=int, default=2000, help="simulated users")
    sim.add_argument("--sim-votes", type=int, default=20, help="votes per simulated user")
    sim.add_argument("--sim-pi", type=float, default=0.6, help="true share of attentive users")
    sim.add_argument("--sim-mu", type=float, default=0.7, help="true P(model_x beats model_y)")
    out = run.add_argument_group("output")
    out.add_argument("--out", default="comparemode-output", metavar="DIR", help="directory for the results")
    out.add_argument("--force", action="store_true", help="overwrite existing results in --out")
    out.add_argument("--quiet", action="store_true", help="no progress messages")

    cnt = sub.add_parser(
        "count",
        help="count votes per user, context and outcome into a counts file (adds to it: streaming updates)",
        description=(
            "Count the votes of each VOTES file (per user, per pair of models shown and their order, per outcome) and add "
            "them to the counts in --into, creating it if needed: yesterday's counts plus today's votes, without reading "
            "history again. comparemode run --counts FILE fits from them."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    cnt.add_argument("votes", nargs="+", metavar="VOTES", help="votes files, counted in this order")
    _add_layout_args(cnt)
    cnt.add_argument("--into", required=True, metavar="FILE", help="the counts file (.parquet); added to when it exists")
    cnt.add_argument("--replace", action="store_true", help="start the counts afresh instead of adding to --into")
    cnt.add_argument("--quiet", action="store_true", help="no progress messages")

    rep = sub.add_parser(
        "report",
        help="write the posterior diagnostic report (one self-contained HTML file)",
        description=(
            "Fit the two-type model by EM and MCMC, the homogeneous and continuous-quality models by MCMC; check the "
            "sampler, run posterior predictive checks, compare the models by user-level PSIS-LOO and write one HTML "
            "report with the filtering decision and the settings to reproduce it. Without VOTES, uses the built-in "
            "simulated data. Many models without --mu/--strengths: strengths from the joint EM serve as the reference."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_input_args(rep)
    fit = rep.add_argument_group("models and sampler")
    fit.add_argument("--careless", default="beta", choices=["beta", "shared", "random"], help="two-type model's careless users")
    fit.add_argument("--alpha", type=float, default=DEFAULT_FDR_ALPHA, help="FDR level of the filtering decision (the default rule of run too)")
    fit.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    fit.add_argument("--tune", type=int, default=1000, help="tuning steps per chain")
    fit.add_argument("--chains", type=int, default=4, help="chains")
    fit.add_argument("--ppc-draws", type=int, default=200, help="posterior draws replicated for the predictive checks")
    fit.add_argument("--seed", type=int, default=20261127, help="random seed (simulation, sampler, predictive draws)")
    o = rep.add_argument_group("output")
    o.add_argument("--out", default="comparemode-report.html", metavar="FILE", help="the HTML report")
    o.add_argument("--title", help="report title")
    o.add_argument("--force", action="store_true", help="overwrite an existing report")
    o.add_argument("--quiet", action="store_true", help="no progress messages")
    return parser


def _load_votes_arg(args):
    """The VOTES file, read with the layout options of the command line."""
    return load_votes(
        args.votes,
        format=args.format,
        user=args.user_col,
        model_a=args.model_a_col,
        model_b=args.model_b_col,
        winner=args.winner_col,
        prompt_id=args.prompt_id_col,
        mu=args.mu_col,
    )


def report(args) -> int:
    if args.ties == "davidson":
        raise ConfigError("--ties davidson is not available in comparemode report (its models take the reference as known): use --ties model or --ties drop")
    args.mu = _merge_mu(args.mu)
    votes, source = None, None
    if args.votes is not None:
        votes = _load_votes_arg(args)
        source = str(args.votes)
    res = write_report(
        votes,
        args.out,
        mu=args.mu,
        strengths=args.strengths,
        scale=args.scale,
        careless=args.careless,
        ties=args.ties,
        alpha=args.alpha,
        sampler_config={"draws": args.draws, "tune": args.tune, "chains": args.chains, "random_seed": args.seed},
        ppc_draws=args.ppc_draws,
        random_seed=args.seed,
        title=args.title,
        source=source,
        force=args.force,
        quiet=args.quiet,
    )
    if res.reference != "given":
        print(f"report: no --mu or --strengths: reference = {res.reference}")
    print(f"report: {res.path} ({res.n_figures} figures, {res.seconds:.0f} s). {res.verdict}")
    return 0


def count(args) -> int:
    """``comparemode count``: add the counts of VOTES to --into (one unit: staged, locked)."""
    say = Progress(not args.quiet)
    if not str(args.into).lower().endswith(".parquet"):
        raise ConfigError(f"--into {args.into!r}: vote counts are stored as Parquet; give a path ending in .parquet")
    with ResultSet(args.into, kind="file", force=True, option="--into") as target:
        total = None
        if target.target.exists() and not args.replace:
            total = VoteCounts.load(target.target)
            say(f"{args.into}: {total.n_votes:,} votes from {total.n_users:,} users so far")
        before = 0 if total is None else total.n_votes
        for path in args.votes:
            say(f"counting {path}")
            counted = count_votes(_load_votes_arg(argparse.Namespace(**{**vars(args), "votes": path})))
            total = counted if total is None else total + counted
        target.write(None, total.save)
        target.commit()
    print(f"counts: {total.n_votes:,} votes from {total.n_users:,} users ({total.n_votes - before:,} added) in {args.into}")
    return 0


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (tuple, np.ndarray)):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _simulated(args, say):
    if args.mu is not None or args.strengths is not None or args.mu_col is not None:
        raise ConfigError("--mu, --strengths and --mu-col need a VOTES file; without one the simulation's own mu is used")
    say(f"simulating {args.sim_users:,} users x {args.sim_votes} votes (pi={args.sim_pi}, mu={args.sim_mu}, seed={args.seed})")
    sim = simulate_votes(
        n_users=args.sim_users, votes_per_user=args.sim_votes, pi=args.sim_pi, mu=args.sim_mu, random_seed=args.seed
    )
    return sim


def _report_simulation(sim, estimates: dict, users, args, say_out) -> dict:
    """Print the true parameters against the recovered ones and the classification accuracy."""
    truth = sim.users["attentive"].reindex(users.index).to_numpy()
    oracle = sim.true_p_attentive(ties=args.ties).reindex(users.index).to_numpy()
    acc = float(np.mean((users["p_attentive"].to_numpy() >= _threshold(args)) == truth))
    acc_oracle = float(np.mean((oracle >= _threshold(args)) == truth))
    a, b = sim.params["careless_first"]
    rows = [
        ("pi", sim.params["pi"], "pi"),
        ("careless first-position rate, mean", a / (a + b), "careless_first_mean"),
        ("careless first-position rate, sd", math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))), "careless_first_sd"),
    ]
    if args.estimate_mu:
        rows.insert(1, ("mu", sim.params["mu"], "mu"))
    for kind in ("attentive", "careless"):
        ta, tb = sim.params[f"tie_{kind}"]
        rows.append((f"tie propensity of {kind} users, mean", ta / (ta + tb), f"tie_{kind}_mean"))
    say_out("")
    say_out(f"{'parameter':<40} {'true':>8} {'recovered':>10}" + ("   94% HDI" if args.method == "mcmc" else ""))
    for name, true, key in rows:
        est = estimates.get(key)
        if est is None:
            continue
        line = f"{name:<40} {true:>8.4f} {est[0]:>10.4f}"
        if est[1] is not None:
            line += f"   [{est[1]:.4f}, {est[2]:.4f}]"
        say_out(line)
    say_out("")
    say_out(f"classification accuracy of P(attentive) >= {_threshold(args):g} against the true types:")
    say_out(f"  {'fitted (' + args.method + ', ' + args.careless + ' careless model):':<48} {acc:.4f}")
    say_out(f"  {'true parameters (the best this rule can do):':<48} {acc_oracle:.4f}")
    result = {"accuracy": acc, "accuracy_true_params": acc_oracle, "true_params": sim.params}
    if args.careless != "random" and args.method == "em":
        random_fit = TwoTypeEM(
            careless="random", ties=args.ties, n_starts=args.starts, max_iter=args.max_iter, tol=args.tol, random_seed=args.seed, checks=False
        ).fit(sim.votes, **sim.reference)
        p_r = random_fit.users_["p_attentive"].reindex(users.index).to_numpy()
        acc_r = float(np.mean((p_r >= _threshold(args)) == truth))
        say_out(
            f"  {'careless rates fixed at 1/2 (random clicker):':<48} {acc_r:.4f} "
            f"(this fit recovers pi = {random_fit.params_['pi']:.4f})"
        )
        result.update(accuracy_random_clicker=acc_r, pi_random_clicker=float(random_fit.params_["pi"]))
    return result


def _fit_em(args, votes, reference, sim):
    joint = args.method == "joint"
    if args.ties == "davidson" and not joint:
        raise ConfigError("--ties davidson needs --method joint (Davidson ties depend on estimated model strengths)")
    if joint and reference:
        raise ConfigError("--method joint estimates the model strengths: drop --mu / --strengths / --mu-col")
    settings = {
        "careless": args.careless,
        "ties": args.ties,
        "n_starts": args.starts,
        "max_iter": args.max_iter,
        "tol": args.tol,
        "random_seed": args.seed,
        "verbose": not args.quiet and (len(votes) >= PROGRESS_MIN_VOTES or sim is not None),  # votes or counts: len is votes
    }
    if not joint:
        settings["mu_spread"] = args.mu_spread
    em = (JointEM if joint else TwoTypeEM)(**settings).fit(votes, order=args.order, **reference)
    estimates = {k: (float(v), None, None) for k, v in em.params_.items()}
    if joint:
        estimates.update({f"strength[{m}]": (float(v), None, None) for m, v in em.strengths_.items()})
    part = {
        "settings": em.get_params(),
        "reference": em.reference_,
        "params": em.params_.to_dict(),
        "fit": {
            "method": args.method,
            "loglik": em.loglik_,
            "converged": em.converged_,
            "stop_reason": em.stop_reason_,
            "n_iter": em.n_iter_,
            "n_patterns": em.n_patterns_,
            "ties": em.ties_,
        },
        "checks": em.checks_.reset_index().to_dict(orient="records"),
        "checks_passed": bool(em.checks_["passed"].all()),
    }
    if hasattr(em, "mu_interval_") and em.reference_.get("source") == "estimated":
        part["mu_interval"] = em.mu_interval_.to_dict()
    if not em.alternatives_.empty:
        part["alternatives"] = em.alternatives_.reset_index().to_dict(orient="records")
    if joint:
        if args.boot:
            em.bootstrap_leaderboard(n_boot=args.boot, random_seed=args.seed, verbose=not args.quiet)
        part["fit"]["method_chosen"] = "given (--method joint)" if args.method_given else "automatic: many models and no reference"
        part["leaderboard"] = em.leaderboard_.reset_index().astype(object).where(em.leaderboard_.reset_index().notna(), None).to_dict(orient="records")
        part["leaderboard_intervals"] = {k: em.leaderboard_.attrs.get(k) for k in ("interval", "level", "n_boot", "random_seed")}
    done = f"EM {em.stop_reason_} after {em.n_iter_} iterations"
    return em.users_, estimates, part, done, em


def _fit_mcmc(args, votes, reference, estimate: bool):
    model = BayesianTwoType(
        model_config={"careless": args.careless, "ties": args.ties, "mu": "estimate" if estimate else "known"},
        sampler_config={
            "draws": args.draws,
            "tune": args.tune,
            "chains": args.chains,
            "sampler": args.sampler,
            "random_seed": args.seed,
            "progressbar": not args.quiet,
        },
    )
    model.fit(votes, **({} if estimate else reference))
    table = model.summary(INTERVAL_PROB)
    lo, hi = f"hdi{round(INTERVAL_PROB * 100)}_lb", f"hdi{round(INTERVAL_PROB * 100)}_ub"
    estimates = {name: (float(r["mean"]), float(r[lo]), float(r[hi])) for name, r in table.iterrows()}
    if "careless_first_kappa" in estimates:  # the sd of the careless rates at the posterior mean
        m, kappa = estimates["careless_first_mean"][0], estimates["careless_first_kappa"][0]
        estimates["careless_first_sd"] = (math.sqrt(m * (1 - m) / (kappa + 1)), None, None)
    diag = model.diagnostics()
    failed = [c for c in ("r_hat_ok", "ess_bulk_ok", "ess_tail_ok") if not diag[c].all()]
    if not diag.attrs["divergences_ok"]:
        failed.append("divergences")
    part = {
        "settings": {"model_config": model.model_config, "sampler_config": model.sampler_config},
        "reference": model.reference_,
        "params": {name: {"mean": e[0], "hdi_lower": e[1], "hdi_upper": e[2]} for name, e in estimates.items()},
        "fit": {
            "method": "mcmc",
            "diagnostics": diag.reset_index().to_dict(orient="records"),
            "divergences": diag.attrs["divergences"],
            "diagnostics_failed": failed,
        },
    }
    done = "MCMC diagnostics " + ("all passed" if not failed else "FAILED: " + ", ".join(failed))
    return model.users_, estimates, part, done, model

def _fit_continuous(args, votes, reference):
    if args.ties not in ("model", "drop"):
        raise ConfigError(f"--method continuous takes --ties model or drop, got {args.ties!r}")
    model = ContinuousQuality(careless=args.careless, ties=args.ties, verbose=not args.quiet).fit(votes, **reference)
    estimates = {k: (float(v), None, None) for k, v in model.params_.items()}
    part = {
        "settings": model.get_params(),
        "reference": model.reference_,
        "params": model.params_.to_dict(),
        "fit": {"method": "continuous", "loglik": model.loglik_, "n_params": model.n_params_, "aic": model.aic_},
    }
    return model.users_, estimates, part, f"continuous model: quality mean {model.params_['quality_mean']:.3f}", model


_ALTERNATIVE_FLAGS = {
    "two-type, mu estimated": "leave out --mu (or pass --estimate-mu)",
    "two-type, mu varies by user": "--estimate-mu --mu-spread",
    "continuous quality, mu as fitted": "--method continuous",
}


def _report_filter(result, rule: str, out_dir: Path, estimates: dict, done: str) -> None:
    """The command line's account of the filter: kept counts, whether its promise stands, the
    better-fitting model's decision where it does not, and the favoured model's win rates."""
    s = result.summary
    pi = f"pi = {estimates['pi'][0]:.4f}; " if "pi" in estimates else ""
    print(
        f"kept {s['users_kept']:,} of {s['users_in']:,} users and {s['votes_kept']:,} of {s['votes_in']:,} votes "
        f"({rule}); {pi}{done}; results in {out_dir}/"
    )
    promise = s.get("promise", {})
    if promise.get("status") == "void":
        print(f"promise VOID: '{promise['claim']}' does not hold here: the model does not fit (failed checks: {', '.join(promise.get('failed_checks', []))})")
        alt = s.get("alternative")
        if alt:
            how = _ALTERNATIVE_FLAGS.get(alt["model"], "")
            print(
                f"better-fitting model: {alt['model']}; under it the same rule keeps {alt['users_kept']:,} users and {alt['votes_kept']:,} votes"
                + (f" (to use it: {how})" if how else "")
            )
    elif promise.get("status") in ("kept", "unchecked"):
        print(f"promise: {promise['statement']}")
    win = s.get("favoured_win_rate")
    if win:
        print(
            f"favoured model's decisive win rate: all votes {win['all']:.3f}, kept votes {win['kept']:.3f}, the model's value for "
            f"attentive votes {win['model_attentive']:.3f} (kept minus model {win['kept_minus_model']:+.3f})"
        )


def _threshold(args) -> float:
    """The P(attentive) cut the simulation's accuracy lines use: --threshold, or 1/2."""
    return DEFAULT_THRESHOLD if args.threshold is None else args.threshold


def run(args) -> int:
    args.mu = _merge_mu(args.mu)
    if args.threshold is not None and args.fdr is not None:
        raise ConfigError("give --threshold P or --fdr ALPHA, not both (without either the rule is --fdr %g)" % DEFAULT_FDR_ALPHA)
    args.method_given = args.method is not None
    args.method = args.method or "em"  # 'joint' instead once the votes show many models and no reference
    if isinstance(args.boot, bool) or args.boot < 0 or 0 < args.boot < 20:
        raise ConfigError(f"--boot {args.boot}: give 0 (no intervals) or at least 20 resamples")
    if args.counts is not None and args.votes is not None:
        raise ConfigError("give VOTES or --counts FILE, not both")
    if args.counts is not None and args.mu_col is not None:
        raise ConfigError("--mu-col reads a column of the votes; counts made from votes with a 'mu' column carry it already")
    if args.estimate_mu and (args.mu is not None or args.strengths is not None):
        raise ConfigError("--estimate-mu estimates mu: drop --mu / --strengths")
    if args.estimate_mu and args.method == "joint":
        raise ConfigError("--method joint estimates the model strengths (and with them every mu): drop --estimate-mu")
    if args.mu_spread and args.method != "em":
        raise ConfigError("--mu-spread needs --method em (two models)")
    if args.crossfit and args.method == "mcmc":
        raise ConfigError("--crossfit needs --method em, joint or continuous (it decides each vote under a point estimate)")
    if args.order is not None and args.method not in ("em", "joint"):
        raise ConfigError("--order (the drift check's time order) needs --method em or joint")
    # checked, locked and staged before any work: a run that cannot write fails in a second
    with ResultSet(args.out, kind="dir", names=OUTPUT_FILES, force=args.force, option="--out") as results:
        report = _run(args, results)
        results.commit()
    _report_filter(*report)
    return 0


def _input_checksum(path) -> dict:
    """SHA-256 and size of the votes input: a file, or a directory / glob / list of Parquet
    files (hashed in sorted order, each file's name and bytes)."""
    import glob as _glob
    import hashlib


    if isinstance(path, (list, tuple)):
        files = sorted(str(p) for p in path)
    elif os.path.isfile(path):
        return {"input_sha256": sha256_file(path), "input_bytes": os.path.getsize(path)}
    elif os.path.isdir(path):
        files = sorted(str(p) for p in Path(path).rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".pq"))
    else:
        files = sorted(_glob.glob(str(path)))
    h = hashlib.sha256()
    for f in files:
        h.update(os.path.basename(f).encode() + b"\0" + sha256_file(f).encode() + b"\0")
    return {"input_sha256": h.hexdigest(), "input_bytes": sum(os.path.getsize(f) for f in files), "input_files": len(files)}


def _data_integrity(args, votes, result, sim) -> dict:
    """The line of summary.json that ties the results to their input: rows in, kept and
    dropped (kept plus dropped is the input), distinct users, and the input's checksum."""
    s = result.summary
    kept, total = int(s["votes_kept"]), int(s["votes_in"])
    dropped = total - kept
    if isinstance(result.kept, pd.DataFrame) and (len(result.kept), len(result.dropped), len(votes)) != (kept, dropped, total):
        # pragma: no cover - a filter that lost or invented votes is a bug, never written out
        raise AssertionError(f"kept {len(result.kept)} + dropped {len(result.dropped)} votes against {len(votes)} in")
    meta = getattr(votes, "attrs", {}).get("comparemode", {}) if isinstance(votes, pd.DataFrame) else {}
    rows = int(meta.get("rows_in", total))
    line = {
        "input": "simulated" if sim is not None else os.fspath(args.counts or args.votes),
        "input_rows": rows,
        "kept_rows": kept,
        "dropped_rows": dropped,
        "distinct_users": int(len(result.users)),
        "kept_users": int(result.users["keep"].sum()) if "keep" in result.users.columns else None,
    }
    if sim is not None:
        line.update(input_sha256=None, simulation_seed=args.seed)
    else:
        line.update(_input_checksum(args.counts or args.votes))
    return line


def _run(args, results):
    say = Progress(not args.quiet)
    out_dir = Path(args.out)
    sim = None
    if args.votes is None and args.counts is None:
        sim = _simulated(args, say)
        votes = data = sim.votes
        reference = {} if args.method == "joint" else sim.reference
        if args.estimate_mu:
            reference = {}
    else:
        if args.counts is not None:
            say(f"reading the vote counts {args.counts}")
            data = VoteCounts.load(args.counts)
            votes = data.to_votes()
        else:
            say(f"reading {args.votes}")
            votes = data = _load_votes_arg(args)
            if is_dask_collection(votes):  # Parquet files read lazily: one counting pass on Dask
                if args.crossfit or args.order is not None:
                    raise ConfigError("--crossfit and --order need the votes themselves; a directory or glob of Parquet files is counted instead")
                say("counting the votes partition by partition (Dask)")
                data = count_votes(votes)  # the fit reads the counts; the filter splits the files lazily
        if args.mu is not None:
            reference = {"mu": args.mu}
        elif args.strengths is not None:
            reference = {"strengths": args.strengths, "scale": args.scale}
        else:
            reference = {}
    if isinstance(data, pd.DataFrame):
        n_votes, n_users, n_models = len(data), data["user"].nunique(), len(pd.unique(data[["model_a", "model_b"]].to_numpy().ravel()))
    else:  # vote counts
        n_votes, n_users, n_models = data.n_votes, data.n_users, len(data.models)
    say(f"{n_votes:,} votes from {n_users:,} users")
    has_mu = data.has_mu if isinstance(data, VoteCounts) else "mu" in data.columns
    if not reference and not has_mu and n_models > 2 and args.method != "joint":
        if args.method_given:
            raise ConfigError(
                f"the votes compare {n_models} models and give no reference: --method {args.method} needs --mu MODEL=P "
                "(two models), --strengths FILE (a table of model strengths) or a mu column (--mu-col NAME); or use "
                "--method joint, which estimates the strengths with the user types"
            )
        args.method = "joint"
        say(f"{n_models} models and no --mu, --strengths or mu column: the strengths and the user types are estimated together (--method joint)")
    estimate = args.estimate_mu or (not reference and args.method != "joint" and "mu" not in votes.columns and n_models == 2)
    if estimate and not args.estimate_mu:
        say("no --mu, --strengths or mu column: mu is estimated from the votes (two models; see README 'Where mu comes from')")
    if estimate and args.method in ("em", "continuous"):
        reference = {"mu": "estimate"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.method in ("em", "joint"):
            users, estimates, part, done, model = _fit_em(args, data, reference, sim)
        elif args.method == "continuous":
            users, estimates, part, done, model = _fit_continuous(args, data, reference)
        else:
            users, estimates, part, done, model = _fit_mcmc(args, data, reference, estimate)
        decider = users if args.method == "mcmc" else model  # an estimator: a void promise brings the better fit
        if args.crossfit:
            result = filter_crossfit(votes, model, alpha=args.fdr)
            rule = f"cross-fitted: expected careless share of the kept votes <= {result.summary['alpha']:g}"
        elif args.threshold is not None:
            result = filter_votes(votes, decider, threshold=args.threshold, uninformative=args.uninformative)
            rule = f"P(attentive) >= {args.threshold:g}"
        else:
            alpha = DEFAULT_FDR_ALPHA if args.fdr is None else args.fdr
            result = filter_fdr(votes, decider, alpha=alpha, uninformative=args.uninformative)
            rule = f"expected careless share <= {alpha:g}" + (" (the default rule)" if args.fdr is None else "")
    warned = _warnings_once(caught)
    summary = {
        "comparemode_version": __version__,
        "input": args.counts or args.votes or "simulated",
        "data_integrity": _data_integrity(args, votes, result, sim),
        **part,
        "filter": result.summary,
        "warnings": warned,
    }
    if sim is not None:
        summary["simulation"] = _report_simulation(sim, estimates, users, args, print)
    say(f"writing results to {out_dir}")
    results.write("users.csv", lambda p: result.users.to_csv(p))
    if is_dask_collection(result.kept):  # the kept rows of the files, split lazily and written in one pass
        results.write("kept_votes.csv", lambda p: result.kept.to_csv(p, single_file=True))
    elif args.counts is None:  # counts hold no vote rows to keep
        results.write("kept_votes.csv", lambda p: result.kept.to_csv(p))
    if hasattr(model, "save"):
        results.write("posterior.nc", model.save)
    if hasattr(model, "leaderboard_"):
        results.write("leaderboard.csv", lambda p: model.leaderboard_.to_csv(p))
    results.write_text("summary.json", json.dumps(_clean(summary), indent=2, default=_json_default) + "\n")
    return result, rule, out_dir, estimates, done


def _warnings_once(caught) -> list[dict]:
    """The warnings a run raised, each printed once in plain words (no source lines) and
    returned for summary.json."""
    seen, out = set(), []
    for w in caught:
        key = (w.category.__name__, str(w.message))
        if key in seen:
            continue
        seen.add(key)
        out.append({"category": key[0], "message": key[1]})
        print(f"comparemode: warning ({key[0]}): {key[1]}", file=sys.stderr)
    return out


class _PrivateTempdir:
    """Point ``tempfile`` at a fresh directory for the run and remove it afterwards: PyTensor's
    numba backend writes the source of every compiled function to a temporary file and leaves
    it there, and the command line must write nothing outside ``--out``."""

    def __enter__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="comparemode-")
        self._saved = tempfile.tempdir
        tempfile.tempdir = self._dir.name
        return self

    def __exit__(self, *exc):
        with signals_held():  # a signal now must not leave half of the directory behind
            tempfile.tempdir = self._saved
            self._dir.cleanup()
        return False


class _Terminated(BaseException):
    """SIGTERM, raised where the run is, so that every cleanup (the staging directory, the
    private temporary directory, the lock) runs on the way out. A ``BaseException``, so that
    no ``except Exception`` on the way swallows it."""


@contextmanager
def _signal_boundary():
    """SIGINT raises KeyboardInterrupt and SIGTERM :class:`_Terminated`, once: a second signal
    while the run cleans up is ignored, so the cleanup finishes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit = []

    def on_signal(signum, frame):
        if hit:
            return
        hit.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Terminated(signum)

    saved = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _left_as_it_was(args) -> str:
    out = getattr(args, "out", None)
    if out and COMMITTED and COMMITTED[-1] == Path(os.path.abspath(out)):
        return f"the results had been written to {out} in full before it"
    return f"nothing was written; {out!r} holds what it held before" if out else "nothing was written"


def main(argv=None) -> int:
    """The command line's one error and signal boundary: a package error, a fault of the
    machine (a full disk, no memory), Ctrl-C and SIGTERM each end the run with one line on
    stderr, exit status 1 (130 for Ctrl-C), the previous results untouched and no temporary
    file left behind."""
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"run": run, "report": report, "count": count}
    try:
        with _signal_boundary(), _PrivateTempdir():
            return commands[args.command](args)
    except ComparemodeError as exc:
        print(f"comparemode: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"comparemode: interrupted (Ctrl-C): {_left_as_it_was(args)}", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"comparemode: terminated (SIGTERM): {_left_as_it_was(args)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"comparemode: error: out of memory: the input or the settings need more memory than this machine has; "
              f"{_left_as_it_was(args)}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"comparemode: error: {exc.strerror or exc}{where}; {_left_as_it_was(args)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
