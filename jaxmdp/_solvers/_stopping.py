"""Shared stopping rule and certificate of the value-iteration family (VI, modified PI, ...).

`error_bound` is a true bound on `max_s |values - V*|` and `max |q_values - Q*|` for the data
AS GIVEN (the arrays in the solve's dtype) and the arithmetic actually performed, at every
discount g < 1, in float32 and float64. This docstring derives it.

Exact arithmetic (Puterman 1994, Thm 6.6.6 and Prop. 6.6.5). T is monotone and, for a
stochastic P, T(V + k) = TV + g k. For any V and d = TV - V, with c = g / (1 - g):

    TV + c min(d) <= V* <= TV + c max(d),    q + c min(d) <= Q* <= q + c max(d),

where q = r + g P V (so TV = max_a q). Returning the midpoint TV + c (max d + min d) / 2
(and q + the same shift) leaves at most c span(d) / 2; the policy greedy for V is within
c span(d) of optimal.

Rounding. Four facts about the data and the computation close the gap to finite precision
(u = eps / 2 is the unit roundoff of the dtype, gamma_n = n u / (1 - n u), sup norms):

1. One computed backup. For each (s, a) the code computes q^ = r + g * (sum_j p_j V_j) with
   K = the most nonzero successors of any row (zero terms add nothing, exactly): K
   multiplications and at most K - 1 additions, then one multiply and one add. In any
   summation order (Higham 2002, Sec. 3.1) |q^ - q| <= gamma_{K+2} (|r| + g sum_j |p_j| |V_j|),
   so with M_V = max|V|, r_max = max |r| over available actions and p_abs >= max sum_j |p_j|:

       rho = gamma_{K+2} (r_max + g p_abs M_V) + (flushed subnormals: (K + 3) tiny),

   and the computed backup W = max_a q^ satisfies |W - TV| <= rho (the max is exact).
2. Rows that do not sum to exactly 1 (the float32 cast of a float64 distribution is off by
   about u). Let s_sa = sum_j p_j and sigma >= max |s_sa - 1| over available rows. The
   operator T~ of the normalised P~ = P / s IS stochastic, and |TV - T~V| <= g sigma^ p_abs
   M_V with sigma^ = sigma / (1 - sigma). So W is within rho~ = rho + g sigma^ p_abs M_V of
   T~V, and Puterman's bounds hold for T~ with d~ = T~V - V.
3. The difference d^ = fl(W - V) carries its own rounding: |d^ - (W - V)| <= u |d^| / (1 - u).
   So d~ lies within eta = rho~ + u D / (1 - u) of d^ (D = max |d^|), and
   V~* lies in [W - rho~ + c (min d^ - eta), W + rho~ + c (max d^ + eta)].
4. The correction itself: the shift c (max d^ + min d^) / 2 is computed with at most 5
   roundings (1 - g, the division, the sum, the product; halving is exact), so it is off by
   at most gamma_5 c D; adding it to W (or to q^) rounds once more, by u M_out / (1 - u),
   M_out >= max |returned values, finite Q| (bounded by r_max + g p_abs M_V plus the shift).

Summing, the returned values and Q satisfy, against the fixed point V~* of T~,

    |values - V~*| <= c span(d^) / 2 + rho~ / (1 - g) + c u D / (1 - u) + gamma_5 c D
                      + u M_out / (1 - u) =: B~,

the rounding entering multiplied by 1 / (1 - g) = 1 + c as the brief derivation shows. Last,
V* of the data itself (rows as given) differs from V~*: T is a (g p_abs)-contraction and
|T V~* - T~ V~*| <= g sigma^ p_abs |V~*|, so |V* - V~*| <= g sigma^ p_abs (M_out + B~) /
(1 - g p_abs). `error_bound` is the sum of the two, times (1 + 16 u) for the rounding of the
bound's own arithmetic (all terms are non-negative). The policy greedy for V is within
2 error_bound of optimal (Puterman's argument with T_pi V >= TV - 2 rho~).

Every quantity above is computed inside the solve: K, p_abs and sigma once per MDP
(`rounding`, carried in `DiffStats.rnd`), the rest from the statistics of each sweep. In
float64 the rounding part is ~K 1e-16 |V| / (1 - g) (1e-9 for K = 2048, |V| = 100, g =
0.99); in float32 it is what float32 can certify (lecture world at 0.99: ~1e-4).

Stopping rule (tol > 0, or None = automatic):

- rule "span" (default): stop when error_bound < tol / 2 (in exact arithmetic, where the
  rounding part is 0: span(d) < tol (1 - g) / g, QuantEcon's promise: values and Q within
  tol / 2, the policy tol-optimal). On mixing MDPs this needs a few sweeps where the sup-norm
  rule needs hundreds (span(d) contracts much faster than max|d|).
- rule "sup": stop when c max|d| + (rounding part) < tol / 2 (QuantEcon's max|d| <
  tol (1 - g) / (2 g)); same guarantee (it implies the span test), usually many more sweeps.
- precision floor: the statistic stops falling at a few ulp of max|V| (rounding noise in d),
  and below the rounding part of the bound a smaller span cannot buy a smaller bound. The
  iteration stops at 1 ulp, at <= 16 ulp without progress for two sweeps (`stall`; solvers
  that do not track it use a fixed 4 ulp floor), or once c span(d) / 2 <= (rounding part) / 4
  (error_bound within 25% of the best this data can certify) once the exact-arithmetic
  test has passed (c span(d) / 2 < tol / 2: the rounding part is a worst case, often far
  above the actual error, so it never ends the loop before the classical rule). If the
  tol test has not passed by then, the status is PRECISION_LIMITED, unless error_bound <=
  tol / 2 after all.
- `tol=None` (the solvers' default): aim for 1e-6, or, where the dtype cannot certify that,
  for the tightest bound it can; both count as SUCCESS and `error_bound` says which was
  reached. An explicit `tol` is a promise: PRECISION_LIMITED when it cannot be kept.
- discount 1: stop when max|d| < tol. No a-priori bound exists (`error_bound = inf`); the
  values are V* where the iteration has reached its fixed point (episodic problems whose
  policies all terminate). Divergence is detected: T is monotone and T(V + k) = TV + k, so
  once min(d~) > 0 (that is min(d^) > eta) T^n V >= V + n min(d~) and the values grow
  without bound: `Status.UNBOUNDED` (and symmetrically max(d^) < -eta: -inf). The optimal
  gain (long-run reward per step) lies in [min d~, max d~] in every state; for such members
  `residual` = (max d^ + min d^) / 2 and `error_bound` = (max d^ - min d^) / 2 + eta, so
  the gain lies in residual +- error_bound. A proper episodic problem has an absorbing
  zero-reward state where d = 0, so it never triggers this.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmdp import _operators as ops
from jaxmdp._solution import Status
from jaxmdp._solvers.base import RUNNING, reduce_states

RULES = ("span", "sup")
DEFAULT_TOL = 1e-6


class Rounding(NamedTuple):
    """Per-MDP constants of the rounding analysis (module docstring), computed once."""

    gamma: jax.Array  # [] relative rounding of one backup, gamma_{K+2} (+ solver extras)
    r_max: jax.Array  # [] max |r(s, a)| over available actions
    p_abs: jax.Array  # [] >= max_{s,a} sum_j |p(j | s, a)| (exact)
    sigma: jax.Array  # [] >= max_{s,a} |sum_j p(j | s, a) - 1| over available rows (exact)
    extra: jax.Array  # [] absolute rounding a solver's backup adds (soft max: log-sum-exp)


class DiffStats(NamedTuple):
    dmax: jax.Array  # [] max_s (TV - V)
    dmin: jax.Array  # [] min_s (TV - V)
    stall: jax.Array | None = None  # [] int32 sweeps without decrease of the statistic
    rnd: Rounding | None = None  # the MDP's rounding constants (travel with the statistics)


def _unit(dtype) -> float:
    return float(jnp.finfo(dtype).eps) / 2


def _gamma(n, u):
    return n * u / (1 - n * u)


# `rounding` of one sparse MDP runs in blocks of this many states above it (its temporaries:
# a block's `[C, A]` arrays, not the whole model's).
_ROUNDING_CHUNK = 1 << 15
_LANES = 8


def _lane_sums(parts: tuple) -> tuple:
    """Sums over the last axis of each array of `parts` (same shapes), in one pass: entry
    `j` goes to lane `j % 8`, each lane adds its entries in order, then the 8 lanes are added
    in order (zeros pad the last group; they add nothing).

    Two variadic `lax.reduce`s, which XLA runs as written (the lanes across a vector): the
    same bits as NumPy doing the same steps, for a batch, its members and the flattened
    rows, under AVX-512, AVX2 and SSE4.2 and either CPU emitter (float32 and float64,
    checked by hand). A tile of W2 (`[8, 64, 8, 64]` vmapped, medians of 200 calls): 136 us
    (one sweep `P @ V`: 62 us); one row at a time in order 260 us; three dots with ones
    (before) 496 us. W3 (one `[2048, 8, 2048]` float32 MDP): 17 ms, temporaries 0.3 MB; the
    three dots took ~120 ms and wrote 269 MB of `(p != 0)` and `|p|` first.
    """
    K = parts[0].shape[-1]
    groups = -(-K // _LANES)
    pad = [(0, 0)] * (parts[0].ndim - 1) + [(0, groups * _LANES - K)]
    shape = parts[0].shape[:-1] + (groups, _LANES)
    lanes = tuple(jnp.pad(x, pad).reshape(shape) for x in parts)
    zeros = tuple(jnp.zeros((), x.dtype) for x in parts)

    def add(a, b):
        return tuple(x + y for x, y in zip(a, b, strict=True))

    by_lane = jax.lax.reduce(lanes, zeros, add, (len(shape) - 2,))
    return jax.lax.reduce(by_lane, zeros, add, (len(shape) - 2,))


def row_stats(p: jax.Array, slots: bool = False):
    """(nonzero count, sum, sum of |p|) of each row of `p [..., K]` (the last axis), in one
    pass; `slots`: padded sparse slots.

    Summed in the same order in every program (a batch and its members' solves, any vector
    width): the sparse form's few slots slab by slab (fused, no `[..., K]` copies: 3x the
    probabilities' bytes at 10^7 states before); dense rows by `_lane_sums`. Three dot
    products with ones, before, ran three passes and wrote `(p != 0)` and `|p|` out first.
    """
    parts = ((p != 0).astype(p.dtype), p, jnp.abs(p))
    if slots and p.shape[-1] <= 16:
        return tuple(
            functools.reduce(lambda a, k: a + x[..., k], range(1, x.shape[-1]), x[..., 0])
            for x in parts
        )
    return _lane_sums(parts)


def rounding(probs, rewards: jax.Array, *, batch_last: bool = False, axis=None):
    """`Rounding` constants of an MDP (or of a batch sharing `probs`).

    Args:
      probs: transitions in either form (`jaxmdp._operators.rows` takes their rows), or
        rows along the last axis: `[S, A, S]` dense, or any layout of rows `[..., K]`
        (padded sparse rows: zeros count for nothing).
      rewards: rewards whose entries align with the rows of `probs` (broadcasting; with
        `batch_last`, `probs`' rows get a trailing axis first: rows `[A, S]`, rewards
        `[A, S, B]`). `-inf` marks unavailable actions, whose rows are ignored.
      axis: the axes of the broadcast rows to reduce (None: all, one MDP).

    Returns:
      `Rounding` whose fields have the shape left after reducing `axis`.
    """
    slots = ops.form(probs) == "sparse"
    probs = ops.rows(probs)
    dtype = jnp.result_type(probs, rewards)
    u = _unit(dtype)
    # Constants of the data, not functions of it: no derivative (and `lax.reduce` of
    # several operands has no differentiation rule).
    p = jax.lax.stop_gradient(jnp.asarray(probs, dtype))

    r = jax.lax.stop_gradient(jnp.asarray(rewards, dtype))
    zero = jnp.zeros((), dtype)

    def maxima(p, r):
        """(max nonzero count, max |row sum - 1|, max row sum of |p|, max |r|) over rows."""
        counts, sums, abss = row_stats(p, slots)
        nnz = jnp.max(counts)  # exact integers
        if batch_last:
            sums, abss = sums[..., None], abss[..., None]
        avail = jnp.isfinite(r)
        dev = jnp.max(jnp.where(avail, jnp.abs(sums - 1), zero), axis=axis)
        ab = jnp.max(jnp.where(avail, abss, zero), axis=axis)
        r_max = jnp.max(jnp.where(avail, jnp.abs(r), zero), axis=axis)
        return nnz, dev, ab, r_max

    S = p.shape[0]
    chunked = slots and axis is None and not batch_last and p.ndim == 3 and S > _ROUNDING_CHUNK
    if chunked and r.shape == p.shape[:2]:
        # One MDP's sparse rows, in blocks of states: XLA:CPU's reductions do not fuse their
        # elementwise producers, so over all rows at once each `(p != 0)` slab, `|p|`,
        # the row sums and the selects were written out as `[S, A]` arrays (6 of them: 10x
        # the values' bytes, the largest temporary of a 10^7-state solve). Every constant is
        # a max, exact in any grouping, and each row's sum keeps its slab order, so the
        # blocks (the last one overlapping its predecessor) give the same bits.
        C = _ROUNDING_CHUNK

        def block(i, acc):
            start = jnp.minimum(i * C, S - C)
            part = maxima(
                jax.lax.dynamic_slice_in_dim(p, start, C), jax.lax.dynamic_slice_in_dim(r, start, C)
            )
            return tuple(jnp.maximum(a, b) for a, b in zip(acc, part, strict=True))

        init = (zero, zero, zero, zero)
        nnz, dev, ab, r_max = jax.lax.fori_loop(0, -(-S // C), block, init)
    else:
        nnz, dev, ab, r_max = maxima(p, r)
    k = jnp.maximum(nnz, 1.0)
    g_sum = _gamma(k, u)  # the computed row sums, any order
    p_abs = ab * (1 + g_sum) * (1 + 2 * u)
    # |exact sum - 1| <= |computed sum - 1| + g_sum p_abs. Written as max(dev - e, 0) + 2 e
    # (>= dev + e): a deviation within the sum's own rounding (a normalised row cast to
    # float32) then gives 2 e whatever the summation order, so two programs (a batch and a
    # single solve) get the same constant, not one that jumps with the last bit of a sum.
    e = g_sum * p_abs
    sigma = (jnp.maximum(dev - e, 0) + 2 * e) * (1 + 2 * u)
    gamma = _gamma(k + 2, u) * jnp.ones_like(r_max)
    return Rounding(gamma, r_max, p_abs, sigma, jnp.zeros_like(r_max))


def initial_stats(dtype, shape=(), track_stall: bool = False, rnd: Rounding | None = None):
    stall = jnp.zeros(shape, jnp.int32) if track_stall else None
    if rnd is not None:
        rnd = Rounding(*(jnp.broadcast_to(jnp.asarray(x, dtype), shape) for x in rnd))
    return DiffStats(jnp.full(shape, jnp.inf, dtype), jnp.full(shape, -jnp.inf, dtype), stall, rnd)


def diff_stats(
    new_values: jax.Array,
    values: jax.Array,
    axis=None,
    *,
    prev: DiffStats | None = None,
    discount=None,
    rule: str = "span",
) -> DiffStats:
    """Max and min of TV - V (over all axes, or over the state `axis` of a batched layout).

    With `prev` the rounding constants carry over; if `prev` tracks `stall`, it also counts
    how many sweeps in a row the statistic has not decreased (needs `discount`).
    """
    d = new_values - values
    out = DiffStats(reduce_states(d, jnp.maximum, axis), reduce_states(d, jnp.minimum, axis))
    if prev is None:
        return out
    out = out._replace(rnd=prev.rnd)
    if prev.stall is None:
        return out
    no_progress = statistic(out, discount, rule) >= statistic(prev, discount, rule)
    return out._replace(stall=jnp.where(no_progress, prev.stall + 1, 0).astype(jnp.int32))


def _coef(discount):
    g = discount
    below = g < 1
    return below, jnp.where(below, g / jnp.where(below, 1 - g, 1), 0.0)


def statistic(stats: DiffStats, discount, rule: str) -> jax.Array:
    """The number the rule compares with its threshold (reported as `residual`)."""
    below = jnp.asarray(discount) < 1  # `_coef`'s test, without its division
    sup = jnp.maximum(jnp.abs(stats.dmax), jnp.abs(stats.dmin))
    if rule == "span":
        return jnp.where(below, stats.dmax - stats.dmin, sup)
    return sup


def backup_error(rnd: Rounding, discount, m_in):
    """rho~: bound on |computed backup - T~ V| for inputs with max|V| <= `m_in` (item 1 + 2)."""
    dtype = jnp.result_type(m_in)
    u = _unit(dtype)
    tiny = float(jnp.finfo(dtype).tiny)
    g = jnp.asarray(discount, dtype)
    sig_hat = rnd.sigma / jnp.maximum(1 - rnd.sigma, 0.5)
    flushed = tiny * (3 + rnd.gamma / u)
    return (
        rnd.gamma * (rnd.r_max + g * rnd.p_abs * m_in)
        + g * sig_hat * rnd.p_abs * m_in
        + rnd.extra
        + flushed
    )


def data_term(rnd: Rounding, discount, m_out, bound):
    """|V* - V~*|: the fixed point of the rows as given vs the normalised ones (item 2)."""
    g = jnp.asarray(discount, jnp.result_type(m_out))
    sig_hat = rnd.sigma / jnp.maximum(1 - rnd.sigma, 0.5)
    margin = 1 - g * rnd.p_abs
    ok = margin > 0
    term = g * sig_hat * rnd.p_abs * (m_out + bound) / jnp.where(ok, margin, 1)
    return jnp.where(ok, term, jnp.inf)


def round_up(x, bits: int = 8):
    """`x >= 0` rounded UP to `bits` significant bits (inf and nan unchanged).

    A bound stays a bound when rounded up, and the coarse grid makes it the same number in
    every program: the bound's own arithmetic (a few dozen operations, which XLA fuses and
    may contract into fused multiply-adds differently in a batch and in a single solve)
    changes its last bits, and rounding to 8 bits (<= 0.8% looser) removes them except when
    the exact value lies within those last bits of a grid point.

    On the bits: a positive float's bit pattern, read as an unsigned integer, grows with
    the float, so adding `2^drop - 1` and clearing the low `drop` bits rounds up to the
    next number with `bits` significant bits (a carry moves to the next binade; past the
    largest float: inf, still a bound; subnormals round to a coarser grid, still up). The
    same numbers as `ldexp(ceil(ldexp(m, bits)), e - bits)` with `m, e = frexp(x)` for
    normal x, in 4 operations instead of frexp's and ldexp's ~60 (a first solve of the
    lecture world traced them in 35 of its 540 ms).
    """
    x = jnp.asarray(x)
    drop = jnp.finfo(x.dtype).nmant - (bits - 1)
    if drop <= 0:
        return x
    uint = jnp.dtype(f"uint{8 * x.dtype.itemsize}")
    low = jnp.asarray((1 << drop) - 1, uint)
    i = jax.lax.bitcast_convert_type(x, uint)
    up = jax.lax.bitcast_convert_type((i + low) & ~low, x.dtype)
    return jnp.where(jnp.isfinite(x) & (x > 0), up, x)


class Certificate(NamedTuple):
    bound: jax.Array  # [] error_bound of the corrected values (inf at discount 1)
    rounding: jax.Array  # [] the part of `bound` that no further sweep removes
    eta: jax.Array  # [] |d~ - d^| <= eta: the uncertainty of the statistics themselves
    mag: jax.Array  # [] max|W| (inf / nan when W is not finite)


def certificate(
    stats: DiffStats, new_values: jax.Array, discount, axis=None, coef=None
) -> Certificate:
    """The bound of the module docstring for the corrected `new_values` (W = computed TV).
    `coef`: `_coef(discount)` where the caller has it (one computation per program)."""
    if stats.rnd is None:
        raise ValueError("internal: DiffStats carry no rounding constants (initial_stats(rnd=))")
    rnd = stats.rnd
    dtype = new_values.dtype
    u = _unit(dtype)
    below, c = _coef(discount) if coef is None else coef
    g = jnp.asarray(discount, dtype)
    mag = reduce_states(jnp.abs(new_values), jnp.maximum, axis)
    span = stats.dmax - stats.dmin
    big = jnp.maximum(jnp.abs(stats.dmax), jnp.abs(stats.dmin))
    m_in = mag + big * (1 + 2 * u)  # the backed-up V: W - d, with d's own rounding
    rho = backup_error(rnd, g, m_in)
    eta = rho + u * big / (1 - u)
    m_q = rnd.r_max + g * rnd.p_abs * m_in
    m_out = jnp.maximum(m_q * (1 + rnd.gamma) + rnd.extra, mag) + c * big
    one_minus = jnp.where(below, 1 - g, 1)
    rest = rho / one_minus + c * u * big / (1 - u) + _gamma(5, u) * c * big + u * m_out / (1 - u)
    core = c * span / 2 + rest
    fp = data_term(rnd, g, m_out, core)
    scale = 1 + 16 * u
    bound = jnp.where(below, (core + fp) * scale, jnp.inf)
    return Certificate(bound, jnp.where(below, (rest + fp) * scale, jnp.inf), eta, mag)


def unbounded(stats: DiffStats, cert: Certificate, discount):
    """At discount 1: [] bool, the values provably grow without bound (either direction)."""
    at_one = discount >= 1
    return at_one & ((stats.dmin - cert.eta > 0) | (stats.dmax + cert.eta < 0))


def code(ok, floor, kept, unbounded_, finite):
    """int32 status from the tests: UNBOUNDED where proven (a proof beats a small |d|),
    SUCCESS if `ok`, at the floor SUCCESS / PRECISION_LIMITED (by `kept`), else RUNNING;
    NONFINITE wherever not `finite`."""
    at_floor = jnp.where(kept, Status.SUCCESS, Status.PRECISION_LIMITED)
    out = jnp.where(ok, Status.SUCCESS, jnp.where(floor, at_floor, RUNNING))
    out = jnp.where(unbounded_, Status.UNBOUNDED, out)
    return jnp.where(finite, out, Status.NONFINITE).astype(jnp.int32)


def status(stats: DiffStats, new_values: jax.Array, discount, tol, rule: str, axis=None):
    """int32 status code(s); `axis` is the state axis of a batched `new_values` layout.

    `tol=None` is the automatic mode described in the module docstring.
    """
    auto = tol is None
    tol = DEFAULT_TOL if auto else tol
    below, c = coef = _coef(discount)
    cert = certificate(stats, new_values, discount, axis, coef)
    stat = statistic(stats, discount, rule)
    half = jnp.asarray(tol, new_values.dtype) / 2
    if rule == "span":
        ok_below = cert.bound < half
    else:
        big = jnp.maximum(jnp.abs(stats.dmax), jnp.abs(stats.dmin))
        ok_below = c * big + cert.rounding < half
    ok = jnp.where(below, ok_below, stat < tol)
    finite = jnp.isfinite(cert.mag)
    ulp = jnp.finfo(new_values.dtype).eps * jnp.where(finite, cert.mag, 0.0)
    if stats.stall is None:
        floor = stat <= 4 * ulp  # `resolution_floor`'s default
    else:
        floor = (stat <= ulp) | ((stat <= 16 * ulp) & (stats.stall >= 2))
    # Below the rounding part a smaller statistic cannot buy a smaller bound (the rule's own
    # statistic: the sup rule keeps its own, slower, course).
    # Only once the exact-arithmetic test has passed (part < tol / 2): the rounding part is a
    # worst case (gamma_{K+2}, often 100-1000x the actual error), and stopping on it alone
    # returned values less accurate than the classical rule gives (W3 at tol 1e-3: 1.3e-3
    # off after 4 sweeps).
    part = c * (stats.dmax - stats.dmin) / 2 if rule == "span" else c * stat
    floor = floor | (below & (part <= cert.rounding / 4) & (part < half))
    kept = auto | (cert.bound <= half)
    return code(ok, floor, kept, unbounded(stats, cert, discount), finite)


def report(stats: DiffStats, new_values, discount, rule: str, axis=None):
    """(shift, error_bound, residual) of a value-iteration-family result.

    `new_values + shift` is the midpoint of Puterman's bounds (shift 0 at discount 1);
    `error_bound` its certified bound (module docstring). Members whose values provably grow
    without bound at discount 1 report the gain interval instead: `residual` its midpoint,
    `error_bound` its half-width.
    """
    below, c = coef = _coef(discount)
    cert = certificate(stats, new_values, discount, axis, coef)
    span = stats.dmax - stats.dmin
    shift = jnp.where(below & jnp.isfinite(span), c * (stats.dmax + stats.dmin) / 2, 0.0)
    runs_off = unbounded(stats, cert, discount)
    u = _unit(new_values.dtype)
    gain = (stats.dmax + stats.dmin) / 2
    half = (span / 2 + cert.eta + u * jnp.abs(gain)) * (1 + 8 * u)
    bound = round_up(jnp.where(runs_off, half, cert.bound))
    residual = jnp.where(runs_off, gain, statistic(stats, discount, rule))
    return shift.astype(new_values.dtype), bound, residual


def corrected(stats: DiffStats, new_values, q, discount):
    """(values, q, error_bound): the midpoint of Puterman's bounds (plain TV at discount 1)."""
    shift, bound, _ = report(stats, new_values, discount, "span")
    return new_values + shift, q + shift, bound


def vi_result(stats: DiffStats, new_values, q, discount, rule: str, policy=None):
    """The `SolverResult` of a value-iteration-family state (VI, modified PI, soft VI).
    `policy`: the greedy policy of `q` if the caller has it already (default: its argmax)."""
    from jaxmdp._solvers.base import SolverResult

    shift, bound, residual = report(stats, new_values, discount, rule)
    if policy is None:
        policy = jnp.argmax(q, axis=-1).astype(jnp.int32)
    return SolverResult(new_values + shift, q + shift, policy, residual, bound)
