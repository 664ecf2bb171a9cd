"""Ctrl-C (issue 16 #9): a long `solve` returns control within a second, the abandoned work
stops, and the next call starts within a second; a solve running on another thread at that
moment still returns its full result.

Before: after Ctrl-C the abandoned tiles kept the host threads busy and the next small solve
waited 64 s (190 s measured here), and a long single-program solve ignored Ctrl-C until it
ended. Run in a subprocess that sends itself SIGINT, under a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, threading, time
    # Ctrl-C as a user's terminal delivers it, even where the test runner was started in the
    # background (a shell then ignores SIGINT for its children, and Python keeps that).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import jax, numpy as np
    import jaxmdp

    jax.config.update("jax_enable_x64", True)  # float64: no early stop at a float32 floor
    rng = np.random.default_rng(0)
    small = jaxmdp.make_mdp(rng.dirichlet(np.ones(32), size=(64, 32, 4)),
                            rng.standard_normal((64, 32, 4)), 0.9)
    jax.block_until_ready(jaxmdp.solve(small))
    # The sup rule at discount 0.99999 and tol 1e-12 needs millions of sweeps: minutes.
    solver = jaxmdp.ValueIteration(tol=1e-12, rule="sup")

    def problem(kind, g):
        r = np.random.default_rng(1)
        if kind == "tiles on host threads":  # per-member transitions: tiles, 2 host threads
            P = r.dirichlet(np.ones(48) * 0.1, size=(256, 48, 4))
            return jaxmdp.make_mdp(P, r.standard_normal((256, 48, 4)), g)
        if kind == "shared transitions":  # the shared-P value-iteration kernel
            P = r.dirichlet(np.ones(48) * 0.1, size=(48, 4))
            return jaxmdp.make_mdp(P, r.standard_normal((2048, 48, 4)), g)
        P = r.dirichlet(np.ones(512) * 0.1, size=(512, 4))  # one program, one MDP
        return jaxmdp.make_mdp(P, r.standard_normal((512, 4)), g)

    out = {}
    for kind in ("tiles on host threads", "shared transitions", "one MDP"):
        jax.block_until_ready(jaxmdp.solve(problem(kind, 0.5), solver, max_iters=10**8))
        mdp = problem(kind, 0.99999)
        sent = []
        # Half a second in: the solve (compiled by the warm-up above) is deep in its loop.
        timer = threading.Timer(0.5, lambda: (sent.append(time.time()),
                                              os.kill(os.getpid(), signal.SIGINT)))
        timer.start()
        t0 = time.time()
        try:
            jaxmdp.solve(mdp, solver, max_iters=10**8)
            out[kind] = {"error": f"not interrupted ({time.time() - t0:.1f} s)"}
            continue
        except KeyboardInterrupt:
            latency = time.time() - sent[0]
        t1 = time.time()
        jax.block_until_ready(jaxmdp.solve(small))
        out[kind] = {"interrupt": latency, "next_call": time.time() - t1}

    # Another thread's solve, running when the main thread is interrupted, is not cut short
    # (it runs again): capped at 300 sweeps of ~1e7 multiply-adds, about half a second alone
    # and longer beside the main thread's solve, which the interrupt stops at 0.25 s.
    mid = problem("shared transitions", 0.99999)
    ref = jax.block_until_ready(jaxmdp.solve(mid, solver, max_iters=300))
    box = {}
    worker = threading.Thread(
        target=lambda: box.update(sol=jaxmdp.solve(mid, solver, max_iters=300)))
    long_mdp = problem("one MDP", 0.99999)
    worker.start()
    alive = []
    threading.Timer(0.25, lambda: (alive.append(worker.is_alive() and "sol" not in box),
                                  os.kill(os.getpid(), signal.SIGINT))).start()
    try:
        jaxmdp.solve(long_mdp, solver, max_iters=10**8)
    except KeyboardInterrupt:
        pass
    worker.join()
    same = all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
               for a, b in zip(box["sol"], ref, strict=True))
    out["other thread unaffected"] = bool(same)
    out["still running at the interrupt"] = bool(alive and alive[0])
    print(json.dumps(out))
    os._exit(0)
    """
)


def test_ctrl_c_returns_within_a_second_and_the_next_call_starts_at_once():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("other thread unaffected") is True
    # The case under test (the worker's programs stopped by the flag, then run again) needs
    # the worker still running at the interrupt; on a machine fast enough to finish it in
    # 0.25 s the check above is weaker, but still holds.
    out.pop("still running at the interrupt")
    for kind, res in out.items():
        assert "error" not in res, (kind, res)
        assert res["interrupt"] < 1.0, (kind, res)
        # Measured 0.02-0.6 s here; 2 s leaves room for a loaded CI machine.
        assert res["next_call"] < 2.0, (kind, res)


SUBMIT_SCRIPT = textwrap.dedent(
    """
    import concurrent.futures, json, os, signal, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import jax, numpy as np
    import jaxmdp, jaxmdp._interrupt

    # Slices 10x the default (~0.3-1 s): the abandoned program is still running when the
    # script ends, as on a loaded CI machine, where the exit then aborted (see below).
    jaxmdp._interrupt.SLICE_WORK = 5e8
    jax.config.update("jax_enable_x64", True)
    r = np.random.default_rng(1)
    P = r.dirichlet(np.ones(512) * 0.1, size=(512, 4))
    long_mdp = jaxmdp.make_mdp(P, r.standard_normal((512, 4)), 0.99999)  # minutes to solve
    solver = jaxmdp.ValueIteration(tol=1e-12, rule="sup")
    jax.block_until_ready(jaxmdp.solve(long_mdp, solver, max_iters=50))  # compiled

    # Ctrl-C while the executor's `submit` runs (as when it starts a worker thread), once.
    orig = concurrent.futures.ThreadPoolExecutor.submit
    def submit(self, *args, **kwargs):
        future = orig(self, *args, **kwargs)
        concurrent.futures.ThreadPoolExecutor.submit = orig
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the handler runs here, inside `submit`
        return future
    concurrent.futures.ThreadPoolExecutor.submit = submit

    t0 = time.time()
    try:
        jaxmdp.solve(long_mdp, solver, max_iters=10**8)
        out = {"error": "not interrupted"}
    except KeyboardInterrupt:
        out = {"interrupt": time.time() - t0}
    print(json.dumps(out), flush=True)
    # A normal exit: the interpreter joins the helper threads, whose abandoned solve stops.
    """
)


def test_ctrl_c_inside_submit_stops_the_queued_solve_and_exit_does_not_wait():
    # Before: the KeyboardInterrupt came out of `submit` without the future, so the queued
    # solve (minutes) was never asked to stop and the interpreter's exit waited for it (a CI
    # run hung when the interrupt came while `submit` started a thread). Later: the exit
    # aborted ("FATAL: exception not rethrown", rc -6) when it began while the abandoned
    # program was still stopping (its arrays were freed on a daemon thread; 3 runs in 10
    # with these slices, before `_interrupt._abandon`'s thread was made a non-daemon).
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", SUBMIT_SCRIPT], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in out, out
    assert out["interrupt"] < 2.0, out
    # The long solve stopped within a slice, so the process ended soon after.
    assert time.monotonic() - t0 < 60, time.monotonic() - t0
