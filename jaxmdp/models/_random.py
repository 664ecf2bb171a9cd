"""Random MDPs: dense Dirichlet transitions, or Garnet-style sparse ones.

Everything is drawn from one `jax.random` key, so an instance is reproducible from its key
and a batch is `jax.vmap(lambda k: random_mdp(k, S, A))(jax.random.split(key, B))`. Sizes
are static Python ints; `concentration`, `reward_range` and `discount` may be traced.
"""

from __future__ import annotations

import functools
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
      concentration: Dirichlet concentration (> 0). Below about 0.1 rows get so peaked
        that some probabilities underflow to exactly 0 (fewer successors in practice).
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
    if kind == "dense":
        if num_successors is not None:
            raise ValueError("num_successors applies to kind='garnet' only.")
        k = num_states
    else:
        k = math.ceil(math.sqrt(num_states)) if num_successors is None else int(num_successors)
        if not 1 <= k <= num_states:
            raise ValueError(f"num_successors must be in [1, {num_states}]; got {k}.")
    low, high = reward_range
    # k goes in as data, not as a static argument: both kinds share one compiled sampler.
    return _random_mdp(key, num_states, num_actions, k, concentration, low, high, discount)


# Jitted as a whole: compiling the gamma sampler is the expensive part, and eager dispatch
# would recompile pieces of it op by op.
@functools.partial(jax.jit, static_argnums=(1, 2))
def _random_mdp(key, num_states, num_actions, k, concentration, low, high, discount) -> MDP:
    """`random_mdp` after argument checks: k successors per (s, a), k = S for dense."""
    dtype = jnp.result_type(float)
    shape = (num_states, num_actions, num_states)
    key_p, key_succ, key_r = jax.random.split(key, 3)
    # Successors: the k states whose iid uniform noise ranks highest, a uniformly random
    # k-subset. Probabilities: normalised Gamma(concentration) draws on that subset, i.e.
    # Dirichlet(concentration * 1_k), done in log space as `jax.random.dirichlet` does so
    # small concentrations do not underflow to 0 / 0.
    rank = jnp.argsort(jnp.argsort(-jax.random.uniform(key_succ, shape), axis=-1), axis=-1)
    log_gamma = jax.random.loggamma(key_p, jnp.asarray(concentration, dtype), shape, dtype)
    transitions = jax.nn.softmax(jnp.where(rank < k, log_gamma, -jnp.inf), axis=-1)
    rewards = jax.random.uniform(
        key_r,
        (num_states, num_actions),
        dtype,
        minval=jnp.asarray(low, dtype),
        maxval=jnp.asarray(high, dtype),
    )
    return MDP(transitions, rewards, jnp.asarray(discount, dtype))
