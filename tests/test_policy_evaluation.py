"""`jaxmdp.bellman.evaluate_policy` for discount < 1: the pivot-free factorisation of
`(I - g P_pi)^T` against NumPy's pivoted solve, and its guard against a row swap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_mdp_arrays

import jaxmdp
from jaxmdp.bellman import evaluate_policy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("g", [0.0, 0.5, 0.99, 0.999])
@pytest.mark.parametrize("sparsity", [0.0, 0.8])
def test_matches_numpy_solve(dtype, g, sparsity, rng):
    S, A = 40, 3
    P, R = random_mdp_arrays(rng, S, A, sparsity=sparsity)
    policy = rng.integers(0, A, size=S)
    p_pi, r_pi = P[np.arange(S), policy], R[np.arange(S), policy]
    want = np.linalg.solve(np.eye(S) - g * p_pi, r_pi)  # float64, pivoted
    with jax.enable_x64(dtype == np.float64):
        mdp = jaxmdp.make_mdp(P.astype(dtype), R.astype(dtype), dtype(g))
        got = jax.jit(evaluate_policy, static_argnames="undiscounted")(
            mdp, jnp.asarray(policy), undiscounted=False
        )
        assert got.dtype == dtype
    # backward error of a stable LU: a few eps times the condition number (1 + g) / (1 - g)
    cond = (1 + g) / (1 - g)
    atol = 64 * np.finfo(dtype).eps * cond * np.abs(want).max()
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=atol)


def test_a_row_swap_gives_nan_not_a_wrong_value():
    """Not reachable with a stochastic P_pi and g < 1 (the margin is 1 - g); forced here with
    a matrix that is not diagonally dominant, whose factorisation must pivot."""
    P = jnp.asarray([[[0.0, 5.0]], [[1.0, 0.0]]])  # [S=2, A=1, S]: rows are not stochastic
    mdp = jaxmdp.MDP(P, jnp.asarray([[1.0], [2.0]]), jnp.asarray(0.9))
    # Under jit, as in the test above and in a solve (eager, each operation compiles).
    v = jax.jit(evaluate_policy, static_argnames="undiscounted")(
        mdp, jnp.zeros(2, jnp.int32), undiscounted=False
    )
    assert np.isnan(np.asarray(v)).all()


def test_policy_iteration_initial_sweeps_only_change_the_start(rng):
    """The first policy is greedy for `initial_sweeps` backups of values0: same optimum,
    no more evaluations than from the immediate-reward start (here: fewer)."""
    S, A, B = 30, 4, 16
    P, R = random_mdp_arrays(rng, S, A, batch=(B,))
    g = rng.uniform(0.8, 0.99, size=B)
    with jax.enable_x64(True):
        mdp = jaxmdp.make_mdp(P, R, g)
        sols = [jaxmdp.solve(mdp, jaxmdp.PolicyIteration(initial_sweeps=k)) for k in (0, 1, 3)]
    for sol in sols:
        np.testing.assert_array_equal(np.asarray(sol.status), jaxmdp.Status.SUCCESS)
        np.testing.assert_allclose(np.asarray(sol.values), np.asarray(sols[0].values), atol=1e-9)
    evals = [int(np.asarray(sol.num_iters).sum()) for sol in sols]
    assert evals[1] < evals[0] and evals[2] <= evals[1], evals
    with pytest.raises(ValueError, match="initial_sweeps"):
        jaxmdp.PolicyIteration(initial_sweeps=-1)
