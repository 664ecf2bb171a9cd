"""Solver hyperparameters and `solve`'s `solver` / `max_iters` arguments (issue 16 #6, issue 11).

Every bad value raises our error naming the argument, at construction (solvers) or at the
call (`solve`), never JAX's "Error interpreting argument"; `jax.jit(jaxmdp.solve, ...)`
works as documented in `solve`'s docstring, and a traced `max_iters` says what to do.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmdp
from jaxmdp import models

TOL_SOLVERS = [
    jaxmdp.ValueIteration,
    jaxmdp.ModifiedPolicyIteration,
    jaxmdp.GaussSeidelValueIteration,
    jaxmdp.AndersonValueIteration,
    jaxmdp.SoftValueIteration,
    jaxmdp.RelativeValueIteration,
]


@pytest.fixture(scope="module")
def world():
    return models.gridworld(slip=0.2, discount=0.9)


@pytest.mark.parametrize("cls", TOL_SOLVERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("tol", "error"),
    [
        (-1.0, ValueError),
        (0, ValueError),
        (np.float32(-1), ValueError),
        (np.float64(0.0), ValueError),
        (np.int64(-3), ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (np.array([1e-3, -1.0]), ValueError),
        ("1e-3", TypeError),
        (True, TypeError),
        (1 + 2j, TypeError),
        ([1e-3], TypeError),
    ],
    ids=repr,
)
def test_bad_tol_is_refused_naming_it(cls, tol, error):
    with pytest.raises(error, match=rf"{cls.__name__}\(tol=\.\.\.\): tol must be"):
        cls(tol=tol)


@pytest.mark.parametrize("cls", TOL_SOLVERS, ids=lambda c: c.__name__)
def test_good_tol_values_are_accepted(cls):
    for tol in (None, 1e-3, 1, np.float32(1e-4), np.float64(2e-5), np.int32(1), jnp.float32(1e-3)):
        assert cls(tol=tol).tol is tol


@pytest.mark.parametrize(
    ("make", "pattern", "error"),
    [
        (
            lambda: jaxmdp.ModifiedPolicyIteration(eval_sweeps=0),
            r"eval_sweeps must be an int >= 1",
            ValueError,
        ),
        (
            lambda: jaxmdp.ModifiedPolicyIteration(eval_sweeps=2.0),
            r"eval_sweeps must be an int",
            TypeError,
        ),
        (
            lambda: jaxmdp.ModifiedPolicyIteration(eval_sweeps=True),
            r"eval_sweeps must be an int",
            TypeError,
        ),
        (lambda: jaxmdp.ModifiedPolicyIteration(rule="max"), r"rule must be one of", ValueError),
        (lambda: jaxmdp.ValueIteration(rule=1), r"rule must be one of", ValueError),
        (
            lambda: jaxmdp.PolicyIteration(initial_sweeps=-1),
            r"initial_sweeps must be an int >= 0",
            ValueError,
        ),
        (
            lambda: jaxmdp.PolicyIteration(initial_sweeps="1"),
            r"initial_sweeps must be an int",
            TypeError,
        ),
        (
            lambda: jaxmdp.AndersonValueIteration(memory=0),
            r"memory must be an int >= 1",
            ValueError,
        ),
        (
            lambda: jaxmdp.AndersonValueIteration(memory=np.float64(3)),
            r"memory must be an int",
            TypeError,
        ),
        (
            lambda: jaxmdp.SoftValueIteration(temperature=0.0),
            r"temperature must be a finite number > 0",
            ValueError,
        ),
        (
            lambda: jaxmdp.SoftValueIteration(temperature=np.float32(-1)),
            r"temperature must be",
            ValueError,
        ),
        (
            lambda: jaxmdp.SoftValueIteration(temperature="1"),
            r"temperature must be a number",
            TypeError,
        ),
        (
            lambda: jaxmdp.RelativeValueIteration(tau=1.5),
            r"tau must be a finite number > 0.0, <= 1.0",
            ValueError,
        ),
        (lambda: jaxmdp.RelativeValueIteration(tau=np.float32(0)), r"tau must be", ValueError),
        (
            lambda: jaxmdp.RelativeValueIteration(ref_state=-1),
            r"ref_state must be an int >= 0",
            ValueError,
        ),
    ],
)
def test_other_hyperparameters_are_validated(make, pattern, error):
    with pytest.raises(error, match=pattern):
        make()


def test_numpy_integers_become_python_ints():
    mpi = jaxmdp.ModifiedPolicyIteration(eval_sweeps=np.int64(3))
    assert type(mpi.eval_sweeps) is int and mpi.eval_sweeps == 3
    assert type(jaxmdp.AndersonValueIteration(memory=np.int32(4)).memory) is int
    assert type(jaxmdp.PolicyIteration(initial_sweeps=np.int8(0)).initial_sweeps) is int


def test_ref_state_beyond_the_states_is_refused(world):
    with pytest.raises(ValueError, match=r"ref_state must be a state index < S = 11"):
        jaxmdp.solve(world, jaxmdp.RelativeValueIteration(ref_state=11))


@pytest.mark.parametrize(
    ("solver", "pattern"),
    [
        (
            "vi",
            r"solver must be a solver instance such as jaxmdp\.ValueIteration\(\); "
            r"got the string 'vi'",
        ),
        ("pi", r"jaxmdp\.PolicyIteration\(\)"),
        ("foo", r"got the string 'foo'"),
        (jaxmdp.ValueIteration, r"not the class ValueIteration: write ValueIteration\(\)"),
        (jaxmdp.PolicyIteration, r"not the class PolicyIteration"),
        (1e-3, r"solver must be a solver instance .* got float"),
        (object(), r"has no init, step, status, result"),
    ],
    ids=["vi", "pi", "foo", "class-VI", "class-PI", "float", "object"],
)
def test_solve_refuses_a_bad_solver_argument(world, solver, pattern):
    with pytest.raises(TypeError, match=pattern):
        jaxmdp.solve(world, solver)


@pytest.mark.parametrize(
    ("max_iters", "error", "pattern"),
    [
        (0, ValueError, r"max_iters must be an int in \[1, 2\*\*31 - 1\]"),
        (2**31, ValueError, r"max_iters must be an int in"),
        (99_999_999_999, ValueError, r"max_iters must be an int in"),
        (10.0, TypeError, r"max_iters must be an int >= 1; got 10\.0 \(float\)"),
        ("10", TypeError, r"max_iters must be an int"),
        (True, TypeError, r"max_iters must be an int"),
    ],
    ids=repr,
)
def test_solve_refuses_a_bad_max_iters(world, max_iters, error, pattern):
    with pytest.raises(error, match=pattern):
        jaxmdp.solve(world, max_iters=max_iters)


def test_solve_accepts_numpy_int_max_iters(world):
    assert int(jaxmdp.solve(world, max_iters=np.int64(3)).num_iters) <= 3


def test_compact_must_be_static(world):
    with pytest.raises(TypeError, match=r"compact must be True, False or None"):
        jaxmdp.solve(world, compact="yes")
    with pytest.raises(TypeError, match=r"compact is a traced value.*static_argnames"):
        jax.jit(lambda c: jaxmdp.solve(world, compact=c))(True)


def test_traced_max_iters_says_how_to_make_it_static(world):
    with pytest.raises(
        TypeError, match=r"max_iters is a traced value.*static_argnames=\('max_iters',\)"
    ):
        jax.jit(jaxmdp.solve)(world, max_iters=50)


def test_jit_as_documented_in_solve_docstring(world):
    """The docstring's runnable example runs, and gives the eager results."""
    block = re.search(
        r"Runnable example::\n\n(.*?)\n    \"\"\"|Runnable example::\n\n(.*)",
        jaxmdp.solve.__doc__,
        re.S,
    )
    code = "\n".join(line[10:] for line in (block.group(1) or block.group(2)).splitlines())
    scope: dict = {}
    exec(compile(code, "solve.__doc__", "exec"), scope)  # noqa: S102
    sol = scope["sol"]
    assert jaxmdp.Status(int(sol.status)) == jaxmdp.Status.SUCCESS

    solve_jit = jax.jit(jaxmdp.solve, static_argnames=("max_iters", "solver"))
    for solver in (jaxmdp.PolicyIteration(), jaxmdp.ValueIteration(tol=1e-4, rule="sup")):
        jitted = solve_jit(world, solver, max_iters=500)
        eager = jaxmdp.solve(world, solver, max_iters=500)
        np.testing.assert_array_equal(jitted.policy, eager.policy)
        np.testing.assert_array_equal(jitted.status, eager.status)
        bound = float(eager.error_bound) + float(jitted.error_bound)
        np.testing.assert_allclose(np.asarray(jitted.values), np.asarray(eager.values), atol=bound)
    # The solver as an ordinary (traced) argument: its tol is a leaf, no recompilation.
    dyn = jax.jit(jaxmdp.solve, static_argnames=("max_iters",))
    a = dyn(world, jaxmdp.ValueIteration(tol=1e-3), max_iters=500)
    b = dyn(world, jaxmdp.ValueIteration(tol=1e-5), max_iters=500)
    assert int(a.num_iters) <= int(b.num_iters)


def test_solver_rebuilt_by_jax_transformations_is_not_validated_as_data(world):
    """`jax.vmap` rebuilds a solver from placeholder leaves (`object()`) and tracers; the
    checks must let those through, and check concrete numbers only."""
    tols = jnp.array([1e-2, 1e-4], jnp.float32)
    out = jax.vmap(lambda t: jaxmdp.solve(world, jaxmdp.ValueIteration(tol=t)).num_iters)(tols)
    assert out.shape == (2,) and int(out[0]) <= int(out[1])
    leaves, treedef = jax.tree.flatten(jaxmdp.ValueIteration(tol=1e-3))
    rebuilt = jax.tree.unflatten(treedef, [object() for _ in leaves])
    assert isinstance(rebuilt, jaxmdp.ValueIteration)
