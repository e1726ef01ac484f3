"""SymPy checks of the symbolic TR items: the telescoping sums (TR-01, TR-30), the GAE geometric sum (TR-31,
with E-62's finite-episode tail), the PPO clip equivalence (TR-14) region by region, the natural gradient
of the tabular softmax (TR-09) and the (n-1)/n shrinkage of the group-mean advantage (TR-50)."""

from __future__ import annotations

import itertools

import sympy as sp


def test_TR_01_TR_30_telescoping_of_td_residuals() -> None:
    """sum_{l<k} gamma^l delta_{t+l} = sum_{l<k} gamma^l r_{t+l} + gamma^k V_k - V_0 (k = 1..6), and the
    TR-01 sum over a whole episode with V(s_T) = V(term) = 0 leaves sum gamma^t r_t - V(s_0)."""
    g = sp.Symbol("gamma", positive=True)
    for k in range(1, 7):
        r = sp.symbols(f"r0:{k}")
        v = sp.symbols(f"v0:{k + 1}")
        delta = [r[i] + g * v[i + 1] - v[i] for i in range(k)]
        lhs = sum(g**i * delta[i] for i in range(k))
        rhs = sum(g**i * r[i] for i in range(k)) + g**k * v[k] - v[0]
        assert sp.expand(lhs - rhs) == 0
        assert sp.expand(lhs.subs(v[k], 0) - (sum(g**i * r[i] for i in range(k)) - v[0])) == 0


def test_TR_31_gae_geometric_sum_infinite_and_finite() -> None:
    """(1 - lam) sum_{k>=1} lam^{k-1} sum_{l<k} c^l d_l = sum_l (c lam)^l d_l, coefficient by coefficient:
    the coefficient of gamma^l delta_l is (1 - lam) sum_{k>l} lam^{k-1} = lam^l (|lam| < 1). Finite episode
    of m steps (E-62): with weight lam^{m-1} on A^{TD(m)} (all TD(k >= m) coincide) the identity is exact."""
    lam = sp.Symbol("lam", positive=True)
    l = sp.Symbol("l", integer=True, nonnegative=True)
    p = sp.Symbol("p", positive=True)
    lam_open = 1 / (1 + p)  # lam in (0, 1); at lam = 1 the weighted series is 0 * inf (E-62)
    k = sp.Symbol("k", integer=True, positive=True)
    # the coefficient of c^l d_l collects every A^{TD(k)} with k > l: (1 - lam) sum_{k>l} lam^{k-1}, summed
    # by SymPy (not an index shift typed in), must be lam^l
    coef = sp.summation((1 - lam_open) * lam_open ** (k - 1), (k, l + 1, sp.oo))
    coef = coef.args[0][0] if isinstance(coef, sp.Piecewise) else coef
    assert sp.simplify(coef - lam_open**l) == 0
    assert sp.simplify(coef - lam_open ** (l + 1)) != 0  # negative control: the shifted weight is not it
    c = sp.Symbol("c", positive=True)
    for m in range(1, 6):
        d = sp.symbols(f"d0:{m}")
        td = [sum(c**i * d[i] for i in range(kk)) for kk in range(1, m + 1)]
        avg = (1 - lam) * sum(lam ** (kk - 1) * td[kk - 1] for kk in range(1, m)) + lam ** (m - 1) * td[m - 1]
        assert sp.expand(avg - sum((c * lam) ** i * d[i] for i in range(m))) == 0
        # lam = 0: TD(1); lam = 1: TD(m) (TR-32)
        assert sp.expand(avg.subs(lam, 0) - td[0]) == 0
        assert sp.expand(avg.subs(lam, 1) - td[m - 1]) == 0


def _min(x: sp.Expr, y: sp.Expr) -> sp.Expr:
    """min(x, y) where the sign of x - y is decided symbolically (positive symbols); fails otherwise."""
    d = sp.factor(sp.together(x - y))
    if d.is_nonpositive:
        return x
    if d.is_nonnegative:
        return y
    raise AssertionError(f"sign of {d} undecided")


def _max(x: sp.Expr, y: sp.Expr) -> sp.Expr:
    return -_min(-x, -y)


