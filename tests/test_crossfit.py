"""Issue 11: cross-fitted filtering, kept sets free of the agreement selection."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import comparemode as cm
from comparemode.errors import ConfigError, InvalidValueError, NotFittedError
from comparemode.inference.continuous import ContinuousQuality
from comparemode.inference.crossfit import filter_crossfit
from comparemode.models.likelihood import posterior_attentive, type_logliks
from comparemode.scenarios import simulate_scenario


@pytest.fixture(scope="module")
def control():
    sc = simulate_scenario("control", 3000, 4)
    return sc, cm.TwoTypeEM(random_seed=0).fit(sc.votes, mu=sc.told_mu)


def _counts(v: pd.DataFrame, model="alpha"):
    dec = v["winner"] != "tie"
    first = v["winner"] == "model_a"
    picked = ((v["winner"] == "model_a") & (v["model_a"] == model)) | ((v["winner"] == "model_b") & (v["model_b"] == model))
    return len(v), int((~dec).sum()), int(first.sum()), int(picked.sum())


def test_leave_one_out_equals_the_users_other_votes_by_hand(control):
    """Each vote's P(attentive) is the user's posterior from the user's other votes, computed
    here from a groupby of the votes without it and the likelihood functions directly."""
    sc, em = control
    p_oof = em.crossfit_p_attentive(sc.votes)
    par = em.user_params()
    rng = np.random.default_rng(1)
    for i in rng.choice(len(sc.votes), 25, replace=False):
        row = sc.votes.iloc[i]
        others = sc.votes[(sc.votes["user"] == row["user"]) & (sc.votes.index != sc.votes.index[i])]
        n, t, f, k = _counts(others)
        s = k * math.log(0.7) + (n - t - k) * math.log(0.3)
        l1, l0 = type_logliks(np.array([n]), np.array([t]), np.array([f]), np.array([s]), par, em.careless, em.ties_)
        assert p_oof.iloc[i] == pytest.approx(float(posterior_attentive(l1, l0, par["pi"])[0]), rel=1e-9, abs=1e-12)


def test_a_votes_own_outcome_never_decides_it(control):
    """Flip a vote's outcome: its own cross-fitted P(attentive) stays the same (the whole-user
    probability moves), for the two-type, joint and continuous models."""
    sc, em = control
    votes = sc.votes
    base = em.crossfit_p_attentive(votes)
    rng = np.random.default_rng(2)
    for i in rng.choice(len(votes), 10, replace=False):
        changed = votes.copy()
        changed.iloc[i, changed.columns.get_loc("winner")] = {"model_a": "model_b", "model_b": "tie", "tie": "model_a"}[votes["winner"].iloc[i]]
        after = em.crossfit_p_attentive(changed)
        assert after.iloc[i] == base.iloc[i]
        same_user = (votes["user"] == votes["user"].iloc[i]).to_numpy().copy()
        same_user[i] = False
        if same_user.any():
            assert not np.allclose(after[same_user], base[same_user])  # the other votes see the change
    cq = ContinuousQuality().fit(votes.iloc[:4000], mu=sc.told_mu)
    base = cq.crossfit_p_attentive(votes.iloc[:4000])
    changed = votes.iloc[:4000].copy()
    changed.iloc[7, changed.columns.get_loc("winner")] = "tie" if votes["winner"].iloc[7] != "tie" else "model_a"
    assert cq.crossfit_p_attentive(changed).iloc[7] == pytest.approx(base.iloc[7], abs=1e-12)


def test_k_folds_are_balanced_seeded_and_shared_within_a_fold(control):
    sc, em = control
    votes = sc.votes.iloc[:6000]
    em_small = cm.TwoTypeEM(random_seed=0, checks=False).fit(votes, mu=sc.told_mu)
    a = em_small.crossfit_p_attentive(votes, folds=3, random_seed=5)
    b = em_small.crossfit_p_attentive(votes, folds=3, random_seed=5)
    c = em_small.crossfit_p_attentive(votes, folds=3, random_seed=6)
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(c)
    from comparemode.inference.crossfit import _fold_of

    code, _ = pd.factorize(votes["user"])
    fold = _fold_of(code, 3, 5)
    sizes = pd.crosstab(code, fold).to_numpy()
    assert (sizes.max(axis=1) - sizes.min(axis=1) <= 1).all()
    # votes of one user and fold share one decision
    per_unit = pd.Series(a.to_numpy()).groupby(code * 3 + fold).nunique()
    assert (per_unit == 1).all()


def test_filter_crossfit_accounts_for_every_vote(control):
    sc, em = control
    res = filter_crossfit(sc.votes, em)
    assert len(res.kept) + len(res.dropped) == len(sc.votes)
    assert res.kept.index.intersection(res.dropped.index).empty
    assert res.weights.index.equals(sc.votes.index)
    s = res.summary
    assert s["rule"] == "crossfit_fdr" and s["alpha"] == 0.05 and s["folds"] == "loo"
    assert s["expected_careless_share"] <= 0.05 + 1e-12
    assert s["promise"]["status"] == "kept"
    u = res.users
    assert (u["votes_kept"] + u["votes_dropped"] == u["n_votes"]).all()
    assert u["keep_whole"].equals(cm.inference.filter.decide_fdr(em.users_, 0.05)["keep"])
    thr = filter_crossfit(sc.votes, em, threshold=0.5)
    assert thr.summary["rule"] == "crossfit_threshold"
    assert (thr.weights[sc.votes.index.isin(thr.kept.index)] >= 0.5).all()


def test_cross_fitted_kept_votes_are_free_of_the_selection(control):
    """On the control (the package's model, another simulator) the kept votes' win rate of the
    better model is within 0.01 of the attentive truth; the whole-user FDR set overstates it;
    the cross-fitted score ranks votes almost as well as the whole-user one."""
    sc, em = control
    v = sc.votes
    dec = (v["winner"] != "tie").to_numpy()
    won = (((v["winner"] == "model_a") & (v["model_a"] == "alpha")) | ((v["winner"] == "model_b") & (v["model_b"] == "alpha"))).to_numpy()
    att = sc.users["attentive"].reindex(v["user"]).to_numpy()
    truth = won[dec & att].mean()
    x = filter_crossfit(v, em)
    whole = em.filter_fdr(v, 0.1)
    kept_x = v.index.isin(x.kept.index)
    kept_w = v.index.isin(whole.kept.index)
    assert abs(won[dec & kept_x].mean() - truth) <= 0.01
    assert won[dec & kept_w].mean() - truth > 0.01
    assert x.summary["favoured_win_rate"]["kept"] == pytest.approx(won[dec & kept_x].mean())
    from scipy.stats import rankdata

    def auc(y, s):
        r = rankdata(s)
        return (r[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())

    whole_p = em.users_["p_attentive"].reindex(v["user"]).to_numpy()
    assert auc(att, whole_p) - auc(att, x.weights.to_numpy()) < 0.02


def test_crossfit_offers_the_better_fit_when_the_checks_fail():
    sc = simulate_scenario("mu_low", 2000, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = cm.TwoTypeEM().fit(sc.votes, mu=sc.told_mu)
    res = filter_crossfit(sc.votes, em)
    assert res.summary["promise"]["status"] == "void" and res.alternative is not None
    assert res.alternative.summary["model"] == "two-type, mu estimated"
    assert res.summary["alternative"]["votes_kept"] == len(res.alternative.kept)


def test_crossfit_on_many_models_and_davidson_ties():
    strengths = {f"m{i}": s for i, s in enumerate(np.linspace(-1, 1, 5))}
    sim = cm.simulate_votes(n_users=300, votes_per_user=12, strengths=strengths, attentive_ties="davidson", random_seed=3)
    for ties in ("model", "davidson"):
        joint = cm.JointEM(ties=ties, n_starts=1).fit(sim.votes)
        p = joint.crossfit_p_attentive(sim.votes)
        assert p.between(0, 1).all() and p.index.equals(sim.votes.index)
        changed = sim.votes.copy()
        changed.iloc[0, changed.columns.get_loc("winner")] = "tie" if sim.votes["winner"].iloc[0] != "tie" else "model_a"
        # the user's total minus the vote's own term: equal up to the rounding of that subtraction
        assert joint.crossfit_p_attentive(changed).iloc[0] == pytest.approx(p.iloc[0], rel=1e-10)
    em = cm.TwoTypeEM().fit(sim.votes, strengths=sim.strengths)
    res = filter_crossfit(sim.votes, em, folds=4)
    assert len(res.kept) + len(res.dropped) == len(sim.votes)
    cq = ContinuousQuality().fit(sim.votes.iloc[:1500], strengths=sim.strengths)
    assert cq.crossfit_p_attentive(sim.votes.iloc[:1500], folds=2).between(0, 1).all()


def test_crossfit_bad_input(control):
    sc, em = control
    with pytest.raises(ConfigError, match="not both"):
        filter_crossfit(sc.votes, em, alpha=0.1, threshold=0.5)
    with pytest.raises(ConfigError, match="alpha"):
        filter_crossfit(sc.votes, em, alpha=1.5)
    for bad in (1, "two", 2.5, True):
        with pytest.raises(ConfigError, match="folds"):
            filter_crossfit(sc.votes, em, folds=bad)
    with pytest.raises(ConfigError, match="random_seed"):
        filter_crossfit(sc.votes, em, folds=2, random_seed=-1)
    with pytest.raises(NotFittedError):
        filter_crossfit(sc.votes, cm.TwoTypeEM())
    with pytest.raises(ConfigError, match="TwoTypeEM, JointEM or ContinuousQuality"):
        filter_crossfit(sc.votes, em.users_)
    with pytest.raises(ConfigError, match="DataFrame"):
        filter_crossfit([1, 2], em)
    other = simulate_scenario("control", 50, 99).votes.assign(user=lambda d: "x" + d["user"])
    with pytest.raises(InvalidValueError, match="user table does not have"):
        filter_crossfit(other, em)
    cq = ContinuousQuality()
    with pytest.raises(NotFittedError):
        cq.crossfit_p_attentive(sc.votes)
