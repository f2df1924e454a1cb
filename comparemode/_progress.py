"""Progress messages on standard error, silenced with ``verbose=False``."""

from __future__ import annotations

import sys
import time

_START = time.perf_counter()  # one clock for every message of the process


class Progress:
    """Prints timestamped stage messages to stderr when ``enabled``."""

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = bool(enabled)
        self.stream = stream

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"[comparemode {time.perf_counter() - _START:7.2f}s] {message}", file=stream, flush=True)
