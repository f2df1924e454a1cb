"""Issue 16: the misfit checks at the cost of a pass over the votes, with the same results.

The drift check groups each user's votes with one integer sort (no stable argsort of the
users, no per-vote rank); it must give exactly what the argsort did, and what a per-user loop
gives. The dispersion bootstrap draws users who share a design together, from the exact
distribution of a user's (ties, picks of the model): that distribution must be the one the
one-by-one replicator draws, and the replicated dispersion index must have the distribution
it had before, reproducibly from the seed. The checks read the codes of the votes for their
agreement, which must be what the per-vote mu gives."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import betabinom

import comparemode as cm
from comparemode.inference import misfit
from comparemode.inference.misfit import drift_check, vote_agreement
from comparemode.inference.model_checks import dispersion_statistic
from comparemode.models import simulate
from comparemode.models.simulate import replicate_user_counts
from comparemode.models.stats import EncodedVotes

# ----------------------------------------------------------------------------- drift


def _drift_loop(user, informative, agree, n_users) -> dict:
    """drift_check written out user by user: each user's informative votes in the order given,
    the first d // 2 of them against the rest."""
    votes = {}
    for u, i, a in zip(user, informative, agree):
        if i:
            votes.setdefault(int(u), []).append(int(a))
    first = second = halves = rests = 0
    excess = var = 0.0
    used = 0
    for a in votes.values():
        d = len(a)
        if d < 2:
            continue
        used += 1
        h, K, k1 = d // 2, sum(a), sum(a[: d // 2])
        first, second, halves, rests = first + k1, second + K - k1, halves + h, rests + d - h
        excess += k1 - h * K / d
        var += h * (K / d) * (1 - K / d) * (d - h) / (d - 1)
    out = {"first_rate": first / halves if halves else math.nan, "second_rate": second / rests if rests else math.nan, "n_users": used}
    if not var > 0:
        return out | {"observed": math.nan, "expected": 0.0, "statistic": math.nan, "p_value": math.nan, "sd": 0.0}
    z = excess / math.sqrt(var)
    return out | {"observed": out["first_rate"] - out["second_rate"], "expected": 0.0, "statistic": z,
                  "p_value": misfit._p_two_sided(z), "sd": math.sqrt(var) * (1.0 / halves + 1.0 / rests)}


def _drift_argsort(user, informative, agree, n_users) -> dict:
    """drift_check as it was before issue 16 (a stable argsort of the users, ranks per vote)."""
    u = np.asarray(user)[informative]
    a = np.asarray(agree)[informative].astype(np.int64)
    order = np.argsort(u, kind="stable")
    u_s = u[order]
    d = np.bincount(u_s, minlength=n_users)
    start = np.concatenate([[0], np.cumsum(d)[:-1]])
    rank = np.arange(u_s.size) - start[u_s]
    h = d // 2
    first = rank < h[u_s]
    K = np.bincount(u_s, weights=a[order], minlength=n_users)
    k1 = np.bincount(u_s[first], weights=a[order][first], minlength=n_users)
    use = d >= 2
    dd, hh, KK = d[use].astype(float), h[use].astype(float), K[use]
    var = hh * (KK / dd) * (1 - KK / dd) * (dd - hh) / (dd - 1)
    total_var = float(var.sum())
    first_rate = float(k1[use].sum() / hh.sum()) if hh.sum() else math.nan
    second_rate = float((KK - k1[use]).sum() / (dd - hh).sum()) if (dd - hh).sum() else math.nan
    out = {"first_rate": first_rate, "second_rate": second_rate, "n_users": int(use.sum())}
    if not total_var > 0:
        return out | {"observed": math.nan, "expected": 0.0, "statistic": math.nan, "p_value": math.nan, "sd": 0.0}
    z = float((k1[use] - hh * KK / dd).sum()) / math.sqrt(total_var)
    return out | {"observed": first_rate - second_rate, "expected": 0.0, "statistic": z, "p_value": misfit._p_two_sided(z),
                  "sd": math.sqrt(total_var) * (1.0 / hh.sum() + 1.0 / (dd - hh).sum())}


