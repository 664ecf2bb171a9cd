"""Tests for jaxmdp.models.from_gymnasium: table conversion, termination, and agreement with
an independent solve of the same `P` dict and with Monte Carlo rollouts in the real env."""

import math
import sys

import jax
import numpy as np
import pytest

import jaxmdp
from jaxmdp.models import GymnasiumInfo, from_gymnasium

gymnasium = pytest.importorskip("gymnasium")


def test_duplicates_and_terminated_transitions():
    P = {
        0: {
            # state 1 twice: probabilities add, rewards average by probability
            0: [(0.25, 1, 2.0, False), (0.5, 1, 4.0, False), (0.25, 0, -1.0, False)],
            1: [(0.6, 2, 10.0, True), (0.4, 1, 0.0, False)],  # 2 is not absorbing in P
        },
        1: {0: [(1.0, 3, 1.0, True)], 1: [(1.0, 0, 0.0, False)]},  # 3 is absorbing in P
        2: {0: [(1.0, 0, -5.0, False)], 1: [(1.0, 2, 0.0, False)]},
        3: {0: [(1.0, 3, 0.0, True)], 1: [(1.0, 3, 0.0, True)]},
    }
    with jax.enable_x64(True):
        mdp, info = from_gymnasium(P, 0.9, return_info=True)
    assert info == GymnasiumInfo(num_env_states=4, absorbing_state=4)
    T, R = np.asarray(mdp.transitions), np.asarray(mdp.rewards)
    assert T.shape == (5, 2, 5) and R.shape == (5, 2)
    np.testing.assert_allclose(T[0, 0], [0.25, 0.75, 0, 0, 0])
    assert R[0, 0] == pytest.approx(0.25 * 2 + 0.5 * 4 - 0.25)
    np.testing.assert_allclose(T[0, 1], [0, 0.4, 0, 0, 0.6])  # terminated -> absorbing state
    assert R[0, 1] == pytest.approx(6.0)
    np.testing.assert_allclose(T[1, 0], [0, 0, 0, 1, 0])  # already absorbing: kept
    np.testing.assert_allclose(T[2, 0], [1, 0, 0, 0, 0])  # state 2's own moves stay as in P
    np.testing.assert_allclose(T[4], np.eye(5)[[4, 4]])
    np.testing.assert_array_equal(R[4], 0.0)
    jaxmdp.validate_mdp(mdp)


def test_missing_action_is_unavailable():
    P = {0: {0: [(1.0, 1, 1.0, False)], 1: [(1.0, 0, 0.0, False)]}, 1: {0: [(1.0, 1, 0.0, False)]}}
    mdp = from_gymnasium(P, 0.5)
    assert np.isneginf(mdp.rewards[1, 1]) and mdp.transitions[1, 1, 1] == 1.0
    jaxmdp.validate_mdp(mdp)


def test_frozen_lake_goal_reward_counted_once():
    env = gymnasium.make("FrozenLake-v1", is_slippery=False)
    # float64: the policy iteration program of FrozenLake's shape is then the one the
    # rollout test below uses (float32 conversion is checked in the test above).
    with jax.enable_x64(True):
        mdp, info = from_gymnasium(env, 0.9, return_info=True)
        sol = jaxmdp.check(jaxmdp.solve(mdp, jaxmdp.PolicyIteration()))
        # The same MDP from the environment id.
        by_id = from_gymnasium("FrozenLake-v1", 0.9, make_kwargs=dict(is_slippery=False))
    # Holes and goal are absorbing with zero reward in P already: no extra state.
    assert info == GymnasiumInfo(16, None) and mdp.num_states == 16
    rewards = np.asarray(mdp.rewards)
    assert rewards[14, 2] == 1.0  # right from 14 enters the goal
    np.testing.assert_array_equal(rewards[15], 0.0)
    np.testing.assert_allclose(np.asarray(sol.values)[[15, 14, 10]], [0.0, 1.0, 0.9], rtol=1e-6)
    for x, y in zip(mdp, by_id, strict=True):
        np.testing.assert_array_equal(x, y)


