"""Policy analysis on ONE MDP: exact values, action values, occupancy and stationary measures.

Every function takes a single MDP (`transitions [S, A, S]`, `rewards [S, A]`, `discount []`)
and a policy in either form:

- deterministic: `[S]` integer actions, `pi(s)`;
- stochastic: `[S, A]` float probabilities `pi(a | s)`, each row summing to 1.

The form is chosen from the policy's dtype (integer = deterministic), which is static, so
both work under `jit`. Rows are not checked (nothing raises inside `jit`); a stochastic
policy that puts mass on an unavailable action (reward `-inf`) gets value `-inf` there.

All functions are pure and jitted (`normalized` / `undiscounted` are static), have no
batch axes and batch with `jax.vmap`. For a batch of policies on one MDP, map the policy
only:

    jax.vmap(policy_values, in_axes=(None, 0))(mdp, policies)          # policies [B, S(, A)]

For a sweep of MDPs sharing `transitions` (e.g. `rewards [B, S, A]`, `discount [B]`):

    jax.vmap(policy_values, in_axes=(MDP(None, 0, 0), 0))(mdp, policies)

and for initial distributions `mus [B, S]` on one MDP and policy:

    jax.vmap(occupancy, in_axes=(None, None, 0))(mdp, policy, mus)

Discount 1. The chain `P_pi` is then analysed exactly (reachability by repeated squaring,
`O(S^3 log S)`): values follow `jaxmdp.bellman.evaluate_policy`'s stochastic-shortest-path
convention, occupancies count expected visits, and stationary distributions are Cesaro
limits (see each function). Functions taking `undiscounted` skip this analysis when it is
`False`, which promises `discount < 1`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxmdp import _krylov, _linalg, _operators  # _linalg: solves that never wait on XLA's pool
from jaxmdp._bellman import (
    _reachability,
    _undiscounted_structure,
    chain_matrix,
    evaluate_policy,
    q_values_extended,
)
from jaxmdp._mdp import MDP
from jaxmdp._typing import PolicyLike, StartLike, StateActionArray, StateVector

_PRECISION = lax.Precision.HIGHEST


def _dtype(mdp: MDP):
    dtype = jnp.result_type(_operators.dtype(mdp.transitions), mdp.rewards, mdp.discount)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return dtype


def is_stochastic(mdp: MDP, policy) -> bool:
    """Static: `True` for a `[S, A]` float policy, `False` for a `[S]` integer one.

    Raises:
      ValueError: if the policy's shape or dtype fits neither form.
    """
    S, A = mdp.num_states, mdp.num_actions
    shape, dtype = jnp.shape(policy), jnp.result_type(policy)
    if jnp.issubdtype(dtype, jnp.integer) and shape == (S,):
        return False
    if jnp.issubdtype(dtype, jnp.floating) and shape == (S, A):
        return True
    raise ValueError(
        f"policy must be a deterministic [S] = [{S}] integer array of actions or a "
        f"stochastic [S, A] = [{S}, {A}] float array of probabilities; got shape {shape} "
        f"and dtype {dtype}."
    )


def action_probabilities(mdp: MDP, policy) -> jax.Array:
    """`[S, A]` pi(a | s) for either policy form (a deterministic policy becomes one-hot)."""
    dtype = _dtype(mdp)
    if is_stochastic(mdp, policy):
        return jnp.asarray(policy, dtype)
    return jax.nn.one_hot(policy, mdp.num_actions, dtype=dtype)


def _policy_chain(mdp: MDP, policy):
    """`(operator, r_pi [S])` of a policy (any transitions form); see `policy_matrices`."""
    pi = action_probabilities(mdp, policy)
    used = pi > 0
    safe_r = jnp.where(used, mdp.rewards.astype(pi.dtype), 0.0)  # -inf * 0 would give NaN
    r_pi = jnp.sum(jnp.where(used, pi * safe_r, 0.0), axis=-1)
    return _operators.policy_operator(_operators.cast(mdp.transitions, pi.dtype), pi), r_pi


def policy_matrices(mdp: MDP, policy) -> tuple[jax.Array, jax.Array]:
    """The Markov reward process a policy induces.

    `P_pi(s, s') = sum_a pi(a | s) p(s' | s, a)` and `r_pi(s) = sum_a pi(a | s) r(s, a)`,
    where actions with `pi(a | s) = 0` contribute 0 even if their reward is `-inf`.

    Args:
      mdp: one MDP.
      policy: `[S]` int or `[S, A]` probabilities.

    Returns:
      `(P_pi [S, S], r_pi [S])`. Sparse transitions: `P_pi` is materialised (only up to
      `_bellman.DENSE_CHAIN_MAX` states; larger raise).
    """
    op, r_pi = _policy_chain(mdp, policy)
    return chain_matrix(op, "the explicit matrix of a policy"), r_pi


def _evaluate_chain(p_pi, r_pi, discount, undiscounted: bool) -> jax.Array:
    """`evaluate_policy`'s linear solve, for a given `(P_pi, r_pi)`."""
    s = r_pi.shape[0]
    eye = jnp.eye(s, dtype=p_pi.dtype)
    if not undiscounted:
        return _linalg.solve(eye - discount * p_pi, r_pi)
    pinned, unbounded, inf_value = _undiscounted_structure(p_pi, r_pi)
    at_one = discount >= 1
    pinned = pinned & at_one
    unbounded = unbounded & at_one
    m = jnp.where(pinned[:, None], eye, eye - discount * p_pi)
    v = _linalg.solve(m, jnp.where(pinned, 0.0, r_pi))
    return jnp.where(unbounded, inf_value, v)


