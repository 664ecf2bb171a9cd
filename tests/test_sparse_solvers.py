"""Every solver on the sparse transitions form: against a NumPy reference and against the
dense form of the same MDP, single and batched, float32 and float64.

Sparse MDPs here have duplicate successors and padding slots (both legal). Their dense
equivalent is built in NumPy (`np.add.at`), independently of `jaxmdp.to_dense`. The dense
and sparse forms are different programs (a gather-sum versus a dense contraction; GMRES
versus an LU factorisation in policy iteration), so values agree within rounding
(`rounding_allowance`), while iteration counts, statuses and policies agree exactly (random
MDPs have no ties, and tolerances stay clear of the precision floor). One shape (S=6, A=3,
K=3) throughout, so each solver compiles a handful of programs.
"""

from __future__ import annotations

import dataclasses

import extra_solvers_reference as xref
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest
from _compare import assert_same_within_rounding
from hypothesis import HealthCheck, given, settings
from solvers_list import (
    ALL_SOLVERS,
    has_tol,
    promised_error,
    promised_policy_loss,
    rounding_allowance,
    solver_id,
)

import jaxmdp

S, A, K = 6, 3, 3
SOLVERS = [
    *ALL_SOLVERS,
    jaxmdp.SoftValueIteration(temperature=0.5, tol=1e-6),
    jaxmdp.RelativeValueIteration(tol=1e-6),
]
ALL = pytest.mark.parametrize("solver", SOLVERS, ids=solver_id)
MAX_ITERS = 50_000


def sparse_arrays(rng, batch=(), *, unavailable=0.2):
    """`(next_states [*batch, S, A, K], probs, rewards [*batch, S, A])` in NumPy: successors
    drawn with repetition (duplicates), and the last slot padding in about half the rows."""
    ns = rng.integers(0, S, size=(*batch, S, A, K)).astype(np.int32)
    pr = rng.dirichlet(np.ones(K), size=(*batch, S, A))
    pad = rng.random((*batch, S, A)) < 0.5
    pr[..., 0] += np.where(pad, pr[..., -1], 0.0)
    pr[..., -1] = np.where(pad, 0.0, pr[..., -1])
    ns[..., -1] = np.where(pad, 0, ns[..., -1])
    R = rng.standard_normal((*batch, S, A))
    off = (rng.random(R.shape) < unavailable) & (np.arange(A) != 0)
    return ns, pr, np.where(off, -np.inf, R)


def dense_of(ns, pr):
    ns, pr = np.broadcast_arrays(ns, pr)
    out = np.zeros(ns.shape[:-1] + (S,))
    np.add.at(out, (*np.indices(ns.shape)[:-1], ns), pr)
    return out


def _np(x):
    return np.asarray(x, np.float64)


def _for(solver, dtype):
    """float32 comparisons at a tolerance clear of its precision floor."""
    if dtype == np.float32 and has_tol(solver):
        return dataclasses.replace(solver, tol=1e-3)
    return solver


# ---------------------------------------------------------------------------------------------
# Against the NumPy reference (float64, hypothesis-drawn sparse MDPs).


def _reference(solver, P, R, g):
    """`(V*, Q*)` from the NumPy references (the soft fixed point for soft VI)."""
    if isinstance(solver, jaxmdp.SoftValueIteration):
        t = solver.temperature
        V = xref.soft_value_iteration(P, R, g, t)
        return V, R + g * (P @ V)
    V, _, Q = ref.policy_iteration(P, R, g)
    return V, Q


DISCOUNTED = [s for s in SOLVERS if not isinstance(s, jaxmdp.RelativeValueIteration)]


