"""The eager path of `jaxmdp.sweep` (issue 15): a chunk whose `solve` plan is "shared_tiles"
is built by one jitted program and solved by `solve` on the concrete batch (tiles of members
iterated in cache on host threads, the shared transitions compiled in), instead of as one
program where the transitions are traced (plan "shared_vi"). Same per-member iterations,
status and certificate; values within rounding of the one-program form.

Also the chunk's arguments on its devices (`chunk_args`), which both paths use. Compiled
programs are kept by the caller's cache (`jaxmdp._sweep._cached`, passed in: no import cycle).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from jaxmdp._exec import plan as plan_mod
from jaxmdp._mdp import MDP
from jaxmdp._solution import Solution
from jaxmdp._solve import solve
from jaxmdp._solvers.value_iteration import ValueIteration
from jaxmdp._sweep_setup import Setup, Spec, call_builder, chunk_params


def _take(x, index):
    """`x[index]`: one device's shard of a host array (`jax.make_array_from_callback`)."""
    return x[index]


def chunk_args(setup: Setup, k: int):
    """Chunk `k`'s swept parameters on the sweep's devices (sharded over its mesh, if any)."""
    params = chunk_params(setup, k)
    if setup.spec.mesh is None:
        return tuple(jax.device_put(p, setup.devices[0]) for p in params)
    sharding = jax.sharding.NamedSharding(setup.spec.mesh, jax.sharding.PartitionSpec("batch"))
    return tuple(
        jax.make_array_from_callback((setup.chunk,), sharding, functools.partial(_take, p))
        for p in params
    )


def _build(params, spec: Spec) -> MDP:
    """The chunk's MDPs: leaves that depend on no swept parameter stay unbatched."""
    out_axes = MDP(*(0 if b else None for b in spec.batched))  # type: ignore[arg-type]
    build = functools.partial(call_builder, spec.builder, spec.names)
    return jax.vmap(lambda *q: build(q), out_axes=out_axes)(*params)


def eager_candidate(setup: Setup, solver) -> bool:
    """Could `solve` on the built chunk plan "shared_tiles" (checked on the chunk itself)?
    Value iteration, transitions shared by the sweep, one device of this process."""
    spec = setup.spec
    return (
        type(solver) is ValueIteration
        and not spec.batched[0]
        and spec.mesh is None
        and not setup.spans
        and len(setup.devices) == 1
    )


def solve_eagerly(setup: Setup, solver, k: int, cached: Callable) -> Solution | None:
    """Chunk `k` built by one jitted program and solved by `solve` on the concrete batch,
    when its plan is "shared_tiles" (tiles of members iterated in cache on host threads, the
    shared transitions compiled in: issue 15); None otherwise (the chunk then runs as one
    program, where the transitions are traced and the plan is "shared_vi"). `cached(key,
    make)`: the caller's cache of compiled programs."""
    if not eager_candidate(setup, solver):
        return None
    spec = setup.spec
    build = cached(("build", spec), lambda: jax.jit(functools.partial(_build, spec=spec)))
    mdp = build(chunk_args(setup, k))
    devices = setup.devices[:1]
    if plan_mod.make_plan(plan_mod.gather_facts(mdp, None, solver, devices=devices)).strategy != (
        "shared_tiles"
    ):
        return None
    return solve(mdp, solver, max_iters=spec.max_iters, devices=devices)
