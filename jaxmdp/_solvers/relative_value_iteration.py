"""Relative value iteration for the average-reward criterion (Puterman 1994, Sec. 8.5).

Undiscounted operator (the MDP's `discount` is ignored): (T h)(s) = max_a [r(s, a) + P(s, a) h].
For any h, with d = T h - h (Puterman Thm 8.5.5 and its proof):

    min_s d(s) <= g* <= max_s d(s),

and the policy greedy w.r.t. h (the one attaining T h) has gain >= min_s d(s). So the
midpoint of [min d, max d] is within span(d) / 2 of the optimal gain g*, and that policy is
span(d)-optimal.

Iteration, with the aperiodicity transform (Puterman Sec. 8.5.4: P' = tau P + (1 - tau) I,
r' = tau r, which leaves the bias unchanged and scales the gain by tau): its operator is
T' h = (1 - tau) h + tau T h, so one step is the damped update

    h <- h + tau (T h - h),    then    h <- h - h(ref_state)    (keeps h bounded).

With tau < 1 every policy's chain is aperiodic, so span(T h - h) -> 0 for unichain (and
weakly communicating) models even when some chains are periodic; tau = 1 is plain RVI,
faster on aperiodic models but it can oscillate forever on periodic ones. Where the optimal
gain is not constant (multichain models) span(T h - h) does not go to 0 and the solve ends
with `Status.MAX_ITERATIONS`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmdp import _bellman
from jaxmdp._solution import Status
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import (
    RUNNING,
    SolverResult,
    check_tol,
    register_solver,
    resolution_floor,
)


class RVIState(NamedTuple):
    values: jax.Array  # [S] iterate h_k (h_k(ref_state) = 0 after the first step)
    q: jax.Array  # [S, A] r + P h_k (undiscounted)
    stats: _stopping.DiffStats  # of d = T h_k - h_k


def relative_q(mdp, values: jax.Array) -> jax.Array:
    """`[S, A]` r(s, a) + sum_s' p(s' | s, a) h(s'): the undiscounted Q (discount ignored)."""
    return mdp.rewards + _bellman.expected_next_values(mdp, values)


def gain_interval(values: jax.Array, q: jax.Array):
    """`(gain, half_width)` from h = `values [..., S]` and q = `r + P h` `[..., S, A]`.

    With d = max_a q - h: g* lies in [min d, max d]; returns the midpoint and span(d) / 2.
    """
    d = jnp.max(q, axis=-1) - values
    dmax, dmin = jnp.max(d, axis=-1), jnp.min(d, axis=-1)
    return (dmax + dmin) / 2, (dmax - dmin) / 2


@register_solver(static=("ref_state",))
class RelativeValueIteration:
    """Relative value iteration (average reward, unichain models), with the aperiodicity
    transform.

    The MDP's `discount` is ignored: the criterion is the long-run average reward
    g = lim (1/n) E[sum_{t<n} r_t], and h is the bias (relative values).

    Stopping rule (per MDP, d = T h_k - h_k with the undiscounted operator T):
    `span(d) = max(d) - min(d) < tol`.

    Guarantee (exact arithmetic): the optimal gain lies in [min d, max d], so the gain
    `(max d + min d) / 2` is within `tol / 2` of g*, and `policy` (greedy w.r.t. h_k) is
    `tol`-optimal in gain. The bias h_k solves the average-reward optimality equation
    `g + h = max_a (r + P h)` up to `span(d) / 2` in the sup norm (no a-priori bound on
    `h_k - h*` is claimed).

    Returned through `jaxmdp.solve` (a `Solution`): `values` = bias h_k (0 at `ref_state`),
    `q_values` = relative action values `r + P h_k`, `policy` = their argmax, `residual` =
    span(d), `error_bound` = span(d) / 2, the bound on the GAIN (not on the values). The gain
    itself: use `jaxmdp.solve_average_reward` (an `AverageRewardSolution` with `.gain`), or
    compute `d = max_a q_values - values` and take `(max d + min d) / 2`.

    Convergence needs a constant optimal gain (unichain or weakly communicating models);
    the default transform (`tau = 0.5`) handles periodic chains. Multichain models with
    state-dependent gain end with `Status.MAX_ITERATIONS`. Float32: a span at the
    resolution of `T h` gives `Status.PRECISION_LIMITED`.

    Gradients through `jaxmdp.solve` / `jaxmdp.solve_average_reward` are not implemented
    (differentiating raises `NotImplementedError`).

    Attributes:
      tol: accuracy target (> 0) for the gain interval's width span(d).
      tau: aperiodicity transform in (0, 1] (a leaf); 1 = plain RVI (may oscillate on
        periodic chains).
      ref_state: static state whose bias is pinned to 0 (default 0; must be < S).
    """

    tol: float = 1e-6
    tau: float = 0.5
    ref_state: int = 0

    # The average-reward fixed point is not a discounted Bellman equation: the implicit-
    # gradient rule of `jaxmdp.solve` refuses (NotImplementedError) rather than guess.
    implicit_policy = None

    def __post_init__(self):
        check_tol("tol", self.tol)
        if isinstance(self.tau, (int, float)) and not 0 < self.tau <= 1:
            raise ValueError(f"tau must be in (0, 1]; got {self.tau!r}.")
        if not (isinstance(self.ref_state, int) and self.ref_state >= 0):
            raise ValueError(f"ref_state must be an int >= 0; got {self.ref_state!r}.")

    def _state(self, mdp, h):
        q = relative_q(mdp, h)
        return RVIState(h, q, _stopping.diff_stats(jnp.max(q, axis=-1), h))

    def init(self, mdp, values0, ctx):
        return self._state(mdp, values0)

    def step(self, mdp, state, ctx):
        tau = jnp.asarray(self.tau, state.values.dtype)
        h = state.values + tau * (jnp.max(state.q, axis=-1) - state.values)
        return self._state(mdp, h - h[self.ref_state])

    def status(self, mdp, state, ctx):
        span = state.stats.dmax - state.stats.dmin
        th = jnp.max(state.q, axis=-1)
        finite = jnp.all(jnp.isfinite(state.values)) & jnp.all(jnp.isfinite(th))
        code = jnp.where(
            span < self.tol,
            Status.SUCCESS,
            jnp.where(span <= resolution_floor(th), Status.PRECISION_LIMITED, RUNNING),
        )
        return jnp.where(finite, code, Status.NONFINITE).astype(jnp.int32)

    def result(self, mdp, state, ctx):
        span = state.stats.dmax - state.stats.dmin
        policy = jnp.argmax(state.q, axis=-1).astype(jnp.int32)
        return SolverResult(state.values, state.q, policy, span, span / 2)
