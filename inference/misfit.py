"""Misfit checks that run with every EM fit (docs/design.md section 9): cheap, no MCMC.

Every promise the package makes (P(attentive), the expected careless share of a filtered set)
holds only while the data follow the model. These checks look for the departures real chat
data show, each with a p-value, and say in words what the data do that the model does not:

``mu``
    two models with a given mu: mu is also estimated from the votes (it is identified when users
    cast several votes) and the given value is compared with the profile-likelihood interval of
    the estimate (a likelihood-ratio test). A given mu that the votes contradict makes every
    P(attentive) wrong.
``favoured-model dispersion``
    how much users differ in how often they pick the model the reference favours: under two
    types, a user picks it at the attentive rate or at 1/2 (a careless pick ignores content),
    so the spread of the per-user rates is fixed by the share of attentive users. Users who
    differ by degree (each attentive on part of their votes) spread less; users whose topics
    separate the models by different amounts, or a wrong mu, spread more. Statistic: the
    binomial dispersion index of the per-user counts; null: a parametric bootstrap of the
    fitted model on the observed design (types, tie habits, position habits and every pick
    redrawn), read through its mean and standard deviation (a normal approximation).
``drift``
    whether users agree with the reference as often in the second half of their decisive votes
    (in time order: the votes table's row order, or the column given as ``order``) as in the
    first. The model has one type per user, so the order of a user's votes carries no
    information, and given each user's votes the first half is a random draw of them: the
    test is exact under that exchangeability (hypergeometric moments, summed over users), with
    no fitted parameter in it.

The checks together have a false-alarm rate of at most ``MISFIT_LEVEL`` (each of the m that run
is held to ``MISFIT_LEVEL / m``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from comparemode._dist import norm_isf, norm_sf
from comparemode.constants import CODE_A, CODE_TIE
from comparemode.errors import MisfitWarning
from comparemode.models.stats import HALF_SPLIT_MAX_VOTES, NUMBA_MIN_VOTES, check_engine, half_split_counts

__all__ = ["vote_agreement", "favoured_counts", "favoured_from_counts", "dispersion_check", "drift_check", "checks_table", "warn_failed", "COLUMNS"]

#: Columns of a fitted estimator's ``checks_`` table.
COLUMNS = ("status", "observed", "expected", "lower", "upper", "statistic", "p_value", "level", "passed", "message")


def _p_two_sided(z: float) -> float:
    return float(2.0 * norm_sf(abs(z)))


def vote_agreement(outcome: np.ndarray, mu_row: np.ndarray):
    """Per vote: whether the vote is informative (decisive, and the reference favours one of the
    two models: ``mu_row != 1/2``) and whether it picked the favoured model. ``mu_row`` is
    P(model_a's answer is better) on each vote. An informative vote is decisive with mu on one
    side of 1/2: it agrees when model_a won exactly when mu favours model_a."""
    informative = (outcome != CODE_TIE) & (mu_row != 0.5)
    return informative, informative & ((outcome == CODE_A) == (mu_row > 0.5))


def favoured_counts(user: np.ndarray, n_users: int, outcome: np.ndarray, mu_row: np.ndarray):
    """Per user: decisive picks of the model the reference favours on the vote, the votes on
    which it favours one, and the picks of it an attentive user would make on average (the
    ``n_favoured``, ``n_informative`` and ``expected_favoured`` columns of a user table)."""
    informative, agree = vote_agreement(outcome, mu_row)

    def per_user(x):
        return np.bincount(user, weights=x, minlength=n_users)

    return per_user(agree & informative), per_user(informative), per_user(np.where(informative, np.maximum(mu_row, 1.0 - mu_row), 0.0))


def favoured_from_counts(k: np.ndarray, d: np.ndarray, mu: float):
    """:func:`favoured_counts` for two models from the per-user counts: ``k`` decisive picks of
    the model ``mu`` is about among ``d`` decisive votes."""
    d = np.asarray(d, dtype=float)
    k = np.asarray(k, dtype=float)
    informative = d if mu != 0.5 else np.zeros_like(d)
    favoured = k if mu > 0.5 else (d - k if mu < 0.5 else np.zeros_like(d))
    return favoured, informative, informative * max(mu, 1.0 - mu)


def dispersion_check(observed: float, replicated: np.ndarray) -> dict:
    """The favoured-model dispersion check from the observed dispersion index and its values
    on bootstrap replicates of the fitted model."""
    rep = np.asarray(replicated, dtype=float)
    rep = rep[np.isfinite(rep)]
    mean, sd = float(rep.mean()), float(rep.std(ddof=1)) if rep.size > 1 else 0.0
    if not (sd > 0) or not math.isfinite(observed):
        return {"observed": observed, "expected": mean, "statistic": math.nan, "p_value": math.nan, "sd": sd}
    z = (observed - mean) / sd
    return {"observed": float(observed), "expected": mean, "statistic": float(z), "p_value": _p_two_sided(z), "sd": sd}


#: Width of the sort key of :func:`_grouped_running_agreement` (a user, a position and an
#: agreement bit packed in one int64, sign bit left clear).
_KEY_BITS = 63


def _grouped_running_agreement(user: np.ndarray, agree: np.ndarray, n_users: int) -> np.ndarray:
    """Running sums of the agreements grouped by user (users in code order, each user's votes
    in the order given), with a leading 0: element ``j`` counts the agreements among the first
    ``j`` grouped votes.

    The grouping is the one a stable argsort of the users gives, at about a tenth of its cost:
    each vote becomes one integer, ``user << s | position << 1 | agree``. Every key is distinct
    (the position is), so the unstable vectorised sort of plain integers orders the votes as
    the stable argsort would, and the agreement bit travels in the key, so nothing is gathered
    afterwards; the key is built, sorted and summed in one array. Should the three not fit in
    an int64 (billions of users and of votes), the stable argsort groups them."""
    n = int(user.size)
    shift = n.bit_length() + 1
    running = np.empty(n + 1, dtype=np.int64)
    running[0] = 0
    key = running[1:]
    if max(int(n_users) - 1, 0).bit_length() + shift <= _KEY_BITS:
        key[...] = user
        key <<= shift
        key |= np.arange(0, 2 * n, 2, dtype=np.int64)
        key |= agree
        key.sort()
        key &= 1
    else:
        key[...] = agree[np.argsort(user, kind="stable")]
    return np.cumsum(running, out=running)


def drift_check(user: np.ndarray, informative: np.ndarray, agree: np.ndarray, n_users: int, engine: str = "auto") -> dict:
    """First-half against second-half agreement within users, for votes in time order.

    For each user with at least two informative votes, the first ``h = d // 2`` of them (in the
    order given) against the rest. Given the user's votes, exchangeability makes the first-half
    agreements hypergeometric (mean ``h K / d``, variance ``h (K/d)(1 - K/d)(d - h)/(d - 1)``
    for ``K`` agreements among ``d`` votes); the statistic is the summed excess over its summed
    standard deviation.

    With the agreements grouped by user (:func:`_grouped_running_agreement`), a user's votes are one
    run of ``d`` and its first half the run's first ``h``: running sums at the runs' starts,
    middles and ends give ``K`` and the first-half agreements, with no per-vote rank. From
    :data:`~comparemode.models.stats.NUMBA_MIN_VOTES` votes on (``engine="auto"``; "numba" or
    "numpy" to choose) one compiled pass counts them instead, without the sort (the same
    integers, so the same result to the last bit)."""
    check_engine(engine)
    if engine == "numba" or (engine == "auto" and NUMBA_MIN_VOTES <= np.shape(user)[0] < HALF_SPLIT_MAX_VOTES):
        d, KK, k1 = half_split_counts(user, informative, agree, n_users)
        use = d >= 2
        d, KK, k1 = d[use].astype(np.int64), KK[use].astype(float), k1[use].astype(float)
        h = d // 2
    else:
        informative = np.asarray(informative, dtype=bool)
        u = np.asarray(user)[informative]
        running = _grouped_running_agreement(u, np.asarray(agree, dtype=bool)[informative], n_users)
        d = np.bincount(u, minlength=n_users)
        use = d >= 2
        start = (np.cumsum(d) - d)[use]
        d = d[use]
        h = d // 2
        KK = (running[start + d] - running[start]).astype(float)
        k1 = (running[start + h] - running[start]).astype(float)
    dd, hh = d.astype(float), h.astype(float)
    expected = hh * KK / dd
    var = hh * (KK / dd) * (1 - KK / dd) * (dd - hh) / (dd - 1)
    total_var = float(var.sum())
    first_rate = float(k1.sum() / hh.sum()) if hh.sum() else math.nan
    second_rate = float((KK - k1).sum() / (dd - hh).sum()) if (dd - hh).sum() else math.nan
    out = {"first_rate": first_rate, "second_rate": second_rate, "n_users": int(use.sum())}
    if not total_var > 0:
        return out | {"observed": math.nan, "expected": 0.0, "statistic": math.nan, "p_value": math.nan, "sd": 0.0}
    excess = float((k1 - expected).sum())
    z = excess / math.sqrt(total_var)
    # as agreement rates: first half minus second half, and its standard deviation under the null
    scale = 1.0 / hh.sum() + 1.0 / (dd - hh).sum()
    return out | {
        "observed": first_rate - second_rate,
        "expected": 0.0,
        "statistic": z,
        "p_value": _p_two_sided(z),
        "sd": math.sqrt(total_var) * scale,
    }


def _message(name: str, row: dict, passed: bool) -> str:
    if name == "mu":
        given, est, lo, hi = row["observed"], row["expected"], row["lower"], row["upper"]
        if passed:
            return f"the given mu = {given:.3g} lies inside the votes' own {row['interval_prob']:.3g} interval [{lo:.3f}, {hi:.3f}] (estimate {est:.3f})"
        return (
            f"the votes contradict the given mu = {given:.3g}: estimated from the votes, mu = {est:.3f} with a "
            f"{row['interval_prob']:.3g} profile-likelihood interval [{lo:.3f}, {hi:.3f}] (likelihood-ratio p = {row['p_value']:.2g}). "
            "Every P(attentive) and the filter's promise rest on mu: fit with mu='estimate' (command line: leave out --mu), "
            "or check where the given value came from (a leaderboard of another population, another prompt mix)"
        )
    if name == "favoured-model dispersion":
        obs, exp = row["observed"], row["expected"]
        basis = f"; a parametric bootstrap of {row.get('draws', '?')} replicates on {row.get('n_users', 0):,} users"
        if passed:
            return f"users differ in how often they pick the favoured model as two types allow (dispersion {obs:.3f}, expected {exp:.3f}{basis})"
        if obs < exp:
            return (
                f"users differ less in how often they pick the favoured model than two types allow (dispersion {obs:.3f}, "
                f"expected {exp:.3f} +- {row['sd']:.3f}{basis}): attention looks like a matter of degree (users attentive on part of "
                "their votes) rather than two types, or mu is overstated. The two-type P(attentive) is then not calibrated"
            )
        return (
            f"users differ more in how often they pick the favoured model than two types allow (dispersion {obs:.3f}, "
            f"expected {exp:.3f} +- {row['sd']:.3f}{basis}): users' topics separate the models by different amounts (mu varies by "
            "user), or mu is understated. The two-type P(attentive) is then not calibrated"
        )
    if name == "drift":
        f1, f2 = row["first_rate"], row["second_rate"]
        if passed:
            return f"users agree with the reference as often late in their votes as early ({f1:.3f} in the first half, {f2:.3f} in the second)"
        direction = "less" if f2 < f1 else "more"
        return (
            f"users agree with the reference {direction} often in the second half of their votes than in the first ({f2:.3f} "
            f"against {f1:.3f}, z = {row['statistic']:.1f}): attention changes within users (for example boredom), which "
            "a model with one type per user does not allow; kept users bring their careless stretches along"
        )
    raise ValueError(name)


def checks_table(rows: dict[str, dict], level: float) -> pd.DataFrame:
    """The ``checks_`` table from raw check results (name -> dict with ``observed``,
    ``expected``, ``statistic``, ``p_value`` and the check's extras): each check that produced
    a p-value is held to ``level / m``; a check that could not run says why (status "not run";
    it does not count as failed)."""
    ran = [name for name, r in rows.items() if math.isfinite(r.get("p_value", math.nan))]
    each = level / max(len(ran), 1)
    out = []
    for name, r in rows.items():
        entry = {k: r.get(k, math.nan) for k in ("observed", "expected", "lower", "upper", "statistic", "p_value")}
        if name in ran:
            passed = bool(r["p_value"] >= each)
            if "lower" not in r:  # a normal interval of the statistic under the model at the check's level
                half = float(norm_isf(each / 2.0)) * r["sd"]
                entry["lower"], entry["upper"] = r["expected"] - half, r["expected"] + half
            entry.update(status="passed" if passed else "FAILED", level=each, passed=passed, message=_message(name, r, passed))
        else:  # a check that cannot run does not fail; its status says so
            reason = r.get("reason", "the data give this check nothing to test")
            entry.update(status="not run", level=math.nan, passed=True, message="not run: " + reason)
        out.append({"check": name, **entry})
    table = pd.DataFrame(out, columns=["check", *COLUMNS]).set_index("check")
    table["passed"] = table["passed"].astype(bool)
    table.attrs["level"] = level
    return table


def warn_failed(table: pd.DataFrame, stacklevel: int = 3) -> None:
    """One :class:`MisfitWarning` per failed check, naming the numbers and what to do."""
    for name, row in table[~table["passed"]].iterrows():
        warnings.warn(f"misfit check {name!r} failed: {row['message']}", MisfitWarning, stacklevel=stacklevel)
