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
from jaxmdp import _operators as ops
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import check_choice, check_tol, register_solver


class VIState(NamedTuple):
    values: jax.Array  # [S] latest iterate V_k
    q: jax.Array | None  # [S, A] Q computed from V_{k-1}: V_k = max_a q (None: `prev`)
    stats: _stopping.DiffStats
    prev: jax.Array | None = None  # [S] V_{k-1}, carried instead of Q (`_fused_backup`)


def _fused_backup(mdp, ctx) -> bool:
    """One sparse MDP: each sweep computes V_k = max_a Q in one pass over the successor
    lists and never writes Q; `result` computes Q once from the carried V_{k-1}.

    Carrying Q cost a write and a read of an `[S, A]` array per sweep and a separate
    reduce over actions (XLA:CPU does not fuse a reduce with its producer). The backup
    sits in a `lax.cond` (the zero-start branch), whose result XLA materialises: outside
    one, the difference and statistics that consume V_k pulled the backup into their own
    fusions, and XLA then wrote the K gathers out as arrays. Batches (`vmap` turns the
    cond into a select) and the dense form keep carrying Q.

    The certificate is unchanged: the Q bound of `_stopping` holds for any computed
    `r + g P V` of the same V_{k-1} (fact 1 bounds each entry's rounding, whatever program
    computes it), and so does the greedy policy's; `values` are the loop's V_k.
    """
    return bool(ctx.single) and ops.form(mdp.transitions) == "sparse"


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
    1 / (1 - g)), so it is a true bound on the error
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
        rnd = _stopping.rounding(mdp.transitions, mdp.rewards)
        stats = _stopping.initial_stats(values0.dtype, track_stall=True, rnd=rnd)
        if _fused_backup(mdp, ctx):
            return VIState(values0, None, stats, values0)
        return VIState(values0, jnp.zeros(mdp.rewards.shape, values0.dtype), stats)

    def step(self, mdp, state, ctx):
        values = state.values
        stats = lambda new: _stopping.diff_stats(  # noqa: E731
            new, values, prev=state.stats, discount=mdp.discount, rule=self.rule
        )
        if not ctx.single:
            q = _bellman.q_values(mdp, values)
            new = jnp.max(q, axis=-1)
            return VIState(new, q, stats(new))
        # V = 0 exactly (the first sweep from the default start): Q = R, no pass over P
        # (one MDP of S=2048: one of four sweeps). Under vmap a cond computes both
        # branches, so batches skip the test. Only the first sweep (statistics still at
        # their initial inf) tests V, so later sweeps make no pass over V for it; a V that
        # becomes 0 later takes the other branch, whose result is then R exactly too.
        first = state.stats.dmax == jnp.inf
        zero = lax.cond(first, lambda: jnp.all(values == 0), lambda: jnp.bool_(False))
        r = jnp.asarray(mdp.rewards, values.dtype)
        if state.q is None:  # `_fused_backup`
            new = lax.cond(
                zero, lambda: _bellman.max_actions(r), lambda: _bellman.backup_values(mdp, values)
            )
            return VIState(new, None, stats(new), values)
        q = lax.cond(zero, lambda: r, lambda: _bellman.q_values(mdp, values))
        new = jnp.max(q, axis=-1)
        return VIState(new, q, stats(new))

    def status(self, mdp, state, ctx):
        return _stopping.status(state.stats, state.values, mdp.discount, self.tol, self.rule)

    def result(self, mdp, state, ctx):
        q = state.q
        if q is None:  # `_fused_backup`: Q of the last sweep, from the V it backed up
            # In a `lax.cond` too (Q = R when that V is 0, as in `step`): the conditional's
            # result is one array, whereas a bare Q was fused into both of its consumers
            # (the shifted output, the argmax) and XLA wrote its K gathers out as three
            # more `[S, A]` temporaries (tests/test_sparse_memory.py).
            prev = state.prev
            r = jnp.asarray(mdp.rewards, prev.dtype)

            def greedy(q):
                return q, jnp.argmax(q, axis=-1).astype(jnp.int32)

            q, policy = lax.cond(
                jnp.all(prev == 0), lambda: greedy(r), lambda: greedy(_bellman.q_values(mdp, prev))
            )
            return _stopping.vi_result(
                state.stats, state.values, q, mdp.discount, self.rule, policy=policy
            )
        return _stopping.vi_result(state.stats, state.values, q, mdp.discount, self.rule)
