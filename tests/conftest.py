"""Shared fixtures: simulated data sets and fitted models, built once per test session."""

from __future__ import annotations

import numpy as np
import pytest

from comparemode import TwoTypeEM, simulate_votes
from comparemode.models.simulate import DEFAULT_SIMULATION

#: The foundation issue's recovery setting is the simulator's built-in default: 2,000 users x
#: 20 votes, mu = 0.7, pi = 0.6, careless first-position rates ~ Beta(1.95, 1.05) (mean 0.65,
#: from random to strong first-position clickers), ties about 20% of votes.
RECOVERY = {k: v for k, v in DEFAULT_SIMULATION.items() if k != "models"}


def assert_monotone(history, rel=1e-9):
    """The observed log-likelihood never decreases (up to rounding)."""
    h = np.asarray(history, dtype=float)
    assert np.all(np.isfinite(h))
    drops = np.diff(h)
    assert np.all(drops >= -rel * (1.0 + np.abs(h[1:]))), f"largest decrease {drops.min()}"


@pytest.fixture(scope="session")
def recovery_sim():
    return simulate_votes(**RECOVERY, random_seed=20261127)


@pytest.fixture(scope="session")
def recovery_fit(recovery_sim):
    return TwoTypeEM(careless="beta", random_seed=0).fit(recovery_sim.votes, **recovery_sim.reference)


@pytest.fixture(scope="session")
def recovery_fit_random(recovery_sim):
    return TwoTypeEM(careless="random", random_seed=0).fit(recovery_sim.votes, **recovery_sim.reference)


@pytest.fixture(scope="session")
def small_sim():
    return simulate_votes(n_users=300, votes_per_user={"distribution": "poisson", "mean": 12}, random_seed=7)


@pytest.fixture(scope="session")
def small_fit(small_sim):
    return TwoTypeEM(random_seed=1).fit(small_sim.votes, **small_sim.reference)


@pytest.fixture(scope="session")
def arena_sim():
    strengths = {f"m{i:02d}": s for i, s in enumerate(np.linspace(-1.5, 1.5, 12))}
    return simulate_votes(n_users=600, votes_per_user=15, strengths=strengths, random_seed=11)


QUICK_SAMPLER = {"draws": 300, "tune": 300, "chains": 2, "cores": 1, "random_seed": 1, "progressbar": False}


@pytest.fixture(scope="session")
def bayes_sim():
    return simulate_votes(n_users=300, votes_per_user=12, random_seed=21)


@pytest.fixture(scope="session")
def bayes_fit(bayes_sim):
    """A small real MCMC fit (mu known), shared by the cheap tests of the Bayesian model."""
    from comparemode import BayesianTwoType

    model = BayesianTwoType(sampler_config=QUICK_SAMPLER)
    model.fit(bayes_sim.votes, **bayes_sim.reference)
    return model
