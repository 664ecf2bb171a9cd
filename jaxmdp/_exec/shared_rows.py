"""The static structure of a small shared `transitions` array, for `shared_tiles.py`.

A shared transitions array whose nonzero entries are few (the lecture world with slip:
132 of 484) is compiled into the sweep as static row slices: for each (action, state) the
successors with nonzero probability, their probabilities staying data (`probs [E]`, one per
entry), so new probabilities reuse the program and only a new structure recompiles. Entries
of probability 0 (dense zeros, sparse padding) are left out, which changes nothing but the
work (0 * V adds an exact 0 for finite V).

Reading a concrete array's structure copies it to the host, so recently read structures are
cached by the identity of the (immutable) arrays, as `shared_layout` does.
"""

from __future__ import annotations

import collections
import weakref
from typing import NamedTuple

import jax
import numpy as np

from jaxmdp._sparse import is_sparse


class Rows(NamedTuple):
    """Static successor structure (hashable: part of the compiled program's key).

    `entries[a][s]` is a tuple of `(slot, next_state)` pairs, `slot` indexing the
    probabilities `probs [E]` handed to the program as data; `unit`: every entry has
    probability exactly 1 (deterministic transitions), so no multiply is needed.
    """

    num_states: int
    num_actions: int
    entries: tuple
    unit: bool

    @property
    def num_entries(self) -> int:
        return sum(len(row) for per_action in self.entries for row in per_action)


class Prepared(NamedTuple):
    num_entries: int  # nonzero entries (read for every shared batch: the plan's fact)
    rows: Rows | None  # None when `num_entries` is above the limit `prepare` was given
    probs: np.ndarray | None  # [E] in entry order (the transitions' own dtype)


_CACHE: collections.OrderedDict[tuple, tuple[tuple, Prepared]] = collections.OrderedDict()
_CACHE_MAX = 16


def concrete(transitions) -> bool:
    """Can the structure be read (every leaf a concrete array, not a tracer)?"""
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(transitions))


def prepare(transitions, limit: int) -> Prepared:
    """The `Prepared` structure of a concrete shared `transitions` (dense `[S, A, S]` or
    `SparseTransitions [S, A, K]`, no batch axes); `rows` only up to `limit` entries (the
    count itself is one vectorised pass)."""
    leaves = jax.tree.leaves(transitions)
    cacheable = all(isinstance(x, jax.Array) for x in leaves)
    key = tuple(id(x) for x in leaves)
    if cacheable:
        hit = _CACHE.get(key)
        fresh = hit is not None and all(r() is x for r, x in zip(hit[0], leaves, strict=True))
        if hit is not None and fresh and (hit[1].rows is not None or hit[1].num_entries > limit):
            _CACHE.move_to_end(key)
            return hit[1]
    out = _read(transitions, limit)
    if cacheable:
        _CACHE[key] = (tuple(weakref.ref(x) for x in leaves), out)
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return out


def _read(transitions, limit: int) -> Prepared:
    """The structure in one vectorised pass: the nonzero entries in (action, state, slot)
    order, grouped into rows (a loop over rows calling `np.flatnonzero` took ~0.27 ms for the
    lecture world, read twice per solve of NumPy transitions, which are not cached)."""
    if is_sparse(transitions):
        succ = np.asarray(transitions.next_states)
        prob = np.asarray(transitions.probs)
    else:
        prob = np.asarray(transitions)
        succ = None
    nonzero = prob != 0
    count = int(np.count_nonzero(nonzero))
    if count > limit:
        return Prepared(count, None, None)
    S, A, _ = prob.shape
    # Entries ordered by action, then state, then slot: `[A, S, K]`'s row-major order.
    a_s_k = np.transpose(nonzero, (1, 0, 2))
    a_idx, s_idx, k_idx = np.nonzero(a_s_k)
    probs = prob[s_idx, a_idx, k_idx]
    nxt = k_idx if succ is None else succ[s_idx, a_idx, k_idx]
    # Row (a, s) holds entries bounds[a * S + s] .. bounds[a * S + s + 1] - 1.
    bounds = np.searchsorted(a_idx * S + s_idx, np.arange(A * S + 1))
    pairs = list(zip(range(count), nxt.tolist(), strict=True))
    entries = tuple(
        tuple(tuple(pairs[bounds[a * S + s] : bounds[a * S + s + 1]]) for s in range(S))
        for a in range(A)
    )
    lengths = np.diff(bounds)
    unit = bool(np.all(probs == 1)) and bool(np.all(lengths == 1))
    rows = Rows(S, A, entries, unit)
    return Prepared(count, rows, np.asarray(probs, prob.dtype).reshape(-1))
