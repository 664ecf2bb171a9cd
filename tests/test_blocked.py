"""One MDP whose states are split in blocks over devices ("blocked"), and the plan's device
choices.

The plan itself is a pure function (tested here directly). The programs need several XLA
host devices, which exist only if XLA is told at start-up
(`XLA_FLAGS=--xla_force_host_platform_device_count=4`), so they run in one subprocess
(with a timeout): value iteration (dense and sparse) and modified policy iteration over 4
devices against one device, what the compiled program exchanges, and the default devices
of a GPU plan (forced on CPU: `plan.force("gpu")`). Two processes: `test_distributed.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import multiprocess
import numpy as np
import pytest

import jaxmdp
from jaxmdp._exec import plan

S, A = 48, 3


@pytest.fixture(scope="module")
def facts():
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(S), size=(S, A)).astype(np.float32)
    mdp = jaxmdp.MDP(P, rng.standard_normal((S, A)).astype(np.float32), np.float32(0.9))
    single = plan.gather_facts(mdp, np.zeros(S, np.float32), jaxmdp.ValueIteration())
    batch = jaxmdp.MDP(P, np.zeros((8, S, A), np.float32), np.full(8, 0.9, np.float32))
    many = plan.gather_facts(batch, np.zeros(S, np.float32), jaxmdp.ValueIteration())
    return single, many


def test_plan_blocks_one_mdp_over_the_devices_given(facts):
    single, _ = facts
    assert plan.make_plan(single).strategy == "vmap"  # no devices given: one device
    p = plan.make_plan(single._replace(num_devices=4))
    assert (p.strategy, p.shards) == ("blocked", 4)
    # blocks are equal: the most devices that divide S (50 = 2 x 25), none for a prime S
    assert plan.make_plan(single._replace(num_devices=4, num_states=50)).shards == 2
    assert plan.make_plan(single._replace(num_devices=4, num_states=47)).strategy == "vmap"
    # only solvers whose loop partitions into backups and reductions; never inside a trace
    for other in (jaxmdp.PolicyIteration, jaxmdp.GaussSeidelValueIteration):
        assert plan.make_plan(single._replace(num_devices=4, solver=other)).strategy == "vmap"
    mpi = single._replace(num_devices=4, solver=jaxmdp.ModifiedPolicyIteration)
    assert plan.make_plan(mpi).strategy == "blocked"
    assert plan.make_plan(single._replace(num_devices=4, traced=True)).strategy == "vmap"


def test_plan_uses_several_accelerators_by_default_cpu_devices_opt_in(facts):
    single, many = facts
    gpu = dict(backend="gpu", local_devices=4)
    p = plan.make_plan(many._replace(**gpu))
    assert (p.strategy, p.shards, p.inner.strategy) == ("sharded", 4, "shared_vi")
    assert plan.make_plan(many._replace(backend="cpu", local_devices=4)).strategy == "shared_vi"
    assert plan.make_plan(many._replace(**gpu, traced=True)).strategy == "shared_vi"
    # a single MDP: one accelerator while it fits, all of them once it does not
    assert plan.make_plan(single._replace(**gpu)).strategy == "vmap"
    p = plan.make_plan(single._replace(**gpu, fits_device=False))
    assert (p.strategy, p.shards) == ("blocked", 4)
    tpu = single._replace(backend="tpu", local_devices=2, fits_device=False)
    assert plan.make_plan(tpu).shards == 2


SCRIPT = textwrap.dedent(
    """
    import json, re
    import jax, numpy as np
    import jaxmdp
    from jaxmdp import _memory
    from jaxmdp._exec import blocked, plan, sharding
    from jaxmdp._solvers.base import SolveContext

    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(5)
    S, A = 48, 3
    P = rng.dirichlet(np.ones(S), size=(S, A)).astype(np.float32)
    R = rng.standard_normal((S, A)).astype(np.float32)
    dense = jaxmdp.MDP(P, R, np.float32(0.97))
    nxt = rng.integers(0, S, size=(S, A, 4)).astype(np.int32)
    p4 = rng.dirichlet(np.ones(4), size=(S, A)).astype(np.float32)
    sparse = jaxmdp.MDP(jaxmdp.SparseTransitions(nxt, p4), R, np.float32(0.97))

    def fields(sol):
        return {f: np.asarray(getattr(sol, f)).tolist() for f in jaxmdp.Solution._fields}

    out = {}
    cases = {
        "vi-dense": (dense, jaxmdp.ValueIteration()),
        "vi-sparse": (sparse, jaxmdp.ValueIteration()),
        "mpi-dense": (dense, jaxmdp.ModifiedPolicyIteration(eval_sweeps=5)),
        "vi-sparse-x": (sparse, jaxmdp.ValueIteration(tol=1e-2, rule="sup")),
    }
    for name, (mdp, solver) in cases.items():
        one = jaxmdp.solve(mdp, solver)
        four = jaxmdp.solve(mdp, solver, devices=jax.devices())
        again = jaxmdp.solve(mdp, solver, devices=jax.devices())
        out[name] = {
            "one": fields(one), "four": fields(four),
            "again": all(np.array_equal(a, b) for a, b in zip(four, again)),
            "devices": [len(x.sharding.device_set) for x in four],
        }

    # What the partitioned loop exchanges: all-gathers of [S] values (and, once at the end,
    # of the outputs [S], [S, A]), all-reduces of scalars; never the transitions.
    ctx = SolveContext(undiscounted=False, zero_start=True, single=True)
    text = blocked.lower(dense, None, jaxmdp.ValueIteration(), devices=jax.devices(),
                         max_iters=100, ctx=ctx).compile().as_text()
    ops = re.findall(r"= (\\S+) (all-gather|all-reduce|all-to-all|collective-permute|"
                     r"reduce-scatter)\\(", text)
    out["collectives"] = sorted(set(ops))
    out["compiles"] = blocked._runner.cache_info().misses

    # GPU plan forced on CPU: a batch goes over every local device without being asked,
    # policy iteration (LAPACK) too; CPU's own plan stays on one.
    batch = jaxmdp.MDP(P, rng.standard_normal((8, S, A)).astype(np.float32),
                       np.linspace(0.5, 0.95, 8).astype(np.float32))
    with plan.force("gpu"):
        vi = jaxmdp.solve(batch)
        pi = jaxmdp.solve(batch, jaxmdp.PolicyIteration())
        vi2 = jaxmdp.solve(batch)
        fits = jaxmdp.solve(dense)
        # a single MDP that does not fit one device's budget is split by default
        _memory.device_budget = lambda device=None: _memory.Budget(10_000, "test")
        big = jaxmdp.solve(dense)
    cpu = jaxmdp.solve(batch)
    out["default"] = {
        "vi": len(vi.values.sharding.device_set), "pi": len(pi.values.sharding.device_set),
        "cpu": len(cpu.values.sharding.device_set), "fits": fits.values.sharding.device_set
        == {jax.devices()[0]} and blocked._runner.cache_info().misses == out["compiles"],
        "big": fields(big), "sharded_hits": sharding._runner.cache_info().hits,
        "vi_vs_cpu": float(np.abs(np.asarray(vi.values) - np.asarray(cpu.values)).max()),
        "max_abs": float(np.abs(np.asarray(cpu.values)).max()),
    }
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def four_devices():
    env = {
        **os.environ,
        "XLA_FLAGS": multiprocess.xla_flags(4),
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _allowance(values, discount=0.97):
    from solvers_list import rounding_allowance

    return rounding_allowance(np.float32, S, np.abs(values).max(), discount)


@pytest.mark.parametrize("case", ["vi-dense", "vi-sparse", "mpi-dense", "vi-sparse-x"])
def test_blocked_solve_over_four_devices_matches_one_device(four_devices, case):
    got = four_devices[case]
    one, four = got["one"], got["four"]
    assert got["again"]  # the same program on the same input: identical
    assert got["devices"] == [1] * 7  # results come back on one device
    for field in ("status", "num_iters", "policy"):
        assert four[field] == one[field], field
    assert one["status"] == 0
    allowance = _allowance(np.asarray(one["values"]))
    assert np.abs(np.subtract(four["values"], one["values"])).max() <= allowance
    assert np.abs(np.subtract(four["q_values"], one["q_values"])).max() <= allowance


def test_blocked_program_exchanges_values_and_scalars_only(four_devices):
    # (result shape, op): V [S] gathered per sweep and the outputs once; scalar reductions
    shapes = {shape for shape, _ in four_devices["collectives"]}
    ops = {op for _, op in four_devices["collectives"]}
    assert ops == {"all-gather", "all-reduce"}, four_devices["collectives"]
    gathered = {s for s, op in four_devices["collectives"] if op == "all-gather"}
    assert gathered <= {f"f32[{S}]{{0}}", f"f32[{S},{A}]{{1,0}}", f"s32[{S}]{{0}}"}, gathered
    reduced = {s for s, op in four_devices["collectives"] if op == "all-reduce"}
    assert all("[]" in s for s in reduced), reduced  # scalars (or tuples of scalars)
    assert not any(f"[{S},{A},{S}]" in s for s in shapes)  # the transitions never move


@pytest.mark.cpu_plan  # the subprocess's CPU default devices
def test_gpu_plan_uses_every_device_without_being_asked(four_devices):
    d = four_devices["default"]
    assert d["vi"] == 4 and d["pi"] == 4 and d["cpu"] == 1
    assert d["fits"]  # a single MDP that fits stays on one device
    assert d["sharded_hits"] >= 1  # the second sharded call reused the compiled program
    one = four_devices["vi-dense"]["one"]
    big = d["big"]  # split automatically, same answer as one device within rounding
    assert big["num_iters"] == one["num_iters"] and big["policy"] == one["policy"]
    assert np.abs(np.subtract(big["values"], one["values"])).max() <= _allowance(one["values"])
    # the shared-P batch: two strategies, two programs, equal within rounding
    assert d["vi_vs_cpu"] <= _allowance(np.array([d["max_abs"]]), 0.95)
