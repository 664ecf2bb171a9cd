"""Transition operators: everything solvers and kernels ask of `transitions`, for every form.

Solvers and Bellman kernels never index `transitions` themselves; they ask this module,
which knows the layout (the anchor is lineax's operator family: one abstract operator with
`mv`, a transpose and `as_matrix`, several concrete forms, and callers that choose by what
the operator can do). Functions take the transitions of ONE MDP:

- dense: an array `[S, A, S]`, `P[s, a, s'] = p(s' | s, a)`.

What a caller may ask:

- `expected(P, V)`: `[S, A]` `E[V(s') | s, a]` for every (s, a) (one Bellman backup's pass
  over P); `expected_at(P, s, V)`: the `[A]` row of one state (Gauss-Seidel);
- `policy_operator(P, policy)`: the chain `P_pi` of a deterministic (`[S]` int) or
  stochastic (`[S, A]` probabilities) policy, a `PolicyOperator` with `mv` (`P_pi v`),
  `rmv` (`P_pi^T u`: gradients, occupancies), the structure tags `dense` and
  `num_successors`, and `as_matrix()` (the explicit `[S, S]`, dense form only);
- `sampler(P)`: `(key, s, a) -> s'`, a draw from `p(. | s, a)` (rollouts, Q-learning);
- `stay_probability(P)`: `[S, A]` `p(s | s, a)` (absorbing states);
- `cast(P, dtype)`, `stop_gradient(P)`, `form(P)`, `sweep_work(P)`: bookkeeping.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

# Full float32 accuracy on accelerators: TF32/bf16 products would cap accuracy near 1e-3.
PRECISION = lax.Precision.HIGHEST


def form(P) -> str:
    """`"dense"`."""
    return "dense"


def sweep_work(P) -> int:
    """Multiply-adds of one pass over one member's transitions (`expected`)."""
    shape = jnp.shape(P)
    return int(shape[-3] * shape[-2] * shape[-1])


def dtype(P):
    """The float dtype of the probabilities."""
    return jnp.result_type(P)


def cast(P, dtype):
    """`P` with its probabilities in `dtype`."""
    return jnp.asarray(P, dtype)


def stop_gradient(P):
    return lax.stop_gradient(P)


def expected(P, values: jax.Array) -> jax.Array:
    """`[S, A]` sum_s' p(s' | s, a) V(s') for `values [S]`."""
    return jnp.einsum("sat,t->sa", P, values, precision=PRECISION)


def expected_at(P, s, values: jax.Array) -> jax.Array:
    """`[A]` sum_s' p(s' | s, a) V(s') for one state `s` (a traced index)."""
    return expected(P[s][None], values)[0]


def stay_probability(P) -> jax.Array:
    """`[S, A]` p(s | s, a)."""
    return jnp.diagonal(jnp.asarray(P), axis1=0, axis2=2).T


def _log(p):
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


def sampler(P):
    """`(key, s, a) -> s'` int32, a draw from `p(. | s, a)` (log-probabilities computed once)."""
    log_p = _log(jnp.asarray(P))

    def sample(key, s, a):
        return jax.random.categorical(key, log_p[s, a]).astype(jnp.int32)

    return sample


# -- the policy operator ------------------------------------------------------------------------


class DensePolicyOperator(NamedTuple):
    """`P_pi` as an explicit `[S, S]` matrix."""

    matrix: jax.Array  # [S, S]

    dense = True

    @property
    def num_successors(self) -> int:
        return self.matrix.shape[-1]

    def mv(self, v: jax.Array) -> jax.Array:
        """`[S]` P_pi v."""
        return jnp.dot(self.matrix, v, precision=PRECISION)

    def rmv(self, u: jax.Array) -> jax.Array:
        """`[S]` P_pi^T u."""
        return jnp.dot(self.matrix.T, u, precision=PRECISION)

    def as_matrix(self) -> jax.Array:
        return self.matrix


def policy_operator(P, policy: jax.Array):
    """The chain of a policy on ONE MDP's transitions.

    Args:
      P: the transitions (see the module docstring).
      policy: `[S]` int actions, or `[S, A]` float probabilities pi(a | s).

    Returns:
      A policy operator (`mv`, `rmv`, `as_matrix`, `dense`, `num_successors`).
    """
    if jnp.issubdtype(policy.dtype, jnp.integer):
        m = jnp.take_along_axis(P, policy[:, None, None], axis=-2)[:, 0, :]
    else:
        m = jnp.einsum("sa,sat->st", policy, jnp.asarray(P, policy.dtype), precision=PRECISION)
    return DensePolicyOperator(m)
