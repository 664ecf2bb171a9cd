"""Arguments are checked at the boundary: a clear error naming the argument, never a silent
wrong model (issue 16's list: slip, concentration, num_states, reward_range, complex data,
float16 tolerances, integer and bool inputs)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp
from jaxmdp import models

KEY = jax.random.key(0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(slip=-0.2), r"slip must be in \[0, 1\]; got -0.2"),
        (dict(slip=1.5), r"slip must be in \[0, 1\]; got 1.5"),
        (dict(slip=np.array([0.1, 0.2, 1.2])), r"slip .* got 1.2 at index 2"),
        (dict(slip=float("nan")), "slip"),
        (dict(discount=1.01), r"discount must be in \[0, 1\]"),
        (dict(step_reward=np.inf), "step_reward must be finite"),
        (dict(terminal_rewards={"+": np.nan}), r"terminal_rewards\['\+'\]"),
        (dict(cell_rewards=np.full((3, 4), np.nan)), "cell_rewards"),
    ],
)
def test_gridworld_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.gridworld(**kwargs)


def test_gridworld_traced_arguments_are_not_checked_but_stay_visible():
    # Inside jit the value is unknown: the builder cannot raise, validation downstream can.
    mdp = jax.jit(lambda slip: models.gridworld(slip=slip))(jnp.float32(-0.2))
    with pytest.raises(jaxmdp.InvalidMDPError, match="negative transition probability"):
        jaxmdp.validate_mdp(mdp)
    with pytest.raises(TypeError, match="layout"):
        models.GridLayout(42)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((4, 2), dict(concentration=-1), ValueError, r"concentration must be in \(0, inf\)"),
        ((4, 2), dict(concentration=0.0), ValueError, "concentration"),
        ((2.7, 2), {}, TypeError, r"num_states must be an int; got 2.7"),
        ((3.0, 2), {}, TypeError, "num_states must be an int"),
        (("3", 2), {}, TypeError, "num_states"),
        ((True, 2), {}, TypeError, "num_states"),
        ((0, 2), {}, ValueError, "num_states must be an int >= 1; got 0"),
        ((4, 1.5), {}, TypeError, "num_actions"),
        ((4, 2), dict(reward_range=(1, 0)), ValueError, r"low <= high; got \(1, 0\)"),
        ((4, 2), dict(reward_range=1.0), ValueError, "reward_range must be a pair"),
        ((4, 2), dict(reward_range=(0, np.inf)), ValueError, r"reward_range\[1\] must be finite"),
        ((4, 2), dict(discount=1.5), ValueError, "discount"),
        ((4, 2), dict(kind="garnet", num_successors=2.5), TypeError, "num_successors"),
        ((4, 2), dict(kind="garnet", num_successors=5), ValueError, "num_successors"),
    ],
)
def test_random_mdp_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        models.random_mdp(KEY, *args, **kwargs)


def test_random_mdp_integer_like_sizes_are_accepted():
    mdp = models.random_mdp(KEY, np.int64(3), jnp.int32(2))
    assert mdp.transitions.shape == (3, 2, 3)
    # Equal bounds give constant rewards (allowed).
    np.testing.assert_array_equal(models.random_mdp(KEY, 3, 2, reward_range=(2, 2)).rewards, 2.0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(p=1.5), ValueError, r"p must be in \[0, 1\]"),
        (dict(S=2.5), TypeError, "S must be an int"),
        (dict(S=1), ValueError, "S must be an int >= 2"),
        (dict(discount=-0.5), ValueError, "discount"),
    ],
)
def test_forest_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        models.forest(**kwargs)


def _arrays(S=4, A=2, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(S), size=(S, A)).astype(dtype), rng.normal(size=(S, A))


@pytest.mark.parametrize("leaf", ["transitions", "rewards", "discount"])
def test_complex_data_is_refused_not_truncated(leaf):
    P, R = _arrays()
    args = dict(transitions=P, rewards=R, discount=0.9)
    args[leaf] = np.asarray(args[leaf]) + 0j
    with pytest.raises(jaxmdp.InvalidMDPError, match=rf"{leaf} must be real; got complex"):
        jaxmdp.make_mdp(**args)
    if leaf != "discount":
        with pytest.raises(jaxmdp.InvalidMDPError, match=rf"{leaf} must be real"):
            jaxmdp.validate_mdp(jaxmdp.MDP(**args))
    with pytest.raises(jaxmdp.InvalidMDPError, match="numeric"):
        jaxmdp.make_mdp(P.astype(object), R, 0.9)


def _atol(dtype, S):
    """The documented default: eps * (8 + 2 sqrt(S))."""
    return float(np.finfo(dtype).eps) * (8 + 2 * np.sqrt(S))


def test_float16_tolerance_depends_on_dtype_and_size():
    # float16 with S=4 allows 0.0117, so a row 0.05 off fails (a flat 64 eps let it pass).
    P, R = _arrays(dtype=np.float16)
    g = np.float16(0.9)
    jaxmdp.validate_mdp(jaxmdp.MDP(P, R.astype(np.float16), g))  # rounded rows pass
    bad = P.copy()
    bad[2, 1, 0] += np.float16(0.05)
    atol = f"atol={_atol(np.float16, 4):.3g}"
    with pytest.raises(jaxmdp.InvalidMDPError, match=rf"{atol} at state 2, action 1"):
        jaxmdp.validate_mdp(jaxmdp.MDP(bad, R.astype(np.float16), g))
    with pytest.raises(jaxmdp.InvalidMDPError, match=r"state 2, action 1"):
        jaxmdp.make_mdp(bad.astype(np.float64), R, 0.9, dtype=np.float16)
    # The tolerance grows with S: a float32 row 1e-5 off fails at S=4, passes at S=4096.
    for S, passes in ((4, False), (4096, True)):
        P, R = _arrays(S=S, A=1, dtype=np.float32)
        P[0, 0, 0] += np.float32(1e-5)
        assert (_atol(np.float32, S) > 1e-5) == passes
        if passes:
            jaxmdp.validate_mdp(jaxmdp.MDP(P, R.astype(np.float32), np.float32(0.9)))
        else:
            with pytest.raises(jaxmdp.InvalidMDPError, match="does not sum to 1"):
                jaxmdp.validate_mdp(jaxmdp.MDP(P, R.astype(np.float32), np.float32(0.9)))


def test_integer_and_bool_inputs():
    # Deterministic transitions as an int or bool one-hot table, integer rewards.
    nxt = np.array([[1, 0], [2, 1], [2, 2]])
    onehot = np.eye(3, dtype=np.int64)[nxt]  # [S, A, S]
    rewards = np.array([[0, 1], [0, 2], [5, 0]])
    for P in (onehot, onehot.astype(bool)):
        mdp = jaxmdp.make_mdp(P, rewards, 1)
        assert mdp.transitions.dtype == mdp.rewards.dtype == jnp.result_type(float)
        np.testing.assert_array_equal(np.asarray(mdp.transitions), onehot)
        np.testing.assert_array_equal(np.asarray(mdp.rewards), rewards)
    with pytest.raises(jaxmdp.InvalidMDPError, match=r"transitions must be floating.*make_mdp"):
        jaxmdp.validate_mdp(jaxmdp.MDP(onehot, rewards.astype(float), 0.5))
    with pytest.raises(jaxmdp.InvalidMDPError, match=r"rewards must be floating"):
        jaxmdp.validate_mdp(jaxmdp.MDP(onehot.astype(float), rewards, 0.5))
    with pytest.raises(ValueError, match="dtype must be a floating-point dtype"):
        jaxmdp.make_mdp(onehot, rewards, 0.5, dtype=np.int32)


def test_values_that_overflow_the_stored_dtype_are_caught():
    P, R = _arrays()
    R[1, 0] = 1e300  # finite in float64, +inf once stored as float32
    with jax.enable_x64(False):
        with pytest.raises(
            jaxmdp.InvalidMDPError, match=r"\+inf \(in float32\).*state 1, action 0"
        ):
            jaxmdp.make_mdp(P, R, 0.9)
    with jax.enable_x64(True):
        assert jaxmdp.make_mdp(P, R, 0.9).rewards.dtype == jnp.float64


def test_make_mdp_keeps_the_dtype_rules():
    P, R = _arrays()
    with jax.enable_x64(False):
        assert jaxmdp.make_mdp(P, R, 0.9).transitions.dtype == jnp.float32
    with jax.enable_x64(True):
        mdp = jaxmdp.make_mdp(P, R, 0.9)
        assert mdp.transitions.dtype == mdp.rewards.dtype == mdp.discount.dtype == jnp.float64
        assert jaxmdp.make_mdp(P.astype(np.float32), R, 0.9).rewards.dtype == jnp.float32
        assert jaxmdp.make_mdp(P, R, 0.9, dtype=np.float32).transitions.dtype == jnp.float32
    # JAX inputs take the same route and give the same MDP.
    a = jaxmdp.make_mdp(P, R, 0.9)
    b = jaxmdp.make_mdp(jnp.asarray(P), jnp.asarray(R), jnp.asarray(0.9))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(ValueError, match=r"available must have shape \[\.\.\., S, A\]"):
        jaxmdp.make_mdp(P, R, 0.9, available=np.ones((4, 3), bool))
