"""speed87 (session 46): the layer typer (``LayerTyper.values``, ``_walk``, ``_call``, ``_key``),
the ``__init__`` binding hook and the flow builder's ``_call`` / ``_dict_member`` / ``_keys``
test a node's class by identity (``node.__class__ is ast.Name``) where they called
``isinstance`` in a chain.  That reads the same only while no node the parser makes, and no
``Ref``, is an instance of a subclass: asserted here, with the bindings of an ``__init__`` that
walks every statement kind and value form the rewritten dispatch tells apart (the same as the
code before the change gave, compared when it was written)."""
import ast
import textwrap

from adopter.structure.graph import Ref
from adopter.structure.layers import _BLOCK_STATEMENTS, _HOOKED_STATEMENTS
from adopter.structure.model import module_structure

SRC = textwrap.dedent('''
    import torch
    from torch import nn

    def make_norm(c):
        return nn.LayerNorm(c)

    class Block(nn.Module):
        def __init__(self, d, act=None, kind="a", norm_layer=None):
            super().__init__()
            norm_layer = norm_layer or nn.BatchNorm1d
            self.fc: nn.Module = nn.Linear(d, d)
            self.act = nn.Identity() if act is None else act
            self.gate = nn.GELU() if kind == "a" else nn.SiLU()
            self.norm = norm_layer(d)
            self.ln = make_norm(d)
            self.builder = lambda c: nn.BatchNorm2d(c)
            layers = []
            for i in range(2):
                layers.append(nn.Linear(d, d))
            layers += [nn.ReLU()]
            self.seq = nn.Sequential(*layers)
            self.heads = nn.ModuleList()
            self.heads += [nn.Linear(d, 1)]
            tmp = nn.Dropout(0.1)
            del tmp
            with torch.no_grad():
                self.w = nn.Linear(d, 2 * d)
            try:
                self.drop = nn.Dropout(0.2)
            except ValueError:
                self.drop = nn.Dropout(0.3)
            if kind == "b":
                self.extra = nn.Tanh()
            self.add_module("proj", nn.Linear(d, d)),
            self.a, self.b = nn.ReLU(), nn.Sigmoid()
            acts = {"relu": nn.ReLU, "gelu": nn.GELU}
            self.picked = acts["gelu"]()
            self.nothing = None
            self.name = "relu"
            self.size = d * 2

        def forward(self, x):
            return self.proj(self.seq(self.fc(x)))
''')

EXPECTED = {
    "a": {"torch.nn.ReLU"}, "act": {"torch.nn.Identity"}, "b": {"torch.nn.Sigmoid"},
    "drop": {"torch.nn.Dropout"}, "extra": {"torch.nn.Tanh"}, "fc": {"torch.nn.Linear"},
    "gate": {"torch.nn.GELU", "torch.nn.SiLU"}, "heads": {"torch.nn.ModuleList"},
    "heads[]": {"torch.nn.Linear"}, "ln": {"torch.nn.LayerNorm"}, "norm": {"torch.nn.BatchNorm1d"},
    "picked": {"torch.nn.GELU"}, "proj": {"torch.nn.Linear"}, "seq": {"torch.nn.Sequential"},
    "w": {"torch.nn.Linear"},
    # (a string and a number: bound as an unknown value, no layer)
    "name": {"?"}, "size": {"?"},
}


def test_every_statement_kind_binds_as_before():
    bindings = module_structure(ast.parse(SRC), text=SRC).classes["Block"].bindings
    got = {attr: {c.fqn for c in ctors} for attr, ctors in bindings.items()}
    assert got == EXPECTED


def test_look_alikes_bind_no_layer():
    # None, a string key, a number and a lambda assigned to attributes: no layer bound under them
    bindings = module_structure(ast.parse(SRC), text=SRC).classes["Block"].bindings
    for attr in ("nothing", "name", "size", "builder"):
        assert {c.fqn for c in bindings.get(attr, ())} <= {"?"}, attr


def test_parsed_nodes_are_exact_instances_of_the_dispatched_classes():
    # every node the parser makes of a class the dispatch names is of that class itself
    named = {ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.Constant, ast.IfExp, ast.BoolOp,
             ast.Lambda, ast.Starred, ast.Tuple, ast.Return, ast.If, ast.Try, ast.Delete,
             *_HOOKED_STATEMENTS, *_BLOCK_STATEMENTS}
    seen = set()
    for node in ast.walk(ast.parse(SRC)):
        for cls in named:
            if isinstance(node, cls):
                assert node.__class__ is cls, (node.__class__, cls)
                seen.add(cls)
    assert {ast.Name, ast.Attribute, ast.Call, ast.IfExp, ast.BoolOp, ast.Lambda, ast.Try,
            ast.Delete, ast.With, ast.For, ast.AugAssign, ast.AnnAssign} <= seen


def test_ref_has_no_subclass():
    # graph._keys and _call read ``v.__class__ is Ref``: a subclass would be missed there
    assert Ref.__subclasses__() == []
