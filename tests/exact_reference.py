"""Exact references for small MDPs: rational arithmetic (no rounding at all), no JAX.

The certificate tests need V* of the data AS GIVEN to a solver, float32 or float64 arrays,
with no error of its own: float64 policy iteration on float64 data rounds at the same level
as the solve being checked. Every float is a rational number, so here:

- `optimal(P, R, g)`: Howard's policy iteration in `fractions.Fraction` (exact evaluation by
  Gaussian elimination, exact comparisons, so it ends at the exact optimum); rows are used
  exactly as given (they need not sum to exactly 1).
- `policy_value(P, R, g, policy)`: exact V^pi of a deterministic policy.
- `gain(P, R)`: the optimal average reward of a unichain model with the rows normalised to
  sum to 1 exactly (the only reading of an average reward), by average-reward policy
  iteration in Fractions.
- `soft_optimal(P, R, g, tau)`: the entropy-regularised fixed point
  `V = tau log sum_a exp((r + g P V) / tau)` by Newton's method in `mpmath` at 60 digits.

Sizes are meant for tests (S <= 8, A <= 4: milliseconds each).
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np


def _rationals(P, R):
    P = np.asarray(P)
    R = np.asarray(R)
    S, A = R.shape
    Pf = [[[Fraction(float(P[s, a, t])) for t in range(S)] for a in range(A)] for s in range(S)]
    Rf = [
        [None if np.isneginf(R[s, a]) else Fraction(float(R[s, a])) for a in range(A)]
        for s in range(S)
    ]
    return Pf, Rf, S, A


def _solve(m, b):
    """Exact Gaussian elimination (partial pivoting on non-zeros) of `m x = b`."""
    n = len(b)
    a = [row[:] + [b[i]] for i, row in enumerate(m)]
    for k in range(n):
        piv = next(i for i in range(k, n) if a[i][k] != 0)
        a[k], a[piv] = a[piv], a[k]
        for i in range(k + 1, n):
            f = a[i][k] / a[k][k]
            if f:
                for j in range(k, n + 1):
                    a[i][j] -= f * a[k][j]
    x = [Fraction(0)] * n
    for i in reversed(range(n)):
        acc = a[i][n] - sum(a[i][j] * x[j] for j in range(i + 1, n))
        x[i] = acc / a[i][i]
    return x


def _dot(p, v):
    return sum(x * y for x, y in zip(p, v, strict=True))


def _q(Pf, Rf, g, V, S, A):
    return [
        [None if Rf[s][a] is None else Rf[s][a] + g * _dot(Pf[s][a], V) for a in range(A)]
        for s in range(S)
    ]


def optimal(P, R, g):
    """Exact `(V* [S], Q* [S][A] (None: unavailable))` as Fractions, for 0 <= g < 1."""
    Pf, Rf, S, A = _rationals(P, R)
    g = Fraction(float(g))
    policy = [
        max((a for a in range(A) if Rf[s][a] is not None), key=lambda a: Rf[s][a]) for s in range(S)
    ]
    while True:
        m = [[(1 if s == t else 0) - g * Pf[s][policy[s]][t] for t in range(S)] for s in range(S)]
        V = _solve(m, [Rf[s][policy[s]] for s in range(S)])
        Q = _q(Pf, Rf, g, V, S, A)
        new = []
        for s in range(S):
            best = max((a for a in range(A) if Q[s][a] is not None), key=lambda a: Q[s][a])
            new.append(policy[s] if Q[s][policy[s]] >= Q[s][best] else best)
        if new == policy:
            return V, Q
        policy = new


def policy_value(P, R, g, policy):
    """Exact V^pi `[S]` (Fractions) of a deterministic policy, rows as given, 0 <= g < 1."""
    Pf, Rf, S, A = _rationals(P, R)
    g = Fraction(float(g))
    pol = [int(a) for a in policy]
    m = [[(1 if s == t else 0) - g * Pf[s][pol[s]][t] for t in range(S)] for s in range(S)]
    return _solve(m, [Rf[s][pol[s]] for s in range(S)])


def gain(P, R):
    """Exact optimal gain of a unichain model, rows normalised to sum to 1 (Fraction)."""
    Pf, Rf, S, A = _rationals(P, R)
    for s in range(S):
        for a in range(A):
            if Rf[s][a] is not None:
                tot = sum(Pf[s][a])
                Pf[s][a] = [p / tot for p in Pf[s][a]]
    policy = [
        max((a for a in range(A) if Rf[s][a] is not None), key=lambda a: Rf[s][a]) for s in range(S)
    ]
    for _ in range(1000):
        # g + h(s) = r(s) + sum_t p h(t), h(0) = 0: unknowns (g, h_1 .. h_{S-1}).
        m, b = [], []
        for s in range(S):
            row = [Fraction(1)] + [
                (-Pf[s][policy[s]][t] + (1 if s == t else 0)) for t in range(1, S)
            ]
            m.append(row)
            b.append(Rf[s][policy[s]])
        x = _solve(m, b)
        g, h = x[0], [Fraction(0)] + x[1:]
        Q = _q(Pf, Rf, 1, h, S, A)
        new = []
        for s in range(S):
            best = max((a for a in range(A) if Q[s][a] is not None), key=lambda a: Q[s][a])
            new.append(policy[s] if Q[s][policy[s]] >= Q[s][best] else best)
        if new == policy:
            return g
        policy = new
    raise RuntimeError("average-reward policy iteration did not stabilise")


def soft_optimal(P, R, g, tau, digits: int = 60):
    """`(V [S], Q [S][A] (None: unavailable))` of the soft fixed point, as mpmath numbers."""
    P = np.asarray(P)
    R = np.asarray(R)
    S, A = R.shape
    with mpmath.workdps(digits):
        Pm = [
            [[mpmath.mpf(float(P[s, a, t])) for t in range(S)] for a in range(A)] for s in range(S)
        ]
        Rm = [
            [None if np.isneginf(R[s, a]) else mpmath.mpf(float(R[s, a])) for a in range(A)]
            for s in range(S)
        ]
        g = mpmath.mpf(float(g))
        tau = mpmath.mpf(float(tau))
        V = [mpmath.mpf(0)] * S

        def qv(V):
            return [
                [
                    None
                    if Rm[s][a] is None
                    else Rm[s][a] + g * mpmath.fsum(p * v for p, v in zip(Pm[s][a], V, strict=True))
                    for a in range(A)
                ]
                for s in range(S)
            ]

        for _ in range(200):
            Q = qv(V)
            TV, pi = [], []
            for s in range(S):
                qs = [q for q in Q[s] if q is not None]
                m = max(qs)
                z = mpmath.fsum(mpmath.exp((q - m) / tau) for q in qs)
                TV.append(m + tau * mpmath.log(z))
                pi.append([None if q is None else mpmath.exp((q - TV[s]) / tau) for q in Q[s]])
            res = max(abs(TV[s] - V[s]) for s in range(S))
            if res < mpmath.mpf(10) ** (-(digits - 15)):
                return V, Q
            # Newton: (I - g P_pi) dV = TV - V, P_pi = sum_a pi(a|s) P(s, a, .).
            m = mpmath.matrix(S, S)
            for s in range(S):
                for t in range(S):
                    pst = mpmath.fsum(
                        pi[s][a] * Pm[s][a][t] for a in range(A) if pi[s][a] is not None
                    )
                    m[s, t] = (1 if s == t else 0) - g * pst
            dv = mpmath.lu_solve(m, mpmath.matrix([TV[s] - V[s] for s in range(S)]))
            V = [V[s] + dv[s] for s in range(S)]
    raise RuntimeError("soft Newton iteration did not converge")
