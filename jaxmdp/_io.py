"""Atomic file output: a reader sees the old file (or set of files) or the new one, never a mix.

Every file the library writes goes through here:

- `atomic_file(path)`: write to a temporary name in the same directory, flush and fsync, then
  `os.replace` onto `path` (atomic on POSIX and Windows within one file system). On any
  exception (KeyboardInterrupt included) the temporary file is removed and `path` is untouched.
- `atomic_files([(path, mode), ...])`: several files, each staged like `atomic_file`; nothing is
  renamed until every one is written and fsynced (so a full disk or an interrupt while writing
  leaves all of them old), then they are renamed in the order given. Only a kill between two
  of those renames (microseconds, no I/O but the renames) leaves the first ones new and the
  rest old (Ctrl-C is deferred until the renames are done): callers put the file that
  defines the result last.
- `result_set(directory)`: stage a whole set of files (a sweep's npz, csv, summary, plots) in a
  sibling staging directory, then swap it in as a unit. On Linux the swap is one atomic
  `renameat2(RENAME_EXCHANGE)`; elsewhere (or on a file system without it) the previous
  directory is moved aside first and the staged one renamed into place, and a run killed
  between those two renames is repaired by the next `result_set` / `check_result_set` (the
  set moved aside is moved back). Files of the old set are never mixed with the new. The
  directory replaced must be one `result_set` wrote (it holds a marker file), an empty one, or
  one whose every entry matches `replaceable` (glob patterns): never a user's unrelated
  folder (`--out ~` must not delete a home directory).
- `check_writable(path)` / `check_result_set(directory)`: fail before a long solve, not after.

A process killed with SIGKILL mid-write leaves at most a stale temporary (`.<name>.tmp-*`)
next to the target; the target itself is whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

_TMP = ".tmp-"
_OLD = ".old-"
# Written into every directory `result_set` creates: only such a directory (or an empty one, or
# one holding only `replaceable` names) is ever replaced.
MARKER = ".jaxmdp-result-set"


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
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C arriving inside the block takes effect at its end (main thread only: elsewhere
    Python never raises KeyboardInterrupt). Keeps a group of renames together."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt


def _interrupt_behind(e: BaseException) -> BaseException:
    """The KeyboardInterrupt an exception was raised while handling, if any, else `e`.

    A Ctrl-C inside a writer's cleanup can come back as another error: numpy's savez closes
    its zip archive in a `finally`, and zipfile then raises "ValueError: Can't close the ZIP
    file while there is an open writing handle". The user pressed Ctrl-C; they get that.
    """
    seen, c = 0, e  # type: tuple[int, BaseException | None]
    while c is not None and seen < 16:
        if isinstance(c, KeyboardInterrupt):
            return c
        c, seen = c.__context__, seen + 1
    return e


def _open_kwargs(mode: str) -> dict:
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w'; got {mode!r}.")
    return {} if mode == "wb" else {"encoding": "utf-8", "newline": ""}


@contextlib.contextmanager
def atomic_files(targets: Sequence[tuple[str | os.PathLike, str]]) -> Iterator[list]:
    """Write several files as one step: all staged and fsynced, then renamed in order.

    Args:
      targets: `[(path, mode), ...]` with mode `"wb"` or `"w"` (text, UTF-8).

    Yields:
      The open file objects, in the order of `targets`. On any exception while they are
      written (a full disk, KeyboardInterrupt) every temporary file is removed and every
      target is untouched. Renames happen only after every file is complete, in the order
      given: put the file that defines the result (e.g. the `.npz`) last. A Ctrl-C during
      the renames takes effect after the last one, so only a kill (SIGKILL, SIGTERM without
      a handler, power loss) can come between them.
    """
    staged = []  # (file object, temporary path, final path)
    try:
        # Ctrl-C waits until every temporary is recorded in `staged`: one landing between
        # `mkstemp` and the append left that temporary behind (seen once in six runs of
        # test_atomic_save under load, with saves fast enough that staging is a real part).
        with _sigint_deferred():
            for path, mode in targets:
                kwargs = _open_kwargs(mode)
                p = Path(os.fspath(path))
                parent = p.parent if str(p.parent) else Path(".")
                parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{p.name}{_TMP}", dir=parent)
                staged.append((os.fdopen(fd, mode, **kwargs), tmp, p))
        yield [f for f, _, _ in staged]
        for f, _, _ in staged:
            f.flush()
            os.fsync(f.fileno())
            f.close()
        with _sigint_deferred():  # Ctrl-C cannot split the group of renames
            for _, tmp, p in staged:
                os.replace(tmp, p)
    except BaseException as e:
        for f, tmp, _ in staged:
            with contextlib.suppress(OSError):
                f.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        interrupt = _interrupt_behind(e)
        if interrupt is not e:
            raise interrupt from None
        raise
    for parent in {p.parent if str(p.parent) else Path(".") for _, _, p in staged}:
        _fsync_dir(parent)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside `path` for writing; rename it onto `path` on success.

    Args:
      path: the final file name.
      mode: `"wb"` or `"w"` (text, UTF-8, universal newlines off).

    Yields:
      The open file object. The caller writes; this closes, fsyncs and renames. An error
      raised while a Ctrl-C was being handled inside the writer comes out as that
      `KeyboardInterrupt` (see `_interrupt_behind`).
    """
    kwargs = _open_kwargs(mode)
    p = Path(os.fspath(path))
    parent = p.parent if str(p.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with _sigint_deferred():  # Ctrl-C only once `tmp` is known (see `atomic_files`)
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}{_TMP}", dir=parent)
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        interrupt = _interrupt_behind(e)
        if interrupt is not e:
            raise interrupt from None
        raise
    _fsync_dir(parent)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux `renameat2(RENAME_EXCHANGE)`); False if the
    platform or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no renameat2 in this libc (glibc < 2.28, musl)
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, f"cannot swap {str(b)!r} into place: {os.strerror(err)}")


