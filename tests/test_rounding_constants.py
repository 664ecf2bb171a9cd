"""The certificate's arithmetic helpers (`_stopping`): the row statistics (`_lane_sums`),
counts of nonzeros exact and row sums within the rounding that `error_bound` allows for a sum
in any order, `gamma_(K-1) sum |p_j|` (Higham 2002, Sec. 3.1), for rows whose length is and
is not a multiple of the 8 lanes (zero padding), float32 and float64, vmapped and not; and
`round_up`, the bound's 8-bit grid."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmdp._solvers import _stopping


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lane_sums_count_exactly_and_sum_within_the_bound(dtype):
    rng = np.random.default_rng(7)
    with jax.enable_x64(dtype == "float64"):
        for K in (1, 5, 8, 13, 64, 509):
            x = rng.standard_normal((3, 4, K)) * rng.choice([1e-3, 1.0, 1e3], size=(3, 4, 1))
            x[rng.random(x.shape) < 0.3] = 0.0
            x = x.astype(dtype)
            parts = (jnp.asarray((x != 0).astype(dtype)), jnp.asarray(x), jnp.asarray(abs(x)))
            single = jax.jit(_stopping._lane_sums)(parts)
            mapped = jax.jit(jax.vmap(_stopping._lane_sums))(parts)
            u = np.finfo(dtype).eps / 2
            gamma = (K - 1) * u / (1 - (K - 1) * u)
            for got in (single, mapped):
                counts, sums, abss = (np.asarray(g, np.float64) for g in got)
                np.testing.assert_array_equal(counts, (x != 0).sum(-1))
                for row in np.ndindex(x.shape[:-1]):
                    exact = math.fsum(float(v) for v in x[row])
                    exact_abs = math.fsum(abs(float(v)) for v in x[row])
                    assert abs(sums[row] - exact) <= gamma * exact_abs, (K, row)
                    assert abs(abss[row] - exact_abs) <= gamma * exact_abs, (K, row)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_up_to_8_bits_as_frexp_and_ldexp_would(dtype):
    """`round_up` on the bits equals the textbook `ldexp(ceil(ldexp(m, 8)), e - 8)` for
    normal numbers, never rounds down (subnormals too) and keeps 0, negatives, inf, nan."""
    rng = np.random.default_rng(3)
    fi = np.finfo(dtype)
    normal = np.exp(rng.uniform(np.log(fi.tiny), np.log(fi.max) - 1, 20_000)).astype(dtype)
    normal = np.concatenate([normal, np.array([1.0, 2.0, 255 / 128, 1 + 2**-20, 3.0], dtype)])
    m, e = np.frexp(normal)
    textbook = np.ldexp(np.ceil(np.ldexp(m, 8)), e - 8).astype(dtype)
    special = np.array([0.0, -1.5, np.inf, -np.inf, np.nan], dtype)
    sub = np.array([fi.smallest_subnormal * 3, fi.tiny / 3], dtype)
    with jax.enable_x64(dtype == "float64"):
        f = jax.jit(_stopping.round_up)
        np.testing.assert_array_equal(np.asarray(f(jnp.asarray(normal))), textbook)
        np.testing.assert_array_equal(np.asarray(f(jnp.asarray(special))), special)
        up = np.asarray(f(jnp.asarray(sub)))
    assert up.dtype == np.dtype(dtype) and np.all(up >= sub)
