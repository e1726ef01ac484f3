"""Symbolic checks (SymPy) for the GAME part: linearised minimax dynamics, antisymmetric games, Elo arithmetic."""

from __future__ import annotations

import sympy as sp


def _softmax(theta: list[sp.Symbol]) -> list[sp.Expr]:
    z = sum(sp.exp(t) for t in theta)
    return [sp.exp(t) / z for t in theta]


def _rps() -> sp.Matrix:
    return sp.Matrix([[0, -1, 1], [1, 0, -1], [-1, 1, 0]])


def test_GAME_08_E72_strongly_monotone_simgad_eigenvalues() -> None:
    # R = -x^2/2 + x y + y^2/2: SimGAD map (x, y) -> (x + a(-x + y), y - a(x + y)); eigenvalues 1 - a +- i a
    a, x, y = sp.symbols("alpha x y", real=True)
    R = -x**2 / 2 + x * y + y**2 / 2
    step = sp.Matrix([x + a * sp.diff(R, x), y - a * sp.diff(R, y)])
    J = step.jacobian([x, y])
    eig = set(J.eigenvals())
    assert eig == {1 - a + sp.I * a, 1 - a - sp.I * a}
    modulus2 = sp.expand((1 - a) ** 2 + a**2)
    # modulus < 1 iff 0 < a < 1
    assert sp.solve_univariate_inequality(modulus2 < 1, a, relational=False) == sp.Interval.open(0, 1)


def test_GAME_08_11_12_bilinear_eigenvalue_moduli() -> None:
    # R = sigma x y: field F = (sigma y, -sigma x) has eigenvalues +-i sigma.
    a, s, lam = sp.symbols("alpha sigma lambda", positive=True)
    K = sp.Matrix([[0, s], [-s, 0]])
    eye = sp.eye(2)
    sim = eye + a * K
    eg = eye + a * K + a**2 * K * K
    anc = (1 - lam) * eye + a * K
    for M, mod2 in ((sim, 1 + a**2 * s**2), (eg, (1 - a**2 * s**2) ** 2 + a**2 * s**2),
                    (anc, (1 - lam) ** 2 + a**2 * s**2)):
        for ev in M.eigenvals():
            assert sp.simplify(sp.expand(ev * sp.conjugate(ev)) - mod2) == 0
    # SimGAD: > 1 always; EG: < 1 iff a s < 1; anchoring: < 1 iff a^2 s^2 < lam (2 - lam)
    u = sp.symbols("u", positive=True)  # u = (a s)^2
    for ev in sim.eigenvals():  # SimGAD expands for every step size a > 0 (sigma > 0): |ev|^2 - 1 > 0
        assert sp.simplify(sp.expand(ev * sp.conjugate(ev)) - 1).is_positive is True
    eg_excess = sp.factor(((1 - u) ** 2 + u) - 1)
    assert eg_excess == u * (u - 1)
    assert sp.solve_univariate_inequality(eg_excess < 0, u, relational=False) == sp.Interval.open(0, 1)
    lam_ = sp.symbols("lambda_", real=True)  # any real lam: the identity below is what the claim needs
    anc_excess = sp.expand((1 - lam_) ** 2 + u - 1)
    assert sp.expand(anc_excess - (u - lam_ * (2 - lam_))) == 0  # modulus^2 - 1 = u - lam (2 - lam)
    stable = sp.solve_univariate_inequality(anc_excess.subs(lam_, sp.Rational(1, 10)) < 0, u, relational=False)
    assert stable.intersect(sp.Interval.open(0, sp.oo)) == sp.Interval.open(0, sp.Rational(19, 100))


def test_GAME_08_rps_linearisation_at_uniform() -> None:
    # Jacobian of (grad_1 R, -grad_2 R) at theta = 0 is [[0, M/9], [M/9, 0]]: eigenvalues 0, 0, +-i sqrt(3)/9 (x2)
    t1 = list(sp.symbols("a1:4", real=True))
    t2 = list(sp.symbols("b1:4", real=True))
    M = _rps()
    p, q = sp.Matrix(_softmax(t1)), sp.Matrix(_softmax(t2))
    R = (p.T * M * q)[0, 0]
    F = sp.Matrix([sp.diff(R, v) for v in t1] + [-sp.diff(R, v) for v in t2])
    J = F.jacobian(t1 + t2).subs({v: 0 for v in t1 + t2})
    J = sp.simplify(J)
    expected = sp.BlockMatrix([[sp.zeros(3), M / 9], [M / 9, sp.zeros(3)]]).as_explicit()
    assert sp.simplify(J - expected) == sp.zeros(6)
    eig = J.eigenvals()
    assert eig == {0: 2, sp.sqrt(3) * sp.I / 9: 2, -sp.sqrt(3) * sp.I / 9: 2}


