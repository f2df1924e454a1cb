"""Cross-fitted filtering: kept sets free of the agreement selection (docs/design.md section 9).

A user is kept for having agreed with the reference, so among the kept votes the reference
looks more right than it is (a winner's curse): the votes that made the user look attentive
are the ones that agree with it. A cross-fitted decision avoids that. Each user's votes are
split into folds, and every fold is kept, dropped or weighted by the user's P(attentive)
computed from the *other* folds, so that whether a vote is kept never depends on its own
outcome. ``folds="loo"`` (the default) makes every vote its own fold: each vote is decided by
all the other votes of its user, the most information a decision can have without the vote
itself. With ``folds=K`` the folds are a seeded random split of each user's votes.

Given the fitted population parameters, a fold's decision needs only the user's counts minus
the fold's counts, so the whole computation is a few passes over the votes. The population
parameters are the fit's, on all votes; one vote moves them by O(1/N).

Rules (the same as for whole users, but per vote): keep the votes whose out-of-fold
P(attentive) is at least ``threshold``, or the Bayesian false-discovery rule over votes
(``alpha``: the expected share of careless users' votes among the kept votes is at most
alpha). The per-user whole-user decision stays in the result's user table (``keep_whole``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from comparemode.constants import CROSSFIT_ALPHA
from comparemode.errors import ConfigError, NotFittedError
from comparemode.inference.filter import (
    FilterResult,
    check_probability,
    decide_fdr,
    decide_users,
    fdr_keep,
    filter_promise,
)
from comparemode.inference.misfit import vote_agreement
from comparemode.inference.steps import Problem
from comparemode.models.likelihood import posterior_attentive
from comparemode.models.stats import Patterns

__all__ = ["crossfit_posteriors", "filter_crossfit", "describe_votes"]


def _folds(folds) -> int | None:
    """None for leave-one-vote-out, else the number of folds."""
    if isinstance(folds, str) and folds == "loo":
        return None
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ConfigError(f"folds must be 'loo' (each vote decided by the user's other votes) or an integer of at least 2, got {folds!r}")
    return int(folds)


def _fold_of(user: np.ndarray, k: int, random_seed) -> np.ndarray:
    """A seeded random split of each user's votes into ``k`` folds of (nearly) equal size."""
    rng = np.random.default_rng(random_seed)
    order = np.lexsort((rng.random(user.size), user))
    counts = np.bincount(user)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(user.size, dtype=np.int64)
    rank[order] = np.arange(user.size) - start[user[order]]
    return rank % k


def describe_votes(outcome: np.ndarray, mu_row: np.ndarray, user: np.ndarray, attentive: np.ndarray | None = None) -> dict:
    """The votes one by one as a fitted model sees them (see ``TwoTypeEM.vote_terms``)."""
    informative, agree = vote_agreement(outcome, mu_row)
    out = {"user": user, "outcome": outcome, "mu": mu_row, "informative": informative, "agree": agree}
    if attentive is not None:
        out["attentive"] = attentive
    return out


def check_crossfit_args(model, folds, random_seed) -> int | None:
    """The number of folds (None: leave one vote out), after checking the arguments."""
    if not hasattr(model, "crossfit_p_attentive"):
        raise ConfigError(f"cross-fitting needs a fitted TwoTypeEM, JointEM or ContinuousQuality, got {type(model).__name__}")
    k = _folds(folds)
    if random_seed is not None and (isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)) or random_seed < 0):
        raise ConfigError(f"random_seed must be a non-negative integer or None, got {random_seed!r}")
    return k


def unit_of(user: np.ndarray, k: int | None, random_seed) -> np.ndarray | None:
    """The fold unit of every vote: None for leave-one-out (each vote its own unit), else
    ``user * k + fold``."""
    return None if k is None else user.astype(np.int64) * k + _fold_of(user, k, random_seed)


