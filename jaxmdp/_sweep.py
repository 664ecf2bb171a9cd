"""`sweep`: a grid of parameter values -> batched MDPs -> one compiled solve -> labelled results.

How it works:

1. The axes are flattened into one batch of `B` parameter points (row-major); arguments,
   tracing and planning live in `_sweep_setup`.
2. The builder is traced once on scalars (`jax.make_jaxpr`) and each MDP leaf's data
   dependence on the swept parameters is read off the jaxpr. A leaf that depends on none
   (typically `transitions` when only rewards and discount are swept) is built once and stays
   shared: it goes through `jax.vmap(builder, out_axes=None)` unbatched, and `jaxmdp.solve`
   keeps it unbatched, so every backup is one `[S*A, S] x [S, B]` matrix-matrix product
   instead of `B` matrix-vector products over `B` copies of the transitions.
3. Build and solve run in ONE jitted program per chunk. Inside, the chunk is cut into tiles
   of a fixed size (`jaxmdp._exec.plan.sweep_tile`: 256 members on CPU, 8192 on accelerators, or the
   whole sweep if smaller) solved one after the other (`lax.map`); each tile is
   `vmap(builder)` then `solve`, so a tile whose members have all converged stops early.
   Exception (issue 15): value iteration with shared transitions on one device, where
   `solve`'s plan for the built chunk is "shared_tiles" (`_sweep_eager`): the chunk is built
   by one jitted program and solved by `solve` on the concrete batch, so the transitions'
   structure is compiled in and tiles of members iterate in cache on host threads (W1M,
   10^6 lecture worlds: benchmarks/results/cpu-2core-sweep.md). Per member the same
   iterations, status and certificate; values within rounding of the one-program form.
   There a leaf that depends on a few axes only is built on their grid and its rows copied
   to the members (`_sweep_eager._build_by_parts`), and a sweep of one chunk returns the
   solve's own host arrays (no second copy of the results).
4. Chunks: the batch is cut into equal chunks (whole numbers of tiles) that fit in memory
   (`_sweep_memory`: every buffer counted against the budgets of `_memory`, which respect
   `ulimit` and cgroup limits; `MemoryError` naming the size and the budget before anything
   is allocated); the last one is padded, so one compiled program serves them all. A chunk's
   parameters are computed when it runs, never for the whole grid at once.
5. Devices: with several devices each chunk's tiles are split across them (`jax.shard_map`
   over a `jax.sharding.Mesh`, batch padded to whole tiles per device).

Reproducibility: every member is computed by the same tile program at the same position in
its tile whatever the chunking and the number of devices (on the "shared_tiles" path the
tile size follows the chunk size, and several devices run the one-program tiles: other
chunkings and a multi-device run are other programs, equal within rounding, and a float32
member whose stopping statistic is within rounding of `tol` may stop one sweep apart).
The same call on the same machine gives the same bits; otherwise chunked, unchunked,
single- and multi-device runs agree within rounding (on the machines tested, bit for bit
off the "shared_tiles" path, but the enclosing programs are compiled separately and XLA
promises no more; nor are the last bits the same on another CPU, whose vector width XLA
picks). Without fixed tiles the differences would be systematic: XLA picks the kernel of the
`[S*A, S] x [S, N]` product by N, and a member's last bits depend on it. Only when memory
cannot hold one full tile is the tile made smaller.

Several processes (`jax.distributed`): call `jax.distributed.initialize()` in every process
before `sweep` (on CPU, with gloo collectives), then run the same `sweep` call in every
process. `jax.devices()` then lists the devices of all processes, each chunk's tiles are
split over all of them (the mesh spans the job; each process computes only its own tiles
and holds only its shards), and every process receives the whole result (each chunk's
results are all-gathered), the same bits as one process (the same tile program). Decisions a
process takes on local information are agreed first (`jaxmdp._multihost`): the chunk plan
is the one that fits every host's memory, a `MemoryError` or a refused checkpoint is raised
on every process. Devices of this process only (`devices=jax.local_devices()`) make a
sweep of its own.

Checkpoints (`checkpoint=DIR`, `jaxmdp._checkpoint`): each chunk is written as it finishes; a
killed sweep started again redoes only the chunks not on disk. Across processes, process 0
owns the directory (reads, writes, checks) and sends what it reads to the others.

Compiled programs: one per (builder, axes, solver structure, plan); the last `_PROGRAMS` are
kept (`_program`), so sweeping new models one after another (a new builder each time, e.g. a
lambda made per call) does not grow memory without bound, while alternating between a few
stays compiled.
"""

