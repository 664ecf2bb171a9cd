"""The model a command solves: the lecture world, a layout file or a Gymnasium environment.

A `Model` carries its parameters (the values given on the command line, one array each, in
axis order), which of them are sweep axes even with one value, a traceable builder taking
them as scalars, and what rendering needs (`ModelInfo`: layout, action names and symbols,
terminal states), taken from the built MDP's `info` when the builder attaches one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxmdp.cli._args import (
    GYM_SHORTCUTS,
    CliError,
    check_range,
    parse_env_kwargs,
    parse_terminal,
    parse_values,
)

# Parameter name -> (option, words for messages).
_OPTIONS = {
    "step_reward": ("--step-reward", "step reward"),
    "slip": ("--slip", "slip"),
    "discount": ("--discount", "discount"),
}
_DEFAULTS = {
    False: {"step_reward": "-0.04", "slip": "0.2", "discount": "1"},
    True: {"step_reward": "-2:0:201", "slip": "0.2", "discount": "0.9:1:11"},
}


def terminal_axis(symbol: str) -> str:
    """The sweep axis (and table column) of a terminal reward."""
    return f"terminal[{symbol}]"


@dataclasses.dataclass
class Model:
    """A model resolved from the command line.

    Attributes:
      name: `"gridworld"` or the Gymnasium id.
      title: what the header calls it.
      params: `{parameter: 1-D values}` in axis order.
      labels: `{parameter: words for humans}`.
      always_axes: parameters that are sweep axes even with a single value.
      build: `build(**scalars) -> MDP` for every parameter (traceable).
      info: `jaxmdp.ModelInfo` for rendering (may lack a layout).
    """

    name: str
    title: str
    params: dict[str, np.ndarray]
    labels: dict[str, str]
    always_axes: tuple[str, ...]
    build: Callable
    info: object

    def fixed(self) -> dict[str, float]:
        return {k: float(v[0]) for k, v in self.params.items()}

    def builder(self, axes: tuple[str, ...]) -> Callable:
        """`build` of the sweep axes only; the other parameters fixed at their one value."""
        fixed = {k: float(v[0]) for k, v in self.params.items() if k not in axes}
        build = self.build

        def sweep_builder(**params):
            return build(**fixed, **params)

        return sweep_builder

    def describe(self, values: dict[str, float]) -> str:
        return ", ".join(f"{self.labels[k]} {v:g}" for k, v in values.items())


def resolve(args, *, sweep: bool) -> Model:
    """The model the arguments name, its parameters parsed and checked."""
    if args.layout is not None and args.env is not None:
        raise CliError("--layout and --env choose different models; give one of them")
    shortcut = args.model if args.model in GYM_SHORTCUTS else None
    if args.model == "gridworld" and args.env is not None:
        raise CliError("the model gridworld and --env choose different models; give one")
    if shortcut and (args.layout is not None or args.env is not None):
        option = "--layout" if args.layout is not None else "--env"
        raise CliError(f"the model {args.model} and {option} choose different models; give one")
    if args.env is not None or shortcut:
        return _gymnasium(args, shortcut, sweep)
    if args.env_kwargs:
        raise CliError("--env-kwargs applies to Gymnasium environments (--env ID) only")
    return _gridworld(args, sweep)


def _values(args, name: str, sweep: bool) -> np.ndarray:
    option = _OPTIONS[name][0]
    text = getattr(args, name)
    vals = parse_values(_DEFAULTS[sweep][name] if text is None else text, option)
    if name in ("slip", "discount"):
        check_range(vals, option, 0, 1)
    if not sweep and vals.size != 1:
        raise CliError(f"{option} takes one value for `jaxmdp solve`; got {text!r}")
    return vals


def _gridworld(args, sweep: bool) -> Model:
    from jaxmdp import ModelInfo, models

    if args.layout is None:
        layout, title = None, "Russell & Norvig's 4x3 grid world"
        grid = models.GridLayout(models.RUSSELL_NORVIG_4X3)
    else:
        path = Path(args.layout)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise CliError(f"--layout: cannot read {str(path)!r}: {reason}") from None
        try:
            grid = models.GridLayout(text)
        except ValueError as e:
            raise CliError(f"--layout {str(path)!r}: {e}") from None
        layout, title = grid, f"grid world {path.name} ({grid.shape[0]}x{grid.shape[1]})"
    params = {n: _values(args, n, sweep) for n in ("step_reward", "discount", "slip")}
    labels = {n: _OPTIONS[n][1] for n in params}
    symbols = sorted({grid.symbol(s) for s in grid.terminal_states})
    given: dict[str, np.ndarray] = {}
    for text in args.terminal_reward or []:
        symbol, values = parse_terminal(text)
        if symbol not in symbols:
            raise CliError(
                f"--terminal-reward {symbol}=...: the layout has no terminal cell {symbol!r} "
                f"(its terminal symbols: {' '.join(symbols) or 'none'})"
            )
        vals = parse_values(values, f"--terminal-reward {symbol}")
        if not sweep and vals.size != 1:
            raise CliError(f"--terminal-reward takes one value for `jaxmdp solve`; got {text!r}")
        given[symbol] = vals
    missing = [s for s in symbols if s not in given and s not in "+-"]
    if missing:
        raise CliError(
            f"the layout's terminal cells {' '.join(missing)} need a reward: "
            + " ".join(f"--terminal-reward {s}=VALUE" for s in missing)
        )
    for symbol, vals in given.items():
        params[terminal_axis(symbol)] = vals
        labels[terminal_axis(symbol)] = f"terminal reward {symbol}"
    terminal_names = {terminal_axis(s): s for s in given}

    def build(step_reward, discount, slip, **terminal):
        rewards = {terminal_names[k]: v for k, v in terminal.items()}
        return models.gridworld(
            layout, step_reward=step_reward, slip=slip, discount=discount, terminal_rewards=rewards
        )

    mdp = build(**{k: float(v[0]) for k, v in params.items()})
    info = getattr(mdp, "info", None)
    if info is None or getattr(info, "layout", None) is None:
        # Until `models.gridworld` attaches its own ModelInfo: what the builder documents.
        info = ModelInfo(
            name="gridworld",
            action_names=models.ACTION_NAMES,
            action_symbols=models.ARROWS,
            layout=grid,
            terminal_states=grid.terminal_states,
        )
    return Model("gridworld", title, params, labels, ("step_reward", "discount"), build, info)


def _gym_id(family: str) -> str:
    """The newest registered version of a Gymnasium family (`Taxi` -> `Taxi-v3` or `-v4`)."""
    gymnasium = _gymnasium_module()
    pattern = re.compile(rf"^{re.escape(family)}-v(\d+)$")
    versions = [(int(m.group(1)), k) for k in gymnasium.registry if (m := pattern.match(k))]
    if not versions:
        raise CliError(f"this Gymnasium ({gymnasium.__version__}) has no {family} environment")
    return max(versions)[1]


def _gymnasium_module():
    try:
        import gymnasium
    except ImportError:
        raise ImportError(
            "Gymnasium models need the `gymnasium` package; install the `gym` extra: "
            'pip install "jaxmdp-solver[gym]"'
        ) from None
    return gymnasium


def _gymnasium(args, shortcut: str | None, sweep: bool) -> Model:
    import jax.numpy as jnp

    from jaxmdp import MDP, models

    for name in ("step_reward", "slip"):
        if getattr(args, name) is not None:
            option, words = _OPTIONS[name]
            raise CliError(
                f"{option}: a Gymnasium environment has no {words} parameter; its only "
                "parameter (and sweep axis) is --discount"
            )
    if args.terminal_reward:
        raise CliError(
            "--terminal-reward: a Gymnasium environment has no terminal-reward parameter; its "
            "only parameter (and sweep axis) is --discount"
        )
    env_id = args.env if args.env is not None else _gym_id(GYM_SHORTCUTS[str(shortcut)])
    kwargs = parse_env_kwargs(args.env_kwargs)
    gymnasium = _gymnasium_module()
    shown = " ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        env = gymnasium.make(env_id, **kwargs)
    except Exception as e:  # Gymnasium raises many types (NameNotFound, TypeError, KeyError)
        where = f"--env {env_id}" + (f" --env-kwargs {shown}" if kwargs else "")
        raise CliError(f"{where}: Gymnasium cannot make it: {type(e).__name__}: {e}") from None
    params = {"discount": _values(args, "discount", sweep)}
    try:
        base = models.from_gymnasium(env, discount=float(params["discount"][0]))
    except (TypeError, ValueError) as e:
        raise CliError(f"--env {env_id}: {e}") from None
    finally:
        env.close()
    assert isinstance(base, MDP)  # from_gymnasium without return_info
    dtype = base.rewards.dtype

    def build(discount):
        return base._replace(discount=jnp.asarray(discount, dtype))

    info = getattr(base, "info", None)
    title = f"Gymnasium {env_id}" + (f" ({shown})" if shown else "")
    return Model(env_id, title, params, {"discount": "discount"}, ("discount",), build, info)