def crossfit_posteriors(model, votes: pd.DataFrame, folds="loo", random_seed: int | None = 0) -> pd.Series:
    """Per vote, P(attentive) of its user given the user's votes outside the vote's fold, under
    the fitted parameters of ``model`` (a fitted :class:`~comparemode.TwoTypeEM`,
    :class:`~comparemode.JointEM` or :class:`~comparemode.inference.continuous.ContinuousQuality`);
    see the module docstring."""
    check_crossfit_args(model, folds, random_seed)
    return model.crossfit_p_attentive(votes, folds=folds, random_seed=random_seed)


def two_type_crossfit(model, votes: pd.DataFrame, folds="loo", random_seed: int | None = 0, terms: dict | None = None) -> pd.Series:
    """:func:`crossfit_posteriors` for the two-type models: the user's counts minus the fold's
    counts, under the fitted parameters."""
    k = check_crossfit_args(model, folds, random_seed)
    try:
        p = model.user_params()
    except NotFittedError:
        raise NotFittedError(f"{type(model).__name__} is not fitted yet: fit it on these votes first") from None
    v = model.vote_terms(votes) if terms is None else terms
    user, outcome, att = v["user"], v["outcome"], v["attentive"]
    n_users = len(model.users_)
    tie = (outcome == 2).astype(np.int64)
    first = (outcome == 0).astype(np.int64)

    def per_user(x):
        return np.bincount(user, weights=x, minlength=n_users)

    spread = bool(getattr(model, "mu_spread", False))  # the attentive term is not a sum over votes
    columns = [np.ones(user.size), tie, first, v["picked_model"].astype(np.int64) if spread else att]
    unit = unit_of(user, k, random_seed)
    out_of_fold = []
    for x in columns:  # the user's total minus the fold's
        if unit is None:  # each vote is its own fold
            out_of_fold.append(per_user(x)[user] - x)
        else:
            out_of_fold.append(per_user(x)[user] - np.bincount(unit, weights=x, minlength=n_users * k)[unit])
    n, t, f = (np.rint(x).astype(np.int64) for x in out_of_fold[:3])
    ties = model.ties_
    if ties == "drop":
        n, t = n - t, np.zeros_like(t)
    if spread:
        mu = float(p["mu"]) if "mu" in p else float(model.params_["mu"])
        pat = Patterns(n=n, t=t, f=f, weight=np.ones(n.size), inverse=np.arange(n.size), k=np.rint(out_of_fold[3]).astype(np.int64), mu=mu)
        problem = Problem(pat, model.careless, ties, estimate_mu="mu" in p, mu_spread=True)
    else:
        pat = Patterns(n=n, t=t, f=f, weight=np.ones(n.size), inverse=np.arange(n.size), s_row=out_of_fold[3])
        problem = Problem(pat, model.careless, ties)
    l1, l0 = problem.logliks(p)
    return pd.Series(posterior_attentive(l1, l0, p["pi"]), index=votes.index, name="p_attentive_crossfit")


