"""Resolve the names a module imports to fully qualified names.

The fast path works on the standard ``ast`` tree: LibCST's QualifiedNameProvider costs
about 0.8 s per file with scope metadata, far too slow for a hook (SPEC section 6).  A
module's import table is flat enough that walking its import statements is exact for what
rules need: ``F.softmax`` -> ``torch.nn.functional.softmax``.

Relative imports resolve against the module's package when it is known (``package`` given);
otherwise they keep their leading dots (``...activations.ACT2FN``) and
:func:`names_match` lets a rule's absolute name match them by dotted suffix.
"""

from __future__ import annotations

import ast
import copy
import re

from ..records import dataclass, field
from .treewalk import ast_walk

_NAME, _ATTRIBUTE = ast.Name, ast.Attribute  # (resolve tests a node by exact class)


@dataclass
class ModuleNames:
    """What each module-level name stands for."""

    imports: dict[str, str] = field(default_factory=dict)  # local name -> FQN
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    constants: dict[str, ast.expr] = field(default_factory=dict)
    stars: list[str] = field(default_factory=list)  # modules imported with ``from m import *``
    # classes and functions defined in a module-level ``if``/``try`` block (``if HAS_TORCH:
    # class DoubleConv(nn.Module): ...``): walked like those of the module's own body
    nested: list = field(default_factory=list)
    exported: frozenset | None = None  # a module's ``__all__``, when it lists one (siblings.py)
    # a module-level ``Linear = partial(nn.Linear, bias=False)`` bound once: name -> that call
    partials: dict[str, ast.Call] = field(default_factory=dict)
    # a module-level ``GELU = nn.GELU if hasattr(nn, "GELU") else GELU_`` bound once, each
    # alternative a dotted name: name -> that conditional expression (layers.py reads it)
    choices: dict[str, ast.IfExp] = field(default_factory=dict)
    # a module-level ``conv3x3 = lambda cin, cout: nn.Conv2d(...)`` bound once: name -> that
    # lambda, a factory (layers.py reads a call of it as a same-file function's)
    lambdas: dict[str, ast.Lambda] = field(default_factory=dict)
    # same-file module class -> the torch function its forward computes of its arguments
    # (formulas.function_module; graph.FlowBuilder fills it on first use)
    wrappers: dict | None = None
    # an imported module's local name -> whether it is a module of the file's own package, and
    # (that name, attribute) of a call ``utils.softmax(...)`` through such a module -> what
    # siblings.sibling_softmax reads there (graph.FlowBuilder fills it on first use: one look
    # per name and file)
    sibling_softmaxes: dict | None = None
    # does the file's text name ``neg_`` (graph.FlowBuilder._body's in-place rotate-half reading
    # needs a ``<...>.neg_()`` statement; filled on first use)
    names_neg_: bool | None = None
    # module-level names bound more than once at the module's top level (also inside its
    # if/try/with blocks) or by an augmented assignment there: ``constants`` holds only the
    # last plain assignment of these, not the value a function reads (graph._module_fill)
    rebound: set = field(default_factory=set)
    # the names some function of the file declares ``global`` (filled on first use)
    declared_global: frozenset | None = None
    # the file's record types: names bound at module level to ``namedtuple(...)`` /
    # ``NamedTuple(...)`` and classes on ``typing.NamedTuple`` (record_types fills it on first use)
    records: frozenset | None = None
    # a module-level function's name -> its calls by that plain name in the file
    # (passed_defaults.calls_of, read for its integer defaults; filled on first use)
    passed_params: dict | None = None
    # the module's tree (collect_names keeps it for readings made on first use: plain_functions)
    tree: ast.Module | None = None
    # the same-file functions a call by plain name surely runs (plain_functions; first use)
    plain: dict | None = None
    # name -> how many times the module binds it at module level (module_bindings; first use)
    bindings: dict | None = None

    def resolve(self, expr: ast.expr) -> str | None:
        """The FQN of a dotted expression whose root is imported or local, else None."""
        node = expr
        if node.__class__ is _NAME:  # (a bare name, the commonest: no parts to join)
            root = node.id
            if root in self.imports:
                return self.imports[root]
            if root in self.classes or root in self.functions:
                return root
            return None
        parts: list[str] = []
        while node.__class__ is _ATTRIBUTE:
            parts.append(node.attr)
            node = node.value
        if node.__class__ is not _NAME:
            return None
        root = node.id
        if root in self.imports:
            base = self.imports[root]
        elif root in self.classes or root in self.functions:
            base = root
        else:
            return None
        dotted = ".".join([base, *reversed(parts)])
        if parts[1:] and parts[1] in _HOLDERS:
            # torch.nn.modules.conv.Conv2d written out in full is torch.nn.Conv2d (as imported
            # from there: _REEXPORTED), a private base or helper keeping its path
            module, _, name = dotted.rpartition(".")
            if module in _REEXPORTED and name[:1].isupper():
                return f"{_REEXPORTED[module]}.{name}"
        return dotted


