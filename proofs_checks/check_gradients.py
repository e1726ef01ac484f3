"""SymPy checks of the symbolic policy-gradient items: PG-07, PG-09/PG-11 (sum_a grad pi = 0), PG-18, PG-28
(with erratum E-37) and PG-51 (with erratum E-51), and the stable form of log(1 - tanh^2 z)."""

from __future__ import annotations

import sympy as sp


def _softmax(logits: list[sp.Expr]) -> list[sp.Expr]:
    den = sum(sp.exp(x) for x in logits)
    return [sp.exp(x) / den for x in logits]


def test_PG_07_grad_log_trajectory_probability_is_sum_of_policy_scores() -> None:
    """log p_theta(tau) = log p0 + sum_t [log pi_theta(a_t|s_t) + log p(r_t, s_{t+1}|s_t, a_t)]; p0 and p are
    theta-free, so d/dtheta log p_theta = sum_t d/dtheta log pi_theta (two steps, two states, 2 actions)."""
    th = sp.symbols("th0:4", real=True)  # theta[s, a] for s in {0, 1}, a in {0, 1}
    p0, p1, p2 = sp.symbols("p0 p1 p2", positive=True)
    pi_s0 = _softmax([th[0], th[1]])
    pi_s1 = _softmax([th[2], th[3]])
    # tau = (s0=0, a0=1, r0, s1=1, a1=0, r1, term)
    log_p = sp.log(p0 * pi_s0[1] * p1 * pi_s1[0] * p2)  # the log of the trajectory's probability itself
    for x in th:
        lhs = sp.diff(log_p, x)
        rhs = sp.diff(sp.log(pi_s0[1]), x) + sp.diff(sp.log(pi_s1[0]), x)
        assert sp.simplify(lhs - rhs) == 0


def test_PG_09_PG_11_expected_score_vanishes() -> None:
    """sum_a pi(a|s) d/dtheta_b log pi(a|s) = d/dtheta_b sum_a pi(a|s) = 0 (softmax, 3 actions)."""
    th = sp.symbols("t0:3", real=True)
    pi = _softmax(list(th))
    for b in th:
        assert sp.simplify(sum(p * sp.diff(sp.log(p), b) for p in pi)) == 0
    # the closed-form score: d log pi_a / d theta_b = 1[a = b] - pi_b
    for a in range(3):
        for b in range(3):
            assert sp.simplify(sp.diff(sp.log(pi[a]), th[b]) - (int(a == b) - pi[b])) == 0


def test_PG_18_weighted_minimum_variance_lemma() -> None:
    """For one state with actions of probability p_a, weights w_a^2 and values Q_a, the objective
    F(b) = sum_a p_a w_a^2 (Q_a - b)^2 is a convex quadratic, stationary at b* = sum p w^2 Q / sum p w^2, and
    F(b) - F(b*) = (sum_a p_a w_a^2) (b - b*)^2 (the cross term of the proof vanishes)."""
    p = sp.symbols("p0:3", positive=True)
    w = sp.symbols("w0:3", positive=True)
    q = sp.symbols("q0:3", real=True)
    b = sp.Symbol("b", real=True)
    f = sum(p[i] * w[i] ** 2 * (q[i] - b) ** 2 for i in range(3))
    m = sum(p[i] * w[i] ** 2 for i in range(3))
    b_star = sum(p[i] * w[i] ** 2 * q[i] for i in range(3)) / m
    assert sp.simplify(sp.diff(f, b).subs(b, b_star)) == 0
    assert sp.simplify(sp.diff(f, b, 2) - 2 * m) == 0
    assert sp.simplify(sp.expand(f - f.subs(b, b_star) - m * (b - b_star) ** 2)) == 0
    # cross term (*) of the proof
    cross = sum(p[i] * w[i] ** 2 * (q[i] - b_star) for i in range(3))
    assert sp.simplify(cross) == 0
    # w = 1: b* is the conditional mean (b = V^pi in PG-19)
    b_one = b_star.subs({w[i]: 1 for i in range(3)})
    assert sp.simplify(b_one - sum(p[i] * q[i] for i in range(3)) / sum(p)) == 0


