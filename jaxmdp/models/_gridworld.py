"""Grid worlds from ASCII layouts, including Russell & Norvig's 4x3 world.

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

States are the non-wall cells in row-major order (row 0 is the top row). Actions are
`UP`, `DOWN`, `LEFT`, `RIGHT` = 0, 1, 2, 3.

Dynamics: an action moves in its intended direction with probability ``1 - slip`` and in
each of the two perpendicular directions with probability ``slip / 2`` (``slip=0.2`` is
Russell & Norvig's 0.8 / 0.1 / 0.1 model). Entering a terminal cell pays its terminal
reward; every other move (bumping into a wall included) pays ``step_reward`` plus the
optional ``cell_rewards`` entry of the cell entered. Terminal cells are absorbing and pay
nothing after entry, so with ``discount=1`` a value is the expected total reward to the end
of the episode. (Russell & Norvig's utility U(s) counts the reward R(s) of being in s; on
non-terminal cells U(s) = V(s) + step_reward, on terminal cells U = the terminal reward.)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp._mdp import MDP

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
ACTION_NAMES = ("up", "down", "left", "right")
ARROWS = "^v<>"

# (row, col) offsets of the four moves, indexed by action.
_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))
# _SLIPS[a, d] = 1 where d is perpendicular to a: where a slip may take action a.
_SLIPS = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=np.float64)
_INTENDED = np.eye(4)

_EMPTY, _START, _WALL = ".", "S", "#"
_DEFAULT_TERMINAL_REWARDS = {"+": 1.0, "-": -1.0}

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
      terminal_states: the terminal states, in state order.
    """

    def __init__(self, layout: str | Sequence[str]):
        """Parses a layout.

        Args:
          layout: the layout as one string (rows separated by newlines) or a sequence of
            row strings. See the module docstring for the format.

        Raises:
          ValueError: ragged rows, an empty grid, no states, or more than one ``S``.
        """
        lines = layout.splitlines() if isinstance(layout, str) else list(layout)
        rows = tuple("".join(line.split()) for line in lines)
        rows = tuple(r for r in rows if r)  # blank lines only frame the layout
        if not rows:
            raise ValueError("the grid layout is empty.")
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise ValueError(f"all rows of a grid layout need the same width; got rows {rows}.")
        self.rows = rows
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
        self.terminal_states = tuple(
            s for s, ch in enumerate(symbols) if ch not in (_EMPTY, _START)
        )

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
            for a, (di, dj) in enumerate(_OFFSETS):
                target = (i + di, j + dj)
                inside = 0 <= target[0] < height and 0 <= target[1] < width
                if s in terminal or not inside or target not in self._index:
                    table[s, a] = s
                else:
                    table[s, a] = self._index[target]
        return table

    def __eq__(self, other) -> bool:
        return isinstance(other, GridLayout) and self.rows == other.rows

    def __hash__(self) -> int:
        return hash(self.rows)

    def __repr__(self) -> str:
        return "GridLayout(" + repr("\n".join(self.rows)) + ")"


def as_layout(layout: GridLayout | str | Sequence[str] | None) -> GridLayout:
    """A `GridLayout` from a layout object, string or row list (`None`: the 4x3 world)."""
    if layout is None:
        return _RUSSELL_NORVIG
    if isinstance(layout, GridLayout):
        return layout
    return GridLayout(layout)


_RUSSELL_NORVIG = GridLayout(RUSSELL_NORVIG_4X3)


def _float_dtype():
    return jnp.result_type(float)  # float32, or float64 under jax_enable_x64


def _entry_rewards(grid: GridLayout, step_reward, terminal_rewards, cell_rewards, dtype):
    """`[..., S]`: the reward for entering each state.

    Batch axes are broadcast explicitly (`broadcast_to`), so the builder also runs under
    `jax_numpy_rank_promotion="raise"`.
    """
    num_states = grid.num_states
    step = jnp.asarray(step_reward, dtype)
    batches = [step.shape]
    picked = None
    if cell_rewards is not None:
        cell_rewards = jnp.asarray(cell_rewards, dtype)
        if cell_rewards.shape[-2:] != grid.shape:
            raise ValueError(
                f"cell_rewards must have shape [..., H, W] = [..., {grid.shape[0]}, "
                f"{grid.shape[1]}] to match the layout; got {cell_rewards.shape}."
            )
        rows, cols = np.array(grid.cells).T
        picked = cell_rewards[..., rows, cols]  # [..., S]
        batches.append(picked.shape[:-1])
    symbols = [grid.symbol(s) for s in grid.terminal_states]
    rewards = dict(_DEFAULT_TERMINAL_REWARDS)
    rewards.update(terminal_rewards or {})
    missing = sorted({ch for ch in symbols if ch not in rewards})
    if missing:
        raise ValueError(
            f"terminal cells {missing} need a reward: pass terminal_rewards={{symbol: reward}} "
            "(only '+' and '-' have defaults, +1 and -1)."
        )
    exits = [jnp.asarray(rewards[ch], dtype) for ch in symbols]
    batches.extend(x.shape for x in exits)
    batch = np.broadcast_shapes(*batches)
    shape = (*batch, num_states)
    entry = jnp.broadcast_to(step[..., None], shape)
    if picked is not None:
        entry = entry + jnp.broadcast_to(picked, shape)
    if not symbols:
        return entry
    values = jnp.stack([jnp.broadcast_to(x, batch) for x in exits], axis=-1)  # [..., T]
    is_terminal = np.zeros(num_states, dtype=bool)
    is_terminal[list(grid.terminal_states)] = True
    slot = np.zeros(num_states, dtype=np.int32)
    slot[list(grid.terminal_states)] = np.arange(len(symbols))
    return jnp.where(jnp.broadcast_to(is_terminal, shape), values[..., slot], entry)


