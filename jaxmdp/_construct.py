"""Constructors for the layouts users bring; conversions happen once, here at the edge."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmdp._mdp import MDP
from jaxmdp._validate import validate_mdp

_REWARDS_PER = ("state_action", "transition", "state")


def _float(x, dtype):
    x = jnp.asarray(x)
    if dtype is not None:
        return x.astype(dtype)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(jnp.result_type(float))
    return x


def make_mdp(
    transitions,
    rewards,
    discount,
    *,
    rewards_per: str = "state_action",
    available=None,
    validate: bool = True,
    dtype=None,
) -> MDP:
    """Build an `MDP` from arrays in jaxmdp's layout, validating them by default.

    Args:
      transitions: `[..., S, A, S]` p(s' | s, a), or a `jaxmdp.SparseTransitions`
        (successor lists `[..., S, A, K]`; then `rewards_per="transition"` takes rewards per
        successor slot, `[..., S, A, K]`).
      rewards: according to `rewards_per`:
        `"state_action"`: `[..., S, A]` expected reward r(s, a) (`-inf` = unavailable);
        `"transition"`: `[..., S, A, S]` reward r(s, a, s'), reduced to
        r(s, a) = sum_s' p(s' | s, a) r(s, a, s');
        `"state"`: `[..., S]` reward r(s) received in state s whatever the action.
      discount: `[...]` gamma in [0, 1].
      available: optional bool mask `[..., S, A]`; `False` marks an action that cannot be
        taken in that state (its reward becomes `-inf`, so no solver ever chooses it).
      validate: run `validate_mdp` (host side; needs concrete arrays).
      dtype: cast to this float dtype (default: keep float inputs, else JAX's default float).

    Returns:
      The `MDP`.
    """
    if rewards_per not in _REWARDS_PER:
        raise ValueError(f"rewards_per must be one of {_REWARDS_PER}; got {rewards_per!r}.")
    if type(transitions).__name__ == "SparseTransitions":
        from jaxmdp._sparse_construct import make_sparse_mdp  # the sparse form (same rules)

        kw = dict(rewards_per=rewards_per, available=available, validate=validate, dtype=dtype)
        return make_sparse_mdp(transitions, rewards, discount, **kw)
    P = _float(transitions, dtype)
    R = _float(rewards, dtype if dtype is not None else P.dtype)
    if rewards_per == "transition":
        if R.ndim < 3 or R.shape[-3:] != P.shape[-3:]:
            raise ValueError(
                f"rewards_per='transition' needs rewards of shape [..., S, A, S] matching "
                f"transitions {P.shape}; got {R.shape}."
            )
        # 0 * r for impossible transitions must not turn a finite r into NaN; drop them.
        R = jnp.sum(jnp.where(P > 0, P * R, 0.0), axis=-1)
    elif rewards_per == "state":
        if R.ndim < 1 or R.shape[-1] != P.shape[-1]:
            raise ValueError(
                f"rewards_per='state' needs rewards of shape [..., S] with S={P.shape[-1]}; got "
                f"{R.shape}."
            )
        R = jnp.broadcast_to(R[..., :, None], R.shape + (P.shape[-2],))
    if available is not None:
        mask = jnp.asarray(available)
        if mask.dtype != jnp.bool_:
            raise ValueError(f"available must be a bool mask [..., S, A]; got dtype {mask.dtype}.")
        R = jnp.where(mask, R, -jnp.inf)
    g = jnp.asarray(discount, dtype=R.dtype)
    mdp = MDP(P, R, g)
    if validate:
        validate_mdp(mdp)
    return mdp


def from_pymdptoolbox(P, R, discount, *, validate: bool = True, dtype=None) -> MDP:
    """Convert pymdptoolbox's layout to an `MDP`.

    Args:
      P: `[A, S, S]` array (or a sequence of A `[S, S]` arrays, dense or scipy.sparse),
        P[a][s, s'] = p(s' | s, a).
      R: `[S]` (reward per state), `[S, A]` (per state-action) or `[A, S, S]`
        (per transition, R[a][s, s']).
      discount: gamma.
    """
    Pa = np.stack([_dense(p) for p in P]) if not isinstance(P, np.ndarray) else P
    Pa = np.asarray(Pa)
    if Pa.ndim != 3 or Pa.shape[1] != Pa.shape[2]:
        raise ValueError(f"pymdptoolbox transitions must be [A, S, S]; got {Pa.shape}.")
    A, S, _ = Pa.shape
    transitions = np.transpose(Pa, (1, 0, 2))  # [S, A, S]
    if not isinstance(R, np.ndarray) and len(R) == A and np.ndim(_dense(R[0])) == 2:
        R = np.stack([_dense(r) for r in R])
    R = np.asarray(R)
    if R.shape == (S,):
        return make_mdp(
            transitions, R, discount, rewards_per="state", validate=validate, dtype=dtype
        )
    if R.shape == (S, A):
        return make_mdp(transitions, R, discount, validate=validate, dtype=dtype)
    if R.shape == (A, S, S):
        return make_mdp(
            transitions,
            np.transpose(R, (1, 0, 2)),
            discount,
            rewards_per="transition",
            validate=validate,
            dtype=dtype,
        )
    raise ValueError(
        f"pymdptoolbox rewards must be [S]=({S},), [S, A]=({S}, {A}) or [A, S, S]=({A}, {S}, "
        f"{S}); got {R.shape}."
    )


def to_pymdptoolbox(mdp: MDP):
    """Return `(P [A, S, S], R [S, A])` NumPy arrays in pymdptoolbox's layout (one MDP).

    Unavailable actions (`-inf` rewards) have no pymdptoolbox equivalent; they are given the
    most negative finite reward of the dtype so pymdptoolbox never prefers them.
    """
    if mdp.batch_shape:
        raise ValueError(
            f"to_pymdptoolbox converts one MDP; got batch shape {mdp.batch_shape}. Index it "
            "first, e.g. jax.tree.map(lambda x: x[i], mdp) for leaves with a batch axis."
        )
    P = np.transpose(np.asarray(mdp.transitions), (1, 0, 2))
    R = np.asarray(mdp.rewards)
    R = np.where(np.isneginf(R), np.finfo(R.dtype).min / 4, R)
    return P, R


def _dense(x):
    return x.toarray() if hasattr(x, "toarray") else np.asarray(x)
