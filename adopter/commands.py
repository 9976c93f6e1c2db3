"""The commands behind the ``adopter`` door: options in, text out, an exit code back.

Each command turns parsed options into :mod:`adopter.runner` calls and prints the result
the way Ruff users expect: findings on stdout, a summary and per-file errors on stderr
(``All checks passed!`` on a clean run), colour on a terminal, a progress bar on stderr for
long runs on a terminal.  ``check --fix`` rewrites and reports what is left; ``--diff``
prints the patches and writes nothing; ``-`` reads code from standard input.

Exit codes (Ruff's): 0 nothing found (``fix``: nothing changed; ``--exit-zero``: findings
do not count), 1 findings (``fix``/``--diff``: something changed), 2 usage error or a file
that could not be analysed or written (the other files are still reported and written).
"""

from __future__ import annotations

import sys
from collections import Counter
from .records import dataclass
from pathlib import Path
from collections.abc import Callable

from . import report
from .engine import Finding
from .runner import Options, Selection, check_job, join_checks, plan, run_jobs, stdin_job

#: A run over at least this many files shows a progress bar (on a terminal, not ``--quiet``).
PROGRESS_MIN_FILES = 20


class UsageError(Exception):
    pass


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def options_of(args) -> Options:
    return Options(
        select=_split(getattr(args, "select", None)),
        ignore=_split(getattr(args, "ignore", None)),
        rule_dirs=tuple(getattr(args, "rules_dir", None) or ()),
        target=getattr(args, "target", None),
        file_timeout=getattr(args, "file_timeout", None),
        use_config=not getattr(args, "no_config", False),
        jobs=getattr(args, "jobs", 0) or 0,
        force_exclude=getattr(args, "force_exclude", False),
        respect_gitignore=getattr(args, "respect_gitignore", None),
        bundled=not getattr(args, "no_bundled_rules", False),
        unsafe_fixes=getattr(args, "unsafe_fixes", False),
    )


@dataclass
class Output:
    """Where and how things are printed: colour per stream, quiet levels, progress."""

    color_out: bool = False
    color_err: bool = False
    quiet: bool = False  # findings only
    silent: bool = False  # nothing

    @classmethod
    def of(cls, args) -> "Output":
        choice = getattr(args, "color", "auto") or "auto"
        return cls(report.use_color(choice, sys.stdout), report.use_color(choice, sys.stderr),
                   bool(getattr(args, "quiet", False)), bool(getattr(args, "silent", False)))

    def out(self, text: str) -> None:
        if text and not self.silent:
            print(text)

    def note(self, text: str) -> None:
        """A summary line (stderr); not with --quiet."""
        if text and not (self.quiet or self.silent):
            print(text, file=sys.stderr)

    def error(self, path: str, message: str) -> None:
        if not self.silent:
            print(f"{report.paint(path, report.BOLD, self.color_err)}: {report.paint('error', report.RED, self.color_err)}: "
                  f"{message}", file=sys.stderr)

    def progress(self, total: int, what: str) -> tuple[Callable[[object], None] | None, Callable[[], None]]:
        """A progress bar on stderr for a long run on a terminal: (tick, close)."""
        if total < PROGRESS_MIN_FILES or self.quiet or self.silent or not _stderr_tty():
            return None, lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(file=sys.stderr, no_color=not self.color_err)
        bar = Progress(TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=console, transient=True)
        task = bar.add_task(what, total=total)
        bar.start()
        return (lambda _result: bar.advance(task)), bar.stop


def _stderr_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _plural(count: int, word: str = "opportunit") -> str:
    if word == "opportunit":
        return f"{count} opportunit{'y' if count == 1 else 'ies'}"
    return f"{count} {word}{'' if count == 1 else 's'}"


def _read_stdin() -> str:
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data


def _uses_stdin(args) -> bool:
    paths = list(getattr(args, "paths", None) or [])
    if "-" in paths:
        if len(paths) > 1:
            raise UsageError("'-' (standard input) cannot be combined with other paths")
        return True
    return not paths and getattr(args, "stdin_filename", None) is not None


def _paths(args) -> list[str]:
    return list(getattr(args, "paths", None) or []) or ["."]


# --------------------------------------------------------------------------- check

def cmd_check(args) -> int:
    if getattr(args, "fix", False) or getattr(args, "diff", False):
        return _fix(args, report_left=True)
    output = Output.of(args)
    selection = Selection(options_of(args))
    if _uses_stdin(args):
        job = stdin_job(_read_stdin(), args.stdin_filename, selection)
        results = [check_job(job)] if job is not None else []
        errors: list[tuple[str, str]] = []
    else:
        jobs, errors = plan(_paths(args), selection)
        tick, close = output.progress(len(jobs), "checking")
        try:
            results = run_jobs(check_job, jobs, workers=args.jobs, done=tick)
        finally:
            close()
        results = join_checks(jobs, results)
    findings: list[Finding] = []
    for result in results:
        findings.extend(result.findings)
        if result.error:
            errors.append((result.path, result.error))
    keep = getattr(args, "keep", None)
    if keep is not None:
        findings = [f for f in findings if keep(f)]
    return _report(args, output, findings, errors, selection)


