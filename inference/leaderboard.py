"""Leaderboards with intervals: one table and one figure for every estimator that ranks models
(:class:`~comparemode.inference.bradley_terry.BradleyTerry`, :class:`~comparemode.JointEM`,
the Bayesian joint model).

Columns (one row per model, strongest first): ``rank`` (by the point strength), ``strength``
with ``lower`` and ``upper`` (the interval at ``attrs["level"]``), ``rank_best`` and
``rank_worst`` (the rank interval as Chatbot Arena states it: ``rank_best = 1 + the number of
models whose lower bound is above this model's upper bound``, ``rank_worst = the number of
models whose upper bound is not below this model's lower bound``), then the votes behind it
(``wins`` and ``decisive`` votes, ``ties``). ``attrs`` records the scale, the interval kind and
level, and the tie convention of the fit.

Scales: ``"bt"``, log-strengths (``P(i beats j) = sigmoid(s_i - s_j)``, mean zero); ``"elo"``,
ratings of ``400 / ln 10`` points per log-strength unit (400 points are odds of 10 to 1),
anchored by ``elo_anchor``: a number (the mean rating; default 1000) or ``(model, rating)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from comparemode.constants import CODE_A, CODE_TIE, ELO_ANCHOR, ELO_SCALE
from comparemode.errors import ConfigError

__all__ = ["leaderboard_table", "model_vote_counts", "rank_intervals", "to_elo", "plot_leaderboard", "LEADERBOARD_SCALES"]

LEADERBOARD_SCALES = ("bt", "elo")


def model_vote_counts(a, b, outcome, n_models: int, count=None) -> dict:
    """Per model, the votes behind a leaderboard row: ``wins`` and ``decisive`` votes, and
    ``ties``, from each vote's (or counts entry's) model codes ``a``, ``b`` and outcome code;
    ``count``: votes per entry (1 each when None)."""
    a, b, outcome = np.asarray(a), np.asarray(b), np.asarray(outcome)
    count = np.ones(outcome.size) if count is None else np.asarray(count, dtype=float)
    tie = outcome == CODE_TIE
    dec = ~tie

    def per_model(mask):
        return np.bincount(a[mask], weights=count[mask], minlength=n_models) + np.bincount(b[mask], weights=count[mask], minlength=n_models)

    wins = np.bincount(np.where(outcome == CODE_A, a, b)[dec], weights=count[dec], minlength=n_models)
    return {"wins": wins, "decisive": per_model(dec), "ties": per_model(tie)}


def rank_intervals(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst rank each model's interval allows (Chatbot Arena's rule): best = 1 +
    models surely above (their lower bound above my upper bound), worst = number of models
    not surely below (their upper bound at or above my lower bound), myself included."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    best = pd.array(1 + (lower[None, :] > upper[:, None]).sum(axis=1), dtype="Int64")
    worst = pd.array((upper[None, :] >= lower[:, None]).sum(axis=1), dtype="Int64")
    if not (np.isfinite(lower).all() and np.isfinite(upper).all()):  # no intervals: no rank interval
        best[:], worst[:] = pd.NA, pd.NA
    return best, worst


def to_elo(values, strengths: pd.Series, elo_anchor=ELO_ANCHOR):
    """Log-strengths (and interval bounds on the same scale) as Elo ratings: ``400 / ln 10``
    points per unit, shifted so that the mean of ``strengths`` is ``elo_anchor``, or so that
    ``elo_anchor = (model, rating)``'s model has that rating."""
    factor = ELO_SCALE / math.log(10.0)
    if isinstance(elo_anchor, tuple) and len(elo_anchor) == 2:
        model, rating = elo_anchor
        if model not in strengths.index:
            raise ConfigError(f"elo_anchor names model {model!r}, which is not on the leaderboard; models: {list(strengths.index[:10])}")
        shift = float(rating) - factor * float(strengths[model])
    elif isinstance(elo_anchor, (int, float)) and not isinstance(elo_anchor, bool) and math.isfinite(elo_anchor):
        shift = float(elo_anchor) - factor * float(strengths.mean())
    else:
        raise ConfigError(f"elo_anchor must be a rating (the mean of the leaderboard) or (model, rating), got {elo_anchor!r}")
    return factor * np.asarray(values, dtype=float) + shift


def leaderboard_table(strength: pd.Series, lower, upper, *, wins, decisive, ties, scale: str = "bt", elo_anchor=ELO_ANCHOR,
                      level: float | None = None, interval: str | None = None, tie_rule: str | None = None) -> pd.DataFrame:
    """The leaderboard of the module docstring from log-strengths by model, their interval
    bounds (NaN: none) and the vote counts per model (None: not known, as for a model loaded
    from a file)."""
    if scale not in LEADERBOARD_SCALES:
        raise ConfigError(f"scale must be one of {LEADERBOARD_SCALES} ('elo': ratings, 400/ln 10 points per unit), got {scale!r}")
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    best, worst = rank_intervals(lower, upper)
    values = strength.to_numpy(dtype=float)
    if scale == "elo":
        values, lower, upper = (to_elo(v, strength, elo_anchor) for v in (values, lower, upper))
    board = pd.DataFrame(
        {"strength": values, "lower": lower, "upper": upper, "rank_best": best, "rank_worst": worst,
         **{name: pd.array(np.full(len(strength), pd.NA) if x is None else np.asarray(x).astype(np.int64), dtype="Int64")
            for name, x in (("wins", wins), ("decisive", decisive), ("ties", ties))}},
        index=pd.Index(strength.index, name="model"),
    )
    board = board.sort_values("strength", ascending=False, kind="stable")
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    board.attrs.update(scale=scale, level=level, interval=interval, ties=tie_rule, elo_anchor=list(elo_anchor) if isinstance(elo_anchor, tuple) else elo_anchor)
    return board


def plot_leaderboard(board: pd.DataFrame, *, top: int | None = 30, ax=None, title: str | None = None):
    """Strengths with their intervals, strongest at the top (a matplotlib Axes): the figure of
    ``notebooks/llmfao_analysis.ipynb`` and the report. ``top``: the first so many rows."""
    import matplotlib.pyplot as plt

    for col in ("strength", "lower", "upper"):
        if col not in board.columns:
            raise ConfigError(f"plot_leaderboard needs a leaderboard with a {col!r} column (leaderboard_table, BradleyTerry.leaderboard_, JointEM.leaderboard_)")
    rows = board.head(top) if top else board
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.28 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    s = rows["strength"].to_numpy()
    err = np.vstack([s - rows["lower"].to_numpy(), rows["upper"].to_numpy() - s])
    has = np.isfinite(err).all(axis=0)
    ax.errorbar(s[has], y[has], xerr=err[:, has], fmt="o", ms=3.5, capsize=2.5, color="C0", lw=1)
    ax.plot(s[~has], y[~has], "o", ms=3.5, color="C0")
    ax.set_yticks(y, [f"{r}. {m}" for r, m in zip(rows["rank"], rows.index)], fontsize=8)
    level = board.attrs.get("level")
    unit = "Elo rating" if board.attrs.get("scale") == "elo" else "log-strength (Bradley-Terry)"
    ax.set_xlabel(unit + (f", {level:.0%} {board.attrs.get('interval') or ''} interval" if level else ""))
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax
