"""Peer libraries (optional): pymdptoolbox and QuantEcon, float64, one MDP at a time.

Both solve one MDP per call, so batched workloads run as a Python loop over an evenly spaced
subset in gamma-major order (at least `Config.peer_min_mdps` MDPs, sized by a pilot solve to
about `Config.peer_budget_s` per repetition) and the time is scaled by B / subset. Constructors
and input checks are inside the timed loop (they are part of using the library), except for the
single big MDP of W3, which is built once (pymdptoolbox PI: per solve, its `run()` mutates).
gamma = 1 MDPs (W1) are left out of the subset: QuantEcon refuses gamma = 1 and pymdptoolbox
prints a warning per construction.

Rows and how each is held to our rules (tol = the workload's tolerance):
- pymdptoolbox VI, "sup" / "span": its `ValueIteration` (construction, Bellman operator) with
  `run()` overridden by our stopping rules (span: plus the Puterman correction). Its stock rule
  (span without correction) is left out: BASELINES.md measured values off by 13-264;
- pymdptoolbox PI (W3): stock `PolicyIteration(eval_type=0)` (dense solve);
- QuantEcon VI: `value_iteration(v_init=0, epsilon=tol)` is exactly our sup rule;
- QuantEcon MPI: stock `modified_policy_iteration(epsilon=tol, k=20)`, its own span rule with
  the same correction; QuantEcon PI (W3): stock `policy_iteration()`.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks._harness import Candidate, Config, Outcome
from benchmarks.baselines_numpy import stop_mask
from benchmarks.workloads import Workload

try:
    import mdptoolbox.mdp as _mdptoolbox
except ImportError:  # optional
    _mdptoolbox = None
try:
    from quantecon.markov import DiscreteDP as _DiscreteDP
except ImportError:  # optional
    _DiscreteDP = None

MPI_K = 20


def _mdptoolbox_vi():
    class OurRuleVI(_mdptoolbox.ValueIteration):
        """pymdptoolbox's ValueIteration with `run()` replaced by our stopping rules."""

        def __init__(self, P, R, discount, tol, rule, max_iter):
            super().__init__(P, R, discount, epsilon=tol, max_iter=max_iter)
            self.max_iter, self.tol, self.rule = max_iter, tol, rule  # undo its own bound

        def run(self):
            g, V, stop, k = self.discount, np.zeros(self.S), False, 0
            while k < self.max_iter:
                k += 1
                self.policy, Vn = self._bellmanOperator(V)
                d, V = Vn - V, Vn
                stop = bool(stop_mask(d.max(), d.min(), g, self.tol, self.rule))
                if stop:
                    if self.rule == "span" and g < 1:
                        V = V + g / (1 - g) * (d.max() + d.min()) / 2
                    break
            self.V, self.iter, self.converged = V, k, stop

    return OurRuleVI


def _solvers(wl: Workload):
    """(name, algo, rule, eval_sweeps, build, solve) per peer row.

    `build(P_ass, Q_sas, R_sa, g)` is the library's constructor (with its input checks);
    `solve(obj, max_iter) -> (V, iterations, converged)` runs it.
    """
    tol, out = wl.tol, []
    if _mdptoolbox is not None:
        VI = _mdptoolbox_vi()
        for rule in ("span", "sup"):

            def build(P_ass, Q_sas, R_sa, g, rule=rule):
                return VI(P_ass, R_sa, g, tol, rule, 1)

            def solve(vi, max_iter):
                vi.max_iter = max_iter
                vi.run()
                return vi.V, vi.iter, vi.converged

            out.append(("pymdptoolbox VI, our rule", "VI", rule, 0, build, solve))
        if wl.single:

            def solve_pi(args, max_iter):  # run() mutates the object: construct per solve
                P_ass, R_sa, g = args
                pi = _mdptoolbox.PolicyIteration(P_ass, R_sa, g, eval_type=0, max_iter=max_iter)
                pi.run()
                return np.asarray(pi.V), pi.iter, pi.iter < max_iter

            def build_pi(P_ass, Q_sas, R_sa, g):
                return P_ass, R_sa, g

            out.append(
                ("pymdptoolbox PI (dense solve)", "PI", "policy stable", 0, build_pi, solve_pi)
            )
    if _DiscreteDP is not None:

        def build_qe(P_ass, Q_sas, R_sa, g):
            return _DiscreteDP(R_sa, Q_sas, g)

        def solve_qe_vi(ddp, max_iter):
            v0 = np.zeros(ddp.num_states)
            res = ddp.value_iteration(v_init=v0, epsilon=tol, max_iter=max_iter)
            return res.v, res.num_iter, res.num_iter < max_iter

        def solve_qe_mpi(ddp, max_iter):
            res = ddp.modified_policy_iteration(epsilon=tol, max_iter=max_iter, k=MPI_K)
            return res.v, res.num_iter, res.num_iter < max_iter

        def solve_qe_pi(ddp, max_iter):
            res = ddp.policy_iteration(max_iter=max_iter)
            return res.v, res.num_iter, res.num_iter < max_iter

        out.append(("quantecon VI", "VI", "sup", 0, build_qe, solve_qe_vi))
        out.append((f"quantecon MPI (k={MPI_K})", "MPI", "span", MPI_K, build_qe, solve_qe_mpi))
        if wl.single:
            out.append(("quantecon PI", "PI", "policy stable", 0, build_qe, solve_qe_pi))
    return out


