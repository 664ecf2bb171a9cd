"""Argument checks at the public boundary (issue 16): the analysis functions, backward
induction, the convergence history and `make_mdp`, as exported by `jaxmdp/__init__.py`.

The implementations are jitted and, by design, never raise inside a trace (a `vmap`ped or
jitted call gets a result). Called with concrete arguments, the exported functions first
check them here and raise `ValueError` / `TypeError` naming the argument, where the jitted
code would otherwise clamp an out-of-range action or start state (a silently wrong answer),
return NaN for a NaN or negative probability, or let an `AttributeError` or a JAX
broadcasting error escape. Traced arguments pass through unchecked (checking them would
need the values), exactly as before. The library's own modules call the implementations
directly, so nothing is checked twice.
"""

from __future__ import annotations

import functools
import inspect

import jax
import numpy as np

from jaxmdp import _analysis, _construct, _history
from jaxmdp._mdp import MDP, check_shapes
from jaxmdp._solvers import finite_horizon
from jaxmdp._solvers.base import check_solver
from jaxmdp._sparse import is_sparse
from jaxmdp._validate import default_row_atol, validate_mdp

_INT32_MAX = 2**31 - 1


def _traced(x) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def _numeric(name: str, value):
    """`value` as a NumPy array of real numbers, or `TypeError` naming `name`. A
    `SparseTransitions` gets its probabilities checked (its successors are the sparse
    validation's: integers in range) and is returned as is."""
    if is_sparse(value):
        if not _traced(value):
            _numeric(f"{name}.probs", value.probs)
        return value
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array; got {value!r}.")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a numeric array; got {type(value).__name__}: {e}") from e
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric (real) array; got dtype {arr.dtype}.")
    return arr


def check_mdp(mdp, name: str = "mdp") -> None:
    """A concrete `MDP` with consistent shapes and valid data (`validate_mdp`)."""
    if not isinstance(mdp, MDP):
        raise TypeError(f"{name} must be a jaxmdp.MDP; got {type(mdp).__name__}.")
    try:
        check_shapes(mdp)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    if not _traced(mdp):
        for field in ("transitions", "rewards", "discount"):
            _numeric(f"{name}.{field}", getattr(mdp, field))
        validate_mdp(mdp)  # InvalidMDPError naming transitions / rewards / discount


def check_flag(name: str, value) -> None:
    if isinstance(value, jax.core.Tracer) or not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False (a static bool); got {value!r}.")


def check_count(name: str, value, low: int) -> int:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"{name} must be a static Python int; under jax.jit mark it static.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {low}; got {value!r}.")
    if not low <= value <= _INT32_MAX:
        raise ValueError(f"{name} must be an int in [{low}, 2**31 - 1]; got {value!r}.")
    return int(value)


def check_policy(mdp: MDP, policy, name: str = "policy") -> None:
    """Deterministic `[S]` actions in [0, A), or stochastic `[S, A]` rows of finite
    non-negative probabilities summing to 1."""
    if _traced(policy) or _traced(mdp):
        return
    arr = _numeric(name, policy)
    S, A = mdp.num_states, mdp.num_actions
    if arr.shape == (S,) and arr.dtype.kind in "iu":
        bad = (arr < 0) | (arr >= A)
        if bad.any():
            s = int(np.argmax(bad))
            raise ValueError(
                f"{name} must hold actions in [0, {A}); got {int(arr[s])} at state {s} "
                f"({int(bad.sum())} states out of range)."
            )
        return
    if arr.shape == (S, A) and arr.dtype.kind == "f":
        rows = np.sum(arr, axis=-1)
        atol = default_row_atol(arr.dtype, A)
        bad = ~np.all(np.isfinite(arr) & (arr >= 0), axis=-1) | (np.abs(rows - 1) > atol)
        if bad.any():
            s = int(np.argmax(bad))
            raise ValueError(
                f"{name}: each row of a stochastic policy must hold finite probabilities >= 0 "
                f"summing to 1 (within {atol:.3g}); state {s} has {arr[s].tolist()}."
            )
        return
    _analysis.is_stochastic(mdp, policy)  # the ValueError naming `policy` and both forms


def check_initial_distribution(mdp: MDP, value, name: str = "initial_distribution") -> None:
    if value is None or _traced(value):
        return
    arr = _numeric(name, value)
    S = mdp.num_states
    if arr.ndim == 0:
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: a start state must be an integer; got {value!r}.")
        if not 0 <= int(arr) < S:
            raise ValueError(f"{name}: start state must be in [0, {S}); got {int(arr)}.")
        return
    if arr.shape != (S,):
        return  # `initial_distribution_vector` raises, naming the argument and the shapes
    atol = default_row_atol(np.result_type(arr.dtype, np.float32), S)
    if not (np.all(np.isfinite(arr) & (arr >= 0)) and abs(float(np.sum(arr)) - 1) <= atol):
        raise ValueError(
            f"{name} must be [S] = [{S}] finite probabilities >= 0 summing to 1; got sum "
            f"{float(np.sum(arr)):.6g} and minimum {float(np.min(arr)):.6g}."
        )


def _checked(fn, checks):
    """`fn` preceded by `checks(bound arguments)`; docstring and signature kept."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{fn.__name__}: {e}") from None
        bound.apply_defaults()
        checks(bound.arguments)
        return fn(*args, **kwargs)

    return wrapper


def _policy_call(a, initial=False, flags=("undiscounted",)):
    check_mdp(a["mdp"])
    check_policy(a["mdp"], a["policy"])
    if initial:
        check_initial_distribution(a["mdp"], a["initial_distribution"])
    for f in flags:
        if f in a:
            check_flag(f, a[f])


policy_values = _checked(_analysis.policy_values, _policy_call)
policy_q_values = _checked(_analysis.policy_q_values, _policy_call)
occupancy = _checked(
    _analysis.occupancy,
    functools.partial(_policy_call, initial=True, flags=("normalized", "undiscounted")),
)
state_action_occupancy = _checked(
    _analysis.state_action_occupancy,
    functools.partial(_policy_call, initial=True, flags=("normalized", "undiscounted")),
)
stationary_distribution = _checked(
    _analysis.stationary_distribution, functools.partial(_policy_call, initial=True)
)


def _backward(a):
    check_mdp(a["mdp"])
    check_count("horizon", a["horizon"], 0)
    if a["terminal_values"] is not None and not _traced(a["terminal_values"]):
        _numeric("terminal_values", a["terminal_values"])


backward_induction = _checked(finite_horizon.backward_induction, _backward)


def _history_call(a):
    check_mdp(a["mdp"])
    if a["solver"] is not None:
        check_solver(a["solver"])
    check_count("num_iters", a["num_iters"], 1)
    if a["values0"] is not None and not _traced(a["values0"]):
        _numeric("values0", a["values0"])


convergence_history = _checked(_history.convergence_history, _history_call)


def _make_mdp_call(a):
    # transitions, rewards and discount: `make_mdp` validates them itself (InvalidMDPError
    # naming the leaf, e.g. complex or object data); `available` is checked here.
    if a.get("available") is not None and not _traced(a["available"]):
        _numeric("available", a["available"])


make_mdp = _checked(_construct.make_mdp, _make_mdp_call)
