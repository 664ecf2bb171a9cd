"""The tile kernel of strategy "shared_tiles" for tiles sliced on the host
(`shared_tiles_host`): value iteration of one tile of members sharing a small transitions
array, batch-last inside (`values` rows `[T]`), with as few passes over the tile as XLA:CPU
allows (issue 15).

XLA:CPU runs every fusion as its own loop over the tile, reading its operands from cache, so
the cost of a tile is the number of passes over it, not the arithmetic. Against the first
kernel (`shared_tiles_kernel.solve_tile`, which `shared_tiles._program` keeps for traced
batches and accelerators), measured on one W1M tile of 3,968 members in one process
(benchmarks/results/cpu-2core-sweep.md):

- values ping-pong between two tuples of rows, two sweeps per loop iteration, each sweep
  overwriting the older rows for the members still running: one select per row and sweep
  (fused into the row's kernel) instead of two, and a member's V_k is found at the end by
  the parity of its sweep count (the largest gain);
- `_stopping.status` (one large fusion) runs only when some member of the tile might stop
  (`_status`); the statistics themselves are computed every sweep, as before;
- the transitions' part of the rounding constants (`p_consts`: row sums, counts) once per
  solve; the members' part as one chain over the tile's rows, in the loop's first iteration;
- Q, policy and the certificate in one `cond` after the loop (results materialised once);
- the rewards come in batch last (`[A, S, T]`, copied so by the host from its block): the
  program transposed a batch-first tile twice (for the loop, and again for the final Q,
  XLA forwarding the loop's copy to its input).

An `[S, T]` array for the values (one fusion for the whole sweep, with a concatenate or a
gather of rows) measured slower: a stacking copy and two 25 us selects per sweep, and the
gather form 2x the static rows.

Per member exactly the loop of `ValueIteration` (`shared_tiles_kernel.solve_tile`): the same
iterations, stopping rule, status, certificate; on the W1M tiles and the tests, identical
bits to the first kernel (not promised: another program).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _interrupt
from jaxmdp._exec.shared_tiles_kernel import (
    Static,
    _chain,
    _expected_rows,
    _extremes,
    _q_values,
)
from jaxmdp._solution import Status
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import RUNNING


class PConsts(NamedTuple):
    """The transitions' part of `_stopping.rounding`, computed once per solve."""

    sums: jax.Array  # [S, A] row sums (`_stopping.row_stats`, as `rounding`)
    abss: jax.Array  # [S, A] sums of |p|
    k: jax.Array  # [] max(nonzeros per row, 1)


@jax.jit
def p_consts(prob_rows) -> PConsts:
    """`prob_rows [S, A, K]` -> `PConsts`, with `_stopping.rounding`'s arithmetic."""
    counts, sums, abss = _stopping.row_stats(prob_rows)
    return PConsts(sums, abss, jnp.maximum(jnp.max(counts), 1.0))


def _rounding(pc: PConsts, r):
    """`_stopping.rounding(prob_rows, r_first, axis=(1, 2))` per member from the tile's
    rewards `r [A, S, T]`: the same arithmetic, the maxima over rows as chains. A tile whose
    rewards are all finite (every action available) takes the maxima over all rows of P,
    which is what the masked maxima give then: one pass over the tile instead of three."""
    dtype = r.dtype
    u = _stopping._unit(dtype)
    A, S = r.shape[0], r.shape[1]
    zero = jnp.zeros((), dtype)
    T = r.shape[-1]

    # The rows as `[1, 1, T]` slices, the chains' results reshaped once: with `r[a, s]`
    # (a slice, then a reshape to `[T]`) XLA's reshape-mover moved the reshape one link
    # down a chain per run of its simplification pipeline, which ran to a fixed point once
    # per link (46 runs instead of a handful; each run analyses the while loops again):
    # 2.5 s of HLO passes of the W1M tile (issue 15). Same arithmetic, same bits. Sliced where
    # used (slices shared by the branches below were materialised, one kernel each).
    def row(a, s):
        return lax.slice(r, (a, s, 0), (a + 1, s + 1, T))

    def chain(xs):
        return _chain(xs, jnp.maximum).reshape(T)

    every = chain([jnp.abs(row(a, s)) for s in range(S) for a in range(A)])  # NaN / inf

    def masked(_):
        devs, abs_, rs = [], [], []
        for s in range(S):
            for a in range(A):
                avail = jnp.isfinite(row(a, s))
                devs.append(jnp.where(avail, jnp.abs(pc.sums[s, a] - 1), zero))
                abs_.append(jnp.where(avail, pc.abss[s, a], zero))
                rs.append(jnp.where(avail, jnp.abs(row(a, s)), zero))
        return chain(devs), chain(abs_), chain(rs)

    def finite(_):
        dev = jnp.max(jnp.abs(pc.sums - 1))
        ab = jnp.max(pc.abss)
        return jnp.full((T,), dev), jnp.full((T,), ab), every

    dev, ab, r_max = lax.cond(jnp.all(jnp.isfinite(every)), finite, masked, None)
    g_sum = _stopping._gamma(pc.k, u)
    p_abs = ab * (1 + g_sum) * (1 + 2 * u)
    e = g_sum * p_abs
    sigma = (jnp.maximum(dev - e, 0) + 2 * e) * (1 + 2 * u)
    gamma = _stopping._gamma(pc.k + 2, u) * jnp.ones_like(r_max)
    return _stopping.Rounding(gamma, r_max, p_abs, sigma, jnp.zeros_like(r_max))


