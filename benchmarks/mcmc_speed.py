"""Speed of the Bayesian two-type model (``BayesianTwoType``) against a per-user PyMC model.

Both sides are the same statistical model (docs/design.md sections 3 and 6): two models with a
known scalar mu = 0.7 (data, not a parameter), careless first-position rates from a Beta
population (``careless_first_mean`` / ``careless_first_kappa``), tie propensities per type
(``tie_attentive_mean`` / ``_kappa``, ``tie_careless_mean`` / ``_kappa``), ``pi`` the share of
attentive users, with the package's default priors, and each user's type summed out.

1. **compressed** (the package's path): ``BayesianTwoType(sampler_config=...).fit(votes,
   mu={"model_x": 0.7})``. It validates and encodes the votes, aggregates them into per-user
   counts, collapses users with equal counts into a few hundred weighted count patterns
   (``comparemode.models.stats.aggregate`` + ``compress``) and samples the model of
   ``build_pymc_model``: one ``pm.Potential`` of ``sum(users per pattern * log-sum-exp over
   the two types)``. Its cost per gradient does not grow with the number of users.
   A separate row times ``users_`` (per-user posterior P(attentive), averaged over draws),
   which the fit does not compute.
2. **per-user** (the baseline, written the way a PyMC user would): per-user counts from a
   pandas group-by of the votes (ties t, first-position picks f, picks of model_x k, votes n),
   and one mixture term per user,
   ``pm.Mixture("votes", w=pt.stack([pi, 1 - pi]), comp_dists=[attentive, careless],
   observed=<(users, 3) array of t, f, k>)``. Each component is a ``pm.CustomDist.dist`` with
   signature ``"(),(),(),()->(3)"`` / ``"(),(),(),(),()->(3)"`` (a 3-vector per user, the
   user's n as a batched parameter) whose logp is written with the package's likelihood
   pieces (``comparemode.models.likelihood`` with ``ops=tensor_ops()``): Beta-Binomial
   sequence probability of the ties per type, ``k log mu + (d - k) log(1 - mu)`` for the
   attentive decisive picks, Beta-Binomial sequence probability of the careless first picks.
   ``pm.Mixture`` accepts these components in PyMC 6.4, so no ``pm.Potential`` fallback is used.

Before any timing, the script checks that the two are the same model: it compiles
``model.compile_logp()`` of both (on the small data set) and compares the log densities at
the initial point, at a random point and at the simulation's true parameters; they must agree
to 1e-6 relative, or the script stops with exit code 1.

Timing, at ``--users-small`` (10,000) and ``--users-large`` (1,000,000) users with 10 votes
each (``simulate_votes(n_users=N, votes_per_user=10, random_seed=seed)``; the simulation is
not timed): wall time (``time.perf_counter``) from the votes table to ``pm.sample`` returning,
so it includes building the model and compiling it (PyTensor's default linker here is numba,
whose on-disk cache in ``~/.pytensor`` keeps compiled kernels across runs, as it would in any
user's session). Both sides call ``pm.sample(draws, tune, chains, cores=min(chains, CPUs),
target_accept=0.9, random_seed=seed, nuts_sampler=<--sampler>)`` (0.9 is the package default;
the baseline gets the same so that the comparison is like for like). PyMC 6 picks nutpie by
default when it is installed, so the sampler is always passed explicitly.

Reported per fit: wall seconds, bulk ESS of ``pi`` (``arviz.ess(idata, var_names=["pi"],
method="bulk")``), ESS per second of wall time, R-hat of ``pi``, divergences, posterior mean
of ``pi`` (the simulation's true pi is 0.6) and the number of terms the log density sums over
(users or patterns).

The per-user model at 1,000,000 users would take far too long, so it is not run. Its wall time
is estimated from the 10,000-user run and a probe at 1,000,000 users that builds the per-user
model and times its logp+gradient function without sampling:
pandas counts + model build (both measured at 1,000,000 users)
+ ``pm.sample``'s time measured at 10,000 users (compilation, process start-up, sampler
overhead, gradients) - that run's gradient time (leapfrog steps x time per evaluation)
+ the gradient time at 1,000,000 users (leapfrog steps x time per evaluation).
Times per evaluation are means over 8 posterior draws (the log-gamma function costs more at
posterior values than at the initial point), measured with as many processes evaluating at once
as chains run in parallel. Steps are those of the slower chain, tuning included; at 1,000,000
users they are the compressed model's, since the per-user model would repeat its chains (same
model, data and seed; see below), counted by sampling the fitted compressed model once more
after its timed fit, with the tuning statistics kept (``BayesianTwoType.fit`` does not keep
them). The estimate is printed as an estimate, never as a measurement.
``--no-probe`` skips the probe and scales the 10,000-user wall time linearly instead (an
overestimate, as compilation does not grow with the data). ``--run-per-user-large`` runs the
per-user model at the large size as well, to check the estimate at small sizes.

If both models run the same chains (same seed, same log density), their pi draws agree and so
does their ESS; the script prints the largest difference of the pi draws at 10,000 users.

Two target checks, each PASS or FAIL with the measured numbers:
"compressed ESS/s at least 10x the per-user model's at 10,000 users" and
"1,000,000-user compressed fit within 300 s (wall, incl. compilation)".

Run from the repository root::

    .venv/bin/python benchmarks/mcmc_speed.py            # full size: about 5 minutes on 2 cores, a few GB
    .venv/bin/python benchmarks/mcmc_speed.py --users-small 2000 --users-large 20000 --draws 300 --tune 300
    .venv/bin/python benchmarks/mcmc_speed.py --sampler nutpie
    .venv/bin/python benchmarks/mcmc_speed.py --cold-cache   # compile from an empty cache

Compilation time depends on PyTensor's on-disk cache: by default the run uses the user's cache
(``~/.pytensor``), so kernels compiled by an earlier run of the same graphs are loaded rather
than compiled; ``--cold-cache`` compiles everything into a fresh, empty directory instead. The
log-density check compiles both models' logp before the timing in either case, which warms
the kernels the two log densities share for both sides alike, and the compressed model is timed
first, so kernels its gradient shares with the per-user model's are compiled on its clock.

Nothing else should run on the machine meanwhile: both chains use its two cores.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

DEFAULT_USERS_SMALL = 10_000
DEFAULT_USERS_LARGE = 1_000_000
VOTES_PER_USER = 10
MU = 0.7
MODEL_X = "model_x"
TARGET_ACCEPT = 0.9
#: Target: compressed ESS/s at least this many times the per-user model's (small size).
TARGET_ESS_RATIO = 10.0
#: Target: the large compressed fit completes within this many seconds of wall time.
TARGET_LARGE_WALL = 300.0
#: The two models' log densities must agree to this relative tolerance.
LOGP_RTOL = 1e-6
#: The free parameters of both models.
PARAMS = (
    "pi",
    "careless_first_mean",
    "careless_first_kappa",
    "tie_attentive_mean",
    "tie_attentive_kappa",
    "tie_careless_mean",
    "tie_careless_kappa",
)
#: Posterior draws at which the per-user gradient is timed (its cost depends on the point).
PROBE_POINTS = 8


# --------------------------------------------------------------------------- per-user model


def per_user_counts(votes: pd.DataFrame, model_x: str) -> pd.DataFrame:
    """Per-user counts from the votes table, with pandas, as a PyMC user would compute them:
    votes ``n``, ties ``t``, decisive picks of the answer shown first ``f`` and decisive picks
    of ``model_x`` ``k``."""
    winner = votes["winner"]
    picked_a = (winner == "model_a").to_numpy()
    picked_b = (winner == "model_b").to_numpy()
    picked_x = (picked_a & (votes["model_a"] == model_x).to_numpy()) | (picked_b & (votes["model_b"] == model_x).to_numpy())
    frame = pd.DataFrame(
        {
            "user": votes["user"].to_numpy(),
            "n": np.ones(len(votes), dtype=np.int64),
            "t": winner.isin(["tie", "tie (bothbad)"]).to_numpy().astype(np.int64),
            "f": picked_a.astype(np.int64),
            "k": picked_x.astype(np.int64),
        }
    )
    return frame.groupby("user", sort=False).sum()


def _prior(pm, name: str, spec: dict):
    """A prior from a spec of the package's priors dict (Beta or LogNormal)."""
    if spec["dist"] == "Beta":
        return pm.Beta(name, alpha=spec["alpha"], beta=spec["beta"])
    return pm.LogNormal(name, mu=spec["mu"], sigma=spec["sigma"])


