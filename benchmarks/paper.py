#!/usr/bin/env python
"""Score Adopter on the paper's benchmark (SPEC section 6) and time it.

Run from the repository root::

    .venv/bin/python benchmarks/paper.py [--cache .bench] [--json-out results.json]

What it does, in one run (see benchmarks/README.md for the details):

1. downloads the pinned ``transformers`` wheels with ``pip download --no-deps`` into the cache
   folder (4.34.0 for 198 models, 4.35.0 for owlv2) and extracts the 199 PyTorch modeling
   files plus the ``__init__.py`` files of their package folders;
2. runs ``adopter check --output-format json --no-bundled-rules --rules-dir benchmarks/paper_rules
   --select ADP001,...,ADP009 --no-config`` once over all 199 files (the benchmark's own copies of
   the nine paper rules, which keep the paper's labelling conventions, see
   ``benchmarks/paper_rules/README.md``), maps the findings to models and scores them against the development split
   (``paper-dev.tsv``) with the paper's method, next to the paper tool's published result;
3. lists every disagreement with the file:line of each of our findings for that model and rule;
4. prints our per-rule counts on the held-out models (no ground truth here);
5. times ``ast.parse`` against the in-process analysis of the same files, the CLI over the
   corpus, and ``adopter check modeling_bert.py`` with interpreter start.

The output is plain text (it is meant to be piped into a file or pasted into RESULTS.md).
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime as _dt
import gc
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RULES = tuple(f"ADP00{i}" for i in range(1, 10))
MAIN_WHEEL = "4.34.0"
OWLV2_WHEEL = "4.35.0"
# SPEC section 6: ground-truth locations per rule over all 199 models.
SPEC_TOTALS = dict(zip(RULES, (1, 2, 2, 208, 80, 142, 35, 2, 2)))
TARGET_RATIO = 3.0
TARGET_BERT_S = 0.5
PAPER_RULES = Path(__file__).resolve().parent / "paper_rules"
MODEL_FILE = re.compile(r"^transformers/models/(?P<model>[^/]+)/modeling_(?P=model)\.py$")


# ----------------------------------------------------------------------------- scoring


@dataclass
class Counts:
    tp: int = 0
    fn: int = 0
    fp: int = 0

    def add(self, other: "Counts") -> None:
        self.tp += other.tp
        self.fn += other.fn
        self.fp += other.fp

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fn": self.fn, "fp": self.fp,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4)}


def score_one(found: int, truth: int) -> Counts:
    """The paper's scoring of one (model, rule) cell."""
    return Counts(tp=min(found, truth), fn=max(truth - found, 0), fp=max(found - truth, 0))


@dataclass
class Score:
    per_rule: dict[str, Counts] = field(default_factory=dict)
    total: Counts = field(default_factory=Counts)
    # (model, rule, found, truth) for every cell where found != truth
    disagreements: list[tuple[str, str, int, int]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"per_rule": {r: c.as_dict() for r, c in self.per_rule.items()}, "total": self.total.as_dict()}


def score(found: dict[str, dict[str, int]], truth: dict[str, dict[str, int]],
          rules: tuple[str, ...] = RULES) -> Score:
    """Score per-model, per-rule counts against the ground truth, as the paper does.

    Only the models in ``truth`` are scored; a model missing from ``found`` counts as
    zero findings; models in ``found`` but not in ``truth`` (held out) are ignored.
    """
    result = Score(per_rule={r: Counts() for r in rules})
    for model in sorted(truth):
        for rule in rules:
            f = found.get(model, {}).get(rule, 0)
            t = truth[model].get(rule, 0)
            cell = score_one(f, t)
            result.per_rule[rule].add(cell)
            result.total.add(cell)
            if f != t:
                result.disagreements.append((model, rule, f, t))
    return result


def published_score(published: dict[str, dict[str, Counts]], rules: tuple[str, ...] = RULES) -> Score:
    """Sum the paper tool's published per-model TP/FN/FP cells."""
    result = Score(per_rule={r: Counts() for r in rules})
    for model in sorted(published):
        for rule in rules:
            cell = published[model].get(rule, Counts())
            result.per_rule[rule].add(cell)
            result.total.add(cell)
    return result