def test_PG_28_stop_gradient_form_and_sign_E_37() -> None:
    """With c = [[Q - V_phi(s_t)]] a constant (stop-gradient), grad_theta(gamma^t c log pi) = gamma^t c grad log pi,
    so Alg. #1's descent step g_theta += -(grad log pi) gamma^t c equals -grad_theta(gamma^t [[c]] log pi)
    (E-37: minus sign). Without the stop-gradient, a theta-dependent c(theta) adds gamma^t c'(theta) log pi."""
    t0, t1, gamma, c, tt = sp.symbols("t0 t1 gamma c t", real=True)
    pi = _softmax([t0, t1])
    logpi = sp.log(pi[0])
    surrogate = gamma**tt * c * logpi
    for x in (t0, t1):
        assert sp.simplify(-sp.diff(surrogate, x) - (-(sp.diff(logpi, x)) * gamma**tt * c)) == 0
    # E-37's sign: the step theta <- theta - lr g with g = -(grad log pi) gamma^t c moves log pi at the rate
    # grad log pi . (-g) = gamma^t c |grad log pi|^2: up when the advantage c > 0 (a '+' in g would lower it)
    gp, cp = sp.symbols("gamma_p c_p", positive=True)
    grad = [sp.diff(logpi, x) for x in (t0, t1)]
    g_vec = [-gx * gp**tt * cp for gx in grad]
    rate = sum(gx * (-gv) for gx, gv in zip(grad, g_vec, strict=True))
    assert sp.simplify(rate - gp**tt * cp * sum(gx**2 for gx in grad)) == 0
    assert sp.simplify(rate).subs({t0: sp.Rational(1, 3), t1: -1, tt: 2}).is_positive
    c_theta = sp.Function("Qhat")(t0)  # not stopped: depends on theta
    extra = sp.diff(gamma**tt * c_theta * logpi, t0) - gamma**tt * c_theta * sp.diff(logpi, t0)
    assert sp.simplify(extra - gamma**tt * sp.diff(c_theta, t0) * logpi) == 0


def test_PG_51_tanh_gaussian_log_density_E_51() -> None:
    """Change of variables a = tanh z, z ~ N(mu, e^{2 tau}): log pi(a) = log N(atanh a) - log(1 - a^2), which is
    the text's formula plus C(a) = -log(1 - a^2) - log(2 pi)/2, free of (mu, tau).

    The density is derived, not assumed: tanh is increasing, so P(tanh z <= a) = Phi((atanh a - mu) / sigma),
    and pi(a) is the a-derivative of that CDF (whether the Jacobian divides or multiplies is then checked,
    not typed in)."""
    a = sp.Symbol("a", real=True)
    mu, tau = sp.symbols("mu tau", real=True)
    z = sp.atanh(a)
    sigma = sp.exp(tau)
    cdf = (1 + sp.erf((z - mu) / (sigma * sp.sqrt(2)))) / 2
    true_logpdf = sp.log(sp.diff(cdf, a))
    text = -tau - (z - mu) ** 2 / (2 * sp.exp(2 * tau))
    c = sp.simplify(sp.expand_log(true_logpdf - text, force=True))
    assert sp.simplify(sp.expand_log(c - (-sp.log(1 - a**2) - sp.log(2 * sp.pi) / 2), force=True)) == 0
    # the opposite Jacobian convention (+log(1 - a^2)) is refuted by the same derivation
    assert sp.simplify(sp.expand_log(c - (sp.log(1 - a**2) - sp.log(2 * sp.pi) / 2), force=True)) != 0
    assert sp.diff(c, mu) == 0 and sp.diff(c, tau) == 0


def test_PG_51_stable_log1m_tanh2_identity() -> None:
    """log(1 - tanh^2 z) = 2 (log 2 - z - softplus(-2 z)), softplus(x) = log(1 + e^x): compare exponentials."""
    z = sp.Symbol("z", real=True)
    lhs = 1 - sp.tanh(z) ** 2
    rhs = sp.exp(2 * (sp.log(2) - z - sp.log(1 + sp.exp(-2 * z))))
    assert sp.simplify((lhs - rhs).rewrite(sp.exp)) == 0
