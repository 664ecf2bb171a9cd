"""Grid worlds: values as a heatmap with the policy drawn on it; a sweep's distinct policies."""

from __future__ import annotations

import os

import numpy as np

from jaxmdp._sweep_result import SweepResult
from jaxmdp.plot._common import _axes, _certified_text, _cmap, _figure, _outline, _save

# (d_col, d_row) of an arrow for an action whose name says where it goes (row 0 at the top).
_DIRECTIONS = {
    "up": (0, -1),
    "north": (0, -1),
    "down": (0, 1),
    "south": (0, 1),
    "left": (-1, 0),
    "west": (-1, 0),
    "right": (1, 0),
    "east": (1, 0),
}
# The action names of `jaxmdp.models.gridworld` (UP, DOWN, LEFT, RIGHT): the default when the
# model carries no `ModelInfo`.
_GRIDWORLD_ACTIONS = ("up", "down", "left", "right")


class _Grid:
    """What drawing a policy on a grid needs: the layout, terminal states, how actions look."""

    def __init__(self, layout):
        from jaxmdp._mdp import MDP, ModelInfo
        from jaxmdp.models import RUSSELL_NORVIG_4X3, GridLayout

        info = layout.info if isinstance(layout, MDP) else layout
        if isinstance(info, ModelInfo) or (isinstance(layout, MDP) and info is None):
            if info is None or info.layout is None:
                raise ValueError(
                    "this model has no grid layout to draw on (its `info.layout` is None); "
                    "pass layout= explicitly."
                )
            grid = info.layout
            names, symbols, terminal = info.action_names, info.action_symbols, info.terminal_states
        else:
            grid = layout if isinstance(layout, GridLayout) else None
            if grid is None:
                grid = GridLayout(RUSSELL_NORVIG_4X3 if layout is None else layout)
            names, symbols, terminal = _GRIDWORLD_ACTIONS, "^v<>", None
        self.layout = grid
        self.terminal = set(grid.terminal_states if terminal is None else terminal)
        self.names = tuple(names) if names is not None else None
        self.symbols = symbols

    def check(self, name: str, x) -> np.ndarray:
        x = np.asarray(x)
        n = self.layout.num_states
        if x.ndim != 1 or x.shape[0] < n:
            raise ValueError(
                f"{name} must have shape [S] with S >= {n} (the grid's cells); got {x.shape}."
            )
        return x

    def arrow(self, action: int):
        """`(dx, dy)` for an action whose name is a direction, else None."""
        if self.names is None or not 0 <= action < len(self.names):
            return None
        return _DIRECTIONS.get(str(self.names[action]).lower())

    def label(self, action: int) -> str:
        if self.symbols is not None and 0 <= action < len(self.symbols):
            return self.symbols[action]
        return str(action)


