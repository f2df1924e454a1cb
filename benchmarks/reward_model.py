"""Text reward model downstream of the user filter (issue 4, item 5).

A linear preference model over features of the two answers of an LLMFAO pair, trained with the
Bradley-Terry (logistic) loss that DPO also uses, on crowd labels: all votes, the kept users'
votes, or every vote weighted by its user's ``p_attentive``. Scored by agreement of its preferred
answer with GPT-4's decisive verdict on held-out pairs.

Features of one response (:func:`featurize`): hashed lowercased word unigrams and bigrams
(``\\w+`` tokens; bucket ``zlib.crc32(token) % 2**14``, bigrams hashed as ``"w1 w2"``; stable
across processes, never Python's ``hash``), each bucket holding ``log(1 + count)``; plus
``log(1 + characters)`` and ``log(1 + words)``. A pair's vector is ``phi(left) - phi(right)``
(a scipy sparse row); in LLMFAO the crowd's ``left``/``right`` are ``model_x``/``model_y`` on
every row (checked by :func:`load_pairs`), so left is ``result_x`` and right ``result_y``.

Model: ``P(left preferred) = sigmoid(theta . (phi_left - phi_right))``, no intercept (a
position-bias term would learn the crowd's left habit, which GPT-4 does not share). Loss: the
weighted mean of ``-log P(chosen)`` over decisive votes (ties left out), plus
``lam / 2 * ||theta||^2`` on every coefficient; minimised by L-BFGS (``scipy.optimize.minimize``,
analytic gradient). The votes of one pair share its feature row, so the loss is computed from
the per-pair weighted left and right win totals.

``lam`` is chosen per training run by an inner validation: the training pairs are split 80/20
by pair, each ``lam`` of :data:`LAMBDAS` is fitted on the 80% and scored by the weighted
validation log-loss of the *same labels and weights* on the 20% (so a condition never sees
GPT-4 while tuning; the GPT-4 reference tunes on GPT-4's own labels), and the best ``lam`` is
refitted on all training pairs.
"""

from __future__ import annotations

import re
import zlib
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit, log_expit

N_BUCKETS = 2**14
LAMBDAS = (3e-3, 1e-2, 3e-2, 1e-1)
_TOKEN = re.compile(r"\w+")


# --------------------------------------------------------------------------- features


def _bucket(token: str, n_buckets: int) -> int:
    return zlib.crc32(token.encode("utf-8")) % n_buckets


def featurize(texts, n_buckets: int = N_BUCKETS, bigrams: bool = True) -> sp.csr_matrix:
    """Rows ``phi(text)``: ``n_buckets`` hashed word (and bigram) features, ``log(1 + count)``,
    then ``log(1 + chars)`` and ``log(1 + words)``."""
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        text = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
        words = _TOKEN.findall(text.lower())
        toks = words + ([f"{a} {b}" for a, b in pairwise(words)] if bigrams else [])
        counts: dict[int, int] = {}
        for t in toks:
            j = _bucket(t, n_buckets)
            counts[j] = counts.get(j, 0) + 1
        for j, c in counts.items():
            rows.append(i)
            cols.append(j)
            vals.append(np.log1p(c))
        rows += [i, i]
        cols += [n_buckets, n_buckets + 1]
        vals += [np.log1p(len(text)), np.log1p(len(words))]
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), n_buckets + 2))


def load_pairs(path: Path, crowd: pd.DataFrame | None = None) -> pd.DataFrame:
    """``pairs-crowd.jsonl`` indexed by pair id; if ``crowd`` (``load_votes`` output with the
    pass-through ``model_x``/``model_y``) is given, check that every crowd row's pair has the same
    ``model_x``/``model_y`` as the jsonl row, i.e. that left = ``result_x``."""
    pairs = pd.read_json(path, lines=True).set_index("id")
    if not pairs.index.is_unique:
        raise SystemExit(f"{path} has duplicate ids")
    if crowd is not None:
        p = pairs.reindex(crowd["id"])
        same = (p["model_x"].to_numpy() == crowd["model_x"].to_numpy()) & (p["model_y"].to_numpy() == crowd["model_y"].to_numpy())
        if not same.all():
            raise SystemExit("some crowd rows' model_x/model_y differ from pairs-crowd.jsonl")
    return pairs


def pair_features(pairs: pd.DataFrame, n_buckets: int = N_BUCKETS, bigrams: bool = True) -> sp.csr_matrix:
    """``phi(result_x) - phi(result_y)`` per pair, rows in ``pairs``' order."""
    return (featurize(pairs["result_x"].tolist(), n_buckets, bigrams) - featurize(pairs["result_y"].tolist(), n_buckets, bigrams)).tocsr()


def left_longer(pairs: pd.DataFrame) -> np.ndarray:
    """+1 when ``result_x`` has more characters, -1 when fewer, 0 when equal."""
    lx = pairs["result_x"].fillna("").str.len().to_numpy()
    ly = pairs["result_y"].fillna("").str.len().to_numpy()
    return np.sign(lx - ly).astype(float)


# --------------------------------------------------------------------------- labels


