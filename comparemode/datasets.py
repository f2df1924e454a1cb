"""Data sets that ship with comparemode, read offline (no download, nothing beside the package).

One data set for now: **LLMFAO** (Dmitry Ustalov, 2023; CC BY 4.0), real crowd votes in
comparison mode: a worker sees one prompt and two models' answers, picks the better one or a
tie, and casts many such votes. :func:`load_llmfao` reads it, as ``crowdkit.datasets.load_dataset``
would, but from the files installed with the package (``comparemode/_data/llmfao/``, read with
:mod:`importlib.resources`, so it works from a wheel, an editable install or a zip).
:func:`llmfao_path` gives one of its files on disk, for code that wants a path (the command line).

Data contract of :func:`load_llmfao`
------------------------------------
``votes``
    The crowd votes exactly as ``comparemode.read_llmfao`` (``load_votes(..., format="llmfao")``)
    reads the crowd file: 8,931 rows, one a vote, in file order (a ``RangeIndex``); columns
    ``user, model_a, model_b, winner, prompt_id, id, model_x, model_y``. ``user`` is the
    worker id as written (a string: ``"58"``), 124 of them; ``model_a``/``model_b`` the names
    of the 59 models shown left/right; ``winner`` ``"model_a"``, ``"model_b"`` or ``"tie"``
    (39% ties); ``prompt_id`` the prompt id as written (a string), 13 of them; ``id`` the
    response pair (int64; 2,139 of them, between 0 and 3,235, not contiguous); ``model_x``/``model_y`` the pair's model ids (int64).
``raw``
    The crowd file as written: the same 8,931 rows, the original columns
    ``id, prompt, model_x, model_y, worker, winner, left, right`` and values (``winner`` is
    ``left``/``right``/``tie``).
``gpt4``
    GPT-4's verdict on each pair: 2,139 rows, one per ``id`` (each ``id`` once), columns
    ``id, prompt, model_x, model_y, winner, left, right`` as in ``raw``. Every vote's ``id`` is
    there.
``responses``
    The pairs with their texts: 2,139 rows, one per ``id``, the JSON lines' fields in their
    order: ``id``, ``prompt`` (the prompt id), ``text`` (the prompt's text), ``type``, ``slug``,
    ``note``, ``model_x``, ``result_x`` (model x's response), ``model_y``, ``result_y``. Every
    vote's ``id`` is there, with the vote's ``prompt``, ``model_x`` and ``model_y``.
``models``
    70 models (59 in the votes): ``id`` (int64), ``api_id``, ``name`` (the name the votes use),
    ``api``, ``type``, ``org``.
``prompts``
    19 prompts (13 in the votes): ``id`` (the prompt id, a string), ``text``, ``type``,
    ``slug``, ``stop``, ``note``.
``instruction``, ``citation``, ``bibtex``, ``license``, ``license_text``, ``source``
    The instructions the workers saw (Markdown), how to cite the data (text and BibTeX), the
    licence (``"CC-BY-4.0"`` and its full text) and the shipped ``SOURCE.md``.

Identifiers keep one type across the tables, so they join without conversion: the columns
``load_votes`` reads as text (worker, model names, winner, prompt id) are text as written in
every table (``raw["worker"]``, ``raw["prompt"]``, ``responses["prompt"]``, ``prompts["id"]``
are strings), the pair id and the model ids are int64 as ``load_votes`` passes them through
(``votes["id"]``, ``gpt4["id"]``, ``responses["id"]``, ``models["id"]``). Text fields absent
in the JSON (``null``) are missing (NaN). Every call reads the files again and returns new
tables, so changing one does not change the next call's.

The shipped files are checked on load against the SHA-256 of the original LLMFAO files
(:data:`LLMFAO_SHA256`; a few milliseconds): a damaged or edited copy raises
:class:`DatasetIntegrityError` rather than giving other numbers.

Using the data means crediting it (CC BY 4.0): see ``load_llmfao().citation``.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from ._atomic import atomic_write
from .data import read_llmfao
from .errors import ComparemodeError, ConfigError, OutputExistsError

__all__ = [
    "LLMFAO",
    "load_llmfao",
    "llmfao_path",
    "LLMFAO_FILES",
    "LLMFAO_SHA256",
    "DatasetIntegrityError",
]

_PACKAGE = "comparemode"
_LLMFAO_DIR = ("_data", "llmfao")

#: The files shipped in ``comparemode/_data/llmfao/``, each with the LLMFAO file it holds
#: (``.gz`` files hold the original compressed; ``SOURCE.md`` is comparemode's own).
LLMFAO_FILES: dict[str, str | None] = {
    "crowd-comparisons.csv.gz": "crowd-comparisons.csv",
    "gpt4-crowd-comparisons.csv.gz": "gpt4-crowd-comparisons.csv",
    "pairs-crowd.jsonl.gz": "pairs-crowd.jsonl",
    "models.jsonl": "models.jsonl",
    "prompts.jsonl": "prompts.jsonl",
    "crowd-instruction.md": "crowd-instruction.md",
    "LICENSE.CC-BY": "LICENSE.CC-BY",
    "SOURCE.md": None,
}

#: SHA-256 of each original (uncompressed) LLMFAO file, at commit
#: 9e224e94a40129fd6e1e1529b962307e84af40da of github.com/dustalov/llmfao.
LLMFAO_SHA256: dict[str, str] = {
    "crowd-comparisons.csv": "106564a4bf06f047a4662979384313c22d9b4ca901e780f9e8419f8e5581adb1",
    "gpt4-crowd-comparisons.csv": "86553cbbcb15b030e16fba8dfa7370e8141ff1ab508342f6a18c6fdd908c7d0b",
    "pairs-crowd.jsonl": "83c32e02deeb657e2b6a4cad7391c9bbabbd4f108f78392859b09eeb911ff04b",
    "models.jsonl": "a94ddd33e2034f87505b548c4ff6bea81513efe6888f24960c958546b6279669",
    "prompts.jsonl": "917d233b18976244edf967be9d252ff344c024d9d4ed07780f12190becc3e9fc",
    "crowd-instruction.md": "ce1e44048949c7e5aebe55a47bdec4e8d87b719db07112bca6b51626d75b733f",
    "LICENSE.CC-BY": "9ba9550ad48438d0836ddab3da480b3b69ffa0aac7b7878b5a0039e7ab429411",
}

_ORIGINALS = {orig: shipped for shipped, orig in LLMFAO_FILES.items() if orig is not None}

LLMFAO_URL = "https://github.com/dustalov/llmfao"
LLMFAO_COMMIT = "9e224e94a40129fd6e1e1529b962307e84af40da"
LLMFAO_LICENSE = "CC-BY-4.0"
LLMFAO_CITATION = (
    "Dmitry Ustalov. LLMFAO: Large Language Model Feedback Analysis and Optimization. 2023. "
    f"{LLMFAO_URL} (commit {LLMFAO_COMMIT}). Licensed under CC BY 4.0. Prompts and model "
    "responses from the llmonitor.com Crowdsourced LLM Benchmark, CC BY 4.0."
)
LLMFAO_BIBTEX = (
    "@misc{Ustalov:LLMFAO:2023,\n"
    "  author       = {Ustalov, Dmitry},\n"
    "  title        = {{LLMFAO: Large Language Model Feedback Analysis and Optimization}},\n"
    "  year         = {2023},\n"
    "  howpublished = {\\url{https://github.com/dustalov/llmfao}},\n"
    "  note         = {Dataset, commit 9e224e94a40129fd6e1e1529b962307e84af40da. CC BY 4.0}\n"
    "}"
)

#: Columns of the CSV files read as text as written: those ``load_votes`` reads as text
#: (the worker, the models shown, the winner, the prompt id).
_CSV_TEXT = ("prompt", "worker", "winner", "left", "right")
#: JSON fields kept as the text written (prompt ids); other numbers are int64.
_JSON_TEXT = {"pairs-crowd.jsonl": ("prompt",), "models.jsonl": (), "prompts.jsonl": ("id",)}


class DatasetIntegrityError(ComparemodeError, OSError):
    """A shipped data file is missing, unreadable or not the original (its SHA-256 differs):
    the installation is damaged or the file was edited. Reinstall comparemode."""


@dataclass(frozen=True, repr=False, eq=False)
class LLMFAO:
    """The LLMFAO data set, as :func:`load_llmfao` returns it (the module docstring gives the
    data contract of each table)."""

    votes: pd.DataFrame
    raw: pd.DataFrame
    gpt4: pd.DataFrame
    responses: pd.DataFrame
    models: pd.DataFrame
    prompts: pd.DataFrame
    instruction: str
    citation: str = LLMFAO_CITATION
    bibtex: str = LLMFAO_BIBTEX
    license: str = LLMFAO_LICENSE
    license_text: str = field(default="")
    source: str = field(default="")

    def __repr__(self) -> str:
        v = self.votes
        n_models = pd.concat([v["model_a"], v["model_b"]]).nunique()
        return (
            f"LLMFAO({len(v):,} votes by {v['user'].nunique()} workers on {v['id'].nunique():,} "
            f"pairs of {n_models} models; {len(self.gpt4):,} GPT-4 verdicts; "
            f"{len(self.responses):,} response pairs; licence {self.license})"
        )


# --------------------------------------------------------------------------- files


def _resource(shipped: str):
    node = resources.files(_PACKAGE)
    for part in _LLMFAO_DIR:
        node = node.joinpath(part)
    return node.joinpath(shipped)


def _shipped_name(name: str) -> str:
    if not isinstance(name, str) or (name not in LLMFAO_FILES and name not in _ORIGINALS):
        raise ConfigError(
            f"{name!r} is not an LLMFAO file shipped with comparemode; the files are "
            f"{sorted(LLMFAO_FILES)} (or an original name: {sorted(_ORIGINALS)})"
        )
    return name if name in LLMFAO_FILES else _ORIGINALS[name]


def _read_shipped(shipped: str, verify: bool = True) -> bytes:
    """The content of the original file a shipped file holds (decompressed), checked."""
    try:
        data = _resource(shipped).read_bytes()
    except OSError as exc:
        raise DatasetIntegrityError(
            f"the LLMFAO file {shipped!r} shipped with comparemode cannot be read ({exc}): the "
            "installation is incomplete; reinstall comparemode"
        ) from None
    if shipped.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DatasetIntegrityError(
                f"the LLMFAO file {shipped!r} shipped with comparemode is not valid gzip ({exc}): "
                "reinstall comparemode"
            ) from None
    original = LLMFAO_FILES[shipped]
    if verify and original is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != LLMFAO_SHA256[original]:
            raise DatasetIntegrityError(
                f"the LLMFAO file {shipped!r} shipped with comparemode is not the original "
                f"{original!r}: its SHA-256 is {digest}, expected {LLMFAO_SHA256[original]}. The "
                "copy is damaged or was edited; reinstall comparemode"
            )
    return data


_EXIT = contextlib.ExitStack()
atexit.register(_EXIT.close)
_PATHS: dict[str, Path] = {}


def llmfao_path(
    name: str = "crowd-comparisons.csv.gz",
    directory: str | os.PathLike | None = None,
    *,
    verify: bool = True,
) -> Path:
    """A file of the shipped LLMFAO data set, on disk.

    Parameters
    ----------
    name : str, default "crowd-comparisons.csv.gz"
        A shipped file (:data:`LLMFAO_FILES`: ``crowd-comparisons.csv.gz``,
        ``gpt4-crowd-comparisons.csv.gz``, ``pairs-crowd.jsonl.gz``, ``models.jsonl``,
        ``prompts.jsonl``, ``crowd-instruction.md``, ``LICENSE.CC-BY``, ``SOURCE.md``) or,
        with ``directory``, the name of an original file (``crowd-comparisons.csv``...),
        written decompressed.
    directory : path, optional
        Without it: the installed file itself (read only; never write to it). It is already a
        file on disk for a normal or editable install; from a zip it is extracted once to a
        temporary file removed when Python exits. ``comparemode.load_votes`` and
        ``comparemode run`` read the ``.csv.gz`` as it is. With it: ``name`` is written into
        that (existing) directory, decompressed when it names an original file, and that path
        is returned; a file already there with the same bytes is left alone, one with other
        bytes raises :class:`~comparemode.errors.OutputExistsError`.
    verify : bool, default True
        Check the content against :data:`LLMFAO_SHA256` first
        (:class:`DatasetIntegrityError` if it differs).

    Examples
    --------
    >>> votes = cm.load_votes(llmfao_path())                               # doctest: +SKIP
    >>> csv = llmfao_path("crowd-comparisons.csv", tmp_path)   # the original, byte for byte  # doctest: +SKIP
    """
    shipped = _shipped_name(name)
    if directory is None:
        if name not in LLMFAO_FILES:
            raise ConfigError(
                f"{name!r} ships compressed, as {shipped!r}: ask for that (load_votes and "
                f"comparemode run read it as it is), or pass directory= to have {name!r} written "
                "there decompressed"
            )
        if verify:
            _read_shipped(shipped)
        if shipped not in _PATHS:
            _PATHS[shipped] = Path(_EXIT.enter_context(resources.as_file(_resource(shipped))))
        return _PATHS[shipped]
    folder = Path(directory)
    if not folder.is_dir():
        raise ConfigError(f"directory={str(directory)!r} is not an existing directory")
    if name in LLMFAO_FILES:
        data = _resource(shipped).read_bytes()
        if verify:
            _read_shipped(shipped)
    else:
        data = _read_shipped(shipped, verify=verify)
    target = folder / name
    if target.exists():
        if target.is_file() and target.read_bytes() == data:
            return target
        raise OutputExistsError(
            f"{str(target)!r} already exists with other content; remove it or choose another directory"
        )
    return atomic_write(target, lambda tmp: Path(tmp).write_bytes(data))


# --------------------------------------------------------------------------- tables


def _read_csv(data: bytes) -> pd.DataFrame:
    header = data.split(b"\n", 1)[0].decode("utf-8").strip().split(",")
    text = [c for c in _CSV_TEXT if c in header]
    return pd.read_csv(io.BytesIO(data), dtype={c: str for c in text}, keep_default_na=False,
                       na_values={c: [""] for c in header})


def _read_jsonl(data: bytes, original: str) -> pd.DataFrame:
    text = set(_JSON_TEXT[original])
    decoder = json.JSONDecoder(parse_int=lambda s: _Int(s))
    rows = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            row = decoder.decode(line)
            rows.append({k: (str(v) if k in text else int(v)) if isinstance(v, _Int) else v for k, v in row.items()})
    df = pd.DataFrame.from_records(rows)
    for c in text:
        df[c] = df[c].astype("str")
    return df


class _Int(str):
    """A JSON integer kept as written until its column's rule decides."""

    __slots__ = ()


