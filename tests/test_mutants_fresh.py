"""The mutation audit's mutants still match the code (benchmarks/mutants.py).

Each mutant's ``old`` text must occur exactly once in its file, or the audit (run by hand, not in CI) reports it
*stale* and tests nothing: a refactor that moves checked code must move its mutants too.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = runpy.run_path(str(ROOT / "benchmarks" / "mutants.py"))


def test_every_mutant_occurs_exactly_once_in_its_file() -> None:
    stale = []
    for mid, path, old, new, tests in MUTANTS["MUTANTS"]:
        n = (ROOT / path).read_text(encoding="utf-8").count(old)
        if n != 1:
            stale.append(f"{mid} ({path}: {n} occurrences)")
        assert old != new, mid
        for t in tests:
            assert (ROOT / t.split("::")[0]).is_file(), f"{mid}: no test file {t}"
    assert not stale, "stale mutants: " + ", ".join(stale)


def test_mutant_ids_are_unique_and_equivalents_exist() -> None:
    ids = [m[0] for m in MUTANTS["MUTANTS"]]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate mutant ids: {dup}"
    missing = sorted(set(MUTANTS["EQUIVALENT"]) - set(ids))
    assert not missing, f"EQUIVALENT names unknown mutants: {missing}"


@pytest.mark.parametrize("path", sorted({m[1] for m in MUTANTS["MUTANTS"]}))
def test_mutated_files_exist(path: str) -> None:
    assert (ROOT / path).is_file()
