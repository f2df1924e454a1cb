"""Issue 11: the model checked against data it did not generate.

Votes come from :mod:`comparemode.scenarios`, a simulator written apart from
``models/simulate.py``: mu estimated by the EM, the checks that run with every EM fit (a given
mu, favoured-model dispersion, drift), the models offered when a check fails, and the filter's
promise that holds or is withdrawn."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import comparemode as cm
from comparemode.errors import ConfigError, MisfitWarning, MuError, NotIdentifiableError
from comparemode.inference.misfit import drift_check, vote_agreement
from comparemode.scenarios import SCENARIOS, simulate_scenario

N = 3000


def fit(name: str, seed: int = 1, **kw):
    sc = simulate_scenario(name, N, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MisfitWarning)
        em = cm.TwoTypeEM(random_seed=seed, **kw).fit(sc.votes, mu=sc.told_mu)
    return sc, em, [w for w in caught if issubclass(w.category, MisfitWarning)]


@pytest.fixture(scope="module")
def fits():
    return {name: fit(name) for name in ("control", "mu_low", "mu_high", "partial", "drift", "topic")}


# ----------------------------------------------------------------------------- the simulator


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenarios_are_valid_votes_with_a_truth(name):
    sc = simulate_scenario(name, 400, 3)
    votes = cm.validate_votes(sc.votes)
    assert set(votes["model_a"]) | set(votes["model_b"]) == {"alpha", "beta"}
    assert (votes["model_a"] != votes["model_b"]).all()
    assert votes["time"].is_monotonic_increasing  # rows in time order
    assert len(sc.vote_attentive) == len(votes)
    users = sc.users
    assert users.index.is_unique and len(users) == 400
    assert users["n_votes"].sum() == len(votes)
    assert users["p_oracle"].between(0, 1).all()
    # the user-level truth agrees with the share of attentive votes (under partial attention
    # theta is the propensity each vote was drawn with, so the realised share scatters round it)
    share = pd.Series(sc.vote_attentive, index=votes["user"]).groupby(level=0).mean().reindex(users.index)
    if name == "partial":
        assert np.corrcoef(share, users["theta"])[0, 1] > 0.8
    else:
        np.testing.assert_allclose(share, users["theta"])
    assert (users["attentive"] == (users["theta"] >= 0.5 if name != "drift" else users["theta"] > 0.5)).all()


def test_scenario_oracle_is_calibrated_on_its_own_process():
    """The oracle is the Bayes rule of the true process: among users it calls attentive with
    probability p, a share p are (checked by bins, over scenarios whose oracle integrates out
    a hidden variable in a different way each)."""
    for name in ("control", "partial", "drift", "topic", "careless_mix"):
        sc = simulate_scenario(name, 4000, 11)
        p, truth = sc.users["p_oracle"].to_numpy(), sc.users["attentive"].to_numpy()
        bins = np.digitize(p, [0.2, 0.4, 0.6, 0.8])
        for b in np.unique(bins):
            m = bins == b
            if m.sum() >= 200:
                se = math.sqrt(p[m].mean() * (1 - p[m].mean()) / m.sum())
                assert abs(truth[m].mean() - p[m].mean()) < 4 * se + 0.01, (name, b)


def test_scenario_bad_input():
    with pytest.raises(ConfigError, match="unknown scenario"):
        simulate_scenario("nope")
    with pytest.raises(ConfigError, match="n_users"):
        simulate_scenario("control", n_users=1)
    with pytest.raises(ConfigError, match="random_seed"):
        simulate_scenario("control", random_seed=-1)
    a = simulate_scenario("drift", 300, 5)
    b = simulate_scenario("drift", 300, 5)
    pd.testing.assert_frame_equal(a.votes, b.votes)  # reproducible from the seed


# ----------------------------------------------------------------------------- mu estimated


@pytest.mark.parametrize("name", ["control", "mu_low", "mu_high"])
def test_mu_estimate_recovers_mu_from_another_simulator(name):
    sc = simulate_scenario(name, N, 2)
    em = cm.TwoTypeEM(checks=False).fit(sc.votes, mu="estimate")
    assert em.reference_["source"] == "estimated" and em.reference_["model"] == "alpha"
    assert abs(em.params_["mu"] - sc.mu_true) < 0.02
    iv = em.mu_interval_
    assert iv["lower"] < em.params_["mu"] < iv["upper"] and iv["upper"] - iv["lower"] < 0.05
    assert em.users_["p_attentive"].between(0, 1).all()


def test_mu_estimate_names_its_model_and_is_monotone():
    sc = simulate_scenario("control", 1000, 4)
    about_beta = cm.TwoTypeEM(checks=False).fit(sc.votes, mu={"beta": "estimate"})
    about_alpha = cm.TwoTypeEM(checks=False).fit(sc.votes, mu="estimate")
    assert about_beta.reference_["model"] == "beta"
    assert about_beta.params_["mu"] == pytest.approx(1 - about_alpha.params_["mu"], abs=1e-6)
    assert about_beta.loglik_ == pytest.approx(about_alpha.loglik_, rel=1e-9)
    h = about_alpha.loglik_history_.to_numpy()
    assert np.all(np.diff(h) >= -1e-9 * (1 + abs(h[-1])))


def test_mu_estimate_on_the_packages_own_simulator(recovery_sim):
    em = cm.TwoTypeEM(checks=False).fit(recovery_sim.votes, mu="estimate")
    assert abs(em.params_["mu"] - 0.7) < 0.02


def test_mu_interval_covers_in_repeated_samples():
    """The 94% profile-likelihood interval of an estimated mu covers the truth about 94% of
    the time (30 small data sets; at least 24 hits, a binomial 1% lower bound)."""
    hits = 0
    for seed in range(30):
        sc = simulate_scenario("control", 600, 100 + seed)
        iv = cm.TwoTypeEM(checks=False).fit(sc.votes, mu="estimate").mu_interval_
        hits += iv["lower"] <= sc.mu_true <= iv["upper"]
    assert hits >= 24


def test_mu_estimate_bad_input():
    many = cm.simulate_votes(n_users=50, votes_per_user=6, strengths={"a": 1, "b": 0, "c": -1}, random_seed=1).votes
    with pytest.raises(MuError, match="exactly two models"):
        cm.TwoTypeEM().fit(many, mu="estimate")
    votes = simulate_scenario("control", 50, 1).votes
    with pytest.raises(MuError, match="does not appear"):
        cm.TwoTypeEM().fit(votes, mu={"gamma": "estimate"})
    with pytest.raises(MuError, match="ambiguous"):
        cm.TwoTypeEM().fit(votes.assign(estimate=0.6), mu="estimate")
    one_each = votes.drop_duplicates("user")
    with pytest.raises(NotIdentifiableError, match="at most one decisive vote"):
        cm.TwoTypeEM().fit(one_each[one_each["winner"] != "tie"], mu="estimate")
    with pytest.raises(MuError, match="not available here"):
        cm.HomogeneousEM().fit(votes, mu="estimate")
    with pytest.raises(MuError, match="model_config"):
        cm.BayesianTwoType().fit(votes, mu="estimate")


# ----------------------------------------------------------------------------- the checks


def test_checks_pass_on_the_control(fits):
    _, em, warned = fits["control"]
    assert em.checks_["passed"].all() and not warned
    assert list(em.checks_.index) == ["mu", "favoured-model dispersion", "drift"]
    assert (em.checks_["status"] == "passed").all()
    row = em.checks_.loc["mu"]
    assert row["lower"] <= 0.7 <= row["upper"]  # the given mu inside the votes' interval
    assert em.checks_.attrs["level"] == 0.01
    np.testing.assert_allclose(em.checks_["level"], 0.01 / 3)  # Bonferroni over the checks that ran
    assert em.alternatives_.empty and em.alternative_ is None
    assert em.checks_summary()["passed"]


@pytest.mark.parametrize("name,true_mu", [("mu_low", 0.8), ("mu_high", 0.6)])
def test_a_wrong_mu_is_named_with_both_numbers(fits, name, true_mu):
    sc, em, warned = fits[name]
    row = em.checks_.loc["mu"]
    assert row["status"] == "FAILED" and not (row["lower"] <= 0.7 <= row["upper"])
    assert abs(row["expected"] - true_mu) < 0.02 and row["lower"] < true_mu < row["upper"]
    assert row["statistic"] > 0 and row["p_value"] < row["level"]
    text = " ".join(str(w.message) for w in warned)
    assert "0.7" in text and f"{row['expected']:.3f}" in text and "mu='estimate'" in text
    assert em.alternatives_.index[em.alternatives_["chosen"]][0] == "two-type, mu estimated"
    assert abs(em.alternative_.params_["mu"] - true_mu) < 0.02


def test_partial_attention_fails_dispersion_low_and_prefers_the_continuum(fits):
    _, em, warned = fits["partial"]
    row = em.checks_.loc["favoured-model dispersion"]
    assert row["status"] == "FAILED" and row["statistic"] < 0  # users differ LESS than two types allow
    assert "matter of degree" in row["message"]
    assert em.alternatives_.index[em.alternatives_["chosen"]][0] == "continuous quality, mu as fitted"
    assert {"p_attentive", "quality"} <= set(em.alternative_users_.columns)


def test_topic_heterogeneity_fails_dispersion_high_and_prefers_a_spread_mu(fits):
    _, em, _ = fits["topic"]
    row = em.checks_.loc["favoured-model dispersion"]
    assert row["status"] == "FAILED" and row["statistic"] > 0
    assert em.alternatives_.index[em.alternatives_["chosen"]][0] == "two-type, mu varies by user"
    kappa = em.alternative_.params_["mu_kappa"]
    assert 8 < kappa < 60  # the scenario's concentration is 20


def test_drift_fails_the_drift_check_and_not_the_others(fits):
    _, em, warned = fits["drift"]
    row = em.checks_.loc["drift"]
    assert row["status"] == "FAILED" and row["statistic"] > 0  # agreement falls in the second half
    assert "second half" in row["message"] and any("drift" in str(w.message) for w in warned)
    assert em.checks_.loc["mu", "status"] == "passed"


def test_drift_check_is_exact_under_exchangeable_votes():
    """Shuffling each user's votes in time makes them exchangeable: the statistic is then
    centred with unit spread whatever the data (here the drift scenario itself)."""
    sc = simulate_scenario("drift", 1500, 9)
    v = sc.votes
    code, _ = pd.factorize(v["user"])
    outcome = np.where(v["winner"] == "model_a", 0, np.where(v["winner"] == "model_b", 1, 2))
    mu_row = np.where(v["model_a"] == "alpha", 0.7, 0.3)
    inf, agree = vote_agreement(outcome, mu_row)
    rng = np.random.default_rng(0)
    z = [drift_check(code, inf[p], agree[p], code.max() + 1)["statistic"] for p in (rng.permutation(len(v)) for _ in range(200))]
    # a permutation of all rows keeps users' votes but shuffles their order
    z = np.array(z)
    assert abs(z.mean()) < 0.25 and 0.8 < z.std() < 1.2
    assert drift_check(code, inf, agree, code.max() + 1)["statistic"] > 4


def test_drift_check_variance_matches_enumeration():
    """The hypergeometric variance of the first-half agreements equals brute-force enumeration
    of every order of one user's votes."""
    from itertools import permutations

    agree_one = np.array([1, 1, 0, 1, 0], dtype=bool)
    first = []
    for perm in set(permutations(range(5))):
        first.append(agree_one[list(perm)][:2].sum())
    first = np.array(first, dtype=float)
    d, h, K = 5, 2, agree_one.sum()
    assert first.mean() == pytest.approx(h * K / d)
    assert first.var() == pytest.approx(h * (K / d) * (1 - K / d) * (d - h) / (d - 1))


