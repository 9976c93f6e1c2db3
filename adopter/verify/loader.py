"""Import the original module and a patched source side by side, in the same package context.

A file inside a package (folders with ``__init__.py`` up to some root) is imported under its
dotted name, and the patched text is executed as a *sibling* module of it
(``transformers.models.bert.modeling_bert__adopter_ADP004_1``) so that its relative imports
(``from ...modeling_utils import PreTrainedModel``) resolve exactly as the original's do.
A file outside any package is loaded as a standalone module under a private name, with its
folder on ``sys.path`` so that its absolute imports of neighbouring files work, and the patched
text likewise.

The patched text is written to a private temporary folder (so tracebacks and ``inspect`` can
show its lines, and the line tracer can recognise its frames by file name); modules are
registered in ``sys.modules`` while in use and removed by :meth:`ModuleLoader.close`.

A file that imports a package which is not installed here (unguarded) is imported again with a
stub of that package (``stubs.py``): the classes that do not use it load and verify; one that
does raises "needs X" when built or run.  Stubs and every module that took one are forgotten on
close.

A file whose *package* ``__init__`` fails here (a version assertion against a stubbed package, a
compiled extension built for another torch, a registry that needs a service) is imported again
with the package's own ``__init__`` files run as far as they go: one that raises leaves a package
with what it defined before the error, and the analysed file and its siblings import from the
package folders as usual.  The result says which package ``__init__`` stopped (``init_skipped``).
A missing package is still stubbed, not skipped, and a failure in the analysed file itself is
never tolerated.

A patched copy executes the file's module-level statements a second time.  A decorator that
registered a class or builder under its name (a model registry) refuses the copy's second entry;
when such a decorator raised (one that, in the original, gave back the object from this file),
the copy runs without every use of it, lines kept in place (``unregistered``).

A module-level statement of the analysed file that raises here when imported (a data file the
source distribution left out, a default argument that downloads a config, a name an installed
package no longer exports) does not stop the classes that never use what it defines: the module
is imported again with that statement replaced, lines kept in place, by placeholders for the
names it binds (``stubs.Placeholder``), in the original and in every patched copy alike.  Code
that uses one raises "needs NAME, which line N defines; that statement raised ... here", so such
a class is a skip that says why, never a pass; the result lists the statements (``unavailable``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import itertools
import linecache
import os
import re
import shutil
import sys
import tempfile
from types import ModuleType

from ..structure import package_of
from ..structure.siblings import namespace_of
from .stubs import UNAVAILABLE, ImportStubs, Placeholder, importing, missing_package, needs_text, tainted

_COUNTER = itertools.count(1)


class LoadError(Exception):
    """The module (original or patched) could not be imported."""

    def __init__(self, message: str, missing: str | None = None):
        super().__init__(message)
        self.missing = missing  # a package the module needs that is not installed here


MAX_STUBS = 24  # super-gradients' ViT: its package imports 15 that are not installed here
MAX_REGISTRATIONS = 8
MAX_UNAVAILABLE = 4  # module-level statements that may be left out (see the module doc)


def bound_names(stmt: ast.stmt) -> list[str]:
    """The names a top-level statement binds in the module's namespace (not those of the
    functions, classes, lambdas and comprehensions inside it)."""
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(node.name)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.extend(a.asname or a.name.partition(".")[0] for a in node.names if a.name != "*")
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.append(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(stmt)
    return list(dict.fromkeys(out))


def own_package_roots(path: str) -> list[tuple[str, str]]:
    """(top-level name, folder to put on ``sys.path``) for each absolute import of the file at
    ``path`` (outside any ``__init__.py`` package) that names the file's own project: a folder
    above the file called like the import's first part, holding the imported module's file
    (``pkg/modules/attention.py`` importing ``pkg.modules.layers`` finds ``pkg/modules/layers.py``
    two folders up).  Read with ``ast``; a name that is not such a folder is left to the usual
    search (an installed package, else a stub)."""
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    ancestors = [os.path.dirname(os.path.abspath(path))]
    while os.path.dirname(ancestors[-1]) != ancestors[-1]:
        ancestors.append(os.path.dirname(ancestors[-1]))
    out: dict[str, str] = {}
    for dotted in dict.fromkeys(names):
        parts = dotted.split(".")
        if parts[0] in out or len(parts) < 2:
            continue
        for folder in ancestors[:-1]:
            if os.path.basename(folder) != parts[0]:
                continue
            target = os.path.join(os.path.dirname(folder), *parts)
            if os.path.isfile(target + ".py") or os.path.isfile(os.path.join(target, "__init__.py")):
                out[parts[0]] = os.path.dirname(folder)
            break
    return list(out.items())


def _relative_level(path: str) -> int:
    """The deepest relative import of the file (``from ..x import y``: 2); 0 when it has none
    or cannot be read."""
    tree = _tree_of(path)
    if tree is None:
        return 0
    return max((node.level for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)), default=0)


def _tree_of(path: str) -> ast.Module | None:
    """The file's syntax tree, None when it cannot be read or parsed (namespaced_package's two
    readers of the file's imports)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return None


