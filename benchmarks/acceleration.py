"""Accelerated value iteration vs plain value iteration near discount 1 (issue 6).

    python -m benchmarks.acceleration                      # the table in results/acceleration.md
    python -m benchmarks.acceleration --gammas 0.999 --solvers vi,anderson,anderson-m10
    python -m benchmarks.acceleration --dtype float32 --tol 1.0

Batches of B random MDPs (S states, A actions, one discount each run), three kinds:
"dense" (every row Dirichlet(1) over all S next states: fast mixing), "garnet" (every row
Dirichlet(1) over 2 random next states: slow mixing, where the span of V_k - V_{k-1} contracts
slowly) and "deterministic" (one random successor per (s, a): the greedy chains are
cycles, often periodic, so the span contracts little faster than the discount). Every
solver is certified by the same rule (values within tol/2 of V*, policy tol-optimal; see
each solver's docstring), so iterations and times compare like for like;
`max|dV|` is the largest difference to plain VI's values (both within their bounds of V*).
Iterations are Bellman backups (Anderson: accepted or rejected candidates alike). Time: median
of repeated warm calls (compile excluded, reported separately), `block_until_ready` after each.

Programmatic use (e.g. from the benchmark suite): `rows = run(...)`, `to_markdown(rows, meta)`.

Typical output (CPU, 2 shared cores, float64, tol 1e-6, A = 4; columns cut):

| B | S | kind | discount | solver | iters mean | iters max | time ms (min) | x VI |
|---:|---:|---|---:|---|---:|---:|---:|---:|
| 64 | 64 | garnet | 0.999 | vi (span) | 129.2 | 342 | 18.8 (15.5) | 1.00 |
| 64 | 64 | garnet | 0.999 | anderson m=5 | 68.1 | 118 | 15.2 (14.5) | 1.24 |
| 8 | 256 | deterministic | 0.999 | vi (span) | 13878.8 | 19352 | 2174.1 (2138.0) | 1.00 |
| 8 | 256 | deterministic | 0.999 | anderson m=5 | 534.1 | 2866 | 218.5 (214.7) | 9.95 |
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "acceleration.md"
KINDS = ("dense", "garnet", "deterministic")
SOLVERS = ("vi", "anderson", "vi-sup", "anderson-m2", "anderson-m10", "gauss-seidel")
DEFAULT_SOLVERS = ("vi", "anderson")


def make_batch(kind: str, B: int, S: int, A: int, seed: int = 0, successors: int = 2):
    """`(P [B, S, A, S], R [B, S, A])` float64 NumPy: Dirichlet(1) rows, uniform rewards."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    if kind == "dense":
        P = rng.dirichlet(np.ones(S), size=(B, S, A))
    elif kind in ("garnet", "deterministic"):
        k = successors if kind == "garnet" else 1
        P = np.zeros((B * S * A, S))
        nxt = np.argsort(rng.random((B * S * A, S)), axis=1)[:, :k]
        P[np.arange(B * S * A)[:, None], nxt] = rng.dirichlet(np.ones(k), B * S * A)
        P = P.reshape(B, S, A, S)
    else:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    return P, rng.random((B, S, A))


def make_solver(name: str, tol: float):
    """`(label, solver)` for a name in `SOLVERS`."""
    import jaxmdp

    table = {
        "vi": ("vi (span)", lambda: jaxmdp.ValueIteration(tol)),
        "vi-sup": ("vi (sup rule)", lambda: jaxmdp.ValueIteration(tol, rule="sup")),
        "anderson": ("anderson m=5", lambda: jaxmdp.AndersonValueIteration(tol, memory=5)),
        "anderson-m2": ("anderson m=2", lambda: jaxmdp.AndersonValueIteration(tol, memory=2)),
        "anderson-m10": (
            "anderson m=10",
            lambda: jaxmdp.AndersonValueIteration(tol, memory=10),
        ),
        "gauss-seidel": ("gauss-seidel", lambda: jaxmdp.GaussSeidelValueIteration(tol)),
    }
    if name not in table:
        raise ValueError(f"unknown solver {name!r}; choose from {SOLVERS}")
    label, make = table[name]
    return label, make()


