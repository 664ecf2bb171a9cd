"""Shared pieces of the plots: figures and axes, atomic saving, value labels."""

from __future__ import annotations

import math
import os


# LEAD: stand-in for the `files` branch's value formatter (jaxmdp._format); switch this one
# function (used by jaxmdp.plot and jaxmdp.cli) to it once that branch lands. Contract: a value
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


def _outline():
    from matplotlib import patheffects

    return patheffects.withStroke(linewidth=2, foreground="black")


def _cmap(name):
    import matplotlib

    return matplotlib.colormaps[name]
