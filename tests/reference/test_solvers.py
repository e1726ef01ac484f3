"""Property tests of reference.solvers: agreement with dp / exact on small random MDPs, and certificates.

Every tolerance comes from reference.tolerance: values are bounded by ``scale = R / (1 - gamma)``
(MDP-19); a dot product over S+ has ``terms = |S+|``; the exact dense solve (LU of I - gamma P_pi) has
condition ``discount_condition(gamma)``; a residual computed with rounding error ``tol_res`` moves the
certificate by ``tol_res / (1 - gamma)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import dp, exact, solvers
from reference.generators import random_mdp
from reference.mdp import Backend, FiniteMDP, deterministic_policy
from reference.tolerance import discount_condition, tolerance

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def small_mdps(draw: st.DrawFn) -> FiniteMDP:
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(1, 12))
    na = draw(st.integers(1, 4))
    gamma = draw(st.sampled_from([0.5, 0.9, 0.99]))
    branching = draw(st.sampled_from([None, 1, 2]))
    term = draw(st.sampled_from([0.0, 0.2]))
    backend: Backend = draw(st.sampled_from(["dense", "sparse"]))
    return random_mdp(np.random.default_rng(seed), n, na, gamma=gamma, branching=branching, terminal_prob=term,
                      backend=backend)


def _scale(mdp: FiniteMDP) -> float:
    return max(mdp.max_abs_reward, 1.0) / (1.0 - mdp.gamma)


def _tol_exact(mdp: FiniteMDP) -> float:
    """Error of the exact dense LU solve plus the rounding of one residual evaluation / (1 - gamma)."""
    n, s = mdp.n_states_plus, _scale(mdp)
    return (tolerance(s, terms=n, condition=discount_condition(mdp.gamma))
            + tolerance(s, terms=n) / (1.0 - mdp.gamma))


@SETTINGS
@given(small_mdps())
def test_solve_optimal_agrees_with_policy_iteration_and_certificate_holds(mdp: FiniteMDP) -> None:
    eps = 1e-9 * _scale(mdp)
    sol = solvers.solve_optimal(mdp, eps=eps)
    v_star = dp.policy_iteration(mdp).value  # exact (LU) evaluation of the optimal policy
    err = float(np.max(np.abs(sol.value - v_star)))
    assert sol.bound <= eps
    assert err <= sol.bound + _tol_exact(mdp)
    # the greedy policy of an eps-certified V is 2 gamma eps / (1 - gamma)-optimal
    v_greedy = exact.v_pi(mdp, deterministic_policy(sol.policy, mdp.n_actions))
    assert np.all(v_greedy >= v_star - 2 * mdp.gamma * sol.bound / (1 - mdp.gamma) - _tol_exact(mdp))
    assert sol.value[mdp.term] == 0.0


@SETTINGS
@given(small_mdps(), st.integers(0, 2**31 - 1), st.booleans())
def test_evaluate_policy_certificate_holds(mdp: FiniteMDP, seed: int, deterministic: bool) -> None:
    rng = np.random.default_rng(seed)
    if deterministic:
        pi = deterministic_policy(rng.integers(0, mdp.n_actions, size=mdp.n_states_plus), mdp.n_actions)
    else:
        pi = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states_plus)
    eps = 1e-10 * _scale(mdp)
    cert = solvers.evaluate_policy(mdp, pi, eps=eps)
    v_exact = exact.v_pi(mdp, pi)
    assert cert.bound <= eps
    assert float(np.max(np.abs(cert.value - v_exact))) <= cert.bound + _tol_exact(mdp)
    # the certificate is the residual formula of exact.v_pi_certified
    resid = mdp.reward_pi(pi) + mdp.gamma * (mdp.transition_pi(pi) @ cert.value) - cert.value
    assert abs(float(np.max(np.abs(resid))) - cert.residual) <= tolerance(_scale(mdp), terms=mdp.n_states_plus)


@SETTINGS
@given(small_mdps(), st.integers(1, 30))
def test_value_iteration_sweeps_match_dp(mdp: FiniteMDP, k: int) -> None:
    v0 = np.zeros(mdp.n_states_plus)
    ours = solvers.value_iteration_sweeps(mdp, v0, num_sweeps=k)
    ref = dp.value_iteration(mdp, v0, num_iters=k).values[-1]
    # each sweep rounds by <= tolerance(scale, terms=|S+|); B^* is a gamma-contraction, so the
    # accumulated difference is at most that / (1 - gamma)
    tol = tolerance(_scale(mdp), terms=mdp.n_states_plus) / (1.0 - mdp.gamma)
    assert float(np.max(np.abs(ours - ref))) <= tol


@pytest.mark.parametrize("backend", ["dense", "sparse"])
def test_kernel_matches_lookahead_and_split_path(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solvers, "_SPLIT_MIN_NNZ", 0)  # force the threaded row-block product
    mdp = random_mdp(np.random.default_rng(3), 50, 3, gamma=0.9, branching=4, terminal_prob=0.1, backend=backend)
    kern = solvers.BellmanKernel(mdp, threads=3)
    v = np.random.default_rng(4).uniform(-5, 5, size=mdp.n_states_plus)
    tol = tolerance(float(np.max(np.abs(v))) + mdp.max_abs_reward, terms=mdp.n_states_plus)
    assert float(np.max(np.abs(kern.lookahead(v) - mdp.lookahead(v)))) <= tol
    bv, _q = kern.optimality(v)
    assert float(np.max(np.abs(bv - mdp.lookahead(v).max(axis=1)))) <= tol


def test_gmres_reaches_its_residual_target() -> None:
    rng = np.random.default_rng(0)
    n = 200
    a = np.eye(n) + 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)
    b = rng.standard_normal(n)
    out = solvers.gmres(lambda x: a @ x, b, tol=1e-10, restart=10)
    assert out.converged
    assert float(np.linalg.norm(b - a @ out.x)) <= 1e-10


def test_one_hot_policy_uses_deterministic_path_and_agrees() -> None:
    mdp = random_mdp(np.random.default_rng(1), 30, 3, gamma=0.95, branching=3, backend="sparse")
    act = np.random.default_rng(2).integers(0, 3, size=mdp.n_states_plus)
    a = solvers.evaluate_policy(mdp, act, eps=1e-11)
    b = solvers.evaluate_policy(mdp, deterministic_policy(act, 3), eps=1e-11)
    assert float(np.max(np.abs(a.value - b.value))) <= a.bound + b.bound
