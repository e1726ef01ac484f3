"""SymPy checks of the algebra in the Bellman / VI / AncVI part (BEL-05, BEL-13, BEL-29..32, BEL-38)."""

from __future__ import annotations

import itertools

import sympy as sp

g, x, R = sp.symbols("gamma x R", positive=True)


def test_BEL_05_geometric_series_bound() -> None:
    """sum_{t=0}^{n-1} gamma^t R = R (1 - gamma^n) / (1 - gamma) <= R / (1 - gamma) (erratum E-04: from t=0);
    the text's chain from t = 1 sums to gamma R (1 - gamma^{n-1}) / (1 - gamma): it bounds G_0 - r_0."""
    t = sp.symbols("t", integer=True, nonnegative=True)
    n = sp.symbols("n", integer=True, positive=True)
    def closed(expr: sp.Expr) -> sp.Expr:  # sympy returns Piecewise((n, gamma = 1), (closed form, True))
        return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[-1][0])

    s0 = closed(sp.summation(R * g**t, (t, 0, n - 1)))
    assert sp.simplify(s0 - R * (1 - g**n) / (1 - g)) == 0
    # R/(1-gamma) - s0 = R gamma^n / (1 - gamma) >= 0 for 0 < gamma < 1
    assert sp.simplify(R / (1 - g) - s0 - R * g**n / (1 - g)) == 0
    s1 = closed(sp.summation(R * g**t, (t, 1, n - 1)))
    assert sp.simplify(s1 - g * R * (1 - g ** (n - 1)) / (1 - g)) == 0
    for m in range(1, 8):  # spot-check the closed form against explicit sums
        assert sp.simplify(s0.subs(n, m) - sum(R * g**i for i in range(m))) == 0


def test_BEL_05_inequality_chain() -> None:
    """The inequalities of BEL-05's bound, not only its sums: (i) R / (1 - gamma) - sum_{t<n} gamma^t R =
    R gamma^n / (1 - gamma) is >= 0, decided by SymPy with gamma = 1 / (1 + p), p > 0 (so 0 < gamma < 1) and
    R >= 0, for symbolic n; (ii) |sum_t gamma^t r_t| <= sum_t gamma^t R for |r_t| <= R: the sum is linear in r,
    so its extremes over the box [-R, R]^n are at vertices r_t = s_t R, s_t = +-1, and at each vertex
    sum_t gamma^t R -+ sum_t gamma^t s_t R = R sum_t gamma^t (1 -+ s_t) is a sum of non-negative terms, checked
    for n = 1..6 (all 2^n vertices). A wrong bound (R / (1 - gamma) replaced by R, or the sum started at t = 1
    on the right) fails (i) or (ii)."""
    p = sp.symbols("p", positive=True)
    n = sp.symbols("n", integer=True, positive=True)
    r_ = sp.symbols("R", nonnegative=True)
    gp = 1 / (1 + p)
    gap = sp.simplify(r_ / (1 - gp) - r_ * (1 - gp**n) / (1 - gp))
    assert gap.is_nonnegative is True
    rp = sp.symbols("Rp", positive=True)  # negative controls (decided, not merely undecided)
    assert sp.simplify(rp - rp * (1 - gp**3) / (1 - gp)).is_negative is True  # R alone is no bound
    for m in range(1, 7):
        bound = sum(r_ * gp**i for i in range(m))
        for signs in itertools.product((-1, 1), repeat=m):
            val = sum(si * r_ * gp**i for i, si in enumerate(signs))
            assert sp.expand(bound - val).is_nonnegative is True and sp.expand(bound + val).is_nonnegative is True
        # the text's chain from t = 1 on the right does not bound a sum that includes t = 0 (all r_t = R > 0)
        tail = sum(rp * gp**i for i in range(1, m))
        assert sp.expand(tail - rp * sum(gp**i for i in range(m))).is_negative is True


