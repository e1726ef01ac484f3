"""scalable.nets: the text's Atari network shapes (PG-46, E-49), heads consistent with core.distributions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import reference.policies as ref_pol  # noqa: E402
from reference.atari_shapes import atari_a3c_layer_shapes, atari_a3c_parameter_count  # noqa: E402
from scalable.core.distributions import categorical_log_prob, gaussian_log_prob  # noqa: E402
from scalable.nets.atari import AtariActorCritic, NatureCNN, TextAtariNet  # noqa: E402
from scalable.nets.init import layer_init  # noqa: E402
from scalable.nets.mlp import MLPActorCritic, TanhGaussianHead, mlp  # noqa: E402


def _obs(b: int, seed: int = 0) -> Any:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 4, 84, 84), generator=g, dtype=torch.uint8)


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
    assert torch.allclose(step.log_prob, categorical_log_prob(logits, step.action))
    assert torch.allclose(ev.log_prob, step.log_prob) and torch.allclose(ev.value, v)
    np.testing.assert_allclose(ev.entropy.numpy(), ref_pol.categorical_entropy(logits.double().numpy()),
                               rtol=1e-5, atol=1e-6)
    greedy = net.act(x, deterministic=True).action
    assert torch.equal(greedy, logits.argmax(-1))


def test_orthogonal_init_is_a_named_switch() -> None:
    torch.manual_seed(0)
    lin = layer_init(torch.nn.Linear(8, 4), gain=2.0)
    w = lin.weight.detach()
    assert torch.allclose(w @ w.T, 4.0 * torch.eye(4), atol=1e-5) and torch.all(lin.bias == 0)
    torch.manual_seed(0)
    default = layer_init(torch.nn.Linear(8, 4), orthogonal=False)
    torch.manual_seed(0)
    assert torch.equal(default.weight, torch.nn.Linear(8, 4).weight)  # untouched PyTorch default
    a = AtariActorCritic(4, orthogonal_init=True)
    pw = a.policy.weight.detach()
    assert torch.allclose(pw @ pw.T, 1e-4 * torch.eye(4), atol=1e-8)  # policy gain 0.01
    b = AtariActorCritic(4, orthogonal_init=False)
    assert not torch.allclose(b.policy.weight @ b.policy.weight.T, 1e-4 * torch.eye(4), atol=1e-8)


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
    np.testing.assert_allclose(step.log_prob.numpy(), want, rtol=0, atol=1e-12)
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
    assert torch.allclose(step.log_prob, gaussian_log_prob(step.action, mu, log_std).sum(-1))
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


@pytest.mark.parametrize("head", ["tanh_gaussian", "diag_gaussian"])
@pytest.mark.parametrize("activation", [torch.nn.Tanh, torch.nn.ReLU])
def test_numpy_policy_matches_the_torch_network(head: Any, activation: Any) -> None:
    """The rollout's numpy snapshot samples a = mu + sigma eps as the torch head does and reports the
    log-prob and value that ``evaluate`` recomputes (float32 rounding)."""
    torch.manual_seed(0)
    net = MLPActorCritic(5, 3, hidden=(16, 8), activation=activation, head=head)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
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
    np.testing.assert_allclose(raw, z.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a, np.tanh(z.numpy()) if head == "tanh_gaussian" else z.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lp, ev.log_prob.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(v, ev.value.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(snap.value(x), v)


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
        n = fan_in + 4
        u = 2.0**-24
        bound = (n * u / (1 - n * u)) * scale
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
    |y_hat - y| <= u_o |y| + (1 + u_o) gamma_n (|W| |x| + |b|) + n 2^-126 (the last term covers flushed
    subnormals). A layer checked this way cannot hide a wrong kernel, a lower-precision accumulation
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
    u_o = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8}[out_dtype]
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
        gamma = n * 2.0**-24 / (1 - n * 2.0**-24)
        bound = u_o * exact.abs() + (1 + u_o) * gamma * scale + n * 2.0**-126
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


def test_precision_is_validated() -> None:
    """An unknown precision is a ValueError naming it (bfloat16 for an MLP task is refused by the agents'
    config check, tests/scalable/test_agents.py)."""
    with pytest.raises(ValueError, match="float16"):
        AtariActorCritic(4, precision="float16")  # type: ignore[arg-type]
