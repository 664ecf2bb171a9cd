"""Property test over the public API (issue 16): random valid and invalid arguments.

Every public solve-like call either returns a valid result or raises our error naming the
argument that was wrong: a `ValueError` / `TypeError` / `jaxmdp.InvalidMDPError` whose
message contains the argument's name. Never a bare `IndexError` / `KeyError`, a `TypeError`
from deep inside JAX, or NaN returned silently (NaN is allowed only where a status code
says so: `NONFINITE` / `INVALID_INPUT`).

Draws are small (S = 4, A = 2) and bounded in number; programs are shared across draws.
"""

from __future__ import annotations

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import jaxmdp

S, A = 4, 2
_rng = np.random.default_rng(0)
P0 = _rng.dirichlet(np.ones(S), size=(S, A))
R0 = _rng.standard_normal((S, A))
OURS = (ValueError, TypeError, jaxmdp.InvalidMDPError)


def _mdp(g=0.9):
    return jaxmdp.make_mdp(P0, R0, g)


def _raw(P=P0, R=R0, g=0.9):
    return jaxmdp.MDP(jnp.asarray(P, jnp.float32), jnp.asarray(R, jnp.float32), jnp.float32(g))


# Argument values that are wrong, by kind: (value, must_raise). must_raise=False: a status
# code (INVALID_INPUT / NONFINITE) is an acceptable answer too.
BAD_MDP = [
    ("a string", True),
    (None, True),
    ((P0, R0, 0.9), True),
    (lambda: _raw(P=P0[:, :, :3]), True),
    (lambda: _raw(R=R0[:3]), True),
    (lambda: _raw(g=1.5), False),
    (lambda: _raw(g=float("nan")), False),
    (lambda: _raw(R=np.where(np.arange(S)[:, None] == 1, np.nan, R0)), False),
]
BAD_POLICY = [
    (np.full(S, A), True),
    (np.full(S, -1), True),
    (np.zeros(S + 1, int), True),
    (np.full(S, 0.5), True),
    (np.full((S, A), 0.7), True),
    (np.tile([1.5, -0.5], (S, 1)), True),
    (np.full((S, A), np.nan), True),
    ("greedy", True),
    (None, True),
]
BAD_INITIAL = [
    (S, True),
    (-1, True),
    (2.5, True),
    (np.full(S + 1, 1.0 / (S + 1)), True),
    (np.full(S, 0.5), True),
    (np.array([1.5, -0.5, 0.0, 0.0]), True),
    ("start", True),
]
BAD_COUNT = [(0, True), (-3, True), (2.5, True), ("10", True), (None, True), (2**40, True)]
BAD_FLAG = [("yes", True), (None, True), (2, True)]
BAD_VALUES0 = [(np.zeros(S + 1), True), ("zeros", True), (np.zeros((3, S)), True)]
BAD_SOLVER = [("vi", True), (jaxmdp.ValueIteration, True), (0.5, True)]


def _valid_policy(kind):
    return np.zeros(S, np.int32) if kind == "det" else np.full((S, A), 1.0 / A)


