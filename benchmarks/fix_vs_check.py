"""`adopter fix --diff` against `adopter check` on the same tree, in one run.

The target (issue #14): fixing costs at most twice what checking costs.  Both commands run
as a user runs them (a subprocess each, default worker pool), over transformers 4.34's
``models/`` (the dev dependency, read as text, never imported), in interleaved pairs so
that both see the same machine load; each pair gives one ratio, and the spread of the
ratios is printed with their median.  Wall time is what a user waits; CPU time (the
process and its workers) is steadier on a busy machine.

    python benchmarks/fix_vs_check.py                 # 3 pairs over transformers/models
    python benchmarks/fix_vs_check.py --pairs 5 --tree path/to/models --jobs 2
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _transformers_models() -> Path | None:
    spec = importlib.util.find_spec("transformers")
    return Path(spec.origin).parent / "models" if spec and spec.origin else None


def timed(command: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the command and its children, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=_transformers_models(), help="folder to check and fix")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved check/fix pairs")
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    args = parser.parse_args(argv)
    if args.tree is None or not args.tree.is_dir():
        print("no tree to run on: install transformers==4.34.0 or pass --tree", file=sys.stderr)
        return 2
    base = [sys.executable, "-m", "adopter.cli"]
    jobs = [f"--jobs={args.jobs}"] if args.jobs else []
    check = [*base, "check", "--no-config", "--quiet", *jobs, str(args.tree)]
    fix = [*base, "fix", "--diff", "--no-config", "--no-deps", *jobs, str(args.tree)]
    print(f"tree: {args.tree} ({sum(1 for _ in args.tree.rglob('*.py'))} .py files), "
          f"cores: {os.cpu_count()}, jobs: {args.jobs or 'all cores'}")
    print(f"{'pair':>4}  {'check wall':>10}  {'fix wall':>9}  {'ratio':>6}  {'check cpu':>9}  {'fix cpu':>8}  {'ratio':>6}")
    walls, cpus = [], []
    for pair in range(1, args.pairs + 1):
        # alternate the order so that neither command always runs on a warmer cache
        order = [("check", check), ("fix", fix)] if pair % 2 else [("fix", fix), ("check", check)]
        got = {}
        for name, command in order:
            got[name] = timed(command)
        (cw, cc, crc), (fw, fc, frc) = got["check"], got["fix"]
        if crc not in (0, 1) or frc not in (0, 1):
            print(f"a command failed (check exit {crc}, fix exit {frc})", file=sys.stderr)
            return 2
        walls.append(fw / cw)
        cpus.append(fc / cc)
        print(f"{pair:>4}  {cw:>9.1f}s  {fw:>8.1f}s  {fw / cw:>5.2f}x  {cc:>8.1f}s  {fc:>7.1f}s  {fc / cc:>5.2f}x")
    print(f"fix/check wall: median {statistics.median(walls):.2f}x (range {min(walls):.2f}-{max(walls):.2f}); "
          f"cpu: median {statistics.median(cpus):.2f}x (range {min(cpus):.2f}-{max(cpus):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
