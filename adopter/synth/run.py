"""The files fixed together (``adopter fix pkg/``): where an attention's callers live in
another file of the same package.

An attention that hands its probabilities back on every call gets a flag to decline them
(:mod:`.weights`) only where some caller declines them.  Research packages keep the attention
in one file and its callers in another (``attention/single.py`` returns ``p_attn``;
``multi_head.py`` binds ``self.attention = Attention()`` through ``from .single import
Attention`` and never reads what ``x, attn = self.attention(...)`` puts in ``attn``).  A
:class:`Run` holds the files of one run; while :func:`fix_text` works on one of them it is the
current run (:func:`current_run`), and :meth:`Run.elsewhere` finds the calls in the other files:

* resolved by fully qualified names, never by name alone: the other file's imports
  (:func:`adopter.structure.names.collect_names`, relative ones against its package) must
  name the attention's module and class (or function), directly or through a package's
  ``__init__`` that imports it in turn;
* each caller file is planned by the same rules as the same-file pass (its own
  :class:`.weights.Decline`: ``need_weights=False`` where it discards them, its own condition,
  its own flag where it hands them back in turn), and gets its own :class:`.plan.Edits`;
* a caller file outside the run is never edited: :meth:`Run.elsewhere` names the files of the
  package that would decline, for the reason of the skip.

:func:`fix_text` hands the caller files' edits back (``FixResult.callers``) only for the
attention functions the final text gives the flag; :func:`fix_files` renders them, so that
``fix`` writes every file of the patch (all or none).  Without a current run nothing here
runs: a one-file fix is exactly what it was.
"""

from __future__ import annotations

import ast
import contextvars
import os
import re
from contextlib import contextmanager

from ..structure.treewalk import ast_walk

_CURRENT: contextvars.ContextVar = contextvars.ContextVar("adopter_run", default=None)
MAX_HOPS = 4  # re-exports followed through packages' ``__init__`` files
MAX_FILE_BYTES = 2_000_000
MAX_SCAN = 2000  # files of a package looked through for callers outside the run


# a read that names no attribute: ``vars(m)``, ``m.__dict__``, ``getattr(m, prefix + "tn")``
_DYNAMIC_CALLS = ("getattr", "hasattr", "attrgetter")
# whole-object reads, any mention counted (review56): ``object.__getattribute__(m, n)``,
# ``inspect.getmembers(m)``, ``m.__getstate__()``
_WHOLE_READS = ("__getattribute__", "getmembers", "__getstate__")
_DYNAMIC_WORDS = ("vars", "__dict__", *_DYNAMIC_CALLS, *_WHOLE_READS)
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def _may_name(node: ast.expr, name: str) -> bool:
    """Can the name argument of a ``getattr`` be ``name``?  A literal is read by its word (see
    :func:`_reads_attribute`); a name built from pieces cannot be it when one of its literal
    pieces does not occur in it (``"w_" + key`` is never ``attn``); anything else may be."""
    if isinstance(node, ast.Constant):
        return False
    if isinstance(node, ast.JoinedStr):
        pieces = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        return all(piece in name for piece in pieces)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        pieces, stack = [], [node]
        while stack:
            part = stack.pop()
            if isinstance(part, ast.BinOp) and isinstance(part.op, ast.Add):
                stack += [part.left, part.right]
            elif isinstance(part, ast.Constant) and isinstance(part.value, str):
                pieces.append(part.value)
        return all(piece in name for piece in pieces)
    return True


def _reads_attribute(text: str | None, name: str) -> bool:
    """Does code ``text`` read an attribute ``name``: ``<obj>.name`` loaded or updated in
    place, the name as a word in a string, or a read that names no attribute (any ``vars``,
    any ``__dict__``, ``__getattribute__``, ``getmembers`` or ``__getstate__``, a
    ``getattr``/``hasattr``/``attrgetter`` whose name is not a literal and may be ``name``)?  None (unreadable) or code that does not parse counts as reading it."""
    if text is None:
        return True
    if name not in text and not any(word in text for word in _DYNAMIC_WORDS):
        return False
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return True
    return _tree_reads_attribute(tree, name)