def _lift(x: np.ndarray, ndim: int, dtype) -> jax.Array:
    """A constant with `ndim` leading unit axes, to broadcast against batched parameters."""
    return jnp.asarray(x, dtype).reshape((1,) * ndim + x.shape)


def gridworld(
    layout: GridLayout | str | Sequence[str] | None = None,
    *,
    step_reward=-0.04,
    slip=0.0,
    discount=1.0,
    terminal_rewards: Mapping[str, object] | None = None,
    cell_rewards=None,
) -> MDP:
    """Builds a grid-world MDP (see the module docstring for the layout and dynamics).

    The layout is static (Python); every number may be a traced JAX value with leading
    batch axes, so the builder works under `jit` and `vmap`, and a sweep can also be built
    directly: `gridworld(step_reward=jnp.linspace(-2, 0, 100))` gives `rewards [100, S, A]`
    and a single shared `transitions [S, A, S]` (transitions depend on `slip` only).

    Args:
      layout: a `GridLayout`, a layout string or list of rows; `None` gives Russell &
        Norvig's 4x3 world (`RUSSELL_NORVIG_4X3`: 11 states, start at the bottom left,
        +1 at the top right, -1 below it, a wall at row 1 col 1).
      step_reward: `[...]` reward of every move that does not enter a terminal cell.
      slip: `[...]` probability of moving perpendicular to the intended direction
        (`slip / 2` to each side), in [0, 1].
      discount: `[...]` gamma. The default 1 suits the episodic worlds with exits.
      terminal_rewards: `{symbol: reward}` for terminal cells; `'+'` and `'-'` default to
        +1 and -1. Values may be `[...]` arrays.
      cell_rewards: optional `[..., H, W]` extra reward for entering each non-terminal cell
        (entries on walls and terminal cells are ignored).

    Returns:
      `MDP` with `transitions [..., S, A, S]`, `rewards [..., S, A]` (A = 4: `UP`, `DOWN`,
      `LEFT`, `RIGHT`) and `discount [...]`, in JAX's default float dtype.
    """
    grid = as_layout(layout)
    dtype = _float_dtype()
    nxt = grid.next_states  # [S, 4]
    slip = jnp.asarray(slip, dtype)
    chance = slip[..., None, None]
    intended, slips = _lift(_INTENDED, slip.ndim, dtype), _lift(_SLIPS, slip.ndim, dtype)
    # weights[..., a, d]: probability that action a moves in direction d.
    weights = (1 - chance) * intended + (chance / 2) * slips
    onehot = np.eye(grid.num_states, dtype=dtype)[nxt]  # [S, 4, S]
    transitions = jnp.einsum("...ad,sdt->...sat", weights, onehot)
    entry = _entry_rewards(grid, step_reward, terminal_rewards, cell_rewards, dtype)
    batch = np.broadcast_shapes(slip.shape, entry.shape[:-1])
    # Expected reward over where the move lands; computed from the table rather than from
    # `transitions` so each landing cell's reward enters once per direction, exactly.
    rewards = jnp.einsum(
        "...ad,...sd->...sa",
        jnp.broadcast_to(weights, (*batch, 4, 4)),
        jnp.broadcast_to(entry[..., nxt], (*batch, grid.num_states, 4)),
    )
    is_terminal = np.zeros((grid.num_states, 1), dtype=bool)
    is_terminal[list(grid.terminal_states)] = True
    rewards = jnp.where(jnp.broadcast_to(is_terminal, rewards.shape), 0.0, rewards)
    return MDP(transitions, rewards, jnp.asarray(discount, dtype))


def render_policy(layout: GridLayout | str | Sequence[str] | None, policy) -> str:
    """Draws a policy as arrows on the grid.

    Args:
      layout: the grid (as accepted by `gridworld`).
      policy: `[S]` int actions (`UP`, `DOWN`, `LEFT`, `RIGHT`).

    Returns:
      One text line per grid row, cells separated by a space: an arrow (`^ v < >`) on
      non-terminal cells, the layout symbol on terminal cells and walls.
    """
    grid = as_layout(layout)
    policy = np.asarray(policy)
    if policy.shape != (grid.num_states,):
        raise ValueError(f"policy must have shape [S] = [{grid.num_states}]; got {policy.shape}.")
    chars = [list(row) for row in grid.rows]
    for s, (i, j) in enumerate(grid.cells):
        if not grid.is_terminal(s):
            chars[i][j] = ARROWS[int(policy[s])]
    return "\n".join(" ".join(row) for row in chars)


def render_values(
    layout: GridLayout | str | Sequence[str] | None, values, *, precision: int = 3
) -> str:
    """Draws per-state values on the grid as a right-aligned text table.

    Args:
      layout: the grid (as accepted by `gridworld`).
      values: `[S]` one number per state.
      precision: digits after the decimal point.

    Returns:
      One text line per grid row; wall cells show `#`.
    """
    grid = as_layout(layout)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (grid.num_states,):
        raise ValueError(f"values must have shape [S] = [{grid.num_states}]; got {values.shape}.")
    text = {cell: f"{values[s]:.{precision}f}" for s, cell in enumerate(grid.cells)}
    width = max(len(t) for t in text.values())
    height, cols = grid.shape
    return "\n".join(
        " ".join(text.get((i, j), "#").rjust(width) for j in range(cols)) for i in range(height)
    )
