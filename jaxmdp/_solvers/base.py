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

from jaxmdp._mdp import MDP

RUNNING = -1  # internal status while the loop goes on; never returned to users


class SolveContext(NamedTuple):
    """Static facts the driver knows about the whole batch."""

    undiscounted: bool  # some member may have discount == 1
    zero_start: bool = False  # values0 is zeros: the first backup is Q = R (no product)
    shared_transitions: bool = False  # a batch shares one `transitions` (one GEMM per sweep)
    single: bool = False  # one MDP, no batch axes: a `lax.cond` really skips a branch


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


def check_tol(name: str, tol) -> None:
    """Hyperparameter check, only when the value is a concrete Python number (None: auto)."""
    if isinstance(tol, (int, float)) and not tol > 0:
        raise ValueError(f"{name} must be > 0; got {tol!r}.")


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
