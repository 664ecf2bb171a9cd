"""Policy iteration with exact (linear-solve) evaluation, Puterman 1994, Sec. 6.4.

pi_0 is greedy w.r.t. V_0 (zeros unless given). Each iteration evaluates pi_k exactly and
improves it greedily, keeping the current action unless another is better by more than the
rounding level (this rules out cycling between equally good policies). It stops when the
policy no longer changes: pi_k is then optimal (exact arithmetic) and V^{pi_k} = V*.

Discount 1 (episodic problems): evaluation uses the stochastic-shortest-path convention of
`jaxmdp.bellman.evaluate_policy` (zero-reward recurrent classes pinned to 0; improper policies
get infinite values in the states that never terminate). An improper policy with -inf values
is improved away by the next greedy step, so PI reaches the optimum from such a start; if the
final policy still has infinite values the problem has none finite: `Status.UNBOUNDED`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmdp import _bellman
from jaxmdp._solution import Status
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import RUNNING, SolverResult, check_int, register_solver


class PIState(NamedTuple):
    policy: jax.Array  # [S] int32 policy to evaluate next (or the final one)
    values: jax.Array  # [S] V of the last evaluated policy
    q: jax.Array  # [S, A] Q from those values
    stable: jax.Array  # [] bool: improvement left the policy unchanged
    rnd: _stopping.Rounding  # rounding constants of the certificate


def _improve(q, policy, scale):
    """Greedy step that keeps the current action unless another beats it beyond rounding."""
    best = jnp.argmax(q, axis=-1).astype(jnp.int32)
    qmax = jnp.max(q, axis=-1)
    q_cur = jnp.take_along_axis(q, policy[:, None], axis=-1)[:, 0]
    tie = 64 * jnp.finfo(q.dtype).eps * (scale + 1)
    keep = (q_cur >= qmax - tie) | (q_cur == qmax)
    return jnp.where(keep, policy, best)


def residual_bound(rnd, discount, values, q, residual):
    """[] bound on |values - V*| and |q - Q*| from the computed residual max|T V - V|.

    `q` = fl(r + g P V) and `residual` = max|fl(max_a q - V)|. Exactly, ||V - V*|| <=
    ||T V - V|| / (1 - g) (T is a g-contraction), and ||q - Q*|| <= g ||V - V*||. With the
    rounding of `jaxmdp._solvers._stopping` (T~ the operator of the normalised rows, rho~ the
    rounding of one computed backup): ||T~V - V|| <= residual / (1 - u) + rho~, and the
    computed q is within rho~ of the exact one; so (residual / (1 - u) + rho~) / (1 - g)
    covers both, plus the data term (rows as given vs normalised) and (1 + 16 u) for the
    bound's own arithmetic. `inf` at discount 1.
    """
    dtype = values.dtype
    u = float(jnp.finfo(dtype).eps) / 2
    g = jnp.asarray(discount, dtype)
    below = g < 1
    finite_v = jnp.where(jnp.isfinite(values), jnp.abs(values), 0.0)
    finite_q = jnp.where(jnp.isfinite(q), jnp.abs(q), 0.0)
    m_v = jnp.max(finite_v)
    rho = _stopping.backup_error(rnd, g, m_v)
    core = (residual / (1 - u) + rho) / jnp.where(below, 1 - g, 1)
    m_out = jnp.maximum(m_v, jnp.max(finite_q))
    fp = _stopping.data_term(rnd, g, m_out, core)
    return _stopping.round_up(jnp.where(below, (core + fp) * (1 + 16 * u), jnp.inf))


@register_solver(static=("initial_sweeps",))
class PolicyIteration:
    """Policy iteration with exact evaluation by a linear solve.

    Evaluation: dense transitions, an LU factorisation of `I - g P_pi`; sparse ones
    (`SparseTransitions`, discount < 1), GMRES through the policy operator (no `[S, S]`
    matrix; `jaxmdp._krylov`) to a residual of a few ulp. Either way `error_bound` is
    certified from an actual backup of the returned values (`max|T V - V| / (1 - g)`), so
    an inexact evaluation shows there. Sparse transitions where the discount may be 1
    materialise `P_pi` for the discount-1 chain analysis (up to 2,048 states; larger ones
    raise, naming the alternatives).

    Stopping rule: the greedy improvement leaves the policy unchanged (ties keep the current
    action). Guarantee: the policy is optimal and `values` = V^pi up to the linear solve's
    rounding. `num_iters` counts policy evaluations. `residual` is `max_s |T V - V|` at the end
    (the Bellman residual of the returned values, ~0) and `error_bound` =
    `residual / (1 - discount)` plus the rounding of that residual's computation
    (`residual_bound`), a true bound on |values - V*| and |q_values - Q*| (`inf` at
    discount 1). Cost per iteration: O(S^3) for the solve
    (plus O(S^3 log S) for the structure analysis when some discount is 1).

    Attributes:
      initial_sweeps: static number of value-iteration backups applied to `values0` before
        the first policy is taken greedy (0: greedy for `values0` itself, the immediate
        rewards from zeros). From `values0 = 0` the first backup is `max_a R` and costs
        nothing, so the default 1 costs one O(S^2 A) product and usually saves a whole
        O(S^3) evaluation (typically 1-2 evaluations per MDP instead of 2-3).
        Float32, either start: the stop keeps the current action within 64 ulp of the best
        (so rounding cannot make it cycle) and the linear solve itself rounds at about
        (1 + g) / (1 - g) ulp of max|V| (value errors of 1e-6 to 1e-4 on typical models;
        `error_bound` states the certified one). Use float64 where PI's exactness matters.
    """

    initial_sweeps: int = 1

    def __post_init__(self):
        n = check_int("PolicyIteration", "initial_sweeps", self.initial_sweeps, 0)
        object.__setattr__(self, "initial_sweeps", n)  # a NumPy int becomes a Python int

    def init(self, mdp, values0, ctx):
        if ctx.zero_start:  # Q = R + g P 0: skip the product (a full sweep over P)
            q = jnp.broadcast_to(mdp.rewards, mdp.rewards.shape).astype(values0.dtype)
        else:
            q = _bellman.q_values(mdp, values0)
        for _ in range(self.initial_sweeps):
            q = _bellman.q_values(mdp, jnp.max(q, axis=-1))
        policy = jnp.argmax(q, axis=-1).astype(jnp.int32)
        rnd = _stopping.rounding(mdp.transitions, mdp.rewards)
        return PIState(policy, values0, q, jnp.asarray(False), rnd)

    def step(self, mdp, state, ctx):
        # the loop's MDP is a stop_gradient copy: no custom_linear_solve (_krylov)
        v = _bellman.evaluate_policy_undifferentiated(
            mdp, state.policy, undiscounted=ctx.undiscounted
        )
        if ctx.undiscounted:
            # An improper policy's -inf states are scored as a huge finite loss, so that the
            # greedy step prefers actions less likely to reach them (with slip, every action
            # may reach one, and -inf would tie them all); proper policies then spread out
            # from the exits one improvement at a time.
            big = jnp.finfo(v.dtype).max / (8 * v.shape[-1])
            q = _bellman.q_values_extended(mdp, jnp.where(v == -jnp.inf, -big, v))
        else:
            q = _bellman.q_values(mdp, v)
        finite_v = jnp.where(jnp.isfinite(v), v, 0.0)
        finite_r = jnp.where(jnp.isfinite(mdp.rewards), mdp.rewards, 0.0)
        scale = jnp.max(jnp.abs(finite_v)) + jnp.max(jnp.abs(finite_r))
        new_policy = _improve(q, state.policy, scale)
        stable = jnp.all(new_policy == state.policy)
        return PIState(new_policy, v, q, stable, state.rnd)

    def status(self, mdp, state, ctx):
        v = state.values
        nan = jnp.any(jnp.isnan(v))
        inf = jnp.any(jnp.isinf(v))
        code = jnp.where(state.stable, jnp.where(inf, Status.UNBOUNDED, Status.SUCCESS), RUNNING)
        # An infinite value is only legitimate at discount 1; NaN never is.
        bad = nan | (inf & (mdp.discount < 1))
        return jnp.where(bad, Status.NONFINITE, code).astype(jnp.int32)

    def result(self, mdp, state, ctx):
        qmax = jnp.max(state.q, axis=-1)
        d = jnp.where(jnp.isfinite(state.values), qmax - state.values, 0.0)
        residual = jnp.max(jnp.abs(d))
        bound = residual_bound(state.rnd, mdp.discount, state.values, state.q, residual)
        greedy = jnp.argmax(state.q, -1).astype(jnp.int32)
        policy = jnp.where(state.stable, state.policy, greedy)
        return SolverResult(state.values, state.q, policy, residual, bound)
