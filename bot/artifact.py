"""The secure split's artifact: written by the unprivileged ``report`` run, read as untrusted data
by the privileged ``apply`` run.

The artifact holds ``adopter-results.json`` (the table of patches with their measurements, the
rules that were active, and the SHA-256 of every file the patch changes and of the patch
itself) and ``adopter.patch`` (for people to read).  Mode ``apply`` never applies the patch:
it runs the same deterministic ``fix`` on the pushed commit itself and pushes only what that
produces, after checking that it is exactly what the artifact claims (see ``main.Bot.apply``).
What is taken from the artifact is the measurements, and they are only shown.

Everything here is careful with hostile files: sizes are checked on the open file before a
byte is read, only regular files are opened (never a FIFO, which would block, or a symlink),
and every field of the JSON is type-checked with a length limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .actions import BotError
from .patches import Row

PATCH_NAME = "adopter.patch"
RESULTS_NAME = "adopter-results.json"
VERSION = 2
MAX_RESULTS_BYTES = 8 * 1024 * 1024
MAX_PATCH_BYTES = 32 * 1024 * 1024
MAX_ROWS = 2000
MAX_FILES = 2000
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
DIGEST = re.compile(r"[0-9a-f]{64}")
RULE_ID = re.compile(r"[A-Z]{2,5}\d{3}")


class ArtifactError(BotError):
    """The artifact is malformed, too large, inconsistent or altered; nothing is pushed."""


@dataclass(frozen=True)
class Artifact:
    rows: list[Row]
    base_sha: str
    base_branch: str
    rules: tuple[str, ...]  # the rule ids that were active in the report run
    files: dict[str, str]  # path -> SHA-256 of the content the patch gives it
    patch_sha256: str | None
    adopter_version: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def proposed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "proposed"]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open_regular(path: Path, limit: int) -> tuple[int, int]:
    """An fd of ``path`` if it is a regular file (not followed through a symlink) of at most
    ``limit`` bytes, and its size."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ArtifactError(f"the artifact's {path.name} cannot be opened ({exc.strerror or exc}); "
                            "refusing it (is it a symlink?)") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"the artifact's {path.name} is not a regular file; refusing it")
        if info.st_size > limit:
            raise ArtifactError(f"the artifact's {path.name} is {info.st_size} bytes, over the limit of {limit}; "
                                "refusing it")
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def read_limited(path: Path, limit: int) -> bytes:
    fd, _ = _open_regular(path, limit)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew after the check
        raise ArtifactError(f"the artifact's {path.name} is over the limit of {limit} bytes; refusing it")
    return data


def file_digest(path: Path, limit: int) -> str:
    """SHA-256 of a regular file of at most ``limit`` bytes, read in chunks."""
    fd, _ = _open_regular(path, limit)
    hasher = hashlib.sha256()
    seen = 0
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(1 << 20):
            seen += len(chunk)
            if seen > limit:
                raise ArtifactError(f"the artifact's {path.name} is over the limit of {limit} bytes; refusing it")
            hasher.update(chunk)
    return hasher.hexdigest()


def document(repository: str, base_branch: str, base_sha: str, rows: list[Row], rules: list[str],
             files: dict[str, bytes], patch: bytes | None, version: str, requirements, declared) -> dict:
    """The results file a ``report`` run writes (the JSON ``load`` reads back)."""
    return {
        "version": VERSION, "adopter": version, "repository": repository, "base_branch": base_branch,
        "base_sha": base_sha, "rules": sorted(rules),
        "files": {path: digest(data) for path, data in sorted(files.items())},
        "patch_sha256": digest(patch) if patch is not None else None,
        "requirements": sorted(requirements), "dependency_files": declared,
        "rows": [r.as_dict() for r in rows],
    }


def _text(value: object, what: str, limit: int = 500) -> str:
    if not isinstance(value, str) or len(value) > limit or "\0" in value:
        raise ValueError(f"{what} must be a string of at most {limit} characters")
    return value


def load(folder: Path) -> Artifact | None:
    """The artifact in ``folder``, checked; None when it holds no results file (nothing proposed)."""
    path = folder / RESULTS_NAME
    if not os.path.lexists(path):
        return None
    raw = read_limited(path, MAX_RESULTS_BYTES)
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get("version") != VERSION:
            found = data.get("version") if isinstance(data, dict) else None
            raise ValueError(f"not an adopter results file of version {VERSION} (found {found!r}); the analysis "
                             "and the apply step must run the same adopter release")
        raw_rows = data.get("rows")
        if not isinstance(raw_rows, list) or len(raw_rows) > MAX_ROWS:
            raise ValueError(f"rows must be a list of at most {MAX_ROWS}")
        rows = [Row.from_dict(r) for r in raw_rows]
        sha = data.get("base_sha")
        if not isinstance(sha, str) or not SHA.fullmatch(sha):
            raise ValueError("base_sha must be a commit id")
        rules = data.get("rules")
        if not isinstance(rules, list) or len(rules) > 500 or not all(
                isinstance(r, str) and RULE_ID.fullmatch(r) for r in rules):
            raise ValueError("rules must be a list of rule ids")
        files = data.get("files")
        if not isinstance(files, dict) or len(files) > MAX_FILES:
            raise ValueError("files must map paths to SHA-256 digests")
        for name, value in files.items():
            _text(name, "a file path")
            if not isinstance(value, str) or not DIGEST.fullmatch(value):
                raise ValueError(f"files[{name[:80]!r}] must be a SHA-256 digest")
        patch_sha = data.get("patch_sha256")
        if patch_sha is not None and (not isinstance(patch_sha, str) or not DIGEST.fullmatch(patch_sha)):
            raise ValueError("patch_sha256 must be a SHA-256 digest or null")
        base = _text(data.get("base_branch", ""), "base_branch", 255)
        version = _text(data.get("adopter", ""), "adopter", 64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"the artifact's {RESULTS_NAME} is not valid: {exc}") from None
    return Artifact(rows=rows, base_sha=sha, base_branch=base, rules=tuple(rules), files=dict(files),
                    patch_sha256=patch_sha, adopter_version=version)


def check_patch_file(folder: Path, artifact: Artifact) -> None:
    """The patch is never applied; it must still be the one the results describe, so that what a
    reviewer reads in the artifact is what the results were measured on."""
    path = folder / PATCH_NAME
    present = os.path.lexists(path)
    if artifact.patch_sha256 is None:
        if present:
            raise ArtifactError(f"the artifact holds an {PATCH_NAME} that its results do not describe; refusing it")
        return
    if not present:
        raise ArtifactError(f"the artifact's results describe an {PATCH_NAME}, but it is missing; refusing it")
    if file_digest(path, MAX_PATCH_BYTES) != artifact.patch_sha256:
        raise ArtifactError(f"the artifact's {PATCH_NAME} is not the patch its results describe (altered?); "
                            "refusing it")
