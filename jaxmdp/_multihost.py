"""Agreement between the processes of a `jax.distributed` job, through JAX's own collectives.

In JAX's multi-controller model every process runs the same program and must make the same
collective calls in the same order; a process that raises alone leaves the others waiting
inside the next collective until the distributed runtime's heartbeat gives up. So every
decision that one process takes on local information (its memory budget, a checkpoint file
only process 0 can see, a write that failed) is agreed here before anyone acts on it:

- `first_error(error)`: every process learns whether any process failed; all raise (the
  failed ones their own exception, the others the same type naming the failed process);
- `agree_min(values)`: the elementwise minimum over processes (e.g. the chunk size that
  fits on every host);
- `broadcast_json(value)` / `broadcast_exact(arrays)`: process 0's value on every process
  (arrays bit for bit: they travel as bytes, so -0.0 and NaN payloads survive).

Each is a no-op in a single process. Collectives over all of `jax.devices()`
(`jax.experimental.multihost_utils`), so every process of the job must call them: callers
use them only when their computation spans every process.
"""

from __future__ import annotations

import json

import jax
import numpy as np

# Exceptions re-raised with their own type on the processes that did not fail themselves.
_TYPES = {t.__name__: t for t in (ValueError, TypeError, MemoryError, OSError, RuntimeError)}


def _utils():
    from jax.experimental import multihost_utils

    return multihost_utils


def _bucket(n: int) -> int:
    """Padded length of a broadcast buffer (powers of two: few distinct programs compile)."""
    size = 64
    while size < n:
        size *= 2
    return size


def broadcast_exact(arrays, *, source: int = 0):
    """`arrays` (a pytree of NumPy arrays with the same shapes and dtypes everywhere) as held
    by process `source`, bit for bit."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, arrays)
    is_source = jax.process_index() == source
    leaves, treedef = jax.tree.flatten(arrays)
    raw = [np.ascontiguousarray(np.asarray(x)) for x in leaves]
    full = [k for k, x in enumerate(raw) if x.size]
    # Bytes, summed with zeros from the other processes: exact for every dtype and value.
    got = _utils().broadcast_one_to_all(
        [raw[k].reshape(-1).view(np.uint8) for k in full], is_source=is_source
    )
    out = list(raw)
    for k, g in zip(full, got, strict=True):
        out[k] = np.asarray(g, np.uint8).view(raw[k].dtype).reshape(raw[k].shape)
    return jax.tree.unflatten(treedef, out)


def broadcast_json(value, *, source: int = 0):
    """Process `source`'s JSON-serialisable `value` on every process."""
    if jax.process_count() == 1:
        return value
    mine = jax.process_index() == source
    data = json.dumps(value).encode() if mine else b""
    (n,) = broadcast_exact([np.array([len(data)], np.int32)], source=source)
    n = int(n[0])
    buf = np.zeros(_bucket(n), np.uint8)
    if mine:
        buf[:n] = np.frombuffer(data, np.uint8)
    (buf,) = broadcast_exact([buf], source=source)
    return json.loads(bytes(buf[:n]).decode())


def agree_min(values) -> np.ndarray:
    """The elementwise minimum over processes of the int `values` (same length everywhere)."""
    values = np.asarray(values, np.int64)
    if jax.process_count() == 1:
        return values
    every = _utils().process_allgather(values.astype(np.int32))
    return np.asarray(every).reshape(jax.process_count(), -1).min(axis=0).astype(np.int64)


def first_error(error: BaseException | None) -> None:
    """Raises on every process if `error` is not None on some process.

    The processes that failed raise their own `error`; the others raise its nearest built-in
    class among ValueError, TypeError, MemoryError, OSError, RuntimeError (else RuntimeError)
    with the message of the lowest-numbered failed process.
    """
    if jax.process_count() == 1:
        if error is not None:
            raise error
        return
    flags = np.asarray(_utils().process_allgather(np.int32(error is not None))).reshape(-1)
    failed = np.flatnonzero(flags)
    if failed.size == 0:
        return
    source = int(failed[0])
    doc = None
    if error is not None:  # its class and bases, so a ValueError subclass arrives as one
        doc = {"types": [c.__name__ for c in type(error).__mro__], "message": str(error)}
    doc = broadcast_json(doc, source=source)
    if error is not None:
        raise error
    kind = next((_TYPES[t] for t in doc["types"] if t in _TYPES), RuntimeError)
    raise kind(f"process {source} of {jax.process_count()}: {doc['message']}")
