"""The CSV of `SweepResult.save`, written column by column in blocks of rows (issue 15).

The table's text is exactly what `csv.writer` writes for `to_table(values=True,
certified=True)` with the certificate's own columns formatted (`_format.format_bound` for
`error_bound`, three significant digits for `residual`), every other field as Python's
`repr`/`str` of the item. Formatting each field in Python took 88 s for 10^6 rows; here each
column becomes a NumPy bytes array (`S` dtype, NUL-padded) at once:

- columns with few distinct values (coordinates, status, names, iterations, actions) format
  their distinct values in Python and index them;
- other numbers go through NumPy's float-to-text conversion (`astype("S")`, which writes
  Python's shortest round-trip `repr`) or, for the certified values, an exact integer
  rendering where it provably gives the same text (`_decimal_bytes`);
- rows are assembled as a byte matrix (fields, separators, `\\r\\n`), NUL padding dropped;
- all of it a block of rows at a time (each field depends on its own row only), blocks
  formatted on a small thread pool and written in order (`write`).

No field the library writes needs CSV quoting (numbers, status names, actions separated by
spaces); anything else (an axis of another kind) takes the row-by-row writer (`slow_rows`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import csv
import io
import math

import numpy as np

from jaxmdp import _format, _interrupt, _unique

_BLOCK = 1 << 15  # rows formatted at a time (bounds the byte matrices)
_THREADS = 2  # blocks formatted at once
_FEW = 4096  # at most this many distinct values: format them once and index


def _item_text(x) -> str:
    """`_fmt` of the row writer: shortest round-trip repr of floats, `str` otherwise."""
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    return str(x)


def _indexed(values: np.ndarray, fmt) -> np.ndarray | None:
    """`fmt` of each distinct value, indexed back (None when there are many distinct)."""
    flat = values.reshape(-1)
    if flat.size == 0:
        return np.zeros(0, "S1")
    if flat.dtype.kind == "f" and np.any((flat == 0) & np.signbit(flat)):
        return None  # np.unique would merge -0.0 into 0.0, whose text differs
    u, inv = _unique.unique_inverse(flat)  # small integers: counted, not sorted
    if u.size > _FEW and u.size * 8 > flat.size:
        return None
    return np.array([fmt(x) for x in u.tolist()], dtype="S")[inv]


def _digits(x: np.ndarray, width: int, keep: np.ndarray) -> np.ndarray:
    """`[N, width]` ASCII digits of non-negative int64 `x`, right-aligned; positions
    `k >= keep` counted from the right are NUL (dropped later)."""
    out = np.zeros((x.size, width), np.uint8)
    rest = x.copy()
    for k in range(width):
        col = width - 1 - k
        out[:, col] = np.where(k < keep, rest % 10 + 48, 0)
        rest //= 10
    return out


def _decimal_bytes(v: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """`repr(float(v))` as `[N, W]` bytes (NUL-padded) for float64 `v` rounded to `dec` decimals.

    Where `v` is the double nearest to the decimal `m / 10**d` (m an integer below 2**53,
    0 <= d <= 15, checked exactly: `m / 10.0**d` is then one correctly rounded division) and
    no other decimal of at most `d` places rounds to `v` (its ulp is below `10**-d / 2`),
    `repr` prints that decimal without trailing zeros (`"1.25"`, `"3.0"`), in the range
    where it uses positional notation (`1e-4 <= |v| < 1e16`, or 0). Those are rendered from
    the integer digits; the rest through `astype("S")`.
    """
    n = v.size
    d = np.clip(dec, 0, 15)
    scale = 10.0**d
    m = np.rint(np.abs(v) * scale)
    a = np.abs(v)
    ok = (dec >= 0) & (dec <= 15) & np.isfinite(v) & (m < 2.0**53)
    ok &= ((a >= 1e-4) & (a < 1e16)) | (v == 0)
    with np.errstate(invalid="ignore", over="ignore"):
        ok &= (m / scale == a) & (np.spacing(a) * 2 < 1.0 / scale)
    mi = np.where(ok, m, 0).astype(np.int64)
    p10 = (10**d).astype(np.int64)
    ip, frac = np.divmod(mi, p10)
    # trailing zeros of the fraction (at most d)
    w = d.copy()
    for _ in range(15):
        strip = (w > 0) & (frac % 10 == 0)
        if not strip.any():
            break
        frac = np.where(strip, frac // 10, frac)
        w = w - strip
    iw = max(1, len(str(int(ip.max())))) if n else 1
    fw = max(1, int(w.max())) if n else 1
    sign = np.where(v < 0, ord("-"), 0).astype(np.uint8)[:, None]
    ndig = np.ones_like(ip)
    t = ip // 10
    while t.any():
        ndig += t > 0
        t //= 10
    ipart = _digits(ip, iw, ndig)
    fpart = _digits(frac, fw, w)  # w digits, zeros on the left kept; "0" when w == 0
    fpart[:, -1] = np.where(w == 0, ord("0"), fpart[:, -1])
    dot = np.full((n, 1), ord("."), np.uint8)
    fast = np.concatenate([sign, ipart, dot, fpart], axis=1)
    if ok.all():
        return fast.view(f"S{fast.shape[1]}").reshape(n)
    slow = v[~ok].astype("S")
    width = max(fast.shape[1], slow.dtype.itemsize)
    out = np.zeros(n, f"S{width}")
    out[ok] = fast[ok].view(f"S{fast.shape[1]}").reshape(-1)
    out[~ok] = slow
    return out


def _join(pieces: list[tuple[np.ndarray, bytes]], rows: int) -> str:
    """The text of `rows` lines: each piece an `[rows]` (or `[rows, w]` uint8) bytes column
    followed by its one-byte separator; NUL bytes dropped."""
    mats = []
    for col, sep in pieces:
        if col.dtype != np.uint8:
            col = col.view(np.uint8).reshape(rows, -1) if rows else np.zeros((0, 1), np.uint8)
        mats.append((col, sep))
    width = sum(c.shape[1] + len(s) for c, s in mats)
    mat = np.empty((rows, width), np.uint8)
    at = 0
    for col, sep in mats:
        w = col.shape[1]
        mat[:, at : at + w] = col
        at += w
        for b in sep:
            mat[:, at] = b
            at += 1
    return mat[mat != 0].tobytes().decode("ascii")


def _rows_text(result, lo: int, hi: int, coord_text: list[np.ndarray]) -> str:
    """The CSV lines of rows `lo .. hi - 1` (row-major over the sweep's grid); `coord_text`:
    each axis's coordinates as bytes. Every field is a function of its own row only, so
    blocks of rows give the text of the whole table."""
    from jaxmdp._sweep_result import _status_name  # the row writer's names

    n = hi - lo
    shape = result.shape
    rows = np.arange(lo, hi, dtype=np.int64)
    pieces: list[tuple[np.ndarray, bytes]] = []
    for k, text in enumerate(coord_text):
        # row-major: the k-th coordinate of row r
        stride = int(np.prod(shape[k + 1 :], dtype=np.int64))
        pieces.append((text[(rows // stride) % len(text)], b","))

    def flat(x, core=()):
        return np.asarray(x).reshape((-1, *core))[lo:hi]

    status = flat(result.status)
    pieces.append((_few_or_all(status, str), b","))
    pieces.append((_few_or_all(status, _status_name), b","))
    pieces.append((_few_or_all(flat(result.num_iters), str), b","))
    pieces.append((_few_or_all(flat(result.residual), lambda x: format(float(x), ".3g")), b","))
    bound = flat(result.error_bound)
    pieces.append((_bound_bytes(bound), b","))
    raw = np.asarray(result.values)
    raw = flat(raw, raw.shape[-1:])
    values, dec = _format.rounded(raw, bound)  # and the digits each member kept
    for s in range(values.shape[1]):
        pieces.append((_decimal_bytes(values[:, s], dec), b","))
    policy = np.asarray(result.policy)
    policy = flat(policy, policy.shape[-1:])
    for s in range(policy.shape[1]):
        last = s == policy.shape[1] - 1
        pieces.append((_few_or_all(policy[:, s], str), b"\r\n" if last else b" "))
    return _join(pieces, n)


def write(f: io.TextIOBase, result) -> None:
    """The CSV of `result` (`SweepResult`) to the text file `f` (opened with `newline=""`).

    In blocks of `_BLOCK` rows, formatted on `_THREADS` threads and written in order: NumPy
    releases the GIL in most of the formatting, and a block's columns stay in cache (W1M's
    10^6 rows: ~4.5 s -> ~1.6 s, DECISIONS 24)."""
    n = result.size
    axes = [np.asarray(c) for c in result.axes.values()]
    if any(c.dtype.kind not in "biuf" for c in axes):
        return slow_rows(f, result)
    width = int(np.asarray(result.policy).shape[-1]) if np.ndim(result.policy) else 0
    if n == 0 or width == 0:
        return slow_rows(f, result)
    header = io.StringIO()
    csv.writer(header).writerow(_header(result, int(np.asarray(result.values).shape[-1])))
    f.write(header.getvalue())
    # Formatted once for all blocks (W1M: 2,000 Python reprs, which hold the GIL).
    coord_text = [np.array([_item_text(x) for x in c.tolist()], dtype="S") for c in axes]
    starts = list(range(0, n, _BLOCK))
    if len(starts) == 1:
        f.write(_rows_text(result, 0, n, coord_text))
        return None

    def block(lo):
        return _rows_text(result, lo, min(n, lo + _BLOCK), coord_text)

    # At most `2 * _THREADS` blocks formatted ahead of the writer (bounded memory); the
    # first submits, which start the pool's threads, with Ctrl-C held (`_interrupt.submit`).
    ahead = 2 * _THREADS
    with concurrent.futures.ThreadPoolExecutor(_THREADS) as pool:
        pending = collections.deque(_interrupt.submit(pool, [(block, lo) for lo in starts[:ahead]]))
        for lo in starts[ahead:]:
            f.write(pending.popleft().result())
            pending.append(pool.submit(block, lo))
        while pending:
            f.write(pending.popleft().result())
    return None


# Python's `10 ** k` as a float (what `format_bound` divides by), k = -307 .. 22.
_POW10 = np.array([float(10**k) if k >= 0 else 10**k for k in range(-307, 23)])


def _bound_bytes(bound: np.ndarray) -> np.ndarray:
    """`_format.format_bound` of each bound, as bytes.

    `format_bound` prints `k * 10**(e - 1)` with `e = floor(log10(b))` and
    `k = ceil(b / 10**(e - 1))` (10..100), so the text depends on `(e, k)` only: both are
    computed here for the whole column and the few distinct pairs are formatted by
    `format_bound`'s own arithmetic. The division and ceiling are the same IEEE operations as
    Python's; only `log10` may differ in the last bit, so where it is within 1e-9 of an
    integer (or `e` is outside the table) Python's `math.log10` decides.
    """
    b = np.asarray(bound, np.float64).reshape(-1)
    pos = np.isfinite(b) & (b > 0)
    bp = np.where(pos, b, 1.0)
    lg = np.log10(bp)
    e = np.floor(lg).astype(np.int64)
    unsure = pos & ((np.abs(lg - np.rint(lg)) < 1e-9) | (e - 1 < -307) | (e - 1 > 22))
    for i in np.flatnonzero(unsure):
        e[i] = math.floor(math.log10(float(b[i])))
    inside = pos & (e - 1 >= -307) & (e - 1 <= 22)
    step = _POW10[np.clip(e - 1 + 307, 0, _POW10.size - 1)]
    k = np.where(inside, np.ceil(bp / step), 0).astype(np.int64)
    key = np.where(inside, (e + 1000) * 1000 + k, -1)
    u, inv = np.unique(key, return_inverse=True)
    names = [_format.bound_text(x // 1000 - 1000, x % 1000) for x in u.tolist()]
    text = np.array(names, dtype=object)[inv.reshape(-1)]
    rest = np.flatnonzero(~inside)  # NaN, inf, <= 0, out of the table's range: Python
    text[rest] = [_format.format_bound(float(x)) for x in b[rest].tolist()]
    return text.astype("S")


def _few_or_all(x: np.ndarray, fmt) -> np.ndarray:
    out = _indexed(x, fmt)
    if out is None:
        out = np.array(list(map(fmt, x.tolist())), dtype="S")
    return out


def _header(result, num_states: int) -> list[str]:
    cols = list(result.names) + ["status", "status_name", "num_iters", "residual"]
    return cols + ["error_bound"] + [f"value_{s}" for s in range(num_states)] + ["policy"]


def slow_rows(f: io.TextIOBase, result) -> None:
    """The row-by-row writer (any column type; `csv.writer` quoting)."""
    table = result.to_table(values=True, certified=True)
    table["error_bound"] = np.array([_format.format_bound(b) for b in table["error_bound"]])
    table["residual"] = np.array([format(float(x), ".3g") for x in table["residual"]])
    writer = csv.writer(f)
    writer.writerow(list(table))
    for r in range(result.size):
        writer.writerow([_item_text(col[r].item()) for col in table.values()])