def build_per_user_model(counts: pd.DataFrame, mu: float):
    """The two-type model with one ``pm.Mixture`` term per user (no compression).

    Same parameters, priors and likelihood as ``build_pymc_model(careless="beta",
    ties="model")`` with mu known; the component logps use the package's likelihood pieces on
    PyTensor variables.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from comparemode.models.likelihood import attentive_decisive_loglik, careless_position_loglik, log_betabinom_seq, tensor_ops
    from comparemode.models.pymc_model import check_priors

    ops = tensor_ops()
    priors = check_priors({})  # the package's default priors

    def attentive_logp(value, n, mu_, tie_a, tie_b):
        t, k = value[..., 0], value[..., 2]
        return attentive_decisive_loglik(k, n - t, mu_, ops) + log_betabinom_seq(t, n, tie_a, tie_b, ops)

    def careless_logp(value, n, first_a, first_b, tie_a, tie_b):
        t, f = value[..., 0], value[..., 1]
        return careless_position_loglik(f, n - t, "beta", (first_a, first_b), ops) + log_betabinom_seq(t, n, tie_a, tie_b, ops)

    coords = {"user": counts.index.to_numpy(), "count": ["ties", "first", "stronger"]}
    with pm.Model(coords=coords) as model:
        n = pm.Data("n_votes", counts["n"].to_numpy(), dims="user")
        mu_data = pm.Data("mu", float(mu))
        pi = _prior(pm, "pi", priors["pi"])
        first_m = _prior(pm, "careless_first_mean", priors["careless_first_mean"])
        first_k = _prior(pm, "careless_first_kappa", priors["careless_first_kappa"])
        tie = {}
        for kind in ("attentive", "careless"):
            m = _prior(pm, f"tie_{kind}_mean", priors["tie_mean"])
            kappa = _prior(pm, f"tie_{kind}_kappa", priors["tie_kappa"])
            tie[kind] = (m * kappa, (1 - m) * kappa)
        attentive = pm.CustomDist.dist(
            n, mu_data, *tie["attentive"], logp=attentive_logp, signature="(),(),(),()->(3)", dtype="int64", class_name="Attentive"
        )
        careless = pm.CustomDist.dist(
            n,
            first_m * first_k,
            (1 - first_m) * first_k,
            *tie["careless"],
            logp=careless_logp,
            signature="(),(),(),(),()->(3)",
            dtype="int64",
            class_name="Careless",
        )
        pm.Mixture(
            "votes",
            w=pt.stack([pi, 1 - pi]),
            comp_dists=[attentive, careless],
            observed=counts[["t", "f", "k"]].to_numpy(),
            dims=("user", "count"),
        )
    return model


# --------------------------------------------------------------------------- helpers


def sampler_kwargs(args) -> dict:
    return dict(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        cores=min(args.chains, os.cpu_count() or 1),
        target_accept=TARGET_ACCEPT,
        random_seed=args.seed,
    )


def fit_stats(idata) -> dict:
    """Bulk ESS and R-hat of pi, divergences, posterior mean of pi."""
    import arviz as az

    ess = float(az.ess(idata, var_names=["pi"], method="bulk")["pi"].values)
    rhat = float(az.rhat(idata, var_names=["pi"])["pi"].values)
    div = int(np.asarray(idata["sample_stats"]["diverging"].values).sum())
    post = idata["posterior"]
    draws = np.asarray(post["pi"].values, dtype=float)
    params = {name: np.asarray(post[name].values, dtype=float).reshape(-1) for name in PARAMS}
    return {"ess": ess, "rhat": rhat, "div": div, "pi": float(draws.mean()), "pi_draws": draws, "params": params}


def leapfrog_steps(idata) -> tuple[np.ndarray, np.ndarray | None]:
    """Leapfrog steps per chain in the draws and, when the warmup statistics were kept, in the
    tuning (``tree_size`` for PyMC's NUTS, ``n_steps`` for nutpie)."""

    def per_chain(group):
        if group not in idata.children:
            return None
        ds = idata[group]
        for name in ("tree_size", "n_steps"):
            if name in ds:
                return np.asarray(ds[name].values, dtype=float).sum(axis=1)
        return None

    return per_chain("sample_stats"), per_chain("warmup_sample_stats")


def critical_steps(per_chain: np.ndarray, cores: int) -> float:
    """Leapfrog steps on the critical path: the slower chain when every chain has a core,
    else the total shared by the cores."""
    return float(per_chain.max() if per_chain.shape[0] <= cores else per_chain.sum() / cores)


def to_value_space(model, values: dict) -> dict:
    """A point of ``model``'s value variables (log-odds of the Beta parameters, log of the
    LogNormal ones) from parameter values."""
    from scipy.special import logit

    point = {}
    for key in model.initial_point():
        if key.endswith("_logodds__"):
            point[key] = np.asarray(logit(values[key[: -len("_logodds__")]]))
        elif key.endswith("_log__"):
            point[key] = np.asarray(math.log(values[key[: -len("_log__")]]))
        else:
            point[key] = np.asarray(values[key])
    return point


def posterior_points(model, params: dict, k: int = PROBE_POINTS) -> list[dict]:
    """``k`` posterior draws, evenly spaced over the flattened draws, as points of ``model``."""
    size = len(params["pi"])
    idx = np.linspace(0, size - 1, k).round().astype(int)
    return [to_value_space(model, {n: float(v[i]) for n, v in params.items()}) for i in idx]


_PROBE = None


def _probe_worker(_):
    fn, xs, repeat = _PROBE
    for x in xs:
        fn(x)
    times = []
    for r in range(repeat):
        x = xs[r % len(xs)]
        t1 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t1)
    return float(np.mean(times))


