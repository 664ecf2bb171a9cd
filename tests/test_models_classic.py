"""Tests for the textbook models: pymdptoolbox's forest/small and Puterman's two-state MDP."""

import jax
import jax.numpy as jnp
import mdptoolbox.example
import mdptoolbox.mdp
import numpy as np
import pytest

import jaxmdp
from jaxmdp.models import CUT, WAIT, forest, puterman_two_state, small


def _f64(mdp):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), mdp)


def _assert_same_arrays(mdp, P, R):
    """Our [S, A, S] / [S, A] against pymdptoolbox's [A, S, S] / [S, A]."""
    np.testing.assert_allclose(mdp.transitions, np.transpose(P, (1, 0, 2)), rtol=0, atol=0)
    np.testing.assert_allclose(mdp.rewards, R, rtol=0, atol=0)


FOREST_CASES = [
    dict(),  # pymdptoolbox's defaults: S=3, r1=4, r2=2, p=0.1
    dict(S=10),
    dict(S=3, r1=1.0, r2=5.0, p=0.5),  # cut when oldest
    dict(S=10, r1=3.0, r2=8.0, p=0.3),  # a mixed policy
]


@pytest.mark.parametrize("kwargs", FOREST_CASES)
@pytest.mark.parametrize("discount", [0.9, 0.96])
def test_forest_matches_pymdptoolbox(kwargs, discount):
    P, R = mdptoolbox.example.forest(**kwargs)
    reference = mdptoolbox.mdp.PolicyIteration(P, R, discount)
    reference.run()
    with jax.enable_x64(True):
        mdp = forest(**kwargs, discount=discount)
        _assert_same_arrays(mdp, P, R)
        sol = jaxmdp.check(jaxmdp.solve(_f64(mdp), jaxmdp.PolicyIteration()))
        np.testing.assert_allclose(sol.values, reference.V, rtol=1e-10)
        np.testing.assert_array_equal(sol.policy, reference.policy)


def test_forest_defaults_and_docstring_values():
    mdp = forest()
    assert float(mdp.discount) == pytest.approx(0.96)
    assert (WAIT, CUT) == (0, 1)
    # pymdptoolbox's PolicyIteration docstring: forest() at discount 0.9.
    with jax.enable_x64(True):
        sol = jaxmdp.solve(_f64(forest(discount=0.9)), jaxmdp.PolicyIteration())
        np.testing.assert_allclose(sol.values, [26.244, 29.484, 33.484], rtol=1e-12)


def test_forest_vmap_matches_loop():
    ps = jnp.linspace(0.0, 1.0, 5)
    r1s = jnp.linspace(1.0, 5.0, 5)
    batch = jax.vmap(lambda p, r1: forest(4, r1=r1, p=p))(ps, r1s)
    direct = forest(4, r1=r1s, p=ps)  # leading batch axes broadcast without vmap too
    for i in range(5):
        one = forest(4, r1=float(r1s[i]), p=float(ps[i]))
        for x, y, z in zip(batch, direct, one, strict=True):
            np.testing.assert_allclose(x[i], z, atol=1e-7)
            np.testing.assert_allclose(y[i] if y.ndim > z.ndim else y, z, atol=1e-7)


def test_small_matches_pymdptoolbox():
    P, R = mdptoolbox.example.small()
    reference = mdptoolbox.mdp.PolicyIteration(P, R, 0.9)
    reference.run()
    with jax.enable_x64(True):
        mdp = small()
        assert float(mdp.discount) == pytest.approx(0.9)
        _assert_same_arrays(mdp, P, R)
        sol = jaxmdp.check(jaxmdp.solve(_f64(mdp), jaxmdp.PolicyIteration()))
        np.testing.assert_allclose(sol.values, reference.V, rtol=1e-10)
        np.testing.assert_array_equal(sol.policy, reference.policy)
        np.testing.assert_array_equal(sol.policy, [1, 0])


def _puterman_v_star(beta):
    """Puterman Example 6.2.1: v*(1) = -1/(1-beta); state 0 takes the better of its actions."""
    stay = (5 - 5.5 * beta) / ((1 - 0.5 * beta) * (1 - beta))
    leave = 10 - beta / (1 - beta)
    return np.array([max(stay, leave), -1 / (1 - beta)]), [0 if stay >= leave else 1, 0]


@pytest.mark.parametrize("beta", [0.95, 0.5])
def test_puterman_two_state_closed_form(beta):
    v_star, sigma_star = _puterman_v_star(beta)
    mdp = puterman_two_state(beta)
    assert np.isneginf(mdp.rewards[1, 1])
    jaxmdp.validate_mdp(mdp)
    with jax.enable_x64(True):
        m64 = puterman_two_state(beta)  # built under x64: discount 0.95 exactly in float64
        assert m64.rewards.dtype == jnp.float64
        exact = jaxmdp.check(jaxmdp.solve(m64, jaxmdp.PolicyIteration()))
        np.testing.assert_allclose(exact.values, v_star, rtol=1e-12)
        np.testing.assert_array_equal(exact.policy, sigma_star)
        # QuantEcon's test: value iteration with epsilon 1e-2 is within epsilon / 2 of v*.
        eps = 1e-2
        vi = jaxmdp.check(jaxmdp.solve(m64, jaxmdp.ValueIteration(tol=eps)))
        assert np.abs(np.asarray(vi.values) - v_star).max() < eps / 2
        np.testing.assert_array_equal(vi.policy, sigma_star)
    # float32 smoke test: the same bound holds with float32 rounding on values of size ~20.
    vi32 = jaxmdp.check(jaxmdp.solve(mdp, jaxmdp.ValueIteration(tol=1e-2)))
    assert np.abs(np.asarray(vi32.values) - v_star).max() < 1e-2 / 2 + 1e-4
