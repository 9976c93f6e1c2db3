"""speed28: sum_gate, asked before a flow is built for ADP005's chains (dropout -> add ->
LayerNorm), answers "may reach" wherever a dropout's value can reach a LayerNorm through an
addition -- through an alias, a tuple, a loop, a container, an attribute, a helper -- and skips
the root (no flow built) only where it cannot: an embedding sum normalised beside a dropout
that feeds neither, a tuple concatenation ``states + (h,)`` as the only add of the dropout's
value.  The findings are the same with the gate and without it."""

import ast

import pytest

from adopter import sum_gate
from adopter.engine import analyze, matchers_for
from adopter.ruleset import load_rules
from adopter.structure import module_structure

_HEAD = """import torch
from torch import nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.dropout = nn.Dropout(0.1)
        self.norm = nn.LayerNorm(d)
        self.proj = nn.Linear(d, d)
        self.emb = nn.Embedding(10, d)
        self.pos = nn.Embedding(10, d)

"""

# (name, forward and helpers of Block, may the dropout reach the norm through an addition?)
_FORMS = [
    # review47's counter-examples: an in-place method add (either way round, in a loop), an
    # import alias of torch.add
    ("in-place add_", """    def forward(self, h, x):
        h = self.dropout(h)
        h.add_(x)
        return self.norm(h)
""", True),
    ("in-place add_ on the residual", """    def forward(self, h, x):
        x.add_(self.dropout(h))
        return self.norm(x)
""", True),
    ("in-place add_ in a loop", """    def forward(self, h, x):
        for _ in range(2):
            d = self.dropout(h)
            d.add_(x)
            h = self.norm(d)
        return h
""", True),
    ("plain", """    def forward(self, h, x):
        return self.norm(self.dropout(h) + x)
""", True),
    ("alias", """    def forward(self, h, x):
        d = self.dropout(h)
        e = d
        s = x + e
        return self.norm(s)
""", True),
    ("tuple", """    def forward(self, h, x):
        pair = (self.dropout(h), x)
        a, b = pair
        return self.norm(a + b)
""", True),
    ("loop", """    def forward(self, h, x):
        for _ in range(2):
            s = x + h
            h = self.dropout(self.proj(x))
        return self.norm(s)
""", True),
    ("container", """    def forward(self, h, x):
        outs = []
        kept = outs
        kept.append(self.dropout(h))
        return self.norm(outs[0] + x)
""", True),
    ("attribute", """    def forward(self, h, x):
        self.cache = self.dropout(h)
        return self.norm(self.cache + x)
""", True),
    ("helper", """    def _dropped(self, h):
        return self.dropout(h)

    def forward(self, h, x):
        return self.norm(self._dropped(h) + x)
""", True),
    ("functional", """    def forward(self, h, x):
        d = F.dropout(h, p=0.1, training=self.training)
        return self.norm(d.add(x))
""", True),
    ("branch", """    def forward(self, h, x, flag):
        s = x
        if flag:
            s = x + self.dropout(h)
        return self.norm(s)
""", True),
    ("embedding sum beside a dropout", """    def forward(self, ids, pos):
        e = self.emb(ids) + self.pos(pos)
        e = self.norm(e)
        return self.dropout(e)
""", False),
    ("tuple concatenation as the add", """    def forward(self, h, x, states):
        d = self.dropout(h)
        states = states + (d,)
        return self.norm(self.proj(d)), states
""", False),
    ("sum rebound before the norm", """    def forward(self, h, x):
        s = self.dropout(h) + x
        s = self.proj(x)
        return self.norm(s)
""", False),
]


def _rule():
    return next(r for r in load_rules() if r.id == "ADP005")


def _answers(text):
    """sum_gate's answer per ADP005 matcher that lets Block.forward through its prefilter."""
    module = module_structure(ast.parse(text), None, text)
    cls = module.classes["Block"]
    answers = []
    for matcher in matchers_for(_rule()):
        if matcher.sum_keys is not None and "forward" in matcher._candidate_roots(cls, module):
            answers.append(matcher._sum_may_reach(cls, module, "forward"))
    return answers, cls


