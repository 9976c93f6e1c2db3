"""Walks of an ``ast`` tree that visit only what can hold sub-expressions.

``ast.walk``/``ast.iter_child_nodes`` also visit the Load/Store and operator singletons and go
through a generic field generator, which made them a fifth of the analysis time.  The flow
builder, the layer typer and the formula readers all walk with these; a module of its own so
that none of them imports another for it (they once reached ``graph.walk`` through an import
cycle).
"""

from __future__ import annotations

import ast

_SKIP_FIELDS = frozenset({"ctx", "op", "id", "attr", "arg", "kind", "type_comment", "conversion"})
_FIELDS: dict[type, tuple[str, ...]] = {}
_AST = ast.AST


def _fields_of(kind: type) -> tuple[str, ...]:
    names = _FIELDS[kind] = tuple(f for f in kind._fields if f not in _SKIP_FIELDS)
    return names


def children(node: ast.AST) -> list[ast.AST]:
    """The child nodes of ``node`` in field order (what ast.iter_child_nodes gives, less the
    context and operator singletons)."""
    names = _FIELDS.get(type(node))
    if names is None:
        names = _fields_of(type(node))
    out: list[ast.AST] = []
    for name in names:
        value = getattr(node, name, None)
        if type(value) is list:
            out += [v for v in value if isinstance(v, _AST)]
        elif isinstance(value, _AST):
            out.append(value)
    return out


def blocks(node: ast.AST) -> list[list]:
    """The statement lists of a compound statement: its body, else and finally blocks, its
    handlers' and its match cases' bodies."""
    return [getattr(node, f) for f in ("body", "orelse", "finalbody") if isinstance(getattr(node, f, None), list)] \
        + [h.body for h in getattr(node, "handlers", ())] + [c.body for c in getattr(node, "cases", ())]


def walk(node: ast.AST):
    """ast.walk over :func:`children` (order differs; no caller depends on it).  The children
    are pushed here as :func:`children` lists them (the same nodes in the same order: a
    node's children are found after it is yielded, as before), without a call per node: walks
    from the flow builder's use scans visit some 300k nodes per corpus pass."""
    stack = [node]
    pop = stack.pop
    push = stack.append
    fields = _FIELDS
    while stack:
        node = pop()
        yield node
        names = fields.get(type(node))
        if names is None:
            names = _fields_of(type(node))
        for name in names:
            value = getattr(node, name, None)
            if type(value) is list:
                stack += [v for v in value if isinstance(v, _AST)]
            elif isinstance(value, _AST):
                push(value)


def ast_walk(node: ast.AST):
    """``ast.walk``: the same nodes in the same order (breadth first, the context and operator
    singletons included, each node's children listed before it is yielded), in one generator
    instead of three nested ones per node (``iter_child_nodes`` over ``iter_fields``), and
    without reading the fields that only ever hold a name or a number: the fix planner's walks
    were a quarter of a one-file check's analysis and planning."""
    todo = [node]
    fields = _WALK_FIELDS
    for current in todo:  # (a list read while it grows: breadth first, as ast.walk's deque)
        names = fields.get(current.__class__)
        if names is None:
            names = fields[current.__class__] = tuple(f for f in current._fields if f not in _NAME_FIELDS)
        for name in names:
            value = getattr(current, name, None)
            if isinstance(value, _AST):
                todo.append(value)
            elif isinstance(value, list):
                todo += [item for item in value if isinstance(item, _AST)]
        yield current


# Fields that hold a str, an int or None in every node type that has them (never a node).
_NAME_FIELDS = frozenset({"id", "attr", "arg", "kind", "type_comment", "conversion", "level", "module"})
_WALK_FIELDS: dict[type, tuple[str, ...]] = {}
