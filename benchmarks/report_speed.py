"""Speed of ``comparemode report`` on the shipped LLMFAO votes (issue 16, point 3).

Runs :func:`comparemode.write_report` on LLMFAO (8,931 votes, 124 users, 59 models; the data
ship with the package, :func:`comparemode.datasets.llmfao_path`) with the default settings,
as ``comparemode report FILE`` does, and prints

1. the time of every stage of the report, from its own progress messages (each stage runs
   from its message to the next one);
2. per MCMC fit: wall time, one logp+gradient evaluation of the compiled PyMC model (ms, mean
   over 200 evaluations at posterior draws), the sampler's mean tree depth and leapfrog steps
   per draw (tuning included), the step size, the gradient evaluations of all chains, and
   whether every sampler diagnostic passed (R-hat, ESS bulk and tail, divergences, E-BFMI, the
   report's thresholds);
3. the total against the target (90 s on a quiet 2-core machine, every diagnostic passing).

``--legacy`` runs the continuous-quality model with the previous likelihood (terms in padded
buckets, one Beta function per term and a log-sum-exp per bucket in the PyTensor graph, and
the same term by term in NumPy for the per-draw log-likelihoods), everything else unchanged,
for a before/after comparison of that model alone. ``--out`` keeps the HTML report (default:
a temporary directory, removed afterwards).

Nothing else should run meanwhile: the report samples 4 chains on 2 cores per model. Run
``.venv/bin/python benchmarks/report_speed.py`` (about 45 s on 2 cores) or with ``--legacy``
(about 7 minutes: the continuous model alone takes 6 to 7 of them, at about 8.3 ms per
logp+gradient evaluation against 0.3 ms).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table  # noqa: E402

TARGET_SECONDS = 90.0


class _Recorder(logging.Handler):
    """The report's progress messages with the time each arrived."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.events = []

    def emit(self, record):
        self.events.append((time.perf_counter(), record.getMessage()))


def _grad_ms(model, idata, n=200) -> float:
    """Mean time of one logp+gradient evaluation of ``model`` at ``n`` posterior draws."""
    import pytensor
    import pytensor.tensor as pt

    f = model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    post = idata["posterior"]
    columns = []
    for var in f._grad_vars:  # each draw on the sampler's (unconstrained) scale
        rv = model.values_to_rvs[var]
        draws = np.asarray(post[rv.name].values, dtype=float).reshape(-1)
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            x = pt.dvector()
            draws = pytensor.function([x], transform.forward(x, *rv.owner.inputs))(draws)
        columns.append(draws)
    points = np.column_stack(columns)[np.linspace(0, len(columns[0]) - 1, n).round().astype(int)]
    f(points[0])
    t0 = time.perf_counter()
    for x in points:
        f(x)
    return (time.perf_counter() - t0) / len(points) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--legacy", action="store_true", help="the continuous model with the previous likelihood (buckets)")
    ap.add_argument("--out", default=None, help="keep the report at this path (default: a temporary file)")
    ap.add_argument("--no-grad-timing", action="store_true", help="skip the per-model logp+gradient timing")
    args = ap.parse_args(argv)

    import comparemode as cm
    import comparemode.report as report_mod
    from comparemode.datasets import llmfao_path
    from comparemode.inference.alternatives import BayesianAlternative
    from comparemode.inference.diagnostics import diagnostics_passed
    from comparemode.inference.mcmc import BayesianTwoType

    if args.legacy:
        BayesianAlternative._likelihood_method = "buckets"
    fits = []  # (name, model, seconds)
    two_fit, alt_sample = BayesianTwoType.fit, BayesianAlternative.sample

    def timed_fit(self, *a, **k):
        t0 = time.perf_counter()
        out = two_fit(self, *a, **k)
        fits.append(("two-type", self, time.perf_counter() - t0))
        return out

    def timed_sample(self, *a, **k):
        t0 = time.perf_counter()
        out = alt_sample(self, *a, **k)
        fits.append((self.kind, self, time.perf_counter() - t0))
        return out

    BayesianTwoType.fit, BayesianAlternative.sample = timed_fit, timed_sample
    logger = logging.getLogger("comparemode")
    rec = _Recorder()
    logger.addHandler(rec)
    logger.setLevel(logging.INFO)
    votes = cm.load_votes(llmfao_path())
    with tempfile.TemporaryDirectory(prefix="report-speed-") as tmp:
        out = args.out or os.path.join(tmp, "report.html")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            result = report_mod.write_report(votes, out, source="LLMFAO (shipped)", force=True)
            total = time.perf_counter() - t0
    logger.removeHandler(rec)
    BayesianTwoType.fit, BayesianAlternative.sample = two_fit, alt_sample

    print(f"comparemode report on LLMFAO ({len(votes):,} votes), default settings"
          + (", continuous model with the previous likelihood (--legacy)" if args.legacy else ""))
    print()
    events = rec.events
    rows = []
    for (t, msg), (t_next, _) in zip(events, events[1:] + [(t0 + total, "")]):
        if msg.startswith("report written"):
            continue
        rows.append([msg[:70], f"{t_next - t:.1f}"])
    rows.append(["total (write_report)", f"{total:.1f}"])
    print_table(["stage (from its progress message to the next)", "seconds"], rows)
    print()

    rows = []
    all_ok = True
    for name, model, secs in fits:
        idata = model.idata_
        ss = idata["sample_stats"]
        diag = model.diagnostics()
        ok = diagnostics_passed(diag)
        all_ok &= ok
        grad = float("nan") if args.no_grad_timing else _grad_ms(model.model, idata)
        steps = float(ss["n_steps"].mean())
        chains, draws = ss.sizes["chain"], ss.sizes["draw"]
        tune = int(model.sampler_config["tune"])
        evals = steps * chains * (draws + tune)  # tuning steps counted at the draws' mean
        rows.append([name, f"{secs:.1f}", f"{grad:.3f}", f"{float(ss['tree_depth'].mean()):.2f}", f"{steps:.1f}",
                     f"{float(ss['step_size'].mean()):.3f}", f"{evals:,.0f}", int(ss["diverging"].sum()),
                     f"{float(diag['r_hat'].max()):.3f}", f"{float(diag['ess_bulk'].min()):.0f}", "PASS" if ok else "FAIL"])
    print_table(["MCMC fit", "seconds", "ms/grad", "tree depth", "steps/draw", "step size", "gradients (approx.)",
                 "divergences", "max R-hat", "min ESS bulk", "diagnostics"], rows)
    print()
    print(f"report: {result.seconds:.1f} s by its own clock; failures named by the verdict box: {len(result.failures)}")
    for f in result.failures:
        print(f"  - {f}")
    target = total <= TARGET_SECONDS and all_ok
    print(f"target: under {TARGET_SECONDS:.0f} s with every sampler diagnostic passing: {'PASS' if target else 'FAIL'} "
          f"({total:.1f} s, diagnostics {'all passed' if all_ok else 'NOT all passed'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
