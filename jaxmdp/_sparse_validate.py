"""Host-side validation of an MDP whose `transitions` is a `SparseTransitions`.

Called by `jaxmdp.validate_mdp` for the sparse form; the checks and messages follow the dense
ones (`jaxmdp._validate`), plus what only the sparse form can get wrong: successor indices
out of range. Duplicate successors are allowed and summed (documented in
`jaxmdp.SparseTransitions`); a row's slots must sum to 1 within a tolerance derived from the
dtype and K (a K-term sum, not an S-term one).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxmdp._mdp import MDP, check_shapes
from jaxmdp._sparse import SparseTransitions
from jaxmdp._validate import InvalidMDPError, _first, default_row_atol

_SLOT = ("state", "action", "slot")
_SA = ("state", "action")


def validate_sparse_mdp(mdp: MDP, *, atol: float | None = None) -> MDP:
    """`validate_mdp` for sparse transitions; returns `mdp` unchanged or raises.

    Checks: shapes; `next_states` integer and in `[0, S)` in every slot (padding included);
    `probs` finite and non-negative; each (s, a) row's slots sum to 1 within `atol`
    (default `default_row_atol(dtype, K)`; rows of unavailable actions may sum to 0);
    rewards and discount as for dense transitions.

    Raises:
      ValueError: wrong shapes (structural).
      InvalidMDPError: bad numbers, naming batch index, state, action and slot.
    """
    check_shapes(mdp)
    for name, leaf in jax.tree_util.tree_leaves_with_path(mdp):
        if isinstance(leaf, jax.core.Tracer):
            raise TypeError(
                f"validate_mdp needs concrete arrays, but `{jax.tree_util.keystr(name)}` is "
                "traced (inside jit/vmap). Validate outside the transformation, or rely on the "
                "per-MDP status codes."
            )
    p = mdp.transitions
    assert isinstance(p, SparseTransitions)
    NS = np.asarray(p.next_states)
    PR = np.asarray(p.probs)
    R = np.asarray(mdp.rewards)
    g = np.asarray(mdp.discount)
    S, _, K = NS.shape[-3:]
    if not np.issubdtype(PR.dtype, np.floating) or not np.issubdtype(R.dtype, np.floating):
        raise InvalidMDPError(
            f"SparseTransitions.probs and rewards must be floating point; got {PR.dtype} and "
            f"{R.dtype}."
        )
    if atol is None:
        atol = default_row_atol(PR.dtype, K)
    nbn, nbp, nbr = NS.ndim - 3, PR.ndim - 3, R.ndim - 2

    bad = (NS < 0) | (NS >= S)
    if bad.any():
        raise InvalidMDPError(
            _first(bad, nbn, _SLOT, f"successor index out of range [0, {S})", NS)
            + " (padding slots need a valid index too, e.g. 0)"
        )
    bad = ~np.isfinite(PR)
    if bad.any():
        raise InvalidMDPError(_first(bad, nbp, _SLOT, "non-finite transition probability", PR))
    bad = PR < 0
    if bad.any():
        raise InvalidMDPError(_first(bad, nbp, _SLOT, "negative transition probability", PR))

    bad = np.isnan(R) | (R == np.inf)
    if bad.any():
        raise InvalidMDPError(
            _first(
                bad, nbr, _SA, "reward is NaN or +inf (-inf is reserved for unavailable actions)", R
            )
        )
    unavailable = np.isneginf(R)
    no_action = unavailable.all(axis=-1)
    if no_action.any():
        raise InvalidMDPError(
            _first(
                np.asarray(no_action),
                nbr,
                ("state",),
                "state has no available action (every reward is -inf)",
            )
        )

    sums = PR.sum(axis=-1, dtype=np.float64)
    shape = np.broadcast_shapes(unavailable.shape, sums.shape)
    unavailable_b = np.broadcast_to(unavailable, shape)
    sums_b = np.broadcast_to(sums, shape)
    # A row of an unavailable action may be all zero: it is never used.
    off = (np.abs(sums_b - 1.0) > atol) & ~(unavailable_b & (sums_b == 0.0))
    if off.any():
        raise InvalidMDPError(
            _first(
                off,
                off.ndim - 2,
                _SA,
                f"transition row (its K={K} slots) does not sum to 1 within atol={atol:.3g}",
                sums_b,
            )
        )

    bad = ~np.isfinite(g) | (g < 0) | (g > 1)
    if bad.any():
        if g.ndim:
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidMDPError(
                f"discount must be finite and in [0, 1]; got {g[idx]!r} at batch index "
                f"{idx if len(idx) > 1 else idx[0]} ({int(bad.sum())} in all)."
            )
        raise InvalidMDPError(f"discount must be finite and in [0, 1]; got {g!r}.")
    return mdp