_RECORD_FACTORIES = frozenset({"collections.namedtuple", "typing.NamedTuple", "typing_extensions.NamedTuple"})


def record_types(names: ModuleNames) -> frozenset:
    """The names of the file's record types, whose construction only holds its arguments, by
    position or keyword, as a tuple would: module-level ``R = namedtuple("R", [...])`` (or
    ``NamedTuple("R", [...])``) and classes whose base is ``typing.NamedTuple``.  A call of one
    passes values on (an attention's probabilities returned in ``R(out, attn)``) rather than
    computing with them.  Known by what builds the type, never by its name; memoised on
    ``names`` (asked only when a match has intermediates read after it)."""
    found = names.records
    if found is None:
        resolve = names.resolve
        found = frozenset(
            [name for name, value in names.constants.items()
             if value.__class__ is ast.Call and resolve(value.func) in _RECORD_FACTORIES]
            + [name for name, cls in names.classes.items()
               if any(resolve(base) in _RECORD_FACTORIES for base in cls.bases)])
        names.records = found
    return found


def param_default(args: ast.arguments, name: str) -> ast.expr | None:
    """The default a function's parameter ``name`` is written with (positional or keyword-only);
    None when it has none."""
    positional = [*args.posonlyargs, *args.args]
    for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        if arg.arg == name:
            return default
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        if arg.arg == name:
            return default
    return None


def class_body_value(cls: ast.ClassDef, attr: str) -> ast.expr | None:
    """The value ``cls``'s own body binds ``attr`` to (``X = v``, ``X = Y = v``, ``X: T = v``)
    when it binds it exactly once there; None otherwise.  Whether methods or other classes
    bind it again is for the caller to ask (what counts differs by reading)."""
    found = []
    for item in cls.body:
        if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in item.targets):
            found.append(item.value)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.target.id == attr \
                and item.value is not None:
            found.append(item.value)
    return found[0] if len(found) == 1 else None


def _absolute(module: str | None, level: int, package: str | None) -> str:
    if level == 0:
        return module or ""
    if package is not None:
        parts = package.split(".")
        if level - 1 <= len(parts):
            base = parts[: len(parts) - (level - 1)]
            return ".".join([*base, module] if module else base)
    return "." * level + (module or "")


def _nested(out: list, body: list) -> None:
    for stmt in body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(stmt)


def module_definitions(tree: ast.Module, names: ModuleNames) -> list:
    """The module's statements with the classes and functions of its module-level ``if`` and
    ``try`` blocks (``ModuleNames.nested``) after them: what walks every definition reads."""
    return [*tree.body, *names.nested] if names.nested else tree.body


def module_functions(tree: ast.Module, names: ModuleNames | None = None, nested: bool = False):
    """(owner class name or None, function) for every function of the module, methods too (the
    definitions under module-level ``if``/``try`` too, when ``names`` is given); ``nested``:
    each followed by the functions defined in its body, at any depth, with owner None."""
    for stmt in (tree.body if names is None else module_definitions(tree, names)):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield None, stmt
            if nested:
                yield from _nested_functions(stmt)
        elif isinstance(stmt, ast.ClassDef):
            for item in stmt.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield stmt.name, item
                    if nested:
                        yield from _nested_functions(item)


def _nested_functions(func):
    """Functions defined in a function's body (a-unet's plugin factories build their layers in
    an inner ``def Net(...)``), each walked as a function of its own: the walk of the outer
    function does not enter them."""
    for stmt in func.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield None, stmt
            yield from _nested_functions(stmt)


