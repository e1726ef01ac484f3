"""scalable.core: each torch twin equals its `reference` function in float64; stop-gradient autograd.

Random batches from the public ``reference.testing.strategies_rollouts.rollout_batches`` (as in
tests/reference/test_advantages.py): T in 1..10, B in 1..4 (B = 1 drawn often),
independent termination and truncation flags per row, ``v_final`` NaN wherever a row is not truncated
(a leak turns a result into NaN). Tolerances from reference.tolerance: |r| <= 1 and |V| <= V_MAX give
sums of at most T terms of scale T (1 + 2 V_MAX). The twins run the same operations in the same order
as the reference, so most agree bit for bit; the tolerance only absorbs libm / vectorisation differences.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import reference.advantages as ref_adv  # noqa: E402
import reference.policies as ref_pol  # noqa: E402
import reference.surrogates as ref_sur  # noqa: E402
from reference.errors import ReferenceError_, ShapeError  # noqa: E402
from reference.testing.strategies_rollouts import RolloutBatch, rollout_batches  # noqa: E402
from reference.tolerance import U32, U64, counted_tolerance, tolerance  # noqa: E402
from scalable.core import advantages as adv  # noqa: E402
from scalable.core import distributions as dist  # noqa: E402
from scalable.core import losses  # noqa: E402
from scalable.core.normalize import ObservationNormalizer, RewardNormalizer, RunningMeanStd  # noqa: E402

V_MAX = 3.0


def T(x: Any) -> Any:
    """numpy -> torch (float64 stays float64, bool stays bool)."""
    return torch.from_numpy(np.ascontiguousarray(x))


def N(x: Any) -> np.ndarray:
    return np.asarray(x.detach().numpy())


def batches() -> st.SearchStrategy[RolloutBatch]:
    """The public rollout strategy at this module's scales: T <= 10, B <= 4, |V| <= V_MAX."""
    return rollout_batches(max_steps=10, max_envs=4, value_scale=V_MAX)


def _tol(bt: RolloutBatch) -> float:
    """Sums of at most T terms of scale T (1 + 2 V_MAX) (module docstring)."""
    t = bt.shape[0]
    return tolerance(t * (1.0 + 2.0 * V_MAX), terms=t)


def np_args(bt: RolloutBatch) -> tuple[np.ndarray, ...]:
    return bt.rewards, bt.values, bt.next_values, bt.terminated, bt.truncated


def torch_args(bt: RolloutBatch, float_flags: bool = False) -> tuple[Any, ...]:
    """The batch as torch float64 tensors; flags as bool, or as float32 0/1 with ``float_flags``."""
    flags = (T(bt.terminated.astype(np.float32)), T(bt.truncated.astype(np.float32))) if float_flags \
        else (T(bt.terminated), T(bt.truncated))
    return T(bt.rewards), T(bt.values), T(bt.next_values), *flags


lams = st.sampled_from([0.0, 0.3, 0.9, 0.95, 1.0])
ks = st.one_of(st.none(), st.integers(1, 12))


def _close(got: Any, want: np.ndarray, tol: float) -> None:
    g = N(got)
    assert g.dtype == np.float64 and g.shape == want.shape
    assert np.all(np.isfinite(g)), "v_final leaked outside truncated rows"
    np.testing.assert_allclose(g, want, rtol=0, atol=tol)


# ------------------------------------------------------------------------------------ advantages
@given(batches())
def test_TR_29_next_values_twin(bt: RolloutBatch) -> None:
    got = adv.next_values_from_rollout(T(bt.values), T(bt.last_value), T(bt.terminated), T(bt.truncated),
                                       T(bt.v_final))
    np.testing.assert_array_equal(N(got), bt.next_values)


@given(batches())
def test_TR_29_td_residuals_twin(bt: RolloutBatch) -> None:
    r, v, nv, term, _ = torch_args(bt)
    want = ref_adv.td_residuals(bt.rewards, bt.values, bt.next_values, bt.terminated, gamma=bt.gamma)
    _close(adv.td_residuals(r, v, nv, term, gamma=bt.gamma), want, _tol(bt))


@given(batches(), ks, st.booleans())
def test_TR_20_td_k_twin(bt: RolloutBatch, k: int | None, float_flags: bool) -> None:
    want = ref_adv.td_k_advantages(*np_args(bt), gamma=bt.gamma, k=k)
    _close(adv.td_k_advantages(*torch_args(bt, float_flags), gamma=bt.gamma, k=k), want, _tol(bt))


@given(batches(), lams, st.booleans())
def test_TR_31_gae_twin(bt: RolloutBatch, lam: float, float_flags: bool) -> None:
    want = ref_adv.gae(*np_args(bt), gamma=bt.gamma, lam=lam)
    got = adv.gae(*torch_args(bt, float_flags), gamma=bt.gamma, lam=lam)
    _close(got, want, _tol(bt))
    # and the definitional O(T^2) oracle
    _close(got, ref_adv.gae_oracle(*np_args(bt), gamma=bt.gamma, lam=lam), _tol(bt))


@given(batches(), lams)
def test_E_57_value_targets_twin(bt: RolloutBatch, lam: float) -> None:
    a = ref_adv.gae(*np_args(bt), gamma=bt.gamma, lam=lam)
    np.testing.assert_array_equal(N(adv.value_targets(T(a), T(bt.values))), ref_adv.value_targets(a, bt.values))


def test_TR_31_gae_float32_and_autograd() -> None:
    """float32 in, float32 out; GAE is differentiable w.r.t. values (no in-place writes)."""
    g = torch.Generator().manual_seed(0)
    r, v = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g, requires_grad=True)
    nv = torch.randn(5, 3, generator=g)
    term = torch.zeros(5, 3, dtype=torch.bool)
    out = adv.gae(r, v, nv, term, term, gamma=0.9, lam=0.95)
    assert out.dtype == torch.float32
    out.sum().backward()  # type: ignore[no-untyped-call]
    c = 0.9 * 0.95  # d(sum_t A_t)/dV(s_u) = -sum_{t <= u} c^{u - t} (no done flags)
    want = -(1 - c ** torch.arange(1, 6, dtype=torch.float32)) / (1 - c)
    # float32 rounding (u = 2^-24) of both sides against the exact -g_u, g_u = 1 + c g_{u-1} (<= 1 / (1 - c)):
    # the backward recursion rounds c, the product and the sum, e_u = c e_{u-1} + u (2 c g_{u-1} + g_u) (the
    # negation through delta = ... - V is exact); the closed form rounds c (carried k = u + 1 times into c^k),
    # pow (2 ulp: 4), 1 - c^k, 1 / (1 - c) to float32 and the division: ((k + 4) c^k + 1 - c^k) u / (1 - c)
    # + 2 u g_u.
    u32, g_prev, e_prev, bound = U32, 0.0, 0.0, []
    for k in range(1, 6):
        g_k = 1.0 + c * g_prev
        e_prev = c * e_prev + u32 * (2.0 * c * g_prev + g_k)
        bound.append(e_prev + ((k + 4) * c**k + 1.0 - c**k) * u32 / (1.0 - c) + 2.0 * u32 * g_k)
        g_prev = g_k
    assert v.grad is not None
    err = (v.grad.double() - want[:, None].double()).abs()
    assert bool((err <= torch.tensor(bound, dtype=torch.float64)[:, None]).all()), err


