"""scalable.nets: the text's Atari network shapes (PG-46, E-49), heads consistent with core.distributions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

torch = pytest.importorskip("torch")

import reference.policies as ref_pol  # noqa: E402
from reference.atari_shapes import atari_a3c_layer_shapes, atari_a3c_parameter_count  # noqa: E402
from reference.tolerance import EPS32, U32, U64, counted_tolerance  # noqa: E402
from scalable.core.distributions import (  # noqa: E402
    LOG_STD_MAX,
    LOG_STD_MIN,
    categorical_log_prob,
    gaussian_log_prob,
)
from scalable.nets.atari import AtariActorCritic, NatureCNN, TextAtariNet  # noqa: E402
from scalable.nets.init import layer_init  # noqa: E402
from scalable.nets.mlp import MLPActorCritic, TanhGaussianHead, mlp  # noqa: E402

ULP2 = 4  # elementary functions (exp, log, tanh, logaddexp) taken as accurate to 2 ulp: 4 u relative


def _obs(b: int, seed: int = 0) -> Any:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 4, 84, 84), generator=g, dtype=torch.uint8)


def _entropy_rounding_bound(logits: Any) -> Any:
    """Forward-error bound for H = -sum_a p_a lp_a computed in float32 from float32 logits (A of them) by
    log_softmax: a = l - max l (|a| <= D), exp(a), an A-term sum s, log s in [0, log A], lp = a - log s
    (|lp| <= D + log A), p = exp(lp), p lp and an A-term sum. Counting each rounding (u, or 4 u for exp and
    log), |lp_hat - lp| <= u (3 D + A + 3 + 5 log A) =: E and |H_hat - H| <= (1 + H) E + (A + 4) u H, with
    H >= 0 the exact entropy; the float64 reference's own error is the same with u = 2^-53 (added)."""
    lg = logits.double()
    n_a = lg.shape[-1]
    spread = (lg.max(dim=-1).values - lg.min(dim=-1).values).numpy()
    ent = ref_pol.categorical_entropy(lg.numpy())
    per_u = (1.0 + ent) * (3.0 * spread + n_a + 3 + 5.0 * math.log(n_a)) + (n_a + 4) * ent
    return (U32 + U64) * per_u


def _orthogonal_gram_bound(layer: Any, gain: float) -> float:
    """|W W^T - gain^2 I| for W = gain Q from float32 Householder QR (torch's orthogonal_, on the m x n
    matrix with m = max(rows, fan-in), n = min): the loss of orthogonality |Q^T Q - I| <= 2 gamma_{mn}
    (Higham 2002, Thm 19.4, its constant c taken as 1), the gain's rounding (2 per product), and the
    float32 fan-in-term dot products of W W^T: gamma_{2mn + fan_in + 2}(u_32) gain^2."""
    rows, fan_in = layer.weight.shape[0], layer.weight[0].numel()
    m, n = max(rows, fan_in), min(rows, fan_in)
    return counted_tolerance(gain**2, roundings=2 * m * n + fan_in + 2, eps=EPS32)


def _tanh_gaussian_twin_bound(z: NDArray[np.float64], mu: NDArray[np.float64],
                              log_std: NDArray[np.float64]) -> NDArray[np.float64]:
    """|torch - numpy| for the float64 tanh-Gaussian log-prob summed over the n action dimensions, the two twins
    evaluating the same formula with the same Python-float constants. Per dimension, with w = (z - mu) e^{-tau},
    S = |tau| + w^2 / 2 + log sqrt(2 pi) + 2 (log 2 + |z| + softplus(-2 z)) bounds every intermediate; counting
    roundings (u = 2^-53, 4 u for exp and logaddexp, 2 ulp): z - mu (1), exp (4) and the product (1) give w to
    6 u and w^2 to 13 u; the Gaussian part's two subtractions (2); log(1 - tanh^2 z) = 2 (log 2 - z - sp): sp
    (4) and two subtractions (2), doubled against 2 (...) <= S: 6; the final subtraction (1): 22 u S. The sum
    over n adds n - 1 roundings of sum S. One side is within gamma_{n + 21} sum S, the difference twice that."""
    w = (z - mu) * np.exp(-log_std)
    sp = np.logaddexp(0.0, -2.0 * z)
    mags = np.abs(log_std) + 0.5 * w**2 + 0.5 * math.log(2 * math.pi) + 2.0 * (math.log(2.0) + np.abs(z) + sp)
    n_a = z.shape[-1]
    return np.asarray(counted_tolerance(1.0, roundings=2 * (n_a + 21)) * mags.sum(-1), dtype=np.float64)


