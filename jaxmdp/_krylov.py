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

The GMRES is written here with plain `lax` loops rather than taken from
`jax.scipy.sparse.linalg.gmres`, which wraps itself in a second `custom_linear_solve`: under
`vmap` (a batch of sparse MDPs) JAX batches the nested solves' jaxprs to a fixed point, and
the nesting made tracing, not XLA, most of the first call's time (DECISIONS 25). Policy
iteration's loop, whose MDP is never differentiated, calls it without any wrapper
(`differentiable=False`). The algorithm is the usual one: restarted GMRES (Saad & Schultz
1986), Arnoldi with classical Gram-Schmidt (a second pass where the first cancelled), and
Givens rotations, so the residual norm is known after every step and a restart stops as
soon as it meets the tolerance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular

# Krylov space per restart and restarts: at most RESTART * MAX_RESTARTS operator products
# per solve (and as many again for the refinement); GMRES stops early once converged.
RESTART = 32
MAX_RESTARTS = 60


def _restarted_gmres(matvec, b: jax.Array, rtol, restarts: int = MAX_RESTARTS) -> jax.Array:
    """`x` with `||b - matvec(x)||_2 <= rtol ||b||_2`, or after `restarts` restarts.

    Restarts of `m = min(RESTART, n)` Arnoldi steps from `x = 0`; `V [m + 1, n]` is the
    orthonormal Krylov basis, `H [m + 1, m]` the Hessenberg matrix kept triangular by Givens
    rotations `(cs, sn)` as it grows, `g` the rotated `||r|| e_1`: `|g[j]|` is the residual
    norm after `j` steps, so a restart ends as soon as it is small enough.
    """
    n = b.shape[-1]
    m = min(RESTART, n)
    dtype = b.dtype
    atol = rtol * jnp.linalg.norm(b)
    tiny = jnp.finfo(dtype).tiny
    rows = jnp.arange(m + 1)

    def arnoldi_step(state):
        j, V, H, cs, sn, g = state
        w = matvec(V[j])

        def project(w):  # one classical Gram-Schmidt pass against V[:j + 1]
            c = jnp.where(rows <= j, V @ w, 0)
            return w - c @ V, c

        norm_in = jnp.linalg.norm(w)
        w, h = project(w)
        norm_w = jnp.linalg.norm(w)

        def again(args):  # "twice is enough" (Kahan): a second pass where the first cancelled
            w, h = args
            w, c = project(w)
            return w, h + c

        w, h = lax.cond(norm_w < norm_in / 2**0.5, again, lambda args: args, (w, h))
        norm_w = jnp.linalg.norm(w)
        V = V.at[j + 1].set(w / jnp.maximum(norm_w, tiny))
        h = h.at[j + 1].set(norm_w)

        def rotate(i, col):  # the earlier rotations, in order
            a, c = col[i], col[i + 1]
            return col.at[i].set(cs[i] * a + sn[i] * c).at[i + 1].set(cs[i] * c - sn[i] * a)

        h = lax.fori_loop(0, j, rotate, h)
        r = jnp.hypot(h[j], h[j + 1])
        c_j = jnp.where(r > 0, h[j] / jnp.maximum(r, tiny), 1)
        s_j = jnp.where(r > 0, h[j + 1] / jnp.maximum(r, tiny), 0)
        H = H.at[:, j].set(h.at[j].set(r).at[j + 1].set(0))
        g = g.at[j + 1].set(-s_j * g[j]).at[j].set(c_j * g[j])
        return j + 1, V, H, cs.at[j].set(c_j), sn.at[j].set(s_j), g

    def restart(state):
        x, k, _ = state
        r = b - matvec(x)
        beta = jnp.linalg.norm(r)
        V = jnp.zeros((m + 1, n), dtype).at[0].set(r / jnp.maximum(beta, tiny))
        first = (
            jnp.zeros((), jnp.int32),
            V,
            jnp.zeros((m + 1, m), dtype),
            jnp.zeros(m, dtype),
            jnp.zeros(m, dtype),
            jnp.zeros(m + 1, dtype).at[0].set(beta),
        )
        j, V, H, _, _, g = lax.while_loop(
            lambda s: (s[0] < m) & (jnp.abs(s[5][s[0]]) > atol), arnoldi_step, first
        )
        # y from the triangular R[:j, :j] y = g[:j] (identity rows beyond the j steps taken)
        live = jnp.arange(m) < j
        R = jnp.where(live[:, None] & live[None, :], H[:m], jnp.eye(m, dtype=dtype))
        y = solve_triangular(R, jnp.where(live, g[:m], 0), lower=False)
        return x + y @ V[:m], k + 1, jnp.abs(g[j])

    x0 = jnp.zeros_like(b)
    state = (x0, jnp.zeros((), jnp.int32), jnp.linalg.norm(b))
    x, _, _ = lax.while_loop(lambda s: (s[1] < restarts) & (s[2] > atol), restart, state)
    return x


def _gmres(matvec, b):
    """`x` with `matvec(x) ~= b`: GMRES to `8 eps` relative residual, then one refinement
    (the residual recomputed, and one restart's worth of GMRES on it: that step removes
    what rounding left in `x`; more restarts on a residual at the rounding floor only chase
    noise)."""
    rtol = 8 * jnp.finfo(b.dtype).eps
    x = _restarted_gmres(matvec, b, rtol)
    return x + _restarted_gmres(matvec, b - matvec(x), rtol, restarts=1)


def policy_system(
    op,
    rhs: jax.Array,
    discount,
    *,
    transpose: bool = False,
    free=None,
    differentiable: bool = True,
):
    """Solve `M x = rhs` with `M = I - g D P_pi` (`transpose`: `M^T x = rhs`).

    Args:
      op: a policy operator (`mv`, `rmv`; `jaxmdp._operators`).
      rhs: `[S]`.
      discount: `[]` g (the system is non-singular for g < 1, or where `free` pins the
        recurrent states at g = 1).
      transpose: solve the transposed system (occupancies, reverse-mode gradients).
      free: optional `[S]` bool; `D = diag(free)`: rows of states that are not free are
        identity rows (pinned states; their right-hand side is their value).
      differentiable: static; `False` runs GMRES bare, without `custom_linear_solve`: for
        callers whose inputs are never differentiated (policy iteration's loop runs on a
        `stop_gradient` MDP), where the wrapper's only effect is its cost under `vmap`
        (its batching rule traces the solve, the transposed solve and both products
        again until their batch axes agree).

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
    if not differentiable:
        return _gmres(a, rhs)
    return lax.custom_linear_solve(a, rhs, solve=_gmres, transpose_solve=_gmres)
