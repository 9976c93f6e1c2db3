#!/usr/bin/env python
"""How reviewable are the diffs ``adopter fix`` writes?  Figures over the paper corpus.

Run from the repository root::

    .venv/bin/python benchmarks/diff_quality.py [--cache .bench] [--keep DIR] [--select ...]

It builds the paper corpus as ``benchmarks/paper.py`` does (the 199 modeling files of the
pinned ``transformers`` wheels, downloaded at run time, plus their package ``__init__.py``
files), copies it into a fresh folder twice (``before/`` stays as it is, ``after/`` is fixed),
runs ``adopter fix --no-deps`` (default rules unless ``--select``) on ``after/``, and prints:

* the changed files, and Ruff's ``F401`` (unused import) + ``I001`` (unsorted imports)
  findings in them, before and after the fix (target: no growth; the transformers files
  are not isort-clean to begin with), and the number of lines Ruff's import sorting would
  change in them (a file keeps one ``I001`` finding however disordered its block gets).  Ruff
  runs with ``--isolated`` (its defaults, the same for both copies) from each copy's root;
* multi-line statements collapsed into one line by the fix (target: 0): a multi-line
  statement the fix changed or removed, in a function where the fix wrote a one-line
  statement assigning the same target (or of the same kind: ``return``, a bare call);
* new lines of 100 characters or more where the code they replace had none (nothing is
  configured in these files, so the rule is "under 100 where the original was");
* changed files that do not compile (target: 0), and whether a second ``adopter fix`` over
  the fixed copy changes anything (target: nothing);
* the changed files that import the analysis tool (``adopter``);
* ``adopter check``'s fixable findings against what ``fix`` then applied, per file and rule
  (target: no disagreement), and the CPU cost of the planning step that sets the fixable
  flag on the check path (interleaved runs in one process, median ratio and its spread).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LONG = 100


def _paper():
    spec = importlib.util.spec_from_file_location("paper_bench", REPO / "benchmarks" / "paper.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_bench"] = module
    spec.loader.exec_module(module)
    return module


def copy_corpus(paper, cache: Path, dest: Path) -> list[str]:
    """The corpus files (and their package ``__init__.py``) under ``dest``; relative paths."""
    files = paper.build_corpus(cache, quiet=True)
    rel = []
    for model_file in files:
        root = cache / "src" / f"transformers-{model_file.wheel}"
        members = [model_file.member, *paper.package_inits(model_file.member, _names(root))]
        for member in members:
            target = dest / member
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / member, target)
        rel.append(model_file.member)
    return sorted(rel)


def _names(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "transformers").rglob("__init__.py")}


def ruff_findings(root: Path, files: list[str]) -> list[dict]:
    if not files:
        return []
    command = [str(Path(sys.executable).parent / "ruff"), "check", "--isolated", "--select", "F401,I001",
               "--output-format", "json", "--no-cache", *files]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"ruff failed: {done.stderr.strip()}")
    return json.loads(done.stdout or "[]")


def isort_diff_lines(root: Path, files: list[str]) -> int:
    """Lines Ruff's import sorting (``I001`` fix) would change in ``files``: a file that
    already has an unsorted import block keeps one ``I001`` finding however many more
    lines are out of place, so the count of findings alone cannot show new disorder."""
    if not files:
        return 0
    command = [str(Path(sys.executable).parent / "ruff"), "check", "--isolated", "--select", "I001",
               "--diff", "--no-cache", *files]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    return sum(1 for line in done.stdout.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---")))


def run_fix(root: Path, files: list[str], select: str | None) -> tuple[int, float, str]:
    command = [str(Path(sys.executable).parent / "adopter"), "fix", "--no-deps", *files]
    if select:
        command[2:2] = ["--select", select]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    return done.returncode, time.perf_counter() - start, done.stderr


# ----------------------------------------------------------------------------- collapsed statements


def _statements(text: str) -> dict[str, list[tuple[str, str, bool]]]:
    """Function qualname -> its simple statements as (key, dedented text, multi-line)."""
    tree = ast.parse(text)
    lines = text.split("\n")
    out: dict[str, list] = {}

    def walk(node, qual):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                walk(child, f"{qual}.{child.name}")
            elif isinstance(child, ast.stmt) and not hasattr(child, "body"):
                segment = "\n".join(lines[child.lineno - 1: child.end_lineno])
                text_ = textwrap.dedent(segment).strip()
                out.setdefault(qual, []).append((_key(child), text_, child.end_lineno > child.lineno))
            elif isinstance(child, ast.stmt):
                walk(child, qual)

    walk(tree, "")
    return out


def _key(stmt: ast.stmt) -> str:
    if isinstance(stmt, ast.Assign):
        return "=" + "|".join(ast.dump(t) for t in stmt.targets)
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return "=" + ast.dump(stmt.target)
    return type(stmt).__name__


def collapsed(old: str, new: str) -> list[str]:
    """Multi-line statements of ``old`` that ``new`` wrote as one line (their first lines)."""
    found = []
    old_stmts, new_stmts = _statements(old), _statements(new)
    for qual, stmts in old_stmts.items():
        new_here = new_stmts.get(qual, [])
        new_texts = {t for _, t, _ in new_here}
        old_texts = {t for _, t, _ in stmts}
        added = [(k, t, m) for k, t, m in new_here if t not in old_texts]
        for key, text_, multi in stmts:
            if not multi or text_ in new_texts:
                continue
            if any(k == key and not m for k, _, m in added):
                found.append(f"{qual}: {text_.splitlines()[0]}")
    return found


def new_long_lines(old: str, new: str) -> list[str]:
    """Lines the fix wrote that are 100 characters or longer where the lines they replace
    were all shorter."""
    out = []
    a, b = old.split("\n"), new.split("\n")
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag not in ("replace", "insert"):
            continue
        before = max((len(line) for line in a[i1:i2]), default=0)
        if before >= LONG:
            continue
        out += [line.strip()[:80] for line in b[j1:j2] if len(line) >= LONG]
    return out


def _imports_tool(text: str) -> bool:
    for node in ast.parse(text).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "adopter":
            return True
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "adopter" for a in node.names):
            return True
    return False


def check_fixable(root: Path, files: list[str], select: str | None) -> dict[tuple[str, str], int]:
    """(file, rule) -> findings ``adopter check`` reports fixable."""
    command = [str(Path(sys.executable).parent / "adopter"), "check", "--output-format", "json", *files]
    if select:
        command[2:2] = ["--select", select]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    counts: dict[tuple[str, str], int] = {}
    for item in json.loads(done.stdout or "[]"):
        if item["fixable"]:
            key = (item["path"], item["rule"])
            counts[key] = counts.get(key, 0) + 1
    return counts


FIXED = re.compile(r"^(?P<path>\S+): fixed \d+ \((?P<rules>[^)]*)\)$")


def fix_applied(log: str) -> dict[tuple[str, str], int]:
    """(file, rule) -> findings ``adopter fix`` says it fixed (its per-file summary lines)."""
    counts: dict[tuple[str, str], int] = {}
    for line in log.splitlines():
        found = FIXED.match(line.strip())
        if not found:
            continue
        for part in found.group("rules").split(", "):
            rule, _, times = part.partition(" x")
            counts[(found.group("path"), rule)] = int(times or 1)
    return counts


def planning_cost(root: Path, files: list[str], runs: int) -> tuple[float, float, float, float]:
    """Seconds of the check path over ``files`` without and with fix's planning step (the
    fixable flag), interleaved runs in this process: (median without, median with, median
    ratio, spread of the ratio)."""
    import statistics

    from adopter.engine import analyze
    from adopter.ruleset import load_rules, select_rules
    from adopter.structure import package_of
    from adopter.synth.fixable import plan_findings

    rules = select_rules(load_rules())
    texts = [(str(root / f), (root / f).read_text(encoding="utf-8")) for f in files]
    packages = {path: package_of(path) for path, _ in texts}
    plain, planned, ratios = [], [], []
    for _ in range(runs):
        start = time.process_time()
        for path, text in texts:
            analyze(text, path, rules, packages[path])
        a = time.process_time() - start
        start = time.process_time()
        for path, text in texts:
            plan_findings(analyze(text, path, rules, packages[path]), text, path)
        b = time.process_time() - start
        plain.append(a)
        planned.append(b)
        ratios.append(b / a)
    return (statistics.median(plain), statistics.median(planned), statistics.median(ratios),
            max(ratios) - min(ratios))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=str(REPO / ".bench"))
    parser.add_argument("--keep", help="work in this folder (kept) instead of a temporary one")
    parser.add_argument("--select", help="rule ids for adopter fix (default: the default rules)")
    parser.add_argument("--timing-runs", type=int, default=5,
                        help="interleaved runs timing check's planning step (0: skip)")
    args = parser.parse_args(argv)
    paper = _paper()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="adopter-diff-"))
    if work.exists():
        shutil.rmtree(work)
    before, after = work / "before", work / "after"
    files = copy_corpus(paper, Path(args.cache), before)
    shutil.copytree(before, after)

    predicted = check_fixable(before, files, args.select)
    code, seconds, log = run_fix(after, files, args.select)
    applied = fix_applied(log)
    disagree = sorted(
        (path, rule, predicted.get((path, rule), 0), applied.get((path, rule), 0))
        for path, rule in set(predicted) | set(applied)
        if predicted.get((path, rule), 0) != applied.get((path, rule), 0)
    )
    if code not in (0, 1):
        print(log[-3000:], file=sys.stderr)
    changed = [f for f in files if (before / f).read_bytes() != (after / f).read_bytes()]
    old_ruff = ruff_findings(before, changed)
    new_ruff = ruff_findings(after, changed)
    old_isort, new_isort = isort_diff_lines(before, changed), isort_diff_lines(after, changed)

    collapses, long_lines, broken, tool = [], [], [], []
    per_file: dict[str, tuple[int, int]] = {}
    for f in changed:
        old, new = (before / f).read_text(encoding="utf-8"), (after / f).read_text(encoding="utf-8")
        collapses += [f"{f}: {c}" for c in collapsed(old, new)]
        long_lines += [f"{f}: {c}" for c in new_long_lines(old, new)]
        try:
            compile(new, f, "exec")
        except SyntaxError as exc:
            broken.append(f"{f}: {exc}")
        if _imports_tool(new):
            tool.append(f)
    for item in old_ruff:
        name = str(Path(item["filename"]).relative_to(before))
        per_file[name] = (per_file.get(name, (0, 0))[0] + 1, per_file.get(name, (0, 0))[1])
    for item in new_ruff:
        name = str(Path(item["filename"]).relative_to(after))
        per_file[name] = (per_file.get(name, (0, 0))[0], per_file.get(name, (0, 0))[1] + 1)
    grew = sorted((f, o, n) for f, (o, n) in per_file.items() if n > o)

    snapshot = {f: (after / f).read_bytes() for f in files}
    code2, seconds2, log2 = run_fix(after, files, args.select)
    second = [f for f in files if (after / f).read_bytes() != snapshot[f]]

    def count(findings, code_):
        return sum(1 for item in findings if item["code"] == code_)

    print(f"adopter fix over the paper corpus ({len(files)} files; rules: {args.select or 'default'})")
    print(f"  fix exit code {code}, {seconds:.1f} s wall; changed files: {len(changed)}")
    print(f"  Ruff F401+I001 in the changed files: before {len(old_ruff)} "
          f"(F401 {count(old_ruff, 'F401')}, I001 {count(old_ruff, 'I001')}), after {len(new_ruff)} "
          f"(F401 {count(new_ruff, 'F401')}, I001 {count(new_ruff, 'I001')})")
    print(f"  files where they grew: {len(grew)}")
    print(f"  lines Ruff's import sorting would change in them: before {old_isort}, after {new_isort}")
    for f, o, n in grew[:20]:
        print(f"    {f}: {o} -> {n}")
    print(f"  multi-line statements collapsed into one line: {len(collapses)}")
    for line in collapses[:20]:
        print(f"    {line}")
    print(f"  new lines >= {LONG} characters where the replaced lines were shorter: {len(long_lines)}")
    for line in long_lines[:20]:
        print(f"    {line}")
    print(f"  changed files that do not compile: {len(broken)}")
    for line in broken[:20]:
        print(f"    {line}")
    print(f"  second run: exit code {code2}, files changed: {len(second)}")
    for f in second[:20]:
        print(f"    {f}")
    print(f"  changed files importing the analysis tool (adopter): {len(tool)}")
    print(f"  check's fixable findings: {sum(predicted.values())}; fix's applied: {sum(applied.values())}; "
          f"(file, rule) pairs that disagree: {len(disagree)}")
    for path, rule, p, a in disagree[:20]:
        print(f"    {path} {rule}: check {p} fixable, fix applied {a}")
    if args.timing_runs:
        plain, planned, ratio, spread = planning_cost(before, files, args.timing_runs)
        print(f"  check path CPU over the corpus, in process, {args.timing_runs} interleaved runs: "
              f"analysis {plain:.2f} s, analysis + planning (the fixable flag) {planned:.2f} s; "
              f"ratio {ratio:.3f} (spread {spread:.3f})")
    if args.keep:
        print(f"  (kept: {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    ok = (len(new_ruff) <= len(old_ruff) and new_isort <= old_isort and not collapses and not broken and not second and not disagree)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
