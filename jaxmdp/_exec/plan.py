"""The execution plan: which strategy runs a solve, and with which parameters.

`make_plan(facts)` is a pure function of static facts about the call (`Facts`: backend,
batch shape and which leaf carries which batch axis, transitions form and bytes, S, A, the
solver's type, device count, traced or concrete, `compact`, host threads available). It
returns a `Plan`: one strategy of `jaxmdp._exec` and its parameters. `gather_facts` reads
the facts off the inputs and the environment; nothing else here looks at the world.

Strategies (one module each, run by `jaxmdp._exec.dispatch`):

- `"vmap"`: one member's loop (`member.py`) vmapped over the batch (`vmap.py`); also a
  single MDP (no batch axes);
- `"tiles"`: CPU, per-member transitions: cache-sized tiles, each iterated to convergence
  while its transitions stay in cache, one after the other (`tiles.py`);
- `"threads"`: the tiles in equal runs, one program per host thread (`threads.py`);
- `"ladder"`: the compaction ladder, converged members gathered out (`ladder.py`);
- `"shared_tiles"`: value iteration on a batch sharing one small, concrete `transitions`
  (at most `SHARED_ROWS_MAX` nonzero entries, compiled in as static rows): cache-sized
  tiles of members, each iterated to convergence, split over host threads on CPU
  (`shared_tiles.py`);
- `"shared_vi"`: value iteration on a batch sharing any other `transitions` (`shared_vi.py`);
- `"sharded"`: the flattened batch split over devices, each running `inner` (`sharding.py`);
- `"blocked"`: ONE MDP whose states are split in blocks over devices (`blocked.py`).

Devices: a solve uses the devices it is given (`solve(devices=...)`). Without them, the plan
of a GPU or TPU backend with several local devices uses all of them for a concrete batch,
and for a single MDP that does not fit one device's memory budget; on CPU, host devices
stay opt-in (measured: `benchmarks/results/distributed.md`). Every solver may use every
device: LAPACK calls no longer wait on XLA:CPU's shared pool (`jaxmdp._linalg`; DECISIONS.md
18 and 22), which once deadlocked policy iteration over host devices.

Forcing a backend's plan (so that every plan a GPU or TPU would choose runs in the CPU test
suite; issue 15: no code path is first executed on an accelerator): `with force("gpu"):`
or the environment variable `JAXMDP_PLAN_BACKEND=gpu` (`cpu`, `gpu`, `tpu`). Only the plan
changes (the program still runs on JAX's default backend); forcing "cpu" on an accelerator
selects the CPU plan there in the same way.
"""

from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import _memory, _operators
from jaxmdp import _quick as quick
from jaxmdp._exec import layout, shared_rows
from jaxmdp._mdp import solve_dtype
from jaxmdp._solvers.anderson import AndersonValueIteration
from jaxmdp._solvers.gauss_seidel import GaussSeidelValueIteration
from jaxmdp._solvers.modified_policy_iteration import ModifiedPolicyIteration
from jaxmdp._solvers.relative_value_iteration import RelativeValueIteration
from jaxmdp._solvers.soft_value_iteration import SoftValueIteration
from jaxmdp._solvers.value_iteration import ValueIteration

BACKENDS = ("cpu", "gpu", "tpu")
BACKEND_ENV = "JAXMDP_PLAN_BACKEND"
THREADS_ENV = "JAXMDP_CPU_THREADS"

# Temporal blocking on CPU: a tile of MDPs whose transitions fit in this many bytes of cache
# iterates to convergence while resident, instead of streaming the whole batch's transitions
# from DRAM on every sweep (BASELINES.md: W2 is bound by DRAM bandwidth without it).
TILE_BYTES = 1 << 20
# Smaller tiles for solvers whose members' iteration counts spread widely: a tile runs until
# its slowest member stops. Anderson on 64 deterministic MDPs (S=64, A=4, float64: 128 KiB
# each) at discount 0.999 / 0.99: 845 / 143 ms with 8 members a tile, 247 / 51 ms with 2,
# 172 / 38 ms with 1; garnet 23 / 20 / 28 ms, dense 4.2 / 4.7 / 8.1 ms (per-tile overheads).
TILE_BYTES_FOR: dict[type, int] = {AndersonValueIteration: 1 << 18}

