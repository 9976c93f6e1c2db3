"""``nn.Sequential`` subclasses that start empty and whose ``append`` is nn.Sequential's.

A package's own base for hand-built sequences (torch-points3d's ``Seq``)::

    class Seq(nn.Sequential):
        def __init__(self):
            super().__init__()
            self._num_modules = 0

        def append(self, module):
            self.add_module(str(self._num_modules), module)
            self._num_modules += 1
            return self

builds nothing itself; a subclass calls ``super().__init__()`` and then ``self.append(layer)``
for each member.  ``add_module`` under a name not yet used puts the layer after the others, and
the counter makes every name new (it starts at 0, nothing else writes it, and each ``append``
adds one after using it), so such an ``append`` keeps nn.Sequential's meaning: the members run
in the order they are appended.  Calling the class with layers is no sequence (its ``__init__``
takes none), so this is read only for subclasses that append after ``super().__init__()``.

Pure syntax: the caller (``LayerTyper.appends_in_order``) follows the bases.
"""

from __future__ import annotations

import ast

from .class_syntax import is_docstring as _is_docstring, is_name as _is_name, self_attr as _self_attr, super_init
from .treewalk import ast_walk

# nn.Sequential / nn.Module methods through which a subclass would add, reorder or run its
# members its own way: a class overriding one of them (besides ``append``) is not read here.
CONTAINER_API = frozenset({"add_module", "register_module", "extend", "insert", "pop", "__iter__", "__getitem__",
                           "__setitem__", "__delitem__", "__len__", "__add__", "__iadd__", "_get_item_by_idx"})


def starts_empty(init: ast.FunctionDef | None) -> bool:
    """Does this ``__init__`` (None: nn.Sequential's own) take no argument but ``self``, call
    ``super().__init__()`` with none, and otherwise only set ``self`` attributes to literals
    (a counter, a flag; no layer, no member added)?"""
    if init is None:
        return True
    args = init.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or len(args.args) != 1:
        return False
    handed = False
    for stmt in init.body:
        if _is_docstring(stmt):
            continue
        if _is_empty_super_init(stmt) and not handed:
            handed = True
            continue
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and _self_attr(stmt.targets[0])
                and isinstance(stmt.value, ast.Constant)):
            return False
    return handed


def appends_last(append: ast.FunctionDef | None, init: ast.FunctionDef | None, methods: dict) -> bool:
    """Does this ``append`` (None: nn.Sequential's own) add its one argument after the members
    already there: ``self.add_module(str(self.<n>), arg)``, then ``self.<n> += 1``, maybe
    ``return self``, where ``__init__`` sets ``self.<n> = 0`` and no other method writes it?"""
    if append is None:
        return True
    args = append.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or len(args.args) != 2 or args.defaults:
        return False
    member = args.args[1].arg
    body = [s for s in append.body if not _is_docstring(s)]
    if len(body) not in (2, 3):
        return False
    counter = _adds_under_counter(body[0], member)
    if counter is None or not _increments(body[1], counter):
        return False
    if len(body) == 3 and not (isinstance(body[2], ast.Return) and _is_name(body[2].value, "self")):
        return False
    if init is None or not _sets_zero(init, counter):
        return False
    return not any(_writes(method, counter) for name, method in methods.items() if name not in ("__init__", "append"))


def _adds_under_counter(stmt: ast.stmt, member: str) -> str | None:
    """``self.add_module(str(self.<n>), member)``: the counter's name ``<n>``."""
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "add_module"
            and _is_name(call.func.value, "self") and len(call.args) == 2 and not call.keywords
            and _is_name(call.args[1], member)):
        return None
    key = call.args[0]
    if not (isinstance(key, ast.Call) and _is_name(key.func, "str") and len(key.args) == 1 and not key.keywords
            and _self_attr(key.args[0])):
        return None
    return key.args[0].attr


def _increments(stmt: ast.stmt, counter: str) -> bool:
    """``self.<counter> += 1``."""
    return (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add) and _self_attr(stmt.target)
            and stmt.target.attr == counter and isinstance(stmt.value, ast.Constant) and stmt.value.value == 1)


def _sets_zero(init: ast.FunctionDef, counter: str) -> bool:
    """``self.<counter> = 0`` among ``__init__``'s statements (``starts_empty`` allows no other write)."""
    return any(isinstance(s, ast.Assign) and _self_attr(s.targets[0]) and s.targets[0].attr == counter
               and isinstance(s.value, ast.Constant) and s.value.value == 0 and s.value.value is not False
               for s in init.body if isinstance(s, ast.Assign) and len(s.targets) == 1)


def _writes(method: ast.FunctionDef, counter: str) -> bool:
    """Does the method store to ``self.<counter>`` (or hand ``setattr`` any attribute name)?"""
    for node in ast_walk(method):
        if isinstance(node, ast.Attribute) and node.attr == counter and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.Call) and _is_name(node.func, "setattr"):
            return True
    return False


def _is_empty_super_init(stmt: ast.stmt) -> bool:
    call = super_init(stmt)
    return call is not None and not call.args and not call.keywords