def _taken_elsewhere(name: str, folder: str) -> bool:
    """Is the top-level ``name`` another module than the package in ``folder``: one loaded already
    from elsewhere, or a regular module or package the import system finds elsewhere (which
    would win over a namespace portion in ``folder``)?  A name found nowhere, or only as a
    namespace portion, is free."""
    folder = os.path.realpath(folder)
    loaded = sys.modules.get(name)
    if loaded is not None:
        return folder not in {os.path.realpath(p) for p in getattr(loaded, "__path__", [])}
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return False  # (not found, or a namespace package ours joins)
    locations = spec.submodule_search_locations or []
    return folder not in {os.path.realpath(p) for p in locations}


def _imports_absolutely(path: str, prefix: str) -> bool:
    """Does the file import a module under ``prefix`` by its absolute name (texar's
    ``from texar.torch.core import layers`` in ``texar/torch/...``)?  That is how a file spells
    its own name when the namespace folder above its package is part of it."""
    tree = _tree_of(path)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name == prefix or name.startswith(prefix + ".") for name in names):
            return True
    return False


def namespaced_package(path: str, package: str | None) -> tuple[str, str] | None:
    """(dotted package, folder to put on ``sys.path``) naming the file from a namespace root
    (PEP 420) where its plain package name cannot import it; None to keep today's naming.

    Two cases: a package whose folder above is a namespace package and which the file imports
    from by that longer name (``texar/torch/...`` with no ``texar/__init__.py``, importing
    ``texar.torch.core``: named ``torch.modules...`` it collides with torch, so it is
    ``texar.torch.modules...``, as ``structure.siblings.Package`` reads it); and a file in a
    folder without ``__init__.py`` that imports relatively (the folder is a namespace portion,
    named up through its ``__init__.py`` parents and as many folders as its imports climb).
    Only a name whose top no other module takes is given (a checkout's ``src/timm/...`` that
    imports only relatively keeps its plain name, an installed timm beside it or not)."""
    folder = os.path.dirname(os.path.abspath(path))
    if package:
        top = folder
        for _ in range(package.count(".") + 1):
            top = os.path.dirname(top)
        namespace = namespace_of(top)  # (the folder holding the top package)
        if namespace is None or not _imports_absolutely(path, f"{namespace}.{package.partition('.')[0]}"):
            return None
        if _taken_elsewhere(namespace, top):
            return None
        return f"{namespace}.{package}", os.path.dirname(top)
    level = _relative_level(path)
    if level == 0:
        return None
    parts, current = [], folder
    while len(parts) < level or os.path.isfile(os.path.join(current, "__init__.py")):
        name = os.path.basename(current)
        parent = os.path.dirname(current)
        if not name.isidentifier() or parent == current:
            return None
        parts.append(name)
        current = parent
    if _taken_elsewhere(parts[-1], os.path.join(current, parts[-1])):
        return None
    return ".".join(reversed(parts)), current


def _first_lineno(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno] + [d.lineno for d in decorators])


