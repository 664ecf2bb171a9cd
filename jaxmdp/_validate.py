"""Host-side validation of concrete MDP data, with errors that name the offending place.

The transitions are read in blocks of at most `_CHUNK_BYTES` (views of NumPy inputs, or
of the host buffer of a CPU `jax.Array`; slices copied one at a time from other devices),
so validating a multi-GB MDP costs a few blocks of extra memory, not copies of the data.
"""

from __future__ import annotations

import math
import operator

import jax
import numpy as np

from jaxmdp._mdp import MDP, check_shapes

# Bytes of input read per block. Each block costs about twice this in temporaries (a cast
# copy when the dtype changes, a few bool masks a quarter its size), so the extra memory of
# validating any MDP stays near 3 x 64 MiB plus the `[..., S, A]` row sums.
_CHUNK_BYTES = 64 * 2**20


class InvalidMDPError(ValueError):
    """An MDP's numbers break the model's rules. The message names batch index, state, action."""


# --------------------------------------------------------------------------------------
# Scalar / array arguments of builders (concrete values only; tracers pass unchecked).


def is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_real(name: str, value, *, low=None, high=None, low_open: bool = False) -> None:
    """Checks a concrete real argument (scalar or array): finite and within `[low, high]`.

    Traced values (inside `jit` / `vmap`) cannot be inspected and pass unchecked.

    Raises:
      TypeError: not a real number (complex, string, object).
      ValueError: NaN, infinite, or out of range, naming `name` (and the index for arrays).
    """
    if is_traced(value):
        return
    try:
        arr = np.asarray(value)
    except Exception:  # ragged lists and the like
        raise TypeError(f"{name} must be a real number or array; got {value!r}.") from None
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real number or array; got dtype {arr.dtype}.")
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr)
        if low is not None:
            bad |= (arr <= low) if low_open else (arr < low)
        if high is not None:
            bad |= arr > high
    if not bad.any():
        return
    if low is None and high is None:
        rule = "finite"
    else:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        rule = f"in {'(' if low_open else '['}{lo}, {hi}{']' if high is not None else ')'}"
    if arr.ndim == 0:
        raise ValueError(f"{name} must be {rule}; got {arr.item()!r}.")
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
        f"{name} must be {rule}; got {arr[idx].item()!r} at index "
        f"{idx if len(idx) > 1 else idx[0]} ({int(bad.sum())} entries in all)."
    )


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """`value` as a Python int, or a clear error: floats are refused, never truncated."""
    if is_traced(value):
        raise TypeError(f"{name} must be a static Python int; got a traced value.")
    try:
        if isinstance(value, bool | np.bool_):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__}).") from None
    if (low is not None and value < low) or (high is not None and value > high):
        rule = " and ".join(
            x
            for x in ("" if low is None else f">= {low}", "" if high is None else f"<= {high}")
            if x
        )
        raise ValueError(f"{name} must be an int {rule}; got {value}.")
    return value


# --------------------------------------------------------------------------------------
# MDP data.


def default_row_atol(dtype, num_states: int) -> float:
    """Row-sum tolerance for `num_states`-term rows stored in `dtype`: `eps * (8 + 2 sqrt(S))`.

    Why: rounding each entry of an exact distribution to the dtype moves its sum by at most
    u = eps / 2. A row normalised in the dtype (`x / x.sum()`) is off by the rounding error
    of that sum: at most about `u log2(S)` for pairwise summation, about `u sqrt(S)` (its
    standard deviation, times a small constant) for sequential sums with errors of random
    sign. The tolerance is 16 u plus 4 u sqrt(S): float32 rows pass within 1.7e-6 at S=11
    and 3.5e-5 at S=20000, float64 rows within 3e-15 to 6e-14, float16 rows (eps 9.8e-4)
    within 0.012 at S=4, so a float16 row off by 0.05 fails.
    """
    eps = float(np.finfo(dtype).eps)
    return eps * (8.0 + 2.0 * math.sqrt(num_states))


def _where(idx: tuple[int, ...], nbatch: int, names: tuple[str, ...]) -> str:
    parts = []
    if nbatch:
        b = tuple(int(i) for i in idx[:nbatch])
        parts.append(f"batch index {b if len(b) > 1 else b[0]}")
    for name, i in zip(names, idx[nbatch:], strict=False):
        parts.append(f"{name} {int(i)}")
    return ", ".join(parts)


def _first(mask: np.ndarray, nbatch: int, names: tuple[str, ...], what: str, values=None) -> str:
    """Message naming the first place (C order) where `mask` holds, and how many there are."""
    where = np.argwhere(mask)
    idx = tuple(where[0])
    msg = f"{what} at {_where(idx, nbatch, names)}"
    if values is not None:
        msg += f" (value {values[idx]!r})"
    if len(where) > 1:
        msg += f"; {len(where)} places in all"
    return msg


