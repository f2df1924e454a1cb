"""Where mu comes from: the probability that model_a's answer is truly better on a vote.

Three sources (docs/design.md section 3), resolved by :func:`resolve_reference`:

1. a scalar for two models, ``mu={"model_x": 0.7}``: P(model_x's answer beats the other
   model's), oriented per vote by which of the two was shown first;
2. a per-vote ``mu`` column (``mu="mu"``, or automatically when the votes have one);
3. a table of model strengths, Bradley-Terry scores (``scale="bt"``:
   ``mu = sigmoid(beta_a - beta_b)``) or Elo ratings (``scale="elo"``:
   ``mu = 1 / (1 + 10 ** ((R_b - R_a) / 400))``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from comparemode.constants import CODE_TIE, ELO_SCALE, MODEL_A, MODEL_B, MU
from comparemode.data import check_input_file, read_csv_text
from comparemode.errors import MuError, NotIdentifiableError, StrengthsError
from comparemode.models.counts import count_votes as count_table
from comparemode.models.stats import EncodedVotes

__all__ = [
    "Reference",
    "ESTIMATE",
    "resolve_reference",
    "estimated_reference",
    "read_strengths",
    "count_with",
    "encode_rows",
    "encode_counts",
    "check_identifiable",
    "check_mu_identifiable",
]

STRENGTH_SCALES = ("bt", "elo")
#: |mu - 1/2| (or the spread of mu across votes) below this counts as no signal.
_FLAT = 1e-9


@dataclass(frozen=True)
class Reference:
    """A resolved source of mu.

    ``kind`` is ``"scalar"`` (two models, ``mu`` = P(``model`` beats ``other``)) or ``"row"``
    (a probability per vote, from a column or from ``strengths``).
    """

    kind: str
    source: str
    mu: float | None = None
    model: str | None = None
    other: str | None = None
    column: str | None = None
    strengths: pd.Series | None = field(default=None, compare=False)
    scale: str | None = None

    def describe(self) -> dict:
        """JSON-able description, stored with results."""
        out = {"kind": self.kind, "source": self.source}
        if self.kind == "scalar":
            out.update(mu=self.mu, model=self.model, other=self.other)
        if self.column is not None:
            out["column"] = self.column
        if self.strengths is not None:
            out["scale"] = self.scale
            out["strengths"] = {str(k): float(v) for k, v in self.strengths.items()}
        return out


def check_mu_value(value, what: str) -> float:
    try:
        mu = float(value)
    except (TypeError, ValueError):
        raise MuError(f"{what} must be a number strictly between 0 and 1, got {value!r}") from None
    if not (0.0 < mu < 1.0) or math.isnan(mu):
        raise MuError(
            f"{what} must lie strictly between 0 and 1 (a probability that one model's answer is "
            f"better), got {mu!r}"
        )
    return mu


def read_strengths(strengths, scale: str = "bt") -> pd.Series:
    """Model strengths as a float Series indexed by model name.

    Accepts a Series or dict (model -> score), a DataFrame with a ``model`` column and one
    numeric column (or the model names as index and one column), or a path to a CSV or JSON
    file holding such a table.
    """
    if scale not in STRENGTH_SCALES:
        raise StrengthsError(f"strength scale must be one of {STRENGTH_SCALES}, got {scale!r}")
    src = strengths
    if isinstance(src, (str, Path)):
        path = Path(src)
        if not path.exists():
            raise StrengthsError(f"strengths file {str(path)!r} does not exist")
        check_input_file(path, "strengths file", StrengthsError)
        if path.suffix.lower() in (".parquet", ".pq", ".nc", ".xlsx", ".xls", ".feather", ".pkl", ".pickle"):
            raise StrengthsError(
                f"strengths file {str(path)!r} has extension {path.suffix!r}; give a .csv (columns model, score) "
                "or a .json file ({model: score})"
            )
        try:
            if path.suffix.lower() == ".json":
                import json

                with open(path) as fh:
                    obj = json.load(fh)
                src = pd.Series(obj) if isinstance(obj, dict) else pd.DataFrame(obj)
            else:
                # model names are text as written ("1.10" stays "1.10")
                src = read_csv_text(path, lambda cols: ["model"] if "model" in cols else cols[:1])
        except (ValueError, OSError) as exc:
            raise StrengthsError(f"could not read strengths file {str(path)!r}: {exc}") from None
    if isinstance(src, dict):
        src = pd.Series(src)
    if isinstance(src, pd.DataFrame):
        frame = src
        if "model" in frame.columns:
            frame = frame.set_index("model")
        if frame.shape[1] != 1:
            raise StrengthsError(
                "a strengths table needs a 'model' column and exactly one score column; got columns "
                f"{list(src.columns)}"
            )
        src = frame.iloc[:, 0]
    if not isinstance(src, pd.Series):
        raise StrengthsError(
            f"strengths must be a Series, dict, DataFrame or file path, got {type(strengths).__name__}"
        )
    if src.index.has_duplicates:
        dup = sorted(map(str, src.index[src.index.duplicated()].unique()))[:5]
        raise StrengthsError(f"the strengths table lists some models twice: {dup}")
    if pd.api.types.is_bool_dtype(src.dtype) or (
        src.dtype == object and any(isinstance(v, (bool, np.bool_)) for v in src.to_numpy())
    ):
        raise StrengthsError(
            f"strengths must be numbers (Bradley-Terry scores or Elo ratings), got True/False values: {dict(src.head(5))}"
        )
    values = pd.to_numeric(src, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        shown = {str(k): src[k] for k in src.index[bad][:5]}
        raise StrengthsError(
            f"strengths must be finite numbers; {int(bad.sum())} are not, for example {shown}"
        )
    values = values.astype(float)
    values.index = values.index.map(str)
    values.index.name = "model"
    return values


#: ``mu=ESTIMATE`` (or ``mu={"model_x": ESTIMATE}``): two models, mu estimated from the votes.
ESTIMATE = "estimate"


def _asks_estimate(mu) -> bool:
    if isinstance(mu, str):
        return mu == ESTIMATE
    return isinstance(mu, dict) and len(mu) == 1 and next(iter(mu.values())) == ESTIMATE


def estimated_reference(votes: pd.DataFrame, model=None) -> Reference:
    """The reference of a fit that estimates mu: two models, mu = P(``model`` beats the other)
    unknown (``model`` defaults to the first of the two by name)."""
    models = sorted(map(str, pd.unique(np.concatenate([votes[MODEL_A].unique(), votes[MODEL_B].unique()]).astype(object))))
    if len(models) != 2:
        raise MuError(
            f"estimating mu needs votes between exactly two models; these have {len(models)}: {models[:10]}. "
            "With many models, estimate the strengths jointly (JointEM, or comparemode run --method joint)"
        )
    model = models[0] if model is None else str(model)
    if model not in models:
        raise MuError(f"mu names model {model!r}, which does not appear in the votes (models: {models})")
    other = models[1] if model == models[0] else models[0]
    return Reference(kind="scalar", source="estimated", mu=None, model=model, other=other)


def resolve_reference(votes: pd.DataFrame, mu=None, strengths=None, scale: str = "bt", allow_estimate: bool = False) -> Reference:
    """Decide where mu comes from for these votes and check it.

    ``mu`` is a dict ``{model: probability}`` (two models), a column name, or None;
    ``strengths`` a strengths table (see :func:`read_strengths`). With neither, a ``mu``
    column in the votes is used. Where the caller estimates mu (``allow_estimate``),
    ``mu="estimate"`` or ``{model: "estimate"}`` gives :func:`estimated_reference`.
    """
    if mu is not None and strengths is not None:
        raise MuError("give either mu or strengths, not both")
    if _asks_estimate(mu):
        if not allow_estimate:
            raise MuError(
                "mu='estimate' is not available here: this estimator takes mu as known. TwoTypeEM.fit(votes, "
                "mu='estimate') estimates it; for the posterior use BayesianTwoType(model_config={'mu': 'estimate'})"
            )
        if isinstance(mu, str) and ESTIMATE in votes.columns:
            raise MuError(
                f"mu={ESTIMATE!r} is ambiguous: the votes have a column named {ESTIMATE!r}. Rename that column to use it "
                f"as a per-vote mu, or pass mu={{'<model>': {ESTIMATE!r}}} to estimate mu"
            )
        return estimated_reference(votes, None if isinstance(mu, str) else next(iter(mu)))
    models = pd.unique(np.concatenate([votes[MODEL_A].unique(), votes[MODEL_B].unique()]).astype(object))
    if strengths is not None:
        table = read_strengths(strengths, scale)
        missing = sorted(set(map(str, models)) - set(table.index))
        if missing:
            raise StrengthsError(
                f"the strengths table lacks {len(missing)} model(s) that appear in the votes: "
                f"{missing[:10]}; add them or drop their votes"
            )
        table = table.loc[sorted(map(str, models))]
        if scale == "bt":
            _refuse_saturating(table)
        if len(models) == 2:
            m0, m1 = table.index
            diff = table[m0] - table[m1]
            p = float(expit(diff * (math.log(10.0) / ELO_SCALE if scale == "elo" else 1.0)))
            if not 0.0 < p < 1.0:
                raise StrengthsError(_saturated_message(m0, m1, table[m0], table[m1], scale))
            return Reference(kind="scalar", source="strengths", mu=p, model=m0, other=m1, strengths=table, scale=scale)
        return Reference(kind="row", source="strengths", strengths=table, scale=scale)
    if isinstance(mu, str):
        if mu not in votes.columns:
            raise MuError(f"mu column {mu!r} is not in the votes; columns are {list(votes.columns)}")
        return Reference(kind="row", source="column", column=mu)
    if mu is None:
        if MU in votes.columns:
            return Reference(kind="row", source="column", column=MU)
        raise MuError(
            "no reference probability: pass mu={'<model>': p} for two models, strengths=<table> for "
            "many models, or give the votes a 'mu' column; or fit comparemode.JointEM, which estimates the "
            "strengths with the user types"
        )
    if isinstance(mu, dict):
        if len(mu) != 1:
            raise MuError(f"mu must name exactly one model, as {{'model_x': 0.7}}; got {mu!r}")
        (model, p), = mu.items()
        p = check_mu_value(p, f"mu for model {model!r}")
        names = set(map(str, models))
        if str(model) not in names:
            raise MuError(f"mu names model {model!r}, which does not appear in the votes (models: {sorted(names)[:10]})")
        if len(names) != 2:
            raise MuError(
                f"a scalar mu needs votes between exactly two models; these votes have {len(names)}: "
                f"{sorted(names)[:10]}. Use strengths= or a per-vote mu column instead"
            )
        (other,) = names - {str(model)}
        return Reference(kind="scalar", source="scalar", mu=p, model=str(model), other=other)
    if isinstance(mu, (int, float, np.floating)):
        check_mu_value(mu, "mu")
        raise MuError(
            f"a bare mu={mu} does not say which model it is about; pass mu={{'<model>': {mu}}} with the "
            "name of the model whose answer is better with that probability"
        )
    raise MuError(f"mu must be a dict {{model: probability}}, a column name or None, got {type(mu).__name__}")


#: Largest gap between two Bradley-Terry log-strengths taken as meant: at 15 units
#: P(better model wins) = 1 - 3e-7, beyond anything votes can show. Elo ratings read as
#: log-strengths (1200 against 1150) land far beyond it.
BT_MAX_GAP = 15.0


def _refuse_saturating(table: pd.Series) -> None:
    """A Bradley-Terry table whose spread drives mu to 0 or 1 is almost always Elo ratings
    given without ``scale='elo'``: every mu would be about 1 and every user who ever picks the
    weaker model would look careless. Refuse it and say so."""
    gap = float(table.max() - table.min())
    if gap <= BT_MAX_GAP:
        return
    hi, lo = table.idxmax(), table.idxmin()
    elo_like = bool((table.abs() >= 100).all())
    as_elo = float(expit(gap * math.log(10.0) / ELO_SCALE))
    if as_elo > 1.0 - 1e-9:
        raise StrengthsError(
            f"the strengths span {gap:g} units ({hi!r} {table[hi]:g}, {lo!r} {table[lo]:g}): P({hi!r} beats {lo!r}) "
            "rounds to exactly 0 or 1 read as Bradley-Terry log-strengths and as Elo ratings alike, so mu saturates "
            "and every vote for the weaker model counts as careless: check the table's units"
        )
    raise StrengthsError(
        f"the strengths span {gap:g} units ({hi!r} {table[hi]:g}, {lo!r} {table[lo]:g}): read as Bradley-Terry "
        f"log-strengths (scale='bt'), P({hi!r} beats {lo!r}) = {float(expit(gap)):.10f}, so mu saturates at 1 and "
        "every vote for the weaker model counts as careless. "
        + ("These look like Elo ratings: " if elo_like else "If these are Elo ratings, ")
        + f"pass scale='elo' (command line: --scale elo), which gives P = {as_elo:.3f}; Bradley-Terry "
        f"log-strengths more than {BT_MAX_GAP:g} apart are not meant"
    )


def _row_mu(votes: pd.DataFrame, ref: Reference) -> np.ndarray:
    if ref.source == "column":
        col = votes[ref.column]
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~((values > 0.0) & (values < 1.0))
        if bad.any():
            rows = list(votes.index[bad][:5])
            raise MuError(
                f"column {ref.column!r} must hold probabilities strictly between 0 and 1; {int(bad.sum())} "
                f"row(s) do not, first rows {rows} with values {list(col[bad][:5])}"
            )
        return values
    ma, mb = votes[MODEL_A].astype(str).to_numpy(dtype=object), votes[MODEL_B].astype(str).to_numpy(dtype=object)
    return _pair_mu(ref, ma, mb, lambda bad, i: (int(bad.sum()), votes.index[i]))


def _pair_mu(ref: Reference, ma: np.ndarray, mb: np.ndarray, locate) -> np.ndarray:
    """sigmoid(strength of ``ma`` - strength of ``mb``) on the reference's scale, per element;
    refused where it rounds to 0 or 1 (``locate(bad, i)`` gives the message's count and label)."""
    beta = ref.strengths
    factor = math.log(10.0) / ELO_SCALE if ref.scale == "elo" else 1.0
    mu = expit((beta.reindex(ma).to_numpy() - beta.reindex(mb).to_numpy()) * factor)
    bad = ~((mu > 0.0) & (mu < 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        n_rows, label = locate(bad, i)
        raise StrengthsError(_saturated_message(ma[i], mb[i], beta[ma[i]], beta[mb[i]], ref.scale, n_rows, label))
    return mu


def _saturated_message(ma, mb, sa, sb, scale, n_rows=None, first_row=None) -> str:
    where = "" if n_rows is None else f" on {n_rows} vote(s) (first row label {first_row!r})"
    return (
        f"the strengths of {ma!r} ({sa:g}) and {mb!r} ({sb:g}) differ so much that P({ma!r} beats {mb!r}) "
        f"rounds to exactly 0 or 1{where} (scale={scale!r}); such a vote would have probability 0 under the "
        "attentive type. Check the scale (Elo ratings need scale='elo') or the table's units"
    )


def count_with(votes: pd.DataFrame, ref: Reference | None, keep_rows: bool = False):
    """:func:`comparemode.models.counts.count_votes` of a validated table under a resolved
    reference: a per-vote mu from another column (``mu="p_model_a"``) is counted as the
    ``mu`` of the contexts, so counts always carry the mu the fit reads."""
    if ref is not None and ref.source == "column" and ref.column != MU:
        votes = votes.drop(columns=[MU], errors="ignore").assign(**{MU: _row_mu(votes, ref)})
    return count_table(votes, keep_rows=keep_rows, validated=True)


def _context_mu(counts, ref: Reference) -> np.ndarray:
    """P(model_a's answer is better) per context of ``counts`` for a per-row reference."""
    ctx = counts.contexts
    if ref.source == "column":  # the counted mu (count_with counts the reference's column as mu)
        if not counts.has_mu:
            raise MuError(f"these vote counts carry no per-vote mu: count votes that have the mu column {ref.column!r}")
        return ctx[MU].to_numpy(np.float64)
    names = counts.models.to_numpy(dtype=object)
    ma, mb = names[ctx[MODEL_A].to_numpy()], names[ctx[MODEL_B].to_numpy()]
    return _pair_mu(ref, ma, mb, lambda bad, i: (int(counts.count[np.isin(counts.context, np.flatnonzero(bad))].sum()), "(counted votes)"))


def encode_counts(counts, ref: Reference, rows: bool = False) -> tuple[EncodedVotes, pd.Index]:
    """The encoded votes the counts stand for, grouped by user, context and outcome (every
    fit reads these, so a fit from the votes, from counts and from Dask is one computation);
    ``rows=True``: the same codes in the counted table's row order (:attr:`VoteCounts.rows`),
    for what needs the votes' order."""
    user, context, outcome = counts.vote_codes(rows)
    user = user.astype(np.intp, copy=False)
    if ref.kind == "scalar":
        names = counts.models.to_numpy(dtype=object)
        first = (names[counts.contexts[MODEL_A].to_numpy()] == ref.model).astype(np.int8)
        code = (outcome + np.int8(3) * first[context]).astype(np.int8)
        return EncodedVotes(user=user, code=code, n_users=counts.n_users), counts.users
    return EncodedVotes(user=user, code=outcome.astype(np.int8), n_users=counts.n_users, mu=_context_mu(counts, ref)[context]), counts.users


def encode_rows(votes: pd.DataFrame, ref: Reference) -> tuple[EncodedVotes, pd.Index]:
    """A validated table's votes encoded in their own row order, through their counts
    (:func:`count_with` keeping the rows, then :func:`encode_counts` with ``rows=True``): what
    reads the votes one by one (cross-fitting, the drift check). Returns the codes and the
    user index."""
    return encode_counts(count_with(votes, ref, keep_rows=True), ref, rows=True)


_CHUNK = 1 << 16  # small, so that the usual early exit reads a few thousand votes, not a million


def _scan(arrays, found) -> bool:
    """True as soon as ``found(*chunks)`` is true on some chunk of the aligned arrays (an early
    exit keeps the check cheap on large, well-behaved data)."""
    size = arrays[0].shape[0]
    for lo in range(0, size, _CHUNK):
        if found(*(a[lo : lo + _CHUNK] for a in arrays)):
            return True
    return False


def check_identifiable(enc: EncodedVotes, ref: Reference, careless: str) -> None:
    """Refuse when nothing separates attentive from careless voting (docs/design.md section 1)."""
    code = enc.code
    if not _scan([code], lambda c: bool(np.any(c % 3 != CODE_TIE))):
        raise NotIdentifiableError(
            "every vote is a tie: with no decisive votes nothing separates attentive from careless users"
        )
    if ref.kind == "scalar":
        if abs(ref.mu - 0.5) < _FLAT:
            raise NotIdentifiableError(
                f"mu = {ref.mu}: the two models are equally good, so an attentive user votes like a random "
                "clicker and user quality cannot be learned. Compare two models that differ."
            )
        if careless == "random":
            return
        # decisive codes: 0, 1 (stronger model shown second), 3, 4 (stronger shown first)
        second = _scan([code], lambda c: bool(np.any(c < CODE_TIE)))
        first = _scan([code], lambda c: bool(np.any((c == 3) | (c == 4))))
        if not (first and second):
            shown, rate = (ref.model, ref.mu) if first else (ref.other, 1.0 - ref.mu)
            raise NotIdentifiableError(
                f"model {shown!r} is shown first on every decisive vote, so an attentive user (who picks it with "
                f"probability {rate:.3g}) votes exactly like a careless user who clicks the first answer at that "
                "rate. Randomise the positions, or use careless='random'."
            )
        return
    mu = enc.mu
    if not _scan([mu, code], lambda m, c: bool(np.any((np.abs(m - 0.5) >= _FLAT) & (c != CODE_TIE)))):
        raise NotIdentifiableError(
            "every decisive vote has mu = 1/2 (for example both answers from the same model, or equal "
            "strengths): an attentive user votes like a random clicker, so user quality cannot be learned"
        )
    if careless == "random":
        return
    first_mu = float(mu[np.argmax(code != CODE_TIE)])
    if not _scan([mu, code], lambda m, c: bool(np.any((np.abs(m - first_mu) >= _FLAT) & (c != CODE_TIE)))):
        raise NotIdentifiableError(
            f"every decisive vote has the same mu = {first_mu:.6g}: an attentive user then picks the first answer "
            "at that rate, exactly like a careless user with that position habit. Randomise which model is shown "
            "first, or use careless='random'."
        )


def check_mu_identifiable(enc: EncodedVotes, ref: Reference, careless: str, d: np.ndarray) -> None:
    """Refuse a fit that estimates mu where the votes cannot identify it: positions that never
    vary (then attentive votes are a position habit, whatever mu is) or users who cast at most
    one decisive vote each (``d``: decisive votes per user; then only the product of the
    attentive share and mu's distance from 1/2 is identified). Warns when few users cast two
    or more."""
    import dataclasses
    import warnings

    check_identifiable(enc, dataclasses.replace(ref, mu=0.75), careless)  # positions must vary
    several = int((np.asarray(d) >= 2).sum())
    if several == 0:
        raise NotIdentifiableError(
            "every user cast at most one decisive vote: with one vote per user the share of attentive users "
            "and mu cannot be told apart (only their product is identified). Pass a known mu instead, or "
            "collect several votes per user"
        )
    if several < 0.1 * len(d):
        warnings.warn(
            f"only {several} of {len(d)} users cast two or more decisive votes: mu and pi are weakly "
            "identified and their estimates lean on those few users",
            stacklevel=4,
        )
