"""Value iteration: V_{k+1} = T V_k from V_0 (zeros unless given), Puterman 1994, Sec. 6.3.

Stopping rule and guarantee: see `jaxmdp._solvers._stopping` (span rule with Puterman's
correction by default).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _bellman
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import check_choice, check_tol, register_solver


class VIState(NamedTuple):
    values: jax.Array  # [S] latest iterate V_k
    q: jax.Array  # [S, A] Q computed from V_{k-1}: V_k = max_a q
    stats: _stopping.DiffStats


@register_solver(static=("rule",))
class ValueIteration:
    """Value iteration with a certified stopping rule.

    Stopping rule (per MDP, d = V_{k+1} - V_k, g = discount):
      - `rule="span"` (default): stop when `max(d) - min(d) < tol * (1 - g) / g`, then return
        `V_{k+1} + g / (1 - g) * (max(d) + min(d)) / 2` (Puterman's correction).
      - `rule="sup"`: stop when `max|d| < tol * (1 - g) / (2 g)` (QuantEcon's rule), same
        correction.
      - discount 1: stop when `max|d| < tol` (no correction, no a-priori bound); once
        `min(d)` (or `-max(d)`) exceeds the rounding of d, the values provably grow without
        bound: `Status.UNBOUNDED`, with the gain interval in `residual` +- `error_bound`.

    Guarantee (g < 1, exact arithmetic): returned `values` and `q_values` are within `tol / 2`
    of V*, Q* in the sup norm, and `policy` is `tol`-optimal. `error_bound` reports the bound
    actually certified (`c * span(d) / 2`).

    Finite precision: `error_bound` also bounds the rounding of the computation (of each
    backup, about (K + 2) ulp of |r| + g max|V| for K successors per row, amplified by
    1 / (1 - g); derived in `jaxmdp._solvers._stopping`), so it is a true bound on the error
    for the data as given. An explicit `tol` below what the dtype can certify stops at the
    floor (the statistic at 1-16 ulp of max|V|, or within a quarter of the rounding part)
    with `Status.PRECISION_LIMITED` and the bound reached in `error_bound`, instead of
    looping to `max_iters` or claiming `tol`.

    Attributes:
      tol: accuracy target (> 0) in the sup norm, see above. `None` (default): 1e-6 where the
        dtype can certify it, else the tightest bound it can (status SUCCESS either way;
        `error_bound` tells which).
      rule: `"span"` or `"sup"` (static).
    """

    tol: float | None = None
    rule: str = "span"

    def __post_init__(self):
        check_tol("tol", self.tol, "ValueIteration")
        check_choice("ValueIteration", "rule", self.rule, _stopping.RULES)

    def init(self, mdp, values0, ctx):
        q = jnp.zeros(mdp.rewards.shape, values0.dtype)
        rnd = _stopping.rounding(mdp.transitions, mdp.rewards)
        return VIState(
            values0, q, _stopping.initial_stats(values0.dtype, track_stall=True, rnd=rnd)
        )

    def step(self, mdp, state, ctx):
        if ctx.single:
            # V = 0 exactly (the first sweep from the default start): Q = R, no pass over P
            # (one MDP of S=2048: one of four sweeps). Under vmap a cond computes both
            # branches, so batches skip the test.
            zero = jnp.all(state.values == 0)
            r = jnp.asarray(mdp.rewards, state.q.dtype)
            q = lax.cond(zero, lambda: r, lambda: _bellman.q_values(mdp, state.values))
        else:
            q = _bellman.q_values(mdp, state.values)
        new = jnp.max(q, axis=-1)
        return VIState(
            new,
            q,
            _stopping.diff_stats(
                new, state.values, prev=state.stats, discount=mdp.discount, rule=self.rule
            ),
        )

    def status(self, mdp, state, ctx):
        return _stopping.status(state.stats, state.values, mdp.discount, self.tol, self.rule)

    def result(self, mdp, state, ctx):
        return _stopping.vi_result(state.stats, state.values, state.q, mdp.discount, self.rule)
