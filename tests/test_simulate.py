"""Rollouts and Monte Carlo values against exact policy evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp

S, A = 5, 3


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _mdp(seed=0, discount=0.9):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), (S, A))
    R = rng.uniform(-1, 1, (S, A))
    pi = rng.dirichlet(np.ones(A), S)
    return jaxmdp.make_mdp(P, R, discount), jnp.asarray(pi)


def test_rollout_shapes_and_consistency():
    mdp, pi = _mdp()
    tr = jaxmdp.rollout(jax.random.key(0), mdp, pi, jnp.ones(S) / S, 12)
    assert tr.states.shape == (13,) and tr.actions.shape == (12,) and tr.rewards.shape == (12,)
    assert tr.states.dtype == jnp.int32 and tr.actions.dtype == jnp.int32
    tr = jax.device_get(tr)  # indexed in NumPy below: no eager JAX programs to compile
    R = np.asarray(mdp.rewards)
    np.testing.assert_array_equal(tr.rewards, R[tr.states[:-1], tr.actions])
    P = np.asarray(mdp.transitions)
    assert np.all(P[tr.states[:-1], tr.actions, tr.states[1:]] > 0)
    # Deterministic policy and fixed start state.
    det = jnp.asarray([2, 1, 0, 0, 1], jnp.int32)
    tr = jax.device_get(jaxmdp.rollout(jax.random.key(1), mdp, det, 3, 12))
    assert tr.states[0] == 3
    np.testing.assert_array_equal(tr.actions, np.asarray(det)[tr.states[:-1]])
    # Same key, same trajectory.
    tr2 = jaxmdp.rollout(jax.random.key(1), mdp, det, 3, 12)
    np.testing.assert_array_equal(tr.states, tr2.states)


def test_rollouts_batch_axis_first_and_empirical_transition_frequencies():
    # One program: 4000 one-step rollouts from state 1 under a deterministic policy.
    mdp, _ = _mdp(3)
    det = jnp.zeros(S, jnp.int32)
    trs = jax.device_get(jaxmdp.rollouts(jax.random.key(3), mdp, det, 1, 1, 4000))
    assert (
        trs.states.shape == (4000, 2)
        and trs.actions.shape == (4000, 1)
        and trs.rewards.shape == (4000, 1)
    )
    assert np.all(trs.states[:, 0] == 1)
    assert len({tuple(s) for s in trs.states}) > 1  # independent keys
    # One state-action's empirical next-state distribution matches p(. | s, a).
    freq = np.bincount(trs.states[:, 1], minlength=S) / 4000
    p = np.asarray(mdp.transitions)[1, 0]
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / 4000) + 1e-12)


@pytest.mark.parametrize("policy_kind", ["deterministic", "stochastic"])
def test_monte_carlo_matches_exact_value(policy_kind):
    mdp, pi = _mdp(4, discount=0.9)
    policy = jnp.asarray([0, 2, 1, 1, 0], jnp.int32) if policy_kind == "deterministic" else pi
    mu = np.random.default_rng(5).dirichlet(np.ones(S))
    exact = float(mu @ np.asarray(jaxmdp.policy_values(mdp, policy)))
    # Horizon 150: truncation bias <= 0.9**150 / 0.1 < 2e-6, far below the stderr (about
    # 0.03 with 1000 rollouts; the run time is rollouts x horizon, compiled without LLVM's
    # optimisation in the tests, so both are no larger than the check needs).
    est = jaxmdp.monte_carlo_value(jax.random.key(6), mdp, policy, mu, 150, 1000)
    assert 0 < float(est.stderr) < 0.05
    assert abs(float(est.mean) - exact) < 4 * float(est.stderr)
    # Same returns as the stored rollouts.
    trs = jaxmdp.rollouts(jax.random.key(6), mdp, policy, mu, 150, 1000)
    returns = np.asarray(trs.rewards) @ (0.9 ** np.arange(150))
    assert np.mean(returns) == pytest.approx(float(est.mean), rel=1e-10)


def test_monte_carlo_episodic_discount_one():
    # Chain 0 -> 1 -> 2 (exit); move right w.p. 0.5 else stay; step reward -1.
    P = np.zeros((3, 1, 3))
    P[0, 0, [0, 1]] = P[1, 0, [1, 2]] = 0.5
    P[2, 0, 2] = 1
    mdp = jaxmdp.make_mdp(P, np.array([[-1.0], [-1.0], [0.0]]), 1.0)
    policy = jnp.zeros(3, jnp.int32)
    exact = float(jaxmdp.policy_values(mdp, policy)[0])
    assert exact == pytest.approx(-4.0)
    # Horizon 60: an episode lasts two Geometric(1/2) steps, longer than 60 with probability
    # 61 / 2**60 < 1e-16, so truncation changes nothing at the stderr's scale (about 0.06).
    est = jaxmdp.monte_carlo_value(jax.random.key(7), mdp, policy, 0, 60, 1000)
    assert abs(float(est.mean) - exact) < 4 * float(est.stderr)


def test_vmap_over_start_states():
    mdp, pi = _mdp()
    keys = jax.random.split(jax.random.key(8), S)
    out = jax.vmap(jaxmdp.rollout, in_axes=(0, None, None, 0, None))(
        keys, mdp, pi, jnp.arange(S), 3
    )
    np.testing.assert_array_equal(out.states[:, 0], np.arange(S))
