"""Convergence of a solve: the stopping statistic against iteration."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from jaxmdp._history import History
from jaxmdp.plot._common import _axes, _save


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
    labels = list(labels) if labels is not None else [None] * len(histories)  # type: ignore[list-item]
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