# name -> (callable(**kwargs), valid kwargs factory, {argument: bad values})
CALLS = {
    "solve": (
        lambda mdp, solver=None, max_iters=100, values0=None, compact=None: jaxmdp.solve(
            mdp, solver, max_iters=max_iters, values0=values0, compact=compact
        ),
        lambda: dict(mdp=_mdp()),
        dict(
            mdp=BAD_MDP,
            solver=BAD_SOLVER,
            max_iters=BAD_COUNT,
            values0=BAD_VALUES0,
            compact=[("yes", True), (2, True)],
        ),
    ),
    "solve_average_reward": (
        lambda mdp, max_iters=100: jaxmdp.solve_average_reward(mdp, max_iters=max_iters),
        lambda: dict(mdp=_mdp()),
        dict(mdp=BAD_MDP, max_iters=BAD_COUNT),
    ),
    "backward_induction": (
        lambda mdp, horizon=5, terminal_values=None: jaxmdp.backward_induction(
            mdp, horizon, terminal_values
        ),
        lambda: dict(mdp=_mdp()),
        dict(
            mdp=BAD_MDP,
            horizon=[(-3, True), (2.5, True), ("10", True), (None, True), (2**40, True)],
            terminal_values=[(np.zeros(S + 1), True), ("zeros", True)],
        ),
    ),
    "policy_values": (
        lambda mdp, policy, undiscounted=True: jaxmdp.policy_values(
            mdp, policy, undiscounted=undiscounted
        ),
        lambda: dict(mdp=_mdp(), policy=_valid_policy("det")),
        dict(mdp=BAD_MDP, policy=BAD_POLICY, undiscounted=BAD_FLAG),
    ),
    "policy_q_values": (
        lambda mdp, policy: jaxmdp.policy_q_values(mdp, policy),
        lambda: dict(mdp=_mdp(), policy=_valid_policy("sto")),
        dict(mdp=BAD_MDP, policy=BAD_POLICY),
    ),
    "occupancy": (
        lambda mdp, policy, initial_distribution, normalized=False: jaxmdp.occupancy(
            mdp, policy, initial_distribution, normalized=normalized
        ),
        lambda: dict(mdp=_mdp(), policy=_valid_policy("det"), initial_distribution=0),
        dict(mdp=BAD_MDP, policy=BAD_POLICY, initial_distribution=BAD_INITIAL, normalized=BAD_FLAG),
    ),
    "state_action_occupancy": (
        lambda mdp, policy, initial_distribution: jaxmdp.state_action_occupancy(
            mdp, policy, initial_distribution
        ),
        lambda: dict(
            mdp=_mdp(), policy=_valid_policy("sto"), initial_distribution=np.full(S, 0.25)
        ),
        dict(mdp=BAD_MDP, policy=BAD_POLICY, initial_distribution=BAD_INITIAL),
    ),
    "stationary_distribution": (
        lambda mdp, policy, initial_distribution=None: jaxmdp.stationary_distribution(
            mdp, policy, initial_distribution
        ),
        lambda: dict(mdp=_mdp(), policy=_valid_policy("det")),
        dict(mdp=BAD_MDP, policy=BAD_POLICY, initial_distribution=BAD_INITIAL),
    ),
    "convergence_history": (
        lambda mdp, solver=None, num_iters=5: jaxmdp.convergence_history(mdp, solver, num_iters),
        lambda: dict(mdp=_mdp()),
        dict(mdp=BAD_MDP, solver=BAD_SOLVER, num_iters=BAD_COUNT),
    ),
    "make_mdp": (
        lambda transitions, rewards, discount, rewards_per="state_action": jaxmdp.make_mdp(
            transitions, rewards, discount, rewards_per=rewards_per
        ),
        lambda: dict(transitions=P0, rewards=R0, discount=0.9),
        dict(
            transitions=[
                (P0[:, :, :3], True),
                (-P0, True),
                (np.full_like(P0, np.nan), True),
                ("P", True),
                (P0 * 2, True),
            ],
            rewards=[(R0[:3], True), (np.full_like(R0, np.nan), True), ("R", True)],
            discount=[(1.5, True), (-0.1, True), ("0.9", True), (float("nan"), True)],
            rewards_per=[("bogus", True), (None, True)],
        ),
    ),
}
ALIASES = {
    "mdp": ("mdp", "transition", "reward", "discount", "MDP"),
    "initial_distribution": ("initial_distribution", "initial distribution", "start state"),
    "horizon": ("horizon",),
    "values0": ("values0",),
    "terminal_values": ("terminal_values", "terminal values"),
    "transitions": ("transition",),
    "rewards": ("reward",),
}


def _finite_or_status(out, at_one=False):
    """A returned result is valid: no NaN, except where a status code reports the member,
    or where discount 1 documents it (policy values of chains whose recurrent classes mix
    reward signs: `jaxmdp.bellman.evaluate_policy`)."""
    status = getattr(out, "status", None)
    leaves = [np.asarray(x) for x in jax.tree.leaves(out)]
    if status is not None:
        bad = ~np.isin(np.asarray(status), [0, 1, 4, 5])  # NONFINITE / INVALID_INPUT report it
        if bad.all():
            return
        values = np.asarray(getattr(out, "values", getattr(out, "bias", None)))
        assert not np.isnan(values[~bad] if bad.ndim else values).any(), "NaN in values"
        return
    if at_one:
        return
    for x in leaves:
        if np.issubdtype(x.dtype, np.floating):
            assert not np.isnan(x).any(), "NaN returned silently"


def _resolve(value):
    return value() if callable(value) and not isinstance(value, type) else value


@st.composite
def call_case(draw):
    name = draw(st.sampled_from(sorted(CALLS)))
    fn, valid, bad = CALLS[name]
    kwargs = valid()
    arg = draw(st.sampled_from([None, *sorted(bad)]))
    must_raise = False
    if arg is not None:
        value, must_raise = draw(st.sampled_from(bad[arg]))
        kwargs[arg] = _resolve(value)
    g = draw(st.sampled_from([0.0, 0.5, 0.95, 1.0]))
    if arg != "mdp" and "mdp" in kwargs and g != 0.9:
        kwargs["mdp"] = _mdp(g)
    return name, fn, kwargs, arg, must_raise


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=call_case())
def test_public_calls_return_valid_results_or_raise_our_error_naming_the_argument(case):
    name, fn, kwargs, arg, must_raise = case
    try:
        out = fn(**kwargs)
    except OURS as e:
        assert arg is not None, f"{name} with valid arguments raised {e!r}"
        names = ALIASES.get(arg, (arg,))
        assert any(n in str(e) for n in names), f"{name}: {type(e).__name__} not naming {arg}: {e}"
        return
    except Exception as e:  # noqa: BLE001 - any other exception is the defect
        pytest.fail(f"{name}({arg}=...): {type(e).__name__} escaped: {e}")
    assert not must_raise, f"{name} accepted a bad {arg}: {kwargs.get(arg)!r:.80}"
    mdp = kwargs.get("mdp")
    _finite_or_status(out, at_one=isinstance(mdp, jaxmdp.MDP) and float(mdp.discount) >= 1)
