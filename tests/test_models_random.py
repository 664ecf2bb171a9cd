"""Tests for jaxmdp.models.random_mdp: validity, reproducibility, Garnet structure, batching."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp
from jaxmdp.models import random_mdp


@pytest.mark.parametrize("kind", ["dense", "garnet"])
@pytest.mark.parametrize("concentration", [1.0, 0.05])
def test_valid_and_reproducible(kind, concentration):
    key = jax.random.key(0)
    mdp = random_mdp(
        key, 12, 3, kind=kind, concentration=concentration, reward_range=(-2.0, 3.0)
    )
    assert mdp.transitions.shape == (12, 3, 12) and mdp.rewards.shape == (12, 3)
    assert mdp.transitions.dtype == mdp.rewards.dtype == jnp.result_type(float)
    assert float(mdp.discount) == pytest.approx(0.95)
    jaxmdp.validate_mdp(mdp)
    R = np.asarray(mdp.rewards)
    assert (R >= -2.0).all() and (R <= 3.0).all() and R.std() > 0.5
    again = random_mdp(
        key, 12, 3, kind=kind, concentration=concentration, reward_range=(-2.0, 3.0)
    )
    for x, y in zip(mdp, again, strict=True):
        np.testing.assert_array_equal(x, y)
    other = random_mdp(jax.random.key(1), 12, 3, kind=kind, concentration=concentration)
    assert not np.array_equal(other.transitions, mdp.transitions)


def test_dense_rows_have_full_support():
    P = np.asarray(random_mdp(jax.random.key(3), 8, 2).transitions)
    assert (P > 0).all()


@pytest.mark.parametrize("k", [1, 3, 10])
def test_garnet_has_exactly_k_distinct_successors(k):
    P = np.asarray(random_mdp(jax.random.key(2), 10, 50, kind="garnet", num_successors=k).transitions)
    assert ((P > 0).sum(-1) == k).all()
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-5)
    if k == 3:
        # Successors are uniform over states: 10 * 50 rows * 3 draws, 150 per state on
        # average with a standard deviation of about 11.6.
        counts = (P > 0).sum(axis=(0, 1))
        assert np.abs(counts - 150).max() < 5 * 11.6


def test_garnet_default_branching_is_sqrt_s():
    P = np.asarray(random_mdp(jax.random.key(0), 16, 2, kind="garnet").transitions)
    assert ((P > 0).sum(-1) == 4).all()


def test_bad_arguments():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="kind"):
        random_mdp(key, 4, 2, kind="sparse")
    with pytest.raises(ValueError, match="num_successors"):
        random_mdp(key, 4, 2, num_successors=2)
    with pytest.raises(ValueError, match="num_successors"):
        random_mdp(key, 4, 2, kind="garnet", num_successors=5)


@pytest.mark.parametrize("kind", ["dense", "garnet"])
def test_vmap_over_keys_matches_loop(kind):
    keys = jax.random.split(jax.random.key(7), 5)
    batch = jax.vmap(lambda k: random_mdp(k, 6, 2, kind=kind, num_successors=None))(keys)
    assert batch.transitions.shape == (5, 6, 2, 6) and batch.discount.shape == (5,)
    for i, k in enumerate(keys):
        one = random_mdp(k, 6, 2, kind=kind)
        for x, y in zip(batch, one, strict=True):
            np.testing.assert_allclose(x[i], y, rtol=1e-6, atol=1e-7)


def test_numeric_parameters_trace():
    @jax.jit
    def build(key, concentration, low, discount):
        return random_mdp(
            key, 5, 2, concentration=concentration, reward_range=(low, low + 1), discount=discount
        )

    mdp = build(jax.random.key(0), 2.0, -1.0, 0.5)
    ref = random_mdp(jax.random.key(0), 5, 2, concentration=2.0, reward_range=(-1.0, 0.0),
                     discount=0.5)  # fmt: skip
    for x, y in zip(mdp, ref, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    sweep = jax.vmap(lambda g: build(jax.random.key(0), 1.0, 0.0, g))(jnp.array([0.1, 0.9]))
    np.testing.assert_allclose(sweep.discount, [0.1, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(sweep.transitions[0], sweep.transitions[1])
