"""`jaxmdp.sweep` and `jaxmdp.solve` across devices: CPU devices in a subprocess, each result
equal to one device's within rounding.

XLA only creates the extra host devices at start-up
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`), so the runs happen in a fresh process,
which saves every `Solution` to an `.npz`; the comparison happens here (`_compare.py`: the
sharded programs are other programs than the single-device one, even where each device runs
the same tile program). One process of 4 host devices runs the three parts below (the
watchdog's first): each part was its own process (Python, JAX and 2 or 4 devices started
three times: 17.2 CPU-s for the file); isolation is not what they test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import multiprocess
import numpy as np
import pytest
from _compare import assert_same_within_rounding

import jaxmdp

# Watchdog (issue 13, DECISIONS.md 18 and 22): policy iteration over host devices once hung
# forever: both threads of XLA:CPU's pool blocked in jaxlib's batched LU, waiting for chunks
# queued on that same pool. The process sees only 2 CPUs (XLA sizes its pool from the affinity
# mask, set before JAX starts), so its 4 host devices exhaust the pool on any machine. With
# `jaxmdp._linalg`'s unbatched calls these solves finished (3 of 3 runs, ~10 s on a loaded
# 2-core machine, then over 2 host devices); with the batched kernels patched back in, the
# first solve hung (2 of 2 runs over 2 devices, killed at 60 s; 1 of 1 run of this script's
# 4 devices, killed at 90 s). The timeout turns a hang into a failure. It runs first, as it
# did in a process of its own.
WATCHDOG = """
def watchdog():
    rng = np.random.default_rng(0)
    S, B = 64, 64
    P = rng.dirichlet(np.ones(S), size=(B, S, 3)).astype(np.float32)
    R = rng.standard_normal((B, S, 3)).astype(np.float32)
    mdp = jaxmdp.MDP(P, R, np.linspace(0.5, 0.95, B).astype(np.float32))
    done = []
    for call in range(2):  # DECISIONS.md 8: once hung on the second call
        sol = jaxmdp.solve(mdp, jaxmdp.PolicyIteration(), devices=jax.devices())
        done.append(int(jax.block_until_ready(sol.status).max()))
        done.append(len(sol.values.sharding.device_set))

    def slipping(step_reward, slip):
        return models.gridworld(step_reward=step_reward, slip=slip, discount=0.95)

    r = jaxmdp.sweep(slipping, jaxmdp.PolicyIteration(),
                     step_reward=np.linspace(-2, 0, 256), slip=np.array([0.1, 0.3]))
    done.append(r.num_devices)
    return done
"""

SWEEP = """
def lecture(step_reward, discount, slip=0.2):
    return models.gridworld(step_reward=step_reward, slip=slip, discount=discount)


def sweeps():
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

    # the batched sweep's program again (default devices: all): a compilation cache hit
    compiled = jaxmdp.lower_sweep(lecture, solver, **axes).compile()
    out["sharding"] = list(compiled.input_shardings[0][0][0].spec)
    return out
"""

SOLVES = """
def solves():
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
            sharded.append(len(many.values.sharding.device_set))
            for name, sol in (("one", one), ("many", many)):
                np.savez(f"{out_dir}/{name}{k}{j}.npz", discount=g, **sol._asdict())
    # The sparse form through the same sharded strategies. Policy iteration (its Krylov
    # evaluation: ~5 CPU-s of compiling per program) for per-member transitions only.
    for k, transitions in enumerate((jaxmdp.to_sparse(P), jaxmdp.to_sparse(Pb))):
        mdp = jaxmdp.MDP(transitions, jnp.asarray(R), jnp.asarray(g))
        solvers = (jaxmdp.ValueIteration(1e-4), jaxmdp.PolicyIteration())
        for j, solver in enumerate(solvers[: 1 + k]):
            one = jaxmdp.solve(mdp, solver)
            many = jaxmdp.solve(mdp, solver, devices=jax.devices())
            sharded.append(len(many.values.sharding.device_set))
            for name, sol in (("one", one), ("many", many)):
                np.savez(f"{out_dir}/sparse_{name}{k}{j}.npz", discount=g, **sol._asdict())
    return sharded
