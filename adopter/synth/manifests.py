"""The files a Python project declares its dependencies in, read and edited in place.

One class per kind of file: PEP 621 ``[project]`` tables and Poetry tables of
``pyproject.toml`` (tomlkit, which keeps comments and layout), ``setup.cfg``
(``[options] install_requires``: read with configparser, edited line by line and read back),
``setup.py`` (the ``install_requires=`` list of the ``setup()`` call, or the module-level list
it names, edited with LibCST) and ``requirements*.txt`` (one requirement a line).  Every
requirement is parsed with ``packaging``; a line it cannot parse is left alone.

Each manifest says what it declares (:class:`Declaration`), which Pythons the project supports
(``requires-python`` and its equivalents) and returns its new text for a set of changes: some
declarations replaced by a stronger requirement (a version floor, an extra), some requirements
added.  It never writes: :mod:`adopter.synth.deps` decides what changes where.
"""

from __future__ import annotations

import configparser
import re
from ..records import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..source import SourceError, SourceFile, decode


class ManifestError(Exception):
    """A dependency file that cannot be read or edited; the message says which and why."""


@dataclass(frozen=True)
class Declaration:
    """One declared requirement: ``name`` is PEP 503-normalised, ``specifier`` the versions it
    admits (for Poetry, its constraint translated), ``key`` where it is in its file."""

    name: str
    text: str
    specifier: SpecifierSet | None  # None: a constraint we cannot read (left alone)
    extras: frozenset[str]
    marker: str
    key: Any
    written: str  # the name as the file spells it


def parse_requirement(text: str) -> Requirement | None:
    try:
        return Requirement(text.strip())
    except InvalidRequirement:
        return None


def _declaration(text: str, key: Any) -> Declaration | None:
    req = parse_requirement(text)
    if req is None or req.url:
        return None
    return Declaration(canonicalize_name(req.name), text, req.specifier, frozenset(req.extras),
                       str(req.marker) if req.marker else "", key, req.name)


def poetry_specifier(text: str) -> SpecifierSet | None:
    """A Poetry version constraint (``*``, ``^1.2``, ``~1.2``, ``1.2.*``, ``>=1,<2``) as a PEP
    440 specifier set, or None for what it cannot say exactly (``||`` unions)."""
    text = text.strip()
    if "|" in text:
        return None
    text = re.sub(r"(?<=[<>=!~^])\s+", "", text)
    out: list[str] = []
    for part in (p for p in re.split(r"[,\s]+", text) if p):
        try:
            if part == "*":
                continue
            if part.startswith("^"):
                v = Version(part[1:])
                parts = [*v.release, 0, 0][:3]
                first = next((i for i, x in enumerate(parts) if x), 2)
                upper = parts[:first] + [parts[first] + 1]
                out += [f">={part[1:]}", "<" + ".".join(map(str, upper))]
            elif part.startswith("~") and not part.startswith("~="):
                v = Version(part[1:])
                parts = list(v.release)
                upper = [parts[0] + 1] if len(parts) == 1 else [parts[0], parts[1] + 1]
                out += [f">={part[1:]}", "<" + ".".join(map(str, upper))]
            elif part[0].isdigit():
                out.append(f"=={part}")
            else:
                out.append(part)
        except InvalidVersion:
            return None
    try:
        return SpecifierSet(",".join(out))
    except InvalidSpecifier:
        return None


def _specifier(text: str | None) -> SpecifierSet | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


class Manifest:
    """A dependency file; subclasses read and edit one kind."""

    kind = ""
    can_add = True  # whether new requirements can be added here (not only raised)

    def __init__(self, path: Path, source: SourceFile):
        self.path, self.source, self.text = path, source, source.text

    @property
    def label(self) -> str:
        return self.path.name

    def declarations(self) -> list[Declaration]:
        raise NotImplementedError

    def python(self) -> SpecifierSet | None:
        """The project's supported Pythons, when this file says."""
        return None

    def edit(self, replace: dict[Any, str], add: list[str]) -> str:
        """The file's text with the declarations at ``replace``'s keys replaced by its PEP 508
        requirements and ``add``'s appended."""
        raise NotImplementedError


