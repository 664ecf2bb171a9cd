"""Simulating a policy on ONE MDP with `jax.random`: trajectories and Monte Carlo values.

Dynamics: `s_0 ~ mu`, `a_t ~ pi(. | s_t)` (or `a_t = pi(s_t)`), `s_{t+1} ~ p(. | s_t, a_t)`,
and the reward recorded for step t is the expected reward `r_t = r(s_t, a_t)` (the MDP
stores only the mean reward, which is all that values depend on). There are no episode
ends: an absorbing state simply repeats, with whatever reward it has (0 in episodic
problems), for the remaining steps.

Policies are `[S]` integer actions or `[S, A]` probabilities (as in `jaxmdp.policy_values`).
The initial distribution is `[S]` probabilities or a scalar integer start state.

Batching: `rollouts` / `monte_carlo_value` vmap over keys. For anything else (policies,
MDPs of a sweep, initial states) vmap the single-MDP functions, e.g. many start states:

    keys = jax.random.split(key, S)
    jax.vmap(rollout, in_axes=(0, None, None, 0, None))(keys, mdp, pi, jnp.arange(S), T)

(`num_steps` is static: pass it positionally with `in_axes=None`, as here, or close over
it with `functools.partial`; keyword arguments to a vmapped function are always mapped.)
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _operators
from jaxmdp._analysis import initial_distribution_vector, is_stochastic
from jaxmdp._mdp import MDP
from jaxmdp._typing import PolicyLike, StartLike


class Trajectory(NamedTuple):
    """One trajectory (or a batch: `rollouts` adds a leading axis `[N]` to every field).

    Time is the last axis. Step t goes from `states[t]` with `actions[t]` to
    `states[t + 1]` and earns `rewards[t]`.

    Attributes:
      states: `[..., T + 1]` int32 `s_0, ..., s_T`.
      actions: `[..., T]` int32 `a_0, ..., a_{T-1}`.
      rewards: `[..., T]` float `r(s_t, a_t)`.
    """

    states: jax.Array
    actions: jax.Array
    rewards: jax.Array


class MonteCarloEstimate(NamedTuple):
    """Sample mean of the discounted return and its standard error.

    Attributes:
      mean: `[]` mean over rollouts of `sum_{t<T} gamma^t r_t`.
      stderr: `[]` `std(returns, ddof=1) / sqrt(N)`: the sampling error of `mean` only (the
        truncation bias of a finite horizon is not included; see `monte_carlo_value`).
    """

    mean: jax.Array
    stderr: jax.Array


def _log(p):
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


def sample_initial_state(key, initial_distribution, num_states: int) -> jax.Array:
    """`[]` int32 start state: the given integer, or a draw from `[S]` probabilities."""
    init = jnp.asarray(initial_distribution)
    if jnp.issubdtype(init.dtype, jnp.integer) and init.ndim == 0:
        return init.astype(jnp.int32)
    mu = initial_distribution_vector(init, num_states, init.dtype)
    return jax.random.categorical(key, _log(mu)).astype(jnp.int32)


def _step_fn(mdp: MDP, policy):
    """`(key, s) -> (a, r, s')` for one MDP and policy."""
    stochastic = is_stochastic(mdp, policy)
    next_state = _operators.sampler(mdp.transitions)
    log_pi = _log(jnp.asarray(policy)) if stochastic else None
    rewards = jnp.asarray(mdp.rewards)

    def step(key, s):
        k_a, k_s = jax.random.split(key)
        if stochastic:
            a = jax.random.categorical(k_a, log_pi[s]).astype(jnp.int32)
        else:
            a = jnp.asarray(policy)[s].astype(jnp.int32)
        return a, rewards[s, a], next_state(k_s, s, a)

    return step


@functools.partial(jax.jit, static_argnames=("num_steps",))
def rollout(
    key, mdp: MDP, policy: PolicyLike, initial_distribution: StartLike, num_steps: int
) -> Trajectory:
    """Simulates one trajectory of `num_steps` steps.

    Args:
      key: a `jax.random` key.
      mdp: one MDP.
      policy: `[S]` int actions or `[S, A]` probabilities.
      initial_distribution: `[S]` probabilities, or a scalar integer start state.
      num_steps: static horizon T.

    Returns:
      `Trajectory` with `states [T + 1]`, `actions [T]`, `rewards [T]`.
    """
    step = _step_fn(mdp, policy)
    k0, k_steps = jax.random.split(key)
    s0 = sample_initial_state(k0, initial_distribution, mdp.num_states)

    def body(s, k):
        a, r, s2 = step(k, s)
        return s2, (s2, a, r)

    _, (nxt, actions, rewards) = lax.scan(body, s0, jax.random.split(k_steps, num_steps))
    states = jnp.concatenate([s0[None], nxt])
    return Trajectory(states, actions, rewards)


@functools.partial(jax.jit, static_argnames=("num_steps", "num_rollouts"))
def rollouts(
    key,
    mdp: MDP,
    policy: PolicyLike,
    initial_distribution: StartLike,
    num_steps: int,
    num_rollouts: int,
) -> Trajectory:
    """`num_rollouts` independent trajectories (`rollout` vmapped over split keys).

    Args:
      key: a `jax.random` key (split into `num_rollouts` keys).
      mdp: one MDP.
      policy: `[S]` int actions or `[S, A]` probabilities.
      initial_distribution: `[S]` probabilities, or a scalar integer start state.
      num_steps: static horizon T.
      num_rollouts: static N.

    Returns:
      `Trajectory` with `states [N, T + 1]`, `actions [N, T]`, `rewards [N, T]`.
    """
    keys = jax.random.split(key, num_rollouts)
    return jax.vmap(rollout, in_axes=(0, None, None, None, None))(
        keys, mdp, policy, initial_distribution, num_steps
    )


def _discounted_return(key, mdp: MDP, policy, initial_distribution, num_steps: int):
    """`sum_{t<T} gamma^t r_t` of one simulated trajectory, without storing it."""
    step = _step_fn(mdp, policy)
    k0, k_steps = jax.random.split(key)
    s0 = sample_initial_state(k0, initial_distribution, mdp.num_states)
    dtype = jnp.result_type(mdp.rewards, mdp.discount)
    g = jnp.asarray(mdp.discount, dtype)

    def body(carry, k):
        s, ret, weight = carry
        a, r, s2 = step(k, s)
        return (s2, ret + weight * r, weight * g), None

    init = (s0, jnp.zeros((), dtype), jnp.ones((), dtype))
    (_, ret, _), _ = lax.scan(body, init, jax.random.split(k_steps, num_steps))
    return ret


@functools.partial(jax.jit, static_argnames=("num_steps", "num_rollouts"))
def monte_carlo_value(
    key,
    mdp: MDP,
    policy: PolicyLike,
    initial_distribution: StartLike,
    num_steps: int,
    num_rollouts: int,
) -> MonteCarloEstimate:
    """Monte Carlo estimate of `E[sum_{t<T} gamma^t r_t]`, i.e. of `mu . V^pi` as `T -> inf`.

    Truncation: with rewards bounded by `r_max` and `gamma < 1`, the finite horizon biases
    the estimate by at most `gamma^T r_max / (1 - gamma)`; choose T so that this is well
    below `stderr`. At `gamma = 1` the horizon must outlast the episodes (absorbing states
    with reward 0 then contribute nothing). Returns are accumulated in the scan; no
    `[N, T]` array is stored.

    Args:
      key: a `jax.random` key (split into `num_rollouts` keys).
      mdp: one MDP.
      policy: `[S]` int actions or `[S, A]` probabilities.
      initial_distribution: `[S]` probabilities, or a scalar integer start state.
      num_steps: static horizon T.
      num_rollouts: static N (at least 2 for a standard error).

    Returns:
      `MonteCarloEstimate(mean [], stderr [])`.
    """
    keys = jax.random.split(key, num_rollouts)
    returns = jax.vmap(_discounted_return, in_axes=(0, None, None, None, None))(
        keys, mdp, policy, initial_distribution, num_steps
    )
    mean = jnp.mean(returns)
    stderr = jnp.std(returns, ddof=1) / jnp.sqrt(jnp.asarray(num_rollouts, returns.dtype))
    return MonteCarloEstimate(mean, stderr)
