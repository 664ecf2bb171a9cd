"""Splitting a solve's batch across devices (JAX's own SPMD: a 1-D `Mesh` and `shard_map`).

Used by `jaxmdp.solve(..., devices=[...])` when it is given several devices (GPUs, or CPU
devices made with `XLA_FLAGS=--xla_force_host_platform_device_count=N`; with jax 0.10 the
latter was seen to hang in policy iteration's second call, so nothing here is automatic).
Leaves that carry the batch are sharded along it; shared leaves (a common `transitions`)
are replicated. Each device runs the ordinary single-device program on its block, so every
member's result is the one its own solve gives. Several hosts: use `jaxmdp.sweep`, which
builds global arrays after `jax.distributed.initialize()`; `solve` shards over local devices.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmdp._mdp import MDP
from jaxmdp._solution import Solution

_CORES = (3, 2, 0, 1)  # core ndim of transitions, rewards, discount, values0


class _Static(NamedTuple):
    fast: bool  # shared-transitions value iteration fast path
    max_iters: int
    ctx: object
    local_plan: object
    zero_start: bool


def num_shards(plan, num_devices: int) -> int:
    """How many devices to split over: the most (<= num_devices) that divide the batch."""
    if num_devices < 2 or not plan.batch_shape:
        return 1
    if not all(all(c) or not any(c) for c in plan.carried):
        return 1  # partially broadcast leaves: one device keeps it simple
    B = int(np.prod(plan.batch_shape))
    for n in range(min(num_devices, B), 1, -1):
        if B % n == 0:
            return n
    return 1


def _flatten(x, carried, core: int, B: int):
    shape = np.shape(x)
    core_shape = tuple(shape[len(shape) - core :]) if core else ()
    return jnp.reshape(x, ((B,) if all(carried) else ()) + core_shape)


def _local(p, r, g, v0, solver, shared, *, static: _Static) -> Solution:
    from jaxmdp._solve import _solve_jit, _solve_shared_vi

    if static.fast:
        mdp = MDP(p, r, g)
        v = None if static.zero_start else v0
        return _solve_shared_vi(mdp, v, shared, solver, max_iters=static.max_iters, ctx=static.ctx)
    return _solve_jit(
        (p, r, g, v0), solver, max_iters=static.max_iters, ctx=static.ctx, plan=static.local_plan
    )


@functools.lru_cache(maxsize=64)
def _runner(devices: tuple, specs: tuple, static: _Static):
    mesh = Mesh(np.array(devices), ("batch",))
    in_specs = tuple(P("batch") if s else P() for s in specs) + (P(), P())
    body = functools.partial(_local, static=static)
    mapped = jax.shard_map(
        body, mesh=mesh, in_specs=in_specs, out_specs=P("batch"), check_vma=False
    )
    return mesh, jax.jit(mapped)


def solve_sharded(mdp, values0, solver, shared, *, devices, plan, fast, max_iters, ctx, make_plan):
    """Run the solve of a batch split over `devices` (their number divides the batch)."""
    n = len(devices)
    B = int(np.prod(plan.batch_shape))
    zero_start = values0 is None
    if zero_start:
        values0 = jnp.zeros((mdp.num_states,), jnp.result_type(mdp.rewards, mdp.discount))
    leaves = [
        _flatten(x, c, core, B)
        for x, c, core in zip((*mdp, values0), plan.carried, _CORES, strict=True)
    ]
    specs = tuple(all(c) for c in plan.carried)
    local_shapes = [((B // n,) if s else ()) for s in specs]
    itemsize = jnp.dtype(jnp.result_type(mdp.transitions)).itemsize
    S, A = mdp.num_states, mdp.num_actions
    local_plan = make_plan(local_shapes, (B // n,), S * A * S * itemsize)
    static = _Static(fast, max_iters, ctx, local_plan, zero_start)
    mesh, run = _runner(tuple(devices), specs, static)
    args = [
        jax.device_put(x, NamedSharding(mesh, P("batch") if s else P()))
        for x, s in zip(leaves, specs, strict=True)
    ]
    out = run(*args, solver, shared)
    return Solution(*(jnp.reshape(x, plan.batch_shape + x.shape[1:]) for x in out))
