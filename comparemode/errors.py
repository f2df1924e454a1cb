"""Exception classes of comparemode.

Every error the package raises on purpose is a :class:`ComparemodeError`. The classes
also derive from the built-in exception a Python user would expect (``ValueError`` for
bad values, ``KeyError`` is never used), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ComparemodeError",
    "VotesError",
    "MissingColumnError",
    "InvalidValueError",
    "EmptyVotesError",
    "MuError",
    "StrengthsError",
    "NotIdentifiableError",
    "ConfigError",
    "NotFittedError",
    "LikelihoodDecreaseError",
    "OutputExistsError",
    "InputNotFoundError",
    "OutputBusyError",
    "OutputWriteError",
    "ResultSetError",
    "BoundaryWarning",
    "MisfitWarning",
    "MissingDependencyError",
]


class ComparemodeError(Exception):
    """Base class of every error raised by comparemode on purpose."""


class VotesError(ComparemodeError, ValueError):
    """The votes table breaks the data contract (see :func:`comparemode.load_votes`)."""


class MissingColumnError(VotesError):
    """A required column is absent from the votes table."""


class InvalidValueError(VotesError):
    """Some rows hold a value the contract does not allow; the message names the rows."""


class EmptyVotesError(VotesError):
    """The votes table has no rows."""


class MuError(ComparemodeError, ValueError):
    """The reference probability mu (scalar or column) is invalid."""


class StrengthsError(ComparemodeError, ValueError):
    """A table of model strengths is invalid or does not cover the voted models."""




class NotIdentifiableError(ComparemodeError, ValueError):
    """Nothing in the data separates attentive from careless voting."""


class ConfigError(ComparemodeError, ValueError):
    """An estimator, simulator or command-line setting is invalid."""


class NotFittedError(ComparemodeError, AttributeError):
    """A result was asked for before ``fit`` was called."""


class LikelihoodDecreaseError(ComparemodeError, RuntimeError):
    """The EM observed log-likelihood went down: a bug, never expected in practice."""


class OutputExistsError(ComparemodeError, FileExistsError):
    """An output file already exists and overwriting was not asked for."""


class InputNotFoundError(ComparemodeError, FileNotFoundError):
    """An input file (for example a votes file) does not exist."""


class OutputBusyError(ComparemodeError, RuntimeError):
    """Another run is writing the same output (``--out``) right now; nothing was written."""


class OutputWriteError(ComparemodeError, OSError):
    """The results could not be written (a read-only directory, a full disk...). What the
    output held before is left as it was, and no temporary file stays behind."""


class ResultSetError(ComparemodeError, ValueError):
    """A results directory is not one complete result set: its manifest is missing or
    incomplete, or a file differs from the checksum the manifest lists."""


class BoundaryWarning(UserWarning):
    """A fitted estimate sits on (or within a tiny distance of) the edge of its range: a
    share pi of attentive users at 0 or 1, or a Beta parameter at the bound the fit allows.
    The number is then a boundary value, not an interior maximum, and its usual reading (and
    any interval built around it) does not apply; the message names the parameter."""


class MisfitWarning(UserWarning):
    """A check of the fitted model against the data failed: the data do something the model
    does not allow (a given mu the votes contradict, users who differ by degree rather than
    by type, attention that drifts within users). Every promise that rests on the model (the
    filter's expected careless share, P(attentive) itself) is then void; the message says what
    the data do and how to proceed, and ``checks_`` holds the numbers."""


class MissingDependencyError(ComparemodeError, ImportError):
    """An optional dependency is not installed (for example Dask: ``pip install comparemode[dask]``)."""
