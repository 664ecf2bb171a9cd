"""Transition operators: everything solvers and kernels ask of `transitions`, for every form.

Solvers and Bellman kernels never index `transitions` themselves; they ask this module,
which knows the layout (the anchor is lineax's operator family: one abstract operator with
`mv`, a transpose and `as_matrix`, several concrete forms, and callers that choose by what
the operator can do). Functions take the transitions of ONE MDP:

- dense: an array `[S, A, S]`, `P[s, a, s'] = p(s' | s, a)`;
- sparse: a `SparseTransitions` (`next_states [S, A, K]`, `probs [S, A, K]`; padding slots
  have probability 0, duplicate successors are summed), `jaxmdp._sparse`.

What a caller may ask:

- `expected(P, V)`: `[S, A]` `E[V(s') | s, a]` for every (s, a) (one Bellman backup's pass
  over P); `expected_at(P, s, V)`: the `[A]` row of one state (Gauss-Seidel);
- `policy_operator(P, policy)`: the chain `P_pi` of a deterministic (`[S]` int) or
  stochastic (`[S, A]` probabilities) policy, a policy operator with `mv` (`P_pi v`),
  `rmv` (`P_pi^T u`: gradients, occupancies), the structure tags `dense` and
  `num_successors`, and `as_matrix()` (the explicit `[S, S]`, dense form only; the sparse
  one offers `materialize()` for the few callers that must analyse a small chain densely);
- `sampler(P)`: `(key, s, a) -> s'`, a draw from `p(. | s, a)` (rollouts, Q-learning);
- `stay_probability(P)`: `[S, A]` `p(s | s, a)` (absorbing states);
- `rows(P)`: the probabilities as rows (row statistics);
- `cast(P, dtype)`, `stop_gradient(P)`, `form(P)`, `sweep_work(P)`: bookkeeping.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp._sparse import SparseTransitions, is_sparse

# Full float32 accuracy on accelerators: TF32/bf16 products would cap accuracy near 1e-3.
PRECISION = lax.Precision.HIGHEST


def form(P) -> str:
    """`"sparse"` or `"dense"`."""
    return "sparse" if is_sparse(P) else "dense"


def sweep_work(P) -> int:
    """Multiply-adds of one pass over one member's transitions (`expected`): S A S or S A K."""
    shape = jnp.shape(P.next_states if is_sparse(P) else P)
    return int(shape[-3] * shape[-2] * shape[-1])


def dtype(P):
    """The float dtype of the probabilities."""
    return jnp.result_type(P.probs if is_sparse(P) else P)


def rows(P) -> jax.Array:
    """The probabilities as rows along the last axis: `[S, A, S]` dense, `[S, A, K]` sparse
    (padding slots are 0; a duplicate successor's slots add up), for row statistics (sums,
    nonzero counts: the certificates' rounding constants)."""
    return P.probs if is_sparse(P) else P


def cast(P, dtype):
    """`P` with its probabilities in `dtype` (successor indices unchanged)."""
    if is_sparse(P):
        return SparseTransitions(jnp.asarray(P.next_states), jnp.asarray(P.probs, dtype))
    return jnp.asarray(P, dtype)


def stop_gradient(P):
    if is_sparse(P):
        return SparseTransitions(P.next_states, lax.stop_gradient(P.probs))
    return lax.stop_gradient(P)


# Up to this many slots per row, `_gather_sum` adds the K gathered slabs one by one.
_UNROLL_SLOTS = 16


def _gather_sum(next_states, probs, values):
    """`sum_k probs[..., k] * values[next_states[..., k]]`: one pass over the successor
    lists (duplicates and padding need no care: padding has probability 0).

    Written for XLA:CPU's loop fusion (measured on a 1000x1000 gridworld, S = 10^6, A = 4,
    K = 3, one value-iteration sweep inside the solve loop: 189 ms as `jnp.sum(probs *
    values[next_states], -1)`, 21 ms as written here): a gather-then-reduce over the short
    minor K axis materialised the `[S, A, K]` gather and ran XLA's slow minor-axis reduce,
    whereas K gathered slabs added elementwise fuse into one loop that streams
    `next_states` and `probs` once.

    The gather loop is scalar (XLA:CPU does not vectorise gathers), so the instructions per
    slot set its speed. Indices are read as uint32 and clamped by one `min` to `S - 1`:
    signed indices made JAX add its negative-index wrap (compare, add, select) and
    `jnp.clip` a max and a min, per slot, in every sweep (XLA keeps them in the loop when
    the gather sits in a `lax.cond` branch, as value iteration's does): a loop of fused
    sweeps in a cond ran 1.50 -> 0.60 ms per sweep on a 300x300 grid, 23.8 -> 14.7 ms on a
    1000x1000 one (same process, load 4.6). An invalid index in unvalidated input (a
    negative one becomes a large unsigned one) reads a wrong but defined value, never
    memory outside `values`; the gathers may then skip their own bounds handling
    (`promise_in_bounds`).
    """
    K = next_states.shape[-1]
    last = values.shape[-1] - 1
    idx = jnp.minimum(jnp.asarray(next_states).astype(jnp.uint32), jnp.uint32(last))
    if K > _UNROLL_SLOTS:  # wide rows: one gather, reduced over a long axis (fine there)
        return jnp.sum(probs * values.at[idx].get(mode="promise_in_bounds"), axis=-1)
    total = None
    for k in range(K):
        term = probs[..., k] * values.at[idx[..., k]].get(mode="promise_in_bounds")
        total = term if total is None else total + term
    return total


