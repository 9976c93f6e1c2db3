"""Fields of a constructor argument that the class stores and nothing it runs reads again.

A config object handed to a constructor is often read field by field into attributes kept for
callers (``self.enc_in = configs.enc_in`` in an attention that never reads ``self.enc_in``; a
base class's ``self.fc_hidden_sizes = hidden_sizes["fc_hidden_sizes"]`` that no method of the
class or its bases reads).  Such a field's name may say nothing verify can size, yet the module
built computes the same whatever it holds: only the class's own code (and its bases') runs in a
check.  So a namespace built for the argument may hold a small count there, and the build says
so (``construct._bag_for``).  A field is *unread* only when every read of it in ``__init__`` is
the whole value of an assignment to ``self.<attr>`` targets, no class of the hierarchy reads one
of those attributes (nor reads attributes by string: ``getattr``, ``vars``), and the argument is
used no other way than these field reads and being handed whole to ``super().__init__`` (where
the base's own reads of it are followed the same way).  Anything else: not unread.
"""

from __future__ import annotations

import ast
import inspect

from . import facts

__all__ = ["unread_fields"]

MAX_DEPTH = 4  # base constructors followed, as ``construct.inherit_reads``


def _field_of(node: ast.expr, param: str) -> str | None:
    """``param.f`` or ``param["f"]`` -> ``"f"``; None for anything else."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == param:
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == param \
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return None


def _stores(init: ast.FunctionDef, param: str) -> tuple[dict[str, set[str]], set[str], ast.Call | None] | None:
    """(field -> the ``self`` attributes ``__init__`` stores it in, the fields read any other way,
    the ``super().__init__`` call handing ``param`` whole); None when ``param`` itself is used any
    other way (stored whole, passed to another call, iterated)."""
    stored: dict[str, set[str]] = {}
    other: set[str] = set()
    counted: set[int] = set()  # ids of the Name nodes accounted for
    handing: ast.Call | None = None
    for node in ast.walk(init):
        if isinstance(node, ast.Assign):
            field = _field_of(node.value, param)
            if field is not None and all(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                                         and t.value.id == "self" for t in node.targets):
                stored.setdefault(field, set()).update(t.attr for t in node.targets)
                counted.add(id(node.value.value))
        elif facts.calls_super_init(node) and any(isinstance(a, ast.Name) and a.id == param
                                          for a in [*node.args, *(k.value for k in node.keywords)]):
            handing = node
            counted.update(id(a) for a in [*node.args, *(k.value for k in node.keywords)]
                           if isinstance(a, ast.Name) and a.id == param)
    for node in ast.walk(init):
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            field = _field_of(node, param)
            if field is not None and id(node.value) not in counted:
                other.add(field)
                counted.add(id(node.value))
    for node in ast.walk(init):
        if isinstance(node, ast.Name) and node.id == param and isinstance(node.ctx, ast.Load) \
                and id(node) not in counted:
            return None
    return stored, other, handing


def _handed_as(call: ast.Call, param: str, base: type) -> str | None:
    """The base constructor's parameter that ``call`` (``super().__init__(...)``) hands ``param`` to."""
    try:
        names = [p.name for p in inspect.signature(base.__init__).parameters.values()][1:]
    except (TypeError, ValueError):
        return None
    for index, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            return None
        if isinstance(arg, ast.Name) and arg.id == param:
            return names[index] if index < len(names) else None
    return next((k.arg for k in call.keywords if isinstance(k.value, ast.Name) and k.value.id == param), None)


def _class_node(cls: type, own: dict[str, ast.ClassDef] | None) -> ast.ClassDef | None:
    if own is not None and cls.__name__ in own:
        return own[cls.__name__]
    module = inspect.getmodule(cls)
    try:
        tree = ast.parse(inspect.getsource(module)) if module is not None else None
    except (OSError, TypeError, SyntaxError):
        return None
    return facts.class_nodes(tree).get(cls.__name__) if tree is not None else None


_SELF_ONLY_CALLS = ("super", "type", "isinstance")  # calls handed ``self`` that read no field


def _reads_self(node: ast.ClassDef) -> set[str] | None:
    """The ``self.<attr>`` names any method of the class reads; None when it reads attributes by
    string (``getattr(self, name)``, ``vars(self)``, ``self.__dict__``) or uses ``self`` whole
    anywhere but before an attribute or in ``super``/``type``/``isinstance`` (``Inner(self)``
    reading ``parent.width``, ``helper = self``): then any field could be read elsewhere."""
    out: set[str] = set()
    accounted: set[int] = set()  # ids of the ``self`` names read as ``self.<attr>`` or harmlessly
    bare: list[ast.Name] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
            if sub.func.id in ("getattr", "vars"):
                return None
            if sub.func.id in _SELF_ONLY_CALLS:
                accounted.update(id(a) for a in sub.args if isinstance(a, ast.Name))
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
            accounted.add(id(sub.value))
            if sub.attr == "__dict__":
                return None
            if isinstance(sub.ctx, ast.Load):
                out.add(sub.attr)
        elif isinstance(sub, ast.Name) and sub.id == "self":
            bare.append(sub)
    if any(id(name) not in accounted for name in bare):
        return None
    return out


def unread_fields(cls: type, param: str, own: dict[str, ast.ClassDef] | None = None) -> set[str]:
    """The fields of ``cls.__init__``'s argument ``param`` (and of the base parameters it is
    handed to whole) that are stored on ``self`` and read by no class of the hierarchy."""
    stored: dict[str, set[str]] = {}
    other: set[str] = set()
    read: set[str] = set()
    current, name = cls, param
    for depth in range(MAX_DEPTH + 1):
        node = _class_node(current, own if current.__module__ == cls.__module__ else None)
        init = facts.method(node, "__init__") if node is not None else None
        if init is None or name not in facts._params(init):
            return set()
        found = _stores(init, name)
        if found is None:
            return set()
        for field, attrs in found[0].items():
            stored.setdefault(field, set()).update(attrs)
        other |= found[1]
        handing = found[2]
        if handing is None:
            break
        base = next((b for b in current.__mro__[1:] if "__init__" in vars(b)), None)
        if base is None or base.__module__.split(".")[0] in ("torch", "builtins"):
            return set()
        handed = _handed_as(handing, name, base)
        if handed is None:
            return set()
        current, name = base, handed
    else:
        return set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in ("torch", "builtins"):
            continue
        node = _class_node(klass, own if klass.__module__ == cls.__module__ else None)
        if node is None:
            return set()
        reads = _reads_self(node)
        if reads is None:
            return set()
        read |= reads
    return {field for field, attrs in stored.items() if field not in other and not attrs & read}
