"""Vote counts (issue 13): merge equals whole, storage, streaming updates, fits from counts.

The votes here come from a small generator written for these tests (users, models, positions
and winners drawn independently, a ``mu`` column on some tables), not from the package's
simulator, so the counting is tested on shapes the model would never produce (one-vote users,
a model that is only ever shown first, all-tie users).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import comparemode as cm
from comparemode.constants import CODE_A, CODE_TIE
from comparemode.errors import ConfigError, VotesError
from comparemode.models.counts import VoteCounts, count_votes
from comparemode.models.stats import aggregate
from comparemode.counting import encode_any


def random_votes(seed: int, n: int, n_users: int, n_models: int, with_mu: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    models = [f"m{i}" for i in range(n_models)]
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    users = np.array(["007", "7", "TRUE", "NA", "u", "v", "w", "x", "y", "z"][:n_users], dtype=object)
    df = pd.DataFrame(
        {
            "user": users[rng.integers(0, n_users, n)],
            "model_a": np.array(models, dtype=object)[a],
            "model_b": np.array(models, dtype=object)[b],
            "winner": rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n, p=[0.4, 0.35, 0.2, 0.05]),
        }
    )
    if with_mu:
        df["mu"] = rng.choice([0.2, 0.35, 0.5, 0.7, 0.9], n)
    return df


@st.composite
def split_votes(draw):
    seed = draw(st.integers(0, 10_000))
    n = draw(st.integers(1, 120))
    votes = random_votes(seed, n, draw(st.integers(1, 10)), draw(st.integers(2, 4)), draw(st.booleans()))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    bounds = [0, *cuts, n]
    chunks = [votes.iloc[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
    order = draw(st.permutations(range(len(chunks))))
    return votes, chunks, order


@settings(max_examples=60, deadline=None, derandomize=True)
@given(split_votes())
def test_merge_of_chunks_equals_the_whole_in_any_order(case):
    votes, chunks, order = case
    whole = count_votes(votes)
    parts = [count_votes(c) for c in chunks]
    in_order = sum(parts)
    assert in_order.identical(whole)  # merged in the votes' order: the same arrays, the same order
    shuffled = parts[order[0]]
    for i in order[1:]:
        shuffled = shuffled + parts[i]
    assert shuffled == whole  # any order: the same counts for the same ids
    assert shuffled.n_votes == len(votes) and shuffled.n_users == votes["user"].nunique()
    tree = parts[0]
    if len(parts) >= 3:  # a tree reduction, as Dask does it
        tree = (parts[0] + parts[1]) + sum(parts[2:][::-1])
        assert tree == whole


@settings(max_examples=40, deadline=None, derandomize=True)
@given(split_votes())
def test_per_user_statistics_from_counts_equal_those_from_the_votes(case):
    votes, _, _ = case
    counts = count_votes(votes)
    totals = counts.user_totals()
    direct = votes.groupby("user", sort=False).agg(
        n_votes=("winner", "size"),
        n_ties=("winner", lambda w: int(w.isin(["tie", "tie (bothbad)"]).sum())),
        n_first=("winner", lambda w: int((w == "model_a").sum())),
    )
    pd.testing.assert_frame_equal(totals, direct.astype(np.int64), check_names=False)
    # the EM's own per-user statistics (read from the counts) against a direct computation
    # from the rows: n, ties t, first-shown wins f and, with a mu column, the attentive
    # log-likelihood s of the decisive votes
    if "mu" in votes.columns:
        _, enc, users = encode_any(votes, mu="mu")
        stats = aggregate(enc)
        w, mu = votes["winner"], votes["mu"]
        direct = pd.DataFrame(
            {
                "user": votes["user"],
                "t": w.isin(["tie", "tie (bothbad)"]).astype(np.int64),
                "f": (w == "model_a").astype(np.int64),
                "s": np.where(w == "model_a", np.log(mu), np.where(w == "model_b", np.log1p(-mu), 0.0)),
            }
        ).groupby("user", sort=False).agg(n=("t", "size"), t=("t", "sum"), f=("f", "sum"), s=("s", "sum"))
        assert list(users) == list(direct.index)
        for name in ("n", "t", "f"):
            np.testing.assert_array_equal(getattr(stats, name), direct[name].to_numpy())
        np.testing.assert_allclose(stats.s, direct["s"].to_numpy(), rtol=1e-13, atol=1e-13)


def test_counts_keep_ids_and_their_types():
    ints = pd.DataFrame({"user": [7, 7, 12], "model_a": ["x", "y", "x"], "model_b": ["y", "x", "y"], "winner": ["tie", "model_a", "model_b"]})
    c = count_votes(ints)
    assert list(c.users) == [7, 12] and all(isinstance(u, (int, np.integer)) for u in c.users)
    text = ints.assign(user=["007", "007", "7"])
    assert list(count_votes(text).users) == ["007", "7"]
    assert count_votes(text) != count_votes(ints)


def test_save_and_load_give_back_the_same_table(tmp_path):
    for with_mu in (False, True):
        c = count_votes(random_votes(3, 500, 10, 4, with_mu))
        path = c.save(tmp_path / f"counts-{with_mu}.parquet")
        back = VoteCounts.load(path)
        assert back.identical(c) and back == c
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(VotesError, match="not vote counts"):
        VoteCounts.load(tmp_path / "other.parquet")


def test_merge_refuses_what_does_not_add_up():
    plain = count_votes(random_votes(1, 50, 5, 2, False))
    with_mu = count_votes(random_votes(1, 50, 5, 2, True))
    with pytest.raises(ConfigError, match="mu per vote"):
        plain + with_mu
    with pytest.raises(ConfigError, match="VoteCounts"):
        plain.merge(pd.DataFrame())


def test_to_votes_stands_for_the_same_votes():
    votes = random_votes(5, 300, 8, 3, True)
    c = count_votes(votes)
    back = c.to_votes()
    assert len(back) == len(votes) and back.attrs["comparemode"]["from_counts"]
    assert count_votes(back) == c
    assert (back["winner"].isin(["model_a", "model_b", "tie"])).all()  # both kinds of tie are 'tie'
    assert int((c.outcome == CODE_TIE).sum()) > 0 and int((c.outcome == CODE_A).sum()) > 0


# --------------------------------------------------------------------------- streaming


def _daily(votes: pd.DataFrame, days: int) -> list[pd.DataFrame]:
    return [votes.iloc[idx] for idx in np.array_split(np.arange(len(votes)), days)]


def test_thirty_daily_updates_equal_all_votes_at_once_and_the_refit_equals_the_full_fit(tmp_path):
    """A platform keeps the counts on disk and adds each day's votes; after 30 days the counts
    are those of all the votes, and the fit from them is the full fit, bit for bit (two models,
    scalar mu), but for the drift check, which needs the votes' order."""
    sim = cm.simulate_votes(n_users=500, votes_per_user={"distribution": "poisson", "mean": 9}, random_seed=21)
    store = tmp_path / "counts.parquet"
    for i, day in enumerate(_daily(sim.votes, 30)):
        today = count_votes(day)
        (today if i == 0 else VoteCounts.load(store) + today).save(store)
    counts = VoteCounts.load(store)
    assert counts.identical(count_votes(sim.votes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = cm.TwoTypeEM(random_seed=4).fit(sim.votes, **sim.reference)
        refit = cm.TwoTypeEM(random_seed=4).fit(counts, **sim.reference)
    pd.testing.assert_series_equal(refit.params_, full.params_, check_exact=True)
    pd.testing.assert_frame_equal(refit.users_, full.users_, check_exact=True)
    assert refit.loglik_ == full.loglik_
    # the same statistics; the intervals differ only through the level (one check fewer to
    # correct for when the drift check cannot run)
    cols = ["observed", "expected", "statistic", "p_value"]
    pd.testing.assert_frame_equal(refit.checks_.drop(index="drift")[cols], full.checks_.drop(index="drift")[cols], check_exact=True)
    assert refit.checks_.loc["mu", "level"] > full.checks_.loc["mu", "level"]
    assert refit.checks_.loc["drift", "status"] == "not run"
    assert "vote counts" in refit.checks_.loc["drift", "message"]


def test_every_fitter_takes_counts():
    sim = cm.simulate_votes(n_users=200, votes_per_user=8, random_seed=5)
    many = cm.simulate_votes(n_users=200, votes_per_user=10, strengths={"a": 1.0, "b": 0.1, "c": -0.6}, random_seed=6)
    c2, cm_ = count_votes(sim.votes), count_votes(many.votes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint_v, joint_c = cm.JointEM(random_seed=0).fit(many.votes), cm.JointEM(random_seed=0).fit(cm_)
        # the votes and their counts go through the same front door: bit for bit
        pd.testing.assert_series_equal(joint_c.strengths_, joint_v.strengths_, check_exact=True)
        pd.testing.assert_frame_equal(joint_c.users_, joint_v.users_, check_exact=True)
        mu_col = sim.votes.assign(mu=np.where(sim.votes["model_a"] == "model_x", 0.7, 0.3))
        row_v, row_c = cm.TwoTypeEM(random_seed=0).fit(mu_col), cm.TwoTypeEM(random_seed=0).fit(count_votes(mu_col))
        pd.testing.assert_frame_equal(row_c.users_, row_v.users_, check_exact=True)
        cq_v = cm.ContinuousQuality(n_starts=1).fit(sim.votes, **sim.reference)
        cq_c = cm.ContinuousQuality(n_starts=1).fit(c2, **sim.reference)
        pd.testing.assert_series_equal(cq_c.params_, cq_v.params_, check_exact=True)
        hom_v = cm.HomogeneousEM().fit(sim.votes, **sim.reference)
        hom_c = cm.HomogeneousEM().fit(c2, **sim.reference)
        pd.testing.assert_series_equal(hom_c.params_, hom_v.params_, check_exact=True)
        bt_v, bt_c = cm.fit_bradley_terry(many.votes), cm.fit_bradley_terry(cm_)
        np.testing.assert_allclose(bt_c.loc[bt_v.index], bt_v, atol=1e-9)
        model = cm.BayesianTwoType().build_model(c2, **sim.reference)
        assert model is not None
    with pytest.raises(ConfigError, match="keep no order"):
        cm.TwoTypeEM().fit(c2, order="time", **sim.reference)
    # weights of counts are one per counts entry (issue 14: the robust leaderboard weights them)
    with pytest.raises(ConfigError, match="per counts entry"):
        cm.fit_bradley_terry(cm_, weights=np.ones(len(many.votes)))
    pd.testing.assert_series_equal(cm.fit_bradley_terry(cm_, weights=np.ones(cm_.count.size)), bt_c)


# --------------------------------------------------------------------------- the command line


def test_count_then_run_from_counts_matches_the_run_on_the_votes(tmp_path):
    """``comparemode count`` day by day into one file, then ``run --counts``: the same
    users.csv, byte for byte, as ``run`` on all the votes."""
    from comparemode.cli import main

    sim = cm.simulate_votes(n_users=250, votes_per_user=8, random_seed=9)
    days = []
    for i, day in enumerate(_daily(sim.votes, 4)):
        days.append(tmp_path / f"day{i}.csv")
        day.to_csv(days[-1], index=False)
    sim.votes.to_csv(tmp_path / "all.csv", index=False)
    store = tmp_path / "counts.parquet"
    assert main(["count", str(days[0]), "--into", str(store), "--quiet"]) == 0
    assert main(["count", *map(str, days[1:]), "--into", str(store), "--quiet"]) == 0
    assert VoteCounts.load(store).identical(count_votes(cm.load_votes(tmp_path / "all.csv")))
    assert main(["run", "--counts", str(store), "--mu", "model_x=0.7", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["run", str(tmp_path / "all.csv"), "--mu", "model_x=0.7", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert (tmp_path / "a" / "users.csv").read_bytes() == (tmp_path / "b" / "users.csv").read_bytes()
    back = cm.read_results(tmp_path / "a")
    assert "kept_votes" not in back and back["summary"]["data_integrity"]["input_rows"] == len(sim.votes)
    assert back["summary"]["checks"][2]["check"] == "drift" and back["summary"]["checks"][2]["status"] == "not run"
    assert main(["count", str(days[0]), "--into", str(store), "--replace", "--quiet"]) == 0
    assert VoteCounts.load(store).n_votes == len(pd.read_csv(days[0]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "v.csv", "--counts", "c.parquet"], "not both"),
        (["count", "v.csv", "--into", "c.csv"], "ending in .parquet"),
        (["run", "--counts", "missing.parquet"], "not found"),
        (["run", "--counts", "v.csv", "--mu", "model_x=0.7"], "not vote counts"),
    ],
)
def test_counts_command_line_errors(tmp_path, capsys, monkeypatch, argv, message):
    from comparemode.cli import main

    monkeypatch.chdir(tmp_path)
    cm.simulate_votes(n_users=20, votes_per_user=4, random_seed=1).votes.to_parquet("v.parquet")
    pd.read_parquet("v.parquet").to_csv("v.csv", index=False)
    if argv[-1] == "model_x=0.7":
        argv = ["run", "--counts", "v.parquet", "--mu", "model_x=0.7"]
    assert main([*argv, "--out", "o"] if argv[0] == "run" else argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_warm_start_refits_from_the_previous_fit():
    """``warm_start=True`` (the streaming refit): each day's fit starts from the previous day's
    parameters; it reaches the cold multi-start fit's maximum in fewer iterations. For the
    joint model the strengths carry over by model name, a model new that day starting at 0."""
    sim = cm.simulate_votes(n_users=800, votes_per_user={"distribution": "poisson", "mean": 10}, random_seed=31)
    days = _daily(sim.votes, 5)
    warm = cm.TwoTypeEM(warm_start=True, checks=False)
    counts = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for day in days:
            counts = count_votes(day) if counts is None else counts + count_votes(day)
            warm.fit(counts, **sim.reference)
        cold = cm.TwoTypeEM(checks=False).fit(counts, **sim.reference)
    assert bool(warm.starts_["warm"].all()) and len(warm.starts_) == 1 and not cold.starts_["warm"].any()
    assert abs(warm.loglik_ - cold.loglik_) <= 1e-6 * abs(cold.loglik_)
    np.testing.assert_allclose(warm.params_.to_numpy(), cold.params_.to_numpy(), rtol=1e-3, atol=1e-3)
    assert warm.n_iter_ < cold.n_iter_ + int(cold.starts_["n_iter_short_run"].drop(index=cold.starts_.index[cold.starts_["chosen"]]).sum())

    strengths = {"a": 1.0, "b": 0.3, "c": -0.4, "d": -0.9}
    many = cm.simulate_votes(n_users=400, votes_per_user=10, strengths=strengths, random_seed=32).votes
    early = many[many["model_a"].isin(["a", "b", "c"]) & many["model_b"].isin(["a", "b", "c"])]
    joint = cm.JointEM(warm_start=True, checks=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint.fit(early)
        assert set(joint.strengths_.index) == {"a", "b", "c"}
        joint.fit(many)  # model d is new: it starts at the mean
        cold_joint = cm.JointEM(checks=False).fit(many)
    assert bool(joint.starts_["warm"].all())
    np.testing.assert_allclose(joint.strengths_.loc[cold_joint.strengths_.index], cold_joint.strengths_, atol=2e-3)


def test_empty_counts_are_the_neutral_element():
    """An empty partition counts as VoteCounts.empty(); merging it changes nothing, not even
    the dtype of integer user ids."""
    ints = random_votes(2, 80, 6, 3, False).assign(user=lambda d: d["user"].map({u: i * 11 for i, u in enumerate(sorted(set(d["user"])))}))
    c = count_votes(ints)
    for merged in (VoteCounts.empty() + c, c + VoteCounts.empty(), sum([VoteCounts.empty(), c, VoteCounts.empty()])):
        assert merged.identical(c) and merged.users.dtype == np.int64


def test_save_refuses_ids_parquet_cannot_hold(tmp_path):
    mixed = pd.DataFrame({"user": [7, "seven"], "model_a": ["x", "y"], "model_b": ["y", "x"], "winner": ["tie", "model_a"]})
    with pytest.raises(ConfigError, match="mix types"):
        count_votes(mixed).save(tmp_path / "c.parquet")
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("n_users, n_contexts", [(50, 4), (40_000, 5_000)])
def test_entries_of_single_votes_equal_the_entries_with_counts_of_one(n_users, n_contexts):
    """count_votes passes no count array (every row one vote): the entries, from one bincount
    (a dense key space) or from the sorted keys' run lengths (a sparse one), equal those of
    explicit counts of one, and the summed counts of weighted entries."""
    from comparemode.models.counts import _entries

    rng = np.random.default_rng(n_users)
    n = 30_000
    user, ctx, out = rng.integers(0, n_users, n), rng.integers(0, n_contexts, n), rng.integers(0, 3, n)
    got = _entries(user, ctx, out, None, n_contexts)
    want = _entries(user, ctx, out, np.ones(n, np.int64), n_contexts)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype
    assert int(got[3].sum()) == n and (got[3] >= 1).all()
    key = (got[0] * n_contexts + got[1]) * 3 + got[2]
    assert (np.diff(key) > 0).all()  # sorted, each entry once


def _arena_votes(seed: int, n: int, n_users: int, n_models: int, kind: str) -> pd.DataFrame:
    """Votes with heavy-tailed users and models shown with unequal frequency, some models only
    ever in one column, written as ``kind``: text, Python objects or Categoricals (with unused
    categories, in another order than the rows'), and integer user ids."""
    rng = np.random.default_rng(seed)
    names = np.array([f"model-{i:04d}" for i in range(n_models)], dtype=object)
    w = rng.pareto(1.2, n_models) + 0.05
    a = rng.choice(n_models, n, p=w / w.sum())
    b = (a + 1 + rng.integers(0, max(n_models - 1, 1), n)) % n_models
    if n_models > 3:
        b[b == 0] = 1 + (a[b == 0] % (n_models - 1))  # model 0 never shown second...
        b[a == b] = (b[a == b] + 1) % n_models
        b[(b == 0) | (a == b)] = 2 if n_models > 2 else 1
    user = np.minimum(rng.zipf(1.6, n), n_users) - 1
    winner = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n, p=[0.4, 0.35, 0.2, 0.05])
    frame = pd.DataFrame({"user": user if kind == "int" else np.array([f"u{u}" for u in user], dtype=object),
                          "model_a": names[a], "model_b": names[b], "winner": winner})
    if kind == "str":
        frame = frame.astype({c: "str" for c in frame.columns if c != "user"} | {"user": "str"})
    elif kind == "category":
        for c in ("model_a", "model_b", "winner"):
            values = sorted(set(frame[c])) + ["never-shown"]
            frame[c] = pd.Categorical(frame[c], categories=values[::-1])
    return frame


@pytest.mark.parametrize("n_models, kind", [(2, "category"), (2, "str"), (7, "object"), (40, "category"), (40, "int"),
                                            (1100, "str")])
def test_the_compiled_count_equals_the_numpy_steps(monkeypatch, n_models, kind):
    """count_votes on large tables codes models, contexts and outcomes and counts the entries in
    one compiled pass: the same users, models, contexts, entries, row codes and dtypes as the
    numpy steps, on tables of every column kind, with two models, many (a dense pair table),
    and more than the pass takes (numpy's path on both sides); with many contexts per user the
    entries' key space is too large to count densely and numpy counts them."""
    from comparemode.models import counts as mc

    n = 30_000
    votes = _arena_votes(n_models + len(kind), n, 25_000 if n_models == 40 else 3_000, n_models, kind)
    monkeypatch.setattr(mc, "FUSED_MIN_VOTES", 1 << 40)
    want = count_votes(votes, keep_rows=True)
    calls = []
    real = mc._fused_kernel

    def spy():
        calls.append(1)
        return real()

    monkeypatch.setattr(mc, "FUSED_MIN_VOTES", 1)
    monkeypatch.setattr(mc, "_fused_kernel", spy)
    got = count_votes(votes, keep_rows=True)
    assert bool(calls) == (n_models <= mc.FUSED_MAX_MODELS)
    pd.testing.assert_index_equal(got.users, want.users)
    pd.testing.assert_index_equal(got.models, want.models)
    pd.testing.assert_frame_equal(got.contexts, want.contexts)
    for g, w in zip((got.user, got.context, got.outcome, got.count, *got.rows), (want.user, want.context, want.outcome, want.count, *want.rows)):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype
    assert got == want
    if n_models == 40:  # 25,000 users, hundreds of contexts: beyond the dense key space
        assert len(want.users) * len(want.contexts) * 3 > 16 * n + (1 << 20)


def test_the_compiled_count_leaves_a_missing_code_to_numpy(monkeypatch):
    """A table counted without validation whose model column has a missing value: the compiled
    pass gives up on the negative code and the numpy steps count the table as before."""
    from comparemode.models import counts as mc

    votes = _arena_votes(3, 5_000, 500, 4, "category")
    votes.loc[17, "model_b"] = np.nan
    monkeypatch.setattr(mc, "FUSED_MIN_VOTES", 1 << 40)
    try:
        want = count_votes(votes, validated=True)
    except Exception as err:  # whatever the numpy steps do with it, the compiled path does too
        want = type(err)
    monkeypatch.setattr(mc, "FUSED_MIN_VOTES", 1)
    if isinstance(want, type):
        with pytest.raises(want):
            count_votes(votes, validated=True)
    else:
        assert count_votes(votes, validated=True) == want
