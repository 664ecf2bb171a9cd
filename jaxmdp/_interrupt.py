"""Ctrl-C returns control at once, and abandoned work stops within a slice (issue 16 #9).

XLA cannot cancel a running program, and a thread blocked in XLA does not see a
KeyboardInterrupt until the program ends: a long `solve` ignored Ctrl-C for minutes, and the
programs abandoned by an interrupt kept the library's host threads busy, so the next small
solve waited 64 s. Three pieces fix that for every program `solve` launches itself (concrete
inputs; inside a user's jit/vmap/grad the program is the user's to run):

1. `while_loop`: the iteration loop runs in slices of `every` iterations; between slices a
   host callback (`jax.pure_callback`, one call per slice even under `vmap`) asks whether the
   running programs should stop. `every` (`slice_iterations`) makes a slice ~5e7
   multiply-adds of work (20-50 ms), so the callback (up to a millisecond with the thread
   hops) costs a few percent at most, and a solve that needs fewer sweeps never calls it; a
   solve whose `max_iters` iterations are under 2e8 multiply-adds is not checked at all.
2. `run` / `gather`: the caller waits on a future (the program runs on a helper thread, or
   in parts on `jaxmdp._threads`' host threads), and Ctrl-C interrupts that wait at once.
   On KeyboardInterrupt the programs it abandons are asked to stop (the flag the callback
   reads stays raised until they have ended), and the interrupt propagates.
3. Before launching, `run` waits until no abandoned program is still winding down (at most
   a slice), so a new solve never sees a stop request meant for old ones. A solve whose
   programs ran while another thread's interrupt raised the flag may have been stopped
   early: it runs again (an interrupt counter tells), never returning a truncated result.

Measured (`benchmarks/results/reliability.md`): Ctrl-C acknowledged in 0.02-0.2 s; the
abandoned work stops within a second; the next solve starts at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmdp._sparse import is_sparse

# Work per slice (multiply-adds; ~20-50 ms on one core), the largest slice (iterations), and
# the work below which a whole solve (`max_iters` iterations) is not worth checking at all.
SLICE_WORK = 5e7
MAX_SLICE = 1 << 14
SHORT_WORK = 2e8


class _State:
    def __init__(self):
        self.cond = threading.Condition()
        self.abandoned = 0  # abandoned runs whose programs may still be running
        self.interrupts = 0  # interrupts so far (a run that saw one during its programs reruns)


_STATE = _State()


def _poll(k):
    """Host side of the slice check: `True` (for every member) while a stop is requested."""
    return np.full(np.shape(k), _STATE.abandoned > 0, np.bool_)


def _stop_requested(k):
    # `k` (the slice's iteration counter) ties the call to the loop, so XLA cannot hoist it
    # out; `broadcast_all` makes one call per slice under any number of `vmap`s.
    shape = jax.ShapeDtypeStruct(jnp.shape(k), jnp.bool_)
    return jax.pure_callback(_poll, shape, k, vmap_method="broadcast_all")


def checked_loop(cond_fun, body_fun, init_val):
    """`lax.while_loop` that asks for a stop after each `body_fun` where the loop goes on
    (and stops there if one came), so a loop of one body makes no host call. `cond_fun`
    must not be batched (under `vmap` the check's `lax.cond` would become a select that
    always calls the host: ~0.2 ms each here)."""

    # The carry holds whether the loop goes on (`cond_fun` and no stop request), so
    # `cond_fun` runs once per body: for the check, and for the loop's own test.
    def b(x):
        k, carry, _ = x
        carry = body_fun(carry)
        on = cond_fun(carry)
        # `k` (the count of bodies run) ties the check to this body.
        no = lambda k: jnp.zeros(jnp.shape(k), jnp.bool_)  # noqa: E731
        return k + 1, carry, on & ~lax.cond(on, _stop_requested, no, k + 1)

    return lax.while_loop(lambda x: x[2], b, (jnp.int32(0), init_val, cond_fun(init_val)))[1]


def slice_loop(cond_fun, body_fun, init_val, every: int):
    """At most `every` iterations of `lax.while_loop(cond_fun, body_fun, init_val)`."""

    def c(x):
        return (x[0] < every) & cond_fun(x[1])

    def b(x):
        return x[0] + 1, body_fun(x[1])

    return lax.while_loop(c, b, (jnp.int32(0), init_val))[1]


def while_loop(cond_fun, body_fun, init_val, every: int = 0):
    """`lax.while_loop` that, with `every > 0`, checks for a stop request after each full
    slice of `every` iterations (and stops there if one came). Same iterations otherwise.

    An outer loop of slices (`checked_loop`), each an inner loop of at most `every`
    iterations, then the check where the loop goes on: a loop that ends within its first
    slice (most solves) makes no host call, and the body is traced and compiled once.
    `cond_fun` must not be batched: a member's loop mapped over a batch is sliced outside
    its `vmap` instead (`jaxmdp._exec.member.batch_fn`). An earlier form, which ran the
    first slice as a loop of its own ahead of the outer loop, compiled the body twice
    (tests/test_exec_plan.py: 25% of its CPU time).
    """
    if every <= 0:
        return lax.while_loop(cond_fun, body_fun, init_val)
    return checked_loop(cond_fun, lambda c: slice_loop(cond_fun, body_fun, c, every), init_val)


def slice_iterations(work_per_iteration: float) -> int:
    """Iterations per slice for a loop doing `work_per_iteration` multiply-adds per sweep."""
    return int(np.clip(SLICE_WORK / max(float(work_per_iteration), 1.0), 1, MAX_SLICE))


def iteration_work(
    solver, num_states: int, num_actions: int, members: int, successors: int | None = None
) -> float:
    """Multiply-adds of one iteration of `solver` over `members` MDPs (a rough count).
    `successors`: K of the sparse form (None: dense, K = S)."""
    S, A = num_states, num_actions
    K = S if successors is None else successors
    per: float = S * K * A
    name = type(solver).__name__
    if name == "PolicyIteration":
        # dense: the LU factorisation; sparse: Krylov iterations of S K each (a few dozen)
        per += S**3 / 3 if successors is None else 50 * S * K
    elif name == "ModifiedPolicyIteration":
        per += S * K * (getattr(solver, "eval_sweeps", 1) - 1)
    return per * max(members, 1)


def slice_for(solver, mdp, values0, members: int, max_iters: int) -> int:
    """`SolveContext.poll_every` for a solve launched here: 0 (no checks, no helper thread)
    when any input is traced (the program is then part of the caller's) or when even
    `max_iters` iterations are too little work to keep Ctrl-C waiting (`SHORT_WORK`), else
    `slice_iterations`."""
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((mdp, values0, solver))):
        return 0
    S, A = mdp.rewards.shape[-2:]
    P = mdp.transitions
    K = P.next_states.shape[-1] if is_sparse(P) else None
    work = iteration_work(solver, S, A, members, K)
    if work * max_iters <= SHORT_WORK:
        return 0
    return slice_iterations(work)


def _abandon(done_wait) -> None:
    """Raise the stop flag until `done_wait()` (which blocks until the abandoned programs
    have ended) returns, on a thread of its own. A second Ctrl-C meanwhile waits until the
    thread has started (`_sigint_held`): raised between the count and the start, it left
    the flag raised for good, and every later solve waiting in `_await_quiet`.

    The thread is not a daemon, so the interpreter's exit joins it (the programs stop within
    a slice once asked). As a daemon it could still hold the last reference to the abandoned
    programs' JAX arrays when the exit began: freeing them then re-takes the GIL inside
    jaxlib's C++ destructor, where Python ends a daemon thread with `pthread_exit`, and the
    process aborted ("FATAL: exception not rethrown", a CI run of
    tests/test_interrupt.py; reproduced in 3 of 10 runs with slices of 5e8 multiply-adds).
    """

    def lower():
        try:
            done_wait()
        except BaseException:  # noqa: BLE001 - their failure is not ours to report
            pass
        finally:
            with _STATE.cond:
                _STATE.abandoned -= 1
                _STATE.cond.notify_all()

    with _sigint_held():
        with _STATE.cond:
            _STATE.abandoned += 1
            _STATE.interrupts += 1
        threading.Thread(target=lower, name="jaxmdp-abandoned", daemon=False).start()


def _await_quiet() -> None:
    """Wait (interruptibly) until no abandoned program is still winding down."""
    with _STATE.cond:
        while _STATE.abandoned:
            _STATE.cond.wait(0.05)


def gather(futures) -> tuple:
    """`tuple(f.result() for f in futures)`, where Ctrl-C abandons them (stop requested,
    flag lowered once all have ended) and propagates."""
    try:
        return tuple(f.result() for f in futures)
    except KeyboardInterrupt:
        abandon(futures)
        raise


def abandon(futures) -> None:
    """Ask the programs behind `futures` to stop; the flag stays raised until all have ended."""

    def done():
        for f in futures:
            try:
                jax.block_until_ready(f.result())
            except BaseException:  # noqa: BLE001
                pass

    _abandon(done)


def submit(executor, calls) -> list:
    """`[executor.submit(*call) for call in calls]`, with Ctrl-C held back until every call
    is queued (then raised, the queued ones abandoned).

    A KeyboardInterrupt raised inside `submit` while it started a worker thread left that
    thread unknown to its executor: it then waited on the work queue forever, and the
    interpreter's exit waited for it (a CI run's Ctrl-C test hung so); and the work queued
    before the interrupt ran on, never asked to stop.
    """
    futures: list = []
    try:
        with _sigint_held():
            for call in calls:
                futures.append(executor.submit(*call))
    except KeyboardInterrupt:
        abandon(futures)
        raise
    return futures


@contextlib.contextmanager
def _sigint_held():
    """Ctrl-C inside the block (Python's own handler, on the main thread) is raised at its
    end; elsewhere, or under another handler, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return
    held: list = []
    signal.signal(signal.SIGINT, lambda *_: held.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


# JAX's thread-local settings that change what a program computes (as `jaxmdp._threads`):
# the helper thread re-enters the caller's, or a float64 solve inside `jax.enable_x64(True)`
# would be traced in float32.
_CONFIG = (
    ("enable_x64", "jax_enable_x64"),
    ("default_matmul_precision", "jax_default_matmul_precision"),
    ("default_device", "jax_default_device"),
    ("numpy_dtype_promotion", "jax_numpy_dtype_promotion"),
    ("numpy_rank_promotion", "jax_numpy_rank_promotion"),
    ("debug_nans", "jax_debug_nans"),
    ("debug_infs", "jax_debug_infs"),
)
_HELPERS: concurrent.futures.ThreadPoolExecutor | None = None
_HELPERS_LOCK = threading.Lock()


def _helpers() -> concurrent.futures.ThreadPoolExecutor:
    global _HELPERS
    with _HELPERS_LOCK:
        if _HELPERS is None:
            _HELPERS = concurrent.futures.ThreadPoolExecutor(64, thread_name_prefix="jaxmdp-run")
        return _HELPERS


def _in_callers_config(launch):
    config = [
        (getattr(jax, m), getattr(jax.config, n))
        for m, n in _CONFIG
        if hasattr(jax, m) and hasattr(jax.config, n)
    ]

    def go():
        with contextlib.ExitStack() as stack:
            for manager, value in config:
                stack.enter_context(manager(value))
            return jax.block_until_ready(launch())

    return go


def run(launch, enabled: bool = True, *, waits: bool = False):
    """`launch()` (dispatches the programs, returns their outputs), waited for so that
    Ctrl-C interrupts it (module docstring); `enabled=False` (traced inputs): just `launch()`.

    XLA:CPU runs a program that contains host callbacks (the slice checks) synchronously on
    the thread that launches it, inside C++ where no KeyboardInterrupt is delivered, so the
    launch happens on a helper thread (the caller's JAX config re-entered) while the caller
    waits on its future, which Ctrl-C interrupts. `waits=True`: `launch` itself waits in an
    interruptible way (`gather` on host threads) and runs here.
    """
    if not enabled:
        return launch()
    while True:
        _await_quiet()
        seen = _STATE.interrupts
        if waits:
            out = launch()
        else:
            (future,) = submit(_helpers(), [(_in_callers_config(launch),)])
            try:
                out = future.result()
            except KeyboardInterrupt:
                _abandon(lambda future=future: future.exception())
                raise
        if _STATE.interrupts == seen:
            return out
        # Another thread's interrupt raised the stop flag while these programs ran: they may
        # have stopped early. Run again once the flag is down.
