"""Memory of a sweep that shares its transitions: 4,096 variants of one 256-state, 8-action MDP.

The variants differ only in rewards (64 reward scales) and discount (64 values in [0.9, 0.99]),
so `jaxmdp.sweep` builds the transitions once and every backup is one `[A*S, S] x [S, B]`
matrix-matrix product. 4,096 copies of the transitions would take
4096 * 256 * 8 * 256 * 4 B = 8.6 GB; this script measures what the sweep really uses:

- the peak resident memory (VmHWM) of this process during the (already compiled) sweep,
  above the resident memory before it (the peak is reset through /proc/self/clear_refs);
- XLA's own memory analysis of the compiled program (arguments, outputs, temporaries);
- the backup's dot instructions in the optimised HLO, with operand shapes, and whether any
  array in the program has the `B * S * A * S` elements a copy of the transitions would need.

Run: `python -m benchmarks.sweep_memory [--side 64 --states 256 --actions 8] [--out FILE.md]`.
Numbers from one run are in benchmarks/results/sweep_memory.md.
"""

from __future__ import annotations

import argparse
import re
import time

import jax
import numpy as np

import jaxmdp
from jaxmdp import models

_SHAPE = re.compile(r"^\s*(?:ROOT\s+)?(%[\w.\-]+) = (\w+)\[([\d,]*)\]")
_DOT = re.compile(r"= \w+\[([\d,]*)\][^=]*? dot\((%[\w.\-]+), (%[\w.\-]+)\)")


def _dims(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split(",") if d)


def hlo_dots(hlo: str) -> list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """`(result, lhs, rhs)` shapes of every dot in optimised HLO text."""
    shapes = {m.group(1): _dims(m.group(3)) for m in map(_SHAPE.match, hlo.splitlines()) if m}
    return [
        (_dims(m.group(1)), shapes.get(m.group(2), ()), shapes.get(m.group(3), ()))
        for m in _DOT.finditer(hlo)
    ]


def largest_array(hlo: str) -> int:
    """Element count of the largest array any instruction of the program produces."""
    sizes = [int(np.prod(_dims(m.group(3)))) for m in map(_SHAPE.match, hlo.splitlines()) if m]
    return max(sizes, default=0)


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def problem(num_states: int, num_actions: int, side: int, *, copy: bool = False):
    """The builder and the two axes (side x side variants).

    With `copy=True` the transitions are made to depend on a swept parameter
    (`P + 0 * reward_scale`), which forces one copy per member: the contrast.
    """
    base = models.random_mdp(jax.random.key(0), num_states, num_actions, discount=0.9)
    P, R0 = np.asarray(base.transitions), np.asarray(base.rewards)

    def builder(reward_scale, discount):
        transitions = P + 0.0 * reward_scale if copy else P
        return jaxmdp.MDP(transitions, R0 * reward_scale, discount)

    axes = {
        "reward_scale": np.linspace(0.5, 2.0, side),
        "discount": np.linspace(0.9, 0.99, side),
    }
    return builder, axes


