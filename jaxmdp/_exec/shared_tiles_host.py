"""The host driver of strategy "shared_tiles" (`shared_tiles.py`) for concrete batches on
CPU: tiles sliced on the host, each solved by its own small program, on host threads.

Inside one program over the whole batch (`shared_tiles._run`: `lax.map` over dynamic tile
slices of `[B, S, A]` arrays, results stacked and joined), every tile cost a fixed amount that
grew with the batch: at 10^6 lecture worlds one sweep (`max_iters=1`) took 1.3 s, about
10 ms per tile of 3,968 members, against 1.8 ms for the same tile's program on a
pre-sliced input (same process; benchmarks/results/cpu-2core-sweep.md). Here nothing
batch-sized enters a program:

- the batch's inputs are read once as host arrays (`np.asarray` of a CPU array is a view;
  a broadcast leaf stays a broadcast view, `_full`);
  a tile is a block of the batch's grid (`blocks`: a few rows of its last axis, copied into
  one contiguous tile), a contiguous slice (a batch of one axis: a view for the first
  kernel), or with a member order (by discount) a gather of the tile's members; the host
  kernel's rewards are copied batch last (`[A, S, T]`, the layout its loop runs in);
- each tile is `shared_tiles_fused.tile_program` (batches of `FUSED_MEMBERS_MIN` members or
  more, up to `FUSED_ENTRIES_MAX` transitions entries; `shared_tiles_kernel.tile_program`
  otherwise) (one compiled program for every tile of the same size), called from a host
  thread; threads take the next tile from a shared
  counter (tiles need different numbers of sweeps), and each dispatches its next tile
  before copying the previous one's results out, so the copies overlap the solves;
- results go straight into preallocated batch-first host arrays, which become the
  `Solution` once at the end.

The last tile starts early so that every tile is full (`min(i * tile, B - tile)`): members
it shares with its neighbour are computed twice by the same program on the same input and
written twice with the same bits. Per member the results are those of the one-program form
within rounding (other programs); a member's bits do not depend on the thread that ran it.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import numpy as np

from jaxmdp import _interrupt
from jaxmdp._exec import shared_tiles_fused, shared_tiles_kernel
from jaxmdp._exec.plan import SHARED_TILE_ALIGN
from jaxmdp._solution import Solution

# Structures up to this many nonzero transitions entries run the host kernel
# (`shared_tiles_fused`), larger ones the first kernel (`shared_tiles_kernel`): the host
# kernel unrolls two sweeps per loop iteration, and its compile time grows faster with the
# entries. Measured in one process (float32, loaded machine, first compile): the W1M lecture
# world (104 entries) 15.5 s vs 11.0 s, 256 entries 39 s vs 16 s, 512 entries 80 s vs 27 s;
# its run time per tile is 1.6-1.8x lower (benchmarks/results/cpu-2core-sweep.md). These
# times predate issue 15's compile fix (DECISIONS 24, tiles7): 322 entries then compiled in
# 6-9 s vs 15-16 s before (first kernel 4-7 s); both limits await a low-load re-measurement.
FUSED_ENTRIES_MAX = 160
# ... and batches of at least this many members: the host kernel's program also compiles
# longer at the lecture world's size (first `jaxmdp.sweep` of 10^4 lecture worlds in a fresh
# process, same machine, medians of 2: 3.55 s vs 1.9 s at XLA's defaults, 2.66 s vs 1.01 s
# with the test suite's compile settings) and saves ~0.5 us per member and call (W1M: 1.05 s
# -> 0.58 s). The tile program is cached per structure and tile, so any later call of any
# batch size reuses it; below this size one call saves under 0.07 s, and the first kernel's
# cheaper compile is worth more (README's sweep, the CLI's default sweep, the test suite).
FUSED_MEMBERS_MIN = 2**17

# Tiles as blocks of the batch's grid (`blocks`); False: contiguous runs of members.
BLOCKS = True
# Members per block a multiple of this where the grid allows (whole vectors in every tile,
# as the plan's tiles: `plan.SHARED_TILE_ALIGN`).
BLOCK_ALIGN = SHARED_TILE_ALIGN


def period(g: np.ndarray) -> int | None:
    """The period `c` of a flat batch's discounts `g [B]`, or None: `c` is the first index
    past 1 where `g[0]` recurs, with `B % c == 0` and `g[i] == g[i % c]` for every `i`.
    Such a batch is a flattened grid whose last axis is the discount (a `meshgrid` of step
    rewards x discounts, raveled: W1M's layout), and its tiles are then the `blocks` a 2-D
    batch of that grid would get (issue 15): W1M's contiguous tiles (4 step rewards x all
    1,000 discounts each) ran 20.7 sweeps for members that need 11.5. At most two passes
    over `g` (the flat W1M batch: ~1 ms)."""
    B = g.shape[0]
    if B < 4 or g[1] == g[0]:
        return None
    hits = np.flatnonzero(g[2 : B // 2 + 1] == g[0])
    if hits.size == 0:
        return None
    c = int(hits[0]) + 2
    if B % c:
        return None
    return c if bool(np.all(g.reshape(B // c, c) == g[:c])) else None


def _kernel(st, members: int):
    """`(constants, program, rewards_last)` of the tile kernel for `st` and a batch
    of `members`: the host kernel's `p_consts` of the rows, or the rows themselves for the
    first kernel; `rewards_last`: the program takes a tile's rewards as `[A, S, T]`."""
    if st.rows.num_entries <= FUSED_ENTRIES_MAX and members >= FUSED_MEMBERS_MIN:
        fused = shared_tiles_fused
        return fused.p_consts, fused.tile_program, True
    first = shared_tiles_kernel
    return (lambda rows: rows), first.tile_program, False


