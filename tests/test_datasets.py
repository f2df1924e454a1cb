"""The LLMFAO copy shipped with the package (comparemode/_data/llmfao) and its loader
``comparemode.datasets.load_llmfao`` (issue 15, point 3): it must run with nothing beside the
repository, give the original data exactly, and carry its licence and citation."""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import re
import shutil
import tomllib
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

import comparemode as cm
from comparemode import datasets
from comparemode.datasets import (
    LLMFAO_FILES,
    LLMFAO_SHA256,
    DatasetIntegrityError,
    llmfao_path,
    load_llmfao,
)
from comparemode.errors import ConfigError, OutputExistsError

ROOT = Path(__file__).resolve().parents[1]
#: The original files, when ../shared sits beside the repository (not needed to run the tests).
SHARED = ROOT.parent / "shared/data/llmfao"


@pytest.fixture(scope="module")
def ds():
    return load_llmfao()


def _shipped_dir():
    return resources.files("comparemode").joinpath("_data").joinpath("llmfao")


def _original_bytes(shipped: str) -> bytes:
    """A shipped file's content, decompressed here without the loader's code."""
    data = _shipped_dir().joinpath(shipped).read_bytes()
    return gzip.decompress(data) if shipped.endswith(".gz") else data


def _shared_or_skip() -> Path:
    if not (SHARED / "crowd-comparisons.csv").is_file():
        pytest.skip(f"the original LLMFAO files are not at {SHARED} (../shared beside the repository); "
                    "the shipped copy is checked by its SHA-256 sums instead")
    return SHARED


# --------------------------------------------------------------------------- counts


def test_the_numbers_of_the_data_contract(ds):
    v = ds.votes
    assert len(v) == 8931 and len(ds.raw) == 8931
    assert v["user"].nunique() == 124
    assert pd.concat([v["model_a"], v["model_b"]]).nunique() == 59
    assert v["id"].nunique() == 2139
    assert v["prompt_id"].nunique() == 13
    assert v["winner"].eq("tie").mean() == pytest.approx(0.39, abs=0.01)
    assert set(v["winner"]) == {"model_a", "model_b", "tie"}
    assert list(v.columns) == ["user", "model_a", "model_b", "winner", "prompt_id", "id", "model_x", "model_y"]
    assert list(ds.raw.columns) == ["id", "prompt", "model_x", "model_y", "worker", "winner", "left", "right"]
    assert set(ds.raw["winner"]) == {"left", "right", "tie"}
    assert list(ds.gpt4.columns) == ["id", "prompt", "model_x", "model_y", "winner", "left", "right"]
    assert len(ds.gpt4) == 2139 and ds.gpt4["id"].is_unique
    assert list(ds.responses.columns) == [
        "id", "prompt", "text", "type", "slug", "note", "model_x", "result_x", "model_y", "result_y"
    ]
    assert len(ds.responses) == 2139 and ds.responses["id"].is_unique
    assert len(ds.models) == 70 and ds.models["id"].is_unique
    assert list(ds.models.columns) == ["id", "api_id", "name", "api", "type", "org"]
    assert len(ds.prompts) == 19 and ds.prompts["id"].is_unique
    assert list(ds.prompts.columns) == ["id", "text", "type", "slug", "stop", "note"]
    assert isinstance(v.index, pd.RangeIndex) and v.index.equals(ds.raw.index)
    assert "8,931 votes by 124 workers on 2,139 pairs of 59 models" in repr(ds)


def test_votes_are_what_load_votes_reads_from_the_shipped_file(ds):
    path = llmfao_path()
    assert path.name == "crowd-comparisons.csv.gz" and path.is_file()
    pd.testing.assert_frame_equal(ds.votes, cm.load_votes(path))
    pd.testing.assert_frame_equal(ds.votes, cm.read_llmfao(path))
    assert ds.votes.attrs["comparemode"]["format"] == "llmfao"


