"""Large and sparse workloads W5-W7 against a hand-written SciPy CSR value iteration.

`python -m benchmarks.sparse_workloads [--quick] [--workloads W5,W6,W7] [--out PATH]`

- W5: one gridworld (1000x1000, S = 10^6, A = 4, K <= 3, slip 0.1, discount 0.99; `--quick`:
  200x200), value iteration to tol 1e-3 (span rule with Puterman's correction);
  pymdptoolbox and QuantEcon on a `--peer-side` sub-grid (default 300x300), with jaxmdp and
  SciPy on that sub-grid too.
- W6: 1,000 step-reward x discount variants (step reward in [-1, -0.01], discount in
  [0.9, 0.99]; `--quick`: 100 variants) sharing one 100x100 gridworld's sparse transitions.
- W7: 512 independent Garnet MDPs (S = 1024, A = 4, K = 8, discount 0.99; `--quick`: 64);
  pymdptoolbox and QuantEcon solve the first `--peer-members` (default 128) one by one,
  time scaled to all members (marked).

Every implementation runs in this process, A/B. jaxmdp: one untimed warm-up call (it
compiles), then `--reps` timed calls (median, min-max). Baseline: the fastest plain SciPy
value iteration written here: one CSR matvec per sweep (`[S*A, S]` pairs times V, or times
`[S, B]` for W6; a block-diagonal `[B*S*A, B*S]` matrix for W7), the same span rule and
correction, float64, every member until all stop. It runs once, to tol / 100: its timed
result is the one the tol rule gives on the way (time to that sweep), and the end of the
pass is the float64 reference for the accuracy column (within tol / 200 of V*); both
implementations promise tol / 2.

Roofline: bytes streamed per sweep (successor indices + probabilities + rewards + values
read and written) over the read bandwidth measured in the same run (benchmarks/limits.py) at
that working-set size. Peak memory: the rise of the process's peak RSS (VmHWM, reset through
/proc/self/clear_refs) over jaxmdp's first timed call and over SciPy's whole pass, above the
RSS just before (the model, both forms of it and JAX's runtime are already resident),
next to the bytes of the sparse arrays plus the batch's values and rewards.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TOL = 1e-3


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _rss_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _rss(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1]) * 1024
    return float("nan")


# -- models ---------------------------------------------------------------------------------


def grid_text(n: int) -> str:
    """An n x n open world: start top-left, '+' bottom-right, a '-' cell and a wall segment."""
    rows = [["."] * n for _ in range(n)]
    rows[0][0] = "S"
    rows[n - 1][n - 1] = "+"
    rows[n // 2][n // 2] = "-"
    for j in range(n // 4, n // 2):
        rows[n // 3][j] = "#"
    return "\n".join("".join(r) for r in rows)


def w5(n: int):
    from jaxmdp.models import gridworld

    return gridworld(grid_text(n), step_reward=-0.04, slip=0.1, discount=0.99)


def w6(n: int, B: int):
    import jax.numpy as jnp

    from jaxmdp.models import gridworld

    r = np.linspace(-1.0, -0.01, B)
    g = np.linspace(0.9, 0.99, B)[np.random.default_rng(0).permutation(B)]
    return gridworld(grid_text(n), step_reward=jnp.asarray(r), slip=0.1, discount=jnp.asarray(g))


def w7(B: int, S: int = 1024, A: int = 4, K: int = 8):
    import jax

    from jaxmdp.models import random_mdp

    keys = jax.random.split(jax.random.key(7), B)
    build = jax.jit(
        jax.vmap(lambda k: random_mdp(k, S, A, kind="garnet", num_successors=K, discount=0.99))
    )
    return build(keys)


# -- SciPy baseline -------------------------------------------------------------------------


def csr_pairs(mdp, B: int):
    """`(csr [B*S*A, B*S] block-diagonal over members or [S*A, S] shared, rewards [B, S*A]
    or [S*A], discounts [B])` in float64, built from the successor lists."""
    import scipy.sparse

    ns = np.asarray(mdp.transitions.next_states)
    pr = np.asarray(mdp.transitions.probs, np.float64)
    S, A, K = ns.shape[-3:]
    shared = ns.ndim == 3 and pr.ndim == 3
    R = np.asarray(mdp.rewards, np.float64)
    g = np.broadcast_to(np.asarray(mdp.discount, np.float64), (B,)).copy()
    if shared:
        rows = np.repeat(np.arange(S * A), K)
        P = scipy.sparse.csr_matrix((pr.ravel(), (rows, ns.ravel())), shape=(S * A, S))
        return P, R.reshape(*R.shape[:-2], S * A), g
    ns = np.broadcast_to(ns, (B, S, A, K)) + (np.arange(B) * S)[:, None, None, None]
    rows = np.repeat(np.arange(B * S * A), K)
    P = scipy.sparse.csr_matrix(
        (np.broadcast_to(pr, (B, S, A, K)).ravel(), (rows, ns.ravel())), shape=(B * S * A, B * S)
    )
    return P, R.reshape(B, S * A), g


def scipy_vi(P, R, g, S: int, A: int, tol: float, max_iters: int = 100_000, checkpoint=None):
    """Value iteration, span rule + Puterman's correction, every member until all stop.

    P: `[S*A, S]` shared (R `[B, S*A]` or `[S*A]`) or block-diagonal `[B*S*A, B*S]`.
    Values are kept as `[S, B]` (C order) so that the shared case is one CSR times dense
    `[S, B]` product per sweep (SciPy's csr_matvecs, no transposed copies); one member or
    the block-diagonal case is one CSR matvec. Returns `(values [B, S], sweeps)`.

    `checkpoint`: a looser tol; the result the rule gives for it on the way (values,
    sweeps, seconds since the start) is stored in `checkpoint_out` (a dict passed as
    `checkpoint=(tol, dict)`): one pass gives the timed baseline and the reference."""
    t0 = time.perf_counter()
    cp_thresh = None if checkpoint is None else checkpoint[0] * (1 - g) / g
    B = g.shape[0]
    R = np.broadcast_to(R, (B, S * A))
    shared = P.shape[1] == S
    thresh = tol * (1 - g) / g
    if shared and B > 1:
        Rt = np.ascontiguousarray(R.T)  # [S*A, B]
        V = np.zeros((S, B))
        for it in range(1, max_iters + 1):
            EV = P @ V  # [S*A, B]
            EV *= g
            EV += Rt
            Vn = EV.reshape(S, A, B).max(1)
            d = Vn - V
            hi, lo = d.max(0), d.min(0)
            V = Vn
            if cp_thresh is not None and "values" not in checkpoint[1]:
                if ((hi - lo) < cp_thresh).all():
                    corr = (V + g / (1 - g) * (hi + lo) / 2).T
                    checkpoint[1].update(values=corr, sweeps=it, seconds=time.perf_counter() - t0)
            if ((hi - lo) < thresh).all():
                return (V + g / (1 - g) * (hi + lo) / 2).T, it
    else:  # one vector: [S] (one member) or [B*S] (block-diagonal members)
        Rf = np.ascontiguousarray(R).ravel()  # [B*S*A]
        gf = np.repeat(g, S * A)
        V = np.zeros(B * S)
        for it in range(1, max_iters + 1):
            EV = P @ V
            EV *= gf
            EV += Rf
            Vn = EV.reshape(B, S, A).max(-1)
            d = Vn - V.reshape(B, S)
            hi, lo = d.max(-1), d.min(-1)
            V = Vn.ravel()
            if cp_thresh is not None and "values" not in checkpoint[1]:
                if ((hi - lo) < cp_thresh).all():
                    corr = Vn + (g / (1 - g) * (hi + lo) / 2)[:, None]
                    checkpoint[1].update(values=corr, sweeps=it, seconds=time.perf_counter() - t0)
            if ((hi - lo) < thresh).all():
                return Vn + (g / (1 - g) * (hi + lo) / 2)[:, None], it
    raise RuntimeError("SciPy VI did not stop")


# -- peers: pymdptoolbox and QuantEcon (the `peers` extra) ------------------------------------


def _single(mdp, b: int):
    """`(next_states [S, A, K], probs [S, A, K] float64, rewards [S, A] float64, discount)`
    of member `b` (a shared array is the same for every member). Rows are renormalised in
    float64 (the float32 rows sum to 1 only within float32 rounding, which pymdptoolbox's
    stochasticity check rejects; the change, ~1e-8, is far below the tolerance)."""
    ns = np.asarray(mdp.transitions.next_states)
    pr = np.asarray(mdp.transitions.probs, np.float64)
    pr = pr / pr.sum(-1, keepdims=True)
    R = np.asarray(mdp.rewards, np.float64)
    g = np.asarray(mdp.discount, np.float64).reshape(-1)

    def pick(x, nd):
        return x.reshape(-1, *x.shape[-nd:])[b] if x.ndim > nd else x

    return pick(ns, 3), pick(pr, 3), pick(R, 2), float(g[b] if g.size > 1 else g[0])


def pymdptoolbox_vi(ns, pr, R, g: float, tol: float):
    """pymdptoolbox's `ValueIteration` on A sparse `[S, S]` CSR matrices (its sparse input),
    stopping rule span(V_n - V_(n-1)) < tol (1 - g) / g (as jaxmdp's span rule), returning
    V_n. Two O(S^2) parts of its constructor are skipped, as a user with a large model would
    have to: the input check (`mdptoolbox.util.check`, 66 s at S = 14,370: it densifies)
    and the iteration bound (`_boundIter`, a Python loop over states that builds an
    `[A, S]` dense array per state; max_iter = 10^5 instead, it only caps the loop). Timed:
    the rest of the constructor + `run()`. Returns `(V [S], sweeps, seconds)`."""
    import scipy.sparse
    from mdptoolbox import mdp as mdpt

    class _VI(mdpt.ValueIteration):
        def _boundIter(self, epsilon):
            self.max_iter = 100_000

    S, A, K = ns.shape
    rows = np.repeat(np.arange(S), K)
    P = [
        scipy.sparse.csr_matrix((pr[:, a].ravel(), (rows, ns[:, a].ravel())), shape=(S, S))
        for a in range(A)
    ]
    check, mdpt._util.check = mdpt._util.check, lambda *a, **k: None
    try:
        t = time.perf_counter()
        vi = _VI(P, R, g, epsilon=tol)
        vi.run()
    finally:
        mdpt._util.check = check
    return np.asarray(vi.V), int(vi.iter), time.perf_counter() - t


def quantecon_vi(ns, pr, R, g: float, tol: float):
    """QuantEcon `DiscreteDP` in the state-action-pair form with a scipy.sparse `[S*A, S]`
    Q, `value_iteration(epsilon=tol)` (its rule: sup|v_n - v_(n-1)| < tol (1 - g) / (2 g)).
    Timed: `value_iteration` only (the DiscreteDP object is built before). Returns
    `(v [S], sweeps, seconds)`."""
    import scipy.sparse
    from quantecon.markov import DiscreteDP

    S, A, K = ns.shape
    L = S * A
    Q = scipy.sparse.csr_matrix(
        (pr.reshape(L * K), (np.repeat(np.arange(L), K), ns.reshape(L * K))), shape=(L, S)
    )
    s_idx, a_idx = np.repeat(np.arange(S), A), np.tile(np.arange(A), S)
    ddp = DiscreteDP(R.reshape(L), Q, g, s_idx, a_idx)
    t = time.perf_counter()
    res = ddp.value_iteration(epsilon=tol, max_iter=100_000)
    return np.asarray(res.v), int(res.num_iter), time.perf_counter() - t


PEERS = {
    "pymdptoolbox VI (float64)": ("mdptoolbox", pymdptoolbox_vi),
    "QuantEcon DDP VI (float64)": ("quantecon", quantecon_vi),
}


def peer_rows(name: str, mdp, members: int, B: int, ref, limits: dict) -> list[dict]:
    """One row per peer: each solves members 0 .. members-1 one after the other (they take
    one MDP at a time); with members < B the time is scaled by B / members (marked)."""
    import importlib.util

    from benchmarks._harness import bandwidth_at

    rows = []
    for label, (module, fn) in PEERS.items():
        if importlib.util.find_spec(module) is None:
            _log(f"{name}: {label} skipped (install the `peers` extra)")
            continue
        _log(f"{name}: {label}, {members} of {B} members")
        total, sweeps, err = 0.0, 0, 0.0
        for b in range(members):
            ns, pr, R, g = _single(mdp, b)
            v, n, sec = fn(ns, pr, R, g, TOL)
            total, sweeps = total + sec, max(sweeps, n)
            err = max(err, float(np.abs(v - ref[b]).max()))
        S, A, K = ns.shape
        t = total * B / members
        sweep_bytes = B * (S * A * K * 12 + S * A * 8 + 2 * S * 8)  # CSR, rewards, values
        bw = bandwidth_at(limits, sweep_bytes)
        scaled = f", {members} members, time x {B / members:g}" if members < B else ""
        rows.append(
            dict(
                workload=name,
                impl=label + scaled,
                S=S,
                A=A,
                K=K,
                B=B,
                sweeps=sweeps,
                median_s=t,
                min_s=t,
                max_s=t,
                reps=1,
                sweep_ms=1e3 * t / sweeps,
                roofline_frac=sweep_bytes * sweeps / t / (bw * 1e9),
                bw_gbps=bw,
                err=err,
                ok=bool(err <= TOL / 2),
                status="-",
                peak_rise_mb=float("nan"),
                arrays_mb=sweep_bytes / 1e6,
            )
        )
        _log(f"  {rows[-1]}")
    return rows


# -- timing ---------------------------------------------------------------------------------


def _timed(fn, reps: int):
    """Warm-up call (compiles), then `reps` timed calls; the peak-RSS rise is measured over
    the first timed call (VmHWM reset through /proc/self/clear_refs just before it)."""
    import gc

    out = fn()
    del out
    times, peak = [], float("nan")
    for i in range(reps):
        gc.collect()
        if i == 0:
            base = _rss("VmRSS")
            fresh = _rss_reset()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        if i == 0 and fresh:
            peak = _rss("VmHWM") - base
    return out, np.array(times), peak


def run_workload(name: str, mdp, B: int, reps: int, limits: dict, peers: int = 0) -> list:
    """jaxmdp and the SciPy baseline (with `peers` > 0 also pymdptoolbox and QuantEcon on
    the first `peers` members) on one workload, A/B in this process."""
    import jax

    import jaxmdp
    from benchmarks._harness import bandwidth_at

    ns, pr = mdp.transitions.next_states, mdp.transitions.probs
    S, A, K = ns.shape[-3:]
    solver = jaxmdp.ValueIteration(tol=TOL)

    def ours():
        sol = jaxmdp.solve(mdp, solver)
        jax.block_until_ready(sol.values)
        return sol

    P, R, g = csr_pairs(mdp, B)

    _log(f"{name}: S={S} A={A} K={K} B={B}: SciPy pass to tol {TOL / 100:g} (reference)")
    base_out: dict = {}
    gc.collect()
    rss0 = _rss("VmRSS")
    fresh = _rss_reset()
    ref, _ = scipy_vi(P, R, g, S, A, TOL / 100, checkpoint=(TOL, base_out))
    base_peak = _rss("VmHWM") - rss0 if fresh else float("nan")
    rows = []
    for label in ("jaxmdp solve (float32)", "SciPy CSR VI (float64)"):
        _log(f"{name}: {label}")
        if label.startswith("jaxmdp"):
            out, times, peak = _timed(ours, reps)
        else:  # timed on the way to the reference: no separate run (time up to the tol rule)
            out = (base_out["values"], base_out["sweeps"])
            times, peak = np.array([base_out["seconds"]]), base_peak
        if label.startswith("jaxmdp"):
            values = np.asarray(out.values, np.float64).reshape(B, S)
            sweeps = int(np.max(np.asarray(out.num_iters)))
            codes = np.asarray(out.status).ravel()
            status = ", ".join(
                f"{jaxmdp.Status(c).name} {n}"
                for c, n in zip(*np.unique(codes, return_counts=True), strict=True)
            )
            ns_b, pr_b = ns.dtype.itemsize, pr.dtype.itemsize
            pb = pr.size * pr_b  # probs as stored (shared or per member)
            nb = ns.size * ns_b
            vb = 4
        else:
            values, sweeps = out
            status = "-"
            nb = P.indices.nbytes + P.indptr.nbytes
            pb = P.data.nbytes
            vb = 8
        rb = B * S * A * vb
        sweep_bytes = nb + pb + rb + 2 * B * S * vb
        t = float(np.median(times))
        bw = bandwidth_at(limits, sweep_bytes)
        frac = sweep_bytes * sweeps / t / (bw * 1e9)
        err = float(np.abs(values - ref).max())
        arrays = nb + pb + rb + B * S * vb
        rows.append(
            dict(
                workload=name,
                impl=label,
                S=S,
                A=A,
                K=K,
                B=B,
                sweeps=sweeps,
                median_s=t,
                min_s=float(times.min()),
                max_s=float(times.max()),
                reps=len(times),
                sweep_ms=1e3 * t / sweeps,
                roofline_frac=frac,
                bw_gbps=bw,
                err=err,
                # tol / 2 promised, plus float32 rounding of values (a few ulp of max|V| per
                # sweep, amplified by 1 / (1 - g)) for the float32 rows
                ok=bool(
                    err <= TOL / 2 + (vb == 4) * 4e-7 * float(np.abs(ref).max()) / (1 - g.max())
                ),
                status=status,
                peak_rise_mb=peak / 1e6,
                arrays_mb=arrays / 1e6,
            )
        )
        _log(f"  {rows[-1]}")
    if peers:
        rows += peer_rows(name, mdp, min(peers, B), B, ref, limits)
    return rows


def table(rows: list[dict]) -> str:
    head = (
        "| workload | implementation | S | B | sweeps | median s (min-max, reps) | ms/sweep "
        "| % roofline | max err vs ref | status | peak RSS rise MB | arrays MB | speed-up vs SciPy "
        "| jaxmdp x faster |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    out = []
    for r in rows:
        base = [x for x in rows if x["workload"] == r["workload"] and x["impl"].startswith("SciPy")]
        ratio = base[0]["median_s"] / r["median_s"] if base else float("nan")
        ours = [x for x in rows if x["workload"] == r["workload"] and x["impl"].startswith("jax")]
        over = r["median_s"] / ours[0]["median_s"] if ours else float("nan")
        out.append(
            f"| {r['workload']} | {r['impl']} | {r['S']} | {r['B']} | {r['sweeps']} | "
            f"{r['median_s']:.3f} ({r['min_s']:.3f}-{r['max_s']:.3f}, {r['reps']}) | "
            f"{r['sweep_ms']:.2f} | {100 * r['roofline_frac']:.0f} | {r['err']:.1e}"
            f"{'' if r['ok'] else ' FAIL'} | {r['status']} | {r['peak_rise_mb']:.0f} | "
            f"{r['arrays_mb']:.0f} | "
            f"{ratio:.1f}x | {over:.1f}x |"
        )
    return head + "\n".join(out) + "\n"


def run(
    names,
    quick: bool,
    limits: dict,
    *,
    reps: int = 3,
    w6_variants: int = 1000,
    peer_side: int = 300,
    peer_members: int = 128,
) -> list[dict]:
    """Rows of the workloads `names` (W5, W6, W7), with `limits` measured in this process
    (`benchmarks.limits.measure_host`); also what `python -m benchmarks.run --workloads W5`
    calls. Prints the table after each workload (partial results survive an interrupt)."""
    full = dict(W5=1000, W6=(100, w6_variants), W7=512)
    sizes = dict(W5=200, W6=(100, 100), W7=64) if quick else full
    rows: list[dict] = []
    for name in names:
        if name == "W5":
            mdp, B = w5(sizes["W5"]), 1
            # The peers (one MDP at a time, minutes at 10^6 states) on a sub-grid, next to
            # jaxmdp and SciPy on that same sub-grid.
            side = min(peer_side, sizes["W5"])
            sub = f"W5 sub-grid {side}x{side}"
            rows += run_workload(sub, w5(side), 1, reps, limits, peers=1)
        elif name == "W6":
            mdp, B = w6(*sizes["W6"]), sizes["W6"][1]
        else:
            mdp, B = w7(sizes["W7"]), sizes["W7"]
        peers = peer_members if name == "W7" else 0
        rows += run_workload(name, mdp, B, reps, limits, peers=peers)
        del mdp
        print(table(rows), flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sparse_workloads", description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workloads", default="W5,W6,W7")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--w6-variants", type=int, default=1000, help="B of W6 (full: 1000)")
    p.add_argument(
        "--peer-side", type=int, default=300, help="W5's grid side for pymdptoolbox/QuantEcon"
    )
    p.add_argument("--peer-members", type=int, default=128, help="W7 members the peers solve")
    args = p.parse_args(argv)
    import jax

    jax.config.update("jax_platforms", "cpu")
    from benchmarks import limits as limits_mod

    limits = limits_mod.measure_host(quick=args.quick)
    _log(limits["summary"])
    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    for name in names:
        if name not in ("W5", "W6", "W7"):
            p.error(f"unknown workload {name}")
    rows = run(
        names,
        args.quick,
        limits,
        reps=args.reps,
        w6_variants=args.w6_variants,
        peer_side=args.peer_side,
        peer_members=args.peer_members,
    )
    load = os.getloadavg()
    text = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} ({'quick' if args.quick else 'full'} sizes), "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on "
        f"{os.cpu_count()} cores; limits: {limits['summary']}.\n\n" + table(rows)
    )
    print(text)
    if args.out:
        args.out.write_text(json.dumps(dict(rows=rows, limits=limits["read_gbps"]), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
