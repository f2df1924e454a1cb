"""The simulator draws from the generative model and reproduces from a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from comparemode import load_votes, simulate_votes
from comparemode.errors import ConfigError


def test_same_seed_same_votes_other_seed_other_votes():
    a = simulate_votes(n_users=100, random_seed=3)
    b = simulate_votes(n_users=100, random_seed=3)
    c = simulate_votes(n_users=100, random_seed=4)
    pd.testing.assert_frame_equal(a.votes, b.votes)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert not a.votes["winner"].equals(c.votes["winner"])


def test_votes_follow_the_contract_and_the_parameters():
    sim = simulate_votes(n_users=4000, votes_per_user=10, pi=0.3, mu=0.8, careless_first=(8.0, 2.0), random_seed=1)
    votes = load_votes(sim.votes)  # passes validation
    assert len(votes) == 40_000
    users = sim.users
    assert users["attentive"].mean() == pytest.approx(0.3, abs=0.03)
    assert users.loc[~users["attentive"], "first_rate"].mean() == pytest.approx(0.8, abs=0.02)
    assert users.loc[users["attentive"], "first_rate"].isna().all()
    v = votes.join(users, on="user")
    dec = v[v["winner"] != "tie"]
    att = dec[dec["attentive"]]
    picked_x = ((att["winner"] == "model_a") & (att["model_a"] == "model_x")) | ((att["winner"] == "model_b") & (att["model_b"] == "model_x"))
    assert picked_x.mean() == pytest.approx(0.8, abs=0.02)
    car = dec[~dec["attentive"]]
    assert (car["winner"] == "model_a").mean() == pytest.approx(0.8, abs=0.02)
    assert (v["winner"] == "tie").mean() == pytest.approx(0.2, abs=0.02)
    assert (votes["model_a"] == "model_x").mean() == pytest.approx(0.5, abs=0.02)


def test_many_models_and_vote_count_distributions():
    strengths = {"a": 1.0, "b": 0.0, "c": -1.0}
    sim = simulate_votes(n_users=500, votes_per_user={"distribution": "negative_binomial", "mean": 8, "dispersion": 0.8}, strengths=strengths, random_seed=2)
    assert set(sim.votes["model_a"]) | set(sim.votes["model_b"]) == set(strengths)
    assert (sim.votes["model_a"] != sim.votes["model_b"]).all()
    assert sim.users["n_votes"].min() >= 1
    assert sim.users["n_votes"].mean() == pytest.approx(8, rel=0.15)
    assert sim.users["n_votes"].var() > sim.users["n_votes"].mean()  # over-dispersed
    assert sim.reference["strengths"].equals(pd.Series(strengths, dtype=float))
    poisson = simulate_votes(n_users=300, votes_per_user={"distribution": "poisson", "mean": 5, "max": 6}, random_seed=2)
    assert poisson.users["n_votes"].max() <= 6


def test_no_ties_and_random_clickers():
    sim = simulate_votes(n_users=200, careless="random", ties=False, random_seed=5)
    assert (sim.votes["winner"] != "tie").all()
    assert (sim.users.loc[~sim.users["attentive"], "first_rate"] == 0.5).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_users": 0}, "n_users"),
        ({"pi": 1.5}, "pi"),
        ({"mu": 1.0}, "mu"),
        ({"careless": "lazy"}, "careless"),
        ({"careless_first": (0.0, 1.0)}, "careless_first"),
        ({"tie_attentive": "wide"}, "tie_attentive"),
        ({"votes_per_user": 0}, "votes_per_user"),
        ({"votes_per_user": {"distribution": "zipf", "mean": 3}}, "zipf"),
        ({"models": ("a", "a")}, "models"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        simulate_votes(**kwargs)


def test_true_parameters_in_model_terms():
    sim = simulate_votes(n_users=10, careless_first=(3.0, 1.0), tie_attentive=(2.0, 8.0), random_seed=0)
    truth = sim.true_parameters
    assert truth["careless_first_mean"] == 0.75 and truth["careless_first_kappa"] == 4.0
    assert truth["tie_attentive_mean"] == 0.2 and truth["mu"] == 0.7 and truth["pi"] == 0.6
    assert "tie_careless_kappa" not in simulate_votes(n_users=10, ties=False, random_seed=0).true_parameters


def _replicate_reference(enc, params, ties, pairs, rng, first):
    """The per-vote replicate written out plainly, in the same order of random draws as
    replicate_user_counts: outcome codes per vote, then the per-user sums from them."""
    from scipy.special import expit

    from comparemode.models.simulate import _user_rates

    size, n = params["pi"].shape[0], enc.n_users
    out = {k: np.zeros((size, n), np.int64) for k in ("n_ties", "n_favoured", "n_favoured_decisive") + (("n_first",) if first else ())}
    for i in range(size):
        p = {k: float(v[i]) for k, v in params.items() if k != "strength"}
        attentive = rng.random(n) < p["pi"]
        tau, rho = _user_rates(p, attentive, "beta", ties, rng)
        beta = params["strength"][i]
        mu_row = expit(beta[pairs[0]] - beta[pairs[1]])
        p_tie = tau[enc.user]
        if ties == "davidson":
            half = 0.5 * (beta[pairs[0]] - beta[pairs[1]])
            p_tie = np.where(attentive[enc.user], p["davidson_nu"] / (np.exp(half) + np.exp(-half) + p["davidson_nu"]), p_tie)
        is_tie = rng.random(enc.user.shape[0]) < p_tie
        pick_a = rng.random(enc.user.shape[0]) < np.where(attentive[enc.user], mu_row, rho[enc.user])
        outcome = np.where(is_tie, 2, np.where(pick_a, 0, 1))
        for v in range(enc.user.shape[0]):
            u, o = enc.user[v], outcome[v]
            out["n_ties"][i, u] += o == 2
            if first:
                out["n_first"][i, u] += o == 0
            out["n_favoured"][i, u] += (o == 0 and mu_row[v] > 0.5) or (o == 1 and mu_row[v] < 0.5)
            out["n_favoured_decisive"][i, u] += o != 2 and mu_row[v] != 0.5
    return out


@pytest.mark.parametrize("ties, first", [("model", True), ("model", False), ("davidson", False), ("drop", True)])
def test_per_vote_replicates_equal_the_vote_by_vote_rule(ties, first):
    """replicate_user_counts with strengths (the joint model's bootstrap) counts each user's
    ties, first-position picks and picks of the favoured model as the vote-by-vote rule does,
    draw for draw; the per-vote mu computed once while the strengths repeat, and again when
    they change (draw 2)."""
    from comparemode.models.simulate import replicate_user_counts
    from comparemode.models.stats import EncodedVotes

    rng = np.random.default_rng(0)
    n_users, n, m = 60, 700, 5
    user = np.sort(rng.integers(0, n_users, n))
    pairs = (rng.integers(0, m, n), rng.integers(0, m, n))
    size = 4
    params = {"pi": np.full(size, 0.6), "careless_first_mean": np.full(size, 0.6), "careless_first_kappa": np.full(size, 5.0),
              "tie_attentive_mean": np.full(size, 0.2), "tie_attentive_kappa": np.full(size, 10.0),
              "tie_careless_mean": np.full(size, 0.3), "tie_careless_kappa": np.full(size, 4.0), "davidson_nu": np.full(size, 0.5),
              "strength": np.tile(np.linspace(-1.0, 1.0, m), (size, 1))}
    params["strength"][2] += np.array([0.3, 0.0, 0.0, 0.0, -0.2])
    params["strength"][:, 1] = params["strength"][:, 3]  # equal strengths: mu = 1/2 on their votes
    enc = EncodedVotes(user=user, code=np.zeros(n, np.int8), n_users=n_users, mu=np.full(n, 0.5))
    got = replicate_user_counts(enc, params, careless="beta", ties=ties, mu=None, rng=np.random.default_rng(5), pairs=pairs, first=first)
    want = _replicate_reference(enc, params, ties, pairs, np.random.default_rng(5), first)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