def time_grad_eval(model, points: list[dict], processes: int = 1) -> tuple[float, float]:
    """Compile the logp+gradient function NUTS uses and time one evaluation, averaged over
    ``points`` (the cost depends on the point: the log-gamma function is slower at some
    arguments than at others), while ``processes`` processes evaluate it at the same time (as
    that many chains do when sampling). Returns (compile seconds, mean seconds per evaluation)."""
    global _PROBE
    from pymc.blocking import DictToArrayBijection

    t0 = time.perf_counter()
    fn = model.logp_dlogp_function(ravel_inputs=True)
    names = [v.name for v in fn._grad_vars]
    xs = [DictToArrayBijection.map({n: p[n] for n in names}).data for p in points]
    t1 = time.perf_counter()
    fn(xs[0])  # the first call finishes compilation
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    fn(xs[0])
    one = max(time.perf_counter() - t1, 1e-6)
    repeat = int(min(4000, max(2 * len(xs), 2.0 / one)))  # about 2 s of evaluations per process
    _PROBE = (fn, xs, repeat)
    try:
        if processes <= 1:
            return compile_s, _probe_worker(0)
        import multiprocessing

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the workers only evaluate fn
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                means = pool.map(_probe_worker, range(processes))
        return compile_s, float(np.mean(means))
    finally:
        _PROBE = None


