"""One orchestration path for every door: which files, which rules, which processes.

``adopter check``, ``adopter fix``, ``check --fix``, the pre-commit hooks and the bot all
go through here, so a file is chosen, configured, budgeted and analysed the same way
wherever it is looked at:

* :class:`Selection` turns command-line options plus each file's ``[tool.adopter]`` into
  the rules that apply to it (loaded once per rule folder set, selected once per config);
* :func:`plan` expands paths into :class:`Job` values (what a worker needs: the file, the
  rule ids, the rule folders, the target, the budget) and removes the temporary files that
  a killed ``fix`` left in those folders;
* :func:`run_jobs` runs a per-file function over the jobs, in this process for a few files
  and in a process pool for many (one threshold), with a progress callback.

The pool's workers exit when the run that started them dies (``kill -9`` included), and a
run that is stopped (``SIGTERM``, Ctrl-C) stops its workers at once instead of waiting for
them: a forgotten worker would otherwise sleep forever.  Nothing here prints; the doors do.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from .records import dataclass, replace
from pathlib import Path
from collections.abc import Callable, Iterable

from .budget import DEFAULT_SECONDS, BudgetExceeded, time_budget
from .config import Config, find_config
from .discovery import discover, excluded_by_name, is_notebook
from .engine import AnalysisError, Finding, analyze
from .ruleset import Rule, load_rules, select_rules, selected_by
from .source import MAX_BYTES, MAX_NOTEBOOK_BYTES, SourceError, decode, read_regular, remove_stale_temporaries
from .structure import package_of

#: Below this many files the work runs in this process: starting workers costs more.
PARALLEL_MIN_FILES = 12


class SelectionError(Exception):
    """``--select``/``--ignore`` (or the config's) name no rule; the message says which."""


@dataclass(frozen=True)
class Options:
    """What the user asked for on the command line (or the bot's inputs)."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    rule_dirs: tuple[str, ...] = ()
    target: str | None = None
    file_timeout: float | None = None
    use_config: bool = True
    jobs: int = 0
    force_exclude: bool = False
    respect_gitignore: bool | None = None
    bundled: bool = True  # False: --no-bundled-rules (only the rule folders' rules)
    unsafe_fixes: bool = False  # --unsafe-fixes: also apply the fixes marked unsafe


class Selection:
    """Options plus each folder's config -> the rules, target and budget of each file."""

    def __init__(self, options: Options = Options()):
        self.options = options
        self._configs: dict[str, Config] = {}
        self._loaded: dict[tuple[str, ...], list[Rule]] = {}
        self._chosen: dict[tuple, list[Rule]] = {}
        self._muted: dict[tuple, tuple[str, ...]] = {}
        self._unavailable: dict[tuple, dict[str, str]] = {}

    def config_for(self, path: Path) -> Config:
        if not self.options.use_config:
            return Config()
        folder = str(path if path.is_dir() else path.parent)
        config = self._configs.get(folder)
        if config is None:
            config = self._configs[folder] = find_config(Path(folder))
        return config

    def rule_dirs(self, config: Config) -> tuple[str, ...]:
        return tuple(self.options.rule_dirs) + tuple(str(p) for p in config.rule_paths)

    def target(self, config: Config) -> str | None:
        return self.options.target or config.target

    def budget(self, config: Config) -> float:
        """Seconds one file may take: --file-timeout, else the config's, else the default."""
        value = self.options.file_timeout
        if value is None:
            value = config.file_timeout
        return DEFAULT_SECONDS if value is None else value

    def all_rules(self, config: Config) -> list[Rule]:
        dirs = self.rule_dirs(config)
        if dirs not in self._loaded:
            rules = load_rules([Path(d) for d in dirs], bundled=self.options.bundled)
            if not rules:
                raise SelectionError("no rules: --no-bundled-rules needs a --rules-dir (or rule-paths) with rule files")
            self._loaded[dirs] = rules
            _SELECTED_RULES[(dirs, self.options.bundled)] = rules  # for this process's own jobs
        return self._loaded[dirs]

    def chosen(self) -> list[Rule]:
        """Every rule chosen so far, for any config (what a SARIF log describes)."""
        return sorted({r.id: r for rules in self._chosen.values() for r in rules}.values(), key=lambda r: r.id)

    def blocked(self, path: Path | None, rules: list[Rule]) -> tuple[tuple[str, str], ...]:
        """The rules ``fix`` must not apply to ``path``, with why: a kernel the file's project
        cannot take (its Python or version pins exclude it), or an unsafe fix without
        ``--unsafe-fixes``.  Worked out once per project and set of kernels."""
        from .synth.deps import project_root, unavailable

        root = project_root(path) if path is not None else None
        kernels = frozenset((r.kernel.requirement, r.kernel.requires_python) for r in rules)
        key = (root, kernels)
        if key not in self._unavailable:
            self._unavailable[key] = unavailable(*key)
        reasons = self._unavailable[key]
        out = {r.id: f"not applied: {reasons[r.kernel.requirement]}" for r in rules if r.kernel.requirement in reasons}
        if not self.options.unsafe_fixes:
            from .synth.fixable import unsafe_reason

            for r in rules:
                if r.fixable and not r.safe_fix and r.id not in out:
                    out[r.id] = unsafe_reason(r)
        return tuple(sorted(out.items()))

    def _key(self, config: Config, informational: bool) -> tuple:
        select = tuple(self.options.select) or config.select
        ignore = tuple(self.options.ignore) + config.ignore
        return (self.rule_dirs(config), select, ignore, self.target(config), informational)

    def rules(self, config: Config, informational: bool = False) -> list[Rule]:
        """The rules for files under ``config``; with ``informational``, also those that do
        not help on the target, and those off by default here that would be on for another
        target (``default = ["cuda"]``): ``check`` shows their findings, marked, so that an
        opportunity is never invisible, but they are not counted and ``fix`` leaves them."""
        key = self._key(config, informational)
        if key not in self._chosen:
            _, select, ignore, target, _ = key
            everything = self.all_rules(config)
            try:
                chosen = select_rules(everything, list(select) or None, list(ignore) or None, target)
            except ValueError as exc:
                raise SelectionError(str(exc)) from None
            if informational:
                muted = off_here(everything, chosen, list(select) or None, list(ignore) or None)
                self._muted[key] = tuple(r.id for r in muted)
                chosen = sorted(chosen + muted, key=lambda r: r.id)
            else:
                chosen = [r for r in chosen if r.helps_on(target)]
            self._chosen[key] = chosen
        return self._chosen[key]

    def muted(self, config: Config) -> tuple[str, ...]:
        """Ids of the rules :meth:`rules` adds (informational) only because they are on by
        default for another target than this one."""
        self.rules(config, informational=True)
        return self._muted[self._key(config, True)]


def off_here(rules: list[Rule], chosen: list[Rule], select: list[str] | None,
             ignore: list[str] | None) -> list[Rule]:
    """The rules the selection would take if they were on by default here: on by default for
    some other target (``default = ["cuda"]``), selected by no name but matching the selection
    (``ADP0`` or no ``select``), and not ignored."""
    taken = {r.id for r in chosen}
    out = []
    for rule in rules:
        if rule.id in taken or not rule.default_targets:
            continue
        if (select and not selected_by(rule, select)) or (ignore and selected_by(rule, ignore)):
            continue
        out.append(rule)
    return out


# --------------------------------------------------------------------------- jobs

@dataclass(frozen=True)
class Job:
    """One file's work, small enough to send to a worker process."""

    path: str
    rules: tuple[str, ...]  # ids of the rules to apply (check: report; fix: rewrite)
    rule_dirs: tuple[str, ...]
    target: str | None
    budget: float
    report: tuple[str, ...] = ()  # check --fix: ids of the rules to report on the fixed text
    stdin: str | None = None  # the text, when the file came on standard input
    bundled: bool = True  # whether the bundled rules are loaded besides rule_dirs
    blocked: tuple[tuple[str, str], ...] = ()  # fix: (rule id, why it is not applied here)
    unsafe_fixes: bool = False  # --unsafe-fixes: an unsafe fix counts as fixable (check)
    muted: tuple[str, ...] = ()  # ids of rules reported only as informational (off by default here)


def plan(paths: list[str], selection: Selection, *, fix: bool = False, report: bool = False,
         clean: bool = True) -> tuple[list[Job], list[tuple[str, str]]]:
    """The jobs for ``paths`` and the errors of paths that cannot be analysed.

    ``fix``: rewrite with the rules that help on the target; else report every selected rule
    (those for other hardware as informational).  ``report`` (with ``fix``): also report
    the fixed text's findings.  ``clean``: remove temporary files killed runs left behind.
    """
    options = selection.options
    found = discover(paths, selection.config_for, force_exclude=options.force_exclude,
                     respect_gitignore=options.respect_gitignore)
    jobs = []
    for path in found.files:
        config = selection.config_for(path)
        rules = selection.rules(config, informational=not fix)
        shown = selection.rules(config, informational=True) if report else ()
        jobs.append(Job(str(path), tuple(r.id for r in rules), selection.rule_dirs(config),
                        selection.target(config), selection.budget(config), tuple(r.id for r in shown),
                        bundled=options.bundled, blocked=selection.blocked(path, rules) if fix else (),
                        unsafe_fixes=options.unsafe_fixes,
                        muted=selection.muted(config) if (report or not fix) else ()))
    if clean:
        for folder in sorted({os.path.dirname(os.path.realpath(job.path)) for job in jobs}):
            remove_stale_temporaries(folder)
    return jobs, found.errors


def stdin_job(text: str, filename: str | None, selection: Selection, *, fix: bool = False,
              report: bool = False) -> Job | None:
    """The job for code read from standard input (None: ``--force-exclude`` excludes it)."""
    path = Path(filename or "-")
    config = selection.config_for(path.resolve() if filename else Path.cwd() / "-")
    if filename and selection.options.force_exclude and excluded_by_name(path, config):
        return None
    rules = selection.rules(config, informational=not fix)
    shown = selection.rules(config, informational=True) if report else ()
    blocked = selection.blocked(path.resolve() if filename else None, rules) if fix else ()
    return Job(filename or "-", tuple(r.id for r in rules), selection.rule_dirs(config), selection.target(config),
               selection.budget(config), tuple(r.id for r in shown), stdin=text, bundled=selection.options.bundled,
               blocked=blocked, unsafe_fixes=selection.options.unsafe_fixes,
               muted=selection.muted(config) if (report or not fix) else ())


# --------------------------------------------------------------------------- per file, in any process

_PROCESS_RULES: dict[tuple, list[Rule]] = {}
# (rule folders, bundled) -> the rules a Selection of this process loaded last: a job run in the
# process that chose its rules (one file, --jobs 1, or a forked worker) takes them from there
# instead of reading and unpickling every rule file a second time (~8 ms of a one-file check).
_SELECTED_RULES: dict[tuple, list[Rule]] = {}


def rules_of(ids: tuple[str, ...], dirs: tuple[str, ...], bundled: bool = True) -> list[Rule]:
    """The rules with these ids, loaded once per process (the parse cache makes it cheap): the
    same rules the parent chose, since a folder's rule replaces a bundled one of the same id."""
    key = (ids, dirs, bundled)
    rules = _PROCESS_RULES.get(key)
    if rules is None:
        wanted = set(ids)
        loaded = _SELECTED_RULES.get((dirs, bundled))
        if loaded is None:
            loaded = load_rules([Path(d) for d in dirs], bundled=bundled)
        rules = _PROCESS_RULES[key] = [r for r in loaded if r.id in wanted]
    return rules


@dataclass
class Code:
    """A file's Python code: the module text, and for a notebook how it maps to cells."""

    source: object  # SourceFile of the file itself
    text: str
    notebook: object | None = None  # adopter.notebook.Notebook


def read_code(job: Job) -> Code:
    """Read a job's file (or its standard input) as code; raises SourceError."""
    notebook = is_notebook(job.path)
    if job.stdin is not None:
        source = decode(job.stdin.encode("utf-8"), job.path)
    else:
        source = decode(read_regular(job.path, MAX_NOTEBOOK_BYTES if notebook else MAX_BYTES), job.path)
    if notebook:
        from .notebook import load

        book = load(source)
        return Code(source, book.text, book)
    return Code(source, source.text)


def place(findings: Iterable[Finding], code: Code, rules: list[Rule], target: str | None,
          muted: tuple[str, ...] = ()) -> list[Finding]:
    """Findings as the user sees them: notebook lines as ``cell N:line``, and those of rules
    that do not help on the target, or are off by default here (``muted``), marked
    informational (never fixed, not counted)."""
    by_id = {r.id: r for r in rules}
    out = []
    for finding in findings:
        rule = by_id.get(finding.rule)
        note = rule.target_note(target) if rule is not None else ""
        if not note and rule is not None and rule.id in muted:
            note = off_note(rule)
        if note:
            finding = replace(finding, informational=note, fixable=False)
        if code.notebook is not None:
            cell, line = code.notebook.position(finding.line)
            _, end_line = code.notebook.position(finding.end_line)
            finding = replace(finding, cell=cell, line=line, end_line=end_line)
        out.append(finding)
    return out


def off_note(rule: Rule) -> str:
    """Why a rule that is on by default only for other targets is shown, not counted."""
    return (f"off by default until measured to pay here (benchmarks/rules.py): on with "
            f"--target {'/'.join(rule.default_targets)} or --select {rule.id}")


@dataclass
class Checked:
    path: str
    findings: list[Finding]
    error: str | None = None


def check_job(job: Job, run=None) -> Checked:
    """Analyse one file within its time budget; never raises for a bad file.  ``run`` (a
    :class:`.synth.run.Run`): the files checked together, where an attention's callers may be."""
    if run is not None:
        with run.on(job.path):
            return check_job(job)
    rules = rules_of(job.rules, job.rule_dirs, job.bundled)
    try:
        with time_budget(job.budget):
            code = read_code(job)
            package = package_of(job.path) if job.stdin is None and code.notebook is None else None
            analysis = analyze(code.text, job.path, rules, package)
            # fixable means what `fix` would do: decided by fix's own planning step (ast only)
            from .synth.fixable import plan_findings

            applied = frozenset(r.id for r in rules if r.helps_on(job.target) and r.id not in job.muted)
            found = plan_findings(analysis, code.text, job.path, job.unsafe_fixes, applied)
    except (SourceError, AnalysisError, BudgetExceeded) as exc:
        return Checked(job.path, [], str(exc))
    except Exception as exc:  # an internal error must not stop the other files
        return Checked(job.path, [], f"internal error: {type(exc).__name__}: {exc}")
    return Checked(job.path, place(found, code, rules, job.target, job.muted))


def join_checks(jobs: list[Job], results: list[Checked]) -> list[Checked]:
    """The results again, where a finding is not fixable for want of a caller in its own file
    that declines the attention's probabilities: checked with the run of every file (as
    ``fix`` over the same files fixes it, :func:`.fixer.join_callers`).  In this process, and
    only when a result asks for it."""
    if not any(not f.fixable and "declines it" in (f.not_fixable or "") for r in results for f in r.findings):
        return results  # (a cheap look first: a plain check need not load the synthesis modules)
    from .synth.weights import NO_CALLER

    wanting = [i for i, r in enumerate(results) if not r.error and jobs[i].stdin is None and jobs[i].path.endswith(".py")
               and any(not f.fixable and NO_CALLER in (f.not_fixable or "") for f in r.findings)]
    if not wanting:
        return results
    from .synth.run import Run

    where = [job.path for job in jobs if job.stdin is None and job.path.endswith(".py")]
    run = Run.of_paths(where, reader=lambda path: read_code(replace(jobs[0], path=path, stdin=None)).text)
    results = list(results)
    for i in wanting:
        results[i] = check_job(jobs[i], run=run)
    return results


# --------------------------------------------------------------------------- processes

def _exit_with_parent(parent: int) -> None:
    """Worker initializer: die with the run that started this worker.

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); elsewhere,
    and as a backstop, a daemon thread notices the worker was re-parented.  Ctrl-C reaches
    every process of the terminal's group: workers ignore it and the parent stops them.
    SIGTERM kills a worker outright (a forked worker would otherwise inherit the parent's
    handler and turn it into an exception its task loop reports and survives).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (see on_sigterm)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the kernel was told
        os._exit(1)

    def watch() -> None:
        import time

        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="adopter-parent-watch", daemon=True).start()


def _stop(pool) -> None:
    """Stop a pool now: cancel what has not started, kill the workers that are busy (and any
    other process this run forked, such as a worker not yet recorded by the pool)."""
    import multiprocessing

    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    processes += [p for p in multiprocessing.active_children() if p not in processes]
    for process in processes:
        try:
            process.kill()
        except (OSError, ValueError, AttributeError):
            pass
    for process in processes:
        try:
            process.join(timeout=2)
        except (OSError, ValueError, AttributeError, AssertionError):
            pass


def workers_for(count: int, jobs: int = 0) -> int:
    """Worker processes for ``count`` files: 1 (this process) below the threshold."""
    wanted = jobs or os.cpu_count() or 1
    if count < PARALLEL_MIN_FILES or wanted <= 1:
        return 1
    return min(wanted, count)


def run_jobs(func: Callable, jobs: list, *, workers: int = 0,
             done: Callable[[object], None] | None = None) -> list:
    """``[func(job) for job in jobs]``, in a process pool when there are many; ``done`` is
    called with each result as it arrives (for a progress bar)."""
    count = workers_for(len(jobs), workers)
    if count <= 1:
        results = []
        for job in jobs:
            results.append(func(job))
            if done is not None:
                done(results[-1])
        return results
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, min(4, len(jobs) // (count * 8)))
    pool = ProcessPoolExecutor(max_workers=count, initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        results = []
        for result in pool.map(func, jobs, chunksize=chunk):
            results.append(result)
            if done is not None:
                done(result)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return results


#: Seconds a run stopped by SIGTERM has to unwind (remove its temporaries, stop its workers)
#: before it exits regardless: joining a process pool's manager thread at interpreter exit can
#: wait forever when a worker was killed at the wrong moment, and a stopped run must stop.
TERMINATE_GRACE = 10.0


def exit_after(seconds: float, code: int) -> None:
    """Exit the process with ``code`` in ``seconds`` unless it has exited by then."""

    def later() -> None:
        import time

        time.sleep(seconds)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)

    threading.Thread(target=later, name="adopter-exit-deadline", daemon=True).start()


class Terminated(BaseException):
    """SIGTERM arrived: unwind (temporary files are removed on the way), then exit 143."""


def on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread; returns the undo function."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        exit_after(TERMINATE_GRACE, 143)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
