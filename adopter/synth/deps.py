"""Declare what patched code needs where the analysed project declares its dependencies.

A patch imports a package (``adopter-kernels``) or needs a newer one (``torch>=2.4`` for
``F.rms_norm``).  :func:`plan_dependencies` turns those requirements into edits of the
project's own files (:mod:`adopter.synth.manifests` reads and edits each kind):

- a package the project already declares, in any of its files, keeps its place; its
  declaration is strengthened where it admits versions below the floor a patch needs
  (``torch`` -> ``torch>=2.4``, ``torch>=1.13,<3`` -> ``torch>=2.4,<3``) or lacks an extra;
- a package it does not declare goes into the package metadata - ``[project].dependencies``,
  Poetry's table, ``setup.cfg``'s or ``setup.py``'s ``install_requires`` - else into
  ``requirements.txt`` (or the file a dynamic ``dependencies`` names), else the user is told.

:func:`unavailable` says which kernels a project cannot take at all: a package whose Python
floor is above the project's ``requires-python`` (``adopter-kernels`` needs 3.9), or a
declaration that excludes every version the patch needs (``torch==2.1.0`` for ``F.rms_norm``).
``adopter fix`` and the bot leave those patches out and say why.

The project root is the nearest folder upwards with a ``pyproject.toml``, ``setup.py``,
``setup.cfg``, ``requirements*.txt`` or ``.git``.  Each edited file is read back, so an edit
that does not say exactly what was meant is reported instead of written; a second run finds
every requirement declared and changes nothing.
"""

from __future__ import annotations

from ..records import replace as replace_fields
import tomllib
from ..records import dataclass, field
from pathlib import Path
from typing import Iterable

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..source import SourceFile
from . import manifests as mf

MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def project_root(path: Path) -> Path | None:
    try:
        folder = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the file is reported as unreadable elsewhere
        folder = path.absolute().parent
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
    """What to do to one dependency file: ``added`` lists the requirements it declares
    (``torch>=2.4``), ``said`` the same in words (``torch>=2.4 (was torch)``)."""

    path: Path
    source: SourceFile | None
    old: str
    new: str
    added: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


class _Conflict(Exception):
    pass


def _floor(req: Requirement) -> Version | None:
    floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return max(floors) if floors else None


def _version(text: str) -> Version | None:
    try:
        return Version(text.replace(".*", ""))
    except InvalidVersion:
        return None


def implies_floor(spec: SpecifierSet, floor: Version | None) -> bool:
    """Whether every version ``spec`` admits is at least ``floor``."""
    if floor is None:
        return True
    for s in spec:
        v = _version(s.version)
        if v is not None and s.operator in (">=", ">", "~=", "==", "===") and v >= floor:
            return True
    return False


def excludes_floor(spec: SpecifierSet, floor: Version | None) -> bool:
    """Whether ``spec`` admits no version at or above ``floor`` (a pin or cap below it)."""
    if floor is None:
        return False
    release = [*floor.release, 0][:2]
    candidates = [floor, *(Version(f"{release[0]}.{release[1] + k}") for k in range(1, 40)),
                  *(Version(f"{release[0] + k}.0") for k in range(1, 6))]
    candidates += [v for s in spec if (v := _version(s.version)) is not None and v >= floor]
    return not any(spec.contains(v, prereleases=True) for v in candidates)


def _raised(spec: SpecifierSet, floor: Version) -> list[str]:
    keep = [str(s) for s in spec
            if not (s.operator in (">=", ">") and (_version(s.version) or floor) < floor)]
    return [f">={floor}", *sorted(keep)]


def _strengthen(decl: mf.Declaration, req: Requirement) -> str | None:
    """The declaration rewritten to admit only what ``req`` needs, or None when it already does."""
    floor = _floor(req)
    missing = set(req.extras) - decl.extras
    if decl.specifier is None:
        if floor is not None:
            raise _Conflict(f"cannot read the constraint {decl.text!r}; make sure it requires {req}")
        spec = []
    elif implies_floor(decl.specifier, floor):
        if not missing:
            return None
        spec = sorted(str(s) for s in decl.specifier)
    elif excludes_floor(decl.specifier, floor):
        raise _Conflict(f"declares {decl.text!r}, which excludes {req}")
    else:
        spec = _raised(decl.specifier, floor)
    if decl.key is None:
        raise _Conflict(f"declares {decl.text!r} with hashes; change it to {req} by hand")
    name = decl.written
    extras = sorted(decl.extras | set(req.extras))
    text = name + (f"[{','.join(extras)}]" if extras else "") + ",".join(spec)
    if decl.marker:  # as the file wrote it
        text += "; " + (decl.text.split(";", 1)[1].strip() if ";" in decl.text else decl.marker)
    Requirement(text)  # what we write must parse
    return text


def _merge(requirements: Iterable[str]) -> dict[str, Requirement]:
    """One requirement per package: the extras of all, the highest floor."""
    merged: dict[str, Requirement] = {}
    for text in sorted(requirements):
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in merged:
            old = merged[name]
            floors = [f for f in (_floor(old), _floor(req)) if f is not None]
            extras = sorted(set(old.extras) | set(req.extras))
            req = Requirement(old.name + (f"[{','.join(extras)}]" if extras else "")
                              + (f">={max(floors)}" if floors else ""))
        merged[name] = req
    return merged


