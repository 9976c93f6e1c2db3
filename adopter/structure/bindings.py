"""What each ``self.<attr>`` of a module class is bound to in ``__init__``.

A layer call in ``forward`` (``self.dropout(x)``) is only meaningful once we know that
``__init__`` did ``self.dropout = nn.Dropout(p)``.  Bindings are collected from every
branch of ``__init__`` (a layer bound differently under ``if``/``else`` keeps each
constructor), from helper methods that ``__init__`` calls, and from base classes defined in
the same file.  ``nn.ModuleList``/``nn.Sequential`` members are recorded as the element
binding ``attr[]`` so that ``for layer in self.layers: layer(x)`` resolves.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from .names import ModuleNames

CONTAINERS = frozenset({"torch.nn.ModuleList", "torch.nn.Sequential"})
TABLE_SUFFIXES = ("ACT2FN", "ACT2CLS")


@dataclass(frozen=True)
class Ctor:
    """One constructor bound to an attribute.

    ``fqn`` is the constructor's fully qualified name (a local class keeps its bare name);
    ``table`` is True for activation-table lookups (``ACT2FN[config.hidden_act]``), where
    ``args`` holds the key.  ``stmt`` is the span of the assignment statement, ``call`` the
    span of the constructor expression: (line, col, end_line, end_col), cols in bytes.
    """

    attr: str
    fqn: str
    args: tuple[ast.expr, ...]
    kwargs: tuple[tuple[str, ast.expr], ...]
    table: bool
    stmt: tuple[int, int, int, int]
    call: tuple[int, int, int, int]
    func: str
    in_init: bool = True


@dataclass
class ClassInfo:
    name: str
    node: ast.ClassDef
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    bindings: dict[str, list[Ctor]] = field(default_factory=dict)
    bases: list[str] = field(default_factory=list)
    is_module: bool = False
    bound: bool = False


def span(node: ast.AST) -> tuple[int, int, int, int]:
    return (node.lineno, node.col_offset, node.end_lineno or node.lineno, node.end_col_offset or 0)


def _ctor_of(value: ast.expr, names: ModuleNames) -> tuple[str, tuple, tuple, bool] | None:
    """Describe the constructor expression on the right of ``self.x = ...``."""
    if isinstance(value, ast.Call):
        fqn = names.resolve(value.func)
        if fqn is None:
            return None
        kwargs = tuple((k.arg, k.value) for k in value.keywords if k.arg is not None)
        return fqn, tuple(value.args), kwargs, fqn.rsplit(".", 1)[-1] in ("get_activation",)
    if isinstance(value, ast.Subscript):
        fqn = names.resolve(value.value)
        if fqn is not None and fqn.rsplit(".", 1)[-1] in TABLE_SUFFIXES:
            return fqn, (value.slice,), (), True
    return None


def _self_attr(target: ast.expr) -> str | None:
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return target.attr
    return None


def collect_class(cls: ast.ClassDef, names: ModuleNames) -> ClassInfo:
    info = ClassInfo(name=cls.name, node=cls)
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info.methods[stmt.name] = stmt
    for base in cls.bases:
        fqn = names.resolve(base)
        if fqn:
            info.bases.append(fqn)
    return info


def bind_class(info: ClassInfo, classes: dict[str, ClassInfo], names: ModuleNames) -> None:
    """Fill ``info.bindings`` from ``__init__`` (inherited from local bases first)."""
    if info.bound:
        return
    info.bound = True
    seen: set[str] = set()
    for base in info.bases:
        if base in classes and base != info.name:
            base_info = classes[base]
            bind_class(base_info, classes, names)
            for attr, ctors in base_info.bindings.items():
                info.bindings.setdefault(attr, []).extend(ctors)
            for mname, method in base_info.methods.items():
                info.methods.setdefault(mname, method)
            info.is_module = info.is_module or base_info.is_module
        elif base.startswith("torch.nn") or base.endswith(("Module", "PreTrainedModel", "Layer")):
            info.is_module = True
    init = info.methods.get("__init__")
    if init is not None:
        own: dict[str, list[Ctor]] = {}
        _walk_init(init, info, names, own, seen, depth=0)
        for attr, ctors in own.items():
            # Rebinding in the subclass's __init__ replaces the base's constructor.
            info.bindings[attr] = ctors


def _walk_init(func, info: ClassInfo, names: ModuleNames, out: dict[str, list[Ctor]], seen: set[str], depth: int):
    if func.name in seen or depth > 3:
        return
    seen.add(func.name)
    local_alias: dict[str, tuple] = {}
    for node in _statements_and_calls(func.body):
        if isinstance(node, ast.Assign):
            value = node.value
            for target in node.targets:
                attr = _self_attr(target)
                if attr is None:
                    if isinstance(target, ast.Name):
                        described = _ctor_of(value, names)
                        if described:
                            local_alias[target.id] = described
                    continue
                _record(attr, value, node, func.name, info, names, out, local_alias)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            attr = _self_attr(node.target)
            if attr is not None:
                _record(attr, node.value, node, func.name, info, names, out, local_alias)
        elif isinstance(node, ast.Call):
            # Helper methods called from __init__ (self._build_layers()) bind layers too.
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and isinstance(f.value, ast.Name)
                and f.value.id == "self"
                and f.attr in info.methods
            ):
                _walk_init(info.methods[f.attr], info, names, out, seen, depth + 1)
            # self.add_module("name", nn.Linear(...)) / setattr(self, "name", ...)
            elif (
                isinstance(f, ast.Attribute) and f.attr == "add_module" and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            ):
                _record(node.args[0].value, node.args[1], node, func.name, info, names, out, local_alias)


def _statements_and_calls(body):
    """Assignments and top-level calls of a body, nested blocks included (ast.walk visits
    every expression node too, which made binding the slowest step on large files)."""
    for stmt in body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            yield stmt
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            yield stmt.value
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _statements_and_calls(getattr(stmt, field, None) or [])
        for handler in getattr(stmt, "handlers", None) or []:
            yield from _statements_and_calls(handler.body)
        for case in getattr(stmt, "cases", None) or []:
            yield from _statements_and_calls(case.body)


def _record(attr, value, stmt, func_name, info, names, out, local_alias):
    described = _ctor_of(value, names)
    if described is None and isinstance(value, ast.Name) and value.id in local_alias:
        described = local_alias[value.id]
    if described is None:
        # Bound to something we cannot type (config.hidden_act, None, a parameter).
        out.setdefault(attr, []).append(
            Ctor(attr, "?", (), (), False, span(stmt), span(value), func_name)
        )
        return
    fqn, args, kwargs, table = described
    out.setdefault(attr, []).append(Ctor(attr, fqn, args, kwargs, table, span(stmt), span(value), func_name))
    if fqn == "torch.nn.Sequential" and isinstance(value, ast.Call) and value.args and not any(
        isinstance(a, ast.Starred) for a in value.args
    ):
        # Calling the Sequential runs its members in order: record each position.
        for index, element in enumerate(value.args):
            inner = _ctor_of(element, names)
            efqn, eargs, ekw, etable = inner if inner else ("?", (), (), False)
            out.setdefault(f"{attr}[{index}]", []).append(
                Ctor(f"{attr}[{index}]", efqn, eargs, ekw, etable, span(stmt), span(element), func_name)
            )
    if fqn in CONTAINERS and isinstance(value, ast.Call):
        for element in _container_elements(value):
            inner = _ctor_of(element, names)
            if inner:
                efqn, eargs, ekw, etable = inner
                out.setdefault(attr + "[]", []).append(
                    Ctor(attr + "[]", efqn, eargs, ekw, etable, span(stmt), span(element), func_name)
                )


def _container_elements(call: ast.Call):
    for arg in call.args:
        if isinstance(arg, (ast.List, ast.Tuple)):
            yield from arg.elts
        elif isinstance(arg, (ast.ListComp, ast.GeneratorExp)):
            yield arg.elt
        else:
            yield arg