def test_votes_follow_the_raw_rows(ds):
    v, raw = ds.votes, ds.raw
    assert v["user"].tolist() == raw["worker"].tolist()
    assert v["prompt_id"].tolist() == raw["prompt"].tolist()
    assert v["model_a"].tolist() == raw["left"].tolist() and v["model_b"].tolist() == raw["right"].tolist()
    assert v["winner"].tolist() == raw["winner"].map({"left": "model_a", "right": "model_b", "tie": "tie"}).tolist()
    for c in ("id", "model_x", "model_y"):
        assert v[c].tolist() == raw[c].tolist()


# --------------------------------------------------------------------------- the originals


def test_shipped_votes_equal_the_original_file_rows(ds):
    shared = _shared_or_skip()
    pd.testing.assert_frame_equal(ds.votes, cm.read_llmfao(shared / "crowd-comparisons.csv"))
    original = pd.read_csv(shared / "crowd-comparisons.csv", dtype=str, keep_default_na=False)
    assert ds.raw.astype(str).to_numpy().tolist() == original.to_numpy().tolist()
    gpt4 = pd.read_csv(shared / "gpt4-crowd-comparisons.csv", dtype=str, keep_default_na=False)
    assert ds.gpt4.astype(str).to_numpy().tolist() == gpt4.to_numpy().tolist()
    lines = (shared / "pairs-crowd.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["result_y"] for line in lines] == ds.responses["result_y"].tolist()


def test_shipped_files_are_the_originals_byte_for_byte():
    shared = _shared_or_skip()
    for shipped, original in LLMFAO_FILES.items():
        if original is not None:
            assert _original_bytes(shipped) == (shared / original).read_bytes(), shipped


# --------------------------------------------------------------------------- checksums


def test_checksums_of_the_shipped_files():
    assert set(LLMFAO_SHA256) == {o for o in LLMFAO_FILES.values() if o is not None}
    for shipped, original in LLMFAO_FILES.items():
        if original is not None:
            assert hashlib.sha256(_original_bytes(shipped)).hexdigest() == LLMFAO_SHA256[original], shipped


def test_source_md_lists_the_same_checksums_and_every_file():
    text = _shipped_dir().joinpath("SOURCE.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", text, flags=re.M))
    assert table == LLMFAO_SHA256
    for shipped in LLMFAO_FILES:
        assert f"`{shipped}`" in text
    assert datasets.LLMFAO_COMMIT in text and "github.com/dustalov/llmfao" in text


def test_the_directory_holds_exactly_the_listed_files():
    shipped = sorted(p.name for p in _shipped_dir().iterdir() if p.is_file())
    assert shipped == sorted(LLMFAO_FILES)


def test_gzip_files_carry_no_time_or_name():
    # gzip -9 -n: no modification time and no file name in the header, so the bytes are reproducible
    for shipped in LLMFAO_FILES:
        if shipped.endswith(".gz"):
            head = _shipped_dir().joinpath(shipped).read_bytes()[:10]
            assert head[:3] == b"\x1f\x8b\x08", shipped
            assert head[3] & 0x08 == 0, f"{shipped} stores a file name"
            assert head[4:8] == b"\0\0\0\0", f"{shipped} stores a time"


