"""`SweepResult.to_pandas` / `to_xarray`: a sweep as a table and as a labelled array.

pandas and xarray are optional dependencies (the `pandas` and `xarray` extras), imported only
here, when a conversion is asked for. The docstrings users read are the methods' own.
"""

from __future__ import annotations

import importlib

import numpy as np

from jaxmdp._solution import Status
from jaxmdp._sweep_result import SweepResult

CERTIFICATE = (
    "error_bound: for each member that succeeded, a bound on max_s |values - V*| guaranteed by "
    "its solver's stopping rule (exact arithmetic; inf where none exists, e.g. value iteration "
    "at discount 1); the solver's docstring says what it implies for the policy."
)


def _status_name(code) -> str:
    try:
        return Status(int(code)).name
    except ValueError:
        return f"UNKNOWN({int(code)})"


def _optional(module: str, extra: str):
    """Import an optional dependency or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this needs {module}; install the `{extra}` extra: "
            f'pip install "jaxmdp-solver[{extra}]"'
        ) from None


def to_pandas(result: SweepResult, *, values: bool, policy: str):
    """See `SweepResult.to_pandas`."""
    pd = _optional("pandas", "pandas")
    if policy not in ("tuple", "columns", "none"):
        raise ValueError(f"policy must be 'tuple', 'columns' or 'none'; got {policy!r}.")
    flat_policy = np.asarray(result.policy).reshape(result.size, -1)
    cols: dict[str, object] = {}
    grids = np.meshgrid(*result.axes.values(), indexing="ij")
    for name, grid in zip(result.names, grids, strict=True):
        cols[name] = grid.reshape(-1)
    status = np.asarray(result.status).reshape(-1)
    names = [s.name for s in Status]
    known = np.isin(status, [int(s) for s in Status])
    cols["status"] = pd.Categorical(
        [_status_name(c) for c in status],
        categories=names + sorted({_status_name(c) for c in status[~known]}),
    )
    cols["num_iters"] = np.asarray(result.num_iters).reshape(-1)
    cols["residual"] = np.asarray(result.residual).reshape(-1)
    cols["error_bound"] = np.asarray(result.error_bound).reshape(-1)
    extra: dict[str, np.ndarray] = {}
    if policy == "tuple":
        extra["policy"] = np.empty(result.size, dtype=object)
        extra["policy"][:] = [tuple(p) for p in flat_policy.tolist()]
    elif policy == "columns":
        extra.update({f"policy_{s}": flat_policy[:, s] for s in range(flat_policy.shape[1])})
    if values:
        flat_values = np.asarray(result.values).reshape(result.size, -1)
        extra.update({f"value_{s}": flat_values[:, s] for s in range(flat_values.shape[1])})
    fixed = {"status", "num_iters", "residual", "error_bound"}
    clash = sorted(set(result.names) & (fixed | set(extra)))
    if clash:
        raise ValueError(
            f"axis name(s) {clash} collide with columns of the table; rename the axes."
        )
    cols.update(extra)
    return pd.DataFrame(cols)


def to_xarray(result: SweepResult):
    """See `SweepResult.to_xarray`."""
    xr = _optional("xarray", "xarray")
    dims = result.names
    clash = sorted(set(dims) & {"state", "action"})
    if clash:
        raise ValueError(f"axis name(s) {clash} collide with the dimensions state/action.")
    values = np.asarray(result.values)
    q = np.asarray(result.q_values)
    S, A = q.shape[-2:]
    status = np.asarray(result.status)
    ok = status == Status.SUCCESS
    bounds = np.asarray(result.error_bound)
    data = {
        "values": ((*dims, "state"), values),
        "q_values": ((*dims, "state", "action"), q),
        "policy": ((*dims, "state"), np.asarray(result.policy)),
        "status": (
            dims,
            status,
            {
                "flag_values": np.array([int(s) for s in Status], np.int32),
                "flag_meanings": " ".join(s.name for s in Status),
                "long_name": "jaxmdp.Status code",
            },
        ),
        "num_iters": (dims, np.asarray(result.num_iters)),
        "residual": (dims, np.asarray(result.residual)),
        "error_bound": (dims, bounds),
    }
    coords = {n: np.asarray(v) for n, v in result.axes.items()}
    coords.update(state=np.arange(S, dtype=np.int32), action=np.arange(A, dtype=np.int32))
    attrs = {
        "solver": result.solver if result.solver is not None else "not recorded",
        "dtype": str(values.dtype),
        "certificate": CERTIFICATE,
        "max_error_bound": float(bounds[ok].max()) if ok.any() else float("nan"),
        "succeeded": int(ok.sum()),
        "members": result.size,
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)