def _status_counts(status: np.ndarray) -> dict[str, int]:
    import jaxmdp

    codes, counts = np.unique(status, return_counts=True)
    return {jaxmdp.Status(int(c)).name: int(n) for c, n in zip(codes, counts, strict=True)}


# (B, S): many small MDPs (tiles of 8 members share a loop, so a tile runs as long as its
# slowest member) and a few larger ones (one member per tile: each stops on its own).
CONFIGS = ((64, 64), (8, 256))


def run(
    *,
    configs=CONFIGS,
    A: int = 4,
    gammas=(0.99, 0.999),
    kinds=KINDS,
    solvers=DEFAULT_SOLVERS,
    tol: float = 1e-6,
    dtype: str = "float64",
    seed: int = 0,
    max_iters: int = 100_000,
    budget_s: float = 2.0,
    log=None,
) -> list[dict[str, Any]]:
    """Solve each (B, S) config's (kind, discount) batch with each solver; one dict per row."""
    import jax
    import jax.numpy as jnp

    import jaxmdp
    from benchmarks import _timing

    solvers = tuple(sorted(solvers, key=lambda n: n != "vi"))  # VI first: the baseline
    rows: list[dict[str, Any]] = []
    with jax.enable_x64(dtype == "float64"):
        for (B, S), kind in ((c, k) for c in configs for k in kinds):
            P, R = make_batch(kind, B, S, A, seed)
            for gamma in gammas:
                mdp = jaxmdp.MDP(
                    jnp.asarray(P, dtype), jnp.asarray(R, dtype), jnp.full((B,), gamma, dtype)
                )
                base_values, base_time = None, None
                for name in solvers:
                    label, solver = make_solver(name, tol)

                    def call(solver=solver, mdp=mdp):
                        return jaxmdp.solve(mdp, solver, max_iters=max_iters)

                    jax.clear_caches()  # so the first call's time includes the compile
                    sol, first = _timing.timed_call(call)
                    timing = _timing.time_reps(call, min_reps=7, budget_s=budget_s, warmup=False)
                    values = np.asarray(sol.values, np.float64)
                    if base_values is None:
                        base_values, base_time = values, timing.median
                    iters = np.asarray(sol.num_iters)
                    row = {
                        "B": B,
                        "S": S,
                        "kind": kind,
                        "discount": gamma,
                        "solver": name,
                        "label": label,
                        "iters_mean": float(iters.mean()),
                        "iters_max": int(iters.max()),
                        "time_s": timing.median,
                        "time_min_s": min(timing.times),
                        "spread": timing.spread,
                        "reps": timing.n,
                        "speedup_vs_first": base_time / timing.median,
                        "compile_s": max(first - timing.median, 0.0),
                        "max_error_bound": float(np.max(np.asarray(sol.error_bound))),
                        "max_abs_dv": float(np.max(np.abs(values - base_values))),
                        "status_counts": _status_counts(np.asarray(sol.status)),
                    }
                    rows.append(row)
                    if log:
                        log(
                            f"B={B} S={S} {kind} g={gamma} {label}: "
                            f"iters {row['iters_mean']:.1f} / "
                            f"{row['iters_max']}, {1e3 * row['time_s']:.1f} ms"
                        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of `run`'s rows (also used by `benchmarks.run`'s report)."""
    lines = [
        "| B | S | kind | discount | solver | iters mean | iters max | time ms (min) | x VI "
        "| compile s | max bound | max abs dV | status |",
        "|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        status = ", ".join(f"{k} {v}" for k, v in r["status_counts"].items())
        lines.append(
            f"| {r['B']} | {r['S']} | {r['kind']} | {r['discount']:g} | {r['label']} | "
            f"{r['iters_mean']:.1f} | "
            f"{r['iters_max']} | {1e3 * r['time_s']:.1f} ({1e3 * r['time_min_s']:.1f}) | "
            f"{r['speedup_vs_first']:.2f} | {r['compile_s']:.2f} | {r['max_error_bound']:.1e} | "
            f"{r['max_abs_dv']:.1e} | {status} |"
        )
    return "\n".join(lines)


def to_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Accelerated value iteration near discount 1",
        "",
        f"Generated by `python -m benchmarks.acceleration` on {meta['device']}, "
        f"{meta['time']}; jax {meta['jax']}.",
        f"Batches of B independent random MDPs with S states, A = {meta['A']}, "
        f"{meta['dtype']}, tol = {meta['tol']:g} for every solver (values certified within "
        "tol/2 of V*, policy tol-optimal: the span rule with Puterman's correction, computed "
        "from an actual Bellman backup of the returned point).",
        "dense: rows Dirichlet(1) over all S states; garnet: Dirichlet(1) over 2 random next "
        "states (slow mixing); deterministic: one random successor (cycles). Iterations = "
        "Bellman backups per MDP (mean and max over the "
        "batch; a batched solve costs as many sweeps as its slowest member). Time = median of "
        "warm calls for the whole batch (min in brackets; the gap shows how busy the shared "
        "cores were); `x VI` = VI median time / solver median time; compile = first call "
        "minus the median, with JAX's caches cleared.",
        "",
        table(rows),
    ]
    lines += [
        "",
        "Notes. The span rule alone is the big accelerator near discount 1: its iteration count "
        "depends on how fast the span of V_k - V_(k-1) contracts (the mixing of the chains), "
        "not on the discount, so on dense random MDPs plain VI stops in ~10 sweeps at 0.99 and "
        "0.999 and Anderson has nothing to gain (its mixing is pure overhead there; the "
        "sup-norm rule, `--solvers vi-sup`, needs ~1,900 and ~21,000 sweeps). On slowly mixing "
        "(garnet) MDPs Anderson needs fewer backups on average and in the worst member, and on "
        "deterministic ones (cycles: the span contracts barely faster than the discount) "
        "several times to tens of times fewer on average. Wall-clock follows the iterations "
        "of the slowest member of each tile: with B = 64, S = 64 the driver runs tiles of 8 "
        "members in one loop, and on deterministic MDPs a few members gain nothing "
        "(extrapolation rejected, the back-off keeps them within a few dozen backups of VI), "
        "so the batch gains little; with S = 256 each member is its own tile and stops on its "
        "own, and the time gain approaches the mean iteration gain. An Anderson iteration "
        "costs about twice a plain VI sweep at these sizes (the mixing's small kernels), so "
        "the iteration ratio must exceed ~2 per tile to pay. Timings on shared, busy cores "
        "are noisy: compare the min column too.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.acceleration", description=__doc__)
    p.add_argument(
        "--configs",
        default=",".join(f"{b}x{s}" for b, s in CONFIGS),
        help="batch size x states, comma-separated (default: %(default)s)",
    )
    p.add_argument("--A", type=int, default=4)
    p.add_argument("--gammas", default="0.99,0.999")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--solvers", default=",".join(DEFAULT_SOLVERS), help=f"from {SOLVERS}")
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS, help="markdown file ('-': stdout only)")
    args = p.parse_args(argv)

    import jax

    from benchmarks import _timing

    rows = run(
        configs=tuple(tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")),
        A=args.A,
        gammas=tuple(float(g) for g in args.gammas.split(",")),
        kinds=tuple(k.strip() for k in args.kinds.split(",")),
        solvers=tuple(s.strip() for s in args.solvers.split(",")),
        tol=args.tol,
        dtype=args.dtype,
        seed=args.seed,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    meta = {
        "device": _timing.device_string(),
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "jax": jax.__version__,
        "A": args.A,
        "dtype": args.dtype,
        "tol": args.tol,
    }
    text = to_markdown(rows, meta)
    print(text)
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
