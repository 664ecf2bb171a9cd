"""A batch's loop that stops paying for converged members: the compaction ladder, any solver.

`vmap` of one member's while loop runs every member until the slowest stops; converged
members are frozen but still computed. Where the slowest are few (float32 members at the
precision floor, the sup-norm rule, discounts near 1 among many smaller ones) that is most of
the work: 4,096 variants of one MDP under modified policy iteration ran 34 iterations for 32
members and 3 for the rest, 13.9 s. Here the batch runs as one level until at most 1/8 of its
members still run; those are gathered into a level of that size (scattered back when done),
and so on down to `LADDER_MIN` (factor 8: W4 above 1.2 s; factor 4 1.1 s with a third more
to compile; factor 16 1.7 s). Per member the iterations, stopping tests and status are
those of its own loop (`_solve._single`); what a level changes is only how many members a
batched product spans, so values agree with a one-at-a-time solve to the last bits (bitwise
where each member has its own transitions, as before).

Used by `solve` (its `compact` argument; `_solve._ladder_wanted` decides) for a flattened
batch whose leaves are each per member or shared, with no CPU tiling (tiles already stop on
their own); `jaxmdp._shared_vi` has its own ladder.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmdp import _interrupt  # [numerics] Ctrl-C slices
from jaxmdp._mdp import MDP
from jaxmdp._solvers.base import RUNNING

LADDER = 8
LADDER_MIN = 32
# Each level compiles the solver's step again: on 10,000 lecture worlds (a tiny sweep) four
# levels made policy iteration's first call 5.1 s instead of 1.3 s for 26 ms saved per call,
# while on 4,096 MDPs of S=256 (a heavy sweep) they saved 12.5 s of 13.7. Automatic only from
# this much work per sweep (B S^2 A multiply-adds; W4's is 2.1e9, the lecture sweep's 4.8e6).
AUTO_WORK = 1 << 27


def solve(leaves, solver, *, carried, max_iters: int, ctx):
    """`Solution` with batch axis first for flattened `leaves` (P, R, discount, values0).

    `carried[k]`: leaf k has the batch axis (first) or is shared by every member.
    """
    from jaxmdp._solve import _finish, _prepare

    axes = tuple(0 if c else None for c in carried)
    B = next(x.shape[0] for x, c in zip(leaves, carried, strict=True) if c)
    # Elementwise casts and stop_gradient: applied to the stacked leaves directly, so a
    # shared leaf stays one copy.
    mdp_diff, mdp, v0, code = _prepare(MDP(*leaves[:3]), leaves[3])
    v0 = jnp.broadcast_to(v0, (B,) + v0.shape[-1:])
    code = jnp.broadcast_to(code, (B,))
    mdp_axes = MDP(*axes[:3])
    init = jax.vmap(lambda m, v: solver.init(m, v, ctx), in_axes=(mdp_axes, 0))
    step = jax.vmap(lambda m, s: solver.step(m, s, ctx), in_axes=(mdp_axes, 0))
    status = jax.vmap(lambda m, s: solver.status(m, s, ctx), in_axes=(mdp_axes, 0))

    def live(it, code):
        return (code == RUNNING) & (it < max_iters)

    def run(m: MDP, carry, n: int):
        """Iterate the `n` members of `carry = (state, it, code)` to the end of the ladder."""
        nxt = n // LADDER if n // LADDER >= LADDER_MIN else 0

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

        # [numerics] in slices that check for Ctrl-C (jaxmdp._interrupt)
        cond = lambda c: jnp.sum(live(c[1], c[2])) > nxt  # noqa: E731
        carry = _interrupt.while_loop(cond, body, carry, ctx.poll_every)
        if not nxt:
            return carry
        # At most nxt members left: gather them (padding repeats a finished member, which the
        # level leaves unchanged), iterate, scatter back.
        alive = live(carry[1], carry[2])
        idx = jnp.nonzero(alive, size=nxt, fill_value=jnp.argmin(alive))[0]
        sub_m = MDP(*(x[idx] if c else x for x, c in zip(m, carried[:3], strict=True)))
        sub = run(sub_m, jax.tree.map(lambda x: x[idx], carry), nxt)
        return jax.tree.map(lambda x, s: x.at[idx].set(s), carry, sub)

    state, it, code = run(mdp, (init(mdp, v0), jnp.zeros((B,), jnp.int32), code), B)
    finish = jax.vmap(
        lambda md, m, s, i, c: _finish(solver, md, m, s, i, c, ctx),
        in_axes=(mdp_axes, mdp_axes, 0, 0, 0),
    )
    return finish(mdp_diff, mdp, state, it, code)