class _Carry(NamedTuple):
    # Values as tuples of per-state rows `[T]`: the freeze (`where`) then fuses into each
    # row's kernel; an `[S, T]` array took a stacking copy and two selects of 25 us each.
    values: tuple  # V_k
    prev: tuple  # V_{k-1}
    stats: _stopping.DiffStats  # [T] each
    it: jax.Array  # [T] int32
    code: jax.Array  # [T] int32
    swept: jax.Array  # [T] bool
    k: jax.Array  # [] int32


def _status(new, old, prev_stats, g, tol, rule, swept, code_prev):
    """Statistics and status codes of the sweep `old -> new` (rows `[T]`) for the members
    that were swept (the others keep `code_prev`): `_stopping.diff_stats` and
    `_stopping.status`, the reductions over states as chains. `status` runs only when some
    swept member might stop: one whose span term `c * span / 2` is at least `tol / 2`, with
    finite values, statistic above the 16-ulp floor and discount < 1, fails every test of
    `status` (`ok` needs `bound < tol / 2`, and `bound >= c * span / 2`; the floor tests need
    the statistic within 16 ulp or the span term below `tol / 2`; UNBOUNDED needs discount 1)."""
    d = [x - y for x, y in zip(new, old, strict=True)]
    extremes = jnp.stack(_extremes(d))  # one complex row (`shared_tiles_kernel._extremes`)
    stats = _stopping.diff_stats(
        extremes, jnp.zeros_like(extremes), axis=0, prev=prev_stats, discount=g, rule=rule
    )
    mag = _chain([jnp.abs(x) for x in new], jnp.maximum)

    def full(args):
        stats, mag = args
        code = _stopping.status(stats, mag[None], g, tol, rule, axis=0)
        return jnp.where(swept, code, code_prev)

    dtype = mag.dtype
    below, c = _stopping._coef(g)
    stat = _stopping.statistic(stats, g, rule)
    part = c * (stats.dmax - stats.dmin) / 2 if rule == "span" else c * stat
    half = jnp.asarray(_stopping.DEFAULT_TOL if tol is None else tol, dtype) / 2
    ulp = jnp.finfo(dtype).eps * mag
    running = below & jnp.isfinite(mag) & (part >= half) & (stat > 16 * ulp)
    need = jnp.any(swept & ~running)
    return stats, lax.cond(need, full, lambda _: code_prev, (stats, mag))


def _argmax(qs):
    """`argmax` over the list `qs` (lowest index on ties), as `shared_vi._argmax_actions`."""
    best, arg = qs[0], jnp.zeros(qs[0].shape, jnp.int32)
    for a in range(1, len(qs)):
        better = qs[a] > best
        best = jnp.where(better, qs[a], best)
        arg = jnp.where(better, a, arg)
    return arg


def _always(g):
    """A true predicate XLA cannot prove true (so a `cond` on it stays a `cond`)."""
    bits = lax.bitcast_convert_type(g[0], jnp.dtype(f"int{8 * g.dtype.itemsize}"))
    return (bits | 1) != 0


class _Out(NamedTuple):
    values: jax.Array  # [S, T] corrected V
    q: jax.Array  # [A, S, T] corrected Q
    policy: jax.Array  # [S, T] int32
    code: jax.Array  # [T] int32
    residual: jax.Array  # [T]
    bound: jax.Array  # [T]


