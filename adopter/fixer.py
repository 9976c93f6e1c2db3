"""``adopter fix``: rewrite files (or print the diff) and declare the kernels' packages.

Per file: read it the way Python does, :func:`adopter.synth.fix_text`, then write it back
atomically in its own encoding, BOM and line endings (or, with ``--diff``, print a unified
diff and write nothing).  A one-line summary per file goes to stderr, with the findings
left as they are and why.  Then, unless ``--no-deps``, each project whose files now import
a kernel gets the kernel's package added to its dependency list (shown in the diff with
``--diff``).

Nothing is lost: the fixing of a file runs within its time budget (:mod:`adopter.budget`)
and writes nothing; only a finished result is written, atomically, and only if the file on
disk is still the one that was read (:func:`adopter.source.write_source`).  Any failure
leaves the file as it was.

Exit codes: 0 nothing to change, 1 something changed (or would, with ``--diff``), 2 a file
could not be read, parsed, fixed within its budget or written (the other files are still
fixed).
"""

from __future__ import annotations

import difflib
import os
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .budget import BudgetExceeded, time_budget
from .config import iter_python_files
from .ruleset import load_rules
from .source import SourceError, read_source, write_source
from .structure import package_of

PARALLEL_MIN_FILES = 8


@dataclass
class FileOutcome:
    path: str
    new_text: str | None = None  # None: nothing to change
    applied: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    requirements: set = field(default_factory=set)
    error: str | None = None


_WORKER_RULES: dict[tuple, list] = {}


def _fix_one(job: tuple) -> tuple[FileOutcome, object]:
    """Read and fix one file within its time budget (in a worker process for large trees); writes nothing.

    ``blocked`` maps the ids of rules whose kernel the file's project cannot take (its Python
    or version pins exclude it, :func:`adopter.synth.deps.unavailable`) to the reason: their
    findings are reported as not fixed."""
    from .synth import fix_text

    path, rule_ids, rule_dirs, budget, *rest = job
    blocked = rest[0] if rest else {}
    key = (rule_ids, rule_dirs)
    rules = _WORKER_RULES.get(key)
    if rules is None:
        wanted = set(rule_ids)
        rules = _WORKER_RULES[key] = [r for r in load_rules([Path(d) for d in rule_dirs]) if r.id in wanted]
    source = None
    try:
        with time_budget(budget):
            source = read_source(path)
            allowed = [r for r in rules if r.id not in blocked]
            result = fix_text(source.text, path, allowed, package_of(path))
            skipped = list(result.skipped)
            if blocked and result.error is None:
                from .engine import analyze

                left = analyze(result.text, path, [r for r in rules if r.id in blocked], package_of(path))
                skipped += [(f, blocked[f.rule]) for f in left.findings if f.fixable]
    except (SourceError, BudgetExceeded) as exc:
        return FileOutcome(path, error=str(exc)), source
    except Exception as exc:  # an internal error must not stop the other files
        return FileOutcome(path, error=f"internal error: {type(exc).__name__}: {exc}"), source
    outcome = FileOutcome(
        path, applied=list(result.applied), skipped=skipped,
        requirements=set(result.requirements), error=result.error,
    )
    if result.error is None and result.text != source.text:
        outcome.new_text = result.text
    return outcome, source


def _diff(old: str, new: str, path: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=f"a/{path.lstrip('/')}", tofile=f"b/{path.lstrip('/')}",
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _summary(outcome: FileOutcome, diff_only: bool) -> list[str]:
    lines = []
    if outcome.error:
        return [f"{outcome.path}: error: {outcome.error}"]
    if outcome.applied:
        counts = Counter(f.rule for f in outcome.applied)
        parts = [rule if n == 1 else f"{rule} x{n}" for rule, n in sorted(counts.items())]
        verb = "would fix" if diff_only else "fixed"
        lines.append(f"{outcome.path}: {verb} {len(outcome.applied)} ({', '.join(parts)})")
    for finding, reason in outcome.skipped:
        lines.append(f"{outcome.path}:{finding.line}:{finding.column}: {finding.rule} not fixed: {reason}")
    return lines


def run_fix(args, config_for, rules_for) -> int:
    from .cli import file_budget
    from .synth.deps import project_root, unavailable

    files, errors = iter_python_files(args.paths, config_for)
    jobs = []
    projects: dict = {}
    for path in files:
        config = config_for(path)
        rules = rules_for(args, config)
        dirs = tuple(str(d) for d in [*map(Path, getattr(args, "rules_dir", []) or []), *config.rule_paths])
        kernels = frozenset((r.kernel.requirement, r.kernel.requires_python) for r in rules)
        key = (project_root(Path(path)), kernels)
        if key not in projects:
            projects[key] = unavailable(*key)
        blocked = {r.id: f"not applied: {projects[key][r.kernel.requirement]}"
                   for r in rules if r.kernel.requirement in projects[key]}
        if not getattr(args, "unsafe_fixes", False):
            blocked.update({r.id: f"unsafe fix, not applied without --unsafe-fixes ({r.fix_safety.split(':', 1)[-1].strip()})"
                            for r in rules if r.fixable and not r.safe_fix})
        jobs.append((str(path), tuple(r.id for r in rules), dirs, file_budget(args, config), blocked))
    workers = getattr(args, "jobs", 0) or os.cpu_count() or 1
    if len(jobs) >= PARALLEL_MIN_FILES and workers > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            results = list(pool.map(_fix_one, jobs, chunksize=1))
    else:
        results = [_fix_one(job) for job in jobs]

    diff_only = bool(getattr(args, "diff", False))
    changed = False
    failed = bool(errors)
    needs: dict[Path, set[str]] = {}
    for path, message in errors:
        print(f"{path}: error: {message}", file=sys.stderr)
    for outcome, source in results:
        if outcome.error:
            failed = True
        if outcome.new_text is not None:
            if diff_only:
                sys.stdout.write(_diff(source.text, outcome.new_text, outcome.path))
                changed = True
            else:
                try:
                    write_source(source, outcome.new_text)
                    changed = True
                except SourceError as exc:
                    outcome.error = str(exc)
                    failed = True
            if not outcome.error and outcome.requirements:
                from .synth.deps import project_root

                root = project_root(Path(outcome.path))
                if root is not None:
                    needs.setdefault(root, set()).update(outcome.requirements)
                else:
                    print(f"{outcome.path}: note: no project folder found; install "
                          f"{', '.join(sorted(outcome.requirements))}", file=sys.stderr)
        for line in _summary(outcome, diff_only):
            print(line, file=sys.stderr)

    if not getattr(args, "no_deps", False):
        from .synth.deps import plan_dependencies

        for root, requirements in sorted(needs.items()):
            edits, notes = plan_dependencies(root, requirements)
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
            for edit in edits:
                shown = _display(edit.path)
                if diff_only:
                    sys.stdout.write(_diff(edit.old, edit.new, shown))
                else:
                    try:
                        write_source(edit.source, edit.new)
                    except SourceError as exc:
                        print(f"{shown}: error: {exc}", file=sys.stderr)
                        failed = True
                        continue
                changed = True
                verb = "would add" if diff_only else "added"
                print(f"{shown}: {verb} {', '.join(edit.said)}", file=sys.stderr)

    if failed:
        return 2
    return 1 if changed else 0
