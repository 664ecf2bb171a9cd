"""Strategy "shared_tiles" (issue 15): a batch sharing one small transitions array, solved in
cache-sized tiles of members, against one-at-a-time solves.

The reference is each member's own `ValueIteration` program (the single solve, vmapped: the
member loop of `jaxmdp._exec.member`), a different compiled program, so results agree within
rounding (`tests/_compare.py`); iterations and statuses per member exactly, except float32
members at the precision floor (`at_floor`). Three plans of the strategy run here: the CPU
plan, the plan a GPU would choose (forced, one wide tile) and host threads with overlapping
parts and tiles (the plan's thread split needs ~8,000 members; forced on a small batch).
"""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from _compare import assert_same_within_rounding

import jaxmdp
from jaxmdp._exec import plan as plan_mod
from jaxmdp._exec import shared_rows, shared_tiles, shared_tiles_host, threads
from jaxmdp._solve import DEFAULT_MAX_ITERS
from jaxmdp._solvers.base import SolveContext
from jaxmdp.models import gridworld

pytestmark = pytest.mark.programs

STEPS = 24
# 1.5: an invalid member (INVALID_INPUT, frozen) inside a tile of valid ones.
GAMMAS = (0.5, 0.9, 0.99, 1.0, 1.5)


def _world(x64: bool, sparse: bool = False):
    """The lecture world (slip 0.2) over step rewards x discounts: `[STEPS, 5]` members."""
    with jax.enable_x64(x64):
        steps = jnp.linspace(-2.0, 0.0, STEPS, endpoint=False)
        one = gridworld(step_reward=steps[:, None], slip=0.2)
        P = jaxmdp.to_sparse(one.transitions) if sparse else one.transitions
        g = jnp.broadcast_to(jnp.asarray(GAMMAS, one.rewards.dtype), (STEPS, len(GAMMAS)))
        R = jnp.broadcast_to(one.rewards, (STEPS, len(GAMMAS)) + one.rewards.shape[-2:])
        return jaxmdp.MDP(P, R, g)


def _one_at_a_time(mdp, solver):
    """Each member's own solve (no batch axis inside: the member program)."""
    flat_r = jnp.reshape(mdp.rewards, (-1,) + mdp.rewards.shape[-2:])
    flat_g = jnp.reshape(mdp.discount, (-1,))
    out = jax.vmap(lambda r, g: jaxmdp.solve(jaxmdp.MDP(mdp.transitions, r, g), solver))(
        flat_r, flat_g
    )
    return jax.tree.map(lambda x: jnp.reshape(x, mdp.discount.shape + x.shape[1:]), out)


def _plan(mdp, solver):
    return plan_mod.make_plan(plan_mod.gather_facts(mdp, None, solver))


@pytest.fixture(scope="module")
def float32_case():
    mdp = _world(False)
    solver = jaxmdp.ValueIteration(tol=1e-4)
    return mdp, solver, _one_at_a_time(mdp, solver)


def _check(got, ref, mdp):
    g = np.asarray(mdp.discount, np.float64)
    valid = g <= 1
    np.testing.assert_array_equal(np.asarray(got.status)[~valid], int(jaxmdp.Status.INVALID_INPUT))
    np.testing.assert_array_equal(np.asarray(ref.status)[~valid], int(jaxmdp.Status.INVALID_INPUT))
    sub = jax.tree.map(lambda x: np.asarray(x)[valid], got)
    ref_sub = jax.tree.map(lambda x: np.asarray(x)[valid], ref)
    assert_same_within_rounding(sub, ref_sub, g[valid], at_floor=True, err_msg="shared_tiles")


def test_cpu_plan_matches_one_at_a_time_solves(float32_case):
    mdp, solver, ref = float32_case
    assert _plan(mdp, solver).strategy == "shared_tiles"
    _check(jaxmdp.solve(mdp, solver), ref, mdp)


def test_gpu_plan_forced_on_cpu(float32_case, monkeypatch):
    mdp, solver, ref = float32_case
    monkeypatch.setenv(plan_mod.BACKEND_ENV, "gpu")
    p = _plan(mdp, solver)
    assert (p.strategy, p.threads, p.tile) == ("shared_tiles", 1, STEPS * len(GAMMAS))
    _check(jaxmdp.solve(mdp, solver), ref, mdp)