@pytest.mark.parametrize("n_actions", [4, 18])
def test_PG_46_E_49_text_atari_net_shapes_and_parameter_count(n_actions: int) -> None:
    ref = {layer.name: layer for layer in atari_a3c_layer_shapes(n_actions)}
    net = AtariActorCritic(n_actions)
    x = _obs(2)
    with torch.no_grad():
        h1 = torch.relu(net.trunk.conv1(x.float() / 255))
        h2 = torch.relu(net.trunk.conv2(h1))
        logits, value = net(x)
    assert tuple(h1.shape[1:]) == ref["conv1"].shape == (16, 20, 20)
    assert tuple(h2.shape[1:]) == ref["conv2"].shape == (32, 9, 9)
    assert net.trunk.out_features == ref["fc"].shape[0] == 256
    assert logits.shape == (2, n_actions) and value.shape == (2,)
    assert sum(p.numel() for p in net.parameters()) == atari_a3c_parameter_count(n_actions)


def test_E_49_text_typo_and_nature_cnn_option() -> None:
    typo = TextAtariNet(conv2_channels=23)
    assert typo.conv2.out_channels == 23
    nature = AtariActorCritic(6, arch="nature")
    assert isinstance(nature.trunk, NatureCNN) and nature.trunk.out_features == 512
    with torch.no_grad():
        logits, value = nature(_obs(3))
    assert logits.shape == (3, 6) and value.shape == (3,)
    with pytest.raises(ValueError, match="arch"):
        AtariActorCritic(6, arch="resnet")  # type: ignore[arg-type]


def test_PG_48_atari_act_evaluate_consistent_with_categorical_log_prob() -> None:
    torch.manual_seed(0)
    net = AtariActorCritic(6)
    x = _obs(5)
    with torch.no_grad():
        step = net.act(x, generator=torch.Generator().manual_seed(3))
        logits, v = net(x)
        ev = net.evaluate(x, step.raw_action)
    assert step.action.dtype == torch.int64 and step.action.shape == (5,)
    assert torch.equal(step.action, step.raw_action)
    # act, evaluate and the direct calls run the same float32 operations on the same input (the net's forward,
    # then categorical_log_prob on its logits): bit for bit equal, no tolerance
    assert torch.equal(step.log_prob, categorical_log_prob(logits, step.action))
    assert torch.equal(ev.log_prob, step.log_prob) and torch.equal(ev.value, v)
    ent_err = np.abs(ev.entropy.double().numpy() - ref_pol.categorical_entropy(logits.double().numpy()))
    assert np.all(ent_err <= _entropy_rounding_bound(logits)), ent_err
    greedy = net.act(x, deterministic=True).action
    assert torch.equal(greedy, logits.argmax(-1))


def test_orthogonal_init_is_a_named_switch() -> None:
    torch.manual_seed(0)
    lin = layer_init(torch.nn.Linear(8, 4), gain=2.0)
    w = lin.weight.detach()
    assert torch.allclose(w @ w.T, 4.0 * torch.eye(4), rtol=0, atol=_orthogonal_gram_bound(lin, 2.0))
    assert torch.all(lin.bias == 0)
    torch.manual_seed(0)
    default = layer_init(torch.nn.Linear(8, 4), orthogonal=False)
    torch.manual_seed(0)
    assert torch.equal(default.weight, torch.nn.Linear(8, 4).weight)  # untouched PyTorch default
    a = AtariActorCritic(4, orthogonal_init=True)
    pw = a.policy.weight.detach()
    head_bound = _orthogonal_gram_bound(a.policy, 0.01)  # policy gain 0.01
    assert torch.allclose(pw @ pw.T, 1e-4 * torch.eye(4), rtol=0, atol=head_bound)
    b = AtariActorCritic(4, orthogonal_init=False)
    assert not torch.allclose(b.policy.weight @ b.policy.weight.T, 1e-4 * torch.eye(4), rtol=0, atol=head_bound)