# Solvers known to run only elementwise work, reductions and matrix products (no LAPACK):
# with jax 0.10.2, concurrent programs that factorised matrices deadlocked XLA:CPU, so only
# these run on host threads (DECISIONS.md 8).
THREADED_SOLVERS = frozenset(
    {
        ValueIteration,
        ModifiedPolicyIteration,
        SoftValueIteration,
        GaussSeidelValueIteration,
        RelativeValueIteration,
        AndersonValueIteration,
    }
)

# The compaction ladder (`ladder.py`): a level gives way to one of 1/LADDER_FACTOR its size
# once that few members still run, down to LADDER_MIN members. Each level compiles the
# solver's step again: on 10,000 lecture worlds (a tiny sweep) four levels made policy
# iteration's first call 5.1 s instead of 1.3 s for 26 ms saved per call, while on 4,096
# MDPs of S=256 (a heavy sweep) they saved 12.5 s of 13.7. Automatic only from this much
# work per sweep (B x one member's multiply-adds; W4's is 2.1e9, the lecture sweep's 4.8e6).
LADDER_FACTOR = 8
LADDER_MIN = 32
LADDER_AUTO_WORK = 1 << 27

# Solvers whose step is Bellman backups, elementwise work and reductions over states, so that
# XLA's SPMD partitioner splits their loop over blocks of states with one all-gather of the
# values per backup ("blocked"; checked on the compiled programs, tests/test_blocked.py).
# Policy iteration's LU and Gauss-Seidel's state-by-state sweep would be replicated instead.
BLOCKED_SOLVERS = frozenset({ValueIteration, ModifiedPolicyIteration})

# Strategy "shared_tiles" (issue 15): a shared transitions array with at most this many
# nonzero (action, state, successor) entries is compiled into the sweep as static rows (the
# lecture world with slip: 132; compile time grows with the count).
# Measured A/B against "shared_vi" in one process (lecture world, slip 0.2, float32, tol
# 1e-3, rewards x discounts in [0.5, 0.99]; 2 shared cores at load 9-14): 10^4 members 48 ms
# vs 240 ms, 10^6 members 3.2 s vs 52 s (medians); compile 8-12 s vs 4 s on first call.
SHARED_ROWS_MAX = 512
# Its CPU tiles: members whose rewards and two value vectors take about this many bytes, so
# that a tile stays in L2 through all of its sweeps. The lecture world, float32, one
# thread, 20 sweeps (same process, loaded machine): 2,048 members 7.7 ns per member-sweep,
# 4,096: 6.2, 8,192: 7.7, 16,384: 11.8, 65,536 (DRAM): 26.
SHARED_TILE_BYTES = 1 << 20
SHARED_TILE_ALIGN = 64  # members: whole vectors in every tile
# On accelerators: wide tiles (the device's parallelism is across members), no threads.
SHARED_TILE_ACCELERATOR = 1 << 18
# Host threads of "shared_tiles" beyond the cores (when `JAXMDP_CPU_THREADS` is not set): a
# host thread spends about a third of its time in NumPy (copying its next block in, its last
# results out) while the programs of the others run on XLA's pool, so one more keeps the
# cores busy. W1M on 2 cores, medians of 16 alternating solves in one process: 3 threads
# 0.92x and 0.85x the wall time of 2 (CPU 0.96x, 0.91x), 4 threads 0.84x (issue 15).
SHARED_EXTRA_THREADS = 1

# `jaxmdp.sweep` solves members in fixed-size tiles (results then do not depend on the
# chunking): large enough for an efficient matrix product, small enough that converged
# tiles stop early; accelerators need wide products to be busy.
SWEEP_TILE = {"cpu": 256}
SWEEP_TILE_ACCELERATOR = 8192