# ----------------------------------------------------------------------------- pyproject.toml


class Pep621(Manifest):
    kind = "pyproject"

    def __init__(self, path: Path, source: SourceFile, data: dict):
        super().__init__(path, source)
        self.project = data["project"]
        # A [project] table without a dependencies key is where new ones go only when no
        # other file lists the project's requirements (research code keeps requirements.txt).
        self.listed = isinstance(self.project.get("dependencies"), list)

    @property
    def label(self) -> str:
        return f"{self.path.name} [project].dependencies"

    def declarations(self) -> list[Declaration]:
        items = self.project.get("dependencies") or []
        found = (_declaration(t, i) for i, t in enumerate(items) if isinstance(t, str))
        return [d for d in found if d is not None]

    def python(self) -> SpecifierSet | None:
        return _specifier(self.project.get("requires-python"))

    def edit(self, replace: dict[Any, str], add: list[str]) -> str:
        import tomlkit

        doc = tomlkit.parse(self.text)
        project = doc["project"]
        if "dependencies" not in project:
            project["dependencies"] = tomlkit.array()
        array = project["dependencies"]
        for index, text in replace.items():
            array[index] = text
        for text in add:
            array.append(text)
        return tomlkit.dumps(doc)


class Poetry(Manifest):
    kind = "poetry"

    def __init__(self, path: Path, source: SourceFile, data: dict):
        super().__init__(path, source)
        self.table = data["tool"]["poetry"]["dependencies"]

    @property
    def label(self) -> str:
        return f"{self.path.name} [tool.poetry.dependencies]"

    def declarations(self) -> list[Declaration]:
        out = []
        for name, value in self.table.items():
            if name == "python":
                continue
            extras: frozenset[str] = frozenset()
            constraint = value
            if isinstance(value, dict):
                if any(k in value for k in ("git", "path", "url", "file")):
                    continue
                constraint = value.get("version", "*")
                extras = frozenset(value.get("extras", []) or [])
            if not isinstance(constraint, str):
                continue  # a list of constraints per marker: left alone
            out.append(Declaration(canonicalize_name(name), constraint, poetry_specifier(constraint), extras, "", name,
                                   name))
        return out

    def python(self) -> SpecifierSet | None:
        value = self.table.get("python")
        return poetry_specifier(value) if isinstance(value, str) else None

    def edit(self, replace: dict[Any, str], add: list[str]) -> str:
        import tomlkit

        doc = tomlkit.parse(self.text)
        table = doc["tool"]["poetry"]["dependencies"]
        for key, text in replace.items():
            req = Requirement(text)
            old = table[key]
            constraint = _poetry_constraint(req, old.get("version", "*") if isinstance(old, dict) else str(old))
            if isinstance(old, dict) or req.extras:
                item = old if isinstance(old, dict) else tomlkit.inline_table()
                item["version"] = constraint
                if req.extras:
                    item["extras"] = sorted(req.extras)
                table[key] = item
            else:
                table[key] = constraint
        for text in add:
            req = Requirement(text)
            constraint = _poetry_constraint(req, "*")
            if req.extras:
                item = tomlkit.inline_table()
                item["version"] = constraint
                item["extras"] = sorted(req.extras)
                table[req.name] = item
            else:
                table[req.name] = constraint
        return tomlkit.dumps(doc)


def _poetry_constraint(req: Requirement, old: str) -> str:
    """The Poetry constraint for ``req``: ``^2.4`` where the old one was a caret of the same
    major version (``^2.0`` raised to 2.4 is ``>=2.4,<3``, which ``^2.4`` says), else the PEP
    440 specifier (Poetry reads ``>=2.4,<3`` too)."""
    spec = ",".join(sorted((str(s) for s in req.specifier), key=lambda s: not s.startswith(">="))) or "*"
    floors = [s.version for s in req.specifier if s.operator == ">="]
    old = old.strip()
    if old.startswith("^") and len(floors) == 1:
        try:
            caret, floor = Version(old[1:]), Version(floors[0])
        except InvalidVersion:
            return spec
        if caret.major == floor.major > 0 and poetry_specifier("^" + floors[0]) == req.specifier:
            return "^" + floors[0]
    return spec


