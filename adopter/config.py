"""``[tool.adopter]`` in pyproject.toml, found by walking up from the analysed files.

Keys: ``select``, ``ignore`` (lists of rule ids or names), ``exclude`` (glob patterns,
relative to the config file's folder), ``rule-paths`` (extra rule folders), ``target``
(``cpu`` or ``cuda``), ``file-timeout`` (seconds one file may take, 0 for no limit), and
``[tool.adopter.verify]`` (factories for non-HF classes).
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
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


@lru_cache(maxsize=256)
def _load(pyproject: Path) -> Config | None:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: {exc}") from None
    section = data.get("tool", {}).get("adopter")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{pyproject}: [tool.adopter] must be a table")
    root = pyproject.parent
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
        verify=dict(section.get("verify", {})),
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
    """Expand files and folders into Python files; return (files, errors)."""
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists() and not path.is_symlink():
            errors.append((raw, "no such file or directory"))
            continue
        if path.is_dir():
            found = 0
            for folder, dirs, names in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules"))
                for name in sorted(names):
                    if name.endswith(".py"):
                        full = Path(folder) / name
                        if config_for(full).excludes(full):
                            continue
                        key = os.path.realpath(full)
                        if key not in seen:
                            seen.add(key)
                            files.append(full)
                            found += 1
            if not found:
                errors.append((raw, "no Python files in this directory"))
        else:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files, errors
