"""Memory failures are errors, never hangs: the sweep's estimate counts every buffer against the
budget of `jaxmdp._memory` (ulimit, cgroups, available RAM) before allocating anything, shrinks
chunks to fit, and raises `MemoryError` naming the size and the budget otherwise."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import warnings
import weakref

import numpy as np
import pytest

import jaxmdp
from jaxmdp import _memory, _sweep, models


def lecture(step_reward, discount):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)


# Under `ulimit -v` (RLIMIT_AS) set to what the process maps after JAX started + 256 MiB.
# Before the fix, the second sweep (then 600,000 members under 400 MiB, chunk_size 10^7) hung
# in `_to_host`. 200,000 members under 256 MiB is the same case (their results fit, one chunk
# of them does not: cut to 3 chunks here) at less cost (the subprocess: 7.2 -> 4.3 CPU-s).
UNDER_ULIMIT = """
import re, resource, time, warnings
import jax, numpy as np
import jaxmdp
from jaxmdp import models
jaxmdp.solve(models.gridworld())  # the backend's own reservations (threads, compiler) first
vm = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), vm + (256 << 20)))

def lecture(step_reward, discount):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)

t = time.perf_counter()
try:
    jaxmdp.sweep(lecture, step_reward=np.linspace(-2, 0, 10**6), discount=np.array([0.9, 0.99]))
