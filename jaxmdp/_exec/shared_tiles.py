"""Strategy "shared_tiles": value iteration over a batch sharing one SMALL `transitions`,
in cache-resident tiles of members (issue 15).

The sweep of the lecture world over reward x discount is the job this library exists for:
millions of members, each a whole problem of a few hundred bytes (44 rewards, 11 values).
Streaming every member's rewards and values from DRAM on every sweep (the `shared_vi`
batch-last kernel, NumPy's batched GEMM) leaves the machine mostly waiting. Here:

- the flattened batch is cut into tiles of `plan.tile` members whose rewards and values fit
  in L2 (`plan.SHARED_TILE_BYTES`), and each tile iterates to convergence while resident;
  a tile stops with its slowest member, so converged tiles stop costing sweeps;
- the layout inside a tile is batch-last (`values [S, T]`, `rewards [A, S, T]`), produced
  from the caller's `[B, S, A]` rewards by one in-cache transpose per tile, and the tile's
  results go back the same way; nothing batch-sized is ever transposed;
- the transitions' nonzero entries are compiled in as static row slices (`shared_rows`): a
  sweep is a few fused passes over the tile (the kernels: `shared_tiles_fused` for tiles
  sliced on the host, `shared_tiles_kernel` inside one program);
- concrete batches on CPU (`shared_tiles_host`): tiles are sliced on the host and each is
  its own small program, taken by host threads from a shared counter (XLA:CPU runs one
  program's loop on one core), results written into the batch's host buffers; traced
  batches and accelerators: one program over the batch (`_program`: `lax.map` over the
  tiles, whose per-tile cost grew with the batch on CPU, see `shared_tiles_host`).

Per member: the iterations, stopping rule, status, certificate and `error_bound` of its own
`ValueIteration` solve (`member.single`); values within rounding of it (another program: the
expectation sums only the nonzero entries, in another order). Members in a tile's overlap
(the last tile starts early so that every tile is full) are computed twice by the same
program; either copy is the same result.

Planned (`plan.make_plan`) for `ValueIteration` on a batch whose `transitions` is shared,
concrete and has at most `plan.SHARED_ROWS_MAX` nonzero entries. On an accelerator the plan
uses wide tiles and no host threads (`JAXMDP_PLAN_BACKEND=gpu` runs that plan here).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmdp import _operators
from jaxmdp import _quick as quick
from jaxmdp._exec import shared_rows, shared_tiles_host, shared_tiles_kernel
from jaxmdp._exec.plan import SHARED_ROWS_MAX
from jaxmdp._exec.shared_tiles_kernel import Static
from jaxmdp._implicit import implicit_q_values, implicit_values
from jaxmdp._mdp import MDP, solve_dtype
from jaxmdp._solution import Solution


def _run(
    probs,
    prob_rows,
    rewards,
    discount,
    values0,
    tol,
    start,
    order=None,
    *,
    st: Static,
    size: int,
    tile: int,
):
    """Members `start .. start + size - 1` of the flattened batch (`rewards [B, S, A]`,
    `discount [B]`, `values0 [B, S]` or None) in tiles of `tile`, one after the other;
    `Solution` fields `[size, ...]`, batch first. Tile `i` covers members from
    `min(i * tile, size - tile)`: the last one overlaps its neighbour rather than being
    padded (no copy of the inputs).

    `order [B]` (or None: the identity): position `p` of the batch is member `order[p]`, so
    a tile gathers its members (`_order`: by discount, so that a tile's members need
    similar numbers of sweeps); the results stay in position order."""
    n = -(-size // tile)

    def body(i):
        off = jnp.minimum(i * tile, size - tile)
        at = start + off
        if order is None:

            def take(x):
                return lax.dynamic_slice_in_dim(x, at, tile)
        else:
            idx = lax.dynamic_slice_in_dim(order, at, tile)

            def take(x):
                return jnp.take(x, idx, axis=0, mode="clip")

        v0 = None if values0 is None else take(values0)
        return shared_tiles_kernel.solve_batch_first(
            probs, prob_rows, take(rewards), take(discount), v0, tol, st
        )

    # Tiles' results stacked by `lax.map` ([n, tile, ...]), then joined: the last tile's
    # members from where the previous one stopped. (A `fori_loop` writing each tile into
    # `[size, ...]` buffers measured 4.5 ms per tile of 3,968 lecture worlds in buffer
    # traffic alone, more than the tile's whole solve.)
    stacked = lax.map(body, jnp.arange(n, dtype=jnp.int32))
    skip = (n - 1) * tile - (size - tile)  # members of the last tile given by the previous

    def join(x):
        if n == 1:
            return x[0]
        head = jnp.reshape(x[:-1], ((n - 1) * tile,) + x.shape[2:])
        return jnp.concatenate([head, x[-1, skip:]])

    return Solution(*(join(x) for x in stacked))


def _inputs(mdp, values0):
    """The flattened batch in the solve's dtype: `(probs, rewards [B, S, A], discount [B],
    values0 [B, S] or None, rows)`, plus the cast transitions (for the gradient hooks)."""
    batch = mdp.batch_shape
    S, A = mdp.num_states, mdp.num_actions
    B = 1
    for n in batch:
        B *= n
    dtype = solve_dtype(mdp, *([] if values0 is None else [values0]))
    R = jnp.asarray(mdp.rewards, dtype)
    if R.shape != batch + (S, A):
        R = jnp.broadcast_to(R, batch + (S, A))
    g = jnp.asarray(mdp.discount, dtype)
    if g.shape != batch:
        g = jnp.broadcast_to(g, batch)
    v0 = None
    if values0 is not None:
        v0 = jnp.reshape(jnp.broadcast_to(jnp.asarray(values0, dtype), batch + (S,)), (B, S))
    return jnp.reshape(R, (B, S, A)), jnp.reshape(g, (B,)), v0, dtype


def solve(mdp, values0, solver, *, max_iters: int, ctx, plan, run_many=None) -> Solution:
    """`Solution` with the batch shape of `mdp`, whose `transitions` is shared (no batch axis
    of size > 1) and concrete (`values0`: `[..., S]`, or None for zeros). `run_many(fn, n)`:
    calls `fn(k)` for k < n on host threads (`threads.run_many`, passed in by `dispatch`),
    used when the plan has `threads > 1` and nothing is traced."""
    transitions = jax.tree.map(lambda x: jnp.reshape(x, x.shape[-3:]), mdp.transitions)
    prep = shared_rows.prepare(transitions, SHARED_ROWS_MAX)
    if prep.rows is None:  # the plan only picks this strategy below the limit
        raise ValueError(
            f"shared_tiles: {prep.num_entries} nonzero transitions entries, above "
            f"{SHARED_ROWS_MAX}."
        )
    st = Static(
        prep.rows,
        solver.rule,
        int(max_iters),
        values0 is None,
        solver.tol is None,
        int(ctx.poll_every),
    )
    order = _order(mdp, plan.tile)
    B = int(np.prod(mdp.batch_shape, dtype=np.int64))
    host = plan.threads > 1 or plan.tile < B
    if host and run_many is not None and not _traced(mdp, values0, solver):
        if jax.default_backend() == "cpu" and shared_tiles_host.on_host(mdp, values0):
            dtype = solve_dtype(mdp, *([] if values0 is None else [values0]))
            # Host arrays, not `jnp.asarray`: each conversion dispatched a JAX op (~0.1 ms
            # of a W1 solve's ~7 ms, issue 15); the tile programs take NumPy as they are.
            return shared_tiles_host.solve(
                mdp,
                values0,
                np.asarray(prep.probs, dtype),
                _prob_rows(transitions, dtype, np),
                _tol(solver, dtype, np),
                st,
                dtype=dtype,
                tile=plan.tile,
                threads=plan.threads,
                run_many=run_many,
                order=None if order is None else order[0],
            )
    return _program(plan.quick_compile)(
        mdp, values0, solver, transitions, prep.probs, order, st=st, tile=plan.tile, ctx=ctx
    )


# Off: measured slower, before and after the host-sliced tiles (W1M, 10^6 members, same
# process, 3 runs each; one thread: 2.11 s sorted vs 2.00 s unsorted, identical results).
# On the lecture grid contiguous tiles needed 5,244 tile-sweeps over 253 tiles, sorted
# 4,187, which saved less than the gathers and scatters cost. The host driver's tiles are
# blocks of the grid instead (`shared_tiles_host.blocks`: 3,660 over 294 tiles of 3,456,
# copied as slices). Tests force it on.
SORT_BY_DISCOUNT = False


def _order(mdp, tile: int):
    """`(order, inverse)` int32 `[B]`: the members sorted by discount (stable), or None when
    that cannot help (traced or equal discounts, one tile). A tile iterates until its slowest
    member stops, and sweeps of a discount grid mix 0.5 with 0.99 in every tile otherwise
    (the lecture sweep: 7x the member-sweeps needed). Members are independent, so the order
    changes no member's iterations or status."""
    g = mdp.discount
    if not SORT_BY_DISCOUNT or isinstance(g, jax.core.Tracer) or np.size(g) <= tile:
        return None
    flat = np.broadcast_to(np.asarray(g), mdp.batch_shape).reshape(-1)
    if flat.size <= tile or not (flat != flat[0]).any():
        return None
    order = np.argsort(flat, kind="stable").astype(np.int32)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size, dtype=np.int32)
    return order, inverse


def _prob_rows(transitions, dtype, xp=jnp):
    """The transitions' rows `[S, A, K]` (dense: K = S) in `dtype`, for the rounding
    constants (`_stopping.rounding`); `xp=np` on the host tiles' path."""
    return xp.asarray(_operators.rows(transitions), dtype)


def _traced(*trees) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(trees))


def _tol(solver, dtype, xp=jnp):
    return xp.asarray(0.0 if solver.tol is None else solver.tol, dtype)


def _program_fn(mdp, values0, solver, transitions, probs, order, *, st: Static, tile: int, ctx):
    """The whole batch as one program, with the gradient hooks (as `shared_vi`)."""
    batch = mdp.batch_shape
    R, g, v0, dtype = _inputs(mdp, values0)
    B = g.shape[0]
    sg = lax.stop_gradient
    probs = jnp.asarray(probs, dtype)
    out = _run(
        probs,
        _prob_rows(transitions, dtype),
        sg(R),
        sg(g),
        None if v0 is None else sg(v0),
        _tol(solver, dtype),
        0,
        None if order is None else order[0],
        st=st,
        size=B,
        tile=min(tile, B),
    )
    if order is not None:  # back to member order
        out = Solution(*(jnp.take(x, order[1], axis=0) for x in out))
    # Gradients by the implicit function theorem, as in `member.finish` (forward: unchanged).
    flat = MDP(_operators.cast(transitions, dtype), R, g)
    in_axes = (MDP(None, 0, 0), 0, 0)
    hook = functools.partial(implicit_values, undiscounted=ctx.undiscounted)
    values = jax.vmap(hook, in_axes=in_axes)(flat, out.values, out.policy)
    q = jax.vmap(implicit_q_values, in_axes=in_axes)(flat, values, out.q_values)
    out = out._replace(values=values, q_values=q)
    return Solution(*(jnp.reshape(x, batch + x.shape[1:]) for x in out))


_program = quick.jits(_program_fn, static_argnames=("st", "tile", "ctx"))
