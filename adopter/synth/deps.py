"""Declare the kernels' packages in the analysed project's dependency list (SPEC section 4).

The project root is the nearest folder upwards with a ``pyproject.toml``, a
``requirements*.txt``, a ``setup.py`` or ``.git``.  A requirement already declared (by
name, PEP 503-normalised, any version) is left alone.  Otherwise it goes, in this order of
preference, into ``[project].dependencies`` of ``pyproject.toml`` (an existing array, edited
as text so comments and layout stay), ``requirements.txt`` (or the only
``requirements*.txt``), a new ``dependencies`` key of an existing ``[project]`` table, or
``[tool.poetry.dependencies]``; the edited ``pyproject.toml`` is re-read with ``tomllib``
to make sure it says exactly what was meant.  When none of these exists the user is told
what to add.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..source import SourceError, SourceFile, decode

MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    found = NAME.match(requirement)
    return normalise(found.group(1)) if found else normalise(requirement.strip())


def project_root(path: Path) -> Path | None:
    folder = path.resolve()
    if not folder.is_dir():
        folder = folder.parent
    while True:
        if any((folder / marker).exists() for marker in MARKERS) or any(folder.glob("requirements*.txt")):
            return folder
        if folder.parent == folder:
            return None
        folder = folder.parent


@dataclass
class DependencyEdit:
    """What to do to one project's dependency file (``source`` is None for a new file)."""

    path: Path
    source: SourceFile | None
    old: str
    new: str
    added: list[str] = field(default_factory=list)


def _read(path: Path) -> SourceFile | None:
    if not path.is_file():
        return None
    try:
        return decode(path.read_bytes(), str(path))
    except (OSError, SourceError):
        return None


def _requirements_file(root: Path) -> Path | None:
    main = root / "requirements.txt"
    if main.is_file():
        return main
    found = sorted(p for p in root.glob("requirements*.txt") if p.is_file())
    return found[0] if len(found) == 1 else None


