"""The ledger's Markdown pages (docs/ledger/, written by spec/render.py) state the ledger of this commit,
and every relative link of the project's Markdown documentation resolves (file, and anchor where given).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEDGER_DOCS = ROOT / "docs" / "ledger"


def _render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spec_render", ROOT / "spec" / "render.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["spec_render"] = mod
    spec.loader.exec_module(mod)
    return mod


render = _render()

LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
ANCHOR_RE = re.compile(r'<a id="([^"]+)"></a>')
HEADING_RE = re.compile(r"^#{1,6}\s+(.*)$", re.M)


def _doc_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "spec" / "README.md", ROOT / "benchmarks" / "README.md"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    return [f for f in files if f.is_file()]


def _github_slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_\[\]()]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return set(ANCHOR_RE.findall(text)) | {_github_slug(h) for h in HEADING_RE.findall(text)}


def test_ledger_pages_are_what_render_writes() -> None:
    stale = render.stale_files()
    assert not stale, f"docs/ledger is stale ({', '.join(stale)}): run `python spec/render.py`"


def test_every_ledger_id_has_exactly_one_anchor_on_its_part_page() -> None:
    ids = []
    for path in sorted((ROOT / "spec").glob("*.toml")):
        ids += [str(i["id"]) for i in tomllib.loads(path.read_text(encoding="utf-8")).get("item", [])]
    assert len(ids) == len(set(ids)) and ids
    for ident in ids:
        page = LEDGER_DOCS / f"{ident.split('-')[0].lower()}.md"
        n = page.read_text(encoding="utf-8").count(f'<a id="{ident}"></a>')
        assert n == 1, f"{ident}: {n} anchors on {page.name}"


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    bad = []
    for target in LINK_RE.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            bad.append(f"{target} (no such path)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target} (no anchor {anchor!r})")
    assert not bad, f"{doc.relative_to(ROOT)}: broken links: {bad}"


def test_render_rejects_a_malformed_ledger(tmp_path: Path) -> None:
    good = '[[item]]\nid = "{id}"\ntitle = "t"\nstatement = "s"\ncheck = "{check}"\n'
    for _p, _t, files in render.PARTS:
        for f in files:
            (tmp_path / f).write_text("", encoding="utf-8")
    (tmp_path / "bel.toml").write_text(good.format(id="BEL-01", check="exact"), encoding="utf-8")
    assert [i.id for i in render.load_items(tmp_path)["BEL"]] == ["BEL-01"]
    (tmp_path / "bel.toml").write_text(good.format(id="PG-01", check="exact"), encoding="utf-8")
    with pytest.raises(render.LedgerError, match="does not belong to part BEL"):
        render.load_items(tmp_path)
    (tmp_path / "bel.toml").write_text(good.format(id="BEL-01", check="proved"), encoding="utf-8")
    with pytest.raises(render.LedgerError, match="unknown check kind 'proved'"):
        render.load_items(tmp_path)
    (tmp_path / "bel.toml").write_text('[[item]]\nid = "BEL-01"\n', encoding="utf-8")
    with pytest.raises(render.LedgerError, match="lacks 'title'"):
        render.load_items(tmp_path)
    (tmp_path / "bel.toml").unlink()
    with pytest.raises(render.LedgerError, match=r"bel\.toml is missing"):
        render.load_items(tmp_path)


def test_code_summaries_come_from_the_definitions() -> None:
    path, doc = render.symbol_summary("reference.surrogates:PPO_EPS_CLIP")
    assert path == Path("reference/surrogates.py") and "TR-17" in doc  # attribute docstring of a constant
    _p, doc = render.symbol_summary("scalable.core.grpo:GRPO_EPS_STD")
    assert doc.endswith("(re-exported from `reference.surrogates`)") and "TR-51" in doc
    with pytest.raises(render.LedgerError, match="no source file"):
        render.symbol_summary("reference.no_such_module:f")
    with pytest.raises(render.LedgerError, match="must be 'module:symbol'"):
        render.symbol_summary("reference.surrogates")


def test_plain_text_is_shown_verbatim() -> None:
    """Titles, notes and errata are plain text: no emphasis from V*, Q*, no swallowed <term>, code kept."""
    assert render._prose("V*, Q* <term> a_b `x_y*` c\\d") == "V\\*, Q\\* &lt;term> a\\_b `x_y*` c\\\\d"
    assert render._md_cell("a | b") == "a \\| b"
