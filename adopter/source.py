"""Read a Python file the way Python does, and write it back in the same form, atomically.

Reading honours a BOM and a PEP 263 coding cookie and remembers the line endings; it refuses,
with a one-line reason, what is not Python source: a file that is not a regular file (a FIFO
would block the hook forever), larger than :data:`MAX_BYTES`, with NUL bytes, or that does not
decode.

Every read (:func:`read_regular`: sources, notebooks, rule files, ``pyproject.toml``,
``.gitignore``) opens the file non-blocking and checks the open descriptor with ``fstat``, so a
file replaced by a FIFO between discovery and reading is refused instead of blocking forever.

Writing re-encodes with the same encoding, BOM and line endings (a file with mixed endings
keeps each untouched line's own, and new lines get the most common one), keeps the file mode
and, where allowed, its owner, goes through a temporary file in the file's real folder plus
``os.replace`` (never a half-written file, never a ``.py`` left behind), refuses a read-only
file, and refuses to overwrite a file whose bytes changed since they were read: that is
checked once more after the new content is on disk, right before the replace.  The temporary
file's name holds the writing process's id, so that one left by a killed run is recognised and
removed by the next run (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import io
import os
import re
import stat
import tokenize
from .records import dataclass

#: Larger files are refused: parsing 10 MB of Python takes tens of seconds and gigabytes of
#: memory, in C code that no time budget can interrupt.  The largest file of transformers,
#: diffusers, timm and torchvision is 0.33 MB.
MAX_BYTES = 2 * 1024 * 1024

#: A notebook's JSON holds its outputs (images, tables) besides the code: it may be larger.
#: Its code cells together are still held to :data:`MAX_BYTES`.
MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024

#: Temporary files are named ``.NAME.adopter-PID-RANDOM.tmp`` next to the file they replace.
#: A run killed between creating one and the rename (``kill -9``) leaves it behind; the next
#: run removes those whose process is gone (:func:`remove_stale_temporaries`).
_TEMP = re.compile(r"^\..+\.adopter-(?:(?P<pid>\d+)-)?[A-Za-z0-9_]+\.tmp$")

#: Called with the path right before the final check and the replace.  Only tests set it, to
#: change the file at the worst moment and prove the change is detected.
before_replace = None

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class SourceError(Exception):
    """A file that cannot be read or written; the message is one line for the user."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str  # with '\n' line endings
    encoding: str
    bom: bool
    newline: str  # the most common line ending
    digest: str
    raw: str | None = None  # the decoded text with its own line endings, kept only when they are mixed


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _newlines(text: str) -> tuple[str, bool]:
    """The most common line ending of ``text`` and whether several kinds occur."""
    crlf = text.count("\r\n")
    counts = {"\n": text.count("\n") - crlf, "\r\n": crlf, "\r": text.count("\r") - crlf}
    kinds = [k for k, n in counts.items() if n]
    if not kinds:
        return "\n", False
    return max(kinds, key=lambda k: counts[k]), len(kinds) > 1


def decode(data: bytes, path: str = "<bytes>") -> SourceFile:
    if b"\x00" in data:
        raise SourceError("file contains NUL bytes; not Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise SourceError(f"cannot determine the encoding: {exc}") from None
    bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8):] if bom else data
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"cannot decode as {encoding}: {exc.reason if hasattr(exc, 'reason') else exc}") from None
    newline, mixed = _newlines(text)
    raw = text if mixed else None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return SourceFile(path, text, encoding, bom, newline, _digest(data), raw)


