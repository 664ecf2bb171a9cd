"""Atomic file output: a reader sees the old file (or set of files) or the new one, never a mix.

Every file the library writes goes through here:

- `atomic_file(path)`: write to a temporary name in the same directory, flush and fsync, then
  `os.replace` onto `path` (atomic on POSIX and Windows within one file system). On any
  exception (KeyboardInterrupt included) the temporary file is removed and `path` is untouched.
- `result_set(directory)`: stage a whole set of files (a sweep's npz, csv, summary, plots) in a
  sibling staging directory, then swap it in as a unit. The previous directory, if any, is moved
  aside first and deleted after the swap; the window between the two renames is the only
  moment `directory` is absent (POSIX has no atomic exchange of two non-empty directories).
  Files of the old set are never mixed with the new.
- `check_writable(path)`: fail before a long solve, not after it.

A process killed with SIGKILL mid-write leaves at most a stale temporary (`.<name>.tmp-*`)
next to the target; the target itself is whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_TMP = ".tmp-"


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (best effort: not every platform opens directories)."""
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


def check_writable(path: str | os.PathLike, *, what: str = "output") -> Path:
    """Checks that `path` (a file or directory to be created or replaced) can be written.

    Creates missing parent directories. Raises `PermissionError` / `NotADirectoryError` /
    `IsADirectoryError` naming `what` and the path, so a long computation is not wasted on an
    output that cannot be saved.
    """
    p = Path(os.fspath(path)).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(
            e.errno, f"cannot create the directory for the {what} {str(p)!r}: {e.strerror}"
        ) from None
    if not parent.is_dir():
        raise NotADirectoryError(f"the {what} {str(p)!r}: {str(parent)!r} is not a directory.")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}{_TMP}probe-", dir=parent)
    except OSError as e:
        raise PermissionError(
            e.errno, f"the {what} {str(p)!r} cannot be written ({str(parent)!r}: {e.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return p


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside `path` for writing; rename it onto `path` on success.

    Args:
      path: the final file name.
      mode: `"wb"` or `"w"` (text, UTF-8, universal newlines off).

    Yields:
      The open file object. The caller writes; this closes, fsyncs and renames.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w'; got {mode!r}.")
    p = Path(os.fspath(path))
    parent = p.parent if str(p.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}{_TMP}", dir=parent)
    try:
        kwargs = {} if mode == "wb" else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(parent)


@contextlib.contextmanager
def result_set(directory: str | os.PathLike) -> Iterator[Path]:
    """Stage a set of files and swap them in as one unit.

    Yields a staging directory (beside `directory`, same file system); write every file of the
    set into it. On success the staging directory replaces `directory` (the old one, if any,
    is removed after the swap). On any exception the staging directory is removed and
    `directory` is left exactly as it was.
    """
    final = Path(os.fspath(directory))
    parent = final.parent if str(final.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and not final.is_dir():
        raise NotADirectoryError(f"{str(final)!r} exists and is not a directory.")
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}{_TMP}", dir=parent))
    try:
        yield staging
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=parent))
            os.rmdir(old)
            os.rename(final, old)
        try:
            os.rename(staging, final)
        except BaseException:
            if old is not None:
                os.rename(old, final)
            raise
        _fsync_dir(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
