"""The tile kernel of strategy "shared_tiles" (`shared_tiles.py`): value iteration of one
tile of members, batch-last and cache-resident, over a small shared transitions array
compiled in as static rows (`shared_rows`).

One sweep is ONE fused pass per tile: for each state the A x K successor rows, the max over
actions, the difference statistics, the status tests and the freeze of converged members
(`_stopping`, exactly the per-member rule of `ValueIteration`). This kernel serves the
one-program form (`shared_tiles._program`: traced batches, accelerators); tiles sliced on the
host run `shared_tiles_fused` (fewer passes over the tile per sweep, measured 1.8x faster on
W1M). `tile_program` (one tile, batch first in and out) remains for the A/B benchmark
(`benchmarks/shared_tiles_ab.py`) and the test comparing the two kernels.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _interrupt
from jaxmdp._exec import shared_rows
from jaxmdp._exec.shared_vi import _argmax_actions  # the same slab-by-slab argmax
from jaxmdp._solution import Status
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import RUNNING


def _expected_rows(rows: shared_rows.Rows, probs, values):
    """`sum_s' p(s' | s, a) V(s', t)` as `ev[a][s]` (each `[T]`) from the rows `values[s']`
    (each `[T]`)."""
    zero = jnp.zeros_like(values[0])
    out = []
    for per_action in rows.entries:
        row_out = []
        for entries in per_action:
            terms = [values[n] if rows.unit else probs[e] * values[n] for e, n in entries]
            row_out.append(sum(terms[1:], terms[0]) if terms else zero)
        out.append(row_out)
    return out


def _greedy(rows, probs, rewards, g, values) -> list:
    """`max_a (R + g P V)` as one `[T]` row per state, from `rewards[a][s]` and `values[s]`
    (rows `[T]`): each row is one expression, fused by XLA into one pass."""
    ev = _expected_rows(rows, probs, values)
    out = []
    for s in range(rows.num_states):
        best = None
        for a in range(rows.num_actions):
            qa = rewards[a][s] + g * ev[a][s]
            best = qa if best is None else jnp.maximum(best, qa)
        out.append(best)
    return out


def _q_values(rows, probs, rewards, g, values):
    """`R + g P V` `[A, S, T]` from rows, stacked state by state: each state's A rows are one
    concatenate of A operands, into which XLA:CPU fuses their expressions (one kernel per
    state), while a concatenate of more than 8 operands is never a fusion
    (`kMaxConcatenateArguments` of its instruction fusion). Stacked action by action (S = 11
    rows each), every row of the lecture world was its own kernel: 44 of the first
    kernel's 119, at ~20 ms of compile each (issue 15). Same arithmetic, same bits."""
    ev = _expected_rows(rows, probs, values)
    S, A = rows.num_states, rows.num_actions
    per_state = [jnp.stack([rewards[a][s] + g * ev[a][s] for a in range(A)]) for s in range(S)]
    return jnp.swapaxes(jnp.stack(per_state), 0, 1)


class _Carry(NamedTuple):
    # Values as a tuple of per-state rows `[T]`, not one `[S, T]` array: XLA:CPU computes
    # each state's row in its own kernel, and stacking them would add a copy of every sweep.
    values: tuple  # V_k
    prev: tuple  # V_{k-1} (Q is rebuilt from it once, at the end)
    stats: _stopping.DiffStats  # [T] each
    it: jax.Array  # [T] int32 sweeps done
    code: jax.Array  # [T] int32
    swept: jax.Array  # [T] bool: V_k is a new sweep, not tested yet
    k: jax.Array  # [] int32 loop iterations


def _chain(rows, op):
    return functools.reduce(op, rows[1:], rows[0])


