"""`jaxmdp.SparseTransitions`: the type, conversions, `make_mdp` and `validate_mdp`.

The dense reference for a sparse array is built in NumPy here (`_dense`, `np.add.at`), not
with `jaxmdp.to_dense`, so the conversions are checked against an independent definition.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import jaxmdp


def _dense(next_states, probs):
    """NumPy: `[..., S, A, S]` from successor lists, duplicates summed."""
    ns, pr = np.broadcast_arrays(np.asarray(next_states), np.asarray(probs, np.float64))
    S = ns.shape[-3]
    out = np.zeros(ns.shape[:-1] + (S,))
    idx = np.indices(ns.shape)
    np.add.at(out, (*idx[:-1], ns), pr)
    return out


def _random_sparse(rng, S, A, K, batch=()):
    """Successor lists with duplicates and padding: probabilities Dirichlet on K - 1 slots,
    the last slot padding (probability 0, index 0) or a duplicate of slot 0."""
    ns = rng.integers(0, S, size=(*batch, S, A, K))
    pr = rng.dirichlet(np.ones(K - 1), size=(*batch, S, A))
    pr = np.concatenate([pr, np.zeros((*batch, S, A, 1))], axis=-1)
    dup = rng.random((*batch, S, A)) < 0.5
    ns[..., -1] = np.where(dup, ns[..., 0], 0)
    half = np.where(dup, pr[..., 0] / 2, 0.0)
    pr[..., 0] -= half
    pr[..., -1] = half
    return ns.astype(np.int32), pr


def test_is_a_pytree_with_two_leaves():
    p = jaxmdp.SparseTransitions(jnp.zeros((3, 2, 1), jnp.int32), jnp.ones((3, 2, 1)))
    leaves, treedef = jax.tree.flatten(p)
    assert len(leaves) == 2
    q = jax.tree.unflatten(treedef, leaves)
    assert isinstance(q, jaxmdp.SparseTransitions)
    assert (q.num_states, q.num_actions, q.num_successors) == (3, 2, 1)
    mdp = jaxmdp.MDP(p, jnp.zeros((3, 2)), 0.9)
    assert len(jax.tree.leaves(mdp)) == 4
    assert "SparseTransitions" in repr(mdp)
    with pytest.raises(AttributeError):
        p.probs = None


def test_batch_shapes_broadcast_across_leaves():
    ns = jnp.zeros((3, 2, 1), jnp.int32)
    pr = jnp.ones((5, 3, 2, 1))
    p = jaxmdp.SparseTransitions(ns, pr)
    assert p.batch_shape == (5,)
    mdp = jaxmdp.MDP(p, jnp.zeros((4, 1, 3, 2)), jnp.full((5,), 0.9))
    assert mdp.batch_shape == (4, 5)


def test_to_dense_and_to_sparse_round_trip(rng):
    ns, pr = _random_sparse(rng, 6, 3, 4, batch=(2,))
    P = jaxmdp.to_dense(jaxmdp.SparseTransitions(jnp.asarray(ns), jnp.asarray(pr)))
    np.testing.assert_allclose(np.asarray(P), _dense(ns, pr), atol=1e-6)
    back = jaxmdp.to_sparse(np.asarray(P))
    np.testing.assert_allclose(_dense(back.next_states, back.probs), np.asarray(P), atol=0)
    assert back.num_successors == int((np.asarray(P) != 0).sum(-1).max())
    # jittable
    jitted = jax.jit(jaxmdp.to_dense)(jaxmdp.SparseTransitions(jnp.asarray(ns), jnp.asarray(pr)))
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(P))


def test_to_sparse_refuses_too_few_slots_and_tracers():
    P = np.zeros((2, 1, 2))
    P[0, 0] = [0.5, 0.5]
    P[1, 0, 1] = 1.0
    with pytest.raises(ValueError, match=r"\(0, 0\).*2 successors.*num_successors=1"):
        jaxmdp.to_sparse(P, num_successors=1)
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(jaxmdp.to_sparse)(P)
    padded = jaxmdp.to_sparse(P, num_successors=3)
    assert padded.num_successors == 3
    np.testing.assert_array_equal(np.asarray(padded.next_states[1, 0]), [1, 0, 0])


def test_scipy_round_trips_in_both_layouts(rng):
    ns, pr = _random_sparse(rng, 5, 3, 3)
    p = jaxmdp.SparseTransitions(jnp.asarray(ns), jnp.asarray(pr))
    D = _dense(ns, pr)
    mats = jaxmdp.to_scipy(p)
    assert len(mats) == 3 and all(sp.issparse(m) and m.shape == (5, 5) for m in mats)
    for a in range(3):
        np.testing.assert_allclose(mats[a].toarray(), D[:, a], atol=1e-7)
    pairs = jaxmdp.to_scipy(p, layout="pairs")
    np.testing.assert_allclose(pairs.toarray(), D.reshape(15, 5), atol=1e-7)
    for back in (jaxmdp.from_scipy(mats), jaxmdp.from_scipy(pairs, num_actions=3)):
        np.testing.assert_allclose(_dense(back.next_states, back.probs), D, atol=1e-7)
        assert back.num_successors == int((D != 0).sum(-1).max())  # duplicates merged
    # dense input to to_scipy, and a pymdptoolbox-style list of dense arrays to from_scipy
    dense_pairs = jaxmdp.to_scipy(jnp.asarray(D), layout="pairs")
    np.testing.assert_allclose(dense_pairs.toarray(), D.reshape(15, 5))
    back = jaxmdp.from_scipy([D[:, a] for a in range(3)])
    np.testing.assert_allclose(_dense(back.next_states, back.probs), D, atol=1e-7)
    with pytest.raises(ValueError, match=r"\[S\*A, S\]"):
        jaxmdp.from_scipy(pairs, num_actions=4)
    with pytest.raises(ValueError, match="layout"):
        jaxmdp.to_scipy(p, layout="rows")


def test_make_mdp_reward_layouts(rng):
    ns, pr = _random_sparse(rng, 4, 2, 3)
    p = jaxmdp.SparseTransitions(ns, pr)
    r_slot = rng.normal(size=(4, 2, 3))
    mdp = jaxmdp.make_mdp(p, r_slot, 0.9, rewards_per="transition")
    np.testing.assert_allclose(np.asarray(mdp.rewards), (pr * r_slot).sum(-1), rtol=1e-6)
    assert mdp.transitions.next_states.dtype == jnp.int32
    mdp = jaxmdp.make_mdp(p, np.arange(4.0), 0.9, rewards_per="state")
    np.testing.assert_array_equal(np.asarray(mdp.rewards), np.repeat(np.arange(4.0)[:, None], 2, 1))
    mask = np.ones((4, 2), bool)
    mask[1, 0] = False
    mdp = jaxmdp.make_mdp(p, np.zeros((4, 2)), 0.9, available=mask)
    assert np.isneginf(np.asarray(mdp.rewards)[1, 0])
    with pytest.raises(ValueError, match=r"\[\.\.\., S, A, K\]"):
        jaxmdp.make_mdp(p, np.zeros((4, 2, 4)), 0.9, rewards_per="transition")
    with pytest.raises(ValueError, match="integer"):
        jaxmdp.make_mdp(jaxmdp.SparseTransitions(ns.astype(float), pr), np.zeros((4, 2)), 0.9)


def _bad(rng, batch=(3,)):
    ns, pr = _random_sparse(rng, 4, 2, 3, batch=batch)
    return ns, pr, np.zeros((*batch, 4, 2)), 0.9


WHERE = "at batch index 1, state 2, action 0"


@pytest.mark.parametrize(
    "case, message",
    [
        ("index", rf"successor index out of range \[0, 4\) {WHERE}, slot 1"),
        ("negative_index", rf"out of range .* {WHERE}, slot 1"),
        ("negative", rf"negative transition probability {WHERE}, slot 1"),
        ("nan", rf"non-finite transition probability {WHERE}, slot 1"),
        ("sum", rf"does not sum to 1 .* {WHERE}"),
        ("reward", rf"reward is NaN .* {WHERE}"),
        ("discount", r"discount must be finite and in \[0, 1\]"),
    ],
)
def test_validation_names_the_place(case, message, rng):
    ns, pr, R, g = _bad(rng)
    if case == "index":
        ns[1, 2, 0, 1] = 4
    elif case == "negative_index":
        ns[1, 2, 0, 1] = -1
    elif case == "negative":
        pr[1, 2, 0, 1] = -0.1
    elif case == "nan":
        pr[1, 2, 0, 1] = np.nan
    elif case == "sum":
        pr[1, 2, 0, 1] += 0.01
    elif case == "reward":
        R[1, 2, 0] = np.nan
    else:
        g = 1.5
    with pytest.raises(jaxmdp.InvalidMDPError, match=message):
        jaxmdp.make_mdp(jaxmdp.SparseTransitions(ns, pr), R, g)


@pytest.mark.parametrize("case", ["index", "nan", "sum", "empty_available"])
def test_validation_in_blocks_names_a_late_place(case, rng, monkeypatch):
    """Read in blocks of 64 bytes (many blocks): a bad slot or row in the last block of a
    shared P (batch of rewards broadcast against it) is found, named and counted."""
    monkeypatch.setattr("jaxmdp._validate._CHUNK_BYTES", 64)
    ns, pr = _random_sparse(rng, 40, 2, 3)
    R = np.zeros((3, 40, 2))
    if case == "index":
        ns[39, 1, 2] = 40
        message = r"out of range \[0, 40\) at state 39, action 1, slot 2"
    elif case == "nan":
        pr[38, 0, 1] = pr[39, 1, 0] = np.nan
        message = r"non-finite .* at state 38, action 0, slot 1 .*; 2 places in all"
    elif case == "sum":
        pr[39, 1, 0] += 0.01
        message = r"does not sum to 1 .* at batch index 0, state 39, action 1 .*; 3 places"
    else:  # an all-zero row is fine only where the action is unavailable
        pr[39, 1] = 0.0
        R[[0, 2], 39, 1] = -np.inf
        message = r"does not sum to 1 .* at batch index 1, state 39, action 1 \(value 0\.0\)$"
    mdp = jaxmdp.MDP(jaxmdp.SparseTransitions(ns, pr), R, np.full(3, 0.9))
    with pytest.raises(jaxmdp.InvalidMDPError, match=message):
        jaxmdp.validate_mdp(mdp)


def test_validation_accepts_duplicates_padding_and_empty_unavailable_rows(rng):
    ns, pr, R, g = _bad(rng)
    pr[0, 1, 1] = 0.0  # an unavailable action's row may be all zero
    R[0, 1, 1] = -np.inf
    mdp = jaxmdp.make_mdp(jaxmdp.SparseTransitions(ns, pr), R, g)
    assert jaxmdp.validate_mdp(mdp) is mdp


def test_row_tolerance_follows_dtype_and_k(rng):
    ns, pr, R, g = _bad(rng)
    pr[1, 2, 0, 0] += 1e-7  # float32 noise: fine; far too much for float64 rows
    with jax.enable_x64(False):
        jaxmdp.make_mdp(jaxmdp.SparseTransitions(ns, pr), R, g)
    with jax.enable_x64(True), pytest.raises(jaxmdp.InvalidMDPError, match="state 2, action 0"):
        jaxmdp.make_mdp(jaxmdp.SparseTransitions(ns, pr), R, g)


def _sparse_mdp(ns, pr, R):
    return jaxmdp.MDP(jaxmdp.SparseTransitions(ns, pr), R, 0.9)


def test_structural_errors():
    ns, half = jnp.zeros((3, 2, 2), jnp.int32), jnp.full((3, 2, 2), 0.5)
    R = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match="share the last three axes"):
        jaxmdp.solve(_sparse_mdp(ns, jnp.ones((3, 2, 1)), R))
    with pytest.raises(ValueError, match=r"rewards must have shape .* \[\.\.\., 3, 2\]"):
        jaxmdp.solve(_sparse_mdp(ns, half, jnp.zeros((3, 3))))
    with pytest.raises(ValueError, match="integer"):
        jaxmdp.solve(_sparse_mdp(ns.astype(float), half, R))
    with pytest.raises(TypeError, match="traced"):
        jax.jit(jaxmdp.validate_mdp)(_sparse_mdp(ns, half, R))
