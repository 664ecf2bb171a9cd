"""`error_bound` is a true bound (issue 16 #4): against the EXACT V*, Q* of the data as given.

Random MDPs (hypothesis) with discounts up to 0.999, in float32 and float64, every solver:
`|values - V*| <= error_bound` and `|q_values - Q*| <= error_bound` hold without any
tolerance, where V*, Q* come from rational arithmetic on the very arrays the solver saw
(`exact_reference`, no rounding at all). Whatever the status (SUCCESS, PRECISION_LIMITED,
MAX_ITERATIONS), a finite `error_bound` is a claim and is checked. The value-iteration family's
greedy policy is within `2 error_bound` of optimal (`jaxmdp._solvers._stopping`).

Cost: each draw is a batch of MDPs solved as one program per solver and dtype (compiled
once for the module), then checked member by member.
"""

from __future__ import annotations

from fractions import Fraction

import exact_reference as exact
import hypothesis.strategies as st
import jax
import mpmath
import numpy as np
import pytest
from conftest import random_mdp_arrays
from hypothesis import HealthCheck, given, settings

import jaxmdp

PAD_S, PAD_A = 6, 3
BATCH = 8
DISCOUNTS = [0.0, 0.5, 0.9, 0.99, 0.999]

SOLVERS = [
    jaxmdp.ValueIteration(),
    jaxmdp.ValueIteration(rule="sup"),
    jaxmdp.PolicyIteration(),
    jaxmdp.ModifiedPolicyIteration(),
    jaxmdp.GaussSeidelValueIteration(),
    jaxmdp.AndersonValueIteration(),
]
GREEDY = (jaxmdp.ValueIteration, jaxmdp.ModifiedPolicyIteration, jaxmdp.AndersonValueIteration)
DTYPES = ["float32", "float64"]
MAX_ITERS = 20_000


def _id(solver):
    tol = getattr(solver, "tol", None)
    rule = getattr(solver, "rule", None)
    return type(solver).__name__ + (f"-{rule}" if rule else "") + (f"-tol{tol:g}" if tol else "")


@st.composite
def mdp_case(draw):
    """One random MDP `(P [6, 3, 6], R [6, 3], g)` in float64, padded from S x A."""
    S = draw(st.integers(1, PAD_S))
    A = draw(st.integers(1, PAD_A))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    P, R = random_mdp_arrays(
        rng,
        S,
        A,
        sparsity=draw(st.sampled_from([0.0, 0.5, 0.9])),
        unavailable=draw(st.sampled_from([0.0, 0.3])),
        reward_scale=draw(st.sampled_from([1.0, 10.0, 100.0])),
    )
    R = R + draw(st.sampled_from([0.0, 50.0, -300.0]))
    g = draw(st.sampled_from(DISCOUNTS) | st.floats(0.0, 0.999))
    return (*_embed(P, R), g)


def _embed(P, R):
    """Pad to `[PAD_S, PAD_A]` without changing the MDP: extra states copy state 0 (nothing
    reaches them), extra actions are unavailable."""
    S, A = R.shape
    Pp = np.zeros((PAD_S, PAD_A, PAD_S))
    Rp = np.full((PAD_S, PAD_A), -np.inf)
    Pp[:S, :A, :S] = P
    Rp[:S, :A] = R
    Pp[:S, A:, :S] = P[:, :1, :]
    Pp[S:] = Pp[0]
    Rp[S:] = Rp[0]
    return Pp, Rp


def _as_given(mdp, i):
    """Member i's arrays exactly as the solver saw them (its dtype, as NumPy)."""
    return (
        np.asarray(mdp.transitions[i]),
        np.asarray(mdp.rewards[i]),
        np.asarray(mdp.discount[i]),
    )


def _frac(x) -> Fraction:
    return Fraction(float(x))


def _check_member(sol, i, V, Q, what):
    bound = float(np.asarray(sol.error_bound)[i])
    status = jaxmdp.Status(int(np.asarray(sol.status)[i]))
    assert status != jaxmdp.Status.NONFINITE, what
    if not np.isfinite(bound):
        return None
    values = np.asarray(sol.values)[i]
    q = np.asarray(sol.q_values)[i]
    b = _frac(bound)
    err_v = max(abs(_frac(v) - vs) for v, vs in zip(values, V, strict=True))
    assert err_v <= b, f"{what} {status.name}: |V - V*| = {float(err_v):.3g} > bound {bound:.3g}"
    for s, row in enumerate(Q):
        for a, qs in enumerate(row):
            if qs is None:
                assert np.isneginf(q[s, a]), what
                continue
            err_q = abs(_frac(q[s, a]) - qs)
            assert err_q <= b, (
                f"{what} {status.name}: |Q - Q*| at {(s, a)} = {float(err_q):.3g} > {bound:.3g}"
            )
    return b