def _random_votes(rng, n_users: int, n_votes: int):
    """Votes of users in shuffled order: outcomes with ties, mu on either side of 1/2 or at it
    (so some users have no informative vote, one, two or many), users with no vote at all."""
    user = rng.integers(0, n_users, n_votes)
    outcome = rng.choice(3, n_votes, p=[0.45, 0.35, 0.2])
    mu_row = rng.choice([0.3, 0.5, 0.7], n_votes, p=[0.4, 0.2, 0.4])
    informative, agree = vote_agreement(outcome, mu_row)
    return user, informative, agree


def _same(a: dict, b: dict, rel: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) and math.isnan(x):
            assert math.isnan(y), key
        elif rel:
            assert math.isclose(x, y, rel_tol=rel, abs_tol=1e-15), (key, x, y)
        else:
            assert x == y, (key, x, y)


@pytest.mark.parametrize("seed", range(6))
def test_drift_check_is_the_per_user_computation(seed):
    rng = np.random.default_rng(seed)
    n_users = int(rng.integers(2, 400))
    user, informative, agree = _random_votes(rng, n_users, int(rng.integers(0, 4000)))
    ran = drift_check(user, informative, agree, n_users + 5)  # five users without a vote
    _same(ran, _drift_loop(user, informative, agree, n_users + 5), rel=1e-12)
    # the same arithmetic as before the change: equal to the last bit
    _same(ran, _drift_argsort(user, informative, agree, n_users + 5))
    counts = np.bincount(user[informative], minlength=n_users)
    assert ran["n_users"] == int((counts >= 2).sum())


def test_drift_check_reads_the_order_within_users():
    """One user agrees on its first 20 votes and not on its last 20, its votes spread among 400
    other users' single votes (which the check leaves out): the check sees that user alone, and
    reversing the rows flips the sign."""
    rng = np.random.default_rng(3)
    n = 440
    user = np.arange(1, n + 1)
    agree = rng.random(n) < 0.6
    mine = np.sort(rng.choice(n, 40, replace=False))  # user 0's rows, in its own order
    user[mine], agree[mine] = 0, np.arange(40) < 20
    everyone = np.ones(n, bool)
    alone = drift_check(np.zeros(40, np.int64), np.ones(40, bool), np.arange(40) < 20, 1)
    assert alone["first_rate"] == 1.0 and alone["second_rate"] == 0.0 and alone["statistic"] > 4
    _same(drift_check(user, everyone, agree, n + 1), alone)
    backward = drift_check(user[::-1], everyone, agree[::-1], n + 1)
    assert backward["first_rate"] == 0.0 and backward["statistic"] == -alone["statistic"]
    _same(backward, _drift_loop(user[::-1], everyone, agree[::-1], n + 1), rel=1e-12)


def test_drift_check_edge_cases():
    empty = drift_check(np.array([], np.int64), np.array([], bool), np.array([], bool), 3)
    assert empty["n_users"] == 0 and math.isnan(empty["statistic"]) and math.isnan(empty["first_rate"])
    one_each = drift_check(np.array([0, 1, 2]), np.ones(3, bool), np.array([1, 0, 1], bool), 3)
    assert one_each["n_users"] == 0 and math.isnan(one_each["p_value"])
    # two votes, both agreeing: no variance (K = d), rates still reported
    pair = drift_check(np.array([1, 1]), np.ones(2, bool), np.ones(2, bool), 2)
    assert pair["n_users"] == 1 and pair["first_rate"] == pair["second_rate"] == 1.0 and math.isnan(pair["statistic"])
    # int32 codes, bool masks given as 0/1 integers, the number of users as a numpy integer
    rng = np.random.default_rng(5)
    user, informative, agree = _random_votes(rng, 60, 900)
    _same(drift_check(user.astype(np.int32), informative.astype(np.int8), agree.astype(np.int8), np.int64(60)), drift_check(user, informative, agree, 60))


