"""Tests of reference.advantages: TD residuals, TD(k), GAE on [T, B] batches, and TR-01 / TR-02.

Random batches come from the public strategy ``reference.testing.strategies_rollouts.rollout_batches``
(T in 1..10, B in {1, 2, 4} with B = 1 drawn often, independent termination and truncation flags per row at
rates up to 1, so several episodes per column, both kinds of boundary, and rollout ends mid-episode).
``v_final`` is NaN wherever a row is not truncated, so any read of it outside truncation (a leak)
turns a result into NaN and fails.

Tolerances come from reference.tolerance: |r| <= 1 and |V| <= V_MAX give |delta| <= 1 + 2 V_MAX; a sum
of up to T residuals (or rewards) has scale T (1 + 2 V_MAX) and T terms. Exact checks on MDPs enumerate
every trajectory (reference.sampling.enumerate_trajectories) of small layered MDPs; their sums run over
N trajectories times H steps, with the condition number discount_condition(gamma, H) of the V^pi solve.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.advantages import (
    gae,
    gae_bias,
    gae_oracle,
    next_values_from_rollout,
    performance_difference,
    reward_to_go_targets,
    rollout_from_trajectories,
    td_k_advantages,
    td_k_bias,
    td_residuals,
    value_regression_loss,
    value_targets,
)
from reference.errors import ReferenceError_, ShapeError
from reference.exact import a_pi, discounted_occupancy, j_pi, v_pi
from reference.generators import random_layered_mdp, random_mdp
from reference.gradients import bootstrap_values, k_step_q_estimates
from reference.mdp import FiniteMDP, FloatArray, from_outcomes
from reference.sampling import enumerate_trajectories, exact_moments, sample_trajectories
from reference.testing.strategies_rollouts import RolloutBatch, rollout_batches
from reference.tolerance import discount_condition, tolerance, value_scale

V_MAX = 3.0


def batches() -> st.SearchStrategy[RolloutBatch]:
    """The public rollout strategy at this module's scales: T <= 10, B <= 4, |V| <= V_MAX."""
    return rollout_batches(max_steps=10, max_envs=4, value_scale=V_MAX)


def _tol(bt: RolloutBatch) -> float:
    """Sums of at most T terms of scale T (1 + 2 V_MAX) (module docstring)."""
    t = bt.shape[0]
    return tolerance(t * (1.0 + 2.0 * V_MAX), terms=t)


LAMS = [0.0, 0.3, 0.9, 0.95, 1.0]
lams = st.sampled_from(LAMS)


def _args(bt: RolloutBatch) -> tuple[FloatArray, FloatArray, FloatArray, np.ndarray, np.ndarray]:
    return bt.rewards, bt.values, bt.next_values, bt.terminated, bt.truncated


def _bootstrapped_returns(bt: RolloutBatch) -> FloatArray:
    """Independent loop: G_t = r_t + gamma * (0 | v_final | G_{t+1} | last_value), the MC return."""
    t_len, b_len = bt.rewards.shape
    g = np.zeros((t_len, b_len))
    for b in range(b_len):
        nxt = float(bt.last_value[b])
        for t in range(t_len - 1, -1, -1):
            if bt.terminated[t, b]:
                nxt = 0.0
            elif bt.truncated[t, b]:
                nxt = float(bt.v_final[t, b])
            g[t, b] = bt.rewards[t, b] + bt.gamma * nxt
            nxt = g[t, b]
    return g


def _residual_sums(delta: FloatArray, done: np.ndarray, c: float, k: int) -> FloatArray:
    """sum_{l < k ∧ m} c^l delta_{t+l}, stopping after the row that ends t's episode."""
    t_len, b_len = delta.shape
    out = np.zeros_like(delta)
    for b in range(b_len):
        for t in range(t_len):
            for l in range(min(k, t_len - t)):
                out[t, b] += c**l * delta[t + l, b]
                if done[t + l, b]:
                    break
    return out


# ------------------------------------------------------------------------------------ batches
@given(batches(), lams)
def test_TR_31_gae_recursion_matches_definitional_oracle(bt: RolloutBatch, lam: float) -> None:
    fast = gae(*_args(bt), gamma=bt.gamma, lam=lam)
    slow = gae_oracle(*_args(bt), gamma=bt.gamma, lam=lam)
    assert np.all(np.isfinite(fast)), "v_final leaked outside truncated rows"
    np.testing.assert_allclose(fast, slow, rtol=0, atol=_tol(bt))


