"""Every example runs to completion as a script (in a subprocess, as a user would run it).

To add an example: one entry in `EXAMPLES`, file name -> a string its output must contain.
"""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent.parent / "examples"

EXAMPLES = {
    "reward_gradients.py": "expected moves",
    "maxent_irl.py": "correlation with the true rewards",
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / name)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=EXAMPLES_DIR.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert EXAMPLES[name] in proc.stdout, proc.stdout[-3000:]
