"""Fixing files: per file :func:`fix_job` (any process), then the writes and the
dependency declarations (the parent process, once every result is in).

Per file: read it the way Python does (a notebook: its code cells as one module), run
:func:`adopter.synth.fix_text` within the file's time budget, and, for ``check --fix``,
analyse the fixed text for what is left to report.  Nothing is written by a worker; the
parent writes each finished result atomically, in the file's own encoding, BOM and line
endings, and only if the file on disk is still the one that was read
(:func:`adopter.source.write_source`).  Any failure leaves the file as it was.

Then, unless ``--no-deps``, each project whose files now import a kernel gets the kernel's
package added to its dependency list.  This module returns values; the doors print them.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from .records import dataclass, field
from pathlib import Path

from .budget import BudgetExceeded, time_budget
from .engine import AnalysisError, Finding, analyze
from .runner import Code, Job, place, read_code, rules_of
from .source import SourceError, write_source
from .structure import package_of


@dataclass
class FileOutcome:
    path: str
    new_text: str | None = None  # the whole new file (a notebook: its JSON); None: nothing to change
    applied: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    requirements: set = field(default_factory=set)
    error: str | None = None
    remaining: list[Finding] = field(default_factory=list)  # check --fix: what the fixed file still has
    old_code: str | None = None  # the code before and after, for the diff (a notebook: per cell)
    new_code: str | None = None
    cells: list[tuple[int, str, str]] = field(default_factory=list)
    source: object = None  # the SourceFile read (written back through it)
    notebook: bool = False
    # an attention whose callers may be in other files of the run (synth.run): asked again with the run
    wants_run: bool = False
    callers: dict = field(default_factory=dict)  # other files of the run -> the edits their calls need
    group: tuple = ()  # the files written together with this one (all or none)


def fix_job(job: Job, run=None, text: str | None = None) -> FileOutcome:
    """Read and fix one file within its time budget; writes nothing.

    ``job.blocked`` maps the ids of rules that are not applied to the reason: their kernel is
    one the file's project cannot take (its Python or version pins exclude it,
    :func:`adopter.synth.deps.unavailable`), or the fix is unsafe and ``--unsafe-fixes`` was
    not given.  Their findings are reported as not fixed, with that reason.

    ``run`` (a :class:`.synth.run.Run`): the files fixed together, for the callers of an
    attention in other files (:func:`join_callers`); ``text``: the file's code with its callers'
    edits already made (the file on disk is still the one written to)."""
    from .synth import fix_text

    blocked = dict(job.blocked)
    rules = rules_of(job.rules, job.rule_dirs, job.bundled)
    outcome = FileOutcome(job.path)
    code: Code | None = None
    try:
        with time_budget(job.budget):
            code = read_code(job)
            outcome.source = code.source
            outcome.notebook = code.notebook is not None
            package = package_of(job.path) if job.stdin is None and code.notebook is None else None
            start = code.text if text is None else text
            chosen = [r for r in rules if r.id not in blocked]
            result = fix_text(start, job.path, chosen, package, run=run)
            text = result.text if result.error is None else start
            skipped = list(result.skipped)
            if blocked and result.error is None:
                left = analyze(text, job.path, [r for r in rules if r.id in blocked], package)
                skipped += [(f, blocked[f.rule]) for f in left.findings if f.fixable]
            if job.report:
                from .synth.fixable import plan_findings

                shown = rules_of(job.report, job.rule_dirs, job.bundled)
                applied = frozenset(r.id for r in shown if r.helps_on(job.target) and r.id not in job.muted)
                found = plan_findings(analyze(text, job.path, shown, package), text, job.path, job.unsafe_fixes,
                                      applied)
                outcome.remaining = place(found, code, shown, job.target, job.muted)
    except (SourceError, AnalysisError, BudgetExceeded) as exc:
        outcome.error = str(exc)
        return outcome
    except Exception as exc:  # an internal error must not stop the other files
        outcome.error = f"internal error: {type(exc).__name__}: {exc}"
        return outcome
    outcome.applied = place(result.applied, code, rules, job.target)
    reasons = [reason for _, reason in skipped]
    outcome.skipped = list(zip(place([f for f, _ in skipped], code, rules, job.target), reasons))
    outcome.requirements = set(result.requirements)
    outcome.error = result.error
    outcome.callers = dict(result.callers)
    if run is None and package is not None and result.error is None:
        from .synth.weights import NO_CALLER, STORED_FOR_OUTSIDE

        outcome.wants_run = any(NO_CALLER in why or (job.unsafe_fixes and STORED_FOR_OUTSIDE in why)
                                for _, why in result.skipped)
    if result.error is None and text != code.text:
        if code.notebook is not None:
            from .notebook import rewrite

            try:
                outcome.new_text, outcome.cells = rewrite(code.notebook, result.text)
            except SourceError as exc:
                outcome.error = str(exc)
                outcome.remaining = []
                return outcome
        else:
            outcome.new_text = result.text
        outcome.old_code, outcome.new_code = code.text, result.text
    return outcome


def join_callers(jobs: list[Job], outcomes: list[FileOutcome]) -> list[FileOutcome]:
    """The outcomes again, where an attention declined for want of a caller in its own file
    is fixed with the run (:mod:`.synth.run`): its callers in the other files of the run get
    their edits, and every file of such a patch is written with the others or not at all
    (``group``).  A file outside the run is never edited (the reason of the skip names it).
    Runs in the parent process; nothing is done unless an outcome asks for it."""
    wanting = [i for i, o in enumerate(outcomes) if o.wants_run and not o.error]
    if not wanting:
        return outcomes
    from .synth.run import Run, incoming, render

    outcomes = list(outcomes)
    where = {os.path.abspath(job.path): i for i, job in enumerate(jobs)
             if job.stdin is None and job.path.endswith(".py")}

    def reader(path: str) -> str:
        return read_code(jobs[where[path]]).text

    run = Run.of_paths(where, reader=reader)
    run.unsafe_fixes = any(jobs[i].unsafe_fixes for i in wanting)
    first = {i: outcomes[i] for i in wanting}
    for i in wanting:
        outcomes[i] = fix_job(jobs[i], run=run)
    # every caller file's new outcome first; nothing is changed unless all of them can be made
    updates: dict[int, FileOutcome | str] = {}
    for path, edits in incoming(outcomes[i] for i in wanting).items():
        j = where.get(path)
        if j is None or outcomes[j].error or outcomes[j].notebook:
            return [first.get(k, o) for k, o in enumerate(outcomes)]
        original = run.file(path).original
        edited = render(run, path, edits)
        if outcomes[j].new_text is not None:  # the caller file has fixes of its own: made on the edited code
            again = fix_job(jobs[j], run=run, text=edited)
            if again.error or again.new_text is None:
                return [first.get(k, o) for k, o in enumerate(outcomes)]
            again.old_code = original
            again.callers, again.wants_run = outcomes[j].callers, outcomes[j].wants_run
            updates[j] = again
        else:
            updates[j] = edited
    for j, update in updates.items():
        if isinstance(update, str):
            outcome = outcomes[j]
            outcome.old_code = run.file(jobs[j].path).original
            outcome.new_text = outcome.new_code = update
        else:
            outcomes[j] = update
    for i in wanting:
        paths = set(outcomes[i].callers)
        if paths:
            members = tuple(sorted({os.path.abspath(jobs[i].path), *paths}))
            for path in members:
                outcomes[where[path]].group = members
    return outcomes


def write_all(outcomes: list[FileOutcome]) -> list[FileOutcome]:
    """Write the outcomes' new texts, each group of files (one patch over several files) all
    or none: when one of them cannot be written, those already written get their old text
    back and every member is reported with the error.  The outcomes written."""
    from .source import read_source

    done: list[FileOutcome] = []
    by_path = {os.path.abspath(o.path): o for o in outcomes}
    seen: set[str] = set()
    for outcome in outcomes:
        if not outcome.group:
            if write(outcome):
                done.append(outcome)
            continue
        if outcome.group in seen:
            continue
        seen.add(outcome.group)
        members = [by_path[p] for p in outcome.group if p in by_path]
        written: list[FileOutcome] = []
        for member in members:
            if member.new_text is None or member.error:
                continue
            if not write(member):
                for back in written:
                    try:
                        write_source(read_source(back.path), back.old_code)
                    except SourceError:
                        pass
                for other in members:
                    if other is not member:
                        other.error = other.error or f"not written: {member.path} (same patch) could not be"
                written = []
                break
            written.append(member)
        done += written
    return done


# --------------------------------------------------------------------------- presenting

def _lines(text: str) -> list[str]:
    r"""``text`` in lines that end at ``\n`` only, as ``patch`` and ``git apply`` read them
    (``str.splitlines`` also ends a line at a form feed or U+2028, which made a bogus
    ``\ No newline at end of file`` in the middle of the diff)."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def _name(path: str) -> str:
    return path.lstrip("/") if path != "-" else "-"


