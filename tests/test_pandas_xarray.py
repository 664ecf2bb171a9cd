"""`SweepResult.to_pandas` and `to_xarray`: a sweep as a table and as a labelled array."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

import jaxmdp
from jaxmdp import Status, models

pd = pytest.importorskip("pandas")
xr = pytest.importorskip("xarray")


def hand_made(status=None):
    """A 3 x 2 grid over (a, b), S = 4, A = 2, with distinct numbers everywhere."""
    shape, S, A = (3, 2), 4, 2
    rng = np.random.default_rng(0)
    sol = jaxmdp.Solution(
        values=rng.standard_normal((*shape, S)).astype(np.float32),
        q_values=rng.standard_normal((*shape, S, A)).astype(np.float32),
        policy=rng.integers(0, A, (*shape, S)).astype(np.int32),
        status=np.zeros(shape, np.int32) if status is None else status,
        num_iters=np.arange(6, dtype=np.int32).reshape(shape) + 10,
        residual=np.linspace(1e-7, 6e-7, 6, dtype=np.float32).reshape(shape),
        error_bound=np.linspace(1e-6, 6e-6, 6, dtype=np.float32).reshape(shape),
    )
    axes = {"a": np.array([-1.0, -0.5, 0.0]), "b": np.array([0.9, 1.0])}
    return jaxmdp.SweepResult(axes=axes, solution=sol)


def test_to_pandas_one_row_per_member_row_major():
    status = np.array([[0, 1], [0, 4], [9, 0]], np.int32)  # 9: not a Status code
    r = hand_made(status)
    df = r.to_pandas()
    columns = ["a", "b", "status", "num_iters", "residual", "error_bound", "policy"]
    assert list(df.columns) == columns
    assert len(df) == 6
    assert df["a"].tolist() == [-1.0, -1.0, -0.5, -0.5, 0.0, 0.0]
    assert df["b"].tolist() == [0.9, 1.0] * 3
    assert df["status"].tolist() == [
        "SUCCESS",
        "MAX_ITERATIONS",
        "SUCCESS",
        "PRECISION_LIMITED",
        "UNKNOWN(9)",
        "SUCCESS",
    ]
    assert isinstance(df["status"].dtype, pd.CategoricalDtype)
    assert set(s.name for s in Status) <= set(df["status"].cat.categories)
    np.testing.assert_array_equal(df["num_iters"], r.num_iters.reshape(-1))
    np.testing.assert_array_equal(df["error_bound"], r.error_bound.reshape(-1))
    np.testing.assert_array_equal(df["residual"], r.residual.reshape(-1))
    flat = r.policy.reshape(6, -1)
    assert df["policy"].tolist() == [tuple(p) for p in flat.tolist()]
    # Tuples are hashable: members group by policy.
    assert df.groupby("policy").size().sum() == 6


def test_to_pandas_policy_columns_and_values():
    r = hand_made()
    df = r.to_pandas(values=True, policy="columns")
    S = 4
    assert [f"policy_{s}" for s in range(S)] == [c for c in df.columns if c.startswith("policy")]
    np.testing.assert_array_equal(df[[f"policy_{s}" for s in range(S)]], r.policy.reshape(6, S))
    np.testing.assert_array_equal(df[[f"value_{s}" for s in range(S)]], r.values.reshape(6, S))
    assert df["value_0"].dtype == np.float32  # the solve's numbers, not rounded or cast
    bare = r.to_pandas(policy="none")
    assert "policy" not in bare.columns and "value_0" not in bare.columns
    with pytest.raises(ValueError, match="policy must be"):
        r.to_pandas(policy="list")


def test_to_pandas_rejects_colliding_axis_names():
    r = hand_made()
    clash = dataclasses.replace(r, axes={"num_iters": r.axes["a"], "b": r.axes["b"]})
    with pytest.raises(ValueError, match="num_iters"):
        clash.to_pandas()


def test_to_xarray_dims_coords_data_and_attrs():
    r = dataclasses.replace(hand_made(np.array([[0, 1], [0, 0], [0, 0]], np.int32)), solver="VI")
    ds = r.to_xarray()
    assert dict(ds.sizes) == {"a": 3, "b": 2, "state": 4, "action": 2}
    assert ds["values"].dims == ("a", "b", "state")
    assert ds["q_values"].dims == ("a", "b", "state", "action")
    assert ds["policy"].dims == ("a", "b", "state")
    for name in ("status", "num_iters", "residual", "error_bound"):
        assert ds[name].dims == ("a", "b"), name
        np.testing.assert_array_equal(ds[name], getattr(r, name))
    np.testing.assert_array_equal(ds["q_values"], r.q_values)
    np.testing.assert_array_equal(ds["a"], r.axes["a"])
    np.testing.assert_array_equal(ds["state"], np.arange(4))
    # Selection by parameter value picks that member.
    np.testing.assert_array_equal(ds["values"].sel(a=-0.5, b=1.0), r.values[1, 1])
    assert ds["status"].attrs["flag_meanings"].split() == [s.name for s in Status]
    assert ds.attrs["solver"] == "VI" and ds.attrs["dtype"] == "float32"
    assert "error_bound" in ds.attrs["certificate"]
    # The largest bound among members that succeeded (member [0, 1] failed).
    ok = r.status == 0
    assert ds.attrs["max_error_bound"] == pytest.approx(float(r.error_bound[ok].max()))
    assert ds.attrs["succeeded"] == 5 and ds.attrs["members"] == 6
    assert hand_made().to_xarray().attrs["solver"] == "not recorded"


def test_to_xarray_round_trips_through_netcdf(tmp_path):
    pytest.importorskip("scipy")  # xarray's netCDF3 writer
    ds = hand_made().to_xarray()
    ds.to_netcdf(tmp_path / "sweep.nc")
    assert xr.load_dataset(tmp_path / "sweep.nc").identical(ds)


def test_to_xarray_rejects_state_or_action_axes():
    r = hand_made()
    with pytest.raises(ValueError, match="state"):
        dataclasses.replace(r, axes={"state": r.axes["a"], "b": r.axes["b"]}).to_xarray()


def test_a_real_sweep_flows_into_both():
    result = jaxmdp.sweep(
        lambda step_reward, discount: models.gridworld(
            step_reward=step_reward, slip=0.2, discount=discount
        ),
        # tol=None: float32 cannot certify 1e-3 at discount 0.99 for |V| ~ 30 (rounding
        # amplified by 1 / (1 - g)); the default accepts the tightest certifiable bound.
        jaxmdp.ValueIteration(),
        step_reward=np.linspace(-1, 0, 3),
        discount=np.array([0.9, 0.99]),
    )
    df = result.to_pandas(values=True)
    assert len(df) == 6 and (df["status"] == "SUCCESS").all()
    row = df[(df.step_reward == 0.0) & (df.discount == 0.99)].iloc[0]
    np.testing.assert_array_equal([row[f"value_{s}"] for s in range(11)], result.values[2, 1])
    ds = result.to_xarray()
    member = ds["policy"].sel(step_reward=-1.0, discount=0.9)
    np.testing.assert_array_equal(member, result.policy[0, 0])


@pytest.mark.parametrize("module, method", [("pandas", "to_pandas"), ("xarray", "to_xarray")])
def test_missing_dependency_names_the_extra(module, method, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf"jaxmdp-solver\[{module}\]"):
        getattr(hand_made(), method)()
