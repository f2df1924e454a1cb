"""One writer for every command's output: a result set is one run's, whole, or nothing.

A run's output (the directory of ``comparemode run``, the HTML file of ``comparemode report``)
is written to a *staging* path beside the target and moved into place in one step at the end:

- a directory is swapped in with ``renameat2(RENAME_EXCHANGE)`` where the system has it (Linux),
  so a reader sees the old set or the new one and never a mixture; elsewhere the old directory
  is first renamed aside and restored by the next run if the process dies between the renames;
- a file is moved with ``os.replace``.

Around that:

- :meth:`ResultSet.open`, called before any work, refuses an empty target, a target that is a
  file where a directory is wanted (and the reverse), a directory holding files that are not a
  comparemode result set, existing results without ``force``, and a place that cannot be
  written (a read-only directory, a read-only file system), so a run fails in a second instead
  of after minutes of fitting;
- a lock (``flock`` on ``.<name>.lock`` beside the target, removed afterwards) makes a second
  run on the same target fail at once with :class:`~comparemode.errors.OutputBusyError`; before
  the swap, a final check refuses to replace results that appeared meanwhile without ``force``
  (another program, or a run of an older version that takes no lock);
- the staging directory holds exactly the new files plus ``manifest.json``, written last, with
  each file's size and SHA-256, so :func:`read_results` (and any reader) can tell a complete set
  from anything else;
- a failure (a full disk, a signal turned into an exception by the command line) removes the
  staging path and the lock; SIGINT and SIGTERM are held back while the swap and the cleanup
  run (:func:`signals_held`), so they cannot leave half of either;
- files and directories are created with the modes the umask gives (``mkstemp``'s 0600 is not
  used), like any file a user writes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from comparemode._atomic import file_mode  # noqa: F401  (re-exported: the mode a new file gets)
from comparemode._version import __version__
from comparemode.data import read_csv_text
from comparemode.errors import (
    ConfigError,
    OutputBusyError,
    OutputExistsError,
    OutputWriteError,
    ResultSetError,
)

MANIFEST = "manifest.json"

#: Targets this process has moved a complete result set into (the command line's last words
#: after a signal say whether the results were in place before it).
COMMITTED: list[Path] = []
_STAGING = ".staging-"
_OLD = ".old-"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def signals_held():
    """SIGINT and SIGTERM wait until the block ends, so a swap or a cleanup is not cut in
    half; the first one that arrived is then handed to the handler that was in place (which
    may raise). Python-level, not ``pthread_sigmask``: a process-directed signal reaches
    whichever thread does not block it, and the numerical libraries run threads of their own.
    Outside the main thread (where handlers cannot be set) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list = []

    def defer(signum, frame):
        pending.append((signum, frame))

    saved = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, defer)
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if pending:
            signum, frame = pending[0]
            handler = saved.get(signum)
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _write_error(exc: OSError, target: Path, doing: str) -> OutputWriteError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EROFS:
        reason = "the file system is read-only"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    return OutputWriteError(
        exc.errno or 0,
        f"cannot {doing} {str(target)!r}: {reason}. Nothing was written there; what it held before is unchanged",
    )


