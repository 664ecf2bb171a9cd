"""The sweep's CSV (issue 15): the column-by-column writer writes exactly the text of the
row-by-row writer (`csv.writer`, one Python-formatted field at a time), on results built to
hit every formatting path: -0.0 and float32 coordinates, integer and boolean axes, values
over many magnitudes, NaN and infinities, bounds 0/inf/NaN, an unknown status code, and a
grid with more distinct numbers than the writer formats one by one (White box: compares
against `_sweep_csv.slow_rows`.)"""

from __future__ import annotations

import io

import numpy as np
import pytest

import jaxmdp
from jaxmdp import _sweep_csv


def _result(axes, S=5, A=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(len(v) for v in axes.values())
    mag = 10.0 ** rng.integers(-9, 9, shape + (S,))
    values = (rng.standard_normal(shape + (S,)) * mag).astype(np.float32)
    bound = (10.0 ** rng.uniform(-8, 2, shape)).astype(np.float32)
    flat_v, flat_b = values.reshape(-1, S), bound.reshape(-1)
    flat_v[0, :3] = [np.nan, np.inf, -np.inf]
    flat_v[1, :] = -3e-8  # within its bound of 0: printed as 0
    flat_b[:4] = [0.0, np.inf, np.nan, 1e4]
    status = rng.choice([0, 1, 2, 3, 99], shape).astype(np.int32)
    residual = rng.exponential(1e-3, shape).astype(np.float32)
    residual.reshape(-1)[:2] = [-0.0, np.inf]
    sol = jaxmdp.Solution(
        values=values,
        q_values=np.repeat(values[..., None], A, -1),
        policy=rng.integers(0, A, shape + (S,)).astype(np.int32),
        status=status,
        num_iters=rng.integers(0, 500, shape).astype(np.int32),
        residual=residual,
        error_bound=bound,
    )
    return jaxmdp.SweepResult(axes=axes, solution=sol)


def _both(result):
    fast, slow = io.StringIO(newline=""), io.StringIO(newline="")
    _sweep_csv.write(fast, result)
    _sweep_csv.slow_rows(slow, result)
    return fast.getvalue(), slow.getvalue()


@pytest.mark.parametrize(
    "axes",
    [
        {
            "step": np.array([-0.0, 0.0, 0.1, -2.0, 1e-7, 3e16], np.float32),
            "discount": np.linspace(0.5, 0.99, 7),
            "n": np.array([1, -3, 12]),
            "flag": np.array([True, False]),
        },
        # more distinct residuals, bounds and values than are formatted one at a time
        {"a": np.linspace(-2, 0, 80), "b": np.linspace(0.5, 0.99, 70, dtype=np.float32)},
    ],
)
def test_column_writer_writes_the_row_writers_text(axes):
    fast, slow = _both(_result(axes))
    assert fast.splitlines() == slow.splitlines()
    assert fast == slow
