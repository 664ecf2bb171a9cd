"""Policy and value rendering from a model's `info` (gridworld, Gymnasium grids) or a layout.

The arrows are checked against the dynamics, not against a copy of the symbol table: for
every state and action, the cell the arrow points to is the cell the deterministic
environment moves to (when the move is not blocked).
"""

import jax
import numpy as np
import pytest

import jaxmdp
from jaxmdp import models
from jaxmdp.models import GridLayout, render_policy, render_values

ARROW_STEP = {"^": (-1, 0), "v": (1, 0), "<": (0, -1), ">": (0, 1)}


def _cells(text: str) -> list[list[str]]:
    return [row.split(" ") for row in text.splitlines()]


def _check_arrows_follow_dynamics(mdp, layout):
    """Every action's arrow points where the (deterministic) MDP moves, unless blocked
    (or, in CliffWalking, thrown back to the start by the cliff)."""
    P = np.asarray(mdp.transitions)
    for a in range(mdp.num_actions):
        drawn = _cells(render_policy(mdp, np.full(mdp.num_states, a)))
        for s, (i, j) in enumerate(layout.cells):
            symbol = drawn[i][j]
            if s in mdp.info.terminal_states:
                assert symbol == layout.symbol(s), (s, symbol)
                continue
            di, dj = ARROW_STEP[symbol]
            target = np.flatnonzero(P[s, a] == 1.0)
            assert len(target) == 1, (s, a)  # deterministic
            target = int(target[0])
            if target >= layout.num_states or target == s:
                continue  # blocked, or into the appended absorbing state
            if layout.symbol(target) == "S" and layout.cell_of(target) != (i + di, j + dj):
                continue  # CliffWalking: the cliff throws you back to the start
            assert layout.cell_of(target) == (i + di, j + dj), (s, a, symbol)


def test_gridworld_carries_info_and_renders_from_the_mdp():
    mdp = models.gridworld(step_reward=-0.04, slip=0.2)
    info = mdp.info
    assert info.name == "gridworld"
    assert info.action_names == ("up", "down", "left", "right")
    assert info.action_symbols == models.ARROWS == "^v<>"
    assert info.layout == GridLayout() == GridLayout(models.RUSSELL_NORVIG_4X3)
    assert info.terminal_states == (3, 6)
    policy = jaxmdp.solve(mdp).policy
    text = render_policy(mdp, policy)
    assert text == "> > > +\n^ # ^ -\n^ < < <"
    # The README's form (a layout; GridLayout() is the 4x3 world) draws the same.
    assert render_policy(GridLayout(), policy) == text == render_policy(None, policy)
    values = np.arange(11) / 4
    assert render_values(mdp, values, precision=2) == render_values(None, values, precision=2)
    _check_arrows_follow_dynamics(models.gridworld(), info.layout)


def test_info_is_static_and_dropped_by_transformations():
    mdp = models.gridworld()
    mapped = jax.tree.map(lambda x: x, mdp)
    assert mapped.info is None
    with pytest.raises(ValueError, match=r"no `info`.*GridLayout"):
        render_policy(mapped, np.zeros(11, int))
    # ... but a layout still renders it.
    assert render_policy(GridLayout(), np.zeros(11, int)) == "^ ^ ^ +\n^ # ^ -\n^ ^ ^ ^"


@pytest.mark.parametrize("bad, what", [(-1, "-1"), (4, "4"), (7, "7"), (1.5, "1.5")])
def test_actions_out_of_range_name_state_and_range(bad, what):
    mdp = models.gridworld()
    policy = np.zeros(11, dtype=type(bad))
    policy[9] = bad
    with pytest.raises(ValueError, match=rf"action {what} at state 9.*0\.\.3"):
        render_policy(mdp, policy)
    with pytest.raises(ValueError, match=rf"action {what} at state 9.*0\.\.3"):
        render_policy(GridLayout(), policy)
    with pytest.raises(ValueError, match="shape"):
        render_policy(mdp, np.zeros(10, int))
    with pytest.raises(ValueError, match="integer actions"):
        render_policy(mdp, np.array(["a"] * 11))


