"""Symbolic checks for policy evaluation (EVAL-11, EVAL-13, EVAL-15; errata E-17, E-23) with SymPy.

Run with pytest (``python_files`` includes ``check_*.py``).
"""

from __future__ import annotations

import sympy as sp


def test_EVAL_11_stop_gradient_vs_full_gradient_linear() -> None:
    """Option 3 (stop-gradient) gives g = delta grad V(s_0).

    Option 2 (full backprop) adds -gamma delta grad V(s_1).
    """
    d = 3
    w = sp.symbols("w0:3")
    x0 = sp.symbols("a0:3")
    x1 = sp.symbols("b0:3")
    r, g = sp.symbols("r gamma")
    v0 = sum(xi * wi for xi, wi in zip(x0, w, strict=True))
    v1 = sum(xi * wi for xi, wi in zip(x1, w, strict=True))
    c = sp.Symbol("c")  # [[V(s_1)]]: a constant for differentiation, substituted back afterwards
    delta = v0 - r - g * v1
    for i in range(d):
        option3 = sp.diff(sp.Rational(1, 2) * (v0 - r - g * c) ** 2, w[i]).subs(c, v1)
        option2 = sp.diff(sp.Rational(1, 2) * delta**2, w[i])
        assert sp.simplify(option3 - delta * x0[i]) == 0
        assert sp.simplify(option2 - delta * (x0[i] - g * x1[i])) == 0
        assert sp.simplify(option2 - option3) != 0


def test_EVAL_11_stop_gradient_general_differentiable_v() -> None:
    """Same with an arbitrary differentiable V_phi (undefined functions of phi)."""
    phi = sp.Symbol("phi")
    r, g, c = sp.symbols("r gamma c")
    v0 = sp.Function("V0")(phi)
    v1 = sp.Function("V1")(phi)
    option3 = sp.diff(sp.Rational(1, 2) * (v0 - r - g * c) ** 2, phi).subs(c, v1)
    option2 = sp.diff(sp.Rational(1, 2) * (v0 - r - g * v1) ** 2, phi)
    delta = v0 - r - g * v1
    assert sp.simplify(option3 - delta * sp.diff(v0, phi)) == 0
    assert sp.simplify(option2 - option3 + g * delta * sp.diff(v1, phi)) == 0


def test_EVAL_13_semi_gradient_field_has_nonzero_curl() -> None:
    """Tabular TD(0) on a 2-state chain: F(w) = D (I - gamma P) w - D r has dF1/dw2 != dF2/dw1 in general."""
    p, q, mu, g = sp.symbols("p q mu gamma", positive=True)
    r1, r2 = sp.symbols("r1 r2")
    w = sp.Matrix(sp.symbols("w1 w2"))
    pm = sp.Matrix([[0, p], [q, 0]])  # s1 -> s2 w.p. p, s2 -> s1 w.p. q, else term
    dm = sp.diag(mu, 1 - mu)
    f = dm * (sp.eye(2) - g * pm) * w - dm * sp.Matrix([r1, r2])
    jac = f.jacobian(w)
    curl = sp.simplify(jac[0, 1] - jac[1, 0])
    assert sp.simplify(curl - g * (-mu * p + (1 - mu) * q)) == 0
    half, quarter = sp.Rational(1, 2), sp.Rational(1, 4)
    assert curl.subs({mu: half, p: half, q: quarter, g: sp.Rational(9, 10)}) != 0


def test_EVAL_15_k_step_property_symbolic_chain() -> None:
    """V = sum_{j<k} gamma^j P^j r + gamma^k P^k V for V = (I - gamma P)^{-1} r, k = 1..4 (symbolic chain).

    With an absorbing zero-reward term and V(term) = 0, gamma^k V(s_k) = gamma^{k∧T} V(s_{k∧T}) pathwise:
    if T < k then s_k = s_T = term and both sides are 0 (erratum E-20).
    """
    p, q, g = sp.symbols("p q gamma", positive=True)
    r1, r2 = sp.symbols("r1 r2")
    pm = sp.Matrix([[0, p], [q, 0]])
    r = sp.Matrix([r1, r2])
    v = (sp.eye(2) - g * pm).inv() * r
    for k in range(1, 5):
        rhs = sum(((g**j) * pm**j * r for j in range(k)), sp.zeros(2, 1)) + g**k * pm**k * v
        assert sp.simplify(rhs - v) == sp.zeros(2, 1)


def test_EVAL_27_e23_inclusive_sum_is_off_by_one() -> None:
    """Erratum E-23 on a deterministic path of T = 3 steps (rewards r0, r1, r2, then term), for k = 1, 2: the
    k-step target sum_{t < k} gamma^t r_t + gamma^k Q(s_k, a_k) equals Q(s_0, a_0); the text's inclusive sum
    sum_{t <= k} exceeds it by gamma^k r_k. One target function, the limit exclusive or inclusive."""
    g = sp.symbols("gamma", positive=True)
    r = sp.symbols("r0:3", real=True)
    big_t = len(r)

    def q(t: int) -> sp.Expr:  # Q along the path: the discounted return from step t
        return sum((g ** (u - t) * r[u] for u in range(t, big_t)), sp.Integer(0))

    def target(k: int, inclusive: bool) -> sp.Expr:
        top = min(k, big_t) + (1 if inclusive else 0)
        boot = g**k * q(k) if k < big_t else sp.Integer(0)
        return sum((g**t * r[t] for t in range(min(top, big_t))), sp.Integer(0)) + boot

    for k in (1, 2):
        assert sp.expand(target(k, inclusive=False) - q(0)) == 0
        assert sp.expand(target(k, inclusive=True) - q(0) - g**k * r[k]) == 0
    assert sp.expand(target(big_t, inclusive=False) - q(0)) == 0  # k >= T: the Monte Carlo return