def win_totals(votes: pd.DataFrame, index: pd.Index, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Per pair of ``index`` (pair ids): weighted count of decisive votes for the left answer
    (``model_a`` = left) and for the right one. Ties are left out."""
    w = np.ones(len(votes)) if weights is None else np.asarray(weights, dtype=float)
    pos = index.get_indexer(votes["id"])
    if (pos < 0).any():
        raise ValueError("votes on pair ids outside the index")
    win = votes["winner"].to_numpy()
    a = np.bincount(pos, weights=w * (win == "model_a"), minlength=len(index))
    b = np.bincount(pos, weights=w * (win == "model_b"), minlength=len(index))
    return a, b


# --------------------------------------------------------------------------- model


def _objective(theta, X, a, b, lam, total):
    z = X @ theta
    loss = -(a @ log_expit(z) + b @ log_expit(-z)) / total + 0.5 * lam * theta @ theta
    # d/dz [-a log s(z) - b log s(-z)] = -a (1 - s) + b s = (a + b) s - a
    g = X.T @ ((a + b) * expit(z) - a) / total + lam * theta
    return loss, g


def fit_preference(X: sp.csr_matrix, a: np.ndarray, b: np.ndarray, lam: float, theta0=None) -> np.ndarray:
    """Linear Bradley-Terry preference model on rows with positive win totals."""
    use = (a + b) > 0
    X, a, b = X[use], a[use], b[use]
    total = float((a + b).sum())
    if total <= 0:
        raise ValueError("no decisive weight to train on")
    theta0 = np.zeros(X.shape[1]) if theta0 is None else theta0
    res = minimize(_objective, theta0, args=(X, a, b, lam, total), jac=True, method="L-BFGS-B",
                   options={"maxiter": 500, "gtol": 1e-6})
    return res.x


def log_loss(theta, X, a, b) -> float:
    z = X @ theta
    total = float((a + b).sum())
    return float(-(a @ log_expit(z) + b @ log_expit(-z)) / total) if total > 0 else np.nan


def fit_tuned(X, a, b, rng, lambdas=LAMBDAS, inner=0.2) -> tuple[np.ndarray, float]:
    """Choose ``lam`` by weighted validation log-loss on an inner ``inner`` share of the pairs
    that carry weight (split by pair), then refit on all of them; returns (theta, lam)."""
    idx = np.flatnonzero((a + b) > 0)
    val = np.zeros(len(a), dtype=bool)
    val[rng.choice(idx, max(1, round(inner * len(idx))), replace=False)] = True
    at, bt = np.where(val, 0.0, a), np.where(val, 0.0, b)
    av, bv = np.where(val, a, 0.0), np.where(val, b, 0.0)
    best, theta = (np.inf, None), None
    for lam in sorted(lambdas, reverse=True):  # warm start from the stronger penalty
        theta = fit_preference(X, at, bt, lam, theta)
        ll = log_loss(theta, X, av, bv)
        if ll < best[0]:
            best = (ll, lam)
    lam = best[1]
    return fit_preference(X, a, b, lam), lam


# --------------------------------------------------------------------------- evaluation


def gpt4_sign(gpt4: pd.DataFrame, index: pd.Index) -> np.ndarray:
    """GPT-4's verdict per pair of ``index``: +1 left, -1 right, 0 tie or missing."""
    g = gpt4.set_index("id")["winner"].reindex(index)
    return np.where(g == "model_a", 1.0, np.where(g == "model_b", -1.0, 0.0))


def agreement(score: np.ndarray, truth: np.ndarray) -> float:
    """Share of decisive ``truth`` (+1/-1) matched by ``sign(score)``; a zero score counts 1/2."""
    d = truth != 0
    s = np.sign(score[d])
    return float(np.mean(np.where(s == 0, 0.5, s == truth[d])))


def split_pairs(index: pd.Index, rng, test: float = 0.3) -> np.ndarray:
    """Boolean test mask over ``index`` (split by pair id)."""
    m = np.zeros(len(index), dtype=bool)
    m[rng.choice(len(index), round(test * len(index)), replace=False)] = True
    return m


def evaluate(X, index: pd.Index, truth: np.ndarray, labels: dict, *, seeds: int = 5, seed: int = 0,
             test: float = 0.3, longer: np.ndarray | None = None) -> pd.DataFrame:
    """Per seed and condition: test agreement with GPT-4 and the chosen ``lam``.

    ``labels`` maps a condition name to ``(a, b)`` win totals per pair of ``index`` (computed on
    all pairs; only the training pairs' totals are used) or to a callable ``f(train_mask) ->
    (a, b)`` for conditions whose weights depend on the split (e.g. a JointEM fit on the training
    votes only). ``truth`` is GPT-4's sign per pair. If ``longer`` is given (:func:`left_longer`),
    two rows score the rules "prefer the longer answer" and "prefer the shorter answer" on the
    same test pairs (equal lengths count 1/2)."""
    out = []
    for s in range(seeds):
        rng = np.random.default_rng([seed, s])
        te = split_pairs(index, rng, test)
        for name, lab in labels.items():
            a, b = lab(~te) if callable(lab) else lab
            a, b = np.where(te, 0.0, a), np.where(te, 0.0, b)
            theta, lam = fit_tuned(X, a, b, np.random.default_rng([seed, s, 1]))
            out.append({"seed": s, "condition": name, "agreement": agreement(X[te] @ theta, truth[te]),
                        "lam": lam, "train_weight": float((a + b).sum())})
        if longer is not None:
            for rule, sign in (("longer", 1.0), ("shorter", -1.0)):
                out.append({"seed": s, "condition": f"rule: prefer the {rule} answer",
                            "agreement": agreement(sign * longer[te], truth[te]), "lam": np.nan, "train_weight": np.nan})
    return pd.DataFrame(out)
