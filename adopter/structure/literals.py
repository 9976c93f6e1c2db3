"""Keyword arguments passed as ``**name`` where ``name`` is a dict literal of the same code.

``torch.optim.AdamW(params, **opt_kwargs)`` with ``opt_kwargs = {"lr": 1e-3, "betas": (0.9,
0.99)}``: the keywords the call receives are the literal's keys, so a rule that must know
which keywords a call passes (``!fused``) can read them, as for written keywords.  Only when
that is certain: the name is bound once in the whole file, to a dict display with string keys
and no ``**`` inside, and every other occurrence of the name in the file is a ``**name``
argument (no item assignment, ``update``, alias, or second binding anywhere, in any function).
"""

from __future__ import annotations

import ast
import re

from .treewalk import ast_walk


def literal_keywords(expr: ast.expr, assigned: object, lines: list[str] | None,
                     cache: dict) -> list[tuple[str, ast.expr]] | None:
    """The (key, value expression) pairs ``**expr`` passes, or None when they are not certain.
    ``assigned``: what the flow builder last saw assigned to the name (an ast expression)."""
    if not isinstance(expr, ast.Name) or lines is None:
        return None
    if assigned.__class__ is ast.Call and assigned.func.__class__ is ast.Name and assigned.func.id == "dict" \
            and not assigned.args and all(k.arg is not None for k in assigned.keywords):
        # ``opt_kwargs = dict(lr=1e-3, betas=(0.9, 0.99))``: the builtin's keywords are the keys
        assigned = ast.Dict(keys=[ast.Constant(k.arg) for k in assigned.keywords],
                            values=[k.value for k in assigned.keywords])
    if not isinstance(assigned, ast.Dict):
        return None
    if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in assigned.keys):
        return None  # a None key is a ``**other`` spread inside the literal
    name = expr.id
    once = cache.get(name)
    if once is None:
        text = "\n".join(lines)
        total = len(re.findall(rf"(?<![\w.]){re.escape(name)}\b", text))
        spread = len(re.findall(rf"\*\*\s*{re.escape(name)}\b", text))
        once = cache[name] = total == spread + 1
    if not once:
        return None
    return [(k.value, v) for k, v in zip(assigned.keys, assigned.values)]


def spread_keys(expr: ast.expr, definition: ast.AST) -> list[tuple[str, ast.expr]] | None:
    """The keywords ``**name`` may pass where ``name`` is a dict the function builds itself:
    bound once to a dict display with string keys or a ``dict(key=value, ...)`` call, then
    only given keys by ``name.update(key=value)`` or ``name["key"] = value`` (under an ``if``
    too), every other occurrence in the function a ``**name`` argument.  Each key with the one
    value the function gives it (a key given two different values is not certain: None), in
    the order first given.  ``softmax_kwargs = dict()`` then, under a flag,
    ``softmax_kwargs.update(dtype=torch.float32)``: ``[("dtype", torch.float32)]``."""
    if not isinstance(expr, ast.Name):
        return None
    name = expr.id
    arguments = getattr(definition, "args", None)
    if arguments is not None and name in {a.arg for a in (*arguments.posonlyargs, *arguments.args,
                                                          *arguments.kwonlyargs, arguments.vararg,
                                                          arguments.kwarg) if a is not None}:
        return None  # ``**kwargs`` the caller passes: not built here
    found: dict[str, ast.expr] = {}
    bound = 0
    accounted: set[int] = set()  # ids of the Name nodes the walk has read as a known use

    def give(key: str, value: ast.expr) -> bool:
        if key in found and ast.dump(found[key]) != ast.dump(value):
            return False
        found.setdefault(key, value)
        return True

    for node in ast_walk(definition):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)) \
                and node is not definition and any(isinstance(n, ast.Name) and n.id == name for n in ast_walk(node)):
            return None  # a nested scope reads or binds the name
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id == name:
                bound += 1
                value = node.value
                if isinstance(value, ast.Dict):
                    if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in value.keys):
                        return None
                    pairs = [(k.value, v) for k, v in zip(value.keys, value.values)]
                elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict" \
                        and not value.args and all(k.arg is not None for k in value.keywords):
                    pairs = [(k.arg, k.value) for k in value.keywords]
                else:
                    return None
                if not all(give(k, v) for k, v in pairs):
                    return None
                accounted.add(id(target))
            elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == name:
                if not (isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str)):
                    return None
                if not give(target.slice.value, node.value):
                    return None
                accounted.add(id(target.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name:
            if node.args or any(k.arg is None for k in node.keywords):
                return None
            if not all(give(k.arg, k.value) for k in node.keywords):
                return None
            accounted.add(id(node.func.value))
        elif isinstance(node, ast.keyword) and node.arg is None and isinstance(node.value, ast.Name) \
                and node.value.id == name:
            accounted.add(id(node.value))
    if bound != 1:
        return None
    uses = [n for n in ast_walk(definition) if isinstance(n, ast.Name) and n.id == name]
    if any(id(n) not in accounted for n in uses):
        return None
    return list(found.items())
