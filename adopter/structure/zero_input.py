"""A ``baddbmm`` whose ``beta`` is a local name chosen together with its input.

``torch.baddbmm(input, a, b, beta=beta, alpha=s)`` computes ``beta * input + s * (a @ b)``;
with ``beta == 0`` torch ignores ``input`` altogether (its NaN and inf too).  GPT-BigCode's eager
attention writes the scores as

    attn_weights = torch.empty(shape, ...)
    if query.device.type == "cpu":
        attn_weights = torch.zeros_like(attn_weights)
        beta = 1
    else:
        beta = 0
    attn_weights = torch.baddbmm(attn_weights, query, key, beta=beta, alpha=scale)

(a CPU bug worked around): on one path beta is 0, on the other the input is zeros, so on every
path the input adds nothing and the call is ``s * (a @ b)``, as with a literal ``beta=0``.
:func:`adds_nothing` says so from what the code computes: the ``if`` that sets ``beta`` in both
of its branches is the statement just before the call's, each branch stores ``beta`` once, a
number, and a branch whose number is not 0 makes the input a zero-filled tensor
(``torch.zeros``, ``torch.zeros_like``, ``x.new_zeros``) that nothing in the branch touches
after.  Any other ``beta`` name -- a parameter, a value read from elsewhere, a branch with a
nonzero beta and an input that is not zeros -- is not read (the call stays opaque, as before).
"""

from __future__ import annotations

import ast
import math
import sys

from .treewalk import ast_walk, blocks

_ZERO_FILLED = frozenset({"torch.zeros", "torch.zeros_like"})


def adds_nothing(definition: ast.AST | None, stmt_span: tuple | None, beta: str, input_name: str,
                 resolve) -> bool:
    """Does the input of the ``baddbmm`` call in the statement at ``stmt_span`` contribute
    nothing on every path, by the pairing above?  ``resolve`` gives a callee's dotted name."""
    if definition is None or stmt_span is None:
        return False
    before = _statement_before(definition, stmt_span)
    if before.__class__ is not ast.If or not before.body or not before.orelse:
        return False
    return all(_branch_adds_nothing(branch, beta, input_name, resolve) for branch in (before.body, before.orelse))


def _statement_before(definition: ast.AST, stmt_span: tuple) -> ast.stmt | None:
    """The statement just before the one starting at ``stmt_span`` in its own block."""
    line, col = stmt_span[0], stmt_span[1]
    todo = [definition.body]
    while todo:
        stmts = todo.pop()
        for i, stmt in enumerate(stmts):
            if stmt.lineno == line and stmt.col_offset == col:
                return stmts[i - 1] if i else None
            if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
                todo.extend(blocks(stmt))
    return None


def _branch_adds_nothing(branch: list, beta: str, input_name: str, resolve) -> bool:
    """One store of a finite number to ``beta`` at the branch's top level (no other store of
    it anywhere in the branch); a nonzero number needs the input zero-filled there and left
    alone after.  (``1e999`` is inf, and inf times zeros is NaN, not nothing.)"""
    number = None
    stores = 0
    for node in ast_walk(ast.Module(body=branch, type_ignores=[])):
        if node.__class__ is ast.Name and node.id == beta and node.ctx.__class__ is not ast.Load:
            stores += 1
    if stores != 1:
        return False
    zeroed_at = None
    for i, stmt in enumerate(branch):
        if stmt.__class__ is not ast.Assign or len(stmt.targets) != 1 or stmt.targets[0].__class__ is not ast.Name:
            continue
        name = stmt.targets[0].id
        if name == beta:
            value = stmt.value
            # (a float must be finite: 1e999 * 0 is NaN; an int too large for a float would
            # overflow math.isfinite and becomes inf when torch takes it)
            if value.__class__ is ast.Constant and (
                    value.value.__class__ is float and math.isfinite(value.value)
                    or value.value.__class__ is int and abs(value.value) <= sys.float_info.max):
                number = value.value
        elif name == input_name:
            zeroed_at = i if _zero_filled(stmt.value, resolve) else None
    if number is None:
        return False
    if number == 0:
        return True
    if zeroed_at is None:
        return False
    return not any(node.__class__ is ast.Name and node.id == input_name
                   for stmt in branch[zeroed_at + 1:] for node in ast_walk(stmt))


def _zero_filled(value: ast.expr, resolve) -> bool:
    """``torch.zeros(...)``, ``torch.zeros_like(...)`` or ``x.new_zeros(...)``."""
    if value.__class__ is not ast.Call:
        return False
    func = value.func
    if func.__class__ is ast.Attribute and func.attr == "new_zeros":
        return True
    return resolve(func) in _ZERO_FILLED
