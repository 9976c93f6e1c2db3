"""Members a torch base class builds (adopter/structure/torch_bases.py): a subclass of
``nn.TransformerEncoderLayer`` that calls ``self.norm1``, ``self.dropout1`` and the inherited
``self._ff_block`` is read with torch's layers; the findings are reported, not fixed (the
layers are built by torch's constructor, not in the file), and sit on the subclass's lines."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import module_structure
from adopter.synth import fix_text

import ast

RULES = select_rules(load_rules(), ["ALL"])

POST_NORM = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class StreamingLayer(nn.TransformerEncoderLayer):
        def forward(self, x, past):
            if self.norm_first:
                h = self.norm1(x)
                x = x + self._sa_block(h, past)
                x = x + self._ff_block(self.norm2(x))
            else:
                h = x
                x = self.norm1(x + self._sa_block(h, past))
                x = self.norm2(x + self._ff_block(x))
            return x, h

        def _sa_block(self, x, past):
            keys = torch.cat([past, x], dim=1)
            x = self.self_attn(x, keys, keys, need_weights=False)[0]
            return self.dropout1(x)


    class Stack(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.layers = nn.ModuleList([StreamingLayer(d, 2, 4 * d, activation=F.gelu, batch_first=True)])

        def forward(self, x, past):
            for layer in self.layers:
                x, past = layer(x, past)
            return x
''')


def _findings(text: str):
    return analyze(text, "m.py", RULES).findings


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line)


def test_inherited_layers_are_torch_layers_built_outside_the_file():
    structure = module_structure(ast.parse(POST_NORM), text=POST_NORM)
    bindings = structure.classes["StreamingLayer"].bindings
    assert {c.fqn for c in bindings["norm1"]} == {"torch.nn.LayerNorm"}
    assert {c.fqn for c in bindings["dropout2"]} == {"torch.nn.Dropout"}
    assert {c.fqn for c in bindings["linear1"]} == {"torch.nn.Linear"}
    assert all(c.unlike for c in bindings["norm1"])
    # the activation is whatever the caller passed (a string or any callable): not typed
    assert {c.fqn for c in bindings["activation"]} == {"?"}
    # placed on the subclass's base expression, not on lines of some other text
    assert {c.stmt[0] for c in bindings["norm1"]} == {_line(POST_NORM, "class StreamingLayer")}


def test_post_norm_sums_of_inherited_dropouts_are_reported_not_fixed():
    found = [f for f in _findings(POST_NORM) if f.rule == "ADP005"]
    norm1 = _line(POST_NORM, "x = self.norm1(x + self._sa_block")
    norm2 = _line(POST_NORM, "x = self.norm2(x + self._ff_block")
    # one finding per LayerNorm of a dropout-plus-residual; each covers its LayerNorm's line
    # (the own _sa_block is defined below forward: the finding runs down to its dropout), and
    # the inherited _ff_block's steps sit on the line that calls it
    assert len(found) == 2
    assert sorted((f.line, f.end_line) for f in found) == [
        (norm1, _line(POST_NORM, "return self.dropout1(x)")), (norm2, norm2)]
    assert not any(f.fixable for f in found)
    # the pre-norm branch keeps the sum as the next residual: no finding there
    assert not any(f.line <= _line(POST_NORM, "x = x + self._sa_block") <= f.end_line for f in found)
    assert fix_text(POST_NORM, "m.py", select_rules(RULES, ["ADP005"])).text == POST_NORM


def test_own_members_replace_the_inherited_ones():
    text = POST_NORM.replace(
        "    def _sa_block(self, x, past):",
        "    def __init__(self, *args, **kwargs):\n"
        "        super().__init__(*args, **kwargs)\n"
        "        self.norm2 = nn.Identity()\n\n"
        "    def _sa_block(self, x, past):")
    found = [f for f in _findings(text) if f.rule == "ADP005"]
    assert [f.line for f in found] == [_line(text, "x = self.norm1(x + self._sa_block")]


def test_without_the_torch_base_nothing_is_known():
    text = POST_NORM.replace("class StreamingLayer(nn.TransformerEncoderLayer):", "class StreamingLayer(nn.Module):")
    assert not [f for f in _findings(text) if f.rule == "ADP005"]
