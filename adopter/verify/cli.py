"""``adopter verify PATH...``: the command-line front of :func:`adopter.verify.verify_file`.

Importing this module imports torch (at module level, on purpose): without torch the import
raises ImportError, which ``adopter.cli`` turns into a one-line error.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import torch  # noqa: F401  (fail early and clearly without torch)

from ..config import iter_python_files
from .core import VerifyError, verify_file
from .result import FAIL, PASS, SKIP, VerifyResult


def run_verify(args, config_for, rules_for) -> int:
    files, errors = iter_python_files(args.paths, config_for)
    results: list[VerifyResult] = []
    fix = _run_fix(files, getattr(args, "context", None) or [], config_for, getattr(args, "unsafe_fixes", False))
    text = getattr(args, "output_format", "text") == "text"
    for path in files:
        config = config_for(path)
        rules = rules_for(args, config)
        if text:
            print(f"verifying {path} ...", file=sys.stderr, flush=True)
        try:
            # what the checked code prints (a banner on import, shapes printed in forward) goes to
            # stderr: stdout holds the report alone (JSON a program reads)
            with contextlib.redirect_stdout(sys.stderr):
                results.extend(verify_file(str(path), rules, config,
                                           benchmark=not getattr(args, "no_benchmark", False), fix=fix))
        except VerifyError as exc:
            errors.append((str(path), str(exc)))
        except Exception as exc:  # one broken file must not stop the others
            errors.append((str(path), f"internal error: {type(exc).__name__}: {exc}"))
    if text:
        render_text(results)
    else:
        payload: dict = {"results": [r.as_dict() for r in results]}
        if errors:
            payload["errors"] = [{"path": p, "message": m} for p, m in errors]
        print(json.dumps(payload, indent=2))
    for path, message in errors:
        print(f"{path}: error: {message}", file=sys.stderr)
    if errors:
        return 2
    return 1 if any(r.verdict == FAIL for r in results) else 0


def _run_fix(files, context: list[str], config_for, unsafe_fixes: bool = False):
    """The fix each file is verified with: ``fix_text`` with the run of the verified files and
    the ``--context`` ones (an attention whose callers are in other files of its package is
    patched as ``adopter fix`` over those files patches it; :mod:`adopter.synth.run`)."""
    from . import core
    from ..synth.run import Run

    extra, _ = iter_python_files(context, config_for) if context else ([], [])
    run = Run.of_paths([str(p) for p in [*files, *extra]])
    run.unsafe_fixes = unsafe_fixes  # --unsafe-fixes: verify the fix `adopter fix --unsafe-fixes` makes

    def fix(text, path, rules, package=None):
        with run.on(path):  # the planning finds the callers through the current run
            return core._default_fix()(text, path, rules, package)

    return fix


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _diff(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def render_text(results: list[VerifyResult], file=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=file or sys.stdout, width=max(160, Console().width))
    if not results:
        console.print("Nothing to verify.")
        return
    table = Table(show_lines=False)
    for name, justify in (("rule", "left"), ("location", "left"), ("class", "left"), ("verdict", "left"),
                          ("max |diff|", "right"), ("fwd", "right"), ("fwd+bwd", "right"), ("memory", "right"),
                          ("reason", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    colours = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}
    for r in results:
        # reasons quote config sections ("[tool.adopter.verify]"): escape them, or rich eats them as markup
        table.add_row(escape(r.rule), escape(f"{_short_path(r.path)}:{r.line}"), escape(r.class_name),
                      f"[{colours.get(r.verdict, '')}]{escape(_verdict_text(r))}[/]", _diff(r.max_abs_diff),
                      _ratio(r.forward_ratio), _ratio(r.forward_backward_ratio), _ratio(r.memory_ratio),
                      escape(r.reason))
    console.print(table)
    counts = {v: sum(r.verdict == v for r in results) for v in (PASS, FAIL, SKIP)}
    device = sorted({r.device for r in results})
    forward_only = sum(r.verdict == PASS and bool(r.details.get("forward_only")) for r in results)
    passes = f"{counts[PASS]} pass" + (f" ({forward_only} forward only)" if forward_only else "")
    console.print(f"{len(results)} checks on {', '.join(device)}: {passes}, {counts[FAIL]} fail, "
                  f"{counts[SKIP]} skip. Ratios are original/patched time (or peak memory): >1 is faster (smaller).")


def _verdict_text(result: VerifyResult) -> str:
    """The verdict as shown: a pass whose original could not train says it was forward only."""
    if result.verdict == PASS and result.details.get("forward_only"):
        return "pass (forward only)"
    return result.verdict


def _short_path(path: str) -> str:
    parts = Path(path).parts
    return str(Path(*parts[-3:])) if len(parts) > 3 else path
