"""Tests of reference.policy_advantage: I(pi; pi_k), its IS form, the optimality theorem (E-65) and PI.

Tolerances: I is a sum of |S| occupancy-weighted advantages, scale 2 R / (1 - gamma) times
1 / (1 - gamma) (kappa bounds both), as in tests/reference/test_advantages.py. Trajectory forms enumerate
every trajectory of small layered MDPs. The statistical check uses |mu_hat - mu| <= 4 sigma_hat / sqrt(n)
with a fixed seed (open choice 22).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.advantages import rollout_from_trajectories, td_k_advantages
from reference.dp import policy_iteration, v_star
from reference.errors import InvalidPolicyError
from reference.exact import a_pi, v_pi
from reference.generators import random_layered_mdp, random_mdp
from reference.mdp import FiniteMDP, FloatArray, deterministic_policy, from_arrays, from_outcomes
from reference.policy_advantage import max_policy_advantage, policy_advantage, policy_advantage_step
from reference.sampling import enumerate_trajectories, sample_trajectories
from reference.tolerance import discount_condition, tolerance, value_scale
from reference.trust_region import is_surrogate_terms


def _policy(mdp: FiniteMDP, rng: np.random.Generator) -> FloatArray:
    pi = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states_plus)
    pi[mdp.term] = 1.0 / mdp.n_actions
    return np.asarray(pi, dtype=np.float64)


def _tol(mdp: FiniteMDP, horizon: int | None = None) -> float:
    h = horizon if horizon is not None else mdp.n_states + 1
    kappa = discount_condition(mdp.gamma, h)
    return tolerance(2.0 * value_scale(max(mdp.max_abs_reward, 1.0), mdp.gamma, h) * kappa,
                     terms=mdp.n_states + 1, condition=kappa)


def _log_probs(pi: FloatArray, states: np.ndarray, actions: np.ndarray, term: int) -> FloatArray:
    return np.asarray(np.log(pi[np.minimum(states[:, :-1], term), actions]).T, dtype=np.float64)


@settings(max_examples=12)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.8, 1.0]))
def test_TR_38_TR_42_definition_and_is_identity_by_enumeration(seed: int, gamma: float) -> None:
    """I(pi; pi_k) = E_{tau~pi_k, a'~pi}[sum gamma^t A^{pi_k}(s_t, a'_t)]
    = E_{tau~pi_k}[sum gamma^t pi/pi_k (a_t|s_t) A^{pi_k}(s_t, a_t)] (exact, every trajectory)."""
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=gamma, early_stop_prob=0.3)
    pi, pk = _policy(mdp, rng), _policy(mdp, rng)
    adv = a_pi(mdp, pk)
    tr = enumerate_trajectories(mdp, pk)
    s = np.minimum(tr.states[:, :-1], mdp.term)
    disc = gamma ** np.arange(tr.horizon)
    # the solve of policy_advantage (_tol) plus the direct sum: tr.n weighted terms (weights summing to 1) of at
    # most H discounted steps, each bounded by the value scale
    tol = _tol(mdp, 3) + tolerance(value_scale(max(mdp.max_abs_reward, 1.0), gamma, 3), terms=tr.n + tr.horizon)
    direct = float(tr.weights @ (np.where(tr.valid, np.sum(pi * adv, axis=1)[s], 0.0) @ disc))
    value = policy_advantage(mdp, pi, pk)
    assert abs(direct - value) <= tol
    ro = rollout_from_trajectories(mdp, tr, np.zeros(mdp.n_states_plus))
    a_t = np.where(ro.valid, adv[s, tr.actions].T, 0.0)
    terms = is_surrogate_terms(_log_probs(pi, tr.states, tr.actions, mdp.term),
                               _log_probs(pk, tr.states, tr.actions, mdp.term), a_t, ro.valid, gamma=gamma)
    assert abs(float(tr.weights @ terms) - value) <= tol


@settings(max_examples=30)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.5, 0.9, 0.99]))
def test_TR_39_policy_advantage_of_pi_k_over_itself_is_zero(seed: int, gamma: float) -> None:
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 4, 3, gamma=gamma, terminal_prob=0.1)
    pk = _policy(mdp, rng)
    assert abs(policy_advantage(mdp, pk, pk)) <= _tol(mdp)


@settings(max_examples=25)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.5, 0.9]))
def test_TR_40_TR_41_optimal_iff_max_policy_advantage_is_zero_and_pi_is_argmax(seed: int, gamma: float) -> None:
    """Full-support p0 (random_mdp draws p0 ~ Dirichlet(1), so d^{pi}(s) > 0 for all s): pi* gives
    max I = 0 and every non-optimal deterministic pi_k gives max I > 0. The PI step is argmax_pi I:
    I(greedy; pi_k) = max I >= I(pi; pi_k) for random pi, and the argmax sequence is PI's."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 4, 3, gamma=gamma)
    assert np.all(mdp.p0[: mdp.n_states] > 0)
    tol = _tol(mdp)
    pi_res = policy_iteration(mdp)
    vs = v_star(mdp)
    for k, pol in enumerate(pi_res.policies):
        pk = deterministic_policy(pol, mdp.n_actions)
        m = max_policy_advantage(mdp, pk)
        if float(np.max(vs - v_pi(mdp, pk))) <= tol:
            assert abs(m) <= tol
        else:
            assert m > tol
        greedy = policy_advantage_step(mdp, pk, current=pol)
        assert abs(policy_advantage(mdp, deterministic_policy(greedy, mdp.n_actions), pk) - m) <= tol
        assert policy_advantage(mdp, _policy(mdp, rng), pk) <= m + tol
        if k + 1 < len(pi_res.policies):
            nxt = greedy.copy()
            nxt[mdp.term] = pol[mdp.term]
            np.testing.assert_array_equal(nxt, pi_res.policies[k + 1])