def test_TR_29_bad_inputs_raise_named_errors() -> None:
    z = torch.zeros(3, 2, dtype=torch.float64)
    f = torch.zeros(3, 2, dtype=torch.bool)
    with pytest.raises(ShapeError, match="values"):
        adv.td_residuals(z, torch.zeros(3, 3, dtype=torch.float64), z, f, gamma=0.9)
    with pytest.raises(ReferenceError_, match="lam"):
        adv.gae(z, z, z, f, f, gamma=0.9, lam=1.5)
    with pytest.raises(ValueError, match="gamma"):
        adv.gae(z, z, z, f, f, gamma=0.0, lam=0.5)
    with pytest.raises(ReferenceError_, match="boolean"):
        adv.gae(z, z, z, torch.full((3, 2), 2.0), f, gamma=0.9, lam=0.5)
    for bad in (0, 1.7, True, float("inf")):  # as the reference: refused, never floored (1.7 once ran as 1)
        with pytest.raises(ReferenceError_, match="k must be"):
            adv.td_k_advantages(z, z, z, f, f, gamma=0.9, k=bad)  # type: ignore[arg-type]
    with pytest.raises(ReferenceError_, match="v_final"):
        adv.next_values_from_rollout(z, torch.zeros(2, dtype=torch.float64), f, ~f)
    with pytest.raises(ShapeError, match="last_value"):
        adv.next_values_from_rollout(z, torch.zeros(3, dtype=torch.float64), f, f)


@pytest.mark.parametrize("k", [1, 2, None])
def test_TR_20_td_k_twin_differentiates_with_respect_to_the_rewards(k: int | None) -> None:
    """TD(k) is linear in the rewards, so d sum(A) / d r[j, b] is the sum of the reference's TD(k) of the unit
    reward e_{j, b} with V = V' = 0: the twin's autograd must give exactly that (it raised "modified by an
    inplace operation" when the rewards required grad). Tolerance: a sum of T = 5 terms gamma^l <= 1 each
    rounded once, 5 * 2 * 2^-53 * 5."""
    rng = np.random.default_rng(3)
    T_, B = 5, 3
    term = rng.random((T_, B)) < 0.3
    trunc = rng.random((T_, B)) < 0.2
    zero = np.zeros((T_, B))
    r = torch.tensor(rng.normal(size=(T_, B)), dtype=torch.float64, requires_grad=True)
    out = adv.td_k_advantages(r, T(zero), T(rng.normal(size=(T_, B))), T(term), T(trunc), gamma=0.9, k=k)
    out.sum().backward()  # type: ignore[no-untyped-call]
    want = np.zeros((T_, B))
    for j in range(T_):
        for b in range(B):
            e = np.zeros((T_, B))
            e[j, b] = 1.0
            want[j, b] = ref_adv.td_k_advantages(e, zero, zero, term, trunc, gamma=0.9, k=k).sum()
    assert r.grad is not None
    np.testing.assert_allclose(N(r.grad), want, rtol=0, atol=tolerance(float(T_), terms=T_))


def test_TR_29_twins_of_empty_batches_and_of_overflowing_targets() -> None:
    """T = 0 gives empty results, as the reference does (the torch GAE raised a raw IndexError); a value
    target A + V beyond the float64 range raises as every other twin does (it returned inf)."""
    z = torch.zeros(0, 2, dtype=torch.float64)
    f = torch.zeros(0, 2, dtype=torch.bool)
    assert adv.gae(z, z, z, f, f, gamma=0.9, lam=0.5).shape == (0, 2)
    assert adv.td_k_advantages(z, z, z, f, f, gamma=0.9, k=2).shape == (0, 2)
    assert adv.next_values_from_rollout(z, torch.zeros(2, dtype=torch.float64), f, f).shape == (0, 2)
    assert ref_adv.next_values_from_rollout(np.zeros((0, 2)), np.zeros(2), np.zeros((0, 2), bool),
                                            np.zeros((0, 2), bool)).shape == (0, 2)
    big = torch.full((1, 1), 1e308, dtype=torch.float64)
    with pytest.raises(ReferenceError_, match="value target"):
        adv.value_targets(big, big)


def test_twins_refuse_strings_booleans_and_non_flags_as_the_reference_does() -> None:
    """lam="0.5", lam=True and eps="0.2" ran as numbers; terminated = 0.5 was read as terminated."""
    z = torch.zeros(3, 2, dtype=torch.float64)
    f = torch.zeros(3, 2, dtype=torch.bool)
    for lam in ("0.5", True):
        with pytest.raises(ReferenceError_, match="lam"):
            adv.gae(z, z, z, f, f, gamma=0.9, lam=lam)  # type: ignore[arg-type]
    for eps in ("0.2", True):
        with pytest.raises(ReferenceError_, match="eps"):
            losses.ppo_clip_objective(z, z, eps=eps)  # type: ignore[arg-type]
        with pytest.raises(ReferenceError_, match="eps"):
            ref_sur.ppo_clip_objective(np.ones(2), np.ones(2), eps=eps)  # type: ignore[arg-type]
    with pytest.raises(ReferenceError_, match="boolean"):
        losses.td_target(z, z, torch.full((3, 2), 0.5), gamma=0.9)


def test_losses_refuse_per_sample_inputs_of_different_shapes() -> None:
    """A value head's [M, 1] against targets [M] broadcast to [M, M]: value_loss gave 1.25 where the loss is 0,
    ppo_clip_loss -3.379 instead of -3.479, a2c_policy_loss 4.5 instead of 6.25."""
    col = torch.arange(4, dtype=torch.float64)[:, None]
    flat = torch.arange(4, dtype=torch.float64)
    with pytest.raises(ShapeError, match="same shape"):
        losses.value_loss(col, flat)
    with pytest.raises(ShapeError, match="same shape"):
        losses.value_loss(flat, flat, old_values=col, clip_eps=0.2)
    with pytest.raises(ShapeError, match="same shape"):
        losses.ppo_clip_loss(col, col, flat, eps=0.2)
    with pytest.raises(ShapeError, match="same shape"):
        losses.a2c_policy_loss(col, flat)
    with pytest.raises(ShapeError, match="same shape"):
        losses.td_loss(col, flat, flat, torch.zeros(4, dtype=torch.bool), gamma=0.9)
    assert float(losses.value_loss(flat, flat)) == 0.0  # same shapes: the loss itself


def test_PG_48_categorical_log_prob_refuses_float_actions() -> None:
    """Actions [0.9, 1.7] were truncated to 0 and 1 by .long(); the reference refuses them too."""
    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]], dtype=torch.float64))
    for bad in (torch.tensor([0.9, 1.7]), torch.tensor([True, False])):
        with pytest.raises(ValueError, match="integer"):
            dist.categorical_log_prob(logits, bad)
    got = dist.categorical_log_prob(logits, torch.tensor([0, 2], dtype=torch.uint8))
    np.testing.assert_allclose(N(got), np.log([0.2, 0.5]), rtol=0, atol=tolerance(2.0, terms=3))


