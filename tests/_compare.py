"""Comparing the results of two different compiled programs: equal within rounding.

Why not bitwise: XLA compiles each program for the CPU it runs on. The vector width it picks
(SSE, AVX2, AVX-512; Intel and AMD parts with AVX-512 prefer different widths) and the way
it fuses and tiles a reduction decide the order in which a dot product or a max is summed,
and that order changes the last bits. A batch and its members' own solves, the host threads
and one program, the compaction ladder and a plain batch, shared and per-member transitions,
eager and jitted runs: all are different programs, so on some CPU their values differ in the
last bits (issue 11: an AMD EPYC with AVX-512 gave `5.28867001194282` against
`5.288670011942819`). Exact equality is kept only where the same program runs on the same
input (determinism: the same call twice); everything else goes through this module, and the
tests that use it carry the `programs` marker, which `.ci/run` runs again under other XLA
CPU settings (`--xla_cpu_max_isa=...`, `--xla_cpu_prefer_vector_width=512`).

The bound, `rounding_allowance(dtype, S, max|V|, g)` = `K (S + 2) eps max(|V|, 1) / (1 - g)`:

- One Bellman backup in precision `eps` (an S-term dot product, one multiply, one add)
  carries a relative error of at most about `(S + 2) eps`, i.e. an absolute error
  `delta <= (S + 2) eps max|V|` (the S-term sum's worst case is `S eps`; the order only
  moves where inside that interval a program lands).
- A g-contraction amplifies a per-sweep error `delta` to at most `delta / (1 - g)` in the
  iterate; Puterman's correction (`g / (1 - g)` times the differences) and an exact policy
  evaluation (condition number of `I - g P_pi` at most `(1 + g) / (1 - g)`) carry the same
  factor. At discount 1 (no contraction) the error grows at most by `delta` per backup, so
  `1 / (1 - g)` is replaced by the number of backups (value-iteration family; a policy
  evaluation at discount 1 amplifies by its expected steps to the exit, which the caller
  states).
- `K = 2`: the two programs' errors may have opposite signs (and, for the reference
  comparisons in `solvers_list`, the float64 reference has its own).

So `k` in "k ulp of max|V|" is `K (S + 2) / (1 - g)`: 14 ulp for S = 5 at g = 0, 2,800 ulp
at g = 0.995. What is seen in practice is far less (the AMD-vs-Intel differences were 1 ulp
to ~400 ulp at g = 0.995), so the bound has room without being vacuous: float64, S = 5,
|V| = 100, g = 0.99 gives 6e-12, against tolerances of 1e-6 to 1e-10 in the tests.

Derived quantities: `residual` is a span (or sup) of differences of two iterates, so it
moves by at most 4 bounds; `error_bound` is `residual` times `g / (1 - g)` / 2 (value
iteration family) or `residual / (1 - g)` (policy iteration), so it moves by at most
`4 bound / (1 - g)`.

Policies: a differing greedy action is allowed only where the two actions' Q values lie
within rounding (the member's bound) of each other in both results, i.e. at a tie up to
rounding; anywhere else the policies must be equal.

Statuses and iteration counts are compared exactly: rounding moves them only if the
stopping statistic lands within rounding of its threshold, which in float64 at the
tolerances used here (statistics ~1e-9, rounding ~1e-13) does not happen. In float32 a
member whose statistic sits at the precision floor (`_stopping`: within 16 ulp of max|V|,
stalled for two sweeps) stops where rounding noise says, so different programs may stop it
a sweep or two apart, and with SUCCESS on one and PRECISION_LIMITED on the other. Tests
that expect members at the floor say so with `at_floor=True`: such members must agree on
everything else, and their values within `bound + error_bound(a) + error_bound(b)` (each
result is certified within its own `error_bound` of V*). A solver whose iterates depend on a
comparison of two computed numbers (Anderson acceleration accepts a candidate if its
residual statistic decreased) may take another path where that comparison is a tie up to
rounding; `path_may_differ=True` then allows any iteration count, with the same status and
values within the same certified bound.
"""

from __future__ import annotations

import numpy as np

ROUNDING_SAFETY = 2.0
# Members at the float32 precision floor may stop this many sweeps apart (`at_floor=True`).
FLOOR_ITERS_SLACK = 2
_FLOOR_STATUSES = (0, 4)  # Status.SUCCESS, Status.PRECISION_LIMITED


def rounding_allowance(dtype, num_states, max_abs_value, discount, num_iters=None):
    """`K (S + 2) eps max(|V|, 1) / (1 - g)` (module docstring); broadcasts over arrays.

    Args:
      dtype: the solve's float dtype (float32 or float64).
      num_states: S.
      max_abs_value: max|V| (scalar or per member).
      discount: g (scalar or per member).
      num_iters: Bellman backups run; replaces `1 / (1 - g)` at discount 1, where there is
        no contraction (required there; unused below discount 1).
    """
    eps = float(np.finfo(dtype).eps)
    scale = np.maximum(np.asarray(max_abs_value, np.float64), 1.0)
    g = np.asarray(discount, np.float64)
    backups = np.inf if num_iters is None else np.maximum(np.asarray(num_iters), 1)
    amplification = np.where(g < 1, 1.0 / np.where(g < 1, 1.0 - g, 1.0), backups)
    out = ROUNDING_SAFETY * (num_states + 2) * eps * scale * amplification
    return float(out) if np.ndim(out) == 0 else out


def _np(x):
    return np.asarray(x)


def _max_finite_abs(values):
    v = np.abs(np.asarray(values, np.float64))
    return np.max(np.where(np.isfinite(v), v, 0.0), axis=-1)


