"""Hostile input catalogue (issue 7, part 2).

One table, ``CASES``: each row names a malformed or extreme input, the public entry point it
is fed to, and the expected outcome: either a result check (the input is odd but valid, and
the result must be right) or a package exception class plus a substring of the message that
names the problem. ``test_hostile_input`` runs every row; a raw ``KeyError``/``ValueError``/
``TypeError`` from pandas, NumPy or PyTensor fails it (``pytest.raises`` catches only
:class:`ComparemodeError`), and so does any ``RuntimeWarning`` (a log of zero or an overflow
on the way to a number is a wrong number in the making).

Adding an entry point is one row of ``ENTRY_POINTS`` (a name and a callable); adding a case is
one row of ``CASES``. ``test_every_entry_point_has_cases`` keeps the two in step.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import comparemode as cm
from comparemode.errors import (
    ComparemodeError,
    ConfigError,
    EmptyVotesError,
    InputNotFoundError,
    InvalidValueError,
    MissingColumnError,
    MuError,
    NotFittedError,
    NotIdentifiableError,
    OutputExistsError,
    StrengthsError,
    VotesError,
)

# --------------------------------------------------------------------------- entry points

TINY_SAMPLER = {"draws": 100, "tune": 100, "chains": 2, "cores": 1, "progressbar": False, "random_seed": 1}


def _em(votes, settings=None, **fit):
    return cm.TwoTypeEM(**{"n_starts": 2, "max_iter": 500, **(settings or {})}).fit(votes, **fit)


def _joint(votes, settings=None, **fit):
    return cm.JointEM(**{"n_starts": 2, "max_iter": 500, **(settings or {})}).fit(votes, **fit)


def _bayes(model_config=None, sampler_config=None, votes=None, **fit):
    model = cm.BayesianTwoType(model_config=model_config, sampler_config={**TINY_SAMPLER, **(sampler_config or {})})
    if votes is not None:
        model.fit(votes, **fit)
    return model


def _cli_run(*argv):
    """``comparemode run`` with the package exception propagated (``main`` prints it and
    returns 1; ``test_cli_prints_package_errors`` checks that part)."""
    from comparemode.cli import build_parser, run

    return run(build_parser().parse_args(["run", *map(str, argv), "--quiet"]))


def _cli_report(*argv):
    """``comparemode report`` with the package exception propagated."""
    from comparemode.cli import build_parser, report

    return report(build_parser().parse_args(["report", *map(str, argv), "--quiet"]))


def _report(votes, out, **kw):
    return cm.write_report(votes, out, **{"quiet": True, "sampler_config": {"draws": 50, "tune": 50, "chains": 1}, **kw})


#: Public entry point name -> callable. One row per entry point.
ENTRY_POINTS: dict[str, Callable[..., Any]] = {
    "load_votes": cm.load_votes,
    "validate_votes": cm.validate_votes,
    "read_arena": cm.read_arena,
    "read_llmfao": cm.read_llmfao,
    "read_strengths": cm.read_strengths,
    "TwoTypeEM": _em,
    "JointEM": _joint,
    "fit_bradley_terry": cm.fit_bradley_terry,
    "BayesianTwoType": _bayes,
    "BayesianTwoType.save": lambda model, path: model.save(path),
    "BayesianTwoType.load": cm.BayesianTwoType.load,
    "filter_votes": cm.filter_votes,
    "filter_fdr": cm.filter_fdr,
    "filter_credible": cm.filter_credible,
    "simulate_votes": cm.simulate_votes,
    "comparemode run": _cli_run,
    "write_report": _report,
    "comparemode report": _cli_report,
    "HomogeneousEM": lambda votes, settings=None, **fit: cm.HomogeneousEM(**(settings or {})).fit(votes, **fit),
    "BayesianAlternative": lambda kind="continuous", model_config=None, sampler_config=None: cm.BayesianAlternative(kind, model_config, sampler_config),
    "BayesianAlternative.sample": lambda model: model.sample(),
    "compare_models": cm.compare_models,
    "compare_em_mcmc": cm.compare_em_mcmc,
    "posterior_predictive_check": cm.posterior_predictive_check,
    "filter_crossfit": cm.filter_crossfit,
    "ContinuousQuality": lambda votes, settings=None, **fit: cm.ContinuousQuality(**{"n_starts": 1, **(settings or {})}).fit(votes, **fit),
    "simulate_scenario": cm.scenarios.simulate_scenario,
}

# --------------------------------------------------------------------------- inputs


@dataclass
class Ctx:
    """What a case's input builder may use: a fresh directory and the session fixtures."""

    tmp: Path
    request: pytest.FixtureRequest

    def fixture(self, name: str):
        return self.request.getfixturevalue(name)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


