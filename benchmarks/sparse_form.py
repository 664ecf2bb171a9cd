"""Dense or sparse for small grid worlds: the measurement behind `jaxmdp.models._form`.

`python -m benchmarks.sparse_form [--sides 4,8,12,16,24]`

For open n x n grid worlds (slip 0.2, discount 0.95, float32), one value-iteration and one
policy-iteration solve in each form, A/B in this process: median and spread of 7 timed
calls after a warm-up call (which compiles). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _time(fn, reps: int = 7) -> tuple[float, float, float]:
    import jax

    jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(np.min(times)), float(np.max(times))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sparse_form", description=__doc__)
    p.add_argument("--sides", default="4,8,12,16,24")
    args = p.parse_args(argv)
    import jax

    jax.config.update("jax_platforms", "cpu")
    import jaxmdp
    from jaxmdp.models import gridworld

    print("| S | solver | dense ms (min-max) | sparse ms (min-max) | dense / sparse |")
    print("|---|---|---|---|---|")
    for n in [int(x) for x in args.sides.split(",")]:
        layout = "\n".join(["S" + "." * (n - 1)] + ["." * n] * (n - 2) + ["." * (n - 1) + "+"])
        kw = dict(step_reward=-0.04, slip=0.2, discount=0.95)
        forms = {f: gridworld(layout, form=f, **kw) for f in ("dense", "sparse")}
        for solver in (jaxmdp.ValueIteration(tol=1e-4), jaxmdp.PolicyIteration()):
            t = {
                f: _time(lambda m=m, s=solver: jaxmdp.solve(m, s).values) for f, m in forms.items()
            }
            d, s = t["dense"], t["sparse"]
            print(
                f"| {n * n} | {type(solver).__name__} | {1e3 * d[0]:.2f} ({1e3 * d[1]:.2f}-"
                f"{1e3 * d[2]:.2f}) | {1e3 * s[0]:.2f} ({1e3 * s[1]:.2f}-{1e3 * s[2]:.2f}) | "
                f"{d[0] / s[0]:.2f} |",
                flush=True,
            )
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
