"""Random MDPs: dense Dirichlet transitions, or Garnet-style sparse ones (successor lists).

Everything is drawn from one `jax.random` key, so an instance is reproducible from its key
(and its other arguments) and a batch is
`jax.vmap(lambda k: random_mdp(k, S, A))(jax.random.split(key, B))`. Sizes are static Python
ints; `concentration`, `reward_range` and `discount` may be traced.

Sampling cost. A Dirichlet row is a row of Gamma(concentration) draws, normalised. For
concentration 1 the gammas are exponentials, `-log(U)`: one uniform and one log per entry,
the same work as NumPy's `Generator.dirichlet`. For other concentrations, Marsaglia &
Tsang's method (2000) draws one candidate per entry (one normal, one uniform), accepted for
95% or more of them, and redraws the rest in a buffer a tenth of the size (`_log_gamma`).
`jax.random.dirichlet` / `gamma` instead split a key per entry and run a scalar rejection
loop for each, orders of magnitude slower under `vmap` (`benchmarks/random_mdp_speed.py`
times the three samplers against NumPy's).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp._mdp import MDP, ModelInfo
from jaxmdp._sparse import SparseTransitions
from jaxmdp._validate import check_int, check_real, is_traced

_KINDS = ("dense", "garnet")


def random_mdp(
    key: jax.Array,
    num_states: int,
    num_actions: int,
    *,
    kind: str = "dense",
    num_successors: int | None = None,
    concentration=1.0,
    reward_range=(0.0, 1.0),
    discount=0.95,
) -> MDP:
    """Draws a random MDP.

    `kind="dense"`: every row p(. | s, a) is Dirichlet(concentration * 1_S), so every
    next state has positive probability (with `concentration=1`, uniform on the simplex;
    small concentrations give peaked rows).

    `kind="garnet"` (Archibald, McKinnon & Thomas 1995; "Generalized Average Reward
    Non-stationary Environment Testbed" as used by Bhatnagar et al. 2009): every (s, a) has
    exactly `num_successors` distinct next states, chosen uniformly without replacement
    (Floyd's algorithm, O(k^2) work and O(k) memory per row, so large S is no problem),
    with probabilities Dirichlet(concentration * 1_k) (for `concentration=1` the same law as
    Garnet's k - 1 uniform cut points of [0, 1]). Returned in the sparse form
    (`jaxmdp.SparseTransitions`, K = k slots, no `[S, A, S]` array is ever built); convert
    with `jaxmdp.to_dense` for the dense one.

    Rewards r(s, a) are uniform on `reward_range` in both kinds.

    Args:
      key: a `jax.random` key.
      num_states: S (static Python int >= 1; floats are refused, not truncated).
      num_actions: A (static Python int >= 1).
      kind: `"dense"` or `"garnet"`.
      num_successors: Garnet branching factor k in [1, S] (static); default
        `ceil(sqrt(S))`. Not allowed with `kind="dense"`.
      concentration: Dirichlet concentration (> 0). Below about 0.1 rows get so peaked
        that some probabilities underflow to exactly 0 (fewer successors in practice).
      reward_range: `(low, high)` of the uniform rewards, `low <= high`.
      discount: gamma in [0, 1].

    Returns:
      `MDP` with `transitions` (dense: `[S, A, S]`; garnet: `SparseTransitions` with
      `next_states [S, A, k]` int32 and `probs [S, A, k]`), `rewards [S, A]`,
      `discount []`, in JAX's default float dtype; `info.name` is `"random_mdp"`.

    Raises:
      TypeError: non-integer sizes.
      ValueError: concrete arguments out of range (naming the argument). Traced
        `concentration`, `reward_range` or `discount` cannot be checked: a non-positive
        concentration then gives NaN rows, which `validate_mdp` and the solve's status
        codes report.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}; got {kind!r}.")
    num_states = check_int("num_states", num_states, low=1)
    num_actions = check_int("num_actions", num_actions, low=1)
    if kind == "dense":
        if num_successors is not None:
            raise ValueError("num_successors applies to kind='garnet' only.")
        k = num_states
    elif num_successors is None:
        k = math.ceil(math.sqrt(num_states))
    else:
        k = check_int("num_successors", num_successors, low=1, high=num_states)
    check_real("concentration", concentration, low=0.0, low_open=True)
    try:
        low, high = reward_range
    except (TypeError, ValueError):
        raise ValueError(
            f"reward_range must be a pair (low, high); got {reward_range!r}."
        ) from None
    check_real("reward_range[0]", low)
    check_real("reward_range[1]", high)
    if not (is_traced(low) or is_traced(high)) and np.any(np.asarray(low) > np.asarray(high)):
        raise ValueError(f"reward_range must have low <= high; got {reward_range!r}.")
    check_real("discount", discount, low=0.0, high=1.0)
    if is_traced(concentration) or np.ndim(concentration):
        sampler = "either"
    else:
        sampler = "exponential" if float(concentration) == 1.0 else "gamma"
    mdp = _random_mdp(
        key,
        num_states,
        num_actions,
        k,
        kind == "dense",
        sampler,
        concentration,
        low,
        high,
        discount,
    )
    return mdp._replace(info=ModelInfo(name="random_mdp"))


def _log_gamma(key, alpha, shape, dtype):
    """`log` of Gamma(alpha) draws of `shape` (alpha > 0, scalar, may be traced).

    Marsaglia & Tsang (2000): candidate `d v` with v = (1 + c x)^3, x normal, accepted when
    log U < x^2 / 2 + d - d v + d log v (acceptance >= 95% for a >= 1). Round 0 draws a
    candidate for every entry; the entries it rejects (~5%) are gathered into a buffer a
    tenth of the size (more passes if ever more are rejected) and rounds run on the buffer
    alone until each has one.
    Fresh keys every round keep an entry's candidates independent of its past (and of which
    others were rejected), so the draw is exact. Shape parameters
    below 1 draw Gamma(alpha + 1) and add `log(U) / alpha`, in log space so tiny
    concentrations do not underflow to 0 / 0.
    """
    # A traced concentration that is not a positive finite number would reject every
    # candidate forever; sample with 1 instead (the caller turns those rows into NaN).
    alpha = jnp.where((alpha > 0) & jnp.isfinite(alpha), alpha, 1.0)
    boost = alpha < 1
    a = jnp.where(boost, alpha + 1, alpha)
    d = a - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    key_0, key_few, key_boost = jax.random.split(key, 3)
    n = math.prod(shape)
    m = min(n, n // 10 + 64)

    def candidates(round_key, size):
        key_x, key_u = jax.random.split(round_key)
        x = jax.random.normal(key_x, (size,), dtype)
        u = jax.random.uniform(key_u, (size,), dtype, minval=jnp.finfo(dtype).tiny)
        v = (1 + c * x) ** 3
        log_v = jnp.log(jnp.where(v > 0, v, 1.0))
        ok = (v > 0) & (jnp.log(u) < 0.5 * x * x + d - d * v + d * log_v)
        return ok, jnp.log(d) + log_v

    def redraw(state):
        # Gather (up to) m entries still without a candidate, draw rounds for them alone
        # until each has one, scatter back. Almost always a single pass (~5% rejected).
        i, accepted, log_g = state
        (few,) = jnp.nonzero(~accepted, size=m, fill_value=n)  # padding: index n

        def one_round(inner):
            j, done, value = inner
            ok, new = candidates(jax.random.fold_in(jax.random.fold_in(key_few, i), j), m)
            return j + 1, done | ok, jnp.where(ok & ~done, new, value)

        inner = (jnp.int32(0), few == n, jnp.zeros(m, dtype))
        value = jax.lax.while_loop(lambda s: ~jnp.all(s[1]), one_round, inner)[2]
        accepted = accepted.at[few].set(True, mode="drop", unique_indices=True)
        log_g = log_g.at[few].set(value, mode="drop", unique_indices=True)
        return i + 1, accepted, log_g

    accepted, log_g = candidates(key_0, n)
    state = (jnp.int32(0), accepted, log_g)
    log_g = jax.lax.while_loop(lambda s: ~jnp.all(s[1]), redraw, state)[2].reshape(shape)

    def boosted(log_g):
        u = jax.random.uniform(key_boost, shape, dtype, minval=jnp.finfo(dtype).tiny)
        return log_g + jnp.log(u) / alpha

    return jax.lax.cond(boost, boosted, lambda log_g: log_g, log_g)


def _exponential_dirichlet(key, shape, dtype):
    """Dirichlet(1) rows: normalised Gamma(1) = -log(U) draws, U in [tiny, 1) so every
    weight is > 0."""
    u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny)
    w = -jnp.log(u)
    return w / jnp.sum(w, axis=-1, keepdims=True)


def _dirichlet(key, concentration, shape, dtype, sampler: str):
    """Rows (last axis) of Dirichlet(concentration * 1) draws.

    `sampler` (static) is `"exponential"` (concentration known to be 1), `"gamma"` (known
    not to be 1) or `"either"` (traced: decided at run time by `lax.cond`, a real branch
    when the concentration is not batched). Each concentration uses one sampler whichever
    way it arrives, so a member's draw depends only on its key and its concentration; the
    static cases just compile less (the gamma loop is the expensive part to compile).
    """
    if sampler == "exponential":
        return _exponential_dirichlet(key, shape, dtype)

    def general(alpha):
        probs = jax.nn.softmax(_log_gamma(key, alpha, shape, dtype), axis=-1)
        # An invalid (traced) concentration gives NaN rows, which validate_mdp and the
        # solve's status codes report. Applied after the softmax: XLA:CPU (jax 0.10.2)
        # miscompiles exp(where(p, x, nan)) into finite numbers.
        return jnp.where((alpha > 0) & jnp.isfinite(alpha), probs, jnp.nan)

    if sampler == "gamma":
        return general(concentration)
    return jax.lax.cond(
        concentration == 1,
        lambda _: _exponential_dirichlet(key, shape, dtype),
        general,
        concentration,
    )


# Up to this many successors, Floyd's steps are unrolled (k^2 / 2 compares, vectorised over
# rows); beyond, they run in a loop (a compile that does not grow with k).
_UNROLL_SUCCESSORS = 16


def _distinct_successors(key, rows: tuple[int, ...], num_states: int, k: int) -> jax.Array:
    """`[*rows, k]` int32: for every row a uniformly random k-subset of `range(num_states)`.

    Floyd's algorithm (Bentley & Floyd, "Programming pearls: a sample of brilliance", 1987):
    for j = S - k, ..., S - 1 draw t uniform in [0, j] and take t, or j if t is taken
    already. Every k-subset is equally likely; the order of the k picks is not uniform, which
    does not matter here since the Dirichlet weights given to the slots are exchangeable.
    """
    keys = jax.random.split(key, k)

    def draw(i, picks):
        j = num_states - k + i
        t = jax.random.randint(keys[i], rows, 0, j + 1, dtype=jnp.int32)
        taken = jnp.any(picks == t[..., None], axis=-1)
        return picks.at[..., i].set(jnp.where(taken, jnp.int32(j), t))

    picks = jnp.full((*rows, k), -1, jnp.int32)  # -1: not drawn yet, never equal to a draw
    if k <= _UNROLL_SUCCESSORS:
        for i in range(k):
            picks = draw(i, picks)
        return picks
    return jax.lax.fori_loop(0, k, draw, picks)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _random_mdp(
    key, num_states, num_actions, k, kind_dense, sampler, concentration, low, high, discount
) -> MDP:
    """`random_mdp` after argument checks: k successors per (s, a) (k = S for dense)."""
    dtype = jnp.result_type(float)
    key_p, key_succ, key_r = jax.random.split(key, 3)
    concentration = jnp.asarray(concentration, dtype)
    probs = _dirichlet(key_p, concentration, (num_states, num_actions, k), dtype, sampler)
    if kind_dense:
        transitions = probs
    else:
        successors = _distinct_successors(key_succ, (num_states, num_actions), num_states, k)
        transitions = SparseTransitions(successors, probs)
    rewards = jax.random.uniform(
        key_r,
        (num_states, num_actions),
        dtype,
        minval=jnp.asarray(low, dtype),
        maxval=jnp.asarray(high, dtype),
    )
    return MDP(transitions, rewards, jnp.asarray(discount, dtype))
