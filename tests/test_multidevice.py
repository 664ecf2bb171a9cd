"""`jaxmdp.sweep` and `jaxmdp.solve` across devices: CPU devices in a subprocess, each result
equal to one device's within rounding.

XLA only creates the extra host devices at start-up
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`), so the runs happen in a fresh process,
which saves every `Solution` to an `.npz`; the comparison happens here (`_compare.py`: the
sharded programs are other programs than the single-device one, even where each device runs
the same tile program).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _compare import assert_same_within_rounding

import jaxmdp

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    import numpy as np
    import jaxmdp
    from jaxmdp import models

    assert len(jax.devices()) == 4, jax.devices()
    out_dir = sys.argv[1]

    def lecture(step_reward, discount, slip=0.2):
        return models.gridworld(step_reward=step_reward, slip=slip, discount=discount)

    def save(name, result):
        g = result.axes["discount"].reshape((1, -1) + (1,) * (len(result.shape) - 2))
        g = np.broadcast_to(g, result.shape)  # discount is the second axis here
        np.savez(f"{out_dir}/{name}.npz", discount=g, **result.solution._asdict())

    out = {}
    solver = jaxmdp.ValueIteration()  # tol=None: every member SUCCESS (certified bound)
    axes = dict(step_reward=np.linspace(-2, 0, 400), discount=np.array([0.9, 0.99, 1.0]))
    one = jaxmdp.sweep(lecture, solver, devices=1, **axes)
    four = jaxmdp.sweep(lecture, solver, **axes)  # default: all devices
    four_chunked = jaxmdp.sweep(lecture, solver, devices=4, chunk_size=1024, **axes)
    for name, r in (("one", one), ("four", four), ("four_chunked", four_chunked)):
        save(name, r)
    out["ok"] = one.ok.all().item()
    out["devices"] = [one.num_devices, four.num_devices, four_chunked.num_chunks]

    axes = dict(axes, step_reward=axes["step_reward"][::4], slip=np.array([0.1, 0.3]))
    save("batched_one", jaxmdp.sweep(lecture, solver, devices=1, **axes))
    batched = jaxmdp.sweep(lecture, solver, devices=jax.devices(), **axes)
    save("batched_four", batched)
    out["depends"] = list(batched.depends["transitions"])

    mpi = jaxmdp.ModifiedPolicyIteration(tol=1e-3, eval_sweeps=5)
    small = dict(step_reward=np.linspace(-2, 0, 30), discount=np.array([0.9, 1.0]))
    save("mpi_one", jaxmdp.sweep(lecture, mpi, devices=1, **small))
    save("mpi_four", jaxmdp.sweep(lecture, mpi, **small))

    compiled = jaxmdp.lower_sweep(lecture, solver, **small).compile()
    out["sharding"] = list(compiled.input_shardings[0][0][0].spec)
    print(json.dumps(out))
    """
)


def _run(script, devices, tmp_path):
    env = {
        **os.environ,
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
        f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load(tmp_path, name):
    with np.load(tmp_path / f"{name}.npz") as z:
        sol = jaxmdp.Solution(*(z[f] for f in jaxmdp.Solution._fields))
        return sol, z["discount"]


def _assert_same(tmp_path, a, b, backups_per_iter=1):
    (x, g), (y, _) = _load(tmp_path, a), _load(tmp_path, b)
    assert_same_within_rounding(x, y, g, backups_per_iter=backups_per_iter, err_msg=f"{a} vs {b}")


@pytest.mark.programs
def test_four_devices_give_the_same_results(tmp_path):
    out = _run(SCRIPT, 4, tmp_path)
    assert out["ok"] is True, out
    # 1,200 members in tiles of 256: one chunk on 4 devices, or 2 chunks of 4 tiles
    assert out["devices"] == [1, 4, 2], out
    assert out["depends"] == ["slip"], out
    assert out["sharding"] == ["batch"], out
    _assert_same(tmp_path, "one", "four")
    _assert_same(tmp_path, "one", "four_chunked")
    _assert_same(tmp_path, "batched_one", "batched_four")
    _assert_same(tmp_path, "mpi_one", "mpi_four", backups_per_iter=5 + 1)  # eval_sweeps=5


SOLVE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    import jaxmdp

    rng = np.random.default_rng(0)
    S, A, B = 5, 3, 12
    P = rng.dirichlet(np.ones(S), size=(S, A)).astype(np.float32)
    Pb = rng.dirichlet(np.ones(S), size=(B, S, A)).astype(np.float32)
    R = rng.uniform(size=(B, S, A)).astype(np.float32)
    g = np.linspace(0.5, 0.99, B).astype(np.float32)
    sharded = []
    for k, transitions in enumerate((P, Pb)):
        mdp = jaxmdp.MDP(jnp.asarray(transitions), jnp.asarray(R), jnp.asarray(g))
        for j, solver in enumerate(
            (jaxmdp.ValueIteration(1e-4), jaxmdp.ModifiedPolicyIteration(1e-4, 3))
        ):
            one = jaxmdp.solve(mdp, solver)
            many = jaxmdp.solve(mdp, solver, devices=jax.devices())
            sharded.append(len(many.values.sharding.device_set) == 2)
            for name, sol in (("one", one), ("many", many)):
                np.savez(f"{sys.argv[1]}/{name}{k}{j}.npz", discount=g, **sol._asdict())
    # The sparse form through the same sharded strategies.
    for k, transitions in enumerate((jaxmdp.to_sparse(P), jaxmdp.to_sparse(Pb))):
        mdp = jaxmdp.MDP(transitions, jnp.asarray(R), jnp.asarray(g))
        for j, solver in enumerate((jaxmdp.ValueIteration(1e-4), jaxmdp.PolicyIteration())):
            one = jaxmdp.solve(mdp, solver)
            many = jaxmdp.solve(mdp, solver, devices=jax.devices())
            sharded.append(len(many.values.sharding.device_set) == 2)
            for name, sol in (("one", one), ("many", many)):
                np.savez(f"{sys.argv[1]}/sparse_{name}{k}{j}.npz", discount=g, **sol._asdict())
    print(json.dumps(sharded))
    """
)


@pytest.mark.programs
def test_solve_devices_shards_and_matches_one_device(tmp_path):
    assert _run(SOLVE_SCRIPT, 2, tmp_path) == [True] * 8
    for case in ("00", "01", "10", "11"):
        # float32 at tol 1e-4: members may sit at the precision floor (`_compare.py`)
        (x, g), (y, _) = _load(tmp_path, f"one{case}"), _load(tmp_path, f"many{case}")
        per = 3 + 1 if case[1] == "1" else 1  # modified PI: eval_sweeps=3
        assert_same_within_rounding(x, y, g, at_floor=True, backups_per_iter=per, err_msg=case)
        # sparse: value iteration (at the floor) and policy iteration, whose Krylov
        # evaluation and policy ties may take another path in another program
        (x, g), (y, _) = _load(tmp_path, f"sparse_one{case}"), _load(tmp_path, f"sparse_many{case}")
        pi = case[1] == "1"
        assert_same_within_rounding(
            x, y, g, at_floor=not pi, path_may_differ=pi, err_msg=f"sparse {case}"
        )
