"""Another computation's statements interleaved with an attention's steps, moved after it.

slp's symmetric cross-attention computes two attentions statement by statement: both score
products, one ``if mask is not None:`` adding the mask to both, both softmaxes and dropouts,
then both value products.  The region of the first attention (its first step to its value
product) holds the second's statements too; a patch that keeps them in both arms of its guard
leaves the second attention's steps in two arms of an if and its value product after it, which
no later patch can take.  Where those statements commute with the first attention's (they read
and assign nothing the first attention's statements assign or read, the if's test is re-read
unchanged, and no two of the swapped statements both have effects), they run after the guarded
region instead, on both paths, in their own order: the same values, the same order of effects
among themselves, and the second attention is a region of its own for the next round.
"""
from __future__ import annotations

import ast

from .text import read_names, span_of, stored_names
from ..structure.treewalk import ast_walk

# Words in the name of a call that draws random numbers (its order among calls matters)
RANDOM_WORDS = ("rand", "dropout", "bernoulli", "multinomial", "normal_")


def _effectful(stmt: ast.AST) -> bool:
    """Whether the statement may have an effect beyond binding its names: an in-place change
    (augmented assignment, a store through an attribute or an index, a method ending in ``_``),
    a call of anything but a function or a method of a plain name other than ``self`` (a
    module's call runs hooks), or a random draw."""
    for node in ast_walk(stmt):
        if isinstance(node, (ast.AugAssign, ast.Delete, ast.Global, ast.Nonlocal, ast.NamedExpr,
                             ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            return True
        if isinstance(node, ast.Call) and effectful_call(node):
            return True
    return False


def effectful_call(call: ast.Call) -> bool:
    """Whether a call may change state or draw: a method ending in ``_`` (in place), a callee
    not rooted in a plain name, one rooted in ``self`` (a module's call runs hooks), or a name
    with a random word."""
    func = call.func
    attr = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    root = func
    while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
        root = root.func if isinstance(root, ast.Call) else root.value
    return (attr.endswith("_") and not attr.endswith("__")) or not isinstance(root, ast.Name) \
        or root.id == "self" or any(word in attr.lower() for word in RANDOM_WORDS)


def _mutates(stmt: ast.AST) -> bool:
    """Whether the statement changes anything in place (an augmented assignment, a store through
    an attribute or an index, a method ending in ``_``): what another statement may read."""
    for node in ast_walk(stmt):
        if isinstance(node, (ast.AugAssign, ast.Delete, ast.Global, ast.Nonlocal, ast.NamedExpr)):
            return True
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr.endswith("_") and not node.func.attr.endswith("__"):
            return True
    return False


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast_walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _plain_assign(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets)


def movable_tail(region: list, kinds: list, metadata: dict, step_if_keeps: dict, step_stmts: set,
                 stmt_text, plain_test) -> tuple[set, dict] | None:
    """The statements of the region that are no step of the attention and run after it instead:
    ``(offsets of whole statements, {offset of a step's if: its statements moved})``, or None
    where not every such statement can move, or where none of them is the other half of a
    step's if (the form this is for: a computation interleaved through the mask's if).

    ``kinds`` are the region statements' kinds (``step`` / ``keep`` / ...), ``metadata`` the
    kept statements rewritten for the fused path, ``step_if_keeps`` the statements of a step's if
    kept on the fused path (their texts), ``stmt_text`` a statement's text as kept there."""
    units: list[tuple[ast.AST, bool]] = []  # in program order: (statement or if test, moved)
    tops: set[int] = set()
    inners: dict[int, list[ast.stmt]] = {}
    for offset, (stmt, kind) in enumerate(zip(region, kinds)):
        if kind == "keep":
            if offset in metadata or not _plain_assign(stmt):
                return None
            tops.add(offset)
            units.append((stmt, True))
        elif kind == "step" and isinstance(stmt, ast.If) and span_of(stmt) not in step_stmts:
            others = [inner for inner in stmt.body if span_of(inner) not in step_stmts]
            if not others:
                units.append((stmt, False))
                continue
            if stmt.orelse or not plain_test(stmt.test) or not all(_plain_assign(i) for i in others) \
                    or [stmt_text(i) for i in others] != list(step_if_keeps.get(offset) or ()):
                return None
            units.append((stmt.test, False))
            for inner in stmt.body:
                units.append((inner, inner in others))
            inners[offset] = others
        elif kind == "step":
            units.append((stmt, False))
        else:
            return None
    if not inners or isinstance(region[-1], ast.Return):
        return None  # (nothing runs after a returning region)
    # (the form: a name the moved if-statement reassigns was computed by a moved statement before)
    moved_before: set[str] = set()
    chained = False
    for offset, stmt in enumerate(region):
        if offset in tops:
            moved_before |= stored_names(stmt)
        for inner in inners.get(offset, ()):
            chained |= bool(stored_names(inner) & _loads(inner) & moved_before)
    if not chained:
        return None
    all_stored = set().union(*(stored_names(s) for s in region))
    if any(read_names(region[offset].test) & all_stored for offset in inners):
        return None  # (the test is read again after the region)
    staying = [u for u, moved in units if not moved]
    stay_loads = set().union(*(_loads(u) for u in staying))
    stay_stored = set().union(*(stored_names(u) for u in staying if isinstance(u, ast.stmt)))
    for index, (unit, moved) in enumerate(units):
        if not moved:
            continue
        if stored_names(unit) & (stay_loads | stay_stored) or _loads(unit) & stay_stored:
            return None
        passed = [later for later, moved_too in units[index + 1:] if not moved_too]
        if _mutates(unit) or any(_mutates(later) for later in passed):
            return None  # (a change in place another statement may read)
        if _effectful(unit) and any(_effectful(later) for later in passed):
            return None  # (two effects would change order)
    return tops, inners


def tail_text(region: list, tops: set, inners: dict, stmt_text, test_text) -> str:
    """The moved statements, in their order, unindented (a step's if again with the moved
    statements of its body alone)."""
    out: list[str] = []
    for offset, stmt in enumerate(region):
        if offset in tops:
            out.append(stmt_text(stmt))
        elif offset in inners:
            body = "\n".join("    " + line for inner in inners[offset] for line in stmt_text(inner).split("\n"))
            out.append(f"if {test_text(stmt.test)}:\n{body}")
    return "\n".join(out)
