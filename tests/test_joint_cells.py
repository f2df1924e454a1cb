"""The joint EM's decisive votes grouped into (model_a, model_b, winner) cells (issue 16): the
per-user attentive log-likelihood and the strengths' MM step from the cells equal the same
sums over the votes one by one."""

import numpy as np
import pytest

from comparemode.inference.bradley_terry import bt_mm_step, log_sigmoid
from comparemode.inference.joint import _JointProblem


def _design(n_votes, n_models, n_users, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    problem = _JointProblem.__new__(_JointProblem)  # only the design parts the cells need
    problem.a, problem.b, problem.a_won = a, b, rng.random(n_votes) < 0.6
    problem.user = rng.integers(0, n_users, n_votes).astype(np.intp)
    problem.n_models, problem.n_users = n_models, n_users
    problem._aggregate_decisive()
    return problem, rng


@pytest.mark.parametrize("n_models", [2, 7, 60])
def test_cells_give_the_per_vote_sums(n_models):
    problem, rng = _design(20_000, n_models, 900, n_models)
    assert problem.k_a.size <= 2 * n_models * (n_models - 1)
    np.testing.assert_array_equal(problem.k_a[problem.v_key], problem.a)
    np.testing.assert_array_equal(problem.k_b[problem.v_key], problem.b)
    np.testing.assert_array_equal(problem.k_won[problem.v_key], problem.a_won)
    beta = rng.normal(0, 1, n_models)
    d = beta[problem.a] - beta[problem.b]
    per_vote = np.bincount(problem.user, weights=np.where(problem.a_won, log_sigmoid(d), log_sigmoid(-d)), minlength=problem.n_users)
    np.testing.assert_allclose(problem.decisive_attentive({"strengths": beta}), per_vote, rtol=1e-12, atol=1e-12)
    gamma = rng.random(problem.n_users)
    for prior in (0.0, 1.0):
        cells = bt_mm_step(beta, problem.k_a, problem.k_b, problem.k_won, problem.cell_weights(gamma), prior, n_models)
        votes = bt_mm_step(beta, problem.a, problem.b, problem.a_won, gamma[problem.user], prior, n_models)
        np.testing.assert_allclose(cells, votes, rtol=1e-11, atol=1e-12)
    np.testing.assert_array_equal(problem.k_votes, np.bincount(problem.v_key))


@pytest.mark.parametrize("n_rows", [1_000, 250_000])
def test_gather_bincount_is_bincount_of_the_gathered_values_bit_for_bit(n_rows):
    """The E-step's and the MM step's per-user and per-cell sums (gather_bincount, compiled
    from NUMBA_MIN_VOTES rows on) equal np.bincount of the gathered values exactly: the same
    sums in the same order."""
    from comparemode.models.stats import NUMBA_MIN_VOTES, gather_bincount

    assert (n_rows >= NUMBA_MIN_VOTES) == (n_rows == 250_000)  # both paths are exercised
    rng = np.random.default_rng(n_rows)
    groups = np.sort(rng.integers(0, n_rows // 7, n_rows))
    index = rng.integers(0, 999, n_rows)
    table = rng.normal(size=999) * 10.0 ** rng.integers(-8, 8, 999)
    for g, i, n in ((groups, index, n_rows // 7 + 3), (index, groups, 999)):
        t = table if n == n_rows // 7 + 3 else rng.normal(size=n_rows // 7)
        got = gather_bincount(g, i, t, n)
        np.testing.assert_array_equal(got, np.bincount(g, weights=t[i], minlength=n))
        assert got.shape == (n,) and got.dtype == np.float64


@pytest.mark.parametrize("prior", [0.0, 1.0])
def test_newton_m_step_never_lowers_the_objective_and_reaches_the_weighted_maximum(prior):
    """The joint EM's M-step for the strengths (issue 16): one safeguarded Newton step on the
    cells' attentive weights. Every step keeps or raises the weighted Bradley-Terry objective
    (a generalised EM step, from far away too), and repeated steps reach the maximum that
    Newton to convergence on the pairs finds, and that MM creeps towards."""
    from comparemode.inference.bradley_terry import _pair_fit, bt_newton_step, bt_objective

    problem, rng = _design(20_000, 12, 900, 3)
    w = problem.cell_weights(rng.random(problem.n_users))
    beta = rng.normal(0, 3, 12)  # far from the maximum: the step may have to be halved
    f = bt_objective(beta, problem.k_a, problem.k_b, problem.k_won, w, prior)
    for _ in range(30):
        beta = bt_newton_step(beta, problem.k_a, problem.k_b, problem.k_won, w, prior, 12)
        f_new = bt_objective(beta, problem.k_a, problem.k_b, problem.k_won, w, prior)
        assert f_new >= f
        f = f_new
    wa, wb = np.where(problem.k_won, w, 0.0), np.where(problem.k_won, 0.0, w)
    best, _, ok = _pair_fit(problem.k_a, problem.k_b, wa, wb, 12, prior, np.zeros(12), 1e-12, 100)
    assert ok
    np.testing.assert_allclose(beta - beta.mean(), best - best.mean(), atol=1e-9)
    mm = np.zeros(12)
    for _ in range(30):
        mm = bt_mm_step(mm, problem.k_a, problem.k_b, problem.k_won, w, prior, 12)
    assert bt_objective(mm, problem.k_a, problem.k_b, problem.k_won, w, prior) <= f + 1e-9 * abs(f)


def test_evidence_sums_from_the_cells_equal_the_per_vote_sums():
    """The standard error's sums read each vote's attentive term from its cell: the same
    numbers as computing it vote by vote."""
    from comparemode.inference.joint import decisive_evidence_sums

    problem, rng = _design(20_000, 9, 900, 4)
    beta, rho = rng.normal(0, 1, 9), rng.uniform(0.05, 0.95, problem.n_users)
    cells = problem.decisive_evidence_sums(beta, rho)
    votes = decisive_evidence_sums(problem.user, problem.a, problem.b, problem.a_won, beta, rho, problem.n_users)
    for c, v in zip(cells, votes):
        np.testing.assert_array_equal(c, v)


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("per_vote_tie", [False, True])
def test_replicate_counts_engines_give_the_same_integers(first, per_vote_tie):
    """One replicate's per-user counts from its uniform draws: the compiled pass and the
    bincounts of the indicators count the same ties, first-position picks and picks of the
    favoured model (so a misfit check's replicates do not depend on the engine)."""
    from comparemode.models.stats import replicate_vote_counts

    rng = np.random.default_rng(5)
    n_users, n = 700, 9_000
    user = np.sort(rng.integers(0, n_users, n)).astype(np.intp)
    mu = rng.random(n)
    mu[:300] = 0.5  # votes on which mu favours no model
    args = (user, rng.random(n), rng.random(n), rng.random(n_users), rng.random(n) if per_vote_tie else None,
            rng.random(n_users) < 0.6, mu, rng.random(n_users), mu > 0.5, mu != 0.5, n_users, first)
    fast, slow = replicate_vote_counts(*args, engine="numba"), replicate_vote_counts(*args, engine="numpy")
    for f, s in zip(fast, slow):
        if s is None:
            assert f is None and not first
        else:
            np.testing.assert_array_equal(f, s)
    assert fast[0].sum() > 0 and fast[2].sum() > 0 and (fast[3] >= fast[2]).all()
    with pytest.raises(ValueError, match="engine"):
        replicate_vote_counts(*args, engine="gpu")
