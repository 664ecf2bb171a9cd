"""A/B of the two tile kernels of strategy "shared_tiles" on W1M, in one process (issue 15).

W1M: the lecture world (slip 0.2) over 1,000 step rewards in [-2, 0] x 1,000 discounts in
[0.5, 0.99], tol 1e-3, float32, value iteration with the span rule. Rows:

- one tile (3,968 members from the middle of the batch, pre-sliced): the first kernel
  (`shared_tiles_kernel.tile_program`) and the host kernel (`shared_tiles_fused`), at
  `max_iters=1` (fixed cost per tile) and to convergence; per member-sweep = the difference
  over the tile's sweeps;
- the whole `jaxmdp.solve` of W1M with the plan's host threads, once with each kernel
  (`shared_tiles_host.FUSED_ENTRIES_MAX` set to pick the kernel, `FUSED_MEMBERS_MIN` to 1);

each the minimum and median of `--reps` runs, the two kernels alternating; plus the largest
difference of the results and whether statuses and iteration counts agree.

    python -m benchmarks.shared_tiles_ab [--reps 5] [--members 1000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _times(fn, reps):
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--members", type=int, default=1_000_000)
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp

    import jaxmdp
    from jaxmdp._exec import shared_rows, shared_tiles, shared_tiles_fused, shared_tiles_host
    from jaxmdp._exec import shared_tiles_kernel as first
    from jaxmdp._exec.plan import SHARED_ROWS_MAX
    from jaxmdp.models import gridworld

    n = int(round(args.members**0.5))
    steps = np.linspace(-2.0, 0.0, n).astype(np.float32)
    gammas = np.linspace(0.5, 0.99, n).astype(np.float32)
    one = gridworld(step_reward=jnp.asarray(steps), slip=0.2)
    S, A = one.rewards.shape[-2:]
    R = np.broadcast_to(np.asarray(one.rewards)[:, None], (n, n, S, A))
    G = np.broadcast_to(gammas[None, :], (n, n))
    P = jnp.reshape(one.transitions, one.transitions.shape[-3:])
    mdp = jaxmdp.MDP(P, jnp.asarray(R), jnp.asarray(G))
    solver = jaxmdp.ValueIteration(tol=1e-3)

    # One tile.
    T = 3968
    prep = shared_rows.prepare(P, SHARED_ROWS_MAX)
    probs = jnp.asarray(prep.probs, jnp.float32)
    rows = shared_tiles._prob_rows(P, jnp.float32)
    pc = shared_tiles_fused.p_consts(rows)
    tol = jnp.float32(1e-3)
    off = R.size // (S * A) // 2
    r = np.ascontiguousarray(R.reshape(-1, S, A)[off : off + T])
    g = np.ascontiguousarray(G.reshape(-1)[off : off + T])

    def st(mi):
        return first.Static(prep.rows, "span", mi, True, False, 0)

    kernels = {
        "first kernel": lambda mi: first.tile_program(probs, rows, r, g, None, tol, st=st(mi)),
        "host kernel": lambda mi: shared_tiles_fused.tile_program(
            probs, pc, np.ascontiguousarray(r.transpose(2, 1, 0)), g, None, tol, st=st(mi)
        ),
    }
    res = {k: [np.asarray(x) for x in f(10**6)] for k, f in kernels.items()}
    sweeps = int(res["first kernel"][4].max())
    t1 = {k: [] for k in kernels}
    tf = {k: [] for k in kernels}
    for _ in range(args.reps):
        for k, f in kernels.items():
            t1[k] += _times(lambda f=f: jax.block_until_ready(f(1)), 3)
            tf[k] += _times(lambda f=f: jax.block_until_ready(f(10**6)), 3)
    print(
        f"one tile of {T} members, {sweeps} sweeps (members: mean "
        f"{res['first kernel'][4].mean():.1f}); load {os.getloadavg()[0]:.1f}"
    )
    for k in kernels:
        a, b = min(t1[k]), min(tf[k])
        print(
            f"  {k}: max_iters=1 {a * 1e3:.3f} ms (median {statistics.median(t1[k]) * 1e3:.3f}),"
            f" to convergence {b * 1e3:.3f} ms (median {statistics.median(tf[k]) * 1e3:.3f});"
            f" {a / T * 1e9:.0f} ns/member fixed, {(b - a) / (sweeps - 1) / T * 1e9:.1f}"
            " ns/member-sweep"
        )
    _diff("  tile results", res["first kernel"], res["host kernel"])

    # The whole solve, the host driver pointed at either kernel.
    drivers = {"first kernel": -1, "host kernel": shared_tiles_host.FUSED_ENTRIES_MAX}

    def solve_with(k):
        keep = shared_tiles_host.FUSED_ENTRIES_MAX, shared_tiles_host.FUSED_MEMBERS_MIN
        shared_tiles_host.FUSED_ENTRIES_MAX = drivers[k]
        shared_tiles_host.FUSED_MEMBERS_MIN = 1  # the entries alone pick, at any --members
        try:
            return jax.block_until_ready(jaxmdp.solve(mdp, solver))
        finally:
            shared_tiles_host.FUSED_ENTRIES_MAX, shared_tiles_host.FUSED_MEMBERS_MIN = keep

    out = {k: solve_with(k) for k in drivers}
    times = {k: [] for k in drivers}
    loads = []
    for _ in range(args.reps):
        for k in drivers:
            loads.append(os.getloadavg()[0])
            times[k] += _times(lambda k=k: solve_with(k), 1)
    print(
        f"jaxmdp.solve of {n * n} members (plan: "
        f"{shared_tiles.__name__.rsplit('.', 1)[-1]}), load {min(loads):.1f}-{max(loads):.1f}"
    )
    for k in drivers:
        print(f"  {k}: min {min(times[k]):.3f} s, median {statistics.median(times[k]):.3f} s")
    _diff("  solve results", list(out["first kernel"]), list(out["host kernel"]))


def _diff(label, a, b):
    names = ("values", "q_values", "policy", "status", "num_iters", "residual", "error_bound")
    parts = []
    for name, x, y in zip(names, a, b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind == "f":
            parts.append(
                f"{name} max|diff| {float(np.nanmax(np.abs(x.astype(np.float64) - y))):.1e}"
            )
        else:
            parts.append(f"{name} {int(np.sum(x != y))} differ")
    print(label + ": " + ", ".join(parts))


if __name__ == "__main__":
    main()