def test_order_column_sets_the_time_order():
    sc = simulate_scenario("drift", 1500, 3)
    shuffled = sc.votes.sample(frac=1.0, random_state=0)
    em_rows = cm.TwoTypeEM(random_seed=0).fit(shuffled, mu=sc.told_mu)
    em_time = cm.TwoTypeEM(random_seed=0).fit(shuffled, mu=sc.told_mu, order="time")
    assert em_rows.checks_.loc["drift", "status"] == "passed"  # row order carries no time
    assert em_time.checks_.loc["drift", "status"] == "FAILED"
    reverse = shuffled.assign(back=-shuffled["time"])
    em_back = cm.TwoTypeEM(random_seed=0).fit(reverse, mu=sc.told_mu, order="back")
    # time reversed: agreement now rises in the second half (halves of odd length differ, so
    # the two statistics are not exact negatives)
    assert em_back.checks_.loc["drift", "statistic"] < -2 < 2 < em_time.checks_.loc["drift", "statistic"]


def test_checks_bad_input():
    votes = simulate_scenario("control", 100, 1).votes
    with pytest.raises(ConfigError, match="order must name a column"):
        cm.TwoTypeEM().fit(votes, mu={"alpha": 0.7}, order="when")
    with pytest.raises(ConfigError, match="missing"):
        cm.TwoTypeEM().fit(votes.assign(when=np.where(np.arange(len(votes)) == 3, np.nan, 1.0)), mu={"alpha": 0.7}, order="when")
    with pytest.raises(ConfigError, match="checks must be True or False"):
        cm.TwoTypeEM(checks="yes").fit(votes, mu={"alpha": 0.7})
    with pytest.raises(ConfigError, match="check_draws"):
        cm.TwoTypeEM(check_draws=5).fit(votes, mu={"alpha": 0.7})
    with pytest.raises(ConfigError, match="mu_spread"):
        cm.TwoTypeEM(mu_spread=1).fit(votes, mu={"alpha": 0.7})
    many = cm.simulate_votes(n_users=40, votes_per_user=6, strengths={"a": 1, "b": 0, "c": -1}, random_seed=1)
    with pytest.raises(ConfigError, match="two models"):
        cm.TwoTypeEM(mu_spread=True).fit(many.votes, strengths=many.strengths)