def load_llmfao(*, verify: bool = True) -> LLMFAO:
    """Load the LLMFAO crowd comparisons shipped with comparemode (offline).

    Parameters
    ----------
    verify : bool, default True
        Check every shipped file against the SHA-256 of the original LLMFAO file
        (:data:`LLMFAO_SHA256`) before reading it; a mismatch raises
        :class:`DatasetIntegrityError`.

    Returns
    -------
    LLMFAO
        A frozen dataclass: ``votes`` (8,931 crowd votes from 124 workers on 2,139 response
        pairs of 59 models and 13 prompts, as ``comparemode.read_llmfao`` reads them),
        ``raw`` (the crowd file as written), ``gpt4`` (GPT-4's verdict per pair id),
        ``responses`` (per pair id: the prompt text and both responses), ``models``,
        ``prompts``, ``instruction``, ``citation``, ``bibtex``, ``license``,
        ``license_text``, ``source``. The module docstring gives the data contract.

    Examples
    --------
    >>> import comparemode as cm
    >>> ds = cm.datasets.load_llmfao()
    >>> len(ds.votes), ds.votes["user"].nunique()
    (8931, 124)
    >>> em = cm.JointEM().fit(ds.votes)                                    # doctest: +SKIP
    """
    if not isinstance(verify, bool):
        raise ConfigError(f"verify must be True or False, got {verify!r}")
    content = {shipped: _read_shipped(shipped, verify=verify) for shipped in LLMFAO_FILES}
    with resources.as_file(_resource("crowd-comparisons.csv.gz")) as path:
        votes = read_llmfao(path)
    raw = _read_csv(content["crowd-comparisons.csv.gz"])
    if len(votes) != len(raw):  # the file changed between the two reads
        raise DatasetIntegrityError("the shipped crowd-comparisons.csv.gz changed while it was read; try again")
    return LLMFAO(
        votes=votes,
        raw=raw,
        gpt4=_read_csv(content["gpt4-crowd-comparisons.csv.gz"]),
        responses=_read_jsonl(content["pairs-crowd.jsonl.gz"], "pairs-crowd.jsonl"),
        models=_read_jsonl(content["models.jsonl"], "models.jsonl"),
        prompts=_read_jsonl(content["prompts.jsonl"], "prompts.jsonl"),
        instruction=content["crowd-instruction.md"].decode("utf-8"),
        license_text=content["LICENSE.CC-BY"].decode("utf-8"),
        source=content["SOURCE.md"].decode("utf-8"),
    )
