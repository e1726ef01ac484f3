"""Bad input gets a clear, typed error instead of a silent number (found by an audit of the reference).

Each case below used to return a number: a NaN policy row read as KL 0, an infinite ratio gave NaN
where the piecewise form gives 0, beta = NaN dropped the KL penalty, an unknown TRPO improvement rule
fell back to the surrogate, a fractional k was floored, NaN rewards propagated, and an empty batch
divided by zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from reference.advantages import gae, td_k_advantages, td_residuals, value_regression_loss
from reference.errors import ReferenceError_, ShapeError
from reference.generators import random_mdp
from reference.grpo import grpo_objective
from reference.surrogates import categorical_kl, ppo_clip_objective, ppo_clip_piecewise
from reference.trust_region import trpo_exact

Z = np.zeros((3, 2))
F = np.zeros((3, 2), dtype=bool)


def test_kl_rejects_nan_probabilities() -> None:
    with pytest.raises(ReferenceError_, match="simplex"):
        categorical_kl([np.nan, np.nan], [0.5, 0.5])
    with pytest.raises(ReferenceError_, match="simplex"):
        categorical_kl([[0.5, 0.5], [np.nan, np.nan]], [[0.5, 0.5], [0.5, 0.5]])


@pytest.mark.parametrize("fn", [ppo_clip_objective, ppo_clip_piecewise])
def test_clip_objectives_reject_non_finite_ratio_and_advantage(fn: Callable[..., Any]) -> None:
    with pytest.raises(ReferenceError_, match="ratio"):
        fn(np.inf, 0.0, eps=0.2)
    with pytest.raises(ReferenceError_, match="advantages"):
        fn(1.0, np.nan, eps=0.2)


def test_grpo_beta_must_be_finite() -> None:
    lp = np.full((2, 2), -0.7)
    with pytest.raises(ReferenceError_, match="beta"):
        grpo_objective(lp, lp, [0.0, 1.0], np.ones((2, 2), bool), group_size=2, beta=float("nan"), log_prob_ref=lp)


def test_trpo_improvement_rule_is_checked() -> None:
    mdp = random_mdp(np.random.default_rng(0), 3, 2, gamma=0.9)
    with pytest.raises(ReferenceError_, match="improvement"):
        trpo_exact(mdp, np.zeros((4, 2)), iters=1, improvement="J")  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [1.5, float("inf"), 0, True])
def test_td_k_needs_an_integer_k(k: object) -> None:
    with pytest.raises(ReferenceError_, match="k must be"):
        td_k_advantages(Z, Z, Z, F, F, gamma=0.9, k=k)  # type: ignore[arg-type]


def test_rewards_and_values_must_be_finite_masked_bootstraps_may_be_nan() -> None:
    bad = Z.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ReferenceError_, match="rewards must be finite"):
        td_residuals(bad, Z, Z, F, gamma=0.9)
    with pytest.raises(ReferenceError_, match="values must be finite"):
        gae(Z, bad, Z, F, F, gamma=0.9, lam=0.95)
    term = F.copy()
    term[1, 0] = True
    nv = Z.copy()
    nv[1, 0] = np.nan  # the bootstrap of a terminated row is never read
    assert np.all(np.isfinite(td_residuals(Z, Z, nv, term, gamma=0.9)))


def test_value_regression_loss_needs_a_non_empty_batch() -> None:
    with pytest.raises(ShapeError, match="T >= 1"):
        value_regression_loss(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2), bool), np.zeros((0, 2), bool))
