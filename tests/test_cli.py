"""The `jaxmdp` command line: solve, sweep (the README's main job), bench, bad arguments."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import types

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


def test_bare_sweep_is_the_main_job(tmp_path):
    """`jaxmdp sweep` with no arguments, as the README runs it (console script)."""
    exe = shutil.which("jaxmdp")
    cmd = [exe, "sweep"] if exe else [sys.executable, "-m", "jaxmdp", "sweep"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2211 MDPs solved (201 step_reward x 11 discount)" in proc.stdout
    assert "All members converged" in proc.stdout
    assert "2211/2211" in proc.stderr  # the progress bar
    out = tmp_path / "jaxmdp-sweep"
    assert {p.name for p in out.iterdir()} >= {"sweep.csv", "sweep.npz", "phase_diagram.png"}


def test_bench_forwards_to_benchmarks_run(capsys, monkeypatch):
    seen = []
    fake = types.ModuleType("benchmarks.run")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "benchmarks.run", fake)
    assert main(["bench", "--quick", "--only", "W1"]) == 0
    assert seen == [["--quick", "--only", "W1"]]


def test_bench_without_a_checkout_says_how(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "benchmarks.run", None)  # import fails
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["bench"], capsys)
    assert code == 2 and "benchmarks/run.py" in err and "Traceback" not in err