def test_PG_50_PG_51_tanh_gaussian_mlp_log_prob_from_stored_z() -> None:
    torch.manual_seed(0)
    net = MLPActorCritic(11, 3).double()
    obs = torch.randn(7, 11, dtype=torch.float64)
    with torch.no_grad():
        step = net.act(obs, generator=torch.Generator().manual_seed(1))
        mu, log_std = net.dist_params(obs)
        ev = net.evaluate(obs, step.raw_action)
    z = step.raw_action
    assert step.action.shape == z.shape == (7, 3) and torch.equal(step.action, torch.tanh(z))
    assert torch.all(log_std >= -5.0) and torch.all(log_std <= 2.0)
    want = ref_pol.tanh_gaussian_log_prob(z.numpy(), mu.numpy(), log_std.numpy()).sum(-1)
    bound = _tanh_gaussian_twin_bound(z.numpy(), mu.numpy(), log_std.numpy())
    assert np.all(np.abs(step.log_prob.numpy() - want) <= bound), (step.log_prob.numpy() - want, bound)
    assert torch.equal(ev.log_prob, step.log_prob) and ev.value.shape == (7,)
    # the log-std is state-dependent (PG-50): it changes with the observation once the head is not ~0
    assert isinstance(net.head, TanhGaussianHead)
    with torch.no_grad():
        net.head.linear.weight.normal_()
        _, ls2 = net.dist_params(obs)
    assert not torch.allclose(ls2[0], ls2[1])
    # saturated z: the log-prob stays finite (open choice 15)
    big = torch.full((7, 3), 30.0, dtype=torch.float64)
    assert torch.all(torch.isfinite(net.evaluate(obs, big).log_prob))


def test_diag_gaussian_head_state_independent_log_std() -> None:
    torch.manual_seed(0)
    net = MLPActorCritic(5, 2, head="diag_gaussian", log_std_init=-0.5)
    obs = torch.randn(4, 5)
    with torch.no_grad():
        step = net.act(obs)
        mu, log_std = net.dist_params(obs)
    assert torch.equal(step.action, step.raw_action)
    assert torch.all(log_std == -0.5)
    # act's log-prob is gaussian_log_prob(raw, mu, log_std).sum(-1) on the same dist_params: bit for bit equal
    assert torch.equal(step.log_prob, gaussian_log_prob(step.action, mu, log_std).sum(-1))
    names = {n for n, _ in net.named_parameters()}
    assert "head.log_std" in names
    trunk = mlp(5, None)
    assert trunk(obs).shape == (4, 64)


def test_seeded_construction_and_sampling_are_deterministic() -> None:
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        net = MLPActorCritic(4, 2)
        with torch.no_grad():
            outs.append(net.act(torch.ones(3, 4)).action)
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize(("head", "clamped"), [("tanh_gaussian", False), ("tanh_gaussian", True),
                                               ("diag_gaussian", False)])
@pytest.mark.parametrize("activation", [torch.nn.Tanh, torch.nn.ReLU])
def test_numpy_policy_matches_the_torch_network(head: Any, clamped: bool, activation: Any) -> None:
    """The rollout's numpy snapshot samples a = mu + sigma eps as the torch head does and reports the
    log-prob and value that ``evaluate`` recomputes, within float32 rounding: each side is within the
    forward-error bound of :func:`_numpy_policy_bounds` of the float64 network, so they differ by at most
    twice that. ``clamped``: the tanh head's raw log-std is pushed beyond [-5, 2] in two dimensions, so the
    snapshot must clamp as the torch head does (without that case a snapshot with no clamp, or another
    bound, passed: the raw log-std stayed within [-1.4, 0.9])."""
    torch.manual_seed(0)
    net = MLPActorCritic(5, 3, hidden=(16, 8), activation=activation, head=head)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
        if clamped:
            assert isinstance(net.head, TanhGaussianHead)
            net.head.linear.bias[3:] += torch.tensor([8.0, -12.0, 0.0])
    if clamped:
        with torch.no_grad():
            _, ls = net.dist_params(torch.zeros(1, 5))
        assert float(ls[0, 0]) == 2.0 and float(ls[0, 1]) == -5.0
    snap = net.numpy_policy()
    assert snap is not None
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    eps = rng.normal(size=(4, 3)).astype(np.float32)
    a, raw, lp, v = snap.act(x, eps)
    assert a.dtype == raw.dtype == lp.dtype == v.dtype == np.float32
    with torch.no_grad():
        mu, log_std = net.dist_params(torch.from_numpy(x))
        z = mu + log_std.exp() * torch.from_numpy(eps)
        ev = net.evaluate(torch.from_numpy(x), torch.from_numpy(raw))
    b_z, b_a, b_lp, b_v = _numpy_policy_bounds(net, snap, x, eps, raw)
    assert np.all(np.abs(raw - z.numpy()) <= b_z)
    assert np.all(np.abs(a - (np.tanh(z.numpy()) if head == "tanh_gaussian" else z.numpy())) <= b_a)
    assert np.all(np.abs(lp - ev.log_prob.numpy()) <= b_lp)
    assert np.all(np.abs(v - ev.value.numpy()) <= b_v)
    np.testing.assert_array_equal(snap.value(x), v)


