"""Strategy "shared_vi": value iteration over a batch sharing one `transitions` array.

The sweep fast path. Same algorithm, stopping rule and per-member iterations as
`ValueIteration` on each member (`jaxmdp._solvers._stopping`), values equal to a member's
own solve within rounding (a different program: the batched product sums in another order),
laid out for the hardware instead of through `vmap`:

- dense P with S >= 64: batch FIRST (`values [B, S]`, `Q [B, S, A]`), so the backup is one
  `[B, S] x [S, S*A]` matrix-matrix product whose result is already in the `[B, S, A]` layout
  of the rewards and of the returned Q: no transpose of a batch-sized array on the way in or
  out (for 4,096 members of S=256, A=8 each such transpose cost 15 ms, more than half a
  sweep), and the max over actions is a reduction over the minor axis; converged members are
  compacted away (a ladder of levels of 1/4 the size);
- sparse P (few successors per (s, a), gridworlds: 1 to 3) and small dense P: batch LAST
  (`values [S, B]`, `Q [A, S, B]`), actions outermost, so `P V` is a gather of K contiguous
  rows of V (sparse) or one `[A*S, S] x [S, B]` product (dense), and the max over actions is
  an elementwise max of A slabs, fused with the backup (XLA:CPU's reductions over a short
  axis of small arrays were what made vmap slow); the batch-last backup is computed at the
  end of the previous sweep and carried (`_Carry.nxt`), so that XLA fuses the row gathers
  into it instead of into each of its consumers; the batch runs in member tiles
  (`shared_member_tiles`: no batch-sized transposes, a tile's arrays stay in cache). On W6
  (1,000 variants sharing a 100x100 world's sparse P, float32) these three changes took a
  sweep from 220 ms to about 30 ms (A/B in one process, 2 loaded cores);
- the first sweep from V0 = 0 needs no product (Q = R);
- converged members freeze (their values, statistics and counts stop changing), exactly as
  in their own solve.

Planned (`plan.make_plan`) only for `ValueIteration` with an unbatched `transitions`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmdp import _interrupt, _operators
from jaxmdp._bellman import _PRECISION
from jaxmdp._exec import shared_member_tiles, tiles
from jaxmdp._exec.shared_layout import SharedP, prepare_shared
from jaxmdp._implicit import implicit_q_values, implicit_values
from jaxmdp._mdp import MDP, solve_dtype
from jaxmdp._solution import Solution, Status
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import RUNNING


def _expected(p: SharedP, values, num_actions: int):
    """sum_s' p(s' | s, a) V(s', b): `[B, S, A]` for dense P and `values [B, S]`; `[A, S, B]`
    for sparse P and `values [S, B]`."""
    if p.dense is not None and p.batch_first:
        B, S = values.shape
        dims = (((1,), (1,)), ((), ()))  # contract V's states with P's next states
        flat = jnp.reshape(p.dense, (S * num_actions, S))  # rows (s, a): out is [B, S, A]
        out = lax.dot_general(values, flat, dims, precision=_PRECISION)
        return out.reshape(B, S, num_actions)
    S, B = values.shape
    if p.dense is not None:  # rows (a, s): out is [A, S, B]
        flat = jnp.reshape(jnp.transpose(p.dense, (1, 0, 2)), (num_actions * S, S))
        return jnp.dot(flat, values, precision=_PRECISION).reshape(num_actions, S, B)
    K = p.succ.shape[-1]  # type: ignore[union-attr]
    if p.static_succ is not None:
        gathered = jnp.stack([values[i] for i in p.static_succ]).reshape(num_actions, S, K, B)
    else:
        gathered = values[p.succ]  # [A, S, K, B]
    if p.unit_prob:
        return gathered[:, :, 0]
    return jnp.sum(gathered * p.prob[..., None], axis=2)  # type: ignore[index]


def _greedy_last(p: SharedP, rewards, g, values):
    """`max_a (R + g P V)` `[S, B]` batch-last: `rewards [A, S, B]`, `values [S, B]`.

    With static successors each state's row is computed from its A*K successor rows in one
    expression, which XLA fuses into a single pass: no `[A, S, K, B]` gather, no `[A, S, B]`
    Q written and read back (86 us instead of 240 us per sweep over 10,000 lecture worlds).
    """
    if p.dense is not None:  # one [A*S, S] x [S, B] product, then A slab maxima
        return _max_actions(rewards + g * _expected(p, values, rewards.shape[0]))
    if p.static_succ is None:
        return _greedy_gather(p, rewards, g, values)
    A, S, _ = rewards.shape
    K = p.succ.shape[-1]  # type: ignore[union-attr]
    succ = np.reshape(p.static_succ, (A, S, K))
    rows = []
    for s in range(S):
        best = None
        for a in range(A):
            if p.unit_prob:
                ev = values[succ[a, s, 0]]
            else:
                ev = sum(p.prob[a, s, k] * values[succ[a, s, k]] for k in range(K))  # type: ignore[index]
            qa = rewards[a, s] + g * ev
            best = qa if best is None else jnp.maximum(best, qa)
        rows.append(best)
    return jnp.stack(rows)  # type: ignore[arg-type]


def _q_gather(p: SharedP, rewards, g, values):
    """The A slabs `R[a] + g P[a] V` `[S, B]` for sparse `p` (`succ`, `prob` `[A, S, K]`),
    batch-last: `rewards [A, S, B]`, `values [S, B]`.

    Each slot k of each action gathers whole rows `values[succ[a, s, k]]` (`[B]`, contiguous:
    one successor row serves every member), weighted and added slab by slab, so XLA fuses the
    A*K row gathers and the sums with their consumer into one loop over `[S, B]` that reads
    `succ` and `prob` once. The generic form (`values[succ]`, an `[A, S, K, B]` gather, then
    a sum over K) materialised the gather: K*A times the values' bytes written and read back.
    """
    A, S, K = p.succ.shape  # type: ignore[union-attr]
    idx = jnp.clip(p.succ, 0, S - 1)  # loop invariant (hoisted); lets the gathers skip checks
    slabs = []
    for a in range(A):
        ev = None
        for k in range(K):
            row = values.at[idx[a, :, k]].get(mode="promise_in_bounds")  # [S, B]
            term = row if p.unit_prob else p.prob[a, :, k, None] * row  # type: ignore[index]
            ev = term if ev is None else ev + term
        slabs.append(rewards[a] + g * ev)
    return slabs


def _greedy_gather(p: SharedP, rewards, g, values):
    """`max_a (R + g P V)` `[S, B]` for sparse `p`, batch-last (`_q_gather`'s slabs, the max
    over actions taken slab by slab: the gathers, sums and max fuse into one loop that
    writes only the result)."""
    return functools.reduce(jnp.maximum, _q_gather(p, rewards, g, values))


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
    # Dense: Q from V_{k-1} `[B, S, A]`, carried (recomputing it would cost a product).
    # Batch-last: V_{k-1} itself `[S, B]`; Q is rebuilt once at the end (a cheap sweep), which
    # saves writing and selecting A times more data every sweep.
    q: jax.Array
    values: jax.Array  # [B, S] / [S, B]: V_k
    stats: _stopping.DiffStats  # [B] each
    it: jax.Array  # [B] int32
    code: jax.Array  # [B] int32
    # Batch-last: the backup of `values` (V_{k+1} before the stopping test), computed at the
    # END of the previous sweep. Carried so that it is materialised once: computed in the
    # same sweep as its consumers (statistics, select), XLA fused the backup into each of
    # them and left the A*K row gathers unfused (each written out as an [S, B] array and
    # read back): 4x the sweep's time at 1,000 members. None in the dense batch-first form.
    nxt: jax.Array | None = None


# Compaction ladder: once at most 1/_LADDER of a level's members still run, the survivors
# are gathered into a level of that size and iterate there (then scattered back), so converged
# members stop costing sweeps. Levels stop at _LADDER_MIN members. On 4,096 variants of one
# S=256 MDP with the sup rule this does 39% of a global-stop batch's member-sweeps (23% is
# the useful minimum; factor 2 would reach 30% with twice the loops to compile).
_LADDER = 4
_LADDER_MIN = 32


def _take(x, idx, first: bool):
    return jnp.take(x, idx, axis=0 if first or x.ndim == 1 else -1)


def _put(x, idx, sub, first: bool):
    return x.at[idx].set(sub) if first or x.ndim == 1 else x.at[..., idx].set(sub)


@functools.partial(
    jax.jit, static_argnames=("rule", "max_iters", "zero_start", "auto_tol", "poll_every")
)
def solve_shared_vi(
    p: SharedP,
    rewards,
    discount,
    values0,
    tol,
    *,
    rule,
    max_iters,
    zero_start,
    auto_tol,
    poll_every: int = 0,  # check for Ctrl-C every this many sweeps (0: never)
):
    """Batched VI -> `Solution` with batch axis first (`values [B, S]`, `q_values [B, S, A]`).

    Inputs in the layout of `p`: dense `rewards [B, S, A]`, `values0 [B, S]`; sparse
    `rewards [A, S, B]`, `values0 [S, B]`; `discount [B]` either way.
    `auto_tol`: the solver's `tol=None` mode (then `tol` is ignored).
    """
    tol = None if auto_tol else tol
    first = p.batch_first
    A = rewards.shape[-1] if first else rewards.shape[0]
    B = discount.shape[0]
    state_axis = 1 if first else 0

    def per(x, ndim):
        """A per-member `[n]` array, broadcastable against an `ndim`-d array of the layout."""
        return jnp.reshape(x, (-1,) + (1,) * (ndim - 1)) if first else x

    def keep(active, q, c: _Carry):
        if first:
            return jnp.where(per(active, 3), q, c.q)
        return jnp.where(active, c.values, c.q)

    def advance(c: _Carry, new, q, g, everyone=False):
        """Take the sweep to `new` (V_{k+1}); `q` its Q (dense only, else None)."""
        stats = _stopping.diff_stats(
            new, c.values, axis=state_axis, prev=c.stats, discount=g, rule=rule
        )
        code = _stopping.status(stats, new, g, tol, rule, axis=state_axis)
        active = c.code == RUNNING
        return c._replace(
            q=(q if first else c.values) if everyone else keep(active, q, c),
            values=jnp.where(per(active, 2), new, c.values),
            stats=jax.tree.map(lambda a, b: jnp.where(active, a, b), stats, c.stats),
            it=c.it + active.astype(jnp.int32),
            code=jnp.where(active, code, c.code),
        )

    def live(c):
        return (c.code == RUNNING) & (c.it < max_iters)

    def run(c: _Carry, rew, g, n: int) -> _Carry:
        """Iterate the `n` members of `c` until done, through the compaction ladder."""
        # Batch-first only: a batch-last backup (sparse or small dense P) is cheap next to a
        # level's compile time (each level compiles the unrolled static rows again: 4 s
        # instead of 0.9 s for 10,000 lecture worlds).
        nxt = n // _LADDER if first and n // _LADDER >= _LADDER_MIN else 0

        def body(c):
            if first:
                q = rew + per(g, 3) * _expected(p, c.values, A)
                return advance(c, jnp.max(q, axis=-1), q, g)
            c = advance(c, c.nxt, None, g)
            return c._replace(nxt=_greedy_last(p, rew, g, c.values))

        c = _interrupt.while_loop(lambda c: jnp.sum(live(c)) > nxt, body, c, poll_every)
        if not nxt:
            return c
        # At most nxt members left: gather them (padding repeats a finished member, whose
        # state the sub-level leaves unchanged), iterate, scatter back.
        alive = live(c)
        idx = jnp.nonzero(alive, size=nxt, fill_value=jnp.argmin(alive))[0]
        sub = jax.tree.map(lambda x: _take(x, idx, first), c)
        sub = run(sub, _take(rew, idx, first), g[idx], nxt)
        return jax.tree.map(lambda x, s: _put(x, idx, s, first), c, sub)

    g = discount
    invalid = ~((g >= 0) & (g <= 1))
    start_code = jnp.where(invalid, Status.INVALID_INPUT, RUNNING).astype(jnp.int32)
    # rounding constants of each member's certificate (jaxmdp._solvers._stopping).
    rows = p.prob if p.dense is None else (p.dense if first else jnp.transpose(p.dense, (1, 0, 2)))
    rnd = _stopping.rounding(rows, rewards, batch_last=not first, axis=(1, 2) if first else (0, 1))
    stats0 = _stopping.initial_stats(rewards.dtype, (B,), track_stall=True, rnd=rnd)
    # From V0 = 0 the first backup is Q = R: no product needed. The first sweep stores every
    # member's Q (INVALID_INPUT members' outputs are undefined anyway): no select, no zeros.
    if first:
        q1 = rewards if zero_start else rewards + per(g, 3) * _expected(p, values0, A)
        new = jnp.max(q1, axis=-1)
    else:  # batch-last carries V_{k-1}, not Q
        q1 = None
        new = _max_actions(rewards) if zero_start else _greedy_last(p, rewards, g, values0)
    c = _Carry(q1 if first else values0, values0, stats0, jnp.zeros((B,), jnp.int32), start_code)
    c = advance(c, new, q1, g, everyone=True)
    if not first:  # the next sweep's backup (see `_Carry.nxt`)
        c = c._replace(nxt=_greedy_last(p, rewards, g, c.values))
    c = run(c, rewards, g, B)

    code = jnp.where(c.code == RUNNING, Status.MAX_ITERATIONS, c.code).astype(jnp.int32)
    # certified bound with rounding; gain interval for UNBOUNDED members.
    shift, bound, residual = _stopping.report(c.stats, c.values, g, rule, axis=state_axis)
    values = c.values + per(shift, 2)
    if first:
        q = c.q
    elif p.dense is None and p.static_succ is None:  # slab by slab: no [A, S, K, B] gather
        q = jnp.stack(_q_gather(p, rewards, g, c.q))
    else:
        q = rewards + g * _expected(p, c.q, A)
    q = q + per(shift, 3)
    if first:
        policy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    else:
        values, policy, q = values.T, _argmax_actions(q).T, jnp.transpose(q, (2, 1, 0))
    return Solution(
        values=values,
        q_values=q,
        policy=policy,
        status=code,
        num_iters=c.it,
        residual=residual,
        error_bound=bound,
    )


def unbatched(transitions):
    """A shared `transitions` without its size-1 batch axes (`[S, A, S]` / `[S, A, K]`)."""
    return jax.tree.map(lambda x: jnp.reshape(x, x.shape[-3:]), transitions)


def solve(mdp, values0, solver, *, max_iters: int, ctx) -> Solution:
    """`Solution` with the batch shape of `mdp`, whose `transitions` has no batch axis of size
    > 1 (`values0`: `[..., S]`, or None for zeros). Reads the structure of a concrete P on
    the host (`prepare_shared`), then runs the jitted batch."""
    # Not carried means no batch axis of size > 1: drop size-1 ones ([1, S, A, S]).
    mdp = mdp._replace(transitions=unbatched(mdp.transitions))
    return solve_prepared(
        mdp, values0, prepare_shared(mdp.transitions), solver, max_iters=max_iters, ctx=ctx
    )


@functools.partial(jax.jit, static_argnames=("max_iters", "ctx"))
def solve_prepared(mdp, values0, shared, solver, *, max_iters, ctx) -> Solution:
    """`solve` for an already prepared `shared` (`SharedP` of `mdp.transitions`)."""
    batch = mdp.batch_shape
    S, A = mdp.num_states, mdp.num_actions
    B = int(np.prod(batch))
    dtype = solve_dtype(mdp, *([] if values0 is None else [values0]))
    P = _operators.cast(mdp.transitions, dtype)
    R = jnp.reshape(jnp.broadcast_to(jnp.asarray(mdp.rewards, dtype), batch + (S, A)), (B, S, A))
    g = jnp.reshape(jnp.broadcast_to(jnp.asarray(mdp.discount, dtype), batch), (B,))
    v0 = None
    if values0 is not None:
        v0 = jnp.reshape(jnp.broadcast_to(jnp.asarray(values0, dtype), batch + (S,)), (B, S))
        v0 = lax.stop_gradient(v0)
    sg = lax.stop_gradient
    shared = jax.tree.map(lambda x: sg(jnp.asarray(x, dtype) if x.dtype.kind == "f" else x), shared)
    tol = jnp.asarray(0.0 if solver.tol is None else solver.tol, dtype)
    run = functools.partial(
        solve_shared_vi,
        shared,
        tol=tol,
        rule=solver.rule,
        max_iters=max_iters,
        auto_tol=solver.tol is None,
        poll_every=ctx.poll_every,
    )
    if shared.batch_first:
        zeros = jnp.zeros((B, S), dtype) if v0 is None else v0
        out = run(sg(R), sg(g), zeros, zero_start=v0 is None)
    else:  # batch-last kernel, in member tiles (no batch-sized transposes)

        def tile_fn(r, gt, vt):
            start = jnp.zeros((S, r.shape[-1]), dtype) if vt is None else vt
            return run(r, gt, start, zero_start=vt is None)

        size = tiles.shared_gather_tile(S, A, np.dtype(dtype).itemsize)
        out = shared_member_tiles.solve_in_tiles(tile_fn, sg(R), sg(g), v0, size)
    # Gradients by the implicit function theorem, as in `member.finish` (forward: unchanged).
    flat = MDP(P, R, g)
    in_axes = (MDP(None, 0, 0), 0, 0)
    hook = functools.partial(implicit_values, undiscounted=ctx.undiscounted)
    values = jax.vmap(hook, in_axes=in_axes)(flat, out.values, out.policy)
    q = jax.vmap(implicit_q_values, in_axes=in_axes)(flat, values, out.q_values)
    out = out._replace(values=values, q_values=q)
    return Solution(*(jnp.reshape(x, batch + x.shape[1:]) for x in out))