def test_drift_check_without_room_in_the_sort_key_uses_the_stable_argsort(monkeypatch):
    rng = np.random.default_rng(11)
    user, informative, agree = _random_votes(rng, 300, 5000)
    packed = drift_check(user, informative, agree, 300)
    monkeypatch.setattr(misfit, "_KEY_BITS", 8)  # users and positions no longer fit
    _same(drift_check(user, informative, agree, 300), packed)


# ----------------------------------------------------------------------------- the bootstrap

PARAMS = {"pi": 0.55, "mu": 0.72, "careless_first_mean": 0.65, "careless_first_kappa": 3.0, "careless_first": 0.62,
          "tie_attentive_mean": 0.2, "tie_attentive_kappa": 10.0, "tie_careless_mean": 0.3, "tie_careless_kappa": 4.0}


def _one_by_one(n, sf, p, careless, ties, rng, first):
    """Users' (ties, picks of the model) drawn one by one, as the replicator does for the users
    it does not draw together."""
    attentive = rng.random(n.size) < p["pi"]
    tau, rho = simulate._user_rates(p, attentive, careless, ties, rng)
    mu = p["mu"]
    if "mu_kappa" in p:
        mu = np.full(n.size, mu)
        mu[attentive] = rng.beta(p["mu"] * p["mu_kappa"], (1 - p["mu"]) * p["mu_kappa"], int(attentive.sum()))
    t, _, k = simulate._replicate_two_models(n, sf, attentive, tau, rho, mu, rng, first=first)
    return t, k


@pytest.mark.parametrize(("careless", "ties", "spread"), list(itertools.product(("beta", "shared", "random"), ("model", "davidson", "drop"), (False, True))))
def test_design_distribution_is_what_the_users_drawn_one_by_one_follow(careless, ties, spread):
    p = PARAMS | ({"mu_kappa": 8.0} if spread else {})
    n, sf, size = 7, 3, 60_000
    pmf = simulate._design_pmf(n, sf, p, careless, ties, p["mu"])
    assert pmf.shape == (n + 1, n + 1) and np.all(pmf >= 0) and pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(pmf[np.add.outer(np.arange(n + 1), np.arange(n + 1)) > n] == 0)  # k <= n - t
    # the ties alone: the two types' beta-binomials (Davidson: the careless one for both)
    if ties == "drop":
        assert pmf.sum(axis=1)[0] == pytest.approx(1.0, abs=1e-12)
    else:
        a1, b1 = simulate._beta_of(p, "tie_attentive" if ties == "model" else "tie_careless")
        a0, b0 = simulate._beta_of(p, "tie_careless")
        t = np.arange(n + 1)
        np.testing.assert_allclose(pmf.sum(axis=1), p["pi"] * betabinom.pmf(t, n, a1, b1) + (1 - p["pi"]) * betabinom.pmf(t, n, a0, b0), rtol=1e-10, atol=1e-14)
    rng = np.random.default_rng(17)
    for first in (True, False):  # ties placed by position for everyone, or for careless users only
        t, k = _one_by_one(np.full(size, n), np.full(size, sf), p, careless, ties, rng, first)
        seen = np.bincount(t * (n + 1) + k, minlength=(n + 1) ** 2).reshape(n + 1, n + 1)
        expected = size * pmf
        assert np.all(seen[pmf == 0] == 0)
        assert np.max(np.abs(seen - expected) / np.sqrt(expected + 1.0)) < 5.0


def _design(rng, n_users: int, votes):
    user = np.repeat(np.arange(n_users), votes)
    shown_first = rng.random(user.size) < 0.5
    return EncodedVotes(user=user, code=(3 * shown_first).astype(np.int8), n_users=n_users)