def test_layout_with_custom_actions_and_terminal_symbols():
    layout = GridLayout(["SFF", "FHG"], terminal="HG")
    assert layout.terminal_states == (4, 5) and layout.start_state == 0
    assert layout != GridLayout(["SFF", "FHG"])  # default rule: F is terminal too
    assert GridLayout(["SFF", "FHG"]).terminal_states == (1, 2, 3, 4, 5)
    assert hash(layout) == hash(GridLayout("SFF\nFHG", terminal="GH"))
    assert render_policy(layout, [0, 1, 2, 0, 0, 0], actions="abc") == "a b c\na H G"
    with pytest.raises(ValueError, match=r"action 3 at state 0.*0\.\.2"):
        render_policy(layout, [3, 0, 0, 0, 0, 0], actions="abc")
    with pytest.raises(ValueError, match="wall"):
        GridLayout("S.#", terminal="#")
    # gridworld honours the terminal symbols: F cells are ordinary, H and G absorbing.
    mdp = models.gridworld(layout, terminal_rewards={"H": -1.0, "G": 1.0})
    assert mdp.info.terminal_states == (4, 5)
    _check_arrows_follow_dynamics(mdp, layout)


@pytest.fixture
def gymnasium():
    return pytest.importorskip("gymnasium")  # the gym extra; the tests above need none


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "FrozenLake8x8-v1"])
def test_frozenlake_renders_with_gymnasium_action_order(env_id, gymnasium):
    from gymnasium.envs.toy_text import frozen_lake

    env = gymnasium.make(env_id, is_slippery=False)
    mdp = models.from_gymnasium(env, 0.9)
    info = mdp.info
    assert info.name == env_id
    order = (frozen_lake.LEFT, frozen_lake.DOWN, frozen_lake.RIGHT, frozen_lake.UP)
    assert order == (0, 1, 2, 3) and info.action_names == ("left", "down", "right", "up")
    desc = ["".join(c.decode() for c in row) for row in env.unwrapped.desc]
    assert info.layout.rows == tuple(desc)
    holes_and_goal = tuple(i * len(desc[0]) + j for i, r in enumerate(desc) for j, ch in
                           enumerate(r) if ch in "HG")  # fmt: skip
    assert info.terminal_states == holes_and_goal  # the absorbing states only
    _check_arrows_follow_dynamics(mdp, info.layout)
    # Every F and the S cell get an arrow; H and G keep their symbol.
    drawn = _cells(render_policy(mdp, jaxmdp.solve(mdp).policy))
    for i, row in enumerate(desc):
        for j, ch in enumerate(row):
            assert (drawn[i][j] == ch) == (ch in "HG"), (i, j, drawn[i][j])


def test_cliffwalking_renders_on_its_grid(gymnasium):
    env = gymnasium.make("CliffWalking-v1")
    mdp = models.from_gymnasium(env, 0.99)
    info = mdp.info
    assert info.action_names == ("up", "right", "down", "left")
    assert info.layout.shape == (4, 12) and info.layout.num_states == 48
    assert mdp.num_states == 49  # the appended absorbing state is not on the grid
    assert info.terminal_states == (47, 48)  # the goal ends episodes on entry
    _check_arrows_follow_dynamics(mdp, info.layout)
    policy = np.asarray(jaxmdp.check(jaxmdp.solve(mdp, jaxmdp.PolicyIteration())).policy)
    text = render_policy(mdp, policy)
    assert text == render_policy(mdp, policy[:48])  # the grid's states only: same drawing
    rows = text.splitlines()
    assert rows[3].endswith("G") and rows[3].startswith("^")  # start: up, around the cliff
    assert render_values(mdp, np.zeros(49)).splitlines()[0].split()[0] == "0.000"


def test_taxi_has_action_names_but_no_grid(gymnasium):
    mdp = models.from_gymnasium("Taxi-v4", 0.9)
    assert mdp.info.name == "Taxi-v4"
    assert mdp.info.action_names == ("south", "north", "east", "west", "pickup", "dropoff")
    assert mdp.info.layout is None
    with pytest.raises(ValueError, match=r"Taxi-v4.*no grid layout"):
        render_policy(mdp, np.zeros(mdp.num_states, int))
    # A bare transition dict gives no info at all.
    assert models.from_gymnasium({0: {0: [(1.0, 0, 0.0, False)]}}, 0.5).info is None
