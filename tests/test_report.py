"""The main job (``./run.sh report``) passes on a clean checkout: every line of it is a check (14 s)."""

from __future__ import annotations

import pytest

from reference import report


def test_report_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "FAIL" not in out
    for spec in ("BEL-10", "BEL-26", "BEL-27", "BEL-29", "BEL-30", "BEL-36", "BEL-38"):
        assert f" {spec} " in out, spec