def _old_replicate(enc, p, size, rng):
    """The two-model replicator before issue 16 (careless="beta", ties="model"): every rate drawn
    for every user, every user's ties placed by position."""
    n = np.bincount(enc.user, minlength=enc.n_users)
    sf = np.bincount(enc.user, weights=enc.code // 3, minlength=enc.n_users).astype(np.int64)
    a1, b1 = simulate._beta_of(p, "tie_attentive")
    a0, b0 = simulate._beta_of(p, "tie_careless")
    out_t, out_k = np.empty((size, enc.n_users), np.int64), np.empty((size, enc.n_users), np.int64)
    for i in range(size):
        attentive = rng.random(enc.n_users) < p["pi"]
        tau = np.where(attentive, rng.beta(a1, b1, enc.n_users), rng.beta(a0, b0, enc.n_users))
        rho = rng.beta(*simulate._beta_of(p, "careless_first"), enc.n_users)
        t = rng.binomial(n, tau)
        t_sf = np.zeros_like(t)
        has = t > 0
        t_sf[has] = rng.hypergeometric(sf[has], (n - sf)[has], t[has])
        m = sf - t_sf
        r = n - t - m
        x = rng.binomial(m, np.where(attentive, p["mu"], rho))
        y = rng.binomial(r, np.where(attentive, 1 - p["mu"], rho))
        out_t[i], out_k[i] = t, x + (r - y)
    return out_t, out_k


def _dispersion(enc, t, k):
    return dispersion_statistic(k, np.bincount(enc.user, minlength=enc.n_users) - t)


def test_replicated_dispersion_has_the_distribution_it_had(monkeypatch):
    """On a design where most users share a design with many others and some do not (1 + a
    Poisson number of votes, a long tail), the dispersion index of the replicates drawn together
    has the mean and spread of the old one-by-one replicator's, within Monte Carlo error."""
    rng = np.random.default_rng(23)
    votes = 1 + rng.poisson(4, 2500)
    votes[:40] = rng.integers(30, 90, 40)  # heavy voters: one by one
    enc = _design(rng, 2500, votes)
    size = 400
    params = {k: np.full(size, v) for k, v in PARAMS.items() if k != "careless_first"}
    new = replicate_user_counts(enc, params, careless="beta", ties="model", mu=None, rng=np.random.default_rng(1), first=False)
    assert "n_first" not in new
    monkeypatch.setattr(simulate, "DESIGN_MAX_VOTES", -1)  # every user one by one
    alone = replicate_user_counts(enc, params, careless="beta", ties="model", mu=None, rng=np.random.default_rng(2), first=False)
    old = _dispersion(enc, *_old_replicate(enc, PARAMS, size, np.random.default_rng(3)))
    for other in (_dispersion(enc, alone["n_ties"], alone["n_stronger"]), old):
        ours = _dispersion(enc, new["n_ties"], new["n_stronger"])
        se = math.sqrt((ours.var(ddof=1) + other.var(ddof=1)) / size)
        assert abs(ours.mean() - other.mean()) < 4 * se
        assert 0.8 < ours.std(ddof=1) / other.std(ddof=1) < 1.25
    # per user too: the replicated ties and picks of the model have the old means
    old_t, old_k = _old_replicate(enc, PARAMS, size, np.random.default_rng(4))
    for key, old_x in (("n_ties", old_t), ("n_stronger", old_k)):
        diff = new[key].mean(axis=0) - old_x.mean(axis=0)
        scale = np.sqrt((new[key].var(axis=0) + old_x.var(axis=0)) / size) + 1e-9
        assert np.abs(diff / scale).mean() < 1.0 and np.abs(diff / scale).max() < 5.5


def test_users_drawn_together_are_dealt_their_outcomes_at_random():
    """Users who share a design each get a draw of its distribution: no user is favoured by
    its place in the design (the outcomes are not handed out in the order they are counted)."""
    rng = np.random.default_rng(29)
    enc = _design(rng, 3000, 6)
    size = 300
    params = {k: np.full(size, v) for k, v in PARAMS.items() if k != "careless_first"}
    rep = replicate_user_counts(enc, params, careless="beta", ties="model", mu=None, rng=rng, first=False)
    ties = rep["n_ties"]
    # the same user in two replicates is independent, and so are two users in one replicate
    assert abs(np.corrcoef(ties[0], ties[1])[0, 1]) < 0.1
    per_user = ties.mean(axis=0)
    sf = np.bincount(enc.user, weights=enc.code // 3, minlength=enc.n_users)
    for s in np.unique(sf):
        users = np.flatnonzero(sf == s)
        if users.size >= 100:
            half = users.size // 2
            se = ties[:, users].std() * math.sqrt(1 / (size * half) + 1 / (size * (users.size - half)))
            assert abs(per_user[users[:half]].mean() - per_user[users[half:]].mean()) < 4 * se


def test_replicates_are_reproducible_from_the_seed():
    rng = np.random.default_rng(31)
    enc = _design(rng, 800, 1 + rng.poisson(5, 800))
    params = {k: np.full(50, v) for k, v in PARAMS.items() if k != "careless_first"}
    a, b, c = (replicate_user_counts(enc, params, careless="beta", ties="model", mu=None, rng=np.random.default_rng(seed), first=False) for seed in (5, 5, 6))
    for key in ("n_ties", "n_stronger"):
        np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a[key], c[key])


def test_varying_draws_are_replicated_one_by_one_with_n_first():
    """Posterior draws (parameters that differ between draws) and the first-position picks go
    one by one: every count present, consistent with the design."""
    rng = np.random.default_rng(37)
    enc = _design(rng, 500, 8)
    params = {k: np.full(30, v) for k, v in PARAMS.items() if k != "careless_first"}
    params["pi"] = np.linspace(0.3, 0.8, 30)
    for first in (True, False):
        rep = replicate_user_counts(enc, params, careless="beta", ties="model", mu=None, rng=rng, first=first)
        assert ("n_first" in rep) == first
        assert np.all((0 <= rep["n_ties"]) & (rep["n_ties"] <= 8) & (0 <= rep["n_stronger"]) & (rep["n_stronger"] <= 8 - rep["n_ties"]))
    # more attentive users, more picks of the better model
    assert rep["n_stronger"][-1].mean() > rep["n_stronger"][0].mean()


# ----------------------------------------------------------------------------- the checks of a fit


@pytest.fixture(scope="module")
def two_models():
    sim = cm.simulate_votes(n_users=1500, votes_per_user={"distribution": "poisson", "mean": 8}, random_seed=41)
    return sim, cm.TwoTypeEM(random_seed=3).fit(sim.votes, mu={"model_x": 0.7})


def test_agreement_from_the_codes_is_the_agreement_from_the_mu(two_models):
    sim, em = two_models
    row, p = em._encode_again(sim.votes), em._problem_params  # the fit frees its own copy once the checks ran
    by_code = em._vote_agreement(row, p, per_code=True)
    by_vote = vote_agreement(row.outcome, em._check_design(row, p)[0])
    for x, y in zip(by_code, by_vote):
        np.testing.assert_array_equal(x, y)


def test_the_fit_checks_drift_on_the_votes_in_row_order(two_models):
    sim, em = two_models
    v = sim.votes
    user = pd.Index(em.users_.index).get_indexer(v["user"])
    outcome = np.where(v["winner"] == "model_a", 0, np.where(v["winner"] == "model_b", 1, 2))
    informative, agree = vote_agreement(outcome, np.where(v["model_a"] == "model_x", 0.7, 0.3))
    reference = _drift_loop(user, informative, agree, len(em.users_))
    row = em.checks_.loc["drift"]
    for key in ("observed", "statistic", "p_value"):
        assert row[key] == pytest.approx(reference[key], rel=1e-12)


def test_the_checks_are_reproducible_from_the_seed(two_models):
    sim, em = two_models
    again = cm.TwoTypeEM(random_seed=3).fit(sim.votes, mu={"model_x": 0.7})
    pd.testing.assert_frame_equal(em.checks_, again.checks_)
    other = cm.TwoTypeEM(random_seed=4).fit(sim.votes, mu={"model_x": 0.7})
    assert other.checks_.loc["favoured-model dispersion", "expected"] != em.checks_.loc["favoured-model dispersion", "expected"]
    assert other.checks_.loc["drift", "statistic"] == em.checks_.loc["drift", "statistic"]  # no draw in it


def test_per_vote_mu_and_the_joint_model_check_drift_on_their_own_mu():
    strengths = {f"m{i}": v for i, v in enumerate(np.linspace(-1, 1, 5))}
    sim = cm.simulate_votes(n_users=400, votes_per_user=10, strengths=strengths, random_seed=43)
    for em in (cm.TwoTypeEM(random_seed=0).fit(sim.votes, **sim.reference), cm.JointEM(n_starts=1, random_seed=0).fit(sim.votes)):
        assert em.checks_.loc[["favoured-model dispersion", "drift"], "status"].ne("not run").all()
        row, p = em._encode_again(sim.votes), em._problem_params  # the votes in order, as the checks read them
        informative, agree = vote_agreement(row.outcome, em._check_design(row, p)[0])
        reference = _drift_loop(row.user, informative, agree, row.n_users)
        assert em.checks_.loc["drift", "statistic"] == pytest.approx(reference["statistic"], rel=1e-12)


@pytest.mark.parametrize("from_counts", [False, True])
def test_checks_need_a_user_with_two_informative_votes(from_counts):
    """With one vote per user the dispersion and drift checks do not run, whether the count
    comes from the drift check's pass (votes) or from the grouped votes (counts)."""
    sim = cm.simulate_votes(n_users=300, votes_per_user=1, random_seed=2)
    em = cm.TwoTypeEM(random_seed=0).fit(cm.count_votes(sim.votes) if from_counts else sim.votes, **sim.reference)
    for name in ("favoured-model dispersion", "drift"):
        assert em.checks_.loc[name, "status"] == "not run" and "two or more decisive votes" in em.checks_.loc[name, "message"]
    two = cm.simulate_votes(n_users=300, votes_per_user=4, random_seed=2)
    em = cm.TwoTypeEM(random_seed=0).fit(cm.count_votes(two.votes) if from_counts else two.votes, **two.reference)
    assert em.checks_.loc["favoured-model dispersion", "status"] != "not run"
    assert (em.checks_.loc["drift", "status"] == "not run") == from_counts


@pytest.mark.parametrize("seed", range(4))
def test_drift_check_compiled_pass_equals_the_sort(seed):
    """The compiled pass (large inputs) counts each user's halves without the sort and gives
    the sort-based result to the last bit: users without votes, users with one, int32 codes,
    and a row order that interleaves users."""
    rng = np.random.default_rng(100 + seed)
    n_users = int(rng.integers(2, 500))
    user, informative, agree = _random_votes(rng, n_users, int(rng.integers(0, 6000)))
    for u in (user, user.astype(np.int32)):
        compiled = drift_check(u, informative, agree, n_users + 3, engine="numba")
        _same(compiled, drift_check(u, informative, agree, n_users + 3, engine="numpy"))
        _same(compiled, _drift_loop(u, informative, agree, n_users + 3), rel=1e-12)
    backward = drift_check(user[::-1], informative[::-1], agree[::-1], n_users, engine="numba")
    _same(backward, drift_check(user[::-1], informative[::-1], agree[::-1], n_users, engine="numpy"))
    with pytest.raises(ValueError, match="engine must be"):
        drift_check(user, informative, agree, n_users, engine="fast")
