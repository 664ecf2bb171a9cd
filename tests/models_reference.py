"""A tiny float64 NumPy oracle for the models tests (no JAX): value iteration and Q values.

`tests/numpy_reference.py` covers discount < 1 only; the grid worlds are solved at
discount 1 (episodic, absorbing exits), hence this undiscounted-capable value iteration and
the optimal-action-set helper. Layout as in jaxmdp: transitions `[S, A, S]`, rewards
`[S, A]` (`-inf` = unavailable).
"""

from __future__ import annotations

import numpy as np


def q_values(transitions, rewards, discount, values) -> np.ndarray:
    """`[S, A]` Q = r + gamma * P V, with unavailable actions (-inf) kept at -inf."""
    transitions = np.asarray(transitions, np.float64)
    rewards = np.asarray(rewards, np.float64)
    return rewards + discount * (transitions @ np.asarray(values, np.float64))


def value_iteration(transitions, rewards, discount, *, tol=1e-12, max_iters=1_000_000):
    """Optimal values by plain value iteration from zero; returns `(values [S], q [S, A])`.

    Stops when successive iterates differ by less than `tol` in sup norm (for discount < 1
    the error is then below tol * discount / (1 - discount)). At discount 1 it needs the
    problem to be proper (every improper policy has -inf value), as the grid worlds with a
    negative step reward are.
    """
    values = np.zeros(np.shape(rewards)[0])
    for _ in range(max_iters):
        new = q_values(transitions, rewards, discount, values).max(axis=1)
        if np.max(np.abs(new - values)) < tol:
            values = new
            break
        values = new
    else:
        raise RuntimeError("reference value iteration did not converge")
    return values, q_values(transitions, rewards, discount, values)


def optimal_action_sets(q, atol=1e-9) -> list[set[int]]:
    """For each state, the set of actions whose Q value is within `atol` of the best."""
    q = np.asarray(q, np.float64)
    best = q.max(axis=1, keepdims=True)
    return [set(np.flatnonzero(row >= b - atol).tolist()) for row, b in zip(q, best, strict=True)]
