"""Which Python files and lines a push changed: the names from NUL-separated ``git diff --raw
-z`` (so tabs, newlines, quotes and non-ASCII letters in names survive), the changed lines from
the unified diff parsed with unidiff, its quoted names unquoted as git quotes them.

A push event carries ``before`` and ``after``.  When ``before`` is all zeros (a new branch),
missing (a manual or scheduled run), flagged ``forced``, or not a commit this checkout has
(even after one shallow fetch), the range falls back to the head commit against its first
parent, or against the empty tree for a root commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from .gitops import REGULAR_MODES, Git, GitError

NULL_SHA = re.compile(r"^0*$")


@dataclass(frozen=True)
class ChangedFile:
    path: str  # relative to the repository root, '/'-separated
    lines: frozenset[int]  # line numbers in the new version that were added or changed


@dataclass(frozen=True)
class Changes:
    files: tuple[ChangedFile, ...]
    base: str  # the commit the diff was taken against (empty tree sha for a root commit)
    head: str
    description: str  # for the log: "abc1234..def5678" or "head commit def5678"

    def lines_for(self, path: str) -> frozenset[int]:
        for changed in self.files:
            if changed.path == path:
                return changed.lines
        return frozenset()


def is_python(path: str) -> bool:
    return path.endswith(".py")


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def unquote(name: str) -> str:
    """A path as git prints it in a diff header, unquoted: git wraps names holding control
    characters, quotes, backslashes or (with ``core.quotePath``) non-ASCII bytes in double
    quotes with C escapes and octal bytes (``"t\\tab.py"``, ``"\\303\\274.py"``)."""
    if len(name) < 2 or name[0] != '"' or name[-1] != '"':
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            digits = body[i + 1:i + 4]
            if len(digits) == 3 and all(c in "01234567" for c in digits):
                out.append(int(digits, 8) & 0xFF)
                i += 4
                continue
        out += char.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _strip_prefix(name: str, prefix: str) -> str:
    name = unquote(name)
    return name[len(prefix):] if name.startswith(prefix) else name


def parse_diff(text: str) -> dict[str, frozenset[int]]:
    """New-side changed lines per file of a unified diff (paths unquoted, without ``b/``)."""
    try:
        patch = PatchSet(text)
    except UnidiffParseError as exc:
        raise GitError(f"cannot parse git diff output: {exc}") from None
    lines: dict[str, frozenset[int]] = {}
    for patched in patch:
        if patched.is_removed_file or patched.is_binary_file:
            continue
        path = _strip_prefix(patched.target_file, "b/")
        lines[path] = frozenset(line.target_line_no for hunk in patched for line in hunk
                                if line.is_added and line.target_line_no is not None)
    return lines


def changed_python_files(git: Git, base: str, head: str) -> list[str]:
    """Added, modified, renamed or copied Python files that are regular files in ``head``, read
    from NUL-separated ``git diff --raw -z`` (any byte in a name is kept as it is)."""
    out = git.run("diff", "--raw", "-z", "-M", "--no-abbrev", "--no-color", base, head).stdout
    fields = out.split(b"\0")
    paths: list[str] = []
    i = 0
    while i < len(fields):
        meta = fields[i]
        if not meta.startswith(b":"):
            i += 1
            continue
        parts = meta[1:].decode("ascii", "replace").split()
        status = parts[4] if len(parts) > 4 else "M"
        if status[:1] in ("R", "C"):
            name, i = fields[i + 2] if i + 2 < len(fields) else b"", i + 3
        else:
            name, i = fields[i + 1] if i + 1 < len(fields) else b"", i + 2
        if status[:1] in ("D", "U", "X") or parts[1] not in REGULAR_MODES:
            continue  # deleted, unmerged, or not a regular file (symlink, submodule)
        path = name.decode("utf-8", "surrogateescape")
        if is_python(path):
            paths.append(path)
    return paths


def _diff(git: Git, base: str, head: str) -> list[ChangedFile]:
    paths = changed_python_files(git, base, head)
    if not paths:
        return []
    text = git.text("diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", "--unified=0",
                    "--src-prefix=a/", "--dst-prefix=b/", base, head, "--", "*.py",
                    env={"GIT_LITERAL_PATHSPECS": "0"})
    lines = parse_diff(text)
    return [ChangedFile(path, lines.get(path, frozenset())) for path in paths]


def changed_files(git: Git, before: str | None, after: str, forced: bool = False) -> Changes:
    if not git.has_commit(after):
        git.try_fetch(after)
        if not git.has_commit(after):
            raise GitError(f"the pushed commit {after[:12]} is not in this checkout")
    if before and not NULL_SHA.match(before) and not forced:
        if not git.has_commit(before):
            git.try_fetch(before)
        if git.has_commit(before):
            return Changes(tuple(_diff(git, before, after)), before, after, f"{before[:7]}..{after[:7]}")
    parent = git.first_parent(after)
    base = parent or git.empty_tree()
    return Changes(tuple(_diff(git, base, after)), base, after, f"head commit {after[:7]}")
