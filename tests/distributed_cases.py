"""The computations the distributed tests run in a job of several processes AND in the test
process itself (the one-process reference), defined once so that both run the same code.

`sweeps(out)` runs value iteration, policy iteration and modified policy iteration on the
lecture world, once with shared transitions (swept: step reward x discount) and once with
per-member transitions (swept: step reward x slip), and saves every `Solution` field;
`blocked(out)` solves one random MDP (dense and sparse form) with its states split over all
devices (`solve(..., devices=jax.devices())`), or on one device when there is only one.
Sizes are tiny: the tests are about agreement, not speed.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

import jaxmdp
from jaxmdp import models

SOLVERS = {
    "vi": jaxmdp.ValueIteration(),
    "pi": jaxmdp.PolicyIteration(),
    "mpi": jaxmdp.ModifiedPolicyIteration(eval_sweeps=5),
}


def lecture(step_reward, discount):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)


def slipping(step_reward, slip):
    return models.gridworld(step_reward=step_reward, slip=slip, discount=0.95)


STEPS = np.linspace(-2, 0, 7)
SWEEPS = {
    "shared": (lecture, {"step_reward": STEPS, "discount": np.array([0.9, 1.0])}),
    "own": (slipping, {"step_reward": STEPS, "slip": np.array([0.1, 0.3])}),
}


def save(path: Path, sol, **extra) -> None:
    np.savez(path, **{f: np.asarray(getattr(sol, f)) for f in jaxmdp.Solution._fields}, **extra)


def sweeps(out: Path, tag: str) -> dict:
    """Every (solver, transitions) sweep; files `sweep-<solver>-<kind>-<tag>.npz`."""
    info = {}
    for name, solver in SOLVERS.items():
        for kind, (builder, axes) in SWEEPS.items():
            result = jaxmdp.sweep(builder, solver, **axes)
            save(out / f"sweep-{name}-{kind}-{tag}.npz", result.solution)
            info[f"{name}-{kind}"] = {
                "devices": result.num_devices,
                "depends": list(result.depends["transitions"]),
                "ok": bool(result.ok.all()),
            }
    return info


def random_mdp(sparse: bool):
    """One MDP of 48 states, 3 actions (float32; 4 successors per row in the sparse form)."""
    rng = np.random.default_rng(13)
    S, A, K = 48, 3, 4
    R = rng.standard_normal((S, A)).astype(np.float32)
    if sparse:
        nxt = rng.integers(0, S, size=(S, A, K)).astype(np.int32)
        p = rng.dirichlet(np.ones(K), size=(S, A)).astype(np.float32)
        return jaxmdp.MDP(jaxmdp.SparseTransitions(nxt, p), R, np.float32(0.97))
    P = rng.dirichlet(np.ones(S), size=(S, A)).astype(np.float32)
    return jaxmdp.MDP(P, R, np.float32(0.97))


BLOCKED = {
    "vi-dense": (False, jaxmdp.ValueIteration()),
    "vi-sparse": (True, jaxmdp.ValueIteration()),
    "mpi-dense": (False, jaxmdp.ModifiedPolicyIteration(eval_sweeps=5)),
}


def blocked(out: Path, tag: str) -> None:
    """One MDP's states over every device; files `blocked-<case>-<tag>.npz`. Also a batch of
    8 MDPs with their own transitions split over every device (`batch-<tag>.npz`)."""
    for case, (sparse, solver) in BLOCKED.items():
        sol = jaxmdp.solve(random_mdp(sparse), solver, devices=jax.devices())
        save(out / f"blocked-{case}-{tag}.npz", sol)
    rng = np.random.default_rng(17)
    P = rng.dirichlet(np.ones(12), size=(8, 12, 3)).astype(np.float32)
    R = rng.standard_normal((8, 12, 3)).astype(np.float32)
    batch = jaxmdp.MDP(P, R, np.linspace(0.5, 0.95, 8).astype(np.float32))
    save(out / f"batch-{tag}.npz", jaxmdp.solve(batch, devices=jax.devices()))


def load(path: Path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
