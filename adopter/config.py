"""``[tool.adopter]`` in pyproject.toml, found by walking up from the analysed files.

Keys: ``select``, ``ignore`` (lists of rule ids or names), ``exclude`` (glob patterns,
relative to the config file's folder), ``rule-paths`` (extra rule folders), ``target``
(``cpu`` or ``cuda``), ``file-timeout`` (seconds one file may take, 0 for no limit),
``respect-gitignore`` (walk folders as git sees them; default true) and
``[tool.adopter.verify]`` (factories for non-HF classes).  Any other key is an error that
names it and suggests the key it was probably meant to be (``selct`` -> ``select``): a
misspelt key silently ignored is a setting the user believes in and does not have.
"""

from __future__ import annotations

import fnmatch
from .records import dataclass, field
from functools import lru_cache
from pathlib import Path


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    root: Path | None = None
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    rule_paths: tuple[Path, ...] = ()
    target: str | None = None
    file_timeout: float | None = None
    respect_gitignore: bool = True
    verify: dict = field(default_factory=dict, hash=False, compare=False)

    def excludes(self, path: Path) -> bool:
        if not self.exclude:
            return False
        try:
            rel = path.resolve().relative_to(self.root.resolve()).as_posix() if self.root else path.as_posix()
        except ValueError:
            rel = path.as_posix()
        parts = rel.split("/")
        for pattern in self.exclude:
            if fnmatch.fnmatch(rel, pattern) or any(fnmatch.fnmatch(p, pattern.rstrip("/")) for p in parts):
                return True
        return False


def _list(value, key: str, path: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{path}: [tool.adopter] {key} must be a list of strings")


KEYS = ("select", "ignore", "exclude", "rule-paths", "target", "file-timeout", "respect-gitignore", "verify")


def unknown_key_message(key: str, known=KEYS) -> str:
    import difflib  # only for a suggestion: not on the start-up path
    close = difflib.get_close_matches(key.replace("_", "-"), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known keys: {', '.join(known)})"
    return f"unknown key {key!r} in [tool.adopter]{hint}"


def _may_hold_table(raw: bytes) -> bool:
    """Could this TOML text define ``tool.adopter``?  Only through a table header that names
    ``adopter`` (``[tool.adopter]``, ``[ tool . "adopter" ]``, ``[[tool.adopter.x]]``), a
    ``[tool]`` header (then ``adopter = {...}`` or ``adopter.select = ...`` under it), or a
    key ``tool`` (``tool.adopter.select = ...``, ``tool = {adopter = {...}}``).  True for
    every such line wherever it stands (in a multi-line string too): a file this answers
    False for cannot hold the table."""
    import re

    return re.search(rb"^[ \t]*\[[^\n]*adopter"
                     rb"|^[ \t]*\[[ \t]*[\"']?tool[\"']?[ \t]*\]"
                     rb"|^[ \t]*[\"']?tool[\"']?[ \t]*[.=]", raw, re.MULTILINE) is not None


@lru_cache(maxsize=256)
def _load(pyproject: Path) -> Config | None:
    """The ``[tool.adopter]`` table of ``pyproject`` (None: it has none).

    A file whose text never says ``adopter`` cannot have the table (a key spelled with
    escapes, ``"\\u0061dopter"``, is the only way round that), so it is not parsed: most
    projects' pyproject.toml has no such table, and the TOML parser's imports (tomllib,
    datetime, typing) were a twentieth of a one-file check.  Nor is a file where ``adopter``
    is only a value or another table's key (a dependency, a script's name: the project's
    own pyproject.toml, or one that depends on the tool), which :func:`_may_hold_table`
    tells from the lines that could open the table.  Such a file is not checked for TOML
    errors either; that is the business of the tools whose tables it holds."""
    from .source import SourceError, read_regular

    try:
        raw = read_regular(str(pyproject), 4 * 1024 * 1024)
    except SourceError:
        return None
    if b"adopter" not in raw or not _may_hold_table(raw):
        return None
    import tomllib  # here: most folders have no pyproject.toml to read

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: {exc}") from None
    section = data.get("tool", {}).get("adopter")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{pyproject}: [tool.adopter] must be a table")
    for key in section:
        if key not in KEYS:
            raise ConfigError(f"{pyproject}: {unknown_key_message(key)}")
    root = pyproject.parent
    respect = section.get("respect-gitignore", True)
    if not isinstance(respect, bool):
        raise ConfigError(f"{pyproject}: [tool.adopter] respect-gitignore must be true or false")
    verify = section.get("verify", {})
    if not isinstance(verify, dict):
        raise ConfigError(f"{pyproject}: [tool.adopter] verify must be a table")
    target = section.get("target")
    if target not in (None, "cpu", "cuda"):
        raise ConfigError(f"{pyproject}: [tool.adopter] target must be 'cpu' or 'cuda'")
    file_timeout = section.get("file-timeout")
    if file_timeout is not None:
        from .budget import parse_seconds

        if isinstance(file_timeout, bool):
            raise ConfigError(f"{pyproject}: [tool.adopter] file-timeout must be a number of seconds")
        try:
            file_timeout = parse_seconds(file_timeout)
        except ValueError as exc:
            raise ConfigError(f"{pyproject}: [tool.adopter] {exc}") from None
    return Config(
        root=root,
        select=_list(section.get("select", []), "select", pyproject),
        ignore=_list(section.get("ignore", []), "ignore", pyproject),
        exclude=_list(section.get("exclude", []), "exclude", pyproject),
        rule_paths=tuple(root / p for p in _list(section.get("rule-paths", []), "rule-paths", pyproject)),
        target=target,
        file_timeout=file_timeout,
        respect_gitignore=respect,
        verify=dict(verify),
    )


def find_config(start: Path) -> Config:
    """The nearest ``pyproject.toml`` with a ``[tool.adopter]`` table above ``start``."""
    folder = start.resolve()
    if not folder.is_dir():
        folder = folder.parent
    while True:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            config = _load(candidate)
            if config is not None:
                return config
        if folder.parent == folder or (folder / ".git").exists():
            return Config()
        folder = folder.parent


def iter_python_files(paths: list[str], config_for) -> tuple[list[Path], list[tuple[str, str]]]:
    """The Python files (no notebooks) of ``paths``, as :func:`adopter.discovery.discover`
    finds them; for ``adopter verify``, which imports modules and so cannot take notebooks."""
    from .discovery import discover, is_notebook

    found = discover(paths, config_for)
    return [p for p in found.files if not is_notebook(p)], found.errors
