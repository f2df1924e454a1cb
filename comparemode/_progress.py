"""Progress messages, silenced with ``verbose=False``.

They go to the ``logging`` logger ``"comparemode"`` where that logger has a handler of its
own (the command line attaches one; a program can attach its own:
``logging.getLogger("comparemode").addHandler(...)``), and otherwise straight to standard
error, so that a notebook shows them without any logging set-up.
"""

from __future__ import annotations

import logging
import sys
import time

_START = time.perf_counter()  # one clock for every message of the process

#: The package's logger: progress at INFO, the command line's warnings at WARNING.
LOGGER = logging.getLogger("comparemode")


def stamp(message: str) -> str:
    """A message with the process clock, as every progress line shows it."""
    return f"[comparemode {time.perf_counter() - _START:7.2f}s] {message}"


class Progress:
    """Timestamped stage messages when ``enabled``: to the ``comparemode`` logger where it has
    a handler, else to ``stream`` (default standard error)."""

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = bool(enabled)
        self.stream = stream

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        if self.stream is None and LOGGER.handlers:
            LOGGER.info(message)
            return
        stream = self.stream if self.stream is not None else sys.stderr
        print(stamp(message), file=stream, flush=True)


class StderrHandler(logging.Handler):
    """The command line's handler: each record as one stamped line on the standard error of
    the moment (so that a test capturing stderr sees it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.levelno < logging.WARNING:
                line = stamp(text)
            else:
                cat, level = getattr(record, "category", None), record.levelname.lower()
                line = f"comparemode: {level} ({cat}): {text}" if cat else f"comparemode: {level}: {text}"
            print(line, file=sys.stderr, flush=True)
        except Exception:  # pragma: no cover - logging's own convention
            self.handleError(record)
