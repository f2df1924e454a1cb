"""Vote counts: the sufficient statistic every model of the package shares.

Whatever the reference (a scalar mu for two models, strengths, a per-vote ``mu`` column, or
strengths estimated jointly), a user's votes enter every model only through how many of them
fall in each **context** (the ordered pair of models shown, first and second, and the vote's
``mu`` where the votes carry a ``mu`` column) with each **outcome** (the first-shown answer
won, the second-shown won, a tie). :class:`VoteCounts` holds those counts, per user, as
integers: two tables of counts merge by exact addition, so counts made from chunks of the
votes (days, files, partitions) add up to the counts of all of them, in any order, and a
platform can keep yesterday's counts and add today's votes (``counts + count_votes(today)``)
without reading history again.

What the counts do not keep: the order of the votes (the drift check needs it; a fit from
counts reports that check as not run), the columns that are not part of the model, and the
difference between ``tie`` and ``tie (bothbad)`` (both are ties to every model).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from comparemode._atomic import atomic_write
from comparemode._columnar import factorize, first_rows, renumber
from comparemode.constants import (
    CODE_A,
    CODE_B,
    CODE_TIE,
    MODEL_A,
    MODEL_B,
    MU,
    USER,
    WIN_A,
    WIN_B,
    WINNER,
)
from comparemode.data import check_input_file, validate_votes
from comparemode.errors import ConfigError, InvalidValueError, VotesError

__all__ = ["VoteCounts", "count_votes", "outcome_codes", "user_codes", "OUTCOME_NAMES"]

#: Outcome code -> the canonical winner value it stands for (ties are written as ``tie``).
OUTCOME_NAMES = {CODE_A: WIN_A, CODE_B: WIN_B, CODE_TIE: "tie"}
_FORMAT = "comparemode.VoteCounts"
_FORMAT_VERSION = 1


def outcome_codes(winner: pd.Series) -> np.ndarray:
    """The outcome of each vote from a validated ``winner`` column: ``CODE_A`` (model_a, shown
    first, won), ``CODE_B`` (model_b won) or ``CODE_TIE`` (either kind of tie)."""
    out = np.full(len(winner), CODE_TIE, dtype=np.int8)
    out[(winner == WIN_A).to_numpy(dtype=bool, na_value=False)] = CODE_A
    out[(winner == WIN_B).to_numpy(dtype=bool, na_value=False)] = CODE_B
    return out


def user_codes(index: pd.Index, users: pd.Series, where: str = "") -> np.ndarray:
    """Position in the user table ``index`` of every vote's user; an error naming the users the
    table lacks (``where`` prefixes the message, e.g. a partition)."""
    codes = index.get_indexer(users)
    unknown = codes < 0
    if unknown.any():
        missing = pd.unique(users.to_numpy()[unknown])
        raise InvalidValueError(
            f"{where}{int(unknown.sum())} vote(s) come from {len(missing)} user(s) that the user table does not have, "
            f"for example {list(missing[:5])}; filter the votes the model was fitted on"
        )
    return codes


def _mu_bits(mu: np.ndarray) -> np.ndarray:
    """``mu`` as exact integer keys (its bits; every NaN the same key)."""
    mu = np.where(np.isnan(mu), np.nan, mu).astype(np.float64)
    return mu.view(np.int64)


def _context_codes(a: np.ndarray, b: np.ndarray, mu: np.ndarray | None):
    """Context code per row (in the smallest signed integer type that holds them) and the
    contexts, in order of first appearance. ``mu=None``: the table has no ``mu`` column (every
    context's ``mu`` is NaN)."""
    if mu is None:
        mu_code, mu_values = np.zeros(a.size, dtype=np.int8), np.array([np.nan])
    else:
        mu_code, mu_values = pd.factorize(_mu_bits(mu), sort=False)
        mu_values = np.asarray(mu_values, dtype=np.int64).view(np.float64)
    n_mu = max(len(mu_values), 1)
    width = int(max(a.max(initial=0), b.max(initial=0))) + 1
    space = width * width * n_mu
    # a small key space (two models: 4 keys) in int32, with no hash table: the key's first rows
    # in order give the codes; a large one (per-vote mu) is hashed
    kind = np.int32 if space < np.iinfo(np.int32).max else np.int64
    key = a.astype(kind) * kind(width)
    key += b
    if n_mu > 1:
        key *= kind(n_mu)
        key += mu_code
    if space <= (1 << 20):
        codes, uniques = renumber(key, space)
    else:
        codes, uniques = pd.factorize(key, sort=False)  # integer keys: one hash pass
        uniques = np.asarray(uniques, dtype=np.int64)
    ab, m = np.divmod(uniques, n_mu)
    contexts = pd.DataFrame({MODEL_A: ab // width, MODEL_B: ab % width, MU: mu_values[m] if len(mu_values) else np.zeros(0)})
    # the smallest integer type that holds them: a code per vote (two models: one byte, not eight)
    return codes.astype(np.min_scalar_type(-max(len(contexts), 1)), copy=False), contexts


def _dense_limit(n_entries: int) -> int:
    """The largest key space :func:`_entries` (and the compiled count) counts with one array
    over every key rather than by sorting the keys."""
    return 16 * n_entries + (1 << 20)


def _entries(user: np.ndarray, context: np.ndarray, outcome: np.ndarray, count: np.ndarray | None, n_contexts: int):
    """Sum equal (user, context, outcome) entries; the result sorted by that key. ``count``
    None: every entry is one vote (no array of ones is built)."""
    key = np.multiply(user, max(n_contexts, 1), dtype=np.int64)  # one key array, built in place
    key += context
    key *= 3
    key += outcome
    if key.size == 0:
        return key, key, key.astype(np.int8), key
    space = int(key.max()) + 1
    if space <= _dense_limit(key.size):  # a dense key space: one bincount, no sort
        ones = count is None or bool((np.asarray(count) == 1).all())
        if not ones:
            count = np.asarray(count, dtype=np.int64)
        sums = np.bincount(key, minlength=space) if ones else np.bincount(key, weights=count, minlength=space)
        key = np.flatnonzero(sums)
        total = sums[key].astype(np.int64)  # float sums of integers below 2**53: exact
        if not ones and int(count.sum()) != int(total.sum()):  # pragma: no cover - counts beyond 2**53
            raise OverflowError("vote counts too large to sum exactly")
    elif count is None:  # one vote per entry: the sorted keys' run lengths, no permutation
        key = np.sort(key)
        start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        total = np.diff(np.append(start, key.size)).astype(np.int64)
        key = key[start]
    else:
        order = np.argsort(key, kind="stable")
        key = key[order]
        count = count.astype(np.int64)[order]
        start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        total = np.add.reduceat(count, start)  # integer sums: exact
        key = key[start]
    outcome_out = (key % 3).astype(np.int8)
    rest = key // 3
    return rest // max(n_contexts, 1), rest % max(n_contexts, 1), outcome_out, total


class VoteCounts:
    """Per user, per context, per outcome: how many votes.

    Attributes
    ----------
    users : pandas.Index
        The user ids, as in the votes, in order of first appearance (merging appends the
        users the other table adds, in its order).
    models : pandas.Index
        The model names (strings), in order of first appearance.
    contexts : pandas.DataFrame
        One row per context: ``model_a`` and ``model_b`` (codes into ``models``: shown first
        and second) and ``mu`` (the votes' ``mu`` value; NaN when the votes carry no ``mu``
        column).
    user, context, outcome, count : numpy arrays
        The non-zero entries, sorted by (user, context, outcome): user code, context code,
        outcome code (0 model_a won, 1 model_b won, 2 tie) and the number of votes.

    Build with :func:`count_votes`; combine with ``a.merge(b)`` or ``a + b`` (``sum`` works
    too); compare with ``==`` (the same counts for the same ids, whatever the order); store
    with :meth:`save` and :meth:`load`. Every fitter's ``fit`` takes a ``VoteCounts`` in place
    of the votes.
    """

    def __init__(self, users, models, contexts: pd.DataFrame, user, context, outcome, count):
        self.users = pd.Index(users, name=USER)
        self.models = pd.Index(models, name="model")
        self.contexts = contexts.reset_index(drop=True)[[MODEL_A, MODEL_B, MU]]
        self.user = np.asarray(user, dtype=np.int64)
        self.context = np.asarray(context, dtype=np.int64)
        self.outcome = np.asarray(outcome, dtype=np.int8)
        self.count = np.asarray(count, dtype=np.int64)
        #: per vote, in the counted table's row order: (user, context, outcome) codes; kept by
        #: ``count_votes(..., keep_rows=True)`` for what needs the votes' order (the drift
        #: check), never by a merge
        self.rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def empty(cls) -> "VoteCounts":
        """No votes: the neutral element of :meth:`merge`."""
        contexts = pd.DataFrame({MODEL_A: np.zeros(0, np.int64), MODEL_B: np.zeros(0, np.int64), MU: np.zeros(0)})
        none = np.zeros(0, np.int64)
        return cls(pd.Index([]), pd.Index([], dtype="str"), contexts, none, none, none.astype(np.int8), none)

    # ------------------------------------------------------------------ sizes

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_votes(self) -> int:
        return int(self.count.sum())

    def __len__(self) -> int:
        """The number of votes counted."""
        return self.n_votes

    @property
    def has_mu(self) -> bool:
        """Whether the counted votes carried a ``mu`` column."""
        return bool(len(self.contexts)) and bool(self.contexts[MU].notna().any())

    def __repr__(self) -> str:
        return (
            f"VoteCounts({self.n_votes:,} votes, {self.n_users:,} users, {len(self.models)} models, "
            f"{len(self.contexts)} contexts{', mu column' if self.has_mu else ''})"
        )

    # ------------------------------------------------------------------ merging

    def merge(self, other: "VoteCounts") -> "VoteCounts":
        """The counts of both tables' votes together: exact integer addition."""
        if not isinstance(other, VoteCounts):
            raise ConfigError(f"VoteCounts merge with a VoteCounts, got {type(other).__name__}")
        if not len(other.users) and not len(other.contexts):  # the neutral element: keep our dtypes
            return self
        if not len(self.users) and not len(self.contexts):
            return other
        if len(self.contexts) and len(other.contexts) and self.has_mu != other.has_mu:
            raise ConfigError(
                "one table of counts has a mu per vote and the other has not: count both from votes with the same "
                "columns (a 'mu' column in both or in neither)"
            )
        new_users = other.users[~other.users.isin(self.users)]
        users = self.users.append(new_users)
        new_models = other.models[~other.models.isin(self.models)]
        models = self.models.append(new_models)
        remap_model = models.get_indexer(other.models)
        theirs = other.contexts.assign(
            model_a=remap_model[other.contexts[MODEL_A].to_numpy()], model_b=remap_model[other.contexts[MODEL_B].to_numpy()]
        )
        both = pd.concat([self.contexts, theirs], ignore_index=True)
        # first appearance: ours, then the new ones of theirs
        codes, contexts = _context_codes(both[MODEL_A].to_numpy(np.int64), both[MODEL_B].to_numpy(np.int64), both[MU].to_numpy(np.float64))
        ours_ctx, their_ctx = codes[: len(self.contexts)], codes[len(self.contexts):]
        user = np.concatenate([self.user, users.get_indexer(other.users)[other.user]])
        context = np.concatenate([ours_ctx[self.context], their_ctx[other.context]])
        outcome = np.concatenate([self.outcome, other.outcome])
        count = np.concatenate([self.count, other.count])
        u, c, o, n = _entries(user, context, outcome, count, len(contexts))
        return VoteCounts(users, models, contexts, u, c, o, n)

    def __add__(self, other):
        return self.merge(other)

    def __radd__(self, other):
        if isinstance(other, (int, float)) and other == 0:  # sum(tables)
            return self
        return NotImplemented

    # ------------------------------------------------------------------ views

    def to_frame(self) -> pd.DataFrame:
        """One row per entry: ``user``, ``model_a``, ``model_b``, ``mu`` (with a mu column),
        ``winner`` (the outcome as a canonical winner value) and ``count``."""
        ctx = self.contexts
        names = self.models.to_numpy(dtype=object)
        out = {
            USER: self.users.take(self.user).to_numpy() if len(self.user) else self.users[:0].to_numpy(),
            MODEL_A: names[ctx[MODEL_A].to_numpy()[self.context]],
            MODEL_B: names[ctx[MODEL_B].to_numpy()[self.context]],
        }
        if self.has_mu:
            out[MU] = ctx[MU].to_numpy()[self.context]
        out[WINNER] = np.array([OUTCOME_NAMES[i] for i in range(3)], dtype=object)[self.outcome]
        out["count"] = self.count
        return pd.DataFrame(out).astype({MODEL_A: "str", MODEL_B: "str", WINNER: "str"})

    def vote_codes(self, rows: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(user, context, outcome)`` codes of every vote the counts stand for, grouped by
        user, context and outcome (what every fit reads), or with ``rows=True`` in the counted
        table's row order (:attr:`rows`, kept by ``count_votes(..., keep_rows=True)``)."""
        if rows:
            return self.rows
        return np.repeat(self.user, self.count), np.repeat(self.context, self.count), np.repeat(self.outcome, self.count)

    def to_votes(self) -> pd.DataFrame:
        """The votes these counts stand for, one row per vote (canonical columns), grouped by
        user in order of first appearance: what a fitter reads where it still needs rows.
        ``attrs["comparemode"]["from_counts"]`` is True: their order is not the votes' order."""
        frame = self.to_frame()
        rows = frame.loc[frame.index.repeat(frame["count"].to_numpy())].drop(columns="count").reset_index(drop=True)
        rows.attrs["comparemode"] = {"rows_in": len(rows), "source": "VoteCounts", "from_counts": True, "ties_dropped": 0,
                                     "rows_out": len(rows), "format": "canonical", "columns": {}, "ties": "model"}
        return rows

    def context_frame(self) -> pd.DataFrame:
        """One canonical row per context (``model_a``, ``model_b``, ``mu`` with a mu column; a
        placeholder ``user`` and ``winner``): what deciding where mu comes from needs to see."""
        names = self.models.to_numpy(dtype=object)
        out = {USER: np.full(len(self.contexts), "", dtype=object),
               MODEL_A: names[self.contexts[MODEL_A].to_numpy()], MODEL_B: names[self.contexts[MODEL_B].to_numpy()],
               WINNER: np.full(len(self.contexts), "tie", dtype=object)}
        if self.has_mu:
            out[MU] = self.contexts[MU].to_numpy()
        return pd.DataFrame(out).astype({MODEL_A: "str", MODEL_B: "str"})

    def user_totals(self) -> pd.DataFrame:
        """Per user: ``n_votes``, ``n_ties`` and ``n_first`` (decisive picks of the answer shown
        first), indexed by user id in order of first appearance."""
        n = np.bincount(self.user, weights=self.count, minlength=self.n_users).astype(np.int64)
        t = np.bincount(self.user, weights=self.count * (self.outcome == CODE_TIE), minlength=self.n_users).astype(np.int64)
        f = np.bincount(self.user, weights=self.count * (self.outcome == CODE_A), minlength=self.n_users).astype(np.int64)
        return pd.DataFrame({"n_votes": n, "n_ties": t, "n_first": f}, index=self.users)

    # ------------------------------------------------------------------ equality

    def _canonical(self) -> pd.DataFrame:
        frame = self.to_frame()
        keys = [USER, MODEL_A, MODEL_B] + ([MU] if self.has_mu else []) + [WINNER]
        frame = frame.assign(**{USER: frame[USER].map(lambda v: (type(v).__name__, repr(v)))})
        return frame.sort_values(keys, kind="stable").reset_index(drop=True)

    def __eq__(self, other) -> bool:
        if not isinstance(other, VoteCounts):
            return NotImplemented
        if self.n_votes != other.n_votes or self.n_users != other.n_users or set(self.users) != set(other.users):
            return False
        return self._canonical().equals(other._canonical())

    __hash__ = None  # mutable arrays: not hashable

    def identical(self, other: "VoteCounts") -> bool:
        """Equal in every array and in order (what bit-identical fits need)."""
        return (
            isinstance(other, VoteCounts)
            and self.users.equals(other.users)
            and list(self.users.map(type)) == list(other.users.map(type))
            and self.models.equals(other.models)
            and self.contexts.equals(other.contexts)
            and all(np.array_equal(getattr(self, a), getattr(other, a)) for a in ("user", "context", "outcome", "count"))
        )

    # ------------------------------------------------------------------ storage

    def save(self, path) -> Path:
        """Write the counts to one Parquet file (written to a temporary file and moved into
        place); :meth:`load` gives back a table :meth:`identical` to this one."""
        import pyarrow as pa
        import pyarrow.parquet as pq


        frame = self.to_frame()
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            kinds = sorted({type(u).__name__ for u in self.users})
            raise ConfigError(
                f"these counts cannot be stored as Parquet: the user ids mix types ({', '.join(kinds)}): {exc}. Count "
                "votes whose ids have one type, e.g. votes.assign(user=votes['user'].astype(str))"
            ) from None
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "models": [str(m) for m in self.models],
            "contexts": [[int(a), int(b), None if math.isnan(m) else float(m)] for a, b, m in self.contexts.itertuples(index=False)],
            "has_mu": self.has_mu,
        }
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"comparemode": json.dumps(meta).encode()})
        return atomic_write(Path(path), lambda tmp: pq.write_table(table, tmp))

    @classmethod
    def load(cls, path) -> "VoteCounts":
        """Read counts written by :meth:`save`."""
        import pyarrow.parquet as pq


        check_input_file(path, "counts file")
        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as exc:
            raise VotesError(f"cannot read {str(path)!r} as vote counts (Parquet): {exc}") from None
        raw = (table.schema.metadata or {}).get(b"comparemode")
        meta = json.loads(raw) if raw else {}
        if meta.get("format") != _FORMAT:
            raise VotesError(f"{str(path)!r} is a Parquet file but not vote counts written by VoteCounts.save")
        if meta.get("version", 0) > _FORMAT_VERSION:
            raise VotesError(f"{str(path)!r} holds vote counts of a newer format (version {meta['version']}): upgrade comparemode")
        frame = table.to_pandas()
        models = pd.Index(meta["models"], dtype="str")
        contexts = pd.DataFrame(meta["contexts"], columns=[MODEL_A, MODEL_B, MU]).astype(
            {MODEL_A: np.int64, MODEL_B: np.int64, MU: np.float64}
        )
        codes, users = pd.factorize(frame[USER], sort=False)
        a = models.get_indexer(frame[MODEL_A])
        b = models.get_indexer(frame[MODEL_B])
        mu = frame[MU].to_numpy(np.float64) if meta.get("has_mu") else np.full(len(frame), np.nan)
        known = pd.MultiIndex.from_arrays([contexts[MODEL_A].to_numpy(), contexts[MODEL_B].to_numpy(), _mu_bits(contexts[MU].to_numpy())])
        context = known.get_indexer(pd.MultiIndex.from_arrays([a.astype(np.int64), b.astype(np.int64), _mu_bits(mu)]))
        if (context < 0).any() or (a < 0).any() or (b < 0).any():
            raise VotesError(f"{str(path)!r}: its rows do not match the contexts its metadata lists: the file was altered")
        outcome = outcome_codes(frame[WINNER])
        return cls(users, models, contexts, codes, context, outcome, frame["count"].to_numpy(np.int64))


def _model_codes(col_a: pd.Series, col_b: pd.Series):
    """Codes of the two model columns into one list of models in order of first appearance
    row by row (model_a, model_b, next row...): each column factorized on its own (no
    interleaved copy of both), the two lists merged in that order."""
    ca, ua = factorize(col_a)
    cb, ub = factorize(col_b)
    models = pd.Index(ua).append(pd.Index(ub))
    first = np.full(len(ua) + len(ub), np.iinfo(np.int64).max, dtype=np.int64)
    # each column's uniques appear first at their first row: model_a's at 2 * row, model_b's at 2 * row + 1
    first[: len(ua)] = 2 * first_rows(ca, len(ua))
    first[len(ua):] = 2 * first_rows(cb, len(ub)) + 1
    codes, uniq = pd.factorize(models, sort=False)  # a model in both columns: one code
    pos = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(pos, codes, first)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(pos, kind="stable")] = np.arange(len(uniq))
    final = rank[codes]
    order = np.argsort(rank, kind="stable")
    return _relabel(ca, final[: len(ua)]), _relabel(cb, final[len(ua):]), pd.Index(uniq[order])


