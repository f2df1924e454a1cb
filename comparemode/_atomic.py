"""Crash-safe file output: write to a temporary file beside the target, then move it into place.

``os.replace`` within one directory is atomic, so a reader (or a run interrupted at any point,
even by SIGKILL) sees either the old complete file or the new complete one, never a part of
one. A failed write removes its temporary file; a killed process can leave one behind, named
``.<target name>.<random>.tmp``, which never shadows the target.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process umask (read without changing it where /proc says it)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new regular file gets under the umask (0666 & ~umask)."""
    return 0o666 & ~_umask()


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` for a temporary path in ``path``'s directory, flush it to disk
    and move it onto ``path``. Returns ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, file_mode())  # as the umask says, not mkstemp's 0600
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
