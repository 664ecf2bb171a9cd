"""Plots: grid-world values and policies, a sweep's phase diagram, convergence of a solve.

Needs matplotlib (the `plot` extra: `pip install "jaxmdp-solver[plot]"`), imported only when a
function here is called. Figures are built with `matplotlib.figure.Figure` directly (no
`pyplot`, no GUI backend), so they render headless; pass `path=` to save a PNG (or any format
matplotlib knows from the suffix). Every function returns the `Figure`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from jaxmdp._history import History
from jaxmdp._sweep_result import SweepResult

# (d_col, d_row) per action UP, DOWN, LEFT, RIGHT (row 0 at the top)
_ARROW = {0: (0, -1), 1: (0, 1), 2: (-1, 0), 3: (1, 0)}


def _figure(**kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "jaxmdp.plot needs matplotlib; install the `plot` extra: "
            'pip install "jaxmdp-solver[plot]"'
        ) from None
    return Figure(**kwargs)


def _save(fig, path):
    if path is not None:
        parent = os.path.dirname(os.fspath(path))
        if parent:
            os.makedirs(parent, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def _layout(layout):
    from jaxmdp.models import RUSSELL_NORVIG_4X3, GridLayout

    if isinstance(layout, GridLayout):
        return layout
    return GridLayout(RUSSELL_NORVIG_4X3 if layout is None else layout)


def _draw_grid(ax, grid, values, policy, title, cmap):
    values = np.asarray(values, dtype=float)
    img = np.full(grid.shape, np.nan)
    for s, (i, j) in enumerate(grid.cells):
        img[i, j] = values[s]
    finite = img[np.isfinite(img)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    cm = _cmap(cmap).with_extremes(bad="0.25")
    im = ax.imshow(np.ma.masked_invalid(img), cmap=cm, vmin=vmin, vmax=vmax)
    for s, (i, j) in enumerate(grid.cells):
        symbol = grid.symbol(s)
        if grid.is_terminal(s):
            ax.text(
                j,
                i - 0.15,
                symbol,
                ha="center",
                va="center",
                fontsize=14,
                weight="bold",
                color="white",
                path_effects=[_outline()],
            )
        elif policy is not None:
            dx, dy = _ARROW[int(policy[s])]
            ax.annotate(
                "",
                xy=(j + 0.3 * dx, i - 0.1 + 0.3 * dy),
                xytext=(j - 0.3 * dx, i - 0.1 - 0.3 * dy),
                arrowprops={"arrowstyle": "-|>", "color": "white", "lw": 2},
            )
        ax.text(
            j,
            i + 0.3,
            f"{values[s]:.3g}",
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
    title: str | None = None,
    path: str | os.PathLike | None = None,
    cmap: str = "viridis",
):
    """Grid-world values as a heatmap, the policy as arrows.

    Args:
      values: `[S]` one value per state (e.g. `solution.values`).
      policy: optional `[S]` actions `UP, DOWN, LEFT, RIGHT` (arrows on non-terminal cells).
      layout: the grid, as for `jaxmdp.models.gridworld` (default: the 4x3 world).
      title: figure title.
      path: save the figure there.
      cmap: matplotlib colormap name.
    """
    grid = _layout(layout)
    h, w = grid.shape
    fig = _figure(figsize=(1.3 * w + 1.2, 1.3 * h + 0.4))
    ax = fig.add_subplot()
    im = _draw_grid(ax, grid, values, policy, title, cmap)
    fig.colorbar(im, ax=ax, label="value")
    return _save(fig, path)


def policies(
    result: SweepResult,
    layout=None,
    *,
    max_policies: int = 12,
    path: str | os.PathLike | None = None,
):
    """The distinct optimal policies of a grid-world sweep, one small panel each.

    Each panel shows the values of the first member (row-major) with that policy, and how
    many members share it.
    """
    grid = _layout(layout)
    labels, pols = result.distinct_policies()
    k = min(len(pols), max_policies)
    if k == 0:
        raise ValueError("no member of this sweep succeeded: there is no policy to draw.")
    cols = min(k, 4)
    rows = -(-k // cols)
    h, w = grid.shape
    fig = _figure(figsize=(cols * (1.0 * w + 0.3), rows * (1.0 * h + 0.7)))
    flat_labels = labels.reshape(-1)
    flat_values = np.asarray(result.values).reshape(result.size, -1)
    for p in range(k):
        ax = fig.add_subplot(rows, cols, p + 1)
        first = int(np.flatnonzero(flat_labels == p)[0])
        at = np.unravel_index(first, result.shape)
        where = ", ".join(
            f"{n}={float(result.axes[n][i]):.3g}" for n, i in zip(result.names, at, strict=True)
        )
        count = int((flat_labels == p).sum())
        _draw_grid(
            ax, grid, flat_values[first], pols[p], f"policy {p}: {count} pts\n{where}", "viridis"
        )
    if len(pols) > k:
        fig.suptitle(f"first {k} of {len(pols)} distinct policies", fontsize=10)
    return _save(fig, path)


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
      title: figure title.
      path: save the figure there.
    """
    names = list(result.names)
    x = x or names[0]
    y = y or next((n for n in names if n != x), None)
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
    fig = _figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
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
    counts = np.bincount(lab[lab >= 0].reshape(-1), minlength=n)
    handles = [
        Patch(color=colors[i], label=f"policy {i} ({counts[i]} pts)") for i in range(min(n, 20))
    ]
    if (lab < 0).any():
        handles.append(Patch(facecolor="0.8", label="did not succeed"))
    ax.legend(
        handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False
    )
    fixed = ", ".join(f"{k}={result.axes[k][int(v)]:.3g}" for k, v in at.items() if k in rest)
    ax.set_title(
        title or f"{len(pols)} distinct optimal policies" + (f" ({fixed})" if fixed else "")
    )
    return _save(fig, path)


def convergence(
    histories: History | Sequence[History] | Mapping[str, History],
    labels: Sequence[str] | None = None,
    *,
    title: str | None = None,
    path: str | os.PathLike | None = None,
):
    """Residual (the solver's stopping statistic) against iteration, log scale.

    Args:
      histories: one `History` (from `jaxmdp.convergence_history`), a list of them, or a
        `{label: History}` mapping.
      labels: legend labels for a list.
      title: figure title.
      path: save the figure there.

    A dot marks where `solve` would have stopped (`History.stopped_at`).
    """
    if isinstance(histories, History):
        histories = [histories]
    if isinstance(histories, Mapping):
        labels, histories = list(histories), list(histories.values())
    labels = list(labels) if labels is not None else [None] * len(histories)
    fig = _figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
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
    return _save(fig, path)