def parse_cell(text: str) -> Counts:
    tp, fn, fp = (int(x) for x in text.strip().split("/"))
    return Counts(tp, fn, fp)


@dataclass
class DevRow:
    model: str
    wheel: str
    path: str
    truth: dict[str, int]
    published: dict[str, Counts]


def read_dev(tsv: Path) -> dict[str, DevRow]:
    rows: dict[str, DevRow] = {}
    with open(tsv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            rows[row["model"]] = DevRow(
                model=row["model"], wheel=row["wheel"], path=row["path"],
                truth={r: int(row[f"gt_r{i}"]) for i, r in enumerate(RULES, 1)},
                published={r: parse_cell(row[f"adopter_r{i}"]) for i, r in enumerate(RULES, 1)},
            )
    return rows


def counts_by_model(findings: list[dict], model_of: dict[str, str]) -> tuple[dict, dict]:
    """Findings (adopter's JSON objects) -> {model: {rule: n}} and {(model, rule): [lines]}."""
    counts: dict[str, dict[str, int]] = {}
    lines: dict[tuple[str, str], list[int]] = {}
    for f in findings:
        model = model_of.get(os.path.normpath(f["path"]))
        if model is None:
            continue
        counts.setdefault(model, {}).setdefault(f["rule"], 0)
        counts[model][f["rule"]] += 1
        lines.setdefault((model, f["rule"]), []).append(int(f["line"]))
    for value in lines.values():
        value.sort()
    return counts, lines


# ----------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class ModelFile:
    model: str
    wheel: str  # version
    member: str  # path inside the wheel
    path: str  # extracted file, as given to adopter


def ensure_wheel(cache: Path, version: str, quiet: bool = False) -> Path:
    wheels = cache / "wheels"
    wheel = wheels / f"transformers-{version}-py3-none-any.whl"
    if wheel.is_file():
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--quiet", f"transformers=={version}", "-d", str(wheels)]
    if not quiet:
        print(f"downloading: {' '.join(cmd[2:])}", file=sys.stderr)
    subprocess.run(cmd, check=True)
    if not wheel.is_file():
        raise SystemExit(f"pip download did not produce {wheel}")
    return wheel


def corpus_members(names: list[str]) -> list[tuple[str, str]]:
    """The corpus rule: every ``transformers/models/<m>/modeling_<m>.py`` of the wheel.

    That is, a model folder directly under ``transformers/models`` whose PyTorch modeling file
    is named after the folder.  TF (``modeling_tf_``) and Flax (``modeling_flax_``) files never
    match; folders whose modeling files carry another name (data2vec's _audio/_text/_vision,
    donut's donut_swin) are not models of the paper, nor are secondary files (blip_text,
    esmfold, maskformer_swin, transfo_xl_utilities) or folders without a modeling file
    (tokenizer-only models, ``deprecated/``).
    """
    found = []
    for name in names:
        match = MODEL_FILE.match(name)
        if match:
            found.append((match.group("model"), name))
    return sorted(found)


def package_inits(member: str, names: set[str]) -> list[str]:
    """The ``__init__.py`` of every package folder above a member, up to ``transformers/``."""
    parts = member.split("/")[:-1]
    inits = []
    for i in range(1, len(parts) + 1):
        init = "/".join(parts[:i]) + "/__init__.py"
        if init in names:
            inits.append(init)
    return inits


def extract(wheel: Path, dest: Path, members: list[str]) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        wanted = set(members)
        for member in members:
            wanted.update(package_inits(member, names))
        for member in sorted(wanted):
            target = dest / member
            if target.is_file() and target.stat().st_size == zf.getinfo(member).file_size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(member))


