"""Policy analysis: exact values, Q, occupancy and stationary distributions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _compare import rounding_allowance

import jaxmdp
from jaxmdp import MDP


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _random(seed, S=5, A=3, discount=0.9):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), (S, A))
    R = rng.uniform(-1, 1, (S, A))
    pi = rng.dirichlet(np.ones(A), S)
    return P, R, pi


def _np_chain(P, R, pi):
    return np.einsum("sa,sat->st", pi, P), np.sum(pi * R, axis=1)


def test_optimal_policy_values_match_policy_iteration():
    P, R, _ = _random(0)
    mdp = jaxmdp.make_mdp(P, R, 0.9)
    sol = jaxmdp.solve(mdp, jaxmdp.PolicyIteration())
    np.testing.assert_allclose(jaxmdp.policy_values(mdp, sol.policy), sol.values, atol=1e-10)
    np.testing.assert_allclose(jaxmdp.policy_q_values(mdp, sol.policy), sol.q_values, atol=1e-10)
    # The same policy as one-hot probabilities goes through the stochastic path.
    onehot = jax.nn.one_hot(sol.policy, 3, dtype=jnp.float64)
    np.testing.assert_allclose(jaxmdp.policy_values(mdp, onehot), sol.values, atol=1e-10)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stochastic_policy_values_match_numpy_solve(seed):
    P, R, pi = _random(seed)
    g = 0.95
    mdp = jaxmdp.make_mdp(P, R, g)
    p_pi, r_pi = _np_chain(P, R, pi)
    v_np = np.linalg.solve(np.eye(5) - g * p_pi, r_pi)
    v = jaxmdp.policy_values(mdp, jnp.asarray(pi))
    np.testing.assert_allclose(v, v_np, rtol=1e-10, atol=1e-10)
    q = jaxmdp.policy_q_values(mdp, jnp.asarray(pi))
    np.testing.assert_allclose(q, R + g * P @ v_np, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.sum(pi * np.asarray(q), axis=1), v_np, atol=1e-10)


def test_zero_probability_unavailable_action_is_ignored():
    P, R, pi = _random(4)
    R[0, 2] = -np.inf
    pi[0] = [0.25, 0.75, 0.0]
    mdp = jaxmdp.make_mdp(P, R, 0.9)
    v = np.asarray(jaxmdp.policy_values(mdp, jnp.asarray(pi)))
    assert np.all(np.isfinite(v))
    R0 = np.where(np.isfinite(R), R, 0.0)
    p_pi, r_pi = _np_chain(P, R0, pi)
    np.testing.assert_allclose(v, np.linalg.solve(np.eye(5) - 0.9 * p_pi, r_pi), atol=1e-10)


def test_discount_one_stochastic_policy_uses_ssp_convention():
    # Chain 0 -> 1 -> 2 (absorbing exit). Action 0 stays, action 1 moves right; step -1.
    P = np.zeros((3, 2, 3))
    R = np.full((3, 2), -1.0)
    for s in range(2):
        P[s, 0, s] = 1
        P[s, 1, s + 1] = 1
    P[2, :, 2] = 1
    R[2] = 0
    mdp = jaxmdp.make_mdp(P, R, 1.0)
    pi = jnp.asarray([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(jaxmdp.policy_values(mdp, pi), [-4.0, -2.0, 0.0], atol=1e-12)
    improper = jnp.asarray([[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])
    v = np.asarray(jaxmdp.policy_values(mdp, improper))
    assert v[0] == -np.inf and v[1] == -np.inf and v[2] == 0


@pytest.mark.parametrize("policy_kind", ["deterministic", "stochastic"])
def test_occupancy_mass_and_flow_equation(policy_kind):
    P, R, pi = _random(5)
    g = 0.8
    mdp = jaxmdp.make_mdp(P, R, g)
    if policy_kind == "deterministic":
        policy = jnp.asarray([0, 2, 1, 1, 0], jnp.int32)
        pi = np.eye(3)[np.asarray(policy)]
    else:
        policy = jnp.asarray(pi)
    mu = np.random.default_rng(6).dirichlet(np.ones(5))
    d = np.asarray(jaxmdp.occupancy(mdp, policy, mu))
    p_pi, r_pi = _np_chain(P, R, pi)
    assert d.sum() == pytest.approx(1 / (1 - g), rel=1e-12)
    np.testing.assert_allclose(d, mu + g * p_pi.T @ d, atol=1e-12)
    v = np.asarray(jaxmdp.policy_values(mdp, policy))
    assert d @ r_pi == pytest.approx(mu @ v, rel=1e-12)
    dn = np.asarray(jaxmdp.occupancy(mdp, policy, mu, normalized=True))
    np.testing.assert_allclose(dn, (1 - g) * d, atol=1e-12)
    dsa = np.asarray(jaxmdp.state_action_occupancy(mdp, policy, mu))
    np.testing.assert_allclose(dsa.sum(1), d, atol=1e-12)
    assert np.sum(dsa * R) == pytest.approx(mu @ v, rel=1e-12)
    # An integer start state is a one-hot mu.
    np.testing.assert_allclose(
        jaxmdp.occupancy(mdp, policy, 2), jaxmdp.occupancy(mdp, policy, np.eye(5)[2]), atol=0
    )


def test_stationary_distribution_irreducible():
    P, R, pi = _random(7)
    mdp = jaxmdp.make_mdp(P, R, 0.9)
    det = np.array([2, 0, 1, 1, 0])
    for policy, probs in ((jnp.asarray(pi), pi), (jnp.asarray(det, jnp.int32), np.eye(3)[det])):
        p_pi = np.einsum("sa,sat->st", probs, P)
        x = np.asarray(jaxmdp.stationary_distribution(mdp, policy))
        np.testing.assert_allclose(x @ p_pi, x, atol=1e-12)
        assert x.sum() == pytest.approx(1.0, abs=1e-12) and np.all(x > 0)
        # Unique: independent of the initial distribution.
        np.testing.assert_allclose(jaxmdp.stationary_distribution(mdp, policy, 3), x, atol=1e-12)


def _two_exits():
    # 0 -> {1: 0.3, 2: 0.7}; 1 absorbing; {2, 3} a periodic 2-cycle; 4 -> 0 or 4.
    P = np.zeros((5, 1, 5))
    P[0, 0, [1, 2]] = [0.3, 0.7]
    P[1, 0, 1] = 1
    P[2, 0, 3] = P[3, 0, 2] = 1
    P[4, 0, [0, 4]] = [0.5, 0.5]
    return jaxmdp.make_mdp(P, np.zeros((5, 1)), 1.0), np.zeros(5, np.int32)


def test_stationary_distribution_reducible_is_cesaro_limit_or_nan():
    mdp, policy = _two_exits()
    x = np.asarray(jaxmdp.stationary_distribution(mdp, policy, 4))
    np.testing.assert_allclose(x, [0, 0.3, 0.35, 0.35, 0], atol=1e-12)
    p = np.asarray(mdp.transitions)[:, 0, :]
    np.testing.assert_allclose(x @ p, x, atol=1e-12)
    # Brute-force Cesaro average.
    mu, acc = np.eye(5)[4], np.zeros(5)
    for _ in range(4000):
        acc += mu
        mu = mu @ p
    np.testing.assert_allclose(x, acc / 4000, atol=2e-3)
    # Ambiguous without an initial distribution: NaN, not an arbitrary answer.
    assert np.all(np.isnan(np.asarray(jaxmdp.stationary_distribution(mdp, policy))))


def test_occupancy_at_discount_one_counts_visits():
    mdp, policy = _two_exits()
    d = np.asarray(jaxmdp.occupancy(mdp, policy, 4))
    np.testing.assert_allclose(d[[0, 4]], [1.0, 2.0], atol=1e-12)  # expected visits
    assert np.all(d[1:4] == np.inf)
    d0 = np.asarray(jaxmdp.occupancy(mdp, policy, 1))
    np.testing.assert_array_equal(d0, [0, np.inf, 0, 0, 0])
    # normalized=True at discount 1 is the gamma -> 1 limit: the Cesaro distribution.
    dn = jaxmdp.occupancy(mdp, policy, 4, normalized=True)
    near = jaxmdp.occupancy(
        mdp._replace(discount=jnp.asarray(1 - 1e-7)), policy, 4, normalized=True
    )
    np.testing.assert_allclose(dn, near, atol=1e-5)


@pytest.mark.programs
def test_vmap_over_policies_and_sweep():
    P, R, _ = _random(8)
    mdp = jaxmdp.make_mdp(P, R, 0.9)
    pols = jnp.asarray(np.random.default_rng(9).dirichlet(np.ones(3), (4, 5)))
    batched = jax.vmap(jaxmdp.policy_values, in_axes=(None, 0))(mdp, pols)
    for i in range(4):
        one = jaxmdp.policy_values(mdp, pols[i])  # another program: within rounding
        allow = rounding_allowance(np.float64, 5, np.abs(one).max(), 0.9)
        np.testing.assert_allclose(batched[i], one, rtol=0, atol=allow)
    sweep = mdp._replace(discount=jnp.asarray([0.5, 0.9, 1.0 - 1e-9, 0.0]))
    d = jax.vmap(jaxmdp.occupancy, in_axes=(MDP(None, None, 0), 0, None))(sweep, pols, 0)
    np.testing.assert_allclose(d.sum(1), 1 / (1 - sweep.discount), rtol=1e-6)


def test_float32_smoke():
    with jax.enable_x64(False):
        P, R, pi = _random(10)
        mdp = jaxmdp.make_mdp(P, R, 0.9)
        v = jaxmdp.policy_values(mdp, jnp.asarray(pi, jnp.float32))
        assert v.dtype == jnp.float32
        p_pi, r_pi = _np_chain(P, R, pi)
        np.testing.assert_allclose(v, np.linalg.solve(np.eye(5) - 0.9 * p_pi, r_pi), atol=1e-4)


def test_bad_policy_shape_raises():
    P, R, _ = _random(11)
    mdp = jaxmdp.make_mdp(P, R, 0.9)
    with pytest.raises(ValueError, match="policy must be"):
        jaxmdp.policy_values(mdp, jnp.zeros((5, 2)))