@functools.partial(jax.jit, static_argnames=("undiscounted",))
def policy_values(mdp: MDP, policy: PolicyLike, *, undiscounted: bool = True) -> StateVector:
    """Exact value of a policy: solve `(I - gamma P_pi) V = r_pi`.

    A deterministic policy goes to `jaxmdp.bellman.evaluate_policy`; a stochastic one uses
    the same solve on `P_pi = sum_a pi(a|s) p(.|s, a)`, `r_pi = sum_a pi(a|s) r(s, a)` (see
    `policy_matrices`). At `discount == 1` the stochastic-shortest-path convention of
    `evaluate_policy` applies: zero-reward recurrent classes of `P_pi` are pinned to 0, and
    states in or reaching a recurrent class with non-zero reward get `+inf` / `-inf` (NaN
    where both signs are reachable).

    Sparse transitions: with `undiscounted=False` the system is solved by GMRES through the
    policy operator (restarted GMRES to a relative residual of a few ulp, so the values are
    within about `||residual|| / (1 - gamma)` of V^pi); with `undiscounted=True` (the
    default) the discount-1 analysis needs `P_pi` as a matrix, built for up to
    2,048 states (larger: pass `undiscounted=False`).

    Args:
      mdp: one MDP.
      policy: `[S]` int actions or `[S, A]` probabilities.
      undiscounted: static; `False` promises `discount < 1` and skips the `O(S^3 log S)`
        structure analysis that discount 1 needs.

    Returns:
      `[S]` V^pi.
    """
    if not is_stochastic(mdp, policy):
        return evaluate_policy(mdp, jnp.asarray(policy), undiscounted=undiscounted)
    op, r_pi = _policy_chain(mdp, policy)
    g = jnp.asarray(mdp.discount, r_pi.dtype)
    if not op.dense and not undiscounted:
        return _krylov.policy_system(op, r_pi, g)
    p_pi = chain_matrix(op, "policy_values where the discount may be 1 (undiscounted=True)")
    return _evaluate_chain(p_pi, r_pi, g, undiscounted)


@functools.partial(jax.jit, static_argnames=("undiscounted",))
def policy_q_values(mdp: MDP, policy: PolicyLike, *, undiscounted: bool = True) -> StateActionArray:
    """Exact action values of a policy, `Q^pi(s, a) = r(s, a) + gamma sum_s' p(s'|s,a) V^pi(s')`.

    Infinite entries of V^pi (discount 1, improper policy) propagate only through
    transitions with positive probability (no `0 * inf = NaN`).

    Args:
      mdp: one MDP.
      policy: `[S]` int actions or `[S, A]` probabilities.
      undiscounted: static; as in `policy_values`.

    Returns:
      `[S, A]` Q^pi; `-inf` for unavailable actions.
    """
    values = policy_values(mdp, policy, undiscounted=undiscounted)
    return q_values_extended(mdp, values)