@pytest.mark.parametrize("dtype", DTYPES)
@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=st.lists(mdp_case(), min_size=BATCH, max_size=BATCH))
def test_error_bound_holds_against_exact_values(dtype, cases):
    with jax.enable_x64(dtype == "float64"):
        P = np.stack([c[0] for c in cases])
        R = np.stack([c[1] for c in cases])
        g = np.array([c[2] for c in cases])
        mdp = jaxmdp.make_mdp(P, R, g)
        assert mdp.transitions.dtype == np.dtype(dtype)
        refs = [exact.optimal(*_as_given(mdp, i)) for i in range(BATCH)]
        for solver in SOLVERS:
            sol = jaxmdp.solve(mdp, solver, max_iters=MAX_ITERS)
            for i, (V, Q) in enumerate(refs):
                what = f"{_id(solver)} {dtype} member {i} (g={g[i]:.6g})"
                b = _check_member(sol, i, V, Q, what)
                if b is not None and isinstance(solver, GREEDY):
                    Pi, Ri, gi = _as_given(mdp, i)
                    pol = np.asarray(sol.policy)[i]
                    Vpi = exact.policy_value(Pi, Ri, gi, pol)
                    loss = max(vs - vp for vs, vp in zip(V, Vpi, strict=True))
                    assert loss <= 2 * b, f"{what}: policy loss {float(loss):.3g} > 2 bound"


@settings(max_examples=2, deadline=None)
@given(cases=st.lists(mdp_case(), min_size=4, max_size=4))
def test_soft_value_iteration_bound_holds(cases):
    """Soft VI against the exact soft fixed point (mpmath, 60 digits), float32 and float64."""
    tau = 0.5
    for dtype in DTYPES:
        with jax.enable_x64(dtype == "float64"):
            P = np.stack([c[0] for c in cases])
            R = np.stack([c[1] for c in cases])
            g = np.array([c[2] for c in cases])
            mdp = jaxmdp.make_mdp(P, R, g)
            sol = jaxmdp.solve(mdp, jaxmdp.SoftValueIteration(temperature=tau), max_iters=MAX_ITERS)
            for i in range(len(cases)):
                V, Q = exact.soft_optimal(*_as_given(mdp, i), tau)
                bound = float(np.asarray(sol.error_bound)[i])
                assert np.isfinite(bound)
                with mpmath.workdps(60):
                    b = mpmath.mpf(bound)
                    vals = np.asarray(sol.values)[i]
                    err = max(abs(mpmath.mpf(float(v)) - vs) for v, vs in zip(vals, V, strict=True))
                    assert err <= b, f"soft {dtype} member {i}: {float(err):.3g} > {bound:.3g}"
                    q = np.asarray(sol.q_values)[i]
                    for s, row in enumerate(Q):
                        for a, qs in enumerate(row):
                            if qs is not None:
                                assert abs(mpmath.mpf(float(q[s, a])) - qs) <= b


@settings(max_examples=2, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4))
def test_relative_value_iteration_gain_interval_holds(seeds):
    """The gain (max d + min d) / 2 lies within `error_bound` of the exact optimal gain
    (dense random rows: unichain), float32 and float64."""
    for dtype in DTYPES:
        with jax.enable_x64(dtype == "float64"):
            arrays = [
                random_mdp_arrays(np.random.default_rng(s), 5, 3, reward_scale=10.0) for s in seeds
            ]
            mdp = jaxmdp.make_mdp(
                np.stack([a[0] for a in arrays]), np.stack([a[1] for a in arrays]), 1.0
            )
            res = jaxmdp.solve_average_reward(mdp)
            for i in range(len(seeds)):
                Pi, Ri = np.asarray(mdp.transitions[i]), np.asarray(mdp.rewards[i])
                g_star = exact.gain(Pi, Ri)
                bound = float(np.asarray(res.error_bound)[i])
                err = abs(_frac(np.asarray(res.gain)[i]) - g_star)
                assert err <= _frac(bound), (
                    f"RVI {dtype} member {i}: {float(err):.3g} > {bound:.3g}"
                )


def test_shared_transitions_fast_path_bound_holds():
    """Value iteration on a batch sharing one `transitions` (its own kernel), float32."""
    rng = np.random.default_rng(5)
    P, R = random_mdp_arrays(rng, 5, 3, batch=(16,), reward_scale=10.0)
    g = np.linspace(0.5, 0.999, 16)
    mdp = jaxmdp.make_mdp(P[0], R + 40.0, g)
    assert mdp.transitions.ndim == 3
    sol = jaxmdp.solve(mdp)
    for i in range(16):
        V, Q = exact.optimal(
            np.asarray(mdp.transitions), np.asarray(mdp.rewards[i]), np.asarray(mdp.discount[i])
        )
        _check_member(sol, i, V, Q, f"shared member {i}")


def test_bound_is_not_vacuous_in_float64():
    """Typical float64 solves still certify 1e-6 (the rounding part is ~1e-12 here)."""
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        P, R = random_mdp_arrays(rng, 64, 4, batch=(4,), reward_scale=10.0)
        mdp = jaxmdp.make_mdp(P, R, np.array([0.9, 0.99, 0.995, 0.999]))
        for solver in (jaxmdp.ValueIteration(tol=1e-6), jaxmdp.PolicyIteration()):
            sol = jaxmdp.solve(mdp, solver, max_iters=MAX_ITERS)
            np.testing.assert_array_equal(sol.status, jaxmdp.Status.SUCCESS)
            assert np.all(np.asarray(sol.error_bound) <= 5e-7), np.asarray(sol.error_bound)