def test_BEL_13_max_lemma_case_analysis() -> None:
    """Max lemma on two points, |max u - max v| <= max_i |u_i - v_i|, case by case. In the case max u = u_i,
    max v = v_j the other entries are u_i - s and v_j - t with s, t >= 0; SymPy evaluates the maxima under
    those assumptions and shows (u_i - v_i) - (max u - max v) >= 0 and (v_j - u_j) - (max v - max u) >= 0,
    the two halves of the lemma. A wrong lemma (e.g. max u - max v <= u_j - v_j, the other point) fails."""
    x, y = sp.symbols("x y", real=True)
    s_, t_ = sp.symbols("s t", nonnegative=True)
    for i in range(2):
        for j in range(2):
            u = [x, x]
            v = [y, y]
            u[1 - i] = x - s_  # max u = u_i
            v[1 - j] = y - t_  # max v = v_j
            gap = sp.Max(*u) - sp.Max(*v)
            assert sp.simplify(gap - (x - y)) == 0  # the maxima were evaluated under the case's assumptions
            assert sp.simplify((u[i] - v[i]) - gap).is_nonnegative is True
            assert sp.simplify((v[j] - u[j]) + gap).is_nonnegative is True
            if i != j:  # the other point does not bound the gap: the lemma needs the max over i
                assert sp.simplify((u[j] - v[j]) - gap).is_nonnegative is not True


def _ancvi(k: int | sp.Symbol) -> sp.Expr:
    return (1 / g - g) * (1 + g - g ** (k + 1)) / (g ** (-(k + 1)) - g ** (k + 1))


def test_BEL_31_ancvi_bound_expansion() -> None:
    """c_k = 1/(k+1) + k/(k+1) (1 - gamma) + O((1 - gamma)^2) (series in e = 1 - gamma), for a symbolic integer
    k >= 0 (the general claim), and for k = 0..6 one by one."""
    e = sp.symbols("e", positive=True)
    ks = sp.symbols("k", integer=True, nonnegative=True)
    ser = sp.series(_ancvi(ks).subs(g, 1 - e), e, 0, 2).removeO()
    assert sp.simplify(ser - (1 / (ks + 1) + ks / (ks + 1) * e)) == 0, ser
    for k in range(0, 7):
        c = _ancvi(k).subs(g, 1 - e)
        ser = sp.series(c, e, 0, 2).removeO()
        target = sp.Rational(1, k + 1) + sp.Rational(k, k + 1) * e
        assert sp.simplify(ser - target) == 0, (k, ser)


def test_BEL_31_remainder_is_not_uniform_in_k() -> None:
    """E-10: the O((1 - gamma)^2) of BEL-31 holds for each fixed k, not uniformly in k. In exact rationals,
    max over k in {1, 10, 100, 1000, 5000} of |c_k - 1/(k+1) - k/(k+1) e| / e^2 (e = 1 - gamma) grows like 1/e:
    above 0.05 / e at gamma = 0.99 and 0.999; for each fixed k it stays bounded as e -> 0 (k = 10 below)."""
    worst = {}
    for gm in (sp.Rational(99, 100), sp.Rational(999, 1000)):
        e = 1 - gm
        rem = [abs(_ancvi(k).subs(g, gm) - (sp.Rational(1, k + 1) + sp.Rational(k, k + 1) * e)) / e**2
               for k in (1, 10, 100, 1000, 5000)]
        worst[gm] = max(rem)
        assert worst[gm] > sp.Rational(5, 100) / e  # not bounded by a constant independent of k
    assert worst[sp.Rational(999, 1000)] > 5 * worst[sp.Rational(99, 100)]
    es = [sp.Rational(1, 10**j) for j in (2, 3, 4)]  # fixed k: the scaled remainder converges
    fixed = [abs(_ancvi(10).subs(g, 1 - e) - (sp.Rational(1, 11) + sp.Rational(10, 11) * e)) / e**2 for e in es]
    assert max(fixed) < 2 * min(fixed)


def test_BEL_32_ratio_to_lower_bound_at_most_4() -> None:
    """c_k / (gamma^k / sum_{i<=k} gamma^i) = (1 + gamma)(1 + gamma - x) / (1 + x) with x = gamma^{k+1},
    and 4 (1 + x) - (1 + gamma)(1 + gamma - x) = (1 - gamma)(3 + gamma) + x (5 + gamma) >= 0 on [0, 1]^2."""
    for k in range(0, 6):
        lower = g**k * (1 - g) / (1 - g ** (k + 1))
        xx = g ** (k + 1)
        ratio = (1 + g) * (1 + g - xx) / (1 + xx)
        assert sp.simplify(_ancvi(k) / lower - ratio) == 0, k
    diff = 4 * (1 + x) - (1 + g) * (1 + g - x)
    assert sp.expand(diff - ((1 - g) * (3 + g) + x * (5 + g))) == 0
    # ... and that right side is >= 0 on gamma in (0, 1], x >= 0: with gamma = 1 / (1 + p), p >= 0, it is a
    # ratio of polynomials in p, x with non-negative coefficients (SymPy must decide the sign, not assume it)
    p, xx = sp.symbols("p xx", nonnegative=True)
    rhs = ((1 - g) * (3 + g) + x * (5 + g)).subs({g: 1 / (1 + p), x: xx})
    num, den = sp.fraction(sp.together(rhs))
    assert sp.expand(num).is_nonnegative is True and sp.expand(den).is_positive is True
    assert all(c >= 0 for c in sp.Poly(sp.expand(num), p, xx).coeffs())


