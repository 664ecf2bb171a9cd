"""Tests for jaxmdp.models.random_mdp: validity, reproducibility, Garnet structure, batching.

Sizes are shared across tests (S=9, A=3) so each compiled sampler is reused: the Dirichlet
(gamma) sampler is the expensive thing to compile.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp
from jaxmdp.models import random_mdp

S, A = 9, 3  # garnet's default branching is ceil(sqrt(9)) = 3


# Garnet's gamma sampler is the dense one on [S, A, k] rows (another compile, not another
# path), so only the dense kind runs it here.
@pytest.mark.parametrize("kind, concentration", [("dense", 1.0), ("garnet", 1.0), ("dense", 0.05)])
def test_valid_and_reproducible(kind, concentration):
    key = jax.random.key(0)
    kwargs = dict(kind=kind, concentration=concentration, reward_range=(-2.0, 3.0))
    mdp = random_mdp(key, S, A, **kwargs)
    if kind == "garnet":  # successor lists, K = 3 slots
        assert isinstance(mdp.transitions, jaxmdp.SparseTransitions)
        assert mdp.transitions.next_states.shape == (S, A, 3)
        assert mdp.transitions.next_states.dtype == jnp.int32
    else:
        assert mdp.transitions.shape == (S, A, S)
    assert mdp.rewards.shape == (S, A)
    assert jaxmdp.to_dense(mdp.transitions).dtype == mdp.rewards.dtype == jnp.result_type(float)
    assert float(mdp.discount) == pytest.approx(0.95)
    jaxmdp.validate_mdp(mdp)
    R = np.asarray(mdp.rewards)
    assert (R >= -2.0).all() and (R <= 3.0).all() and R.std() > 0.5
    P = np.asarray(jaxmdp.to_dense(mdp.transitions))
    support = (P > 0).sum(-1)
    full = S if kind == "dense" else 3  # garnet's default k = ceil(sqrt(S))
    # Peaked rows (small concentration) may have entries that underflow to exactly 0.
    assert (support == full).all() if concentration == 1.0 else (support <= full).all()
    again = random_mdp(key, S, A, **kwargs)
    for x, y in zip(jax.tree.leaves(mdp), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(x, y)
    other = random_mdp(jax.random.key(1), S, A, **kwargs)
    assert not np.array_equal(jaxmdp.to_dense(other.transitions), P)


def test_garnet_single_successor_is_deterministic():
    P = np.asarray(
        jaxmdp.to_dense(random_mdp(jax.random.key(2), S, A, kind="garnet", num_successors=1)[0])
    )
    assert ((P == 1.0).sum(-1) == 1).all() and ((P == 0.0).sum(-1) == S - 1).all()


def test_bad_arguments():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="kind"):
        random_mdp(key, 4, 2, kind="sparse")
    with pytest.raises(ValueError, match="num_successors"):
        random_mdp(key, 4, 2, num_successors=2)
    with pytest.raises(ValueError, match="num_successors"):
        random_mdp(key, 4, 2, kind="garnet", num_successors=5)


N = 256  # batch size of the shared batched programs below (one compile per kind)
KEYS = jax.random.split(jax.random.key(7), N)


def _dense(k, c, g):
    return random_mdp(k, S, A, concentration=c, discount=g)


def _garnet(k, g):
    return random_mdp(k, S, A, kind="garnet", discount=g)


# The shared batched programs. Dense: traced concentration, so the sampler is chosen at run
# time (lax.cond / select); Garnet: the default concentration (the static sampler).
BATCH_DENSE = jax.jit(jax.vmap(_dense))
BATCH_GARNET = jax.jit(jax.vmap(_garnet))
DISCOUNTS = np.linspace(0.1, 0.99, N, dtype=np.float32)


@pytest.mark.programs  # vmapped and looped generation are different programs: float tolerance
def test_vmap_over_keys_and_parameters_matches_loop():
    # Every fourth member has concentration exactly 1 (the exponential sampler when
    # concrete), the others spread over [0.5, 2] (the gamma sampler).
    conc = np.where(np.arange(N) % 4 == 0, 1.0, np.linspace(0.5, 2.0, N)).astype(np.float32)
    batch = BATCH_DENSE(KEYS, conc, DISCOUNTS)
    assert batch.transitions.shape == (N, S, A, S) and batch.discount.shape == (N,)
    jaxmdp.validate_mdp(batch)
    batch = jax.device_get(batch)  # members read in NumPy: no eager slicing programs
    for i in range(0, N, 17):  # 16 members, both samplers
        one = _dense(KEYS[i], float(conc[i]), float(DISCOUNTS[i]))
        for x, y in zip(batch, one, strict=True):
            np.testing.assert_allclose(x[i], y, rtol=1e-5, atol=1e-6)


@pytest.mark.programs
def test_garnet_batch_matches_loop_and_spreads_successors():
    batch = BATCH_GARNET(KEYS, DISCOUNTS)
    jaxmdp.validate_mdp(batch)
    batch = jax.device_get(batch)  # members read in NumPy: no eager slicing programs
    for i in range(0, N, 51):
        one = _garnet(KEYS[i], float(DISCOUNTS[i]))
        for x, y in zip(jax.tree.leaves(batch), jax.tree.leaves(one), strict=True):
            np.testing.assert_allclose(x[i], y, rtol=1e-5, atol=1e-6)
    # Successors are distinct within a row and uniform over states: N * S * A rows with 3
    # successors each give N * A * 3 = 2304 hits per state on average, standard deviation
    # about 45.
    succ = np.asarray(batch.transitions.next_states).reshape(-1, 3)
    assert (np.sort(succ, axis=1)[:, 1:] != np.sort(succ, axis=1)[:, :-1]).all()
    counts = np.bincount(succ.ravel(), minlength=S)
    assert counts.sum() == N * S * A * 3
    assert np.abs(counts - N * A * 3).max() < 5 * 45


@pytest.mark.parametrize("concentration", [0.3, 1.0, 2.5])
def test_dirichlet_marginals_follow_the_beta_law(concentration):
    """Entry 0 of a Dirichlet(c * 1_S) row is Beta(c, (S - 1) c): a KS test over the
    N * S * A = 6,912 rows of a batch (fixed keys, so the p-value is a fixed number, not a
    coin flip). 0.3 exercises the boosted gamma sampler, 2.5 the plain one, 1.0 the
    exponential one; the static samplers draw the same numbers (previous test)."""
    stats = pytest.importorskip("scipy.stats")
    full = np.full(N, concentration, np.float32)
    batch = BATCH_DENSE(KEYS, full, DISCOUNTS)
    first = np.asarray(batch.transitions, np.float64)[..., 0].ravel()
    law = stats.beta(concentration, (S - 1) * concentration)
    assert stats.kstest(first, law.cdf).pvalue > 1e-3


def test_batch_over_keys_is_reproducible_and_light():
    """The common case, `vmap` over keys with the default concentration: member i is
    `random_mdp(keys[i])`, and XLA's buffer assignment needs temporaries of at most 4 times
    the output (`jax.random.dirichlet` needed about 31 times)."""
    build = jax.jit(jax.vmap(lambda k: random_mdp(k, S, A)))
    batch = build(KEYS)
    for i in (0, 100, 255):
        for x, y in zip(batch, random_mdp(KEYS[i], S, A), strict=True):
            np.testing.assert_allclose(x[i], y, rtol=1e-6, atol=1e-7)
    stats = build.lower(KEYS).compile().memory_analysis()
    if stats is not None:
        assert stats.temp_size_in_bytes < 4 * stats.output_size_in_bytes, stats
        # The traced-concentration program computes both samplers: still a small multiple.
        ones = np.ones(N, np.float32)
        stats = BATCH_DENSE.lower(KEYS, ones, DISCOUNTS).compile().memory_analysis()
        assert stats.temp_size_in_bytes < 10 * stats.output_size_in_bytes, stats


def test_invalid_traced_concentration_gives_nan_rows_not_a_hang():
    """Inside jit a concentration <= 0, NaN or inf cannot raise; the gamma sampler's
    rejection loop would never accept a candidate. It must return NaN rows at once
    (run in a subprocess with a timeout, so a regression cannot hang the suite)."""
    code = (
        "import jax, numpy as np\n"
        "from jaxmdp.models import random_mdp\n"
        "f = jax.jit(lambda c: random_mdp(jax.random.key(0), 3, 2, concentration=c))\n"
        "for c in (-1.0, 0.0, float('nan'), float('inf')):\n"
        "    assert np.isnan(np.asarray(f(np.float32(c)).transitions)).all(), c\n"
        "assert np.isfinite(np.asarray(f(np.float32(0.5)).transitions)).all()\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
