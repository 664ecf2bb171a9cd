"""The single sparse MDP's value-iteration sweep (`value_iteration._fused_backup`) and the
kernels under it: one pass that writes V_k = max_a Q and never Q, Q computed once at the
end from V_{k-1}, and the unsigned successor indices of `_operators._gather_sum`.

The fused sweep and the sweep that carries Q are different programs (another fusion of
the same sums), so their results are compared within rounding; `max_actions` is a max,
exact in any order, so it equals `jnp.max` exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _compare import assert_same_within_rounding

import jaxmdp
from jaxmdp import _bellman
from jaxmdp import _operators as ops
from jaxmdp._solvers import value_iteration
from jaxmdp._solvers.base import SolveContext

S, A, K = 40, 3, 3


def _mdp(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    ns = rng.integers(0, S, size=(S, A, K)).astype(np.int32)
    pr = rng.dirichlet(np.ones(K), size=(S, A))
    pr[: S // 2, :, -1] = 0.0  # padding slots in half the rows
    pr /= pr.sum(-1, keepdims=True)
    R = rng.standard_normal((S, A))
    R[rng.random((S, A)) < 0.2] = -np.inf
    R[:, 0] = rng.standard_normal(S)  # every state keeps an available action
    T = jaxmdp.SparseTransitions(jnp.asarray(ns), jnp.asarray(pr, dtype))
    return jaxmdp.MDP(T, jnp.asarray(R, dtype), jnp.asarray(0.9, dtype))


@pytest.mark.programs  # the fused sweep and the one that carries Q are different programs
@pytest.mark.parametrize("start", ["zeros", "given"])
def test_fused_sweep_matches_the_sweep_that_carries_q(monkeypatch, start):
    mdp = _mdp()
    solver = jaxmdp.ValueIteration(tol=1e-3)
    ctx = SolveContext(undiscounted=False, single=True)
    # Traced only (eval_shape): whether the state carries Q is decided while tracing, and
    # the eager init would compile each of its operations.
    state = jax.eval_shape(lambda: solver.init(mdp, jnp.zeros(S), ctx))
    assert state.q is None  # one sparse MDP: the fused sweep
    state = jax.eval_shape(lambda: solver.init(mdp, jnp.zeros(S), ctx._replace(single=False)))
    assert state.q is not None
    # "given": a nonzero start, so no sweep takes the Q = R branch.
    values0 = None if start == "zeros" else jnp.linspace(-1.0, 1.0, S, dtype=jnp.float32)
    fused = jaxmdp.solve(mdp, solver, values0=values0)
    # The same solve carrying Q: another `max_iters` (static) makes `solve` trace anew,
    # and the spy shows that the trace asked for the fused sweep and was refused.
    asked = []
    monkeypatch.setattr(
        value_iteration, "_fused_backup", lambda mdp, ctx: asked.append(ctx.single) or False
    )
    carried = jaxmdp.solve(mdp, solver, values0=values0, max_iters=5_000)
    assert asked and all(asked)
    assert int(fused.status) == int(jaxmdp.Status.SUCCESS)
    assert_same_within_rounding(fused, carried, 0.9)
    # Q comes from V_{k-1} at the end: its max is the loop's V_k up to the one rounding
    # difference of two programs computing the same backup, and the policy is its argmax.
    q, v = np.asarray(fused.q_values), np.asarray(fused.values)
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(q.max(-1), v, rtol=0, atol=8 * eps * np.abs(v).max())
    np.testing.assert_array_equal(np.asarray(fused.policy), q.argmax(-1))


def test_fused_sweep_after_one_iteration_is_the_rewards():
    """max_iters=1 from zeros: the only sweep takes the Q = R branch, and the final Q,
    computed from V_0 = 0, is R exactly (padding and all: every term is p * 0)."""
    mdp = _mdp(seed=1)
    sol = jaxmdp.solve(mdp, jaxmdp.ValueIteration(tol=1e-4), max_iters=1)
    assert int(sol.num_iters) == 1
    R = np.asarray(mdp.rewards)
    shift = np.asarray(sol.values) - R.max(-1)  # the correction, one number for all states
    np.testing.assert_allclose(shift, shift[0], rtol=0, atol=1e-6 * (1 + abs(shift[0])))
    ok = np.isfinite(R)
    np.testing.assert_allclose(np.asarray(sol.q_values)[ok], (R + shift[0])[ok], rtol=1e-6)


@pytest.mark.parametrize("num_actions", [3, 20])  # slab by slab; above 16, jnp.max
def test_max_actions_is_the_max(num_actions):
    rng = np.random.default_rng(2)
    q = rng.standard_normal((7, num_actions)).astype(np.float32)
    q[1, 1] = -np.inf
    q[2] = -np.inf
    q[3, 2] = np.nan
    out = np.asarray(_bellman.max_actions(jnp.asarray(q)))
    np.testing.assert_array_equal(out, np.asarray(jnp.max(jnp.asarray(q), axis=-1)))


def test_gather_sum_reads_inside_values_for_invalid_indices():
    """Unvalidated input: a negative or too large successor index reads a defined entry of
    `values` (the last one), never memory outside it; valid indices read their own."""
    values = jnp.arange(1.0, 6.0)  # S = 5
    ns = jnp.asarray([[0, 4, -1], [7, 2, 2**31 - 1]], jnp.int32)
    pr = jnp.asarray([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]], jnp.float32)
    out = np.asarray(jax.jit(ops._gather_sum)(ns, pr, values))  # as in a solve: under jit
    np.testing.assert_allclose(out, [0.5 * 1 + 0.25 * 5 + 0.25 * 5, 0.5 * 5 + 0.25 * 3 + 0.25 * 5])
