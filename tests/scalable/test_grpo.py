"""scalable.core.grpo: the torch GRPO pieces equal reference.surrogates / reference.grpo in float64.

Random batches: T in 1..6 tokens, G in 1..3 groups of N in 1..4 completions (B = G N, B = 1 included),
arbitrary ``valid`` masks (a completion of length 0 included), rewards from {0, 1} (so equal-reward
groups, TR-51, are frequent) or uniform, log-probs with |log ratio| <= 1. Tolerances from
reference.tolerance: the group advantages are bounded by (N - 1)/sqrt(N) < 2 in magnitude, a token's
term by e |A| + beta k3 with k3 <= e^2, and the objective sums T B of them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import reference.grpo as ref_grpo  # noqa: E402
import reference.surrogates as ref_sur  # noqa: E402
from reference.tolerance import tolerance  # noqa: E402
from scalable.core import grpo  # noqa: E402


def T(x: Any) -> Any:
    return torch.from_numpy(np.ascontiguousarray(x))


def N(x: Any) -> np.ndarray:
    return np.asarray(x.detach().numpy())


@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 6), st.booleans(), st.booleans())
def test_TR_49_TR_51_group_advantages_twin(seed: int, g: int, n: int, binary: bool, scale: bool) -> None:
    rng = np.random.default_rng(seed)
    r = rng.integers(0, 2, (g, n)).astype(np.float64) if binary else rng.uniform(-1, 1, (g, n))
    want = ref_sur.grpo_advantages(r, scale_by_std=scale)
    got = grpo.grpo_advantages(T(r), scale_by_std=scale)
    assert got.dtype == torch.float64 and got.shape == (g, n)
    np.testing.assert_allclose(N(got), want, rtol=0, atol=tolerance(2.0, terms=2 * n))
    flat = r.max(axis=1) == r.min(axis=1)
    assert np.all(N(got)[flat] == 0.0)  # exact zeros for equal-reward groups (TR-51)


@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.integers(-300, 307), st.booleans())
def test_TR_49_group_advantages_twin_at_every_reward_scale(seed: int, n: int, exponent: int, scale: bool) -> None:
    """Both scale each group by a power of two, so they agree from 1e-300 to 1e307 (before, the std's squares
    overflowed beyond 1e154 and the twin returned 0 where it should not); in float32 at 1e30 the twin equals the
    float64 reference to float32 rounding."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(-1, 1, (2, n)) * 10.0**exponent
    want = ref_sur.grpo_advantages(r, scale_by_std=scale)
    got = N(grpo.grpo_advantages(T(r), scale_by_std=scale))
    assert np.all(np.isfinite(got))
    # rounding scale: max|r| (the centring cancels when rewards are close), over std + eps_std when standardised
    # (max|r| / std computed as 1 / std(r / max|r|), which cannot overflow; eps_std only makes it smaller)
    rel = r / np.abs(r).max(axis=1, keepdims=True)
    spread = float(1.0 / rel.std(axis=1, ddof=1).min()) if scale else float(np.abs(r).max())
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(spread, terms=2 * n))
    if scale:
        r32 = (rng.uniform(-1, 1, (2, n)) * 1e30).astype(np.float32)
        want32 = ref_sur.grpo_advantages(r32.astype(np.float64))
        got32 = N(grpo.grpo_advantages(torch.from_numpy(r32)))
        # float32: eps32 per rounding, O(n) roundings of terms of size max|A|
        r64 = r32.astype(np.float64)
        spread32 = float(1.0 / (r64 / np.abs(r64).max(axis=1, keepdims=True)).std(axis=1, ddof=1).min())
        assert np.max(np.abs(got32 - want32)) <= 8 * 2 * n * float(np.finfo(np.float32).eps) * spread32


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 5, 33]))
def test_k3_twin_nonnegative(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    lr = rng.uniform(-2, 2, n)
    lr[: n // 3] = 0.0
    want = ref_sur.kl_k3(lr)
    got = N(grpo.kl_k3(T(lr)))
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(math.exp(2.0) + 2.0, terms=2))
    assert np.all(got >= 0.0) and np.all(got[lr == 0.0] == 0.0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_k3_twin_is_accurate_near_rho_1_and_so_is_its_gradient(dtype: Any) -> None:
    """x = log rho from 1e-30 to 10, both signs, against mpmath (60 digits): k3 = e^x - 1 - x and dk3/dx =
    e^x - 1. expm1(x) - x cancelled near 0 (float32: relative error 1e-4 at x = 1e-3, and its gradient too).
    Tolerance: a few roundings of the dtype relative to the value where the series is used (|x| < 0.1), and
    (2 + 2 / |x|) roundings above, where expm1(x) - x amplifies expm1's error by |expm1(x)| / k3 <= 1 + 2 / |x|."""
    import mpmath  # type: ignore[import-untyped]

    mags = 10.0 ** np.linspace(-30 if dtype == torch.float64 else -18, 1, 61)
    x64 = np.concatenate([mags, -mags])
    x = torch.tensor(x64, dtype=dtype, requires_grad=True)
    k = grpo.kl_k3(x)
    k.sum().backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None
    k = k.detach()
    eps = float(torch.finfo(dtype).eps)
    xs = x.detach().double().numpy()
    for i, xv in enumerate(xs):
        with mpmath.workdps(60):
            xm = mpmath.mpf(float(xv))
            want_v = float(mpmath.expm1(xm) - xm)
            want_g = float(mpmath.expm1(xm))
        amp = 4.0 if abs(xv) < 0.1 else 2.0 + 2.0 / abs(xv)
        assert abs(float(k[i]) - want_v) <= 8 * amp * eps * want_v + float(torch.finfo(dtype).tiny), (xv, float(k[i]))
        assert abs(float(x.grad[i]) - want_g) <= 8 * amp * eps * abs(want_g) + float(torch.finfo(dtype).tiny), xv


@st.composite
def grpo_batches(draw: st.DrawFn) -> dict[str, Any]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t, g, n = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    b = g * n
    old = rng.normal(-1.5, 0.5, (t, b))
    new = old + rng.uniform(-1, 1, (t, b))
    ref = new + rng.uniform(-1, 1, (t, b))
    valid = rng.random((t, b)) < draw(st.sampled_from([0.5, 0.9, 1.0]))
    rewards = rng.integers(0, 2, b).astype(np.float64) if draw(st.booleans()) else rng.uniform(-1, 1, b)
    mode = draw(st.sampled_from(["grpo", "dr_grpo", "no_baseline"]))
    return {"new": new, "old": old, "ref": ref, "valid": valid, "rewards": rewards, "group_size": n,
            "eps": draw(st.sampled_from([0.1, 0.2])), "beta": draw(st.sampled_from([0.0, 0.04])),
            "length_norm": draw(st.booleans()), "center": mode != "no_baseline", "scale_by_std": mode == "grpo"}


def _kwargs(bt: dict[str, Any]) -> dict[str, Any]:
    return {k: bt[k] for k in ("group_size", "eps", "beta", "length_norm", "center", "scale_by_std")}


@given(grpo_batches())
def test_TR_47_TR_49_grpo_objective_twin(bt: dict[str, Any]) -> None:
    """Value equal to reference.grpo.grpo_objective in float64 for GRPO, Dr. GRPO and PPO without a
    baseline, with and without the k3 penalty and the 1/|o_i| length normalisation."""
    want = ref_grpo.grpo_objective(bt["new"], bt["old"], bt["rewards"], bt["valid"],
                                   log_prob_ref=bt["ref"], **_kwargs(bt))
    got = grpo.grpo_objective(T(bt["new"]), T(bt["old"]), T(bt["rewards"]), T(bt["valid"]),
                              log_prob_ref=T(bt["ref"]), **_kwargs(bt))
    t, b = bt["new"].shape
    scale = math.e * 2.0 + bt["beta"] * math.exp(2.0) + 2.0
    assert abs(float(got) - want) <= tolerance(scale, terms=t * b + 4)
    loss = grpo.grpo_loss(T(bt["new"]), T(bt["old"]), T(bt["rewards"]), T(bt["valid"]),
                          log_prob_ref=T(bt["ref"]), **_kwargs(bt))
    assert float(loss) == -float(got)


@given(grpo_batches())
def test_TR_49_gradient_at_ratio_one_is_the_advantage(bt: dict[str, Any]) -> None:
    """At pi_new = pi_old (ratio 1, clip inactive) and pi_ref = pi_new (k3 has zero slope), autograd of the
    objective in log pi_new(t, i) is valid(t, i) A^(i) w_i / B (the policy-gradient estimator); the
    old and reference log-probs and the rewards receive no gradient (stop-gradients)."""
    lp = T(bt["old"].copy()).requires_grad_(True)
    old = T(bt["old"].copy()).requires_grad_(True)
    ref = T(bt["old"].copy()).requires_grad_(True)
    rew = T(bt["rewards"]).requires_grad_(True)
    obj = grpo.grpo_objective(lp, old, rew, T(bt["valid"]), log_prob_ref=ref, **_kwargs(bt))
    obj.backward()  # type: ignore[no-untyped-call]
    b = bt["old"].shape[1]
    n = bt["group_size"]
    if bt["center"]:
        adv = ref_sur.grpo_advantages(bt["rewards"].reshape(b // n, n), scale_by_std=bt["scale_by_std"]).reshape(b)
    else:
        adv = bt["rewards"]
    w = 1.0 / np.maximum(bt["valid"].sum(axis=0), 1) if bt["length_norm"] else np.ones(b)
    want = np.where(bt["valid"], adv[None, :] * w[None, :] / b, 0.0)
    np.testing.assert_allclose(N(lp.grad), want, rtol=0, atol=tolerance(2.0, terms=4))
    assert old.grad is None and ref.grad is None and rew.grad is None


def test_grpo_bad_inputs_get_clear_errors() -> None:
    z = torch.zeros(3, 4, dtype=torch.float64)
    v = torch.ones(3, 4, dtype=torch.bool)
    r = torch.zeros(4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\[T, B\]"):
        grpo.grpo_objective(z, z[:, :3], r, v, group_size=2)
    with pytest.raises(ValueError, match="divide"):
        grpo.grpo_objective(z, z, r, v, group_size=3)
    with pytest.raises(ValueError, match="beta"):
        grpo.grpo_objective(z, z, r, v, group_size=2, beta=-0.1)
    with pytest.raises(ValueError, match="beta"):
        grpo.grpo_objective(z, z, r, v, group_size=2, beta=float("nan"), log_prob_ref=z)
    with pytest.raises(ValueError, match="log_prob_ref"):
        grpo.grpo_objective(z, z, r, v, group_size=2, beta=0.1)
    with pytest.raises(ValueError, match="center"):
        grpo.grpo_objective(z, z, r, v, group_size=2, center=False, scale_by_std=True)
    with pytest.raises(ValueError, match="finite"):
        grpo.grpo_advantages(torch.tensor([[0.0, float("nan")]], dtype=torch.float64))
    with pytest.raises(ValueError, match="eps_std"):
        grpo.grpo_advantages(r.reshape(2, 2), eps_std=0.0)


def test_TR_51_equal_reward_groups_give_exact_zeros_where_the_mean_rounds() -> None:
    """(0.1 + 0.1 + 0.1) / 3 = 0.10000000000000002: r - mean is not 0 in floating point, yet an equal-reward group
    carries no signal and its advantages are exactly 0 (found by the mutation audit of 2026-12-06: the twin's
    tests used rewards whose mean is exact)."""
    r = torch.tensor([[0.1, 0.1, 0.1], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert bool(torch.any(r[0] - r[0].mean() != 0.0))  # the mean rounds: r - mean is not exactly 0
    for scale in (True, False):
        adv = grpo.grpo_advantages(r, scale_by_std=scale)
        assert adv[0].tolist() == [0.0, 0.0, 0.0]
        assert bool(torch.all(adv[1] != 0.0))


def test_TR_49_grpo_objective_twin_refuses_an_empty_batch() -> None:
    """B = 0 returned NaN (the mean of nothing); the reference raises ShapeError, the twin ValueError."""
    z = torch.zeros((3, 0), dtype=torch.float64)
    with pytest.raises(ValueError, match="empty"):
        grpo.grpo_objective(z, z, torch.zeros(0, dtype=torch.float64), torch.ones((3, 0), dtype=torch.bool),
                            group_size=1)


@given(st.integers(0, 2**32 - 1), st.integers(2, 16), st.sampled_from([1.0, 3.0, 1e6, 1e-6]))
def test_TR_49_group_advantages_twin_on_groups_a_few_ulps_apart(seed: int, n: int, base: float) -> None:
    """Rewards a few ulps apart (r = base (1 + k 2^-52), k small integers): the rounded mean's error is of the
    size of the deviations, so a one-pass centring is wrong by 100 % once divided by std + eps_std. The twin had
    one pass after the reference got the corrected two-pass centring ([1, 1 + 2^-52] gave [0, 2.2e-12] for the
    exact [-1.1e-12, 1.1e-12]; in float32 [1, 1 + 2^-23] gave [0, 1.2e-3]). Now both agree to rounding of the
    advantages themselves (a few eps |A| from the centred deviations), and the advantages sum to 0."""
    rng = np.random.default_rng(seed)
    r = base * (1.0 + rng.integers(-3, 4, (2, n)) * 2.0**-52)
    want = ref_sur.grpo_advantages(r)
    got = N(grpo.grpo_advantages(T(r)))
    scale = float(np.abs(want).max()) + np.finfo(np.float64).tiny
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(scale, terms=4 * n))
    assert np.all(np.abs(got.sum(axis=1)) <= tolerance(scale, terms=4 * n))
    r32 = torch.tensor([1.0, 1.0 + 2.0**-23], dtype=torch.float32)
    a32 = grpo.grpo_advantages(r32)
    assert float(a32[0]) < 0.0 < float(a32[1]) and abs(float(a32.sum())) <= 4 * float(a32[1]) * 2.0**-23


@given(grpo_batches())
def test_TR_49_gradient_away_from_ratio_one_is_the_closed_form(bt: dict[str, Any]) -> None:
    """Autograd of the objective in log pi_new(t, i), with ratios in e^[-1, 1] (the clip active on some tokens)
    and pi_ref != pi_new: valid w_i / B [1{unclipped} rho A^(i) + beta (e^{log pi_ref - log pi_new} - 1)], where
    the unclipped branch of min(rho A, clip(rho) A) is the active one for A > 0 iff rho < 1 + eps and for A < 0
    iff rho > 1 - eps (random ratios: no ties). The test at ratio 1 cannot see the KL penalty's gradient (k3's
    slope is 0 there) or a ratio whose gradient is forced to 1; both passed every test before (review
    2026-12-07). Tolerance: each entry is a few roundings of terms bounded by e |A| + beta e^2 (|A| < 2)."""
    b = bt["old"].shape[1]
    n = bt["group_size"]
    lp = T(bt["new"].copy()).requires_grad_(True)
    obj = grpo.grpo_objective(lp, T(bt["old"]), T(bt["rewards"]), T(bt["valid"]), log_prob_ref=T(bt["ref"]),
                              **_kwargs(bt))
    obj.backward()  # type: ignore[no-untyped-call]
    if bt["center"]:
        adv = ref_sur.grpo_advantages(bt["rewards"].reshape(b // n, n), scale_by_std=bt["scale_by_std"]).reshape(b)
    else:
        adv = bt["rewards"]
    rho = np.exp(bt["new"] - bt["old"])
    eps = bt["eps"]
    active = np.where(adv[None, :] > 0, rho < 1 + eps, np.where(adv[None, :] < 0, rho > 1 - eps, True))
    per_tok = np.where(active, rho * adv[None, :], 0.0) + bt["beta"] * np.expm1(bt["ref"] - bt["new"])
    w = 1.0 / np.maximum(bt["valid"].sum(axis=0), 1) if bt["length_norm"] else np.ones(b)
    want = np.where(bt["valid"], per_tok * w[None, :] / b, 0.0)
    np.testing.assert_allclose(N(lp.grad), want, rtol=0, atol=tolerance(math.e * 2.0 + bt["beta"] * math.e**2, terms=8))


@pytest.mark.parametrize("dtype,rewards,group", [
    (torch.bfloat16, [1.0, 1.001, 0.5, 0.501], 2),
    (torch.bfloat16, [3.10, 3.11, 3.12, 3.13], 4),
    (torch.float32, [1e8, 1e8 + 1, 3.0, 4.0], 2),
    (torch.float16, [7e4, 7e4 + 1.0, 0.0, 1.0], 2)])
def test_TR_49_group_advantages_do_not_take_the_log_probs_precision(dtype: Any, rewards: list[float],
                                                                    group: int) -> None:
    """The objective's advantages were computed from the rewards cast to the log-probs' dtype: in bfloat16
    rewards [1, 1.001] rounded together and the group got A = 0 (no update), in float32 1e8 and 1e8 + 1 did, and
    float16 refused rewards above 65504 (review 2026-12-07). At ratio 1 (one token, pi_new = pi_old) the gradient
    in log pi_new is A^(i) / B, so 4 x grad must be the reference's float64 advantages rounded once to ``dtype``
    (exact: the clip's min passes A through unchanged, and the division by B = 4 is exact)."""
    r = np.array(rewards)
    lp = torch.zeros(1, 4, dtype=dtype, requires_grad=True)
    obj = grpo.grpo_objective(lp, lp.detach(), T(r), torch.ones(1, 4, dtype=torch.bool), group_size=group)
    obj.backward()  # type: ignore[no-untyped-call]
    want = torch.from_numpy(ref_sur.grpo_advantages(r.reshape(-1, group)).reshape(1, 4)).to(dtype)
    assert lp.grad is not None
    assert torch.equal(4 * lp.grad, want), (lp.grad, want)
    assert bool((want != 0).all())


def test_grpo_objective_twin_refuses_what_the_reference_refuses() -> None:
    """NaN log-probs, an overflowing ratio, a non-finite reference log-prob and NaN rewards without centring gave
    NaN or -inf from the twin, where the reference raises; pi_new = 0 on a valid step with beta > 0 is -inf in
    both (k3 = +inf; the twin's k3(+inf) was NaN). The objective overflowing float64 is refused by both."""
    b = 4
    r = np.array([1.0, 0.0, 1.0, 0.0])

    def both(ln: np.ndarray, lo: np.ndarray, lr: np.ndarray, rr: np.ndarray,
             kw: dict[str, Any]) -> tuple[object, object]:
        va = np.ones(ln.shape, dtype=bool)
        out: list[object] = []
        try:
            out.append(ref_grpo.grpo_objective(ln, lo, rr, va, group_size=2, log_prob_ref=lr, **kw))
        except ValueError:
            out.append("raised")
        try:
            out.append(float(grpo.grpo_objective(T(ln), T(lo), T(rr), T(va), group_size=2, log_prob_ref=T(lr), **kw)))
        except ValueError:
            out.append("raised")
        return out[0], out[1]

    z = np.zeros((2, b))
    hole = z.copy()
    hole[0, 0] = np.nan
    big = z.copy()
    big[0, 1] = 800.0
    neg = z.copy()
    neg[0, 0] = -np.inf
    z3 = np.zeros((3, b))
    cases: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]] = [
        ("NaN new", hole, z, z, r, {}), ("NaN old", z, hole, z, r, {}), ("ratio overflows", big, z, z, r, {}),
        ("old -inf", z, neg, z, r, {}), ("ref -inf", z, z, neg, r, {"beta": 0.1}),
        ("NaN reward, no baseline", z, z, z, np.array([np.nan, 0, 1, 0]), {"center": False, "scale_by_std": False}),
        ("overflow", z3, z3, z3, np.array([1.7e308, -1e308, 1, 0]), {"scale_by_std": False})]
    for name, ln, lo, lr, rr, kw in cases:
        assert both(ln, lo, lr, rr, kw) == ("raised", "raised"), name
    assert both(neg, z, z, r, {"beta": 0.1}) == (-math.inf, -math.inf)
    assert float(grpo.kl_k3(torch.tensor([math.inf], dtype=torch.float64))[0]) == math.inf


def test_grpo_twin_scalar_arguments_must_be_what_they_say() -> None:
    """group_size=True ran as groups of one (every advantage 0), eps_std=True or "0.5" were read through float(),
    beta=True as 1, center="no" as True (review 2026-12-07): refused, as the reference refuses them."""
    z = torch.zeros(1, 4, dtype=torch.float64)
    v = torch.ones(1, 4, dtype=torch.bool)
    r = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    for kw in ({"group_size": True}, {"group_size": 2, "eps_std": True}, {"group_size": 2, "eps_std": "0.5"},
               {"group_size": 2, "beta": True}, {"group_size": 2, "center": "no"},
               {"group_size": 2, "length_norm": 1}):
        with pytest.raises(ValueError):
            grpo.grpo_objective(z, z, r, v, **kw)
        with pytest.raises(ValueError):
            ref_grpo.grpo_objective(z.numpy(), z.numpy(), r.numpy(), v.numpy(), **kw)
    with pytest.raises(ValueError, match="real numbers"):
        grpo.grpo_objective(z, z, torch.tensor([True, False, True, False]), v, group_size=2)
    for bad in (np.array(["1", "0", "1", "0"]), np.array([True, False, True, False])):
        with pytest.raises(ValueError, match="rewards"):
            ref_grpo.grpo_objective(z.numpy(), z.numpy(), bad, v.numpy(), group_size=2)


def test_TR_49_subnormal_rewards_get_their_exact_advantages() -> None:
    """eps_std 2^-k overflowed for a subnormal group maximum and every advantage came out 0: [3e-320, 1e-320, 0]
    gave [0, 0, 0] for [1.67e-316, -3.33e-317, -1.33e-316]. Oracle: mpmath at 50 digits, rounded once (the results
    are subnormal: compared to within 2 subnormal ulps, 1e-323)."""
    import mpmath

    r = np.array([3e-320, 1e-320, 0.0])
    with mpmath.workdps(50):
        rr = [mpmath.mpf(float(x)) for x in r]
        m = sum(rr) / 3
        sd = mpmath.sqrt(sum((x - m) ** 2 for x in rr) / 2)
        want = np.array([float((x - m) / (sd + mpmath.mpf(ref_sur.GRPO_EPS_STD))) for x in rr])
    for got in (ref_sur.grpo_advantages(r), N(grpo.grpo_advantages(T(r)))):
        assert np.all(np.abs(got - want) <= 1e-323), got
        assert np.all(got != 0.0)
