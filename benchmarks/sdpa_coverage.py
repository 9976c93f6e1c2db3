#!/usr/bin/env python
"""How much of the paper's 199-model corpus ADP010 (sdpa) finds and fixes.

Run from the repository root::

    .venv/bin/python benchmarks/sdpa_coverage.py [--cache .bench] [--rules ADP010] [--json-out f.json]

The corpus is built exactly as ``benchmarks/paper.py`` builds it (same wheels, same files).
For every model file it counts the ADP010 findings of ``adopter check`` (in process), runs
``adopter fix`` on the text (in process, nothing is written), and counts a model as *fixed*
when at least one ADP010 patch was applied, the patched file compiles, and a second fix of
the patched text changes nothing.  ``--rules ADP001,...`` runs the fix with other rules
next to ADP010 (the default rule set: ``--rules default``) to see how they compose.
It prints the figures, then every model without a finding or without a fix, with the
reason the fixer gave (or the closest pattern it does not cover).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper import build_corpus  # noqa: E402  (the corpus code of the paper benchmark)

from adopter.engine import AnalysisError, analyze  # noqa: E402
from adopter.ruleset import load_rules, select_rules  # noqa: E402
from adopter.structure import package_of  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

RULE = "ADP010"


def _no_finding_reason(text: str) -> str:
    """A short guess at why nothing matched: which attention shape the file uses."""
    if "softmax" not in text:
        return "no softmax (no dot-product attention, or a kernel/other attention)"
    if "scaled_dot_product_attention" in text:
        return "already calls scaled_dot_product_attention"
    for word, reason in (
        ("nn.Softmax(", "softmax through an nn.Softmax layer"),
        ("dtype=torch.float32", "softmax in float32 with a cast back (not exactly equivalent in half precision)"),
        ("torch.where(causal_mask", "causal mask applied with torch.where"),
        ("masked_fill", "mask applied with masked_fill"),
    ):
        if word in text:
            return reason
    return "softmax, but no q @ k^T -> softmax -> @ v chain in one function"


def coverage(files, rules) -> dict:
    adp010 = [r for r in rules if r.id == RULE]
    rows = []
    for model in files:
        text = Path(model.path).read_text(encoding="utf-8")
        package = package_of(model.path)
        row = {"model": model.model, "findings": 0, "fixed": 0, "compiles": None, "idempotent": None, "reasons": []}
        try:
            row["findings"] = len([f for f in analyze(text, model.path, adp010, package).findings])
        except AnalysisError as exc:
            row["reasons"].append(f"analysis error: {exc}")
            rows.append(row)
            continue
        if row["findings"]:
            result = fix_text(text, model.path, rules, package)
            row["fixed"] = len([f for f in result.applied if f.rule == RULE])
            row["reasons"] = sorted({reason for f, reason in result.skipped if f.rule == RULE})
            if result.error:
                row["reasons"].append(f"fix error: {result.error}")
            if result.text != text:
                try:
                    compile(result.text, model.path, "exec")
                    row["compiles"] = True
                except SyntaxError as exc:
                    row["compiles"] = False
                    row["reasons"].append(f"patched file does not compile: {exc}")
                again = fix_text(result.text, model.path, rules, package)
                row["idempotent"] = again.text == result.text
        else:
            row["reasons"] = [_no_finding_reason(text)]
        rows.append(row)
    return {"rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=".bench", help="cache folder of paper.py (default .bench)")
    parser.add_argument("--rules", default=RULE, help="rules the fix runs with: ids, or 'default' (default ADP010)")
    parser.add_argument("--json-out", help="also write every row as JSON")
    args = parser.parse_args(argv)
    files = build_corpus(Path(args.cache), quiet=True)
    every = load_rules()
    rules = select_rules(every) if args.rules == "default" else select_rules(every, args.rules.split(","))
    if RULE not in {r.id for r in rules}:
        rules = [*rules, *[r for r in every if r.id == RULE]]
    start = time.perf_counter()
    rows = coverage(files, rules)["rows"]
    elapsed = time.perf_counter() - start

    found = [r for r in rows if r["findings"]]
    fixed = [r for r in rows if r["fixed"] and r["compiles"] and r["idempotent"]]
    print(f"ADP010 coverage on the paper corpus ({len(rows)} models; fix run with: "
          f"{', '.join(r.id for r in rules)}; {elapsed:.1f} s)")
    print(f"models with >=1 ADP010 finding:                       {len(found)}")
    print(f"models with >=1 applied fix (compiles, 2nd fix no-op): {len(fixed)}")
    print(f"findings: {sum(r['findings'] for r in rows)}, applied fixes: {sum(r['fixed'] for r in rows)}")
    broken = [r["model"] for r in rows if r["compiles"] is False or r["idempotent"] is False]
    print(f"patched files that do not compile or change on a second fix: {len(broken)} {' '.join(broken)}")
    print()
    print("Models found but not fixed (the fixer's reasons):")
    for row in rows:
        if row["findings"] and row not in fixed:
            why = "; ".join(row["reasons"]) or "declined in an earlier round, then another rule rewrote the softmax"
            print(f"  {row['model']}: {why}")
    print()
    print("Models without a finding, by the closest reason:")
    by_reason = Counter()
    names: dict[str, list[str]] = {}
    for row in rows:
        if not row["findings"]:
            reason = row["reasons"][0] if row["reasons"] else "?"
            by_reason[reason] += 1
            names.setdefault(reason, []).append(row["model"])
    for reason, count in by_reason.most_common():
        print(f"  {count:3d}  {reason}: {' '.join(names[reason])}")
    print()
    print("Reasons a found attention was left as it is (count of models):")
    skipped = Counter(reason for r in rows if r["findings"] for reason in set(r["reasons"]))
    for reason, count in skipped.most_common():
        print(f"  {count:3d}  {reason}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
