"""Safeguarded Anderson-accelerated value iteration (Anderson 1965; Walker & Ni 2011; for MDPs
Geist & Scherrer 2018, "Anderson Acceleration for Reinforcement Learning"; safeguard in the
spirit of Zhang, O'Donoghue & Boyd 2020).

Anderson mixing with memory m: from the last m accepted points x_i and their backups T x_i
(residuals f_i = T x_i - x_i), the next candidate is y = sum_i alpha_i T x_i with
alpha = argmin ||sum_i alpha_i f_i||_2 subject to sum_i alpha_i = 1 (a tiny m x m
regularised system). On an affine map (a fixed greedy policy) this is a Krylov method and
removes the slow modes of g P_pi that plain value iteration only shrinks by their eigenvalue
per sweep, which matters as the discount approaches 1.

Safeguard: every iteration performs exactly ONE Bellman backup, of the pending candidate y.
If its residual statistic (the span of T y - y; the sup norm at discount 1) is smaller than
the current point's, y is accepted; otherwise it is discarded and the next candidate is the
plain value-iteration step T x, which is always accepted. So the accepted points have strictly
decreasing residuals, and the cost is at most about two backups per VI step.

Certificate: the stopping test and the returned values use the current (accepted) point x and
its actual backup T x, exactly as `ValueIteration`: Puterman's bounds (Thm 6.6.6) hold for ANY
x, however it was produced, so the span rule, the correction and the guarantee of `_stopping`
apply unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmdp import _bellman
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import SolverResult, check_tol, register_solver


class AndersonState(NamedTuple):
    values: jax.Array  # [S] current accepted point x
    q: jax.Array  # [S, A] Q(x), so T x = max_a q
    stats: _stopping.DiffStats  # of T x - x
    xs: jax.Array  # [m, S] memory of accepted points (ring buffer)
    txs: jax.Array  # [m, S] their backups T x_i
    count: jax.Array  # [] int32 accepted points so far (the memory holds min(count, m))
    candidate: jax.Array  # [S] point whose backup the next step computes
    plain: jax.Array  # [] bool: the candidate is a plain VI step (accepted unconditionally)


def _mix(xs, txs, count, memory: int):
    """Anderson candidate `sum alpha_i T x_i`, alpha minimising ||sum alpha_i f_i||, sum = 1."""
    valid = jnp.arange(memory) < jnp.minimum(count, memory)
    f = txs - xs
    f = jnp.where(valid[:, None], f - jnp.mean(f, axis=-1, keepdims=True), 0.0)
    gram = jnp.dot(f, f.T, precision=jax.lax.Precision.HIGHEST)
    n = jnp.maximum(jnp.sum(valid), 1).astype(gram.dtype)
    scale = jnp.trace(gram) / n
    tiny = jnp.finfo(gram.dtype).tiny
    reg = jnp.sqrt(jnp.finfo(gram.dtype).eps) * scale + tiny
    pair = valid[:, None] & valid[None, :]
    m = jnp.where(pair, gram, 0.0) + jnp.diag(jnp.where(valid, reg, 1.0))
    alpha = jnp.linalg.solve(m, valid.astype(gram.dtype))
    alpha = alpha / jnp.sum(alpha)
    return jnp.dot(alpha, jnp.where(valid[:, None], txs, 0.0), precision=jax.lax.Precision.HIGHEST)


@register_solver(static=("memory",))
class AndersonValueIteration:
    """Value iteration with safeguarded Anderson acceleration, certified like `ValueIteration`.

    Each iteration backs up one candidate point (an Anderson extrapolation of the last
    `memory` accepted points, or a plain VI step after a rejected one) and accepts it only
    if its Bellman residual statistic decreased (module docstring).

    Stopping rule (per MDP, on the accepted point x with d = T x - x, g = discount):
    `max(d) - min(d) < tol * (1 - g) / g`, then return `T x + g / (1 - g) * (max d + min d) / 2`
    (Puterman's correction); at discount 1, `max|d| < tol` (no a-priori bound).

    Guarantee (g < 1, exact arithmetic), that of `ValueIteration` (Puterman's bounds hold for
    any x, the certificate comes from an actual backup of x): returned `values` and `q_values`
    are within `tol / 2` of V*, Q*, and `policy` (greedy w.r.t. x) is `tol`-optimal.
    `error_bound` reports the certified bound. `num_iters` counts Bellman backups (accepted or
    not), so it compares one-to-one with value iteration's sweeps. Float32: as
    `ValueIteration` (`Status.PRECISION_LIMITED` at the resolution floor).

    Attributes:
      tol: accuracy target (> 0) in the sup norm.
      memory: static number of past points mixed (>= 1).
    """

    tol: float = 1e-6
    memory: int = 5

    def __post_init__(self):
        check_tol("tol", self.tol)
        if not (isinstance(self.memory, int) and self.memory >= 1):
            raise ValueError(f"memory must be an int >= 1; got {self.memory!r}.")

    def init(self, mdp, values0, ctx):
        m, dtype = self.memory, values0.dtype
        return AndersonState(
            values=values0,
            q=jnp.zeros(mdp.rewards.shape, dtype),
            stats=_stopping.initial_stats(dtype),
            xs=jnp.zeros((m,) + values0.shape, dtype),
            txs=jnp.zeros((m,) + values0.shape, dtype),
            count=jnp.int32(0),
            candidate=values0,
            plain=jnp.asarray(True),
        )

    def step(self, mdp, state, ctx):
        g = mdp.discount
        y = state.candidate
        qy = _bellman.q_values(mdp, y)
        ty = jnp.max(qy, axis=-1)
        stats_y = _stopping.diff_stats(ty, y)
        better = _stopping.statistic(stats_y, g, "span") < _stopping.statistic(
            state.stats, g, "span"
        )
        accept = state.plain | better

        def pick(new, old):
            return jnp.where(accept, new, old)

        values, q = pick(y, state.values), pick(qy, state.q)
        stats = jax.tree.map(pick, stats_y, state.stats)
        slot = state.count % self.memory
        xs = pick(state.xs.at[slot].set(y), state.xs)
        txs = pick(state.txs.at[slot].set(ty), state.txs)
        count = state.count + accept.astype(jnp.int32)

        mixed = _mix(xs, txs, count, self.memory)
        vi_step = jnp.max(q, axis=-1)
        use_mix = accept & (count >= 2) & jnp.all(jnp.isfinite(mixed))
        candidate = jnp.where(use_mix, mixed, vi_step)
        return AndersonState(values, q, stats, xs, txs, count, candidate, ~use_mix)

    def status(self, mdp, state, ctx):
        tx = jnp.max(state.q, axis=-1)
        return _stopping.status(state.stats, tx, mdp.discount, self.tol, "span")

    def result(self, mdp, state, ctx):
        tx = jnp.max(state.q, axis=-1)
        values, q, bound = _stopping.corrected(state.stats, tx, state.q, mdp.discount)
        policy = jnp.argmax(state.q, axis=-1).astype(jnp.int32)
        residual = _stopping.statistic(state.stats, mdp.discount, "span")
        return SolverResult(values, q, policy, residual, bound)
