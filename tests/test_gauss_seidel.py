"""GaussSeidelValueIteration against NumPy references (V*, in-place sweeps, policy values)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _compare import assert_same_within_rounding
from extra_solvers_reference import evaluate_policy, gauss_seidel, random_mdp, value_iteration

import jaxmdp
import jaxmdp.models

S, A, G, TOL = 8, 3, 0.9, 1e-8


def test_reaches_optimum_within_its_bound_and_policy_is_tol_optimal():
    rng = np.random.default_rng(0)
    P, R = random_mdp(rng, S, A, successors=3, unavailable=2)
    v_star = value_iteration(P, R, G)
    with jax.enable_x64(True):
        sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, G), jaxmdp.GaussSeidelValueIteration(TOL))
    assert int(sol.status) == jaxmdp.Status.SUCCESS
    bound = float(sol.error_bound)
    assert bound <= TOL / 2
    np.testing.assert_allclose(sol.values, v_star, rtol=0, atol=bound + 1e-12)
    q_star = R + G * P @ v_star
    finite = np.isfinite(q_star)
    np.testing.assert_allclose(
        np.asarray(sol.q_values)[finite], q_star[finite], rtol=0, atol=bound + 1e-12
    )
    v_pi = evaluate_policy(P, R, G, np.asarray(sol.policy))
    assert np.all(v_pi >= v_star - TOL - 1e-12)
    # Same sweeps, in the same order, as an in-place NumPy sweep with the same threshold.
    _, sweeps = gauss_seidel(P, R, G, TOL * (1 - G) / (2 * G))
    assert int(sol.num_iters) == sweeps


def test_fewer_sweeps_than_jacobi_value_iteration_with_the_same_rule():
    rng = np.random.default_rng(1)
    P, R = random_mdp(rng, S, A)
    with jax.enable_x64(True):
        mdp = jaxmdp.make_mdp(P, R, 0.95)
        gs = jaxmdp.solve(mdp, jaxmdp.GaussSeidelValueIteration(1e-6))
        vi = jaxmdp.solve(mdp, jaxmdp.ValueIteration(1e-6, rule="sup"))
    assert int(gs.num_iters) < int(vi.num_iters)


def test_puterman_two_state_closed_form_and_episodic_chain():
    g = 0.95
    with jax.enable_x64(True):
        sol = jaxmdp.solve(
            jaxmdp.models.puterman_two_state(g), jaxmdp.GaussSeidelValueIteration(TOL)
        )
        v1 = -1 / (1 - g)
        v0 = max((5 - 5.5 * g) / ((1 - 0.5 * g) * (1 - g)), 10 - g / (1 - g))
        np.testing.assert_allclose(
            sol.values, [v0, v1], rtol=0, atol=float(sol.error_bound) + 1e-12
        )
        assert int(sol.policy[0]) == 0
        # Discount 1: a chain 0 -> 1 -> 2 (absorbing, reward 0), step reward -1.
        P = np.zeros((3, 1, 3))
        P[0, 0, 1] = P[1, 0, 2] = P[2, 0, 2] = 1.0
        R = np.array([[-1.0], [-1.0], [0.0]])
        sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, 1.0), jaxmdp.GaussSeidelValueIteration(1e-9))
        assert int(sol.status) == jaxmdp.Status.SUCCESS
        np.testing.assert_allclose(sol.values, [-2.0, -1.0, 0.0])


@pytest.mark.programs
def test_batch_equals_loop():
    rng = np.random.default_rng(2)
    P, R = random_mdp(rng, S, A)
    rewards = np.stack([R, -R, R + 1])
    discounts = np.array([0.5, 0.9, 0.95])
    solver = jaxmdp.GaussSeidelValueIteration(1e-7)
    with jax.enable_x64(True):
        batch = jaxmdp.solve(jaxmdp.MDP(jnp.asarray(P), jnp.asarray(rewards), discounts), solver)
        for b in range(3):
            one = jaxmdp.solve(jaxmdp.make_mdp(P, rewards[b], discounts[b]), solver)
            member = jaxmdp.Solution(*(np.asarray(x)[b] for x in batch))  # no eager slicing
            assert_same_within_rounding(member, one, discounts[b], err_msg=f"member {b}")


def test_float32_smoke():
    rng = np.random.default_rng(3)
    P, R = random_mdp(rng, S, A)
    v_star = value_iteration(P, R, G)
    sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, G), jaxmdp.GaussSeidelValueIteration(1e-4))
    assert sol.values.dtype == jnp.float32
    assert int(sol.status) in (jaxmdp.Status.SUCCESS, jaxmdp.Status.PRECISION_LIMITED)
    np.testing.assert_allclose(sol.values, v_star, rtol=0, atol=5e-5 + 1e-5)


def test_float32_sweep_cycling_above_the_floor_stops_precision_limited():
    """A case hypothesis found (tests/test_solvers_common.py): in float32 state 4's value
    alternates between two numbers 5 ulp apart, above the fixed 4-ulp floor and the rounding
    part's test, so the loop ran to `max_iters`. Two sweeps without progress within 16 ulp
    end it, as for value iteration; the bound it certifies is reported."""
    P = np.zeros((5, 1, 5))
    P[[0, 1, 2, 3], 0, [4, 2, 4, 1]] = 1.0
    P[4, 0, [1, 3]] = [0.08989556, 0.91010444]
    R = np.array([[0.22872638], [-0.69663961], [1.74704901], [0.38313978], [-1.38444646]])
    g = 0.9371843217816419
    sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, g), jaxmdp.GaussSeidelValueIteration(tol=1e-6))
    assert jaxmdp.Status(int(sol.status)) == jaxmdp.Status.PRECISION_LIMITED
    assert int(sol.num_iters) < 1000
    V = value_iteration(P, R, g)
    assert np.abs(np.asarray(sol.values, np.float64) - V).max() <= float(sol.error_bound)
