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
- finite precision: if the statistic falls to the dtype's resolution (`resolution_floor`)
  before the tol test passes, stop with PRECISION_LIMITED: further sweeps only shuffle rounding
  noise, and `error_bound` reports the bound actually reached.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmdp._solution import Status
from jaxmdp._solvers.base import RUNNING, resolution_floor

RULES = ("span", "sup")


class DiffStats(NamedTuple):
    dmax: jax.Array  # [] max_s (TV - V)
    dmin: jax.Array  # [] min_s (TV - V)


def diff_stats(new_values: jax.Array, values: jax.Array, axis=None) -> DiffStats:
    """Max and min of TV - V (over all axes, or over the state `axis` of a batched layout)."""
    d = new_values - values
    return DiffStats(jnp.max(d, axis=axis), jnp.min(d, axis=axis))


def initial_stats(dtype) -> DiffStats:
    return DiffStats(jnp.asarray(jnp.inf, dtype), jnp.asarray(-jnp.inf, dtype))


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
    """int32 status code(s); `axis` is the state axis of a batched `new_values` layout."""
    below, _ = _coef(discount)
    g = discount
    stat = statistic(stats, discount, rule)
    one_minus = 1 - g
    if rule == "span":
        thr = jnp.where(below, tol * one_minus / g, tol)
    else:
        thr = jnp.where(below, tol * one_minus / (2 * g), tol)
    ok = stat < thr
    precision = stat <= resolution_floor(new_values, axis=axis)
    finite = jnp.all(jnp.isfinite(new_values), axis=axis)
    code = jnp.where(ok, Status.SUCCESS, jnp.where(precision, Status.PRECISION_LIMITED, RUNNING))
    return jnp.where(finite, code, Status.NONFINITE).astype(jnp.int32)


def corrected(stats: DiffStats, new_values, q, discount):
    """(values, q, error_bound): the midpoint of Puterman's bounds (plain TV at discount 1)."""
    below, c = _coef(discount)
    span = stats.dmax - stats.dmin
    shift = jnp.where(below & jnp.isfinite(span), c * (stats.dmax + stats.dmin) / 2, 0.0)
    bound = jnp.where(below, c * span / 2, jnp.inf)
    return new_values + shift, q + shift, bound
