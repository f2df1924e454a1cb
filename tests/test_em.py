"""EM: recovery, monotone likelihood, agreement with an uncompressed computation, settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

from comparemode import TwoTypeEM, simulate_votes
from comparemode.errors import ConfigError, NotFittedError
from comparemode.models.stats import EncodedVotes
from comparemode.reference import encode_rows, resolve_reference

from conftest import RECOVERY, assert_monotone


def _accuracy(p, truth, threshold=0.5):
    return float(np.mean((np.asarray(p) >= threshold) == np.asarray(truth)))


def test_recovery_two_models(recovery_sim, recovery_fit, recovery_fit_random):
    """Issue 2 acceptance: pi within 0.03; accuracy within 0.02 of the true-parameter rule."""
    a, b = RECOVERY["careless_first"]
    assert (RECOVERY["n_users"], RECOVERY["votes_per_user"], RECOVERY["mu"], RECOVERY["pi"]) == (2000, 20, 0.7, 0.6)
    assert a / (a + b) == pytest.approx(0.65) and b < 1.5 < a  # mass from 1/2 up to near 1
    assert (recovery_sim.votes["winner"] == "tie").mean() == pytest.approx(0.2, abs=0.01)
    em = recovery_fit
    assert_monotone(em.loglik_history_)
    assert em.converged_ and em.stop_reason_ == "tolerance"
    truth = recovery_sim.users["attentive"].reindex(em.users_.index)
    oracle = recovery_sim.true_p_attentive().reindex(em.users_.index)
    acc = _accuracy(em.users_["p_attentive"], truth)
    acc_oracle = _accuracy(oracle, truth)
    acc_random = _accuracy(recovery_fit_random.users_["p_attentive"], truth)
    print(
        f"\nrecovery: pi true 0.6, beta-careless EM {em.params_['pi']:.4f}, random-clicker EM "
        f"{recovery_fit_random.params_['pi']:.4f}\naccuracy: beta-careless EM {acc:.4f}, true parameters "
        f"{acc_oracle:.4f}, careless rates fixed at 1/2 {acc_random:.4f}"
    )
    assert abs(em.params_["pi"] - 0.6) <= 0.03
    assert abs(acc - acc_oracle) <= 0.02
    assert em.params_["careless_first_mean"] == pytest.approx(0.65, abs=0.03)
    assert em.params_["tie_attentive_mean"] == pytest.approx(0.2, abs=0.03)
    assert em.params_["tie_careless_mean"] == pytest.approx(0.2, abs=0.03)
    assert_monotone(recovery_fit_random.loglik_history_)
    # the random clicker misses the position habits: a worse fit to the same votes
    assert recovery_fit_random.loglik_ < em.loglik_


def _uncompressed_p_attentive(votes, mu_model, mu, params):
    """Per-user P(attentive) from the raw votes, one user at a time (no counts, no patterns)."""
    out = {}
    a1, b1 = params["tie_attentive"]
    a0, b0 = params["tie_careless"]
    ca, cb = params["careless_first"]
    for user, v in votes.groupby("user", sort=False):
        l1 = l0 = 0.0
        tie = v["winner"].isin(["tie", "tie (bothbad)"]).to_numpy()
        n, t = len(v), int(tie.sum())
        dec = v[~tie]
        for _, row in dec.iterrows():
            p_a = mu if row["model_a"] == mu_model else 1 - mu
            l1 += np.log(p_a if row["winner"] == "model_a" else 1 - p_a)
        f = int((dec["winner"] == "model_a").sum())
        l0 += betaln(f + ca, len(dec) - f + cb) - betaln(ca, cb)
        l1 += betaln(t + a1, n - t + b1) - betaln(a1, b1)
        l0 += betaln(t + a0, n - t + b0) - betaln(a0, b0)
        pi = params["pi"]
        out[user] = 1 / (1 + np.exp(np.log(1 - pi) + l0 - np.log(pi) - l1))
    return pd.Series(out)


def test_compressed_equals_uncompressed(small_sim, small_fit):
    em = small_fit
    assert em.n_patterns_ < len(em.users_)
    direct = _uncompressed_p_attentive(small_sim.votes, "model_x", 0.7, em.user_params())
    np.testing.assert_allclose(em.users_["p_attentive"].to_numpy(), direct.reindex(em.users_.index).to_numpy(), rtol=0, atol=1e-9)


def test_fit_encoded_equals_fit(small_sim, small_fit):
    ref = resolve_reference(small_sim.votes, **small_sim.reference)
    enc, users = encode_rows(small_sim.votes, ref)
    em = TwoTypeEM(random_seed=1).fit_encoded(enc, mu=0.7, user_index=users)
    pd.testing.assert_frame_equal(em.users_, small_fit.users_)
    assert em.loglik_ == small_fit.loglik_


def test_same_seed_same_result(small_sim):
    a = TwoTypeEM(random_seed=5).fit(small_sim.votes, **small_sim.reference)
    b = TwoTypeEM(random_seed=5).fit(small_sim.votes, **small_sim.reference)
    pd.testing.assert_frame_equal(a.users_, b.users_)
    pd.testing.assert_series_equal(a.params_, b.params_)


def test_starts_table_and_iteration_cap(small_sim):
    em = TwoTypeEM(n_starts=4, max_iter=3, random_seed=2).fit(small_sim.votes, **small_sim.reference)
    assert len(em.starts_) == 4 and em.starts_["chosen"].sum() == 1
    assert not em.converged_ and em.stop_reason_ == "max_iter" and em.n_iter_ == 3
    assert len(em.loglik_history_) == 4  # start value + 3 iterations
    assert_monotone(em.loglik_history_)
    np.testing.assert_allclose(em.loss_history_, -em.loglik_history_)


def test_careless_modes_nest(recovery_sim, recovery_fit):
    shared = TwoTypeEM(careless="shared").fit(recovery_sim.votes, **recovery_sim.reference)
    assert_monotone(shared.loglik_history_)
    # the Beta model contains the shared rate as a limit, so it fits at least as well
    assert recovery_fit.loglik_ >= shared.loglik_ - 1e-6
    assert 0 < shared.params_["careless_first_mean"] < 1


def test_ties_drop_equals_fitting_without_tie_rows(small_sim):
    votes = small_sim.votes
    dropped = TwoTypeEM(ties="drop", random_seed=0).fit(votes, **small_sim.reference)
    assert_monotone(dropped.loglik_history_)
    assert np.isnan(dropped.params_["tie_attentive_mean"])
    no_ties = votes[~votes["winner"].isin(["tie"])]
    plain = TwoTypeEM(random_seed=0).fit(no_ties, **small_sim.reference)
    assert plain.ties_ == "drop"  # no tie in the data: the tie part switches off by itself
    assert dropped.loglik_ == pytest.approx(plain.loglik_, rel=1e-9)
    common = plain.users_.index
    np.testing.assert_allclose(dropped.users_.loc[common, "p_attentive"], plain.users_["p_attentive"], atol=1e-6)
    # users with only ties keep their prior probability: their votes say nothing
    only_ties = dropped.users_[dropped.users_["n_decisive"] == 0]
    np.testing.assert_allclose(only_ties["p_attentive"], dropped.params_["pi"])
    assert dropped.users_["n_votes"].sum() == len(votes)


def test_many_models_with_strengths(arena_sim):
    em = TwoTypeEM().fit(arena_sim.votes, **arena_sim.reference)
    assert_monotone(em.loglik_history_)
    assert em.reference_["kind"] == "row"
    assert em.params_["pi"] == pytest.approx(0.6, abs=0.06)
    truth = arena_sim.users["attentive"].reindex(em.users_.index)
    oracle = arena_sim.true_p_attentive().reindex(em.users_.index)
    assert _accuracy(em.users_["p_attentive"], truth) >= _accuracy(oracle, truth) - 0.03


def test_mu_column_strengths_and_elo_agree(arena_sim):
    votes = arena_sim.votes
    beta = arena_sim.strengths
    by_strength = TwoTypeEM().fit(votes, strengths=beta)
    mu = 1 / (1 + np.exp(-(beta.reindex(votes["model_a"]).to_numpy() - beta.reindex(votes["model_b"]).to_numpy())))
    by_column = TwoTypeEM().fit(votes.assign(mu=mu))
    elo = TwoTypeEM().fit(votes, strengths=beta * 400 / np.log(10), scale="elo")
    np.testing.assert_allclose(by_column.users_["p_attentive"], by_strength.users_["p_attentive"], atol=1e-9)
    np.testing.assert_allclose(elo.users_["p_attentive"], by_strength.users_["p_attentive"], atol=1e-9)


def test_scalar_mu_orientation(small_sim):
    a = TwoTypeEM().fit(small_sim.votes, mu={"model_x": 0.7})
    b = TwoTypeEM().fit(small_sim.votes, mu={"model_y": 0.3})
    np.testing.assert_allclose(a.users_["p_attentive"], b.users_["p_attentive"], atol=1e-12)


def test_users_with_thousands_of_votes_stay_finite():
    sim = simulate_votes(n_users=40, votes_per_user=9000, random_seed=4)
    em = TwoTypeEM(n_starts=2).fit(sim.votes, **sim.reference)
    assert_monotone(em.loglik_history_)
    assert np.isfinite(em.users_[["llr", "p_attentive", "loglik_attentive"]].to_numpy()).all()
    truth = sim.users["attentive"].reindex(em.users_.index)
    assert _accuracy(em.users_["p_attentive"], truth) == 1.0


def test_user_table_columns(small_fit, small_sim):
    u = small_fit.users_
    assert u.index.name == "user" and len(u) == small_sim.votes["user"].nunique()
    assert u["n_votes"].sum() == len(small_sim.votes)
    np.testing.assert_array_equal(u["n_first"] + u["n_second"] + u["n_ties"], u["n_votes"])
    np.testing.assert_allclose(u["llr"], u["loglik_attentive"] - u["loglik_careless"])
    assert ((u["p_attentive"] >= 0) & (u["p_attentive"] <= 1)).all()
    # P(attentive) is monotone in the log-likelihood ratio
    order = np.argsort(u["llr"].to_numpy())
    assert np.all(np.diff(u["p_attentive"].to_numpy()[order]) >= -1e-15)


@pytest.mark.parametrize(
    "kwargs,name",
    [({"careless": "sometimes"}, "careless"), ({"ties": "keep"}, "ties"), ({"n_starts": 0}, "n_starts"), ({"max_iter": 1.5}, "max_iter"), ({"tol": -1}, "tol")],
)
def test_bad_settings(kwargs, name, small_sim):
    with pytest.raises(ConfigError, match=name):
        TwoTypeEM(**kwargs).fit(small_sim.votes, **small_sim.reference)


def test_not_fitted():
    em = TwoTypeEM()
    with pytest.raises(NotFittedError, match="fit"):
        em.loss_history_
    with pytest.raises(NotFittedError):
        em.filter(pd.DataFrame({"user": [1]}))


def test_get_params_round_trip():
    em = TwoTypeEM(careless="random", n_starts=2, random_seed=9)
    assert TwoTypeEM(**em.get_params()).get_params() == em.get_params()


def test_encoded_fit_needs_valid_mu():
    enc = EncodedVotes(user=np.array([0, 1]), code=np.array([0, 4], dtype=np.int8), n_users=2)
    from comparemode.errors import MuError

    with pytest.raises(MuError, match="between 0 and 1"):
        TwoTypeEM().fit_encoded(enc, mu=1.5)


def test_decisive_evidence_column(small_sim, small_fit):
    """llr_decisive_per_vote = (attentive - careless log-likelihood of the decisive votes) / decisive votes."""
    from scipy.special import betaln

    u = small_fit.users_
    p = small_fit.user_params()
    a, b = p["careless_first"]
    d = u["n_decisive"].to_numpy(float)
    s = u["n_stronger"] * np.log(0.7) + (d - u["n_stronger"]) * np.log(0.3)
    pos = betaln(u["n_first"] + a, u["n_second"] + b) - betaln(a, b)
    expected = np.where(d > 0, (s - pos) / np.where(d > 0, d, 1), np.nan)
    np.testing.assert_allclose(u["llr_decisive_per_vote"].to_numpy(), expected, rtol=1e-10)
    # with ties dropped from the likelihood the model sees only decisive votes: the scores coincide
    dropped = TwoTypeEM(ties="drop").fit(small_sim.votes, **small_sim.reference).users_
    ok = dropped["n_decisive"] > 0
    np.testing.assert_allclose(dropped.loc[ok, "llr_decisive_per_vote"], dropped.loc[ok, "llr_per_vote"], rtol=1e-10)
    assert dropped.loc[~ok, "llr_decisive_per_vote"].isna().all()
