"""The NumPy baselines of `baselines_numpy` written with PyTorch (optional dependency).

Same layouts (actions outermost), same per-MDP driver (`baselines_numpy.run_vi`) and the same
two stopping rules; only the array library differs. Runs on CPU, or on CUDA in `--device gpu`
mode when torch was built with CUDA (otherwise the rows are skipped there).
"""

from __future__ import annotations

import numpy as np

from benchmarks._harness import Candidate, Config, Outcome
from benchmarks.baselines_numpy import SPAN_ONLY, VIOut, run_vi
from benchmarks.workloads import Workload

try:
    import torch
except ImportError:  # optional
    torch = None


class _Layout:
    def __init__(self, P, R, g_host: np.ndarray, dev):
        self.P, self.R, self.g_host, self.dev = P, R, g_host, dev
        self.g = torch.as_tensor(g_host, device=dev)

    def _idx(self, loc):
        return torch.as_tensor(loc, device=self.dev)


class TorchShared(_Layout):
    """Shared P: `P (A*S, S)`, `R (A, S, n)`, `V (S, n)`; one GEMM per sweep."""

    compact_at = 0.25

    def __init__(self, P, R, g_host, dev):
        super().__init__(P, R, g_host, dev)
        self.A, self.S, self.n = R.shape

    def zeros(self):
        return torch.zeros((self.S, self.n), device=self.dev)

    def backup(self, V):
        Q = (self.P @ V).view(self.A, self.S, self.n)
        Q.mul_(self.g).add_(self.R)
        return Q.amax(dim=0)

    def dstats(self, Vn, V):
        d = Vn - V
        dmax, dmin = torch.stack([d.amax(dim=0), d.amin(dim=0)]).cpu().numpy()
        return dmax, dmin

    def rows(self, V, loc):
        return V[:, self._idx(loc)].T.cpu().numpy()

    def take(self, V, keep):
        return V[:, self._idx(keep)].contiguous()

    def compact(self, keep):
        R = self.R[:, :, self._idx(keep)].contiguous()
        return TorchShared(self.P, R, self.g_host[keep], self.dev)


class TorchIndependent(_Layout):
    """Independent P: `P (n, A*S, S)`, `R (n, A, S)`, `V (n, S)`; one `bmm` per sweep."""

    compact_at = 2.0

    def __init__(self, P, R, g_host, dev):
        super().__init__(P, R, g_host, dev)
        self.n, self.A, self.S = R.shape
        self.g3 = self.g[:, None, None]

    def zeros(self):
        return torch.zeros((self.n, self.S), device=self.dev)

    def backup(self, V):
        Q = torch.bmm(self.P, V[:, :, None]).view(self.n, self.A, self.S)
        Q.mul_(self.g3).add_(self.R)
        return Q.amax(dim=1)

    def dstats(self, Vn, V):
        d = Vn - V
        dmax, dmin = torch.stack([d.amax(dim=1), d.amin(dim=1)]).cpu().numpy()
        return dmax, dmin

    def rows(self, V, loc):
        return V[self._idx(loc)].cpu().numpy()

    def take(self, V, keep):
        return V[self._idx(keep)]

    def compact(self, keep):
        i = self._idx(keep)
        return TorchIndependent(self.P[i], self.R[i], self.g_host[keep], self.dev)


class TorchSingle(_Layout):
    """One MDP: `P (A*S, S)`, `R (A, S)`, `V (S,)`; one `mv` per sweep."""

    n, compact_at = 1, 2.0

    def __init__(self, P, R, g_host, dev):
        super().__init__(P, R, g_host, dev)
        self.A, self.S = R.shape
        self.g1 = float(g_host[0])

    def zeros(self):
        return torch.zeros(self.S, device=self.dev)

    def backup(self, V):
        Q = torch.mv(self.P, V).view(self.A, self.S)
        Q.mul_(self.g1).add_(self.R)
        return Q.amax(dim=0)

    def dstats(self, Vn, V):
        d = Vn - V
        dmax, dmin = torch.stack([d.max(), d.min()]).cpu().numpy()
        return dmax[None], dmin[None]

    def rows(self, V, loc):
        return V.cpu().numpy()[None][loc]


