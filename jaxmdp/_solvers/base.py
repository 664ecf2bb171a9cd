"""The solver protocol. The driver (`jaxmdp.solve`) owns the loop; solvers own the maths.

A solver is a frozen dataclass registered as a pytree (`register_solver`): float
hyperparameters are leaves (sweepable under `vmap`, never recompiling), structural ones are
static. It works on ONE MDP (no batch axes); the driver vmaps it over the batch, keeping leaves
without a batch axis shared. It never loops over iterations, never raises, never jits.

    init(mdp, values0, ctx) -> state
    step(mdp, state, ctx) -> state           # one iteration
    status(mdp, state, ctx) -> int32 []      # RUNNING, or a final `Status` code
    result(mdp, state, ctx) -> SolverResult  # what goes into `Solution`

Optional: `implicit_policy(mdp, result)` returns the policy (`[S]` int or `[S, A]`
probabilities) whose fixed point defines the gradient (`jaxmdp._implicit`); without it the
returned greedy policy is used. A solver whose result is not such a fixed point sets
`implicit_policy = None`, and differentiating through it raises instead of lying.

To add an algorithm: one file here with its State NamedTuple and solver class, one re-export
line in `jaxmdp/__init__.py`, one entry in `tests/solvers_list.py`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp._mdp import MDP

RUNNING = -1  # internal status while the loop goes on; never returned to users


class SolveContext(NamedTuple):
    """Static facts the driver knows about the whole batch."""

    undiscounted: bool  # some member may have discount == 1
    zero_start: bool = False  # values0 is zeros: the first backup is Q = R (no product)
    shared_transitions: bool = False  # a batch shares one `transitions` (one GEMM per sweep)
    single: bool = False  # one MDP, no batch axes: a `lax.cond` really skips a branch
    poll_every: int = 0  # > 0: check for Ctrl-C every this many iterations (jaxmdp._interrupt)


class SolverResult(NamedTuple):
    values: jax.Array  # [S]
    q_values: jax.Array  # [S, A]
    policy: jax.Array  # [S] int32
    residual: jax.Array  # []
    error_bound: jax.Array  # []


class Solver(Protocol):
    def init(self, mdp: MDP, values0: jax.Array, ctx: SolveContext): ...

    def step(self, mdp: MDP, state, ctx: SolveContext): ...

    def status(self, mdp: MDP, state, ctx: SolveContext) -> jax.Array: ...

    def result(self, mdp: MDP, state, ctx: SolveContext) -> SolverResult: ...


def register_solver(cls=None, *, static: tuple[str, ...] = ()):
    """Make `cls` a frozen dataclass pytree; fields named in `static` are static metadata."""

    def wrap(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        return jax.tree_util.register_dataclass(
            cls,
            data_fields=[n for n in names if n not in static],
            meta_fields=[n for n in names if n in static],
        )

    return wrap if cls is None else wrap(cls)


def _numbers(value):
    """`value` as a float64 NumPy array if it is concrete numeric data, else None.

    None for tracers and for the placeholders JAX itself puts into a solver when it rebuilds
    one from its leaves (`jax.vmap` builds one with `object()` leaves to match `in_axes`;
    `jax.jit` and `jax.vmap` with tracers): those are checked where they are concrete.
    """
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, (bool, np.bool_)):
        return np.asarray(float("nan"))  # True / False are not numbers here: fails every test
    if isinstance(value, (int, float, np.number, np.ndarray, jax.Array)):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):  # e.g. complex
            return np.asarray(float("nan"))
    return None


def check_number(owner: str, name: str, value, *, low=0.0, high=None, high_closed=True):
    """Validate a float hyperparameter of solver `owner` (`ValueError` / `TypeError` naming it).

    Accepts Python and NumPy numbers and concrete arrays (every entry checked): finite, in
    `(low, high]` (`high=None`: no upper limit; `high_closed=False`: `(low, high)`). Strings,
    booleans and complex numbers raise `TypeError`; tracers pass (checked when concrete).
    """
    where = f"{owner}({name}=...)"
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{where}: {name} must be a number; got the string {value!r} (write it without quotes)."
        )
    if isinstance(value, (bool, np.bool_, complex, np.complexfloating)):
        raise TypeError(f"{where}: {name} must be a real number; got {value!r}.")
    x = _numbers(value)
    if x is None:
        if isinstance(value, (list, tuple, dict, set)):
            raise TypeError(f"{where}: {name} must be a number; got a {type(value).__name__}.")
        return
    upper = "" if high is None else (f", <= {high}" if high_closed else f", < {high}")
    ok = np.all(np.isfinite(x) & (x > low))
    if high is not None:
        ok = ok and bool(np.all(x <= high if high_closed else x < high))
    if not ok:
        raise ValueError(f"{where}: {name} must be a finite number > {low}{upper}; got {value!r}.")


def check_tol(name: str, tol, owner: str = "solver") -> None:
    """`tol`-like hyperparameter: `None` (automatic) or a finite number > 0."""
    if tol is not None:
        check_number(owner, name, tol)


def check_int(owner: str, name: str, value, low: int) -> int:
    """A static integer hyperparameter >= `low`; returns it as a Python int (NumPy ints ok)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{owner}({name}=...): {name} must be an int >= {low}; got {value!r} "
            f"({type(value).__name__})."
        )
    if value < low:
        raise ValueError(f"{owner}({name}=...): {name} must be an int >= {low}; got {value!r}.")
    return int(value)


