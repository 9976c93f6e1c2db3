"""The ``adopter`` command: argument parsing and dispatch only.

Exit codes (Ruff's conventions): 0 nothing found, 1 findings (or, for ``fix``, files that
were changed), 2 usage error or a file that could not be analysed: unreadable, not Python
source, a syntax error, too large, over its time budget, or (``fix``) changed while it was
being fixed.  A run over many files reports each bad file in one line on stderr
(``path: error: why``), goes on with the others (their findings and fixes are reported and
written as usual), and exits 2 at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

from . import __version__
from .budget import DEFAULT_SECONDS, BudgetExceeded, parse_seconds, time_budget
from .config import Config, ConfigError, find_config, iter_python_files
from .engine import AnalysisError, Finding, analyze
from .report import FORMATS, render
from .ruleset import Rule, RuleError, bundled_rules_dir, load_rules, select_rules
from .source import SourceError, read_source
from .structure import package_of

PARALLEL_MIN_FILES = 24


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursing into *.py)")
    parser.add_argument("--select", help="comma-separated rule ids or names (ALL for every rule)")
    parser.add_argument("--ignore", help="comma-separated rule ids or names to skip")
    parser.add_argument("--rules-dir", action="append", default=[],
                        help="extra folder of rule files (a rule there replaces the bundled rule of the same id)")
    _no_bundled_option(parser)
    parser.add_argument("--target", choices=("cpu", "cuda"),
                        help="hardware the code runs on: findings of rules that help elsewhere are informational")
    parser.add_argument("--no-config", action="store_true", help="ignore [tool.adopter] in pyproject.toml")
    parser.add_argument("--jobs", "-j", type=int, default=0, help="worker processes (default: all cores)")


def _no_bundled_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-bundled-rules", action="store_true",
                        help="load rule files only from --rules-dir / rule-paths, not the bundled rules")


def _budget_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file-timeout", type=_seconds, metavar="SECONDS",
                        help=f"time budget per file in CPU seconds; a file over it is reported and skipped "
                             f"(default: file-timeout in [tool.adopter], else {DEFAULT_SECONDS:g}; 0: no limit)")


def _seconds(value: str) -> float:
    try:
        return parse_seconds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


EPILOG = """exit codes: 0 nothing found (fix: nothing changed), 1 findings (fix: files changed),
2 usage error or a file that could not be analysed or written. A bad file among good ones is
reported in one line on stderr (PATH: error: WHY); the others are still checked or fixed,
and the run exits 2 at the end."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adopter", description="Find and adopt optimized DL kernels in PyTorch code.")
    parser.add_argument("--version", action="version", version=f"adopter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="report where kernels apply", epilog=EPILOG)
    _common_options(check)
    _budget_option(check)
    check.add_argument("--output-format", choices=FORMATS, default="text")
    check.add_argument("--fix-hint", default=None, help=argparse.SUPPRESS)

    fix = sub.add_parser("fix", help="rewrite files to use the kernels", epilog=EPILOG)
    _common_options(fix)
    _budget_option(fix)
    fix.add_argument("--diff", action="store_true", help="print a unified diff, write nothing")
    fix.add_argument("--no-deps", action="store_true", help="do not add the kernel packages to dependency files")
    fix.add_argument("--unsafe-fixes", action="store_true",
                     help="also apply fixes marked unsafe (`adopter rules ID` says why each one is)")

    rules = sub.add_parser("rules", help="list the rules, or explain one")
    rules.add_argument("rule", nargs="?", help="rule id or name to explain")
    rules.add_argument("--rules-dir", action="append", default=[])
    _no_bundled_option(rules)
    rules.add_argument("--output-format", choices=("text", "json"), default="text")

    structure = sub.add_parser("structure", help="print the abstracted model structure of a file")
    structure.add_argument("file")
    structure.add_argument("class_name", nargs="?", metavar="CLASS")

    verify = sub.add_parser("verify", help="prove each patch on the real module (needs torch)")
    _common_options(verify)
    verify.add_argument("--output-format", choices=("text", "json"), default="text")
    verify.add_argument("--no-benchmark", action="store_true", help="skip timing")

    sub.add_parser("bot", help="run as a GitHub Action (see action.yml)", add_help=False)
    return parser


class UsageError(Exception):
    pass


def _rules_for(args, config: Config, informational: bool = False) -> list[Rule]:
    """The rules to apply; with ``informational``, also those that do not help on the target
    (``check`` reports their findings for information)."""
    dirs = [Path(d) for d in getattr(args, "rules_dir", [])] + list(config.rule_paths)
    # Workers load the bundled rules and these folders again and keep the chosen ids: the same
    # rules, since a folder's rule replaces a bundled one of the same id.
    rules = load_rules(dirs, bundled=not getattr(args, "no_bundled_rules", False))
    select = _split(args.select) or list(config.select)
    ignore = _split(args.ignore) + list(config.ignore)
    try:
        chosen = select_rules(rules, select or None, ignore or None, _target(args, config))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not informational:
        chosen = [r for r in chosen if r.helps_on(_target(args, config))]
    return chosen


def _target(args, config: Config) -> str | None:
    return getattr(args, "target", None) or config.target


# --------------------------------------------------------------------- per-file work

_WORKER_RULES: dict[tuple, list[Rule]] = {}


def file_budget(args, config: Config) -> float:
    """Seconds one file may take: --file-timeout, else [tool.adopter] file-timeout, else the default."""
    value = getattr(args, "file_timeout", None)
    if value is None:
        value = config.file_timeout
    return DEFAULT_SECONDS if value is None else value


def _check_one(job: tuple[str, tuple[str, ...], tuple[str, ...], float]):
    """Analyse one file within its time budget; runs in a worker process for large trees."""
    path, rule_ids, rule_dirs, budget = job
    key = (rule_ids, rule_dirs)
    rules = _WORKER_RULES.get(key)
    if rules is None:
        everything = load_rules([Path(d) for d in rule_dirs])
        rules = _WORKER_RULES[key] = [r for r in everything if r.id in set(rule_ids)]
    try:
        with time_budget(budget):
            source = read_source(path)
            analysis = analyze(source.text, path, rules, package_of(path))
            # fixable means what `fix` would do: decided by fix's own planning step.
            from .synth.fixable import plan_findings

            return plan_findings(analysis, source.text, path), None
    except (SourceError, AnalysisError, BudgetExceeded) as exc:
        return [], str(exc)
    except Exception as exc:  # an internal error must not stop the other files
        return [], f"internal error: {type(exc).__name__}: {exc}"


def _config_for_factory(args):
    if args.no_config:
        return lambda path: Config()
    cache: dict[str, Config] = {}

    def config_for(path: Path) -> Config:
        folder = str(path.parent if not path.is_dir() else path)
        if folder not in cache:
            cache[folder] = find_config(Path(folder))
        return cache[folder]

    return config_for


def run_check(args) -> tuple[list[Finding], list[tuple[str, str]], list[Rule]]:
    config_for = _config_for_factory(args)
    files, errors = iter_python_files(args.paths, config_for)
    jobs = []
    targets = []
    all_rules: dict[str, Rule] = {}
    by_config: dict[Config, list[Rule]] = {}  # rule files are loaded once per config, not per file
    for path in files:
        config = config_for(path)
        targets.append(_target(args, config))
        rules = by_config.get(config)
        if rules is None:
            rules = by_config[config] = _rules_for(args, config, informational=True)
        for r in rules:
            all_rules[r.id] = r
        dirs = tuple(str(d) for d in [*map(Path, args.rules_dir), *config.rule_paths])
        jobs.append((str(path), tuple(r.id for r in rules), dirs, file_budget(args, config)))
    findings: list[Finding] = []
    workers = args.jobs or os.cpu_count() or 1
    if len(jobs) >= PARALLEL_MIN_FILES and workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_check_one, jobs, chunksize=4))
    else:
        results = [_check_one(job) for job in jobs]
    for (path, *_), target, (found, error) in zip(jobs, targets, results):
        for finding in found:
            note = all_rules[finding.rule].target_note(target)
            findings.append(replace(finding, informational=note, fixable=False) if note else finding)
        if error:
            errors.append((path, error))
    return findings, errors, sorted(all_rules.values(), key=lambda r: r.id)


