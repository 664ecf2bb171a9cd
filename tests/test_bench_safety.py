"""`jaxmdp bench` runs only the benchmarks of jaxmdp's own checkout and writes only to --out.

Each test stands in a temporary directory holding a crafted `benchmarks/run.py` (and
`benchmarks/__init__.py`) that would leave a marker file if it were ever imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import jaxmdp

ROOT = Path(jaxmdp.__file__).resolve().parents[1]
CRAFTED = """
from pathlib import Path
Path(__file__).resolve().parents[1].joinpath("FOREIGN_CODE_RAN").write_text("oops")
def main(argv=None):
    return 0
"""


@pytest.fixture
def trap(tmp_path) -> Path:
    """A working directory with a crafted `benchmarks` package."""
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "__init__.py").write_text(CRAFTED)
    (bench / "run.py").write_text(CRAFTED)
    return tmp_path


def jaxmdp_cli(args, cwd, pythonpath=None, timeout=120):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    # `python -m jaxmdp` puts the cwd first on sys.path, the worst case for the CLI itself.
    return subprocess.run(
        [sys.executable, "-m", "jaxmdp", "bench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def results_snapshot() -> set[str]:
    results = ROOT / "benchmarks" / "results"
    return {p.name for p in results.iterdir()} if results.is_dir() else set()


# One interpreter for several `jaxmdp bench` calls that fail or stop early (each would
# start Python and JAX again): `python -c` also puts the cwd first on sys.path. A marker line
# on both streams opens each call's output; the bench's own child (`--help`) writes to the
# same streams, in order.
CALLS = """
import json, sys
from jaxmdp.cli import main

for args in json.loads(sys.argv[1]):
    print("--- call ---", flush=True)
    print("--- call ---", file=sys.stderr, flush=True)
    try:
        code = main(["bench", *args])
    except SystemExit as e:  # argparse's own exits
        code = e.code
    sys.stderr.flush()
    print("--- exit", code, flush=True)
"""


@pytest.fixture(scope="module")
def early_calls(tmp_path_factory):
    """{name: CompletedProcess} of three calls in one interpreter standing in one trap
    directory, and whether the source tree's results folder stayed as it was."""
    trap = tmp_path_factory.mktemp("trap")
    bench = trap / "benchmarks"
    bench.mkdir()
    (bench / "__init__.py").write_text(CRAFTED)
    (bench / "run.py").write_text(CRAFTED)
    (trap / "file").write_text("")
    calls = {
        "help": ["--help"],
        "no out": ["--quick"],
        "unwritable out": ["--quick", "--out", str(trap / "file" / "r.json")],
    }
    before = results_snapshot()
    proc = subprocess.run(
        [sys.executable, "-c", CALLS, json.dumps(list(calls.values()))],
        cwd=trap,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outs = proc.stdout.split("--- call ---\n")[1:]
    errs = proc.stderr.split("--- call ---\n")[1:]
    assert len(outs) == len(errs) == len(calls), (proc.stdout[-3000:], proc.stderr[-3000:])
    done = {}
    for name, out, err in zip(calls, outs, errs, strict=True):
        out, _, code = out.rstrip("\n").rpartition("--- exit ")
        done[name] = subprocess.CompletedProcess(calls[name], int(code), out, err)
    assert not (trap / "FOREIGN_CODE_RAN").exists()
    return done, results_snapshot() == before


def test_runs_the_checkouts_benchmarks_not_the_cwds(early_calls):
    proc = early_calls[0]["help"]
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout  # the real benchmarks/run.py's help


def test_a_run_needs_out_and_writes_nowhere_else(early_calls):
    proc = early_calls[0]["no out"]
    assert proc.returncode == 2
    assert "--out" in proc.stderr and "Traceback" not in proc.stderr
    assert early_calls[1]  # nothing written into the source tree


def test_unwritable_out_is_refused_before_running(early_calls):
    proc = early_calls[0]["unwritable out"]
    assert proc.returncode == 2 and "--out" in proc.stderr


def test_an_installation_without_the_checkout_is_refused(trap, tmp_path_factory):
    """The package alone (as a wheel installs it): no benchmarks beside it."""
    site = tmp_path_factory.mktemp("site-packages")
    shutil.copytree(ROOT / "jaxmdp", site / "jaxmdp", ignore=shutil.ignore_patterns("__pycache__"))
    proc = jaxmdp_cli(["--out", str(trap / "r.json")], cwd=trap, pythonpath=site)
    assert proc.returncode == 2, proc.stderr
    assert "source checkout" in proc.stderr and str(site / "jaxmdp") in proc.stderr
    assert not (trap / "FOREIGN_CODE_RAN").exists()
    # Even a checkout-looking folder beside it that is not jaxmdp's is not used.
    shutil.copytree(trap / "benchmarks", site / "benchmarks")
    (site / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    proc = jaxmdp_cli(["--help"], cwd=trap, pythonpath=site)
    assert proc.returncode == 2 and "source checkout" in proc.stderr
    assert not (site / "FOREIGN_CODE_RAN").exists()


def test_in_process_call_names_the_problem(monkeypatch, tmp_path, capsys):
    """`main(["bench"])` in a process whose jaxmdp has no checkout: one line, exit 2."""
    from jaxmdp.cli import _bench, main

    fake = tmp_path / "site" / "jaxmdp"
    fake.mkdir(parents=True)
    monkeypatch.setattr(jaxmdp, "__file__", str(fake / "__init__.py"))
    assert main(["bench", "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxmdp: error:") and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="source checkout"):
        _bench.checkout_root()


def test_a_real_run_writes_only_where_out_says(trap):
    """The checkout's benchmarks/run.py, for real (one workload, NumPy rows only), with a
    relative --out: the user's directory, not the source tree."""
    before = results_snapshot()
    args = [
        "--quick",
        "--workloads",
        "W1",
        "--skip",
        "peers,torch,jaxmdp,kernels,scaling,acceleration",
    ]
    proc = jaxmdp_cli([*args, "--out", "report/r.json"], cwd=trap)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(trap / "report")) == ["r.json", "r.md"]
    assert '"W1"' in (trap / "report" / "r.json").read_text()
    assert not (trap / "FOREIGN_CODE_RAN").exists()
    assert results_snapshot() == before
