"""A discount sweep: when does patience pay? pymdptoolbox's forest-management problem.

Each year the forest (ages 0..S-1) is either left to grow (WAIT, pays r1 = 4 at the oldest
age, but a fire resets it with probability p = 0.1) or cut (pays 1, or r2 = 2 at the oldest
age, and resets it). A myopic owner cuts at once; a patient one waits for the old forest.
One `jaxmdp.sweep` solves it for 500 discounts x 3 fire probabilities and prints where the
optimal policy changes.

Run: python examples/discount_sweep.py   (about a second on a laptop CPU)
"""

import numpy as np

import jaxmdp
from jaxmdp import models

S = 5


def forest(discount, fire):
    return models.forest(S, r1=4.0, r2=2.0, p=fire, discount=discount)


result = jaxmdp.sweep(
    forest,
    jaxmdp.PolicyIteration(),
    discount=np.linspace(0.0, 0.999, 500),
    fire=np.array([0.05, 0.1, 0.2]),
)
jaxmdp.check(result.solution)
print(f"{result.size} forest problems; the transitions depend on {result.depends['transitions']}")

names = "WC"  # WAIT, CUT
discounts = result.axes["discount"]
for j, fire in enumerate(result.axes["fire"]):
    pol = result.policy[:, j]
    print(f"\nfire probability {fire:g}: policy by forest age 0..{S - 1} (W = wait, C = cut)")
    ends = np.flatnonzero((pol[1:] != pol[:-1]).any(axis=1)).tolist() + [len(pol) - 1]
    start = 0
    for end in ends:
        policy = "".join(names[a] for a in pol[end])
        print(
            f"  discount {discounts[start]:.3f} .. {discounts[end]:.3f}: {policy}   "
            f"(value of a young forest at {discounts[end]:.3f}: {result.values[end, j, 0]:.3f})"
        )
        start = end + 1
