"""The execution plan: every plan a GPU or TPU would choose runs here, on the CPU.

`JAXMDP_PLAN_BACKEND=gpu` (or `tpu`) makes `solve` and `sweep` plan as on that backend while
the programs still run on the CPU (issue 15: no code path is first executed on an
accelerator). On a GPU/TPU a batch with its own transitions runs as one vmapped program
(no CPU cache tiles, no host threads) and a sweep uses wide tiles; here those programs are
compared with the CPU plan's. They are different compiled programs, so results agree
within rounding; iterations, statuses and policies agree exactly in float64 at these
tolerances (no member sits near a tie or the precision floor).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_mdp_arrays
from solvers_list import ALL_SOLVERS, rounding_allowance, solver_id

import jaxmdp
from jaxmdp import models

ACCELERATORS = ["gpu", "tpu"]
# A solve's plan tells the accelerators apart from the CPU only (`make_plan`; a sweep's
# tile width differs per backend): the TPU plan of a solve is the GPU's program (checked in
# `test_accelerator_plans_match_the_cpu_plan[own-ValueIteration-span]`), so the solve tests
# run "gpu".
S, A = 16, 4  # float64: 8 KiB of transitions per member, CPU tiles of 128 (Anderson 32)
B = 256


def _relaxed(solver):
    """The solver at a tolerance float64 certifies quickly (fewer sweeps to compile-run)."""
    return dataclasses.replace(solver, tol=1e-8) if hasattr(solver, "tol") else solver


@pytest.fixture(scope="module")
def problems():
    rng = np.random.default_rng(15)
    with jax.enable_x64(True):
        P, R = random_mdp_arrays(rng, S, A, batch=(B,), sparsity=0.5)
        g = rng.uniform(0.5, 0.95, size=B)
        own = jaxmdp.make_mdp(P, R, g)
        shared = jaxmdp.make_mdp(P[0], R, g)
        # Sparse, own P: K = the most successors of any row (about 12 of 16 here), so a
        # member's lists take ~9 KiB and the CPU plan tiles the batch too.
        sparse_own = jaxmdp.make_mdp(jaxmdp.to_sparse(P), R, g)
    return {"own": own, "shared": shared, "sparse_own": sparse_own}


def _solve(mdp, solver, backend, monkeypatch, **kw):
    monkeypatch.setenv("JAXMDP_PLAN_BACKEND", backend)
    with jax.enable_x64(True):
        return jax.block_until_ready(jaxmdp.solve(mdp, solver, **kw))


def _jaxpr(mdp, solver, backend, monkeypatch) -> str:
    """The program the plan builds, as text."""
    monkeypatch.setenv("JAXMDP_PLAN_BACKEND", backend)
    with jax.enable_x64(True):
        return str(jax.make_jaxpr(lambda m: jaxmdp.solve(m, solver))(mdp))


def _scans(mdp, solver, backend, monkeypatch) -> int:
    """`scan` loops in the program the plan builds (CPU tiles are a `lax.map`)."""
    return _jaxpr(mdp, solver, backend, monkeypatch).count("scan[")


def _same_within_rounding(a, b, g_max):
    for name in ("policy", "status", "num_iters"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    v_max = float(np.abs(np.asarray(b.values)).max())
    allow = rounding_allowance(np.float64, S, v_max, g_max)
    for name in ("values", "q_values", "error_bound"):
        np.testing.assert_allclose(
            np.asarray(getattr(a, name)),
            np.asarray(getattr(b, name)),
            rtol=0,
            atol=allow,
            err_msg=name,
        )


# Per-member transitions: every solver class (each has its own step inside the tiles and
# inside the vmapped loop; value iteration's sup rule runs the span rule's code with another
# stopping statistic, in the same plans). Shared transitions: the accelerators' plan differs
# from the CPU's only for value iteration (shared tiles; `make_plan`); every other solver
# vmaps one loop over the batch on every backend, so its accelerator plan is the CPU's
# program (it compiled once for all three backends here), run by the CPU tests of shared
# transitions.
ONE_PER_CLASS = [s for s in ALL_SOLVERS if getattr(s, "rule", "span") == "span"]
PLAN_CASES = [(s, "own") for s in ONE_PER_CLASS] + [(ALL_SOLVERS[0], "shared")]


@pytest.mark.parametrize(
    ("solver", "kind"), PLAN_CASES, ids=[f"{k}-{solver_id(s)}" for s, k in PLAN_CASES]
)
def test_accelerator_plans_match_the_cpu_plan(solver, kind, problems, monkeypatch):
    mdp = problems[kind]
    solver = _relaxed(solver)
    cpu = _solve(mdp, solver, "cpu", monkeypatch)
    assert np.all(np.asarray(cpu.status) == jaxmdp.Status.SUCCESS)
    g_max = float(np.max(np.asarray(mdp.discount)))
    _same_within_rounding(_solve(mdp, solver, "gpu", monkeypatch), cpu, g_max)
    # The plans really differ: CPU tiles (a lax.map) vs one vmapped loop. Checked on one
    # solver (two more traces of each program): tiling is decided before any solver's step
    # is built (`make_plan`; only the tile size depends on the solver).
    if kind == "own" and solver_id(solver) == solver_id(ALL_SOLVERS[0]):
        gpu = _jaxpr(mdp, solver, "gpu", monkeypatch)
        assert _scans(mdp, solver, "cpu", monkeypatch) > gpu.count("scan[")
        assert _jaxpr(mdp, solver, "tpu", monkeypatch) == gpu  # one program for both


# Sparse transitions per member: the CPU plan's two strategies, tiles on host threads (value
# iteration, Anderson with its smaller tiles) and tiles in one program (one host thread; the
# strategy of policy iteration, whose LAPACK calls stay off the threads: each solver's
# step inside the tiles is the dense cells' above, and policy iteration's sparse member loop,
# vmapped as on an accelerator, is compared with the dense form in test_sparse_solvers.py).
SPARSE_CASES = [
    (jaxmdp.ValueIteration(tol=1e-8), None),
    (jaxmdp.ValueIteration(tol=1e-8), "1"),
    (jaxmdp.AndersonValueIteration(), None),
]


@pytest.mark.parametrize(
    ("solver", "threads"),
    SPARSE_CASES,
    ids=[f"{solver_id(s)}-{'one-thread' if t else 'threads'}" for s, t in SPARSE_CASES],
)
def test_accelerator_plans_on_sparse_members(solver, threads, problems, monkeypatch):
    """Sparse transitions per member: CPU tiles vs the accelerators' vmapped loop."""
    mdp = problems["sparse_own"]
    solver = _relaxed(solver)
    if threads:
        monkeypatch.setenv("JAXMDP_CPU_THREADS", threads)
    cpu = _solve(mdp, solver, "cpu", monkeypatch)
    forced = _solve(mdp, solver, "gpu", monkeypatch)
    _same_within_rounding(forced, cpu, float(np.max(np.asarray(mdp.discount))))
    if threads:  # as above: one case shows the tiling
        assert _scans(mdp, solver, "cpu", monkeypatch) > _scans(mdp, solver, "gpu", monkeypatch)


