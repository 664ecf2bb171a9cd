"""Conversions to and from QuantEcon's `quantecon.markov.DiscreteDP`.

QuantEcon has two layouts (see its `ddp.py`):

- product form: `R [S, A]` (infeasible actions: `-inf`), `Q [S, A, S]`, `beta`; this is
  jaxmdp's own layout up to names;
- state-action-pair form: `s_indices [L]`, `a_indices [L]`, `R [L]`, `Q [L, S]` (dense or
  scipy.sparse) listing only the L feasible pairs.

A pair missing from the state-action form is an unavailable action here: reward `-inf`,
with a self-loop transition row so every row stays a distribution. (pymdptoolbox's layout
is converted by the core: `jaxmdp.from_pymdptoolbox` / `jaxmdp.to_pymdptoolbox`.)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmdp._construct import make_mdp
from jaxmdp._mdp import MDP

_FORMS = ("product", "sa_pairs")


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def from_quantecon(ddp, *, validate: bool = True, dtype=None) -> MDP:
    """Converts a QuantEcon `DiscreteDP` (either layout) to an `MDP`.

    Args:
      ddp: a `quantecon.markov.DiscreteDP` (product or state-action-pair form, dense or
        sparse `Q`).
      validate: check the result with `jaxmdp.validate_mdp`.
      dtype: float dtype of the result (default: JAX's default float).

    Returns:
      `MDP` with `transitions [S, A, S]`, `rewards [S, A]` and `discount = ddp.beta`; in the
      state-action form A is `max(a_indices) + 1` and missing pairs are unavailable.
    """
    Q, R = _dense(ddp.Q), np.asarray(ddp.R, dtype=np.float64)
    if getattr(ddp, "_sa_pair", Q.ndim == 2):
        s_idx, a_idx = np.asarray(ddp.s_indices), np.asarray(ddp.a_indices)
        num_states, num_actions = Q.shape[1], int(a_idx.max()) + 1
        transitions = np.zeros((num_states, num_actions, num_states))
        rewards = np.full((num_states, num_actions), -np.inf)
        # Unavailable pairs: a self-loop row, overwritten below for the feasible pairs.
        transitions[np.arange(num_states), :, np.arange(num_states)] = 1.0
        transitions[s_idx, a_idx] = Q
        rewards[s_idx, a_idx] = R
    else:
        transitions, rewards = Q, R
    dtype = jnp.result_type(float) if dtype is None else dtype
    return make_mdp(transitions, rewards, float(ddp.beta), validate=validate, dtype=dtype)


def to_quantecon(mdp: MDP, *, form: str = "product", sparse: bool = False):
    """Converts one MDP to a QuantEcon `DiscreteDP`.

    Args:
      mdp: a single MDP (no batch axes), with discount in [0, 1] (QuantEcon disables its
        infinite-horizon solvers at discount 1).
      form: `"product"` (`R [S, A]` with `-inf` kept, `Q [S, A, S]`) or `"sa_pairs"` (only
        the available pairs, in state-then-action order).
      sparse: in the `"sa_pairs"` form, give `Q` as a `scipy.sparse` CSR matrix.

    Returns:
      `quantecon.markov.DiscreteDP` in float64.
    """
    if form not in _FORMS:
        raise ValueError(f"form must be one of {_FORMS}; got {form!r}.")
    if mdp.batch_shape:
        raise ValueError(
            f"to_quantecon converts one MDP; got batch shape {mdp.batch_shape}. Index it first, "
            "e.g. jax.tree.map(lambda x: x[i], mdp) for leaves with a batch axis."
        )
    from quantecon.markov import DiscreteDP  # optional dependency, imported on use

    transitions = np.asarray(mdp.transitions, dtype=np.float64)
    rewards = np.asarray(mdp.rewards, dtype=np.float64)
    beta = float(mdp.discount)
    if form == "product":
        return DiscreteDP(rewards, transitions, beta)
    s_idx, a_idx = np.nonzero(~np.isneginf(rewards))  # row-major: sorted by state, action
    Q = transitions[s_idx, a_idx]
    if sparse:
        import scipy.sparse

        Q = scipy.sparse.csr_matrix(Q)
    return DiscreteDP(rewards[s_idx, a_idx], Q, beta, s_idx, a_idx)
