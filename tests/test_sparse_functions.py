"""The rest of the public API on the sparse form: gradients (against finite differences),
policy analysis, finite horizon, convergence history, average reward, simulation,
Q-learning, and the clear errors where the sparse form cannot go.

float64 throughout (x64 fixture), one MDP shape (S=5, A=3, K=3), shared jitted programs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp

S, A, K = 5, 3, 3
G = 0.9


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _sparse(seed, batch=()):
    """`(SparseTransitions, rewards)`: K distinct successors per (s, a), Dirichlet(1) + 0.05."""
    rng = np.random.default_rng(seed)
    ns = np.argsort(rng.random((*batch, S, A, S)), axis=-1)[..., :K].astype(np.int32)
    pr = rng.random((*batch, S, A, K)) + 0.05
    pr /= pr.sum(-1, keepdims=True)
    R = rng.normal(size=(*batch, S, A))
    return jaxmdp.SparseTransitions(jnp.asarray(ns), jnp.asarray(pr)), jnp.asarray(R)


def _pair(seed, discount=G, batch=()):
    """The same MDP in both forms: `(sparse MDP, dense MDP)`."""
    p, R = _sparse(seed, batch)
    g = jnp.full(batch, discount)
    return jaxmdp.MDP(p, R, g), jaxmdp.MDP(jaxmdp.to_dense(p), R, g)


# -- gradients ---------------------------------------------------------------------------------

EXACT = jaxmdp.PolicyIteration()


@jax.jit
def _values(mdp):
    return jaxmdp.solve(mdp, EXACT).values


def _fd(f, x, dx, h=1e-6):
    return (f(x + h * dx) - f(x - h * dx)) / (2 * h)


@pytest.mark.parametrize("field", ["probs", "rewards", "discount"])
def test_gradients_match_finite_differences(field):
    """Forward and reverse mode through the sparse IFT rule. With a concrete discount < 1
    (probs, rewards) the system is solved by GMRES and its transpose; the discount's
    gradient traces the discount, which takes the small-chain (materialised) path."""
    mdp, _ = _pair(0)
    rng = np.random.default_rng(1)
    w = jnp.asarray(rng.normal(size=S))
    p = mdp.transitions
    if field == "probs":
        x = p.probs
        dx = jnp.asarray(rng.normal(size=x.shape))

        def f(v):
            return _values(mdp._replace(transitions=jaxmdp.SparseTransitions(p.next_states, v)))

    elif field == "rewards":
        x, dx = mdp.rewards, jnp.asarray(rng.normal(size=(S, A)))

        def f(v):
            return _values(mdp._replace(rewards=v))

    else:
        x, dx = jnp.asarray(G), jnp.asarray(1.0)

        def f(v):
            return _values(mdp._replace(discount=v))

    fd = _fd(f, x, dx)
    assert np.max(np.abs(np.asarray(fd))) > 1e-2  # not vacuous
    _, forward = jax.jvp(f, (x,), (dx,))
    reverse = jnp.vdot(jax.grad(lambda v: jnp.dot(w, f(v)))(x), dx)
    np.testing.assert_allclose(forward, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(reverse, jnp.dot(w, fd), rtol=1e-6, atol=1e-8)


def test_batched_gradients_equal_the_dense_form():
    sparse, dense = _pair(2, batch=(4,))
    loss = jax.jit(jax.grad(lambda r, m: jaxmdp.solve(m._replace(rewards=r)).values.sum()))
    a, b = loss(sparse.rewards, sparse), loss(dense.rewards, dense)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


# -- analysis ----------------------------------------------------------------------------------


@pytest.mark.parametrize("undiscounted", [False, True])
def test_policy_analysis_equals_the_dense_form(undiscounted):
    sparse, dense = _pair(3)
    policy = jaxmdp.solve(dense).policy
    rng = np.random.default_rng(3)
    stochastic = jnp.asarray(rng.dirichlet(np.ones(A), size=S))
    kw = dict(undiscounted=undiscounted)
    # Each function once per policy form (every call compiles a GMRES solve for the sparse form).
    calls = [
        (jaxmdp.policy_values, policy, {}),
        (jaxmdp.policy_q_values, stochastic, {}),
        (jaxmdp.occupancy, policy, dict(initial_distribution=0)),
        (jaxmdp.state_action_occupancy, stochastic, dict(initial_distribution=0, normalized=True)),
    ]
    for fn, pi, extra in calls:
        np.testing.assert_allclose(
            fn(sparse, pi, **extra, **kw), fn(dense, pi, **extra, **kw), atol=1e-10
        )
    for mu in (None, 1):
        np.testing.assert_allclose(
            jaxmdp.stationary_distribution(sparse, policy, mu),
            jaxmdp.stationary_distribution(dense, policy, mu),
            atol=1e-10,
        )


def test_finite_horizon_history_and_average_reward_equal_the_dense_form():
    sparse, dense = _pair(4, batch=(3,))
    a, b = jaxmdp.backward_induction(sparse, 6), jaxmdp.backward_induction(dense, 6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-12)
    one_s, one_d = _pair(4)
    h_s = jaxmdp.convergence_history(one_s, num_iters=8)
    h_d = jaxmdp.convergence_history(one_d, num_iters=8)
    np.testing.assert_allclose(h_s.residual, h_d.residual, atol=1e-12)
    g_s = jaxmdp.solve_average_reward(sparse, jaxmdp.RelativeValueIteration(tol=1e-9))
    g_d = jaxmdp.solve_average_reward(dense, jaxmdp.RelativeValueIteration(tol=1e-9))
    np.testing.assert_array_equal(g_s.status, jaxmdp.Status.SUCCESS)
    np.testing.assert_allclose(g_s.gain, g_d.gain, atol=1e-9)


def test_discount_one_policy_iteration_on_a_small_sparse_episodic_mdp():
    """A chain to an absorbing exit: discount 1 takes the materialised chain analysis."""
    nxt = np.array([[[1, 0], [0, 0]], [[2, 0], [0, 0]], [[2, 0], [2, 0]]], np.int32)
    pr = np.array([[[0.9, 0.1], [1.0, 0]], [[0.9, 0.1], [1.0, 0]], [[1.0, 0], [1.0, 0]]])
    R = np.array([[-1.0, -2.0], [-1.0, -2.0], [0.0, 0.0]])
    sparse = jaxmdp.make_mdp(jaxmdp.SparseTransitions(nxt, pr), R, 1.0)
    dense = jaxmdp.make_mdp(jaxmdp.to_dense(sparse.transitions), R, 1.0)
    a, b = jaxmdp.solve(sparse, EXACT), jaxmdp.solve(dense, EXACT)
    np.testing.assert_array_equal(a.status, jaxmdp.Status.SUCCESS)
    np.testing.assert_allclose(a.values, b.values, atol=1e-12)
    np.testing.assert_allclose(a.values[2], 0.0)


# -- simulation and Q-learning -------------------------------------------------------------------


def test_rollouts_follow_the_successor_lists():
    sparse, dense = _pair(5)
    policy = jaxmdp.solve(dense).policy
    traj = jaxmdp.rollouts(jax.random.key(0), sparse, policy, 0, 40, 200)
    s, a, s2 = traj.states[:, :-1], traj.actions, traj.states[:, 1:]
    P = np.asarray(dense.transitions)
    assert np.all(P[s, a, s2] > 0)  # every step goes to a listed successor
    # empirical transition frequencies from state 0 under its action, against p(. | 0, pi(0))
    first = np.asarray(s2[s == 0])
    freq = np.bincount(first, minlength=S) / first.size
    expect = P[0, int(policy[0])]
    assert np.abs(freq - expect).max() < 4 * np.sqrt(0.25 / first.size) + 1e-9
    mc = jaxmdp.monte_carlo_value(jax.random.key(1), sparse, policy, 0, 200, 2000)
    exact = float(jaxmdp.policy_values(dense, policy)[0])
    assert abs(float(mc.mean) - exact) < 5 * float(mc.stderr)


def test_q_learning_learns_on_the_sparse_form():
    sparse, dense = _pair(6, discount=0.5)
    q_star = jaxmdp.solve(dense).q_values
    out = jaxmdp.q_learning(
        jax.random.key(2), sparse, num_steps=40_000, learning_rate=0.5, learning_rate_power=0.8
    )
    assert np.all(np.asarray(out.visits) > 0)
    np.testing.assert_allclose(out.q_values, q_star, atol=0.1)


# -- what the sparse form cannot do, said clearly ------------------------------------------------


def test_dense_only_requests_name_the_alternative():
    sparse, _ = _pair(7)
    policy = jnp.zeros(S, jnp.int32)
    with pytest.raises(ValueError, match="to_dense"):
        jaxmdp.bellman.policy_transitions(sparse, policy)
    big = 2049  # above the size whose chain is materialised for discount-1 analysis
    p = jaxmdp.SparseTransitions(jnp.zeros((big, 1, 1), jnp.int32), jnp.ones((big, 1, 1)))
    mdp = jaxmdp.MDP(p, jnp.zeros((big, 1)), 1.0)
    with pytest.raises(ValueError, match="ValueIteration or ModifiedPolicyIteration"):
        jax.eval_shape(lambda m: jaxmdp.solve(m, EXACT), mdp)
    with pytest.raises(ValueError, match="S = 2048"):
        jax.eval_shape(jaxmdp.stationary_distribution, mdp, jnp.zeros(big, jnp.int32))
