"""Memory of a single solve (sparse, and large dense), and the blocked rounding constants
behind it.

A large single sparse solve holds its inputs, its outputs and a few `[S]` vectors: no
`[S, A]` temporaries beyond the loop's own, no copy of the successor lists (the 10^7-state
grid world's peak memory; benchmarks/results/cpu-2core-sparse.md), and `solve`'s memory
estimate of it stays within 2x of that. Measured here from the compiled program's buffer
assignment (`memory_analysis`), at a size where the rounding constants run in blocks of
states.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp
from jaxmdp import _footprint
from jaxmdp.models import gridworld


def test_single_sparse_solve_has_no_model_sized_temporaries(monkeypatch):
    # Blocks of 1,024 states for the rounding constants (default 32,768): their temporaries
    # are then far below one [S, A] array at this size (S = 36,100).
    monkeypatch.setattr("jaxmdp._solvers._stopping._ROUNDING_CHUNK", 1024)
    side = 190
    mdp = gridworld("S" + "." * (side - 1) + "\n" + ("." * side + "\n") * (side - 1), slip=0.1)
    mdp = mdp._replace(discount=jnp.float32(0.9))
    P = mdp.transitions
    S, A, K = P.next_states.shape
    solve = jax.jit(lambda m: jaxmdp.solve(m, jaxmdp.ValueIteration(tol=1e-3)))
    mem = solve.lower(mdp).compile().memory_analysis()
    if mem is None:
        pytest.skip("this backend reports no buffer assignment")
    qa = S * A * 4  # one [S, A] float32 array
    # Before: 6 [S, A] arrays for the rounding constants (XLA's reductions left their
    # producers unfused); a copy of the successor indices would add 3 more.
    assert mem.temp_size_in_bytes < qa, (mem.temp_size_in_bytes, qa)
    assert mem.output_size_in_bytes <= qa + 2 * S * 4 + 256  # Q, values, policy, scalars
    # `solve`'s memory estimate for this program (one MDP, inputs already on the device)
    # covers its buffers without refusing what fits: within [1x, 2x] (the whole-member
    # working set it used before was 5.3x at 10^6 and 10^7 states).
    estimate = _footprint.solve_bytes(
        mdp, jaxmdp.ValueIteration(), members=1, batch=1, undiscounted=False, single=True
    )
    measured = mem.output_size_in_bytes + mem.temp_size_in_bytes
    assert measured <= estimate <= 2 * measured, (estimate, measured)


def test_single_dense_solve_has_no_transition_sized_temporaries():
    # The rounding constants' row sums in one fused pass (`_stopping._lane_sums`). As three
    # dot products with ones, XLA:CPU wrote `(p != 0)` and `|p|` out whole first: twice the
    # transitions (W3, 134 MB: 269 MB of temporaries; now 0.3 MB). S = 509: a padded last
    # group of lanes, fused as well.
    rng = np.random.default_rng(0)
    S, A = 509, 8
    P = rng.dirichlet(np.ones(S), size=(S, A)).astype(np.float32)
    mdp = jaxmdp.make_mdp(P, rng.standard_normal((S, A)).astype(np.float32), 0.9)
    solve = jax.jit(lambda m: jaxmdp.solve(m, jaxmdp.ValueIteration(tol=1e-3)))
    mem = solve.lower(mdp).compile().memory_analysis()
    if mem is None:
        pytest.skip("this backend reports no buffer assignment")
    assert mem.temp_size_in_bytes < P.nbytes // 4, (mem.temp_size_in_bytes, P.nbytes)


def _planted(S, A, K, dtype, off=1e-4, seed=0):
    """A sparse MDP whose extremes (largest |reward|, worst row sum, most successors) sit
    in the LAST state: a blocked reduction that missed the last block would miss them."""
    rng = np.random.default_rng(seed)
    ns = rng.integers(0, S, size=(S, A, K)).astype(np.int32)
    pr = rng.random((S, A, K))
    pr[:, :, -1] = 0.0  # padding everywhere ...
    pr[-1, -1, -1] = 0.5  # ... except in the last state's last row: K nonzeros there only
    pr /= pr.sum(-1, keepdims=True)
    pr[-1, 0] *= 1 + off  # the worst row sum, in the last state
    r = rng.uniform(-1, 1, size=(S, A))
    r[-1, 1] = 50.0  # the largest |reward|
    r[3, 2] = -np.inf  # an unavailable action
    T = jaxmdp.SparseTransitions(jnp.asarray(ns), jnp.asarray(pr, dtype))
    return jaxmdp.MDP(T, jnp.asarray(r, dtype), jnp.asarray(0.95, dtype))


def test_rounding_constants_in_blocks_match_one_pass(monkeypatch):
    """The certificate of a solve whose rounding constants run in blocks of 16 states (the
    last block overlapping) equals the one-pass certificate within rounding (every constant
    is a max, and each row sums its slots in the same order); single and vmapped."""
    vi = jaxmdp.ValueIteration(tol=1e-6)
    with jax.enable_x64(True):
        mdp = _planted(50, 3, 3, np.float64)
        whole = jaxmdp.solve(mdp, vi, max_iters=10_000)
        # The planted row sum matters: without it the bound is far smaller.
        exact = jaxmdp.solve(_planted(50, 3, 3, np.float64, off=0.0), vi, max_iters=10_000)
        assert float(exact.error_bound) < 0.1 * float(whole.error_bound)
        # Per-member P: vmapped (stacked in NumPy: no eager programs).
        batch = jax.tree.map(lambda x: jnp.asarray(np.stack([x, x])), mdp)
        monkeypatch.setattr("jaxmdp._solvers._stopping._ROUNDING_CHUNK", 16)
        # Another static max_iters: a new trace, which reads the patched block size.
        blocked = jaxmdp.solve(mdp, vi, max_iters=10_001)
        stacked = jaxmdp.solve(batch, vi, max_iters=10_002)
    for sol in (blocked, jax.tree.map(lambda x: np.asarray(x)[1], stacked)):
        np.testing.assert_allclose(sol.error_bound, whole.error_bound, rtol=1e-12)
        np.testing.assert_allclose(sol.values, whole.values, rtol=0, atol=1e-9)
        assert int(sol.num_iters) == int(whole.num_iters)
