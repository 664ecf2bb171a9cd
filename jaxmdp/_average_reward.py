"""`solve_average_reward`: the average-reward criterion, with the gain as a field.

`Solution` describes discounted values (`values`, `error_bound` on `|V - V*|`) and has no
gain field. Rather than overload one of its fields, average-reward solves get their own
result type, built on the common driver: `jaxmdp.solve` runs `RelativeValueIteration`
(bias in `values`, `r + P h` in `q_values`), and the gain is read off those two arrays,
exactly the interval the solver's stopping rule tested.
"""

from __future__ import annotations

from typing import Annotated, NamedTuple

import jax
import numpy as np

from jaxmdp._solution import Status
from jaxmdp._solve import DEFAULT_MAX_ITERS, solve
from jaxmdp._solvers.relative_value_iteration import RelativeValueIteration, gain_interval
from jaxmdp._typing import ArrayLike, Shape


class AverageRewardSolution(NamedTuple):
    """What `jaxmdp.solve_average_reward` returns; every field carries the batch shape `[...]`.

    Attributes:
      gain: `[...]` optimal average reward per step (midpoint of the certified interval).
      bias: `[..., S]` relative values h (0 at the solver's `ref_state`).
      q_values: `[..., S, A]` relative action values `r + P h` (`-inf` = unavailable).
      policy: `[..., S]` int32 greedy action w.r.t. h (ties: lowest index).
      status: `[...]` int32 `Status` code (`MAX_ITERATIONS` e.g. for multichain models).
      num_iters: `[...]` int32 iterations.
      residual: `[...]` span(T h - h), the width of the gain interval.
      error_bound: `[...]` `residual / 2`: `|gain - g*| <= error_bound`; `policy` is
        `residual`-optimal in gain.
    """

    gain: jax.Array
    bias: jax.Array
    q_values: jax.Array
    policy: jax.Array
    status: jax.Array
    num_iters: jax.Array
    residual: jax.Array
    error_bound: jax.Array

    @property
    def ok(self) -> jax.Array:
        """`[...]` bool: `status == Status.SUCCESS`."""
        return self.status == Status.SUCCESS

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.status))


@jax.jit
def _gain(values, q_values):
    return gain_interval(values, q_values)[0]


def solve_average_reward(
    mdp,
    solver: RelativeValueIteration | None = None,
    *,
    max_iters: int = DEFAULT_MAX_ITERS,
    values0: Annotated[ArrayLike, Shape("... S")] | None = None,
) -> AverageRewardSolution:
    """Solve for the optimal average reward (gain) and bias, one MDP or a batch.

    The MDP's `discount` is ignored (any value in [0, 1] is accepted). Batching, sharing of
    leaves without batch axes and per-member status are those of `jaxmdp.solve`.

    Args:
      mdp: `MDP` (`transitions [..., S, A, S]`, `rewards [..., S, A]`, `discount [...]`).
      solver: `RelativeValueIteration(...)` (default: `RelativeValueIteration()`, tol=None:
        1e-6 where certifiable, aperiodicity transform tau = 0.5). Its docstring states the
        stopping rule.
      max_iters: static cap on iterations per MDP.
      values0: optional initial bias `[..., S]`; zeros by default.

    Returns:
      `AverageRewardSolution` with `gain` within `error_bound` (<= tol / 2 on success) of
      the optimal gain. `jaxmdp.check` accepts it like a `Solution`.
    """
    if solver is None:
        solver = RelativeValueIteration()
    if not isinstance(solver, RelativeValueIteration):
        raise TypeError(
            "solve_average_reward needs an average-reward solver "
            f"(jaxmdp.RelativeValueIteration); got {type(solver).__name__}."
        )
    sol = solve(mdp, solver, max_iters=max_iters, values0=values0)
    return AverageRewardSolution(
        gain=_gain(sol.values, sol.q_values),
        bias=sol.values,
        q_values=sol.q_values,
        policy=sol.policy,
        status=sol.status,
        num_iters=sol.num_iters,
        residual=sol.residual,
        error_bound=sol.error_bound,
    )
