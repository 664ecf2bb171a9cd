"""Gradients of `jaxmdp.solve` by the implicit function theorem (IFT).

The solvers' loops (`lax.while_loop`) carry no tangents: `solve` stops gradients on the MDP
before the loop, and reverse mode could not go through a while loop anyway. Instead, after
the loop, the returned values are tied back to the MDP by the fixed-point equation of the
returned greedy policy pi,

    V = r_pi + g P_pi V,        so        (I - g P_pi) dV = dr_pi + dg P_pi V + g dP_pi V,

and `Q = r + g P V` for the action values. Both are `jax.custom_jvp` rules whose tangent is
linear in the MDP's tangents and uses a linear solve (dense transitions: `jaxmdp._linalg.solve`;
sparse ones with discount < 1: GMRES through the policy operator, `jaxmdp._krylov`, whose
transpose is the same solve of the transposed system), so JAX can transpose it: forward mode
(`jvp`, `jacfwd`) and reverse mode (`grad`, `vjp`, `jacrev`) both work, under `jit` and
`vmap`, with respect to `rewards`, `transitions` and `discount`, for every solver (the rule
only needs the returned values and policy). The rules call themselves for their primal
outputs, so higher derivatives (e.g. `jax.hessian`) are those of the same equations with the
policy held fixed.

What the derivative means:
  - It is the derivative of V^pi, the value of the returned greedy policy, evaluated at the
    returned values. Away from ties the optimal policy is locally constant, V^pi = V*, and this
    is the gradient of the optimal value. At an action tie (two actions optimal in some state)
    V* is not differentiable (it is a max of smooth functions); the result is then the
    one-sided derivative in the directions that keep the returned policy optimal (the tie is
    broken as the solver broke it: lowest action index for the greedy argmax).
  - Accuracy: the derivative is exact for the returned values; those are within the solver's
    `tol` of V* (exact up to rounding for `PolicyIteration`), so the gradients of different
    solvers agree to about `tol / (1 - g)`.
  - It is computed whatever the member's `status`; it is only meaningful where the solve
    succeeded (`solution.ok`).
  - The start values `values0` and the solver's hyperparameters (`tol`, `temperature`, ...)
    get no gradient: the loop runs on stop-gradient inputs.
  - `transitions` tangents are taken as given: perturb along directions that keep each row
    summing to 1 (the gradient is that of the unconstrained formula `r + g P V`; project it
    onto the simplex's tangent space yourself if you need a constrained gradient).
  - Discount 1 (episodic problems): the same pinned system as `jaxmdp.bellman.evaluate_policy`
    (stochastic-shortest-path convention). States in zero-reward recurrent classes of P_pi
    (absorbing terminal states) are held at their value: their derivative is 0, and so is the
    derivative with respect to the rewards paid inside such a class (perturbing those would
    make the episode's value infinite). States with non-finite values (improper policies)
    also get derivative 0.
  - `q_values`: the derivative of `r + g P V` with V differentiated as above; unavailable
    actions (`-inf` rewards) and other non-finite entries get derivative 0.

Solvers with other fixed points (solver protocol, optional): a solver may define
`implicit_policy(mdp, result) -> [S] int or [S, A] probabilities`, the policy pi with
`dV(s) = sum_a pi(a | s) dQ(s, a)` at its fixed point, e.g. the softmax policy
`softmax(q / temperature)` for soft (entropy-regularised) value iteration; the system is then
`(I - g P_pi) dV = sum_a pi(a | .) dQ_partial` with `P_pi = sum_a pi(a | .) P(., a, .)`.
Without the method the returned greedy `result.policy` is used. A solver whose fixed point is
not a discounted Bellman equation (e.g. average reward) sets `implicit_policy = None`;
differentiating through it then raises `NotImplementedError`. Higher derivatives are exact
for deterministic policies; for stochastic ones the policy is held fixed in them.

Cost: nothing when no derivative is taken (both rules return their input unchanged). Under
differentiation, per MDP: one `P_pi` `[S, S]` (a gather; `O(S^2 A)` for a stochastic policy),
one `O(S^3)` dense LU solve and a few `O(S^2 A)` contractions (plus the `O(S^3 log S)`
structure analysis when some discount may be 1). Sparse transitions (discount < 1): no
`[S, S]` matrix; a GMRES solve costing a few hundred `O(S K)` operator products, and under
reverse mode the same for the transposed system. Where the discount may be 1 the sparse
form materialises `P_pi` for the structure analysis (up to `_bellman.DENSE_CHAIN_MAX`
states; beyond, tracing raises with the alternatives).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxmdp import _bellman, _krylov, _linalg, _operators  # _linalg: never waits on XLA's pool
from jaxmdp._mdp import MDP


def _finite(x: jax.Array) -> jax.Array:
    return jnp.where(jnp.isfinite(x), x, jnp.zeros((), x.dtype))


def _partial_q(mdp: MDP, dmdp: MDP, values: jax.Array) -> jax.Array:
    """`[S, A]` dr + dg P V + g dP V: the derivative of `r + g P V` with V held fixed."""
    v = _finite(values)
    ev = _bellman.expected_next_values(mdp, v)
    dev = _operators.tangent_expected(mdp.transitions, dmdp.transitions, v)
    return dmdp.rewards + dmdp.discount * ev + mdp.discount * dev


def _on_policy(x: jax.Array, policy: jax.Array) -> jax.Array:
    """`[S]` x(s, pi(s)) for an int policy, or sum_a pi(a | s) x(s, a) for probabilities
    (actions with probability 0 contribute 0, even where x is infinite)."""
    if jnp.issubdtype(policy.dtype, jnp.integer):
        return jnp.take_along_axis(x, policy[:, None], axis=-1)[:, 0]
    return jnp.sum(jnp.where(policy > 0, policy * x, jnp.zeros((), x.dtype)), axis=-1)


def _system(mdp: MDP, values: jax.Array, policy: jax.Array, undiscounted: bool):
    """`(M [S, S], free [S] bool)`: the IFT matrix `I - g P_pi` with pinned rows set to the
    identity, and the states whose derivative is not pinned to 0."""
    op = _operators.policy_operator(mdp.transitions, policy)
    p_pi = _bellman.chain_matrix(op, "the gradient of a solve where the discount may be 1")
    eye = jnp.eye(p_pi.shape[-1], dtype=p_pi.dtype)
    free = jnp.isfinite(values)
    if undiscounted:
        r_pi = _on_policy(mdp.rewards, policy)
        pinned, _, _ = _bellman._undiscounted_structure(p_pi, r_pi)
        free = free & ~(pinned & (mdp.discount >= 1))
    m = jnp.where(free[:, None], eye - mdp.discount * p_pi, eye)
    return m, free


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _implicit_values(mdp: MDP, values: jax.Array, policy: jax.Array, undiscounted: bool):
    return values


@_implicit_values.defjvp
def _implicit_values_jvp(undiscounted, primals, tangents):
    mdp, values, policy = primals
    dmdp = tangents[0]
    # The primal output through the rule itself, so that higher derivatives see V(mdp).
    v = _implicit_values(mdp, values, policy, undiscounted)
    b = _on_policy(_partial_q(mdp, dmdp, v), policy)
    op = _operators.policy_operator(mdp.transitions, policy)
    if not op.dense and not undiscounted:
        # Sparse, discount < 1: the same system through the policy operator (GMRES; its
        # transpose, for reverse mode, through `rmv`), no [S, S] matrix.
        free = jnp.isfinite(v)
        rhs = jnp.where(free, b, jnp.zeros((), b.dtype))
        return v, _krylov.policy_system(op, rhs, mdp.discount, free=free)
    m, free = _system(mdp, v, policy, undiscounted)
    dv = _linalg.solve(m, jnp.where(free, b, jnp.zeros((), b.dtype)))
    return v, dv


def implicit_values(
    mdp: MDP, values: jax.Array, policy: jax.Array, *, undiscounted: bool = True
) -> jax.Array:
    """Return `values` unchanged, differentiable w.r.t. `mdp` by the IFT (see module doc).

    Args:
      mdp: ONE MDP (`transitions [S, A, S]`, `rewards [S, A]`, `discount []`), carrying the
        tangents to propagate.
      values: `[S]` the solver's values (their own tangent, if any, is ignored: they are
        treated as a function of `mdp`).
      policy: `[S]` int, the returned greedy policy; or `[S, A]` float probabilities pi(a | s)
        of a stochastic policy whose Bellman equation the values satisfy to first order
        (d V(s) = sum_a pi(a | s) d Q(s, a); the softmax policy of soft value iteration).
      undiscounted: static; `False` promises `discount < 1` and skips the discount-1 structure
        analysis (as in `jaxmdp.bellman.evaluate_policy`).

    Returns:
      `values`, whose derivative is `(I - g P_pi)^{-1} (dr_pi + dg P_pi V + g dP_pi V)`.
    """
    if not jnp.issubdtype(policy.dtype, jnp.integer):
        policy = jax.lax.stop_gradient(policy)
    return _implicit_values(mdp, values, policy, bool(undiscounted))


@jax.custom_jvp
def implicit_q_values(mdp: MDP, values: jax.Array, q_values: jax.Array) -> jax.Array:
    """Return `q_values` unchanged, with the derivative of `r + g P V` (see module doc).

    `values` should come from `implicit_values`, so that its tangent is the IFT one; the
    forward value is the solver's `q_values`, exactly (no extra backup is computed).
    """
    return q_values


@implicit_q_values.defjvp
def _implicit_q_values_jvp(primals, tangents):
    mdp, values, q = primals
    dmdp, dvalues, _ = tangents
    out = implicit_q_values(mdp, values, q)
    dq = _partial_q(mdp, dmdp, values) + mdp.discount * _bellman.expected_next_values(
        mdp, jnp.where(jnp.isfinite(values), dvalues, jnp.zeros((), dvalues.dtype))
    )
    return out, jnp.where(jnp.isfinite(q), dq, jnp.zeros((), dq.dtype))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _not_differentiable(name: str, mdp: MDP, values: jax.Array) -> jax.Array:
    return values


@_not_differentiable.defjvp
def _not_differentiable_jvp(name, primals, tangents):
    raise NotImplementedError(
        f"gradients through jaxmdp.solve are not available for {name}: its fixed point is not "
        "a discounted Bellman equation the implicit-function rule knows (the solver sets "
        "`implicit_policy = None`). Stop gradients on the MDP, or use another solver."
    )


_default_policy = object()  # sentinel: the solver has no `implicit_policy` method


def implicit_solution(solver, mdp: MDP, result, *, undiscounted: bool = True):
    """`(values, q_values)` of a solver's `result`, unchanged, differentiable by the IFT.

    The policy in the IFT system comes from the solver protocol's optional method
    `solver.implicit_policy(mdp, result) -> [S] int or [S, A] probabilities`: the policy pi
    with `d V(s) = sum_a pi(a | s) d Q(s, a)` at the solver's fixed point. Without it,
    `result.policy` (the returned greedy policy, hard max). A solver whose fixed point is not
    a discounted Bellman equation sets `implicit_policy = None`: differentiating then raises
    `NotImplementedError` (at trace time) instead of returning a wrong derivative.

    Args:
      solver: the solver instance.
      mdp: ONE MDP carrying the tangents (the loop's MDP had its gradients stopped).
      result: the solver's `SolverResult`.
      undiscounted: static; as in `implicit_values`.
    """
    hook = getattr(solver, "implicit_policy", _default_policy)
    if hook is None:
        values = _not_differentiable(type(solver).__name__, mdp, result.values)
        return values, _not_differentiable(type(solver).__name__, mdp, result.q_values)
    if hook is _default_policy:
        policy = result.policy
    else:
        policy = hook(MDP(*(jax.lax.stop_gradient(x) for x in mdp)), result)
    values = implicit_values(mdp, result.values, policy, undiscounted=undiscounted)
    return values, implicit_q_values(mdp, values, result.q_values)
