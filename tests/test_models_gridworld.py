"""Tests for jaxmdp.models.gridworld: layout parsing, dynamics, optimal behaviour, batching."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from models_reference import optimal_action_sets, value_iteration

import jaxmdp
from jaxmdp.models import (
    DOWN,
    LEFT,
    RIGHT,
    RUSSELL_NORVIG_4X3,
    UP,
    GridLayout,
    gridworld,
    render_policy,
    render_values,
)

GRID = GridLayout(RUSSELL_NORVIG_4X3)
NON_TERMINAL = [s for s in range(GRID.num_states) if not GRID.is_terminal(s)]


def test_default_layout_is_russell_norvig_4x3():
    assert GRID.shape == (3, 4)
    assert GRID.num_states == 11
    assert GRID.start_state == GRID.state_of(2, 0) == 7
    assert GRID.terminal_states == (GRID.state_of(0, 3), GRID.state_of(1, 3)) == (3, 6)
    assert [GRID.cell_of(s) for s in range(11)] == [
        (i, j) for i in range(3) for j in range(4) if (i, j) != (1, 1)
    ]
    for s in range(11):
        assert GRID.state_of(*GRID.cell_of(s)) == s
    with pytest.raises(ValueError, match="wall"):
        GRID.state_of(1, 1)
    assert GridLayout("S . . +\n. # . -\n\n") != GRID
    assert GridLayout(["...+", ".#.-", "S..."]) == GRID
    assert hash(GridLayout(["...+", ".#.-", "S..."])) == hash(GRID)


@pytest.mark.parametrize("bad", ["", "##\n##", "..\n...", "S.\n.S"])
def test_bad_layouts_raise(bad):
    with pytest.raises(ValueError):
        GridLayout(bad)


# The tests below build their worlds in float64 unless the dtype is the point: builds of
# one shape and dtype share their compiled programs.


def test_deterministic_moves_and_rewards():
    with jax.enable_x64(True):
        mdp = gridworld(step_reward=-0.1)
    P, R = np.asarray(mdp.transitions), np.asarray(mdp.rewards)
    assert P.shape == (11, 4, 11) and R.shape == (11, 4) and mdp.discount.shape == ()
    s = GRID.state_of

    def goes(state, action, target):
        np.testing.assert_array_equal(P[state, action], np.eye(11)[target])

    goes(s(2, 0), UP, s(1, 0))
    goes(s(2, 0), DOWN, s(2, 0))  # grid edge: stay
    goes(s(2, 0), LEFT, s(2, 0))
    goes(s(2, 0), RIGHT, s(2, 1))
    goes(s(1, 0), RIGHT, s(1, 0))  # wall: stay
    goes(s(2, 1), UP, s(2, 1))
    goes(s(0, 2), RIGHT, s(0, 3))
    for t in GRID.terminal_states:  # absorbing, nothing paid after entry
        for a in range(4):
            goes(t, a, t)
        np.testing.assert_array_equal(R[t], 0.0)
    assert R[s(0, 2), RIGHT] == pytest.approx(1.0)
    assert R[s(1, 2), RIGHT] == pytest.approx(-1.0)
    assert R[s(2, 3), UP] == pytest.approx(-1.0)
    assert R[s(2, 0), LEFT] == pytest.approx(-0.1)  # a bump pays the step reward
    assert R[s(0, 0), RIGHT] == pytest.approx(-0.1)


def test_slip_goes_perpendicular():
    with jax.enable_x64(True):
        mdp = gridworld(step_reward=-0.5, slip=0.2)
    P, R = np.asarray(mdp.transitions), np.asarray(mdp.rewards)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-6)
    s = GRID.state_of
    # From (0, 2) going UP: bump (0.8), slip left to (0, 1) (0.1), slip right into +1 (0.1).
    np.testing.assert_allclose(P[s(0, 2), UP, [s(0, 2), s(0, 1), s(0, 3)]], [0.8, 0.1, 0.1])
    assert R[s(0, 2), UP] == pytest.approx(0.9 * -0.5 + 0.1 * 1.0)
    # From (0, 0) going UP: bump 0.8 + slip left into the edge 0.1, slip right 0.1.
    np.testing.assert_allclose(P[s(0, 0), UP, [s(0, 0), s(0, 1)]], [0.9, 0.1])
    # Left/right slip to up/down.
    np.testing.assert_allclose(P[s(1, 2), RIGHT, [s(1, 3), s(0, 2), s(2, 2)]], [0.8, 0.1, 0.1])


def _reference_sets(mdp):
    """Optimal action sets from a float64 NumPy solve (ties: every action within 1e-9)."""
    values, q = value_iteration(mdp.transitions, mdp.rewards, float(mdp.discount), tol=1e-13)
    return values, optimal_action_sets(q, atol=1e-9)


def _check_solver_agrees(mdp, values, sets):
    with jax.enable_x64(True):
        sol = jaxmdp.solve(jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), mdp))
        sol = jaxmdp.check(sol)
        np.testing.assert_allclose(sol.values, values, atol=1e-5)
        for s in NON_TERMINAL:
            assert int(sol.policy[s]) in sets[s], s


def _walk(policy_sets, start, max_steps=20):
    """Follows a deterministic world choosing the lowest optimal action; returns the path."""
    path, state = [start], start
    while not GRID.is_terminal(state) and len(path) <= max_steps:
        i, j = GRID.cell_of(state)
        di, dj = [(-1, 0), (1, 0), (0, -1), (0, 1)][min(policy_sets[state])]
        try:
            state = GRID.state_of(i + di, j + dj)
        except ValueError:  # wall or edge
            pass
        path.append(state)
    return path


def test_small_step_cost_walks_to_plus_one_around_minus_one():
    with jax.enable_x64(True):
        mdp = gridworld(step_reward=-0.1)
    values, sets = _reference_sets(mdp)
    s = GRID.state_of
    expected = {  # derived by hand: shortest path to +1, never through -1
        s(0, 0): {RIGHT},
        s(0, 1): {RIGHT},
        s(0, 2): {RIGHT},
        s(1, 0): {UP},
        s(1, 2): {UP},
        s(2, 0): {UP, RIGHT},  # two 5-step routes to +1
        s(2, 1): {RIGHT},
        s(2, 2): {UP},
        s(2, 3): {LEFT},  # the long way round rather than into -1
    }
    assert {st: sets[st] for st in NON_TERMINAL} == expected
    np.testing.assert_allclose(values[s(2, 0)], 0.6, atol=1e-12)
    path = _walk(sets, GRID.start_state)
    assert path[-1] == s(0, 3) and s(1, 3) not in path
    _check_solver_agrees(mdp, values, sets)


def test_large_step_cost_dives_into_minus_one():
    with jax.enable_x64(True):
        mdp = gridworld(step_reward=-2.0)
    values, sets = _reference_sets(mdp)
    s = GRID.state_of
    # Next to -1, exiting there (-1) is at least as good as any detour (<= -2 + 1).
    assert sets[s(2, 3)] == {UP}  # dive: -1 beats -2 - 3 via the top
    assert sets[s(1, 2)] == {UP, RIGHT}  # a tie: -1 into the pit or -2 + 1 via +1
    assert sets[s(0, 2)] == {RIGHT}
    np.testing.assert_allclose(values[[s(2, 3), s(1, 2), s(2, 2)]], [-1.0, -1.0, -3.0])
    _check_solver_agrees(mdp, values, sets)


def test_russell_norvig_utilities_and_policy():
    """R&N (3rd ed.) Fig. 17.3 utilities and Fig. 17.2 policy for R(s) = -0.04, 0.8/0.1/0.1."""
    with jax.enable_x64(True):
        mdp = gridworld(step_reward=-0.04, slip=0.2)
    values, sets = _reference_sets(mdp)
    # R&N's utility counts the reward of the current state: U = V + step_reward off the exits.
    book = {
        (0, 0): 0.812, (0, 1): 0.868, (0, 2): 0.918,
        (1, 0): 0.762, (1, 2): 0.660,
        (2, 0): 0.705, (2, 1): 0.655, (2, 2): 0.611, (2, 3): 0.388,
    }  # fmt: skip
    for cell, u in book.items():
        assert values[GRID.state_of(*cell)] - 0.04 == pytest.approx(u, abs=6e-4), cell
    policy = np.array([min(a) for a in sets])
    assert render_policy(GRID, policy) == "> > > +\n^ # ^ -\n^ < < <"
    assert all(len(sets[st]) == 1 for st in NON_TERMINAL)
    _check_solver_agrees(mdp, values, sets)


def test_terminal_and_cell_rewards():
    layout = "S.A\n.#B\n..."
    mdp = gridworld(
        layout,
        step_reward=-1.0,
        terminal_rewards={"A": 5.0, "B": -3.0},
        cell_rewards=jnp.array([[0.0, 0.5, 99.0], [0.0, 99.0, 99.0], [0.0, 0.0, 0.25]]),
    )
    grid = GridLayout(layout)
    s, R = grid.state_of, np.asarray(mdp.rewards)
    assert grid.terminal_states == (s(0, 2), s(1, 2))
    assert R[s(0, 1), RIGHT] == pytest.approx(5.0)
    assert R[s(2, 2), UP] == pytest.approx(-3.0)
    assert R[s(0, 0), RIGHT] == pytest.approx(-0.5)  # step + cell reward of (0, 1)
    assert R[s(2, 1), RIGHT] == pytest.approx(-0.75)
    assert R[s(0, 0), UP] == pytest.approx(-1.0)  # bump: (0, 0) has no cell reward
    # Raised while tracing: eval_shape checks them without compiling the world.
    with pytest.raises(ValueError, match="terminal_rewards"):
        jax.eval_shape(lambda: gridworld(layout))  # 'A' and 'B' have no default reward
    with pytest.raises(ValueError, match="cell_rewards"):
        jax.eval_shape(
            lambda: gridworld(
                layout, terminal_rewards={"A": 1, "B": 1}, cell_rewards=jnp.zeros((2, 2))
            )
        )


def _leaves_close(a, b, atol=1e-6):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


@pytest.mark.parametrize(
    "name, grid_values",
    [
        ("step_reward", np.linspace(-2.0, 0.0, 7)),
        ("slip", np.linspace(0.0, 0.6, 7)),
        ("discount", np.linspace(0.5, 1.0, 7)),
    ],
)
def test_vmap_and_broadcast_match_loop(name, grid_values):
    base = dict(step_reward=-0.04, slip=0.1, discount=0.9)
    build = jax.jit(lambda x: gridworld(**{**base, name: x}))
    with jax.enable_x64(True):  # `one` shares the slippery float64 world's programs
        # Members are taken in NumPy (device_get): no eager slicing programs per shape.
        batched = jax.device_get(jax.vmap(build)(jnp.asarray(grid_values)))
        broadcast = jax.device_get(gridworld(**{**base, name: jnp.asarray(grid_values)}))
        for i, x in enumerate(grid_values):
            one = gridworld(**{**base, name: float(x)})
            _leaves_close(jax.tree.map(lambda leaf, i=i: leaf[i], batched), one)
            _leaves_close(_member(broadcast, i), one)
    # Only slip changes the transitions, so other sweeps keep one shared [S, A, S] array.
    assert broadcast.transitions.ndim == (4 if name == "slip" else 3)


def _member(mdp, i):
    """Member i of a batch whose leaves may or may not carry the batch axis."""
    return jaxmdp.MDP(
        mdp.transitions[i] if mdp.transitions.ndim == 4 else mdp.transitions,
        mdp.rewards[i] if mdp.rewards.ndim == 3 else mdp.rewards,
        mdp.discount[i] if mdp.discount.ndim == 1 else mdp.discount,
    )


def test_vmap_terminal_rewards_and_dtype():
    rewards = jax.vmap(lambda r: gridworld(terminal_rewards={"+": r}).rewards)(jnp.arange(3.0))
    assert rewards.shape == (3, 11, 4)
    np.testing.assert_allclose(np.asarray(rewards)[:, GRID.state_of(0, 2), RIGHT], [0, 1, 2])
    # Batch axes of different parameters broadcast together, NumPy style.
    mixed = gridworld(step_reward=jnp.zeros(2), slip=0.1, cell_rewards=jnp.ones((3, 1, 3, 4)))
    assert mixed.rewards.shape == (3, 2, 11, 4) and mixed.transitions.shape == (11, 4, 11)
    assert np.asarray(mixed.rewards)[0, 0, GRID.state_of(2, 0), UP] == pytest.approx(1.0)
    # The dtype is decided when tracing: eval_shape checks it without compiling a world.
    assert jax.eval_shape(gridworld).rewards.dtype == jnp.result_type(float)
    with jax.enable_x64(True):
        assert jax.eval_shape(gridworld).transitions.dtype == jnp.float64


def test_render():
    values = np.arange(11) / 4
    text = render_values(None, values, precision=2)
    assert text.splitlines() == [
        "0.00 0.25 0.50 0.75",
        "1.00    # 1.25 1.50",
        "1.75 2.00 2.25 2.50",
    ]
    assert render_policy(None, np.zeros(11, int)) == "^ ^ ^ +\n^ # ^ -\n^ ^ ^ ^"
    grid = GRID.to_grid(jnp.stack([values, -values]))
    assert grid.shape == (2, 3, 4)
    assert np.isnan(grid[0, 1, 1]) and grid[1, 2, 3] == -2.5
    with pytest.raises(ValueError, match="shape"):
        render_policy(None, np.zeros(10, int))
