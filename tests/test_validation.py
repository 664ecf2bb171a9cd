"""Every kind of bad input gets a clear error naming the place (batch index, state, action)."""

import jax
import numpy as np
import pytest

import jaxmdp


def _random(rng, batch=(), S=4, A=3, dtype=np.float32):
    P = rng.dirichlet(np.ones(S), size=batch + (S, A)).astype(dtype)
    R = rng.uniform(size=batch + (S, A)).astype(dtype)
    return P, R


def test_valid_passes_and_returns_mdp():
    P, R = _random(np.random.default_rng(0))
    mdp = jaxmdp.make_mdp(P, R, 0.9)
    assert isinstance(mdp, jaxmdp.MDP)
    assert jaxmdp.validate_mdp(mdp) is mdp


def test_negative_probability_names_batch_state_action():
    P, R = _random(np.random.default_rng(1), batch=(3,))
    P[2, 1, 0, 0] -= 0.5
    P[2, 1, 0, 1] += 0.5
    with pytest.raises(jaxmdp.InvalidMDPError, match=r"negative.*batch index 2, state 1, action 0"):
        jaxmdp.make_mdp(P, R, 0.9)


def test_nonfinite_probability():
    P, R = _random(np.random.default_rng(2))
    P[3, 2, 1] = np.nan
    with pytest.raises(jaxmdp.InvalidMDPError, match=r"non-finite.*state 3, action 2"):
        jaxmdp.make_mdp(P, R, 0.9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sum_tolerance_suits_dtype(dtype):
    rng = np.random.default_rng(3)
    P, R = _random(rng, dtype=dtype)
    # Off by 1e-7 in float32 (about 1 ulp of 1.0) must pass.
    Q = P.copy()
    Q[0, 0, 0] += dtype(1e-7) if dtype == np.float32 else dtype(1e-15)
    jaxmdp.validate_mdp(jaxmdp.MDP(Q, R, np.asarray(0.9, dtype)))
    Q = P.copy()
    Q[1, 2, 0] += dtype(1e-3)
    with pytest.raises(jaxmdp.InvalidMDPError, match=r"does not sum to 1.*state 1, action 2"):
        jaxmdp.validate_mdp(jaxmdp.MDP(Q, R, np.asarray(0.9, dtype)))


def test_nan_and_posinf_rewards():
    P, R = _random(np.random.default_rng(4), batch=(2,))
    R[1, 3, 1] = np.nan
    with pytest.raises(
        jaxmdp.InvalidMDPError, match=r"NaN or \+inf.*batch index 1, state 3, action 1"
    ):
        jaxmdp.make_mdp(P, R, 0.9)
    R[1, 3, 1] = np.inf
    with pytest.raises(jaxmdp.InvalidMDPError, match=r"batch index 1, state 3, action 1"):
        jaxmdp.make_mdp(P, R, 0.9)


def test_state_without_available_action():
    P, R = _random(np.random.default_rng(5))
    avail = np.ones(R.shape, bool)
    avail[2] = False
    with pytest.raises(jaxmdp.InvalidMDPError, match=r"no available action.*state 2"):
        jaxmdp.make_mdp(P, R, 0.9, available=avail)


def test_unavailable_action_rows_may_be_zero_and_are_never_chosen():
    rng = np.random.default_rng(6)
    P, R = _random(rng, S=5, A=3)
    R[:, 1] = 100.0  # attractive, but unavailable in states 0..3
    avail = np.ones(R.shape, bool)
    avail[:4, 1] = False
    P[:4, 1] = 0.0
    mdp = jaxmdp.make_mdp(P, R, 0.9, available=avail)
    assert np.isneginf(np.asarray(mdp.rewards)[:4, 1]).all()
    for solver in (jaxmdp.ValueIteration(), jaxmdp.PolicyIteration()):
        sol = jaxmdp.solve(mdp, solver)
        assert int(sol.status) == jaxmdp.Status.SUCCESS
        assert not np.any(np.asarray(sol.policy)[:4] == 1)
        assert np.isneginf(np.asarray(sol.q_values)[:4, 1]).all()
        assert np.all(np.isfinite(np.asarray(sol.values)))


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan, np.inf])
def test_discount_outside_unit_interval(bad):
    P, R = _random(np.random.default_rng(7))
    with pytest.raises(jaxmdp.InvalidMDPError, match="discount"):
        jaxmdp.make_mdp(P, R, bad)
    g = np.array([0.9, bad, 0.5])
    with pytest.raises(jaxmdp.InvalidMDPError, match="batch index 1"):
        jaxmdp.make_mdp(P, R[None].repeat(3, 0), g)