@pytest.mark.parametrize("where", ["rewards", "values", "next_values", "last_value", "v_final"])
def test_TR_29_twins_refuse_a_nan_that_enters_the_result_as_the_reference_does(where: str) -> None:
    """A NaN in an entry that the result reads raises (the reference's rule, 49f584a); the twins returned NaN.
    A NaN where nothing reads it (a terminated row's next value, v_final off the truncated rows) is accepted."""
    t, b = 4, 2
    z = torch.zeros(t, b, dtype=torch.float64)
    term = torch.zeros(t, b, dtype=torch.bool)
    trunc = torch.zeros(t, b, dtype=torch.bool)
    term[1, 0] = True
    trunc[2, 1] = True
    r, v, nv = z.clone(), z.clone(), z.clone()
    last = torch.zeros(b, dtype=torch.float64)
    vf = torch.full((t, b), float("nan"), dtype=torch.float64)
    vf[2, 1] = 0.5
    nv[1, 0] = float("nan")  # terminated row: not read
    assert torch.isfinite(adv.gae(r, v, nv, term, trunc, gamma=0.9, lam=0.95)).all()
    assert torch.isfinite(adv.next_values_from_rollout(v, last, term, trunc, vf)).all()
    bad = {"rewards": r, "values": v, "next_values": nv, "last_value": last, "v_final": vf}[where].clone()
    if where == "v_final":
        bad[2, 1] = float("nan")
    elif where == "last_value":
        bad[1] = float("nan")
    else:
        bad[3, 1] = float("nan")
    kw = {"rewards": r, "values": v, "next_values": nv, "last_value": last, "v_final": vf, where: bad}
    with pytest.raises(ReferenceError_, match="not finite"):
        if where in ("last_value", "v_final"):
            adv.next_values_from_rollout(kw["values"], kw["last_value"], term, trunc, kw["v_final"])
        else:
            adv.gae(kw["rewards"], kw["values"], kw["next_values"], term, trunc, gamma=0.9, lam=0.95)
    if where not in ("last_value", "v_final"):
        with pytest.raises(ReferenceError_, match="not finite"):
            adv.td_k_advantages(kw["rewards"], kw["values"], kw["next_values"], term, trunc, gamma=0.9, k=2)


# ------------------------------------------------------------------------------------ surrogates / losses
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 7, 64]), st.sampled_from([0.0, 0.1, 0.2, 0.3]))
def test_TR_14_ppo_clip_objective_twin(seed: int, n: int, eps: float) -> None:
    rng = np.random.default_rng(seed)
    ratio = np.exp(rng.normal(0, 0.5, n))
    ratio[: n // 4] = rng.choice([1.0 - eps, 1.0 + eps, 1.0], n // 4)  # kinks
    a = rng.normal(0, 2, n)
    a[: n // 8] = 0.0
    want = ref_sur.ppo_clip_objective(ratio, a, eps=eps)
    np.testing.assert_array_equal(N(losses.ppo_clip_objective(T(ratio), T(a), eps=eps)), want)


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 5, 32]), st.sampled_from([0.1, 0.2]))
def test_TR_13_ppo_clip_loss_value_and_gradient(seed: int, n: int, eps: float) -> None:
    """loss = -mean C_eps(exp(lp - [[lp_old]]), [[A]]); d loss / d lp = -ell dC/d ell / n (TR-13)."""
    rng = np.random.default_rng(seed)
    lp_old = rng.normal(-1, 0.5, n)
    lp_new = lp_old + rng.normal(0, 0.4, n)
    a = rng.normal(0, 1, n)
    ratio = np.exp(lp_new - lp_old)
    lp_t = T(lp_new).requires_grad_(True)
    old_t = T(lp_old).requires_grad_(True)
    a_t = T(a).requires_grad_(True)
    loss = losses.ppo_clip_loss(lp_t, old_t, a_t, eps=eps)
    tol = tolerance(float(np.max(ratio * np.abs(a))) + 1.0, terms=n)
    assert abs(float(loss.detach()) + float(np.mean(ref_sur.ppo_clip_objective(ratio, a, eps=eps)))) <= tol
    loss.backward()  # type: ignore[no-untyped-call]
    want = -ratio * ref_sur.ppo_clip_ratio_gradient(ratio, a, eps=eps) / n
    np.testing.assert_allclose(N(lp_t.grad), want, rtol=0, atol=tol)
    assert old_t.grad is None and a_t.grad is None  # [[log pi_old]] and [[A]] are stop-gradients


def test_TR_15_value_loss_unclipped_and_clipped() -> None:
    v = torch.tensor([0.0, 1.0, 2.0, -1.0], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([1.0, 1.0, 0.0, 0.5], dtype=torch.float64, requires_grad=True)
    loss = losses.value_loss(v, r, reduction="sum")
    assert float(loss.detach()) == 0.5 * (1 + 0 + 4 + 2.25)  # dyadic: exact in float64
    loss.backward()  # type: ignore[no-untyped-call]
    assert torch.equal(v.grad, (v - r).detach()) and r.grad is None
    v_old = torch.tensor([0.5, 1.0, 0.0, -1.0], dtype=torch.float64)
    c = 0.2
    got = losses.value_loss(v.detach(), r.detach(), old_values=v_old, clip_eps=c, reduction="none")
    vc = v_old + torch.clamp(v.detach() - v_old, -c, c)
    want = 0.5 * torch.maximum((v.detach() - r.detach()) ** 2, (vc - r.detach()) ** 2)
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="old_values"):
        losses.value_loss(v, r, clip_eps=0.2)
    with pytest.raises(ValueError, match="reduction"):
        losses.value_loss(v, r, reduction="avg")  # type: ignore[arg-type]


