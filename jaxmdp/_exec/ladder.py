"""Strategy "ladder": a batch's loop that stops paying for converged members, any solver.

`vmap` of one member's while loop runs every member until the slowest stops; converged
members are frozen but still computed. Where the slowest are few (float32 members at the
precision floor, the sup-norm rule, discounts near 1 among many smaller ones) that is most of
the work: 4,096 variants of one MDP under modified policy iteration ran 34 iterations for 32
members and 3 for the rest, 13.9 s. Here the batch runs as one level until at most
1/`LADDER_FACTOR` of its members still run; those are gathered into a level of that size
(scattered back when done), and so on down to `LADDER_MIN` (factor 8: W4 above 1.2 s;
factor 4 1.1 s with a third more to compile; factor 16 1.7 s). Per member the iterations,
stopping tests and status are those of its own loop (`member.single`); what a level changes
is only how many members a batched product spans, so values agree with a one-at-a-time
solve within rounding (different programs: a batched product's summation order and the
kernels XLA picks can differ; identical only for the same program on the same input).

Planned (`plan.make_plan`, from `solve`'s `compact`) for a flattened batch whose leaves are
each per member or shared, with no CPU tiling (tiles already stop on their own);
`shared_vi.py` has its own ladder.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import _interrupt
from jaxmdp._exec import layout, member
from jaxmdp._exec.plan import LADDER_FACTOR, LADDER_MIN
from jaxmdp._solution import Solution
from jaxmdp._solvers.base import RUNNING


@functools.partial(jax.jit, static_argnames=("max_iters", "ctx", "plan"))
def solve(tree, solver, *, max_iters: int, ctx, plan) -> Solution:
    """`Solution` with `plan.batch_shape` for `(mdp, values0)` of a flattenable batch."""
    tree = layout.squeeze(tree, plan.batch_shape, plan.carried)
    (mdp, v0), (mdp_axes, _) = layout.flatten(tree, plan.batch_shape, plan.carried)
    B = int(np.prod(plan.batch_shape))
    # Elementwise casts and stop_gradient: applied to the stacked leaves directly, so a
    # shared leaf stays one copy.
    mdp_diff, mdp, v0, code = member.prepare(mdp, v0)
    v0 = jnp.broadcast_to(v0, (B,) + v0.shape[-1:])
    code = jnp.broadcast_to(code, (B,))
    init = jax.vmap(lambda m, v: solver.init(m, v, ctx), in_axes=(mdp_axes, 0))
    step = jax.vmap(lambda m, s: solver.step(m, s, ctx), in_axes=(mdp_axes, 0))
    status = jax.vmap(lambda m, s: solver.status(m, s, ctx), in_axes=(mdp_axes, 0))

    def live(it, code):
        return (code == RUNNING) & (it < max_iters)

    mapped = jax.tree.leaves(mdp_axes, is_leaf=lambda a: a is None)

    def take(m, idx):
        """The members `idx` of a (flattened) MDP; shared leaves stay shared."""
        leaves, treedef = jax.tree.flatten(m)
        picked = [x if a is None else x[idx] for x, a in zip(leaves, mapped, strict=True)]
        return jax.tree.unflatten(treedef, picked)

    def run(m, carry, n: int):
        """Iterate the `n` members of `carry = (state, it, code)` to the end of the ladder."""
        nxt = n // LADDER_FACTOR if n // LADDER_FACTOR >= LADDER_MIN else 0

        def body(carry):
            state, it, code = carry
            active = live(it, code)
            new = step(m, state)
            state = jax.tree.map(
                lambda a, b: jnp.where(jnp.reshape(active, (-1,) + (1,) * (a.ndim - 1)), a, b),
                new,
                state,
            )
            code = jnp.where(active, status(m, new), code)
            return state, it + active.astype(jnp.int32), code

        # in slices that check for Ctrl-C (jaxmdp._interrupt)
        cond = lambda c: jnp.sum(live(c[1], c[2])) > nxt  # noqa: E731
        carry = _interrupt.while_loop(cond, body, carry, ctx.poll_every)
        if not nxt:
            return carry
        # At most nxt members left: gather them (padding repeats a finished member, which the
        # level leaves unchanged), iterate, scatter back.
        alive = live(carry[1], carry[2])
        idx = jnp.nonzero(alive, size=nxt, fill_value=jnp.argmin(alive))[0]
        sub = run(take(m, idx), jax.tree.map(lambda x: x[idx], carry), nxt)
        return jax.tree.map(lambda x, s: x.at[idx].set(s), carry, sub)

    state, it, code = run(mdp, (init(mdp, v0), jnp.zeros((B,), jnp.int32), code), B)
    finish = jax.vmap(
        lambda md, m, s, i, c: member.finish(solver, md, m, s, i, c, ctx),
        in_axes=(mdp_axes, mdp_axes, 0, 0, 0),
    )
    out = finish(mdp_diff, mdp, state, it, code)
    return Solution(*(jnp.reshape(x, plan.batch_shape + x.shape[1:]) for x in out))
