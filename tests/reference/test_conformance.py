"""The conformance kit (reference.testing.conformance) on correct, third-party and deliberately wrong code.

What is tested: (1) independent correct implementations pass, in every convention; (2) code nobody here
wrote passes through its documented adapter: SB3's RolloutBuffer GAE (float32), pymdptoolbox's policy
iteration, value iteration and Bellman operator, and this project's torch twins; (3) every known mistake the kit
diagnoses is caught *and* named; (4) the float64 tolerance is tight enough to reject a float32
computation, while the float32 tolerance accepts it; (5) malformed results, exceptions and
nondeterminism are reported, not raised; (6) reports are deterministic; (7) the CLI's exit status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from reference.advantages import gae as ref_gae
from reference.policies import tanh_gaussian_log_prob
from reference.surrogates import grpo_advantages
from reference.testing.conformance import (
    ConformanceError,
    ConformanceReport,
    check_bellman_operator,
    check_gae,
    check_grpo_advantages,
    check_optimal_value,
    check_policy_evaluation,
    check_ppo_clip_loss,
    check_rewards_to_go,
    check_tanh_gaussian_log_prob,
    check_td_k_advantages,
    main,
)
from reference.testing.strategies_rollouts import ppo_batches, rollout_batches

EX = 60  # random examples per check in CI (the kit's default is 200)


def _diagnosis(rep: ConformanceReport) -> str:
    assert not rep.passed and rep.failure is not None, str(rep)
    return rep.failure.diagnosis or ""


# ------------------------------------------------------------------------------ correct implementations
def episode_starts_gae(rewards: Any, values: Any, starts: Any, last_value: Any, last_done: Any, *, gamma: float,
                       lam: float) -> np.ndarray:
    """GAE in the episode-starts form (written here from the recursion, the loop SB3 and CleanRL use)."""
    t_len = rewards.shape[0]
    adv = np.zeros_like(rewards)
    acc = np.zeros(rewards.shape[1])
    for t in range(t_len - 1, -1, -1):
        alive = 1.0 - (np.asarray(last_done, float) if t == t_len - 1 else np.asarray(starts[t + 1], float))
        nv = last_value if t == t_len - 1 else values[t + 1]
        acc = rewards[t] + gamma * nv * alive - values[t] + gamma * lam * alive * acc
        adv[t] = acc
    return np.asarray(adv)


def numpy_ppo_loss(lp: Any, old: Any, adv: Any, *, eps: float) -> float:
    r = np.exp(lp - old)
    return float(-np.mean(np.minimum(r * adv, np.clip(r, 1 - eps, 1 + eps) * adv)))


def numpy_ppo_grad(lp: Any, old: Any, adv: Any, *, eps: float) -> np.ndarray:
    r = np.exp(lp - old)
    active = r * adv <= np.clip(r, 1 - eps, 1 + eps) * adv  # the unclipped term is the min
    return np.asarray(-np.where(active, adv * r, 0.0) / len(lp))


def linear_solve_evaluation(p: Any, r: Any, pi: Any, gamma: float) -> np.ndarray:
    p_pi = np.einsum("sa,sat->st", pi, p)
    return np.asarray(np.linalg.solve(np.eye(p.shape[0]) - gamma * p_pi, (pi * r).sum(1)))


def test_correct_implementations_pass_every_convention() -> None:
    reps = [
        check_gae(ref_gae, examples=EX),
        check_gae(episode_starts_gae, convention="sb3", examples=EX),
        check_gae(episode_starts_gae, convention="cleanrl", examples=EX),
        check_ppo_clip_loss(numpy_ppo_loss, grad=numpy_ppo_grad, examples=EX),
        check_ppo_clip_loss(lambda *a, eps: -numpy_ppo_loss(*a, eps=eps), sign="objective", examples=EX),
        check_policy_evaluation(linear_solve_evaluation, examples=EX),
    ]
    for rep in reps:
        assert rep.passed, str(rep)
        assert rep.random_examples >= EX and len(rep.pitfall_cases) >= 3
    rep.raise_if_failed()  # no exception for a pass
    assert "without time-limit truncation" in " ".join(reps[2].notes)  # cleanrl: the limitation is stated


# ------------------------------------------------------------------------------ code nobody here wrote
def test_sb3_rollout_buffer_gae_conforms_in_float32() -> None:
    buffers = pytest.importorskip("stable_baselines3.common.buffers")
    torch = pytest.importorskip("torch")
    from gymnasium import spaces

    def sb3_gae(rewards: Any, values: Any, starts: Any, last_value: Any, last_done: Any, *, gamma: float,
                lam: float) -> np.ndarray:
        t_len, b = rewards.shape
        buf = buffers.RolloutBuffer(t_len, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), device="cpu",
                                    gae_lambda=lam, gamma=gamma, n_envs=b)
        buf.rewards[:] = rewards
        buf.values[:] = values
        buf.episode_starts[:] = starts
        buf.compute_returns_and_advantage(torch.as_tensor(last_value), np.asarray(last_done))
        return np.asarray(buf.advantages)

    rep = check_gae(sb3_gae, convention="sb3", precision="float32", examples=EX)
    assert rep.passed, str(rep)
    # SB3's buffers are float32: the float64 bound (unit roundoff 2^-53) must reject them
    rep64 = check_gae(sb3_gae, convention="sb3", precision="float64", examples=EX)
    assert not rep64.passed and rep64.failure is not None and "differs from the reference" in rep64.failure.problem


def test_pymdptoolbox_solvers_conform() -> None:
    mdp = pytest.importorskip("mdptoolbox.mdp")

    def pi_solver(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        sol = mdp.PolicyIteration(p, r, gamma, eval_type=0)
        sol.run()
        return np.asarray(sol.V), np.asarray(sol.policy)

    rep = check_optimal_value(pi_solver, layout="ASS", examples=EX)
    assert rep.passed, str(rep)

    eps = 1e-6

    def vi_solver(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        sol = mdp.ValueIteration(p, r, gamma, epsilon=eps, max_iter=100_000)
        sol.run()
        return np.asarray(sol.V), np.asarray(sol.policy)

    # Found by the kit: pymdptoolbox's ValueIteration computes an iteration bound (Puterman, Theorem 6.6.6)
    # in its constructor with log(gamma k), and k = 0 when every state moves to the same successor
    # (all to term: the constructor raises "math domain error"), or k so small that the bound is infinite
    # (int(inf): OverflowError); which of the two the kit meets first depends on the examples drawn.
    rep = check_optimal_value(vi_solver, layout="ASS", atol=eps, check_value=False, examples=EX)
    assert rep.failure is not None and any(msg in rep.failure.problem for msg in (
        "raised ValueError: math domain error", "raised OverflowError: cannot convert float infinity to integer")), \
        str(rep)

    class BoundlessVI(mdp.ValueIteration):  # type: ignore[misc,name-defined]
        def _boundIter(self, epsilon: float) -> None:  # keep max_iter as given
            pass

    def vi_patched(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        sol = BoundlessVI(p, r, gamma, epsilon=eps, max_iter=100_000)
        sol.run()
        return np.asarray(sol.V), np.asarray(sol.policy)

    # The span rule certifies an eps-optimal *policy* (BEL-25), which is what check_value=False checks.
    rep = check_optimal_value(vi_patched, layout="ASS", atol=eps, check_value=False, examples=EX)
    assert rep.passed, str(rep)


def test_value_iteration_with_a_sup_norm_stopping_rule_conforms_within_its_bound() -> None:
    eps = 1e-6

    def vi(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        v = np.zeros(p.shape[0])
        while True:  # ||V_{k+1} - V_k|| <= eps (1 - gamma) / gamma  =>  ||V_{k+1} - V*|| <= eps
            v_new = (r + gamma * p @ v).max(1)
            if np.max(np.abs(v_new - v)) <= eps * (1 - gamma) / gamma:
                return v_new, (r + gamma * p @ v_new).argmax(1)
            v = v_new

    assert check_optimal_value(vi, atol=eps, examples=EX).passed
    assert not check_optimal_value(vi, examples=EX).passed  # not V* to machine precision


def test_torch_twins_conform() -> None:
    torch = pytest.importorskip("torch")
    from scalable.core.advantages import gae as torch_gae
    from scalable.core.losses import ppo_clip_loss

    def t(x: Any) -> Any:
        return torch.as_tensor(np.asarray(x))

    def gae64(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> np.ndarray:
        return np.asarray(torch_gae(t(r), t(v), t(nv), t(te), t(tr), gamma=gamma, lam=lam).numpy())

    def loss(lp: Any, old: Any, adv: Any, *, eps: float) -> float:
        return float(ppo_clip_loss(t(lp), t(old), t(adv), eps=eps))

    def grad(lp: Any, old: Any, adv: Any, *, eps: float) -> np.ndarray:
        x = t(lp).requires_grad_(True)
        ppo_clip_loss(x, t(old), t(adv), eps=eps).backward()  # type: ignore[no-untyped-call]
        return np.asarray(x.grad.numpy())

    for rep in (check_gae(gae64, examples=EX), check_ppo_clip_loss(loss, grad=grad, examples=EX)):
        assert rep.passed, str(rep)


# ------------------------------------------------------------------------------ known mistakes, named
GAE_BUGS: dict[str, tuple[Callable[..., Any], str]] = {
    "returns": (lambda r, v, nv, te, tr, *, gamma, lam: ref_gae(r, v, nv, te, tr, gamma=gamma, lam=lam) + v,
                "value targets"),
    "trunc_as_term": (lambda r, v, nv, te, tr, *, gamma, lam: ref_gae(r, v, nv, te | tr, tr, gamma=gamma, lam=lam),
                      "truncation treated as termination"),
    "reset_state": (lambda r, v, nv, te, tr, *, gamma, lam: ref_gae(
        r, v, np.where(tr & ~te, np.concatenate([v[1:], nv[-1:]]), nv), te, tr, gamma=gamma, lam=lam),
        "reset state of the next episode"),
    "no_term_mask": (lambda r, v, nv, te, tr, *, gamma, lam: ref_gae(
        r, v, nv, np.zeros_like(te), te | tr, gamma=gamma, lam=lam), "V(term) = 0 not applied"),
}


def _no_reset(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> np.ndarray:
    delta = r + gamma * np.where(te, 0.0, nv) - v
    out, acc = np.zeros_like(r), np.zeros(r.shape[1])
    for i in range(r.shape[0] - 1, -1, -1):
        acc = delta[i] + gamma * lam * acc
        out[i] = acc
    return np.asarray(out)


def _no_gamma(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> np.ndarray:
    delta = r + gamma * np.where(te, 0.0, nv) - v
    out, acc = np.zeros_like(r), np.zeros(r.shape[1])
    for i in range(r.shape[0] - 1, -1, -1):
        acc = delta[i] + lam * np.where(te[i] | tr[i], 0.0, acc)
        out[i] = acc
    return np.asarray(out)


def _no_last_bootstrap(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> np.ndarray:
    nv2 = np.array(nv)
    nv2[-1] = np.where(tr[-1] & ~te[-1], nv2[-1], 0.0)
    return ref_gae(r, v, nv2, te, tr, gamma=gamma, lam=lam)


GAE_BUGS["no_reset"] = (_no_reset, "not reset at episode ends")
GAE_BUGS["no_gamma"] = (_no_gamma, "gamma missing from the recursion")
GAE_BUGS["no_last_bootstrap"] = (_no_last_bootstrap, "no bootstrap at the end of the rollout")


def _up(x: Any) -> Any:
    return np.concatenate([x[1:], np.zeros_like(x[:1])])


def _down(x: Any) -> Any:
    return np.concatenate([np.zeros_like(x[:1]), x[:-1]])


GAE_BUGS["flags_from_next_row"] = (lambda r, v, nv, te, tr, *, gamma, lam: ref_gae(
    r, v, nv, _up(te), _up(tr), gamma=gamma, lam=lam), "the flag of row t+1 used for row t")
GAE_BUGS["flags_from_previous_row"] = (lambda r, v, nv, te, tr, *, gamma, lam: ref_gae(
    r, v, nv, _down(te), _down(tr), gamma=gamma, lam=lam), "the flag of row t-1 used for row t")


@pytest.mark.parametrize("bug", sorted(GAE_BUGS))
def test_gae_mistakes_are_caught_and_named(bug: str) -> None:
    fn, phrase = GAE_BUGS[bug]
    rep = check_gae(fn, examples=EX)
    assert phrase in _diagnosis(rep), str(rep)
    with pytest.raises(ConformanceError, match="FAILED"):
        rep.raise_if_failed()


def test_gae_off_by_one_episode_starts_is_caught() -> None:
    def shifted(r: Any, v: Any, starts: Any, lv: Any, ld: Any, *, gamma: float, lam: float) -> np.ndarray:
        t_len = r.shape[0]
        adv, acc = np.zeros_like(r), np.zeros(r.shape[1])
        for t in range(t_len - 1, -1, -1):
            alive = 1.0 - np.asarray(ld if t == t_len - 1 else starts[t], float)  # starts[t + 1] is right
            nv = lv if t == t_len - 1 else v[t + 1]
            acc = r[t] + gamma * nv * alive - v[t] + gamma * lam * alive * acc
            adv[t] = acc
        return np.asarray(adv)

    rep = check_gae(shifted, convention="sb3", examples=EX)
    assert not rep.passed and rep.failure is not None and "differs from the reference" in rep.failure.problem
    assert "the flag of row t-1 used for row t" in _diagnosis(rep), str(rep)


def _rlax_style(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> np.ndarray:
    """rlax's truncated GAE handed discount_t = gamma (1 - terminated): the bootstrap is right, the trace runs on
    across a truncation."""
    disc = gamma * (1.0 - np.asarray(te, float))
    delta = r + disc * nv - v
    out, acc = np.zeros_like(delta), np.zeros(r.shape[1])
    for t in range(r.shape[0] - 1, -1, -1):
        acc = delta[t] + disc[t] * lam * acc
        out[t] = acc
    return np.asarray(out)


def _starts_loop(mistake: str) -> Callable[..., np.ndarray]:
    """A CleanRL / SB3 loop with one mistake: "same_row" (nextvalues = values[t]) or "last_done" (ignored)."""
    def fn(r: Any, v: Any, starts: Any, lv: Any, ld: Any, *, gamma: float, lam: float) -> np.ndarray:
        t_len = r.shape[0]
        adv, acc = np.zeros_like(r), np.zeros(r.shape[1])
        for t in range(t_len - 1, -1, -1):
            last = t == t_len - 1
            alive = 1.0 - np.asarray((0.0 if mistake == "last_done" else ld) if last else starts[t + 1], float)
            nxt = lv if last else (v[t] if mistake == "same_row" else v[t + 1])
            acc = r[t] + gamma * nxt * alive - v[t] + gamma * lam * alive * acc
            adv[t] = acc
        return np.asarray(adv)
    return fn


@pytest.mark.parametrize("case", ["rlax", "same_row", "last_done"])
def test_gae_adaptation_mistakes_are_named(case: str) -> None:
    """Mistakes the kit rejected without a name (review 2026-12-07): an rlax adaptation whose lambda-trace is
    not cut at truncation; a CleanRL loop with nextvalues = values[t]; an SB3 loop that ignores last_done."""
    if case == "rlax":
        rep = check_gae(_rlax_style, examples=EX)
        phrase = "runs on across a time-limit truncation"
    else:
        rep = check_gae(_starts_loop(case), convention="cleanrl" if case == "same_row" else "sb3", examples=EX)
        phrase = "from the same row" if case == "same_row" else "done flag (last_done / next_done) ignored"
    assert not rep.passed and phrase in _diagnosis(rep), str(rep)


def _ppo_variant(kind: str) -> Callable[..., float]:
    def fn(lp: Any, old: Any, adv: Any, *, eps: float) -> float:
        r = np.exp(lp - old)
        if kind == "inverted":
            r = 1.0 / r
        if kind == "old_is_new":  # old_log_prob recomputed with the current policy
            r = np.exp(lp - lp)
        a = adv
        if kind == "normalised":
            a = (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8) if adv.size > 1 else adv
        clipped = np.clip(r, 1 - eps, 1 + eps) * a
        c = {"max": np.maximum(r * a, clipped), "noclip": r * a, "cliponly": clipped}.get(
            kind, np.minimum(r * a, clipped))
        total = float(c.sum()) if kind == "sum" else float(c.mean())
        return total if kind == "sign" else -total
    return fn


PPO_BUGS = {"max": "max instead of min", "noclip": "no clipping", "cliponly": "clipped term alone",
            "inverted": "ratio inverted", "sum": "sum instead of mean", "sign": "sign is flipped",
            "normalised": "normalised with the unbiased std", "old_is_new": "ratio is identically 1"}


@pytest.mark.parametrize("bug", sorted(PPO_BUGS))
def test_ppo_mistakes_are_caught_and_named(bug: str) -> None:
    rep = check_ppo_clip_loss(_ppo_variant(bug), examples=EX)
    assert PPO_BUGS[bug] in _diagnosis(rep), str(rep)


def test_ppo_normalisation_conventions() -> None:
    for ddof, kind in ((1, "unbiased"), (0, "biased")):
        def fn(lp: Any, old: Any, adv: Any, *, eps: float, ddof: int = ddof) -> float:
            a = (adv - adv.mean()) / (adv.std(ddof=ddof) + 1e-8)
            return numpy_ppo_loss(lp, old, a, eps=eps)
        assert check_ppo_clip_loss(fn, normalize_advantages=kind, examples=EX).passed  # type: ignore[arg-type]
        other = "biased" if kind == "unbiased" else "unbiased"
        rep = check_ppo_clip_loss(fn, normalize_advantages=other, examples=EX)  # type: ignore[arg-type]
        assert f"normalised with the {kind} std" in _diagnosis(rep), str(rep)


def test_ppo_gradient_that_ignores_the_clip_is_named() -> None:
    def leaky(lp: Any, old: Any, adv: Any, *, eps: float) -> np.ndarray:
        return np.asarray(-adv * np.exp(lp - old) / len(lp))

    rep = check_ppo_clip_loss(numpy_ppo_loss, grad=leaky, examples=EX)
    assert "ignores the clip" in _diagnosis(rep), str(rep)


def test_wrong_evaluation_and_suboptimal_policy_are_caught() -> None:
    def no_gamma(p: Any, r: Any, pi: Any, gamma: float) -> np.ndarray:
        return linear_solve_evaluation(p, r, pi, gamma * gamma)

    assert not check_policy_evaluation(no_gamma, examples=EX).passed

    def right_value_wrong_policy(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        v = np.zeros(p.shape[0])
        for _ in range(3000):
            v = (r + gamma * p @ v).max(1)
        return v, (r + gamma * p @ v).argmin(1)

    rep = check_optimal_value(right_value_wrong_policy, examples=EX)
    assert not rep.passed and rep.failure is not None and "not optimal" in rep.failure.problem, str(rep)


def test_a_greedy_step_without_gamma_is_caught_without_random_examples() -> None:
    """V* exact but the policy taken as argmax_a R + P V* (gamma left out of the greedy step): suboptimal on
    13 of 400 of the kit's random MDPs, so the default 100 random examples passed it; a pitfall now shows it."""
    def greedy_without_gamma(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        v = np.zeros(p.shape[0])
        for _ in range(3000):
            v = (r + gamma * p @ v).max(1)
        return v, (r + p @ v).argmax(1)

    rep = check_optimal_value(greedy_without_gamma, examples=0)  # the pitfalls alone
    assert not rep.passed and rep.failure is not None and "not optimal" in rep.failure.problem, str(rep)
    assert "gamma decides the greedy action" in rep.failure.case, str(rep)


def test_normalised_ppo_loss_on_clustered_advantages_conforms_in_both_precisions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CleanRL's loss with per-minibatch normalisation, (A - mean) / (std + 1e-8), on advantages 3 + 0.001 N(0, 1)
    (a critic that is off by about 3 everywhere): centring rounds each term by about u max|A| and the division
    by std amplifies that 3000-fold, in the user's loss and the reference's alike. The kit rejected the correct
    loss (float64: error 7.5e-13 against a tolerance of 5.0e-14; review 2026-12-07); its tolerance now carries
    the factor max|A| / (std + 1e-8), and the random minibatches include clustered advantages."""
    import torch

    import reference.testing.conformance as conf
    from reference.testing.strategies_rollouts import PPOBatch

    def cleanrl(dtype: torch.dtype) -> Callable[..., Any]:
        def fn(lp: Any, old: Any, adv: Any, *, eps: float) -> float:
            lp_t, old_t, a = (torch.as_tensor(x, dtype=dtype) for x in (lp, old, adv))
            a = (a - a.mean()) / (a.std() + 1e-8)
            ratio = (lp_t - old_t).exp()
            return float(torch.max(-a * ratio, -a * ratio.clamp(1 - eps, 1 + eps)).mean())
        return fn

    lp = np.log(np.array([0.5, 0.25, 0.125, 0.5, 0.3, 0.2, 0.6, 0.1]))
    adv = 3.0 + 0.001 * np.random.default_rng(0).normal(size=8)
    with monkeypatch.context() as m:
        m.setattr(conf, "ppo_batches", lambda: st.just(PPOBatch(lp, lp.copy(), adv, 0.2)))
        for dtype, precision in ((torch.float64, "float64"), (torch.float32, "float32")):
            rep = conf.check_ppo_clip_loss(cleanrl(dtype), normalize_advantages="unbiased",
                                           precision=precision, examples=1)  # type: ignore[arg-type]
            assert rep.passed, str(rep)
    for dtype, precision in ((torch.float64, "float64"), (torch.float32, "float32")):  # the drawn cases too
        rep = check_ppo_clip_loss(cleanrl(dtype), normalize_advantages="unbiased", precision=precision,  # type: ignore[arg-type]
                                  examples=EX)
        assert rep.passed, str(rep)
    # and the amplified tolerance still names a wrong normalisation on those advantages
    rep = check_ppo_clip_loss(cleanrl(torch.float64), normalize_advantages="biased", examples=EX)
    assert "normalised with the unbiased std" in _diagnosis(rep), str(rep)


def _pi_v_star(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """V* by policy iteration with exact (LAPACK) evaluations, and Q* from it: a correct float64 solver."""
    n = p.shape[0]
    pol = np.zeros(n, dtype=np.int64)
    for _ in range(100):
        pp, rr = p[np.arange(n), pol], r[np.arange(n), pol]
        v = np.linalg.solve(np.eye(n) - gamma * pp, rr)
        new = (r + gamma * p @ v).argmax(1)
        if np.array_equal(new, pol):
            break
        pol = new
    return v, r + gamma * p @ v


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_the_worst_action_at_long_horizons_is_caught_in_both_precisions(precision: str) -> None:
    """V* right (rounded to the precision) and the worst greedy action at gamma >= 0.995. In float32 the policy
    bound was 2 gamma e / (1 - gamma) with e the float32 value tolerance: 7600 on the gamma = 0.999 self-loop,
    whose largest possible loss is 1000, so any policy passed (review 2026-12-07). The policy is now checked
    state by state, Q*(s, pi(s)) >= V*(s) - 2 gamma e - 2 delta, which does not grow as 1 / (1 - gamma)."""
    dtype = np.float64 if precision == "float64" else np.float32

    def worst_at_long_horizons(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        v, q = _pi_v_star(p, r, gamma)
        return v.astype(dtype), (q.argmin(1) if gamma >= 0.995 else q.argmax(1))

    rep = check_optimal_value(worst_at_long_horizons, precision=precision, examples=0)  # type: ignore[arg-type]
    assert not rep.passed and rep.failure is not None and "not optimal" in rep.failure.problem, str(rep)

    def correct(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        v, q = _pi_v_star(p, r, gamma)
        return v.astype(dtype), q.argmax(1)

    assert check_optimal_value(correct, precision=precision, examples=EX).passed  # type: ignore[arg-type]


@pytest.mark.parametrize("heuristic", ["isclose", "window 1e-3", "myopic tie-break"])
def test_near_ties_treated_as_ties_are_caught(heuristic: str) -> None:
    """A greedy step that calls Q values within np.isclose's rtol (1e-5) or a fixed 1e-3 ties, or breaks such
    "ties" by the immediate reward, is suboptimal where two actions are that close; the random MDPs almost never
    make them so, and each passed 1000 random examples (review 2026-12-07). A near-tie pitfall shows it now."""
    def solver(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        v, q = _pi_v_star(p, r, gamma)
        best = q.max(1, keepdims=True)
        if heuristic == "isclose":
            return v, np.argmax(np.isclose(q, best), axis=1)
        if heuristic == "window 1e-3":
            return v, np.argmax(q >= best - 1e-3, axis=1)
        return v, np.argmax(np.where(q >= best - 1e-3, r, -np.inf), axis=1)

    rep = check_optimal_value(solver, examples=0)
    assert not rep.passed and rep.failure is not None and "near tie" in rep.failure.case, str(rep)


# ------------------------------------------------------------------------------ precision
def test_float64_tolerance_rejects_float32_and_float32_tolerance_accepts_it() -> None:
    def gae32(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> np.ndarray:
        f = np.float32
        delta = r.astype(f) + f(gamma) * np.where(te, f(0), nv.astype(f)) - v.astype(f)
        out, acc = np.zeros_like(delta), np.zeros(r.shape[1], f)
        for i in range(r.shape[0] - 1, -1, -1):
            acc = delta[i] + f(gamma * lam) * np.where(te[i] | tr[i], f(0), acc)
            out[i] = acc
        return np.asarray(out)

    assert check_gae(gae32, precision="float32", examples=EX).passed
    rep = check_gae(gae32, precision="float64", examples=EX)
    assert not rep.passed and rep.failure is not None and rep.failure.diagnosis is None, str(rep)


# ------------------------------------------------------------------------------ robustness
def test_malformed_results_and_exceptions_are_reported() -> None:
    rep = check_gae(lambda r, v, nv, te, tr, *, gamma, lam: ref_gae(r, v, nv, te, tr, gamma=gamma, lam=lam)[None],
                    examples=EX)
    assert rep.failure is not None and "extra axes" in rep.failure.problem, str(rep)

    def raises(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("boom")

    rep = check_ppo_clip_loss(raises, examples=EX)
    assert rep.failure is not None and "raised ValueError: boom" in rep.failure.problem
    rep = check_policy_evaluation(lambda p, r, pi, g: "not a number", examples=EX)
    assert rep.failure is not None and "not an array of real numbers" in rep.failure.problem

    calls = [0]

    def flaky(*args: Any, **kwargs: Any) -> float:  # right on the pitfall cases, then wrong every other call
        calls[0] += 1
        good = numpy_ppo_loss(*args, **kwargs)
        return good if calls[0] <= 6 or calls[0] % 2 else good + 1.0

    rep = check_ppo_clip_loss(flaky, examples=EX)
    assert not rep.passed, str(rep)


def test_reports_are_deterministic() -> None:
    fn = GAE_BUGS["no_gamma"][0]
    assert str(check_gae(fn, examples=EX)) == str(check_gae(fn, examples=EX))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="convention"):
        check_gae(ref_gae, convention="rllib")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="precision"):
        check_gae(ref_gae, precision="float16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="normalize_advantages"):
        check_ppo_clip_loss(numpy_ppo_loss, normalize_advantages="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="precision"):
        check_optimal_value(lambda p, r, g: None, precision="float16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layout"):
        check_policy_evaluation(linear_solve_evaluation, layout="SSA")  # type: ignore[arg-type]


def _bug_for_cli(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> np.ndarray:
    return np.asarray(ref_gae(r, v, nv, te | tr, tr, gamma=gamma, lam=lam))


def test_cli_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gae", "reference.advantages:gae", "--examples", "20"]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert main(["gae", f"{__name__}:_bug_for_cli", "--examples", "20"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "truncation treated as termination" in out
    assert main(["ppo-clip", f"{__name__}:numpy_ppo_loss", "--examples", "20"]) == 0
    # exit 2 when the check never ran, with a message naming the problem (review of 2026-12-07: a missing module
    # or attribute, or a refused option value, exited 1 with a traceback, like a failed check; options that do
    # not apply were ignored; --examples -5 ran the pitfalls only and passed)
    for argv, what in ((["gae", "no_colon_here"], "module:function"),
                       (["gae", "no_such_module_xyz:f"], "cannot import"),
                       (["gae", "reference.advantages:nope"], "no attribute"),
                       (["optimal-value", "reference.advantages:gae", "--atol", "-1"], "atol")):
        assert main(argv) == 2, argv
        assert what in capsys.readouterr().err
    for argv in (["gae", "reference.advantages:gae", "--atol", "1e-3"],
                 ["gae", "reference.advantages:gae", "--normalize-advantages", "unbiased"],
                 ["policy-evaluation", "reference.advantages:gae", "--policy-only"],
                 ["gae", "reference.advantages:gae", "--examples", "-5"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
    with pytest.raises(ValueError, match="examples"):
        check_gae(ref_gae, examples=-5)


# ------------------------------------------------------------------------------ tanh-Gaussian and GRPO
def _ref_tanh(z: Any, mu: Any, ls: Any) -> np.ndarray:
    return np.asarray(tanh_gaussian_log_prob(z, mu, ls).sum(-1))


def test_tanh_gaussian_reference_and_torch_twin_conform() -> None:
    torch = pytest.importorskip("torch")
    from scalable.core.distributions import tanh_gaussian_log_prob as torch_log_prob

    def twin(dtype: Any) -> Callable[..., np.ndarray]:
        def fn(z: Any, mu: Any, ls: Any) -> np.ndarray:
            t = [torch.as_tensor(x, dtype=dtype) for x in (z, mu, ls)]
            return np.asarray(torch_log_prob(*t).sum(-1).double().numpy())
        return fn

    assert check_tanh_gaussian_log_prob(_ref_tanh, examples=EX).passed
    assert check_tanh_gaussian_log_prob(lambda a, mu, ls: _ref_tanh(np.arctanh(a), mu, ls), convention="action",
                                        examples=EX).passed
    assert check_tanh_gaussian_log_prob(twin(torch.float64), examples=EX).passed
    assert check_tanh_gaussian_log_prob(twin(torch.float32), precision="float32", examples=EX).passed
    rep = check_tanh_gaussian_log_prob(twin(torch.float32), examples=EX)
    assert not rep.passed and rep.failure is not None and rep.failure.diagnosis is None  # float32 is not float64


def test_sb3_squashed_gaussian_is_named_for_its_epsilon() -> None:
    """SB3's SquashedDiagGaussianDistribution.log_prob uses log(1 - a^2 + 1e-6): the kit says so."""
    torch = pytest.importorskip("torch")
    dist = pytest.importorskip("stable_baselines3.common.distributions")

    def sb3(a: Any, mu: Any, ls: Any, z: Any = None) -> np.ndarray:
        d = dist.SquashedDiagGaussianDistribution(mu.shape[-1])
        d.proba_distribution(torch.as_tensor(mu), torch.as_tensor(ls))
        return np.asarray(d.log_prob(torch.as_tensor(a), None if z is None else torch.as_tensor(z)).numpy())

    for rep in (check_tanh_gaussian_log_prob(sb3, convention="action", examples=EX),
                check_tanh_gaussian_log_prob(lambda z, mu, ls: sb3(np.tanh(z), mu, ls, z), examples=EX)):
        assert "log(1 - a^2 + 1e-6)" in _diagnosis(rep), str(rep)
    # also in float32 with the action convention (the SB3 / CleanRL SAC setting): the input-rounding part of
    # the bound carried SAFETY (n + 8) and was ~200 times a correct float32 computation's error, so the epsilon
    # (5.5e-3 nats at z = 5) passed there until 2026-12-07; a correct float32 computation still passes
    def f32(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
        return lambda a, mu, ls: np.asarray(fn(*(np.asarray(x, np.float32) for x in (a, mu, ls))), np.float64)

    rep32 = check_tanh_gaussian_log_prob(f32(sb3), convention="action", precision="float32", examples=EX)
    assert not rep32.passed, str(rep32)

    def stable32(a: Any, mu: Any, ls: Any) -> np.ndarray:
        z = np.arctanh(a)
        normal = -ls - 0.5 * ((z - mu) / np.exp(ls)) ** 2 - np.float32(0.5 * np.log(2 * np.pi))
        return np.asarray((normal - 2 * (np.float32(np.log(2)) - z - np.logaddexp(np.float32(0), -2 * z))).sum(-1))

    rep_ok = check_tanh_gaussian_log_prob(f32(stable32), convention="action", precision="float32", examples=EX)
    assert rep_ok.passed, str(rep_ok)


def _naive(z: Any, mu: Any, ls: Any) -> np.ndarray:
    normal = -ls - 0.5 * ((z - mu) / np.exp(ls)) ** 2 - 0.5 * np.log(2 * np.pi)
    with np.errstate(divide="ignore"):
        return np.asarray((normal - np.log(1 - np.tanh(z) ** 2)).sum(-1))


TANH_BUGS: dict[str, tuple[Callable[..., Any], str]] = {
    "no_correction": (lambda z, mu, ls: (-ls - 0.5 * ((z - mu) / np.exp(ls)) ** 2 - 0.5 * np.log(2 * np.pi)).sum(-1),
                      "no tanh correction"),
    "text_formula": (lambda z, mu, ls: (-ls - 0.5 * ((z - mu) / np.exp(ls)) ** 2).sum(-1), "text's formula"),
    "log_variance": (lambda z, mu, ls: _ref_tanh(z, mu, 0.5 * ls), "log of the variance"),
    "not_summed": (lambda z, mu, ls: tanh_gaussian_log_prob(z, mu, ls), "sum over the last (action) axis"),
    "naive_jacobian": (_naive, "evaluated naively"),
    "constant_missing": (lambda z, mu, ls: (tanh_gaussian_log_prob(z, mu, ls) + 0.5 * np.log(2 * np.pi)).sum(-1),
                         "constant missing"),
    "constant_wrong_sign": (lambda z, mu, ls: (tanh_gaussian_log_prob(z, mu, ls) + np.log(2 * np.pi)).sum(-1),
                            "wrong sign"),
}


def _softplus_threshold_20(z: Any, mu: Any, ls: Any) -> np.ndarray:
    """Spinning Up's SAC / torch's TanhTransform: 2 (log 2 - z - softplus(-2 z)) with torch's F.softplus, which
    returns x for x > 20 (written in numpy, so that this test needs no torch)."""
    normal = -ls - 0.5 * ((z - mu) / np.exp(ls)) ** 2 - 0.5 * np.log(2 * np.pi)
    x = -2.0 * np.asarray(z)
    softplus = np.where(x > 20.0, x, np.logaddexp(0.0, np.minimum(x, 20.0)))
    return np.asarray((normal - 2.0 * (np.log(2.0) - z - softplus)).sum(-1))


def test_tanh_softplus_threshold_fails_in_float64_with_its_name_and_passes_in_float32() -> None:
    """Dropping log1p(e^(2 z)) <= 2e-9 for z < -10 is far above float64's rounding (the check's tolerance there
    is about 2e-11) and below float32's: a real, if small, error in float64; the kit now names it."""
    rep = check_tanh_gaussian_log_prob(_softplus_threshold_20, examples=EX)
    assert not rep.passed and "F.softplus" in _diagnosis(rep), str(rep)
    assert check_tanh_gaussian_log_prob(_softplus_threshold_20, precision="float32", examples=EX).passed


def test_shape_hints_say_transpose_or_do_not_squeeze() -> None:
    """A batch-major [B, T] result was told "extra axes: squeeze the result" (squeezing does not fix it), and so
    was a result with its size-1 axes squeezed away."""
    def batch_major(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> Any:
        return ref_gae(r, v, nv, te, tr, gamma=gamma, lam=lam).T

    def squeezed(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> Any:
        return ref_gae(r, v, nv, te, tr, gamma=gamma, lam=lam).squeeze()

    def extra_axis(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> Any:
        return ref_gae(r, v, nv, te, tr, gamma=gamma, lam=lam)[None]

    for fn, says in ((batch_major, "transposed"), (squeezed, "do not squeeze"), (extra_axis, "squeeze them")):
        rep = check_gae(fn, examples=EX)
        assert not rep.passed and rep.failure is not None and says in rep.failure.problem, str(rep)


def test_an_in_place_implementation_cannot_change_the_reported_inputs() -> None:
    """The report showed the inputs after the function had overwritten them (rewards [1, 2, 3] reported as the
    function's own output): every call now gets copies."""
    def in_place_wrong(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> Any:
        out = ref_gae(r, v, nv, te, tr, gamma=gamma, lam=lam + 0.01 if lam < 0.99 else lam - 0.01)
        r[...] = out
        return r

    rep = check_gae(in_place_wrong, examples=EX)
    assert not rep.passed and rep.failure is not None
    assert rep.failure.inputs["rewards"] is not rep.failure.got
    assert not np.array_equal(rep.failure.inputs["rewards"], np.asarray(rep.failure.got))


@pytest.mark.parametrize("bug", sorted(TANH_BUGS))
def test_tanh_gaussian_mistakes_are_caught_and_named(bug: str) -> None:
    fn, phrase = TANH_BUGS[bug]
    rep = check_tanh_gaussian_log_prob(fn, examples=EX)
    assert phrase in _diagnosis(rep), str(rep)


def test_grpo_reference_and_torch_twin_conform() -> None:
    torch = pytest.importorskip("torch")
    from scalable.core.grpo import grpo_advantages as torch_grpo

    assert check_grpo_advantages(grpo_advantages, examples=EX).passed
    assert check_grpo_advantages(lambda r: grpo_advantages(r, scale_by_std=False), scale_by_std=False,
                                 examples=EX).passed
    assert check_grpo_advantages(lambda r: torch_grpo(torch.as_tensor(r)).numpy(), examples=EX).passed


def _trl_like(r: Any, ddof: int = 1, eps_in_sqrt: bool = False, whole: bool = False) -> np.ndarray:
    axis = None if whole else -1
    c = r - r.mean(axis=axis, keepdims=True)
    if eps_in_sqrt:
        return np.asarray(c / np.sqrt(r.var(axis=axis, ddof=ddof, keepdims=True) + 1e-4))
    n = r.size if whole else r.shape[-1]
    std = r.std(axis=axis, ddof=ddof, keepdims=True) if n > ddof else np.zeros_like(r[..., :1])
    return np.asarray(c / (std + 1e-4))


GRPO_BUGS: dict[str, tuple[Callable[..., Any], str]] = {
    "ddof0": (lambda r: _trl_like(r, ddof=0), "population std"),
    "eps_in_sqrt": (lambda r: _trl_like(r, eps_in_sqrt=True), "eps inside the square root"),
    "whole_batch": (lambda r: _trl_like(r, whole=True), "whole batch"),
    "no_std": (lambda r: r - r.mean(-1, keepdims=True), "not divided by the std"),
    # TRL's own code: torch.std (ddof 1) of a group of one completion is NaN, and NaN / anything is NaN
    "nan_for_n1": (lambda r: np.asarray((r - r.mean(-1, keepdims=True)) / (r.std(-1, ddof=1, keepdims=True) + 1e-4)),
                   "groups of one completion (N = 1) give NaN"),
}


@pytest.mark.filterwarnings("ignore:Degrees of freedom:RuntimeWarning")  # the buggy code's var of one sample
@pytest.mark.parametrize("bug", sorted(GRPO_BUGS))
def test_grpo_mistakes_are_caught_and_named(bug: str) -> None:
    fn, phrase = GRPO_BUGS[bug]
    with np.errstate(all="ignore"):
        rep = check_grpo_advantages(fn, examples=EX)
    assert phrase in _diagnosis(rep), str(rep)


def test_grpo_flat_group_rounding_is_within_tolerance() -> None:
    """(r - mean) / (std + eps) without the exact-zero rule leaves ~u |r| / eps on a flat group of 0.1: the
    derived tolerance admits it (it is rounding, not a mistake); the reference returns exact zeros."""
    assert check_grpo_advantages(_trl_like, examples=EX).passed


# ------------------------------------------------------------------------------ the public strategies
@settings(max_examples=100, deadline=None)
@given(rollout_batches())
def test_rollout_batches_are_well_formed(bt: Any) -> None:
    t_len, b = bt.shape
    assert 1 <= t_len <= 12 and 1 <= b <= 4
    for x in (bt.values, bt.v_final, bt.terminated, bt.truncated):
        assert x.shape == (t_len, b)
    assert bt.last_value.shape == (b,)
    np.testing.assert_array_equal(np.isfinite(bt.v_final), bt.truncated & ~bt.terminated)
    assert np.all(np.isfinite(bt.next_values))  # v_final is read only where it is defined


@given(rollout_batches(truncation=False))
def test_rollout_batches_without_truncation(bt: Any) -> None:
    assert not bt.truncated.any()


def test_strategies_reach_the_edge_cases() -> None:
    """The cases the kit's docstring promises are drawn: B = 1 with every row ending, both flags on one row,
    a PPO minibatch of one, and entries on both clipped sides."""
    cfg = settings(database=None, max_examples=2000, phases=(Phase.generate,))
    find(rollout_batches(), lambda b: b.shape[1] == 1 and b.shape[0] > 1 and bool(b.done.all()), settings=cfg)
    find(rollout_batches(), lambda b: bool((b.terminated & b.truncated).any()), settings=cfg)
    find(ppo_batches(), lambda b: b.advantages.size == 1, settings=cfg)
    find(ppo_batches(), lambda b: bool(((b.ratio > 1 + b.eps) & (b.advantages > 0)).any()
                                       and ((b.ratio < 1 - b.eps) & (b.advantages < 0)).any()), settings=cfg)


# ------------------------------------------------------------------------------ Bellman operators
# Loop implementations, written from the formulas of check_bellman_operator's docstring (not from the
# reference's einsum): b(P, R, pi, gamma, X, mistake) with X = V [S] or Q [S, A].
def _loop_operator(p: Any, r: Any, pi: Any, gamma: float, x: Any, *, q: bool, optimal: bool,
                   mistake: str = "") -> np.ndarray:
    n, na = r.shape
    g = 1.0 if mistake == "no_gamma" else gamma

    def cont(s2: int, s: int) -> float:  # the value of s2 as seen from a row of state s
        if not q:
            return float(x[s2])
        if optimal:
            return float(min(x[s2]) if mistake == "min" else max(x[s2]))
        w = pi[s] if mistake == "pi_of_s" else pi[s2]
        return float(sum(w[b] * x[s2, b] for b in range(na)))

    look = np.zeros((n, na))
    for s in range(n):
        for a in range(na):
            row = [p[s2, a, s] if mistake == "transposed" else p[s, a, s2] for s2 in range(n)]
            look[s, a] = r[s, a] + g * sum(row[s2] * cont(s2, s) for s2 in range(n))
            if mistake == "reward_discounted":
                look[s, a] = gamma * (r[s, a] + sum(row[s2] * cont(s2, s) for s2 in range(n)))
    if q:
        if mistake == "max_outside":  # max_a' sum_s' P(s'|s,a) Q(s', a')
            for s in range(n):
                for a in range(na):
                    look[s, a] = r[s, a] + g * max(sum(p[s, a, s2] * x[s2, b] for s2 in range(n)) for b in range(na))
        return look
    if optimal:
        return np.asarray(look.min(axis=1) if mistake == "min" else look.max(axis=1))
    if mistake == "greedy":
        return np.asarray(look.max(axis=1))
    return np.array([sum(pi[s, a] * look[s, a] for a in range(na)) for s in range(n)])


def _operator(q: bool, optimal: bool, mistake: str = "") -> Callable[..., np.ndarray]:
    def b_star(p: Any, r: Any, gamma: float, x: Any) -> np.ndarray:
        return _loop_operator(p, r, None, gamma, x, q=q, optimal=True, mistake=mistake)

    def b_pi(p: Any, r: Any, pi: Any, gamma: float, x: Any) -> np.ndarray:
        return _loop_operator(p, r, pi, gamma, x, q=q, optimal=False, mistake=mistake)

    return b_star if optimal else b_pi


OPERATORS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("q,optimal", OPERATORS)
def test_loop_bellman_operators_conform(q: bool, optimal: bool) -> None:
    rep = check_bellman_operator(_operator(q, optimal), target="q" if q else "v", optimal=optimal, examples=EX)
    assert rep.passed, str(rep)
    assert rep.spec == {(False, False): "BEL-06", (True, False): "BEL-09", (False, True): "BEL-14",
                        (True, True): "BEL-21"}[(q, optimal)]


def test_pymdptoolbox_bellman_operator_conforms() -> None:
    mdp = pytest.importorskip("mdptoolbox.mdp")

    def b_star(p: Any, r: Any, gamma: float, v: Any) -> np.ndarray:  # P[a, s, s'] as pymdptoolbox takes it
        model: Any = mdp.MDP(p, r, gamma, 0.01, 1000)
        return np.asarray(model._bellmanOperator(v)[1])

    rep = check_bellman_operator(b_star, optimal=True, layout="ASS", examples=EX)
    assert rep.passed, str(rep)
    assert not check_bellman_operator(b_star, optimal=True, layout="SAS", examples=EX).passed


OPERATOR_BUGS = {  # (q, optimal, mistake) -> the words the diagnosis must contain
    "v_pi_no_gamma": (False, False, "no_gamma", "gamma left out"),
    "v_pi_greedy": (False, False, "greedy", "the max over actions (B*)"),
    "v_pi_transposed": (False, False, "transposed", "read transposed"),
    "v_star_min": (False, True, "min", "min instead of max"),
    "v_star_no_gamma": (False, True, "no_gamma", "gamma left out"),
    "q_pi_pi_of_s": (True, False, "pi_of_s", "pi of the current state s"),
    "q_pi_no_gamma": (True, False, "no_gamma", "gamma left out"),
    "q_star_max_outside": (True, True, "max_outside", "max_a' taken outside the expectation"),
    "q_star_min": (True, True, "min", "min instead of max"),
    "q_star_transposed": (True, True, "transposed", "read transposed"),
    "v_pi_reward_discounted": (False, False, "reward_discounted", "the reward discounted too"),
    "q_pi_reward_discounted": (True, False, "reward_discounted", "the reward discounted too"),
    "q_star_reward_discounted": (True, True, "reward_discounted", "the reward discounted too"),
}


@pytest.mark.parametrize("bug", sorted(OPERATOR_BUGS))
def test_bellman_operator_mistakes_are_caught_and_named(bug: str) -> None:
    q, optimal, mistake, words = OPERATOR_BUGS[bug]
    rep = check_bellman_operator(_operator(q, optimal, mistake), target="q" if q else "v", optimal=optimal,
                                 examples=EX)
    assert words in _diagnosis(rep), str(rep)


def _cli_b_star_q(p: Any, r: Any, gamma: float, q: Any) -> np.ndarray:
    return np.asarray(r + gamma * p @ q.max(axis=1))


def test_bellman_operator_precision_arguments_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    def b32(p: Any, r: Any, pi: Any, gamma: float, v: Any) -> np.ndarray:
        f = np.float32
        return np.asarray((pi.astype(f) * (r.astype(f) + f(gamma) * (p.astype(f) @ v.astype(f)))).sum(1))

    assert check_bellman_operator(b32, precision="float32", examples=EX).passed
    assert not check_bellman_operator(b32, precision="float64", examples=EX).passed
    with pytest.raises(ValueError, match="target"):
        check_bellman_operator(b32, target="w")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layout"):
        check_bellman_operator(b32, layout="SSA")  # type: ignore[arg-type]
    assert main(["bellman-operator", f"{__name__}:_cli_b_star_q", "--target", "q",
                 "--optimal", "--examples", "20"]) == 0
    assert "PASSED: Bellman operator B* on Q" in capsys.readouterr().out


# ------------------------------------------------------------------------------ TD(k)
def _loop_td_k(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, k: int | None,
               mistake: str = "") -> np.ndarray:
    """k-step advantages by walking forward from each row (independent of the reference's vectorised sum)."""
    n_t, n_b = r.shape
    kk = None if k is None else k + 1 if mistake == "k_plus_1" else k
    out = np.zeros((n_t, n_b))
    for b in range(n_b):
        for t in range(n_t):
            g, m, disc = 0.0, 0, 1.0
            while True:
                g += disc * r[t + m, b]
                disc *= gamma
                m += 1
                row = t + m - 1
                ended = te[row, b] or (tr[row, b] and mistake != "no_reset")
                if mistake == "no_reset" and not (row == n_t - 1 or (kk is not None and m == kk)):
                    continue
                if te[row, b] or (mistake == "trunc_as_term" and tr[row, b]):
                    boot = 0.0
                    break
                if ended or row == n_t - 1 or (kk is not None and m == kk):
                    boot = nv[row, b]
                    break
            out[t, b] = g + disc * boot - v[t, b]
    return out


def test_td_k_loop_reference_and_torch_twin_conform() -> None:
    torch = pytest.importorskip("torch")
    from reference.advantages import td_k_advantages
    from scalable.core.advantages import td_k_advantages as twin

    assert check_td_k_advantages(_loop_td_k, examples=EX).passed
    assert check_td_k_advantages(td_k_advantages, examples=EX).passed

    def t(*xs: Any) -> Any:
        return [torch.from_numpy(np.ascontiguousarray(x)) for x in xs]

    def twin64(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, k: int | None) -> np.ndarray:
        return np.asarray(twin(*t(r, v, nv, te, tr), gamma=gamma, k=k).numpy())

    rep = check_td_k_advantages(twin64, examples=EX)
    assert rep.passed, str(rep)

    def finite_only(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, k: int | None) -> np.ndarray:
        assert k is not None, "this implementation takes a finite k"
        return _loop_td_k(r, v, nv, te, tr, gamma=gamma, k=k)

    assert check_td_k_advantages(finite_only, include_infinite=False, examples=EX).passed


TD_K_BUGS = {
    "flags_from_next_row": "the flag of row t+1 used for row t",
    "flags_from_previous_row": "the flag of row t-1 used for row t",
    "k_plus_1": "k + 1 steps summed",
    "trunc_as_term": "truncation treated as termination",
    "no_reset": "not cut at episode ends",
}


@pytest.mark.parametrize("bug", sorted(TD_K_BUGS))
def test_td_k_mistakes_are_caught_and_named(bug: str) -> None:
    def fn(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, k: int | None) -> np.ndarray:
        if bug.startswith("flags_from"):  # a correct TD(k) fed flags one row off
            shift = _up if bug == "flags_from_next_row" else _down
            return _loop_td_k(r, v, nv, shift(te), shift(tr), gamma=gamma, k=k)
        return _loop_td_k(r, v, nv, te, tr, gamma=gamma, k=k, mistake=bug)

    assert TD_K_BUGS[bug] in _diagnosis(check_td_k_advantages(fn, examples=EX))


def test_td_k_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["td-k", "reference.advantages:td_k_advantages", "--examples", "20"]) == 0
    assert "PASSED: TD(k) advantages" in capsys.readouterr().out


# ------------------------------------------------------------------------------ rewards-to-go
def discount_cumsum(x: Any, *, gamma: float) -> np.ndarray:
    """G_t = x_t + gamma G_{t+1} over one episode (the backward recursion of Spinning Up's helper)."""
    out, acc = np.zeros(len(x)), 0.0
    for t in range(len(x) - 1, -1, -1):
        acc = x[t] + gamma * acc
        out[t] = acc
    return out


def batch_rewards_to_go(r: Any, te: Any, tr: Any, *, gamma: float, reset: bool = True) -> np.ndarray:
    """Each column split at its flags into episodes, each summed by :func:`discount_cumsum`."""
    out = np.zeros(r.shape)
    for b in range(r.shape[1]):
        ends = [t + 1 for t in range(r.shape[0]) if (te[t, b] or tr[t, b]) and reset] + [r.shape[0]]
        s0 = 0
        for e in ends:
            if e > s0:
                out[s0:e, b] = discount_cumsum(r[s0:e, b], gamma=gamma)
            s0 = e
    return out


def test_rewards_to_go_conform_in_both_conventions() -> None:
    assert check_rewards_to_go(discount_cumsum, examples=EX).passed
    rep = check_rewards_to_go(batch_rewards_to_go, convention="batch", examples=EX)
    assert rep.passed, str(rep)


RTG_BUGS: dict[str, tuple[Callable[..., np.ndarray], str]] = {
    "from_episode_start": (lambda x, *, gamma: discount_cumsum(x, gamma=gamma) * gamma ** np.arange(len(x)),
                           "discounted from the episode start"),
    "undiscounted": (lambda x, *, gamma: discount_cumsum(x, gamma=1.0), "not discounted"),
    "excludes_r_t": (lambda x, *, gamma: discount_cumsum(x, gamma=gamma) - x, "r_t left out"),
    "forward": (lambda x, *, gamma: discount_cumsum(x[::-1], gamma=gamma)[::-1], "forward cumulative sum"),
}


@pytest.mark.parametrize("bug", sorted(RTG_BUGS))
def test_rewards_to_go_mistakes_are_caught_and_named(bug: str) -> None:
    fn, words = RTG_BUGS[bug]
    assert words in _diagnosis(check_rewards_to_go(fn, examples=EX))


def test_rewards_to_go_not_reset_at_episode_ends_is_named_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    def no_reset(r: Any, te: Any, tr: Any, *, gamma: float) -> np.ndarray:
        return batch_rewards_to_go(r, te, tr, gamma=gamma, reset=False)

    assert "not reset at episode ends" in _diagnosis(check_rewards_to_go(no_reset, convention="batch", examples=EX))
    with pytest.raises(ValueError, match="convention"):
        check_rewards_to_go(discount_cumsum, convention="trajectory")  # type: ignore[arg-type]
    assert main(["rewards-to-go", f"{__name__}:discount_cumsum", "--examples", "20"]) == 0
    assert "PASSED: rewards-to-go" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a convention of another check
        main(["rewards-to-go", f"{__name__}:discount_cumsum", "--convention", "sb3"])


def test_optimal_value_atol_adds_to_the_rounding_tolerance() -> None:
    """A float32 value iteration whose stopping rule guarantees ||V - V*|| <= 1e-6 in exact arithmetic passes
    with atol=1e-6: atol is added to the float32 rounding tolerance (it once replaced it, and the same
    solver that passed without atol failed with it, by its rounding on top of the 1e-6)."""
    def vi32(p: Any, r: Any, gamma: float, eps: float = 1e-6) -> np.ndarray:
        p32, r32, g = p.astype(np.float32), r.astype(np.float32), np.float32(gamma)
        v = np.zeros(p.shape[0], np.float32)
        for _ in range(100_000):
            vn = (r32 + g * p32 @ v).max(axis=1)
            d, v = float(np.max(np.abs(vn - v))), vn
            if d <= eps * (1 - gamma) / gamma:
                break
        return np.asarray(v, dtype=np.float64)

    assert check_optimal_value(vi32, precision="float32", examples=EX).passed
    assert check_optimal_value(vi32, precision="float32", atol=1e-6, examples=EX).passed
    # and a solver stopped far too early still fails with the same atol
    assert not check_optimal_value(lambda p, r, g: vi32(p, r, g, eps=1e-2), precision="float32", atol=1e-6,
                                   examples=EX).passed


# ------------------------------------------------------------------------------ review findings (regressions)
def _exact_v_star(p: Any, r: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Policy iteration with exact evaluation: V* and a greedy policy (written here, not the reference's)."""
    n, na = r.shape
    act = np.zeros(n, dtype=np.int64)
    for _ in range(na**n + 1):  # strict improvement visits each deterministic policy at most once
        v = linear_solve_evaluation(p, r, np.eye(na)[act], gamma)
        q = r + gamma * p @ v
        new = np.where(q.max(1) > q[np.arange(n), act], q.argmax(1), act)
        if np.array_equal(new, act):
            break
        act = new
    return v, act


def test_optimal_value_returned_as_a_tuple_of_numbers_is_read_as_v() -> None:
    """pymdptoolbox's ``.V`` is a tuple; with one state + term it has two entries and was misread as (V, policy)."""
    rep = check_optimal_value(lambda p, r, g: tuple(_exact_v_star(p, r, g)[0].tolist()), examples=EX)
    assert rep.passed, str(rep)
    # a (V, policy) pair is still a pair, as a tuple or a list, and its policy is still checked
    assert check_optimal_value(lambda p, r, g: list(_exact_v_star(p, r, g)), examples=EX).passed
    rep = check_optimal_value(lambda p, r, g: (_exact_v_star(p, r, g)[0], np.zeros(1, dtype=np.int64)), examples=EX)
    assert rep.failure is not None and "policy is not usable" in rep.failure.problem, str(rep)


def test_pymdptoolbox_policy_iteration_v_tuple_conforms() -> None:
    mdp = pytest.importorskip("mdptoolbox.mdp")

    def pi_v(p: Any, r: Any, gamma: float) -> Any:
        sol = mdp.PolicyIteration(p, r, gamma, eval_type=0)
        sol.run()
        assert isinstance(sol.V, tuple)
        return sol.V  # the tuple itself, as a user would return it

    rep = check_optimal_value(pi_v, layout="ASS", examples=EX)
    assert rep.passed, str(rep)


def test_a_fixed_budget_of_sweeps_fails_at_long_horizons() -> None:
    """Value iteration / iterative evaluation run a fixed 1000 / 700 sweeps are off by 4.3e-3 / 8.8e-2 at
    gamma = 0.99: the kit must draw such horizons (it once drew gamma <= 0.95 only, and both passed)."""
    from reference.testing.conformance import _solver_mdps

    def vi_1000(p: Any, r: Any, gamma: float) -> np.ndarray:
        v = np.zeros(p.shape[0])
        for _ in range(1000):
            v = (r + gamma * p @ v).max(1)
        return v

    def pe_700(p: Any, r: Any, pi: Any, gamma: float) -> np.ndarray:
        v = np.zeros(p.shape[0])
        for _ in range(700):
            v = (pi * (r + gamma * p @ v)).sum(1)
        return v

    for rep in (check_optimal_value(vi_1000, examples=EX), check_policy_evaluation(pe_700, examples=EX)):
        assert not rep.passed and rep.failure is not None and "differs from the reference" in rep.failure.problem
    # the random MDPs reach gamma >= 0.99 too (not only the pitfall cases), and exact solvers pass there
    cfg = settings(database=None, max_examples=500, phases=(Phase.generate,))
    find(_solver_mdps(), lambda m: m.gamma >= 0.99 and m.n_states > 1, settings=cfg)
    assert check_optimal_value(_exact_v_star, examples=EX).passed


def _clamped_ppo(lp: Any, old: Any, adv: Any, *, eps: float) -> float:
    """The discrete-action habit: exp(log_prob) clamped to a probability; wrong for a continuous log-density."""
    r = np.clip(np.exp(lp), 1e-8, 1.0) / np.clip(np.exp(old), 1e-8, 1.0)
    return float(-np.mean(np.minimum(r * adv, np.clip(r, 1 - eps, 1 + eps) * adv)))


def test_ppo_positive_log_densities_catch_a_probability_clamp() -> None:
    rep = check_ppo_clip_loss(_clamped_ppo, examples=EX)
    assert "clamped to a probability in [1e-8, 1]" in _diagnosis(rep), str(rep)
    cfg = settings(database=None, max_examples=500, phases=(Phase.generate,))
    find(ppo_batches(), lambda b: bool((b.log_prob > 0).any() and (b.old_log_prob > 0).any()), settings=cfg)


def test_tensors_that_require_grad_are_detached_not_crashed_on() -> None:
    """A loss that requires grad is the normal output of a torch PPO loss: its value is checked (detached).
    It once crashed the kit (NumPy's RuntimeError), or was reported as non-determinism on random cases only."""
    torch = pytest.importorskip("torch")

    def loss(lp: Any, old: Any, adv: Any, *, eps: float) -> Any:
        x = torch.as_tensor(lp).requires_grad_(True)
        ratio = torch.exp(x - torch.as_tensor(old))
        a = torch.as_tensor(adv)
        return -torch.min(ratio * a, torch.clamp(ratio, 1 - eps, 1 + eps) * a).mean()

    def grad(lp: Any, old: Any, adv: Any, *, eps: float) -> Any:
        return torch.as_tensor(numpy_ppo_grad(lp, old, adv, eps=eps)).requires_grad_(True)

    assert check_ppo_clip_loss(loss, grad=grad, examples=EX).passed

    def gae_late(r: Any, v: Any, nv: Any, te: Any, tr: Any, *, gamma: float, lam: float) -> Any:
        out = torch.as_tensor(ref_gae(r, v, nv, te, tr, gamma=gamma, lam=lam))
        return out.requires_grad_(True) if r.shape[0] > 3 else out  # only on random cases (T > 3)

    rep = check_gae(gae_late, examples=EX)
    assert rep.passed, str(rep)
    # and a wrong tensor is still wrong, with the usual diagnosis
    rep = check_gae(lambda *a, **k: torch.as_tensor(GAE_BUGS["no_gamma"][0](*a, **k)).requires_grad_(True),
                    examples=EX)
    assert "gamma missing" in _diagnosis(rep), str(rep)


def test_complex_string_and_none_results_are_refused() -> None:
    rep = check_grpo_advantages(lambda r: grpo_advantages(r) + 5j, examples=EX)
    assert rep.failure is not None and "the result is complex" in rep.failure.problem, str(rep)
    rep = check_grpo_advantages(lambda r: grpo_advantages(r) + 0j, examples=EX)  # even with imag 0: not real
    assert rep.failure is not None and "the result is complex" in rep.failure.problem, str(rep)
    rep = check_ppo_clip_loss(lambda *a, eps: str(numpy_ppo_loss(*a, eps=eps)), examples=EX)
    assert rep.failure is not None and "the result is a str" in rep.failure.problem, str(rep)
    rep = check_gae(lambda *a, **k: ref_gae(*a, **k).astype(str), examples=EX)
    assert rep.failure is not None and "not an array of real numbers" in rep.failure.problem, str(rep)
    rep = check_gae(lambda *a, **k: np.asarray(ref_gae(*a, **k), dtype=object).astype(str).astype(object),
                    examples=EX)
    assert rep.failure is not None and "not an array of real numbers" in rep.failure.problem, str(rep)
    rep = check_grpo_advantages(lambda r: None, examples=EX)
    assert rep.failure is not None and "the result is None" in rep.failure.problem, str(rep)
    # an object array of plain Python / NumPy numbers is an array of real numbers
    assert check_gae(lambda *a, **k: np.asarray(ref_gae(*a, **k), dtype=object), examples=EX).passed


@pytest.mark.parametrize("atol", [-1.0, float("nan"), float("inf")])
def test_bad_atol_raises(atol: float) -> None:
    with pytest.raises(ValueError, match="atol"):
        check_optimal_value(_exact_v_star, atol=atol)
    with pytest.raises(ValueError, match="atol"):
        check_policy_evaluation(linear_solve_evaluation, atol=atol)


def test_grpo_tolerance_is_per_group() -> None:
    """The GRPO bound is per group: until 2026-12-07 the largest group's bound applied to every group, so a flat
    group (std 0, amplification 1 / eps_std = 1e4) widened the others' tolerance. A function that uses the
    population std (ddof 0) in groups of 8 or more whenever the batch also holds a flat group passed in float32
    (the pitfalls have N = 4; on random binary batches of N = 16 its error, about 0.11, stayed under a shared
    bound of about 0.77); now a random example catches it, with a tolerance of about 6e-5 for that group."""
    def ddof0_next_to_flat(r: Any) -> np.ndarray:
        r = np.asarray(r, np.float32)
        if r.shape[-1] == 1:
            return np.zeros_like(r)
        c = r - r.mean(-1, keepdims=True)
        flat = bool(np.any(np.all(c == 0, axis=-1))) and r.shape[-1] >= 8
        sd = r.std(-1, ddof=0 if flat else 1, keepdims=True)
        return np.asarray(np.where(c == 0, 0, c / (sd + np.float32(1e-4))))

    rep = check_grpo_advantages(ddof0_next_to_flat, precision="float32", examples=EX)
    assert not rep.passed and rep.failure is not None, str(rep)
    assert rep.failure.tolerance < 1e-3 < rep.failure.max_abs_error, str(rep)


def _gae_ignores_truncation(rewards: Any, values: Any, next_values: Any, terminated: Any, truncated: Any, *,
                            gamma: float, lam: float) -> np.ndarray:
    """A CleanRL-style loop on the reference's arguments that reads ``terminated`` only."""
    nv = np.concatenate([values[1:], next_values[-1:]], axis=0)
    adv = np.zeros_like(rewards, dtype=float)
    acc = np.zeros(rewards.shape[1])
    for t in range(rewards.shape[0] - 1, -1, -1):
        nt = 1.0 - terminated[t]
        acc = rewards[t] + gamma * nv[t] * nt - values[t] + gamma * lam * nt * acc
        adv[t] = acc
    return adv


def _gae_sb3_bootstrap_through_termination(rewards: Any, values: Any, episode_starts: Any, last_values: Any,
                                           dones: Any, *, gamma: float, lam: float) -> np.ndarray:
    """SB3's loop with the (1 - done) mask left off the bootstrap term (the trace is still cut)."""
    adv = np.zeros_like(rewards, dtype=float)
    acc = np.zeros(rewards.shape[1])
    for t in range(rewards.shape[0] - 1, -1, -1):
        nnt, nv = (1.0 - dones, last_values) if t == rewards.shape[0] - 1 else (1.0 - episode_starts[t + 1],
                                                                                   values[t + 1])
        acc = rewards[t] + gamma * nv - values[t] + gamma * lam * nnt * acc
        adv[t] = acc
    return adv


def test_gae_diagnoses_truncation_ignored_and_the_unmasked_bootstrap() -> None:
    """Two common GAE bugs failed without a diagnosis (2026-12-07 review): reading ``terminated`` only (the
    truncated row bootstraps from the next episode and the trace runs on), and SB3's loop without (1 - done)
    on the bootstrap. Each is now named."""
    rep = check_gae(_gae_ignores_truncation, examples=EX)
    assert not rep.passed and "truncated ignored altogether" in _diagnosis(rep), str(rep)
    rep = check_gae(_gae_sb3_bootstrap_through_termination, convention="sb3", examples=EX)
    assert not rep.passed and "the bootstrap not masked at an episode end" in _diagnosis(rep), str(rep)


def test_a_float32_result_checked_at_float64_gets_a_precision_hint() -> None:
    """A correct float32 GAE failed the default float64 check with only the numbers (2026-12-07 review); the
    problem now says the result is float32 and names precision='float32', which it then passes. A float64
    result that fails gets no such hint."""
    from reference.advantages import gae as ref_gae

    def gae32(*args: Any, **kwargs: Any) -> np.ndarray:
        return np.asarray(ref_gae(*args, **kwargs), dtype=np.float32)

    rep = check_gae(gae32, examples=EX)
    assert not rep.passed and rep.failure is not None and "precision='float32'" in rep.failure.problem, str(rep)
    check_gae(gae32, precision="float32", examples=EX).raise_if_failed()
    rep = check_gae(_gae_ignores_truncation, examples=EX)
    assert rep.failure is not None and "precision='float32'" not in rep.failure.problem
