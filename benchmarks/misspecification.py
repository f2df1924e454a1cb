"""Misspecification benchmark (issue 11): the filter's promises when the data depart from the model.

Data come from :mod:`comparemode.scenarios`, a simulator written apart from
``models/simulate.py`` with its own oracle (the Bayes rule with the true process), 3,000 users a
scenario, two models (``alpha`` better with probability mu; the analyst is told mu = 0.7):
the package's own model (``control``), mu told 0.1 too low (``mu_low``, true 0.8) and too high
(``mu_high``, true 0.6), partial attention (``partial``, theta_u ~ Beta(2, 2), careless meaning
theta_u < 1/2), drift (``drift``, attentive until a random change point), per-user mu (``topic``),
a mixture of careless habits (``careless_mix``) and heavy-tailed votes per user (``heavy_tail``).

Per scenario and seed it fits ``TwoTypeEM`` with the told mu (the command line's path, misfit
checks on) and records, side by side with the oracle:

- the AUC of each package score (``p_attentive``, ``llr_decisive_per_vote``, ``llr_per_vote``)
  and of the oracle's P(attentive) against the true attentive users; pi-hat and the true share;
- for alpha in 0.05, 0.1, 0.2: the claimed (expected) and realised careless share among the users
  ``filter_fdr`` keeps and the share kept, for the fit, for the package's *offered* decision (the
  fit where its checks pass; where they fail, the better-fitting model the fit names, see
  ``TwoTypeEM.alternatives_``) and for the oracle;
- the better model's decisive win rate among the truly attentive users' votes (and among the votes
  cast attentively, which differs under partial attention and drift) against the kept votes of the
  whole-user rules (P(attentive) >= 0.5, FDR 0.1) and of the cross-fitted rule
  (``filter_crossfit``, each vote decided by the user's other votes, vote-level FDR 0.05) under
  the offered model, under the fit itself and under the true process (the oracle's
  leave-one-out posteriors), with the vote-level AUC of the cross-fitted score against the
  whole-user one;
- what the checks said: the seeds in which each check failed.

Means over ``--seeds`` seeds. Then 20 seeds each of the control (false alarms of the checks)
and of the two mu-wrong scenarios (the mu warning, and ``mu="estimate"`` recovery), and the
acceptance checks, PASS or FAIL.

Run from the repository root::

    .venv/bin/python benchmarks/misspecification.py             # about 90 s on 2 cores
    .venv/bin/python benchmarks/misspecification.py --mcmc      # and the MCMC path (about 2 more minutes)
    .venv/bin/python benchmarks/misspecification.py --seeds 2 --repeat-seeds 5   # quick look
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy.stats import rankdata

import comparemode as cm
from comparemode.errors import MisfitWarning
from comparemode.inference.crossfit import filter_crossfit
from comparemode.inference.filter import decide_fdr, fdr_keep
from comparemode.scenarios import SCENARIOS, oracle_leave_one_out, simulate_scenario

try:  # run as a script from the repository root: benchmarks/ is on sys.path
    from _table import print_table
except ImportError:  # imported as a module of the benchmarks package
    from benchmarks._table import print_table

ALPHAS = (0.05, 0.1, 0.2)
CROSSFIT_ALPHA = 0.05
N_USERS = 3000
FDR_BAR = 0.12  # realised careless share at alpha = 0.1 where the checks pass
WIN_BAR_CONTROL, WIN_BAR = 0.01, 0.02
AUC_GAP = 0.02
#: A kept set with fewer decisive votes has no win rate to speak of (NaN, "nothing kept").
MIN_KEPT = 200


def auc(truth: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the positives ``truth`` (Mann-Whitney, ties averaged)."""
    truth = np.asarray(truth, dtype=bool)
    score = np.nan_to_num(np.asarray(score, dtype=float), nan=-np.inf)
    r = rankdata(score)
    n1, n0 = truth.sum(), (~truth).sum()
    return float((r[truth].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def fdr_outcome(p: np.ndarray, careless: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Claimed and realised careless share among the users the FDR rule keeps, share kept."""
    table = decide_fdr(pd.DataFrame({"p_attentive": p}), alpha)
    keep = table["keep"].to_numpy()
    claimed = table.attrs["rule"]["expected_careless_share"]
    return claimed, (float(careless[keep].mean()) if keep.any() else 0.0), float(keep.mean())


def one_run(name: str, seed: int) -> dict:
    sc = simulate_scenario(name, N_USERS, seed)
    votes, users = sc.votes, sc.users
    truth = users["attentive"].to_numpy()
    careless = ~truth
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MisfitWarning)
        em = cm.TwoTypeEM(random_seed=seed).fit(votes, mu=sc.told_mu)
    fit_s = time.perf_counter() - t0
    u = em.users_.reindex(users.index)
    offered = em if em.alternative_ is None else em.alternative_
    uo = offered.users_.reindex(users.index)
    out = {
        "scenario": name,
        "seed": seed,
        "fit_s": fit_s,
        "pi_hat": float(em.params_["pi"]),
        "true_share": float(truth.mean()),
        "auc_p": auc(truth, u["p_attentive"]),
        "auc_llr_dec": auc(truth, u["llr_decisive_per_vote"]),
        "auc_llr": auc(truth, u["llr_per_vote"]),
        "auc_oracle": auc(truth, users["p_oracle"]),
        "checks_passed": bool(em.checks_["passed"].all()),
        "warned": any(issubclass(w.category, MisfitWarning) for w in caught),
        "offered": "fit" if em.alternative_ is None else str(em.alternatives_.index[em.alternatives_["chosen"]][0]),
    }
    for check, row in em.checks_.iterrows():
        out[f"failed:{check}"] = row["status"] == "FAILED"
    for a in ALPHAS:
        for who, p in (("fit", u["p_attentive"]), ("offered", uo["p_attentive"]), ("oracle", users["p_oracle"])):
            c, r, k = fdr_outcome(p.to_numpy(), careless, a)
            out[f"{who}_claimed_{a}"], out[f"{who}_realised_{a}"], out[f"{who}_kept_{a}"] = c, r, k
    # win rates of the better model among decisive votes
    dec = (votes["winner"] != "tie").to_numpy()
    better_won = (((votes["winner"] == "model_a") & (votes["model_a"] == sc.better)) | ((votes["winner"] == "model_b") & (votes["model_b"] == sc.better))).to_numpy()
    att_user = users["attentive"].reindex(votes["user"]).to_numpy()

    def win(mask):
        m = dec & mask
        return float(better_won[m].mean()) if m.sum() >= MIN_KEPT else np.nan

    out["win_truth"] = win(att_user)
    out["win_truth_votes"] = win(sc.vote_attentive)
    out["win_all"] = win(np.ones(len(votes), dtype=bool))
    in_kept = lambda result: votes.index.isin(result.kept.index)  # noqa: E731
    out["win_default"] = win(in_kept(em.filter(votes)))
    out["win_fdr"] = win(in_kept(em.filter_fdr(votes, 0.1)))
    xfit = filter_crossfit(votes, offered, alpha=CROSSFIT_ALPHA)
    out["win_crossfit"] = win(in_kept(xfit))
    out["crossfit_kept"] = float(in_kept(xfit).mean())
    # the same rule under the fit itself (the model the analyst chose), for comparison
    out["win_crossfit_fit"] = out["win_crossfit"] if offered is em else win(in_kept(filter_crossfit(votes, em, alpha=CROSSFIT_ALPHA)))
    # and under the true process (the oracle of a cross-fitted decision; two-type scenarios only)
    p_loo = oracle_leave_one_out(sc)
    out["win_crossfit_oracle"] = np.nan if p_loo is None else win(fdr_keep(p_loo, CROSSFIT_ALPHA)[0])
    whole = offered.users_["p_attentive"].reindex(votes["user"]).to_numpy()
    out["auc_votes_whole"] = auc(att_user, whole)
    out["auc_votes_crossfit"] = auc(att_user, xfit.weights.to_numpy())
    return out


def repeat_checks(name: str, seeds) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        sc = simulate_scenario(name, N_USERS, seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MisfitWarning)
            em = cm.TwoTypeEM(random_seed=seed).fit(sc.votes, mu=sc.told_mu)
        est = cm.TwoTypeEM(random_seed=seed, checks=False).fit(sc.votes, mu="estimate")
        rows.append(
            {
                "seed": seed,
                "any_failed": not bool(em.checks_["passed"].all()),
                "mu_failed": em.checks_.loc["mu", "status"] == "FAILED",
                "mu_warning": any(issubclass(w.category, MisfitWarning) and "'mu'" in str(w.message) for w in caught),
                "mu_hat": float(est.params_["mu"]),
                "mu_true": sc.mu_true,
            }
        )
    return pd.DataFrame(rows)


MCMC_SAMPLER = {"draws": 400, "tune": 400, "chains": 2, "cores": 1, "random_seed": 3, "progressbar": False}


def mcmc_part() -> None:
    """The MCMC path (``--mcmc``): the posterior FDR rule at alpha = 0.1 on 2,500 users (mu known
    on the control, estimated where the analyst's mu is wrong), and user-level LOO between two
    types and a continuum on 500 users (the settings of ``tests/test_misfit_slow.py``)."""
    import logging

    logging.getLogger("pymc").setLevel(logging.ERROR)
    rows = []
    for name, estimate in (("control", False), ("mu_low", True), ("mu_high", True)):
        sc = simulate_scenario(name, 2500, 7)
        model = cm.BayesianTwoType(model_config={"mu": "estimate"} if estimate else None, sampler_config=MCMC_SAMPLER)
        model.fit(sc.votes, **({} if estimate else {"mu": sc.told_mu}))
        res = cm.filter_fdr(sc.votes, model.users_, alpha=0.1)
        kept = res.users.index[res.users["keep"]]
        realised = float((~sc.users["attentive"]).reindex(kept).mean())
        mu = float(model.summary().loc["mu", "mean"]) if estimate else float("nan")
        rows.append([name, "estimated" if estimate else "known (0.7)", f3(mu), f3(sc.mu_true), f3(realised), f"{len(kept):,}", f"{model.diagnostics()['r_hat'].max():.4f}"])
    print("\nMCMC: BayesianTwoType and filter_fdr(alpha=0.1) on its posterior, 2,500 users")
    print_table(["scenario", "mu", "posterior mean mu", "true mu", "realised careless share", "users kept", "max R-hat"], rows)
    from comparemode.inference.model_checks import continuum_middle_mass

    rows = []
    for name in ("partial", "control"):
        sc = simulate_scenario(name, 500, 2)
        fits = {"two-type": cm.BayesianTwoType(sampler_config=MCMC_SAMPLER)}
        fits["two-type"].fit(sc.votes, mu=sc.told_mu)
        for kind in ("homogeneous", "continuous"):
            fits[kind] = cm.BayesianAlternative(kind, sampler_config=MCMC_SAMPLER)
            fits[kind].fit(sc.votes, mu=sc.told_mu)
        cmp = cm.compare_models(fits)
        d = cmp.pointwise["continuous_elpd_i"] - cmp.pointwise["two-type_elpd_i"]
        diff, se = float(d.sum()), float(np.sqrt(len(d) * np.var(d)))
        rows.append([name, f"{diff:+.1f}", f"{se:.1f}", f"{continuum_middle_mass(fits['continuous']):.3f}", cmp.types_or_continuum])
    print("\nMCMC: user-level LOO, continuous minus two-type elpd (the same careless users), 500 users")
    print_table(["scenario", "elpd difference", "SE", "continuum's users in (0.1, 0.9)", "verdict"], rows)


def f3(x) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=4, help="seeds per scenario for the tables (means)")
    ap.add_argument("--repeat-seeds", type=int, default=20, help="seeds of the false-alarm and mu-warning runs")
    ap.add_argument("--mcmc", action="store_true", help="also the MCMC path: the posterior FDR rule and LOO (about 2 more minutes)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=cm.errors.BoundaryWarning)
    t_start = time.perf_counter()
    runs = []
    for name in SCENARIOS:
        for seed in range(args.seeds):
            runs.append(one_run(name, seed))
        print(f"[{time.perf_counter() - t_start:6.0f}s] {name}: {args.seeds} seeds", file=sys.stderr, flush=True)
    df = pd.DataFrame(runs)
    mean = df.groupby("scenario", sort=False).mean(numeric_only=True)
    check_cols = [c for c in df.columns if c.startswith("failed:")]

    print(f"\nMisspecification benchmark: {N_USERS:,} users a scenario, means over {args.seeds} seeds, mu told 0.7\n")
    print("Scores: AUC against the true attentive users (the oracle: P(attentive) under the true process)")
    print_table(
        ["scenario", "true share", "pi-hat", "AUC p_attentive", "AUC llr_decisive", "AUC llr_per_vote", "AUC oracle", "fit s"],
        [[n, f3(r.true_share), f3(r.pi_hat), f3(r.auc_p), f3(r.auc_llr_dec), f3(r.auc_llr), f3(r.auc_oracle), f"{r.fit_s:.2f}"] for n, r in mean.iterrows()],
    )
    print("\nFDR rule: claimed / realised careless share among kept users, share of users kept")
    for a in ALPHAS:
        print(f"\nalpha = {a}")
        rows = []
        for n, r in mean.iterrows():
            cells = [n]
            for who in ("fit", "offered", "oracle"):
                cells.append(f"{f3(r[f'{who}_claimed_{a}'])} / {f3(r[f'{who}_realised_{a}'])} / {f3(r[f'{who}_kept_{a}'])}")
            rows.append(cells)
        print_table(["scenario", "fit (mu told)", "offered decision", "oracle"], rows)
    print("\nChecks: seeds in which each check failed, and the decision the package offered")
    offered = df.groupby("scenario", sort=False)["offered"].agg(lambda s: ", ".join(f"{k} x{v}" for k, v in s.value_counts().items()))
    counts = df.groupby("scenario", sort=False)[check_cols].sum()
    print_table(
        ["scenario", *[c.split(":", 1)[1] for c in check_cols], "offered decision"],
        [[n, *[f"{int(counts.loc[n, c])}/{args.seeds}" for c in check_cols], offered[n]] for n in counts.index],
    )
    print(f"\nBetter model's decisive win rate: attentive truth against kept votes (cross-fitted: vote-level FDR {CROSSFIT_ALPHA} under the offered model)")
    print_table(
        ["scenario", "attentive users", "attentive votes", "all votes", "kept: P>=0.5", "kept: FDR 0.1", "kept: cross-fitted", "bias cross-fitted",
         "votes kept x-fit", "x-fit under the fit", "x-fit oracle", "bias oracle", "AUC votes whole", "AUC votes x-fit"],
        [
            [n, f3(r.win_truth), f3(r.win_truth_votes), f3(r.win_all), f3(r.win_default), f3(r.win_fdr), f3(r.win_crossfit),
             "nothing kept" if not np.isfinite(r.win_crossfit) else f"{r.win_crossfit - r.win_truth:+.3f}",
             f3(r.crossfit_kept), f3(r.win_crossfit_fit), f3(r.win_crossfit_oracle),
             "n/a" if not np.isfinite(r.win_crossfit_oracle) else f"{r.win_crossfit_oracle - r.win_truth:+.3f}",
             f3(r.auc_votes_whole), f3(r.auc_votes_crossfit)]
            for n, r in mean.iterrows()
        ],
    )
    print(f"(a win rate needs at least {MIN_KEPT} kept decisive votes; 'x-fit under the fit' is the cross-fitted set of the fit with the told mu; "
          "'x-fit oracle' the same rule on each vote's P(attentive | the user's other votes) under the true process, two-type scenarios only)")

    seeds = range(1000, 1000 + args.repeat_seeds)
    print(f"\n[{time.perf_counter() - t_start:6.0f}s] repeated runs ({args.repeat_seeds} seeds each)", file=sys.stderr, flush=True)
    rep = {name: repeat_checks(name, seeds) for name in ("control", "mu_low", "mu_high")}
    print(f"\nRepeated runs, {args.repeat_seeds} seeds each")
    print_table(
        ["scenario", "any check failed", "mu check failed", "MisfitWarning on mu", "max |mu-hat - mu| (mu='estimate')"],
        [[n, f"{int(r.any_failed.sum())}/{len(r)}", f"{int(r.mu_failed.sum())}/{len(r)}", f"{int(r.mu_warning.sum())}/{len(r)}", f3((r.mu_hat - r.mu_true).abs().max())] for n, r in rep.items()],
    )

    if args.mcmc:
        print(f"[{time.perf_counter() - t_start:6.0f}s] the MCMC path", file=sys.stderr, flush=True)
        mcmc_part()

    # acceptance
    print("\nAcceptance checks")
    verdicts = []

    def verdict(text, ok):
        verdicts.append(ok)
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")

    for n, r in mean.iterrows():
        passed_all = bool(df[df.scenario == n]["checks_passed"].all())
        failed_all = bool((~df[df.scenario == n]["checks_passed"]).all())
        real = r["fit_realised_0.1"]
        if passed_all:
            verdict(f"{n}: checks pass in every seed and the realised careless share at alpha 0.1 is {real:.3f} <= {FDR_BAR}", real <= FDR_BAR)
        elif failed_all:
            verdict(f"{n}: a check fails (with a MisfitWarning) in every seed (realised share of the fit {real:.3f})", bool(df[df.scenario == n]["warned"].all()))
        else:
            ok_pass = df[(df.scenario == n) & df.checks_passed]["fit_realised_0.1"]
            verdict(f"{n}: checks pass in {len(ok_pass)} of {args.seeds} seeds; realised share in those {ok_pass.mean():.3f} <= {FDR_BAR}", bool(ok_pass.mean() <= FDR_BAR))
    c = rep["control"]
    verdict(f"control: a check failed in {int(c.any_failed.sum())} of {len(c)} seeds (at most 5%)", c.any_failed.mean() <= 0.05)
    verdict(f"control: the mu warning fired in {int(c.mu_warning.sum())} of {len(c)} seeds (at most 1)", c.mu_warning.sum() <= 1)
    for n in ("mu_low", "mu_high"):
        r = rep[n]
        verdict(f"{n}: the mu warning fired in {int(r.mu_warning.sum())} of {len(r)} seeds (at least 19 of 20)", r.mu_warning.mean() >= 0.95)
        err = float((r.mu_hat - r.mu_true).abs().max())
        verdict(f"{n}: mu='estimate' within 0.02 of the true mu in every seed (largest error {err:.4f})", err <= 0.02)
    not_applicable = []
    for n, r in mean.iterrows():
        bar = WIN_BAR_CONTROL if n == "control" else WIN_BAR
        per_seed = df[df.scenario == n]["win_crossfit"]
        if per_seed.isna().any():  # the offered model keeps (almost) nothing at this error rate
            not_applicable.append(n)
            print(f"  N/A   {n}: the offered model keeps fewer than {MIN_KEPT} decisive votes at vote-level FDR {CROSSFIT_ALPHA} in "
                  f"{int(per_seed.isna().sum())} of {len(per_seed)} seeds (votes kept {r.crossfit_kept:.3f}): the data cannot give a set this "
                  f"clean; the cross-fitted set of the fit itself has win rate {r.win_crossfit_fit:.3f} against the truth {r.win_truth:.3f}")
        else:
            bias = r.win_crossfit - r.win_truth
            oracle = "" if not np.isfinite(r.win_crossfit_oracle) else f"; the oracle's cross-fitted set {r.win_crossfit_oracle - r.win_truth:+.3f}"
            verdict(f"{n}: cross-fitted kept votes' win rate {r.win_crossfit:.3f} within {bar} of the attentive truth {r.win_truth:.3f} (bias {bias:+.3f}{oracle})", abs(bias) <= bar)
        gap = r.auc_votes_whole - r.auc_votes_crossfit
        verdict(f"{n}: cross-fitted AUC {r.auc_votes_crossfit:.3f} within {AUC_GAP} of the whole-user rule's {r.auc_votes_whole:.3f}", gap <= AUC_GAP)
    total = time.perf_counter() - t_start
    verdict(f"runtime {total:.0f} s, under 10 minutes", total < 600)
    print(f"\n{sum(verdicts)} of {len(verdicts)} checks passed" + (f"; not applicable: {', '.join(not_applicable)}" if not_applicable else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
