"""`jaxmdp.sweep` across devices: 4 CPU devices in a subprocess, identical to one device.

XLA only creates the extra host devices at start-up
(`XLA_FLAGS=--xla_force_host_platform_device_count=4`), so the check runs in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    import numpy as np
    import jaxmdp
    from jaxmdp import models

    assert len(jax.devices()) == 4, jax.devices()

    def lecture(step_reward, discount, slip=0.2):
        return models.gridworld(step_reward=step_reward, slip=slip, discount=discount)

    def same(a, b):
        return all(
            np.array_equal(getattr(a.solution, f), getattr(b.solution, f))
            for f in jaxmdp.Solution._fields
        )

    out = {}
    solver = jaxmdp.ValueIteration(tol=1e-3)
    axes = dict(step_reward=np.linspace(-2, 0, 400), discount=np.array([0.9, 0.99, 1.0]))
    one = jaxmdp.sweep(lecture, solver, devices=1, **axes)
    four = jaxmdp.sweep(lecture, solver, **axes)  # default: all devices
    four_chunked = jaxmdp.sweep(lecture, solver, devices=4, chunk_size=1024, **axes)
    out["shared"] = [same(one, four), same(one, four_chunked), one.ok.all().item()]
    out["devices"] = [one.num_devices, four.num_devices, four_chunked.num_chunks]

    axes = dict(axes, step_reward=axes["step_reward"][::4], slip=np.array([0.1, 0.3]))
    one = jaxmdp.sweep(lecture, solver, devices=1, **axes)
    four = jaxmdp.sweep(lecture, solver, devices=jax.devices(), **axes)
    out["batched"] = [same(one, four), one.depends["transitions"] == ("slip",)]

    mpi = jaxmdp.ModifiedPolicyIteration(tol=1e-3, eval_sweeps=5)
    small = dict(step_reward=np.linspace(-2, 0, 30), discount=np.array([0.9, 1.0]))
    out["mpi"] = same(
        jaxmdp.sweep(lecture, mpi, devices=1, **small), jaxmdp.sweep(lecture, mpi, **small)
    )

    compiled = jaxmdp.lower_sweep(lecture, solver, **small).compile()
    out["sharding"] = list(compiled.input_shardings[0][0][0].spec)
    print(json.dumps(out))
    """
)


def test_four_devices_give_identical_results():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shared"] == [True, True, True], out
    # 1,200 members in tiles of 256: one chunk on 4 devices, or 2 chunks of 4 tiles
    assert out["devices"] == [1, 4, 2], out
    assert out["batched"] == [True, True], out
    assert out["mpi"] is True, out
    assert out["sharding"] == ["batch"], out


SOLVE_SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import jax, jax.numpy as jnp, numpy as np
    import jaxmdp

    rng = np.random.default_rng(0)
    S, A, B = 5, 3, 12
    P = rng.dirichlet(np.ones(S), size=(S, A)).astype(np.float32)
    Pb = rng.dirichlet(np.ones(S), size=(B, S, A)).astype(np.float32)
    R = rng.uniform(size=(B, S, A)).astype(np.float32)
    g = np.linspace(0.5, 0.99, B).astype(np.float32)
    same = []
    for transitions in (P, Pb):
        mdp = jaxmdp.MDP(jnp.asarray(transitions), jnp.asarray(R), jnp.asarray(g))
        for solver in (jaxmdp.ValueIteration(1e-4), jaxmdp.ModifiedPolicyIteration(1e-4, 3)):
            one = jaxmdp.solve(mdp, solver)
            many = jaxmdp.solve(mdp, solver, devices=jax.devices())
            same.append(
                len(many.values.sharding.device_set) == 2
                and all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(one, many))
            )
    # The sparse form through the same sharded strategies (different programs from one
    # device's: equal within rounding, statuses and iteration counts exactly). Policy
    # iteration (LAPACK) keeps one CPU device per process (plan.concurrent_devices), with
    # a warning since the devices were listed.
    close = []
    for transitions in (jaxmdp.to_sparse(P), jaxmdp.to_sparse(Pb)):
        mdp = jaxmdp.MDP(transitions, jnp.asarray(R), jnp.asarray(g))
        for solver in (jaxmdp.ValueIteration(1e-4), jaxmdp.PolicyIteration()):
            pi = isinstance(solver, jaxmdp.PolicyIteration)
            one = jaxmdp.solve(mdp, solver)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                many = jaxmdp.solve(mdp, solver, devices=jax.devices())
            close.append(
                len(many.values.sharding.device_set) == (1 if pi else 2)
                and len(caught) == pi
                and np.array_equal(np.asarray(one.status), np.asarray(many.status))
                and np.allclose(np.asarray(one.values), np.asarray(many.values), atol=1e-5)
            )
    print(json.dumps(same + close))
    """
)


def test_solve_devices_shards_and_matches_one_device():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", SOLVE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [True] * 8


# Watchdog (issue 13): policy iteration over host devices once hung forever (DECISIONS.md 17:
# both pool threads blocked in jaxlib's batched LU waiting for chunks queued on the same
# pool). The child sees only 2 CPUs (XLA sizes its thread pool from the affinity mask), so
# 2 host devices exhaust the pool on any machine; with the plan's guard it finishes in
# seconds, without it the same script hangs at its first solve (checked by hand: killed at
# 40 s, every time). The timeout turns a hang into a failure.
WATCHDOG = textwrap.dedent(
    """
    import os
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:2]))
    import json, warnings
    import jax, numpy as np
    import jaxmdp
    from jaxmdp import models

    warnings.simplefilter("ignore", RuntimeWarning)  # "one CPU device per process"
    rng = np.random.default_rng(0)
    S, B = 64, 64
    P = rng.dirichlet(np.ones(S), size=(B, S, 3)).astype(np.float32)
    R = rng.standard_normal((B, S, 3)).astype(np.float32)
    mdp = jaxmdp.MDP(P, R, np.linspace(0.5, 0.95, B).astype(np.float32))
    done = []
    for call in range(3):
        sol = jaxmdp.solve(mdp, jaxmdp.PolicyIteration(), devices=jax.devices())
        done.append(int(jax.block_until_ready(sol.status).max()))

    def slipping(step_reward, slip):
        return models.gridworld(step_reward=step_reward, slip=slip, discount=0.95)

    for call in range(2):
        r = jaxmdp.sweep(slipping, jaxmdp.PolicyIteration(),
                         step_reward=np.linspace(-2, 0, 256), slip=np.array([0.1, 0.3]))
        done.append(r.num_devices)
    print(json.dumps(done))
    """
)


def test_policy_iteration_over_host_devices_never_hangs():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-c", WATCHDOG], env=env, capture_output=True, text=True, timeout=150
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(
            "policy iteration over 2 host devices hung (watchdog: 150 s)"
        ) from None
    assert proc.returncode == 0, proc.stderr[-3000:]
    # statuses 0 (solved) three times; the sweeps ran on one device of the two
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [0, 0, 0, 1, 1]
