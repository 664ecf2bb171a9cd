"""`--solver NAME` and its options -> a solver object; an option the solver lacks is an error."""

from __future__ import annotations

from jaxmdp.cli._args import DEFAULT_MAX_ITERS, CliError

# Solver -> (class name in jaxmdp, {option attribute: the solver's keyword}).
_SOLVERS = {
    "vi": ("ValueIteration", {"tol": "tol", "rule": "rule"}),
    "pi": ("PolicyIteration", {"initial_sweeps": "initial_sweeps"}),
    "mpi": (
        "ModifiedPolicyIteration",
        {"tol": "tol", "eval_sweeps": "eval_sweeps", "rule": "rule"},
    ),
    "gs": ("GaussSeidelValueIteration", {"tol": "tol"}),
    "anderson": ("AndersonValueIteration", {"tol": "tol", "memory": "memory"}),
    "soft": ("SoftValueIteration", {"tol": "tol", "temperature": "temperature", "rule": "rule"}),
    "rvi": ("RelativeValueIteration", {"tol": "tol", "tau": "tau"}),
    "lp": ("LinearProgramming", {}),
}
_OPTIONS = ("tol", "rule", "eval_sweeps", "memory", "temperature", "initial_sweeps", "tau")


def _flag(attr: str) -> str:
    return "--" + attr.replace("_", "-")


def make_solver(args):
    """The solver `args.solver` names, with the options given for it.

    Raises:
      CliError: an option given that this solver does not have (naming the ones it has).
    """
    import jaxmdp

    cls_name, accepted = _SOLVERS[args.solver]
    kwargs = {}
    for attr in _OPTIONS:
        value = getattr(args, attr, None)
        if value is None:
            continue
        if attr not in accepted:
            own = ", ".join(_flag(a) for a in accepted) or "none"
            raise CliError(
                f"{_flag(attr)} does not apply to --solver {args.solver} (its options: {own})"
            )
        kwargs[accepted[attr]] = value
    if args.solver == "lp" and args.max_iters is not None:
        raise CliError(
            "--max-iters does not apply to --solver lp (an LP has no Bellman sweeps to cap)"
        )
    return getattr(jaxmdp, cls_name)(**kwargs)


def max_iters(args) -> int:
    return DEFAULT_MAX_ITERS if args.max_iters is None else args.max_iters
