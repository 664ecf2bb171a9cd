"""`solve`: the one driver. Argument checks -> facts -> plan -> dispatch.

`solve` checks its arguments, reads the static facts of the call (`jaxmdp._exec.plan`:
backend, batch layout, transitions form, solver, devices, traced or concrete), lets the
plan choose an execution strategy and hands over to `jaxmdp._exec.dispatch`. Each strategy
runs the same one-member loop (`jaxmdp._exec.member`): per member the iterations, stopping
tests and status of its own solve.

Batching: the MDP may carry any leading batch shape, per leaf, broadcasting. A leaf without
a batch axis (typically `transitions`) is never copied: under vmap the backup `P @ V`
becomes one `[S*A, S] x [S, B]` matrix-matrix product. Results of a batch agree with
one-at-a-time solves within rounding: a batch is a different compiled program (another
summation order, other kernels; XLA's results also change with the CPU's vector width), so
values differ in the last bits, and in float32 a member whose statistic sits at the
precision floor can stop one sweep apart. The same program on the same input gives
identical results.
"""

from __future__ import annotations

from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import _footprint, _interrupt
from jaxmdp._exec import dispatch
from jaxmdp._exec import plan as _plan
from jaxmdp._mdp import MDP, check_shapes
from jaxmdp._solution import Solution
from jaxmdp._solvers.base import (
    SolveContext,
    check_array,
    check_flag,
    check_max_iters,
    check_solver,
)
from jaxmdp._solvers.value_iteration import ValueIteration
from jaxmdp._typing import ArrayLike, Shape

DEFAULT_MAX_ITERS = 10_000


def _host_or_device(x):
    """JAX and NumPy arrays and Python numbers as given (a number stays weakly typed, as
    `jnp.asarray` will make it), anything else (lists) as a NumPy array."""
    if isinstance(x, (jax.Array, np.ndarray, np.generic, bool, int, float, complex)):
        return x
    return np.asarray(x)


