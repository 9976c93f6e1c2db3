"""The other modules of the package a checked file belongs to, read for layer typing.

``from .utils import get_same_padding_conv2d`` or ``from .common.conv import conv1x1``: what
the imported function builds is defined in a sibling module.  When the checked file lies in a
package on disk (``__init__.py`` folders, :func:`adopter.structure.names.package_of`), a name
imported from a module of the *same* top package is looked up in that module's source: parsed
with ``ast`` (never imported or executed), once per process (cached by path, size and
modification time), only when the name is built into a layer, and only below the package's
own folder (no other installed package is read), with a size cap and a small depth for
re-exports (``from .conv import conv1x1`` in ``common/__init__.py``, ``from .conv import *``).

A sibling is not parsed whole (a 200 kB module costs more than the checked file): its
top-level imports and one-line aliases are, and each top-level ``def``/``class`` only when a
name it defines is looked up (found by its line at column 0).  A definition whose text does
not parse alone is unknown: nothing is typed through it.
"""

from __future__ import annotations

import ast
import os
import re

from .formulas import gelu_function, passes_tensor_through, softmax_formula
from .literals import (
    held_whole,
    imported_table_reads_in,
    literal_table,
    written_in_place,
)
from .names import ModuleNames, collect_names, import_bindings

MAX_BYTES = 512_000  # a larger module is not read (generated code, vendored tables)
MAX_HOPS = 3  # re-exports followed from one import

# path -> (size, mtime_ns, typer or None); a typer keeps the module's tree and names
_MODULES: dict[str, tuple] = {}
_FILES: dict[tuple, str | None] = {}  # (folder holding the package, module) -> its file
_LAST_PACKAGE: list = [None]  # [(package, path, Package)]: Package.of's last


