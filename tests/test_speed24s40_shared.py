"""speed24 (session 40): per-class and per-file facts read once, not once per flow builder.

1. A class's setting dispatches (``setting_dispatch.class_dispatches``: ``getattr(self,
   self.<attr>)`` and the values ``__init__`` decides for it) are read once per class and
   handed to the flow builder of each of its roots; the file's text is scanned for the gate
   once per file.  On the old code every root's builder read them again (and the word
   prefilter once more).  The flows are those the builder makes when it reads them itself.
"""

from __future__ import annotations

import ast
import textwrap

from adopter.structure import graph as graph_mod
from adopter.structure import model as model_mod
from adopter.structure import module_structure

# two methods dispatched on a setting (the flow inlines the one ``mode`` picks) and two roots
# of the class (forward and a second public method), plus a class without a dispatch
DISPATCHED = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class Mixer(nn.Module):
        def __init__(self, dim, mode="scaled"):
            super().__init__()
            self.mode = mode
            self.proj = nn.Linear(dim, dim)

        def plain(self, a, b):
            return torch.matmul(a, b).softmax(dim=-1)

        def scaled(self, a, b):
            w = torch.matmul(a, b) / a.shape[-1] ** 0.5
            return w.softmax(dim=-1)

        def forward(self, x):
            pick = getattr(self, self.mode)
            weights = pick(x, x.transpose(-2, -1))
            return torch.matmul(weights, self.proj(x))

        def scores(self, x):
            pick = getattr(self, self.mode)
            weights = pick(x, x.transpose(-2, -1))
            return weights


    class Plain(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            return self.proj(x).softmax(dim=-1)
    """)


def _structure(text):
    return module_structure(ast.parse(text), None, text, "mixer.py")


def _flow_text(flow):
    return [(n.kind, n.canon, n.op, n.layer, tuple(map(repr, n.args)), tuple(map(repr, n.outs)), n.span)
            for n in flow.nodes]


def _own_builder_flow(cls, name):
    """The flow the builder makes when it reads the class's dispatches itself (the old path)."""
    module = cls.module
    builder = graph_mod.FlowBuilder(module.names, cls.info, module.lines, module.package, text=module.text)
    return builder.build(cls.functions[name], f"{cls.name}.{name}")


def test_dispatches_read_once_per_class_and_gate_once_per_file(monkeypatch):
    calls = []
    real = graph_mod.class_dispatches

    def counting(cls, names, text):
        calls.append(cls.name)
        return real(cls, names, text)

    monkeypatch.setattr(graph_mod, "class_dispatches", counting)
    monkeypatch.setattr(model_mod, "class_dispatches", counting)
    structure = _structure(DISPATCHED)
    mixer = structure.classes["Mixer"]
    assert {"forward", "scores"} <= set(mixer.roots)
    for name in ("forward", "scores"):
        mixer.flow(name)
    mixer.words("forward")
    structure.classes["Plain"].flow("forward")
    # once per class (the file writes the gate: Plain is read too, and finds none); the old
    # code read Mixer's once per root's builder and once more for the prefilter
    assert sorted(calls) == ["Mixer", "Plain"]
    assert structure.dispatching() is True
    assert mixer.dispatches() and set(mixer.dispatches()) == {"mode"}
    assert structure.classes["Plain"].dispatches() == {}


def test_shared_dispatches_give_the_builders_own_flows():
    structure = _structure(DISPATCHED)
    mixer = structure.classes["Mixer"]
    for name in ("forward", "scores"):
        shared = mixer.flow(name)
        assert _flow_text(shared) == _flow_text(_own_builder_flow(mixer, name))
        # the dispatched helper is inlined: its softmax is a node of the root's flow
        assert any(n.canon == "torch.nn.functional.softmax" for n in shared.nodes)


def test_file_without_the_gate_reads_no_dispatch():
    text = DISPATCHED.replace("getattr(self, self.mode)", "self.scaled")
    structure = _structure(text)
    assert structure.dispatching() is False
    mixer = structure.classes["Mixer"]
    assert mixer.dispatches() == {}
    assert _flow_text(mixer.flow("forward")) == _flow_text(_own_builder_flow(mixer, "forward"))


# 2. held_layers' chain patterns take each name possessively (``\w*+``): what may follow a name
#    is never a word character, so the matches are those of the patterns that gave characters
#    back (the old ones, written out here) on every form, chains of one to five names included.
_OLD_CHAIN_CALL = r"self((?:\.[A-Za-z_]\w*){2,4})\s*\("
_OLD_CHAIN_STORE = r"self((?:\.[A-Za-z_]\w*){2,4})\s*(?::[^=\n]*)?=(?!=)"
_OLD_CHAIN_SETATTR = r"setattr\(\s*self((?:\.[A-Za-z_]\w*){1,3})\s*,\s*[\"']([A-Za-z_]\w*)[\"']"
CHAINS = textwrap.dedent("""\
    class Holder(nn.Module):
        def __init__(self, cfg):
            self.encoder = GPT(cfg)
            self.encoder.lm_head = nn.Linear(4, 8)
            self.encoder.head: nn.Module = nn.Linear(4, 8)
            self.a.b.c.d.e = 1
            self.a.b == self.c.d
            setattr(self.encoder, "lm_head", nn.Linear(4, 8))
            setattr( self.a.b.c , 'x1' , None)
            setattr(self.a.b.c.d, "y", None)
            myself.a.b(x)

        def forward(self, x):
            h = self.encoder.lm_head(x) + self.encoder.body.blocks.last (x)
            g = self.a.b.c.d.e(x) + self.a(x) + self.a1.b_2(x) + self.é.b(x)
            return self.txt_encoder.encoder.lm_head(h), self.x.y
    """)


def test_possessive_chain_patterns_match_as_before():
    import re

    from adopter.structure import held_layers

    pairs = ((held_layers._CHAIN_CALL, _OLD_CHAIN_CALL), (held_layers._CHAIN_STORE, _OLD_CHAIN_STORE),
             (held_layers._CHAIN_SETATTR, _OLD_CHAIN_SETATTR))
    for new, old in pairs:
        assert r"\w*+" in new.pattern and new.pattern.replace(r"\w*+", r"\w*") == old
        old = re.compile(old)
        for text in (CHAINS, CHAINS.replace(" ", "\t"), CHAINS.replace("(", " (")):
            got = [(m.span(), m.groups()) for m in held_layers._word_matches(new, text)]
            assert got == [(m.span(), m.groups()) for m in held_layers._word_matches(old, text)]
            assert got or text.startswith("class Holder (")  # (every pattern matches here but
            # setattr with a space before its bracket)
    assert held_layers._called_chains(CHAINS) == [
        ("encoder", "lm_head"), ("encoder", "body", "blocks", "last"), ("a1", "b_2"),
        ("txt_encoder", "encoder", "lm_head")]


# 3. A frozen record (graph.Ref, some 140k a pass) sets its fields through object.__setattr__,
#    which keeps them in the instance's inline values, instead of writing its __dict__ (which
#    made every later field read a dict look-up); the same values, equality, hash and refusal.
def test_frozen_records_set_their_fields():
    import pytest

    from adopter.records import FrozenInstanceError
    from adopter.structure.graph import Assumed, Const, Ref

    for cls in (Ref, Const, Assumed):
        assert "_setattr" in cls.__init__.__code__.co_names
    ref = Ref("%3", "x")
    assert (ref.key, ref.text) == ("%3", "x") and ref == Ref("%3", "x") and ref != Ref("%3", "y")
    assert hash(ref) == hash(("%3", "x"))  # (the standard decorator's hash: set orders kept)
    assert Assumed(-1, "a default").value == -1 and Assumed(-1, "w") != Const(-1)
    with pytest.raises(FrozenInstanceError):
        ref.key = "%4"
    assert repr(ref) == "Ref(key='%3', text='x')"
