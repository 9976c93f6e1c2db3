"""Fix rate per rule (issue 12: "a finding is not yet a speed-up"): over labelled files of the
development corpus, how many of the sites labelled "yes" are found, patched (``fix_text`` applies a
patch of that rule whose span holds the labelled line) or declined (with the fixer's reason), per
rule ADP005-ADP015.  Files: those of the rows whose ``why`` mentions one of ``--batch`` (default:
session 33's blind batches), plus every ``--every``-th other file holding a "yes" row (sorted by
source and path).  The file is fixed as ``adopter fix`` over its package fixes it (callers in other
files of the package may decline what a function hands back), as research_attention.py does.

    PYTHONPATH=. .venv/bin/python benchmarks/fix_rate.py [--batch NAME ...] [--every 5] [--list]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "devcorpus"))
sys.path.insert(0, str(HERE))

import score
from research_attention import _covers, _package_root, final_line

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure.names import package_of
from adopter.synth import fix_text
from adopter.synth.run import Run

BATCHES = ("cnn44", "cnn45", "cnn46", "hf37", "research55")
SCORED = tuple(f"ADP{n:03d}" for n in range(5, 16))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", action="append", default=[], metavar="NAME")
    parser.add_argument("--every", type=int, default=5, help="every N-th other file with a yes row (0: none)")
    parser.add_argument("--list", action="store_true", help="print every yes site's status")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="of those, only the files whose 'source:path' contains TEXT (repeatable; any matches)")
    args = parser.parse_args(argv)
    batches = tuple(args.batch) or BATCHES
    labels = [lab for lab in score.read_labels(HERE / "devcorpus" / "labels.tsv") if lab.rule in SCORED]
    by_file = defaultdict(list)
    for lab in labels:
        by_file[(lab.source, lab.path)].append(lab)
    chosen = {key for key, labs in by_file.items() if any(b in lab.why for lab in labs for b in batches)}
    others = sorted(k for k, labs in by_file.items() if k not in chosen and any(lab.label == "yes" for lab in labs))
    if args.every:
        chosen |= set(others[::args.every])
    if args.only:
        chosen = {k for k in chosen if any(t in f"{k[0]}:{k[1]}" for t in args.only)}
    files = score.resolve_files([lab for k in chosen for lab in by_file[k]], score.DEFAULT_CACHE, quiet=True)
    rules = [r for r in load_rules() if r.id in SCORED]
    tally: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[str, Counter] = defaultdict(Counter)
    for key in sorted(chosen):
        path = files[key]
        text = path.read_text(encoding="utf-8")
        package = package_of(str(path))
        found = analyze(text, str(path), rules, package).findings
        root = _package_root(path)
        run = Run.of_paths(sorted(str(p) for p in root.rglob("*.py")) if root is not None else [str(path)])
        result = fix_text(text, str(path), rules, package, run=run)
        for lab in by_file[key]:
            if lab.label != "yes":
                continue
            counts = tally[lab.rule]
            counts["yes"] += 1
            mine = [f for f in found if f.rule == lab.rule]
            if not _covers(mine, lab.line):
                status = "not found"
            elif _covers([f for f in result.applied if f.rule == lab.rule], lab.line):
                status = "patched"
            else:
                moved = final_line(text, result.text, lab.line)
                line = lab.line if moved is None else moved
                why = [w for f, w in result.skipped if f.rule == lab.rule and _covers([f], line)]
                status = "declined"
                other = {f.rule for f in result.applied if f.rule != lab.rule and _covers([f], lab.line)}
                # no reason of its own: another rule's patch rewrote the site (ADP013's SwiGLU
                # over the GELU gate ADP006 also finds), so the finding was gone next round
                reason = why[0] if why else (f"inside {'/'.join(sorted(other))}'s patch" if other
                                             else "no reason given")
                reasons[lab.rule][reason[:110]] += 1
                status += f" ({reason})"
            counts[status.split(" (")[0]] += 1
            if args.list:
                print(f"{lab.source}:{lab.path}:{lab.line}: {lab.rule} {status}")
    print(f"files {len(chosen)}")
    print(f"{'rule':8} {'yes':>5} {'found':>6} {'patched':>8} {'declined':>9}")
    total = Counter()
    for rule in SCORED:
        c = tally[rule]
        total.update(c)
        found = c["patched"] + c["declined"]
        print(f"{rule:8} {c['yes']:5} {found:6} {c['patched']:8} {c['declined']:9}")
    print(f"{'all':8} {total['yes']:5} {total['patched'] + total['declined']:6} {total['patched']:8} {total['declined']:9}")
    for rule in SCORED:
        for reason, n in reasons[rule].most_common():
            print(f"  {rule} declined {n}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
