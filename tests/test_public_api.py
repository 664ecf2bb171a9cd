"""The public API: everything in `jaxmdp.__all__` exists and is enough to use the library."""

from __future__ import annotations

import ast
import inspect
import pathlib

import jaxmdp

TESTS = pathlib.Path(__file__).parent


def test_all_names_exist():
    assert len(set(jaxmdp.__all__)) == len(jaxmdp.__all__)
    for name in jaxmdp.__all__:
        assert hasattr(jaxmdp, name), name
        assert not name.startswith("_"), name


def test_contract_names_are_public():
    expected = {
        "MDP",
        "make_mdp",
        "validate_mdp",
        "InvalidMDPError",
        "from_pymdptoolbox",
        "to_pymdptoolbox",
        "solve",
        "Solution",
        "Status",
        "check",
        "ConvergenceError",
        "ValueIteration",
        "PolicyIteration",
        "ModifiedPolicyIteration",
        "bellman",
    }
    assert expected <= set(jaxmdp.__all__)
    kernels = {
        "q_values",
        "backup",
        "greedy_policy",
        "evaluate_policy",
        "evaluate_policy_iterative",
    }
    assert kernels <= set(jaxmdp.bellman.__all__)
    for name in jaxmdp.bellman.__all__:
        assert callable(getattr(jaxmdp.bellman, name)), name


def test_public_types_behave_as_documented():
    assert issubclass(jaxmdp.InvalidMDPError, ValueError)
    assert issubclass(jaxmdp.ConvergenceError, Exception)
    assert [(s.name, int(s)) for s in jaxmdp.Status] == [
        ("SUCCESS", 0),
        ("MAX_ITERATIONS", 1),
        ("NONFINITE", 2),
        ("INVALID_INPUT", 3),
        ("PRECISION_LIMITED", 4),
        ("UNBOUNDED", 5),
    ]
    assert jaxmdp.MDP._fields == ("transitions", "rewards", "discount")
    assert jaxmdp.Solution._fields == (
        "values",
        "q_values",
        "policy",
        "status",
        "num_iters",
        "residual",
        "error_bound",
    )
    for solver in (jaxmdp.ValueIteration, jaxmdp.PolicyIteration, jaxmdp.ModifiedPolicyIteration):
        assert inspect.isclass(solver)
        solver()  # defaults exist
    assert isinstance(jaxmdp.__version__, str)


# White-box tests of the execution layer: they check a strategy's plan and programs directly
# (tile sizes, which devices, what the compiled loop exchanges), which the public API does not
# expose. Every other test goes through the public API only.
WHITE_BOX = {
    "test_blocked.py": {"jaxmdp._exec", "jaxmdp._solvers.base"},
    "test_shared_tiles.py": {"jaxmdp._exec", "jaxmdp._solve", "jaxmdp._solvers.base"},
    "test_sweep_csv.py": {"jaxmdp._format", "jaxmdp._sweep_csv", "jaxmdp._unique"},
    # the one-pass sparse sweep's pieces, against the plain expressions
    "test_sparse_sweep.py": {"jaxmdp._solvers", "jaxmdp._solvers.base"},
    # the progress chunks' arithmetic and the host kernel's member threshold; and (with the
    # two below) sweep tiles of 256 under a GPU/TPU plan too (`plan.SWEEP_TILE_ACCELERATOR`)
    "test_sweep.py": {"jaxmdp._exec"},
    "test_checkpoint.py": {"jaxmdp._exec"},
    "test_distributed.py": {"jaxmdp._exec"},
    # which plans compile with the quick options
    "test_quick_compile.py": {"jaxmdp._exec"},
    # the certificate's row sums against their rounding bound
    "test_rounding_constants.py": {"jaxmdp._solvers"},
    # which backend plans are made for (tests marked `cpu_plan` skip under a GPU/TPU plan)
    "conftest.py": {"jaxmdp._exec"},
}


def test_tests_use_only_the_public_api():
    """No test module imports from a private `jaxmdp._*` module (except `WHITE_BOX`)."""
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            elif isinstance(node, ast.Import):
                mods = [alias.name for alias in node.names]
            else:
                continue
            for mod in mods:
                parts = mod.split(".")
                if parts[0] == "jaxmdp" and any(p.startswith("_") for p in parts[1:]):
                    if mod not in WHITE_BOX.get(path.name, ()):
                        offenders.append(f"{path.name}: {mod}")
    assert offenders == []