def test_BEL_32_ancvi_constant_below_vi_bound() -> None:
    """BEL-32's other half: c_k <= (1 + gamma) gamma^k, VI's Bellman-residual constant, for every k >= 0 and
    gamma in (0, 1). With x = gamma^{k+1}: (1 + gamma) gamma^k - c_k = (1 + gamma) x / gamma - (1 - gamma^2)(1 +
    gamma - x) x / (gamma (1 - x^2)) has the sign of (1 - x^2) - (1 - gamma)(1 + gamma - x) (the factors dropped
    are positive), and with gamma = 1 / (1 + p), x = gamma y, y = gamma^k = 1 / (1 + q) (p > 0, q >= 0) that is
    a ratio of polynomials with non-negative coefficients (so SymPy decides the sign, for symbolic k). Negative
    control: the factor 1 + gamma is needed, c_1 > gamma^1 at gamma = 1/10."""
    y, p, q = sp.symbols("y p q", nonnegative=True)
    xk = g * y
    ck = (1 / g - g) * (1 + g - xk) / (1 / xk - xk)  # _ancvi with gamma^{k+1} = x
    for k in range(0, 6):  # the rewrite of c_k in x is _ancvi itself
        assert sp.simplify(ck.subs(y, g**k) - _ancvi(k)) == 0
    gap = (1 + g) * y - ck
    sign_part = (1 - xk**2) - (1 - g) * (1 + g - xk)
    assert sp.simplify(gap - (1 + g) * xk * sign_part / (g * (1 - xk**2))) == 0
    num, den = sp.fraction(sp.together(sign_part.subs(y, 1 / (1 + q)).subs(g, 1 / (1 + p))))
    assert all(c >= 0 for c in sp.Poly(sp.expand(num), p, q).coeffs())
    assert all(c > 0 for c in sp.Poly(sp.expand(den), p, q).coeffs())
    assert (_ancvi(1) - g).subs(g, sp.Rational(1, 10)) > 0


def test_BEL_38_abel_limit_of_alternating_series() -> None:
    """Abel: sum_t (-1)^t gamma^t = 1 / (1 + gamma) -> 1/2 as gamma -> 1; Cesaro: partial sums
    S_n = (1 - (-1)^n) / 2 have mean (1/N) sum_{n=1}^N S_n -> 1/2."""
    t = sp.symbols("t", integer=True, nonnegative=True)
    gg = sp.symbols("gg", positive=True)
    s = sp.summation((-gg) ** t, (t, 0, sp.oo))
    s = s.args[0][0] if isinstance(s, sp.Piecewise) else s
    assert sp.simplify(s - 1 / (1 + gg)) == 0
    assert sp.limit(s, gg, 1, "-") == sp.Rational(1, 2)
    n = sp.symbols("n", integer=True, positive=True)
    partial = (1 - (-1) ** n) / 2
    assert all(partial.subs(n, m) == sum((-1) ** i for i in range(m)) for m in range(1, 12))
    # sum_{n=1}^{N} S_n = ceil(N / 2): N = 2M gives M / (2M) = 1/2, N = 2M + 1 gives (M + 1)/(2M + 1)
    M = sp.symbols("M", integer=True, positive=True)
    assert all(sum(partial.subs(n, i) for i in range(1, 2 * m + 1)) == m for m in range(1, 8))
    # the Cesaro means themselves, from the partial sums (not typed in): N = 2M gives 1/2 exactly, N = 2M + 1
    # gives (M + 1) / (2M + 1); both tend to 1/2
    j = sp.symbols("j", integer=True, positive=True)  # the partial sums in pairs (S_{2j-1}, S_{2j})
    pairs = sp.summation(sp.simplify(partial.subs(n, 2 * j - 1) + partial.subs(n, 2 * j)), (j, 1, M))
    even = pairs / (2 * M)
    odd = (pairs + sp.simplify(partial.subs(n, 2 * M + 1))) / (2 * M + 1)
    assert sp.simplify(even - sp.Rational(1, 2)) == 0
    assert sp.simplify(odd - (M + 1) / (2 * M + 1)) == 0
    assert sp.limit(odd, M, sp.oo) == sp.Rational(1, 2)


