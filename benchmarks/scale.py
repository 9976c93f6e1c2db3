"""Scale benchmark: ``adopter check`` and ``adopter fix`` (every rule) over every Python file of
real packages Adopter was never tuned on, counting what must never happen.

    .venv/bin/python benchmarks/scale.py                       # the four pinned wheels
    .venv/bin/python benchmarks/scale.py --limit 30            # 30 files of each, spread out
    .venv/bin/python benchmarks/scale.py --src tf=/path/to/pkg # a folder instead of wheels

1. downloads each wheel with ``pip download --no-deps`` into ``<cache>/wheels/`` (once) and
   extracts its ``.py`` files into a fresh ``<cache>/scale/<dist>-<version>/`` (the files are
   read and rewritten there; nothing from them is ever imported);
2. runs, per file, in a process pool over all cores, exactly what the CLI runs per file
   (``adopter.runner.check_job`` and ``adopter.fixer.fix_job`` with every rule and the default
   per-file time budget, then ``adopter.source.write_source``), then compiles the written
   file and fixes it a second time;
3. prints files, lines, findings per rule, errors by kind, wall and CPU time and peak memory,
   and lists every file that broke one of the three promises:

   * **internal errors** (an exception of Adopter's own, in check, fix or while planning a fix),
   * **broken fixes** (a file that compiled before ``fix`` and does not after),
   * **second-run changes** (a second ``fix`` changes the fixed file again).

Exit code: 0 when all three counts are 0, 1 otherwise.  Files Python itself cannot compile
(bad input) are counted apart; they are not Adopter's failures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WHEELS = ("transformers==5.23.0", "diffusers==0.42.1", "timm==1.0.31", "torchvision==0.29.2")
INTERNAL = "internal error"
BUDGET = "time budget"


# ------------------------------------------------------------------------------ corpus

def ensure_wheel(cache: Path, spec: str, quiet: bool = False) -> Path:
    """The wheel of ``name==version`` in ``<cache>/wheels``, downloaded once with pip."""
    name, version = spec.split("==")
    folder = cache / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_")
    found = sorted(folder.glob(f"{stem}-{version}-*.whl"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", spec, "-d", str(folder)]
    if not quiet:
        print(f"downloading: pip download --no-deps {spec}", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and "ResolutionImpossible" in proc.stdout + proc.stderr:
        # A machine-wide pip constraints file may cap a version (it is meant for installs);
        # a download of one wheel, never installed, goes around it.
        if not quiet:
            print(f"note: pip cannot resolve {spec} (a constraints file?); retrying without pip's config files",
                  file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    found = sorted(folder.glob(f"{stem}-{version}-*.whl"))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"pip download {spec} failed: {tail[0]}")
    return found[0]


def spread(items: list, limit: int | None) -> list:
    """``limit`` items spread evenly over the sorted list (all of them when no limit)."""
    if not limit or limit >= len(items):
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def extract_wheel(wheel: Path, dest: Path, limit: int | None = None) -> list[Path]:
    """A fresh copy of the wheel's ``.py`` files under ``dest`` (files are rewritten there)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".py") and ".." not in n.split("/"))
        names = spread(names, limit)
        for name in names:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    return [dest / n for n in names]


def copy_folder(src: Path, dest: Path, limit: int | None = None) -> list[Path]:
    """A fresh copy of the ``.py`` files under ``src`` (keeping the package layout)."""
    if dest.exists():
        shutil.rmtree(dest)
    names = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.py") if "__pycache__" not in p.parts)
    names = spread(names, limit)
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, target)
    return [dest / n for n in names]


# ------------------------------------------------------------------------------ one file

