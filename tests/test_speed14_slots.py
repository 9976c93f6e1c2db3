"""speed14: flow nodes are slotted records (``records.dataclass(slots=True)``) built by
``FlowBuilder._new`` through a maker per key tuple.  The slotted record must behave as the
plain one does (fields, defaults, methods, copy, pickle, replace), and a node the builder makes
must hold exactly what ``Node(id=..., func=..., **fields)`` holds."""

from __future__ import annotations

import ast
import copy
import pickle

import pytest

from adopter import records
from adopter.records import replace
from adopter.structure import graph
from adopter.structure.graph import Node
from adopter.structure.model import module_structure


def _pair():
    made = []
    for slots in (False, True):
        @records.dataclass(slots=slots)
        class Step:
            id: int
            kind: str
            op: str = ""
            args: tuple = ()
            seen: list = records.field(default_factory=list)

            @property
            def first(self):
                return self.args[0] if self.args else None

        made.append(Step)
    return made


def test_slotted_record_behaves_as_the_plain_one():
    plain, slotted = _pair()
    for args, kwargs in (((1, "op"), {}), ((2, "call"), {"op": "f", "args": (3, 4)})):
        a, b = plain(*args, **kwargs), slotted(*args, **kwargs)
        assert repr(a) == repr(b)
        assert [getattr(a, n) for n in a.__record_fields__] == [getattr(b, n) for n in b.__record_fields__]
        assert a.first == b.first
        assert b == slotted(*args, **kwargs) and b != slotted(9, "x")
        assert copy.deepcopy(b) == b and copy.copy(b) == b
        assert replace(b, op="g").op == "g" and type(replace(b, op="g")) is slotted
    assert slotted(1, "op").seen is not slotted(1, "op").seen  # (a factory per instance still)
    assert not hasattr(slotted(1, "op"), "__dict__") and hasattr(plain(1, "op"), "__dict__")
    with pytest.raises(AttributeError):
        slotted(1, "op").other = 1  # (no attribute outside the fields)
    with pytest.raises(TypeError):
        hash(slotted(1, "op"))  # (mutable with eq: unhashable, as before)
    with pytest.raises(TypeError):
        records.dataclass(frozen=True, slots=True)(type("F", (), {"__annotations__": {"x": int}}))


def test_node_has_no_dict_and_keeps_its_defaults():
    node = Node(id=0, kind="op")
    assert not hasattr(node, "__dict__")
    defaults = {n: getattr(node, n) for n in Node.__record_fields__ if n not in ("id", "kind")}
    assert {n: v for n, v in graph._NODE_TEMPLATE.items() if n not in ("id", "kind")} == defaults
    assert node.op == "" and node.view is None and node.maybe == frozenset() and node.line == 0
    full = Node(id=1, kind="op", op="+", args=(graph.Ref("a", "a"),), span=(3, 4, 3, 9))
    assert pickle.loads(pickle.dumps(full)) == full and copy.deepcopy(full) == full


SOURCE = '''
import torch
import torch.nn as nn

class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, mask=None):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        s = q @ k.transpose(-1, -2) / 8.0
        if mask is not None:
            s = s + mask
        p = self.drop(s.softmax(dim=-1))
        return torch.matmul(p, v)
'''


def test_built_nodes_hold_what_the_constructor_would(monkeypatch):
    """Every node the builder makes (many key tuples: layers, methods, operators, branches)
    equals Node(id=..., func=..., stmt=..., scope=..., inlined=..., **fields)."""
    made = []
    real = graph.FlowBuilder._new

    def recorded(self, ctx, frontier, **fields):
        node, out = real(self, ctx, frontier, **fields)
        # (compared as made: the builder later rewrites some nodes' outputs)
        expected = Node(id=node.id, func=ctx.func, stmt=ctx.stmt, scope=ctx.scope, inlined=ctx.instance > 0, **fields)
        made.append((repr(node), repr(expected), node == expected, tuple(fields)))
        return node, out

    monkeypatch.setattr(graph.FlowBuilder, "_new", recorded)
    structure = module_structure(ast.parse(SOURCE), None, SOURCE)
    for cls in structure.classes.values():
        for root in cls.roots:
            cls.flow(root)
    assert len({keys for *_, keys in made}) > 3  # (several of the makers' key tuples)
    for shown, expected, equal, _ in made:
        assert equal and shown == expected
    builder = graph.FlowBuilder.__new__(graph.FlowBuilder)
    builder.nodes = []
    with pytest.raises(TypeError):
        real(builder, None, [], kind="op", nonsense=1)  # (a keyword Node refuses, as before)
