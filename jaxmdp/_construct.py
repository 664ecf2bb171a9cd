"""Constructors for the layouts users bring; conversions happen once, here at the edge.

Host data (NumPy arrays, lists) stays on the host until it has been validated, block by
block (`jaxmdp._validate`), and is then copied to the device once, already in its final
dtype; JAX arrays and tracers take the `jax.numpy` route (under `jit`, with
`validate=False`).
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import _validate
from jaxmdp._mdp import MDP, check_shapes
from jaxmdp._memory import require
from jaxmdp._sparse import SparseTransitions, csr_slots, is_sparse, to_scipy
from jaxmdp._typing import DiscountLike, RewardsLike, TransitionsLike
from jaxmdp._validate import InvalidMDPError, check_arrays, is_traced

_REWARDS_PER = ("state_action", "transition", "state")


def _input(name: str, x):
    """A JAX array / tracer as is, anything else as a NumPy array; real numbers only."""
    if not isinstance(x, jax.Array):
        try:
            x = np.asarray(x)
        except Exception as err:
            raise InvalidMDPError(
                f"{name} must be a numeric array; got {type(x).__name__}."
            ) from err
    kind = np.dtype(x.dtype).kind
    if kind == "c":
        raise InvalidMDPError(
            f"{name} must be real; got complex dtype {x.dtype} (the imaginary part would be "
            "dropped). Pass the real part explicitly if that is what you mean."
        )
    if kind not in "biuf":
        raise InvalidMDPError(f"{name} must be a numeric array; got dtype {x.dtype}.")
    return x


def _target_dtype(P, dtype) -> np.dtype:
    """The float dtype of the MDP: `dtype`, else P's float dtype as JAX stores it (float64
    becomes float32 unless x64 is enabled), else JAX's default float."""
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise ValueError(f"dtype must be a floating-point dtype; got {dt}.")
        return np.dtype(jax.dtypes.canonicalize_dtype(dt))
    if np.dtype(P.dtype).kind == "f":
        return np.dtype(jax.dtypes.canonicalize_dtype(P.dtype))
    return np.dtype(jnp.result_type(float))


