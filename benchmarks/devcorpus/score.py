#!/usr/bin/env python
"""Score Adopter location by location on the labelled development corpus (``labels.tsv``).

Run from the repository root::

    .venv/bin/python benchmarks/devcorpus/score.py [--cache DIR] [--fix] [--json-out FILE]

The corpus is code Adopter was not developed against: pinned wheels (and one sdist) from PyPI,
read where ``pip download --no-deps`` puts them (``--cache``, default
``~/.cache/adopter-devcorpus``, outside the repository; nothing is vendored or installed), plus
our own research-style files in ``fixtures/``. ``GUIDE.md`` says what each rule's true location
is, where its anchor line lies, and how a finding is matched to a label:

* a finding of rule R matches a label of rule R in the same file when the label's anchor line
  lies inside the finding's ``[line, end_line]``; each label and each finding is matched once
  (a ``yes`` label before a ``skip`` before a ``no``, then the anchor nearest the finding);
* matched ``yes``: true positive; unmatched ``yes``: false negative; matched ``no``: false
  positive; a finding that matches no label: false positive (every labelled file is fully
  labelled for every scored rule), unless another finding of its rule on the same line took a
  label (the score is by location, and one line holds one label per rule); ``skip`` labels
  count nowhere.

It runs ``adopter check --select ALL --output-format json --no-config`` once over every labelled
file, prints precision and recall per rule and per source, and lists every disagreement with
its file:line. ``--fix`` also runs the fixer in process (``fix_text``, nothing is written) on each
labelled file and reports, per rule, how many findings were fixable, how many fixes were
applied, and whether every fixed file still compiles.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCORED_RULES = tuple(f"ADP0{i:02d}" for i in range(5, 16))
LABELS = ("yes", "no", "skip")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "adopter-devcorpus"


# ----------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Label:
    source: str  # "package==version" or "fixture"
    path: str  # inside the wheel / sdist top folder, or relative to this folder for fixtures
    line: int  # the anchor line
    rule: str
    label: str  # yes | no | skip
    why: str


def read_labels(tsv: Path) -> list[Label]:
    """The rows of ``labels.tsv``; a malformed row is an error with its line number."""
    labels = []
    with open(tsv, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        expected = ["source", "path", "line", "rule", "label", "why"]
        if reader.fieldnames != expected:
            raise SystemExit(f"{tsv}: header must be {' '.join(expected)}, got {reader.fieldnames}")
        for number, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise SystemExit(f"{tsv}:{number}: expected 6 tab-separated columns")
            if row["label"] not in LABELS or row["rule"] not in SCORED_RULES or not row["line"].isdigit():
                raise SystemExit(f"{tsv}:{number}: bad row {row}")
            labels.append(Label(row["source"], row["path"], int(row["line"]), row["rule"], row["label"], row["why"]))
    keys = [(lab.source, lab.path, lab.line, lab.rule) for lab in labels]
    if len(set(keys)) != len(keys):
        raise SystemExit(f"{tsv}: a (source, path, line, rule) appears twice")
    return labels


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    end_line: int
    fixable: bool = False


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: "Counts") -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4)}


@dataclass
class FileMatch:
    """The outcome for one file: which labels and findings were paired, and what is left over."""
    matched: list[tuple[Label, Finding]] = field(default_factory=list)
    missed: list[Label] = field(default_factory=list)  # yes labels without a finding
    unlabelled: list[Finding] = field(default_factory=list)  # findings that match no label
    # findings of a location another finding of the rule already took (two sites on one line,
    # each its own rewrite: ``bn(conv(x)) if a else act(bn(conv(x)))``): the score is by location
    same_location: list[Finding] = field(default_factory=list)

    def counts(self, rule: str) -> Counts:
        c = Counts()
        c.tp = sum(1 for lab, _ in self.matched if lab.rule == rule and lab.label == "yes")
        c.fp = sum(1 for lab, _ in self.matched if lab.rule == rule and lab.label == "no")
        c.fp += sum(1 for f in self.unlabelled if f.rule == rule)
        c.fn = sum(1 for lab in self.missed if lab.rule == rule)
        return c


_PREFERENCE = {"yes": 0, "skip": 1, "no": 2}


def match_file(labels: list[Label], findings: list[Finding]) -> FileMatch:
    """Pair the findings of one file with its labels (GUIDE.md, "Scoring").

    Findings are taken in order of their start line; each takes the best unmatched label of its
    rule whose anchor lies in its span: a ``yes`` before a ``skip`` before a ``no``, then the
    anchor nearest to the finding's start. Findings of unscored rules are ignored.
    """
    result = FileMatch()
    free = list(labels)
    for finding in sorted(findings, key=lambda f: (f.line, f.end_line, f.rule)):
        if finding.rule not in SCORED_RULES:
            continue
        candidates = [lab for lab in free
                      if lab.rule == finding.rule and finding.line <= lab.line <= max(finding.line, finding.end_line)]
        if not candidates:
            if any(f.rule == finding.rule and f.line == finding.line for _, f in result.matched):
                result.same_location.append(finding)
            else:
                result.unlabelled.append(finding)
            continue
        best = min(candidates, key=lambda lab: (_PREFERENCE[lab.label], abs(lab.line - finding.line), lab.line))
        free.remove(best)
        result.matched.append((best, finding))
    _repair(result, free)
    result.missed = [lab for lab in free if lab.label == "yes"]
    return result


def _spans(finding: Finding, lab: Label) -> bool:
    return lab.rule == finding.rule and finding.line <= lab.line <= max(finding.line, finding.end_line)


def _repair(result: FileMatch, free: list[Label]) -> None:
    """A finding left unpaired because an earlier, wider finding took the one label in its span
    (Nystromformer: the kernel_1 finding spans its own ``skip`` anchor and kernel_3's ``yes``)
    takes that label when the wider finding can take another free ``yes`` or ``skip`` label of
    its own span instead: no ``yes`` is lost, and no ``no`` is charged that the order of the
    findings alone put on the file."""
    for finding in list(result.unlabelled):
        for index, (held, other) in enumerate(result.matched):
            if held.label == "no" or not _spans(finding, held):
                continue
            spare = [lab for lab in free if lab.label != "no" and _spans(other, lab)]
            if not spare:
                continue
            alt = min(spare, key=lambda lab: (_PREFERENCE[lab.label], abs(lab.line - other.line), lab.line))
            free.remove(alt)
            result.matched[index] = (alt, other)
            result.matched.append((held, finding))
            result.unlabelled.remove(finding)
            break


# ----------------------------------------------------------------------------- corpus


def _dist_name(spec: str) -> tuple[str, str]:
    name, version = spec.split("==")
    return name, version


def _archives(folder: Path, spec: str) -> list[Path]:
    # archive names compare as PEP 503 normalised names: coca-pytorch ships CoCa_pytorch-0.1.0-*.whl
    name, version = _dist_name(spec)
    wanted = re.sub(r"[-_.]+", "-", name).lower()
    found = []
    for path in folder.iterdir():
        if path.name.endswith(".whl"):
            dist, _, rest = path.name.partition("-")
            ok = rest.startswith(f"{version}-")
        elif path.name.endswith(".tar.gz"):
            dist, _, rest = path.name[: -len(".tar.gz")].rpartition("-")
            ok = rest == version
        else:
            continue
        if ok and re.sub(r"[-_.]+", "-", dist).lower() == wanted:
            found.append(path)
    return sorted(found)


def ensure_archive(cache: Path, spec: str, quiet: bool = False) -> Path:
    """The wheel (or, when the project ships none, the sdist) of ``spec``, downloaded once."""
    folder = cache / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    found = _archives(folder, spec)
    if found:
        return found[0]
    # the sdist is asked for by the project's name only: --no-binary=:all: would also force its
    # build requirements (setuptools, ...) from source, which fails for some (matcha-tts 0.0.7.2)
    sdist = f"--no-binary={spec.split('==')[0]}"
    for kind in ("--only-binary=:all:", sdist):
        # --ignore-requires-python: the files are read, never installed or run here, so a pinned
        # release that asks for a newer interpreter than this environment's is still readable
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind, "--disable-pip-version-check",
               "--ignore-requires-python", "-q", spec, "-d", str(folder)]
        if not quiet:
            print(f"downloading: pip download --no-deps {kind} {spec}", file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 and "ResolutionImpossible" in proc.stdout + proc.stderr:
            # a machine-wide constraints file may cap the version; one file, never installed
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
        if proc.returncode != 0 and kind == sdist:
            # an sdist whose setup.py imports torch (basicsr) cannot prepare its metadata in an
            # isolated build environment that must download torch; this environment has it
            proc = subprocess.run([*cmd, "--no-build-isolation"], capture_output=True, text=True)
        found = _archives(folder, spec)
        if found:
            return found[0]
    raise SystemExit(f"pip download {spec} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")


def extract(archive: Path, dest: Path) -> Path:
    """Every ``.py`` file of the archive under ``dest`` (an sdist loses its top folder); once."""
    done = dest / ".extracted"
    if done.is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(".py") and ".." not in name.split("/"):
                    target = dest / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(name))
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                parts = member.name.split("/")[1:]
                if member.isfile() and member.name.endswith(".py") and parts and ".." not in parts:
                    target = dest.joinpath(*parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tf.extractfile(member).read())
    done.write_text(archive.name)
    return dest


def resolve_files(labels: list[Label], cache: Path, quiet: bool = False) -> dict[tuple[str, str], Path]:
    """(source, path) -> the file on disk, fetching and extracting each pinned source once."""
    roots: dict[str, Path] = {}
    files = {}
    for lab in labels:
        key = (lab.source, lab.path)
        if key in files:
            continue
        if lab.source == "fixture":
            files[key] = HERE / lab.path
        else:
            if lab.source not in roots:
                archive = ensure_archive(cache, lab.source, quiet)
                roots[lab.source] = extract(archive, cache / "src" / lab.source.replace("==", "-"))
            files[key] = roots[lab.source] / lab.path
        if not files[key].is_file():
            raise SystemExit(f"{lab.source}: {lab.path} is not in the archive")
    return files


# ----------------------------------------------------------------------------- running adopter


def run_check(paths: list[Path]) -> tuple[dict[str, list[Finding]], list[str]]:
    """``adopter check --select ALL --output-format json`` over ``paths``: findings per file."""
    cmd = [sys.executable, "-c", "import sys; from adopter.cli import main; sys.exit(main())", "check",
           "--select", "ALL", "--output-format", "json", "--no-config", *map(str, paths)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode not in (0, 1, 2) or not proc.stdout.strip().startswith("["):
        raise SystemExit(f"adopter check failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    found: dict[str, list[Finding]] = defaultdict(list)
    for item in json.loads(proc.stdout):
        path = os.path.realpath(item["path"] if os.path.isabs(item["path"]) else REPO / item["path"])
        found[path].append(Finding(item["rule"], int(item["line"]), int(item.get("end_line") or item["line"]),
                                   bool(item.get("fixable"))))
    errors = [line for line in proc.stderr.splitlines() if ": error:" in line]
    return found, errors


def run_fix(paths: list[Path]) -> dict[str, dict]:
    """``fix_text`` with every rule on each file (nothing written): applied rules, compile check."""
    sys.path.insert(0, str(REPO))
    from adopter.ruleset import load_rules
    from adopter.source import read_source
    from adopter.structure.names import package_of
    from adopter.synth import fix_text

    rules = load_rules()
    out = {}
    for path in paths:
        source = read_source(str(path))
        try:
            result = fix_text(source.text, str(path), rules, package_of(str(path)))
        except Exception as exc:  # an internal error is a result to report, not a crash
            out[os.path.realpath(path)] = {"error": f"internal error: {type(exc).__name__}: {exc}", "applied": []}
            continue
        record = {"error": result.error, "applied": [f.rule for f in result.applied], "compiles": True}
        if result.error is None and result.text != source.text:
            try:
                compile(result.text, str(path), "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as exc:
                record["compiles"] = False
                record["error"] = f"fixed file does not compile: {exc}"
        out[os.path.realpath(path)] = record
    return out


# ----------------------------------------------------------------------------- report


def score(labels: list[Label], files: dict[tuple[str, str], Path], found: dict[str, list[Finding]]):
    per_rule = {r: Counts() for r in SCORED_RULES}
    per_source: dict[str, Counts] = defaultdict(Counts)
    per_file: dict[tuple[str, str], FileMatch] = {}
    by_file: dict[tuple[str, str], list[Label]] = defaultdict(list)
    for lab in labels:
        by_file[(lab.source, lab.path)].append(lab)
    for key, labs in sorted(by_file.items()):
        fm = match_file(labs, found.get(os.path.realpath(files[key]), []))
        per_file[key] = fm
        for rule in SCORED_RULES:
            c = fm.counts(rule)
            per_rule[rule].add(c)
            per_source[key[0].split("==")[0]].add(c)
    return per_rule, dict(per_source), per_file


def table(headers: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    fmt = lambda row: "| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows)])


def _row(name: str, c: Counts) -> list:
    return [name, c.tp, c.fp, c.fn, f"{c.precision:.2f}", f"{c.recall:.2f}"]


def report(labels, per_rule, per_source, per_file, errors, fixes=None) -> str:
    total = Counts()
    for c in per_rule.values():
        total.add(c)
    n_files = len({(lab.source, lab.path) for lab in labels})
    kinds = defaultdict(int)
    for lab in labels:
        kinds[lab.label] += 1
    out = [f"corpus: {n_files} files, {len(labels)} labels ({kinds['yes']} yes, {kinds['no']} no, "
           f"{kinds['skip']} skip)", "", "per rule:",
           table(["rule", "TP", "FP", "FN", "precision", "recall"],
                 [_row(r, c) for r, c in per_rule.items()] + [_row("all", total)]),
           "", "per source:",
           table(["source", "TP", "FP", "FN", "precision", "recall"],
                 [_row(s, c) for s, c in sorted(per_source.items())])]
    out += ["", "disagreements (file:line rule: what):"]
    for (source, path), fm in sorted(per_file.items()):
        where = path if source == "fixture" else f"{source}:{path}"
        for lab in sorted(fm.missed, key=lambda x: (x.line, x.rule)):
            out.append(f"  MISS {where}:{lab.line} {lab.rule}: {lab.why}")
        for lab, f in sorted(fm.matched, key=lambda m: (m[0].line, m[0].rule)):
            if lab.label == "no":
                out.append(f"  FP   {where}:{lab.line} {lab.rule} (finding {f.line}-{f.end_line}): "
                           f"labelled no: {lab.why}")
        for f in sorted(fm.unlabelled, key=lambda x: (x.line, x.rule)):
            out.append(f"  FP   {where}:{f.line}-{f.end_line} {f.rule}: no label in this span")
    if errors:
        out += ["", "files adopter could not analyse:", *("  " + e for e in errors)]
    if fixes is not None:
        out += ["", fix_report(per_file, fixes)]
    return "\n".join(out)


def fix_report(per_file, fixes) -> str:
    """Per rule: true positives found, of them fixable, fixes applied, files that do not compile."""
    tp = defaultdict(int)
    fixable = defaultdict(int)
    for fm in per_file.values():
        for lab, f in fm.matched:
            if lab.label == "yes":
                tp[lab.rule] += 1
                fixable[lab.rule] += f.fixable
    applied = defaultdict(int)
    broken, failed = [], []
    for path, rec in sorted(fixes.items()):
        for rule in rec["applied"]:
            applied[rule] += 1
        if rec.get("compiles") is False:
            broken.append(path)
        elif rec.get("error"):
            failed.append(f"{path}: {rec['error']}")
    rows = [[r, tp[r], fixable[r], applied[r]] for r in SCORED_RULES]
    lines = ["fixes (fix_text with every rule, nothing written):",
             table(["rule", "TP found", "TP fixable", "fixes applied"], rows),
             f"fixed files that do not compile: {len(broken)}"]
    lines += [f"  {p}" for p in broken]
    lines += [f"fixer errors: {len(failed)}"] + [f"  {e}" for e in failed]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, default=HERE / "labels.tsv")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"where the pinned archives are downloaded and extracted (default {DEFAULT_CACHE})")
    parser.add_argument("--fix", action="store_true", help="also run the fixer on every labelled file")
    parser.add_argument("--json-out", type=Path, help="also write every figure as JSON")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    labels = read_labels(args.labels)
    files = resolve_files(labels, args.cache.expanduser(), args.quiet)
    paths = sorted(set(files.values()))
    found, errors = run_check(paths)
    per_rule, per_source, per_file = score(labels, files, found)
    fixes = run_fix(paths) if args.fix else None
    print(report(labels, per_rule, per_source, per_file, errors, fixes))
    if args.json_out:
        data = {"per_rule": {r: c.as_dict() for r, c in per_rule.items()},
                "per_source": {s: c.as_dict() for s, c in per_source.items()},
                "misses": [{"source": lab.source, "path": lab.path, "line": lab.line, "rule": lab.rule,
                            "why": lab.why} for fm in per_file.values() for lab in fm.missed],
                "errors": errors, "fixes": fixes}
        args.json_out.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