def test_BEL_30_general_bound_algebra() -> None:
    """The two identities behind :func:`reference.dp.ancvi_general_bounds` (general U^0, erratum E-10):
    beta_{k-1} - beta_k = beta_{k-1} beta_k gamma^{-2k} = beta_{k-1} (1 - gamma^2) / (1 - gamma^{2(k+1)}),
    with beta_k = 1 / sum_{i<=k} gamma^{-2i} (k = 1..6, symbolic in gamma); and at gamma = 1 the closed form
    c_k = 2 (1 + H_k) / (k + 1) solves the recursion D_k = 2 / (k (k + 1)) + k / (k + 1) D_{k-1}, D_1 = 1,
    c_k = 2 / (k + 1) + D_k (symbolic in k)."""
    def beta(k: int) -> sp.Expr:
        return 1 / sp.Add(*[g ** (-2 * i) for i in range(k + 1)])

    for k in range(1, 7):
        drop = beta(k - 1) - beta(k)
        assert sp.simplify(drop - beta(k - 1) * beta(k) * g ** (-2 * k)) == 0, k
        assert sp.simplify(drop - beta(k - 1) * (1 - g**2) / (1 - g ** (2 * (k + 1)))) == 0, k
    n = sp.symbols("n", integer=True, positive=True)

    def drift(m: sp.Expr) -> sp.Expr:  # D_m = c_m - 2 / (m + 1) = 2 H_m / (m + 1)
        return 2 * sp.harmonic(m) / (m + 1)

    assert drift(sp.Integer(1)) == 1
    step = drift(n + 1) - (sp.Rational(2) / ((n + 1) * (n + 2)) + (n + 1) / (n + 2) * drift(n))
    assert sp.simplify(sp.expand_func(step)) == 0  # H_{k+1} = H_k + 1 / (k + 1)


def test_BEL_30_general_bound_decompositions() -> None:
    """The two decompositions the recursions of :func:`reference.dp.ancvi_general_bounds` start from, with
    U^k = beta_k U^0 + (1 - beta_k) T U^{k-1} (T = B^*, any operator; the U's are symbols, so the identities
    hold for every U^0): U^k - U^{k-1} = (beta_k - beta_{k-1})(U^0 - T U^{k-2}) + (1 - beta_k)(T U^{k-1} -
    T U^{k-2}) and U^k - T U^k = beta_k (U^0 - T U^{k-1}) + (T U^{k-1} - T U^k). A sign slip fails (checked)."""
    u0, tu1, tu2, tuk = sp.symbols("U0 TUkm1 TUkm2 TUk")
    bk, bk1 = sp.symbols("beta_k beta_km1")
    uk = bk * u0 + (1 - bk) * tu1
    ukm1 = bk1 * u0 + (1 - bk1) * tu2
    drift = (bk - bk1) * (u0 - tu2) + (1 - bk) * (tu1 - tu2)
    resid = bk * (u0 - tu1) + (tu1 - tuk)
    assert sp.expand(uk - ukm1 - drift) == 0
    assert sp.expand(uk - tuk - resid) == 0
    assert sp.expand(uk - ukm1 - ((bk1 - bk) * (u0 - tu2) + (1 - bk) * (tu1 - tu2))) != 0


def test_BEL_29_beta_closed_form() -> None:
    """BEL-29's weights beta_k = 1 / sum_{i<=k} gamma^{-2i} equal gamma^{2k} (1 - gamma^2) / (1 - gamma^{2(k+1)}),
    for a symbolic integer k (geometric sum in gamma^{-2}), and tend to 1 / (k + 1) as gamma -> 1."""
    k = sp.symbols("k", integer=True, nonnegative=True)
    i = sp.symbols("i", integer=True, nonnegative=True)
    p = sp.symbols("p", positive=True)
    gp = 1 / (1 + p)  # gamma in (0, 1)
    s = sp.summation(gp ** (-2 * i), (i, 0, k))
    s = s.args[-1][0] if isinstance(s, sp.Piecewise) else s
    closed = gp ** (2 * k) * (1 - gp**2) / (1 - gp ** (2 * (k + 1)))
    assert sp.simplify(1 / s - closed) == 0
    for kk in range(0, 5):
        assert sp.limit(closed.subs(k, kk), p, 0) == sp.Rational(1, kk + 1)
