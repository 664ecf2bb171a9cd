"""Gauss-Seidel value iteration (Puterman 1994, Sec. 6.3.3; pymdptoolbox `ValueIterationGS`).

One iteration is an in-place sweep over the states in index order: state s is backed up with
the freshest values, those of states < s already updated in this sweep:

    V(s) <- max_a [ r(s, a) + g sum_j p(j | s, a) V(j) ],    s = 0, 1, ..., S - 1.

Call the sweep G, so V_{k+1} = G V_k, and let pi_k be the actions chosen during that sweep.

Stopping rule (sup norm on the sweep difference, delta = max_s |V_{k+1}(s) - V_k(s)|):
stop when delta < tol (1 - g) / (2 g) (discount g < 1), or delta < tol at discount 1.

Why this gives the guarantee of value iteration (exact arithmetic, g < 1):
  - G is a g-contraction in the sup norm with fixed point V* (by induction over s, each
    updated entry differs by at most g times the largest difference of the entries it reads),
    so ||V_{k+1} - V*|| <= g ||V_k - V*|| <= g (delta + ||V_{k+1} - V*||), i.e.
    ||V_{k+1} - V*|| <= g delta / (1 - g) < tol / 2.
  - V_{k+1} = G_pi V_k for the Gauss-Seidel evaluation sweep G_pi of the sweep's policy
    pi = pi_k, a g-contraction with fixed point V^pi; the same argument gives
    ||V_{k+1} - V^pi|| <= g delta / (1 - g), hence ||V^pi - V*|| <= 2 g delta / (1 - g) < tol:
    the sweep's policy is tol-optimal, as in Puterman's Thm 6.3.1 for plain VI.
The returned values go through one ordinary (Jacobi) backup T of V_{k+1}, which is within
g * g delta / (1 - g) of V*; where Puterman's span bounds on d = T V_{k+1} - V_{k+1}
certify less, the midpoint correction of `_stopping` is applied instead (the smaller of the
two bounds is reported as `error_bound`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _bellman
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import SolverResult, check_tol, register_solver


class GSState(NamedTuple):
    values: jax.Array  # [S] V_k after k sweeps
    policy: jax.Array  # [S] int32 actions chosen during the last sweep
    stats: _stopping.DiffStats  # of V_k - V_{k-1}


@register_solver
class GaussSeidelValueIteration:
    """Gauss-Seidel value iteration (in-place sweeps over the states, in index order).

    Stopping rule (per MDP, g = discount, delta = max|V_{k+1} - V_k| over one sweep):
    `delta < tol * (1 - g) / (2 g)` for g < 1; `delta < tol` at discount 1.

    Guarantee (g < 1, exact arithmetic), the one of `ValueIteration`: returned `values` and
    `q_values` are within `tol / 2` of V*, Q* (sup norm), and `policy`, the actions chosen in
    the last sweep, is `tol`-optimal (proof in the module docstring: both the sweep and its
    policy's evaluation sweep are g-contractions in the sup norm). `error_bound` is the
    bound certified for `values` (the smaller of the contraction bound and Puterman's span
    bound from one Jacobi backup). At discount 1 no a-priori bound exists (`inf`).
    Float32: a `delta` at the resolution floor gives `Status.PRECISION_LIMITED`.

    Cost: one sweep is S sequential single-state backups (`lax.fori_loop`), so it trades
    parallelism for fewer sweeps; `num_iters` counts sweeps.

    Attributes:
      tol: accuracy target (> 0) in the sup norm.
    """

    tol: float = 1e-6

    def __post_init__(self):
        check_tol("tol", self.tol)

    def init(self, mdp, values0, ctx):
        policy = jnp.zeros(values0.shape, jnp.int32)
        return GSState(values0, policy, _stopping.initial_stats(values0.dtype))

    def step(self, mdp, state, ctx):
        def body(s, carry):
            v, pol = carry
            q = _bellman.state_q_values(mdp, s, v)
            return v.at[s].set(jnp.max(q)), pol.at[s].set(jnp.argmax(q).astype(jnp.int32))

        v, pol = lax.fori_loop(0, mdp.rewards.shape[0], body, (state.values, state.policy))
        return GSState(v, pol, _stopping.diff_stats(v, state.values))

    def status(self, mdp, state, ctx):
        return _stopping.status(state.stats, state.values, mdp.discount, self.tol, "sup")

    def result(self, mdp, state, ctx):
        g = mdp.discount
        below = g < 1
        delta = _stopping.statistic(state.stats, g, "sup")
        q = _bellman.q_values(mdp, state.values)
        tv = jnp.max(q, axis=-1)
        # ||T V_{k+1} - V*|| <= g ||V_{k+1} - V*|| <= g * g delta / (1 - g).
        bound_sup = jnp.where(below, g * g * delta / jnp.where(below, 1 - g, 1), jnp.inf)
        stats = _stopping.diff_stats(tv, state.values)
        values_span, q_span, bound_span = _stopping.corrected(stats, tv, q, g)
        use_span = bound_span < bound_sup
        values = jnp.where(use_span, values_span, tv)
        q = jnp.where(use_span, q_span, q)
        bound = jnp.minimum(bound_sup, bound_span)
        return SolverResult(values, q, state.policy, delta, bound)
