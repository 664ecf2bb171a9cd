"""`sweep(..., checkpoint=DIR)`: killed sweeps resume, redoing only unfinished chunks, and end
with the uninterrupted result bit for bit (same program, same inputs, same machine);
checkpoints of other sweeps are refused, never merged."""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import jaxmdp
from jaxmdp import _checkpoint, _sweep

# The sweep, shared with the child processes: 768 lecture grid worlds in 3 chunks of 256.
SWEEP_CODE = """
import numpy as np
import jaxmdp
from jaxmdp import models

def lecture(step_reward, discount):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)

AXES = dict(step_reward=np.linspace(-2, 0, 256), discount=np.array([0.9, 0.99, 1.0]))
SOLVER = jaxmdp.ValueIteration(tol=1e-4)
"""
_ns: dict = {}
exec(SWEEP_CODE, _ns)  # noqa: S102 - the same builder and axes as the children
lecture, AXES, SOLVER = _ns["lecture"], _ns["AXES"], _ns["SOLVER"]

CHILD = (
    SWEEP_CODE
    + """
import signal, sys, time
from jaxmdp._exec import plan
plan.SWEEP_TILE_ACCELERATOR = 256  # as the `sweep_tiles` fixture of the test process
# A shell that starts the test runner in the background sets SIGINT to ignored for its
# children, and Python keeps that: Ctrl-C must reach this child as it reaches a terminal's.
signal.signal(signal.SIGINT, signal.default_int_handler)
from jaxmdp import _checkpoint
real = _checkpoint.Store.write
def write(self, k, start, sol):
    real(self, k, start, sol)
    print("written", k, flush=True)
    time.sleep(float(sys.argv[2]))  # stand for a long chunk: room to be killed in
_checkpoint.Store.write = write
print("start", flush=True)
jaxmdp.sweep(lecture, SOLVER, chunk_size=256, checkpoint=sys.argv[1], progress=False, **AXES)
print("done", flush=True)
"""
)


@pytest.fixture(scope="module", autouse=True)
def sweep_tiles():
    """Sweep tiles of 256 members wherever plans are made (a GPU/TPU plan's are 8,192), in
    this process and in the children: the same 3 chunks under either plan, each chunk solved
    as that plan solves it."""
    from jaxmdp._exec import plan

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan, "SWEEP_TILE_ACCELERATOR", 256)
        yield


@pytest.fixture(scope="module")
def reference():
    r = jaxmdp.sweep(lecture, SOLVER, chunk_size=256, progress=False, **AXES)
    assert r.num_chunks == 3 and r.resumed_chunks == 0
    return r


def assert_identical(a, b):
    for f in jaxmdp.Solution._fields:
        np.testing.assert_array_equal(getattr(a.solution, f), getattr(b.solution, f), err_msg=f)


@pytest.fixture
def solved(monkeypatch):
    """Counts the chunks a sweep actually solves."""
    calls = []
    real = _sweep._run_chunk

    def counting(setup, solver, k):
        calls.append(k)
        return real(setup, solver, k)

    monkeypatch.setattr(_sweep, "_run_chunk", counting)
    return calls


def resume(directory, **kw):
    return jaxmdp.sweep(lecture, SOLVER, checkpoint=directory, progress=False, **AXES, **kw)


def readline(proc, timeout=300) -> str:
    """The child's next line; fails instead of hanging if it never comes."""
    if not select.select([proc.stdout], [], [], timeout)[0]:
        proc.kill()
        pytest.fail(f"no output from the child within {timeout} s")
    return proc.stdout.readline()


def child(directory, pause):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(pause)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def test_kill_9_after_the_first_chunk_then_resume(tmp_path, reference, solved):
    ck = tmp_path / "ck"
    proc = child(ck, 600)
    try:
        assert readline(proc) == "start\n"
        line = readline(proc)
        assert line.split() == ["written", "0"], line
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    first = (ck / "chunk-000000.npz").stat().st_ino
    assert not (ck / "chunk-000001.npz").exists()
    # no chunk_size: the checkpoint's plan (3 chunks of 256) is adopted, not the 1-chunk plan
    result = resume(ck)
    assert solved == [1, 2]  # only the unfinished chunks
    assert result.resumed_chunks == 1 and result.num_chunks == 3
    assert (ck / "chunk-000000.npz").stat().st_ino == first  # read, never rewritten
    assert_identical(result, reference)
    again = resume(ck)  # everything on disk: nothing solved
    assert solved == [1, 2] and again.resumed_chunks == 3
    assert_identical(again, reference)