class Package:
    """The package of one checked file: its dotted name and the folder holding its top."""

    def __init__(self, package: str, path: str):
        self.package = package
        self.top = package.split(".")[0]
        folder = os.path.dirname(os.path.abspath(path))
        for _ in range(package.count(".") + 1):
            folder = os.path.dirname(folder)
        self.base = folder  # <base>/<top>/.../the file
        # ``towhee/models/...`` with no ``towhee/__init__.py``: ``towhee`` is a namespace package
        # (PEP 420) holding this one, and ``towhee.models.layers`` names ``<top>.layers``
        self.namespace = namespace_of(folder)
        # (owns' prefixes: ``top.`` and, below a namespace package, ``namespace.top.``)
        self._own = self.top + "."
        self._own_size = len(self._own)
        self._nested = None if self.namespace is None else f"{self.namespace}.{self._own}"
        self._nested_size = 0 if self._nested is None else len(self._nested)

    @classmethod
    def of(cls, package: str, path: str) -> Package:
        """The Package of a file, the last one made kept: the engine's look at imported tables
        (imported_table_words) and the file's structure then share one for the file."""
        last = _LAST_PACKAGE[0]  # (one tuple, read once: analyses may run in threads)
        if last is not None and last[0] == package and last[1] == path:
            return last[2]
        made = cls(package, path)
        _LAST_PACKAGE[0] = (package, path, made)
        return made

    def owns(self, fqn: str) -> bool:
        """Does ``fqn`` name something inside this package: ``top.<more>`` or, below a namespace
        package, ``namespace.top.<more>``?  (Prefixes compared by slices: every layer and
        call the file's typing resolves asks, and a split per ask cost more than the test.)"""
        if fqn[:self._own_size] == self._own:
            return fqn[self._own_size:] != ""
        if fqn == self.top:
            return False  # (the top package itself)
        return self._nested is not None and fqn[:self._nested_size] == self._nested

    def _file(self, module: str) -> str | None:
        key = (self.base, module)
        if key not in _FILES:
            _FILES[key] = self._find_file(module)
        return _FILES[key]

    def _find_file(self, module: str) -> str | None:
        parts = module.split(".")
        if parts[0] == self.namespace and len(parts) > 1 and parts[1] == self.top:
            parts = parts[1:]  # towhee.models.layers: models/layers below the namespace folder
        if parts[0] != self.top or any(not p.isidentifier() for p in parts):
            return None
        path = os.path.join(self.base, *parts)
        for candidate in (path + ".py", os.path.join(path, "__init__.py")):
            if os.path.isfile(candidate):
                return candidate
        return None

    def typer(self, module: str):
        """The layer typer of a module of this package (None: none such, too large)."""
        path = self._file(module)
        if path is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        cached = _MODULES.get(path)
        if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
            return cached[2]
        typer = None
        if stat.st_size <= MAX_BYTES:
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except (OSError, UnicodeError):
                text = None
            if text is not None:
                from .layers import LayerTyper

                package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
                typer = LayerTyper(_lazy_names(text, package), None, package=Package(package, path))
                typer.module = module
                typer.source = text
                # its text, as a module's own typer has it: the module-class readings gated on
                # it (a BatchNorm run over moved axes, a norm run first) read its classes as
                # they read a same-file one
                typer.text, typer.lines = text, text.splitlines()
        _MODULES[path] = (stat.st_size, stat.st_mtime_ns, typer)
        return typer

    def star_names(self, module: str, hops: int = 0) -> dict:
        """What ``from <module> import *`` binds, for a module of this package: name -> FQN
        (its imports, ``import torch.nn as nn`` -> ``torch.nn``; its own functions and classes
        as ``module.name``; what its own star imports of this package bind), limited to its
        ``__all__`` when it lists one, else its names without a leading underscore."""
        if hops > MAX_HOPS or not self.owns(module + ".x"):
            return {}
        typer = self.typer(module)
        if typer is None:
            return {}
        names: ModuleNames = typer.names
        out: dict = {}
        for star in names.stars:
            out.update(self.star_names(star, hops + 1))
        out.update(names.imports)
        for name in [*names.functions.defined(), *names.classes.defined()]:
            out[name] = f"{module}.{name}"
        if names.exported is not None:
            return {k: v for k, v in out.items() if k in names.exported}
        return {k: v for k, v in out.items() if not k.startswith("_")}

    def registered(self, fqn: str) -> tuple | None:
        """(typer of the defining module, the class expressions registered) for a registry
        ``fqn`` of this package: a module-level object built by a call (``Act =
        LayerFactory(...)``) that the module fills at its top level by calling its methods with
        a string key and a class (``Act.add_factory_class("gelu", nn.GELU)``).  Indexing it with
        a key (``Act[name]``) gives the class registered under that key.  None when ``fqn`` is
        no such object (keys registered another way are not read: a decorated function,
        ``@Act.factory_function("swish")``, returns a class we do not follow)."""
        module, _, name = fqn.rpartition(".")
        typer = self.typer(module) if self.owns(fqn) else None
        text = getattr(typer, "source", None)
        if text is None or not isinstance(typer.names.constants.get(name), ast.Call):
            return None
        classes = []
        for found in re.finditer(rf"^{re.escape(name)}[ \t]*\.[ \t]*[A-Za-z_]\w*[ \t]*\(", text, re.M):
            end = found.start()
            for _ in range(MAX_TRIES):
                newline = text.find("\n", end)
                nxt = _TOP.search(text, newline + 1) if newline >= 0 else None
                end = nxt.start() if nxt else len(text)
                try:
                    body = ast.parse(text[found.start():end]).body
                except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                    body = _newer_body(text[found.start():end], exc)
                    if body is None:
                        if end >= len(text):
                            break
                        continue
                call = body[0].value if len(body) == 1 and isinstance(body[0], ast.Expr) else None
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and isinstance(call.func.value, ast.Name) and call.func.value.id == name
                        and len(call.args) >= 2 and isinstance(call.args[0], ast.Constant)
                        and isinstance(call.args[0].value, str)):
                    classes.append(call.args[1])
                break
        return (typer, classes) if classes else None

    def find(self, fqn: str, hops: int = 0):
        """(typer of the defining module, name) for a function or class ``fqn`` of this package;
        for an alias there of another package's class (``Norm2d = nn.BatchNorm2d``), that
        class's FQN as the name."""
        if hops > MAX_HOPS or not self.owns(fqn):
            return None
        module, _, name = fqn.rpartition(".")
        typer = self.typer(module)
        if typer is None:
            return None
        names: ModuleNames = typer.names
        if name in names.functions or name in names.classes:
            return typer, name
        if name in names.imports:
            return self.find(names.imports[name], hops + 1)
        alias = names.constants.get(name)
        if isinstance(alias, (ast.Name, ast.Attribute)):  # Conv = SameConv2d
            target = names.resolve(alias)
            if target is not None and target != name:
                if target in names.functions or target in names.classes or not self.owns(target):
                    return typer, target  # (a class of another package: its FQN)
                return self.find(target, hops + 1)
        for star in names.stars:  # from .conv import *
            found = self.find(f"{star}.{name}", hops + 1)
            if found is not None:
                return found
        return None


