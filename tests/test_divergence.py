"""Divergence found early (issue 16 #8): at discount 1, values that provably grow without
bound end `Status.UNBOUNDED` within a few sweeps, with the gain interval reported; proper
episodic problems (the lecture world) are unaffected (tests/test_defaults.py solves it at
discount 1 with every solver)."""

from __future__ import annotations

import exact_reference as exact
import numpy as np
import pytest
from conftest import random_mdp_arrays

import jaxmdp
from jaxmdp import models

VI_FAMILY = [
    jaxmdp.ValueIteration(),
    jaxmdp.ValueIteration(rule="sup"),
    jaxmdp.ModifiedPolicyIteration(),
    jaxmdp.GaussSeidelValueIteration(),
    jaxmdp.AndersonValueIteration(),
    jaxmdp.SoftValueIteration(temperature=0.05),  # entropy bonus <= 0.05 log 3 per step
]


def _runaway(B, S=16, A=4, seed=0):
    """B random dense MDPs at discount 1; rewards uniform in [0, 1) (gain > 0) for even
    members and in [-1, 0) (gain < 0) for odd ones: no finite values either way."""
    rng = np.random.default_rng(seed)
    P, _ = random_mdp_arrays(rng, S, A, batch=(B,))
    R = rng.uniform(0.0, 1.0, size=(B, S, A))
    R[1::2] -= 1.0
    return P, R


def test_1024_runaway_mdps_stop_within_a_few_dozen_sweeps():
    """The issue's case: 1,024 random MDPs at discount 1 ran all 10,000 iterations and ended
    MAX_ITERATIONS."""
    P, R = _runaway(1024)
    mdp = jaxmdp.make_mdp(P, R, 1.0)
    sol = jaxmdp.solve(mdp)
    np.testing.assert_array_equal(sol.status, jaxmdp.Status.UNBOUNDED)
    assert int(np.asarray(sol.num_iters).max()) <= 40, np.asarray(sol.num_iters).max()
    gain, half = np.asarray(sol.residual, np.float64), np.asarray(sol.error_bound, np.float64)
    assert np.all(gain[0::2] > 0) and np.all(gain[1::2] < 0)
    # Stopped as soon as the interval left 0 (up to the bound's upward rounding, <= 1%).
    assert np.all(gain[0::2] - half[0::2] > -0.01 * half[0::2])
    assert np.all(gain[1::2] + half[1::2] < 0.01 * half[1::2])
    for i in (0, 1, 2, 3):  # the interval holds the exact optimal gain (unichain: dense rows)
        g_star = float(exact.gain(np.asarray(mdp.transitions[i]), np.asarray(mdp.rewards[i])))
        assert gain[i] - half[i] <= g_star <= gain[i] + half[i], (i, g_star, gain[i], half[i])
    with pytest.raises(
        jaxmdp.ConvergenceError, match=r"UNBOUNDED: 1024 .*gain \(reward per step\) in \["
    ):
        jaxmdp.check(sol)


@pytest.mark.parametrize(
    "solver", VI_FAMILY, ids=lambda s: type(s).__name__ + getattr(s, "rule", "")
)
def test_every_value_iteration_variant_detects_it(solver):
    P, R = _runaway(6, S=8, A=3, seed=1)
    sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, 1.0), solver)
    np.testing.assert_array_equal(sol.status, jaxmdp.Status.UNBOUNDED)
    assert int(np.asarray(sol.num_iters).max()) <= 60
    assert np.all(np.asarray(sol.residual)[0::2] > 0) and np.all(np.asarray(sol.residual)[1::2] < 0)


def test_shared_transitions_fast_path_detects_it():
    P, R = _runaway(64, S=8, A=3, seed=2)
    sol = jaxmdp.solve(jaxmdp.make_mdp(P[0], R, 1.0))  # one transitions array, 64 rewards
    np.testing.assert_array_equal(sol.status, jaxmdp.Status.UNBOUNDED)
    assert int(np.asarray(sol.num_iters).max()) <= 40


def test_mixed_batch_and_proper_episodic_members_are_unaffected():
    """A batch mixing the lecture world (proper: every policy that matters terminates, so
    an absorbing zero-reward state keeps min d <= 0 <= max d) with a runaway copy."""
    world = models.gridworld(step_reward=-0.04, slip=0.2)
    P = np.asarray(world.transitions, np.float64)
    R = np.asarray(world.rewards, np.float64)
    runaway = np.where(np.isfinite(R), 1.0, R)  # +1 everywhere, terminal states included
    sol = jaxmdp.solve(jaxmdp.make_mdp(np.stack([P, P]), np.stack([R, runaway]), 1.0))
    assert jaxmdp.Status(int(sol.status[0])) == jaxmdp.Status.SUCCESS
    assert jaxmdp.Status(int(sol.status[1])) == jaxmdp.Status.UNBOUNDED
    assert np.isinf(float(sol.error_bound[0]))
    gain, half = float(sol.residual[1]), float(sol.error_bound[1])
    assert gain - half <= 1.0 <= gain + half
