"""Does a mask pick the rows a masked-modeling loss is over?

BEiT's masked image modeling hands ``bool_masked_pos`` to its body (``self.beit(pixels,
bool_masked_pos=m)``), whose embeddings replace the masked rows of the input by a learned token
(``x * (1 - w) + self.mask_token.expand(...) * w``, ``w`` the mask as floats), and then scores
the head's logits at exactly those rows (``loss(scores[m], labels)``).  The loss is then over
the content of inputs the model did not see: the classes are that content's tokens (a
vocabulary, here the visual tokenizer's), whatever the head's width is named.  No file in it
embeds tokens of that width, so the head is typed by nothing else (ADP015's ``$lm``).

:func:`replaced_by_token` follows the mask from the root function through calls of same-file
modules (keyword or position, up to three calls deep) to a function that writes one of the
replacements below with a learned token: an ``nn.Parameter`` the module binds (through
``expand``/``repeat``/``to``/``type_as`` steps), mixed in where the mask (through
``unsqueeze``/``type_as``/``float``/``bool``/``to`` steps, or ``[..., None]``) is set:

- ``x * (1 - w) + t * w`` (either order of either product or of the sum);
- ``torch.where(w, t, x)``;
- ``x[m] = t``.

A mask used otherwise (an attention mask filling scores, rows zeroed with no token, a constant
fill) replaces nothing, and the head stays untyped."""
from __future__ import annotations

import ast
import re

from .layers import bound_once
from .treewalk import ast_walk

# ``(1 - w)`` as the mix writes it (an operand of a product: in parentheses; the literal 1
# written ``1``, ``1.`` or ``1.0``): a method without one holds no mix (any_replacement's text
# test, read only in methods that read a token)
_ONE_LESS = re.compile(r"\(\s*1(?:\.0*)?\s*-")
# ``x[m] = ...``: a store under one bare name
_NAME_STORE = re.compile(r"\[\s*[A-Za-z_]\w*\s*\]\s*=(?!=)")
_MASK_STEPS = frozenset({"unsqueeze", "type_as", "float", "bool", "to", "half", "view", "reshape"})
_TOKEN_STEPS = frozenset({"expand", "expand_as", "repeat", "to", "type_as"})
MAX_CALLS = 3


def replaced_by_token(module, cls, func: ast.AST, mask: str) -> bool:
    """Does the root ``func`` of ``cls`` (a ClassStructure) hand its parameter ``mask``, not
    rebound there, to a same-file module that replaces the masked rows of its input by a
    learned token?  (Memoised per class, function and mask name: the answer depends on them
    alone.)"""
    memo = module.__dict__.setdefault("_mask_tokens", {})
    key = (cls.name, id(func), mask)
    found = memo.get(key)
    if found is None:
        found = memo[key] = _handed_on(module, cls.info, func, mask, 0)
    return found


def any_replacement(module) -> bool:
    """Does some method of a same-file class replace rows of a value by a learned token where
    one of its parameters is set (the forms of the module docstring)?  Without one, no mask can
    be :func:`replaced_by_token`: the engine skips the rule's masked-modeling matchers (an exact
    gate, worked out once per file; only classes that bind an ``nn.Parameter`` are read)."""
    found = module.__dict__.get("_mask_replacing")
    if found is None:
        found = module.__dict__["_mask_replacing"] = _any_replacement(module)
    return found


def _any_replacement(module) -> bool:
    text, lines = module.text, module.lines
    if lines is None or (text is not None and "Parameter" not in text):
        return False
    for cls in module.classes.values():
        info = cls.info
        if info is None:
            continue
        tokens = []  # (the Parameters the bindings record: _learned, in loops, no call per class)
        for attr, ctors in info.bindings.items():
            for c in ctors:
                if c.fqn == "torch.nn.Parameter":
                    tokens.append("self." + attr)
                    break
        if not tokens:
            continue
        for name, method in info.methods.items():
            if name == "__init__":
                continue
            # (the text first: a method that never reads ``self.<token>`` replaces nothing by
            # it, and each form writes ``where(``, a subscript store or a literal 1 less w)
            source = _body_text(lines, method)  # (the body: annotations write ``] = None``)
            for token in tokens:
                if token in source:
                    break
            else:
                continue
            if not ("where(" in source or _ONE_LESS.search(source) or _NAME_STORE.search(source)):
                continue
            params = frozenset(a.arg for a in method.args.posonlyargs + method.args.args + method.args.kwonlyargs)
            first = method.body[0].lineno
            at = {first + i for i, line in enumerate(source.split("\n"))
                  if "where(" in line or _ONE_LESS.search(line) or _NAME_STORE.search(line)}
            if _replaces(info, module, method, params - {"self"}, at):
                return True
    return False


