"""jaxmdp's rows: the public API only (`jaxmdp.solve`, `jaxmdp.MDP`, the solver classes).

To benchmark another jaxmdp configuration (a tiled / fast path, another solver, other
hyperparameters), add ONE `JaxmdpRow` to `JAXMDP_ROWS`; `call` can route to any public entry
point. jaxmdp is imported lazily: while `jaxmdp.solve` is missing the rows are skipped with a note.

Timing. By default a row times `jaxmdp.solve(mdp, solver)` exactly as a user calls it, on arrays
already on the device: `solve` jits itself and also makes host-side decisions from concrete
inputs (e.g. it reads a shared `transitions` for sparsity, and the discounts for gamma = 1), which
an outer `jax.jit` would turn into the generic traced path. Compile time is then
"first call - median of later calls". A row with `outer_jit=True` instead wraps the call in
`jax.jit` with P, R and gamma as traced arguments (what a user's own jitted code gets) and
measures compile time ahead of time with `lower(...).compile()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import _timing
from benchmarks._harness import Candidate, Config, Outcome
from benchmarks.workloads import CORE, WORKLOADS, Workload


def _solve(jm, mdp, solver, max_iters: int):
    return jm.solve(mdp, solver, max_iters=max_iters)


@dataclass(frozen=True)
class JaxmdpRow:
    """One jaxmdp configuration benchmarked on every workload in `workloads`.

    Attributes:
      label: row name in the table.
      make_solver: `(jaxmdp module, tol) -> solver`.
      algo: "VI", "PI" or "MPI" (selects the work model for GB/s and % of limit).
      rule: stopping rule as shown in the table ("span", "sup", "policy stable", ...).
      eval_sweeps: policy sweeps after each iteration but the last (MPI: `eval_sweeps - 1`).
      call: `(jaxmdp module, mdp, solver, max_iters) -> jaxmdp.Solution`.
      outer_jit: wrap `call` in `jax.jit` (P, R, gamma traced) and compile ahead of time.
      scaling: also used for the scaling curves.
      quick_workloads: the workloads it runs on with `--quick` (compiles dominate that mode).
    """

    label: str
    make_solver: Callable[[Any, float], Any]
    algo: str = "VI"
    rule: str = "span"
    eval_sweeps: int = 0
    workloads: tuple[str, ...] = CORE
    call: Callable[..., Any] = _solve
    outer_jit: bool = False
    scaling: bool = False
    quick_workloads: tuple[str, ...] = CORE


JAXMDP_ROWS: list[JaxmdpRow] = [
    JaxmdpRow(
        "jaxmdp VI",
        lambda jm, tol: jm.ValueIteration(tol=tol, rule="span"),
        workloads=WORKLOADS,  # W1M only here: 10^6 members (issue 15)
        quick_workloads=WORKLOADS,
        scaling=True,
    ),
    JaxmdpRow(
        "jaxmdp VI",
        lambda jm, tol: jm.ValueIteration(tol=tol, rule="sup"),
        rule="sup",
        quick_workloads=("W4",),
    ),
    JaxmdpRow(
        "jaxmdp PI",
        lambda jm, tol: jm.PolicyIteration(),
        "PI",
        "policy stable",
        quick_workloads=("W3",),
    ),
    JaxmdpRow(
        "jaxmdp PI (initial_sweeps=0)",
        lambda jm, tol: jm.PolicyIteration(initial_sweeps=0),
        "PI",
        "policy stable",
        quick_workloads=(),
    ),
    JaxmdpRow(
        "jaxmdp MPI (eval_sweeps=20)",
        lambda jm, tol: jm.ModifiedPolicyIteration(tol=tol, eval_sweeps=20),
        "MPI",
        "span",
        eval_sweeps=19,
        quick_workloads=("W2",),
    ),
    JaxmdpRow(
        "jaxmdp VI, inside user jit",
        lambda jm, tol: jm.ValueIteration(tol=tol),
        outer_jit=True,
        quick_workloads=("W1",),
    ),
]


def import_jaxmdp() -> tuple[Any, str | None]:
    """(module, None) or (None, reason) when the public solve API is not there yet."""
    try:
        import jaxmdp as jm

        jm.solve, jm.MDP, jm.ValueIteration  # noqa: B018
    except (ImportError, AttributeError) as exc:
        return None, f"jaxmdp.solve not available yet ({type(exc).__name__}: {exc})"
    return jm, None


def candidates(wl: Workload, cfg: Config, rows: list[JaxmdpRow] | None = None) -> list[Candidate]:
    jm, why = import_jaxmdp()
    out = []
    for spec in JAXMDP_ROWS if rows is None else rows:
        chosen = spec.quick_workloads if cfg.quick else spec.workloads
        if wl.name in WORKLOADS and wl.name not in chosen:
            continue
        if jm is None:
            out.append(Candidate(spec.label, "jaxmdp", spec.algo, spec.rule, skip=why))
            continue
        try:
            out.append(_candidate(jm, spec, wl, cfg))
        except Exception as exc:  # a broken configuration becomes a failed row, not a crash

            def fail(max_iters, exc=exc):
                raise RuntimeError(f"setup failed: {type(exc).__name__}: {exc}") from exc

            out.append(Candidate(spec.label, "jaxmdp", spec.algo, spec.rule, run=fail))
    return out


def device_mdp(jm, wl: Workload):
    """The workload as a `jaxmdp.MDP` on the default device (untimed). W3: no batch axis."""
    import jax

    P, R, g = wl.transitions, wl.rewards, wl.discount
    if wl.single:
        R, g = R[0], g[0]
    return jm.MDP(*(jax.device_put(np.asarray(x)) for x in (P, R, g)))


def _candidate(jm, spec: JaxmdpRow, wl: Workload, cfg: Config) -> Candidate:
    import jax

    solver = spec.make_solver(jm, wl.tol)
    mdp = device_mdp(jm, wl)
    executables: dict[int, Any] = {}
    compile_s: list[float] = []

    def executable(max_iters: int):
        if max_iters not in executables:
            fn = jax.jit(lambda m: spec.call(jm, m, solver, max_iters))
            executables[max_iters], secs = _timing.aot_compile(fn, mdp)
            compile_s.append(secs)
        return executables[max_iters]

    if spec.outer_jit:

        def run(max_iters):
            return executable(max_iters or cfg.max_iters)(mdp)

        def compile_():
            executable(cfg.max_iters)
            return compile_s[0]

        how, compile_fn = "full", compile_
    else:

        def run(max_iters):
            return spec.call(jm, mdp, solver, max_iters or cfg.max_iters)

        how, compile_fn = "full", None

    def finish(sol) -> Outcome:
        values = np.asarray(sol.values, np.float32).reshape(wl.B, wl.S)
        iters = np.asarray(sol.num_iters).reshape(wl.B)
        status = np.asarray(sol.status).reshape(wl.B)
        codes, counts = np.unique(status, return_counts=True)
        notes = ""
        if (status != 0).any():
            names = {int(s): jm.Status(int(s)).name for s in codes}
            pairs = zip(codes, counts, strict=True)
            notes = "status: " + ", ".join(f"{names[int(c)]} x{n}" for c, n in pairs)
        return Outcome(values, iters, converged=status == 0, notes=notes)

    dtype = "f64" if np.dtype(mdp.rewards.dtype) == np.float64 else "f32"
    return Candidate(
        spec.label,
        "jaxmdp",
        spec.algo,
        spec.rule,
        dtype=dtype,
        run=run,
        finish=finish,
        compile=compile_fn,
        first_call_compile=compile_fn is None,
        capped=spec.algo == "VI",
        how=how,
        eval_sweeps=spec.eval_sweeps,
        target="accel" if cfg.device == "gpu" else "host",
        notes="jit(solve): AOT compile" if spec.outer_jit else "compile = first call - steady",
    )