def _report(args, output: Output, findings: list[Finding], errors, selection: Selection, *,
            fixed: int = 0, fixed_list: list[Finding] = ()) -> int:
    fmt = getattr(args, "output_format", "text")
    if fmt == "text" and getattr(args, "statistics", False):
        output.out(report.statistics(findings, output.color_out))
    else:
        output.out(report.render(fmt, findings, selection.chosen(), getattr(args, "fix_hint", None),
                                 errors=errors, color=output.color_out))
    actionable = [f for f in findings if not f.informational]
    if fmt == "text":
        if getattr(args, "show_fixes", False) and fixed_list:
            output.note(_fixes_text(fixed_list))
        info = len(findings) - len(actionable)
        if findings or fixed:
            from .synth.fixable import hidden_unsafe

            fixable = sum(f.fixable for f in actionable)
            unsafe = getattr(args, "unsafe_fixes", False)
            parts = f"{fixed} fixed, {len(actionable)} remaining" if getattr(args, "fix", False) else \
                f"{fixable} fixable with `adopter fix{' --unsafe-fixes' if unsafe else ''}`"
            hidden = hidden_unsafe(actionable)  # Ruff's "hidden fixes": only --unsafe-fixes applies them
            if hidden:
                parts += (f"; {hidden} hidden unsafe fix{'' if hidden == 1 else 'es'} can be enabled with "
                          "`--unsafe-fixes`")
            output.note(f"Found {_plural(len(actionable) + fixed)} ({parts})"
                        + (f" and {info} informational (other hardware, or off by default here)" if info else "") + ".")
        elif not errors:
            output.note("All checks passed!")
    for path, message in errors:
        output.error(path, message)
    if errors:
        return 2
    if getattr(args, "exit_non_zero_on_fix", False) and fixed:
        return 1
    if actionable and not getattr(args, "exit_zero", False):
        return 1
    return 0