def collect_names(tree: ast.Module, package: str | None = None, local_imports: bool = False) -> ModuleNames:
    """Walk the module's top level (also inside if/try/with blocks) for imports and definitions;
    ``local_imports``: also the imports of function bodies (``_local_imports``), for what the
    analysis reads, never for a rewrite (which must know where each name is bound)."""
    names = ModuleNames(tree=tree)
    stack: list[ast.stmt] = list(reversed(tree.body))
    fallbacks: set[str] = set()
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for local, fqn in import_bindings(stmt, package):
                if fqn is None:
                    names.stars.append(local)
                else:
                    names.imports[local] = fqn
        elif isinstance(stmt, ast.ClassDef):
            names.classes[stmt.name] = stmt
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.functions[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            if stmt.targets[0].id in names.constants:
                names.rebound.add(stmt.targets[0].id)
            names.constants[stmt.targets[0].id] = stmt.value
        elif stmt.__class__ is ast.AugAssign or stmt.__class__ is ast.Assign:
            # ``_MIN /= 1e38``, ``a = b = ...``, ``a, b = ...``: a name bound again or otherwise
            names.rebound.update(n.id for t in (getattr(stmt, "targets", None) or [stmt.target])
                                 for n in ast_walk(t) if n.__class__ is _NAME and n.ctx.__class__ is ast.Store)
        elif stmt.__class__ is ast.AnnAssign and stmt.value.__class__ is ast.Dict and stmt.target.__class__ is ast.Name:
            # ``TABLE: dict[str, type] = {...}``: an annotated dict literal is one as well
            names.constants[stmt.target.id] = stmt.value
        elif isinstance(stmt, ast.If):
            stack.extend(reversed(stmt.orelse))
            stack.extend(reversed(stmt.body))
            _nested(names.nested, stmt.body)
            _nested(names.nested, stmt.orelse)
        elif isinstance(stmt, ast.With):
            # ``if __name__ == "__main__": with torch.device("cuda"): import torch.optim as
            # optim``: a with block opens no scope, its imports bind module names as an if's do
            stack.extend(reversed(stmt.body))
            _nested(names.nested, stmt.body)
        elif isinstance(stmt, ast.Try) or (hasattr(ast, "TryStar") and isinstance(stmt, ast.TryStar)):
            for handler in reversed(stmt.handlers):
                stack.extend(reversed(handler.body))
                _nested(names.nested, handler.body)
            stack.extend(reversed(stmt.body))
            _nested(names.nested, stmt.body)
            # ``try: from apex... import FusedLayerNorm as LayerNorm`` / ``except ImportError: class
            # LayerNorm(nn.Module): ...``: the fallback defined here is a drop-in for the import
            # (one name, one interface) and the one whose computation the file shows
            imported = {a.asname or a.name.split(".")[0] for t in stmt.body if isinstance(t, (ast.Import, ast.ImportFrom))
                        for a in t.names}
            fallbacks |= {t.name for h in stmt.handlers for t in h.body if isinstance(t, ast.ClassDef)} & imported
    for name in fallbacks:
        if name in names.classes:
            names.imports.pop(name, None)
    if names.stars and "torch" not in names.imports and _reads_torch_packages(tree) \
            and not binds(tree, "torch"):
        # ``from libs import *`` then ``torch.optim.Adam(...)`` with ``torch`` bound nowhere in
        # the file: the star import is what binds it at run time, and a root with ``.optim``,
        # ``.nn`` under it can only be the torch package (galerkin-transformer's examples);
        # a file that reads neither is not taken to mean torch by the spelling alone
        names.imports["torch"] = "torch"
    _local_classes(names)
    _member_classes(names)
    _aliases(names, tree)
    if local_imports:
        _local_imports(names, package)
    return names


# the nodes other than a Name store that bind names (bound_by gives which)
BINDERS = frozenset({ast.arg, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
                     ast.Global, ast.Nonlocal, ast.ExceptHandler, ast.MatchAs, ast.MatchStar})


def bound_by(node) -> list:
    """The names a :data:`BINDERS` node binds: a parameter, a def or class, an import's aliases,
    a global/nonlocal declaration, ``except E as n``, ``case ... as n`` / ``*n`` (one list of the
    binding forms, for every reader that must tell a name the code binds from one it only
    reads: graph's assigned choices, the star import's ``torch``)."""
    cls = node.__class__
    if cls is ast.arg:
        return [node.arg]
    if cls is ast.Import or cls is ast.ImportFrom:
        return [a.asname or a.name.split(".")[0] for a in node.names]
    if cls is ast.Global or cls is ast.Nonlocal:
        return node.names
    return [node.name] if node.name else []


def binds(tree: ast.AST, name: str) -> bool:
    """Does ``tree`` (a module, a statement) bind ``name`` anywhere (an assignment or other
    store, or any :func:`bound_by` form)?  Asked of files with a star import, to tell a name the
    star import must supply from one the file defines itself, and of a function's statements
    (never_none.py: a local bound by ``case ... as m`` or an import is no plain assignment)."""
    for node in ast_walk(tree):
        cls = node.__class__
        if cls is ast.Name:
            if node.id == name and node.ctx.__class__ is not ast.Load:
                return True
        elif cls in BINDERS and name in bound_by(node):
            return True
    return False


def star_module_package(names: ModuleNames, tree: ast.Module) -> None:
    """A root name bound nowhere in the file, whose ``.Module`` the file's classes subclass
    (``class Bottleneck(nn.Module):`` under ``from fastai.vision.all import *``, or ``from
    .layers import *`` of a module that imports ``torch.nn as nn``): the star import binds it,
    and a package whose ``Module`` is a base with ``forward`` methods, read together with the
    torch classes under it, is torch's ``torch.nn`` -- its layers are typed like imported ones
    instead of read as unknown calls.  Decided by the class bases the file writes, whatever
    the name; a file that binds the name itself (or imports it) keeps its own binding.  Only
    in a file that involves torch (imports it, or reads ``torch`` itself): flax, MXNet or
    another framework's star-imported ``nn.Module`` is not torch's.  Asked only when a star
    import comes from outside the file's package (a module of the package says itself what its
    star import binds: siblings.Package.star_names)."""
    roots = set()
    for cls in names.classes.values():
        for base in cls.bases:
            if base.__class__ is ast.Attribute and base.attr == "Module" and base.value.__class__ is ast.Name:
                roots.add(base.value.id)
    unbound = [root for root in roots
               if root not in names.imports and root not in names.classes and root not in names.functions
               and root not in names.constants and not binds(tree, root)]
    if unbound and _involves_torch(names, tree):
        for root in unbound:
            names.imports[root] = "torch.nn"


def _involves_torch(names: ModuleNames, tree: ast.Module) -> bool:
    """Does the file import torch (any ``torch...`` module) or read the name ``torch`` (bound
    by a star import)?  The evidence that a star-imported ``nn`` is torch's."""
    for qualified in names.imports.values():
        if qualified == "torch" or qualified.startswith("torch."):
            return True
    for node in ast_walk(tree):
        if node.__class__ is ast.Name and node.id == "torch":
            return True
    return False


def _reads_torch_packages(tree: ast.Module) -> bool:
    """Does the module read ``torch.optim`` or ``torch.nn`` (the condition under which a
    star-imported ``torch`` is taken for the package)?"""
    for node in ast_walk(tree):
        if node.__class__ is ast.Attribute and node.attr in ("optim", "nn") and node.value.__class__ is ast.Name \
                and node.value.id == "torch" and node.ctx.__class__ is ast.Load:
            return True
    return False


def _local_classes(names: ModuleNames) -> None:
    """Classes defined in the body of a module-level function (a factory building its module
    class where it returns an instance: ``def make_backbone(): class TinyBackbone(nn.Module):
    ...; return TinyBackbone(c)``): read as the file's classes, their layers and forward like
    any other's.  Only a name the module binds nowhere else, defined in one function alone."""
    found: dict[str, ast.ClassDef | None] = {}
    for func in names.functions.values():
        for stmt in func.body:
            if stmt.__class__ is ast.ClassDef:
                found[stmt.name] = None if stmt.name in found else stmt
    for name, node in found.items():
        if node is not None and name not in names.classes and name not in names.functions \
                and name not in names.imports and name not in names.constants:
            names.classes[name] = node
            names.nested.append(node)  # (module_definitions: walked as the module's own classes)


def _member_classes(names: ModuleNames) -> None:
    """Classes defined in another class's body (rtdl's ``MLP.Block``, ``ResNet.Block``,
    ``Transformer.FFN``), at any depth: read as the file's classes under their qualified names
    (``Outer.Inner``, which ``Outer.Inner(...)`` resolves to), their layers and forward like any
    other's.  A class body opens no scope for its methods, so the inner class's code names what
    module-level code would.  Each is a shallow copy of the definition carrying that name (the
    body is shared); the outer class's own walk is unchanged."""
    pending = [(name, node) for name, node in names.classes.items()]
    while pending:
        outer, node = pending.pop()
        for stmt in node.body:
            if stmt.__class__ is ast.ClassDef:
                qualified = f"{outer}.{stmt.name}"
                if qualified in names.classes:
                    continue
                inner = copy.copy(stmt)
                inner.name = qualified
                names.classes[qualified] = inner
                names.nested.append(inner)  # (module_definitions: walked as the module's own classes)
                pending.append((qualified, inner))


# a line where a function-local import may start: an indented ``import``/``from``, or one after
# a ``;``, a ``:`` or a line continuation (``def f(): import torch``).  A file without one has no
# local import, and its functions' bodies are not read for them (a string test on the file text)
_LOCAL_IMPORT_TEXT = re.compile(r"(?:^[ \t\f]+|[;:\\]\s*)(?:import|from)\b", re.MULTILINE)


_BLANK = frozenset(" \t\f")
_AFTER = frozenset(";:\\")


def may_import_locally(text: str | None) -> bool:
    r"""Can the file ``text`` hold a function-local import (True when the text is not known)?

    The same answer as ``_LOCAL_IMPORT_TEXT.search(text)``, found from each ``import``/``from``
    (``str.find``, in C) by what precedes it: a regex with no literal to start from is tried at
    every character of the file, 0.2 s over the paper's 199 files.  For any text, non-ASCII
    too: the pattern's ``\s`` is ``str.isspace()`` (one Unicode table, ``\x1c``-``\x1f``
    among it), the ``\b`` after the word a character neither ``str.isalnum()`` nor ``_``, and
    its MULTILINE ``^`` the text's start or just after a ``\n`` (the regex that non-ASCII
    files were left to was 0.05 s per pass over the paper's 25 such files)."""
    if text is None:
        return True
    for word in ("import", "from"):
        end = len(word)
        at = text.find(word)
        while at != -1:
            after = at + end
            if after == len(text) or not (text[after].isalnum() or text[after] == "_"):
                i = at
                while i and text[i - 1] in _BLANK:
                    i -= 1
                if i < at and (i == 0 or text[i - 1] == "\n"):
                    return True  # an indented import/from
                while i and text[i - 1].isspace():
                    i -= 1
                if i and text[i - 1] in _AFTER:
                    return True  # after ';', ':' or a line continuation
            at = text.find(word, at + 1)
    return False


# a function's statements that may hold a local import: the import itself, or a block whose
# body may (``try: import torch`` / ``except ...``, ``if TYPE_CHECKING:``, ``with ...:``)
_LOCAL_SCAN = frozenset({ast.Import, ast.ImportFrom, ast.If, ast.Try, ast.With}
                        | ({ast.TryStar} if hasattr(ast, "TryStar") else set()))
_FUNCTIONS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef})


