"""Discount 1: episodic problems with absorbing exits (stochastic shortest path convention)."""

import jax
import numpy as np
import pytest
from _compare import rounding_allowance

import jaxmdp
from jaxmdp import bellman


def _chain(step, n=4):
    """States 0..n-1 on a line, n-1 absorbing exit; actions: 0 = stay (bump), 1 = move right.

    Entering the exit pays +1; every other move pays `step`.
    """
    S, A = n, 2
    P = np.zeros((S, A, S))
    R = np.zeros((S, A))
    for s in range(S - 1):
        P[s, 0, s] = 1
        R[s, 0] = step
        P[s, 1, s + 1] = 1
        R[s, 1] = 1.0 if s + 1 == S - 1 else step
    P[S - 1, :, S - 1] = 1
    return P, R


# As inside a solve, under jit: one program per shape (the function has no branch on
# concrete values, so the eager call runs the same code, one program per operation).
evaluate_policy = jax.jit(bellman.evaluate_policy)


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def test_proper_policy_exact_evaluation_pins_absorbing_state():
    P, R = _chain(-0.5)
    mdp = jaxmdp.make_mdp(P, R, 1.0)
    v = evaluate_policy(mdp, np.array([1, 1, 1, 0]))
    np.testing.assert_allclose(np.asarray(v), [0.0, 0.5, 1.0, 0.0])


def test_improper_policy_reported_as_infinite_not_garbage():
    P, R = _chain(-0.5)
    mdp = jaxmdp.make_mdp(P, R, 1.0)
    v = np.asarray(evaluate_policy(mdp, np.array([1, 0, 1, 0])))
    # State 1 bumps forever: -inf; state 0 reaches it: -inf; state 2 exits; exit is 0.
    assert v[0] == -np.inf and v[1] == -np.inf
    np.testing.assert_allclose(v[2:], [1.0, 0.0])
    # Positive step reward: the bumping states accumulate +inf.
    P, R = _chain(+0.5)
    v = np.asarray(evaluate_policy(jaxmdp.make_mdp(P, R, 1.0), np.array([0, 0, 0, 0])))
    assert np.all(v[:3] == np.inf) and v[3] == 0


def test_zero_reward_cycle_is_pinned_to_zero():
    # Two states swapping forever with zero reward, a third leading into them with reward 2,
    # and an absorbing fourth. The chain's shape (4 states, 2 actions; action 1 unused), so
    # the evaluation reuses the program compiled above.
    P = np.zeros((4, 2, 4))
    P[0, :, 1] = P[1, :, 0] = 1
    P[2, :, 0] = 1
    P[3, :, 3] = 1
    R = np.array([[0.0, 0.0], [0.0, 0.0], [2.0, 2.0], [0.0, 0.0]])
    v = evaluate_policy(jaxmdp.make_mdp(P, R, 1.0), np.zeros(4, int))
    np.testing.assert_allclose(np.asarray(v), [0.0, 0.0, 2.0, 0.0])


@pytest.mark.parametrize(
    "solver",
    [
        jaxmdp.ValueIteration(1e-8),
        jaxmdp.PolicyIteration(),
        jaxmdp.ModifiedPolicyIteration(1e-8, 3),
    ],
)
def test_converges_where_every_relevant_policy_terminates(solver):
    P, R = _chain(-0.5)
    sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, 1.0), solver)
    assert int(sol.status) == jaxmdp.Status.SUCCESS
    np.testing.assert_allclose(np.asarray(sol.values), [0.0, 0.5, 1.0, 0.0], atol=1e-8)
    np.testing.assert_array_equal(np.asarray(sol.policy)[:3], [1, 1, 1])


def test_policy_iteration_reaches_optimum_from_improper_start():
    P, R = _chain(-0.5)
    mdp = jaxmdp.make_mdp(P, R, 1.0)
    # values0 makes the initial greedy policy "stay" everywhere: improper with -inf values.
    sol = jaxmdp.solve(mdp, jaxmdp.PolicyIteration(), values0=np.array([0.0, -9, -9, -9]))
    assert int(sol.status) == jaxmdp.Status.SUCCESS
    np.testing.assert_allclose(np.asarray(sol.values), [0.0, 0.5, 1.0, 0.0])
    assert int(sol.num_iters) >= 2


def test_divergent_values_report_status_instead_of_hanging():
    P, R = _chain(+0.5)  # staying forever accumulates reward: no finite optimum
    mdp = jaxmdp.make_mdp(P, R, 1.0)
    vi = jaxmdp.solve(mdp, jaxmdp.ValueIteration(1e-6), max_iters=200)
    assert int(vi.status) == jaxmdp.Status.MAX_ITERATIONS
    assert int(vi.num_iters) == 200
    pi = jaxmdp.solve(mdp, jaxmdp.PolicyIteration(), max_iters=50)
    assert int(pi.status) == jaxmdp.Status.UNBOUNDED
    with pytest.raises(jaxmdp.ConvergenceError, match="UNBOUNDED"):
        jaxmdp.check(pi)


@pytest.mark.programs
def test_mixed_batch_of_discounts_including_one():
    P, R = _chain(-0.5)
    S = len(P)
    g = np.array([0.5, 0.9, 1.0])
    sol = jaxmdp.solve(jaxmdp.MDP(P, R, g), jaxmdp.PolicyIteration())
    jaxmdp.check(sol)
    for i, gi in enumerate(g):
        one = jaxmdp.solve(jaxmdp.MDP(P, R, gi), jaxmdp.PolicyIteration())
        np.testing.assert_array_equal(sol.policy[i], one.policy)  # no ties on this chain
        # Batch and single solve are different programs. At discount 1 the evaluation of a
        # proper policy amplifies rounding by at most its steps to the exit (< S here).
        vmax = np.abs(np.asarray(one.values)).max()
        allow = rounding_allowance(np.float64, S, vmax, gi, num_iters=S)
        np.testing.assert_allclose(np.asarray(sol.values[i]), np.asarray(one.values), atol=allow)


def test_discount_one_under_user_jit_with_traced_discount():
    P, R = _chain(-0.5)

    @jax.jit
    def f(g):
        return jaxmdp.solve(jaxmdp.MDP(P, R, g), jaxmdp.PolicyIteration()).values

    np.testing.assert_allclose(np.asarray(f(1.0)), [0.0, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(np.asarray(f(0.5))[-2], 1.0)
