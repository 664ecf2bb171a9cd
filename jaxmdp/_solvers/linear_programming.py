"""Linear programming: the discounted MDP as one LP, solved by HiGHS (Puterman 1994, Sec. 6.9).

The primal LP (d'Epenoux 1963): for discount g < 1,

    minimise   sum_s V(s)
    subject to V(s) >= r(s, a) + g sum_s' p(s' | s, a) V(s')   for every available (s, a).

Every feasible V dominates V* (V >= T V implies V >= V*), and V* is feasible, so the unique
optimum is V*. HiGHS (through `scipy.optimize.linprog(method="highs")`) returns a basic
solution, which solves `(I - g P_pi) V = r_pi` for the policy of its basis: V* up to the
rounding of that factorisation, not an iterate. The constraint matrix `g P - E` goes to HiGHS
as a `scipy.sparse` CSR matrix (E picks each row's state), so a sparse model such as a grid
world gives an LP with O(S A K) nonzeros instead of S^2 A.

This solver runs on the host (HiGHS is a C++ library, not a JAX program): it cannot be
jitted, vmapped or differentiated, and a batch is solved member by member. It needs SciPy
(the `lp` extra). The certificate does not trust HiGHS's tolerances: `error_bound` is
computed afterwards from the Bellman residual of the values actually returned (in their
dtype), `||V - V*|| <= ||T V - V|| / (1 - g)`, plus an allowance for the rounding of that
float64 check.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp._mdp import MDP, check_shapes, leaf_batch_shapes
from jaxmdp._solution import Solution, Status
from jaxmdp._solvers.base import register_solver
from jaxmdp._sparse import is_sparse

_MISSING_SCIPY = (
    "LinearProgramming needs SciPy (HiGHS through scipy.optimize.linprog); install the `lp` "
    'extra: pip install "jaxmdp-solver[lp]"'
)
# scipy.optimize.linprog's `status` -> ours. 1: iteration or time limit; 2 infeasible and
# 3 unbounded cannot happen for valid data at g < 1 (V* is feasible and every feasible V is
# >= V*), so, like 4 (numerical difficulties), they mean the arithmetic broke down.
_LINPROG_STATUS = {0: Status.SUCCESS, 1: Status.MAX_ITERATIONS, 2: Status.NONFINITE}
_LINPROG_STATUS.update({3: Status.NONFINITE, 4: Status.NONFINITE})
# Feasibility tolerances handed to HiGHS (its defaults are 1e-7): the basic solution is exact
# anyway; tight tolerances keep HiGHS from accepting a basis whose values violate T V <= V
# by 1e-7 (the certificate below would report it, but there is no reason to lose it).
_HIGHS_TOL = 1e-10


def _linprog():
    try:
        from scipy import sparse
        from scipy.optimize import linprog
    except ImportError:
        raise ImportError(_MISSING_SCIPY) from None
    return linprog, sparse


# A pytree (no data leaves) only so that handing it to the jitted driver reaches `init` and
# its message below, instead of JAX's "error interpreting argument".
@register_solver(static=("max_iters", "time_limit"))
class LinearProgramming:
    """Exact solution of a discounted MDP as a linear program (HiGHS via SciPy), on the host.

    Call it like every solver, `jaxmdp.solve(mdp, LinearProgramming())` (outside `jit`:
    `solve` hands it the MDP before any tracing, DECISIONS.md 14). It returns the same
    `Solution` as every solver, batched by looping over the members of `mdp`'s batch shape
    (a `transitions` shared by the batch is converted to sparse form once).

    Guarantee: for a member with `Status.SUCCESS`, `error_bound` is a bound on
    `max_s |values - V*|` for the values returned, in their dtype, computed from their Bellman
    residual `residual = max_s |max_a q(s, a) - values(s)|` as
    `(residual + rounding allowance) / (1 - discount)`; `policy` is greedy for those values
    (ties: lowest action index), hence optimal once the gaps between actions exceed
    `2 error_bound`. In float64 `error_bound` is typically ~1e-13 of max|V|; in float32 the
    values are rounded to float32 and the bound says so.

    Status codes: `SUCCESS`; `INVALID_INPUT` for a discount outside [0, 1) (the LP needs
    g < 1: at g = 1 its optimum may not exist), a NaN/+inf reward, a transition probability
    that is NaN or negative, a row not summing to 1 (within `64 S eps` of the data's dtype,
    at least 1e-6), or a state without an available action; `MAX_ITERATIONS` when HiGHS
    stops at `max_iters` or `time_limit`; `NONFINITE` when HiGHS reports numerical trouble
    (or an impossible infeasible/unbounded verdict) or returns non-finite values. Members
    that did not succeed get NaN values and q, policy 0, `error_bound = inf`.

    `num_iters` counts HiGHS's iterations (simplex pivots or interior-point steps), not
    Bellman sweeps.

    Attributes:
      max_iters: cap on HiGHS iterations (None: HiGHS's default, effectively none).
      time_limit: cap in seconds on each member's LP (None: none).
    """

    max_iters: int | None = None
    time_limit: float | None = None

    def __post_init__(self):
        n = self.max_iters
        if n is not None and not (isinstance(n, (int, np.integer)) and not isinstance(n, bool)):
            raise TypeError(f"max_iters must be an int >= 1 or None; got {n!r}.")
        if n is not None and not 1 <= n <= np.iinfo(np.int32).max:
            raise ValueError(f"max_iters must be in [1, {np.iinfo(np.int32).max}]; got {n}.")
        t = self.time_limit
        if t is not None and not (
            isinstance(t, (int, float, np.floating)) and not isinstance(t, bool) and t > 0
        ):
            raise ValueError(f"time_limit must be a number of seconds > 0 or None; got {t!r}.")

    # -- the host entry point ---------------------------------------------------------------
    def host_solve(self, mdp: MDP, *, max_iters=None, values0=None) -> Solution:
        """Solves `mdp` (any batch shape) on the host; returns a `Solution`.

        Args:
          mdp: `MDP` with `transitions [..., S, A, S]`, `rewards [..., S, A]` (`-inf`:
            unavailable action), `discount [...]`, concrete (not traced).
          max_iters: accepted for `jaxmdp.solve`'s signature and ignored: the driver's cap
            counts Bellman sweeps or evaluations, which an LP does not perform. Use the
            solver's own `max_iters` (HiGHS iterations) or `time_limit`.
          values0: ignored (HiGHS through SciPy takes no starting point).

        Returns:
          `Solution` of JAX arrays in the MDP's dtype (float32 unless x64 is enabled), every
          field with the batch shape `[...]`.

        Raises:
          TypeError: `mdp` is not an `MDP`, or it is traced (inside `jit`, `vmap`, `grad`).
          ImportError: SciPy is missing (the `lp` extra).
          ValueError: inconsistent shapes.
        """
        del max_iters, values0  # documented above
        if not isinstance(mdp, MDP):
            raise TypeError(f"host_solve expects a jaxmdp.MDP; got {type(mdp).__name__}.")
        if any(isinstance(x, jax.core.Tracer) for x in mdp):
            raise TypeError(
                "LinearProgramming runs on the host (HiGHS through SciPy): it cannot be traced "
                "by jax.jit / vmap / grad. Call it on concrete arrays, outside transformations."
            )
        check_shapes(mdp)
        linprog, sparse = _linprog()
        dtype = jnp.result_type(*mdp)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.result_type(float)
        R, g = np.asarray(mdp.rewards), np.asarray(mdp.discount)
        if is_sparse(mdp.transitions):
            # Successor lists: each member's [S*A, S] CSR is built from them directly (never
            # a dense [S, A, S] array), so large sparse models fit.
            tb = mdp.transitions.batch_shape
            ns = np.broadcast_to(
                np.asarray(mdp.transitions.next_states),
                (*tb, R.shape[-2], R.shape[-1], mdp.transitions.num_successors),
            )
            pr = np.broadcast_to(np.asarray(mdp.transitions.probs), ns.shape)
            P = _SparseRows(ns, pr)
            in_eps = float(np.finfo(pr.dtype).eps) if pr.dtype.kind == "f" else 0.0
        else:
            P = np.asarray(mdp.transitions)
            in_eps = float(np.finfo(P.dtype).eps) if P.dtype.kind == "f" else 0.0
        batch = mdp.batch_shape
        shapes = leaf_batch_shapes(mdp)
        S, A = mdp.num_states, mdp.num_actions
        out = _empty(batch, S, A, dtype)
        cache: dict[tuple, object] = {}
        for idx in np.ndindex(*batch):
            ip, ir, ig = (_leaf_index(idx, s) for s in shapes)
            member = _solve_one(
                self, P[ip], R[ir], float(g[ig]), cache, ip, in_eps, dtype, linprog, sparse
            )
            for name, value in member.items():
                out[name][idx] = value
        return Solution(**{k: jnp.asarray(v) for k, v in out.items()})

    # -- not a driver solver: say how to call it ----------------------------------------------
    def _not_in_driver(self, *args, **kwargs):
        raise TypeError(
            "LinearProgramming runs on the host (HiGHS through SciPy), not inside the jitted "
            "driver: call `jaxmdp.solve(mdp, LinearProgramming())` with concrete arrays, "
            "outside jit / vmap / grad (DECISIONS.md 14)."
        )

    init = step = status = result = _not_in_driver


def _leaf_index(idx: tuple[int, ...], leaf_batch: tuple[int, ...]) -> tuple[int, ...]:
    """The index of a leaf with batch shape `leaf_batch` for batch member `idx` (broadcast)."""
    tail = idx[len(idx) - len(leaf_batch) :] if leaf_batch else ()
    return tuple(0 if n == 1 else i for i, n in zip(tail, leaf_batch, strict=True))


def _empty(batch, S, A, dtype) -> dict[str, np.ndarray]:
    np_dtype = np.dtype(dtype)
    return {
        "values": np.full((*batch, S), np.nan, np_dtype),
        "q_values": np.full((*batch, S, A), np.nan, np_dtype),
        "policy": np.zeros((*batch, S), np.int32),
        "status": np.zeros(batch, np.int32),
        "num_iters": np.zeros(batch, np.int32),
        "residual": np.full(batch, np.inf, np_dtype),
        "error_bound": np.full(batch, np.inf, np_dtype),
    }


class _SparseRows:
    """Per-member successor lists `(next_states, probs)` `[..., S, A, K]`, indexed like P."""

    def __init__(self, next_states, probs):
        self.next_states, self.probs = next_states, probs

    def __getitem__(self, idx):
        return _SparseRows(self.next_states[idx], self.probs[idx])

    def csr(self, sparse):
        S, A, K = self.next_states.shape
        rows = np.repeat(np.arange(S * A), K)
        m = sparse.csr_matrix(
            (self.probs.reshape(-1).astype(np.float64), (rows, self.next_states.reshape(-1))),
            shape=(S * A, S),
        )
        m.sum_duplicates()
        return m


def _invalid(P, R, g, in_eps) -> bool:
    """Gross data errors that make the LP meaningless (validation proper is `validate_mdp`)."""
    if isinstance(P, _SparseRows):
        S = R.shape[-2]
        if not (np.isfinite(g) and 0 <= g < 1):
            return True
        if np.isnan(R).any() or (R == np.inf).any() or not (R > -np.inf).any(axis=-1).all():
            return True
        p, ns = P.probs, P.next_states
        if not np.isfinite(p).all() or (p < 0).any() or (ns < 0).any() or (ns >= S).any():
            return True
        tol = max(1e-6, 64 * p.shape[-1] * in_eps)
        return bool((np.abs(p.sum(axis=-1) - 1) > tol)[R > -np.inf].any())
    S = P.shape[-1]
    if not (np.isfinite(g) and 0 <= g < 1):
        return True
    if np.isnan(R).any() or (R == np.inf).any():
        return True
    available = R > -np.inf
    if not available.any(axis=-1).all():
        return True
    if not np.isfinite(P).all() or (P < 0).any():
        return True
    tol = max(1e-6, 64 * S * in_eps)
    return bool((np.abs(P.sum(axis=-1) - 1) > tol)[available].any())


def _solve_one(solver, P, R, g, cache, key, in_eps, dtype, linprog, sparse) -> dict:
    """One member: `{field: value}` for the fields it sets (the rest keep `_empty`'s)."""
    S, A = R.shape
    if _invalid(P, R, g, in_eps):
        return {"status": Status.INVALID_INPUT}
    R64 = R.astype(np.float64, copy=False)
    # The [S*A, S] transition matrix in CSR form, once per distinct transitions leaf.
    if key not in cache:
        if isinstance(P, _SparseRows):
            cache[key] = P.csr(sparse)
        else:
            cache[key] = sparse.csr_matrix(P.astype(np.float64, copy=False).reshape(S * A, S))
    P_sa = cache[key]
    rows = np.flatnonzero(R64.reshape(-1) > -np.inf)  # available (s, a) pairs
    states = rows // A
    n = len(rows)
    E = sparse.csr_matrix((np.ones(n), (np.arange(n), states)), shape=(n, S))
    A_ub = (g * P_sa[rows] - E).tocsr()
    options = {"primal_feasibility_tolerance": _HIGHS_TOL, "dual_feasibility_tolerance": _HIGHS_TOL}
    if solver.max_iters is not None:
        options["maxiter"] = int(solver.max_iters)
    if solver.time_limit is not None:
        options["time_limit"] = float(solver.time_limit)
    res = linprog(
        np.ones(S),
        A_ub=A_ub,
        b_ub=-R64.reshape(-1)[rows],
        bounds=(None, None),
        method="highs",
        options=options,
    )
    nit = int(min(getattr(res, "nit", 0) or 0, np.iinfo(np.int32).max))
    code = _LINPROG_STATUS.get(int(res.status), Status.NONFINITE)
    x = getattr(res, "x", None)
    if code != Status.SUCCESS or x is None or not np.isfinite(x).all():
        return {"status": code if code != Status.SUCCESS else Status.NONFINITE, "num_iters": nit}
    # Certify the values as returned (rounded to the output dtype), in float64.
    values = (np.asarray(x) + 0.0).astype(dtype)  # + 0.0: no negative zeros
    v = values.astype(np.float64)
    q = R64 + g * (P_sa @ v).reshape(S, A)  # -inf where unavailable
    tv = q.max(axis=-1)
    residual = float(np.max(np.abs(tv - v)))
    # Rounding of this float64 check: the product sums S terms (rows sum to 1), each with a
    # relative error below S eps; the rest is a few operations on numbers <= max|R| + max|V|.
    eps = float(np.finfo(np.float64).eps)
    scale = float(np.max(np.abs(R64[np.isfinite(R64)]))) + float(np.max(np.abs(v)))
    allowance = (S + 4) * eps * scale
    bound = (residual + allowance) / (1 - g)
    return {
        "values": values,
        "q_values": q.astype(dtype),
        "policy": np.argmax(q, axis=-1).astype(np.int32),
        "status": Status.SUCCESS,
        "num_iters": nit,
        "residual": _round_up(residual, dtype),
        "error_bound": _round_up(bound, dtype),
    }


def _round_up(x: float, dtype) -> np.floating:
    """`x` in `dtype`, rounded up (a bound must stay a bound after the cast)."""
    y = np.asarray(x).astype(dtype)
    return np.nextafter(y, np.asarray(np.inf, y.dtype)) if y < x else y
