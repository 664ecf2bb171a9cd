"""The sparse form of `transitions`: padded successor lists, and conversions both ways.

Gridworlds, inventory and queueing models, Gymnasium toy-text environments and Garnet
benchmarks have a handful of successors per (s, a); a dense `[S, A, S]` array of them is
mostly zeros (a 100x100 gridworld: 1.6 GB dense, 0.6 MB as successor lists).

`SparseTransitions(next_states, probs)` stores, for every (s, a), K slots:
`next_states [..., S, A, K]` int32 successor indices and `probs [..., S, A, K]` their
probabilities, K = the most successors of any (s, a). Padding slots have probability 0 and
any valid index (0 is customary). A successor listed twice counts with the sum of its
probabilities (every kernel gathers and sums, so duplicates are simply summed; `to_dense`
and `to_scipy` sum them too). It is a pytree with two leaves and goes wherever a dense
`transitions` goes (`MDP`, `make_mdp`, `validate_mdp`, `solve`, `sweep`, ...). Leading batch
axes broadcast like a dense array's; the two leaves may even carry different ones (one
successor structure shared by members with their own probabilities).
"""

from __future__ import annotations

from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp._typing import Shape

_FIELDS = ("next_states", "probs")


class SparseTransitions:
    """Transitions as padded successor lists (the sparse form of `transitions`).

    `p(next_states[..., s, a, k] | s, a) = probs[..., s, a, k]`; slots with probability 0 are
    padding; a successor listed in several slots gets the sum of their probabilities. No
    checks run here (JAX rebuilds pytrees with placeholder leaves); `jaxmdp.make_mdp` and
    `jaxmdp.validate_mdp` check indices, probabilities and row sums.

    Attributes:
      next_states: `[..., S, A, K]` int32 successor indices in `[0, S)`.
      probs: `[..., S, A, K]` float probabilities (rows sum to 1 over the K slots).
    """

    __slots__ = _FIELDS
    _fields = _FIELDS
    next_states: Annotated[jax.Array, Shape("... S A K")]  # int32
    probs: Annotated[jax.Array, Shape("... S A K")]

    def __init__(self, next_states, probs):
        object.__setattr__(self, "next_states", next_states)
        object.__setattr__(self, "probs", probs)

    def __setattr__(self, name, value):
        raise AttributeError("SparseTransitions is immutable; build a new one.")

    def __iter__(self):
        return iter((self.next_states, self.probs))

    def __repr__(self) -> str:
        def show(x):
            shape = getattr(x, "shape", None)
            return f"{list(shape)} {getattr(x, 'dtype', '')}" if shape is not None else repr(x)

        return f"SparseTransitions(next_states={show(self.next_states)}, probs={show(self.probs)})"

    @property
    def num_states(self) -> int:
        return int(np.shape(self.next_states)[-3])

    @property
    def num_actions(self) -> int:
        return int(np.shape(self.next_states)[-2])

    @property
    def num_successors(self) -> int:
        """K, the slots per (s, a)."""
        return int(np.shape(self.next_states)[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Broadcast batch shape of the two leaves (their axes before `[S, A, K]`)."""
        return tuple(
            np.broadcast_shapes(np.shape(self.next_states)[:-3], np.shape(self.probs)[:-3])
        )

    @property
    def dtype(self):
        """The probabilities' dtype."""
        return jnp.result_type(self.probs)


def _flatten_with_keys(p: SparseTransitions):
    keys = tuple(jax.tree_util.GetAttrKey(f) for f in _FIELDS)
    return tuple(zip(keys, (p.next_states, p.probs), strict=True)), None


jax.tree_util.register_pytree_with_keys(
    SparseTransitions,
    _flatten_with_keys,
    lambda _, children: SparseTransitions(*children),
    lambda p: ((p.next_states, p.probs), None),
)


def is_sparse(transitions) -> bool:
    return isinstance(transitions, SparseTransitions)


# -- conversions ---------------------------------------------------------------------------------


def to_dense(transitions) -> jax.Array:
    """The dense `[..., S, A, S]` array of a `SparseTransitions` (a dense array is returned
    as is). Duplicate successors are summed. Works under `jit` (a scatter-add)."""
    if not is_sparse(transitions):
        return jnp.asarray(transitions)
    return _dense(transitions.next_states, transitions.probs)


@jax.jit
def _dense(ns, pr) -> jax.Array:
    """`to_dense` of the leaves: one program per shape (op by op, an eager call ran one
    small program per operation)."""
    S = ns.shape[-3]
    batch = tuple(np.broadcast_shapes(ns.shape[:-3], pr.shape[:-3]))
    ns = jnp.broadcast_to(ns, batch + ns.shape[-3:])
    pr = jnp.broadcast_to(pr, batch + pr.shape[-3:])

    def one(ns, pr):
        s = jnp.arange(S)[:, None, None]
        a = jnp.arange(ns.shape[1])[None, :, None]
        return jnp.zeros((S, ns.shape[1], S), pr.dtype).at[s, a, ns].add(pr)

    for _ in batch:
        one = jax.vmap(one)
    return one(ns, pr)


def to_sparse(transitions, num_successors: int | None = None) -> SparseTransitions:
    """The sparse form of a concrete dense `[..., S, A, S]` array (host side, NumPy).

    Each (s, a) keeps its nonzero entries in increasing next-state order; padding slots get
    index 0 and probability 0.

    Args:
      transitions: `[..., S, A, S]` probabilities (concrete; a `SparseTransitions` is
        returned as is).
      num_successors: K, the slots per (s, a); default: the most nonzeros of any row.

    Raises:
      ValueError: a row has more nonzeros than `num_successors` (naming the first), or the
        input is traced (convert outside `jit`, or build `SparseTransitions` directly).
    """
    if is_sparse(transitions):
        return transitions
    if isinstance(transitions, jax.core.Tracer):
        raise ValueError(
            "to_sparse needs a concrete array (it reads the sparsity pattern on the host); "
            "inside jit build jaxmdp.SparseTransitions(next_states, probs) directly."
        )
    P = np.asarray(transitions)
    if P.ndim < 3 or P.shape[-1] != P.shape[-3]:
        raise ValueError(f"to_sparse expects transitions [..., S, A, S]; got shape {P.shape}.")
    nnz = (P != 0).sum(-1)
    most = int(nnz.max()) if nnz.size else 0
    K = max(most, 1) if num_successors is None else int(num_successors)
    if K < 1:
        raise ValueError(f"num_successors must be >= 1; got {num_successors!r}.")
    if most > K:
        idx = tuple(int(i) for i in np.argwhere(nnz > K)[0])
        raise ValueError(
            f"to_sparse: the row at {idx} (batch..., state, action) has {int(nnz[idx])} "
            f"successors, more than num_successors={K}."
        )
    # A stable sort on "is zero" puts each row's nonzeros first, in index order.
    order = np.argsort(P == 0, axis=-1, kind="stable")[..., :K]
    probs = np.take_along_axis(P, order, axis=-1)
    next_states = np.where(probs != 0, order, 0).astype(np.int32)
    if K > probs.shape[-1]:  # more slots than states: pad
        pad = [(0, 0)] * (probs.ndim - 1) + [(0, K - probs.shape[-1])]
        probs, next_states = np.pad(probs, pad), np.pad(next_states, pad)
    return SparseTransitions(jnp.asarray(next_states), jnp.asarray(probs))


def _scipy():
    try:
        import scipy.sparse as sp
    except ImportError:
        raise ImportError(
            "jaxmdp.from_scipy / to_scipy need SciPy: pip install 'jaxmdp-solver[sparse]' "
            "(or pip install scipy)."
        ) from None
    return sp


def from_scipy(matrices, num_actions: int | None = None, *, dtype=None) -> SparseTransitions:
    """`SparseTransitions [S, A, K]` from SciPy sparse matrices (one MDP).

    Two layouts:
      - a sequence of A matrices `[S, S]` (pymdptoolbox's), `P[a][s, s'] = p(s' | s, a)`;
      - one `[S*A, S]` matrix in the state-action-pair form with row `s * A + a`
        (pass `num_actions`; rows in that order, every pair present).

    Dense NumPy arrays are accepted in place of the sparse matrices. Duplicate entries are
    summed; explicit zeros are dropped. No SciPy matrix is densified.

    Args:
      matrices: see above.
      num_actions: A for the `[S*A, S]` form (required there, unused otherwise).
      dtype: float dtype of `probs` (default: JAX's default float, or the input's float64
        under `jax_enable_x64`).
    """
    sp = _scipy()
    if num_actions is None:
        mats = [sp.csr_matrix(m) for m in matrices]
        if not mats:
            raise ValueError("from_scipy needs at least one action's matrix.")
        S = mats[0].shape[0]
        for a, m in enumerate(mats):
            if m.shape != (S, S):
                raise ValueError(
                    f"from_scipy: matrix {a} has shape {m.shape}; expected ({S}, {S})."
                )
        pairs = sp.vstack(mats, format="csr")  # row a * S + s
        A = len(mats)
        order = np.arange(S * A).reshape(A, S).T.reshape(-1)  # row s * A + a
        pairs = pairs[order]
    else:
        pairs = sp.csr_matrix(matrices)
        A = int(num_actions)
        L, S = pairs.shape
        if A < 1 or L != S * A:
            raise ValueError(
                f"from_scipy: a state-action-pair matrix must be [S*A, S] = [{S}*{A}, {S}]; "
                f"got {pairs.shape}."
            )
    next_states, probs = csr_slots(pairs)
    S = pairs.shape[1]
    K = next_states.shape[-1]
    dtype = dtype or jnp.result_type(float)
    return SparseTransitions(
        jnp.asarray(next_states.reshape(S, A, K)), jnp.asarray(probs.reshape(S, A, K), dtype)
    )


def csr_slots(rows, num_successors: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(next_states [L, K] int32, probs [L, K] float64)` host arrays: the K slots of each
    row of a SciPy CSR matrix `[L, S]` (row l's nonzeros in column order, then padding:
    index 0, probability 0). Duplicate entries are summed and explicit zeros dropped first
    (in a copy, where needed). K: `num_successors`, default the most nonzeros of
    any row (at least 1)."""
    if not rows.has_canonical_format or not np.all(rows.data):
        rows = rows.copy()  # the caller's matrix stays as it was
        rows.sum_duplicates()
        rows.eliminate_zeros()
    which = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    return entry_slots(which, rows.indices, rows.data, rows.shape[0], num_successors)


def entry_slots(
    row, col, value, num_rows: int, num_successors: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`(next_states [num_rows, K] int32, probs [num_rows, K] float64)` from the entries
    `(row[i], col[i], value[i])` of a sparse matrix, sorted by row, at most one per
    (row, col): each row's entries in the given order, then padding (index 0, probability 0).
    K: `num_successors`, default the most entries of any row (at least 1)."""
    row = np.asarray(row, np.int64)
    counts = np.bincount(row, minlength=num_rows)
    most = int(counts.max()) if counts.size else 0
    K = max(most, 1) if num_successors is None else int(num_successors)
    if most > K:
        raise ValueError(f"a row has {most} successors, more than num_successors={K}.")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(row.size) - starts[row]
    next_states = np.zeros((num_rows, K), np.int32)
    probs = np.zeros((num_rows, K), np.float64)
    next_states[row, slot] = col
    probs[row, slot] = value
    return next_states, probs


def to_scipy(transitions, layout: str = "actions"):
    """SciPy CSR matrices of one MDP's transitions (dense or sparse form).

    Args:
      transitions: `[S, A, S]` array or `SparseTransitions [S, A, K]` (no batch axes).
      layout: `"actions"`: a list of A `[S, S]` matrices (pymdptoolbox's layout);
        `"pairs"`: one `[S*A, S]` matrix with row `s * A + a` (QuantEcon's SA-pair form
        with every pair present).

    Zero probabilities (padding) are dropped; duplicate successors are summed.
    """
    sp = _scipy()
    if layout not in ("actions", "pairs"):
        raise ValueError(f"layout must be 'actions' or 'pairs'; got {layout!r}.")
    if is_sparse(transitions):
        if transitions.batch_shape:
            raise ValueError(
                f"to_scipy converts one MDP; got batch shape {transitions.batch_shape}."
            )
        ns = np.asarray(transitions.next_states)
        pr = np.asarray(transitions.probs)
    else:
        P = np.asarray(transitions)
        if P.ndim != 3:
            raise ValueError(f"to_scipy converts one MDP [S, A, S]; got shape {P.shape}.")
        ns = np.broadcast_to(np.arange(P.shape[-1]), P.shape)
        pr = P
    S, A, K = ns.shape
    keep = pr != 0
    rows = np.broadcast_to(np.arange(S * A).reshape(S, A, 1), ns.shape)
    pairs = sp.csr_matrix((pr[keep], (rows[keep], ns[keep])), shape=(S * A, S))
    pairs.sum_duplicates()
    if layout == "pairs":
        return pairs
    return [pairs[np.arange(S) * A + a] for a in range(A)]
