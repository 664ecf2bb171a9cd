"""Kernel rows (one Bellman backup) and scaling curves (solve time vs B, S and A).

Kernel rows time ONE batched backup `V <- max_a R + gamma P V` at a W2-like shape (independent
P per MDP: memory-bound) and a W4-like shape (shared P: one GEMM, compute-bound), for NumPy,
torch, a hand-written `jax.jit` kernel and `jaxmdp.bellman.backup` under `jax.vmap` (shared P
with `in_axes=None`). Each result is compared with a float64 backup.

Scaling curves time the full solve (span rule, tol 1e-3) of W2-style random batches for the
NumPy span-rule baseline and the `JAXMDP_ROWS` entries marked `scaling=True`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import _timing, baselines_numpy, baselines_torch, jaxmdp_rows
from benchmarks._harness import Candidate, Config, roofline
from benchmarks.workloads import Workload, random_batch, random_transitions

KERNEL_SHAPES = {
    "full": {"independent P": (2048, 64, 8), "shared P": (4096, 256, 8)},
    "quick": {"independent P": (128, 64, 8), "shared P": (256, 64, 8)},
    "gpu": {"independent P": (16384, 64, 8), "shared P": (16384, 256, 8)},
}
# axis -> (values, fixed sizes of the other two axes)
SCALING = {
    "full": {
        "B": ([128, 512, 2048, 8192], {"S": 64, "A": 8}),
        "S": ([32, 64, 128, 256, 512], {"B": 64, "A": 8}),
        "A": ([2, 8, 32], {"B": 256, "S": 64}),
    },
    "quick": {"B": ([16, 64], {"S": 32, "A": 4}), "S": ([16, 48], {"B": 16, "A": 4})},
    "gpu": {
        "B": ([1024, 4096, 16384], {"S": 64, "A": 8}),
        "S": ([64, 128, 256, 512], {"B": 256, "A": 8}),
        "A": ([2, 8, 32, 64], {"B": 1024, "S": 64}),
    },
}
SCALING_TOL = 1e-3


def kernel_workload(kind: str, B: int, S: int, A: int, seed: int = 0) -> Workload:
    if kind == "independent P":
        return random_batch(B, S, A, seed=seed)
    rng = np.random.default_rng([seed, 5])
    P = random_transitions(rng, (), S, A)
    R = rng.random((B, S, A), dtype=np.float32)
    g = np.linspace(0.9, 0.99, B).astype(np.float32)
    return Workload("K", f"{B} MDPs sharing P, S={S}, A={A}", P, R, g, SCALING_TOL, "", {})


def _backup64(wl: Workload, V: np.ndarray) -> np.ndarray:
    B, S, A = wl.B, wl.S, wl.A
    P = wl.transitions.astype(np.float64)
    if wl.shared_p:
        PV = (V.astype(np.float64) @ P.reshape(S * A, S).T).reshape(B, S, A)
    else:
        PV = np.matmul(P.reshape(B, S * A, S), V.astype(np.float64)[:, :, None]).reshape(B, S, A)
    return (wl.rewards + wl.discount[:, None, None].astype(np.float64) * PV).max(axis=2)


def _kernel_impls(wl: Workload, V: np.ndarray, cfg: Config) -> list[tuple[str, Any, Any, Any]]:
    """(name, fn, to_host(out) -> [B, S], compile fn or None) per implementation."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    out = []
    layout = baselines_numpy.prepare(wl)()
    Vn = np.ascontiguousarray(V.T) if wl.shared_p else V
    out.append(("numpy", lambda: layout.backup(Vn), _host(wl), None))
    dev = baselines_torch.device(cfg)
    if dev is not None:
        import torch

        tl = baselines_torch.prepare(wl, dev)()
        Vt = torch.from_numpy(Vn).to(dev)
        out.append((f"torch [{dev}]", lambda: tl.backup(Vt), _host(wl), None))
    B, S, A = wl.B, wl.S, wl.A
    hi = lax.Precision.HIGHEST
    if wl.shared_p:
        args = (
            wl.transitions.transpose(1, 0, 2).reshape(A * S, S),
            wl.rewards.transpose(2, 1, 0),
            wl.discount,
            Vn,
        )

        def hand(P, R, g, V):
            return (jnp.dot(P, V, precision=hi).reshape(A, S, B) * g + R).max(axis=0)
    else:
        args = (
            wl.transitions.transpose(0, 2, 1, 3).reshape(B, A * S, S),
            wl.rewards.transpose(0, 2, 1),
            wl.discount,
            Vn,
        )

        def hand(P, R, g, V):
            PV = jnp.einsum("bks,bs->bk", P, V, precision=hi).reshape(B, A, S)
            return (PV * g[:, None, None] + R).max(axis=1)

    out.append(("jax jit (hand-written, actions outermost)", *_jitted(hand, args, wl)))
    jm, _ = jaxmdp_rows.import_jaxmdp()
    if jm is not None and hasattr(jm, "bellman"):

        def one(p, r, g, v):
            return jm.bellman.backup(jm.MDP(p, r, g), v)[0]

        axes = (None if wl.shared_p else 0, 0, 0, 0)
        args = (wl.transitions, wl.rewards, wl.discount, V)
        name = "jaxmdp.bellman.backup, vmap" + (" (P in_axes=None)" if wl.shared_p else "")
        out.append((name, *_jitted(jax.vmap(one, in_axes=axes), args, wl, transposed=False)))
    return out