def votes2(n_users: int = 8, n_votes: int = 10, seed: int = 0, **assign) -> pd.DataFrame:
    """Two models x, y; positions alternate per user; mixed winners (identifiable)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for i in range(n_votes):
            a, b = ("x", "y") if (i + u) % 2 == 0 else ("y", "x")
            rows.append((f"u{u}", a, b, rng.choice(["model_a", "model_b", "model_b", "tie"])))
    df = pd.DataFrame(rows, columns=["user", "model_a", "model_b", "winner"])
    return df.assign(**assign) if assign else df


def votes_many(n_users: int = 10, n_votes: int = 12, seed: int = 0) -> pd.DataFrame:
    strengths = {"m0": 1.0, "m1": 0.3, "m2": -0.4, "m3": -0.9}
    return cm.simulate_votes(n_users=n_users, votes_per_user=n_votes, strengths=strengths, random_seed=seed).votes


MU = {"mu": {"x": 0.7}}


def fitted_users(ctx) -> pd.DataFrame:
    return _em(votes2(), **MU).users_


def csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


def saved_model(ctx) -> Path:
    path = ctx.tmp / "posterior.nc"
    ctx.fixture("bayes_fit").save(path)
    return path


def damaged_attrs(ctx) -> Path:
    import xarray as xr

    tree = xr.open_datatree(saved_model(ctx), engine="h5netcdf").load()
    tree.attrs["data_summary"] = "{broken"
    path = ctx.tmp / "damaged.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    return path


def altered_values(ctx) -> Path:
    """A saved model whose posterior values changed after the save (bit rot, a bad copy):
    the file still parses, only the checksum written at save time can tell."""
    import xarray as xr

    tree = xr.open_datatree(saved_model(ctx), engine="h5netcdf").load()
    pi = tree["posterior"]["pi"].values  # the loaded array itself: changed in place
    pi[0, 0] = 0.5 * (pi[0, 0] + 0.5)
    assert tree["posterior"]["pi"].values[0, 0] == pi[0, 0]
    path = ctx.tmp / "altered.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    return path


def truncated_model(ctx) -> Path:
    data = saved_model(ctx).read_bytes()
    return ctx.write("truncated.nc", data[: len(data) // 2])


def other_netcdf(ctx) -> Path:
    import xarray as xr

    path = ctx.tmp / "other.nc"
    xr.DataTree(xr.Dataset({"a": ("x", [1.0, 2.0])})).to_netcdf(path, engine="h5netcdf")
    return path


def existing_results(ctx) -> Path:
    out = ctx.tmp / "out"
    out.mkdir()
    (out / "users.csv").write_text("user,p_attentive\nold,0.5\n")
    return out


# --------------------------------------------------------------------------- result checks


def em_ok(n_users: int, ids=None):
    """A fit with finite parameters, probabilities in [0, 1], one row per user, and an
    EM likelihood that never went down."""

    def check(em):
        assert np.all(np.isfinite(em.params_.dropna().to_numpy()))
        p = em.users_["p_attentive"].to_numpy()
        assert np.all((p >= 0) & (p <= 1)) and np.all(np.isfinite(p))
        assert len(em.users_) == n_users and em.users_.index.is_unique
        assert np.all(np.diff(em.loglik_history_.to_numpy()) >= -1e-9 * (1 + abs(em.loglik_)))
        if ids is not None:
            assert set(em.users_.index) == set(ids)

    return check


def frame_ok(n_rows: int, column: str | None = None, values=None):
    def check(df):
        assert isinstance(df, pd.DataFrame) and len(df) == n_rows
        if column is not None:
            assert list(df[column]) == list(values)

    return check


def strengths_ok(expected: dict):
    def check(s):
        assert s.dtype == np.float64
        assert s.to_dict() == pytest.approx(expected)

    return check


def filter_ok(n_votes: int):
    def check(res):
        assert len(res.kept) + len(res.dropped) == n_votes
        assert res.kept.index.intersection(res.dropped.index).empty

    return check


# --------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Case:
    id: str
    entry: str
    build: Callable[[Ctx], tuple[tuple, dict]]  # ctx -> (args, kwargs) for the entry point
    expect: Any  # a ComparemodeError subclass, or a check function of the result
    match: str = ""  # substring (case-insensitive) the error message must contain


def A(*args, **kwargs):
    """Arguments of a call, built lazily."""
    return args, kwargs


V = votes2  # short name for the table rows below

CASES: list[Case] = [
    # ---- wrong types
    Case("load-list-not-table", "load_votes", lambda c: A([1, 2, 3]), ConfigError, "DataFrame or a file path"),
    Case("load-none", "load_votes", lambda c: A(None), ConfigError, "got NoneType"),
    Case("validate-dict-not-frame", "validate_votes", lambda c: A({"user": [1]}), ConfigError, "DataFrame"),
    Case("em-votes-list", "TwoTypeEM", lambda c: A([1, 2]), ConfigError, "DataFrame"),
    Case("winner-integers", "load_votes", lambda c: A(V(winner=1)), InvalidValueError, "'winner'"),
    Case("user-unhashable-lists", "load_votes", lambda c: A(V().assign(user=[[1]] * 80)), InvalidValueError, "unhashable"),
    Case("mu-column-strings", "load_votes", lambda c: A(V(mu="high")), MuError, "must hold numbers"),
    Case("mu-column-bool", "validate_votes", lambda c: A(V(mu=True)), MuError, "'mu'"),
    Case("mu-scalar-not-number", "TwoTypeEM", lambda c: A(V(), mu={"x": "abc"}), MuError, "'abc'"),
    Case("mu-scalar-numeric-string", "TwoTypeEM", lambda c: A(V(), mu={"x": "0.7"}), em_ok(8)),
    Case("mu-bare-number", "TwoTypeEM", lambda c: A(V(), mu=0.7), MuError, "does not say which model"),
    Case("mu-list", "TwoTypeEM", lambda c: A(V(), mu=[0.7]), MuError, "got list"),
    Case("em-seed-string", "TwoTypeEM", lambda c: A(V(), settings={"random_seed": "a"}, **MU), ConfigError, "random_seed"),
    Case("em-n-starts-float", "TwoTypeEM", lambda c: A(V(), settings={"n_starts": 1.5}, **MU), ConfigError, "n_starts"),
    Case("bt-weights-strings", "fit_bradley_terry", lambda c: A(V(), weights=["a"] * 80), ConfigError, "weights"),
    Case("bt-weights-wrong-length", "fit_bradley_terry", lambda c: A(V(), weights=[1.0, 2.0]), ConfigError, "80 votes"),
    Case("bt-max-iter-string", "fit_bradley_terry", lambda c: A(V(), max_iter="many"), ConfigError, "max_iter"),
    Case("filter-users-list", "filter_votes", lambda c: A(V(), [0.5, 0.5]), ConfigError, "user table"),
    Case("filter-votes-list", "filter_votes", lambda c: A([1], fitted_users(c)), ConfigError, "votes"),
    Case("filter-p-strings", "filter_votes", lambda c: A(V(), fitted_users(c).assign(p_attentive="high")), InvalidValueError, "p_attentive"),
    Case("fdr-alpha-string", "filter_fdr", lambda c: A(V(), fitted_users(c), alpha="0.1"), ConfigError, "alpha"),
    Case("credible-needs-posterior", "filter_credible", lambda c: A(V(), _em(V(), **MU)), ConfigError, "BayesianTwoType"),
    Case("sim-pi-string", "simulate_votes", lambda c: A(pi="half"), ConfigError, "pi must be a number"),
    Case("sim-mu-string", "simulate_votes", lambda c: A(mu="0.7"), ConfigError, "mu must be a number"),
    Case("sim-seed-string", "simulate_votes", lambda c: A(random_seed="seed"), ConfigError, "random_seed"),
    Case("sim-shared-rate-string", "simulate_votes", lambda c: A(careless="shared", careless_first="a"), ConfigError, "careless_first"),
    Case("bayes-config-list", "BayesianTwoType", lambda c: A(model_config=["beta"]), ConfigError, "model_config must be a dict"),
    Case("bayes-unknown-key", "BayesianTwoType", lambda c: A(sampler_config={"draw": 10}), ConfigError, "unknown sampler_config"),
    Case("bayes-seed-string", "BayesianTwoType", lambda c: A(sampler_config={"random_seed": "x"}), ConfigError, "random_seed"),
    Case("bayes-fit-seed-string", "BayesianTwoType", lambda c: A(votes=V(), random_seed="x", **MU), ConfigError, "random_seed"),
    Case("bayes-progressbar-string", "BayesianTwoType", lambda c: A(sampler_config={"progressbar": "no"}), ConfigError, "progressbar"),
    # ---- NaN and infinite values
    Case("user-nan", "load_votes", lambda c: A(V().assign(user=[np.nan] + [f"u{i}" for i in range(79)])), InvalidValueError, "no user id"),
    Case("winner-nan", "load_votes", lambda c: A(V().assign(winner=[np.nan] + ["tie"] * 79)), InvalidValueError, "'winner'"),
    Case("model-none", "load_votes", lambda c: A(V().assign(model_b=[None] + ["y"] * 79)), InvalidValueError, "no model name"),
    Case("mu-column-nan", "load_votes", lambda c: A(V(mu=np.nan)), MuError, "NaN or infinite"),
    Case("mu-column-inf", "TwoTypeEM", lambda c: A(V(mu=np.inf), mu="mu"), MuError, "NaN or infinite"),
    Case("mu-column-zero", "load_votes", lambda c: A(V(mu=0.0)), MuError, "strictly between 0 and 1"),
    Case("mu-scalar-nan", "TwoTypeEM", lambda c: A(V(), mu={"x": math.nan}), MuError, "strictly between 0 and 1"),
    Case("mu-scalar-inf", "TwoTypeEM", lambda c: A(V(), mu={"x": math.inf}), MuError, "inf"),
    Case("strengths-nan", "read_strengths", lambda c: A({"x": math.nan, "y": 0.0}), StrengthsError, "finite numbers"),
    Case("strengths-inf", "TwoTypeEM", lambda c: A(V(), strengths={"x": math.inf, "y": 0.0}), StrengthsError, "finite numbers"),
    Case("strengths-saturated-two-models", "TwoTypeEM", lambda c: A(V(), strengths={"x": 1e6, "y": 0.0}), StrengthsError, "rounds to exactly 0 or 1"),
    Case(
        "strengths-saturated-many-models", "TwoTypeEM",
        lambda c: A(votes_many(), strengths={"m0": 800.0, "m1": 0.0, "m2": 0.0, "m3": 0.0}), StrengthsError, "'m0'",
    ),
    Case("filter-p-nan", "filter_votes", lambda c: A(V(), fitted_users(c).assign(p_attentive=np.nan)), InvalidValueError, "missing or not a number"),
    Case("filter-p-inf", "filter_fdr", lambda c: A(V(), fitted_users(c).assign(p_attentive=np.inf)), InvalidValueError, "[0, 1]"),
    Case("filter-p-above-one", "filter_votes", lambda c: A(V(), fitted_users(c).assign(p_attentive=2.0)), InvalidValueError, "[0, 1]"),
    Case("filter-threshold-nan", "filter_votes", lambda c: A(V(), fitted_users(c), threshold=math.nan), ConfigError, "threshold"),
    Case("bt-weights-nan", "fit_bradley_terry", lambda c: A(V(), weights=[math.nan] * 80), ConfigError, "finite"),
    Case("joint-prior-nan", "JointEM", lambda c: A(votes_many(), settings={"prior_games": math.nan}), ConfigError, "prior_games"),
    Case("em-tol-nan", "TwoTypeEM", lambda c: A(V(), settings={"tol": math.nan}, **MU), ConfigError, "tol"),
    Case("sim-pi-nan", "simulate_votes", lambda c: A(pi=math.nan), ConfigError, "pi must lie in [0, 1]"),
    Case("sim-strengths-nan", "simulate_votes", lambda c: A(strengths={"a": math.nan, "b": 1.0}), ConfigError, "finite"),
    Case("bayes-target-accept-nan", "BayesianTwoType", lambda c: A(sampler_config={"target_accept": math.nan}), ConfigError, "target_accept"),
    # ---- duplicate vote ids, users, models, columns
    Case("duplicate-vote-ids-index", "load_votes", lambda c: A(V().set_index(pd.Index([7] * 80, name="vote_id"))), InvalidValueError, "duplicated label"),
    Case("duplicate-vote-ids-validate", "TwoTypeEM", lambda c: A(V().set_index(pd.Index([0, 0] + list(range(2, 80)))), **MU), InvalidValueError, "reset_index"),
    Case("duplicate-column", "load_votes", lambda c: A(pd.concat([V(), V()[["winner"]]], axis=1)), InvalidValueError, "appears 2 times"),
    Case("duplicate-strengths-model", "read_strengths", lambda c: A(pd.Series([1.0, 0.0], index=["x", "x"])), StrengthsError, "twice"),
    Case("filter-user-listed-twice", "filter_votes", lambda c: A(V(), pd.concat([fitted_users(c)] * 2)), InvalidValueError, "more than once"),
    Case("filter-unknown-user", "filter_votes", lambda c: A(V(n_users=9), fitted_users(c)), InvalidValueError, "'u8'"),
    Case("same-model-both-sides", "load_votes", lambda c: A(V().assign(model_b="x")), InvalidValueError, "model_a == model_b"),
    Case("same-model-after-str", "load_votes", lambda c: A(V().assign(model_a=1, model_b="1")), InvalidValueError, "model_a == model_b"),
    Case("sim-models-equal-after-str", "simulate_votes", lambda c: A(models=(1, "1")), ConfigError, "two different names"),
    # ---- strengths tables
    Case("strengths-unknown-extra-model", "TwoTypeEM", lambda c: A(V(), strengths={"x": 0.85, "y": 0.0, "z": 3.0}), em_ok(8)),
    Case("strengths-lack-voted-model", "TwoTypeEM", lambda c: A(V(), strengths={"x": 0.85, "q": 0.0}), StrengthsError, "['y']"),
    Case("strengths-as-strings", "read_strengths", lambda c: A({"x": "high", "y": "low"}), StrengthsError, "'high'"),
    Case("strengths-numeric-strings", "read_strengths", lambda c: A({"x": "1.5", "y": "0"}), strengths_ok({"x": 1.5, "y": 0.0})),
    Case("strengths-csv-strings", "read_strengths", lambda c: A(c.write("s.csv", "model,score\nx,high\ny,low\n")), StrengthsError, "'high'"),
    Case("strengths-true-false", "read_strengths", lambda c: A({"x": True, "y": False}), StrengthsError, "True/False"),
    Case("strengths-two-score-columns", "read_strengths", lambda c: A(pd.DataFrame({"model": ["x", "y"], "a": [1, 2], "b": [3, 4]})), StrengthsError, "exactly one score column"),
    Case("strengths-parquet-file", "read_strengths", lambda c: A(c.write("s.parquet", b"PAR1")), StrengthsError, "'.parquet'"),
    Case("strengths-file-missing", "read_strengths", lambda c: A(c.tmp / "nope.csv"), StrengthsError, "does not exist"),
    Case("strengths-bad-json", "read_strengths", lambda c: A(c.write("s.json", "[1, 2")), StrengthsError, "could not read"),
    Case("strengths-bad-scale", "read_strengths", lambda c: A({"x": 1.0, "y": 0.0}, scale="logit"), StrengthsError, "'logit'"),
    Case("strengths-equal", "TwoTypeEM", lambda c: A(V(), strengths={"x": 1.0, "y": 1.0}), NotIdentifiableError, "equally good"),
    # ---- unicode and very long ids
    Case(
        "unicode-ids", "TwoTypeEM",
        lambda c: A(V().replace({"x": "модель-χ", "y": "模型🙂"}).assign(user=lambda d: "用户·" + d["user"] + "\u200b"), mu={"модель-χ": 0.7}),
        em_ok(8, ids=[f"用户·u{i}\u200b" for i in range(8)]),
    ),
    Case("very-long-ids", "TwoTypeEM", lambda c: A(V().assign(user=lambda d: d["user"] * 20_000), **MU), em_ok(8, ids=[f"u{i}" * 20_000 for i in range(8)])),
    Case("unicode-csv-file", "load_votes", lambda c: A(c.write("u.csv", csv_text(V().assign(user="ユーザー")))), frame_ok(80, "user", ["ユーザー"] * 80)),
    Case("latin1-csv-file", "load_votes", lambda c: A(c.write("l.csv", "user,model_a,model_b,winner\nJos\xe9,x,y,model_a\n".encode("latin-1"))), VotesError, "codec can't decode"),
    Case("mixed-type-user-ids", "TwoTypeEM", lambda c: A(V(n_users=4, n_votes=10).assign(user=[1, "1"] * 20), **MU), em_ok(2, ids=[1, "1"])),
    Case("integer-user-ids", "TwoTypeEM", lambda c: A(V().assign(user=lambda d: d["user"].str[1:].astype(int)), **MU), em_ok(8, ids=range(8))),
    # ---- tiny and degenerate data
    Case("single-user", "TwoTypeEM", lambda c: A(V(n_users=1), **MU), em_ok(1)),
    Case("single-vote", "TwoTypeEM", lambda c: A(V().iloc[[1]], **MU), NotIdentifiableError, "shown first on every decisive vote"),
    Case("single-vote-random-clicker", "TwoTypeEM", lambda c: A(V().iloc[[1]], settings={"careless": "random"}, **MU), em_ok(1)),
    Case("single-vote-joint", "JointEM", lambda c: A(V().iloc[[1]]), lambda em: np.isfinite(em.strengths_).all() and em.users_.shape[0] == 1),
    Case("all-ties", "TwoTypeEM", lambda c: A(V(winner="tie"), **MU), NotIdentifiableError, "every vote is a tie"),
    Case("all-ties-joint", "JointEM", lambda c: A(V(winner="tie")), NotIdentifiableError, "tie"),
    Case("all-ties-bt", "fit_bradley_terry", lambda c: A(V(winner="tie")), NotIdentifiableError, "ties"),
    Case("all-ties-dropped", "load_votes", lambda c: A(V(winner="tie"), ties="drop"), EmptyVotesError, "all 80 votes are ties"),
    Case("all-ties-bayes", "BayesianTwoType", lambda c: A(votes=V(winner="tie"), **MU), NotIdentifiableError, "every vote is a tie"),
    Case("everyone-votes-first", "TwoTypeEM", lambda c: A(V(winner="model_a"), **MU), em_ok(8)),
    Case("everyone-votes-the-stronger", "TwoTypeEM", lambda c: A(V().assign(winner=lambda d: np.where(d["model_a"] == "x", "model_a", "model_b")), **MU), em_ok(8)),
    Case("everyone-votes-first-joint", "JointEM", lambda c: A(V(winner="model_a")), lambda em: bool(np.isfinite(em.strengths_).all())),
    Case("stronger-always-first", "TwoTypeEM", lambda c: A(V(model_a="x", model_b="y"), **MU), NotIdentifiableError, "shown first on every decisive vote"),
    Case("mu-one-half", "TwoTypeEM", lambda c: A(V(), mu={"x": 0.5}), NotIdentifiableError, "equally good"),
    Case("never-loses-without-prior", "JointEM", lambda c: A(V(winner="model_a", model_a="x", model_b="y"), settings={"prior_games": 0}), NotIdentifiableError, "never win or never lose"),
    Case("never-loses-bt-without-prior", "fit_bradley_terry", lambda c: A(V(winner="model_a", model_a="x", model_b="y"), prior_games=0), NotIdentifiableError, "['x', 'y']"),
    Case("mu-estimate-one-vote-per-user", "BayesianTwoType", lambda c: A(model_config={"mu": "estimate"}, votes=V(n_users=12, n_votes=1)), NotIdentifiableError, "one decisive vote"),
    Case("empty-table", "TwoTypeEM", lambda c: A(V().iloc[:0], **MU), EmptyVotesError, "no rows"),
    # ---- columns in the wrong case, missing, mapped wrong
    Case("columns-upper-case", "load_votes", lambda c: A(V().rename(columns=str.upper)), MissingColumnError, "did you mean 'USER'"),
    Case("columns-title-case-em", "TwoTypeEM", lambda c: A(V().rename(columns=str.title), **MU), MissingColumnError, "'User'"),
    Case("column-missing", "load_votes", lambda c: A(V().drop(columns="winner")), MissingColumnError, "'winner'"),
    Case("arena-reader-on-llmfao", "read_arena", lambda c: A(c.write("l.csv", "worker,left,right,winner\nw1,x,y,left\n")), MissingColumnError, "'judge'"),
    Case("llmfao-reader-on-canonical", "read_llmfao", lambda c: A(c.write("c.csv", csv_text(V()))), MissingColumnError, "format='canonical'"),
    Case("mu-column-absent", "TwoTypeEM", lambda c: A(V(), mu="mu_score"), MuError, "'mu_score'"),
    Case("no-reference", "TwoTypeEM", lambda c: A(V()), MuError, "no reference probability"),
    # ---- files: stray delimiters, empty and corrupt files
    Case("csv-stray-delimiter", "load_votes", lambda c: A(c.write("v.csv", "user,model_a,model_b,winner\nu1,x,y,model_a\nu2,x,y,model,b\n")), VotesError, "stray delimiter"),
    Case("csv-trailing-delimiter", "load_votes", lambda c: A(c.write("v.csv", "user,model_a,model_b,winner\nu1,x,y,model_a,\nu2,y,x,tie,\n")), VotesError, "stray delimiter"),
    Case("csv-semicolons", "load_votes", lambda c: A(c.write("v.csv", "user;model_a;model_b;winner\nu1;x;y;model_a\n")), VotesError, "';'"),
    Case("csv-unclosed-quote", "load_votes", lambda c: A(c.write("v.csv", 'user,model_a,model_b,winner\n"u1,x,y,model_a\n')), VotesError, "EOF inside string"),
    Case("csv-binary-garbage", "load_votes", lambda c: A(c.write("v.csv", b"\xff\xfe\x00garbage\x00")), VotesError, "cannot read"),
    Case("csv-empty-file", "load_votes", lambda c: A(c.write("v.csv", "")), EmptyVotesError, "is empty"),
    Case("csv-header-only", "load_votes", lambda c: A(c.write("v.csv", "user,model_a,model_b,winner\n")), EmptyVotesError, "no rows"),
    Case("parquet-empty", "load_votes", lambda c: A(_parquet(c, V().iloc[:0])), EmptyVotesError, "no rows"),
    Case("parquet-zero-bytes", "load_votes", lambda c: A(c.write("v.parquet", b"")), EmptyVotesError, "is empty"),
    Case("parquet-corrupt", "load_votes", lambda c: A(c.write("v.parquet", b"PAR1 not really parquet")), VotesError, "parquet"),
    Case("json-corrupt", "load_votes", lambda c: A(c.write("v.json", "{not json")), VotesError, "cannot read"),
    Case("jsonl-nested-user", "load_votes", lambda c: A(c.write("v.jsonl", '{"user": {"a": 1}, "model_a": "x", "model_b": "y", "winner": "model_a"}\n')), InvalidValueError, "unhashable"),
    Case("unknown-extension", "load_votes", lambda c: A(c.write("v.xlsx", b"PK")), ConfigError, "unknown file extension"),
    Case("file-missing", "load_votes", lambda c: A(c.tmp / "missing.csv"), InputNotFoundError, "missing.csv"),
    Case("path-is-directory", "load_votes", lambda c: A(_mkdir(c, "dir.csv")), InputNotFoundError, "holds no Parquet files"),  # a directory is read as a Parquet dataset
    Case("saved-model-truncated", "BayesianTwoType.load", lambda c: A(truncated_model(c)), ConfigError, "damaged"),
    Case("saved-model-altered-values", "BayesianTwoType.load", lambda c: A(altered_values(c)), ConfigError, "checksum"),
    Case("saved-model-damaged-attrs", "BayesianTwoType.load", lambda c: A(damaged_attrs(c)), ConfigError, "damaged configs"),
    Case("saved-model-garbage", "BayesianTwoType.load", lambda c: A(c.write("m.nc", b"not a netcdf file")), ConfigError, "not a saved comparemode model"),
    Case("saved-model-other-netcdf", "BayesianTwoType.load", lambda c: A(other_netcdf(c)), ConfigError, "model id"),
    Case("saved-model-missing", "BayesianTwoType.load", lambda c: A(c.tmp / "gone.nc"), ConfigError, "does not exist"),
    Case("saved-model-round-trip", "BayesianTwoType.load", lambda c: A(saved_model(c)), lambda m: m.users_["p_attentive"].between(0, 1).all()),
    Case("save-unfitted", "BayesianTwoType.save", lambda c: A(cm.BayesianTwoType(), c.tmp / "m.nc"), NotFittedError, "not fitted"),
    # ---- the command line
    # ---- the report and model checking
    Case("report-votes-list", "write_report", lambda c: A([1, 2], c.tmp / "r.html"), ConfigError, "DataFrame"),
    Case("report-missing-winner", "write_report", lambda c: A(V().drop(columns="winner"), c.tmp / "r.html", **MU), MissingColumnError, "winner"),
    Case("report-alpha-above-one", "write_report", lambda c: A(V(), c.tmp / "r.html", alpha=1.5, **MU), ConfigError, "alpha"),
    Case("report-unknown-sampler-key", "write_report", lambda c: A(V(), c.tmp / "r.html", sampler_config={"drawz": 5}, **MU), ConfigError, "drawz"),
    Case("report-exists", "write_report", lambda c: A(V(), c.write("r.html", "old"), **MU), OutputExistsError, "force"),
    Case("cli-report-missing-file", "comparemode report", lambda c: A(c.tmp / "nope.csv", "--out", c.tmp / "r.html"), InputNotFoundError, "nope.csv"),
    Case("cli-report-davidson", "comparemode report", lambda c: A("--ties", "davidson", "--out", c.tmp / "r.html"), ConfigError, "davidson"),
    Case("cli-report-exists", "comparemode report", lambda c: A("--out", c.write("r.html", "old")), OutputExistsError, "force"),
    Case("homog-careless-beta", "HomogeneousEM", lambda c: A(V(), settings={"careless": "beta"}, **MU), ConfigError, "careless"),
    Case("homog-ties-davidson", "HomogeneousEM", lambda c: A(V(), settings={"ties": "davidson"}, **MU), ConfigError, "ties"),
    Case("homog-no-mu", "HomogeneousEM", lambda c: A(V()), MuError, "no reference"),
    Case("homog-ok", "HomogeneousEM", lambda c: A(V(), **MU), lambda em: 0 < em.params_["theta"] < 1 and len(em.users_) == 8),
    Case("alt-unknown-kind", "BayesianAlternative", lambda c: A("three-type"), ConfigError, "kind"),
    Case("alt-careless-beta", "BayesianAlternative", lambda c: A("homogeneous", {"careless": "beta"}), ConfigError, "careless"),
    Case("alt-unknown-prior", "BayesianAlternative", lambda c: A("homogeneous", {"priors": {"rho": {}}}), ConfigError, "unknown prior"),
    Case("alt-bad-prior-value", "BayesianAlternative", lambda c: A("homogeneous", {"priors": {"theta": {"alpha": -1}}}), ConfigError, "positive"),
    Case("joint-given-mu", "JointEM", lambda c: A(votes_many(), mu={"m0": 0.7}), ConfigError, "drop mu="),
    Case("joint-unknown-argument", "JointEM", lambda c: A(votes_many(), weights=[1.0]), ConfigError, "weights"),
    Case("em-vs-mcmc-no-mu", "compare_em_mcmc", lambda c: A(V()), MuError, "no reference probability"),
    Case("em-vs-mcmc-bad-sampler-key", "compare_em_mcmc", lambda c: A(V(), sampler_config={"drawz": 1}, **MU), ConfigError, "drawz"),
    Case("alt-sample-before-build", "BayesianAlternative.sample", lambda c: A(cm.BayesianAlternative("homogeneous")), NotFittedError, "build the model first"),
    Case("alt-sampler-config-list", "BayesianAlternative", lambda c: A("homogeneous", None, [1]), ConfigError, "must be a dict"),
    Case("compare-middle-min-bad", "compare_models", lambda c: A({"two-type": c.fixture("bayes_fit")}, middle_min=1.5), ConfigError, "middle_min"),
    Case("compare-one-model", "compare_models", lambda c: A({"two-type": c.fixture("bayes_fit")}), ConfigError, "needs at least"),
    Case("ppc-extreme-out-of-range", "posterior_predictive_check", lambda c: A(c.fixture("bayes_fit"), interval_prob=1.5), ConfigError, "interval_prob"),
    Case("ppc-unfitted", "posterior_predictive_check", lambda c: A(cm.BayesianTwoType()), NotFittedError, "fit"),
    Case("cli-out-is-a-file", "comparemode run", lambda c: A("--sim-users", 20, "--out", c.write("f", "x")), ConfigError, "--out"),
    Case("cli-existing-results", "comparemode run", lambda c: A("--sim-users", 20, "--out", existing_results(c)), OutputExistsError, "--force"),
    Case("cli-stray-delimiter", "comparemode run", lambda c: A(c.write("v.csv", "user,model_a,model_b,winner\nu,x,y,model_a,\n"), "--mu", "x=0.7", "--out", c.tmp / "o"), VotesError, "stray delimiter"),
    Case("cli-mu-unknown-model", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--mu", "z=0.7", "--out", c.tmp / "o"), MuError, "'z'"),
    Case("cli-joint-with-mu", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--method", "joint", "--mu", "x=0.7", "--out", c.tmp / "o"), ConfigError, "drop --mu"),
    Case("cli-threshold-above-one", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--mu", "x=0.7", "--threshold", 2, "--out", c.tmp / "o"), ConfigError, "threshold"),
    Case("cli-sim-pi-out-of-range", "comparemode run", lambda c: A("--sim-pi", 1.5, "--out", c.tmp / "o"), ConfigError, "pi must lie in [0, 1]"),
    # ---- issue 11: mu estimated, misfit checks, cross-fitting, the continuous model, scenarios
    Case("em-mu-estimate-ok", "TwoTypeEM", lambda c: A(V(), mu="estimate"), em_ok(8)),
    Case("em-mu-estimate-named-ok", "TwoTypeEM", lambda c: A(V(), mu={"y": "estimate"}), lambda em: em.reference_["model"] == "y" and 0 < em.params_["mu"] < 1),
    Case("em-mu-estimate-many-models", "TwoTypeEM", lambda c: A(votes_many(), mu="estimate"), MuError, "exactly two models"),
    Case("em-mu-estimate-unknown-model", "TwoTypeEM", lambda c: A(V(), mu={"z": "estimate"}), MuError, "'z'"),
    Case("em-mu-estimate-ambiguous", "TwoTypeEM", lambda c: A(V(estimate=0.6), mu="estimate"), MuError, "ambiguous"),
    Case("em-mu-estimate-one-vote-each", "TwoTypeEM", lambda c: A(V(n_votes=1).assign(winner="model_a"), mu="estimate"), NotIdentifiableError, "one decisive vote"),
    Case("em-order-missing-column", "TwoTypeEM", lambda c: A(V(), order="when", **MU), ConfigError, "order must name a column"),
    Case("em-order-unsortable", "TwoTypeEM", lambda c: A(V(when=["a", 1] * 40), order="when", **MU), ConfigError, "cannot be sorted"),
    Case("em-order-missing-times", "TwoTypeEM", lambda c: A(V(when=[None] + [1.0] * 79), order="when", **MU), ConfigError, "missing on 1 vote"),
    Case("em-order-ok", "TwoTypeEM", lambda c: A(V(when=np.arange(80)[::-1]), order="when", **MU), em_ok(8)),
    Case("em-check-draws-small", "TwoTypeEM", lambda c: A(V(), settings={"check_draws": 3}, **MU), ConfigError, "check_draws"),
    Case("em-checks-not-bool", "TwoTypeEM", lambda c: A(V(), settings={"checks": "on"}, **MU), ConfigError, "checks must be True or False"),
    Case("em-mu-spread-many-models", "TwoTypeEM", lambda c: A(votes_many(), settings={"mu_spread": True}, strengths={"m0": 1.0, "m1": 0.3, "m2": -0.4, "m3": -0.9}), ConfigError, "two models"),
    Case("em-mu-spread-ok", "TwoTypeEM", lambda c: A(V(), settings={"mu_spread": True}, **MU), em_ok(8)),
    Case("joint-order-missing-column", "JointEM", lambda c: A(votes_many(), order="nope"), ConfigError, "order must name a column"),
    Case("crossfit-ok", "filter_crossfit", lambda c: A(V(), _em(V(), **MU)), filter_ok(80)),
    Case("crossfit-folds-ok", "filter_crossfit", lambda c: A(V(), _em(V(), **MU), folds=3, threshold=0.5), filter_ok(80)),
    Case("crossfit-both-rules", "filter_crossfit", lambda c: A(V(), _em(V(), **MU), alpha=0.1, threshold=0.5), ConfigError, "not both"),
    Case("crossfit-one-fold", "filter_crossfit", lambda c: A(V(), _em(V(), **MU), folds=1), ConfigError, "folds"),
    Case("crossfit-unfitted", "filter_crossfit", lambda c: A(V(), cm.TwoTypeEM()), NotFittedError, "fit"),
    Case("crossfit-users-table", "filter_crossfit", lambda c: A(V(), fitted_users(c)), ConfigError, "fitted TwoTypeEM"),
    Case("crossfit-other-votes", "filter_crossfit", lambda c: A(V(seed=1).assign(user=lambda d: "v" + d["user"]), _em(V(), **MU)), InvalidValueError, "user table does not have"),
    Case("continuous-ok", "ContinuousQuality", lambda c: A(V(), **MU), lambda m: m.users_["p_attentive"].between(0, 1).all() and len(m.users_) == 8),
    Case("continuous-strengths-ok", "ContinuousQuality", lambda c: A(votes_many(), strengths={"m0": 1.0, "m1": 0.3, "m2": -0.4, "m3": -0.9}), lambda m: len(m.users_) == 10),
    Case("continuous-careless-bad", "ContinuousQuality", lambda c: A(V(), settings={"careless": "mixed"}, **MU), ConfigError, "careless"),
    Case("continuous-share-bad", "ContinuousQuality", lambda c: A(V(), settings={"attentive_share": 0}, **MU), ConfigError, "attentive_share"),
    Case("continuous-ties-davidson", "ContinuousQuality", lambda c: A(V(), settings={"ties": "davidson"}, **MU), ConfigError, "ties"),
    Case("continuous-no-mu", "ContinuousQuality", lambda c: A(votes_many()), MuError, "no reference"),
    Case("scenario-unknown", "simulate_scenario", lambda c: A("chaos"), ConfigError, "unknown scenario"),
    Case("scenario-one-user", "simulate_scenario", lambda c: A("drift", 1), ConfigError, "n_users"),
    Case("scenario-ok", "simulate_scenario", lambda c: A("heavy_tail", 50, 3), lambda sc: len(sc.users) == 50 and sc.users["n_votes"].sum() == len(sc.votes)),
    Case("cli-estimate-mu-with-mu", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--estimate-mu", "--mu", "x=0.7", "--out", c.tmp / "o"), ConfigError, "drop --mu"),
    Case("cli-mu-spread-mcmc", "comparemode run", lambda c: A("--mu-spread", "--method", "mcmc", "--out", c.tmp / "o"), ConfigError, "--mu-spread needs --method em"),
    Case("cli-crossfit-mcmc", "comparemode run", lambda c: A("--crossfit", "--method", "mcmc", "--out", c.tmp / "o"), ConfigError, "--crossfit needs"),
    Case("cli-order-missing-column", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--mu", "x=0.7", "--order", "when", "--out", c.tmp / "o"), ConfigError, "order must name a column"),
    Case("cli-two-models-no-mu-ok", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--out", c.tmp / "o"), lambda code: code == 0),
    Case("cli-strengths-strings", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--strengths", c.write("s.csv", "model,score\nx,a\ny,b\n"), "--out", c.tmp / "o"), StrengthsError, "finite numbers"),
]


# --------------------------------------------------------------------------- issue 12: nothing lost, merged or mixed
#
# One group of cases per class of the issue; the id's prefix names the class and
# ``test_issue12_classes_have_three_cases_each`` keeps at least three in each.

ISSUE12_CLASSES = ("ids", "cols", "special", "silent", "json")


def ids_csv(*users: str, models=("x", "y")) -> str:
    """A CSV whose user ids are written exactly as given (votes alternate positions)."""
    lines = ["user,model_a,model_b,winner"]
    for k, u in enumerate(users):
        for i in range(6):
            a, b = models if (i + k) % 2 == 0 else models[::-1]
            lines.append(f"{u},{a},{b},{('model_a', 'model_b', 'tie')[(i * 7 + k) % 3]}")
    return "\n".join(lines) + "\n"


def users_are(expected: list):
    def check(df):
        assert sorted(pd.unique(df["user"])) == sorted(expected), list(pd.unique(df["user"]))
        assert all(isinstance(u, str) for u in df["user"])

    return check


def columns_include(*names: str):
    def check(df):
        assert all(n in df.columns for n in names), list(df.columns)

    return check


def _fifo(c: Ctx, name: str) -> Path:
    path = c.tmp / name
    os.mkfifo(path)
    return path


def _zero_device(c: Ctx, name: str) -> Path:
    path = c.tmp / name
    path.symlink_to("/dev/zero")
    return path


def _socket_file(c: Ctx, name: str) -> Path:
    import socket

    path = c.tmp / name
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    c.request.addfinalizer(sock.close)
    return path


def _json_orient(c: Ctx, orient: str, df: pd.DataFrame | None = None) -> Path:
    path = c.tmp / f"v-{orient}.json"
    (V() if df is None else df).to_json(path, orient=orient)
    return path


def _elo_csv(c: Ctx) -> Path:
    return c.write("elo.csv", "model,score\nm0,1250\nm1,1190\nm2,1100\nm3,1010\n")


CASES += [
    # ---- identifiers are text as written: never numbers, booleans or missing markers
    Case("ids-leading-zeros-csv", "load_votes", lambda c: A(c.write("v.csv", ids_csv("7", "07", "007"))), users_are(["7", "07", "007"])),
    Case("ids-booleans-csv", "load_votes", lambda c: A(c.write("v.csv", ids_csv("True", "TRUE", "true"))), users_are(["True", "TRUE", "true"])),
    Case("ids-missing-markers-csv", "load_votes", lambda c: A(c.write("v.csv", ids_csv("NA", "null", "None", "nan", "N/A"))), users_are(["NA", "null", "None", "nan", "N/A"])),
    Case("ids-dates-and-floats-csv", "load_votes", lambda c: A(c.write("v.csv", ids_csv("2026-01-01", "1e3", "1.10", "-0"))), users_are(["2026-01-01", "1e3", "1.10", "-0"])),
    Case("ids-model-1.10-stays", "load_votes", lambda c: A(c.write("v.csv", ids_csv("a", "b", models=("1.10", "1.1")))), lambda df: sorted(pd.unique(df["model_a"])) == ["1.1", "1.10"]),
    Case("ids-cli-mu-model-1.10", "comparemode run", lambda c: A(c.write("v.csv", ids_csv(*[f"u{i}" for i in range(8)], models=("1.10", "2.0"))), "--mu", "1.10=0.7", "--out", c.tmp / "o"), lambda code: code == 0),
    Case("ids-json-numbers-as-written", "load_votes", lambda c: A(c.write("v.jsonl", '{"user": 7, "model_a": 1.10, "model_b": "y", "winner": "tie"}\n{"user": true, "model_a": "y", "model_b": 1.10, "winner": "model_a"}\n')), lambda df: list(df["user"]) == ["7", "true"] and list(df["model_a"]) == ["1.10", "y"]),
    Case("ids-empty-field-is-missing", "load_votes", lambda c: A(c.write("v.csv", "user,model_a,model_b,winner\nNA,x,y,tie\n,x,y,tie\n")), InvalidValueError, "no user id"),
    # ---- ambiguous columns are refused, stored row labels are kept
    Case("cols-two-winner-columns", "load_votes", lambda c: A(c.write("v.csv", "user,model_a,model_b,winner,winner\nu,x,y,model_a,model_b\n")), InvalidValueError, "'winner' at fields 4, 5"),
    Case("cols-two-user-columns", "load_votes", lambda c: A(c.write("v.csv", "user,user,model_a,model_b,winner\nu,v,x,y,tie\n")), InvalidValueError, "more than once"),
    Case("cols-duplicate-passthrough", "comparemode run", lambda c: A(c.write("v.csv", "user,model_a,model_b,winner,note,note\nu,x,y,tie,a,b\n"), "--out", c.tmp / "o"), InvalidValueError, "'note'"),
    Case("cols-parquet-named-index-kept", "load_votes", lambda c: A(_parquet(c, V().set_axis(pd.Index([f"v{i}" for i in range(80)], name="vote_id")))), lambda df: list(df["vote_id"]) == [f"v{i}" for i in range(80)]),
    Case("cols-parquet-unnamed-labels-kept", "load_votes", lambda c: A(_parquet(c, V().set_axis([f"v{i}" for i in range(80)]))), lambda df: list(df["index"])[:2] == ["v0", "v1"]),
    Case("cols-parquet-index-clash", "load_votes", lambda c: A(_parquet(c, V().assign(vote_id=1).set_axis(pd.Index(range(80), name="vote_id")))), InvalidValueError, "'vote_id'"),
    Case("cols-user-in-index", "load_votes", lambda c: A(V(n_votes=1).set_index("user")), MissingColumnError, "is the table's index, not a column: call votes.reset_index()"),
    Case("cols-user-in-index-repeated", "load_votes", lambda c: A(V().set_index("user")), InvalidValueError, "keeps 'user' as column"),
    Case("cols-duplicated-named-index", "validate_votes", lambda c: A(V().set_index(pd.Index(["v"] * 80, name="vote"))), InvalidValueError, "keeps 'vote' as column"),
    # ---- special files are refused before they are opened
    Case("special-fifo-votes", "load_votes", lambda c: A(_fifo(c, "v.csv")), VotesError, "named pipe"),
    Case("special-zero-device", "load_votes", lambda c: A(_zero_device(c, "zero.csv")), VotesError, "character device"),
    Case("special-directory-named-csv", "load_votes", lambda c: A(_mkdir(c, "v.csv")), InputNotFoundError, "holds no Parquet files"),
    Case("special-directory-strengths", "read_strengths", lambda c: A(_mkdir(c, "s.csv")), StrengthsError, "is a directory"),
    Case("special-socket", "load_votes", lambda c: A(_socket_file(c, "v.jsonl")), VotesError, "a socket"),
    Case("special-fifo-strengths", "read_strengths", lambda c: A(_fifo(c, "s.csv")), StrengthsError, "named pipe"),
    Case("special-cli-zero-device", "comparemode run", lambda c: A(_zero_device(c, "zero.parquet"), "--out", c.tmp / "o"), VotesError, "character device"),
    # ---- the command line refuses what would give a silently wrong answer
    Case("silent-elo-as-bt-two-models", "TwoTypeEM", lambda c: A(V(), strengths={"x": 1250.0, "y": 1190.0}), StrengthsError, "look like Elo ratings"),
    Case("silent-elo-as-bt-cli", "comparemode run", lambda c: A(c.write("v.csv", csv_text(votes_many())), "--strengths", _elo_csv(c), "--out", c.tmp / "o"), StrengthsError, "--scale elo"),
    Case("silent-elo-with-scale-ok", "comparemode run", lambda c: A(c.write("v.csv", csv_text(votes_many())), "--strengths", _elo_csv(c), "--scale", "elo", "--out", c.tmp / "o"), lambda code: code == 0),
    Case("silent-mu-twice-different", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--mu", "x=0.7", "--mu", "x=0.8", "--out", c.tmp / "o"), ConfigError, "two values"),
    Case("silent-mu-both-models-contradict", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--mu", "x=0.7", "--mu", "y=0.7", "--out", c.tmp / "o"), ConfigError, "contradict"),
    Case("silent-mu-both-models-agree-ok", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--mu", "x=0.7", "--mu", "y=0.3", "--out", c.tmp / "o"), lambda code: code == 0),
    Case("silent-out-empty", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--mu", "x=0.7", "--out", ""), ConfigError, "--out is empty"),
    Case("silent-report-out-empty", "comparemode report", lambda c: A("--out", ""), ConfigError, "is empty"),
    Case("silent-out-is-a-file", "comparemode run", lambda c: A(c.write("v.csv", csv_text(V())), "--mu", "x=0.7", "--out", c.write("o.txt", "x")), ConfigError, "is a file"),
    Case("silent-sim-absurd-size", "comparemode run", lambda c: A("--sim-users", "1000000000", "--sim-votes", "1000", "--out", c.tmp / "o"), ConfigError, "GiB of memory"),
    Case("silent-simulate-absurd-size", "simulate_votes", lambda c: A(n_users=10**9, votes_per_user=10**4), ConfigError, "GiB of memory"),
    # ---- every orientation pandas writes is read; what cannot be read says why, by line
    Case("json-orient-columns", "load_votes", lambda c: A(_json_orient(c, "columns")), frame_ok(80, "user", V()["user"])),
    Case("json-orient-index", "load_votes", lambda c: A(_json_orient(c, "index")), frame_ok(80, "winner", V()["winner"])),
    Case("json-orient-split", "load_votes", lambda c: A(_json_orient(c, "split")), frame_ok(80, "user", V()["user"])),
    Case("json-orient-table", "load_votes", lambda c: A(_json_orient(c, "table")), frame_ok(80, "model_a", V()["model_a"])),
    Case("json-orient-columns-labels-kept", "load_votes", lambda c: A(_json_orient(c, "columns", V().set_axis([f"v{i}" for i in range(80)]))), lambda df: list(df["index"])[:2] == ["v0", "v1"]),
    Case("json-orient-values-refused", "load_votes", lambda c: A(_json_orient(c, "values")), VotesError, "orient='records'"),
    Case("jsonl-broken-line-number", "load_votes", lambda c: A(c.write("v.jsonl", '{"user": "a", "model_a": "x", "model_b": "y", "winner": "tie"}\n\n{"user": "b", "model_a": "x",, }\n')), VotesError, "line 3 is not valid JSON"),
    Case("jsonl-array-on-a-line", "load_votes", lambda c: A(c.write("v.jsonl", '{"user": "a", "model_a": "x", "model_b": "y", "winner": "tie"}\n["b", "x", "y", "tie"]\n')), VotesError, "line 2 holds a JSON list"),
    Case("json-broken-document", "load_votes", lambda c: A(c.write("v.json", '{"user": {"0": "a"},\n "winner": {"0": "tie"\n')), VotesError, "at line 3"),
]


def _parquet(c: Ctx, df: pd.DataFrame) -> Path:
    path = c.tmp / "v.parquet"
    df.to_parquet(path)
    return path


def test_issue12_classes_have_three_cases_each():
    counts = {k: sum(c.id.startswith(k + "-") or c.id.startswith(k + "l-") for c in CASES) for k in ISSUE12_CLASSES}
    assert all(n >= 3 for n in counts.values()), counts


def _mkdir(c: Ctx, name: str) -> Path:
    path = c.tmp / name
    path.mkdir()
    return path


# --------------------------------------------------------------------------- the tests


def test_catalogue_is_complete():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(CASES) >= 25
    assert {c.entry for c in CASES} <= set(ENTRY_POINTS)
    for c in CASES:
        expected_error = isinstance(c.expect, type)
        assert (not expected_error) or (issubclass(c.expect, ComparemodeError) and c.match), c.id
        assert expected_error or callable(c.expect), c.id


def test_every_entry_point_has_cases():
    counts = {name: sum(c.entry == name for c in CASES) for name in ENTRY_POINTS}
    assert all(n >= 1 for n in counts.values()), {k: v for k, v in counts.items() if not v}


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path, request):
    args, kwargs = case.build(Ctx(tmp_path, request))
    _check_case(case, args, kwargs)


def _check_case(case: Case, args, kwargs) -> None:
    call = ENTRY_POINTS[case.entry]
    if isinstance(case.expect, type):
        # only package errors are caught here: any other exception fails the test with its traceback
        with pytest.raises(ComparemodeError) as info:
            call(*args, **kwargs)
        err = info.value
        assert isinstance(err, case.expect), f"{type(err).__name__}: {err}"
        assert case.match.lower() in str(err).lower(), f"message does not name the problem: {err}"
    else:
        result = call(*args, **kwargs)
        assert case.expect(result) is not False


READERS = ("load_votes", "read_arena", "read_llmfao", "read_strengths")


@pytest.mark.parametrize("case", [c for c in CASES if c.entry in READERS], ids=[c.id for c in CASES if c.entry in READERS])
def test_hostile_input_through_the_pyarrow_csv_reader(case: Case, tmp_path, request, monkeypatch):
    """Every reader case again with every CSV file, however small, offered to pyarrow's CSV
    reader first (``ARROW_CSV_MIN_BYTES = 0``): the same outcome, error class and message."""
    from comparemode import data

    monkeypatch.setattr(data, "ARROW_CSV_MIN_BYTES", 0)
    offered = []
    reader = data._read_csv_arrow
    monkeypatch.setattr(data, "_read_csv_arrow", lambda path, *a, **k: offered.append(path) or reader(path, *a, **k))
    args, kwargs = case.build(Ctx(tmp_path, request))
    _check_case(case, args, kwargs)
    csv_files = [a for a in args if isinstance(a, (str, Path)) and str(a).endswith(".csv") and Path(a).is_file()]
    if csv_files and not isinstance(case.expect, type):  # a CSV file read: pyarrow was offered it
        assert offered, f"{case.id}: the CSV file did not reach the pyarrow reader"


def test_cli_prints_package_errors(tmp_path, capsys):
    """``main`` turns a package error into one line on stderr and exit code 1, no traceback."""
    from comparemode.cli import main

    path = tmp_path / "v.csv"
    path.write_text("user,model_a,model_b,winner\nu,x,y,model_a,\n")
    assert main(["run", str(path), "--mu", "x=0.7", "--out", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("comparemode: error:") and "stray delimiter" in err and "Traceback" not in err


def test_count_of_inputs_for_the_report():
    """The number of catalogue inputs per entry point (printed with ``-s``)."""
    counts = {name: sum(c.entry == name for c in CASES) for name in ENTRY_POINTS}
    print(f"\nhostile catalogue: {len(CASES)} inputs; per entry point: {json.dumps(counts)}")
    assert sum(counts.values()) == len(CASES)
