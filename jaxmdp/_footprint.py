"""How many bytes a `solve` needs, estimated before anything is compiled (issue 16 #3).

Out of memory inside XLA is a hang or an abort (`solve` of a 30,000-state MDP under
`ulimit -v 6000000` hung); an estimate checked first turns it into a `MemoryError` that
names the size and the budget (`jaxmdp._memory.require`). The estimate counts what is held
at once, in bytes of the solve's dtype (`b`):

- inputs that are not yet JAX arrays (`solve` copies them to the device);
- per member running at once, the solver's working set: Q `[S, A]` and its copies (a
  handful), plus for
  - policy iteration: `I - g P_pi` and its LU factors, `[S, S]` each, and at discount 1 the
    structure analysis (`_bellman._undiscounted_structure`: reachability by repeated
    squaring, float32 `[S, S]` products, and `[S, S]` boolean masks) and the pinned system;
  - modified policy iteration with transitions per member: `P_pi` `[S, S]`;
  - Anderson: its memory of `2 m` value vectors;
- the outputs (values, Q, policy and scalars per member).

Members running at once: the whole batch under one `vmap`, or a tile per host thread.
Estimates are estimates (XLA may fuse some temporaries away, or keep a copy more): the
budget check compares against half of what the system allows (`_memory.HOST_FRACTION`).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxmdp import _memory
from jaxmdp._operators import rows
from jaxmdp._sparse import is_sparse


def solve_bytes(mdp, solver, *, members: int, batch: int, undiscounted: bool) -> int:
    """Estimated peak bytes of `solve(mdp, solver)` beyond the inputs already on device.

    Args:
      mdp: the MDP (shapes and dtypes only are read).
      solver: the solver instance.
      members: members whose working sets exist at once.
      batch: members in total (outputs).
      undiscounted: some discount may be 1 (policy iteration's structure analysis runs).
    """
    S, A = int(mdp.num_states), int(mdp.num_actions)
    sparse = is_sparse(mdp.transitions)
    b = max(
        np.dtype(getattr(x, "dtype", np.float32)).itemsize
        for x in (rows(mdp.transitions), mdp.rewards)
    )
    copies = 0
    for x in jax.tree.leaves(mdp):  # inputs solve copies to the device
        if not isinstance(x, (jax.Array, jax.core.Tracer)):
            copies += int(np.prod(np.shape(x))) * b
    name = type(solver).__name__
    work = 6 * S * A * b + 12 * S * b  # Q and its copies, value vectors
    if name == "PolicyIteration" and sparse:
        work += 64 * S * b  # the Krylov basis (jaxmdp._krylov: restart vectors of S)
        if undiscounted:
            work += 3 * S * S * 4 + 8 * S * S + 2 * S * S * b  # the small dense analysis
    elif name == "PolicyIteration":
        work += 4 * S * S * b  # P_pi, -g P_pi^T, the matrix being factorised, its LU
        if undiscounted:
            work += 3 * S * S * 4 + 8 * S * S + 2 * S * S * b  # float32 products, masks, system
    elif name == "ModifiedPolicyIteration" and not sparse:
        work += S * S * b
    elif name == "AndersonValueIteration":
        work += 2 * int(getattr(solver, "memory", 5)) * S * b
    outputs = batch * (S * A + 2 * S + 8) * b
    return int(copies + members * work + outputs)


def check(mdp, solver, *, members: int, batch: int, undiscounted: bool) -> None:
    """`MemoryError` (naming the size and the budget) if the estimate exceeds the budget."""
    need = solve_bytes(mdp, solver, members=members, batch=batch, undiscounted=undiscounted)
    if need < 16 << 20:  # not worth reading /proc for a small solve
        return
    S, A = int(mdp.num_states), int(mdp.num_actions)
    what = (
        f"solve with {type(solver).__name__} of {batch:,} MDP(s) of S={S:,}, A={A:,} "
        f"({members:,} at once)"
    )
    _memory.require(need, what)
