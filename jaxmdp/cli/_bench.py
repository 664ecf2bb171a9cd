"""`jaxmdp bench`: the benchmarks of jaxmdp's own source checkout, and nothing else.

The benchmarks are not part of the wheel; they live beside the package in its repository
(`<checkout>/benchmarks`). The checkout is found from `jaxmdp.__file__` (an editable install
or a source tree on `PYTHONPATH`), never from the current directory: a `benchmarks/run.py`
wherever the user stands is never imported. They run in a child interpreter whose import
path starts with the checkout and holds neither the current directory nor `''`. Results go
only where `--out` says (the JSON, and the `.md` beside it), never into the source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jaxmdp.cli._args import CliError

# Run in the child: `python -c` puts '' (the current directory) first on sys.path; replace it
# by the checkout and drop any other entry that is the current directory.
_BOOT = """
import os, runpy, sys
root = sys.argv[1]
cwd = os.getcwd()
sys.path[:] = [root] + [p for p in sys.path[1:] if p and os.path.abspath(p) != cwd]
sys.argv = ["jaxmdp bench", *sys.argv[2:]]
runpy.run_module("benchmarks.run", run_name="__main__", alter_sys=True)
"""
_PROJECT = 'name = "jaxmdp-solver"'


def checkout_root() -> Path:
    """The source checkout the imported `jaxmdp` package belongs to.

    Raises:
      CliError: the package was installed without its repository (a wheel).
    """
    import jaxmdp

    package = Path(jaxmdp.__file__).resolve().parent
    root = package.parent
    bench = root / "benchmarks"
    try:
        own = _PROJECT in (root / "pyproject.toml").read_text()
    except OSError:
        own = False
    if not (own and (bench / "run.py").is_file() and (bench / "__init__.py").is_file()):
        raise CliError(
            f"`jaxmdp bench` runs the benchmarks of jaxmdp's own source checkout, and this "
            f"installation ({package}) has none (the wheel ships the library only). Clone "
            "the repository, `pip install -e .` there, and run `jaxmdp bench --out FILE`."
        )
    return root


def _out_argument(argv: list[str]) -> str | None:
    for k, token in enumerate(argv):
        if token == "--out":
            if k + 1 >= len(argv):
                raise CliError("--out: expected a file name (the JSON report)")
            return argv[k + 1]
        if token.startswith("--out="):
            return token.split("=", 1)[1]
    return None


def cmd_bench(argv: list[str]) -> int:
    root = checkout_root()
    if not {"-h", "--help"} & set(argv):
        out = _out_argument(argv)
        if out is None:
            raise CliError(
                "jaxmdp bench needs --out FILE: where to write the JSON report (and the .md "
                "beside it); it writes nowhere else"
            )
        from jaxmdp._io import check_writable

        try:
            path = check_writable(out, what="benchmark report")
            check_writable(path.with_suffix(".md"), what="benchmark report")
        except OSError as e:
            raise CliError(f"--out: {e}") from None
    env = {**os.environ}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run([sys.executable, "-c", _BOOT, str(root), *argv], env=env)
    return proc.returncode
