"""The sweep's CSV (issue 15): the column-by-column writer writes exactly the text of the
row-by-row writer (`csv.writer`, one Python-formatted field at a time), on results built to
hit every formatting path: -0.0 and float32 coordinates, integer and boolean axes, values
over many magnitudes, NaN and infinities, bounds 0/inf/NaN, an unknown status code, and a
grid with more distinct numbers than the writer formats one by one, in blocks of rows
formatted on threads (White box: compares against `_sweep_csv.slow_rows`.)

Also the pieces both writers share, against plain NumPy: the certified rounding
(`_format.round_values`, one pass for all precisions, against `np.round` per precision), and
the sort-free `np.unique` of `_unique` behind the CSV's few-distinct columns and
`SweepResult.distinct_policies`."""

from __future__ import annotations

import io

import numpy as np
import pytest

import jaxmdp
from jaxmdp import _format, _sweep_csv, _unique


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


@pytest.mark.parametrize("block", [97, 1000])
def test_blocks_of_rows_on_threads_write_the_same_text(block, monkeypatch):
    """`write` formats blocks of rows on a thread pool and writes them in order (W1M: 31
    blocks of 32,768 rows): 5,600 rows in 58 blocks of 97 (the last one short) or in 6 of
    1,000 (more than the writer keeps ahead) give the row writer's text, byte for byte."""
    monkeypatch.setattr(_sweep_csv, "_BLOCK", block)
    axes = {"a": np.linspace(-2, 0, 80), "b": np.linspace(0.5, 0.99, 70, dtype=np.float32)}
    fast, slow = _both(_result(axes, seed=4))
    assert fast == slow


def test_round_values_is_np_round_at_each_members_precision():
    rng = np.random.default_rng(3)
    v = rng.standard_normal((400, 6)) * 10.0 ** rng.integers(-12, 30, (400, 6))
    v[:50] = np.round(v[:50], 2) + 0.005  # ties at the rounded digit
    v[50, :4] = [np.nan, np.inf, -np.inf, -0.0]
    bound = 10.0 ** rng.uniform(-16, 26, 400)
    bound[:3] = [0.0, np.inf, np.nan]
    res = _format.resolution(v, bound)
    dec = np.floor(-np.log10(res)).clip(-300, 15).astype(int)
    want = np.array([np.round(row, int(d)) for row, d in zip(v, dec, strict=True)])
    want[(np.abs(v) <= res[:, None]) & np.isfinite(v)] = 0.0
    want[want == 0] = 0.0
    got = _format.round_values(v, bound)
    assert (dec < 0).any() and (dec >= 0).any()  # both branches of the power
    np.testing.assert_array_equal(got, want)
    assert not np.signbit(got[got == 0]).any()
    for k in (0, 60):  # one member
        np.testing.assert_array_equal(_format.round_values(v[k], bound[k]), got[k])
    x, b = 1234.56789, 3e-3  # one value: its own magnitude's rounding noise
    assert _format.round_values(x, b) == np.round(x, 2)
    assert _format.round_values(-3e-3, b) == 0.0


@pytest.mark.parametrize(
    "x",
    [
        np.array([3, -2, 3, 7, -2, 0], np.int32),
        np.array([True, False, True]),
        np.array([5, 1 << 40, 5], np.int64),  # range too wide to count: sorted
        np.array([0.5, -0.0, 0.5, np.nan]),
        np.zeros(0, np.int32),
    ],
    ids=["small-ints", "bool", "wide-ints", "floats", "empty"],
)
def test_unique_inverse_is_np_unique(x):
    values, inverse = _unique.unique_inverse(x)
    want_values, want_inverse = np.unique(x, return_inverse=True)
    np.testing.assert_array_equal(values, want_values)
    assert values.dtype == want_values.dtype
    np.testing.assert_array_equal(inverse, want_inverse.reshape(-1))


@pytest.mark.parametrize(("S", "A", "offset"), [(11, 4, 0), (45, 3, -1), (3, 1 << 40, 0)], ids=str)
def test_row_labels_partition_rows_as_np_unique(S, A, offset):
    """One packed pass; several passes (3^45 > 2^62); values too far apart to pack."""
    rng = np.random.default_rng(S)
    pool = rng.integers(0, A, (9, S)) + offset
    rows = pool[rng.integers(0, 9, 500)]
    labels = _unique.row_labels(rows)
    _, want = np.unique(rows, axis=0, return_inverse=True)
    want = want.reshape(-1)
    # the same partition: a one-to-one map between the two labellings
    pairs = set(zip(labels.tolist(), want.tolist(), strict=True))
    assert len(pairs) == len(set(labels.tolist())) == len(set(want.tolist()))


def test_distinct_policies_numbers_policies_by_first_appearance():
    axes = {"a": np.linspace(-2, 0, 30), "b": np.linspace(0.5, 0.99, 20)}
    result = _result(axes, S=5, A=2, seed=4)
    labels, policies = result.distinct_policies()
    flat = np.asarray(result.policy).reshape(result.size, -1)
    ok = result.ok.reshape(-1)
    seen: list[tuple] = []
    for row in flat[ok]:
        if tuple(row) not in seen:
            seen.append(tuple(row))
    assert [tuple(p) for p in policies] == seen
    want = np.array([seen.index(tuple(r)) if k else -1 for r, k in zip(flat, ok, strict=True)])
    np.testing.assert_array_equal(labels.reshape(-1), want)
    everything, _ = result.distinct_policies(only_ok=False)
    assert (everything >= 0).all()