def build_corpus(cache: Path, quiet: bool = False) -> list[ModelFile]:
    main = ensure_wheel(cache, MAIN_WHEEL, quiet)
    extra = ensure_wheel(cache, OWLV2_WHEEL, quiet)
    files: list[ModelFile] = []
    with zipfile.ZipFile(main) as zf:
        chosen = corpus_members(zf.namelist())
    with zipfile.ZipFile(extra) as zf:
        owl = [(m, n) for m, n in corpus_members(zf.namelist()) if m == "owlv2"]
    if not owl:
        raise SystemExit(f"owlv2 not found in transformers=={OWLV2_WHEEL}")
    if "owlv2" in {m for m, _ in chosen}:
        raise SystemExit(f"owlv2 unexpectedly in transformers=={MAIN_WHEEL}")
    for version, wheel, pairs in ((MAIN_WHEEL, main, chosen), (OWLV2_WHEEL, extra, owl)):
        root = cache / "src" / f"transformers-{version}"
        extract(wheel, root, [n for _, n in pairs])
        for model, name in pairs:
            files.append(ModelFile(model, version, name, _display(root / name)))
    files.sort(key=lambda f: f.model)
    return files


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


# ----------------------------------------------------------------------------- running adopter


def adopter_command() -> list[str]:
    script = Path(sys.executable).parent / ("adopter.exe" if os.name == "nt" else "adopter")
    if script.is_file():
        return [str(script)]
    found = shutil.which("adopter")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from adopter.cli import main; sys.exit(main())"]


def _children_cpu() -> float:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rules_options(rules_dir: Path | None) -> list[str]:
    """The ``adopter check`` options that load the benchmark's rules: only ``rules_dir``'s files
    (None: the bundled rules, as a user gets them)."""
    return [] if rules_dir is None else ["--no-bundled-rules", "--rules-dir", str(rules_dir)]


def run_cli(files: list[str], rules_dir: Path | None = PAPER_RULES) -> tuple[list[dict], float, float, str]:
    """One ``adopter check`` over the files: findings, wall time, CPU time of it and its workers."""
    cmd = [*adopter_command(), "check", "--output-format", "json", *rules_options(rules_dir),
           "--select", ",".join(RULES), "--no-config", *files]
    cpu0, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"adopter check exited with {proc.returncode}")
    findings = json.loads(proc.stdout) if proc.stdout.strip() else []
    return findings, wall, cpu, proc.stderr


