"""The shared transitions of `shared_vi.py` in the layout its batched backup wants.

Dense P with S >= 64 stays dense and runs batch-first; sparse input (`SparseTransitions`),
and dense P whose rows have few nonzeros, become successor lists `[A, S, K]` (batch-last
gathers); small structures also carry their indices as static Python ints, compiled into
the program as row slices. Reading a concrete P's structure costs a device-to-host copy,
so recently prepared layouts are cached by the identity of the (immutable) arrays.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp._sparse import SparseTransitions, is_sparse

# Dense P with at least this many states runs batch-first (below, the `[A*S, S] x [S, B]`
# batch-last product and slab maxima win: the lecture sweep took 16.7 ms batch-first, 12.1 ms
# batch-last; at S = 256 batch-first saves two 33 MB transposes).
_BATCH_FIRST_STATES = 64
# Use the gather form when every (s, a) has at most this fraction of S successors.
_SPARSE_FRACTION = 0.25
# Up to this many (a, s, successor) entries, the successor indices are compiled in as static
# row slices: XLA:CPU's generic gather and its dot at skinny shapes ([44, 11] x [11, 10^4] for
# the lecture world) run 8x slower than a fused loop over static slices. The unrolled form's
# compile time grows with it: 11 s at 2,048 entries (512 states x 4 actions), so larger
# structures take the gather.
_STATIC_ROWS = 256


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["dense", "succ", "prob"],
    meta_fields=["static_succ", "unit_prob", "batch_first"],
)
@dataclasses.dataclass(frozen=True)
class SharedP:
    """A shared transitions array in the layout the batched backup wants.

    Dense: `dense [S, A, S]` (the input itself). Sparse: `succ [A, S, K]`
    int32 successor indices and `prob [A, S, K]` (zero-padded). Small sparse structures also
    carry the indices as a static tuple (`static_succ`, flattened [A, S, K]); `unit_prob`
    marks deterministic transitions (K = 1, probability 1), which need no multiply.
    """

    dense: jax.Array | None
    succ: jax.Array | None
    prob: jax.Array | None
    static_succ: tuple | None = None
    unit_prob: bool = False
    batch_first: bool = False


# Layouts of recently seen concrete `transitions` (immutable jax Arrays), by identity of
# their leaves: reading the structure syncs with the device and copies P to the host, and
# the sweep over a parameter grid solves the same P again and again (0.4 ms of the lecture
# sweep's 4 ms).
_PREPARED: collections.OrderedDict[tuple, tuple[tuple, SharedP]] = collections.OrderedDict()
_PREPARED_MAX = 16


def prepare_shared(transitions) -> SharedP:
    """Choose the layout for a shared `transitions` (dense `[S, A, S]` or
    `SparseTransitions [S, A, K]`). Structure is only read when it is concrete.

    A new sparsity structure (not new probabilities) recompiles the static form.
    """
    leaves = jax.tree.leaves(transitions)
    if any(isinstance(x, jax.core.Tracer) or not isinstance(x, jax.Array) for x in leaves):
        return _prepare(transitions)
    key = tuple(id(x) for x in leaves)
    hit = _PREPARED.get(key)
    if hit is not None and all(r() is x for r, x in zip(hit[0], leaves, strict=True)):
        _PREPARED.move_to_end(key)
        return hit[1]
    out = _prepare(transitions)
    _PREPARED[key] = (tuple(weakref.ref(x) for x in leaves), out)
    while len(_PREPARED) > _PREPARED_MAX:
        _PREPARED.popitem(last=False)
    return out


def _prepare_sparse(p: SparseTransitions) -> SharedP:
    """The given successor lists, batch-last `[A, S, K]` (the gather form of the kernel)."""
    succ = jnp.transpose(jnp.asarray(p.next_states), (1, 0, 2)).astype(jnp.int32)
    prob = jnp.transpose(jnp.asarray(p.probs), (1, 0, 2))
    static, unit = None, False
    if not isinstance(p.next_states, jax.core.Tracer):  # read on the host (NumPy)
        host = np.transpose(np.asarray(p.next_states), (1, 0, 2))
        if host.size <= _STATIC_ROWS:
            static = tuple(int(i) for i in host.reshape(-1))
        if host.shape[-1] == 1 and not isinstance(p.probs, jax.core.Tracer):
            unit = bool(np.all(np.asarray(p.probs) == 1))
    return SharedP(None, succ, prob, static, unit)


def _prepare(transitions) -> SharedP:
    if is_sparse(transitions):
        return _prepare_sparse(transitions)
    S = transitions.shape[0]
    if not isinstance(transitions, jax.core.Tracer):
        P = np.asarray(transitions)
        nnz = (P != 0).sum(-1)
        K = int(nnz.max()) if nnz.size else 0
        if 0 < K <= max(1, int(_SPARSE_FRACTION * S)):
            # Row-wise stable sort puts the nonzeros first; keep K of them.
            order = np.argsort(P == 0, axis=-1, kind="stable")[..., :K]
            prob = np.transpose(np.take_along_axis(P, order, axis=-1), (1, 0, 2))
            succ = np.transpose(order.astype(np.int32), (1, 0, 2))
            static = None
            if succ.size <= _STATIC_ROWS:
                static = tuple(int(i) for i in succ.reshape(-1))
            unit = bool(K == 1 and np.all(prob == 1))
            return SharedP(None, jnp.asarray(succ), jnp.asarray(prob), static, unit)
    return SharedP(transitions, None, None, batch_first=S >= _BATCH_FIRST_STATES)
