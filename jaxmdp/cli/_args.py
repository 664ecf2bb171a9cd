"""Argument parsing: the parser, and value checks that name the argument they reject."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

INT32_MAX = int(np.iinfo(np.int32).max)  # iteration counts and chunk sizes are int32 in JAX
DEFAULT_MAX_ITERS = 10_000
DEFAULT_OUT = "jaxmdp-sweep"
SOLVERS = ("vi", "pi", "mpi", "gs", "anderson", "soft", "rvi", "lp")
# Positional model names: the lecture world, or a Gymnasium toy-text family (resolved to the
# newest registered version, e.g. Taxi-v3 or Taxi-v4, whichever this Gymnasium has).
GYM_SHORTCUTS = {
    "frozenlake": "FrozenLake",
    "frozenlake8x8": "FrozenLake8x8",
    "cliffwalking": "CliffWalking",
    "taxi": "Taxi",
}
MODELS = ("gridworld", *GYM_SHORTCUTS)


class CliError(ValueError):
    """A bad argument or combination of arguments: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + error)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_values(text: str, name: str) -> np.ndarray:
    """`x`, `a,b,c` or `start:stop:num` -> 1-D float array of finite numbers.

    Raises:
      CliError: naming `name` and the text.
    """
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if not 1 <= num <= 10_000_000:
                raise ValueError
            vals = np.linspace(start, stop, num)
        else:
            vals = np.array([float(t) for t in text.split(",")])
    except ValueError:
        raise CliError(
            f"{name}: expected a number, a list a,b,c or start:stop:num (1 <= num <= 1e7); "
            f"got {text!r}"
        ) from None
    if not np.all(np.isfinite(vals)):
        raise CliError(f"{name}: values must be finite; got {text!r}")
    return vals


def check_range(vals: np.ndarray, name: str, lo: float, hi: float) -> None:
    bad = vals[(vals < lo) | (vals > hi)]
    if bad.size:
        raise CliError(f"{name} must be in [{lo:g}, {hi:g}]; got {bad[0]:g}")


def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer in [{lo}, {hi}]; got {text!r}")
        return value

    return parse


def _float_in(lo: float, hi: float, *, open_lo: bool = True):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > lo if open_lo else value >= lo) and value <= hi
        if not ok:
            left = "(" if open_lo else "["
            raise argparse.ArgumentTypeError(
                f"must be a finite number in {left}{lo:g}, {hi:g}]; got {text!r}"
            )
        return value

    return parse


def parse_env_kwargs(tokens: list[str] | None) -> dict:
    """`--env-kwargs` as one JSON object, or `key=value` pairs (values read as JSON where they
    parse, `True`/`False`/`None` too, else as strings)."""
    if not tokens:
        return {}
    if len(tokens) == 1 and tokens[0].lstrip().startswith("{"):
        try:
            kwargs = json.loads(tokens[0])
        except json.JSONDecodeError as e:
            raise CliError(f"--env-kwargs: invalid JSON ({e.msg}); got {tokens[0]!r}") from None
        if not isinstance(kwargs, dict):
            raise CliError(f"--env-kwargs: expected a JSON object; got {tokens[0]!r}")
        return kwargs
    kwargs = {}
    for token in tokens:
        key, sep, text = token.partition("=")
        if not sep or not key.isidentifier():
            raise CliError(
                f"--env-kwargs: expected key=value pairs or one JSON object; got {token!r}"
            )
        python = {"True": True, "False": False, "None": None}
        if text in python:
            kwargs[key] = python[text]
            continue
        try:
            kwargs[key] = json.loads(text)
        except json.JSONDecodeError:
            kwargs[key] = text
    return kwargs


def parse_terminal(text: str) -> tuple[str, str]:
    """`SYMBOL=VALUES` -> `(symbol, values text)`."""
    symbol, sep, values = text.partition("=")
    if not sep or len(symbol) != 1 or not values:
        raise CliError(
            f"--terminal-reward: expected SYMBOL=VALUES with a one-character symbol (e.g. "
            f"G=10 or +=0.5:1:6); got {text!r}"
        )
    return symbol, values


