"""Where a project builds a class, and with what: calls found with ``ast``, values evaluated statically.

A CIFAR ResNet takes ``block`` and ``num_blocks``; nothing in the class says which, but the
project does: ``def ResNet18(): return ResNet(BasicBlock, [2, 2, 2, 2])``, a ``__main__`` block,
a test, a training script (``model = GPT(GPTConfig(**model_args))``).  This module scans the
project's Python files (the analysed file first, then its folder, its package, the project's
scripts and tests; nothing is imported) for calls of the class, and evaluates their arguments
without running anything:

- literals, containers, arithmetic, negation;
- names bound by a simple assignment earlier in the same function or at module level, and
  parameters of the enclosing function that have defaults (``def resnet18(num_classes=10)``), a
  default of ``None`` excepted (it says "not given": the callers' value is not known);
- names of the analysed module (classes such as ``BasicBlock``, configs such as ``GPTConfig``)
  become :class:`~adopter.verify.recipes.Ref`s, resolved later in the original and the patched
  module alike; calls of them become :class:`~adopter.verify.recipes.Make`s;
- ``torch``/``nn`` attributes (``nn.GELU``) are looked up in torch.

Anything else (``args.n_layer`` from argparse, a function call) is :data:`UNKNOWN`, and the
argument is left to the class's default or to a guess.  The scan is bounded (files, bytes).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from .recipes import Link, Make, Ref

MAX_FILES = 400
MAX_BYTES = 1_000_000
SKIP_DIRS = {".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "env", "node_modules", "build", "dist",
             "site-packages", "__pycache__", ".mypy_cache", ".pytest_cache", ".eggs", "wandb", "outputs", "logs"}


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


@dataclass
class CallSite:
    """One call of the class: its arguments as far as they are known, and where it is."""

    where: str
    args: list[Any]
    kwargs: dict[str, Any]
    splat: bool = False  # it passes **something unknown
    indirect: bool = False  # the class is an argument of the call (``build(Net, **kwargs)``): keywords may be for it

    def known(self) -> int:
        return sum(v is not UNKNOWN for v in self.args) + sum(v is not UNKNOWN for v in self.kwargs.values())


def project_root(path: Path) -> Path:
    """The folder of the nearest pyproject.toml / setup.py / setup.cfg / .git above ``path``."""
    for folder in [path.parent, *path.parents]:
        if any((folder / marker).exists() for marker in ("pyproject.toml", "setup.py", "setup.cfg", ".git")):
            return folder
    return path.parent


def candidate_files(path: Path, package_root: Path | None) -> Iterator[Path]:
    """The analysed file, its folder, its package, then the project (scripts, tests), bounded."""
    seen: set[Path] = set()
    roots = [path.parent]
    if package_root is not None:
        roots.append(package_root)
    roots.append(project_root(path))
    count = 0

    def files_under(root: Path, recursive: bool) -> Iterator[Path]:
        if not root.is_dir():
            return
        if not recursive:
            yield from sorted(p for p in root.glob("*.py") if p.is_file())
            return
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(files):
                if name.endswith(".py"):
                    yield Path(folder) / name

    for candidate in [path] + [p for i, r in enumerate(roots) for p in files_under(r, recursive=i > 0)]:
        resolved = candidate.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        count += 1
        if count > MAX_FILES:
            return
        yield candidate


@dataclass
class _FileInfo:
    path: Path
    tree: ast.Module
    is_target: bool
    target_names: dict[str, str] = field(default_factory=dict)  # local name -> name in the analysed module
    target_modules: set[str] = field(default_factory=set)  # local names bound to the analysed module
    torch_names: dict[str, str] = field(default_factory=dict)  # local name -> dotted torch path


def _module_names(path: Path, package: str | None) -> set[str]:
    stem = path.stem
    names = {stem}
    if package:
        names.add(f"{package}.{stem}")
    return names


def _imports(info: _FileInfo, target: Path, target_names: set[str]) -> None:
    for node in info.tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in target_names:
                    info.target_modules.add(alias.asname or alias.name.split(".")[0])
                elif alias.name == "torch" or alias.name.startswith("torch."):
                    local = alias.asname or alias.name.split(".")[0]
                    info.torch_names[local] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            resolved = None
            if node.level:
                base = info.path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                resolved = base.joinpath(*module.split(".")) if module else base
            from_target = module in target_names or (
                resolved is not None and (resolved.with_suffix(".py").resolve() == target.resolve()))
            for alias in node.names:
                local = alias.asname or alias.name
                if from_target:
                    info.target_names[local] = alias.name
                elif resolved is not None and not module and (base / f"{alias.name}.py").resolve() == target.resolve():
                    info.target_modules.add(local)
                elif module == "torch" or module.startswith("torch."):
                    info.torch_names[local] = f"{module}.{alias.name}"


@lru_cache(maxsize=1024)
def _cached_text(path: str, mtime: int, size: int) -> str | None:
    """A project file's text, read once per run for all the classes whose calls are looked up."""
    if size > MAX_BYTES:
        return None
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def source_text(path: Path) -> str | None:
    """A project file's text (at most MAX_BYTES), read once per run while it is unchanged."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _cached_text(str(path), stat.st_mtime_ns, stat.st_size)


def _load(path: Path, target: Path, target_names: set[str]) -> _FileInfo | None:
    text = source_text(path)
    if text is None:
        return None
    return _parse(path, text, target, target_names)


def _parse(path: Path, text: str, target: Path, target_names: set[str]) -> _FileInfo | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    info = _FileInfo(path, tree, path.resolve() == target.resolve())
    _imports(info, target, target_names)
    return info


class _Evaluator:
    """Static values of expressions at one call site."""

    def __init__(self, info: _FileInfo, scopes: list[ast.AST], line: int, module_defs: set[str],
                 links: dict[str, Any] | None = None):
        self.info = info
        self.scopes = scopes  # innermost function first, then the module
        self.line = line
        self.module_defs = module_defs  # names defined at the analysed module's top level
        self.depth = 0
        # the enclosing function's parameters the class call hands on as they are (name ->
        # position or keyword in that call): inside another value (``nn.Linear(emb_dim, emb_dim)``)
        # such a parameter is whatever the class gets for that argument (a Link)
        self.links = links or {}

    def value(self, node: ast.AST) -> Any:
        self.depth += 1
        try:
            if self.depth > 12:
                return UNKNOWN
            return self._value(node)
        finally:
            self.depth -= 1

    def _value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.value(e) for e in node.elts]
            if any(i is UNKNOWN for i in items) or any(isinstance(e, ast.Starred) for e in node.elts):
                return UNKNOWN
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            out = {}
            for key, value in zip(node.keys, node.values):
                if key is None:
                    inner = self.value(value)
                    if not isinstance(inner, dict):
                        return UNKNOWN
                    out.update(inner)
                    continue
                k, v = self.value(key), self.value(value)
                if k is UNKNOWN or v is UNKNOWN or not isinstance(k, (str, int)):
                    return UNKNOWN
                out[k] = v
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.value(node.operand)
            if isinstance(operand, (int, float)) and not isinstance(operand, bool):
                return -operand if isinstance(node.op, ast.USub) else operand
            return UNKNOWN
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        return UNKNOWN

    def _binop(self, node: ast.BinOp) -> Any:
        left, right = self.value(node.left), self.value(node.right)
        numbers = (int, float)
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
               ast.Pow: lambda a, b: a ** b}
        op = ops.get(type(node.op))
        if op is None:
            return UNKNOWN
        ok = (isinstance(left, numbers) and isinstance(right, numbers)) or (
            isinstance(left, (list, tuple)) and isinstance(right, int) and type(node.op) is ast.Mult) or (
            isinstance(left, list) and isinstance(right, list) and type(node.op) is ast.Add)
        if not ok or (isinstance(right, (int, float)) and type(node.op) is ast.Pow and abs(right) > 64):
            return UNKNOWN
        try:
            return op(left, right)
        except (ArithmeticError, ValueError, TypeError, OverflowError):
            return UNKNOWN

    def _assigned(self, scope: ast.AST, name: str, before: int | None) -> ast.AST | None:
        """The value of the last simple ``name = ...`` in ``scope``'s body (before line ``before``
        when given), looking into ``if __name__ == "__main__":`` blocks too."""
        found = None
        for stmt in getattr(scope, "body", []):
            if before is not None and stmt.lineno >= before:
                break
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                    and stmt.targets[0].id == name:
                found = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name \
                    and stmt.value is not None:
                found = stmt.value
            elif isinstance(stmt, ast.If) and _is_main_guard(stmt):
                inner = self._assigned(stmt, name, before)
                if inner is not None:
                    found = inner
        return found

    def _nested_assigned(self, scope: ast.AST, name: str, before: int) -> ast.AST | None:
        """The value of the last simple ``name = ...`` before line ``before`` inside the loops,
        branches and ``with`` blocks of ``scope`` (not in nested functions or classes)."""
        found = None

        def visit(stmts: list[ast.stmt]) -> None:
            nonlocal found
            for stmt in stmts:
                if stmt.lineno >= before:
                    return
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and \
                        isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == name:
                    found = stmt.value
                elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try)):
                    for block in ("body", "orelse", "finalbody"):
                        visit(getattr(stmt, block, None) or [])
                    for handler in getattr(stmt, "handlers", None) or []:
                        visit(handler.body)

        visit(getattr(scope, "body", []))
        return found

    def _name(self, name: str) -> Any:
        for scope in self.scopes:
            if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assigned = self._assigned(scope, name, self.line)
                if assigned is not None:
                    return self.value(assigned)
                default = _param_default(scope, name)
                if default is not None:
                    # ``None`` as a parameter's default says "not given": what a caller passes
                    # (or the class's own default) is the value, not None
                    none = isinstance(default, ast.Constant) and default.value is None
                    if default is not _NO_DEFAULT and not none:
                        return self.value(default)
                    if scope is self.scopes[0] and name in self.links:
                        return Link(self.links[name])
                    return UNKNOWN
                if scope is self.scopes[0]:
                    # a layer the function builds in a loop or branch before the call and hands
                    # in (``if i % r == 0: w_q = nn.Linear(d, d)``): only a made object counts
                    nested = self._nested_assigned(scope, name, self.line)
                    if nested is not None:
                        made = self.value(nested)
                        if isinstance(made, Make):
                            return made
        if self.info.is_target and name in self.module_defs:
            return Ref(name)
        if name in self.info.target_names:
            return Ref(self.info.target_names[name])
        module = self.scopes[-1]
        at_top = len(self.scopes) == 1  # the call runs while the module runs: only earlier lines count
        assigned = self._assigned(module, name, self.line if at_top else None)
        if assigned is not None:
            return self.value(assigned)
        if name in self.info.torch_names:
            return _torch_object(self.info.torch_names[name])
        return UNKNOWN

    def _attribute(self, node: ast.Attribute) -> Any:
        parts: list[str] = []
        base: ast.AST = node
        while isinstance(base, ast.Attribute):
            parts.append(base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            return UNKNOWN
        parts.reverse()
        if base.id in self.info.target_modules and len(parts) == 1:
            return Ref(parts[0])
        if self.info.is_target and base.id in self.info.torch_names:
            return Ref(".".join([base.id, *parts]))
        if base.id in self.info.torch_names:
            return _torch_object(".".join([self.info.torch_names[base.id], *parts]))
        return UNKNOWN

    def _call(self, node: ast.Call) -> Any:
        func = self.value(node.func) if not (isinstance(node.func, ast.Name) and node.func.id == "dict") else dict
        if func is UNKNOWN:
            return UNKNOWN
        args = [self.value(a) for a in node.args]
        if any(a is UNKNOWN for a in args) or any(isinstance(a, ast.Starred) for a in node.args):
            return UNKNOWN
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            value = self.value(keyword.value)
            if keyword.arg is None:
                if isinstance(value, dict):
                    kwargs.update(value)
                continue  # an unknown **splat: leave those to the defaults
            if value is UNKNOWN:
                continue
            kwargs[keyword.arg] = value
        if func is dict:
            if args:
                return UNKNOWN
            return kwargs
        if isinstance(func, Ref) or isinstance(func, type):
            return Make(func, tuple(args), kwargs)
        return UNKNOWN


_NO_DEFAULT = object()


def _param_default(func: ast.FunctionDef, name: str):
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults):
        if arg.arg == name:
            return default if default is not None else _NO_DEFAULT
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        if arg.arg == name:
            return default if default is not None else _NO_DEFAULT
    if args.vararg and args.vararg.arg == name or args.kwarg and args.kwarg.arg == name:
        return _NO_DEFAULT
    return None


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"


def _torch_object(path: str) -> Any:
    import importlib

    parts = path.split(".")
    try:
        value: Any = importlib.import_module(parts[0])
        for part in parts[1:]:
            value = getattr(value, part)
    except (ImportError, AttributeError):
        return UNKNOWN
    return value


def _calls(info: _FileInfo, class_name: str, local_names: set[str]) -> Iterator[tuple[ast.Call, list[ast.AST], int]]:
    """Calls of the class in one file, with their enclosing scopes (innermost first) and where the
    class is: -1 called itself, else the position of the class among the call's arguments
    (``partial(Block, dim=8)``, ``build_model_with_cfg(Net, variant, **kwargs)``)."""

    def names_class(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id in local_names) or (
            isinstance(node, ast.Attribute) and node.attr == class_name and
            isinstance(node.value, ast.Name) and node.value.id in info.target_modules)

    def visit(node: ast.AST, scopes: list[ast.AST]) -> Iterator[tuple[ast.Call, list[ast.AST], int]]:
        for child in ast.iter_child_nodes(node):
            inner = scopes
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inner = [child, *scopes] if not isinstance(child, ast.Lambda) else scopes
            if isinstance(child, ast.Call):
                if names_class(child.func):
                    yield child, inner, -1
                else:
                    position = next((i for i, a in enumerate(child.args) if names_class(a)), None)
                    if position is not None:
                        yield child, inner, position
            yield from visit(child, inner)

    yield from visit(info.tree, [info.tree])


def find_call_sites(path: str, class_name: str, package: str | None, text: str | None = None,
                    limit: int = 8) -> list[CallSite]:
    """Calls of ``class_name`` (defined in ``path``) across the project, best known first (direct
    calls before the class handed to a builder function)."""
    target = Path(path)
    package_root = None
    if package:
        package_root = target.parent
        for _ in package.split(".")[1:]:
            package_root = package_root.parent
    names = _module_names(target, package)
    sites: list[CallSite] = []
    for file in candidate_files(target, package_root):
        is_target = file.resolve() == target.resolve()
        if is_target and text is not None:
            info = _parse(file, text, target, names)
        else:
            text_of_file = source_text(file)
            if text_of_file is None or class_name not in text_of_file:
                continue
            info = _load(file, target, names)
        if info is None:
            continue
        module_defs: set[str] = set()
        if is_target:
            for node in info.tree.body:
                if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    module_defs.add(node.name)
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    module_defs |= {(a.asname or a.name).split(".")[0] for a in node.names}
        local_names = {class_name} if is_target else {k for k, v in info.target_names.items() if v == class_name}
        for call, scopes, position in _calls(info, class_name, local_names):
            enclosing = scopes[0]
            if isinstance(enclosing, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_target and \
                    _inside_class(info.tree, enclosing, class_name):
                continue  # the class building itself recursively
            links: dict[str, Any] = {}
            if position < 0 and not any(isinstance(a, ast.Starred) for a in call.args):
                links.update((a.id, i) for i, a in enumerate(call.args) if isinstance(a, ast.Name))
                links.update((k.value.id, k.arg) for k in call.keywords if k.arg and isinstance(k.value, ast.Name))
            evaluator = _Evaluator(info, scopes, call.lineno, module_defs, links)
            positional = call.args
            if position >= 0:  # only partial() passes its later positional arguments on to the class
                func = call.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                positional = call.args[position + 1:] if name == "partial" else []
            # (an argument that is itself a handed-on parameter stays unknown, not a link to itself)
            args = [evaluator.value(a) if not isinstance(a, ast.Starred) else UNKNOWN for a in positional]
            args = [UNKNOWN if isinstance(a, Link) else a for a in args]
            kwargs: dict[str, Any] = {}
            splat = False
            for keyword in call.keywords:
                value = evaluator.value(keyword.value)
                if keyword.arg is None:
                    if isinstance(value, dict):
                        kwargs.update(value)
                    else:
                        splat = True
                    continue
                kwargs[keyword.arg] = value if not isinstance(value, Link) else UNKNOWN
            sites.append(CallSite(f"{file}:{call.lineno}", args, kwargs, splat, indirect=position >= 0))
            if len(sites) >= limit * 4:
                break
        if len(sites) >= limit * 4:
            break
    sites.sort(key=lambda s: (s.indirect, -s.known()))
    return sites[:limit]


def _inside_class(tree: ast.Module, func: ast.AST, class_name: str) -> bool:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return any(item is func for item in ast.walk(node))
    return False


def static_value(tree: ast.Module, node: ast.expr, line: int) -> Any:
    """The value of ``node`` (at ``line`` of the file ``tree``) by the same static rules as call
    sites use, or :data:`UNKNOWN`; names of the file itself are not resolved to objects."""
    scopes: list[ast.AST] = [tree]

    def enclosing(body_owner: ast.AST) -> None:
        for child in getattr(body_owner, "body", []):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                    child.lineno <= line <= (child.end_lineno or child.lineno):
                if not isinstance(child, ast.ClassDef):
                    scopes.insert(0, child)
                enclosing(child)

    enclosing(tree)
    info = _FileInfo(Path("<file>"), tree, False)
    _imports(info, Path("<none>"), set())
    value = _Evaluator(info, scopes, line, set()).value(node)
    return UNKNOWN if _has_unresolved(value) else value


def _has_unresolved(value: Any) -> bool:
    if value is UNKNOWN or isinstance(value, (Ref, Make)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_unresolved(v) for v in value)
    if isinstance(value, dict):
        return any(_has_unresolved(v) for v in value.values())
    return False
