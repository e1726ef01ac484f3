"""Mutation audit: does every test file catch the bugs it exists to catch?

Run by hand from the repository root (not a test, not in CI: about an hour on 2 cores for every mutant)::

    python benchmarks/mutation_audit.py                 # every mutant of benchmarks/mutants.py
    python benchmarks/mutation_audit.py --only adv2 tr10 # some of them
    python benchmarks/mutation_audit.py --profile dev    # Hypothesis profile (default "ci": derandomized)

Each mutant of :mod:`benchmarks.mutants` is one single-point change a real bug could make (an off-by-one in a
time index, a missing discount, termination and truncation confused, a dropped validation, a missing
stop-gradient). The audit clones the committed HEAD into a temporary folder, applies one mutant at a time, runs
that mutant's test files there (``pytest -x``, one process at a time) and reverts it. A mutant is *killed* when a
test fails (or the run exceeds the time limit), *survived* when all pass. The expected outcome: killed, except the
mutants listed in ``EQUIVALENT`` (changes that cannot alter any result, each with its reason). Any other survivor
is a test gap; a mutant whose text no longer occurs once in its file is *stale* (the code moved: update the entry).

Writes ``benchmarks/results/mutation_audit.md`` (``--out``) and exits 1 if any mutant other than the equivalent
ones survived or went stale.
"""

from __future__ import annotations

import argparse
import os
import re
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_mutant(clone: Path, path: str, old: str, new: str, tests: list[str], *, profile: str,
               timeout_s: int) -> tuple[str, str, int, float]:
    """Apply one mutant in ``clone``, run its tests, revert. Returns (status, detail, line, seconds)."""
    f = clone / path
    src = f.read_text(encoding="utf-8")
    if src.count(old) != 1:
        return "stale", f"the old text occurs {src.count(old)} times", 0, 0.0
    line = src[: src.index(old)].count("\n") + 1
    f.write_text(src.replace(old, new), encoding="utf-8")
    t0 = time.perf_counter()
    try:
        env = dict(os.environ, HYPOTHESIS_PROFILE=profile, PYTHONPATH=str(clone))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                              cwd=clone, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return "killed", "time limit", line, time.perf_counter() - t0
    finally:
        f.write_text(src, encoding="utf-8")
    dt = time.perf_counter() - t0
    if proc.returncode == 0:
        return "survived", "", line, dt
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
    errors = re.findall(r"^ERROR (\S+)", proc.stdout, re.M)
    return "killed", (failed or errors or [f"pytest exit {proc.returncode}"])[0], line, dt


def write_report(out: Path, rows: list[tuple[str, str, int, str, str, str, float]], equivalent: dict[str, str], *,
                 head: str, command: str, profile: str, total: int) -> None:
    """(Re)write the report after every mutant, so an interrupted audit keeps what it measured."""
    bad = [r for r in rows if r[5] != "ok"]
    killed = sum(r[3] == "killed" for r in rows)
    lines = ["# Mutation audit", "",
             f"Commit {head}; `{command}` (Hypothesis profile `{profile}`); {len(rows)} of {total} mutants run"
             + ("" if len(rows) == total else " (**interrupted or still running**)") + ".",
             f"{killed} killed, {sum(r[3] == 'survived' for r in rows)} survived "
             f"({sum(r[0] in equivalent and r[3] == 'survived' for r in rows)} of them equivalent), "
             f"{sum(r[3] == 'stale' for r in rows)} stale. "
             + ("Every non-equivalent mutant run is killed." if not bad else f"**{len(bad)} not as expected.**"), "",
             "| id | where | result | killing test, or why equivalent | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {mid} | {path}:{line} | {status} | {detail} | {verdict} |"
              for mid, path, line, status, detail, verdict, _ in rows]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", default=None, help="mutant ids to run (default: all)")
    ap.add_argument("--profile", default="ci", help="Hypothesis profile of the test runs (default: ci)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per mutant before it counts as killed")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mutation_audit.md")
    args = ap.parse_args()
    spec = runpy.run_path(str(ROOT / "benchmarks" / "mutants.py"))
    mutants: list[tuple[str, str, str, str, list[str]]] = spec["MUTANTS"]
    equivalent: dict[str, str] = spec["EQUIVALENT"]
    if args.only:
        unknown = set(args.only) - {m[0] for m in mutants}
        if unknown:
            ap.error(f"unknown mutant ids: {sorted(unknown)}")
        mutants = [m for m in mutants if m[0] in set(args.only)]
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.strip()
    if dirty:
        print("note: uncommitted changes are not audited (the audit runs on a clone of HEAD)", file=sys.stderr)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    rows: list[tuple[str, str, int, str, str, str, float]] = []
    only = ("" if not args.only else f" --only {' '.join(args.only)}" if len(args.only) <= 12
            else f" --only <{len(args.only)} ids: {args.only[0]} .. {args.only[-1]}>")
    command = "python benchmarks/mutation_audit.py" + only
    with tempfile.TemporaryDirectory(prefix="mutation-audit-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for i, (mid, path, old, new, tests) in enumerate(mutants, 1):
            status, detail, line, dt = run_mutant(clone, path, old, new, tests, profile=args.profile,
                                                  timeout_s=args.timeout)
            expect = "survived" if mid in equivalent else "killed"
            verdict = "ok" if status == expect else ("GAP" if status == "survived" else status.upper())
            rows.append((mid, path, line, status, detail or equivalent.get(mid, ""), verdict, dt))
            print(f"[{i}/{len(mutants)}] {mid:6s} {path}:{line} {status} {detail} ({dt:.0f} s) {verdict}", flush=True)
            write_report(args.out, rows, equivalent, head=head, command=command, profile=args.profile,
                         total=len(mutants))
    bad = [r for r in rows if r[5] != "ok"]
    print(f"wrote {args.out}; {len(bad)} not as expected")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
