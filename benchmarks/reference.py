"""Float64 reference optimal values V* for the accuracy column.

Inputs are the workload's float32 numbers upcast to float64. W1 (which includes gamma = 1, where
`I - P_pi` is singular) runs value iteration to an exact float64 fixed point; W2..W4 run policy
iteration with dense float64 solves, batched with `np.linalg.solve`. W4's big sweeps are covered
on a stratified sub-batch (`Workload.ref_indices`). The Bellman residual max |T V* - V*| is
reported with the values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from benchmarks.workloads import Workload

_CHUNK_BYTES = 256 * 2**20  # float64 working memory per chunk of MDPs


@dataclass
class Reference:
    indices: np.ndarray  # [n] MDP indices of the workload covered by `values`
    values: np.ndarray  # [n, S] float64 V*
    method: str
    iters: int  # sweeps (VI) or policy evaluations (PI), max over MDPs
    residual: float  # max over covered MDPs of max_s |T V* - V*|
    seconds: float

    def describe(self) -> dict:
        return {
            "method": self.method,
            "mdps": int(self.indices.size),
            "iters": self.iters,
            "bellman_residual": self.residual,
            "max_abs_value": float(np.abs(self.values).max()),
            "seconds": round(self.seconds, 3),
        }


def _q_values(P: np.ndarray, R: np.ndarray, g: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Q [n, S, A] for P [S, A, S] (shared) or [n, S, A, S], R [n, S, A], g [n], V [n, S]."""
    n, S, A = R.shape
    if P.ndim == 3:
        PV = (V @ P.reshape(S * A, S).T).reshape(n, S, A)
    else:
        PV = np.matmul(P.reshape(n, S * A, S), V[:, :, None]).reshape(n, S, A)
    return R + g[:, None, None] * PV


def _policy_matrix(P: np.ndarray, pol: np.ndarray) -> np.ndarray:
    """P_pi [n, S, S] from P [S, A, S] or [n, S, A, S] and policy [n, S]."""
    n, S = pol.shape
    states = np.arange(S)[None, :]
    if P.ndim == 3:
        return P[states, pol]
    return P[np.arange(n)[:, None], states, pol]


def value_iteration_exact(P, R, g, max_iters: int = 100_000) -> tuple[np.ndarray, int]:
    """Float64 VI from V = 0 until V_k+1 == V_k exactly (finite for W1's deterministic world)."""
    V = np.zeros(R.shape[:2])
    for k in range(1, max_iters + 1):
        Vn = _q_values(P, R, g, V).max(axis=2)
        if np.array_equal(Vn, V):
            return Vn, k
        V = Vn
    raise RuntimeError(f"reference VI did not reach an exact fixed point in {max_iters} sweeps")


def policy_iteration(P, R, g, max_iters: int = 200) -> tuple[np.ndarray, int]:
    """Float64 Howard policy iteration with dense solves (needs gamma < 1)."""
    n, S, _ = R.shape
    pol = R.argmax(axis=2)
    eye = np.eye(S)
    for k in range(1, max_iters + 1):
        P_pi = _policy_matrix(P, pol)
        r_pi = np.take_along_axis(R, pol[:, :, None], axis=2)[:, :, 0]
        V = np.linalg.solve(eye - g[:, None, None] * P_pi, r_pi[:, :, None])[:, :, 0]
        Q = _q_values(P, R, g, V)
        q_old = np.take_along_axis(Q, pol[:, :, None], axis=2)[:, :, 0]
        q_max = Q.max(axis=2)
        # Switch only on a strict improvement, so ties cannot make the policy cycle.
        switch = q_max > q_old + 1e-12 * (1.0 + np.abs(q_max))
        if not switch.any():
            return V, k
        pol = np.where(switch, Q.argmax(axis=2), pol)
    raise RuntimeError(f"reference PI did not converge in {max_iters} iterations")


def compute_reference(wl: Workload) -> Reference:
    """V* in float64 for the MDPs `wl.ref_indices` of workload `wl`."""
    t0 = time.perf_counter()
    idx = wl.ref_indices
    S, A = wl.S, wl.A
    exact_vi = wl.name == "W1" or bool((wl.discount[idx] >= 1).any())
    per_mdp = S * S * 8 * (1 if wl.shared_p else A + 1)
    chunk = max(1, _CHUNK_BYTES // per_mdp)
    P_shared = wl.transitions.astype(np.float64) if wl.shared_p else None
    values, iters, residual = [], 0, 0.0
    for lo in range(0, idx.size, chunk):
        sel = idx[lo : lo + chunk]
        P = P_shared if P_shared is not None else wl.transitions[sel].astype(np.float64)
        R = wl.rewards[sel].astype(np.float64)
        g = wl.discount[sel].astype(np.float64)
        V, k = value_iteration_exact(P, R, g) if exact_vi else policy_iteration(P, R, g)
        residual = max(residual, float(np.abs(_q_values(P, R, g, V).max(axis=2) - V).max()))
        values.append(V)
        iters = max(iters, k)
    method = (
        "float64 VI to an exact fixed point"
        if exact_vi
        else "float64 policy iteration, dense solves"
    )
    if idx.size < wl.B:
        method += f" (stratified sub-batch of {idx.size}/{wl.B} MDPs)"
    return Reference(idx, np.concatenate(values), method, iters, residual, time.perf_counter() - t0)
