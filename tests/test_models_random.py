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


@pytest.mark.programs  # vmapped and looped generation are different programs: float tolerance
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
