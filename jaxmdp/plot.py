"""Plots: grid-world values and policies, a sweep's phase diagram, convergence of a solve.

Needs matplotlib (the `plot` extra: `pip install "jaxmdp-solver[plot]"`), imported only when a
function here is called. Every function draws into axes you pass (`ax=`, e.g. one panel of
your own `plt.subplots` figure) or, without `ax`, into a new `matplotlib.figure.Figure` made
directly (no `pyplot`, no GUI backend, so it renders headless). It returns what it drew into:
the `Axes` (`policies`: an array of them); `ax.figure` is the figure. `path=` saves that
figure (PNG, or any format matplotlib knows from the suffix), written to a temporary name and
renamed into place, so a reader never sees half a file.

Values are labelled at the precision their solve certified: a value within `error_bound` of 0
shows as 0, and no digit finer than the bound is printed (the arrays are not changed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from jaxmdp._history import History
from jaxmdp._sweep_result import SweepResult

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


# LEAD: stand-in for the `files` branch's value formatter (jaxmdp._format); switch this one
# function (used by plot.py and jaxmdp.cli) to it once that branch lands. Contract: a value
# within `error_bound` of 0 shows as 0, no digit finer than the bound is shown, the array
# itself is never changed.
def _certified_text(value, error_bound=None, *, digits: int = 3, fixed: bool = False) -> str:
    """A value as text, at no more precision than `error_bound` certifies.

    Args:
      value: the number.
      error_bound: bound on its error (`None` or non-finite: nothing certified beyond the
        display precision, the value is shown as is).
      digits: significant digits (`fixed=False`) or digits after the point (`fixed=True`).
      fixed: fixed-point text (tables of aligned numbers) instead of significant digits.
    """
    v = float(value)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    eb = math.inf if error_bound is None else float(error_bound)
    certified = math.isfinite(eb) and eb > 0
    if certified and abs(v) <= eb:
        v = 0.0
    # The finest decimal place the bound supports: 10^-c <= eb.
    c = math.floor(-math.log10(eb)) if certified else None
    if fixed:
        decimals = digits if c is None else min(digits, c)
        text = f"{round(v, decimals):.{max(decimals, 0)}f}"
    else:
        text = f"{v:.{digits}g}"
        if c is not None and v != 0:
            last = math.floor(math.log10(abs(v))) - digits + 1  # place of the last digit shown
            if last < -c:
                text = f"{round(v, c):.{max(c, 0)}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _figure(**kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "jaxmdp.plot needs matplotlib; install the `plot` extra: "
            'pip install "jaxmdp-solver[plot]"'
        ) from None
    return Figure(**kwargs)


def _axes(ax, figsize):
    """The caller's axes, or one on a new figure."""
    if ax is not None:
        return ax
    return _figure(figsize=figsize).add_subplot()


def _save(fig, path) -> None:
    if path is None:
        return
    from jaxmdp._io import atomic_file

    fmt = os.path.splitext(os.fspath(path))[1][1:].lower() or None
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=120, bbox_inches="tight")


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


def _outline():
    from matplotlib import patheffects

    return patheffects.withStroke(linewidth=2, foreground="black")


def _cmap(name):
    import matplotlib

    return matplotlib.colormaps[name]


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


def _edges(coords):
    c = np.asarray(coords, dtype=float)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5]), True
    d = np.diff(c)
    if not (np.all(d > 0) or np.all(d < 0)):  # not monotonic: plot against the index
        return np.arange(len(c) + 1) - 0.5, False
    mid = (c[:-1] + c[1:]) / 2
    return np.concatenate([[c[0] - d[0] / 2], mid, [c[-1] + d[-1] / 2]]), True


