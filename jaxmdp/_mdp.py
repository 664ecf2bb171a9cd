"""The MDP pytree and its shape conventions.

Throughout the library ``S`` is the number of states and ``A`` the number of actions.

| field         | shape            | meaning                                            |
|---------------|------------------|----------------------------------------------------|
| `transitions` | `[..., S, A, S]` | p(s' | s, a); every `[..., s, a, :]` row sums to 1 |
| `rewards`     | `[..., S, A]`    | expected immediate reward r(s, a); `-inf` marks an |
|               |                  | action that is unavailable in state s              |
| `discount`    | `[...]`          | gamma in [0, 1]                                    |

Leading ``...`` axes are batch axes. They broadcast against each other (NumPy rules), so a
sweep over rewards and discounts shares one `transitions` array of shape `[S, A, S]` with
`rewards [B, S, A]` and `discount [B]`; the solver keeps such a leaf shared all the way into
the kernels instead of materialising B copies.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


class MDP(NamedTuple):
    """A finite Markov decision process (or a batch of them).

    No checks run here: JAX rebuilds pytrees with placeholder leaves under `vmap`. Use
    `jaxmdp.make_mdp` (validates by default) or `jaxmdp.validate_mdp` for user data.

    Attributes:
      transitions: `[..., S, A, S]` p(s' | s, a).
      rewards: `[..., S, A]` expected reward r(s, a); `-inf` = action unavailable in s.
      discount: `[...]` discount factor gamma in [0, 1].
    """

    transitions: jnp.ndarray
    rewards: jnp.ndarray
    discount: jnp.ndarray

    @property
    def num_states(self) -> int:
        return int(np.shape(self.rewards)[-2])

    @property
    def num_actions(self) -> int:
        return int(np.shape(self.rewards)[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Broadcast shape of the leading batch axes of all three leaves."""
        return batch_shape(self)

    @property
    def dtype(self):
        return jnp.result_type(self.transitions, self.rewards)


def leaf_batch_shapes(mdp: MDP) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The batch part of each leaf's shape: `(transitions, rewards, discount)`."""
    return (
        tuple(np.shape(mdp.transitions)[:-3]),
        tuple(np.shape(mdp.rewards)[:-2]),
        tuple(np.shape(mdp.discount)),
    )


def check_shapes(mdp: MDP) -> None:
    """Structural checks (static shapes only, so it also runs under `jit`).

    Raises:
      ValueError: naming the leaf, the expected convention and the actual shapes.
    """
    tshape, rshape = np.shape(mdp.transitions), np.shape(mdp.rewards)
    if len(tshape) < 3:
        raise ValueError(
            f"transitions must have shape [..., S, A, S]; got shape {tshape} "
            f"(ndim {len(tshape)} < 3)."
        )
    if len(rshape) < 2:
        raise ValueError(
            f"rewards must have shape [..., S, A]; got shape {rshape} (ndim {len(rshape)} < 2)."
        )
    s, a, s2 = tshape[-3:]
    if s != s2:
        raise ValueError(
            f"transitions must have shape [..., S, A, S] with the same S on the first and last "
            f"axes; got {tshape}."
        )
    if rshape[-2:] != (s, a):
        raise ValueError(
            f"rewards must have shape [..., S, A] = [..., {s}, {a}] to match transitions "
            f"{tshape}; got {rshape}."
        )
    if s == 0 or a == 0:
        raise ValueError(f"an MDP needs at least one state and one action; got S={s}, A={a}.")
    batch_shape(mdp)  # raises on non-broadcastable batch axes


def batch_shape(mdp: MDP) -> tuple[int, ...]:
    tb, rb, db = leaf_batch_shapes(mdp)
    try:
        return tuple(np.broadcast_shapes(tb, rb, db))
    except ValueError:
        raise ValueError(
            "the batch axes of the MDP's leaves do not broadcast: transitions "
            f"{np.shape(mdp.transitions)} has batch shape {tb}, rewards {np.shape(mdp.rewards)} "
            f"has {rb}, discount {np.shape(mdp.discount)} has {db}."
        ) from None
