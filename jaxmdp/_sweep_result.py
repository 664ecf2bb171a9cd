"""`SweepResult`: the labelled grid of solutions a `jaxmdp.sweep` returns.

Every field of the `Solution` is indexed by the swept axes in the order they were given
(`result.values[i, j]` is the i-th value of the first axis and the j-th of the second), then
by the usual core axes (`[..., S]`, `[..., S, A]`). Everything lives on the host (NumPy), so
a result is cheap to keep, slice, tabulate and save. The arrays of a sweep may be read-only
(a sweep of one chunk hands over the solve's own buffers instead of copying them): copy one
(`np.array(result.values)`) before writing into it.

Files: `save(path)` writes `<path>.npz` (everything, lossless: the source of truth) and
`<path>.csv` (a table for reading, values at their certified precision) as one step through
`jaxmdp._io.atomic_files`: both are written and fsynced under temporary names first, so an
interrupt, a kill or a full disk while writing leaves the previous pair untouched; then the csv
is renamed into place and the npz last. The npz's rename is the commit: once `save` returns
both are new; a kill between the two renames (no I/O left, microseconds) can only leave a new
csv beside the old npz, never a damaged file. For a set of files replaced as one unit (the
command line's output folder: npz, csv, summary, plots) use `write_outputs` inside
`jaxmdp._io.result_set`. `load` refuses anything but a well-formed sweep file with a
`ValueError` naming the file (`jaxmdp._sweep_file`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jaxmdp import _format, _interrupt, _io, _sweep_csv, _sweep_file, _unique
from jaxmdp._solution import Solution, Status

# How the sweep ran (saved with the result).
_META = (
    "depends",
    "chunk_size",
    "num_chunks",
    "tile_size",
    "num_devices",
    "bytes_per_member",
    "resumed_chunks",
    "solver",
)
# Table columns besides the axes; an axis may not take one of these names.
TABLE_COLUMNS = ("status", "status_name", "num_iters", "residual", "error_bound", "policy")


def _status_name(code: int) -> str:
    try:
        return Status(int(code)).name
    except ValueError:
        return f"UNKNOWN({int(code)})"


def _status_message(code: int) -> str:
    try:
        return Status(int(code)).message
    except ValueError:
        return "unknown status code."


def _short(x) -> str:
    """Readable coordinates for summaries."""
    if isinstance(x, (float, np.floating)):
        return format(float(x), ".6g")
    return str(x)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """A grid of solutions labelled by the swept parameters.

    Attributes:
      axes: `{name: 1-D np.ndarray}` the coordinates, in the order given to `sweep`.
      solution: `Solution` of NumPy arrays whose batch shape is the grid shape
        `tuple(len(v) for v in axes.values())`.
      depends: `{"transitions" | "rewards" | "discount": names of the axes it depends on}`;
        a leaf that depends on none was built once and shared by the whole sweep.
      chunk_size: members per compiled call (whole tiles on every device).
      num_chunks: compiled calls the sweep took.
      tile_size: members solved together (one vmapped solve; tiles run one after the other).
      num_devices: devices the batch axis was sharded across.
      bytes_per_member: the memory estimate used for chunking (bytes per member).
      resumed_chunks: chunks read back from a checkpoint instead of solved (`sweep(...,
        checkpoint=DIR)`); 0 for a run that solved everything.
    """

    axes: Mapping[str, np.ndarray]
    solution: Solution
    depends: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    chunk_size: int = 0
    num_chunks: int = 0
    tile_size: int = 0
    num_devices: int = 1
    bytes_per_member: int = 0
    resumed_chunks: int = 0

    # -- the Solution's fields, indexed by the axes ------------------------------------------
    @property
    def values(self) -> np.ndarray:
        return np.asarray(self.solution.values)

    @property
    def q_values(self) -> np.ndarray:
        return np.asarray(self.solution.q_values)

    @property
    def policy(self) -> np.ndarray:
        return np.asarray(self.solution.policy)

    @property
    def status(self) -> np.ndarray:
        return np.asarray(self.solution.status)

    @property
    def num_iters(self) -> np.ndarray:
        return np.asarray(self.solution.num_iters)

    @property
    def residual(self) -> np.ndarray:
        return np.asarray(self.solution.residual)

    @property
    def error_bound(self) -> np.ndarray:
        return np.asarray(self.solution.error_bound)

    @property
    def ok(self) -> np.ndarray:
        """Grid-shaped bool: `status == Status.SUCCESS`."""
        return np.asarray(self.solution.status) == Status.SUCCESS

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    # -- reading the grid ----------------------------------------------------------------------
    def distinct_policies(self, *, only_ok: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Labels the grid by policy.

        Args:
          only_ok: label only members that succeeded; the others get label -1.

        Returns:
          `(labels, policies)`: `labels` grid-shaped int, `policies [K, S]` the distinct
          policies, numbered in order of first appearance in the grid (row-major).
        """
        flat = np.asarray(self.policy).reshape(self.size, -1)
        keep = self.ok.reshape(-1) if only_ok else np.ones(self.size, bool)
        labels = np.full(self.size, -1, np.int64)
        if not keep.any():
            return labels.reshape(self.shape), flat[:0]
        rows = flat[keep]
        inverse = _unique.row_labels(rows)  # no sort of the rows (`_unique`)
        first = np.full(int(inverse.max()) + 1, len(rows), np.int64)
        np.minimum.at(first, inverse, np.arange(len(rows)))
        order = np.argsort(first)  # number policies by first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        labels[keep] = rank[inverse]
        return labels.reshape(self.shape), rows[first[order]]

    def policy_changes(self, axis: str | int) -> list[tuple[int, int]]:
        """Where the optimal policy changes along one axis.

        Args:
          axis: an axis name or position.

        Returns:
          `[(i, n), ...]`: between coordinates `i` and `i + 1` of that axis the policy
          differs on `n` of the lines along it (one line per combination of the other axes).
          Members that failed are ignored (a change needs both neighbours to succeed).
        """
        k = self.names.index(axis) if isinstance(axis, str) else int(axis)
        labels, _ = self.distinct_policies()
        lab = np.moveaxis(labels, k, 0).reshape(self.shape[k], -1)
        both = (lab[:-1] >= 0) & (lab[1:] >= 0)
        diff = (lab[:-1] != lab[1:]) & both
        counts = diff.sum(axis=1)
        return [(int(i), int(counts[i])) for i in np.flatnonzero(counts)]

    def summary(self, *, max_lines: int = 12) -> str:
        """A few lines for humans: distinct policies, where they change, failures by status.

        Along each axis, the intervals where the policy changes are listed per line (one per
        combination of the other axes) when there are at most `max_lines` lines, otherwise
        aggregated over lines.
        """
        lines = []
        dims = " x ".join(f"{len(v)} {n}" for n, v in self.axes.items())
        lines.append(f"{self.size} MDPs solved ({dims}).")
        labels, policies = self.distinct_policies()
        n_ok = int(self.ok.sum())
        lines.append(
            f"{len(policies)} distinct optimal policies among the {n_ok} members that succeeded."
        )
        for k, (name, coords) in enumerate(self.axes.items()):
            if len(coords) < 2:
                continue
            lab = np.moveaxis(labels, k, 0)
            other_names = [n for n in self.names if n != name]
            other_shape = lab.shape[1:]
            lab = lab.reshape(len(coords), -1)
            diff = (lab[:-1] != lab[1:]) & (lab[:-1] >= 0) & (lab[1:] >= 0)
            n_lines = lab.shape[1]
            if not diff.any():
                lines.append(f"Along {name}: the policy never changes.")
                continue

            def interval(i, c=coords):
                return f"({_short(c[i])}, {_short(c[i + 1])})"

            if n_lines <= max_lines:
                lines.append(f"Along {name}, the policy changes between:")
                for j in range(n_lines):
                    idx = np.unravel_index(j, other_shape) if other_shape else ()
                    at = ", ".join(
                        f"{n}={_short(self.axes[n][i])}"
                        for n, i in zip(other_names, idx, strict=True)
                    )
                    where = ", ".join(interval(i) for i in np.flatnonzero(diff[:, j])) or "-"
                    lines.append(f"  {at + ': ' if at else ''}{where}")
            else:
                counts = diff.sum(axis=1)
                nz = np.flatnonzero(counts)
                lines.append(
                    f"Along {name}, the policy changes on {int(diff.any(0).sum())} of "
                    f"{n_lines} lines, between:"
                )
                shown = ", ".join(f"{interval(i)} x{int(counts[i])}" for i in nz[:max_lines])
                more = f", ... ({len(nz) - max_lines} more)" if len(nz) > max_lines else ""
                lines.append(f"  {shown}{more}")
        status = np.asarray(self.status).reshape(-1)
        failed = status != Status.SUCCESS
        if n_ok:
            bounds = np.asarray(self.error_bound).reshape(-1)[~failed]
            finite = np.isfinite(bounds)
            if finite.any():
                lines.append(
                    f"Certified: the values of {'every' if finite.all() else int(finite.sum())} "
                    "member that succeeded are within "
                    f"{_format.format_bound(np.max(bounds[finite]))} of the optimal values "
                    "(largest error_bound; values are shown to their own bound's precision)."
                )
            if not finite.all():
                lines.append(
                    f"{int((~finite).sum())} members succeeded without an a-priori bound "
                    "(error_bound = inf, e.g. value iteration's rule at discount 1)."
                )
        if not failed.any():
            lines.append("All members converged (Status.SUCCESS).")
        else:
            lines.append(f"{int(failed.sum())} of {self.size} members did not succeed:")
            for code in np.unique(status[failed]):
                where = np.argwhere(np.asarray(self.status) == code)[0]
                at = ", ".join(
                    f"{n}={_short(self.axes[n][i])}" for n, i in zip(self.names, where, strict=True)
                )
                lines.append(
                    f"  {_status_name(code)}: {int((status == code).sum())} (first at {at}). "
                    f"{_status_message(code)}"
                )
        return "\n".join(lines)

    # -- tables and files ----------------------------------------------------------------------
    def to_table(self, *, values: bool = False, rows: bool = False, certified: bool = False):
        """The grid as a flat table: one row per parameter combination (row-major order).

        Columns: the axes (their coordinates), `status` (int), `status_name`, `num_iters`,
        `residual`, `error_bound`, `policy` (actions as a space-separated string; a tuple of
        ints in `rows` form), and with `values=True` one column `value_<s>` per state.

        Args:
          values: include the values.
          rows: return a list of dicts (one per row) instead of a dict of columns.
          certified: value columns rounded (float64) to the digits each member's certificate
            supports, a value within its bound of 0 as exactly 0 (`jaxmdp._format`); what the
            CSV of `save` holds. Default: the values as computed.

        Returns:
          `{column: np.ndarray}` (each of length `size`), or a list of dicts.
        """
        grids = np.meshgrid(*self.axes.values(), indexing="ij")
        cols: dict[str, np.ndarray] = {
            n: g.reshape(-1) for n, g in zip(self.names, grids, strict=True)
        }
        status = np.asarray(self.status).reshape(-1)
        cols["status"] = status
        cols["status_name"] = np.array([_status_name(c) for c in status])
        cols["num_iters"] = np.asarray(self.num_iters).reshape(-1)
        cols["residual"] = np.asarray(self.residual).reshape(-1)
        cols["error_bound"] = np.asarray(self.error_bound).reshape(-1)
        flat_policy = np.asarray(self.policy).reshape(self.size, -1)
        if values:
            flat_values = np.asarray(self.values).reshape(self.size, -1)
            if certified:
                flat_values = _format.round_values(flat_values, cols["error_bound"])
            for s in range(flat_values.shape[1]):
                cols[f"value_{s}"] = flat_values[:, s]
        if not rows:
            cols["policy"] = np.array([" ".join(map(str, p)) for p in flat_policy.tolist()])
            return cols
        out = []
        for r in range(self.size):
            row = {k: v[r].item() for k, v in cols.items()}
            row["policy"] = tuple(flat_policy[r].tolist())
            out.append(row)
        return out

    def save(self, path: str | os.PathLike) -> tuple[str, str]:
        """Writes `<path>.npz` (everything, reloadable with `SweepResult.load`) and
        `<path>.csv` (the table with values) as one step. A `.npz`/`.csv` suffix is dropped.

        The npz is lossless; the csv shows each value to the digits its member's certificate
        supports (`to_table(values=True, certified=True)`; a value within `error_bound` of 0
        is `0`), the coordinates exactly. Both files are complete on disk under temporary
        names before either replaces an existing file, so an interrupt, a kill or a full disk
        during `save` leaves the previous pair as it was (see the module docstring for the
        order of the two renames).

        Returns:
          `(npz_path, csv_path)`.

        Raises:
          OSError: the files cannot be written (nothing is replaced).
        """
        base = os.fspath(path)
        if base.endswith((".npz", ".csv")):
            base = base[:-4]
        npz, csv_path = base + ".npz", base + ".csv"
        with _io.atomic_files([(csv_path, "w"), (npz, "wb")]) as (fc, fn):
            arrays = _sweep_file.result_arrays(self, _META)
            # The npz written on a thread while the CSV is formatted (W1M: 1.5 s of copying
            # into the file beside ~1.7 s of formatting); both done before the renames, and
            # an interrupt waits for the npz's thread before the files are dropped.
            # Stored, not deflated: for 3 x 10^5 lecture worlds 0.08 s and 84 MB against
            # 2.1 s and 50 MB (zlib at its fastest level: 1.6 s); the save of a sweep should
            # not take longer than the sweep (issue 15). `load` reads either.
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                npz_job = functools.partial(np.savez, fn, **arrays)  # type: ignore[arg-type]
                (done,) = _interrupt.submit(pool, [(npz_job,)])
                self._write_csv(fc)
                done.result()
        return npz, csv_path

    def _write_csv(self, f: io.TextIOBase) -> None:
        _sweep_csv.write(f, self)  # column by column; the text of the row writer

    def write_outputs(
        self, directory: str | os.PathLike, *, name: str = "sweep", summary: str | None = None
    ) -> list[Path]:
        """Writes the result's files into `directory`: `<name>.npz`, `<name>.csv` (as `save`)
        and `summary.txt` (`summary`, default `self.summary()`).

        Meant for the staging directory of `jaxmdp._io.result_set`, so that a whole output
        folder (these files and any plots the caller adds) replaces the previous one as a
        unit::

            _io.check_result_set(out)            # before the solve: fail early
            result = jaxmdp.sweep(...)
            with _io.result_set(out) as stage:
                files = result.write_outputs(stage, summary=text)
                plot.phase_diagram(result, ..., path=stage / "phase_diagram.png")
            # files are now under out/ (same names)

        Returns:
          The paths written, inside `directory`.
        """
        d = Path(os.fspath(directory))
        npz, csv_path = self.save(d / name)
        text = self.summary() if summary is None else summary
        with _io.atomic_file(d / "summary.txt", "w") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        return [Path(npz), Path(csv_path), d / "summary.txt"]

    @classmethod
    def load(cls, path: str | os.PathLike) -> SweepResult:
        """Reads a result written by `save` (the `.npz`; its suffix may be omitted).

        Raises:
          FileNotFoundError: no such file.
          ValueError: the file is not a complete, well-formed sweep result (damaged,
            truncated, edited, another program's npz, Python objects); the message names the
            file and what is wrong. Nothing in it is unpickled or executed.
        """
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path = path + ".npz"
        arrays = _sweep_file.read_npz(path, "sweep result")
        axes, sol, meta = _sweep_file.parse_result(arrays, path, _META)
        return cls(axes=axes, solution=sol, **meta)

    # -- pandas and xarray (optional dependencies) ---------------------------------------------
    # Recorded by whoever makes the result (`jaxmdp.sweep`, the command line): `repr` of the
    # solver, for `to_xarray`'s attributes. Declared here, last, so it has a default and the
    # other fields keep their order.
    solver: str | None = None

    def to_pandas(self, *, values: bool = False, policy: str = "tuple"):
        """The grid as a `pandas.DataFrame`, one row per member (row-major order).

        Columns: one per axis (its coordinate), `status` (the `Status` name, a categorical),
        `num_iters`, `residual`, `error_bound`, then the policy, then with `values=True` one
        column `value_<s>` per state. The numbers are the solve's own (not rounded).

        Args:
          values: add the values, one column `value_<s>` per state.
          policy: `"tuple"`: one column `policy` holding each member's actions as a tuple of
            ints (hashable: `df.groupby("policy")` groups members by policy);
            `"columns"`: one int column `policy_<s>` per state; `"none"`: no policy.

        Returns:
          `pandas.DataFrame` with `size` rows and a default integer index.

        Raises:
          ImportError: pandas is not installed (the `pandas` extra).
          ValueError: an unknown `policy` form, or an axis name that collides with a column.
        """
        from jaxmdp._sweep_export import to_pandas

        return to_pandas(self, values=values, policy=policy)

    def to_xarray(self):
        """The grid as an `xarray.Dataset`: a sweep is a labelled N-dimensional array.

        Dimensions: the sweep's axes (in order), then `state` and `action`. Coordinates: the
        axes' parameter values, `state = 0..S-1`, `action = 0..A-1`. Data variables:
        `values (*axes, state)`, `q_values (*axes, state, action)`, `policy (*axes, state)`,
        `status`, `num_iters`, `residual`, `error_bound` (each `(*axes)`); `status` carries the
        CF attributes `flag_values` / `flag_meanings` (the `Status` names). Attributes:
        `solver` (its repr, where the result records it), `dtype`, `certificate` (what
        `error_bound` guarantees), `max_error_bound` (over members that succeeded; NaN if
        none), `succeeded` / `members` (counts). Attributes are plain strings and numbers, so
        `ds.to_netcdf(path)` works.

        Example:
          >>> result = jaxmdp.sweep(
          ...     lambda step_reward, discount: models.gridworld(
          ...         step_reward=step_reward, discount=discount),
          ...     step_reward=np.linspace(-1, 0, 5), discount=np.array([0.9, 1.0]))
          >>> ds = result.to_xarray()
          >>> ds["values"].sel(discount=1.0)            # [step_reward, state]
          >>> (ds["status"] == 0).mean("step_reward")   # index variables with strings:
          >>> # `ds.values` is the Dataset's Mapping method, not the data variable

        Returns:
          `xarray.Dataset`.

        Raises:
          ImportError: xarray is not installed (the `xarray` extra).
          ValueError: an axis named `state` or `action`.
        """
        from jaxmdp._sweep_export import to_xarray

        return to_xarray(self)

    def __repr__(self) -> str:
        dims = ", ".join(f"{n}={len(v)}" for n, v in self.axes.items())
        run = (
            f", {self.num_chunks} chunk(s) of {self.chunk_size} in tiles of {self.tile_size} "
            f"on {self.num_devices} device(s)"
            if self.num_chunks
            else ""
        )
        return f"SweepResult({dims}; {int(self.ok.sum())}/{self.size} succeeded{run})"
