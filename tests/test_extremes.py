"""Numerical extremes (issue 7, part 3): users with a million votes, mu at 0.999 and 0.501,
pi near 0 and 1, all users attentive, none attentive. No overflow, no NaN (any RuntimeWarning
fails these tests), sensible estimates at the boundary and a BoundaryWarning there."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from comparemode.models.stats import EncodedVotes
from conftest import assert_monotone

import comparemode as cm
from comparemode.errors import BoundaryWarning

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def deterministic_votes(n_users: int, n_votes: int, pick) -> pd.DataFrame:
    """Two models x (the stronger) and y, shown first in turn; ``pick(x_first)`` is the winner."""
    x_first = np.tile(np.arange(n_votes) % 2 == 0, n_users)
    return pd.DataFrame(
        {
            "user": np.repeat([f"u{i}" for i in range(n_users)], n_votes),
            "model_a": np.where(x_first, "x", "y"),
            "model_b": np.where(x_first, "y", "x"),
            "winner": [pick(xf) for xf in x_first],
        }
    )


def attentive_table(n_users=40, n_votes=10):
    return deterministic_votes(n_users, n_votes, lambda xf: "model_a" if xf else "model_b")  # always x


def first_clicker_table(n_users=40, n_votes=10):
    return deterministic_votes(n_users, n_votes, lambda xf: "model_a")  # always the first answer


def check_finite(em):
    assert np.all(np.isfinite(em.params_.dropna().to_numpy()))
    u = em.users_
    for col in ("loglik_attentive", "loglik_careless", "llr", "p_attentive"):
        assert np.all(np.isfinite(u[col].to_numpy())), col
    assert u["p_attentive"].between(0.0, 1.0).all()
    assert_monotone(em.loglik_history_)


# --------------------------------------------------------------------------- pi at 0 and 1


@pytest.mark.parametrize("careless", ["beta", "shared", "random"])
def test_all_users_attentive_puts_pi_at_one_with_a_warning(careless):
    votes = attentive_table()
    with pytest.warns(BoundaryWarning, match=r"pi = 1 is at 1 \(no careless users\)"):
        em = cm.TwoTypeEM(careless=careless, ties="drop").fit(votes, mu={"x": 0.9})
    check_fit = em.params_["pi"]
    assert 1.0 - 1e-6 <= check_fit <= 1.0
    check_finite(em)
    assert (em.users_["p_attentive"] > 0.999).all()
    result = em.filter(votes)
    assert len(result.kept) == len(votes) and result.dropped.empty


@pytest.mark.parametrize("careless", ["beta", "shared", "random"])
def test_no_user_attentive_puts_pi_at_zero_with_a_warning(careless):
    votes = first_clicker_table()
    with pytest.warns(BoundaryWarning, match=r"pi = .* is at 0 \(no attentive users\)"):
        em = cm.TwoTypeEM(careless=careless, ties="drop").fit(votes, mu={"x": 0.9})
    assert 0.0 <= em.params_["pi"] <= 1e-6
    check_finite(em)
    assert (em.users_["p_attentive"] < 1e-3).all()
    assert em.filter(votes).kept.empty


def test_joint_em_with_all_users_attentive_warns():
    """Everybody always picks x: the joint EM's strengths explain every vote, pi goes to 1."""
    votes = attentive_table()
    with pytest.warns(BoundaryWarning, match=r"pi = 1 is at 1"):
        em = cm.JointEM(careless="random", ties="drop").fit(votes)
    check_finite(em)
    assert np.all(np.isfinite(em.strengths_.to_numpy())) and em.strengths_["x"] > em.strengths_["y"]


