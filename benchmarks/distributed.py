"""Devices and processes: bytes exchanged and time per sweep, 1, 2 and 4 host devices and 2
processes.

Two computations, each in four configurations (one fresh process per configuration, since
XLA creates host devices at start-up; "2 processes" is a `jax.distributed` job of two
processes with one CPU device each, gloo collectives, on localhost):

- one MDP whose states are split over the devices ("blocked", `solve(mdp, devices=...)`),
  value iteration for a fixed number of sweeps (`rule="sup"` at discount 0.9999 never stops
  early), dense (`S x A x S`) and sparse (`K` successors): time per sweep (median of the
  repetitions / sweeps) and the bytes each device receives per sweep, read off the compiled
  program (every collective inside the loop body, with its shape);
- a parameter sweep (`jaxmdp.sweep`, value iteration on the lecture world, shared and
  per-member transitions): wall time of the whole (compiled) call, and the result bytes
  exchanged (members never talk; each process receives every other process's results).

Run: `python -m benchmarks.distributed [--quick] [--out FILE.json]`. Prints a markdown
report; the numbers of one run and the cost model for N GPUs are in
`benchmarks/results/distributed.md`. Timings here come from whatever machine runs this;
on a loaded 2-core machine, 2 and 4 host devices cannot be faster than 1 (they share the
cores), which is what the CPU default (host devices opt-in) rests on.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"1 device": (1, 1), "2 host devices": (2, 1), "4 host devices": (4, 1)}
CONFIGS["2 processes"] = (1, 2)  # (devices per process, processes)

_COLLECTIVE = re.compile(
    r"= (\(?[a-z0-9\[\], {}]*?\)?) (all-gather|all-reduce|all-to-all|collective-permute|"
    r"reduce-scatter)\(.*op_name=\"([^\"]*)\""
)
_ARRAY = re.compile(r"([a-z]+)(\d+)\[([\d,]*)\]")


def sizes(quick: bool) -> dict:
    if quick:
        return dict(dense=512, sparse=1 << 14, actions=4, succ=4, iters=30, reps=3,
                    shared=(512, 2), own=(128, 4))  # fmt: skip
    return dict(dense=2048, sparse=1 << 17, actions=4, succ=4, iters=100, reps=5,
                shared=(16384, 8), own=(4096, 16))  # fmt: skip


# -- inside one configuration ------------------------------------------------------------------


def loop_collectives(hlo: str, num_devices: int) -> dict:
    """Collectives of the loop body in optimised HLO: count per kind and the bytes one device
    receives per sweep (all-gather: (N-1)/N of the result; all-reduce, ring: 2 (N-1)/N)."""
    out = {"ops": [], "bytes": 0.0}
    frac = (num_devices - 1) / num_devices
    for shape, op, name in _COLLECTIVE.findall(hlo):
        if "while/body" not in name:
            continue
        nbytes = 0
        for dtype, bits, dims in _ARRAY.findall(shape):
            n = 1
            for d in dims.split(","):
                n *= int(d) if d else 1
            nbytes += n * int(bits) // 8 if dtype in ("f", "s", "u", "pred") else 0
        nbytes = max(nbytes, 1)  # pred[] is one byte
        out["ops"].append(f"{op} {shape}")
        out["bytes"] += nbytes * (frac if op == "all-gather" else 2 * frac)
    out["ops"] = sorted(set(out["ops"]))
    return out


def _mdp(form: str, S: int, A: int, K: int):
    import numpy as np

    import jaxmdp

    rng = np.random.default_rng(0)
    R = rng.standard_normal((S, A)).astype(np.float32)
    if form == "dense":
        P = rng.dirichlet(np.ones(S), size=(S, A)).astype(np.float32)
    else:
        nxt = rng.integers(0, S, size=(S, A, K)).astype(np.int32)
        P = jaxmdp.SparseTransitions(nxt, rng.dirichlet(np.ones(K), size=(S, A)).astype("f4"))
    return jaxmdp.MDP(P, R, np.float32(0.9999))


def _median(fn, reps: int) -> tuple[float, float]:
    """Median and spread of `reps` timed calls after one untimed call. A fixed count: in a
    job of several processes every process must make the same calls."""
    import jax

    jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return med, (max(times) - min(times)) / med


def child(quick: bool) -> dict:
    import jax
    import numpy as np

    import jaxmdp
    from jaxmdp import _sweep_memory, models
    from jaxmdp._exec import blocked
    from jaxmdp._solvers.base import SolveContext

    z = sizes(quick)
    devs = jax.devices()
    n = len(devs)
    out = {"devices": n, "processes": jax.process_count(), "blocked": {}, "sweeps": {}}
    solver = jaxmdp.ValueIteration(tol=1e-9, rule="sup")
    for form in ("dense", "sparse"):
        S = z[form]
        mdp = _mdp(form, S, z["actions"], z["succ"])
        iters = z["iters"]

        def run(mdp=mdp, iters=iters):
            return jaxmdp.solve(mdp, solver, max_iters=iters, devices=devs)

        t0 = time.perf_counter()
        sol = jax.block_until_ready(run())
        first = time.perf_counter() - t0
        assert int(sol.num_iters) == iters, int(sol.num_iters)
        med, spread = _median(run, z["reps"])
        row = {"S": S, "sweeps": iters, "per_sweep_ms": 1e3 * med / iters, "spread": spread}
        row["first_call_s"] = first
        if n > 1:
            ctx = SolveContext(undiscounted=False, zero_start=True, single=True)
            hlo = blocked.lower(mdp, None, solver, devices=devs, max_iters=iters, ctx=ctx)
            row.update(loop_collectives(hlo.compile().as_text(), n))
        else:
            row.update(ops=[], bytes=0.0)
        out["blocked"][form] = row

    def lecture(step_reward, discount):
        return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)

    def slipping(step_reward, slip):
        return models.gridworld(step_reward=step_reward, slip=slip, discount=0.95)

    vi = jaxmdp.ValueIteration()
    for kind, builder, (a, b), other in (
        ("shared", lecture, z["shared"], "discount"),
        ("own", slipping, z["own"], "slip"),
    ):
        axes = {"step_reward": np.linspace(-2, 0, a), other: np.linspace(0.9, 0.99, b)}
        if kind == "own":
            axes[other] = np.linspace(0.0, 0.3, b)
        t0 = time.perf_counter()
        result = jaxmdp.sweep(builder, vi, **axes)
        first = time.perf_counter() - t0
        med, spread = _median(lambda b=builder, x=axes: jaxmdp.sweep(b, vi, **x).values, z["reps"])
        members = result.size
        res = _sweep_memory.result_bytes(12, 4, 4)  # the lecture world: S=12, A=4, float32
        p = jax.process_count()
        out["sweeps"][kind] = {
            "members": members,
            "seconds": med,
            "spread": spread,
            "first_call_s": first,
            "chunks": result.num_chunks,
            "received_bytes": members * res * (p - 1) / p,
        }
    return out


# -- the parent: one fresh process (or job) per configuration ---------------------------------


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env.update(
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def run_config(devices: int, processes: int, quick: bool, timeout: float) -> dict:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for k in range(processes):
        argv = [sys.executable, "-m", "benchmarks.distributed", "--child"]
        argv += ["--quick"] * quick
        if processes > 1:
            argv += ["--job", f"127.0.0.1:{port},{processes},{k}"]
        procs.append(
            subprocess.Popen(argv, env=_env(devices), cwd=ROOT, stdout=subprocess.PIPE, text=True)
        )
    outs = []
    try:
        for p in procs:
            stdout, _ = p.communicate(timeout=timeout)
            if p.returncode != 0:
                raise RuntimeError(f"configuration failed (exit {p.returncode})")
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return outs[0]  # process 0's view (every process measures the same calls)


def report(results: dict, meta: dict) -> str:
    lines = [
        f"Machine: {meta['machine']}; load average before/after each configuration in the "
        "JSON. Medians of the repetitions (spread = (max - min) / median).",
        "",
        "One MDP split over devices (value iteration, fixed sweeps):",
        "",
        "| configuration | form | S | ms / sweep | spread | bytes received / device / sweep |"
        " collectives in the loop |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for form, row in r["blocked"].items():
            ops = "; ".join(row["ops"]) or "none"
            lines.append(
                f"| {name} | {form} | {row['S']} | {row['per_sweep_ms']:.2f} | "
                f"{row['spread']:.0%} | {row['bytes']:,.0f} | {ops} |"
            )
    lines += [
        "",
        "Parameter sweeps (value iteration, lecture world; whole compiled call):",
        "",
        "| configuration | transitions | members | seconds | spread | chunks | "
        "result bytes received per process |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for kind, row in r["sweeps"].items():
            lines.append(
                f"| {name} | {kind} | {row['members']} | {row['seconds']:.3f} | "
                f"{row['spread']:.0%} | {row['chunks']} | {row['received_bytes']:,.0f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    p.add_argument("--out", type=Path, help="JSON file for every number")
    p.add_argument("--timeout", type=float, default=1200, help="per configuration, seconds")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--job", help=argparse.SUPPRESS)  # coordinator,processes,id
    args = p.parse_args(argv)
    if args.child:
        import jax

        if args.job:
            address, count, me = args.job.split(",")
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            jax.distributed.initialize(address, int(count), int(me))
        print(json.dumps(child(args.quick)))
        return 0
    from benchmarks._timing import cpu_model

    meta = {"machine": f"{cpu_model()}, {os.cpu_count()} cores", "quick": args.quick}
    results, loads = {}, {}
    for name, (devices, processes) in CONFIGS.items():
        print(f"{name} ...", file=sys.stderr, flush=True)
        before = os.getloadavg()[0]
        results[name] = run_config(devices, processes, args.quick, args.timeout)
        loads[name] = [before, os.getloadavg()[0]]
    meta["load_average"] = loads
    text = report(results, meta)
    print(text)
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
