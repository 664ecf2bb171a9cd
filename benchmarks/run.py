"""Benchmark CLI: `python -m benchmarks.run [--quick] [--device cpu|gpu] [--workloads W1,W2]
[--skip peers,torch,jaxmdp,kernels,scaling,acceleration] [--out PATH]`.

Measures the machine limits, then every implementation on every selected workload (NumPy and
torch hand-written baselines, pymdptoolbox / QuantEcon, jaxmdp's public API), checks every answer
against a float64 V*, and adds kernel rows, scaling curves and accelerated-VI rows. Prints a
markdown report and writes JSON (everything, incl. machine info and device) plus the same
markdown next to it.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# NumPy, JAX and torch are imported inside main(), after the BLAS thread count is set.

WORKLOADS = ("W1", "W2", "W3", "W4", "W1M")  # = benchmarks.workloads.WORKLOADS (lazy import)
SPARSE_WORKLOADS = ("W5", "W6", "W7")  # issue 12, on request: benchmarks/sparse_workloads.py
DEFAULT_WORKLOADS = WORKLOADS[:4]  # W1M (10^6 members, issue 15) on request: --workloads W1M
SECTIONS = ("numpy", "torch", "peers", "jaxmdp", "kernels", "scaling", "acceleration", "sweep")
FAMILIES = ("numpy", "torch", "peers", "jaxmdp")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="scaled-down workloads (< 1 minute)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS), help="e.g. W1,W1M")
    p.add_argument("--skip", default="", help=f"comma list of sections to skip: {SECTIONS}")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default: results/)")
    p.add_argument(
        "--host-devices",
        type=int,
        default=None,
        help="CPU mode: XLA host devices to create (default 1). jaxmdp rows stay on one "
        "device unless a row passes devices= (with jax 0.10, 2 host devices gave no speed-up "
        "for VI and hung policy iteration; see DECISIONS.md)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iters", type=int, default=10_000)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS / OpenMP / torch threads (default: library defaults; 1 with --quick)",
    )
    args = p.parse_args(argv)
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    for w in args.workloads:
        if w not in WORKLOADS + SPARSE_WORKLOADS:
            p.error(f"unknown workload {w!r}; choose from {WORKLOADS + SPARSE_WORKLOADS}")
    for s in args.skip:
        if s not in SECTIONS:
            p.error(f"unknown section {s!r}; choose from {SECTIONS}")
    return args


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _select_device(device: str) -> None:
    import jax

    if device == "cpu":  # also on a machine with an accelerator: everything on the host
        try:
            jax.config.update("jax_platforms", "cpu")
        except Exception:  # backends already initialised (in-process call): keep them
            pass
    elif jax.devices()[0].platform == "cpu":
        raise SystemExit("--device gpu: JAX sees no accelerator (jax.devices() is CPU only)")


def default_out(quick: bool) -> Path:
    from benchmarks import _timing

    slug = _timing.device_kind_slug()
    if slug == "cpu":  # CPU results depend on the cores: results/cpu-2core.json here
        slug += f"-{os.cpu_count()}core"  # the count `device_string` reports
    return RESULTS_DIR / f"{slug}{'-quick' if quick else ''}.json"


def host_devices(n: int) -> None:
    """One XLA CPU device per core (must run before JAX initialises its backends)."""
    if "jax" in sys.modules:
        _log("note: JAX was imported already; host device count unchanged")
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def limit_threads(n: int) -> None:
    """Cap BLAS / OpenMP / torch threads (env vars only work before NumPy is imported)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    if "numpy" in sys.modules:
        _log(f"note: NumPy was imported already; its BLAS thread count may not be {n}")
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def run_solves(args, scale: str, cfg, limits: dict) -> tuple[list[dict], dict]:
    from benchmarks import (
        baselines_numpy,
        baselines_peers,
        baselines_torch,
        jaxmdp_rows,
        paired,
        report,
    )
    from benchmarks._harness import fill_ratios, measure
    from benchmarks.reference import compute_reference
    from benchmarks.workloads import make_workload

    make_candidates = {
        "numpy": baselines_numpy.candidates,
        "torch": baselines_torch.candidates,
        "peers": baselines_peers.candidates,
        "jaxmdp": jaxmdp_rows.candidates,
    }
    rows: list[dict] = []
    described: dict[str, Any] = {}
    for name in args.workloads:
        t0 = time.perf_counter()
        wl = make_workload(name, scale, args.seed)
        ref = compute_reference(wl)
        described[name] = {**wl.describe(), "reference": ref.describe()}
        _log(f"[{name}] {wl.title}; reference: {ref.method} ({ref.seconds:.1f} s)")
        mine: list[dict] = []
        for family in FAMILIES:
            if family in args.skip:
                continue
            for c in make_candidates[family](wl, cfg):
                row = measure(c, wl, ref, limits, cfg)
                mine.append(row)
                status = (
                    row.get("skipped")
                    or row.get("failed")
                    or (f"{report.fmt_time(row['median_s'])}, err {row['max_abs_err']:.1e}")
                )
                _log(f"  {c.impl} [{c.rule}]: {status}")
        # Ratios of alternated calls, while the workload (which the calls hold) is alive.
        timed = {id(r): r.pop("_timed") for r in mine if "_timed" in r}
        paired.pair_rows(mine, timed, budget_s=2 * cfg.rep_budget_s, pause_s=cfg.pause_s / 2)
        for r in mine:
            if "paired_ratio" in r:
                _log(
                    f"  {r['impl']} [{r['rule']}]: {r['paired_ratio']:.3f} x {r['paired_with']}"
                    f" (median of {r['paired_n']} alternated pairs)"
                )
        rows += mine
        del wl, timed
        _log(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    fill_ratios(rows)
    return rows, described


def acceleration_rows(quick: bool) -> list[dict]:
    """Anderson vs plain VI, iterations and time, on the kinds of `benchmarks.acceleration`
    (float64, tol 1e-6: the promise Anderson is held to is the same as VI's)."""
    from benchmarks import acceleration

    if quick:
        kw = dict(configs=((8, 16),), A=4, gammas=(0.99,), kinds=("garnet",), budget_s=0.2)
    else:
        kw = dict(A=4, gammas=(0.99, 0.999), budget_s=2.0)
    return acceleration.run(solvers=("vi", "anderson"), tol=1e-6, dtype="float64", **kw)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = args.threads if args.threads is not None else (1 if args.quick else None)
    if threads:
        limit_threads(threads)
    if args.device == "cpu" and args.host_devices and args.host_devices > 1:
        host_devices(args.host_devices)
    _select_device(args.device)
    from benchmarks import _timing, jaxmdp_rows, kernels, report
    from benchmarks._harness import Config
    from benchmarks.limits import measure_limits

    t_start = time.perf_counter()
    scale = "quick" if args.quick else ("gpu" if args.device == "gpu" else "full")
    cfg = Config.make(args.quick, args.device)
    cfg.max_iters = args.max_iters
    cfg.threads = threads
    _log(f"benchmarks: mode {scale}, device {_timing.device_string()}")
    limits = measure_limits(args.quick, args.device)
    for key, lim in limits.items():
        _log(f"limits ({key}): {lim['summary']}")
    sparse = [w for w in args.workloads if w in SPARSE_WORKLOADS]
    args.workloads = [w for w in args.workloads if w not in SPARSE_WORKLOADS]
    rows, described = run_solves(args, scale, cfg, limits)
    res: dict[str, Any] = {
        "mode": scale,
        "machine": _timing.machine_info(),
        "config": vars(cfg),
        "limits": limits,
        "workloads": described,
        "rows": rows,
        "jaxmdp_rows": [s.label for s in jaxmdp_rows.JAXMDP_ROWS],
    }
    if "kernels" not in args.skip:
        _log("kernels ...")
        res["kernels"] = kernels.kernel_rows(scale, cfg, limits)
    if "scaling" not in args.skip:
        _log("scaling curves ...")
        res["scaling"] = kernels.scaling_rows(scale, cfg)
    if "sweep" not in args.skip and "W1M" in args.workloads:
        from benchmarks import sweep_w1m

        _log("jaxmdp.sweep end to end (W1M) ...")
        res["sweep"] = sweep_w1m.run(scale, cfg)
    if "acceleration" not in args.skip:
        _log("accelerated VI near discount 1 ...")
        res["acceleration"] = acceleration_rows(args.quick)
    if {"W1M", "W2"} & set(args.workloads):
        from benchmarks.gpu_targets import check

        res["gpu_targets"] = check(res)  # issue 15's GPU targets (meaningful in gpu mode)
    if sparse:  # W5-W7: their own rows and table, with the limits measured above
        from benchmarks import sparse_workloads

        res["sparse"] = sparse_workloads.run(sparse, args.quick, limits["host"])
    res["total_s"] = time.perf_counter() - t_start
    md = report.render(res)
    if sparse:
        md += "\n## Sparse workloads (issue 12)\n\n" + sparse_workloads.table(res["sparse"])
    out = args.out or default_out(args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=_json_default))
    out.with_suffix(".md").write_text(md)
    print(md)
    _log(f"wrote {out} and {out.with_suffix('.md')} ({res['total_s']:.1f} s)")
    return 0


def _json_default(x: Any) -> Any:
    if hasattr(x, "tolist"):  # NumPy scalars and arrays
        return x.tolist()
    return str(x)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
