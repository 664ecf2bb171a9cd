"""The memory estimate of value iteration on a batch sharing one sparse P (W6's shape).

`solve` checks its estimate against the memory budget before compiling. For a shared
sparse P the kernel runs in member tiles, holding one tile's working set whatever the batch
size; the estimate must cover what the compiled program really allocates (outputs and
temporaries, from XLA's buffer assignment) without refusing batches that fit (it used to
count a whole-batch working set: 6x too much for W6).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

import jaxmdp
from jaxmdp.models import gridworld

FACTOR = 2.0  # the estimate lies in [measured, FACTOR x measured]
# At 640 members of S = 3,025 the old whole-batch estimate was 3.7x the program's buffers.


def _estimate(mdp, solver, monkeypatch) -> float:
    """The estimate in bytes, read from the MemoryError of a budget too small for anything."""
    with monkeypatch.context() as m:
        m.setattr("jaxmdp._memory.HOST_FRACTION", 1e-12)
        with pytest.raises(MemoryError) as info:
            jaxmdp.solve(mdp, solver)
    size, unit = re.search(r"needs about ([\d,.]+) (KiB|MiB|GiB)", str(info.value)).groups()
    return float(size.replace(",", "")) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]


@pytest.mark.parametrize("side, batch", [(55, 640)])
def test_shared_sparse_estimate_matches_the_compiled_program(monkeypatch, side, batch):
    layout = "S" + "." * (side - 1) + "\n" + ("." * side + "\n") * (side - 1)
    steps = jnp.linspace(-1.0, -0.01, batch)
    mdp = gridworld(layout, step_reward=steps, slip=0.1, discount=jnp.full((batch,), 0.95))
    assert isinstance(mdp.transitions, jaxmdp.SparseTransitions)
    vi = jaxmdp.ValueIteration(tol=1e-3)
    estimate = _estimate(mdp, vi, monkeypatch)
    # The same plan (shared_vi, member tiles) traced: its buffers beyond the inputs.
    mem = jax.jit(lambda m: jaxmdp.solve(m, vi)).lower(mdp).compile().memory_analysis()
    if mem is None:
        pytest.skip("this backend reports no buffer assignment")
    measured = mem.output_size_in_bytes + mem.temp_size_in_bytes
    assert measured <= estimate <= FACTOR * measured, (estimate, measured)
