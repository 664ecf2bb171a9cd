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

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import _footprint, _interrupt
from jaxmdp._exec import dispatch
from jaxmdp._exec import plan as _plan
from jaxmdp._exec.layout import as_arrays
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

DEFAULT_MAX_ITERS = 10_000


def solve(
    mdp: MDP,
    solver=None,
    *,
    max_iters: int = DEFAULT_MAX_ITERS,
    values0=None,
    devices=None,
    compact: bool | None = None,
) -> Solution:
    """Solve an MDP, or a whole batch of them in one compiled program.

    Args:
      mdp: `MDP` with `transitions [..., S, A, S]`, `rewards [..., S, A]`, `discount [...]`;
        the leading axes broadcast against each other and form the batch shape `[...]`.
        A leaf without batch axes (typically `transitions`) is shared, never copied.
      solver: `ValueIteration()` (default), `PolicyIteration()`,
        `ModifiedPolicyIteration(...)` or any object with the solver protocol
        (`jaxmdp._solvers.base`). Each solver's docstring states its stopping rule and what
        `tol` guarantees.
      max_iters: static cap on iterations per MDP (VI sweeps, PI evaluations, MPI steps).
        Members that reach it get `Status.MAX_ITERATIONS`; the rest are unaffected.
      values0: optional start `[..., S]` (broadcast against the batch); zeros by default.
      devices: optional list of devices to split the batch over (default: JAX's default
        device only). With several, the flattened batch is sharded across them (`shard_map`
        on a 1-D mesh; shared leaves replicated), using the most devices that divide the batch
        size evenly; inputs are moved there on every call, so pre-shard big inputs yourself.
        Caution, XLA:CPU host devices (`XLA_FLAGS=--xla_force_host_platform_device_count=N`):
        with jax 0.10 we saw policy iteration hang on its second call over 2 host devices, and
        no speed-up for value iteration; it is opt-in for that reason (`DECISIONS.md`).
        Without `devices`, a concrete batch with transitions per member on CPU still uses
        every core: equal runs of its cache-sized tiles run on one host thread per core
        (VI-family solvers; each member iterates as in the single program, results equal
        within rounding; `JAXMDP_CPU_THREADS=N` sets the thread count, 1 turns it off),
        compiled with XLA:CPU's memory-optimised schedule (`DECISIONS.md` 11). Inside a
        user's `jit` / `grad` the batch is one program with JAX's default compile options
        (W2 measured 70 ms there, 38 ms eager).
      compact: gather the members still running into smaller batches as others finish
        (levels of 1/8 the size, down to 32 members), so that converged members stop
        costing work; per member nothing changes. Each level compiles the solver's step
        again (a first call 2-3x longer). `None` (default): only for batches of 256 or more
        whose sweep is heavy (`B S^2 A >= 2^27`; W4's 4,096 MDPs of S=256 under modified PI:
        13.7 s -> 1.2 s). `False`: never. `True`: whenever the batch allows it (its leaves
        each per member or shared). Value iteration with shared transitions always compacts
        (in its own kernel), and CPU tiles of per-member transitions stop on their own.

    Returns:
      `Solution` whose fields all carry the batch shape. Nothing raises for a bad member
      inside the computation: read `solution.status` or call `jaxmdp.check(solution)`.

    Gradients: `jax.grad` / `jacrev` / `jvp` of `values` and `q_values` with respect to
      `rewards`, `transitions` and `discount` work, batched and under `jit`, by the implicit
      function theorem at `V = r_pi + g P_pi V` for the returned policy, never through the
      loop (`jaxmdp._implicit`). Away from action ties this is the gradient of V*; at a tie it
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
    mdp = as_arrays(mdp)
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
    facts = _plan.gather_facts(mdp, values0, solver, num_devices=len(devices), compact=compact)
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