def _running_error(modules: list[Any], x: Any) -> tuple[Any, Any]:
    """The exact (float64) output of a Linear / Tanh / ReLU stack and a first-order bound on the error of any
    float32 evaluation of it, by running error analysis (Higham 2002, sec. 3.3): a Linear layer with fan-in
    f maps an input error e to |W| e and adds gamma_{f+1}(u_32) (|W| |h| + |b|) (f products and sums, the
    bias add), with h the exact input; tanh and ReLU are 1-Lipschitz and tanh adds its own 2 ulp (4 u |h|).
    Zero weights add exact zeros, so a fused block-diagonal evaluation (the numpy snapshot) has the same
    bound."""
    h = x
    err = torch.zeros_like(x)
    with torch.no_grad():
        for m in modules:
            if isinstance(m, torch.nn.Linear):
                w, b = m.weight.double(), m.bias.double()
                local = torch.nn.functional.linear(h.abs(), w.abs(), b.abs())
                err = err @ w.abs().T + counted_tolerance(1.0, roundings=w.shape[1] + 1, eps=EPS32) * local
                h = torch.nn.functional.linear(h, w, b)
            elif isinstance(m, torch.nn.Tanh):
                h = torch.tanh(h)
                err = err + ULP2 * U32 * h.abs()
            else:
                assert isinstance(m, torch.nn.ReLU), m
                h = torch.relu(h)
    return h, err


def _numpy_policy_bounds(net: Any, snap: Any, x: NDArray[np.float32], eps: NDArray[np.float32],
                         raw: NDArray[np.float32]) -> tuple[Any, Any, Any, Any]:
    """Bounds on |numpy - torch| for (z, a, log-prob, value): twice one side's forward error against the
    float64 network, to first order, with u = 2^-24 and 4 u per elementary function (``ULP2``).

    Trunk (either implementation): :func:`_running_error` of the actor (with its head layer) and the critic.
    Head: sigma = exp(tau) and z = mu + sigma eps give e_z = e_mu + |sigma eps| (e_tau + 5 u) + u |z|; tanh
    adds 4 u |a| per side; the log-prob at the same stored z, with w = (z - mu) / sigma, has per dimension
    e_tau + |w| e_w + u w^2 (+ 2 u (6 |softplus(-2z)| + 2 log 2 + 2 |z|) for log(1 - tanh^2 z)), where
    e_w = (e_mu + u (|z| + |mu|)) / sigma + |w| (e_tau + 5 u), plus gamma_{n_a + 4} times the summed
    magnitudes (-tau, w^2 / 2, log sqrt(2 pi), |log(1 - tanh^2 z)|; the constant is rounded to float32)."""
    x64 = torch.from_numpy(x).double()
    head = net.head.linear if isinstance(net.head, TanhGaussianHead) else net.head.mean
    out, e_out = _running_error([*net.actor_trunk, head], x64)
    _, e_value = _running_error(list(net.critic), x64)
    n_a = net.act_dim
    tanh_head = isinstance(net.head, TanhGaussianHead)
    mu, e_mu = out[:, :n_a].numpy(), e_out[:, :n_a].numpy()
    if tanh_head:  # tau = clamp(out[:, n_a:]): 1-Lipschitz
        tau, e_tau = out[:, n_a:].clamp(LOG_STD_MIN, LOG_STD_MAX).numpy(), e_out[:, n_a:].numpy()
    else:  # a float32 parameter, the same in both
        tau = net.head.log_std.detach().double().expand_as(out).numpy()
        e_tau = np.zeros_like(mu)
    sigma = np.exp(tau)
    z = raw.astype(np.float64)
    e_z = e_mu + np.abs(sigma * eps) * (e_tau + 5 * U32) + U32 * np.abs(z)
    b_a = 2 * e_z + (2 * ULP2 * U32 * np.abs(np.tanh(z)) if tanh_head else 0.0)
    w = (z - mu) / sigma
    e_w = (e_mu + U32 * (np.abs(z) + np.abs(mu))) / sigma + np.abs(w) * (e_tau + 5 * U32)
    per_dim = e_tau + np.abs(w) * e_w + U32 * w**2
    mags = np.abs(tau) + 0.5 * w**2 + 0.5 * math.log(2 * math.pi)
    if tanh_head:
        sp = np.logaddexp(0.0, -2.0 * z)
        per_dim = per_dim + 2 * U32 * (6 * sp + 2 * math.log(2.0) + 2 * np.abs(z))
        mags = mags + np.abs(2.0 * (math.log(2.0) - z - sp))
    e_lp = per_dim.sum(-1) + counted_tolerance(1.0, roundings=n_a + 4, eps=EPS32) * mags.sum(-1)
    return 2 * e_z, b_a, 2 * e_lp, 2 * e_value[:, -1].numpy()