def time_single(path: str, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU times of ``adopter check PATH`` (default options), interpreter start included."""
    cmd = [*adopter_command(), "check", path]
    walls, cpus = [], []
    for _ in range(runs):
        cpu0, start = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu0)
        if proc.returncode not in (0, 1):
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"adopter check {path} exited with {proc.returncode}")
    return walls, cpus


def time_in_process(files: list[str], runs: int, rules_dir: Path | None = PAPER_RULES) -> dict:
    """(a) ast.parse of every file and (b) the analysis of every file, in this process.

    The texts are read once beforehand, so neither figure includes disk reads; the runs are
    interleaved (a, b, a, b, ...) so that drift in the machine's speed hits both alike; each
    tree is dropped before the next file is parsed (streamed, as the engine does). Both wall
    time and this process's CPU time are taken: on a busy machine the CPU time is the steadier.
    """
    from adopter.engine import AnalysisError, analyze
    from adopter.ruleset import load_rules, select_rules
    from adopter.structure import package_of

    rules = select_rules(load_rules([rules_dir], bundled=False) if rules_dir else load_rules(), list(RULES))
    every = select_rules(load_rules())  # every rule on by default, as `adopter check` runs
    texts = [(p, Path(p).read_text(encoding="utf-8")) for p in files]
    packages = {path: package_of(path) for path, _ in texts}  # file-system lookups, not analysis
    errors: list[str] = []

    def parse_all() -> None:
        for path, text in texts:
            ast.parse(text, filename=path)

    def analyse_all(chosen, report: bool) -> None:
        for path, text in texts:
            try:
                analyze(text, path, chosen, packages[path])
            except AnalysisError as exc:
                if report:
                    errors.append(f"{path}: {exc}")

    def timed(work, walls: list[float], cpus: list[float]) -> None:
        cpu0, start = time.process_time(), time.perf_counter()
        work()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu0)
        gc.collect()

    parse_wall: list[float] = []
    parse_cpu: list[float] = []
    analyse_wall: list[float] = []
    analyse_cpu: list[float] = []
    every_wall: list[float] = []
    every_cpu: list[float] = []
    for run in range(runs):
        timed(parse_all, parse_wall, parse_cpu)
        timed(lambda: analyse_all(rules, run == 0), analyse_wall, analyse_cpu)
        timed(lambda: analyse_all(every, False), every_wall, every_cpu)
    med = statistics.median
    return {
        "files": len(texts), "errors": errors,
        "ast_parse_s": parse_wall, "analyze_s": analyse_wall,
        "ast_parse_cpu_s": parse_cpu, "analyze_cpu_s": analyse_cpu,
        "ast_parse_median_s": med(parse_wall), "analyze_median_s": med(analyse_wall),
        "ast_parse_cpu_median_s": med(parse_cpu), "analyze_cpu_median_s": med(analyse_cpu),
        "ratio": med(analyse_wall) / med(parse_wall),
        "ratio_cpu": med(analyse_cpu) / med(parse_cpu),
        # the ratio within each interleaved pair, then the median: drift between pairs cancels
        "ratio_paired": med(b / a for a, b in zip(parse_wall, analyse_wall)),
        "every_rule_ids": [r.id for r in every], "every_s": every_wall, "every_cpu_s": every_cpu,
        "every_median_s": med(every_wall), "every_cpu_median_s": med(every_cpu),
        "every_ratio": med(every_wall) / med(parse_wall), "every_ratio_cpu": med(every_cpu) / med(parse_cpu),
    }


# ----------------------------------------------------------------------------- printing


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A plain-text table; ``align`` has one 'l' or 'r' per column (default: first left)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)).rstrip()

    out = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    out += [fmt(r) for r in cells[1:]]
    return "\n".join(out)


def _pr(c: Counts) -> tuple[str, str]:
    return f"{c.precision:.3f}", f"{c.recall:.3f}"


def score_table(ours: Score, paper: Score, truth_totals: dict[str, int]) -> str:
    rows = []
    for rule in RULES:
        o, p = ours.per_rule[rule], paper.per_rule[rule]
        rows.append([rule, truth_totals[rule], o.tp, o.fn, o.fp, *_pr(o), "|", p.tp, p.fn, p.fp, *_pr(p)])
    o, p = ours.total, paper.total
    rows.append(["total", sum(truth_totals.values()), o.tp, o.fn, o.fp, *_pr(o), "|", p.tp, p.fn, p.fp, *_pr(p)])
    return table(["rule", "truth", "TP", "FN", "FP", "P", "R", "|", "paper TP", "FN", "FP", "P", "R"], rows)


def fmt_s(x: float) -> str:
    return f"{x:.3f} s"


# ----------------------------------------------------------------------------- main


def _default_dev() -> Path:
    """``../shared/benchmark/paper-dev.tsv`` beside the checkout, or beside the main checkout
    of a git worktree (whose own parent folder holds only worktrees)."""
    near = REPO.parent / "shared" / "benchmark" / "paper-dev.tsv"
    if near.is_file():
        return near
    try:
        common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=REPO,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return near
    main = Path(common).parent.parent / "shared" / "benchmark" / "paper-dev.tsv" if common else near
    return main if main.is_file() else near


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/paper.py",
        description="Score and time Adopter on the paper's 199-model benchmark (SPEC section 6).")
    parser.add_argument("--cache", type=Path, default=REPO / ".bench",
                        help="folder for the downloaded wheels and extracted sources (default: .bench/)")
    parser.add_argument("--dev", type=Path, default=_default_dev(),
                        help="development-split ground truth (default: ../shared/benchmark/paper-dev.tsv, "
                             "beside the main checkout when this is a git worktree)")
    parser.add_argument("--rules-dir", type=Path, default=PAPER_RULES,
                        help="the only rule files scored and timed as (b) (default: benchmarks/paper_rules, "
                             "the paper's conventions)")
    parser.add_argument("--bundled-rules", action="store_true",
                        help="score the bundled rules instead (what users get; not comparable with the paper)")
    parser.add_argument("--json-out", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--runs", type=int, default=3, help="in-process timing runs, median taken (default 3)")
    parser.add_argument("--cli-runs", type=int, default=3,
                        help="CLI runs over the corpus, median taken; the first is the one scored (default 3)")
    parser.add_argument("--single-runs", type=int, default=5,
                        help="runs of `adopter check modeling_bert.py`, median taken (default 5)")
    parser.add_argument("--no-timing", action="store_true", help="score only; skip the timing figures")
    parser.add_argument("--wait-load", type=float, metavar="LOAD",
                        help="before timing, wait (at most --wait-max seconds) until the 1-minute load average "
                             "is below LOAD")
    parser.add_argument("--wait-max", type=float, default=600, metavar="SECONDS",
                        help="longest wait for --wait-load (default 600)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.dev.is_file():
        raise SystemExit(f"development split not found: {args.dev}")
    dev = read_dev(args.dev)
    corpus = build_corpus(args.cache)
    models = {f.model for f in corpus}
    missing = sorted(set(dev) - models)
    if missing:
        raise SystemExit(f"dev models not in the corpus: {', '.join(missing)}")
    for row in dev.values():
        file = next(f for f in corpus if f.model == row.model)
        if row.path != file.member or row.wheel != f"transformers=={file.wheel}":
            raise SystemExit(f"{row.model}: tsv says {row.wheel} {row.path}, corpus has {file.wheel} {file.member}")
    model_of = {os.path.normpath(f.path): f.model for f in corpus}
    heldout = sorted(models - set(dev))
    by_version = {v: sum(f.wheel == v for f in corpus) for v in (MAIN_WHEEL, OWLV2_WHEEL)}
    out: dict = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": _load(),
                    "platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        "adopter": _adopter_version(), "git": _git_state(),
        "corpus": {"models": len(corpus), "by_wheel": by_version, "dev": len(dev), "heldout": len(heldout)},
    }
    print(f"Adopter {out['adopter']} on the paper benchmark  ({out['date']})")
    print(f"machine: {os.cpu_count()} cpus, Python {platform.python_version()}, {platform.platform()}, "
          f"load average {_load()}")
    print(f"corpus: {len(corpus)} models = {by_version[MAIN_WHEEL]} from transformers=={MAIN_WHEEL} "
          f"(every transformers/models/<m>/modeling_<m>.py) + {by_version[OWLV2_WHEEL]} (owlv2) from "
          f"transformers=={OWLV2_WHEEL}; dev split {len(dev)}, held out {len(heldout)}")
    print(f"analyser: {out['git']}")
    print(f"sources: {_display(args.cache / 'src')}/transformers-<version>/transformers/models/<m>/modeling_<m>.py")
    rules_dir = None if args.bundled_rules else args.rules_dir
    if rules_dir is not None and not rules_dir.is_dir():
        raise SystemExit(f"rule folder not found: {rules_dir}")
    print(f"rules: {'the bundled rules' if rules_dir is None else _display(rules_dir) + ' only'}")
    out["rules"] = "bundled" if rules_dir is None else str(rules_dir)
    print()

    # ---- accuracy (the first CLI run is the one scored)
    files = [f.path for f in corpus]
    findings, cli_wall, cli_cpu, cli_stderr = run_cli(files, rules_dir)
    if cli_stderr.strip():
        print("adopter check reported errors:")
        print(cli_stderr.rstrip())
        print()
    counts, lines = counts_by_model(findings, model_of)
    truth = {m: r.truth for m, r in dev.items()}
    ours = score(counts, truth)
    paper = published_score({m: r.published for m, r in dev.items()})
    truth_totals = {r: sum(t[r] for t in truth.values()) for r in RULES}
    print(f"Development split ({len(dev)} models, {sum(truth_totals.values())} locations): "
          f"Adopter (left) and the paper tool's published result (right)")
    print(score_table(ours, paper, truth_totals))
    print()
    o = ours.total
    print(f"Adopter: precision {o.precision:.3f}, recall {o.recall:.3f} ({o.tp}/{o.tp + o.fn}, {o.fp} FP)   "
          f"paper tool: precision {paper.total.precision:.3f}, recall {paper.total.recall:.3f} "
          f"({paper.total.tp}/{paper.total.tp + paper.total.fn}, {paper.total.fp} FP)")
    print()

    print(f"Disagreements on the development split ({len(ours.disagreements)}); "
          "lines are those of our findings for that model and rule:")
    if ours.disagreements:
        rows = []
        for model, rule, f, t in ours.disagreements:
            kind = "FP" if f > t else "FN"
            where = ", ".join(str(n) for n in lines.get((model, rule), [])) or "-"
            pub = dev[model].published[rule]
            file = Path(next(c.path for c in corpus if c.model == model)).name
            rows.append([model, rule, kind, f, t, f"{pub.tp}/{pub.fn}/{pub.fp}", f"{file}:{where}"])
        print(table(["model", "rule", "kind", "found", "truth", "paper TP/FN/FP", "our findings (file:lines)"],
                    rows, "lllrrll"))
    else:
        print("none")
    print()

    held_counts = {r: sum(counts.get(m, {}).get(r, 0) for m in heldout) for r in RULES}
    reference = {r: SPEC_TOTALS[r] - truth_totals[r] for r in RULES}
    print(f"Held-out split ({len(heldout)} models): our findings per rule. No ground truth here; the "
          "reference row is SPEC's total minus the dev split (a sum, not a score: misses and false "
          "positives can cancel).")
    print(table(["", *RULES, "total"], [
        ["found", *(held_counts[r] for r in RULES), sum(held_counts.values())],
        ["reference", *(reference[r] for r in RULES), sum(reference.values())],
    ]))
    print()
    per_model = [[m, *(counts.get(m, {}).get(r, 0) or "." for r in RULES)] for m in heldout if counts.get(m)]
    print(f"Held-out models with findings ({len(per_model)} of {len(heldout)}):")
    print(table(["model", *RULES], per_model))
    print()

    out["dev"] = {"ours": ours.as_dict(), "paper": paper.as_dict(), "truth_per_rule": truth_totals,
                  "disagreements": [
                      {"model": m, "rule": r, "found": f, "truth": t, "lines": lines.get((m, r), []),
                       "path": next(c.path for c in corpus if c.model == m)}
                      for m, r, f, t in ours.disagreements]}
    out["heldout"] = {"per_rule": held_counts, "reference_per_rule": reference,
                      "per_model": {m: counts.get(m, {}) for m in heldout}}
    out["findings"] = len(findings)

    # ---- timing
    if not args.no_timing:
        if args.wait_load is not None:
            _wait_for_load(args.wait_load, args.wait_max)
        print(f"Timing (wall time; CPU time in brackets: on a busy machine it is the steadier figure); "
              f"load average before: {_load()}")
        inproc = time_in_process(files, max(args.runs, 1), rules_dir)
        cli_times, cli_cpus = [cli_wall], [cli_cpu]
        for _ in range(max(args.cli_runs, 1) - 1):
            again, wall, cpu, _ = run_cli(files, rules_dir)
            cli_times.append(wall)
            cli_cpus.append(cpu)
            first, now = set(_key(findings)), set(_key(again))
            if first != now:
                print(f"WARNING: CLI run {len(cli_times)} gave other findings than the first "
                      "(was the analyser edited meanwhile?):")
                for item in sorted(now - first):
                    print(f"  new:  {item[0]}:{item[1]}:{item[2]} {item[3]}")
                for item in sorted(first - now):
                    print(f"  gone: {item[0]}:{item[1]}:{item[2]} {item[3]}")
        bert = next((f.path for f in corpus if f.model == "bert"), None)
        single, single_cpu = time_single(bert, max(args.single_runs, 1)) if bert else ([], [])
        med = statistics.median
        cli_med = med(cli_times)
        single_med = med(single) if single else float("nan")
        ratio, ratio_cpu = inproc["ratio"], inproc["ratio_cpu"]
        parse_med = inproc["ast_parse_median_s"]

        def runs(walls: list[float]) -> str:
            return " ".join(f"{t:.3f}" for t in walls)

        rows = [
            ["(a) ast.parse, all files, one process", fmt_s(parse_med),
             f"[{inproc['ast_parse_cpu_median_s']:.3f}]", runs(inproc["ast_parse_s"]), ""],
            ["(b) analysis (9 rules), all files, one process", fmt_s(inproc["analyze_median_s"]),
             f"[{inproc['analyze_cpu_median_s']:.3f}]", runs(inproc["analyze_s"]),
             f"{ratio:.2f}x (a) [CPU {ratio_cpu:.2f}x]  target <= {TARGET_RATIO:g}x: "
             f"{'met' if ratio <= TARGET_RATIO else 'MISSED'} [{'met' if ratio_cpu <= TARGET_RATIO else 'MISSED'}]"],
            [f"(b2) analysis ({len(inproc['every_rule_ids'])} default rules), all files, one process",
             fmt_s(inproc["every_median_s"]), f"[{inproc['every_cpu_median_s']:.3f}]", runs(inproc["every_s"]),
             f"{inproc['every_ratio']:.2f}x (a) [CPU {inproc['every_ratio_cpu']:.2f}x]"],
            [f"(c) adopter check CLI, all files ({os.cpu_count()} cpus)", fmt_s(cli_med),
             f"[{med(cli_cpus):.3f}]", runs(cli_times), f"{cli_med / parse_med:.2f}x (a)"],
            ["(d) adopter check modeling_bert.py, with startup", fmt_s(single_med),
             f"[{med(single_cpu):.3f}]" if single_cpu else "", runs(single),
             f"target < {TARGET_BERT_S:g} s: {'met' if single_med < TARGET_BERT_S else 'MISSED'}"],
        ]
        print(table(["what", "median", "[CPU]", "runs, wall (s)", ""], rows, "lrrll"))
        if inproc["errors"]:
            print("in-process analysis errors:")
            for e in inproc["errors"]:
                print(f"  {e}")
        print(f"ratio (b)/(a) within each interleaved pair, median: {inproc['ratio_paired']:.2f}x")
        print(f"per file: ast.parse {1000 * parse_med / len(files):.2f} ms, "
              f"analysis {1000 * inproc['analyze_median_s'] / len(files):.2f} ms "
              f"(the paper tool: about 24.5 minutes for the corpus with 2 processes)")
        print(f"load average after timing: {_load()} (other work on the machine slows every wall figure)")
        out["timing"] = {
            "in_process": inproc, "cli_corpus_s": cli_times, "cli_corpus_cpu_s": cli_cpus,
            "cli_corpus_median_s": cli_med, "load_after": _load(),
            "bert_single_s": single, "bert_single_cpu_s": single_cpu, "bert_single_median_s": single_med,
            "targets": {"ratio_max": TARGET_RATIO, "ratio_met": ratio <= TARGET_RATIO,
                        "ratio_cpu_met": ratio_cpu <= TARGET_RATIO,
                        "bert_max_s": TARGET_BERT_S, "bert_met": single_med < TARGET_BERT_S},
        }
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_out}")
    return 0


def _key(findings: list[dict]) -> list[tuple]:
    return sorted((f["path"], f["line"], f["column"], f["rule"]) for f in findings)


def _git_state() -> str:
    """HEAD, and whether the analyser (adopter/, rules/) has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "adopter", "rules"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if not head:
        return "unknown (not a git checkout)"
    n = len(dirty.splitlines())
    return f"commit {head}" + (f" + uncommitted changes in {n} file(s) of adopter/ and rules/" if n else "")


def _wait_for_load(limit: float, longest: float) -> None:
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        try:
            if os.getloadavg()[0] < limit:
                return
        except (AttributeError, OSError):  # pragma: no cover
            return
        time.sleep(5)
    print(f"(load average still {_load()} after {longest:g} s; timing anyway)")


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return "n/a"


def _adopter_version() -> str:
    try:
        from adopter import __version__
        return __version__
    except Exception:  # pragma: no cover
        return "?"


if __name__ == "__main__":
    sys.exit(main())
