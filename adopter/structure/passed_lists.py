"""What a caller's list holds at one index, for a parameter read as ``layers[i]``.

A module built from layers another class of the file makes and hands over in a list::

    class Block(nn.Module):
        def __init__(self, layers=None):
            self.first = layers[0]
            self.bn = nn.BatchNorm2d(self.first.out_channels)

    class Stage(nn.Module):
        def __init__(self):
            conv = nn.Conv2d(...)
            layers = [conv, other]          # (or under an if/else, several displays)
            self.block = Block(layers=layers)

``self.first`` is what the callers' lists hold at index 0 (torch-points3d's RSConv
``mapping[0]``).  The item is read off the list display the caller passes, or off every
display the caller binds to the name it passes, when nothing else in the caller can change
what sits at that index: no other binding of the name, no ``insert``/``pop``/``sort``/item
assignment on it (``append``/``extend`` add after it, which leaves it where it is).  A display
too short for the index is a call that fails there (no value); a starred item before the index
makes the place unknown (no value).  Anything else: no value (a miss, never a wrong type).
"""

from __future__ import annotations

import ast

from .treewalk import ast_walk

_DISPLAYS = (ast.List, ast.Tuple)
# list methods after which an item may no longer sit where the display put it
_MOVES_ITEMS = frozenset({"insert", "pop", "remove", "reverse", "sort", "clear", "__setitem__", "__delitem__"})


def list_items(passed: ast.expr, caller: ast.AST | None, index: int) -> list[ast.expr]:
    """The expressions a caller's list holds at ``index``: of the display passed in place, or
    of the displays the caller binds to the name it passes (none when unknown)."""
    if passed.__class__ in _DISPLAYS:
        return _item(passed, index)
    if passed.__class__ is not ast.Name or caller is None:
        return []
    displays = _bound_displays(caller, passed.id)
    return [elt for display in displays for elt in _item(display, index)]


def _item(display: ast.List | ast.Tuple, index: int) -> list[ast.expr]:
    elts = display.elts
    if index >= len(elts) or any(e.__class__ is ast.Starred for e in elts[:index + 1]):
        return []
    return [elts[index]]


def _bound_displays(func: ast.AST, name: str) -> list[ast.expr]:
    """Every display ``func`` binds to ``name`` when those bindings are the only ones and nothing
    moves the items afterwards; [] otherwise."""
    displays = []
    # the Name targets of the plain bindings read so far: the walk is breadth first, so an
    # assignment comes before its target's own Name node
    plain: list = []
    for node in ast_walk(func):
        kind = node.__class__
        if kind is ast.Assign:
            hits = [t for t in node.targets if _names(t, name)]
            if hits:
                if len(node.targets) != 1 or node.targets[0].__class__ is not ast.Name \
                        or node.value.__class__ not in _DISPLAYS:
                    return []
                displays.append(node.value)
                plain.append(node.targets[0])
        elif kind is ast.AnnAssign and _names(node.target, name):
            if node.target.__class__ is not ast.Name or node.value.__class__ not in _DISPLAYS:
                return []
            displays.append(node.value)
            plain.append(node.target)
        elif kind is ast.Name and node.id == name and node.ctx.__class__ is not ast.Load:
            if node not in plain:  # (by identity: ast nodes do not define ==)
                return []  # a loop target, ``del``, ``+=``, a walrus: another binding
        elif kind is ast.Subscript and node.value.__class__ is ast.Name and node.value.id == name \
                and node.ctx.__class__ is not ast.Load:
            return []  # layers[0] = ..., del layers[1]
        elif kind is ast.Call and node.func.__class__ is ast.Attribute and node.func.attr in _MOVES_ITEMS \
                and node.func.value.__class__ is ast.Name and node.func.value.id == name:
            return []
        elif kind in (ast.Global, ast.Nonlocal) and name in node.names:
            return []
        elif kind is ast.arg and node.arg == name:
            return []  # a parameter of the caller (its own callers would say)
    return displays


def _names(target: ast.expr, name: str) -> bool:
    """Does the assignment target bind ``name`` (also inside a tuple target)?"""
    if target.__class__ is ast.Name:
        return target.id == name
    if target.__class__ in _DISPLAYS:
        return any(_names(e, name) for e in target.elts)
    if target.__class__ is ast.Starred:
        return _names(target.value, name)
    return False