@given(batches(), st.floats(-V_MAX, V_MAX).filter(lambda x: x != 0.0))
def test_TR_29_terminated_rows_ignore_whatever_next_value_they_are_given(bt: RolloutBatch, fill: float) -> None:
    """V(term) = 0 is applied by the functions themselves (MDP-11): a non-zero next value on a terminated row
    (what a rollout holds there: V of the reset state, or garbage) changes nothing. The batches of the strategy
    already hold 0 there, so without this test a residual that forgot the mask would pass (the audit's mutant)."""
    nv = np.where(bt.terminated, fill, bt.next_values)
    assert np.any(bt.terminated) or np.array_equal(nv, bt.next_values)
    np.testing.assert_array_equal(td_residuals(bt.rewards, bt.values, nv, bt.terminated, gamma=bt.gamma),
                                  td_residuals(bt.rewards, bt.values, bt.next_values, bt.terminated, gamma=bt.gamma))
    for lam in (0.0, 0.9, 1.0):
        np.testing.assert_array_equal(gae(bt.rewards, bt.values, nv, bt.terminated, bt.truncated, gamma=bt.gamma,
                                          lam=lam), gae(*_args(bt), gamma=bt.gamma, lam=lam))
    for k in (1, 3, None):
        np.testing.assert_array_equal(
            td_k_advantages(bt.rewards, bt.values, nv, bt.terminated, bt.truncated, gamma=bt.gamma, k=k),
            td_k_advantages(*_args(bt), gamma=bt.gamma, k=k))


@given(batches())
def test_TR_32_lambda_zero_is_the_td_residual(bt: RolloutBatch) -> None:
    delta = td_residuals(bt.rewards, bt.values, bt.next_values, bt.terminated, gamma=bt.gamma)
    np.testing.assert_array_equal(gae(*_args(bt), gamma=bt.gamma, lam=0.0), delta)
    np.testing.assert_allclose(td_k_advantages(*_args(bt), gamma=bt.gamma, k=1), delta, rtol=0, atol=_tol(bt))


@given(batches())
def test_TR_32_lambda_one_is_the_bootstrapped_mc_return_minus_v(bt: RolloutBatch) -> None:
    g = _bootstrapped_returns(bt)
    a1 = gae(*_args(bt), gamma=bt.gamma, lam=1.0)
    np.testing.assert_allclose(value_targets(a1, bt.values), g, rtol=0, atol=_tol(bt))
    np.testing.assert_allclose(td_k_advantages(*_args(bt), gamma=bt.gamma, k=None), g - bt.values,
                               rtol=0, atol=_tol(bt))


@given(batches(), st.integers(1, 12))
def test_TR_30_td_k_telescopes_into_residuals(bt: RolloutBatch, k: int) -> None:
    delta = td_residuals(bt.rewards, bt.values, bt.next_values, bt.terminated, gamma=bt.gamma)
    want = _residual_sums(delta, bt.done, bt.gamma, k)
    np.testing.assert_allclose(td_k_advantages(*_args(bt), gamma=bt.gamma, k=k), want, rtol=0, atol=_tol(bt))


@given(batches(), st.sampled_from([0.0, 0.3, 0.9, 0.95]))
def test_TR_31_gae_is_the_lambda_weighted_average_of_td_k(bt: RolloutBatch, lam: float) -> None:
    """E-62: for lam < 1 and an episode with m rows left, A^{TD(k)} = A^{TD(m)} for k >= m, so the series
    (1 - lam) sum_k lam^{k-1} A^{TD(k)} is the finite sum up to k = T with tail weight lam^{T-1}."""
    t_len = bt.rewards.shape[0]
    avg = np.zeros_like(bt.rewards)
    for k in range(1, t_len + 1):
        w = lam ** (k - 1) if k == t_len else (1.0 - lam) * lam ** (k - 1)
        avg += w * td_k_advantages(*_args(bt), gamma=bt.gamma, k=k)
    np.testing.assert_allclose(gae(*_args(bt), gamma=bt.gamma, lam=lam), avg, rtol=0,
                               atol=tolerance(t_len * (1.0 + 2.0 * V_MAX), terms=2 * t_len))


