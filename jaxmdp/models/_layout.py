"""Grid layouts: the static structure of a grid world, parsed from ASCII.

Layout format: one text row per grid row, one character per cell (whitespace inside a row
and blank lines around the layout are ignored, so ``"S . . +"`` and ``"S..+"`` are the same
row; all rows must have the same number of cells).

| char       | cell                                                                  |
|------------|-----------------------------------------------------------------------|
| ``.``      | empty cell                                                            |
| ``S``      | empty cell where episodes start (at most one)                         |
| ``#``      | wall: not a state; moving into it (or off the grid) keeps you in place |
| ``+``/``-``| terminal cell paying +1 / -1 on entry (overridable)                    |
| other      | terminal cell whose entry reward comes from ``terminal_rewards[char]`` |

`GridLayout(..., terminal="HG")` says which symbols are terminal instead: every other
symbol is then an ordinary cell (FrozenLake's ``F``, CliffWalking's ``C``).

States are the non-wall cells in row-major order (row 0 is the top row).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

_EMPTY, _START, _WALL = ".", "S", "#"

# (row, col) offsets of the four moves UP, DOWN, LEFT, RIGHT, indexed by action.
OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))

RUSSELL_NORVIG_4X3 = """
...+
.#.-
S...
"""


class GridLayout:
    """A parsed grid layout: the static structure of a grid world (no numbers).

    Hashable and immutable, so it can be a static argument of `jax.jit`.

    Attributes:
      rows: the layout's rows, one string per grid row, whitespace removed.
      shape: `(height, width)` of the grid.
      num_states: number of non-wall cells (= states of the MDP).
      cells: `(row, col)` of each state, in state order (row-major).
      start_state: state of the ``S`` cell, or `None` if the layout has none.
      terminal: the symbols of terminal cells, or `None` for the default rule (every
        symbol except ``.``, ``S`` and ``#``).
      terminal_states: the terminal states, in state order.
    """

    def __init__(
        self, layout: str | Sequence[str] | None = None, *, terminal: Iterable[str] | None = None
    ):
        """Parses a layout.

        Args:
          layout: the layout as one string (rows separated by newlines) or a sequence of
            row strings (see the module docstring for the format); `None` gives Russell &
            Norvig's 4x3 world (`RUSSELL_NORVIG_4X3`).
          terminal: the symbols of terminal cells (e.g. ``"HG"`` for FrozenLake); default:
            every symbol other than ``.``, ``S`` and ``#``.

        Raises:
          ValueError: ragged rows, an empty grid, no states, more than one ``S``, or a wall
            symbol among `terminal`.
        """
        if layout is None:
            layout = RUSSELL_NORVIG_4X3
        if isinstance(layout, str):
            lines = layout.splitlines()
        elif isinstance(layout, Sequence) and all(isinstance(r, str) for r in layout):
            lines = list(layout)
        else:
            raise TypeError(
                "layout must be a string or a sequence of row strings; got "
                f"{type(layout).__name__}."
            )
        rows = tuple("".join(line.split()) for line in lines)
        rows = tuple(r for r in rows if r)  # blank lines only frame the layout
        if not rows:
            raise ValueError("the grid layout is empty.")
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise ValueError(f"all rows of a grid layout need the same width; got rows {rows}.")
        if terminal is not None:
            terminal = frozenset(terminal)
            if not all(isinstance(ch, str) and len(ch) == 1 for ch in terminal):
                raise ValueError(f"terminal must be single characters; got {sorted(terminal)}.")
            if _WALL in terminal:
                raise ValueError(
                    "terminal may not contain the wall symbol '#' (a wall is no state)."
                )
        self.rows = rows
        self.terminal = terminal
        self.shape = (len(rows), len(rows[0]))
        self.cells = tuple(
            (i, j) for i, row in enumerate(rows) for j, ch in enumerate(row) if ch != _WALL
        )
        if not self.cells:
            raise ValueError("the grid layout has no free cells (only walls).")
        self._index = {cell: s for s, cell in enumerate(self.cells)}
        symbols = [rows[i][j] for i, j in self.cells]
        starts = [s for s, ch in enumerate(symbols) if ch == _START]
        if len(starts) > 1:
            raise ValueError(f"a grid layout has at most one 'S' cell; got {len(starts)}.")
        self.start_state = starts[0] if starts else None
        if terminal is None:
            self.terminal_states = tuple(
                s for s, ch in enumerate(symbols) if ch not in (_EMPTY, _START)
            )
        else:
            self.terminal_states = tuple(s for s, ch in enumerate(symbols) if ch in terminal)

    @property
    def num_states(self) -> int:
        return len(self.cells)

    def symbol(self, state: int) -> str:
        """The layout character of a state's cell."""
        i, j = self.cell_of(state)
        return self.rows[i][j]

    def state_of(self, row: int, col: int) -> int:
        """The state of cell `(row, col)` (0-based from the top-left corner)."""
        try:
            return self._index[(int(row), int(col))]
        except KeyError:
            raise ValueError(
                f"cell ({row}, {col}) is a wall or outside the {self.shape[0]}x{self.shape[1]} "
                "grid; it has no state."
            ) from None

    def cell_of(self, state: int) -> tuple[int, int]:
        """The `(row, col)` of a state."""
        if not 0 <= int(state) < self.num_states:
            raise ValueError(f"state {state} is outside [0, {self.num_states}).")
        return self.cells[int(state)]

    def is_terminal(self, state: int) -> bool:
        return int(state) in self.terminal_states

    def to_grid(self, values, fill=jnp.nan) -> jax.Array:
        """Scatters per-state numbers onto the grid (walls get `fill`).

        Args:
          values: `[..., S]` one number per state (any leading batch axes).
          fill: value for wall cells.

        Returns:
          `[..., H, W]` array, handy for `matplotlib.pyplot.imshow`.
        """
        values = jnp.asarray(values)
        rows, cols = np.array(self.cells).T
        grid = jnp.full((*values.shape[:-1], *self.shape), fill, dtype=values.dtype)
        return grid.at[..., rows, cols].set(values)

    @functools.cached_property
    def next_states(self) -> np.ndarray:
        """`[S, 4]` int: the state each move leads to (walls, edges, terminals: stay)."""
        height, width = self.shape
        table = np.empty((self.num_states, 4), dtype=np.int32)
        terminal = set(self.terminal_states)
        for s, (i, j) in enumerate(self.cells):
            for a, (di, dj) in enumerate(OFFSETS):
                target = (i + di, j + dj)
                inside = 0 <= target[0] < height and 0 <= target[1] < width
                if s in terminal or not inside or target not in self._index:
                    table[s, a] = s
                else:
                    table[s, a] = self._index[target]
        return table

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, GridLayout)
            and self.rows == other.rows
            and self.terminal_states == other.terminal_states
        )

    def __hash__(self) -> int:
        return hash((self.rows, self.terminal_states))

    def __repr__(self) -> str:
        text = repr("\n".join(self.rows))
        if self.terminal is None:
            return f"GridLayout({text})"
        return f"GridLayout({text}, terminal={''.join(sorted(self.terminal))!r})"


_RUSSELL_NORVIG = GridLayout(RUSSELL_NORVIG_4X3)


def as_layout(layout: GridLayout | str | Sequence[str] | None) -> GridLayout:
    """A `GridLayout` from a layout object, string or row list (`None`: the 4x3 world)."""
    if layout is None:
        return _RUSSELL_NORVIG
    if isinstance(layout, GridLayout):
        return layout
    return GridLayout(layout)
