"""Cross-checks against code nobody here wrote: pymdptoolbox's solvers and gymnasium's own simulator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import exact
from reference.bellman import sup_norm
from reference.dp import policy_iteration, v_star
from reference.mdp import FiniteMDP, deterministic_policy, from_arrays, from_gymnasium
from reference.testing.oracles import value_tolerance
from reference.testing.strategies import finite_mdps
from reference.tolerance import tolerance

mdptoolbox_mdp = pytest.importorskip("mdptoolbox.mdp")
gymnasium = pytest.importorskip("gymnasium")


def _to_toolbox(mdp: FiniteMDP) -> tuple[np.ndarray, np.ndarray]:
    """Our MDP in pymdptoolbox's format, term kept as an ordinary absorbing zero-reward state."""
    P = np.transpose(mdp.P, (1, 0, 2)).copy()  # (A, S+, S+)
    return P, mdp.r.copy()  # R (S+, A)


@settings(max_examples=30)
@given(finite_mdps(families=("dense", "sparse", "terminating"), max_states=10, max_actions=4,
                   max_gamma=0.95))
def test_BEL_12_v_star_agrees_with_pymdptoolbox_policy_iteration(mdp: FiniteMDP) -> None:
    P, R = _to_toolbox(mdp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pi = mdptoolbox_mdp.PolicyIteration(P, R, mdp.gamma, eval_type=0)
        pi.run()
    ours = v_star(mdp)
    theirs = np.asarray(pi.V)
    assert sup_norm(ours - theirs) <= value_tolerance(mdp)
    # their optimal policy has our optimal value (policies may differ on ties)
    pol = deterministic_policy(np.asarray(pi.policy), mdp.n_actions)
    assert sup_norm(exact.v_pi(mdp, pol) - ours) <= 2 * value_tolerance(mdp)


class _SpanRuleVI(mdptoolbox_mdp.ValueIteration):  # type: ignore[misc,name-defined]
    """pymdptoolbox's ValueIteration stopped by its span rule alone (its own iteration cap bypassed: see
    :func:`test_BEL_25_pymdptoolbox_iteration_cap_stops_one_sweep_early`)."""

    def _boundIter(self, epsilon: float) -> None:  # keep max_iter as given
        pass


@settings(max_examples=30)
@given(finite_mdps(families=("dense", "sparse", "terminating"), max_states=10, max_actions=4,
                   max_gamma=0.95), st.sampled_from([1e-2, 1e-4]))
def test_BEL_25_pymdptoolbox_value_iteration_only_guarantees_an_eps_optimal_policy(mdp: FiniteMDP,
                                                                                  eps: float) -> None:
    """pymdptoolbox's ValueIteration stops on the span rule, which guarantees an eps-optimal *policy*
    (||V^{pi} - V*|| <= eps), not ||V - V*|| <= eps; our certified VI bounds the value error itself.
    Its iteration cap is bypassed here: the cap can stop it before the span rule holds (next test)."""
    P, R = _to_toolbox(mdp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vi = _SpanRuleVI(P, R, mdp.gamma, epsilon=eps, max_iter=100_000)
        vi.run()
    assert vi.iter < 100_000  # stopped by the span rule
    pol = deterministic_policy(np.asarray(vi.policy), mdp.n_actions)
    assert sup_norm(exact.v_pi(mdp, pol) - v_star(mdp)) <= eps + value_tolerance(mdp)


def test_BEL_25_pymdptoolbox_iteration_cap_stops_one_sweep_early() -> None:
    """Found by the property test above (Hypothesis, gamma = 0.18): for gamma < 1 pymdptoolbox's constructor
    replaces max_iter by n = ceil(log(thresh / sp(V^1 - V^0)) / log(gamma k)) (Puterman, Theorem 6.6.6), which
    makes (gamma k)^n sp(V^1 - V^0) <= thresh; but the sweep-n check sees sp(V^n - V^{n-1}) <=
    (gamma k)^(n-1) sp(V^1 - V^0), one factor short, so the cap can stop it before the span rule holds,
    returning a policy that is not eps-optimal.

    The MDP: gamma = 0.1, eps = 0.01 (thresh = eps (1 - gamma) / gamma = 0.09). State 0: action 0 pays 0.5 and
    ends, action 1 pays 0.49 and moves to state 1, which pays 0.5 and ends. sp(V^1 - V^0) = 0.5 and k = 1, so
    n = ceil(log(0.18) / log(0.1)) = 1: one sweep, whose policy is greedy in V^0 = 0 (action 0, myopic), while
    Q*(0, 1) = 0.49 + 0.1 * 0.5 = 0.54 > 0.5 = Q*(0, 0): the returned policy is 0.04 > eps from optimal.
    With the span rule alone the second sweep stops it (sp(V^2 - V^1) = 0.05 < 0.09) at the optimal policy."""
    P = np.zeros((2, 2, 3))
    P[0, 0, 2] = P[0, 1, 1] = P[1, :, 2] = 1.0
    mdp = from_arrays(P, np.array([[0.5, 0.49], [0.5, 0.5]]), [1.0, 0.0], gamma=0.1)
    Pt, R = _to_toolbox(mdp)
    eps = 0.01
    capped = mdptoolbox_mdp.ValueIteration(Pt, R, mdp.gamma, epsilon=eps, max_iter=100_000)
    assert capped.max_iter == 1
    capped.run()
    gap = sup_norm(exact.v_pi(mdp, deterministic_policy(np.asarray(capped.policy), mdp.n_actions)) - v_star(mdp))
    assert capped.policy[0] == 0 and abs(gap - 0.04) <= tolerance(1.0, terms=4)
    span_rule = _SpanRuleVI(Pt, R, mdp.gamma, epsilon=eps, max_iter=100_000)
    span_rule.run()
    assert span_rule.iter == 2 and span_rule.policy[0] == 1
    assert sup_norm(exact.v_pi(mdp, deterministic_policy(np.asarray(span_rule.policy), mdp.n_actions))
                    - v_star(mdp)) <= eps


@pytest.mark.parametrize("env_id,kwargs", [("FrozenLake-v1", {}), ("FrozenLake-v1", {"map_name": "8x8"}),
                                           ("Taxi-v4", {}), ("CliffWalking-v1", {})])
def test_MDP_04_toy_text_transitions_match_gymnasium_P(env_id: str, kwargs: dict[str, object]) -> None:
    """Our kernel equals gymnasium's table, with done transitions sent to term; exactly the states entered only
    by done transitions (and without initial mass) are absorbing into term with reward 0. A state no transition
    enters (CliffWalking's cliff cells) keeps gymnasium's rows (it was made absorbing too, and the test skipped
    every absorbing row, so it could not see that).

    Each entry is a sum over the n = len(table[s][a]) outcomes (ours also normalised by their sum), so it
    is exact up to tolerance(sum |p| = 1, terms=n); the expected reward up to tolerance(sum |p r|, terms=n)."""
    mdp = from_gymnasium(env_id, gamma=0.99, **kwargs)
    env = gymnasium.make(env_id, **kwargs)
    table = env.unwrapped.P
    live = {s2 for s in table for a in table[s] for p, s2, _, done in table[s][a] if p > 0 and not done}
    ended = {s2 for s in table for a in table[s] for p, s2, _, done in table[s][a] if p > 0 and done}
    for s in range(mdp.n_states):
        if s in ended and s not in live and mdp.p0[s] == 0:  # entered only by termination: absorbing into term
            assert np.all(mdp.P[s, :, mdp.term] == 1.0) and np.all(mdp.r[s] == 0), s
            continue
        for a in range(mdp.n_actions):
            expect = np.zeros(mdp.n_states_plus)
            rew = 0.0
            for p, s2, r, done in table[s][a]:
                expect[mdp.term if done else s2] += p
                rew += p * r
            n = len(table[s][a])
            np.testing.assert_allclose(mdp.P[s, a], expect, rtol=0, atol=tolerance(1.0, terms=n))
            assert abs(mdp.r[s, a] - rew) <= tolerance(sum(abs(p * r) for p, _, r, _ in table[s][a]), terms=n)


@pytest.mark.parametrize("env_id,kwargs,gamma,n", [("FrozenLake-v1", {}, 0.95, 4_000),
                                                   ("Taxi-v4", {}, 0.9, 1_000),
                                                   ("CliffWalking-v1", {}, 1.0, 200)])
def test_BEL_12_optimal_value_matches_returns_simulated_by_gymnasium(
        env_id: str, kwargs: dict[str, object], gamma: float, n: int) -> None:
    """Play the exact optimal policy in gymnasium's own simulator (not our kernel): the mean discounted
    return is J* within 4 standard errors (inventory open choice 22). We step ``env.unwrapped``: the
    registered TimeLimit would truncate episodes and bias the return, while J* is the untruncated value."""
    mdp = from_gymnasium(env_id, gamma=gamma, **kwargs)
    res = policy_iteration(mdp)
    j_star = float(mdp.p0 @ res.value)
    env = gymnasium.make(env_id, **kwargs).unwrapped
    returns = np.empty(n)
    for i in range(n):
        s, _ = env.reset(seed=10_000 + i)
        g, disc, done, steps = 0.0, 1.0, False, 0
        while not done:
            s, r, term, _trunc, _ = env.step(int(res.policy[s]))
            g += disc * float(r)
            disc *= gamma
            done = term
            steps += 1
            assert steps < 100_000, "the optimal policy should terminate (proper)"
        returns[i] = g
    se = returns.std(ddof=1) / np.sqrt(n)
    if se == 0.0:  # deterministic environment: the return is exact
        assert np.all(np.abs(returns - j_star) <= value_tolerance(mdp, horizon=100.0))
    else:
        assert abs(returns.mean() - j_star) <= 4 * se
