"""Findings -> text (coloured on a terminal), statistics, JSON, SARIF 2.1.0, GitHub annotations.

The JSON shape (an array of objects with rule, name, path, line, column, end_line,
end_column, message, fixable; ``cell`` for a notebook) is a stable interface: benchmarks and
the bot read it.  The SARIF log validates against the official 2.1.0 schema (the test suite
checks it): artifact URIs are relative, percent-encoded and resolved against
``originalUriBaseIds`` (``SRCROOT``, the folder the run started in), so a file named
``weird dir/my model#1.py`` is one valid URI and not a path with a fragment; every rule has
``help`` text and a ``helpUri``; ``invocations`` says whether the analysis was complete, with
one notification per file that could not be analysed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from collections.abc import Iterable
from urllib.parse import quote

from . import __version__
from .engine import Finding

FORMATS = ("text", "json", "sarif", "github")

#: The project's home; rule pages live under it (``docs/rules/ID.md``, else the rule file).
PROJECT_URL = "https://github.com/adopter-dev/adopter"

# ANSI styles (the few a finding line needs; no colour library on the check path).
BOLD, DIM, RED, GREEN, YELLOW, CYAN, RESET = "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[0m"


def use_color(choice: str, stream) -> bool:
    """``--color always|never|auto``; auto: a terminal, unless ``NO_COLOR`` is set
    (https://no-color.org) or ``TERM=dumb``; ``FORCE_COLOR`` forces it."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb"


def paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{RESET}" if color and text else text


def where(finding: Finding) -> str:
    """``line:col``, or ``cell N:line:col`` in a notebook."""
    cell = f"cell {finding.cell}:" if finding.cell else ""
    return f"{cell}{finding.line}:{finding.column}"


def text(findings: Iterable[Finding], fix_hint: str | None = None, color: bool = False) -> str:
    lines = []
    for f in findings:
        hint = f" (fix: {fix_hint})" if fix_hint and f.fixable else ""
        if f.informational:
            hint = " " + paint(f"[info: {f.informational}]", YELLOW, color)
        location = paint(f.path, BOLD, color) + paint(":", CYAN, color) + where(f) + paint(":", CYAN, color)
        code = paint(f.rule, BOLD + (DIM if f.informational else RED), color)
        lines.append(f"{location} {code} {f.name}: {f.message}{hint}")
    return "\n".join(lines)


def statistics(findings: list[Finding], color: bool = False) -> str:
    """One line per rule, most frequent first: count, id, ``[*]`` when fixable, name."""
    counts = Counter(f.rule for f in findings)
    first = {}
    for f in findings:
        first.setdefault(f.rule, f)
    width = max((len(str(n)) for n in counts.values()), default=1)
    lines = []
    for rule, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        f = first[rule]
        mark = "[*]" if f.fixable else ("[i]" if f.informational else "[ ]")
        lines.append(f"{count:>{width}}\t{paint(rule, BOLD + RED, color)}\t{mark} {f.name}")
    return "\n".join(lines)


def as_json(findings: Iterable[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2)


def _escape_property(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C")


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github(findings: Iterable[Finding]) -> str:
    out = []
    for f in findings:
        props = ",".join([
            f"file={_escape_property(f.path)}", f"line={f.line}", f"col={f.column}",
            f"endLine={f.end_line}",
            f"title={_escape_property(f.rule + ' ' + f.name + (' (informational)' if f.informational else ''))}",
        ])
        message = (f"cell {f.cell}: " if f.cell else "") + f.message
        message += f" [info: {f.informational}]" if f.informational else ""
        out.append(f"::notice {props}::{_escape_data(message)}")
    return "\n".join(out)


# --------------------------------------------------------------------------- SARIF

SRCROOT = "SRCROOT"


def artifact_location(path: str, root: Path) -> dict:
    """A path as a SARIF artifactLocation: relative to ``root`` and percent-encoded where it
    lies under it (``uriBaseId`` SRCROOT), else an absolute ``file://`` URI."""
    if path == "-":
        return {"uri": "stdin"}
    absolute = Path(os.path.abspath(path))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(rel.as_posix(), safe="/"), "uriBaseId": SRCROOT}


def help_uri(rule) -> str | None:
    """The rule's page: ``docs/rules/ID.md`` where there is one, else its rule file (which
    holds its why, patterns and examples); a user rule's first web reference, if any."""
    from .ruleset import bundled_rules_dir

    rule_path = Path(rule.path)
    try:
        bundled = rule_path.resolve().parent == bundled_rules_dir().resolve()
    except OSError:
        bundled = False
    if bundled:
        docs = Path(__file__).resolve().parent.parent / "docs" / "rules" / f"{rule.id}.md"
        if docs.is_file():
            return f"{PROJECT_URL}/blob/main/docs/rules/{rule.id}.md"
        return f"{PROJECT_URL}/blob/main/rules/{quote(rule_path.name)}"
    for reference in rule.references:
        head = reference.split()[0] if reference.split() else ""
        if head.startswith(("https://", "http://")):
            return head
    return None


def _help(rule) -> dict:
    why = (rule.why or rule.summary).strip()
    kernel = f"Kernel: {rule.kernel.import_} (from {rule.kernel.package})."
    fix = f"Fix: {rule.fix_safety} (adopter fix)." if rule.fixable else "Report only: no automatic fix."
    plain = f"{rule.summary}\n\n{why}\n\n{kernel} {fix}"
    return {"text": plain, "markdown": f"**{rule.summary}**\n\n{why}\n\n{kernel} {fix}"}


def sarif(findings: list[Finding], rules, *, errors: list[tuple[str, str]] = (), root: str | None = None) -> str:
    base = Path(os.path.abspath(root or os.getcwd()))
    rule_list = sorted(rules, key=lambda r: r.id)
    index = {r.id: i for i, r in enumerate(rule_list)}
    descriptors = []
    for r in rule_list:
        descriptor = {
            "id": r.id, "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": (r.why or r.summary).strip()},
            "help": _help(r),
            "defaultConfiguration": {"level": "note"},
            "properties": {"kernel": r.kernel.import_, "fixable": r.fixable, "tags": ["performance"]},
        }
        uri = help_uri(r)
        if uri:
            descriptor["helpUri"] = uri
        descriptors.append(descriptor)
    results = []
    for f in findings:
        result = {
            "ruleId": f.rule, "level": "none" if f.informational else "note",
            "message": {"text": (f"cell {f.cell}: " if f.cell else "") + f.message
                        + (f" [info: {f.informational}]" if f.informational else "")},
            "locations": [{"physicalLocation": {
                "artifactLocation": artifact_location(f.path, base),
                "region": {"startLine": f.line, "startColumn": f.column,
                           "endLine": f.end_line, "endColumn": f.end_column},
            }}],
        }
        if f.rule in index:
            result["ruleIndex"] = index[f.rule]
        properties = {}
        if f.informational:
            properties["informational"] = True
        if f.cell:
            properties["cell"] = f.cell
        if properties:
            result["properties"] = properties
        results.append(result)
    notifications = [{
        "level": "error",
        "message": {"text": f"{path}: {message}"},
        "locations": [{"physicalLocation": {"artifactLocation": artifact_location(path, base)}}],
    } for path, message in errors]
    invocation = {"executionSuccessful": not errors}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "adopter", "version": __version__, "semanticVersion": __version__,
                "informationUri": PROJECT_URL, "rules": descriptors,
            }},
            "originalUriBaseIds": {SRCROOT: {"uri": base.as_uri().rstrip("/") + "/"}},
            "invocations": [invocation],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2)


def render(fmt: str, findings: list[Finding], rules, fix_hint: str | None = None, *,
           errors: list[tuple[str, str]] = (), color: bool = False) -> str:
    if fmt == "json":
        return as_json(findings)
    if fmt == "sarif":
        return sarif(findings, rules, errors=errors)
    if fmt == "github":
        return github(findings)
    return text(findings, fix_hint, color)
