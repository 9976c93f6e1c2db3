"""review60's findings in session 45's finding-side merges (small78, research115).  The
fixtures are ours.

- ADP006 through a comprehension over a layer list (small78 / research114's loop aliases): a
  loop name the element binds again -- an inner comprehension's loop, a lambda's parameter, a
  walrus in the filter -- is not the outer list's member there, so the element is not read
  with the alias (no false pair from the outer list's activation).  The same element without a
  rebinding keeps its finding.
- ADP008 ``_setting_norm`` (small78): a handing parameter passed a module constant assigned
  once (``NORM = "batch_norm"``), or a ``**`` of a local dict literal that does not hold its
  key, is decided: the construction's reading holds.  The same constant rebound elsewhere, or a
  dict that is changed after it is built, stays undecided (silent).  A factory that is never
  called but passes ``cfg.norm`` still silences the default (not told apart: documented).
- ADP010 fallback (research115): the closure a ``try`` body calls is the innermost definition
  of that name in scope, and only when the name is bound there by that one ``def``: an inner
  closure without the kernel shadowing an outer one with it, or the name rebound to a lambda,
  leave the handler's manual attention reported.
"""

from __future__ import annotations

from corpus_forms import found

HEADS = """\
import torch
from torch import nn


class Heads(nn.Module):
    def __init__(self, d, n):
        super().__init__()
        self.heads = nn.ModuleList(
            [nn.ModuleDict({"fc": nn.Linear(d, 2 * d), "act": nn.GELU(), "out": nn.Linear(2 * d, d)})
             for _ in range(n)])
        self.others = nn.ModuleList(
            [nn.ModuleDict({"fc": nn.Linear(d, 2 * d), "act": nn.Tanh(), "out": nn.Linear(2 * d, d)})
             for _ in range(n)])
        self.mix = nn.ModuleList([nn.Linear(d, d) for _ in range(n)])
        self.one = self.others[0]

    def forward(self, x):
        return {ELEMENT}
"""

REBINDING = [
    '[[h["out"](h["act"](h["fc"](x))) for h in self.others] for h, o in zip(self.heads, self.others)]',
    '[[h["out"](h["act"](h["fc"](x))) for h in self.others] for h in self.heads if h is not None]',
    '[[h["out"](h["act"](h["fc"](x))) for h in self.others] for h in self.heads]',
    '[(lambda h: h["out"](h["act"](h["fc"](x))))(self.one) for i, h in enumerate(self.heads)]',
    '[(lambda h: h["out"](h["act"](h["fc"](x))))(self.one) for h in self.heads]',
    '[h["out"](h["act"](h["fc"](x))) for h in self.heads if (h := self.one) is not None]',
]

NOT_REBINDING = [
    '[h["out"](h["act"](h["fc"](x))) for i, h in enumerate(self.heads) if i >= 0]',
    '[h["out"](h["act"](h["fc"](x))) + sum(g(x) for g in self.mix) for h in self.heads]',
    '[(lambda y: h["out"](h["act"](h["fc"](y))))(x) for h in self.heads]',
]


def _code(element: str) -> str:
    return HEADS.replace("{ELEMENT}", element)


def test_a_loop_name_rebound_inside_the_element_is_not_the_outer_lists_member():
    for element in REBINDING:
        assert found(_code(element), "ADP006") == [], element


def test_the_element_without_a_rebinding_keeps_its_pair():
    for element in NOT_REBINDING:
        assert len(found(_code(element), "ADP006")) == 1, element


SETNORM = """\
import torch
from torch import nn


class SetNorm(nn.Module):
    def __init__(self, channels, norm_type="batch_norm"):
        super().__init__()
        self.norm_type = norm_type
        if self.norm_type == "batch_norm":
            self.norm = nn.BatchNorm1d(channels)
        elif self.norm_type == "layer_norm":
            self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        if self.norm_type == "batch_norm":
            out = self.norm(x)
        elif self.norm_type == "layer_norm":
            out = self.norm(x)
        return out


class Block(nn.Module):
    def __init__(self, c, norm_type="batch_norm"):
        super().__init__()
        self.lin = nn.Linear(c, c)
        self.norm = SetNorm(c, norm_type=norm_type)

    def forward(self, x):
        return self.norm(self.lin(x))

"""

