"""The benchmark suite runs end to end in --quick mode and every answer meets its promise.

No timing asserts (timings belong in the benchmark report, never in pass/fail tests): this
checks that every workload produces rows, no implementation fails, and every implementation's
values are within its promised distance of the float64 V*.

The harness runs as `python -m benchmarks.run --quick` does, at smaller sizes still (`TINY`:
the quick workloads, kernels and scaling points shrunk in place before `main` runs), which
keep every row kind of the quick run and cost a third less; and at its fewest repetitions
(no timing budgets: 17.6 -> 14.5 CPU-s, A/B alternating twice at load 4-7). A renamed size
table fails here loudly (`KeyError`), never silently at full size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = textwrap.dedent(
    """
    import sys
    from benchmarks import kernels, workloads

    sizes = workloads.SIZES["quick"]
    for name, size in dict(
        W1={"n_steps": 20},
        W2={"B": 32, "S": 16, "A": 4},
        W3={"S": 64, "A": 4},
        W4={"n_gamma": 4, "n_grid": 2, "S": 16, "A": 4},
        W1M={"n_steps": 8, "n_gamma": 4},
    ).items():
        sizes[name]  # KeyError if the workload is gone
        sizes[name] = size
    shapes = kernels.KERNEL_SHAPES["quick"]
    shapes["independent P"], shapes["shared P"] = (16, 16, 4), (32, 16, 4)
    scaling = kernels.SCALING["quick"]
    scaling["B"], scaling["S"] = ([16], {"S": 16, "A": 4}), ([16], {"B": 16, "A": 4})

    # Timing budgets spin the CPU without proving more: the minimum repetitions (5 per row,
    # 7 per acceleration row, the peers' 4 MDPs per loop), one memory size, two alternations
    # of the sweep rows (run.py's `--quick` values otherwise).
    import dataclasses
    from benchmarks import _harness, acceleration, limits, sweep_w1m

    quick_config = _harness.Config.make
    _harness.Config.make = lambda quick, device: dataclasses.replace(
        quick_config(quick, device), rep_budget_s=0.0, peer_budget_s=0.0, pause_s=0.0
    )
    limits.HOST_SIZES_MIB_QUICK = (1,)
    sweep_w1m.REPS = 2
    quick_acceleration = acceleration.run
    acceleration.run = lambda **kw: quick_acceleration(**{**kw, "budget_s": 0.0})

    from benchmarks.run import main

    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.slow