"""

SCRIPT = (
    """
import os
if hasattr(os, "sched_setaffinity"):  # before JAX starts: the watchdog's 2-thread pool
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:2]))
import json, sys
import jax, jax.numpy as jnp, numpy as np
import jaxmdp
from jaxmdp import models

assert len(jax.devices()) == 4, jax.devices()
out_dir = sys.argv[1]
"""
    + WATCHDOG
    + SWEEP
    + SOLVES
    + """
out = {"watchdog": watchdog(), "sweeps": sweeps(), "solves": solves()}
print(json.dumps(out))
"""
)


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """(what the script printed, the folder of its `.npz` files)."""
    out_dir = tmp_path_factory.mktemp("multidevice")
    env = {
        **os.environ,
        "XLA_FLAGS": multiprocess.xla_flags(4),
        "JAX_PLATFORMS": "cpu",
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(out_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as e:
        err = e.stderr or b""
        err = err.decode(errors="replace") if isinstance(err, bytes) else err
        raise AssertionError(f"hung past the watchdog (300 s):\n{err[-3000:]}") from None
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), out_dir


def _load(out_dir, name):
    with np.load(out_dir / f"{name}.npz") as z:
        sol = jaxmdp.Solution(*(z[f] for f in jaxmdp.Solution._fields))
        return sol, z["discount"]


def _assert_same(out_dir, a, b, backups_per_iter=1, path_may_differ=False):
    (x, g), (y, _) = _load(out_dir, a), _load(out_dir, b)
    assert_same_within_rounding(
        x,
        y,
        g,
        backups_per_iter=backups_per_iter,
        path_may_differ=path_may_differ,
        err_msg=f"{a} vs {b}",
    )


@pytest.mark.cpu_plan  # the CPU's chunks and default devices
@pytest.mark.programs
def test_four_devices_give_the_same_results(four_devices):
    printed, out_dir = four_devices
    out = printed["sweeps"]
    assert out["ok"] is True, out
    # 1,200 members in tiles of 256: one chunk on 4 devices, or 2 chunks of 4 tiles
    assert out["devices"] == [1, 4, 2], out
    assert out["depends"] == ["slip"], out
    assert out["sharding"] == ["batch"], out
    # One device runs the host-sliced `shared_tiles` tiles, four devices one sharded program
    # of `shared_vi` tiles: float32 members at the tolerance stop a sweep apart (21 vs 22).
    _assert_same(out_dir, "one", "four", path_may_differ=True)
    _assert_same(out_dir, "one", "four_chunked", path_may_differ=True)
    _assert_same(out_dir, "batched_one", "batched_four")
    _assert_same(out_dir, "mpi_one", "mpi_four", backups_per_iter=5 + 1)  # eval_sweeps=5


@pytest.mark.programs
def test_solve_devices_shards_and_matches_one_device(four_devices):
    printed, out_dir = four_devices
    assert printed["solves"] == [4] * 7  # every `devices=` solve came back over 4 devices
    for case in ("00", "01", "10", "11"):
        # float32 at tol 1e-4: members may sit at the precision floor (`_compare.py`)
        (x, g), (y, _) = _load(out_dir, f"one{case}"), _load(out_dir, f"many{case}")
        per = 3 + 1 if case[1] == "1" else 1  # modified PI: eval_sweeps=3
        assert_same_within_rounding(x, y, g, at_floor=True, backups_per_iter=per, err_msg=case)
        # sparse: value iteration (at the floor) and policy iteration, whose Krylov
        # evaluation and policy ties may take another path in another program
        if case == "01":
            continue  # no sparse policy iteration with shared transitions (the script)
        (x, g), (y, _) = _load(out_dir, f"sparse_one{case}"), _load(out_dir, f"sparse_many{case}")
        pi = case[1] == "1"
        assert_same_within_rounding(
            x, y, g, at_floor=not pi, path_may_differ=pi, err_msg=f"sparse {case}"
        )


def test_policy_iteration_over_host_devices_never_hangs(four_devices):
    # status 0 (solved) on all 4 devices, twice; the sweep ran on all 4 devices
    assert four_devices[0]["watchdog"] == [0, 4] * 2 + [4]
