"""Which Python files and lines a push changed, from ``git diff`` parsed with unidiff.

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

from .gitops import Git, GitError

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


def parse_diff(text: str) -> list[ChangedFile]:
    """Added/modified Python files of a unified diff, with the new-side lines that changed."""
    try:
        patch = PatchSet(text)
    except UnidiffParseError as exc:
        raise GitError(f"cannot parse git diff output: {exc}") from None
    files = []
    for patched in patch:
        if patched.is_removed_file or patched.is_binary_file:
            continue
        path = patched.path
        if not is_python(path):
            continue
        lines = {line.target_line_no for hunk in patched for line in hunk
                 if line.is_added and line.target_line_no is not None}
        files.append(ChangedFile(path, frozenset(lines)))
    return files


def _diff(git: Git, base: str, head: str) -> list[ChangedFile]:
    text = git.text("diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", "--unified=0",
                    f"{base}", f"{head}", "--", "*.py")
    return parse_diff(text)


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
