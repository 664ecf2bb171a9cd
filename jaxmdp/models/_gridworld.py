"""Grid worlds from ASCII layouts, including Russell & Norvig's 4x3 world.

The layout format is `GridLayout`'s (see `jaxmdp.models.GridLayout`): ``.`` empty, ``S``
start, ``#`` wall, ``+`` / ``-`` terminal cells paying +1 / -1 on entry, any other symbol a
terminal cell whose entry reward comes from ``terminal_rewards``. Actions are `UP`, `DOWN`,
`LEFT`, `RIGHT` = 0, 1, 2, 3 (`ACTION_NAMES`, drawn as `ARROWS` = ``"^v<>"``).

Dynamics: an action moves in its intended direction with probability ``1 - slip`` and in
each of the two perpendicular directions with probability ``slip / 2`` (``slip=0.2`` is
Russell & Norvig's 0.8 / 0.1 / 0.1 model). Entering a terminal cell pays its terminal
reward; every other move (bumping into a wall included) pays ``step_reward`` plus the
optional ``cell_rewards`` entry of the cell entered. Terminal cells are absorbing and pay
nothing after entry, so with ``discount=1`` a value is the expected total reward to the end
of the episode. (Russell & Norvig's utility U(s) counts the reward R(s) of being in s; on
non-terminal cells U(s) = V(s) + step_reward, on terminal cells U = the terminal reward.)

Transitions form: a move has at most 3 outcomes, so the world is built as successor lists
(`jaxmdp.SparseTransitions`, K = 3 slots: the intended direction, then the two
perpendicular ones; K = 1 when `slip` is a concrete 0) from NumPy tables of the layout,
with no `[S, A, S]` array anywhere (a 3163x3163 world, 10^7 states, built in 7-11 s with
a peak RSS of 1.94 GB, 1.67x its arrays, on a shared 2-core machine:
benchmarks/results/cpu-2core-sparse.md).
Worlds of at most 64 states (`_form.DENSE_MAX_STATES`) are returned dense (`[S, A, S]`,
the same numbers as `jaxmdp.to_dense` of the lists), where the dense kernels are as fast
or faster and every function that needs an explicit matrix (exact policy evaluation by LU,
discount-1 chain analysis) applies without materialising one; larger ones stay sparse (the
rule and its measurements: `jaxmdp.models._form`). `form=` overrides the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import _quick
from jaxmdp._mdp import MDP, ModelInfo
from jaxmdp._sparse import SparseTransitions, to_dense
from jaxmdp._validate import check_real, is_traced
from jaxmdp.models._form import check_form, wants_dense
from jaxmdp.models._layout import RUSSELL_NORVIG_4X3 as RUSSELL_NORVIG_4X3
from jaxmdp.models._layout import GridLayout, as_layout

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
ACTION_NAMES = ("up", "down", "left", "right")
ARROWS = "^v<>"

# _SLIPS[a, d] = 1 where d is perpendicular to a: where a slip may take action a.
_SLIPS = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=np.float64)
_INTENDED = np.eye(4)

# The sparse form's slots per action: the intended direction, then the perpendicular ones.
_SLOT_DIRECTIONS = np.array([[0, 2, 3], [1, 2, 3], [2, 0, 1], [3, 0, 1]])

_DEFAULT_TERMINAL_REWARDS = {"+": 1.0, "-": -1.0}


def _float_dtype():
    return jnp.result_type(float)  # float32, or float64 under jax_enable_x64


def _terminal_exits(grid: GridLayout, terminal_rewards) -> tuple[tuple, np.ndarray]:
    """`(exits, slot)`: the entry reward of each kind of terminal cell (one value or array
    per symbol, in code-point order) and `slot [S]`, each state's index into them (0 for
    non-terminal states)."""
    terminal = np.asarray(grid.terminal_states, np.int64)
    symbol_of = grid._symbols[terminal].astype(np.int64)  # code point of each terminal
    kinds = sorted(set(symbol_of.tolist()))
    symbols = [chr(c) for c in kinds]
    rewards = dict(_DEFAULT_TERMINAL_REWARDS)
    rewards.update(terminal_rewards or {})
    missing = sorted({ch for ch in symbols if ch not in rewards})
    if missing:
        raise ValueError(
            f"terminal cells {missing} need a reward: pass terminal_rewards={{symbol: reward}} "
            "(only '+' and '-' have defaults, +1 and -1)."
        )
    slot = np.zeros(grid.num_states, dtype=np.int32)
    slot[terminal] = np.searchsorted(np.asarray(kinds), symbol_of)
    return tuple(rewards[ch] for ch in symbols), slot


def _entry_rewards(tables: dict, step_reward, exits: tuple, cell_rewards, dtype) -> jax.Array:
    """`[..., S]`: the reward for entering each state (traced, inside `_numbers`).

    Batch axes are broadcast explicitly (`broadcast_to`), so the builder also runs under
    `jax_numpy_rank_promotion="raise"`.
    """
    num_states = tables["slot"].shape[0]
    step = jnp.asarray(step_reward, dtype)
    batches = [step.shape]
    picked = None
    if cell_rewards is not None:
        cell_rewards = jnp.asarray(cell_rewards, dtype)
        picked = cell_rewards[..., tables["rows"], tables["cols"]]  # [..., S]
        batches.append(picked.shape[:-1])
    values = [jnp.asarray(x, dtype) for x in exits]
    batches.extend(x.shape for x in values)
    batch = np.broadcast_shapes(*batches)
    shape = (*batch, num_states)
    entry = jnp.broadcast_to(step[..., None], shape)
    if picked is not None:
        entry = entry + jnp.broadcast_to(picked, shape)
    if not values:
        return entry
    stacked = jnp.stack([jnp.broadcast_to(x, batch) for x in values], axis=-1)  # [..., U]
    is_terminal = jnp.broadcast_to(tables["terminal"], shape)
    return jnp.where(is_terminal, stacked[..., tables["slot"]], entry)


def _successors(nxt: jax.Array, slip, deterministic: bool, dtype) -> SparseTransitions:
    """The moves as successor lists: `next_states [S, 4, K]` (NumPy tables, shared by any
    batch of `slip`) and `probs [..., S, 4, K]`.

    K = 1 for a concrete `slip` of 0. Otherwise K = 3 slots (intended, then the two
    perpendicular directions) with probabilities `1 - slip`, `slip / 2`, `slip / 2`; where
    two directions land in the same cell (a wall, an edge, a terminal cell), the later
    slot's probability is added to the first slot with that cell and the later one becomes
    padding (probability 0), so every successor appears once and `to_dense` reproduces the
    dense world entry by entry.
    """
    S = nxt.shape[0]
    if deterministic:
        probs = jnp.ones((*slip.shape, S, 4, 1), dtype)
        return SparseTransitions(nxt[:, :, None], probs)
    # Inside `_numbers`' one program: XLA fuses the slot masks, the three probability slabs
    # and their stack into the outputs, where eager ops materialised each ([S, 4, 3] index
    # and probability temporaries: most of a 10^7-state world's build).
    return _slots(nxt, slip)


def _slots(nxt: jax.Array, slip: jax.Array) -> SparseTransitions:
    """`_successors` for a random `slip` `[...]`: `next_states [S, 4, 3]`, `probs
    [..., S, 4, 3]` from the move table `nxt [S, 4]`.

    Written with static column picks of `nxt` and stacks only, so that each output is one
    fused loop over the table: `nxt[:, directions]` (a gather) was materialised as a
    `[12, S]` array, transposed and copied into the output (two `[S, 4, 3]` temporaries,
    480 MB at 10^7 states)."""
    dtype = slip.dtype
    cols = [nxt[:, d] for d in range(4)]  # [S] each
    w0 = (1 - slip)[..., None]  # [..., 1]
    w1 = (slip / 2)[..., None]
    zero = jnp.zeros((), dtype)
    batch, S = slip.shape, nxt.shape[0]
    targets, probs = [], []
    for a in range(4):
        t0, t1, t2 = (cols[int(d)] for d in _SLOT_DIRECTIONS[a])
        same10, same20, same21 = t1 == t0, t2 == t0, t2 == t1
        p0 = w0 + jnp.where(same10, w1, zero) + jnp.where(same20, w1, zero)
        p1 = jnp.where(same10, zero, w1) + jnp.where(same21 & ~same10 & ~same20, w1, zero)
        p2 = jnp.where(same20 | same21, zero, w1)
        targets.append(jnp.stack([t0, t1, t2], axis=-1))  # [S, 3]
        probs.append(jnp.stack([jnp.broadcast_to(p, (*batch, S)) for p in (p0, p1, p2)], -1))
    return SparseTransitions(jnp.stack(targets, axis=-2), jnp.stack(probs, axis=-2))


def _move_rewards(weights, entry, nxt, is_terminal) -> jax.Array:
    """`[..., S, 4]` expected reward of each move: `weights [..., 4, 4]` (action, direction),
    `entry [..., S]` rewards for entering each state, `nxt [S, 4]` moves, 0 from terminal
    states (`is_terminal [S]`). One program, the sum over directions written out term by
    term (d = 0..3, in order) so that the gathers, products and select fuse into the output
    (an einsum materialised the `[..., S, 4]` product before the select)."""
    batch = np.broadcast_shapes(weights.shape[:-2], entry.shape[:-1])
    S = nxt.shape[0]
    weights = jnp.broadcast_to(weights, (*batch, 4, 4))
    landed = [jnp.broadcast_to(entry[..., nxt[:, d]], (*batch, S)) for d in range(4)]
    out = []
    for a in range(4):
        total = weights[..., a, 0, None] * landed[0]
        for d in range(1, 4):
            total = total + weights[..., a, d, None] * landed[d]
        out.append(jnp.where(jnp.broadcast_to(is_terminal, total.shape), 0.0, total))
    return jnp.stack(out, axis=-1)


def _lift(x: np.ndarray, ndim: int, dtype) -> jax.Array:
    """A constant with `ndim` leading unit axes, to broadcast against batched parameters."""
    return jnp.asarray(x, dtype).reshape((1,) * ndim + x.shape)


def _numbers_fn(tables, step_reward, slip, discount, exits, cell_rewards, *, deterministic, dense):
    """`(transitions, rewards, discount)` of a layout's tables (`gridworld`), in JAX's default
    float dtype: one compiled program per layout size, batch shape and form. Built op by op,
    a first 4x3 world ran ~30 small programs (one per operation and shape): 0.8 CPU-seconds
    before anything was solved, more than the solve (DECISIONS 23)."""
    dtype = _float_dtype()
    nxt = tables["nxt"]
    slip = jnp.asarray(slip, dtype)
    chance = slip[..., None, None]
    intended, slips = _lift(_INTENDED, slip.ndim, dtype), _lift(_SLIPS, slip.ndim, dtype)
    # weights[..., a, d]: probability that action a moves in direction d.
    weights = (1 - chance) * intended + (chance / 2) * slips
    transitions: jax.Array | SparseTransitions = _successors(nxt, slip, deterministic, dtype)
    if dense:
        transitions = to_dense(transitions)
    entry = _entry_rewards(tables, step_reward, exits, cell_rewards, dtype)
    # Expected reward over where the move lands; computed from the table rather than from
    # `transitions` so each landing cell's reward enters once per direction, exactly.
    rewards = _move_rewards(weights, entry, nxt, tables["terminal"])
    return transitions, rewards, jnp.asarray(discount, dtype)


_numbers = _quick.jits(_numbers_fn, static_argnames=("deterministic", "dense"))


def gridworld(
    layout: GridLayout | str | Sequence[str] | None = None,
    *,
    step_reward=-0.04,
    slip=0.0,
    discount=1.0,
    terminal_rewards: Mapping[str, object] | None = None,
    cell_rewards=None,
    form: str = "auto",
) -> MDP:
    """Builds a grid-world MDP (see the module docstring for the layout and dynamics).

    The layout is static (Python); every number may be a traced JAX value with leading
    batch axes, so the builder works under `jit` and `vmap`, and a sweep can also be built
    directly: `gridworld(step_reward=jnp.linspace(-2, 0, 100))` gives `rewards [100, S, A]`
    and a single shared `transitions` (transitions depend on `slip` only).

    Args:
      layout: a `GridLayout`, a layout string or list of rows; `None` gives Russell &
        Norvig's 4x3 world (`RUSSELL_NORVIG_4X3`: 11 states, start at the bottom left,
        +1 at the top right, -1 below it, a wall at row 1 col 1).
      step_reward: `[...]` reward of every move that does not enter a terminal cell.
      slip: `[...]` probability of moving perpendicular to the intended direction
        (`slip / 2` to each side), in [0, 1].
      discount: `[...]` gamma in [0, 1]. The default 1 suits the episodic worlds with exits.
      terminal_rewards: `{symbol: reward}` for terminal cells; `'+'` and `'-'` default to
        +1 and -1. Values may be `[...]` arrays.
      cell_rewards: optional `[..., H, W]` extra reward for entering each non-terminal cell
        (entries on walls and terminal cells are ignored).
      form: `"auto"` (default): dense for at most 64 states, else sparse;
        `"dense"` or `"sparse"` to choose. Both forms hold the same numbers.

    Returns:
      `MDP` with `transitions` (dense `[..., S, A, S]`, or `SparseTransitions` with
      `next_states [S, A, K]` int32 shared by the batch and `probs [..., S, A, K]`, K = 3,
      or 1 for a concrete `slip` of 0), `rewards [..., S, A]` (A = 4: `UP`, `DOWN`,
      `LEFT`, `RIGHT`) and `discount [...]`, in JAX's default float dtype. Its `info`
      (`jaxmdp.ModelInfo`) carries the layout, `ACTION_NAMES`, `ARROWS` and the terminal
      (absorbing) states, so `render_policy(mdp, policy)` needs nothing else.

    Raises:
      ValueError: a concrete `slip` or `discount` outside [0, 1], or a non-finite concrete
        reward, naming the argument (and the index, for arrays). Traced values (inside
        `jit` / `vmap`) cannot be checked here; out-of-range ones make invalid rows that
        `jaxmdp.validate_mdp` or the solve's status codes report.
    """
    grid = as_layout(layout)
    check_real("slip", slip, low=0.0, high=1.0)
    check_real("discount", discount, low=0.0, high=1.0)
    check_real("step_reward", step_reward)
    for symbol, value in (terminal_rewards or {}).items():
        check_real(f"terminal_rewards[{symbol!r}]", value)
    if cell_rewards is not None:
        check_real("cell_rewards", cell_rewards)
    check_form(form)
    if cell_rewards is not None and tuple(np.shape(cell_rewards)[-2:]) != grid.shape:
        raise ValueError(
            f"cell_rewards must have shape [..., H, W] = [..., {grid.shape[0]}, "
            f"{grid.shape[1]}] to match the layout; got {tuple(np.shape(cell_rewards))}."
        )
    exits, slot = _terminal_exits(grid, terminal_rewards)
    # The layout's [S]-long tables are arguments, not constants of the program (a 10^7-state
    # world's would be hundreds of MB inside its HLO), put on the device one at a time so
    # that no NumPy copy outlives its transfer (the move table is 160 MB at 10^7 states).
    tables = dict(
        nxt=jnp.asarray(grid.next_states, jnp.int32),
        terminal=jnp.asarray(grid._is_terminal),
        slot=jnp.asarray(slot),
        rows=jnp.asarray(grid._state_rows),
        cols=jnp.asarray(grid._state_cols),
    )
    del slot
    deterministic = not is_traced(slip) and not np.any(np.asarray(slip))
    dense = wants_dense(form, grid.num_states)
    # One small world's program runs in microseconds: compiled quickly (`jaxmdp._quick`).
    # Batches keep one program kind whatever their size (a sweep's chunks of any size build
    # the same numbers as its whole grid, bit for bit where the programs are alike).
    one = not any(np.ndim(x) for x in (step_reward, slip, discount, *exits))
    one = one and (cell_rewards is None or np.ndim(cell_rewards) == 2)
    per = grid.num_states * len(ACTION_NAMES) * (grid.num_states if dense else 4) * 8  # P
    traced = _quick.traced((step_reward, slip, discount, cell_rewards, *exits))
    transitions, rewards, gamma = _numbers(one and _quick.wanted_build(per, traced))(
        tables, step_reward, slip, discount, exits, cell_rewards,
        deterministic=deterministic, dense=dense,
    )  # fmt: skip
    info = ModelInfo(
        name="gridworld",
        action_names=ACTION_NAMES,
        action_symbols=ARROWS,
        layout=grid,
        terminal_states=grid.terminal_states,
    )
    return MDP(transitions, rewards, gamma, info=info)