def test_checks_off_and_not_run_are_stated():
    votes = simulate_scenario("mu_low", 600, 1).votes
    em = cm.TwoTypeEM(checks=False).fit(votes, mu={"alpha": 0.7})
    assert (em.checks_["status"] == "not run").all() and em.checks_["passed"].all()
    assert em.checks_["message"].str.contains("checks=False").all()
    est = cm.TwoTypeEM().fit(votes, mu="estimate")
    assert est.checks_.loc["mu", "status"] == "not run" and "estimated" in est.checks_.loc["mu", "message"]


def test_many_models_checks_run_on_strengths_and_the_joint_model():
    strengths = {f"m{i}": s for i, s in enumerate(np.linspace(-1.2, 1.2, 6))}
    sim = cm.simulate_votes(n_users=800, votes_per_user=15, strengths=strengths, random_seed=5)
    em = cm.TwoTypeEM().fit(sim.votes, strengths=sim.strengths)
    assert em.checks_.loc["mu", "status"] == "not run"
    assert em.checks_.loc[["favoured-model dispersion", "drift"], "status"].eq("passed").all()
    joint = cm.JointEM(n_starts=1).fit(sim.votes)
    assert joint.checks_.loc[["favoured-model dispersion", "drift"], "status"].eq("passed").all()
    fav = joint.users_[["n_favoured", "n_informative", "expected_favoured"]]
    assert (fav["n_favoured"] <= fav["n_informative"]).all() and (fav["n_informative"] <= joint.users_["n_decisive"]).all()


