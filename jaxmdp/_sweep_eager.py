"""The eager path of `jaxmdp.sweep` (issue 15): a chunk whose `solve` plan is "shared_tiles"
is built by one jitted program and solved by `solve` on the concrete batch (tiles of members
iterated in cache on host threads, the shared transitions compiled in), instead of as one
program where the transitions are traced (plan "shared_vi"). Same per-member iterations,
status and certificate; values within rounding of the one-program form.

The chunk is built by parts where that is cheaper (`_build_by_parts`): a batched leaf that
depends on a few of the swept axes only (W1M: the rewards on the 1,000 step rewards, the
discount on the 1,000 discounts) is built by the builder once per point of ITS axes' grid
(0.1 s -> ~0.055 s for W1M's 10^6 members: `vmap(builder)` over the whole chunk recomputes
every leaf for every member). A chunk of whole rows of the grid then gets those leaves
broadcast (`[rows, 1, S, A]`, `[1, cols]`), which `solve`'s host tiles read member by member
without copying them to the batch (W1M: ~50 ms -> ~2 ms, and 176 MB of rewards never
allocated); other chunks get the rows copied to their members on the host.
The builder's arithmetic is the same, but XLA compiles it for another batch size: the
members' MDPs are equal within rounding (bit for bit for the lecture world, checked on 10^5
members), and the tests compare the results within rounding as for every other path.

A chunk of whole rows of the sweep's last axis is built as a `[rows, cols]` grid
(`grid_rows`), so that `solve`'s host tiles are blocks of nearby members, which need similar
numbers of sweeps (`shared_tiles_host.blocks`); its results come back flat, in member order.

Also the chunk's arguments on its devices (`chunk_args`), which both paths use. Compiled
programs are kept by the caller's cache (`jaxmdp._sweep._cached`, passed in: no import cycle).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import numpy as np

from jaxmdp._exec import plan as plan_mod
from jaxmdp._exec.shared_tiles_host import aligned
from jaxmdp._mdp import MDP
from jaxmdp._solution import Solution
from jaxmdp._solve import solve
from jaxmdp._solvers.value_iteration import ValueIteration
from jaxmdp._sweep_setup import Setup, Spec, call_builder, chunk_index, chunk_params

# Build by parts only when every batched leaf's own grid is at most this fraction of the
# chunk (otherwise the row copies would cost about what they save).
_PARTS_RATIO = 8


def _take(x, index):
    """`x[index]`: one device's shard of a host array (`jax.make_array_from_callback`)."""
    return x[index]


def chunk_args(setup: Setup, k: int):
    """Chunk `k`'s swept parameters on the sweep's devices (sharded over its mesh, if any)."""
    params = chunk_params(setup, k)
    if setup.spec.mesh is None:
        return tuple(jax.device_put(p, setup.devices[0]) for p in params)
    sharding = jax.sharding.NamedSharding(setup.spec.mesh, jax.sharding.PartitionSpec("batch"))
    return tuple(
        jax.make_array_from_callback((setup.chunk,), sharding, functools.partial(_take, p))
        for p in params
    )


def _build(params, spec: Spec) -> MDP:
    """The chunk's MDPs: leaves that depend on no swept parameter stay unbatched."""
    out_axes = MDP(*(0 if b else None for b in spec.batched))  # type: ignore[arg-type]
    build = functools.partial(call_builder, spec.builder, spec.names)
    return jax.vmap(lambda *q: build(q), out_axes=out_axes)(*params)


def _parts(setup: Setup) -> dict[tuple[int, ...], list[str]] | None:
    """`{axis positions: batched leaves depending on exactly those axes}`, when every such
    leaf's grid is small against the chunk (see `_PARTS_RATIO`); None otherwise."""
    lens = [len(v) for v in setup.axes.values()]
    groups: dict[tuple[int, ...], list[str]] = {}
    for leaf, batched in zip(MDP._fields, setup.spec.batched, strict=True):
        if not batched:
            continue
        pos = tuple(i for i, n in enumerate(setup.spec.names) if n in setup.depends[leaf])
        if math.prod(lens[i] for i in pos) * _PARTS_RATIO > setup.chunk:
            return None
        groups.setdefault(pos, []).append(leaf)
    return groups