# ----------------------------------------------------------------------------- setup.cfg


class SetupCfg(Manifest):
    kind = "setup.cfg"

    def __init__(self, path: Path, source: SourceFile):
        super().__init__(path, source)
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(self.text)
        except configparser.Error as exc:
            raise ManifestError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
        self.parser = parser
        self.has_requires = parser.has_option("options", "install_requires")
        self.can_add = self.has_requires

    @property
    def label(self) -> str:
        return f"{self.path.name} [options] install_requires"

    def _lines(self) -> tuple[int, int, list[str]] | None:
        """(index of the ``install_requires`` line, index after its last continuation line, lines)."""
        lines = self.text.split("\n")
        section = None
        for i, line in enumerate(lines):
            header = re.match(r"^\[([^\]]+)\]", line)
            if header:
                section = header.group(1).strip()
                continue
            if section == "options" and re.match(r"^install_requires\s*[=:]", line):
                end = i + 1
                while end < len(lines) and (lines[end][:1] in (" ", "\t") or not lines[end].strip()):
                    end += 1
                while end > i + 1 and not lines[end - 1].strip():
                    end -= 1
                return i, end, lines
        return None

    def declarations(self) -> list[Declaration]:
        found = self._lines()
        if found is None:
            return []
        start, end, lines = found
        out = []
        for i in range(start, end):
            text = lines[i].split("=", 1)[1] if i == start else lines[i]
            text = re.split(r"\s#", text, maxsplit=1)[0].strip()
            if text and not text.startswith("#"):
                decl = _declaration(text, i)
                if decl is not None:
                    out.append(decl)
        return out

    def python(self) -> SpecifierSet | None:
        return _specifier(self.parser.get("options", "python_requires", fallback=None))

    def edit(self, replace: dict[Any, str], add: list[str]) -> str:
        found = self._lines()
        if found is None:
            raise ManifestError(f"{self.path}: no [options] install_requires to add to")
        start, end, lines = found
        declared = {d.key: d.text for d in self.declarations()}
        for i, text in replace.items():
            lines[i] = lines[i].replace(declared[i], text, 1)
        if add:
            indent = next((re.match(r"[ \t]*", lines[i]).group(0) for i in range(start + 1, end) if lines[i].strip()),
                          "    ")
            lines[end:end] = [indent + text for text in add]
        new = "\n".join(lines)
        check = configparser.ConfigParser(interpolation=None)
        check.read_string(new)
        return new


# ----------------------------------------------------------------------------- setup.py


class SetupPy(Manifest):
    """``setup(install_requires=[...])`` with a literal list (or a module-level name bound to one)."""

    kind = "setup.py"

    def __init__(self, path: Path, source: SourceFile):
        super().__init__(path, source)
        import libcst as cst

        try:
            self.module = cst.parse_module(self.text)
        except cst.ParserSyntaxError as exc:
            raise ManifestError(f"{path}: cannot parse ({str(exc).splitlines()[0]})") from None
        self.requires_list, self.python_text = _setup_call(self.module)
        self.can_add = self.requires_list is not None

    @property
    def label(self) -> str:
        return f"{self.path.name} install_requires"

    def declarations(self) -> list[Declaration]:
        if self.requires_list is None:
            return []
        out = []
        for i, element in enumerate(self.requires_list.elements):
            value = _string(element.value)
            decl = _declaration(value, i) if value is not None else None
            if decl is not None:
                out.append(decl)
        return out

    def python(self) -> SpecifierSet | None:
        return _specifier(self.python_text)

    def edit(self, replace: dict[Any, str], add: list[str]) -> str:
        import libcst as cst

        if self.requires_list is None:
            raise ManifestError(f"{self.path}: install_requires is not a literal list")
        target = self.requires_list
        elements = list(target.elements)
        for i, text in replace.items():
            old = elements[i].value
            elements[i] = elements[i].with_changes(value=cst.SimpleString(_quoted(text, old.value[-1])))
        quote = elements[0].value.value[-1] if elements and isinstance(elements[0].value, cst.SimpleString) else '"'
        new_list = target.with_changes(elements=elements)
        if add:
            new_list = _append(new_list, [cst.SimpleString(_quoted(text, quote)) for text in add])

        class Swap(cst.CSTTransformer):
            def leave_List(self, original, updated):
                return new_list if original is target else updated

        return self.module.visit(Swap()).code


