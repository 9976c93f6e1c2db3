"""speed20 (session 38): exact speed-ups, each checked against what it replaces, so that the
test fails on the old code.

1. ``match._first_candidates``: the classes a matcher whose first word key is an operation's or
   a layer's may keep are found by testing the key's parts (the file's spellings, the
   operations of the layers the roots name, the layers bound to the constructors, asked only
   where a named layer's constructor has the last name component of one) rather than the
   union ``_word_group`` made per class and key -- the same classes, in the same order, and no
   word group is made for a class that fails.
"""

from __future__ import annotations

import ast
import textwrap

from adopter import match as match_mod
from adopter.structure.model import module_structure

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn
    import torch.nn.functional as F
    from torch.nn.functional import softmax as sm


    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.attend = nn.Softmax(dim=-1)
            self.proj = nn.Linear(4, 4)

        def forward(self, x):
            return self.attend(self.proj(x))


    class Unnamed(nn.Module):
        def __init__(self):
            super().__init__()
            self.attend = nn.Softmax(dim=-1)
            self.proj = nn.Linear(4, 4)

        def forward(self, x):
            return self.proj(x)  # binds a softmax, never calls it


    class Spelled(nn.Module):
        def forward(self, x):
            return sm(x, dim=-1)


    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(4)
            self.act = nn.GELU()

        def forward(self, x):
            return self.act(self.norm(x))  # a GELU by its layer only


    class Plain(nn.Module):
        def forward(self, x):
            return x + 1


    class Config:
        size = 4


    def helper(x):
        return torch.softmax(x, -1)
''')

SOFTMAX = "torch.nn.functional.softmax"
GELU = "torch.nn.functional.gelu"
KEYS = [
    ("op", SOFTMAX),
    ("op", GELU),
    ("layer", frozenset({"torch.nn.Linear"}), ()),
    ("layer", frozenset({"torch.nn.LayerNorm"}), (GELU,)),
    ("layer", frozenset({"torch.nn.Softmax"}), (SOFTMAX,)),
    ("layer", frozenset({"torch.nn.Dropout"}), ()),
    ("layer", frozenset({"Softmax", "torch.nn.Linear"}), ()),
    ("layer", frozenset({".Linear"}), ()),
]


def _structure():
    return module_structure(ast.parse(SOURCE), None, SOURCE, "m.py")


def _by_union(module, key, file_scope):
    """What the listing was: every class with roots, tested on the union of its word group."""
    return [name for name, cls in module.classes.items()
            if (cls.all_roots if file_scope else cls.roots)
            and match_mod._mentions_group(cls, module, key, file_scope)]


def test_the_first_candidates_of_an_operation_or_layer_key_are_the_union_tests():
    for file_scope in (False, True):
        for key in KEYS:
            expected = _by_union(_structure(), key, file_scope)
            assert match_mod._first_candidates(_structure(), key, file_scope) == expected, (key, file_scope)
    # (the fixture tells the parts apart: a bound layer the root names, one it does not, a
    # spelling imported under another name, a function of the module's own scope)
    module = _structure()
    assert match_mod._first_candidates(module, ("op", SOFTMAX), False) == ["Named", "Spelled", "<module>"]
    assert match_mod._first_candidates(module, ("op", GELU), False) == ["Functional"]
    assert match_mod._first_candidates(module, KEYS[3], False) == ["Functional"]
    assert match_mod._first_candidates(module, KEYS[2], False) == ["Named", "Unnamed"]


def test_a_class_that_fails_the_first_key_gets_no_word_group_made():
    module = _structure()
    assert match_mod._first_candidates(module, ("op", SOFTMAX), False) == ["Named", "Spelled", "<module>"]
    for name in ("Unnamed", "Functional", "Plain"):
        cache = module.classes[name].__dict__.get("_match_words")
        assert cache is not None and not cache[1], name  # (the old listing cached each class's union)


def test_the_layers_named_by_the_roots_are_worked_out_once_per_class_and_scope(monkeypatch):
    module = _structure()
    calls = []
    real = type(module.classes["Named"]).layer_ops_named

    def counted(self, words):
        calls.append(self.name)
        return real(self, words)

    monkeypatch.setattr(type(module.classes["Named"]), "layer_ops_named", counted)
    for key in KEYS:
        match_mod._first_candidates(module, key, False)
    assert sorted(calls) == sorted(set(calls))  # (each class asked at most once)
    assert "Named" in calls


def test_bound_layers_are_looked_up_only_where_a_named_constructor_could_be_one(monkeypatch):
    module = _structure()
    asked = []
    real = type(module.classes["Named"]).bound_to

    def counted(self, constructors):
        asked.append((self.name, constructors))
        return real(self, constructors)

    monkeypatch.setattr(type(module.classes["Named"]), "bound_to", counted)
    assert match_mod._first_candidates(module, ("layer", frozenset({"torch.nn.Dropout"}), ()), False) == []
    assert asked == []  # (no root names a layer whose constructor ends in Dropout)
    assert match_mod._first_candidates(module, ("layer", frozenset({"torch.nn.Linear"}), ()), False) == [
        "Named", "Unnamed"]
    assert sorted(name for name, _ in asked) == ["Named", "Unnamed"]


def test_a_classs_operation_words_are_the_files_spellings_and_its_layers_without_op_attrs(monkeypatch):
    module = _structure()
    named, plain = module.classes["Named"], module.classes["Plain"]
    cls_type = type(named)
    asked = []
    real = cls_type.op_attrs
    monkeypatch.setattr(cls_type, "op_attrs", lambda self, op: asked.append(op) or real(self, op))
    words = named.op_words(SOFTMAX)
    assert plain.op_words(SOFTMAX) is module.op_words(SOFTMAX)  # (no layer: the file's set itself)
    assert named.op_words(GELU) is module.op_words(GELU)
    assert asked == []  # (the old op_words built op_attrs' frozenset per class and operation)
    attrs = named.op_attrs(SOFTMAX)  # (still answered where asked)
    assert "attend" in attrs and "proj" not in attrs
    assert words == module.op_words(SOFTMAX) | attrs
