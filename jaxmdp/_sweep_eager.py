"""The eager path of `jaxmdp.sweep` (issue 15): a chunk whose `solve` plan is "shared_tiles"
is built by one jitted program and solved by `solve` on the concrete batch (tiles of members
iterated in cache on host threads, the shared transitions compiled in), instead of as one
program where the transitions are traced (plan "shared_vi"). Same per-member iterations,
status and certificate; values within rounding of the one-program form.

The chunk is built by parts where that is cheaper (`_build_by_parts`): a batched leaf that
depends on a few of the swept axes only (W1M: the rewards on the 1,000 step rewards, the
discount on the 1,000 discounts) is built by the builder once per point of ITS axes' grid,
then its rows are copied to the chunk's members on the host (0.1 s -> ~0.055 s for W1M's
10^6 members: `vmap(builder)` over the whole chunk recomputes every leaf for every member).
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
    multi = chunk_index(setup, k)  # per axis, the chunk members' coordinates
    batch = grid_rows(setup)
    count = math.prod(batch)
    multi = tuple(m[:count] for m in multi)
    leaves: dict[str, object] = {}
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
        rows = np.ravel_multi_index(tuple(multi[i] for i in pos), sub) if pos else 0
        rows = np.broadcast_to(rows, (count,))
        for leaf in names:
            src = np.asarray(getattr(part, leaf))
            dst = aligned((count, *src.shape[1:]), src.dtype)
            # mode="clip": NumPy's unbuffered take (the rows are in range by construction).
            np.take(src, rows, axis=0, out=dst, mode="clip")
            # An aligned host buffer is aliased, not copied, by a CPU array (also reshaped:
            # a view with the same start).
            dst = dst.reshape(batch + src.shape[1:])
            leaves[leaf] = jax.device_put(dst, device, may_alias=True)
    return MDP(
        leaves["transitions"],
        leaves["rewards"],
        leaves["discount"],
        info=part.info,
    )


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