def on_host(*trees) -> bool:
    """Every leaf a NumPy array or a jax Array on CPU devices only (its host view is free)."""
    for x in jax.tree.leaves(trees):
        if isinstance(x, jax.Array):
            if any(d.platform != "cpu" for d in x.devices()):
                return False
        elif not isinstance(x, (np.ndarray, np.generic, int, float)):
            return False
    return True


def _stopping() -> bool:
    """Ctrl-C abandoned this solve (`_interrupt.gather`): take no further tile."""
    return _interrupt._STATE.abandoned > 0


def aligned(shape, dtype, align: int = 64) -> np.ndarray:
    """An uninitialised host array whose data starts on an `align`-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + align, np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip : skip + nbytes].view(dtype).reshape(shape)


def _take(x, idx):
    """`x[idx]` (rows): a view for a slice, `np.take` (2x faster than `x[idx]`) for indices."""
    return x[idx] if isinstance(idx, slice) else np.take(x, idx, axis=0)


def _full(x, shape, dtype) -> np.ndarray:
    """`x` in `dtype` with `shape` (the batch shape and the leaf's core axes), as a view: a
    broadcast leaf (a sweep's rewards on its step rewards only, `[n, 1, S, A]`) is never
    materialised for the whole batch, only each tile's members are copied into the tile."""
    a = np.asarray(x)
    if a.dtype != dtype:
        a = a.astype(dtype)
    return a if a.shape == shape else np.broadcast_to(a, shape)


@functools.lru_cache(maxsize=64)
def blocks(batch: tuple, tile: int, align: int = SHARED_TILE_ALIGN):
    """`(rows, cols, a, b)`: the flattened batch seen as a `[rows, cols]` grid (`cols` its last
    axis) cut into blocks of `a x b` members (`a * b <= tile`, about square), or None for
    contiguous tiles (a batch of one axis, or one tile). Members close on a sweep's grid
    need similar numbers of sweeps (W1M: a member's count is a smooth function of step
    reward and discount), and a tile runs until its slowest member stops: W1M's contiguous
    tiles of 3,968 members (4 step rewards x every discount) ran 20.7 sweeps for members
    that need 11.5, blocks of 48 x 72 run 12.45 (from the members' counts).

    Blocks of whole vectors (`a * b` a multiple of `align`: W1M's 48 x 72 compute 1.6%
    of the members twice, 67 x 59 0.8%, but its tile program took ~10% longer per member),
    at least half a `tile`, sides within 4x of each other (more where an axis is too short
    for a square tile), computing the fewest members, the squarest on ties; else (a small grid)
    balanced blocks of any size. The last block of each row or column starts early (as the
    last tile), so some members are computed twice."""
    if len(batch) < 2 or batch[-1] < 2:
        return None
    cols = int(batch[-1])
    rows = int(np.prod(batch[:-1], dtype=np.int64))
    if rows < 2 or rows * cols <= tile:
        return None
    best = None
    # The squarest a tile can be on this grid (a narrow axis forces long blocks).
    least = max(1.0, tile / min(rows, cols) ** 2)
    # b / a <= 4 * least with a * b >= tile / 2 bounds b (W1M: 90 candidates).
    for b in range(1, min(cols, tile, math.isqrt(int(2 * least * tile)) + 1) + 1):
        step = align // math.gcd(b, align)
        a = min(tile // b, rows) // step * step
        aspect = max(a / b, b / a) if a else 0.0
        if a * b >= tile // 2 and aspect <= 4 * least:
            work = -(-rows // a) * a * -(-cols // b) * b
            key = (work, aspect, a, b)
            best = key if best is None or key < best else best
    if best is not None:
        return rows, cols, best[2], best[3]
    nb = -(-cols // max(1, math.isqrt(tile)))
    b = -(-cols // nb)
    na = -(-rows // max(1, tile // b))
    a = min(rows, -(-rows // na))
    return rows, cols, a, b


@functools.lru_cache(maxsize=32)
def _shapes(probs, pc, tol, st, tile: int, dtype, has_v0: bool, program, rewards_last: bool):
    S, A = st.rows.num_states, st.rows.num_actions
    # `program.trace`, not `jax.eval_shape` of the function: the tiles' calls then reuse
    # this trace (JAX caches it by the arguments' types) instead of tracing the unrolled
    # kernel a second time (~0.13 s of a first W1M sweep, issue 15).
    return program.trace(
        probs,
        pc,
        jax.ShapeDtypeStruct((A, S, tile) if rewards_last else (tile, S, A), dtype),
        jax.ShapeDtypeStruct((tile,), dtype),
        jax.ShapeDtypeStruct((tile, S), dtype) if has_v0 else None,
        tol,
        st=st,
    ).out_info


def _result_shapes(probs, pc, tol, st, tile, dtype, has_v0, program, rewards_last):
    """The tile program's result shapes (tracing the unrolled kernel costs ~0.1 s: cached)."""
    spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), (probs, pc, tol))
    return _shapes(
        spec[0], spec[1], spec[2], st, tile, np.dtype(dtype), has_v0, program, rewards_last
    )


def solve(
    mdp, values0, probs, prob_rows, tol, st, *, dtype, tile: int, threads: int, run_many, order=None
) -> Solution:
    """`Solution` of the flattened batch of `mdp` (concrete, on CPU; `transitions` shared:
    only `probs`/`prob_rows`, already in `dtype`, are used). `order [B]` or None: members in
    the order tiles take them (`shared_tiles._order`); results are always in member order."""
    batch = mdp.batch_shape
    S, A = mdp.num_states, mdp.num_actions
    B = int(np.prod(batch, dtype=np.int64))
    R = _full(mdp.rewards, batch + (S, A), dtype)
    g = _full(mdp.discount, batch, dtype)
    v0 = None if values0 is None else _full(values0, batch + (S,), dtype)
    tile = min(tile, B)
    n = -(-B // tile)
    grid = None
    if order is None and BLOCKS:
        grid = blocks(tuple(batch), tile, BLOCK_ALIGN)
        if grid is None and len(batch) == 1 and B > tile:
            c = period(g)
            grid = None if c is None else blocks((B // c, c), tile, BLOCK_ALIGN)
    if grid is not None:
        rows, cols, ba, bb = grid
        nb = -(-cols // bb)
        n = -(-rows // ba) * nb
        tile = ba * bb
    # Each leaf as the tiles see it: `[rows, cols, ...]` (blocks) or `[B, ...]`. A reshape
    # of a broadcast view is a view where its axes allow (a sweep's 2-axis grid); otherwise
    # NumPy copies the leaf once here, as before.
    lead = (rows, cols) if grid is not None else (B,)
    R, g = (x.reshape(lead + x.shape[len(batch) :]) for x in (R, g))
    if v0 is not None:
        v0 = v0.reshape(lead + (S,))

    consts, program, rewards_last = _kernel(st, B)
    pc = consts(prob_rows)  # the host kernel: the transitions' rounding terms, once
    shapes = _result_shapes(probs, pc, tol, st, tile, dtype, v0 is not None, program, rewards_last)
    # Results written in place, batch shape first; 64-byte aligned so that the `Solution`'s
    # arrays are these buffers themselves (`jax.device_put(may_alias=True)` aliases an aligned
    # host buffer on CPU; otherwise it copies: 0.6 s for W1M's 280 MB of results).
    full = [aligned(batch + s.shape[1:], s.dtype) for s in shapes]
    # Two-dimensional views: NumPy scatters whole rows ~8x faster than `[T, S, A]` blocks.
    out = [x.reshape(B, -1) for x in full]
    counter = itertools.count()  # `next` is atomic under the GIL: each tile taken once

    def members(i):
        if grid is not None:  # block (i // nb, i % nb) of the grid: slices of rows and cols
            r0 = min(i // nb * ba, rows - ba)
            c0 = min(i % nb * bb, cols - bb)
            return slice(r0, r0 + ba), slice(c0, c0 + bb)
        lo = min(i * tile, B - tile)
        return slice(lo, lo + tile) if order is None else order[lo : lo + tile]

    def take(x, idx):
        if grid is None:
            return np.ascontiguousarray(_take(x, idx))
        # A block: `ba` runs of `bb` members copied into one contiguous tile.
        return np.ascontiguousarray(x[idx]).reshape((tile,) + x.shape[2:])

    def take_rewards(idx):
        if not rewards_last:
            return take(R, idx)
        # The host kernel takes `[A, S, T]`: one transposing copy of the block here costs
        # less than the program's two transposes of a batch-first tile (measured).
        block = _take(R, idx) if grid is None else R[idx]
        return np.ascontiguousarray(np.moveaxis(block, (-1, -2), (0, 1))).reshape(A, S, tile)

    def store(idx, res):
        for dst, src in zip(out, res, strict=True):
            src = np.asarray(src).reshape(len(src), -1)
            if grid is None:
                dst[idx] = src
            else:
                dst.reshape(rows, cols, -1)[idx] = src.reshape(ba, bb, -1)

    def work(_k):
        pending = None
        while not _stopping():
            i = next(counter)
            if i >= n:
                break
            idx = members(i)
            r, gg = take_rewards(idx), take(g, idx)
            vv = None if v0 is None else take(v0, idx)
            res = program(probs, pc, r, gg, vv, tol, st=st)
            if pending is not None:
                store(*pending)
            pending = (idx, res)
        if pending is not None:
            store(*pending)

    if threads > 1:
        run_many(work, threads)
    else:
        work(0)
    # One batched transfer (aliasing the aligned buffers): a call per field cost ~0.1 ms each.
    return Solution(*jax.device_put(tuple(full), may_alias=True))
