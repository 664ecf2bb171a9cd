"""Strategy "sharded": a solve's batch split across devices (JAX's SPMD: a 1-D `Mesh` and
`shard_map`).

Planned when `jaxmdp.solve(..., devices=[...])` is given several devices (GPUs, or CPU
devices made with `XLA_FLAGS=--xla_force_host_platform_device_count=N`; with jax 0.10 the
latter was seen to hang in policy iteration's second call, so nothing here is automatic).
Leaves that carry the batch are sharded along it; shared leaves (a common `transitions`)
are replicated. Each device runs the plan's `inner` strategy on its block (the function
`local`, given by the dispatcher, so this module imports no other strategy), so every
member iterates as in its own solve. Several hosts: use `jaxmdp.sweep`, which builds global
arrays after `jax.distributed.initialize()`; `solve` shards over local devices.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmdp._exec import layout
from jaxmdp._solution import Solution


class _Static(NamedTuple):
    inner: Any  # each device's Plan
    max_iters: int
    ctx: Any
    zero_start: bool
    # (plan, tree, solver, shared, *, max_iters, ctx, zero_start) -> Solution
    local: Callable[..., Solution]


def _body(tree, solver, shared, *, static: _Static) -> Solution:
    return static.local(
        static.inner,
        tree,
        solver,
        shared,
        max_iters=static.max_iters,
        ctx=static.ctx,
        zero_start=static.zero_start,
    )


@functools.lru_cache(maxsize=64)
def _runner(devices: tuple, specs, static: _Static):
    mesh = Mesh(np.array(devices), ("batch",))
    mapped = jax.shard_map(
        functools.partial(_body, static=static),
        mesh=mesh,
        in_specs=(specs, P(), P()),
        out_specs=P("batch"),
        check_vma=False,
    )
    return mesh, jax.jit(mapped)


def solve(mdp, values0, solver, shared, *, devices, plan, max_iters, ctx, local) -> Solution:
    """The solve of a batch split over `devices` (their number divides the batch).

    `values0`: `[..., S]`, or None for zeros; `shared`: the prepared shared transitions of
    the "shared_vi" inner plan, else None.
    """
    zero_start = values0 is None
    if zero_start:
        values0 = jnp.zeros((mdp.num_states,), jnp.result_type(mdp.rewards, mdp.discount))
    tree = layout.squeeze((mdp, values0), plan.batch_shape, plan.carried)
    tree, axes = layout.flatten(tree, plan.batch_shape, plan.carried)
    treedef = jax.tree.structure(tree)
    flags = jax.tree.leaves(axes, is_leaf=lambda a: a is None)
    specs = jax.tree.unflatten(treedef, [P() if a is None else P("batch") for a in flags])
    static = _Static(plan.inner, max_iters, ctx, zero_start, local)
    mesh, run = _runner(tuple(devices), specs, static)
    placed = jax.tree.unflatten(
        treedef,
        [
            jax.device_put(x, NamedSharding(mesh, P() if a is None else P("batch")))
            for x, a in zip(jax.tree.leaves(tree), flags, strict=True)
        ],
    )
    out = run(placed, solver, shared)
    return Solution(*(jnp.reshape(x, plan.batch_shape + x.shape[1:]) for x in out))
