"""What every solver must show (issue 2), parametrized over `solvers_list.ALL_SOLVERS`.

Compilation is the cost here (about a second per solver, shape, dtype and static option), so
the tests reuse a few shapes: random MDPs drawn by hypothesis with S in 1..8 and A in 1..4
are embedded into one padded `[8, 4]` shape (see `_embed`: the extra states copy state 0
and are unreachable, the extra actions are unavailable, so V* on the original states is
unchanged and the value-iteration differences `d` on the copies equal those on state 0,
so even the stopping rule sees the same statistic); the S = 1 / A = 1 edge shapes run
unpadded in `test_edge_shapes_match_reference`; the structural tests use S = 5, A = 3 in
float64.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest
from _compare import assert_same_within_rounding
from conftest import random_mdp_arrays
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

SOLVERS = pytest.mark.parametrize("solver", ALL_SOLVERS, ids=solver_id)
# One instance per solver class, for the structural tests (batching, broadcasting, jit,
# statuses, recompilation): a second stopping rule of the same class runs the same code
# there. The rules are each held to their promise in the reference tests (`SOLVERS`).
ONE_PER_CLASS = [
    s for i, s in enumerate(ALL_SOLVERS) if type(s) not in {type(t) for t in ALL_SOLVERS[:i]}
]
EACH_CLASS = pytest.mark.parametrize("solver", ONE_PER_CLASS, ids=solver_id)
PAD_S, PAD_A = 8, 4
S5, A3 = 5, 3
DISCOUNTS = [0.0, 0.5, 0.9, 0.99, 0.999]
# The sup rule contracts max|d| only by g per sweep: at g = 0.999, |V| ~ 10 and tol = 1e-6 it
# needs ~24,000 sweeps, more than the default max_iters of 10,000.
MAX_ITERS = 50_000

discounts = st.sampled_from(DISCOUNTS) | st.floats(0.0, 0.999)


@st.composite
def mdp_arrays(draw):
    """A random MDP in NumPy float64: `(P [S, A, S], R [S, A], discount)`."""
    S = draw(st.integers(1, PAD_S))
    A = draw(st.integers(1, PAD_A))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    P, R = random_mdp_arrays(
        rng,
        S,
        A,
        sparsity=draw(st.sampled_from([0.0, 0.5, 0.9])),
        unavailable=draw(st.sampled_from([0.0, 0.3, 0.7])),
        reward_scale=draw(st.sampled_from([1.0, 10.0])),
    )
    return P, R, draw(discounts)


def _embed(P, R, S_pad=PAD_S, A_pad=PAD_A):
    """Pad an `[S, A]` MDP to `[S_pad, A_pad]` without changing it.

    States S.. are copies of state 0 (same rows, same rewards) that nothing reaches; actions
    A.. are unavailable (reward -inf; their rows copy action 0 so they stay distributions).
    """
    S, A = R.shape
    Pp = np.zeros((S_pad, A_pad, S_pad))
    Rp = np.full((S_pad, A_pad), -np.inf)
    Pp[:S, :A, :S] = P
    Rp[:S, :A] = R
    Pp[:S, A:, :S] = P[:, :1, :]
    Pp[S:] = Pp[0]
    Rp[S:] = Rp[0]
    return Pp, Rp


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _single(mdp, i):
    """Member `i` (a tuple index into the batch shape) of a batched MDP, as its own MDP."""
    bshape = mdp.batch_shape

    def take(x, core):
        lead = np.ndim(x) - core
        idx = tuple(i[len(bshape) - lead + k] if np.shape(x)[k] != 1 else 0 for k in range(lead))
        return x[idx]

    return jaxmdp.MDP(take(mdp.transitions, 3), take(mdp.rewards, 2), take(mdp.discount, 0))


def _branches(solver) -> bool:
    """Whether the solver's path depends on comparing two computed numbers (Anderson's accept
    test), which rounding may flip in another program (`_compare.py`, `path_may_differ`)."""
    return isinstance(solver, jaxmdp.AndersonValueIteration)


def _member(sol, i):
    """Member(s) `i` (an index or a boolean mask over the batch) of a batched `Solution`."""
    return type(sol)(*(np.asarray(x)[i] for x in sol))


# ----------------------------------------------------------------------------------------
# The oracle itself: its two independent algorithms agree.


def test_reference_is_independent_of_jax():
    tree = ast.parse(pathlib.Path(ref.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.split(".")[0] in ("jax", "jaxlib", "jaxmdp")}


@settings(max_examples=25, deadline=None)
@given(mdp_arrays())
def test_reference_value_iteration_agrees_with_policy_iteration(case):
    P, R, g = case
    V, policy, q = ref.policy_iteration(P, R, g)
    tol = 1e-9 * (1 + np.abs(V).max())
    V_vi, _ = ref.value_iteration(P, R, g, tol=tol)
    np.testing.assert_allclose(V_vi, V, rtol=0, atol=2 * tol)
    np.testing.assert_allclose(ref.evaluate_policy(P, R, g, policy), V, rtol=0, atol=tol)
    assert np.all(np.isfinite(R[np.arange(len(policy)), policy]))


# ----------------------------------------------------------------------------------------
# (1) Agreement with the NumPy reference within the promised bound, float32 and float64.


def _assert_matches_reference(sol, solver, P, R, g, dtype, S_compiled):
    """`sol` solves the (possibly padded) MDP whose original block is `(P, R, g)`."""
    S, A = R.shape
    V_star, _, Q_star = ref.policy_iteration(P, R, g)
    allow = rounding_allowance(dtype, S_compiled, np.abs(V_star).max(), g)
    status = jaxmdp.Status(int(sol.status))
    bound = float(sol.error_bound)
    values = _np(sol.values)
    q = _np(sol.q_values)
    policy = np.asarray(sol.policy)

    for name in ("values", "q_values", "residual", "error_bound"):  # dtypes follow JAX's
        assert getattr(sol, name).dtype == dtype, name
    for name in ("policy", "status", "num_iters"):
        assert getattr(sol, name).dtype == np.int32, name
    if dtype == np.float64 or not has_tol(solver):
        assert status == jaxmdp.Status.SUCCESS, status
    else:
        assert status in (jaxmdp.Status.SUCCESS, jaxmdp.Status.PRECISION_LIMITED), status
    # SUCCESS certifies the promise; PRECISION_LIMITED certifies only the bound it reports.
    promised = promised_error(solver)
    if status == jaxmdp.Status.PRECISION_LIMITED:
        promised = max(promised, bound)

    err = np.abs(values[:S] - V_star).max()
    assert err <= promised + allow, (err, promised, allow)
    if dtype == np.float64:
        assert err <= bound + allow, ("error_bound understates the error", err, bound)
    # Padding copies state 0: its copies get state 0's value.
    np.testing.assert_allclose(values[S:], np.full(len(values) - S, values[0]), rtol=0, atol=allow)

    # Q: within the same bound where available, -inf exactly where unavailable.
    avail = np.isfinite(R)
    np.testing.assert_array_equal(np.isneginf(q[:S, :A]), ~avail)
    assert np.all(np.isneginf(q[:, A:]))
    assert np.abs(q[:S, :A][avail] - Q_star[avail]).max() <= promised + allow

    # The policy takes available actions only and is tol-optimal (evaluated exactly).
    assert np.all(avail[np.arange(S), policy[:S]])
    loss = promised_policy_loss(solver)
    if status == jaxmdp.Status.PRECISION_LIMITED:
        loss = max(loss, 2 * bound)
    V_pi = ref.evaluate_policy(P, R, g, policy[:S])
    assert np.all(V_pi >= V_star - loss - allow), (V_star - V_pi).max()


@SOLVERS
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=mdp_arrays())
def test_matches_reference(solver, dtype, case):
    P, R, g = case
    Pp, Rp = _embed(P, R)
    mdp = jaxmdp.make_mdp(Pp, Rp, g)  # NumPy float64 in, JAX's default float out
    assert mdp.transitions.dtype == mdp.rewards.dtype == mdp.discount.dtype == dtype
    sol = jaxmdp.solve(mdp, solver, max_iters=MAX_ITERS)
    _assert_matches_reference(sol, solver, P, R, g, dtype, PAD_S)


@EACH_CLASS
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (4, 1)], ids=str)
def test_edge_shapes_match_reference(solver, shape, rng):
    """S = 1 and A = 1 at their real shapes (float32, JAX's default)."""
    S, A = shape
    P, R = random_mdp_arrays(rng, S, A)
    for g in (0.0, 0.9):
        sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, g), solver, max_iters=MAX_ITERS)
        _assert_matches_reference(sol, solver, P, R, g, np.dtype(np.float32), S)


