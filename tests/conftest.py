"""Fast compiles and a session-wide JAX compilation cache (below), and shared fixtures: a
seeded `rng`, a NumPy random-MDP builder and a float32/float64 switch.

MDP arrays are built in NumPy float64 (`random_mdp_arrays`) and handed to `jaxmdp.make_mdp`
inside the test body, so the `dtype` fixture decides what they become: float32 (JAX's
default) or float64 (inside `jax.enable_x64(True)`, entered by the fixture for the whole
test body; arrays must be built in the body, not at import time).
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

# One JAX persistent compilation cache for the whole session, cold at its start (as in CI):
# set in the environment before JAX is imported, so xdist workers and the subprocess tests
# (README, CLI, examples, multi-device) inherit it and reuse each other's compiled programs
# (a cache hit is the same executable, so no result changes). Measured A/B on test_cli.py,
# test_readme.py and test_cli_models.py in one process each, run side by side: 82.0 -> 65.5
# CPU-seconds. An existing JAX_COMPILATION_CACHE_DIR is respected; the folder created here is
# removed when the process that created it (the xdist controller) exits.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="jaxmdp-test-jax-cache-")
    os.environ.update(
        JAX_COMPILATION_CACHE_DIR=_cache,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    atexit.register(shutil.rmtree, _cache, True)

# Compile time is most of this suite's time (measured per test with jax.monitoring: about
# 2,500 XLA compilations, most of the CPU time), and the suite checks jaxmdp's logic, not
# LLVM's: the tests compile with XLA's older CPU fusion emitters and LLVM's optimisation off,
# about 3x less compile time per program (A/B in one shell, same programs: 10.1 -> 3.3
# CPU-seconds for eight solver programs). Results of one program stay one program's (every
# exact-equality test compares a program with itself); results of different programs are
# compared within rounding anyway (tests/_compare.py). Code generation at XLA's defaults is
# still tested: `.ci/run` reruns the tests that compare programs with
# JAXMDP_TEST_XLA_DEFAULTS=1 (only the vector-width flag added), which also turns this off
# for a local run. Flags a jaxlib does not know abort the process, so they are tried once in
# a subprocess (the xdist controller's; workers and subprocess tests inherit the result).
# One LLVM module per program (`parallel_codegen_split_count=1`): XLA splits a program's
# module into parts compiled on several threads, which shortens one compile on an idle
# machine but costs more CPU in all, and here two workers already fill both cores: ten
# solver programs compiled in one process, four alternating rounds, 2.34 -> 1.70 CPU-s
# (median; every round lower).
FAST_COMPILE_FLAGS = (
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_backend_optimization_level=0",
    "--xla_cpu_parallel_codegen_split_count=1",
)


def _fast_compile_flags() -> None:
    if os.environ.get("JAXMDP_TEST_XLA_DEFAULTS") == "1" or "JAXMDP_TEST_XLA_TRIED" in os.environ:
        return
    os.environ["JAXMDP_TEST_XLA_TRIED"] = "1"
    flags = " ".join([os.environ.get("XLA_FLAGS", ""), *FAST_COMPILE_FLAGS]).strip()
    probe = [sys.executable, "-c", "import jax; jax.devices('cpu')"]
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    if subprocess.run(probe, env=env, capture_output=True, timeout=120).returncode == 0:
        os.environ["XLA_FLAGS"] = flags


_fast_compile_flags()

import jax  # noqa: E402

# The README's test command runs `--dist loadfile`: each file on one xdist worker, so a file's
# tests share that worker's compiled programs instead of compiling them on both workers
# (six heavy files, same machine: 218 -> 194 CPU-seconds). Files are handed out in collection
# order, so the longest ones (wall seconds per file, measured with --durations) come first
# and the short ones fill in at the end.
LONGEST_FILES = (
    "test_solvers_common.py",
    "test_sparse_solvers.py",
    "test_distributed.py",
    "test_gradients.py",
    "test_readme.py",
    "test_sparse_functions.py",
    "test_threads.py",
    "test_multidevice.py",
    "test_exec_plan.py",
    "test_shared_tiles.py",
    "test_sweep.py",
    "test_benchmarks_quick.py",
    "test_examples.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: k for k, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FILES)))
    _skip_cpu_plan_tests(items)


def _skip_cpu_plan_tests(items) -> None:
    """Tests marked `cpu_plan` assert what the CPU's plan chooses (tiles of 256 members,
    chunks of whole tiles, host threads, the host tile kernel). Where plans are made for a GPU
    or TPU (a real accelerator, or `JAXMDP_PLAN_BACKEND`) they are skipped, and say why:
    benchmarks/gpu_check.sh runs these files on a GPU, where they failed by design under the
    forced GPU plan on the CPU (9 of 167: chunk sizes, `JAXMDP_CPU_THREADS`), which would
    have hidden what the accelerator itself changes. Every other test runs on any backend;
    the sweep's chunking tests (test_sweep, test_checkpoint, test_distributed) instead set
    the accelerator plans' sweep tile to the CPU's 256 members, so that they check the same
    chunks under either plan (session 11: 21 tests fewer skipped there)."""
    marked = [item for item in items if item.get_closest_marker("cpu_plan")]
    if not marked:
        return
    from jaxmdp._exec import plan

    try:
        backend = plan.backend()
    except ValueError:  # a bad JAXMDP_PLAN_BACKEND: the test that checks it reports it
        return
    if backend != "cpu":
        why = f"asserts the CPU plan; plans here are made for {backend!r}"
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=why))


def pytest_collection_finish(session):
    # Tracing allocates many short-lived objects, so Python's cyclic collector runs often,
    # and each full collection walked every object the imports made (JAX, NumPy, pandas,
    # the test modules). Frozen after collection, those are skipped; and collections run
    # less often. Garbage made later is collected as before. Measured: 0-7% less CPU time
    # for tracing-heavy test files (four A/B pairs of the same files, alternating, load 3).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def random_mdp_arrays(
    rng: np.random.Generator,
    num_states: int,
    num_actions: int,
    *,
    batch: tuple[int, ...] = (),
    sparsity: float = 0.0,
    unavailable: float = 0.0,
    reward_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random `(transitions [*batch, S, A, S], rewards [*batch, S, A])` in float64.

    Args:
      rng: NumPy generator.
      num_states, num_actions: S and A.
      batch: leading batch shape (one independent MDP per member).
      sparsity: probability that an entry of a transition row is zeroed (each row keeps at
        least one positive entry, then rows are renormalised). Rows are Dirichlet(1) draws.
      unavailable: probability that an action is unavailable in a state (reward `-inf`);
        every state keeps at least one available action.
      reward_scale: rewards are `reward_scale * N(0, 1)`.
    """
    S, A = num_states, num_actions
    P = rng.dirichlet(np.ones(S), size=(*batch, S, A))
    if sparsity > 0:
        keep = rng.random(P.shape) >= sparsity
        forced = rng.integers(0, S, size=P.shape[:-1])
        keep |= np.arange(S) == forced[..., None]
        P = np.where(keep, P, 0.0)
        P /= P.sum(axis=-1, keepdims=True)
    R = reward_scale * rng.standard_normal((*batch, S, A))
    if unavailable > 0:
        off = rng.random(R.shape) < unavailable
        forced = rng.integers(0, A, size=R.shape[:-1])
        off &= np.arange(A) != forced[..., None]
        R = np.where(off, -np.inf, R)
    return P, R


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A NumPy generator seeded from the test's name (stable across runs and workers)."""
    seed = sum(request.node.nodeid.encode()) % (2**32)
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def make_random_mdp():
    """The `random_mdp_arrays` builder, for tests that prefer a fixture to an import."""
    return random_mdp_arrays


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Run the test body in float32 (JAX's default) or float64 (`jax.enable_x64(True)`).

    Yields the NumPy dtype the MDP arrays become under `jaxmdp.make_mdp`.
    """
    if request.param == "float64":
        with jax.enable_x64(True):
            yield np.dtype(np.float64)
    else:
        with jax.enable_x64(False):
            yield np.dtype(np.float32)
