"""One member's solve: the while loop, iteration count and status that every strategy runs.

The strategies (`jaxmdp._exec.*`) only decide how members are grouped (vmapped, tiled,
laddered, sharded); what a member computes is defined here once, so every strategy gives a
member the iterations, stopping tests and status of its own loop. This module imports no
strategy.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxmdp import _interrupt
from jaxmdp._implicit import implicit_solution
from jaxmdp._mdp import MDP, cast, solve_dtype, stop_gradient
from jaxmdp._solution import Solution, Status
from jaxmdp._solvers.base import RUNNING, SolveContext

# Trailing (per-member) ndims of each `Solution` field.
_CORE_NDIMS = dict(values=1, q_values=2, policy=1, status=0, num_iters=0, residual=0, error_bound=0)
SOLUTION_CORES = Solution(**_CORE_NDIMS)  # type: ignore[arg-type]  # a pytree spec of ints


def prepare(mdp: MDP, values0):
    """One member's inputs in the solve's dtype: `(mdp_diff, mdp, values0, start_code)`.

    Gradients (w.r.t. rewards, transitions, discount) come from the implicit function theorem
    at the returned fixed point (`jaxmdp._implicit`), never from the loop: the loop runs on
    stop-gradient copies of the MDP (`mdp`) and `values0`, so it carries no tangents;
    `mdp_diff` keeps them for `finish`. Elementwise only, so it also applies to stacked
    leaves (the ladder) without copying a shared one.
    """
    dtype = solve_dtype(mdp, values0)
    mdp_diff = cast(mdp, dtype)
    mdp = stop_gradient(mdp_diff)
    values0 = lax.stop_gradient(jnp.asarray(values0, dtype))
    g = mdp.discount
    invalid = ~((g >= 0) & (g <= 1))  # NaN included
    code = jnp.where(invalid, jnp.int32(Status.INVALID_INPUT), jnp.int32(RUNNING))
    return mdp_diff, mdp, values0, code


def finish(solver, mdp_diff: MDP, mdp: MDP, state, it, code, ctx: SolveContext) -> Solution:
    """One member's `Solution` from its final loop state."""
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


def _loop(mdp, solver, max_iters: int, ctx: SolveContext):
    """`(cond, body)` of one member's loop over `(state, iterations, code)`."""

    def cond(carry):
        _, it, code = carry
        return (code == RUNNING) & (it < max_iters)

    def body(carry):
        state, it, _ = carry
        state = solver.step(mdp, state, ctx)
        return state, it + 1, solver.status(mdp, state, ctx)

    return cond, body


def single(mdp: MDP, values0, solver, max_iters: int, ctx: SolveContext) -> Solution:
    """Solve ONE MDP: the while loop (batches vmap it, tile it, or run it in the ladder)."""
    mdp_diff, mdp, values0, code = prepare(mdp, values0)
    state = solver.init(mdp, values0, ctx)
    cond, body = _loop(mdp, solver, max_iters, ctx)
    # In slices that check for Ctrl-C (ctx.poll_every > 0: launched by `solve`, _interrupt).
    carry = (state, jnp.int32(0), code)
    state, it, code = _interrupt.while_loop(cond, body, carry, ctx.poll_every)
    return finish(solver, mdp_diff, mdp, state, it, code, ctx)


def member_fn(max_iters: int, ctx: SolveContext):
    """`((mdp, values0), solver) -> Solution` of one member: what the strategies map."""

    def fn(tree, solver):
        mdp, values0 = tree
        return single(mdp, values0, solver, max_iters, ctx)

    return fn


def batch_fn(max_iters: int, ctx: SolveContext, vmap_):
    """`((mdp, values0), solver) -> Solution` of a batch: `single` mapped over it.

    `vmap_(f)` maps a member's `f(tree, carry, solver)` over the batch (`tree` on its batch
    axes, `carry` on every mapped axis, `solver` not). Without Ctrl-C checks that is
    `member_fn` mapped. With them (`ctx.poll_every > 0`) the slices and checks run outside
    the `vmap`, on whether any member still runs (`_interrupt.checked_loop`), each slice a
    mapped loop of at most `poll_every` iterations per member: inside the `vmap` the check
    would be batched, so either called the host after every slice (a select) or needed a
    second copy of the loop. Each member runs the iterations of its own loop either way.
    """
    if ctx.poll_every <= 0:
        one = member_fn(max_iters, ctx)
        return lambda tree, solver: vmap_(lambda t, _c, s: one(t, s))(tree, None, solver)

    def start(tree, _carry, solver):
        _, mdp, values0, code = prepare(*tree)
        return solver.init(mdp, values0, ctx), jnp.int32(0), code

    def running(tree, carry, solver):
        return _loop(prepare(*tree)[1], solver, max_iters, ctx)[0](carry)

    def advance(tree, carry, solver):
        cond, body = _loop(prepare(*tree)[1], solver, max_iters, ctx)
        return _interrupt.slice_loop(cond, body, carry, ctx.poll_every)

    def end(tree, carry, solver):
        mdp_diff, mdp, _, _ = prepare(*tree)
        return finish(solver, mdp_diff, mdp, *carry, ctx)

    def fn(tree, solver):
        carry = vmap_(start)(tree, None, solver)
        carry = _interrupt.checked_loop(
            lambda c: jnp.any(vmap_(running)(tree, c, solver)),
            lambda c: vmap_(advance)(tree, c, solver),
            carry,
        )
        return vmap_(end)(tree, carry, solver)

    return fn