def filter_crossfit(
    votes: pd.DataFrame,
    model,
    *,
    alpha: float | None = None,
    threshold: float | None = None,
    folds="loo",
    random_seed: int | None = 0,
) -> FilterResult:
    """Keep each vote by its user's P(attentive) from the user's other votes (see the module
    docstring): the Bayesian false-discovery rule over votes at ``alpha`` (default
    :data:`~comparemode.constants.CROSSFIT_ALPHA`, 0.05), or, with ``threshold``, the votes
    whose out-of-fold P(attentive) is at least that. ``model`` is the fitted estimator of these
    votes (``TwoTypeEM``, ``JointEM`` or ``ContinuousQuality``).

    Why 0.05: cross-fitting removes the selection on a vote's own outcome, but careless votes
    that stay in the kept set still pull the favoured model's win rate towards 1/2, by about
    ``alpha (w - 1/2)`` for an attentive win rate ``w``: 0.01 at ``w = 0.7``. The summary's
    ``favoured_win_rate`` shows the kept votes' rate beside the model's attentive one.

    The result's ``kept``/``dropped`` are rows of ``votes``; ``weights`` the out-of-fold
    P(attentive) of every vote (``1 - weights`` a per-vote label-flip rate that does not depend
    on the vote's own outcome); ``users`` the model's user table with ``votes_kept``,
    ``votes_dropped``, ``keep`` (some of the user's votes kept) and ``keep_whole`` (the same
    rule applied to whole users); ``summary`` as for the whole-user filters, with the counts
    and the expected careless share over votes."""
    if alpha is not None and threshold is not None:
        raise ConfigError("give alpha (the false-discovery rule over votes) or threshold, not both")
    if threshold is None:
        alpha = check_probability(CROSSFIT_ALPHA if alpha is None else alpha, "alpha")
    else:
        threshold = check_probability(threshold, "threshold")
    if not isinstance(votes, pd.DataFrame):
        raise ConfigError(f"votes must be a pandas DataFrame, got {type(votes).__name__}")
    check_crossfit_args(model, folds, random_seed)
    v = model.vote_terms(votes)
    p_oof = model.crossfit_p_attentive(votes, folds=folds, random_seed=random_seed, terms=v)
    p = p_oof.to_numpy()
    if alpha is None:
        keep = p >= threshold
        rule = {"rule": "crossfit_threshold", "threshold": threshold}
        whole = decide_users(model.users_, threshold)
    else:
        keep, expected, cut = fdr_keep(p, alpha)
        rule = {"rule": "crossfit_fdr", "alpha": alpha, "p_attentive_cut": cut}
        whole = decide_fdr(model.users_, alpha)
    rule["folds"] = folds if folds == "loo" else int(folds)
    users = model.users_
    n_users = len(users)
    kept_n = np.bincount(v["user"], weights=keep, minlength=n_users).astype(np.int64)
    all_n = np.bincount(v["user"], minlength=n_users)
    table = users.copy()
    table["votes_kept"] = kept_n
    table["votes_dropped"] = all_n - kept_n
    table["keep"] = kept_n > 0
    table["keep_whole"] = whole["keep"].to_numpy()
    table["reason"] = np.where(
        kept_n == all_n, "every vote kept by the user's other votes", np.where(kept_n == 0, "every vote dropped by the user's other votes", "some votes kept, some dropped")
    )
    table.attrs["rule"] = rule
    voted = all_n > 0
    informative, agree, mu = v["informative"], v["agree"], v["mu"]

    def rate(x, mask):
        den = float((informative & mask).sum())
        return float(x[informative & mask].sum()) / den if den > 0 else math.nan

    everywhere = np.ones(p.size, dtype=bool)
    win = {"all": rate(agree, everywhere), "kept": rate(agree, keep), "model_attentive": rate(np.maximum(mu, 1.0 - mu), keep)}
    win["kept_minus_model"] = win["kept"] - win["model_attentive"]
    summary = dict(rule)
    summary.update(
        {
            "users_in": int(voted.sum()),
            "users_kept": int((kept_n > 0).sum()),
            "users_kept_whole": int(((kept_n == all_n) & voted).sum()),
            "users_dropped": int(((kept_n == 0) & voted).sum()),
            "votes_in": int(p.size),
            "votes_kept": int(keep.sum()),
            "votes_dropped": int((~keep).sum()),
            "share_votes_kept": float(keep.mean()) if p.size else math.nan,
            "expected_careless_share": float(np.mean(1.0 - p[keep])) if keep.any() else 0.0,
            "promise": filter_promise(users, rule),
            "favoured_win_rate": win,
        }
    )
    result = FilterResult(kept=votes[keep], dropped=votes[~keep], users=table, weights=p_oof.rename("weight"), summary=summary)
    alt = getattr(model, "alternative_", None)
    if alt is not None and summary["promise"]["status"] == "void":
        result.alternative = filter_crossfit(votes, alt, threshold=threshold, alpha=alpha, folds=folds, random_seed=random_seed)
        name = summary["promise"].get("better_fit")
        result.alternative.summary["model"] = name
        result.alternative.summary["promise"] = {"status": "alternative", "statement": f"the same rule under the better-fitting model ({name}); its own fit was not checked"}
        summary["alternative"] = {k: result.alternative.summary[k] for k in ("model", "users_kept", "votes_kept", "expected_careless_share")}
    return result
