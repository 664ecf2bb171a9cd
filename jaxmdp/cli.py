"""The `jaxmdp` command line: solve or sweep the lecture grid world, run the benchmarks.

    jaxmdp solve gridworld --step-reward -0.04 --slip 0.2 [--discount 1] [--solver vi|pi|mpi]
    jaxmdp sweep gridworld --step-reward -2:0:201 --discount 0.9:1:11 --out DIR
    jaxmdp sweep                      # the same, with these defaults: the README's main job
    jaxmdp bench [args]               # benchmarks.run (from a source checkout)

Numbers: a value `x`, a list `a,b,c`, or `start:stop:num` (like `numpy.linspace`).
Computations run in float64 unless `--float32` is given (the grid world is tiny; float64 lets
the default `tol` be certified at every discount). Bad arguments: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_STEP_REWARDS = "-2:0:201"
DEFAULT_DISCOUNTS = "0.9:1:11"
DEFAULT_OUT = "jaxmdp-sweep"
MODELS = ("gridworld",)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + error)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_values(text: str, name: str) -> np.ndarray:
    """`x`, `a,b,c` or `start:stop:num` -> 1-D float array."""
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if num < 1:
                raise ValueError
            return np.linspace(start, stop, num)
        vals = np.array([float(t) for t in text.split(",")])
    except ValueError:
        raise ValueError(
            f"{name}: expected a number, a list a,b,c or start:stop:num; got {text!r}"
        ) from None
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"{name}: values must be finite; got {text!r}")
    return vals


def _check_range(vals, name, lo, hi):
    bad = vals[(vals < lo) | (vals > hi)]
    if bad.size:
        raise ValueError(f"{name} must be in [{lo}, {hi}]; got {bad[0]:g}")


def _solver(args):
    import jaxmdp

    tol = args.tol
    if tol is not None and not tol > 0:
        raise ValueError(f"--tol must be > 0; got {tol:g}")
    kw = {} if tol is None else {"tol": tol}
    if args.solver == "vi":
        return jaxmdp.ValueIteration(**kw)
    if args.solver == "mpi":
        return jaxmdp.ModifiedPolicyIteration(**kw)
    if tol is not None:
        raise ValueError("--tol does not apply to --solver pi (policy iteration is exact)")
    return jaxmdp.PolicyIteration()


def _common(p, sweep: bool):
    p.add_argument(
        "model",
        nargs="?",
        default="gridworld",
        choices=MODELS,
        help="the model (default: gridworld, Russell & Norvig's 4x3 world)",
    )
    vals = "values (x, a,b,c or start:stop:num)" if sweep else "value"
    p.add_argument(
        "--step-reward",
        default=DEFAULT_STEP_REWARDS if sweep else "-0.04",
        help=f"reward of every non-terminal move: {vals} (default: %(default)s)",
    )
    p.add_argument(
        "--slip",
        default="0.2",
        help=f"probability of slipping sideways, in [0, 1]: {vals} "
        "(default: %(default)s, the 0.8/0.1/0.1 model)",
    )
    p.add_argument(
        "--discount",
        default=DEFAULT_DISCOUNTS if sweep else "1",
        help=f"discount in [0, 1]: {vals} (default: %(default)s)",
    )
    p.add_argument(
        "--solver",
        choices=("vi", "pi", "mpi"),
        default="vi",
        help="value iteration, policy iteration or modified PI (default: vi)",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=None,
        help="accuracy target of vi / mpi (default: the solver's, 1e-6 where the dtype "
        "can certify it)",
    )
    p.add_argument("--max-iters", type=int, default=10_000, help="iteration cap per MDP")
    p.add_argument("--float32", action="store_true", help="compute in float32 (default: float64)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxmdp", description="Solve and sweep finite MDPs with jaxmdp.")
    sub = parser.add_subparsers(dest="command", metavar="{solve,sweep,bench}")
    solve = sub.add_parser("solve", help="solve one grid world; print policy and values")
    _common(solve, sweep=False)
    solve.add_argument("--plot", metavar="FILE", help="also save a values/policy heatmap")
    sweep = sub.add_parser(
        "sweep",
        help="sweep step reward x discount (x slip); summary, table and plots",
    )
    _common(sweep, sweep=True)
    sweep.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="output folder for the table and plots (default: ./%(default)s)",
    )
    sweep.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="MDPs per compiled call (default: as many as fit in memory)",
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--no-plots", action="store_true", help="skip the plots")
    sub.add_parser(
        "bench", help="run the benchmarks (benchmarks.run; args are forwarded)", add_help=False
    )
    return parser


def _scalar(text, name, lo=None, hi=None) -> float:
    vals = parse_values(text, name)
    if vals.size != 1:
        raise ValueError(f"{name} takes one value for `jaxmdp solve`; got {text!r}")
    if lo is not None:
        _check_range(vals, name, lo, hi)
    return float(vals[0])


def _describe(args) -> str:
    return "Russell & Norvig's 4x3 grid world" if args.model == "gridworld" else args.model


def _cmd_solve(args) -> int:
    import jaxmdp
    from jaxmdp import models

    step = _scalar(args.step_reward, "--step-reward")
    slip = _scalar(args.slip, "--slip", 0, 1)
    discount = _scalar(args.discount, "--discount", 0, 1)
    solver = _solver(args)
    mdp = models.gridworld(step_reward=step, slip=slip, discount=discount)
    sol = jaxmdp.solve(mdp, solver, max_iters=args.max_iters)
    status = jaxmdp.Status(int(sol.status))
    print(f"{_describe(args)}: step reward {step:g}, slip {slip:g}, discount {discount:g}")
    print(
        f"{solver}: {status.name} after {int(sol.num_iters)} iterations, "
        f"error bound {float(sol.error_bound):.3g}"
    )
    if status != jaxmdp.Status.SUCCESS:
        print(f"  {status.message}")
    print("\nPolicy:")
    print(models.render_policy(None, sol.policy))
    print("\nValues:")
    print(models.render_values(None, sol.values))
    if args.plot:
        from jaxmdp import plot

        plot.gridworld(
            sol.values,
            sol.policy,
            title=f"step reward {step:g}, slip {slip:g}, discount {discount:g}",
            path=args.plot,
        )
        print(f"\nwrote {args.plot}")
    return 0 if status == jaxmdp.Status.SUCCESS else 1


def _policies_text(result) -> str:
    """The distinct policies side by side as arrow grids."""
    from jaxmdp import models

    labels, pols = result.distinct_policies()
    flat = labels.reshape(-1)
    blocks = []
    for k, pol in enumerate(pols):
        first = np.unravel_index(int(np.flatnonzero(flat == k)[0]), result.shape)
        at = ", ".join(
            f"{n}={result.axes[n][i]:.4g}" for n, i in zip(result.names, first, strict=True)
        )
        rows = models.render_policy(None, pol).splitlines()
        blocks.append([f"policy {k}: {int((flat == k).sum())} pts", f"e.g. {at}", *rows])
    out = []
    for start in range(0, len(blocks), 4):
        group = blocks[start : start + 4]
        width = [max(len(line) for line in b) + 3 for b in group]
        for r in range(max(len(b) for b in group)):
            out.append(
                "".join(
                    (b[r] if r < len(b) else "").ljust(w) for b, w in zip(group, width, strict=True)
                ).rstrip()
            )
        out.append("")
    return "\n".join(out)


def _cmd_sweep(args) -> int:
    import jaxmdp
    from jaxmdp import models

    steps = parse_values(args.step_reward, "--step-reward")
    slips = parse_values(args.slip, "--slip")
    discounts = parse_values(args.discount, "--discount")
    _check_range(slips, "--slip", 0, 1)
    _check_range(discounts, "--discount", 0, 1)
    if args.chunk_size is not None and args.chunk_size < 1:
        raise ValueError(f"--chunk-size must be >= 1; got {args.chunk_size}")
    solver = _solver(args)
    axes = {"step_reward": steps, "discount": discounts}
    if slips.size > 1:
        axes["slip"] = slips

        def build(step_reward, discount, slip):
            return models.gridworld(step_reward=step_reward, slip=slip, discount=discount)
    else:
        slip = float(slips[0])

        def build(step_reward, discount):
            return models.gridworld(step_reward=step_reward, slip=slip, discount=discount)

    size = int(np.prod([len(v) for v in axes.values()]))
    dims = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
    print(
        f"Sweeping {_describe(args)} ({dims} = {size:,} MDPs; {solver}, "
        f"{'float32' if args.float32 else 'float64'})",
        flush=True,
    )
    t0 = time.perf_counter()
    result = jaxmdp.sweep(
        build,
        solver,
        max_iters=args.max_iters,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
        **axes,
    )
    elapsed = time.perf_counter() - t0
    summary = result.summary()
    print(
        f"done in {elapsed:.1f} s (compile included; {result.num_chunks} chunk(s) on "
        f"{result.num_devices} device(s)).\n"
    )
    print(summary)
    print("\nThe distinct optimal policies:\n")
    policies = _policies_text(result)
    print(policies)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = list(result.save(out / "sweep"))
    (out / "summary.txt").write_text(summary + "\n\n" + policies)
    written.append(str(out / "summary.txt"))
    if not args.no_plots:
        written += _sweep_plots(result, out, axes, build, solver, args)
    print("wrote " + ", ".join(written))
    return 0


def _sweep_plots(result, out: Path, axes, build, solver, args) -> list[str]:
    import jaxmdp

    if importlib.util.find_spec("matplotlib") is None:
        print('(no plots: matplotlib is not installed; pip install "jaxmdp-solver[plot]")')
        return []
    from jaxmdp import plot

    paths = []
    at = {"slip": 0} if "slip" in axes else None
    if result.ok.any():
        paths.append(out / "phase_diagram.png")
        plot.phase_diagram(result, "step_reward", "discount", at=at, path=paths[-1])
        paths.append(out / "policies.png")
        plot.policies(result, path=paths[-1])
    # Convergence of the member that took the most iterations.
    idx = np.unravel_index(int(np.argmax(result.num_iters)), result.shape)
    params = {n: float(result.axes[n][i]) for n, i in zip(result.names, idx, strict=True)}
    n = int(min(result.num_iters[idx] + 10, args.max_iters))
    hist = jaxmdp.convergence_history(build(**params), solver, max(n, 2))
    label = ", ".join(f"{k}={v:.3g}" for k, v in params.items())
    paths.append(out / "convergence.png")
    plot.convergence({label: hist}, title="convergence of the slowest member", path=paths[-1])
    return [str(p) for p in paths]


def _cmd_bench(argv) -> int:
    try:
        from benchmarks.run import main as bench_main
    except ImportError:
        if (Path.cwd() / "benchmarks" / "run.py").is_file():
            sys.path.insert(0, str(Path.cwd()))
            from benchmarks.run import main as bench_main
        else:
            print(
                "jaxmdp: `jaxmdp bench` runs benchmarks/run.py of a source checkout; run it "
                "from the repository root (or `python -m benchmarks.run` there).",
                file=sys.stderr,
            )
            return 2
    return int(bench_main(list(argv)) or 0)


def _join_negative_values(argv: list[str]) -> list[str]:
    """`--step-reward -2:0:201` -> `--step-reward=-2:0:201` (argparse reads -2:0:201 as an
    option: it only recognises plain negative numbers)."""
    out: list[str] = []
    for token in argv:
        prev = out[-1] if out else ""
        joinable = prev.startswith("--") and "=" not in prev
        if joinable and re.match(r"^-[\d.]", token):
            out[-1] = f"{prev}={token}"
        else:
            out.append(token)
    return out


def _main(argv) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return _cmd_bench(argv[1:])
    parser = _parser()
    args = parser.parse_args(_join_negative_values(argv))
    if args.command is None:
        parser.print_help()
        return 2
    import jax

    with jax.enable_x64(not args.float32):
        return _cmd_solve(args) if args.command == "solve" else _cmd_sweep(args)


def main(argv=None) -> int:
    """Entry point of the `jaxmdp` console script. Returns the exit code."""
    try:
        return _main(argv)
    except (ValueError, TypeError) as e:  # bad arguments (InvalidMDPError is a ValueError)
        print(f"jaxmdp: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (MemoryError, OSError) as e:
        print(f"jaxmdp: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("jaxmdp: interrupted", file=sys.stderr)
        return 130


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    raise SystemExit(main())