def _print_errors(errors) -> None:
    for path, message in errors:
        print(f"{path}: error: {message}", file=sys.stderr)


def cmd_check(args) -> int:
    findings, errors, rules = run_check(args)
    output = render(args.output_format, findings, rules, fix_hint=args.fix_hint)
    if output:
        print(output)
    actionable = [f for f in findings if not f.informational]
    if args.output_format == "text" and findings:
        fixable = sum(f.fixable for f in actionable)
        info = len(findings) - len(actionable)
        print(f"Found {len(actionable)} opportunit{'y' if len(actionable) == 1 else 'ies'} "
              f"({fixable} fixable with `adopter fix`)"
              + (f" and {info} informational (for other hardware)" if info else "") + ".", file=sys.stderr)
    _print_errors(errors)
    if errors:
        return 2
    return 1 if actionable else 0


def cmd_fix(args) -> int:
    from .fixer import run_fix  # LibCST is only imported when something is rewritten

    return run_fix(args, _config_for_factory(args), _rules_for)


def cmd_rules(args) -> int:
    import json

    from .measured import load_measured

    dirs = [Path(d) for d in args.rules_dir]
    rules = load_rules(dirs, bundled=not args.no_bundled_rules)
    if not rules:
        raise UsageError("no rules: --no-bundled-rules needs a --rules-dir with rule files")
    measured = load_measured([*([bundled_rules_dir()] if not args.no_bundled_rules else []), *dirs])
    if args.rule:
        wanted = [r for r in rules if args.rule in (r.id, r.name)]
        if not wanted:
            raise UsageError(f"unknown rule {args.rule!r}")
        rule = wanted[0]
        if args.output_format == "json":
            print(json.dumps(_rule_dict(rule, measured.get(rule.id, [])), indent=2))
            return 0
        print(explain(rule, measured.get(rule.id, [])))
        return 0
    if args.output_format == "json":
        print(json.dumps([_rule_dict(r, measured.get(r.id, [])) for r in rules], indent=2))
        return 0
    width = max(len(r.name) for r in rules)
    where = {r.id: _where(r) for r in rules}
    where_width = max(len(w) for w in where.values())
    kernel = {r.id: r.kernel.import_ + _default_note(r) for r in rules}
    kernel_width = max(len(k) for k in kernel.values())
    for r in rules:
        mark = "fixable" if r.fixable else "report "
        print(f"{r.id}  {r.name:<{width}}  {mark}  {where[r.id]:<{where_width}}  {kernel[r.id]:<{kernel_width}}"
              f"  measured: {_measured_line(r, measured.get(r.id, []))}")
    return 0