@given(st.integers(0, 2**32 - 1), st.sampled_from([0.5, 0.9, 1.0]), st.sampled_from([1, 6]))
def test_EVAL_11_td_loss_autograd_is_the_semi_gradient(seed: int, gamma: float, n: int) -> None:
    """grad 1/2 (V(s) - [[r + gamma V(s')]])^2 = (V(s) - y) grad V(s), not delta (grad V(s) - gamma grad V(s'))."""
    rng = np.random.default_rng(seed)
    d = 4
    x0, x1 = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    w = rng.normal(size=d)
    r = rng.normal(size=n)
    term = rng.random(n) < 0.3
    w_t = T(w).requires_grad_(True)
    v0, v1 = T(x0) @ w_t, T(x1) @ w_t
    loss = losses.td_loss(v0, T(r), v1, T(term), gamma=gamma, reduction="sum")
    (grad,) = torch.autograd.grad(loss, w_t)
    y = r + gamma * np.where(term, 0.0, x1 @ w)
    semi = ((x0 @ w - y)[:, None] * x0).sum(axis=0)
    full = ((x0 @ w - y)[:, None] * (x0 - gamma * np.where(term[:, None], 0.0, x1))).sum(axis=0)
    tol = tolerance(float(np.sum(np.abs(x0 @ w - y)[:, None] * (np.abs(x0) + np.abs(x1)))) + 1.0, terms=n * d)
    np.testing.assert_allclose(N(grad), semi, rtol=0, atol=tol)
    if np.max(np.abs(semi - full)) > 1e3 * tol:
        assert np.max(np.abs(N(grad) - full)) > 1e2 * tol  # the full (residual) gradient is a different vector
    # reduction "mean" divides by n; V(term) = 0 whatever next_values says
    mean_loss = float(losses.td_loss(v0, T(r), v1, T(term), gamma=gamma).detach())
    # the terms are non-negative, so the sum is its own scale
    assert abs(mean_loss - float(loss.detach()) / n) <= tolerance(float(loss.detach()) / n, terms=n)
    np.testing.assert_allclose(N(losses.td_target(T(r), v1, T(term), gamma=gamma)), y, rtol=0, atol=tol)


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 3, 20]))
def test_PG_28_a2c_policy_loss_gradient_is_the_score_function_term(seed: int, n: int) -> None:
    """grad (-log pi(a_t | s_t) [[A_t]]) summed = -sum_t A_t grad log pi(a_t | s_t) (tabular softmax score, PG-07).

    The advantage is built from theta on purpose: the stop-gradient must cut that path (E-46).
    """
    rng = np.random.default_rng(seed)
    s_n, a_n = 3, 4
    theta = rng.normal(size=(s_n, a_n))
    states, actions = rng.integers(0, s_n, n), rng.integers(0, a_n, n)
    q_hat = rng.normal(size=n)
    th = T(theta).requires_grad_(True)
    logits = th[T(states)]
    baseline = logits.logsumexp(-1)  # a "V_phi(s_t)" that depends on theta
    lp = dist.categorical_log_prob(logits, T(actions))
    loss = losses.a2c_policy_loss(lp, T(q_hat) - baseline, reduction="sum")
    (grad,) = torch.autograd.grad(loss, th)
    a_val = q_hat - N(baseline)
    want = -sum(a_val[i] * ref_pol.softmax_score_full(theta, int(states[i]), int(actions[i])) for i in range(n))
    np.testing.assert_allclose(N(grad), want, rtol=0, atol=tolerance(float(np.sum(np.abs(a_val))) * 2, terms=n))
    assert float(losses.entropy_loss(torch.tensor([1.0, 3.0]))) == -2.0


# ------------------------------------------------------------------------------------ distributions
@given(st.integers(0, 2**32 - 1), st.sampled_from([(1,), (5,), (3, 4)]), st.integers(1, 18),
       st.sampled_from([1.0, 30.0, 300.0]))
def test_PG_48_categorical_twins(seed: int, batch: tuple[int, ...], n_actions: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, (*batch, n_actions))
    acts = rng.integers(0, n_actions, batch)
    tol = tolerance(scale * 10 + np.log(n_actions), terms=n_actions)
    np.testing.assert_allclose(N(dist.categorical_log_prob(T(logits), T(acts))),
                               ref_pol.categorical_log_prob(logits, acts), rtol=0, atol=tol)
    np.testing.assert_allclose(N(dist.categorical_entropy(T(logits))), ref_pol.categorical_entropy(logits),
                               rtol=0, atol=tol)