def _draw_grid(ax, grid: _Grid, values, policy, error_bound, title, cmap):
    values = np.asarray(grid.check("values", values), dtype=float)
    if policy is not None:
        policy = grid.check("policy", policy)
    layout = grid.layout
    img = np.full(layout.shape, np.nan)
    for s, (i, j) in enumerate(layout.cells):
        img[i, j] = values[s]
    finite = img[np.isfinite(img)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    cm = _cmap(cmap).with_extremes(bad="0.25")
    im = ax.imshow(np.ma.masked_invalid(img), cmap=cm, vmin=vmin, vmax=vmax)
    for s, (i, j) in enumerate(layout.cells):
        if s in grid.terminal:
            ax.text(
                j,
                i - 0.15,
                layout.rows[i][j],
                ha="center",
                va="center",
                fontsize=14,
                weight="bold",
                color="white",
                path_effects=[_outline()],
            )
        elif policy is not None:
            action = int(policy[s])
            direction = grid.arrow(action)
            if direction is None:  # an action that is not a move: its symbol
                ax.text(
                    j,
                    i - 0.1,
                    grid.label(action),
                    ha="center",
                    va="center",
                    fontsize=13,
                    weight="bold",
                    color="white",
                    path_effects=[_outline()],
                )
            else:
                dx, dy = direction
                ax.annotate(
                    "",
                    xy=(j + 0.3 * dx, i - 0.1 + 0.3 * dy),
                    xytext=(j - 0.3 * dx, i - 0.1 - 0.3 * dy),
                    arrowprops={"arrowstyle": "-|>", "color": "white", "lw": 2},
                )
        ax.text(
            j,
            i + 0.3,
            _certified_text(values[s], error_bound),
            ha="center",
            va="center",
            fontsize=8,
            color="white",
            bbox={"facecolor": "black", "alpha": 0.35, "lw": 0, "pad": 1},
        )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return im


def gridworld(
    values,
    policy=None,
    layout=None,
    *,
    error_bound=None,
    ax=None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    cmap: str = "viridis",
    colorbar: bool = True,
):
    """Grid-world values as a heatmap, the policy as arrows.

    Args:
      values: `[S]` one value per state, or a single `Solution` (then `policy` and
        `error_bound` default to its own).
      policy: optional `[S]` actions (arrows on non-terminal cells).
      layout: the grid: an `MDP` or `ModelInfo` carrying one (`mdp.info`: its layout,
        terminal states and action names, e.g. Gymnasium's FrozenLake order), or a
        `GridLayout` / layout string for `jaxmdp.models.gridworld`'s actions (default: the
        4x3 world). Actions whose name is a direction get an arrow, others their symbol.
        States beyond the grid's cells (an appended absorbing state) are not drawn.
      error_bound: `[]` the solve's certified bound; labels show no more precision.
      ax: matplotlib `Axes` to draw into (default: a new figure's).
      title: axes title.
      path: save the figure there.
      cmap: matplotlib colormap name.
      colorbar: add a colorbar beside the axes.

    Returns:
      The `Axes` drawn into.
    """
    from jaxmdp._solution import Solution

    if isinstance(values, Solution):
        sol = values
        if np.ndim(sol.values) != 1:
            raise ValueError(f"gridworld draws one solution; got values {np.shape(sol.values)}.")
        values = sol.values
        policy = sol.policy if policy is None else policy
        error_bound = sol.error_bound if error_bound is None else error_bound
    grid = _Grid(layout)
    h, w = grid.layout.shape
    ax = _axes(ax, (1.3 * w + 1.2, 1.3 * h + 0.4))
    im = _draw_grid(ax, grid, values, policy, error_bound, title, cmap)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="value")
    _save(ax.figure, path)
    return ax


def policies(
    result: SweepResult,
    layout=None,
    *,
    ax=None,
    max_policies: int = 12,
    path: str | os.PathLike | None = None,
):
    """The distinct optimal policies of a grid-world sweep, one small panel each.

    Each panel shows the values of the first member (row-major) with that policy, at the
    precision that member's solve certified, and how many members share it.

    Args:
      result: a `SweepResult` of a grid-world model.
      layout: the grid, as for `gridworld` (an `MDP` built by the sweep's builder carries
        its own).
      ax: a sequence (or array) of `Axes`, one per panel, filled in order (as many policies
        as there are axes, at most `max_policies`); default: a new figure with a grid of
        panels.
      max_policies: the most panels drawn.
      path: save the figure there (the figure of the first axes).

    Returns:
      `np.ndarray` of the `Axes` drawn into (object dtype, one per policy drawn).
    """
    grid = _Grid(layout)
    labels, pols = result.distinct_policies()
    if len(pols) == 0:
        raise ValueError("no member of this sweep succeeded: there is no policy to draw.")
    if ax is None:
        k = min(len(pols), max_policies)
        cols = min(k, 4)
        rows = -(-k // cols)
        h, w = grid.layout.shape
        fig = _figure(figsize=(cols * (1.0 * w + 0.3), rows * (1.0 * h + 0.7)))
        axes = [fig.add_subplot(rows, cols, p + 1) for p in range(k)]
        if len(pols) > k:
            fig.suptitle(f"first {k} of {len(pols)} distinct policies", fontsize=10)
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        k = min(len(pols), max_policies, len(axes))
        axes = axes[:k]
    flat_labels = labels.reshape(-1)
    flat_values = np.asarray(result.values).reshape(result.size, -1)
    flat_bounds = np.asarray(result.error_bound).reshape(-1)
    for p, panel in enumerate(axes):
        first = int(np.flatnonzero(flat_labels == p)[0])
        at = np.unravel_index(first, result.shape)
        where = ", ".join(
            f"{n}={float(result.axes[n][i]):.3g}" for n, i in zip(result.names, at, strict=True)
        )
        count = int((flat_labels == p).sum())
        title = f"policy {p}: {count} pts\n{where}"
        _draw_grid(panel, grid, flat_values[first], pols[p], flat_bounds[first], title, "viridis")
    _save(axes[0].figure, path)
    out = np.empty(len(axes), dtype=object)
    out[:] = axes
    return out