def _findings(text):
    result = analyze(text, "block.py", [_rule()])
    return sorted((f.rule, f.line, f.end_line, f.fixable) for f in result.findings)


@pytest.mark.parametrize(("name", "body", "reaches"), _FORMS, ids=[f[0] for f in _FORMS])
def test_gate_answers(name, body, reaches):
    answers, cls = _answers(_HEAD + body)
    assert answers, name  # (the prefilter let the root through: the gate was asked)
    assert any(answers) is reaches, name
    if not reaches:
        assert "forward" not in cls._flows  # (no flow was built for the gate's question)


@pytest.mark.parametrize(("name", "body", "reaches"), _FORMS, ids=[f[0] for f in _FORMS])
def test_same_findings_without_the_gate(name, body, reaches, monkeypatch):
    text = _HEAD + body
    gated = _findings(text)
    monkeypatch.setattr(sum_gate, "may_reach", lambda *args: True)
    assert gated == _findings(text), name
    if reaches and name not in ("loop", "container", "tuple"):
        assert gated, name  # (a site the gate must let through)


def test_skipped_root_builds_no_flow_in_the_analysis(monkeypatch):
    built = []
    from adopter.structure import model

    flow = model.ClassStructure.flow

    def watched(cls, name):
        built.append((cls.name, name))
        return flow(cls, name)

    monkeypatch.setattr(model.ClassStructure, "flow", watched)
    body = {f[0]: f[1] for f in _FORMS}["embedding sum beside a dropout"]
    assert _findings(_HEAD + body) == []
    assert ("Block", "forward") not in built
    built.clear()
    monkeypatch.setattr(sum_gate, "may_reach", lambda *args: True)
    _findings(_HEAD + body)
    assert ("Block", "forward") in built  # (without the gate the flow is built)


def test_unmodelled_code_answers_may_reach():
    body = """    def forward(self, h, x):
        def inner(v):
            return v
        try:
            s = inner(x)
            d = self.dropout(h)
        except ValueError:
            s = x
        return self.norm(s)
"""
    answers, _ = _answers(_HEAD + body)
    assert answers and all(answers)


def test_pattern_shape_is_only_the_chain():
    rule = _rule()
    assert all(m.sum_keys is not None for m in matchers_for(rule))
    others = [m for r in load_rules() if r.id != "ADP005" for m in matchers_for(r)]
    assert all(m.sum_keys is None for m in others)


def test_stored_callable_answers_may_reach():
    """A callable the class stores on ``self`` (a lambda over its layers) may be inlined where
    it is called: its body is the flow's too."""
    text = _HEAD.replace("        self.pos = nn.Embedding(10, d)\n", """        self.pos = nn.Embedding(10, d)
        self.block = lambda v: self.norm(v + self.dropout(v))
""") + """    def forward(self, h, x):
        return self.block(h)
"""
    answers, _ = _answers(text)
    assert answers and all(answers)


def test_an_import_alias_of_torch_add_may_add():
    """``from torch import add as plus``: the callee is resolved before its name is read."""
    text = _HEAD.replace("import torch\n", "import torch\nfrom torch import add as plus\n", 1) + """    def forward(self, h, x):
        return self.norm(plus(x, self.dropout(h)))
"""
    answers, _ = _answers(text)
    assert answers and all(answers)
    assert _findings(text)


def test_a_longer_chain_is_not_asked():
    """A chain with a middle layer step is not gated: its output is a new value to the gate,
    which would lose a chain through it (review47's user rule); a selection in the middle is."""
    from types import SimpleNamespace as N
    steps = [N(optional=False, op="layer", outs=("d",), args=("x",), kwargs=()),
             N(optional=False, op="layer", outs=("e",), args=("d",), kwargs=()),
             N(optional=False, op="+", outs=("s",), args=("e", "r"), kwargs=()),
             N(optional=False, op="layer", outs=("y",), args=("s",), kwargs=())]
    assert sum_gate.pattern_shape(steps) is None
    assert sum_gate.pattern_shape(steps[1:]) == (0, 2)
    steps[1].op = "canon.first"  # (a selection, ``outputs[0]``: its tags carry)
    assert sum_gate.pattern_shape(steps) == (0, 3)
