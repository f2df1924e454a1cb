"""The user filter: decisions per user, nothing lost, weights per vote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from comparemode import filter_votes
from comparemode.errors import ConfigError, InvalidValueError, MissingColumnError


def test_kept_plus_dropped_is_the_input(small_sim, small_fit):
    votes = small_sim.votes
    res = small_fit.filter(votes)
    assert len(res.kept) + len(res.dropped) == len(votes)
    assert res.kept.index.intersection(res.dropped.index).empty
    assert res.kept.index.union(res.dropped.index).sort_values().equals(votes.index.sort_values())
    s = res.summary
    assert s["votes_in"] == len(votes) and s["votes_kept"] == len(res.kept) and s["votes_dropped"] == len(res.dropped)
    assert s["users_kept"] + s["users_dropped"] == s["users_in"] == votes["user"].nunique()
    assert s["users_kept"] == res.kept["user"].nunique()


def test_users_are_kept_or_dropped_whole(small_sim, small_fit):
    res = small_fit.filter(small_sim.votes)
    assert set(res.kept["user"]).isdisjoint(set(res.dropped["user"]))
    keep = res.users["keep"]
    assert set(res.kept["user"]) == set(keep.index[keep])


def test_threshold_is_inclusive_and_reasons_say_why(small_sim, small_fit):
    users = small_fit.users_
    tau = float(users["p_attentive"].iloc[0])  # a threshold equal to one user's probability keeps that user
    res = filter_votes(small_sim.votes, users, threshold=tau)
    assert res.users["keep"].iloc[0]
    assert (res.users["keep"] == (users["p_attentive"] >= tau)).all()
    assert res.users["reason"].iloc[0].endswith(f">= {tau:g}")
    dropped = res.users[~res.users["keep"]]
    assert dropped["reason"].str.contains("<").all()


def test_weights_are_the_users_probability(small_sim, small_fit):
    res = small_fit.filter(small_sim.votes)
    expected = small_fit.users_["p_attentive"].reindex(small_sim.votes["user"]).to_numpy()
    np.testing.assert_allclose(res.weights.to_numpy(), expected)
    assert res.weights.index.equals(small_sim.votes.index)


def test_threshold_extremes(small_sim, small_fit):
    everyone = filter_votes(small_sim.votes, small_fit.users_, threshold=0.0)
    assert len(everyone.dropped) == 0
    strict = filter_votes(small_sim.votes, small_fit.users_, threshold=1.0)
    assert len(strict.kept) == int((small_fit.users_["p_attentive"] >= 1.0).mul(small_fit.users_["n_votes"]).sum())


@pytest.mark.parametrize("tau", [-0.1, 1.5, "half", True])
def test_bad_threshold(small_sim, small_fit, tau):
    with pytest.raises(ConfigError, match="threshold"):
        filter_votes(small_sim.votes, small_fit.users_, threshold=tau)


def test_votes_from_unknown_users(small_sim, small_fit):
    votes = pd.concat([small_sim.votes, pd.DataFrame({"user": ["stranger"], "model_a": ["model_x"], "model_b": ["model_y"], "winner": ["tie"]})], ignore_index=True)
    with pytest.raises(InvalidValueError, match="stranger"):
        filter_votes(votes, small_fit.users_)


def test_user_table_without_probability(small_sim, small_fit):
    with pytest.raises(MissingColumnError, match="p_attentive"):
        filter_votes(small_sim.votes, small_fit.users_.drop(columns="p_attentive"))


def test_votes_without_user_column(small_sim, small_fit):
    with pytest.raises(MissingColumnError, match="'user'"):
        filter_votes(small_sim.votes.drop(columns="user"), small_fit.users_)


# -- the Bayesian false-discovery rule ---------------------------------------------------

from comparemode import filter_credible, filter_fdr  # noqa: E402
from comparemode.inference.filter import decide_fdr  # noqa: E402


def _users(p):
    return pd.DataFrame({"p_attentive": p, "n_votes": 1}, index=pd.Index([f"u{i}" for i in range(len(p))], name="user"))


def test_fdr_keeps_the_largest_prefix_within_alpha():
    p = np.array([0.99, 0.95, 0.9, 0.8, 0.6, 0.3, 0.1])
    table = decide_fdr(_users(p), alpha=0.1)
    # running mean of 1 - p: 0.01, 0.03, 0.053, 0.09, 0.152 ... -> keep the top 4
    assert table["keep"].tolist() == [True, True, True, True, False, False, False]
    assert table.attrs["rule"]["expected_careless_share"] == pytest.approx(0.09)
    assert table.attrs["rule"]["expected_careless_share"] <= 0.1


def test_fdr_brute_force_agreement():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.random(rng.integers(1, 40))
        alpha = float(rng.uniform(0, 0.5))
        keep = decide_fdr(_users(p), alpha)["keep"].to_numpy()
        order = np.sort(p)[::-1]
        best = max([k for k in range(len(p) + 1) if k == 0 or np.mean(1 - order[:k]) <= alpha + 1e-12])
        assert keep.sum() == best
        if keep.any() and (~keep).any():
            assert p[keep].min() >= p[~keep].max()


def test_fdr_keeps_ties_together_and_ignores_row_order():
    p = np.array([0.95, 0.85, 0.85, 0.85, 0.2])
    table = decide_fdr(_users(p), alpha=0.1)
    assert table["keep"].tolist() == [True, False, False, False, False]  # all three 0.85 would exceed 0.1
    shuffled = _users(p).iloc[[3, 0, 4, 2, 1]]
    again = decide_fdr(shuffled, alpha=0.1)
    assert again["keep"].reindex(table.index).tolist() == table["keep"].tolist()


def test_fdr_extremes_and_bad_alpha():
    p = np.array([0.7, 0.4])
    assert not decide_fdr(_users(p), 0.0)["keep"].any()
    assert decide_fdr(_users(p), 1.0)["keep"].all()
    with pytest.raises(ConfigError, match="alpha"):
        decide_fdr(_users(p), 1.5)


def test_filter_fdr_accounts_for_every_vote(small_sim, small_fit):
    res = filter_fdr(small_sim.votes, small_fit.users_, alpha=0.1)
    assert len(res.kept) + len(res.dropped) == len(small_sim.votes)
    assert res.summary["rule"] == "bayesian_fdr" and res.summary["alpha"] == 0.1
    kept_users = res.users[res.users["keep"]]
    assert (1 - kept_users["p_attentive"]).mean() <= 0.1 + 1e-12


def test_filter_credible(bayes_sim, bayes_fit):
    res = filter_credible(bayes_sim.votes, bayes_fit, level=0.5, prob=0.9)
    assert len(res.kept) + len(res.dropped) == len(bayes_sim.votes)
    above = bayes_fit.prob_attentive_above(0.5)
    np.testing.assert_array_equal(res.users["keep"].to_numpy(), (above >= 0.9).reindex(res.users.index).to_numpy())
    # stricter evidence keeps a subset
    stricter = filter_credible(bayes_sim.votes, bayes_fit, level=0.5, prob=0.99)
    assert set(stricter.kept["user"]) <= set(res.kept["user"])
    with pytest.raises(ConfigError, match="prob"):
        filter_credible(bayes_sim.votes, bayes_fit, prob=2)
    with pytest.raises(ConfigError, match="BayesianTwoType"):
        filter_credible(bayes_sim.votes, object())

import comparemode as cm  # noqa: E402
from comparemode.scenarios import simulate_tie_habits  # noqa: E402


def test_users_without_evidence_get_the_reason_and_the_policy():
    votes, kind = simulate_tie_habits(400, 20, random_seed=0)  # comparemode.scenarios: not the package's model
    tie_only = pd.DataFrame({"user": ["t"] * 6, "model_a": ["x", "y"] * 3, "model_b": ["y", "x"] * 3, "winner": ["tie"] * 6})
    votes = pd.concat([votes, tie_only], ignore_index=True)
    em = cm.TwoTypeEM(random_seed=0, checks=False).fit(votes, mu={"x": 0.75})
    keep = em.filter_fdr(votes, 0.1)
    table = keep.users
    evidence = (table["llr_decisive_per_vote"].fillna(0) * table["n_decisive"]).to_numpy()
    np.testing.assert_allclose(table["evidence"].to_numpy(), evidence)
    none = table["uninformative"].to_numpy()
    assert (none == (np.abs(evidence) < np.log(3))).all() and none.sum() >= 10
    assert "no evidence (tie-only" in table.loc["t", "reason"]
    assert all("no evidence" in r for r in table["reason"][none]) and not any("no evidence" in r for r in table["reason"][~none])
    tie_only = int((table["n_decisive"] == 0).sum())
    assert keep.summary["users_uninformative"] == int(none.sum()) and keep.summary["users_tie_only"] == tie_only >= 1
    # the tie-heavy random clickers are most of the users without evidence
    assert (kind.reindex(table.index[none]) == "tie_heavy").mean() >= 0.5
    drop = em.filter_fdr(votes, 0.1, uninformative="drop")
    assert not drop.users["keep"][none].any()
    assert (drop.users["keep"][~none] == keep.users["keep"][~none]).all()
    assert len(drop.kept) + len(drop.dropped) == len(votes) and drop.summary["uninformative"] == "drop"
    p_kept = drop.users["p_attentive"][drop.users["keep"]]
    assert drop.summary["expected_careless_share"] == pytest.approx(float((1 - p_kept).mean()))
    weight = em.filter_fdr(votes, 0.1, uninformative="weight")
    assert (weight.users["keep"] == keep.users["keep"]).all()
    w_user = weight.weights.groupby(votes["user"]).first()
    share = float(table["p_attentive"].mean())
    p = table["p_attentive"].to_numpy()
    from_picks = 1 / (1 + np.exp(-(np.log(share / (1 - share)) + evidence)))
    np.testing.assert_allclose(w_user.reindex(table.index[none]).to_numpy(), np.minimum(p, from_picks)[none])
    np.testing.assert_allclose(w_user.reindex(table.index[~none]).to_numpy(), p[~none])
    assert (w_user.reindex(table.index).to_numpy() <= p + 1e-15).all()  # never more than P(attentive)
    assert w_user["t"] == pytest.approx(min(share, table.loc["t", "p_attentive"]))  # tie-only: the prior at most
    with pytest.raises(cm.errors.ConfigError, match="uninformative must be one of"):
        em.filter(votes, uninformative="ignore")
    with pytest.raises(cm.errors.ConfigError, match="needs the columns"):
        cm.filter_votes(votes, table[["p_attentive"]], uninformative="drop")


def test_the_fits_own_user_codes_split_the_votes_as_a_lookup_does():
    """Filtering with the fitted estimator reuses the fit's per-vote user codes (no second
    lookup of every id); the result equals the lookup's, and a table that is not the one fitted
    (a copy, or the same object changed in place) is looked up again."""
    import comparemode as cm

    sim = cm.simulate_votes(n_users=3000, votes_per_user=6, random_seed=11)
    votes = sim.votes
    em = cm.TwoTypeEM(random_seed=0).fit(votes, **sim.reference)
    codes = em.user_codes_of(votes)
    assert codes is not None and len(codes) == len(votes)
    assert (em.users_.index[codes] == votes["user"].to_numpy()).all()
    fast, looked_up = cm.filter_fdr(votes, em, 0.1), cm.filter_fdr(votes, em.users_, 0.1)
    pd.testing.assert_frame_equal(fast.kept, looked_up.kept)
    pd.testing.assert_frame_equal(fast.dropped, looked_up.dropped)
    pd.testing.assert_series_equal(fast.weights, looked_up.weights)
    assert fast.summary == looked_up.summary
    assert em.user_codes_of(votes.copy()) is None
    votes["user"] = votes["user"].to_numpy()[::-1]  # changed in place after the fit
    assert em.user_codes_of(votes) is None


@pytest.mark.parametrize("policy", ["keep", "drop", "weight"])
def test_uninformative_reasons_equal_the_row_by_row_rule(policy):
    """mark_uninformative builds each distinct reason once and takes the column from them:
    every user's text equals the row-by-row rule (the rule's reason, "; ", what, the action),
    the other users' reasons are untouched, a missing reason stays missing unless rewritten
    (and then gets no "; " prefix), and the column is pandas' str."""
    import math

    from comparemode.constants import NO_EVIDENCE_BAYES_FACTOR
    from comparemode.inference.filter import mark_uninformative

    rng = np.random.default_rng(3)
    n = 3000
    n_dec = rng.integers(0, 6, n)
    llr = rng.normal(0.0, 0.6, n)
    keep = rng.random(n) < 0.6
    reasons = np.array([f"rule text {i % 7}" for i in range(n)], dtype=object)
    reasons[::50] = None
    table = pd.DataFrame({"n_decisive": n_dec, "llr_decisive_per_vote": llr, "keep": keep, "p_attentive": rng.random(n),
                          "reason": pd.array(reasons, dtype="str")}, index=pd.Index([f"u{i}" for i in range(n)], name="user"))
    out = mark_uninformative(table, policy)
    assert isinstance(out["reason"].dtype, pd.StringDtype)
    evidence = np.where(n_dec > 0, llr * n_dec, 0.0)
    for i in range(n):
        before = reasons[i]
        if abs(evidence[i]) >= math.log(NO_EVIDENCE_BAYES_FACTOR):
            assert (pd.isna(out["reason"].iloc[i]) and before is None) or out["reason"].iloc[i] == before
            continue
        what = ("no evidence (tie-only: no decisive vote)" if n_dec[i] == 0 else
                f"no evidence (decisive log Bayes factor {evidence[i]:.2f} within +-log {NO_EVIDENCE_BAYES_FACTOR:g})")
        if policy == "drop":
            action = "; dropped (uninformative='drop')"
        elif keep[i]:
            action = {"keep": "; kept by the rule (uninformative='keep')",
                      "weight": "; kept, its votes weighted by what its picks support (uninformative='weight')"}[policy]
        else:
            action = "; dropped by the rule"
        want = (f"{before}; " if before is not None else "") + what + action
        assert out["reason"].iloc[i] == want, i
    pd.testing.assert_series_equal(table["reason"], pd.Series(pd.array(reasons, dtype="str"), index=table.index, name="reason"))


