"""An independent plain-NumPy float64 oracle for finite discounted MDPs (no JAX here).

Written from the textbook definitions (Puterman 1994, ch. 6), not from jaxmdp's code.
Layout: transitions `P [S, A, S]` with P[s, a, s'] = p(s' | s, a), rewards `R [S, A]`
(`-inf` marks an action unavailable in that state; every state has one available action),
discount `g` in [0, 1). Everything is computed in float64.

- `q_values(P, R, g, V)`: Q(s, a) = R(s, a) + g sum_s' P(s, a, s') V(s').
- `bellman(P, R, g, V)`: (max_a Q, lowest argmax_a Q).
- `evaluate_policy(P, R, g, policy)`: V^pi from the linear system (I - g P_pi) V = r_pi.
- `policy_iteration(P, R, g)`: exact optimum (V*, policy, Q*) by Howard's algorithm.
- `value_iteration(P, R, g, tol)`: V* by successive approximation, stopped with the
  MacQueen/Porteus bounds TV + c min(d) <= V* <= TV + c max(d), c = g / (1 - g), d = TV - V;
  returns the midpoint, so the result is within `tol` of V* (up to float64 rounding).

The two solvers share only `q_values`; `tests/test_solvers_common.py` checks that they agree.
"""

from __future__ import annotations

import numpy as np


def _arrays(P, R):
    P = np.asarray(P, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    S, A = R.shape
    if P.shape != (S, A, S):
        raise ValueError(f"P must be [S, A, S] = {(S, A, S)}; got {P.shape}")
    if np.isnan(R).any() or np.isposinf(R).any():
        raise ValueError("rewards must not be NaN or +inf")
    if np.isneginf(R).all(axis=1).any():
        raise ValueError("every state needs an available action")
    return P, R


def q_values(P, R, g, V) -> np.ndarray:
    """`[S, A]` action values; unavailable actions stay at -inf."""
    P, R = _arrays(P, R)
    return R + float(g) * (P @ np.asarray(V, dtype=np.float64))


def bellman(P, R, g, V) -> tuple[np.ndarray, np.ndarray]:
    """One optimality backup: `(TV [S], greedy policy [S])`, ties to the lowest action."""
    q = q_values(P, R, g, V)
    return q.max(axis=1), q.argmax(axis=1)


def evaluate_policy(P, R, g, policy) -> np.ndarray:
    """Exact V^pi of a deterministic policy for g < 1 (linear solve)."""
    P, R = _arrays(P, R)
    S = R.shape[0]
    policy = np.asarray(policy, dtype=np.int64)
    idx = np.arange(S)
    r_pi = R[idx, policy]
    if np.isneginf(r_pi).any():
        raise ValueError("the policy takes an unavailable action")
    P_pi = P[idx, policy, :]
    return np.linalg.solve(np.eye(S) - float(g) * P_pi, r_pi)


def policy_iteration(P, R, g, *, max_iters: int = 1000):
    """Howard's policy iteration. Returns `(V* [S], optimal policy [S], Q* [S, A])`.

    Starts from the myopic policy argmax_a R(s, a) (always an available action). The
    improvement step switches only when another action is better by more than a rounding
    margin, which rules out cycling between equally good policies.
    """
    P, R = _arrays(P, R)
    policy = R.argmax(axis=1)
    for _ in range(max_iters):
        V = evaluate_policy(P, R, g, policy)
        q = q_values(P, R, g, V)
        current = q[np.arange(len(policy)), policy]
        margin = 1e-12 * (1.0 + np.abs(V).max())
        better = q.max(axis=1) > current + margin
        if not better.any():
            return V, policy, q
        policy = np.where(better, q.argmax(axis=1), policy)
    raise RuntimeError("reference policy iteration did not stabilise")


def value_iteration(P, R, g, *, tol: float = 1e-10, V0=None, max_iters: int = 2_000_000):
    """Value iteration stopped by the MacQueen/Porteus bounds (g < 1).

    Returns `(V [S], number of sweeps)` with max|V - V*| <= tol in exact arithmetic.
    Raises if the bound does not fall below `tol` (e.g. a tol under float64 resolution).
    """
    P, R = _arrays(P, R)
    g = float(g)
    if not 0.0 <= g < 1.0:
        raise ValueError("value_iteration needs 0 <= g < 1")
    V = np.zeros(R.shape[0]) if V0 is None else np.asarray(V0, dtype=np.float64)
    c = g / (1.0 - g)
    for k in range(1, max_iters + 1):
        TV = (R + g * (P @ V)).max(axis=1)
        d = TV - V
        half_width = c * (d.max() - d.min()) / 2.0
        if half_width <= tol:
            return TV + c * (d.max() + d.min()) / 2.0, k
        V = TV
    raise RuntimeError("reference value iteration did not reach tol")