#: From this many votes (and no ``mu`` column) :func:`count_votes` codes the models, contexts
#: and outcomes and counts the entries in one compiled pass (:func:`_count_fused`) instead of
#: a numpy pass for each step: on ten million votes about 0.25 CPU s against 0.3-1.1 s, the
#: spread being the memory each step's array touches fresh. Below it, numpy (numba not imported).
FUSED_MIN_VOTES = 1 << 18
#: The most distinct model names (both columns together) the compiled pass takes: it keeps a
#: dense table of every ordered pair (a million entries at most); beyond, numpy.
FUSED_MAX_MODELS = 1024


@lru_cache(maxsize=1)
def _fused_kernel():
    """The compiled pass of :func:`_count_fused` (numba imported on first use)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def count_pass(user, n_users, ca, ga, cb, gb, n_names, cw, wmap, context, outcome, dense_limit):  # pragma: no cover - compiled
        # Pass 1, row by row: each name (ga[ca[i]], gb[cb[i]]: codes into the names of both
        # columns) gets the next model code at its first appearance (model_a before model_b),
        # each ordered pair of model codes the next context code at its first row, each winner
        # code (cw[i] + 1: 0 is a missing winner) its outcome. Pass 2, when the entries' key
        # space (n_users * contexts * 3) is at most dense_limit: the entries counted in it and
        # read back in key order. Status 0 done; 1 a negative model code or a user code outside
        # 0 .. n_users - 1 (the caller counts with numpy); 2 pass 1 done, the key space too
        # large (numpy counts the entries).
        model = np.full(n_names, -1, np.int64)
        pair = np.full(n_names * n_names, -1, np.int64)
        ctx_a = np.empty(n_names * n_names, np.int64)
        ctx_b = np.empty(n_names * n_names, np.int64)
        k_models = 0
        k_ctx = 0
        for i in range(user.shape[0]):
            x = ca[i]
            y = cb[i]
            if x < 0 or y < 0 or user[i] < 0 or user[i] >= n_users:
                return model, ctx_a[:0], ctx_b[:0], 1, ctx_a[:0], ctx_a[:0], outcome[:0], ctx_a[:0]
            x = ga[x]
            y = gb[y]
            if model[x] < 0:
                model[x] = k_models
                k_models += 1
            if model[y] < 0:
                model[y] = k_models
                k_models += 1
            t = model[x] * n_names + model[y]
            c = pair[t]
            if c < 0:
                c = k_ctx
                pair[t] = c
                ctx_a[c] = model[x]
                ctx_b[c] = model[y]
                k_ctx += 1
            context[i] = c
            outcome[i] = wmap[cw[i] + 1]
        n_ctx = max(k_ctx, 1)
        space = n_users * n_ctx * 3
        if space > dense_limit:
            return model, ctx_a[:k_ctx], ctx_b[:k_ctx], 2, ctx_a[:0], ctx_a[:0], outcome[:0], ctx_a[:0]
        sums = np.zeros(space, np.int64)
        for i in range(user.shape[0]):
            sums[(user[i] * n_ctx + context[i]) * 3 + outcome[i]] += 1
        n = 0
        for j in range(space):
            if sums[j] != 0:
                n += 1
        u = np.empty(n, np.int64)
        cc = np.empty(n, np.int64)
        o = np.empty(n, np.int8)
        k = np.empty(n, np.int64)
        n = 0
        for j in range(space):
            if sums[j] != 0:
                rest = j // 3
                u[n] = rest // n_ctx
                cc[n] = rest % n_ctx
                o[n] = j % 3
                k[n] = sums[j]
                n += 1
        return model, ctx_a[:k_ctx], ctx_b[:k_ctx], 0, u, cc, o, k

    return count_pass


def _column_codes(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of a column and the values they stand for: a Categorical's own codes and
    categories (no pass over its rows), otherwise :func:`factorize`."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(), pd.Index(s.cat.categories)
    return factorize(s)


def _count_fused(votes: pd.DataFrame, user: np.ndarray, n_users: int):
    """What :func:`count_votes` computes from the user codes on, for a table with no ``mu``
    column, in one compiled pass (:func:`_fused_kernel`): the models, the contexts, each row's
    context and outcome codes, and the entries (user, context, outcome, count). The same
    arrays, orders and types as the numpy steps (:func:`_model_codes`, :func:`_context_codes`,
    :func:`outcome_codes`, :func:`_entries`); None where they must do it (more than
    :data:`FUSED_MAX_MODELS` names, a missing model)."""
    ca, ua = _column_codes(votes[MODEL_A])
    cb, ub = _column_codes(votes[MODEL_B])
    names = ua.append(ub)
    codes, uniq = pd.factorize(names, sort=False)  # a name in both columns: one code
    if len(uniq) > FUSED_MAX_MODELS:  # (no name at all: every code is missing, and the pass gives up)
        return None
    winner = votes[WINNER]
    if isinstance(winner.dtype, pd.CategoricalDtype):
        cw = winner.cat.codes.to_numpy()
        wmap = np.concatenate([[CODE_TIE], outcome_codes(pd.Series(winner.cat.categories))]).astype(np.int8)
    else:
        cw = outcome_codes(winner)  # int8 outcome codes, mapped to themselves
        wmap = np.array([CODE_TIE, 0, 1, 2], dtype=np.int8)
    n_pairs = max(len(uniq), 1) ** 2
    context = np.empty(len(votes), dtype=np.min_scalar_type(-n_pairs))
    outcome = np.empty(len(votes), dtype=np.int8)
    model, ctx_a, ctx_b, status, u, c, o, k = _fused_kernel()(
        np.ascontiguousarray(user, dtype=np.int64), n_users, ca, np.ascontiguousarray(codes[: len(ua)], dtype=np.int64),
        cb, np.ascontiguousarray(codes[len(ua):], dtype=np.int64), max(len(uniq), 1), cw, wmap, context, outcome,
        _dense_limit(len(votes)))
    if status == 1:
        return None
    seen = np.flatnonzero(model >= 0)
    models = pd.Index(uniq.take(seen[np.argsort(model[seen])]))
    contexts = pd.DataFrame({MODEL_A: ctx_a.copy(), MODEL_B: ctx_b.copy(), MU: np.full(len(ctx_a), np.nan)})
    context = context.astype(np.min_scalar_type(-max(len(contexts), 1)), copy=False)
    entries = _entries(user, context, outcome, None, len(contexts)) if status == 2 else (u, c, o, k)
    return models, contexts, context, outcome, entries


def _relabel(codes: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``new[codes]`` in ``codes``' integer type; ``codes`` itself where ``new`` is the
    identity (no copy)."""
    if np.array_equal(new, np.arange(len(new))):
        return codes
    return np.asarray(new, dtype=codes.dtype)[codes]


