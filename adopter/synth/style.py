"""The analysed project's code style, as far as a rewrite must respect it.

A patch is read by a reviewer and then by the project's own linters: its new lines must not
be longer than the project allows, and its new imports must sit where the project's import
sorter puts them.  Both are read from the configuration the project's tools read, found by
walking up from the file (the nearest file that says something wins, as Ruff and Black do):

* line length: Ruff ``line-length`` (``pyproject.toml`` ``[tool.ruff]``, ``ruff.toml``,
  ``.ruff.toml``), Black ``line-length`` (``[tool.black]``), flake8 ``max-line-length``
  (``[flake8]`` in ``setup.cfg``, ``tox.ini``, ``.flake8``).  A formatter configured without
  a length means its default (88); a flake8 section without one means flake8's (79).  With
  nothing configured there is no hard limit: rewrites keep lines under 100 characters where
  the original was (:attr:`Style.configured` is False).
* first-party packages for import sections: ``known-first-party`` of
  ``[tool.ruff.lint.isort]`` / ``[tool.ruff.isort]`` / ``[lint.isort]``, ``known_first_party``
  of ``[tool.isort]`` / ``[isort]`` / ``[settings]`` (``.isort.cfg``), plus, as Ruff and isort
  detect them, the packages and modules at the project root and in its ``src/`` folder.

Reading is cached per folder: ``adopter fix`` over a tree asks once per folder, not per file.
"""

from __future__ import annotations

import configparser
import tomllib
from ..records import dataclass, field
from functools import lru_cache
from pathlib import Path

DEFAULT_FORMATTER_LENGTH = 88
FLAKE8_DEFAULT_LENGTH = 79
UNCONFIGURED_LENGTH = 99  # "under 100" where nothing is configured
ROOT_MARKERS = (".git", ".hg", "pyproject.toml", "setup.cfg", "setup.py")


@dataclass(frozen=True)
class Style:
    line_length: int = UNCONFIGURED_LENGTH
    configured: bool = False  # False: keep lines under 100 only where the original was
    source: str = ""  # where the line length came from (for messages and tests)
    first_party: frozenset[str] = field(default_factory=frozenset)
    indent: str = "    "

    def limit_for(self, original_longest: int) -> int | None:
        """The longest line a rewrite of code whose longest line was ``original_longest`` may
        write; None when there is no limit (nothing configured, and the original was longer)."""
        if self.configured:
            return self.line_length
        return self.line_length if original_longest <= self.line_length else None


def _toml(path: Path) -> dict | None:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None


def _ini(path: Path) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    return parser


def _int(value) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _names(value) -> set[str]:
    if isinstance(value, str):
        return {part.strip() for part in value.replace("\n", ",").split(",") if part.strip()}
    if isinstance(value, list):
        return {str(part).strip() for part in value if str(part).strip()}
    return set()


@dataclass
class _Found:
    length: tuple[int, str] | None = None
    first_party: set[str] = field(default_factory=set)
    isort_found: bool = False


def _read_folder(folder: Path) -> _Found:
    """What the configuration files of one folder say (``length`` None when they say nothing)."""
    found = _Found()
    candidates: list[tuple[int, str]] = []
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        tool = (_toml(pyproject) or {}).get("tool", {})
        if isinstance(tool, dict):
            ruff = tool.get("ruff")
            if isinstance(ruff, dict):
                candidates.append((_int(ruff.get("line-length")) or DEFAULT_FORMATTER_LENGTH, "pyproject.toml [tool.ruff]"))
                lint = ruff.get("lint") if isinstance(ruff.get("lint"), dict) else {}
                for section in (lint.get("isort"), ruff.get("isort")):
                    if isinstance(section, dict):
                        found.isort_found = True
                        found.first_party |= _names(section.get("known-first-party"))
            black = tool.get("black")
            if isinstance(black, dict):
                candidates.append((_int(black.get("line-length")) or DEFAULT_FORMATTER_LENGTH, "pyproject.toml [tool.black]"))
            isort = tool.get("isort")
            if isinstance(isort, dict):
                found.isort_found = True
                found.first_party |= _names(isort.get("known_first_party"))
    for name in ("ruff.toml", ".ruff.toml"):
        path = folder / name
        if path.is_file():
            data = _toml(path) or {}
            candidates.insert(0, (_int(data.get("line-length")) or DEFAULT_FORMATTER_LENGTH, name))
            lint = data.get("lint") if isinstance(data.get("lint"), dict) else {}
            for section in (lint.get("isort"), data.get("isort")):
                if isinstance(section, dict):
                    found.isort_found = True
                    found.first_party |= _names(section.get("known-first-party"))
    for name in ("setup.cfg", "tox.ini", ".flake8", ".isort.cfg"):
        path = folder / name
        if not path.is_file():
            continue
        parser = _ini(path)
        if parser is None:
            continue
        if parser.has_section("flake8"):
            length = _int(parser.get("flake8", "max-line-length", fallback=None)) or _int(
                parser.get("flake8", "max_line_length", fallback=None))
            candidates.append((length or FLAKE8_DEFAULT_LENGTH, f"{name} [flake8]"))
        for section in ("isort", "tool:isort", "settings"):
            if parser.has_section(section) and (section != "settings" or name == ".isort.cfg"):
                found.isort_found = True
                found.first_party |= _names(parser.get(section, "known_first_party", fallback=""))
    if candidates:
        found.length = candidates[0]
    return found


@lru_cache(maxsize=256)
def _style_of_folder(folder: Path) -> Style:
    length: tuple[int, str] | None = None
    first_party: set[str] = set()
    root: Path | None = None
    current = folder
    while True:
        found = _read_folder(current)
        if length is None and found.length is not None:
            length = found.length
        first_party |= found.first_party
        if root is None and any((current / marker).exists() for marker in ROOT_MARKERS):
            root = current
        if current.parent == current or (current / ".git").exists():
            break
        current = current.parent
    if root is not None:
        for base in (root, root / "src"):
            try:
                entries = list(base.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and (entry / "__init__.py").is_file():
                    first_party.add(entry.name)
                elif entry.suffix == ".py" and entry.stem.isidentifier() and entry.stem != "setup":
                    first_party.add(entry.stem)
    if length is None:
        return Style(first_party=frozenset(first_party))
    return Style(line_length=length[0], configured=True, source=length[1], first_party=frozenset(first_party))


def style_for(path: str | Path | None) -> Style:
    """The style that applies to the file ``path``; the defaults for text that is not a file on
    disk (a rule example, ``fix_text`` on a string), so that its rewrite does not depend on the
    folder the tool happens to run in."""
    if not path:
        return Style()
    file = Path(path)
    if not file.is_file():
        return Style()
    return _style_of_folder(file.resolve().parent)