def _extremes(d):
    """`(max, min)` over the rows `d` (each `[T]`), as one complex row behind a barrier.
    Written as two plain chains, XLA:CPU compiled their kernels apart from the others
    (`__compute_module_*` in its dumps), in a loop that copied every operand's vector through
    the stack; so written, they compile as the state rows' kernels do (`*_kernel_module`):
    one W1M host tile 0.75x (with `shared_tiles_fused`'s epilogue `mag`), W1's tiles 0.94x,
    identical bits; without the barrier, or with the barrier and no complex, no gain (issue
    15, DECISIONS 24). A complex has float32 or float64 parts: half precisions go through
    float32 and back, exactly (every half value is a float32)."""
    dtype = d[0].dtype
    wide = dtype if dtype in (jnp.float32, jnp.float64) else jnp.float32
    hi, lo = (_chain(d, op).astype(wide) for op in (jnp.maximum, jnp.minimum))
    packed = lax.optimization_barrier(lax.complex(hi, lo))
    return lax.real(packed).astype(dtype), lax.imag(packed).astype(dtype)


def _row_status(new, old, prev_stats, g, tol, rule):
    """`_stopping.diff_stats` and `_stopping.status` of the sweep `old -> new` (rows `[T]`),
    with the reductions over states written as chains over the rows (max and min are exact
    in any order, so the values are those of the stacked form): stacking the rows for the
    `_stopping` functions made XLA copy them into `[S, T]` arrays on every sweep. The rule
    itself is `_stopping`'s: it receives the extremes as a two-state difference from zero
    (`max(dmax - 0, dmin - 0) = dmax`, NaN propagating as in the full reduction) and the
    magnitude `max_s |V(s)|` as a one-state vector."""
    d = [x - y for x, y in zip(new, old, strict=True)]
    extremes = jnp.stack(_extremes(d))
    stats = _stopping.diff_stats(
        extremes, jnp.zeros_like(extremes), axis=0, prev=prev_stats, discount=g, rule=rule
    )
    mag = _chain([jnp.abs(x) for x in new], jnp.maximum)
    return stats, _stopping.status(stats, mag[None], g, tol, rule, axis=0)


class Static(NamedTuple):
    """The static arguments of a tile's solve (hashable)."""

    rows: shared_rows.Rows
    rule: str
    max_iters: int
    zero_start: bool
    auto_tol: bool
    poll_every: int = 0  # check for Ctrl-C every this many sweeps (0: never; _interrupt)