def test_mismatched_shapes():
    P, R = _random(np.random.default_rng(8))
    with pytest.raises(ValueError, match=r"rewards must have shape \[\.\.\., S, A\]"):
        jaxmdp.make_mdp(P, R[:, :2], 0.9)
    with pytest.raises(ValueError, match="same S"):
        jaxmdp.make_mdp(P[:, :, :3], R, 0.9)
    with pytest.raises(ValueError, match="ndim"):
        jaxmdp.make_mdp(P[0], R, 0.9)
    with pytest.raises(ValueError, match="do not broadcast"):
        jaxmdp.make_mdp(P[None].repeat(2, 0), R[None].repeat(3, 0), 0.9)
    with pytest.raises(ValueError, match="values0"):
        jaxmdp.solve(jaxmdp.make_mdp(P, R, 0.9), values0=np.zeros(3))


def test_validate_refuses_tracers_with_clear_message():
    P, R = _random(np.random.default_rng(9))

    @jax.jit
    def f(R):
        return jaxmdp.make_mdp(P, R, 0.9).rewards

    with pytest.raises(TypeError, match="outside the transformation"):
        f(R)
    # validate=False is the way inside jit.
    jax.jit(lambda R: jaxmdp.make_mdp(P, R, 0.9, validate=False).rewards)(R)


def test_reward_layouts():
    rng = np.random.default_rng(10)
    P, _ = _random(rng, dtype=np.float64)
    Rsas = rng.normal(size=P.shape)
    with jax.enable_x64(True):
        m = jaxmdp.make_mdp(P, Rsas, 0.9, rewards_per="transition")
        np.testing.assert_allclose(np.asarray(m.rewards), (P * Rsas).sum(-1), rtol=1e-12)
        Rs = rng.normal(size=P.shape[0])
        m = jaxmdp.make_mdp(P, Rs, 0.9, rewards_per="state")
        np.testing.assert_array_equal(np.asarray(m.rewards), np.repeat(Rs[:, None], 3, 1))
    with pytest.raises(ValueError, match="rewards_per"):
        jaxmdp.make_mdp(P, Rsas, 0.9, rewards_per="bogus")


def test_pymdptoolbox_layout_round_trip():
    import mdptoolbox.example

    P, R = mdptoolbox.example.forest()
    with jax.enable_x64(True):
        mdp = jaxmdp.from_pymdptoolbox(P, R, 0.96)
        assert mdp.transitions.shape == (3, 2, 3)
        P2, R2 = jaxmdp.to_pymdptoolbox(mdp)
        np.testing.assert_array_equal(P2, P)
        np.testing.assert_array_equal(R2, R)
        # [A, S, S] per-transition rewards reduce to expected rewards.
        Rass = np.stack([np.outer(R[:, a], np.ones(3)) for a in range(2)])
        m3 = jaxmdp.from_pymdptoolbox(P, Rass, 0.96)
        np.testing.assert_allclose(np.asarray(m3.rewards), R)
        # [S] per-state rewards.
        m1 = jaxmdp.from_pymdptoolbox(P, R[:, 0], 0.96)
        np.testing.assert_allclose(np.asarray(m1.rewards), np.repeat(R[:, :1], 2, 1))