def solve_tile(probs, pc: PConsts, r, g, v0_first, tol, st: Static):
    """One tile: `probs [E]` (the probabilities of `st.rows`' entries), `pc` (`p_consts` of
    the transitions' rows), the rewards batch last `r [A, S, T]` (the host copies its block
    in this layout: transposed here, the tile was transposed twice, once for the loop and
    once for the final Q), `g [T]`, `v0_first [T, S]` or None (zeros), `tol []` -> the
    `Solution` fields batch first (`values [T, S]`, `q [T, S, A]`, `policy [T, S]` int32,
    `status`, `iterations` int32, `residual`, `error_bound`, each `[T]`)."""
    tol = None if st.auto_tol else tol
    S, A = st.rows.num_states, st.rows.num_actions
    T = g.shape[0]
    dtype = r.dtype

    def greedy(r, vrows):
        ev = _expected_rows(st.rows, probs, vrows)
        out = []
        for s in range(S):
            best = None
            for a in range(A):
                qa = r[a, s] + g * ev[a][s]
                best = qa if best is None else jnp.maximum(best, qa)
            out.append(best)
        return out

    def step(c, r, flip: bool):
        # Ping-pong: V_k of a member that ran in the previous step is in `c.values` (`c.prev`
        # when `flip`), V_{k-1} in the other; the sweep overwrites the older one.
        vrows, prows = (list(c.prev), list(c.values)) if flip else (list(c.values), list(c.prev))
        stats, code = _status(vrows, prows, c.stats, g, tol, st.rule, c.swept, c.code)
        stats = jax.tree.map(lambda a, b: jnp.where(c.swept, a, b), stats, c.stats)
        run = (code == RUNNING) & (c.it < st.max_iters)
        new = tuple(jnp.where(run, x, p) for x, p in zip(greedy(r, vrows), prows, strict=True))
        return _Carry(
            values=new if flip else c.values,
            prev=c.prev if flip else new,
            stats=stats,
            it=c.it + run.astype(jnp.int32),
            code=code,
            swept=run,
            k=c.k + 1,
        )

    def finish(c, r):
        # A member's V_k is in `c.prev` after an odd number of sweeps (`step`'s ping-pong).
        # V_k and the policy as whole `[S, T]` arrays (the rows stacked once, then one select;
        # the argmax over the stacked Q): per-row forms were 11 kernels each, every policy
        # row re-deriving its state's Q. Same bits; time not measurably different.
        odd = (c.it % 2) == 1
        vk = jnp.where(odd, jnp.stack(c.prev), jnp.stack(c.values))
        prev = [jnp.where(odd, a, b) for a, b in zip(c.values, c.prev, strict=True)]
        code = jnp.where(c.code == RUNNING, Status.MAX_ITERATIONS, c.code).astype(jnp.int32)
        # A chain over the rows (a max: exact in any order): `jnp.max` of the stacked rows ran
        # as an XNNPACK reduction, ~60 us of a ~1 ms W1M tile's fixed cost.
        mag = _chain(
            [jnp.abs(jnp.where(odd, a, b)) for a, b in zip(c.prev, c.values, strict=True)],
            jnp.maximum,
        )
        shift, bound, residual = _stopping.report(c.stats, mag[None], g, st.rule, axis=0)
        # Q from V_{k-1} (V_k = max_a Q) and the policy before the shift, as `vi_result`.
        # Stacked state by state (`shared_tiles_kernel._q_values`: fusible concatenates).
        q = _q_values(st.rows, probs, [[r[a, s] for s in range(S)] for a in range(A)], g, prev)
        pol = _argmax([q[a] for a in range(A)])
        return _Out(vk + shift, q + shift, pol, code, residual, bound)

    def body(cr):
        c, r = cr
        # The rounding constants once, in the loop's first iteration (measured when the
        # tile came in batch first and was transposed for the loop; kept: same bits).
        rnd = lax.cond(c.k == 0, lambda r: _rounding(pc, r), lambda r: c.stats.rnd, r)
        c = c._replace(stats=c.stats._replace(rnd=rnd))
        c = step(c, r, flip=False)
        return step(c, r, flip=True), r

    invalid = ~((g >= 0) & (g <= 1))
    code0 = jnp.where(invalid, Status.INVALID_INPUT, RUNNING).astype(jnp.int32)
    zeros = jnp.zeros((T,), dtype)
    rnd0 = _stopping.Rounding(zeros, zeros, zeros, zeros, zeros)
    stats0 = _stopping.initial_stats(dtype, (T,), track_stall=True, rnd=rnd0)
    if v0_first is None:
        v0 = tuple(jnp.zeros((T,), dtype) for _ in range(S))
    else:
        v0 = tuple(v0_first[:, s] for s in range(S))
    none = jnp.zeros((T,), bool)
    c = _Carry(v0, v0, stats0, jnp.zeros((T,), jnp.int32), code0, none, jnp.int32(0))

    def cond(cr):
        c, _ = cr
        return (c.k == 0) | jnp.any(c.swept)

    c, r = _interrupt.while_loop(cond, body, (c, r), st.poll_every)

    # In a `cond`, so that its results are materialised once (XLA fused each into every
    # consumer otherwise). The branch never taken is zeros, not a second `finish`: the
    # epilogue's ~50 kernels were compiled twice (issue 15).
    def never(_):
        return _Out(
            jnp.zeros((S, T), dtype),
            jnp.zeros((A, S, T), dtype),
            jnp.zeros((S, T), jnp.int32),
            jnp.zeros((T,), jnp.int32),
            jnp.zeros((T,), dtype),
            jnp.zeros((T,), dtype),
        )

    out = lax.cond(_always(g), lambda a: finish(*a), never, (c, r))
    return (
        out.values.T,
        jnp.transpose(out.q, (2, 1, 0)),
        out.policy.T,
        out.code,
        c.it,
        out.residual,
        out.bound,
    )


tile_program = jax.jit(solve_tile, static_argnames=("st",))
