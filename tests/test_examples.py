"""Every examples/*.py runs to completion as a script (in a subprocess, as a user would run it).

The folder is globbed, so a new example is tested without touching this file. Optionally add
one entry to `EXPECTED` (file name -> a string its output must contain).
"""

import os
import pathlib
import subprocess
import sys

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


def test_examples_are_found():
    assert set(EXPECTED) <= set(EXAMPLES), set(EXPECTED) - set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / name)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=EXAMPLES_DIR.parent,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert EXPECTED.get(name, "") in proc.stdout, proc.stdout[-3000:]
