"""Which files a run looks at: folders walked with gitignore semantics, files named kept.

A user's project holds more than their code: a virtualenv (``venv/``, ``.venv/``, a conda
env), build output, vendored packages.  ``adopter check .`` must never analyse them and
``adopter fix .`` must never rewrite them.  So a folder is walked the way git and Ruff see it:

* ``.gitignore`` files (every level, with negations, as git reads them: :mod:`pathspec`'s
  ``GitIgnoreSpec``) and ``.git/info/exclude`` apply, from the repository's root down
  (``respect-gitignore = false`` in ``[tool.adopter]`` or ``--no-respect-gitignore`` turns
  this off);
* folders that are environments, not code, are skipped whatever their name: any folder
  holding ``pyvenv.cfg`` (a virtualenv) or ``conda-meta/`` (a conda env), and the usual
  names (dot-folders, ``__pycache__``, ``node_modules``, ``site-packages``, ``venv`` ...);
* ``exclude`` patterns of ``[tool.adopter]`` apply.

A file named on the command line is analysed even when a folder walk would skip it (you
asked for it), unless ``--force-exclude`` is given: pre-commit passes every staged file by
name, and there the excludes must hold too.  A named file must be Python source (``.py``,
``.pyi``, ``.pyw``, or a script whose ``#!`` line names python) or a notebook (``.ipynb``);
anything else is an error, never a silent "clean".
"""

from __future__ import annotations

import os
from .records import dataclass, field
from pathlib import Path

PYTHON_SUFFIXES = (".py", ".pyi", ".pyw")
NOTEBOOK_SUFFIX = ".ipynb"

#: Folder names never walked into (besides every dot-folder): caches, dependency trees and
#: environments by their conventional names.  Environments with other names are recognised
#: by their contents (:func:`_is_environment`).
SKIPPED_FOLDERS = frozenset({
    "__pycache__", "__pypackages__", "node_modules", "site-packages", "venv", "_build", "buck-out",
})


def is_notebook(path: str | os.PathLike) -> bool:
    return str(path).endswith(NOTEBOOK_SUFFIX)


def _is_environment(folder: str) -> bool:
    """A virtualenv (``pyvenv.cfg``) or a conda environment (``conda-meta/``)."""
    return os.path.isfile(os.path.join(folder, "pyvenv.cfg")) or os.path.isdir(os.path.join(folder, "conda-meta"))


