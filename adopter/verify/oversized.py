"""Two builds verify's guessed constructor call cannot check as it stands, read off the class's code.

``huge_sizes``: a build with more parameters than verify checks keeps an integer size default the
constructor hands to the layers it builds (PEER's ``num_key_values = 1_000_000``, multiplied into
``nn.EmbeddingBag(num_key_values * heads, dim)``: 256M parameters).  Such a size is set small,
to values that keep the constraints such code states on it: a perfect square (``sqrt(n)`` taken,
asserted integer, ``int(sqrt(n))`` keys per product-key half) that is also a power of two (any
``n % k == 0`` with k a power of two up to it).  Each build still runs on the original first: a
value the class refuses costs a try, never a verdict.

``subclass_attributes``: a base class whose methods read ``self.<attr>`` that only its same-file
subclasses set (sssegmentation's ``_NonLocalNd.forward`` reads ``self.sub_sample``; each
``NonLocalNd`` subclass sets ``self.sub_sample = sub_sample``, default False).  Built alone it
raises on that read, so every guarded path of a patch to it stays unchecked: the attribute is set
as the subclass sets it by default (a constant, or a parameter's constant default), on both
builds.  Only attributes every such subclass sets to one value, and the build lacks, are set.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

HUGE = 4096  # a size above this, handed to a layer the constructor builds, may be set small
SMALL_SIZES = (256, 4096)  # squares and powers of two: 16**2 = 2**8, 64**2 = 2**12


def _init_node(cls: type) -> ast.FunctionDef | None:
    from .inputs import _function_def

    return _function_def(cls.__init__)


def _handed_to_calls(init: ast.FunctionDef) -> set[str]:
    """Names ``init`` reads inside the arguments of a call it makes (``nn.EmbeddingBag(n * h, d)``,
    ``PK(num_keys=int(sqrt(n)))``): what may size a layer or a tensor it builds."""
    out: set[str] = set()
    for node in ast.walk(init):
        if not isinstance(node, ast.Call):
            continue
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            out.update(n.id for n in ast.walk(arg) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    return out


def huge_sizes(cls: type, kwargs: dict) -> list[tuple[dict, str]]:
    """For a build too large to check: (changed keyword arguments, note) per small value, where the
    changed arguments are the integer constructor parameters (given, or left at their default)
    above ``HUGE`` that ``__init__`` hands to a call it makes.  Empty where there are none."""
    init = _init_node(cls)
    if init is None:
        return []
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    handed = _handed_to_calls(init)
    big = {}
    for param in params:
        value = kwargs.get(param.name, param.default)
        if param.name in handed and isinstance(value, int) and not isinstance(value, bool) and value > HUGE:
            big[param.name] = value
    out = []
    for small in SMALL_SIZES:
        changed = {name: small for name, value in big.items() if value > small}
        if changed:
            shown = ", ".join(f"{k}={v} (was {big[k]:_})" for k, v in changed.items())
            out.append((changed, f"{shown}: a size the constructor builds its layers from, set small (a square "
                                 f"and a power of two) because the build was too large to check"))
    return out


def _class_nodes(tree: ast.Module) -> list[ast.ClassDef]:
    return [n for n in tree.body if isinstance(n, ast.ClassDef)]


def _read_attrs(cls_node: ast.ClassDef) -> set[str]:
    """Attributes the class's methods other than ``__init__`` read off ``self``."""
    out: set[str] = set()
    for method in cls_node.body:
        if isinstance(method, ast.FunctionDef) and method.name != "__init__":
            out.update(n.attr for n in ast.walk(method) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load)
                       and isinstance(n.value, ast.Name) and n.value.id == "self")
    return out


_UNSET = object()


def _set_value(init: ast.FunctionDef, attr: str) -> Any:
    """The constant ``init`` sets ``self.<attr>`` to by default: ``self.a = 3``, or ``self.a = p``
    with ``p`` a parameter whose default is a constant; ``_UNSET`` where it sets none or another
    value, or sets it more than once."""
    args = init.args
    positional = args.posonlyargs + args.args
    defaults = {a.arg: d for a, d in zip(positional[len(positional) - len(args.defaults):], args.defaults)}
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    found = []
    for node in ast.walk(init):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self" \
                    and target.attr == attr:
                found.append(node)
    if len(found) != 1 or not isinstance(found[0], ast.Assign):
        return _UNSET
    value = found[0].value
    if isinstance(value, ast.Name):
        value = defaults.get(value.id)
    if isinstance(value, ast.Constant):
        return value.value
    return _UNSET


def subclass_attributes(tree: ast.Module | None, class_name: str, built: Any) -> list[tuple[str, Any]]:
    """(attribute, value) pairs to set on a build of ``class_name``: attributes its methods read
    off ``self`` that the build lacks and that every same-file class deriving from it directly
    sets, one constant value among them, in its ``__init__`` (``subclass_attributes`` above)."""
    if tree is None or "." in class_name:
        return []
    classes = _class_nodes(tree)
    node = next((c for c in classes if c.name == class_name), None)
    if node is None:
        return []
    subs = [c for c in classes if any(isinstance(b, ast.Name) and b.id == class_name for b in c.bases)]
    inits = [next((m for m in c.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None) for c in subs]
    if not inits or any(i is None for i in inits):
        return []
    out = []
    for attr in sorted(_read_attrs(node)):
        if hasattr(built, attr):
            continue
        values = [_set_value(init, attr) for init in inits]
        if any(v is _UNSET for v in values) or len({repr(v) for v in values}) != 1:
            continue
        out.append((attr, values[0]))
    return out
