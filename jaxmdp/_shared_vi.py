"""Value iteration over a batch that shares one `transitions` array: the sweep fast path.

Same algorithm, stopping rule and per-member results as `ValueIteration` on each member
(`jaxmdp._solvers._stopping`), laid out for the hardware instead of through `vmap`:

- batch axis LAST (`values [S, B]`, `Q [A, S, B]`), actions outermost, so the backup is one
  `[A*S, S] x [S, B]` matrix-matrix product and the max over actions is an elementwise max of
  A contiguous slabs (a reduction over a short innermost axis is what made vmap slow);
- sparse structure of the shared P used when it has few successors per (s, a) (gridworlds:
  1 to 3): `P V` becomes a gather of K rows of V, O(K) instead of O(S) per entry;
- the first sweep from V0 = 0 needs no product (Q = R);
- converged members freeze (their values, statistics and counts stop changing), exactly as
  in their own solve.

The driver uses it only for `ValueIteration` with an unbatched `transitions`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmdp._bellman import _PRECISION
from jaxmdp._solution import Solution, Status
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import RUNNING

# Use the gather form when every (s, a) has at most this fraction of S successors.
_SPARSE_FRACTION = 0.25


class SharedP(NamedTuple):
    """A shared transitions array in the layout the batched backup wants.

    Dense: `dense [A*S, S]` (actions outermost). Sparse: `succ [A, S, K]` int32 successor
    indices and `prob [A, S, K]` (zero-padded); `dense` is then None.
    """

    dense: jax.Array | None
    succ: jax.Array | None
    prob: jax.Array | None


def prepare_shared(transitions) -> SharedP:
    """Choose the layout. Structure is only read when `transitions` is concrete."""
    S, A, _ = transitions.shape
    if not isinstance(transitions, jax.core.Tracer):
        P = np.asarray(transitions)
        nnz = (P != 0).sum(-1)
        K = int(nnz.max()) if nnz.size else 0
        if 0 < K <= max(1, int(_SPARSE_FRACTION * S)):
            # Row-wise stable sort puts the nonzeros first; keep K of them.
            order = np.argsort(P == 0, axis=-1, kind="stable")[..., :K]
            prob = np.take_along_axis(P, order, axis=-1)
            succ = order.astype(np.int32)
            return SharedP(
                None,
                jnp.asarray(np.transpose(succ, (1, 0, 2))),
                jnp.asarray(np.transpose(prob, (1, 0, 2))),
            )
    dense = jnp.reshape(jnp.transpose(jnp.asarray(transitions), (1, 0, 2)), (A * S, S))
    return SharedP(dense, None, None)


def _expected(p: SharedP, values, num_actions: int):
    """`[A, S, B]` sum_s' p(s' | s, a) V(s', b) for `values [S, B]`."""
    if p.dense is not None:
        S = values.shape[0]
        out = jnp.dot(p.dense, values, precision=_PRECISION)
        return out.reshape(num_actions, S, values.shape[1])
    K = p.succ.shape[-1]
    if K == 1:
        gathered = values[p.succ[..., 0]]  # [A, S, B]
        return gathered * p.prob[..., 0, None]
    gathered = values[p.succ]  # [A, S, K, B]
    return jnp.einsum("askb,ask->asb", gathered, p.prob, precision=_PRECISION)


class _Carry(NamedTuple):
    prev: jax.Array  # [S, B] V_{k-1}: the Q of the result is computed from it
    values: jax.Array  # [S, B] V_k
    stats: _stopping.DiffStats  # [B] each
    it: jax.Array  # [B] int32
    code: jax.Array  # [B] int32


@functools.partial(jax.jit, static_argnames=("rule", "max_iters", "zero_start", "auto_tol"))
def solve_shared_vi(
    p: SharedP, rewards_t, discount, values0, tol, *, rule, max_iters, zero_start, auto_tol
):
    """Batched VI. `rewards_t [A, S, B]`, `discount [B]`, `values0 [S, B]` -> Solution [B].

    `auto_tol`: the solver's `tol=None` mode (then `tol` is ignored).
    """
    tol = None if auto_tol else tol
    A, S, B = rewards_t.shape
    dtype = rewards_t.dtype
    g = discount
    invalid = ~((g >= 0) & (g <= 1))

    def backup(v):
        q = rewards_t + g * _expected(p, v, A)
        return jnp.max(q, axis=0)

    def advance(c: _Carry, new):
        stats = _stopping.diff_stats(new, c.values, axis=0, prev=c.stats, discount=g, rule=rule)
        code = _stopping.status(stats, new, g, tol, rule, axis=0)
        active = c.code == RUNNING
        keep = active[None, :]
        return _Carry(
            prev=jnp.where(keep, c.values, c.prev),
            values=jnp.where(keep, new, c.values),
            stats=jax.tree.map(lambda a, b: jnp.where(active, a, b), stats, c.stats),
            it=c.it + active.astype(jnp.int32),
            code=jnp.where(active, code, c.code),
        )

    start_code = jnp.where(invalid, Status.INVALID_INPUT, RUNNING).astype(jnp.int32)
    stats0 = _stopping.initial_stats(dtype, (B,), track_stall=True)
    c = _Carry(values0, values0, stats0, jnp.zeros((B,), jnp.int32), start_code)
    if zero_start:  # T(0) = max_a R: no product needed
        c = advance(c, jnp.max(rewards_t, axis=0))

    def cond(c):
        return jnp.any((c.code == RUNNING) & (c.it < max_iters))

    def body(c):
        return advance(c, backup(c.values))

    c = lax.while_loop(cond, body, c)
    code = jnp.where(c.code == RUNNING, Status.MAX_ITERATIONS, c.code).astype(jnp.int32)
    q = rewards_t + g * _expected(p, c.prev, A)
    stats = c.stats
    values, q, bound = _stopping.corrected(stats, c.values, q, g)
    policy = jnp.argmax(q, axis=0).astype(jnp.int32)
    return Solution(
        values=values.T,
        q_values=jnp.transpose(q, (2, 1, 0)),
        policy=policy.T,
        status=code,
        num_iters=c.it,
        residual=_stopping.statistic(stats, g, rule),
        error_bound=bound,
    )