# ----------------------------------------------------------------------------- the promise


def test_filter_promise_holds_or_is_void(fits):
    sc, em, _ = fits["control"]
    kept = em.filter_fdr(sc.votes, 0.1)
    assert kept.summary["promise"]["status"] == "kept" and kept.alternative is None
    sc, em, _ = fits["mu_low"]
    void = em.filter_fdr(sc.votes, 0.1)
    p = void.summary["promise"]
    assert p["status"] == "void" and set(p["failed_checks"]) >= {"mu"} and p["better_fit"] == "two-type, mu estimated"
    assert p["statement"].startswith("VOID")
    alt = void.alternative
    assert alt is not None and alt.summary["model"] == "two-type, mu estimated"
    careless = ~sc.users["attentive"]
    real = careless.reindex(alt.users.index[alt.users["keep"]]).mean()
    assert real <= 0.12  # the better fit keeps the promise the given mu broke
    assert careless.reindex(void.users.index[void.users["keep"]]).mean() > 0.15
    # a plain table carries the checks in its attrs: the same verdict without the alternative
    plain = cm.filter_fdr(sc.votes, em.users_, alpha=0.1)
    assert plain.summary["promise"]["status"] == "void" and plain.alternative is None
    bare = pd.DataFrame({"p_attentive": em.users_["p_attentive"].to_numpy()}, index=em.users_.index)
    assert cm.filter_fdr(sc.votes, bare, alpha=0.1).summary["promise"]["status"] == "unchecked"


