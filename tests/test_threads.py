"""Tiled batches split over host threads (`JAXMDP_CPU_THREADS`).

On CPU, a batch with its own transitions per member runs in tiles that fit in cache; a
concrete batch is split into equal runs of tiles, one per host thread, each an ordinary
jitted program. The parts are the same tiles as in the single program
(`JAXMDP_CPU_THREADS=1`), but compiled as other programs (a run of tiles, not the whole
batch), so every field must equal the single program's within rounding (`_compare.py`; in
practice the bits agree), for each solver class allowed on threads (`THREADED_SOLVERS`),
and for a batch of two axes. Solvers with dense linear algebra stay one program (concurrent LAPACK
calls deadlocked XLA:CPU with jax 0.10.2); that is checked in a subprocess with a timeout.
Anderson's small solves are array operations (no LAPACK) and run threaded, checked both
ways: equal to one program, and no hang on repeated calls in the subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _compare import assert_same_within_rounding
from conftest import random_mdp_arrays

import jaxmdp

# One of each class in `jaxmdp._threads.THREADED_SOLVERS` (the threaded path is the same code
# for every solver; what differs is the solver's own step inside the tile program). Anderson's
# larger-memory variant (row operations) runs threaded in the subprocess test below.
SOLVERS = [
    jaxmdp.ValueIteration(tol=1e-3),
    jaxmdp.ModifiedPolicyIteration(tol=1e-3, eval_sweeps=4),
    jaxmdp.SoftValueIteration(temperature=0.1, tol=1e-3),
    jaxmdp.GaussSeidelValueIteration(tol=1e-3),
    jaxmdp.RelativeValueIteration(tol=1e-3),
    jaxmdp.AndersonValueIteration(tol=1e-3),
]


def _problem(rng, batch, dtype=jnp.float32):
    S, A = 32, 4  # 16 KiB (float32) of transitions per member: tiles of 64 members
    P, R = random_mdp_arrays(rng, S, A, batch=batch)
    # Discounts up to 0.9: the threaded split is the same at any discount, and the sweeps
    # run twice per test (Gauss-Seidel's in-place sweeps at 0.99 took ~3 s).
    g = rng.uniform(0.5, 0.9, size=batch)
    return jaxmdp.MDP(*(jnp.asarray(x, dtype) for x in (P, R, g)))


def _pool_threads():
    return [t for t in threading.enumerate() if t.name.startswith("jaxmdp")]


def _same(a, b, mdp, at_floor, solver=None):
    batch = mdp.batch_shape
    for name in jaxmdp.Solution._fields:
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.shape == y.shape and x.shape[: len(batch)] == batch, name
    # float32 at tol 1e-3: many members stop at the precision floor; Anderson's accept test
    # may flip where it is a tie up to rounding (`_compare.py`)
    branches = isinstance(solver, jaxmdp.AndersonValueIteration)
    assert_same_within_rounding(a, b, mdp.discount, at_floor=at_floor, path_may_differ=branches)


@pytest.mark.cpu_plan  # host threads are the CPU's
@pytest.mark.programs
@pytest.mark.parametrize(
    ("solver", "batch"),
    # Anderson's tiles hold a quarter of the bytes: 64 members are 4 tiles of 16.
    [(s, (64,) if "Anderson" in type(s).__name__ else (256,)) for s in SOLVERS]
    + [(SOLVERS[0], (4, 64))],
    ids=lambda x: type(x).__name__ if hasattr(x, "init") else str(x),
)
def test_threaded_parts_equal_one_program(solver, batch, rng, monkeypatch):
    mdp = _problem(rng, batch)  # 4 tiles
    monkeypatch.setenv("JAXMDP_CPU_THREADS", "1")
    one = jaxmdp.solve(mdp, solver)
    monkeypatch.setenv("JAXMDP_CPU_THREADS", "4")
    threaded = jaxmdp.solve(mdp, solver)
    assert len(_pool_threads()) >= 4
    done = (jaxmdp.Status.SUCCESS, jaxmdp.Status.PRECISION_LIMITED)
    assert np.isin(np.asarray(one.status), done).all()
    _same(threaded, one, mdp, at_floor=True, solver=solver)


def test_traced_inputs_keep_one_program(rng, monkeypatch):
    """Under a user's jit / grad the batch is one program (no host threads inside a trace)."""
    mdp = _problem(rng, (256,))
    monkeypatch.setenv("JAXMDP_CPU_THREADS", "2")
    solver = jaxmdp.ValueIteration(tol=1e-3)
    eager = jaxmdp.solve(mdp, solver)
    jitted = jax.jit(lambda m: jaxmdp.solve(m, solver))(mdp)
    np.testing.assert_allclose(np.asarray(jitted.values), np.asarray(eager.values), rtol=1e-6)
    grad = jax.grad(lambda r: jaxmdp.solve(mdp._replace(rewards=r), solver).values.sum())
    assert np.isfinite(np.asarray(grad(mdp.rewards))).all()


@pytest.mark.programs
def test_parts_inherit_the_callers_thread_local_config(rng, monkeypatch):
    """Pool threads start from JAX's global config: a caller inside `jax.enable_x64(True)`
    must still get float64 (this once silently truncated the parts to float32)."""
    solver = jaxmdp.ValueIteration(tol=1e-9)
    with jax.enable_x64(True):
        mdp = _problem(rng, (256,), jnp.float64)  # 32 KiB per member: 8 tiles of 32
        monkeypatch.setenv("JAXMDP_CPU_THREADS", "1")
        one = jaxmdp.solve(mdp, solver)
        monkeypatch.setenv("JAXMDP_CPU_THREADS", "2")
        threaded = jaxmdp.solve(mdp, solver)
    assert threaded.values.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(threaded.status), jaxmdp.Status.SUCCESS)
    _same(threaded, one, mdp, at_floor=False)


SCRIPT = textwrap.dedent(
    """
    import json
    import jax.numpy as jnp, numpy as np
    import jaxmdp

    rng = np.random.default_rng(0)
    B, S, A = 6 * 64, 32, 4  # 6 tiles
    P = rng.dirichlet(np.ones(S), size=(B, S, A)).astype(np.float32)
    R = rng.uniform(size=(B, S, A)).astype(np.float32)
    mdp = jaxmdp.MDP(jnp.asarray(P), jnp.asarray(R), jnp.full((B,), 0.9, jnp.float32))
    out = {}
    for solver in (jaxmdp.PolicyIteration(), jaxmdp.AndersonValueIteration(tol=1e-2, memory=8)):
        for _ in range(3):  # the deadlock showed on repeated calls
            sol = jaxmdp.solve(mdp, solver)
        out[type(solver).__name__] = int((np.asarray(sol.status) == 0).sum())
    print(json.dumps(out))
    """
)


def test_lapack_solvers_stay_one_program_and_threaded_anderson_does_not_hang():
    env = {**os.environ, "JAXMDP_CPU_THREADS": "4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"PolicyIteration": 384, "AndersonValueIteration": 384}, out