from __future__ import annotations

import collections
import functools
import sys
import threading
from collections.abc import Callable

import jax
import numpy as np

from jaxmdp import _checkpoint, _sweep_eager
from jaxmdp._mdp import MDP
from jaxmdp._solution import Solution
from jaxmdp._solve import DEFAULT_MAX_ITERS, solve
from jaxmdp._solvers.value_iteration import ValueIteration
from jaxmdp._sweep_eager import chunk_args
from jaxmdp._sweep_result import SweepResult
from jaxmdp._sweep_setup import Setup, Spec, call_builder, prepare

# Compiled sweep programs kept (least recently used dropped first; see the module docstring).
_PROGRAMS = 4


# -- the compiled program --------------------------------------------------------------------


def _solve_tiles(params, solver, spec: Spec) -> Solution:
    """Solves `[k * tile]` members as k tiles, one after the other."""
    out_axes = MDP(*(0 if b else None for b in spec.batched))  # type: ignore[arg-type]

    def one_tile(p):
        build = functools.partial(call_builder, spec.builder, spec.names)
        mdp = jax.vmap(lambda *q: build(q), out_axes=out_axes)(*p)
        # one device per tile: the sweep does its own splitting across devices
        return solve(mdp, solver, max_iters=spec.max_iters, devices=jax.local_devices()[:1])

    out = jax.lax.map(one_tile, tuple(x.reshape(-1, spec.tile) for x in params))
    return Solution(*(x.reshape((-1, *x.shape[2:])) for x in out))


def _build_and_solve(params, solver, *, spec: Spec) -> Solution:
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


_programs: collections.OrderedDict = collections.OrderedDict()
_programs_lock = threading.Lock()


def _cached(key, make: Callable):
    """The compiled program kept under `key` (`make()` when there is none); the `_PROGRAMS`
    most recently used are kept (the sweep programs and the eager path's build programs).

    A dropped program's executables (and the builder it holds) are freed with it: JAX keys its
    caches on the function object, which nothing else references.
    """
    with _programs_lock:
        fn = _programs.pop(key, None)
        if fn is None:
            fn = make()
        _programs[key] = fn
        while len(_programs) > _PROGRAMS:
            _programs.popitem(last=False)
        return fn


def _program(spec: Spec):
    """The jitted program for `spec` (build and solve of a chunk; kept by `_cached`)."""
    return _cached(spec, lambda: jax.jit(functools.partial(_build_and_solve, spec=spec)))


# -- devices -----------------------------------------------------------------------------------


def _to_host(x) -> np.ndarray:
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    from jax.experimental import multihost_utils  # several hosts: gather every shard

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


# -- the public entry points -------------------------------------------------------------------


def _run_chunk(setup: Setup, solver, k: int) -> Solution:
    """Solves chunk `k`; its members' results on the host (padding dropped)."""
    sol = _sweep_eager.solve_eagerly(setup, solver, k, _cached)
    if sol is None:
        sol = _program(setup.spec)(chunk_args(setup, k), solver)
    try:
        jax.block_until_ready(sol)
    except jax.errors.JaxRuntimeError as e:  # an allocation the estimate missed
        if "RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower():
            raise MemoryError(
                f"chunk {k} of the sweep ran out of memory ({setup.chunk} members in tiles of "
                f"{setup.spec.tile}); pass a smaller chunk_size or memory_limit. ({e})"
            ) from None
        raise
    n = min(setup.chunk, setup.size - k * setup.chunk)
    return Solution(*(_to_host(x)[:n] for x in sol))  # type: ignore[arg-type]


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