def _statement_key(stmt: ast.stmt) -> tuple:
    names = bound_names(stmt)
    return (type(stmt).__name__, tuple(names)) if names else (type(stmt).__name__, ast.dump(stmt))


class _Unavailable:
    """One module-level statement left out: where it was, what it binds, why."""

    def __init__(self, stmt: ast.stmt, file_name: str, exc: BaseException, number: int):
        self.key = _statement_key(stmt)
        self.line = _first_lineno(stmt)
        self.names = bound_names(stmt)
        self.error = f"{type(exc).__name__}: {_first_line(exc)}"
        self.package = f"<line {self.line} of {file_name}>"  # the Placeholder's key into stubs.UNAVAILABLE
        shown = ", ".join(f"`{n}`" for n in self.names) or "what it does"
        UNAVAILABLE[self.package] = (f"needs {shown}, which line {self.line} of {file_name} defines; that statement "
                                     f"raised {self.error} when imported here: make it run where verify runs")
        self.placeholders = {f"_adopter_unavailable_{number}_{i}": Placeholder(self.package, name)
                             for i, name in enumerate(self.names)}

    def text(self) -> str:
        return f"line {self.line} ({', '.join(self.names) or 'no names'}): {self.error}"

    def replacement(self) -> str:
        parts = [f"{name} = {var}" for name, var in zip(self.names, self.placeholders)]
        return "; ".join(parts) if parts else "pass"


def without_statements(text: str, left_out: list[_Unavailable]) -> str:
    """``text`` with the top-level statements of ``left_out`` (found by kind and bound names)
    replaced by their placeholder bindings, every other line in place."""
    if not left_out:
        return text
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    wanted = {u.key: u for u in left_out}
    lines = text.splitlines(keepends=True)
    for stmt in tree.body:
        record = wanted.get(_statement_key(stmt))
        if record is None:
            continue
        start, end = _first_lineno(stmt), stmt.end_lineno or stmt.lineno
        lines[start - 1] = record.replacement() + "\n"
        for index in range(start, end):
            lines[index] = "\n"
    return "".join(lines)


class _InjectingLoader(importlib.machinery.SourceFileLoader):
    """Executes a rewritten copy of the analysed file with its placeholders in its namespace."""

    def __init__(self, fullname: str, path: str, names: dict):
        super().__init__(fullname, path)
        self.names = names

    def exec_module(self, module) -> None:
        module.__dict__.update(self.names)
        super().exec_module(module)


class _RewrittenOriginal(importlib.abc.MetaPathFinder):
    """Resolves the analysed file's dotted name to its rewritten copy (its package imports as usual)."""

    def __init__(self, fullname: str, file: str, names: dict):
        self.fullname = fullname
        self.file = file
        self.names = names

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != self.fullname:
            return None
        return importlib.util.spec_from_file_location(fullname, self.file,
                                                      loader=_InjectingLoader(fullname, self.file, self.names))


def _callee(decorator: ast.expr) -> ast.expr:
    """``MODELS.register_module`` of ``@MODELS.register_module(name="x")``."""
    return decorator.func if isinstance(decorator, ast.Call) else decorator


class _PartialInit(importlib.abc.Loader):
    """Runs a package ``__init__`` and keeps the package when it raises (see the module doc)."""

    def __init__(self, inner: importlib.abc.Loader, owner: "_PartialPackages"):
        self.inner = inner
        self.owner = owner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            self.inner.exec_module(module)
        except Exception as exc:
            if self.owner.keep_error(exc):
                raise
            self.owner.skipped.append(f"{module.__name__.replace('.', '/')}/__init__.py stopped at "
                                      f"{type(exc).__name__}: {_first_line(exc)}")

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else ""


class _PartialPackages(importlib.abc.MetaPathFinder):
    """Finds the packages of one top-level package as usual and runs their ``__init__`` leniently."""

    def __init__(self, top: str, keep_error, before: set[str]):
        self.top = top
        self.keep_error = keep_error  # errors that must propagate (a package to stub)
        self.skipped: list[str] = []
        self.before = before  # sys.modules before the first attempt

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname.partition(".")[0] != self.top:
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.submodule_search_locations is not None and spec.loader is not None \
                and not isinstance(spec.loader, _PartialInit):
            spec.loader = _PartialInit(spec.loader, self)
        return spec

    def close(self) -> None:
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        for name in [n for n in sys.modules if n not in self.before and n.partition(".")[0] == self.top]:
            sys.modules.pop(name, None)