@pytest.mark.cpu_plan  # host threads are the CPU's
def test_host_threads_one_more_than_the_cores_unless_set(monkeypatch):
    """A shared batch of many tiles gets one host thread more than the cores (each thread
    spends part of its time copying in NumPy while the others' programs run); a batch of
    fewer tiles gets no more threads than tiles; `JAXMDP_CPU_THREADS` is taken as given."""
    one = gridworld(step_reward=-0.04, slip=0.2)
    solver = jaxmdp.ValueIteration(tol=1e-4)
    monkeypatch.delenv(plan_mod.THREADS_ENV, raising=False)
    monkeypatch.setattr(plan_mod, "cpu_threads", lambda on: 2)

    def plan_of(members):
        R = np.broadcast_to(np.asarray(one.rewards), (members,) + one.rewards.shape)
        return _plan(jaxmdp.MDP(one.transitions, R, np.full(members, 0.9, np.float32)), solver)

    per = (11 * 4 + 2 * 11) * 4  # rewards, V_k and V_(k-1) of one member (float32)
    limit = plan_mod.SHARED_TILE_BYTES // per // 64 * 64
    assert plan_of(10 * limit).threads == 2 + plan_mod.SHARED_EXTRA_THREADS
    assert plan_of(2 * limit).threads == 2  # two tiles' worth: two threads
    monkeypatch.setenv(plan_mod.THREADS_ENV, "2")
    assert plan_of(10 * limit).threads == 2


@pytest.mark.parametrize("kernel", ["first", "host"])
def test_host_threads_with_overlapping_parts_and_tiles(float32_case, kernel, monkeypatch):
    """Host-sliced tiles with either tile kernel (the host kernel is chosen from
    `FUSED_MEMBERS_MIN` members: lowered here to this batch of 120)."""
    mdp, solver, ref = float32_case
    if kernel == "host":
        monkeypatch.setattr(shared_tiles_host, "FUSED_MEMBERS_MIN", 1)
    monkeypatch.setattr(shared_tiles, "SORT_BY_DISCOUNT", True)  # tiles gather their members
    # 120 members in 2 parts of 60, tiles of 64 -> one tile of 60 each; tile 32 -> 2 tiles
    # per part, the second overlapping the first (28 members computed twice).
    p = _plan(mdp, solver)._replace(threads=2, tile=32)
    ctx = SolveContext(undiscounted=True, zero_start=True, shared_transitions=True)
    got = shared_tiles.solve(
        mdp, None, solver, max_iters=DEFAULT_MAX_ITERS, ctx=ctx, plan=p, run_many=threads.run_many
    )
    _check(got, ref, mdp)


@pytest.mark.parametrize("kernel", ["first", "host"])
def test_host_tiles_as_blocks_of_the_grid(float32_case, kernel, monkeypatch):
    """Host-sliced tiles as blocks of the `[24, 5]` grid (`shared_tiles_host.blocks`): 5 x 3
    members, the last block of each axis overlapping its neighbour (rows 20-24, columns
    2-4), on two threads, with either tile kernel (the host kernel's rewards copied batch
    last from the block)."""
    mdp, solver, ref = float32_case
    if kernel == "host":
        monkeypatch.setattr(shared_tiles_host, "FUSED_MEMBERS_MIN", 1)
    assert shared_tiles_host.blocks(mdp.batch_shape, 15) == (STEPS, len(GAMMAS), 5, 3)
    # Larger grids: blocks of whole vectors (multiples of 64 members), about square unless
    # an axis is short, at least half a tile; W1M and its progress chunks:
    blocks = shared_tiles_host.blocks
    assert blocks((1000, 1000), 3968) == (1000, 1000, 48, 72)
    assert blocks((256, 1000), 3904) == (256, 1000, 64, 50)
    assert blocks((1000, 10), 2560) == (1000, 10, 256, 10)  # W1: contiguous runs, in effect
    assert blocks((10, 1000), 3968) == (10, 1000, 10, 256)
    assert blocks((100,), 32) is None and blocks((10, 10), 100) is None
    p = _plan(mdp, solver)._replace(threads=2, tile=15)
    ctx = SolveContext(undiscounted=True, zero_start=True, shared_transitions=True)
    traces = []

    def listen(name, *args, fun_name="", **kwargs):
        if name.endswith("jaxpr_trace_duration") and fun_name.startswith("solve_"):
            traces.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        got = shared_tiles.solve(
            mdp,
            None,
            solver,
            max_iters=DEFAULT_MAX_ITERS,
            ctx=ctx,
            plan=p,
            run_many=threads.run_many,
        )
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    _check(got, ref, mdp)
    # The tile program traced once: the result shapes come from its own trace, which the
    # tiles' calls reuse (issue 15; an `eval_shape` of the function traced it twice).
    assert len(traces) <= 1, traces