def test_missing_gymnasium_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # makes `import gymnasium` fail
    with pytest.raises(ImportError, match=r"jaxmdp-solver\[gym\]"):
        from_gymnasium("FrozenLake-v1", 0.9)


def _dict_values(P, gamma, tol=1e-11):
    """Independent optimal values straight from the P dict: Bellman iteration where a
    terminated transition pays its reward and contributes no future value."""
    rows = np.array(
        [
            (s, a, prob, nxt, rew, float(term))
            for s, by_action in P.items()
            for a, outcomes in by_action.items()
            for prob, nxt, rew, term in outcomes
        ]
    )
    s, a, prob, nxt, rew, term = rows.T
    num_actions = int(a.max()) + 1
    pair, nxt = (s * num_actions + a).astype(int), nxt.astype(int)
    values = np.zeros(len(P))
    while True:
        contrib = prob * (rew + gamma * (1.0 - term) * values[nxt])
        q = np.bincount(pair, contrib, minlength=len(P) * num_actions)
        new = q.reshape(len(P), num_actions).max(axis=1)
        if np.abs(new - values).max() < tol:
            return new
        values = new


def _rollouts(env, policy, gamma, episodes, seed):
    """Discounted returns of `policy` over `episodes` episodes of the real environment."""
    returns = np.empty(episodes)
    env.reset(seed=seed)
    for i in range(episodes):
        state, _ = env.reset()
        total, weight, done = 0.0, 1.0, False
        while not done:
            state, reward, terminated, truncated, _ = env.step(int(policy[state]))
            total += weight * reward
            weight *= gamma
            done = terminated or truncated
        returns[i] = total
    return returns


# (env id, make kwargs, discount, episodes). The time limit is raised to 1000 steps so that
# truncation costs at most gamma**1000 * max|V| (< 1e-3 below): the MDP has no time limit.
# The episodes (Python steps of the real env, most of these tests' time) only set the
# stderr; the 4-stderr bound keeps a false failure at about 6e-5 per env (normal
# approximation) at any count. Standard errors with these counts: about 0.01, 0.01, 0,
# 0.005 and 0.09 (the exact check against the P dict is the precise one).
ENVS = [
    ("FrozenLake-v1", dict(is_slippery=True), 0.99, 1000),
    ("FrozenLake8x8-v1", dict(is_slippery=True), 0.99, 500),
    ("CliffWalking-v1", dict(), 0.99, 20),  # deterministic: every return is the same
    ("CliffWalking-v1", dict(is_slippery=True), 0.9, 500),
    ("Taxi-v4", dict(), 0.99, 1000),  # deterministic, random start among 300 states
]


@pytest.mark.parametrize("env_id, make_kwargs, gamma, episodes", ENVS)
def test_values_match_dict_solve_and_rollouts(env_id, make_kwargs, gamma, episodes):
    env = gymnasium.make(env_id, max_episode_steps=1000, **make_kwargs)
    table = env.unwrapped.P
    with jax.enable_x64(True):
        mdp, info = from_gymnasium(env, gamma, return_info=True)
        jaxmdp.validate_mdp(mdp)
        sol = jaxmdp.check(jaxmdp.solve(mdp, jaxmdp.PolicyIteration()))
    n = info.num_env_states
    assert n == len(table) == env.observation_space.n
    if env_id.startswith("FrozenLake"):
        assert info.absorbing_state is None and mdp.num_states == n
    else:  # goals have ordinary moves in P; termination is a flag on the way in
        assert info.absorbing_state == n and mdp.num_states == n + 1
        assert float(sol.values[n]) == 0.0

    np.testing.assert_allclose(sol.values[:n], _dict_values(table, gamma), rtol=1e-8, atol=1e-8)

    start_value = float(env.unwrapped.initial_state_distrib @ np.asarray(sol.values[:n]))
    returns = _rollouts(env, np.asarray(sol.policy), gamma, episodes, seed=12345)
    stderr = returns.std(ddof=1) / math.sqrt(episodes)
    assert abs(returns.mean() - start_value) <= 4 * stderr + 1e-6 * (1 + abs(start_value)), (
        returns.mean(),
        start_value,
        stderr,
    )
