"""The MDP pytree and its shape conventions.

Throughout the library ``S`` is the number of states and ``A`` the number of actions.

| field         | shape            | meaning                                            |
|---------------|------------------|----------------------------------------------------|
| `transitions` | `[..., S, A, S]` | p(s' | s, a); every `[..., s, a, :]` row sums to 1 |
| `rewards`     | `[..., S, A]`    | expected immediate reward r(s, a); `-inf` marks an |
|               |                  | action that is unavailable in state s              |
| `discount`    | `[...]`          | gamma in [0, 1]                                    |

`transitions` may also be a `jaxmdp.SparseTransitions` (padded successor lists
`next_states [..., S, A, K]`, `probs [..., S, A, K]`; `jaxmdp._sparse`): same meaning, same
batching rules, for MDPs with few successors per (s, a).

Leading ``...`` axes are batch axes. They broadcast against each other (NumPy rules), so a
sweep over rewards and discounts shares one `transitions` array of shape `[S, A, S]` with
`rewards [B, S, A]` and `discount [B]`; the solver keeps such a leaf shared all the way into
the kernels instead of materialising B copies.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import _operators
from jaxmdp._sparse import SparseTransitions, is_sparse
from jaxmdp._typing import Shape


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Descriptive facts a model builder knows about its MDP (no numbers, hashable).

    Attributes:
      name: short model name, e.g. ``"gridworld"`` or ``"FrozenLake-v1"``.
      action_names: one name per action, e.g. ``("up", "down", "left", "right")``.
      action_symbols: one character per action for text rendering, e.g. ``"^v<>"``.
      layout: the grid the states live on (a `jaxmdp.models.GridLayout`), if any.
      terminal_states: states drawn as terminal by `render_policy` (absorbing states).
    """

    name: str | None = None
    action_names: tuple[str, ...] | None = None
    action_symbols: str | None = None
    layout: object = None
    terminal_states: tuple[int, ...] | None = None


_FIELDS = ("transitions", "rewards", "discount")