def test_filter_sides_are_selected_on_demand_and_belong_to_the_filtered_votes():
    """A filter of a pandas table selects its two sides when asked: side() equals kept and
    dropped without keeping them, sizes() counts them without selecting, weights and
    side_weights are each vote's user weight, and a change to the caller's votes after the
    filter does not reach the result (it is the filtered table's)."""
    votes, _ = simulate_tie_habits(300, 12, random_seed=1)
    em = cm.TwoTypeEM(random_seed=0, checks=False).fit(votes, mu={"x": 0.75})
    res = em.filter_fdr(votes, 0.1)
    keep_vote = res.users["keep"].reindex(votes["user"]).to_numpy()
    assert res.sizes() == (int(keep_vote.sum()), int((~keep_vote).sum()))
    assert res._sides == {"kept": None, "dropped": None}  # nothing selected yet
    want_kept, want_dropped = votes[keep_vote], votes[~keep_vote]
    votes.loc[votes.index[0], "winner"] = "tie" if votes["winner"].iloc[0] != "tie" else "model_a"  # after the filter
    votes.loc[votes.index[1], "user"] = "someone else"
    votes["extra"] = 1
    side = res.side("kept")
    pd.testing.assert_frame_equal(side, want_kept)
    assert res._sides["kept"] is None  # side() keeps nothing
    pd.testing.assert_frame_equal(res.kept, want_kept)
    pd.testing.assert_frame_equal(res.dropped, want_dropped)
    assert len(res.kept) + len(res.dropped) == len(want_kept) + len(want_dropped)
    p = res.users["p_attentive"]
    per_vote = p.reindex(pd.concat([want_kept, want_dropped]).sort_index()["user"]).to_numpy()
    np.testing.assert_array_equal(res.weights.to_numpy(), per_vote)
    np.testing.assert_array_equal(res.side_weights("kept"), p.reindex(want_kept["user"]).to_numpy())
    np.testing.assert_array_equal(res.side_weights("dropped"), p.reindex(want_dropped["user"]).to_numpy())
    with pytest.raises(ConfigError, match="side must be"):
        res.side("both")