def _e65_mdp(p0: list[float]) -> FiniteMDP:
    """E-65: s0 --a--> s1 (r = 0), s0 --b--> term (r = 0); s1: action 0 -> term r = 0, action 1 -> term r = 1."""
    return from_outcomes(2, 2, [0, 1, 2, 3, 4], [1, 2, 2, 2], [0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], p0,
                         gamma=0.9, name="E-65")


def test_TR_40_E_65_counterexample_without_full_visitation() -> None:
    """pi_k plays b at s0 and the r = 0 action at s1: max I = 0, yet V^{pi_k}(s0) = 0 < gamma = V*(s0).
    With p0 of full support the same pi_k has max I > 0 (the corrected theorem)."""
    pk = deterministic_policy(np.array([1, 0, 0]), 2)
    mdp = _e65_mdp([1.0, 0.0])
    assert max_policy_advantage(mdp, pk) == 0.0
    assert v_pi(mdp, pk)[0] == 0.0 and abs(v_star(mdp)[0] - 0.9) <= _tol(mdp)
    full = _e65_mdp([0.5, 0.5])
    assert max_policy_advantage(full, pk) >= 0.5 - _tol(full)  # d(s1) = 0.5, max_a A(s1, a) = 1


def test_TR_43_is_estimate_of_policy_advantage_with_unbiased_advantages() -> None:
    """I_hat with A_hat = TD(inf) (MC return - V^{pi_k}(s_t), unbiased) from n = 200 000 sampled trajectories:
    |I_hat - I| <= 4 sigma_hat / sqrt(n) (two-sided normal tail 6e-5 at n this large). The test must also be able
    to see a wrong estimator: pi_k is mixed half with the uniform policy, so the ratios pi / pi_k stay below 6,
    and the radius must be under a tenth of |I| (with n = 4000 and unbounded ratios it was 90 % of |I|, and
    I_hat without the gamma^t weights, 22 % off, passed; review 2026-12-07)."""
    rng = np.random.default_rng(14)
    mdp = random_layered_mdp(rng, 3, 2, 3, gamma=0.9, early_stop_prob=0.2)
    pk = 0.5 * _policy(mdp, rng) + 0.5 / mdp.n_actions
    pi = _policy(mdp, rng)
    tr = sample_trajectories(mdp, pk, rng=np.random.default_rng(13), n=200_000, horizon=3)
    assert not np.any(tr.truncated)
    ro = rollout_from_trajectories(mdp, tr, v_pi(mdp, pk))
    adv = td_k_advantages(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.truncated, gamma=0.9, k=None)
    terms = is_surrogate_terms(_log_probs(pi, tr.states, tr.actions, mdp.term),
                               _log_probs(pk, tr.states, tr.actions, mdp.term), adv, ro.valid, gamma=0.9)
    exact = policy_advantage(mdp, pi, pk)
    radius = 4.0 * float(terms.std(ddof=1)) / np.sqrt(terms.size)
    assert radius < 0.1 * abs(exact)
    assert abs(float(terms.mean()) - exact) <= radius


# --- found by the mutation audit of 2026-12-06 -------------------------------------------------------------
def test_TR_41_policy_advantage_step_keeps_the_current_action_on_ties() -> None:
    """Two identical actions everywhere: every action is greedy, and ``current`` must be kept."""
    P = np.zeros((2, 2, 3))
    P[0, :, 1] = P[1, :, 2] = 1.0
    mdp = from_arrays(P, np.ones((2, 2)), [1.0, 0.0], gamma=0.9)
    pi_k = np.full((3, 2), 0.5)
    np.testing.assert_array_equal(policy_advantage_step(mdp, pi_k)[:2], [0, 0])
    np.testing.assert_array_equal(policy_advantage_step(mdp, pi_k, current=np.array([1, 1, 0]))[:2], [1, 1])


def test_TR_38_policy_advantage_refuses_a_non_distribution() -> None:
    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9)
    bad = np.full((mdp.n_states_plus, 2), 0.7)  # rows sum to 1.4
    with pytest.raises(InvalidPolicyError):
        policy_advantage(mdp, bad, np.full((mdp.n_states_plus, 2), 0.5))


# --- found by the mutation audit (2026-12-08, second pass) --------------------------------------------------------
@pytest.mark.parametrize("c", [1.0, 2.0**-60, 2.0**40])
def test_TR_41_policy_advantage_step_uses_the_mdps_relative_tie_window(c: float) -> None:
    """One state, two actions ending the episode with rewards c and c (1 + 2^-40), so Q^{pi_k}(s, a) = r_a
    exactly (V(term) = 0). Open choice 1: a is a maximiser when within rho max(sigma, |q|) = rho c (1 + 2^-40)
    of the best, with rho = mdp.tie_rtol (about 2.7e-15 here) and sigma(s, a) = |r_a|. The gap c 2^-40
    exceeds that window at every scale c > 0, so the better action 1 must be chosen: a window of the bare
    default rho = 1e-12 (a tie at c = 1) or of absolute scale 1 (a tie at c = 2^-60) picks action 0."""
    r = [c, c * (1.0 + 2.0**-40)]
    mdp = from_outcomes(1, 2, [0, 1, 2], [1, 1], r, [1.0, 1.0], [1.0], gamma=0.5, name="near-tie")
    assert r[1] - r[0] > mdp.tie_rtol * r[1]  # the gap is outside the window: action 1 is the unique maximiser
    pi_k = np.full((2, 2), 0.5)
    assert int(policy_advantage_step(mdp, pi_k)[0]) == 1
    assert int(policy_advantage_step(mdp, pi_k, current=np.array([0, 0]))[0]) == 1
