"""How a batch is laid out: which leaf carries which batch axis; squeezing, flattening, vmaps.

A solve's inputs travel as one pytree `(mdp, values0)`. Every leaf ends in the axes of ONE
member (its "core": 3 for each `transitions` leaf, dense `[S, A, S]` or sparse
`[S, A, K]`; 2 for `rewards`; 0 for `discount`; 1 for `values0`); the axes before the core
are batch axes, broadcast against the batch shape (NumPy rules). A leaf "carries" a batch
axis when it has that axis with the batch's size (> 1); absent and size-1 axes are
squeezed away and the leaf is shared along them (`in_axes=None`), so a `transitions`
without batch axes is never copied.

Nothing here chooses a strategy (that is `jaxmdp._exec.plan`); the strategies and
`backward_induction` use these helpers to map one member's function over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp._mdp import MDP

# Core ndims per field of `(mdp, values0)`: transitions, rewards, discount, values0.
_FIELD_CORES = (3, 2, 0, 1)
_FIELD_KINDS = ("transitions", "rewards", "discount", "values0")


def _per_field(tree, fields):
    """One value per leaf of `(mdp, values0)`, taken from `fields` by the leaf's MDP field."""
    mdp, values0 = tree
    out = []
    for sub, v in zip((*mdp, values0), fields, strict=True):
        out += [v] * len(jax.tree.leaves(sub))
    return tuple(out)


def cores(tree) -> tuple[int, ...]:
    """Per leaf of `(mdp, values0)`: how many trailing axes belong to one member."""
    return _per_field(tree, _FIELD_CORES)


def kinds(tree) -> tuple[str, ...]:
    """Per leaf of `(mdp, values0)`: the field it belongs to ("transitions", ...)."""
    return _per_field(tree, _FIELD_KINDS)


def leaf_batch_shapes(tree) -> tuple[tuple[int, ...], ...]:
    """Per leaf of `(mdp, values0)`: its batch axes (the shape before the core)."""
    return tuple(
        tuple(np.shape(x)[: np.ndim(x) - c])
        for x, c in zip(jax.tree.leaves(tree), cores(tree), strict=True)
    )


def carried(leaf_shapes, batch_shape) -> tuple[tuple[bool, ...], ...]:
    """Per leaf, per batch axis: does the leaf really carry that axis (size > 1)?"""
    n = len(batch_shape)
    out = []
    for lb in leaf_shapes:
        off = n - len(lb)
        out.append(
            tuple(
                i >= off and lb[i - off] == batch_shape[i] and batch_shape[i] != 1 for i in range(n)
            )
        )
    return tuple(out)


def flattenable(carried_axes) -> bool:
    """Every leaf has all the batch axes or none: the batch flattens to `[B, ...]` leaves."""
    return all(all(c) or not any(c) for c in carried_axes)


def _squeeze_leaf(x, core: int, batch_shape, carried_row):
    """Drop this leaf's batch axes that are not carried (size 1), keep the carried ones."""
    n = len(batch_shape)
    lead = np.ndim(x) - core
    off = n - lead
    keep = [i - off for i in range(n) if i >= off and carried_row[i]]
    shape = np.shape(x)
    return jnp.reshape(x, tuple(shape[j] for j in keep) + tuple(shape[lead:]))


def squeeze(tree, batch_shape, carried_axes):
    """`(mdp, values0)` with only the carried batch axes left on each leaf."""
    leaves, treedef = jax.tree.flatten(tree)
    out = [
        _squeeze_leaf(x, c, batch_shape, row)
        for x, c, row in zip(leaves, cores(tree), carried_axes, strict=True)
    ]
    return jax.tree.unflatten(treedef, out)


def flatten(tree, batch_shape, carried_axes):
    """Squeezed `(mdp, values0)` of a `flattenable` batch as `[B, ...]` leaves (carried) or
    shared ones, and the per-leaf `in_axes` tree (0 or None) that maps it."""
    B = int(np.prod(batch_shape))
    leaves, treedef = jax.tree.flatten(tree)
    flags = tuple(all(c) and bool(c) for c in carried_axes)
    flat = [
        jnp.reshape(x, (B,) + x.shape[x.ndim - k :] if k else (B,)) if f else x
        for x, f, k in zip(leaves, flags, cores(tree), strict=True)
    ]
    axes = jax.tree.unflatten(treedef, [0 if f else None for f in flags])
    return jax.tree.unflatten(treedef, flat), axes


def vmap_batch(fn, tree, carried_axes):
    """`fn(tree, carry, solver)` of one member, mapped over every batch axis some leaf
    carries.

    One `vmap` per batch axis (innermost last), each leaf of `tree` mapped only on its
    carried axes, `carry` (a member's loop state, or None) on every mapped axis; `tree` is
    the squeezed `(mdp, values0)` (for its structure only). The solver is not mapped.
    """
    treedef = jax.tree.structure(tree)
    n = len(carried_axes[0]) if carried_axes else 0
    for axis in reversed(range(n)):
        flags = [0 if row[axis] else None for row in carried_axes]
        if any(a is not None for a in flags):
            fn = jax.vmap(fn, in_axes=(jax.tree.unflatten(treedef, flags), 0, None))
    return fn


def restore(out, batch_shape, core_ndims):
    """Reshape each field of a mapped result to `batch_shape + core`: batch axes that no leaf
    carried (size 1) come back as size-1 axes."""
    return type(out)(
        *(
            jnp.reshape(x, tuple(batch_shape) + (x.shape[x.ndim - k :] if k else ()))
            for x, k in zip(out, core_ndims, strict=True)
        )
    )


def as_arrays(mdp: MDP) -> MDP:
    """`mdp` with JAX arrays as leaves (host arrays are moved once, here)."""
    return jax.tree.map(lambda x: x if isinstance(x, jax.Array) else jnp.asarray(x), mdp)
