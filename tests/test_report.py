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
    assert failed(report._checks_on(mdp, np.random.default_rng(1))[0]) == set()

    def plain_vi(gamma: float, k: int) -> float:
        return 1.0 if k == 0 else 0.0

    with monkeypatch.context() as m:
        m.setattr(dp, "ancvi_beta", plain_vi)
        m.setattr(report, "ancvi_beta", plain_vi)
        assert {"BEL-29", "BEL-30"} & failed(report._checks_on(mdp, np.random.default_rng(1))[0])
    bound = dp.ancvi_bound
    with monkeypatch.context() as m:
        m.setattr(report, "ancvi_bound", lambda g, k, **kw: 10.0 * bound(g, k, **kw))
        assert "BEL-30" in failed(report._checks_on(mdp, np.random.default_rng(1))[0])
    with monkeypatch.context() as m:
        m.setattr(exact, "bias_value", lambda mdp_, pi: np.full(mdp_.n_states_plus, 0.5))
        assert "BEL-38" in failed(report._pathologies())


def test_report_catches_operators_wrong_away_from_their_fixed_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """(X + B X) / 2 has the fixed point of B and contracts at (1 + gamma) / 2: with B* on Q, or B^pi on V and Q,
    replaced by it, and with B^pi V + 1000 (V - B^pi V) (no contraction at all), the report said "all checks
    passed" (review 2026-12-07): every line evaluated the operators at their own fixed points. The operator
    lines at random points catch each (and the contraction line catches the ones on V)."""
    import numpy as np

    from reference import bellman
    from reference.generators import random_mdp

    def failed() -> set[str]:
        mdp = random_mdp(np.random.default_rng(0), 10, 3, gamma=0.95, branching=3)
        return {ln.spec for ln in report._checks_on(mdp, np.random.default_rng(1))[0] if not ln.ok}

    bq, bv, bpq = bellman.bellman_optimality_q, bellman.bellman_v, bellman.bellman_q
    with monkeypatch.context() as m:
        m.setattr(report, "bellman_optimality_q", lambda mdp, q: (q + bq(mdp, q)) / 2)
        assert "BEL-21" in failed()  # random pairs rarely reach the worst-case rate, so BEL-22 need not fail
    with monkeypatch.context() as m:
        m.setattr(report, "bellman_v", lambda mdp, pi, v: (v + bv(mdp, pi, v)) / 2)
        assert {"BEL-06", "BEL-08"} <= failed()
    with monkeypatch.context() as m:
        m.setattr(report, "bellman_q", lambda mdp, pi, q: (q + bpq(mdp, pi, q)) / 2)
        assert "BEL-09" in failed()
    with monkeypatch.context() as m:
        m.setattr(report, "bellman_v", lambda mdp, pi, v: bv(mdp, pi, v) + 1000 * (v - bv(mdp, pi, v)))
        assert {"BEL-06", "BEL-08"} <= failed()


def test_report_catches_a_wrong_gymnasium_mdp_or_v_star(monkeypatch: pytest.MonkeyPatch) -> None:
    """from_gymnasium forced to is_slippery=False, or to gamma 0.9, or V* scaled by 1.01 in the checked solve:
    each passed with exit 0 (review 2026-12-07), nothing compared the MDP with the environment. The value
    iteration on gymnasium's own P table catches each (MDP-04 / MDP-17 lines)."""
    pytest.importorskip("gymnasium")
    import numpy as np

    from reference.mdp import from_gymnasium

    def gym_lines(build: object) -> set[str]:
        mdp = build("FrozenLake-v1", gamma=0.99)  # type: ignore[operator]
        lines, vs = report._checks_on(mdp, np.random.default_rng(1))
        extra, _ = report._gym_oracle("FrozenLake-v1", 0.99, vs)
        return {ln.spec for ln in lines + extra if not ln.ok}

    assert gym_lines(from_gymnasium) == set()
    assert "MDP-04" in gym_lines(lambda e, gamma: from_gymnasium(e, gamma=gamma, is_slippery=False))
    assert "MDP-04" in gym_lines(lambda e, gamma: from_gymnasium(e, gamma=0.9))
    with monkeypatch.context() as m:  # V* 1 % off in the solve every line checks
        import dataclasses

        from reference.dp import policy_iteration as pi_fn

        m.setattr(report, "policy_iteration",
                  lambda mdp: dataclasses.replace(res := pi_fn(mdp), values=res.values * 1.01))
        assert "MDP-04" in gym_lines(from_gymnasium)


def test_report_refuses_a_negative_seed(capsys: pytest.CaptureFixture[str]) -> None:
    """--seed -1 ended in a numpy traceback; it is a usage error now (argparse, exit 2)."""
    with pytest.raises(SystemExit) as info:
        report.main(["--seed", "-1"])
    assert info.value.code == 2
    assert "--seed must be >= 0" in capsys.readouterr().err
