"""Markdown rendering of a results dict (as written to the JSON file by `benchmarks.run`)."""

from __future__ import annotations

from typing import Any


def fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def _num(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def fmt_iters(r: dict) -> str:
    lo, hi = r.get("iters_min"), r.get("iters_max")
    if hi is None:
        return "-"
    unit = {"PI": " PI", "MPI": " MPI"}.get(r["algo"], "")
    if lo == hi:
        return f"{hi}{unit}"
    return f"{hi}{unit} ({lo}–{hi}, mean {r['iters_mean']:.0f})"


def fmt_err(r: dict) -> str:
    err = r.get("max_abs_err")
    if err is None:
        return "-"
    return f"{err:.1e}" + ("" if r.get("err_ok") else " **!**")


def solve_table(rows: list[dict]) -> str:
    head = (
        "| workload | implementation | dtype | stopping rule | median time | spread | iters "
        "| GB/s | GFLOP/s | % of limit | × best hand-written | max abs err vs V* | compile "
        "| notes |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    lines, last = [], None
    for r in rows:
        wl = r["workload"] if r["workload"] != last else ""
        last = r["workload"]
        impl = r["impl"]
        if r.get("skipped") or r.get("failed"):
            why = f"skipped: {r['skipped']}" if r.get("skipped") else f"FAILED: {r['failed']}"
            lines.append(
                f"| {wl} | {impl} | {r['dtype']} | {r['stop']} | - | - | - | - | - | - "
                f"| - | - | - | {why} |"
            )
            continue
        est = "*" if (r.get("how") or "full") != "full" else ""
        notes = [r.get("how") if est else "", r.get("notes") or ""]
        if not r.get("converged"):
            notes.append(f"{r['n_unconverged']} not converged")
        if r.get("paired_ratio") is not None:
            notes.append(
                f"paired with {r['paired_with']}: {r['paired_ratio']:.2f}x its time "
                f"(median of {r['paired_n']} alternated pairs)"
            )
        ratio = r.get("ratio_vs_best")
        compile_s = r.get("compile_s")
        lines.append(
            f"| {wl} | {impl} | {r['dtype']} | {r['stop']} | {fmt_time(r['median_s'])}{est} "
            f"| {100 * r['spread']:.0f}% | {fmt_iters(r)} | {_num(r['gbps'])} "
            f"| {_num(r['gflops'])} | {r['pct_limit']:.1f}% "
            f"| {'-' if ratio is None else f'{ratio:.2f}'} | {fmt_err(r)} "
            f"| {'-' if compile_s is None else f'{compile_s:.2f} s'} "
            f"| {'; '.join(n for n in notes if n)} |"
        )
    return head + "\n".join(lines)


def kernel_table(rows: list[dict]) -> str:
    head = (
        "| kernel | implementation | B, S, A | median time | spread | GB/s | GFLOP/s "
        "| % of limit | max abs diff vs f64 | compile |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        shape = f"{r['B']}, {r['S']}, {r['A']}"
        if r.get("failed"):
            lines.append(
                f"| {r['kernel']} | {r['impl']} | {shape} | FAILED: {r['failed']} | | | | | | |"
            )
            continue
        c = r.get("compile_s")
        lines.append(
            f"| {r['kernel']} | {r['impl']} | {shape} | {fmt_time(r['median_s'])} "
            f"| {100 * r['spread']:.0f}% | {r['gbps']:.1f} | {r['gflops']:.1f} "
            f"| {r['pct_limit']:.1f}% ({r['bound']}) | {r['max_abs_diff_f64']:.1e} "
            f"| {'-' if c is None else f'{c:.2f} s'} |"
        )
    return head + "\n".join(lines)


def scaling_table(rows: list[dict]) -> str:
    head = (
        "| axis | B | S | A | implementation | rule | median time | iters | µs per MDP | GB/s |\n"
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        lead = f"| {r['axis']} | {r['B']} | {r['S']} | {r['A']} | {r['impl']} | {r['rule']} "
        if r.get("skipped") or r.get("failed"):
            lines.append(lead + f"| {r.get('skipped') or 'FAILED: ' + r['failed']} | | | |")
            continue
        lines.append(
            lead + f"| {fmt_time(r['median_s'])} | {r['iters_max']} | {r['us_per_mdp']:.2f} "
            f"| {r['gbps']:.1f} |"
        )
    return head + "\n".join(lines)


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [
        f"# jaxmdp benchmarks ({res['mode']}, {m['device']})",
        "",
        f"{m['time']}; Python {m['python']}, numpy {m['numpy']}, jax {m['jax']}, "
        f"torch {m.get('torch')}; {m['cpu_count']} CPUs ({m['cpu']}).",
        "",
        "## Limits measured in this run",
        "",
    ]
    for key, lim in res["limits"].items():
        out.append(f"- {key}: {lim['summary']}")
    out += ["", "## Workloads and float64 references", ""]
    for name, w in res["workloads"].items():
        ref = w["reference"]
        out.append(
            f"- **{name}** ({w['title']}): tol {w['tol']:g}; per batch sweep "
            f"{w['sweep_bytes'] / 1e6:.1f} MB, {w['sweep_flops'] / 1e9:.3f} GFLOP; V*: "
            f"{ref['method']}, Bellman residual {ref['bellman_residual']:.1e}, "
            f"max|V*| {ref['max_abs_value']:.1f}"
        )
    out += [
        "",
        "## Solves",
        "",
        "`*` = estimated time (capped K-sweep runs scaled to the full work, or a loop over a "
        "subset scaled to the batch; see notes). % of limit = roofline time of the work each MDP "
        "needed / time. × best = time / fastest correct hand-written baseline (numpy, torch). "
        "**!** = error above the promise tol/2 (+ 4 float32 ulp of max|V*|).",
        "",
        solve_table(res["rows"]),
    ]
    if res.get("kernels"):
        out += ["", "## Kernels: one batched Bellman backup", "", kernel_table(res["kernels"])]
    if res.get("scaling"):
        out += ["", "## Scaling (full solve, span rule, tol 1e-3)", ""]
        out.append(scaling_table(res["scaling"]))
    if res.get("sweep"):
        from benchmarks.sweep_w1m import table as sweep_table

        out += ["", "## W1M end to end: jaxmdp.sweep vs the bare solve", ""]
        out.append(sweep_table(res["sweep"]))
    if res.get("gpu_targets"):
        out += ["", "## GPU targets (issue 15; meaningful in gpu mode only)", ""]
        out += [f"- {t}: **{v}** ({d})" for t, v, d in res["gpu_targets"]]
    if res.get("acceleration"):
        from benchmarks.acceleration import table

        out += [
            "",
            "## Accelerated value iteration near discount 1 (Anderson vs VI)",
            "",
            "Batches of random MDPs (`benchmarks/acceleration.py`: dense rows, garnet rows with 2 "
            "successors, deterministic rows with 1), float64, tol 1e-6 for both solvers (same "
            "certificate). Iterations are Bellman backups per MDP; x VI = VI time / time.",
            "",
            table(res["acceleration"]),
        ]
    return "\n".join(out) + "\n"
