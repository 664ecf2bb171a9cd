"""Quick compiles for small solves (`jaxmdp._quick`, DECISIONS 11): which plans get XLA's
quick options, and that such a program's results are the optimised program's within
rounding. (White box: reads the plan; the rest of the suite runs its small solves through
these programs too.)"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from _compare import assert_same_within_rounding

import jaxmdp
from jaxmdp import _quick, models
from jaxmdp._exec import plan as plan_mod


def _plan(mdp, solver=None):
    solver = solver or jaxmdp.ValueIteration()
    return plan_mod.make_plan(plan_mod.gather_facts(mdp, None, solver))


def _lecture(step_reward=-0.04, discount=0.9):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)


def test_this_jaxlib_accepts_the_quick_options():
    # Were they refused, small solves would silently compile as large ones do.
    assert _quick.options() == _quick.QUICK_OPTIONS


@pytest.mark.cpu_plan  # quick compiles are the CPU's
@pytest.mark.parametrize(
    ("members", "strategy", "quick"),
    [(0, "vmap", True), (63, "shared_tiles", True), (20_000, "shared_tiles", False)],
    ids=["one", "readme-sweep", "large"],
)
def test_small_concrete_cpu_solves_plan_quick_compiles(members, strategy, quick):
    steps = np.linspace(-2, 0, members) if members else -0.04
    plan = _plan(_lecture(step_reward=steps))
    assert (plan.strategy, plan.quick_compile) == (strategy, quick)


def test_no_quick_compile_for_large_states_other_backends_or_traced_inputs():
    rng = np.random.default_rng(0)
    S = 200  # S * A * S = 120,000 multiply-adds per sweep
    P = rng.dirichlet(np.ones(S), size=(S, 3))
    big = jaxmdp.make_mdp(P, rng.standard_normal((S, 3)), 0.9)
    assert not _plan(big).quick_compile
    with plan_mod.force("gpu"):
        assert not _plan(_lecture()).quick_compile
    seen = []

    @jax.jit
    def traced(discount):
        plan = _plan(_lecture(discount=discount))
        seen.append(plan.quick_compile)
        return plan.strategy == "vmap"

    traced(0.9)
    assert seen == [False]


@pytest.mark.cpu_plan  # quick compiles are the CPU's
@pytest.mark.programs
def test_quick_program_is_the_optimised_program_within_rounding():
    """The same solve as a quick-compiled top-level program and inside a user's jit (which
    compiles it as that program's own part, without compile options). Float64: float32
    members at the precision floor may stop a sweep apart in two programs (`_compare`)."""
    with jax.enable_x64(True):
        mdp = _lecture(step_reward=np.linspace(-2, 0, 9), discount=0.95)
        assert _plan(mdp).quick_compile
        quick = jaxmdp.solve(mdp)
        optimised = jax.jit(jaxmdp.solve)(mdp)
    assert (np.asarray(quick.status) == jaxmdp.Status.SUCCESS).all()
    assert_same_within_rounding(quick, optimised, 0.95)


@pytest.mark.cpu_plan  # quick compiles are the CPU's
def test_constant_inputs_inside_a_users_jit_are_that_programs_part():
    """A solve inside a user's jit with constant (closed-over) inputs: no compile options
    (quick or tiled) and no host threads, which need a top-level program. Before: the host
    threads' programs leaked tracers (`UnexpectedTracerError`)."""
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(16), size=(1024, 16, 4))
    batch = jaxmdp.make_mdp(P, rng.standard_normal((1024, 16, 4)), 0.9)
    one = _lecture()
    assert _plan(batch).strategy == "threads" and _plan(one).quick_compile
    inside = jax.jit(lambda: (jaxmdp.solve(batch), jaxmdp.solve(one)))()
    assert_same_within_rounding(inside[0], jaxmdp.solve(batch), 0.9)
    assert_same_within_rounding(inside[1], jaxmdp.solve(one), 0.9)
