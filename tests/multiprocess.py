"""Running a script as a JAX job of several processes on localhost (CPU, gloo collectives).

The usual JAX way, as on a cluster: every process runs the same script, calls
`jax.distributed.initialize(coordinator, num_processes, process_id)` first (`PRELUDE` does,
reading the values `launch` puts in its environment), and then the library code under test,
unchanged. The way other projects test multi-process JAX on one machine (JAX's own
`tests/distributed_test.py`, MaxText's CPU jobs): plain subprocesses on a free localhost
port, started together.

`launch` never hangs a test run: the processes start in parallel, the whole job has one
deadline, and at the deadline every process is killed (its process group) and the test fails
with what each printed. The distributed runtime's own heartbeat is short too (`PRELUDE`), so
a process that dies makes the others fail within seconds instead of waiting in a collective.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import NamedTuple

# Prepended to every script: initialise the job from the environment `launch` sets.
PRELUDE = """
import os as _os
import jax as _jax

_jax.config.update("jax_cpu_collectives_implementation", "gloo")
if int(_os.environ["TEST_NUM_PROCESSES"]) > 1:
    _jax.distributed.initialize(
        _os.environ["TEST_COORDINATOR"],
        int(_os.environ["TEST_NUM_PROCESSES"]),
        int(_os.environ["TEST_PROCESS_ID"]),
        initialization_timeout=60,
        heartbeat_timeout_seconds=30,
        shutdown_timeout_seconds=60,
    )
"""


class Finished(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it; a race with another process that
    binds it in between is possible but shows as an error, never as a hang)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def xla_flags(devices: int) -> str:
    """This process's XLA_FLAGS (the suite's compile settings, or `.ci/run`'s vector-width
    setting, which the subprocess must run under too) with `devices` host devices."""
    kept = [
        f
        for f in os.environ.get("XLA_FLAGS", "").split()
        if not f.startswith("--xla_force_host_platform_device_count")
    ]
    return " ".join([*kept, f"--xla_force_host_platform_device_count={devices}"])


def environment(*, devices_per_process: int = 1, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=xla_flags(devices_per_process),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


def start(argv_per_process, *, env: dict) -> list[subprocess.Popen]:
    """Starts one process per argv (in its own process group, so a kill reaches its
    children), all at once."""
    return [
        subprocess.Popen(
            argv,
            env={**env, **penv},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for argv, penv in argv_per_process
    ]


def wait(procs: list[subprocess.Popen], timeout: float) -> list[Finished]:
    """Waits for all of `procs` until `timeout` seconds from now; at the deadline kills them
    all and raises AssertionError with the tail of each one's output."""
    deadline = time.monotonic() + timeout
    out: list[Finished | None] = [None] * len(procs)
    try:
        for k, p in enumerate(procs):
            left = max(0.1, deadline - time.monotonic())
            stdout, stderr = p.communicate(timeout=left)
            out[k] = Finished(p.returncode, stdout, stderr)
    except subprocess.TimeoutExpired:
        tails = []
        for k, p in enumerate(procs):
            _kill(p)
            stdout, stderr = p.communicate()
            tails.append(f"--- process {k} (killed at the deadline) ---\n{stderr[-2000:]}")
        raise AssertionError(
            f"job did not finish in {timeout:.0f} s\n" + "\n".join(tails)
        ) from None
    finally:
        for p in procs:
            if p.poll() is None:
                _kill(p)
    return out  # type: ignore[return-value]


def _kill(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        p.kill()


def job_argv(script: str, num_processes: int, args=()) -> list:
    """`(argv, env)` of each process of a job running `PRELUDE + script` (argv: `args`) on a
    free localhost port, for `start`."""
    code = PRELUDE + script
    port = free_port()
    return [
        (
            [sys.executable, "-c", code, *map(str, args)],
            {
                "TEST_COORDINATOR": f"127.0.0.1:{port}",
                "TEST_NUM_PROCESSES": str(num_processes),
                "TEST_PROCESS_ID": str(k),
            },
        )
        for k in range(num_processes)
    ]


def launch(
    script: str,
    num_processes: int,
    *,
    args: tuple = (),
    timeout: float = 240,
    devices_per_process: int = 1,
    env: dict | None = None,
) -> list[Finished]:
    """Runs `PRELUDE + script` as a job of `num_processes` processes (argv: `args`) and
    returns each process's exit status and output, process 0 first."""
    base = environment(devices_per_process=devices_per_process, extra=env)
    return wait(start(job_argv(script, num_processes, args), env=base), timeout)


def check(results: list[Finished]) -> None:
    """Asserts every process exited 0, showing the failing ones' stderr."""
    bad = [(k, r) for k, r in enumerate(results) if r.returncode != 0]
    assert not bad, "\n".join(
        f"--- process {k}: exit {r.returncode} ---\n{r.stderr[-3000:]}" for k, r in bad
    )
