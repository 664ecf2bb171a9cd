"""Quick compiles for solves too small to repay XLA's optimisation (DECISIONS 11).

A first solve of the 4x3 lecture world took 1.7 s on the 2-core CPU, nearly all of it XLA
compiling a program that then runs in well under a millisecond; the README's sweep of 63
lecture worlds took 3.4-3.6 s for the same reason. XLA:CPU with LLVM's optimisation off
and its older fusion emitters compiles such a program about three times faster, and its
run time is still dominated by dispatch (warm solves of the lecture world: 0.5-0.85 ms with
either; measured in one shell, alternating, `benchmarks/results/cpu-2core-sweep.md`).

So a concrete CPU solve whose whole batch sweeps at most `QUICK_WORK_MAX` multiply-adds, and
a program building one small model (`models.gridworld` of one world up to `QUICK_BYTES_MAX`),
is compiled with `QUICK_OPTIONS`, per program (`jax.jit(..., compiler_options=...)`):
a user's own XLA settings stay untouched, a solve traced inside a user's jit / vmap / grad compiles
as the user's program does (compile options apply to top-level programs only), and a
jaxlib that refuses the options gets none. Another program, so results agree with the
optimised program's within rounding (as any two programs).
"""

from __future__ import annotations

import functools

import jax

QUICK_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
# Multiply-adds of one sweep of the whole batch (`_operators.sweep_work` per member): the
# lecture world is 484 per member, so a single MDP up to S = 90 with 4 actions, or 67
# lecture worlds. Above, a warm solve's own time starts to show: a single random MDP of
# S = 100-128, A = 4 took 0.7-0.9 ms per warm value-iteration solve optimised and 1.4-2.0 ms
# quick-compiled (policy iteration 0.9-1.2 vs 2.3-2.5 ms), while its first call saves ~1 s.
QUICK_WORK_MAX = 1 << 15


@functools.cache
def accepted(**compiler_options) -> dict | None:
    """`compiler_options` if this jaxlib compiles with them (an option unknown to a future
    XLA must cost time, never a failed solve), else None. Probed once per set."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=compiler_options).lower(1.0).compile()
    except Exception:  # noqa: BLE001 - any refusal means: compile without them
        return None
    return compiler_options


def options() -> dict | None:
    """`QUICK_OPTIONS` if this jaxlib accepts them, else None."""
    return accepted(**QUICK_OPTIONS)


# Bytes a model-building program writes (`models.gridworld`'s numbers of one world):
# elementwise work, so its run time is about its output's size. Batches and a sweep's chunks
# are not given the options: a chunk of any size must build the numbers its whole grid
# would (a quick-compiled chunk moved float32 members at the precision floor by a sweep).
QUICK_BYTES_MAX = 1 << 20


def traced(leaves) -> bool:
    """Whether a program built from `leaves` is part of a traced one: a leaf is a tracer, or
    a JAX trace is active (inside a user's jit even constant inputs are the user's)."""
    return any(isinstance(x, jax.core.Tracer) for x in leaves) or not top_level()


def top_level() -> bool:
    """Whether no JAX trace is active (compile options apply to top-level programs only;
    inside a user's jit even constant inputs become part of the user's program)."""
    try:
        from jax._src import core

        clean = core.trace_state_clean
    except (ImportError, AttributeError):  # not in this jax: judge by the inputs alone, as
        return True  # before (assuming a trace would turn host threads off everywhere)
    return bool(clean())


def wanted(backend: str, traced: bool, members: int, sweep_work: int) -> bool:
    """Whether a solve's programs compile with `QUICK_OPTIONS` (the planner's rule; `traced`
    as `traced()` gives it)."""
    small = members * max(sweep_work, 1) <= QUICK_WORK_MAX
    return small and backend == "cpu" and not traced


def wanted_build(nbytes: int, traced: bool) -> bool:
    """Whether a program building `nbytes` of model numbers compiles with `QUICK_OPTIONS`."""
    return nbytes <= QUICK_BYTES_MAX and jax.default_backend() == "cpu" and not traced


def jits(fn, **jit_kwargs):
    """`program(quick)`: `fn` jitted as usual (`quick` False), or jitted with `options()`
    (`quick` True; made at its first use, so the probe runs only once a quick plan is)."""
    plain = jax.jit(fn, **jit_kwargs)

    @functools.cache
    def with_options():
        return jax.jit(fn, compiler_options=options(), **jit_kwargs)

    return lambda quick: with_options() if quick else plain