def _compiles(data: bytes, path: str) -> str | None:
    try:
        compile(data, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except (RecursionError, MemoryError) as exc:
        return f"{type(exc).__name__}"
    return None


def process_file(job: tuple[str, tuple[str, ...], float]) -> dict:
    """check + fix (written) + compile + second fix of one file, as the CLI does them."""
    from adopter.fixer import fix_job
    from adopter.runner import Job, check_job
    from adopter.source import SourceError, write_source

    path, rule_ids, budget = job
    started = time.perf_counter()
    data = Path(path).read_bytes()
    rec = {
        "path": path, "bytes": len(data), "lines": data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1),
        "compiles": _compiles(data, path) is None, "findings": {}, "check_error": None, "fix_error": None,
        "applied": 0, "not_fixed": {}, "internal": [], "timeouts": [], "broken": None, "second_run": None,
    }

    def note(stage: str, message: str | None) -> None:
        if not message:
            return
        if message.startswith(INTERNAL) or INTERNAL in message:
            rec["internal"].append(f"{stage}: {message}")
        elif message.startswith(BUDGET):
            rec["timeouts"].append(stage)

    try:
        checked = check_job(Job(path, tuple(rule_ids), (), None, budget))
        found, error = checked.findings, checked.error
        rec["findings"] = dict(Counter(f.rule for f in found))
        rec["check_error"] = error
        note("check", error)

        job = Job(path, tuple(rule_ids), (), None, budget)
        outcome = fix_job(job)
        source = outcome.source
        rec["fix_error"] = outcome.error
        note("fix", outcome.error)
        rec["applied"] = len(outcome.applied)
        reasons = Counter()
        for finding, reason in outcome.skipped:
            reasons[_reason_kind(reason)] += 1
            note(f"fix {finding.rule} line {finding.line}", reason if INTERNAL in reason else None)
        rec["not_fixed"] = dict(reasons)
        if outcome.new_text is not None and outcome.error is None:
            try:
                write_source(source, outcome.new_text)
            except SourceError as exc:
                rec["internal"].append(f"write: {exc}")
            else:
                written = Path(path).read_bytes()
                problem = _compiles(written, path)
                if problem and rec["compiles"]:
                    rec["broken"] = problem
                again = fix_job(job)
                if again.new_text is not None:
                    rec["second_run"] = f"a second fix changes it again ({len(again.applied)} more)"
                elif again.error and not again.error.startswith(BUDGET):
                    rec["second_run"] = f"the second fix fails: {again.error}"
    except BaseException as exc:  # noqa: BLE001 - anything escaping the CLI's own handlers is a crash
        rec["internal"].append(f"escaped: {type(exc).__name__}: {exc}")
    rec["seconds"] = time.perf_counter() - started
    rec["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rec


def _reason_kind(reason: str) -> str:
    """Group 'not fixed' reasons: the text before any detail in brackets or after a colon,
    with line numbers and quoted names replaced."""
    head = reason.split(" (")[0].split(": ")[0].strip()
    head = re.sub(r"'[^']*'|`[^`]*`", "'...'", head)
    head = re.sub(r"\b\d+\b", "N", head)
    return head[:100] or "unknown"


# ------------------------------------------------------------------------------ the run

class Progress:
    """A rich progress bar on a terminal, a plain line every ``every`` files otherwise."""

    def __init__(self, total: int, enabled: bool, every: int = 250):
        self.total, self.done, self.every, self.bar = total, 0, every, None
        self.started = time.perf_counter()
        if enabled and sys.stderr.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
            self.task = self.bar.add_task("check + fix + refix", total=total)
            self.bar.start()
        self.enabled = enabled

    def advance(self, label: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=label[-40:].rjust(40))
        elif self.enabled and (self.done % self.every == 0 or self.done == self.total):
            elapsed = time.perf_counter() - self.started
            print(f"  {self.done}/{self.total} files, {elapsed:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run(corpus: dict[str, list[Path]], jobs: int, budget: float, progress: bool = True) -> dict:
    from adopter.ruleset import load_rules

    rule_ids = tuple(r.id for r in load_rules())
    work = [(label, str(p)) for label, paths in corpus.items() for p in paths]
    sizes = {path: os.path.getsize(path) for _, path in work}
    work.sort(key=lambda item: -sizes[item[1]])  # largest first: the pool ends evenly
    label_of = {path: label for label, path in work}
    records: list[dict] = []
    bar = Progress(len(work), progress)
    wall = time.perf_counter()
    cpu_before = _cpu()
    try:
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(process_file, (path, rule_ids, budget)): path for _, path in work}
                for future in as_completed(futures):
                    records.append(future.result())
                    bar.advance(futures[future])
        else:
            for _, path in work:
                records.append(process_file((path, rule_ids, budget)))
                bar.advance(path)
    finally:
        bar.close()
    wall = time.perf_counter() - wall
    cpu = _cpu() - cpu_before
    for rec in records:
        rec["corpus"] = label_of[rec["path"]]
    return {"records": records, "wall_s": wall, "cpu_s": cpu, "jobs": jobs, "budget_s": budget,
            "rules": list(rule_ids),
            "peak_rss_mb": max([r["rss_kb"] for r in records] + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]) / 1024}


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def summarise(result: dict) -> dict:
    """Totals per corpus and overall; the three must-be-zero counts and the files behind them."""
    records = result["records"]
    labels = sorted({r["corpus"] for r in records}, key=lambda c: [r["corpus"] for r in records].count(c) * -1)
    rules = result["rules"]

    def totals(recs: list[dict]) -> dict:
        findings = Counter()
        not_fixed = Counter()
        for r in recs:
            findings.update(r["findings"])
            not_fixed.update(r["not_fixed"])
        return {
            "files": len(recs), "lines": sum(r["lines"] for r in recs), "bytes": sum(r["bytes"] for r in recs),
            "findings": {rule: findings.get(rule, 0) for rule in rules},
            "findings_total": sum(findings.values()),
            "files_with_findings": sum(1 for r in recs if r["findings"]),
            "not_python": sum(1 for r in recs if not r["compiles"]),
            "input_errors": sum(1 for r in recs if r["check_error"] and not r["internal"] and not r["timeouts"]),
            "internal_errors": sum(len(r["internal"]) for r in recs),
            "timeouts": sum(1 for r in recs if r["timeouts"]),
            "files_fixed": sum(1 for r in recs if r["applied"] and not r["fix_error"]),
            "fixes_applied": sum(r["applied"] for r in recs),
            "findings_not_fixed": sum(not_fixed.values()),
            "not_fixed_reasons": dict(not_fixed.most_common()),
            "broken_fixes": sum(1 for r in recs if r["broken"]),
            "second_run_changes": sum(1 for r in recs if r["second_run"]),
        }

    per = {label: totals([r for r in records if r["corpus"] == label]) for label in labels}
    slowest = sorted(records, key=lambda r: -r["seconds"])[:5]
    return {
        "per_corpus": per, "total": totals(records),
        "internal": [(r["path"], m) for r in records for m in r["internal"]],
        "timeouts": [(r["path"], ", ".join(r["timeouts"])) for r in records if r["timeouts"]],
        "broken": [(r["path"], r["broken"]) for r in records if r["broken"]],
        "second_run": [(r["path"], r["second_run"]) for r in records if r["second_run"]],
        "input_errors": [(r["path"], r["check_error"]) for r in records
                         if r["check_error"] and not r["internal"] and not r["timeouts"]],
        "slowest": [(r["path"], round(r["seconds"], 2)) for r in slowest],
        "wall_s": result["wall_s"], "cpu_s": result["cpu_s"], "jobs": result["jobs"],
        "budget_s": result["budget_s"], "peak_rss_mb": result["peak_rss_mb"], "rules": result["rules"],
    }


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) + " |"

    return "\n".join([fmt(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, cells[1:])])


