"""The main job (``./run.sh report``) passes on a clean checkout: every line of it is a check (14 s)."""

from __future__ import annotations

import pytest

from reference import report


def test_report_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "FAIL" not in out
    for spec in ("BEL-10", "BEL-25", "BEL-26", "BEL-27", "BEL-29", "BEL-30", "BEL-36", "BEL-38"):
        assert f" {spec} " in out, spec


def test_report_catches_a_wrong_anchor_schedule_bound_or_cesaro_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AncVI lines compute beta_k and the bound's constant from the text's formulas themselves: when both
    sides read reference.dp's functions, beta_k = 0 after k = 0 (plain VI, the anchor removed) or a bound ten
    times the text's passed with exit 0 (review of 2026-12-07). Likewise a Cesaro value fixed at 1/2 passed the
    one-state BEL-38 line; it now checks both states of the +1, -1 chain."""
    import numpy as np

    from reference import dp, exact
    from reference.generators import random_mdp

    def failed(lines: list[report.Line]) -> set[str]:
        return {ln.spec for ln in lines if not ln.ok}

    mdp = random_mdp(np.random.default_rng(0), 10, 3, gamma=0.95, branching=3)
    assert failed(report._checks_on(mdp, np.random.default_rng(1))) == set()

    def plain_vi(gamma: float, k: int) -> float:
        return 1.0 if k == 0 else 0.0

    with monkeypatch.context() as m:
        m.setattr(dp, "ancvi_beta", plain_vi)
        m.setattr(report, "ancvi_beta", plain_vi)
        assert {"BEL-29", "BEL-30"} & failed(report._checks_on(mdp, np.random.default_rng(1)))
    bound = dp.ancvi_bound
    with monkeypatch.context() as m:
        m.setattr(report, "ancvi_bound", lambda g, k, **kw: 10.0 * bound(g, k, **kw))
        assert "BEL-30" in failed(report._checks_on(mdp, np.random.default_rng(1)))
    with monkeypatch.context() as m:
        m.setattr(exact, "bias_value", lambda mdp_, pi: np.full(mdp_.n_states_plus, 0.5))
        assert "BEL-38" in failed(report._pathologies())
