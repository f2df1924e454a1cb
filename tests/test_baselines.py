"""Baseline per-user quality scores (issue 4, item 2): known answers on hand-made tables,
attentive above careless on simulated votes, and the bad-input paths."""

from __future__ import annotations

import builtins
import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
from comparemode.inference.baselines import (
    fastchat_outlier,
    majority_agreement,
    noisy_bt_skills,
    plain_bt_agreement,
)

from comparemode import simulate_votes
from comparemode.errors import ConfigError, MissingColumnError, NotIdentifiableError

STRENGTHS = {f"m{i:02d}": s for i, s in enumerate(np.linspace(-2.0, 2.0, 10))}
#: crowd-kit is in the bench extra only (it pulls transformers, tokenizers, nltk, huggingface-hub)
NO_CROWDKIT = "crowd-kit is not installed (it is in the bench extra, not the test extra: pip install -e '.[bench]')"
HAS_CROWDKIT = importlib.util.find_spec("crowdkit") is not None


def table(rows, **extra):
    """rows: (user, model_a, model_b, winner[, id])."""
    cols = ["user", "model_a", "model_b", "winner"] + (["id"] if len(rows[0]) == 5 else [])
    df = pd.DataFrame(rows, columns=cols)
    for k, v in extra.items():
        df[k] = v
    return df


@pytest.fixture(scope="module")
def sim():
    """Careless users are random or strong first-position clickers."""
    return simulate_votes(
        n_users=300,
        votes_per_user=30,
        pi=0.6,
        strengths=STRENGTHS,
        careless_first=(2.0, 1.0),
        random_seed=11,
    )


