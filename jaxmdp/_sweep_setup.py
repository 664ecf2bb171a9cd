"""`sweep`'s preparation: arguments, the builder's traced structure, tiles and chunks.

`prepare` checks the arguments, traces the builder once on scalars (`jax.make_jaxpr`) and reads
off which MDP leaf depends on which swept parameter (a leaf that depends on none is built
once and shared), then plans tiles and chunks from the memory estimate (`_sweep_memory`).
See `jaxmdp._sweep` for how they are used.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxmdp import _multihost, _sweep_memory
from jaxmdp._exec import placement
from jaxmdp._exec import plan as exec_plan
from jaxmdp._mdp import MDP
from jaxmdp._sweep_result import TABLE_COLUMNS

_LEAVES = MDP._fields  # ("transitions", "rewards", "discount")
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


def call_builder(builder, names, params) -> MDP:
    out = builder(**dict(zip(names, params, strict=True)))
    if not (isinstance(out, MDP) or (isinstance(out, tuple) and len(out) == 3)):
        raise TypeError(f"the sweep's builder must return a jaxmdp.MDP; got {type(out).__name__}.")
    return MDP(*out)


def trace_builder(builder, names, dtypes):
    """Builder output shapes, per MDP leaf the names of the parameters it depends on, and the
    traced program (for the checkpoint's fingerprint)."""
    structs = [jax.ShapeDtypeStruct((), d) for d in dtypes]
    closed, shapes = jax.make_jaxpr(lambda *p: call_builder(builder, names, p), return_shape=True)(
        *structs
    )
    masks = _dependence(closed.jaxpr, [1 << k for k in range(len(names))])
    shapes = MDP(*shapes)
    # A field may hold several leaves (sparse transitions: `next_states` and `probs`); it
    # depends on a parameter if any of its leaves does.
    depends, start = {}, 0
    for leaf in _LEAVES:
        n = len(jax.tree.leaves(getattr(shapes, leaf)))
        m = functools.reduce(int.__or__, masks[start : start + n], 0)
        depends[leaf] = tuple(name for k, name in enumerate(names) if m >> k & 1)
        start += n
    expected = {"transitions": 3, "rewards": 2, "discount": 0}
    for leaf, nd in expected.items():
        if any(len(x.shape) != nd for x in jax.tree.leaves(getattr(shapes, leaf))):
            raise ValueError(
                "the sweep's builder must return ONE MDP for scalar parameters "
                "(transitions [S, A, S] or sparse [S, A, K], rewards [S, A], discount []); got "
                + ", ".join(
                    f"{k} {[tuple(x.shape) for x in jax.tree.leaves(getattr(shapes, k))]}"
                    for k in expected
                )
                + "."
            )
    return shapes, depends, closed


class Spec(NamedTuple):
    """Static part of the program (hashable: the jit cache key)."""

    builder: Callable
    names: tuple[str, ...]
    batched: tuple[bool, bool, bool]  # per MDP leaf: carries the batch axis
    max_iters: int
    tile: int  # members per tile
    mesh: Any  # jax.sharding.Mesh with one axis "batch", or None on one device


def plan_chunks(size: int, limit: int, unit: int) -> tuple[int, int]:
    """`(chunk, num_chunks)`: equal chunks, whole numbers of `unit` (tiles on all devices),
    of at most `limit` members (at least one unit), covering `size` members with padding."""
    limit = max(limit // unit * unit, unit)
    one = -(-size // unit) * unit
    if limit >= one:
        return one, 1
    num_chunks = -(-size // limit)
    return -(-size // (num_chunks * unit)) * unit, num_chunks


def progress_chunks(size: int, want: int, limit: int, unit: int, cols: int):
    """`(chunk, num_chunks)` of a CPU sweep with `progress=True` whose transitions are
    shared, or None for the usual equal chunks of about `want` members (`plan_chunks`).
    Its chunks are solved by `solve` on host tiles (`_sweep_eager`), whose faster kernel
    needs `FUSED_MEMBERS_MIN` members (`shared_tiles_host`: W1M's 21 chunks of 47,872
    members ran the first kernel), and whose tiles are blocks of the grid when a chunk is
    whole rows of the last axis (`cols` values; `_sweep_eager.grid_rows`). So, where the
    sweep has room for two such chunks (at most `limit` members, whole `unit`s): whole rows
    if that pads the sweep by at most 1/32 (W1M: 4 chunks of 256,000, 2.4% padding), else
    equal chunks of at least that many members (W1M: 7 of 143,104)."""
    from jaxmdp._exec.shared_tiles_host import FUSED_MEMBERS_MIN as least

    if size < 2 * least or want >= least or limit < least:
        return None
    step = math.lcm(unit, cols)
    for chunk in range(-(-least // step) * step, min(limit, size // 2) + 1, step):
        if -(-size // chunk) * chunk - size <= size // 32:
            return chunk, -(-size // chunk)
    n = size // least
    chunk = -(-size // (n * unit)) * unit
    return (chunk, -(-size // chunk)) if chunk <= limit else None


# -- devices and axes ------------------------------------------------------------------------


def resolve_devices(devices) -> list:
    """The devices a sweep runs on: `None` all of `jax.devices()` (every process's, in a
    `jax.distributed` job), an int the first that many, or a list."""
    if devices is None:
        devs = list(jax.devices())
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        avail = jax.devices()
        if not 1 <= devices <= len(avail):
            raise ValueError(
                f"devices={devices}: between 1 and {len(avail)} devices are available."
            )
        devs = list(avail[:devices])
    else:
        devs = list(devices)
        if not devs:
            raise ValueError("devices must name at least one device.")
    _check_processes(devs)
    return devs


def _check_processes(devs: list) -> None:
    """In a job of several processes, a sweep runs on this process's devices only (a sweep
    of its own) or on devices of every process (one sweep that all of them run together)."""
    n = jax.process_count()
    if n == 1:
        return
    owners = {getattr(d, "process_index", 0) for d in devs}
    if owners != {jax.process_index()} and owners != set(range(n)):
        raise ValueError(
            f"devices: in a job of {n} processes a sweep runs either on this process's own "
            f"devices or on devices of every process; these belong to processes "
            f"{sorted(owners)} (this is process {jax.process_index()})."
        )


class Setup(NamedTuple):
    axes: dict[str, np.ndarray]
    dtypes: list  # per axis, the dtype its values enter the builder with
    size: int
    chunk: int
    num_chunks: int
    spec: Spec
    devices: list
    depends: dict[str, tuple[str, ...]]
    bytes_per_member: int
    traced: Any  # the builder's closed jaxpr on scalars (a checkpoint fingerprints it)
    result_dtype: Any
    spans: bool = False  # the devices belong to several processes (every one runs the sweep)


def as_axes(axes: Mapping[str, Any]) -> dict[str, np.ndarray]:
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


def prepare(
    builder,
    solver,
    chunk_size,
    max_iters,
    devices,
    memory_limit,
    progress,
    axes,
    *,
    forced: tuple[int, int] | None = None,
) -> Setup:
    """Checks the arguments, traces the builder and plans tiles and chunks.

    `forced=(tile, chunk)`: a checkpoint's plan, used instead of the memory plan (which must
    still fit).
    """
    if not callable(builder):
        raise TypeError(f"builder must be callable (params -> MDP); got {type(builder).__name__}.")
    if not (isinstance(max_iters, (int, np.integer)) and max_iters >= 1):
        raise ValueError(f"max_iters must be an int >= 1; got {max_iters!r}.")
    if chunk_size is not None and not (
        isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1
    ):
        raise ValueError(f"chunk_size must be an int >= 1; got {chunk_size!r}.")
    axes = as_axes(axes)
    names = tuple(axes)
    dtypes = [jax.dtypes.canonicalize_dtype(v.dtype) for v in axes.values()]
    shapes, depends, closed = trace_builder(builder, names, dtypes)
    batched = tuple(bool(depends[leaf]) for leaf in _LEAVES)
    if not any(batched):  # a builder that ignores its parameters: give the batch a carrier
        batched = (False, False, True)
    size = math.prod(len(v) for v in axes.values())
    devs = resolve_devices(devices)
    n_dev = len(devs)
    spans = placement.spans_processes(devs)

    S, A = shapes.rewards.shape
    dtype = np.dtype(shapes.rewards.dtype)
    item = dtype.itemsize
    p_bytes = sum(
        math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(shapes.transitions)
    )
    per = _sweep_memory.member_bytes(
        S, A, item, transitions_batched=batched[0], solver=solver, transitions_bytes=p_bytes
    )
    fixed = sum(
        2 * math.prod(x.shape) * np.dtype(x.dtype).itemsize
        for leaf, b in zip(_LEAVES, batched, strict=True)
        if not b
        for x in jax.tree.leaves(getattr(shapes, leaf))
    )
    describe = f"S={S}, A={A}, {dtype.name}, transitions {'batched' if batched[0] else 'shared'}"
    mem, error = None, None
    try:
        mem = _sweep_memory.plan(
            size=size,
            devices=devs,
            full_tile=min(exec_plan.sweep_tile(devs[0].platform), size),
            per=per,
            res=_sweep_memory.result_bytes(S, A, item),
            par=sum(np.dtype(d).itemsize for d in dtypes),
            fixed=fixed,
            memory_limit=memory_limit,
            describe=describe,
            res_float64=item == 8,
        )
        if forced is not None and (
            forced[0] > mem.tile or forced[1] > max(mem.limit, forced[0] * n_dev)
        ):
            raise MemoryError(
                f"the checkpoint's chunks ({forced[1]} members in tiles of {forced[0]}) no "
                f"longer fit in memory ({describe}; at most {mem.limit} members in tiles of "
                f"{mem.tile} fit: {mem.needs}; {mem.source}). Free memory, or resume on a "
                "larger machine."
            )
    except MemoryError as e:
        error = e
    if spans:  # every host's budget counts; all processes must run the same chunks
        _multihost.first_error(error)
        assert mem is not None  # first_error raised otherwise
        tile, limit = (int(v) for v in _multihost.agree_min([mem.tile, mem.limit]))
        mem = mem._replace(tile=tile, limit=limit)
    elif error is not None:
        raise error
    assert mem is not None
    tile, limit = mem.tile, mem.limit
    if forced is not None:
        tile, limit = forced
    elif chunk_size is not None:
        wanted = -(-min(int(chunk_size), size) // (tile * n_dev)) * tile * n_dev
        if wanted > limit:
            warnings.warn(
                f"chunk_size={chunk_size} does not fit in memory ({mem.needs}; {mem.source}); "
                f"using chunks of {limit} members instead (results do not depend on it).",
                ResourceWarning,
                stacklevel=3,
            )
        else:
            limit = int(chunk_size)
    elif progress:  # several chunks so that the bar moves (same program, same results)
        limit = min(limit, -(-size // _PROGRESS_CHUNKS))
    chunks = None
    if progress and forced is None and chunk_size is None:
        if devs[0].platform == "cpu" and n_dev == 1 and not batched[0]:
            chunks = progress_chunks(size, limit, mem.limit, tile, len(list(axes.values())[-1]))
    chunk, num_chunks = chunks or plan_chunks(size, limit, tile * n_dev)
    mesh = jax.sharding.Mesh(np.array(devs), ("batch",)) if n_dev > 1 else None
    spec = Spec(builder, names, batched, int(max_iters), int(tile), mesh)  # type: ignore[arg-type]
    return Setup(
        axes, dtypes, size, chunk, num_chunks, spec, devs, depends, per, closed, dtype, spans
    )


def chunk_index(setup: Setup, k: int) -> tuple[np.ndarray, ...]:
    """Per axis, the coordinates (indices) of chunk `k`'s members (row-major; the padding
    repeats the last member, as an edge-padded flat grid would)."""
    idx = np.minimum(np.arange(k * setup.chunk, (k + 1) * setup.chunk), setup.size - 1)
    grid = tuple(len(v) for v in setup.axes.values())
    return np.unravel_index(idx, grid)


def chunk_params(setup: Setup, k: int) -> list[np.ndarray]:
    """Parameter values of chunk `k`, one array per axis (`chunk_index`)."""
    multi = chunk_index(setup, k)
    return [
        np.asarray(v).astype(d)[i]
        for v, d, i in zip(setup.axes.values(), setup.dtypes, multi, strict=True)
    ]
