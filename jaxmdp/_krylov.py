"""A policy's linear systems without a factorisation: restarted GMRES through the operator.

For the sparse transitions form, `I - g P_pi` is never built: policy evaluation
(`(I - g P_pi) v = r_pi`), occupancies (`(I - g P_pi^T) d = mu`) and implicit gradients
solve it with GMRES (Saad & Schultz 1986; `jax.scipy.sparse.linalg.gmres`), whose only
access to the matrix is the policy operator's `mv` (a gather over the successor lists)
and, for the transposed system, its transpose (`rmv`, a scatter-add).

Accuracy: GMRES runs to a relative residual `||b - M x||_2 <= 8 eps ||b||_2` or its
restart budget, then one step of iterative refinement (the residual recomputed and solved
again). Nothing is promised from the solve itself: callers certify what they return from an
actual backup (policy iteration's `error_bound` is `max|T V - V| / (1 - g)` of the returned
values, whatever the evaluation's error), or document the residual. For `g < 1`,
`M = I - g P_pi` is non-singular with `||M^-1||_inf <= 1 / (1 - g)`, so an evaluation with
residual `r` is within `||r||_inf / (1 - g)` of V^pi.

Both systems are wrapped in `lax.custom_linear_solve`, so they are differentiable and
transposable (reverse mode through an evaluation uses the transposed system, solved the same
way), under `jit` and `vmap`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.sparse.linalg import gmres

# Krylov space per restart and restarts: at most RESTART * MAX_RESTARTS operator products
# per solve (and as many again for the refinement); GMRES stops early once converged.
RESTART = 32
MAX_RESTARTS = 60


def _gmres(matvec, b):
    """`x` with `matvec(x) ~= b`: GMRES, then one refinement step."""
    n = b.shape[-1]
    eps = jnp.finfo(b.dtype).eps
    kw = dict(tol=8 * eps, restart=min(RESTART, n), maxiter=MAX_RESTARTS)
    kw["solve_method"] = "incremental"  # stops within a restart once converged
    x, _ = gmres(matvec, b, **kw)
    dx, _ = gmres(matvec, b - matvec(x), **kw)
    return x + dx


def policy_system(op, rhs: jax.Array, discount, *, transpose: bool = False, free=None):
    """Solve `M x = rhs` with `M = I - g D P_pi` (`transpose`: `M^T x = rhs`).

    Args:
      op: a policy operator (`mv`, `rmv`; `jaxmdp._operators`).
      rhs: `[S]`.
      discount: `[]` g (the system is non-singular for g < 1, or where `free` pins the
        recurrent states at g = 1).
      transpose: solve the transposed system (occupancies, reverse-mode gradients).
      free: optional `[S]` bool; `D = diag(free)`: rows of states that are not free are
        identity rows (pinned states; their right-hand side is their value).

    Returns:
      `[S]` x.
    """
    g = jnp.asarray(discount, rhs.dtype)
    keep = jnp.ones(rhs.shape, bool) if free is None else free

    def matvec(x):  # M x = x - g D P x
        return x - g * jnp.where(keep, op.mv(x), jnp.zeros((), x.dtype))

    def rmatvec(u):  # M^T u = u - g P^T D u
        return u - g * op.rmv(jnp.where(keep, u, jnp.zeros((), u.dtype)))

    a = rmatvec if transpose else matvec
    return lax.custom_linear_solve(a, rhs, solve=_gmres, transpose_solve=_gmres)