# ----------------------------------------------------------------------------------------
# (2) Eager and jitted runs agree.


@pytest.mark.programs
@EACH_CLASS
def test_eager_matches_jit(solver, rng):
    """The eager run dispatches every operation of every sweep from Python, so its cost is
    its number of sweeps: g = 0.5 (a few tens; over a hundred at g = 0.9) runs the same code.
    (Policy iteration's first policy, greedy after its initial sweeps, is already optimal
    here at either discount: one evaluation.)"""
    g = 0.5
    with jax.enable_x64(True):
        P, R = random_mdp_arrays(rng, S5, A3)
        mdp = jaxmdp.make_mdp(P, R, g)
        jitted = jaxmdp.solve(mdp, solver)
        with jax.disable_jit():
            eager = jaxmdp.solve(mdp, solver)
    assert int(jitted.num_iters) > 1 or not has_tol(solver)
    assert_same_within_rounding(eager, jitted, g, path_may_differ=_branches(solver))


# ----------------------------------------------------------------------------------------
# (3) A batch of 1,000 gives each member's own result.


@pytest.mark.programs
@EACH_CLASS
def test_batch_equals_one_at_a_time(solver, rng):
    B = 1000
    with jax.enable_x64(True):
        P, R = random_mdp_arrays(rng, S5, A3, batch=(B,))
        g = rng.uniform(0.5, 0.99, size=B)
        batch = jaxmdp.solve(jaxmdp.make_mdp(P, R, g), solver)
        assert batch.values.shape == (B, S5)
        assert np.all(np.asarray(batch.status) == jaxmdp.Status.SUCCESS)
        iters = np.asarray(batch.num_iters)
        assert len(np.unique(iters)) > 1, "members should need different iteration counts"
        for i in rng.choice(B, size=20, replace=False):
            own = jaxmdp.solve(jaxmdp.make_mdp(P[i], R[i], g[i]), solver)
            assert_same_within_rounding(
                _member(batch, i), own, g[i], path_may_differ=_branches(solver), err_msg=f"{i}"
            )


