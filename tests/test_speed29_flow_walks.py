"""speed29 (session 42): the flow builder's cuts of repeated work, each compared with what the
old code gives on fixtures of ours.

``FlowBuilder._value``'s last resort (an expression read as an opaque value, or as a node
reading what it mentions) walked an attribute or subscript twice: ``_inner_calls`` evaluated
the calls inside it, then ``_contains_call`` walked it again to ask whether there were any.
The first walk now reports what it met; the second runs only where the first met a lambda or a
comprehension (which it does not look through whole)."""
import ast
import textwrap

from adopter.structure import graph as graph_mod
from adopter.structure.graph import FlowBuilder, Ref
from adopter.structure.model import module_structure

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.proj = nn.Linear(d, d)

        def forward(self, x, idx, table):
            a = x[idx]                                  # no call: an opaque value
            b = x[:, 1:][idx]                           # nested subscripts, no call
            c = x[self.proj(idx)]                       # a call inside: a node of its own
            d = x[idx + 1]                              # an operator inside
            e = table[[i for i in idx]]                 # a comprehension (no call in it)
            f = table[[torch.relu(i) for i in idx]]     # a comprehension calling
            g = table[lambda t: t][0]                   # a lambda (no call in it)
            h = table[lambda t: torch.relu(t)][0]       # a lambda calling
            k = x.shape[idx].real                       # an attribute of a subscript, no call
            m = x[idx].view(-1)[torch.arange(3)].T      # an attribute over calls
            return a, b, c, d, e, f, g, h, k, m
''')


def _summary(flow):
    return [(n.kind, n.op, n.canon, tuple(a.key if isinstance(a, Ref) else repr(a) for a in n.args),
             tuple(o.key for o in n.outs), tuple(sorted(n.uses)), tuple(sorted(n.defs)), n.span)
            for n in flow.nodes]


def _build(structure):
    cls = structure.classes["Block"]
    builder = FlowBuilder(structure.names, cls.info, structure.lines, None)
    return builder.build(cls.functions["forward"], "Block.forward")


def test_opaque_subscripts_walked_once_and_the_same_flow(monkeypatch):
    structure = module_structure(ast.parse(SOURCE), None, SOURCE, "block.py")
    asked = []
    original = graph_mod._contains_call

    def counted(expr):
        asked.append(expr)
        return original(expr)

    monkeypatch.setattr(graph_mod, "_contains_call", counted)
    flow = _build(structure)
    summary = _summary(flow)
    # only subscripts whose walk met a lambda or a comprehension and no call are walked a second
    # time (3 of 10: the comprehension calling torch.relu shows its call to the first walk)
    assert len(asked) == 3, [ast.unparse(e) for e in asked]
    assert all(any(isinstance(n, (ast.Lambda, ast.comprehension)) for n in ast.walk(e)) for e in asked)

    # The same flow as the old code, which asked _contains_call for every one of them: the walk's
    # report switched off (met always unsure) gives the old answers.
    old_inner = FlowBuilder._inner_calls

    def unsure(self, expr, frontier, ctx, met=None):
        frontier = old_inner(self, expr, frontier, ctx, met)
        if met is not None:
            met[:] = [None]  # (what makes _value ask _contains_call, as before)
        return frontier

    monkeypatch.setattr(FlowBuilder, "_inner_calls", unsure)
    asked.clear()
    old = _build(structure)
    assert len(asked) >= 10
    assert _summary(old) == summary
    assert old.out == flow.out


def test_opaque_only_where_no_call_or_operator_is_inside():
    structure = module_structure(ast.parse(SOURCE), None, SOURCE, "block.py")
    flow = _build(structure)
    others = {n.span[0] for n in flow.nodes if n.kind == "other"}
    forward = structure.classes["Block"].functions["forward"]
    for stmt in forward.body[:-1]:
        value = stmt.value
        # read as "other" nodes (a node of its own) exactly where a call or an operator is inside
        # (the lambda without a call still holds none, but a table's lambda is read in place)
        holds = graph_mod._contains_call(value)
        line = stmt.lineno
        assert (line in others) == holds, ast.unparse(stmt)


# -- FlowBuilder._remember: a name target's reading first ----------------------------------------

REMEMBERED = textwrap.dedent('''
    import torch
    from torch import nn


    class Block(nn.Module):
        def forward(self, x, y):
            s = x.size()                 # a name: the expression kept (not the sizes of x)
            B, T, C = x.size()           # names of x's axis sizes
            t = x.shape
            H, W = y.shape
            a, b = x[..., :C], x[..., C:]
            h = x.view(B, T, 2, -1)
            return s, t, a, b, h, H, W
''')


def test_remember_reads_a_name_target_without_the_tuple_readings(monkeypatch):
    structure = module_structure(ast.parse(REMEMBERED), None, REMEMBERED, "block.py")
    cls = structure.classes["Block"]
    asked = []
    original = graph_mod._sizes_of

    def counted(expr):
        asked.append(expr)
        return original(expr)

    monkeypatch.setattr(graph_mod, "_sizes_of", counted)
    seen = {}
    remember = FlowBuilder._remember

    def spied(self, targets, value_expr, ctx):
        remember(self, targets, value_expr, ctx)
        seen.update(ctx.exprs)

    monkeypatch.setattr(FlowBuilder, "_remember", spied)
    FlowBuilder(structure.names, cls.info, structure.lines, None).build(cls.functions["forward"], "Block.forward")
    # only tuple targets ask for the sizes' owner (the old code asked for every assignment)
    forward = cls.functions["forward"]
    named = [stmt.value for stmt in forward.body if isinstance(stmt, ast.Assign)
             and isinstance(stmt.targets[0], ast.Name)]
    assert len(named) == 3 and not any(e is v for e in asked for v in named)
    assert ["x.size()", "y.shape"] == [ast.unparse(e) for e in asked][:2]
    # what each target kind remembers, as before
    assert ast.unparse(seen["s"]) == "x.size()" and ast.unparse(seen["t"]) == "x.shape"
    assert seen["B"] == ("dim_size", "x", 0, 3) and seen["C"] == ("dim_size", "x", 2, 3)
    assert seen["H"] == ("dim_size", "y", 0, 2) and seen["W"] == ("dim_size", "y", 1, 2)
    assert ast.unparse(seen["a"]) == "x[..., :C]" and ast.unparse(seen["b"]) == "x[..., C:]"
