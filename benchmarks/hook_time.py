"""What the `adopter` pre-commit hook costs per commit: real pre-commit, real `git commit`.

A hook repository is made from this checkout's working tree (as the hook tests do), its
environment is built once in a temporary PRE_COMMIT_HOME, and a fresh project installs it
with `pre-commit install`.  Then, for each case, the same commit is made with the hook
(`git commit`) and without it (`git commit --no-verify`), interleaved, `--reps` times; the
hook's cost is the difference of the medians.

Cases: one small model file; ten small model files; one large real modeling file
(transformers 4.34 BERT, ~1,900 lines, read from the installed dev dependency, never
imported).  Each commit changes one line per file.

    python benchmarks/hook_time.py            # prints a table; figures go to benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = (ROOT / "tests" / "hook" / "fixtures" / "block.py").read_text()
SKIP_TOP = {".git", ".venv", ".bench", ".pytest_cache", ".hypothesis", "build", "dist"}


def env(home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    out.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", PRE_COMMIT_HOME=str(home),
               GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@example.com")
    return out


def sh(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, env=env(home), capture_output=True, text=True, timeout=900)


def hook_repo(dest: Path, home: Path) -> str:
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    sh(dest.parent, home, "git", "init", "-q", str(dest))
    for raw in names:
        name = raw.decode()
        if not name or Path(name).parts[0] in SKIP_TOP or "__pycache__" in name or not (ROOT / name).is_file():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    sh(dest, home, "git", "add", "-A")
    sh(dest, home, "git", "commit", "-q", "--no-verify", "-m", "adopter under test")
    return sh(dest, home, "git", "rev-parse", "HEAD").stdout.strip()


def large_file() -> str | None:
    spec = importlib.util.find_spec("transformers")
    if not spec or not spec.origin:
        return None
    return (Path(spec.origin).parent / "models" / "bert" / "modeling_bert.py").read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="adopter-hook-bench-"))
    home = work / "pre-commit-home"
    try:
        rev = hook_repo(work / "hook-repo", home)
        project = work / "project"
        sh(work, home, "git", "init", "-q", str(project))
        (project / ".pre-commit-config.yaml").write_text(
            f"repos:\n  - repo: {work / 'hook-repo'}\n    rev: {rev}\n    hooks:\n      - id: adopter\n"
            f"        args: [--exit-zero]\n")
        cases: dict[str, list[str]] = {"1 small file": ["one.py"], "10 small files": [f"m{i}.py" for i in range(10)]}
        large = large_file()
        if large is not None:
            cases["1 large file (bert, 1.9k lines)"] = ["modeling_bert.py"]
        for names in cases.values():
            for name in names:
                (project / name).write_text(large if name == "modeling_bert.py" else SMALL)
        sh(project, home, "git", "add", "-A")
        sh(project, home, "git", "commit", "-q", "--no-verify", "-m", "start")
        started = time.perf_counter()
        proc = sh(project, home, sys.executable, "-m", "pre_commit", "install", "--install-hooks")
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return 2
        print(f"hook environment built in {time.perf_counter() - started:.1f} s (once per hook version)")
        print(f"{'case':<34} {'with hook':>10} {'--no-verify':>12} {'hook cost':>10}   (median of {args.reps})")
        counter = 0
        for case, names in cases.items():
            timings: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.reps):
                for verify in (True, False):
                    counter += 1
                    for name in names:
                        with open(project / name, "a") as handle:
                            handle.write(f"# edit {counter}\n")
                    sh(project, home, "git", "add", *names)
                    command = ["git", "commit", "-q", "-m", f"edit {counter}"] + ([] if verify else ["--no-verify"])
                    started = time.perf_counter()
                    done = sh(project, home, *command)
                    timings[verify].append(time.perf_counter() - started)
                    if done.returncode != 0:
                        print(done.stdout + done.stderr, file=sys.stderr)
                        return 2
            with_hook, without = statistics.median(timings[True]), statistics.median(timings[False])
            print(f"{case:<34} {with_hook:>9.2f}s {without:>11.2f}s {with_hook - without:>9.2f}s"
                  f"   (with hook: {min(timings[True]):.2f}-{max(timings[True]):.2f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
