"""Text rendering of policies and values on a grid, for any model that knows its layout.

A model built by `gridworld` or `from_gymnasium` (FrozenLake, CliffWalking) carries a
`jaxmdp.ModelInfo` with its `GridLayout`, action symbols and terminal states, so
`render_policy(mdp, policy)` draws it with the right arrows. A bare layout works too, with
the gridworld's arrows (`^v<>`) unless `actions=` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxmdp._mdp import MDP
from jaxmdp.models._layout import GridLayout, as_layout

_GRIDWORLD_ARROWS = "^v<>"  # UP, DOWN, LEFT, RIGHT, as in models.gridworld

Model = MDP | GridLayout | str | Sequence[str] | None


def _resolve(model: Model, actions: str | None, need_symbols: bool):
    """`(layout, symbols, terminal_states, num_states)` for an MDP or a layout."""
    if actions is not None and not isinstance(actions, str):
        raise TypeError(
            f"actions must be a string of one symbol per action; got {type(actions).__name__}."
        )
    if isinstance(model, MDP):
        info = model.info
        layout = getattr(info, "layout", None)
        if layout is None:
            if info is None:
                why = (
                    "this MDP has no `info` (models.gridworld and models.from_gymnasium attach "
                    "one; JAX transformations such as jit, vmap and jax.tree.map drop it)"
                )
            else:
                why = f"this MDP ({info.name or 'unnamed'}) has no grid layout in its info"
            raise ValueError(
                f"{why}. Pass the layout instead, e.g. "
                "render_policy(models.GridLayout(...), policy, actions=...)."
            )
        assert info is not None  # checked above
        symbols = actions if actions is not None else info.action_symbols
        if need_symbols:
            if symbols is None:
                raise ValueError("this MDP's info has no action_symbols; pass actions='...'.")
            if len(symbols) != model.num_actions:
                raise ValueError(
                    f"actions must give one symbol per action: the MDP has {model.num_actions} "
                    f"actions, got {len(symbols)} symbols {symbols!r}."
                )
        terminal = info.terminal_states
        if terminal is None:
            terminal = layout.terminal_states
        return layout, symbols, frozenset(terminal), model.num_states
    layout = as_layout(model)
    symbols = _GRIDWORLD_ARROWS if actions is None else actions
    return layout, symbols, frozenset(layout.terminal_states), layout.num_states


def _per_state(name: str, x, layout: GridLayout, num_states: int) -> np.ndarray:
    """`x` as a host array of shape `[S]` (the model's S or the layout's)."""
    x = np.asarray(x)
    allowed = sorted({num_states, layout.num_states})
    if x.shape not in [(n,) for n in allowed]:
        want = " or ".join(f"[{n}]" for n in allowed)
        raise ValueError(f"{name} must have shape [S] = {want}; got {x.shape}.")
    return x


def _check_actions(policy: np.ndarray, symbols: str) -> np.ndarray:
    """The policy as int64 after checking every entry is an action index in [0, A)."""
    if policy.dtype == bool or policy.dtype.kind not in "iuf":
        raise ValueError(f"policy must hold integer actions; got dtype {policy.dtype}.")
    num_actions = len(symbols)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(policy) | (policy != np.floor(policy))
        bad |= (policy < 0) | (policy >= num_actions)
    if bad.any():
        where = np.flatnonzero(bad)
        s = int(where[0])
        more = f"; {len(where)} states in all" if len(where) > 1 else ""
        raise ValueError(
            f"policy has action {policy[s].item()!r} at state {s}, outside the valid range "
            f"0..{num_actions - 1} (symbols {symbols!r}){more}."
        )
    return policy.astype(np.int64)


def render_policy(model: Model, policy, *, actions: str | None = None) -> str:
    """Draws a policy on the grid, one symbol per state.

    Args:
      model: an `MDP` whose `info` has a layout (from `models.gridworld` or
        `models.from_gymnasium` for FrozenLake / CliffWalking), or a `GridLayout`, layout
        string or list of rows (`None`: the 4x3 world).
      policy: `[S]` int actions, S the MDP's (or the layout's) number of states; states
        beyond the layout (e.g. an appended absorbing state) are not drawn.
      actions: one symbol per action; default: the MDP's `info.action_symbols`, or the
        gridworld arrows `"^v<>"` (`UP`, `DOWN`, `LEFT`, `RIGHT`) for a layout.

    Returns:
      One text line per grid row, cells separated by a space: the action's symbol on
      ordinary cells, the layout symbol on terminal cells (the MDP's absorbing states, or
      the layout's terminal cells for a bare layout) and walls.

    Raises:
      ValueError: a layout-less MDP, a wrong shape, or an action outside `0..A-1`
        (naming the state and the valid range).
    """
    layout, symbols, terminal, num_states = _resolve(model, actions, need_symbols=True)
    policy = _check_actions(_per_state("policy", policy, layout, num_states), symbols)
    chars = [list(row) for row in layout.rows]
    for s, (i, j) in enumerate(layout.cells):
        if s not in terminal:
            chars[i][j] = symbols[policy[s]]
    return "\n".join(" ".join(row) for row in chars)


def render_values(model: Model, values, *, precision: int = 3) -> str:
    """Draws per-state values on the grid as a right-aligned text table.

    Args:
      model: an `MDP` with a layout in its `info`, or a layout (as in `render_policy`).
      values: `[S]` one number per state (states beyond the layout are not drawn).
      precision: digits after the decimal point.

    Returns:
      One text line per grid row; wall cells show `#`.
    """
    layout, _, _, num_states = _resolve(model, None, need_symbols=False)
    values = _per_state("values", values, layout, num_states).astype(np.float64)
    text = {cell: f"{values[s]:.{precision}f}" for s, cell in enumerate(layout.cells)}
    width = max(len(t) for t in text.values())
    height, cols = layout.shape
    return "\n".join(
        " ".join(text.get((i, j), "#").rjust(width) for j in range(cols)) for i in range(height)
    )
