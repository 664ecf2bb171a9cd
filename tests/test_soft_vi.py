"""SoftValueIteration and soft_policy against a NumPy log-sum-exp reference."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _compare import assert_same_within_rounding
from extra_solvers_reference import (
    q_values,
    random_mdp,
    soft_value_iteration,
    softmax_policy,
    value_iteration,
)

import jaxmdp

S, A, G = 6, 3, 0.9


def _problem(seed=0, unavailable=2):
    rng = np.random.default_rng(seed)
    return random_mdp(rng, S, A, unavailable=unavailable)


def test_matches_numpy_reference():
    P, R = _problem()
    temp, tol = 0.5, 1e-8
    v_ref = soft_value_iteration(P, R, G, temp)
    q_ref = q_values(P, R, G, v_ref)
    with jax.enable_x64(True):
        sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, G), jaxmdp.SoftValueIteration(temp, tol))
        assert int(sol.status) == jaxmdp.Status.SUCCESS
        bound = float(sol.error_bound)
        assert bound <= tol / 2
        np.testing.assert_allclose(sol.values, v_ref, rtol=0, atol=bound + 1e-12)
        finite = np.isfinite(q_ref)
        np.testing.assert_array_equal(np.isfinite(sol.q_values), finite)
        np.testing.assert_allclose(
            np.asarray(sol.q_values)[finite], q_ref[finite], rtol=0, atol=bound + 1e-12
        )
        np.testing.assert_array_equal(sol.policy, np.argmax(q_ref, axis=1))
        pi = jaxmdp.soft_policy(sol.q_values, temp)
        np.testing.assert_allclose(pi, softmax_policy(q_ref, temp), atol=1e-7)
        np.testing.assert_array_equal(np.asarray(pi)[~finite], 0.0)  # unavailable actions
        np.testing.assert_allclose(np.asarray(pi).sum(-1), 1.0, atol=1e-12)


def test_low_temperature_recovers_hard_solution():
    P, R = _problem(seed=1)
    temp = 1e-3
    v_hard = value_iteration(P, R, G)
    with jax.enable_x64(True):
        mdp = jaxmdp.make_mdp(P, R, G)
        sol = jaxmdp.solve(mdp, jaxmdp.SoftValueIteration(temp, 1e-9))
        gap = np.asarray(sol.values) - v_hard
        slack = float(sol.error_bound) + 1e-10
        # max <= t logsumexp(./t) <= max + t log A, propagated by the g-contraction.
        assert np.all(gap >= -slack)
        assert np.all(gap <= temp * math.log(A) / (1 - G) + slack)
        hard = jaxmdp.solve(mdp, jaxmdp.ValueIteration(1e-9))
        np.testing.assert_array_equal(sol.policy, hard.policy)


def test_soft_policy_broadcasts_temperature_and_masks_unavailable():
    q = jnp.array([[[1.0, 2.0, -jnp.inf]], [[0.0, 0.0, 0.0]]])  # [2, 1, 3]
    pi = jaxmdp.soft_policy(q, jnp.array([1.0, 2.0]))
    assert pi.shape == (2, 1, 3)
    np.testing.assert_allclose(pi[0, 0], [1 / (1 + math.e), math.e / (1 + math.e), 0.0], 1e-6)
    np.testing.assert_allclose(pi[1, 0], [1 / 3] * 3, 1e-6)


def test_gradients_are_those_of_the_soft_fixed_point():
    """dV/dr(s, a) = [(I - g P_pi)^-1]_{:, s} pi(a | s), pi the softmax policy (smooth)."""
    P, R = _problem(seed=2, unavailable=0)
    temp, tol = 0.7, 1e-12
    v = soft_value_iteration(P, R, G, temp)
    pi = softmax_policy(q_values(P, R, G, v), temp)
    inv = np.linalg.inv(np.eye(S) - G * np.einsum("sa,sat->st", pi, P))
    expected = np.einsum("is,sa->isa", inv, pi)  # d V(i) / d r(s, a)
    s, a, h = 2, 1, 1e-5
    with jax.enable_x64(True):
        solver = jaxmdp.SoftValueIteration(temp, tol)

        def values(r):
            return jaxmdp.solve(jaxmdp.MDP(jnp.asarray(P), r, jnp.asarray(G)), solver).values

        # Each derivative under jit: one program (eager, every op around the solve's vmapped
        # derivative would be a program of its own).
        jac_rev = np.asarray(jax.jit(jax.jacrev(values))(R))
        jac_fwd = np.asarray(jax.jit(jax.jacfwd(values))(R))
        dr = np.zeros_like(R)
        dr[s, a] = h
        fd = (np.asarray(values(R + dr)) - np.asarray(values(R - dr))) / (2 * h)
    np.testing.assert_allclose(jac_rev, expected, atol=1e-9)
    np.testing.assert_allclose(jac_fwd, expected, atol=1e-9)
    np.testing.assert_allclose(fd, expected[:, s, a], atol=1e-7)


@pytest.mark.programs
def test_batch_equals_loop_and_shares_transitions():
    P, R = _problem(seed=3)
    rng = np.random.default_rng(4)
    rewards = np.stack([R, R + rng.random(R.shape), 2 * R])  # -inf stays -inf
    discounts = np.array([0.5, 0.9, 0.99])
    solver = jaxmdp.SoftValueIteration(0.3, 1e-8)
    with jax.enable_x64(True):
        batch = jaxmdp.solve(jaxmdp.MDP(jnp.asarray(P), jnp.asarray(rewards), discounts), solver)
        assert batch.values.shape == (3, S) and batch.q_values.shape == (3, S, A)
        for b in range(3):
            one = jaxmdp.solve(jaxmdp.make_mdp(P, rewards[b], discounts[b]), solver)
            member = jaxmdp.Solution(*(np.asarray(x)[b] for x in batch))  # no eager slicing
            assert_same_within_rounding(member, one, discounts[b], err_msg=f"member {b}")


def test_float32_smoke():
    P, R = _problem(seed=5)
    v_ref = soft_value_iteration(P, R, G, 1.0)
    sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, G), jaxmdp.SoftValueIteration(1.0, 1e-4))
    assert sol.values.dtype == jnp.float32
    assert int(sol.status) in (jaxmdp.Status.SUCCESS, jaxmdp.Status.PRECISION_LIMITED)
    # tol / 2 plus float32 rounding of values of size ~ 1 / (1 - g).
    np.testing.assert_allclose(sol.values, v_ref, rtol=0, atol=5e-5 + 1e-5)


def test_rejects_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        jaxmdp.SoftValueIteration(0.0)
