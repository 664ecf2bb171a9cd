"""The result of a solve: `Solution`, the `Status` codes and the host-side `check`."""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import numpy as np


class Status(enum.IntEnum):
    """Per-MDP outcome of a solve. Inside `jit`/`vmap` nothing raises; each member gets a code."""

    SUCCESS = 0
    MAX_ITERATIONS = 1
    NONFINITE = 2
    INVALID_INPUT = 3
    PRECISION_LIMITED = 4
    UNBOUNDED = 5

    @property
    def message(self) -> str:
        return MESSAGES[self]


MESSAGES = {
    Status.SUCCESS: "converged: the solver's stopping rule fired and its guarantee holds.",
    Status.MAX_ITERATIONS: (
        "the maximum number of iterations was reached before the stopping rule fired. Increase "
        "`max_iters`, loosen `tol`, or (at discount 1) check that every policy that matters "
        "reaches a zero-reward absorbing state: values that grow without bound never converge."
    ),
    Status.NONFINITE: (
        "values became NaN or infinite. Check the rewards (NaN/+inf), the transitions, and at "
        "discount 1 whether the values diverge."
    ),
    Status.INVALID_INPUT: (
        "invalid input (e.g. discount outside [0, 1] or a non-finite discount); run "
        "`jaxmdp.validate_mdp(mdp)` on the host for a detailed message."
    ),
    Status.PRECISION_LIMITED: (
        "the iterates stopped changing at the resolution of the floating-point dtype before the "
        "requested `tol` was certified; `solution.error_bound` holds the bound that was reached. "
        "Loosen `tol` or enable float64 (`jax.config.update('jax_enable_x64', True)`)."
    ),
    Status.UNBOUNDED: (
        "at discount 1 the values grow without bound: policy iteration's final policy has states "
        "with infinite value, or value iteration (and its variants) proved that every state's "
        "value changes by at least a fixed amount per sweep (a recurrent class with non-zero "
        "reward: the episode never ends and reward keeps accumulating). The problem has no "
        "finite optimal value; use a discount < 1, add an absorbing zero-reward state, or "
        "solve the average-reward problem (`jaxmdp.solve_average_reward`)."
    ),
}


class Solution(NamedTuple):
    """What `jaxmdp.solve` returns. Every field carries the MDP's batch shape `[...]`.

    Attributes:
      values: `[..., S]` value estimate V.
      q_values: `[..., S, A]` action values consistent with `values` (`values = max_a q`).
        Unavailable actions have `-inf`.
      policy: `[..., S]` int32 greedy action (ties: lowest action index).
      status: `[...]` int32 `Status` code.
      num_iters: `[...]` int32 iterations performed (VI: Bellman sweeps; PI: policy
        evaluations; modified PI: improvement steps).
      residual: `[...]` the stopping statistic at the end (see the solver's docstring).
      error_bound: `[...]` guaranteed bound on `max_s |values - V*|` and `max |q_values - Q*|`
        for the data as given, rounding included (`jaxmdp._solvers._stopping` derives it);
        `inf` where none exists (discount 1).

    `Status.UNBOUNDED` members of the value-iteration family (discount 1, values provably
    running off): `residual` is the estimated optimal gain, the long-run reward per step
    (its sign says which way the values run), and `error_bound` its certified half-width:
    the gain lies in `[residual - error_bound, residual + error_bound]` (as for
    `RelativeValueIteration`, whose `error_bound` also bounds the gain).
    """

    values: jax.Array
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


class ConvergenceError(RuntimeError):
    """Raised by `jaxmdp.check` when some members of a solve did not succeed."""


def check(solution: Solution, *, allow=()) -> Solution:
    """Raise `ConvergenceError` if any member failed; otherwise return `solution` unchanged.

    Runs on the host, after the computation (not inside `jit`). The message gives, for each
    failure code, how many members have it, their first batch indices and what to do.

    Args:
      solution: a (possibly batched) `Solution`.
      allow: status codes to accept besides `Status.SUCCESS` (e.g. `{Status.PRECISION_LIMITED}`).
    """
    if isinstance(solution.status, jax.core.Tracer):
        raise TypeError(
            "jaxmdp.check(solution) inspects concrete results on the host; call it outside "
            "jax.jit / jax.vmap (inside, use `solution.status` / `solution.ok`)."
        )
    status = np.asarray(solution.status)
    accepted = {int(Status.SUCCESS)} | {int(a) for a in allow}
    bad = ~np.isin(status, list(accepted))
    if not bad.any():
        return solution
    lines = [f"{int(bad.sum())} of {status.size} MDPs did not succeed:"]
    for code in sorted(set(np.unique(status[bad]).tolist())):
        where = np.argwhere(status == code)
        first = [tuple(int(i) for i in w) for w in where[:5]]
        first_str = ", ".join(str(f if len(f) != 1 else f[0]) for f in first) or "()"
        try:
            name, msg = Status(code).name, Status(code).message
        except ValueError:
            name, msg = f"UNKNOWN({code})", "unknown status code."
        extra = ""
        if where.size:
            idx = tuple(where[0]) if status.ndim else ()
            residual = float(np.asarray(solution.residual)[idx])
            bound = float(np.asarray(solution.error_bound)[idx])
            iters = int(np.asarray(solution.num_iters)[idx])
            first = "First one: " if status.ndim else ""
            if code == Status.UNBOUNDED and np.isfinite(bound):
                extra = (
                    f" {first}gain (reward per step) in [{residual - bound:.4g}, "
                    f"{residual + bound:.4g}], {iters} iterations."
                )
            else:
                extra = f" {first}residual {residual:.3g}, {iters} iterations."
                if status.ndim == 0:
                    extra = f" Residual {residual:.3g}, {iters} iterations."
        more = ", ..." if len(where) > 5 else ""
        lines.append(f"- {name}: {len(where)} (batch indices {first_str}{more}): {msg}{extra}")
    raise ConvergenceError("\n".join(lines))
