"""`sweep`: a grid of parameter values -> batched MDPs -> one compiled solve -> labelled results.

How it works:

1. The axes are flattened into one batch of `B` parameter points (row-major).
2. The builder is traced once on scalars (`jax.make_jaxpr`) and each MDP leaf's data
   dependence on the swept parameters is read off the jaxpr. A leaf that depends on none
   (typically `transitions` when only rewards and discount are swept) is built once and stays
   shared: it goes through `jax.vmap(builder, out_axes=None)` unbatched, and `jaxmdp.solve`
   keeps it unbatched, so every backup is one `[S*A, S] x [S, B]` matrix-matrix product
   instead of `B` matrix-vector products over `B` copies of the transitions.
3. Build and solve run in ONE jitted program per chunk. Inside, the chunk is cut into tiles
   of a fixed size (`_TILE`: 256 members on CPU, 8192 on accelerators, or the whole sweep if
   smaller) solved one after the other (`lax.map`); each tile is `vmap(builder)` then
   `solve`, so a tile whose members have all converged stops early.
4. Chunks: the batch is cut into equal chunks (whole numbers of tiles) that fit in memory (an
   estimate, below); the last one is padded, so one compiled program serves them all.
5. Devices: with several devices each chunk's tiles are split across them (`jax.shard_map`
   over a `jax.sharding.Mesh`, batch padded to whole tiles per device).

Reproducibility: every member is computed by the same tile program at the same position in
its tile whatever the chunking and the number of devices. The same call on the same machine
gives the same bits; chunked, unchunked, single- and multi-device runs agree within rounding
(on the machines tested, bit for bit, but the enclosing programs are compiled separately and
XLA promises no more; nor are the last bits the same on another CPU, whose vector width XLA
picks). Without fixed tiles the differences would be systematic: XLA picks the kernel of the
`[S*A, S] x [S, N]` product by N, and a member's last bits depend on it. Only when memory
cannot hold one full tile is the tile made smaller.

Several hosts: call `jax.distributed.initialize()` on every host before `sweep` (same program,
same arguments on every process). `jax.devices()` then lists the devices of all hosts, the
batch is sharded across all of them, and every process receives the whole result.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxmdp._mdp import MDP
from jaxmdp._solution import Solution
from jaxmdp._solve import DEFAULT_MAX_ITERS, solve
from jaxmdp._solvers.modified_policy_iteration import ModifiedPolicyIteration
from jaxmdp._solvers.value_iteration import ValueIteration
from jaxmdp._sweep_result import TABLE_COLUMNS, SweepResult

_LEAVES = MDP._fields  # ("transitions", "rewards", "discount")
# Fraction of the free memory a sweep plans to use: host RAM is shared with everything else
# (and holds the results); device memory is the sweep's own but XLA needs scratch space.
_HOST_FRACTION = 0.5
_DEVICE_FRACTION = 0.8
# Members per tile (see the module docstring): large enough for an efficient matrix product,
# small enough that converged tiles stop early; accelerators need wide products to be busy.
_TILE = {"cpu": 256}
_TILE_ACCELERATOR = 8192
# With `progress=True` and no chunk_size, the sweep runs in about this many chunks.
_PROGRESS_CHUNKS = 20


# -- which MDP leaves depend on which swept parameters ---------------------------------------


def _sub_jaxpr(eqn):
    """The inner jaxpr of a call-like equation (jit, custom_jvp, remat...), if 1:1 in arity."""
    for p in eqn.params.values():
        inner = getattr(p, "jaxpr", p)
        if hasattr(inner, "eqns") and (
            len(inner.invars) == len(eqn.invars) and len(inner.outvars) == len(eqn.outvars)
        ):
            return inner
    return None


def _dependence(jaxpr, in_masks: Sequence[int]) -> list[int]:
    """Bitmask of the inputs each output depends on (data flow; conservative for loops)."""
    dep = {id(v): m for v, m in zip(jaxpr.invars, in_masks, strict=True)}

    def mask(v) -> int:  # literals and constants depend on nothing
        return dep.get(id(v), 0)

    for eqn in jaxpr.eqns:
        ins = [mask(v) for v in eqn.invars]
        inner = _sub_jaxpr(eqn)
        if inner is not None:
            outs = _dependence(inner, ins)
        else:
            m = functools.reduce(int.__or__, ins, 0)
            outs = [m] * len(eqn.outvars)
        for v, m in zip(eqn.outvars, outs, strict=True):
            dep[id(v)] = m
    return [mask(v) for v in jaxpr.outvars]


def _call_builder(builder, names, params) -> MDP:
    out = builder(**dict(zip(names, params, strict=True)))
    if not (isinstance(out, MDP) or (isinstance(out, tuple) and len(out) == 3)):
        raise TypeError(f"the sweep's builder must return a jaxmdp.MDP; got {type(out).__name__}.")
    return MDP(*out)


def _trace_builder(builder, names, dtypes):
    """Builder output shapes and, per MDP leaf, the names of the parameters it depends on."""
    structs = [jax.ShapeDtypeStruct((), d) for d in dtypes]
    closed, shapes = jax.make_jaxpr(lambda *p: _call_builder(builder, names, p), return_shape=True)(
        *structs
    )
    masks = _dependence(closed.jaxpr, [1 << k for k in range(len(names))])
    depends = {
        leaf: tuple(n for k, n in enumerate(names) if m >> k & 1)
        for leaf, m in zip(_LEAVES, masks, strict=True)
    }
    shapes = MDP(*shapes)
    expected = {"transitions": 3, "rewards": 2, "discount": 0}
    for leaf, nd in expected.items():
        if len(getattr(shapes, leaf).shape) != nd:
            raise ValueError(
                "the sweep's builder must return ONE MDP for scalar parameters "
                "(transitions [S, A, S], rewards [S, A], discount []); got "
                + ", ".join(f"{k} {tuple(getattr(shapes, k).shape)}" for k in expected)
                + "."
            )
    return shapes, depends


# -- the compiled program --------------------------------------------------------------------


class _Spec(NamedTuple):
    """Static part of the program (hashable: the jit cache key)."""

    builder: Callable
    names: tuple[str, ...]
    batched: tuple[bool, bool, bool]  # per MDP leaf: carries the batch axis
    max_iters: int
    tile: int  # members per tile
    mesh: Any  # jax.sharding.Mesh with one axis "batch", or None on one device


def _solve_tiles(params, solver, spec: _Spec) -> Solution:
    """Solves `[k * tile]` members as k tiles, one after the other."""
    out_axes = MDP(*(0 if b else None for b in spec.batched))

    def one_tile(p):
        build = functools.partial(_call_builder, spec.builder, spec.names)
        mdp = jax.vmap(lambda *q: build(q), out_axes=out_axes)(*p)
        # one device per tile: the sweep does its own splitting across devices
        return solve(mdp, solver, max_iters=spec.max_iters, devices=jax.local_devices()[:1])

    out = jax.lax.map(one_tile, tuple(x.reshape(-1, spec.tile) for x in params))
    return Solution(*(x.reshape((-1, *x.shape[2:])) for x in out))


@functools.partial(jax.jit, static_argnames=("spec",))
def _build_and_solve(params, solver, *, spec: _Spec) -> Solution:
    if spec.mesh is None:
        return _solve_tiles(params, solver, spec)
    batch, replicated = jax.sharding.PartitionSpec("batch"), jax.sharding.PartitionSpec()
    per_device = jax.shard_map(
        functools.partial(_solve_tiles, spec=spec),
        mesh=spec.mesh,
        in_specs=(batch, replicated),
        out_specs=batch,
        check_vma=False,
    )
    return per_device(params, solver)


# -- memory ------------------------------------------------------------------------------------


def _member_bytes(
    num_states: int, num_actions: int, itemsize: int, *, transitions_batched: bool, solver
) -> int:
    """Estimated device bytes one batch member needs while a sweep runs.

    Counts the rewards, the solver state (values, Q, the next Q, the stopping statistics)
    with the loop's double buffering, the member's own transitions when they are batched
    (the builder's result plus one intermediate), and for policy iteration (or an unknown
    solver) the `[S, S]` matrices of the exact policy evaluation. Needed for the members of
    one tile at a time; the results (`_result_bytes`) for a whole chunk.
    """
    S, A = num_states, num_actions
    n = 8 * S + 6 * S * A + 16
    if transitions_batched:
        n += 2 * S * A * S
    if not isinstance(solver, (ValueIteration, ModifiedPolicyIteration)):
        n += 6 * S * S
    return n * itemsize


def _result_bytes(num_states, num_actions, itemsize) -> int:
    """Bytes of one member's `Solution`."""
    S, A = num_states, num_actions
    return itemsize * (S + S * A + 2) + 4 * (S + 2)


