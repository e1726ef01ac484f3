"""Render the spec ledger (spec/*.toml) as citable Markdown pages under docs/ledger/.

    python spec/render.py           # (re)write docs/ledger/
    python spec/render.py --check   # exit 1 (and name the stale files) if docs/ledger/ is not up to date

One page per part of the text (MDP, BEL, EVAL, PG, TR, GAME) and an index. Each inventory ID gets an
anchor (``docs/ledger/bel.md#BEL-04``) with its statement as implemented (the corrected one where the
text has an erratum), how it is checked, the code that implements it (with the first line of that code's
docstring) and the tests that verify it, linked to the files. The pages are generated, never edited by
hand: ``tests/test_ledger_docs.py`` fails when they differ from what this script writes, so a page read
at a commit states that commit's ledger. Links name files, not line numbers, so editing code does not
stale the pages; changing the ledger, or the first docstring line of a listed symbol, does.

Only the standard library is used (tomllib and ast): nothing is imported from the code it documents.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec"
OUT = ROOT / "docs" / "ledger"

# The parts in the order of the text, their ledger files and page names.
PARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("MDP", "Markov decision processes and imitation learning", ("mdp.toml", "mdp_imitation.toml")),
    ("BEL", "Bellman equations, value iteration, policy iteration", ("bel.toml",)),
    ("EVAL", "Policy evaluation: MC, TD, k-step TD, stop-gradient", ("eval.toml",)),
    ("PG", "Policy gradients", ("pg.toml",)),
    ("TR", "Trust regions, GAE, PPO, GRPO", ("tr.toml",)),
    ("GAME", "Games, minimax optimisation, search", ("game.toml",)),
)

CHECKS = {
    "exact": "verified against an exact oracle (linear solve, enumeration of every trajectory, exact gradient) "
             "to a derived floating-point tolerance",
    "statistical": "verified by sampling with a fixed seed and a stated confidence bound",
    "symbolic": "verified by SymPy on the text's algebra",
    "empirical": "an empirical claim of the text, reproduced by a run whose script and report are listed",
    "definition": "a definition: implemented and exercised by the listed tests; nothing to prove",
}


RECORDED_ONLY = ("recorded, not computed: a historical, external or qualitative statement with no code and no test; "
                 "the note says why and the evidence gives the source")


class LedgerError(ValueError):
    """The ledger cannot be rendered (a malformed item, an unknown part, a code path that does not exist)."""


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    statement: str
    check: str
    code: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    erratum: str = ""
    evidence: tuple[str, ...] = ()
    note: str = ""

    @property
    def number(self) -> int:
        return int(self.id.rsplit("-", 1)[1])


def load_items(spec_dir: Path = SPEC) -> dict[str, list[Item]]:
    """Ledger items per part prefix, sorted by number. Raises LedgerError on malformed input."""
    parts: dict[str, list[Item]] = {}
    for prefix, _title, files in PARTS:
        items: list[Item] = []
        for name in files:
            path = spec_dir / name
            if not path.is_file():
                raise LedgerError(f"ledger file {path} is missing")
            for raw in tomllib.loads(path.read_text(encoding="utf-8")).get("item", []):
                try:
                    item = Item(id=raw["id"], title=raw["title"], statement=raw["statement"], check=raw["check"],
                                code=tuple(raw.get("code", ())), tests=tuple(raw.get("tests", ())),
                                erratum=raw.get("erratum", ""), evidence=tuple(raw.get("evidence", ())),
                                note=raw.get("note", ""))
                except KeyError as e:
                    raise LedgerError(f"{name}: item {raw.get('id', '?')!r} lacks {e.args[0]!r}") from None
                if not item.id.startswith(prefix + "-"):
                    raise LedgerError(f"{name}: {item.id} does not belong to part {prefix}")
                if item.check not in CHECKS:
                    raise LedgerError(f"{name}: {item.id}: unknown check kind {item.check!r}")
                items.append(item)
        parts[prefix] = sorted(items, key=lambda i: i.number)
    return parts


# ------------------------------------------------------------------------------------------ code lookup
def module_path(module: str) -> Path:
    """``reference.exact`` -> reference/exact.py (or a package's __init__.py), relative to the root."""
    base = Path(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if (ROOT / cand).is_file():
            return cand
    raise LedgerError(f"module {module!r} has no source file under {ROOT}")


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse((ROOT / path).read_text(encoding="utf-8"))


def _find(body: list[ast.stmt], name: str) -> tuple[ast.stmt | None, str]:
    """The definition of ``name`` in ``body`` and its docstring: a def's or class's own, or for a constant
    the string literal right after its assignment (the attribute-docstring convention)."""
    for k, node in enumerate(body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return node, ast.get_docstring(node) or ""
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                nxt = body[k + 1] if k + 1 < len(body) else None
                doc = (nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                       and isinstance(nxt.value.value, str) else "")
                return node, doc
    return None, ""


def _imported_from(body: list[ast.stmt], name: str) -> str | None:
    """The absolute module that ``from module import name`` in ``body`` imports ``name`` from, if any."""
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if any((a.asname or a.name) == name and a.name == name for a in node.names):
                return node.module
    return None


def symbol_summary(ref: str) -> tuple[Path, str]:
    """``module:Symbol.attr`` -> (source path, first line of its docstring, or "" if none / not found
    statically, e.g. a name re-exported from another module)."""
    module, _, symbol = ref.partition(":")
    if not symbol:
        raise LedgerError(f"code entry {ref!r} must be 'module:symbol'")
    path = module_path(module)
    body: list[ast.stmt] = _tree(path).body
    doc = ""
    for depth, part in enumerate(symbol.split(".")):
        node, doc = _find(body, part)
        if node is None:
            origin = _imported_from(body, part) if depth == 0 else None
            if origin is not None:  # a re-export: document it by its definition
                _p, doc = symbol_summary(f"{origin}:{symbol}")
                return path, f"{doc} (re-exported from `{origin}`)" if doc else ""
            return path, ""
        body = node.body if isinstance(node, ast.ClassDef) else []
    return path, inspect.cleandoc(doc).split("\n", 1)[0].strip()


# ------------------------------------------------------------------------------------------ rendering
def _prose(text: str) -> str:
    """Plain ledger text (titles, notes, errata, docstring lines) as Markdown that shows it verbatim:
    ``*`` and ``_`` escaped (no accidental emphasis in V*, Q*), ``<`` as ``&lt;`` (no swallowed
    pseudo-tags such as <term>); code spans in backticks are left as they are."""
    parts = re.split(r"(`+[^`]*`+)", text)
    for k in range(0, len(parts), 2):  # even pieces lie outside code spans
        parts[k] = parts[k].replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_").replace("<", "&lt;")
    return "".join(parts)


def _md_cell(text: str) -> str:
    return _prose(text).replace("|", "\\|").replace("\n", " ")


def _link(path: Path | str, label: str, page_dir: Path = OUT) -> str:
    rel = Path("../" * len(page_dir.relative_to(ROOT).parts)) / path
    return f"[{label}]({rel.as_posix()})"


def _statement(text: str) -> list[str]:
    """Prose with inline $...$ math stays prose; a bare LaTeX formula (no $) becomes a fenced "math"
    block, which GitHub renders as display math without Markdown touching its underscores or backslashes."""
    text = text.strip()
    if "$" in text:
        return [text]
    return ["```math", text, "```"]


def render_item(item: Item) -> str:
    lines = [f'<a id="{item.id}"></a>', "", f"### {item.id}: {_prose(item.title)}", "", *_statement(item.statement), ""]
    if item.code or item.tests:
        lines.append(f"*Check:* **{item.check}**: {CHECKS[item.check]}.")
    else:  # nothing computable: the kind's sentence would promise tests or a script that do not exist
        lines.append(f"*Check:* **{item.check}**: {RECORDED_ONLY}.")
    if item.erratum:
        lines += ["", f"*Erratum (implemented as corrected):* {_prose(item.erratum.strip())}"]
    if item.note:
        lines += ["", f"*Note:* {_prose(item.note.strip())}"]
    if item.code:
        lines += ["", "*Code:*", ""]
        for ref in item.code:
            path, doc = symbol_summary(ref)
            lines.append(f"- {_link(path, f'`{ref}`')}" + (f": {_prose(doc)}" if doc else ""))
    if item.tests:
        lines += ["", "*Tests:*", ""]
        for node in item.tests:
            test_file, _, name = node.partition("::")
            lines.append(f"- {_link(test_file, f'`{name}`')} ({test_file})")
    if item.evidence:
        lines += ["", "*Evidence:*", ""]
        lines += [f"- {_link(ev, f'`{ev}`')}" for ev in item.evidence]
    return "\n".join(lines) + "\n"


HEADER = "<!-- Generated by spec/render.py from spec/*.toml. Do not edit: edit the ledger and re-run it. -->\n"


def render_part(prefix: str, title: str, items: list[Item]) -> str:
    kinds = Counter(i.check for i in items)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    out = [HEADER, f"# {prefix}: {title}", "",
           f"{len(items)} inventory IDs ({summary}). Ledger: " + ", ".join(
               _link(f"spec/{f}", f"`spec/{f}`") for p, _t, fs in PARTS if p == prefix for f in fs)
           + ". Index: [all parts](README.md).", ""]
    out += ["| ID | title | check |", "|---|---|---|"]
    out += [f"| [{i.id}](#{i.id}) | {_md_cell(i.title)} | {i.check} |" for i in items]
    out.append("")
    for item in items:
        out += [render_item(item)]
    return "\n".join(out).rstrip("\n") + "\n"


def render_index(parts: dict[str, list[Item]]) -> str:
    total = sum(len(v) for v in parts.values())
    kinds = Counter(i.check for v in parts.values() for i in v)
    errata = [i for v in parts.values() for i in v if i.erratum]
    out = [HEADER, "# The spec ledger", "",
           f"Every definition, theorem, algorithm and claim of the source text, {total} inventory IDs in all, with "
           "its statement as implemented, how it is checked, the code that implements it and the tests that "
           "verify it. `./run.sh test` checks every entry: each code symbol imports, each test exists and passes "
           "(`tests/test_spec_ledger.py`), and these pages are the ones `spec/render.py` writes from the ledger "
           "(`tests/test_ledger_docs.py`). Where the text has an erratum, the entry states and implements the "
           f"corrected statement ({len(errata)} entries).", "",
           "To cite an entry, cite the page's anchor at a commit, e.g. `docs/ledger/bel.md#BEL-04` at the commit "
           "you checked against.", "",
           "| part | IDs | " + " | ".join(sorted(CHECKS)) + " |", "|---|---:|" + "---:|" * len(CHECKS)]
    for prefix, title, _f in PARTS:
        c = Counter(i.check for i in parts[prefix])
        out.append(f"| [{prefix}: {title}]({prefix.lower()}.md) | {len(parts[prefix])} | "
                   + " | ".join(str(c.get(k, 0)) for k in sorted(CHECKS)) + " |")
    out.append(f"| all | {total} | " + " | ".join(str(kinds.get(k, 0)) for k in sorted(CHECKS)) + " |")
    out += ["", "Check kinds:", ""] + [f"- **{k}**: {v}." for k, v in sorted(CHECKS.items())]
    out += ["", "## Entries with an erratum", "", "| ID | title | erratum |", "|---|---|---|"]
    out += [f"| [{i.id}]({i.id.split('-')[0].lower()}.md#{i.id}) | {_md_cell(i.title)} | {_md_cell(i.erratum)} |"
            for i in errata]
    return "\n".join(out) + "\n"


def render_all(spec_dir: Path = SPEC) -> dict[str, str]:
    """File name under docs/ledger/ -> content."""
    parts = load_items(spec_dir)
    pages = {f"{p.lower()}.md": render_part(p, t, parts[p]) for p, t, _f in PARTS}
    pages["README.md"] = render_index(parts)
    return pages


def stale_files(out: Path = OUT) -> list[str]:
    """Names of pages under ``out`` that differ from a fresh rendering, are missing, or are left over."""
    pages = render_all()
    stale = [n for n, text in pages.items() if not (out / n).is_file() or (out / n).read_text(encoding="utf-8") != text]
    extra = [p.name for p in out.glob("*.md") if p.name not in pages] if out.is_dir() else []
    return sorted(stale + extra)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/ledger/ is not what this script writes")
    args = ap.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(f"docs/ledger is stale ({', '.join(stale)}): run python spec/render.py", file=sys.stderr)
            return 1
        print("docs/ledger is up to date")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    pages = render_all()
    for p in OUT.glob("*.md"):
        if p.name not in pages:
            p.unlink()
    for name, text in pages.items():
        tmp = OUT / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(OUT / name)
    print(f"wrote {len(pages)} pages to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

