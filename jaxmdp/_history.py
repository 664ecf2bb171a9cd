"""`convergence_history`: a solver's stopping statistic after every iteration, for plots.

`jaxmdp.solve` only keeps the final state; this runs the same solver protocol
(`jaxmdp._solvers.base`: init / step / status / result) for a fixed number of iterations in
one `lax.scan` and records what `solve` would report if it stopped after each one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _operators, _quick
from jaxmdp._exec.plan import undiscounted
from jaxmdp._mdp import MDP, cast, check_shapes, solve_dtype
from jaxmdp._solvers.base import RUNNING, SolveContext
from jaxmdp._solvers.value_iteration import ValueIteration
from jaxmdp._typing import StateVector


class History(NamedTuple):
    """Per-iteration record of a solve; index `k` is the state after `k + 1` iterations.

    Attributes:
      residual: `[T]` the solver's stopping statistic (see its docstring).
      error_bound: `[T]` the bound on `max_s |V - V*|` certified at that point (`inf` if none).
      status: `[T]` int32: `-1` while the stopping rule has not fired, else the `Status`
        code `solve` would return there.
      values: `[T, S]` the values `solve` would return there.
    """

    residual: jax.Array
    error_bound: jax.Array
    status: jax.Array
    values: jax.Array

    @property
    def stopped_at(self) -> int | None:
        """Iterations after which `solve` would have stopped, or `None` if it never did."""
        import numpy as np

        done = np.flatnonzero(np.asarray(self.status) != RUNNING)
        return int(done[0]) + 1 if done.size else None


def _history_fn(mdp, values0, solver, *, num_iters: int, ctx: SolveContext) -> History:
    dtype = solve_dtype(mdp, values0)
    mdp = cast(mdp, dtype)
    state = solver.init(mdp, jnp.asarray(values0, dtype), ctx)

    def body(state, _):
        state = solver.step(mdp, state, ctx)
        res = solver.result(mdp, state, ctx)
        code = solver.status(mdp, state, ctx)
        row = (
            jnp.asarray(res.residual, dtype),
            jnp.asarray(res.error_bound, dtype),
            code,
            res.values,
        )
        return state, row

    _, (residual, bound, status, values) = lax.scan(body, state, None, length=num_iters)
    return History(residual, bound, jnp.asarray(status, jnp.int32), values)


def convergence_history(
    mdp: MDP, solver=None, num_iters: int = 100, *, values0: StateVector | None = None
) -> History:
    """Runs `num_iters` iterations of `solver` on ONE MDP and records each one.

    Unlike `solve` it does not stop when the stopping rule fires (the record goes on, so a
    plot shows what happens after); `History.stopped_at` says where `solve` would stop.
    For a batch, `jax.vmap` it.

    Args:
      mdp: one MDP (`transitions [S, A, S]`, `rewards [S, A]`, `discount []`).
      solver: as for `jaxmdp.solve` (default `ValueIteration()`).
      num_iters: iterations to record (static).
      values0: `[S]` start (zeros by default).

    Returns:
      `History` of `[num_iters]` residuals, error bounds, status codes and `[num_iters, S]`
      values.
    """
    if solver is None:
        solver = ValueIteration()
    if not isinstance(mdp, MDP):
        raise TypeError(f"convergence_history expects a jaxmdp.MDP; got {type(mdp).__name__}.")
    if not (isinstance(num_iters, int) and num_iters >= 1):
        raise ValueError(f"num_iters must be an int >= 1; got {num_iters!r}.")
    check_shapes(mdp)
    if mdp.batch_shape:
        raise ValueError(
            f"convergence_history takes one MDP; this one has batch shape {mdp.batch_shape}. "
            "Use jax.vmap(lambda m: jaxmdp.convergence_history(m, ...))(mdp) for a batch."
        )
    if values0 is None:
        values0 = jnp.zeros((mdp.num_states,), jnp.result_type(mdp.rewards, mdp.discount))
    ctx = SolveContext(undiscounted=undiscounted(mdp.discount))
    traced = _quick.traced(jax.tree.leaves((mdp, values0)))
    work = _operators.sweep_work(mdp.transitions)
    small = _quick.wanted(jax.default_backend(), traced, 1, work)  # one MDP (`_quick`)
    return _history(small)(mdp, values0, solver, num_iters=num_iters, ctx=ctx)


_history = _quick.jits(_history_fn, static_argnames=("num_iters", "ctx"))