def _host_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30  # unknown platform: assume a laptop


def _device_budget(devices) -> tuple[int, str]:
    """Bytes the sweep may use on each device, and where that figure came from."""
    stats = []
    for d in [d for d in devices if d.process_index == jax.process_index()]:
        try:
            stats.append(d.memory_stats())
        except Exception:  # noqa: BLE001 - backends without stats
            stats.append(None)
    if all(s and "bytes_limit" in s for s in stats):
        free = min(s["bytes_limit"] - s.get("bytes_in_use", 0) for s in stats)
        return int(free * _DEVICE_FRACTION), (
            f"{_DEVICE_FRACTION:.0%} of the free memory of {devices[0].platform} device(s)"
        )
    # CPU devices share the host's RAM.
    free = _host_available()
    return int(free * _HOST_FRACTION / len(devices)), (
        f"{_HOST_FRACTION:.0%} of the host's available RAM ({free / 2**30:.1f} GiB)"
        + (f" split over {len(devices)} devices" if len(devices) > 1 else "")
    )


def _plan_chunks(size: int, limit: int, unit: int) -> tuple[int, int]:
    """`(chunk, num_chunks)`: equal chunks, whole numbers of `unit` (tiles on all devices),
    of at most `limit` members (at least one unit), covering `size` members with padding."""
    limit = max(limit // unit * unit, unit)
    one = -(-size // unit) * unit
    if limit >= one:
        return one, 1
    num_chunks = -(-size // limit)
    return -(-size // (num_chunks * unit)) * unit, num_chunks


def _mib(n) -> str:
    return f"{n / 2**20:,.1f} MiB"


# -- devices -----------------------------------------------------------------------------------


def _resolve_devices(devices) -> list:
    if devices is None:
        return list(jax.devices())
    if isinstance(devices, int):
        avail = jax.devices()
        if not 1 <= devices <= len(avail):
            raise ValueError(
                f"devices={devices}: between 1 and {len(avail)} devices are available."
            )
        return list(avail[:devices])
    devs = list(devices)
    if not devs:
        raise ValueError("devices must name at least one device.")
    return devs


def _to_host(x) -> np.ndarray:
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    from jax.experimental import multihost_utils  # several hosts: gather every shard

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


# -- the public entry points -------------------------------------------------------------------


class _Setup(NamedTuple):
    axes: dict[str, np.ndarray]
    flat: list[np.ndarray]  # per axis, [num_chunks * chunk] parameter values (padded)
    size: int
    chunk: int
    num_chunks: int
    spec: _Spec
    devices: list
    depends: dict[str, tuple[str, ...]]
    bytes_per_member: int


def _as_axes(axes: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not axes:
        raise ValueError(
            "sweep needs at least one axis: sweep(builder, name=values, ...), e.g. "
            "sweep(build, discount=np.linspace(0.9, 1, 11))."
        )
    out = {}
    for name, vals in axes.items():
        if name in TABLE_COLUMNS or name.startswith("value_"):
            raise ValueError(
                f"axis name {name!r} is reserved for a column of the sweep's table; rename it."
            )
        arr = np.asarray(vals)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"axis {name!r} must be a non-empty 1-D array of values; got shape {arr.shape}."
            )
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"axis {name!r} must be numeric; got dtype {arr.dtype}.")
        out[name] = arr
    return out


def _setup(builder, solver, chunk_size, max_iters, devices, memory_limit, progress, axes) -> _Setup:
    if not callable(builder):
        raise TypeError(f"builder must be callable (params -> MDP); got {type(builder).__name__}.")
    if not (isinstance(max_iters, (int, np.integer)) and max_iters >= 1):
        raise ValueError(f"max_iters must be an int >= 1; got {max_iters!r}.")
    axes = _as_axes(axes)
    names = tuple(axes)
    dtypes = [jax.dtypes.canonicalize_dtype(v.dtype) for v in axes.values()]
    shapes, depends = _trace_builder(builder, names, dtypes)
    batched = tuple(bool(depends[leaf]) for leaf in _LEAVES)
    if not any(batched):  # a builder that ignores its parameters: give the batch a carrier
        batched = (False, False, True)
    size = math.prod(len(v) for v in axes.values())
    devs = _resolve_devices(devices)
    n_dev = len(devs)

    S, A = shapes.rewards.shape
    item = np.dtype(shapes.rewards.dtype).itemsize
    per = _member_bytes(S, A, item, transitions_batched=batched[0], solver=solver)
    out = _result_bytes(S, A, item)  # a member's outputs, kept for the whole chunk
    fixed = sum(
        2 * math.prod(getattr(shapes, leaf).shape) * item
        for leaf, b in zip(_LEAVES, batched, strict=True)
        if not b
    )
    if memory_limit is None:
        budget, source = _device_budget(devs)
        if devs[0].platform == "cpu":  # the results accumulate in the same RAM
            budget -= out * size // n_dev
    else:
        budget, source = int(memory_limit), f"memory_limit={int(memory_limit):,} bytes"
    room = budget - fixed
    if room < per + out:
        raise MemoryError(
            f"this sweep cannot fit even one MDP per device: each member needs about "
            f"{_mib(per + out)} (S={S}, A={A}, {np.dtype(shapes.rewards.dtype).name}, "
            f"transitions {'batched' if batched[0] else 'shared'}) plus {_mib(fixed)} shared, "
            f"but the budget is {_mib(max(budget, 0))} per device ({source})."
        )
    # One tile's working state plus the outputs of a whole chunk must fit on each device.
    full_tile = min(_TILE.get(devs[0].platform, _TILE_ACCELERATOR), size)
    tile = min(full_tile, room // (per + out))
    tiles_fit = (room - tile * per) // (tile * out) * n_dev  # tiles per chunk, all devices
    if chunk_size is not None:
        if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
            raise ValueError(f"chunk_size must be an int >= 1; got {chunk_size!r}.")
        if -(-min(chunk_size, size) // tile) > tiles_fit:
            warnings.warn(
                f"chunk_size={chunk_size} exceeds the {tiles_fit * tile} members estimated to "
                f"fit in memory ({_mib(per)} of working state per member in tiles of {tile}, "
                f"{_mib(out)} of results per member; {source}).",
                ResourceWarning,
                stacklevel=3,
            )
        limit = int(chunk_size)
    else:
        limit = tiles_fit * tile
        if progress:  # several chunks so that the bar moves (same program, same results)
            limit = min(limit, -(-size // _PROGRESS_CHUNKS))
    chunk, num_chunks = _plan_chunks(size, limit, tile * n_dev)
    total = num_chunks * chunk
    grids = np.meshgrid(*axes.values(), indexing="ij")
    flat = [
        np.pad(g.reshape(-1).astype(d), (0, total - size), mode="edge")
        for g, d in zip(grids, dtypes, strict=True)
    ]
    mesh = jax.sharding.Mesh(np.array(devs), ("batch",)) if n_dev > 1 else None
    spec = _Spec(builder, names, batched, int(max_iters), int(tile), mesh)
    return _Setup(axes, flat, size, chunk, num_chunks, spec, devs, depends, per)


def _chunk_args(setup: _Setup, k: int):
    sl = slice(k * setup.chunk, (k + 1) * setup.chunk)
    if setup.spec.mesh is None:
        return tuple(jax.device_put(f[sl], setup.devices[0]) for f in setup.flat)
    sharding = jax.sharding.NamedSharding(setup.spec.mesh, jax.sharding.PartitionSpec("batch"))
    return tuple(
        jax.make_array_from_callback((setup.chunk,), sharding, lambda i, x=f[sl]: x[i])
        for f in setup.flat
    )


def _progress(total: int, enabled: bool | None, num_chunks: int):
    if enabled is False or (enabled is None and num_chunks < 2):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if enabled is None:
            return None

        class _Plain:  # progress=True without tqdm: one line per chunk on stderr
            n = 0

            def update(self, k):
                self.n += k
                print(f"sweep: {self.n}/{total} MDPs", file=sys.stderr, flush=True)

            def close(self):
                pass

        return _Plain()
    return tqdm(total=total, unit="MDP", desc="sweep", file=sys.stderr)


def sweep(
    builder: Callable[..., MDP],
    solver=None,
    *,
    chunk_size: int | None = None,
    max_iters: int = DEFAULT_MAX_ITERS,
    progress: bool | None = None,
    devices=None,
    memory_limit: int | None = None,
    **axes,
) -> SweepResult:
    """Solves an MDP for every combination of parameter values, in one compiled program.

    Example:
      >>> result = jaxmdp.sweep(
      ...     lambda step_reward, discount: jaxmdp.models.gridworld(
      ...         step_reward=step_reward, slip=0.2, discount=discount),
      ...     step_reward=np.linspace(-2, 0, 201), discount=np.linspace(0.9, 1, 11))
      >>> result.values[i, j]      # [S] at the i-th step reward and j-th discount
      >>> result.to_table()        # one row per (step_reward, discount)

    Args:
      builder: `builder(**params) -> MDP` for SCALAR parameters (one MDP, no batch axes);
        it must be traceable by JAX (jnp operations, static structure). Fixed arguments go in
        with `functools.partial` or a lambda. Leaves that do not depend on any swept
        parameter are built once and shared by the whole batch (never copied).
      solver: `ValueIteration()` (default), `PolicyIteration()`,
        `ModifiedPolicyIteration(...)` or any solver (see `jaxmdp.solve`).
      chunk_size: members per compiled call; default: as many as fit in memory (see
        `memory_limit`). Every chunk has the same size, a whole number of tiles on every
        device (rounded down, at least one tile each; the last chunk is padded), so one
        program serves all. Results do not depend on it beyond rounding (the same tile
        program computes every member).
      max_iters: per-member iteration cap (see `jaxmdp.solve`).
      progress: progress bar (tqdm if installed): `None` shows it when there are several
        chunks, `True` always (then, without `chunk_size`, the sweep runs in about 20
        chunks so that the bar moves), `False` never.
      devices: `None` (all of `jax.devices()`), a number of devices, or a list of devices.
        With more than one the batch axis is sharded across them.
      memory_limit: bytes the sweep may use per device; default: 80% of the free device
        memory on accelerators, 50% of the host's available RAM (shared by CPU devices).
        Raises `MemoryError` if not even one member fits.
      **axes: `name=values`, 1-D arrays of numbers, one per swept parameter, in the order the
        result's axes will have. The names are the builder's keyword arguments (the names
        `status`, `status_name`, `num_iters`, `residual`, `error_bound`, `policy` and
        `value_*` are reserved for the table).

    Returns:
      `SweepResult`: the `Solution` fields indexed by the axes (`result.values[i, j]`), the
      coordinates (`result.axes`), `to_table()`, `save(path)`, `summary()`.

    Raises:
      ValueError: bad axes or arguments; the builder's own errors pass through.
      MemoryError: the estimate for one member (and the shared leaves) exceeds the budget.
    """
    if solver is None:
        solver = ValueIteration()
    setup = _setup(builder, solver, chunk_size, max_iters, devices, memory_limit, progress, axes)
    out_struct = jax.eval_shape(
        functools.partial(_build_and_solve, spec=setup.spec),
        tuple(jax.ShapeDtypeStruct((setup.chunk,), f.dtype) for f in setup.flat),
        solver,
    )
    out = Solution(*(np.empty((setup.size, *x.shape[1:]), x.dtype) for x in out_struct))
    bar = _progress(setup.size, progress, setup.num_chunks)
    try:
        for k in range(setup.num_chunks):
            sol = _build_and_solve(_chunk_args(setup, k), solver, spec=setup.spec)
            start = k * setup.chunk
            n = min(setup.chunk, setup.size - start)
            for dst, src in zip(out, sol, strict=True):
                dst[start : start + n] = _to_host(src)[:n]
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    grid = tuple(len(v) for v in setup.axes.values())
    solution = Solution(*(x.reshape(grid + x.shape[1:]) for x in out))
    return SweepResult(
        axes=setup.axes,
        solution=solution,
        depends=setup.depends,
        chunk_size=setup.chunk,
        num_chunks=setup.num_chunks,
        tile_size=setup.spec.tile,
        num_devices=len(setup.devices),
        bytes_per_member=setup.bytes_per_member,
    )


def lower_sweep(
    builder: Callable[..., MDP],
    solver=None,
    *,
    chunk_size: int | None = None,
    max_iters: int = DEFAULT_MAX_ITERS,
    devices=None,
    memory_limit: int | None = None,
    **axes,
) -> jax.stages.Lowered:
    """The program `sweep` would run for one chunk, lowered but not run (same arguments).

    For inspection: `lower_sweep(...).as_text()` (StableHLO), `.compile().as_text()` (the
    optimised HLO XLA runs), `.compile().memory_analysis()`, `.cost_analysis()`.
    """
    if solver is None:
        solver = ValueIteration()
    setup = _setup(builder, solver, chunk_size, max_iters, devices, memory_limit, False, axes)
    return _build_and_solve.lower(_chunk_args(setup, 0), solver, spec=setup.spec)