def _mdp64(wl: Workload, i: int):
    """(P [A,S,S], Q [S,A,S], R [S,A], gamma) of MDP i in float64 (prepared outside timing)."""
    Q = (wl.transitions if wl.shared_p else wl.transitions[i]).astype(np.float64)
    P_ass = np.ascontiguousarray(Q.transpose(1, 0, 2))
    return P_ass, Q, wl.rewards[i].astype(np.float64), float(wl.discount[i])


def candidates(wl: Workload, cfg: Config) -> list[Candidate]:
    if cfg.device == "gpu":
        return [Candidate("pymdptoolbox / quantecon", "peer", "VI", "-", skip="CPU-only peers")]
    if _mdptoolbox is None and _DiscreteDP is None:
        return [Candidate("pymdptoolbox / quantecon", "peer", "VI", "-", skip="not installed")]
    if wl.name == "W1M":  # float32 slip rows (0.8 + 0.1 + 0.1) are not exactly stochastic
        why = "W1M: pymdptoolbox refuses rows that do not sum to exactly 1 in float32"
        return [Candidate("pymdptoolbox / quantecon", "peer", "VI", "-", skip=why)]
    if wl.single:
        return [_single_candidate(wl, cfg, *s) for s in _solvers(wl)]
    pool = wl.ref_indices[wl.discount[wl.ref_indices] < 1]
    shared = _mdp64(wl, 0)[:2] if wl.shared_p else None
    return [_loop_candidate(wl, cfg, pool, shared, *s) for s in _solvers(wl)]


def _loop_candidate(wl, cfg, pool, shared, name, algo, rule, evals, build, solve) -> Candidate:
    def data(i):
        if shared is not None:  # one float64 P for the whole loop, as a user would
            return (*shared, wl.rewards[i].astype(np.float64), float(wl.discount[i]))
        return _mdp64(wl, i)

    def one(x, max_iters):
        return solve(build(*x), max_iters)

    # Pilot: warm up, then time the slowest-gamma MDP once to size the subset.
    slow = data(int(pool[np.argmax(wl.discount[pool])]))
    one(slow, cfg.max_iters)
    t0 = time.perf_counter()
    one(slow, cfg.max_iters)
    per_mdp = max(time.perf_counter() - t0, 1e-6)
    n = int(np.clip(cfg.peer_budget_s / per_mdp, cfg.peer_min_mdps, pool.size))
    subset = np.unique(pool[np.linspace(0, pool.size - 1, n).round().astype(int)])
    inputs = [data(int(i)) for i in subset]

    def run(max_iters):
        return [one(x, max_iters or cfg.max_iters) for x in inputs]

    def finish(raw):
        V = np.stack([np.asarray(r[0], np.float64) for r in raw])
        iters = np.array([r[1] for r in raw])
        return Outcome(V, iters, indices=subset, converged=np.array([bool(r[2]) for r in raw]))

    how = f"subset {subset.size}/{wl.B} x{wl.B / subset.size:.1f}"
    notes = "gamma=1 MDPs left out of the subset" if (wl.discount >= 1).any() else ""
    return Candidate(
        name,
        "peer",
        algo,
        rule,
        dtype="f64",
        run=run,
        finish=finish,
        time_scale=wl.B / subset.size,
        how=how,
        eval_sweeps=evals,
        notes=notes,
    )


def _single_candidate(wl, cfg, name, algo, rule, evals, build, solve) -> Candidate:
    obj = build(*_mdp64(wl, 0))  # one big MDP: the constructor runs once, untimed

    def run(max_iters):
        return solve(obj, max_iters or cfg.max_iters)

    def finish(raw):
        V, k, ok = raw
        return Outcome(np.asarray(V, np.float64)[None], np.array([k]), converged=np.array([ok]))

    return Candidate(
        name,
        "peer",
        algo,
        rule,
        dtype="f64",
        run=run,
        finish=finish,
        capped=algo == "VI",
        eval_sweeps=evals,
        notes="constructor run once, untimed",
    )
