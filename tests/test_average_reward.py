"""RelativeValueIteration / solve_average_reward against pymdptoolbox and brute force."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mdptoolbox.example
import mdptoolbox.mdp
import numpy as np
import pytest
from _compare import rounding_allowance
from extra_solvers_reference import inventory, optimal_gain, policy_gain, random_mdp

import jaxmdp

TOL = 1e-9


def _check_against_brute_force(P, R, sol, tol=TOL):
    """Gain within the certified bound of g*; policy tol-optimal; bias solves the equation."""
    g_star = optimal_gain(P, R)
    bound = float(sol.error_bound)
    assert int(sol.status) == jaxmdp.Status.SUCCESS
    assert bound <= tol / 2
    assert abs(float(sol.gain) - g_star) <= bound + 1e-12
    assert policy_gain(P, R, np.asarray(sol.policy)) >= g_star - tol - 1e-12
    h = np.asarray(sol.bias)
    th = (R + P @ h).max(axis=1)
    np.testing.assert_allclose(float(sol.gain) + h, th, rtol=0, atol=bound + 1e-12)


def test_forest_matches_pymdptoolbox():
    P, R = mdptoolbox.example.forest()  # the example of pymdptoolbox's docstring
    rvi = mdptoolbox.mdp.RelativeValueIteration(P, R)
    rvi.run()
    with jax.enable_x64(True):
        sol = jaxmdp.solve_average_reward(
            jaxmdp.from_pymdptoolbox(P, R, 0.96), jaxmdp.RelativeValueIteration(TOL)
        )
    # Always waiting: stationary mass 0.81 on the oldest state, which pays r1 = 4.
    assert abs(float(sol.gain) - 3.24) <= float(sol.error_bound) + 1e-12
    assert abs(float(sol.gain) - rvi.average_reward) <= rvi.epsilon
    assert tuple(np.asarray(sol.policy).tolist()) == rvi.policy == (0, 0, 0)
    _check_against_brute_force(P.transpose(1, 0, 2), R, sol)


def test_small_matches_pymdptoolbox_and_closed_form():
    P = np.array([[[0.5, 0.5], [0.8, 0.2]], [[0, 1], [0.1, 0.9]]])
    R = np.array([[5, 10], [-1, 2]])
    rvi = mdptoolbox.mdp.RelativeValueIteration(P, R)
    rvi.run()
    with jax.enable_x64(True):
        sol = jaxmdp.solve_average_reward(
            jaxmdp.from_pymdptoolbox(P, R, 1.0), jaxmdp.RelativeValueIteration(TOL, tau=1.0)
        )
    # Policy (1, 0): a two-state cycle with stationary law (0.8, 1) / 1.8.
    assert abs(float(sol.gain) - 7 / 1.8) <= float(sol.error_bound) + 1e-12
    assert abs(float(sol.gain) - rvi.average_reward) <= rvi.epsilon
    assert tuple(np.asarray(sol.policy).tolist()) == rvi.policy


def test_inventory_with_unavailable_actions():
    """Puterman's inventory model (QuantEcon's test_ddp.py data), average reward."""
    P, R, _ = inventory()
    with jax.enable_x64(True):
        sol = jaxmdp.solve_average_reward(
            jaxmdp.make_mdp(P, R, 1.0), jaxmdp.RelativeValueIteration(TOL)
        )
    _check_against_brute_force(P, R, sol)


@pytest.mark.programs
def test_batch_equals_loop_and_brute_force():
    rng = np.random.default_rng(0)
    S, A, B = 4, 2, 3
    Ps, Rs = zip(*(random_mdp(rng, S, A) for _ in range(B)), strict=True)
    P, R = np.stack(Ps), np.stack(Rs)
    solver = jaxmdp.RelativeValueIteration(TOL)
    with jax.enable_x64(True):
        batch = jaxmdp.solve_average_reward(jaxmdp.MDP(P, R, np.full(B, 0.9)), solver)
        assert batch.gain.shape == (B,) and batch.bias.shape == (B, S)
        batch = jax.device_get(batch)  # members read in NumPy: no eager slicing programs
        for b in range(B):
            one = jaxmdp.solve_average_reward(jaxmdp.make_mdp(P[b], R[b], 0.5), solver)
            # Batch and loop are different programs: integers equal (statistics ~1e-9 are far
            # from their threshold's rounding), floats within rounding. The relative iteration
            # is non-expansive, so rounding grows by at most one backup's worth per iteration.
            for field in ("policy", "status", "num_iters"):  # the discount is ignored
                np.testing.assert_array_equal(getattr(batch, field)[b], getattr(one, field))
            vmax = np.abs(np.asarray(one.q_values)).max()
            allow = rounding_allowance(np.float64, S, vmax, 1.0, num_iters=int(one.num_iters))
            for field, k in (
                ("gain", 1),
                ("bias", 1),
                ("q_values", 1),
                ("residual", 4),
                ("error_bound", 2),
            ):
                np.testing.assert_allclose(
                    getattr(batch, field)[b], getattr(one, field), rtol=0, atol=k * allow
                )
            _check_against_brute_force(P[b], R[b], one)


def test_periodic_chain_needs_the_aperiodicity_transform():
    P = jnp.array([[[0.0, 1.0]], [[1.0, 0.0]]])  # one action: a deterministic 2-cycle
    R = jnp.array([[1.0], [0.0]])
    mdp = jaxmdp.MDP(P, R, jnp.asarray(1.0))
    sol = jaxmdp.solve_average_reward(mdp, jaxmdp.RelativeValueIteration(1e-5))
    assert int(sol.status) == jaxmdp.Status.SUCCESS
    assert abs(float(sol.gain) - 0.5) <= float(sol.error_bound) + 1e-7
    plain = jaxmdp.solve_average_reward(
        mdp, jaxmdp.RelativeValueIteration(1e-5, tau=1.0), max_iters=50
    )
    assert int(plain.status) == jaxmdp.Status.MAX_ITERATIONS


def test_multichain_reports_max_iterations():
    P = jnp.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # two absorbing states: gains 1 and 0
    R = jnp.array([[1.0], [0.0]])
    sol = jaxmdp.solve_average_reward(
        jaxmdp.MDP(P, R, jnp.asarray(1.0)), jaxmdp.RelativeValueIteration(1e-5), max_iters=50
    )
    assert int(sol.status) == jaxmdp.Status.MAX_ITERATIONS
    assert (
        float(sol.gain) - float(sol.error_bound) <= 0.0
        and float(sol.gain) + float(sol.error_bound) >= 1.0
    )  # the certified interval still contains both gains
    with pytest.raises(jaxmdp.ConvergenceError):
        jaxmdp.check(sol)


def test_float32_smoke_and_solve_returns_bias():
    P, R = mdptoolbox.example.forest()
    mdp = jaxmdp.from_pymdptoolbox(P, R, 0.96)
    sol = jaxmdp.solve_average_reward(mdp, jaxmdp.RelativeValueIteration(1e-4))
    assert sol.gain.dtype == jnp.float32
    assert int(sol.status) in (jaxmdp.Status.SUCCESS, jaxmdp.Status.PRECISION_LIMITED)
    assert abs(float(sol.gain) - 3.24) <= max(float(sol.error_bound), 1e-5) + 1e-5
    raw = jaxmdp.solve(mdp, jaxmdp.RelativeValueIteration(1e-4))
    np.testing.assert_array_equal(raw.values, sol.bias)
    assert float(raw.values[0]) == 0.0  # ref_state pinned


def test_no_silent_gradients():
    P, R = mdptoolbox.example.forest()
    mdp = jaxmdp.from_pymdptoolbox(P, R, 0.96)

    def gain(r):
        return jaxmdp.solve_average_reward(mdp._replace(rewards=r)).gain

    with pytest.raises(NotImplementedError, match="RelativeValueIteration"):
        jax.grad(gain)(mdp.rewards)


def test_rejects_discounted_solvers_and_bad_tau():
    mdp = jaxmdp.from_pymdptoolbox(*mdptoolbox.example.forest(), 0.96)
    with pytest.raises(TypeError, match="RelativeValueIteration"):
        jaxmdp.solve_average_reward(mdp, jaxmdp.ValueIteration())
    with pytest.raises(ValueError, match="tau"):
        jaxmdp.RelativeValueIteration(tau=0.0)