def _primary(manifests: list[mf.Manifest]) -> mf.Manifest | None:
    """Where a new requirement goes: the package metadata's list, else requirements.txt, else
    a new ``dependencies`` key of a ``[project]`` table."""
    def rank(m: mf.Manifest) -> int:
        if isinstance(m, mf.Pep621):
            return 0 if m.listed else 5
        return {"poetry": 1, "setup.cfg": 2, "setup.py": 3, "requirements": 4}.get(m.kind, 6)

    usable = [m for m in manifests if m.can_add]
    return min(usable, key=rank) if usable else None


def _reparse(manifest: mf.Manifest, text: str) -> mf.Manifest:
    source = replace_fields(manifest.source, text=text)
    if isinstance(manifest, (mf.Pep621, mf.Poetry)):
        return type(manifest)(manifest.path, source, tomllib.loads(text))
    return type(manifest)(manifest.path, source)


def _declares(manifest: mf.Manifest, wanted: dict[str, Requirement]) -> bool:
    """Read back: every wanted package is declared in the edited file with its floor and extras."""
    found = {d.name: d for d in manifest.declarations()}
    for name, req in wanted.items():
        decl = found.get(name)
        if decl is None or decl.specifier is None or not implies_floor(decl.specifier, _floor(req)):
            return False
        if not set(req.extras) <= decl.extras:
            return False
    return True


def plan_dependencies(root: Path, requirements: set[str]) -> tuple[list[DependencyEdit], list[str]]:
    """The edits that declare ``requirements`` in ``root``'s project, and notes for the user
    (what could not be declared, and why)."""
    if not requirements:
        return [], []
    wanted = _merge(requirements)
    every = ", ".join(str(r) for r in wanted.values())
    try:
        manifests, own = mf.discover(root)
    except mf.ManifestError as exc:
        return [], [f"{exc}; add {every} to your dependencies by hand"]
    if own:
        wanted.pop(canonicalize_name(own), None)
    notes: list[str] = []
    # per manifest: {key: new requirement}, [added requirements], [words], {name: wanted}
    changes: dict[int, tuple[dict, list[str], list[str], dict[str, Requirement]]] = {}

    def slot(m: mf.Manifest):
        return changes.setdefault(id(m), ({}, [], [], {}))

    for name, req in wanted.items():
        declared = [(m, d) for m in manifests for d in m.declarations() if d.name == name]
        for m, d in declared:
            try:
                text = _strengthen(d, req)
            except _Conflict as exc:
                notes.append(f"{m.path}: {exc}")
                continue
            if text is not None:
                replace, _, said, check = slot(m)
                replace[d.key] = text
                said.append(f"{text} (was {d.text})")
                check[name] = req
        if declared:
            continue
        primary = _primary(manifests)
        if primary is None:
            notes.append(f"{root}: no dependency list found; add {req} to your project's dependencies")
            continue
        _, add, said, check = slot(primary)
        add.append(str(req))
        said.append(str(req))
        check[name] = req

    edits: list[DependencyEdit] = []
    texts: dict[Path, tuple[mf.Manifest, str]] = {}
    for m in manifests:
        if id(m) not in changes:
            continue
        replace, add, said, check = changes[id(m)]
        current = m
        if m.path in texts:  # a second table of an already edited file (PEP 621 and Poetry)
            current = _reparse(m, texts[m.path][1])
            replace = {}  # keys of the old text: strengthened in the first pass only
        try:
            new = current.edit(replace, add)
            ok = _declares(_reparse(current, new), check) if check else True
        except Exception as exc:  # noqa: BLE001 - an odd file must not stop the fix
            ok, new = False, None
            notes.append(f"{m.path}: could not edit ({type(exc).__name__}: {exc}); add {', '.join(said)} by hand")
            continue
        if not ok:
            notes.append(f"{m.path}: could not edit {m.label}; add {', '.join(said)} by hand")
            continue
        texts[m.path] = (m, new)
        added = [str(r) for r in check.values()]
        previous = next((e for e in edits if e.path == m.path), None)
        if previous is not None:
            previous.new, previous.added, previous.said = new, previous.added + added, previous.said + said
        else:
            edits.append(DependencyEdit(m.path, m.source, m.text, new, added, said))
    return edits, notes


def _admits_below(project: SpecifierSet, floor: SpecifierSet) -> Version | None:
    """A Python version the project supports and the package does not, if any."""
    for minor in range(0, 21):
        for patch in (0, 99):
            v = Version(f"3.{minor}.{patch}")
            if project.contains(v) and not floor.contains(v):
                return Version(f"3.{minor}")
    return None


def unavailable(root: Path | None, requirements: Iterable[tuple[str, str]]) -> dict[str, str]:
    """For ``(requirement, requires_python)`` pairs, the ones ``root``'s project cannot take,
    each with the reason: its Python floor is above the project's, or the project declares a
    version range that excludes it."""
    if root is None:
        return {}
    try:
        manifests, own = mf.discover(root)
    except mf.ManifestError:
        return {}
    python = next((p for m in manifests if (p := m.python()) is not None), None)
    declared = [(m, d) for m in manifests for d in m.declarations()]
    reasons: dict[str, str] = {}
    for text, requires_python in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if own and canonicalize_name(own) == name:
            continue
        if requires_python and python is not None:
            below = _admits_below(python, SpecifierSet(requires_python))
            if below is not None:
                reasons[text] = (f"{req.name} needs Python {requires_python} and the project supports "
                                 f"Python {python} (so {below})")
                continue
        floor = _floor(req)
        for m, d in declared:
            if d.name == name and d.specifier is not None and excludes_floor(d.specifier, floor):
                reasons[text] = f"{m.path.name} declares {d.text!r}, which excludes {req}"
                break
    return reasons