def test_spans_are_the_pieces_of_the_selected_rows():
    """_spans gives, for pieces of ``rows`` selected rows each, the input rows from the first to
    one past the last selected row of the piece, as the positions of every selected row give
    them: pieces that start and end in other blocks, blocks with no selected row, none."""
    from comparemode.inference.filter import _spans

    rng = np.random.default_rng(4)
    for n, share, rows, block in [(0, 0.5, 3, 4), (1, 1.0, 1, 4), (100, 0.3, 7, 4), (1000, 0.01, 5, 16), (1000, 0.9, 1000, 8), (5000, 0.5, 64, 64), (777, 0.0, 5, 16), (300, 1.0, 299, 7)]:
        mask = rng.random(n) < share
        at = np.flatnonzero(mask)
        want = [(int(at[k]), int(at[min(k + rows, at.size) - 1]) + 1) for k in range(0, at.size, rows)]
        assert list(_spans(mask, rows, block)) == want


@pytest.mark.parametrize("given_weights", [False, True])
def test_side_parts_cut_the_side_in_order(given_weights):
    """side_parts gives the side and its weights in pieces of the asked size (the last one
    shorter), in order, whose concatenation is side() and side_weights(); with the per-vote
    weights given as a Series as well as from each user's weight."""
    votes, _ = simulate_tie_habits(300, 12, random_seed=2)
    em = cm.TwoTypeEM(random_seed=0, checks=False).fit(votes, mu={"x": 0.75})
    res = em.filter_fdr(votes, 0.1)
    if given_weights:
        res.weights = pd.Series(np.arange(len(votes), dtype=float) / 7, index=votes.index)
    for which in ("kept", "dropped"):
        whole, weights = res.side(which), res.side_weights(which)
        assert len(whole) > 250, "too few votes on this side to cut it"
        for rows in (1, 97, len(whole), len(whole) + 5):
            parts = list(res.side_parts(which, rows))
            assert [len(p) for p, _ in parts] == [min(rows, len(whole) - lo) for lo in range(0, len(whole), rows)]
            pd.testing.assert_frame_equal(pd.concat([p for p, _ in parts]), whole)
            np.testing.assert_array_equal(np.concatenate([w for _, w in parts]), weights)
            assert all(len(p) == len(w) for p, w in parts)
    with pytest.raises(ConfigError, match="side must be"):
        next(res.side_parts("both", 10))
    with pytest.raises(ConfigError, match="rows must be at least 1"):
        next(res.side_parts("kept", 0))