def _identity(setup: Setup, solver, key, builder_id: dict) -> dict:
    return _checkpoint.identity(
        axes=setup.axes,
        dtypes=setup.dtypes,
        builder_id=builder_id,
        solver=solver,
        max_iters=setup.spec.max_iters,
        dtype=setup.result_dtype,
        devices=setup.devices,
        key=key,
    )


def sweep(
    builder: Callable[..., MDP],
    solver=None,
    *,
    chunk_size: int | None = None,
    max_iters: int = DEFAULT_MAX_ITERS,
    progress: bool | None = None,
    devices=None,
    memory_limit: int | None = None,
    checkpoint=None,
    checkpoint_key: str | None = None,
    **axes,
) -> SweepResult:
    """Solves an MDP for every combination of parameter values, in one compiled program.

    Example:
      >>> result = jaxmdp.sweep(
      ...     lambda step_reward, discount: jaxmdp.models.gridworld(
      ...         step_reward=step_reward, slip=0.2, discount=discount),
      ...     step_reward=np.linspace(-2, 0, 21), discount=np.linspace(0.9, 1, 3))
      >>> result.values[10, 2]     # [S] at the 11th step reward (-1) and the 3rd discount (1)
      >>> table = result.to_table()  # one row per (step_reward, discount)

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
        program serves all. A chunk_size that does not fit in memory is reduced to what
        fits (with a `ResourceWarning`). Results do not depend on it beyond rounding (the
        same tile program computes every member).
      max_iters: per-member iteration cap (see `jaxmdp.solve`).
      progress: progress bar (tqdm if installed): `None` shows it when there are several
        chunks, `True` always (then, without `chunk_size`, the sweep runs in about 20
        chunks so that the bar moves), `False` never.
      devices: `None` (all of `jax.devices()`: every process's, in a `jax.distributed`
        job), a number of devices, or a list of devices. With more than one the batch axis
        is sharded across them. In a job of several processes, either devices of every
        process (one sweep that all of them run, the same call in each; every process
        returns the whole result) or this process's own (a sweep of its own). Policy
        iteration and other solvers with LAPACK calls use one CPU device per process
        (`DECISIONS.md` 17).
      memory_limit: bytes the sweep may use per device (the tile's working state, the
        chunk's parameters and results, the shared leaves); default: 60% of the free memory
        of an accelerator, and on CPU 50% of the host's budget (`jaxmdp._memory`: available
        RAM, `ulimit -v`/`-d` and cgroup limits, whichever is smallest), shared with the
        results of the whole sweep, which are always checked against the host's budget.
      checkpoint: a directory (created if missing) where every finished chunk is written as
        it completes (`jaxmdp._checkpoint`). Called again with the same arguments after an
        interruption (Ctrl-C, kill -9, a full disk), the sweep reads back the chunks on disk
        and solves only the others; the result is the uninterrupted run's (bit for bit on the
        same machine and software). A
        checkpoint of a different sweep (other axes, builder program, solver, max_iters,
        dtype, devices or library version) raises `ValueError`, it is never merged.
        `result.resumed_chunks` says how many chunks were read back. The directory stays
        after the sweep (delete it once the result is saved). Across processes, process 0
        owns it (the others never touch it: it need not be on a shared file system).
      checkpoint_key: an optional string stored in the checkpoint's identity: a run with
        another key refuses it (for inputs the builder's traced program cannot show, e.g.
        data it reads at trace time that you want to tell apart explicitly).
      **axes: `name=values`, 1-D arrays of numbers, one per swept parameter, in the order the
        result's axes will have. The names are the builder's keyword arguments (the names
        `status`, `status_name`, `num_iters`, `residual`, `error_bound`, `policy` and
        `value_*` are reserved for the table).

    Returns:
      `SweepResult`: the `Solution` fields indexed by the axes (`result.values[i, j]`), the
      coordinates (`result.axes`), `to_table()`, `save(path)`, `summary()`.

    Raises:
      ValueError: bad axes or arguments, or a checkpoint of another sweep; the builder's own
        errors pass through.
      MemoryError: the results of the whole sweep, or one member (and the shared leaves),
        exceed the budget; raised before anything is allocated, naming both sizes.
      OSError: a checkpoint chunk could not be written (the chunks written so far are kept).
    """
    if solver is None:
        solver = ValueIteration()
    setup = prepare(builder, solver, chunk_size, max_iters, devices, memory_limit, progress, axes)
    store = None
    if checkpoint is not None:
        plan = {
            "size": setup.size,
            "chunk": setup.chunk,
            "num_chunks": setup.num_chunks,
            "tile": setup.spec.tile,
        }
        fingerprint = functools.cache(
            lambda: _checkpoint.builder_fingerprint(builder, setup.traced)
        )
        store = _checkpoint.open_for(
            checkpoint,
            lambda: _identity(setup, solver, checkpoint_key, fingerprint()),
            plan,
            adopt=chunk_size is None,
            builder=fingerprint,
            spans=setup.spans,
        )
        if store.plan != plan:  # resume with the checkpoint's tiles and chunks
            forced = (store.plan["tile"], store.plan["chunk"])
            setup = prepare(
                builder, solver, None, max_iters, devices, memory_limit, False, axes, forced=forced
            )
    try:
        return _sweep_chunks(setup, solver, progress, store)
    finally:
        if store is not None:
            store.close()


