"""The package version, read in one place from the installed package's metadata (the version
is written once, in ``pyproject.toml``). A leaf module: it imports nothing of the package."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("comparemode")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"