def phase_diagram(
    result: SweepResult,
    x: str | None = None,
    y: str | None = None,
    *,
    at: Mapping[str, int] | None = None,
    ax=None,
    legend: bool = True,
    title: str | None = None,
    path: str | os.PathLike | None = None,
):
    """Which policy is optimal where: a sweep's members colored by distinct policy.

    Cells are colored by policy label (numbered by first appearance, as in
    `SweepResult.distinct_policies`), members that did not succeed are grey, and the
    boundaries where the policy changes between neighbours are drawn in black.

    Args:
      result: a `SweepResult` with one or more axes.
      x, y: axis names for the horizontal and vertical axes (default: the first two).
      at: `{name: index}` fixing every other axis of a sweep with more than two.
      ax: matplotlib `Axes` to draw into (default: a new figure's).
      legend: add the legend (policy colours and counts) right of the axes.
      title: axes title.
      path: save the figure there.

    Returns:
      The `Axes` drawn into.
    """
    names = list(result.names)
    x = x or names[0]
    y = y or next((n for n in names if n != x), None)
    for n in (x, y):
        if n is not None and n not in names:
            raise ValueError(f"{n!r} is not an axis of this sweep; its axes: {names}.")
    at = dict(at or {})
    rest = [n for n in names if n not in (x, y)]
    missing = [n for n in rest if n not in at]
    if missing:
        raise ValueError(f"phase_diagram plots two axes; fix the others with at={{...}}: {missing}")
    labels, pols = result.distinct_policies()
    index = tuple(slice(None) if n in (x, y) else int(at[n]) for n in names)
    lab = labels[index]
    kept = [n for n in names if n in (x, y)]
    if y is None:
        lab = lab[:, None]
    elif kept != [x, y]:
        lab = lab.T
    ex, xreal = _edges(result.axes[x])
    ey, yreal = _edges(result.axes[y]) if y is not None else (np.array([0.0, 1.0]), False)

    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    n = max(len(pols), 1)
    base = _cmap("tab20" if n > 10 else "tab10")
    colors = [base(i % base.N) for i in range(n)]
    ax = _axes(ax, (7.5, 4.8))
    shown = np.ma.masked_less(lab, 0).T  # [y, x]
    cmap = ListedColormap(colors).with_extremes(bad="0.8")
    ax.pcolormesh(
        ex, ey, shown, cmap=cmap, norm=BoundaryNorm(np.arange(n + 1) - 0.5, n), shading="flat"
    )
    # boundaries: between horizontal neighbours (vertical segments) and vertical ones
    segs = []
    for i in range(lab.shape[0] - 1):
        for j in np.flatnonzero((lab[i] != lab[i + 1]) & (lab[i] >= 0) & (lab[i + 1] >= 0)):
            segs.append([(ex[i + 1], ey[j]), (ex[i + 1], ey[j + 1])])
    for j in range(lab.shape[1] - 1):
        col = lab[:, j], lab[:, j + 1]
        for i in np.flatnonzero((col[0] != col[1]) & (col[0] >= 0) & (col[1] >= 0)):
            segs.append([(ex[i], ey[j + 1]), (ex[i + 1], ey[j + 1])])
    if segs:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segs, colors="black", linewidths=1.2))
    ax.set_xlabel(x if xreal else f"{x} (index)")
    if y is not None:
        ax.set_ylabel(y if yreal else f"{y} (index)")
    else:
        ax.set_yticks([])
    if legend:
        counts = np.bincount(lab[lab >= 0].reshape(-1), minlength=n)
        handles = [
            Patch(color=colors[i], label=f"policy {i} ({counts[i]} pts)") for i in range(min(n, 20))
        ]
        if (lab < 0).any():
            handles.append(Patch(facecolor="0.8", label="did not succeed"))
        ax.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            fontsize=8,
            frameon=False,
        )
    fixed = ", ".join(f"{k}={result.axes[k][int(v)]:.3g}" for k, v in at.items() if k in rest)
    ax.set_title(
        title or f"{len(pols)} distinct optimal policies" + (f" ({fixed})" if fixed else "")
    )
    _save(ax.figure, path)
    return ax


def convergence(
    histories: History | Sequence[History] | Mapping[str, History],
    labels: Sequence[str] | None = None,
    *,
    ax=None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
):
    """Residual (the solver's stopping statistic) against iteration, log scale.

    Args:
      histories: one `History` (from `jaxmdp.convergence_history`), a list of them, or a
        `{label: History}` mapping.
      labels: legend labels for a list.
      ax: matplotlib `Axes` to draw into (default: a new figure's).
      title: axes title.
      path: save the figure there.

    A dot marks where `solve` would have stopped (`History.stopped_at`).

    Returns:
      The `Axes` drawn into.
    """
    if isinstance(histories, History):
        histories = [histories]
    if isinstance(histories, Mapping):
        labels, histories = list(histories), list(histories.values())
    labels = list(labels) if labels is not None else [None] * len(histories)
    ax = _axes(ax, (6.4, 4.0))
    for h, label in zip(histories, labels, strict=True):
        r = np.asarray(h.residual, dtype=float)
        it = np.arange(1, len(r) + 1)
        ok = np.isfinite(r) & (r > 0)
        (line,) = ax.semilogy(it[ok], r[ok], label=label)
        stop = h.stopped_at
        if stop is not None and ok[stop - 1]:
            ax.plot([stop], [r[stop - 1]], "o", color=line.get_color())
    ax.set_xlabel("iteration")
    ax.set_ylabel("residual (stopping statistic)")
    ax.grid(True, which="both", alpha=0.3)
    if any(label is not None for label in labels):
        ax.legend(fontsize=8)
    ax.set_title(title or "convergence (dot: where solve stops)")
    _save(ax.figure, path)
    return ax
