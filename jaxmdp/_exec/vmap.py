"""Strategy "vmap": one member's loop vmapped over the batch (also a single MDP).

One `vmap` per batch axis, each leaf mapped only on the axes it carries (`layout`), so a
`transitions` without batch axes stays one array: under vmap its backup `P @ V` becomes one
`[S*A, S] x [S, B]` matrix-matrix product. A finished member freezes while the loop goes
on for the others; it runs exactly the iterations and stopping test of its own loop, and its
result equals its own solve's within rounding (a batched product's summation order, and the
kernels XLA picks, can differ from a single solve's; identical only for the same program on
the same input).
"""

from __future__ import annotations

from jaxmdp import _quick as quick
from jaxmdp._exec import layout, member
from jaxmdp._solution import Solution


def solve_batch(tree, solver, *, max_iters: int, ctx, plan) -> Solution:
    """`Solution` with `plan.batch_shape` for `(mdp, values0)` (not jitted: callers do)."""
    tree = layout.squeeze(tree, plan.batch_shape, plan.carried)
    fn = member.batch_fn(max_iters, ctx, lambda f: layout.vmap_batch(f, tree, plan.carried))
    return layout.restore(fn(tree, solver), plan.batch_shape, member.SOLUTION_CORES)


_program = quick.jits(solve_batch, static_argnames=("max_iters", "ctx", "plan"))


def solve(tree, solver, *, max_iters: int, ctx, plan) -> Solution:
    """`solve_batch` as one program (with `quick.QUICK_OPTIONS` where the plan says so)."""
    return _program(plan.quick_compile)(tree, solver, max_iters=max_iters, ctx=ctx, plan=plan)
