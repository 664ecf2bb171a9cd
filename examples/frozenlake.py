"""FrozenLake from Gymnasium: exact values, the optimal policy, and a discount sweep.

`jaxmdp.models.from_gymnasium` reads the environment's transition table (`env.unwrapped.P`).
The reward is 1 for reaching the goal, so with discount 1 the value of a state is the
probability of reaching the goal from it under the optimal policy. A sweep over discounts
shows how impatience trades safety for speed on the slippery ice.

Run: python examples/frozenlake.py   (needs gymnasium; about a second on a laptop CPU)
"""

import jax
import numpy as np

import jaxmdp
from jaxmdp import models

jax.config.update("jax_enable_x64", True)

mdp, info = models.from_gymnasium("FrozenLake-v1", 1.0, return_info=True)
S_env = info.num_env_states
# mdp.info knows the map and Gymnasium's action order (left, down, right, up: "<v>^").
print(f"{mdp.info.name}: actions {mdp.info.action_names}, drawn {mdp.info.action_symbols!r}")


def show(policy, values):
    policy_rows = models.render_policy(mdp, policy).splitlines()
    value_rows = models.render_values(mdp, values).splitlines()
    for p_row, v_row in zip(policy_rows, value_rows, strict=True):
        print(f"  {p_row}     {v_row}")


sol = jaxmdp.solve(mdp, jaxmdp.PolicyIteration())
jaxmdp.check(sol)
print(f"FrozenLake 4x4 (slippery), {mdp.num_states} states, discount 1 (policy iteration):")
print("  policy      probability of reaching the goal")
show(sol.policy, sol.values)
print(f"from the start: {float(sol.values[0]):.4f}\n")

# A discount sweep: the transitions are shared by every member.
P, R = mdp.transitions, mdp.rewards
result = jaxmdp.sweep(
    lambda discount: jaxmdp.MDP(P, R, discount),
    jaxmdp.PolicyIteration(),
    discount=np.array([0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0]),
)
jaxmdp.check(result.solution)
print("discount  policy changes vs gamma=1   V(start)")
for j, g in enumerate(result.axes["discount"]):
    diff = int((result.policy[j, :S_env] != result.policy[-1, :S_env]).sum())
    print(f"{g:8g}  {diff:6d} states               {result.values[j, 0]:.4f}")