@pytest.mark.parametrize("policy", ["keep", "drop", "weight"])
@pytest.mark.parametrize("rule", ["fdr", "threshold"])
def test_filters_give_the_reasons_of_the_public_steps(policy, rule):
    """filter_fdr and filter_votes keep the reasons as codes until the uninformative users'
    texts are added and take the text column once: the same decision table, text reasons
    included (pandas' str), as decide_fdr / decide_users followed by mark_uninformative, with
    and without users who carry no evidence."""
    from comparemode.inference.filter import decide_users, mark_uninformative

    rng = np.random.default_rng(11)
    n = 4000
    users = pd.DataFrame({"p_attentive": np.round(rng.beta(2, 1, n), 4), "n_decisive": rng.integers(0, 8, n),
                          "llr_decisive_per_vote": rng.normal(0.0, 0.8, n)},
                         index=pd.Index([f"user {i:05d}" for i in range(n)], name="user"))
    votes = pd.DataFrame({"user": np.repeat(users.index.to_numpy(), 2), "model_a": "a", "model_b": "b", "winner": "model_a"})
    for table in (users, users.assign(n_decisive=50, llr_decisive_per_vote=1.0)):  # the second: nobody uninformative
        if rule == "fdr":
            got, want = filter_fdr(votes, table, 0.2, uninformative=policy), decide_fdr(table, 0.2)
        else:
            got, want = filter_votes(votes, table, 0.6, uninformative=policy), decide_users(table, 0.6)
        want = mark_uninformative(want, policy)
        assert got.users["reason"].dtype == want["reason"].dtype and isinstance(want["reason"].dtype, pd.StringDtype)
        pd.testing.assert_frame_equal(got.users[want.columns], want)
        assert want["reason"].str.startswith("P(attentive) ").all()