def _repair(final: Path) -> None:
    """Undo a swap killed between its two renames (the fallback path): move the set that was
    moved aside back into place."""
    if final.exists():
        return
    parent = final.parent if str(final.parent) else Path(".")
    aside = sorted(
        parent.glob(f".{final.name}{_OLD}*"), key=lambda q: q.stat().st_mtime, reverse=True
    )
    if aside and (aside[0] / MARKER).exists():
        with contextlib.suppress(OSError):
            os.rename(aside[0], final)


def _check_replaceable(final: Path, replaceable: Sequence[str]) -> None:
    if not final.exists():
        return
    if not final.is_dir():
        raise NotADirectoryError(f"{str(final)!r} exists and is not a directory.")
    entries = os.listdir(final)
    if not entries or MARKER in entries:
        return
    foreign = [e for e in entries if not any(fnmatch.fnmatch(e, g) for g in replaceable)]
    if foreign:
        shown = ", ".join(repr(e) for e in sorted(foreign)[:3])
        raise FileExistsError(
            errno.EEXIST,
            f"the output directory {str(final)!r} exists and holds files jaxmdp did not write "
            f"({shown}{', ...' if len(foreign) > 3 else ''}); it would be replaced as a whole. "
            "Choose a new or empty directory, or remove it first.",
        )


def check_result_set(directory: str | os.PathLike, *, replaceable: Sequence[str] = ()) -> Path:
    """Checks, before a long computation, that `result_set(directory)` will be able to write.

    Raises what `result_set` would: `PermissionError` if the parent cannot be written,
    `NotADirectoryError`, or `FileExistsError` if `directory` holds files of someone else.
    """
    final = Path(os.fspath(directory)).expanduser()
    check_writable(final, what="output directory")
    _repair(final)
    _check_replaceable(final, replaceable)
    return final


@contextlib.contextmanager
def result_set(directory: str | os.PathLike, *, replaceable: Sequence[str] = ()) -> Iterator[Path]:
    """Stage a set of files and swap them in as one unit.

    Yields a staging directory (beside `directory`, same file system); write every file of the
    set into it. On success the staging directory replaces `directory` (the old one, if any,
    is removed after the swap). On any exception the staging directory is removed and
    `directory` is left exactly as it was.

    Args:
      directory: the final directory. If it exists it must be one `result_set` wrote, empty,
        or hold only names matching `replaceable`; otherwise `FileExistsError` (nothing is
        written).
      replaceable: glob patterns (e.g. `("sweep.*", "*.png", "summary.txt")`) of files an
        existing directory may hold and still be replaced (outputs of older versions).
    """
    final = Path(os.fspath(directory)).expanduser()
    parent = final.parent if str(final.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    _repair(final)
    _check_replaceable(final, replaceable)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}{_TMP}", dir=parent))
    try:
        (staging / MARKER).write_bytes(b"")
        yield staging
        for name in os.listdir(staging):  # the files' data reaches the disk before the swap
            if (staging / name).is_file():
                with open(staging / name, "rb") as f:
                    os.fsync(f.fileno())
        _fsync_dir(staging)
        old = None
        with _sigint_deferred():  # Ctrl-C cannot come between the two renames of the fallback
            if not final.exists():
                os.rename(staging, final)
            elif _exchange(staging, final):
                old = staging  # now holds the previous set
            else:
                old = Path(tempfile.mkdtemp(prefix=f".{final.name}{_OLD}", dir=parent))
                os.rmdir(old)
                os.rename(final, old)
                try:
                    os.rename(staging, final)
                except BaseException:
                    os.rename(old, final)
                    raise
        _fsync_dir(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