def _model_arguments(p, sweep: bool) -> None:
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        choices=MODELS,
        help="gridworld (default: Russell & Norvig's 4x3 world) or a Gymnasium toy-text "
        "shortcut (frozenlake, frozenlake8x8, cliffwalking, taxi)",
    )
    p.add_argument("--layout", metavar="FILE", help="an ASCII grid-world layout file")
    p.add_argument(
        "--env", metavar="ID", help="a Gymnasium toy-text environment id, e.g. FrozenLake-v1"
    )
    p.add_argument(
        "--env-kwargs",
        nargs="+",
        action="extend",
        metavar="KEY=VALUE",
        help="keyword arguments for gymnasium.make: key=value pairs or one JSON object",
    )
    vals = "values (x, a,b,c or start:stop:num)" if sweep else "value"
    p.add_argument(
        "--step-reward",
        help=f"grid worlds: reward of every non-terminal move, {vals} "
        f"(default: {'-2:0:201' if sweep else '-0.04'})",
    )
    p.add_argument(
        "--slip",
        help=f"grid worlds: probability of slipping sideways, in [0, 1], {vals} "
        "(default: 0.2, the 0.8/0.1/0.1 model)",
    )
    p.add_argument(
        "--discount",
        help=f"discount in [0, 1], {vals} (default: {'0.9:1:11' if sweep else '1'})",
    )
    p.add_argument(
        "--terminal-reward",
        action="append",
        metavar="SYMBOL=VALUES",
        help="grid worlds: reward for entering the terminal cells marked SYMBOL in the "
        "layout (repeatable; '+' and '-' default to +1 and -1)",
    )


def _solver_arguments(p, sweep: bool) -> None:
    solvers = SOLVERS if not sweep else tuple(s for s in SOLVERS if s != "lp")
    p.add_argument(
        "--solver",
        choices=solvers,
        default="vi",
        help="value iteration, policy iteration, modified PI, Gauss-Seidel VI, Anderson VI, "
        "soft (entropy-regularised) VI, relative VI (average reward)"
        + (", linear programming (HiGHS)" if not sweep else "")
        + " (default: vi)",
    )
    p.add_argument(
        "--tol",
        type=_float_in(0, math.inf),
        help="accuracy target of vi, mpi, gs, anderson, soft, rvi (default: the solver's)",
    )
    p.add_argument("--rule", choices=("span", "sup"), help="stopping rule of vi, mpi, soft")
    p.add_argument(
        "--eval-sweeps", type=_int_in(1, 100_000), help="mpi: evaluation sweeps per step"
    )
    p.add_argument("--memory", type=_int_in(1, 50), help="anderson: iterates remembered")
    p.add_argument("--temperature", type=_float_in(0, math.inf), help="soft: temperature > 0")
    p.add_argument(
        "--initial-sweeps", type=_int_in(0, 1_000), help="pi: backups before the first policy"
    )
    p.add_argument("--tau", type=_float_in(0, 1), help="rvi: aperiodicity damping in (0, 1]")
    p.add_argument(
        "--max-iters",
        type=_int_in(1, INT32_MAX),
        help=f"iteration cap per MDP (default: {DEFAULT_MAX_ITERS}; not for lp)",
    )
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--x64", action="store_true", help="compute in float64")
    precision.add_argument(
        "--float32", action="store_true", help="compute in float32 (the default, as the library)"
    )
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people, json (one document on stdout) for scripts (default: text)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxmdp", description="Solve and sweep finite MDPs with jaxmdp.")
    sub = parser.add_subparsers(dest="command", metavar="{solve,sweep,bench}")
    solve = sub.add_parser("solve", help="solve one model; print its policy and values")
    _model_arguments(solve, sweep=False)
    _solver_arguments(solve, sweep=False)
    solve.add_argument("--plot", metavar="FILE", help="also save a values/policy heatmap")
    sweep = sub.add_parser(
        "sweep", help="solve a model over a grid of parameters; summary, table and plots"
    )
    _model_arguments(sweep, sweep=True)
    _solver_arguments(sweep, sweep=True)
    sweep.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="output folder, replaced as a whole by the new results: a new, empty or "
        "earlier jaxmdp output folder (default: ./%(default)s)",
    )
    sweep.add_argument(
        "--chunk-size",
        type=_int_in(1, INT32_MAX),
        help="MDPs per compiled call (default: as many as fit in memory)",
    )
    sweep.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="write each finished chunk into DIR as it completes; run the same command again "
        "after an interruption to solve only the unfinished chunks",
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--no-plots", action="store_true", help="skip the plots")
    sub.add_parser(
        "bench",
        help="run the benchmarks of jaxmdp's own source checkout (needs --out FILE; "
        "other args go to benchmarks/run.py)",
        add_help=False,
    )
    return parser


def join_option_values(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--step-reward -2:0:201` -> `--step-reward=-2:0:201`.

    argparse takes a token starting with '-' for an option unless it looks like a plain
    negative number, so ranges (`-2:0:201`) and symbols (`-=-1`) after an option that takes
    one value are glued to it.
    """
    takes_value = set()
    subparsers = parser._subparsers
    assert subparsers is not None  # built by `build_parser` with subcommands
    choices = subparsers._group_actions[0].choices
    assert isinstance(choices, dict)
    for sub in choices.values():
        for action in sub._actions:
            if action.nargs is None and action.option_strings:
                takes_value.update(action.option_strings)
    out: list[str] = []
    for token in argv:
        prev = out[-1] if out else ""
        if prev in takes_value and token.startswith("-") and not token.startswith("--"):
            if token not in ("-h",):
                out[-1] = f"{prev}={token}"
                continue
        out.append(token)
    return out
