"""Bellman kernels on ONE MDP: the building blocks the solvers use, for your own algorithms.

Each function takes one MDP (no batch axes; `jax.vmap` it for batches) with dense
`[S, A, S]` or sparse transitions, and is jittable and differentiable.
"""

from jaxmdp._bellman import backup as backup
from jaxmdp._bellman import evaluate_policy as evaluate_policy
from jaxmdp._bellman import evaluate_policy_iterative as evaluate_policy_iterative
from jaxmdp._bellman import greedy_policy as greedy_policy
from jaxmdp._bellman import policy_backup as policy_backup
from jaxmdp._bellman import policy_rewards as policy_rewards
from jaxmdp._bellman import policy_transitions as policy_transitions
from jaxmdp._bellman import q_values as q_values

__all__ = (
    "backup",
    "evaluate_policy",
    "evaluate_policy_iterative",
    "greedy_policy",
    "policy_backup",
    "policy_rewards",
    "policy_transitions",
    "q_values",
)