def _fixes_text(fixed: list[Finding]) -> str:
    by_path: dict[str, Counter] = {}
    names = {}
    for f in fixed:
        by_path.setdefault(f.path, Counter())[f.rule] += 1
        names[f.rule] = f.name
    lines = [f"Fixed {_plural(len(fixed))}:"]
    for path, counts in by_path.items():
        lines.append(f"- {path}:")
        for rule, count in sorted(counts.items()):
            lines.append(f"    {count} \u00d7 {rule} ({names[rule]})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- fix

def cmd_fix(args) -> int:
    return _fix(args, report_left=False)


def _fix(args, report_left: bool) -> int:
    """``fix`` (report_left False) and ``check --fix`` / ``check --diff`` (True)."""
    from . import fixer

    output = Output.of(args)
    diff_only = bool(getattr(args, "diff", False))
    selection = Selection(options_of(args))
    stdin = _uses_stdin(args)
    if stdin:
        text = _read_stdin()
        job = stdin_job(text, args.stdin_filename, selection, fix=True, report=report_left)
        if job is None:  # excluded: pass the code through unchanged
            if not diff_only:
                sys.stdout.write(text)
            return 0
        jobs, errors = [job], []
        outcomes = [fixer.fix_job(job)]
    else:
        jobs, errors = plan(_paths(args), selection, fix=True, report=report_left)
        tick, close = output.progress(len(jobs), "fixing")
        try:
            outcomes = run_jobs(fixer.fix_job, jobs, workers=args.jobs, done=tick)
        finally:
            close()
        outcomes = fixer.join_callers(jobs, outcomes)

    changed = False
    for outcome in outcomes:
        if outcome.error or outcome.new_text is None:
            continue
        if diff_only:
            sys.stdout.write(_colour_diff(fixer.diff_of(outcome), output.color_out))
            changed = True
        elif stdin:
            changed = True
    if not diff_only and not stdin and fixer.write_all(outcomes):
        changed = True
    if stdin and not diff_only:
        outcome = outcomes[0]
        sys.stdout.write(outcome.new_text if outcome.new_text is not None and not outcome.error else job.stdin)

    needs, notes = fixer.dependency_needs(outcomes)
    if not getattr(args, "no_deps", False) and not stdin:
        edits, more = fixer.declare_dependencies(needs, diff_only=diff_only)
        notes += more
        for edit in edits:
            if edit.error:
                errors.append((edit.shown, edit.error))
                continue
            if diff_only:
                sys.stdout.write(_colour_diff(edit.diff, output.color_out))
            changed = True
            output.note(f"{edit.shown}: {'would add' if diff_only else 'added'} {', '.join(edit.added)}")
    for line in notes:
        output.note(line)

    for outcome in outcomes:
        if outcome.error:
            errors.append((outcome.path, outcome.error))
    if not report_left:
        for outcome in outcomes:
            if not outcome.error:
                for line in fixer.summary(outcome, diff_only):
                    output.note(line)
        if getattr(args, "show_fixes", False):
            done = [f for o in outcomes if not o.error and o.new_text is not None for f in o.applied]
            if done:
                output.note(_fixes_text(done))
        for path, message in errors:
            output.error(path, message)
        if errors:
            return 2
        return 1 if changed else 0

    fixed_list = [f for o in outcomes if not o.error and o.new_text is not None for f in o.applied]
    if diff_only:
        for path, message in errors:
            output.error(path, message)
        if fixed_list:
            output.note(f"Would fix {_plural(len(fixed_list))}.")
        elif not errors:
            output.note("No fixes available.")
        if errors:
            return 2
        return 1 if changed else 0
    remaining = [f for o in outcomes if not o.error for f in o.remaining]
    if stdin:  # the fixed code went to stdout; what is left goes to stderr
        if not output.silent:
            for line in report.text(remaining, color=output.color_err).splitlines():
                print(line, file=sys.stderr)
        for path, message in errors:
            output.error(path, message)
        if errors:
            return 2
        if getattr(args, "exit_non_zero_on_fix", False) and fixed_list:
            return 1
        if any(not f.informational for f in remaining) and not getattr(args, "exit_zero", False):
            return 1
        return 0
    return _report(args, output, remaining, errors, selection, fixed=len(fixed_list) if changed else 0,
                   fixed_list=fixed_list if changed else [])


def _colour_diff(text: str, color: bool) -> str:
    if not color or not text:
        return text
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            out.append(report.paint(line.rstrip("\n"), report.BOLD, True) + "\n")
        elif line.startswith("+"):
            out.append(report.paint(line.rstrip("\n"), report.GREEN, True) + "\n")
        elif line.startswith("-"):
            out.append(report.paint(line.rstrip("\n"), report.RED, True) + "\n")
        elif line.startswith("@@"):
            out.append(report.paint(line.rstrip("\n"), report.CYAN, True) + "\n")
        else:
            out.append(line)
    return "".join(out)


# --------------------------------------------------------------------------- rules, structure, verify

def cmd_rules(args) -> int:
    import json

    from .explain import default_note, explain, measured_line, rule_dict, where
    from .measured import load_measured
    from .ruleset import bundled_rules_dir, load_rules

    dirs = [Path(d) for d in args.rules_dir]
    rules = load_rules(dirs, bundled=not args.no_bundled_rules)
    if not rules:
        raise UsageError("no rules: --no-bundled-rules needs a --rules-dir with rule files")
    measured = load_measured([*([bundled_rules_dir()] if not args.no_bundled_rules else []), *dirs])
    if args.rule:
        wanted = [r for r in rules if args.rule in (r.id, r.name)]
        if not wanted:
            import difflib

            close = difflib.get_close_matches(args.rule, [r.id for r in rules] + [r.name for r in rules], n=1)
            raise UsageError(f"unknown rule {args.rule!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
        rule = wanted[0]
        figures = measured.get(rule.id, [])
        print(json.dumps(rule_dict(rule, figures), indent=2) if args.output_format == "json"
              else explain(rule, figures))
        return 0
    if args.output_format == "json":
        print(json.dumps([rule_dict(r, measured.get(r.id, [])) for r in rules], indent=2))
        return 0
    width = max(len(r.name) for r in rules)
    places = {r.id: where(r) for r in rules}
    place_width = max(len(w) for w in places.values())
    kernel = {r.id: r.kernel.import_ + default_note(r) for r in rules}
    kernel_width = max(len(k) for k in kernel.values())
    for r in rules:
        mark = "fixable" if r.fixable else "report "
        print(f"{r.id}  {r.name:<{width}}  {mark}  {places[r.id]:<{place_width}}  {kernel[r.id]:<{kernel_width}}"
              f"  measured: {measured_line(r, measured.get(r.id, []))}")
    return 0


def cmd_structure(args) -> int:
    from .describe import describe_file
    from .engine import AnalysisError
    from .source import SourceError, read_source

    try:
        source = read_source(args.file)
        print(describe_file(source.text, args.file, args.class_name))
    except (SourceError, AnalysisError) as exc:
        print(f"{args.file}: error: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        raise UsageError(f"no class {exc.args[0]!r} in {args.file}") from None
    return 0


def cmd_verify(args) -> int:
    try:
        from .verify.cli import run_verify
    except ImportError as exc:
        raise UsageError(f"adopter verify needs torch: pip install 'adopter[verify]' ({exc})") from None
    selection = Selection(options_of(args))
    args.paths = _paths(args)
    return run_verify(args, selection.config_for, lambda _args, config: selection.rules(config))