def test_PG_48_categorical_bad_action_and_sampling() -> None:
    for bad in (3, -1):  # -1 would index from the end
        with pytest.raises(ValueError, match=f"action {bad}|outside"):
            dist.categorical_log_prob(torch.zeros(2, 3), torch.tensor([0, bad]))
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)).expand(20000, 3)
    a = dist.categorical_sample(logits, generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(a, minlength=3).double() / 20000
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    assert torch.all((freq - p).abs() <= 4 * torch.sqrt(p * (1 - p) / 20000))  # open choice 22


zs = st.floats(-60.0, 60.0, allow_nan=False)


@given(st.lists(zs, min_size=1, max_size=16), st.integers(0, 2**32 - 1))
def test_PG_51_E_51_tanh_gaussian_log_prob_twin_incl_saturation(z_list: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = np.array(z_list)
    z[0] = np.sign(z[0] or 1.0) * 25.0  # tanh(z) == +-1 in float64: atanh(a) would be infinite
    mu = rng.normal(0, 2, z.shape)
    ls = ref_pol.clamp_log_std(rng.uniform(-7, 3, z.shape))
    tol = tolerance(float(np.max(((z - mu) * np.exp(-ls)) ** 2 + 4 * np.abs(z))) + 10.0, terms=4)
    # log1m_tanh2 alone, on its own scale (|value| <= 2 |z| + 2 log 2), and always past softplus's identity
    # threshold (z < -10, where F.softplus would be off by log1p(e^-2|z|) ~ 2.8e-10 at z = -11)
    zz = np.concatenate([z, [-11.0, -15.0, 12.0]])
    np.testing.assert_allclose(N(dist.log1m_tanh2(T(zz))), ref_pol.log1m_tanh2(zz), rtol=0,
                               atol=tolerance(float(np.max(4.0 * np.abs(zz))) + 2.0, terms=4))
    got = dist.tanh_gaussian_log_prob(T(z), T(mu), T(ls))
    assert torch.all(torch.isfinite(got))
    np.testing.assert_allclose(N(got), ref_pol.tanh_gaussian_log_prob(z, mu, ls), rtol=0, atol=tol)
    np.testing.assert_allclose(float(dist.tanh_gaussian_log_prob_sum(T(z), T(mu), T(ls))),
                               float(np.sum(ref_pol.tanh_gaussian_log_prob(z, mu, ls))), rtol=0,
                               atol=tol * len(z))


@given(st.integers(0, 2**32 - 1))
def test_PG_50_tanh_gaussian_gradient_matches_closed_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mu, ls = rng.normal(size=6), rng.uniform(-2, 1, 6)
    z = mu + np.exp(ls) * rng.normal(size=6)
    mu_t, ls_t = T(mu).requires_grad_(True), T(ls).requires_grad_(True)
    dist.tanh_gaussian_log_prob(T(z), mu_t, ls_t).sum().backward()  # type: ignore[no-untyped-call]
    g_mu, g_ls = ref_pol.tanh_gaussian_grad_log_prob(z, mu, ls)
    tol = tolerance(float(np.max(np.abs(g_mu)) + np.max(np.abs(g_ls))) + 1.0, terms=4)
    np.testing.assert_allclose(N(mu_t.grad), g_mu, rtol=0, atol=tol)
    np.testing.assert_allclose(N(ls_t.grad), g_ls, rtol=0, atol=tol)


def test_open_choice_15_clamp_sample_and_gaussian() -> None:
    x = torch.tensor([-9.0, -5.0, 0.0, 2.0, 7.0], dtype=torch.float64)
    np.testing.assert_array_equal(N(dist.clamp_log_std(x)), ref_pol.clamp_log_std(N(x)))
    with pytest.raises(ValueError, match="low < high"):
        dist.clamp_log_std(x, low=1.0, high=0.0)
    mu = torch.zeros(3, 2, dtype=torch.float64)
    ls = torch.full((2,), -1.0, dtype=torch.float64)
    a, z = dist.tanh_gaussian_sample(mu, ls, generator=torch.Generator().manual_seed(0))
    assert a.shape == z.shape == (3, 2) and torch.equal(a, torch.tanh(z))
    _, z2 = dist.tanh_gaussian_sample(mu, ls, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, z2)
    from scipy.stats import norm

    # Against scipy (float64), counting roundings of u = 2^-53 times S + 1, S bounding every intermediate
    # (|tau| + w^2 / 2 + log sqrt(2 pi), w = (x - mu) / sigma; the + 1 covers the errors that log and exp pass on
    # as absolute ones: a relative error d of sigma or of 2 pi is an absolute d in its log), exp and log taken
    # as 2 ulp (4). Ours: w to 6 (x - mu, exp, product), w^2 / 2 to 13, two subtractions, the constant
    # 0.5 log(2 pi) (5): 20. scipy: sigma = exp(-0.3) (4), w to 6, w^2 / 2 to 13, log(sqrt(2 pi)) (6), log sigma
    # (4 + 4), two subtractions: 29. The entropy tau + (0.5 log(2 pi) + 1/2) vs 0.5 (log(2 pi) + 1) + log sigma
    # likewise, of |tau| + log sqrt(2 pi) + 1/2 + 1: ours the constant (5) and two sums, 7; scipy log(2 pi) + 1
    # (6), log sigma (4 + 4) and the sum, 15.
    xs = np.linspace(-3, 3, 7)
    tau, half_log_2pi = -0.3, 0.5 * np.log(2 * np.pi)
    mags = abs(tau) + 0.5 * ((xs - 0.5) / np.exp(tau)) ** 2 + half_log_2pi + 1.0
    np.testing.assert_allclose(N(dist.gaussian_log_prob(T(xs), torch.tensor(0.5, dtype=torch.float64),
                                                        torch.tensor(tau, dtype=torch.float64))),
                               norm.logpdf(xs, 0.5, np.exp(tau)), rtol=0,
                               atol=counted_tolerance(float(mags.max()), roundings=20 + 29))
    assert float(dist.gaussian_entropy(torch.tensor(tau, dtype=torch.float64))) == pytest.approx(
        float(norm.entropy(0.0, np.exp(tau))), abs=counted_tolerance(abs(tau) + half_log_2pi + 1.5, roundings=7 + 15))


# ------------------------------------------------------------------------------------ normalisers
def _chan_error_bounds(parts: list[np.ndarray], count0: float, mean0: float = 0.0,
                       var0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """First-order running error bounds (Higham 2002, sec. 3.3) on RunningMeanStd's mean and variance after
    merging ``parts`` (each [n, *shape], float64) into the state (mean0, var0, count0), against the exact pooled
    moments of that state and the parts. Each update merges the batch moments b = mean, bv = var (numpy: within
    n u max|x| and (n + 3) u bv; exact for n = 1) by Chan et al.'s formulas, w = n / tot, delta = b - m:
    m' = m + delta w gets (1 - w) e_m + w e_b + |delta| w (3 u + e_tot) + u |m'| (e_tot: relative error of the
    stored count tot = count + n, e_c c / tot + u); v' = A + B + C, A = v c / tot, B = bv w, C = delta^2 c n /
    tot^2, gets (c / tot) e_v + w e_bv + 2 |delta| (e_b + e_m) c n / tot^2 (where the data's condition
    sqrt(1 + mean^2 / var) enters: e_m ~ u |mean|, |delta| ~ std) + A (e_c w + 3 u) + B (e_tot + 2 u)
    + C (e_c + 9 u) + 2 u v' (each product, quotient and sum counted once, the count's own error through
    c / tot, n / tot and c n / tot^2)."""
    shape = parts[0].shape[1:]
    m, v, c = np.full(shape, mean0), np.full(shape, var0), float(count0)
    e_m, e_v, e_c = np.zeros(shape), np.zeros(shape), 0.0
    for p in parts:
        n = p.shape[0]
        b, bv = (p[0], np.zeros(shape)) if n == 1 else (p.mean(0), p.var(0))
        e_b = np.zeros(shape) if n == 1 else n * U64 * np.abs(p).max(0)
        e_bv = (n + 3) * U64 * bv
        tot = c + n
        e_tot = e_c * c / tot + U64
        w = n / tot
        delta = b - m
        m_new = m + delta * w
        a_term, b_term, c_term = v * c / tot, bv * w, delta**2 * c * n / tot**2
        v_new = a_term + b_term + c_term
        e_m, e_v = ((1 - w) * e_m + w * e_b + np.abs(delta) * w * (3 * U64 + e_tot) + U64 * np.abs(m_new),
                    c / tot * e_v + w * e_bv + 2 * np.abs(delta) * (e_b + e_m) * c * n / tot**2
                    + a_term * (e_c * w + 3 * U64) + b_term * (e_tot + 2 * U64) + c_term * (e_c + 9 * U64)
                    + 2 * U64 * v_new)
        m, v, c, e_c = m_new, v_new, tot, e_tot
    return e_m, e_v


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_running_mean_std_equals_batch_moments(seed: int, sizes: list[int]) -> None:
    """The running moments equal numpy's moments of all the data within the rounding of both:
    :func:`_chan_error_bounds` for the running side (count0 = 1e-300), numpy's N u max|x| and (N + 3) u var
    for the reference; the pseudo-sample (weight 1e-300, mean 0, var 1) moves the exact pooled moments by
    <= 1e-300 |mean| / N and 1e-300 (1 + mean^2 + var) / N."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(3.0, 2.0, (n, 2)) for n in sizes]
    rms = RunningMeanStd((2,), epsilon=1e-300)
    for p in parts:
        rms.update(T(p))
    allx = np.concatenate(parts)
    n_all, mean, var = allx.shape[0], allx.mean(0), allx.var(0)
    e_m, e_v = _chan_error_bounds(parts, 1e-300)
    b_mean = e_m + n_all * U64 * np.abs(allx).max(0) + 1e-300 * np.abs(mean) / n_all
    b_var = e_v + (n_all + 3) * U64 * var + 1e-300 * (1.0 + mean**2 + var) / n_all
    assert np.all(np.abs(N(rms.mean) - mean) <= b_mean), (N(rms.mean) - mean, b_mean)
    assert np.all(np.abs(N(rms.var) - var) <= b_var), (N(rms.var) - var, b_var)


def test_observation_normalizer_clips_both_sides() -> None:
    """clip((o - mean) / sqrt(var + eps), -clip, clip) on both sides, in the torch call and its numpy twin (the
    mutation audit's one-sided clip survived: a rollout rarely drives an observation 10 sigma below the mean)."""
    on = ObservationNormalizer((2,), clip=3.0)
    on.rms.update(np.array([[0.0, 0.0], [2.0, 2.0]]))  # mean 1 (up to the prior count), sd about 1
    x = np.array([[-100.0, 100.0], [1.0, 1.0]], dtype=np.float32)
    inside = ((x[1].astype(np.float64) - on.rms.mean_np) / np.sqrt(on.rms.var_np + on.epsilon)).astype(np.float32)
    assert np.all(np.abs(inside) < 3.0)  # the second row is not clipped
    for out in (on.normalize(T(x)).numpy(), on.normalize_np(x)):
        assert out[0].tolist() == [-3.0, 3.0]
        np.testing.assert_array_equal(out[1], inside)  # the same float64 formula, cast once


def test_observation_and_reward_normalizers_and_state_round_trip() -> None:
    rng = np.random.default_rng(0)
    on = ObservationNormalizer((3,), clip=5.0)
    for _ in range(50):
        on(T(rng.normal(4.0, 2.0, (8, 3)).astype(np.float32)))
    out = on.normalize(T(rng.normal(4.0, 2.0, (1000, 3)).astype(np.float32)))
    assert out.dtype == torch.float32 and abs(float(out.mean())) < 0.2 and abs(float(out.std()) - 1) < 0.1
    on2 = ObservationNormalizer((3,), clip=5.0)
    on2.load_state_dict(on.state_dict())
    x = T(rng.normal(size=(4, 3)).astype(np.float32))
    assert torch.equal(on.normalize(x), on2.normalize(x))
    # reward normaliser: naive re-implementation (baselines VecNormalize)
    # The naive variance E[h^2] - E[h]^2 against the normaliser's Chan updates, on the same returns (R <- 0.9 R + r
    # rounds identically on both sides). Both sides are within rounding of the exact pooled variance V: the Chan
    # side by _chan_error_bounds, the naive side by u ((N + 3) E[h^2] + (2 N + 3) |mean| E|h| + V) (N-term sums
    # of h^2 and h, the weight w = N + 1e-4 and two divisions, the square and the subtraction: here the data's
    # condition enters squared). The output r / sqrt(V + 1e-8) then differs by at most
    # |r| / sqrt(S) ((e_chan + e_naive) / (2 S) + 5 u), S = V + 1e-8 (add, sqrt and division on each side;
    # the clip is 1-Lipschitz).
    rn = RewardNormalizer(2, gamma=0.9, clip=10.0)
    ret = np.zeros(2)
    hist: list[float] = []
    batches_seen: list[np.ndarray] = []
    for _ in range(30):
        r = rng.normal(1.0, 1.0, 2)
        done = rng.random(2) < 0.2
        got = rn(T(r), T(done))
        ret = 0.9 * ret + r
        hist.extend(ret)
        batches_seen.append(ret.copy())
        h = np.asarray(hist)  # pooled with the initial pseudo-sample (mean 0, var 1, weight 1e-4)
        w = len(h) + 1e-4
        var = (1e-4 + np.sum(h * h)) / w - (np.sum(h) / w) ** 2
        _, e_chan = _chan_error_bounds(batches_seen, 1e-4)
        e_naive = U64 * ((len(h) + 3) * (1e-4 + np.sum(h * h)) / w
                         + (2 * len(h) + 3) * abs(np.sum(h) / w) * np.sum(np.abs(h)) / w + var)
        s_var = var + 1e-8
        bound = np.abs(r) / np.sqrt(s_var) * ((float(e_chan) + e_naive) / (2 * s_var) + 5 * U64)
        want = np.clip(r / np.sqrt(var + 1e-8), -10, 10)
        assert np.all(np.abs(N(got) - want) <= bound), (N(got) - want, bound)
        ret[done] = 0.0
    rn2 = RewardNormalizer(2, gamma=0.9)
    rn2.load_state_dict(rn.state_dict())
    assert torch.equal(rn2.returns, rn.returns) and rn2.rms.count == rn.rms.count
    with pytest.raises(ValueError, match="shape"):
        rn2.load_state_dict({**rn.state_dict(), "returns": torch.zeros(3, dtype=torch.float64)})


def test_numpy_twins_of_the_normalizers_match_the_tensor_api() -> None:
    rng = np.random.default_rng(1)
    a, b = ObservationNormalizer((3,)), ObservationNormalizer((3,))
    ra, rb = RewardNormalizer(2, gamma=0.9), RewardNormalizer(2, gamma=0.9)
    for _ in range(20):
        x = rng.normal(2.0, 3.0, (2, 3)).astype(np.float32)
        out_np = a.normalize_np(x, update=True)
        out_t = b(T(x))
        assert out_np.dtype == np.float32
        np.testing.assert_array_equal(out_np, N(out_t))
        r, done = rng.normal(size=2).astype(np.float32), rng.random(2) < 0.3
        # the same float64 update (_update) and one correctly rounded division and clip: bit for bit equal
        np.testing.assert_array_equal(ra.step_np(r, done), N(rb(T(r).double(), T(done))))
    assert torch.equal(a.rms.mean, b.rms.mean) and a.rms.count == b.rms.count
    assert torch.equal(ra.returns, rb.returns)


# --- found by the mutation audit of 2026-12-06 -------------------------------------------------------------
def test_open_choice_13_twin_termination_wins_over_truncation_and_needs_no_v_final() -> None:
    both = torch.tensor([[True], [False]])
    nv = adv.next_values_from_rollout(torch.tensor([[1.0], [2.0]], dtype=torch.float64),
                                      torch.tensor([3.0], dtype=torch.float64), both, both)
    assert nv.tolist() == [[0.0], [3.0]]


def test_TR_15_clipped_value_loss_does_not_differentiate_old_values() -> None:
    """The old values V_old of value clipping are data: no gradient reaches them."""
    v = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    v_old = torch.tensor([0.0, 0.0], dtype=torch.float64, requires_grad=True)
    loss = losses.value_loss(v, torch.tensor([3.0, -1.0], dtype=torch.float64), old_values=v_old, clip_eps=0.2)
    loss.backward()  # type: ignore[no-untyped-call]
    assert v_old.grad is None or bool(torch.all(v_old.grad == 0))
    assert v.grad is not None and bool(torch.any(v.grad != 0))


def test_PG_48_entropy_of_masked_actions_is_finite() -> None:
    """A -inf logit (a masked action) has p = 0 and contributes 0, not 0 * (-inf) = NaN."""
    h = dist.categorical_entropy(torch.tensor([[0.0, float("-inf")], [0.0, 0.0]], dtype=torch.float64))
    assert h[0].item() == 0.0
    assert abs(h[1].item() - float(np.log(2.0))) <= counted_tolerance(float(np.log(2.0)), roundings=6)
    # and its gradient: dH/dl_j = -p_j (log p_j + H) on the unmasked actions, 0 on the masked one (it was NaN in
    # every entry: the product was masked after 0 * (-inf) had been formed)
    lg = torch.tensor([[0.0, float("-inf"), 1.0]], dtype=torch.float64, requires_grad=True)
    hh = dist.categorical_entropy(lg)
    hh.sum().backward()  # type: ignore[no-untyped-call]
    p = torch.softmax(torch.tensor([0.0, 1.0], dtype=torch.float64), dim=0)
    want = -p * (torch.log(p) + hh.detach()[0])
    assert lg.grad is not None and lg.grad[0, 1].item() == 0.0
    assert torch.allclose(lg.grad[0, [0, 2]], want, rtol=0, atol=counted_tolerance(1.0, roundings=16))


def test_PG_50_gaussian_sample_is_reparameterised() -> None:
    """x = mu + e^{log_std} eps: dx/dmu = 1 and dx/dlog_std = e^{log_std} eps = x - mu (the same floats)."""
    mu = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    ls = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    x = dist.gaussian_sample(mu, ls, generator=torch.Generator().manual_seed(0))
    x.sum().backward()  # type: ignore[no-untyped-call]
    assert mu.grad is not None and mu.grad.tolist() == [1.0, 1.0, 1.0]
    assert ls.grad is not None and torch.equal(ls.grad, x.detach() - mu.detach())


def test_normalisers_refuse_non_finite_input_and_load_all_or_nothing() -> None:
    """One NaN / inf observation or reward made the running statistics NaN for the rest of the run (every later
    observation normalised to NaN, silently); a reward-normaliser state of another num_envs raised after its
    statistics had already been loaded (a half-loaded object)."""
    rms = RunningMeanStd((2,))
    for bad in (np.array([[np.nan, 1.0]]), np.array([[np.inf, 1.0]])):
        with pytest.raises(ValueError, match="non-finite"):
            rms.update(bad)
    assert rms.count == 1e-4 and np.all(np.isfinite(rms.var_np))  # the initial count, untouched
    rn = RewardNormalizer(2, gamma=0.99)
    with pytest.raises(ValueError, match="non-finite"):
        rn.step_np(np.array([np.nan, 1.0]), np.zeros(2, dtype=bool))
    other = RewardNormalizer(3, gamma=0.99)
    other.step_np(np.ones(3), np.zeros(3, dtype=bool))
    before = rn.state_dict()
    with pytest.raises(ValueError, match="returns"):
        rn.load_state_dict(other.state_dict())
    for k, v in rn.state_dict().items():
        assert (torch.equal(v, before[k]) if isinstance(v, torch.Tensor) else v == before[k]), k


def test_grpo_twin_refuses_a_fractional_mask_and_reads_integer_rewards() -> None:
    """valid = 0.5 was read as a real token (the reference refuses it); integer rewards crashed inside torch
    (frexp), boolean ones too: integers are read as float64 as the reference does, booleans refused."""
    from reference.surrogates import grpo_advantages as ref_grpo
    from scalable.core import grpo

    lp = torch.full((2, 2), -0.7, dtype=torch.float64)
    with pytest.raises(ValueError, match="boolean"):
        grpo.grpo_objective(lp, lp, torch.tensor([0.0, 1.0], dtype=torch.float64), torch.full((2, 2), 0.5),
                            group_size=2)
    ints = torch.tensor([[1, 0, 0, 1]])
    got = grpo.grpo_advantages(ints)
    want = ref_grpo(np.array([[1, 0, 0, 1]]))
    np.testing.assert_allclose(N(got), want, rtol=0, atol=tolerance(1.0, terms=8))
    with pytest.raises(ValueError, match="real numbers"):
        grpo.grpo_advantages(torch.tensor([[True, False]]))


def test_normalisers_clip_and_refuse_bad_parameters() -> None:
    """RewardNormalizer clips the scaled reward at +-clip on both of its paths (torch and numpy), and the
    normalisers refuse what they read silently before: dones of 0.5 (read as done), clip <= 0 or NaN
    (everything mapped to -clip, or NaN), a negative epsilon (NaN, or var < 0), and observations of the wrong
    shape on the non-updating path (a [5, 1] batch broadcast to [5, 3])."""
    rn = RewardNormalizer(2, gamma=0.9, clip=1.0)
    out = rn.step_np(np.array([1e6, -1e6]), np.array([False, False]))
    assert out.tolist() == [1.0, -1.0]
    t = rn.normalize(torch.tensor([1e9, -1e9], dtype=torch.float64))
    assert t.tolist() == [1.0, -1.0]
    out2 = rn(torch.tensor([1e9, -1e9], dtype=torch.float64), torch.tensor([0, 1]))
    assert out2.tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match="dones"):
        rn.step_np(np.array([1.0, 1.0]), np.array([0.5, 0.0]))
    with pytest.raises(ValueError, match="dones"):
        rn(torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.0]))
    for bad in (-1.0, 0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="clip"):
            RewardNormalizer(2, gamma=0.9, clip=bad)
        with pytest.raises(ValueError, match="clip"):
            ObservationNormalizer((3,), clip=bad)
    with pytest.raises(ValueError, match="epsilon"):
        RunningMeanStd((2,), epsilon=-1.0)
    with pytest.raises(ValueError, match="epsilon"):
        ObservationNormalizer((3,), epsilon=-1e-8)
    on = ObservationNormalizer((3,))
    with pytest.raises(ValueError, match="observations"):
        on.normalize(torch.zeros(5, 1))
    with pytest.raises(ValueError, match="observations"):
        on.normalize_np(np.zeros((5, 1)))


def test_distribution_twins_at_extreme_inputs_match_the_reference() -> None:
    """The torch twins where the reference was fixed for extreme inputs: the tanh-Gaussian log-density at
    |z| >= ~9e307 is -inf (both terms -inf: it was NaN), the Gaussian log-density with log_std = -90 in
    float32 is finite (exp(90) overflows float32: 0 * inf gave NaN for the exact 89.08) with a finite gradient,
    and the categorical entropy refuses NaN / +inf logits and an all -inf row (NaN before)."""
    f64 = torch.float64
    z = torch.tensor([9e307, -1e308, 3.0], dtype=f64)
    got = dist.tanh_gaussian_log_prob(z, torch.zeros(3, dtype=f64), torch.zeros(3, dtype=f64))
    want = ref_pol.tanh_gaussian_log_prob(z.numpy(), np.zeros(3), np.zeros(3))
    assert got[:2].tolist() == [-math.inf, -math.inf] and want[:2].tolist() == [-math.inf, -math.inf]
    assert abs(float(got[2]) - float(want[2])) <= counted_tolerance(abs(float(want[2])) + 10.0, roundings=12)
    ls = torch.tensor([-90.0], requires_grad=True)
    lp = dist.gaussian_log_prob(torch.tensor([0.0]), torch.tensor([0.0]), ls)
    assert abs(float(lp.detach()) - 89.08106146679532) <= 4 * U32 * 90.0
    lp.sum().backward()  # type: ignore[no-untyped-call]
    assert ls.grad is not None and float(ls.grad) == -1.0
    for bad in ([0.0, math.inf], [0.0, math.nan], [-math.inf, -math.inf]):
        with pytest.raises(ValueError, match="logits"):
            dist.categorical_entropy(torch.tensor(bad))
    assert float(dist.categorical_entropy(torch.tensor([0.0, -math.inf]))) == 0.0


def test_tanh_gaussian_head_entropy_sums_over_action_dimensions() -> None:
    """The entropy bonus of an n-dimensional head is the sum over dimensions of log_std + (1/2) log(2 pi e)
    (independent coordinates), not their mean (a mean passed every test)."""
    from scalable.nets.mlp import DiagGaussianHead, TanhGaussianHead

    log_std = torch.tensor([[-1.0, 0.5, 2.0]], dtype=torch.float64)
    mu = torch.zeros_like(log_std)
    want = float(log_std.sum()) + 3 * (0.5 * math.log(2 * math.pi) + 0.5)
    for head in (TanhGaussianHead, DiagGaussianHead):
        assert abs(float(head.entropy(mu, log_std)[0]) - want) <= 8 * U64 * 10.0


def test_twins_compute_in_the_promoted_dtype_of_mixed_inputs() -> None:
    """The module's rule (results in torch's promoted dtype) for mixed float32 / float64 inputs: every twin
    must equal, bit for bit, the same twin on the inputs cast to float64 first. td_k_advantages accumulated in
    the rewards' float32 (-8.910003662109375 for -8.91 with r = 1, V = 100, V' = 100.1, gamma = 0.9) and
    next_values_from_rollout cast a float64 last_value / v_final down to float32 values."""
    g = torch.Generator().manual_seed(0)
    t_, b_ = 6, 3
    r32 = torch.randn(t_, b_, generator=g)
    v64 = 100.0 + torch.randn(t_, b_, generator=g, dtype=torch.float64)
    nv64 = 100.0 + torch.randn(t_, b_, generator=g, dtype=torch.float64)
    term = torch.zeros(t_, b_, dtype=torch.bool)
    term[2, 0] = True
    trunc = torch.zeros(t_, b_, dtype=torch.bool)
    trunc[3, 1] = True
    r64 = r32.to(torch.float64)
    for k in (1, 3, None):
        got = adv.td_k_advantages(r32, v64, nv64, term, trunc, gamma=0.9, k=k)
        want = adv.td_k_advantages(r64, v64, nv64, term, trunc, gamma=0.9, k=k)
        assert got.dtype == torch.float64 and torch.equal(got, want)
    got = adv.gae(r32, v64, nv64, term, trunc, gamma=0.9, lam=0.95)
    assert got.dtype == torch.float64 and torch.equal(got, adv.gae(r64, v64, nv64, term, trunc, gamma=0.9, lam=0.95))
    v32 = v64.to(torch.float32)
    last, vf = nv64[-1], nv64
    got = adv.next_values_from_rollout(v32, last, term, trunc, vf)
    want = adv.next_values_from_rollout(v32.to(torch.float64), last, term, trunc, vf)
    assert got.dtype == torch.float64 and torch.equal(got, want)
    r1 = torch.ones(1, 1)
    one = adv.td_k_advantages(r1, torch.tensor([[100.0]], dtype=torch.float64),
                              torch.tensor([[100.1]], dtype=torch.float64), term[:1, :1], trunc[:1, :1], gamma=0.9, k=1)
    assert float(one) == (1.0 - 100.0) + 0.9 * 100.1


def test_TR_20_td_k_twin_bootstraps_at_step_k_and_masks_terminated_rows() -> None:
    """The ci profile's batches almost never had k below the steps left in an episode (3 of 100 examples, none
    where a row had k steps left) and always held next value 0 on terminated rows, so the twin without its step-k
    bootstrap, or bootstrapping a terminated row, passed (review 2026-12-07). Hand-computed: rewards [1, 2, 3, 4],
    V = 0, V(s_{t+1}) = [10, 20, 30, 40], gamma = 1/2, k = 2: A_t = r_t + r_{t+1} / 2 + V(s_{t+2}) / 4 ->
    [7, 11, 15, 24] (the last row bootstraps from its own next value); with row 1 terminated and a non-zero next
    value of 99 there (never read): [2, 2, 15, 24]. Exact in binary floating point. Then random batches with
    every k from 1 to T and non-zero next values on terminated rows, against the reference."""
    r = T(np.array([[1.0], [2.0], [3.0], [4.0]]))
    z = torch.zeros(4, 1, dtype=torch.float64)
    f = torch.zeros(4, 1, dtype=torch.bool)
    nv = T(np.array([[10.0], [20.0], [30.0], [40.0]]))
    assert adv.td_k_advantages(r, z, nv, f, f, gamma=0.5, k=2).flatten().tolist() == [7.0, 11.0, 15.0, 24.0]
    term = f.clone()
    term[1, 0] = True
    nv_t = nv.clone()
    nv_t[1, 0] = 99.0
    assert adv.td_k_advantages(r, z, nv_t, term, f, gamma=0.5, k=2).flatten().tolist() == [2.0, 2.0, 15.0, 24.0]
    rng = np.random.default_rng(11)
    for _ in range(20):
        t_, b_ = int(rng.integers(2, 9)), int(rng.integers(1, 4))
        rr, vv, nn = rng.normal(size=(3, t_, b_))
        te = rng.random((t_, b_)) < 0.15
        tr = (rng.random((t_, b_)) < 0.1) & ~te
        for k in [*range(1, t_ + 1), None]:
            want = ref_adv.td_k_advantages(rr, vv, nn, te, tr, gamma=0.9, k=k)
            got = adv.td_k_advantages(T(rr), T(vv), T(nn), T(te), T(tr), gamma=0.9, k=k)
            _close(got, want, tolerance(4.0 * t_, terms=2 * t_ + 2))


def test_next_values_keep_a_float64_last_value_with_float32_values() -> None:
    """The promoted dtype was guarded only with a float64 v_final, which promotes anyway: with float32 values and
    v_final and a float64 last_value, the last row must keep that float64 value exactly (float32 would round
    0.1 + 2^-40)."""
    v = torch.zeros(3, 2, dtype=torch.float32)
    f = torch.zeros(3, 2, dtype=torch.bool)
    last = torch.tensor([0.1 + 2.0**-40, -1.0], dtype=torch.float64)
    out = adv.next_values_from_rollout(v, last, f, f, torch.zeros(3, 2, dtype=torch.float32))
    assert out.dtype == torch.float64
    assert out[-1].tolist() == last.tolist()


@pytest.mark.parametrize("dtype,log_std", [(torch.float32, -90.0), (torch.float32, -180.0), (torch.float64, -800.0),
                                           (torch.float64, -1500.0)])
def test_gaussian_log_prob_far_below_the_usual_log_std_range(dtype: Any, log_std: float) -> None:
    """(a) The split branch (y h) h was tested only at y = 0, so y h alone (sigma missing once) passed: here y =
    x - mu = 2^-100 and the value must be the reference's (float64 oracle, rounded to dtype: relative error a few
    eps of the dtype on a value of size (y / sigma)^2 / 2). (b) At x = mu the twin returned NaN once h itself
    overflowed (float32 log_std <= -178, float64 <= -1420): the value is -log_std - log(2 pi) / 2 exactly as in
    the reference, and the gradients are finite (d/dx = 0, d/dlog_std = -1)."""
    eps = float(torch.finfo(dtype).eps)
    y = 2.0**-100
    ls = torch.tensor([log_std], dtype=dtype, requires_grad=True)
    x = torch.tensor([y], dtype=dtype, requires_grad=True)
    got = dist.gaussian_log_prob(x, torch.zeros(1, dtype=dtype), ls)
    import mpmath  # type: ignore[import-untyped]

    with mpmath.workdps(40):  # the closed form -log_std - (y / sigma)^2 / 2 - log(2 pi) / 2
        want = float(-mpmath.mpf(log_std) - (mpmath.mpf(y) * mpmath.exp(-mpmath.mpf(log_std))) ** 2 / 2
                     - mpmath.log(2 * mpmath.pi) / 2)
    if want > -float(torch.finfo(dtype).max):  # finite in this dtype: the split branch's value, to a few eps
        assert abs(float(got[0]) - want) <= 8 * eps * abs(want)
    else:  # (y / sigma)^2 overflows the dtype: the log-density is -inf
        assert float(got[0]) == -math.inf
    at_mu = torch.tensor([0.0], dtype=dtype, requires_grad=True)
    val = dist.gaussian_log_prob(at_mu, torch.zeros(1, dtype=dtype), ls)
    assert float(val[0]) == pytest.approx(-log_std - 0.5 * math.log(2 * math.pi), rel=4 * eps)
    val.sum().backward()  # type: ignore[no-untyped-call]
    assert at_mu.grad is not None and ls.grad is not None
    assert float(at_mu.grad[0]) == 0.0 and float(ls.grad[0]) == -1.0
