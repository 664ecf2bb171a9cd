"""Member tiles for the batch-last kernel of `shared_vi` (sparse or small dense shared P).

The batch-last backup wants `rewards [A, S, B]` and `values [S, B]`, while callers hold
`rewards [B, S, A]` and want `values [B, S]`, `q_values [B, S, A]` back. Transposing the
whole batch on the way in and out cost two batch-sized copies of the rewards (W6: 1,000
variants of a 100x100 world, 160 MB each, peak memory 4.5x the batch's arrays). Here the
flattened batch is cut into tiles of `tile` members; each tile is transposed in (its
rewards and start values), iterated to convergence by the batch-last kernel, and its results
transposed back into the output arrays in place (`lax.fori_loop` carrying the outputs), so
the only batch-sized arrays are the caller's rewards and the results themselves. A tile's
working set (rewards, values and the loop's copies) stays in cache through its sweeps when
it fits (`tiles.shared_gather_tile`).

Per member: the same kernel, stopping rule, status and certificate as the untiled batch
(the kernel never mixes members); a tile iterates until its slowest member stops, converged
members stay frozen. The last tile starts early so that every tile is full (members in the
overlap are computed twice by the same program: either copy is the same result).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp._solution import Solution


def solve_in_tiles(fn, rewards, discount, values0, tile: int) -> Solution:
    """Run `fn` over tiles of members and assemble a batch-first `Solution`.

    Args:
      fn: `(rewards [A, S, T], discount [T], values0 [S, T] | None) -> Solution` with batch
        axis first (`values [T, S]`, `q_values [T, S, A]`, per-member fields `[T]`).
      rewards: `[B, S, A]`.
      discount: `[B]`.
      values0: `[B, S]` start values, or None (zeros: `fn` may skip the first product).
      tile: static members per tile, `1 <= tile`; clipped to B.

    Returns:
      `Solution` with `values [B, S]`, `q_values [B, S, A]`, per-member fields `[B]`.
    """
    B, S, A = rewards.shape
    T = min(tile, B)
    count = -(-B // T)

    def run(start):
        r = jnp.transpose(lax.dynamic_slice_in_dim(rewards, start, T), (2, 1, 0))
        g = lax.dynamic_slice_in_dim(discount, start, T)
        v0 = None if values0 is None else lax.dynamic_slice_in_dim(values0, start, T).T
        return fn(r, g, v0)

    if count == 1:
        return run(0)
    shapes = jax.eval_shape(run, 0)
    out = jax.tree.map(lambda s: jnp.zeros((B,) + s.shape[1:], s.dtype), shapes)

    def body(i, out):
        start = jnp.minimum(i * T, B - T)
        part = run(start)
        return jax.tree.map(
            lambda o, p: lax.dynamic_update_slice_in_dim(o, p, start, axis=0), out, part
        )

    return lax.fori_loop(0, count, body, out)