@pytest.mark.parametrize("solver", DISCOUNTED, ids=solver_id)
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), g=st.sampled_from([0.0, 0.5, 0.9, 0.99]))
def test_matches_numpy_reference(solver, seed, g):
    """float64, hypothesis-drawn sparse MDPs (duplicates, padding, unavailable actions)."""
    rng = np.random.default_rng(seed)
    ns, pr, R = sparse_arrays(rng)
    P = dense_of(ns, pr)
    with jax.enable_x64(True):
        mdp = jaxmdp.make_mdp(jaxmdp.SparseTransitions(ns, pr), R, g)
        sol = jaxmdp.solve(mdp, solver, max_iters=MAX_ITERS)
    V, Q = _reference(solver, P, R, g)
    allow = rounding_allowance(np.float64, S, np.abs(V).max(), g)
    err = np.abs(_np(sol.values) - V).max()
    assert int(sol.status) == jaxmdp.Status.SUCCESS
    assert err <= promised_error(solver) + allow
    assert err <= float(sol.error_bound) + allow
    avail = np.isfinite(R)
    assert np.abs(_np(sol.q_values)[avail] - Q[avail]).max() <= promised_error(solver) + allow
    if not isinstance(solver, jaxmdp.SoftValueIteration):  # soft: no greedy-optimality claim
        V_pi = ref.evaluate_policy(P, R, g, np.asarray(sol.policy))
        assert np.all(V_pi >= V - promised_policy_loss(solver) - allow)


# ---------------------------------------------------------------------------------------------
# Against the dense form of the same MDP.


def _layouts(rng, layout):
    """`(sparse MDP arrays, dense MDP arrays)` as NumPy tuples `(P, R, g)`."""
    if layout == "single":
        ns, pr, R = sparse_arrays(rng)
        g = 0.9
    elif layout == "shared":  # one P for a batch of rewards and discounts
        ns, pr, _ = sparse_arrays(rng)
        _, _, R = sparse_arrays(rng, (5,))
        g = rng.uniform(0.5, 0.95, size=5)
    else:  # "structure": successors shared, probabilities [3, 1], rewards [1, 4]: batch (3, 4)
        ns, pr, _ = sparse_arrays(rng, (3, 1))
        ns = ns[0, 0]
        _, _, R = sparse_arrays(rng, (1, 4))
        g = rng.uniform(0.5, 0.95, size=(3, 4))
    return (ns, pr, R, g), (dense_of(ns, pr), R, g)


def _same(sparse, dense, dtype, g_max):
    """The same answers within rounding. Two different programs (gathers vs a dense product,
    another summation order): a member whose stopping statistic sits next to its
    threshold may stop one sweep apart; both results are then within their own certified
    bounds of V*, so within the sum of the two of each other. In float32 a member at the
    precision floor may also swap SUCCESS / PRECISION_LIMITED, and a policy may differ at a
    tie up to rounding: the repo's stated bound (`tests/_compare.py`) decides there."""
    if np.dtype(dtype) == np.float32:
        assert_same_within_rounding(sparse, dense, g_max, at_floor=True, path_may_differ=True)
        return
    for name in ("policy", "status"):
        np.testing.assert_array_equal(getattr(sparse, name), getattr(dense, name), err_msg=name)
    allow = rounding_allowance(dtype, S, np.abs(_np(dense.values)).max(), g_max)
    iters = np.asarray(sparse.num_iters) - np.asarray(dense.num_iters)
    assert np.abs(iters).max() <= 1, iters
    if iters.any():
        bound = _np(sparse.error_bound) + _np(dense.error_bound) + allow
        for name in ("values", "q_values"):
            a, b = _np(getattr(sparse, name)), _np(getattr(dense, name))
            with np.errstate(invalid="ignore"):  # -inf - -inf on unavailable actions
                diff = np.where(np.isfinite(b), np.abs(a - b), 0.0)
            assert (diff <= bound.reshape(bound.shape + (1,) * (a.ndim - bound.ndim))).all()
        return
    for name in ("values", "q_values", "error_bound"):
        a, b = _np(getattr(sparse, name)), _np(getattr(dense, name))
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b), err_msg=name)
        ok = np.isfinite(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=allow, err_msg=name)


