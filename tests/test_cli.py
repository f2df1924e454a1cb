"""The command line: documented options, outputs, refusal to overwrite, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from comparemode import simulate_votes
from comparemode.cli import OUTPUT_FILES, build_parser, main


def _run_parser_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return parser, sub.choices["run"]


def test_help_documents_every_option(capsys):
    _, run = _run_parser_help()
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for action in run._actions:
        for flag in action.option_strings:
            assert flag in text
        if action.option_strings:
            assert action.help, f"{action.option_strings} has no help text"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "run" in capsys.readouterr().out


def test_console_script_is_installed(tmp_path):
    from pathlib import Path

    script = Path(sys.executable).parent / "comparemode"
    out = subprocess.run([str(script), "run", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and "--strengths" in out.stdout


def test_simulated_run_reports_truth_against_recovery(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["run", "--sim-users", "400", "--sim-votes", "15", "--seed", "3", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "true" in printed and "recovered" in printed and "accuracy" in printed
    assert "random clicker" in printed and "true parameters" in printed
    # CSV below a million votes; the posterior is written by --method mcmc, the leaderboard by --method joint
    written = {p.name for p in out.iterdir()} - {"manifest.json"}
    assert written == {"users.csv", "kept_votes.csv", "dropped_votes.csv", "summary.json"} and written <= set(OUTPUT_FILES)
    summary = json.loads((out / "summary.json").read_text())
    sim_part = summary["simulation"]
    assert 0.5 < sim_part["accuracy"] <= 1 and 0.5 < sim_part["accuracy_true_params"] <= 1
    assert summary["filter"]["votes_kept"] + summary["filter"]["votes_dropped"] == 400 * 15
    users = pd.read_csv(out / "users.csv")
    kept = pd.read_csv(out / "kept_votes.csv")
    assert len(users) == 400
    assert set(kept["user"]) == set(users.loc[users["keep"], "user"])
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "res"
    args = ["run", "--sim-users", "100", "--sim-votes", "10", "--out", str(out), "--quiet"]
    assert main(args) == 0
    before = (out / "summary.json").read_text()
    assert main(args[:-1] + ["--seed", "9", "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == before
    assert main(args + ["--seed", "9", "--force"]) == 0
    assert (out / "summary.json").read_text() != before


def test_votes_file_with_mu_and_strengths(tmp_path):
    sim = simulate_votes(n_users=150, votes_per_user=12, random_seed=8)
    path = tmp_path / "votes.csv"
    sim.votes.to_csv(path, index=False)
    assert main(["run", str(path), "--mu", "model_x=0.7", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    pd.Series({"model_x": 0.8473, "model_y": 0.0}, name="score").rename_axis("model").reset_index().to_csv(tmp_path / "s.csv", index=False)
    assert main(["run", str(path), "--strengths", str(tmp_path / "s.csv"), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert a["params"]["pi"] == pytest.approx(b["params"]["pi"], abs=1e-3)
    assert a["reference"]["kind"] == "scalar" and a["reference"]["mu"] == 0.7


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--mu", "0.7"], "MODEL=P"),
        (["--mu", "model_x=high"], "not a number"),
    ],
)
def test_bad_mu_argument(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        main(["run", "votes.csv", *extra, "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_votes_file_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "votes.csv"
    pd.DataFrame({"user": [1, 2], "model_a": ["x", "x"], "model_b": ["y", "x"], "winner": ["model_a", "model_b"]}).to_csv(path, index=False)
    assert main(["run", str(path), "--mu", "x=0.7", "--out", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("comparemode: error:") and "model_a" in err and "[1]" in err
    assert main(["run", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    assert "nope.csv" in capsys.readouterr().err


def test_simulation_refuses_a_reference(tmp_path, capsys):
    assert main(["run", "--mu", "model_x=0.7", "--out", str(tmp_path), "--quiet"]) == 1
    assert "need a VOTES file" in capsys.readouterr().err


def test_mcmc_run_with_fdr(tmp_path, capsys):
    out = tmp_path / "mc"
    code = main(
        ["run", "--method", "mcmc", "--estimate-mu", "--sim-users", "200", "--sim-votes", "10", "--draws", "200",
         "--tune", "200", "--chains", "2", "--fdr", "0.1", "--out", str(out), "--quiet"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "94% HDI" in printed and "expected careless share <= 0.1" in printed and "MCMC diagnostics" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fit"]["method"] == "mcmc" and summary["filter"]["rule"] == "bayesian_fdr"
    assert "mu" in summary["params"] and summary["params"]["mu"]["hdi_lower"] < summary["params"]["mu"]["hdi_upper"]
    assert isinstance(summary["fit"]["diagnostics_failed"], list)
    from comparemode import BayesianTwoType

    loaded = BayesianTwoType.load(out / "posterior.nc")
    users = pd.read_csv(out / "users.csv", index_col="user")
    np.testing.assert_allclose(loaded.users_["p_attentive"].reindex(users.index), users["p_attentive"])


def test_estimate_mu_with_the_em(tmp_path, capsys):
    out = tmp_path / "est"
    assert main(["run", "--estimate-mu", "--sim-users", "400", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference"]["source"] == "estimated"
    iv = summary["mu_interval"]
    assert iv["lower"] < summary["params"]["mu"] < iv["upper"]
    assert main(["run", "--estimate-mu", "--method", "joint", "--out", str(tmp_path / "j"), "--quiet"]) == 1
    assert "drop --estimate-mu" in capsys.readouterr().err


def _scenario_file(tmp_path, name, n=1500, seed=1):
    from comparemode.scenarios import simulate_scenario

    path = tmp_path / f"{name}.csv"
    simulate_scenario(name, n, seed).votes.to_csv(path, index=False)
    return path


def test_two_models_without_mu_estimate_it(tmp_path, capsys):
    path = _scenario_file(tmp_path, "mu_low")
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "mu is estimated from the votes" in captured.err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["reference"]["source"] == "estimated" and abs(summary["params"]["mu"] - 0.8) < 0.02
    assert summary["checks_passed"] and summary["filter"]["promise"]["status"] == "kept"


def test_a_wrong_mu_is_reported_once_in_plain_words_and_recorded(tmp_path, capsys):
    path = _scenario_file(tmp_path, "mu_low")
    assert main(["run", str(path), "--mu", "alpha=0.7", "--fdr", "0.1", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if line.startswith("comparemode: warning (MisfitWarning)")]
    assert len(warned) == len(set(warned)) >= 1 and any("'mu'" in line and "0.7" in line for line in warned)
    assert "Traceback" not in captured.err and "warnings.warn" not in captured.err
    assert "promise VOID" in captured.out and "better-fitting model: two-type, mu estimated" in captured.out
    assert "leave out --mu" in captured.out and "favoured model's decisive win rate" in captured.out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert not summary["checks_passed"]
    failed = {row["check"] for row in summary["checks"] if row["status"] == "FAILED"}
    assert "mu" in failed
    assert any(w["category"] == "MisfitWarning" for w in summary["warnings"])
    assert summary["filter"]["promise"]["status"] == "void"
    assert summary["filter"]["alternative"]["model"] == "two-type, mu estimated"
    assert {row["model"] for row in summary["alternatives"]} >= {"two-type, mu as fitted", "two-type, mu estimated"}


def test_crossfit_and_the_continuous_method(tmp_path, capsys):
    path = _scenario_file(tmp_path, "control")
    assert main(["run", str(path), "--mu", "alpha=0.7", "--crossfit", "--out", str(tmp_path / "x"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert summary["filter"]["rule"] == "crossfit_fdr" and summary["filter"]["alpha"] == 0.05
    kept = pd.read_csv(tmp_path / "x" / "kept_votes.csv")
    assert len(kept) == summary["filter"]["votes_kept"]
    users = pd.read_csv(tmp_path / "x" / "users.csv")
    assert (users["votes_kept"] + users["votes_dropped"] == users["n_votes"]).all()
    assert main(["run", str(path), "--mu", "alpha=0.7", "--method", "continuous", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["fit"]["method"] == "continuous" and "quality_mean" in summary["params"]
    assert summary["filter"]["promise"]["status"] == "unchecked"
    assert "quality" in pd.read_csv(tmp_path / "c" / "users.csv").columns
    assert main(["run", str(path), "--mu", "alpha=0.7", "--method", "continuous", "--ties", "davidson", "--out", str(tmp_path / "d"), "--quiet"]) == 1
    assert "--ties" in capsys.readouterr().err


def test_joint_method_writes_a_leaderboard(tmp_path, capsys):
    strengths = {"a": 1.0, "b": 0.3, "c": -0.2, "d": -1.1}
    sim = simulate_votes(n_users=300, votes_per_user=15, strengths=strengths, random_seed=4)
    path = tmp_path / "votes.parquet"
    sim.votes.to_parquet(path)
    assert main(["run", str(path), "--method", "joint", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    board = pd.read_csv(tmp_path / "o" / "leaderboard.csv", index_col="model")
    assert board.index.tolist() == ["a", "b", "c", "d"]  # the true order
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["fit"]["method"] == "joint" and len(summary["leaderboard"]) == 4
    assert main(["run", str(path), "--method", "joint", "--mu", "a=0.7", "--out", str(tmp_path / "p"), "--quiet"]) == 1
    assert "drop --mu" in capsys.readouterr().err


def test_parquet_votes_files_written_a_row_group_at_a_time(tmp_path, monkeypatch):
    """The kept and dropped Parquet files, written part by part (a row group of PART_ROWS votes
    each, selected when written), hold what the whole side written at once holds: the same
    rows, row ids, columns, weights and decisions."""
    import pyarrow.parquet as pq

    from comparemode import cli

    sim = simulate_votes(n_users=400, votes_per_user=8, mu=0.7, random_seed=6)
    path = tmp_path / "votes.parquet"
    sim.votes.to_parquet(path)
    args = ["run", str(path), "--mu", "model_x=0.7", "--format", "parquet", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    monkeypatch.setattr(cli, "PART_ROWS", 250)
    assert main(args + ["--out", str(tmp_path / "parts")]) == 0
    for name in ("kept_votes.parquet", "dropped_votes.parquet"):
        whole, parts = pd.read_parquet(tmp_path / "whole" / name), pd.read_parquet(tmp_path / "parts" / name)
        assert len(whole) > 250
        assert pq.ParquetFile(tmp_path / "parts" / name).metadata.num_row_groups == -(-len(whole) // 250)
        pd.testing.assert_frame_equal(parts, whole, check_exact=True)
    kept, dropped = (pd.read_parquet(tmp_path / "parts" / f"{s}_votes.parquet") for s in ("kept", "dropped"))
    assert sorted(np.concatenate([kept["row"], dropped["row"]])) == list(range(len(sim.votes)))
