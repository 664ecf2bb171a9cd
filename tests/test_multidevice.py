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
    solver = jaxmdp.ValueIteration()  # tol=None: every member SUCCESS (certified bound)
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
    import json
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
    print(json.dumps(same))
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
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [True] * 4
