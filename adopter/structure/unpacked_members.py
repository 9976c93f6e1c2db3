"""``l, bn = self._modules.values()`` as the first statement of a forward: each name is the member
the class's ``__init__`` registered in that place.

LeViT-style research code builds small ``nn.Sequential`` subclasses with ``add_module`` and
gives them a forward of their own that takes the members back by unpacking the module's
ordered children (``l, bn = self._modules.values(); return bn(l(x).flatten(0, 1))...``).  A
module's children are kept in the order they were registered, so the names are typed as the
members, but only where that order is read from ``__init__`` alone: every registration is a
top-level ``self.add_module("<name>", ...)`` (or ``register_module``) of ``__init__``, no
``self.<attr> = <call>`` registers another child on the side, ``super().__init__()`` passes no
modules in, and there are exactly as many registrations as names.  Anything else reads
nothing (the names stay untyped, as before).
"""

from __future__ import annotations

import ast

from .bindings import ClassInfo
from .treewalk import ast_walk

_ADDS = frozenset({"add_module", "register_module"})


def unpacked_members(stmt: ast.Assign, cls: ClassInfo) -> dict[str, str]:
    """Local name -> member path (``self.<name>``) for ``a, b = self._modules.values()`` where the
    class registers exactly that many members in a known order."""
    target = stmt.targets[0]
    if len(stmt.targets) != 1 or not _modules_values(stmt.value) \
            or any(e.__class__ is not ast.Name for e in target.elts):
        return {}
    order = _registration_order(cls)
    if order is None or len(order) != len(target.elts):
        return {}
    return {elt.id: "self." + member for elt, member in zip(target.elts, order)}


def _modules_values(call: ast.Call) -> bool:
    """``self._modules.values()``: the members in registration order."""
    func = call.func
    if call.args or call.keywords or func.__class__ is not ast.Attribute:
        return False
    owner = func.value
    return func.attr == "values" and owner.__class__ is ast.Attribute and owner.attr == "_modules" \
        and owner.value.__class__ is ast.Name and owner.value.id == "self"


def _registration_order(cls: ClassInfo) -> list[str] | None:
    """The names ``__init__`` registers its children under, in order; None where the order (or
    the set of children) is not read from top-level ``add_module`` calls alone."""
    init = cls.methods.get("__init__")
    if init is None:
        return None
    order: list[str] = []
    for stmt in init.body:
        name = _added_name(stmt)
        if name is not None:
            order.append(name)
            continue
        for node in ast_walk(stmt):
            if node.__class__ is ast.Call and node.func.__class__ is ast.Attribute:
                if node.func.attr in _ADDS:
                    return None  # a registration under an if / loop: the order is not fixed
                if node.func.attr == "__init__" and (node.args or node.keywords):
                    return None  # super().__init__(conv, bn): children passed in
            elif node.__class__ in (ast.Assign, ast.AnnAssign, ast.AugAssign):
                targets = node.targets if node.__class__ is ast.Assign else [node.target]
                if node.value.__class__ is ast.Call and any(
                        t.__class__ is ast.Attribute and t.value.__class__ is ast.Name and t.value.id == "self"
                        for t in targets):
                    return None  # self.<attr> = <call>: maybe another child, in its own place
    return order or None


def _added_name(stmt: ast.stmt) -> str | None:
    """``self.add_module("<name>", <module>)`` as a statement: the name."""
    if stmt.__class__ is not ast.Expr or stmt.value.__class__ is not ast.Call:
        return None
    call = stmt.value
    func = call.func
    if func.__class__ is not ast.Attribute or func.attr not in _ADDS or func.value.__class__ is not ast.Name \
            or func.value.id != "self" or len(call.args) != 2 or call.keywords:
        return None
    key = call.args[0]
    return key.value if key.__class__ is ast.Constant and key.value.__class__ is str and key.value.isidentifier() \
        else None
