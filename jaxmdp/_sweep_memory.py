"""How much of a sweep fits in memory: the tile and chunk sizes, or a `MemoryError` first.

Every buffer a sweep allocates is counted before anything is allocated, against the budgets of
`jaxmdp._memory` (available RAM, `ulimit -v` / `-d`, the cgroup's limit, an accelerator's free
memory), so that running out of memory is an error naming the size and the budget, never a
hang or an abort inside XLA:

- on the host, for the whole sweep: the result arrays (`size` members; `result_bytes` each),
  allocated before the first chunk runs (in every process of a `jax.distributed` job: each
  receives the whole result);
- per chunk of `c` members: the chunk's parameters as NumPy arrays and two host copies of its
  results (the device-to-host transfer and the slice written into the result arrays);
- per device, for its `m = c / devices` members of the chunk: the parameters and results of
  those members on the device, and while a tile of `t` members runs, their working state
  (`member_bytes`: rewards, solver state with double buffering, batched transitions, PI's
  matrices), plus the shared leaves (built once, one temporary copy).

CPU devices live in the host's RAM, so there everything is counted against one budget.
"""

from __future__ import annotations

from typing import NamedTuple

from jaxmdp import _memory
from jaxmdp._memory import mib
from jaxmdp._solvers.modified_policy_iteration import ModifiedPolicyIteration
from jaxmdp._solvers.value_iteration import ValueIteration


def member_bytes(
    num_states: int,
    num_actions: int,
    itemsize: int,
    *,
    transitions_batched: bool,
    solver,
    transitions_bytes: int | None = None,
) -> int:
    """Estimated working bytes of one batch member while its tile is solved.

    Counts the rewards, the solver state (values, Q, the next Q, the stopping statistics)
    with the loop's double buffering, the member's own transitions when they are batched
    (the builder's result plus one intermediate), and for policy iteration (or an unknown
    solver) the `[S, S]` matrices of the exact policy evaluation.
    """
    S, A = num_states, num_actions
    n = 8 * S + 6 * S * A + 16
    if transitions_batched:  # one member's transitions (dense S A S, or sparse lists)
        n += 2 * (S * A * S if transitions_bytes is None else -(-transitions_bytes // itemsize))
    if not isinstance(solver, (ValueIteration, ModifiedPolicyIteration)):
        n += 6 * S * S
    return n * itemsize


def result_bytes(num_states: int, num_actions: int, itemsize: int) -> int:
    """Bytes of one member's `Solution` (values, Q, residual, bound; int32 policy, status,
    iterations)."""
    S, A = num_states, num_actions
    return itemsize * (S + S * A + 2) + 4 * (S + 2)


class Plan(NamedTuple):
    tile: int  # members per tile
    limit: int  # most members per chunk (all devices), a whole number of tiles per device
    source: str  # what limited the budget, for messages
    needs: str  # the estimate, for messages


def plan(
    *,
    size: int,
    devices: list,
    full_tile: int,
    per: int,
    res: int,
    par: int,
    fixed: int,
    memory_limit: int | None,
    describe: str,
    res_float64: bool = False,
) -> Plan:
    """Largest tile (up to `full_tile`) and chunk that fit, or `MemoryError`.

    Args:
      size: members of the sweep.
      devices: the devices the batch is split over.
      full_tile: the tile size that makes results independent of chunking.
      per: working bytes per member of a running tile (`member_bytes`).
      res: result bytes per member (`result_bytes`).
      par: parameter bytes per member (one value per axis).
      fixed: bytes of the shared leaves per device.
      memory_limit: bytes per device set by the user (replaces the device budget).
      describe: "S=.., A=.., dtype, transitions shared" for messages.
      res_float64: the results are float64 (the message suggests float32).
    """
    n_dev = len(devices)
    host = _memory.host_budget()
    host_allowed = int(host.bytes * _memory.HOST_FRACTION)
    host_source = f"{_memory.HOST_FRACTION:.0%} of the host budget: {host.source}"
    results = size * res
    if results > host_allowed:
        raise MemoryError(
            f"the results of this sweep of {size:,} MDPs ({describe}) need about "
            f"{mib(results)} on the host ({mib(res)} per member: values, Q, policy, status, "
            f"iterations, residual, bound), more than the {mib(host_allowed)} allowed "
            f"({host_source}). Sweep fewer points at a time (several sweeps over parts of an "
            f"axis){' or use float32' if res_float64 else ''}."
        )
    local = [d for d in devices if getattr(d, "process_index", 0) == _process_index()]
    on_cpu = all(getattr(d, "platform", "cpu") == "cpu" for d in local or devices)
    shared_host = memory_limit is None and on_cpu  # the devices' memory is the host's RAM
    if memory_limit is not None:
        dev_allowed, dev_source = int(memory_limit), f"memory_limit={int(memory_limit):,} bytes"
    elif not on_cpu:
        budgets = [_memory.device_budget(d) for d in local or devices]
        worst = min(budgets, key=lambda b: b.bytes)
        dev_allowed = int(worst.bytes * _memory.DEVICE_FRACTION)
        dev_source = f"{_memory.DEVICE_FRACTION:.0%} of the {worst.source}"
    else:
        dev_allowed, dev_source = 0, host_source

    def device(t: int, m: int) -> int:  # one device: shared leaves, a tile, its chunk share
        return fixed + t * per + m * (par + res)

    def host_part(m: int) -> int:  # the results, the chunk's parameters and host copies
        return results + n_dev * m * (par + 2 * res)

    n_local = len(local) or n_dev  # devices in this host's RAM (CPU devices)

    def fits(t: int, m: int) -> bool:
        if shared_host:
            return host_part(m) + n_local * device(t, m) <= host_allowed
        return device(t, m) <= dev_allowed and host_part(m) <= host_allowed

    if not fits(1, 1):
        if shared_host:
            left = host_allowed - results
            where = f"after the results ({mib(results)}); {host_source}"
        else:
            left, where = dev_allowed, dev_source
        raise MemoryError(
            f"this sweep cannot fit even one MDP per device: each member needs about "
            f"{mib(per + 2 * par + 3 * res)} ({describe}) plus {mib(fixed)} shared, but "
            f"the budget is {mib(max(left, 0))} per device ({where})."
        )
    tile = _largest(lambda t: fits(t, t), 1, max(1, full_tile))
    per_device = -(-size // n_dev)
    tiles = _largest(lambda k: fits(tile, k * tile), 1, max(1, -(-per_device // tile)))
    needs = (
        f"{mib(per)} of working state per member in tiles of {tile}, {mib(par + res)} of "
        f"parameters and results per member of a chunk, {mib(results)} of results on the host"
    )
    return Plan(tile, tiles * tile * n_dev, dev_source if not shared_host else host_source, needs)


def _largest(ok, lo: int, hi: int) -> int:
    """Largest `x` in `[lo, hi]` with `ok(x)` (`ok` monotone, `ok(lo)` true)."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _process_index() -> int:
    import jax

    return jax.process_index()