def test_quick_benchmark_run(tmp_path):
    out = tmp_path / "quick.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            TINY,
            "--quick",
            "--workloads",
            "W1,W2,W3,W4,W1M",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(out.read_text())
    assert out.with_suffix(".md").exists()
    assert res["machine"]["device"]
    assert res["limits"]["host"]["gemm_gflops"] > 0

    rows = res["rows"]
    for name in ("W1", "W2", "W3", "W4", "W1M"):
        measured = [r for r in rows if r["workload"] == name and not r["skipped"]]
        assert measured, f"no measured rows for {name}"
        assert any(r["family"] == "numpy" for r in measured), name
        assert res["workloads"][name]["reference"]["bellman_residual"] < 1e-9

    failed = [(r["workload"], r["impl"], r["failed"]) for r in rows if r["failed"]]
    assert not failed, failed
    for r in rows:
        if r["skipped"]:
            continue
        where = (r["workload"], r["impl"], r["stop"])
        assert r["max_abs_err"] is not None and r["mdps_checked"] > 0, where
        assert r["err_ok"], (*where, r["max_abs_err"], r["promise"])
        # A solve slower than the harness's long-solve limit (on a loaded machine, even a
        # quick one) is reported as its one full run instead of repetitions.
        assert r["median_s"] > 0, where
        assert r["n_reps"] >= 5 or (r["n_reps"] == 1 and r["how"].startswith("1 full run")), where

    # Every jaxmdp VI row was also timed alternately with its workload's best hand-written
    # row of the same rule (`benchmarks/paired.py`).
    for name in ("W1", "W1M"):
        vi = [r for r in rows if r["workload"] == name and r["impl"] == "jaxmdp VI"]
        assert vi and all(r["paired_n"] >= 3 and r["paired_ratio"] > 0 for r in vi), name
        assert all(r["paired_with"].startswith(("numpy", "torch")) for r in vi), name

    # W1M end to end (jaxmdp.sweep vs the bare solve) and the GPU targets' checker, dry run
    # on the CPU (benchmarks/gpu_check.sh runs them on a GPU).
    assert [r["what"] for r in res["sweep"]][:2] == [
        "solve (bare)",
        "sweep (build, solve, assemble)",
    ]
    assert all(r["status_equal"] and r["max_abs_diff_sweep_vs_solve"] < 1e-3 for r in res["sweep"])
    verdicts = {t.split()[0]: v for t, v, _ in res["gpu_targets"]}
    assert verdicts["W1M"] in ("met", "not met") and verdicts["W2"] in ("met", "not met")

    for k in res["kernels"]:
        assert not k.get("failed"), k
        assert k["max_abs_diff_f64"] < 1e-4, k
    assert not [s for s in res.get("scaling", []) if s.get("failed")]

    # accelerated VI (issue 6): same certificate as VI, iterations and times recorded
    acc = res["acceleration"]
    assert {r["solver"] for r in acc} == {"vi", "anderson"}
    for r in acc:
        assert r["status_counts"] == {"SUCCESS": 8}, r
        assert r["max_error_bound"] <= 1e-6 / 2 and r["max_abs_dv"] < 1e-6, r
        assert r["iters_max"] >= 1 and r["time_s"] > 0, r


def test_paired_rows_alternate_each_jaxmdp_row_with_the_best_baseline_of_its_rule(monkeypatch):
    """`paired.pair_rows` (no timing asserted: the calls' times are stubbed): each jaxmdp row
    is paired with the fastest correct hand-written row of its own rule, calls alternate
    A B, B A, and the ratio is the median of the pairs' ratios; a rule without a baseline,
    a failed row and a baseline row get no pairing."""
    from benchmarks import paired

    calls = []
    times = {"jax": [1.0, 2.0, 3.0], "np-fast": [4.0, 4.0, 4.0], "np-slow": [1.0] * 3}

    def once(timed):
        name = timed[0]()
        calls.append(name)
        return times[name][sum(c == name for c in calls) - 1] * timed[1]

    monkeypatch.setattr(paired, "_once", once)

    def row(impl, rule, median, hand=True, **kw):
        r = dict(
            impl=impl,
            rule=rule,
            median_s=median,
            hand_written=hand,
            skipped=None,
            failed=None,
            err_ok=True,
            converged=True,
        )
        return {**r, **kw}

    rows = [
        row("numpy fast", "span", 0.1),
        row("numpy slow", "span", 0.2),
        row("numpy sup", "sup", 0.1, err_ok=False),  # not correct: never a baseline
        row("jaxmdp VI", "span", 0.3, hand=False),
        row("jaxmdp VI", "sup", 0.3, hand=False),
        row("jaxmdp PI", "policy stable", 0.3, hand=False),
        row("jaxmdp broken", "span", None, hand=False, failed="boom"),
    ]
    names = ["np-fast", "np-slow", "np-slow", "jax", "jax", "jax", "jax"]
    timed = {id(r): ((lambda n=n: n), 1.0) for r, n in zip(rows, names, strict=True)}
    paired.pair_rows(rows, timed, budget_s=0.0, pause_s=0.0)
    assert calls == ["jax", "np-fast", "np-fast", "jax", "jax", "np-fast"]
    vi = rows[3]
    assert vi["paired_with"] == "numpy fast" and vi["paired_n"] == 3
    assert vi["paired_ratios"] == [0.25, 0.5, 0.75] and vi["paired_ratio"] == 0.5
    for r in rows[:3] + rows[4:]:
        assert "paired_ratio" not in r, r["impl"]
