"""Bellman kernels on ONE MDP (no batch axes, no loops over iterations); vmap for batches.

Shapes: `transitions [S, A, S]`, `rewards [S, A]`, `discount []`, `values [S]`,
`policy [S]` int. The kernels read `transitions` only through `jaxmdp._operators` (the
expected next value, the policy operator), so they serve every transitions form. Rewards
of `-inf` mark unavailable actions: their Q is `-inf`, so the
greedy policy never picks them (validation guarantees each state has one available action).

Tie-breaking: `greedy_policy` returns the lowest action index among exactly equal maxima
(`jnp.argmax` semantics). Values that differ by rounding are not ties.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _krylov, _linalg
from jaxmdp import _operators as ops
from jaxmdp._mdp import MDP
from jaxmdp._typing import ChainMatrix, StateActionArray, StateVector

_PRECISION = ops.PRECISION


def _dtype(mdp: MDP):
    return jnp.result_type(ops.dtype(mdp.transitions), mdp.rewards, mdp.discount)


def expected_next_values(mdp: MDP, values: StateVector) -> StateActionArray:
    """`[S, A]` sum_s' p(s' | s, a) V(s')."""
    return ops.expected(mdp.transitions, values)


def state_q_values(mdp: MDP, s, values: jax.Array) -> jax.Array:
    """`[A]` Q(s, .) of one state `s` (a traced index) from `[S]` values."""
    return mdp.rewards[s] + mdp.discount * ops.expected_at(mdp.transitions, s, values)


def q_values(mdp: MDP, values: StateVector) -> StateActionArray:
    """Action values `Q(s, a) = r(s, a) + gamma * sum_s' p(s' | s, a) V(s')`.

    Args:
      mdp: one MDP.
      values: `[S]` value function V.

    Returns:
      `[S, A]` Q; `-inf` for unavailable actions.
    """
    return mdp.rewards + mdp.discount * expected_next_values(mdp, values)


def q_values_extended(mdp: MDP, values: jax.Array) -> jax.Array:
    """`q_values` that stays exact when V has infinite entries (improper policies at gamma=1).

    A plain product would give `0 * inf = NaN` for impossible transitions into such states.
    Here an infinite value only counts when it is reached with positive probability.
    """
    finite = jnp.isfinite(values)
    base = q_values(mdp, jnp.where(finite, values, 0.0))
    reach_pos = expected_next_values(mdp, (values == jnp.inf).astype(base.dtype)) > 0
    reach_neg = expected_next_values(mdp, (values == -jnp.inf).astype(base.dtype)) > 0
    reach_nan = expected_next_values(mdp, jnp.isnan(values).astype(base.dtype)) > 0
    disc = mdp.discount > 0
    out = jnp.where(disc & reach_pos, jnp.inf, base)
    out = jnp.where(disc & reach_neg, jnp.where(reach_pos, jnp.nan, -jnp.inf), out)
    out = jnp.where(disc & reach_nan, jnp.nan, out)
    return jnp.where(jnp.isneginf(mdp.rewards), -jnp.inf, out)


# Up to this many actions, `max_actions` takes the max slab by slab.
_SLAB_MAX_ACTIONS = 16


def max_actions(q: jax.Array) -> jax.Array:
    """`[..., S]` max over the last (action) axis of `q [..., S, A]`, the same values as
    `jnp.max(q, -1)` (a max is exact in any order).

    Few actions: elementwise maxima of the A slabs, which XLA:CPU fuses into the loop that
    produces `q` (so a backup's Q never exists as an array); its reduce over a short minor
    axis does not fuse its producer and is slow (300x300 gridworld, a sweep that gathers
    and reduces in one program: 4.7 ms vs 0.57 ms).
    """
    A = q.shape[-1]
    if A > _SLAB_MAX_ACTIONS:
        return jnp.max(q, axis=-1)
    out = q[..., 0]
    for a in range(1, A):
        out = jnp.maximum(out, q[..., a])
    return out


def backup_values(mdp: MDP, values: StateVector) -> StateVector:
    """`[S]` (TV)(s) = max_a Q(s, a) without materialising Q (`max_actions`): one pass over
    the transitions that reads V and writes TV. Q itself is `q_values` of the same `values`.
    """
    return max_actions(q_values(mdp, values))


def greedy_policy(mdp: MDP, values: StateVector) -> StateVector:
    """`[S]` int32 argmax_a Q(s, a) for the given `[S]` values (lowest index on exact ties)."""
    return jnp.argmax(q_values(mdp, values), axis=-1).astype(jnp.int32)


def backup(mdp: MDP, values: StateVector) -> tuple[StateVector, StateVector]:
    """One Bellman optimality backup.

    Returns:
      `(new_values [S], policy [S] int32)`: `max_a Q(s, a)` and its greedy action.
    """
    q = q_values(mdp, values)
    return jnp.max(q, axis=-1), jnp.argmax(q, axis=-1).astype(jnp.int32)


def policy_rewards(mdp: MDP, policy: StateVector) -> StateVector:
    """`[S]` r(s, pi(s))."""
    return jnp.take_along_axis(mdp.rewards, policy[:, None], axis=-1)[:, 0]


def policy_transitions(mdp: MDP, policy: StateVector) -> ChainMatrix:
    """`[S, S]` p(s' | s, pi(s)): the explicit matrix (dense transitions only)."""
    return ops.policy_operator(mdp.transitions, policy).as_matrix()


def policy_backup(mdp: MDP, values: StateVector, policy: StateVector) -> StateVector:
    """`[S]` T_pi V = r_pi + gamma P_pi V, computed through the full Q.

    Through Q rather than a gathered `P_pi` so that a `transitions` shared by a batch stays one
    matrix-matrix product under vmap (a gather would build one `[S, S]` matrix per member).
    """
    q = q_values(mdp, values)
    return jnp.take_along_axis(q, policy[:, None], axis=-1)[:, 0]


def evaluate_policy_iterative(
    mdp: MDP, policy: StateVector, values: StateVector | None = None, num_sweeps: int = 100
) -> StateVector:
    """Apply `V <- r_pi + gamma P_pi V` `num_sweeps` times (a fixed count; no stopping test).

    Error after k sweeps is at most `gamma**k * max|T_pi V0 - V0| / (1 - gamma)`.

    Args:
      mdp: one MDP.
      policy: `[S]` int actions.
      values: `[S]` start (zeros by default).
      num_sweeps: static number of sweeps.

    Returns:
      `[S]` approximate V^pi.
    """
    p_pi = ops.policy_operator(mdp.transitions, policy)
    r_pi = policy_rewards(mdp, policy)
    v = jnp.zeros(r_pi.shape, _dtype(mdp)) if values is None else values

    def body(_, v):
        return r_pi + mdp.discount * p_pi.mv(v)

    return lax.fori_loop(0, num_sweeps, body, v)


# The discount-1 chain analysis (recurrent classes by a reachability closure) works on an
# explicit [S, S] matrix, O(S^3 log S): the sparse form materialises P_pi only up to here.
DENSE_CHAIN_MAX = 2048


def chain_matrix(op, what: str) -> jax.Array:
    """`[S, S]` P_pi for analyses that need the explicit chain (discount 1, stationary
    distributions): the dense operator's matrix, or a small sparse one's, materialised.

    Raises:
      ValueError: (at trace time) for a sparse operator with more than `DENSE_CHAIN_MAX`
        states, naming `what` needed it and the alternatives.
    """
    if op.dense:
        return op.as_matrix()
    S = op.next_states.shape[0]
    if S > DENSE_CHAIN_MAX:
        raise ValueError(
            f"{what} needs the chain of a policy as an explicit [S, S] matrix and an "
            f"O(S^3 log S) analysis; with sparse transitions that is done only up to "
            f"S = {DENSE_CHAIN_MAX} states, and this MDP has S = {S}. Alternatives: give "
            "discounts < 1 as concrete values (or undiscounted=False) so that the sparse "
            "iterative solve applies; use ValueIteration or ModifiedPolicyIteration, which "
            "handle discount 1 on the sparse form; or jaxmdp.to_dense for a small model."
        )
    return op.materialize()


def _reachability(adjacency: jax.Array) -> jax.Array:
    """Reflexive-transitive closure of a bool `[S, S]` graph by repeated squaring."""
    s = adjacency.shape[-1]
    reach = adjacency | jnp.eye(s, dtype=bool)
    for _ in range(max(1, math.ceil(math.log2(max(s, 2))))):
        r = reach.astype(jnp.float32)
        reach = jnp.dot(r, r) > 0  # path counts are small integers: exact in float32
    return reach


def _undiscounted_structure(p_pi: jax.Array, r_pi: jax.Array):
    """Which states to pin, and to what, when evaluating a policy at gamma = 1.

    Recurrent classes with zero reward get value 0 (stochastic-shortest-path convention).
    States in, or reaching, a recurrent class with non-zero reward have no finite value:
    `+inf` / `-inf` by the sign of that reward, NaN where signs mix.
    """
    reach = _reachability(p_pi > 0)
    # s is recurrent iff every state it reaches reaches it back.
    recurrent = jnp.all(~reach | reach.T, axis=1)
    same_class = reach & reach.T
    cls_pos = jnp.any(same_class & (r_pi > 0)[None, :], axis=1) & recurrent
    cls_neg = jnp.any(same_class & (r_pi < 0)[None, :], axis=1) & recurrent
    hits_pos = jnp.any(reach & cls_pos[None, :], axis=1)
    hits_neg = jnp.any(reach & cls_neg[None, :], axis=1)
    unbounded = hits_pos | hits_neg
    inf_value = jnp.where(hits_pos & hits_neg, jnp.nan, jnp.where(hits_pos, jnp.inf, -jnp.inf))
    return recurrent | unbounded, unbounded, inf_value


def _solve_discounted(p_pi: jax.Array, r_pi: jax.Array, discount) -> jax.Array:
    """`(I - g P_pi)^-1 r_pi` for `0 <= g < 1`, by an LU factorisation that needs no pivoting.

    `M = I - g P_pi` is strictly diagonally dominant by rows with margin `1 - g` (P_pi is
    stochastic), so `M^T` is by columns, and Gaussian elimination with partial pivoting swaps
    no rows of it. Factorising `M^T = L U` and solving `U^T L^T v = r` therefore never needs
    the permutation, whose construction from LAPACK's pivots is an S-step loop in XLA (15 ms
    at S = 2048, a third of the factorisation), and `M^T` is `M` in LAPACK's column-major
    order. Should rounding ever swap a row (a margin `1 - g` near the dtype's resolution), the
    result is NaN, which the solvers report as NONFINITE: never a silently wrong value.
    """
    s = r_pi.shape[0]
    diag = jnp.arange(s)
    # No `eye`: XLA materialised it and then copied it into column-major order (30 ms at
    # S = 2048, more than the factorisation's triangular solves).
    m_t = (-discount * p_pi.T).at[diag, diag].add(1.0)
    # `_linalg`: unbatched LAPACK calls, which never wait on XLA's thread pool.
    lu, pivots, _ = _linalg.lu(m_t)  # the permutation output is unused: XLA drops its loop
    y = _linalg.triangular_solve(lu, r_pi[:, None], lower=False, transpose_a=True)
    v = _linalg.triangular_solve(lu, y, lower=True, unit_diagonal=True, transpose_a=True)[:, 0]
    swapped = jnp.any(pivots != diag.astype(pivots.dtype))
    return jnp.where(swapped, jnp.nan, v)


def evaluate_policy(mdp: MDP, policy: StateVector, *, undiscounted: bool = True) -> StateVector:
    """Exact value of a deterministic policy: solve `(I - gamma P_pi) V = r_pi`.

    At `discount == 1` the system is singular for every policy once there is an absorbing
    state. There the stochastic-shortest-path convention applies: recurrent classes of `P_pi`
    with zero reward are pinned to 0; states that are in, or reach with positive probability,
    a recurrent class with non-zero reward (an improper policy: the episode never ends and
    reward keeps accumulating) get `+inf` / `-inf` (NaN if both signs are reachable). The
    remaining states are transient, so the reduced system is non-singular.

    Args:
      mdp: one MDP.
      policy: `[S]` int actions.
      undiscounted: static; `False` promises `discount < 1` and skips the `O(S^3 log S)`
        structure analysis that discount 1 needs. With `True` the analysis runs and is used
        only where `discount == 1`.

    Returns:
      `[S]` V^pi.

    Sparse transitions: for `undiscounted=False` the system is solved by GMRES through the
    policy operator (`jaxmdp._krylov`; no `[S, S]` matrix), to a relative residual of a few
    ulp; callers certify from an actual backup. With `undiscounted=True` the chain analysis
    needs `P_pi` as a matrix: it is materialised for `S <= DENSE_CHAIN_MAX`, and a larger
    sparse MDP raises (see `chain_matrix`).
    """
    return _evaluate_policy(mdp, policy, undiscounted, differentiable=True)


def evaluate_policy_undifferentiated(
    mdp: MDP, policy: StateVector, *, undiscounted: bool
) -> StateVector:
    """`evaluate_policy` for inputs that are never differentiated (policy iteration's loop,
    on a `stop_gradient` MDP): the sparse form's GMRES runs without `custom_linear_solve`,
    which under `vmap` only costs tracing (`jaxmdp._krylov.policy_system`)."""
    return _evaluate_policy(mdp, policy, undiscounted, differentiable=False)


def _evaluate_policy(mdp: MDP, policy, undiscounted: bool, differentiable: bool):
    """`evaluate_policy`; `differentiable=False`: `evaluate_policy_undifferentiated`."""
    op = ops.policy_operator(mdp.transitions, policy)
    r_pi = policy_rewards(mdp, policy)
    if not op.dense and not undiscounted:
        return _krylov.policy_system(op, r_pi, mdp.discount, differentiable=differentiable)
    p_pi = chain_matrix(op, "evaluating a policy where the discount may be 1")
    s = r_pi.shape[0]
    eye = jnp.eye(s, dtype=p_pi.dtype)
    if not undiscounted:
        return _solve_discounted(p_pi, r_pi, mdp.discount)
    pinned, unbounded, inf_value = _undiscounted_structure(p_pi, r_pi)
    at_one = mdp.discount >= 1
    pinned = pinned & at_one
    unbounded = unbounded & at_one
    m = jnp.where(pinned[:, None], eye, eye - mdp.discount * p_pi)
    v = _linalg.solve(m, jnp.where(pinned, 0.0, r_pi))  # see `_linalg`
    return jnp.where(unbounded, inf_value, v)
