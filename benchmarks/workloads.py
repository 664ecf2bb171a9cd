"""The four fixed benchmark workloads W1..W4 of BASELINES.md, generated with seeded NumPy.

All arrays are float32 and use jaxmdp's layout (`transitions [..., S, A, S]`,
`rewards [B, S, A]`, `discount [B]`). Float64 consumers (the reference, the peers) upcast these
exact float32 numbers, so every implementation solves the same problems.

Transition rows are Dirichlet(1) draws quantised to multiples of 2^-24 with exact integer sums,
so every row sums to exactly 1 in float32 *and* float64 (pymdptoolbox checks row sums).

`scale` picks the size: "full" (BASELINES.md), "quick" (seconds on two busy cores; same
structure, fewer MDPs and states) or "gpu" (bigger batches for an accelerator).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

WORKLOADS = ("W1", "W2", "W3", "W4", "W1M")
# The four of BASELINES.md (run by default); W1M (issue 15) is the headline sweep at 10^6.
CORE = WORKLOADS[:4]
SCALES = ("full", "quick", "gpu")

# Tolerance per workload (issue 5). Every row states its stopping rule next to it.
TOLS = {"W1": 1e-5, "W2": 1e-3, "W3": 1e-3, "W4": 1e-2, "W1M": 1e-3}

SIZES: dict[str, dict[str, dict[str, int]]] = {
    "full": {
        "W1": {"n_steps": 1000},
        "W2": {"B": 2048, "S": 64, "A": 8},
        "W3": {"S": 2048, "A": 8},
        "W4": {"n_gamma": 64, "n_grid": 8, "S": 256, "A": 8},
        "W1M": {"n_steps": 1000, "n_gamma": 1000},
    },
    "quick": {
        "W1": {"n_steps": 100},
        "W2": {"B": 128, "S": 64, "A": 8},
        "W3": {"S": 256, "A": 8},
        "W4": {"n_gamma": 8, "n_grid": 4, "S": 64, "A": 8},
        "W1M": {"n_steps": 100, "n_gamma": 10},
    },
    "gpu": {
        "W1": {"n_steps": 10000},
        "W2": {"B": 16384, "S": 64, "A": 8},
        "W3": {"S": 8192, "A": 8},
        "W4": {"n_gamma": 256, "n_grid": 8, "S": 256, "A": 8},
        "W1M": {"n_steps": 1000, "n_gamma": 1000},
    },
}

_F32 = 4  # bytes per float32: the work every implementation is credited with


@dataclass
class Workload:
    """One batch of MDPs plus what the metrics need to know about it.

    Attributes:
      transitions: `[S, A, S]` when shared by the whole batch, else `[B, S, A, S]`.
      rewards: `[B, S, A]`.
      discount: `[B]`.
      ref_indices: the MDPs the float64 reference covers (all, or a stratified sub-batch).
    """

    name: str
    title: str
    transitions: np.ndarray
    rewards: np.ndarray
    discount: np.ndarray
    tol: float
    scale: str
    params: dict[str, Any]
    ref_indices: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        if self.ref_indices is None:
            self.ref_indices = np.arange(self.B)

    @property
    def shared_p(self) -> bool:
        return self.transitions.ndim == 3

    @property
    def single(self) -> bool:
        """One MDP (W3): solved without a batch axis."""
        return self.B == 1

    @property
    def B(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def S(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def A(self) -> int:
        return int(self.rewards.shape[2])

    @property
    def sweep_bytes(self) -> float:
        """Compulsory float32 traffic of one batch sweep: P (once if shared) + R + V read/write."""
        B, S, A = self.B, self.S, self.A
        p = S * A * S * (1 if self.shared_p else B)
        return float(_F32 * (p + B * S * A + 2 * B * S))

    @property
    def sweep_flops(self) -> float:
        B, S, A = self.B, self.S, self.A
        return float(B * (2 * S * A * S + 3 * S * A))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "scale": self.scale,
            "B": self.B,
            "S": self.S,
            "A": self.A,
            "shared_p": self.shared_p,
            "tol": self.tol,
            "discount_min": float(self.discount.min()),
            "discount_max": float(self.discount.max()),
            "sweep_bytes": self.sweep_bytes,
            "sweep_flops": self.sweep_flops,
            "ref_mdps": int(self.ref_indices.size),
            **self.params,
        }


def dirichlet_rows(rng: np.random.Generator, n_rows: int, n: int) -> np.ndarray:
    """`[n_rows, n]` float32 Dirichlet(1) rows in multiples of 2^-24 summing to exactly 1."""
    out = np.empty((n_rows, n), np.float32)
    chunk = max(1, (1 << 22) // n)
    for i in range(0, n_rows, chunk):
        m = min(chunk, n_rows - i)
        x = rng.standard_exponential((m, n))  # normalised exponentials are Dirichlet(1)
        x /= x.sum(axis=1, keepdims=True)
        q = np.floor(x * 2.0**24).astype(np.int64)
        q[np.arange(m), q.argmax(axis=1)] += (1 << 24) - q.sum(axis=1)
        out[i : i + m] = q * 2.0**-24  # exact: integers <= 2^24 times a power of two
    return out


def random_transitions(rng: np.random.Generator, batch: tuple[int, ...], S: int, A: int):
    return dirichlet_rows(rng, int(np.prod(batch, dtype=np.int64)) * S * A, S).reshape(
        *batch, S, A, S
    )


def gridworld_4x3() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Russell & Norvig's 4x3 world: `(P [11, 4, 11], step_mask [11, 4], exit_reward [11, 4])`.

    3 rows x 4 cols, wall at (1, 1), +1 exit at (0, 3), -1 exit at (1, 3); moves up, right,
    down, left are deterministic and bumping into the wall or an edge stays put. Exits are
    absorbing with reward 0; entering an exit pays +-1, every other move pays the step reward
    (`R = r_step * step_mask + exit_reward`).
    """
    rows, cols, wall = 3, 4, (1, 1)
    exits = {(0, 3): 1.0, (1, 3): -1.0}
    cells = [(r, c) for r in range(rows) for c in range(cols) if (r, c) != wall]
    index = {cell: i for i, cell in enumerate(cells)}
    S, A = len(cells), 4
    P = np.zeros((S, A, S), np.float32)
    step = np.zeros((S, A), np.float32)
    exit_r = np.zeros((S, A), np.float32)
    for (r, c), s in index.items():
        for a, (dr, dc) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1))):
            if (r, c) in exits:
                P[s, a, s] = 1.0
                continue
            nxt = (r + dr, c + dc)
            if nxt not in index:
                nxt = (r, c)
            P[s, a, index[nxt]] = 1.0
            if nxt in exits:
                exit_r[s, a] = exits[nxt]
            else:
                step[s, a] = 1.0
    return P, step, exit_r


