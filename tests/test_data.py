"""Tests of comparemode.data: the votes contract, loaders and their error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from comparemode.constants import REQUIRED_COLUMNS, WINNER_VALUES
from comparemode.data import load_votes, read_arena, read_llmfao, validate_votes
from comparemode.datasets import llmfao_path
from comparemode.errors import (
    ComparemodeError,
    ConfigError,
    EmptyVotesError,
    InputNotFoundError,
    InvalidValueError,
    MissingColumnError,
    MuError,
)


@pytest.fixture
def votes() -> pd.DataFrame:
    """A small valid canonical table with an optional column and a pass-through one."""
    return pd.DataFrame(
        {
            "user": [1, 1, 2, 2, 3, 3],
            "model_a": ["gpt", "llama", "gpt", "mistral", "llama", "gpt"],
            "model_b": ["llama", "gpt", "mistral", "gpt", "mistral", "llama"],
            "winner": ["model_a", "model_b", "tie", "tie (bothbad)", "model_a", "model_b"],
            "prompt_id": ["p1", "p2", "p1", "p3", "p2", "p3"],
            "mu": [0.6, 0.4, 0.7, 0.3, 0.55, 0.65],
            "text": ["a", "b", "c", "d", "e", "f"],
        }
    )


def _llmfao_file(directory: Path) -> Path:
    """The original LLMFAO crowd file, byte for byte, written to ``directory`` from the copy
    shipped with the package (comparemode/_data/llmfao)."""
    return llmfao_path("crowd-comparisons.csv", directory)


# --------------------------------------------------------------------------- positive


def test_canonical_dataframe_loads(votes):
    out = load_votes(votes)
    assert list(out.columns) == [
        "user", "model_a", "model_b", "winner", "prompt_id", "mu", "text"
    ]
    pd.testing.assert_frame_equal(out, votes)
    meta = out.attrs["comparemode"]
    assert meta["rows_in"] == 6 and meta["ties_dropped"] == 0 and meta["format"] == "canonical"


def test_input_dataframe_not_mutated(votes):
    raw = votes.assign(
        winner=[" Model_A", "MODEL_B", "tie", "Tie (BothBad)", "model_a", "model_b"],
        model_a=[1, 2, 1, 3, 2, 1],
        model_b=[2, 1, 3, 1, 3, 2],
        mu=[1, 0.4, 0.7, 0.3, 0.55, 0.65],
    ).rename(columns={"user": "worker"})
    raw.loc[0, "mu"] = 0.6
    before = raw.copy(deep=True)
    out = load_votes(raw, user="worker", ties="drop")
    pd.testing.assert_frame_equal(raw, before)
    assert raw.attrs == {}
    assert out is not raw
    assert set(out["winner"]) <= {"model_a", "model_b"}


def test_result_is_new_object_even_when_nothing_changes(votes):
    out = load_votes(votes)
    assert out is not votes
    assert votes.attrs == {}


def test_column_order_and_passthrough():
    df = pd.DataFrame(
        {
            "text": ["x", "y"],
            "mu": [0.2, 0.8],
            "winner": ["model_a", "tie"],
            "vote_id": [101, 102],
            "model_b": ["m2", "m1"],
            "model_a": ["m1", "m2"],
            "user": ["u1", "u2"],
        },
        index=[10, 20],
    )
    out = load_votes(df)
    assert list(out.columns) == ["user", "model_a", "model_b", "winner", "mu", "text", "vote_id"]
    assert list(out.index) == [10, 20]
    assert out["vote_id"].tolist() == [101, 102]
    assert out["text"].tolist() == ["x", "y"]


def test_column_mapping_user_worker():
    df = pd.DataFrame(
        {
            "worker": [7, 8],
            "model_a": ["a", "b"],
            "model_b": ["b", "a"],
            "winner": ["model_a", "model_b"],
        }
    )
    out = load_votes(df, user="worker")
    assert list(out.columns[:4]) == list(REQUIRED_COLUMNS)
    assert "worker" not in out.columns
    assert out["user"].tolist() == [7, 8]
    assert out["user"].dtype == np.int64
    assert out.attrs["comparemode"]["columns"] == {"user": "worker"}


def test_full_mapping_and_winner_values():
    df = pd.DataFrame(
        {
            "rater": ["r1", "r2", "r3"],
            "first": ["x", "y", "x"],
            "second": ["y", "x", "z"],
            "choice": ["A", "B", "draw"],
            "q": [1, 2, 3],
            "p": [0.3, 0.5, 0.9],
        }
    )
    out = load_votes(
        df,
        user="rater",
        model_a="first",
        model_b="second",
        winner="choice",
        prompt_id="q",
        mu="p",
        winner_values={"A": "model_a", "B": "model_b", "draw": "tie"},
    )
    assert list(out.columns) == ["user", "model_a", "model_b", "winner", "prompt_id", "mu"]
    assert out["winner"].tolist() == ["model_a", "model_b", "tie"]
    assert out["mu"].tolist() == [0.3, 0.5, 0.9]


def test_types_models_become_strings_user_keeps_values():
    df = pd.DataFrame(
        {
            "user": [10, 11, 12],
            "model_a": [3, 4, 5],
            "model_b": [4, 5, 3],
            "winner": ["model_a", "model_b", "tie"],
            "mu": [1, 1, 1],
        }
    ).assign(mu=lambda d: d["mu"] / 2)
    out = load_votes(df)
    assert out["model_a"].tolist() == ["3", "4", "5"]
    assert all(type(v) is str for v in out["model_b"])
    assert out["user"].tolist() == [10, 11, 12]
    assert out["user"].dtype == np.int64
    assert out["mu"].dtype == np.float64


def test_int_mu_is_float64_and_winner_normalised():
    df = pd.DataFrame(
        {
            "user": ["a", "b"],
            "model_a": ["m1", "m2"],
            "model_b": ["m2", "m1"],
            "winner": ["  MODEL_A ", "Tie (bothbad)"],
            "mu": np.array([0.25, 0.75], dtype=np.float32),
        }
    )
    out = load_votes(df)
    assert out["winner"].tolist() == ["model_a", "tie (bothbad)"]
    assert out["mu"].dtype == np.float64


def test_validate_votes_returns_same_object_when_valid(votes):
    assert validate_votes(votes) is votes


def test_validate_votes_converts_without_mutating(votes):
    raw = votes.assign(winner=votes["winner"].str.upper())
    before = raw.copy()
    out = validate_votes(raw)
    assert out is not raw
    pd.testing.assert_frame_equal(raw, before)
    assert set(out["winner"]) <= set(WINNER_VALUES)


def test_validate_votes_checks(votes):
    with pytest.raises(InvalidValueError, match="model_a == model_b"):
        validate_votes(votes.assign(model_b=votes["model_a"]))
    with pytest.raises(MissingColumnError, match="'winner'"):
        validate_votes(votes.drop(columns="winner"))


def test_ties_drop(votes):
    out = load_votes(votes, ties="drop")
    assert len(out) == 4
    assert not out["winner"].isin(["tie", "tie (bothbad)"]).any()
    meta = out.attrs["comparemode"]
    assert meta["ties_dropped"] == 2
    assert meta["rows_in"] == 6
    assert meta["rows_out"] == 4
    assert list(out.index) == [0, 1, 4, 5]  # kept rows keep their labels


def test_ties_model_keeps_ties(votes):
    out = load_votes(votes, ties="model")
    assert len(out) == 6
    assert out.attrs["comparemode"]["ties_dropped"] == 0


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet", "pq", "jsonl", "ndjson", "json-array", "json-lines"])
def test_file_round_trips_identical(tmp_path, votes, kind):
    reference = load_votes(votes)
    if kind in ("csv", "csv.gz"):
        path = tmp_path / f"votes.{kind}"
        votes.to_csv(path, index=False)
    elif kind in ("parquet", "pq"):
        path = tmp_path / f"votes.{kind}"
        votes.to_parquet(path, index=False)
    elif kind in ("jsonl", "ndjson"):
        path = tmp_path / f"votes.{kind}"
        votes.to_json(path, orient="records", lines=True)
    elif kind == "json-array":
        path = tmp_path / "votes.json"
        path.write_text(json.dumps(votes.to_dict(orient="records"), indent=1))
    else:
        path = tmp_path / "votes.json"
        votes.to_json(path, orient="records", lines=True)
    out = load_votes(path)
    assert isinstance(out.index, pd.RangeIndex)
    if kind not in ("parquet", "pq"):
        # a text file holds the ids as text: user 1 is read as the text "1", as written
        reference = reference.assign(user=reference["user"].astype("str"))
    pd.testing.assert_frame_equal(out, reference)
    assert out.attrs["comparemode"]["source"] == str(path)
    assert load_votes(str(path)).equals(out)


def test_parquet_file_gets_range_index(tmp_path, votes):
    path = tmp_path / "votes.parquet"
    votes.set_index(pd.Index(list("abcdef"), name="key")).to_parquet(path)
    out = load_votes(path)
    assert isinstance(out.index, pd.RangeIndex)
    assert list(out.index) == list(range(6))


def test_arena_json_records(tmp_path):
    battles = [
        {"model_a": "gpt-4", "model_b": "claude-v1", "winner": "model_a", "judge": "arena_user_1",
         "question_id": "q1", "turn": 1, "anony": True, "language": "English", "tstamp": 1682000000.5},
        {"model_a": "claude-v1", "model_b": "vicuna-13b", "winner": "tie (bothbad)", "judge": "arena_user_2",
         "question_id": "q2", "turn": 1, "anony": True, "language": "English", "tstamp": 1682000001.5},
        {"model_a": "vicuna-13b", "model_b": "gpt-4", "winner": "model_b", "judge": "arena_user_1",
         "question_id": "q3", "turn": 2, "anony": False, "language": "German", "tstamp": 1682000002.5},
        {"model_a": "gpt-4", "model_b": "vicuna-13b", "winner": "tie", "judge": "arena_user_3",
         "question_id": "q4", "turn": 1, "anony": True, "language": "English", "tstamp": 1682000003.5},
    ]
    path = tmp_path / "clean_battle_20230101.json"
    path.write_text(json.dumps(battles, indent=2))
    for out in (load_votes(path), read_arena(path)):
        assert out.attrs["comparemode"]["format"] == "arena"
        assert list(out.columns[:5]) == ["user", "model_a", "model_b", "winner", "prompt_id"]
        assert out["user"].tolist() == ["arena_user_1", "arena_user_2", "arena_user_1", "arena_user_3"]
        assert out["winner"].tolist() == ["model_a", "tie (bothbad)", "model_b", "tie"]
        assert out["prompt_id"].tolist() == ["q1", "q2", "q3", "q4"]
        assert out["language"].tolist() == ["English", "English", "German", "English"]
        assert out["tstamp"].tolist() == [b["tstamp"] for b in battles]  # not parsed as dates
        assert "judge" not in out.columns
    dropped = load_votes(path, ties="drop")
    assert dropped.attrs["comparemode"]["ties_dropped"] == 2
    assert dropped["prompt_id"].tolist() == ["q1", "q3"]


def test_arena_explicit_mapping_overrides_format():
    df = pd.DataFrame(
        {
            "judge": ["j1", "j2"],
            "annotator": ["a1", "a2"],
            "model_a": ["x", "y"],
            "model_b": ["y", "x"],
            "winner": ["model_a", "tie"],
        }
    )
    out = load_votes(df, format="arena", user="annotator")
    assert out["user"].tolist() == ["a1", "a2"]
    assert out["judge"].tolist() == ["j1", "j2"]  # no longer mapped: passes through


def test_llmfao_like_small_table():
    df = pd.DataFrame(
        {
            "id": [0, 1, 2],
            "prompt": [5, 5, 6],
            "model_x": [1, 1, 2],
            "model_y": [2, 2, 1],
            "worker": [9, 10, 9],
            "winner": ["left", "right", "tie"],
            "left": ["alpha", "beta", "beta"],
            "right": ["beta", "alpha", "alpha"],
        }
    )
    out = load_votes(df)
    assert out.attrs["comparemode"]["format"] == "llmfao"
    assert out["winner"].tolist() == ["model_a", "model_b", "tie"]
    assert out["model_a"].tolist() == ["alpha", "beta", "beta"]
    assert out["prompt_id"].tolist() == [5, 5, 6]
    assert list(out.columns) == [
        "user", "model_a", "model_b", "winner", "prompt_id", "id", "model_x", "model_y"
    ]


def test_real_llmfao_file(tmp_path):
    path = _llmfao_file(tmp_path)
    out = load_votes(path)
    raw = pd.read_csv(path)
    assert out.attrs["comparemode"]["format"] == "llmfao"
    assert len(out) == 8931
    assert out["user"].nunique() == 124
    assert pd.concat([out["model_a"], out["model_b"]]).nunique() == 59
    assert set(out["winner"].unique()) == {"model_a", "model_b", "tie"}
    assert out["winner"].eq("tie").mean() == pytest.approx(0.39, abs=0.01)
    assert out["id"].tolist() == raw["id"].tolist()  # pass-through
    left_rows = np.flatnonzero(raw["winner"].eq("left").to_numpy())
    row = int(left_rows[0])
    assert out.loc[row, "winner"] == "model_a"
    assert out.loc[row, "model_a"] == raw.loc[row, "left"]
    assert out.loc[row, "model_b"] == raw.loc[row, "right"]
    assert (out["winner"].eq("model_a").to_numpy() == raw["winner"].eq("left").to_numpy()).all()
    assert (out["winner"].eq("model_b").to_numpy() == raw["winner"].eq("right").to_numpy()).all()

    via_reader = read_llmfao(path)
    pd.testing.assert_frame_equal(via_reader, out)

    dropped = load_votes(path, ties="drop")
    n_ties = int(raw["winner"].eq("tie").sum())
    assert dropped.attrs["comparemode"]["ties_dropped"] == n_ties
    assert len(dropped) == 8931 - n_ties
    assert not dropped["winner"].eq("tie").any()


# --------------------------------------------------------------------------- bad input


def test_missing_column(votes):
    with pytest.raises(MissingColumnError) as err:
        load_votes(votes.drop(columns="user"))
    msg = str(err.value)
    assert "'user'" in msg
    assert "Available columns" in msg and "'model_a'" in msg
    assert "pass user=" in msg


def test_missing_column_suggests_alias_argument(votes):
    with pytest.raises(MissingColumnError, match=r"pass user='judge'") as err:
        load_votes(votes.rename(columns={"user": "judge"}), format="canonical")
    assert "format='arena'" in str(err.value)


def test_wrong_case_column_suggestion(votes):
    with pytest.raises(MissingColumnError) as err:
        load_votes(votes.rename(columns={"user": "User", "winner": "WINNER"}))
    msg = str(err.value)
    assert "did you mean 'User'? pass user='User'" in msg
    assert "did you mean 'WINNER'? pass winner='WINNER'" in msg


def test_mapped_column_missing(votes):
    with pytest.raises(MissingColumnError) as err:
        load_votes(votes, user="worker")
    msg = str(err.value)
    assert "user='worker'" in msg and "'worker'" in msg and "'model_a'" in msg


def test_llmfao_format_missing_column():
    df = pd.DataFrame({"worker": [1], "Left": ["a"], "right": ["b"], "winner": ["left"]})
    with pytest.raises(MissingColumnError) as err:
        load_votes(df, format="llmfao")
    msg = str(err.value)
    assert "'left'" in msg and "pass model_a='Left'" in msg


def test_unknown_winner_value(votes):
    bad = votes.copy()
    bad.loc[[1, 4], "winner"] = ["A", "left"]
    with pytest.raises(InvalidValueError) as err:
        load_votes(bad)
    msg = str(err.value)
    assert "'winner'" in msg
    assert "'A'" in msg and "'left'" in msg
    assert "2 row(s)" in msg and "[1, 4]" in msg
    assert "winner_values" in msg
    assert "'model_a'" in msg  # allowed values


def test_missing_winner_value(votes):
    bad = votes.copy()
    bad.loc[3, "winner"] = None
    with pytest.raises(InvalidValueError, match=r"'winner'.*\[3\]"):
        load_votes(bad)


def test_missing_user_id(votes):
    bad = votes.astype({"user": object})
    bad.loc[2, "user"] = None
    bad.loc[5, "user"] = ""
    with pytest.raises(InvalidValueError) as err:
        load_votes(bad)
    msg = str(err.value)
    assert "'user'" in msg and "2 row(s)" in msg and "[2, 5]" in msg
    assert "None" in msg and "''" in msg


def test_missing_user_id_nan_from_float(votes):
    bad = votes.assign(user=[1.0, np.nan, 2.0, 2.0, 3.0, 3.0])
    with pytest.raises(InvalidValueError, match=r"'user'.*\[1\].*nan"):
        load_votes(bad)


def test_missing_model(votes):
    bad = votes.copy()
    bad.loc[4, "model_b"] = np.nan
    with pytest.raises(InvalidValueError) as err:
        load_votes(bad)
    msg = str(err.value)
    assert "'model_b'" in msg and "[4]" in msg and "nan" in msg


def test_blank_model(votes):
    bad = votes.copy()
    bad.loc[0, "model_a"] = "  "
    with pytest.raises(InvalidValueError, match=r"'model_a'.*\[0\]"):
        load_votes(bad)


def test_model_a_equal_model_b(votes):
    bad = votes.copy()
    bad.loc[3, "model_b"] = "mistral"
    with pytest.raises(InvalidValueError) as err:
        load_votes(bad)
    msg = str(err.value)
    assert "model_a == model_b" in msg and "[3]" in msg and "'mistral'" in msg
    assert "same model" in msg and "drop those rows" in msg


def test_model_a_equal_model_b_after_str_conversion(votes):
    bad = votes.assign(model_a=[1, 2, 3, 4, 5, 6], model_b=["1", "3", "4", "5", "6", "7"])
    with pytest.raises(InvalidValueError, match=r"model_a == model_b.*\[0\].*'1'"):
        load_votes(bad)


def test_empty_table(votes):
    with pytest.raises(EmptyVotesError, match="no rows"):
        load_votes(votes.iloc[:0])
    with pytest.raises(EmptyVotesError):
        validate_votes(votes.iloc[:0])


def test_empty_csv_file(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text("")
    with pytest.raises(EmptyVotesError, match="votes.csv"):
        load_votes(path)


def test_header_only_csv_file(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text("user,model_a,model_b,winner\n")
    with pytest.raises(EmptyVotesError, match="votes.csv"):
        load_votes(path)


@pytest.mark.parametrize("text", ["", "[]", "  \n"])
def test_empty_json_file(tmp_path, text):
    path = tmp_path / "votes.json"
    path.write_text(text)
    with pytest.raises(EmptyVotesError):
        load_votes(path)


def test_all_ties_dropped_is_empty(votes):
    with pytest.raises(EmptyVotesError, match="ties"):
        load_votes(votes.assign(winner="tie"), ties="drop")


def test_mu_outside_unit_interval(votes):
    bad = votes.assign(mu=[0.5, 1.0, 0.2, 0.0, -0.1, 0.9])
    with pytest.raises(MuError) as err:
        load_votes(bad)
    msg = str(err.value)
    assert "'mu'" in msg and "3 row(s)" in msg and "[1, 3, 4]" in msg
    assert "1.0" in msg and "-0.1" in msg and "between 0 and 1" in msg


def test_mu_nan(votes):
    bad = votes.assign(mu=[0.5, np.nan, 0.2, 0.3, np.inf, 0.9])
    with pytest.raises(MuError) as err:
        load_votes(bad)
    msg = str(err.value)
    assert "'mu'" in msg and "NaN" in msg and "[1, 4]" in msg and "inf" in msg


def test_mu_non_numeric(votes):
    bad = votes.assign(mu=[0.5, "high", 0.2, 0.3, 0.4, 0.9])
    with pytest.raises(MuError) as err:
        load_votes(bad)
    msg = str(err.value)
    assert "'mu'" in msg and "not numeric" in msg and "'high'" in msg and "[1]" in msg


def test_mu_string_column(votes):
    with pytest.raises(MuError, match="not numeric"):
        load_votes(votes.assign(mu=["0.5"] * 6))


def test_mu_bool_column(votes):
    with pytest.raises(MuError, match="not numeric"):
        load_votes(votes.assign(mu=[True] * 6))


def test_mu_mapped_column_named_in_error(votes):
    bad = votes.rename(columns={"mu": "p_reward"}).assign(p_reward=[0.5, 2.0, 0.2, 0.3, 0.4, 0.9])
    with pytest.raises(MuError, match=r"column 'mu' \(input column 'p_reward'\)"):
        load_votes(bad, mu="p_reward")


def test_non_unique_index(votes):
    bad = votes.set_axis([0, 1, 1, 2, 3, 3])
    with pytest.raises(InvalidValueError) as err:
        load_votes(bad)
    msg = str(err.value)
    assert "[1, 3]" in msg and "reset_index(drop=True)" in msg


def test_unknown_extension(tmp_path, votes):
    path = tmp_path / "votes.xlsx"
    path.write_text("whatever")
    with pytest.raises(ConfigError) as err:
        load_votes(path)
    msg = str(err.value)
    assert "'.xlsx'" in msg and ".csv" in msg and ".parquet" in msg and ".jsonl" in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "votes.csv"
    with pytest.raises(InputNotFoundError) as err:
        load_votes(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert isinstance(err.value, ComparemodeError)


@pytest.mark.parametrize("ties", ["keep", "Drop", None, 0])
def test_bad_ties_value(votes, ties):
    with pytest.raises(ConfigError) as err:
        load_votes(votes, ties=ties)
    msg = str(err.value)
    assert "ties=" in msg and "'model'" in msg and "'drop'" in msg


def test_bad_format_value(votes):
    with pytest.raises(ConfigError, match="format='fastchat'"):
        load_votes(votes, format="fastchat")


def test_bad_winner_values_argument(votes):
    with pytest.raises(ConfigError, match="'first'"):
        load_votes(votes, winner_values={"A": "first"})


def test_rename_onto_existing_column_is_refused(votes):
    with pytest.raises(ConfigError, match="already has a column 'user'"):
        load_votes(votes.assign(worker=1), user="worker")


def test_two_arguments_one_column(votes):
    with pytest.raises(ConfigError, match="'text'"):
        load_votes(votes.drop(columns=["model_a", "model_b"]), model_a="text", model_b="text")


def test_unhashable_user(votes):
    bad = votes.astype({"user": object})
    bad.at[2, "user"] = ["x"]
    with pytest.raises(InvalidValueError, match=r"'user'.*unhashable.*\[2\]"):
        load_votes(bad)


def test_bad_source_type():
    with pytest.raises(ConfigError, match="DataFrame or a file path"):
        load_votes([{"user": 1}])


def test_errors_are_value_errors(votes):
    with pytest.raises(ValueError):
        load_votes(votes.drop(columns="winner"))


def test_file_error_row_labels_are_data_rows(tmp_path, votes):
    bad = votes.copy()
    bad.loc[2, "winner"] = "???"
    path = tmp_path / "votes.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(InvalidValueError, match=r"data rows of the file: \[2\]"):
        load_votes(path)
