"""Hand-written batched NumPy value iteration (and policy iteration for W3), float32.

Layout is actions outermost, prepared once outside the timed region (BASELINES.md: the
`(B, S, A).max(-1)` reduction over a short innermost axis cost 3x the W4 GEMM):

- shared P (W1, W4): `P (A*S, S)`, `V (S, B)`; one GEMM per sweep, `Q (A, S, B)`, max over axis 0;
- independent P (W2): `P (B, A*S, S)`, `V (B, S)`; one batched matvec (`np.matmul`) per sweep;
- one MDP (W3): `P (A*S, S)`, `V (S,)`; one sgemv per sweep. PI: `np.linalg.solve` (sgesv).

Convergence is per MDP: a member's answer is taken at its own stopping sweep. With a shared P,
finished members are compacted out of the working arrays once a quarter of them are done (that
copies only R); with independent P they are frozen but still computed, since compaction would
copy their P (up to two sweeps of traffic) to save the few sweeps by which W2's per-MDP counts
differ. Two stopping rules with
the same promise (values within tol/2 of V* when gamma < 1), d = V_k - V_(k-1), V_0 = 0:

- "sup":  max|d| < tol (1 - g) / (2 g); returns V_k;
- "span": max(d) - min(d) < tol (1 - g) / g; returns V_k + g / (1 - g) (max d + min d) / 2
  (Puterman 1994, Thm 6.6.12 / Cor. 6.6.13);
- gamma = 1 (both rules): max|d| < tol, returns V_k (no theorem; W1 reaches exact fixed points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks._harness import Candidate, Config, Outcome
from benchmarks.workloads import Workload


def stop_mask(dmax, dmin, g, tol: float, rule: str) -> np.ndarray:
    """Which members stop after this sweep. All inputs are host arrays over the working set."""
    dmax, dmin, g = (np.asarray(x, np.float64) for x in (dmax, dmin, g))
    sup = np.maximum(np.abs(dmax), np.abs(dmin))
    gs = np.maximum(g, 1e-30)
    if rule == "span":
        crit = (dmax - dmin) < tol * (1.0 - g) / gs
    elif rule == "sup":
        crit = sup < tol * (1.0 - g) / (2.0 * gs)
    else:
        raise ValueError(f"rule must be 'span' or 'sup'; got {rule!r}")
    return np.where(g >= 1.0, sup < tol, crit)


def span_correction(dmax, dmin, g) -> np.ndarray:
    """g / (1 - g) * (max d + min d) / 2 as float32; 0 where gamma = 1."""
    g = np.asarray(g, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = g / (np.float32(1) - g) * ((dmax + dmin) / np.float32(2))
    return np.where(g < 1, corr, np.float32(0)).astype(np.float32)


@dataclass
class VIOut:
    values: np.ndarray  # [B, S] float32
    iters: np.ndarray  # [B]
    converged: np.ndarray  # [B] bool
    performed: int  # MDP-sweeps computed (including finished members not yet compacted out)

    def outcome(self) -> Outcome:
        return Outcome(self.values, self.iters, converged=self.converged, performed=self.performed)


def run_vi(layout, tol: float, rule: str, max_iters: int) -> VIOut:
    """Per-MDP value iteration over a layout object (NumPy or torch; see `SharedLayout`)."""
    B, S = layout.n, layout.S
    values = np.zeros((B, S), np.float32)
    iters = np.full(B, max_iters, np.int32)
    converged = np.zeros(B, bool)
    alive = np.arange(B)  # workload indices of the working set
    done = np.zeros(B, bool)  # over the working set
    performed = 0
    V = layout.zeros()
    for k in range(1, max_iters + 1):
        Vn = layout.backup(V)
        performed += alive.size
        dmax, dmin = layout.dstats(Vn, V)
        stop = stop_mask(dmax, dmin, layout.g_host, tol, rule) & ~done
        if stop.any():
            loc = np.flatnonzero(stop)
            vals = layout.rows(Vn, loc)
            if rule == "span":
                vals = vals + span_correction(dmax[loc], dmin[loc], layout.g_host[loc])[:, None]
            ids = alive[loc]
            values[ids], iters[ids], converged[ids] = vals, k, True
            done[loc] = True
        V = Vn
        n_done = int(done.sum())
        if n_done == alive.size:
            break
        if n_done >= layout.compact_at * alive.size:
            keep = np.flatnonzero(~done)
            layout, V = layout.compact(keep), layout.take(V, keep)
            alive, done = alive[keep], np.zeros(keep.size, bool)
    else:
        loc = np.flatnonzero(~done)
        values[alive[loc]] = layout.rows(V, loc)
    return VIOut(values, iters, converged, performed)


class SharedLayout:
    """Shared P: `P (A*S, S)`, `R (A, S, n)`, `V (S, n)`; one GEMM per sweep."""

    compact_at = 0.25  # fraction of the working set done that triggers compaction

    def __init__(self, P_flat: np.ndarray, R_asn: np.ndarray, g: np.ndarray):
        self.P, self.R, self.g = P_flat, R_asn, g
        self.A, self.S, self.n = R_asn.shape
        self.g_host = g

    def zeros(self):
        return np.zeros((self.S, self.n), np.float32)

    def backup(self, V):
        Q = (self.P @ V).reshape(self.A, self.S, self.n)
        Q *= self.g
        Q += self.R
        return Q.max(axis=0)

    def dstats(self, Vn, V):
        d = Vn - V
        return d.max(axis=0), d.min(axis=0)

    def rows(self, V, loc):
        return V[:, loc].T

    def take(self, V, keep):
        return np.ascontiguousarray(V[:, keep])

    def compact(self, keep):
        return SharedLayout(self.P, np.ascontiguousarray(self.R[:, :, keep]), self.g[keep])


class IndependentLayout:
    """Independent P: `P (n, A*S, S)`, `R (n, A, S)`, `V (n, S)`; one batched matvec per sweep."""

    compact_at = 2.0  # never: see the module docstring

    def __init__(self, P_bks: np.ndarray, R_nas: np.ndarray, g: np.ndarray):
        self.P, self.R, self.g = P_bks, R_nas, g
        self.n, self.A, self.S = R_nas.shape
        self.g_host = g
        self._g3 = g[:, None, None]

    def zeros(self):
        return np.zeros((self.n, self.S), np.float32)

    def backup(self, V):
        Q = np.matmul(self.P, V[:, :, None]).reshape(self.n, self.A, self.S)
        Q *= self._g3
        Q += self.R
        return Q.max(axis=1)

    def dstats(self, Vn, V):
        d = Vn - V
        return d.max(axis=1), d.min(axis=1)

    def rows(self, V, loc):
        return V[loc]

    def take(self, V, keep):
        return V[keep]

    def compact(self, keep):
        return IndependentLayout(self.P[keep], self.R[keep], self.g[keep])


class SingleLayout:
    """One MDP: `P (A*S, S)`, `R (A, S)`, `V (S,)`; one sgemv per sweep."""

    n, compact_at = 1, 2.0

    def __init__(self, P_flat: np.ndarray, R_as: np.ndarray, g: np.ndarray):
        self.P, self.R, self.g = P_flat, R_as, np.float32(g[0])
        self.A, self.S = R_as.shape
        self.g_host = g

    def zeros(self):
        return np.zeros(self.S, np.float32)

    def backup(self, V):
        Q = (self.P @ V).reshape(self.A, self.S)
        Q *= self.g
        Q += self.R
        return Q.max(axis=0)

    def dstats(self, Vn, V):
        d = Vn - V
        return d.max(keepdims=True), d.min(keepdims=True)

    def rows(self, V, loc):
        return V[None, :][loc]


def prepare(wl: Workload):
    """Actions-outermost arrays for `wl` (untimed): a function making a fresh layout."""
    S, A, B = wl.S, wl.A, wl.B
    g = wl.discount.astype(np.float32)
    if wl.shared_p:
        P_flat = np.ascontiguousarray(wl.transitions.transpose(1, 0, 2).reshape(A * S, S))
        if wl.single:
            R_as = np.ascontiguousarray(wl.rewards[0].T)
            return lambda: SingleLayout(P_flat, R_as, g)
        R_asn = np.ascontiguousarray(wl.rewards.transpose(2, 1, 0))
        return lambda: SharedLayout(P_flat, R_asn, g)
    P_bks = np.ascontiguousarray(wl.transitions.transpose(0, 2, 1, 3)).reshape(B, A * S, S)
    R_nas = np.ascontiguousarray(wl.rewards.transpose(0, 2, 1))
    return lambda: IndependentLayout(P_bks, R_nas, g)


def policy_iteration_single(P_ass: np.ndarray, R_as: np.ndarray, g: float, max_iters: int):
    """Howard PI for one MDP in float32: dense `np.linalg.solve` per evaluation.

    Returns (V [S], evaluations, converged). A state switches action only on an improvement
    larger than float32 noise (1e-6 relative), so near-ties cannot make the policy cycle.
    """
    A, S, _ = P_ass.shape
    P_flat = P_ass.reshape(A * S, S)
    states = np.arange(S)
    pol = R_as.argmax(axis=0)
    eye = np.eye(S, dtype=np.float32)
    g = np.float32(g)
    for k in range(1, max_iters + 1):
        V = np.linalg.solve(eye - g * P_ass[pol, states], R_as[pol, states])
        Q = (P_flat @ V).reshape(A, S)
        Q *= g
        Q += R_as
        q_max, q_old = Q.max(axis=0), Q[pol, states]
        switch = q_max > q_old + np.float32(1e-6) * (1 + np.abs(q_max))
        if not switch.any():
            return V, k, True
        pol = np.where(switch, Q.argmax(axis=0), pol)
    return V, max_iters, False


# W1M (10^6 members) runs the span rule only: the sup rule needs ~10x the sweeps (minutes).
SPAN_ONLY = "W1M: span rule only (the sup rule needs ~10x the sweeps: minutes per run)"


def candidates(wl: Workload, cfg: Config) -> list[Candidate]:
    make_layout = prepare(wl)
    kind = "VI (sgemv)" if wl.single else "VI, shared-P GEMM" if wl.shared_p else "VI, matmul"
    name = f"numpy {'' if wl.single else 'batched '}{kind}"
    rows = []
    for rule in ("span", "sup"):
        if rule == "sup" and cfg.device == "gpu":  # host-side and slow at GPU-sized batches
            rows.append(Candidate(name, "numpy", "VI", rule, skip="host-side; not in gpu mode"))
            continue
        if rule == "sup" and wl.name == "W1M":
            rows.append(Candidate(name, "numpy", "VI", rule, skip=SPAN_ONLY))
            continue

        def run(max_iters, rule=rule):
            return run_vi(make_layout(), wl.tol, rule, max_iters or cfg.max_iters)

        rows.append(
            Candidate(
                name,
                "numpy",
                "VI",
                rule,
                run=run,
                finish=VIOut.outcome,
                capped=True,
                hand_written=True,
            )
        )
    if wl.single:
        P_ass = np.ascontiguousarray(wl.transitions.transpose(1, 0, 2))
        R_as = np.ascontiguousarray(wl.rewards[0].T)

        def run_pi(max_iters):
            V, k, ok = policy_iteration_single(P_ass, R_as, wl.discount[0], max_iters or 100)
            return Outcome(V[None], np.array([k]), converged=np.array([ok]))

        rows.append(
            Candidate(
                "numpy PI (sgesv)", "numpy", "PI", "policy stable", run=run_pi, hand_written=True
            )
        )
    return rows