def test_flat_grid_of_discounts_gets_the_blocks_of_its_grid(float32_case, monkeypatch):
    """A flat batch whose discounts repeat with a period (a raveled step reward x discount
    grid, W1M's layout) is tiled as blocks of that grid (`shared_tiles_host.period`): the
    same tiles, so the same bits, as the `[24, 5]` batch itself."""
    period = shared_tiles_host.period
    assert period(np.tile([0.5, 0.9, 0.99], 4)) == 3
    assert period(np.repeat([0.5, 0.9, 0.99], 4)) is None  # discount-major: contiguous is fine
    assert period(np.tile([0.5, 0.9, 0.99], 4)[:-1]) is None  # no whole period
    assert period(np.array([0.5, 0.9, 0.5, 0.7] * 3)) is None  # 0.5 recurs within the period
    assert period(np.array([0.5, 0.9, 0.99] * 3 + [0.5, 0.9, 0.7])) is None
    assert period(np.full(8, 0.9)) is None and period(np.array([0.5, 0.9])) is None
    mdp, solver, ref = float32_case
    flat = jaxmdp.MDP(
        mdp.transitions,
        jnp.reshape(mdp.rewards, (-1,) + mdp.rewards.shape[-2:]),
        jnp.reshape(mdp.discount, (-1,)),
    )
    assert period(np.asarray(flat.discount)) == len(GAMMAS)
    p = _plan(mdp, solver)._replace(threads=2, tile=15)
    ctx = SolveContext(undiscounted=True, zero_start=True, shared_transitions=True)
    seen = []
    blocks = shared_tiles_host.blocks

    def spy(batch, tile, align):
        seen.append(batch)
        return blocks(batch, tile, align)

    monkeypatch.setattr(shared_tiles_host, "blocks", spy)

    def run(m):
        return shared_tiles.solve(
            m, None, solver, max_iters=DEFAULT_MAX_ITERS, ctx=ctx, plan=p, run_many=threads.run_many
        )

    grid, got = run(mdp), run(flat)
    assert seen == [(STEPS, len(GAMMAS)), (STEPS * len(GAMMAS),), (STEPS, len(GAMMAS))]
    for name, a, b in zip(got._fields, got, grid, strict=True):
        np.testing.assert_array_equal(np.reshape(a, np.shape(b)), b, err_msg=name)
    _check(grid, ref, mdp)


@pytest.mark.parametrize("kernel", ["first", "host"])
def test_broadcast_leaves_stay_broadcast_with_the_same_bits(float32_case, kernel, monkeypatch):
    """A sweep's leaves as `jaxmdp.sweep` passes them: the rewards on the step rewards only
    (`[24, 1, S, A]`), the discount on the discounts only (`[1, 5]`) (W1M: 176 MB of rewards
    otherwise copied to every member, issue 15). The host tiles copy each block's members
    from broadcast views (`shared_tiles_host._full`), never the whole batch, and every tile
    gets the numbers it gets from the full arrays: the same tile programs on the same
    inputs, so the same bits."""
    mdp, solver, _ = float32_case
    if kernel == "host":
        monkeypatch.setattr(shared_tiles_host, "FUSED_MEMBERS_MIN", 1)
    small = jaxmdp.MDP(mdp.transitions, mdp.rewards[:, :1], mdp.discount[:1])
    assert small.batch_shape == mdp.batch_shape
    p = _plan(mdp, solver)._replace(threads=2, tile=15)
    ctx = SolveContext(undiscounted=True, zero_start=True, shared_transitions=True)
    views = []
    full_of = shared_tiles_host._full
    monkeypatch.setattr(
        shared_tiles_host, "_full", lambda *a: views.append(full_of(*a)) or views[-1]
    )

    def solve(m):
        return shared_tiles.solve(
            m, None, solver, max_iters=DEFAULT_MAX_ITERS, ctx=ctx, plan=p, run_many=threads.run_many
        )

    want = solve(mdp)
    views.clear()
    got = solve(small)
    rewards, discount = views
    assert rewards.shape == mdp.rewards.shape and rewards.strides[1] == 0  # a view
    assert discount.shape == mdp.discount.shape and discount.strides[0] == 0
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_numpy_leaves_stay_on_the_host(float32_case, monkeypatch):
    """NumPy leaves go to the host tiles as they are (W1M: 176 MB of rewards were first
    copied into a JAX array, ~0.3 s of a 0.5-0.8 s solve), with the same bits as JAX
    leaves: the same plan and tile programs on the same numbers."""
    from jaxmdp._exec import dispatch

    mdp, solver, _ = float32_case
    host = jaxmdp.MDP(*(np.asarray(x) for x in mdp))
    converted = []
    as_arrays = dispatch.as_arrays
    monkeypatch.setattr(dispatch, "as_arrays", lambda m: converted.append(1) or as_arrays(m))
    assert _plan(host, solver) == _plan(mdp, solver)
    got, want = jaxmdp.solve(host, solver), jaxmdp.solve(mdp, solver)
    assert not converted
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _rows_by_loop(prob, succ):
    """The static structure read row by row (the reference for `shared_rows.prepare`):
    entries `(slot, next state)` by action, state and slot; `unit` when every row has one
    entry of probability 1."""
    S, A, K = prob.shape
    entries, probs = [], []
    for a in range(A):
        per_action = []
        for s in range(S):
            row = []
            for k in range(K):
                if prob[s, a, k] != 0:
                    row.append((len(probs), int(succ[s, a, k])))
                    probs.append(prob[s, a, k])
            per_action.append(tuple(row))
        entries.append(tuple(per_action))
    unit = all(p == 1 for p in probs) and all(len(r) == 1 for per in entries for r in per)
    return entries, np.asarray(probs, prob.dtype), unit