def _body_text(lines: list, method: ast.FunctionDef) -> str:
    """The text of a method's body (from its first statement's line to its end)."""
    return "\n".join(lines[method.body[0].lineno - 1:method.end_lineno])


def _rebound(func: ast.AST, name: str) -> bool:
    """Is ``name`` bound in ``func`` other than as its parameter (assigned, a loop target, ...)?"""
    return any(node.__class__ is ast.Name and node.id == name and node.ctx.__class__ is not ast.Load
               for node in ast_walk(func))


def _handed_on(module, info, func: ast.AST, mask: str, depth: int) -> bool:
    """Does ``func`` (a method of ``info``'s class) replace rows by a learned token where
    ``mask`` is set, itself or in a same-file module it calls with ``mask``?"""
    if info is None or depth > MAX_CALLS or _rebound(func, mask):
        return False
    if _replaces(info, module, func, frozenset((mask,))):
        return True
    for node in ast_walk(func):
        if node.__class__ is not ast.Call:
            continue
        target = node.func
        if not (target.__class__ is ast.Attribute and target.value.__class__ is ast.Name
                and target.value.id == "self"):
            continue
        param = _receiving(module, info, target.attr, node, mask)
        if param is not None and _handed_on(module, *param, depth + 1):
            return True
    return False


def _receiving(module, info, attr: str, call: ast.Call, mask: str):
    """(class info, forward, parameter) of the same-file module ``self.<attr>`` that ``call``
    hands ``mask`` to (as a keyword the forward names, or by position); None otherwise."""
    ctors = info.bindings.get(attr, ())
    # (the constructors the binding has, less the kinds typing adds beside them: adopter.*)
    classes = {c.fqn for c in ctors if not c.fqn.startswith("adopter.")}
    if len(classes) != 1:
        return None
    owner = module.classes.get(next(iter(classes)))
    if owner is None or owner.info is None:
        return None
    forward = owner.info.methods.get("forward")
    if forward is None:
        return None
    params = [a.arg for a in forward.args.posonlyargs + forward.args.args][1:]
    for keyword in call.keywords:
        if keyword.arg is not None and _is_name(keyword.value, mask):
            return (owner.info, forward, keyword.arg) if keyword.arg in params or keyword.arg in {
                a.arg for a in forward.args.kwonlyargs} else None
    for index, arg in enumerate(call.args):
        if arg.__class__ is ast.Starred:
            return None
        if _is_name(arg, mask):
            return (owner.info, forward, params[index]) if index < len(params) else None
    return None


def _is_name(expr: ast.expr, name: str) -> bool:
    return expr.__class__ is ast.Name and expr.id == name


def _replaces(info, module, func: ast.AST, mask: frozenset, at: set | None = None) -> bool:
    """Does ``func`` write one of the replacements (module docstring) of the rows one of the
    names ``mask`` sets by a learned token of ``info``'s class?  (The forms' shapes are looked
    for in the statements on the lines ``at`` only, where given: the lines whose text may hold
    one; the function's local names are read only where a shape is found.)"""
    tokens = _learned(info, module)
    if not tokens:
        return False
    mixes, wheres, stores = [], [], []
    for node in (ast_walk(func) if at is None else _walk_statements_at(func.body, at)):
        kind = node.__class__
        if kind is ast.BinOp:
            if node.op.__class__ is ast.Add and node.left.__class__ is ast.BinOp and node.right.__class__ is ast.BinOp:
                mixes.append(node)
        elif kind is ast.Call:
            if len(node.args) == 3 and not node.keywords and _torch_where(node.func, module):
                wheres.append(node)
        elif kind is ast.Assign:
            if len(node.targets) == 1 and node.targets[0].__class__ is ast.Subscript \
                    and node.targets[0].slice.__class__ is ast.Name and node.targets[0].slice.id in mask:
                stores.append(node)
    if not (mixes or wheres or stores):
        return False
    bound = _BoundOnce(func)
    return (any(_mix(n.left, n.right, mask, tokens, bound) or _mix(n.right, n.left, mask, tokens, bound)
                for n in mixes)
            or any(_of_mask(n.args[0], mask, bound) and _of_token(n.args[1], tokens, bound) for n in wheres)
            or any(_of_token(n.value, tokens, bound) for n in stores))