@pytest.mark.parametrize("backend", ACCELERATORS)
def test_accelerator_plan_with_the_compaction_ladder(backend, problems, monkeypatch):
    """`compact=True` on an accelerator's plan: the ladder instead of CPU tiles."""
    mdp = problems["own"]
    solver = jaxmdp.ModifiedPolicyIteration(tol=1e-8, eval_sweeps=3)
    cpu = _solve(mdp, solver, "cpu", monkeypatch)
    forced = _solve(mdp, solver, backend, monkeypatch, compact=True)
    _same_within_rounding(forced, cpu, float(np.max(np.asarray(mdp.discount))))


def test_accelerator_sweep_tiles_match_the_cpu_plan(monkeypatch):
    """A sweep of 300 members: CPU tiles of 256 (two, padded) vs one accelerator tile."""

    def build(step_reward, discount):
        return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)

    axes = dict(step_reward=np.linspace(-1, 0, 30), discount=np.linspace(0.8, 0.98, 10))
    solver = jaxmdp.ValueIteration(tol=1e-8)
    out = {}
    for backend in ("cpu", "gpu"):
        monkeypatch.setenv("JAXMDP_PLAN_BACKEND", backend)
        with jax.enable_x64(True):
            out[backend] = jaxmdp.sweep(build, solver, **axes)
    assert out["cpu"].tile_size == 256 and out["gpu"].tile_size == 300
    _same_within_rounding(out["gpu"].solution, out["cpu"].solution, 0.98)


def test_bad_plan_backend_setting_names_the_variable(monkeypatch):
    mdp = jaxmdp.make_mdp(*random_mdp_arrays(np.random.default_rng(0), 3, 2), 0.9)
    monkeypatch.setenv("JAXMDP_PLAN_BACKEND", "cuda")
    with pytest.raises(ValueError, match="JAXMDP_PLAN_BACKEND"):
        jaxmdp.solve(mdp)


@pytest.mark.cpu_plan  # only a CPU plan reads the setting (the test below)
@pytest.mark.parametrize("setting", ["abc", "0", "-2", "1.5"])
def test_bad_cpu_threads_setting_names_the_variable(setting, monkeypatch):
    P, R = random_mdp_arrays(np.random.default_rng(0), 3, 2, batch=(4,))
    mdp = jaxmdp.make_mdp(P, R, 0.9)
    monkeypatch.setenv("JAXMDP_CPU_THREADS", setting)
    with pytest.raises(ValueError, match="JAXMDP_CPU_THREADS"):
        jaxmdp.solve(mdp)


def test_cpu_threads_setting_is_ignored_off_the_cpu(monkeypatch):
    """The accelerator plan uses no host threads, so it never reads the setting."""
    P, R = random_mdp_arrays(np.random.default_rng(0), 3, 2, batch=(4,))
    mdp = jaxmdp.MDP(jnp.asarray(P, jnp.float32), jnp.asarray(R, jnp.float32), jnp.float32(0.9))
    monkeypatch.setenv("JAXMDP_CPU_THREADS", "abc")
    monkeypatch.setenv("JAXMDP_PLAN_BACKEND", "gpu")
    assert np.all(np.asarray(jaxmdp.solve(mdp).status) == jaxmdp.Status.SUCCESS)