def _abs_forward(trunk: Any, x: Any) -> Any:
    """The trunk evaluated with |W|, |b| and |x| in float64: the scale S of Higham's error bound."""
    convs = [m for m in (getattr(trunk, n, None) for n in ("conv1", "conv2", "conv3")) if m is not None]
    h = x.double() / 255
    for c in convs:
        h = torch.nn.functional.conv2d(h, c.weight.double().abs(), c.bias.double().abs(), stride=c.stride)
    return torch.nn.functional.linear(h.flatten(1), trunk.fc.weight.double().abs(), trunk.fc.bias.double().abs())


@pytest.mark.parametrize("arch", ["text", "nature"])
def test_channels_last_is_a_layout_only_switch(arch: Any) -> None:
    """NHWC and NCHW nets with the same state_dict compute the same function: both float32 trunks are
    within the forward-error bound gamma_n * S of the float64 trunk, where n = sum of fan-ins + layers,
    gamma_n = n u / (1 - n u) with u = 2^-24, and S the trunk run on |W|, |b|, |x| (ReLU is 1-Lipschitz
    and monotone, so the bound propagates). The state_dicts load into each other."""
    torch.manual_seed(0)
    nhwc = AtariActorCritic(6, arch=arch, channels_last=True)
    nchw = AtariActorCritic(6, arch=arch, channels_last=False)
    nchw.load_state_dict(nhwc.state_dict())
    assert nhwc.trunk.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert nchw.trunk.conv1.weight.is_contiguous()
    x = _obs(7, seed=1)
    exact = AtariActorCritic(6, arch=arch, channels_last=False).double()
    exact.load_state_dict(nhwc.state_dict())
    with torch.no_grad():
        f64 = exact.trunk(x.double())
        scale = _abs_forward(exact.trunk, x)
        layers = [m for m in nhwc.trunk.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        fan_in = sum(m.weight[0].numel() for m in layers)
        bound = counted_tolerance(1.0, roundings=fan_in + 4, eps=EPS32) * scale
        for net in (nhwc, nchw):
            err = (net.trunk(x).double() - f64).abs()
            assert bool((err <= bound).all()), float((err / bound).max())
        assert torch.equal(nhwc.act(x, deterministic=True).action, nchw.act(x, deterministic=True).action)


def _layers_match_their_exact_counterparts(net: Any, x: Any, out_dtype: Any) -> int:
    """Run ``net`` on ``x``, capture every trunk layer's input and output (forward hooks), and check each layer
    against float64 arithmetic on the same operands: the layer's input, weight and bias rounded to the
    output's format (what autocast feeds the kernel; a no-op in float32), then the exact y = W x + b. With
    the products accumulated in float32 (n = fan-in + 1 terms, gamma_n = n u_f / (1 - n u_f), u_f = 2^-24)
    and the result rounded once to the output format (unit roundoff u_o), the computed y_hat obeys
    |y_hat - y| <= u_o |y| + (1 + u_o) gamma_n (|W| |x| + |b|) + 2^-126 (n + sum_i (|w_i| + |x_i|)) (the last
    term covers flushed subnormals: products and partial sums below 2^-126, and subnormal operands, which
    oneDNN's bfloat16 kernels read as zero, losing up to |w_i| 2^-126 each; until 2026-12-07 only n 2^-126,
    which a weight of 2^20 times a subnormal input broke). A layer checked this way cannot hide a wrong
    kernel, a lower-precision accumulation
    (bfloat16 sums would miss by n u_b) or a skipped rounding, and, layer by layer, no blow-up of the scale
    enters the bound. Returns the number of layers checked."""
    layers = [m for m in net.trunk.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    seen: list[tuple[Any, Any, Any]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0], out))) for m in layers]
    try:
        with torch.no_grad():
            net.features(x)
    finally:
        for h in hooks:
            h.remove()
    assert [m for m, _, _ in seen] == layers
    u_o = {torch.float32: U32, torch.bfloat16: 2.0**-8}[out_dtype]
    for mod, inp, out in seen:
        assert out.dtype == out_dtype, (mod, out.dtype)
        xin = inp.to(out_dtype).double()
        w, b = mod.weight.to(out_dtype).double(), mod.bias.to(out_dtype).double()
        if isinstance(mod, torch.nn.Conv2d):
            exact = torch.nn.functional.conv2d(xin, w, b, stride=mod.stride)
            scale = torch.nn.functional.conv2d(xin.abs(), w.abs(), b.abs(), stride=mod.stride)
        else:
            exact = torch.nn.functional.linear(xin, w, b)
            scale = torch.nn.functional.linear(xin.abs(), w.abs(), b.abs())
        n = mod.weight[0].numel() + 1
        gamma = counted_tolerance(1.0, roundings=n, eps=EPS32)
        if isinstance(mod, torch.nn.Conv2d):
            operands = torch.nn.functional.conv2d(torch.ones_like(xin), w.abs(), b.abs(), stride=mod.stride) \
                + torch.nn.functional.conv2d(xin.abs(), torch.ones_like(w), None, stride=mod.stride)
        else:
            operands = torch.nn.functional.linear(torch.ones_like(xin), w.abs(), b.abs()) \
                + torch.nn.functional.linear(xin.abs(), torch.ones_like(w))
        bound = u_o * exact.abs() + (1 + u_o) * gamma * scale + (n + operands) * 2.0**-126
        err = (out.double() - exact).abs()
        assert bool((err <= bound).all()), (mod, float((err / bound).max()))
    return len(seen)


