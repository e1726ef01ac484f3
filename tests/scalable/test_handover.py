"""The advantages PPO and A2C train on, against reference.advantages computed from a log the environment keeps.

The twin tests prove ``scalable.core.advantages`` equal to ``reference.advantages`` on given inputs; these tests
check the inputs the agents hand over: the rewards, V(s_t), the bootstrap values (V(final obs) at a time-limit
truncation, 0 at a termination, V(s_T) on the last row of a rollout), the two flags and lambda. A tiny
deterministic environment records every transition (s, a, r, s', terminated); episodes end by termination after
1..5 steps and by a time limit of 3, so rollouts hold terminations, truncations and both on one row. V is a copy
of the network taken at collection time. Six changes passed every earlier test (review 2026-12-07): truncation
treated as termination before GAE, ``gae_lambda`` ignored, the truncated flags dropped, PPO's value clipping
around the targets instead of the rollout's V, and the last row bootstrapped from V(s_{T-1}) (torch and numpy
rollout paths). Tolerance: float32 network outputs and advantages, compared with float64 recomputations from
the same float32 values: 64 float32 eps times the scale of the sums (|A| <= a few tens here).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gymnasium")

import gymnasium as gym  # noqa: E402

import reference.advantages as ref_adv  # noqa: E402
import scalable.agents.a2c as a2c_mod  # noqa: E402
import scalable.agents.ppo as ppo_mod  # noqa: E402

TIME_LIMIT = 3
UPDATES = 3
_ENVS: list[Toy] = []


class Toy(gym.Env[np.ndarray, Any]):
    """Observation (steps taken, the episode's termination step, 0.1 x episode index); reward 1 + c / 4 +
    a / 2 + ep / 100; terminates when c reaches the episode's step in 1..5 (drawn at reset)."""

    def __init__(self, continuous: bool) -> None:
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.action_space = (gym.spaces.Box(-2.0, 2.0, (1,), np.float32) if continuous
                             else gym.spaces.Discrete(2))
        self.log: list[tuple[np.ndarray, float, float, np.ndarray, bool, int]] = []
        self.ep = -1
        self.c = 0
        self.end = 1
        _ENVS.append(self)

    def _obs(self) -> np.ndarray:
        return np.array([self.c, self.end, 0.1 * self.ep], np.float32)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.c, self.end, self.ep = 0, int(self.np_random.integers(1, 6)), self.ep + 1
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        s = self._obs()
        a = float(np.asarray(action).ravel()[0])
        self.c += 1
        r = 1.0 + 0.25 * self.c + 0.5 * a + 0.01 * self.ep
        term = self.c >= self.end
        s2 = self._obs()
        self.log.append((s, a, r, s2, term, self.c))
        return s2, r, term, False, {}


for _name, _cont in (("HandoverToyDiscrete-v0", False), ("HandoverToyBox-v0", True)):
    if _name not in gym.registry:
        gym.register(_name, entry_point=lambda cont=_cont, **_kw: Toy(cont))


def _run(kind: str, env_id: str, num_envs: int, num_steps: int, monkeypatch: pytest.MonkeyPatch,
         **overrides: Any) -> tuple[dict[str, list[Any]], Any]:
    """Train ``UPDATES`` updates, capturing the network at each collection, the rollout and what the update got."""
    _ENVS.clear()
    cap: dict[str, list[Any]] = {"models": [], "rollouts": [], "adv": [], "targets": [], "values": []}
    mod: Any = ppo_mod if kind == "ppo" else a2c_mod
    real_collect = mod.collect_rollout

    def collect(envs: Any, model: Any, obs: Any, steps: int, **kw: Any) -> Any:
        cap["models"].append(copy.deepcopy(model))
        ro, out = real_collect(envs, model, obs, steps, **kw)
        cap["rollouts"].append(ro)
        return ro, out

    monkeypatch.setattr(mod, "collect_rollout", collect)
    if kind == "ppo":
        real_update = ppo_mod.ppo_update

        def update(model: Any, opt: Any, cfg: Any, gen: Any, **kw: Any) -> Any:
            cap["adv"].append(kw["advantages"].clone())
            cap["targets"].append(kw["targets"].clone())
            cap["values"].append(kw["values"].clone())
            return real_update(model, opt, cfg, gen, **kw)

        monkeypatch.setattr(ppo_mod, "ppo_update", update)
        cfg: Any = ppo_mod.PPOConfig(env_id=env_id, backend="gymnasium", num_envs=num_envs, num_steps=num_steps,
                                     total_steps=num_envs * num_steps * 4, minibatch_size=min(4, num_envs * num_steps),
                                     update_epochs=1, max_episode_steps=TIME_LIMIT, checkpoint_every=0, **overrides)
    else:
        real_pl, real_vl = a2c_mod.a2c_policy_loss, a2c_mod.value_loss  # type: ignore[attr-defined]

        def policy_loss(lp: Any, adv: Any, **kw: Any) -> Any:
            cap["adv"].append(adv.detach().clone())
            return real_pl(lp, adv, **kw)

        def v_loss(v: Any, t: Any, **kw: Any) -> Any:
            cap["targets"].append(t.detach().clone())
            return real_vl(v, t, **kw)

        monkeypatch.setattr(a2c_mod, "a2c_policy_loss", policy_loss)
        monkeypatch.setattr(a2c_mod, "value_loss", v_loss)
        cfg = a2c_mod.A2CConfig(env_id=env_id, backend="gymnasium", num_envs=num_envs, num_steps=num_steps,
                                total_steps=num_envs * num_steps * 4, max_episode_steps=TIME_LIMIT,
                                checkpoint_every=0, **overrides)
    mod.train(cfg, max_updates=UPDATES, progress=False)
    return cap, cfg


@pytest.mark.parametrize("kind", ["ppo", "a2c"])
@pytest.mark.parametrize("env_id,num_envs,num_steps", [
    ("HandoverToyDiscrete-v0", 1, 1), ("HandoverToyDiscrete-v0", 3, 6), ("HandoverToyBox-v0", 1, 7),
    ("HandoverToyBox-v0", 4, 3)])
def test_the_agents_train_on_the_reference_advantages_of_what_the_env_logged(
        kind: str, env_id: str, num_envs: int, num_steps: int, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    extra: dict[str, Any] = {"gae_lambda": 0.8, "clip_vloss": True} if kind == "ppo" else {}
    cap, cfg = _run(kind, env_id, num_envs, num_steps, monkeypatch, **extra)
    envs = _ENVS[-num_envs:]  # the training envs are the last ones created
    assert all(len(e.log) == num_steps * UPDATES for e in envs)
    saw_trunc = saw_term = False
    for u in range(UPDATES):
        rows = [[e.log[u * num_steps + t] for e in envs] for t in range(num_steps)]
        s = np.array([[x[0] for x in row] for row in rows], np.float32)
        r = np.array([[x[2] for x in row] for row in rows])
        s2 = np.array([[x[3] for x in row] for row in rows], np.float32)
        term = np.array([[x[4] for x in row] for row in rows])
        trunc = np.array([[x[5] >= TIME_LIMIT and not x[4] for x in row] for row in rows])
        saw_trunc |= bool(trunc.any())
        saw_term |= bool(term.any())
        model = cap["models"][u]
        with torch.no_grad():
            vals = model.value(torch.from_numpy(s.reshape(-1, 3))).double().numpy().reshape(num_steps, num_envs)
            v_next = model.value(torch.from_numpy(s2.reshape(-1, 3))).double().numpy().reshape(num_steps, num_envs)
        nxt = np.where(term, 0.0, v_next)  # V(final obs) at truncation and on the last row; 0 at termination
        if kind == "ppo":
            want = ref_adv.gae(r, vals, nxt, term, trunc, gamma=cfg.gamma, lam=0.8)
        else:
            want = ref_adv.td_k_advantages(r, vals, nxt, term, trunc, gamma=cfg.gamma, k=None)
        got = cap["adv"][u].double().numpy().reshape(num_steps, num_envs)
        tol = 64 * float(np.finfo(np.float32).eps) * max(1.0, float(np.max(np.abs(want))) + float(np.max(np.abs(vals))))
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
        np.testing.assert_allclose(cap["targets"][u].double().numpy().reshape(num_steps, num_envs), want + vals,
                                   rtol=0, atol=tol)
        if kind == "ppo":  # value clipping is around the rollout's V, not around the targets
            np.testing.assert_allclose(cap["values"][u].double().numpy().reshape(num_steps, num_envs), vals,
                                       rtol=0, atol=tol)
    assert saw_term
    assert saw_trunc or num_steps * UPDATES < TIME_LIMIT + 1