def _declared_in_requirements(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        names.add(requirement_name(line))
    return names


def plan_dependencies(root: Path, requirements: set[str]) -> tuple[DependencyEdit | None, str | None]:
    """The edit that declares ``requirements`` in ``root``'s project, or a message why none."""
    wanted = sorted(requirements)
    if not wanted:
        return None, None
    pyproject_path = root / "pyproject.toml"
    pyproject = _read(pyproject_path)
    data: dict = {}
    if pyproject is not None:
        try:
            data = tomllib.loads(pyproject.text)
        except tomllib.TOMLDecodeError as exc:
            return None, f"{pyproject_path}: cannot read ({exc}); add {', '.join(wanted)} to your dependencies"
    project = data.get("project") if isinstance(data.get("project"), dict) else None
    declared: set[str] = set()
    if project is not None:
        if isinstance(project.get("name"), str):
            declared.add(normalise(project["name"]))
        for item in project.get("dependencies", []) or []:
            if isinstance(item, str):
                declared.add(requirement_name(item))
    poetry = data.get("tool", {}).get("poetry", {}) if isinstance(data.get("tool"), dict) else {}
    poetry_deps = poetry.get("dependencies") if isinstance(poetry, dict) else None
    if isinstance(poetry_deps, dict):
        declared |= {normalise(k) for k in poetry_deps}
        if isinstance(poetry.get("name"), str):
            declared.add(normalise(poetry["name"]))
    requirements_path = _requirements_file(root)
    requirements_source = _read(requirements_path) if requirements_path else None
    if requirements_source is not None:
        declared |= _declared_in_requirements(requirements_source.text)
    missing = [r for r in wanted if requirement_name(r) not in declared]
    if not missing:
        return None, None

    dynamic = project is not None and "dependencies" in (project.get("dynamic") or [])
    if project is not None and isinstance(project.get("dependencies"), list):
        new = _add_to_array(pyproject.text, missing)
        if new is not None and _check(new, project["dependencies"], missing):
            return DependencyEdit(pyproject_path, pyproject, pyproject.text, new, missing), None
        return None, f"{pyproject_path}: could not edit [project].dependencies; add {', '.join(missing)} by hand"
    if requirements_source is not None:
        text = requirements_source.text
        if text and not text.endswith("\n"):
            text += "\n"
        new = text + "".join(f"{r}\n" for r in missing)
        return DependencyEdit(requirements_path, requirements_source, requirements_source.text, new, missing), None
    if project is not None and not dynamic:
        new = _add_key(pyproject.text, missing)
        if new is not None and _check(new, [], missing):
            return DependencyEdit(pyproject_path, pyproject, pyproject.text, new, missing), None
    if isinstance(poetry_deps, dict):
        new = _add_poetry(pyproject.text, missing)
        if new is not None:
            return DependencyEdit(pyproject_path, pyproject, pyproject.text, new, missing), None
    return None, f"{root}: no dependency list found; add {', '.join(missing)} to your project's dependencies"


def _check(text: str, before: list, added: list[str]) -> bool:
    try:
        after = tomllib.loads(text).get("project", {}).get("dependencies")
    except tomllib.TOMLDecodeError:
        return False
    return after == [*before, *added]


# ----------------------------------------------------------------------------- TOML text


def _table_bounds(text: str, header: str) -> tuple[int, int] | None:
    """Start (after the header line) and end offsets of a TOML table."""
    found = re.search(rf"^[ \t]*\[{re.escape(header)}\][ \t]*(#[^\n]*)?$", text, re.M)
    if not found:
        return None
    start = found.end() + 1 if found.end() < len(text) else found.end()
    following = re.search(r"^[ \t]*\[", text[start:], re.M)
    end = start + following.start() if following else len(text)
    return start, end


def _scan_array(text: str, open_at: int) -> tuple[int, int | None] | None:
    """For the array opening at ``open_at``: (offset of its ``]``, offset after its last
    significant character before the ``]``, or None when it is empty)."""
    depth = 0
    i = open_at
    last = None
    while i < len(text):
        ch = text[i]
        if ch == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if ch in "\"'":
            triple = text[i:i + 3] == ch * 3
            quote = ch * 3 if triple else ch
            j = i + len(quote)
            while j < len(text):
                if ch == '"' and text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(quote, j):
                    break
                j += 1
            i = j + len(quote)
            last = i
            continue
        if ch == "[":
            depth += 1
            if depth > 1:
                last = i + 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i, last
            last = i + 1
        elif not ch.isspace():
            last = i + 1
        i += 1
    return None


def _quote(requirement: str) -> str:
    return '"' + requirement.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _add_to_array(text: str, added: list[str]) -> str | None:
    bounds = _table_bounds(text, "project")
    if bounds is None:
        return None
    start, end = bounds
    key = re.search(r"^[ \t]*dependencies[ \t]*=[ \t]*\[", text[start:end], re.M)
    if not key:
        return None
    open_at = start + key.end() - 1
    scanned = _scan_array(text, open_at)
    if scanned is None:
        return None
    close_at, last = scanned
    items = [_quote(r) for r in added]
    body = text[open_at + 1:close_at]
    if "\n" not in body:
        if last is None:
            return text[:open_at + 1] + ", ".join(items) + text[close_at:]
        sep = " " if text[last - 1] == "," else ", "
        return text[:last] + sep + ", ".join(items) + text[last:]
    if last is None:
        line_start = text.rfind("\n", 0, open_at) + 1
        indent = re.match(r"[ \t]*", text[line_start:]).group(0) + "    "
        insert = "".join(f"\n{indent}{item}," for item in items)
        return text[:open_at + 1] + insert + text[open_at + 1:]
    line_start = text.rfind("\n", 0, last) + 1
    indent = re.match(r"[ \t]*", text[line_start:]).group(0)
    line_end = text.find("\n", last)
    if line_end < 0 or line_end > close_at:
        # The last item shares its line with the closing bracket: `"b"]`.
        comma = "" if text[last - 1] == "," else ","
        return text[:last] + comma + "".join(f"\n{indent}{item}," for item in items) + "\n" + text[last:]
    comma = "" if text[last - 1] == "," else ","
    insert = "".join(f"\n{indent}{item}," for item in items)
    return text[:last] + comma + text[last:line_end] + insert + text[line_end:]


def _body_end(text: str, table: str) -> int | None:
    """Where to append to a TOML table: after its last non-blank line."""
    bounds = _table_bounds(text, table)
    if bounds is None:
        return None
    body_end = bounds[1]
    while body_end > 0 and text[body_end - 1] in " \t\n":
        body_end -= 1
    return body_end


def _add_key(text: str, added: list[str]) -> str | None:
    body_end = _body_end(text, "project")
    if body_end is None:
        return None
    line = "dependencies = [" + ", ".join(_quote(r) for r in added) + "]"
    return text[:body_end] + "\n" + line + text[body_end:]


def _add_poetry(text: str, added: list[str]) -> str | None:
    body_end = _body_end(text, "tool.poetry.dependencies")
    if body_end is None:
        return None
    lines = []
    for requirement in added:
        name = NAME.match(requirement)
        spec = requirement[name.end():].strip() if name else ""
        lines.append(f'{name.group(1) if name else requirement} = "{spec or "*"}"')
    return text[:body_end] + "\n" + "\n".join(lines) + text[body_end:]