DECIDED = {
    "module constant": 'NORM = "batch_norm"\n\n\nclass Net(nn.Module):\n    def __init__(self):\n'
                       '        super().__init__()\n        self.b = Block(8, norm_type=NORM)\n',
    "local dict without the key": 'class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n'
                                  '        extra = {"c": 8}\n        self.b = Block(**extra)\n',
    "local dict with a string": 'class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n'
                                '        extra = {"c": 8, "norm_type": "batch_norm"}\n'
                                '        self.b = Block(**extra)\n',
}

UNDECIDED = {
    "constant rebound": 'NORM = "batch_norm"\n\n\ndef configure(name):\n    global NORM\n    NORM = name\n\n\n'
                        'class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n'
                        '        self.b = Block(8, norm_type=NORM)\n',
    "constant shadowed by a local": 'NORM = "batch_norm"\n\n\nclass Net(nn.Module):\n'
                                    '    def __init__(self, cfg):\n        super().__init__()\n'
                                    '        NORM = cfg.norm\n        self.b = Block(8, norm_type=NORM)\n',
    "dict changed": 'class Net(nn.Module):\n    def __init__(self, cfg):\n        super().__init__()\n'
                    '        extra = {"c": 8}\n        extra["norm_type"] = cfg.norm\n'
                    '        self.b = Block(**extra)\n',
    "dict with an undecided value": 'class Net(nn.Module):\n    def __init__(self, cfg):\n        super().__init__()\n'
                                    '        extra = {"c": 8, "norm_type": cfg.norm}\n'
                                    '        self.b = Block(**extra)\n',
    "dict from a parameter": 'class Net(nn.Module):\n    def __init__(self, extra):\n        super().__init__()\n'
                             '        self.b = Block(**extra)\n',
    # not told apart: an uncalled factory passing an undecided value still counts
    "uncalled factory": 'def make(cfg):\n    return Block(8, norm_type=cfg.norm)\n\n\n'
                        'class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n'
                        '        self.b = Block(8)\n',
}


def test_a_module_constant_or_a_local_dict_literal_decides_the_setting():
    for what, tail in DECIDED.items():
        hits = found(SETNORM + "\n" + tail, "ADP008")
        assert [f.line for f in hits] == [29], what


def test_a_rebound_constant_or_a_changed_dict_stays_undecided():
    for what, tail in UNDECIDED.items():
        assert found(SETNORM + "\n" + tail, "ADP008") == [], what


FALLBACK = """\
import torch
import torch.nn.functional as F
from torch import einsum, nn


class Attend(nn.Module):
    def forward(self, q, k, v):
        scale = q.shape[-1] ** -0.5

{BODY}
"""

MANUAL = """\
            sim = einsum("b h i d, b h j d -> b h i j", q, k) * scale
            attn = sim.softmax(dim=-1)
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
"""

SHADOWED = """\
        def _fused(q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

        def run(q, k, v):
            def _fused(q, k, v):
                return q.contiguous()

            try:
                out = _fused(q, k, v)
            except RuntimeError:
{MANUAL}            return out

        return run(q, k, v)
"""

REBOUND = """\
        def _fused(q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

        _fused = lambda q, k, v: q.contiguous()  # noqa: E731
        try:
            out = _fused(q, k, v)
        except RuntimeError:
{MANUAL}        return out
"""

INNER_KERNEL = """\
        def _fused(q, k, v):
            return q.contiguous()

        def run(q, k, v):
            def _fused(q, k, v):
                return F.scaled_dot_product_attention(q, k, v)

            try:
                out = _fused(q, k, v)
            except RuntimeError:
{MANUAL}            return out

        return run(q, k, v)
"""


def _attend(body: str, indent: str = "") -> str:
    manual = "".join(indent + line + "\n" for line in MANUAL.splitlines())
    return FALLBACK.replace("{BODY}", body.replace("{MANUAL}", manual))


def test_a_shadowing_or_rebound_closure_without_the_kernel_is_no_fallback():
    assert len(found(_attend(SHADOWED, "    "), "ADP010")) == 1
    assert len(found(_attend(REBOUND), "ADP010")) == 1


def test_the_innermost_closure_calling_the_kernel_still_makes_the_fallback():
    assert found(_attend(INNER_KERNEL, "    "), "ADP010") == []