def test_TR_14_clip_forms_are_equal_on_every_region() -> None:
    """min(ell A, clip(ell, 1-eps, 1+eps) A) = piecewise form, on each of the 6 regions (sign of A x position
    of ell), with symbolic ell, A, eps (eps in (0, 1))."""
    q = sp.Symbol("q", positive=True)
    eps = 1 / (1 + q)  # eps in (0, 1)
    a_abs = sp.Symbol("a", positive=True)
    u = sp.Symbol("u", positive=True)  # an offset > 0 placing ell strictly inside a region
    w = sp.Symbol("w", positive=True)  # w / (1 + w) in (0, 1): interior point
    regions = (((1 - eps) / (1 + w), 1 - eps),  # 0 < ell < 1 - eps
               (1 - eps + 2 * eps * w / (1 + w), None),  # 1 - eps < ell < 1 + eps
               (1 + eps + u, 1 + eps))  # ell > 1 + eps
    for sign in (1, -1):
        adv = sign * a_abs
        for ell, clipped in regions:
            cl = ell if clipped is None else clipped
            compact = _min(ell * adv, cl * adv)
            piece = _min(ell, 1 + eps) * adv if sign > 0 else _max(ell, 1 - eps) * adv
            assert sp.simplify(compact - piece) == 0, (sign, ell)
    # A = 0: both forms are 0
    ell_sym = sp.Symbol("ell", nonnegative=True)
    assert sp.Min(ell_sym * 0, sp.Max(1 - eps, sp.Min(ell_sym, 1 + eps)) * 0) == 0
    # the regions' clip values are the clip function's: clip(ell) = max(1 - eps, min(ell, 1 + eps))
    for ell, clipped in regions:
        want = ell if clipped is None else clipped
        assert sp.simplify(_max(1 - eps, _min(ell, 1 + eps)) - want) == 0


def test_TR_09_natural_gradient_of_softmax_is_the_centred_advantage() -> None:
    """For one state with 3 actions: (diag(pi) - pi pi^T) x = pi * (A - pi . A) is solved by x = A - mean(A)
    (grad J's block is d pi (A - pi . A) with pi . A^pi = 0; the Fisher block is d (diag pi - pi pi^T))."""
    p = sp.symbols("p0:3", positive=True)
    a = sp.symbols("A0:3", real=True)
    pi = sp.Matrix(p)
    f = sp.diag(*p) - pi * pi.T
    av = sp.Matrix(a)
    x = av - sp.ones(3, 1) * (sum(a) / 3)
    rhs = sp.Matrix([p[i] * (a[i] - sum(p[j] * a[j] for j in range(3))) for i in range(3)])
    res = (f * x - rhs).subs(p[2], 1 - p[0] - p[1])
    assert sp.simplify(res) == sp.zeros(3, 1)
    # F 1 = 0, so every x + c 1 solves the system too: the claim is the *minimum-norm* solution (the pseudo-inverse
    # F^+ grad J, natural_gradient's damping = 0), i.e. the one orthogonal to the null space {c 1}. The null space
    # is exactly {c 1} (F has rank 2 for p > 0: a non-zero 2x2 minor), and x is orthogonal to it, so x is that one.
    assert sp.simplify((f * sp.ones(3, 1)).subs(p[2], 1 - p[0] - p[1])) == sp.zeros(3, 1)
    minor = sp.simplify(f[:2, :2].det().subs(p[2], 1 - p[0] - p[1]))
    assert sp.simplify(minor - p[0] * p[1] * (1 - p[0] - p[1])) == 0  # > 0 on the open simplex: rank 2
    assert sp.simplify((sp.ones(1, 3) * x)[0]) == 0
    assert sp.simplify((sp.ones(1, 3) * av)[0]) != 0  # the uncentred advantage is another solution, not this one


def test_TR_50_group_mean_advantage_shrinks_by_n_minus_1_over_n() -> None:
    """E[r_1 - mean(r) | tau_1] = (n - 1)/n (r_1 - E r) for iid r_2..r_n (n = 2..5), hence the Dr. GRPO mean
    (n - 1)/n (Q(s, a) - V(s0)): biased for A^pi(s, a) = Q(s, a) - V(s)."""
    r1 = sp.Symbol("r1", real=True)
    vals = sp.symbols("v0:3", real=True)  # r_2..r_n iid on three symbolic values with symbolic probabilities
    q0, q1 = sp.symbols("q0 q1", positive=True)
    probs = (q0, q1, 1 - q0 - q1)
    mu = sum(q * v for q, v in zip(probs, vals, strict=True))
    for n in range(2, 6):
        # E[r_1 - mean(r_1..r_n) | r_1] by enumerating all 3^(n-1) outcomes of the other n - 1 samples
        expected = sp.Integer(0)
        for outcome in itertools.product(range(3), repeat=n - 1):
            weight = sp.Mul(*[probs[o] for o in outcome])
            expected += weight * (r1 - (r1 + sum(vals[o] for o in outcome)) / n)
        assert sp.simplify(sp.expand(expected - sp.Rational(n - 1, n) * (r1 - mu))) == 0
        assert sp.simplify(sp.expand(expected - (r1 - mu))) != 0  # not unbiased for r_1 - E r
