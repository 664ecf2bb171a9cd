"""Text and JSON output: policies in the model's own action symbols, values at the certified
precision, JSON that strict parsers accept."""

from __future__ import annotations

import math

import numpy as np

# LEAD: the value formatter; switch to the `files` branch's jaxmdp._format helper together
# with the one in jaxmdp.plot._common (same contract: within error_bound of 0 shows 0, no digit
# finer than the bound).
from jaxmdp.plot import _certified_text as certified_text


def grid_of(info):
    """The model's `GridLayout`, if it has one."""
    from jaxmdp.models import GridLayout

    layout = getattr(info, "layout", None)
    return layout if isinstance(layout, GridLayout) else None


def action_symbol(info, action: int) -> str:
    symbols = getattr(info, "action_symbols", None)
    if symbols is not None and 0 <= action < len(symbols):
        return symbols[action]
    return str(action)


def action_name(info, action: int) -> str:
    names = getattr(info, "action_names", None)
    if names is not None and 0 <= action < len(names):
        return str(names[action])
    return action_symbol(info, action)


def _terminal(info, grid) -> set[int]:
    terminal = getattr(info, "terminal_states", None)
    return set(grid.terminal_states if terminal is None else terminal)


def policy_text(info, policy) -> str:
    """A policy drawn on the model's grid (symbols per action; absorbing cells keep their
    layout character), or one line of action symbols for a model without a grid."""
    policy = np.asarray(policy)
    grid = grid_of(info)
    if grid is None:
        symbols = "".join(action_symbol(info, int(a)) for a in policy)
        return "\n".join(symbols[i : i + 60] for i in range(0, len(symbols), 60))
    chars = [list(row) for row in grid.rows]
    terminal = _terminal(info, grid)
    for s, (i, j) in enumerate(grid.cells):
        if s not in terminal:
            chars[i][j] = action_symbol(info, int(policy[s]))
    lines = [" ".join(row) for row in chars]
    for s in range(grid.num_states, len(policy)):  # states beyond the grid (absorbing)
        lines.append(f"state {s} (not on the grid): {action_symbol(info, int(policy[s]))}")
    return "\n".join(lines)


def values_text(info, values, error_bound) -> str:
    """Values on the grid (walls `#`) at the certified precision, or a state table."""
    values = np.asarray(values, dtype=np.float64)
    texts = [certified_text(v, error_bound, digits=3, fixed=True) for v in values]
    grid = grid_of(info)
    if grid is None:
        return "\n".join(f"{s:>5}  {t}" for s, t in enumerate(texts))
    cells = dict(zip(grid.cells, texts[: grid.num_states], strict=True))
    width = max(len(t) for t in cells.values())
    height, cols = grid.shape
    lines = [
        " ".join(cells.get((i, j), "#").rjust(width) for j in range(cols)) for i in range(height)
    ]
    for s in range(grid.num_states, len(values)):
        lines.append(f"state {s} (not on the grid): {texts[s]}")
    return "\n".join(lines)


def solution_table(info, values, policy, error_bound) -> str:
    """`state  action  value` rows, for models without a grid."""
    values = np.asarray(values, dtype=np.float64)
    rows = [
        f"{s:>5}  {action_name(info, int(a)):<10} {certified_text(v, error_bound, fixed=True)}"
        for s, (a, v) in enumerate(zip(np.asarray(policy).tolist(), values, strict=True))
    ]
    return "state  action     value\n" + "\n".join(rows)


def policies_text(result, info) -> str:
    """The distinct policies of a sweep side by side (grid models) or one line each."""
    labels, pols = result.distinct_policies()
    flat = labels.reshape(-1)
    blocks = []
    for k, pol in enumerate(pols):
        first = np.unravel_index(int(np.flatnonzero(flat == k)[0]), result.shape)
        at = ", ".join(
            f"{n}={result.axes[n][i]:.4g}" for n, i in zip(result.names, first, strict=True)
        )
        rows = policy_text(info, pol).splitlines()
        blocks.append([f"policy {k}: {int((flat == k).sum())} pts", f"e.g. {at}", *rows])
    if grid_of(info) is None:
        return "\n".join("\n".join(b) + "\n" for b in blocks)
    out = []
    for start in range(0, len(blocks), 4):
        group = blocks[start : start + 4]
        width = [max(len(line) for line in b) + 3 for b in group]
        for r in range(max(len(b) for b in group)):
            out.append(
                "".join(
                    (b[r] if r < len(b) else "").ljust(w) for b, w in zip(group, width, strict=True)
                ).rstrip()
            )
        out.append("")
    return "\n".join(out)


def jsonable(x):
    """NumPy / JAX values -> JSON types; non-finite floats -> "inf", "-inf", "nan" (strict
    JSON has no such numbers)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        return jsonable(np.asarray(x).tolist())
    if isinstance(x, float):
        if math.isfinite(x):
            return x
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x
