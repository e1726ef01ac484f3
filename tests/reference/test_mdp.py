"""MDP-01..MDP-11, MDP-17..MDP-25: the finite MDP, validation, exact V^pi / Q^pi and their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import exact
from reference.chains import chain_structure
from reference.errors import (
    InvalidDiscountError,
    InvalidMDPError,
    InvalidPolicyError,
    ReferenceError_,
    ShapeError,
)
from reference.generators import positive_cycle_mdp, random_layered_mdp, random_mdp
from reference.mdp import (
    PROB_ATOL,
    FiniteMDP,
    deterministic_policy,
    from_arrays,
    from_outcomes,
    from_toy_text_P,
    softmax_policy,
    uniform_policy,
    validate_policy,
)
from reference.sampling import discounted_returns, enumerate_trajectories, sample_trajectories
from reference.testing.oracles import expectation_by_outcomes, q_values_by_solve, value_tolerance
from reference.testing.strategies import finite_mdps, policies
from reference.tolerance import counted_tolerance, discount_condition, tolerance, value_scale

# ------------------------------------------------------------------------------ validation


def _two_state_arrays() -> tuple[np.ndarray, np.ndarray]:
    P = np.zeros((2, 2, 3))
    P[0, 0] = [0.5, 0.5, 0.0]
    P[0, 1] = [0.0, 0.0, 1.0]
    P[1, 0] = [1.0, 0.0, 0.0]
    P[1, 1] = [0.0, 0.2, 0.8]
    R = np.array([[1.0, 0.0], [-1.0, 2.0]])
    return P, R


def test_MDP_04_row_not_summing_to_one_names_state_and_action() -> None:
    P, R = _two_state_arrays()
    P[1, 1] = [0.0, 0.2, 0.7]
    with pytest.raises(InvalidMDPError, match=r"s=1, a=1\) sums to 0\.9"):
        from_arrays(P, R, gamma=0.9)


def test_MDP_04_negative_probability_is_rejected() -> None:
    P, R = _two_state_arrays()
    P[0, 0] = [1.5, -0.5, 0.0]
    with pytest.raises(InvalidMDPError, match=r"s=0, a=0\).*negative"):
        from_arrays(P, R, gamma=0.9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_MDP_04_non_finite_reward_is_rejected(bad: float) -> None:
    P, R = _two_state_arrays()
    R[1, 0] = bad
    with pytest.raises(InvalidMDPError, match=r"s=1, a=0\).*non-finite reward"):
        from_arrays(P, R, gamma=0.9)


@pytest.mark.parametrize("gamma", [0.0, -0.1, 1.0000001, 2.0, np.nan])
def test_MDP_18_gamma_outside_range_is_rejected(gamma: float) -> None:
    P, R = _two_state_arrays()
    with pytest.raises(InvalidDiscountError, match="gamma must lie in"):
        from_arrays(P, R, gamma=gamma)


def test_MDP_04_shape_mismatch_is_rejected() -> None:
    P, _R = _two_state_arrays()
    with pytest.raises(ShapeError):
        from_arrays(P, np.zeros((4, 2)), gamma=0.9)
    with pytest.raises(ShapeError):
        from_arrays(np.zeros((2, 2, 4)), np.zeros((2, 2)), gamma=0.9)
    with pytest.raises(ShapeError):
        from_arrays(P, np.zeros((2, 2)), [0.5, 0.25, 0.25, 0.0], gamma=0.9)


def test_MDP_07_policy_row_off_simplex_is_rejected() -> None:
    P, R = _two_state_arrays()
    mdp = from_arrays(P, R, gamma=0.9)
    with pytest.raises(InvalidPolicyError, match=r"s=1\)"):
        validate_policy(mdp, [[1.0, 0.0], [0.6, 0.6], [0.5, 0.5]])
    with pytest.raises(InvalidPolicyError, match=r"s=0\)"):
        validate_policy(mdp, [[1.2, -0.2], [0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(InvalidPolicyError, match="action 5"):
        deterministic_policy([0, 5, 0], 2)
    # errors are both ReferenceError_ and ValueError
    assert issubclass(InvalidPolicyError, ReferenceError_) and issubclass(InvalidPolicyError, ValueError)


def test_MDP_04_next_state_out_of_range_and_empty_row() -> None:
    with pytest.raises(InvalidMDPError, match="next state 7"):
        from_outcomes(1, 1, [0, 1], [7], [0.0], [1.0], [1.0], gamma=0.5)
    with pytest.raises(InvalidMDPError, match="no outcome"):
        from_outcomes(1, 2, [0, 1, 1], [1], [0.0], [1.0], [1.0], gamma=0.5)


# ----------------------------------------------------------------------------- structure


@given(finite_mdps())
def test_MDP_11_term_is_absorbing_with_zero_reward(mdp: FiniteMDP) -> None:
    t = mdp.term
    assert t == mdp.n_states
    for a in range(mdp.n_actions):
        probs, rewards, nexts = mdp.outcomes(t, a)
        assert np.all(nexts == t) and np.all(rewards == 0.0) and probs.sum() == 1.0
    assert np.all(mdp.P[t, :, t] == 1.0) and np.all(mdp.r[t] == 0.0)


@given(finite_mdps())
def test_MDP_04_kernel_rows_are_distributions(mdp: FiniteMDP) -> None:
    sums = mdp.P.sum(axis=2)
    assert np.all(mdp.P >= 0)
    assert np.max(np.abs(sums - 1.0)) <= tolerance(1.0, terms=mdp.n_states_plus)


@given(finite_mdps())
def test_MDP_05_expected_reward_is_mean_of_joint_kernel(mdp: FiniteMDP) -> None:
    zero = np.zeros(mdp.n_states_plus)
    np.testing.assert_allclose(mdp.r, expectation_by_outcomes(mdp, zero), rtol=0,
                               atol=tolerance(mdp.max_abs_reward, terms=mdp.prob.size))


@given(finite_mdps(families=("dense", "sparse"), p0_on_term=False), st.integers(0, 2**31))
def test_MDP_03_no_transition_to_term_means_T_is_infinite(mdp: FiniteMDP, seed: int) -> None:
    # Exact: no state reaches term under any policy (take the union graph over actions) ...
    union = mdp.transition_dense.reshape(mdp.n_states_plus, mdp.n_actions, -1).sum(axis=1)
    cs = chain_structure(union, mdp.term)
    assert not cs.reaches_term[: mdp.n_states].any()
    # ... so every sampled trajectory is truncated, never terminated.
    tr = sample_trajectories(mdp, uniform_policy(mdp), rng=np.random.default_rng(seed), n=50, horizon=30)
    assert not tr.terminated.any() and np.all(tr.lengths == 30)


@given(finite_mdps(), st.data())
def test_MDP_19_return_is_bounded_by_R_over_1_minus_gamma(mdp: FiniteMDP, data: st.DataObject) -> None:
    pi = data.draw(policies(mdp))
    bound = value_scale(mdp.max_abs_reward, mdp.gamma)
    assert bound == mdp.max_abs_reward / (1.0 - mdp.gamma)
    v = exact.v_pi(mdp, pi)
    assert np.max(np.abs(v)) <= bound + value_tolerance(mdp)
    tr = sample_trajectories(mdp, pi, rng=np.random.default_rng(0), n=20, horizon=50)
    g0 = discounted_returns(tr.rewards, mdp.gamma)[:, 0]
    assert np.max(np.abs(g0)) <= bound * (1 + tolerance(1.0, terms=50))


@given(finite_mdps(), st.data())
def test_MDP_20_21_values_at_term_are_zero(mdp: FiniteMDP, data: st.DataObject) -> None:
    pi = data.draw(policies(mdp))
    assert exact.v_pi(mdp, pi)[mdp.term] == 0.0
    assert np.all(exact.q_pi(mdp, pi)[mdp.term] == 0.0)


@given(finite_mdps(), st.data())
def test_MDP_22_v_is_policy_average_of_q(mdp: FiniteMDP, data: st.DataObject) -> None:
    """V^pi = E_{a ~ pi}[Q^pi], with Q^pi from its own |S||A| linear system (``q_values_by_solve``), not from
    V^pi: ``exact.q_pi`` is ``q_from_v(v_pi)``, so averaging it would only re-check the Bellman equation."""
    pi = data.draw(policies(mdp))
    v, q = exact.v_pi(mdp, pi), exact.q_pi(mdp, pi)
    q_oracle = q_values_by_solve(mdp, pi)
    tol = value_tolerance(mdp)
    np.testing.assert_allclose(v, (pi * q_oracle).sum(axis=1), rtol=0, atol=tol)
    np.testing.assert_allclose(q, q_oracle, rtol=0, atol=tol)


@given(finite_mdps(), st.data())
def test_MDP_24_one_step_property_of_v(mdp: FiniteMDP, data: st.DataObject) -> None:
    """V^pi(s) = E_{a ~ pi, (r, s') ~ p}[r + gamma V^pi(s')], computed by a loop over outcomes."""
    pi = data.draw(policies(mdp))
    v = exact.v_pi(mdp, pi)
    rhs = (pi * expectation_by_outcomes(mdp, v)).sum(axis=1)
    np.testing.assert_allclose(v, rhs, rtol=0, atol=value_tolerance(mdp))


@given(finite_mdps(), st.data())
def test_MDP_25_one_step_property_of_q(mdp: FiniteMDP, data: st.DataObject) -> None:
    """Q^pi(s, a) = E_{(r, s') ~ p, a' ~ pi}[r + gamma Q^pi(s', a')], by a loop over outcomes."""
    pi = data.draw(policies(mdp))
    q = exact.q_pi(mdp, pi)
    rhs = expectation_by_outcomes(mdp, (pi * q).sum(axis=1))
    np.testing.assert_allclose(q, rhs, rtol=0, atol=value_tolerance(mdp))


@given(finite_mdps(families=("layered",), gamma=None, min_gamma=0.3, max_gamma=1.0), st.data())
def test_MDP_20_v_pi_equals_expected_return_over_all_trajectories(mdp: FiniteMDP, data: st.DataObject) -> None:
    """Exact oracle: V^pi(s) = sum over every trajectory from s of p(tau) G_0(tau), also at gamma = 1."""
    pi = data.draw(policies(mdp))
    v = exact.v_pi(mdp, pi)
    q = exact.q_pi(mdp, pi)
    horizon = float(mdp.n_states)  # layered: T <= number of layers <= |S|
    tol = value_tolerance(mdp, horizon=horizon)
    for s in range(mdp.n_states):
        tr = enumerate_trajectories(mdp, pi, s0=s)
        assert tr.terminated.all()
        g0 = discounted_returns(tr.rewards, mdp.gamma)[:, 0]
        assert abs(tr.weights @ g0 - v[s]) <= tol
        a = int(np.argmax(pi[s]))
        tra = enumerate_trajectories(mdp, pi, s0=s, a0=a)
        assert abs(tra.weights @ discounted_returns(tra.rewards, mdp.gamma)[:, 0] - q[s, a]) <= tol
    tr0 = enumerate_trajectories(mdp, pi)
    assert abs(tr0.weights @ discounted_returns(tr0.rewards, mdp.gamma)[:, 0] - exact.j_pi(mdp, pi)) <= tol


@given(st.integers(0, 2**31), st.integers(1, 3), st.floats(0.3, 1.0))
def test_MDP_23_time_shift_by_stationarity(seed: int, t: int, gamma: float) -> None:
    """E^pi[G_t | s_t = s] = V^pi(s) and E^pi[G_t | s_t = s, a_t = a] = Q^pi(s, a), exactly, from the
    enumeration of all trajectories (layered MDP)."""
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 4, 2, 2, gamma=gamma, reward_outcomes=2)
    pi = softmax_policy(rng.normal(size=(mdp.n_states_plus, 2)))
    v, q = exact.v_pi(mdp, pi), exact.q_pi(mdp, pi)
    tr = enumerate_trajectories(mdp, pi)
    g = discounted_returns(tr.rewards, gamma)
    tol = value_tolerance(mdp, horizon=4.0)
    for s in np.unique(tr.states[:, t]):
        if s == mdp.term:
            continue
        at = tr.states[:, t] == s
        cond = (tr.weights[at] @ g[at, t]) / tr.weights[at].sum()
        assert abs(cond - v[s]) <= tol
        for a in np.unique(tr.actions[at, t]):
            at_a = at & (tr.actions[:, t] == a)
            cond_q = (tr.weights[at_a] @ g[at_a, t]) / tr.weights[at_a].sum()
            assert abs(cond_q - q[s, a]) <= tol


@given(st.integers(0, 2**31), st.integers(1, 3), st.floats(0.3, 0.5))
def test_MDP_23_time_shift_on_a_cyclic_mdp(seed: int, t: int, gamma: float) -> None:
    """E^pi[G_t | s_t = s] = V^pi(s) where s is reachable at several times t (a cyclic MDP, which the layered
    test above cannot give). Oracle: every trajectory up to H = 9 steps, enumerated exactly; G_t is cut at H, so
    the bound is the tail gamma^{H-t} R / (1 - gamma) plus value_tolerance for the rounding. (One successor per
    (s, a) besides term keeps the enumeration at <= 4^9 paths; the policy still mixes the cycles.)"""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, 3, 2, gamma=gamma, branching=1, terminal_prob=0.1)
    pi = softmax_policy(rng.normal(size=(mdp.n_states_plus, 2)))
    v = exact.v_pi(mdp, pi)
    horizon = 9
    tr = enumerate_trajectories(mdp, pi, horizon=horizon)
    g = discounted_returns(tr.rewards, gamma)
    tail = gamma ** (horizon - t) * mdp.max_abs_reward / (1 - gamma)
    tol = tail + value_tolerance(mdp, horizon=float(horizon))
    for s in np.unique(tr.states[:, t]):
        if s == mdp.term:
            continue
        at = tr.states[:, t] == s
        cond = (tr.weights[at] @ g[at, t]) / tr.weights[at].sum()
        assert abs(cond - v[s]) <= tol


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9, 0.999])
def test_MDP_19_the_bound_is_attained_by_a_constant_reward_loop(gamma: float) -> None:
    """value_scale is the text's bound R / (1 - gamma) itself, not a looser one: a state that loops forever with
    reward -R (or +R) has |V| = R / (1 - gamma), equal to value_scale up to the rounding of the linear solve.
    At gamma = 1, value_scale(R, 1, H) = R H: attained by a chain that ends after exactly H steps."""
    for r in (-2.5, 2.5):
        P = np.zeros((1, 1, 2))
        P[0, 0, 0] = 1.0
        mdp = from_arrays(P, np.array([[r]]), gamma=gamma)
        v = exact.v_pi(mdp, uniform_policy(mdp))
        assert abs(abs(v[0]) - value_scale(2.5, gamma)) <= tolerance(value_scale(2.5, gamma), terms=2,
                                                                      condition=discount_condition(gamma))
    h = 4
    P = np.zeros((h, 1, h + 1))
    for s_ in range(h):
        P[s_, 0, s_ + 1] = 1.0
    chain = from_arrays(P, np.full((h, 1), 2.5), np.eye(h)[0], gamma=1.0)
    assert exact.v_pi(chain, uniform_policy(chain))[0] == value_scale(2.5, 1.0, float(h)) == 10.0


def test_MDP_17_objective_matches_sampled_returns() -> None:
    """J(pi) = E_{s0 ~ p0}[G_0] on a cyclic MDP: Monte Carlo with fixed seed, |mean - J| <= 4 se."""
    rng = np.random.default_rng(7)
    mdp = random_mdp(rng, 6, 3, gamma=0.8, branching=3, terminal_prob=0.1, reward_outcomes=2)
    pi = softmax_policy(rng.normal(size=(7, 3)))
    # truncation at H biases G_0 by at most gamma^H R / (1 - gamma) = 2.0e-9 * 5: negligible vs 4 se
    tr = sample_trajectories(mdp, pi, rng=np.random.default_rng(8), n=40_000, horizon=100)
    g0 = discounted_returns(tr.rewards, mdp.gamma)[:, 0]
    se = g0.std(ddof=1) / np.sqrt(g0.size)
    assert abs(g0.mean() - exact.j_pi(mdp, pi)) <= 4 * se + mdp.gamma**100 * mdp.max_abs_reward / 0.2


def test_MDP_07_deterministic_and_softmax_policies() -> None:
    pi = deterministic_policy([1, 0, 2], 3)
    assert np.array_equal(pi, np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float))
    sm = softmax_policy(np.array([[1000.0, 0.0], [0.0, 0.0]]))  # no overflow
    assert np.all(np.isfinite(sm)) and sm[0, 0] == 1.0 and sm[1, 0] == 0.5


def test_MDP_09_fixed_horizon_is_modelled_by_time_in_the_state() -> None:
    """A fixed horizon H is non-stationary; augmenting the state with t makes it a stationary layered MDP
    whose values are finite-horizon DP values: V_H(s) = max_a [r + gamma V_{H-1}(s')], V_0 = 0."""
    rng = np.random.default_rng(3)
    base = random_mdp(rng, 3, 2, gamma=0.9)
    H, S, A = 4, 3, 2
    P = np.zeros((H * S, A, H * S + 1))
    R = np.zeros((H * S, A))
    for t in range(H):
        for s in range(S):
            R[t * S + s] = base.r[s]
            for a in range(A):
                if t == H - 1:
                    P[t * S + s, a, H * S] = 1.0
                else:
                    P[t * S + s, a, (t + 1) * S:(t + 2) * S] = base.P[s, a, :S]
    aug = from_arrays(P, R, gamma=0.9)
    from reference.dp import v_star
    v_aug = v_star(aug)
    v = np.zeros(S)
    for _ in range(H):  # backward finite-horizon DP on the base MDP
        v = (base.r[:S] + 0.9 * base.P[:S, :, :S] @ v).max(axis=1)
    np.testing.assert_allclose(v_aug[:S], v, rtol=0, atol=value_tolerance(aug))


def test_MDP_01_sparse_and_dense_backends_agree() -> None:
    rng = np.random.default_rng(11)
    dense = random_mdp(rng, 30, 3, gamma=0.95, branching=4, terminal_prob=0.05, backend="dense")
    sparse = FiniteMDP(dense.n_states, dense.n_actions, dense.p0, dense.gamma, dense.indptr,
                       dense.next_state, dense.reward, dense.prob, "sparse")
    pi = softmax_policy(rng.normal(size=(31, 3)))
    tol = value_tolerance(dense)
    np.testing.assert_allclose(exact.v_pi(dense, pi), exact.v_pi(sparse, pi), rtol=0, atol=tol)
    np.testing.assert_allclose(exact.discounted_occupancy(dense, pi), exact.discounted_occupancy(sparse, pi),
                               rtol=0, atol=tolerance(1 / (1 - 0.95), terms=31, condition=39.0))


@given(finite_mdps(), st.data())
def test_MDP_20_discounted_occupancy_sums_and_gives_J(mdp: FiniteMDP, data: st.DataObject) -> None:
    """sum_s d(s) r_pi(s) = J(pi) and sum_s d(s) = 1 / (1 - gamma)."""
    pi = data.draw(policies(mdp))
    d = exact.discounted_occupancy(mdp, pi)
    tol = value_tolerance(mdp)
    assert abs(d.sum() - 1 / (1 - mdp.gamma)) <= tolerance(1 / (1 - mdp.gamma), terms=mdp.n_states_plus,
                                                          condition=(1 + mdp.gamma) / (1 - mdp.gamma))
    assert abs(d @ mdp.reward_pi(pi) - exact.j_pi(mdp, pi)) <= 2 * tol


def test_MDP_04_sampling_never_draws_a_zero_probability_outcome() -> None:
    """2000 rows of [p = 1 -> state 0, p = 0 -> state 1 with reward 99]. The sampler once inverted one cdf
    summed over the whole outcome table: at row 1999 the cdf sits near 2000, where u = 1 - 2^-53 (a value
    rng.random() returns) rounded up to the row's end and drew the impossible outcome. The cdf is now
    summed within the row; the outcome drawn for any u in [0, 1) has positive probability."""
    from reference.sampling import _sample_outcome

    n = 2000
    mdp = from_outcomes(n, 1, np.arange(0, 2 * n + 1, 2), np.tile([0, 1], n), np.tile([0.0, 99.0], n),
                        np.tile([1.0, 0.0], n), np.full(n, 1.0 / n), gamma=0.9)
    rows = np.full(5, n - 1)
    u = np.array([0.0, 0.5, 1 - 1e-13, 1 - 2.0**-44, 1 - 2.0**-53])
    nxt, rew = _sample_outcome(mdp, rows, u)
    np.testing.assert_array_equal(nxt, 0)
    np.testing.assert_array_equal(rew, 0.0)


@given(finite_mdps(max_states=5, max_actions=3), st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1,
                                                          max_size=20), st.data())
def test_MDP_04_sampling_inverts_each_rows_own_cdf(mdp: FiniteMDP, us: list[float], data: st.DataObject) -> None:
    """The drawn outcome e of row k for u is the first with sum_{j <= e} p_j > u * sum_j p_j, by a plain loop
    over the row; zero-probability outcomes are never drawn."""
    from reference.sampling import _sample_outcome

    n_rows = mdp.indptr.size - 1
    rows = np.array(data.draw(st.lists(st.integers(0, n_rows - 1), min_size=len(us), max_size=len(us))))
    u = np.array(us)
    nxt, rew = _sample_outcome(mdp, rows, u)
    for k, row in enumerate(rows):
        lo, hi = int(mdp.indptr[row]), int(mdp.indptr[row + 1])
        probs = mdp.prob[lo:hi]
        target = u[k] * sum(float(pj) for pj in probs)  # summed left to right, as the cdf
        acc, pick = 0.0, None
        for j, pj in enumerate(probs):
            acc += float(pj)
            if acc > target:
                pick = j
                break
        if pick is None:  # the target rounded to the row total: the last outcome of positive probability
            pick = int(np.flatnonzero(probs > 0)[-1])
        assert probs[pick] > 0
        assert (nxt[k], rew[k]) == (mdp.next_state[lo + pick], mdp.reward[lo + pick])


# --- found by the mutation audit of 2026-12-06 -------------------------------------------------------------
def test_MDP_21_q_from_v_is_zero_at_term_whatever_v_term_says() -> None:
    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9)
    np.testing.assert_array_equal(exact.q_from_v(mdp, np.ones(mdp.n_states_plus))[mdp.term], 0.0)


def test_MDP_20_occupancy_counts_initial_mass_on_term() -> None:
    """p0 may put mass on term (the builders allow it): d(term) includes p0(term) / (1 - gamma), so d sums to
    1 / (1 - gamma) and the normalised occupancy to 1. Tolerance: a solve with condition discount_condition and
    the term formula's few roundings."""
    P = np.zeros((1, 1, 2))
    P[0, 0, 1] = 1.0
    mdp = from_arrays(P, np.array([[1.0]]), [0.5, 0.5], gamma=0.9)
    pi = np.ones((2, 1))
    tol = tolerance(1.0 / (1.0 - 0.9), terms=4, condition=discount_condition(0.9))
    assert abs(float(exact.discounted_occupancy(mdp, pi).sum()) - 1.0 / (1.0 - 0.9)) <= tol
    assert abs(float(exact.discounted_occupancy(mdp, pi, normalized=True).sum()) - 1.0) <= tol * (1.0 - 0.9)


def test_MDP_19_tie_scale_is_the_value_bound() -> None:
    """R / (1 - gamma) for gamma < 1 (the MDP-19 / BEL-04 bound on |V|), R at gamma = 1 (open choice 1)."""
    assert abs(positive_cycle_mdp(gamma=0.9, reward=2.0).tie_scale - 20.0) <= counted_tolerance(20.0, roundings=3)
    assert positive_cycle_mdp(gamma=1.0, reward=2.0).tie_scale == 2.0


def test_MDP_04_rows_and_policies_within_prob_atol_are_renormalised() -> None:
    """A row off by less than PROB_ATOL is accepted and renormalised: it then sums to 1 within the rounding
    of two divisions and one addition (counted_tolerance(1, roundings=3))."""
    off = 0.4 * PROB_ATOL
    mdp = from_outcomes(1, 1, [0, 2], [0, 1], [0.0, 0.0], [0.5, 0.5 + off], [1.0], gamma=0.9)
    assert abs(float(mdp.prob[:2].sum()) - 1.0) <= counted_tolerance(1.0, roundings=3)
    pi = validate_policy(mdp, np.array([[1.0 + off], [1.0]]))
    assert abs(float(pi[0].sum()) - 1.0) <= counted_tolerance(1.0, roundings=1)


def test_MDP_04_builders_refuse_bad_input() -> None:
    """Negative p0, a reward on term, a negative next state and a term row that is not absorbing."""
    P = np.zeros((1, 1, 2))
    P[0, 0, 1] = 1.0
    with pytest.raises(InvalidMDPError, match="p0"):
        from_arrays(P, np.zeros((1, 1)), [1.5, -0.5], gamma=0.9)
    with pytest.raises(InvalidMDPError, match=r"R\[term\]"):
        from_arrays(P, np.array([[0.0], [1.0]]), gamma=0.9)
    with pytest.raises(InvalidMDPError, match="next state -1"):
        from_outcomes(1, 1, [0, 1], [-1], [0.0], [1.0], [1.0], gamma=0.9)
    p_full = np.zeros((2, 1, 2))
    p_full[0, 0, 1] = 1.0
    p_full[1, 0, 0] = 1.0  # the term row leaves term
    with pytest.raises(InvalidMDPError, match="term"):
        from_arrays(p_full, np.zeros((1, 1)), gamma=0.9)


def test_MDP_04_zero_probability_transitions_do_not_make_a_state_live() -> None:
    """A toy-text table whose state 1 is entered only by done = True, plus a zero-probability done = False entry:
    state 1 stays dead (absorbing into term, value 0) instead of being treated as reachable."""
    table = {0: {0: [(1.0, 1, 1.0, True), (0.0, 1, 0.0, False)]}, 1: {0: [(1.0, 1, 7.0, True)]}}
    mdp = from_toy_text_P(table, [1.0, 0.0], gamma=0.9)
    assert exact.v_pi(mdp, np.ones((3, 1)))[1] == 0.0


def test_MDP_04_a_state_nothing_enters_keeps_its_rows() -> None:
    """State 1 is entered by no transition (as CliffWalking's cliff cells): it keeps its row (reward 5, then
    state 0), so V*(1) = 5 + 0.9 V*(0) = 5.9 as on gymnasium's table; it was made absorbing (V = 0)."""
    table = {0: {0: [(1.0, 0, 1.0, True)]}, 1: {0: [(1.0, 0, 5.0, False)]}}
    mdp = from_toy_text_P(table, [1.0, 0.0], gamma=0.9)
    v = exact.v_pi(mdp, np.ones((3, 1)))
    assert v[0] == 1.0 and abs(v[1] - 5.9) <= tolerance(5.9, terms=3)


def test_MDP_02_trajectories_that_start_at_term_have_length_zero() -> None:
    """p0 may put mass on term (found by the mutation audit of 2026-12-06): such a trajectory has T = 0, no valid
    step and return 0, while the others run."""
    P = np.zeros((1, 1, 2))
    P[0, 0, 1] = 1.0
    mdp = from_arrays(P, np.array([[1.0]]), [0.5, 0.5], gamma=0.9)
    tr = sample_trajectories(mdp, np.ones((2, 1)), rng=np.random.default_rng(0), n=40, horizon=3)
    at_term = tr.states[:, 0] == mdp.term
    assert at_term.any() and (~at_term).any()
    np.testing.assert_array_equal(tr.lengths, np.where(at_term, 0, 1))
    assert not tr.valid[at_term].any()
    np.testing.assert_array_equal(discounted_returns(tr.rewards, mdp.gamma)[:, 0], np.where(at_term, 0.0, 1.0))


def test_MDP_21_exploring_start_fixes_only_the_first_action() -> None:
    """With a0 given (Q^pi(s, a) estimation), a_0 = a0 and every later action follows pi (found by the mutation
    audit of 2026-12-06)."""
    mdp = random_layered_mdp(np.random.default_rng(0), 4, 2, 2, gamma=0.9)
    pi = deterministic_policy(np.ones(mdp.n_states_plus, dtype=np.int64), mdp.n_actions)
    s0 = int(np.flatnonzero(mdp.p0)[0])
    tr = sample_trajectories(mdp, pi, rng=np.random.default_rng(1), n=10, horizon=4, s0=s0, a0=0)
    assert np.all(tr.actions[:, 0] == 0)
    later = tr.valid.copy()
    later[:, 0] = False
    assert later.any() and np.all(tr.actions[later] == 1)


def test_MDP_03_chain_structure_ignores_stored_zero_probabilities_and_lists_term_first() -> None:
    """A stored 0 is not an edge (found by the mutation audit of 2026-12-06), and the class of term comes first
    whatever its index. State 0 loops on itself (a stored 0.0 towards state 1), state 1 loops too, term = 2."""
    import scipy.sparse as sp

    m = sp.csr_array((np.array([1.0, 0.0, 1.0, 1.0]), np.array([0, 1, 1, 2]), np.array([0, 2, 3, 4])), shape=(3, 3))
    assert m.nnz == 4  # the zero is stored
    cs = chain_structure(m, 2)
    assert [c.tolist() for c in cs.closed_classes] == [[2], [0], [1]]
    assert not cs.reaches_term[:2].any()


def test_BEL_04_large_sparse_solve_path_refines_and_certifies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GMRES + refinement path of solve_linear (n > DIRECT_SOLVE_MAX, lowered here so that a 60-state
    system takes it; found by the mutation audit of 2026-12-06: only 20 000+ state systems reached it). It must
    meet its documented residual bound ||b - A x||_inf <= 10 rtol ||b||_inf, and raise NotConvergedError when
    GMRES is stopped too early, rather than return an uncertified x."""
    import scipy.sparse as sp

    from reference import chains
    from reference.errors import NotConvergedError

    monkeypatch.setattr(chains, "DIRECT_SOLVE_MAX", 10)
    monkeypatch.setattr(chains, "BANDED_FILL_MAX", 0)  # not the banded LU path either
    rng = np.random.default_rng(0)
    n = 60
    p = sp.random_array((n, n), density=0.1, random_state=1, format="csr") + sp.eye_array(n, format="csr") * 0.01
    p = sp.csr_array(p / p.sum(axis=1)[:, None])
    a = sp.eye_array(n, format="csr") - 0.99 * p
    b = rng.standard_normal(n)
    x = chains.solve_linear(a, b, rtol=1e-12)
    assert float(np.max(np.abs(b - a @ x))) <= 10 * 1e-12 * float(np.max(np.abs(b)))
    # 2000 states, gamma = 0.9999, one GMRES cycle per refinement step: far from 1e-14
    n = 2000
    p = sp.random_array((n, n), density=3 / n, random_state=1, format="csr") + sp.eye_array(n, format="csr") * 0.01
    a = sp.eye_array(n, format="csr") - 0.9999 * sp.csr_array(p / p.sum(axis=1)[:, None])
    with pytest.raises(NotConvergedError):
        chains.solve_linear(a, rng.standard_normal(n), rtol=1e-14, maxiter=1)


def test_MDP_19_R_ignores_rewards_of_zero_probability_outcomes() -> None:
    """R = max |r| over the reward support (MDP-19): an outcome of probability 0 is not in the support, so its
    reward of 1e10 must not set R, the value scale R / (1 - gamma) nor the default certificate width
    rtol * R / (1 - gamma) (which would become 1e10 times wider than the rewards that can occur allow)."""
    from reference.dp import certificate_eps

    mdp = from_outcomes(1, 1, [0, 2], [1, 1], [1.0, 1e10], [1.0, 0.0], [1.0], gamma=0.9)
    assert mdp.max_abs_reward == 1.0
    assert abs(mdp.tie_scale - 10.0) <= counted_tolerance(10.0, roundings=2)
    rtol = 1e-6
    assert abs(certificate_eps(mdp, None, rtol) - rtol * 10.0) <= counted_tolerance(rtol * 10.0, roundings=3)


def test_MDP_04_p0_within_prob_atol_is_renormalised() -> None:
    """p0 summing to 1 + 0.5 PROB_ATOL is accepted and, as the convention says, renormalised: the stored p0 sums
    to 1 within the rounding of |S+| divisions and |S| additions."""
    off = 0.5 * PROB_ATOL
    P = np.zeros((3, 1, 4))
    P[:, 0, 3] = 1.0
    mdp = from_arrays(P, np.ones((3, 1)), [0.25, 0.25, 0.5 + off], gamma=0.9)
    assert abs(float(mdp.p0.sum()) - 1.0) <= counted_tolerance(1.0, roundings=2 * mdp.n_states_plus)


def test_MDP_04_prob_atol_is_1e_minus_9_for_rows_and_p0() -> None:
    """The documented tolerance (conventions: rows sum to 1 within PROB_ATOL = 1e-9): a row or p0 off by 2e-9 is
    refused, one off by 5e-10 is accepted."""
    assert PROB_ATOL == 1e-9
    with pytest.raises(InvalidMDPError, match="not 1"):
        from_outcomes(1, 1, [0, 2], [0, 1], [0.0, 0.0], [0.5, 0.5 + 2e-9], [1.0], gamma=0.9)
    from_outcomes(1, 1, [0, 2], [0, 1], [0.0, 0.0], [0.5, 0.5 + 5e-10], [1.0], gamma=0.9)
    with pytest.raises(InvalidMDPError, match="p0"):
        from_outcomes(2, 1, [0, 1, 2], [2, 2], [0.0, 0.0], [1.0, 1.0], [0.5, 0.5 + 2e-9], gamma=0.9)
    from_outcomes(2, 1, [0, 1, 2], [2, 2], [0.0, 0.0], [1.0, 1.0], [0.5, 0.5 + 5e-10], gamma=0.9)


def test_MDP_04_a_start_state_entered_only_by_done_keeps_its_rows() -> None:
    """State 0 has all the initial mass and is entered only by a done = True transition (its own, as a toy-text
    table records s' = 0 for it). It is occupied at t = 0, so it keeps its row: the episode collects reward 1 and
    ends, J = V(0) = 1 by hand; making it absorbing (value 0) would drop the whole episode."""
    table = {0: {0: [(1.0, 0, 1.0, True)]}}
    mdp = from_toy_text_P(table, [1.0], gamma=0.9)
    v = exact.v_pi(mdp, np.ones((2, 1)))
    assert v[0] == 1.0
    assert exact.j_pi(mdp, np.ones((2, 1))) == 1.0


@pytest.mark.parametrize(("call", "match"), [
    (lambda: random_mdp(np.random.default_rng(0), 0, 2, gamma=0.9), "n_states"),
    (lambda: random_mdp(np.random.default_rng(0), 2, 0, gamma=0.9), "n_actions"),
    (lambda: random_mdp(np.random.default_rng(0), 2, 2, gamma=0.9, terminal_prob=True), "terminal_prob"),
    (lambda: random_mdp(np.random.default_rng(0), 2, 2, gamma=0.9, reward_scale=-1.0), "reward_scale"),
    (lambda: random_mdp(np.random.default_rng(0), 2, 2, gamma=0.9, reward_scale=1e308), "reward_scale"),
    (lambda: random_layered_mdp(np.random.default_rng(0), 0, 2, 2, gamma=0.9), "n_layers"),
    (lambda: random_layered_mdp(np.random.default_rng(0), 2.5, 2, 2, gamma=0.9), "n_layers"),  # type: ignore[arg-type]
    (lambda: random_layered_mdp(np.random.default_rng(0), 2, 0, 2, gamma=0.9), "width"),
    (lambda: random_layered_mdp(np.random.default_rng(0), 2, 2, 0, gamma=0.9), "n_actions"),
    (lambda: random_layered_mdp(np.random.default_rng(0), 2, 2, 2, gamma=0.9, early_stop_prob=np.nan),
     "early_stop_prob"),
])
def test_MDP_09_generators_refuse_bad_sizes_and_probabilities(call: object, match: str) -> None:
    """Zero sizes raised a raw ZeroDivisionError or numpy error, 2.5 layers a TypeError, terminal_prob=True was
    read as 1.0 and reward_scale=1e308 overflowed (2026-12-07 review): now a ReferenceError_ / ValueError
    naming the argument."""
    with pytest.raises((ReferenceError_, ValueError), match=match):
        call()  # type: ignore[operator]


def test_MDP_09_generators_take_numpy_scalars_and_0d_arrays() -> None:
    """numpy scalars and 0-d arrays are numbers (the first version of the check refused np.array(0.3))."""
    for p in (np.array(0.3), np.float32(0.3), 0.3):
        random_mdp(np.random.default_rng(0), 2, 2, gamma=0.9, terminal_prob=p)  # type: ignore[arg-type]
    random_layered_mdp(np.random.default_rng(0), np.int64(2), 2, 2, gamma=0.9,  # type: ignore[arg-type]
                       early_stop_prob=np.array(0.2))  # type: ignore[arg-type]


def test_MDP_04_with_backend_and_with_p0_keep_every_number() -> None:
    """FiniteMDP.with_backend changes the storage only (V^pi identical up to the solver's rounding); with_p0
    validates like the builders and moves J, not V."""
    mdp = random_mdp(np.random.default_rng(3), 5, 2, gamma=0.9, branching=2, terminal_prob=0.2)
    pi = uniform_policy(mdp)
    sp_ = mdp.with_backend("sparse")
    assert sp_.is_sparse and not mdp.is_sparse
    np.testing.assert_allclose(exact.v_pi(sp_, pi), exact.v_pi(mdp, pi), rtol=0, atol=value_tolerance(mdp))
    moved = mdp.with_p0(np.append(0.75 * np.asarray(mdp.p0)[:-1], 0.25))
    np.testing.assert_array_equal(exact.v_pi(moved, pi), exact.v_pi(mdp, pi))
    assert abs(exact.j_pi(moved, pi) - 0.75 * exact.j_pi(mdp, pi)) <= value_tolerance(mdp)
    with pytest.raises(InvalidMDPError):
        mdp.with_p0(np.full(mdp.n_states, 0.5))
    with pytest.raises(ShapeError):
        mdp.with_p0(np.ones(2))


def test_MDP_04_from_gymnasium_refuses_taxi_fickle_passenger() -> None:
    """Taxi's fickle passenger changes the destination inside step(), after sampling P, on a hidden flag: P does
    not describe it, and the plain Taxi's MDP came back silently (J = -1.26 where the environment gives -0.82)."""
    pytest.importorskip("gymnasium")
    from reference.mdp import from_gymnasium

    with pytest.raises(ValueError, match="fickle_passenger"):
        from_gymnasium("Taxi-v4", gamma=0.9, fickle_passenger=True)
    assert from_gymnasium("Taxi-v4", gamma=0.9, fickle_passenger=False).n_states == 500
