"""Safeguarded Anderson-accelerated value iteration (Anderson 1965; Walker & Ni 2011; for MDPs
Geist & Scherrer 2018, "Anderson Acceleration for Reinforcement Learning"; safeguard in the
spirit of Zhang, O'Donoghue & Boyd 2020).

Anderson mixing with memory m: from the last m accepted points x_i and their backups T x_i
(residuals f_i = T x_i - x_i), the next candidate is y = sum_i alpha_i T x_i with
alpha = argmin ||sum_i alpha_i c(f_i)||_2 subject to sum_i alpha_i = 1 (a tiny m x m
regularised system), where c(f) = f - mean(f) removes the constant component. The constant
direction is the slowest mode of T (T(V + c) = T V + g c) but it is invisible to the span
rule and fixed exactly by Puterman's correction; minimising the centred residuals spends the
memory on the modes the span rule does see (measured: without centring, more iterations than
plain VI on dense random MDPs). On an affine map (a fixed greedy policy) this is a Krylov
method and removes the slow modes of g P_pi that plain value iteration only shrinks by their
eigenvalue per sweep: it pays on slowly mixing MDPs, not on fast-mixing ones where the span
rule already stops VI within a few sweeps (benchmarks/results/acceleration.md).

Safeguard: every iteration performs exactly ONE Bellman backup, of the pending candidate y.
If its residual statistic (the span of T y - y; the sup norm at discount 1) is smaller than
the current point's, y is accepted; otherwise it is discarded and the next candidate is the
plain value-iteration step T x, which is always accepted. So the residual statistic of the
accepted points never increases (a VI step contracts the span by at least the factor g, and
never increases the sup norm at discount 1), and in the worst case, every candidate rejected,
the iteration is value iteration plus one wasted backup per attempt; attempts back off
exponentially while they keep failing (after a rejection the next 1, 2, 4, ... up to 256
steps are plain), so the waste is logarithmic in the iteration count rather than one backup
in two.

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
from jaxmdp._solvers.base import check_int, check_tol, register_solver

_HIGHEST = jax.lax.Precision.HIGHEST
_MAX_WAIT = 256
_UNROLL_MAX = 6  # the unrolled solve's n^3 / 3 operations compile slowly beyond this


class AndersonState(NamedTuple):
    values: jax.Array  # [S] current accepted point x
    q: jax.Array  # [S, A] Q(x), so T x = max_a q
    stats: _stopping.DiffStats  # of T x - x
    xs: jax.Array  # [m, S] memory of accepted points (ring buffer)
    txs: jax.Array  # [m, S] their backups T x_i
    candidate: jax.Array  # [S] point whose backup the next step computes
    # [4] int32, packed because every leaf a batched while loop carries costs a copy and a
    # select kernel per iteration (measured: ~1 us each, as much as a small backup):
    # COUNT accepted points so far (the memory holds min(count, m)); PLAIN 1 if the candidate
    # is a plain VI step (accepted unconditionally); WAIT plain steps still to take before the
    # next mixing attempt; PENALTY the wait the next rejection imposes (doubles, resets).
    counters: jax.Array


COUNT, PLAIN, WAIT, PENALTY = range(4)


def _solve_spd_unrolled(m: jax.Array, b: jax.Array) -> jax.Array:
    """Solve the small symmetric positive definite system `m x = b` (static size, unrolled).

    Gaussian elimination without pivoting (stable for SPD matrices), written out in scalar
    operations: XLA fuses them into a few elementwise kernels, which under `vmap` costs far
    less than a batched LAPACK call on a 5 x 5 system every iteration. Rounds identically
    batched and alone (each scalar is its own array), so a member equals its own solve bit
    for bit; its code grows as n^3 / 3 operations, hence only for small n.
    """
    n = m.shape[-1]
    a = [[m[i, j] for j in range(n)] for i in range(n)]
    r = [b[i] for i in range(n)]
    for k in range(n):
        for i in range(k + 1, n):
            f = a[i][k] / a[k][k]
            for j in range(k + 1, n):
                a[i][j] = a[i][j] - f * a[k][j]
            r[i] = r[i] - f * r[k]
    x = [None] * n
    for i in reversed(range(n)):
        acc = r[i]
        for j in range(i + 1, n):
            acc = acc - a[i][j] * x[j]
        x[i] = acc / a[i][i]
    return jnp.stack(x)


def _solve_spd_rows(m: jax.Array, b: jax.Array) -> jax.Array:
    """`m x = b` for larger n: Gauss-Jordan on the rows of the augmented `[n, n + 1]` matrix.

    O(n) array operations instead of O(n^3) scalar ones, so compiling stays quick. XLA groups
    these row updates into kernels differently batched and alone, and where a multiply and a
    subtract share a kernel they may become one fused multiply-add: a member can then differ
    from its own solve in the last bits (measured), which the unrolled form never does.
    """
    n = m.shape[-1]
    rows = [jnp.concatenate([m[i], b[i : i + 1]]) for i in range(n)]
    for k in range(n):
        pivot = rows[k] / rows[k][k]
        rows = [pivot if i == k else rows[i] - rows[i][k] * pivot for i in range(n)]
    return jnp.stack([r[n] for r in rows])


def _sum_last(x: jax.Array) -> jax.Array:
    """Sum over the last axis as a dot product: under `vmap` XLA keeps a dot's summation order,
    while a reduction may change it (a batch member then rounds like its own solve where XLA
    allows; only agreement within rounding is promised)."""
    return jnp.dot(x, jnp.ones(x.shape[-1], x.dtype), precision=_HIGHEST)


def _mix(xs, txs, count, memory: int):
    """Anderson candidate `sum alpha_i T x_i`, alpha minimising ||sum alpha_i c(f_i)||, sum 1."""
    valid = jnp.arange(memory) < jnp.minimum(count, memory)
    f = txs - xs
    f = jnp.where(valid[:, None], f - (_sum_last(f) / f.shape[-1])[:, None], 0.0)
    gram = jnp.dot(f, f.T, precision=_HIGHEST)
    n = jnp.maximum(jnp.sum(valid), 1).astype(gram.dtype)
    scale = _sum_last(jnp.diagonal(gram)) / n
    tiny = jnp.finfo(gram.dtype).tiny
    reg = jnp.sqrt(jnp.finfo(gram.dtype).eps) * scale + tiny
    pair = valid[:, None] & valid[None, :]
    m = jnp.where(pair, gram, 0.0) + jnp.diag(jnp.where(valid, reg, 1.0))
    rhs = valid.astype(gram.dtype)
    # Neither form calls LAPACK, whose concurrent calls deadlocked XLA:CPU (jax 0.10.2), so
    # the solver runs on the driver's host threads.
    alpha = _solve_spd_unrolled(m, rhs) if memory <= _UNROLL_MAX else _solve_spd_rows(m, rhs)
    alpha = alpha / _sum_last(alpha)
    return jnp.dot(alpha, jnp.where(valid[:, None], txs, 0.0), precision=_HIGHEST)


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

    Batches: a batch member's result agrees with its own solve's within rounding, as for
    every solver; an accept decision that sits on a tie up to rounding may then go the other
    way (another iteration count, the same status and guarantee).

    Attributes:
      tol: accuracy target (> 0) in the sup norm; `None` (default) as in `ValueIteration`
        (1e-6 where the dtype can certify it, else the tightest bound it can).
      memory: static number of past points mixed (>= 1).
    """

    tol: float | None = None
    memory: int = 5

    def __post_init__(self):
        check_tol("tol", self.tol, "AndersonValueIteration")
        m = check_int("AndersonValueIteration", "memory", self.memory, 1)
        object.__setattr__(self, "memory", m)  # a NumPy int becomes a Python int

    def init(self, mdp, values0, ctx):
        m, dtype = self.memory, values0.dtype
        return AndersonState(
            values=values0,
            q=jnp.zeros(mdp.rewards.shape, dtype),
            stats=_stopping.initial_stats(
                dtype, rnd=_stopping.rounding(mdp.transitions, mdp.rewards)
            ),
            xs=jnp.zeros((m,) + values0.shape, dtype),
            txs=jnp.zeros((m,) + values0.shape, dtype),
            candidate=values0,
            counters=jnp.array([0, 1, 0, 1], jnp.int32),
        )

    def step(self, mdp, state, ctx):
        g = mdp.discount
        y = state.candidate
        count, plain, wait, penalty = (state.counters[i] for i in (COUNT, PLAIN, WAIT, PENALTY))
        qy = _bellman.q_values(mdp, y)
        ty = jnp.max(qy, axis=-1)
        stats_y = _stopping.diff_stats(ty, y, prev=state.stats)
        better = _stopping.statistic(stats_y, g, "span") < _stopping.statistic(
            state.stats, g, "span"
        )
        accept = (plain == 1) | better

        def pick(new, old):
            return jnp.where(accept, new, old)

        values, q = pick(y, state.values), pick(qy, state.q)
        stats = jax.tree.map(pick, stats_y, state.stats)
        slot = count % self.memory
        # Write one row in place (a select of whole buffers would copy the memory each step).
        xs = state.xs.at[slot].set(pick(y, state.xs[slot]))
        txs = state.txs.at[slot].set(pick(ty, state.txs[slot]))
        count = count + accept.astype(jnp.int32)

        # Back-off: each rejection in a row doubles the plain steps before the next attempt
        # (1, 2, 4, ... up to _MAX_WAIT); an accepted extrapolation resets it. Without it an
        # MDP where extrapolation keeps failing (periodic chains) paid a wasted backup every
        # other sweep: twice value iteration's count.
        rejected = ~accept
        wait = jnp.where(rejected, penalty, jnp.maximum(wait - 1, 0))
        penalty = jnp.where(
            rejected, jnp.minimum(2 * penalty, _MAX_WAIT), jnp.where(plain == 1, penalty, 1)
        )
        mixed = _mix(xs, txs, count, self.memory)
        vi_step = jnp.max(q, axis=-1)
        use_mix = accept & (count >= 2) & (wait == 0) & jnp.all(jnp.isfinite(mixed))
        candidate = jnp.where(use_mix, mixed, vi_step)
        counters = jnp.stack([count, (~use_mix).astype(jnp.int32), wait, penalty])
        return AndersonState(values, q, stats, xs, txs, candidate, counters)

    def status(self, mdp, state, ctx):
        tx = jnp.max(state.q, axis=-1)
        return _stopping.status(state.stats, tx, mdp.discount, self.tol, "span")

    def result(self, mdp, state, ctx):
        tx = jnp.max(state.q, axis=-1)
        return _stopping.vi_result(state.stats, tx, state.q, mdp.discount, "span")
