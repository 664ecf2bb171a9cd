"""jaxmdp: exact solvers for finite MDPs in JAX, batched, jitted and differentiable.

Public API: the names below. Modules starting with `_` are private.
"""

import importlib.metadata

from jaxmdp import bellman as bellman
from jaxmdp._construct import from_pymdptoolbox as from_pymdptoolbox
from jaxmdp._construct import make_mdp as make_mdp
from jaxmdp._construct import to_pymdptoolbox as to_pymdptoolbox
from jaxmdp._mdp import MDP as MDP
from jaxmdp._solution import ConvergenceError as ConvergenceError
from jaxmdp._solution import Solution as Solution
from jaxmdp._solution import Status as Status
from jaxmdp._solution import check as check
from jaxmdp._solve import solve as solve
from jaxmdp._solvers.modified_policy_iteration import (
    ModifiedPolicyIteration as ModifiedPolicyIteration,
)
from jaxmdp._solvers.policy_iteration import PolicyIteration as PolicyIteration
from jaxmdp._solvers.value_iteration import ValueIteration as ValueIteration
from jaxmdp._validate import InvalidMDPError as InvalidMDPError
from jaxmdp._validate import validate_mdp as validate_mdp

try:
    __version__ = importlib.metadata.version("jaxmdp-solver")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = (
    "MDP",
    "ConvergenceError",
    "InvalidMDPError",
    "ModifiedPolicyIteration",
    "PolicyIteration",
    "Solution",
    "Status",
    "ValueIteration",
    "bellman",
    "check",
    "from_pymdptoolbox",
    "make_mdp",
    "solve",
    "to_pymdptoolbox",
    "validate_mdp",
)