def _tree_reads_attribute(tree: ast.AST, name: str, skip: frozenset[int] | set[int] = frozenset()) -> bool:
    """:func:`_reads_attribute` of a parsed tree, where the attribute nodes ``skip`` (ids) are
    no reads."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    called: set[int] = set()
    for node in ast_walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr == name and not isinstance(node.ctx, (ast.Store, ast.Del)) and id(node) not in skip:
                return True
            if node.attr == "__dict__" or node.attr in _WHOLE_READS:
                return True
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Attribute) and node.target.attr == name:
            return True
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and word.search(node.value):
            return True
        elif isinstance(node, ast.Call):
            func = node.func
            callee = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if callee == "vars":
                return True
            if callee in _DYNAMIC_CALLS:
                called.add(id(func))
                names = node.args[1:2] if callee != "attrgetter" else node.args
                if any(_may_name(arg, name) for arg in names) or any(isinstance(a, ast.Starred) for a in node.args):
                    return True
        elif isinstance(node, ast.Name) and (node.id == "vars" or node.id in _WHOLE_READS):
            return True  # ``map(vars, modules)``, ``from inspect import getmembers``
    # ``getattr`` itself handed on (``map(getattr, ...)``): its names are unknown
    for node in ast_walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and id(node) not in called and \
                (node.id if isinstance(node, ast.Name) else node.attr) in _DYNAMIC_CALLS and \
                isinstance(node.ctx, ast.Load):
            return True
    return False


def _read_code(path: str) -> str | None:
    """The code of a file around the run: a ``.py`` file's text, a notebook's code cells as
    one module (:mod:`..notebook`); None: it cannot be read."""
    text = _read(path)
    if text is None or not path.endswith(".ipynb"):
        return text
    from ..notebook import load
    from ..source import SourceFile
    try:
        return load(SourceFile(path, text, "utf-8", False, "\n", "")).text
    except Exception:  # noqa: BLE001 - not a notebook we can read: counted as reading (None)
        return None


def _read(path: str) -> str | None:
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            return None
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except Exception:  # noqa: BLE001 - unreadable: counted as reading (None)
        return None


def _project_root(folder: str) -> str | None:
    """The nearest folder from ``folder`` up that holds a project marker
    (:data:`_PROJECT_MARKERS`); None: none up to the file system's root."""
    while True:
        if any(os.path.exists(os.path.join(folder, marker)) for marker in _PROJECT_MARKERS):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def current_run() -> "Run | None":
    return _CURRENT.get()


