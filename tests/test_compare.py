"""The within-rounding comparison of two programs' results (`_compare.py`) can fail."""

from __future__ import annotations

import numpy as np
import pytest
from _compare import assert_same_within_rounding, rounding_allowance

import jaxmdp


def _solution(values, q, policy, status=0, iters=10, residual=1e-9, bound=1e-8):
    n = len(values)
    return jaxmdp.Solution(
        values=np.asarray(values, np.float64)[None],
        q_values=np.asarray(q, np.float64)[None],
        policy=np.asarray(policy, np.int32)[None],
        status=np.full(1, status, np.int32),
        num_iters=np.full(1, iters, np.int32),
        residual=np.full(1, residual),
        error_bound=np.full(1, bound if n else 0.0),
    )


Q = [[1.0, 0.5], [2.0, -np.inf]]
V = [1.0, 2.0]


def test_bound_formula():
    eps = np.finfo(np.float64).eps
    assert rounding_allowance(np.float64, 5, 100.0, 0.9) == pytest.approx(2 * 7 * eps * 100 * 10)
    assert rounding_allowance(np.float64, 5, 0.1, 0.0) == pytest.approx(2 * 7 * eps)  # |V| >= 1
    # discount 1: the iteration count replaces 1 / (1 - g)
    assert rounding_allowance(np.float64, 5, 1.0, 1.0, 30) == pytest.approx(2 * 7 * eps * 30)
    np.testing.assert_allclose(
        rounding_allowance(np.float32, 5, [1.0, 1.0], [0.5, 0.75]),
        2 * 7 * float(np.finfo(np.float32).eps) * np.array([2.0, 4.0]),
    )


def test_accepts_rounding_and_ties():
    a = _solution(V, Q, [0, 0])
    tiny = 3 * np.finfo(np.float64).eps
    b = _solution(np.add(V, tiny), np.add(Q, tiny), [0, 0])
    assert_same_within_rounding(a, b, 0.9)
    tie_q = [[1.0, 1.0 + tiny], [2.0, -np.inf]]
    assert_same_within_rounding(_solution(V, tie_q, [0, 0]), _solution(V, tie_q, [1, 0]), 0.9)


@pytest.mark.parametrize(
    "change",
    [
        dict(values=[1.0 + 1e-9, 2.0]),  # beyond the bound (~3e-14 here)
        dict(q=[[1.0, 0.5], [2.0, 0.0]]),  # -inf (unavailable) became finite
        dict(policy=[1, 0]),  # a different action away from a tie
        dict(status=4),
        dict(iters=11),
        dict(residual=2e-9),
        dict(bound=2e-8),
    ],
    ids=lambda c: next(iter(c)),
)
def test_rejects_differences_beyond_rounding(change):
    kw = dict(values=V, q=Q, policy=[0, 0])
    a = _solution(**kw)
    b = _solution(**{**kw, **change})
    with pytest.raises(AssertionError):
        assert_same_within_rounding(a, b, 0.9)


def test_at_floor_allows_a_sweep_and_success_for_precision_limited():
    a = _solution(V, Q, [0, 0], status=0, iters=10, bound=1e-3)
    b = _solution(np.add(V, 1e-4), np.add(Q, 1e-4), [0, 0], status=4, iters=11, bound=1e-3)
    with pytest.raises(AssertionError):
        assert_same_within_rounding(a, b, 0.9)
    assert_same_within_rounding(a, b, 0.9, at_floor=True)
    far = _solution(np.add(V, 1e-2), np.add(Q, 1e-2), [0, 0], status=4, iters=11, bound=1e-3)
    with pytest.raises(AssertionError):
        assert_same_within_rounding(a, far, 0.9, at_floor=True)
    capped = _solution(V, Q, [0, 0], status=1, iters=11, bound=1e-3)
    with pytest.raises(AssertionError):
        assert_same_within_rounding(a, capped, 0.9, at_floor=True)


def test_path_may_differ_allows_other_iteration_counts_not_statuses():
    a = _solution(V, Q, [0, 0], status=0, iters=10, bound=1e-6)
    b = _solution(np.add(V, 1e-7), np.add(Q, 1e-7), [0, 0], status=0, iters=14, bound=1e-6)
    with pytest.raises(AssertionError):
        assert_same_within_rounding(a, b, 0.9)
    assert_same_within_rounding(a, b, 0.9, path_may_differ=True)
    other = _solution(V, Q, [0, 0], status=4, iters=14, bound=1e-6)
    with pytest.raises(AssertionError):
        assert_same_within_rounding(a, other, 0.9, path_may_differ=True)
