"""Every solver the common tests run, and what each promises.

To add an algorithm: append an instance to `ALL_SOLVERS`. A solver with a `tol` attribute
is held to the value-iteration promise (values within `tol / 2` of V*, policy
`tol`-optimal); one without is held to exactness (as `PolicyIteration`).

Promises are statements in exact arithmetic. Floating point adds a rounding allowance,
`rounding_allowance` (defined in `_compare.py`, which also bounds the differences between
two compiled programs), derived as follows. One Bellman backup in precision `eps` (an S-term
dot product, a multiply and an add) carries a relative error of at most about
`(S + 2) eps`, i.e. an absolute error `delta <= (S + 2) eps max|V|`. A gamma-contraction
amplifies a per-step error `delta` to at most `delta / (1 - g)` at its fixed point; the
same factor bounds the effect of rounding on the stopping statistic after Puterman's
correction (`g / (1 - g)` times the rounded differences) and on an exact policy evaluation
(the condition number of `I - g P_pi` in the sup norm is at most `(1 + g) / (1 - g)`).
So the allowance is `K (S + 2) eps max(|V*|, 1) / (1 - g)` with a safety factor `K = 2`
covering both the solver's rounding and the float64 reference's own. In float64 this is
~1e-10 even at g = 0.999 and |V| ~ 1000, far below any `tol` used; in float32 it is the
accuracy float32 can deliver (e.g. 0.24 at g = 0.999, |V| = 100, S = 8), which is why a
float32 solve may stop with `Status.PRECISION_LIMITED` and `error_bound` above `tol / 2`.
"""

from __future__ import annotations

from _compare import rounding_allowance  # noqa: F401 - re-exported: the one definition

import jaxmdp

TOL = 1e-6

ALL_SOLVERS = [
    jaxmdp.ValueIteration(tol=TOL),
    jaxmdp.ValueIteration(tol=TOL, rule="sup"),
    jaxmdp.PolicyIteration(),
    jaxmdp.ModifiedPolicyIteration(tol=TOL, eval_sweeps=5),
    jaxmdp.GaussSeidelValueIteration(tol=TOL),
    jaxmdp.AndersonValueIteration(tol=TOL),
]

# Every solver class with its defaults (issue 11: one default accuracy contract): each must
# succeed on the lecture world and on a random MDP, float32 and float64 (tests/test_defaults.py).
DEFAULT_SOLVERS = [type(s)() for s in ALL_SOLVERS if not getattr(s, "rule", "") == "sup"] + [
    jaxmdp.SoftValueIteration(),
    jaxmdp.RelativeValueIteration(),
]


def solver_id(solver) -> str:
    """A readable pytest id, e.g. `ValueIteration-sup`."""
    name = type(solver).__name__
    rule = getattr(solver, "rule", None)
    return f"{name}-{rule}" if rule is not None else name


def has_tol(solver) -> bool:
    return hasattr(solver, "tol")


def promised_error(solver) -> float:
    """Sup-norm bound on |values - V*| the solver promises for g < 1 (exact arithmetic)."""
    return float(solver.tol) / 2 if has_tol(solver) else 0.0


def promised_policy_loss(solver) -> float:
    """Bound on max_s (V* - V^pi) for the returned policy (exact arithmetic)."""
    return float(solver.tol) if has_tol(solver) else 0.0
