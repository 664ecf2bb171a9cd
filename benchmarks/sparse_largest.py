"""The largest grid world: build and solve an n x n world (default 3163 x 3163, 10^7 states).

`python -m benchmarks.sparse_largest [--side N] [--discount G] [--tol T] [--build-only]
[--max-iters N]`

The world is the W5 layout of benchmarks/sparse_workloads.py (start top-left, '+' bottom-
right, a '-' cell and a wall segment), slip 0.1, step reward -0.04, solved by value iteration
(span rule) in float32 on the CPU. Prints the size, build and solve times (wall, one run:
the solve's time includes compiling), sweeps, status, error bound, the bytes of the sparse
arrays and the process's peak RSS (VmHWM): after the build, and over the solve (VmHWM
reset through /proc/self/clear_refs just before it), each next to the bytes of the sparse
arrays + rewards + values. `--max-iters 20` measures the memory without the full solve (a
sweep's memory does not depend on how many sweeps run).
"""

from __future__ import annotations

import argparse
import os
import time


def _peak_rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) * 1024 / 1e9
    return float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sparse_largest", description=__doc__)
    p.add_argument("--side", type=int, default=3163)
    p.add_argument("--discount", type=float, default=0.99)
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--build-only", action="store_true", help="build, do not solve")
    p.add_argument("--max-iters", type=int, default=100_000)
    args = p.parse_args(argv)
    import jax

    jax.config.update("jax_platforms", "cpu")
    import numpy as np

    import jaxmdp
    from benchmarks.sparse_workloads import grid_text
    from jaxmdp.models import gridworld

    t = time.perf_counter()
    mdp = gridworld(grid_text(args.side), step_reward=-0.04, slip=0.1, discount=args.discount)
    jax.block_until_ready(mdp)
    t_build = time.perf_counter() - t
    P = mdp.transitions
    nbytes = P.next_states.nbytes + P.probs.nbytes + mdp.rewards.nbytes + 4 * P.num_states
    print(f"side {args.side}: S = {P.num_states:,}, A = 4, K = {P.num_successors}")
    print(f"built in {t_build:.1f} s; sparse arrays + rewards + values {nbytes / 1e9:.2f} GB")
    build_peak = _peak_rss_gb()
    print(f"peak RSS after the build {build_peak:.2f} GB ({build_peak * 1e9 / nbytes:.2f}x)")
    if args.build_only:
        print(f"load average {os.getloadavg()[0]:.1f}")
        return 0
    from benchmarks.sparse_workloads import _rss_reset

    _rss_reset()
    t = time.perf_counter()
    solver = jaxmdp.ValueIteration(tol=args.tol)
    sol = jaxmdp.solve(mdp, solver, max_iters=args.max_iters)
    jax.block_until_ready(sol.values)
    t_solve = time.perf_counter() - t
    print(
        f"solved in {t_solve:.1f} s (incl. compile): {int(sol.num_iters)} sweeps, "
        f"status {jaxmdp.Status(int(sol.status)).name}, error bound {float(sol.error_bound):.2e}, "
        f"V(start) {float(np.asarray(sol.values)[0]):.4f}"
    )
    peak = _peak_rss_gb()
    print(
        f"peak RSS over the solve {peak:.2f} GB ({peak * 1e9 / nbytes:.2f}x), whole process "
        f"{max(peak, build_peak):.2f} GB; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
