"""`np.unique` for the shapes a sweep's results come in, without its sort where it can.

A million-member sweep's policy is `[N, S]` small integers and its status, iteration counts
and per-state actions are `[N]` columns of a few distinct small integers. `np.unique(axis=0)`
sorts the rows as opaque byte strings and `np.unique` of a column sorts it (1.7 s and ~0.1 s
per column at N = 10^6, W1M in issue 15); here:

- `unique_inverse(x)`: for integers in a small range, a count per value (`np.bincount`)
  instead of the sort; otherwise `np.unique`. Same `(values, inverse)` as `np.unique`.
- `row_labels(rows)`: dense labels of equal rows, by packing as many columns as fit into
  one int64 key, relabelling densely, and going on with the next columns: exact (no
  hashing), one 1-D unique per ~`62 / log2(range)` columns.
"""

from __future__ import annotations

import numpy as np

_SPAN_MAX = 1 << 20  # a bincount over at most this many values (8 MB of counts)
_KEY_MAX = 1 << 62  # packed keys stay below this


def unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(x, return_inverse=True)` of a 1-D array (sorted values, int64 inverse)."""
    x = np.asarray(x).reshape(-1)
    if x.size and x.dtype.kind in "biu":
        lo, hi = int(x.min()), int(x.max())
        if hi - lo < _SPAN_MAX and -_KEY_MAX < lo and hi < _KEY_MAX:  # int64 arithmetic
            shifted = (x.astype(np.int64) - lo) if lo else x.astype(np.int64, copy=False)
            present = np.bincount(shifted, minlength=hi - lo + 1) > 0
            offsets = np.flatnonzero(present)
            rank = np.cumsum(present, dtype=np.int64) - 1
            return (offsets + lo).astype(x.dtype), rank[shifted]
    values, inverse = np.unique(x, return_inverse=True)
    return values, np.reshape(inverse, -1).astype(np.int64, copy=False)


def row_labels(rows: np.ndarray) -> np.ndarray:
    """`[N]` int64 labels of the rows of an integer `[N, S]` array: equal rows get equal
    labels, different rows different ones (labels are dense, 0..K-1, in no promised order)."""
    rows = np.asarray(rows)
    n, s = rows.shape
    labels = np.zeros(n, np.int64)
    if n == 0 or s == 0:
        return labels
    lo, hi = int(rows.min()), int(rows.max())
    base, count, col = hi - lo + 1, 1, 0
    while col < s:
        # not even one more column fits (or values beyond int64 arithmetic): sort the rows
        if count * base >= _KEY_MAX or not -_KEY_MAX < lo <= hi < _KEY_MAX:
            _, inverse = np.unique(rows, axis=0, return_inverse=True)
            return np.reshape(inverse, -1).astype(np.int64)
        key, room = labels, count
        while col < s and room * base < _KEY_MAX:
            key = key * base + (rows[:, col].astype(np.int64) - lo)
            room *= base
            col += 1
        _, labels = unique_inverse(key)
        count = int(labels.max()) + 1
    return labels