# ----------------------------------------------------------------------------------------
# (4) Shared transitions, multi-axis broadcasting, values0.


def _cap_past_the_last_level(iters, B, factor, capped=24):
    """A `max_iters` that stops the slowest ~`capped` members, and the sweep after which a
    compaction ladder (levels of 1/`factor` the size) has moved to the level holding them.

    Members with `iters <= cap` finish on their own (some in the first level, some after the
    gather); the rest reach the cap inside the last level."""
    order = np.sort(iters)
    last = next(k for k in range(int(order[-1]) + 1) if (iters > k).sum() <= B // factor)
    cap = min(max(int(order[-capped - 1]), last + 1), int(order[-1]) - 1)
    return max(cap, 1), last


def _assert_capped_batch_matches(batch, plain, iters, g, cap, solve_one, picks, path=False):
    """`batch` (run with `max_iters=cap`) against `plain` (uncapped, another program) and
    against one-at-a-time solves (`solve_one(i)`, capped) of the members `picks`."""
    done = iters <= cap
    assert done.any() and not done.all()
    assert_same_within_rounding(
        _member(batch, done),
        _member(plain, done),
        g[done],
        path_may_differ=path,
        err_msg="finished members",
    )
    np.testing.assert_array_equal(_member(batch, ~done).status, jaxmdp.Status.MAX_ITERATIONS)
    np.testing.assert_array_equal(_member(batch, ~done).num_iters, cap)
    for i in picks:
        own = solve_one(i)
        assert_same_within_rounding(_member(batch, i), own, g[i], path_may_differ=path, err_msg=i)


@pytest.mark.programs
@pytest.mark.parametrize(("S", "rule", "B"), [(S5, "span", 200), (64, "sup", 600)], ids=str)
def test_shared_fast_path_compaction_matches_member_solves(S, rule, B, rng):
    """The shared-P value iteration (batch-last for small dense P, batch-first from 64 states)
    gathers the members still running into smaller levels (batch-first: 600 -> 150 -> 37
    here) and scatters them back: every member must still get its own solve's iterations,
    status and policy, values and Q within rounding. Capped by `max_iters` where the last
    level runs, so members finish in every level and the slowest are capped in the last
    (batch-last has no ladder: there the cap only freezes the slowest members)."""
    with jax.enable_x64(True):
        P, R = random_mdp_arrays(rng, S, A3, batch=(B,))
        P = P[0]
        g = rng.uniform(0.0, 0.995, size=B)
        solver = jaxmdp.ValueIteration(tol=1e-8, rule=rule)
        mdp = jaxmdp.make_mdp(P, R, g)
        plain = jaxmdp.solve(mdp, solver, max_iters=5000)
        iters = np.asarray(plain.num_iters)
        cap, last_level = _cap_past_the_last_level(iters, B, 16)
        shared = jaxmdp.solve(mdp, solver, max_iters=cap)
        picks = [int(np.argmax(iters)), int(np.argmin(iters)), *rng.choice(B, 5, replace=False)]
        own = {
            i: jaxmdp.solve(jaxmdp.make_mdp(P, R[i], g[i]), solver, max_iters=cap) for i in picks
        }
    assert iters.max() >= 3 * iters.min()  # the ladder has something to compact
    if S >= 64:  # batch-first: members ran (finished, or reached the cap) in the last level
        assert last_level < cap
    _assert_capped_batch_matches(shared, plain, iters, g, cap, own.__getitem__, picks)


# Per-member transitions for every solver class (each has its own loop state to gather and
# scatter); shared transitions (a leaf the ladder never gathers, the same code for every
# solver) once. Not value iteration with shared P: that is the fast path's own ladder,
# tested above.
LADDER_CASES = [(s, False) for s in ONE_PER_CLASS] + [
    (s, True) for s in ONE_PER_CLASS if isinstance(s, jaxmdp.ModifiedPolicyIteration)
]


@pytest.mark.programs
@pytest.mark.parametrize(
    ("solver", "shared"),
    LADDER_CASES,
    ids=[f"{solver_id(s)}-{'shared' if sh else 'own'}" for s, sh in LADDER_CASES],
)
def test_compaction_ladder_members_match_their_own_solves(solver, shared, rng):
    """`compact=True`: a batch of 601 runs as one level until an eighth of its members still
    run, then those gather into a level of 75 (`jaxmdp._exec.ladder`; value iteration with shared
    P has its own, tested above). Every member must still get its own solve's iterations,
    status and policy, and its values within rounding, including the slowest members, capped
    by `max_iters` inside the second level. 601 is prime: no CPU tile size divides it, so
    every solver's batch is one program (tiles do not compact)."""
    B = 601
    with jax.enable_x64(True):
        P, R = random_mdp_arrays(rng, S5, A3, batch=(B,))
        P = P[0] if shared else P
        g = rng.uniform(0.0, 0.995, size=B)
        mdp = jaxmdp.make_mdp(P, R, g)
        plain = jaxmdp.solve(mdp, solver, max_iters=MAX_ITERS, compact=False)
        iters = np.asarray(plain.num_iters)
        cap, second_level = _cap_past_the_last_level(iters, B, 8)
        batch = jaxmdp.solve(mdp, solver, max_iters=cap, compact=True)

        def solve_one(i):
            one = jaxmdp.make_mdp(P if shared else P[i], R[i], g[i])
            return jaxmdp.solve(one, solver, max_iters=cap)

        picks = [int(np.argmax(iters)), int(np.argmin(iters)), *rng.choice(B, 5, replace=False)]
        _assert_capped_batch_matches(
            batch, plain, iters, g, cap, solve_one, picks, path=_branches(solver)
        )
    # And the ladder did run: one more loop level in the program. Checked on one solver
    # (two more traces): the plan builds the ladder around any solver's loop alike.
    if not shared and solver_id(solver) == solver_id(ONE_PER_CLASS[0]):

        def loops(compact):
            fn = lambda m: jaxmdp.solve(m, solver, compact=compact)  # noqa: E731
            with jax.enable_x64(True):
                return str(jax.make_jaxpr(fn)(mdp)).count("while[")

        assert loops(True) > loops(False)
    if has_tol(solver):
        assert iters.max() >= 3 * max(iters.min(), 1)  # the ladder has something to compact
        assert second_level < cap  # members ran in the second level


def test_compact_must_be_a_bool_or_none():
    mdp = jaxmdp.make_mdp(*random_mdp_arrays(np.random.default_rng(0), S5, A3), 0.9)
    with pytest.raises(TypeError, match="compact"):
        jaxmdp.solve(mdp, compact="yes")


@pytest.mark.programs
@EACH_CLASS
def test_multi_axis_batch_broadcasts(solver, rng):
    """rewards [4, 1, S, A] x discount [3] with shared transitions: batch shape (4, 3), each
    member its own solve's answer. With `transitions` shared the backup is one matrix-matrix
    product, whose summation order differs from a member's own matrix-vector product: equal
    within rounding, not bitwise (documented in `jaxmdp.solve`)."""
    with jax.enable_x64(True):
        P, R = random_mdp_arrays(rng, S5, A3, batch=(4, 1))
        P = P[0, 0]
        g = np.array([0.0, 0.7, 0.95])
        mdp = jaxmdp.make_mdp(P, R, g)
        assert mdp.batch_shape == (4, 3)
        sol = jaxmdp.solve(mdp, solver)
        for name, x in sol._asdict().items():
            assert x.shape[:2] == (4, 3), name
        V_star = np.stack([[ref.policy_iteration(P, R[i, 0], gj)[0] for gj in g] for i in range(4)])
        allow = rounding_allowance(np.float64, S5, np.abs(V_star).max(), g.max())
        np.testing.assert_allclose(
            _np(sol.values), V_star, rtol=0, atol=promised_error(solver) + allow
        )
        for i in range(4):
            for j in range(3):
                own = jaxmdp.solve(_single(mdp, (i, j)), solver)
                assert_same_within_rounding(
                    _member(sol, (i, j)), own, g[j], path_may_differ=_branches(solver)
                )

        # values0 = V* (batched [4, 3, S]): every member is done after one iteration.
        warm = jaxmdp.solve(mdp, solver, values0=jnp.asarray(V_star))
        np.testing.assert_array_equal(warm.status, jaxmdp.Status.SUCCESS)
        np.testing.assert_array_equal(warm.num_iters, 1)
        np.testing.assert_allclose(_np(warm.values), V_star, rtol=0, atol=allow)


# ----------------------------------------------------------------------------------------
# (5) No recompilation for new numbers of the same shapes.


class _CompileCounter:
    """Counts JAX's tracing and backend-compilation events (`jax.monitoring`)."""

    EVENTS = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/backend_compile_duration",
    )

    def __init__(self):
        self.events: list[str] = []

    def _listener(self, name, *args, **kwargs):
        if name in self.EVENTS:
            self.events.append(name)

    def __enter__(self):
        self.events.clear()
        jax.monitoring.register_event_duration_secs_listener(self._listener)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listener)


