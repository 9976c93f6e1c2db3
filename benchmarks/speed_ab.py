#!/usr/bin/env python
"""Interleaved A/B of the every-rule analysis speed of two versions of the code, for a machine
too noisy for two separate ``speed.py`` runs to tell them apart.

    .venv/bin/python benchmarks/speed_ab.py main HEAD --rounds 3 --pairs 2 --cache .bench

``A`` and ``B`` are git revisions (checked out as detached worktrees in a temporary folder,
removed at the end) or paths to checkouts.  Each measurement is one fresh process with that
checkout first on ``sys.path`` and its own ``rules/`` folder: a warm pass of ``analyze`` with
every rule over the paper corpus (paper.build_corpus: the 199 files), then ``--pairs`` pairs of
``ast.parse`` over all files and ``analyze`` over all files (CPU time of the process; the order
alternates between pairs, as speed.py does).  The processes alternate A, B, B, A, A, B, ... so
that a load change hits both alike.  Printed: per side the medians and ranges of analysis CPU,
ast.parse CPU and their ratio, and per round B's median analysis CPU over A's.

Separate processes differ by about 3% on a shared machine, more than most single savings.
``--in-process`` measures both in one process instead: each checkout's ``adopter`` package
and ``rules/`` are copied into a temporary folder under other names (``adopter_a``,
``adopter_b``: the package imports itself relatively) and every file of the corpus is analysed
by A and by B in turn, the order flipped from file to file, after one warm pass of each; CPU
is summed per side and round.  Both sides must give the same number of findings.  Printed:
per round A's and B's analysis CPU and B/A, then the median B/A with its range (it resolves
about 0.5%, speed20's measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def child(checkout: Path, cache: Path, pairs: int) -> None:
    sys.path.insert(0, str(checkout))
    sys.path.insert(0, str(HERE))
    import paper  # the corpus (this checkout's benchmarks/paper.py: the same files for both sides)
    import speed  # the measurement itself, as benchmarks/speed.py makes it

    import adopter
    from adopter.ruleset import load_rules

    if not Path(adopter.__file__).resolve().is_relative_to(checkout.resolve()):
        raise SystemExit(f"adopter imported from {adopter.__file__}, not from {checkout}")
    rules = load_rules([checkout / "rules"], bundled=False)
    files = [f.path for f in paper.build_corpus(cache, quiet=True)]
    out = speed.timed_pairs(files, rules, pairs, echo=False)
    print(json.dumps(out))


def in_process(sides: dict[str, Path], cache: Path, rounds: int) -> None:
    """Both checkouts in this process, every file alternately (see the module docstring)."""
    import importlib
    import shutil
    import time

    sys.path.insert(0, str(HERE))
    import paper

    files = [f.path for f in paper.build_corpus(cache, quiet=True)]
    texts = [(path, Path(path).read_text(encoding="utf-8")) for path in files]
    tmp = Path(tempfile.mkdtemp(prefix="speed_ab_inproc-"))
    try:
        loaded = []
        for side, root in sides.items():
            name = f"adopter_{side.lower()}"
            # (not an ``adopter/rules`` link a checkout may hold for old-engine runs: the rules are
            # copied beside the package and loaded from there)
            shutil.copytree(root / "adopter", tmp / name, ignore=shutil.ignore_patterns("__pycache__", "rules"))
            shutil.copytree(root / "rules", tmp / f"{name}_rules", ignore=shutil.ignore_patterns("__pycache__"))
        sys.path.insert(0, str(tmp))
        for side in sides:
            name = f"adopter_{side.lower()}"
            engine = importlib.import_module(f"{name}.engine")
            ruleset = importlib.import_module(f"{name}.ruleset")
            structure = importlib.import_module(f"{name}.structure")
            rules = ruleset.load_rules([tmp / f"{name}_rules"], bundled=False)
            packages = {path: structure.package_of(path) for path, _ in texts}
            loaded.append((engine, rules, packages))

        def one(which: int, path: str, text: str) -> int:
            engine, rules, packages = loaded[which]
            try:
                return len(engine.analyze(text, path, rules, packages[path]).findings)
            except engine.AnalysisError:
                return -1

        for which in (0, 1):  # warm: matchers compiled, rule files parsed
            for path, text in texts:
                one(which, path, text)
        print(f"in one process, {len(texts)} files; load average {os.getloadavg()[0]:.1f}")
        ratios = []
        for round_ in range(rounds):
            cpu, found = [0.0, 0.0], [0, 0]
            for i, (path, text) in enumerate(texts):
                for which in ((0, 1) if (i + round_) % 2 == 0 else (1, 0)):
                    start = time.process_time()
                    found[which] += one(which, path, text)
                    cpu[which] += time.process_time() - start
            if found[0] != found[1]:
                raise SystemExit(f"A and B differ in findings: {found[0]} vs {found[1]}")
            ratios.append(cpu[1] / cpu[0])
            print(f"  round {round_ + 1}: A {cpu[0]:.3f} s, B {cpu[1]:.3f} s, B/A {cpu[1] / cpu[0]:.4f} "
                  f"({found[0]} findings; load {os.getloadavg()[0]:.1f})", flush=True)
        print(f"B/A analysis CPU per round: {spread(ratios, 4)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def spread(values: list[float], digits: int = 2, unit: str = "") -> str:
    return (f"{statistics.median(values):.{digits}f}{unit} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f}, n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", nargs="?", help="git revision or checkout folder (the baseline)")
    parser.add_argument("b", nargs="?", help="git revision or checkout folder (the change)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per side")
    parser.add_argument("--pairs", type=int, default=2, help="measured parse/analysis pairs per process")
    parser.add_argument("--cache", type=Path, default=REPO / ".bench", help="paper.py's cache folder")
    parser.add_argument("--in-process", action="store_true",
                        help="both sides in one process, files alternated (resolves ~0.5%%)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.cache.resolve(), args.pairs)
        return 0
    if not (args.a and args.b):
        parser.error("two revisions (or checkout folders) to compare are needed")

    made: list[Path] = []
    tmp = Path(tempfile.mkdtemp(prefix="speed_ab-"))

    def checkout(spec: str, label: str) -> Path:
        if Path(spec).is_dir():
            return Path(spec).resolve()
        where = tmp / label
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), spec],
                       check=True, capture_output=True)
        made.append(where)
        return where

    try:
        sides = {"A": checkout(args.a, "A"), "B": checkout(args.b, "B")}
        print(f"A = {args.a} ({sides['A']}), B = {args.b} ({sides['B']}); load average {os.getloadavg()[0]:.1f}")
        if args.in_process:
            in_process(sides, args.cache.resolve(), args.rounds)
            return 0
        results: dict[str, list[list[tuple[float, float]]]] = {"A": [], "B": []}
        for round_ in range(args.rounds):
            order = ("A", "B") if round_ % 2 == 0 else ("B", "A")
            for side in order:
                proc = subprocess.run([sys.executable, __file__, "--child", str(sides[side]), "--pairs",
                                       str(args.pairs), "--cache", str(args.cache)],
                                      capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}, check=False)
                if proc.returncode:
                    sys.stderr.write(proc.stderr)
                    raise SystemExit(f"side {side} failed")
                pairs = [tuple(p) for p in json.loads(proc.stdout.strip().splitlines()[-1])]
                results[side].append(pairs)
                analysis = statistics.median(b for _, b in pairs)
                parse = statistics.median(a for a, _ in pairs)
                print(f"  round {round_ + 1} {side}: analysis {analysis:.2f} s, ast.parse {parse:.2f} s, "
                      f"{analysis / parse:.2f}x (load {os.getloadavg()[0]:.1f})", flush=True)
        for side in ("A", "B"):
            flat = [p for run in results[side] for p in run]
            print(f"{side}: analysis CPU {spread([b for _, b in flat], unit=' s')}; ast.parse CPU "
                  f"{spread([a for a, _ in flat], unit=' s')}; ratio {spread([b / a for a, b in flat], unit='x')}")
        per_round = [statistics.median(b for _, b in rb) / statistics.median(b for _, b in ra)
                     for ra, rb in zip(results["A"], results["B"])]
        print(f"B/A analysis CPU per round: {spread(per_round, 3)}")
    finally:
        for where in made:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], capture_output=True,
                           check=False)
        try:
            tmp.rmdir()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
