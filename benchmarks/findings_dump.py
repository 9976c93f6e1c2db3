#!/usr/bin/env python
"""A streaming output oracle for speed work: one JSON line per file with every finding of every
rule and, for the files of a fix list, what ``fix_text`` does (unified diff of the new text,
applied and skipped findings, requirements, error); then a per-file comparison of two dumps.

    # the files: one path a line (session 18: the paper corpus, then every dev-cache file that
    # mentions nn.Module and every labelled file: 8036); fix only on some (fix is LibCST: slow)
    PYTHONPATH=/path/to/main-checkout .venv/bin/python benchmarks/findings_dump.py dump base.jsonl files.txt fix.txt
    .venv/bin/python benchmarks/findings_dump.py dump branch.jsonl files.txt fix.txt
    .venv/bin/python benchmarks/findings_dump.py compare base.jsonl branch.jsonl [more branch parts ...]

Lines are written and flushed per file, so two dumps still running (or split over several
processes) can be compared on the files both have.  ``same_output.py`` is the whole-corpus
variant that also records every match's nodes and bindings.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path


def dump(out_path: str, files: str, fix_list: str | None) -> None:
    import adopter
    from adopter.engine import AnalysisError, analyze
    from adopter.ruleset import load_rules
    from adopter.structure import package_of
    from adopter.synth import fix_text

    # the rules beside the code imported (PYTHONPATH may name another checkout)
    rules = load_rules([Path(adopter.__file__).resolve().parents[1] / "rules"], bundled=False)
    fix_only = set(Path(fix_list).read_text().split("\n")) if fix_list else None
    print("adopter from", adopter.__file__, file=sys.stderr)
    with open(out_path, "w") as out:
        for path in Path(files).read_text().split("\n"):
            if not path:
                continue
            text = Path(path).read_text(encoding="utf-8", errors="replace")
            rec: dict = {"path": path}
            try:
                rec["findings"] = [f.as_dict() for f in analyze(text, path, rules, package_of(path)).findings]
            except AnalysisError as exc:
                rec["error"] = str(exc)
            if rec.get("findings") and (fix_only is None or path in fix_only):
                try:
                    fixed = fix_text(text, path, rules, package_of(path))
                    rec["fix_error"] = fixed.error
                    rec["diff"] = "".join(difflib.unified_diff(text.splitlines(True), fixed.text.splitlines(True))) \
                        if fixed.text != text else None
                    rec["applied"] = [f.as_dict() for f in fixed.applied]
                    rec["skipped"] = [repr(s) for s in fixed.skipped]
                    rec["requirements"] = sorted(fixed.requirements)
                except Exception as exc:  # noqa: BLE001  (an internal error is an output too)
                    rec["fix_internal"] = f"{type(exc).__name__}: {exc}"
            out.write(json.dumps(rec, sort_keys=True) + "\n")
            out.flush()


def _load(*paths: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    found[json.loads(line)["path"]] = line
                except (ValueError, KeyError):
                    continue  # a line being written
    return found


def compare(base: str, *branch: str) -> int:
    a, b = _load(base), _load(*branch)
    common = sorted(set(a) & set(b))
    differing = [p for p in common if a[p] != b[p]]
    records = [json.loads(a[p]) for p in common]
    print(f"files compared {len(common)}, findings {sum(len(r.get('findings', ())) for r in records)}, "
          f"files fixed {sum('diff' in r or 'fix_internal' in r for r in records)} "
          f"(text changed {sum(bool(r.get('diff')) for r in records)}), differing {len(differing)}")
    for path in differing[:20]:
        print("DIFFERS", path)
    return 1 if differing else 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "dump":
        dump(argv[1], argv[2], argv[3] if len(argv) > 3 else None)
        return 0
    if len(argv) >= 3 and argv[0] == "compare":
        return compare(argv[1], *argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
