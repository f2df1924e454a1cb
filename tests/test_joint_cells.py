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