def assert_same_within_rounding(
    a, b, discount, *, at_floor=False, path_may_differ=False, backups_per_iter=1, err_msg=""
):
    """Assert that two `Solution`s (or matching slices of them) of the same MDPs computed by
    different programs agree within rounding (module docstring).

    Args:
      a, b: `Solution`s with the same batch shape `[...]` (values `[..., S]`).
      discount: `[...]` or scalar, the members' discounts.
      at_floor: float32 members at the precision floor may stop `FLOOR_ITERS_SLACK` sweeps
        apart and swap SUCCESS / PRECISION_LIMITED; compared then within their error bounds.
      path_may_differ: the solver branches on computed comparisons (Anderson), or float32
        members stop on the stall test at the precision floor, which 512-bit vectors moved
        by 3 sweeps in a two-process run (`tests/test_distributed.py`): any iteration count,
        same status, values within their error bounds.
      backups_per_iter: Bellman backups per counted iteration (modified policy iteration:
        `eval_sweeps + 1`), for the bound at discount 1.
      err_msg: prefix for failure messages.
    """
    values_a, values_b = _np(a.values), _np(b.values)
    assert values_a.shape == values_b.shape, (err_msg, values_a.shape, values_b.shape)
    assert values_a.dtype == values_b.dtype, (err_msg, values_a.dtype, values_b.dtype)
    batch = values_a.shape[:-1]
    S = values_a.shape[-1]
    g = np.broadcast_to(np.asarray(discount, np.float64), batch)
    iters_a, iters_b = _np(a.num_iters), _np(b.num_iters)
    status_a, status_b = _np(a.status), _np(b.status)
    vmax = np.maximum(_max_finite_abs(values_a), _max_finite_abs(values_b))
    backups = backups_per_iter * np.maximum(iters_a, iters_b)
    bound = np.asarray(rounding_allowance(values_a.dtype, S, vmax, g, backups), np.float64)
    bound = np.broadcast_to(bound, batch)

    # Statuses and iteration counts.
    moved = (iters_a != iters_b) | (status_a != status_b)
    floor_pair = np.isin(status_a, _FLOOR_STATUSES) & np.isin(status_b, _FLOOR_STATUSES)
    status_ok = (status_a == status_b) | (at_floor & floor_pair)
    if path_may_differ:
        iters_ok = np.ones_like(moved)
    elif at_floor:
        iters_ok = np.abs(iters_a.astype(np.int64) - iters_b) <= FLOOR_ITERS_SLACK
    else:
        iters_ok = iters_a == iters_b
    ok = status_ok & iters_ok
    bad = np.argwhere(~ok)
    assert not bad.size, (
        f"{err_msg}: statuses/iteration counts differ at {bad[:5].tolist()}: "
        f"status {status_a[~ok][:5]} vs {status_b[~ok][:5]}, "
        f"iters {iters_a[~ok][:5]} vs {iters_b[~ok][:5]}"
    )
    eb_a = np.asarray(_np(a.error_bound), np.float64)
    eb_b = np.asarray(_np(b.error_bound), np.float64)
    tol = np.where(moved, bound + eb_a + eb_b, bound)

    # Values and Q: the same non-finite entries (-inf: unavailable actions), the rest close.
    for name, extra in (("values", 1), ("q_values", 2)):
        x = np.asarray(getattr(a, name), np.float64)
        y = np.asarray(getattr(b, name), np.float64)
        t = tol.reshape(batch + (1,) * extra)
        np.testing.assert_array_equal(np.isfinite(x), np.isfinite(y), err_msg=f"{err_msg} {name}")
        finite = np.isfinite(x)
        np.testing.assert_array_equal(x[~finite], y[~finite], err_msg=f"{err_msg} {name}")
        diff = np.abs(np.where(finite, x, 0.0) - np.where(finite, y, 0.0))
        excess = np.where(finite, diff - np.broadcast_to(t, x.shape), -np.inf)
        assert np.all(excess <= 0), (
            f"{err_msg} {name}: differs by more than the rounding bound at "
            f"{np.argwhere(excess > 0)[:5].tolist()} (max excess {excess.max():.3g}, "
            f"bound {float(np.max(t)):.3g})"
        )

    # residual and error_bound, for members that stopped at the same sweep.
    with np.errstate(divide="ignore", invalid="ignore"):
        eb_tol = np.where(g < 1, 4 * bound / np.where(g < 1, 1 - g, 1), np.inf)
    for name, t in (("residual", 4 * bound), ("error_bound", eb_tol)):
        x = np.asarray(getattr(a, name), np.float64)
        y = np.asarray(getattr(b, name), np.float64)
        same = ~moved & np.isfinite(x) & np.isfinite(y)
        np.testing.assert_array_equal(np.isfinite(x), np.isfinite(y), err_msg=f"{err_msg} {name}")
        diff = np.abs(np.where(same, x, 0.0) - np.where(same, y, 0.0))
        assert np.all(diff[same] <= np.broadcast_to(t, batch)[same]), (
            f"{err_msg} {name}: {x[same]} vs {y[same]} (bound {np.max(t):.3g})"
        )

    # Policies: equal except at ties up to rounding, in both results.
    pa, pb = _np(a.policy), _np(b.policy)
    differ = pa != pb
    if differ.any():
        for q in (np.asarray(a.q_values, np.float64), np.asarray(b.q_values, np.float64)):
            qa = np.take_along_axis(q, pa[..., None], -1)[..., 0]
            qb = np.take_along_axis(q, pb[..., None], -1)[..., 0]
            t = np.broadcast_to(2 * tol[..., None], qa.shape)
            tie = np.abs(qa - qb) <= t
            assert np.all(tie[differ]), (
                f"{err_msg} policy differs away from a tie at {np.argwhere(differ & ~tie)[:5]}"
            )
