"""Timing primitives shared by every benchmark section.

Method (BASELINES.md, "Timing method"): one untimed warm-up call, then at least 5 timed
repetitions (more for millisecond-scale work, up to a small time budget); the median is reported
together with the spread (max - min) / median. Every call ends with a device sync
(`block_until_ready` for JAX, `torch.cuda.synchronize` for CUDA tensors), so asynchronous
dispatch is never mistaken for speed. JAX compile time is measured separately with
`jit(...).lower(...).compile()`.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Timing:
    """Wall-clock times of the timed repetitions (seconds)."""

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median of the timed repetitions."""
        med = self.median
        return (max(self.times) - min(self.times)) / med if med > 0 else 0.0

    @property
    def n(self) -> int:
        return len(self.times)


def block(x: Any) -> Any:
    """Wait until every array in the pytree `x` is computed (JAX and CUDA torch), return `x`."""
    import jax

    leaves = jax.tree_util.tree_leaves(x)
    if any(type(leaf).__module__.startswith("torch") for leaf in leaves):
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return jax.block_until_ready(x)


def time_reps(
    fn: Callable[[], Any],
    *,
    min_reps: int = 5,
    max_reps: int = 51,
    budget_s: float = 1.0,
    warmup: bool = True,
) -> Timing:
    """Time `fn()` (synced with `block`) at least `min_reps` times.

    The number of repetitions grows for fast calls until about `budget_s` is spent, capped at
    `max_reps`. With `warmup`, one untimed call comes first.
    """
    if warmup:
        block(fn())
    timing = Timing()
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        block(fn())
        timing.times.append(time.perf_counter() - t0)
        spent = time.perf_counter() - start
        if timing.n >= max_reps or (timing.n >= min_reps and spent >= budget_s):
            return timing


def timed_call(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run `fn()` once, synced; return its result and the wall time."""
    t0 = time.perf_counter()
    out = block(fn())
    return out, time.perf_counter() - t0


def aot_compile(jitted: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Ahead-of-time compile a `jax.jit`-ed function; return (executable, seconds)."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    return compiled, time.perf_counter() - t0


def pause(seconds: float) -> None:
    """Let spinning BLAS / OpenMP / XLA worker threads go idle between implementations."""
    if seconds > 0:
        time.sleep(seconds)


def device_string() -> str:
    """E.g. 'cpu (Intel(R) Xeon(R) Processor, 2 cores)' or 'gpu (NVIDIA H100 80GB HBM3)'."""
    import jax

    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"cpu ({cpu_model()}, {os.cpu_count()} cores)"
    return f"{dev.platform} ({dev.device_kind})"


def device_kind_slug() -> str:
    """`jax.devices()[0].device_kind` made file-name safe ('cpu', 'nvidia-h100-80gb-hbm3')."""
    import jax

    dev = jax.devices()[0]
    kind = "cpu" if dev.platform == "cpu" else dev.device_kind
    return "".join(c if c.isalnum() else "-" for c in kind.lower()).strip("-")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Host, device and library versions for the results JSON."""
    import jax

    info: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
        "device": device_string(),
        "device_kind": device_kind_slug(),
        "env": {
            k: os.environ.get(k)
            for k in ("XLA_FLAGS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "JAX_ENABLE_X64")
        },
    }
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    return info
