"""Reliability figures for issue 16, measured after the fixes (results in
benchmarks/results/reliability.md).

Each scenario runs in its own subprocess (hangs, signals, ulimit and RSS must not leak into
the next one):

- `hang`: 8 Python threads x 5 calls of `solve(PolicyIteration)` on batches of 64 MDPs of
  S = 64 (the shape that deadlocked), N runs under a 60 s watchdog; the same with the old
  batched LAPACK path forced back (`--before`: `jaxmdp._linalg` bypassed) for contrast.
- `certificates`: N random float32 MDPs (S = 8, A = 4, discounts 0.9 / 0.99 / 0.999, rewards
  up to +-100 with an offset), every solver with its defaults and VI / MPI with tol 1e-6;
  violations of `|V - V*| <= error_bound` and `|Q - Q*| <= error_bound` against float64
  policy iteration on the same float32 arrays (as the issue measured), and the ratio error
  / bound (how tight).
- `memory`: `solve(PolicyIteration)` of one MDP with S = 6000 at discount 1 under an address
  space limit 600 MiB above what the process maps: time to the MemoryError.
- `interrupt`: SIGINT 1.5 s into three long solves (tiles on host threads, shared
  transitions, one MDP): time to KeyboardInterrupt, then the time of the next small solve.
- `rss`: RSS growth per new problem shape over 8 shapes, without and with `clear_caches()`.
- `divergence`: 1,024 random MDPs at discount 1 with positive / negative rewards: sweeps to
  `Status.UNBOUNDED` and wall time.

Run: `python -m benchmarks.reliability [--runs 5] [--json FILE]`. Timings are from this
machine and noisy; counts are what matters.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

HANG = textwrap.dedent(
    """
    import sys, threading, time
    import jax, jax.numpy as jnp, numpy as np
    from jax import lax
    import jaxmdp
    from jaxmdp import _linalg
    if sys.argv[1] == "before":  # the batched LAPACK kernels, as before the fix
        _linalg.lu = lambda m: lax.linalg.lu(m)
        _linalg.triangular_solve = lambda a, b, *, lower, unit_diagonal=False, transpose_a=False: (
            lax.linalg.triangular_solve(a, b, left_side=True, lower=lower,
                                        transpose_a=transpose_a, unit_diagonal=unit_diagonal))
    r = np.random.default_rng(0)
    mdps = [jaxmdp.make_mdp(r.dirichlet(np.ones(64), size=(64, 64, 3)),
                            r.standard_normal((64, 64, 3)), 0.9) for _ in range(8)]
    jax.block_until_ready(jaxmdp.solve(mdps[0], jaxmdp.PolicyIteration()))
    done = [0] * 8
    def work(k):
        for _ in range(5):
            jax.block_until_ready(jaxmdp.solve(mdps[k], jaxmdp.PolicyIteration()).values)
            done[k] += 1
    ts = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(8)]
    for t in ts: t.start()
    for t in ts: t.join()
    print(sum(done))
    """
)

CERTIFICATES = textwrap.dedent(
    """
    import json, sys
    import numpy as np, jaxmdp
    sys.path.insert(0, "tests")
    import numpy_reference as ref
    from conftest import random_mdp_arrays
    N = int(sys.argv[1])
    solvers = {
        "ValueIteration()": jaxmdp.ValueIteration(),
        "ValueIteration(tol=1e-6)": jaxmdp.ValueIteration(tol=1e-6),
        "ValueIteration(rule='sup')": jaxmdp.ValueIteration(rule="sup"),
        "PolicyIteration()": jaxmdp.PolicyIteration(),
        "ModifiedPolicyIteration()": jaxmdp.ModifiedPolicyIteration(),
        "ModifiedPolicyIteration(tol=1e-6)": jaxmdp.ModifiedPolicyIteration(tol=1e-6),
        "GaussSeidelValueIteration()": jaxmdp.GaussSeidelValueIteration(),
        "AndersonValueIteration()": jaxmdp.AndersonValueIteration(),
    }
    rng = np.random.default_rng(16)
    out = {k: {"violations": 0, "worst_ratio": 0.0, "statuses": {}} for k in solvers}
    for n in range(N):
        g = [0.9, 0.99, 0.999][n % 3]
        P, R = random_mdp_arrays(rng, 8, 4, sparsity=[0.0, 0.5, 0.9][(n // 3) % 3],
                                 reward_scale=[1.0, 10.0, 100.0][n % 3])
        mdp = jaxmdp.make_mdp(P, R + rng.uniform(-50, 50), g)
        Pd, Rd = np.asarray(mdp.transitions, np.float64), np.asarray(mdp.rewards, np.float64)
        V, _, Q = ref.policy_iteration(Pd, Rd, float(np.asarray(mdp.discount)))
        for name, solver in solvers.items():
            sol = jaxmdp.solve(mdp, solver, max_iters=100_000)
            err = max(np.abs(np.asarray(sol.values, np.float64) - V).max(),
                      np.abs(np.asarray(sol.q_values, np.float64) - Q)[np.isfinite(Q)].max())
            bound = float(sol.error_bound)
            o = out[name]
            o["violations"] += int(err > bound)
            o["worst_ratio"] = max(o["worst_ratio"], err / bound if bound > 0 else np.inf)
            st = jaxmdp.Status(int(sol.status)).name
            o["statuses"][st] = o["statuses"].get(st, 0) + 1
    print(json.dumps(out))
    """
)

MEMORY = textwrap.dedent(
    """
    import json, resource, time
    import jax.numpy as jnp, numpy as np, jaxmdp
    S = 6000
    rng = np.random.default_rng(0)
    P = rng.random((S, 1, S), dtype=np.float32); P /= P.sum(-1, keepdims=True)
    mdp = jaxmdp.MDP(jnp.asarray(P), jnp.asarray(rng.random((S, 1), dtype=np.float32)),
                     jnp.float32(1.0))
    del P
    vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1])
    resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + (600 << 20), resource.RLIM_INFINITY))
    t = time.time()
    try:
        jaxmdp.solve(mdp, jaxmdp.PolicyIteration())
        msg = "no error"
    except MemoryError as e:
        msg = str(e)
    print(json.dumps({"seconds": time.time() - t, "message": msg}))
    """
)

RSS = textwrap.dedent(
    """
    import json
    import jax, numpy as np, jaxmdp
    def rss():
        return next(int(l.split()[1]) for l in open("/proc/self/status")
                    if l.startswith("VmRSS")) / 1024
    rng = np.random.default_rng(0)
    def new_shape(S):
        P, R = rng.dirichlet(np.ones(S), size=(S, 3)), rng.standard_normal((S, 3))
        jax.block_until_ready(jaxmdp.solve(jaxmdp.make_mdp(P, R, 0.9)))
    for S in range(5, 8):
        new_shape(S)
    a = rss()
    for S in range(8, 16):
        new_shape(S)
    kept = (rss() - a) / 8
    jaxmdp.clear_caches()
    a = rss()
    for S in range(16, 24):
        new_shape(S)
        jaxmdp.clear_caches()
    print(json.dumps({"kept_mb_per_shape": kept, "cleared_mb_per_shape": (rss() - a) / 8}))
    """
)

DIVERGENCE = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, jax, jaxmdp
    sys.path.insert(0, "tests")
    from conftest import random_mdp_arrays
    rng = np.random.default_rng(0)
    P, _ = random_mdp_arrays(rng, 64, 8, batch=(1024,))
    R = rng.uniform(0.0, 1.0, size=(1024, 64, 8)); R[1::2] -= 1.0
    mdp = jaxmdp.make_mdp(P, R, 1.0)
    jax.block_until_ready(jaxmdp.solve(mdp, max_iters=10_000))
    t = time.time(); sol = jax.block_until_ready(jaxmdp.solve(mdp, max_iters=10_000))
    st = np.asarray(sol.status)
    print(json.dumps({"seconds": time.time() - t, "unbounded": int((st == 5).sum()),
                      "max_sweeps": int(np.asarray(sol.num_iters).max())}))
    """
)


def _run(code, args=(), timeout=600):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    t = time.time()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, time.time() - t
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return proc.stdout.strip().splitlines()[-1], time.time() - t


def hang(runs: int) -> dict:
    out = {}
    for mode in ("after", "before"):
        hung = 0
        for _ in range(runs):
            line, _ = _run(HANG, [mode], timeout=60)
            hung += line is None or int(line) != 40
        out[mode] = {"hung": hung, "runs": runs}
    return out


def interrupt() -> dict:
    sys.path.insert(0, "tests")
    from test_interrupt import SCRIPT  # the test's scenario, reused

    line, _ = _run(SCRIPT, timeout=300)
    return json.loads(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="hang runs per mode")
    ap.add_argument("--mdps", type=int, default=60, help="random MDPs for the certificates")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    figures = {
        "hang": hang(args.runs),
        "certificates": json.loads(_run(CERTIFICATES, [args.mdps])[0]),
        "memory": json.loads(_run(MEMORY)[0]),
        "interrupt": interrupt(),
        "rss": json.loads(_run(RSS)[0]),
        "divergence": json.loads(_run(DIVERGENCE)[0]),
    }
    text = json.dumps(figures, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