_CHANGED: dict[tuple, bool] = {}  # (package folder, name) -> changed_in_package's answer


def changed_in_package(package: Package, name: str, held: bool = True) -> bool:
    """Does any module of the package change a module-level container ``name`` in place or
    hold it under another name (literals.written_in_place, literals.held_whole): a table
    another module defines as a literal is then not what a reader finds (``NONLIN["gelu"] =
    nn.Tanh()`` in the package's ``__init__``, ``table = NONLIN; table[k] = v`` in a
    ``register`` helper).  Every ``.py`` file under the package's folder that names it is read
    (a same-named local elsewhere counts too: cautious), once per folder and name.  ``held``
    False: only a change in place counts (the dict an instantiating table wraps is held whole
    by that table's constructor call: layers.LayerTyper._instantiated)."""
    folder = os.path.join(package.base, package.top)
    key = (folder, name) if held else (folder, name, False)
    if key in _CHANGED:
        return _CHANGED[key]
    changed = False
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d.isidentifier()]
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(root, file)
            try:
                if os.path.getsize(path) > MAX_BYTES:
                    continue
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except (OSError, UnicodeError):
                continue
            if name in text and (written_in_place(name, text) or held and held_whole(name, text)):
                changed = True
                break
        if changed:
            break
    _CHANGED[key] = changed
    return changed


def namespace_of(base: str) -> str | None:
    """The name of the folder holding a top package when it is a namespace package (an
    identifier, no ``__init__.py``: PEP 420), else None."""
    name = os.path.basename(base)
    if not name.isidentifier() or os.path.isfile(os.path.join(base, "__init__.py")):
        return None
    return name


def sibling_gelu(package: Package, fqn: str) -> str | None:
    """The GELU variant (formulas.gelu_function) a function ``fqn`` of another module of the
    package computes, or None (a class, a constant, not found); once per definition."""
    return _per_definition(package, fqn, "gelu_functions", gelu_function, None)


def sibling_passes_through(package: Package, fqn: str) -> bool:
    """Does a function ``fqn`` of another module of the package return any tensor argument as it
    is (formulas.passes_tensor_through: StripedHyena's ``grab_first_if_tuple`` in its utils)?
    False for a class, a constant, a name not found; once per definition."""
    return _per_definition(package, fqn, "pass_throughs", lambda func, _names: passes_tensor_through(func), False)


def sibling_softmax(package: Package, fqn: str) -> tuple | None:
    """(its def, the dtype it computes in) when a function ``fqn`` of another module of the
    package returns the softmax of its first parameter over its second on every path
    (formulas.softmax_formula, read with that module's own imports): fairseq's
    ``utils.softmax(x, dim, onnx_trace)``, called as ``utils.softmax(scores, dim=-1)`` from
    the attention module.  None for anything else; once per definition."""
    def read(func, names):
        dtype = softmax_formula(func, names)
        return (func, dtype) if dtype else None

    return _per_definition(package, fqn, "softmax_functions", read, None)


