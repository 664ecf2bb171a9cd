"""One default accuracy contract (issue 11): every solver with its defaults succeeds.

`tol=None` (every solver's default) aims at 1e-6 and, where the dtype cannot certify that,
accepts the tightest bound it can, as SUCCESS with that bound in `error_bound`; an explicit
`tol` stays a promise (PRECISION_LIMITED when it cannot be certified). Checked on the 4x3
lecture world (discounts 0.9, 0.99 and 1) and on a random MDP of the same shape, in float32
and float64, for every solver class in `tests/solvers_list.py`: one batch of four members
per solver and dtype, so one compiled program each.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import random_mdp_arrays
from solvers_list import DEFAULT_SOLVERS, solver_id

import jaxmdp
from jaxmdp import models

DISCOUNTS = [0.9, 0.99, 1.0]


def _batch():
    """Lecture world (slip 0.2, step -0.04) at each discount, then a random MDP of the same
    shape (S = 11, A = 4) at 0.95: `[4, 11, 4, 11]` transitions."""
    world = models.gridworld(step_reward=-0.04, slip=0.2)
    P = np.asarray(world.transitions, np.float64)
    R = np.asarray(world.rewards, np.float64)
    Pr, Rr = random_mdp_arrays(np.random.default_rng(11), 11, 4, sparsity=0.5)
    Ps = np.stack([P] * len(DISCOUNTS) + [Pr])
    Rs = np.stack([R] * len(DISCOUNTS) + [Rr])
    return jaxmdp.make_mdp(Ps, Rs, np.array(DISCOUNTS + [0.95]))


@pytest.mark.parametrize("solver", DEFAULT_SOLVERS, ids=solver_id)
def test_default_solvers_succeed(solver, dtype):
    """Includes the issue's case: `GaussSeidelValueIteration()` and `AndersonValueIteration()`
    returned PRECISION_LIMITED on the lecture world at 0.99 in float32 (member 1), so
    `jaxmdp.check` raised, while `ValueIteration()` succeeded."""
    mdp = _batch()
    assert mdp.transitions.dtype == dtype
    sol = jaxmdp.solve(mdp, solver)
    status = np.asarray(sol.status)
    bound = np.asarray(sol.error_bound)
    discounted = np.asarray(mdp.discount) < 1
    if isinstance(solver, jaxmdp.SoftValueIteration):
        # At discount 1 the entropy bonus accrues forever in the absorbing states (several
        # actions each): no finite soft value, proven and reported as UNBOUNDED, with the
        # gain interval (tau log 4 per step in the absorbing states) in residual / bound.
        assert status[2] == jaxmdp.Status.UNBOUNDED
        gain, half = float(np.asarray(sol.residual)[2]), float(bound[2])
        assert gain - half <= np.log(4) <= gain + half + 1e-6
        status, bound, discounted = (np.delete(x, 2) for x in (status, bound, discounted))
    np.testing.assert_array_equal(status, jaxmdp.Status.SUCCESS, err_msg=str(status))
    if not isinstance(solver, jaxmdp.SoftValueIteration):
        assert jaxmdp.check(sol) is sol
    if not isinstance(solver, jaxmdp.RelativeValueIteration):
        assert np.all(np.isfinite(bound[discounted])) and np.all(np.isinf(bound[~discounted]))
    if dtype == np.float64 and not isinstance(solver, jaxmdp.RelativeValueIteration):
        assert np.all(bound[discounted] <= 5e-7)  # the 1e-6 aim, certified


def test_explicit_tol_below_what_float32_certifies_is_precision_limited():
    with jax.enable_x64(False):
        world = models.gridworld(step_reward=-0.04, slip=0.2, discount=0.99)
        auto = jaxmdp.solve(world, jaxmdp.ValueIteration())
        assert jaxmdp.Status(int(auto.status)) == jaxmdp.Status.SUCCESS
        tight = jaxmdp.solve(world, jaxmdp.ValueIteration(tol=float(auto.error_bound) / 10))
        assert jaxmdp.Status(int(tight.status)) == jaxmdp.Status.PRECISION_LIMITED
        loose = jaxmdp.solve(world, jaxmdp.ValueIteration(tol=4 * float(auto.error_bound)))
        assert jaxmdp.Status(int(loose.status)) == jaxmdp.Status.SUCCESS
        assert float(loose.error_bound) <= 2 * float(auto.error_bound)