def _local_imports(names: ModuleNames, package: str | None) -> None:
    """Imports written in a function's body (``def train(...): import torch``, a script that
    keeps importing the package cheap) bind their names for the file, as a module-level import
    would: only a name that no module-level statement binds (import, class, function or
    assignment) and that every function-local import in the file binds to the same thing, so
    that reading the name anywhere in the file means what the local import says (a function
    that reads it without its own import would fail at run time)."""
    todo = None
    for func in names.functions.values():
        for stmt in func.body:
            if stmt.__class__ in _LOCAL_SCAN:
                if todo is None:
                    todo = []
                todo.append(stmt)
    for node in names.classes.values():
        for item in node.body:
            if item.__class__ in _FUNCTIONS:
                for stmt in item.body:
                    if stmt.__class__ in _LOCAL_SCAN:
                        if todo is None:
                            todo = []
                        todo.append(stmt)
    if todo is None:
        return
    local: dict[str, str | None] = {}
    while todo:
        stmt = todo.pop()
        kind = stmt.__class__
        if kind is ast.Import or kind is ast.ImportFrom:
            for name, fqn in import_bindings(stmt, package):
                if fqn is not None:  # (a star import binds nothing known)
                    _bind_local(local, name, fqn)
        else:  # a block: its statements (and its branches' and handlers'), read without a call
            # for the many blocks that hold no import (``if mask is not None:``)
            for inner in stmt.body:
                if inner.__class__ in _LOCAL_SCAN:
                    todo.append(inner)
            if kind is not ast.With:
                for inner in stmt.orelse:
                    if inner.__class__ in _LOCAL_SCAN:
                        todo.append(inner)
                if kind is not ast.If:
                    for handler in stmt.handlers:
                        for inner in handler.body:
                            if inner.__class__ in _LOCAL_SCAN:
                                todo.append(inner)
    for name, fqn in local.items():
        if (fqn is not None and name not in names.imports and name not in names.classes
                and name not in names.functions and name not in names.constants):
            names.imports[name] = fqn


