"""Planning hook of ADP009: three Linear projections of one input -> one ``fused_qkv`` call.

The projections may be written as statements of their own (``q = self.q_proj(x)``) or inside
larger ones (``q = self.q_proj(x).view(shape).transpose(1, 2)``, Hugging Face's spelling), and
code between them may already read an earlier projection (``key = self.transpose(self.key(x))``
before the value is projected).  A target pattern can only replace the last projection, which
would come too late for those reads, so the fused call is *hoisted*: it is put before the
statement of the first projection, and each projection becomes the name of its result:

    q = self.q_proj(x).view(s)          qkv_q, qkv_k, qkv_v = fused_qkv(x, self.q_proj, ...)
    k = self.k_proj(x).view(s)    ->    q = qkv_q.view(s)
    v = self.v_proj(x).view(s)          k = qkv_k.view(s)
                                        v = qkv_v.view(s)

A projection that is a whole assignment (``q = self.q_proj(x)``) keeps its name and its
statement goes (the first one's becomes the fused call).  The input must be a plain name or
attribute that nothing between the projections assigns (the matcher checks the latter), and
the three statements must be in one block.
"""

from __future__ import annotations

import ast
import re

from ..match import Match
from ..ruleset import Rule
from ..structure.treewalk import ast_walk
from .plan import Edits, Planner, Skip, Wrap, _imports_mapping
from .render import replace_names
from .text import Span, span_of


def plan(planner: Planner, rule: Rule, match: Match, edits: Edits, regions: list[Span]) -> None:
    index = planner.index
    nodes = match.nodes
    targets = rule.forward_targets or (rule.forward_target,)
    if match.alternative < len(targets) and targets[match.alternative] is None:
        # the functional form (`F.linear(x, w, b)` three times): the kernel takes three layers
        raise Skip("functional projections (F.linear over weights and biases of their own) are reported only: "
                   "the kernel takes three Linear layers; concatenate the weights by hand")
    if len(nodes) != 3:
        raise Skip("the match is not three projections")
    if len({n.func for n in nodes}) > 1:
        raise Skip("the match spans a helper method inlined into its caller; rewrite it by hand")
    infos = [index.stmt(n.stmt) for n in nodes]
    if any(info is None for info in infos):
        raise Skip("a matched statement could not be located")
    if any(info.block is not infos[0].block for info in infos):
        raise Skip("the projections are in different blocks")
    calls = []
    for node, info in zip(nodes, infos):
        call = index.find_expr(info.stmt, node.span, (ast.Call,))
        if not isinstance(call, ast.Call) or len(call.args) != 1 or call.keywords:
            raise Skip(f"the projection at line {node.span[0]} could not be located")
        calls.append(call)
    source = calls[0].args[0]
    if not _plain(source):
        raise Skip("the projections' input is not a plain name (or a slice of constants of one)")
    x = index.segment(span_of(source))
    if any(index.segment(span_of(call.args[0])) != x for call in calls):
        raise Skip("the projections do not read one input")
    root = source
    while isinstance(root, (ast.Attribute, ast.Subscript)):
        root = root.value
    last = max(info.index for info in infos)
    block = infos[0].block
    for stmt in block[min(info.index for info in infos):last + 1]:
        # The last statement's own targets are assigned after its value, projections included, is
        # evaluated (yolov5's `x = self.ma(self.q(x), self.k(x), self.v(x))[0] + x`).
        read = stmt.value if stmt is block[last] and isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)) \
            and stmt.value is not None else stmt
        if any(isinstance(n, ast.Name) and n.id == root.id and isinstance(n.ctx, ast.Store) for n in ast_walk(read)):
            raise Skip(f"`{root.id}` is assigned between the projections")
    # a projection called as ``self.q_proj.forward(x)`` (the graph reads it as the layer's
    # call): the kernel is given the layer
    layers = [index.segment(span_of(call.func.value if isinstance(call.func, ast.Attribute)
                                    and call.func.attr == "forward" else call.func)) for call in calls]
    order = sorted(range(3), key=lambda i: (infos[i].index, span_of(calls[i])[:2]))
    first = order[0]

    taken = set(index.identifiers)
    names: list[str] = []
    whole: list[bool] = []
    for i, (call, info) in enumerate(zip(calls, infos)):
        stmt = info.stmt
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and stmt.value is call and sum(info.stmt is other.stmt for other in infos) == 1):
            names.append(stmt.targets[0].id)
            whole.append(True)
        else:
            names.append(_fresh(layers[i], taken))
            whole.append(False)
    # The fused call assigns every name at the first statement: code before a later whole
    # assignment that reads the name's older value would now see the projection.
    first_info = infos[first]
    for i in range(3):
        if whole[i] and i != first:
            between = first_info.block[first_info.index:infos[i].index]
            if any(_reads(stmt, names[i]) for stmt in between):
                raise Skip(f"`{names[i]}` is read before line {infos[i].stmt.lineno}, where it is assigned")

    mapping = _imports_mapping(rule, planner.names, edits)
    kernel = replace_names(rule.kernel.import_, mapping)
    fused = f"{', '.join(names)} = {kernel}({x}, {', '.join(layers)})"
    for i in range(3):
        info = infos[i]
        if whole[i]:
            key = index.char_span(span_of(info.stmt))
            if i == first:
                edits.replace_stmt[key] = fused
            else:
                edits.delete.add(key)
            regions.append(span_of(info.stmt))
        else:
            edits.expr[index.char_span(span_of(calls[i]))] = names[i]
            regions.append(span_of(calls[i]))
    if not whole[first]:
        stmt = first_info.stmt
        start = (stmt.lineno, index.char_col(stmt.lineno, stmt.col_offset))
        edits.wrap = Wrap(first=start, last=start, guard=None, fast=fused, keep=True)
        regions.append(span_of(stmt))


def _plain(expr: ast.expr) -> bool:
    """A name, an attribute of one, or a slice of constants of either (``x[:, 1:]``, written
    alike for the three: the fused call reads it once, the same tensor)."""
    if isinstance(expr, ast.Subscript):
        if not all(isinstance(n, (ast.Constant, ast.Slice, ast.Tuple, ast.UnaryOp, ast.USub, ast.Load))
                   for n in ast_walk(expr.slice)):
            return False
        expr = expr.value
    while isinstance(expr, ast.Attribute):
        expr = expr.value
    return isinstance(expr, ast.Name)


def _reads(stmt: ast.stmt, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast_walk(stmt))


def _fresh(layer: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", layer.rsplit(".", 1)[-1]).strip("_") or "proj"
    name = f"{base}_out"
    counter = 2
    while name in taken:
        name = f"{base}_out{counter}"
        counter += 1
    taken.add(name)
    return name
