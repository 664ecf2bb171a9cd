"""Strategy "blocked": ONE MDP whose states are split in blocks over a device mesh.

Planned (`plan.make_plan`) for an unbatched MDP solved with several devices
(`solve(mdp, devices=[...])`, devices of one process or of every process of a
`jax.distributed` job), and on a GPU/TPU backend with several local devices when the MDP
does not fit one device's memory budget. Solvers: `plan.BLOCKED_SOLVERS` (value iteration,
modified policy iteration).

Layout: a 1-D mesh over the devices, axis "states". Device k holds the rows of its block of
states: `transitions[block, A, S]` (dense) or the successor lists `next_states`, `probs`
`[block, A, K]` (sparse), and `rewards[block, A]`; the discount and `values0` are
replicated. The solver's own loop (`member.single`, unchanged) is compiled once for the mesh
by XLA's SPMD partitioner (`jax.jit` over inputs placed with these shardings), so every
member semantic (iterations, stopping rule, status, error bound) is the one-device loop's.

What moves per sweep (read off the compiled program; `tests/test_blocked.py` checks it and
`benchmarks/distributed.py` reports it): each backup needs the whole value vector, so V is
all-gathered once (`S * itemsize` bytes per device, of which `(N - 1) / N` come from the
other devices); the stopping statistics (max and min of `TV - V`, max |V|, the first-sweep
test `V == 0`) become all-reduces of scalars. Nothing else: the transitions never move, and
Q stays in blocks until the end, when values, Q and policy are gathered once (replicated
outputs). Sparse form: the same all-gather of V rather than only the values a block's
successors reference (for a gridworld, its boundary): simpler, and for N devices it costs
`S * itemsize` against a sweep's local work of `S * A * K / N` multiply-adds.

Blocks are equal (`plan._blocks`: the most devices, at most those given, that divide S).

Results: the same iterations, status and policy as one device, values within rounding (a
partitioned program may sum in another order; identical only for the same program on the
same input). Returned on this process's first device of the mesh.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmdp._exec import layout, member, placement
from jaxmdp._solution import Solution

AXIS = "states"
_SPLIT_KINDS = frozenset({"transitions", "rewards"})  # leaves whose first axis is the state


def _run(tree, solver, *, max_iters: int, ctx) -> Solution:
    mdp, values0 = tree
    return member.single(mdp, values0, solver, max_iters, ctx)


@functools.lru_cache(maxsize=16)
def _runner(devices: tuple, kinds: tuple, max_iters: int, ctx):
    """`(per-leaf shardings, replicated sharding, jitted loop)` for this mesh and layout."""
    mesh = Mesh(np.array(devices), (AXIS,))
    rows, whole = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
    shardings = tuple(rows if k in _SPLIT_KINDS else whole for k in kinds)
    run = jax.jit(functools.partial(_run, max_iters=max_iters, ctx=ctx), out_shardings=whole)
    return shardings, whole, run


def shardings(tree, devices):
    """Per leaf of `(mdp, values0)`: its sharding on the mesh of `devices` (for inspection
    and for callers that place a large MDP themselves)."""
    mesh = Mesh(np.array(devices), (AXIS,))
    return tuple(
        NamedSharding(mesh, P(AXIS) if k in _SPLIT_KINDS else P()) for k in layout.kinds(tree)
    )


def lower(mdp, values0, solver, *, devices, max_iters: int, ctx):
    """The partitioned program `solve` runs, lowered (for inspection: collectives, bytes)."""
    tree, solver, run = _placed(mdp, values0, solver, devices, max_iters, ctx)
    return run.lower(tree, solver)


def _placed(mdp, values0, solver, devices, max_iters, ctx):
    if values0 is None:
        values0 = np.zeros((mdp.num_states,), jnp.result_type(mdp.rewards, mdp.discount))
    tree = (mdp, values0)
    leaves, treedef = jax.tree.flatten(tree)
    split, whole, run = _runner(tuple(devices), layout.kinds(tree), max_iters, ctx)
    placed = [placement.place(x, s) for x, s in zip(leaves, split, strict=True)]
    # Python numbers stay as they are (weakly typed, as in every other strategy's jit).
    solver = jax.tree.map(
        lambda x: placement.place(x, whole) if isinstance(x, jax.Array) else x, solver
    )
    return jax.tree.unflatten(treedef, placed), solver, run


def solve(mdp, values0, solver, *, devices, max_iters: int, ctx) -> Solution:
    """Solve the single MDP `mdp` (leaves JAX or NumPy arrays, the same in every process)
    from `values0` (`[S]`, None for zeros) with its states split over `devices` (their
    number divides S). Fields as one device's solve: values `[S]`, Q `[S, A]`, ..."""
    tree, solver, run = _placed(mdp, values0, solver, devices, max_iters, ctx)
    out = run(tree, solver)
    return Solution(*(placement.to_local(x) for x in out))