# One cell per compiled path (each cell compiles a sparse and a dense program). float64: a
# single MDP and a batch sharing P, for every solver class; the sup rule of value iteration
# runs the span rule's code with another stopping statistic (held to its promise on the
# sparse form in `test_matches_numpy_reference`), so it runs once, on the single MDP.
# float32: the single MDP, for the classes whose sparse step has its own arithmetic where
# float32 rounding shows (the gather backup, policy iteration's GMRES, Gauss-Seidel's
# in-place sweep, Anderson's mixing); modified PI, soft and relative VI reuse that backup
# and are compared in float64. The 2-D batch with shared successors and per-member
# probabilities runs three solvers whose transitions reads differ (value iteration's
# backup, policy iteration's GMRES evaluation, modified PI's policy operator sweeps).
SUP = solver_id(SOLVERS[1])
CASES = [
    (s, ("float64", layout))
    for s in SOLVERS
    for layout in ("single", "shared")
    if not (solver_id(s) == SUP and layout == "shared")
]
FLOAT32 = (jaxmdp.PolicyIteration, jaxmdp.GaussSeidelValueIteration, jaxmdp.AndersonValueIteration)
CASES += [
    (s, ("float32", "single"))
    for s in SOLVERS
    if type(s) in FLOAT32 or solver_id(s) == solver_id(SOLVERS[0])
]
STRUCTURE = (jaxmdp.ValueIteration, jaxmdp.PolicyIteration, jaxmdp.ModifiedPolicyIteration)
CASES += [
    (s, ("float64", "structure")) for s in SOLVERS if type(s) in STRUCTURE and solver_id(s) != SUP
]


@pytest.mark.parametrize(
    "solver, case", CASES, ids=lambda x: "-".join(x) if isinstance(x, tuple) else solver_id(x)
)
@pytest.mark.programs  # the sparse and dense forms are different programs
def test_sparse_equals_dense(solver, case, rng):
    precision, layout = case
    dtype = np.dtype(precision)
    (ns, pr, R, g), (P, _, _) = _layouts(rng, layout)
    solver = _for(solver, dtype)
    # MAX_ITERS (static) as in `test_matches_numpy_reference`: the float64 single-MDP sparse
    # program is that test's, compiled once.
    with jax.enable_x64(dtype == np.float64):
        sparse_mdp = jaxmdp.make_mdp(jaxmdp.SparseTransitions(ns, pr), R, g)
        sparse = jaxmdp.solve(sparse_mdp, solver, max_iters=MAX_ITERS)
        dense = jaxmdp.solve(jaxmdp.make_mdp(P, R, g), solver, max_iters=MAX_ITERS)
    assert sparse.values.dtype == dtype
    batch = {"single": (), "shared": (5,), "structure": (3, 4)}[layout]
    assert sparse.values.shape == dense.values.shape == batch + (S,)
    done = (jaxmdp.Status.SUCCESS, jaxmdp.Status.PRECISION_LIMITED)
    assert np.isin(np.asarray(dense.status), done).all()
    _same(sparse, dense, dtype, float(np.max(g)))


def test_bad_members_get_their_own_status(rng):
    ns, pr, R = sparse_arrays(rng, (4,))
    R[1, 2, 0] = np.nan
    g = np.array([0.9, 0.9, 1.5, 0.9])
    mdp = jaxmdp.MDP(jaxmdp.SparseTransitions(jnp.asarray(ns), jnp.asarray(pr)), jnp.asarray(R), g)
    for solver in (jaxmdp.ValueIteration(), jaxmdp.PolicyIteration()):
        status = np.asarray(jaxmdp.solve(mdp, solver).status)
        st_ = jaxmdp.Status
        expected = [st_.SUCCESS, st_.NONFINITE, st_.INVALID_INPUT, st_.SUCCESS]
        np.testing.assert_array_equal(status, expected)


def test_compaction_ladder_on_sparse_members(rng):
    """256 members with their own sparse P through the ladder (`compact=True`) and without."""
    solver = jaxmdp.ModifiedPolicyIteration(tol=1e-8)
    with jax.enable_x64(True):
        ns, pr, R = sparse_arrays(rng, (256,))
        g = rng.uniform(0.3, 0.99, size=256)
        mdp = jaxmdp.make_mdp(jaxmdp.SparseTransitions(ns, pr), R, g)
        plain = jaxmdp.solve(mdp, solver, compact=False)
        ladder = jaxmdp.solve(mdp, solver, compact=True)
    _same(ladder, plain, np.float64, 0.99)


