"""Tiled batches split over host threads (`jaxmdp._threads`).

On CPU, a batch with its own transitions per member runs in tiles that fit in cache; a
concrete batch is split into equal runs of tiles, one per core, each dispatched from its own
host thread. The parts are the same tiles as in the single program, so every field must be
bitwise identical to it, for every solver and batch shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_mdp_arrays

import jaxmdp
from jaxmdp import _solve, _threads

SOLVERS = [
    jaxmdp.ValueIteration(tol=1e-3),
    jaxmdp.ValueIteration(tol=1e-3, rule="sup"),
    jaxmdp.ModifiedPolicyIteration(tol=1e-3, eval_sweeps=4),
    jaxmdp.SoftValueIteration(temperature=0.1, tol=1e-3),
    jaxmdp.GaussSeidelValueIteration(tol=1e-3),
    jaxmdp.RelativeValueIteration(tol=1e-3),
]


def _problem(rng, batch):
    S, A = 32, 4  # 16 KiB of transitions per member: tiles of 64 members
    P, R = random_mdp_arrays(rng, S, A, batch=batch)
    g = rng.uniform(0.5, 0.99, size=batch)
    return jaxmdp.MDP(*(jnp.asarray(x, jnp.float32) for x in (P, R, g)))


def _plan(mdp):
    leaves = (*mdp, jnp.zeros((mdp.num_states,), jnp.float32))
    shapes = [
        tuple(np.shape(x))[: np.ndim(x) - k] for x, k in zip(leaves, (3, 2, 0, 1), strict=True)
    ]
    itemsize = mdp.transitions.dtype.itemsize
    plan = _solve._plan(shapes, mdp.batch_shape, mdp.num_states**2 * mdp.num_actions * itemsize)
    return plan, leaves


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: f"{type(s).__name__}-{s.__dict__}")
@pytest.mark.parametrize("batch", [(256,), (4, 64)])
def test_threaded_parts_equal_one_program(solver, batch, rng, monkeypatch):
    mdp = _problem(rng, batch)
    plan, leaves = _plan(mdp)
    assert plan.tile == 64
    monkeypatch.setattr(_threads, "cpu_threads", lambda: 4)
    assert _solve._threads_for(plan, leaves, solver) == 4
    threaded = jaxmdp.solve(mdp, solver)
    one = _solve._solve_jit(
        leaves, solver, max_iters=_solve.DEFAULT_MAX_ITERS, ctx=_ctx(), plan=plan
    )
    done = (jaxmdp.Status.SUCCESS, jaxmdp.Status.PRECISION_LIMITED)
    assert np.isin(np.asarray(one.status), done).all()
    for name in jaxmdp.Solution._fields:
        a, b = np.asarray(getattr(threaded, name)), np.asarray(getattr(one, name))
        assert a.shape == b.shape == batch + a.shape[len(batch) :], name
        np.testing.assert_array_equal(a, b, err_msg=name)


def _ctx():
    return _solve.SolveContext(undiscounted=False)


def test_thread_count_divides_the_tiles_and_respects_the_cap(rng, monkeypatch):
    mdp = _problem(rng, (6 * 64,))  # 6 tiles
    plan, leaves = _plan(mdp)
    monkeypatch.setattr(_threads, "cpu_threads", lambda: 4)
    vi = jaxmdp.ValueIteration()
    assert _solve._threads_for(plan, leaves, vi) == 3  # the largest count <= 4 dividing 6
    # dense linear algebra in concurrent XLA:CPU programs deadlocked (jax 0.10.2)
    assert _solve._threads_for(plan, leaves, jaxmdp.PolicyIteration()) == 1
    assert _solve._threads_for(plan, leaves, jaxmdp.AndersonValueIteration()) == 1
    monkeypatch.undo()
    monkeypatch.setenv("JAXMDP_CPU_THREADS", "1")
    assert _threads.cpu_threads() == 1
    assert _solve._threads_for(plan, leaves, vi) == 1


def test_traced_inputs_keep_one_program(rng, monkeypatch):
    """Under a user's jit / grad the batch is one program (no host threads inside a trace)."""
    mdp = _problem(rng, (256,))
    monkeypatch.setattr(_threads, "cpu_threads", lambda: 2)
    calls = []
    real = _solve._solve_threaded
    monkeypatch.setattr(_solve, "_solve_threaded", lambda *a, **k: calls.append(1) or real(*a, **k))
    solver = jaxmdp.ValueIteration(tol=1e-3)
    eager = jaxmdp.solve(mdp, solver)
    jitted = jax.jit(lambda m: jaxmdp.solve(m, solver))(mdp)
    assert calls == [1]
    np.testing.assert_allclose(np.asarray(jitted.values), np.asarray(eager.values), rtol=1e-6)
    grad = jax.grad(lambda r: jaxmdp.solve(mdp._replace(rewards=r), solver).values.sum())
    assert np.isfinite(np.asarray(grad(mdp.rewards))).all()
    assert calls == [1]


def test_parts_inherit_the_callers_thread_local_config(rng, monkeypatch):
    """Pool threads start from JAX's global config: a caller inside `jax.enable_x64(True)`
    must still get float64 (this once silently truncated the parts to float32)."""
    monkeypatch.setattr(_threads, "cpu_threads", lambda: 2)
    S, A, B = 32, 4, 256
    P, R = random_mdp_arrays(rng, S, A, batch=(B,))
    g = rng.uniform(0.9, 0.99, size=B)
    solver = jaxmdp.ValueIteration(tol=1e-9)
    with jax.enable_x64(True):
        mdp = jaxmdp.MDP(jnp.asarray(P), jnp.asarray(R), jnp.asarray(g))
        plan, leaves = _plan(mdp)
        assert _solve._threads_for(plan, leaves, solver) == 2
        threaded = jaxmdp.solve(mdp, solver)
        ctx = _solve.SolveContext(undiscounted=False, zero_start=True)
        one = _solve._solve_jit(leaves, solver, max_iters=10_000, ctx=ctx, plan=plan)
    assert threaded.values.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(threaded.status), jaxmdp.Status.SUCCESS)
    for name in jaxmdp.Solution._fields:
        np.testing.assert_array_equal(
            np.asarray(getattr(threaded, name)), np.asarray(getattr(one, name)), err_msg=name
        )
