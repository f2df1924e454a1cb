"""What the "no evidence" policies do (issue 14): users whose decisive votes move the odds of
attentive against careless by less than a factor 3 either way, or who never cast a decisive
vote, kept as the rule decides (``uninformative="keep"``), dropped (``"drop"``) or kept with
their votes weighted by no more than their picks support (``"weight"``).

1. Simulation (:func:`comparemode.scenarios.simulate_tie_habits`, apart from the package's model): two models, mu = 0.75; 60%
   attentive users, 25% careless random clickers, 15% "tie-heavy" users who answer tie to 90%
   of votes and pick at random otherwise; 20 votes each; ``--seeds`` data sets. Per policy:
   users kept, the careless and tie-heavy shares among the kept users, and the weight their
   votes carry.
2. LLMFAO (joint EM, no reference): per policy, users and votes kept, the users without
   evidence (and tie-only), and the kept decisive votes' agreement with GPT-4's verdict on
   the same comparison (``gpt4-crowd-comparisons.csv``), weighted by the votes' weights.

    .venv/bin/python benchmarks/uninformative.py
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import comparemode as cm
from comparemode.scenarios import simulate_tie_habits

LLMFAO = Path(__file__).resolve().parents[2] / "shared/data/llmfao"
POLICIES = ("keep", "drop", "weight")


def simulation(seeds: int) -> None:
    print(f"1. Simulation: {seeds} data sets x 600 users (60% attentive, 25% careless, 15% tie-heavy), 20 votes each, FDR 0.1")
    rows = []
    for seed in range(seeds):
        votes, kind = simulate_tie_habits(600, 20, random_seed=seed)
        em = cm.TwoTypeEM(random_seed=0, checks=False).fit(votes, mu={"x": 0.75})
        for policy in POLICIES:
            res = em.filter_fdr(votes, 0.1, uninformative=policy)
            kept = res.users.index[res.users["keep"]]
            w = res.weights.groupby(votes["user"]).first()
            k = kind.reindex(kept)
            rows.append({"policy": policy, "users kept": len(kept), "careless share": (k == "careless").mean(), "tie-heavy share": (k == "tie_heavy").mean(),
                         "no-evidence users": res.summary.get("users_uninformative", 0),
                         "tie-heavy weight": w.reindex(kind.index[kind == "tie_heavy"]).mean(), "attentive weight": w.reindex(kind.index[kind == "attentive"]).mean()})
    print(pd.DataFrame(rows).groupby("policy", sort=False).mean().round(3).to_string())


def llmfao() -> None:
    print("\n2. LLMFAO (8,931 votes, 124 workers): joint EM, FDR 0.1")
    path = LLMFAO / "crowd-comparisons.csv"
    if not path.exists():
        print(f"   {path} is not there: skipped")
        return
    votes = cm.load_votes(path)
    em = cm.JointEM(random_seed=0).fit(votes)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    gpt4 = pd.read_csv(LLMFAO / "gpt4-crowd-comparisons.csv", dtype=str, keep_default_na=False).drop_duplicates("id").set_index("id")["winner"]
    ref = raw["id"].map(gpt4)
    rows = []
    for policy in POLICIES:
        res = em.filter_fdr(votes, 0.1, uninformative=policy)
        row = {"policy": policy, "users kept": int(res.summary["users_kept"]), "votes kept": int(res.summary["votes_kept"]),
               "no-evidence users": res.summary.get("users_uninformative", 0), "tie-only": res.summary.get("users_tie_only", 0),
               "expected careless share": round(res.summary["expected_careless_share"], 4)}
        idx = res.kept.index
        dec = (raw["winner"].loc[idx] != "tie") & ref.loc[idx].isin(["left", "right"])
        agree = (raw["winner"].loc[idx] == ref.loc[idx])[dec]
        row["weighted agreement with GPT-4 (decisive)"] = round(float(np.average(agree, weights=res.weights.loc[idx][dec])), 4)
        rows.append(row)
    print(pd.DataFrame(rows).set_index("policy").to_string())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    simulation(args.seeds)
    llmfao()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