def imported_by(stmts: list, package: str | None = None) -> dict[str, str] | None:
    """name -> what it is bound to, for a block whose statements are all imports (``from
    mup.optim import MuSGD as SGD``), as :func:`collect_names` resolves them; None when the
    block holds anything else or a star import."""
    found: dict[str, str] = {}
    for stmt in stmts:
        if stmt.__class__ is not ast.Import and stmt.__class__ is not ast.ImportFrom:
            return None
        for local, fqn in import_bindings(stmt, package):
            if fqn is None:
                return None
            found[local] = fqn
    return found


def import_bindings(stmt: ast.Import | ast.ImportFrom, package: str | None = None) -> list[tuple[str, str | None]]:
    """(local name, what it is bound to) for each name an import statement binds (``import
    torch.nn`` binds ``torch``; ``from torch.nn.modules.conv import Conv2d``, the public
    ``torch.nn.Conv2d``); a star import gives (its module, None)."""
    if stmt.__class__ is ast.Import:
        return [(alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0],) * 2
                for alias in stmt.names]
    base = _absolute(stmt.module, stmt.level, package)
    public = _REEXPORTED[base] if base in _REEXPORTED else None  # (no call: every import reads it)
    sep = "" if base.endswith(".") else "."
    out: list[tuple[str, str | None]] = []
    for alias in stmt.names:
        name = alias.name
        if name == "*":
            out.append((base, None))
        elif public is not None and name[:1].isupper():  # ``torch.optim.adam.Adam`` is ``torch.optim.Adam``
            out.append((alias.asname or name, f"{public}.{name}"))
        else:
            out.append((alias.asname or name, f"{base}{sep}{name}" if base else name))
    return out


