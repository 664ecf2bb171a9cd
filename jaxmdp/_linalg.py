"""Dense linear algebra that never waits on XLA:CPU's shared thread pool.

Why (issue 16 #1, DECISIONS.md "No LAPACK call waits on the intra-op pool"): jaxlib 0.10's
CPU LAPACK kernels (`lapack_sgetrf_ffi`, the triangular solves, ...) split a BATCHED call
into chunks when the batch holds more than ~2e5 flops, schedule the chunks on XLA:CPU's
intra-op thread pool and block the calling thread until they are done (`ParallelBatchMap`
-> `BlockingCounter::Wait`). The calling thread is itself a pool thread running the program.
When as many programs as the pool has threads reach such a call at once (user threads, our
own host threads, several host devices), every pool thread blocks and no thread is left to
run the chunks: a deadlock at 0% CPU (2 of 2 threads on this 2-core machine, at once). A
batch of ONE matrix runs inline (`chunk_size >= batch_count`), never waiting on the pool.

So here every LAPACK-backed operation is wrapped in `jax.custom_batching.sequential_vmap`:
under `vmap` (the driver's batches, a user's vmap) it becomes a loop over the members, each
an unbatched LAPACK call that runs on the calling thread. Same factorisation per matrix as
before (the batched kernel ran the same routine on each member), so results are unchanged;
the cost is that a batch's factorisations no longer spread over the cores inside one call
(the host threads of `jaxmdp._threads` spread whole tiles instead). `solve` keeps JAX's
differentiation rules through `lax.custom_linear_solve` (the factorisation is of the
primal matrix only), so `jax.grad` / `jacfwd` through it work as through `jnp.linalg.solve`.

Every linear solve of the library goes through this module (`_bellman`, `_analysis`,
`_implicit`); no other module calls `jnp.linalg` / `lax.linalg`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

_HIGHEST = lax.Precision.HIGHEST


def _lu_one(m):
    return lax.linalg.lu(m)


lu = jax.custom_batching.sequential_vmap(_lu_one)
lu.__doc__ = """`lax.linalg.lu(m)` -> `(lu, pivots, permutation)` for one `[n, n]` matrix; batches
under `vmap` run one member at a time (module docstring)."""


def _triangular(lower: bool, unit: bool, transpose: bool):
    def one(a, b):
        return lax.linalg.triangular_solve(
            a, b, left_side=True, lower=lower, transpose_a=transpose, unit_diagonal=unit
        )

    return jax.custom_batching.sequential_vmap(one)


_TRI = {
    (lower, unit, transpose): _triangular(lower, unit, transpose)
    for lower in (False, True)
    for unit in (False, True)
    for transpose in (False, True)
}


def triangular_solve(a, b, *, lower: bool, unit_diagonal: bool = False, transpose_a=False):
    """`lax.linalg.triangular_solve(a, b, left_side=True, ...)` for one `[n, n]` `a` and
    `b [n, k]`; batches under `vmap` run one member at a time."""
    return _TRI[(bool(lower), bool(unit_diagonal), bool(transpose_a))](a, b)


def solve(a, b):
    """`jnp.linalg.solve(a, b)` for one `[n, n]` `a` and `b [n]` or `[n, k]`.

    LU with partial pivoting (LAPACK getrf), unbatched under `vmap`; differentiable in `a`
    and `b` (forward and reverse mode) through `lax.custom_linear_solve`.
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    dtype = jnp.result_type(a, b)
    a = a.astype(dtype)
    b = b.astype(dtype)
    vector = b.ndim == 1
    factors, _, perm = lu(lax.stop_gradient(a))
    factors = lax.stop_gradient(factors)
    perm = lax.stop_gradient(perm)

    def as_matrix(x):
        return x[:, None] if vector else x

    def back(x):
        return x[:, 0] if vector else x

    def forward(_, rhs):  # A = P^T L U:  x = U^-1 L^-1 P rhs
        y = as_matrix(rhs)[perm]
        y = triangular_solve(factors, y, lower=True, unit_diagonal=True)
        return back(triangular_solve(factors, y, lower=False))

    def transposed(_, rhs):  # A^T = U^T L^T P:  x = P^T L^-T U^-T rhs
        y = triangular_solve(factors, as_matrix(rhs), lower=False, transpose_a=True)
        y = triangular_solve(factors, y, lower=True, unit_diagonal=True, transpose_a=True)
        return back(jnp.zeros_like(y).at[perm].set(y))

    def matvec(x):
        return jnp.dot(a, x, precision=_HIGHEST)

    return lax.custom_linear_solve(matvec, b, forward, transposed)