def unified_diff(old: str, new: str, path: str, *, label: str = "") -> str:
    """A ``git apply``-able unified diff (``a/``/``b/`` prefixes, no-newline markers), ending in
    a newline whatever the files end in."""
    name = _name(path) + label
    lines = difflib.unified_diff(_lines(old), _lines(new),
                                 fromfile=f"a/{name}", tofile=f"b/{name}")
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def diff_of(outcome: FileOutcome) -> str:
    """The change one outcome makes; a notebook's per changed cell (``nb.ipynb:cell 3``)."""
    if outcome.new_text is None:
        return ""
    if outcome.notebook:
        return "".join(unified_diff(old, new, outcome.path, label=f":cell {cell}") for cell, old, new in outcome.cells)
    return unified_diff(outcome.source.text, outcome.new_text, outcome.path)


def summary(outcome: FileOutcome, diff_only: bool) -> list[str]:
    """The one-line report of a file: what was fixed, and each finding left with why."""
    if outcome.error:
        return [f"{outcome.path}: error: {outcome.error}"]
    lines = []
    if outcome.applied and outcome.new_text is not None:
        counts = Counter(f.rule for f in outcome.applied)
        parts = [rule if n == 1 else f"{rule} x{n}" for rule, n in sorted(counts.items())]
        verb = "would fix" if diff_only else "fixed"
        lines.append(f"{outcome.path}: {verb} {len(outcome.applied)} ({', '.join(parts)})")
    elif outcome.group and outcome.new_text is not None:
        others = ", ".join(_shown(p) for p in outcome.group if p != os.path.abspath(outcome.path))
        lines.append(f"{outcome.path}: {'would update' if diff_only else 'updated'} its calls for the patch of {others}")
    for finding, reason in outcome.skipped:
        lines.append(f"{outcome.path}:{position(finding)}: {finding.rule} not fixed: {reason}")
    return lines


