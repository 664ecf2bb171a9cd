"""The command line for any model: layout files, Gymnasium environments, every solver and its
options, `--format json`, sweep axes the model exposes, the model's own action symbols."""

from __future__ import annotations

import ast
import json
import re

import numpy as np
import numpy_reference as ref
import pytest

import jaxmdp
from jaxmdp import ModelInfo, models
from jaxmdp.cli import main

LAYOUT = """
S . . G
. # . -
. . . .
"""


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own exits
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def strict_json(text: str) -> dict:
    """Parse as strict JSON: NaN / Infinity literals are an error."""

    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture
def layout_file(tmp_path):
    path = tmp_path / "world.txt"
    path.write_text(LAYOUT)
    return path


# -- layout files ------------------------------------------------------------------------------


def test_layout_file_needs_its_terminal_rewards(layout_file, capsys):
    code, out, err = run(["solve", "--layout", str(layout_file)], capsys)
    assert code == 2 and "--terminal-reward G=VALUE" in err and "Traceback" not in err
    argv = ["solve", "--layout", str(layout_file), "--terminal-reward", "G=2", "--discount", "0.9"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "grid world world.txt (3x4) (float32)" in out
    assert "terminal reward G 2" in out
    policy_lines = out.split("Policy:\n")[1].split("\n\n")[0].splitlines()
    assert policy_lines[0] == "> > > G" and policy_lines[1][2:] == "# ^ -"
    mdp = models.gridworld(
        LAYOUT, step_reward=-0.04, slip=0.2, discount=0.9, terminal_rewards={"G": 2.0}
    )
    sol = jaxmdp.solve(mdp)
    assert policy_lines == models.render_policy(LAYOUT, sol.policy).splitlines()


def test_layout_terminal_reward_negative_symbol_and_values(layout_file, capsys):
    argv = ["solve", "--layout", str(layout_file), "--terminal-reward", "G=1"]
    code, out, err = run([*argv, "--terminal-reward", "-=-5", "--format", "json"], capsys)
    assert code == 0, err
    doc = strict_json(out)
    assert doc["parameters"]["terminal[-]"] == -5.0 and doc["parameters"]["terminal[G]"] == 1.0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--terminal-reward", "X=1"], "no terminal cell 'X'"),
        (["--terminal-reward", "G"], "SYMBOL=VALUES"),
        (["--terminal-reward", "G=abc"], "--terminal-reward G"),
    ],
)
def test_layout_bad_terminal_rewards(layout_file, extra, message, capsys):
    code, _, err = run(["solve", "--layout", str(layout_file), *extra], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_layout_file_errors_name_the_option(tmp_path, capsys):
    code, _, err = run(["solve", "--layout", str(tmp_path / "missing.txt")], capsys)
    assert code == 2 and "--layout" in err and "missing.txt" in err
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("S..\n.+\n")
    code, _, err = run(["solve", "--layout", str(ragged)], capsys)
    assert code == 2 and "--layout" in err and "same width" in err


# -- Gymnasium environments --------------------------------------------------------------------


def test_frozenlake_json_for_scripts(capsys):
    pytest.importorskip("gymnasium")
    argv = ["solve", "--env", "FrozenLake-v1", "--env-kwargs", "is_slippery=false"]
    code, out, err = run([*argv, "--discount", "0.9", "--format", "json"], capsys)
    assert code == 0, err
    doc = strict_json(out)
    assert doc["model"] == "FrozenLake-v1" and doc["dtype"] == "float32"
    assert doc["status"] == "SUCCESS" and isinstance(doc["iterations"], int)
    assert len(doc["values"]) == 16 and len(doc["policy"]) == 16
    # Deterministic: the goal is 6 moves away, its reward comes on the 6th.
    assert doc["values"][0] == pytest.approx(0.9**5, abs=1e-5)
    assert isinstance(doc["error_bound"], float) and doc["error_bound"] < 1e-5
    # The same through a JSON object for the kwargs, and through the shortcut.
    code, out2, err = run(
        [
            "solve",
            "frozenlake",
            "--env-kwargs",
            '{"is_slippery": false}',
            "--discount",
            "0.9",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    assert strict_json(out2)["values"] == doc["values"]


def test_json_non_finite_numbers_are_strings(capsys):
    code, out, err = run(["solve", "--format", "json"], capsys)  # VI at discount 1
    assert code == 0, err
    assert strict_json(out)["error_bound"] == "inf"


def test_taxi_shortcut_resolves_to_the_registered_version(capsys):
    pytest.importorskip("gymnasium")
    code, out, err = run(["solve", "taxi", "--discount", "0.9"], capsys)
    assert code == 0, err
    assert out.startswith("Gymnasium Taxi-v") and "SUCCESS" in out
    assert "state  action" in out  # no grid: a table of states


def frozenlake_info(env_id="FrozenLake-v1", **kwargs):
    """What the `models` branch attaches to from_gymnasium's FrozenLake (Gymnasium's action
    order left, down, right, up; only holes and the goal absorbing)."""
    import gymnasium

    desc = gymnasium.make(env_id, **kwargs).unwrapped.desc
    rows = ["".join(c.decode() for c in row) for row in desc]
    layout = models.GridLayout(rows)
    terminal = tuple(s for s, (i, j) in enumerate(layout.cells) if rows[i][j] in "HG")
    return ModelInfo(
        name=env_id,
        action_names=("left", "down", "right", "up"),
        action_symbols="<v>^",
        layout=layout,
        terminal_states=terminal,
    )


@pytest.fixture
def frozenlake_with_info(monkeypatch):
    """`models.from_gymnasium` returning an MDP that carries its ModelInfo."""
    pytest.importorskip("gymnasium")
    real = models.from_gymnasium

    def with_info(env, discount, **kw):
        return real(env, discount, **kw)._replace(info=frozenlake_info(is_slippery=False))

    monkeypatch.setattr(models, "from_gymnasium", with_info)


def test_policy_drawn_with_the_models_own_symbols(frozenlake_with_info, capsys):
    argv = ["solve", "frozenlake", "--env-kwargs", "is_slippery=false", "--discount", "0.9"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    grid = out.split("Policy:\n")[1].split("\n\n")[0].splitlines()
    assert len(grid) == 4 and grid[1][2] == "H" and grid[3][6] == "G"
    cells = "".join(grid).replace(" ", "")
    assert set(cells) - set("HG") <= set("<v>^")  # start and 'F' cells get actions
    assert cells.count("H") == 4 and cells.count("G") == 1
    values = out.split("Values:\n")[1].splitlines()
    assert values[0].split()[0] == "0.590"  # 0.9^5, at the certified precision


def test_sweep_over_a_gymnasium_discount(frozenlake_with_info, capsys, tmp_path):
    argv = ["sweep", "frozenlake", "--env-kwargs", "is_slippery=false", "--discount", "0.5,0.9"]
    code, out, err = run([*argv, "--out", str(tmp_path / "o"), "--no-progress"], capsys)
    assert code == 0, err
    assert "2 MDPs solved (2 discount)" in out
    # A grid model (its info has a layout): the policies panel is drawn too.
    assert (tmp_path / "o" / "policies.png").is_file()
    code, out, err = run(
        [*argv, "--out", str(tmp_path / "j"), "--no-progress", "--no-plots", "--format", "json"],
        capsys,
    )
    assert code == 0, err
    doc = strict_json(out)
    assert doc["axes"] == {"discount": [0.5, 0.9]} and len(doc["rows"]) == 2
    assert doc["rows"][1]["values"][0] == pytest.approx(0.9**5, abs=1e-5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "--env", "FrozenLake-v1", "--step-reward", "-1"], "--step-reward"),
        (["sweep", "--env", "FrozenLake-v1", "--slip", "0.1"], "only parameter"),
        (["solve", "frozenlake", "--terminal-reward", "G=1"], "--discount"),
        (["solve", "--env", "Nope-v0"], "--env Nope-v0"),
        (["solve", "--env", "FrozenLake-v1", "--env-kwargs", "bogus=1"], "--env-kwargs"),
        (["solve", "--env", "FrozenLake-v1", "--env-kwargs", "map_name=9x9"], "9x9"),
        (["solve", "--env", "FrozenLake-v1", "--env-kwargs", "{bad json"], "--env-kwargs"),
        (["solve", "--env", "FrozenLake-v1", "--env-kwargs", "=1"], "key=value"),
        (["solve", "--env", "CartPole-v1"], "transition table"),
        (["solve", "--env-kwargs", "a=1"], "--env-kwargs"),
        (["solve", "--env", "FrozenLake-v1", "--layout", "x.txt"], "--layout and --env"),
        (["solve", "taxi", "--layout", "x.txt"], "taxi and --layout"),
        (["solve", "gridworld", "--env", "Taxi-v3"], "gridworld and --env"),
    ],
)
def test_model_errors_name_the_argument(argv, message, capsys):
    pytest.importorskip("gymnasium")
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- every solver and its options --------------------------------------------------------------

SOLVER_ARGS = {
    "vi": ["--tol", "1e-8", "--rule", "sup"],
    "pi": ["--initial-sweeps", "0"],
    "mpi": ["--eval-sweeps", "5", "--tol", "1e-8"],
    "gs": ["--tol", "1e-8"],
    "anderson": ["--memory", "3", "--tol", "1e-8"],
    "lp": [],
}


@pytest.fixture(scope="module")
def lecture_optimum():
    with __import__("jax").enable_x64(True):
        mdp = models.gridworld(step_reward=-0.04, slip=0.2, discount=0.9)
        P, R = np.asarray(mdp.transitions), np.asarray(mdp.rewards)
    return ref.policy_iteration(P, R, 0.9)[0]


@pytest.mark.parametrize("name", SOLVER_ARGS)
def test_every_exact_solver_with_its_options(name, lecture_optimum, capsys):
    argv = ["solve", "--discount", "0.9", "--x64", "--solver", name, *SOLVER_ARGS[name]]
    code, out, err = run([*argv, "--format", "json"], capsys)
    assert code == 0, err
    doc = strict_json(out)
    assert doc["status"] == "SUCCESS" and doc["dtype"] == "float64"
    for flag, value in zip(SOLVER_ARGS[name][::2], SOLVER_ARGS[name][1::2], strict=True):
        key = flag[2:].replace("-", "_")  # the option reached the solver
        shown = re.search(rf"{key}=([^,)]+)", doc["solver"]).group(1)
        assert ast.literal_eval(shown) == (ast.literal_eval(value) if value[0].isdigit() else value)
    err_v = np.abs(np.array(doc["values"]) - lecture_optimum).max()
    assert err_v <= doc["error_bound"] + 1e-12


def test_soft_and_relative_value_iteration(capsys):
    code, out, err = run(
        [
            "solve",
            "--discount",
            "0.9",
            "--solver",
            "soft",
            "--temperature",
            "0.01",
            "--tol",
            "1e-4",
        ],
        capsys,
    )
    assert code == 0, err
    assert "SoftValueIteration(temperature=0.01" in out and "SUCCESS" in out
    code, out, err = run(["solve", "--solver", "rvi", "--tau", "0.9"], capsys)
    assert code == 0, err
    assert "(ignored: average reward)" in out.splitlines()[0]
    assert "gain 0 (error bound" in out and "Bias (relative values):" in out
    code, out, err = run(["solve", "--solver", "rvi", "--format", "json"], capsys)
    assert code == 0, err
    doc = strict_json(out)
    assert abs(doc["gain"]) <= doc["error_bound"] and doc["values_are"].startswith("bias")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["solve", "--solver", "vi", "--memory", "3"], "--memory does not apply to --solver vi"),
        (["solve", "--solver", "pi", "--tol", "1e-3"], "--tol does not apply to --solver pi"),
        (["solve", "--solver", "gs", "--rule", "sup"], "its options: --tol"),
        (["solve", "--solver", "lp", "--max-iters", "5"], "--max-iters does not apply"),
        (["solve", "--solver", "lp"], "--discount below 1"),
        (["solve", "--solver", "anderson", "--memory", "0"], "argument --memory"),
        (["solve", "--solver", "soft", "--temperature", "-1"], "argument --temperature"),
        (["solve", "--solver", "rvi", "--tau", "1.5"], "argument --tau"),
        (["solve", "--solver", "mpi", "--eval-sweeps", "x"], "argument --eval-sweeps"),
        (["sweep", "--solver", "lp"], "invalid choice"),
        (["sweep", "--solver", "rvi", "--discount", "0.9,1"], "rvi ignores the discount"),
    ],
)
def test_solver_option_errors(argv, message, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1


# -- sweep axes the model exposes --------------------------------------------------------------


def test_sweep_axes_of_a_layout_include_terminal_rewards(layout_file, capsys, tmp_path):
    argv = ["sweep", "--layout", str(layout_file), "--terminal-reward", "G=0.5:1:3"]
    argv += ["--step-reward", "-0.1", "--discount", "0.9", "--slip", "0,0.2"]
    code, out, err = run(
        [*argv, "--out", str(tmp_path / "o"), "--no-plots", "--no-progress", "--format", "json"],
        capsys,
    )
    assert code == 0, err
    doc = strict_json(out)
    assert list(doc["axes"]) == ["step_reward", "discount", "slip", "terminal[G]"]
    assert doc["members"] == 6 and doc["fixed"] == {}
    row = doc["rows"][-1]
    assert row["terminal[G]"] == 1.0 and row["slip"] == 0.2
    mdp = models.gridworld(
        LAYOUT, step_reward=-0.1, slip=0.2, discount=0.9, terminal_rewards={"G": 1.0}
    )
    np.testing.assert_allclose(row["values"], jaxmdp.solve(mdp).values, atol=1e-5)
