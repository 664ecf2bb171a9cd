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

import dataclasses
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
# Up to this many (a, s, successor) entries, the successor indices are compiled in as static
# row slices: XLA:CPU's generic gather and its dot at skinny shapes ([44, 11] x [11, 10^4] for
# the lecture world) run 8x slower than a fused loop over static slices.
_STATIC_ROWS = 2048


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["dense", "succ", "prob"],
    meta_fields=["static_succ", "unit_prob"],
)
@dataclasses.dataclass(frozen=True)
class SharedP:
    """A shared transitions array in the layout the batched backup wants.

    Dense: `dense [A*S, S]` (actions outermost). Sparse: `succ [A, S, K]` int32 successor
    indices and `prob [A, S, K]` (zero-padded). Small sparse structures also carry the indices
    as a static tuple (`static_succ`, flattened [A, S, K]); `unit_prob` marks deterministic
    transitions (K = 1, probability 1), which need no multiply.
    """

    dense: jax.Array | None
    succ: jax.Array | None
    prob: jax.Array | None
    static_succ: tuple | None = None
    unit_prob: bool = False


def prepare_shared(transitions) -> SharedP:
    """Choose the layout. Structure is only read when `transitions` is concrete.

    A new sparsity structure (not new probabilities) recompiles the static form.
    """
    S, A, _ = transitions.shape
    if not isinstance(transitions, jax.core.Tracer):
        P = np.asarray(transitions)
        nnz = (P != 0).sum(-1)
        K = int(nnz.max()) if nnz.size else 0
        if 0 < K <= max(1, int(_SPARSE_FRACTION * S)):
            # Row-wise stable sort puts the nonzeros first; keep K of them.
            order = np.argsort(P == 0, axis=-1, kind="stable")[..., :K]
            prob = np.transpose(np.take_along_axis(P, order, axis=-1), (1, 0, 2))
            succ = np.transpose(order.astype(np.int32), (1, 0, 2))
            static = None
            if succ.size <= _STATIC_ROWS:
                static = tuple(int(i) for i in succ.reshape(-1))
            unit = bool(K == 1 and np.all(prob == 1))
            return SharedP(None, jnp.asarray(succ), jnp.asarray(prob), static, unit)
    dense = jnp.reshape(jnp.transpose(jnp.asarray(transitions), (1, 0, 2)), (A * S, S))
    return SharedP(dense, None, None)


def _expected(p: SharedP, values, num_actions: int):
    """`[A, S, B]` sum_s' p(s' | s, a) V(s', b) for `values [S, B]`."""
    S, B = values.shape
    if p.dense is not None:
        out = jnp.dot(p.dense, values, precision=_PRECISION)
        return out.reshape(num_actions, S, B)
    K = p.succ.shape[-1]
    if p.static_succ is not None:
        gathered = jnp.stack([values[i] for i in p.static_succ]).reshape(num_actions, S, K, B)
    else:
        gathered = values[p.succ]  # [A, S, K, B]
    if p.unit_prob:
        return gathered[:, :, 0]
    return jnp.sum(gathered * p.prob[..., None], axis=2)


def _max_actions(q):
    """`max_a q[a]` for `q [A, ...]` as an elementwise max of A slabs: XLA:CPU's reduce over
    a major axis runs ~20x slower than this fused loop at the lecture world's shape."""
    out = q[0]
    for a in range(1, q.shape[0]):
        out = jnp.maximum(out, q[a])
    return out


def _argmax_actions(q):
    """`argmax_a q[a]` (lowest index on ties), slab by slab like `_max_actions`."""
    best, arg = q[0], jnp.zeros(q.shape[1:], jnp.int32)
    for a in range(1, q.shape[0]):
        better = q[a] > best
        best = jnp.where(better, q[a], best)
        arg = jnp.where(better, a, arg)
    return arg


class _Carry(NamedTuple):
    q: jax.Array  # [A, S, B] Q from V_{k-1} (carried: recomputing it would cost a sweep)
    values: jax.Array  # [S, B] V_k = max_a q
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
        return rewards_t + g * _expected(p, v, A)

    def advance(c: _Carry, q):
        new = _max_actions(q)
        stats = _stopping.diff_stats(new, c.values, axis=0, prev=c.stats, discount=g, rule=rule)
        code = _stopping.status(stats, new, g, tol, rule, axis=0)
        active = c.code == RUNNING
        return _Carry(
            q=jnp.where(active, q, c.q),
            values=jnp.where(active, new, c.values),
            stats=jax.tree.map(lambda a, b: jnp.where(active, a, b), stats, c.stats),
            it=c.it + active.astype(jnp.int32),
            code=jnp.where(active, code, c.code),
        )

    start_code = jnp.where(invalid, Status.INVALID_INPUT, RUNNING).astype(jnp.int32)
    stats0 = _stopping.initial_stats(dtype, (B,), track_stall=True)
    q0 = jnp.zeros((A, S, B), dtype)
    c = _Carry(q0, values0, stats0, jnp.zeros((B,), jnp.int32), start_code)
    # From V0 = 0 the first backup is Q = R: no product needed.
    c = advance(c, rewards_t if zero_start else backup(values0))

    def cond(c):
        return jnp.any((c.code == RUNNING) & (c.it < max_iters))

    def body(c):
        return advance(c, backup(c.values))

    c = lax.while_loop(cond, body, c)
    code = jnp.where(c.code == RUNNING, Status.MAX_ITERATIONS, c.code).astype(jnp.int32)
    stats = c.stats
    values, q, bound = _stopping.corrected(stats, c.values, c.q, g)
    policy = _argmax_actions(q)
    return Solution(
        values=values.T,
        q_values=jnp.transpose(q, (2, 1, 0)),
        policy=policy.T,
        status=code,
        num_iters=c.it,
        residual=_stopping.statistic(stats, g, rule),
        error_bound=bound,
    )