class _Finding:
    """The first place (in C order) and the count of entries failing one check."""

    def __init__(self):
        self.count = 0
        self.first = None
        self.value = None

    def add(self, mask: np.ndarray, block: np.ndarray, offset: tuple) -> None:
        n = int(np.count_nonzero(mask))
        if n and self.first is None:
            local = tuple(int(i) for i in np.argwhere(mask)[0])
            self.first = offset[:-1] + (offset[-1] + local[0],) + local[1:]
            self.value = block[local].item()
        self.count += n

    def message(self, what: str, nbatch: int, names: tuple[str, ...]) -> str:
        msg = f"{what} at {_where(self.first, nbatch, names)} (value {self.value!r})"
        if self.count > 1:
            msg += f"; {self.count} places in all"
        return msg


def _blocks(shape: tuple[int, ...], itemsize: int):
    """Index tuples covering an array of `shape` in C order, each at most `_CHUNK_BYTES`.

    Each index is a tuple of ints followed by one slice (so every block keeps the full
    trailing axes); `offset` is the same index with the slice replaced by its start.
    """
    if not shape:
        yield (), ()
        return
    inner, k = itemsize, len(shape)
    while k > 1 and inner * shape[k - 1] <= _CHUNK_BYTES:
        inner *= shape[k - 1]
        k -= 1
    step = max(1, _CHUNK_BYTES // inner)
    n = shape[k - 1]
    for outer in np.ndindex(*shape[: k - 1]):
        for i in range(0, n, step):
            yield outer + (slice(i, min(i + step, n)),), outer + (i,)


def _host_reader(x):
    """A function `index -> NumPy block` that copies at most one block at a time."""
    if isinstance(x, jax.Array) and not all(d.platform == "cpu" for d in x.devices()):
        return lambda ix: np.asarray(x[ix])  # one slice per transfer off the device
    host = np.asarray(x)  # NumPy input, or a CPU array's host buffer (no copy)
    return lambda ix: host[ix]


def _real_dtype(name: str, x) -> np.dtype:
    dtype = getattr(x, "dtype", None)
    dtype = np.dtype(dtype if dtype is not None else np.asarray(x).dtype)
    if dtype.kind == "c":
        raise InvalidMDPError(
            f"{name} must be real; got complex dtype {dtype} (the imaginary part would be "
            "dropped). Pass the real part explicitly if that is what you mean."
        )
    if dtype.kind not in "biuf":
        raise InvalidMDPError(f"{name} must be a numeric array; got dtype {dtype}.")
    return dtype


def check_arrays(P, R, g, *, dtype=None, atol: float | None = None) -> None:
    """Validates concrete `(transitions, rewards, discount)` block by block on the host.

    Args:
      P: `[..., S, A, S]` transitions (NumPy or concrete JAX array).
      R: `[..., S, A]` rewards.
      g: `[...]` discount.
      dtype: the float dtype the data will be stored in: blocks are cast to it before
        checking, so what is checked is what the MDP will hold (a float64 reward of 1e300
        is +inf in float32). `None`: the arrays' own dtypes, which must be floating.
      atol: row-sum tolerance; `None`: `default_row_atol(dtype, S)`.

    Raises:
      InvalidMDPError: naming the first bad place and the number of bad places.
    """
    pdtype, rdtype = _real_dtype("transitions", P), _real_dtype("rewards", R)
    _real_dtype("discount", g)
    if dtype is None:
        for name, dt in (("transitions", pdtype), ("rewards", rdtype)):
            if dt.kind != "f":
                raise InvalidMDPError(
                    f"{name} must be floating point; got {dt}. jaxmdp.make_mdp converts "
                    "integer and bool inputs to JAX's default float."
                )
    pt = np.dtype(dtype) if dtype is not None else pdtype
    rt = np.dtype(dtype) if dtype is not None else rdtype
    cast_note = f" (in {np.dtype(dtype).name})" if dtype is not None else ""
    pshape, rshape = tuple(np.shape(P)), tuple(np.shape(R))
    S = pshape[-1]
    if atol is None:
        atol = default_row_atol(pt, S)
    nbp, nbr = len(pshape) - 3, len(rshape) - 2
    sas, sa = ("state", "action", "next state"), ("state", "action")

    nonfinite, negative = _Finding(), _Finding()
    sums = np.empty(pshape[:-1], np.float64)
    read = _host_reader(P)
    for ix, offset in _blocks(pshape[:-1], S * pdtype.itemsize):
        with np.errstate(over="ignore"):  # an overflow to inf is reported just below
            block = read(ix).astype(pt, copy=False)
        nonfinite.add(~np.isfinite(block), block, offset)
        negative.add(block < 0, block, offset)
        sums[ix] = block.sum(axis=-1, dtype=np.float64)
    if nonfinite.count:
        raise InvalidMDPError(
            nonfinite.message(f"non-finite transition probability{cast_note}", nbp, sas)
        )
    if negative.count:
        raise InvalidMDPError(negative.message("negative transition probability", nbp, sas))

    bad_reward = _Finding()
    unavailable = np.empty(rshape, bool)
    read = _host_reader(R)
    for ix, offset in _blocks(rshape, rdtype.itemsize):
        with np.errstate(over="ignore"):
            block = read(ix).astype(rt, copy=False)
        bad_reward.add(np.isnan(block) | (block == np.inf), block, offset)
        unavailable[ix] = np.isneginf(block)
    if bad_reward.count:
        raise InvalidMDPError(
            bad_reward.message(
                f"reward is NaN or +inf{cast_note} (-inf is reserved for unavailable actions)",
                nbr,
                sa,
            )
        )
    no_action = unavailable.all(axis=-1)
    if no_action.any():
        idx = tuple(int(i) for i in np.argwhere(no_action)[0])
        n = int(no_action.sum())
        raise InvalidMDPError(
            f"state has no available action (every reward is -inf) at "
            f"{_where(idx, nbr, ('state',))}" + (f"; {n} places in all" if n > 1 else "")
        )

    off = np.abs(sums - 1.0) > atol
    if off.any():
        # A row of an unavailable action may be all zero: it is never used. Only rows off
        # in P need the (broadcast) comparison with the rewards' availability.
        shape = np.broadcast_shapes(unavailable.shape, sums.shape)
        unavailable_b = np.broadcast_to(unavailable, shape)
        sums_b = np.broadcast_to(sums, shape)
        bad = np.broadcast_to(off, shape) & ~(unavailable_b & (sums_b == 0.0))
        if bad.any():
            finding = _Finding()
            finding.add(bad, sums_b, (0,))
            raise InvalidMDPError(
                finding.message(
                    f"transition row does not sum to 1 within atol={atol:.3g}",
                    len(shape) - 2,
                    sa,
                )
            )

    gv = np.asarray(g)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(gv) | (gv < 0) | (gv > 1)
    if bad.any():
        if gv.ndim:
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidMDPError(
                f"discount must be finite and in [0, 1]; got {gv[idx].item()!r} at batch index "
                f"{idx if len(idx) > 1 else idx[0]} ({int(bad.sum())} in all)."
            )
        raise InvalidMDPError(f"discount must be finite and in [0, 1]; got {gv.item()!r}.")


def validate_mdp(mdp: MDP, *, atol: float | None = None) -> MDP:
    """Check a concrete MDP on the host; return it unchanged or raise `InvalidMDPError`.

    Checks: shapes ([..., S, A, S], [..., S, A], broadcastable batch axes); real floating
    dtypes (complex is refused, never truncated; integer and bool arrays are refused here,
    `jaxmdp.make_mdp` converts them); probabilities finite and non-negative; each row sums
    to 1 within `atol` (default from the dtype and S, see `default_row_atol`; rows of
    unavailable actions, reward `-inf`, may also be all zero); rewards not NaN and not
    `+inf` (`-inf` marks an unavailable action); every state has at least one available
    action; discount finite and in [0, 1].

    The data is read in blocks of at most 64 MiB (no copy of NumPy or CPU arrays; one block
    at a time from an accelerator), so the extra memory stays a few blocks plus the row
    sums (`[..., S, A]` float64), whatever the size of the MDP.

    Args:
      mdp: the MDP, possibly batched. Must hold concrete arrays (not tracers).
      atol: absolute tolerance on row sums; `None` picks one from the dtype and S.

    Raises:
      ValueError: wrong shapes (structural).
      TypeError: traced leaves (inside jit / vmap).
      InvalidMDPError: bad numbers or dtypes, naming the first batch index / state /
        action and a count.
    """
    if type(mdp.transitions).__name__ == "SparseTransitions":
        from jaxmdp._sparse_validate import validate_sparse_mdp  # the sparse form's checks

        return validate_sparse_mdp(mdp, atol=atol)
    check_shapes(mdp)
    for name, leaf in zip(MDP._fields, mdp, strict=True):
        if is_traced(leaf):
            raise TypeError(
                f"validate_mdp needs concrete arrays, but `{name}` is traced (inside jit/vmap). "
                "Validate outside the transformation, or rely on the per-MDP status codes."
            )
    check_arrays(mdp.transitions, mdp.rewards, mdp.discount, atol=atol)
    return mdp
