"""The ``adopter`` command: argument parsing and dispatch only (the work is in
:mod:`adopter.commands`, the orchestration in :mod:`adopter.runner`).

Options are never abbreviated (``allow_abbrev=False``): ``check --fix a.py`` must never
silently mean another option that starts the same way.  A misspelt option, command or
choice gets a "did you mean" hint.

Exit codes (Ruff's conventions): 0 nothing found (or, for ``fix``, nothing changed), 1
findings (``fix``: files changed), 2 usage error or a file that could not be analysed or
written.  A run over many files reports each bad file in one line on stderr
(``path: error: why``), goes on with the others, and exits 2 at the end.  SIGTERM and
Ctrl-C stop the run without leaving temporary files or worker processes behind (143, 130).
"""

from __future__ import annotations

import argparse
import re
import sys

from . import __version__
from .budget import DEFAULT_SECONDS, parse_seconds
from .commands import UsageError, cmd_check, cmd_fix, cmd_rules, cmd_structure, cmd_verify
from .config import ConfigError
from .report import FORMATS
from .ruleset import RuleError
from .runner import SelectionError, Terminated, on_sigterm


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations, and with "did you mean" hints on its errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._fill = None

    def options(self, fill) -> None:
        """Add this (sub)command's options with ``fill(self)`` when it is first used to parse
        or print help: a run needs one command's options, and building every command's was
        about 3% of a one-file check."""
        self._fill = fill

    def _filled(self) -> None:
        fill, self._fill = self._fill, None
        if fill is not None:
            fill(self)

    def parse_known_args(self, args=None, namespace=None):
        self._filled()
        return super().parse_known_args(args, namespace)

    def format_help(self):
        self._filled()
        return super().format_help()

    def format_usage(self):
        self._filled()
        return super().format_usage()

    def error(self, message: str):
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            options = re.findall(r"'([^']*)'", choice.group(2))
            import difflib  # only for a suggestion: not on the start-up path
            close = difflib.get_close_matches(choice.group(1), options, n=1, cutoff=0.5)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)

    def unknown(self, extras: list[str]):
        """Report unrecognised arguments, each unknown option with its closest real one."""
        known = [o for action in self._actions for o in action.option_strings if action.help != argparse.SUPPRESS]
        hints = []
        for extra in extras:
            if extra.startswith("-") and extra != "-":
                name = extra.split("=", 1)[0]
                import difflib  # only for a suggestion: not on the start-up path
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                if close:
                    hints.append(f"{name}: did you mean {close[0]}?")
        message = f"unrecognized arguments: {' '.join(extras)}"
        if hints:
            message += " (" + "; ".join(hints) + ")"
        argparse.ArgumentParser.error(self, message)


def _seconds(value: str) -> float:
    try:
        return parse_seconds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


EPILOG = """exit codes: 0 nothing found (fix: nothing changed), 1 findings (fix: files changed),
2 usage error or a file that could not be analysed or written. A bad file among good ones is
reported in one line on stderr (PATH: error: WHY); the others are still checked or fixed,
and the run exits 2 at the end."""


def _selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", help="comma-separated rule ids, id prefixes or names (ALL for every rule)")
    parser.add_argument("--ignore", help="comma-separated rule ids, id prefixes or names to skip")
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


def _file_options(parser: argparse.ArgumentParser, stdin: bool = True) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files, folders or - (standard input); default: the current folder")
    _selection_options(parser)
    parser.add_argument("--force-exclude", action="store_true",
                        help="apply exclude patterns to files named on the command line too (for pre-commit)")
    parser.add_argument("--respect-gitignore", action=argparse.BooleanOptionalAction, default=None,
                        help="skip what .gitignore ignores while walking folders (default: yes, or "
                             "respect-gitignore in [tool.adopter])")
    if stdin:
        parser.add_argument("--stdin-filename", metavar="PATH",
                            help="the name of the code read from standard input (for config, excludes and messages)")
    parser.add_argument("--file-timeout", type=_seconds, metavar="SECONDS",
                        help=f"time budget per file in CPU seconds; a file over it is reported and skipped "
                             f"(default: file-timeout in [tool.adopter], else {DEFAULT_SECONDS:g}; 0: no limit)")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour the output (auto: on a terminal, unless NO_COLOR is set)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print findings (or diffs) and nothing else")
    parser.add_argument("--silent", "-s", action="store_true", help="print nothing; the exit code tells")
    parser.add_argument("--show-fixes", action="store_true", help="list the findings that were fixed")


