"""Where mu comes from, and every way it can be wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from comparemode import TwoTypeEM, read_strengths, simulate_votes
from comparemode.errors import MuError, NotIdentifiableError, StrengthsError
from comparemode.reference import resolve_reference


@pytest.fixture(scope="module")
def two_model_votes():
    return simulate_votes(n_users=60, votes_per_user=8, random_seed=2).votes


@pytest.mark.parametrize("value", [0.0, 1.0, 1.2, -0.1, float("nan"), "high"])
def test_scalar_mu_outside_unit_interval(two_model_votes, value):
    with pytest.raises(MuError, match="between 0 and 1"):
        TwoTypeEM().fit(two_model_votes, mu={"model_x": value})


def test_bare_float_mu_asks_for_the_model(two_model_votes):
    with pytest.raises(MuError, match=r"does not say which model.*mu=\{'<model>': 0.7\}"):
        TwoTypeEM().fit(two_model_votes, mu=0.7)


def test_mu_for_unknown_model(two_model_votes):
    with pytest.raises(MuError, match="'gpt-9'.*does not appear"):
        TwoTypeEM().fit(two_model_votes, mu={"gpt-9": 0.7})


def test_scalar_mu_needs_two_models(two_model_votes):
    votes = two_model_votes.copy()
    votes.loc[0, "model_b"] = "model_z"
    with pytest.raises(MuError, match="exactly two models.*3"):
        TwoTypeEM().fit(votes, mu={"model_x": 0.7})


def test_no_reference_at_all(two_model_votes):
    with pytest.raises(MuError, match="no reference probability"):
        TwoTypeEM().fit(two_model_votes)


def test_mu_and_strengths_together(two_model_votes):
    with pytest.raises(MuError, match="either mu or strengths"):
        TwoTypeEM().fit(two_model_votes, mu={"model_x": 0.7}, strengths={"model_x": 1, "model_y": 0})


def test_mu_column_outside_unit_interval(two_model_votes):
    votes = two_model_votes.assign(mu=0.6)
    votes.loc[3, "mu"] = 1.0
    with pytest.raises(MuError, match=r"mu.*\b3\b"):
        TwoTypeEM().fit(votes)


def test_strengths_missing_a_model(two_model_votes):
    with pytest.raises(StrengthsError, match=r"lacks 1 model.*'model_y'"):
        TwoTypeEM().fit(two_model_votes, strengths={"model_x": 1.0, "other": 0.0})


def test_strengths_as_strings():
    with pytest.raises(StrengthsError, match="finite numbers.*'b'"):
        read_strengths({"a": 1.0, "b": "strong"})


def test_strengths_nan_and_duplicates():
    with pytest.raises(StrengthsError, match="finite"):
        read_strengths(pd.Series({"a": 1.0, "b": np.nan}))
    with pytest.raises(StrengthsError, match="twice"):
        read_strengths(pd.Series([1.0, 2.0], index=["a", "a"]))


def test_strengths_bad_scale():
    with pytest.raises(StrengthsError, match="scale"):
        read_strengths({"a": 1.0, "b": 0.0}, scale="glicko")


def test_strengths_file_forms(tmp_path):
    table = pd.DataFrame({"model": ["a", "b", "c"], "score": [0.5, 0.0, -0.5]})
    table.to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "s.json").write_text('{"a": 0.5, "b": 0.0, "c": -0.5}')
    from_csv = read_strengths(tmp_path / "s.csv")
    from_json = read_strengths(tmp_path / "s.json")
    pd.testing.assert_series_equal(from_csv, from_json, check_names=False)
    with pytest.raises(StrengthsError, match="does not exist"):
        read_strengths(tmp_path / "missing.csv")
    pd.DataFrame({"model": ["a"], "x": [1], "y": [2]}).to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(StrengthsError, match="exactly one score column"):
        read_strengths(tmp_path / "wide.csv")


def test_two_model_strengths_become_a_scalar_mu(two_model_votes):
    ref = resolve_reference(two_model_votes, strengths={"model_x": np.log(0.7 / 0.3), "model_y": 0.0})
    assert ref.kind == "scalar" and ref.model == "model_x" and ref.mu == pytest.approx(0.7)


# -- non-identifiable references -------------------------------------------------------


def test_equal_models_scalar_half(two_model_votes):
    with pytest.raises(NotIdentifiableError, match="equally good"):
        TwoTypeEM().fit(two_model_votes, mu={"model_x": 0.5})


def test_all_mu_one_half_column(two_model_votes):
    with pytest.raises(NotIdentifiableError, match="mu = 1/2"):
        TwoTypeEM().fit(two_model_votes.assign(mu=0.5))


def test_equal_strengths_many_models():
    sim = simulate_votes(n_users=50, votes_per_user=5, strengths={"a": 0.0, "b": 0.0, "c": 0.0}, random_seed=1)
    with pytest.raises(NotIdentifiableError, match="same model|equal"):
        TwoTypeEM().fit(sim.votes, **sim.reference)


def test_constant_mu_is_a_position_habit(two_model_votes):
    with pytest.raises(NotIdentifiableError, match="same mu = 0.8.*careless='random'"):
        TwoTypeEM().fit(two_model_votes.assign(mu=0.8))
    # with random clickers (rho = 1/2) a constant mu of 0.8 does separate the types
    em = TwoTypeEM(careless="random").fit(two_model_votes.assign(mu=0.8))
    assert np.isfinite(em.loglik_)


def test_stronger_model_always_first(two_model_votes):
    votes = two_model_votes.copy()
    swap = votes["model_a"] == "model_y"
    votes.loc[swap, ["model_a", "model_b"]] = ["model_x", "model_y"]
    with pytest.raises(NotIdentifiableError, match="'model_x' is shown first on every decisive vote"):
        TwoTypeEM().fit(votes, mu={"model_x": 0.7})


def test_all_ties(two_model_votes):
    with pytest.raises(NotIdentifiableError, match="every vote is a tie"):
        TwoTypeEM().fit(two_model_votes.assign(winner="tie"), mu={"model_x": 0.7})
