"""Read a Python file the way Python does, and write it back in the same form, atomically.

Reading honours a BOM and a PEP 263 coding cookie and remembers the line endings; writing
re-encodes with the same encoding, BOM and line endings, keeps the file mode, goes through a
temporary file in the same folder plus ``os.replace`` (never a half-written file), and
refuses to overwrite a file that changed since it was read.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import stat
import tempfile
import tokenize
from dataclasses import dataclass

MAX_BYTES = 20 * 1024 * 1024


class SourceError(Exception):
    """A file that cannot be read or written; the message is one line for the user."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str  # with '\n' line endings
    encoding: str
    bom: bool
    newline: str
    digest: str


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    newline = "\r\n" if "\r\n" in text else ("\r" if "\r" in text else "\n")
    if newline != "\n":
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return SourceFile(path, text, encoding, bom, newline, _digest(data))


def read_source(path: str) -> SourceFile:
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise SourceError(f"file is too large to analyse ({size} bytes, limit {MAX_BYTES})")
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise SourceError("no such file") from None
    except IsADirectoryError:
        raise SourceError("is a directory") from None
    except OSError as exc:
        raise SourceError(exc.strerror or str(exc)) from None
    return decode(data, path)


def encode(source: SourceFile, text: str) -> bytes:
    if source.newline != "\n":
        text = text.replace("\n", source.newline)
    data = text.encode(source.encoding)
    return (codecs.BOM_UTF8 + data) if source.bom else data


def write_source(source: SourceFile, text: str) -> None:
    """Replace the file with ``text`` in the original's encoding, BOM and line endings."""
    data = encode(source, text)
    path = source.path
    try:
        with open(path, "rb") as handle:
            current = handle.read()
    except OSError as exc:
        raise SourceError(f"cannot re-read before writing: {exc.strerror or exc}") from None
    if _digest(current) != source.digest:
        raise SourceError("file changed while it was being fixed; left as it is")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        fd, tmp = tempfile.mkstemp(prefix=".adopter-", suffix=".py", dir=folder)
    except OSError as exc:
        raise SourceError(f"cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, os.path.realpath(path))
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SourceError(f"cannot write: {exc.strerror or exc}") from None