def module_of(path: str) -> str | None:
    """The dotted module a file is (``pkg.attention.single``; a package's ``__init__``: the
    package), or None outside a package."""
    from ..structure.names import package_of

    package = package_of(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem == "__init__":
        return package
    return f"{package}.{stem}" if package else None


class _File:
    def __init__(self, path: str, text: str):
        from ..structure.names import collect_names, package_of
        from .core import _normalise

        self.path = path
        self.original = text
        self.text, self.newline = _normalise(text)
        self.tree = ast.parse(self.text)
        self.names = collect_names(self.tree, package_of(path))
        self.module = module_of(path)


class Run:
    """The files of one run (``texts``: path -> text, or None to read it when needed)."""

    def __init__(self, texts: dict[str, str | None], reader=None):
        self.texts = {os.path.abspath(p): t for p, t in texts.items() if p.endswith(".py")}
        self.reader = reader  # path -> text, for a file of the run whose text is None
        self._files: dict[str, _File | None] = {}
        self._modules: dict[str, str] | None = None
        self.path: str | None = None  # the file fix_text works on
        # (attention path, class or None, function) -> {caller path: (Decline of that file)}
        self.recorded: dict[tuple, dict[str, object]] = {}
        self._scans: dict[str, Run] = {}  # package folder -> its files, for callers outside the run
        self._module_names: dict[str, str | None] = {}
        # ``--unsafe-fixes``: a caller's store of the probabilities in an attribute no file of
        # the run reads may decline them (:meth:`.weights.Decline._unread_store`)
        self.unsafe_fixes = False
        self._attribute_reads: dict[str, bool] = {}

    @classmethod
    def of_paths(cls, paths, reader=None) -> "Run":
        return cls({p: None for p in paths}, reader)

    @contextmanager
    def on(self, path: str):
        """The current run while ``path`` is fixed."""
        previous = self.path
        self.path = os.path.abspath(path)
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)
            self.path = previous

    def file(self, path: str) -> _File | None:
        """A file of the run, parsed once (None: not in the run, or it cannot be read or parsed)."""
        path = os.path.abspath(path)
        if path not in self._files:
            text = self.raw(path) if path in self.texts else None
            try:
                self._files[path] = _File(path, text) if text is not None else None
            except Exception:  # noqa: BLE001 - a file that cannot be parsed holds no caller
                self._files[path] = None
        return self._files[path]

    def modules(self) -> dict[str, str]:
        """Module name -> path, for the files of the run in a package."""
        if self._modules is None:
            self._modules = {}
            for path in self.texts:
                name = self.module(path)
                if name:
                    self._modules.setdefault(name, path)
        return self._modules

    def canonical(self, fqn: str) -> str:
        """``pkg.attention.Attention`` -> ``pkg.attention.single.Attention`` where the
        package's ``__init__`` (a file of the run) imports it from there."""
        for _ in range(MAX_HOPS):
            module, _, name = fqn.rpartition(".")
            path = self.modules().get(module)
            found = self.file(path) if path else None
            if found is None or name in found.names.classes or name in found.names.functions:
                return fqn
            target = found.names.imports.get(name)
            if target is None or target == fqn:
                return fqn
            fqn = target
        return fqn

    # ------------------------------------------------------------------ callers elsewhere
    def elsewhere(self, decline, func: ast.FunctionDef, place: int, arity: int) -> tuple[list, list[str]]:
        """The edits (thunks, as :meth:`.weights.Decline._callers` returns them) that make the
        calls of ``func`` in the other files of the run decline what it hands back; and the
        package's files outside the run whose calls would (for the reason of a skip)."""
        from .weights import Decline

        here = self.path
        home = self.file(here) if here else None
        if home is None or home.module is None:
            return [], []
        tree = decline.index.tree
        owner = next((c for c in tree.body if isinstance(c, ast.ClassDef) and func in c.body), None)
        if owner is None and func not in tree.body:
            return [], []
        if owner is not None and func.name != "forward":
            return [], []  # another method is called through ``self``: only its own class calls it
        target = f"{home.module}.{owner.name if owner is not None else func.name}"
        key = (here, owner.name if owner is not None else None, func.name)
        pending: list = []
        top = home.module.split(".")[0]
        name = target.rpartition(".")[2]
        for path in sorted(self.texts):
            # callers import the attention's module: files of its own top-level package that
            # name it (read, not parsed, to tell: a run over many files parses only those)
            if path == here or (self.module(path) or "").split(".")[0] != top:
                continue
            text = self.raw(path)
            if text is None or name not in text:
                continue
            other = self.file(path)
            thunks = self._plan_file(other, decline, target, owner is not None, place, arity) \
                if other is not None else None
            if thunks:
                pending.append(lambda path=path, found=thunks[0]: self.recorded.setdefault(key, {}).__setitem__(path,
                                                                                                            found))
                pending.extend(thunks[1])
        if pending:
            self.recorded.pop(key, None)  # a new plan of the same function replaces an earlier one
            return pending, []
        return [], self._outside(home, decline, target, owner is not None, place, arity)

    def _plan_file(self, other: _File, decline, target: str, is_class: bool, place: int, arity: int,
                   resolver: "Run | None" = None):
        from .plan import Edits, KernelNames
        from .text import SourceIndex
        from .weights import Decline

        locals_ = [name for name, fqn in other.names.imports.items()
                   if name not in other.names.classes and name not in other.names.functions
                   and (resolver or self).canonical(fqn) == target]
        if not locals_:
            return None
        index = SourceIndex(other.text, other.tree)
        if decline.flag in index.identifiers:
            return None  # the flag's name means something else there
        found = Decline(index, KernelNames(index), Edits(), [])
        found.flag = decline.flag
        found.home = False
        sites = []
        for local in locals_:
            stand_in = ast.ClassDef(name=local, bases=[], keywords=[], body=[], decorator_list=[]) if is_class else None
            sites += found.sites_of(local, "forward" if is_class else local, stand_in)
        if not sites:
            return None
        thunks = found._callers(None, place, arity, 0, set(), sites=sites)
        return (found, thunks) if thunks else None

    def _outside(self, home: _File, decline, target: str, is_class: bool, place: int, arity: int) -> list[str]:
        """The files of ``home``'s top-level package outside the run whose calls would decline
        (none looked for in a package of more than :data:`MAX_SCAN` files)."""
        root = os.path.dirname(home.path)
        for _ in range(home.module.count(".") - (0 if home.path.endswith("__init__.py") else 1)):
            root = os.path.dirname(root)
        scan = self._scans.get(root)
        if scan is None:
            package: list[str] = []
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                package += [os.path.abspath(os.path.join(folder, f)) for f in sorted(files) if f.endswith(".py")]
                if len(package) > MAX_SCAN:
                    break
            # re-exports resolved through every file of the package; its texts read once per run
            scan = self._scans[root] = Run.of_paths(package if len(package) <= MAX_SCAN else [])
        out: list[str] = []
        name = target.rpartition(".")[2]
        for path in scan.texts:
            if path in self.texts:
                continue
            found = scan.raw(path)
            if found is None or name not in found:
                continue
            other = scan.file(path)
            if other is not None and self._plan_file(other, decline, target, is_class, place, arity, scan):
                shown = os.path.relpath(path)
                out.append(path if shown.startswith("..") else shown)
        return out[:5]

    def reads_attribute(self, name: str) -> bool:
        """Does any file of the run, or of the project around the current file (:meth:`_around`:
        its scripts, sibling packages and notebooks, code outside the package that may hold the
        module), read an attribute ``name``: ``<obj>.name`` loaded or updated in place, the name
        quoted in a string (``getattr(m, "name")``, a config key), or a read that names no
        attribute (``vars(m)``, ``m.__dict__``, ``getattr(m, prefix + "tn")``)?  A file that
        cannot be read or parsed counts as reading it, and so does a folder of more than
        :data:`MAX_SCAN` files (not looked through)."""
        key = f"{self.path}\0{name}"
        if key not in self._attribute_reads:
            paths = self._around()
            self._attribute_reads[key] = paths is None or any(
                _reads_attribute(self._code(path) if path in self.texts else _read_code(path), name)
                for path in [*self.texts, *paths])
        return self._attribute_reads[key]

    def reads_attribute_besides(self, name: str, tree: ast.AST, skip: set[int]) -> bool:
        """:meth:`reads_attribute`, where the current file is read as ``tree`` (the text being
        fixed) and its attribute nodes ``skip`` (ids) are no reads: a step's own reads of the
        attribute it stores (:meth:`.sdpa._Attention._unread_step_store`)."""
        if _tree_reads_attribute(tree, name, skip):
            return True
        here = os.path.abspath(self.path) if self.path else None
        key = f"{here}\0{name}\0besides"
        if key not in self._attribute_reads:
            paths = self._around()
            self._attribute_reads[key] = paths is None or any(
                _reads_attribute(self._code(path) if path in self.texts else _read_code(path), name)
                for path in [*self.texts, *paths] if path != here)
        return self._attribute_reads[key]

    def _code(self, path: str) -> str | None:
        """A run file's code: its text, a notebook's code cells (:func:`_read_code`)."""
        text = self.raw(path)
        if text is None or not path.endswith(".ipynb"):
            return text
        from ..notebook import load
        from ..source import SourceFile
        try:
            return load(SourceFile(path, text, "utf-8", False, "\n", "")).text
        except Exception:  # noqa: BLE001 - counted as reading (None)
            return None

    def _around(self) -> list[str] | None:
        """The ``.py`` files and notebooks of the project around the current file: under the
        nearest folder above it that holds ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or
        ``.git`` (a ``src/`` layout's scripts beside ``src``), or, when there is none or it lies
        inside the package, under the folder above the file's top package (the file's own folder
        outside a package); None past :data:`MAX_SCAN`."""
        if self.path is None:
            return []
        path = os.path.abspath(self.path)
        module = module_of(self.path)
        root = os.path.dirname(path)
        if module:
            for _ in range(module.count(".") - (0 if path.endswith("__init__.py") else 1) + 1):
                root = os.path.dirname(root)
        project = _project_root(os.path.dirname(path))
        if project is not None and (root == project or root.startswith(project.rstrip(os.sep) + os.sep)):
            root = project
        out: list[str] = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            out += [os.path.join(folder, f) for f in sorted(files) if f.endswith((".py", ".ipynb"))]
            if len(out) > MAX_SCAN:
                return None
        texts = {os.path.abspath(p) for p in self.texts}
        return [p for p in out if p not in texts]

    def raw(self, path: str) -> str | None:
        """The text of a file of the run, read once (None: it cannot be read)."""
        if self.texts.get(path) is None:
            try:
                if self.reader is not None:
                    self.texts[path] = self.reader(path)
                else:
                    if os.path.getsize(path) > MAX_FILE_BYTES:
                        return None
                    with open(path, encoding="utf-8") as handle:
                        self.texts[path] = handle.read()
            except Exception:  # noqa: BLE001 - a file that cannot be read holds no caller
                return None
        return self.texts[path]

    def module(self, path: str) -> str | None:
        """:func:`module_of`, once per file of the run."""
        if path not in self._module_names:
            self._module_names[path] = module_of(path)
        return self._module_names[path]


