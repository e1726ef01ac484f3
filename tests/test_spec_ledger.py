"""Keeps the spec ledger (spec/*.toml) honest: well formed, every symbol imports, every test exists.

The ledger maps each inventory ID of the source text to its statement, the code implementing it and
the tests verifying it (format: spec/README.md). Parts listed in DONE_PREFIXES must be complete.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec"
INVENTORY = SPEC / "inventory.md"  # the repository's copy (its IDs, errata and open choices resolve in any clone)
SHARED_INVENTORY = ROOT.parent / "shared" / "spec-inventory.md"  # the team's original, where present
KINDS = {"exact", "statistical", "symbolic", "empirical", "definition"}
REQUIRED = {"id": str, "title": str, "statement": str, "check": str}
OPTIONAL = {"code": list, "tests": list, "erratum": str, "evidence": list, "note": str}
ID_RE = re.compile(r"^[A-Z]{2,5}-\d{2,3}$")

# ID ranges that the finished issues cover; every one of them must have a complete entry.
DONE: dict[str, tuple[int, ...]] = {
    "MDP": tuple(range(1, 26)),
    "BEL": tuple(range(1, 39)),
    "PG": tuple(range(1, 54)),
    "EVAL": tuple(range(1, 31)),
    "GAME": tuple(range(1, 46)),
    "TR": tuple(range(1, 54)),
}


def _items() -> list[tuple[str, dict[str, object]]]:
    out = []
    for path in sorted(SPEC.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for item in data.get("item", []):
            out.append((path.name, item))
    return out


@cache
def _test_functions(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return frozenset(names)


ITEMS = _items()


def test_ledger_files_parse_and_ids_are_unique() -> None:
    assert ITEMS, "no ledger items found in spec/*.toml"
    ids = [item.get("id") for _f, item in ITEMS]
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, f"duplicate ledger IDs: {sorted(dupes)}"  # type: ignore[type-var]


@pytest.mark.parametrize("fname,item", ITEMS, ids=[str(i.get("id")) for _f, i in ITEMS])
def test_ledger_item_is_well_formed(fname: str, item: dict[str, object]) -> None:
    for key, typ in REQUIRED.items():
        assert isinstance(item.get(key), typ), f"{fname}: {item.get('id')}: `{key}` missing or not {typ.__name__}"
    for key, value in item.items():
        assert key in REQUIRED or key in OPTIONAL, f"{fname}: {item['id']}: unknown key `{key}`"
        if key in OPTIONAL:
            assert isinstance(value, OPTIONAL[key]), f"{fname}: {item['id']}: `{key}` must be a {OPTIONAL[key]}"
    assert ID_RE.match(str(item["id"])), f"{fname}: malformed id {item['id']!r}"
    assert item["check"] in KINDS, f"{fname}: {item['id']}: check {item['check']!r} not in {sorted(KINDS)}"
    assert str(item["statement"]).strip(), f"{item['id']}: empty statement"
    for key in ("code", "tests", "evidence"):
        entries = list(item.get(key, []))  # type: ignore[call-overload]
        dupes = sorted({e for e in entries if entries.count(e) > 1})
        assert not dupes, f"{fname}: {item['id']}: `{key}` lists {dupes} more than once"
    has_code_and_tests = bool(item.get("code")) and bool(item.get("tests"))
    assert has_code_and_tests or item.get("evidence"), (
        f"{item['id']}: needs `code` and `tests`, or `evidence`")


@pytest.mark.parametrize("fname,item", ITEMS, ids=[str(i.get("id")) for _f, i in ITEMS])
def test_ledger_code_symbols_import(fname: str, item: dict[str, object]) -> None:
    for ref in item.get("code", []):  # type: ignore[attr-defined]
        module, _, symbol = str(ref).partition(":")
        assert symbol, f"{item['id']}: code entry {ref!r} must be 'module:symbol'"
        if module.startswith("scalable") and importlib.util.find_spec("torch") is None:
            pytest.skip("scalable symbols need the scalable extra (torch)")
        mod = importlib.import_module(module)
        obj: object = mod
        for part in symbol.split("."):
            assert hasattr(obj, part), f"{item['id']}: {module} has no attribute {symbol!r}"
            obj = getattr(obj, part)


@pytest.mark.parametrize("fname,item", ITEMS, ids=[str(i.get("id")) for _f, i in ITEMS])
def test_ledger_tests_and_evidence_exist(fname: str, item: dict[str, object]) -> None:
    for node in item.get("tests", []):  # type: ignore[attr-defined]
        path, _, name = str(node).partition("::")
        assert (ROOT / path).is_file(), f"{item['id']}: test file {path} does not exist"
        func = name.split("[")[0].split("::")[-1]
        assert func in _test_functions(path), f"{item['id']}: {path} has no test {func!r}"
    for ev in item.get("evidence", []):  # type: ignore[attr-defined]
        assert (ROOT / str(ev)).exists(), f"{item['id']}: evidence path {ev} does not exist"


def test_ledger_covers_every_id_of_the_finished_parts() -> None:
    present = {str(item["id"]) for _f, item in ITEMS}
    missing = [f"{p}-{n:02d}" for p, nums in DONE.items() for n in nums if f"{p}-{n:02d}" not in present]
    assert not missing, f"ledger lacks {missing}"


def test_ledger_ids_are_exactly_the_inventory_ids() -> None:
    """Every ledger ID is in spec/inventory.md and every inventory ID has a ledger item."""
    text = INVENTORY.read_text(encoding="utf-8")
    known = set(re.findall(r"\*\*([A-Z]{2,5}-\d{2,3})\*\*", text))
    present = {str(item["id"]) for _f, item in ITEMS}
    assert len(known) > 200
    assert not sorted(present - known), f"ledger IDs not in the inventory: {sorted(present - known)}"
    assert not sorted(known - present), f"inventory IDs without a ledger item: {sorted(known - present)}"


@pytest.mark.skipif(not SHARED_INVENTORY.is_file(), reason="the team's shared inventory is not present (../shared)")
def test_the_inventory_copy_is_current() -> None:
    assert INVENTORY.read_bytes() == SHARED_INVENTORY.read_bytes(), (
        "spec/inventory.md differs from ../shared/spec-inventory.md: copy it again")


def test_every_public_reference_function_names_its_inventory_id() -> None:
    """README: every public function of ``reference`` names the inventory ID it implements in its docstring, or
    says what it supports (``Spec: support for BEL-35``) or ``Spec: none`` (validation and tolerance helpers).
    48 of 270 had neither (review 2026-12-07)."""
    ids = re.compile(r"\b(MDP|BEL|EVAL|PG|TR|GAME)-\d+|Spec: none\b")
    missing = []
    for path in sorted((ROOT / "reference").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                if not ids.search(doc):
                    missing.append(f"{path.name}:{node.name}")
    assert not missing, "public functions without a Spec: line: " + ", ".join(missing)