def sibling_table(package: Package, fqn: str) -> tuple | None:
    """The callables (their FQNs, each once) a module-level dict literal ``fqn`` of another
    module of the package holds, when its keys are literals, that module binds it once and
    reads it only one entry at a time (literals.literal_table: no item store, no ``update``)
    and every value names a callable: ``_valid_optimizers = {"adamw": torch.optim.AdamW, ...}``
    in ``config/valid.py``, which a trainer imports and calls an entry of.  A value the module
    defines itself is named in that module (``pkg.valid.MyOpt``); None for anything else.
    Worked out once per name and module."""
    module, _, name = fqn.rpartition(".")
    other = package.typer(module) if package.owns(fqn) else None
    if other is None:
        return None
    tables = other.tables
    if name not in tables:
        tables[name] = _table_of(other, module, name)
    return tables[name]


def _table_of(other, module: str, name: str) -> tuple | None:
    """sibling_table's reading of the module ``other`` (a LayerTyper of its source)."""
    text = getattr(other, "source", None)
    if text is None:
        return None
    value = other.names.constants.get(name)
    if value.__class__ is not ast.Dict or not value.values \
            or not all(k is not None and k.__class__ is ast.Constant for k in value.keys):
        return None
    if literal_table(name, value, text.splitlines()) is None:
        return None
    found: dict = {}
    for expr in value.values:
        target = other.names.resolve(expr) if expr.__class__ in (ast.Name, ast.Attribute) else None
        if target is None:
            return None
        if "." not in target:  # a class or function of that module itself
            target = f"{module}.{target}"
        found.setdefault(target, None)
    return tuple(found)


def imported_tables(imports: dict, text: str, package: Package) -> dict:
    """Local name -> the callables (sibling_table) of each table the file imports from another
    module of its package and reads only one entry at a time (literals.imported_table_reads):
    what a call of an entry may call, for the words a function must mention
    (ModuleStructure.table_words) and the rules a file may match (imported_table_words)."""
    found: dict = {}
    own = package.top + "."
    size = len(own)
    for local, fqn in imports.items():
        # (package.owns, written out: most names a file indexes are typing's, ``Optional[``)
        if fqn is None or fqn[:size] != own or not _indexed(text, local):
            continue
        table = sibling_table(package, fqn)
        if table and imported_table_reads_in(local, text):
            found[local] = table
    return found


def imported_table_words(tree: ast.Module, text: str, package: str, path: str) -> frozenset[str]:
    """The last components of the callables the tables imported_tables finds hold (``AdamW``),
    read before the file's structure is built: a rule whose words the text never writes may
    still match a call of such an entry (engine.relevant_rules).  Imports are read where
    names.collect_names reads them (the top level, also inside if/try/with blocks); only a
    ``from`` import of a name the text indexes (``name[``) can bind such a table."""
    imports: dict = {}
    top = package.partition(".")[0]
    _indexed_imports(tree.body, text, package, top + ".", imports)
    if not imports:
        return frozenset()
    tables = imported_tables(imports, text, Package.of(package, path))
    return frozenset(fqn.rpartition(".")[2] for table in tables.values() for fqn in table)


