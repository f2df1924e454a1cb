"""Packaging: one import namespace (models/ and inference/ live inside comparemode only), one
version source, the wheel's contents, and the API reference built from the docstrings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import comparemode


def test_subpackages_import_under_comparemode():
    import comparemode.inference.em as em
    import comparemode.models.likelihood as lik

    assert em.TwoTypeEM is comparemode.TwoTypeEM
    assert lik.__name__ == "comparemode.models.likelihood"


def test_no_top_level_models_or_inference(tmp_path):
    code = "import importlib.util as u; print(u.find_spec('models'), u.find_spec('inference'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.split() == ["None", "None"]


def test_version_matches_metadata():
    assert comparemode.__version__ == version("comparemode")


# --------------------------------------------------------------------------- one version source

ROOT = Path(__file__).resolve().parent.parent
#: a version literal: a quoted string that is the version and nothing else, or any version-like
#: quoted string assigned to ``version``, ``__version__`` or ``release`` (with ``=`` or ``:``)
VERSION_LITERAL = r"([\"']){v}\1"
VERSION_ASSIGNMENT = re.compile(r"(?<![\w.])(__version__|version|release)\s*[:=]\s*[\"']\d+(\.\d+)+[\w.+-]*[\"']")


def _project_files() -> list[Path]:
    """The repository's text files, tracked or new (not ignored); skip outside a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(reason="not a git checkout (an installed copy): the repository's files are not here")
    paths = [ROOT / p for p in out.stdout.decode().split("\0") if p]
    return [p for p in paths if p.is_file() and p.suffix not in {".gz", ".parquet", ".nc", ".png", ".whl"}]


def test_version_written_once():
    """The version is declared in pyproject.toml and nowhere else: no other file holds it as a
    literal or assigns a version literal (prose that names the version a feature came in, and the
    changelog's release headings, are not declarations); the installed metadata, and so
    ``comparemode.__version__``, is that version (a stale editable install fails here)."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert version("comparemode") == declared, "installed metadata differs from pyproject.toml: reinstall (pip install -e .)"
    assert comparemode.__version__ == declared
    literal = re.compile(VERSION_LITERAL.format(v=re.escape(declared)))
    holders, assigners = [], []
    for path in _project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(ROOT).as_posix()
        if literal.search(text):
            holders.append(rel)
        if VERSION_ASSIGNMENT.search(text) and not path.suffix == ".ipynb":  # notebooks record their Python's version
            assigners.append(rel)
    assert holders == ["pyproject.toml"], holders
    assert assigners == ["pyproject.toml"], assigners


# --------------------------------------------------------------------------- the wheel


def test_wheel_carries_license_py_typed_and_data(tmp_path):
    """A wheel built from the sources holds the package (comparemode.models and
    comparemode.inference inside it, nothing at the top level), py.typed, the data files, the
    MIT licence file and its metadata."""
    pytest.importorskip("setuptools", reason="setuptools (in the test extra) builds the wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("comparemode", "models", "inference"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(tmp_path / "dist")], cwd=src, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("comparemode-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"comparemode-{version('comparemode')}.dist-info"
        metadata = z.read(f"{info}/METADATA").decode()
    assert "comparemode/py.typed" in names
    assert f"{info}/licenses/LICENSE" in names
    assert {"comparemode/models/likelihood.py", "comparemode/inference/em.py"} <= names
    assert any(n.startswith("comparemode/_data/llmfao/") for n in names)
    assert not [n for n in names if n.split("/")[0] in ("models", "inference")]
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata


# --------------------------------------------------------------------------- the API reference

API_DOCS = ROOT / "docs" / "api"


def test_every_public_name_is_in_the_api_reference():
    """Every name of ``comparemode.__all__`` has an autodoc entry in docs/api (a module by
    ``automodule``); a new export without one fails here."""
    documented = set()
    for page in API_DOCS.glob("*.rst"):
        for m in re.finditer(r"^\.\. auto(?:function|class|data|module|exception)::\s*(\S+)", page.read_text(encoding="utf-8"), flags=re.M):
            documented.add(m.group(1).removeprefix("comparemode."))
    missing = sorted(set(comparemode.__all__) - documented - {"__version__"})
    assert not missing, f"public names without an entry in docs/api/*.rst: {missing}"


def test_api_reference_builds_without_warnings(tmp_path):
    """Sphinx (autodoc + napoleon, offline: no intersphinx, the built-in alabaster theme) builds
    the API reference with every warning an error. Not nitpicky: without intersphinx every
    pandas and numpy type in a signature would be an unresolved reference."""
    pytest.importorskip("sphinx", reason="sphinx (in the test and docs extras) builds the API reference")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          "-d", str(tmp_path / "doctrees"), str(API_DOCS), str(tmp_path / "html")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not out.stderr.strip(), out.stderr
    html = (tmp_path / "html" / "estimators.html").read_text(encoding="utf-8")
    assert "TwoTypeEM" in html and "bootstrap_leaderboard" in html
    assert "comparemode run" in (tmp_path / "html" / "cli.html").read_text(encoding="utf-8")
