"""jaxmdp: exact solvers for finite MDPs in JAX, batched, jitted and differentiable.

Public API: the names below. Modules starting with `_` are private.
"""

import importlib.metadata

from jaxmdp import bellman as bellman
from jaxmdp import models as models
from jaxmdp._average_reward import AverageRewardSolution as AverageRewardSolution
from jaxmdp._average_reward import solve_average_reward as solve_average_reward

# checked at the boundary (jaxmdp._boundary): concrete arguments raise naming them
from jaxmdp._boundary import backward_induction as backward_induction
from jaxmdp._boundary import convergence_history as convergence_history
from jaxmdp._boundary import make_mdp as make_mdp
from jaxmdp._boundary import occupancy as occupancy
from jaxmdp._boundary import policy_q_values as policy_q_values
from jaxmdp._boundary import policy_values as policy_values
from jaxmdp._boundary import state_action_occupancy as state_action_occupancy
from jaxmdp._boundary import stationary_distribution as stationary_distribution
from jaxmdp._caches import clear_caches as clear_caches
from jaxmdp._construct import from_pymdptoolbox as from_pymdptoolbox
from jaxmdp._construct import to_pymdptoolbox as to_pymdptoolbox
from jaxmdp._history import History as History
from jaxmdp._mdp import MDP as MDP
from jaxmdp._mdp import ModelInfo as ModelInfo
from jaxmdp._qlearning import QLearningResult as QLearningResult
from jaxmdp._qlearning import q_learning as q_learning
from jaxmdp._qlearning import q_learning_batch as q_learning_batch
from jaxmdp._simulate import MonteCarloEstimate as MonteCarloEstimate
from jaxmdp._simulate import Trajectory as Trajectory
from jaxmdp._simulate import monte_carlo_value as monte_carlo_value
from jaxmdp._simulate import rollout as rollout
from jaxmdp._simulate import rollouts as rollouts
from jaxmdp._solution import ConvergenceError as ConvergenceError
from jaxmdp._solution import Solution as Solution
from jaxmdp._solution import Status as Status
from jaxmdp._solution import check as check
from jaxmdp._solve import solve as solve
from jaxmdp._solvers.anderson import AndersonValueIteration as AndersonValueIteration
from jaxmdp._solvers.finite_horizon import FiniteHorizonSolution as FiniteHorizonSolution
from jaxmdp._solvers.gauss_seidel import GaussSeidelValueIteration as GaussSeidelValueIteration
from jaxmdp._solvers.linear_programming import LinearProgramming as LinearProgramming
from jaxmdp._solvers.modified_policy_iteration import (
    ModifiedPolicyIteration as ModifiedPolicyIteration,
)
from jaxmdp._solvers.policy_iteration import PolicyIteration as PolicyIteration
from jaxmdp._solvers.relative_value_iteration import (
    RelativeValueIteration as RelativeValueIteration,
)
from jaxmdp._solvers.soft_value_iteration import SoftValueIteration as SoftValueIteration
from jaxmdp._solvers.soft_value_iteration import soft_policy as soft_policy
from jaxmdp._solvers.value_iteration import ValueIteration as ValueIteration
from jaxmdp._sparse import SparseTransitions as SparseTransitions
from jaxmdp._sparse import from_scipy as from_scipy
from jaxmdp._sparse import to_dense as to_dense
from jaxmdp._sparse import to_scipy as to_scipy
from jaxmdp._sparse import to_sparse as to_sparse
from jaxmdp._sweep import lower_sweep as lower_sweep
from jaxmdp._sweep import sweep as sweep
from jaxmdp._sweep_result import SweepResult as SweepResult
from jaxmdp._validate import InvalidMDPError as InvalidMDPError
from jaxmdp._validate import validate_mdp as validate_mdp

try:
    __version__ = importlib.metadata.version("jaxmdp-solver")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = (
    "MDP",
    "AndersonValueIteration",
    "AverageRewardSolution",
    "ConvergenceError",
    "FiniteHorizonSolution",
    "GaussSeidelValueIteration",
    "History",
    "InvalidMDPError",
    "LinearProgramming",
    "ModelInfo",
    "ModifiedPolicyIteration",
    "MonteCarloEstimate",
    "PolicyIteration",
    "QLearningResult",
    "RelativeValueIteration",
    "Solution",
    "SoftValueIteration",
    "SparseTransitions",
    "Status",
    "SweepResult",
    "Trajectory",
    "ValueIteration",
    "backward_induction",
    "bellman",
    "check",
    "clear_caches",
    "convergence_history",
    "from_pymdptoolbox",
    "from_scipy",
    "lower_sweep",
    "make_mdp",
    "models",
    "monte_carlo_value",
    "occupancy",
    "policy_q_values",
    "policy_values",
    "q_learning",
    "q_learning_batch",
    "rollout",
    "rollouts",
    "soft_policy",
    "solve",
    "solve_average_reward",
    "state_action_occupancy",
    "stationary_distribution",
    "sweep",
    "to_dense",
    "to_pymdptoolbox",
    "to_scipy",
    "to_sparse",
    "validate_mdp",
)
