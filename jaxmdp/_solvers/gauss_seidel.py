"""Gauss-Seidel value iteration (Puterman 1994, Sec. 6.3.3; pymdptoolbox `ValueIterationGS`).

One iteration is an in-place sweep over the states in index order: state s is backed up with
the freshest values, those of states < s already updated in this sweep:

    V(s) <- max_a [ r(s, a) + g sum_j p(j | s, a) V(j) ],    s = 0, 1, ..., S - 1.

Call the sweep G, so V_{k+1} = G V_k, and let pi_k be the actions chosen during that sweep.

Stopping rule (sup norm on the sweep difference, delta = max_s |V_{k+1}(s) - V_k(s)|):
stop when the certified bound on ||V_{k+1} - V*|| is below tol / 2, in exact arithmetic
g delta / (1 - g) < tol / 2, i.e. delta < tol (1 - g) / (2 g) (discount g < 1; the rounding
terms are derived in `_sweep_certificate`), or delta < tol at discount 1.

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


def _sweep_certificate(stats: _stopping.DiffStats, values, discount):
    """Certificates from one computed sweep V' = `values`, with V' - V in `stats`.

    Returns `(bound, dist, dist_rounding, eta, mag)`: `bound` for the returned values (one
    Jacobi backup of V'), `dist` for ||V' - V*|| (what the stop test and the policy's promise
    use: the sweep's policy is within 2 dist of optimal), `dist_rounding` the part of `dist`
    no further sweep removes, `eta` the divergence test's margin at discount 1, `mag` max|V'|.

    Rounding (notation of `_stopping`): state s is backed up from the mixed vector of V' (the
    states before s) and V (the rest), max-norm <= M = max|V'| + delta, so its computed value
    is within rho = `backup_error(M)` of the exact T~ applied to that vector. By induction over
    s, |V'_s - V~*_s| <= g max(||V' - V~*||, ||V - V~*||) + rho, hence
    E' = ||V' - V~*|| <= (g delta + rho) / (1 - g) with delta the exact sweep difference
    (<= delta^ / (1 - u)). The returned values are one computed Jacobi backup of V', within
    rho_W + g E' of V~* (Q likewise), then the data term of `_stopping`. At discount 1 the
    same induction gives |V' - G~ V| <= S rho: `eta` for the divergence test.
    """
    rnd = stats.rnd
    assert rnd is not None  # `init` attaches the rounding constants
    dtype = values.dtype
    u = float(jnp.finfo(dtype).eps) / 2
    g = jnp.asarray(discount, dtype)
    below = g < 1
    one_minus = jnp.where(below, 1 - g, 1)
    mag = jnp.max(jnp.abs(values))
    delta = jnp.maximum(jnp.abs(stats.dmax), jnp.abs(stats.dmin))
    rho_gs = _stopping.backup_error(rnd, g, mag + delta * (1 + 2 * u))
    rho_w = _stopping.backup_error(rnd, g, mag)
    dist = (g * delta / (1 - u) + rho_gs) / one_minus
    m_out = jnp.maximum((rnd.r_max + g * rnd.p_abs * mag) * (1 + rnd.gamma), mag)
    core = rho_w + g * dist
    fp = _stopping.data_term(rnd, g, m_out, dist)  # dist >= core: covers both
    scale = 1 + 16 * u
    bound = jnp.where(below, (core + fp) * scale, jnp.inf)
    dist_total = jnp.where(below, (dist + fp) * scale, jnp.inf)
    rest = jnp.where(below, (rho_gs / one_minus + fp) * scale, jnp.inf)
    eta = values.shape[-1] * rho_gs + u * delta / (1 - u)
    return bound, dist_total, rest, eta, mag


@register_solver
class GaussSeidelValueIteration:
    """Gauss-Seidel value iteration (in-place sweeps over the states, in index order).

    Stopping rule (per MDP, g = discount, delta = max|V_{k+1} - V_k| over one sweep): the
    certified bound on ||V_{k+1} - V*||, `(g delta + rho) / (1 - g)` plus the data term (rho:
    the rounding of a sweep, see `_sweep_certificate`; in exact arithmetic
    `g delta / (1 - g)`), below `tol / 2` for g < 1; `delta < tol` at discount 1 (and
    `Status.UNBOUNDED` once the values provably grow without bound, as `ValueIteration`).

    Guarantee (g < 1): returned `values` and `q_values` are within `tol / 2` of V*, Q* (sup
    norm), and `policy`, the actions chosen in the last sweep, is `tol`-optimal (proof in the
    module docstring: both the sweep and its policy's evaluation sweep are g-contractions in
    the sup norm). `error_bound` is the bound certified for `values`, rounding included (the
    smaller of the sweep's contraction bound and Puterman's span bound from one Jacobi
    backup). At discount 1 no a-priori bound exists (`inf`).
    Float32: `tol=None` accepts the tightest bound the dtype certifies; an explicit `tol`
    below it gives `Status.PRECISION_LIMITED`.

    Cost: one sweep is S sequential single-state backups (`lax.fori_loop`), so it trades
    parallelism for fewer sweeps; `num_iters` counts sweeps.

    Attributes:
      tol: accuracy target (> 0) in the sup norm; `None` (default) as in `ValueIteration`
        (1e-6 where the dtype can certify it, else the tightest bound it can).
    """

    tol: float | None = None

    def __post_init__(self):
        check_tol("tol", self.tol, "GaussSeidelValueIteration")

    def init(self, mdp, values0, ctx):
        policy = jnp.zeros(values0.shape, jnp.int32)
        rnd = _stopping.rounding(mdp.transitions, mdp.rewards)
        stats = _stopping.initial_stats(values0.dtype, track_stall=True, rnd=rnd)
        return GSState(values0, policy, stats)

    def step(self, mdp, state, ctx):
        def body(s, carry):
            v, pol = carry
            q = _bellman.state_q_values(mdp, s, v)
            return v.at[s].set(jnp.max(q)), pol.at[s].set(jnp.argmax(q).astype(jnp.int32))

        v, pol = lax.fori_loop(0, mdp.rewards.shape[0], body, (state.values, state.policy))
        stats = _stopping.diff_stats(
            v, state.values, prev=state.stats, discount=mdp.discount, rule="sup"
        )
        return GSState(v, pol, stats)

    def status(self, mdp, state, ctx):
        g = mdp.discount
        auto = self.tol is None
        tol = _stopping.DEFAULT_TOL if auto else self.tol
        _, dist, rest, eta, mag = _sweep_certificate(state.stats, state.values, g)
        delta = _stopping.statistic(state.stats, g, "sup")
        below, c = _stopping._coef(g)
        half = jnp.asarray(tol, dist.dtype) / 2
        ok = jnp.where(below, dist < half, delta < tol)
        finite = jnp.isfinite(mag)
        ulp = jnp.finfo(dist.dtype).eps * jnp.where(finite, mag, 0.0)
        # the worst-case rounding part ends the loop only after the exact-arithmetic test
        # (as in `_stopping.status`)
        # A float32 sweep can also cycle a few ulp above the fixed floor (two values of a
        # state alternating): <= 16 ulp without progress for two sweeps is the floor too,
        # as in `_stopping.status` (it ran to max_iters before).
        stalled = (delta <= 16 * ulp) & (state.stats.stall >= 2)
        floor = (delta <= 4 * ulp) | stalled
        floor = floor | (below & (c * delta <= rest / 4) & (c * delta < half))
        at_one = g >= 1
        runs_off = at_one & ((state.stats.dmin - eta > 0) | (state.stats.dmax + eta < 0))
        return _stopping.code(ok, floor, auto | (dist <= half), runs_off, finite)

    def result(self, mdp, state, ctx):
        g = mdp.discount
        delta = _stopping.statistic(state.stats, g, "sup")
        q = _bellman.q_values(mdp, state.values)
        tv = jnp.max(q, axis=-1)
        bound_sup, _, _, eta, _ = _sweep_certificate(state.stats, state.values, g)
        stats = _stopping.diff_stats(tv, state.values, prev=state.stats, discount=g, rule="sup")
        shift, bound_span, _ = _stopping.report(stats, tv, g, "span")
        use_span = bound_span < bound_sup
        values = jnp.where(use_span, tv + shift, tv)
        q = jnp.where(use_span, q + shift, q)
        bound = jnp.minimum(bound_sup, bound_span)
        # At discount 1 a member whose sweeps provably run off reports its gain interval
        # (`_stopping.report`), from the sweep differences.
        s = state.stats
        runs_off = (g >= 1) & ((s.dmin - eta > 0) | (s.dmax + eta < 0))
        u = float(jnp.finfo(bound.dtype).eps) / 2
        gain = (s.dmax + s.dmin) / 2
        half = ((s.dmax - s.dmin) / 2 + eta + u * jnp.abs(gain)) * (1 + 8 * u)
        residual = jnp.where(runs_off, gain, delta)
        bound = jnp.where(runs_off, half, bound)
        return SolverResult(values, q, state.policy, residual, _stopping.round_up(bound))