@given(batches(), lams, st.data())
def test_TR_29_episodes_do_not_leak_across_boundaries(bt: RolloutBatch, lam: float, data: st.DataObject) -> None:
    """Everything after a terminated or truncated row of a column leaves that row and earlier ones unchanged."""
    ends = np.argwhere(bt.done)
    if ends.size == 0:
        return
    t0, b = (int(x) for x in ends[data.draw(st.integers(0, len(ends) - 1))])
    base = gae(*_args(bt), gamma=bt.gamma, lam=lam)
    rng = np.random.default_rng(t0)
    r, v, lv = bt.rewards.copy(), bt.values.copy(), bt.last_value.copy()
    r[t0 + 1:, b] = rng.uniform(-1, 1, r.shape[0] - t0 - 1)
    v[t0 + 1:, b] = rng.uniform(-V_MAX, V_MAX, r.shape[0] - t0 - 1)
    lv[b] += 1.0
    nv = next_values_from_rollout(v, lv, bt.terminated, bt.truncated, bt.v_final)
    moved = gae(r, v, nv, bt.terminated, bt.truncated, gamma=bt.gamma, lam=lam)
    np.testing.assert_array_equal(moved[: t0 + 1, b], base[: t0 + 1, b])


def test_TR_29_truncation_bootstraps_the_final_state_and_termination_uses_zero() -> None:
    # B = 1, T = 3: step 0 truncated (final state value 10), step 1 terminated, step 2 rollout end.
    r = np.array([[1.0], [2.0], [3.0]])
    v = np.array([[0.5], [7.0], [0.25]])
    term = np.array([[False], [True], [False]])
    trunc = np.array([[True], [False], [False]])
    v_final = np.array([[10.0], [np.nan], [np.nan]])
    nv = next_values_from_rollout(v, np.array([4.0]), term, trunc, v_final)
    np.testing.assert_array_equal(nv, [[10.0], [0.0], [4.0]])
    a = gae(r, v, nv, term, trunc, gamma=0.5, lam=1.0)
    np.testing.assert_array_equal(a, [[1.0 + 5.0 - 0.5], [2.0 - 7.0], [3.0 + 2.0 - 0.25]])


def test_TR_29_bad_inputs_raise_named_errors() -> None:
    z = np.zeros((3, 2))
    f = np.zeros((3, 2), dtype=bool)
    with pytest.raises(ShapeError, match="values"):
        td_residuals(z, np.zeros((3, 1)), z, f, gamma=0.9)
    with pytest.raises(ShapeError, match="rewards"):
        gae(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3, dtype=bool), np.zeros(3, dtype=bool),
            gamma=0.9, lam=0.9)
    with pytest.raises(ReferenceError_, match="lam"):
        gae(z, z, z, f, f, gamma=0.9, lam=1.5)
    with pytest.raises(ReferenceError_, match="gamma"):
        gae(z, z, z, f, f, gamma=0.0, lam=0.5)
    with pytest.raises(ReferenceError_, match="k must be"):
        td_k_advantages(z, z, z, f, f, gamma=0.9, k=0)
    with pytest.raises(ReferenceError_, match="v_final"):
        next_values_from_rollout(z, np.zeros(2), f, ~f)
    with pytest.raises(ShapeError, match="last_value"):
        next_values_from_rollout(z, np.zeros(3), f, f)


# ------------------------------------------------------------------------- exact, on MDPs
def _policy(mdp: FiniteMDP, rng: np.random.Generator) -> FloatArray:
    pi = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states_plus)
    pi[mdp.term] = 1.0 / mdp.n_actions
    return np.asarray(pi, dtype=np.float64)


def _as_batch(mdp: FiniteMDP, v: FloatArray, traj_states: np.ndarray) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """Trajectories [N, H+1] -> values, next_values, terminated as [H, N] (padding rows: term, delta 0)."""
    boot = bootstrap_values(v, traj_states, term=mdp.term)  # V(s_t), 0 at term
    term = traj_states[:, 1:] == mdp.term
    return boot[:, :-1].T, boot[:, 1:].T, term.T


