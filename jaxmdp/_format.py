"""Values shown at the precision a solve certified (display only; arrays are never changed).

A solve returns `values [..., S]` with `error_bound [...]`: every value is within the bound of
V*. Digits below the bound are noise, and an absorbing zero-reward state whose value came out
as `-3.81e-07` with a bound of `4.8e-07` is 0 as far as anything is certified. So text meant
for people (summaries, the sweep's CSV, plot labels, the command line) goes through here:

- `resolution(values, error_bound)`: per member, the half-width a printed value may carry:
  `max(error_bound, 4 ulp of max|V|)`. The second term is the dtype's own rounding noise
  (what `_solvers.base.resolution_floor` calls the floor); it alone applies where the bound
  is 0 (policy iteration: exact up to rounding) or not finite (no certificate, e.g. value
  iteration at discount 1: then the digits reflect only the dtype, not a certificate).
- `round_values(values, error_bound)`: float64 copies rounded to the last decimal place the
  resolution supports; a value within the resolution of 0 becomes exactly 0 (never -0).
- `format_values(values, error_bound)`: the same as strings (`"0.705302"`, `"0"`, `"-1.25"`).
- `format_value(x, resolution)`: one number.
- `format_bound(b)`: a bound rounded UP to two significant digits (a rounded-down bound would
  claim more than was certified).

Rounding rule: a resolution `r` keeps `d = floor(-log10(r))` decimals, so one unit of the last
digit shown is at least `r` (r = 4.8e-7 -> 6 decimals, r = 5e-4 -> 3, r = 0.5 -> 0,
r = 3 -> tens); a printed value is within 1.5 units of its last digit of V*.

Callers: `SweepResult.summary`, the CSV of `SweepResult.save`, and (their owners)
`jaxmdp.plot` labels and the command line.
"""

from __future__ import annotations

import math

import numpy as np

_ULPS = 4  # rounding noise of a Bellman backup, in ulp of max|V| (as in resolution_floor)
_MAX_DECIMALS = 15  # float64 carries about 15-16 significant decimal digits


def _float_dtype(values) -> np.dtype:
    dt = np.asarray(values).dtype
    return dt if np.issubdtype(dt, np.floating) else np.dtype(np.float64)


def resolution(values, error_bound) -> np.ndarray:
    """Per member: the uncertainty a printed value carries.

    Args:
      values: `[..., S]` values of one or more members.
      error_bound: `[...]` (one per member) or a scalar.

    Returns:
      `[...]` float64: `max(error_bound, 4 ulp of max_s |values|)`; the ulp term alone where
      the bound is 0, NaN or infinite.
    """
    v = np.asarray(values)
    eps = float(np.finfo(_float_dtype(v)).eps)
    mag = np.abs(np.where(np.isfinite(v), v, 0.0)).astype(np.float64)
    noise = _ULPS * eps * (mag.max(axis=-1) if v.ndim else mag)
    b = np.abs(np.asarray(error_bound, dtype=np.float64))
    b = np.where(np.isfinite(b), b, 0.0)
    return np.maximum(np.broadcast_to(b, np.shape(noise)), noise)


def _decimals(res: np.ndarray) -> np.ndarray:
    """Decimal places a resolution supports (may be negative: tens, hundreds, ...)."""
    with np.errstate(divide="ignore"):
        d = np.floor(-np.log10(np.where(res > 0, res, np.inf)))
    d = np.where(res > 0, d, _MAX_DECIMALS)
    return np.clip(d, -300, _MAX_DECIMALS).astype(np.int64)


def round_values(values, error_bound) -> np.ndarray:
    """`values` (float64 copy) rounded to the digits their certificate supports.

    Args:
      values: `[..., S]`.
      error_bound: `[...]` or a scalar.

    Returns:
      `[..., S]` float64: each value rounded to `floor(-log10(r))` decimals of its member's
      resolution `r` (see `resolution`); within `r` of 0 -> exactly 0.0. Non-finite values
      pass through.
    """
    return rounded(values, error_bound)[0]


# 10**k is exact in float64 up to k = 22, so NumPy's `round(x, d)` (x * 10**d, rint, / 10**d;
# for d < 0: x / 10**-d, rint, * 10**-d) can be done with a per-element power there.
_EXACT_POW10 = 22


def rounded(values, error_bound) -> tuple[np.ndarray, np.ndarray]:
    """`(round_values(values, error_bound), decimals)`: also the `[...]` int64 decimals each
    member was rounded to (what the CSV writer prints), from one `resolution`."""
    v = np.asarray(values, dtype=np.float64)
    res = resolution(values, error_bound)
    dec = _decimals(res)
    d = dec[..., None] if v.ndim else dec
    # One pass for every precision: `np.round(v, d)`'s own operations with a power per
    # element (same bits; a loop over the distinct precisions took 1 s at 10^6 x 11 values).
    f = 10.0 ** np.minimum(np.abs(d), _EXACT_POW10).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.rint(v * f) / f
        if (d < 0).any():  # resolutions above 1: tens, hundreds, ...
            out = np.where(d >= 0, out, np.rint(v / f) * f)
    out = np.array(np.broadcast_to(out, v.shape), dtype=np.float64)
    for k in np.unique(dec[dec < -_EXACT_POW10]):  # resolutions above 1e22: rare
        sel = np.broadcast_to((dec == k)[..., None] if v.ndim else dec == k, v.shape)
        out[sel] = np.round(v[sel], int(k))
    small = np.abs(v) <= (res[..., None] if v.ndim else res)
    out[small & np.isfinite(v)] = 0.0
    out[out == 0] = 0.0  # no "-0"
    return out, dec


def format_value(x: float, res: float) -> str:
    """One number with the decimals resolution `res` supports (`"0"` within `res` of 0)."""
    x = float(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    res = abs(float(res)) if math.isfinite(float(res)) else 0.0
    if abs(x) <= res:
        return "0"
    d = int(_decimals(np.asarray(res)))
    y = round(x, d)
    if y == 0:
        return "0"
    if abs(y) >= 1e16 or abs(y) < 1e-4:  # scientific beyond these, with the same digits
        sig = max(1, math.floor(math.log10(abs(y))) + d + 1)
        return f"{y:.{sig - 1}e}"
    return f"{y:.{max(d, 0)}f}"


def format_values(values, error_bound) -> np.ndarray:
    """`values [..., S]` as strings at their certified precision (same shape, dtype str)."""
    v = np.asarray(values)
    res = np.broadcast_to(resolution(v, error_bound)[..., None], v.shape) if v.ndim else None
    if res is None:
        return np.array(format_value(float(v), float(resolution(v, error_bound))))
    flat = [format_value(x, r) for x, r in zip(v.reshape(-1), res.reshape(-1), strict=True)]
    return np.array(flat).reshape(v.shape)


def format_bound(b: float) -> str:
    """An error bound rounded up to two significant digits (`"4.8e-07"`, `"0"`, `"inf"`)."""
    b = float(b)
    if math.isnan(b):
        return "nan"
    if math.isinf(b):
        return "inf"
    if b <= 0:
        return "0"
    e = math.floor(math.log10(b))
    return bound_text(e, math.ceil(b / 10 ** (e - 1)))  # 2 digits, rounded up


def bound_text(e: int, k: int) -> str:
    """The text `format_bound` gives `k * 10**(e - 1)` (`e` the bound's decimal exponent,
    `k` its two digits rounded up, 10..100); the CSV writer formats each distinct pair once."""
    up = k * 10 ** (e - 1)
    return f"{up:.2g}" if up < 1e-3 or up >= 1e4 else f"{up:.{max(0, 1 - e)}f}"
