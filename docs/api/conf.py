"""Sphinx configuration of the API reference (built from the package's docstrings).

Build offline, warnings as errors (tests/test_packaging.py runs this)::

    .venv/bin/sphinx-build -W --keep-going -b html docs/api docs/api/_build/html

No intersphinx, no remote theme: the built-in ``alabaster`` theme only. The package must be
importable (``pip install -e '.[docs]'``).
"""

from __future__ import annotations

import os
import re

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import comparemode

project = "comparemode"
author = "comparemode developers"
copyright = "2026, comparemode developers"
release = comparemode.__version__  # the installed metadata: the version is written only in pyproject.toml
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []

# numpydoc-style docstrings through napoleon
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# the package's own section titles: "Columns" (the votes contract), "Functions" (a module's
# index), "Attributes (after ``fit``)" (fitted attributes, sklearn's trailing underscore) and
# "Data contract" (prose)
napoleon_custom_sections = [
    ("Columns", "params_style"),
    ("Functions", "params_style"),
    ("Attributes (after fit)", "params_style"),  # written "Attributes (after ``fit``)": see _adapt_docstring
    "Data contract",
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"  # the docstrings' numpy fields state the types; "description" repeated them
autodoc_default_options = {"members": True}


logger = logging.getLogger(__name__)

# Two habits of the package's docstrings that napoleon reads differently from their authors:
#
# 1. prose after a field section ("Parameters", "Attributes (after ``fit``)", ...), separated
#    from the last field by a blank line and not indented: napoleon reads every line up to the
#    next section title as one more field (and garbles the prose). A second blank line before the
#    prose ends the section, so napoleon keeps the prose as a paragraph;
# 2. a class docstring listing its attributes as ``name : description`` lines (continuations
#    indented) without a section title: docutils reads them as a paragraph with an unexpected
#    indentation. An "Attributes" title before the first such line makes them numpy fields.
#
# Each adapted docstring is logged (``sphinx-build`` without ``-q`` prints the list); fixing the
# docstring itself makes its entry disappear.
_FIELD_SECTIONS = {"parameters", "other parameters", "returns", "yields", "raises", "warns", "attributes",
                   "attributes (after fit)", "columns", "functions"}
_FIELD_LINE = re.compile(r"^\*{0,2}[\w.\[\]]+(, \*{0,2}[\w.\[\]]+)*( ?:( .*)?)?$")
_HEADERLESS_FIELD = re.compile(r"^[A-Za-z_]\w*(, [A-Za-z_]\w*)* : \S")


def _is_title(lines: list[str], i: int) -> bool:
    return i + 1 < len(lines) and bool(lines[i].strip()) and bool(re.fullmatch(r"-{3,}", lines[i + 1]))


def _adapt_docstring(app, what, name, obj, options, lines):
    changed = []
    # a field name cannot hold inline literals: the title "Attributes (after ``fit``)" loses them
    lines[:] = ["Attributes (after fit)" if line == "Attributes (after ``fit``)" else line for line in lines]
    if what == "class":
        in_section = False
        for i, line in enumerate(lines):
            if _is_title(lines, i):
                in_section = True
            elif (not in_section and i > 0 and not lines[i - 1].strip() and _HEADERLESS_FIELD.match(line)
                  and i + 1 < len(lines) and (lines[i + 1].startswith((" ", "\t")) or _HEADERLESS_FIELD.match(lines[i + 1]))):
                lines[i:i] = ["Attributes", "----------"]
                changed.append("attributes without a section title")
                break
    section = None
    i = 0
    while i < len(lines):
        if _is_title(lines, i):
            section = lines[i].strip().lower()
            i += 2
            continue
        line = lines[i]
        if (section in _FIELD_SECTIONS and line and not line[0].isspace() and i > 0 and not lines[i - 1].strip()
                and not (i > 1 and not lines[i - 2].strip()) and not _FIELD_LINE.match(line)):
            lines.insert(i, "")
            changed.append(f"prose after the {section!r} fields ({line[:40]!r}...)")
            section = None
            i += 1
        i += 1
    for what_changed in changed:
        logger.info(f"docstring adapted for napoleon: {name}: {what_changed}")


class CommandHelp(SphinxDirective):
    """``.. comparemode-help:: [SUBCOMMAND]``: the ``--help`` text of the command line (or of one
    of its subcommands), taken from ``comparemode.cli.build_parser`` when the page is built."""

    optional_arguments = 1

    def run(self):
        import argparse

        try:
            from comparemode.cli import build_parser
        except ImportError as exc:  # reported as a warning (an error under -W), not a crash
            return [self.state.document.reporter.warning(f"comparemode-help: cannot import comparemode.cli: {exc}",
                                                         line=self.lineno)]
        parser = build_parser()
        if self.arguments:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = sub.choices[self.arguments[0]]
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal width: fix it
        try:
            text = parser.format_help()
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        return [nodes.literal_block(text, text)]


def setup(app):
    app.add_directive("comparemode-help", CommandHelp)
    app.connect("autodoc-process-docstring", _adapt_docstring, priority=400)  # before napoleon (500)
    return {"parallel_read_safe": True}