def _default_note(rule: Rule) -> str:
    if rule.default:
        return ""
    if rule.default_targets:
        return f" (off by default; on with --target {'/'.join(rule.default_targets)})"
    return " (off by default)"


def _measured_line(rule: Rule, figures: list) -> str:
    from .measured import summary

    if rule.helps:
        return summary(rule.helps, figures)
    ratios = sorted(f.ratio for f in figures)
    return "declares no target" + (f"; unclaimed figures {ratios[0]:.2f}-{ratios[-1]:.2f}x" if ratios else "")


def _where(rule: Rule) -> str:
    """``cuda:train+infer cpu:infer`` (and ``cuda only`` for patches that run nowhere else)."""
    short = {"training": "train", "inference": "infer"}
    by_target: dict[str, list[str]] = {}
    for item in rule.helps:
        target, _, mode = item.partition(":")
        by_target.setdefault(target, []).append(short.get(mode, mode or "all"))
    text = " ".join(f"{t}:{'+'.join(m)}" for t, m in by_target.items()) or "-"
    return text + (f" ({'/'.join(rule.only_on)} only)" if rule.only_on else "")


def _rule_dict(rule: Rule, figures: list | None = None) -> dict:
    from dataclasses import asdict

    return {
        "id": rule.id, "name": rule.name, "title": rule.title, "summary": rule.summary,
        "kernel": rule.kernel.import_, "package": rule.kernel.package, "fixable": rule.fixable,
        "fix_safety": rule.fix_safety, "default": rule.default, "default_targets": list(rule.default_targets),
        "helps": list(rule.helps), "checkpoint_compatible": rule.checkpoint_compatible, "path": rule.path,
        "only_on": list(rule.only_on),
        "measured": [{k: v for k, v in asdict(f).items() if k != "rule"} for f in figures or []],
    }


