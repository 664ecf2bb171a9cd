"""`jaxmdp solve` and `jaxmdp sweep`."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from jaxmdp.cli import _text
from jaxmdp.cli._args import CliError
from jaxmdp.cli._models import Model, resolve
from jaxmdp.cli._solvers import make_solver, max_iters

# What `jaxmdp sweep` writes into its output folder (besides `jaxmdp._io.MARKER`, which
# `result_set` adds); a folder holding anything else is not replaced (the whole folder is
# swapped for the new set).
OUTPUT_FILES = frozenset(
    {
        "sweep.npz",
        "sweep.csv",
        "summary.txt",
        "phase_diagram.png",
        "policies.png",
        "convergence.png",
    }
)


def _dtype_name() -> str:
    import jax.numpy as jnp

    return jnp.dtype(jnp.result_type(float)).name


def _emit(args, text: str = "", *, flush: bool = False) -> None:
    """Human output: printed in text format, dropped in json format (stdout is the JSON)."""
    if args.format == "text":
        print(text, flush=flush)


def _check_file_target(path: str, option: str) -> None:
    from jaxmdp._io import check_writable

    try:
        check_writable(path, what=f"{option} file")
    except OSError as e:
        raise CliError(f"{option}: {e}") from None


# -- solve --------------------------------------------------------------------------------------


def cmd_solve(args) -> int:
    import jaxmdp

    model = resolve(args, sweep=False)
    solver = make_solver(args)
    if args.plot:
        if model.info is None or getattr(model.info, "layout", None) is None:
            raise CliError(f"--plot draws grid worlds; {model.name} has no grid layout")
        _check_file_target(args.plot, "--plot")
    params = model.fixed()
    if args.solver == "lp" and params["discount"] >= 1:
        raise CliError(
            "--solver lp solves the discounted problem: give --discount below 1 (at 1 the "
            "LP's optimum need not exist)"
        )
    dtype = _dtype_name()
    ignored = " (ignored: average reward)" if args.solver == "rvi" else ""
    _emit(args, f"{model.title} ({dtype}): {model.describe(params)}{ignored}", flush=True)
    mdp = model.build(**params)
    gain = None
    if args.solver == "lp":
        sol = solver.host_solve(mdp)
    elif args.solver == "rvi":
        avg = jaxmdp.solve_average_reward(mdp, solver, max_iters=max_iters(args))
        gain = float(avg.gain)
        sol = jaxmdp.Solution(
            avg.bias,
            avg.q_values,
            avg.policy,
            avg.status,
            avg.num_iters,
            avg.residual,
            avg.error_bound,
        )
    else:
        sol = jaxmdp.solve(mdp, solver, max_iters=max_iters(args))
    status = jaxmdp.Status(int(sol.status))
    # RVI's bound is on the gain, not on the (relative) values: nothing certified for them.
    value_bound = None if gain is not None else float(sol.error_bound)
    if args.plot:  # before printing: a reader closing the pipe early must not cost the file
        from jaxmdp import plot

        plot.gridworld(
            sol.values,
            sol.policy,
            model.info,
            error_bound=value_bound,
            title=f"{model.title}: {model.describe(params)}",
            path=args.plot,
        )
    if args.format == "json":
        doc = {
            "model": model.name,
            "parameters": params,
            "solver": repr(solver),
            "dtype": dtype,
            "status": status.name,
            "status_code": int(status),
            "message": status.message,
            "iterations": int(sol.num_iters),
            "residual": float(sol.residual),
            "error_bound": float(sol.error_bound),
            "values": np.asarray(sol.values),
            "policy": np.asarray(sol.policy),
            "actions": list(getattr(model.info, "action_names", None) or []) or None,
        }
        if gain is not None:
            doc["gain"] = gain
            doc["values_are"] = "bias (relative values, 0 at the reference state)"
        print(json.dumps(_text.jsonable(doc)))
    else:
        bound = f"error bound {float(sol.error_bound):.3g}"
        if gain is not None:
            bound = f"gain {_text.certified_text(gain, float(sol.error_bound))} ({bound} on it)"
        print(f"{solver}: {status.name} after {int(sol.num_iters)} iterations, {bound}")
        if status != jaxmdp.Status.SUCCESS:
            print(f"  {status.message}")
        values_word = "Bias (relative values)" if gain is not None else "Values"
        if _text.grid_of(model.info) is not None:
            print("\nPolicy:")
            print(_text.policy_text(model.info, sol.policy))
            print(f"\n{values_word}:")
            print(_text.values_text(model.info, sol.values, value_bound))
        else:
            print(f"\nPolicy and {values_word.lower()}:")
            print(_text.solution_table(model.info, sol.values, sol.policy, value_bound))
    if args.plot:
        _emit(args, f"\nwrote {args.plot}")
    return 0 if status == jaxmdp.Status.SUCCESS else 1


# -- sweep --------------------------------------------------------------------------------------


def _prepare_out(text: str) -> Path:
    """The output folder, checked before anything is solved: writable, and either new, empty
    or an earlier jaxmdp output (it is replaced as a whole)."""
    from jaxmdp._io import check_result_set

    out = Path(text).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise CliError(
            f"--out {text!r} is the current directory or contains it; the output folder is "
            "replaced as a whole, so give a folder of its own (e.g. --out jaxmdp-sweep)"
        )
    try:
        check_result_set(out, replaceable=tuple(sorted(OUTPUT_FILES)))
    except FileExistsError as e:
        raise CliError(f"--out {text!r}: {e}") from None
    except OSError as e:
        raise CliError(f"--out: {e}") from None
    return out


def _axes(model: Model, args) -> dict[str, np.ndarray]:
    axes = {k: v for k, v in model.params.items() if k in model.always_axes or v.size > 1}
    if args.solver == "rvi" and axes.get("discount", np.zeros(1)).size > 1:
        raise CliError(
            "--solver rvi ignores the discount (average reward); give --discount one value"
        )
    return axes


def cmd_sweep(args) -> int:
    import jaxmdp

    model = resolve(args, sweep=True)
    solver = make_solver(args)
    out = _prepare_out(args.out)
    axes = _axes(model, args)
    build = model.builder(tuple(axes))
    size = int(np.prod([len(v) for v in axes.values()]))
    dims = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
    fixed = {k: float(v[0]) for k, v in model.params.items() if k not in axes}
    dtype = _dtype_name()
    at = f"; {model.describe(fixed)}" if fixed else ""
    _emit(
        args, f"Sweeping {model.title} ({dims} = {size:,} MDPs{at}; {solver}, {dtype})", flush=True
    )
    t0 = time.perf_counter()
    result = jaxmdp.sweep(
        build,
        solver,
        max_iters=max_iters(args),
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
        checkpoint=args.checkpoint,
        **axes,  # type: ignore[arg-type]
    )
    elapsed = time.perf_counter() - t0
    summary = result.summary()
    policies = _text.policies_text(result, model.info)
    # Files first: a reader that closes the pipe early (`| head`) must not cost the results.
    written = _write_outputs(result, out, model, build, solver, args, summary, policies)
    _emit(
        args,
        f"done in {elapsed:.1f} s (compile included; {result.num_chunks} chunk(s) on "
        f"{result.num_devices} device(s)).\n",
    )
    _emit(args, summary)
    _emit(args, "\nThe distinct optimal policies:\n")
    _emit(args, policies)
    if args.format == "json":
        _, pols = result.distinct_policies()
        doc = {
            "model": model.name,
            "solver": repr(solver),
            "dtype": dtype,
            "axes": dict(axes),
            "fixed": fixed,
            "members": result.size,
            "succeeded": int(result.ok.sum()),
            "distinct_policies": len(pols),
            "seconds": elapsed,
            "files": written,
            "rows": _json_rows(result),
        }
        print(json.dumps(_text.jsonable(doc)))
    else:
        print(f"wrote {out}: " + ", ".join(Path(p).name for p in written))
    return 0


def _json_rows(result) -> list[dict]:
    """One dict per member (row-major): parameters, status, iterations, residual, bound,
    policy and values, all as computed (scripts get the solve's own numbers)."""
    from jaxmdp._solution import Status

    grids = np.meshgrid(*result.axes.values(), indexing="ij")
    params = {n: g.reshape(-1) for n, g in zip(result.names, grids, strict=True)}
    status = np.asarray(result.status).reshape(-1)
    iters = np.asarray(result.num_iters).reshape(-1)
    residual = np.asarray(result.residual).reshape(-1)
    bound = np.asarray(result.error_bound).reshape(-1)
    policy = np.asarray(result.policy).reshape(result.size, -1)
    values = np.asarray(result.values).reshape(result.size, -1)
    names = {int(s): s.name for s in Status}
    rows = []
    for k in range(result.size):
        row = {n: float(v[k]) for n, v in params.items()}
        row.update(  # type: ignore[call-overload]
            status=names.get(int(status[k]), f"UNKNOWN({int(status[k])})"),
            iterations=int(iters[k]),
            residual=float(residual[k]),
            error_bound=float(bound[k]),
            policy=policy[k],
            values=values[k],
        )
        rows.append(row)
    return rows


def _write_outputs(result, out: Path, model, build, solver, args, summary, policies) -> list[str]:
    """Table, summary and plots staged together and swapped in as one folder."""
    from jaxmdp._io import result_set

    with result_set(out, replaceable=tuple(sorted(OUTPUT_FILES))) as staging:
        text = summary + "\n\nThe distinct optimal policies:\n\n" + policies
        names = [p.name for p in result.write_outputs(staging, summary=text)]
        if not args.no_plots:
            names += _sweep_plots(result, staging, model, build, solver, args)
    return [str(out / n) for n in names]


def _sweep_plots(result, folder: Path, model, build, solver, args) -> list[str]:
    import jaxmdp

    if importlib.util.find_spec("matplotlib") is None:
        _emit(args, '(no plots: matplotlib is not installed; pip install "jaxmdp-solver[plot]")')
        return []
    from jaxmdp import plot

    names = []
    if result.ok.any():
        x, *rest = result.names
        y = rest[0] if rest else None
        at = {n: 0 for n in rest[1:]}
        plot.phase_diagram(result, x, y, at=at or None, path=folder / "phase_diagram.png")
        names.append("phase_diagram.png")
        if getattr(model.info, "layout", None) is not None:
            plot.policies(result, model.info, path=folder / "policies.png")
            names.append("policies.png")
    # Convergence of the member that took the most iterations.
    idx = np.unravel_index(int(np.argmax(result.num_iters)), result.shape)
    params = {n: float(result.axes[n][i]) for n, i in zip(result.names, idx, strict=True)}
    n = int(min(int(result.num_iters[idx]) + 10, max_iters(args)))
    hist = jaxmdp.convergence_history(build(**params), solver, max(n, 2))
    label = ", ".join(f"{k}={v:.3g}" for k, v in params.items())
    plot.convergence(
        {label: hist}, title="convergence of the slowest member", path=folder / "convergence.png"
    )
    names.append("convergence.png")
    return names
