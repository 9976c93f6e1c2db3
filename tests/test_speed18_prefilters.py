"""Cheap exact tests in front of costly work of the module structure (session 18, speed18).

Each pre-test states a condition the costly work needs to give its answer, so the answers stay
the same (checked here against the work itself on fixtures and near-misses), and the work is
skipped where the condition fails (checked by counting the work's calls):

- LayerTyper.calls_attr: the search for ``self.<attr>`` passed as an argument of a file
  function needs a file function and ``self.<attr>`` followed by ``,`` or ``)``;
- formulas.addmm_linear_module / layer_norm_module: substituting names (a deep copy per
  statement) needs straight-line code and a callee that can resolve to ``torch.addmm``;
- ClassStructure.bound_to / bound_paths: a constructor name denotes another only when their
  last components agree (names_match), so bindings are looked up by last component;
- Matcher._candidates: a class without roots has no candidate roots.
"""

from __future__ import annotations

import ast
import copy
import re

import pytest

from adopter.engine import analyze, matchers_for
from adopter.ruleset import load_rules
from adopter.structure import formulas, layers
from adopter.structure import model as model_mod
from adopter.structure.layers import LayerTyper
from adopter.structure.model import module_structure
from adopter.structure.names import collect_names, names_match


@pytest.fixture(scope="module")
def rules():
    return {r.id: r for r in load_rules()}


def _old_calls_attr(typer: LayerTyper, cls: ast.ClassDef, attr: str) -> bool:
    """calls_attr as it was before the pre-tests (the reference the new one must agree with)."""
    text = "\n".join(typer.lines[cls.lineno - 1:cls.end_lineno])
    if f"self.{attr}(" in text:
        return True
    if f"self.{attr}" not in text:
        return False
    for found in re.finditer(rf"\b(\w+)\([^()]*[(,]?\s*\bself\.{re.escape(attr)}\s*[,)]", text):
        func = typer.names.functions.get(found.group(1))
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = "\n".join(typer.lines[func.body[0].lineno - 1:func.end_lineno])
            if any(re.search(rf"\b{a.arg}\(", body) for a in func.args.args if f"{a.arg}(" in body):
                return True
    return False


CALLS_ATTR = '''
import torch
from torch import nn


def kernel(w, act, x):
    return act(x @ w)


def scale(x, p):
    return x * p


class Block(nn.Module):
    def __init__(self, act, drop, norm, proj, extra, other):
        super().__init__()
        self.act = act
        self.drop = drop
        self.norm = norm
        self.proj = proj
        self.extra = extra
        self.other = other
        self.plain = nn.Linear(2, 2)

    def forward(self, x):
        x = kernel(self.proj.weight, self.act, x)          # act passed to a function that calls it
        x = scale(x, self.drop)                             # drop passed to one that does not
        y = torch.stack([self.norm, self.norm])             # norm passed, but to no file function
        z = self.plain(x) if isinstance(x, self.extra) else x
        for layer in self.other:                            # never passed, never called
            z = layer(z)
        return kernel(self.proj.weight,
                      self.extra , x) + y + z
'''

NO_FUNCTIONS = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.act = act

    def forward(self, x):
        return torch.utils.checkpoint.checkpoint(self.act, x)
'''


def _typer(code: str) -> tuple[LayerTyper, ast.ClassDef]:
    tree = ast.parse(code)
    names = collect_names(tree, None)
    typer = LayerTyper(names, tree)
    typer.lines = code.split("\n")
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    return typer, cls


@pytest.mark.parametrize("code", [CALLS_ATTR, NO_FUNCTIONS])
def test_calls_attr_agrees_with_the_search_it_replaces(code):
    typer, cls = _typer(code)
    attrs = ["act", "drop", "norm", "proj", "extra", "other", "plain", "missing", "proj.weight"]
    got = {a: typer.calls_attr(cls, a) for a in attrs}
    assert got == {a: _old_calls_attr(typer, cls, a) for a in attrs}
    if code is CALLS_ATTR:
        assert got["act"] and got["extra"] and got["plain"]
        assert not got["drop"] and not got["norm"] and not got["other"]


def test_calls_attr_searches_only_where_an_attribute_is_passed_to_a_file_function(monkeypatch):
    """No per-attribute pattern is compiled and run over the class for an attribute never
    followed by ``,``/``)`` (a loop over a container), nor in a file without functions."""
    searched = []
    real = re.finditer

    def counting(pattern, string, flags=0):
        searched.append(pattern)
        return real(pattern, string, flags)

    monkeypatch.setattr(layers.re, "finditer", counting)
    typer, cls = _typer(CALLS_ATTR)
    assert not typer.calls_attr(cls, "other")
    assert searched == []
    assert typer.calls_attr(cls, "act")
    assert len(searched) == 1
    typer, cls = _typer(NO_FUNCTIONS)
    searched.clear()
    assert not typer.calls_attr(cls, "act")
    assert searched == []


ADDMM = '''
import torch
from torch import nn
from torch import addmm as mm