def test_sparse_gridworld_sweep_shares_one_sparse_p():
    """The lecture gridworld converted to the sparse form (the models helper owns the
    builders), swept over step rewards x discounts with one shared sparse P (`jaxmdp.sweep`
    and a direct batched solve), against the dense form."""
    from jaxmdp import models

    steps, discounts = np.linspace(-1, 0, 20), np.linspace(0.5, 0.99, 5)
    solver = jaxmdp.ValueIteration(tol=1e-8)
    with jax.enable_x64(True):
        world = models.gridworld(step_reward=-0.04, slip=0.2, discount=1.0)
        sparse_p = jaxmdp.to_sparse(world.transitions)
        assert sparse_p.num_successors == 3
        base = np.asarray(world.rewards)
        R = np.stack([np.where(base == -0.04, r, base) for r in steps])[:, None]
        g = discounts[None, :]
        sparse = jaxmdp.solve(jaxmdp.MDP(sparse_p, jnp.asarray(R), jnp.asarray(g)), solver)
        dense = jaxmdp.solve(jaxmdp.MDP(world.transitions, jnp.asarray(R), jnp.asarray(g)), solver)

        def build(step_reward, discount):
            rewards = jnp.where(world.rewards == -0.04, step_reward, world.rewards)
            return jaxmdp.MDP(sparse_p, rewards, discount)

        result = jaxmdp.sweep(build, solver, step_reward=steps, discount=discounts)
    assert result.depends["transitions"] == ()
    np.testing.assert_array_equal(np.asarray(sparse.status), jaxmdp.Status.SUCCESS)
    # Each within tol / 2 of V* (different programs may stop a sweep apart).
    allow = 1e-8 + rounding_allowance(np.float64, 11, 2.0, 0.99)
    np.testing.assert_allclose(_np(sparse.values), _np(dense.values), rtol=0, atol=allow)
    np.testing.assert_allclose(result.values, _np(dense.values), rtol=0, atol=allow)


def test_shared_sparse_batch_in_several_member_tiles():
    """A batch sharing one large sparse P is solved in member tiles (each transposed in and
    its results written back in place; the last tile overlaps its neighbour): every member's
    values, Q and policy land in its own slot. 40 members of S = 2^15 states (float32, A = 2)
    take 3 tiles at the tile budget of 16 MiB (and still 2 at twice that). Absorbing
    states, each listed in two slots (0.3 + 0.7), so V*(s) = max_a r(s, a) / (1 - g) and
    Q*(s, a) = r(s, a) + g V*(s) are known exactly for every member."""
    n, members = 1 << 15, 40
    rng = np.random.default_rng(3)
    ns = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None, None], (n, 2, 2))
    pr = np.broadcast_to(np.array([0.3, 0.7], np.float32), (n, 2, 2))
    R = rng.uniform(-1, 1, size=(members, n, 2)).astype(np.float32)
    g = np.linspace(0.3, 0.6, members).astype(np.float32)
    mdp = jaxmdp.MDP(jaxmdp.SparseTransitions(jnp.asarray(ns), jnp.asarray(pr)), R, g)
    v_star = R.max(-1).astype(np.float64) / (1 - g[:, None])
    q_star = R + g[:, None, None].astype(np.float64) * v_star[..., None]
    sol = jaxmdp.solve(mdp, jaxmdp.ValueIteration(tol=1e-3))  # one compile: ~3 s
    np.testing.assert_array_equal(np.asarray(sol.status), jaxmdp.Status.SUCCESS)
    bound = _np(sol.error_bound)[:, None]
    assert (np.abs(_np(sol.values) - v_star) <= bound).all()
    assert (np.abs(_np(sol.q_values) - q_star) <= bound[..., None]).all()
    np.testing.assert_array_equal(np.asarray(sol.policy), R.argmax(-1))
