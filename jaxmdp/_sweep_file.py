"""The sweep's files: a safe `.npz` reader and the checks that turn a file into a `SweepResult`.

Files come from disk, where anything can happen to them (an edit, another program's npz, a
truncated copy, a crafted archive). Reading one either returns arrays that have exactly the
layout a `SweepResult` needs, or raises ONE error type, `ValueError`, whose message names the
file and what is wrong; never a `TypeError`/`KeyError`/`BadZipFile` from inside. Nothing is
unpickled (`allow_pickle=False`; object dtypes are refused before any data is read), and every
member's declared size is checked against what the archive really holds and against the memory
budget before it is allocated (a 100-byte archive cannot make us allocate terabytes).
"""

from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np

from jaxmdp import _memory
from jaxmdp._solution import Solution

FORMAT = "jaxmdp.SweepResult/1"
_KINDS = "biufU"  # bool, ints, floats, unicode: everything a sweep file holds
_MAX_HEADER = 10_000


def _header(f, where: str):
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
    raise ValueError(f"{where}: unsupported .npy format version {version}")


def read_npz(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """Every array of an `.npz` archive, refusing pickles, damage and size bombs.

    Args:
      path: the file.
      what: what the file should be, for messages ("sweep result").

    Returns:
      `{name: array}` (names without the `.npy` suffix).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a readable npz of plain arrays; the message names the file.
      MemoryError: the arrays it declares exceed the memory budget.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {what} at {path!r}")
    try:
        return _read(path)
    except MemoryError:
        raise
    except ValueError as e:
        raise ValueError(f"{path!r} is not a readable {what}: {e}.") from None
    except Exception as e:  # noqa: BLE001 - zipfile/zlib/struct errors of a damaged archive
        raise ValueError(
            f"{path!r} is not a readable {what} (damaged or not an .npz archive: "
            f"{type(e).__name__}: {e})."
        ) from None


def _read(path: str) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            where = f"member {info.filename!r}"
            if not info.filename.endswith(".npy") or info.is_dir():
                raise ValueError(f"{where} is not an array (.npy)")
            with zf.open(info) as f:
                shape, _, dtype = _header(f, where)
                header_len = f.tell()
            if dtype.hasobject or dtype.fields is not None or dtype.kind not in _KINDS:
                raise ValueError(
                    f"{where} has dtype {dtype} (Python objects and records are never loaded)"
                )
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes + header_len > info.file_size:
                raise ValueError(
                    f"{where} declares {nbytes:,} bytes of data but holds "
                    f"{max(info.file_size - header_len, 0):,} (truncated or edited)"
                )
            # deflate cannot expand data more than ~1032:1; a larger declared size is a bomb
            ratio = 1 if info.compress_type == zipfile.ZIP_STORED else 1100
            if info.file_size > ratio * info.compress_size + 4096:
                raise ValueError(f"{where} declares an impossible size ({info.file_size:,} bytes)")
            total += nbytes
        _memory.require(total, f"loading {path!r}")
        out = {}
        for info in infos:
            with zf.open(info) as f:
                out[info.filename[:-4]] = np.lib.format.read_array(
                    f, allow_pickle=False, max_header_size=_MAX_HEADER
                )
    return out


# -- the SweepResult layout ------------------------------------------------------------------

# Per Solution field: (kind letters accepted, core dims given S and A).
_FIELDS = {
    "values": ("f", lambda s, a: (s,)),
    "q_values": ("f", lambda s, a: (s, a)),
    "policy": ("iu", lambda s, a: (s,)),
    "status": ("iu", lambda s, a: ()),
    "num_iters": ("iu", lambda s, a: ()),
    "residual": ("f", lambda s, a: ()),
    "error_bound": ("f", lambda s, a: ()),
}
_LEAVES = ("transitions", "rewards", "discount")


def result_arrays(result, meta_fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays `SweepResult.save` writes (see `parse_result` for the layout)."""
    arrays = {f"solution.{f}": np.asarray(getattr(result.solution, f)) for f in Solution._fields}
    arrays.update({f"axis.{n}": np.asarray(v) for n, v in result.axes.items()})
    arrays["axis_names"] = np.array(result.names, dtype=str)
    meta = {k: getattr(result, k) for k in meta_fields}
    meta["depends"] = {k: list(v) for k, v in meta["depends"].items()}
    arrays["meta"] = np.array(json.dumps(meta))
    arrays["format"] = np.array(FORMAT)
    return arrays


def parse_result(arrays: dict[str, np.ndarray], path: str, meta_fields: tuple[str, ...]):
    """`(axes, solution, meta)` from the arrays of a sweep file, or ValueError naming `path`.

    Layout: `axis_names` (1-D str), `axis.<name>` (1-D numeric, one per name),
    `solution.<field>` (grid shape + core shape, see `_FIELDS`), `meta` (0-d JSON string with
    the run's facts), `format` (0-d str, absent in files of older versions).
    """

    def bad(msg: str) -> ValueError:
        return ValueError(f"{path!r} is not a valid sweep result: {msg}.")

    fmt = arrays.get("format")
    if fmt is not None and not (fmt.shape == () and fmt.dtype.kind == "U" and str(fmt) == FORMAT):
        raise bad(f"unknown format {fmt!r} (this version reads {FORMAT!r})")
    names_arr = arrays.get("axis_names")
    if names_arr is None:
        raise bad("no 'axis_names' array")
    if names_arr.ndim != 1 or names_arr.dtype.kind != "U" or names_arr.size == 0:
        raise bad(f"'axis_names' must be a non-empty 1-D array of str; got {names_arr!r}")
    names = [str(n) for n in names_arr]
    if len(set(names)) != len(names):
        raise bad(f"axis names repeat: {names}")
    axes = {}
    for n in names:
        a = arrays.get(f"axis.{n}")
        if a is None:
            raise bad(f"axis {n!r} is listed but 'axis.{n}' is missing")
        if a.ndim != 1 or a.size == 0 or a.dtype.kind not in "biuf":
            raise bad(f"axis {n!r} must be a non-empty 1-D numeric array; got {a.dtype} {a.shape}")
        axes[n] = a
    grid = tuple(len(a) for a in axes.values())
    sol = {}
    for f in Solution._fields:
        x = arrays.get(f"solution.{f}")
        if x is None:
            raise bad(f"'solution.{f}' is missing")
        sol[f] = x
    values = sol["values"]
    if values.ndim != len(grid) + 1 or values.shape[:-1] != grid:
        raise bad(f"'solution.values' has shape {values.shape}; the axes give the grid {grid}")
    q = sol["q_values"]
    if q.ndim != len(grid) + 2:
        raise bad(f"'solution.q_values' has shape {q.shape}; expected {grid} + (S, A)")
    S, A = values.shape[-1], q.shape[-1]
    for f, (kinds, core) in _FIELDS.items():
        x, want = sol[f], grid + core(S, A)
        if x.shape != want:
            raise bad(f"'solution.{f}' has shape {x.shape}; expected {want}")
        if x.dtype.kind not in kinds:
            raise bad(f"'solution.{f}' has dtype {x.dtype}")
    extra = set(arrays) - {"format", "axis_names", "meta"}
    extra -= {f"axis.{n}" for n in names} | {f"solution.{f}" for f in Solution._fields}
    if extra:
        raise bad(f"unexpected arrays {sorted(extra)}")
    meta = _parse_meta(arrays.get("meta"), names, meta_fields, bad)
    return axes, Solution(**sol), meta  # type: ignore[arg-type]


def _parse_meta(m, names, meta_fields, bad) -> dict:
    if m is None:
        return {}
    if m.shape != () or m.dtype.kind != "U":
        raise bad("'meta' must be a JSON string")
    try:
        meta = json.loads(str(m))
    except ValueError as e:
        raise bad(f"'meta' is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise bad("'meta' must be a JSON object")
    unknown = set(meta) - set(meta_fields)
    if unknown:
        raise bad(f"'meta' has unknown keys {sorted(unknown)}")
    out: dict = {}
    for k, v in meta.items():
        if k == "depends":
            ok = isinstance(v, dict) and all(
                leaf in _LEAVES and isinstance(d, list) and all(n in names for n in d)
                for leaf, d in v.items()
            )
            if not ok:
                raise bad(f"'meta' depends must map MDP leaves to axis names; got {v!r}")
            out[k] = {leaf: tuple(d) for leaf, d in v.items()}
        elif k == "solver":
            if not (v is None or isinstance(v, str)):
                raise bad(f"'meta' solver must be a string; got {v!r}")
            out[k] = v
        else:
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
                raise bad(f"'meta' {k} must be an int >= 0; got {v!r}")
            out[k] = v
    return out