def report(summary: dict) -> str:
    per, total = summary["per_corpus"], summary["total"]
    labels = list(per)
    cols = [*labels, "total"]
    both = {**per, "total": total}
    keys = [("files", "files"), ("lines", "lines"), ("findings_total", "findings"),
            ("files_with_findings", "files with findings"), ("fixes_applied", "fixes applied"),
            ("files_fixed", "files fixed"), ("findings_not_fixed", "findings left unfixed (with reason)"),
            ("not_python", "files Python cannot compile (bad input)"), ("input_errors", "files reported as bad input"),
            ("timeouts", "files over the time budget"),
            ("internal_errors", "**internal errors**"), ("broken_fixes", "**fixes that do not compile**"),
            ("second_run_changes", "**files changed by a second fix**")]
    out = [table(["", *cols], [[name, *(both[c][k] for c in cols)] for k, name in keys]), ""]
    out.append(table(["findings per rule", *cols],
                     [[rule, *(both[c]["findings"][rule] for c in cols)] for rule in summary["rules"]]))
    out += ["", f"wall {summary['wall_s']:.1f} s, CPU {summary['cpu_s']:.1f} s over {summary['jobs']} worker(s); "
                f"peak memory (largest process RSS) {summary['peak_rss_mb']:.0f} MiB; "
                f"time budget {summary['budget_s']:g} s per file"]
    if total["not_fixed_reasons"]:
        out += ["", "findings left unfixed, by reason:"]
        out += [f"  {n:5d}  {reason}" for reason, n in total["not_fixed_reasons"].items()]
    out += ["", "slowest files (check + fix + refix): " + ", ".join(f"{_short(p)} {s} s" for p, s in summary["slowest"])]
    for key, title in (("internal", "INTERNAL ERRORS"), ("broken", "FIXES THAT DO NOT COMPILE"),
                       ("second_run", "FILES CHANGED BY A SECOND FIX"), ("timeouts", "over the time budget"),
                       ("input_errors", "bad input (reported, not Adopter's failure)")):
        if summary[key]:
            out += ["", f"{title}:"] + [f"  {_short(p)}: {m}" for p, m in summary[key]]
    return "\n".join(out)