def _host(wl: Workload, transposed: bool = True):
    def to_host(x):
        x = x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)
        return x.T if (wl.shared_p and transposed) else x

    return to_host


def _jitted(fn, args, wl: Workload, transposed: bool = True):
    import jax

    dargs = [jax.device_put(np.ascontiguousarray(a)) for a in args]
    state: dict[str, Any] = {}

    def compile_():
        state["exe"], secs = _timing.aot_compile(jax.jit(fn), *dargs)
        return secs

    return (lambda: state["exe"](*dargs)), _host(wl, transposed), compile_


def kernel_rows(scale: str, cfg: Config, limits: dict) -> list[dict]:
    rows = []
    for kind, (B, S, A) in KERNEL_SHAPES[scale].items():
        wl = kernel_workload(kind, B, S, A)
        V = (np.random.default_rng(7).random((B, S), dtype=np.float32) * 10).astype(np.float32)
        want = _backup64(wl, V)
        for name, fn, to_host, compile_ in _kernel_impls(wl, V, cfg):
            row: dict[str, Any] = {"kernel": kind, "impl": name, "B": B, "S": S, "A": A}
            try:
                row["compile_s"] = compile_() if compile_ else None
                got = to_host(_timing.block(fn()))
                timing = _timing.time_reps(fn, budget_s=cfg.rep_budget_s)
                target = "host" if name.startswith(("numpy", "torch [cpu]")) else "accel"
                lim = limits.get(target) or limits["host"]
                t_sweep, _, bound = roofline(wl, lim)
                t = timing.median
                row.update(
                    median_s=t,
                    spread=timing.spread,
                    n_reps=timing.n,
                    gbps=wl.sweep_bytes / t / 1e9,
                    gflops=wl.sweep_flops / t / 1e9,
                    pct_limit=100 * t_sweep / t,
                    bound=bound,
                    max_abs_diff_f64=float(np.abs(got - want).max()),
                )
            except Exception as exc:
                row["failed"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            _timing.pause(cfg.pause_s)
    return rows


def _scaling_candidates(wl: Workload, cfg: Config) -> list[Candidate]:
    rows = [c for c in baselines_numpy.candidates(wl, cfg) if c.rule == "span"]
    specs = [s for s in jaxmdp_rows.JAXMDP_ROWS if s.scaling]
    return rows + jaxmdp_rows.candidates(wl, cfg, specs)


def scaling_rows(scale: str, cfg: Config) -> list[dict]:
    rows = []
    for axis, (points, fixed) in SCALING[scale].items():
        for p in points:
            size = {**fixed, axis: p}
            wl = random_batch(size["B"], size["S"], size["A"])
            wl.tol = SCALING_TOL
            for c in _scaling_candidates(wl, cfg):
                row: dict[str, Any] = {"axis": axis, **size, "impl": c.impl, "rule": c.rule}
                if c.skip:
                    row["skipped"] = c.skip
                    rows.append(row)
                    continue
                try:
                    if c.compile:
                        c.compile()
                    out = c.finish(_timing.block(c.run(None)))  # warm-up (and compile)
                    timing = _timing.time_reps(
                        lambda c=c: c.run(None), warmup=False, budget_s=cfg.rep_budget_s
                    )
                    t, it = timing.median, out.iters
                    row.update(
                        median_s=t,
                        spread=timing.spread,
                        iters_max=int(it.max()),
                        us_per_mdp=1e6 * t / wl.B,
                        gbps=float(it.mean()) * wl.sweep_bytes / t / 1e9,
                    )
                except Exception as exc:
                    row["failed"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
                _timing.pause(cfg.pause_s)
    return rows
