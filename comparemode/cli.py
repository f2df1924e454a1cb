"""Command line: ``comparemode run | count | report | export``.

``run`` with a votes file fits the user model (the two-type EM; the joint EM on many models
without a reference), filters users and writes to ``--out`` the per-user table, the kept and
the dropped votes (in the input's own columns, with a weight and the decision per vote), the
leaderboard where there is one, and a JSON summary; tables as CSV, Parquet or JSON lines
(``--format``). Without a votes file it runs on votes simulated from the package's own
generative model and prints the true parameters against the recovered ones. ``export`` turns
a run's kept votes into preference pairs for training; ``count`` adds votes to a counts file;
``report`` writes the HTML diagnostic report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import shlex
import signal
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from comparemode._columnar import PART_ROWS, write_parquet, write_parquet_parts, writes_in_parts
from comparemode._output import (
    COMMITTED,
    ResultSet,
    read_results,
    sha256_file,
    signals_held,
)
from comparemode._progress import LOGGER, Progress, StderrHandler
from comparemode._version import __version__
from comparemode.constants import (
    DEFAULT_FDR_ALPHA,
    DEFAULT_MAX_ITER,
    DEFAULT_N_STARTS,
    DEFAULT_THRESHOLD,
    DEFAULT_TOL,
    INTERVAL_PROB,
    JSON_LINES,
    PROGRESS_MIN_VOTES,
)
from comparemode.counting import count_votes
from comparemode.dask_backend import write_one_file
from comparemode.data import is_dask_collection, load_votes, read_table, to_input_layout
from comparemode.errors import ComparemodeError, ConfigError
from comparemode.export import (
    EXPORT_FORMATS,
    LLMFAO_WIDE,
    to_preference_pairs,
    write_preference_pairs,
)
from comparemode.inference.continuous import ContinuousQuality
from comparemode.inference.crossfit import filter_crossfit
from comparemode.inference.em import TwoTypeEM
from comparemode.inference.filter import FilterResult, filter_fdr, filter_votes
from comparemode.inference.joint import JointEM
from comparemode.inference.mcmc import BayesianTwoType
from comparemode.models.counts import VoteCounts
from comparemode.models.simulate import simulate_votes
from comparemode.report import write_report

#: Resamples of the users behind the joint leaderboard's bootstrap intervals (``--boot``).
DEFAULT_BOOT = 100
#: Formats of the tables ``run`` writes (``--format``); ``auto`` is CSV up to
#: :data:`PARQUET_ABOVE` input rows and Parquet above.
TABLE_FORMATS = ("csv", "parquet", "jsonl")
#: Above this many votes ``--format auto`` writes Parquet: a spreadsheet opens at most
#: 1,048,576 rows, so a larger CSV is read by programs anyway, and formatting CSV text is then
#: most of a run's time (Parquet writes the same table about ten times faster and smaller).
PARQUET_ABOVE = 1_000_000
TABLES = ("users", "kept_votes", "dropped_votes", "leaderboard")
OUTPUT_FILES = tuple(f"{t}.{f}" for t in TABLES for f in TABLE_FORMATS) + ("summary.json", "posterior.nc")
EXPORT_FILES = ("pairs.jsonl", "pairs.parquet", "summary.json")
#: Input layouts (``--layout``), named so that a layout given to ``--format`` is told apart.
LAYOUTS = ("auto", "canonical", "arena", "llmfao")


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


def _table_format(text: str) -> str:
    if text in LAYOUTS[1:]:
        raise argparse.ArgumentTypeError(f"{text!r} is a layout of the votes, not an output format: --layout {text}")
    if text not in ("auto",) + TABLE_FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r}: give one of auto, {', '.join(TABLE_FORMATS)}")
    return text


def _add_layout_args(p: argparse.ArgumentParser):
    """The layout of VOTES (shared by run, report and count); returns the group."""
    data = p.add_argument_group("input layout")
    data.add_argument("--layout", default="auto", choices=list(LAYOUTS), help="layout of VOTES (default: detected from its columns)")
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
        help="votes file (CSV, TSV, Parquet, JSON lines, JSON; arena and LLMFAO layouts are detected), or - for "
        "standard input (its format is told from its first bytes). "
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    out.add_argument("--format", default="auto", metavar="FMT", type=_table_format,
                     help="format of the tables: csv, parquet or jsonl; auto (default) writes CSV, and Parquet above "
                     f"{PARQUET_ABOVE:,} votes")
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

    exp = sub.add_parser(
        "export",
        help="write the kept votes as preference pairs for training (prompt, chosen, rejected, weight)",
        description=(
            "Join the kept votes of a run to their texts and write one row per kept decisive vote: prompt, chosen, "
            "rejected, weight (the vote's weight from the run: its user's P(attentive), or the rule's weight), "
            "label_flip_prob = (1 - weight) / 2, tie, user, chosen_model, rejected_model, the key columns and the "
            "vote's row. Decisions come from --results DIR (a comparemode run on the same VOTES) or, without it, "
            "from a run with the default settings. The output loads with datasets.load_dataset('json' or 'parquet')."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    exp.add_argument("votes", metavar="VOTES", help="the votes file the run decided on (- for standard input)")
    _add_layout_args(exp)
    tx = exp.add_argument_group("texts")
    tx.add_argument("--texts", required=True, metavar="FILE",
                    help="responses table (CSV, TSV, Parquet, JSON lines): one row per answer (key columns, --model-col, "
                    "--response-col, --prompt-col), or one row per pair with model_x/result_x and model_y/result_y "
                    "side by side (LLMFAO's pairs-crowd.jsonl; detected)")
    tx.add_argument("--on", action="append", metavar="COL",
                    help="vote column(s) naming the prompt or pair the answers belong to, present in both tables "
                    "(default: id where both have it, else prompt_id); give it again for more columns")
    tx.add_argument("--model-col", default="model", metavar="COL", help="the responses table's model column (one row per answer)")
    tx.add_argument("--response-col", default="response", metavar="COL", help="the responses table's answer text column")
    tx.add_argument("--prompt-col", default="prompt", metavar="COL", help="the prompt text: a column of the responses table or of the votes")
    tx.add_argument("--models", metavar="FILE",
                    help="where the responses table names models by an id: a table of id and name (LLMFAO's models.jsonl)")
    tx.add_argument("--models-cols", default="id,name", metavar="ID,NAME", help="the two columns of --models")
    tx.add_argument("--ties", default="drop", choices=["drop", "keep"], help="kept tie votes left out, or kept with tie=true")
    tx.add_argument("--missing", default="error", choices=["error", "drop"], help="a kept vote without a text: an error, or left out and counted")
    eo = exp.add_argument_group("output")
    eo.add_argument("--results", metavar="DIR", help="the decisions: the --out of a comparemode run on the same VOTES")
    eo.add_argument("--format", default="jsonl", choices=list(EXPORT_FORMATS),
                    help="jsonl: text columns; trl: TRL's conversational messages; parquet: text columns")
    eo.add_argument("--out", default="comparemode-export", metavar="DIR", help="directory for pairs.<format> and summary.json")
    eo.add_argument("--force", action="store_true", help="overwrite an existing export in --out")
    eo.add_argument("--quiet", action="store_true", help="no progress messages")
    return parser


def export(args) -> int:
    """``comparemode export``: the kept votes of a run as preference pairs with their texts."""
    say = Progress(not args.quiet)
    with ResultSet(args.out, kind="dir", names=EXPORT_FILES, force=args.force, option="--out") as target:
        votes = _load_votes_arg(args)
        source = _votes_path(args)
        if args.results is None:
            say("no --results: deciding with comparemode run's default settings")
            fit_dir = Path(tempfile.gettempdir()) / "export-run"
            layout = [f"--layout={args.layout}"] + [f"--{c.replace('_', '-')}-col={getattr(args, c + '_col')}"
                      for c in ("user", "model_a", "model_b", "winner", "prompt_id", "mu") if getattr(args, c + "_col")]
            run(build_parser().parse_args(["run", os.fspath(source), "--out", os.fspath(fit_dir), "--boot", "0", *layout]
                                          + (["--quiet"] if args.quiet else [])))
            results_dir = fit_dir
        else:
            results_dir = Path(args.results)
        back = read_results(results_dir)
        made_from = back.get("summary", {}).get("data_integrity", {}).get("input_sha256")
        if made_from != _input_checksum(source)["input_sha256"]:  # as the run computed it (a file or Parquet files)
            raise ConfigError(f"--results {args.results}: those results were made from another input (checksum "
                              f"{str(made_from)[:12]}...), not from {args.votes}: give the votes the run decided on")
        if "kept_votes" not in back:
            raise ConfigError(f"--results {args.results}: the run wrote no kept votes (a run from --counts): run it on VOTES")
        kept_rows = back["kept_votes"]
        weight_col = next((c for c in kept_rows.columns if c in ("weight", "comparemode_weight")), None)
        if weight_col is None:
            raise ConfigError(f"--results {args.results}: its kept votes have no weight column (written before version "
                              "0.1.0's export): run comparemode run again")
        row_ids = pd.to_numeric(pd.Index(kept_rows.index), errors="raise")
        weights = pd.Series(kept_rows[weight_col].to_numpy(dtype=float), index=row_ids)
        decided = FilterResult(kept=votes.loc[row_ids], dropped=votes.drop(index=row_ids), users=back["users"], weights=weights, summary={})
        say(f"reading the texts {args.texts}")
        texts = read_table(args.texts)
        wide = LLMFAO_WIDE if all(c in texts.columns for pair in LLMFAO_WIDE for c in pair) else None
        names = None
        if args.models is not None:
            cols = args.models_cols.split(",")
            table = read_table(args.models)
            if len(cols) != 2 or not set(cols) <= set(table.columns):
                raise ConfigError(f"--models-cols {args.models_cols!r}: give the id and name columns of {args.models}, "
                                  f"which has {list(table.columns)[:12]}")
            names = pd.Series(table[cols[1]].to_numpy(), index=table[cols[0]].to_numpy())
        on = args.on or (["id"] if "id" in texts.columns and "id" in votes.columns else ["prompt_id"])
        pairs = to_preference_pairs(votes, decided, texts, on=on, model=args.model_col, response=args.response_col,
                                    prompt=args.prompt_col, wide=wide, model_names=names, ties=args.ties, missing=args.missing)
        name = f"pairs.{'parquet' if args.format == 'parquet' else 'jsonl'}"
        target.write(name, lambda p: write_preference_pairs(pairs, p, args.format))
        summary = {"comparemode_version": __version__, "votes": os.fspath(args.votes), "texts": os.fspath(args.texts),
                   "results": os.fspath(args.results) if args.results else "a run with the default settings",
                   "format": args.format, "on": on, "texts_layout": "pairs side by side" if wide else "one row per answer",
                   "columns": list(pairs.columns), **pairs.attrs["comparemode"]}
        target.write_text("summary.json", json.dumps(_clean(summary), indent=2, default=_json_default) + "\n")
        target.commit()
    print(f"export: {len(pairs):,} preference pairs from {summary['votes_kept']:,} kept votes in {Path(args.out) / name} "
          f"({summary['ties_kept_left_out']:,} kept ties left out, {summary['missing_text']:,} without text)")
    return 0


def _stdin_file() -> Path:
    """Standard input copied to a file in the run's private temporary directory, named by
    what its first bytes say it is: Parquet (``PAR1``), JSON (``[``), JSON lines (``{``), TSV
    (a tab and no comma in the first line) or CSV."""
    if sys.stdin is None or sys.stdin.isatty():
        raise ConfigError("VOTES is '-' (standard input) but nothing is piped in: e.g. cat votes.csv | comparemode run -")
    head = b""
    while len(head) < 4096 and (chunk := sys.stdin.buffer.read(4096 - len(head))):
        head += chunk
    if not head.strip():
        raise ConfigError("standard input is empty: there are no votes")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    first_line = text.split(b"\n", 1)[0]
    if head.startswith(b"PAR1"):
        ext = ".parquet"
    elif text.startswith(b"["):
        ext = ".json"
    elif text.startswith(b"{"):
        ext = ".jsonl"
    elif b"\t" in first_line and b"," not in first_line:
        ext = ".tsv"
    else:
        ext = ".csv"
    with tempfile.NamedTemporaryFile(delete=False, dir=tempfile.gettempdir(), prefix="stdin-", suffix=ext) as fh:
        fh.write(head)
        while chunk := sys.stdin.buffer.read(1 << 20):
            fh.write(chunk)
    return Path(fh.name)


def _votes_path(args):
    """Where VOTES is read from: the path given, or standard input's copy for ``-``."""
    if args.votes != "-":
        return args.votes
    if getattr(args, "stdin_path", None) is None:
        args.stdin_path = _stdin_file()
    return args.stdin_path


def _load_votes_arg(args, categorical: bool = False):
    """The VOTES file, read with the layout options of the command line."""
    return load_votes(
        _votes_path(args),
        format=args.layout,
        user=args.user_col,
        model_a=args.model_a_col,
        model_b=args.model_b_col,
        winner=args.winner_col,
        prompt_id=args.prompt_id_col,
        mu=args.mu_col,
        categorical=categorical,
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
        command=shlex.join(["comparemode", *args.argv]) if getattr(args, "argv", None) is not None else None,
    )
    if res.reference != "given":
        print(f"report: no --mu or --strengths: reference = {res.reference}")
    print(f"report: {res.path} ({res.n_figures} figures, {res.seconds:.0f} s). {res.verdict}")
    if res.failures:
        print(f"report: the numbers are not trustworthy until these pass ({len(res.failures)}): " + "; ".join(map(str, res.failures)))
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
    say = Progress(not args.quiet and not settings["verbose"])  # the EM speaks for itself where verbose
    say(f"fitting the {'joint ' if joint else ''}EM ({args.starts} starts)")
    em = (JointEM if joint else TwoTypeEM)(**settings).fit(votes, order=args.order, **reference)
    say(f"EM {em.stop_reason_} after {em.n_iter_} iterations; misfit checks " + ("passed" if em.checks_["passed"].all() else "FAILED"))
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
    if isinstance(votes, pd.DataFrame) and (*result.sizes(), len(votes)) != (kept, dropped, total):
        # pragma: no cover - a filter that lost or invented votes is a bug, never written out
        raise AssertionError(f"kept + dropped votes {result.sizes()} against {len(votes)} in")
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
        line.update(_input_checksum(args.counts or _votes_path(args)))
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
            votes = data = _load_votes_arg(args, categorical=True)  # models and winners as Categoricals: less memory, faster
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
        # the models of each column apart (no 2 x n object array); the users are counted by the fit
        n_votes, n_models = len(data), len(pd.unique(np.concatenate([pd.unique(data["model_a"]), pd.unique(data["model_b"])])))
        say(f"{n_votes:,} votes")
    else:  # vote counts
        n_votes, n_models = data.n_votes, len(data.models)
        say(f"{n_votes:,} votes from {data.n_users:,} users")
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
        sim_part = _report_simulation(sim, estimates, users, args, print) if sim is not None else None
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
        summary["simulation"] = sim_part
    fmt = args.format if args.format != "auto" else ("parquet" if n_votes > PARQUET_ABOVE else "csv")
    meta = votes.attrs.get("comparemode", {}) if isinstance(votes, pd.DataFrame) else {}
    on_dask = not isinstance(votes, pd.DataFrame) and is_dask_collection(result.side("kept"))  # a pandas side is not selected here
    summary["outputs"] = {
        "format": fmt,
        "layout": {"format": meta.get("format"), "columns": {k: _clean(v) for k, v in meta.get("columns", {}).items()}},
        "votes_tables": "the canonical columns (files read lazily by Dask are split as they are, without weight and "
        "decision columns; users.csv has each user's decision)" if on_dask else
        "the input's columns in its order and its winner values, then weight (the user's P(attentive) "
        "or the rule's weight) and decision (kept/dropped); the row id is the vote's 0-based data row",
    }
    say(f"writing results to {out_dir} ({fmt})")
    write_table(results, "users", result.users, fmt)
    if on_dask:  # the kept rows of the files, split lazily, each written partition by partition in the run's format
        for stem, part in (("kept_votes", result.kept), ("dropped_votes", result.dropped)):
            results.write(f"{stem}.{fmt}", lambda p, part=part: write_one_file(part, p, fmt))
    elif args.counts is None:  # counts hold no vote rows to keep
        for stem, decision in (("kept_votes", "kept"), ("dropped_votes", "dropped")):
            _write_side(results, stem, result, decision, meta, fmt)
    if hasattr(model, "save"):
        results.write("posterior.nc", model.save)
    if hasattr(model, "leaderboard_"):
        write_table(results, "leaderboard", model.leaderboard_, fmt)
    results.write_text("summary.json", json.dumps(_clean(summary), indent=2, default=_json_default) + "\n")
    return result, rule, out_dir, estimates, done


def _free_name(name: str, taken) -> str:
    """``name``, or ``comparemode_<name>`` where the input already has a column of that name."""
    return name if name not in taken else f"comparemode_{name}"


def _votes_out(part: pd.DataFrame, weight: np.ndarray, decision: str, meta: dict) -> pd.DataFrame:
    """Votes as written: the input's layout, a weight and the decision per vote (``weight``:
    one per row of ``part``), a named row id."""
    taken = set(meta.get("input_columns") or part.columns)
    w, d = _free_name("weight", taken), _free_name("decision", taken)
    extra = part.assign(**{w: weight, d: pd.Categorical.from_codes(np.zeros(len(part), dtype=np.int8), categories=pd.Index([decision], dtype='str'))})
    out = to_input_layout(extra, meta, extra=[w, d]) if meta.get("input_columns") else extra
    return out.rename_axis(_free_name("row", taken))


def _write_side(results, stem: str, result, decision: str, meta: dict, fmt: str) -> None:
    """The votes file of one side. Parquet, where the votes' columns are written straight from
    Arrow (:func:`writes_in_parts`), is written a row group at a time, each selected from the
    input when it is written (the whole side is never held: on ten million votes about 100 MB
    less at the peak); otherwise the side is selected whole and freed after its file (the first
    part, built to decide, is then thrown away: only for columns of Python objects)."""
    if fmt == "parquet":
        parts = (_votes_out(p, w, decision, meta).reset_index() for p, w in result.side_parts(decision, PART_ROWS))
        first = next(parts, None)
        if first is not None and writes_in_parts(first):
            head = [first]  # handed over, not held by this frame while the rest is written
            del first
            results.write(f"{stem}.parquet", lambda p: write_parquet_parts(itertools.chain((head.pop(),), parts), p))
            return
        del first, parts
    write_table(results, stem, _votes_out(result.side(decision), result.side_weights(decision), decision, meta), fmt)


def write_table(results, stem: str, frame: pd.DataFrame, fmt: str) -> None:
    """One table of a result set as ``stem.fmt``: the index is its first column, named."""
    name = f"{stem}.{fmt}"
    if fmt == "csv":
        results.write(name, lambda p: frame.to_csv(p))
    elif fmt == "parquet":
        results.write(name, lambda p: write_parquet(frame.reset_index(), p))
    else:
        results.write(name, lambda p: frame.reset_index().to_json(p, **JSON_LINES))


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
        LOGGER.warning(key[1], extra={"category": key[0]})
    return out


#: Libraries whose INFO lines (PyMC's "Initializing NUTS", the sampler's settings, Dask's
#: cluster) would interleave with the command's own output; they still say WARNING and worse.
FOREIGN_LOGGERS = ("pymc", "pytensor", "arviz", "numba", "distributed", "nutpie", "h5py", "matplotlib")


@contextmanager
def _cli_logging():
    """The command line's logging: the package's records as one line each on stderr, foreign
    libraries' INFO lines quieted; everything restored afterwards (main() is called in-process
    by tests and programs)."""
    handler = StderrHandler()
    saved = (LOGGER.level, LOGGER.propagate, {name: logging.getLogger(name).level for name in FOREIGN_LOGGERS})
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
    for name in FOREIGN_LOGGERS:
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(saved[0])
        LOGGER.propagate = saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


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
    args.argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"run": run, "report": report, "count": count, "export": export}
    try:
        with _signal_boundary(), _PrivateTempdir(), _cli_logging(), warnings.catch_warnings(record=True) as caught:
            try:  # warnings outside a run's fit (a report's, a count's) printed once each, in plain words too
                return commands[args.command](args)
            finally:
                _warnings_once(caught)
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
