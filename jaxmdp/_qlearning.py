"""Tabular Q-learning (Watkins 1989) on ONE model MDP, sampling its transitions.

The agent sees only sampled transitions `(s, a, r(s, a), s')` with `s' ~ p(. | s, a)`; the
model serves as a simulator. One run is one `lax.scan` of `num_steps` steps, so many
independent runs (seeds, learning rates, exploration rates, MDPs of a sweep) execute as one
vmapped program. `q_learning_batch` covers seeds x hyperparameters on one MDP; for other
batches vmap `q_learning` through a lambda (keyword arguments to a vmapped function are
always mapped, so close over the unmapped ones):

    run = lambda k, lr: q_learning(k, mdp, num_steps=5000, learning_rate=lr, epsilon=0.2)
    result = jax.vmap(run)(jax.random.split(key, 8), learning_rates)       # fields [8, ...]

    # a reward sweep sharing transitions: one seed per member
    run = lambda k, m: q_learning(k, m, num_steps=5000)
    jax.vmap(run, in_axes=(0, MDP(None, 0, None)))(keys, mdp_sweep)

Each step:

- Exploration: epsilon-greedy over the available actions (finite reward). With probability
  `epsilon` a uniformly random available action; otherwise a greedy one, ties broken
  uniformly at random (so an all-zero initial Q does not favour action 0).
- Update: `Q(s, a) += alpha_n (r(s, a) + gamma max_a' Q(s', a') - Q(s, a))`.
- Learning rate: `alpha_n = learning_rate / n(s, a) ** learning_rate_power`, where
  `n(s, a) >= 1` counts the updates of `(s, a)` including this one. Power 0 (the default)
  is a constant rate; powers in (0.5, 1] satisfy the Robbins-Monro conditions under which
  Q-learning converges to Q* with probability 1 when every pair is visited infinitely often
  (Even-Dar & Mansour 2003 recommend w around 0.8 over w = 1, which is slow for gamma
  near 1).
- Episode resets: the next state is redrawn from the initial distribution (a) after a step
  taken from an absorbing state, i.e. one where every available action returns to the
  state with probability 1 (that last transition is learned from, so Q there is learned
  too: 0 for the zero-reward exits of episodic problems), and (b) after `episode_length`
  steps of the current episode, if given. Without either, the agent follows one long
  trajectory, which suits communicating MDPs.

Unavailable actions (reward `-inf`) keep `Q = -inf`, as in `jaxmdp.solve`'s q_values.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _operators
from jaxmdp._mdp import MDP
from jaxmdp._simulate import sample_initial_state


class QLearningResult(NamedTuple):
    """What `q_learning` returns (`q_learning_batch` adds a leading axis `[N]` to every field).

    Attributes:
      q_values: `[S, A]` learned Q; `-inf` for unavailable actions.
      visits: `[S, A]` int32 number of updates of each pair (0: never tried, Q is the
        initial value).
      num_episodes: `[]` int32 episodes started, the first included.
    """

    q_values: jax.Array
    visits: jax.Array
    num_episodes: jax.Array


def absorbing_states(mdp: MDP) -> jax.Array:
    """`[S]` bool: every available action leads back to the state with probability 1.

    "Probability 1" allows a few float roundings (`p >= 1 - 16 eps`).
    """
    stay = _operators.stay_probability(mdp.transitions)  # [S, A] p(s | s, a)
    eps = jnp.finfo(jnp.result_type(stay.dtype, float)).eps
    available = jnp.isfinite(jnp.asarray(mdp.rewards))
    return jnp.all((stay >= 1 - 16 * eps) | ~available, axis=-1)


def _random_among(key, mask):
    """Uniformly random index among the True entries of a bool `[A]` mask."""
    return jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf)).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("num_steps",))
def q_learning(
    key,
    mdp: MDP,
    *,
    num_steps: int,
    learning_rate=0.1,
    epsilon=0.1,
    learning_rate_power=0.0,
    initial_distribution=None,
    episode_length=None,
    initial_q=None,
) -> QLearningResult:
    """Runs tabular Q-learning for `num_steps` sampled transitions (see the module docstring).

    Args:
      key: a `jax.random` key.
      mdp: one MDP, used as the simulator.
      num_steps: static number of transitions (= updates).
      learning_rate: `[]` base rate `alpha_0` (may be traced / vmapped).
      epsilon: `[]` exploration probability in [0, 1] (may be traced / vmapped).
      learning_rate_power: `[]` w in `alpha_n = alpha_0 / n(s, a) ** w`; 0 = constant.
      initial_distribution: `[S]` probabilities or a scalar integer state, for the first
        state and every reset; uniform over all states by default.
      episode_length: optional `[]` int: reset after this many steps of an episode (may be
        traced). `None`: reset only after absorbing states.
      initial_q: optional `[S, A]` start Q (zeros by default; unavailable actions are
        forced to `-inf`).

    Returns:
      `QLearningResult(q_values [S, A], visits [S, A], num_episodes [])`.
    """
    S, A = mdp.num_states, mdp.num_actions
    dtype = jnp.result_type(mdp.rewards, mdp.discount)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    rewards = jnp.asarray(mdp.rewards, dtype)
    g = jnp.asarray(mdp.discount, dtype)
    next_state = _operators.sampler(mdp.transitions)
    available = jnp.isfinite(rewards)
    absorbing = absorbing_states(mdp)
    lr = jnp.asarray(learning_rate, dtype)
    eps = jnp.asarray(epsilon, dtype)
    power = jnp.asarray(learning_rate_power, dtype)
    if initial_distribution is None:
        initial_distribution = jnp.full((S,), 1.0 / S, dtype)
    q = jnp.zeros((S, A), dtype) if initial_q is None else jnp.asarray(initial_q, dtype)
    if q.shape != (S, A):
        raise ValueError(f"initial_q must have shape [S, A] = [{S}, {A}]; got {q.shape}.")
    q = jnp.where(available, q, -jnp.inf)

    k0, k_steps = jax.random.split(key)
    s0 = sample_initial_state(k0, initial_distribution, S)

    def body(carry, k):
        q, n, s, t, episodes = carry
        k_explore, k_random, k_greedy, k_next, k_reset = jax.random.split(k, 5)
        explore = jax.random.uniform(k_explore, (), dtype) < eps
        q_s = q[s]
        greedy = _random_among(k_greedy, available[s] & (q_s == jnp.max(q_s)))
        a = jnp.where(explore, _random_among(k_random, available[s]), greedy)
        s2 = next_state(k_next, s, a)
        count = n[s, a] + 1
        alpha = lr / count.astype(dtype) ** power
        target = rewards[s, a] + g * jnp.max(q[s2])
        q = q.at[s, a].add(alpha * (target - q_s[a]))
        n = n.at[s, a].set(count)
        t = t + 1
        reset = absorbing[s]
        if episode_length is not None:
            reset = reset | (t >= episode_length)
        s_next = jnp.where(reset, sample_initial_state(k_reset, initial_distribution, S), s2)
        t = jnp.where(reset, 0, t)
        return (q, n, s_next, t, episodes + reset.astype(jnp.int32)), None

    init = (q, jnp.zeros((S, A), jnp.int32), s0, jnp.int32(0), jnp.int32(1))
    (q, n, _, _, episodes), _ = lax.scan(body, init, jax.random.split(k_steps, num_steps))
    return QLearningResult(q, n, episodes)


@functools.partial(jax.jit, static_argnames=("num_steps",))
def q_learning_batch(
    keys,
    mdp: MDP,
    *,
    num_steps: int,
    learning_rate=0.1,
    epsilon=0.1,
    learning_rate_power=0.0,
    initial_distribution=None,
    episode_length=None,
    initial_q=None,
) -> QLearningResult:
    """`N` independent Q-learning runs on one MDP, in one vmapped program.

    Args:
      keys: `[N]` keys (`jax.random.split(key, N)`; raw `[N, 2]` uint32 keys work too).
      mdp: one MDP, shared by all runs.
      num_steps: static number of transitions per run.
      learning_rate: `[]` or `[N]` base rates.
      epsilon: `[]` or `[N]` exploration probabilities.
      learning_rate_power: `[]` or `[N]` powers w.
      initial_distribution: shared; as in `q_learning`.
      episode_length: shared; as in `q_learning`.
      initial_q: shared; as in `q_learning`.

    Returns:
      `QLearningResult` with `q_values [N, S, A]`, `visits [N, S, A]`, `num_episodes [N]`.
    """
    n = jnp.shape(keys)[0]

    def per_run(x):
        return jnp.broadcast_to(jnp.asarray(x), (n,))

    def run(key, lr, eps, power):
        return q_learning(
            key,
            mdp,
            num_steps=num_steps,
            learning_rate=lr,
            epsilon=eps,
            learning_rate_power=power,
            initial_distribution=initial_distribution,
            episode_length=episode_length,
            initial_q=initial_q,
        )

    return jax.vmap(run)(
        keys, per_run(learning_rate), per_run(epsilon), per_run(learning_rate_power)
    )