def test_static_rows_are_the_rows_read_one_by_one():
    """`shared_rows.prepare` reads the structure in one vectorised pass: the same entries,
    slots, probabilities and `unit` flag as a loop over the rows, dense (float32, float64,
    with zeros) and sparse (padded slots), and only the count above the limit."""
    rng = np.random.default_rng(5)
    P = rng.dirichlet(np.ones(6), size=(6, 3))
    P[rng.random(P.shape) < 0.5] = 0.0
    P[..., 0] += P.sum(-1) == 0
    P /= P.sum(-1, keepdims=True)
    dense = [np.asarray(gridworld().transitions), P, P.astype(np.float32)]
    sparse = [jaxmdp.to_sparse(jnp.asarray(gridworld(slip=0.2).transitions))]
    for x in dense + sparse:
        if isinstance(x, np.ndarray):
            prob, succ = x, np.broadcast_to(np.arange(x.shape[-1]), x.shape)
        else:
            prob, succ = np.asarray(x.probs), np.asarray(x.next_states)
        entries, probs, unit = _rows_by_loop(prob, succ)
        got = shared_rows.prepare(x, 10**6)
        assert got.num_entries == len(probs)
        assert got.rows.entries == tuple(entries) and got.rows.unit == unit
        np.testing.assert_array_equal(got.probs, probs)
        assert got.probs.dtype == prob.dtype
        assert shared_rows._read(x, len(probs) - 1).rows is None  # (`prepare` may cache)
    assert shared_rows.prepare(dense[0], 10**6).rows.unit  # deterministic moves


def test_sparse_form_float64():
    with jax.enable_x64(True):
        mdp = _world(True, sparse=True)
        solver = jaxmdp.ValueIteration(tol=1e-8)
        assert _plan(mdp, solver).strategy == "shared_tiles"
        got = jaxmdp.solve(mdp, solver)
        ref = _one_at_a_time(_world(True), solver)  # the dense member program
        _check(got, ref, mdp)


@pytest.mark.parametrize(("rule", "x64"), [("span", False), ("sup", True)])
def test_host_kernel_matches_first_kernel_on_its_own_paths(rule, x64):
    """The host tiles' kernel (`shared_tiles_fused`) against the first kernel
    (`shared_tiles_kernel`, still the traced/accelerator path) on one tile, through what the
    public tests above do not reach: unavailable actions (-inf rewards: the masked rounding
    constants), a warm start, `max_iters` reached mid-tile, a NaN discount, and both rules
    (the status test is skipped on sweeps where no member can stop), float32 and float64."""
    with jax.enable_x64(x64):
        _compare_kernels(rule, np.float64 if x64 else np.float32)


