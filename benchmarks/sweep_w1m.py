"""W1M end to end (issue 15): `jaxmdp.sweep` of the lecture world (slip 0.2) over step
rewards in [-2, 0] x discounts in [0.5, 0.99], tol 1e-3, float32, against the bare
`jaxmdp.solve` of the same batch built beforehand, in the same process run.

Rows (after one warm-up call each, which also compiles):
- "solve (bare)": `jaxmdp.solve(mdp)` on the prebuilt batch (shared, concrete transitions);
- "sweep": `jaxmdp.sweep(builder, ...)` (build, solve, result assembly on the host);
  these two are timed `REPS` times each, alternately (bare, sweep, bare, ...), so that both
  see the same load; the table gives medians;
- "save": `SweepResult.save` (npz + csv) of that result, one run;
- "csv only": the CSV part of `save` (`SweepResult._write_csv` into a file), one run;
- "summary": `SweepResult.summary()`, one run;
- "CLI end to end": `python -m jaxmdp sweep gridworld` over the same grid (`--float32
  --tol 1e-3 --no-plots`), one run in a subprocess: interpreter start, imports, compiles,
  sweep, summary and the files (npz, csv, summary.txt), i.e. everything a user waits for.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.workloads import SIZES

# Timed runs of the bare solve and of the sweep (after the warm-ups), taken alternately.
REPS = 5


def _alternate(fns, reps: int):
    """`(last outputs, times)` of each function: one warm-up call each (compile), then `reps`
    rounds calling each once, in turn (A/B under the same load)."""
    outs = [fn() for fn in fns]
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            outs[k] = fn()
            times[k].append(time.perf_counter() - t0)
    return outs, times


def run(scale: str, cfg) -> list[dict]:
    import jax
    import jax.numpy as jnp

    import jaxmdp
    from jaxmdp.models import gridworld

    size = SIZES[scale]["W1M"]
    steps = np.linspace(-2.0, 0.0, size["n_steps"]).astype(np.float32)
    gammas = np.linspace(0.5, 0.99, size["n_gamma"]).astype(np.float32)
    solver = jaxmdp.ValueIteration(tol=1e-3)

    def builder(step_reward, discount):
        return gridworld(step_reward=step_reward, slip=0.2, discount=discount)

    one = gridworld(step_reward=jnp.asarray(steps), slip=0.2)  # rewards [n_steps, S, A]
    shape = (steps.size, gammas.size)
    mdp = jaxmdp.MDP(
        one.transitions,
        jnp.array(jnp.broadcast_to(one.rewards[:, None], shape + one.rewards.shape[-2:])),
        jnp.array(jnp.broadcast_to(jnp.asarray(gammas), shape)),
    )
    rows = []
    (sol, res), (t_solve, t_sweep) = _alternate(
        [
            lambda: jax.block_until_ready(jaxmdp.solve(mdp, solver)),
            lambda: jaxmdp.sweep(
                builder, solver, progress=False, step_reward=steps, discount=gammas
            ),
        ],
        REPS,
    )
    rows.append(_row("solve (bare)", t_solve))
    rows.append(_row("sweep (build, solve, assemble)", t_sweep))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res.save(Path(d) / "w1m")
        rows.append(_row("save (npz + csv)", [time.perf_counter() - t0]))
        t0 = time.perf_counter()
        with open(Path(d) / "only.csv", "w", encoding="utf-8", newline="") as f:
            res._write_csv(f)
        rows.append(_row("csv only (part of save)", [time.perf_counter() - t0]))
    t0 = time.perf_counter()
    res.summary()
    rows.append(_row("summary", [time.perf_counter() - t0]))
    rows.append(_row("CLI end to end (subprocess)", [_cli(size)]))
    diff = float(np.max(np.abs(np.asarray(sol.values) - res.values)))
    agree = bool((np.asarray(sol.status) == res.status).all())
    for r in rows:
        r.update(members=int(steps.size * gammas.size), max_abs_diff_sweep_vs_solve=diff)
        r["status_equal"] = agree
    return rows


def _cli(size) -> float:
    """Seconds for `jaxmdp sweep` over the W1M grid in a fresh interpreter."""
    n_s, n_g = size["n_steps"], size["n_gamma"]
    with tempfile.TemporaryDirectory() as d:
        argv = [sys.executable, "-m", "jaxmdp", "sweep", "gridworld"]
        argv += ["--step-reward", f"-2:0:{n_s}", "--discount", f"0.5:0.99:{n_g}"]
        argv += ["--slip", "0.2", "--tol", "1e-3", "--float32", "--no-plots", "--no-progress"]
        argv += ["--out", str(Path(d) / "out")]
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ))
        took = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"jaxmdp sweep failed: {done.stderr[-2000:]}")
    return took


def _row(what: str, times: list[float]) -> dict:
    return {
        "what": what,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "n": len(times),
    }


def table(rows: list[dict]) -> str:
    out = ["| step | median s | min..max | runs |", "|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['what']} | {r['median_s']:.3f} | {r['min_s']:.3f}..{r['max_s']:.3f} | {r['n']} |"
        )
    if rows:
        r = rows[0]
        ratio = rows[1]["median_s"] / r["median_s"] if len(rows) > 1 else float("nan")
        out.append(
            f"\n{r['members']} members; sweep / bare solve (medians): {ratio:.2f}x; max|dV| "
            f"{r['max_abs_diff_sweep_vs_solve']:.2g}, statuses equal: {r['status_equal']}"
        )
    return "\n".join(out)