class Conv1D(nn.Module):
    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        size_out = x.size()[:-1] + (self.weight.size(-1),)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        x = x.view(size_out)
        return x


class Aliased(nn.Module):
    def forward(self, x):
        f = mm
        return f(self.bias, x.view(-1, x.size(-1)), self.weight)


class Other(nn.Module):
    def forward(self, x):
        h = torch.matmul(x, self.weight)
        h = h + self.bias
        return h


class Branchy(nn.Module):
    def forward(self, x):
        if x.dim() > 2:
            x = x.flatten(1)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)


class Norm(nn.Module):
    def forward(self, x):
        u = x.mean(-1, keepdim=True)
        s = (x - u).pow(2).mean(-1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight * x + self.bias


class NotNorm(nn.Module):
    def forward(self, x):
        if x.dtype == torch.half:
            x = x.float()
        return torch.sqrt(x)
'''


def test_addmm_and_layer_norm_classes_read_as_before_without_copies_for_the_others(monkeypatch):
    tree = ast.parse(ADDMM)
    names = collect_names(tree, None)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    copies = []
    real = copy.deepcopy
    monkeypatch.setattr(formulas.copy, "deepcopy", lambda x, *a: copies.append(x) or real(x, *a))
    assert formulas.addmm_linear_module(classes["Conv1D"], names)
    assert formulas.addmm_linear_module(classes["Aliased"], names)  # the callee through a name
    assert formulas.layer_norm_module(classes["Norm"], names)
    copies.clear()
    for name in ("Other", "Branchy", "Norm", "NotNorm"):
        assert not formulas.addmm_linear_module(classes[name], names)
    for name in ("Other", "Branchy", "Conv1D", "NotNorm"):
        assert not formulas.layer_norm_module(classes[name], names)
    # none of these has its names substituted: no addmm callee, or no straight-line code
    # (Conv1D has no sqrt: layer_norm_module returned before, as it did already)
    assert copies == []


BOUND = '''
import torch
from torch import nn
from .layers import LayerNorm as LN


class Layer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = LN(d)
        self.ln2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(0.1)
        self.blocks = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d))
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        return self.ln2(self.drop(self.blocks(self.norm(self.proj(x))))) + x
'''


def test_bound_to_looks_bindings_up_by_last_component(monkeypatch):
    structure = module_structure(ast.parse(BOUND), None, BOUND, "model.py")  # norm: .layers.LayerNorm
    cls = structure.classes["Layer"]
    wanted = {
        frozenset({"torch.nn.LayerNorm"}): None, frozenset({"torch.nn.Dropout"}): None,
        frozenset({"torch.nn.Linear", "pkg.layers.LayerNorm"}): None, frozenset({"LayerNorm"}): None,
        frozenset({"torch.nn.Conv2d"}): None,
    }
    for ctors in wanted:  # the reference: every binding tested against every constructor name
        wanted[ctors] = (
            frozenset(word for attr, cs in cls.bindings.items() if any(names_match(a, c.fqn) for c in cs for a in ctors)
                      for word in model_mod.attr_words(attr)),
            frozenset(attr for attr, cs in cls.bindings.items() if any(names_match(a, c.fqn) for c in cs for a in ctors)),
        )
    calls = []
    real = model_mod.names_match
    monkeypatch.setattr(model_mod, "names_match", lambda a, c: calls.append((a, c)) or real(a, c))
    for ctors, (words, paths) in wanted.items():
        assert cls.bound_to(ctors) == words
        assert cls.bound_paths(ctors) == paths
    assert wanted[frozenset({"torch.nn.LayerNorm"})][1] >= {"ln2"}
    assert "norm" in wanted[frozenset({"torch.nn.Linear", "pkg.layers.LayerNorm"})][1]
    # only attributes with a constructor of the same last component were tested (the others
    # of such an attribute too: ``blocks[]`` holds a Linear and a LayerNorm)
    assert calls
    assert not any(a == "torch.nn.Conv2d" for a, _ in calls)
    assert {c for a, c in calls if a == "torch.nn.Dropout"} == {"torch.nn.Dropout"}


ROOTLESS = '''
import torch
from torch import nn
from dataclasses import dataclass