def _skipped_name(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_FOLDERS


def _is_python_script(path: Path) -> bool:
    """An extensionless file whose first line is a python ``#!`` line."""
    from .source import SourceError, read_head

    try:
        head = read_head(str(path), 128)
    except SourceError:
        return False
    first = head.split(b"\n", 1)[0]
    return first.startswith(b"#!") and b"python" in first


def kind_of(path: Path) -> str | None:
    """``"python"``, ``"notebook"``, or None for a file that is neither."""
    name = path.name
    if name.endswith(PYTHON_SUFFIXES):
        return "python"
    if name.endswith(NOTEBOOK_SUFFIX):
        return "notebook"
    if "." not in name and _is_python_script(path):
        return "python"
    return None


# --------------------------------------------------------------------------- gitignore

class _Ignores:
    """The ``.gitignore`` rules that apply in each folder, read once per folder."""

    def __init__(self) -> None:
        self._specs: dict[str, object | None] = {}
        self._roots: dict[str, str | None] = {}

    def _spec(self, path: str):
        if path not in self._specs:
            spec = None
            from .source import SourceError, read_regular

            try:
                data = read_regular(path, 1024 * 1024)
            except SourceError:
                data = None
            if data:
                import pathspec

                lines = data.decode("utf-8", "replace").splitlines()
                spec = pathspec.GitIgnoreSpec.from_lines(lines)
            self._specs[path] = spec
        return self._specs[path]

    def own(self, folder: str) -> list[tuple[str, object]]:
        """The specs a folder adds: its ``.gitignore`` (and ``.git/info/exclude`` at a root)."""
        found = []
        if os.path.exists(os.path.join(folder, ".git")):
            spec = self._spec(os.path.join(folder, ".git", "info", "exclude"))
            if spec is not None:
                found.append((folder, spec))
        spec = self._spec(os.path.join(folder, ".gitignore"))
        if spec is not None:
            found.append((folder, spec))
        return found

    def root_of(self, folder: str) -> str | None:
        """The git work tree holding ``folder`` (None outside one)."""
        if folder not in self._roots:
            current, root = folder, None
            while True:
                if os.path.exists(os.path.join(current, ".git")):
                    root = current
                    break
                parent = os.path.dirname(current)
                if parent == current:
                    break
                current = parent
            self._roots[folder] = root
        return self._roots[folder]

    def inherited(self, folder: str) -> list[tuple[str, object]]:
        """The specs of ``folder``'s ancestors up to its repository's root, outermost first."""
        root = self.root_of(folder)
        if root is None:
            return []
        chain = []
        current = os.path.dirname(folder)
        while len(current) >= len(root):
            chain.append(current)
            if current == root:
                break
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        specs: list[tuple[str, object]] = []
        for ancestor in reversed(chain):
            specs.extend(self.own(ancestor))
        return specs


def _ignored(path: str, is_dir: bool, specs: list[tuple[str, object]]) -> bool:
    """Git's answer for ``path``: the deepest ``.gitignore`` with a matching pattern decides."""
    for base, spec in reversed(specs):
        rel = os.path.relpath(path, base).replace(os.sep, "/")
        if rel.startswith("../"):
            continue
        result = spec.check_file(rel + "/" if is_dir else rel)
        if result.include is not None:
            return bool(result.include)
    return False


# --------------------------------------------------------------------------- discovery

@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def discover(paths: list[str], config_for, *, force_exclude: bool = False,
             respect_gitignore: bool | None = None) -> Discovery:
    """Expand ``paths`` (files, folders, never ``-``) into the files to analyse.

    ``config_for(path)`` gives the :class:`adopter.config.Config` that applies to a path;
    ``respect_gitignore`` (None: each config's ``respect-gitignore``) overrides it.
    """
    found = Discovery()
    seen: set[str] = set()
    ignores = _Ignores()

    def add(path: Path) -> bool:
        key = os.path.realpath(path)
        if key in seen:
            return False
        seen.add(key)
        found.files.append(path)
        return True

    for raw in paths:
        path = Path(raw)
        if not path.exists() and not path.is_symlink():
            found.errors.append((raw, "no such file or directory"))
            continue
        if path.is_dir():
            added, skipped = _walk(path, config_for, ignores, respect_gitignore, add)
            if not added and not skipped:
                found.errors.append((raw, "no Python files in this directory"))
            elif not added:
                found.errors.append((raw, f"nothing to analyse: {skipped} file(s) or folder(s) here are excluded "
                                          "by exclude patterns or .gitignore (--no-respect-gitignore includes "
                                          "the ignored ones)"))
            continue
        if force_exclude and excluded_by_name(path, config_for(path)):
            continue
        kind = kind_of(path)
        if kind is None:
            if os.path.exists(path):
                found.errors.append((raw, "not a Python file (.py, .pyi) or notebook (.ipynb); not analysed"))
                continue
        add(path)
    return found


def excluded_by_name(path: Path, config) -> bool:
    """``--force-exclude`` for a named file: config excludes, and folders never walked."""
    if config.excludes(path):
        return True
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve()) if path.is_absolute() else path
    except ValueError:
        rel = path
    folders = rel.parts[:-1]
    return any(part not in (".", "..") and _skipped_name(part) for part in folders)


def _walk(top: Path, config_for, ignores: _Ignores, respect, add) -> tuple[int, int]:
    """Walk one folder; return (files added, files and folders skipped by exclude or gitignore).

    Inside a git work tree git itself answers (``git ls-files --cached --others
    --exclude-standard``: every level of ``.gitignore``, ``info/exclude``, the user's global
    excludes file, and tracked files are never ignored); elsewhere the ``.gitignore`` files
    found on the way are read with pathspec."""
    top_abs = os.path.abspath(top)
    top_config = config_for(top / "__init__.py")
    use_gitignore = top_config.respect_gitignore if respect is None else respect
    if use_gitignore and ignores.root_of(top_abs) is not None:
        listed = _git_files(top_abs)
        if listed is not None:
            added, skipped = _add_listed(top, listed, config_for, ignores, respect, add)
            if not added:  # say why there is nothing: count what git ignores here
                skipped += len(_git_files(top_abs, ignored=True) or [])
            return added, skipped
    return _walk_tree(top, config_for, ignores, use_gitignore, add)