class Facts(NamedTuple):
    """Static facts about one `solve` call: all the plan depends on (hashable)."""

    backend: str  # "cpu", "gpu", "tpu" (or forced, see `force`)
    batch_shape: tuple[int, ...]
    carried: tuple[tuple[bool, ...], ...]  # per leaf of (mdp, values0), per batch axis
    kinds: tuple[str, ...]  # per leaf: "transitions", "rewards", "discount", "values0"
    form: str  # transitions form: "dense" or "sparse"
    transitions_bytes: int  # one member's transitions
    sweep_work: int  # one member's multiply-adds per Bellman sweep (S*A*S dense, S*A*K sparse)
    num_states: int
    num_actions: int
    solver: type
    num_devices: int  # devices given (`solve(devices=...)`); 0: none
    traced: bool  # some input is a tracer (inside a user's jit / vmap / grad)
    compact: bool | None
    cpu_threads: int  # host threads a concrete CPU batch may use
    local_devices: int = 1  # this process's devices a default plan may use
    fits_device: bool = True  # one member (inputs and working state) fits one device's budget
    # Nonzero entries of a shared, concrete `transitions` (0: not shared, traced, or not
    # read because the solver cannot use them); only read for `ValueIteration`.
    shared_entries: int = 0
    itemsize: int = 4  # bytes per number of the solve's dtype
    threads_given: bool = False  # `JAXMDP_CPU_THREADS` set (the count is the user's)


class Plan(NamedTuple):
    """Which strategy runs, with its parameters (hashable: a static argument of the jits)."""

    strategy: str  # "vmap", "tiles", "threads", "ladder", "shared_tiles", "shared_vi",
    # "sharded", "blocked"
    batch_shape: tuple[int, ...]
    carried: tuple[tuple[bool, ...], ...]
    tile: int = 0  # members per tile ("tiles", "threads", "shared_tiles")
    threads: int = 1  # host threads ("threads", "shared_tiles")
    tiled_options: bool = False  # compile with the tiled programs' XLA options (DECISIONS 11)
    quick_compile: bool = False  # small: compile with XLA's quick options (`quick`)
    shards: int = 1  # devices ("sharded", "blocked")
    inner: Plan | None = None  # each device's plan ("sharded")


# -- forcing a backend's plan ------------------------------------------------------------------

_FORCED: list[str] = []