def check_same_model(per_user, compressed, truth: dict, seed: int) -> bool:
    """Compare the two models' log densities (``compile_logp``, transformed space with
    Jacobians) at the initial point, a random point and the true parameters."""
    lp_u = per_user.compile_logp()
    lp_c = compressed.compile_logp()
    start = per_user.initial_point()
    start_c = compressed.initial_point()
    if set(start) != set(start_c):
        print(f"  FAIL: the models have different free variables: {sorted(start)} vs {sorted(start_c)}")
        return False
    rng = np.random.default_rng(seed)
    random_point = {k: v + rng.normal(0.0, 0.7, size=np.shape(v)) for k, v in start.items()}
    true_point = to_value_space(per_user, truth)
    ok = True
    print(f"  {'point':<24} {'per-user pm.Mixture':>22} {'compressed Potential':>22} {'rel. diff':>10}")
    for label, point in (("initial point", start), ("random point", random_point), ("true parameters", true_point)):
        a, b = float(lp_u(point)), float(lp_c(point))
        rel = abs(a - b) / max(abs(a), abs(b), 1e-300)
        ok &= bool(rel <= LOGP_RTOL)
        print(f"  {label:<24} {a:>22.10f} {b:>22.10f} {rel:>10.2e}")
    print(f"  same log density to {LOGP_RTOL:g} relative: {'PASS' if ok else 'FAIL'}")
    return ok


