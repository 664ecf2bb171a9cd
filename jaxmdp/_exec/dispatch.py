"""The dispatcher: runs a `Plan` with the strategy it names. The only module that imports
the strategies (`jaxmdp._exec.plan` decides; the strategies import the member loop, the
layout helpers and the plan's constants, never each other)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmdp._exec import ladder, sharding, shared_tiles, shared_vi, threads, tiles, vmap
from jaxmdp._solution import Solution

_BATCHED = {"vmap": vmap.solve, "tiles": tiles.solve, "ladder": ladder.solve}


def run(plan, mdp, values0, solver, *, max_iters: int, ctx, devices=()) -> Solution:
    """Solve `mdp` (leaves JAX arrays) from `values0` (`[..., S]`; None means zeros) by
    `plan`. `devices`: those offered to `solve` (the "sharded" plan uses the first
    `plan.shards`)."""
    if plan.strategy == "sharded":
        shared = None
        if plan.inner.strategy == "shared_vi":
            shared = shared_vi.prepare_shared(shared_vi.unbatched(mdp.transitions))
        return sharding.solve(
            mdp,
            values0,
            solver,
            shared,
            devices=list(devices)[: plan.shards],
            plan=plan,
            max_iters=max_iters,
            ctx=ctx,
            local=run_local,
        )
    if plan.strategy == "shared_vi":
        return shared_vi.solve(mdp, values0, solver, max_iters=max_iters, ctx=ctx)
    if plan.strategy == "shared_tiles":
        return shared_tiles.solve(
            mdp, values0, solver, max_iters=max_iters, ctx=ctx, plan=plan, run_many=threads.run_many
        )
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
