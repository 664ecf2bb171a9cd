"""Small textbook MDPs with published solutions.

`forest` and `small` reproduce pymdptoolbox's `mdptoolbox.example.forest` / `small`
exactly (same dynamics, rewards and defaults; pymdptoolbox's examples carry no discount, so
the default here is the one its own docstrings solve them with). `puterman_two_state` is
Puterman (2005) Example 3.1.1 / 6.2.1, as in QuantEcon's `test_ddp.py`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmdp._mdp import MDP
from jaxmdp._validate import check_int, check_real

WAIT, CUT = 0, 1


def _float_dtype():
    return jnp.result_type(float)  # float32, or float64 under jax_enable_x64


def _lift(x: np.ndarray, ndim: int) -> np.ndarray:
    """`x` with `ndim` leading unit axes: explicit broadcasting against batched parameters,
    so the builders also run under `jax_numpy_rank_promotion="raise"`."""
    return x.reshape((1,) * ndim + x.shape)


def forest(S: int = 3, r1=4.0, r2=2.0, p=0.1, *, discount=0.96) -> MDP:
    """pymdptoolbox's forest-management problem (`mdptoolbox.example.forest`).

    States 0..S-1 are forest ages (S-1 the oldest). Action `WAIT` (0): with probability p a
    fire resets the forest to state 0, otherwise it ages by one (the oldest state stays);
    it pays `r1` in the oldest state, else 0. Action `CUT` (1): back to state 0 for sure;
    it pays 0 in state 0, `r2` in the oldest state and 1 elsewhere.

    Args:
      S: number of states (static, > 1).
      r1: `[...]` reward for waiting in the oldest state (> 0 in pymdptoolbox).
      r2: `[...]` reward for cutting in the oldest state (> 0 in pymdptoolbox).
      p: `[...]` yearly fire probability in [0, 1].
      discount: `[...]` gamma; 0.96 is the discount of pymdptoolbox's `ValueIteration`
        docstring example on this problem.

    Returns:
      `MDP` with `transitions [..., S, 2, S]` and `rewards [..., S, 2]`.
    """
    S = check_int("S", S, low=2)
    check_real("p", p, low=0.0, high=1.0)
    check_real("r1", r1)
    check_real("r2", r2)
    check_real("discount", discount, low=0.0, high=1.0)
    dtype = _float_dtype()
    p = jnp.asarray(p, dtype)
    r1, r2 = jnp.asarray(r1, dtype), jnp.asarray(r2, dtype)
    fire = np.zeros((S, S), dtype)
    fire[:, 0] = 1
    grow = np.eye(S, k=1, dtype=dtype)
    grow[S - 1, S - 1] = 1
    oldest = np.zeros(S, dtype)
    oldest[S - 1] = 1
    middle = np.ones(S, dtype)
    middle[[0, S - 1]] = 0
    chance = p[..., None, None]
    wait = chance * _lift(fire, p.ndim) + (1 - chance) * _lift(grow, p.ndim)  # [..., S, S]
    cut = jnp.broadcast_to(fire, wait.shape)
    transitions = jnp.stack([wait, cut], axis=-2)  # [..., S, 2, S]
    batch = np.broadcast_shapes(r1.shape, r2.shape)
    r1 = jnp.broadcast_to(r1, batch)[..., None]
    r2 = jnp.broadcast_to(r2, batch)[..., None]
    wait_reward = r1 * _lift(oldest, len(batch))
    cut_reward = r2 * _lift(oldest, len(batch)) + _lift(middle, len(batch))
    rewards = jnp.stack([wait_reward, cut_reward], axis=-1)
    return MDP(transitions, rewards, jnp.asarray(discount, dtype))


def small(*, discount=0.9) -> MDP:
    """pymdptoolbox's two-state, two-action example (`mdptoolbox.example.small`).

    p(. | s, 0) = [[0.5, 0.5], [0.8, 0.2]], p(. | s, 1) = [[0, 1], [0.1, 0.9]] (rows s),
    r = [[5, 10], [-1, 2]] (rows s, columns a).

    Args:
      discount: `[...]` gamma; 0.9 as in pymdptoolbox's docstrings, where value iteration
        gives V = (40.0486..., 33.6537...) and policy (1, 0).

    Returns:
      `MDP` with `transitions [2, 2, 2]`, `rewards [2, 2]`.
    """
    check_real("discount", discount, low=0.0, high=1.0)
    dtype = _float_dtype()
    by_action = np.array([[[0.5, 0.5], [0.8, 0.2]], [[0.0, 1.0], [0.1, 0.9]]])  # [A, S, S]
    transitions = jnp.asarray(by_action.transpose(1, 0, 2), dtype)
    rewards = jnp.asarray([[5.0, 10.0], [-1.0, 2.0]], dtype)
    return MDP(transitions, rewards, jnp.asarray(discount, dtype))


def puterman_two_state(discount=0.95) -> MDP:
    """Puterman (2005) Example 3.1.1, solved in Example 6.2.1 (QuantEcon's `test_ddp.py`).

    State 0 has two actions: action 0 pays 5 and stays or moves to state 1 with
    probability 1/2 each; action 1 pays 10 and moves to state 1. State 1 has one action
    (action 1 is unavailable: reward `-inf`, kept as a self-loop): it pays -1 and stays.

    Closed form: v*(1) = -1 / (1 - gamma), and
    v*(0) = max((5 - 5.5 gamma) / ((1 - 0.5 gamma)(1 - gamma)), 10 - gamma / (1 - gamma)),
    the first branch (action 0) winning for gamma > 10/11.

    Args:
      discount: `[...]` gamma (0.95 in QuantEcon's test).

    Returns:
      `MDP` with `transitions [2, 2, 2]`, `rewards [2, 2]`.
    """
    check_real("discount", discount, low=0.0, high=1.0)
    dtype = _float_dtype()
    transitions = jnp.asarray([[[0.5, 0.5], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]], dtype)
    rewards = jnp.asarray([[5.0, 10.0], [-1.0, -jnp.inf]], dtype)
    return MDP(transitions, rewards, jnp.asarray(discount, dtype))