def _os_message(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return (exc.strerror or str(exc)).lower()


def read_regular(path: str, limit: int = MAX_BYTES, *, what: str = "file") -> bytes:
    """The bytes of a regular file, at most ``limit`` of them, never blocking.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor (not a
    ``stat`` before the open, which a file replaced by a FIFO in between would defeat): a pipe,
    socket or device is refused instead of hanging the run, a folder too.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SourceError(f"cannot read: {_os_message(exc)}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SourceError("is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise SourceError("not a regular file (a pipe, socket or device); skipped")
        if info.st_size > limit:
            raise SourceError(f"{what} is too large to analyse ({_mib(info.st_size)}, limit {_mib(limit)})")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SourceError(f"cannot read: {_os_message(exc)}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SourceError(f"{what} is too large to analyse (over {_mib(limit)})")
    return data


def read_head(path: str, size: int) -> bytes:
    """The first ``size`` bytes of a regular file (to sniff a ``#!`` line), never blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SourceError(f"cannot read: {_os_message(exc)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError("not a regular file")
        return os.read(fd, size)
    except OSError as exc:
        raise SourceError(f"cannot read: {_os_message(exc)}") from None
    finally:
        os.close(fd)


def read_source(path: str) -> SourceFile:
    return decode(read_regular(path, MAX_BYTES), path)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _split_lines(text: str) -> list[str]:
    return _LINE.findall(text)


def _restore_newlines(raw: str, new: str, newline: str) -> str:
    """``new`` (``\\n`` endings) with the original ending on every line kept from ``raw``."""
    old_lines = _split_lines(raw)
    old_bodies = [line.rstrip("\r\n") for line in old_lines]
    new_lines = new.split("\n")
    ends_with_newline = new.endswith("\n")
    if ends_with_newline:
        new_lines.pop()
    out: list[str] = []
    import difflib  # only here: not on the check path's start-up
    matcher = difflib.SequenceMatcher(None, old_bodies, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for offset, j in enumerate(range(j1, j2)):
            body = new_lines[j]
            last = j == len(new_lines) - 1
            if not last or ends_with_newline:
                ending = newline
                if tag == "equal":
                    ending = old_lines[i1 + offset][len(body):] or newline
            else:
                ending = ""
            out.append(body + ending)
    return "".join(out)


def encode(source: SourceFile, text: str) -> bytes:
    if source.raw is not None:
        text = _restore_newlines(source.raw, text, source.newline)
    elif source.newline != "\n":
        text = text.replace("\n", source.newline)
    try:
        data = text.encode(source.encoding)
    except UnicodeEncodeError as exc:
        raise SourceError(f"the new text cannot be written as {source.encoding} ({exc.reason}); left as it is") from None
    return (codecs.BOM_UTF8 + data) if source.bom else data


def _unchanged(path: str, source: SourceFile, limit: int) -> None:
    try:
        current = read_regular(path, limit)
    except SourceError as exc:
        raise SourceError(f"file changed while it was being fixed ({exc}); left as it is") from None
    if _digest(current) != source.digest:
        raise SourceError("file changed while it was being fixed; left as it is (run fix again)")


def write_source(source: SourceFile, text: str) -> None:
    """Replace the file with ``text`` in the original's encoding, BOM and line endings.

    Raises :class:`SourceError` (and leaves the file exactly as it is) when the file is
    read-only, changed since it was read, or cannot be written.
    """
    data = encode(source, text)
    path = source.path
    target = os.path.realpath(path)  # a symlink stays a symlink; its target gets the new text
    try:
        info = os.stat(target)
    except OSError as exc:
        raise SourceError(f"cannot write: {_os_message(exc)}") from None
    mode = stat.S_IMODE(info.st_mode)
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise SourceError("file is read-only; left as it is")
    _unchanged(target, source, MAX_NOTEBOOK_BYTES)
    try:
        import tempfile  # only here: not on the check path's start-up
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.adopter-{os.getpid()}-", suffix=".tmp",
                                   dir=os.path.dirname(target))
    except OSError as exc:
        raise SourceError(f"cannot write: {_os_message(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if hasattr(os, "chown") and (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(tmp, info.st_uid, info.st_gid)
            except OSError:
                pass  # only root may give a file away; the content and mode are what matter
        if before_replace is not None:
            before_replace(path)
        _unchanged(target, source, MAX_NOTEBOOK_BYTES)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise SourceError(f"cannot write: {_os_message(exc)}") from None
        raise
    _sync_folder(os.path.dirname(target))


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str, *, legacy_age: float = 600.0) -> list[str]:
    """Remove the temporary files that killed runs left in ``folder``; return their names.

    A temporary file whose creating process is gone is removed; one in the older format
    (no process id in its name) once it is ``legacy_age`` seconds old.  A live run's
    temporary file is never touched: its process still exists.
    """
    import time

    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        found = _TEMP.match(entry.name)
        if not found:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            pid = found.group("pid")
            if pid is not None:
                if int(pid) == os.getpid() or _alive(int(pid)):
                    continue
            elif now - entry.stat(follow_symlinks=False).st_mtime < legacy_age:
                continue
            os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            continue
    return removed
