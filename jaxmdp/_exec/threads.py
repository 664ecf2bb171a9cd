"""Strategy "threads": host threads for concrete tiled batches on CPU.

XLA:CPU runs one program's loop over cache-sized tiles of MDPs on one core; programs
dispatched from separate host threads run at the same time. So an eager `solve` of a
concrete, tiled batch (transitions per member) splits it into equal runs of tiles, one per
core, each an ordinary jitted program (`tiles.part`) dispatched from a pool thread, and
joins the results. The parts run the same tiles as the single program, so each member
iterates exactly as there; the parts and the single program are different compiled
programs, so results agree within rounding (identical only for the same program on the
same input). Measured on this project's 2-core machine: 2,048 random MDPs, S=64,
A=8, 78-81 ms on one thread, 54-56 ms on two. A shared-transitions batch is not split: its
product already uses every core, and splitting it measured no gain or a loss.

Only for solvers without LAPACK calls (`plan.THREADED_SOLVERS`): with jax 0.10.2,
concurrent programs that factorised matrices (policy iteration's LU; Anderson's small
solves while they still went to LAPACK) deadlocked XLA:CPU, as policy iteration did over
several XLA host devices (DECISIONS.md). Anderson's m x m solve is now written in array
operations, and it runs threaded. `JAXMDP_CPU_THREADS=N` sets the thread count (1 turns the
split off; default: the cores available; read by `plan.cpu_threads`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools

import jax
import jax.numpy as jnp

from jaxmdp import _interrupt
from jaxmdp._solution import Solution

_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def run_parts(part, n: int, batch_shape) -> Solution:
    """`part(k)` (a `Solution` over the k-th run of flattened members) for k < n, each on its
    own pool thread, joined and reshaped to `batch_shape`."""
    return _join(run_many(part, n), tuple(batch_shape))


def run_many(part, n: int) -> tuple:
    """`(part(0), ..., part(n - 1))`, each called and waited for on its own pool thread
    (under the caller's thread-local JAX config)."""
    global _POOL
    if _POOL is None or _POOL._max_workers < n:
        _POOL = concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="jaxmdp")
    config = _thread_local_config()

    def run(k):
        with contextlib.ExitStack() as stack:
            for manager, value in config:
                stack.enter_context(manager(value))
            # Each worker waits for its own program: XLA:CPU overlaps the programs of
            # separate threads, not the queued programs of one.
            return jax.block_until_ready(part(k))

    # Ctrl-C while submitting or waiting stops the abandoned parts (jaxmdp._interrupt)
    futures = _interrupt.submit(_POOL, [(run, k) for k in range(n)])
    return _interrupt.gather(futures)


# JAX's thread-local settings that change what a program computes. A pool thread starts from
# the global values, so a caller inside `with jax.enable_x64(True):` would otherwise get its
# float64 batch solved in float32 (found by the acceleration benchmark).
_CONFIG = (
    ("enable_x64", "jax_enable_x64"),
    ("default_matmul_precision", "jax_default_matmul_precision"),
    ("default_device", "jax_default_device"),
    ("numpy_dtype_promotion", "jax_numpy_dtype_promotion"),
    ("numpy_rank_promotion", "jax_numpy_rank_promotion"),
    ("debug_nans", "jax_debug_nans"),
    ("debug_infs", "jax_debug_infs"),
)


def _thread_local_config():
    out = []
    for manager, name in _CONFIG:
        if hasattr(jax, manager) and hasattr(jax.config, name):
            out.append((getattr(jax, manager), getattr(jax.config, name)))
    return out


@functools.partial(jax.jit, static_argnums=1)
def _join(parts, batch_shape) -> Solution:
    return Solution(
        *(
            jnp.reshape(jnp.concatenate(xs), batch_shape + xs[0].shape[1:])
            for xs in zip(*parts, strict=True)
        )
    )