def make_w1(n_steps: int) -> Workload:
    P, step, exit_r = gridworld_4x3()
    r_steps = np.linspace(-2.0, 0.0, n_steps, endpoint=False).astype(np.float32)
    gammas = np.linspace(0.9, 1.0, 10).astype(np.float32)
    R_one = (r_steps[:, None, None] * step + exit_r).astype(np.float32)  # [n_steps, S, A]
    rewards = np.tile(R_one, (gammas.size, 1, 1))  # gamma-major: b = g_idx * n_steps + r_idx
    discount = np.repeat(gammas, n_steps)
    return Workload(
        "W1",
        f"4x3 lecture gridworld, {n_steps} step rewards x 10 gammas in [0.9, 1.0] (shared P)",
        P,
        rewards,
        discount,
        TOLS["W1"],
        "",
        {"n_steps": n_steps, "n_gamma": 10},
    )


def lecture_slip(slip: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 4x3 world with slip (`1 - slip` intended, `slip / 2` to each perpendicular
    direction): `(P [11, 4, 11], step [11, 4], exit [11, 4])`, the expected step-reward
    indicator and exit reward of each action (`R = r_step * step + exit`)."""
    P0, step0, exit0 = gridworld_4x3()
    A = P0.shape[1]
    w = np.zeros((A, A), np.float64)  # w[a, d]: action a moves in direction d
    for a in range(A):
        w[a, a] = 1 - slip
        w[a, (a + 1) % A] += slip / 2  # the perpendicular directions (up, right, down, left)
        w[a, (a + 3) % A] += slip / 2
    P = np.einsum("ad,sdt->sat", w, P0.astype(np.float64))
    # Exits: every direction stays put, so the mixture does too (absorbing, reward 0).
    step = np.einsum("ad,sd->sa", w, step0)
    exit_r = np.einsum("ad,sd->sa", w, exit0)
    return P.astype(np.float32), step.astype(np.float32), exit_r.astype(np.float32)


def make_w1m(n_steps: int, n_gamma: int) -> Workload:
    """W1M (issue 15): the lecture world with slip 0.2, `n_steps` step rewards in [-2, 0] x
    `n_gamma` discounts in [0.5, 0.99], step-major (`b = i_step * n_gamma + j_gamma`, the
    order of `jaxmdp.sweep(step_reward=..., discount=...)`); float32, tol 1e-3."""
    P, step, exit_r = lecture_slip(0.2)
    r_steps = np.linspace(-2.0, 0.0, n_steps).astype(np.float32)
    gammas = np.linspace(0.5, 0.99, n_gamma).astype(np.float32)
    R_one = (r_steps[:, None, None] * step + exit_r).astype(np.float32)  # [n_steps, S, A]
    rewards = np.repeat(R_one, n_gamma, axis=0)
    discount = np.tile(gammas, n_steps)
    wl = Workload(
        "W1M",
        f"4x3 lecture world, slip 0.2: {n_steps} step rewards in [-2, 0] x {n_gamma} "
        "discounts in [0.5, 0.99] (shared P)",
        P,
        rewards,
        discount,
        TOLS["W1M"],
        "",
        {"n_steps": n_steps, "n_gamma": n_gamma, "slip": 0.2},
    )
    # float64 reference on a sub-batch: every step reward, 20 discounts each (plus corners).
    wl.ref_indices = stratified_indices(n_steps, n_gamma, min(n_gamma, 20))
    return wl


def make_w2(B: int, S: int, A: int, seed: int) -> Workload:
    rng = np.random.default_rng([seed, 2])
    P = random_transitions(rng, (B,), S, A)
    R = rng.random((B, S, A), dtype=np.float32)
    g = np.full(B, 0.95, np.float32)
    title = f"{B} independent dense MDPs, S={S}, A={A}, gamma=0.95"
    return Workload("W2", title, P, R, g, TOLS["W2"], "", {})


def make_w3(S: int, A: int, seed: int) -> Workload:
    rng = np.random.default_rng([seed, 3])
    P = random_transitions(rng, (), S, A)
    R = rng.random((1, S, A), dtype=np.float32)
    g = np.full(1, 0.99, np.float32)
    return Workload("W3", f"one dense MDP, S={S}, A={A}, gamma=0.99", P, R, g, TOLS["W3"], "", {})


def make_w4(n_gamma: int, n_grid: int, S: int, A: int, seed: int) -> Workload:
    rng = np.random.default_rng([seed, 4])
    P = random_transitions(rng, (), S, A)
    R0 = rng.random((S, A), dtype=np.float32)
    gammas = np.linspace(0.9, 0.99, n_gamma).astype(np.float32)
    scales = np.linspace(0.5, 2.0, n_grid).astype(np.float32)
    offsets = np.linspace(-1.0, 1.0, n_grid).astype(np.float32)
    # gamma-major order: b = (g_idx * n_grid + scale_idx) * n_grid + offset_idx
    sc = np.repeat(scales, n_grid)
    off = np.tile(offsets, n_grid)
    R_grid = (sc[:, None, None] * R0 + off[:, None, None]).astype(np.float32)
    rewards = np.tile(R_grid, (n_gamma, 1, 1))
    discount = np.repeat(gammas, n_grid * n_grid)
    wl = Workload(
        "W4",
        f"{n_gamma * n_grid**2} variants of one MDP (S={S}, A={A}): {n_gamma} gammas in "
        f"[0.9, 0.99] x {n_grid}x{n_grid} reward scale [0.5, 2] x offset [-1, 1] (shared P)",
        P,
        rewards,
        discount,
        TOLS["W4"],
        "",
        {"n_gamma": n_gamma, "n_grid": n_grid},
    )
    if wl.B > 512:  # the float64 reference solves a stratified sub-batch of big sweeps
        wl.ref_indices = stratified_indices(n_gamma, n_grid * n_grid, per_gamma=4)
    return wl


def stratified_indices(n_gamma: int, n_cells: int, per_gamma: int) -> np.ndarray:
    """Every gamma, `per_gamma` reward cells rotating across the grid, plus both corners."""
    if per_gamma >= n_cells:
        return np.arange(n_gamma * n_cells)
    stride = n_cells // per_gamma
    idx = [
        g * n_cells + (j * stride + 5 * g) % n_cells
        for g in range(n_gamma)
        for j in range(per_gamma)
    ]
    return np.unique(np.array(idx + [0, n_gamma * n_cells - 1]))


def make_workload(name: str, scale: str = "full", seed: int = 0) -> Workload:
    """Build workload `name` ("W1".."W4") at size `scale` ("full", "quick" or "gpu")."""
    if scale not in SIZES:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    size = SIZES[scale][name]
    if name == "W1":
        wl = make_w1(**size)
    elif name == "W2":
        wl = make_w2(**size, seed=seed)
    elif name == "W3":
        wl = make_w3(**size, seed=seed)
    elif name == "W4":
        wl = make_w4(**size, seed=seed)
    elif name == "W1M":
        wl = make_w1m(**size)
    else:
        raise ValueError(f"unknown workload {name!r}; expected one of {WORKLOADS}")
    wl.scale = scale
    return wl


def random_batch(B: int, S: int, A: int, gamma: float = 0.95, seed: int = 0) -> Workload:
    """A W2-style batch of independent random MDPs of any size (for the scaling curves)."""
    wl = make_w2(B, S, A, seed)
    wl.discount[:] = np.float32(gamma)
    wl.title = f"{B} random MDPs, S={S}, A={A}, gamma={gamma}"
    return wl
