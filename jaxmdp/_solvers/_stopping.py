"""Shared stopping rule of the value-iteration family (VI, modified PI, ...).

Given any V and one Bellman backup TV with d = TV - V, for discount g < 1 and c = g / (1 - g)
(Puterman 1994, Thm 6.6.6 and Prop. 6.6.5):

    TV + c min(d) <= V* <= TV + c max(d),        the same for Q* with q = r + g P V,

and the policy greedy w.r.t. V (the one whose backup gave TV) has value >= TV + c min(d).
So returning TV + c (max d + min d) / 2 is within c span(d) / 2 of V* (sup norm), and that
policy is within c span(d) of optimal.

- rule "span" (default): stop when span(d) = max d - min d < tol (1 - g) / g; the returned
  values and Q are within tol / 2 of V*, Q* and the policy is tol-optimal. On mixing MDPs this
  needs a few sweeps where the sup-norm rule needs hundreds (span(d) contracts much faster
  than max|d|).
- rule "sup": stop when max|d| < tol (1 - g) / (2 g) (QuantEcon's rule); same guarantee (it
  implies the span test), usually many more sweeps. Kept for comparison.
- discount 1: stop when max|d| < tol. No a-priori bound exists (`error_bound = inf`); the
  values are V* where the iteration has reached its fixed point (typical for episodic problems
  whose policies all terminate).
- finite precision: rounding in T itself leaves a noise of a few ulp of max|V| in d, so a
  threshold below that only fires at an exact floating-point fixed point. The iteration stops
  when the statistic reaches 1 ulp of max|V|, or is within 16 ulp and has stopped decreasing
  for two sweeps (`stall`; solvers that do not track it use a fixed 4 ulp floor). If the tol
  test has not passed by then, and the bound reached is above what was asked, the status is
  PRECISION_LIMITED and `error_bound` reports the bound actually certified.
- `tol=None` (the solvers' default): aim for 1e-6, or, where the dtype cannot certify that
  (float32 values of large magnitude), for the tightest bound it can; both count as SUCCESS
  and `error_bound` says which was reached. An explicit `tol` is a promise: PRECISION_LIMITED
  when it cannot be kept.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmdp._solution import Status
from jaxmdp._solvers.base import RUNNING, reduce_states

RULES = ("span", "sup")
DEFAULT_TOL = 1e-6


class DiffStats(NamedTuple):
    dmax: jax.Array  # [] max_s (TV - V)
    dmin: jax.Array  # [] min_s (TV - V)
    stall: jax.Array | None = None  # [] int32 sweeps without decrease of the statistic


def diff_stats(
    new_values: jax.Array,
    values: jax.Array,
    axis=None,
    *,
    prev: DiffStats | None = None,
    discount=None,
    rule: str = "span",
) -> DiffStats:
    """Max and min of TV - V (over all axes, or over the state `axis` of a batched layout).

    With `prev` (the previous stats, tracking `stall`) and `discount`, also counts how many
    sweeps in a row the statistic has not decreased, which the precision test uses.
    """
    d = new_values - values
    out = DiffStats(reduce_states(d, jnp.maximum, axis), reduce_states(d, jnp.minimum, axis))
    if prev is None or prev.stall is None:
        return out
    no_progress = statistic(out, discount, rule) >= statistic(prev, discount, rule)
    return out._replace(stall=jnp.where(no_progress, prev.stall + 1, 0).astype(jnp.int32))


def initial_stats(dtype, shape=(), track_stall: bool = False) -> DiffStats:
    stall = jnp.zeros(shape, jnp.int32) if track_stall else None
    return DiffStats(jnp.full(shape, jnp.inf, dtype), jnp.full(shape, -jnp.inf, dtype), stall)


def _coef(discount):
    g = discount
    below = g < 1
    return below, jnp.where(below, g / jnp.where(below, 1 - g, 1), 0.0)


def statistic(stats: DiffStats, discount, rule: str) -> jax.Array:
    """The number the rule compares with its threshold (reported as `residual`)."""
    below, _ = _coef(discount)
    sup = jnp.maximum(jnp.abs(stats.dmax), jnp.abs(stats.dmin))
    if rule == "span":
        return jnp.where(below, stats.dmax - stats.dmin, sup)
    return sup


def status(stats: DiffStats, new_values: jax.Array, discount, tol, rule: str, axis=None):
    """int32 status code(s); `axis` is the state axis of a batched `new_values` layout.

    `tol=None` is the automatic mode described in the module docstring.
    """
    auto = tol is None
    tol = DEFAULT_TOL if auto else tol
    below, c = _coef(discount)
    g = discount
    stat = statistic(stats, discount, rule)
    one_minus = 1 - g
    if rule == "span":
        thr = jnp.where(below, tol * one_minus / g, tol)
    else:
        thr = jnp.where(below, tol * one_minus / (2 * g), tol)
    ok = stat < thr
    # One pass over the states gives both max|V| and finiteness (inf / nan propagate).
    mag = reduce_states(jnp.abs(new_values), jnp.maximum, axis)
    finite = jnp.isfinite(mag)
    ulp = jnp.finfo(new_values.dtype).eps * jnp.where(finite, mag, 0.0)
    if stats.stall is None:
        precision = stat <= 4 * ulp  # `resolution_floor`'s default
    else:
        precision = (stat <= ulp) | ((stat <= 16 * ulp) & (stats.stall >= 2))
    # At the floor, the promise may still hold (the bound is what counts, whatever the rule).
    kept = auto | (below & (c * (stats.dmax - stats.dmin) / 2 <= tol / 2))
    at_floor = jnp.where(kept, Status.SUCCESS, Status.PRECISION_LIMITED)
    code = jnp.where(ok, Status.SUCCESS, jnp.where(precision, at_floor, RUNNING))
    return jnp.where(finite, code, Status.NONFINITE).astype(jnp.int32)


def correction(stats: DiffStats, discount):
    """(shift, error_bound): TV + shift is the midpoint of Puterman's bounds (0 at discount 1)."""
    below, c = _coef(discount)
    span = stats.dmax - stats.dmin
    shift = jnp.where(below & jnp.isfinite(span), c * (stats.dmax + stats.dmin) / 2, 0.0)
    return shift, jnp.where(below, c * span / 2, jnp.inf)


def corrected(stats: DiffStats, new_values, q, discount):
    """(values, q, error_bound): the midpoint of Puterman's bounds (plain TV at discount 1)."""
    shift, bound = correction(stats, discount)
    return new_values + shift, q + shift, bound


def vi_result(stats: DiffStats, new_values, q, discount, rule: str):
    """The `SolverResult` of a value-iteration-family state (VI, modified PI, soft VI)."""
    from jaxmdp._solvers.base import SolverResult

    values, q_out, bound = corrected(stats, new_values, q, discount)
    policy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    return SolverResult(values, q_out, policy, statistic(stats, discount, rule), bound)
