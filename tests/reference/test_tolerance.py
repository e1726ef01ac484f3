"""The statistical bound of reference.tolerance (open choice 22 with few runs): mean_confidence_radius."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from reference.tolerance import mean_confidence_radius


def test_mean_confidence_radius_is_the_student_t_interval() -> None:
    """One comparison: the half-width of scipy's two-sided t interval at level 1 - delta."""
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(7, 2))
    r = mean_confidence_radius(x, delta=0.01)
    for j in range(2):
        lo, hi = stats.t.interval(0.99, 6, loc=x[:, j].mean(), scale=stats.sem(x[:, j]))
        assert abs(r[j] - 0.5 * (hi - lo)) <= 1e-12 * (hi - lo)


def test_mean_confidence_radius_covers_all_comparisons_with_probability_1_minus_delta() -> None:
    """Simulated family-wise coverage (normal samples, R = 10 runs, m = 6 independent means, delta = 0.05): each
    interval is exact for normal samples, so it misses with probability delta / m and the family with
    1 - (1 - delta / m)^m = 0.0488 <= delta; the simulated rate must equal that within 4 binomial standard errors
    of the N = 40 000 trials. The normal "4 sd/sqrt(R)" rule it replaces misses at 1 - (1 - 2 P(t_9 > 4))^m
    (~1.8 %), not at its nominal 1 - (1 - 2 P(Z > 4))^m (3.8e-4): both checked the same way."""
    n_trials, reps, m, delta = 40_000, 10, 6, 0.05
    x = np.random.default_rng(1).normal(size=(n_trials, reps, m))
    mean = x.mean(axis=1)
    radius = np.stack([mean_confidence_radius(x[i], comparisons=m, delta=delta) for i in range(2000)])
    sd = x.std(axis=1, ddof=1)
    q = stats.t.isf(delta / (2 * m), reps - 1)
    np.testing.assert_allclose(radius, q * sd[:2000] / np.sqrt(reps), rtol=1e-14)  # vectorised below
    def within_4_se(rate: float, p: float) -> bool:
        return bool(abs(rate - p) <= 4 * np.sqrt(p * (1 - p) / n_trials))

    miss = np.any(np.abs(mean) > q * sd / np.sqrt(reps), axis=1).mean()
    family = 1 - (1 - delta / m) ** m
    assert family <= delta and within_4_se(miss, family)
    naive = np.any(np.abs(mean) > 4 * sd / np.sqrt(reps), axis=1).mean()
    nominal = 1 - (1 - 2 * stats.norm.sf(4.0)) ** m
    actual = 1 - (1 - 2 * stats.t.sf(4.0, reps - 1)) ** m
    assert within_4_se(naive, actual) and not within_4_se(naive, nominal)


@pytest.mark.parametrize(("args", "match"), [((np.zeros((1, 3)),), "at least 2"), ((np.zeros(1),), "at least 2"),
                                             ((np.zeros((4, 2)), 0), "comparisons"),
                                             ((np.zeros((4, 2)), True), "comparisons"),
                                             ((np.zeros((4, 2)), 1, 0.0), "delta"),
                                             ((np.zeros((4, 2)), 1, 1.0), "delta")])
def test_mean_confidence_radius_refuses_bad_input(args: tuple[object, ...], match: str) -> None:
    kw = dict(zip(("comparisons", "delta"), args[1:], strict=False))
    with pytest.raises(ValueError, match=match):
        mean_confidence_radius(args[0], **kw)  # type: ignore[arg-type]
