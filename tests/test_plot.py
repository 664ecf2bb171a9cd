"""`jaxmdp.plot` (headless PNGs) and `jaxmdp.convergence_history`."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import jaxmdp
from jaxmdp import models

pytest.importorskip("matplotlib")
from jaxmdp import plot  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=5000):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > min_bytes, (path, len(data))


def lecture(step_reward, discount):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)


@pytest.fixture(scope="module")
def small_sweep():
    return jaxmdp.sweep(
        lecture,
        jaxmdp.ValueIteration(tol=1e-3),
        step_reward=np.linspace(-2, 0, 21),
        discount=np.array([0.9, 0.95, 1.0]),
    )


def test_gridworld_heatmap_with_arrows(tmp_path):
    sol = jaxmdp.solve(lecture(-0.04, 1.0))
    ax = plot.gridworld(sol.values, sol.policy, title="R&N 4x3", path=tmp_path / "g.png")
    assert_png(tmp_path / "g.png")
    assert len(ax.texts) >= 11  # one value per state (plus terminal symbols)


def test_phase_diagram_and_policies(small_sweep, tmp_path):
    plot.phase_diagram(small_sweep, path=tmp_path / "phase.png")
    assert_png(tmp_path / "phase.png")
    plot.policies(small_sweep, path=tmp_path / "sub" / "policies.png")
    assert_png(tmp_path / "sub" / "policies.png")


def test_phase_diagram_of_a_hand_made_result_with_failures(tmp_path):
    """Any SweepResult works (no solve needed); failed members are drawn apart."""
    x, y = np.linspace(0, 1, 30), np.array([0.5, 0.9, 0.99])
    policy = np.zeros((30, 3, 4), np.int32)
    policy[15:, :, 0] = 1
    policy[25:, 2, 1] = 2
    status = np.zeros((30, 3), np.int32)
    status[0, 0] = jaxmdp.Status.MAX_ITERATIONS
    sol = jaxmdp.Solution(
        values=np.zeros((30, 3, 4)),
        q_values=np.zeros((30, 3, 4, 2)),
        policy=policy,
        status=status,
        num_iters=np.ones((30, 3), np.int32),
        residual=np.zeros((30, 3)),
        error_bound=np.zeros((30, 3)),
    )
    result = jaxmdp.SweepResult(axes={"a": x, "b": y}, solution=sol)
    assert [c for c, _ in result.policy_changes("a")] == [14, 24]
    ax = plot.phase_diagram(result, "a", "b", path=tmp_path / "p.png")
    assert_png(tmp_path / "p.png")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == "did not succeed" and len(legend) == 4


def test_phase_diagram_needs_the_other_axes_fixed(tmp_path):
    sol = jaxmdp.Solution(*(np.zeros((2, 2, 2) + s) for s in [(3,), (3, 2), (3,), (), (), (), ()]))
    result = jaxmdp.SweepResult(
        axes={"a": np.arange(2.0), "b": np.arange(2.0), "c": np.arange(2.0)}, solution=sol
    )
    with pytest.raises(ValueError, match="at="):
        plot.phase_diagram(result)
    plot.phase_diagram(result, "c", "a", at={"b": 1}, path=tmp_path / "c.png")
    assert_png(tmp_path / "c.png", min_bytes=2000)


def test_convergence_history_matches_solve_and_plots(tmp_path):
    solver = jaxmdp.ValueIteration(tol=1e-4)
    histories = {}
    for g in (0.9, 0.99):
        mdp = lecture(-0.04, g)
        sol = jaxmdp.solve(mdp, solver)
        hist = jaxmdp.convergence_history(mdp, solver, 200)
        assert hist.residual.shape == (200,) and hist.values.shape == (200, 11)
        k = hist.stopped_at
        assert k == int(sol.num_iters)
        assert int(hist.status[k - 1]) == int(sol.status)
        np.testing.assert_allclose(hist.values[k - 1], sol.values, atol=1e-5)
        assert float(hist.residual[k - 1]) == pytest.approx(float(sol.residual), rel=1e-4)
        histories[f"discount {g}"] = hist
    plot.convergence(histories, path=tmp_path / "conv.png")
    assert_png(tmp_path / "conv.png")


def test_convergence_history_rejects_batches():
    batch = models.gridworld(step_reward=np.array([-1.0, -0.5]))
    with pytest.raises(ValueError, match="one MDP"):
        jaxmdp.convergence_history(batch)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"jaxmdp-solver\[plot\]"):
        plot.gridworld(np.zeros(11))
