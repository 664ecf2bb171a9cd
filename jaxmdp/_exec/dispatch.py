"""The dispatcher: runs a `Plan` with the strategy it names. The only module that imports
the strategies (`jaxmdp._exec.plan` decides; the strategies import the member loop, the
layout helpers and the plan's constants, never each other)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp._exec import blocked, ladder, sharding, shared_tiles, shared_vi, threads, tiles, vmap
from jaxmdp._exec.layout import as_arrays
from jaxmdp._solution import Solution

_BATCHED: dict[str, Callable[..., Solution]] = {
    "vmap": vmap.solve,
    "tiles": tiles.solve,
    "ladder": ladder.solve,
}


def devices_for(plan, devices, solver) -> list:
    """The devices a several-device plan runs on: the first `plan.shards` of those given to
    `solve`, or of this process's devices the plan chose by default (`plan._devices`)."""
    if not devices:
        devices = jax.local_devices()
    return list(devices)[: plan.shards]


def run(plan, mdp, values0, solver, *, max_iters: int, ctx, devices=()) -> Solution:
    """Solve `mdp` (leaves JAX or NumPy arrays) from `values0` (`[..., S]`; None means
    zeros) by `plan`. `devices`: those given to `solve`, if
    any; several-device plans without them use this process's devices."""
    if plan.strategy == "blocked":  # NumPy leaves go to their blocks, never whole to a device
        devs = devices_for(plan, devices, solver)
        return blocked.solve(mdp, values0, solver, devices=devs, max_iters=max_iters, ctx=ctx)
    if plan.strategy == "shared_tiles":  # NumPy leaves stay on the host: its tiles read them
        return shared_tiles.solve(
            mdp, values0, solver, max_iters=max_iters, ctx=ctx, plan=plan, run_many=threads.run_many
        )
    mdp = as_arrays(mdp)
    if plan.strategy == "sharded":
        shared = None
        if plan.inner.strategy == "shared_vi":
            shared = shared_vi.prepare_shared(shared_vi.unbatched(mdp.transitions))
        return sharding.solve(
            mdp,
            values0,
            solver,
            shared,
            devices=devices_for(plan, devices, solver),
            plan=plan,
            max_iters=max_iters,
            ctx=ctx,
            local=run_local,
        )
    if plan.strategy == "shared_vi":
        return shared_vi.solve(mdp, values0, solver, max_iters=max_iters, ctx=ctx)
    if values0 is None:
        values0 = jnp.zeros((mdp.num_states,), jnp.result_type(mdp.rewards, mdp.discount))
    tree = (mdp, values0)
    if plan.strategy == "threads":
        count = int(np.prod(plan.batch_shape)) // plan.tile // plan.threads
        kw = dict(max_iters=max_iters, ctx=ctx, plan=plan, count=count)
        return threads.run_parts(
            lambda k: tiles.part(tree, k * count, solver, **kw), plan.threads, plan.batch_shape
        )
    return _BATCHED[plan.strategy](tree, solver, max_iters=max_iters, ctx=ctx, plan=plan)


def run_local(plan, tree, solver, shared, *, max_iters: int, ctx, zero_start: bool) -> Solution:
    """One device's block inside `sharding` (traced: no host threads, no compile options)."""
    mdp, values0 = tree
    if plan.strategy == "shared_vi":
        v0 = None if zero_start else values0
        return shared_vi.solve_prepared(mdp, v0, shared, solver, max_iters=max_iters, ctx=ctx)
    return _BATCHED[plan.strategy](tree, solver, max_iters=max_iters, ctx=ctx, plan=plan)