@pytest.mark.parametrize("gamma", [0.8, 0.95, 1.0])
@pytest.mark.parametrize("lam", LAMS)
@settings(max_examples=1)
@given(seed=st.integers(0, 2**32 - 1))
def test_TR_21_TR_33_TR_34_gae_and_td_k_unbiased_with_exact_values(seed: int, gamma: float, lam: float) -> None:
    """With V = V^pi: E[delta_0 | s, a] = A^pi(s, a), E[delta_l | s, a] = 0 (l >= 1), and every TD(k) and
    GAE(lam) is unbiased for A^pi(s, a). Conditioning on s_0 = s covers every t (Markov, layered MDP)."""
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=gamma, early_stop_prob=0.3)
    pi = _policy(mdp, rng)
    v = v_pi(mdp, pi)
    adv = a_pi(mdp, pi)
    h = 3
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            tr = enumerate_trajectories(mdp, pi, s0=s, a0=a)
            tol = tolerance(h * (1.0 + 2.0 * value_scale(1.0, gamma, h)), terms=h * tr.n,
                            condition=discount_condition(gamma, h))
            vals, nvals, term = _as_batch(mdp, v, tr.states)
            no_trunc = np.zeros_like(term)
            r = tr.rewards.T
            w = tr.weights
            delta = td_residuals(r, vals, nvals, term, gamma=gamma)
            assert abs(float(delta[0] @ w) - adv[s, a]) <= tol
            for row in delta[1:]:
                assert abs(float(row @ w)) <= tol
            g = gae(r, vals, nvals, term, no_trunc, gamma=gamma, lam=lam)
            assert abs(float(g[0] @ w) - adv[s, a]) <= tol
            boot = bootstrap_values(v, tr.states, term=mdp.term)
            for k in (1, 2, None):
                tdk = td_k_advantages(r, vals, nvals, term, no_trunc, gamma=gamma, k=k)
                assert abs(float(tdk[0] @ w) - adv[s, a]) <= tol
                # cross-check against the trajectory-major k-step Q estimates of reference.gradients
                q = k_step_q_estimates(tr.rewards, boot, tr.lengths, gamma=gamma, k=k)
                np.testing.assert_allclose(tdk[0], q[:, 0] - v[s], rtol=0, atol=tol)