@EACH_CLASS
def test_no_recompile_for_new_numbers(solver, rng):
    with jax.enable_x64(True):
        # The counter sees a compilation (so a count of 0 below means something).
        with _CompileCounter() as counter:
            jax.jit(lambda x: x * 3 + 1)(jnp.arange(7.0)).block_until_ready()
        assert counter.events, "jax.monitoring reported no compilation events"

        def problem():
            P, R = random_mdp_arrays(rng, S5, A3, batch=(6,))
            return jaxmdp.make_mdp(P, R, rng.uniform(0.0, 0.99, size=6))

        first, second = problem(), problem()
        jax.block_until_ready(jaxmdp.solve(first, solver))
        new_solver = dataclasses.replace(solver, tol=solver.tol * 3) if has_tol(solver) else solver
        with _CompileCounter() as counter:
            jax.block_until_ready(jaxmdp.solve(second, new_solver))
        assert counter.events == []


# ----------------------------------------------------------------------------------------
# (6) Status codes and `check`.


def _forest(g=0.9):
    """pymdptoolbox's forest example (S=3, A=2) in jaxmdp's layout; the myopic policy is
    not optimal at g = 0.9, so no solver is done after one iteration."""
    P = np.zeros((3, 2, 3))
    P[:, 0, 0] = 0.1
    P[0, 0, 1] = P[1, 0, 2] = P[2, 0, 2] = 0.9
    P[:, 1, 0] = 1.0
    R = np.array([[0.0, 0.0], [0.0, 1.0], [4.0, 2.0]])
    return P, R


