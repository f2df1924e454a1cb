"""The user filter: decisions per user, nothing lost, weights per vote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from comparemode import filter_votes
from comparemode.errors import ConfigError, InvalidValueError, MissingColumnError


def test_kept_plus_dropped_is_the_input(small_sim, small_fit):
    votes = small_sim.votes
    res = small_fit.filter(votes)
    assert len(res.kept) + len(res.dropped) == len(votes)
    assert res.kept.index.intersection(res.dropped.index).empty
    assert res.kept.index.union(res.dropped.index).sort_values().equals(votes.index.sort_values())
    s = res.summary
    assert s["votes_in"] == len(votes) and s["votes_kept"] == len(res.kept) and s["votes_dropped"] == len(res.dropped)
    assert s["users_kept"] + s["users_dropped"] == s["users_in"] == votes["user"].nunique()
    assert s["users_kept"] == res.kept["user"].nunique()


def test_users_are_kept_or_dropped_whole(small_sim, small_fit):
    res = small_fit.filter(small_sim.votes)
    assert set(res.kept["user"]).isdisjoint(set(res.dropped["user"]))
    keep = res.users["keep"]
    assert set(res.kept["user"]) == set(keep.index[keep])


def test_threshold_is_inclusive_and_reasons_say_why(small_sim, small_fit):
    users = small_fit.users_
    tau = float(users["p_attentive"].iloc[0])  # a threshold equal to one user's probability keeps that user
    res = filter_votes(small_sim.votes, users, threshold=tau)
    assert res.users["keep"].iloc[0]
    assert (res.users["keep"] == (users["p_attentive"] >= tau)).all()
    assert res.users["reason"].iloc[0].endswith(f">= {tau:g}")
    dropped = res.users[~res.users["keep"]]
    assert dropped["reason"].str.contains("<").all()


def test_weights_are_the_users_probability(small_sim, small_fit):
    res = small_fit.filter(small_sim.votes)
    expected = small_fit.users_["p_attentive"].reindex(small_sim.votes["user"]).to_numpy()
    np.testing.assert_allclose(res.weights.to_numpy(), expected)
    assert res.weights.index.equals(small_sim.votes.index)


def test_threshold_extremes(small_sim, small_fit):
    everyone = filter_votes(small_sim.votes, small_fit.users_, threshold=0.0)
    assert len(everyone.dropped) == 0
    strict = filter_votes(small_sim.votes, small_fit.users_, threshold=1.0)
    assert len(strict.kept) == int((small_fit.users_["p_attentive"] >= 1.0).mul(small_fit.users_["n_votes"]).sum())


@pytest.mark.parametrize("tau", [-0.1, 1.5, "half", True])
def test_bad_threshold(small_sim, small_fit, tau):
    with pytest.raises(ConfigError, match="threshold"):
        filter_votes(small_sim.votes, small_fit.users_, threshold=tau)


def test_votes_from_unknown_users(small_sim, small_fit):
    votes = pd.concat([small_sim.votes, pd.DataFrame({"user": ["stranger"], "model_a": ["model_x"], "model_b": ["model_y"], "winner": ["tie"]})], ignore_index=True)
    with pytest.raises(InvalidValueError, match="stranger"):
        filter_votes(votes, small_fit.users_)


def test_user_table_without_probability(small_sim, small_fit):
    with pytest.raises(MissingColumnError, match="p_attentive"):
        filter_votes(small_sim.votes, small_fit.users_.drop(columns="p_attentive"))


def test_votes_without_user_column(small_sim, small_fit):
    with pytest.raises(MissingColumnError, match="'user'"):
        filter_votes(small_sim.votes.drop(columns="user"), small_fit.users_)
