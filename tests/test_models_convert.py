"""Tests for the QuantEcon converters (and the core's pymdptoolbox ones on the textbook models)."""

import jax
import jax.numpy as jnp
import mdptoolbox.example
import numpy as np
import pytest
import scipy.sparse

import jaxmdp
from jaxmdp.models import forest, from_quantecon, puterman_two_state, to_quantecon

FORMS = [("product", False), ("sa_pairs", False), ("sa_pairs", True)]


def _quantecon_puterman():
    """The three DiscreteDPs of QuantEcon's own test_ddp.py (Puterman Example 6.2.1)."""
    # Imported here: QuantEcon (with numba) takes ~1 s to import, and every xdist worker
    # collects this file, only one runs it.
    from quantecon.markov import DiscreteDP

    beta = 0.95
    R = [[5, 10], [-1, -np.inf]]
    Q = np.empty((2, 2, 2))
    Q[0, 0, :] = 0.5, 0.5
    Q[0, 1, :] = 0, 1
    Q[1, :, :] = 0, 1
    s_indices, a_indices = [0, 0, 1], [0, 1, 0]
    R_sa = [R[0][0], R[0][1], R[1][0]]
    Q_sa = scipy.sparse.lil_matrix((3, 2))
    Q_sa[0, :], Q_sa[1, :], Q_sa[2, :] = Q[0, 0, :], Q[0, 1, :], Q[1, 0, :]
    return [
        DiscreteDP(R, Q, beta),
        DiscreteDP(R_sa, Q_sa, beta, s_indices, a_indices),
        DiscreteDP(R_sa, Q_sa.toarray(), beta, s_indices, a_indices),
    ]


def _assert_mdps_equal(a, b):
    for x, y in zip(a, b, strict=True):
        x, y = (
            jaxmdp.to_dense(z) if isinstance(z, jaxmdp.SparseTransitions) else z for z in (x, y)
        )
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_from_quantecon_all_layouts_give_puterman():
    with jax.enable_x64(True):
        expected = puterman_two_state(0.95)
        for ddp in _quantecon_puterman():
            mdp = from_quantecon(ddp)
            # the state-action-pair form (dense or scipy.sparse Q) gives successor lists
            assert isinstance(mdp.transitions, jaxmdp.SparseTransitions) == ddp._sa_pair
            assert mdp.rewards.dtype == jnp.float64
            _assert_mdps_equal(mdp, expected)


@pytest.fixture(scope="module")
def random_batch():
    """Six random float64 MDPs (9 states, 3 actions, Garnet-like rows with 3 successors),
    some actions unavailable (never all of a state's). NumPy-drawn: these tests are about
    the layouts, and this skips compiling the JAX sampler once more for float64."""
    rng = np.random.default_rng(0)
    shape = (6, 9, 3, 9)
    successors = rng.random(shape).argsort(-1).argsort(-1) < 3
    transitions = np.where(successors, rng.gamma(1.0, size=shape), 0.0)
    transitions /= transitions.sum(-1, keepdims=True)
    rewards = rng.uniform(-1.0, 1.0, shape[:3])
    unavailable = rng.random(shape[:3]) < 0.3
    unavailable[..., 0] = False
    rewards[unavailable] = -np.inf
    with jax.enable_x64(True):
        return jaxmdp.MDP(jnp.asarray(transitions), jnp.asarray(rewards), jnp.full(6, 0.9))


def _member(batch, i):
    # Sliced in NumPy, then on the device again: no eager slicing programs.
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[i]), batch)


@pytest.mark.parametrize("form, sparse", FORMS)
def test_round_trip(random_batch, form, sparse):
    with jax.enable_x64(True):
        for i in range(3):
            mdp = _member(random_batch, i)
            ddp = to_quantecon(mdp, form=form, sparse=sparse)
            assert ddp._sa_pair == (form == "sa_pairs")
            if form == "sa_pairs":
                assert ddp.num_sa_pairs == int(np.isfinite(mdp.rewards).sum())
            back = from_quantecon(ddp)
            np.testing.assert_array_equal(back.rewards, mdp.rewards)
            assert float(back.discount) == float(mdp.discount)
            available = np.isfinite(np.asarray(mdp.rewards))
            assert isinstance(back.transitions, jaxmdp.SparseTransitions) == (form == "sa_pairs")
            P, Q = np.asarray(mdp.transitions), np.asarray(jaxmdp.to_dense(back.transitions))
            np.testing.assert_array_equal(Q[available], P[available])
            # A pair missing from the state-action form comes back as a self-loop.
            for s, a in zip(*np.nonzero(~available), strict=True):
                expected = np.eye(9)[s] if form == "sa_pairs" else P[s, a]
                np.testing.assert_array_equal(Q[s, a], expected)


def test_quantecon_solve_agrees_with_ours(random_batch):
    with jax.enable_x64(True):
        ours = jax.device_get(jaxmdp.check(jaxmdp.solve(random_batch, jaxmdp.PolicyIteration())))
        for i in range(6):
            form, sparse = FORMS[i % 3]
            ddp = to_quantecon(_member(random_batch, i), form=form, sparse=sparse)
            res = ddp.solve(method="policy_iteration")
            np.testing.assert_allclose(ours.values[i], res.v, rtol=1e-9, atol=1e-9)
            np.testing.assert_array_equal(ours.policy[i], res.sigma)


def test_to_quantecon_rejects_batches_and_bad_forms(random_batch):
    with pytest.raises(ValueError, match="one MDP"):
        to_quantecon(random_batch)
    with pytest.raises(ValueError, match="form"):
        to_quantecon(_member(random_batch, 0), form="sparse")


def test_forest_to_pymdptoolbox_layout():
    with jax.enable_x64(True):
        P, R = jaxmdp.to_pymdptoolbox(forest(5, p=0.2))
        P_ref, R_ref = mdptoolbox.example.forest(5, p=0.2)
        np.testing.assert_array_equal(P, P_ref)
        np.testing.assert_array_equal(R, R_ref)
        _assert_mdps_equal(jaxmdp.from_pymdptoolbox(P_ref, R_ref, 0.96), forest(5, p=0.2))