def _string(node) -> str | None:
    import libcst as cst

    if isinstance(node, cst.SimpleString) and not node.prefix.strip("rR"):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _quoted(text: str, quote: str) -> str:
    if quote not in ("'", '"') or quote in text:
        quote = '"' if '"' not in text else "'"
    return quote + text + quote


def _setup_call(module) -> tuple[Any, str | None]:
    """The list node ``install_requires`` is bound to (directly, or through a module-level
    name), and the ``python_requires`` string, of the file's ``setup()`` call."""
    import libcst as cst

    calls: list[cst.Call] = []
    assigned: dict[str, cst.BaseExpression] = {}

    class Find(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
            if name == "setup":
                calls.append(node)

    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
                    assigned[small.targets[0].target.value] = small.value
    module.visit(Find())
    requires, python = None, None
    for call in calls:
        for arg in call.args:
            keyword = arg.keyword.value if arg.keyword else None
            value = arg.value
            if keyword == "install_requires":
                if isinstance(value, cst.Name):
                    value = assigned.get(value.value)
                if isinstance(value, cst.List) and all(_string(e.value) is not None for e in value.elements):
                    requires = value
            elif keyword == "python_requires":
                python = _string(value)
    return requires, python


def _append(node, values: list) -> Any:
    """``node`` (a LibCST list) with ``values`` appended in its own layout: one a line with the
    elements' indentation when it is multi-line, ``, ``-separated when it is on one line; a
    comment after the last element stays on that element's line."""
    import libcst as cst

    elements = list(node.elements)
    multiline = isinstance(node.lbracket.whitespace_after, cst.ParenthesizedWhitespace)
    if not elements:
        if multiline:
            indent = node.lbracket.whitespace_after.last_line
            new = [cst.Element(v, comma=cst.Comma(whitespace_after=_line_break(indent))) for v in values]
            new[-1] = new[-1].with_changes(comma=cst.Comma())
            return node.with_changes(elements=new, rbracket=node.rbracket.with_changes(
                whitespace_before=_line_break(cst.SimpleWhitespace(""))))
        return node.with_changes(elements=[
            cst.Element(v, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if i < len(values) - 1
                        else cst.MaybeSentinel.DEFAULT) for i, v in enumerate(values)])
    last = elements[-1]
    trailing = isinstance(last.comma, cst.Comma)
    if not multiline:
        sep = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        elements[-1] = last.with_changes(comma=sep)
        for i, value in enumerate(values):
            elements.append(cst.Element(value, comma=sep if i < len(values) - 1 else cst.MaybeSentinel.DEFAULT))
        return node.with_changes(elements=elements)
    indent = node.lbracket.whitespace_after.last_line
    closing = node.rbracket.whitespace_before
    if isinstance(closing, cst.ParenthesizedWhitespace):
        # "last,  # comment\n]": the comment belongs to the last element's line
        break_after_last = closing.with_changes(last_line=indent, indent=True)
        closing_new = closing.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    else:  # "last]" on one line
        break_after_last = _line_break(indent)
        closing_new = closing
    elements[-1] = last.with_changes(comma=cst.Comma(whitespace_after=break_after_last))
    for i, value in enumerate(values):
        final = i == len(values) - 1
        comma = (cst.Comma() if trailing else cst.MaybeSentinel.DEFAULT) if final else cst.Comma(
            whitespace_after=_line_break(indent))
        elements.append(cst.Element(value, comma=comma))
    return node.with_changes(elements=elements, rbracket=node.rbracket.with_changes(whitespace_before=closing_new))


def _line_break(indent):
    import libcst as cst

    return cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), empty_lines=[], indent=True,
                                       last_line=indent)