def _bind_local(local: dict, name: str, fqn: str) -> None:
    if local.get(name, fqn) != fqn:
        local[name] = None  # two local imports, two meanings: the name is no one thing
    else:
        local[name] = fqn


# torch's submodules that define a class its package re-exports under the same name: a class
# imported from where it is defined (``from torch.optim.adam import Adam``, ``from
# torch.nn.modules.linear import Linear``) is the package's public class (``torch.optim.Adam``,
# ``torch.nn.Linear``), the one rules name.  Public (capitalised) names only: a private base
# (``torch.nn.modules.batchnorm._BatchNorm``) or a helper function keeps its full path, and
# ``torch.optim.lr_scheduler``'s classes are not re-exported by ``torch.optim``.  The package
# ``torch.nn.modules`` itself re-exports every class of its submodules (``from torch.nn.modules
# import Linear, BatchNorm1d``: torch.nn's own classes, as mvts-style encoders import them).
_REEXPORTED = {
    "torch.nn.modules": "torch.nn",
    **{f"torch.optim.{m}": "torch.optim" for m in (
        "adadelta", "adagrad", "adam", "adamax", "adamw", "asgd", "lbfgs", "nadam", "optimizer", "radam",
        "rmsprop", "rprop", "sgd", "sparse_adam")},
    **{f"torch.nn.modules.{m}": "torch.nn" for m in (
        "activation", "adaptive", "batchnorm", "channelshuffle", "container", "conv", "distance", "dropout",
        "flatten", "fold", "instancenorm", "linear", "loss", "module", "normalization", "padding",
        "pixelshuffle", "pooling", "rnn", "sparse", "transformer", "upsampling")},
}

# the last part of each such submodule (``conv`` of ``torch.nn.modules.conv``): a dotted name
# whose next-to-last part is none of these needs no look-up (ModuleNames.resolve)
_HOLDERS = frozenset(module.rpartition(".")[2] for module in _REEXPORTED)


_PARTIALS = frozenset({"functools.partial"})


