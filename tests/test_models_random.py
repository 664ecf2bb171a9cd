"""Tests for jaxmdp.models.random_mdp: validity, reproducibility, Garnet structure, batching.

Sizes are shared across tests (S=9, A=3) so each compiled sampler is reused: the Dirichlet
(gamma) sampler is the expensive thing to compile.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp
from jaxmdp.models import random_mdp

S, A = 9, 3  # garnet's default branching is ceil(sqrt(9)) = 3


@pytest.mark.parametrize("kind", ["dense", "garnet"])
@pytest.mark.parametrize("concentration", [1.0, 0.05])
def test_valid_and_reproducible(kind, concentration):
    key = jax.random.key(0)
    kwargs = dict(kind=kind, concentration=concentration, reward_range=(-2.0, 3.0))
    mdp = random_mdp(key, S, A, **kwargs)
    assert mdp.transitions.shape == (S, A, S) and mdp.rewards.shape == (S, A)
    assert mdp.transitions.dtype == mdp.rewards.dtype == jnp.result_type(float)
    assert float(mdp.discount) == pytest.approx(0.95)
    jaxmdp.validate_mdp(mdp)
    R = np.asarray(mdp.rewards)
    assert (R >= -2.0).all() and (R <= 3.0).all() and R.std() > 0.5
    P = np.asarray(mdp.transitions)
    support = (P > 0).sum(-1)
    full = S if kind == "dense" else 3  # garnet's default k = ceil(sqrt(S))
    # Peaked rows (small concentration) may have entries that underflow to exactly 0.
    assert (support == full).all() if concentration == 1.0 else (support <= full).all()
    again = random_mdp(key, S, A, **kwargs)
    for x, y in zip(mdp, again, strict=True):
        np.testing.assert_array_equal(x, y)
    other = random_mdp(jax.random.key(1), S, A, **kwargs)
    assert not np.array_equal(other.transitions, mdp.transitions)


def test_garnet_single_successor_is_deterministic():
    P = np.asarray(random_mdp(jax.random.key(2), S, A, kind="garnet", num_successors=1)[0])
    assert ((P == 1.0).sum(-1) == 1).all() and ((P == 0.0).sum(-1) == S - 1).all()


def test_bad_arguments():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="kind"):
        random_mdp(key, 4, 2, kind="sparse")
    with pytest.raises(ValueError, match="num_successors"):
        random_mdp(key, 4, 2, num_successors=2)
    with pytest.raises(ValueError, match="num_successors"):
        random_mdp(key, 4, 2, kind="garnet", num_successors=5)


@pytest.mark.parametrize("kind", ["dense", "garnet"])
def test_vmap_over_keys_and_parameters_matches_loop(kind):
    n = 16
    keys = jax.random.split(jax.random.key(7), n)
    conc = jnp.linspace(0.5, 2.0, n)
    discount = jnp.linspace(0.1, 0.99, n)

    def build(k, c, g):
        return random_mdp(k, S, A, kind=kind, concentration=c, discount=g)

    batch = jax.vmap(build)(keys, conc, discount)
    assert batch.transitions.shape == (n, S, A, S) and batch.discount.shape == (n,)
    for i in range(n):
        one = build(keys[i], float(conc[i]), float(discount[i]))
        for x, y in zip(batch, one, strict=True):
            np.testing.assert_allclose(x[i], y, rtol=1e-5, atol=1e-6)
    if kind == "garnet":
        # Successors are uniform over states: n * S * A rows with 3 successors each give
        # 144 hits per state on average, standard deviation about 11.3.
        counts = (np.asarray(batch.transitions) > 0).sum(axis=(0, 1, 2))
        assert counts.sum() == n * S * A * 3
        assert np.abs(counts - 144).max() < 5 * 11.3


@pytest.mark.parametrize("concentration", [0.3, 1.0, 2.5])
def test_dirichlet_marginals_follow_the_beta_law(concentration):
    """Entry 0 of a Dirichlet(c * 1_K) row is Beta(c, (K - 1) c): a KS test over 6,000 rows
    (fixed key, so the p-value is a fixed number, not a coin flip). 0.3 exercises the
    boosted gamma sampler, 2.5 the plain one, 1.0 the exponential one."""
    stats = pytest.importorskip("scipy.stats")
    K, rows = 4, 1500
    mdp = random_mdp(jax.random.key(11), K, rows, concentration=concentration)
    first = np.asarray(mdp.transitions, np.float64)[:, :, 0].ravel()  # K * rows draws
    result = stats.kstest(first, stats.beta(concentration, (K - 1) * concentration).cdf)
    assert result.pvalue > 1e-3, result
    # The traced path (lax.cond at run time) draws the same law, and at concentration 1 the
    # very same numbers.
    traced = jax.jit(lambda c: random_mdp(jax.random.key(11), K, rows, concentration=c))(
        jnp.float32(concentration)
    )
    if concentration == 1.0:
        np.testing.assert_allclose(traced.transitions, mdp.transitions, rtol=1e-6, atol=1e-7)
    first = np.asarray(traced.transitions, np.float64)[:, :, 0].ravel()
    assert stats.kstest(first, stats.beta(concentration, (K - 1) * concentration).cdf).pvalue > 1e-3