def check_choice(owner: str, name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{owner}({name}=...): {name} must be one of {choices}; got {value!r}.")


_INT32_MAX = 2**31 - 1
_JIT_HINT = (
    "it sizes the compiled loop, so it must be a Python int: under jax.jit mark it static, "
    "jax.jit(jaxmdp.solve, static_argnames=('max_iters',)), or close over it, "
    "jax.jit(lambda mdp: jaxmdp.solve(mdp, max_iters=50))"
)


def check_max_iters(max_iters) -> int:
    """`solve`'s `max_iters` as a Python int in [1, 2^31 - 1]; clear errors otherwise.

    A tracer (`jax.jit(jaxmdp.solve)(mdp, max_iters=50)` without `static_argnames`) gets a
    `TypeError` that says how to make it static.
    """
    if isinstance(max_iters, jax.core.Tracer):
        raise TypeError(f"max_iters is a traced value ({max_iters!r}); {_JIT_HINT}.")
    if isinstance(max_iters, (bool, np.bool_)) or not isinstance(max_iters, (int, np.integer)):
        raise TypeError(
            f"max_iters must be an int >= 1; got {max_iters!r} ({type(max_iters).__name__})."
        )
    if not 1 <= max_iters <= _INT32_MAX:
        raise ValueError(f"max_iters must be an int in [1, 2**31 - 1]; got {max_iters!r}.")
    return int(max_iters)


def check_array(name: str, value):
    """`value` unchanged if it is a JAX array or a tracer, else as a NumPy array of real
    numbers (`TypeError` naming `name` for strings, None, objects, complex)."""
    if isinstance(value, (jax.Array, jax.core.Tracer)):
        return value
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array; got {value!r}.")
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric (real) array; got dtype {arr.dtype}.")
    return arr


def check_flag(name: str, value) -> None:
    """An optional static bool (`compact`): True, False or None, never traced."""
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{name} is a traced value; it decides how the program is built, so it must be "
            f"True, False or None: under jax.jit mark it static (static_argnames=('{name}',))."
        )
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True, False or None; got {value!r}.")


_SOLVER_NAMES = {
    "vi": "ValueIteration",
    "value_iteration": "ValueIteration",
    "pi": "PolicyIteration",
    "policy_iteration": "PolicyIteration",
    "mpi": "ModifiedPolicyIteration",
    "gs": "GaussSeidelValueIteration",
    "anderson": "AndersonValueIteration",
    "soft": "SoftValueIteration",
    "rvi": "RelativeValueIteration",
}
_METHODS = ("init", "step", "status", "result")


def check_solver(solver, name: str = "solver") -> None:
    """Raise `TypeError` unless `solver` is a solver instance (the protocol above).

    Catches the usual slips with a message that says what to write instead: a string
    (`"vi"`), a class (`ValueIteration` without parentheses), or any other object.
    """
    if isinstance(solver, str):
        hint = _SOLVER_NAMES.get(solver.lower().replace("-", "_"))
        fix = f"jaxmdp.{hint}()" if hint else "jaxmdp.ValueIteration()"
        raise TypeError(
            f"{name} must be a solver instance such as {fix}; got the string {solver!r}."
        )
    if isinstance(solver, type):
        raise TypeError(
            f"{name} must be a solver instance, not the class {solver.__name__}: write "
            f"{solver.__name__}() (with parentheses, and hyperparameters as keywords)."
        )
    missing = [m for m in _METHODS if not callable(getattr(solver, m, None))]
    if missing:
        raise TypeError(
            f"{name} must be a solver instance such as jaxmdp.ValueIteration() (methods "
            f"{', '.join(_METHODS)}); got {type(solver).__name__} {solver!r:.80}, which has "
            f"no {', '.join(missing)}."
        )


def reduce_states(x: jax.Array, op, axis=None) -> jax.Array:
    """`op`-reduce (`jnp.maximum`, `jnp.minimum`, `jnp.logical_and`) over `axis`.

    A short major axis (the state axis of the batch-last `[S, B]` layout) is reduced slab by
    slab: XLA:CPU's reduce over a major axis is several times slower than that fused loop.
    """
    if axis == 0 and x.ndim > 1 and x.shape[0] <= 32:
        out = x[0]
        for i in range(1, x.shape[0]):
            out = op(out, x[i])
        return out
    full = {jnp.maximum: jnp.max, jnp.minimum: jnp.min, jnp.logical_and: jnp.all}[op]
    return full(x, axis=axis)


def resolution_floor(values: jax.Array, axis=None, ulps: float = 4) -> jax.Array:
    """Smallest change of `values` that rounding can still certify: about 4 ulp of max|V|.

    Below it, successive differences are rounding noise of the Bellman operator itself, so a
    stopping threshold under it can only fire at an exact floating-point fixed point.
    """
    eps = jnp.finfo(values.dtype).eps
    mag = jnp.abs(jnp.where(jnp.isfinite(values), values, 0.0))
    return ulps * eps * reduce_states(mag, jnp.maximum, axis)