def _aliases(names: ModuleNames, tree: ast.Module) -> None:
    """A module-level ``BatchNorm2d = nn.BatchNorm2d``: the name stands for what the dotted
    name it is bound to resolves to, as ``from torch.nn import BatchNorm2d`` would make it.
    Only a name bound once at module level (not also imported, defined, or bound again in an
    ``if``/``try`` branch or through ``global`` in a function), to an imported dotted name."""
    candidates = {name: value for name, value in names.constants.items()
                  if (isinstance(value, (ast.Attribute, ast.Name))
                      or (isinstance(value, ast.Call) and value.args and names.resolve(value.func) in _PARTIALS)
                      or (isinstance(value, ast.IfExp) and isinstance(value.body, (ast.Attribute, ast.Name))
                          and isinstance(value.orelse, (ast.Attribute, ast.Name)))
                      or value.__class__ is ast.Lambda)
                  and name not in names.imports and name not in names.classes and name not in names.functions}
    if not candidates:
        return
    bound: dict[str, int] = {}
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
                for node in ast_walk(target):
                    if isinstance(node, ast.Name) and node.id in candidates:
                        bound[node.id] = bound.get(node.id, 0) + 1
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                name = alias.asname or alias.name.split(".")[0]
                if name in candidates:
                    bound[name] = bound.get(name, 0) + 2
        elif isinstance(stmt, (ast.If, ast.Try, ast.For, ast.While, ast.With)) or type(stmt).__name__ == "TryStar":
            for block in (getattr(stmt, "body", []), getattr(stmt, "orelse", []), getattr(stmt, "finalbody", []),
                          *(h.body for h in getattr(stmt, "handlers", []))):
                stack.extend(block)
    for name, value in candidates.items():
        if bound.get(name) != 1:
            continue
        if isinstance(value, ast.Call):
            # Linear = partial(nn.Linear, bias=False): what the partial builds (layers.py reads it)
            names.partials[name] = value
            continue
        if isinstance(value, ast.IfExp):
            # GELU = nn.GELU if hasattr(nn, "GELU") else GELU_: either class (layers.py reads both)
            names.choices[name] = value
            continue
        if value.__class__ is ast.Lambda:
            names.lambdas[name] = value  # conv3x3 = lambda cin, cout: nn.Conv2d(...): a factory
            continue
        root = value
        while isinstance(root, ast.Attribute):
            root = root.value
        if not isinstance(root, ast.Name) or root.id not in names.imports or root.id == name:
            continue
        fqn = names.resolve(value)
        if fqn is not None:
            names.imports[name] = fqn
    if names.partials or names.choices or names.lambdas or any(name in names.imports for name in candidates):
        for node in ast_walk(tree):
            if isinstance(node, ast.Global):
                for name in node.names:
                    if names.imports.get(name) is not None and name in candidates:
                        del names.imports[name]
                    names.partials.pop(name, None)
                    names.choices.pop(name, None)
                    names.lambdas.pop(name, None)


def names_match(pattern_name: str, code_name: str) -> bool:
    """Does a rule's absolute name denote the code's (possibly relative) name?

    A pattern name without a dot names a model class (``BertSelfAttention``): it denotes the
    class defined in the file and also one imported from a sibling module
    (``from .modeling_bert import BertSelfAttention``), where the code's name is qualified.
    """
    if pattern_name == code_name:
        return True
    if "." not in pattern_name:
        return code_name.rsplit(".", 1)[-1] == pattern_name and "." in code_name
    if code_name.startswith("."):
        tail = code_name.lstrip(".")
        return bool(tail) and pattern_name.endswith("." + tail)
    return False


NAMESPACE_FOLDERS = 2  # folders without ``__init__.py`` read as portions of the package above them


def package_of(path: str) -> str | None:
    """The dotted package of a file, found by walking up through ``__init__.py`` folders.

    A folder without ``__init__.py`` right below a regular package is a namespace portion of
    it (PEP 420: ``import tinymm.MLM.model`` works with ``tinymm/__init__.py`` and no
    ``tinymm/MLM/__init__.py``): up to NAMESPACE_FOLDERS such folders between the file and the
    regular package belong to the dotted name.  Folders with no regular package above them
    leave the file outside any package, as before."""
    import os

    folder = os.path.dirname(os.path.abspath(path))
    parts: list[str] = []
    pending: list[str] = []  # namespace folders below the file's regular package, if one comes
    while True:
        name = os.path.basename(folder)
        if os.path.isfile(os.path.join(folder, "__init__.py")):
            parts.extend(pending)
            pending = []
            parts.append(name)
        elif parts or len(pending) == NAMESPACE_FOLDERS or not name.isidentifier():
            break
        else:
            pending.append(name)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return ".".join(reversed(parts)) or None