# ----------------------------------------------------------------------------- requirements.txt


class Requirements(Manifest):
    kind = "requirements"

    def declarations(self) -> list[Declaration]:
        """One per requirement line; a line with hashes (or continued with a backslash) is read
        but keyed ``None``: its version cannot change without new hashes."""
        out = []
        lines = self.text.split("\n")
        for i, line in enumerate(lines):
            if i and lines[i - 1].rstrip().endswith("\\"):
                continue  # a continuation line (hashes, long options)
            text = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
            locked = text.endswith("\\") or "--hash" in text
            text = re.split(r"\s--hash|\s*\\$", text, maxsplit=1)[0].strip()
            if not text or text.startswith("-"):
                continue
            decl = _declaration(text, None if locked else i)
            if decl is not None:
                out.append(decl)
        return out

    def edit(self, replace: dict[Any, str], add: list[str]) -> str:
        lines = self.text.split("\n")
        declared = {d.key: d for d in self.declarations()}
        for i, new in replace.items():
            lines[i] = lines[i].replace(declared[i].text, new, 1)
        text = "\n".join(lines)
        if add:
            if text and not text.endswith("\n"):
                text += "\n"
            text += "".join(f"{r}\n" for r in add)
        return text


# ----------------------------------------------------------------------------- discovery


def read(path: Path) -> SourceFile | None:
    if not path.is_file():
        return None
    try:
        return decode(path.read_bytes(), str(path))
    except (OSError, SourceError) as exc:
        raise ManifestError(f"{path}: cannot read ({exc})") from None


def requirements_files(root: Path) -> list[Path]:
    """``requirements.txt``, else the only ``requirements*.txt`` of the folder (several -
    ``-dev``, ``-docs`` - say nothing about which one the runtime uses)."""
    main = root / "requirements.txt"
    if main.is_file():
        return [main]
    found = sorted(p for p in root.glob("requirements*.txt") if p.is_file())
    return found if len(found) == 1 else []


def discover(root: Path) -> tuple[list[Manifest], str | None]:
    """The project's dependency files, the package metadata first (where new requirements
    go), and the project's own name."""
    import tomllib

    manifests: list[Manifest] = []
    name = None
    dynamic_files: list[Path] = []
    pyproject = read(root / "pyproject.toml")
    if pyproject is not None:
        try:
            data = tomllib.loads(pyproject.text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(f"{root / 'pyproject.toml'}: cannot read ({exc})") from None
        project = data.get("project")
        poetry = data.get("tool", {}).get("poetry") if isinstance(data.get("tool"), dict) else None
        if isinstance(project, dict):
            name = project.get("name") if isinstance(project.get("name"), str) else None
            dynamic = "dependencies" in (project.get("dynamic") or [])
            if not dynamic:
                manifests.append(Pep621(root / "pyproject.toml", pyproject, data))
            else:
                dynamic_cfg = data.get("tool", {}).get("setuptools", {}).get("dynamic", {}).get("dependencies", {})
                files = dynamic_cfg.get("file", []) if isinstance(dynamic_cfg, dict) else []
                dynamic_files = [root / f for f in ([files] if isinstance(files, str) else files)]
        if isinstance(poetry, dict) and isinstance(poetry.get("dependencies"), dict):
            name = name or (poetry.get("name") if isinstance(poetry.get("name"), str) else None)
            manifests.append(Poetry(root / "pyproject.toml", pyproject, data))
    cfg = read(root / "setup.cfg")
    if cfg is not None:
        setup_cfg = SetupCfg(root / "setup.cfg", cfg)
        name = name or setup_cfg.parser.get("metadata", "name", fallback=None)
        if setup_cfg.has_requires or setup_cfg.python() is not None:
            manifests.append(setup_cfg)
    py = read(root / "setup.py")
    if py is not None:
        manifests.append(SetupPy(root / "setup.py", py))
    for path in [*dynamic_files, *requirements_files(root)]:
        if path.is_file() and all(m.path != path for m in manifests):
            source = read(path)
            if source is not None:
                manifests.append(Requirements(path, source))
    return manifests, name
