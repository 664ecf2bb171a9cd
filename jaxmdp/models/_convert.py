"""Conversions to and from QuantEcon's `quantecon.markov.DiscreteDP`.

QuantEcon has two layouts (see its `ddp.py`):

- product form: `R [S, A]` (infeasible actions: `-inf`), `Q [S, A, S]`, `beta`; this is
  jaxmdp's own layout up to names;
- state-action-pair form: `s_indices [L]`, `a_indices [L]`, `R [L]`, `Q [L, S]` (dense or
  scipy.sparse) listing only the L feasible pairs.

The product form converts to dense transitions; the state-action-pair form (QuantEcon's
form for large problems) converts to successor lists (`jaxmdp.SparseTransitions`, K = the
most nonzeros of any row of `Q`), from a dense or a scipy.sparse `Q` alike, without
densifying anything. A pair missing from the state-action form is an unavailable action
here: reward `-inf`, with a self-loop transition row so every row stays a distribution.
(pymdptoolbox's layout is converted by the core: `jaxmdp.from_pymdptoolbox` /
`jaxmdp.to_pymdptoolbox`.)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmdp._construct import make_mdp
from jaxmdp._mdp import MDP
from jaxmdp._sparse import SparseTransitions, csr_slots, is_sparse, to_dense, to_scipy

_FORMS = ("product", "sa_pairs")


def _pair_rows(Q) -> tuple[np.ndarray, np.ndarray]:
    """`(next_states [L, K] int32, probs [L, K] float64)`: the nonzeros of each row of the
    SA-pair `Q [L, S]` (dense or scipy.sparse), in column order, zero-padded."""
    import scipy.sparse  # a dependency of quantecon, so present wherever a DiscreteDP is

    csr = scipy.sparse.csr_matrix(Q, dtype=np.float64)
    return csr_slots(csr)


def from_quantecon(ddp, *, validate: bool = True, dtype=None) -> MDP:
    """Converts a QuantEcon `DiscreteDP` (either layout) to an `MDP`.

    Args:
      ddp: a `quantecon.markov.DiscreteDP` (product or state-action-pair form, dense or
        sparse `Q`).
      validate: check the result with `jaxmdp.validate_mdp`.
      dtype: float dtype of the result (default: JAX's default float).

    Returns:
      `MDP` with `rewards [S, A]` and `discount = ddp.beta`. Product form: dense
      `transitions [S, A, S]`. State-action-pair form: `SparseTransitions` (`next_states
      [S, A, K]`, `probs [S, A, K]`, K the most nonzeros of any row of `Q`), A is
      `max(a_indices) + 1`, and missing pairs are unavailable (reward `-inf`, a self-loop
      row).
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    R = np.asarray(ddp.R, dtype=np.float64)
    if not getattr(ddp, "_sa_pair", np.ndim(ddp.Q) == 2):
        Q = np.asarray(ddp.Q.toarray() if hasattr(ddp.Q, "toarray") else ddp.Q, np.float64)
        return make_mdp(Q, R, float(ddp.beta), validate=validate, dtype=dtype)
    s_idx, a_idx = np.asarray(ddp.s_indices), np.asarray(ddp.a_indices)
    num_states, num_actions = int(np.shape(ddp.Q)[1]), int(a_idx.max()) + 1
    rows_ns, rows_p = _pair_rows(ddp.Q)
    K = rows_ns.shape[1]
    # Every (s, a) starts as an unavailable self-loop; the L feasible pairs overwrite theirs.
    next_states = np.zeros((num_states, num_actions, K), np.int32)
    next_states[..., 0] = np.arange(num_states, dtype=np.int32)[:, None]
    probs = np.zeros((num_states, num_actions, K), np.float64)
    probs[..., 0] = 1.0
    rewards = np.full((num_states, num_actions), -np.inf)
    next_states[s_idx, a_idx] = rows_ns
    probs[s_idx, a_idx] = rows_p
    rewards[s_idx, a_idx] = R
    transitions = SparseTransitions(next_states, probs)
    return make_mdp(transitions, rewards, float(ddp.beta), validate=validate, dtype=dtype)


def to_quantecon(mdp: MDP, *, form: str = "product", sparse: bool = False):
    """Converts one MDP to a QuantEcon `DiscreteDP`.

    Args:
      mdp: a single MDP (no batch axes), with discount in [0, 1] (QuantEcon disables its
        infinite-horizon solvers at discount 1).
      form: `"product"` (`R [S, A]` with `-inf` kept, `Q [S, A, S]`) or `"sa_pairs"` (only
        the available pairs, in state-then-action order).
      sparse: in the `"sa_pairs"` form, give `Q` as a `scipy.sparse` CSR matrix (for sparse
        transitions it is built from the successor lists, never from a dense array).

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

    rewards = np.asarray(mdp.rewards, dtype=np.float64)
    beta = float(mdp.discount)
    s_idx, a_idx = np.nonzero(~np.isneginf(rewards))  # row-major: sorted by state, action
    if is_sparse(mdp.transitions) and form == "sa_pairs":
        # Straight from the successor lists: no [S, A, S] array (a large model stays small).
        A = mdp.num_actions
        pairs = to_scipy(mdp.transitions, layout="pairs").astype(np.float64)  # row s*A + a
        Q = pairs[s_idx * A + a_idx]
        return DiscreteDP(rewards[s_idx, a_idx], Q if sparse else Q.toarray(), beta, s_idx, a_idx)
    transitions = np.asarray(to_dense(mdp.transitions), dtype=np.float64)
    if form == "product":
        return DiscreteDP(rewards, transitions, beta)
    Q = transitions[s_idx, a_idx]
    if sparse:
        import scipy.sparse

        Q = scipy.sparse.csr_matrix(Q)
    return DiscreteDP(rewards[s_idx, a_idx], Q, beta, s_idx, a_idx)
