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
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import (
    SolverResult,
    check_int,
    check_number,
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

    Stopping rule (per MDP, d = T h_k - h_k with the undiscounted operator T): the certified
    half-width of the gain interval below `tol / 2`, in exact arithmetic
    `span(d) = max(d) - min(d) < tol` (rounding: `_gain_bound`).

    Guarantee (exact arithmetic): the optimal gain lies in [min d, max d], so the gain
    `(max d + min d) / 2` is within `tol / 2` of g*, and `policy` (greedy w.r.t. h_k) is
    `tol`-optimal in gain. The bias h_k solves the average-reward optimality equation
    `g + h = max_a (r + P h)` up to `span(d) / 2` in the sup norm (no a-priori bound on
    `h_k - h*` is claimed).

    Returned through `jaxmdp.solve` (a `Solution`): `values` = bias h_k (0 at `ref_state`),
    `q_values` = relative action values `r + P h_k`, `policy` = their argmax, `residual` =
    span(d), `error_bound` = span(d) / 2 plus the rounding of d, a true bound on the GAIN's
    distance from `(max d + min d) / 2` (not on the values; the gain is that of the transition
    rows normalised to sum to 1, the only reading of the average reward). The gain
    itself: use `jaxmdp.solve_average_reward` (an `AverageRewardSolution` with `.gain`), or
    compute `d = max_a q_values - values` and take `(max d + min d) / 2`.

    Convergence needs a constant optimal gain (unichain or weakly communicating models);
    the default transform (`tau = 0.5`) handles periodic chains. Multichain models with
    state-dependent gain end with `Status.MAX_ITERATIONS`. Float32: `tol=None` (default)
    accepts the tightest interval the dtype certifies; an explicit `tol` below it gives
    `Status.PRECISION_LIMITED`.

    Gradients through `jaxmdp.solve` / `jaxmdp.solve_average_reward` are not implemented
    (differentiating raises `NotImplementedError`).

    Attributes:
      tol: accuracy target (> 0) for the gain interval's width span(d); `None` (default):
        1e-6 where the dtype can certify it, else the tightest it can (SUCCESS either way).
      tau: aperiodicity transform in (0, 1] (a leaf); 1 = plain RVI (may oscillate on
        periodic chains).
      ref_state: static state whose bias is pinned to 0 (default 0; must be < S).
    """

    tol: float | None = None
    tau: float = 0.5
    ref_state: int = 0

    # The average-reward fixed point is not a discounted Bellman equation: the implicit-
    # gradient rule of `jaxmdp.solve` refuses (NotImplementedError) rather than guess.
    implicit_policy = None

    def __post_init__(self):
        name = "RelativeValueIteration"
        check_tol("tol", self.tol, name)
        check_number(name, "tau", self.tau, high=1.0)
        r = check_int(name, "ref_state", self.ref_state, 0)
        object.__setattr__(self, "ref_state", r)  # a NumPy int becomes a Python int

    def _state(self, mdp, h, prev):
        q = relative_q(mdp, h)
        return RVIState(h, q, _stopping.diff_stats(jnp.max(q, axis=-1), h, prev=prev))

    def init(self, mdp, values0, ctx):
        S = mdp.rewards.shape[-2]
        if self.ref_state >= S:
            raise ValueError(
                f"RelativeValueIteration(ref_state={self.ref_state}): ref_state must be a state "
                f"index < S = {S}."
            )
        rnd = _stopping.rounding(mdp.transitions, mdp.rewards)
        return self._state(mdp, values0, _stopping.initial_stats(values0.dtype, rnd=rnd))

    def step(self, mdp, state, ctx):
        tau = jnp.asarray(self.tau, state.values.dtype)
        h = state.values + tau * (jnp.max(state.q, axis=-1) - state.values)
        return self._state(mdp, h - h[self.ref_state], state.stats)

    def _gain_bound(self, state):
        """(span, half-width bound of the gain interval, rounding part): the optimal gain of
        the normalised rows lies in [min d~, max d~], and d~ is within eta of the computed d
        (`jaxmdp._solvers._stopping` with g = 1: the operator here has no discount)."""
        s = state.stats
        dtype = state.values.dtype
        u = float(jnp.finfo(dtype).eps) / 2
        span = s.dmax - s.dmin
        big = jnp.maximum(jnp.abs(s.dmax), jnp.abs(s.dmin))
        m_in = jnp.max(jnp.abs(state.values))
        eta = _stopping.backup_error(s.rnd, 1.0, m_in) + u * big / (1 - u)
        rest = eta + u * jnp.abs(s.dmax + s.dmin) / 2
        return span, (span / 2 + rest) * (1 + 8 * u), rest

    def status(self, mdp, state, ctx):
        auto = self.tol is None
        tol = _stopping.DEFAULT_TOL if auto else self.tol
        span, bound, rest = self._gain_bound(state)
        th = jnp.max(state.q, axis=-1)
        finite = jnp.all(jnp.isfinite(state.values)) & jnp.all(jnp.isfinite(th))
        half = jnp.asarray(tol, bound.dtype) / 2
        # the worst-case rounding part ends the loop only after the exact-arithmetic test
        floor = (span <= resolution_floor(th)) | ((span / 2 <= rest / 4) & (span / 2 < half))
        no = jnp.zeros((), bool)
        return _stopping.code(bound < half, floor, auto | (bound <= half), no, finite)

    def result(self, mdp, state, ctx):
        span, bound, _ = self._gain_bound(state)
        policy = jnp.argmax(state.q, axis=-1).astype(jnp.int32)
        return SolverResult(state.values, state.q, policy, span, _stopping.round_up(bound))
