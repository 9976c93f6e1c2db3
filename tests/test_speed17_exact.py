"""speed17: exact cuts of session 35's flow-graph readings, each with the work it skips counted
(so that the test fails on the code before the cut) and the reading itself still made where
its shape occurs.  The fixtures are ours.

1. ``FlowBuilder._body``: the in-place rotate-half reading (misses46: ``r[..., :h] = x[..., h:];
   r[..., h:] = x[..., :h]; r[..., :h].neg_()``) needs a ``.neg_()`` statement; a file whose
   text names no ``neg_`` (NFKC-normalised outside ASCII) walks its bodies with no
   per-statement test.
"""
from __future__ import annotations

import pytest
from corpus_forms import found, line_of

from adopter.structure import graph as graph_mod

IN_PLACE = """\
import torch
from torch import nn


class StepRotary(nn.Module):
    def __init__(self, heads, width):
        super().__init__()
        self.mid = width // 2
        self.register_buffer("spare", torch.empty(1, heads, 1, width), persistent=False)

    def forward(self, q, k, cos, sin):
        m = self.mid
        t = self.spare
        t[:, :, :, :m] = q[:, :, :, m:]
        t[:, :, :, m:] = q[:, :, :, :m]
        t[:, :, :, :m].neg_()
        q *= cos
        q.addcmul_(t, sin)
        u = t[:, :2, :, :]
        u[:, :, :, :m] = k[:, :, :, m:]
        u[:, :, :, m:] = k[:, :, :, :m]
        u[:, :, :, :m].neg_()
        k *= cos
        k.addcmul_(u, sin)
        return q, k
"""

# subscript writes with an expression statement two on, as the reading's first test asks, and
# no ``neg_`` anywhere in the text
NO_NEGATION = """\
import torch
from torch import nn


class Scatter(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.proj = nn.Linear(width, width)

    def forward(self, x, buf):
        buf[:, 0] = x[:, 1]
        y = self.proj(x)
        print(y.shape)
        buf[:, 1] = y[:, 0]
        z = torch.softmax(y, dim=-1)
        torch.save(z, "z.pt")
        return z
"""


def _count_negation_tests(monkeypatch) -> list:
    calls = []
    original = graph_mod._negates_in_place

    def counted(stmt):
        calls.append(stmt)
        return original(stmt)

    monkeypatch.setattr(graph_mod, "_negates_in_place", counted)
    return calls


def test_a_file_naming_no_neg_asks_no_statement_whether_it_negates_in_place(monkeypatch):
    calls = _count_negation_tests(monkeypatch)
    found(NO_NEGATION, "ADP014")
    found(NO_NEGATION, "ADP010")
    assert calls == []


def test_the_in_place_rotation_is_still_read(monkeypatch):
    calls = _count_negation_tests(monkeypatch)
    at = line_of(IN_PLACE, "q *= cos")
    assert any(f.line <= at <= f.end_line for f in found(IN_PLACE, "ADP014"))
    assert calls  # (the reading ran: the file names neg_)


def test_neg_spelled_with_compatibility_characters_keeps_the_reading():
    # ``ｎｅｇ_`` is the identifier ``neg_`` (Python normalises identifiers with NFKC): the gate
    # lets such a file's bodies be read (the word prefilter is another matter)
    code = IN_PLACE.replace("].neg_()", "].\uff4e\uff45\uff47_()")
    assert "neg_" not in code
    assert _builder(code)._names_neg_() is True


def _builder(code: str, lines: bool = True):
    import ast

    from adopter.structure.names import collect_names

    return graph_mod.FlowBuilder(collect_names(ast.parse(code)), None, code.splitlines() if lines else None)


@pytest.mark.parametrize("code", [IN_PLACE, NO_NEGATION])
def test_the_gate_answers_what_the_text_holds(code):
    assert _builder(code)._names_neg_() is ("neg_" in code)
    assert _builder(code, lines=False)._names_neg_() is True  # (no text: the reading may run)


# -- 2. FlowBuilder._new: the field check once per key tuple -------------------------------------