def _expected_transition_rewards(P: np.ndarray, R: np.ndarray) -> np.ndarray:
    """`sum_s' P R` over the last axis in float64, in blocks of states (bounded memory).

    Impossible transitions (P = 0) are dropped, so a finite or infinite reward on them
    never turns into NaN.
    """
    shape = np.broadcast_shapes(P.shape, R.shape)
    out = np.empty(shape[:-1], np.float64)
    per_state = 8 * int(np.prod(shape[:-3], dtype=np.int64)) * shape[-2] * shape[-1]
    step = max(1, _validate._CHUNK_BYTES // max(per_state, 1))
    for i in range(0, shape[-3], step):
        p = P[..., i : i + step, :, :].astype(np.float64)
        r = R[..., i : i + step, :, :]
        with np.errstate(invalid="ignore", over="ignore"):
            out[..., i : i + step, :] = np.where(p > 0, p * r, 0.0).sum(axis=-1)
    return out


def _to_device(x, dtype):
    """Host data -> one device copy in `dtype` (`jnp.asarray` of NumPy makes two)."""
    if isinstance(x, jax.Array):
        return x.astype(dtype) if x.dtype != dtype else x
    return jax.device_put(np.asarray(x, dtype=dtype))


def make_mdp(
    transitions: TransitionsLike,
    rewards: RewardsLike,
    discount: DiscountLike,
    *,
    rewards_per: str = "state_action",
    available=None,
    validate: bool = True,
    dtype=None,
) -> MDP:
    """Build an `MDP` from arrays in jaxmdp's layout, validating them by default.

    NumPy (host) inputs are validated on the host in blocks, before anything is copied to
    the device, and then copied once in the final dtype: the extra memory is one copy of
    the data on the device plus a few 64 MiB blocks (and a host copy when the dtype
    changes, e.g. float64 input stored as float32).

    Args:
      transitions: `[..., S, A, S]` p(s' | s, a), or a `jaxmdp.SparseTransitions`
        (successor lists `[..., S, A, K]`; then `rewards_per="transition"` takes rewards per
        successor slot, `[..., S, A, K]`).
      rewards: according to `rewards_per`:
        `"state_action"`: `[..., S, A]` expected reward r(s, a) (`-inf` = unavailable);
        `"transition"`: `[..., S, A, S]` reward r(s, a, s'), reduced to
        r(s, a) = sum_s' p(s' | s, a) r(s, a, s') over the possible transitions;
        `"state"`: `[..., S]` reward r(s) received in state s whatever the action.
      discount: `[...]` gamma in [0, 1].
      available: optional bool mask `[..., S, A]`; `False` marks an action that cannot be
        taken in that state (its reward becomes `-inf`, so no solver ever chooses it).
      validate: run the checks of `validate_mdp` (host side; needs concrete arrays).
      dtype: float dtype of the MDP (default: keep a float `transitions` dtype, as JAX
        stores it; integer and bool inputs become JAX's default float).

    Returns:
      The `MDP`.

    Raises:
      ValueError: wrong shapes or arguments.
      InvalidMDPError: complex or non-numeric data, or (with `validate`) bad numbers,
        naming the place.
      TypeError: `validate=True` with traced inputs.
    """
    if rewards_per not in _REWARDS_PER:
        raise ValueError(f"rewards_per must be one of {_REWARDS_PER}; got {rewards_per!r}.")
    if type(transitions).__name__ == "SparseTransitions":
        from jaxmdp._sparse_construct import make_sparse_mdp  # the sparse form (same rules)

        kw = dict(rewards_per=rewards_per, available=available, validate=validate, dtype=dtype)
        return make_sparse_mdp(transitions, rewards, discount, **kw)
    P = _input("transitions", transitions)
    R = _input("rewards", rewards)
    g = _input("discount", discount)
    target = _target_dtype(P, dtype)
    leaves = {"transitions": P, "rewards": R, "discount": g, "available": available}
    traced = [name for name, x in leaves.items() if is_traced(x)]
    if validate and traced:
        name = traced[0]
        raise TypeError(
            f"make_mdp(validate=True) needs concrete arrays, but `{name}` is traced (inside "
            "jit/vmap). Validate outside the transformation (the solve's status codes still "
            "flag bad members), or pass validate=False inside it."
        )
    on_host = not any(isinstance(x, jax.Array) for x in (P, R))
    xp = np if on_host else jnp
    if rewards_per == "transition":
        if R.ndim < 3 or R.shape[-3:] != P.shape[-3:]:
            raise ValueError(
                f"rewards_per='transition' needs rewards of shape [..., S, A, S] matching "
                f"transitions {P.shape}; got {R.shape}."
            )
        if on_host:
            R = _expected_transition_rewards(P, R)
        else:
            # 0 * r for impossible transitions must not turn a finite r into NaN; drop them.
            Pf, Rf = jnp.asarray(P, target), jnp.asarray(R, target)
            R = jnp.sum(jnp.where(Pf > 0, Pf * Rf, 0.0), axis=-1)
    elif rewards_per == "state":
        if R.ndim < 1 or R.shape[-1] != P.shape[-1]:
            raise ValueError(
                f"rewards_per='state' needs rewards of shape [..., S] with S={P.shape[-1]}; got "
                f"{R.shape}."
            )
        R = xp.broadcast_to(R[..., :, None], R.shape + (P.shape[-2],))
    if available is not None:
        mask = available if isinstance(available, jax.Array) else np.asarray(available)
        if mask.dtype != np.bool_:
            raise ValueError(f"available must be a bool mask [..., S, A]; got dtype {mask.dtype}.")
        if mask.shape[-2:] != R.shape[-2:]:
            raise ValueError(
                f"available must have shape [..., S, A] matching rewards {R.shape}; got "
                f"{mask.shape}."
            )
        R = (jnp if isinstance(mask, jax.Array) or not on_host else np).where(
            mask, R.astype(target), -np.inf
        )
    check_shapes(MDP(P, R, g))
    if validate:
        check_arrays(P, R, g, dtype=target)
    nbytes = P.size * target.itemsize * (1 if P.dtype == target else 2)
    if isinstance(P, np.ndarray) and nbytes > _validate._CHUNK_BYTES:
        # The device copy (plus a host copy when the dtype changes) must fit: a MemoryError
        # naming both sizes, not an abort inside XLA. (Small ones are not worth the check.)
        require(
            nbytes,
            f"make_mdp: storing transitions {P.shape} as {target.name}",
            device=jax.devices()[0],
        )
    return MDP(_to_device(P, target), _to_device(R, target), _to_device(g, target))


def _is_sparse(x) -> bool:
    sparse = sys.modules.get("scipy.sparse")  # a sparse input means scipy is imported
    return sparse is not None and sparse.issparse(x)


def _per_action(name: str, x) -> list | None:
    """A list of A `[S, S]` matrices (dense NumPy or scipy.sparse) if `x` is one of
    pymdptoolbox's per-action forms (`[A, S, S]` array, or a list / tuple / object array of
    A matrices); `None` otherwise."""
    if _is_sparse(x):
        return None
    if isinstance(x, list | tuple) or (isinstance(x, np.ndarray) and x.dtype == object):
        items = list(np.asarray(x, dtype=object).ravel()) if isinstance(x, np.ndarray) else x
        if not items or not all(_is_sparse(m) or np.ndim(m) == 2 for m in items):
            return None
        return [m if _is_sparse(m) else _input(f"{name}[{a}]", m) for a, m in enumerate(items)]
    x = _input(name, x)
    return list(x) if x.ndim == 3 else None


def _square(name: str, mats: list, num_states: int | None = None) -> int:
    """The common S of A `[S, S]` matrices, or a ValueError naming the first bad one."""
    if not mats:
        raise ValueError(f"pymdptoolbox {name} must hold at least one action.")
    S = mats[0].shape[0] if num_states is None else num_states
    for a, m in enumerate(mats):
        if m.shape != (S, S):
            raise ValueError(
                f"pymdptoolbox {name}[{a}] must be [S, S] = ({S}, {S}) like {name}[0]; got "
                f"{m.shape}."
            )
    return S


def _expected_rewards(P: list, R: list, S: int) -> np.ndarray:
    """`[S, A]` r(s, a) = sum_s' P[a][s, s'] R[a][s, s'] over the possible transitions."""
    out = np.empty((S, len(P)), np.float64)
    for a, (p, r) in enumerate(zip(P, R, strict=True)):
        if not _is_sparse(p) and not _is_sparse(r):
            with np.errstate(invalid="ignore", over="ignore"):
                out[:, a] = np.where(p > 0, p * r, 0.0).sum(axis=1, dtype=np.float64)
            continue
        import scipy.sparse  # present: one of the two is a scipy.sparse matrix

        coo = scipy.sparse.coo_matrix(p)
        keep = coo.data > 0
        rows, cols, probs = coo.row[keep], coo.col[keep], coo.data[keep]
        if _is_sparse(r):
            values = np.asarray(scipy.sparse.csr_matrix(r)[rows, cols]).ravel()
        else:
            values = np.asarray(r)[rows, cols]
        out[:, a] = np.bincount(rows, weights=probs * values, minlength=S)
    return out


def _successor_lists(mats: list, S: int) -> SparseTransitions:
    """A matrices `[S, S]` (any mix of scipy.sparse and dense) as successor lists of host
    arrays (`next_states [S, A, K]` int32, `probs [S, A, K]` in the matrices' float dtype,
    float64 for integer ones), without densifying any sparse matrix."""
    import scipy.sparse  # present: one of the matrices is a scipy.sparse matrix

    A = len(mats)
    pairs = scipy.sparse.vstack([scipy.sparse.csr_matrix(m) for m in mats], format="csr")
    pairs = pairs[np.arange(S * A).reshape(A, S).T.reshape(-1)]  # row a*S + s -> s*A + a
    next_states, probs = csr_slots(pairs)
    dtype = np.result_type(*[m.dtype for m in mats])
    K = next_states.shape[-1]
    probs = probs.astype(dtype if dtype.kind == "f" else np.float64)
    return SparseTransitions(next_states.reshape(S, A, K), probs.reshape(S, A, K))


def pymdptoolbox_arrays(P, R) -> tuple[np.ndarray | SparseTransitions, np.ndarray]:
    """pymdptoolbox's `(P, R)`, any layout it accepts, as `(transitions, rewards [S, A])`
    host arrays in jaxmdp's layout. The one place that reads pymdptoolbox's forms.

    `transitions` is dense `[S, A, S]` for dense input, and successor lists
    (`SparseTransitions` of NumPy arrays, `[S, A, K]`) when any of the A matrices is
    scipy.sparse: nothing is densified.
    """
    mats = _per_action("P", P)
    if mats is None:
        shape = getattr(P, "shape", None)
        raise ValueError(
            "pymdptoolbox transitions P must be an [A, S, S] array or a list / tuple / object "
            f"array of A [S, S] matrices (dense or scipy.sparse); got {type(P).__name__}"
            + (f" of shape {shape}." if shape is not None else ".")
        )
    A, S = len(mats), _square("P", mats)
    transitions: np.ndarray | SparseTransitions
    if any(_is_sparse(m) for m in mats):
        transitions = _successor_lists(mats, S)
    elif isinstance(P, np.ndarray) and P.dtype != object and P.ndim == 3:
        transitions = np.transpose(P, (1, 0, 2))  # a view; copied once, on the way to JAX
    else:
        dtype = np.result_type(*[m.dtype for m in mats])
        dense = np.empty((S, A, S), dtype if dtype.kind == "f" else np.float64)
        for a, m in enumerate(mats):
            dense[:, a, :] = m.toarray() if _is_sparse(m) else m
        transitions = dense

    if _is_sparse(R):
        R = R.toarray()  # [S, A], or a [1, S] / [S, 1] per-state row
        R = R.ravel() if R.shape in ((1, S), (S, 1)) and R.shape != (S, A) else R
    plain = isinstance(R, np.ndarray) and R.dtype != object and R.ndim < 3
    per_action = None if plain else _per_action("R", R)
    if per_action is not None and len(per_action) == A:
        _square("R", per_action, S)
        return transitions, _expected_rewards(mats, per_action, S)
    R = _input("R", R)
    if R.shape == (S,):
        return transitions, np.broadcast_to(R[:, None], (S, A))
    if R.shape == (S, A):
        return transitions, R
    raise ValueError(
        f"pymdptoolbox rewards R must be [S] = ({S},), [S, A] = ({S}, {A}) (dense or "
        f"scipy.sparse), an [A, S, S] = ({A}, {S}, {S}) array, or a list / object array of A "
        f"[S, S] matrices; got {type(R).__name__} of shape {getattr(R, 'shape', None)}."
    )


def from_pymdptoolbox(P, R, discount, *, validate: bool = True, dtype=None) -> MDP:
    """Convert pymdptoolbox's layout (every form its `mdptoolbox.mdp` classes accept).

    Sparse transitions stay sparse: when any of the A matrices of `P` is scipy.sparse, the
    result holds a `jaxmdp.SparseTransitions` (successor lists `[S, A, K]`, K the most
    nonzeros of any row; nothing is densified); dense `P` gives dense `[S, A, S]`.

    Args:
      P: transitions: an `[A, S, S]` array, or a list, tuple or 1-D object array of A
        `[S, S]` matrices, each dense or scipy.sparse; `P[a][s, s'] = p(s' | s, a)`.
      R: rewards: `[S]` (per state), `[S, A]` (per state-action; dense or scipy.sparse),
        `[A, S, S]` (per transition, `R[a][s, s']`), or a list / tuple / object array of A
        `[S, S]` matrices (dense or scipy.sparse). Per-transition rewards are reduced to
        r(s, a) = sum_s' p(s' | s, a) R[a][s, s'] over the possible transitions, in float64.
      discount: gamma in [0, 1].
      validate: check the result with the rules of `jaxmdp.validate_mdp`.
      dtype: float dtype of the result (default: as `make_mdp`).

    Returns:
      `MDP` with `transitions` (`[S, A, S]`, or `SparseTransitions [S, A, K]` for sparse
      `P`), `rewards [S, A]`, `discount []`.

    Raises:
      ValueError: a layout pymdptoolbox does not accept either, naming P or R and the shapes.
    """
    transitions, rewards = pymdptoolbox_arrays(P, R)
    return make_mdp(transitions, rewards, discount, validate=validate, dtype=dtype)


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
    R = np.asarray(mdp.rewards)
    R = np.where(np.isneginf(R), np.finfo(R.dtype).min / 4, R)
    if is_sparse(mdp.transitions):
        # pymdptoolbox's sparse layout: a list of A scipy.sparse [S, S] matrices.
        return to_scipy(mdp.transitions), R
    P = np.transpose(np.asarray(mdp.transitions), (1, 0, 2))
    return P, R
