"""Sweep checkpoints: every finished chunk on disk, a killed sweep resumed where it stopped.

`jaxmdp.sweep(..., checkpoint=DIR)` keeps in DIR:

- `manifest.json`: what the sweep is (its identity) and how it is cut (its plan). Identity:
  the library, jax and jaxlib versions, the platform and device count, every axis (name,
  dtype, length, a SHA-256 of its exact values), the builder's program (a SHA-256 of the
  jaxpr it traces to on scalar parameters, with its constants: two builders that compute
  the same thing match whatever their Python names, and a changed constant inside a
  closure does not), the solver (its repr, type and leaf values), `max_iters`, the result
  dtype, and the user's `checkpoint_key` if given. Plan: members, chunk size, number of
  chunks, tile size.
- `chunk-000000.npz`, ...: the `Solution` fields of one chunk's members, written atomically
  (temporary file, fsync, rename) as soon as the chunk is solved, with the manifest's
  fingerprint and the chunk's position inside.
- `.lock`: held (`flock`) by the process writing the checkpoint; a second sweep on the same
  directory at the same time is refused. The OS releases it when a process dies, kill -9
  included.

A sweep started again with the same arguments reads back every chunk whose file is whole and
solves only the others; since every chunk is the same compiled program on the same inputs,
the result is the uninterrupted run's, bit for bit (on the same machine and software; another
CPU may round the redone chunks differently in the last bits). A checkpoint of a different
sweep (any identity field differs) is refused with the fields that differ, never merged. A
chunk file that cannot be read is solved again (with a warning). Without an explicit
`chunk_size` the checkpoint's own plan is reused, so a changed memory budget does not waste
the chunks already solved. The directory is left in place after the sweep: running it again
returns the result without solving; delete it once the result is saved.

Several processes (`jax.distributed`): only process 0 writes; the chunks read back are those
every process can read (agreed with a collective), so a checkpoint directory that is not
shared merely means no chunk is skipped.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import warnings
from pathlib import Path

import jax
import numpy as np

from jaxmdp import _io, _sweep_file
from jaxmdp._solution import Solution

FORMAT = "jaxmdp.sweep-checkpoint/1"
MANIFEST = "manifest.json"
_LOCK = ".lock"


def _sha(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _array_parts(x) -> list:
    a = np.asarray(x)
    return [str(a.dtype), str(a.shape), np.ascontiguousarray(a).tobytes()]


def builder_fingerprint(builder, closed_jaxpr) -> dict:
    """The builder's name (for messages only) and a hash of what it computes (its identity)."""
    parts = [str(closed_jaxpr.jaxpr)]
    for c in closed_jaxpr.consts:
        parts += _array_parts(c)
    name = getattr(builder, "__qualname__", None) or type(builder).__qualname__
    return {"name": f"{getattr(builder, '__module__', '?')}.{name}", "program": _sha(parts)}


def solver_fingerprint(solver) -> dict:
    leaves, treedef = jax.tree_util.tree_flatten(solver)
    parts = [str(treedef)]
    for leaf in leaves:
        parts += _array_parts(leaf)
    kind = type(solver)
    return {
        "repr": repr(solver),
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "leaves": _sha(parts),
    }


def identity(*, axes, dtypes, builder_id, solver, max_iters, dtype, devices, key) -> dict:
    """The manifest's identity of a sweep (JSON-normalised, so it compares with a loaded one).

    The builder enters by its program's hash only: the same computation under another Python
    name resumes the checkpoint.
    """
    import jaxlib

    from jaxmdp import __version__

    ident = {
        "library": __version__,
        "jax": jax.__version__,
        "jaxlib": getattr(jaxlib, "__version__", "?"),
        "platform": devices[0].platform,
        "devices": len(devices),
        "axes": [_axis(name, v, d) for (name, v), d in zip(axes.items(), dtypes, strict=True)],
        "builder": builder_id["program"],
        "solver": solver_fingerprint(solver),
        "max_iters": int(max_iters),
        "dtype": str(np.dtype(dtype)),
        "key": key,
    }
    return json.loads(json.dumps(ident))


def _axis(name: str, values, dtype) -> list:
    """`[name, dtype, length, sha256 of the values, first, last]`: exact, yet small for
    axes of millions of values."""
    v = np.ascontiguousarray(np.asarray(values).astype(dtype))
    return [name, str(v.dtype), int(v.size), _sha([v.tobytes()]), v[0].item(), v[-1].item()]