@EACH_CLASS
def test_max_iters_one_reports_max_iterations(solver):
    if isinstance(solver, jaxmdp.PolicyIteration):
        # its default first policy (greedy for one backup) is already optimal on this forest
        solver = dataclasses.replace(solver, initial_sweeps=0)
    with jax.enable_x64(True):
        P, R = _forest()
        mdp = jaxmdp.make_mdp(P, R, 0.9)
        sol = jaxmdp.solve(mdp, solver, max_iters=1)
        assert jaxmdp.Status(int(sol.status)) == jaxmdp.Status.MAX_ITERATIONS
        assert int(sol.num_iters) == 1
        with pytest.raises(jaxmdp.ConvergenceError, match="MAX_ITERATIONS"):
            jaxmdp.check(sol)
        full = jaxmdp.solve(mdp, solver)
        assert jaxmdp.check(full) is full
        assert int(full.num_iters) > 1


def _bad_batch():
    """Five MDPs built with `jaxmdp.MDP` (no validation): NaN rewards at 1 and 4, discount
    1.5 at 3."""
    rng = np.random.default_rng(7)
    P, R = random_mdp_arrays(rng, S5, A3, batch=(5,))
    R[1, 2, 0] = np.nan
    R[4, 0, 1] = np.nan
    g = np.array([0.9, 0.9, 0.5, 1.5, 0.9])
    return jaxmdp.MDP(jnp.asarray(P), jnp.asarray(R), jnp.asarray(g))


