"""Aggregation into sufficient statistics and compression into patterns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from comparemode.models.stats import EncodedVotes, aggregate, compress
from comparemode.reference import encode_rows, resolve_reference


def _naive_counts(votes: pd.DataFrame, stronger: str):
    g = votes.assign(
        tie=votes["winner"].isin(["tie", "tie (bothbad)"]),
        first=votes["winner"] == "model_a",
        strong=((votes["winner"] == "model_a") & (votes["model_a"] == stronger))
        | ((votes["winner"] == "model_b") & (votes["model_b"] == stronger)),
    ).groupby("user", sort=False)
    return pd.DataFrame({"n": g.size(), "t": g["tie"].sum(), "f": g["first"].sum(), "k": g["strong"].sum()})


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_aggregate_matches_groupby(small_sim, engine):
    votes = small_sim.votes
    ref = resolve_reference(votes, **small_sim.reference)
    enc, users = encode_rows(votes, ref)
    st = aggregate(enc, mu=ref.mu, engine=engine)
    naive = _naive_counts(votes, ref.model).reindex(users)
    np.testing.assert_array_equal(st.n, naive["n"])
    np.testing.assert_array_equal(st.t, naive["t"])
    np.testing.assert_array_equal(st.f, naive["f"])
    np.testing.assert_array_equal(st.k, naive["k"])
    d = st.n - st.t
    np.testing.assert_allclose(st.s, st.k * np.log(0.7) + (d - st.k) * np.log(0.3))


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_aggregate_user_with_more_votes_than_the_packed_fields_hold(engine):
    # user 0 has 40,000 votes (past the packed limit of 16,384): the fallback path must count right
    rng = np.random.default_rng(0)
    user = np.concatenate([np.zeros(40_000, dtype=np.intp), rng.integers(1, 50, 2000)])
    rng.shuffle(user)
    code = rng.integers(0, 6, user.size).astype(np.int8)
    st = aggregate(EncodedVotes(user=user, code=code, n_users=50), mu=0.8, engine=engine)
    assert st.n[0] == 40_000 and st.n.sum() == user.size
    for u in (0, 7):
        c = code[user == u]
        assert st.t[u] == np.isin(c, [2, 5]).sum()
        assert st.f[u] == np.isin(c, [0, 3]).sum()
        assert st.k[u] == np.isin(c, [1, 3]).sum()


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize("bad", [5, -1])
def test_aggregate_rejects_codes_outside_n_users(engine, bad):
    with pytest.raises(ValueError, match="user codes"):
        aggregate(EncodedVotes(user=np.array([0, bad]), code=np.array([0, 1], dtype=np.int8), n_users=3), mu=0.7, engine=engine)


def test_engines_agree_on_many_models(arena_sim):
    ref = resolve_reference(arena_sim.votes, **arena_sim.reference)
    enc, _ = encode_rows(arena_sim.votes, ref)
    a = aggregate(enc, engine="numpy")
    b = aggregate(enc, engine="numba")
    for name in ("n", "t", "f"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_allclose(a.s, b.s, rtol=1e-12)


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_row_mu_attentive_term(arena_sim, engine):
    votes = arena_sim.votes
    ref = resolve_reference(votes, **arena_sim.reference)
    enc, users = encode_rows(votes, ref)
    st = aggregate(enc, engine=engine)
    beta = arena_sim.strengths
    mu = 1 / (1 + np.exp(-(beta.reindex(votes["model_a"]).to_numpy() - beta.reindex(votes["model_b"]).to_numpy())))
    logp = np.where(votes["winner"] == "model_a", np.log(mu), np.where(votes["winner"] == "model_b", np.log1p(-mu), 0.0))
    expected = pd.Series(logp).groupby(votes["user"].to_numpy()).sum().reindex(users)
    np.testing.assert_allclose(st.s, expected.to_numpy(), rtol=1e-12)


def test_compress_is_lossless(small_sim):
    ref = resolve_reference(small_sim.votes, **small_sim.reference)
    enc, _ = encode_rows(small_sim.votes, ref)
    st = aggregate(enc, mu=ref.mu)
    pat = compress(st)
    assert pat.size < len(st.n)
    assert pat.weight.sum() == len(st.n)
    np.testing.assert_array_equal(pat.n[pat.inverse], st.n)
    np.testing.assert_array_equal(pat.t[pat.inverse], st.t)
    np.testing.assert_array_equal(pat.f[pat.inverse], st.f)
    np.testing.assert_array_equal(pat.s[pat.inverse], st.s)
    np.testing.assert_array_equal(np.bincount(pat.inverse), pat.weight)


def test_compress_engines_agree(small_sim):
    ref = resolve_reference(small_sim.votes, **small_sim.reference)
    enc, _ = encode_rows(small_sim.votes, ref)
    a = compress(aggregate(enc, mu=ref.mu, engine="numpy"))
    b = compress(aggregate(enc, mu=ref.mu, engine="numba"))
    assert b.size == a.size < len(enc.user)
    for name in ("n", "t", "f", "k", "weight", "inverse", "s"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_mixture_posterior_compiled_pass_agrees_with_numpy(monkeypatch):
    """The compiled mixture pass (from NUMBA_MIN_VOTES rows on) gives NumPy's weighted log
    mixture likelihood and posterior to about 1e-13, with unit and other weights, also where
    a component is impossible (-inf) or the two differ by hundreds of log units; and its
    posterior and likelihood are the textbook ones."""
    from comparemode.models import stats

    rng = np.random.default_rng(11)
    n = 5_000
    l1 = rng.normal(-20, 15, n)
    l0 = l1 + rng.normal(0, 5, n)
    l0[:50] += 900.0  # the careless component overwhelmingly likelier
    l1[50:100] = -np.inf  # the attentive component impossible
    l0[100:150] = -np.inf
    w = np.where(rng.random(n) < 0.7, 1.0, rng.integers(2, 50, n).astype(float))
    for weights in (np.ones(n), w):
        monkeypatch.setattr(stats, "NUMBA_MIN_VOTES", 10**9)
        want_ll, want_gamma = stats.mixture_posterior(0.3, l1, l0, weights)
        monkeypatch.setattr(stats, "NUMBA_MIN_VOTES", 1)
        ll, gamma = stats.mixture_posterior(0.3, l1, l0, weights)
        assert ll == pytest.approx(want_ll, rel=1e-13)
        np.testing.assert_allclose(gamma, want_gamma, rtol=1e-12, atol=1e-300)
        assert np.all(gamma[50:100] == 0.0) and np.all(gamma[100:150] == 1.0)
        mix = 0.3 * np.exp(l1[150:]) + 0.7 * np.exp(l0[150:])  # the ordinary rows, by the definition
        np.testing.assert_allclose(gamma[150:], 0.3 * np.exp(l1[150:]) / mix, rtol=1e-9)
        rest = ll - float(np.dot(weights[:150], _ll_rows(l1[:150], l0[:150])))
        assert rest == pytest.approx(float(np.dot(weights[150:], np.log(mix))), rel=1e-11)


def _ll_rows(l1, l0):
    """Each row's log mixture likelihood by logaddexp (the reference for the extreme rows)."""
    return np.logaddexp(np.log(0.3) + l1, np.log(0.7) + l0)