def test_a_damaged_copy_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "llmfao"
    copy.mkdir()
    for shipped in LLMFAO_FILES:
        (copy / shipped).write_bytes(_shipped_dir().joinpath(shipped).read_bytes())
    monkeypatch.setattr(datasets, "_resource", lambda shipped: copy / shipped)
    assert len(load_llmfao().votes) == 8931  # the intact copy loads
    models = (copy / "models.jsonl").read_bytes()
    (copy / "models.jsonl").write_bytes(models.replace(b'"Stanford"', b'"Stamford"', 1))
    with pytest.raises(DatasetIntegrityError, match="models.jsonl.*SHA-256"):
        load_llmfao()
    assert len(load_llmfao(verify=False).models) == 70
    (copy / "models.jsonl").write_bytes(models)
    (copy / "pairs-crowd.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetIntegrityError, match="gzip"):
        load_llmfao()
    (copy / "pairs-crowd.jsonl.gz").unlink()
    with pytest.raises(DatasetIntegrityError, match="reinstall"):
        load_llmfao()


# --------------------------------------------------------------------------- joins


def test_every_vote_has_a_response_and_a_gpt4_verdict(ds):
    ids = set(ds.votes["id"])
    assert ids <= set(ds.responses["id"]) and ids <= set(ds.gpt4["id"])
    assert set(ds.responses["id"]) == set(ds.gpt4["id"])
    # and they describe the same pair: prompt and both models
    for table in (ds.responses, ds.gpt4):
        m = ds.votes.merge(table, on="id", suffixes=("", "_t"), validate="many_to_one")
        assert len(m) == 8931
        assert (m["prompt_id"] == m["prompt"]).all()
        assert (m["model_x"] == m["model_x_t"]).all() and (m["model_y"] == m["model_y_t"]).all()


def test_ids_join_across_tables_without_conversion(ds):
    names = ds.models.set_index("id")["name"]
    v = ds.votes
    shown = set(zip(v["model_a"], v["model_b"]))
    pairs = set(zip(names.reindex(v["model_x"]).to_numpy(), names.reindex(v["model_y"]).to_numpy()))
    assert {frozenset(p) for p in shown} == {frozenset(p) for p in pairs}
    assert set(v["prompt_id"]) <= set(ds.prompts["id"])
    assert set(ds.responses["prompt"]) <= set(ds.prompts["id"])
    texts = ds.prompts.set_index("id")["text"]
    assert (ds.responses["text"].to_numpy() == texts.reindex(ds.responses["prompt"]).to_numpy()).all()


def test_response_texts_of_named_ids(ds):
    r = ds.responses.set_index("id")
    assert r.loc[0, "text"] == "Argue for and against the use of kubernetes in the style of a haiku."
    assert r.loc[0, "result_x"] == "For Kubernetes, a plea,\nIn containers it sets us free,\nYet complexity, its fee."
    assert r.loc[0, "prompt"] == "8" and r.loc[0, "model_x"] == 97 and r.loc[0, "model_y"] == 98
    assert pd.isna(r.loc[0, "note"])
    lines = _original_bytes("pairs-crowd.jsonl.gz").decode("utf-8").splitlines()
    rows = {row["id"]: row for row in map(json.loads, lines)}
    for pair in (0, 1, 1500, 2500, 3235):
        for field in ("text", "result_x", "result_y", "slug", "type"):
            assert r.loc[pair, field] == rows[pair][field], (pair, field)
        assert (r.loc[pair, "model_x"], r.loc[pair, "model_y"]) == (rows[pair]["model_x"], rows[pair]["model_y"])


def test_ids_stay_as_written(ds):
    v = ds.votes
    assert all(isinstance(u, str) for u in v["user"]) and all(isinstance(p, str) for p in v["prompt_id"])
    assert (v.loc[0, "user"], v.loc[0, "prompt_id"]) == ("58", "8")  # the file's first row: 0,8,97,98,58,tie,...
    assert all(isinstance(u, str) for u in ds.raw["worker"]) and ds.raw.loc[0, "worker"] == "58"
    assert all(isinstance(p, str) for p in ds.prompts["id"]) and all(isinstance(p, str) for p in ds.responses["prompt"])
    for table in (v, ds.raw, ds.gpt4, ds.responses):
        assert table["id"].dtype == "int64" and table["model_x"].dtype == "int64"
    assert ds.models["id"].dtype == "int64"
    assert ds.models.loc[ds.models["id"] == 97, "name"].item() == "Airoboros L2 70B"


def test_each_call_gives_new_tables():
    first = load_llmfao()
    first.votes.loc[0, "winner"] = "model_b"
    first.responses.loc[0, "result_x"] = "edited"
    again = load_llmfao()
    assert again.votes.loc[0, "winner"] == "tie" and again.responses.loc[0, "result_x"].startswith("For Kubernetes")
    with pytest.raises(AttributeError):
        again.votes = first.votes  # frozen


# --------------------------------------------------------------------------- licence and citation


def test_licence_and_citation_are_in_the_installed_package(ds):
    licence = _shipped_dir().joinpath("LICENSE.CC-BY").read_text(encoding="utf-8")
    assert licence.startswith("Attribution 4.0 International")
    assert "Creative Commons Attribution 4.0 International Public License" in licence
    assert ds.license == "CC-BY-4.0" and ds.license_text == licence
    assert "Ustalov" in ds.citation and "LLMFAO" in ds.citation and datasets.LLMFAO_COMMIT in ds.citation
    assert "CC BY 4.0" in ds.citation and "llmonitor" in ds.citation
    assert ds.bibtex.startswith("@misc{") and "Ustalov, Dmitry" in ds.bibtex
    source = _shipped_dir().joinpath("SOURCE.md").read_text(encoding="utf-8")
    assert ds.source == source and ds.bibtex in source
    assert ds.instruction.startswith("# Which AI is Better?")


def test_the_wheel_ships_every_data_file():
    """pyproject's package-data patterns cover every shipped file (the wheel build itself is
    checked by hand: pip wheel . lists comparemode/_data/llmfao/*)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = config["package-data"]["comparemode"]
    assert "comparemode" in config["packages"]
    for shipped in LLMFAO_FILES:
        assert any(fnmatch.fnmatch(f"_data/llmfao/{shipped}", p) for p in patterns), shipped


def test_datasets_from_the_package_root():
    assert cm.datasets is datasets and "datasets" in cm.__all__
    assert cm.datasets.load_llmfao is load_llmfao


# --------------------------------------------------------------------------- llmfao_path


def test_llmfao_path_writes_the_originals_on_request(tmp_path):
    out = llmfao_path("crowd-comparisons.csv", tmp_path)
    assert out == tmp_path / "crowd-comparisons.csv"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == LLMFAO_SHA256["crowd-comparisons.csv"]
    assert llmfao_path("crowd-comparisons.csv", tmp_path) == out  # the same bytes: left alone
    gz = llmfao_path("pairs-crowd.jsonl.gz", tmp_path)
    assert gz.read_bytes() == _shipped_dir().joinpath("pairs-crowd.jsonl.gz").read_bytes()
    lic = llmfao_path("LICENSE.CC-BY", tmp_path)
    assert lic.read_bytes() == _shipped_dir().joinpath("LICENSE.CC-BY").read_bytes()
    out.write_text("id\n")
    with pytest.raises(OutputExistsError, match="already exists"):
        llmfao_path("crowd-comparisons.csv", tmp_path)


def test_llmfao_path_refuses_what_it_cannot_give(tmp_path):
    with pytest.raises(ConfigError, match="ships compressed.*crowd-comparisons.csv.gz"):
        llmfao_path("crowd-comparisons.csv")
    with pytest.raises(ConfigError, match="not an LLMFAO file"):
        llmfao_path("gpt3-crowd-comparisons.csv", tmp_path)
    with pytest.raises(ConfigError, match="not an existing directory"):
        llmfao_path("models.jsonl", tmp_path / "missing")
    for shipped in LLMFAO_FILES:
        assert llmfao_path(shipped).read_bytes() == _shipped_dir().joinpath(shipped).read_bytes()


def test_the_command_line_reads_the_shipped_file(tmp_path):
    from comparemode.cli import main

    # the shipped .csv.gz is a votes file as it is; a copy of it too
    shutil.copyfile(llmfao_path(), tmp_path / "votes.csv.gz")
    for votes in (llmfao_path(), tmp_path / "votes.csv.gz"):
        counts = tmp_path / f"counts-{votes.parent.name}.parquet"
        assert main(["count", str(votes), "--into", str(counts), "--quiet"]) == 0
        assert cm.VoteCounts.load(counts).n_votes == 8931
