"""Small readings of a class's syntax that the layer typer and its helper modules share.

``layers.py`` imports ``appending.py`` and ``built_blocks.py``; these readings live here, a
module that imports nothing of the package, so that those two need not import ``layers.py``
(an import cycle) nor keep copies of them.
"""

from __future__ import annotations

import ast


def is_name(node: ast.expr | None, name: str) -> bool:
    """``node`` is the bare name ``name``."""
    return isinstance(node, ast.Name) and node.id == name


def is_docstring(stmt: ast.stmt) -> bool:
    """A bare string statement (a docstring: no effect on what a body computes)."""
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def self_attr(node: ast.expr) -> bool:
    """``self.<attr>``."""
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def methods(cls: ast.ClassDef) -> dict:
    """The functions a class body defines, by name (the last definition of a name wins)."""
    return {item.name: item for item in cls.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}


def super_init(stmt: ast.stmt) -> ast.Call | None:
    """The call of ``super().__init__(...)`` (also ``super(Cls, self).__init__``) a statement makes."""
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "__init__"
            and isinstance(call.func.value, ast.Call) and isinstance(call.func.value.func, ast.Name)
            and call.func.value.func.id == "super"):
        return call
    return None
