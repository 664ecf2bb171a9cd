"""`solve`: the one driver. It owns the loop, the iteration count and the status codes.

Batching: the MDP may carry any leading batch shape, per leaf, broadcasting. The single-MDP
program is wrapped in one `vmap` per batch axis, each leaf mapped only on the axes it really
has (size-1 axes are squeezed, absent axes get `in_axes=None`). So a `transitions` without a
batch axis is never copied: under vmap the backup `P @ V` becomes one `[S*A, S] x [S, B]`
matrix-matrix product. Per-MDP convergence: a finished member freezes while the loop goes on
for the others, and it runs exactly the iterations and stopping test of its own solve; a
large batch with heavy sweeps (or `compact=True`) runs through `jaxmdp._ladder`, which
gathers the members still running into smaller levels so that finished ones stop costing
work. Only the summation order of `P @ V` can differ (a matrix-matrix product for a shared
`transitions`, matrix-vector for one MDP), so values agree with a one-at-a-time solve to the
last bits, and in float32 a member whose statistic sits at the precision floor can stop one
sweep apart. With `transitions` per member (or copied), results are bitwise those of
one-at-a-time solves.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmdp import _footprint, _interrupt, _ladder, _threads  # [numerics] _footprint, _interrupt
from jaxmdp._mdp import MDP, check_shapes, leaf_batch_shapes
from jaxmdp._sharding import num_shards, solve_sharded
from jaxmdp._solution import Solution, Status
from jaxmdp._solvers.base import (  # [numerics] argument checks
    RUNNING,
    SolveContext,
    check_array,
    check_flag,
    check_max_iters,
    check_solver,
)
from jaxmdp._solvers.value_iteration import ValueIteration

DEFAULT_MAX_ITERS = 10_000


class _Plan(NamedTuple):
    """Static batching plan: which full batch axes each leaf carries (after squeezing)."""

    batch_shape: tuple[int, ...]
    carried: tuple[tuple[bool, ...], ...]  # per leaf (P, R, discount, values0), per axis
    tile: int = 0  # > 0: run the flattened batch in tiles of this many members
    ladder: bool = False  # run the flattened batch through `jaxmdp._ladder`


# Temporal blocking on CPU: a tile of MDPs whose transitions fit in this many bytes of cache
# iterates to convergence while resident, instead of streaming the whole batch's transitions
# from DRAM on every sweep (BASELINES.md: W2 is bound by DRAM bandwidth without it).
_TILE_BYTES = 1 << 20
# Smaller tiles for solvers whose members' iteration counts spread widely: a tile runs until
# its slowest member stops. Anderson on 64 deterministic MDPs (S=64, A=4, float64: 128 KiB
# each) at discount 0.999 / 0.99: 845 / 143 ms with 8 members a tile, 247 / 51 ms with 2,
# 172 / 38 ms with 1; garnet 23 / 20 / 28 ms, dense 4.2 / 4.7 / 8.1 ms (per-tile overheads).
_TILE_BYTES_FOR = {"AndersonValueIteration": 1 << 18}


def _plan(leaf_shapes, batch_shape, transitions_bytes: int = 0, tile_bytes=_TILE_BYTES) -> _Plan:
    n = len(batch_shape)
    carried = []
    for lb in leaf_shapes:
        off = n - len(lb)
        carried.append(
            tuple(
                i >= off and lb[i - off] == batch_shape[i] and batch_shape[i] != 1 for i in range(n)
            )
        )
    tile = _tile(carried, batch_shape, transitions_bytes, tile_bytes)
    return _Plan(tuple(batch_shape), tuple(carried), tile)


def _flattenable(carried) -> bool:
    """Every leaf has all the batch axes or none: the batch flattens to `[B, ...]` leaves."""
    return all(all(c) or not any(c) for c in carried)


def _tile(carried, batch_shape, transitions_bytes: int, tile_bytes: int = _TILE_BYTES) -> int:
    """Tile size for independent transitions on CPU (0: no tiling)."""
    B = int(np.prod(batch_shape)) if batch_shape else 1
    if B < 2 or not all(carried[0]) or jax.default_backend() != "cpu":
        return 0
    if not _flattenable(carried):
        return 0
    per = max(1, transitions_bytes)
    limit = max(1, tile_bytes // per)
    if limit >= B:
        return 0
    tile = max(t for t in range(1, limit + 1) if B % t == 0)
    return tile if tile * 4 >= limit else 0


def _ladder_wanted(plan: _Plan, compact: bool | None, sweep_work: int) -> bool:
    """Whether the batch runs through `jaxmdp._ladder` (`compact`: the user's say; None: only
    where a sweep is heavy enough that a few saved sweeps repay each level's compile).
    `sweep_work`: S^2 A, one member's multiply-adds per sweep."""
    B = int(np.prod(plan.batch_shape)) if plan.batch_shape else 1
    if not compact and (compact is not None or B * sweep_work < _ladder.AUTO_WORK):
        return False
    if plan.tile or B // _ladder.LADDER < _ladder.LADDER_MIN:
        return False
    return _flattenable(plan.carried)


def _squeeze_uncarried(x, lead: int, batch_shape, carried):
    """Drop this leaf's batch axes that are not carried (size 1), keep the carried ones."""
    n = len(batch_shape)
    off = n - lead
    keep = [i - off for i in range(n) if i >= off and carried[i]]
    shape = np.shape(x)
    new_shape = tuple(shape[j] for j in keep) + tuple(shape[lead:])
    return jnp.reshape(x, new_shape)


def _prepare(mdp: MDP, values0):
    """One member's inputs in the solve's dtype: `(mdp_diff, mdp, values0, start_code)`.

    Gradients (w.r.t. rewards, transitions, discount) come from the implicit function theorem
    at the returned fixed point (`jaxmdp._implicit`), never from the loop: the loop runs on
    stop-gradient copies of the MDP (`mdp`) and `values0`, so it carries no tangents;
    `mdp_diff` keeps them for `_finish`.
    """
    dtype = jnp.result_type(mdp.transitions, mdp.rewards, mdp.discount, values0)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    mdp_diff = MDP(*(jnp.asarray(x, dtype) for x in mdp))
    mdp = MDP(*(lax.stop_gradient(x) for x in mdp_diff))
    values0 = lax.stop_gradient(jnp.asarray(values0, dtype))
    g = mdp.discount
    invalid = ~((g >= 0) & (g <= 1))  # NaN included
    code = jnp.where(invalid, jnp.int32(Status.INVALID_INPUT), jnp.int32(RUNNING))
    return mdp_diff, mdp, values0, code


def _finish(solver, mdp_diff: MDP, mdp: MDP, state, it, code, ctx: SolveContext) -> Solution:
    """One member's `Solution` from its final loop state."""
    from jaxmdp._implicit import implicit_solution

    code = jnp.where(code == RUNNING, jnp.int32(Status.MAX_ITERATIONS), code)
    res = solver.result(mdp, state, ctx)
    # Forward: unchanged. Derivative: of V^pi for the returned policy (see jaxmdp/_implicit.py).
    values, q_values = implicit_solution(solver, mdp_diff, res, undiscounted=ctx.undiscounted)
    dtype = values.dtype
    return Solution(
        values=values,
        q_values=q_values,
        policy=res.policy,
        status=code,
        num_iters=it,
        residual=jnp.asarray(res.residual, dtype),
        error_bound=jnp.asarray(res.error_bound, dtype),
    )


def _single(mdp: MDP, values0, solver, max_iters: int, ctx: SolveContext) -> Solution:
    """Solve ONE MDP: the while loop (batches vmap it, or run `jaxmdp._ladder`)."""
    mdp_diff, mdp, values0, code = _prepare(mdp, values0)
    state = solver.init(mdp, values0, ctx)

    def cond(carry):
        _, it, code = carry
        return (code == RUNNING) & (it < max_iters)

    def body(carry):
        state, it, _ = carry
        state = solver.step(mdp, state, ctx)
        return state, it + 1, solver.status(mdp, state, ctx)

    # [numerics] in slices that check for Ctrl-C (ctx.poll_every > 0: launched by `solve`)
    loop = _interrupt.while_loop
    state, it, code = loop(cond, body, (state, jnp.int32(0), code), ctx.poll_every)
    return _finish(solver, mdp_diff, mdp, state, it, code, ctx)


def _solve_batch(leaves, solver, *, max_iters: int, ctx: SolveContext, plan: _Plan) -> Solution:
    leaves = _squeeze_leaves(leaves, plan)
    fn = _member_fn(max_iters, ctx)
    if plan.tile or plan.ladder:
        B = int(np.prod(plan.batch_shape))
        if plan.tile:
            out = _solve_tiled(leaves, solver, plan, fn, 0, B // plan.tile)
        else:
            flat, carried = _flatten(leaves, plan)
            out = _ladder.solve(flat, solver, carried=carried, max_iters=max_iters, ctx=ctx)
        return Solution(*(jnp.reshape(x, plan.batch_shape + x.shape[1:]) for x in out))
    n = len(plan.batch_shape)
    for axis in reversed(range(n)):
        in_axes = [0 if plan.carried[k][axis] else None for k in range(4)] + [None]
        if any(a is not None for a in in_axes):
            fn = jax.vmap(fn, in_axes=tuple(in_axes))
    out = fn(*leaves, solver)
    # Axes no leaf carries (size 1) come back as size-1 axes of the batch shape.
    core_ndims = Solution(
        values=1, q_values=2, policy=1, status=0, num_iters=0, residual=0, error_bound=0
    )
    return Solution(
        *(
            jnp.reshape(x, plan.batch_shape + x.shape[x.ndim - k :] if k else plan.batch_shape)
            for x, k in zip(out, core_ndims, strict=True)
        )
    )


_solve_jit = jax.jit(_solve_batch, static_argnames=("max_iters", "ctx", "plan"))

# XLA:CPU compile option for the programs that loop over cache-sized tiles. Their time is
# thousands of tiny kernels, and the default schedule (ordered for concurrency between
# kernels) costs more than it wins there. Measured on this project's 2-core machine, one
# process, the same tiles and results: W2 (2,048 MDPs, S=64, A=8) 52-58 -> 39-41 ms, its
# modified PI 72 -> 50 ms, Anderson on 64 deterministic MDPs 134 -> 84 ms; VI at S=256
# unchanged. Not used for the shared-transitions programs (one MDP of S=2048 measured
# 12.5 -> 13-15 ms with it). Per program, so a user's own XLA settings are untouched; JAX
# accepts compile options on top-level programs only, so a solve traced inside a user's
# jit / vmap / grad compiles without them.
_TILED_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}


@functools.cache
def _tiled_options() -> dict | None:
    """`_TILED_OPTIONS` if this jaxlib accepts them (a compile option unknown to a future
    XLA must cost speed, never a failed solve), else None."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=_TILED_OPTIONS).lower(1.0).compile()
    except Exception:  # noqa: BLE001 - any refusal means: compile without them
        return None
    return _TILED_OPTIONS


@functools.cache
def _tiled_jit(name: str):
    """The jitted tiled program `name` ("batch" or "part"), with `_tiled_options()`."""
    fn, static = {
        "batch": (_solve_batch, ("max_iters", "ctx", "plan")),
        "part": (_solve_part_impl, ("max_iters", "ctx", "plan", "count")),
    }[name]
    return jax.jit(fn, static_argnames=static, compiler_options=_tiled_options())


def _member_fn(max_iters: int, ctx: SolveContext):
    """`(P, R, g, values0, solver) -> Solution` of one member: what the batching maps."""

    def fn(p, r, g, v0, solver):
        return _single(MDP(p, r, g), v0, solver, max_iters, ctx)

    return fn


_CORE_NDIMS = (3, 2, 0, 1)  # per leaf (P, R, discount, values0): the axes after the batch


def _squeeze_leaves(leaves, plan: _Plan):
    return tuple(
        _squeeze_uncarried(x, np.ndim(x) - core, plan.batch_shape, plan.carried[k])
        for k, (x, core) in enumerate(zip(leaves, _CORE_NDIMS, strict=True))
    )


def _flatten(leaves, plan: _Plan):
    """Squeezed leaves of a `_flattenable` plan as `[B, ...]` (carried) or shared, and which."""
    B = int(np.prod(plan.batch_shape))
    carried = tuple(all(c) for c in plan.carried)
    flat = tuple(
        jnp.reshape(x, (B,) + x.shape[x.ndim - k :] if k else (B,)) if c else x
        for x, c, k in zip(leaves, carried, _CORE_NDIMS, strict=True)
    )
    return flat, carried


def _solve_tiled(leaves, solver, plan, fn, start, count: int) -> Solution:
    """Tiles `start .. start + count - 1` of `plan.tile` members each, one after the other
    (`lax.map`), each tile vmapped and run to convergence. Returns the members flattened:
    `[count * tile, ...]`. Tiles are sliced where they lie, so a part of the batch costs
    no copy of the rest."""
    T = plan.tile
    flat, carried = _flatten(leaves, plan)
    tile_fn = jax.vmap(fn, in_axes=tuple(0 if c else None for c in carried) + (None,))

    def one(i):
        args = [
            lax.dynamic_slice_in_dim(x, i * T, T) if c else x
            for x, c in zip(flat, carried, strict=True)
        ]
        return tile_fn(*args, solver)

    out = lax.map(one, start + jnp.arange(count))
    return Solution(*(jnp.reshape(x, (count * T,) + x.shape[2:]) for x in out))


def _solve_part_impl(leaves, start, solver, *, max_iters, ctx, plan, count) -> Solution:
    """One thread's share of `_solve_threaded`: `count` tiles from tile `start`."""
    fn = _member_fn(max_iters, ctx)
    return _solve_tiled(_squeeze_leaves(leaves, plan), solver, plan, fn, start, count)


def _threads_for(plan: _Plan, traced: bool, solver) -> int:
    """Parts of a tiled batch to run on separate host threads (1: one program); see
    `jaxmdp._threads`. Traced inputs (a user's `jit`, `grad`, `vmap`) keep one program."""
    if not plan.tile or traced:
        return 1
    if not _threads.threadable(solver):
        return 1
    return _threads.split(int(np.prod(plan.batch_shape)) // plan.tile)


def _solve_threaded(leaves, solver, n: int, *, max_iters, ctx, plan) -> Solution:
    count = int(np.prod(plan.batch_shape)) // plan.tile // n
    kw = dict(max_iters=max_iters, ctx=ctx, plan=plan, count=count)
    return _threads.run_parts(
        lambda k: _tiled_jit("part")(leaves, k * count, solver, **kw), n, plan.batch_shape
    )


def _undiscounted(discount) -> bool:
    """Static: may some member have discount 1? Decided on the host when the value is known."""
    if isinstance(discount, jax.core.Tracer):
        return True
    return bool(np.any(np.asarray(discount) >= 1))


def solve(
    mdp: MDP,
    solver=None,
    *,
    max_iters: int = DEFAULT_MAX_ITERS,
    values0=None,
    devices=None,
    compact: bool | None = None,
) -> Solution:
    """Solve an MDP, or a whole batch of them in one compiled program.

    Args:
      mdp: `MDP` with `transitions [..., S, A, S]`, `rewards [..., S, A]`, `discount [...]`;
        the leading axes broadcast against each other and form the batch shape `[...]`.
        A leaf without batch axes (typically `transitions`) is shared, never copied.
      solver: `ValueIteration()` (default), `PolicyIteration()`,
        `ModifiedPolicyIteration(...)` or any object with the solver protocol
        (`jaxmdp._solvers.base`). Each solver's docstring states its stopping rule and what
        `tol` guarantees.
      max_iters: static cap on iterations per MDP (VI sweeps, PI evaluations, MPI steps).
        Members that reach it get `Status.MAX_ITERATIONS`; the rest are unaffected.
      values0: optional start `[..., S]` (broadcast against the batch); zeros by default.
      devices: optional list of devices to split the batch over (default: JAX's default
        device only). With several, the flattened batch is sharded across them (`shard_map`
        on a 1-D mesh; shared leaves replicated), using the most devices that divide the batch
        size evenly; inputs are moved there on every call, so pre-shard big inputs yourself.
        Caution, XLA:CPU host devices (`XLA_FLAGS=--xla_force_host_platform_device_count=N`):
        with jax 0.10 we saw policy iteration hang on its second call over 2 host devices, and
        no speed-up for value iteration; it is opt-in for that reason (`DECISIONS.md`).
        Without `devices`, a concrete batch with transitions per member on CPU still uses
        every core: equal runs of its cache-sized tiles run on one host thread per core
        (VI-family solvers; bitwise the single-program result; `JAXMDP_CPU_THREADS=N` sets
        the thread count, 1 turns it off), compiled with XLA:CPU's memory-optimised
        schedule (`DECISIONS.md` 11). Inside a user's `jit` / `grad` the batch is one
        program with JAX's default compile options (W2 measured 70 ms there, 38 ms eager).
      compact: gather the members still running into smaller batches as others finish
        (levels of 1/8 the size, down to 32 members), so that converged members stop
        costing work; per member nothing changes. Each level compiles the solver's step
        again (a first call 2-3x longer). `None` (default): only for batches of 256 or more
        whose sweep is heavy (`B S^2 A >= 2^27`; W4's 4,096 MDPs of S=256 under modified PI:
        13.7 s -> 1.2 s). `False`: never. `True`: whenever the batch allows it (its leaves
        each per member or shared). Value iteration with shared transitions always compacts
        (in its own kernel), and CPU tiles of per-member transitions stop on their own.

    Returns:
      `Solution` whose fields all carry the batch shape. Nothing raises for a bad member
      inside the computation: read `solution.status` or call `jaxmdp.check(solution)`.

    Gradients: `jax.grad` / `jacrev` / `jvp` of `values` and `q_values` with respect to
      `rewards`, `transitions` and `discount` work, batched and under `jit`, by the implicit
      function theorem at `V = r_pi + g P_pi V` for the returned policy, never through the
      loop (`jaxmdp._implicit`). Away from action ties this is the gradient of V*; at a tie it
      is a one-sided derivative (that of the returned policy's value). At discount 1 the
      absorbing zero-reward states have derivative 0. `values0` and solver hyperparameters
      get no gradient.

    Notes:
      Jitted: a second call with new numbers of the same shapes and dtypes reuses the
      compiled program. Input validation (`validate_mdp`) is the constructors' job; `solve`
      checks shapes only, and flags invalid discounts per member (`Status.INVALID_INPUT`).

    Inside your own `jax.jit`: `max_iters` and `compact` decide how the program is built, so
      they must be static (a traced `max_iters` raises a `TypeError` saying so). The solver
      may be an ordinary argument (a pytree: float hyperparameters such as `tol` become
      traced leaves, sweepable without recompiling; structural ones such as `rule` stay
      static) or a static one (solvers are hashable). Runnable example::

          import jax
          import jaxmdp
          from jaxmdp import models

          mdp = models.gridworld(slip=0.2, discount=0.9)
          solve_jit = jax.jit(jaxmdp.solve, static_argnames=("max_iters", "solver"))
          sol = solve_jit(mdp, jaxmdp.PolicyIteration(), max_iters=50)
          solve_jit2 = jax.jit(jaxmdp.solve, static_argnames=("max_iters",))
          sol = solve_jit2(mdp, jaxmdp.ValueIteration(tol=1e-4), max_iters=500)
          sol = jax.jit(lambda m: jaxmdp.solve(m, max_iters=50))(mdp)  # or close over it
    """
    if solver is None:
        solver = ValueIteration()
    check_solver(solver)  # [numerics] a string, a class, ...: TypeError naming `solver`
    if not isinstance(mdp, MDP):
        raise TypeError(f"solve expects a jaxmdp.MDP; got {type(mdp).__name__}.")
    max_iters = check_max_iters(max_iters)  # [numerics] traced: says how to make it static
    check_flag("compact", compact)  # [numerics]
    check_shapes(mdp)
    mdp = MDP(*(x if isinstance(x, jax.Array) else jnp.asarray(x) for x in mdp))
    S = mdp.num_states
    zero_start = values0 is None
    if zero_start:
        values0 = np.zeros((S,), jnp.result_type(mdp.rewards, mdp.discount))
    elif not isinstance(values0, jax.Array):
        values0 = jnp.asarray(check_array("values0", values0))  # [numerics] names it
    if values0.ndim < 1 or values0.shape[-1] != S:
        raise ValueError(f"values0 must have shape [..., S] with S={S}; got {values0.shape}.")
    shapes = list(leaf_batch_shapes(mdp)) + [tuple(values0.shape[:-1])]
    batch = mdp.batch_shape
    try:
        if np.broadcast_shapes(batch, shapes[-1]) != batch:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"values0 has batch shape {shapes[-1]}, which does not broadcast to the MDP's "
            f"batch shape {batch}."
        ) from None
    itemsize = jnp.dtype(jnp.result_type(mdp.transitions)).itemsize
    tile_bytes = _TILE_BYTES_FOR.get(type(solver).__name__, _TILE_BYTES)
    plan = _plan(shapes, batch, S * mdp.num_actions * S * itemsize, tile_bytes)
    plan = plan._replace(ladder=_ladder_wanted(plan, compact, S * S * mdp.num_actions))
    members = plan.tile or int(np.prod(batch))  # [numerics] Ctrl-C slices, 0 if traced
    poll = _interrupt.slice_for(solver, mdp, values0, members, int(max_iters))
    ctx = SolveContext(
        undiscounted=_undiscounted(mdp.discount),
        zero_start=zero_start,
        shared_transitions=bool(batch) and not any(plan.carried[0]),
        single=not batch,
        poll_every=poll,  # [numerics]
    )
    # [numerics] the estimated bytes, checked before compiling: MemoryError (size, budget)
    _footprint.check(
        mdp,
        solver,
        members=members * max(1, _threads.cpu_threads() if plan.tile else 1),
        batch=int(np.prod(batch)),
        undiscounted=ctx.undiscounted,
    )
    max_iters = int(max_iters)
    fast = type(solver) is ValueIteration and bool(batch) and not any(plan.carried[0])
    shared = None
    if fast:
        from jaxmdp._shared_vi import prepare_shared

        # Not carried means no batch axis of size > 1: drop size-1 ones ([1, S, A, S]).
        mdp = mdp._replace(transitions=jnp.reshape(mdp.transitions, mdp.transitions.shape[-3:]))
        shared = prepare_shared(mdp.transitions)
    devices = [] if devices is None else list(devices)
    n = num_shards(plan, len(devices))
    if n > 1:
        return _interrupt.run(  # [numerics] waited for where Ctrl-C is seen
            lambda: solve_sharded(
                mdp,
                None if zero_start else values0,
                solver,
                shared,
                devices=devices[:n],
                plan=plan,
                fast=fast,
                max_iters=max_iters,
                ctx=ctx,
                make_plan=_plan,
            ),
            poll > 0,
        )
    if fast:
        # Not split over host threads: measured no gain (lecture sweep) or a loss (W4), as
        # the product and the larger fusions already use every core.
        v0 = None if zero_start else values0
        return _interrupt.run(  # [numerics]
            lambda: _solve_shared_vi(mdp, v0, shared, solver, max_iters=max_iters, ctx=ctx),
            poll > 0,
        )
    leaves = (*mdp, jnp.asarray(values0))
    traced = any(isinstance(x, jax.core.Tracer) for x in leaves)
    threads = _threads_for(plan, traced, solver)
    if threads > 1:
        kw = dict(max_iters=max_iters, ctx=ctx, plan=plan)
        go = lambda: _solve_threaded(leaves, solver, threads, **kw)  # noqa: E731
        return _interrupt.run(go, poll > 0, waits=True)  # parts wait on host threads
    # Compile options apply to top-level programs only: not inside a user's jit/vmap/grad.
    run = _tiled_jit("batch") if plan.tile and not traced else _solve_jit
    return _interrupt.run(  # [numerics]
        lambda: run(leaves, solver, max_iters=max_iters, ctx=ctx, plan=plan), poll > 0
    )


@functools.partial(jax.jit, static_argnames=("max_iters", "ctx"))
def _solve_shared_vi(mdp, values0, shared, solver, *, max_iters, ctx) -> Solution:
    """Fast path: value iteration on a batch sharing one `transitions` (see `_shared_vi`)."""
    from jaxmdp._implicit import implicit_q_values, implicit_values
    from jaxmdp._shared_vi import solve_shared_vi

    batch = mdp.batch_shape
    S, A = mdp.num_states, mdp.num_actions
    B = int(np.prod(batch))
    dtype = jnp.result_type(mdp.transitions, mdp.rewards, mdp.discount)
    if values0 is not None:
        dtype = jnp.result_type(dtype, values0)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    P = jnp.asarray(mdp.transitions, dtype)
    R = jnp.reshape(jnp.broadcast_to(jnp.asarray(mdp.rewards, dtype), batch + (S, A)), (B, S, A))
    g = jnp.reshape(jnp.broadcast_to(jnp.asarray(mdp.discount, dtype), batch), (B,))
    if values0 is None:
        v0 = jnp.zeros((B, S), dtype)
    else:
        v0 = jnp.reshape(jnp.broadcast_to(jnp.asarray(values0, dtype), batch + (S,)), (B, S))
    sg = lax.stop_gradient
    shared = jax.tree.map(lambda x: sg(jnp.asarray(x, dtype) if x.dtype.kind == "f" else x), shared)
    r_in = R
    if not shared.batch_first:
        r_in, v0 = jnp.transpose(R, (2, 1, 0)), v0.T
    out = solve_shared_vi(
        shared,
        sg(r_in),
        sg(g),
        sg(v0),
        jnp.asarray(0.0 if solver.tol is None else solver.tol, dtype),
        rule=solver.rule,
        max_iters=max_iters,
        zero_start=values0 is None,
        auto_tol=solver.tol is None,
        poll_every=ctx.poll_every,  # [numerics] Ctrl-C slices
    )
    # Gradients by the implicit function theorem, as in `_single` (forward: unchanged).
    flat = MDP(P, R, g)
    in_axes = (MDP(None, 0, 0), 0, 0)
    hook = functools.partial(implicit_values, undiscounted=ctx.undiscounted)
    values = jax.vmap(hook, in_axes=in_axes)(flat, out.values, out.policy)
    q = jax.vmap(implicit_q_values, in_axes=in_axes)(flat, values, out.q_values)
    out = out._replace(values=values, q_values=q)
    return Solution(*(jnp.reshape(x, batch + x.shape[1:]) for x in out))