@contextlib.contextmanager
def force(backend: str):
    """Within the block, plans are made as on `backend` ("cpu", "gpu" or "tpu").

    For tests: the programs a GPU/TPU run would choose then run on the CPU. Nesting works;
    the innermost wins. Takes precedence over `JAXMDP_PLAN_BACKEND`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"force: backend must be one of {BACKENDS}; got {backend!r}.")
    _FORCED.append(backend)
    try:
        yield
    finally:
        _FORCED.pop()


def backend(platform: str | None = None) -> str:
    """The backend plans are made for: forced (`force`, then `JAXMDP_PLAN_BACKEND`), else
    `platform` (a device's), else JAX's default backend."""
    if _FORCED:
        return _FORCED[-1]
    setting = os.environ.get(BACKEND_ENV)
    if setting:
        if setting not in BACKENDS:
            raise ValueError(f"{BACKEND_ENV} must be one of {BACKENDS}; got {setting!r}.")
        return setting
    return platform or jax.default_backend()


def cpu_threads(on: str) -> int:
    """Host threads for backend `on`: `JAXMDP_CPU_THREADS` if set, else the cores this
    process may use; 1 off the CPU."""
    if on != "cpu":
        return 1
    setting = os.environ.get(THREADS_ENV)
    if setting:
        try:
            n = int(setting)
        except ValueError:
            raise ValueError(
                f"{THREADS_ENV} must be a whole number of threads (1 turns host threads off); "
                f"got {setting!r}."
            ) from None
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be >= 1 (1 turns host threads off); got {n}.")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def sweep_tile(platform: str) -> int:
    """Members per tile of `jaxmdp.sweep` on a device of `platform` (forcing applies)."""
    return SWEEP_TILE.get(backend(platform), SWEEP_TILE_ACCELERATOR)


def undiscounted(discount) -> bool:
    """Static: may some member have discount 1? Decided on the host when the value is known."""
    if isinstance(discount, jax.core.Tracer):
        return True
    return bool(np.any(np.asarray(discount) >= 1))


# -- facts ------------------------------------------------------------------------------------


def gather_facts(mdp, values0, solver, *, devices=None, compact=None) -> Facts:
    """The `Facts` of a solve of `mdp` from `values0` `[..., S]` (leaves JAX or NumPy
    arrays); `devices`: the list given to `solve`, or None."""
    tree = (mdp, values0)
    batch = tuple(mdp.batch_shape)
    shapes = layout.leaf_batch_shapes(tree)
    try:
        full = tuple(np.broadcast_shapes(batch, *shapes))
    except ValueError:
        full = None
    if full != batch:  # solve checked this already; keep the plan honest anyway
        raise ValueError(f"the inputs' batch shapes {shapes} do not broadcast to {batch}.")
    on = backend()
    leaves = jax.tree.leaves(tree)
    S, A = mdp.num_states, mdp.num_actions
    p_leaves = jax.tree.leaves(mdp.transitions)
    per_member = [int(np.prod(np.shape(x)[-3:])) for x in p_leaves]
    p_bytes = sum(
        n * jax.dtypes.canonicalize_dtype(x.dtype).itemsize
        for n, x in zip(per_member, p_leaves, strict=True)
    )
    # Inside a user's jit / vmap / grad even constant inputs are part of a traced program
    # (no compile options, no host threads of ours).
    traced = quick.traced(leaves)
    local = 1
    if on != "cpu" and not traced:  # only a GPU/TPU plan uses several devices by default
        local = len(jax.local_devices())
    fits = True
    if local > 1 and not batch:  # would one device hold this single MDP?
        item = jax.dtypes.canonicalize_dtype(np.result_type(mdp.rewards)).itemsize
        need = p_bytes + 8 * S * A * item  # rewards, Q and the loop's copies
        budget = _memory.device_budget(jax.local_devices()[0])
        fits = need <= budget.bytes * _memory.DEVICE_FRACTION
    carried = layout.carried(shapes, batch)
    kinds = layout.kinds(tree)
    entries = 0
    p_shared = not any(any(c) for c, k in zip(carried, kinds, strict=True) if k == "transitions")
    wanted = type(solver) is ValueIteration and batch and p_shared
    if wanted and shared_rows.concrete(mdp.transitions):
        p = jax.tree.map(lambda x: jnp.reshape(x, x.shape[-3:]), mdp.transitions)
        entries = shared_rows.prepare(p, SHARED_ROWS_MAX).num_entries
    return Facts(
        backend=on,
        batch_shape=batch,
        carried=carried,
        kinds=kinds,
        form=_operators.form(mdp.transitions),
        transitions_bytes=p_bytes,
        sweep_work=_operators.sweep_work(mdp.transitions),
        num_states=S,
        num_actions=A,
        solver=type(solver),
        num_devices=len(devices) if devices else 0,
        traced=traced,
        compact=compact,
        cpu_threads=cpu_threads(on),
        threads_given=on == "cpu" and bool(os.environ.get(THREADS_ENV)),
        local_devices=local,
        fits_device=fits,
        shared_entries=entries,
        itemsize=int(np.dtype(solve_dtype(mdp, values0)).itemsize),
    )


# -- the plan ---------------------------------------------------------------------------------


def make_plan(f: Facts) -> Plan:
    """The plan for `f`: a pure function (no environment, no arrays)."""
    B = int(np.prod(f.batch_shape)) if f.batch_shape else 1
    flat = layout.flattenable(f.carried)
    p_carried = any(any(c) for c, k in zip(f.carried, f.kinds, strict=True) if k == "transitions")
    base = Plan("vmap", f.batch_shape, f.carried)
    n = _devices(f)
    # Programs that run in less time than XLA takes to optimise them (the single-program
    # strategies only: "vmap" and "shared_tiles").
    small = quick.wanted(f.backend, f.traced, B, f.sweep_work)
    if not f.batch_shape:
        blocks = _blocks(n, f.num_states) if f.solver in BLOCKED_SOLVERS and not f.traced else 1
        if blocks > 1:
            return base._replace(strategy="blocked", shards=blocks)
        return base._replace(quick_compile=small)
    shards = _shards(n, B, flat)
    if shards > 1:
        local = tuple((bool(c) and all(c),) for c in f.carried)
        inner = make_plan(  # per device, traced: no static structure (shared_entries=0)
            f._replace(
                batch_shape=(B // shards,),
                carried=local,
                num_devices=1,
                traced=True,
                shared_entries=0,
            )
        )
        return base._replace(strategy="sharded", shards=shards, inner=inner)
    if f.solver is ValueIteration and f.batch_shape and not p_carried:
        if 0 < f.shared_entries <= SHARED_ROWS_MAX:
            plan = _shared_tiles(f, base, B)
            return plan._replace(quick_compile=small and plan.strategy == "shared_tiles")
        # Not split over host threads: measured no gain (lecture sweep) or a loss (W4), as
        # the product and the larger fusions already use every core.
        return base._replace(strategy="shared_vi")
    tile = _tile(f, B, flat, p_carried)
    if tile:
        threads = 1
        if not f.traced and f.solver in THREADED_SOLVERS:
            threads = _split(B // tile, f.cpu_threads)
        # XLA compile options apply to top-level programs only: not inside a user's trace.
        if threads > 1:
            return base._replace(strategy="threads", tile=tile, threads=threads, tiled_options=True)
        return base._replace(strategy="tiles", tile=tile, tiled_options=not f.traced)
    if _ladder_wanted(f, B, flat):
        return base._replace(strategy="ladder")
    return base._replace(quick_compile=small)


def _devices(f: Facts) -> int:
    """Devices to split over: those given, else (GPU/TPU plans, concrete inputs) every local
    device for a batch, and for a single MDP only when it does not fit one device (each of
    its sweeps then waits for an exchange of values)."""
    if f.num_devices:
        return f.num_devices
    if f.traced or f.backend == "cpu" or f.local_devices < 2:
        return 1
    return f.local_devices if f.batch_shape or not f.fits_device else 1


def _blocks(num_devices: int, num_states: int) -> int:
    """Blocks of states for "blocked": the most (<= num_devices) that divide S (a mesh
    splits an axis into equal blocks; padding states would change the stopping rule's
    statistics)."""
    for n in range(min(num_devices, num_states), 1, -1):
        if num_states % n == 0:
            return n
    return 1


def _shared_tiles(f: Facts, base: Plan, B: int) -> Plan:
    """Tiles (and host threads) of the "shared_tiles" strategy."""
    if B == 0:  # an empty batch has no tiles
        return base._replace(strategy="shared_vi")
    if f.backend != "cpu":
        return base._replace(strategy="shared_tiles", tile=min(B, SHARED_TILE_ACCELERATOR))
    S, A = f.num_states, f.num_actions
    per = (S * A + 2 * S) * f.itemsize  # rewards, V_k and V_(k-1) of one member
    align = SHARED_TILE_ALIGN
    limit = max(align, SHARED_TILE_BYTES // per // align * align)
    want = f.cpu_threads if f.threads_given else f.cpu_threads + SHARED_EXTRA_THREADS
    threads = 1 if f.traced else max(1, min(want, B // limit))
    part = -(-B // threads)  # members per thread (the parts overlap rather than pad)
    count = -(-part // limit)  # tiles per part, then equal tiles of whole vectors
    tile = min(part, -(-part // count // align) * align)
    return base._replace(strategy="shared_tiles", tile=tile, threads=threads)


def _shards(num_devices: int, B: int, flat: bool) -> int:
    """How many devices to split over: the most (<= num_devices) that divide the batch."""
    if num_devices < 2 or not flat:  # partially broadcast leaves: one device keeps it simple
        return 1
    for n in range(min(num_devices, B), 1, -1):
        if B % n == 0:
            return n
    return 1


def _tile(f: Facts, B: int, flat: bool, p_carried: bool) -> int:
    """Members per CPU tile for per-member transitions (0: no tiling)."""
    if B < 2 or not p_carried or not flat or f.backend != "cpu":
        return 0
    per = max(1, f.transitions_bytes)
    limit = max(1, TILE_BYTES_FOR.get(f.solver, TILE_BYTES) // per)
    if limit >= B:
        return 0
    tile = max(t for t in range(1, limit + 1) if B % t == 0)
    return tile if tile * 4 >= limit else 0


def _split(units: int, threads: int) -> int:
    """The largest part count <= `threads` that divides `units`."""
    n = min(threads, units)
    while n > 1 and units % n:
        n -= 1
    return max(n, 1)


def _ladder_wanted(f: Facts, B: int, flat: bool) -> bool:
    """Whether the batch runs through the compaction ladder (`compact`: the user's say;
    None: only where a sweep is heavy enough that a few saved sweeps repay each level's
    compile)."""
    if not f.compact and (f.compact is not None or B * f.sweep_work < LADDER_AUTO_WORK):
        return False
    if B // LADDER_FACTOR < LADDER_MIN:
        return False
    return flat
