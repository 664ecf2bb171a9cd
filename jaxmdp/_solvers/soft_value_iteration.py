"""Soft (entropy-regularised) value iteration: V_{k+1} = T_tau V_k from V_0 (zeros unless given).

The soft Bellman operator with temperature tau > 0 is

    (T_tau V)(s) = tau * log sum_a exp(Q(s, a) / tau),    Q = r + g P V,

the value of the entropy-regularised problem max_pi E[sum_t g^t (r_t + tau H(pi(. | s_t)))]
(Haarnoja et al. 2017; Geist, Scherrer & Pietquin 2019). Its optimal policy is the softmax
pi(a | s) = exp((Q*(s, a) - V*(s)) / tau), given by `soft_policy`. Unavailable actions
(`-inf` reward) contribute exp(-inf) = 0: they get probability 0 and do not enter the sum.

Stopping rule and guarantee: T_tau is monotone and T_tau(V + c) = T_tau V + g c, the two
properties Puterman's bounds (Thm 6.6.6) rest on; so the span rule of `_stopping` holds
verbatim with the soft fixed point in place of V*, and it is reused unchanged.

As tau -> 0, T_tau -> T (hard max): max <= tau * logsumexp(. / tau) <= max + tau log A, so
V* <= V*_tau <= V* + tau log(A) / (1 - g).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import _bellman
from jaxmdp._solvers import _stopping
from jaxmdp._solvers.base import check_choice, check_number, check_tol, register_solver


class SoftVIState(NamedTuple):
    values: jax.Array  # [S] latest iterate V_k
    q: jax.Array  # [S, A] soft Q computed from V_{k-1}: V_k = tau logsumexp(q / tau)
    stats: _stopping.DiffStats


def soft_max(q: jax.Array, temperature) -> jax.Array:
    """`[S]` tau * logsumexp(q / tau) over actions for ONE MDP (scalar tau); `-inf` adds 0.

    The sum over actions is a dot product with ones, not a reduction: under `vmap` XLA keeps
    a dot's summation order, so a batch member rounds like its own solve (it did on the
    machines tested; only agreement within rounding is promised).
    """
    t = jnp.asarray(temperature, q.dtype)
    z = q / t
    m = jnp.max(z, axis=-1)
    e = jnp.exp(z - m[:, None])  # -inf entries (unavailable actions) give exactly 0
    ones = jnp.ones(z.shape[-1], z.dtype)
    return t * (m + jnp.log(jnp.dot(e, ones, precision=jax.lax.Precision.HIGHEST)))


def soft_rounding(mdp, temperature, dtype) -> _stopping.Rounding:
    """`_stopping.rounding` plus what the log-sum-exp adds to one backup's rounding.

    With z = q / t and m = max z the code computes t (m + log sum_a exp(z_a - m)): the
    division and the final add and multiply round relative to |q| and |V| (<= 4 u of
    r_max + g p_abs max|V|, covered by adding 8 u to `gamma`); each exp term (<= 1) is off by
    at most (4 + 1) u (the exp, and the subtraction's u |z_a - m| times exp(z_a - m) <= u / e),
    their sum of A terms by gamma_A more, and the log of a sum in [1, A] turns that relative
    error into an absolute one, plus its own rounding of log(A): with a factor 2 of margin,
    extra = 2 t u ((A + 8) (1 + log A) + 2 log A).
    """
    rnd = _stopping.rounding(mdp.transitions, mdp.rewards)
    u = float(jnp.finfo(dtype).eps) / 2
    a = mdp.rewards.shape[-1]
    t = jnp.abs(jnp.asarray(temperature, dtype))
    log_a = float(np.log(a))
    extra = 2 * t * u * ((a + 8) * (1 + log_a) + 2 * log_a)
    return rnd._replace(gamma=rnd.gamma + 8 * u, extra=rnd.extra + extra)


def soft_policy(q_values: jax.Array, temperature) -> jax.Array:
    """Softmax (Boltzmann) policy of soft action values.

    `pi(a | s) = exp(q(s, a) / tau) / sum_b exp(q(s, b) / tau)`. Unavailable actions
    (`q = -inf`) get probability exactly 0. For the soft-optimal policy pass the
    `q_values` of a `SoftValueIteration` solve with the same temperature.

    Args:
      q_values: `[..., S, A]` (soft) action values, e.g. `solution.q_values`.
      temperature: `[...]` tau > 0, broadcast against the batch axes of `q_values`.

    Returns:
      `[..., S, A]` probabilities, each `[..., s, :]` summing to 1.
    """
    q = jnp.asarray(q_values)
    t = jnp.asarray(temperature, q.dtype)[..., None, None]
    return jax.nn.softmax(q / t, axis=-1)


@register_solver(static=("rule",))
class SoftValueIteration:
    """Entropy-regularised value iteration with the certified stopping rule of VI.

    Iterates `V <- tau * logsumexp((r + g P V) / tau)` (tau = `temperature`, over the
    available actions).

    Stopping rule (per MDP, d = V_{k+1} - V_k, g = discount), as `ValueIteration`:
      - `rule="span"` (default): stop when `max(d) - min(d) < tol * (1 - g) / g`, then return
        `V_{k+1} + g / (1 - g) * (max(d) + min(d)) / 2` (Puterman's correction).
      - `rule="sup"`: stop when `max|d| < tol * (1 - g) / (2 g)`, same correction.
      - discount 1: stop when `max|d| < tol` (no a-priori bound).
    The soft operator is a monotone g-contraction with T(V + c) = TV + g c, so Puterman's
    bounds apply to it unchanged.

    Guarantee (g < 1, exact arithmetic): returned `values` and `q_values` are within `tol / 2`
    of the soft optimal V*_tau, Q*_tau (sup norm); `error_bound` reports the bound certified.
    Float32: as `ValueIteration` (`Status.PRECISION_LIMITED` at the resolution floor).

    Output: `solution.q_values` are the soft Q; `solution.policy` is their argmax (lowest
    index on ties), a deterministic summary only. The soft-optimal (stochastic) policy is
    `jaxmdp.soft_policy(solution.q_values, temperature)`, `[..., S, A]`.

    Discount 1: the entropy bonus (up to `temperature * log(#available actions)` per step)
    keeps accruing in any absorbing state with several available actions, so such problems
    have no finite soft value: the solve ends `Status.UNBOUNDED` as soon as that is proven
    (with the gain interval in `residual` / `error_bound`, as `ValueIteration`); give
    terminal states a single available action.

    As `temperature -> 0` the solution tends to the hard one:
    `0 <= V*_tau - V* <= temperature * log(A) / (1 - g)`.

    Gradients (`jax.grad` / `jax.jacfwd` through `jaxmdp.solve`, by the implicit function
    theorem, `jaxmdp._implicit`): the operator is smooth, so the soft values are
    differentiable everywhere (no ties). At the fixed point dV(s) = sum_a pi(a | s) dQ(s, a)
    with pi the softmax policy, so the system is `(I - g P_pi) dV = sum_a pi(a | .) dQ_partial`
    with `P_pi = sum_a pi(a | .) P(., a, .)` (`implicit_policy` below). The temperature gets
    no gradient (solver hyperparameters never do).

    Attributes:
      temperature: tau > 0 (a leaf: sweepable without recompiling).
      tol: accuracy target (> 0) in the sup norm, see above; `None` (default) as in
        `ValueIteration`.
      rule: `"span"` or `"sup"` (static).
    """

    temperature: float = 1.0
    tol: float | None = None
    rule: str = "span"

    def __post_init__(self):
        name = "SoftValueIteration"
        check_number(name, "temperature", self.temperature)
        check_tol("tol", self.tol, name)
        check_choice(name, "rule", self.rule, _stopping.RULES)

    def init(self, mdp, values0, ctx):
        q = jnp.zeros(mdp.rewards.shape, values0.dtype)
        rnd = soft_rounding(mdp, self.temperature, values0.dtype)
        return SoftVIState(values0, q, _stopping.initial_stats(values0.dtype, rnd=rnd))

    def step(self, mdp, state, ctx):
        q = _bellman.q_values(mdp, state.values)
        new = soft_max(q, self.temperature)
        return SoftVIState(new, q, _stopping.diff_stats(new, state.values, prev=state.stats))

    def status(self, mdp, state, ctx):
        return _stopping.status(state.stats, state.values, mdp.discount, self.tol, self.rule)

    def result(self, mdp, state, ctx):
        return _stopping.vi_result(state.stats, state.values, state.q, mdp.discount, self.rule)

    def implicit_policy(self, mdp, result):
        """`[S, A]` softmax policy: dV(s) = sum_a pi(a | s) dQ(s, a) at the soft fixed point."""
        return soft_policy(result.q_values, self.temperature)
