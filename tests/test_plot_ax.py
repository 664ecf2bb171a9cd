"""Plots compose: every function draws into the caller's axes and returns them; labels show
values at the precision their solve certified; models' own actions and layouts are used."""

from __future__ import annotations

import os

import numpy as np
import pytest

import jaxmdp
from jaxmdp import ModelInfo, models

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

from jaxmdp import plot  # noqa: E402


@pytest.fixture(scope="module")
def sweep():
    return jaxmdp.sweep(
        lambda step_reward, discount: models.gridworld(
            step_reward=step_reward, slip=0.2, discount=discount
        ),
        jaxmdp.ValueIteration(tol=1e-3),
        step_reward=np.linspace(-2, 0, 9),
        discount=np.array([0.9, 1.0]),
    )


def test_every_function_draws_into_the_callers_axes(sweep, tmp_path):
    fig = Figure(figsize=(12, 8))
    grid_ax, phase_ax, conv_ax, *panels = fig.subplots(2, 3).ravel()
    mdp = models.gridworld(step_reward=-0.04, slip=0.2, discount=0.9)
    sol = jaxmdp.solve(mdp)
    assert plot.gridworld(sol, ax=grid_ax) is grid_ax
    assert plot.phase_diagram(sweep, ax=phase_ax, legend=False) is phase_ax
    hist = jaxmdp.convergence_history(mdp, jaxmdp.ValueIteration(), 50)
    assert plot.convergence(hist, ax=conv_ax, title="mine") is conv_ax
    drawn = plot.policies(sweep, ax=panels, path=tmp_path / "all.png")
    assert list(drawn) == panels[: len(drawn)] and 1 <= len(drawn) <= 3
    for ax in (grid_ax, phase_ax, conv_ax, *drawn):
        assert ax.figure is fig
        assert ax.has_data() or ax.texts
    assert conv_ax.get_title() == "mine"
    assert len(grid_ax.texts) >= 11  # a value label per state
    # `path` saved the caller's whole figure, written atomically (no temporary left behind).
    assert (tmp_path / "all.png").read_bytes()[:4] == b"\x89PNG"
    assert os.listdir(tmp_path) == ["all.png"]


def test_without_ax_each_function_makes_its_own_figure(sweep):
    ax = plot.gridworld(np.zeros(11))
    assert isinstance(ax.figure, Figure) and len(ax.figure.axes) == 2  # axes + colorbar
    assert len(plot.gridworld(np.zeros(11), colorbar=False).figure.axes) == 1
    axes = plot.policies(sweep, max_policies=2)
    assert len(axes) == min(2, len(sweep.distinct_policies()[1]))
    assert axes[0].figure is axes[-1].figure
    assert plot.phase_diagram(sweep).get_legend() is not None


def labels(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_text()]


def test_values_are_labelled_at_the_certified_precision():
    values = np.full(11, 0.123456)
    values[3] = -3.81e-07  # an absorbing zero-reward state, off by rounding
    text = labels(plot.gridworld(values, error_bound=1e-6))
    assert "0" in text and "-3.81e-07" not in text
    assert "0.123" in text  # 3 significant digits, all certified by 1e-6
    coarse = labels(plot.gridworld(values, error_bound=0.004))
    assert "0.12" in coarse and "0.123" not in coarse  # no digit finer than the bound
    # Nothing certified (e.g. value iteration at discount 1): shown as is.
    assert "-3.81e-07" in labels(plot.gridworld(values))
    # A Solution brings its own bound.
    sol = jaxmdp.solve(models.gridworld(step_reward=-0.04, slip=0.2, discount=0.9))
    assert float(sol.error_bound) < 1e-3
    assert "0" in labels(plot.gridworld(sol))


@pytest.mark.parametrize(
    "value, bound, kwargs, expected",
    [
        (-3.81e-07, 1e-6, {}, "0"),
        (-3.81e-07, None, {}, "-3.81e-07"),
        (0.852123, 1e-7, {}, "0.852"),
        (0.852123, 0.004, {}, "0.85"),
        (0.852123, 0.04, {}, "0.9"),
        (1234.5678, 30.0, {}, "1200"),  # the tens are not certified
        (1234.5678, 0.3, {}, "1.23e+03"),
        (3e-5, 1e-5, {}, "0.00003"),
        (0.852123, 1e-7, {"fixed": True}, "0.852"),
        (0.852123, 0.004, {"fixed": True}, "0.85"),
        (-2e-9, 1e-8, {"fixed": True}, "0.000"),
        (-0.0004, None, {"fixed": True}, "0.000"),  # no "-0.000"
        (float("-inf"), 1e-3, {}, "-inf"),
        (float("nan"), None, {}, "nan"),
    ],
)
def test_certified_text(value, bound, kwargs, expected):
    assert plot._certified_text(value, bound, **kwargs) == expected


def frozenlake_like_info():
    """A FrozenLake-style model description: Gymnasium's action order (left, down, right,
    up) and only the holes and the goal absorbing."""
    layout = models.GridLayout("SFF\nFHF\nFFG")
    return ModelInfo(
        name="FrozenLake-like",
        action_names=("left", "down", "right", "up"),
        action_symbols="<v>^",
        layout=layout,
        terminal_states=(4, 8),
    )


def arrows(ax) -> dict[tuple[float, float], tuple[float, float]]:
    """`{arrow tail: (dx, dy)}` of the arrows drawn (annotations with an arrow)."""
    out = {}
    for t in ax.texts:
        if getattr(t, "arrow_patch", None) is not None:
            (x1, y1), (x0, y0) = t.xy, t.xyann
            out[(x0, y0)] = (np.sign(x1 - x0), np.sign(y1 - y0))
    return out


def test_model_info_gives_layout_actions_and_terminals():
    info = frozenlake_like_info()
    policy = np.array([2, 1, 0, 3, 0, 1, 2, 2, 0])  # right, down, left, up, ..., 'F' cells too
    mdp = jaxmdp.MDP(np.zeros((9, 4, 9)), np.zeros((9, 4)), 0.9, info=info)
    ax = plot.gridworld(np.zeros(9), policy, mdp)
    drawn = arrows(ax)
    assert len(drawn) == 7  # every non-absorbing cell, 'F' included; not the hole or goal
    assert drawn[(0 - 0.3, 0 - 0.1)] == (1, 0)  # state 0, action 2 = right in this order
    assert drawn[(1, -0.1 - 0.3)] == (0, 1)  # state 1, action 1 = down
    assert drawn[(2 + 0.3, -0.1)] == (-1, 0)  # state 2, action 0 = left
    assert drawn[(0, 1 - 0.1 + 0.3)] == (0, -1)  # state 3, action 3 = up
    assert {"H", "G"} <= set(labels(ax))  # absorbing cells keep their symbol
    assert plot.gridworld(np.zeros(9), policy, info) is not None  # a ModelInfo alone works


def test_actions_that_are_not_moves_are_drawn_by_symbol():
    info = ModelInfo(
        action_names=("north", "pickup"), action_symbols="NP", layout=models.GridLayout("..")
    )
    ax = plot.gridworld(np.zeros(2), np.array([0, 1]), info)
    assert len(arrows(ax)) == 1 and "P" in labels(ax)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="layout"):
        plot.gridworld(
            np.zeros(2), layout=jaxmdp.MDP(np.ones((2, 1, 2)) / 2, np.zeros((2, 1)), 0.9)
        )
    with pytest.raises(ValueError, match="values must have shape"):
        plot.gridworld(np.zeros(5))
    with pytest.raises(ValueError, match="policy must have shape"):
        plot.gridworld(np.zeros(11), np.zeros(3, int))
