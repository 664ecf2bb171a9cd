"""Strategy "sharded": a solve's batch split across devices (JAX's SPMD: a 1-D `Mesh` and
`shard_map`).

Planned when `jaxmdp.solve(..., devices=[...])` is given several devices, and by default on
a GPU/TPU backend with several local devices (`plan._devices`; CPU host devices made with
`XLA_FLAGS=--xla_force_host_platform_device_count=N` stay opt-in). Leaves that carry the
batch are sharded along it; shared leaves (a common `transitions`) are replicated. Each
device runs the plan's `inner` strategy on its block (the function `local`, given by the
dispatcher, so this module imports no other strategy), so every member iterates as in its
own solve. Devices of several processes (`jax.distributed`): inputs are placed and results
gathered by `placement`; for sweeps over a cluster, `jaxmdp.sweep` is the tool.

The compiled runner is cached on the layout (devices, tree structure, which leaf is split),
not on the MDP object, so a second call with new numbers reuses it.
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

from jaxmdp._exec import layout, placement
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
def _runner(devices: tuple, treedef, flags: tuple, static: _Static):
    # Keyed on the tree's structure and split flags: an MDP object hashes by identity, so a
    # key holding one compiled the program again on every call.
    specs = jax.tree.unflatten(treedef, [P() if a is None else P("batch") for a in flags])
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
    flags = tuple(jax.tree.leaves(axes, is_leaf=lambda a: a is None))
    static = _Static(plan.inner, max_iters, ctx, zero_start, local)
    mesh, run = _runner(tuple(devices), treedef, flags, static)
    placed = jax.tree.unflatten(
        treedef,
        [
            placement.place(x, NamedSharding(mesh, P() if a is None else P("batch")))
            for x, a in zip(jax.tree.leaves(tree), flags, strict=True)
        ],
    )
    out = run(placed, solver, shared)
    return Solution(
        *(jnp.reshape(placement.to_local(x), plan.batch_shape + x.shape[1:]) for x in out)
    )
