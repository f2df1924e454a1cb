"""Votes to training data: preference pairs a DPO / reward-model pipeline reads as they are.

:func:`to_preference_pairs` turns the kept votes of a filter into one row per vote with the
texts a training pipeline needs::

    prompt, chosen, rejected, weight, label_flip_prob, tie, user, chosen_model, rejected_model, <keys>, row

- ``prompt``, ``chosen``, ``rejected``: the prompt text and the two responses, joined from a
  responses table by the ids the caller names (``on``) and the model names of the vote;
- ``weight``: the vote's weight from the filter: the P(attentive) of its user, or the
  cross-fitted weight of the vote where the filter made one (:func:`~comparemode.filter_crossfit`),
  or the "no evidence" weight of ``uninformative="weight"``;
- ``label_flip_prob``: the probability that the label is the reverse of what an attentive vote
  on the pair would say, the per-example flip rate that robust DPO variants (rDPO, cDPO) take.
  A careless vote does not depend on the answers' content, so it reverses the attentive label
  half of the time: ``label_flip_prob = (1 - weight) / 2``;
- ``tie``: False for decisive votes; ``ties="keep"`` adds the kept ties with ``chosen`` the answer
  shown first and ``tie`` True (TRL has no tie; drop those rows or give them a tie loss);
- ``row``: the vote's row label in the votes (a file's 0-based data row), so every pair traces
  back to its vote.

:func:`write_preference_pairs` writes them as JSON lines (``"jsonl"``: text columns), TRL's
conversational layout (``"trl"``: ``prompt`` a list of one user message, ``chosen`` and
``rejected`` lists of one assistant message; the other columns beside them) or Parquet, in
forms that ``datasets.load_dataset("json" | "parquet", data_files=...)`` and TRL's trainers
read without glue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from comparemode.constants import MODEL_A, MODEL_B, USER, WINNER
from comparemode.errors import ConfigError, InvalidValueError, MissingColumnError
from comparemode.inference.filter import FilterResult

__all__ = ["to_preference_pairs", "write_preference_pairs", "PAIR_COLUMNS", "EXPORT_FORMATS"]

#: The columns of :func:`to_preference_pairs`, before the key columns and ``row``.
PAIR_COLUMNS = ("prompt", "chosen", "rejected", "weight", "label_flip_prob", "tie", "user", "chosen_model", "rejected_model")

#: What :func:`write_preference_pairs` writes.
EXPORT_FORMATS = ("jsonl", "trl", "parquet")

#: The responses table of LLMFAO's ``pairs-crowd.jsonl`` shape: one row per pair, two models
#: and their answers side by side.
LLMFAO_WIDE = (("model_x", "result_x"), ("model_y", "result_y"))


def _long_texts(texts: pd.DataFrame, on: list, model: str, response: str, prompt: str | None, wide) -> pd.DataFrame:
    """The responses table as one row per (keys, model): keys, model, response[, prompt]."""
    if wide:
        need = on + [c for pair in wide for c in pair]
        missing = [c for c in need if c not in texts.columns]
        if missing:
            raise MissingColumnError(f"the responses table has no column {missing}; it has {list(texts.columns)[:20]} (wide={list(wide)!r})")
        keep = on + ([prompt] if prompt and prompt in texts.columns else [])
        parts = [texts[keep + [m, r]].rename(columns={m: model, r: response}) for m, r in wide]
        texts = pd.concat(parts, ignore_index=True)
    else:
        missing = [c for c in on + [model, response] if c not in texts.columns]
        if missing:
            raise MissingColumnError(
                f"the responses table has no column {missing}; it has {list(texts.columns)[:20]}. It needs one row per "
                f"answer with the key columns {on}, a model column ({model!r}) and the answer's text ({response!r}), or, "
                "for one row per pair with two answers side by side, wide=[('model_x', 'result_x'), ('model_y', 'result_y')]"
            )
    dup = texts.duplicated(on + [model], keep=False)
    if dup.any():
        d = texts.loc[dup, on + [model]].drop_duplicates()
        clash = texts.loc[dup].groupby(on + [model], sort=False)[response].nunique()
        if (clash > 1).any():
            raise InvalidValueError(
                f"the responses table gives {int((clash > 1).sum())} answers more than one text (keys {on} + {model!r}), "
                f"e.g. {d.head(3).to_dict('records')}: which one was shown is ambiguous; keep one row per answer"
            )
        texts = texts.drop_duplicates(on + [model])
    return texts


def _as_key(s: pd.Series) -> pd.Series:
    """Keys compared as text, so a pair id read as 7 on one side and "7" on the other meets."""
    return s.astype("string") if s.dtype != "string" else s


def to_preference_pairs(
    votes: pd.DataFrame,
    result,
    texts: pd.DataFrame,
    *,
    on: str | Sequence[str] = "prompt_id",
    model: str = "model",
    response: str = "response",
    prompt: str | None = "prompt",
    wide: Sequence[tuple[str, str]] | None = None,
    model_names=None,
    ties: str = "drop",
    missing: str = "error",
) -> pd.DataFrame:
    """Kept votes as preference pairs (``prompt``, ``chosen``, ``rejected``, ``weight``, ...).

    Parameters
    ----------
    votes : DataFrame
        The canonical votes the filter decided on (:func:`~comparemode.load_votes`), with the
        key columns ``on``.
    result : FilterResult or DataFrame
        What the filter decided: a :class:`~comparemode.FilterResult` (its ``kept`` rows and
        per-vote ``weights``), or a user table with ``keep`` and ``p_attentive`` (and
        ``weight``, where the rule made one), e.g. ``read_results(dir)["users"]``.
    texts : DataFrame
        The responses: one row per answer with the key columns ``on``, ``model`` and
        ``response`` (and the prompt text in ``prompt``), or one row per pair with the answers
        side by side, named by ``wide`` (LLMFAO's ``pairs-crowd.jsonl``:
        ``wide=[("model_x", "result_x"), ("model_y", "result_y")]``).
    model_names : mapping or Series, optional
        The responses table's model identifiers -> the votes' model names, where the two
        name models differently (LLMFAO's responses give model ids, its votes model names:
        ``dict(zip(models["id"], models["name"]))``). Compared as text. An identifier without
        a name counts as a missing text.
    on : column name or list of names
        The vote columns that say which prompt (or pair) the answers belong to; the responses
        table has the same columns. Keys are compared as text.
    prompt : column name or None
        The prompt text: a column of ``texts`` or, failing that, of ``votes``. None leaves
        the ``prompt`` column empty (a pipeline that prepends it itself).
    ties : {"drop", "keep"}
        Kept tie votes are left out (default) or kept with ``tie`` True.
    missing : {"error", "drop"}
        A kept vote whose answer has no text raises :class:`~comparemode.errors.InvalidValueError`
        (default: nothing is left out silently), or is dropped and counted in
        ``out.attrs["comparemode"]["missing_text"]``.

    Returns
    -------
    DataFrame
        One row per kept decisive vote (and kept tie with ``ties="keep"``), in vote order, with
        the columns :data:`PAIR_COLUMNS`, the keys and ``row`` (the vote's row label). ``attrs``
        record the counts: votes in, kept, ties left out, rows out, missing texts.
    """
    if ties not in ("drop", "keep"):
        raise ConfigError(f"ties={ties!r}: give 'drop' (leave kept ties out) or 'keep' (mark them tie=True)")
    if missing not in ("error", "drop"):
        raise ConfigError(f"missing={missing!r}: give 'error' or 'drop'")
    on = [on] if isinstance(on, str) else list(on)
    if not on:
        raise ConfigError("on=[]: name the vote column(s) that join the votes to their answers (e.g. on='prompt_id')")
    absent = [c for c in on + [USER, MODEL_A, MODEL_B, WINNER] if c not in votes.columns]
    if absent:
        raise MissingColumnError(f"the votes have no column {absent}; they have {list(votes.columns)[:20]} (on={on!r})")
    if isinstance(result, FilterResult):
        kept = result.kept  # the dropped side is never selected here (FilterResult selects on demand)
        weight = result.side_weights("kept")
        if not kept.index.isin(votes.index).all():
            raise InvalidValueError("the filter result's kept votes are not rows of these votes: pass the votes the filter decided on")
    elif isinstance(result, pd.DataFrame):
        if "keep" not in result.columns or "p_attentive" not in result.columns:
            raise MissingColumnError(f"the user table needs 'keep' and 'p_attentive' columns (a run's users table); it has {list(result.columns)[:20]}")
        table = result
        unknown = ~votes[USER].isin(table.index)
        if unknown.any():
            raise InvalidValueError(
                f"{int(unknown.sum()):,} votes come from users the user table does not hold (e.g. {list(votes.loc[unknown, USER].unique()[:3])}): "
                "pass the votes the results were made from"
            )
        keep_user = table["keep"].astype(bool)
        kept = votes.loc[votes[USER].map(keep_user).to_numpy(dtype=bool)]
        per_user = table["weight" if "weight" in table.columns else "p_attentive"]
        weight = kept[USER].map(per_user).to_numpy(dtype=float)
    else:
        raise ConfigError(f"result must be a FilterResult or a user table (DataFrame), got {type(result).__name__}")
    if not isinstance(texts, pd.DataFrame):
        raise ConfigError(f"texts must be a pandas DataFrame of responses, got {type(texts).__name__}")

    n_kept = len(kept)
    is_tie = ~kept[WINNER].isin((MODEL_A, MODEL_B)).to_numpy()
    n_ties = int(is_tie.sum())
    if ties == "drop":
        kept, weight, is_tie = kept.loc[~is_tie], weight[~is_tie], is_tie[~is_tie]
    a_won = (kept[WINNER] == MODEL_A).to_numpy() | is_tie  # a tie: the first shown as "chosen"
    chosen_model = np.where(a_won, kept[MODEL_A].to_numpy(dtype=object), kept[MODEL_B].to_numpy(dtype=object))
    rejected_model = np.where(a_won, kept[MODEL_B].to_numpy(dtype=object), kept[MODEL_A].to_numpy(dtype=object))

    long = _long_texts(texts, on, model, response, prompt, wide)
    if model_names is not None:
        names = pd.Series(model_names) if not isinstance(model_names, pd.Series) else model_names
        names = pd.Series(names.to_numpy(dtype=object), index=pd.Index(names.index.astype(str)))
        if not names.index.is_unique:
            raise InvalidValueError("model_names maps a model identifier to more than one name: keep one name per identifier")
        long = long.assign(**{model: long[model].astype(str).map(names)})
    keys = pd.DataFrame({c: _as_key(kept[c]).to_numpy() for c in on})
    lk = long.assign(**{c: _as_key(long[c]) for c in on}, **{model: long[model].astype("string")})
    lookup = lk.set_index(on + [model])[response]

    def text_of(models) -> np.ndarray:
        idx = pd.MultiIndex.from_frame(keys.assign(**{model: pd.array(models, dtype="string")}))
        return lookup.reindex(idx).to_numpy(dtype=object)

    chosen, rejected = text_of(chosen_model), text_of(rejected_model)
    if prompt is not None and prompt in long.columns:
        ptext = lk.drop_duplicates(on).set_index(on)[prompt]
        pidx = pd.MultiIndex.from_frame(keys) if len(on) > 1 else pd.Index(keys[on[0]])
        prompt_text = ptext.reindex(pidx).to_numpy(dtype=object)
    elif prompt is not None and prompt in kept.columns:
        prompt_text = kept[prompt].to_numpy(dtype=object)
    elif prompt is not None:
        raise MissingColumnError(f"no prompt text: neither the responses table nor the votes have a column {prompt!r} (prompt=None leaves it empty)")
    else:
        prompt_text = np.full(len(kept), None, dtype=object)
    lost = pd.isna(chosen) | pd.isna(rejected) | (pd.isna(prompt_text) if prompt is not None else False)
    n_missing = int(lost.sum())
    if n_missing and missing == "error":
        ex = kept.loc[lost, on + [MODEL_A, MODEL_B]].head(3).to_dict("records")
        raise InvalidValueError(
            f"{n_missing:,} kept votes have no text for an answer or the prompt (joined on {on} + the model), e.g. {ex}: "
            "check the key columns and the model names of the responses table, or pass missing='drop' to leave them out"
        )
    out = pd.DataFrame(
        {
            "prompt": prompt_text,
            "chosen": chosen,
            "rejected": rejected,
            "weight": weight,
            "label_flip_prob": (1.0 - weight) / 2.0,
            "tie": is_tie,
            "user": kept[USER].to_numpy(),
            "chosen_model": chosen_model,
            "rejected_model": rejected_model,
            **{c: kept[c].to_numpy() for c in on if c not in PAIR_COLUMNS},
            "row": kept.index.to_numpy(),
        }
    )
    if n_missing:
        out = out.loc[~lost].reset_index(drop=True)
    out.attrs["comparemode"] = {
        "votes_in": int(len(votes)),
        "votes_kept": int(n_kept),
        "ties_kept_left_out": n_ties if ties == "drop" else 0,
        "missing_text": n_missing,
        "rows": int(len(out)),
        "label_flip_prob": "(1 - weight) / 2: a careless vote reverses the attentive label half of the time",
    }
    return out


def trl_records(pairs: pd.DataFrame) -> pd.DataFrame:
    """TRL's conversational layout: ``prompt`` a list of one user message, ``chosen`` and
    ``rejected`` lists of one assistant message; the other columns unchanged."""
    def msgs(role, texts):
        return [[{"role": role, "content": t}] for t in texts]

    return pairs.assign(prompt=msgs("user", pairs["prompt"]), chosen=msgs("assistant", pairs["chosen"]), rejected=msgs("assistant", pairs["rejected"]))


def write_preference_pairs(pairs: pd.DataFrame, path, format: str = "jsonl") -> None:
    """Write :func:`to_preference_pairs`' rows to ``path``: ``"jsonl"`` (one JSON object per
    line, text columns), ``"trl"`` (JSON lines in TRL's conversational layout) or
    ``"parquet"``. Both load with ``datasets.load_dataset("json" | "parquet", data_files=path)``."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"format={format!r} is not one of {EXPORT_FORMATS}")
    frame = trl_records(pairs) if format == "trl" else pairs
    frame = frame.assign(user=frame["user"].astype(str), row=frame["row"].astype(str) if frame["row"].dtype == object else frame["row"])
    if format == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False, double_precision=15)  # 15: the most pandas writes