def flagged(run: Run, path: str, tree: ast.Module) -> dict[str, list]:
    """The caller edits recorded while ``path`` was fixed, for the functions ``tree`` (its
    final text) gives the flag: caller path -> the edits to apply."""
    out: dict[str, list] = {}
    path = os.path.abspath(path)
    for (home, cls, name), callers in run.recorded.items():
        if home != path or not callers:
            continue
        body = tree.body
        if cls is not None:
            body = next((c.body for c in tree.body if isinstance(c, ast.ClassDef) and c.name == cls), [])
        func = next((f for f in body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name == name),
                    None)
        for caller, found in callers.items():
            if func is not None and any(a.arg == found.flag for a in func.args.args):
                out.setdefault(caller, []).append(found.edits)
    return out


def render(run: Run, path: str, edits: list) -> str:
    """The caller file ``path`` of the run with ``edits`` applied (its own newlines kept)."""
    from .apply import rewrite
    from .style import style_for

    found = run.file(path)
    text = rewrite(found.text, found.tree, edits, style_for(path), path).text
    return text.replace("\n", found.newline) if found.newline else text


def incoming(results) -> dict[str, list]:
    """The edits the fixed files of a run ask of their callers' files: path -> edits, from the
    ``callers`` of each result (a ``FixResult`` or the CLI's ``FileOutcome``), in order."""
    edits: dict[str, list] = {}
    for result in results:
        for path, asked in result.callers.items():
            edits.setdefault(path, []).extend(asked)
    return edits


def fix_files(texts: dict[str, str], rules, run: Run | None = None) -> dict:
    """Fix the files of one run together: path -> FixResult, where a file that only receives a
    caller's edit (``need_weights=False``) is changed too."""
    from ..records import replace
    from ..structure.names import package_of
    from .core import FixResult, fix_text

    run = run or Run(texts)
    results = {}
    for path, text in texts.items():
        results[path] = fix_text(text, path, rules, package_of(path), run=run)
    for path, edits in incoming(results.values()).items():
        key = next((p for p in texts if os.path.abspath(p) == path), None)
        if key is None:
            continue
        edited = render(run, path, edits)
        own = results[key]
        if own.error is None and own.text != texts[key]:
            results[key] = replace(fix_text(edited, key, rules, package_of(key)), callers=own.callers)
        else:
            results[key] = FixResult(edited, applied=[], skipped=own.skipped, requirements=set(),
                                     error=own.error, callers=own.callers)
    return results