def initial_distribution_vector(initial_distribution, num_states: int, dtype) -> jax.Array:
    """`[S]` probabilities from `[S]` probabilities or a scalar integer start state."""
    init = jnp.asarray(initial_distribution)
    if jnp.issubdtype(init.dtype, jnp.integer) and init.ndim == 0:
        return jax.nn.one_hot(init, num_states, dtype=dtype)
    if init.shape != (num_states,):
        raise ValueError(
            f"initial_distribution must be [S] = [{num_states}] probabilities or a scalar "
            f"integer start state; got shape {init.shape} and dtype {init.dtype}."
        )
    return init.astype(dtype)


class _Structure:
    """Recurrent classes of a chain (bool arrays), from its reachability closure."""

    def __init__(self, p_pi):
        s = p_pi.shape[0]
        reach = _reachability(p_pi > 0)
        self.reach = reach
        self.recurrent = jnp.all(~reach | reach.T, axis=1)
        self.same_class = reach & reach.T & self.recurrent[:, None] & self.recurrent[None, :]
        lower = jnp.tril(jnp.ones((s, s), dtype=bool), k=-1)  # lower[i, j] = j < i
        self.representative = self.recurrent & ~jnp.any(self.same_class & lower, axis=1)
        self.num_classes = jnp.sum(self.representative)


def _transient_visits(p_pi, mu, st: _Structure) -> jax.Array:
    """`[S]` expected visits to each transient state from `mu` (0 on recurrent states)."""
    transient = ~st.recurrent
    eye = jnp.eye(p_pi.shape[0], dtype=p_pi.dtype)
    m = jnp.where(transient[:, None], eye - p_pi.T, eye)
    return _linalg.solve(m, jnp.where(transient, mu, 0.0))


def _cesaro(p_pi, class_mass_at_rep, st: _Structure) -> jax.Array:
    """Stationary measure with the given mass on each recurrent class (indexed by its
    representative), 0 on transient states: within a class, `x P = x` on the class, and
    the class's entries sum to its mass."""
    s = p_pi.shape[0]
    eye = jnp.eye(s, dtype=p_pi.dtype)
    balance = p_pi.T - eye  # row s: sum_j x_j p(j, s) - x_s
    m = jnp.where(
        st.representative[:, None],
        st.same_class.astype(p_pi.dtype),
        jnp.where(st.recurrent[:, None], balance, eye),
    )
    b = jnp.where(st.representative, class_mass_at_rep, 0.0)
    return _linalg.solve(m, b)


def _cesaro_from(p_pi, mu, st: _Structure) -> jax.Array:
    """Cesaro limit `lim_T (1/T) sum_{t<T} mu P^t`."""
    visits = _transient_visits(p_pi, mu, st)
    inflow = mu + jnp.dot(p_pi.T, visits, precision=_PRECISION)  # first-entry mass, recurrent
    mass = jnp.dot(st.same_class.astype(p_pi.dtype), inflow, precision=_PRECISION)
    return _cesaro(p_pi, mass, st)


@functools.partial(jax.jit, static_argnames=("normalized", "undiscounted"))
def occupancy(
    mdp: MDP,
    policy: PolicyLike,
    initial_distribution: StartLike,
    *,
    normalized: bool = False,
    undiscounted: bool = True,
) -> StateVector:
    """Discounted state-occupancy measure `d(s) = sum_t gamma^t Pr(s_t = s)`, `s_0 ~ mu`.

    It solves `d = mu + gamma P_pi^T d`. Unnormalised (the default), `d` sums to
    `1 / (1 - gamma)` and `mu . V^pi = d . r_pi`. With `normalized=True` it returns
    `(1 - gamma) d`, a probability distribution.

    At `discount == 1`, `d(s)` is the expected number of visits to s: finite for transient
    states of `P_pi`, `+inf` for recurrent states reached with positive probability, 0 for
    the others. There `normalized=True` returns the limit of `(1 - gamma) d` as
    `gamma -> 1`: the Cesaro-limit distribution from `mu` (`stationary_distribution`).

    Args:
      mdp: one MDP.
      policy: `[S]` int actions or `[S, A]` probabilities.
      initial_distribution: `[S]` probabilities mu, or a scalar integer start state.
      normalized: static; see above.
      undiscounted: static; `False` promises `discount < 1` and skips the `O(S^3 log S)`
        chain analysis that discount 1 needs.

    Sparse transitions: as `policy_values` (GMRES on the transposed system with
    `undiscounted=False`; the chain analysis up to `_bellman.DENSE_CHAIN_MAX` states).

    Returns:
      `[S]` occupancy.
    """
    op, r_pi = _policy_chain(mdp, policy)
    dtype = r_pi.dtype
    mu = initial_distribution_vector(initial_distribution, mdp.num_states, dtype)
    g = jnp.asarray(mdp.discount, dtype)
    if not op.dense and not undiscounted:  # d = mu + g P_pi^T d, through the operator
        d = _krylov.policy_system(op, mu, g, transpose=True)
        return (1 - g) * d if normalized else d
    p_pi = chain_matrix(op, "occupancy where the discount may be 1 (undiscounted=True)")
    eye = jnp.eye(mdp.num_states, dtype=dtype)
    if not undiscounted:
        d = _linalg.solve(eye - g * p_pi.T, mu)
        return (1 - g) * d if normalized else d
    at_one = g >= 1
    g_safe = jnp.where(at_one, 0.0, g)  # keeps the discounted solve non-singular
    d = _linalg.solve(eye - g_safe * p_pi.T, mu)
    st = _Structure(p_pi)
    if normalized:
        d1 = _cesaro_from(p_pi, mu, st)
        return jnp.where(at_one, d1, (1 - g) * d)
    visits = _transient_visits(p_pi, mu, st)
    reached = jnp.any(st.reach & (mu > 0)[:, None], axis=0)
    d1 = jnp.where(st.recurrent, jnp.where(reached, jnp.inf, 0.0), visits)
    return jnp.where(at_one, d1, d)