def _ident(text: str) -> str:
    return re.sub(r"\W", "_", text) or "_"


class ModuleLoader:
    """Loads one analysed file and any number of patched variants of it."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.stem = _ident(os.path.splitext(os.path.basename(path))[0])
        self.package = package_of(self.path)
        named = namespaced_package(self.path, self.package)  # (a name from a namespace root)
        self._namespace_root = None if named is None else named[1]
        if named is not None:
            self.package = named[0]
        self._added_paths: list[str] = []
        self._names: list[str] = []
        self._tmp = tempfile.mkdtemp(prefix="adopter-verify-")
        self._original: ModuleType | None = None
        self.original_name = ""
        self._partial: _PartialPackages | None = None
        self._modules_before = set(sys.modules)
        self.unregistered: list[str] = []  # classes whose registering decorators the copies skip
        self._unavailable: list[_Unavailable] = []  # module-level statements left out (module doc)
        self._injected: dict = {}  # their placeholders, put in each copy's namespace
        self._rewritten: _RewrittenOriginal | None = None
        self.original_file = self.path  # the file the original module executed (a rewritten copy, or the file)
        self.stubs = ImportStubs().__enter__()
        if self._namespace_root is not None:
            self._add_path(self._namespace_root)
        elif self.package:
            root = os.path.dirname(self.path)
            for _ in self.package.split("."):
                root = os.path.dirname(root)
            self._add_path(root)
        else:
            self._add_path(os.path.dirname(self.path))
            # a file in a folder without ``__init__.py`` inside its project's own package
            # (``pkg/modules/attention.py`` importing ``from pkg.modules.layers import *``): the
            # folder above the package, so the import finds the project's file, not a stub
            self._own_tops: list[str] = []
            for top, folder in own_package_roots(self.path):
                self._own_tops.append(top)
                if folder not in sys.path:
                    sys.path.insert(1, folder)
                    self._added_paths.append(folder)
                    importlib.invalidate_caches()

    # ------------------------------------------------------------------ sys.path / sys.modules

    def _add_path(self, folder: str) -> None:
        if folder not in sys.path:
            sys.path.insert(0, folder)
            self._added_paths.append(folder)
            importlib.invalidate_caches()

    def close(self) -> None:
        if self._partial is not None:
            self._partial.close()
            self._partial = None
        if self._rewritten is not None:
            try:
                sys.meta_path.remove(self._rewritten)
            except ValueError:
                pass
            self._rewritten = None
        if self._unavailable:
            # the rewritten original (under the file's own dotted name) and every module that took
            # one of its placeholders: not to be found by a later import in this process
            for name in tainted(sys.modules, self._modules_before, []):
                sys.modules.pop(name, None)
        for record in self._unavailable:
            UNAVAILABLE.pop(record.package, None)
        self.stubs.close()
        for name in self._names:
            sys.modules.pop(name, None)
        tops = [self.package.partition(".")[0]] if self.package else getattr(self, "_own_tops", [])
        for top in tops:
            # the file's own package and its modules, imported as the original imported them: a
            # later file of another project whose package has the same name must not find them
            for name in [n for n in sys.modules if n.partition(".")[0] == top and n not in self._modules_before]:
                sys.modules.pop(name, None)
        for folder in self._added_paths:
            try:
                sys.path.remove(folder)
            except ValueError:
                pass
        self._added_paths.clear()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "ModuleLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ loading

    def _exec(self, name: str, file: str, as_file: str | None = None) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise LoadError(f"cannot create an import spec for {file}")
        module = importlib.util.module_from_spec(spec)
        module.__dict__.update(self._injected)
        if as_file is not None:
            # a patched copy runs its module-level code as the file it replaces (``adopter fix``
            # edits in place): a read of a file beside it (``open(dirname(__file__) + '/version.py')``)
            # finds the original's neighbours; the copy's own path is its ``__file__`` afterwards
            module.__file__ = as_file
        sys.modules[name] = module
        self._names.append(name)
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise LoadError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if as_file is not None:
                module.__file__ = file
        return module

    def original(self) -> ModuleType:
        """The analysed file as it is on disk, imported under its own dotted name if it has one.

        An import of a package that is not installed is retried with a stub of it."""
        if self._original is not None:
            return self._original
        first_failure: LoadError | None = None
        for _ in range(MAX_STUBS + MAX_UNAVAILABLE + 2):
            self._forget_orphans()
            try:
                with importing():
                    return self._import_original()
            except LoadError as exc:
                package = self.stubs.can_stub(exc.__cause__) if len(self.stubs.packages) < MAX_STUBS else None
                if package is None:
                    used = missing_package(exc.__cause__)
                    if used and not self._in_package_init(exc.__cause__):
                        raise LoadError(f"{needs_text(used)} (the module uses it when imported)", used) from None
                    if self._partial is None and self._in_package_init(exc.__cause__):
                        self._partial_packages(exc.__cause__)
                        first_failure = exc
                        continue
                    if not used and self._leave_out(exc.__cause__):
                        continue
                    if first_failure is not None:
                        # kept as far as it ran, the package still lacks what the file imports
                        # from it: the package's own error is the one to fix
                        raise first_failure
                    raise
                self.stubs.add(package)
        raise LoadError("too many packages are missing")  # pragma: no cover

    def _forget_orphans(self) -> None:
        """Modules of the file's own project (its package's top, else found by
        ``own_package_roots``) left in ``sys.modules`` by a failed attempt whose parent package the
        failure removed (a namespace folder such as ``pkg.modules`` then cannot find its path; a
        subpackage whose parent's ``__init__`` raised after importing it, which the next, lenient
        attempt would meet without its parent: ``KeyError``): imported afresh next time."""
        tops = [self.package.partition(".")[0]] if self.package else getattr(self, "_own_tops", [])
        for top in tops:
            for name in sorted((n for n in sys.modules if n.partition(".")[0] == top and "." in n
                                and n not in self._modules_before), key=lambda n: n.count(".")):
                if name.rpartition(".")[0] not in sys.modules:
                    sys.modules.pop(name, None)

    def _leave_out(self, exc: BaseException | None) -> bool:
        """When ``exc`` was raised by a module-level statement of the analysed file: import it
        again without that statement (see the module doc); False when it was not, or too many were."""
        if exc is None or len(self._unavailable) >= MAX_UNAVAILABLE:
            return False
        files = {os.path.realpath(self.path), os.path.realpath(self.original_file)}
        tb = exc.__traceback__
        line = None
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_name == "<module>" and os.path.realpath(code.co_filename) in files:
                line = tb.tb_lineno
            tb = tb.tb_next
        if line is None:
            return False
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
            tree = ast.parse(text)
        except (OSError, SyntaxError, ValueError):
            return False
        stmt = next((s for s in tree.body if _first_lineno(s) <= line <= (s.end_lineno or s.lineno)), None)
        if stmt is None or any(u.key == _statement_key(stmt) for u in self._unavailable):
            return False
        if any(isinstance(node, (ast.Raise, ast.Assert)) and node.lineno <= line <= (node.end_lineno or node.lineno)
               for node in ast.walk(stmt)):
            return False  # the module refuses to load here on purpose (``raise``, ``assert``): its word stands
        record = _Unavailable(stmt, os.path.basename(self.path), exc, len(self._unavailable))
        self._unavailable.append(record)
        self._injected.update(record.placeholders)
        folder = os.path.join(self._tmp, f"original_{len(self._unavailable)}")
        os.makedirs(folder, exist_ok=True)
        self.original_file = os.path.join(folder, os.path.basename(self.path))
        with open(self.original_file, "w", encoding="utf-8") as handle:
            handle.write(without_statements(text, self._unavailable))
        if self.package:
            if self._rewritten is not None:
                sys.meta_path.remove(self._rewritten)
            self._rewritten = _RewrittenOriginal(f"{self.package}.{self.stem}", self.original_file, self._injected)
            sys.meta_path.insert(0, self._rewritten)
        importlib.invalidate_caches()
        return True

    @property
    def unavailable(self) -> list[str]:
        """Module-level statements that raised here and were left out (see the module doc)."""
        return [record.text() for record in self._unavailable]

    def _package_inits(self, exc: BaseException | None) -> list[str]:
        """The ``__init__.py`` files of the file's own top-level package that ``exc`` was raised
        through, outermost first; empty when it was raised in the analysed file itself."""
        if not self.package or exc is None:
            return []
        tb = exc.__traceback__
        files = []
        while tb is not None:
            files.append(os.path.realpath(tb.tb_frame.f_code.co_filename))
            tb = tb.tb_next
        if os.path.realpath(self.path) in files or os.path.realpath(self.original_file) in files:
            return []
        top = os.path.realpath(self._package_dir(self.package.partition(".")[0]))
        return [f for f in files if os.path.basename(f) == "__init__.py" and f.startswith(top + os.sep)]

    def _in_package_init(self, exc: BaseException | None) -> bool:
        return bool(self._package_inits(exc))

    def _package_dir(self, dotted: str) -> str:
        folder = os.path.dirname(self.path)
        for _ in range(len(self.package.split(".")) - len(dotted.split("."))):
            folder = os.path.dirname(folder)
        return folder

    def _partial_packages(self, exc: BaseException) -> None:
        # What the failed attempt imported stays (importing it again would register twice with
        # the package's registries); the packages whose __init__ raised are not in sys.modules.
        top = self.package.partition(".")[0]
        self._partial = _PartialPackages(top, lambda exc: self.stubs.can_stub(exc) is not None, self._modules_before)
        base = os.path.dirname(os.path.realpath(self._package_dir(top)))
        failed = os.path.relpath(self._package_inits(exc)[-1], base).replace(os.sep, "/")
        self._partial.skipped.append(f"{failed} stopped at {type(exc).__name__}: {_first_line(exc)}")
        sys.meta_path.insert(0, self._partial)
        importlib.invalidate_caches()

    @property
    def init_skipped(self) -> list[str]:
        """Package ``__init__`` files that raised here and were kept as far as they ran."""
        return list(dict.fromkeys(self._partial.skipped)) if self._partial is not None else []

    @property
    def stubbed(self) -> list[str]:
        """Packages that are not installed and were replaced by stubs for this file."""
        return list(self.stubs.packages)

    def _import_original(self) -> ModuleType:
        if self.package:
            name = f"{self.package}.{self.stem}"
            try:
                module = importlib.import_module(name)
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise LoadError(f"importing {name}: {type(exc).__name__}: {exc}") from exc
            self._import_parents()
            found = getattr(module, "__file__", None)
            if not found or os.path.realpath(found) != os.path.realpath(self.original_file):
                # The dotted name resolves to another copy (e.g. an installed one): load this
                # file as a sibling so relative imports still go through the same package.
                name = f"{self.package}.{self.stem}__adopter_original_{next(_COUNTER)}"
                module = self._exec(name, self.original_file)
        else:
            name = f"_adopter_verify_{self.stem}_original_{next(_COUNTER)}"
            module = self._exec(name, self.original_file)
        self._original = module
        self.original_name = module.__name__
        return module

    def _import_parents(self) -> None:
        """Import the file's packages where an earlier attempt left the file's module behind them.

        A package ``__init__`` that imports the analysed file and raises after it (a later
        sibling's import) leaves the file's module in ``sys.modules`` without its package; the next
        ``import_module`` of the file returns that module and never meets the package's error, which
        the patched copy's own ``from pkg import X`` then meets alone, as if the patch broke it.
        Importing the packages here raises that error for the original too, so the package is kept
        as far as it runs (``_partial_packages``) for both, and the result says so."""
        parts = self.package.split(".")
        for depth in range(1, len(parts) + 1):
            dotted = ".".join(parts[:depth])
            if dotted in sys.modules:
                continue
            try:
                importlib.import_module(dotted)
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise LoadError(f"importing {dotted}: {type(exc).__name__}: {exc}") from exc

    def patched(self, text: str, tag: str) -> ModuleType:
        """Execute ``text`` as a sibling of the original module; return the new module."""
        text = without_statements(text, self._unavailable)
        number = next(_COUNTER)
        base = f"{self.stem}__adopter_{_ident(tag)}_{number}"
        file = os.path.join(self._tmp, base + ".py")
        with open(file, "w", encoding="utf-8") as handle:
            handle.write(text)
        name = f"{self.package}.{base}" if self.package else f"_adopter_verify_{base}"
        skipped: set[str] = set()
        for _ in range(MAX_REGISTRATIONS + 1):
            try:
                with importing():
                    module = self._exec(name, file, as_file=self.path)
                self.unregistered = sorted(set(self.unregistered) | skipped)
                return module
            except LoadError as exc:
                cause = exc.__cause__
                while cause is not None and not isinstance(cause, ModuleNotFoundError):
                    cause = cause.__cause__ or cause.__context__
                package = self.stubs.can_stub(cause) if cause is not None else None
                if package is not None:  # the patch imports a package (its kernel's) that is not here
                    raise LoadError(f"the patched module imports {package}: {needs_text(package)}",
                                    package) from None
                unregistered = self._without_registration(text, exc.__cause__, file)
                if unregistered is None:
                    raise
            # A decorator of the original registered a function or class under its name (a model
            # registry) and gave it back; the same registration from the patched copy is refused
            # as a duplicate.  The copy runs without that decorator (all its uses), lines in place.
            text, names = unregistered
            skipped |= names
            with open(file, "w", encoding="utf-8") as handle:
                handle.write(text)
            linecache.checkcache(file)
        raise LoadError("too many registrations refused the patched copy")  # pragma: no cover

    def _registering(self, tree: ast.Module) -> list[tuple[str, ast.expr]]:
        """(name, outermost decorator) of the top-level classes and functions whose outermost
        decorator, in the original module, gave back an object of that name from the original file
        (so it only registered it; a wrapper such as ``functools.wraps`` may sit below it)."""
        original = self._original
        if original is None:
            return []
        out = []
        for node in tree.body:
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef)) or not node.decorator_list:
                continue
            value = original.__dict__.get(node.name)
            if getattr(value, "__qualname__", None) != node.name:
                continue
            if isinstance(node, ast.ClassDef):
                same = isinstance(value, type) and value.__module__ == original.__name__ \
                    and getattr(value, "__wrapped__", None) is None
            else:
                code = getattr(inspect.unwrap(value), "__code__", None)
                same = code is not None and os.path.realpath(code.co_filename) in {
                    os.path.realpath(self.path), os.path.realpath(self.original_file)}
            if same:
                out.append((node.name, node.decorator_list[0]))
        return out

    def _without_registration(self, text: str, exc: BaseException | None,
                              file: str) -> tuple[str, set[str]] | None:
        """When ``exc`` was raised while a registering decorator (see ``_registering``) ran in
        ``file``: ``text`` without every use of that decorator, and the names it decorated."""
        if exc is None:
            return None
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return None
        tb = exc.__traceback__
        last = None
        while tb is not None:
            if os.path.realpath(tb.tb_frame.f_code.co_filename) == os.path.realpath(file):
                last = tb.tb_lineno
            tb = tb.tb_next
        registering = self._registering(tree)
        failed = [dec for _, dec in registering if dec.lineno <= (last or 0) <= (dec.end_lineno or dec.lineno)]
        if not failed:
            return None
        callee = ast.dump(_callee(failed[0]))
        out = text.splitlines(keepends=True)
        names = set()
        for name, dec in registering:
            if ast.dump(_callee(dec)) != callee:
                continue
            names.add(name)
            for line in range(dec.lineno, (dec.end_lineno or dec.lineno) + 1):
                out[line - 1] = "\n"
        return "".join(out), names