def measure(num_states: int = 256, num_actions: int = 8, side: int = 64) -> dict:
    S, A, B = num_states, num_actions, side * side
    builder, axes = problem(S, A, side)
    solver = jaxmdp.ValueIteration()  # tol=None: SUCCESS with the certified float32 bound
    t0 = time.perf_counter()
    compiled = jaxmdp.lower_sweep(builder, solver, **axes).compile()
    compile_s = time.perf_counter() - t0
    hlo = compiled.as_text()
    mem = compiled.memory_analysis()
    copying, _ = problem(S, A, side, copy=True)  # compiled only, never run
    mem_copy = (
        jaxmdp.lower_sweep(copying, solver, memory_limit=1 << 50, **axes).compile()
    ).memory_analysis()
    jaxmdp.sweep(builder, solver, **axes)  # warm: every cache filled
    rss_before = _vm_kib("VmRSS")
    reset = _reset_peak()
    t0 = time.perf_counter()
    result = jaxmdp.sweep(builder, solver, **axes)
    run_s = time.perf_counter() - t0
    peak = _vm_kib("VmHWM")  # without the reset: the whole run's peak, an upper bound
    itemsize = np.dtype(result.values.dtype).itemsize
    return {
        "S": S,
        "A": A,
        "B": B,
        "chunks": result.num_chunks,
        "tile": result.tile_size,
        "status_ok": int(result.ok.sum()),
        "max_iters": int(result.num_iters.max()),
        "copies_bytes": B * S * A * S * itemsize,
        "one_p_bytes": S * A * S * itemsize,
        "rss_before_bytes": rss_before * 1024,
        "peak_increase_bytes": (peak - rss_before) * 1024,
        "peak_reset": reset,
        "xla_argument_bytes": mem.argument_size_in_bytes,
        "xla_output_bytes": mem.output_size_in_bytes,
        "xla_temp_bytes": mem.temp_size_in_bytes,
        "xla_temp_bytes_if_copied": mem_copy.temp_size_in_bytes,
        "largest_array_elements": largest_array(hlo),
        "copy_elements": B * S * A * S,
        "dots": hlo_dots(hlo),
        "compile_s": compile_s,
        "run_s": run_s,
        "device": jax.devices()[0].device_kind,
    }


def report(m: dict) -> str:
    gib = 2.0**30
    mib = 2.0**20
    dots = "\n".join(f"- `{r} = dot({lhs}, {rhs})`" for r, lhs, rhs in m["dots"])
    return f"""# Sweep memory: shared transitions stay shared

`python -m benchmarks.sweep_memory --side {int(m["B"] ** 0.5)} --states {m["S"]} \
--actions {m["A"]}` on {m["device"]} (float32).

{m["B"]:,} variants of one {m["S"]}-state, {m["A"]}-action random MDP (reward scale x discount),
ValueIteration(): {m["status_ok"]:,} succeeded, at most {m["max_iters"]} sweeps,
{m["chunks"]} chunk(s).

| quantity | bytes |
|---|---|
| {m["B"]:,} copies of the transitions (what must NOT happen) | \
{m["copies_bytes"] / 1e9:.2f} GB ({m["copies_bytes"] / gib:.2f} GiB) |
| one transitions array | {m["one_p_bytes"] / mib:.1f} MiB |
| peak resident memory during the sweep, above the process before it | \
{m["peak_increase_bytes"] / mib:.1f} MiB |
| XLA: arguments / outputs / temporaries of the compiled program | \
{m["xla_argument_bytes"] / mib:.2f} / {m["xla_output_bytes"] / mib:.1f} / \
{m["xla_temp_bytes"] / mib:.1f} MiB |
| XLA temporaries of the same sweep with the transitions made to depend on a parameter \
(compiled, not run; the sweep works in tiles of {m["tile"]} members, so even then only one \
tile's copies exist at a time) | {m["xla_temp_bytes_if_copied"] / mib:.1f} MiB |
| largest array in the optimised HLO (the `[B, S, A]` Q output) | \
{m["largest_array_elements"]:,} elements (the copies: {m["copy_elements"]:,}) |

Peak measured as VmHWM after resetting it through /proc/self/clear_refs
(reset worked: {m["peak_reset"]}); the process held {m["rss_before_bytes"] / mib:.0f} MiB before.
Compile {m["compile_s"]:.1f} s, run {m["run_s"]:.2f} s.

The backup in the optimised HLO (`jaxmdp.lower_sweep(...).compile().as_text()`): dot
instructions as `result = dot(lhs, rhs)` shapes. `[{m["A"] * m["S"]}, {m["S"]}] x \
[{m["S"]}, {m["tile"]}]` is the batched backup of a tile of {m["tile"]} members, one \
matrix-matrix product (the sweep solves its {m["B"]:,} members as \
{-(-m["B"] // m["tile"])} tiles, one after the other, each stopping when its members have \
converged):

{dots}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=64, help="variants = side * side")
    parser.add_argument("--states", type=int, default=256)
    parser.add_argument("--actions", type=int, default=8)
    parser.add_argument("--out", help="also write the markdown report to this file")
    args = parser.parse_args(argv)
    text = report(measure(args.states, args.actions, args.side))
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