class ResultSet:
    """One run's output at ``target``: ``kind="dir"`` (a directory of ``names``) or
    ``kind="file"`` (one file). Use as::

        rs = ResultSet(out, kind="dir", names=FILES, force=args.force, option="--out")
        with rs:                      # open(): checks, lock, staging; on error: cleanup
            ...                       # the long work
            rs.write_text("summary.json", text)
            rs.commit()               # manifest, final check, swap
    """

    def __init__(self, target, *, kind: str = "dir", names=(), force: bool = False, option: str = "--out", force_hint: str = "--force"):
        if kind not in ("dir", "file"):
            raise ValueError(kind)
        text = os.fspath(target) if isinstance(target, (str, os.PathLike)) else target
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{option} is empty: give the {'directory' if kind == 'dir' else 'file'} to write the results to")
        self.target = Path(os.path.abspath(text))
        self.shown = text
        self.kind = kind
        self.names = tuple(names)
        self.force = bool(force)
        self.option = option
        self.force_hint = force_hint
        self.staging: Path | None = None
        self._lock_fd: int | None = None
        self._lock_path: Path | None = None
        self._had_results = False
        self._written: list[str] = []
        self.committed = False

    # ------------------------------------------------------------------ checks before work

    def _existing(self) -> list[str]:
        if self.kind == "file":
            return [self.target.name] if self.target.exists() else []
        if not self.target.is_dir():
            return []
        return sorted(p.name for p in self.target.iterdir() if p.name in self.names or p.name == MANIFEST)

    def _check_target(self) -> None:
        t, shown = self.target, self.shown
        cwd = Path(os.getcwd())
        if self.kind == "dir" and (cwd == t or t in cwd.parents):
            raise ConfigError(
                f"{self.option} {shown!r} is the working directory or holds it: the results replace {shown!r} as a whole, "
                "so give a directory of their own, e.g. --out results"
            )
        if self.kind == "dir":
            if t.exists() and not t.is_dir():
                raise ConfigError(f"{self.option} {shown!r} is a file, not a directory: choose a directory for the results")
            if t.is_dir():
                foreign = sorted(p.name for p in t.iterdir() if p.name not in self.names and p.name != MANIFEST)
                if foreign:
                    raise ConfigError(
                        f"{self.option} {shown!r} holds files that are not comparemode results ({', '.join(foreign[:5])}"
                        f"{', ...' if len(foreign) > 5 else ''}): the results are written as one directory that replaces "
                        f"{shown!r} as a whole, so choose a new or empty directory"
                    )
                if os.path.ismount(t):
                    raise ConfigError(f"{self.option} {shown!r} is a mount point: choose a directory inside it")
                if not os.access(t, os.W_OK | os.X_OK):
                    raise OutputWriteError(errno.EACCES, f"cannot write the results to {shown!r}: the directory is not writable. "
                                           "Nothing was written; choose another " + self.option)
        elif t.exists() and t.is_dir():
            raise ConfigError(f"{self.option} {shown!r} is a directory: give the file to write, e.g. {os.path.join(shown, 'report.html')!r}")
        elif t.exists() and not t.is_file():
            raise ConfigError(f"{self.option} {shown!r} is not a regular file: give a path for a new file")
        existing = self._existing()
        if existing and not self.force:
            what = f"already holds {', '.join(existing)}" if self.kind == "dir" else "exists"
            raise OutputExistsError(f"{shown} {what}; pass {self.force_hint} to replace {'them' if self.kind == 'dir' else 'it'} or choose another {self.option}")
        self._had_results = bool(existing)

    def open(self) -> "ResultSet":
        self._check_target()
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(exc, self.target, "create the directory for") from None
        self._lock()
        try:
            self._recover()
            self._check_target()  # again, under the lock
            name = f".{self.target.name}{_STAGING}{os.getpid()}-{secrets.token_hex(4)}"
            self.staging = parent / name
            if self.kind == "dir":
                os.mkdir(self.staging, 0o777)  # the umask applies
            else:
                self.staging = self.staging.with_name(name + ".tmp")
                fd = os.open(self.staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                os.close(fd)
        except OSError as exc:
            self.abort()
            raise _write_error(exc, self.target, "write the results to") from None
        except BaseException:
            self.abort()
            raise
        return self

    def _lock(self) -> None:
        path = self.target.parent / f".{self.target.name}.lock"
        for _ in range(5):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise _write_error(exc, self.target, "write the results to") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                finally:
                    os.close(fd)
                raise OutputBusyError(
                    f"another comparemode run is writing {self.shown!r} right now ({holder or 'process unknown'}): "
                    f"wait for it to finish or choose another {self.option}; nothing was written"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
                self._lock_fd, self._lock_path = fd, path
                return
            os.close(fd)  # the holder removed the file as we opened it: take the new one
        raise OutputBusyError(f"could not lock {str(path)!r}: other runs keep replacing it")  # pragma: no cover

    def _unlock(self) -> None:
        if self._lock_fd is None:
            return
        try:
            os.unlink(self._lock_path)
        except OSError:
            pass
        os.close(self._lock_fd)
        self._lock_fd = None

    def _recover(self) -> None:
        """Under the lock: remove what a killed run left (staging paths), and put back an old
        result set that a run killed between the two renames of the fallback left aside."""
        parent, base = self.target.parent, f".{self.target.name}"
        olds = sorted(parent.glob(f"{base}{_OLD}*"))
        if olds and not self.target.exists():
            os.rename(olds.pop(), self.target)
        for p in olds + list(parent.glob(f"{base}{_STAGING}*")):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    # ------------------------------------------------------------------ writing

    def path(self, name: str | None = None) -> Path:
        """Where to write ``name`` now (inside the staging directory), or for a file set the
        staging file itself."""
        if self.staging is None:
            raise RuntimeError("ResultSet.open() first")
        if self.kind == "file":
            return self.staging
        if name not in self.names:
            raise ValueError(f"{name!r} is not one of this result set's files {self.names}")
        self._written.append(name)
        return self.staging / name

    def write(self, name: str | None, write) -> None:
        """Call ``write(path)`` for the staging path of ``name``; a failure of the disk is an
        :class:`OutputWriteError` naming the target."""
        p = self.path(name)
        try:
            write(p)
        except OSError as exc:
            raise _write_error(exc, self.target, "write the results to") from None

    def write_text(self, name: str | None, text: str) -> None:
        self.write(name, lambda p: Path(p).write_text(text, encoding="utf-8"))

    def _manifest(self) -> None:
        files = {}
        for name in sorted(set(self._written)):
            p = self.staging / name
            files[name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        manifest = {
            "comparemode_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": files,
            "complete": True,
        }
        (self.staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    def _sync(self) -> None:
        paths = [self.staging] if self.kind == "file" else [self.staging / n for n in os.listdir(self.staging)]
        for p in paths:
            if p.is_file():
                with open(p, "rb+") as fh:
                    os.fsync(fh.fileno())
        if self.kind == "dir":
            _fsync_dir(self.staging)

    def commit(self) -> Path:
        """Write the manifest, check that nobody put results at the target meanwhile (unless
        ``force``), and move the staging path into place in one step."""
        try:
            if self.kind == "dir":
                self._manifest()
            self._sync()
            with signals_held():
                existing = self._existing()
                if existing and not self.force and not self._had_results:
                    raise OutputExistsError(
                        f"{self.shown} now holds {', '.join(existing)}, written while this run was working; pass {self.force_hint} "
                        f"to replace them or choose another {self.option}. This run's results were not written"
                    )
                self._swap()
                self.committed = True
                COMMITTED.append(self.target)
                _fsync_dir(self.target.parent)
        except OSError as exc:
            raise _write_error(exc, self.target, "write the results to") from None
        finally:
            self.abort()
        return self.target

    def _swap(self) -> None:
        t, s = self.target, self.staging
        if self.kind == "file":
            os.replace(s, t)
            self.staging = None
            return
        if not t.exists():
            os.rename(s, t)
            self.staging = None
            return
        if _exchange(s, t):  # s now holds the old set; abort() removes it
            return
        old = t.parent / f".{t.name}{_OLD}{secrets.token_hex(4)}"
        os.rename(t, old)
        os.rename(s, t)
        self.staging = old

    def abort(self) -> None:
        """Remove the staging path and release the lock (idempotent)."""
        with signals_held():
            s, self.staging = self.staging, None
            if s is not None:
                if s.is_dir():
                    shutil.rmtree(s, ignore_errors=True)
                else:
                    try:
                        s.unlink()
                    except OSError:
                        pass
            self._unlock()

    def __enter__(self) -> "ResultSet":
        if self.staging is None and not self.committed:
            self.open()
        return self

    def __exit__(self, *exc) -> bool:
        self.abort()
        return False


def read_results(path) -> dict:
    """Read a ``comparemode run`` results directory, trusting it only when its manifest is
    complete and every file it lists has the listed size and SHA-256.

    Returns ``{"users": DataFrame, "kept_votes": DataFrame, "dropped_votes": DataFrame,
    "summary": dict, "manifest": dict}`` (``"leaderboard"`` too where the run wrote one), from
    whichever format the run wrote (CSV, Parquet, JSON lines). User ids and model names are read as the
    text they were written as. Raises :class:`~comparemode.errors.ResultSetError` otherwise.
    """
    d = Path(path)
    mpath = d / MANIFEST
    if not d.is_dir():
        raise ResultSetError(f"{str(d)!r} is not a results directory")
    if not mpath.is_file():
        raise ResultSetError(f"{str(d)!r} has no {MANIFEST}: not a complete comparemode result set (or one written before version 0.1.0's manifest)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ResultSetError(f"{str(mpath)!r} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("complete") is not True or not isinstance(manifest.get("files"), dict):
        raise ResultSetError(f"{str(mpath)!r} is not a complete manifest")
    for name, info in manifest["files"].items():
        p = d / name
        if not p.is_file():
            raise ResultSetError(f"{str(d)!r}: {name} is listed in the manifest but missing")
        if p.stat().st_size != info.get("bytes") or sha256_file(p) != info.get("sha256"):
            raise ResultSetError(f"{str(d)!r}: {name} differs from the manifest (size or checksum): the set is not one run's")
    extra = sorted(p.name for p in d.iterdir() if p.name != MANIFEST and p.name not in manifest["files"])
    if extra:
        raise ResultSetError(f"{str(d)!r} holds files the manifest does not list: {extra}")
    out: dict = {"manifest": manifest}
    files = manifest["files"]
    if "summary.json" in files:
        out["summary"] = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    layout = out.get("summary", {}).get("outputs", {}).get("layout", {}).get("columns", {})
    ids = ["user", "model_a", "model_b", "winner", "prompt_id", "model"]
    ids += [src for canon, src in layout.items() if canon in ids]  # the votes tables use the input's names
    for key in ("users", "kept_votes", "dropped_votes", "leaderboard"):
        for ext in ("csv", "parquet", "jsonl"):
            name = f"{key}.{ext}"
            if name not in files:
                continue
            if ext == "csv":
                frame = read_csv_text(d / name, lambda cols: [c for c in cols if c in ids])
            elif ext == "parquet":
                frame = pd.read_parquet(d / name)
            else:
                frame = pd.read_json(d / name, lines=True, dtype=False)
            first = frame.columns[0]
            out[key] = frame.set_index(first).rename_axis(None if str(first).startswith("Unnamed") else first)
    return out
