"""Machine limits measured in the same run as the benchmarks (the "% of limit" column).

Each probe runs >= 5 timed repetitions; a limit is the best repetition (an upper bound: other
tenants on shared cores only ever make a repetition slower); medians are kept in `details`.

- Read bandwidth vs working-set size (STREAM byte counting): the best of NumPy `sum`
  (one thread), OpenBLAS sgemv `M @ x` (BLAS threads) and a jitted `jnp.sum` (XLA threads).
  A workload uses the point nearest (log scale) to its per-sweep traffic.
- Copy bandwidth (`np.copyto`, read + write bytes), reported for context.
- float32 GEMM GFLOP/s: NumPy, JAX and torch (if installed) at N^3 (N = 4096, 1024 with
  `--quick`); the best is the peak.
- `--device gpu`: the same read / copy / GEMM probes with JAX on the accelerator (key "accel";
  JAX's default float32 matmul precision, which may use TF32 tensor cores).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import _timing

HOST_SIZES_MIB = (1, 2, 16, 128, 256, 1024)
HOST_SIZES_MIB_QUICK = (1, 4, 16)
ACCEL_SIZES_MIB = (16, 64, 256, 1024, 4096)
ACCEL_SIZES_MIB_QUICK = (16, 256)


def _rate(nbytes_or_flops: float, fn, budget_s: float) -> tuple[float, float]:
    """(median, best) rate in G-units per second of `fn()` over >= 5 timed repetitions."""
    t = _timing.time_reps(fn, budget_s=budget_s, max_reps=21)
    return nbytes_or_flops / t.median / 1e9, nbytes_or_flops / min(t.times) / 1e9


def measure_limits(quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    """`{"host": {...}, "accel": {...} (gpu only)}`; each has read_gbps {MiB: GB/s}, gemm_gflops."""
    out = {"host": measure_host(quick)}
    if device == "gpu":
        out["accel"] = measure_accel(quick)
    return out


def measure_host(quick: bool) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    budget = 0.05 if quick else 0.3
    cpu = jax.devices("cpu")[0]
    jsum = jax.jit(jnp.sum)
    read: dict[int, float] = {}
    copy: dict[int, float] = {}
    details: list[dict[str, Any]] = []
    for mib in HOST_SIZES_MIB_QUICK if quick else HOST_SIZES_MIB:
        n = mib * 2**20 // 4
        a = np.random.default_rng(0).random(n, dtype=np.float32)
        nbytes = float(a.nbytes)
        M, x = a.reshape(-1, 256), np.ones(256, np.float32)
        aj = jax.device_put(a, cpu)
        probes = {
            "numpy sum (1 thread)": lambda a=a: a.sum(),
            "OpenBLAS sgemv": lambda M=M, x=x: M @ x,
            "jax jnp.sum": lambda aj=aj: jsum(aj),
        }
        best = 0.0
        for name, fn in probes.items():
            med, top = _rate(nbytes, fn, budget)
            details.append({"kind": "read", "mib": mib, "probe": name, "median": med, "best": top})
            best = max(best, top)
        read[mib] = best
        b = np.empty_like(a)
        med, top = _rate(2 * nbytes, lambda a=a, b=b: np.copyto(b, a), budget)
        details.append(
            {"kind": "copy", "mib": mib, "probe": "np.copyto", "median": med, "best": top}
        )
        copy[mib] = top
        del a, b, M, aj
    gemm, gemm_details = _gemm_host(1024 if quick else 4096, budget)
    details += gemm_details
    return {
        "read_gbps": read,
        "copy_gbps": copy,
        "gemm_gflops": gemm,
        "details": details,
        "summary": _summary(read, copy, gemm),
    }


def _gemm_host(N: int, budget: float) -> tuple[float, list[dict[str, Any]]]:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    a = rng.random((N, N), dtype=np.float32)
    b = rng.random((N, N), dtype=np.float32)
    flops = 2.0 * N**3
    cpu = jax.devices("cpu")[0]
    aj, bj = jax.device_put(a, cpu), jax.device_put(b, cpu)
    dot = jax.jit(jnp.dot)
    probes = {"numpy": lambda: a @ b, "jax": lambda: dot(aj, bj)}
    try:
        import torch

        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        probes["torch"] = lambda: at @ bt
    except ImportError:
        pass
    details, best = [], 0.0
    for name, fn in probes.items():
        med, top = _rate(flops, fn, budget)
        details.append({"kind": "gemm", "n": N, "probe": name, "median": med, "best": top})
        best = max(best, top)
    return best, details


def measure_accel(quick: bool) -> dict[str, Any]:
    """Read / copy / GEMM on the default JAX device (the accelerator)."""
    import jax
    import jax.numpy as jnp

    budget = 0.05 if quick else 0.3
    jsum, jcopy = jax.jit(jnp.sum), jax.jit(lambda x: x + 1.0)
    read: dict[int, float] = {}
    copy: dict[int, float] = {}
    details: list[dict[str, Any]] = []
    for mib in ACCEL_SIZES_MIB_QUICK if quick else ACCEL_SIZES_MIB:
        n = mib * 2**20 // 4
        x = jax.random.uniform(jax.random.key(0), (n,), jnp.float32)
        nbytes = float(n * 4)
        med, top = _rate(nbytes, lambda x=x: jsum(x), budget)
        details.append({"kind": "read", "mib": mib, "probe": "jnp.sum", "median": med, "best": top})
        read[mib] = top
        med, top = _rate(2 * nbytes, lambda x=x: jcopy(x), budget)
        details.append({"kind": "copy", "mib": mib, "probe": "x + 1", "median": med, "best": top})
        copy[mib] = top
        del x
    N = 4096 if quick else 8192
    k1, k2 = jax.random.split(jax.random.key(1))
    a = jax.random.uniform(k1, (N, N), jnp.float32)
    b = jax.random.uniform(k2, (N, N), jnp.float32)
    dot = jax.jit(jnp.dot)
    med, top = _rate(2.0 * N**3, lambda: dot(a, b), budget)
    details.append(
        {"kind": "gemm", "n": N, "probe": "jax (default precision)", "median": med, "best": top}
    )
    return {
        "read_gbps": read,
        "copy_gbps": copy,
        "gemm_gflops": top,
        "details": details,
        "summary": _summary(read, copy, top),
    }


def _summary(read: dict, copy: dict, gemm: float) -> str:
    r = ", ".join(f"{k} MiB: {v:.0f}" for k, v in read.items())
    c = ", ".join(f"{k} MiB: {v:.0f}" for k, v in copy.items())
    return f"read GB/s ({r}); copy GB/s ({c}); float32 GEMM peak {gemm:.0f} GFLOP/s"
