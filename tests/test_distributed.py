"""Two processes on localhost (CPU, gloo) against one process: `jaxmdp.sweep`, `jaxmdp sweep`
and a single MDP's states split over the processes' devices.

Each job runs in subprocesses started together (`multiprocess.launch`) with one deadline, so
a hang fails the test instead of the run. The one-process reference runs in this test
process meanwhile, on the same code (`distributed_cases`).

What is compared:
- sweeps (value, policy and modified policy iteration; shared and per-member transitions),
  the CLI's and the example's outputs: every `Solution` field within rounding
  (`_compare.assert_same_within_rounding`; marker `programs`). Each member is solved by the
  same tile program at the same position in its tile on one device or on the two
  processes' devices, so the same bits are what we see, but the sharded program is another
  compiled program than the one-device one, and only rounding is promised (README, "What is
  reproducible");
- a single MDP over both processes' devices ("blocked") and a batch split over them: a
  partitioned program, so within rounding too (float32: members at the precision floor);
- checkpoints and decisions one process takes alone (its memory budget; process 0 owns the
  checkpoint directory): agreed, raised on every process, never a hang.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import distributed_cases as cases
import multiprocess
import numpy as np
import pytest
from _compare import assert_same_within_rounding

import jaxmdp
from jaxmdp._exec import plan

TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="localhost jobs: Linux CI only")

JOB = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    sys.path.insert(0, sys.argv[2])
    import jaxmdp
    import distributed_cases as cases
    from jaxmdp._exec import plan

    plan.SWEEP_TILE_ACCELERATOR = 256  # tiles of 256 under any plan (the test's fixture)

    out, me = Path(sys.argv[1]), jax.process_index()
    assert jax.process_count() == 2 and len(jax.devices()) == 2, jax.devices()
    info = {"sweeps": cases.sweeps(out, f"p{me}")}
    cases.blocked(out, f"p{me}")

    # Checkpoints: process 0 owns the directory; process 1 is given a path that exists
    # nowhere, which it must never need. 600 members, tiles of 256 on 2 devices: 2 chunks.
    ck = out / ("checkpoint" if me == 0 else "nowhere")
    axes = dict(step_reward=np.linspace(-2, 0, 300), discount=np.array([0.9, 1.0]))
    first = jaxmdp.sweep(cases.lecture, checkpoint=ck, chunk_size=512, **axes)
    if me == 0:
        (ck / "chunk-000001.npz").unlink()
    multihost_utils.sync_global_devices("chunk 1 removed")
    again = jaxmdp.sweep(cases.lecture, checkpoint=ck, chunk_size=512, **axes)
    same = all(
        np.array_equal(getattr(first, f), getattr(again, f)) for f in jaxmdp.Solution._fields
    )
    info["checkpoint"] = [
        first.num_chunks, first.resumed_chunks, again.resumed_chunks, same, ck.exists()
    ]
    try:  # another sweep on the same directory: refused on both processes
        jaxmdp.sweep(cases.lecture, checkpoint=ck, step_reward=np.array([-1.0]),
                     discount=np.array([0.9]))
    except ValueError as e:
        info["refused"] = str(e)

    # A memory budget only process 1 cannot meet: MemoryError on both processes ...
    try:
        jaxmdp.sweep(cases.lecture, memory_limit=1000 if me == 1 else None, **axes)
    except MemoryError as e:
        info["memory"] = str(e)
    # ... and budgets that differ give both the chunks that fit both (process 1's budget
    # holds one tile of 256 per device: chunks of 512; process 0 alone would take one chunk)
    r = jaxmdp.sweep(cases.lecture, memory_limit=500_000 if me == 1 else None, **axes)
    info["agreed"] = [r.chunk_size, r.num_chunks, np.array_equal(r.values, first.values)]
    print(json.dumps(info))
    """
)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The job's outputs and the one-process reference's, computed at the same time."""
    out = tmp_path_factory.mktemp("job")
    procs = multiprocess.start(
        multiprocess.job_argv(JOB, 2, (out, TESTS)), env=multiprocess.environment()
    )  # the job runs while the reference is computed here
    try:
        with pytest.MonkeyPatch.context() as mp:  # as the job: tiles of 256 under any plan
            mp.setattr(plan, "SWEEP_TILE_ACCELERATOR", 256)
            cases.sweeps(out, "ref")
            cases.blocked(out, "ref")
    finally:
        results = multiprocess.wait(procs, timeout=400)
    multiprocess.check(results)
    infos = [json.loads(r.stdout.strip().splitlines()[-1]) for r in results]
    return out, infos


def _solution(arrays, prefix=""):
    return jaxmdp.Solution(*(arrays[prefix + f] for f in jaxmdp.Solution._fields))


def _discounts(kind):
    _, axes = cases.SWEEPS[kind]
    shape = (len(cases.STEPS), 2)
    return np.broadcast_to(axes["discount"][None, :], shape) if kind == "shared" else 0.95


@pytest.mark.programs
@pytest.mark.parametrize("solver", sorted(cases.SOLVERS))
@pytest.mark.parametrize("kind", sorted(cases.SWEEPS))
def test_two_process_sweep_is_the_one_process_sweep(two_processes, solver, kind):
    out, infos = two_processes
    ref = cases.load(out / f"sweep-{solver}-{kind}-ref.npz")
    assert ref["status"].size == 14 and (ref["status"] == 0).all()
    per = 5 + 1 if solver == "mpi" else 1  # modified PI: eval_sweeps=5
    for me, info in enumerate(infos):
        assert info["sweeps"][f"{solver}-{kind}"]["devices"] == 2, info
        got = cases.load(out / f"sweep-{solver}-{kind}-p{me}.npz")
        assert_same_within_rounding(
            _solution(got), _solution(ref), _discounts(kind), backups_per_iter=per,
            path_may_differ=True, err_msg=f"process {me}",
        )  # fmt: skip
    own = infos[0]["sweeps"][f"{solver}-{kind}"]["depends"]
    assert own == ([] if kind == "shared" else ["slip"])


@pytest.mark.programs
@pytest.mark.parametrize("case", sorted(cases.BLOCKED))
def test_two_process_blocked_solve_matches_one_device(two_processes, case):
    out, _ = two_processes
    ref = cases.load(out / f"blocked-{case}-ref.npz")
    per = 5 + 1 if case.startswith("mpi") else 1  # modified PI: eval_sweeps=5
    for me in range(2):
        got = cases.load(out / f"blocked-{case}-p{me}.npz")
        assert_same_within_rounding(  # float32, tol=None: members may sit at the floor
            _solution(got), _solution(ref), 0.97, at_floor=True, backups_per_iter=per,
            path_may_differ=True, err_msg=f"process {me}",
        )  # fmt: skip


@pytest.mark.programs
def test_two_process_batch_solve_matches_one_device(two_processes):
    out, _ = two_processes
    ref = cases.load(out / "batch-ref.npz")
    g = np.linspace(0.5, 0.95, 8).astype(np.float32)
    for me in range(2):  # every process receives the whole batch's results
        got = cases.load(out / f"batch-p{me}.npz")
        assert got["values"].shape == (8, 12)
        assert_same_within_rounding(
            _solution(got), _solution(ref), g, path_may_differ=True, err_msg=f"process {me}"
        )


def test_two_process_checkpoint_is_owned_by_process_0(two_processes):
    _, (lead, other) = two_processes
    # 2 chunks; a fresh run resumed none, the second read back the one still on disk, with
    # the same bits; process 1 never created its (nonexistent) directory.
    assert lead["checkpoint"] == [2, 0, 1, True, True]
    assert other["checkpoint"] == [2, 0, 1, True, False]
    assert "belongs to a different sweep" in lead["refused"]
    assert other["refused"].startswith("process 0 of 2: ") and "different sweep" in other["refused"]


def test_two_process_memory_plans_are_agreed(two_processes):
    _, (lead, other) = two_processes
    assert "cannot fit even one MDP per device" in other["memory"]
    assert lead["memory"].startswith("process 1 of 2: ")
    assert lead["agreed"] == other["agreed"] == [512, 2, True]


@pytest.mark.programs
def test_cli_sweep_in_two_processes_writes_the_one_process_result(tmp_path):
    """`jaxmdp sweep` unchanged in both processes of a job (`--coordinator ...`): process 0
    writes the output folder, the same table and arrays as a one-process run; process 1
    writes and prints nothing of its own."""
    common = [
        sys.executable, "-m", "jaxmdp", "sweep", "--step-reward", "-2:0:9",
        "--discount", "0.9,1", "--solver", "pi", "--no-plots", "--no-progress",
    ]  # fmt: skip
    port = multiprocess.free_port()
    job = [
        "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id",
    ]  # fmt: skip
    argv = [
        (common + ["--out", str(tmp_path / "two"), *job, "0"], {}),
        (common + ["--out", str(tmp_path / "elsewhere"), *job, "1"], {}),
        (common + ["--out", str(tmp_path / "one")], {}),
    ]
    results = multiprocess.wait(
        multiprocess.start(argv, env=multiprocess.environment()), timeout=300
    )
    multiprocess.check(results)
    assert "wrote" in results[0].stdout and "wrote" not in results[1].stdout
    assert not (tmp_path / "elsewhere").exists()
    two, one = np.load(tmp_path / "two" / "sweep.npz"), np.load(tmp_path / "one" / "sweep.npz")
    for name in one.files:
        if name.startswith("axis"):
            assert np.array_equal(two[name], one[name]), name
    g = np.broadcast_to(one["axis.discount"][None, :], one["solution.status"].shape)
    assert_same_within_rounding(
        _solution(two, "solution."), _solution(one, "solution."), g, path_may_differ=True
    )
    # the table: the same rows and, per row, the same parameters and status (iteration
    # counts of float32 members at the precision floor, values and residuals printed to
    # their certified digits may move with rounding: another program, another CPU)
    tables = [(tmp_path / d / "sweep.csv").read_text().splitlines() for d in ("two", "one")]
    header = tables[0][0].split(",")
    keep = [i for i, name in enumerate(header[:5]) if name != "num_iters"]
    rows = [[[line.split(",")[i] for i in keep] for line in t] for t in tables]
    assert rows[0] == rows[1] and len(rows[0]) == 1 + 18


def test_cli_options_name_the_job():
    from jaxmdp.cli import main

    assert main(["sweep", "--coordinator", "127.0.0.1:1", "--no-plots"]) == 2
    assert main(["sweep", "--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"]) == 2


@pytest.mark.programs
def test_example_cluster_sweep_in_two_processes(tmp_path):
    """`examples/cluster_sweep.py`, exactly the file the "Devices and clusters" page shows,
    as a job of two processes and as one process: the same result within rounding."""
    script = str(TESTS.parent / "examples" / "cluster_sweep.py")
    port = multiprocess.free_port()
    job = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id"]
    argv = [
        ([sys.executable, script, *job, "0", "--out", str(tmp_path / "two")], {}),
        ([sys.executable, script, *job, "1"], {}),
        ([sys.executable, script, "--out", str(tmp_path / "one")], {}),
    ]
    results = multiprocess.wait(
        multiprocess.start(argv, env=multiprocess.environment()), timeout=300
    )
    multiprocess.check(results)
    two, one = (results[0].stdout.strip().splitlines()[-1], results[2].stdout.strip())
    assert two.startswith("123 MDPs on 2 device(s) of 2 process(es)") and "solved: True" in two
    assert one.startswith("123 MDPs on 1 device(s) of 1 process(es)")
    assert "MDPs" not in results[1].stdout  # process 1 prints and writes nothing
    a, b = np.load(tmp_path / "two.npz"), np.load(tmp_path / "one.npz")
    g = np.broadcast_to(b["axis.discount"][None, :], b["solution.status"].shape)
    assert_same_within_rounding(
        _solution(a, "solution."), _solution(b, "solution."), g, path_may_differ=True
    )