def _git_files(top: str, ignored: bool = False) -> list[str] | None:
    """Paths under ``top`` (relative to it) that git does not ignore; None when git cannot
    say (not installed, or ``top`` itself is ignored: then it was named on purpose).
    ``ignored``: the entries git ignores instead (an ignored folder counts once)."""
    import subprocess

    which = ["--others", "--ignored", "--directory"] if ignored else ["--cached", "--others"]
    try:
        proc = subprocess.run(["git", "ls-files", "-z", *which, "--exclude-standard", "--", "."],
                              cwd=top, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    names = [n.decode("utf-8", "surrogateescape") for n in proc.stdout.split(b"\0") if n]
    if not names and not ignored:
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", "."], cwd=top,
                                 capture_output=True, timeout=60, check=False)
        if ignored.returncode == 0:
            return None
    return names


def _add_listed(top: Path, names: list[str], config_for, ignores: _Ignores, respect, add) -> tuple[int, int]:
    added = skipped = 0
    environments: dict[str, bool] = {}
    for name in sorted(set(names), key=lambda n: n.split("/")):
        full = os.path.join(top, name.rstrip("/"))
        parts = name.rstrip("/").split("/")
        if any(_skipped_name(part) for part in parts[:-1] if part not in (".", "..")):
            continue
        folder, blocked = top, False
        for part in parts[:-1]:
            folder = os.path.join(folder, part)
            if folder not in environments:
                environments[folder] = _is_environment(folder)
            if environments[folder]:
                blocked = True
                break
        if blocked:
            continue
        if name.endswith("/") or (os.path.isdir(full) and not os.path.islink(full)):
            # an untracked nested repository or a submodule: its own git decides inside it
            if _skipped_name(parts[-1]) or _is_environment(full):
                continue
            more, less = _walk(Path(full), config_for, ignores, respect, add)
            added, skipped = added + more, skipped + less
            continue
        if not name.endswith(PYTHON_SUFFIXES + (NOTEBOOK_SUFFIX,)) or not os.path.lexists(full):
            continue
        path = Path(top) / name
        if config_for(path).excludes(path):
            skipped += 1
            continue
        if add(path):
            added += 1
    return added, skipped


def _walk_tree(top: Path, config_for, ignores: _Ignores, use_gitignore: bool, add) -> tuple[int, int]:
    added = skipped = 0
    top_abs = os.path.abspath(top)
    specs: dict[str, list] = {}
    if use_gitignore:
        inherited = ignores.inherited(top_abs)
        if _ignored(top_abs, True, inherited):
            # A folder named on the command line that git ignores (a vendored package, a
            # site-packages tree): asked for explicitly, so walked, with its own .gitignore rules.
            inherited = []
        specs[top_abs] = inherited + ignores.own(top_abs)
    for folder, dirs, names in os.walk(top, followlinks=False):
        folder_abs = os.path.abspath(folder)
        here = specs.pop(folder_abs, []) if use_gitignore else []
        kept_dirs = []
        for name in sorted(dirs):
            full = os.path.join(folder_abs, name)
            if _skipped_name(name) or _is_environment(full):
                continue
            if use_gitignore and _ignored(full, True, here):
                skipped += 1
                continue
            if use_gitignore:
                # a nested repository starts afresh; otherwise the parent's rules carry on
                inherited = [] if os.path.exists(os.path.join(full, ".git")) else here
                specs[full] = inherited + ignores.own(full)
            kept_dirs.append(name)
        dirs[:] = kept_dirs
        for name in sorted(names):
            if not name.endswith(PYTHON_SUFFIXES + (NOTEBOOK_SUFFIX,)):
                continue
            full = Path(folder) / name
            if use_gitignore and _ignored(os.path.join(folder_abs, name), False, here):
                skipped += 1
                continue
            if config_for(full).excludes(full):
                skipped += 1
                continue
            if add(full):
                added += 1
    return added, skipped
