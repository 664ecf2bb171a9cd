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
        ragged = [i for i, r in enumerate(rows) if len(r) != len(rows[0])]
        if ragged:
            i = ragged[0]
            shown = f"; got rows {rows}" if len(rows) <= 20 else ""
            raise ValueError(
                "all rows of a grid layout need the same width: row 0 has "
                f"{len(rows[0])} cells, row {i} has {len(rows[i])}{shown}."
            )
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
        # Everything below is vectorised over cells (NumPy), so a 1000x1000 layout parses in
        # well under a second; per-cell Python objects (`cells`) are only built on request.
        codes = _codes(rows)  # [H, W] code points
        free = codes != ord(_WALL)
        if not free.any():
            raise ValueError("the grid layout has no free cells (only walls).")
        index = np.full(self.shape, -1, np.int32)
        index[free] = np.arange(int(free.sum()), dtype=np.int32)
        self._state_index = index  # [H, W]: the state of each cell, -1 on walls
        self._state_rows, self._state_cols = (x.astype(np.int32) for x in np.nonzero(free))
        symbols = codes[free]  # [S]
        if int(symbols.max()) < 256:  # one byte a state, not four (kept in `mdp.info`)
            symbols = symbols.astype(np.uint8)
        self._symbols = symbols  # [S] code point of each state's cell
        starts = np.flatnonzero(symbols == ord(_START))
        if len(starts) > 1:
            raise ValueError(f"a grid layout has at most one 'S' cell; got {len(starts)}.")
        self.start_state = int(starts[0]) if len(starts) else None
        if terminal is None:
            is_terminal = (symbols != ord(_EMPTY)) & (symbols != ord(_START))
        else:
            is_terminal = np.isin(symbols, [ord(ch) for ch in terminal])
        self._is_terminal = is_terminal  # [S] bool
        self.terminal_states = tuple(int(s) for s in np.flatnonzero(is_terminal))

    @property
    def num_states(self) -> int:
        return int(self._state_rows.shape[0])

    @functools.cached_property
    def cells(self) -> tuple[tuple[int, int], ...]:
        """`(row, col)` of each state, in state order (row-major)."""
        return tuple(zip(self._state_rows.tolist(), self._state_cols.tolist(), strict=True))

    def symbol(self, state: int) -> str:
        """The layout character of a state's cell."""
        self.cell_of(state)  # range check
        return chr(int(self._symbols[int(state)]))

    def state_of(self, row: int, col: int) -> int:
        """The state of cell `(row, col)` (0-based from the top-left corner)."""
        i, j = int(row), int(col)
        height, width = self.shape
        s = int(self._state_index[i, j]) if 0 <= i < height and 0 <= j < width else -1
        if s < 0:
            raise ValueError(
                f"cell ({row}, {col}) is a wall or outside the {height}x{width} grid; it has "
                "no state."
            )
        return s

    def cell_of(self, state: int) -> tuple[int, int]:
        """The `(row, col)` of a state."""
        if not 0 <= int(state) < self.num_states:
            raise ValueError(f"state {state} is outside [0, {self.num_states}).")
        return int(self._state_rows[int(state)]), int(self._state_cols[int(state)])

    def is_terminal(self, state: int) -> bool:
        return 0 <= int(state) < self.num_states and bool(self._is_terminal[int(state)])

    def to_grid(self, values, fill=jnp.nan) -> jax.Array:
        """Scatters per-state numbers onto the grid (walls get `fill`).

        Args:
          values: `[..., S]` one number per state (any leading batch axes).
          fill: value for wall cells.

        Returns:
          `[..., H, W]` array, handy for `matplotlib.pyplot.imshow`.
        """
        values = jnp.asarray(values)
        grid = jnp.full((*values.shape[:-1], *self.shape), fill, dtype=values.dtype)
        return grid.at[..., self._state_rows, self._state_cols].set(values)

    @property
    def next_states(self) -> np.ndarray:
        """`[S, 4]` int32: the state each move leads to (walls, edges, terminals: stay).

        Computed on each access, not cached: the layout lives on in `mdp.info`, and a cached
        table would keep 16 bytes per state (160 MB at 10^7 states) that only the builder
        reads."""
        height, width = self.shape
        i, j = self._state_rows, self._state_cols
        own = np.arange(self.num_states, dtype=np.int32)
        table = np.empty((self.num_states, 4), dtype=np.int32)
        for a, (di, dj) in enumerate(OFFSETS):
            ti, tj = i + di, j + dj
            inside = (ti >= 0) & (ti < height) & (tj >= 0) & (tj < width)
            target = np.full(self.num_states, -1, np.int32)
            target[inside] = self._state_index[ti[inside], tj[inside]]
            stay = (target < 0) | self._is_terminal  # wall, edge or terminal: stay
            table[:, a] = np.where(stay, own, target)
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


def _codes(rows: tuple[str, ...]) -> np.ndarray:
    """`[H, W]` Unicode code points of equal-width rows (one buffer, no per-cell objects)."""
    text = "".join(rows).encode("utf-32-le")
    return np.frombuffer(text, dtype="<u4").reshape(len(rows), len(rows[0]))


_RUSSELL_NORVIG = GridLayout(RUSSELL_NORVIG_4X3)


def as_layout(layout: GridLayout | str | Sequence[str] | None) -> GridLayout:
    """A `GridLayout` from a layout object, string or row list (`None`: the 4x3 world)."""
    if layout is None:
        return _RUSSELL_NORVIG
    if isinstance(layout, GridLayout):
        return layout
    return GridLayout(layout)