def test_ctrl_c_at_a_random_moment_then_resume(tmp_path, reference, solved):
    ck = tmp_path / "ck"
    proc = child(ck, 0.5)
    assert readline(proc) == "start\n"  # the sweep is called (compiling, solving...)
    time.sleep(np.random.default_rng().uniform(0.0, 2.5))
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    written = out.count("written")
    result = resume(ck, chunk_size=256)  # the same arguments (the manifest may not exist yet)
    assert result.resumed_chunks + len(solved) == 3
    # a chunk is on disk once reported; Ctrl-C may land between its rename and the report
    assert written <= result.resumed_chunks <= written + 1
    assert_identical(result, reference)
    assert not [p for p in ck.iterdir() if ".tmp-" in p.name]


def test_full_disk_while_writing_a_chunk_then_resume(tmp_path, monkeypatch, reference, solved):
    ck = tmp_path / "ck"
    real = np.savez

    def savez(f, **arrays):
        if json.loads(str(arrays["meta"]))["index"] == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(f, **arrays)

    monkeypatch.setattr(_checkpoint.np, "savez", savez)
    with pytest.raises(OSError, match="chunk 1 .*run the same sweep again to resume"):
        resume(ck, chunk_size=256)
    monkeypatch.setattr(_checkpoint.np, "savez", real)
    assert sorted(p.name for p in ck.iterdir() if not p.name.startswith(".")) == [
        "chunk-000000.npz",
        "manifest.json",
    ]
    solved.clear()
    result = resume(ck, chunk_size=256)
    assert solved == [1, 2] and result.resumed_chunks == 1
    assert_identical(result, reference)


def test_damaged_chunk_is_solved_again(tmp_path, reference, solved):
    ck = tmp_path / "ck"
    resume(ck, chunk_size=256)
    (ck / "chunk-000001.npz").write_bytes(b"garbage")
    solved.clear()
    with pytest.warns(RuntimeWarning, match="chunk-000001.npz.*solving it again"):
        result = resume(ck)
    assert solved == [1] and result.resumed_chunks == 2
    assert_identical(result, reference)


def test_other_sweeps_are_refused_never_merged(tmp_path, reference, solved):
    ck = tmp_path / "ck"
    resume(ck, chunk_size=256)
    solved.clear()
    other_axes = dict(AXES, discount=np.array([0.9, 0.99, 0.999]))

    def slippery(step_reward, discount):
        return jaxmdp.models.gridworld(step_reward=step_reward, slip=0.25, discount=discount)

    def other_solver(solver):
        return lambda: jaxmdp.sweep(lecture, solver, checkpoint=ck, **AXES)

    def lecture_1d(step_reward):
        return lecture(step_reward, 0.9)

    cases = [
        (lambda: jaxmdp.sweep(lecture, SOLVER, checkpoint=ck, **other_axes), "values of axis"),
        (
            lambda: jaxmdp.sweep(
                lecture_1d, SOLVER, checkpoint=ck, step_reward=AXES["step_reward"]
            ),
            "axes",
        ),  # fmt: skip
        (other_solver(jaxmdp.ValueIteration(tol=1e-3)), "solver"),
        (other_solver(jaxmdp.PolicyIteration()), "solver"),
        (lambda: resume(ck, max_iters=50), "max_iters"),
        (lambda: jaxmdp.sweep(slippery, SOLVER, checkpoint=ck, **AXES), "builder: another"),
        (lambda: resume(ck, chunk_size=512), "chunks of 256"),
        (lambda: resume(ck, checkpoint_key="run-2"), "checkpoint_key"),
    ]
    for run, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            run()
        assert "never merged" in str(info.value) or "resume it" in str(info.value)
    # another library version wrote it
    manifest = json.loads((ck / "manifest.json").read_text())
    manifest["identity"]["library"] = "0.0.1"
    (ck / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"jaxmdp version \(checkpoint: 0.0.1"):
        resume(ck)
    assert solved == []  # refused before solving anything
    # a directory that is no checkpoint is never written into
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("x")
    with pytest.raises(ValueError, match="not a sweep checkpoint"):
        resume(foreign)
    assert sorted(os.listdir(foreign)) == ["data.csv"]


def test_a_checkpoint_in_use_is_refused(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    ck = tmp_path / "ck"
    ck.mkdir()
    with open(ck / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="in use by another running sweep"):
            resume(ck)


def test_the_builder_fingerprint_is_what_it_computes():
    import jax

    def trace(fn):
        zero = np.zeros((), np.float32)
        closed = jax.make_jaxpr(lambda a, b: tuple(fn(step_reward=a, discount=b)))(zero, zero)
        return _checkpoint.builder_fingerprint(fn, closed)["program"]

    def renamed(step_reward, discount):  # same computation, other name
        return lecture(step_reward, discount)

    def closure(slip):
        return lambda step_reward, discount: jaxmdp.models.gridworld(
            step_reward=step_reward, slip=slip, discount=discount
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trace(renamed) == trace(lecture) == trace(closure(0.2))
        assert trace(closure(0.2)) != trace(closure(0.2 + 1e-6))
