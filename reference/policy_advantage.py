"""The policy advantage I(pi; pi_k) and policy iteration as its maximisation (TR-38..TR-43).

Spec: TR-38, TR-39, TR-40, TR-41, TR-42, TR-43 (errata E-55, E-64, E-65).

Conventions (once for the module): policies are arrays ``pi[s, a]`` of shape [S+1, A] (reference.mdp);
I is computed exactly with the discounted occupancy of pi_k,

    I(pi; pi_k) = E_{tau ~ pi_k, a'_t ~ pi(.|s_t)}[sum_t gamma^t A^{pi_k}(s_t, a'_t)]
                = sum_s d^{pi_k}(s) sum_a pi(a | s) A^{pi_k}(s, a),

d^{pi_k}(s) = sum_t gamma^t P^{pi_k}(s_t = s) (expected visits before T at gamma = 1). The sampled IS
estimator I_hat (TR-43) is :func:`reference.trust_region.is_surrogate_estimate` on [T, B] batches: the
same expression as the surrogate K(theta; theta0) - C (TR-05), whose constant is C = J(pi_k).
"""

from __future__ import annotations

import numpy as np

from reference.exact import a_pi, discounted_occupancy, q_from_v, v_pi
from reference.mdp import FiniteMDP, FloatArray, IntArray, greedy, validate_policy

__all__ = ["max_policy_advantage", "policy_advantage", "policy_advantage_step"]


def policy_advantage(mdp: FiniteMDP, pi: FloatArray, pi_k: FloatArray) -> float:
    """I(pi; pi_k) = sum_s d^{pi_k}(s) sum_a pi(a | s) A^{pi_k}(s, a) (exact).

    Spec: TR-38 (definition), TR-39 (I(pi_k; pi_k) = 0 since sum_a pi_k A^{pi_k} = 0), TR-42 (equal to
    the IS form E_{tau ~ pi_k}[sum_t gamma^t pi/pi_k (a_t | s_t) A^{pi_k}(s_t, a_t)]).
    Shapes: pi, pi_k [S+1, A]. At gamma = 1, pi_k must be proper.
    """
    p = validate_policy(mdp, pi)
    pk = validate_policy(mdp, pi_k)
    d = discounted_occupancy(mdp, pk)
    adv = a_pi(mdp, pk)
    d[mdp.term] = 0.0
    return float(np.sum(d[:, None] * p * adv))


def policy_advantage_step(mdp: FiniteMDP, pi_k: FloatArray, *, current: IntArray | None = None) -> IntArray:
    """argmax_pi I(pi; pi_k): the greedy policy pi(s) = argmax_a A^{pi_k}(s, a) = argmax_a Q^{pi_k}(s, a).

    Spec: TR-41 (PI as policy-advantage maximisation; the maximiser is determined only on the states with
    d^{pi_k}(s) > 0, which is the text's visitation condition, and there only up to ties of A^{pi_k}). Ties
    follow open choice 1, on Q, with the evaluation's error bound in the window
    (:func:`reference.dp.greedy_slack`), as
    :func:`reference.dp.policy_iteration`'s step; the two steps are bit-identical at gamma < 1 and at gamma = 1
    on MDPs without reward-free end components (where they exist, PI runs on the MDP extended by the option
    ``dp.STAY`` and its step may choose it, which this function does not know). ``current`` [S+1] keeps the
    current action among maximisers. Returns int [S+1].
    """
    from reference.dp import greedy_slack

    pk = validate_policy(mdp, pi_k)
    v = v_pi(mdp, pk)
    q = q_from_v(mdp, v)
    scales = mdp.greedy_scales(v)
    return greedy(q, current=current, scale=scales, tie_rtol=mdp.tie_rtol,
                  slack=greedy_slack(mdp, pk, v, q, scales))


def max_policy_advantage(mdp: FiniteMDP, pi_k: FloatArray) -> float:
    """max_pi I(pi; pi_k) = sum_s d^{pi_k}(s) max_a A^{pi_k}(s, a) >= 0.

    Spec: TR-40 with erratum E-65: pi_k optimal => max I = 0 (A^{pi*} <= 0), whenever pi_k can be evaluated (at
    gamma = 1 an optimal policy may be improper, e.g. staying in stay-or-go with go reward -1, and then this
    raises ImproperPolicyError like every function of pi_k's values); max I = 0 => pi_k
    optimal only when d^{pi_k}(s) > 0 for every s (e.g. p0 of full support) and gamma < 1. At gamma = 1 full
    visitation is not enough: in stay-or-go (a reward-free loop, or go with reward -1) "go" has max I = 0 with
    d(s0) = 1, yet staying is worth 0 > -1 (the greedy step over Q^{pi_k} cannot see the loop's value).
    Shapes: pi_k [S+1, A].
    """
    pk = validate_policy(mdp, pi_k)
    d = discounted_occupancy(mdp, pk)
    d[mdp.term] = 0.0
    return float(d @ np.max(a_pi(mdp, pk), axis=1))