def _short(path: str) -> str:
    marker = f"{os.sep}scale{os.sep}"
    return path.split(marker, 1)[1] if marker in path else path


def failures(summary: dict) -> int:
    total = summary["total"]
    return total["internal_errors"] + total["broken_fixes"] + total["second_run_changes"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=REPO / ".bench", help="downloads and working copies (default: .bench/)")
    parser.add_argument("--wheel", action="append", metavar="NAME==VERSION",
                        help=f"a wheel to run over (repeatable; default: {', '.join(WHEELS)})")
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR",
                        help="run over a copy of the .py files under DIR instead of wheels (repeatable)")
    parser.add_argument("--limit", type=int, help="at most N files per wheel or folder, spread over it")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    parser.add_argument("--file-timeout", type=float, default=None, help="per-file budget (default: the CLI's)")
    parser.add_argument("--json-out", type=Path, help="also write the summary as JSON")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from adopter.budget import DEFAULT_SECONDS

    budget = DEFAULT_SECONDS if args.file_timeout is None else args.file_timeout
    corpus: dict[str, list[Path]] = {}
    scratch = args.cache / "scale"
    if args.src:
        for item in args.src:
            label, _, folder = item.partition("=")
            corpus[label] = copy_folder(Path(folder), scratch / label, args.limit)
    else:
        for spec in args.wheel or WHEELS:
            wheel = ensure_wheel(args.cache, spec, quiet=args.no_progress)
            label = spec.replace("==", "-")
            corpus[label] = extract_wheel(wheel, scratch / label, args.limit)
    count = sum(map(len, corpus.values()))
    print(f"adopter scale benchmark: {count} files "
          f"({', '.join(f'{k} {len(v)}' for k, v in corpus.items())}), {args.jobs} worker(s)", file=sys.stderr)
    result = run(corpus, max(1, args.jobs), budget, progress=not args.no_progress)
    summary = summarise(result)
    print(report(summary))
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2))
    bad = failures(summary)
    print(f"\n{'OK' if not bad else 'FAILED'}: {summary['total']['internal_errors']} internal errors, "
          f"{summary['total']['broken_fixes']} fixes that do not compile, "
          f"{summary['total']['second_run_changes']} files changed by a second fix")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