class MDP:
    """A finite Markov decision process (or a batch of them).

    Behaves like the named tuple `(transitions, rewards, discount)` (iteration, indexing,
    `_replace`, `_asdict`, `MDP(P, R, g)`), and is a JAX pytree with those three leaves.
    An optional `info` (`ModelInfo`) carries what a model builder knows beyond the arrays
    (action names and symbols, the grid layout); it is descriptive only and is not part of
    the pytree, so JAX transformations (`jax.tree.map`, `jit`, `vmap`) return MDPs without
    it and it never causes recompilation.

    No checks run here: JAX rebuilds pytrees with placeholder leaves under `vmap`. Use
    `jaxmdp.make_mdp` (validates by default) or `jaxmdp.validate_mdp` for user data.

    Attributes:
      transitions: `[..., S, A, S]` p(s' | s, a), or a `SparseTransitions` (successor
        lists `[..., S, A, K]`).
      rewards: `[..., S, A]` expected reward r(s, a); `-inf` = action unavailable in s.
      discount: `[...]` discount factor gamma in [0, 1].
      info: optional `ModelInfo` (default `None`).
    """

    __slots__ = ("transitions", "rewards", "discount", "info")
    _fields = _FIELDS
    transitions: Annotated[jax.Array, Shape("... S A S")] | SparseTransitions
    rewards: Annotated[jax.Array, Shape("... S A")]
    discount: Annotated[jax.Array, Shape("...")]
    info: ModelInfo | None

    def __init__(self, transitions, rewards, discount, info: ModelInfo | None = None):
        object.__setattr__(self, "transitions", transitions)
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "discount", discount)
        object.__setattr__(self, "info", info)

    def __setattr__(self, name, value):
        raise AttributeError("MDP is immutable; use mdp._replace(...).")

    # Tuple-like behaviour (the three leaves only), as when MDP was a NamedTuple.
    def __iter__(self):
        return iter((self.transitions, self.rewards, self.discount))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i):
        return (self.transitions, self.rewards, self.discount)[i]

    def _replace(self, **changes) -> MDP:
        unknown = set(changes) - set(_FIELDS) - {"info"}
        if unknown:
            raise ValueError(f"MDP has no field(s) {sorted(unknown)}; fields: {_FIELDS}.")
        kw = {f: getattr(self, f) for f in (*_FIELDS, "info")}
        kw.update(changes)
        return MDP(**kw)

    def _asdict(self) -> dict:
        return {f: getattr(self, f) for f in _FIELDS}

    def __repr__(self) -> str:
        def show(x):
            shape = getattr(x, "shape", None)
            dtype = getattr(x, "dtype", None)
            return f"{type(x).__name__}{list(shape)} {dtype}" if shape is not None else repr(x)

        parts = ", ".join(
            f"{f}={getattr(self, f)!r}"
            if is_sparse(getattr(self, f))
            else f"{f}={show(getattr(self, f))}"
            for f in _FIELDS
        )
        info = f", info={self.info!r}" if self.info is not None else ""
        return f"MDP({parts}{info})"

    @property
    def num_states(self) -> int:
        return int(np.shape(self.rewards)[-2])

    @property
    def num_actions(self) -> int:
        return int(np.shape(self.rewards)[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Broadcast shape of the leading batch axes of all three leaves."""
        return batch_shape(self)

    @property
    def dtype(self):
        return jnp.result_type(_operators.dtype(self.transitions), self.rewards)


def _flatten_with_keys(mdp: MDP):
    keys = tuple(jax.tree_util.GetAttrKey(f) for f in _FIELDS)
    return tuple(zip(keys, (mdp.transitions, mdp.rewards, mdp.discount), strict=True)), None


def _flatten(mdp: MDP):
    return (mdp.transitions, mdp.rewards, mdp.discount), None


def _unflatten(_, children) -> MDP:
    return MDP(*children)


jax.tree_util.register_pytree_with_keys(MDP, _flatten_with_keys, _unflatten, _flatten)


def transitions_batch_shape(transitions) -> tuple[int, ...]:
    """The batch axes of a `transitions` (dense, or both leaves of the sparse form)."""
    if is_sparse(transitions):
        return transitions.batch_shape
    return tuple(np.shape(transitions)[:-3])


def transitions_shape(transitions) -> tuple[int, ...]:
    """The per-member core shape: `(S, A, S)` dense, `(S, A, K)` sparse."""
    if is_sparse(transitions):
        return tuple(np.shape(transitions.next_states)[-3:])
    return tuple(np.shape(transitions)[-3:])


def _full_shape(transitions):
    if is_sparse(transitions):
        return np.shape(transitions.next_states)
    return np.shape(transitions)


def leaf_batch_shapes(mdp: MDP) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The batch part of each field's shape: `(transitions, rewards, discount)`."""
    return (
        transitions_batch_shape(mdp.transitions),
        tuple(np.shape(mdp.rewards)[:-2]),
        tuple(np.shape(mdp.discount)),
    )


def check_shapes(mdp: MDP) -> None:
    """Structural checks (static shapes only, so it also runs under `jit`).

    Raises:
      ValueError: naming the leaf, the expected convention and the actual shapes.
    """
    if is_sparse(mdp.transitions):
        _check_sparse_shapes(mdp)
        return
    tshape, rshape = np.shape(mdp.transitions), np.shape(mdp.rewards)  # type: ignore[arg-type]
    if len(tshape) < 3:
        raise ValueError(
            f"transitions must have shape [..., S, A, S]; got shape {tshape} "
            f"(ndim {len(tshape)} < 3)."
        )
    if len(rshape) < 2:
        raise ValueError(
            f"rewards must have shape [..., S, A]; got shape {rshape} (ndim {len(rshape)} < 2)."
        )
    s, a, s2 = tshape[-3:]
    if s != s2:
        raise ValueError(
            f"transitions must have shape [..., S, A, S] with the same S on the first and last "
            f"axes; got {tshape}."
        )
    if rshape[-2:] != (s, a):
        raise ValueError(
            f"rewards must have shape [..., S, A] = [..., {s}, {a}] to match transitions "
            f"{tshape}; got {rshape}."
        )
    if s == 0 or a == 0:
        raise ValueError(f"an MDP needs at least one state and one action; got S={s}, A={a}.")
    batch_shape(mdp)  # raises on non-broadcastable batch axes


def _check_sparse_shapes(mdp: MDP) -> None:
    p = mdp.transitions
    assert isinstance(p, SparseTransitions)
    nshape, pshape, rshape = np.shape(p.next_states), np.shape(p.probs), np.shape(mdp.rewards)
    for name, shape in (("next_states", nshape), ("probs", pshape)):
        if len(shape) < 3:
            raise ValueError(
                f"SparseTransitions.{name} must have shape [..., S, A, K]; got shape {shape}."
            )
    if nshape[-3:] != pshape[-3:]:
        raise ValueError(
            f"SparseTransitions.next_states {nshape} and probs {pshape} must share the last "
            "three axes [S, A, K]."
        )
    if not jnp.issubdtype(jnp.result_type(p.next_states), jnp.integer):
        raise ValueError(
            "SparseTransitions.next_states must hold integer state indices; got dtype "
            f"{jnp.result_type(p.next_states)}."
        )
    s, a, k = nshape[-3:]
    if len(rshape) < 2 or rshape[-2:] != (s, a):
        raise ValueError(
            f"rewards must have shape [..., S, A] = [..., {s}, {a}] to match the sparse "
            f"transitions [..., S, A, K] {nshape}; got {rshape}."
        )
    if s == 0 or a == 0 or k == 0:
        raise ValueError(
            f"an MDP needs at least one state, one action and one successor slot; got S={s}, "
            f"A={a}, K={k}."
        )
    try:
        _ = p.batch_shape
    except ValueError:
        raise ValueError(
            f"the batch axes of SparseTransitions.next_states {nshape} and probs {pshape} do "
            "not broadcast."
        ) from None
    batch_shape(mdp)


def batch_shape(mdp: MDP) -> tuple[int, ...]:
    tb, rb, db = leaf_batch_shapes(mdp)
    try:
        return tuple(np.broadcast_shapes(tb, rb, db))
    except ValueError:
        raise ValueError(
            "the batch axes of the MDP's leaves do not broadcast: transitions "
            f"{_full_shape(mdp.transitions)} has batch shape {tb}, rewards "
            f"{np.shape(mdp.rewards)} has {rb}, discount {np.shape(mdp.discount)} has {db}."
        ) from None


def solve_dtype(mdp: MDP, *others):
    """The float dtype a solve of `mdp` (with arrays `others`, e.g. `values0`) runs in."""
    dtype = jnp.result_type(_operators.dtype(mdp.transitions), mdp.rewards, mdp.discount, *others)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return dtype


def cast(mdp: MDP, dtype) -> MDP:
    """`mdp` with its probabilities, rewards and discount in `dtype` (indices unchanged)."""
    return MDP(
        _operators.cast(mdp.transitions, dtype),
        jnp.asarray(mdp.rewards, dtype),
        jnp.asarray(mdp.discount, dtype),
    )


def stop_gradient(mdp: MDP) -> MDP:
    return MDP(
        _operators.stop_gradient(mdp.transitions),
        jax.lax.stop_gradient(mdp.rewards),
        jax.lax.stop_gradient(mdp.discount),
    )
