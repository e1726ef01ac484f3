"""scalable.core.losses against oracles written by hand from the documented formulas (float64).

value_loss with clipping: (1/2) max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2) with [[V_old]], [[R]]; on
dyadic data (every input a multiple of 1/64 below 4) each operation is exact, so values and gradients are compared
bit for bit. ppo_clip_loss: -C_eps(ell, A) elementwise, C_eps written in TR-13's piecewise form, under the three
reductions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reference.tolerance import tolerance  # noqa: E402
from scalable.core import losses  # noqa: E402


def T(x: Any) -> Any:
    """numpy / list -> float64 torch tensor."""
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=torch.float64)


def N(x: Any) -> np.ndarray:
    return np.asarray(x.detach().numpy())


# (V_old, V, R, the hand-computed 1/2 max(...), dLoss/dV): c = 1/4
_C = 0.25
_CASES = [
    (0.0, 1.0, 1.0, 0.5 * 0.75**2, 0.0),  # V above V_old by 1 > c: clipped 0.25 - 1 wins over 0; clip active: grad 0
    (0.0, -1.0, -1.0, 0.5 * 0.75**2, 0.0),  # V below V_old by 1: clipped -0.25 + 1 wins; grad 0
    (1.0, 2.0, 3.0, 0.5 * 1.75**2, 0.0),  # V moved towards R beyond the clip: clipped (1.25 - 3)^2 > (2 - 3)^2
    (1.0, 0.0, -2.0, 0.5 * 2.75**2, 0.0),  # the same below: (0.75 + 2)^2 > (0 + 2)^2
    (0.0, 1.0, -1.0, 0.5 * 2.0**2, 2.0),  # clip active but the unclipped (V - R)^2 = 4 wins over 1.25^2: grad V - R
    (0.0, -1.0, 1.5, 0.5 * 2.5**2, -2.5),  # the same below: 6.25 > 1.75^2
    (0.5, 0.625, 2.0, 0.5 * 1.375**2, -1.375),  # inside the clip (|V - V_old| = 1/8 < c): both branches equal
]


def _oracle(vo: float, v: float, r: float, c: float) -> float:
    """The documented formula, in Python floats."""
    clipped = vo + min(max(v - vo, -c), c)
    return 0.5 * max((v - r) ** 2, (clipped - r) ** 2)


def test_TR_15_value_loss_clipped_branch_wins_on_both_sides() -> None:
    """Hand cases where the clipped branch wins above and below V_old (its gradient w.r.t. V is 0 where the clip is
    active), where the unclipped branch wins although the clip is active (gradient V - R), and inside the clip.
    Dyadic data: exact, compared bit for bit with the literal values and with `_oracle`."""
    vo, v, r, want, grad = (list(col) for col in zip(*_CASES, strict=True))
    assert [_oracle(a, b, c, _C) for a, b, c in zip(vo, v, r, strict=True)] == want
    v_t = T(v).requires_grad_(True)
    r_t = T(r).requires_grad_(True)
    vo_t = T(vo).requires_grad_(True)
    none = losses.value_loss(v_t, r_t, old_values=vo_t, clip_eps=_C, reduction="none")
    assert tuple(none.shape) == (len(_CASES),)
    np.testing.assert_array_equal(N(none), want)
    total = losses.value_loss(v_t, r_t, old_values=vo_t, clip_eps=_C, reduction="sum")
    assert float(total.detach()) == math.fsum(want)  # dyadic with few bits: the sum is exact in any order
    total.backward()  # type: ignore[no-untyped-call]
    np.testing.assert_array_equal(N(v_t.grad), grad)
    assert r_t.grad is None and vo_t.grad is None  # [[R]] and [[V_old]]
    mean = losses.value_loss(T(v), T(r), old_values=T(vo), clip_eps=_C)
    # the exact sum divided by n: one rounding, within tolerance(|mean|)
    assert abs(float(mean) - math.fsum(want) / len(want)) <= tolerance(math.fsum(want) / len(want))


def test_TR_15_value_loss_clipped_random_batch_matches_the_formula() -> None:
    """Seeded batch with |V - V_old| up to 3 c on both sides (every branch occurs; checked). Oracle: the formula
    in numpy float64 and the gradient by cases (0 where the clip is active and the clipped branch is strictly
    larger, else V - R; ties have probability 0). Each side rounds V - V_old, + V_old, - R, the square, the max and
    the 1/2 (6 roundings of quantities of scale (|V| + |V_old| + |R| + c)^2): tolerance(scale^2, terms=6) per
    element; the gradient tolerance(scale, terms=4)."""
    rng = np.random.default_rng(0)
    n, c = 200, 0.2
    vo = rng.normal(size=n)
    v = vo + rng.uniform(-3 * c, 3 * c, size=n)
    r = rng.normal(size=n)
    clipped = vo + np.clip(v - vo, -c, c)
    a, b = (v - r) ** 2, (clipped - r) ** 2
    want = 0.5 * np.maximum(a, b)
    active = np.abs(v - vo) > c
    grad = np.where(active & (b > a), 0.0, v - r)
    # every branch occurs: clipped wins above and below, unclipped wins with the clip active, inside the clip
    assert np.any(active & (b > a) & (v > vo)) and np.any(active & (b > a) & (v < vo))
    assert np.any(active & (a > b)) and np.any(~active)
    scale = float(np.max(np.abs(v) + np.abs(vo) + np.abs(r))) + c
    v_t = T(v).requires_grad_(True)
    got = losses.value_loss(v_t, T(r), old_values=T(vo), clip_eps=c, reduction="none")
    np.testing.assert_allclose(N(got), want, rtol=0, atol=tolerance(scale**2, terms=6))
    got.sum().backward()  # type: ignore[no-untyped-call]
    np.testing.assert_allclose(N(v_t.grad), grad, rtol=0, atol=tolerance(scale, terms=4))


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_TR_13_ppo_clip_loss_reductions_none_sum_mean(eps: float) -> None:
    """-C_eps(ell, A), ell = exp(lp_new - lp_old), C_eps(ell, A) = min(ell, 1 + eps) A for A >= 0 and
    max(ell, 1 - eps) A for A < 0 (TR-13, written per element with math.exp): "none" keeps the [3, 4] shape and the
    elementwise values, "sum" is their sum, "mean" the sum / 12. exp is within an ulp or two in both libms and the
    rest is 2 roundings: tolerance(max |ell A|, terms=4) per element; the reductions add the sum of 12 terms:
    tolerance(sum |ell A|, terms=12 + 4)."""
    rng = np.random.default_rng(4)
    lp_old = rng.normal(-1.0, 0.5, size=(3, 4))
    lp_new = lp_old + rng.normal(0.0, 0.6, size=(3, 4))
    adv = rng.normal(size=(3, 4))
    want = np.zeros((3, 4))
    for i in range(3):
        for j in range(4):
            ell = math.exp(float(lp_new[i, j] - lp_old[i, j]))
            a = float(adv[i, j])
            want[i, j] = -(min(ell, 1.0 + eps) * a if a >= 0.0 else max(ell, 1.0 - eps) * a)
    ratio = np.exp(lp_new - lp_old)
    assert np.any((ratio > 1.0 + eps) & (adv > 0)) and np.any((ratio < 1.0 - eps) & (adv < 0))  # clips bind
    el_tol = tolerance(float(np.max(np.abs(ratio * adv))), terms=4)
    sum_tol = tolerance(float(np.sum(np.abs(ratio * adv))), terms=12 + 4)
    none = losses.ppo_clip_loss(T(lp_new), T(lp_old), T(adv), eps=eps, reduction="none")
    assert tuple(none.shape) == (3, 4)
    np.testing.assert_allclose(N(none), want, rtol=0, atol=el_tol)
    total = losses.ppo_clip_loss(T(lp_new), T(lp_old), T(adv), eps=eps, reduction="sum")
    assert tuple(total.shape) == ()
    assert abs(float(total) - math.fsum(want.ravel().tolist())) <= sum_tol
    mean = losses.ppo_clip_loss(T(lp_new), T(lp_old), T(adv), eps=eps)
    assert abs(float(mean) - math.fsum(want.ravel().tolist()) / 12) <= sum_tol / 12
    assert abs(math.fsum(want.ravel().tolist())) * (1 - 1 / 12) > 100 * sum_tol  # sum and mean differ here
