"""Import Gymnasium's tabular (toy-text) environments through their transition tables.

Gymnasium's FrozenLake, CliffWalking and Taxi expose `env.unwrapped.P`, where
`P[s][a] = [(prob, next_state, reward, terminated), ...]`. Two things need care:

- The same next state may appear several times in one list (slippery moves that bump into
  an edge): probabilities add, and rewards combine into the expected reward
  r(s, a) = sum prob * reward.
- Termination lives in the `terminated` flag of the incoming transition, not in the
  dynamics: CliffWalking's and Taxi's goal states have ordinary moves in `P`, and an agent
  reaching them stops. Such transitions are routed to one extra absorbing, zero-reward
  state appended after the environment's states (env state i stays MDP state i). Where the
  target of a terminated transition is already absorbing with zero reward in `P`
  (FrozenLake's holes and goal), it is kept, and no extra state is needed. Either way the
  reward of the terminating transition is counted once and nothing after it.

The result carries a `jaxmdp.ModelInfo`: the environment's name and action names (in
Gymnasium's order: FrozenLake left, down, right, up, drawn ``<v>^``; CliffWalking up,
right, down, left, ``^>v<``; Taxi south, north, east, west, pickup, dropoff, ``v^><PD``),
and for the grid environments the `GridLayout` read from the environment (FrozenLake's
`desc`, CliffWalking's shape and cliff), so `render_policy(mdp, policy)` draws them.

The table is read into successor lists (one slot per distinct next state of each (s, a);
no `[S, A, S]` array is built), returned as `jaxmdp.SparseTransitions`, or dense for small
tables, by the builders' common rule (`jaxmdp.models._form`: at most 64 states): Taxi (500
states, one successor per move) comes back sparse, FrozenLake and CliffWalking dense.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxmdp._construct import make_mdp
from jaxmdp._mdp import MDP, ModelInfo
from jaxmdp._sparse import SparseTransitions, entry_slots
from jaxmdp.models._form import check_form, wants_dense
from jaxmdp.models._layout import GridLayout

_GYM_MISSING = (
    "from_gymnasium needs the `gymnasium` package to build an environment from its id; "
    "install the `gym` extra: pip install 'jaxmdp-solver[gym]'"
)


class GymnasiumInfo(NamedTuple):
    """How the MDP's states relate to the environment's.

    Attributes:
      num_env_states: number of environment states; env state i is MDP state i.
      absorbing_state: index of the appended absorbing state (= `num_env_states`), or
        `None` when no terminated transition needed one.
    """

    num_env_states: int
    absorbing_state: int | None


def _import_gymnasium():
    try:
        import gymnasium
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(_GYM_MISSING) from err
    return gymnasium


def _make(env_id: str, make_kwargs):
    return _import_gymnasium().make(env_id, **(make_kwargs or {}))


def _table(env):
    """The `P` dict of an env (wrapped or not) or the dict itself."""
    if isinstance(env, Mapping):
        return env
    table = getattr(getattr(env, "unwrapped", env), "P", None)
    if table is None:
        raise TypeError(
            f"{type(env).__name__} has no transition table `unwrapped.P`; from_gymnasium "
            "supports Gymnasium's tabular environments (FrozenLake, CliffWalking, Taxi) or a "
            "dict P[s][a] = [(prob, next_state, reward, terminated), ...]."
        )
    return table


# Per environment class: (action names, action symbols), in Gymnasium's action order.
_ACTIONS = {
    "FrozenLakeEnv": (("left", "down", "right", "up"), "<v>^"),
    "CliffWalkingEnv": (("up", "right", "down", "left"), "^>v<"),
    "TaxiEnv": (("south", "north", "east", "west", "pickup", "dropoff"), "v^><PD"),
}


def _grid_layout(env) -> GridLayout | None:
    """The grid of FrozenLake (its `desc`) or CliffWalking (its shape, cliff and goal)."""
    kind = type(env).__name__
    if kind == "FrozenLakeEnv":
        rows = [
            "".join(c.decode() if isinstance(c, bytes) else str(c) for c in row) for row in env.desc
        ]
        return GridLayout(rows, terminal="HG")
    if kind == "CliffWalkingEnv":
        height, width = env.shape
        cliff = np.asarray(getattr(env, "_cliff", np.zeros((height, width), bool)))
        cells = [["C" if cliff[i, j] else "." for j in range(width)] for i in range(height)]
        start = np.unravel_index(int(env.start_state_index), (height, width))
        cells[start[0]][start[1]] = "S"
        cells[height - 1][width - 1] = "G"  # Gymnasium's goal: the bottom-right cell
        return GridLayout(["".join(r) for r in cells], terminal="G")
    return None


def _model_info(env, table, absorbing: set[int], extra: int | None) -> ModelInfo:
    """Names, actions and layout of a known toy-text env; terminal = states never acted in.

    Terminal states: absorbing ones (every action stays, reward 0), states entered only by
    transitions that end the episode (CliffWalking's goal: the MDP routes those to the
    appended absorbing state), and that appended state.
    """
    entered: set[int] = set()
    ends: set[int] = set()
    for s in table:
        for outcomes in table[s].values():
            for prob, nxt, _, terminated, *_ in outcomes:
                if prob > 0:
                    (ends if terminated else entered).add(int(nxt))
    terminal = set(absorbing) | (ends - entered)
    if extra is not None:
        terminal.add(extra)
    unwrapped = getattr(env, "unwrapped", None)
    kind = type(unwrapped).__name__
    names, symbols = _ACTIONS.get(kind, (None, None))
    spec = getattr(unwrapped, "spec", None) or getattr(env, "spec", None)
    return ModelInfo(
        name=getattr(spec, "id", None) or (kind if unwrapped is not None else None),
        action_names=names,
        action_symbols=symbols,
        layout=_grid_layout(unwrapped) if unwrapped is not None else None,
        terminal_states=tuple(sorted(terminal)),
    )


def _is_absorbing(outcomes_by_action, s: int) -> bool:
    """True if every action of state s stays in s with zero reward."""
    return all(
        int(nxt) == s and float(rew) == 0.0
        for outcomes in outcomes_by_action.values()
        for _, nxt, rew, *_ in outcomes
    )


def from_gymnasium(
    env,
    discount,
    *,
    return_info: bool = False,
    make_kwargs: Mapping | None = None,
    validate: bool = True,
    dtype=None,
    form: str = "auto",
) -> MDP | tuple[MDP, GymnasiumInfo]:
    """Builds the MDP of a Gymnasium tabular environment from its transition table.

    See the module docstring for how duplicates and termination are handled. Actions a
    state lacks in `P` (none in Gymnasium's own environments) become unavailable (`-inf`
    reward, self-loop).

    Args:
      env: a Gymnasium environment with `unwrapped.P` (wrappers are fine), an environment
        id such as `"FrozenLake-v1"` (needs `gymnasium`), or the dict `P` itself.
      discount: `[...]` gamma.
      return_info: also return a `GymnasiumInfo` with the state mapping.
      make_kwargs: keyword arguments for `gymnasium.make` when `env` is an id.
      validate: check the result with `jaxmdp.validate_mdp`.
      dtype: float dtype of the result (default: JAX's default float).
      form: `"auto"` (default: dense up to 64 states, else sparse), `"dense"` or
        `"sparse"`: the transitions form (see the module docstring).

    Returns:
      The `MDP` (`transitions` dense `[S, A, S]` or `SparseTransitions [S, A, K]`, K the
      most distinct next states of any (s, a); `rewards [S, A]`, in JAX's default float dtype),
      where S is the number of environment states, plus one if an absorbing state was
      added; with `return_info`, the pair `(mdp, info)`. For an environment (not a bare
      dict) `mdp.info` is a `jaxmdp.ModelInfo` (see the module docstring): FrozenLake and
      CliffWalking render with `models.render_policy(mdp, policy)`.

    Raises:
      ImportError: `env` is an id and `gymnasium` is not installed.
    """
    if isinstance(env, str):
        env = _make(env, make_kwargs)
    elif make_kwargs:
        raise ValueError("make_kwargs only applies when env is an environment id string.")
    table = _table(env)
    num_env_states = len(table)
    if sorted(int(s) for s in table) != list(range(num_env_states)):
        raise ValueError("the transition table's states must be 0, 1, ..., S-1.")
    check_form(form)
    num_actions = 1 + max(int(a) for s in table for a in table[s])
    extra = num_env_states  # index of the absorbing state, if one is needed
    num_states = num_env_states + 1
    rewards = np.zeros((num_states, num_actions))
    available = np.zeros((num_states, num_actions), dtype=bool)
    absorbing = {s for s in range(num_env_states) if _is_absorbing(table[s], s)}
    # one entry per outcome: key (s * A + a) * S' + target, and its probability
    key_list: list[int] = []
    prob_list: list[float] = []
    for s in range(num_env_states):
        for a, outcomes in table[s].items():
            a = int(a)
            available[s, a] = True
            for prob, nxt, reward, terminated, *_ in outcomes:
                nxt = int(nxt)
                if not 0 <= nxt < num_env_states:
                    raise ValueError(f"P[{s}][{a}] leads to state {nxt}, outside the table.")
                target = extra if terminated and nxt not in absorbing else nxt
                key_list.append((s * num_actions + a) * num_states + target)
                prob_list.append(prob)
                rewards[s, a] += prob * reward
    available[extra] = True
    # Unavailable actions keep a valid (self-loop) row so the MDP stays stochastic; so does
    # the absorbing state's every action.
    idle_s, idle_a = np.nonzero(~available)
    rewards[idle_s, idle_a] = -np.inf
    loops_s = np.concatenate([idle_s, np.full(num_actions, extra)])
    loops_a = np.concatenate([idle_a, np.arange(num_actions)])
    all_keys = np.concatenate(
        [np.asarray(key_list, np.int64), (loops_s * num_actions + loops_a) * num_states + loops_s]
    )
    all_probs = np.concatenate([np.asarray(prob_list, np.float64), np.ones(loops_s.size)])
    # Outcomes with the same (s, a, next state) add up (slippery moves into an edge).
    keys, where = np.unique(all_keys, return_inverse=True)
    probs = np.bincount(where, weights=all_probs)
    rows, targets = keys // num_states, keys % num_states
    if not np.any((targets == extra) & (rows // num_actions < num_env_states) & (probs != 0)):
        num_states = num_env_states  # no terminated transition needed the absorbing state
        keep = rows // num_actions < num_env_states
        rows, targets, probs = rows[keep], targets[keep], probs[keep]
        rewards = rewards[:num_states]
    keep = probs != 0
    next_states, slot_probs = entry_slots(
        rows[keep], targets[keep], probs[keep], num_states * num_actions
    )
    K = next_states.shape[-1]
    transitions: np.ndarray | SparseTransitions = SparseTransitions(
        next_states.reshape(num_states, num_actions, K),
        slot_probs.reshape(num_states, num_actions, K),
    )
    if wants_dense(form, num_states):
        dense = np.zeros((num_states, num_actions, num_states))
        s_, a_ = np.divmod(rows[keep], num_actions)
        dense[s_, a_, targets[keep]] = probs[keep]
        transitions = dense
    dtype = jnp.result_type(float) if dtype is None else dtype
    mdp = make_mdp(transitions, rewards, discount, validate=validate, dtype=dtype)
    appended = extra if num_states > num_env_states else None
    if not isinstance(env, Mapping):
        mdp = mdp._replace(info=_model_info(env, table, absorbing, appended))
    if return_info:
        return mdp, GymnasiumInfo(num_env_states, appended)
    return mdp
