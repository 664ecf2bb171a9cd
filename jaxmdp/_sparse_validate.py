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
from jaxmdp._validate import (
    InvalidMDPError,
    _blocks,
    _Finding,
    _first,
    _host_reader,
    _where,
    default_row_atol,
)

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
    R = np.asarray(mdp.rewards)
    g = np.asarray(mdp.discount)
    nshape, pshape = tuple(np.shape(p.next_states)), tuple(np.shape(p.probs))
    pdtype = np.dtype(p.probs.dtype)
    S, _, K = nshape[-3:]
    if not np.issubdtype(pdtype, np.floating) or not np.issubdtype(R.dtype, np.floating):
        raise InvalidMDPError(
            f"SparseTransitions.probs and rewards must be floating point; got {pdtype} and "
            f"{R.dtype}."
        )
    if atol is None:
        atol = default_row_atol(pdtype, K)
    nbn, nbp, nbr = len(nshape) - 3, len(pshape) - 3, R.ndim - 2

    # Block by block (`jaxmdp._validate._blocks`: views of the host buffers, at most
    # `_CHUNK_BYTES` each), like the dense check: whole-array masks and float64 row sums
    # cost 0.8x the model's bytes at 10^6 states (measured RSS), 1 GB at 10^7. What stays
    # is two `[..., S, A]` boolean masks of the rows.
    out_of_range = _Finding()
    read = _host_reader(p.next_states)
    for ix, offset in _blocks(nshape[:-1], K * np.dtype(p.next_states.dtype).itemsize):
        block = read(ix)
        out_of_range.add((block < 0) | (block >= S), block, offset)
    if out_of_range.count:
        raise InvalidMDPError(
            out_of_range.message(f"successor index out of range [0, {S})", nbn, _SLOT)
            + " (padding slots need a valid index too, e.g. 0)"
        )
    nonfinite, negative = _Finding(), _Finding()
    off = np.empty(pshape[:-1], bool)  # row sum off 1 and not 0
    empty = np.empty(pshape[:-1], bool)  # row sum exactly 0 (fine if unavailable)
    read = _host_reader(p.probs)
    for ix, offset in _blocks(pshape[:-1], K * pdtype.itemsize):
        block = read(ix)
        nonfinite.add(~np.isfinite(block), block, offset)
        negative.add(block < 0, block, offset)
        sums = block.sum(axis=-1, dtype=np.float64)
        empty[ix] = sums == 0.0
        off[ix] = (np.abs(sums - 1.0) > atol) & ~empty[ix]
    if nonfinite.count:
        raise InvalidMDPError(nonfinite.message("non-finite transition probability", nbp, _SLOT))
    if negative.count:
        raise InvalidMDPError(negative.message("negative transition probability", nbp, _SLOT))

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

    # A row of an unavailable action may be all zero: it is never used.
    bad = off | (empty & ~unavailable) if 1.0 > atol else off
    if bad.any():
        shape = bad.shape
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        # The row in `probs` (its batch axes may be broadcast: size 1 reads index 0).
        tail = idx[len(idx) - (len(pshape) - 1) :]
        at = tuple(0 if n == 1 else i for i, n in zip(tail, pshape[:-1], strict=True))
        row = np.asarray(p.probs[at])
        value = float(row.sum(dtype=np.float64))
        count = int(np.count_nonzero(bad))
        raise InvalidMDPError(
            f"transition row (its K={K} slots) does not sum to 1 within atol={atol:.3g} at "
            f"{_where(idx, len(shape) - 2, _SA)} (value {value!r})"
            + (f"; {count} places in all" if count > 1 else "")
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