def attentive_above_careless(score: pd.Series, truth: pd.Series, margin: float = 0.0):
    s = score.reindex(truth.index)
    assert s.notna().mean() > 0.95
    att, care = s[truth].mean(), s[~truth].mean()
    assert att > care + margin, (att, care)
    # and the ranking separates them well (AUC)
    r = s.rank()
    n1, n0 = int(truth.sum()), int((~truth).sum())
    auc = (r[truth].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    return auc


# --------------------------------------------------------------------------- majority


def test_majority_contrarian_gets_zero_and_positions_do_not_matter():
    rows = []
    for item in range(4):
        # u1, u2 pick x; u3 (contrarian) picks y; u2 saw the pair in the other order
        rows.append(("u1", "x", "y", "model_a", item))
        rows.append(("u2", "y", "x", "model_b", item))
        rows.append(("u3", "x", "y", "model_b", item))
    s = majority_agreement(table(rows))
    assert s.name == "majority_agreement"
    assert s.index.name == "user"
    assert s["u3"] == 0.0
    # u1 vs others {u2: x, u3: y} is a split -> not comparable; same for u2 -> NaN
    assert math.isnan(s["u1"]) and math.isnan(s["u2"])
    assert s.attrs["n_comparable"].to_dict() == {"u1": 0, "u2": 0, "u3": 4}


def test_majority_swapped_positions_agree():
    rows = [
        ("a", "x", "y", "model_a", 0),
        ("b", "y", "x", "model_b", 0),  # same model, other position
        ("c", "y", "x", "model_b", 0),
        ("d", "x", "y", "model_b", 0),  # picks y
    ]
    s = majority_agreement(table(rows))
    # a: others b, c -> x, d -> y: majority x -> agrees
    assert s["a"] == 1.0 and s["b"] == 1.0 and s["c"] == 1.0
    assert s["d"] == 0.0


def test_majority_skips_ties_lone_items_and_own_votes():
    rows = [
        ("a", "x", "y", "model_a", 0),
        ("a", "x", "y", "model_a", 0),  # a's second vote on the item must not count for a
        ("b", "x", "y", "model_b", 0),
        ("c", "x", "y", "tie", 0),  # ties are not choices
        ("a", "x", "z", "model_a", 1),  # alone on item 1
        ("e", "x", "y", "tie", 2),
    ]
    s = majority_agreement(table(rows))
    assert s["a"] == 0.0  # others on item 0: only b (y)
    assert s["b"] == 0.0  # others: a twice (x)
    assert math.isnan(s["c"]) and math.isnan(s["e"])
    assert list(s.index) == ["a", "b", "c", "e"]


def test_majority_default_key_without_id_uses_prompt_and_pair():
    rows = [
        ("a", "x", "y", "model_a"),
        ("b", "y", "x", "model_b"),
        ("c", "x", "y", "model_b"),
        ("c", "x", "y", "model_b"),
    ]
    df = table(rows, prompt_id=[1, 1, 2, 2])
    s = majority_agreement(df)
    # prompt 1: a and b agree; prompt 2: c alone
    assert s["a"] == 1.0 and s["b"] == 1.0 and math.isnan(s["c"])
    # keyed by the model pair alone, c disagrees with a and b
    s2 = majority_agreement(df.drop(columns="prompt_id"))
    assert s2["c"] == 0.0


def test_majority_on_simulation(sim):
    # the simulator's prompt ids are unique per vote: key on the model pair alone
    s = majority_agreement(sim.votes.drop(columns="prompt_id"))
    auc = attentive_above_careless(s, sim.users["attentive"], margin=0.1)
    assert auc > 0.85


# --------------------------------------------------------------------------- FastChat


def test_fastchat_by_hand():
    # history of pair (x, y): 8 votes for x, 2 for y (x is the alphabetically first model)
    rows = [(f"h{i}", "x", "y", "model_a") for i in range(8)]
    rows += [("h8", "y", "x", "model_a"), ("h9", "x", "y", "model_b")]
    # user "bad" votes for y 5 times (adds to the history: 8 wins, 7 losses)
    rows += [("bad", "x", "y", "model_b")] * 5
    # user "good" votes for x 5 times (history then 13 wins, 7 losses)
    df = table(rows)
    out = fastchat_outlier(df, alpha=0.05)
    assert list(out.columns) == ["n_votes", "tested", "n_tested", "log_m_upper", "log_m_lower", "log_m", "flagged", "score"]
    # "bad": each vote v=0: p_upper = 7/15, p_lower = 1 -> M_upper = (15/14)^k, never > 20
    b = out.loc["bad"]
    assert b["tested"] and not b["flagged"] and b["n_tested"] == 5
    assert b["log_m_upper"] == pytest.approx(5 * math.log(15 / 14))
    assert b["log_m_lower"] == pytest.approx(5 * math.log(1 / 2))
    assert b["score"] == pytest.approx(-b["log_m"])
    # one-vote users are not tested
    assert not out.loc["h0", "tested"] and math.isnan(out.loc["h0", "score"])

    # a stronger contrarian: history 30 x-wins; user votes y 10 times
    rows = [(f"h{i}", "x", "y", "model_a") for i in range(30)]
    rows += [("bad", "y", "x", "model_a")] * 10  # chooses y shown first
    out = fastchat_outlier(table(rows), alpha=0.05)
    # p_upper = 10/40 per vote -> factor 2 per vote -> exceeds 20 at the 5th vote (2^5 = 32)
    b = out.loc["bad"]
    assert b["flagged"] and b["n_tested"] == 5
    assert b["log_m_upper"] == pytest.approx(5 * math.log(2))
    assert b["score"] < -math.log(20)


def test_fastchat_tie_against_one_sided_history_flags_at_once_and_max_vote():
    rows = [(f"h{i}", "x", "y", "model_a") for i in range(5)]
    rows += [("t", "x", "y", "tie")] * 5  # p_upper = 0 losses / 5 -> infinite factor
    rows += [("n", "x", "y", "model_a")] * 6
    out = fastchat_outlier(table(rows), max_vote=3)
    assert out.loc["t", "flagged"] and out.loc["t", "n_tested"] == 1
    assert out.loc["t", "score"] == -np.inf
    assert not out.loc["n", "flagged"] and out.loc["n", "n_tested"] == 3


def test_fastchat_skips_pairs_without_decisive_history():
    rows = [("t", "x", "y", "tie")] * 6 + [("t", "x", "z", "model_a")] * 2 + [("o", "z", "x", "model_a")] * 2
    out = fastchat_outlier(table(rows))
    assert out.loc["t", "tested"] and out.loc["t", "n_tested"] == 2  # only the x-z votes
    ties = fastchat_outlier(table([("t", "x", "y", "tie")] * 6))
    assert ties.loc["t", "tested"] and ties.loc["t", "n_tested"] == 0
    assert math.isnan(ties.loc["t", "score"]) and not ties.loc["t", "flagged"]
    assert majority_agreement(table([("t", "x", "y", "tie")] * 2)).isna().all()


def test_fastchat_randomized_is_seeded():
    rows = [(f"h{i}", "x", "y", "model_a") for i in range(8)] + [("u", "x", "y", "model_a")] * 6
    a = fastchat_outlier(table(rows), randomized=True, random_seed=1)
    b = fastchat_outlier(table(rows), randomized=True, random_seed=1)
    pd.testing.assert_frame_equal(a, b)
    det = fastchat_outlier(table(rows))
    # deterministic: 14 wins, no loss; each v=1 vote has p_lower = 1 -> factor 1/2
    assert det.loc["u", "log_m_lower"] == pytest.approx(6 * math.log(0.5))
    # randomized: equal history entries land on either side of the vote -> p_lower < 1
    assert a.loc["u", "log_m_lower"] > det.loc["u", "log_m_lower"]


def test_fastchat_on_simulation(sim):
    out = fastchat_outlier(sim.votes)
    truth = sim.users["attentive"]
    f = out["flagged"].reindex(truth.index)
    assert f[~truth].mean() > f[truth].mean()
    auc = attentive_above_careless(out["score"], truth)
    assert auc > 0.6


# --------------------------------------------------------------------------- crowd-kit


def test_noisy_bt_is_crowdkit_as_released(sim):
    ck = pytest.importorskip("crowdkit.aggregation", reason=NO_CROWDKIT)
    s = noisy_bt_skills(sim.votes)
    assert s.name == "noisy_bt_skill" and s.index.name == "user"
    assert s.index.equals(pd.Index(pd.unique(sim.votes["user"]), name="user"))
    assert s.between(0, 1).all()
    # the same numbers as calling crowd-kit by hand on the decisive votes
    v = sim.votes[sim.votes["winner"] != "tie"]
    data = pd.DataFrame(
        {
            "worker": v["user"],
            "left": v["model_a"],
            "right": v["model_b"],
            "label": np.where(v["winner"] == "model_a", v["model_a"], v["model_b"]),
        }
    )
    direct = ck.NoisyBradleyTerry().fit(data).skills_
    np.testing.assert_allclose(s.reindex(direct.index).to_numpy(), direct.to_numpy())


@pytest.mark.xfail(
    reason="crowd-kit 1.4.2's NoisyBradleyTerry: its analytic gradient does not match its own "
    "objective (worker-parameter entries are assigned, not accumulated, one index off), so "
    "L-BFGS stops after a few iterations and the skills stay near their random start",
    strict=True,  # if crowd-kit fixes its gradient this starts passing: re-run the LLMFAO comparison
)
def test_noisy_bt_attentive_above_careless(sim):
    pytest.importorskip("crowdkit", reason=NO_CROWDKIT)
    s = noisy_bt_skills(sim.votes)
    assert attentive_above_careless(s, sim.users["attentive"]) > 0.6


def test_noisy_bt_users_without_decisive_votes_are_nan_and_global_rng_untouched():
    pytest.importorskip("crowdkit", reason=NO_CROWDKIT)
    rows = [("a", "x", "y", "model_a"), ("b", "y", "x", "model_a"), ("c", "x", "y", "tie")]
    before = np.random.get_state()
    s = noisy_bt_skills(table(rows), n_iter=5)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    assert math.isnan(s["c"]) and s[["a", "b"]].notna().all()
    with pytest.raises(NotIdentifiableError, match="tie"):
        noisy_bt_skills(table([("a", "x", "y", "tie")]))


def test_noisy_bt_without_crowdkit(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "crowdkit" or name.startswith("crowdkit."):
            raise ImportError("No module named 'crowdkit'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match=r"crowd-kit.*comparemode\[bench\]"):
        noisy_bt_skills(table([("a", "x", "y", "model_a")]))


# --------------------------------------------------------------------------- plain BT


def test_plain_bt_agreement_by_hand():
    # x beats y and z, y beats z, consistently: strengths x > y > z
    rows = []
    for i in range(5):
        rows += [(f"g{i}", "x", "y", "model_a"), (f"g{i}", "z", "x", "model_b"), (f"g{i}", "y", "z", "model_a")]
    rows += [("bad", "x", "y", "model_b"), ("bad", "x", "z", "model_b"), ("bad", "y", "z", "tie")]
    rows += [("swap", "y", "x", "model_b")]  # chose x shown second
    s = plain_bt_agreement(table(rows))
    assert s.name == "bt_agreement"
    assert s["bad"] == 0.0 and s["swap"] == 1.0
    assert all(s[f"g{i}"] == 1.0 for i in range(5))


def test_plain_bt_on_simulation(sim):
    s = plain_bt_agreement(sim.votes)
    assert attentive_above_careless(s, sim.users["attentive"], margin=0.1) > 0.85


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "fn",
    [
        majority_agreement,
        fastchat_outlier,
        plain_bt_agreement,
        # without crowd-kit noisy_bt_skills refuses before it reads the votes (test_noisy_bt_without_crowdkit)
        pytest.param(noisy_bt_skills, marks=pytest.mark.skipif(not HAS_CROWDKIT, reason=NO_CROWDKIT)),
    ],
)
def test_missing_column(fn):
    df = table([("a", "x", "y", "model_a")]).drop(columns="winner")
    with pytest.raises(MissingColumnError, match="winner"):
        fn(df)


def test_bad_pair_key_and_settings():
    df = table([("a", "x", "y", "model_a"), ("b", "x", "y", "model_a")])
    with pytest.raises(MissingColumnError, match="question"):
        majority_agreement(df, pair_key="question")
    with pytest.raises(ConfigError, match="pair_key"):
        majority_agreement(df, pair_key=[])
    with pytest.raises(ConfigError, match="alpha"):
        fastchat_outlier(df, alpha=1.5)
    with pytest.raises(ConfigError, match="max_vote"):
        fastchat_outlier(df, max_vote=0)
