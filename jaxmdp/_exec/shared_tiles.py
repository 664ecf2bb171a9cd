"""Strategy "shared_tiles": value iteration over a batch sharing one SMALL `transitions`,
in cache-resident tiles of members (issue 15).

The sweep of the lecture world over reward x discount is the job this library exists for:
millions of members, each a whole problem of a few hundred bytes (44 rewards, 11 values).
Streaming every member's rewards and values from DRAM on every sweep (the `shared_vi`
batch-last kernel, NumPy's batched GEMM) leaves the machine mostly waiting. Here:

- the flattened batch is cut into tiles of `plan.tile` members whose rewards and values fit
  in L2 (`plan.SHARED_TILE_BYTES`), and each tile iterates to convergence while resident,
  one after the other (`lax.fori_loop`); a tile stops with its slowest member, so converged
  tiles stop costing sweeps;
- the layout inside a tile is batch-last (`values [S, T]`, `rewards [A, S, T]`), produced
  from the caller's `[B, S, A]` rewards by one in-cache transpose per tile, and the tile's
  results go back the same way; nothing batch-sized is ever transposed or copied;
- the transitions' nonzero entries are compiled in as static row slices (`shared_rows`), so
  one sweep is ONE fused pass per tile: for each state the A x K successor rows, the max
  over actions, the difference statistics, the status tests and the freeze of converged
  members (`_stopping`, exactly the per-member rule of `ValueIteration`);
- from V0 = 0 the first sweep is free (Q = R: `max_a R`);
- on CPU, concrete batches split their tiles over host threads, one program per core
  (`threads.run_parts`): XLA:CPU runs one program's loop on one core.

Per member: the iterations, stopping rule, status, certificate and `error_bound` of its own
`ValueIteration` solve (`member.single`); values within rounding of it (another program: the
expectation sums only the nonzero entries, in another order). Members in a tile's overlap
(the last tile of a part starts early so that every tile is full) are computed twice by the
same program; either copy is the same result.

Planned (`plan.make_plan`) for `ValueIteration` on a batch whose `transitions` is shared,
concrete and has at most `plan.SHARED_ROWS_MAX` nonzero entries. On an accelerator the plan
uses wide tiles and no host threads (`JAXMDP_PLAN_BACKEND=gpu` runs that plan here).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmdp import _interrupt, _operators
from jaxmdp._exec import shared_rows
from jaxmdp._exec.plan import SHARED_ROWS_MAX
from jaxmdp._implicit import implicit_q_values, implicit_values
from jaxmdp._mdp import MDP, solve_dtype
from jaxmdp._solution import Solution, Status
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
    """`R + g P V` `[A, S, T]` from rows."""
    ev = _expected_rows(rows, probs, values)
    S, A = rows.num_states, rows.num_actions
    return jnp.stack(
        [jnp.stack([rewards[a][s] + g * ev[a][s] for s in range(S)]) for a in range(A)]
    )


def _argmax_actions(q):
    """`argmax_a q[a]` of `q [A, S, T]` (lowest index on ties, as `jnp.argmax`)."""
    best, arg = q[0], jnp.zeros(q.shape[1:], jnp.int32)
    for a in range(1, q.shape[0]):
        better = q[a] > best
        best = jnp.where(better, q[a], best)
        arg = jnp.where(better, a, arg)
    return arg


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


def _row_status(new, old, prev_stats, g, tol, rule):
    """`_stopping.diff_stats` and `_stopping.status` of the sweep `old -> new` (rows `[T]`),
    with the reductions over states written as chains over the rows (max and min are exact
    in any order, so the values are those of the stacked form): stacking the rows for the
    `_stopping` functions made XLA copy them into `[S, T]` arrays on every sweep. The rule
    itself is `_stopping`'s: it receives the extremes as a two-state difference from zero
    (`max(dmax - 0, dmin - 0) = dmax`, NaN propagating as in the full reduction) and the
    magnitude `max_s |V(s)|` as a one-state vector."""
    d = [x - y for x, y in zip(new, old, strict=True)]
    extremes = jnp.stack([_chain(d, jnp.maximum), _chain(d, jnp.minimum)])
    stats = _stopping.diff_stats(
        extremes, jnp.zeros_like(extremes), axis=0, prev=prev_stats, discount=g, rule=rule
    )
    mag = _chain([jnp.abs(x) for x in new], jnp.maximum)
    return stats, _stopping.status(stats, mag[None], g, tol, rule, axis=0)


class _Static(NamedTuple):
    """The static arguments of a tile's solve (hashable)."""

    rows: shared_rows.Rows
    rule: str
    max_iters: int
    zero_start: bool
    auto_tol: bool
    poll_every: int = 0  # check for Ctrl-C every this many sweeps (0: never; _interrupt)


def _solve_tile(probs, prob_rows, rewards, g, values0, tol, st: _Static, by_member=None):
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


