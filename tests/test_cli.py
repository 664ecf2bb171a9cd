"""The `jaxmdp` command line: solve, sweep (the README's main job), bad arguments, dtype,
pipes, output folders. Models and solvers: test_cli_models.py; bench: test_bench_safety.py. The
bare `jaxmdp sweep` (console script, plots, progress bar) runs as the README line in
test_readme.py, which checks what it prints and writes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from jaxmdp.cli import main, parse_values


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own exits (usage errors, --help)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_prints_policy_arrows_and_values(capsys):
    code, out, err = run(["solve", "gridworld", "--step-reward", "-0.04", "--slip", "0.2"], capsys)
    assert code == 0, err
    assert "SUCCESS" in out
    assert "> > > +\n^ # ^ -\n^ < < <" in out  # Russell & Norvig's policy for -0.04
    assert "0.852 0.908 0.958 0.000" in out  # their utilities minus the step reward


def test_solve_other_solver_and_plot(capsys, tmp_path):
    png = tmp_path / "grid.png"
    argv = ["solve", "--step-reward", "-2", "--discount", "0.9", "--solver", "pi"]
    code, out, err = run([*argv, "--plot", str(png)], capsys)
    assert code == 0, err
    assert "PolicyIteration" in out and png.stat().st_size > 5000


def test_solve_reports_failure_with_exit_1(capsys):
    argv = ["solve", "--step-reward", "0.1", "--discount", "1", "--max-iters", "50"]
    code, out, _ = run(argv, capsys)
    assert code == 1
    assert "MAX_ITERATIONS" in out or "UNBOUNDED" in out or "NONFINITE" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["solve", "--step-reward", "abc"],
        ["solve", "--step-reward", "-1,-2"],
        ["solve", "--discount", "1.5"],
        ["solve", "--slip", "-0.1"],
        ["solve", "--tol", "0"],
        ["solve", "--solver", "pi", "--tol", "1e-3"],
        ["solve", "--solver", "xx"],
        ["solve", "--max-iters", "0"],
        ["solve", "--max-iters", "99999999999"],
        ["solve", "--max-iters", "1e3"],
        ["solve", "--tol", "nan"],
        ["solve", "--tol", "inf"],
        ["solve", "--x64", "--float32"],
        ["solve", "--format", "yaml"],
        ["sweep", "--chunk-size", "99999999999"],
        ["sweep", "--step-reward", "0:1:100000000"],
        ["solve", "nosuchmodel"],
        ["sweep", "--step-reward", "0:1"],
        ["sweep", "--discount", "0.9:1:0"],
        ["sweep", "--discount", "nan"],
        ["sweep", "--chunk-size", "0"],
        ["sweep", "--bogus"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_one_line_exit_2(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("jaxmdp") and "error" in err


def test_parse_values():
    assert parse_values("-2:0:5", "x").tolist() == [-2.0, -1.5, -1.0, -0.5, 0.0]
    assert parse_values("0.1,0.2", "x").tolist() == [0.1, 0.2]
    assert parse_values("1", "x").tolist() == [1.0]


def test_sweep_writes_table_plots_and_summary(capsys, tmp_path):
    out_dir = tmp_path / "out"
    argv = ["sweep", "gridworld", "--step-reward", "-2:0:21", "--discount", "0.9:1:3"]
    code, out, err = run([*argv, "--out", str(out_dir), "--no-progress"], capsys)
    assert code == 0, err
    assert "63 MDPs solved (21 step_reward x 3 discount)" in out
    assert "distinct optimal policies" in out and "Along step_reward" in out
    assert "discount=1:" in out  # change points listed per discount
    for name in (
        "sweep.csv",
        "sweep.npz",
        "summary.txt",
        "phase_diagram.png",
        "policies.png",
        "convergence.png",
    ):
        assert (out_dir / name).stat().st_size > 1000, name
    with open(out_dir / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 63 and rows[0]["status_name"] == "SUCCESS"
    assert {"step_reward", "discount", "policy", "value_0"} <= set(rows[0])


def test_sweep_with_slip_axis(capsys, tmp_path):
    argv = ["sweep", "--step-reward", "-1,-0.04", "--discount", "1", "--slip", "0,0.2"]
    code, out, err = run([*argv, "--out", str(tmp_path), "--no-plots", "--no-progress"], capsys)
    assert code == 0, err
    assert "4 MDPs solved (2 step_reward x 1 discount x 2 slip)" in out


def test_float32_by_default_like_the_library_and_x64_on_request(capsys):
    code, out, err = run(["solve", "--discount", "0.9"], capsys)
    assert code == 0, err
    assert "(float32)" in out.splitlines()[0]
    code, out, err = run(["solve", "--discount", "0.9", "--x64", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["dtype"] == "float64"


def test_default_sweep_agrees_with_the_readme_python_sweep(capsys, tmp_path):
    """Same dtype, same grid, same number of distinct policies as README's Python sweep."""
    import numpy as np

    import jaxmdp
    from jaxmdp import models

    argv = ["sweep", "--out", str(tmp_path / "o"), "--no-plots", "--no-progress"]
    code, out, err = run([*argv, "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    result = jaxmdp.sweep(
        lambda step_reward, discount: models.gridworld(
            step_reward=step_reward, slip=0.2, discount=discount
        ),
        step_reward=np.linspace(-2, 0, 201),
        discount=np.linspace(0.9, 1, 11),
    )
    assert doc["dtype"] == "float32" and doc["members"] == 2211
    assert doc["distinct_policies"] == len(result.distinct_policies()[1])
    assert [r["policy"] for r in doc["rows"]] == result.policy.reshape(2211, -1).tolist()


def test_output_closed_early_ends_quietly_and_keeps_the_results(tmp_path):
    """`jaxmdp sweep | head -1`: the reader goes away after the header (flushed before the
    solve); the rest of the output meets a closed pipe. Exit 0, nothing on stderr, and the
    results are written all the same."""
    out_dir = tmp_path / "out"
    cmd = [sys.executable, "-m", "jaxmdp", "sweep", "--step-reward", "-1,0", "--discount", "0.9"]
    cmd += ["--no-plots", "--no-progress", "--out", str(out_dir)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert b"Sweeping" in proc.stdout.readline()
    proc.stdout.close()  # like `head -1` exiting
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert err == b""
    assert (out_dir / "sweep.npz").is_file() and (out_dir / "summary.txt").is_file()


def test_out_folder_is_checked_before_solving(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, out, err = run(["sweep", "--out", str(blocker / "sub"), "--no-progress"], capsys)
    assert code == 2 and "--out" in err and "Sweeping" not in out and "Traceback" not in err
    code, out, err = run(["sweep", "--out", str(blocker), "--no-progress"], capsys)
    assert code == 2 and "not a directory" in err and "Sweeping" not in out


def test_out_folder_is_replaced_as_a_whole_and_never_a_foreign_one(capsys, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    small = ["--step-reward", "-1,-0.5", "--discount", "0.9", "--no-progress"]
    code, _, err = run(["sweep", *small, "--out", str(out_dir)], capsys)
    assert code == 0, err
    first = set(os.listdir(out_dir))
    marker = ".jaxmdp-result-set"  # jaxmdp._io.MARKER: a folder jaxmdp wrote
    assert {"sweep.npz", "sweep.csv", "summary.txt", "convergence.png", marker} <= first
    # A second run replaces the whole set (no plots now: the old plots must not linger).
    code, _, err = run(["sweep", *small, "--no-plots", "--out", str(out_dir)], capsys)
    assert code == 0, err
    assert set(os.listdir(out_dir)) == {"sweep.npz", "sweep.csv", "summary.txt", marker}
    assert not [p for p in os.listdir(tmp_path) if p != "out"]  # no staging left behind
    # A folder with someone else's files is never replaced.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    code, out, err = run(["sweep", *small, "--out", str(mine)], capsys)
    assert code == 2 and "thesis.tex" in err and "Sweeping" not in out
    assert (mine / "thesis.tex").read_text() == "precious"
    # Nor the current directory (or one containing it).
    monkeypatch.chdir(out_dir)
    code, _, err = run(["sweep", *small, "--out", "."], capsys)
    assert code == 2 and "current directory" in err


def test_plot_target_checked_before_solving(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run(["solve", "--plot", str(blocker / "x.png")], capsys)
    assert code == 2 and "--plot" in err and "SUCCESS" not in out