def test_a_field_node_does_not_take_is_refused_every_time(monkeypatch):
    builder = _builder("x = 1\n")
    ctx = graph_mod._Ctx(instance=0, func="f")
    checks = []
    original = graph_mod._node_maker

    def counted(given):
        checks.append(given)
        return original(given)

    monkeypatch.setattr(graph_mod, "_node_maker", counted)
    for _ in range(2):
        with pytest.raises(TypeError):
            builder._new(ctx, [], kind="op", colour="red")
        with pytest.raises(TypeError):
            builder._new(ctx, [], op="+")  # (no kind)
    assert not any("colour" in given for given in checks)
    node, frontier = builder._new(ctx, [], kind="op", op="+")
    again, _ = builder._new(ctx, frontier, kind="op", op="+")
    assert (node.kind, node.op, again.id) == ("op", "+", node.id + 1)
    assert builder.out[node.id] == [(again.id, None)]


# -- 3. _remember asks canon.held_fill only of values that may hold a fill ------------------------

FILLS = """\
import torch
from torch import nn


class Masked(nn.Module):
    def forward(self, q, k, v, keep):
        s = q.matmul(k.transpose(-1, -2))
        h = s.float()
        low = torch.tensor(torch.finfo(s.dtype).min, dtype=s.dtype).to(s.device)
        s = s.masked_fill(~keep, low)
        p = s.softmax(dim=-1)
        return p.matmul(v)
"""


def test_held_fill_is_asked_of_fill_holders_and_moves_only(monkeypatch):
    from adopter.structure import canon

    asked = []
    original = canon.held_fill

    def counted(expr, lookup):
        asked.append(expr)
        return original(expr, lookup)

    monkeypatch.setattr(canon, "held_fill", counted)
    found(FILLS, "ADP010")
    calls = [e.func.attr for e in asked if e.__class__.__name__ == "Call"]
    assert "to" in calls  # (the fill moved to a device: still read as the fill)
    assert not {"matmul", "float", "masked_fill", "softmax"} & set(calls)


def test_a_fill_moved_to_a_device_still_masks():
    at = line_of(FILLS, "s.softmax")
    assert any(f.line <= at <= f.end_line for f in found(FILLS, "ADP010"))


# -- 4. _assign's same-file function alias, its arguments tested in place --------------------------

ALIAS = """\
import torch
from torch import nn


def plain_attention(q, k, v):
    return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


def other_attention(q, k, v):
    return q


def pick(kind, default=None):
    return default


class Block(nn.Module):
    def forward(self, q, k, v):
        attend = pick("eager", default=plain_attention)
        return attend(q, k, v)
"""


def _through_block(code: str) -> list:
    """ADP010's findings read through Block's forward (the function's body inlined at the call)."""
    return [f.line for f in found(code, "ADP010") if f.class_name == "Block"]


def test_a_function_handed_as_a_keyword_is_what_the_name_calls():
    assert _through_block(ALIAS) == [line_of(ALIAS, "torch.softmax")]


def test_two_functions_handed_leave_the_name_unknown():
    code = ALIAS.replace('pick("eager", default=plain_attention)', 'pick(other_attention, default=plain_attention)')
    assert _through_block(code) == []


# -- 5. _assign: a conditional step and a parallel assignment tested by their value's class first --

STEPS = """\
import torch
from torch import nn


class Gated(nn.Module):
    def __init__(self, width, scaled):
        super().__init__()
        self.scaled = scaled
        self.proj = nn.Linear(width, width)

    def forward(self, q, k, v):
        a, b = q, k
        s = a.matmul(b.transpose(-1, -2))
        s = s * 0.125 if self.scaled else s
        p = s.softmax(dim=-1)
        return p.matmul(v)
"""


def test_only_conditional_values_and_displays_reach_their_readers(monkeypatch):
    seen = {"optional": [], "parallel": []}
    optional, parallel = graph_mod._optional_step, graph_mod._parallel

    def counted_optional(targets, value):
        seen["optional"].append(value.__class__.__name__)
        return optional(targets, value)

    def counted_parallel(target, value):
        seen["parallel"].append(value.__class__.__name__)
        return parallel(target, value)

    monkeypatch.setattr(graph_mod, "_optional_step", counted_optional)
    monkeypatch.setattr(graph_mod, "_parallel", counted_parallel)
    at = line_of(STEPS, "s.softmax")
    assert any(f.line <= at <= f.end_line for f in found(STEPS, "ADP010"))
    assert seen["optional"] and set(seen["optional"]) == {"IfExp"}
    assert seen["parallel"] and set(seen["parallel"]) == {"Tuple"}
