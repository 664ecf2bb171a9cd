"""Array types that carry their shapes, read by type checkers and by the docs.

`Annotated[jax.Array, Shape("... S A")]` is `jax.Array` to a type checker (mypy runs over
the package in CI) and shows the axes in signatures and the API reference. Axis names:
`...` the batch axes (broadcast against each other), `S` states, `A` actions, `K` successor
slots of the sparse form, `T` a horizon or trajectory length. Nothing is checked at run
time (JAX's own shape errors and `jaxmdp.validate_mdp` do that), so these cost nothing
under `jit`. The jaxtyping package would check at run time too; it is not a dependency of
the core (only jax, jaxlib and numpy are).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

import jax
import numpy as np


class Shape:
    """Marker in `Annotated[...]`: the axes of an array, e.g. `Shape("... S A")`."""

    __slots__ = ("axes",)

    def __init__(self, axes: str):
        self.axes = axes

    def __repr__(self) -> str:
        return f"Shape({self.axes!r})"


# What callers may pass where an array is expected (NumPy arrays, Python numbers, JAX arrays).
ArrayLike: TypeAlias = jax.typing.ArrayLike

Values: TypeAlias = Annotated[jax.Array, Shape("... S")]
QValues: TypeAlias = Annotated[jax.Array, Shape("... S A")]
Rewards: TypeAlias = Annotated[jax.Array, Shape("... S A")]
Discount: TypeAlias = Annotated[jax.Array, Shape("...")]
DenseTransitions: TypeAlias = Annotated[jax.Array, Shape("... S A S")]
Policy: TypeAlias = Annotated[jax.Array, Shape("... S")]  # int32 actions
PerMember: TypeAlias = Annotated[jax.Array, Shape("...")]  # one number per MDP
StateIndex: TypeAlias = Annotated[jax.Array, Shape("... S A K")]  # int32 successors
Probs: TypeAlias = Annotated[jax.Array, Shape("... S A K")]
Host: TypeAlias = np.ndarray
AnyTree: TypeAlias = Any

# One MDP (no batch axes): what the Bellman kernels and the analysis functions take.
StateVector: TypeAlias = Annotated[jax.Array, Shape("S")]
StateActionArray: TypeAlias = Annotated[jax.Array, Shape("S A")]
ChainMatrix: TypeAlias = Annotated[jax.Array, Shape("S S")]
ActionsLike: TypeAlias = Annotated[jax.typing.ArrayLike, Shape("S")]  # int actions
# A deterministic policy `[S]` (int actions) or a stochastic one `[S, A]` (rows of pi(a | s)).
PolicyLike: TypeAlias = Annotated[jax.typing.ArrayLike, Shape("S | S A")]
# A start state (int) or an initial distribution `[S]`.
StartLike: TypeAlias = Annotated[jax.typing.ArrayLike, Shape("| S")]
TransitionsLike: TypeAlias = Annotated[Any, Shape("... S A S | SparseTransitions")]
RewardsLike: TypeAlias = Annotated[jax.typing.ArrayLike, Shape("... S A")]
DiscountLike: TypeAlias = Annotated[jax.typing.ArrayLike, Shape("...")]
