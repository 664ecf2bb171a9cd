"""Builders return the transitions form that suits the model (jaxmdp.models._form): the
sparse gridworld and Gymnasium tables hold the same numbers as their dense forms, large
layouts build without any `[S, A, S]` array, and the size rule picks the form."""

import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp
from jaxmdp.models import GridLayout, from_gymnasium, gridworld

DENSE_MAX_STATES = 64  # the size rule as models.gridworld documents it

# Walls, edges, two terminal kinds and cells next to several of them: every way two slip
# directions can land in the same cell (merged slots) occurs.
LAYOUT = "S..#....\n.#.#.##+\n.#...#..\n...#..-.\n##....#.\n"


def _reference_transitions(grid, slip):
    """The dense `[S, 4, S]` world from the move table, in NumPy (as the builder did before
    the sparse form): action a moves in direction d with weight 1 - slip (d = a) or slip / 2
    (d perpendicular)."""
    perpendicular = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]])
    weights = (1 - slip) * np.eye(4) + slip / 2 * perpendicular  # [a, d]
    onehot = np.eye(grid.num_states)[grid.next_states]  # [S, d, S]
    return np.einsum("ad,sdt->sat", weights, onehot)


def test_sparse_gridworld_equals_dense_reference():
    grid = GridLayout(LAYOUT)
    slips = np.array([0.0, 0.1, 0.3])
    with jax.enable_x64(True):
        batch = gridworld(grid, step_reward=-0.04, slip=jnp.asarray(slips), form="sparse")
        dense = gridworld(grid, step_reward=-0.04, slip=0.3, form="dense")
        still = gridworld(grid, slip=0.0, form="sparse")
        P = batch.transitions
        assert isinstance(P, jaxmdp.SparseTransitions) and still.transitions.num_successors == 1
        assert P.next_states.dtype == jnp.int32 and P.next_states.shape == (grid.num_states, 4, 3)
        assert P.probs.shape == (3, grid.num_states, 4, 3)  # one structure shared by the batch
        dense_batch = np.asarray(jaxmdp.to_dense(P))  # members are read in NumPy below
        for i, slip in enumerate(slips):
            reference = _reference_transitions(grid, slip)
            np.testing.assert_allclose(dense_batch[i], reference, rtol=0, atol=1e-15)
            # every successor appears once in its row (merged slots become padding)
            ns, pr = np.asarray(P.next_states), np.asarray(P.probs)[i]
            srt = np.sort(np.where(pr > 0, ns, -1 - np.arange(3)), axis=-1)  # padding: < 0
            assert (srt[..., 1:] != srt[..., :-1]).all()
        np.testing.assert_allclose(dense.transitions, _reference_transitions(grid, 0.3), atol=1e-15)
        np.testing.assert_array_equal(
            jaxmdp.to_dense(still.transitions), _reference_transitions(grid, 0)
        )
        np.testing.assert_array_equal(np.asarray(batch.rewards)[2], dense.rewards)
        jaxmdp.validate_mdp(batch)


def test_form_rule():
    # The form is chosen while tracing: eval_shape shows it without building the arrays.
    small = jax.eval_shape(lambda: gridworld(slip=0.2))  # the lecture world: 11 states, dense
    assert not isinstance(small.transitions, jaxmdp.SparseTransitions)
    side = int(np.ceil(np.sqrt(DENSE_MAX_STATES + 1)))
    layout = "." * side + "+\n" + ("." * (side + 1) + "\n") * (side - 1)
    big = jax.eval_shape(lambda: gridworld(layout, slip=0.2))
    assert big.num_states > DENSE_MAX_STATES
    assert isinstance(big.transitions, jaxmdp.SparseTransitions)
    with pytest.raises(ValueError, match="form"):
        gridworld(form="csr")


def test_large_layout_builds_without_dense_arrays():
    """The 1000x1000 path at 200x200 (S = 39,900): the layout, its move table and the
    successor lists take a few MB of host memory; a dense [S, A, S] would take 25 GB."""
    n = 200
    rows = ["." * n] * n
    rows[0] = "S" + "." * (n - 2) + "+"
    rows[n // 2] = "." * (n // 4) + "#" * (n // 2) + "." * (n - n // 4 - n // 2)
    text = "\n".join(rows)
    tracemalloc.start()
    grid = GridLayout(text)
    table = grid.next_states
    mdp = gridworld(grid, step_reward=-1.0, slip=0.1, discount=0.99)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    S = n * n - n // 2
    assert grid.num_states == S and table.shape == (S, 4) and table.dtype == np.int32
    assert mdp.transitions.next_states.shape == (S, 4, 3)
    assert peak < 40 * S * 4 * 3  # a few copies of the K = 3 lists, nothing of order S^2
    s = grid.state_of
    assert table[s(1, 0), 0] == s(0, 0) and table[s(n // 2 - 1, n // 2), 1] == s(n // 2 - 1, n // 2)
    assert table[s(0, n - 1)].tolist() == [s(0, n - 1)] * 4  # terminal: stays
    jaxmdp.validate_mdp(mdp)


def _chain_table(n):
    """A Gymnasium-style table: a slippery walk on 0..n-1, reward and termination at n-1."""
    P = {}
    for s in range(n):
        P[s] = {}
        for a, step in enumerate((-1, 1)):
            t, u = min(max(s + step, 0), n - 1), min(max(s - step, 0), n - 1)
            P[s][a] = [(0.8, t, float(t == n - 1), t == n - 1), (0.2, u, 0.0, False)]
    return P


def test_gymnasium_table_sparse_equals_dense():
    table = _chain_table(DENSE_MAX_STATES + 10)
    with jax.enable_x64(True):
        sparse = from_gymnasium(table, 0.9)
        dense = from_gymnasium(table, 0.9, form="dense")
        small = from_gymnasium(_chain_table(8), 0.9)
        assert isinstance(sparse.transitions, jaxmdp.SparseTransitions)
        assert sparse.transitions.num_successors == 2
        assert not isinstance(small.transitions, jaxmdp.SparseTransitions)
        np.testing.assert_array_equal(jaxmdp.to_dense(sparse.transitions), dense.transitions)
        np.testing.assert_array_equal(sparse.rewards, dense.rewards)
