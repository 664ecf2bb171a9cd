"""Finite-horizon backward induction (Puterman 1994, Sec. 4.5), one `lax.scan` over time.

    V_T = terminal values,   Q_t = r + g P V_{t+1},   V_t = max_a Q_t,   pi_t = argmax_a Q_t,

for t = T - 1, ..., 0. Exact (no stopping rule, no tolerance): T Bellman backups. Discount 1
is the usual finite-horizon total reward; any discount in [0, 1] works.

A function, not an iterative solver: the horizon fixes the number of steps and the result
has a time axis, which `Solution` has not. Batching follows `jaxmdp.solve`: leading batch
axes broadcast, and a leaf without batch axes (typically `transitions`) stays shared, so the
batched backup is one matrix-matrix product per time step.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmdp import _bellman
from jaxmdp._exec import layout
from jaxmdp._mdp import MDP, cast, check_shapes, solve_dtype


class FiniteHorizonSolution(NamedTuple):
    """Result of `jaxmdp.backward_induction`. Time is the axis right after the batch axes.

    Index t is time step t (decisions at t = 0 .. T-1, with T the horizon).

    Attributes:
      values: `[..., T + 1, S]` optimal value-to-go: `values[..., t, s]` is the best expected
        total (discounted) reward from state s at time t to the end; `values[..., T, :]` are
        the terminal values.
      q_values: `[..., T, S, A]` `q_values[..., t, s, a] = r(s, a) + g P(s, a) values[..., t+1]`
        (`-inf` for unavailable actions).
      policy: `[..., T, S]` int32 optimal action at time t (ties: lowest action index).
    """

    values: jax.Array
    q_values: jax.Array
    policy: jax.Array


def _single(mdp: MDP, terminal: jax.Array, horizon: int) -> FiniteHorizonSolution:
    dtype = solve_dtype(mdp, terminal)
    mdp = cast(mdp, dtype)
    terminal = jnp.asarray(terminal, dtype)

    def body(v_next, _):
        q = _bellman.q_values(mdp, v_next)
        v = jnp.max(q, axis=-1)
        return v, (v, q, jnp.argmax(q, axis=-1).astype(jnp.int32))

    _, (values, q, policy) = lax.scan(body, terminal, None, length=horizon, reverse=True)
    values = jnp.concatenate([values, terminal[None]], axis=0)
    return FiniteHorizonSolution(values, q, policy)


_CORES = FiniteHorizonSolution(values=2, q_values=3, policy=2)  # type: ignore[arg-type]


@functools.partial(jax.jit, static_argnames=("horizon", "batch_shape", "carried"))
def _backward_jit(tree, *, horizon: int, batch_shape, carried) -> FiniteHorizonSolution:
    """The batch laid out as `jaxmdp.solve` lays it out (`jaxmdp._exec.layout`): one vmap
    per carried batch axis, shared leaves unmapped."""

    def fn(tree, _carry, _solver):
        mdp, terminal = tree
        return _single(mdp, terminal, horizon)

    tree = layout.squeeze(tree, batch_shape, carried)
    out = layout.vmap_batch(fn, tree, carried)(tree, None, None)
    return layout.restore(out, batch_shape, _CORES)


def backward_induction(mdp: MDP, horizon: int, terminal_values=None) -> FiniteHorizonSolution:
    """Optimal finite-horizon values and (time-dependent) policy by backward induction.

    Exact up to rounding: `horizon` Bellman backups, no stopping rule. Discount 1 allowed.

    Args:
      mdp: `MDP` with `transitions [..., S, A, S]`, `rewards [..., S, A]`, `discount [...]`
        (leading batch axes broadcast; leaves without them are shared, not copied).
        The rewards and transitions are the same at every time step.
      horizon: static number of decision steps T (an int >= 0).
      terminal_values: optional `[..., S]` values at time T (broadcast against the batch);
        zeros by default.

    Returns:
      `FiniteHorizonSolution(values [..., T+1, S], q_values [..., T, S, A],
      policy [..., T, S])`; index t of the time axis is time step t and `values[..., T, :]`
      are the terminal values. (pymdptoolbox's `FiniteHorizon` stores the transposes:
      `V[:, t]` is `values[t]`, `policy[:, t]` is `policy[t]`.)
    """
    if not isinstance(mdp, MDP):
        raise TypeError(f"backward_induction expects a jaxmdp.MDP; got {type(mdp).__name__}.")
    if not (isinstance(horizon, (int, np.integer)) and horizon >= 0):
        raise ValueError(f"horizon must be an int >= 0; got {horizon!r}.")
    check_shapes(mdp)
    mdp = layout.as_arrays(mdp)
    S = mdp.num_states
    if terminal_values is None:
        terminal_values = jnp.zeros((S,), jnp.result_type(mdp.rewards, mdp.discount))
    terminal_values = jnp.asarray(terminal_values)
    if terminal_values.ndim < 1 or terminal_values.shape[-1] != S:
        raise ValueError(
            f"terminal_values must have shape [..., S] with S={S}; got {terminal_values.shape}."
        )
    tree = (mdp, terminal_values)
    shapes = layout.leaf_batch_shapes(tree)
    try:
        batch = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(
            f"terminal_values has batch shape {terminal_values.shape[:-1]}, which does not "
            f"broadcast to the MDP's batch shape {mdp.batch_shape}."
        ) from None
    carried = layout.carried(shapes, batch)
    return _backward_jit(tree, horizon=int(horizon), batch_shape=batch, carried=carried)
