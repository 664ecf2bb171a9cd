"""No hang under concurrency (issue 16 #1): 8 user threads x every solver and the analysis
functions, each result equal to a lone call's.

The hang it guards against: with jaxlib 0.10, 8 threads calling `solve` with policy
iteration deadlocked in 6 of 9 runs (2 threads on this 2-core machine: at once), inside the
batched LAPACK kernel's `ParallelBatchMap` (`jaxmdp._linalg` explains and removes the cause).
The workload is sized so that the old kernel took that parallel path (a batch of 64 LU
factorisations of 24 x 24: ~6e5 flops > its 2e5 threshold). Everything runs in a
subprocess under a watchdog, so a regression fails the test instead of hanging CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import faulthandler, json, sys, threading
    import jax, jax.numpy as jnp, numpy as np
    import jaxmdp

    faulthandler.dump_traceback_later({watchdog}, exit=True)  # stacks, then exit 1
    THREADS, CALLS = 8, 3
    rng = np.random.default_rng(0)
    B, S, A = 64, 24, 3
    P = rng.dirichlet(np.ones(S), size=(B, S, A))
    R = rng.standard_normal((B, S, A))
    mdp = jaxmdp.make_mdp(P, R, np.linspace(0.5, 0.95, B))
    policies = jnp.asarray(rng.integers(0, A, size=(B, S)))
    mu = jnp.full((S,), 1.0 / S)

    jobs = {{
        type(s).__name__: (lambda s=s: jaxmdp.solve(mdp, s))
        for s in (
            jaxmdp.ValueIteration(), jaxmdp.PolicyIteration(), jaxmdp.ModifiedPolicyIteration(),
            jaxmdp.GaussSeidelValueIteration(), jaxmdp.AndersonValueIteration(),
            jaxmdp.SoftValueIteration(), jaxmdp.RelativeValueIteration(),
        )
    }}
    jobs["policy_values (vmapped)"] = lambda: jax.vmap(jaxmdp.policy_values)(mdp, policies)
    jobs["occupancy (vmapped)"] = lambda: jax.vmap(
        lambda m, p: jaxmdp.occupancy(m, p, mu))(mdp, policies)
    jobs["stationary_distribution (vmapped)"] = lambda: jax.vmap(
        jaxmdp.stationary_distribution)(mdp, policies)
    jobs["grad through policy iteration"] = lambda: jax.grad(
        lambda r: jaxmdp.solve(mdp._replace(rewards=r), jaxmdp.PolicyIteration()).values.sum()
    )(mdp.rewards)
    user_program = jax.jit(jax.vmap(
        lambda p, r, g: jaxmdp.solve(jaxmdp.MDP(p, r, g), jaxmdp.PolicyIteration()).values
    ))
    jobs["a user's jit(vmap(solve))"] = lambda: user_program(*mdp)

    def same(a, b):
        return all(
            np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )

    report = {{}}
    for name, fn in jobs.items():
        lone = jax.block_until_ready(fn())
        bad = []

        def work():
            for _ in range(CALLS):
                out = jax.block_until_ready(fn())
                if not same(out, lone):
                    bad.append(1)

        threads = [threading.Thread(target=work, daemon=True) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report[name] = len(bad)
    faulthandler.cancel_dump_traceback_later()
    print(json.dumps(report))
    """
)


def test_eight_threads_every_solver_no_hang_and_lone_results():
    watchdog = 240
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT.format(watchdog=watchdog)],
            env=env,
            capture_output=True,
            text=True,
            timeout=watchdog + 60,
        )
    except subprocess.TimeoutExpired as e:  # the in-process watchdog failed too
        pytest.fail(f"threads hung past the watchdog: {(e.stderr or b'')[-3000:]!r}")
    assert proc.returncode == 0, "hung or failed (faulthandler stacks):\n" + proc.stderr[-6000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report) == 12, report
    assert all(v == 0 for v in report.values()), f"results differing from a lone call: {report}"
