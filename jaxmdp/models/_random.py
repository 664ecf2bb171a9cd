"""Random MDPs: dense Dirichlet transitions, or Garnet-style sparse ones.

Everything is drawn from one `jax.random` key, so an instance is reproducible from its key
and a batch is `jax.vmap(lambda k: random_mdp(k, S, A))(jax.random.split(key, B))`. Sizes
are static Python ints; `concentration`, `reward_range` and `discount` may be traced.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxmdp._mdp import MDP

_KINDS = ("dense", "garnet")


def random_mdp(
    key: jax.Array,
    num_states: int,
    num_actions: int,
    *,
    kind: str = "dense",
    num_successors: int | None = None,
    concentration=1.0,
    reward_range=(0.0, 1.0),
    discount=0.95,
) -> MDP:
    """Draws a random MDP.

    `kind="dense"`: every row p(. | s, a) is Dirichlet(concentration * 1_S), so every
    next state has positive probability (with `concentration=1`, uniform on the simplex;
    small concentrations give peaked rows).

    `kind="garnet"` (Archibald, McKinnon & Thomas 1995; "Generalized Average Reward
    Non-stationary Environment Testbed" as used by Bhatnagar et al. 2009): every (s, a) has
    exactly `num_successors` distinct next states, chosen uniformly without replacement,
    with probabilities Dirichlet(concentration * 1_k) (for `concentration=1` the same law as
    Garnet's k - 1 uniform cut points of [0, 1]).

    Rewards r(s, a) are uniform on `reward_range` in both kinds.

    Args:
      key: a `jax.random` key.
      num_states: S (static).
      num_actions: A (static).
      kind: `"dense"` or `"garnet"`.
      num_successors: Garnet branching factor k in [1, S] (static); default
        `ceil(sqrt(S))`. Not allowed with `kind="dense"`.
      concentration: Dirichlet concentration (> 0).
      reward_range: `(low, high)` of the uniform rewards.
      discount: gamma.

    Returns:
      `MDP` with `transitions [S, A, S]`, `rewards [S, A]`, `discount []`, in JAX's default
      float dtype.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}; got {kind!r}.")
    num_states, num_actions = int(num_states), int(num_actions)
    if num_states < 1 or num_actions < 1:
        raise ValueError(
            f"num_states and num_actions must be >= 1; got {num_states}, {num_actions}."
        )
    dtype = jnp.result_type(float)
    key_p, key_succ, key_r = jax.random.split(key, 3)
    if kind == "dense":
        if num_successors is not None:
            raise ValueError("num_successors applies to kind='garnet' only.")
        alpha = jnp.full((num_states,), concentration, dtype)
        transitions = jax.random.dirichlet(key_p, alpha, (num_states, num_actions), dtype)
    else:
        k = math.ceil(math.sqrt(num_states)) if num_successors is None else int(num_successors)
        if not 1 <= k <= num_states:
            raise ValueError(f"num_successors must be in [1, {num_states}]; got {k}.")
        probs = jax.random.dirichlet(
            key_p, jnp.full((k,), concentration, dtype), (num_states, num_actions), dtype
        )
        states = jnp.broadcast_to(jnp.arange(num_states), (num_states, num_actions, num_states))
        # The first k entries of an independent random permutation per (s, a): k distinct
        # successors, uniformly chosen.
        successors = jax.random.permutation(key_succ, states, axis=-1, independent=True)[..., :k]
        s_idx = jnp.arange(num_states)[:, None, None]
        a_idx = jnp.arange(num_actions)[None, :, None]
        transitions = (
            jnp.zeros((num_states, num_actions, num_states), dtype)
            .at[s_idx, a_idx, successors]
            .set(probs)
        )
    low, high = reward_range
    rewards = jax.random.uniform(
        key_r,
        (num_states, num_actions),
        dtype,
        minval=jnp.asarray(low, dtype),
        maxval=jnp.asarray(high, dtype),
    )
    return MDP(transitions, rewards, jnp.asarray(discount, dtype))