@functools.partial(jax.jit, static_argnames=("normalized", "undiscounted"))
def state_action_occupancy(
    mdp: MDP,
    policy: PolicyLike,
    initial_distribution: StartLike,
    *,
    normalized: bool = False,
    undiscounted: bool = True,
) -> StateActionArray:
    """Discounted state-action occupancy `d(s, a) = d(s) pi(a | s)` (see `occupancy`).

    Unnormalised it sums to `1 / (1 - gamma)` and `mu . V^pi = sum_{s,a} d(s, a) r(s, a)`
    over actions with `pi(a | s) > 0`. Entries with `pi(a | s) = 0` are exactly 0.

    Args:
      mdp: one MDP.
      policy: `[S]` int actions or `[S, A]` probabilities.
      initial_distribution: `[S]` probabilities, or a scalar integer start state.
      normalized: static; as in `occupancy`.
      undiscounted: static; as in `occupancy`.

    Returns:
      `[S, A]` occupancy.
    """
    d = occupancy(
        mdp, policy, initial_distribution, normalized=normalized, undiscounted=undiscounted
    )
    pi = action_probabilities(mdp, policy)
    return jnp.where(pi > 0, d[:, None] * pi, 0.0)


@jax.jit
def stationary_distribution(
    mdp: MDP, policy: PolicyLike, initial_distribution: StartLike | None = None
) -> StateVector:
    """A stationary distribution `x` of the chain `P_pi`: `x P_pi = x`, `sum(x) = 1`.

    Which one, when the chain has several recurrent classes (it then has many):

    - with `initial_distribution` mu: the Cesaro limit `lim_T (1/T) sum_{t<T} mu P_pi^t`,
      the long-run fraction of time spent in each state. Each recurrent class gets the
      probability of being absorbed into it from mu; transient states get 0. It exists for
      every finite chain, periodic ones included.
    - without: the unique stationary distribution when `P_pi` has exactly one recurrent
      class (transient states allowed), and all-NaN otherwise, so that an ambiguous answer
      is never returned silently.

    The rewards and the discount play no part. Cost `O(S^3 log S)` (reachability closure by
    repeated squaring, then two `[S, S]` solves). Sparse transitions: `P_pi` is
    materialised for this, up to `_bellman.DENSE_CHAIN_MAX` states; larger chains raise
    (simulate them with `jaxmdp.rollouts` instead).

    Args:
      mdp: one MDP.
      policy: `[S]` int actions or `[S, A]` probabilities.
      initial_distribution: optional `[S]` probabilities, or a scalar integer start state.

    Returns:
      `[S]` stationary distribution.
    """
    op, _ = _policy_chain(mdp, policy)
    p_pi = chain_matrix(op, "stationary_distribution")
    st = _Structure(p_pi)
    if initial_distribution is not None:
        mu = initial_distribution_vector(initial_distribution, mdp.num_states, p_pi.dtype)
        return _cesaro_from(p_pi, mu, st)
    x = _cesaro(p_pi, jnp.ones(mdp.num_states, p_pi.dtype), st)
    return jnp.where(st.num_classes == 1, x, jnp.nan)
