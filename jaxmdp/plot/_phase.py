"""A sweep's phase diagram: which policy is optimal where."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from jaxmdp._sweep_result import SweepResult
from jaxmdp.plot._common import _axes, _cmap, _save


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
    y = y or next((name for name in names if name != x), None)
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

    num = max(len(pols), 1)
    base = _cmap("tab20" if num > 10 else "tab10")
    colors = [base(i % base.N) for i in range(num)]
    ax = _axes(ax, (7.5, 4.8))
    shown = np.ma.masked_less(lab, 0).T  # [y, x]
    cmap = ListedColormap(colors).with_extremes(bad="0.8")
    ax.pcolormesh(
        ex, ey, shown, cmap=cmap, norm=BoundaryNorm(np.arange(num + 1) - 0.5, num), shading="flat"
    )
    # boundaries: between horizontal neighbours (vertical segments) and vertical ones
    segs = []
    for i in range(lab.shape[0] - 1):
        for jj in np.flatnonzero((lab[i] != lab[i + 1]) & (lab[i] >= 0) & (lab[i + 1] >= 0)):
            segs.append([(ex[i + 1], ey[jj]), (ex[i + 1], ey[jj + 1])])
    for j in range(lab.shape[1] - 1):
        col = lab[:, j], lab[:, j + 1]
        for ii in np.flatnonzero((col[0] != col[1]) & (col[0] >= 0) & (col[1] >= 0)):
            segs.append([(ex[ii], ey[j + 1]), (ex[ii + 1], ey[j + 1])])
    if segs:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segs, colors="black", linewidths=1.2))
    ax.set_xlabel(x if xreal else f"{x} (index)")
    if y is not None:
        ax.set_ylabel(y if yreal else f"{y} (index)")
    else:
        ax.set_yticks([])
    if legend:
        counts = np.bincount(lab[lab >= 0].reshape(-1), minlength=num)
        handles = [
            Patch(color=colors[i], label=f"policy {i} ({counts[i]} pts)")
            for i in range(min(num, 20))
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