@pytest.mark.parametrize("arch", ["text", "nature"])
def test_bfloat16_precision_is_float32_up_to_bfloat16_rounding(arch: Any) -> None:
    """``precision="bfloat16"`` (mixed precision of the trunk): every trunk layer takes bfloat16 operands,
    accumulates in float32 and rounds its output to bfloat16, checked layer by layer against float64
    arithmetic on the same operands (:func:`_layers_match_their_exact_counterparts`, u_o = 2^-8); the float32
    network passes the same check with u_o = 2^-24. The features handed to the heads, the logits,
    log-probabilities, entropies and values are float32, the state_dict is the float32 one, the parameters'
    gradients are float32 and finite."""
    torch.manual_seed(0)
    f32 = AtariActorCritic(6, arch=arch)
    bf16 = AtariActorCritic(6, arch=arch, precision="bfloat16")
    bf16.load_state_dict(f32.state_dict())
    assert {k: v.dtype for k, v in bf16.state_dict().items()} == {k: v.dtype for k, v in f32.state_dict().items()}
    x = _obs(9, seed=2)
    n_layers = 3 if arch == "text" else 4
    assert _layers_match_their_exact_counterparts(bf16, x, torch.bfloat16) == n_layers
    assert _layers_match_their_exact_counterparts(f32, x, torch.float32) == n_layers
    a = torch.arange(9) % 6
    with torch.no_grad():
        assert bf16.features(x).dtype == torch.float32
        logits, v = bf16(x)
        assert logits.dtype == torch.float32 and v.dtype == torch.float32
        ev = bf16.evaluate(x, a)
        assert ev.log_prob.dtype == torch.float32 and ev.entropy.dtype == torch.float32
    loss = -bf16.evaluate(x, a).log_prob.mean() + bf16.value(x).pow(2).mean()
    loss.backward()  # type: ignore[no-untyped-call]
    for p in bf16.parameters():
        assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
        assert bool(torch.isfinite(p.grad).all())


