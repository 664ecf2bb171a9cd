"""Inputs onto a device mesh and results back, in one process or in every process of a
`jax.distributed` job (JAX's multi-controller model: every process runs the same program on
the same arguments and addresses only its own devices).

The strategies that use several devices (`sharding.py`: a batch split over devices;
`blocked.py`: one MDP's states split over devices) place their inputs with `place` and hand
their results to the caller through `to_local`, so the same code serves local devices and a
mesh spanning processes:

- `place(x, sharding)`: `jax.device_put` when this process addresses every device of the
  sharding; otherwise a global array assembled from this process's blocks of `x`
  (`jax.make_array_from_callback`), `x` being the same in every process. Only the blocks a
  process's devices own are copied to them, never the whole array to one device.
- `to_local(x)`: a result this process can read: the copy on this process's first device
  of a replicated array, itself when fully addressable, else every process's blocks gathered
  (`multihost_utils.process_allgather`, a collective every process makes).
"""

from __future__ import annotations

import jax
import numpy as np


def processes(devices) -> int:
    """How many processes own devices of `devices`."""
    return len({getattr(d, "process_index", 0) for d in devices})


def spans_processes(devices) -> bool:
    """Whether `devices` includes devices of other processes than this one."""
    me = jax.process_index()
    return any(getattr(d, "process_index", 0) != me for d in devices)


def place(x, sharding):
    """`x` laid out by `sharding` (see the module docstring). A Python number stays one
    (weakly typed, as `jit` treats it; it is the same in every process)."""
    if isinstance(x, (bool, int, float, complex)):
        return x
    if sharding.is_fully_addressable or (isinstance(x, jax.Array) and not x.is_fully_addressable):
        return jax.device_put(x, sharding)
    host = np.asarray(x)  # the same value in every process (same program, same arguments)
    host = host.astype(jax.dtypes.canonicalize_dtype(host.dtype), copy=False)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def to_local(x):
    """`x` as an array this process can read (see the module docstring)."""
    if not isinstance(x, jax.Array):
        return x
    if x.is_fully_replicated:  # one copy, on this process's first device of the mesh
        return x.addressable_data(0)
    if x.is_fully_addressable:
        return x
    from jax.experimental import multihost_utils

    return jax.numpy.asarray(multihost_utils.process_allgather(x, tiled=True))
