"""Every fenced code block of README.md runs as written.

- ```python blocks: executed in order, in one namespace, in a fresh interpreter (float32,
  JAX's default; in a temporary working directory, so files they write land there).
- ```bash blocks: each line is a shell command run in a temporary directory. Lines of the
  form `pip install -e ".[extras]" && COMMAND` are not installed again (this test runs in the
  installed environment): the extras must exist in pyproject.toml, and COMMAND runs, except
  the test command itself, which must be exactly the one `.ci/run` runs (running it here
  would recurse).

A block in any other language fails the test: add it here first.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.M | re.S)
BLOCKS = [(m.group(1), m.group(2)) for m in FENCE.finditer(README)]
PIP = re.compile(r'^pip install -e "\.\[([\w,-]+)\]" && (.+)$')


def _bash_lines():
    lines = []
    for lang, body in BLOCKS:
        if lang == "bash":
            lines += [ln.strip() for ln in body.splitlines() if ln.strip()]
    return lines


def _env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env.update(JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    # The console script of this interpreter's environment, first on PATH: another `jaxmdp`
    # found earlier on PATH (a global or older install, a pyenv shim) would be tested instead.
    bin_dir = Path(sys.executable).parent
    if shutil.which("jaxmdp", path=str(bin_dir)) is None:  # not installed as a console script
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "jaxmdp"
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m jaxmdp "$@"\n')
        shim.chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_every_block_is_python_or_bash():
    assert BLOCKS, "no code blocks found"
    assert {lang for lang, _ in BLOCKS} <= {"python", "bash"}, [lang for lang, _ in BLOCKS]
    assert sum(lang == "python" for lang, _ in BLOCKS) >= 2


def test_python_blocks_run_in_order(tmp_path):
    code = "\n\n".join(body for lang, body in BLOCKS if lang == "python")
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(1000, 20)" in proc.stdout  # the batch's shape, as its comment says
    assert "> > > +\n^ # ^ -\n^ < < <" in proc.stdout  # the lecture world's policy
    assert (tmp_path / "out" / "sweep.npz").exists() and (tmp_path / "out" / "sweep.csv").exists()


def _extras():
    """The extras declared in pyproject.toml (parsed by hand: a few lines)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*=", section, re.M))


def _ci_commands():
    return [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]


@pytest.mark.parametrize("line", _bash_lines())
def test_bash_line_runs(line, tmp_path):
    m = PIP.match(line)
    if m:
        extras = m.group(1).split(",")
        declared = _extras()
        assert set(extras) <= set(declared), set(extras) - set(declared)
        line = m.group(2)
        if "pytest" in line:
            ci = _ci_commands()
            assert line in ci, f"README's test command {line!r} is not what .ci/run runs"
            assert f'python -m pip install -e ".[{m.group(1)}]"' in ci
            return
    proc = subprocess.run(
        line,
        shell=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (line, proc.stdout[-2000:], proc.stderr[-3000:])
    if line == "jaxmdp sweep":  # the main job, bare (console script): what it promises
        assert "2211 MDPs solved (201 step_reward x 11 discount)" in proc.stdout
        assert "All members converged" in proc.stdout
        assert "2211/2211" in proc.stderr  # the progress bar (the progress extra)
        out = tmp_path / "jaxmdp-sweep"
        assert {p.name for p in out.iterdir()} >= {"sweep.csv", "sweep.npz", "phase_diagram.png"}
