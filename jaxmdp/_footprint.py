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

Value iteration on a batch sharing one sparse (or small dense) `transitions` runs the
batch-last kernel in member tiles (`jaxmdp._exec.shared_vi`, `shared_member_tiles`): the
shared P is held once (plus the kernel's `[A, S, K]` layout copy and its row statistics),
and only one tile of members has a working set at a time (its rewards transposed, its loop's
value arrays, its Q before it is written back), whatever the batch size; a broadcast
`rewards` is materialised once at the batch's size. Counting a whole-batch working set there
overestimated W6 (1,000 variants of a 100x100 world) 6x, so the check refused batches that
fit. Checked against XLA's buffer assignment in tests/test_footprint_shared.py.

Value iteration on ONE sparse MDP (no batch axes) holds only `[S]` vectors beyond its
inputs and outputs: each sweep writes V_k and never Q (`value_iteration._fused_backup`), and
the certificate's rounding constants run in blocks of states (`_stopping.rounding`). The
whole-member working set above (6 `[S, A]` + 12 `[S]`) estimated 1.68 GB at 10^7 states for
0.28 GB of buffers; it is now counted as a few `[S]` vectors and one block's `[C, A]`
arrays (checked against XLA's buffer assignment in tests/test_sparse_memory.py).

Members running at once: the whole batch under one `vmap`, or a tile per host thread.
Estimates are estimates (XLA may fuse some temporaries away, or keep a copy more): the
budget check compares against half of what the system allows (`_memory.HOST_FRACTION`).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxmdp import _memory
from jaxmdp._exec.shared_layout import _BATCH_FIRST_STATES
from jaxmdp._exec.tiles import shared_gather_tile
from jaxmdp._operators import rows
from jaxmdp._sparse import is_sparse


def _shared_batch_last(mdp, solver, members: int, batch: int) -> bool:
    """Whether `solve` runs the batch-last shared kernel: value iteration, a batch planned as
    one (`members == batch`: "shared_vi"; the "shared_tiles" plan of a P small enough to be
    compiled in runs `members` at a time and keeps the per-member estimate), one
    `transitions` for all (no batch axis of size > 1), sparse or dense with S below the
    batch-first threshold (`plan.make_plan`, `shared_layout.prepare_shared`; a larger dense
    P with few nonzeros also runs there, and keeps the larger dense estimate)."""
    if type(solver).__name__ != "ValueIteration" or batch < 2 or members != batch:
        return False
    if any(int(np.prod(np.shape(x)[:-3])) > 1 for x in jax.tree.leaves(mdp.transitions)):
        return False
    return is_sparse(mdp.transitions) or int(mdp.num_states) < _BATCH_FIRST_STATES


def _shared_work(mdp, batch: int, b: int) -> int:
    """Bytes the batch-last shared kernel holds beyond its inputs and outputs (module
    docstring): one member tile's working set, the shared P's layout copy and row statistics,
    and the rewards broadcast to the batch if they are not already."""
    S, A = int(mdp.num_states), int(mdp.num_actions)
    P = mdp.transitions
    slots = S * A * int(np.shape(P.next_states if is_sparse(P) else P)[-1])
    T = min(batch, shared_gather_tile(S, A, b))
    # A tile: rewards [A, S, T] transposed in, Q [A, S, T] and its transpose out, the row
    # statistics' [A, S, T] selects, value arrays [S, T] (V_k, V_(k-1), the carried backup,
    # the select). The shared P: its [A, S, K] layout copy (index + probability) and
    # per-slot temporaries of the rounding constants and the hoisted index arithmetic.
    work = T * S * (5 * A + 4) * b + slots * (3 * b + 8)
    r = mdp.rewards
    if int(np.prod(np.shape(r))) < batch * S * A or np.dtype(r.dtype).itemsize != b:
        work += batch * S * A * b  # broadcast (or cast) to [B, S, A] before the tiles
    return work


def _single_sparse_vi_work(S: int, A: int, b: int) -> int:
    """Bytes value iteration on one sparse MDP holds beyond inputs and outputs (module
    docstring): V_(k-1) and the difference (two `[S]` vectors measured; four counted), and
    the rounding constants' temporaries, about five `[C, A]` arrays of a block of C states
    (six counted; the whole model's when it fits one block)."""
    from jaxmdp._solvers._stopping import _ROUNDING_CHUNK

    block = S if S <= _ROUNDING_CHUNK else _ROUNDING_CHUNK
    return 4 * S * b + 6 * block * A * b


def solve_bytes(
    mdp, solver, *, members: int, batch: int, undiscounted: bool, single: bool = False
) -> int:
    """Estimated peak bytes of `solve(mdp, solver)` beyond the inputs already on device.

    Args:
      mdp: the MDP (shapes and dtypes only are read).
      solver: the solver instance.
      members: members whose working sets exist at once.
      batch: members in total (outputs).
      undiscounted: some discount may be 1 (policy iteration's structure analysis runs).
      single: one MDP without batch axes (`SolveContext.single`; a batch of one is vmapped
        and keeps the whole-member working set).
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
    outputs = batch * (S * A + 2 * S + 8) * b
    if single and sparse and name == "ValueIteration":
        return int(copies + _single_sparse_vi_work(S, A, b) + outputs)
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
    if _shared_batch_last(mdp, solver, members, batch):
        return int(copies + _shared_work(mdp, batch, b) + outputs)
    return int(copies + members * work + outputs)


def check(
    mdp, solver, *, members: int, batch: int, undiscounted: bool, single: bool = False
) -> None:
    """`MemoryError` (naming the size and the budget) if the estimate exceeds the budget."""
    need = solve_bytes(
        mdp, solver, members=members, batch=batch, undiscounted=undiscounted, single=single
    )
    if need < 16 << 20:  # not worth reading /proc for a small solve
        return
    S, A = int(mdp.num_states), int(mdp.num_actions)
    what = (
        f"solve with {type(solver).__name__} of {batch:,} MDP(s) of S={S:,}, A={A:,} "
        f"({members:,} at once)"
    )
    _memory.require(need, what)
