"""Memory budgets: how many bytes this process may still use, and a clear error when a job
would need more.

Out-of-memory must be an error that names the size and the budget, never a hang or an abort
inside XLA. The budget is the smallest of what the operating system reports:

- physical memory still available (`MemAvailable` of /proc/meminfo, or sysconf);
- the address-space and data-segment limits of this process (`ulimit -v` / `ulimit -d`,
  `RLIMIT_AS` / `RLIMIT_DATA`) minus what it already maps;
- the cgroup limit of its container (v2 `memory.max` - `memory.current`, or v1
  `memory.limit_in_bytes` - `memory.usage_in_bytes`);
- on an accelerator, the device's `bytes_limit - bytes_in_use` (`device_budget`).

Estimates are estimates: callers compare with a fraction of the budget (`HOST_FRACTION`), and
report both numbers in the error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

HOST_FRACTION = 0.5  # of the host budget a single computation may plan to use
DEVICE_FRACTION = 0.6  # of an accelerator's free memory


class Budget(NamedTuple):
    bytes: int
    source: str  # what limited it, for messages


def mib(n: float) -> str:
    """`n` bytes as a human-readable size with its own unit (never "0.0 MiB" for 300 bytes)."""
    n = float(n)
    if abs(n) >= 2**30:
        return f"{n / 2**30:,.2f} GiB"
    if abs(n) >= 2**20:
        return f"{n / 2**20:,.1f} MiB"
    if abs(n) >= 2**10:
        return f"{n / 2**10:,.1f} KiB"
    return f"{n:,.0f} B"


def _meminfo() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rlimits() -> list[Budget]:
    try:
        import resource
    except ImportError:  # not on POSIX
        return []
    out = []
    for name, field, label in (
        ("RLIMIT_AS", "VmSize", "address-space limit (ulimit -v)"),
        ("RLIMIT_DATA", "VmData", "data-segment limit (ulimit -d)"),
    ):
        lim = getattr(resource, name, None)
        if lim is None:
            continue
        soft, _ = resource.getrlimit(lim)
        if soft == resource.RLIM_INFINITY or soft <= 0:
            continue
        used = _status_kib(field) or 0
        out.append(Budget(max(0, soft - used), f"{label} {mib(soft)}, {mib(used)} in use"))
    return out


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _cgroup() -> Budget | None:
    root = Path("/sys/fs/cgroup")
    limit = _read_int(root / "memory.max")  # v2
    if limit is not None:
        used = _read_int(root / "memory.current") or 0
        return Budget(max(0, limit - used), f"cgroup memory.max {mib(limit)}, {mib(used)} used")
    limit = _read_int(root / "memory" / "memory.limit_in_bytes")  # v1
    if limit is not None and limit < 1 << 60:  # v1 reports "no limit" as a huge number
        used = _read_int(root / "memory" / "memory.usage_in_bytes") or 0
        return Budget(max(0, limit - used), f"cgroup memory limit {mib(limit)}, {mib(used)} used")
    return None


def host_budget() -> Budget:
    """Bytes this process may still allocate on the host, and what limited that figure."""
    candidates = []
    avail = _meminfo()
    if avail is not None:
        candidates.append(Budget(avail, f"available RAM {mib(avail)}"))
    candidates.extend(_rlimits())
    cg = _cgroup()
    if cg is not None:
        candidates.append(cg)
    if not candidates:
        return Budget(8 << 30, "unknown platform: assumed 8 GiB")
    return min(candidates, key=lambda b: b.bytes)


def device_budget(device=None) -> Budget:
    """Free bytes on `device` (default: JAX's default device). CPU devices use the host's."""
    if device is not None and getattr(device, "platform", "cpu") != "cpu":
        try:
            stats = device.memory_stats() or {}
        except Exception:  # noqa: BLE001 - backends without statistics
            stats = {}
        if "bytes_limit" in stats:
            free = int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
            return Budget(free, f"free memory of {device.platform} device {device.id}: {mib(free)}")
    return host_budget()


def require(nbytes: int, what: str, *, device=None, fraction: float | None = None) -> None:
    """Raises `MemoryError` if `what` needs more than `fraction` of the budget.

    Args:
      nbytes: estimated peak bytes of the computation.
      what: a phrase naming the computation and its size, e.g. "solving 1 MDP of S=30000".
      device: where it runs (None: the host / default CPU device).
      fraction: share of the budget it may use (default `HOST_FRACTION` on the host,
        `DEVICE_FRACTION` on an accelerator).
    """
    budget = device_budget(device)
    on_host = device is None or getattr(device, "platform", "cpu") == "cpu"
    if fraction is None:
        fraction = HOST_FRACTION if on_host else DEVICE_FRACTION
    allowed = int(budget.bytes * fraction)
    if nbytes > allowed:
        raise MemoryError(
            f"{what} needs about {mib(nbytes)}, more than the {mib(allowed)} allowed "
            f"({fraction:.0%} of the budget; {budget.source}). Use a smaller batch or "
            "chunk_size, float32 instead of float64, or the sparse transitions form."
        )