def _shown(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def position(finding: Finding) -> str:
    prefix = f"cell {finding.cell}:" if finding.cell else ""
    return f"{prefix}{finding.line}:{finding.column}"


# --------------------------------------------------------------------------- writing

def write(outcome: FileOutcome) -> bool:
    """Write one outcome's new text; on failure set its error.  True when written."""
    if outcome.new_text is None or outcome.error:
        return False
    try:
        write_source(outcome.source, outcome.new_text)
    except SourceError as exc:
        outcome.error = str(exc)
        return False
    return True


@dataclass
class DependencyEdit:
    shown: str
    diff: str
    added: list[str]
    error: str | None = None


def dependency_needs(outcomes: list[FileOutcome]) -> tuple[dict[Path, set[str]], list[str]]:
    """Projects whose files now import a kernel -> the requirements; plus notes for files in
    no project."""
    from .synth.deps import project_root

    needs: dict[Path, set[str]] = {}
    notes = []
    for outcome in outcomes:
        if outcome.error or outcome.new_text is None or not outcome.requirements or outcome.path == "-":
            continue
        root = project_root(Path(outcome.path))
        if root is not None:
            needs.setdefault(root, set()).update(outcome.requirements)
        else:
            notes.append(f"{outcome.path}: note: no project folder found; install "
                         f"{', '.join(sorted(outcome.requirements))}")
    return needs, notes


def declare_dependencies(needs: dict[Path, set[str]], *, diff_only: bool) -> tuple[list[DependencyEdit], list[str]]:
    """Add the requirements to each project's dependency files (or only diff them)."""
    from .synth.deps import plan_dependencies

    edits, notes = [], []
    for root, requirements in sorted(needs.items()):
        planned, messages = plan_dependencies(root, requirements)
        notes += [f"note: {message}" for message in messages]
        for edit in planned:
            shown = _display(edit.path)
            result = DependencyEdit(shown, unified_diff(edit.old, edit.new, shown), list(edit.said or edit.added))
            if not diff_only:
                try:
                    write_source(edit.source, edit.new)
                except SourceError as exc:
                    result.error = str(exc)
            edits.append(result)
    return edits, notes


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