def _build_by_parts(setup: Setup, k: int, build: Callable) -> MDP | None:
    """Chunk `k`'s MDPs from each batched leaf's own grid (module docstring), on the host;
    None when `_parts` says no. `build`: the jitted `_build` (its batch size here is the
    leaf's grid, not the chunk)."""
    groups = _parts(setup)
    if groups is None:
        return None
    device = setup.devices[0]
    axes = list(setup.axes.values())
    lens = [len(v) for v in axes]
    batch = grid_rows(setup)
    count = math.prod(batch)

    @functools.cache
    def multi():  # per axis, the chunk members' coordinates (not needed by broadcast leaves)
        return tuple(m[:count] for m in chunk_index(setup, k))

    leaves: dict[str, object] = {}
    broadcast: dict[str, np.ndarray] = {}  # `[rows or 1, cols or 1, ...]` (`_broadcast_leaf`)
    taken = False  # some batched leaf copied out with the chunk's shape
    for pos, names in groups.items():
        sub = tuple(lens[i] for i in pos)
        at = np.unravel_index(np.arange(math.prod(sub)), sub) if pos else ()
        # Axes the leaves do not depend on take their first value (any value gives the same).
        params = [
            np.asarray(axes[i]).astype(d)[at[pos.index(i)] if i in pos else np.zeros(1, int)]
            for i, d in enumerate(setup.dtypes)
        ]
        size = max(len(p) for p in params)
        params = [np.broadcast_to(p, (size,)) for p in params]
        part = build(tuple(jax.device_put(p, device) for p in params))
        for leaf, batched in zip(MDP._fields, setup.spec.batched, strict=True):
            if not batched:  # shared by the whole sweep: the same from any part
                leaves.setdefault(leaf, getattr(part, leaf))
        for leaf in names:
            src = np.asarray(getattr(part, leaf))
            small = _broadcast_leaf(setup, k, batch, pos, src)
            if small is not None:
                broadcast[leaf] = small
                continue
            taken = True
            rows = np.ravel_multi_index(tuple(multi()[i] for i in pos), sub) if pos else 0
            rows = np.broadcast_to(rows, (count,))
            dst = aligned((count, *src.shape[1:]), src.dtype)
            # mode="clip": NumPy's unbuffered take (the rows are in range by construction).
            np.take(src, rows, axis=0, out=dst, mode="clip")
            # An aligned host buffer is aliased, not copied, by a CPU array (also reshaped:
            # a view with the same start).
            dst = dst.reshape(batch + src.shape[1:])
            leaves[leaf] = jax.device_put(dst, device, may_alias=True)
    if broadcast and not taken:
        if np.broadcast_shapes(*(x.shape[:2] for x in broadcast.values())) != batch:
            # The leaves alone would give a smaller batch (a builder that ignores one axis):
            # the one with the fewest numbers per member is copied out to the chunk's shape.
            leaf = min(broadcast, key=lambda n: math.prod(broadcast[n].shape[2:]))
            small = broadcast[leaf]
            dst = aligned(batch + small.shape[2:], small.dtype)
            dst[...] = small
            broadcast[leaf] = dst
    for leaf, x in broadcast.items():
        leaves[leaf] = jax.device_put(x, device, may_alias=True)
    return MDP(
        leaves["transitions"],
        leaves["rewards"],
        leaves["discount"],
        info=part.info,
    )


def _broadcast_leaf(setup: Setup, k: int, batch: tuple, pos: tuple, src: np.ndarray):
    """Chunk `k`'s leaf as a broadcastable `[rows or 1, cols or 1, ...]` array of the part
    `src` (`[prod of pos's axes, ...]`, row-major over them), or None where that form does not
    apply: a `[rows, cols]` chunk of whole rows of the grid without padding, and a leaf that
    depends on all the axes flattened into its rows or on none of them. W1M's rewards are then
    `[1000, 1, S, A]` instead of 176 MB copied row by row (`solve`'s host tiles copy each
    tile's members from the broadcast view: `shared_tiles_host._full`)."""
    if len(batch) != 2:
        return None
    rows, cols = batch
    start = k * setup.chunk
    last = len(setup.axes) - 1
    lead = tuple(i for i in pos if i != last)
    if start % cols or start + rows * cols > setup.size or lead not in ((), tuple(range(last))):
        return None
    core = src.shape[1:]
    width = cols if last in pos else 1
    if not lead:
        return src.reshape((1, width) + core)
    first = start // cols
    return src.reshape((-1, width) + core)[first : first + rows]


def grid_rows(setup: Setup) -> tuple[int, ...]:
    """The batch shape of chunk `k`'s MDPs built by parts: `(rows, cols)`, whole rows of the
    sweep's last axis (`cols` of its values), when the chunk is the whole grid (its padding
    left out) or every chunk is whole rows; `(chunk,)` otherwise. The tiles of a grid are
    blocks of nearby members (`shared_tiles_host.blocks`), which need similar numbers of
    sweeps (W1M: 12.5 sweeps per tile instead of 20.7)."""
    cols = len(list(setup.axes.values())[-1])
    if setup.num_chunks == 1:
        if setup.size > cols:
            return (setup.size // cols, cols)
    elif setup.chunk % cols == 0 and setup.chunk > cols:
        return (setup.chunk // cols, cols)
    return (setup.chunk,)


def eager_candidate(setup: Setup, solver) -> bool:
    """Could `solve` on the built chunk plan "shared_tiles" (checked on the chunk itself)?
    Value iteration, transitions shared by the sweep, one device of this process."""
    spec = setup.spec
    return (
        type(solver) is ValueIteration
        and not spec.batched[0]
        and spec.mesh is None
        and not setup.spans
        and len(setup.devices) == 1
    )


def solve_eagerly(setup: Setup, solver, k: int, cached: Callable) -> Solution | None:
    """Chunk `k` built by one jitted program and solved by `solve` on the concrete batch,
    when its plan is "shared_tiles" (tiles of members iterated in cache on host threads, the
    shared transitions compiled in: issue 15); None otherwise (the chunk then runs as one
    program, where the transitions are traced and the plan is "shared_vi"). `cached(key,
    make)`: the caller's cache of compiled programs."""
    if not eager_candidate(setup, solver):
        return None
    spec = setup.spec
    build = cached(("build", spec), lambda: jax.jit(functools.partial(_build, spec=spec)))
    mdp = None
    if setup.devices[0].platform == "cpu":
        mdp = _build_by_parts(setup, k, build)
    if mdp is None:
        mdp = build(chunk_args(setup, k))
    devices = setup.devices[:1]
    if plan_mod.make_plan(plan_mod.gather_facts(mdp, None, solver, devices=devices)).strategy != (
        "shared_tiles"
    ):
        return None
    sol = solve(mdp, solver, max_iters=spec.max_iters, devices=devices)
    if len(mdp.batch_shape) == 1:
        return sol
    # A chunk built as a grid (`grid_rows`): its members in order, on the host (views).
    n = math.prod(mdp.batch_shape)
    return Solution(*(np.asarray(x).reshape((n, *x.shape[2:])) for x in sol))  # type: ignore[arg-type]