def policy_iteration_single(P_ass, R_as, g: float, max_iters: int):
    """Howard PI in float32 with `torch.linalg.solve` (same tie rule as the NumPy version)."""
    A, S, _ = P_ass.shape
    dev = P_ass.device
    P_flat, states = P_ass.reshape(A * S, S), torch.arange(S, device=dev)
    pol = R_as.argmax(dim=0)
    eye = torch.eye(S, device=dev)
    for k in range(1, max_iters + 1):
        rhs = R_as[pol, states][:, None]
        V = torch.linalg.solve(eye - g * P_ass[pol, states], rhs)[:, 0]
        Q = (P_flat @ V).view(A, S).mul_(g).add_(R_as)
        q_max, q_old = Q.amax(dim=0), Q[pol, states]
        switch = q_max > q_old + 1e-6 * (1 + q_max.abs())
        if not bool(switch.any()):
            return V, k, True
        pol = torch.where(switch, Q.argmax(dim=0), pol)
    return V, max_iters, False


def device(cfg: Config) -> str | None:
    """ "cpu", "cuda" (gpu mode, torch built with CUDA) or None (rows skipped)."""
    if torch is None:
        return None
    if cfg.device == "gpu":
        return "cuda" if torch.cuda.is_available() else None
    return "cpu"


def prepare(wl: Workload, dev: str):
    """Actions-outermost tensors for `wl` on `dev` (untimed): a function making a fresh layout."""
    S, A, B = wl.S, wl.A, wl.B
    g = wl.discount.astype(np.float32)

    def t(x):
        return torch.from_numpy(np.ascontiguousarray(x)).to(dev)

    if wl.shared_p:
        P_flat = t(wl.transitions.transpose(1, 0, 2).reshape(A * S, S))
        if wl.single:
            R_as = t(wl.rewards[0].T)
            return lambda: TorchSingle(P_flat, R_as, g, dev)
        R_asn = t(wl.rewards.transpose(2, 1, 0))
        return lambda: TorchShared(P_flat, R_asn, g, dev)
    P_bks = t(wl.transitions.transpose(0, 2, 1, 3)).reshape(B, A * S, S)
    R_nas = t(wl.rewards.transpose(0, 2, 1))
    return lambda: TorchIndependent(P_bks, R_nas, g, dev)


def candidates(wl: Workload, cfg: Config) -> list[Candidate]:
    dev = device(cfg)
    kind = "VI (mv)" if wl.single else "VI, shared-P GEMM" if wl.shared_p else "VI, bmm"
    name = f"torch {'' if wl.single else 'batched '}{kind}"
    if dev is None:
        why = "torch not installed" if torch is None else "torch has no CUDA here"
        return [Candidate(name, "torch", "VI", r, skip=why) for r in ("span", "sup")]
    name += "" if dev == "cpu" else " [cuda]"
    make = prepare(wl, dev)
    target = "host" if dev == "cpu" else "accel"
    rows = []
    for rule in ("span", "sup"):
        if rule == "sup" and wl.name == "W1M":
            rows.append(Candidate(name, "torch", "VI", rule, skip=SPAN_ONLY))
            continue

        def run(max_iters, rule=rule):
            return run_vi(make(), wl.tol, rule, max_iters or cfg.max_iters)

        rows.append(
            Candidate(
                name,
                "torch",
                "VI",
                rule,
                run=run,
                finish=VIOut.outcome,
                capped=True,
                hand_written=True,
                target=target,
            )
        )
    if wl.single:
        P_ass = torch.from_numpy(np.ascontiguousarray(wl.transitions.transpose(1, 0, 2))).to(dev)
        R_as = torch.from_numpy(np.ascontiguousarray(wl.rewards[0].T)).to(dev)
        g0 = float(wl.discount[0])

        def run_pi(max_iters):
            return policy_iteration_single(P_ass, R_as, g0, max_iters or 100)

        def finish(raw):
            V, k, ok = raw
            return Outcome(V.cpu().numpy()[None], np.array([k]), converged=np.array([ok]))

        pi_name = "torch PI (linalg.solve)" + ("" if dev == "cpu" else " [cuda]")
        rows.append(
            Candidate(
                pi_name,
                "torch",
                "PI",
                "policy stable",
                run=run_pi,
                finish=finish,
                hand_written=True,
                target=target,
            )
        )
    return rows