except MemoryError as e:
    print("MemoryError", round(time.perf_counter() - t, 2), e, flush=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    r = jaxmdp.sweep(lecture, step_reward=np.linspace(-2, 0, 100000),
                     discount=np.array([0.9, 0.99]), chunk_size=10**7, progress=False)
print("solved", r.size, int(r.ok.sum()), r.num_chunks, flush=True)
print("warned", any("does not fit in memory" in str(w.message) for w in caught), flush=True)
"""


@pytest.mark.cpu_plan  # host memory and the CPU's chunks
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status are Linux's"
)
def test_under_ulimit_v_memory_error_or_smaller_chunks_never_a_hang():
    proc = subprocess.run(
        [sys.executable, "-c", UNDER_ULIMIT],
        capture_output=True,
        text=True,
        timeout=240,  # a regression hangs: the timeout turns it into a failure
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    kind, seconds, message = lines[0].split(" ", 2)
    assert kind == "MemoryError" and float(seconds) < 30
    assert "2,000,000 MDPs" in message and "ulimit -v" in message
    assert "534.1 MiB" in message  # the size: 2e6 members x 280 bytes of results
    assert lines[1] == "solved 200000 200000 " + lines[1].split()[-1]
    assert int(lines[1].split()[-1]) > 1  # the chunk was cut to fit
    assert lines[2] == "warned True"


def test_a_huge_sweep_names_its_size_and_the_budget(monkeypatch):
    """The issue's 55M-member sweep said "needs about 0.0 MiB ... budget is 0.0 MiB"."""
    monkeypatch.setattr(
        _memory, "host_budget", lambda: _memory.Budget(8 << 30, "available RAM 8.00 GiB")
    )
    with pytest.raises(MemoryError) as info:
        jaxmdp.sweep(
            lecture, step_reward=np.linspace(-2, 0, 5_500_000), discount=np.linspace(0.9, 1, 10)
        )
    msg = str(info.value)
    assert "55,000,000 MDPs" in msg and "14.34 GiB" in msg and "4.00 GiB allowed" in msg
    assert "available RAM 8.00 GiB" in msg and "0.0 MiB" not in msg


@pytest.mark.cpu_plan  # host memory and the CPU's chunks
def test_chunks_shrink_with_the_budget_and_one_member_must_fit(monkeypatch):
    """8,000 members: 2.1 MiB of results, 856 B more per member of a chunk (its parameters and
    two host copies of its results), a tile's working state, the shared transitions."""

    def budget(n):
        monkeypatch.setattr(_memory, "host_budget", lambda: _memory.Budget(n, "test budget"))

    axes = dict(step_reward=np.linspace(-2, 0, 4000), discount=np.array([0.9, 0.99]))
    chunks = []
    for n in (1 << 30, 12 << 20, 8 << 20):
        budget(n)
        lowered = jaxmdp.lower_sweep(lecture, **axes)  # plans without solving
        chunks.append(lowered.args_info[0][0][0].shape[0])  # (params, solver)
    assert chunks == [8192, 4096, 1792]  # whole tiles of 256 within half the budget
    budget(4 << 20)
    with pytest.raises(MemoryError, match=r"results of this sweep of 8,000 MDPs .* 2.1 MiB"):
        jaxmdp.sweep(lecture, **axes)
    budget(8 << 10)  # two members' results fit in 4 KiB, one member's whole working set not
    with pytest.raises(MemoryError, match=r"cannot fit even one MDP.* [\d.]+ KiB .*test budget"):
        jaxmdp.sweep(lecture, step_reward=np.array([-1.0, 0.0]), discount=np.array([0.9]))


def test_sizes_print_in_their_own_units():
    assert _memory.mib(280) == "280 B"
    assert _memory.mib(2355) == "2.3 KiB"
    assert _memory.mib(3 << 20) == "3.0 MiB"
    assert _memory.mib(14.34 * 2**30) == "14.34 GiB"


def test_programs_of_replaced_builders_are_released(monkeypatch):
    """Sweeping new models one after another keeps only the last `_PROGRAMS` programs: the
    first builder (and everything its compiled program holds) is garbage once dropped."""
    monkeypatch.setattr(_sweep, "_PROGRAMS", 1)
    refs = []
    for slip in (0.1, 0.3):

        def build(step_reward, discount, slip=slip):
            return models.gridworld(step_reward=step_reward, slip=slip, discount=discount)

        refs.append(weakref.ref(build))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jaxmdp.sweep(build, step_reward=np.array([-1.0, 0.0]), discount=np.array([0.9]))
        del build
    gc.collect()
    assert refs[0]() is None, "the dropped program still holds its builder"
    assert refs[1]() is not None  # the latest stays compiled


class _FakeAccelerator:
    """Stands for a GPU in the plan (no accelerator needed): its free memory is what counts."""

    platform, id, process_index = "gpu", 0, 0

    def __init__(self, free):
        self.free = free

    def memory_stats(self):
        return {"bytes_limit": self.free + (1 << 20), "bytes_in_use": 1 << 20}


def test_accelerator_plan_uses_the_device_budget_and_the_host_budget(monkeypatch):
    from jaxmdp import _sweep_memory

    monkeypatch.setattr(_memory, "host_budget", lambda: _memory.Budget(1 << 40, "test host"))
    kw = dict(size=100_000, full_tile=8192, per=1000, res=280, par=8, fixed=4000)
    kw.update(memory_limit=None, describe="S=11, A=4, float32, transitions shared")
    roomy = _sweep_memory.plan(devices=[_FakeAccelerator(1 << 30)], **kw)
    assert roomy.tile == 8192 and roomy.limit >= 100_000 and "gpu device 0" in roomy.source
    # 60% of 20 MB: one full tile (8.2 MB of working state) and a few tiles of chunk data
    tight = _sweep_memory.plan(devices=[_FakeAccelerator(20_000_000)], **kw)
    assert tight.tile == 8192 and tight.limit == 8192
    device_part = 4000 + 8192 * 1000 + tight.limit * (8 + 280)
    assert device_part <= 0.6 * 20_000_000
    smaller = _sweep_memory.plan(devices=[_FakeAccelerator(5_000_000)], **kw)
    assert smaller.tile < 8192 and smaller.limit == smaller.tile  # the tile itself shrinks
    with pytest.raises(MemoryError, match="60% of the free memory of gpu device 0"):
        _sweep_memory.plan(devices=[_FakeAccelerator(1000)], **kw)
    # the host still holds the results of the whole sweep
    monkeypatch.setattr(_memory, "host_budget", lambda: _memory.Budget(20_000_000, "test host"))
    with pytest.raises(MemoryError, match=r"100,000 MDPs .* 26.7 MiB on the host"):
        _sweep_memory.plan(devices=[_FakeAccelerator(1 << 30)], **kw)
