"""The check path's speed targets of issue #12, in one run of interleaved pairs.

1. Analysis of the paper corpus (199 modeling files, :func:`paper.build_corpus`) with every
   default rule, in this process, against ``ast.parse`` of the same texts: the texts are
   read beforehand; each pair runs ``ast.parse`` over all files, then ``analyze`` over all
   files (the order alternates between pairs so that neither always runs on a warmer
   machine); the ratio is taken per pair (CPU time of this process), and its median and
   range are printed.  Target: at most 4x.
2. ``adopter check modeling_bert.py`` as a user runs it (the console script, default
   options, interpreter start-up included), CPU time of the child (``RUSAGE_CHILDREN``),
   interleaved with ``python -c pass`` (the interpreter alone) so that the load hits both
   alike.  Target: under 0.3 s.  An installed wheel has its bytecode compiled by pip; a
   checkout run with ``PYTHONDONTWRITEBYTECODE`` has none and compiles every module at each
   start, so the script compiles the package first (``--no-compile`` to measure without).

    .venv/bin/python benchmarks/speed.py --cache .bench        # the corpus paper.py extracts
    .venv/bin/python benchmarks/speed.py --pairs 5 --single-runs 10
"""

from __future__ import annotations

import argparse
import ast
import compileall
import gc
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import paper  # noqa: E402  (the corpus: the same 199 files paper.py scores)

ANALYSIS_TARGET = 4.0
SINGLE_TARGET_S = 0.3


def spread(values: list[float], unit: str = "x", digits: int = 2) -> str:
    return (f"median {statistics.median(values):.{digits}f}{unit} "
            f"(range {min(values):.{digits}f}-{max(values):.{digits}f}, {len(values)} pairs)")


def analysis_pairs(files: list[str], pairs: int, select: list[str] | None = None) -> list[tuple[float, float]]:
    """(ast.parse CPU s, analysis CPU s) per pair, over every file; the default rules, or
    ``select`` (``ALL``: every rule, as issue 12 counts it)."""
    from adopter.ruleset import load_rules, select_rules

    everything = load_rules()
    rules = everything if select == ["ALL"] else select_rules(everything, select)
    return timed_pairs(files, rules, pairs)


def timed_pairs(files: list[str], rules: list, pairs: int, echo: bool = True) -> list[tuple[float, float]]:
    """(ast.parse CPU s, analysis CPU s) per pair with ``rules``, after one warm pass; the two
    alternate which goes first. ``adopter`` is whichever the caller put first on ``sys.path``
    (benchmarks/speed_ab.py measures two checkouts with it)."""
    from adopter.engine import AnalysisError, analyze
    from adopter.structure import package_of

    texts = [(p, Path(p).read_text(encoding="utf-8")) for p in files]
    packages = {path: package_of(path) for path, _ in texts}

    def parse_all() -> None:
        for path, text in texts:
            ast.parse(text, filename=path)

    def analyse_all() -> None:
        for path, text in texts:
            try:
                analyze(text, path, rules, packages[path])
            except AnalysisError:
                pass

    def cpu(work) -> float:
        gc.collect()
        start = time.process_time()
        work()
        return time.process_time() - start

    analyse_all()  # warm: matchers compiled, rule files parsed
    out = []
    for pair in range(pairs):
        if pair % 2:
            b, a = cpu(analyse_all), cpu(parse_all)
        else:
            a, b = cpu(parse_all), cpu(analyse_all)
        out.append((a, b))
        if echo:
            print(f"  pair {pair + 1}: ast.parse {a:.2f} s, analysis {b:.2f} s CPU: {b / a:.2f}x", flush=True)
    return out


def child_cpu(command: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{' '.join(command)} exited with {proc.returncode}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=paper.REPO / ".bench",
                        help="paper.py's cache folder (wheels and extracted corpus)")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved ast.parse/analysis pairs")
    parser.add_argument("--single-runs", type=int, default=7, help="runs of the one-file check")
    parser.add_argument("--select", help="comma-separated rule ids for part 1 (ALL: every rule; default: the "
                                         "rules on by default)")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not compile the package's bytecode first (measure a cold checkout)")
    args = parser.parse_args(argv)

    corpus = paper.build_corpus(args.cache, quiet=True)
    files = [f.path for f in corpus]
    print(f"machine: {os.cpu_count()} cpus, load average {paper._load()}, Python {sys.version.split()[0]}")
    select = [s.strip() for s in args.select.split(",")] if args.select else None
    which = "every rule" if select == ["ALL"] else (args.select if select else "the default rules")
    print(f"1. analysis ({which}) / ast.parse over {len(files)} files, one process, CPU:")
    pairs = analysis_pairs(files, max(args.pairs, 1), select)
    ratios = [b / a for a, b in pairs]
    verdict = "met" if statistics.median(ratios) <= ANALYSIS_TARGET else "MISSED"
    print(f"   ratio {spread(ratios)}; target <= {ANALYSIS_TARGET:g}x: {verdict}")
    print(f"   analysis CPU {spread([b for _, b in pairs], ' s')}; ast.parse CPU {spread([a for a, _ in pairs], ' s')}")

    if not args.no_compile:
        import adopter

        compileall.compile_dir(str(Path(adopter.__file__).parent), quiet=1)
    bert = next(f.path for f in corpus if f.model == "bert")
    check = [*paper.adopter_command(), "check", bert]
    bare = [sys.executable, "-c", "pass"]
    child_cpu(check)  # warm the file cache and the rule cache
    checks, bares = [], []
    for run in range(max(args.single_runs, 1)):
        order = [(check, checks), (bare, bares)] if run % 2 == 0 else [(bare, bares), (check, checks)]
        for command, into in order:
            into.append(child_cpu(command))
    verdict = "met" if statistics.median(checks) < SINGLE_TARGET_S else "MISSED"
    print(f"2. `adopter check {Path(bert).name}` with start-up, CPU: {spread(checks, ' s', 3)}; "
          f"target < {SINGLE_TARGET_S:g} s: {verdict}")
    print(f"   the interpreter alone (`python -c pass`): {spread(bares, ' s', 3)}"
          f"{'' if not args.no_compile else '; bytecode not compiled first'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
