"""Paired timing: each jaxmdp row against the fastest correct hand-written row of its
workload and stopping rule, their calls alternated (issue 15).

The solve rows are timed one implementation after another, each for its own second or so. On
a shared machine whose speed drifts by 2x within minutes (NumPy's W1 solve: 3.9 ms in one run,
7.9 ms in a run the next day), the ratio of two medians taken minutes apart measures the
drift as well as the code. Here the two calls of a pair run one after the other (A B, then
B A), each after a short pause (as between rows), and the row's `paired_ratio` is the median
over the pairs of (jaxmdp time / baseline time): both sides of a pair saw the same machine.
Each side is timed exactly as its row was (the same call, the same sweep cap and factor).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import _timing
from benchmarks._harness import row_ok

# A row's timed call and the factor its times are scaled by (`_harness._measure_into`).
Timed = tuple[Callable[[], Any], float]


def _once(timed: Timed) -> float:
    fn, factor = timed
    t0 = time.perf_counter()
    _timing.block(fn())
    return (time.perf_counter() - t0) * factor


def pair(
    mine: Timed,
    base: Timed,
    *,
    budget_s: float,
    pause_s: float,
    min_pairs: int = 3,
    max_pairs: int = 15,
) -> list[float]:
    """Ratios `mine / base` of alternated calls (A B, B A, ...), `pause_s` apart: at least
    `min_pairs`, more while the budget lasts, at most `max_pairs`. The pause lets the other
    side's threads go idle: OpenBLAS's spin for ~0.1 s after a call, and back to back, W1's
    jaxmdp solve measured 2.3x NumPy's time in the same run whose row medians gave 1.2x."""
    ratios: list[float] = []
    start = time.perf_counter()

    def timed(side: Timed) -> float:
        _timing.pause(pause_s)
        return _once(side)

    while len(ratios) < max_pairs:
        if len(ratios) % 2 == 0:
            a = timed(mine)
            b = timed(base)
        else:
            b = timed(base)
            a = timed(mine)
        ratios.append(a / b)
        if len(ratios) >= min_pairs and time.perf_counter() - start >= budget_s:
            break
    return ratios


def pair_rows(
    rows: list[dict], timed: dict[int, Timed], *, budget_s: float, pause_s: float
) -> None:
    """Set `paired_ratio` (median of the pairs' ratios; below 1: jaxmdp faster),
    `paired_with` and `paired_n` on every jaxmdp row of `rows` (one workload's) that has a
    timed call and a hand-written row of the same rule to pair with."""
    base_of: dict[str, dict] = {}
    for r in rows:
        if r["hand_written"] and row_ok(r) and id(r) in timed:
            best = base_of.get(r["rule"])
            if best is None or r["median_s"] < best["median_s"]:
                base_of[r["rule"]] = r
    for r in rows:
        base = base_of.get(r["rule"])
        if not r["impl"].startswith("jaxmdp") or id(r) not in timed or base is None:
            continue
        if r.get("failed") or r.get("median_s") is None:
            continue
        ratios = pair(timed[id(r)], timed[id(base)], budget_s=budget_s, pause_s=pause_s)
        r["paired_ratio"] = float(np.median(ratios))
        r["paired_with"] = base["impl"]
        r["paired_n"] = len(ratios)
        r["paired_ratios"] = [float(x) for x in ratios]
