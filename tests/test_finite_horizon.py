"""backward_induction against pymdptoolbox, QuantEcon and a NumPy reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mdptoolbox.example
import mdptoolbox.mdp
import numpy as np
import pytest
from extra_solvers_reference import backward_induction, inventory, random_mdp

import jaxmdp


def test_forest_matches_pymdptoolbox():
    P, R = mdptoolbox.example.forest()
    h = np.array([1.0, -2.0, 0.5])
    for terminal in (None, h):
        fh = mdptoolbox.mdp.FiniteHorizon(P, R, 0.9, 3, h=terminal)
        fh.run()
        with jax.enable_x64(True):
            sol = jaxmdp.backward_induction(jaxmdp.from_pymdptoolbox(P, R, 0.9), 3, terminal)
        assert sol.values.shape == (4, 3) and sol.policy.shape == (3, 3)
        assert sol.q_values.shape == (3, 3, 2)
        # pymdptoolbox: V [S, N + 1], policy [S, N]; here the time axis comes first.
        np.testing.assert_allclose(np.asarray(sol.values).T, fh.V, rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(np.asarray(sol.policy).T, fh.policy)


@pytest.mark.filterwarnings("ignore:infinite horizon solution methods are disabled")
def test_inventory_matches_quantecon():
    from quantecon.markov import DiscreteDP
    from quantecon.markov import backward_induction as qe_backward_induction

    P, R, (s_idx, a_idx, r, q) = inventory()
    with jax.enable_x64(True):
        sol = jaxmdp.backward_induction(jaxmdp.make_mdp(P, R, 1.0), 3)
    expected = [
        [67 / 16, 129 / 16, 194 / 16, 227 / 16],
        [2, 25 / 4, 10, 21 / 2],
        [0, 5, 6, 5],
        [0, 0, 0, 0],
    ]
    np.testing.assert_allclose(sol.values, expected, rtol=1e-14)
    np.testing.assert_array_equal(sol.policy, [[3, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0]])
    vs, sigmas = qe_backward_induction(DiscreteDP(r, q, 1.0, s_idx, a_idx), 3)
    np.testing.assert_allclose(sol.values, vs, rtol=1e-14)
    np.testing.assert_array_equal(sol.policy, sigmas)
    assert np.all(np.isneginf(np.asarray(sol.q_values)[:, np.isneginf(R)]))


def test_batched_undiscounted_matches_numpy_and_shares_transitions():
    rng = np.random.default_rng(0)
    S, A, T = 5, 3, 6
    P, R = random_mdp(rng, S, A, unavailable=1)
    rewards = np.stack([R + k for k in range(3)])[:, None]  # batch shape (3, 1)
    discount = np.array([[0.8, 1.0]])  # (1, 2): broadcasts to (3, 2)
    terminal = rng.normal(size=(2, S))  # (2,) batch
    with jax.enable_x64(True):
        sol = jaxmdp.backward_induction(
            jaxmdp.MDP(jnp.asarray(P), jnp.asarray(rewards), jnp.asarray(discount)), T, terminal
        )
        assert sol.values.shape == (3, 2, T + 1, S)
        assert sol.q_values.shape == (3, 2, T, S, A)
        assert sol.policy.shape == (3, 2, T, S) and sol.policy.dtype == jnp.int32
        for i in range(3):
            for j in range(2):
                v, pol = backward_induction(P, rewards[i, 0], discount[0, j], T, terminal[j])
                np.testing.assert_allclose(sol.values[i, j], v, rtol=1e-13, atol=1e-13)
                np.testing.assert_array_equal(sol.policy[i, j], pol)


def test_horizon_zero_and_float32():
    P, R = mdptoolbox.example.forest()
    mdp = jaxmdp.from_pymdptoolbox(P, R, 0.96)
    sol = jaxmdp.backward_induction(mdp, 0, jnp.ones(3))
    assert sol.values.shape == (1, 3) and sol.policy.shape == (0, 3)
    np.testing.assert_array_equal(sol.values, 1.0)
    sol = jaxmdp.backward_induction(mdp, 20)
    assert sol.values.dtype == jnp.float32
    v, pol = backward_induction(P.transpose(1, 0, 2), R, 0.96, 20)
    np.testing.assert_allclose(sol.values, v, rtol=1e-5)
    np.testing.assert_array_equal(sol.policy, pol)


def test_bad_arguments():
    P, R = mdptoolbox.example.forest()
    mdp = jaxmdp.from_pymdptoolbox(P, R, 0.96)
    with pytest.raises(ValueError, match="horizon"):
        jaxmdp.backward_induction(mdp, -1)
    with pytest.raises(ValueError, match="terminal_values"):
        jaxmdp.backward_induction(mdp, 2, jnp.zeros(4))
