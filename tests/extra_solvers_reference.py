"""Plain float64 NumPy references (no JAX) for the soft, Gauss-Seidel, accelerated,
finite-horizon and average-reward solvers.

Layout as in jaxmdp: transitions `[S, A, S]`, rewards `[S, A]` (`-inf` = unavailable).
"""

from __future__ import annotations

import itertools

import numpy as np


def random_mdp(rng, S, A, *, successors=None, unavailable=0):
    """`(P [S, A, S], R [S, A])`: Dirichlet rows (optionally on `successors` random next
    states), uniform rewards, `unavailable` random actions set to -inf (never a whole state)."""
    P = np.zeros((S, A, S))
    for s, a in itertools.product(range(S), range(A)):
        k = S if successors is None else successors
        nxt = rng.choice(S, size=k, replace=False)
        P[s, a, nxt] = rng.dirichlet(np.ones(k))
    R = rng.random((S, A))
    for s in rng.choice(S, size=unavailable, replace=False):
        R[s, rng.integers(1, A)] = -np.inf
    return P, R


def q_values(P, R, g, V):
    return R + g * (P @ V)


def value_iteration(P, R, g, *, tol=1e-13, max_iters=10**7):
    """V* by plain VI to a sup-norm change below `tol` (error <= tol g / (1 - g))."""
    V = np.zeros(R.shape[0])
    for _ in range(max_iters):
        new = q_values(P, R, g, V).max(axis=1)
        if np.max(np.abs(new - V)) < tol:
            return new
        V = new
    raise RuntimeError("reference VI did not converge")


def soft_value_iteration(P, R, g, temperature, *, tol=1e-13, max_iters=10**7):
    """Soft V* = fixed point of V = t log sum_a exp((R + g P V) / t); -inf actions add 0."""
    V = np.zeros(R.shape[0])
    for _ in range(max_iters):
        q = q_values(P, R, g, V) / temperature
        m = q.max(axis=1, keepdims=True)
        new = temperature * (m[:, 0] + np.log(np.exp(q - m).sum(axis=1)))
        if np.max(np.abs(new - V)) < tol:
            return new
        V = new
    raise RuntimeError("reference soft VI did not converge")


def softmax_policy(q, temperature):
    z = q / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def evaluate_policy(P, R, g, policy):
    """V^pi of a deterministic policy (g < 1), by a dense solve."""
    S = R.shape[0]
    idx = np.arange(S)
    return np.linalg.solve(np.eye(S) - g * P[idx, policy], R[idx, policy])


def gauss_seidel(P, R, g, thr, *, max_iters=10**6):
    """In-place sweeps until max|V_{k+1} - V_k| < thr; returns (V, sweeps)."""
    S = R.shape[0]
    V = np.zeros(S)
    for k in range(1, max_iters + 1):
        old = V.copy()
        for s in range(S):
            V[s] = np.max(R[s] + g * P[s] @ V)
        if np.max(np.abs(V - old)) < thr:
            return V, k
    raise RuntimeError("reference Gauss-Seidel did not converge")


def backward_induction(P, R, g, T, terminal=None):
    """`(values [T+1, S], policy [T, S])`, index t = time step t."""
    S = R.shape[0]
    V = np.zeros((T + 1, S))
    V[T] = 0 if terminal is None else terminal
    pol = np.zeros((T, S), dtype=int)
    for t in range(T - 1, -1, -1):
        q = q_values(P, R, g, V[t + 1])
        V[t], pol[t] = q.max(axis=1), q.argmax(axis=1)
    return V, pol


def policy_gain(P, R, policy):
    """Average reward of a deterministic policy whose chain has ONE recurrent class."""
    S = R.shape[0]
    idx = np.arange(S)
    Ppi, rpi = P[idx, policy], R[idx, policy]
    # Stationary distribution: mu (Ppi - I) = 0, sum mu = 1 (least squares, unique if unichain).
    a = np.vstack([(Ppi - np.eye(S)).T, np.ones(S)])
    b = np.concatenate([np.zeros(S), [1.0]])
    mu = np.linalg.lstsq(a, b, rcond=None)[0]
    return float(mu @ rpi)


def optimal_gain(P, R):
    """Brute force over all deterministic policies (unichain models, tiny S and A)."""
    S, A = R.shape
    best = -np.inf
    for policy in itertools.product(range(A), repeat=S):
        policy = np.array(policy)
        if np.any(np.isneginf(R[np.arange(S), policy])):
            continue
        best = max(best, policy_gain(P, R, policy))
    return best


def inventory():
    """Puterman (2005) Sec. 3.2 / 4.6.1 inventory problem, as in QuantEcon's test_ddp.py.

    Returns `(P [4, 4, 4], R [4, 4] with -inf, (s_indices, a_indices, R_sa, Q_sa))`, the
    last in QuantEcon's state-action-pair form.
    """
    s_idx = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3]
    a_idx = [0, 1, 2, 3, 0, 1, 2, 0, 1, 0]
    r = [0.0, -1.0, -2.0, -5.0, 5.0, 0.0, -3.0, 6.0, -1.0, 5.0]
    q = [
        [1.0, 0, 0, 0],
        [0.75, 0.25, 0, 0],
        [0.25, 0.5, 0.25, 0],
        [0, 0.25, 0.5, 0.25],
        [0.75, 0.25, 0, 0],
        [0.25, 0.5, 0.25, 0],
        [0, 0.25, 0.5, 0.25],
        [0.25, 0.5, 0.25, 0],
        [0, 0.25, 0.5, 0.25],
        [0, 0.25, 0.5, 0.25],
    ]
    P = np.zeros((4, 4, 4))
    P[:, :, 0] = 1.0  # unavailable actions: any valid row
    R = np.full((4, 4), -np.inf)
    for s, a, rr, row in zip(s_idx, a_idx, r, q, strict=True):
        P[s, a], R[s, a] = row, rr
    return P, R, (s_idx, a_idx, r, q)
