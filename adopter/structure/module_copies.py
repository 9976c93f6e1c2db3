"""``nn.ModuleList`` of N copies of one layer, N written as an int literal: what each position
holds.

``nn.ModuleList([nn.Linear(d, d) for _ in range(4)])`` and the annotated-transformer helper
``clones(nn.Linear(d, d), 4)`` (a same-file function whose one statement returns
``nn.ModuleList([copy.deepcopy(module) for _ in range(N)])``) hold four layers of the argument's
kind, each with its own weights.  The forward that calls ``self.linears[0](x)``,
``self.linears[1](x)``, ``self.linears[2](x)`` projects with three distinct layers; recording the
positions (``linears[0]`` ...) lets the graph tell them apart, as it does for a list written
out.  A count that is not a literal leaves the positions unknown (only ``linears[]``)."""

from __future__ import annotations

import ast

from .class_syntax import is_docstring
from .treewalk import ast_walk

# a count above this is no handful of projections (a stack of blocks): positions not recorded
MAX_COPIES = 16
_MODULE_LIST = "torch.nn.ModuleList"
_DEEPCOPY = frozenset(("copy.deepcopy",))


def repeated_element(value: ast.expr, resolve, functions: dict) -> tuple[ast.expr, int] | None:
    """(the element expression, how many copies) when ``value`` builds a ModuleList of copies
    of one layer (see the module docstring); None otherwise."""
    if value.__class__ is not ast.Call or not value.args:
        return None
    if value.args[0].__class__ is ast.ListComp or value.args[0].__class__ is ast.GeneratorExp:
        fqn = resolve(value.func)
    elif value.func.__class__ is ast.Name and len(value.args) >= 2 and value.func.id in functions:
        fqn = value.func.id  # (a same-file function called by its name)
    else:
        return None  # (most bindings: one test, no name resolved)
    if fqn == _MODULE_LIST:
        copies = _copies(value)
        if copies is None:
            return None
        elt, count = copies
        if elt.__class__ is not ast.Call or count.__class__ is not ast.Constant or _reads(elt, _loop_name(value)):
            return None  # (``[lin for _ in range(3)]``: one module listed three times, shared weights)
        return (elt, count.value) if _small(count.value) else None
    func = functions.get(fqn)
    body = _without_docstring(func.body) if func is not None else ()
    if len(body) != 1 or body[0].__class__ is not ast.Return \
            or value.keywords or any(a.__class__ is ast.Starred for a in value.args):
        return None
    returned = body[0].value
    if returned.__class__ is not ast.Call or resolve(returned.func) != _MODULE_LIST:
        return None
    copies = _copies(returned)
    if copies is None:
        return None
    elt, count = copies
    params = [a.arg for a in func.args.posonlyargs + func.args.args]
    if not (elt.__class__ is ast.Call and len(elt.args) == 1 and not elt.keywords
            and resolve(elt.func) in _DEEPCOPY and elt.args[0].__class__ is ast.Name
            and count.__class__ is ast.Name and len(value.args) == len(params)):
        return None
    given = dict(zip(params, value.args))
    element, n = given.get(elt.args[0].id), given.get(count.id)
    if element is None or n is None or n.__class__ is not ast.Constant or not _small(n.value):
        return None
    return element, n.value


def _without_docstring(body: list) -> list:
    """The statements of a function body after its docstring."""
    return body[1:] if body and is_docstring(body[0]) else body


def _copies(call: ast.Call) -> tuple[ast.expr, ast.expr] | None:
    """``ModuleList([elt for _ in range(count)])`` -> (elt, count)."""
    if len(call.args) != 1 or call.keywords or call.args[0].__class__ not in (ast.ListComp, ast.GeneratorExp):
        return None
    comp = call.args[0]
    if len(comp.generators) != 1:
        return None
    gen = comp.generators[0]
    it = gen.iter
    if gen.ifs or gen.is_async or gen.target.__class__ is not ast.Name or it.__class__ is not ast.Call \
            or it.func.__class__ is not ast.Name or it.func.id != "range" or len(it.args) != 1 or it.keywords:
        return None
    return comp.elt, it.args[0]


def _loop_name(call: ast.Call) -> str:
    return call.args[0].generators[0].target.id


def _reads(expr: ast.expr, name: str) -> bool:
    return any(n.__class__ is ast.Name and n.id == name for n in ast_walk(expr))


def _small(count) -> bool:
    return count.__class__ is int and 1 <= count <= MAX_COPIES


def zipped_rows(target: ast.expr, seq: ast.expr, count: int) -> tuple[tuple, list] | None:
    """``for layer, y in zip(self.linears, [x] * 3)`` unpacked into ``count`` names: (the loop
    names, one row of element expressions per name: ``(self.linears[i], x)``).  Each zipped
    sequence is an attribute of ``self`` (its i-th member, ``self.linears[i]``: the unpacking
    takes exactly ``count`` rows, so it holds at least that many), a one-element list repeated
    by an int literal (``[x] * 3``), or a list or tuple written out.  None for anything else."""
    if target.__class__ is not ast.Tuple or not all(t.__class__ is ast.Name for t in target.elts) \
            or seq.__class__ is not ast.Call or seq.func.__class__ is not ast.Name or seq.func.id != "zip" \
            or len(seq.args) != len(target.elts) or any(k.arg != "strict" for k in seq.keywords):
        return None
    columns = []
    for arg in seq.args:
        column = _column(arg, count)
        if column is None:
            return None
        columns.append(column)
    if not any(arg.__class__ is not ast.Attribute for arg in seq.args):
        return None  # (the row count read from a written length, not from members alone)
    return tuple(t.id for t in target.elts), [tuple(c[i] for c in columns) for i in range(count)]


def _column(arg: ast.expr, count: int) -> list | None:
    if arg.__class__ is ast.Attribute and arg.value.__class__ is ast.Name and arg.value.id == "self":
        return [ast.copy_location(ast.Subscript(value=arg, slice=ast.copy_location(ast.Constant(i), arg),
                                                ctx=ast.Load()), arg) for i in range(count)]
    if arg.__class__ is ast.BinOp and arg.op.__class__ is ast.Mult and arg.left.__class__ is ast.List \
            and len(arg.left.elts) == 1 and arg.left.elts[0].__class__ is not ast.Starred \
            and arg.right.__class__ is ast.Constant and arg.right.value.__class__ is int and arg.right.value == count:
        return [arg.left.elts[0]] * count
    if arg.__class__ in (ast.List, ast.Tuple) and len(arg.elts) == count \
            and not any(e.__class__ is ast.Starred for e in arg.elts):
        return list(arg.elts)
    return None
