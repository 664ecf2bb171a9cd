"""The `jaxmdp` command line: solve or sweep any model, run the package's own benchmarks.

    jaxmdp solve [MODEL] [--layout FILE | --env ID [--env-kwargs ...]] [parameters]
                 [--solver vi|pi|mpi|gs|anderson|soft|rvi|lp [options]] [--format text|json]
    jaxmdp sweep [MODEL] ... [parameters as ranges] [--out DIR]
    jaxmdp sweep                      # the README's main job: the lecture world's phase diagram
    jaxmdp bench --out FILE [args]    # benchmarks/run.py of jaxmdp's own source checkout

Models: `gridworld` (Russell & Norvig's 4x3 world, default), an ASCII layout file
(`--layout FILE`, format of `jaxmdp.models.gridworld`), or a Gymnasium toy-text environment
(`--env FrozenLake-v1 --env-kwargs is_slippery=false`, or the shortcuts `frozenlake`,
`frozenlake8x8`, `cliffwalking`, `taxi`). Parameters: a value `x`, a list `a,b,c`, or
`start:stop:num` (like `numpy.linspace`); a sweep's axes are the parameters the model has
(grid worlds: step reward, discount, slip, terminal rewards; Gymnasium: discount).

Computations run in JAX's default float32, like the library; `--x64` switches to float64.
The header says which. Bad arguments: one line on stderr, exit 2. `--format json` prints one
JSON document on stdout (non-finite numbers as the strings "inf", "-inf", "nan").
"""

from jaxmdp.cli._args import parse_values as parse_values
from jaxmdp.cli._main import main as main

__all__ = ("main", "parse_values")