@dataclass
class Output:
    logits: torch.Tensor = None


class Config:
    hidden = 8


class Layer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.drop = nn.Dropout(0.1)
        self.norm = nn.LayerNorm(d)

    def forward(self, x, r):
        return self.norm(self.drop(x) + r)
'''


def test_classes_without_roots_are_not_visited_for_candidates(rules):
    text = ROOTLESS
    structure = module_structure(ast.parse(text), None, text, "m.py")
    found = [m for matcher in matchers_for(rules["ADP005"]) for m in matcher.match_module(structure)]
    assert found
    assert "_match_words" in structure.classes["Layer"].__dict__
    rootless = [c for c in structure.classes.values() if not c.roots and not c.all_roots]
    assert {c.name for c in rootless} >= {"Output", "Config"}
    assert all("_match_words" not in c.__dict__ for c in rootless)
    assert [f.rule for f in analyze(text, "m.py", [rules["ADP005"]]).findings] == ["ADP005"]


ASSIGNS = [
    "def __init__(self):\n    super().__init__()\n",
    "def __init__(self):\n    super().__init__()\n    self.w = 1\n",
    "def __init__(self):\n    if x:\n        pass\n    else:\n        for i in y:\n            self.w: int = i\n",
    "def __init__(self):\n    try:\n        f()\n    except E:\n        g()\n    finally:\n        n += 1\n",
    "def __init__(self):\n    try:\n        f()\n    except E:\n        z = 1\n",
    "def __init__(self):\n    with a as b:\n        while c:\n            pass\n        else:\n            d = [e := 1 for _ in ()]\n",
    "def __init__(self):\n    match k:\n        case 1:\n            f()\n        case _:\n            v = 2\n",
    "def __init__(self):\n    def helper():\n        q = 1\n    class Inner:\n        r = 2\n",
    "def __init__(self, a=lambda: 1):\n    f(lambda x: x, [y for y in z], (w := 3))\n",
]


@pytest.mark.parametrize("code", ASSIGNS)
def test_assignment_statements_found_without_walking_expressions(code):
    init = ast.parse(code).body[0]
    walked = any(isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)) for s in ast.walk(init))
    assert formulas._assigns(init.body) == walked


def test_call_names_read_the_imports_by_last_component():
    code = ("import torch\nimport torch.nn.functional as F\nfrom torch.nn.functional import softmax as sm, gelu\n"
            "from .ops import softmax\nfrom other import softmax_v2\n\nclass A:\n    def forward(self, x):\n        return sm(x)\n")
    structure = module_structure(ast.parse(code), None, code, "m.py")
    for fqn in ("torch.nn.functional.softmax", "torch.nn.functional.gelu", "pkg.ops.softmax", "torch.softmax", "x"):
        last = fqn.rsplit(".", 1)[-1]
        # (and the word standing for any class of its module looked up by a run-time name,
        # getattr(torch.optim, name): cnn50)
        wanted = frozenset({last, fqn.rpartition(".")[0] + ".*",
                            *(local for local, imported in structure.names.imports.items()
                              if names_match(fqn, imported))})
        assert structure.call_names(fqn) == wanted
    assert structure.call_names("torch.nn.functional.softmax") == {"softmax", "sm", "torch.nn.functional.*"}
    assert "<imports>" in structure._call_names