@settings(max_examples=12)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.8, 0.95, 1.0]))
def test_TR_01_TR_02_telescoping_and_pdl_over_trajectories(seed: int, gamma: float) -> None:
    """J(pi') - J(pi) = E_{tau ~ pi'}[sum_t gamma^t delta_t^{V^pi}] = E_{tau ~ pi'}[sum_t gamma^t A^pi(s_t, a_t)]."""
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=gamma, early_stop_prob=0.3)
    pi, pi_new = _policy(mdp, rng), _policy(mdp, rng)
    v = v_pi(mdp, pi)
    adv = a_pi(mdp, pi)
    diff = j_pi(mdp, pi_new) - j_pi(mdp, pi)
    tr = enumerate_trajectories(mdp, pi_new)
    vals, nvals, term = _as_batch(mdp, v, tr.states)
    h = tr.horizon
    disc = gamma ** np.arange(h)
    delta = td_residuals(tr.rewards.T, vals, nvals, term, gamma=gamma)
    tol = tolerance(h * (1.0 + 2.0 * value_scale(1.0, gamma, h)), terms=h * tr.n,
                    condition=discount_condition(gamma, h))
    assert abs(float(disc @ delta @ tr.weights) - diff) <= tol  # TR-01
    a_t = np.where(tr.valid, adv[tr.states[:, :-1], tr.actions], 0.0)
    assert abs(float(tr.weights @ a_t @ disc) - diff) <= tol  # TR-02, trajectory form
    assert abs(performance_difference(mdp, pi_new, pi) - diff) <= tol


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), n_s=st.integers(1, 6), n_a=st.integers(2, 3))
def test_TR_02_performance_difference_identity_on_random_mdps(seed: int, n_s: int, n_a: int, gamma: float) -> None:
    """J(pi') - J(pi) = (1 / (1 - gamma)) E_{s ~ d^{pi'}_norm, a ~ pi'}[A^pi(s, a)] on cyclic random MDPs (two or
    three actions: with one, pi' = pi and the identity is 0 = 0, which half the examples were until 2026-12-07;
    every gamma is run, 0.99 included)."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, n_s, n_a, gamma=gamma, terminal_prob=0.2)
    pi, pi_new = _policy(mdp, rng), _policy(mdp, rng)
    diff = j_pi(mdp, pi_new) - j_pi(mdp, pi)
    d = discounted_occupancy(mdp, pi_new, normalized=True)
    pdl = float(np.sum(d[:, None] * pi_new * a_pi(mdp, pi))) / (1.0 - gamma)
    kappa = discount_condition(gamma)
    # A^pi has scale 2 R / (1 - gamma) and the 1 / (1 - gamma) factor (<= kappa) multiplies its error.
    tol = tolerance(2.0 * value_scale(mdp.max_abs_reward, gamma) * kappa, terms=n_s + 1, condition=kappa)
    assert abs(pdl - diff) <= tol
    assert abs(performance_difference(mdp, pi_new, pi) - diff) <= tol


# ------------------------------------------------------------------------- value regression (TR-11, E-57)
def test_TR_11_E_57_targets_start_at_t0_and_stop_at_each_episodes_end() -> None:
    """R_t^(i) = sum_{t'=t}^{T^(i)-1} gamma^{t'-t} r_t' for t = 0..T^(i)-1 (per-trajectory limits), and the
    loss (1/N) sum_i (1/T^(i)) sum_t (1/2) (V - R)^2 counts t = 0."""
    rng = np.random.default_rng(0)
    mdp = random_layered_mdp(rng, 4, 2, 2, gamma=0.9, early_stop_prob=0.3)
    tr = sample_trajectories(mdp, _policy(mdp, rng), rng=rng, n=40, horizon=4)
    assert len(set(tr.lengths.tolist())) > 1  # episodes of different lengths T^(i)
    ro = rollout_from_trajectories(mdp, tr, np.zeros(mdp.n_states_plus))
    tgt = reward_to_go_targets(ro.rewards, ro.terminated, ro.truncated, gamma=0.9)
    vals = rng.normal(size=mdp.n_states_plus)
    want_loss = 0.0
    for i in range(tr.n):
        t_i = int(tr.lengths[i])
        for t in range(t_i):
            want = sum(0.9 ** (u - t) * tr.rewards[i, u] for u in range(t, t_i))
            assert abs(tgt[t, i] - want) <= tolerance(4.0, terms=4)
        want_loss += float(np.mean([0.5 * (vals[tr.states[i, t]] - tgt[t, i]) ** 2 for t in range(t_i)])) / tr.n
    v_rows = np.where(ro.valid, vals[np.minimum(tr.states[:, :-1], mdp.term)].T, 0.0)
    # drop the padding rows: they are one-row term -> term episodes; keep only the valid prefix of each column
    loss = np.mean([value_regression_loss(v_rows[: tr.lengths[i], i:i + 1], tgt[: tr.lengths[i], i:i + 1],
                                          ro.terminated[: tr.lengths[i], i:i + 1],
                                          ro.truncated[: tr.lengths[i], i:i + 1]) for i in range(tr.n)])
    assert abs(float(loss) - want_loss) <= tolerance(50.0, terms=4 * tr.n)
    # the whole padded batch at once, with the valid mask: the same loss (unmasked, each padding row after a
    # termination would count as a one-row episode with loss 0, and the mean would shrink)
    masked = value_regression_loss(v_rows, tgt, ro.terminated, ro.truncated, ro.valid)
    assert abs(masked - want_loss) <= tolerance(50.0, terms=4 * tr.n)
    n_pad_runs = int((~ro.valid).sum())
    assert n_pad_runs > 0
    unmasked = value_regression_loss(v_rows, tgt, ro.terminated, ro.truncated)
    assert abs(unmasked - want_loss * tr.n / (tr.n + n_pad_runs)) <= tolerance(50.0, terms=4 * tr.n)


# ------------------------------------------------------------------------- TD(k) bias / variance (TR-22..TR-27)
def _conditional(mdp: FiniteMDP, pi: FloatArray, vphi: FloatArray, s: int, a: int, k: int | None,
                 gamma: float | None = None) -> tuple[float, float]:
    """Exact mean and variance of A_hat^{TD(k)}_0 given (s_0, a_0) = (s, a) (every trajectory enumerated)."""
    tr = enumerate_trajectories(mdp, pi, s0=s, a0=a)
    ro = rollout_from_trajectories(mdp, tr, vphi)
    g = mdp.gamma if gamma is None else gamma
    adv = td_k_advantages(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated, gamma=g, k=k)
    mom = exact_moments(adv[0], tr.weights)
    return float(mom.mean), mom.trace_variance


@settings(max_examples=10)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.8, 1.0]))
def test_TR_22_TR_23_bias_formula_and_rao_blackwell_ordering(seed: int, gamma: float) -> None:
    """E[A^{TD(k)} | s, a] = Q^pi(s, a) - V_phi(s) + gamma^k E[V_phi(s_k) - V^pi(s_k) | s, a] for any V_phi
    (TR-23); with V_phi = V^pi, Var(TD(1)) <= Var(TD(2)) <= Var(TD(3)) = Var(TD(inf)) (TR-22: the
    residuals are martingale differences, so variances add)."""
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=gamma, early_stop_prob=0.3, reward_outcomes=2)
    pi = _policy(mdp, rng)
    vpi = v_pi(mdp, pi)
    q = q_from_v_exact(mdp, pi)
    vphi = vpi + rng.normal(size=vpi.shape)
    tol = tolerance(3 * (1.0 + 2.0 * value_scale(1.0, gamma, 3) + 6.0), terms=3 * 64,
                    condition=discount_condition(gamma, 3))
    for k in (1, 2, None):
        bias = td_k_bias(mdp, pi, vphi, k=k)
        for s in range(mdp.n_states):
            for a in range(mdp.n_actions):
                mean, _ = _conditional(mdp, pi, vphi, s, a, k)
                assert abs(mean - (q[s, a] - vphi[s] + bias[s, a])) <= tol
        err = float(np.max(np.abs((vphi - vpi)[: mdp.n_states])))
        assert np.all(np.abs(bias) <= (gamma ** (k or 0) if k else 0.0) * err + tol)  # E-60's bound
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            v1, v2, vinf = (_conditional(mdp, pi, vpi, s, a, k)[1] for k in (1, 2, None))
            assert v1 <= v2 + tol and v2 <= vinf + tol


def q_from_v_exact(mdp: FiniteMDP, pi: FloatArray) -> FloatArray:
    return np.asarray(a_pi(mdp, pi) + v_pi(mdp, pi)[:, None], dtype=np.float64)


def test_TR_24_E_60_bias_need_not_shrink_with_k() -> None:
    """V_phi - V^pi = 0 on layer 1 and 1 on layer 2 (2-layer-deep MDP): bias_1 = 0 but bias_2 = gamma^2
    E[e(s_2)] > 0, so "smaller bias" for larger k is only the bound gamma^k ||e||."""
    rng = np.random.default_rng(5)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=0.9)
    pi = _policy(mdp, rng)
    e = np.zeros(mdp.n_states_plus)
    e[4:6] = 1.0  # layer 2 (states 4, 5); s_0 in layer 0
    vphi = v_pi(mdp, pi) + e
    b1, b2 = td_k_bias(mdp, pi, vphi, k=1), td_k_bias(mdp, pi, vphi, k=2)
    assert np.all(b1[:2] == 0.0)
    np.testing.assert_allclose(b2[:2], 0.81, rtol=0, atol=tolerance(1.0, terms=4))
    assert abs(_conditional(mdp, pi, vphi, 0, 0, 2)[0] - (q_from_v_exact(mdp, pi)[0, 0] - vphi[0] + 0.81)) <= \
        tolerance(10.0, terms=32)


def test_TR_25_E_61_variance_ordering_fails_with_a_wrong_value_function() -> None:
    """E-61: s0 -> s1 or s2 w.p. 1/2, all rewards 0, then term; V_phi(s1) = 10, V_phi(s2) = -10, V_phi(s0) = 0:
    Var(TD(1) | s0, a0) = 100 * gamma^2 > 0 = Var(TD(inf) | s0, a0)."""
    mdp = from_outcomes(3, 1, [0, 2, 3, 4], [1, 2, 3, 3], [0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 1.0, 1.0],
                        [1.0, 0.0, 0.0], gamma=1.0, name="E-61")
    pi = np.ones((4, 1))
    vphi = np.array([0.0, 10.0, -10.0, 0.0])
    _, var1 = _conditional(mdp, pi, vphi, 0, 0, 1)
    _, var_inf = _conditional(mdp, pi, vphi, 0, 0, None)
    assert var1 == 100.0 and var_inf == 0.0


def test_TR_27_artificial_gamma_biases_an_undiscounted_task() -> None:
    """Objective gamma = 1; estimator TD(inf) with gamma~ = 0.5 and V = V^pi: its mean differs from A^pi (bias),
    while gamma~ = 1 is exactly unbiased; the gamma~ < 1 variance is smaller here (measured)."""
    rng = np.random.default_rng(8)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=1.0, reward_outcomes=2)
    pi = _policy(mdp, rng)
    v = v_pi(mdp, pi)
    adv = a_pi(mdp, pi)
    tol = tolerance(3 * 7.0, terms=3 * 64, condition=discount_condition(1.0, 3))
    m1, var1 = _conditional(mdp, pi, v, 0, 0, None)
    mh, varh = _conditional(mdp, pi, v, 0, 0, None, gamma=0.5)
    assert abs(m1 - adv[0, 0]) <= tol
    assert abs(mh - adv[0, 0]) > 1e3 * tol
    assert varh < var1


@pytest.mark.parametrize("gamma", [0.8, 1.0])
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9, 1.0])
@settings(max_examples=2)
@given(seed=st.integers(0, 2**32 - 1))
def test_TR_35_gae_bias_formula_vanishes_at_lambda_one(seed: int, gamma: float, lam: float) -> None:
    """E[A^{GAE} | s, a] = Q^pi - V_phi(s) + gamma (1 - lam) E[((I - gamma lam P)^{-1} e)(s_1)]: exact by
    enumeration; 0 at lam = 1; |bias| <= gamma (1 - lam) / (1 - gamma lam) ||e||, decreasing in lam."""
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=gamma, early_stop_prob=0.3)
    pi = _policy(mdp, rng)
    vpi = v_pi(mdp, pi)
    vphi = vpi + rng.normal(size=vpi.shape)
    q = q_from_v_exact(mdp, pi)
    bias = gae_bias(mdp, pi, vphi, lam=lam)
    tol = tolerance(3 * (1.0 + 2.0 * value_scale(1.0, gamma, 3) + 6.0), terms=3 * 64,
                    condition=discount_condition(gamma, 3))
    for s in range(mdp.n_states):
        tr = enumerate_trajectories(mdp, pi, s0=s, a0=0)
        ro = rollout_from_trajectories(mdp, tr, vphi)
        g = gae(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated, gamma=gamma, lam=lam)
        assert abs(float(g[0] @ tr.weights) - (q[s, 0] - vphi[s] + bias[s, 0])) <= tol
    err = float(np.max(np.abs((vphi - vpi)[: mdp.n_states])))
    bound = gamma * (1 - lam) / (1 - gamma * lam) * err if gamma * lam < 1 else 0.0
    assert np.all(np.abs(bias) <= bound + tol)
    if lam == 1.0:
        assert np.all(bias == 0.0)


# --- found by the mutation audit of 2026-12-06: inputs the property tests never generated -----------------
def test_open_choice_13_termination_wins_over_truncation_and_needs_no_v_final() -> None:
    """A row both terminated and truncated bootstraps 0 (termination wins), so it needs no V(final obs):
    v_final may be omitted. Dropping the ``& ~terminated`` would ask for v_final (or bootstrap it)."""
    both = np.array([[True], [False]])
    nv = next_values_from_rollout(np.array([[1.0], [2.0]]), np.array([3.0]), both, both)
    np.testing.assert_array_equal(nv, [[0.0], [3.0]])


def test_TR_29_rollout_flags_truncation_on_the_last_row_of_a_cut_trajectory() -> None:
    """rollout_from_trajectories marks truncated exactly at row length - 1 of each trajectory cut at the
    horizon and nowhere else (downstream values alone cannot see this flag when truncation is the last row)."""
    rng = np.random.default_rng(0)
    mdp = random_layered_mdp(rng, 4, 2, 2, gamma=0.9, early_stop_prob=0.3)
    tr = sample_trajectories(mdp, np.full((mdp.n_states_plus, 2), 0.5), rng=rng, n=40, horizon=2)
    assert tr.truncated.any() and tr.terminated.any()
    ro = rollout_from_trajectories(mdp, tr, np.zeros(mdp.n_states_plus))
    want = np.zeros_like(ro.truncated)
    for i in np.flatnonzero(tr.truncated & (tr.lengths > 0)):
        want[tr.lengths[i] - 1, i] = True
    np.testing.assert_array_equal(ro.truncated, want)
    assert not np.any(ro.truncated & ro.terminated)


def test_TR_29_flags_other_than_0_and_1_are_refused() -> None:
    z = np.zeros((3, 2))
    f = np.zeros((3, 2), dtype=bool)
    with pytest.raises(ReferenceError_, match="boolean"):
        gae(z, z, z, np.full((3, 2), 2), f, gamma=0.9, lam=0.9)
    with pytest.raises(ReferenceError_, match="boolean"):
        gae(z, z, z, f, np.full((3, 2), -1), gamma=0.9, lam=0.9)


# --- found by the black-box review (F9, F11) -----------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the TD(k) sum overflows, then raises
def test_TR_29_residual_of_huge_values_is_exact_and_an_overflow_raises() -> None:
    """r = V(s) = V(s') = 1e308, gamma = 1: delta = 1e308 exactly (r - V(s) first), where r + gamma V(s')
    overflowed to inf and was returned. A result that truly overflows raises (td_residuals, TD(k), GAE),
    as the torch twins in scalable.core.advantages do, instead of returning inf."""
    one = np.array([[1e308]])
    f = np.array([[False]])
    assert td_residuals(one, one, one, f, gamma=1.0)[0, 0] == 1e308
    with pytest.raises(ReferenceError_, match=r"TD residual delta overflows at row \(t, b\) = \(0, 0\)"):
        td_residuals(one, -one, one, f, gamma=1.0)
    with pytest.raises(ReferenceError_, match=r"TD\(k\) advantage overflows"):
        td_k_advantages(one, -one, one, f, f, gamma=1.0, k=1)
    r2, z2, f2 = np.full((2, 1), 1e308), np.zeros((2, 1)), np.zeros((2, 1), dtype=bool)
    with pytest.raises(ReferenceError_, match="GAE advantage overflows"):
        gae(r2, z2, z2, f2, f2, gamma=1.0, lam=1.0)  # each delta is 1e308, their sum 2e308 is not a float


@pytest.mark.parametrize("lam", ["0.5", True, np.bool_(True), None, [0.5]])
def test_TR_31_lam_must_be_a_real_number(lam: object) -> None:
    """float(lam) accepted "0.5" and True (as 0.5 and 1.0); gae and gae_bias refuse them, naming lam."""
    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9)
    pi = np.full((4, 2), 0.5)
    z, f = np.zeros((2, 1)), np.zeros((2, 1), dtype=bool)
    with pytest.raises(ReferenceError_, match="lam must be a real number"):
        gae(z, z, z, f, f, gamma=0.9, lam=lam)  # type: ignore[arg-type]
    with pytest.raises(ReferenceError_, match="lam must be a real number"):
        gae_bias(mdp, pi, np.zeros(4), lam=lam)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(4))
def test_TR_21_TR_29_truncated_rollouts_are_unbiased_at_every_step_on_cyclic_mdps(seed: int) -> None:
    """Time-limit truncation bootstraps from the true final state (TR-29, open choice 13): on cyclic MDPs cut at
    horizons H = 1, 2, 4 (every trajectory enumerated, so the expectation is exact), with V = V^pi every TD(k)
    (k = 1, 2, 3, inf) and GAE(lam) (lam = 0, 0.5, 1) built by rollout_from_trajectories is unbiased for
    A^pi(s, a) at *every* step t, conditionally on (s_t, a_t) = (s, a): rows cut by the horizon and rows that
    terminate mix in each conditional mean. (The layered-MDP tests above use full episodes and t = 0 only, so a
    truncation bootstrap from the wrong state, or none, passed them.) Tolerance: the sums of at most H terms of
    size R + 2 max|V| over the enumerated batch, conditioned by the linear solve of V^pi."""
    rng = np.random.default_rng(seed)
    gamma = (0.9, 0.5, 0.99, 0.8)[seed]
    mdp = random_mdp(rng, 3, 2, gamma=gamma, branching=2, terminal_prob=0.3, reward_outcomes=2)
    pi = rng.dirichlet(np.ones(2), size=mdp.n_states_plus)
    v = v_pi(mdp, pi)
    adv = a_pi(mdp, pi)
    for h in (1, 2, 4):
        for s0 in range(mdp.n_states):
            for a0 in range(mdp.n_actions):
                tr = enumerate_trajectories(mdp, pi, horizon=h, s0=s0, a0=a0)
                ro = rollout_from_trajectories(mdp, tr, v)
                assert ro.truncated.any() or h >= 4  # some rows are cut by the horizon
                tol = tolerance(h * (mdp.max_abs_reward + 2.0 * float(np.max(np.abs(v)))), terms=h * tr.n,
                                condition=discount_condition(gamma))
                ests = [td_k_advantages(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated,
                                        gamma=gamma, k=k) for k in (1, 2, 3, None)]
                ests += [gae(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated, gamma=gamma,
                             lam=lam) for lam in (0.0, 0.5, 1.0)]
                for t in range(h):
                    for s in range(mdp.n_states):
                        for a in range(mdp.n_actions):
                            m = (tr.states[:, t] == s) & (tr.actions[:, t] == a) & tr.valid[:, t]
                            if not m.any():
                                continue
                            w = tr.weights[m] / tr.weights[m].sum()
                            for est in ests:
                                assert abs(float(w @ est[t, m]) - adv[s, a]) <= tol, (h, t, s, a)
