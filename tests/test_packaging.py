"""One import namespace: models/ and inference/ live inside comparemode only."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

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
