"""pre-commit entry points: thin doors onto ``adopter check`` and ``adopter fix``.

pre-commit runs ``entry + args + filenames``, so ``argv`` is whatever the user put in
``args:`` (``--select=ADP004``, ``--exit-zero``, ``--target=cuda``, ...) followed by the
staged files.  The file names are the longest run of existing files at the end of ``argv``
and are passed to the core after ``--``, so a file named ``-x.py`` is a file, never an
option.  Nothing here imports torch, LibCST or GitHub libraries: the check path only needs
the core, which keeps the hook's environment small and its startup fast.

What differs from running ``adopter`` by hand, because pre-commit names the files:

* ``--force-exclude``: ``exclude`` in ``[tool.adopter]`` (and the folders a walk never
  enters) apply to the files pre-commit passes;
* pre-commit already runs one batch of files per core (``require_serial: false``), so the
  core's own process pool is switched off with ``--jobs=1`` (a ``--jobs`` in ``args:`` wins);
* ``adopter`` reports only the findings whose lines the commit changes (the diff of each
  file against ``HEAD``, or between ``PRE_COMMIT_FROM_REF`` and ``PRE_COMMIT_TO_REF`` on
  pre-push): an opportunity that was already there does not fail every later commit that
  touches the file.  A file new to the repository is reported whole, and so is every file
  with ``--whole-file`` in ``args:`` (or outside a git repository).  Notebooks are reported
  whole (their diff is JSON).

Both hooks are safe in parallel batches: each batch reads, and for the fix hook rewrites, only
the files it was given (``adopter.source.write_source``: temporary file + ``os.replace``), and
the fix hook leaves the dependency files that every batch shares alone (``--no-deps``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

#: Printed after each fixable finding: the id of the hook that applies the fix.
FIX_HINT = "adopter-fix"

_CHECK_OPTIONS = ("--jobs=1", "--force-exclude")
_FIX_OPTIONS = ("--jobs=1", "--no-deps", "--force-exclude")
WHOLE_FILE = "--whole-file"


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(options from ``args:``, file names pre-commit appended): the names are the longest
    run of existing files at the end (pre-commit passes only files that exist)."""
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    start = len(argv)
    while start > 0 and (os.path.isfile(argv[start - 1]) or os.path.islink(argv[start - 1])):
        start -= 1
    return argv[:start], argv[start:]


# --------------------------------------------------------------------------- changed lines

_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13, b'"': 34, b"\\": 92}


def _unquote(name: bytes) -> bytes:
    """A path as git prints it in a diff header: C-quoted when it holds odd characters."""
    if not (name.startswith(b'"') and name.endswith(b'"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i:i + 1]
        if char == b"\\" and i + 1 < len(body):
            nxt = body[i + 1:i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt.isdigit() and i + 3 < len(body):
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
        out += char
        i += 1
    return bytes(out)


def _git(args: list[str], cwd: str | None = None) -> bytes | None:
    try:
        proc = subprocess.run(["git", "-c", "core.quotePath=false", *args], cwd=cwd, capture_output=True,
                              timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def changed_lines(files: list[str]) -> dict[str, set[int] | None] | None:
    """For each file (by real path): the line numbers the commit changes, or None for a file
    to report whole (new to the repository, a notebook).  None: not in a git repository."""
    top = _git(["rev-parse", "--show-toplevel"])
    if top is None:
        return None
    root = os.path.realpath(top.decode(errors="surrogateescape").strip())
    base = os.environ.get("PRE_COMMIT_FROM_REF") or "HEAD"
    head = os.environ.get("PRE_COMMIT_TO_REF")
    if _git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"]) is None:
        return {os.path.realpath(f): None for f in files}  # no commit yet: everything is new
    rel = {}
    for name in files:
        real = os.path.realpath(name)
        rel[os.path.relpath(real, root).replace(os.sep, "/")] = real
    specs = ["--", *(f":(literal){r}" for r in rel)]
    known = _git(["ls-tree", "-r", "-z", "--name-only", "--full-tree", base, *specs], cwd=root)
    diff = _git(["diff", "-U0", "--no-color", "--no-ext-diff", "--no-renames", "--src-prefix=a/", "--dst-prefix=b/",
                 base, *([head] if head else []), *specs], cwd=root)
    if known is None or diff is None:
        return None
    tracked = {n.decode(errors="surrogateescape") for n in known.split(b"\0") if n}
    result: dict[str, set[int] | None] = {}
    for name, real in rel.items():
        result[real] = set() if name in tracked and not name.endswith(".ipynb") else None
    current: set[int] | None = None
    for line in diff.split(b"\n"):
        if line.startswith(b"+++ "):
            target = _unquote(line[4:].rstrip(b"\t"))
            current = None
            if target.startswith(b"b/"):
                real = rel.get(target[2:].decode(errors="surrogateescape"))
                current = result.get(real) if real else None
            continue
        found = _HUNK.match(line)
        if found and current is not None:
            start, count = int(found.group(1)), int(found.group(2) or 1)
            if count:
                current.update(range(start, start + count))
            else:  # lines deleted after `start`: the statements on both sides changed
                current.update((max(start, 1), start + 1))
    return result


def _touches(changed: dict[str, set[int] | None]):
    def keep(finding) -> bool:
        lines = changed.get(os.path.realpath(finding.path), None)
        if lines is None:
            return True
        return any(number in lines for number in range(finding.line, finding.end_line + 1))

    return keep


# --------------------------------------------------------------------------- entry points

def _run(command: str, options: tuple[str, ...], argv: list[str] | None, only_changed: bool = False) -> int:
    from adopter.cli import dispatch, parse

    args_in = list(sys.argv[1:] if argv is None else argv)
    user, files = split_argv(args_in)
    whole = WHOLE_FILE in user
    user = [a for a in user if a != WHOLE_FILE]
    if not files:
        return 0  # pre-commit names the files; with none there is nothing to do
    args = parse([command, *options, *user, "--", *files])
    if command == "check":
        args.fix_hint = FIX_HINT
        if only_changed and not whole:
            changed = changed_lines(files)
            if changed is not None:
                args.keep = _touches(changed)
    return dispatch(args)


def check(argv: list[str] | None = None) -> int:
    """``adopter check`` on the staged files, reporting what the commit changes: 0 clean,
    1 findings, 2 errors."""
    return _run("check", _CHECK_OPTIONS, argv, only_changed=True)


def fix(argv: list[str] | None = None) -> int:
    """``adopter fix`` on the staged files: rewrites them; nonzero when one changed or failed."""
    return _run("fix", _FIX_OPTIONS, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(check())
