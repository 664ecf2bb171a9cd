"""`make_mdp` for sparse transitions (called by `jaxmdp.make_mdp` for a `SparseTransitions`)."""

from __future__ import annotations

import jax.numpy as jnp

from jaxmdp._mdp import MDP
from jaxmdp._sparse import SparseTransitions
from jaxmdp._validate import validate_mdp


def _float(x, dtype):
    x = jnp.asarray(x)
    if dtype is not None:
        return x.astype(dtype)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(jnp.result_type(float))
    return x


def make_sparse_mdp(
    transitions: SparseTransitions, rewards, discount, *, rewards_per, available, validate, dtype
) -> MDP:
    """See `jaxmdp.make_mdp`. With `rewards_per="transition"` the rewards are given per
    successor slot, `[..., S, A, K]` aligned with `transitions.probs` (r(s, a, s') of the
    slot's successor), and reduced to `r(s, a) = sum_k probs[k] r[k]` (slots of probability
    0 contribute nothing)."""
    ns = jnp.asarray(transitions.next_states)
    if not jnp.issubdtype(ns.dtype, jnp.integer):
        raise ValueError(
            f"SparseTransitions.next_states must hold integer state indices; got dtype {ns.dtype}."
        )
    probs = _float(transitions.probs, dtype)
    P = SparseTransitions(ns.astype(jnp.int32), probs)
    R = _float(rewards, dtype if dtype is not None else probs.dtype)
    S, A, K = ns.shape[-3:]
    if rewards_per == "transition":
        if R.ndim < 3 or R.shape[-3:] != (S, A, K):
            raise ValueError(
                "rewards_per='transition' with sparse transitions needs rewards per successor "
                f"slot, [..., S, A, K] = [..., {S}, {A}, {K}] like probs; got {R.shape}."
            )
        R = jnp.sum(jnp.where(probs > 0, probs * R, 0.0), axis=-1)
    elif rewards_per == "state":
        if R.ndim < 1 or R.shape[-1] != S:
            raise ValueError(
                f"rewards_per='state' needs rewards of shape [..., S] with S={S}; got {R.shape}."
            )
        R = jnp.broadcast_to(R[..., :, None], R.shape + (A,))
    if available is not None:
        mask = jnp.asarray(available)
        if mask.dtype != jnp.bool_:
            raise ValueError(f"available must be a bool mask [..., S, A]; got dtype {mask.dtype}.")
        R = jnp.where(mask, R, -jnp.inf)
    mdp = MDP(P, R, jnp.asarray(discount, dtype=R.dtype))
    if validate:
        validate_mdp(mdp)
    return mdp