@pytest.mark.parametrize("arch", ["text", "nature"])
def test_bfloat16_gradients_are_the_float64_gradients_up_to_bfloat16_rounding(arch: Any) -> None:
    """The parameter gradients of the bfloat16 network against float64 autograd of the same loss, same
    parameters: for every parameter, the norm-wise relative error is at most 8 (2^-8 / 2^-24) times the float32
    network's own error (a float32 error floor of 2^-22): the same computation with unit roundoff 2^-8 in
    place of 2^-24 (measured ratios 0.9 - 1.8 x 2^16). The test above checks dtypes only; a trunk gradient
    multiplied by -1024 (a forgotten loss-scale unscale) passed it (2026-12-07 review)."""
    import copy

    torch.manual_seed(0)
    f32 = AtariActorCritic(6, arch=arch)
    bf16 = AtariActorCritic(6, arch=arch, precision="bfloat16")
    bf16.load_state_dict(f32.state_dict())
    f64 = copy.deepcopy(f32).double()
    x = _obs(9, seed=2)
    a = torch.arange(9) % 6

    def grads(net: Any, obs: Any) -> dict[str, Any]:
        net.zero_grad()
        loss = -net.evaluate(obs, a).log_prob.mean() + net.value(obs).pow(2).mean()
        loss.backward()
        return {k: p.grad.detach().double().clone() for k, p in net.named_parameters()}

    g64, g32, gb = grads(f64, x.double()), grads(f32, x), grads(bf16, x)
    ratio = 2.0**-8 / 2.0**-24
    for k, ref in g64.items():
        scale = float(ref.norm())
        if scale == 0.0:
            continue
        e32 = float((g32[k] - ref).norm()) / scale
        eb = float((gb[k] - ref).norm()) / scale
        assert eb <= 8.0 * ratio * max(e32, 2.0**-22), (k, eb, e32)


def test_precision_is_validated() -> None:
    """An unknown precision is a ValueError naming it (bfloat16 for an MLP task is refused by the agents'
    config check, tests/scalable/test_agents.py)."""
    with pytest.raises(ValueError, match="float16"):
        AtariActorCritic(4, precision="float16")  # type: ignore[arg-type]


@pytest.mark.parametrize("channels_last", [True, False])
def test_flatten_nchw_values_and_gradient_layout(channels_last: bool) -> None:
    """flatten_nchw is x.contiguous().flatten(1) (NCHW order, bit for bit) and hands the gradient back in
    x's memory format with the same values: an NHWC trunk's ReLU and conv backward then run in one layout."""
    from scalable.nets.atari import flatten_nchw

    g = torch.Generator().manual_seed(3)
    base = torch.randn(5, 6, 4, 3, generator=g, dtype=torch.float64)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x1 = base.contiguous(memory_format=fmt).requires_grad_(True)
    x2 = base.contiguous(memory_format=fmt).requires_grad_(True)
    y1 = flatten_nchw(x1)
    y2 = x2.contiguous().flatten(1)
    assert torch.equal(y1, y2) and torch.equal(y1, base.flatten(1))
    w = torch.randn(y1.shape, generator=g, dtype=torch.float64)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    assert x1.grad is not None and x2.grad is not None
    assert torch.equal(x1.grad, x2.grad)
    assert x1.grad.is_contiguous(memory_format=fmt)
    with torch.no_grad():  # no autograd node without gradients
        assert torch.equal(flatten_nchw(x1), y2)