def _run(
    probs,
    prob_rows,
    rewards,
    discount,
    values0,
    tol,
    start,
    order=None,
    *,
    st: _Static,
    size: int,
    tile: int,
):
    """Members `start .. start + size - 1` of the flattened batch (`rewards [B, S, A]`,
    `discount [B]`, `values0 [B, S]` or None) in tiles of `tile`, one after the other;
    `Solution` fields `[size, ...]`, batch first. Tile `i` covers members from
    `min(i * tile, size - tile)`: the last one overlaps its neighbour rather than being
    padded (no copy of the inputs).

    `order [B]` (or None: the identity): position `p` of the batch is member `order[p]`, so
    a tile gathers its members (`_order`: by discount, so that a tile's members need
    similar numbers of sweeps); the results stay in position order."""
    n = -(-size // tile)

    def body(i):
        off = jnp.minimum(i * tile, size - tile)
        at = start + off
        if order is None:

            def take(x):
                return lax.dynamic_slice_in_dim(x, at, tile)
        else:
            idx = lax.dynamic_slice_in_dim(order, at, tile)

            def take(x):
                return jnp.take(x, idx, axis=0, mode="clip")

        r_first = take(rewards)
        r = jnp.transpose(r_first, (2, 1, 0))
        g = take(discount)
        v0 = None
        if values0 is not None:
            v0 = jnp.transpose(take(values0))
        v, q, pol, code, it, res, bound = _solve_tile(probs, prob_rows, r, g, v0, tol, st, r_first)
        return (v.T, jnp.transpose(q, (2, 1, 0)), pol.T, code, it, res, bound)

    # Tiles' results stacked by `lax.map` ([n, tile, ...]), then joined: the last tile's
    # members from where the previous one stopped. (A `fori_loop` writing each tile into
    # `[size, ...]` buffers measured 4.5 ms per tile of 3,968 lecture worlds in buffer
    # traffic alone, more than the tile's whole solve.)
    stacked = lax.map(body, jnp.arange(n, dtype=jnp.int32))
    skip = (n - 1) * tile - (size - tile)  # members of the last tile given by the previous

    def join(x):
        if n == 1:
            return x[0]
        head = jnp.reshape(x[:-1], ((n - 1) * tile,) + x.shape[2:])
        return jnp.concatenate([head, x[-1, skip:]])

    return Solution(*(join(x) for x in stacked))


_run_jit = jax.jit(_run, static_argnames=("st", "size", "tile"))


def _parts(B: int, parts: int) -> tuple[int, tuple[int, ...]]:
    """(members per part, start of each part): equal parts, the last one overlapping its
    neighbour when `parts` does not divide `B`, so that one program serves them all."""
    size = -(-B // parts)
    return size, tuple(min(k * size, B - size) for k in range(parts))


@functools.partial(jax.jit, static_argnames=("B", "size", "starts"))
def _join(outs, *, B: int, size: int, starts):
    """The parts' results as one batch: each part contributes the members up to the next
    part's start (the last one, from where the previous part stopped)."""
    fields = []
    for xs in zip(*outs, strict=True):
        pieces = []
        for k, (x, s) in enumerate(zip(xs, starts, strict=True)):
            lo = k * size - s  # members of this part already given by the previous part
            hi = min((k + 1) * size, B) - s
            pieces.append(x[lo:hi])
        fields.append(jnp.concatenate(pieces) if len(pieces) > 1 else pieces[0])
    return Solution(*fields)


def _inputs(mdp, values0):
    """The flattened batch in the solve's dtype: `(probs, rewards [B, S, A], discount [B],
    values0 [B, S] or None, rows)`, plus the cast transitions (for the gradient hooks)."""
    batch = mdp.batch_shape
    S, A = mdp.num_states, mdp.num_actions
    B = 1
    for n in batch:
        B *= n
    dtype = solve_dtype(mdp, *([] if values0 is None else [values0]))
    R = jnp.asarray(mdp.rewards, dtype)
    if R.shape != batch + (S, A):
        R = jnp.broadcast_to(R, batch + (S, A))
    g = jnp.asarray(mdp.discount, dtype)
    if g.shape != batch:
        g = jnp.broadcast_to(g, batch)
    v0 = None
    if values0 is not None:
        v0 = jnp.reshape(jnp.broadcast_to(jnp.asarray(values0, dtype), batch + (S,)), (B, S))
    return jnp.reshape(R, (B, S, A)), jnp.reshape(g, (B,)), v0, dtype


def solve(mdp, values0, solver, *, max_iters: int, ctx, plan, run_many=None) -> Solution:
    """`Solution` with the batch shape of `mdp`, whose `transitions` is shared (no batch axis
    of size > 1) and concrete (`values0`: `[..., S]`, or None for zeros). `run_many(fn, n)`:
    calls `fn(k)` for k < n on host threads (`threads.run_many`, passed in by `dispatch`),
    used when the plan has `threads > 1` and nothing is traced."""
    transitions = jax.tree.map(lambda x: jnp.reshape(x, x.shape[-3:]), mdp.transitions)
    prep = shared_rows.prepare(transitions, SHARED_ROWS_MAX)
    if prep.rows is None:  # the plan only picks this strategy below the limit
        raise ValueError(
            f"shared_tiles: {prep.num_entries} nonzero transitions entries, above "
            f"{SHARED_ROWS_MAX}."
        )
    st = _Static(
        prep.rows,
        solver.rule,
        int(max_iters),
        values0 is None,
        solver.tol is None,
        int(ctx.poll_every),
    )
    order = _order(mdp, plan.tile)
    if plan.threads > 1 and run_many is not None and not _traced(mdp, values0, solver):
        return _threaded(mdp, values0, solver, transitions, prep, st, plan, run_many, order)
    return _program(
        mdp, values0, solver, transitions, prep.probs, order, st=st, tile=plan.tile, ctx=ctx
    )


# Off: measured slower (W1M, 10^6 members, same process, 3 runs each: 3.46 s sorted vs
# 2.79 s unsorted, identical results): the gathers cost more than the sweeps saved while the
# per-tile fixed cost dominates (benchmarks/results/cpu-2core-sweep.md). Tests force it on.
SORT_BY_DISCOUNT = False


def _order(mdp, tile: int):
    """`(order, inverse)` int32 `[B]`: the members sorted by discount (stable), or None when
    that cannot help (traced or equal discounts, one tile). A tile iterates until its slowest
    member stops, and sweeps of a discount grid mix 0.5 with 0.99 in every tile otherwise
    (the lecture sweep: 7x the member-sweeps needed). Members are independent, so the order
    changes no member's iterations or status."""
    g = mdp.discount
    if not SORT_BY_DISCOUNT or isinstance(g, jax.core.Tracer) or np.size(g) <= tile:
        return None
    flat = np.broadcast_to(np.asarray(g), mdp.batch_shape).reshape(-1)
    if flat.size <= tile or not (flat != flat[0]).any():
        return None
    order = np.argsort(flat, kind="stable").astype(np.int32)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size, dtype=np.int32)
    return order, inverse


def _prob_rows(transitions, dtype):
    """The transitions' rows `[S, A, K]` (dense: K = S) in `dtype`, for the rounding
    constants (`_stopping.rounding`)."""
    return jnp.asarray(_operators.rows(transitions), dtype)


def _traced(*trees) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(trees))