def base_class_texts(tree: ast.Module, package: str, path: str) -> list[str]:
    """The constructor texts (:func:`_constructor_text`) of the package's classes that are
    bases of this file's top-level classes (``class NoPEGQA(GQA)`` with ``from .model import
    GQA``), and of those classes' own package bases (up to MAX_HOPS): the layers such a base
    builds in its ``__init__`` are the subclass's (bindings._inherit_sibling), while the words
    naming them (``nn.Linear``) are written there, not in this file.  engine.relevant_rules
    reads a file's own text for a rule's words; these texts hold the words the inherited
    layers add.  Only the base's own ``__init__`` (and its class-level statements): the rest of
    its module, and its other methods, build nothing the subclass inherits as layers (the
    methods are that module's code, checked there), and a base such as ``PreTrainedModel``
    whose module writes every layer's name read as a whole added a dozen rules to most of
    transformers' modeling files (review48).  Read before the file's structure is built, from the
    top-level ``from`` imports of the package's own modules (relative, or below its top
    package) that bind a name a class lists as a base (``GQA``, or ``model`` in
    ``model.GQA``); [] for the many files whose classes derive from no such name."""
    top = package.partition(".")[0]
    own = top + "."
    size = len(own)
    imported: dict = {}  # local name -> the ``from`` import of the package binding it
    for stmt in tree.body:
        if stmt.__class__ is ast.ImportFrom and (stmt.level or ((stmt.module or "") + ".")[:size] == own):
            for alias in stmt.names:
                imported[alias.asname or alias.name] = stmt
    if not imported:
        return []
    bases: set = set()  # (local name, attribute path) of the bases an import binds
    for stmt in tree.body:
        if stmt.__class__ is not ast.ClassDef:
            continue
        for base in stmt.bases:
            dotted = ""
            while base.__class__ is ast.Attribute:
                dotted = f".{base.attr}{dotted}"
                base = base.value
            if base.__class__ is ast.Name and base.id in imported:
                bases.add((base.id, dotted))
        for item in stmt.body:
            # a processor's ``__call__(self, attn: Attention, ...)`` runs the layers of the
            # package class it is handed (model._annotated_siblings): its constructor's words too
            if item.__class__ is ast.FunctionDef and item.name == "__call__":
                for arg in item.args.args[1:] + item.args.kwonlyargs:
                    note = arg.annotation
                    if note.__class__ is ast.Constant and isinstance(note.value, str):
                        note = ast.Name(id=note.value.strip())
                    if note.__class__ is ast.Name and note.id in imported:
                        bases.add((note.id, ""))
    if not bases:
        return []
    fqns: list = []
    for name, dotted in bases:
        for local, fqn in import_bindings(imported[name], package):
            if local == name and fqn is not None:
                fqns.append(fqn + dotted)
    found = Package.of(package, path)
    texts: list = []
    seen: set = set()
    todo = [(fqn, 0) for fqn in fqns]
    while todo:
        fqn, hops = todo.pop()
        if hops > MAX_HOPS or fqn in seen:
            continue
        seen.add(fqn)
        where = found.find(fqn)
        if where is None:
            continue
        typer, name = where
        cls = typer.names.classes.get(name)
        text = _constructor_text(typer, name, cls)
        if text and text not in texts:
            texts.append(text)
        for base in getattr(cls, "bases", ()):
            resolved = typer.names.resolve(base)
            if resolved is not None and found.owns(resolved):
                todo.append((resolved, hops + 1))
    return texts


def _constructor_text(typer, name: str, cls) -> str:
    """The source of class ``name`` (``cls``) of ``typer``'s module without its methods other
    than ``__init__``: what bindings._inherit_sibling reads layers from.  "" when the class has
    no ``__init__`` of its own (it builds no layers; its bases are followed apart) or its
    module's source is not kept.  Kept on the typer (a cached sibling module's, shared by the
    package's files: transformers' modeling files all ask for ``PreTrainedModel``)."""
    known = getattr(typer, "constructor_texts", None)
    if known is None:
        known = typer.constructor_texts = {}
    text = known.get(name)
    if text is None:
        text = known[name] = _class_less_methods(typer, name, cls)
    return text


