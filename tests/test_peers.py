"""Agreement with peer libraries: pymdptoolbox (exact policy iteration, and its value
iteration's uncorrected span rule) and QuantEcon's `DiscreteDP` (product form). float64."""

from __future__ import annotations

import jax
import mdptoolbox.example
import mdptoolbox.mdp
import numpy as np
import pytest
from conftest import random_mdp_arrays
from solvers_list import (
    ALL_SOLVERS,
    promised_error,
    promised_policy_loss,
    rounding_allowance,
    solver_id,
)

import jaxmdp

SOLVERS = pytest.mark.parametrize("solver", ALL_SOLVERS, ids=solver_id)


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _toolbox_pi(P, R, g):
    pi = mdptoolbox.mdp.PolicyIteration(P, R, g)
    pi.run()
    return np.asarray(pi.V), np.asarray(pi.policy)


@SOLVERS
@pytest.mark.parametrize(
    ("example", "discount"),
    [("forest", 0.9), ("forest", 0.96), ("small", 0.9), ("small", 0.5)],
)
def test_agrees_with_pymdptoolbox_policy_iteration(solver, example, discount):
    P, R = getattr(mdptoolbox.example, example)()
    V_star, policy_star = _toolbox_pi(P, R, discount)
    sol = jaxmdp.solve(jaxmdp.from_pymdptoolbox(P, R, discount), solver)
    jaxmdp.check(sol)
    allow = rounding_allowance(np.float64, len(V_star), np.abs(V_star).max(), discount)
    np.testing.assert_allclose(
        np.asarray(sol.values), V_star, rtol=0, atol=promised_error(solver) + allow
    )
    # The optimal policies of these examples are unique with gaps far above tol.
    np.testing.assert_array_equal(sol.policy, policy_star)


def test_pymdptoolbox_value_iteration_is_far_from_optimal_where_jaxmdp_is_not():
    """pymdptoolbox's span rule stops forest at g = 0.9 after 4 sweeps without Puterman's
    correction: V = (5.05, 8.29, 12.29) against V* = (26.244, 29.484, 33.484)."""
    P, R = mdptoolbox.example.forest()
    g = 0.9
    vi = mdptoolbox.mdp.ValueIteration(P, R, g)
    vi.run()
    V_star, _ = _toolbox_pi(P, R, g)
    np.testing.assert_allclose(V_star, [26.244, 29.484, 33.484], atol=1e-9)
    np.testing.assert_allclose(vi.V, [5.05197, 8.29197, 12.29197], atol=1e-9)
    assert np.abs(np.asarray(vi.V) - V_star).max() > 20

    tol = 1e-6
    sol = jaxmdp.solve(jaxmdp.from_pymdptoolbox(P, R, g), jaxmdp.ValueIteration(tol=tol))
    jaxmdp.check(sol)
    allow = rounding_allowance(np.float64, 3, np.abs(V_star).max(), g)
    assert np.abs(np.asarray(sol.values) - V_star).max() <= tol / 2 + allow
    assert float(sol.error_bound) <= tol / 2
    # Even with pymdptoolbox's own epsilon (0.01) the corrected values are within 0.005.
    loose = jaxmdp.solve(jaxmdp.from_pymdptoolbox(P, R, g), jaxmdp.ValueIteration(tol=0.01))
    assert np.abs(np.asarray(loose.values) - V_star).max() <= 0.005 + allow


@SOLVERS
def test_agrees_with_quantecon_discrete_dp(solver):
    """Random MDPs (S=5, A=3), some with unavailable actions (-inf rewards, which QuantEcon
    treats as infeasible), against `DiscreteDP(R, Q, beta).solve('policy_iteration')`."""
    # Imported here: QuantEcon (with numba) takes ~1 s to import, and every xdist worker
    # collects this file, only one runs it.
    from quantecon.markov import DiscreteDP

    rng = np.random.default_rng(2024)
    S, A = 5, 3
    for g, sparsity, unavailable in [
        (0.5, 0.0, 0.0),
        (0.9, 0.5, 0.4),
        (0.95, 0.0, 0.5),
        (0.99, 0.7, 0.3),
    ]:
        P, R = random_mdp_arrays(rng, S, A, sparsity=sparsity, unavailable=unavailable)
        ddp = DiscreteDP(R, P, g)
        res = ddp.solve(method="policy_iteration")
        sol = jaxmdp.solve(jaxmdp.make_mdp(P, R, g), solver)
        jaxmdp.check(sol)
        allow = rounding_allowance(np.float64, S, np.abs(res.v).max(), g)
        np.testing.assert_allclose(
            np.asarray(sol.values), res.v, rtol=0, atol=promised_error(solver) + allow
        )
        policy = np.asarray(sol.policy)
        assert np.all(np.isfinite(R[np.arange(S), policy]))
        # jaxmdp's policy, evaluated by QuantEcon, is tol-optimal.
        v_pi = ddp.evaluate_policy(policy)
        assert np.all(v_pi >= res.v - promised_policy_loss(solver) - allow)