def _both_kernels(P, r, g, v0, tol, st):
    """One tile (`r [T, S, A]` batch first) through the host kernel and the first kernel:
    `(host, first)` `Solution`s."""
    from jaxmdp._exec import shared_tiles_fused, shared_tiles_kernel

    dtype = r.dtype
    probs = jnp.asarray(shared_rows.prepare(P, plan_mod.SHARED_ROWS_MAX).probs, dtype)
    rows = shared_tiles._prob_rows(P, dtype)
    pc = shared_tiles_fused.p_consts(rows)
    r_last = np.ascontiguousarray(r.transpose(2, 1, 0))  # the host kernel's layout
    new = shared_tiles_fused.tile_program(probs, pc, r_last, g, v0, tol, st=st)
    ref = shared_tiles_kernel.tile_program(probs, rows, r, g, v0, tol, st=st)
    return jaxmdp.Solution(*new), jaxmdp.Solution(*ref)


def _static(P, rule, max_iters, zero_start):
    from jaxmdp._exec import shared_tiles_kernel

    rows = shared_rows.prepare(P, plan_mod.SHARED_ROWS_MAX).rows
    return shared_tiles_kernel.Static(rows, rule, max_iters, zero_start, False, 0)


def _compare_kernels(rule, dtype):
    rng = np.random.default_rng(0)
    one = gridworld(step_reward=-0.04, slip=0.2)
    P = jnp.asarray(one.transitions, dtype)
    S, A = one.rewards.shape
    T = 64
    r = np.broadcast_to(np.asarray(one.rewards), (T, S, A)).copy()
    r = (r + rng.uniform(-0.5, 0.5, (T, S, A))).astype(dtype)
    r[: T // 2, 3, 1] = -np.inf  # action 1 unavailable in state 3 for half the tile
    g = rng.uniform(0.5, 0.99, T).astype(dtype)
    g[:4] = (1.0, 1.5, np.nan, 0.0)
    v0 = rng.uniform(-1, 1, (T, S)).astype(dtype)
    tol = jnp.asarray(1e-4 if dtype == np.float32 else 1e-9, dtype)
    new, ref = _both_kernels(P, r, g, v0, tol, _static(P, rule, 40, zero_start=False))
    assert int(jnp.sum(ref.status == int(jaxmdp.Status.MAX_ITERATIONS))) > 0  # cap reached
    np.testing.assert_array_equal(new.status[:3], ref.status[:3])  # g = 1, 1.5, NaN
    np.testing.assert_array_equal(new.num_iters[:3], ref.num_iters[:3])
    sl = slice(3, None)
    assert_same_within_rounding(
        jax.tree.map(lambda x: x[sl], new),
        jax.tree.map(lambda x: x[sl], ref),
        g[sl],
        err_msg=f"host kernel, {rule}",
    )
    np.testing.assert_array_equal(new.error_bound, ref.error_bound)  # rounded to 8 bits


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_runs_on_both_tile_kernels(dtype):
    """Half-precision batches take both tile kernels: the span's extremes are packed into
    one complex row (`shared_tiles_kernel._extremes`), whose parts are float32 or float64, so
    half values go through float32 and back. The host kernel's tile agrees with the first
    kernel's (status and iterations; values within the dtype's rounding), and `solve` runs."""
    one = gridworld(step_reward=-0.04, slip=0.2)
    P = jnp.asarray(one.transitions, dtype)
    S, A = one.rewards.shape
    T = 64
    rng = np.random.default_rng(0)
    r = np.asarray(one.rewards, np.float32)[None] + rng.uniform(-0.5, 0.5, (T, S, A))
    r = r.astype(dtype)
    g = rng.uniform(0.5, 0.9, T).astype(dtype)
    tol = jnp.asarray(0.1, dtype)
    new, ref = _both_kernels(P, r, g, None, tol, _static(P, "span", 200, zero_start=True))
    assert new.values.dtype == ref.values.dtype == dtype
    np.testing.assert_array_equal(new.status, ref.status)
    np.testing.assert_array_equal(new.num_iters, ref.num_iters)
    got, want = (np.asarray(x.values, np.float32) for x in (new, ref))
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2)
    out = jaxmdp.solve(jaxmdp.MDP(P, r, g), jaxmdp.ValueIteration(tol=0.1))
    assert out.values.dtype == dtype and int(out.num_iters.min()) >= 1


