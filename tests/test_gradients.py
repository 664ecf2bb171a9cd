"""Gradients of `solve` by the implicit function theorem, checked against finite differences.

float64 throughout; tight tolerances (tol=1e-10) so the returned policy is the optimal one and
central differences (random MDPs have no action ties) are valid. Compiling is what costs here,
so the tests share a few jitted programs (`_solve`, `_jvp`, `_grad`) across cases.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _compare import rounding_allowance
from solvers_list import ALL_SOLVERS, has_tol, solver_id

import jaxmdp
import jaxmdp.models

S, A, B = 5, 3, 3
TIGHT = 1e-10
# Every solver of the common list, with a tol tight enough for finite differences.
SOLVERS = [dataclasses.replace(s, tol=TIGHT) if has_tol(s) else s for s in ALL_SOLVERS]
EXACT = jaxmdp.PolicyIteration()  # values exact up to rounding: the cleanest differences


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _stochastic(rng, *shape):
    x = rng.random(shape) + 0.05
    return x / x.sum(-1, keepdims=True)


def _mdp(seed, batch=(), discount=0.9, unavailable=False):
    rng = np.random.default_rng(seed)
    P = jnp.asarray(_stochastic(rng, *batch, S, A, S))
    R = rng.normal(size=(*batch, S, A))
    if unavailable:  # action 1 unavailable in state 0
        R[..., 0, 1] = -np.inf
    R = jnp.asarray(R)
    return jaxmdp.MDP(P, R, jnp.full(batch, discount))


def _directions(seed, batch=(), only=None):
    """Random tangent directions (only one leaf nonzero if `only` names it); the transitions
    direction is a difference of two stochastic arrays, so rows keep summing to 1."""
    rng = np.random.default_rng(seed + 1000)
    dP = _stochastic(rng, *batch, S, A, S) - _stochastic(rng, *batch, S, A, S)
    d = jaxmdp.MDP(
        jnp.asarray(dP),
        jnp.asarray(rng.normal(size=(*batch, S, A))),
        jnp.asarray(rng.normal(size=batch)),
    )
    if only is None:
        return d
    return jaxmdp.MDP(*(x if k == only else jnp.zeros_like(x) for k, x in d._asdict().items()))


def _weights(seed):
    return jnp.asarray(np.random.default_rng(seed + 2000).normal(size=S))


@jax.jit
def _solve(mdp):
    sol = jaxmdp.solve(mdp, EXACT)
    return sol.values, sol.q_values


@jax.jit
def _jvp(mdp, d):
    """Forward mode: ((values, q), (dvalues, dq))."""
    return jax.jvp(_solve, (mdp,), (d,))


@jax.jit
def _grad(mdp, w):
    """Reverse mode: gradient of w . values w.r.t. every leaf."""
    return jax.grad(lambda m: jnp.sum(w * _solve(m)[0]))(mdp)


def _fd(mdp, d, h=1e-6):
    """Central differences of (values, q) along d."""
    plus = _solve(jaxmdp.MDP(*(x + h * dx for x, dx in zip(mdp, d, strict=True))))
    minus = _solve(jaxmdp.MDP(*(x - h * dx for x, dx in zip(mdp, d, strict=True))))
    return tuple((p - m) / (2 * h) for p, m in zip(plus, minus, strict=True))


def _contract(grad, d):
    return sum(jnp.vdot(g, x) for g, x in zip(grad, d, strict=True))


@pytest.mark.parametrize("field", ["rewards", "transitions", "discount"])
def test_directional_derivative_matches_finite_differences(field):
    mdp, d, w = _mdp(0), _directions(0, only=field), _weights(0)
    fd_v, fd_q = _fd(mdp, d)
    _, (dv, dq) = _jvp(mdp, d)  # forward mode
    rev = _contract(_grad(mdp, w), d)  # reverse mode
    assert np.max(np.abs(fd_v)) > 1e-2  # the check is not vacuous
    np.testing.assert_allclose(dv, fd_v, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dq, fd_q, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(rev, jnp.dot(w, fd_v), rtol=1e-6, atol=1e-8)


@pytest.mark.programs
def test_forward_values_unchanged_and_q_consistent_with_values():
    mdp, d = _mdp(1), _directions(1)
    sol = jaxmdp.solve(mdp, EXACT)
    (v, q), (dv, dq) = _jvp(mdp, d)
    # the jvp program and the plain solve are different programs: equal within rounding
    allow = rounding_allowance(np.float64, S, np.abs(sol.values).max(), 0.9)
    np.testing.assert_allclose(v, sol.values, rtol=0, atol=allow)
    np.testing.assert_allclose(q, sol.q_values, rtol=0, atol=allow)
    # at the greedy actions dQ = dV (the fixed-point equation, differentiated)
    np.testing.assert_allclose(
        jnp.take_along_axis(dq, sol.policy[:, None], -1)[:, 0], dv, rtol=1e-10, atol=1e-12
    )


def test_jacrev_wrt_rewards_shape_and_value():
    mdp = _mdp(2)
    jac = jax.jacrev(lambda r: _solve(mdp._replace(rewards=r))[0])(mdp.rewards)
    assert jac.shape == (S, S, A)
    # dV(s) / dr(s2, a) = [(I - g P_pi)^{-1}](s, s2) if a = pi(s2), else 0
    policy = jaxmdp.solve(mdp, EXACT).policy
    p_pi = np.asarray(jaxmdp.bellman.policy_transitions(mdp, policy))
    inv = np.linalg.inv(np.eye(S) - 0.9 * p_pi)
    expect = np.zeros((S, S, A))
    for s2 in range(S):
        expect[:, s2, int(policy[s2])] = inv[:, s2]
    np.testing.assert_allclose(jac, expect, rtol=1e-10, atol=1e-12)


# one per solver class (a second stopping rule of a class returns the same fixed point)
@pytest.mark.parametrize(
    "solver",
    [s for s in SOLVERS if s != EXACT and getattr(s, "rule", "span") == "span"],
    ids=solver_id,
)
def test_every_solver_gives_the_same_gradient(solver):
    # compared with the exact solver's (PolicyIteration); one action is unavailable (-inf)
    mdp, w = _mdp(3, unavailable=True), _weights(3)
    grad = jax.jit(jax.grad(lambda m: jnp.sum(w * jaxmdp.solve(m, solver).values)))(mdp)
    reference = _grad(mdp, w)
    assert all(np.all(np.isfinite(x)) for x in reference) and reference.rewards[0, 1] == 0
    for a, b in zip(grad, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-7)


def test_batched_rewards_and_discounts_with_shared_transitions():
    single, w = _mdp(4), _weights(4)
    R = jnp.asarray(np.random.default_rng(4).normal(size=(B, S, A)))
    g = jnp.asarray([0.5, 0.8, 0.9])
    batch = jaxmdp.MDP(single.transitions, R, g)  # transitions shared by the batch
    grad = _grad(batch, w)  # of sum_b w . V_b
    assert grad.transitions.shape == (S, A, S) and grad.rewards.shape == (B, S, A)
    parts = [_grad(jaxmdp.MDP(single.transitions, R[b], g[b]), w) for b in range(B)]
    np.testing.assert_allclose(grad.transitions, sum(p.transitions for p in parts), rtol=1e-10)
    np.testing.assert_allclose(grad.rewards, jnp.stack([p.rewards for p in parts]), rtol=1e-10)
    np.testing.assert_allclose(grad.discount, jnp.stack([p.discount for p in parts]), rtol=1e-10)
    # value iteration on a shared-transitions batch (the driver may take a fast path)
    vi = jaxmdp.ValueIteration(tol=TIGHT)
    grad_vi = jax.jit(jax.grad(lambda m: jnp.sum(w * jaxmdp.solve(m, vi).values)))(batch)
    for a, b in zip(grad_vi, grad, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-7)


def test_vmap_of_grad_over_a_batch_of_mdps():
    mdp, w = _mdp(5, batch=(B,)), _weights(5)
    grad = jax.vmap(_grad, in_axes=(0, None))(mdp, w)  # one gradient per member
    for b in range(B):
        member = _grad(jaxmdp.MDP(*(x[b] for x in mdp)), w)
        for x, y in zip(grad, member, strict=True):
            np.testing.assert_allclose(x[b], y, rtol=1e-10, atol=1e-12)


def test_discount_one_gridworld_step_reward_and_pinned_terminals():
    grid = jaxmdp.models.GridLayout(jaxmdp.models.RUSSELL_NORVIG_4X3)
    solver = jaxmdp.ValueIteration(tol=1e-12)

    @jax.jit
    def values(step):
        mdp = jaxmdp.models.gridworld(grid, step_reward=step, slip=0.2, discount=1.0)
        return jaxmdp.solve(mdp, solver).values

    step = jnp.asarray(-0.04)
    dv = jax.jacrev(values)(step)
    h = 1e-3  # V^pi is affine in the step reward: a larger step only damps the noise
    fd = (values(step + h) - values(step - h)) / (2 * h)
    np.testing.assert_allclose(dv, fd, rtol=1e-6, atol=1e-8)
    terminal = list(grid.terminal_states)
    dv = np.asarray(dv)
    np.testing.assert_array_equal(dv[terminal], 0.0)  # pinned (absorbing, zero reward)
    others = [s for s in range(grid.num_states) if s not in terminal]
    assert np.all(dv[others] > 0)  # expected number of steps to the exit


def test_second_derivative_wrt_discount():
    mdp, w = _mdp(6), _weights(6)

    def loss(g):
        return jnp.sum(w * _solve(mdp._replace(discount=g))[0])

    h = 1e-5
    fd = (
        _grad(mdp._replace(discount=mdp.discount + h), w).discount
        - _grad(mdp._replace(discount=mdp.discount - h), w).discount
    ) / (2 * h)
    second = jax.jvp(jax.grad(loss), (mdp.discount,), (jnp.ones(()),))[1]
    np.testing.assert_allclose(second, fd, rtol=1e-6)


@jax.tree_util.register_static
class _ViaProbabilities:
    """`PolicyIteration` whose IFT policy is handed over as `[S, A]` probabilities (one-hot),
    or (`implicit_policy = None`) a solver that declares itself not differentiable."""

    def __init__(self, differentiable=True):
        if not differentiable:
            self.implicit_policy = None

    def init(self, mdp, values0, ctx):
        return EXACT.init(mdp, values0, ctx)

    def step(self, mdp, state, ctx):
        return EXACT.step(mdp, state, ctx)

    def status(self, mdp, state, ctx):
        return EXACT.status(mdp, state, ctx)

    def result(self, mdp, state, ctx):
        return EXACT.result(mdp, state, ctx)

    def implicit_policy(self, mdp, result):
        return jax.nn.one_hot(result.policy, A, dtype=result.values.dtype)


def test_solver_protocol_implicit_policy_probabilities_and_opt_out():
    mdp, w = _mdp(8), _weights(8)
    grad = jax.grad(lambda m: jnp.sum(w * jaxmdp.solve(m, _ViaProbabilities()).values))(mdp)
    for a, b in zip(grad, _grad(mdp, w), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    opted_out = _ViaProbabilities(differentiable=False)
    with pytest.raises(NotImplementedError, match="_ViaProbabilities"):
        jax.grad(lambda m: jnp.sum(jaxmdp.solve(m, opted_out).values))(mdp)


def test_soft_value_iteration_gradient_matches_finite_differences():
    solver = jaxmdp.SoftValueIteration(temperature=0.5, tol=1e-12)
    if not hasattr(solver, "implicit_policy"):
        pytest.xfail(
            "SoftValueIteration needs `implicit_policy` (softmax of q / temperature); "
            "without it solve's gradients are the hard-max ones, which are wrong"
        )
    mdp, d = _mdp(9), _directions(9)

    def f(m):
        return jaxmdp.solve(m, solver).values

    h = 1e-6
    fd = (
        f(jaxmdp.MDP(*(x + h * dx for x, dx in zip(mdp, d, strict=True))))
        - f(jaxmdp.MDP(*(x - h * dx for x, dx in zip(mdp, d, strict=True))))
    ) / (2 * h)
    np.testing.assert_allclose(jax.jvp(f, (mdp,), (d,))[1], fd, rtol=1e-6, atol=1e-8)


def test_average_reward_solver_refuses_gradients():
    solver = jaxmdp.RelativeValueIteration()
    if getattr(solver, "implicit_policy", True) is not None:
        pytest.xfail(
            "RelativeValueIteration needs `implicit_policy = None`: its fixed point is "
            "not a discounted Bellman equation, so the default rule would be wrong"
        )
    with pytest.raises(NotImplementedError):
        jax.grad(lambda m: jnp.sum(jaxmdp.solve(m, solver).values))(_mdp(10))


@pytest.mark.programs
def test_gradients_through_the_compaction_ladder():
    """`compact=True` gathers running members into smaller levels: the gradients (implicit,
    at each member's fixed point) must be those of the plain batch. Anderson at 1e-9: its
    members' iteration counts spread, so the ladder really gathers (the gradient rule is the
    same for every solver)."""
    solver = jaxmdp.AndersonValueIteration(1e-9)
    rng = np.random.default_rng(3)
    B, S, A = 300, 5, 3
    with jax.enable_x64(True):
        P = jnp.asarray(rng.dirichlet(np.ones(S), size=(S, A)))
        R = jnp.asarray(rng.random((B, S, A)))
        g = jnp.asarray(rng.uniform(0.5, 0.99, B))

        def total(r, g, compact):
            mdp = jaxmdp.MDP(P, r, g)
            return jaxmdp.solve(mdp, solver, compact=compact).values.sum()

        grads = {c: jax.grad(total, argnums=(0, 1))(R, g, c) for c in (True, False)}
        for a, b in zip(grads[True], grads[False], strict=True):
            # dV/dr is (I - g P_pi)^-1: the rounding bound of a solve, at its own magnitude
            allow = rounding_allowance(np.float64, S, np.abs(b).max(), float(g.max()))
            np.testing.assert_allclose(a, b, rtol=0, atol=allow)