def _sweep_chunks(setup: Setup, solver, progress, store) -> SweepResult:
    bounds = [
        (k * setup.chunk, min(setup.chunk, setup.size - k * setup.chunk))
        for k in range(setup.num_chunks)
    ]
    stored: dict[int, Solution] = {}
    out: Solution | None = None
    if store is not None:
        # The chunks on disk are checked against the program's result structure (traced
        # once: the one-program form's shapes; the eager path's are the same).
        out_struct = jax.eval_shape(
            _program(setup.spec),
            tuple(jax.ShapeDtypeStruct((setup.chunk,), d) for d in setup.dtypes),
            solver,
        )
        stored = _checkpoint.read_chunks(store, bounds, out_struct)
    # One bar per job: process 0's (the chunks, hence the calls, are the same everywhere).
    shown = progress if jax.process_index() == 0 or not setup.spans else False
    bar = _progress(setup.size, shown, setup.num_chunks)
    try:
        for k, (start, n) in enumerate(bounds):
            sol = stored.get(k)
            if sol is None:
                sol = _run_chunk(setup, solver, k)
                if store is not None:
                    _checkpoint.write_chunk(store, k, start, sol)
            if setup.num_chunks == 1:
                # One chunk: its host arrays are the result (no second copy of the
                # results: 280 MB for W1M, issue 15). They may be read-only views of the
                # solve's buffers, as are a `Solution`'s arrays through `np.asarray`.
                out = sol
            else:
                if out is None:  # the result's buffers, shaped after the first chunk's
                    out = Solution(*(np.empty((setup.size, *x.shape[1:]), x.dtype) for x in sol))  # type: ignore[arg-type]
                for dst, src in zip(out, sol, strict=True):
                    dst[start : start + n] = src
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    assert out is not None
    grid = tuple(len(v) for v in setup.axes.values())
    solution = Solution(*(np.asarray(x).reshape(grid + x.shape[1:]) for x in out))  # type: ignore[arg-type]
    return SweepResult(
        axes=setup.axes,
        solution=solution,
        depends=setup.depends,
        chunk_size=setup.chunk,
        num_chunks=setup.num_chunks,
        tile_size=setup.spec.tile,
        num_devices=len(setup.devices),
        bytes_per_member=setup.bytes_per_member,
        resumed_chunks=len(stored),
        solver=repr(solver),
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
    setup = prepare(builder, solver, chunk_size, max_iters, devices, memory_limit, False, axes)
    return _program(setup.spec).lower(chunk_args(setup, 0), solver)