def expected(P, values: jax.Array) -> jax.Array:
    """`[S, A]` sum_s' p(s' | s, a) V(s') for `values [S]`."""
    if is_sparse(P):
        return _gather_sum(P.next_states, P.probs, values)
    return jnp.einsum("sat,t->sa", P, values, precision=PRECISION)


def tangent_expected(P, dP, values: jax.Array) -> jax.Array:
    """`[S, A]` sum_s' dp(s' | s, a) V(s'): `expected` for a tangent `dP` of `P` (the sparse
    form's tangent has probabilities only; the successor indices are `P`'s)."""
    if is_sparse(P):
        return _gather_sum(P.next_states, dP.probs, values)
    return expected(dP, values)


def expected_at(P, s, values: jax.Array) -> jax.Array:
    """`[A]` sum_s' p(s' | s, a) V(s') for one state `s` (a traced index)."""
    if is_sparse(P):
        return _gather_sum(P.next_states[s], P.probs[s], values)
    return expected(P[s][None], values)[0]


def stay_probability(P) -> jax.Array:
    """`[S, A]` p(s | s, a)."""
    if is_sparse(P):
        own = P.next_states == jnp.arange(P.next_states.shape[0])[:, None, None]
        return jnp.sum(jnp.where(own, P.probs, 0), axis=-1)
    return jnp.diagonal(jnp.asarray(P), axis1=0, axis2=2).T


def _log(p):
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


def sampler(P):
    """`(key, s, a) -> s'` int32, a draw from `p(. | s, a)` (log-probabilities computed once)."""
    if is_sparse(P):
        log_p, ns = _log(jnp.asarray(P.probs)), jnp.asarray(P.next_states)

        def sample_sparse(key, s, a):
            return ns[s, a, jax.random.categorical(key, log_p[s, a])].astype(jnp.int32)

        return sample_sparse
    log_p = _log(jnp.asarray(P))

    def sample(key, s, a):
        return jax.random.categorical(key, log_p[s, a]).astype(jnp.int32)

    return sample


# -- the policy operator ------------------------------------------------------------------------


class DensePolicyOperator(NamedTuple):
    """`P_pi` as an explicit `[S, S]` matrix."""

    matrix: jax.Array  # [S, S]

    @property
    def dense(self) -> bool:
        return True

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


class SparsePolicyOperator(NamedTuple):
    """`P_pi` as successor lists: row s has successors `next_states[s]` with `probs[s]`."""

    next_states: jax.Array  # [S, K] int32
    probs: jax.Array  # [S, K]

    @property
    def dense(self) -> bool:
        return False

    @property
    def num_successors(self) -> int:
        return self.next_states.shape[-1]

    def mv(self, v: jax.Array) -> jax.Array:
        """`[S]` P_pi v (a gather)."""
        return _gather_sum(self.next_states, self.probs, v)

    def rmv(self, u: jax.Array) -> jax.Array:
        """`[S]` P_pi^T u (a scatter-add)."""
        return jnp.zeros(u.shape, u.dtype).at[self.next_states].add(self.probs * u[:, None])

    def as_matrix(self):
        raise ValueError(
            "this needs the explicit [S, S] matrix of a policy, which the sparse transitions "
            "form does not build (it would cost S^2 memory); convert with jaxmdp.to_dense "
            "for a small model, or use the operator's mv / rmv."
        )

    def materialize(self) -> jax.Array:
        """The `[S, S]` matrix, built explicitly (S^2 memory: small chains only)."""
        S = self.next_states.shape[0]
        rows = jnp.arange(S)[:, None]
        return jnp.zeros((S, S), self.probs.dtype).at[rows, self.next_states].add(self.probs)


def policy_operator(P, policy: jax.Array):
    """The chain of a policy on ONE MDP's transitions.

    Args:
      P: the transitions (see the module docstring).
      policy: `[S]` int actions, or `[S, A]` float probabilities pi(a | s).

    Returns:
      A policy operator (`mv`, `rmv`, `as_matrix`, `dense`, `num_successors`): a
      `DensePolicyOperator` for dense transitions, a `SparsePolicyOperator` (K slots per
      state for a deterministic policy, A K for a stochastic one) for sparse ones.
    """
    if is_sparse(P):
        ns, pr = P.next_states, P.probs
        if jnp.issubdtype(policy.dtype, jnp.integer):
            pick = policy[:, None, None]
            ns = jnp.take_along_axis(ns, pick, axis=1)[:, 0]
            return SparsePolicyOperator(ns, jnp.take_along_axis(pr, pick, axis=1)[:, 0])
        # Stochastic: the A lists of a state side by side, weighted by pi(a | s). Actions
        # with pi = 0 contribute exactly 0 (their rows may be all zero: unavailable).
        S, A, K = ns.shape
        weighted = jnp.where(policy[:, :, None] > 0, policy[:, :, None] * pr, 0)
        return SparsePolicyOperator(ns.reshape(S, A * K), weighted.reshape(S, A * K))
    if jnp.issubdtype(policy.dtype, jnp.integer):
        m = jnp.take_along_axis(P, policy[:, None, None], axis=-2)[:, 0, :]
    else:
        m = jnp.einsum("sa,sat->st", policy, jnp.asarray(P, policy.dtype), precision=PRECISION)
    return DensePolicyOperator(m)