_WHAT = {
    "library": "jaxmdp version",
    "jax": "jax version",
    "jaxlib": "jaxlib version",
    "platform": "platform",
    "devices": "number of devices",
    "axes": "axes",
    "builder": "builder (the program it traces to)",
    "solver": "solver",
    "max_iters": "max_iters",
    "dtype": "dtype",
    "key": "checkpoint_key",
}


def _short(v, n: int = 80) -> str:
    if isinstance(v, dict) and "repr" in v:
        v = v["repr"]
    elif isinstance(v, list) and v and isinstance(v[0], list):  # axes
        v = ", ".join(f"{a[0]}[{a[2]}] {a[1]}" for a in v)
    text = str(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def _axes_difference(old, new) -> str:
    def describe(a) -> str:
        return f"{a[2]} values {a[4]:g} .. {a[5]:g} ({a[1]})"

    try:
        if [a[0] for a in old] == [a[0] for a in new]:
            for a, b in zip(old, new, strict=True):
                if a != b:
                    return (
                        f"values of axis {a[0]!r} (checkpoint: {describe(a)}; now: {describe(b)})"
                    )
        names = ", ".join(a[0] for a in old), ", ".join(a[0] for a in new)
        return f"axes (checkpoint: {names[0]}; now: {names[1]})"
    except (TypeError, IndexError, ValueError):
        return "axes"


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for k in sorted(set(old) | set(new), key=lambda k: list(_WHAT).index(k) if k in _WHAT else 99):
        if k == "axes" and old.get(k) != new.get(k):
            out.append(_axes_difference(old.get(k), new.get(k)))
        elif old.get(k) != new.get(k):
            a, b = _short(old.get(k)), _short(new.get(k))
            if a == b:  # same summary, different contents (values, program, leaves)
                a, b = "one value", "another"
            out.append(f"{_WHAT.get(k, k)} (checkpoint: {a}; now: {b})")
    return out


class Store:
    """An open checkpoint directory (see the module docstring)."""

    def __init__(self, directory: Path, fingerprint: str, plan: dict, writer: bool, lock):
        self.directory = directory
        self.fingerprint = fingerprint
        self.plan = plan
        self.writer = writer
        self._lock = lock

    def close(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.close()
            self._lock = None

    def _path(self, k: int) -> Path:
        return self.directory / f"chunk-{k:06d}.npz"

    def read(self, k: int, start: int, count: int, like: Solution) -> Solution | None:
        """Chunk `k` if its file is whole and belongs here; else None (it is solved again)."""
        path = self._path(k)
        if not path.exists():
            return None
        try:
            arrays = _sweep_file.read_npz(path, "sweep checkpoint chunk")
            meta = json.loads(str(arrays.pop("meta")))
            want = {"fingerprint": self.fingerprint, "index": k, "start": start, "count": count}
            if meta != want:
                raise ValueError(f"it belongs to another run or position ({meta})")
            fields = []
            for f, ref in zip(Solution._fields, like, strict=True):
                x = arrays[f]
                if x.shape != (count, *ref.shape[1:]) or x.dtype != ref.dtype:
                    raise ValueError(f"field {f} has {x.dtype} {x.shape}")
                fields.append(x)
            return Solution(*fields)  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError) as e:
            warnings.warn(
                f"checkpoint chunk {str(path)!r} cannot be used ({e}); solving it again.",
                RuntimeWarning,
                stacklevel=3,
            )
            return None

    def write(self, k: int, start: int, sol: Solution) -> None:
        """Writes chunk `k` (`count` members from `start`) atomically."""
        if not self.writer:
            return
        count = int(np.shape(sol.status)[0])
        meta = {"fingerprint": self.fingerprint, "index": k, "start": start, "count": count}
        arrays = {f: np.asarray(x) for f, x in zip(Solution._fields, sol, strict=True)}
        try:
            with _io.atomic_file(self._path(k)) as f:
                np.savez(f, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
        except OSError as e:
            raise OSError(
                e.errno,
                f"cannot write chunk {k} of the sweep checkpoint {str(self.directory)!r}: "
                f"{e.strerror or e}. The chunks written so far are kept: run the same sweep "
                "again to resume.",
            ) from e


def _lock(directory: Path):
    """An exclusive lock on the checkpoint, or RuntimeError if another process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    f = open(directory / _LOCK, "a+")  # noqa: SIM115 - held for the store's lifetime
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        f.close()
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise RuntimeError(
                f"the sweep checkpoint {str(directory)!r} is in use by another running sweep; "
                "wait for it, or use another directory."
            ) from None
        raise
    return f


def open_store(
    directory, ident: dict, plan: dict, *, adopt: bool, builder_name: str = "?"
) -> Store:
    """Opens (creating if needed) the checkpoint in `directory` for the sweep `ident`.

    Args:
      directory: the checkpoint directory.
      ident: `identity(...)` of this sweep.
      plan: `{"size", "chunk", "num_chunks", "tile"}` this run would use.
      adopt: whether an existing checkpoint's plan may replace `plan` (no explicit
        `chunk_size`); otherwise a different plan is refused.
      builder_name: the builder's qualified name, kept in the manifest for messages.

    Returns:
      The store; `store.plan` is the plan to run (the checkpoint's when one exists).

    Raises:
      ValueError: the directory holds a checkpoint of another sweep, or is not a checkpoint.
      RuntimeError: another process is writing this checkpoint.
    """
    d = Path(os.fspath(directory)).expanduser()
    writer = jax.process_index() == 0
    if writer:
        _io.check_writable(d / MANIFEST, what="sweep checkpoint")
    fingerprint = _sha([json.dumps(ident, sort_keys=True)])
    manifest = d / MANIFEST
    others = [e for e in os.listdir(d) if not e.startswith(".")] if d.is_dir() else []
    if writer and others and not manifest.exists():  # before creating anything in it
        raise ValueError(
            f"{str(d)!r} is not a sweep checkpoint (no {MANIFEST}) and is not empty "
            f"({', '.join(sorted(others)[:3])}); give checkpoint= a new or empty directory."
        )
    lock = _lock(d) if writer else None
    try:
        if manifest.exists():
            plan = _check_manifest(manifest, d, ident, plan, adopt, builder_name)
        elif writer:
            doc = {
                "format": FORMAT,
                "fingerprint": fingerprint,
                "identity": ident,
                "plan": plan,
                "builder_name": builder_name,
            }
            with _io.atomic_file(manifest, "w") as f:
                json.dump(doc, f, indent=1)
        if writer:  # temporaries of a run that was killed (we hold the lock: none is live)
            for stale in d.glob(f".*{_io._TMP}*"):
                with contextlib.suppress(OSError):
                    stale.unlink()
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    return Store(d, fingerprint, plan, writer, lock)


def _check_manifest(
    manifest: Path, d: Path, ident: dict, plan: dict, adopt: bool, builder_name: str
) -> dict:
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        old_ident, old_plan = doc["identity"], doc["plan"]
        if doc.get("format") != FORMAT or not isinstance(old_ident, dict):
            raise ValueError(f"format {doc.get('format')!r}")
        old_plan = {k: int(old_plan[k]) for k in ("size", "chunk", "num_chunks", "tile")}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{str(manifest)!r} is not a readable sweep checkpoint manifest ({e}); use another "
            "directory or delete this one."
        ) from None
    diffs = _differences(old_ident, ident)
    if old_ident.get("builder") != ident.get("builder"):
        diffs = [
            f"builder: another program (checkpoint: built by {doc.get('builder_name', '?')}; "
            f"now: {builder_name})"
            if x.startswith(_WHAT["builder"])
            else x
            for x in diffs
        ]
    if diffs:
        raise ValueError(
            f"the sweep checkpoint {str(d)!r} belongs to a different sweep; it is never merged. "
            "Different: " + "; ".join(diffs) + ". Use another directory, or delete this one to "
            "start over."
        )
    if old_plan != plan and not adopt:
        raise ValueError(
            f"the sweep checkpoint {str(d)!r} was cut into chunks of {old_plan['chunk']} "
            f"(tiles of {old_plan['tile']}); this run asks for chunks of {plan['chunk']} "
            f"(tiles of {plan['tile']}). Pass chunk_size={old_plan['chunk']} (or none) to "
            "resume it."
        )
    return old_plan


def agree(done: np.ndarray) -> np.ndarray:
    """Chunks every process can read back (all processes must run the same chunks)."""
    if jax.process_count() == 1:
        return done
    from jax.experimental import multihost_utils

    every = multihost_utils.process_allgather(done.astype(np.int32))
    return np.asarray(every).reshape(jax.process_count(), -1).min(axis=0).astype(bool)