def run_per_user(votes, args) -> dict:
    """The per-user baseline, timed from the votes table to ``pm.sample`` returning."""
    import pymc as pm

    t0 = time.perf_counter()
    counts = per_user_counts(votes, MODEL_X)
    t1 = time.perf_counter()
    model = build_per_user_model(counts, MU)
    t2 = time.perf_counter()
    idata = pm.sample(
        **sampler_kwargs(args),
        nuts_sampler=args.sampler,
        progressbar=False,
        compute_convergence_checks=False,
        discard_tuned_samples=False,  # keep tuning statistics (leapfrog steps) for the estimate
        model=model,
    )
    t3 = time.perf_counter()
    out = fit_stats(idata)
    out.update(
        wall=t3 - t0,
        prep=t1 - t0,
        build=t2 - t1,
        sample=t3 - t2,
        terms=len(counts),
        steps=leapfrog_steps(idata),
        model=model,
    )
    return out


def run_compressed(votes, reference: dict, args, count_steps: bool = False) -> dict:
    """The package's path, timed from the constructor to ``fit`` returning; ``users_`` apart.

    With ``count_steps``, the fitted model is sampled once more afterwards (not timed), with
    the same settings and seed and the tuning statistics kept, to count its leapfrog steps."""
    import pymc as pm

    from comparemode.inference.mcmc import BayesianTwoType

    kw = sampler_kwargs(args)
    cfg = {k: kw[k] for k in ("draws", "tune", "chains", "cores", "target_accept", "random_seed")}
    # init="default": both models start at PyMC's default point, so with the same seed and the
    # same log density they run the same chains (same ESS) and only the wall time differs. The
    # package's own default starts at the EM estimate, which changes the chains, not the cost.
    cfg.update(sampler=args.sampler, progressbar=False, init="default")
    t0 = time.perf_counter()
    bt = BayesianTwoType(sampler_config=cfg)
    build_time = []
    build = bt.build_model

    def timed_build(*a, **k):  # instance attribute: times the build inside fit
        tb = time.perf_counter()
        try:
            return build(*a, **k)
        finally:
            build_time.append(time.perf_counter() - tb)

    bt.build_model = timed_build
    idata = bt.fit(votes, **reference)
    t1 = time.perf_counter()
    users = bt.users_
    t2 = time.perf_counter()
    out = fit_stats(idata)
    if count_steps:
        again = pm.sample(
            **kw,
            nuts_sampler=args.sampler,
            progressbar=False,
            compute_convergence_checks=False,
            discard_tuned_samples=False,
            model=bt.model,
        )
        out["steps_again"] = leapfrog_steps(again)
        out["same_chains"] = float(np.max(np.abs(np.asarray(again["posterior"]["pi"].values) - out["pi_draws"])))
    out.update(
        wall=t1 - t0,
        build=sum(build_time),
        sample=t1 - t0 - sum(build_time),
        users_time=t2 - t1,
        steps=leapfrog_steps(idata),
        n_users=len(users),
        terms=int(bt._pat.size),
    )
    return out


# --------------------------------------------------------------------------- printing


def fmt_row(model, users, wall, ess, ess_s, rhat, div, pi, terms):
    return (
        f"{model:<34} {users:>10} {wall:>18} {ess:>10} {ess_s:>9} {rhat:>7} {div:>6} {pi:>8} {terms:>12}"
    )


def row_for(label: str, n_users: int, r: dict) -> str:
    return fmt_row(
        label,
        f"{n_users:,}",
        f"{r['wall']:.1f}",
        f"{r['ess']:.0f}",
        f"{r['ess'] / r['wall']:.2f}",
        f"{r['rhat']:.4f}",
        f"{r['div']}",
        f"{r['pi']:.4f}",
        f"{r['terms']:,}",
    )


