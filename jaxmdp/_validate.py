"""Host-side validation of concrete MDP data, with errors that name the offending place."""

from __future__ import annotations

import jax
import numpy as np

from jaxmdp._mdp import MDP, check_shapes


class InvalidMDPError(ValueError):
    """An MDP's numbers break the model's rules. The message names batch index, state, action."""


def _where(idx: tuple[int, ...], nbatch: int, names: tuple[str, ...]) -> str:
    parts = []
    if nbatch:
        b = tuple(int(i) for i in idx[:nbatch])
        parts.append(f"batch index {b if len(b) > 1 else b[0]}")
    for name, i in zip(names, idx[nbatch:], strict=False):
        parts.append(f"{name} {int(i)}")
    return ", ".join(parts)


def _first(mask: np.ndarray, nbatch: int, names: tuple[str, ...], what: str, values=None) -> str:
    where = np.argwhere(mask)
    idx = tuple(where[0])
    msg = f"{what} at {_where(idx, nbatch, names)}"
    if values is not None:
        msg += f" (value {values[idx]!r})"
    if len(where) > 1:
        msg += f"; {len(where)} places in all"
    return msg


def default_row_atol(dtype, num_states: int) -> float:
    """Row-sum tolerance suited to the dtype: a few rounding errors of an S-term sum.

    float32 (eps 1.2e-7): S=11 gives 6.3e-6, S=2048 8.7e-5, so rows off by 1e-7 pass and rows
    off by 1e-3 fail; float64 scales the same way from eps 2.2e-16.
    """
    eps = float(np.finfo(dtype).eps)
    return max(16.0 * eps * float(np.sqrt(num_states)), 64.0 * eps)


def validate_mdp(mdp: MDP, *, atol: float | None = None) -> MDP:
    """Check a concrete MDP on the host; return it unchanged or raise `InvalidMDPError`.

    Checks: shapes ([..., S, A, S], [..., S, A], broadcastable batch axes); probabilities
    finite and non-negative; each row sums to 1 within `atol` (default from the dtype, see
    `default_row_atol`; rows of unavailable actions, reward `-inf`, may also be all zero);
    rewards not NaN and not `+inf` (`-inf` marks an unavailable action); every state has at
    least one available action; discount finite and in [0, 1].

    Args:
      mdp: the MDP, possibly batched. Must hold concrete arrays (not tracers).
      atol: absolute tolerance on row sums; `None` picks one from the dtype.

    Raises:
      ValueError: wrong shapes (structural).
      InvalidMDPError: bad numbers, naming the first batch index / state / action and a count.
    """
    if type(mdp.transitions).__name__ == "SparseTransitions":
        from jaxmdp._sparse_validate import validate_sparse_mdp  # the sparse form's checks

        return validate_sparse_mdp(mdp, atol=atol)
    check_shapes(mdp)
    for name, leaf in zip(MDP._fields, mdp, strict=True):
        if isinstance(leaf, jax.core.Tracer):
            raise TypeError(
                f"validate_mdp needs concrete arrays, but `{name}` is traced (inside jit/vmap). "
                "Validate outside the transformation, or rely on the per-MDP status codes."
            )
    P = np.asarray(mdp.transitions)
    R = np.asarray(mdp.rewards)
    g = np.asarray(mdp.discount)
    S = P.shape[-1]
    if not np.issubdtype(P.dtype, np.floating) or not np.issubdtype(R.dtype, np.floating):
        raise InvalidMDPError(
            f"transitions and rewards must be floating point; got {P.dtype} and {R.dtype}."
        )
    if atol is None:
        atol = default_row_atol(P.dtype, S)
    nbp, nbr = P.ndim - 3, R.ndim - 2
    sas, sa = ("state", "action", "next state"), ("state", "action")

    bad = ~np.isfinite(P)
    if bad.any():
        raise InvalidMDPError(_first(bad, nbp, sas, "non-finite transition probability", P))
    bad = P < 0
    if bad.any():
        raise InvalidMDPError(_first(bad, nbp, sas, "negative transition probability", P))

    bad = np.isnan(R) | (R == np.inf)
    if bad.any():
        raise InvalidMDPError(
            _first(
                bad, nbr, sa, "reward is NaN or +inf (-inf is reserved for unavailable actions)", R
            )
        )
    unavailable = np.isneginf(R)
    no_action = unavailable.all(axis=-1)
    if no_action.any():
        raise InvalidMDPError(
            _first(
                no_action, nbr, ("state",), "state has no available action (every reward is -inf)"
            )
        )

    sums = P.sum(axis=-1, dtype=np.float64)
    off = np.abs(sums - 1.0) > atol
    # A row of an unavailable action may be all zero: it is never used.
    unavailable_b = np.broadcast_to(unavailable, np.broadcast_shapes(unavailable.shape, sums.shape))
    sums_b = np.broadcast_to(sums, unavailable_b.shape)
    off = np.broadcast_to(off, unavailable_b.shape) & ~(unavailable_b & (sums_b == 0.0))
    if off.any():
        nb = off.ndim - 2
        raise InvalidMDPError(
            _first(off, nb, sa, f"transition row does not sum to 1 within atol={atol:.3g}", sums_b)
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
