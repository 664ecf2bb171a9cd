"""Every examples/*.py runs to completion as a script (`__main__`, its own argv, stdout and
stderr), all of them in one subprocess started as a user would start Python.

One interpreter for the seven scripts instead of seven: each start of Python with JAX, NumPy
and matplotlib costs about a second of CPU before the script's own work, and the scripts
share compiled programs (the lecture world's); measured below in DECISIONS 23. Between two
scripts the driver restores what a fresh interpreter has: JAX's default dtype (three
scripts enable float64 for themselves), the working directory, `sys.argv`, and no open
figures. A script that raises or exits with a non-zero status fails its own test, with its
traceback.

The folder is globbed, so a new example is tested without touching this file. Optionally add
one entry to `EXPECTED` (file name -> a string its output must contain).
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "reward_gradients.py": "expected moves",
    "maxent_irl.py": "correlation with the true rewards",
    "lecture_step_reward.py": "threshold in (-0.0850, -0.0849)",
    "discount_sweep.py": "WWWWW",
    "random_ensemble.py": "within their error bounds of V*: True",
    "frozenlake.py": "from the start: 0.8235",
}

EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("*.py"))

# Runs each script named on the command line as `__main__`, in a fresh namespace, and
# prints one JSON line per script: its exit status, stdout and stderr (traceback included).
DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, os, runpy, sys, traceback

    import jax
    import matplotlib.pyplot as plt

    cwd, argv = os.getcwd(), list(sys.argv)
    report = {}
    for path in sys.argv[1:]:
        jax.config.update("jax_enable_x64", False)  # a fresh interpreter's default
        os.chdir(cwd)
        sys.argv = [path]
        out, err, status = io.StringIO(), io.StringIO(), 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(path, run_name="__main__")
            except SystemExit as e:
                status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
                status = 1
        plt.close("all")
        report[os.path.basename(path)] = [status, out.getvalue(), err.getvalue()]
    sys.argv = argv
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def runs():
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *(str(EXAMPLES_DIR / name) for name in EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=EXAMPLES_DIR.parent,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_examples_are_found():
    assert set(EXPECTED) <= set(EXAMPLES), set(EXPECTED) - set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, runs):
    status, out, err = runs[name]
    assert status == 0, err[-3000:]
    assert EXPECTED.get(name, "") in out, out[-3000:]
