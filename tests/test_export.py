"""Votes to training data (issue 15): preference pairs with their texts, and the command
line's outputs in the input's own layout and in the user's format."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import comparemode as cm
from comparemode.cli import main
from comparemode.datasets import llmfao_path
from comparemode.errors import ConfigError, InvalidValueError, MissingColumnError
from comparemode.export import PAIR_COLUMNS, to_preference_pairs, write_preference_pairs


@pytest.fixture(scope="module")
def llmfao(tmp_path_factory) -> dict:
    """The LLMFAO votes, responses and models tables (the copy shipped in the package, as its
    original files), and one default run on them."""
    d = tmp_path_factory.mktemp("llmfao")
    files = {k: llmfao_path(f, d) for k, f in (("votes", "crowd-comparisons.csv"), ("pairs", "pairs-crowd.jsonl"), ("models", "models.jsonl"))}
    assert main(["run", str(files["votes"]), "--out", str(d / "run"), "--boot", "0", "--quiet"]) == 0
    return {**files, "run": d / "run", "dir": d}


def _chosen_model(raw: pd.DataFrame) -> pd.Series:
    return pd.Series(np.where(raw["winner"] == "left", raw["left"], raw["right"]), index=raw.index)


def test_llmfao_export_has_the_columns_the_weights_and_the_source_texts(llmfao):
    out = llmfao["dir"] / "export"
    assert main(["export", str(llmfao["votes"]), "--texts", str(llmfao["pairs"]), "--models", str(llmfao["models"]),
                 "--prompt-col", "text", "--results", str(llmfao["run"]), "--out", str(out), "--quiet"]) == 0
    pairs = pd.read_json(out / "pairs.jsonl", lines=True, dtype=False)
    assert list(pairs.columns) == [*PAIR_COLUMNS, "id", "row"]
    back = cm.read_results(llmfao["run"])
    users, raw = back["users"], pd.read_csv(llmfao["votes"], dtype={"worker": str})
    # one row per kept decisive vote, nothing else
    kept = raw.loc[raw["worker"].map(users["keep"])]
    decisive = kept.loc[kept["winner"] != "tie"]
    assert sorted(pairs["row"]) == sorted(decisive.index)
    assert not pairs["tie"].any()
    # weights are the users' probabilities; the flip rate is half the careless probability
    np.testing.assert_allclose(pairs["weight"], pairs["user"].map(users["p_attentive"]), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(pairs["label_flip_prob"], (1 - pairs["weight"]) / 2, rtol=0, atol=1e-15)
    # rows against the source: the chosen model is the voted one; texts are the pair's answers
    src = pd.read_json(llmfao["pairs"], lines=True).set_index("id")
    names = pd.read_json(llmfao["models"], lines=True).set_index("id")["name"]
    rows = pairs.set_index("row").loc[decisive.index]
    assert (rows["chosen_model"] == _chosen_model(decisive)).all()
    for r in decisive.index[[0, 17, 500, len(decisive) - 1]]:
        vote, pair = raw.loc[r], src.loc[raw.loc[r, "id"]]
        answer = {names[pair["model_x"]]: pair["result_x"], names[pair["model_y"]]: pair["result_y"]}
        won = vote["left"] if vote["winner"] == "left" else vote["right"]
        lost = vote["right"] if vote["winner"] == "left" else vote["left"]
        assert rows.loc[r, "chosen"] == answer[won] and rows.loc[r, "rejected"] == answer[lost]
        assert rows.loc[r, "prompt"] == pair["text"] and rows.loc[r, "user"] == vote["worker"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == len(pairs) and summary["votes_kept"] == len(kept)
    assert summary["ties_kept_left_out"] == int((kept["winner"] == "tie").sum())


@pytest.mark.parametrize("fmt", ["jsonl", "trl", "parquet"])
def test_the_export_loads_with_hugging_face_datasets(llmfao, fmt):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed (pip install datasets)")
    out = llmfao["dir"] / f"export-{fmt}"
    assert main(["export", str(llmfao["votes"]), "--texts", str(llmfao["pairs"]), "--models", str(llmfao["models"]),
                 "--prompt-col", "text", "--results", str(llmfao["run"]), "--format", fmt, "--out", str(out), "--quiet"]) == 0
    path = out / ("pairs.parquet" if fmt == "parquet" else "pairs.jsonl")
    ds = datasets.load_dataset("parquet" if fmt == "parquet" else "json", data_files=str(path), split="train")
    assert {"prompt", "chosen", "rejected", "weight", "label_flip_prob"} <= set(ds.column_names)
    first = ds[0]
    if fmt == "trl":  # TRL's conversational layout
        assert first["prompt"][0]["role"] == "user" and first["chosen"][0]["role"] == "assistant"
        assert isinstance(first["chosen"][0]["content"], str) and first["chosen"][0]["content"]
    else:
        assert isinstance(first["chosen"], str) and isinstance(first["weight"], float)
    summary = json.loads((out / "summary.json").read_text())
    assert ds.num_rows == summary["rows"]


def test_export_refuses_results_of_other_votes(llmfao, tmp_path, capsys):
    other = tmp_path / "other.csv"
    pd.read_csv(llmfao["votes"]).iloc[:-1].to_csv(other, index=False)
    assert main(["export", str(other), "--texts", str(llmfao["pairs"]), "--results", str(llmfao["run"]),
                 "--out", str(tmp_path / "x"), "--quiet"]) == 1
    assert "made from another input" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- the Python function


def _small():
    """Three users, two prompts, two models; user u3 dropped."""
    votes = cm.load_votes(pd.DataFrame({
        "user": ["u1", "u1", "u2", "u2", "u3", "u1"],
        "model_a": ["a", "b", "a", "a", "b", "a"],
        "model_b": ["b", "a", "b", "b", "a", "b"],
        "winner": ["model_a", "model_a", "tie", "model_b", "model_a", "model_b"],
        "prompt_id": [1, 2, 1, 2, 1, 2],
    }))
    users = pd.DataFrame({"p_attentive": [0.9, 0.6, 0.1], "keep": [True, True, False]}, index=pd.Index(["u1", "u2", "u3"], name="user"))
    texts = pd.DataFrame({"prompt_id": ["1", "1", "2", "2"], "model": ["a", "b", "a", "b"],
                          "response": ["A1", "B1", "A2", "B2"], "prompt": ["P1", "P1", "P2", "P2"]})
    return votes, users, texts


def test_pairs_from_a_user_table_follow_the_votes():
    votes, users, texts = _small()
    pairs = to_preference_pairs(votes, users, texts)
    # kept decisive votes: rows 0, 1, 3, 5 (row 2 is a tie, row 4 is u3's)
    assert list(pairs["row"]) == [0, 1, 3, 5]
    assert list(pairs["chosen"]) == ["A1", "B2", "B2", "B2"] and list(pairs["rejected"]) == ["B1", "A2", "A2", "A2"]
    assert list(pairs["prompt"]) == ["P1", "P2", "P2", "P2"]
    assert list(pairs["weight"]) == [0.9, 0.9, 0.6, 0.9]
    keep = to_preference_pairs(votes, users, texts, ties="keep")
    assert list(keep["row"]) == [0, 1, 2, 3, 5] and keep.set_index("row").loc[2, "tie"]
    assert keep.set_index("row").loc[2, "chosen"] == "A1"  # a tie: the answer shown first


def test_pairs_from_a_filter_result_take_its_per_vote_weights():
    votes, users, texts = _small()
    result = cm.filter_votes(votes, users, threshold=0.5)
    pairs = to_preference_pairs(votes, result, texts)
    np.testing.assert_array_equal(pairs["weight"], result.weights.loc[pairs["row"]].to_numpy())


def test_missing_or_ambiguous_texts_are_never_silent():
    votes, users, texts = _small()
    short = texts.iloc[:-1]
    with pytest.raises(InvalidValueError, match="no text"):
        to_preference_pairs(votes, users, short)
    dropped = to_preference_pairs(votes, users, short, missing="drop")
    assert dropped.attrs["comparemode"]["missing_text"] == 3 and list(dropped["row"]) == [0]
    clash = pd.concat([texts, texts.iloc[[0]].assign(response="other")])
    with pytest.raises(InvalidValueError, match="more than one text"):
        to_preference_pairs(votes, users, clash)
    with pytest.raises(MissingColumnError, match="wide="):
        to_preference_pairs(votes, users, texts.rename(columns={"response": "text"}))
    with pytest.raises(ConfigError):
        to_preference_pairs(votes, users, texts, ties="half")


def test_wide_texts_with_model_ids_and_the_trl_layout(tmp_path):
    votes, users, _ = _small()
    wide = pd.DataFrame({"prompt_id": [1, 2], "x": [10, 10], "rx": ["A1", "A2"], "y": [20, 20], "ry": ["B1", "B2"], "prompt": ["P1", "P2"]})
    pairs = to_preference_pairs(votes, users, wide, wide=[("x", "rx"), ("y", "ry")], model_names={10: "a", 20: "b"})
    assert list(pairs["chosen"]) == ["A1", "B2", "B2", "B2"]
    write_preference_pairs(pairs, tmp_path / "p.jsonl", "trl")
    first = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert first["prompt"] == [{"role": "user", "content": "P1"}] and first["chosen"] == [{"role": "assistant", "content": "A1"}]


# --------------------------------------------------------------------------- the run's outputs


def test_run_writes_votes_in_the_input_layout_and_loses_nothing(llmfao):
    back = cm.read_results(llmfao["run"])
    raw = pd.read_csv(llmfao["votes"], dtype=str, keep_default_na=False)
    kept, dropped = back["kept_votes"], back["dropped_votes"]
    assert list(kept.columns) == [*raw.columns, "weight", "decision"] and kept.index.name == "row"
    both = pd.concat([kept, dropped]).sort_index(key=lambda i: i.astype(int))
    assert list(both.index.astype(int)) == list(range(len(raw)))  # kept plus dropped is the input, each vote once
    assert (both[list(raw.columns)].astype(str).to_numpy() == raw.to_numpy()).all()  # as written: left/right, worker ids
    assert set(kept["decision"]) == {"kept"} and set(dropped["decision"]) == {"dropped"}
    users = back["users"]
    np.testing.assert_allclose(both["weight"].astype(float), both["worker"].map(users["p_attentive"]), atol=1e-12)
    assert set(kept["worker"]) == set(users.index[users["keep"]])


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_run_writes_every_table_in_the_format_asked(tmp_path, fmt):
    out = tmp_path / "o"
    assert main(["run", "--sim-users", "120", "--sim-votes", "6", "--format", fmt, "--out", str(out), "--quiet"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {f"users.{fmt}", f"kept_votes.{fmt}", f"dropped_votes.{fmt}", "summary.json"} <= names
    assert not any(n.endswith(".csv") for n in names)
    back = cm.read_results(out)
    assert len(back["kept_votes"]) + len(back["dropped_votes"]) == 120 * 6
    assert back["users"].index.is_unique and len(back["users"]) == 120
    assert json.loads((out / "summary.json").read_text())["outputs"]["format"] == fmt


def test_a_layout_given_as_the_output_format_says_which_flag(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--format", "llmfao", "--out", str(tmp_path / "o")])
    assert "--layout llmfao" in capsys.readouterr().err


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"comparemode {cm.__version__}"


def test_standard_input_and_tsv_read_as_the_file(tmp_path):
    sim = cm.simulate_votes(n_users=80, votes_per_user=6, random_seed=3)
    sim.votes.to_csv(tmp_path / "v.csv", index=False)
    sim.votes.to_csv(tmp_path / "v.tsv", index=False, sep="\t")
    runs = {}
    for name, stdin, arg in (("file", None, tmp_path / "v.csv"), ("tsv", None, tmp_path / "v.tsv"), ("stdin", tmp_path / "v.csv", "-")):
        cmd = [sys.executable, "-m", "comparemode.cli", "run", str(arg), "--mu", "model_x=0.7", "--out", str(tmp_path / name), "--quiet"]
        with open(stdin, "rb") if stdin else io.BytesIO() as fh:
            proc = subprocess.run(cmd, stdin=fh if stdin else subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = cm.read_results(tmp_path / name)
    for name in ("tsv", "stdin"):
        pd.testing.assert_frame_equal(runs[name]["users"], runs["file"]["users"])
        pd.testing.assert_frame_equal(runs[name]["kept_votes"], runs["file"]["kept_votes"])
    assert runs["stdin"]["summary"]["data_integrity"]["input_sha256"] == runs["file"]["summary"]["data_integrity"]["input_sha256"]