def test_host_kernel_compiles_its_epilogue_once_and_no_row_reshapes():
    """Two forms that cost the host kernel's compile most of its time (issue 15, DECISIONS
    24), checked on its jaxpr (traced only): the results' `cond` holds the epilogue in one
    branch only (the other is zeros), and the rounding chains take `[1, 1, T]` slices of the
    rewards, never rows squeezed to `[T]` (XLA's reshape-mover moved such reshapes one link
    of a chain per run of its fixed-point pipeline)."""
    from jaxmdp._exec import shared_tiles_fused, shared_tiles_kernel

    one = gridworld(step_reward=-0.04, slip=0.2)
    P = jnp.asarray(one.transitions, jnp.float32)
    S, A = one.rewards.shape
    T = 64
    prep = shared_rows.prepare(P, plan_mod.SHARED_ROWS_MAX)
    pc = shared_tiles_fused.p_consts(shared_tiles._prob_rows(P, np.float32))
    st = shared_tiles_kernel.Static(prep.rows, "span", 40, True, False, 0)
    f32 = jax.ShapeDtypeStruct
    jaxpr = jax.make_jaxpr(lambda *a: shared_tiles_fused.solve_tile(*a, st=st))(
        f32(prep.probs.shape, jnp.float32),
        pc,
        f32((A, S, T), jnp.float32),
        f32((T,), jnp.float32),
        None,
        f32((), jnp.float32),
    ).jaxpr
    results = [e for e in jaxpr.eqns if e.primitive.name == "cond"][-1]
    sizes = sorted(len(b.jaxpr.eqns) for b in results.params["branches"])
    assert sizes[0] <= 8 and sizes[1] > 100, sizes

    def squeezes(jp):  # rows squeezed to `[T]` (scalars of `pc` are fine)
        n = sum(e.primitive.name == "squeeze" and e.outvars[0].aval.ndim > 0 for e in jp.eqns)
        for e in jp.eqns:
            for sub in jax.extend.core.jaxprs_in_params(e.params):
                n += squeezes(sub)
        return n

    rounding = jax.make_jaxpr(shared_tiles_fused._rounding)(pc, f32((A, S, T), jnp.float32))
    assert squeezes(rounding.jaxpr) == 0


def test_first_kernel_stacks_q_in_fusible_concatenates():
    """The first kernel's Q (`shared_tiles_kernel._q_values`, issue 15, DECISIONS 24) is
    stacked from concatenates of at most 8 computed rows: XLA:CPU never fuses a concatenate
    of more operands, and the 44 rows of the lecture world, stacked by action (11 each), were
    each their own kernel (a third of the program's compile). Checked on the jaxpr (traced
    only): a stack or concatenate (HLO: a concatenate) of more than 8 operands may join rows
    that are already computed (the loop's results), not arithmetic."""
    from jaxmdp._exec import shared_rows, shared_tiles_kernel

    one = gridworld(step_reward=-0.04, slip=0.2)
    P = jnp.asarray(one.transitions, jnp.float32)
    S, A = one.rewards.shape
    T = 64
    prep = shared_rows.prepare(P, plan_mod.SHARED_ROWS_MAX)
    st = shared_tiles_kernel.Static(prep.rows, "span", 40, True, False, 0)
    f32 = jax.ShapeDtypeStruct
    closed = jax.make_jaxpr(lambda *a: shared_tiles_kernel.solve_batch_first(*a, st=st))(
        f32(prep.probs.shape, jnp.float32),
        f32((S, A, S), jnp.float32),
        f32((T, S, A), jnp.float32),
        f32((T,), jnp.float32),
        None,
        f32((), jnp.float32),
    )
    shaping = {"broadcast_in_dim", "reshape", "squeeze", "expand_dims", "convert_element_type"}
    arithmetic = {"add", "mul", "sub", "max", "min", "select_n"}

    def wide_arithmetic_concats(jp):
        made = {v: e for e in jp.eqns for v in e.outvars}

        def source(v):  # through the stacking's reshapes to the row's producer
            e = made.get(v)
            while e is not None and e.primitive.name in shaping:
                e = made.get(e.invars[0])
            return None if e is None else e.primitive.name

        found, wide = 0, 0
        for e in jp.eqns:
            if e.primitive.name in ("concatenate", "stack") and len(e.invars) > 8:
                wide += 1
                found += any(source(v) in arithmetic for v in e.invars)
            for sub in jax.extend.core.jaxprs_in_params(e.params):
                f, w = wide_arithmetic_concats(sub)
                found, wide = found + f, wide + w
        return found, wide

    found, wide = wide_arithmetic_concats(closed.jaxpr)
    assert wide >= 1  # V stacked for the results (11 rows of the loop's output): allowed
    assert found == 0