def machine_facts(args) -> None:
    import arviz
    import pymc
    import pytensor

    import comparemode

    cpus = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cpus
    print("Machine")
    print(f"  CPUs: {cpus} (usable by this process: {usable}); {platform.machine()}, {platform.system()} {platform.release()}")
    print(f"  Python {platform.python_version()}; pymc {pymc.__version__}, pytensor {pytensor.__version__}, arviz {arviz.__version__}, numpy {np.__version__}, comparemode {comparemode.__version__}")
    if args.sampler == "nutpie":
        import nutpie

        print(f"  nutpie {nutpie.__version__}")
    linker = type(pytensor.compile.mode.get_mode(None).linker).__name__
    base = str(pytensor.config.base_compiledir)
    numba_dir = os.path.join(base, "numba")
    files = len(os.listdir(numba_dir)) if os.path.isdir(numba_dir) else 0
    state = "a fresh, empty cache (--cold-cache)" if args.cold_cache else "whatever earlier runs left there: kernels of graphs compiled before are loaded, not compiled"
    print(f"  PyTensor linker {linker}; compile cache {base} ({files:,} numba cache files at start; {state})")


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users-small", type=int, default=DEFAULT_USERS_SMALL, help="users of the size where both models run (default 10,000)")
    parser.add_argument("--users-large", type=int, default=DEFAULT_USERS_LARGE, help="users of the size where only the compressed model runs (default 1,000,000)")
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain (the package default)")
    parser.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (the package default)")
    parser.add_argument("--chains", type=int, default=4, help="chains (default 4: the package default sampler_config)")
    parser.add_argument("--sampler", choices=("pymc", "nutpie"), default="pymc", help="NUTS implementation for both models")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation and of the sampler")
    parser.add_argument("--no-probe", action="store_true", help="skip building the large per-user model; estimate its time by linear scaling")
    parser.add_argument(
        "--run-per-user-large",
        action="store_true",
        help="also run the per-user model at --users-large (to check the estimate at small sizes; hours at 1,000,000)",
    )
    parser.add_argument(
        "--cold-cache",
        action="store_true",
        help="compile into a fresh, empty PyTensor cache directory (deleted at the end): what a first run on a new machine pays",
    )
    args = parser.parse_args(argv)

    cold_dir = None
    if args.cold_cache:
        if "pytensor" in sys.modules:
            parser.error("--cold-cache must be set before PyTensor is imported (run the script as a program)")
        cold_dir = tempfile.mkdtemp(prefix="mcmc_speed_pytensor_")
        flags = os.environ.get("PYTENSOR_FLAGS", "")
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"base_compiledir={cold_dir}") if f)  # inherited by the chains' processes
    try:
        return _run(args)
    finally:
        if cold_dir is not None:
            shutil.rmtree(cold_dir, ignore_errors=True)