def test_interior_fit_does_not_warn(recovery_sim):
    """The recovery setting (pi = 0.6) ends inside the parameter space: no BoundaryWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", BoundaryWarning)
        em = cm.TwoTypeEM(careless="beta", random_seed=0).fit(recovery_sim.votes, **recovery_sim.reference)
    assert 0.5 < em.params_["pi"] < 0.7


@pytest.mark.parametrize("pi", [0.02, 0.98])
def test_pi_near_the_boundary_is_recovered(pi):
    """Simulated pi of 0.02 and 0.98 with the paper's random clickers: the estimate is close,
    finite, and strictly inside (0, 1)."""
    sim = cm.simulate_votes(n_users=2000, votes_per_user=20, pi=pi, mu=0.8, careless="random", random_seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)  # a tie Beta may reach its bound
        em = cm.TwoTypeEM(careless="random").fit(sim.votes, **sim.reference)
    check_finite(em)
    assert em.params_["pi"] == pytest.approx(pi, abs=0.015)
    truth = sim.users["attentive"].reindex(em.users_.index)
    assert ((em.users_["p_attentive"] >= 0.5) == truth).mean() > 0.97


# --------------------------------------------------------------------------- mu at 0.999 and 0.501


def test_mu_near_one_is_sharp_and_finite():
    sim = cm.simulate_votes(n_users=500, votes_per_user=15, pi=0.6, mu=0.999, random_seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        em = cm.TwoTypeEM().fit(sim.votes, **sim.reference)
    check_finite(em)
    assert em.params_["pi"] == pytest.approx(0.6, abs=0.06)
    truth = sim.users["attentive"].reindex(em.users_.index)
    assert ((em.users_["p_attentive"] >= 0.5) == truth).mean() > 0.95


def test_mu_near_one_half_is_finite_and_uncertain():
    """mu = 0.501 carries almost no signal: the fit must stay finite and in range; user
    probabilities cannot be confident about many users."""
    sim = cm.simulate_votes(n_users=500, votes_per_user=15, pi=0.6, mu=0.501, careless="random", random_seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        em = cm.TwoTypeEM(careless="random", ties="drop").fit(sim.votes, **sim.reference)
    check_finite(em)
    assert 0.0 <= em.params_["pi"] <= 1.0
    # evidence per user is tiny: |llr| per decisive vote is at most log(0.5 / 0.499)
    per = em.users_["llr_decisive_per_vote"].dropna().abs()
    assert (per <= np.log(0.5 / 0.499) + 1e-12).all()
    # so no user's probability moves far from the prior share pi (llr <= 15 * 0.002)
    assert (em.users_["p_attentive"] - em.params_["pi"]).abs().max() < 0.01


def test_mu_column_at_the_edge_of_the_unit_interval():
    votes = cm.simulate_votes(n_users=200, votes_per_user=10, mu=0.9, random_seed=4).votes
    mu = np.where(votes["model_a"] == "model_x", 1 - 1e-15, 1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        em = cm.TwoTypeEM().fit(votes.assign(mu=mu))
    check_finite(em)


def test_extreme_elo_ratings_stay_finite():
    votes = cm.simulate_votes(n_users=200, votes_per_user=10, strengths={"a": 3.0, "b": 0.0, "c": -3.0}, random_seed=4).votes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        em = cm.TwoTypeEM().fit(votes, strengths={"a": 3000.0, "b": 0.0, "c": -3000.0}, scale="elo")
    check_finite(em)


def test_joint_em_with_a_model_that_always_wins():
    sim = cm.simulate_votes(n_users=200, votes_per_user=10, strengths={"a": 1.0, "b": 0.0, "c": -1.0}, random_seed=6)
    votes = sim.votes.copy()
    a_in = (votes["model_a"] == "a") | (votes["model_b"] == "a")
    votes.loc[a_in, "winner"] = np.where(votes.loc[a_in, "model_a"] == "a", "model_a", "model_b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        em = cm.JointEM().fit(votes)
    check_finite(em)
    assert em.leaderboard_.index[0] == "a" and np.isfinite(em.strengths_["a"])


# --------------------------------------------------------------------------- a million votes


def million_vote_users(n_big=3, big=1_000_000, n_small=200, small=10, seed=0):
    """Encoded votes: ``n_big`` users with ``big`` votes each (attentive, careless first-
    clicker, random clicker), then ``n_small`` ordinary users."""
    rng = np.random.default_rng(seed)
    users, codes = [], []
    kinds = ["attentive", "first", "random"]
    for i in range(n_big):
        stronger_first = rng.random(big) < 0.5
        kind = kinds[i % 3]
        if kind == "attentive":
            pick_a = np.where(stronger_first, rng.random(big) < 0.7, rng.random(big) < 0.3)
        elif kind == "first":
            pick_a = rng.random(big) < 0.9
        else:
            pick_a = rng.random(big) < 0.5
        tie = rng.random(big) < 0.1
        outcome = np.where(tie, 2, np.where(pick_a, 0, 1))
        users.append(np.full(big, i))
        codes.append(outcome + 3 * stronger_first)
    sim = cm.simulate_votes(n_users=n_small, votes_per_user=small, random_seed=seed)
    ref = cm.reference.resolve_reference(sim.votes, **sim.reference)
    enc_small, _ = cm.reference.encode_rows(sim.votes, ref)
    users.append(enc_small.user + n_big)
    codes.append(enc_small.code)
    return EncodedVotes(
        user=np.concatenate(users).astype(np.intp), code=np.concatenate(codes).astype(np.int8), n_users=n_big + n_small
    )


@pytest.mark.parametrize("careless", ["beta", "random"])
def test_users_with_a_million_votes(careless):
    enc = million_vote_users()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        em = cm.TwoTypeEM(careless=careless).fit_encoded(enc, mu=0.7)
    check_finite(em)
    u = em.users_
    assert u["n_votes"].iloc[:3].tolist() == [1_000_000] * 3
    # the attentive million-vote user is certain, the position clicker certainly careless
    assert u["p_attentive"].iloc[0] == pytest.approx(1.0, abs=1e-12)
    assert u["p_attentive"].iloc[1] == pytest.approx(0.0, abs=1e-12)
    assert abs(u["llr"].iloc[0]) > 1e4 and np.isfinite(u["llr"].iloc[0])


@pytest.mark.slow
def test_a_million_votes_through_the_dataframe_path():
    """One user with a million votes in an ordinary votes table, through validation,
    encoding, the EM, the joint EM and the filter."""
    rng = np.random.default_rng(1)
    n = 1_000_000
    x_first = rng.random(n) < 0.5
    pick_a = np.where(x_first, rng.random(n) < 0.7, rng.random(n) < 0.3)
    big = pd.DataFrame(
        {
            "user": "heavy",
            "model_a": np.where(x_first, "model_x", "model_y"),
            "model_b": np.where(x_first, "model_y", "model_x"),
            "winner": np.where(rng.random(n) < 0.1, "tie", np.where(pick_a, "model_a", "model_b")),
        }
    )
    small = cm.simulate_votes(n_users=300, votes_per_user=10, random_seed=2).votes[big.columns]
    votes = pd.concat([big, small], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        em = cm.TwoTypeEM().fit(votes, mu={"model_x": 0.7})
        joint = cm.JointEM(n_starts=1).fit(votes)
    for fit in (em, joint):
        check_finite(fit)
        assert fit.users_.loc["heavy", "n_votes"] == n
        assert fit.users_.loc["heavy", "p_attentive"] == pytest.approx(1.0)
    result = em.filter(votes)
    assert len(result.kept) + len(result.dropped) == len(votes)


# --------------------------------------------------------------------------- MCMC at the extremes


@pytest.mark.slow
@pytest.mark.parametrize("table", ["all_attentive", "mu_0999"])
def test_mcmc_at_the_extremes_is_finite(table):
    """Tiny samplers on data at the edges: a posterior without NaN and per-user
    probabilities in [0, 1]."""
    if table == "all_attentive":
        votes, ref = attentive_table(n_users=30, n_votes=8), {"mu": {"x": 0.9}}
    else:
        sim = cm.simulate_votes(n_users=150, votes_per_user=8, mu=0.999, random_seed=9)
        votes, ref = sim.votes, sim.reference
    model = cm.BayesianTwoType(
        model_config={"ties": "drop"} if table == "all_attentive" else None,
        sampler_config={"draws": 100, "tune": 100, "chains": 2, "cores": 1, "progressbar": False, "random_seed": 3},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        warnings.simplefilter("ignore", UserWarning)  # short chains: PyMC's own diagnostics notes
        warnings.simplefilter("ignore", RuntimeWarning)  # ArviZ's R-hat on 100 draws, not our numbers
        idata = model.fit(votes, **ref)
    for name in model.param_names:
        assert np.all(np.isfinite(np.asarray(idata["posterior"][name].values)))
    p = model.users_["p_attentive"]
    assert np.all(np.isfinite(p)) and p.between(0, 1).all()
    if table == "all_attentive":
        assert float(idata["posterior"]["pi"].mean()) > 0.8
