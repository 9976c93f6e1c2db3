#!/usr/bin/env python
"""An output oracle for speed work: every finding and every match (with its nodes, bindings and
constructors) of every rule over the paper corpus and the development corpus, as JSON, so that
an optimisation can be checked to change nothing.

    .venv/bin/python benchmarks/same_output.py --out /tmp/before.json     # on main
    .venv/bin/python benchmarks/same_output.py --out /tmp/after.json      # on the branch
    cmp /tmp/before.json /tmp/after.json
    # or, when the dev cache may have changed in between: the same files as before
    .venv/bin/python benchmarks/same_output.py --files-of /tmp/before.json --out /tmp/after.json

The files: the 199 files of the paper corpus (``paper.build_corpus``), the labelled files of
the development corpus (``devcorpus/score.py``'s cache), and every ``--extra-every``-th other
Python file of that cache that defines an ``nn.Module`` (in sorted order, so the same files each
run).  ``--fix`` also records each file's ``fix_text`` result (LibCST: slow).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "devcorpus"))

import paper  # noqa: E402
import score  # noqa: E402  (devcorpus/score.py)


def plain(value, depth: int = 0):
    """A JSON-able, address-free form of ``value`` (node ids are left out: they are internal)."""
    if depth > 12:
        return "..."
    if isinstance(value, ast.AST):
        return ast.dump(value, include_attributes=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
                if f.name != "id"}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v, depth + 1) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    text = repr(value)
    return text if " at 0x" not in text else type(value).__name__


def files(cache: Path, extra_every: int) -> list[str]:
    out = [os.path.abspath(f.path) for f in paper.build_corpus(cache, quiet=True)]
    labels = score.read_labels(HERE / "devcorpus" / "labels.tsv")
    labelled = sorted({str(p) for p in score.resolve_files(labels, score.DEFAULT_CACHE, quiet=True).values()})
    out += labelled
    if extra_every:
        seen = set(labelled)
        others = sorted(str(p) for p in (score.DEFAULT_CACHE / "src").rglob("*.py") if str(p) not in seen)
        modules = []
        for path in others:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if "nn.Module" in text:
                modules.append(path)
        out += modules[::extra_every]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=paper.REPO / ".bench", help="paper.py's cache folder")
    parser.add_argument("--extra-every", type=int, default=8,
                        help="take every n-th other nn.Module file of the dev cache (0: none)")
    parser.add_argument("--files-of", type=Path, help="analyse the files of this earlier output, in its order")
    parser.add_argument("--fix", action="store_true", help="also record fix_text's result per file")
    args = parser.parse_args(argv)

    from adopter.engine import AnalysisError, analyze
    from adopter.ruleset import load_rules
    from adopter.structure import package_of

    import adopter

    # The rule files beside the code imported (with PYTHONPATH set to another checkout, the
    # bundled rules of the installed package would be another checkout's).
    rules = load_rules([Path(adopter.__file__).resolve().parents[1] / "rules"], bundled=False)
    if args.files_of:  # the files of an earlier output (the dev cache may have grown since)
        home = str(Path.home())
        paths = [p.replace("~", home, 1) if p.startswith("~") else p
                 for p in json.loads(args.files_of.read_text(encoding="utf-8"))]
    else:
        paths = files(args.cache, args.extra_every)
    result = {}
    for path in paths:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        key = path.replace(str(Path.home()), "~")
        try:
            analysis = analyze(text, path, rules, package_of(path))
        except AnalysisError as exc:
            result[key] = {"error": str(exc)}
            continue
        record = {
            "findings": [f.as_dict() for f in analysis.findings],
            "matches": [{"rule": rule.id, **{f.name: plain(getattr(m, f.name)) for f in dataclasses.fields(m)
                                            if f.name != "others"},
                         "others": [plain(o.key) for o in m.others]} for rule, m in analysis.matches],
        }
        if args.fix:
            from adopter.synth import fix_text

            try:
                fixed = fix_text(text, path, rules, package_of(path))
                record["fix"] = {"error": fixed.error, "text": fixed.text if fixed.text != text else None,
                                 "applied": [plain(a) for a in fixed.applied]}
            except Exception as exc:  # noqa: BLE001  (recorded: an internal error is an output too)
                record["fix"] = {"internal": f"{type(exc).__name__}: {exc}"}
        result[key] = record
    args.out.write_text(json.dumps(result, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    findings = sum(len(r.get("findings", ())) for r in result.values())
    print(f"{len(paths)} files, {findings} findings -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