def _explain_measured(rule: Rule, figures: list) -> list[str]:
    """The figures ``benchmarks/rules.py --write`` stored for this rule, one line per case."""
    out = ["", "Measured (benchmarks/rules.py; original / patched time, median [interquartile range] "
                "of interleaved pairs):"]
    if not figures:
        return out + ["    nothing measured yet"]
    for f in figures:
        note = "" if f.claimed else " (mode not claimed)"
        memory = f", peak memory {f.memory_ratio:.2f}x" if f.memory_ratio is not None else ""
        drift = ", drift flagged" if f.drift else ""
        out.append(f"    {f.target}:{f.mode} {f.case}: {f.short()} min-max {f.low:.2f}-{f.high:.2f}, "
                   f"{f.pairs} pairs{memory}{drift}{note}; torch {f.torch}, {f.dtype}, {f.threads} thread(s)"
                   f"{', ' + f.clock + ' clock' if f.clock else ''}, {f.date}")
    measured = {f.target for f in figures}
    for target in sorted({h.partition(":")[0] for h in rule.helps} - measured):
        out.append(f"    {target}: not measured on its hardware yet")
    return out


def explain(rule: Rule, figures: list | None = None) -> str:
    out = [f"{rule.id} {rule.name} ({rule.title})", "", rule.summary, ""]
    if rule.why:
        out += ["Why", "---", rule.why.strip(), ""]
    out += [
        f"Kernel: {rule.kernel.import_} from {rule.kernel.package}"
        + (f" >= {rule.kernel.min_version}" if rule.kernel.min_version else ""),
        f"Helps on: {', '.join(rule.helps) or 'unspecified'}"
        + (f" (the patched code runs on {'/'.join(rule.only_on)} only: fixed with --target {rule.only_on[0]})"
           if rule.only_on else ""),
        f"Fix: {'yes, ' + rule.fix_safety if rule.fixable else 'report only'}; "
        f"checkpoints {'stay loadable' if rule.checkpoint_compatible else 'need conversion (off by default)'}",
        "Default: " + ("on" if rule.default else _default_note(rule).strip(" ()")),
        *_explain_measured(rule, figures or []),
        "",
        "Forward pattern:", _indent(rule.forward.text.strip()),
    ]
    if rule.forward_target:
        out += ["becomes:", _indent(rule.forward_target.strip())]
    for index, init in enumerate(rule.init):
        out += [f"Init pattern{' (alternative %d)' % (index + 1) if len(rule.init) > 1 else ''}:",
                _indent(init.text.strip())]
    if rule.init_target:
        out += ["becomes:", _indent(rule.init_target.strip())]
    for example in rule.examples:
        if example.after is not None:
            out += ["", f"Example: {example.name}", "Before:", _indent(example.before.strip()),
                    "After:", _indent(example.after.strip())]
            break
    return "\n".join(out)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def cmd_structure(args) -> int:
    from .describe import describe_file

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
    return run_verify(args, _config_for_factory(args), _rules_for)


def cmd_bot(argv: list[str]) -> int:
    try:
        from .bot.main import main as bot_main
    except ImportError as exc:
        raise UsageError(f"adopter bot needs its extra: pip install 'adopter[bot,verify]' ({exc})") from None
    return bot_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "bot":
        try:
            return cmd_bot(argv[1:])
        except UsageError as exc:
            print(f"adopter: error: {exc}", file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    handlers = {"check": cmd_check, "fix": cmd_fix, "rules": cmd_rules, "structure": cmd_structure,
                "verify": cmd_verify}
    try:
        return handlers[args.command](args)
    except RuleError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (UsageError, ConfigError) as exc:
        print(f"adopter: error: {exc}", file=sys.stderr)
        return 2
    except BrokenProcessPool:
        # A worker was killed (out of memory, a crash in native code): nothing has been written
        # yet, since files are written only once every result is in.
        print("adopter: error: a worker process died (out of memory?); nothing was written. "
              "Run again with --jobs=1 to find the file", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
