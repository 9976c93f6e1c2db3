"""speed7: exact savings in building a module's structure, each compared with the reading it
replaces on fixtures of ours and near-misses, with the work it skips counted (so each test fails
on the engine before it)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.structure import model
from adopter.structure.model import module_structure

# The pattern autograd_forwards used before speed7, tried over the whole text.
_OLD_APPLIED = re.compile(r"\b([A-Za-z_]\w*)\.apply\b")

# Autograd Functions applied in the ways a file writes them, and look-alikes that name no class
# applied: ``self.apply(fn)``, ``x.apply_(f)``, ``Fn.applyx``, a name starting with a digit or a
# non-ASCII letter, ``.apply`` in a comment and a string, two on one line, at the line's start.
SOURCE = '''
import torch
from torch import nn


class ScaledSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        return torch.softmax(x * scale, dim=-1)

    @staticmethod
    def backward(ctx, g):
        return g, None


class Gelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.nn.functional.gelu(x)


class Unused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x


softmax_op = ScaledSoftmax.apply


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.proj = nn.Linear(d, d)
        self.apply(self._init)  # Unused.apply is named in this comment only

    def _init(self, m):
        return "Unused.apply in a string"

    def forward(self, x):
        h = self.proj(x).apply_(float)
        y = softmax_op(h, 0.5) + Gelu.apply(h); z = Gelu.apply(y)
        w = Gelu.applyx if False else ñUnused.apply if False else x
Gelu.apply(x)
'''


def _old_forwards(structure):
    """autograd_forwards as it was read before speed7 (the pattern over the joined text)."""
    names = structure.names
    classes = set(_OLD_APPLIED.findall("\n".join(structure.lines))).intersection(names.classes)
    found = {}
    for name in classes:
        fwd = model.function_forward(name, names)
        if fwd is not None:
            found[name] = fwd
    if found:
        for name, value in names.constants.items():
            if value.__class__ is ast.Attribute and value.attr == "apply" \
                    and value.value.__class__ is ast.Name and value.value.id in found:
                found[name] = found[value.value.id]
    return found


def _structure(text: str):
    return module_structure(ast.parse(text), None, text)


def test_autograd_forwards_as_before():
    structure = _structure(SOURCE)
    found = structure.autograd_forwards()
    assert found == _old_forwards(structure)
    assert list(found) == list(_old_forwards(_structure(SOURCE)))  # the same order
    # the two applied, and the name bound to one's apply; not the class named only in a
    # comment or a string (the pattern reads them, as before: no forward is dropped by that)
    assert {"ScaledSoftmax", "Gelu", "softmax_op"} <= set(found)
    assert found["softmax_op"] is found["ScaledSoftmax"]


def test_applied_pattern_per_line_as_over_the_text():
    """Per line that writes ``.apply``, the possessive pattern finds what the old one found over
    the whole text, in order: on the fixture, every module of the tool and every test file."""
    texts = [SOURCE, "Fn.apply", "x = Fn.apply\n", "9Fn.apply(x) _Fn.apply .apply a.apply.apply",
             "éFn.apply(x); Fné.apply(x)\nFn.apply_(x)\n\tFn .apply", ""]
    root = Path(__file__).resolve().parent.parent
    texts += [p.read_text(encoding="utf-8") for p in sorted((*root.glob("adopter/**/*.py"), *root.glob("tests/*.py")))]
    for text in texts:
        lines = text.split("\n")
        new = [name for line in lines if ".apply" in line for name in model._APPLIED.findall(line)]
        assert new == _OLD_APPLIED.findall("\n".join(lines))


class _Counting:
    """Stands for model._APPLIED, keeping the texts it is asked about."""

    def __init__(self, pattern):
        self.pattern, self.texts = pattern, []

    def findall(self, text):
        self.texts.append(text)
        return self.pattern.findall(text)


def test_pattern_tried_only_on_lines_that_apply(monkeypatch):
    counting = _Counting(model._APPLIED)
    monkeypatch.setattr(model, "_APPLIED", counting)
    structure = _structure(SOURCE)
    found = structure.autograd_forwards()
    assert {"ScaledSoftmax", "Gelu", "softmax_op"} <= set(found)
    assert counting.texts and all(".apply" in text and "\n" not in text for text in counting.texts)
    # a file that never writes ``.apply``: the pattern is never tried, and there is none
    counting.texts.clear()
    plain = SOURCE.replace(".apply", ".call")
    assert _structure(plain).autograd_forwards() == {}
    assert counting.texts == []


def test_findings_with_applied_functions_unchanged():
    """The whole analysis of the fixture, with the forwards read either way, gives the same
    findings (the autograd forward's softmax inlined where ``.apply`` runs it)."""
    rules = load_rules()
    new = [f.as_dict() for f in analyze(SOURCE, "fixture.py", rules).findings]
    original = model.ModuleStructure.autograd_forwards

    def old(self):
        if self._autograd is None:
            self._autograd = _old_forwards(self)
        return self._autograd

    try:
        model.ModuleStructure.autograd_forwards = old
        before = [f.as_dict() for f in analyze(SOURCE, "fixture.py", rules).findings]
    finally:
        model.ModuleStructure.autograd_forwards = original
    assert new == before


class _AskedText(str):
    """A file's text that keeps the substrings it is asked about."""

    asked: list

    def __contains__(self, needle):
        self.asked.append(needle)
        return super().__contains__(needle)


# A file where the attention rule's trigger words occur (a softmax, a matmul) and no attention is
# computed: the rule is tried and matches nothing.  Its fallback kernel's name is in the text.
NO_ATTENTION = '''
import torch
from torch import nn


class Head(nn.Module):
    """Not scaled_dot_product_attention: a classifier."""

    def __init__(self, d, n):
        super().__init__()
        self.fc = nn.Linear(d, n)

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=-1)
'''

# The same file with an attention computed by hand after an ``if`` that returns the fused kernel
# (its fallback: not reported) and one that is not a fallback (reported).
FALLBACK = '''
import math
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, d, fused):
        super().__init__()
        self.fused = fused

    def forward(self, q, k, v):
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        w = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        return torch.matmul(w.softmax(dim=-1), v)


class Plain(nn.Module):
    def forward(self, q, k, v):
        w = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        return torch.matmul(w.softmax(dim=-1), v)
'''


def test_fallback_kernels_looked_up_at_a_rules_first_match():
    rules = [r for r in load_rules() if r.id == "ADP010"]
    text = _AskedText(NO_ATTENTION)
    text.asked = []
    assert analyze(text, "fixture.py", rules).findings == []
    assert "scaled_dot_product_attention" not in text.asked  # (the rule matched nothing)
    # where it matches, the kernel's name is looked up and the fallback left out, as before
    text = _AskedText(FALLBACK)
    text.asked = []
    found = analyze(text, "fixture.py", rules).findings
    assert "scaled_dot_product_attention" in text.asked
    assert [f.class_name for f in found] == ["Plain"]
    assert [f.as_dict() for f in found] == [f.as_dict() for f in analyze(FALLBACK, "fixture.py", rules).findings]
