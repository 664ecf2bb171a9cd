"""Model builders: grid worlds, random MDPs, textbook examples, imports and conversions.

Every builder returns a `jaxmdp.MDP`. Structure (layouts, sizes) is static Python; numeric
parameters (rewards, slip, discount, ...) may be traced, so builders work under `jit` and
`vmap`. Concrete arguments are checked at the boundary (a `slip` of 1.5 or a `num_states`
of 2.7 raise, naming the argument); traced ones cannot be. Builders that know what their
states and actions mean attach a `jaxmdp.ModelInfo` (`mdp.info`: action names and symbols,
grid layout, terminal states), which `render_policy` / `render_values` use. Modules
starting with `_` are private.
"""

from jaxmdp.models._classic import CUT as CUT
from jaxmdp.models._classic import WAIT as WAIT
from jaxmdp.models._classic import forest as forest
from jaxmdp.models._classic import puterman_two_state as puterman_two_state
from jaxmdp.models._classic import small as small
from jaxmdp.models._convert import from_quantecon as from_quantecon
from jaxmdp.models._convert import to_quantecon as to_quantecon
from jaxmdp.models._gridworld import ACTION_NAMES as ACTION_NAMES
from jaxmdp.models._gridworld import ARROWS as ARROWS
from jaxmdp.models._gridworld import DOWN as DOWN
from jaxmdp.models._gridworld import LEFT as LEFT
from jaxmdp.models._gridworld import RIGHT as RIGHT
from jaxmdp.models._gridworld import UP as UP
from jaxmdp.models._gridworld import gridworld as gridworld
from jaxmdp.models._gymnasium import GymnasiumInfo as GymnasiumInfo
from jaxmdp.models._gymnasium import from_gymnasium as from_gymnasium
from jaxmdp.models._layout import RUSSELL_NORVIG_4X3 as RUSSELL_NORVIG_4X3
from jaxmdp.models._layout import GridLayout as GridLayout
from jaxmdp.models._random import random_mdp as random_mdp
from jaxmdp.models._render import render_policy as render_policy
from jaxmdp.models._render import render_values as render_values

__all__ = (
    "ACTION_NAMES",
    "ARROWS",
    "CUT",
    "DOWN",
    "LEFT",
    "RIGHT",
    "RUSSELL_NORVIG_4X3",
    "UP",
    "WAIT",
    "GridLayout",
    "GymnasiumInfo",
    "forest",
    "from_gymnasium",
    "from_quantecon",
    "gridworld",
    "puterman_two_state",
    "random_mdp",
    "render_policy",
    "render_values",
    "small",
    "to_quantecon",
)