_DEFINES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def module_bindings(names: ModuleNames) -> dict:
    """How many times each name is bound at module level: by a ``def`` or ``class``, an import,
    an assignment's targets, a loop's, a ``with``'s ``as``, ``except ... as``, a ``case``
    pattern, or ``del``, in the module's body and the blocks of its statements (not inside
    functions or classes).  Only targets are walked, never values (a module-level table of
    thousands of nodes binds nothing); a ``:=`` inside a module-level expression is not read.
    Read once per module on first use (plain_functions, builtin_unbound)."""
    counts = names.bindings
    if counts is None:
        counts = names.bindings = {}
        todo = list(names.tree.body) if names.tree is not None else []
        while todo:
            stmt = todo.pop()
            cls = stmt.__class__
            if cls in _DEFINES:
                counts[stmt.name] = counts.get(stmt.name, 0) + 1
                continue
            if cls is ast.Import or cls is ast.ImportFrom:
                targets = []
                for bound in bound_by(stmt):
                    counts[bound] = counts.get(bound, 0) + 1
            elif cls is ast.Assign or cls is ast.Delete:
                targets = stmt.targets
            elif cls is ast.AugAssign or cls is ast.AnnAssign:
                targets = [stmt.target]
            elif cls is ast.For or cls is ast.AsyncFor:
                targets = [stmt.target]
            elif cls is ast.With or cls is ast.AsyncWith:
                targets = [item.optional_vars for item in stmt.items if item.optional_vars is not None]
            elif cls is ast.Match:
                targets = [case.pattern for case in stmt.cases]
                todo.extend(item for case in stmt.cases for item in case.body)
            else:
                targets = []
            for target in targets:
                for node in ast_walk(target):
                    kind = node.__class__
                    if kind is _NAME:
                        if node.ctx.__class__ is not ast.Load:
                            counts[node.id] = counts.get(node.id, 0) + 1
                    elif kind is ast.MatchAs or kind is ast.MatchStar:
                        if node.name:
                            counts[node.name] = counts.get(node.name, 0) + 1
            for field in ("body", "orelse", "finalbody"):
                block = getattr(stmt, field, None)
                if block.__class__ is list:
                    todo.extend(block)
            for handler in getattr(stmt, "handlers", ()):
                if handler.name:
                    counts[handler.name] = counts.get(handler.name, 0) + 1
                todo.extend(handler.body)
    return counts


def builtin_unbound(names: ModuleNames, name: str) -> bool:
    """Is builtin ``name`` (``vars``, ``getattr``) left as Python's own in this module: bound by
    no module-level form (``vars = lambda obj: {...}``, an import, a ``def``, a loop)?  A
    function's own local is the caller's to check; a function declaring it ``global`` and
    binding it is not looked for (declared_global walks every function: too dear for a test
    every ``getattr(...)`` call asks)."""
    return name not in module_bindings(names)


class PlainFunctions:
    """:func:`plain_functions` of a module, worked out only when a name is first looked up in
    it: a reader handed it (never_none.py) asks only where a call's target is a same-file
    function, and most that are handed it never ask."""

    __slots__ = ("names",)

    def __init__(self, names: ModuleNames):
        self.names = names

    def __contains__(self, name) -> bool:
        return name in self.names.functions and name in plain_functions(self.names)

    def __getitem__(self, name):
        return plain_functions(self.names)[name]


def plain_functions(names: ModuleNames) -> dict:
    """The same-file functions a call by plain name surely runs: name -> its ``def``, for each
    name bound at module level exactly once, by an undecorated ``def`` in the module's own body
    (not under an ``if``/``try``), and declared ``global`` by no function.  ``names.functions``
    keeps the last ``def`` seen, whatever a decorator, a conditional redefinition or a later
    ``name = ...`` makes of it (never_none.py reads a function's returns: only here are they
    what the call returns).  Read once per module on first use."""
    if names.plain is None:
        counts = module_bindings(names)
        top = {stmt.name: stmt for stmt in (names.tree.body if names.tree is not None else ())
               if stmt.__class__ in (ast.FunctionDef, ast.AsyncFunctionDef) and not stmt.decorator_list}
        hidden = declared_global(names)
        names.plain = {name: func for name, func in top.items()
                       if counts.get(name) == 1 and name not in hidden and names.functions.get(name) is func}
    return names.plain


def declared_global(names: ModuleNames) -> frozenset:
    """The names a function or method of the file declares ``global`` (it may write the
    module's value there), read once per module on first use."""
    if names.declared_global is None:
        functions = [*names.functions.values(),
                     *(item for cls in names.classes.values() for item in cls.body
                       if item.__class__ in (ast.FunctionDef, ast.AsyncFunctionDef))]
        names.declared_global = frozenset(name for func in functions for node in ast_walk(func)
                                          if node.__class__ is ast.Global for name in node.names)
    return names.declared_global