def solve_tile(probs, prob_rows, rewards, g, values0, tol, st: Static, by_member=None):
    """One tile: `prob_rows [S, A, K]` (rows of the transitions), `rewards [A, S, T]`,
    `g [T]`, `values0 [S, T]` (None: zeros) -> the
    tile's `Solution` fields batch-last (`values [S, T]`, `q [A, S, T]`, `policy [S, T]`,
    the rest `[T]`).

    Per member exactly the loop of `ValueIteration` (`member.single`, `shared_vi`): a sweep,
    then the `_stopping` tests on its difference, until a final status or `max_iters`;
    then frozen. Each loop iteration first tests the previous sweep (from the carried rows)
    and then sweeps the members still running: testing right after the sweep instead made
    XLA fuse each state's row expression into every statistic's kernel, computing every
    sweep several times.
    """
    tol = None if st.auto_tol else tol
    S, A = st.rows.num_states, st.rows.num_actions

    def rows_of(r):
        return [[r[a, s] for s in range(S)] for a in range(A)]

    def body(cr):
        c, r = cr
        # 1. Test the sweep that produced V_k (members that were swept).
        stats, code = _row_status(c.values, c.prev, c.stats, g, tol, st.rule)
        code = jnp.where(c.swept, code, c.code)
        stats = jax.tree.map(lambda a, b: jnp.where(c.swept, a, b), stats, c.stats)
        # 2. Sweep the members still running.
        run = (code == RUNNING) & (c.it < st.max_iters)

        def sweep(r, v):
            return _greedy(st.rows, probs, rows_of(r), g, v)

        # From V0 = 0 the first sweep is R + g P 0 = R exactly (finite P and g; invalid
        # members are frozen anyway): no special case, which cost more (a conditional
        # per sweep) than the one pass over P it would save.
        new = sweep(r, c.values)
        carry = _Carry(
            values=tuple(jnp.where(run, x, v) for x, v in zip(new, c.values, strict=True)),
            prev=tuple(jnp.where(run, v, p) for v, p in zip(c.values, c.prev, strict=True)),
            stats=stats,
            it=c.it + run.astype(jnp.int32),
            code=code,
            swept=run,
            k=c.k + 1,
        )
        return carry, r

    T = g.shape[0]
    invalid = ~((g >= 0) & (g <= 1))
    code0 = jnp.where(invalid, Status.INVALID_INPUT, RUNNING).astype(jnp.int32)
    # Each member's rounding constants (its certificate), as its own solve computes them.
    # From the tile as sliced (`by_member [T, S, A]`, rows `[S, A, K]`) where given: XLA
    # fuses the transposing slice into this reduction otherwise, reading with a stride of
    # S*A numbers (measured: 4-5 ms per tile of 3,968 lecture worlds, 3x the tile's solve).
    if by_member is None:
        rows_as = jnp.swapaxes(prob_rows, 0, 1)
        rnd = _stopping.rounding(rows_as, rewards, batch_last=True, axis=(0, 1))
    else:
        rnd = _stopping.rounding(prob_rows, by_member, axis=(1, 2))
    stats0 = _stopping.initial_stats(rewards.dtype, (T,), track_stall=True, rnd=rnd)
    if values0 is None:
        v0 = tuple(jnp.zeros((T,), rewards.dtype) for _ in range(S))
    else:
        v0 = tuple(values0[s] for s in range(S))
    none = jnp.zeros((T,), bool)
    c = _Carry(v0, v0, stats0, jnp.zeros((T,), jnp.int32), code0, none, jnp.int32(0))

    # The tile's rewards travel through the loop (unchanged) so that XLA materialises them
    # batch-last once: its fusion would otherwise fold the transposing slice into every
    # row kernel, each then reading the tile with a stride of S*A numbers. (XLA:CPU drops
    # `optimization_barrier` before fusion, so a barrier does not prevent that.)
    def cond(cr):
        c, _ = cr
        return (c.k == 0) | jnp.any(c.swept)

    c, rewards = _interrupt.while_loop(cond, body, (c, rewards), st.poll_every)

    code = jnp.where(c.code == RUNNING, Status.MAX_ITERATIONS, c.code).astype(jnp.int32)
    mag = _chain([jnp.abs(x) for x in c.values], jnp.maximum)
    # certified bound with rounding; gain interval for UNBOUNDED members.
    shift, bound, residual = _stopping.report(c.stats, mag[None], g, st.rule, axis=0)

    # Q from V_{k-1} (V_k = max_a Q), and the policy before the shift, as `vi_result`.
    # In a loop of one iteration that XLA cannot count (`c.k >= 1`), for the same reason
    # as above: the main loop's rewards output is its input, and outside a loop XLA fuses
    # the transposing slice into each of these A*S row kernels again.
    def final(fr):
        i, r, prev, _, _ = fr
        q = _q_values(st.rows, probs, rows_of(r), g, prev)
        return i + 1, r, prev, q, _argmax_actions(q)

    q0 = jnp.zeros((A, S, T), rewards.dtype)
    once = (jnp.int32(0), rewards, c.prev, q0, jnp.zeros((S, T), jnp.int32))
    *_, q, policy = lax.while_loop(lambda fr: fr[0] < jnp.minimum(c.k, 1), final, once)
    return jnp.stack(c.values) + shift, q + shift, policy, code, c.it, residual, bound


def solve_batch_first(probs, prob_rows, r_first, g, v0_first, tol, st: Static):
    """One tile given batch first (`r_first [T, S, A]`, `g [T]`, `v0_first [T, S]` or None):
    the `Solution` fields batch first (`values [T, S]`, `q [T, S, A]`, `policy [T, S]`, the
    rest `[T]`). The transposes act on the tile only (in cache), never on a batch."""
    r = jnp.transpose(r_first, (2, 1, 0))
    v0 = None if v0_first is None else jnp.transpose(v0_first)
    v, q, pol, code, it, res, bound = solve_tile(probs, prob_rows, r, g, v0, tol, st, r_first)
    return (v.T, jnp.transpose(q, (2, 1, 0)), pol.T, code, it, res, bound)


# One tile as its own program, for tiles sliced on the host (`shared_tiles_host`).
tile_program = jax.jit(solve_batch_first, static_argnames=("st",))
