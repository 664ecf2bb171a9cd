"""`LinearProgramming`: the discounted MDP as an LP solved by HiGHS, on the host.

Checked against policy iteration (jaxmdp's and the NumPy oracle's) on pymdptoolbox's examples
and on random MDPs, against pymdptoolbox's own LP (cvxopt) where it runs, and for its
certificate: `error_bound` must bound the distance to the exact V* of the data as given.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import mdptoolbox.example
import mdptoolbox.mdp
import numpy as np
import numpy_reference as ref
import pytest
from conftest import random_mdp_arrays

import jaxmdp
from jaxmdp import LinearProgramming, Status, models

pytest.importorskip("scipy")


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def lp(mdp, **kw):
    return LinearProgramming(**kw).host_solve(mdp)


PYMDPTOOLBOX_EXAMPLES = {
    "forest": lambda: mdptoolbox.example.forest(),
    "forest-S10-r1-4-r2-2-p0.2": lambda: mdptoolbox.example.forest(10, 4, 2, 0.2),
    "small": lambda: mdptoolbox.example.small(),
}


@pytest.mark.parametrize("name", PYMDPTOOLBOX_EXAMPLES)
@pytest.mark.parametrize("discount", [0.5, 0.9, 0.99])
def test_pymdptoolbox_examples_match_policy_iteration(name, discount, x64):
    P, R = PYMDPTOOLBOX_EXAMPLES[name]()
    mdp = jaxmdp.from_pymdptoolbox(P, R, discount)
    sol = lp(mdp)
    assert int(sol.status) == Status.SUCCESS
    pi = jaxmdp.solve(mdp, jaxmdp.PolicyIteration())
    peer = mdptoolbox.mdp.PolicyIteration(P, R, discount)
    peer.run()
    V_star, pol_star, _ = ref.policy_iteration(mdp.transitions, mdp.rewards, discount)
    bound = float(sol.error_bound)
    assert bound < 1e-10 * max(1.0, np.abs(V_star).max())
    # The certificate is a true bound against the exact optimum (oracle rounding: 1e-12 rel).
    slack = 1e-12 * np.abs(V_star).max()
    assert np.abs(np.asarray(sol.values) - V_star).max() <= bound + slack
    np.testing.assert_allclose(sol.values, pi.values, rtol=0, atol=bound + slack)
    np.testing.assert_allclose(sol.values, peer.V, rtol=0, atol=bound + slack)
    assert sol.policy.tolist() == pol_star.tolist() == list(peer.policy)


def test_random_mdps_float64_match_the_oracle(rng, x64):
    """Dense, sparse and with unavailable actions; several discounts; one batched call."""
    cases = [
        random_mdp_arrays(rng, 12, 3),
        random_mdp_arrays(rng, 20, 4, sparsity=0.7),
        random_mdp_arrays(rng, 15, 5, unavailable=0.4, reward_scale=10.0),
    ]
    for P, R in cases:
        discounts = np.array([0.0, 0.6, 0.95, 0.999])
        sol = lp(jaxmdp.MDP(P, np.broadcast_to(R, (4, *R.shape)), discounts))
        assert sol.values.shape == (4, R.shape[0]) and sol.values.dtype == jnp.float64
        assert (np.asarray(sol.status) == Status.SUCCESS).all()
        sol = jax.device_get(sol)  # members indexed in NumPy: no eager slicing programs
        for k, g in enumerate(discounts):
            V_star, pol_star, Q_star = ref.policy_iteration(P, R, g)
            bound = float(sol.error_bound[k])
            scale = np.abs(V_star).max()
            assert bound < 1e-9 * max(1.0, scale), (g, bound)
            assert np.abs(np.asarray(sol.values[k]) - V_star).max() <= bound + 1e-12 * scale
            # Greedy for values within `bound` of V*: optimal wherever the action gap is wider.
            loss = V_star - ref.evaluate_policy(P, R, g, np.asarray(sol.policy[k]))
            assert loss.max() <= 2 * g * bound / (1 - g) + 1e-11 * max(1.0, scale)
            unavailable = np.isneginf(R)
            assert not unavailable[np.arange(len(R)), np.asarray(sol.policy[k])].any()
            assert np.isneginf(np.asarray(sol.q_values[k])[unavailable]).all()


def test_float32_values_are_certified_against_the_exact_optimum(rng):
    """In float32 the values are rounded; `error_bound` still bounds |V - V*| (V* exact in
    float64 for the float32 data)."""
    P, R = random_mdp_arrays(rng, 16, 3, reward_scale=5.0)
    mdp = jaxmdp.make_mdp(P, R, 0.95)  # float32 (x64 off)
    sol = lp(mdp)
    assert sol.values.dtype == jnp.float32 and sol.error_bound.dtype == jnp.float32
    P32, R32 = (np.asarray(x, np.float64) for x in (mdp.transitions, mdp.rewards))
    V_star, _, _ = ref.policy_iteration(P32, R32, float(mdp.discount))
    err = np.abs(np.asarray(sol.values, np.float64) - V_star).max()
    assert int(sol.status) == Status.SUCCESS
    assert err <= float(sol.error_bound) < 1e-5 * np.abs(V_star).max()


def test_batch_members_equal_their_own_solves(rng, x64):
    """Shared transitions and per-member transitions, broadcast batch shapes."""
    P, _ = random_mdp_arrays(rng, 8, 3, batch=(2,))
    R = rng.standard_normal((3, 1, 8, 3))
    g = np.array([0.5, 0.9])
    batch = jaxmdp.MDP(P, R, g)  # batch shape (3, 2)
    sol = lp(batch)
    assert sol.values.shape == (3, 2, 8) and sol.status.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            one = lp(jaxmdp.MDP(P[j], R[i, 0], g[j]))
            for field, a, b in zip(sol._fields, sol, one, strict=True):
                np.testing.assert_array_equal(np.asarray(a)[i, j], b, err_msg=field)


def test_grid_world_sparse_lp_matches_policy_iteration(monkeypatch, x64):
    """A 400-state grid world: the LP gets the sparse [S*A, S] matrix (4 nonzeros a row
    at most: slip), not S^2 A dense entries."""
    layout = "\n".join(["." * 20] * 19 + ["." * 19 + "+"])
    mdp = models.gridworld(layout, step_reward=-0.1, slip=0.2, discount=0.98)
    seen = {}
    import scipy.optimize
    import scipy.sparse

    real = scipy.optimize.linprog

    def spy(*args, **kwargs):
        seen["A_ub"] = kwargs["A_ub"]
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "linprog", spy)
    sol = lp(mdp)

    assert scipy.sparse.issparse(seen["A_ub"]) and seen["A_ub"].nnz <= 400 * 4 * 4
    pi = jaxmdp.solve(mdp, jaxmdp.PolicyIteration())
    assert int(sol.status) == Status.SUCCESS
    np.testing.assert_allclose(sol.values, pi.values, rtol=0, atol=1e-9)
    # The world is symmetric, so actions tie exactly (down/right towards the corner) and
    # either may come out of rounding: compare what the policies are worth, not the actions.
    P, R = np.asarray(jaxmdp.to_dense(mdp.transitions)), np.asarray(mdp.rewards)
    worth = ref.evaluate_policy(P, R, 0.98, np.asarray(sol.policy))
    np.testing.assert_allclose(worth, pi.values, rtol=0, atol=1e-9)


def test_status_codes_per_member(rng, x64):
    P, R = random_mdp_arrays(rng, 6, 2)
    R_bad = np.stack([R, R, R, R, R])
    R_bad[1, 2, 0] = np.nan
    R_bad[2, 3, :] = -np.inf  # a state without an available action
    R_bad[3, 0, 1] = np.inf
    g = np.array([0.9, 0.9, 0.9, 0.9, 1.0])  # discount 1: no LP optimum guaranteed
    sol = lp(jaxmdp.MDP(P, R_bad, g))
    assert np.asarray(sol.status).tolist() == [0] + [Status.INVALID_INPUT] * 4
    assert np.isnan(np.asarray(sol.values)[1:]).all()
    assert np.isinf(np.asarray(sol.error_bound)[1:]).all()
    P_bad = P.copy()
    P_bad[0, 0] *= 0.5  # a row summing to 0.5
    assert int(lp(jaxmdp.MDP(P_bad, R, 0.9)).status) == Status.INVALID_INPUT
    P_neg = P.copy()
    P_neg[1, 1, 0] -= 1.0  # negative, the row still sums to 1
    P_neg[1, 1, 1] += 1.0
    assert int(lp(jaxmdp.MDP(P_neg, R, 0.9)).status) == Status.INVALID_INPUT
    assert int(lp(jaxmdp.MDP(P, R, -0.1)).status) == Status.INVALID_INPUT


def test_iteration_cap_gives_max_iterations(rng, x64):
    P, R = random_mdp_arrays(rng, 30, 4)
    sol = lp(jaxmdp.MDP(P, R, 0.9), max_iters=1)
    assert int(sol.status) == Status.MAX_ITERATIONS
    assert np.isnan(np.asarray(sol.values)).all() and float(sol.error_bound) == np.inf


@pytest.mark.parametrize(
    "fake, expected",
    [
        ({"status": 4, "x": None}, Status.NONFINITE),  # HiGHS: numerical difficulties
        ({"status": 2, "x": None}, Status.NONFINITE),  # "infeasible": impossible if valid
        ({"status": 3, "x": None}, Status.NONFINITE),  # "unbounded": likewise
        ({"status": 1, "x": None}, Status.MAX_ITERATIONS),  # iteration or time limit
        ({"status": 0, "x": np.array([np.nan, 0.0])}, Status.NONFINITE),
    ],
)
def test_highs_statuses_map_to_ours(fake, expected, monkeypatch, x64):
    import scipy.optimize

    class Result:
        nit = 7
        status = fake["status"]
        x = fake["x"]

    monkeypatch.setattr(scipy.optimize, "linprog", lambda *a, **k: Result())
    P = np.full((2, 1, 2), 0.5)
    sol = lp(jaxmdp.MDP(P, np.zeros((2, 1)), 0.5))
    assert int(sol.status) == expected and int(sol.num_iters) == 7


def test_against_pymdptoolbox_lp(x64):
    """pymdptoolbox's own LP (cvxopt). Its 4.0b3 `_LP` flattens the rewards in Fortran order
    while it stacks the constraints action-major (its docstring's FIXME: forest policy
    (1, 1) instead of (1, 0)), so it is handed the rewards permuted to land on the right
    rows, and its raw LP solution is read before its final Bellman step."""
    pytest.importorskip("cvxopt")
    for P, R in (mdptoolbox.example.forest(), mdptoolbox.example.small()):
        mdp = jaxmdp.from_pymdptoolbox(P, R, 0.9)
        R_sa = np.asarray(mdp.rewards)
        peer = mdptoolbox.mdp._LP(P, R_sa.T.reshape(R_sa.shape), 0.9)
        raw = {}
        inner = peer._linprog

        def spy(*args, inner=inner, raw=raw, **kwargs):
            out = inner(*args, **kwargs)
            raw["V"] = np.array(out["x"]).reshape(-1)
            return out

        peer._linprog = spy
        peer.run()
        sol = lp(mdp)
        # cvxopt's interior point stops at ~1e-7 relative accuracy.
        np.testing.assert_allclose(raw["V"], sol.values, rtol=1e-6, atol=1e-6)


def _world():
    """The slippery 4x3 world of the two tests below (one build program between them)."""
    return models.gridworld(discount=0.95, slip=0.2)


def test_not_traceable_and_not_the_jitted_driver(x64):
    mdp = _world()
    with pytest.raises(TypeError, match="host"):
        jax.jit(lambda m: LinearProgramming().host_solve(m))(mdp)
    # jaxmdp.solve recognises a host solver and hands the MDP to it (not the jitted loop).
    via_solve = jaxmdp.solve(mdp, LinearProgramming())
    direct = LinearProgramming().host_solve(mdp)
    np.testing.assert_array_equal(np.asarray(via_solve.values), np.asarray(direct.values))
    np.testing.assert_array_equal(np.asarray(via_solve.policy), np.asarray(direct.policy))
    with pytest.raises(TypeError, match="jaxmdp.MDP"):
        LinearProgramming().host_solve((mdp.transitions, mdp.rewards, mdp.discount))


def test_hyperparameters_are_checked():
    with pytest.raises(ValueError, match="max_iters"):
        LinearProgramming(max_iters=0)
    with pytest.raises(TypeError, match="max_iters"):
        LinearProgramming(max_iters=2.5)
    with pytest.raises(ValueError, match="time_limit"):
        LinearProgramming(time_limit=-1)
    with pytest.raises(ValueError, match="time_limit"):
        LinearProgramming(time_limit="10")


def test_missing_scipy_names_the_extra(monkeypatch, x64):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(ImportError, match=r"jaxmdp-solver\[lp\]"):
        lp(jaxmdp.MDP(np.full((2, 1, 2), 0.5), np.zeros((2, 1)), 0.5))


def test_sparse_transitions_match_dense(x64):
    """The sparse form goes to HiGHS as CSR built from the successor lists, no dense P."""
    mdp = _world()
    sparse = mdp._replace(transitions=jaxmdp.to_sparse(mdp.transitions))
    batch = sparse._replace(rewards=jnp.stack([mdp.rewards, 2 * mdp.rewards]))
    got = jaxmdp.solve(batch, LinearProgramming())
    for b, scale in enumerate((1, 2)):
        dense = LinearProgramming().host_solve(mdp._replace(rewards=scale * mdp.rewards))
        np.testing.assert_allclose(got.values[b], dense.values, atol=1e-9)
        np.testing.assert_array_equal(got.policy[b], dense.policy)
    assert (np.asarray(got.status) == jaxmdp.Status.SUCCESS).all()