def _check_options(check: Parser) -> None:
    _file_options(check)
    check.add_argument("--fix", action="store_true", help="apply the fixes, then report what is left")
    check.add_argument("--diff", action="store_true", help="print the fixes as a unified diff; write nothing")
    check.add_argument("--no-deps", action="store_true",
                       help="with --fix/--diff: do not add the kernel packages to dependency files")
    check.add_argument("--unsafe-fixes", action="store_true",
                       help="also apply fixes marked unsafe with --fix/--diff, and count them as fixable "
                            "(`adopter rules ID` says why each one is unsafe)")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    check.add_argument("--exit-non-zero-on-fix", action="store_true",
                       help="with --fix: exit 1 when something was fixed, even if nothing is left")
    check.add_argument("--statistics", action="store_true", help="count the findings per rule instead of listing them")
    check.add_argument("--output-format", choices=FORMATS, default="text")
    check.set_defaults(fix_hint=None, keep=None)


def _fix_options(fix: Parser) -> None:
    _file_options(fix)
    fix.add_argument("--diff", action="store_true", help="print a unified diff, write nothing")
    fix.add_argument("--no-deps", action="store_true", help="do not add the kernel packages to dependency files")
    fix.add_argument("--unsafe-fixes", action="store_true",
                     help="also apply fixes marked unsafe (`adopter rules ID` says why each one is)")


def _rules_options(rules: Parser) -> None:
    rules.add_argument("rule", nargs="?", help="rule id or name to explain")
    rules.add_argument("--rules-dir", action="append", default=[])
    _no_bundled_option(rules)
    rules.add_argument("--output-format", choices=("text", "json"), default="text")


def _structure_options(structure: Parser) -> None:
    structure.add_argument("file")
    structure.add_argument("class_name", nargs="?", metavar="CLASS")


def _verify_options(verify: Parser) -> None:
    verify.add_argument("paths", nargs="*", metavar="PATH", help="files or folders; default: the current folder")
    _selection_options(verify)
    verify.add_argument("--output-format", choices=("text", "json"), default="text")
    verify.add_argument("--no-benchmark", action="store_true", help="skip timing")
    verify.add_argument("--context", action="append", default=[], metavar="PATH",
                        help="files or folders fixed with the verified ones but not verified (where an "
                             "attention's callers are, in other files of its package)")
    verify.add_argument("--unsafe-fixes", action="store_true",
                        help="verify the fixes `adopter fix --unsafe-fixes` would make")


def build_parser() -> Parser:
    parser = Parser(prog="adopter", description="Find and adopt optimized DL kernels in PyTorch code.")
    parser.add_argument("--version", action="version", version=f"adopter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    sub.add_parser("check", help="report where kernels apply", epilog=EPILOG).options(_check_options)
    sub.add_parser("fix", help="rewrite files to use the kernels", epilog=EPILOG).options(_fix_options)
    sub.add_parser("rules", help="list the rules, or explain one").options(_rules_options)
    sub.add_parser("structure", help="print the abstracted model structure of a file").options(_structure_options)
    sub.add_parser("verify", help="prove each patch on the real module (needs torch)").options(_verify_options)
    sub.add_parser("bot", help="run as a GitHub Action (see action.yml)", add_help=False)
    parser._subparsers_by_name = sub.choices  # for the "did you mean" of unknown options
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse a command line (exits 2 with a hint on a usage error, as argparse does)."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        sub = parser._subparsers_by_name.get(args.command) if args.command else None
        (sub or parser).unknown(extras)
    if args.command is None:
        parser.print_help(sys.stderr)
        raise SystemExit(2)
    return args


def _broken_pool() -> tuple:
    """``BrokenProcessPool`` once a process pool was started (only then can it be raised):
    importing ``concurrent.futures.process`` up front cost a one-file check's start-up
    about a tenth of its time (it pulls in ``multiprocessing``)."""
    module = sys.modules.get("concurrent.futures.process")
    return (module.BrokenProcessPool,) if module is not None else ()


HANDLERS = {"check": cmd_check, "fix": cmd_fix, "rules": cmd_rules, "structure": cmd_structure, "verify": cmd_verify}


def dispatch(args: argparse.Namespace) -> int:
    """Run a parsed command; every error a user can cause becomes a message and exit 2."""
    undo = on_sigterm()
    try:
        return HANDLERS[args.command](args)
    except RuleError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (UsageError, ConfigError, SelectionError) as exc:
        print(f"adopter: error: {exc}", file=sys.stderr)
        return 2
    except _broken_pool():
        # A worker was killed (out of memory, a crash in native code): nothing has been written
        # yet, since files are written only once every result is in.
        print("adopter: error: a worker process died (out of memory?); nothing was written. "
              "Run again with --jobs=1 to find the file", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 143
    except BrokenPipeError:
        return 1
    finally:
        undo()


def cmd_bot(argv: list[str]) -> int:
    try:
        from .bot.main import main as bot_main
    except ImportError as exc:
        raise UsageError(f"adopter bot needs its extra: pip install 'adopter[bot,verify]' ({exc})") from None
    return bot_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bot":
        try:
            return cmd_bot(argv[1:])
        except UsageError as exc:
            print(f"adopter: error: {exc}", file=sys.stderr)
            return 2
    return dispatch(parse(argv))


if __name__ == "__main__":  # pragma: no cover
    from .process import run

    run(main)