def test_GAME_12_E75_constant_anchor_fixed_point_is_regularised_saddle() -> None:
    # Fixed point of theta1 = (1 - lam) theta1 + a grad_1 R, theta2 = (1 - lam) theta2 - a grad_2 R is a stationary
    # point of R - lam/(2a)|theta1|^2 + lam/(2a)|theta2|^2; a saddle of it where R is bilinear (checked below).
    x, y, a, lam = sp.symbols("x y alpha lambda", real=True)
    R = sp.Function("R")(x, y)
    fix1 = sp.Eq(x, (1 - lam) * x + a * sp.diff(R, x))
    fix2 = sp.Eq(y, (1 - lam) * y - a * sp.diff(R, y))
    Rreg = R - lam / (2 * a) * x**2 + lam / (2 * a) * y**2
    s1 = sp.solve(fix1, sp.diff(R, x))[0]
    s2 = sp.solve(fix2, sp.diff(R, y))[0]
    assert sp.simplify(sp.diff(Rreg, x).subs(sp.diff(R, x), s1)) == 0
    assert sp.simplify(sp.diff(Rreg, y).subs(sp.diff(R, y), s2)) == 0
    # stationarity alone is not a saddle (R = x^2 - y^2 is stationary at 0 the wrong way round). For a bilinear
    # R = m x y (the text's matrix games), R_reg is strictly concave in the maximiser's x and convex in the
    # minimiser's y for lam / alpha > 0: a saddle
    m = sp.symbols("m", real=True)
    pos = sp.symbols("lambda_over_alpha", positive=True)
    bil = (m * x * y - lam / (2 * a) * x**2 + lam / (2 * a) * y**2).subs(lam, pos * a)
    assert sp.simplify(sp.diff(bil, x, 2)) == -pos and sp.simplify(sp.diff(bil, y, 2)) == pos
    # "not the original NE" (E-75): with a shifted bilinear game R = m (x - u)(y - w) the original equilibrium is
    # (u, w), while the regularised game's unique stationary point (solved exactly) is pulled towards 0:
    # it differs from (u, w) for every lam / alpha > 0 unless u = w = 0
    u, w = sp.symbols("u w", real=True)
    shifted = m * (x - u) * (y - w) - pos / 2 * x**2 + pos / 2 * y**2
    sol = sp.solve([sp.diff(shifted, x), sp.diff(shifted, y)], [x, y], dict=True)
    assert len(sol) == 1
    xs, ys = sp.simplify(sol[0][x]), sp.simplify(sol[0][y])
    assert sp.simplify(xs - m * (m * u - pos * w) / (m**2 + pos**2)) == 0  # solved by hand: the pulled point
    # the gap to the original NE vanishes only where the regulariser does (pos -> 0) or at u = w = 0
    gap_x = sp.simplify(xs - u)
    assert sp.simplify(gap_x.subs({u: 0, w: 0})) == 0 and sp.limit(gap_x, pos, 0) == 0
    assert sp.simplify(gap_x.subs({m: 1, u: 1, w: 0, pos: 1})) != 0
    assert sp.simplify((ys - w).subs({m: 1, u: 0, w: 1, pos: 1})) != 0


def test_GAME_15_16_17_antisymmetric_gradient_identity_and_self_play() -> None:
    # For M = -M^T, grad_1 R(theta, theta) = -grad_2 R(theta, theta), so both SimGAD rows coincide.
    m12, m13, m23 = sp.symbols("m12 m13 m23", real=True)
    M = sp.Matrix([[0, m12, m13], [-m12, 0, m23], [-m13, -m23, 0]])
    t1 = list(sp.symbols("a1:4", real=True))
    t2 = list(sp.symbols("b1:4", real=True))
    p, q = sp.Matrix(_softmax(t1)), sp.Matrix(_softmax(t2))
    R = (p.T * M * q)[0, 0]
    same = dict(zip(t2, t1, strict=True))
    for i in range(3):
        g1 = sp.diff(R, t1[i]).subs(same)
        g2 = sp.diff(R, t2[i]).subs(same)
        assert sp.simplify(g1 + g2) == 0
    # E-78: theta -> R(theta, theta) is identically 0
    assert sp.simplify(R.subs(same)) == 0
    # GAME-13: R(theta2, theta1) = -R(theta1, theta2)
    swapped = (q.T * M * p)[0, 0]
    assert sp.simplify(swapped + R) == 0
    # GAME-16/17 step: theta2_next = (1 - lam) theta - alpha grad_2 R(theta, theta) = theta1_next
    a, lam = sp.symbols("alpha lambda")
    for i in range(3):
        n1 = (1 - lam) * t1[i] + a * sp.diff(R, t1[i]).subs(same)
        n2 = (1 - lam) * t1[i] - a * sp.diff(R, t2[i]).subs(same)
        assert sp.simplify(n1 - n2) == 0


def test_GAME_44_E100_elo_arithmetic() -> None:
    doublings = sp.Rational(2200, 120)
    mult = sp.Integer(2) ** doublings
    assert 320_000 < float(mult) < 340_000  # ~3.3e5, not ~1e5
    # the figures below are the exact values rounded to one decimal: within half a unit of that decimal
    gain_1e5 = 120 * sp.log(10**5, 2)
    assert abs(float(gain_1e5) - 1993.2) <= 0.05
    gain_1e3 = 120 * sp.log(1000, 2)
    assert abs(float(gain_1e3) - 1195.9) <= 0.05
    assert sp.Rational(3, 1000) / sp.Rational(2, 10**6) == 1500  # E-87