def _walk_statements_at(body: list, at: set):
    """The nodes of the simple statements of ``body`` (at any depth of compound statements)
    that span one of the lines ``at``."""
    for stmt in body:
        first, last = stmt.lineno, stmt.end_lineno
        for line in at:
            if first <= line <= last:
                break
        else:
            continue
        inner = [getattr(stmt, f, None) for f in ("body", "orelse", "finalbody", "handlers")]
        inner = [b for b in inner if b]
        if stmt.__class__ in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda):
            continue
        if inner:
            for block in inner:
                yield from _walk_statements_at(block if block[0].__class__ is not ast.ExceptHandler
                                               else [s for h in block for s in h.body], at)
        else:
            yield from ast_walk(stmt)


def _mix(kept: ast.expr, token: ast.expr, mask: frozenset, tokens: set, bound: _BoundOnce) -> bool:
    """``kept`` is ``x * (1 - w)`` and ``token`` is ``t * w`` (either order of each product),
    ``w`` the mask, ``t`` a learned token."""
    if not (kept.__class__ is ast.BinOp and kept.op.__class__ is ast.Mult
            and token.__class__ is ast.BinOp and token.op.__class__ is ast.Mult):
        return False
    for w, t in ((token.left, token.right), (token.right, token.left)):
        if not (_of_mask(w, mask, bound) and _of_token(t, tokens, bound)):
            continue
        for inverse in (kept.left, kept.right):
            if (inverse.__class__ is ast.BinOp and inverse.op.__class__ is ast.Sub
                    and inverse.left.__class__ is ast.Constant and inverse.left.value == 1
                    and ast.dump(inverse.right) == ast.dump(w)):
                return True
    return False


def _of_mask(expr: ast.expr, mask: frozenset, bound: _BoundOnce, depth: int = 0) -> bool:
    """Is ``expr`` one of the names ``mask`` through shape and type steps only (a local name
    bound once to such)?"""
    if depth > 6:
        return False
    if expr.__class__ is ast.Name:
        if expr.id in mask:
            return True
        value = bound[expr.id]
        return value is not None and _of_mask(value, mask, bound, depth + 1)
    if expr.__class__ is ast.Call and expr.func.__class__ is ast.Attribute and expr.func.attr in _MASK_STEPS:
        return _of_mask(expr.func.value, mask, bound, depth + 1)
    if expr.__class__ is ast.Subscript:  # m[..., None]
        index = expr.slice
        parts = index.elts if index.__class__ is ast.Tuple else [index]
        if all((p.__class__ is ast.Constant and p.value in (None, Ellipsis))
               or (p.__class__ is ast.Slice and p.lower is p.upper is p.step is None) for p in parts):
            return _of_mask(expr.value, mask, bound, depth + 1)
    return False


def _of_token(expr: ast.expr, tokens: set, bound: _BoundOnce, depth: int = 0) -> bool:
    """Is ``expr`` a learned token of the class (``self.<p>``, an ``nn.Parameter``) through
    broadcasting and dtype steps only (a local name bound once to such)?"""
    if depth > 6:
        return False
    if expr.__class__ is ast.Name:
        value = bound[expr.id]
        return value is not None and _of_token(value, tokens, bound, depth + 1)
    if expr.__class__ is ast.Attribute:
        return expr.value.__class__ is ast.Name and expr.value.id == "self" and expr.attr in tokens
    if expr.__class__ is ast.Call and expr.func.__class__ is ast.Attribute and expr.func.attr in _TOKEN_STEPS:
        return _of_token(expr.func.value, tokens, bound, depth + 1)
    return False


class _BoundOnce(dict):
    """A function's local names bound exactly once, by a plain assignment: name -> value
    (layers.bound_once: not a parameter, not a loop target, not assigned twice; None
    otherwise), each read when first asked."""

    def __init__(self, func: ast.AST):
        super().__init__()
        self.func = func

    def __missing__(self, name: str):
        value = self[name] = bound_once(self.func, name)
        return value


def _learned(info, module) -> set:
    """The attributes ``__init__`` binds to an ``nn.Parameter`` (the class's bindings record
    them, also under ``if``/``else`` or as one arm of a conditional expression)."""
    out = set()
    for attr, ctors in info.bindings.items():  # (loops, no generator per attribute: every class is read)
        for c in ctors:
            if c.fqn == "torch.nn.Parameter":
                out.add(attr)
                break
    return out


def _torch_where(func: ast.expr, module) -> bool:
    return module.names.resolve(func) == "torch.where"