def _tol(solver, dtype):
    return jnp.asarray(0.0 if solver.tol is None else solver.tol, dtype)


@functools.partial(jax.jit, static_argnames=("st", "tile", "ctx"))
def _program(mdp, values0, solver, transitions, probs, order, *, st: _Static, tile: int, ctx):
    """The whole batch as one program, with the gradient hooks (as `shared_vi`)."""
    batch = mdp.batch_shape
    R, g, v0, dtype = _inputs(mdp, values0)
    B = g.shape[0]
    sg = lax.stop_gradient
    probs = jnp.asarray(probs, dtype)
    out = _run(
        probs,
        _prob_rows(transitions, dtype),
        sg(R),
        sg(g),
        None if v0 is None else sg(v0),
        _tol(solver, dtype),
        0,
        None if order is None else order[0],
        st=st,
        size=B,
        tile=min(tile, B),
    )
    if order is not None:  # back to member order
        out = Solution(*(jnp.take(x, order[1], axis=0) for x in out))
    # Gradients by the implicit function theorem, as in `member.finish` (forward: unchanged).
    flat = MDP(_operators.cast(transitions, dtype), R, g)
    in_axes = (MDP(None, 0, 0), 0, 0)
    hook = functools.partial(implicit_values, undiscounted=ctx.undiscounted)
    values = jax.vmap(hook, in_axes=in_axes)(flat, out.values, out.policy)
    q = jax.vmap(implicit_q_values, in_axes=in_axes)(flat, values, out.q_values)
    out = out._replace(values=values, q_values=q)
    return Solution(*(jnp.reshape(x, batch + x.shape[1:]) for x in out))


@functools.partial(jax.jit, static_argnames=("st", "size", "tile"))
def _part(
    mdp, values0, solver, transitions, probs, start, order, *, st: _Static, size: int, tile: int
):
    R, g, v0, dtype = _inputs(mdp, values0)
    probs = jnp.asarray(probs, dtype)
    rows = _prob_rows(transitions, dtype)
    tol = _tol(solver, dtype)
    return _run(probs, rows, R, g, v0, tol, start, order, st=st, size=size, tile=tile)


@jax.jit
def _unpermute(out, inverse):
    return Solution(*(jnp.take(x, inverse, axis=0) for x in out))


def _threaded(
    mdp, values0, solver, transitions, prep, st: _Static, plan, run_many, order
) -> Solution:
    """Concrete inputs on CPU: equal parts of the batch, one program per host thread (no
    gradients can flow here: nothing is traced)."""
    batch = mdp.batch_shape
    B = 1
    for n in batch:
        B *= n
    size, starts = _parts(B, plan.threads)
    tile = min(plan.tile, size)
    outs = run_many(
        lambda k: _part(
            mdp,
            values0,
            solver,
            transitions,
            prep.probs,
            starts[k],
            None if order is None else order[0],
            st=st,
            size=size,
            tile=tile,
        ),
        plan.threads,
    )
    out = _join(outs, B=B, size=size, starts=starts)
    if order is not None:
        out = _unpermute(out, order[1])
    return Solution(*(jnp.reshape(x, batch + x.shape[1:]) for x in out))
