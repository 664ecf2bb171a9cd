"""AndersonValueIteration: certified like value iteration, fewer backups on slow problems."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _compare import assert_same_within_rounding
from extra_solvers_reference import evaluate_policy, random_mdp, value_iteration

import jaxmdp


def _garnet_batch(seed, B, S, A, g):
    rng = np.random.default_rng(seed)
    Ps, Rs = zip(*(random_mdp(rng, S, A, successors=2) for _ in range(B)), strict=True)
    return np.stack(Ps), np.stack(Rs), np.full(B, g)


S, A = 10, 3


@pytest.mark.parametrize("memory", [5, 8])  # the unrolled and the row-operation m x m solve
def test_within_bound_of_optimum_and_policy_tol_optimal(memory):
    rng = np.random.default_rng(0)
    g, tol = 0.99, 1e-7
    P, R = random_mdp(rng, S, A, successors=2, unavailable=2)
    v_star = value_iteration(P, R, g, tol=1e-14)
    with jax.enable_x64(True):
        solver = jaxmdp.AndersonValueIteration(tol, memory=memory)
        sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, g), solver)
    assert int(sol.status) == jaxmdp.Status.SUCCESS
    bound = float(sol.error_bound)
    assert bound <= tol / 2
    values, q = np.asarray(sol.values), np.asarray(sol.q_values)
    np.testing.assert_allclose(values, v_star, rtol=0, atol=bound + 1e-10)
    q_star = R + g * P @ v_star
    finite = np.isfinite(q_star)
    np.testing.assert_array_equal(np.isfinite(q), finite)
    np.testing.assert_allclose(q[finite], q_star[finite], rtol=0, atol=bound + 1e-10)
    # The certificate comes from one actual backup of the accepted point: values = max_a q.
    np.testing.assert_allclose(np.max(q, -1), values, rtol=0, atol=1e-12)
    v_pi = evaluate_policy(P, R, g, np.asarray(sol.policy))
    assert np.all(v_pi >= v_star - tol - 1e-10)


def test_fewer_backups_than_value_iteration_near_discount_one():
    P, R, g = _garnet_batch(2, 8, 24, 3, 0.999)
    with jax.enable_x64(True):
        mdp = jaxmdp.MDP(jnp.asarray(P), jnp.asarray(R), jnp.asarray(g))
        vi = jaxmdp.solve(mdp, jaxmdp.ValueIteration(1e-6))
        aa = jaxmdp.solve(mdp, jaxmdp.AndersonValueIteration(1e-6))
    assert np.all(np.asarray(aa.status) == jaxmdp.Status.SUCCESS)
    assert float(np.mean(aa.num_iters)) < float(np.mean(vi.num_iters))
    assert int(np.max(aa.num_iters)) < int(np.max(vi.num_iters))
    bound = np.asarray(aa.error_bound) + np.asarray(vi.error_bound)
    np.testing.assert_allclose(aa.values, vi.values, rtol=0, atol=float(np.max(bound)))


def test_failing_extrapolation_backs_off_to_value_iteration():
    """Deterministic MDPs (one successor per (s, a): cycles, often periodic) are where
    extrapolation keeps getting rejected for some members. The back-off keeps every member
    within a logarithmic number of wasted backups of plain VI (before it: one member here
    took 826 more backups than VI's 1,717), while most members still need far fewer."""
    rng = np.random.default_rng(0)
    B, S, A, g = 64, 64, 4, 0.99
    P = np.zeros((B, S, A, S))
    idx = np.indices((B, S, A))
    P[idx[0], idx[1], idx[2], rng.integers(0, S, size=(B, S, A))] = 1.0
    R = rng.random((B, S, A))
    with jax.enable_x64(True):
        mdp = jaxmdp.make_mdp(P, R, np.full(B, g))
        vi = jaxmdp.solve(mdp, jaxmdp.ValueIteration(1e-6), max_iters=100_000)
        an = jaxmdp.solve(mdp, jaxmdp.AndersonValueIteration(1e-6), max_iters=100_000)
    np.testing.assert_array_equal(np.asarray(an.status), jaxmdp.Status.SUCCESS)
    n_vi, n_an = np.asarray(vi.num_iters), np.asarray(an.num_iters)
    assert n_vi.max() > 500  # slow for plain VI
    excess = n_an - n_vi
    assert excess.max() <= 4 * np.log2(n_vi.max()), (excess.max(), n_vi.max())
    assert n_an.mean() < 0.5 * n_vi.mean(), (n_an.mean(), n_vi.mean())
    np.testing.assert_allclose(np.asarray(an.values), np.asarray(vi.values), atol=1e-6)


@pytest.mark.programs
def test_batch_equals_loop_and_discount_one():
    P, R, _ = _garnet_batch(3, 3, S, A, 0.9)
    g = np.array([0.5, 0.9, 0.99])
    solver = jaxmdp.AndersonValueIteration(1e-8)
    with jax.enable_x64(True):
        batch = jaxmdp.solve(jaxmdp.MDP(jnp.asarray(P), jnp.asarray(R), g), solver)
        for b in range(3):
            one = jaxmdp.solve(jaxmdp.make_mdp(P[b], R[b], g[b]), solver)
            member = jaxmdp.Solution(*(x[b] for x in batch))
            # the accept test may flip at a tie up to rounding (`_compare.py`)
            assert_same_within_rounding(member, one, g[b], path_may_differ=True, err_msg=b)
        # Discount 1: a chain 0 -> 1 -> 2 (absorbing, reward 0), step reward -1.
        P1 = np.zeros((3, 1, 3))
        P1[0, 0, 1] = P1[1, 0, 2] = P1[2, 0, 2] = 1.0
        R1 = np.array([[-1.0], [-1.0], [0.0]])
        sol = jaxmdp.solve(jaxmdp.make_mdp(P1, R1, 1.0), solver)
        assert int(sol.status) == jaxmdp.Status.SUCCESS
        np.testing.assert_allclose(sol.values, [-2.0, -1.0, 0.0])


def test_float32_smoke_memory_one():
    P, R, _ = _garnet_batch(4, 1, S, A, 0.99)
    v_star = value_iteration(P[0], R[0], 0.99)
    solver = jaxmdp.AndersonValueIteration(1e-3, memory=1)
    sol = jaxmdp.solve(jaxmdp.make_mdp(P[0], R[0], 0.99), solver)
    assert sol.values.dtype == jnp.float32
    assert int(sol.status) in (jaxmdp.Status.SUCCESS, jaxmdp.Status.PRECISION_LIMITED)
    # tol / 2 plus float32 rounding of values of size ~ 1 / (1 - g) = 100.
    np.testing.assert_allclose(sol.values, v_star, rtol=0, atol=5e-4 + 1e-4)


def test_rejects_bad_memory():
    with pytest.raises(ValueError, match="memory"):
        jaxmdp.AndersonValueIteration(memory=0)


@pytest.mark.programs
def test_large_memory_batch_member_within_rounding_of_its_own_solve():
    """memory > 6 solves its m x m system in row operations, which XLA may round differently
    batched and alone: same guarantee, values within the certified bounds of each other."""
    P, R, g = _garnet_batch(5, 16, 12, 3, 0.99)
    solver = jaxmdp.AndersonValueIteration(1e-8, memory=8)
    with jax.enable_x64(True):
        batch = jaxmdp.solve(jaxmdp.MDP(*(jnp.asarray(x) for x in (P, R, g))), solver)
        for i in (0, 7, 15):
            own = jaxmdp.solve(jaxmdp.MDP(*(jnp.asarray(x[i]) for x in (P, R, g))), solver)
            assert int(own.status) == int(batch.status[i]) == jaxmdp.Status.SUCCESS
            bound = float(own.error_bound) + float(batch.error_bound[i])
            np.testing.assert_allclose(batch.values[i], own.values, rtol=0, atol=bound)