def solve(
    mdp: MDP,
    solver=None,
    *,
    max_iters: int = DEFAULT_MAX_ITERS,
    values0: Annotated[ArrayLike, Shape("... S")] | None = None,
    devices=None,
    compact: bool | None = None,
) -> Solution:
    """Solve an MDP, or a whole batch of them in one compiled program.

    Args:
      mdp: `MDP` with `transitions [..., S, A, S]` (or `SparseTransitions` with
        `[..., S, A, K]` successor lists), `rewards [..., S, A]`, `discount [...]`; the
        leading axes broadcast against each other and form the batch shape `[...]`. A leaf
        without batch axes (typically `transitions`) is shared, never copied.
      solver: `ValueIteration()` (default) or any other solver of the package
        (`PolicyIteration()`, `ModifiedPolicyIteration(...)`, `GaussSeidelValueIteration()`,
        `AndersonValueIteration()`, `SoftValueIteration(...)`, `RelativeValueIteration()`,
        `LinearProgramming()`). Each solver's docstring states its stopping rule and what
        `tol` guarantees.
      max_iters: static cap on iterations per MDP (VI sweeps, PI evaluations, MPI steps).
        Members that reach it get `Status.MAX_ITERATIONS`; the rest are unaffected.
      values0: optional start `[..., S]` (broadcast against the batch); zeros by default.
      devices: optional list of devices to split over. Default: on a GPU/TPU backend every
        local device for a concrete batch, and for a single MDP that does not fit one
        device's memory; on CPU JAX's default device only (host devices made with
        `XLA_FLAGS=--xla_force_host_platform_device_count=N` are opt-in: they bring no
        speed-up over the default). A batch is flattened and sharded across them
        (`shard_map` on a 1-D mesh; shared leaves replicated), using the most devices that
        divide the batch size; inputs are moved there on every call, so pre-shard big
        inputs yourself. A single MDP (no batch axes) solved by value iteration or modified
        policy iteration is split by states over the most devices that divide S (one
        all-gather of the values per sweep; same iterations, policy and status as one
        device, values within rounding; give NumPy arrays and each device receives only its
        block). Devices of several processes (`jax.distributed`) work alike: call `solve`
        in every process. Without `devices`, a concrete batch with transitions per member
        on CPU already uses every core (cache-sized tiles of members on one host thread per
        core, value-iteration family; results equal one program's within rounding;
        `JAXMDP_CPU_THREADS=N` sets the thread count, 1 turns it off). Inside your own
        `jit` / `grad` the batch is one program (about half as fast on CPU for large
        batches of per-member transitions).
      compact: gather the members still running into smaller batches as others finish
        (levels of 1/8 the size, down to 32 members), so that converged members stop
        costing work; per member nothing changes. Each level compiles the solver's step
        again (a first call 2-3x longer). `None` (default): only for batches of 256 or more
        whose sweep is heavy (`B S^2 A >= 2^27`, e.g. 4,096 MDPs of 256 states under modified
        policy iteration, about 10x faster). `False`: never. `True`: whenever the batch
        allows it (its leaves each per member or shared). Value iteration with shared
        transitions always compacts (in its own kernel), and CPU tiles of per-member
        transitions stop on their own.

    Returns:
      `Solution` whose fields all carry the batch shape. Nothing raises for a bad member
      inside the computation: read `solution.status` or call `jaxmdp.check(solution)`.

    Gradients: `jax.grad` / `jacrev` / `jvp` of `values` and `q_values` with respect to
      `rewards`, `transitions` and `discount` work, batched and under `jit`, by the implicit
      function theorem at `V = r_pi + g P_pi V` for the returned policy, never through the
      loop. Away from action ties this is the gradient of V*; at a tie it
      is a one-sided derivative (that of the returned policy's value). At discount 1 the
      absorbing zero-reward states have derivative 0. `values0` and solver hyperparameters
      get no gradient.

    Notes:
      Jitted: a second call with new numbers of the same shapes and dtypes reuses the
      compiled program. Input validation (`validate_mdp`) is the constructors' job; `solve`
      checks shapes only, and flags invalid discounts per member (`Status.INVALID_INPUT`).

    Inside your own `jax.jit`: `max_iters` and `compact` decide how the program is built, so
      they must be static (a traced `max_iters` raises a `TypeError` saying so). The solver
      may be an ordinary argument (a pytree: float hyperparameters such as `tol` become
      traced leaves, sweepable without recompiling; structural ones such as `rule` stay
      static) or a static one (solvers are hashable). Runnable example::

          import jax
          import jaxmdp
          from jaxmdp import models

          mdp = models.gridworld(slip=0.2, discount=0.9)
          solve_jit = jax.jit(jaxmdp.solve, static_argnames=("max_iters", "solver"))
          sol = solve_jit(mdp, jaxmdp.PolicyIteration(), max_iters=50)
          solve_jit2 = jax.jit(jaxmdp.solve, static_argnames=("max_iters",))
          sol = solve_jit2(mdp, jaxmdp.ValueIteration(tol=1e-4), max_iters=500)
          sol = jax.jit(lambda m: jaxmdp.solve(m, max_iters=50))(mdp)  # or close over it
    """
    if solver is None:
        solver = ValueIteration()
    check_solver(solver)  # a string, a class, ...: TypeError naming `solver`
    if not isinstance(mdp, MDP):
        raise TypeError(f"solve expects a jaxmdp.MDP; got {type(mdp).__name__}.")
    max_iters = check_max_iters(max_iters)  # traced: says how to make it static
    check_flag("compact", compact)
    host = getattr(solver, "host_solve", None)
    if host is not None:  # a host solver (LinearProgramming): runs outside the jitted driver
        return host(mdp, max_iters=max_iters, values0=values0)
    check_shapes(mdp)
    # NumPy leaves stay on the host until the plan is known: "blocked" sends each device
    # only its block of states (an MDP too large for one device must never land on one),
    # and "shared_tiles" on CPU reads them in place, tile by tile.
    mdp = jax.tree.map(_host_or_device, mdp)
    S = mdp.num_states
    zero_start = values0 is None
    if zero_start:
        # NumPy, not jnp: inside a user's trace a jnp constant would be a tracer.
        values0 = np.zeros((S,), jnp.result_type(mdp.rewards, mdp.discount))
    elif not isinstance(values0, jax.Array):
        values0 = jnp.asarray(check_array("values0", values0))  # names it
    if values0.ndim < 1 or values0.shape[-1] != S:
        raise ValueError(f"values0 must have shape [..., S] with S={S}; got {values0.shape}.")
    v0_batch = tuple(values0.shape[:-1])
    batch = mdp.batch_shape
    try:
        if np.broadcast_shapes(batch, v0_batch) != batch:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"values0 has batch shape {v0_batch}, which does not broadcast to the MDP's "
            f"batch shape {batch}."
        ) from None
    devices = [] if devices is None else list(devices)

    # Facts -> plan -> dispatch (jaxmdp._exec).
    facts = _plan.gather_facts(mdp, values0, solver, devices=devices, compact=compact)
    plan = _plan.make_plan(facts)
    p_carried = any(
        any(c) for c, k in zip(facts.carried, facts.kinds, strict=True) if k == "transitions"
    )
    # Members whose loops run at once (a tile per host thread, or the whole batch): the
    # Ctrl-C slice length and the memory estimate.
    tiled = plan.inner.tile if plan.strategy == "sharded" and plan.inner else plan.tile
    members = tiled or int(np.prod(batch))
    poll = _interrupt.slice_for(solver, mdp, values0, members, int(max_iters))
    ctx = SolveContext(
        undiscounted=_plan.undiscounted(mdp.discount),
        zero_start=zero_start,
        shared_transitions=bool(batch) and not p_carried,
        single=not batch,
        poll_every=poll,
    )
    # The estimated bytes, checked before compiling: MemoryError (size, budget)
    _footprint.check(
        mdp,
        solver,
        members=members * (plan.threads if plan.strategy == "threads" else 1),
        batch=int(np.prod(batch)),
        undiscounted=ctx.undiscounted,
        single=ctx.single,
    )
    go = lambda: dispatch.run(  # noqa: E731
        plan,
        mdp,
        None if zero_start else values0,
        solver,
        max_iters=int(max_iters),
        ctx=ctx,
        devices=devices,
    )
    # Waited for where Ctrl-C is seen (`jaxmdp._interrupt`); host-thread parts wait themselves.
    return _interrupt.run(go, poll > 0, waits=plan.strategy == "threads")