@pytest.mark.parametrize("arch", ["text", "nature"])
def test_channels_last_trunk_backward_stays_nhwc(arch: Any) -> None:
    """In an NHWC trunk the gradient entering every conv ReLU's backward is NHWC-strided, the layout of the
    ReLU's saved output, so no ReLU backward runs the slow mixed-layout kernel (the last conv ReLU did
    before flatten_nchw). Checked on the autograd graph: a pre-hook on each ReluBackward0 node sees the
    incoming gradient."""
    torch.manual_seed(0)
    net = AtariActorCritic(4, arch=arch, channels_last=True)
    logits, v = net(_obs(3))
    seen: list[Any] = []
    nodes, stack, visited = [], [logits.grad_fn, v.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in visited:
            continue
        visited.add(node)
        if node.name() == "ReluBackward0":
            nodes.append(node)
        stack.extend(nxt for nxt, _ in node.next_functions)
    handles = [n.register_prehook(lambda grads: seen.append(grads[0])) for n in nodes]
    try:
        (logits.sum() + v.sum()).backward()
    finally:
        for h in handles:
            h.remove()
    conv_grads = [g for g in seen if g.dim() == 4]
    assert len(nodes) == (3 if arch == "text" else 4) and len(conv_grads) == len(nodes) - 1
    for g in conv_grads:
        assert g.is_contiguous(memory_format=torch.channels_last) and not g.is_contiguous()


def _has_orthogonal_gain(w: Any, gain: float) -> bool:
    """True if the weight (flattened to [out, fan_in]) is ``gain`` times a matrix with orthonormal rows or
    columns (torch's orthogonal_ with that gain): the Gram matrix of the shorter side (n) is gain^2 I. torch
    builds the factor by a float32 Householder QR, orthogonal to about n U32 (Higham 2002, Thm 19.4; measured
    up to 0.4 n U32 here), and storing it in float32 adds 2 U32 per Gram entry: bound 4 n U32 gain^2, far
    below what tells the gains sqrt 2, 1 and 0.01 apart."""
    m = w.detach().to(torch.float64).reshape(w.shape[0], -1)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    n = gram.shape[0]
    eye = torch.eye(n, dtype=torch.float64)
    return bool(float((gram - gain * gain * eye).abs().max()) <= 4 * max(n, 2) * U32 * gain * gain)


def test_orthogonal_init_gains_of_every_layer() -> None:
    """The named switch ``orthogonal_init`` (PPO implementation detail): hidden layers and convolutions gain
    sqrt 2, the policy output 0.01, the value output 1, biases 0, for the MLP (both heads) and both Atari
    networks. (The SB3 cross-check copies SB3's weights, so no test read the gains: a value head of gain 0.01,
    or hidden layers of gain 1, passed.)"""
    torch.manual_seed(0)
    root2 = math.sqrt(2.0)
    for head in ("tanh_gaussian", "diag_gaussian"):
        net = MLPActorCritic(11, 3, hidden=(64, 64), head=head)
        lin = [m for m in net.actor_trunk if isinstance(m, torch.nn.Linear)]
        crit = [m for m in net.critic if isinstance(m, torch.nn.Linear)]
        assert len(lin) == 2 and all(_has_orthogonal_gain(m.weight, root2) for m in lin)
        assert len(crit) == 3 and all(_has_orthogonal_gain(m.weight, root2) for m in crit[:2])
        assert _has_orthogonal_gain(crit[2].weight, 1.0)
        out = net.head.linear if isinstance(net.head, TanhGaussianHead) else net.head.mean
        assert _has_orthogonal_gain(out.weight, 0.01)
        for m in lin + crit + [out]:
            assert m.bias is not None and bool((m.bias == 0).all())
    for arch in ("text", "nature"):
        a = AtariActorCritic(4, arch=arch)
        convs = [m for m in a.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(_has_orthogonal_gain(m.weight, root2) for m in convs)
        fcs = [m for m in a.modules() if isinstance(m, torch.nn.Linear) and m is not a.policy and m is not a.value_head]
        assert fcs and all(_has_orthogonal_gain(m.weight, root2) for m in fcs)
        assert _has_orthogonal_gain(a.policy.weight, 0.01)
        assert _has_orthogonal_gain(a.value_head.weight, 1.0)


def test_atari_pixels_are_scaled_by_1_over_255() -> None:
    """uint8 frames and float pixel values both enter the trunk as x / 255 (in [0, 1]): the features of a
    uint8 batch equal the float64 trunk applied to pixels / 255 within float32 forward error, and equal the
    features of the same pixels passed as float32 (the two code paths of the scaling)."""
    from scalable.nets.atari import _scale

    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (2, 4, 84, 84), generator=g, dtype=torch.uint8)
    for channels_last in (False, True):
        x8 = _scale(obs, channels_last)
        xf = _scale(obs.to(torch.float32), channels_last)
        want = obs.to(torch.float64) / 255.0
        assert float((x8.double() - want).abs().max()) <= U32 * 2.0
        assert float((xf.double() - want).abs().max()) <= U32 * 2.0
        assert float(x8.max()) == 1.0 and float(x8.min()) == 0.0