def _class_less_methods(typer, name: str, cls) -> str:
    """:func:`_constructor_text`, computed.  A sibling module's classes are parsed from their
    own segment of its text (_Definitions: line numbers count from there), so the class line
    is found in the text and the node's lines are shifted to it."""
    source = getattr(typer, "source", None)
    if source is None or cls.__class__ is not ast.ClassDef or not any(
            stmt.__class__ is ast.FunctionDef and stmt.name == "__init__" for stmt in cls.body):
        return ""
    found = re.search(rf"^class {re.escape(name)}\b", source, re.M)
    if found is None:
        return ""
    lines = typer.lines
    shift = source.count("\n", 0, found.start()) - (cls.lineno - 1)
    kept = lines[cls.lineno - 1 + shift:cls.body[0].lineno - 1 + shift]  # (the header and its bases)
    for stmt in cls.body:
        if stmt.__class__ in (ast.FunctionDef, ast.AsyncFunctionDef) and stmt.name != "__init__":
            continue
        first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", ()))])
        kept.extend(lines[first - 1 + shift:stmt.end_lineno + shift])
    return "".join(line + "\n" for line in kept)


_LAST_TEXT: list = [None, {}, None]  # the last text asked about, name -> is ``name[`` in it, its tails
TAIL = 64  # characters kept before each ``[`` (a longer name is looked for in the whole text)


def _indexed(text: str, name: str) -> bool:
    """``name + "[" in text``, each answer kept for the text: imported_table_words and the
    file's structure ask about the same imports of the same text.  Looked for in the text's
    bracket tails (_bracket_tails), a tenth of the text, made once per text on the first ask:
    a file asks about each name its package's own modules give it (a dozen, most never
    indexed), and a scan of the whole text per name cost more than the lookups it guards."""
    if _LAST_TEXT[0] is not text and _LAST_TEXT[0] != text:
        _LAST_TEXT[0] = text
        _LAST_TEXT[1] = {}
        _LAST_TEXT[2] = None
    answers = _LAST_TEXT[1]
    found = answers.get(name)
    if found is None:
        if name[TAIL:] or "[" in name:  # (longer than TAIL; a slice, not a call per name)
            found = name + "[" in text
        else:
            tails = _LAST_TEXT[2]
            if tails is None:
                tails = _LAST_TEXT[2] = _bracket_tails(text)
            found = name + "[" in tails
        answers[name] = found
    return found


def _bracket_tails(text: str) -> str:
    """The last TAIL characters before each ``[`` of ``text``, each followed by its ``[``.
    ``name + "["`` (``name`` no longer than TAIL, holding no ``[``) is in the text exactly when
    it is in these: its ``[`` ends one of the pieces between brackets, and ``name`` is that
    piece's end, so within its last TAIL characters; and a ``[`` here follows the end of a piece
    that the text also follows by a ``[``."""
    pieces = text.split("[")
    pieces.pop()  # (what follows the last bracket)
    return "[".join([piece[-TAIL:] for piece in pieces]) + "[" if pieces else ""


def _indexed_imports(body: list, text: str, package: str, own: str, imports: dict) -> None:
    """Into ``imports``: local name -> FQN of the names ``from`` imports of the package's own
    modules (relative, or below ``own``, the top package and a dot) in ``body`` bind that the
    text writes followed by ``[`` (the statements' own aliases tested first: most files index
    none of what they import)."""
    size = len(own)
    for stmt in body:
        kind = stmt.__class__
        if kind is ast.ImportFrom:
            if not stmt.level and ((stmt.module or "") + ".")[:size] != own:
                continue
            for alias in stmt.names:
                if _indexed(text, alias.asname or alias.name):
                    break
            else:
                continue
            for local, fqn in import_bindings(stmt, package):
                if fqn is not None and _indexed(text, local):
                    imports[local] = fqn
        elif kind is ast.If or kind is ast.With or kind is ast.Try or kind is _TRY_STAR:
            _indexed_imports(stmt.body, text, package, own, imports)
            if kind is not ast.With:
                _indexed_imports(stmt.orelse, text, package, own, imports)
            if kind is not ast.If and kind is not ast.With:
                _indexed_imports(stmt.finalbody, text, package, own, imports)
                for handler in stmt.handlers:
                    _indexed_imports(handler.body, text, package, own, imports)


