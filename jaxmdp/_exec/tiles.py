"""Strategy "tiles": CPU, per-member transitions, in cache-sized tiles (temporal blocking).

The flattened batch is cut into tiles of `plan.tile` members whose transitions fit in cache;
each tile is vmapped and iterated to convergence while resident, one tile after the other
(`lax.map`), instead of streaming the whole batch's transitions from DRAM on every sweep
(BASELINES.md: W2 is bound by DRAM bandwidth without it). A tile stops with its slowest
member, so tiles also stop paying for converged members. `part` runs a run of tiles, for
the host threads (`threads.py`, composed by `dispatch.py`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmdp import _quick as quick
from jaxmdp._exec import layout, member
from jaxmdp._solution import Solution

# XLA:CPU compile option for the programs that loop over cache-sized tiles. Their time is
# thousands of tiny kernels, and the default schedule (ordered for concurrency between
# kernels) costs more than it wins there. Measured on this project's 2-core machine, one
# process, the same tiles and results: W2 (2,048 MDPs, S=64, A=8) 52-58 -> 39-41 ms, its
# modified PI 72 -> 50 ms, Anderson on 64 deterministic MDPs 134 -> 84 ms; VI at S=256
# unchanged. Not used for the shared-transitions programs (one MDP of S=2048 measured
# 12.5 -> 13-15 ms with it). Per program, so a user's own XLA settings are untouched; JAX
# accepts compile options on top-level programs only, so a solve traced inside a user's
# jit / vmap / grad compiles without them (`plan.tiled_options` is False there).
_TILED_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}


def _options() -> dict | None:
    """`_TILED_OPTIONS` if this jaxlib accepts them, else None (`quick.accepted`)."""
    return quick.accepted(**_TILED_OPTIONS)


def _run_tiles(flat, axes, solver, fn, tile: int, start, count: int) -> Solution:
    """Tiles `start .. start + count - 1` of `tile` members each, one after the other
    (`lax.map`), each tile vmapped and run to convergence (`fn`: `member.batch_fn` given
    all but its mapping). Returns the members flattened:
    `[count * tile, ...]`. Tiles are sliced where they lie, so a part of the batch costs
    no copy of the rest."""
    tile_fn = fn(lambda f: jax.vmap(f, in_axes=(axes, 0, None)))
    leaves, treedef = jax.tree.flatten(flat)
    mapped = jax.tree.leaves(axes, is_leaf=lambda a: a is None)

    def one(i):
        args = [
            lax.dynamic_slice_in_dim(x, i * tile, tile) if a is not None else x
            for x, a in zip(leaves, mapped, strict=True)
        ]
        return tile_fn(jax.tree.unflatten(treedef, args), solver)

    out = lax.map(one, start + jnp.arange(count))
    return Solution(*(jnp.reshape(x, (count * tile,) + x.shape[2:]) for x in out))


def _flat(tree, plan):
    tree = layout.squeeze(tree, plan.batch_shape, plan.carried)
    return layout.flatten(tree, plan.batch_shape, plan.carried)


def _batch(tree, solver, *, max_iters: int, ctx, plan) -> Solution:
    """Every tile of the batch, in one program; `Solution` with `plan.batch_shape`."""
    flat, axes = _flat(tree, plan)
    count = int(np.prod(plan.batch_shape)) // plan.tile
    fn = functools.partial(member.batch_fn, max_iters, ctx)
    out = _run_tiles(flat, axes, solver, fn, plan.tile, 0, count)
    return Solution(*(jnp.reshape(x, plan.batch_shape + x.shape[1:]) for x in out))


def _part(tree, start, solver, *, max_iters: int, ctx, plan, count: int) -> Solution:
    """One host thread's share: `count` tiles from tile `start`, flattened `[count * tile]`."""
    flat, axes = _flat(tree, plan)
    fn = functools.partial(member.batch_fn, max_iters, ctx)
    return _run_tiles(flat, axes, solver, fn, plan.tile, start, count)


@functools.cache
def _jitted(name: str, options: bool):
    fn, static = {
        "batch": (_batch, ("max_iters", "ctx", "plan")),
        "part": (_part, ("max_iters", "ctx", "plan", "count")),
    }[name]
    return jax.jit(fn, static_argnames=static, compiler_options=_options() if options else None)  # type: ignore[call-overload]


def solve(tree, solver, *, max_iters: int, ctx, plan) -> Solution:
    """The whole tiled batch as one program (with the tiled compile options if planned)."""
    return _jitted("batch", plan.tiled_options)(
        tree, solver, max_iters=max_iters, ctx=ctx, plan=plan
    )


def part(tree, start: int, solver, *, max_iters: int, ctx, plan, count: int) -> Solution:
    """Tiles `start .. start + count - 1`, flattened (one host thread's program)."""
    return _jitted("part", plan.tiled_options)(
        tree, start, solver, max_iters=max_iters, ctx=ctx, plan=plan, count=count
    )


# Strategy "shared_vi" with a batch-last kernel (sparse shared P): members per tile
# (`shared_member_tiles`). A member costs its rewards, and about five value-sized arrays in
# the sweep loop (V_k, V_(k-1), the next backup and the loop's copies); a tile of this many
# bytes stays in cache through its sweeps. Multiple of 8 (whole vector registers).
SHARED_GATHER_TILE_BYTES = 1 << 24
SHARED_GATHER_ALIGN = 8


def shared_gather_tile(num_states: int, num_actions: int, itemsize: int) -> int:
    """Members per tile of the batch-last shared kernel (at least `SHARED_GATHER_ALIGN`)."""
    per = (num_actions + 5) * num_states * itemsize
    align = SHARED_GATHER_ALIGN
    return max(align, SHARED_GATHER_TILE_BYTES // per // align * align)
