"""The lecture's step-reward story: -2 vs -0.1 on the 4x3 grid world, and everything in between.

Russell & Norvig's 4x3 world (slip 0.2: the intended move with probability 0.8, each
perpendicular one with 0.1), undiscounted. With a step reward of -2 living hurts so much
that the agent dives into the nearest exit, even the -1 one; at -0.1 it takes the safe way
round. This sweeps the step reward over [-2, 0] in one call, finds every place where the
optimal policy changes, then zooms in on each change with a second sweep (one call again)
to locate the thresholds to 1e-4.

Run: python examples/lecture_step_reward.py   (about a second on a laptop CPU)
"""

import jax
import numpy as np

import jaxmdp
from jaxmdp import models

jax.config.update("jax_enable_x64", True)  # exact enough to place the thresholds
GRID = models.GridLayout(models.RUSSELL_NORVIG_4X3)


def lecture(step_reward):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=1.0)


def show(step_reward, policy):
    print(f"step reward {step_reward:g}:")
    print("  " + models.render_policy(None, policy).replace("\n", "\n  "))


# The two ends of the lecture's story.
for r in (-2.0, -0.1):
    show(r, jaxmdp.solve(lecture(r)).policy)
print()

# Everything in between: one sweep, 401 step rewards.
coarse = jaxmdp.sweep(lecture, step_reward=np.linspace(-2.0, 0.0, 401))
jaxmdp.check(coarse.solution)
labels, policies = coarse.distinct_policies()
changes = [i for i, _ in coarse.policy_changes("step_reward")]
print(f"{len(policies)} distinct optimal policies for step rewards in [-2, 0]; the policy")
print(f"changes at {len(changes)} places. Zooming in on each (one more sweep):\n")

# Zoom: 101 points inside every change interval, all in one 1-D sweep.
r = coarse.axes["step_reward"]
fine_axis = np.concatenate([np.linspace(r[i], r[i + 1], 101) for i in changes])
fine = jaxmdp.sweep(lecture, step_reward=fine_axis)
jaxmdp.check(fine.solution)
for k, i in enumerate(changes):
    pol = fine.policy[101 * k : 101 * (k + 1)]
    j = int(np.flatnonzero((pol[1:] != pol[:-1]).any(axis=1))[0])
    lo, hi = fine_axis[101 * k + j], fine_axis[101 * k + j + 1]
    before, after = coarse.policy[i], coarse.policy[i + 1]
    states = np.flatnonzero(before != after)
    cells = ", ".join(str(GRID.cell_of(s)) for s in states)
    print(f"threshold in ({lo:.4f}, {hi:.4f}): cell(s) (row, col) {cells} switch")
    for line_b, line_a in zip(
        models.render_policy(None, before).splitlines(),
        models.render_policy(None, after).splitlines(),
        strict=True,
    ):
        print(f"    {line_b}    ->    {line_a}")
print(f"\nsolved {coarse.size + fine.size} MDPs in two calls of jaxmdp.sweep")
