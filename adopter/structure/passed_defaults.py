"""Integer defaults of a function's parameters that its callers may override.

A same-file helper ``def rms_norm(x, dim=-1, eps=1e-5)`` normalises over the last axis only
where its ``dim`` is -1.  Inlined at a call that leaves ``dim`` out, the helper's body reads -1
there; analysed as a root of its own, it reads -1 unless a caller passes another.  Either way a
fix rewrites the helper's text, which every call runs: it may assume -1 only where no call in
the file passes ``dim`` anything else.  Otherwise the default is an assumption (graph.Assumed):
the computation is the rule's at the default, so it is reported, and the fix declines.
"""

from __future__ import annotations

import ast
import re

from .treewalk import ast_walk


def int_literal(expr: ast.expr | None) -> int | None:
    """The integer an expression writes (``-1``, ``2``), else None."""
    if expr.__class__ is ast.UnaryOp and expr.op.__class__ is ast.USub:
        inner = int_literal(expr.operand)
        return None if inner is None else -inner
    if expr.__class__ is ast.Constant and expr.value.__class__ is int:
        return expr.value
    return None


def int_default(func: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> int | None:
    """The integer default of ``func``'s parameter ``name`` (None: no such default)."""
    args = func.args
    positional = (*args.posonlyargs, *args.args)
    for param, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        if param.arg == name:
            return int_literal(default)
    for param, default in zip(args.kwonlyargs, args.kw_defaults):
        if param.arg == name:
            return int_literal(default)
    return None


def overridden(names, func: ast.FunctionDef | ast.AsyncFunctionDef, name: str, default: int, lines=None,
               cls=None) -> bool:
    """Might some use of the function ``func`` hand its parameter ``name`` anything but
    ``default``?  A fix rewrites the helper's text, which every use runs, so every text
    occurrence of its name counts: a direct call (``f(...)``; ``self.f(...)`` for a method of
    ``cls``) that leaves the parameter out or passes ``default`` (by keyword or by position)
    is safe; any other (another value, ``*``/``**``, the function stored or handed on, a call
    at the module's top level, a name in a string) may pass another value."""
    if not (_dim_params(func, [(name, None)], lines) or _handed_by_position(func, name)):
        return False  # (a length or an offset: the default is the helper's, not an axis read)
    args = func.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    if cls is not None:
        positional = positional[1:]  # (``self``: bound by the attribute call)
    index = positional.index(name) if name in positional else None
    by_keyword = not any(a.arg == name for a in args.posonlyargs)
    sites = calls_of(names, func.name, lines) if cls is None else _method_calls(cls, func.name)
    for node in sites:
        if any(a.__class__ is ast.Starred for a in node.args) or any(k.arg is None for k in node.keywords):
            return True
        passed = node.args[index] if index is not None and index < len(node.args) else None
        if passed is None and by_keyword:
            passed = next((k.value for k in node.keywords if k.arg == name), None)
        if passed is not None and int_literal(passed) != default:
            return True
    return lines is None or _occurrences(func, lines) != 1 + len(sites)


def _handed_by_position(func, name: str) -> bool:
    """Does ``func`` hand its parameter ``name`` to a method call by position
    (``x.pow(2).mean(dim, keepdim=True)``): an axis read, as ``dim=dim`` is?"""
    handed = func.__dict__.get("_positional_names")  # (walked once per function node)
    if handed is None:
        handed = func._positional_names = frozenset(
            a.id for node in ast_walk(func) if node.__class__ is ast.Call and node.func.__class__ is ast.Attribute
            for a in node.args if a.__class__ is ast.Name)
    return name in handed


def _method_calls(cls, fname: str) -> list:
    """The calls ``self.fname(...)`` in the class ``cls`` (a bindings.ClassInfo; its calls on
    ``self`` walked once per class node, by method name)."""
    calls = cls.node.__dict__.get("_self_calls")
    if calls is None:
        calls = cls.node._self_calls = {}
        for node in ast_walk(cls.node):
            if node.__class__ is ast.Call and node.func.__class__ is ast.Attribute \
                    and node.func.value.__class__ is ast.Name and node.func.value.id == "self":
                calls.setdefault(node.func.attr, []).append(node)
    return calls.get(fname, [])


def _occurrences(func, lines) -> int:
    """How many times the file's text writes ``func``'s name as a word (counted once per
    function node): its ``def``, its calls, and any other use -- stored, handed on, called
    outside a definition, named in a string."""
    count = func.__dict__.get("_name_occurrences")
    if count is None:
        count = func._name_occurrences = len(re.findall(r"\b" + re.escape(func.name) + r"\b", "\n".join(lines)))
    return count


def calls_of(names, fname: str, lines=None) -> list:
    """The calls ``fname(...)`` by the plain name in the module's functions and classes, walked
    once per file and name (names.passed_params), and only in the definitions whose text writes
    ``fname`` (with the file's ``lines``): most definitions call no helper of this kind."""
    cache = names.passed_params
    if cache is None:
        cache = names.passed_params = {}
    found = cache.get(fname)
    if found is not None:
        return found
    found = cache[fname] = []
    for scope in (*names.functions.values(), *names.classes.values()):
        if lines is not None and getattr(scope, "end_lineno", None) is not None \
                and fname not in "\n".join(lines[scope.lineno - 1:scope.end_lineno]):
            continue
        for node in ast_walk(scope):
            if node.__class__ is ast.Call and node.func.__class__ is ast.Name and node.func.id == fname:
                found.append(node)
    return found


def run_time_default_functions(names, candidates, lines=None) -> list[str]:
    """Of ``candidates`` (module-level functions the file calls, inlined at those calls), those
    with an integer-default parameter that every call passes a value known only at run time
    (azula's ``rms_norm(x, dim=self.dim)`` of ``def rms_norm(x, dim=-1, eps=1e-5)``, with
    ``self.dim`` a required constructor argument).  No inlined flow reads the default there,
    yet the function's text computes at its default what a rule may name: read on its own
    too (a root), where that parameter is an assumption (graph.Assumed: reported, not fixed)."""
    wanted = {}
    for name in candidates:
        func = names.functions.get(name)
        if func is None:
            continue
        params = _int_default_params(func)
        if params:
            params = _dim_params(func, params, lines)
        if params:
            wanted[name] = (func, params)
    if not wanted:
        return []
    found = []
    for name, (func, params) in wanted.items():
        sites = calls_of(names, name, lines)
        if sites and any(all(_run_time_value(call, index, param) for call in sites) for param, index in params):
            found.append(name)
    return found


def _dim_params(func, params, lines=None) -> list:
    """Of ``params``, those the function hands a call as its ``dim`` (or ``axis``) keyword
    (``torch.mean(..., dim=dim)``): the axis a reduction or softmax works over, the reading
    that needs the default.  A length or an offset (``past_key_values_length=0``) is none: such a
    helper stays inlined only, its flow not built again on its own.  With the file's ``lines``,
    a body whose text writes no such keyword is not walked (_may_pass_dim)."""
    if lines is not None and not _may_pass_dim(func, params, lines):
        return []
    used = func.__dict__.get("_dim_keywords")  # (walked once per function node)
    if used is None:
        used = func._dim_keywords = frozenset(
            k.value.id for node in ast_walk(func) if node.__class__ is ast.Call for k in node.keywords
            if k.arg in ("dim", "axis") and k.value.__class__ is ast.Name)
    return [pair for pair in params if pair[0] in used]


def _may_pass_dim(func, params, lines) -> bool:
    """Can the body of ``func`` pass one of ``params`` as a ``dim=``/``axis=`` keyword?  False
    only where its text (from the first body line to the end) writes no ``dim``/``axis`` with an
    ``=`` and then that name after it (spaces, line breaks, backslashes, comments and
    parentheses allowed between, as the parser allows them): the walk of _dim_params would find
    none there.  Most integer-default helpers (lengths, offsets) pass no axis keyword, and the
    walk of their bodies was most of this reading's cost.  Non-ASCII text is walked (an
    identifier may be written in letters that normalise to ``dim``)."""
    body = func.body
    end = getattr(func, "end_lineno", None)
    if not body or end is None:
        return True
    text = "\n".join(lines[body[0].lineno - 1:end])
    if not text.isascii():
        return True
    if "dim" not in text and "axis" not in text:
        return False
    names = "|".join(re.escape(name) for name, _ in params)
    pattern = r"(?:dim|axis)" + _GAP + r"=(?!=)" + _GAP_OR_PAREN + f"(?:{names})\\b"
    return re.search(pattern, text) is not None


# what may stand between a keyword's name, its ``=``, and its value: white space, line breaks,
# backslash continuations and comments (to their line's end: one way to match each), and
# opening parentheses before the value (``dim=(dim)`` is the name too)
_GAP = r"(?:\s|\\|#[^\n]*\n)*"
_GAP_OR_PAREN = r"(?:\s|\\|#[^\n]*\n|\()*"


def _int_default_params(func) -> list[tuple[str, int | None]]:
    """(name, positional index or None) of each parameter of ``func`` with an integer default."""
    args = func.args
    positional = (*args.posonlyargs, *args.args)
    found = [(p.arg, i) for i, p in enumerate(positional)
             if i >= len(positional) - len(args.defaults)
             and int_literal(args.defaults[i - (len(positional) - len(args.defaults))]) is not None]
    found += [(p.arg, None) for p, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None and int_literal(d) is not None]
    return found


def _run_time_value(call: ast.Call, index: int | None, name: str) -> bool:
    """Does ``call`` pass the parameter a value that is no integer literal (a name, an
    attribute: known only at run time)?  Not when it leaves it out, or passes ``*``/``**``
    (then which parameter gets what is unknown: no claim)."""
    if any(a.__class__ is ast.Starred for a in call.args) or any(k.arg is None for k in call.keywords):
        return False
    passed = call.args[index] if index is not None and index < len(call.args) else None
    if passed is None:
        passed = next((k.value for k in call.keywords if k.arg == name), None)
    return passed is not None and int_literal(passed) is None and passed.__class__ is not ast.Constant