def test_win_rates_show_the_agreement_selection(fits):
    sc, em, _ = fits["control"]
    res = em.filter_fdr(sc.votes, 0.1)
    win = res.summary["favoured_win_rate"]
    v = sc.votes
    dec = v["winner"] != "tie"
    alpha_won = ((v["winner"] == "model_a") & (v["model_a"] == "alpha")) | ((v["winner"] == "model_b") & (v["model_b"] == "alpha"))
    assert win["all"] == pytest.approx(alpha_won[dec].mean())
    kept = v.index.isin(res.kept.index)
    assert win["kept"] == pytest.approx(alpha_won[dec & kept].mean())
    assert win["model_attentive"] == pytest.approx(0.7)
    assert win["kept_minus_model"] > 0.01  # kept for agreeing: the reference looks better than it is


@pytest.mark.parametrize("name", ["control", "mu_low", "mu_high", "partial", "drift", "topic"])
def test_promise_kept_where_checks_pass_else_withdrawn(fits, name):
    """Where every check passes the realised careless share of the FDR(0.1) set is at most
    0.12; where it would not be, a check fails with a MisfitWarning."""
    sc, em, warned = fits[name]
    res = em.filter_fdr(sc.votes, 0.1)
    realised = (~sc.users["attentive"]).reindex(res.users.index[res.users["keep"]]).mean()
    if em.checks_["passed"].all():
        assert realised <= 0.12
    if realised > 0.12:
        assert not em.checks_["passed"].all() and warned and res.summary["promise"]["status"] == "void"


def test_posterior_filters_report_the_win_rates(bayes_fit, bayes_sim):
    """The MCMC user table carries the favoured-model counts too, so its filters report the
    win rates; they come with no misfit checks (the posterior's own are in model checking)."""
    res = cm.filter_fdr(bayes_sim.votes, bayes_fit.users_, alpha=0.1)
    win = res.summary["favoured_win_rate"]
    assert win is not None and win["model_attentive"] == pytest.approx(0.7)
    assert 0.5 < win["all"] < win["kept"] < 1
    assert res.summary["promise"]["status"] == "unchecked"


def test_scenario_leave_one_out_oracle_is_the_oracle_without_the_vote():
    from comparemode.scenarios import _oracle, oracle_leave_one_out

    sc = simulate_scenario("topic", 200, 4)
    loo = oracle_leave_one_out(sc)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(sc.votes), 8, replace=False):
        user = sc.votes["user"].iloc[i]
        rest = sc.votes.drop(index=sc.votes.index[i])
        ids = sc.users.index.to_numpy()
        p = _oracle("topic", rest, ids, sc.mu_true, sc.users)
        assert loo[i] == pytest.approx(p[sc.users.index.get_loc(user)], rel=1e-9)
    assert oracle_leave_one_out(simulate_scenario("partial", 50, 1)) is None