@EACH_CLASS
def test_bad_members_get_their_own_status(solver):
    with jax.enable_x64(True):
        sol = jaxmdp.solve(_bad_batch(), solver)
    S = jaxmdp.Status
    expected = [S.SUCCESS, S.NONFINITE, S.SUCCESS, S.INVALID_INPUT, S.NONFINITE]
    np.testing.assert_array_equal(sol.status, expected)
    np.testing.assert_array_equal(sol.ok, [True, False, True, False, False])
    assert np.all(np.isfinite(_np(sol.values)[[0, 2]]))


def test_check_names_counts_and_first_indices():
    with jax.enable_x64(True):
        sol = jaxmdp.solve(_bad_batch())
    with pytest.raises(jaxmdp.ConvergenceError) as info:
        jaxmdp.check(sol)
    msg = str(info.value)
    assert "3 of 5" in msg
    assert "NONFINITE: 2 (batch indices 1, 4)" in msg
    assert "INVALID_INPUT: 1 (batch indices 3)" in msg
    assert "SUCCESS" not in msg
    assert jaxmdp.check(sol, allow={jaxmdp.Status.NONFINITE, jaxmdp.Status.INVALID_INPUT}) is sol


def test_check_passes_on_success(rng):
    P, R = random_mdp_arrays(rng, S5, A3, batch=(3,))
    sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, 0.5))
    assert jaxmdp.check(sol) is sol