def _run(args) -> int:

    from comparemode.inference.mcmc import BayesianTwoType
    from comparemode.models.simulate import simulate_votes

    import pymc  # noqa: F401  (imported first: it sets its own logger level on import)

    logging.getLogger("pymc").setLevel(logging.WARNING)
    logging.getLogger("pytensor").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)

    print("MCMC speed: the two-type model on compressed count patterns vs. one pm.Mixture term per user")
    print(
        f"  {VOTES_PER_USER} votes per user, two models, mu = {MU} known; pm.sample(draws={args.draws}, tune={args.tune}, "
        f"chains={args.chains}, cores={sampler_kwargs(args)['cores']}, target_accept={TARGET_ACCEPT}, "
        f"nuts_sampler={args.sampler!r}, random_seed={args.seed})"
    )
    machine_facts(args)
    print()

    # ---------------------------------------------------------------- small size
    t0 = time.perf_counter()
    sim_small = simulate_votes(n_users=args.users_small, votes_per_user=VOTES_PER_USER, mu=MU, random_seed=args.seed)
    print(f"Simulated {args.users_small:,} users, {len(sim_small.votes):,} votes in {time.perf_counter() - t0:.1f} s (not timed below)")
    truth = {k: v for k, v in sim_small.true_parameters.items() if k != "mu"}  # mu is known here

    print(f"\nSame model? log density of both models on the {args.users_small:,}-user data (model.compile_logp(), transformed space)")
    counts = per_user_counts(sim_small.votes, MODEL_X)
    per_user_model = build_per_user_model(counts, MU)
    compressed_model = BayesianTwoType().build_model(sim_small.votes, **sim_small.reference)
    if not check_same_model(per_user_model, compressed_model, truth, args.seed):
        print("The two models differ: the timing comparison would be meaningless. Stopping.")
        return 1
    del per_user_model, compressed_model, counts

    print(f"\nTiming at {args.users_small:,} users ...", flush=True)
    # the compressed model first: kernels both graphs share are then compiled (or loaded) on its clock
    small_c = run_compressed(sim_small.votes, sim_small.reference, args)
    print(f"  compressed: build (validate, encode, aggregate, compress, model) {small_c['build']:.1f} s, pm.sample (incl. compile) {small_c['sample']:.1f} s", flush=True)
    small_u = run_per_user(sim_small.votes, args)
    print(f"  per-user: counts {small_u['prep']:.1f} s, build {small_u['build']:.1f} s, pm.sample (incl. compile) {small_u['sample']:.1f} s", flush=True)

    cores = sampler_kwargs(args)["cores"]
    probe_small = None
    if not args.no_probe:
        probe_small = time_grad_eval(
            small_u["model"], posterior_points(small_u["model"], small_u["params"]), processes=min(cores, args.chains)
        )
    small_u.pop("model")
    del sim_small
    gc.collect()

    # ---------------------------------------------------------------- large size
    t0 = time.perf_counter()
    sim_large = simulate_votes(n_users=args.users_large, votes_per_user=VOTES_PER_USER, mu=MU, random_seed=args.seed + 1)
    print(f"\nSimulated {args.users_large:,} users, {len(sim_large.votes):,} votes in {time.perf_counter() - t0:.1f} s (not timed below)")
    print(f"Timing at {args.users_large:,} users ...", flush=True)
    large_c = run_compressed(sim_large.votes, sim_large.reference, args, count_steps=not args.no_probe)
    print(f"  compressed: build (validate, encode, aggregate, compress, model) {large_c['build']:.1f} s, pm.sample (incl. compile) {large_c['sample']:.1f} s", flush=True)

    # estimate of the per-user model at the large size
    scale = args.users_large / args.users_small
    naive = small_u["wall"] * scale
    if args.no_probe:
        estimate = naive
        how = f"the {args.users_small:,}-user wall time x {scale:g}"
    else:
        print(f"  probing the per-user model at {args.users_large:,} users (counts, build, compile, logp+gradient evaluations; no sampling) ...", flush=True)
        tp = time.perf_counter()
        counts_l = per_user_counts(sim_large.votes, MODEL_X)
        tb = time.perf_counter()
        model_l = build_per_user_model(counts_l, MU)
        tc = time.perf_counter()
        compile_l, eval_l = time_grad_eval(model_l, posterior_points(model_l, large_c["params"]), processes=min(cores, args.chains))
        # Same model, same data, same seed: the per-user model would run the compressed model's
        # chains, so it would take their leapfrog steps (counted by sampling it once more).
        u_draw, u_warm = small_u["steps"]
        c_draw, c_warm = large_c["steps_again"]
        steps_small = critical_steps(u_draw + (u_warm if u_warm is not None else u_draw * args.tune / args.draws), cores)
        steps_large = critical_steps(c_draw + (c_warm if c_warm is not None else c_draw * args.tune / args.draws), cores)
        # pm.sample at the large size = pm.sample measured at the small size (compilation, process
        # start-up, sampler overhead, gradients), with the small run's gradients replaced by the
        # large run's: steps x time per gradient (as many processes evaluating at once as chains)
        estimate = (tb - tp) + (tc - tb) + small_u["sample"] - steps_small * probe_small[1] + steps_large * eval_l
        procs = min(cores, args.chains)
        how = (
            f"counts {tb - tp:.1f} s + build {tc - tb:.1f} s measured at {args.users_large:,} users; + pm.sample "
            f"{small_u['sample']:.1f} s measured at {args.users_small:,} users - its gradients, {steps_small:,.0f} leapfrog "
            f"steps x {probe_small[1] * 1e3:.2f} ms = {steps_small * probe_small[1]:.1f} s; + the gradients at "
            f"{args.users_large:,} users, {steps_large:,.0f} steps x {eval_l * 1e3:.2f} ms = {steps_large * eval_l:,.1f} s. "
            f"Time per logp+gradient: mean over {PROBE_POINTS} posterior draws, {procs} process{'es' if procs > 1 else ''} "
            f"evaluating at once as the chains do (compiling the function took {compile_l:.1f} s at {args.users_large:,} "
            f"users). Steps: the slower chain, tuning included; at {args.users_large:,} users those of the compressed "
            "model's chains, which the per-user model would repeat (same model, data and seed), counted by sampling the "
            f"compressed model once more, untimed (its pi draws matched the timed fit's to {large_c['same_chains']:.1e})"
        )
        del model_l, counts_l
    large_u = None
    if args.run_per_user_large:
        print(f"  running the per-user model at {args.users_large:,} users (--run-per-user-large) ...", flush=True)
        large_u = run_per_user(sim_large.votes, args)
        large_u.pop("model")
        print(f"  per-user: counts {large_u['prep']:.1f} s, build {large_u['build']:.1f} s, pm.sample (incl. compile) {large_u['sample']:.1f} s", flush=True)
    del sim_large
    gc.collect()

    # ---------------------------------------------------------------- report
    print("\nResults (wall = votes table to pm.sample returning, incl. model build and compilation; ESS/s = bulk ESS of pi / wall)")
    print(fmt_row("model", "users", "wall s incl. comp.", "ESS(pi)", "ESS/s", "R-hat", "div.", "pi mean", "terms"))
    print("-" * 124)
    print(row_for("per-user pm.Mixture", args.users_small, small_u))
    print(row_for("compressed (BayesianTwoType.fit)", args.users_small, small_c))
    print(fmt_row("  + users_ (per-user P(attentive))", f"{args.users_small:,}", f"{small_c['users_time']:.1f}", "", "", "", "", "", ""))
    if large_u is None:
        print(fmt_row("per-user pm.Mixture", f"{args.users_large:,}", f"not run (est. {estimate:,.0f})", "", "", "", "", "", f"{args.users_large:,}"))
    else:
        print(row_for("per-user pm.Mixture", args.users_large, large_u))
    print(row_for("compressed (BayesianTwoType.fit)", args.users_large, large_c))
    print(fmt_row("  + users_ (per-user P(attentive))", f"{args.users_large:,}", f"{large_c['users_time']:.1f}", "", "", "", "", "", ""))
    print("  terms: rows the log density sums over (users for the per-user model, count patterns for the compressed one).")
    print(f"  pi mean: posterior mean of pi (simulated pi = {truth['pi']}).")
    if large_u is None:
        print(
            f"  per-user pm.Mixture at {args.users_large:,} users: not run (estimated from the {args.users_small:,}-user run: "
            f"{estimate:,.0f} s = {estimate / 60:,.1f} min; an ESTIMATE, not a measurement): {how}."
        )
    else:
        print(
            f"  per-user pm.Mixture at {args.users_large:,} users: measured {large_u['wall']:,.1f} s; the estimate from the "
            f"{args.users_small:,}-user run would have said {estimate:,.1f} s: {how}."
        )
    if probe_small is not None:
        print(
            f"  at {args.users_small:,} users the per-user gradients account for {steps_small:,.0f} steps x "
            f"{probe_small[1] * 1e3:.2f} ms = {steps_small * probe_small[1]:.1f} s of its {small_u['sample']:.1f} s in "
            f"pm.sample (the rest: compilation, process start-up, sampler overhead). Linear scaling of its whole wall "
            f"time would say {naive:,.0f} s at {args.users_large:,} users."
        )
        if large_u is not None:
            ld, lw = large_u["steps"]
            print(f"  (per-user run at {args.users_large:,} users: {critical_steps(ld + lw, cores):,.0f} steps in the slower chain; estimated {steps_large:,.0f})")
    diff = float(np.max(np.abs(small_u["pi_draws"] - small_c["pi_draws"])))
    print(
        f"  pi draws of the two models at {args.users_small:,} users (same seed): max |difference| = {diff:.2e}"
        + (" -- the same chains, so their ESS is the same and ESS/s differs only by wall time." if diff < 1e-6 else ".")
    )
    print()
    print("Targets")
    ratio = (small_c["ess"] / small_c["wall"]) / (small_u["ess"] / small_u["wall"])
    ok1 = ratio >= TARGET_ESS_RATIO
    print(
        f"  compressed ESS/s at least {TARGET_ESS_RATIO:g}x the per-user model's at {args.users_small:,} users: "
        f"{small_c['ess'] / small_c['wall']:.2f} vs {small_u['ess'] / small_u['wall']:.2f} ESS/s = {ratio:.1f}x  "
        f"{'PASS' if ok1 else 'FAIL'}"
    )
    ok2 = large_c["wall"] <= TARGET_LARGE_WALL
    print(
        f"  {args.users_large:,}-user compressed fit within {TARGET_LARGE_WALL:g} s (wall, incl. compilation): "
        f"{large_c['wall']:.1f} s  {'PASS' if ok2 else 'FAIL'}"
    )
    if args.users_small != DEFAULT_USERS_SMALL or args.users_large != DEFAULT_USERS_LARGE:
        print(f"  (sizes differ from the targets' {DEFAULT_USERS_SMALL:,} and {DEFAULT_USERS_LARGE:,} users: these checks are indicative only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
