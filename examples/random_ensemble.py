"""An ensemble of random MDPs: how the discount changes optimal policies and solve effort.

100 random dense MDPs (16 states, 4 actions, `jaxmdp.models.random_mdp` with one key per
seed) x 4 discounts = 400 solves in one `jaxmdp.sweep`, random generation included. The
transitions depend on the seed, so every member has its own (the sweep detects it).

Run: python examples/random_ensemble.py   (a few seconds on a laptop CPU)
"""

import jax
import numpy as np

import jaxmdp
from jaxmdp import models

S, A = 16, 4


def ensemble(seed, discount):
    return models.random_mdp(jax.random.key(seed), S, A, discount=discount)


discounts = np.array([0.5, 0.9, 0.99, 0.999])
result = jaxmdp.sweep(ensemble, seed=np.arange(100), discount=discounts)
jaxmdp.check(result.solution)
print(f"{result!r}")
print(
    f"transitions depend on {result.depends['transitions']}, discount on "
    f"{result.depends['discount']}\n"
)

print("discount  sweeps (median, max)  mean V(s)  states whose action differs from gamma=0.5")
for j, g in enumerate(discounts):
    iters = result.num_iters[:, j]
    changed = (result.policy[:, j] != result.policy[:, 0]).mean()
    print(
        f"{g:8g}  {np.median(iters):8.0f} {iters.max():6d}      {result.values[:, j].mean():9.3f}"
        f"  {changed:6.1%}"
    )

# Spot check: a member of the sweep against its own solve.
i, j = 42, 2
own = jaxmdp.solve(ensemble(i, discounts[j]))
gap = float(np.abs(result.values[i, j] - own.values).max())
bound = float(result.error_bound[i, j] + own.error_bound)
print(
    f"\nmember (seed {i}, discount {discounts[j]}) vs its own solve: max |dV| = {gap:.2e}"
    f" (both within their error bounds of V*: {gap <= bound})"
)
assert gap <= bound