# ----------------------------------------------------------------------------------------
# (7) float32 and a tol below its resolution.


@SOLVERS
def test_float32_tol_below_resolution_is_precision_limited(solver, rng):
    if not has_tol(solver):
        pytest.skip("no tol: exact solver")
    g = 0.99
    P, R = random_mdp_arrays(rng, PAD_S, PAD_A)
    R = 1.0 + 0.1 * R  # values ~ 100
    V_star, _, _ = ref.policy_iteration(P, R, g)
    allow = rounding_allowance(np.float32, PAD_S, np.abs(V_star).max(), g)
    # MAX_ITERS (static) and the padded shape of `test_matches_reference`: its float32
    # programs (`tol` is an argument, not part of the program). Stopped early: well before
    # 10,000 sweeps (the default `max_iters`).
    with jax.enable_x64(False):
        mdp = jaxmdp.make_mdp(P, R, g)
        assert mdp.dtype == np.float32
        tight = jaxmdp.solve(mdp, dataclasses.replace(solver, tol=1e-9), max_iters=MAX_ITERS)
        loose = jaxmdp.solve(mdp, dataclasses.replace(solver, tol=0.1), max_iters=MAX_ITERS)
    assert jaxmdp.Status(int(tight.status)) == jaxmdp.Status.PRECISION_LIMITED
    assert int(tight.num_iters) < 10_000 // 4
    assert float(tight.error_bound) > 1e-9
    assert np.abs(_np(tight.values) - V_star).max() <= float(tight.error_bound) + allow
    assert jaxmdp.Status(int(loose.status)) == jaxmdp.Status.SUCCESS
    assert np.abs(_np(loose.values) - V_star).max() <= 0.05 + allow


# ----------------------------------------------------------------------------------------
# (8) dtypes: float32 by default, float64 under x64 (every field's dtype, for every solver
# and both dtypes, is checked in `test_matches_reference`).


def test_default_dtype_is_float32(rng):
    P, R = random_mdp_arrays(rng, S5, A3)
    with jax.enable_x64(False):
        sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, 0.9))
    assert sol.values.dtype == np.float32


@pytest.mark.programs
@pytest.mark.parametrize(
    "solver",
    [s for s in ONE_PER_CLASS if type(s) in (jaxmdp.ValueIteration, jaxmdp.PolicyIteration)],
    ids=solver_id,
)
def test_batch_of_one_with_size_one_transitions_axis(solver, rng):
    """`transitions [1, S, A, S]` with rewards `[1, S, A]`: a batch of one (it once crashed the
    shared-transitions path, which expected `[S, A, S]`). The axis is read by the layout,
    before any solver's step: value iteration (its own shared-transitions kernels) and one
    solver of the common member loop (each solver's step in that loop, shared transitions
    and a batch shape, is `test_multi_axis_batch_broadcasts`)."""
    with jax.enable_x64(True):
        P, R = random_mdp_arrays(rng, S5, A3, batch=(1,))
        one = jaxmdp.solve(jaxmdp.make_mdp(P, R, np.array([0.9])), solver)
        single = jaxmdp.solve(jaxmdp.make_mdp(P[0], R[0], 0.9), solver)
    assert one.values.shape == (1, S5) and one.q_values.shape == (1, S5, A3)
    assert_same_within_rounding(_member(one, 0), single, 0.9, path_may_differ=_branches(solver))