def _per_definition(package: Package, fqn: str, cache: str, read, missing):
    """``read(func, names)`` of the function ``fqn`` names in another module of the package,
    kept in that module's dict attribute ``cache``; ``missing`` for a class, a constant, a name
    not found or of another package."""
    found = package.find(fqn)
    if found is None:
        return missing
    other, name = found
    answers = getattr(other, cache)
    if name not in answers:
        func = other.names.functions.get(name) if name not in other.names.classes else None
        answers[name] = missing if func is None else read(func, other.names)
    return answers[name]


_DEF = re.compile(r"^(?:async[ \t]+def|def|class)[ \t]+(\w+)", re.M)
_TOP = re.compile(r"^[A-Za-z_@]", re.M)  # a line starting a top-level statement (or a decorator)
_IMPORT = re.compile(r"^(?:from[ \t]+[\w.]+[ \t]+import[ \t]*(?:\([^)]*\)|[^\n]*)|import[ \t]+[^\n]*)", re.M)
_ALIAS = re.compile(r"^(\w+)[ \t]*=[ \t]*([A-Za-z_][\w.]*)[ \t]*(?:#[^\n]*)?$", re.M)
# NAME = ... or NAME: annotation = ... at column 0 (parsed when looked up)
_ASSIGN = re.compile(r"^([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)
_TRY = re.compile(r"^try[ \t]*:", re.MULTILINE)  # a top-level try statement
_HANDLER = re.compile(r"(?:except|else|finally)\b")
_ALL = re.compile(r"^__all__[ \t]*=[ \t]*(\[[^\]]*\]|\([^)]*\))", re.M)
_TRY_STAR = getattr(ast, "TryStar", ast.Try)  # (``try: ... except* E:``, Python 3.11+)
MAX_TRIES = 4  # a definition cut short by a column-0 line inside a string: extended this often


def _newer_body(piece: str, error: Exception) -> list | None:
    """The statements of a piece of a sibling module that ``ast`` rejected (``error``), when the
    piece is written in Python 3.12 syntax (``def f[T](...)``, a nested-quote f-string): read
    through its rendering at the same lines and columns (:mod:`..newer_syntax`); None
    otherwise.  Tried only after a ``SyntaxError``, and only when the piece holds such syntax
    (a piece cut short inside a string is rejected by LibCST too)."""
    if not isinstance(error, SyntaxError):
        return None
    from ..newer_syntax import MAYBE_NEWER, render

    rendered = render(piece) if MAYBE_NEWER.search(piece) else None
    if rendered is None:
        return None
    try:
        return ast.parse(rendered).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


class _Definitions(dict):
    """A module's top-level functions (or classes) by name, each parsed on first lookup; for
    ``kind`` ``ast.Assign``, the values of its top-level assignments (``_NORM_MAP = dict(...)``
    over several lines)."""

    def __init__(self, text: str, starts: dict, kind: type):
        super().__init__()
        self._text = text
        self._starts = starts  # name -> offset of its def/class line
        self._kind = kind

    def defined(self) -> list:
        """Every name defined (parsed or not yet)."""
        return [*dict.keys(self), *self._starts]

    def _load(self, name: str):
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        start = self._starts.pop(name, None)
        if start is None:
            return None
        text = self._text
        # decorators above the definition belong to it
        head = start
        while head > 0:
            previous = text.rfind("\n", 0, head - 1) + 1
            if text.startswith("@", previous):
                head = previous
            else:
                break
        end = start
        for _ in range(MAX_TRIES):
            newline = text.find("\n", end)
            found = _TOP.search(text, newline + 1) if newline >= 0 else None
            end = found.start() if found else len(text)  # the next top-level line (or decorator)
            try:
                body = ast.parse(text[head:end]).body
            except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                body = _newer_body(text[head:end], exc)
                if body is None:
                    if end >= len(text):
                        return None
                    continue
            node = body[0] if len(body) == 1 else None
            if self._kind is ast.Assign:
                value = _assigned_value(node, name)
                if value is not None:
                    dict.__setitem__(self, name, value)
                return value
            if isinstance(node, self._kind) and node.name == name:
                dict.__setitem__(self, name, node)
                return node
            return None
        return None

    def __contains__(self, name) -> bool:
        return self._load(name) is not None

    def __missing__(self, name):
        node = self._load(name)
        if node is None:
            raise KeyError(name)
        return node

    def get(self, name, default=None):
        node = self._load(name)
        return default if node is None else node


def _assigned_value(node, name: str):
    """The value a top-level statement binds to ``name`` alone: ``NAME = value`` or, annotated,
    ``NAME: dict[str, type] = value`` (efficientvit's ``REGISTERED_NORM_DICT``: the annotation
    changes nothing the module computes); None for anything else (a bare annotation, tuples)."""
    if node.__class__ is ast.Assign:
        if len(node.targets) == 1 and node.targets[0].__class__ is ast.Name and node.targets[0].id == name:
            return node.value
    elif node.__class__ is ast.AnnAssign:
        if node.target.__class__ is ast.Name and node.target.id == name and node.simple:
            return node.value
    return None


def _fallback_classes(text: str) -> dict:
    """Classes a top-level ``try`` defines in an except handler under a name its body imports:
    name -> the parsed class (line numbers relative to the ``try``)."""
    found: dict = {}
    for match in _TRY.finditer(text):
        end = len(text)
        newline = text.find("\n", match.start())
        for top in _TOP.finditer(text, newline + 1 if newline >= 0 else len(text)):
            if not _HANDLER.match(text, top.start()):
                end = top.start()
                break
        try:
            body = ast.parse(text[match.start():end]).body
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            body = _newer_body(text[match.start():end], exc)
            if body is None:
                continue
        if len(body) != 1 or not isinstance(body[0], ast.Try):
            continue
        imported = {a.asname or a.name.split(".")[0] for t in body[0].body if isinstance(t, (ast.Import, ast.ImportFrom))
                    for a in t.names}
        for handler in body[0].handlers:
            for stmt in handler.body:
                if isinstance(stmt, ast.ClassDef) and stmt.name in imported:
                    found[stmt.name] = stmt
    return found


def _lazy_names(text: str, package: str | None) -> ModuleNames:
    """The names of a sibling module: imports and aliases parsed now, definitions on demand."""
    statements = []
    for match in _IMPORT.finditer(text):
        try:
            statements.extend(ast.parse(match.group(0)).body)
        except (SyntaxError, ValueError):
            continue
    names = collect_names(ast.Module(body=statements, type_ignores=[]), package)
    functions: dict = {}
    classes: dict = {}
    for match in _DEF.finditer(text):
        target = classes if match.group(0).startswith("class") else functions
        target.setdefault(match.group(1), match.start())
    names.functions = _Definitions(text, functions, (ast.FunctionDef, ast.AsyncFunctionDef))
    names.classes = _Definitions(text, classes, ast.ClassDef)
    for name, fallback in _fallback_classes(text).items():
        # ``try: from apex... import FusedLayerNorm as LayerNorm / except ImportError: class
        # LayerNorm: ...``: the fallback is what the name computes (as names.collect_names reads
        # the checked file itself)
        dict.__setitem__(names.classes, name, fallback)
        names.imports.pop(name, None)
    assigned: dict = {}
    for match in _ASSIGN.finditer(text):
        if match.group(1) not in names.imports:
            assigned.setdefault(match.group(1), match.start())
    constants = names.constants = _Definitions(text, assigned, ast.Assign)
    exported = _ALL.search(text)
    if exported is not None:  # __all__ = ['TST', ...]: what ``from module import *`` binds
        try:
            value = ast.literal_eval(exported.group(1))
        except (SyntaxError, ValueError):
            value = None
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            names.exported = frozenset(value)
    for match in _ALIAS.finditer(text):
        if match.group(1) not in names.imports:
            try:  # (a line inside a string may look like one: ``x = yield``)
                dict.__setitem__(constants, match.group(1), ast.parse(match.group(2), mode="eval").body)
            except SyntaxError:
                continue
    return names
