"""`jaxmdp.sweep`: labelled grids of solves, shared transitions, chunking, tables, memory."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from _compare import assert_same_within_rounding

import jaxmdp
from jaxmdp import models

ROOT = Path(__file__).resolve().parents[1]
VI = jaxmdp.ValueIteration(tol=1e-6)
TILE = 256  # members per tile on CPU (jaxmdp._exec.plan.SWEEP_TILE)


@pytest.fixture
def sweep_tiles(monkeypatch):
    """Sweep tiles of `TILE` members wherever plans are made (a GPU/TPU plan's are 8,192):
    the chunking tests then check the same chunks under either plan, and under a GPU's
    each chunk is solved as that plan solves it (one wide tile, no host threads)."""
    from jaxmdp._exec import plan

    monkeypatch.setattr(plan, "SWEEP_TILE_ACCELERATOR", TILE)


def lecture(step_reward, discount):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)


def lecture_slip(step_reward, discount, slip):
    return models.gridworld(step_reward=step_reward, slip=slip, discount=discount)


# -- optimised-HLO reading (shapes of dots and of every instruction) -----------------------

_INSTR = re.compile(r"^\s*(?:ROOT\s+)?(%[\w.\-]+) = \w+\[([\d,]*)\]")
_DOT = re.compile(r"= \w+\[([\d,]*)\][^=]*? dot\((%[\w.\-]+), (%[\w.\-]+)\)")


def _dims(text):
    return tuple(int(d) for d in text.split(",") if d)


def hlo_shapes(hlo):
    return {m.group(1): _dims(m.group(2)) for m in map(_INSTR.match, hlo.splitlines()) if m}


def hlo_dots(hlo):
    shapes = hlo_shapes(hlo)
    return [(_dims(m.group(1)), shapes[m.group(2)], shapes[m.group(3)]) for m in _DOT.finditer(hlo)]


def is_shared_backup(dot, S, A, B):
    """`[S*A, S] x [S, B]` (any operand order/layout): P enters once, V carries the batch."""
    _, lhs, rhs = dot
    for p, v in ((lhs, rhs), (rhs, lhs)):
        if int(np.prod(p)) == S * A * S and B not in p and B in v and S in v:
            return True
    return False


# -- the headline: 10,000 grid worlds in one call --------------------------------------


@pytest.fixture(scope="module")
def lecture_10k():
    with jax.enable_x64(True):
        steps = np.linspace(-2.0, 0.0, 1000)
        discounts = np.linspace(0.91, 1.0, 10)
        result = jaxmdp.sweep(lecture, VI, step_reward=steps, discount=discounts)
        # per-variant solves of a subset (same program for every call: new numbers only)
        rng = np.random.default_rng(0)
        picks = [(0, 0), (999, 9), (0, 9), (999, 0)] + [
            (int(i), int(j))
            for i, j in zip(rng.integers(0, 1000, 24), rng.integers(0, 10, 24), strict=True)
        ]
        singles = {(i, j): jaxmdp.solve(lecture(steps[i], discounts[j]), VI) for i, j in picks}
    return result, singles


def test_sweep_of_10000_gridworlds_matches_per_variant_solves(lecture_10k):
    result, singles = lecture_10k
    assert result.shape == (1000, 10) and result.size == 10_000
    assert result.names == ("step_reward", "discount")
    assert result.axes["discount"][-1] == 1.0
    assert result.values.shape == (1000, 10, 11) and result.q_values.shape == (1000, 10, 11, 4)
    assert result.values.dtype == np.float64
    assert result.ok.all(), result.summary()
    assert result.depends == {
        "transitions": (),
        "rewards": ("step_reward",),
        "discount": ("discount",),
    }
    tol = VI.tol
    for (i, j), single in singles.items():
        assert int(single.status) == result.status[i, j] == jaxmdp.Status.SUCCESS
        # both within tol/2 of V* (discount < 1); at discount 1 both stop at max|d| < tol
        np.testing.assert_allclose(result.values[i, j], single.values, atol=tol, rtol=0)
        # the sweep's policy is tol-optimal under the single solve's Q
        q = np.asarray(single.q_values)
        chosen = np.take_along_axis(q, result.policy[i, j][:, None], axis=1)[:, 0]
        assert np.all(chosen >= q.max(axis=1) - tol), (i, j)


def test_summary_reports_policy_changes(lecture_10k):
    result, _ = lecture_10k
    labels, policies = result.distinct_policies()
    assert labels.shape == (1000, 10) and (labels >= 0).all()
    assert 2 <= len(policies) <= 20
    changes = result.policy_changes("step_reward")
    assert changes and all(0 <= i < 999 and 1 <= n <= 10 for i, n in changes)
    text = result.summary()
    assert f"{len(policies)} distinct optimal policies" in text
    assert "Along step_reward" in text and "discount=1:" in text
    assert "All members converged" in text


# -- sharing and what XLA runs -------------------------------------------------------------


def test_backup_is_one_matrix_matrix_product_in_optimised_hlo():
    S, A, B = 11, 4, 60  # one tile of 60 members (a sweep smaller than a tile)
    lowered = jaxmdp.lower_sweep(
        lecture, step_reward=np.linspace(-2, 0, 20), discount=np.linspace(0.9, 1, 3)
    )
    hlo = lowered.compile().as_text()
    dots = hlo_dots(hlo)
    assert any(is_shared_backup(d, S, A, B) for d in dots), dots
    # no instruction of the program holds B copies of the transitions
    sizes = {int(np.prod(s)) for s in hlo_shapes(hlo).values()}
    assert B * S * A * S not in sizes


def test_batched_transitions_are_detected_and_do_materialise():
    """The contrast: sweeping `slip` makes the transitions per member (and the check sees it)."""
    S, A, B = 11, 4, 8
    axes = dict(
        step_reward=np.array([-1.0, -0.5]), discount=np.array([0.9, 1.0]), slip=np.array([0.1, 0.3])
    )
    hlo = jaxmdp.lower_sweep(lecture_slip, **axes).compile().as_text()
    assert B * S * A * S in {int(np.prod(s)) for s in hlo_shapes(hlo).values()}
    assert not any(is_shared_backup(d, S, A, B) for d in hlo_dots(hlo))


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux /proc")
def test_shared_sweep_memory_far_below_the_copies():
    """1,024 variants of one 64-state, 8-action MDP (dense: the batch-first kernel, as from
    64 states up): copies would take 128 MiB."""
    S, A = 64, 8
    code = (
        "import json; from benchmarks.sweep_memory import measure; "
        f"m = measure({S}, {A}, 32); m.pop('dots'); print(json.dumps(m))"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    copies = m["copies_bytes"]
    assert copies == 1024 * S * A * S * 4
    assert m["status_ok"] == 1024
    assert m["peak_reset"]
    assert m["peak_increase_bytes"] < copies / 4, m
    assert m["xla_temp_bytes"] + m["xla_output_bytes"] < copies / 8, m
    # not even one tile's worth of copies exists; the contrast (P depends on a parameter)
    # really holds a copy per member of a tile
    # the largest array is the Q output ([B, S, A]); nothing holds a copy of P per member
    assert m["largest_array_elements"] <= 1024 * S * A, m
    assert m["xla_temp_bytes_if_copied"] >= 4 * TILE * S * A * S


# -- chunking ------------------------------------------------------------------------------


def assert_same_solutions(a, b):
    """Every member of sweeps `a` and `b` (same axes, other chunking): the same tile program
    computes it, inside other enclosing programs, so equal within rounding (`_compare.py`;
    on the machines tested the bits agree)."""
    assert a.names == b.names and a.shape == b.shape
    where = a.names.index("discount")
    g = np.reshape(a.axes["discount"], [-1 if k == where else 1 for k in range(len(a.shape))])
    assert_same_within_rounding(a.solution, b.solution, g)


@pytest.mark.programs
def test_chunked_equals_unchunked_with_shared_transitions(sweep_tiles):
    """Tiles of 256 members: every member is computed by the same tile program whatever the
    chunking."""
    axes = dict(step_reward=np.linspace(-2, 0, 200), discount=np.array([0.9, 0.99, 1.0]))
    solver = jaxmdp.ValueIteration(tol=1e-3)
    whole = jaxmdp.sweep(lecture, solver, **axes)
    assert (whole.num_chunks, whole.chunk_size) == (1, 3 * TILE)  # 600, padded to tiles
    assert whole.depends["transitions"] == ()
    chunked = jaxmdp.sweep(lecture, solver, chunk_size=300, progress=False, **axes)
    assert (chunked.num_chunks, chunked.chunk_size) == (3, TILE)
    assert_same_solutions(chunked, whole)
    # automatic chunking from a memory budget per device: the shared transitions, one tile's
    # working state and room for 1.5 tiles of parameters and results -> chunks of one tile
    shared_p = 2 * 11 * 4 * 11 * 4  # the estimate's shared part: transitions (+ a temporary)
    out = 4 * (11 + 44 + 2) + 4 * (11 + 2) + 2 * 4  # results and the two float32 parameters
    limit = shared_p + TILE * whole.bytes_per_member + TILE * out * 3 // 2
    auto = jaxmdp.sweep(lecture, solver, memory_limit=limit, **axes)
    assert (auto.num_chunks, auto.chunk_size) == (3, TILE)
    assert_same_solutions(auto, whole)


@pytest.mark.programs
def test_chunked_equals_unchunked_with_batched_transitions(capsys, sweep_tiles):
    axes = dict(
        step_reward=np.linspace(-2, 0, 86),
        discount=np.array([0.9, 0.99, 1.0]),
        slip=np.array([0.1, 0.2]),
    )
    solver = jaxmdp.ValueIteration(tol=1e-3)
    whole = jaxmdp.sweep(lecture_slip, solver, **axes)
    assert whole.depends["transitions"] == ("slip",)
    assert (whole.num_chunks, whole.chunk_size) == (1, 3 * TILE)
    assert "516/516" not in capsys.readouterr().err  # one chunk: no bar by default
    # progress=True splits into chunks of whole tiles so that the bar moves
    chunked = jaxmdp.sweep(lecture_slip, solver, progress=True, **axes)
    assert (chunked.num_chunks, chunked.chunk_size) == (3, TILE)
    if importlib.util.find_spec("tqdm"):
        assert "516/516" in capsys.readouterr().err
    assert_same_solutions(chunked, whole)
    # a budget below one full tile: smaller tiles (another tile program: within rounding)
    small_tiles = jaxmdp.sweep(
        lecture_slip, solver, memory_limit=100 * whole.bytes_per_member, **axes
    )
    assert small_tiles.chunk_size < TILE and small_tiles.num_chunks > 1
    assert_same_solutions(small_tiles, whole)


def test_memory_error_names_the_estimate():
    with pytest.raises(MemoryError, match=r"[\d.]+ KiB \(S=11, A=4.*transitions shared.*1,000 B"):
        jaxmdp.sweep(
            lecture, step_reward=np.array([-1.0]), discount=np.array([0.9]), memory_limit=1000
        )


# -- the result object -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    return jaxmdp.sweep(
        lecture,
        jaxmdp.ValueIteration(tol=1e-3),
        step_reward=np.linspace(-2, 0, 13),
        discount=np.array([0.9, 0.99, 1.0]),
    )


def test_fields_are_indexed_by_the_axes_in_order(small):
    assert small.shape == (13, 3)
    i, j = 4, 2
    single = jaxmdp.solve(
        lecture(small.axes["step_reward"][i], small.axes["discount"][j]),
        jaxmdp.ValueIteration(tol=1e-3),
    )
    np.testing.assert_allclose(small.values[i, j], single.values, atol=1e-3)
    assert small.solution.values is small.values
    assert small.status.shape == small.num_iters.shape == small.residual.shape == (13, 3)


def test_chunks_built_from_each_leafs_own_grid_match_the_built_batch(sweep_tiles):
    """Rewards on the step rewards only, discount on the discounts only, both grids small
    against the chunk: each chunk (the second one padded) takes its members' rows from the
    leaves' own grids; every member equals the solve of the batch built by hand."""
    solver = jaxmdp.ValueIteration(tol=1e-3)
    steps = np.linspace(-2, 0, 30, dtype=np.float32)
    discounts = np.linspace(0.5, 0.99, 16, dtype=np.float32)
    result = jaxmdp.sweep(
        lecture, solver, chunk_size=TILE, progress=False, step_reward=steps, discount=discounts
    )
    assert (result.num_chunks, result.chunk_size) == (2, TILE)  # 480 members, 32 of padding
    one = lecture(steps, 0.0)  # rewards [30, S, A]
    batch = jaxmdp.MDP(
        one.transitions,
        np.broadcast_to(np.asarray(one.rewards)[:, None], (30, 16, 11, 4)),
        np.broadcast_to(discounts, (30, 16)),
    )
    assert_same_within_rounding(
        result.solution, jaxmdp.solve(batch, solver), np.broadcast_to(discounts, (30, 16))
    )


def test_a_chunk_of_whole_rows_passes_its_leaves_broadcast(sweep_tiles):
    """W1M's layout (issue 15): the rewards depend on the step rewards only and the discount
    on the discounts only, so a chunk of whole rows of the grid hands `solve` rewards
    `[rows, 1, S, A]` and discounts `[1, cols]` (for W1M 176 MB of rewards were copied to
    every member before, ~50 ms of each sweep); a chunk with padding, or a builder that
    ignores one axis, still gets the chunk's whole batch shape."""
    import functools

    from jaxmdp import _sweep_eager, _sweep_setup

    def chunk(builder, k, **kw):
        setup = _sweep_setup.prepare(
            builder, jaxmdp.ValueIteration(tol=1e-3), kw.pop("chunk", None), 10**4, None,
            None, False, kw,
        )  # fmt: skip
        build = jax.jit(functools.partial(_sweep_eager._build, spec=setup.spec))
        return _sweep_eager._build_by_parts(setup, k, build)

    steps = np.linspace(-2, 0, 30, dtype=np.float32)
    gammas = np.linspace(0.5, 0.99, 16, dtype=np.float32)
    whole = chunk(lecture, 0, step_reward=steps, discount=gammas)
    assert whole.batch_shape == (30, 16)
    assert whole.rewards.shape == (30, 1, 11, 4) and whole.discount.shape == (1, 16)
    # the builder compiled for the part's size: its rewards within rounding (a few ulp)
    np.testing.assert_allclose(whole.rewards[:, 0], lecture(steps, 0.9).rewards, rtol=1e-6)
    np.testing.assert_array_equal(whole.discount[0], gammas)
    # 480 members in chunks of 256: the first is 16 whole rows, the second padded
    first, padded = (
        chunk(lecture, k, chunk=TILE, step_reward=steps, discount=gammas) for k in (0, 1)
    )
    assert first.rewards.shape == (16, 1, 11, 4) and first.batch_shape == (16, 16)
    np.testing.assert_array_equal(first.rewards, whole.rewards[:16])
    assert padded.rewards.shape == (16, 16, 11, 4)
    # only the discount swept by the builder: the discount is copied out to the chunk
    only_g = chunk(
        lambda step_reward, discount: lecture(-0.04, discount),
        0,
        step_reward=steps,
        discount=gammas,
    )
    assert only_g.batch_shape == (30, 16) and only_g.discount.shape == (30, 16)


@pytest.mark.cpu_plan
def test_progress_chunks_on_cpu_keep_the_host_kernel_and_whole_rows(monkeypatch):
    """With `progress=True`, a CPU sweep sharing its transitions runs chunks of at least
    `FUSED_MEMBERS_MIN` members (the host tiles' faster kernel), of whole rows of the last
    axis where that pads little (tiles as blocks of the grid), else equal chunks."""
    from jaxmdp import _sweep_setup
    from jaxmdp._exec import shared_tiles_host

    least = shared_tiles_host.FUSED_MEMBERS_MIN
    chunks = _sweep_setup.progress_chunks
    # W1M: 1,000 x 1,000 members, want ~1/20 each: 4 chunks of 256 rows (2.4% padding)
    assert chunks(10**6, 50_000, 10**7, TILE, 1000) == (256_000, 4)
    # rows of 3,001: whole rows would pad too much -> 7 equal chunks, each >= least
    chunk, n = chunks(10**6, 50_000, 10**7, TILE, 3001)
    assert (chunk, n) == (143_104, 7) and chunk >= least and chunk * n >= 10**6
    assert chunks(2 * least - 1, 50_000, 10**7, TILE, 1000) is None  # no room for two
    assert chunks(10**6, 50_000, least - 1, TILE, 1000) is None  # memory: smaller chunks
    # through `prepare` (the threshold lowered to this small sweep: 30 x 16 members)
    monkeypatch.setattr(shared_tiles_host, "FUSED_MEMBERS_MIN", 200)
    axes = dict(
        step_reward=np.linspace(-2, 0, 30, dtype=np.float32),
        discount=np.linspace(0.5, 0.99, 16, dtype=np.float32),
    )
    setup = _sweep_setup.prepare(
        lecture, jaxmdp.ValueIteration(tol=1e-3), None, 10**4, None, None, True, axes
    )
    assert (setup.chunk, setup.num_chunks) == (TILE, 2)  # 480 members: equal chunks >= 200


def test_builder_that_ignores_its_parameters_gives_every_member_the_one_solve():
    """No leaf depends on a swept axis: the sweep builds the MDP once (each leaf's own grid
    is one point) and every member is that MDP."""
    solver = jaxmdp.ValueIteration(tol=1e-3)
    mdp = lecture(-0.5, 0.95)
    result = jaxmdp.sweep(
        lambda step_reward, discount: lecture(-0.5, 0.95),
        solver,
        step_reward=np.linspace(-2, 0, 5),
        discount=np.array([0.5, 0.9, 0.99, 1.0]),
    )
    assert result.depends == {"transitions": (), "rewards": (), "discount": ()}
    single = jaxmdp.solve(mdp, solver)
    every = jax.tree.map(lambda x: np.broadcast_to(x, (5, 4, *np.shape(x))), single)
    assert_same_within_rounding(result.solution, every, 0.95)


def test_to_table_columns_and_rows(small):
    cols = small.to_table()
    assert list(cols)[:2] == ["step_reward", "discount"]
    assert {"status", "status_name", "num_iters", "residual", "error_bound", "policy"} <= set(cols)
    assert all(len(v) == 39 for v in cols.values())
    # row-major: the last axis varies fastest
    np.testing.assert_array_equal(cols["discount"][:3], small.axes["discount"])
    assert cols["step_reward"][3] == small.axes["step_reward"][1]
    assert cols["policy"][5] == " ".join(map(str, small.policy[1, 2]))
    rows = small.to_table(values=True, rows=True)
    assert len(rows) == 39 and rows[5]["policy"] == tuple(small.policy[1, 2].tolist())
    assert rows[5]["value_0"] == pytest.approx(float(small.values[1, 2, 0]))
    assert rows[0]["status_name"] == "SUCCESS"


def test_save_writes_npz_and_csv_and_loads_back(small, tmp_path):
    npz, csv_path = small.save(tmp_path / "out" / "sweep.csv")
    assert npz.endswith("sweep.npz") and csv_path.endswith("sweep.csv")
    with open(csv_path) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 39
    assert float(table[4]["step_reward"]) == small.axes["step_reward"][1]
    # the csv shows values to the digits the certificate supports (the npz is exact)
    exact, bound = float(small.values[1, 1, 3]), float(small.error_bound[1, 1])
    assert abs(float(table[4]["value_3"]) - exact) <= bound + 1e-3
    assert len(table[4]["value_3"]) <= len("-0.000") + 2
    back = jaxmdp.SweepResult.load(npz)
    assert back.names == small.names and back.shape == small.shape
    assert back.depends == small.depends and back.tile_size == small.tile_size
    assert repr(back) == repr(small)
    for name in jaxmdp.Solution._fields:
        np.testing.assert_array_equal(getattr(back.solution, name), getattr(small.solution, name))


# -- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "at least one axis"),
        ({"step_reward": np.zeros((2, 2))}, "1-D"),
        ({"step_reward": np.array([])}, "non-empty"),
        ({"step_reward": np.array(["a"])}, "numeric"),
        ({"status": np.array([1.0])}, "reserved"),
        ({"step_reward": np.array([1.0]), "chunk_size": 0}, "chunk_size"),
        ({"step_reward": np.array([1.0]), "max_iters": 0}, "max_iters"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxmdp.sweep(lambda step_reward: lecture(step_reward, 0.9), **kwargs)


def test_builder_must_return_one_mdp():
    def batched(step_reward):
        return models.gridworld(step_reward=step_reward * np.ones(2))

    with pytest.raises(ValueError, match="ONE MDP"):
        jaxmdp.sweep(batched, step_reward=np.array([1.0]))
    with pytest.raises(TypeError, match="must return a jaxmdp.MDP"):
        jaxmdp.sweep(lambda step_reward: step_reward, step_reward=np.array([1.0]))