def count_votes(votes, *, keep_rows: bool = False, validated: bool = False) -> VoteCounts:
    """Count a votes table (validated as :func:`comparemode.validate_votes` does): per user,
    per context (model shown first, model shown second, and the vote's ``mu`` where the table
    has a ``mu`` column), per outcome, the number of votes. In memory; ``comparemode.count_votes``
    (:func:`comparemode.counting.count_votes`) also counts a Dask DataFrame, a directory or a
    glob of Parquet files, partition by partition. ``keep_rows`` keeps each vote's codes
    in row order (:attr:`VoteCounts.rows`); ``validated`` skips the validation of a table that
    has just been validated."""
    if isinstance(votes, VoteCounts):
        return votes
    if not validated:
        votes = validate_votes(votes)
    user, users = factorize(votes[USER])
    fused = _count_fused(votes, user, len(users)) if len(votes) >= FUSED_MIN_VOTES and MU not in votes.columns else None
    if fused is not None:
        models, contexts, context, outcome, (u, c, o, k) = fused
    else:
        # row by row (model_a, model_b, next row...): the order of first appearance that merging
        # the counts of consecutive chunks reproduces
        a, b, models = _model_codes(votes[MODEL_A], votes[MODEL_B])
        mu = votes[MU].to_numpy(np.float64) if MU in votes.columns else None
        context, contexts = _context_codes(a, b, mu)
        outcome = outcome_codes(votes[WINNER])
        u, c, o, k = _entries(user, context, outcome, None, len(contexts))
    out = VoteCounts(pd.Index(users, name=USER), pd.Index(models.astype(str), name="model"), contexts, u, c, o, k)
    if keep_rows:
        out.rows = (user.astype(np.int64, copy=False), context, outcome)
    return out
