"""Findings -> text, JSON, SARIF 2.1.0, GitHub workflow annotations.

The JSON shape (an array of objects with rule, name, path, line, column, end_line,
end_column, message, fixable) is a stable interface: benchmarks and the bot read it.
"""

from __future__ import annotations

import json
from typing import Iterable

from . import __version__
from .engine import Finding

FORMATS = ("text", "json", "sarif", "github")


def text(findings: Iterable[Finding], fix_hint: str | None = None) -> str:
    lines = []
    for f in findings:
        hint = f" (fix: {fix_hint})" if fix_hint and f.fixable else ""
        if f.informational:
            hint = f" [info: {f.informational}]"
        lines.append(f"{f.path}:{f.line}:{f.column}: {f.rule} {f.name}: {f.message}{hint}")
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
        message = f.message + (f" [info: {f.informational}]" if f.informational else "")
        out.append(f"::notice {props}::{_escape_data(message)}")
    return "\n".join(out)


def sarif(findings: list[Finding], rules) -> str:
    used = {f.rule for f in findings}
    rule_list = [r for r in rules if r.id in used] or list(rules)
    index = {r.id: i for i, r in enumerate(rule_list)}
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "adopter", "version": __version__, "informationUri": "https://pypi.org/project/adopter/",
                "rules": [{
                    "id": r.id, "name": r.name,
                    "shortDescription": {"text": r.summary},
                    "fullDescription": {"text": (r.why or r.summary).strip()},
                    "defaultConfiguration": {"level": "note"},
                    "properties": {"kernel": r.kernel.import_, "fixable": r.fixable},
                } for r in rule_list],
            }},
            "results": [{
                "ruleId": f.rule, "ruleIndex": index.get(f.rule, 0), "level": "none" if f.informational else "note",
                "message": {"text": f.message + (f" [info: {f.informational}]" if f.informational else "")},
                **({"properties": {"informational": True}} if f.informational else {}),
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.path.replace("\\", "/")},
                    "region": {"startLine": f.line, "startColumn": f.column,
                               "endLine": f.end_line, "endColumn": f.end_column},
                }}],
            } for f in findings],
        }],
    }
    return json.dumps(doc, indent=2)


def render(fmt: str, findings: list[Finding], rules, fix_hint: str | None = None) -> str:
    if fmt == "json":
        return as_json(findings)
    if fmt == "sarif":
        return sarif(findings, rules)
    if fmt == "github":
        return github(findings)
    return text(findings, fix_hint)
