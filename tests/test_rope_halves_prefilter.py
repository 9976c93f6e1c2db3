"""Pre-filters that skip a root before its graph is built, for patterns whose words alone
admit most roots:

- ADP014's rotation written per half (``canon.rope_halves``) requires only the word ``cat``;
  the flow builder reads it only off a concatenation of a tuple or list in a function that
  takes the halves of a last axis (a slice ``x[..., :n]`` bounded by a floor division, or
  ``chunk`` / ``unbind``), so a root that reaches no such function (the HALF_PAIR pseudo-word
  of structure.model) is skipped;
- ADP015's alternatives that pass ``self.vocab_size`` / ``self.config.vocab_size`` by position
  require that name (any Linear followed by a loss is otherwise a candidate).

Every form the builder and the matcher read is still found; roots without the words get no
graph.  And the word tests themselves: a plain word no root of the file mentions rules out
every class at once (Matcher.file_keys), and matchers with the same word keys share each
file's (class, candidate roots) list (Matcher._candidates)."""

from __future__ import annotations

import ast

import pytest

from adopter.engine import analyze, matchers_for
from adopter.ruleset import load_rules
from adopter.structure.canon import HALF_PAIR
from adopter.structure.model import _mentions, module_structure
from adopter.synth import fix_text


@pytest.fixture(scope="module")
def rules():
    return {r.id: r for r in load_rules()}


HALVES = """
import torch
from torch import nn
from einops import rearrange


class HalfRotary(nn.Module):
    def forward(self, x, c, s):
{body}
"""

SLICES = """\
        lo = x[..., : x.shape[-1] // 2]
        hi = x[..., x.shape[-1] // 2 :]
"""


@pytest.mark.parametrize("halves, cat", [
    (SLICES, "torch.cat((lo * c - hi * s, hi * c + lo * s), dim=-1)"),
    (SLICES, "torch.cat([lo * c - hi * s, s * lo + hi * c], -1)"),
    # the half size through a local name
    ("        half = x.size(-1) // 2\n        lo = x[..., :half]\n        hi = x[..., half:]\n",
     "torch.cat((lo * c - hi * s, hi * c + lo * s), dim=-1)"),
    # the slices written in the products themselves
    ("", "torch.cat((x[..., : x.shape[-1] // 2] * c - x[..., x.shape[-1] // 2 :] * s,\n"
         "                          x[..., x.shape[-1] // 2 :] * c + x[..., : x.shape[-1] // 2] * s), dim=-1)"),
    ("        lo, hi = x.chunk(2, dim=-1)\n", "torch.cat((lo * c - hi * s, hi * c + lo * s), dim=-1)"),
    # the function spelling of chunk (mmpose's RTMCC rope), the second sum in either order
    ("        lo, hi = torch.chunk(x, 2, dim=-1)\n", "torch.cat([lo * c - hi * s, hi * c + lo * s], dim=-1)"),
    ("        lo, hi = torch.chunk(x, 2, -1)\n", "torch.cat((lo * c - hi * s, lo * s + hi * c), -1)"),
    ("        lo, hi = x.chunk(2, -1)\n", "torch.concat(  # the halves rotated\n            [\n"
                                          "                lo * c - hi * s, hi * c + lo * s], dim=-1)"),
    ("        lo, hi = x.chunk(2, -1)\n", "torch.cat(\\\n            (lo * c - hi * s, hi * c + lo * s), dim=-1)"),
    ('        y = rearrange(x, "... (j d) -> ... j d", j=2)\n        lo, hi = y.unbind(dim=-2)\n',
     "torch.cat((lo * c - hi * s, hi * c + lo * s), dim=-1)"),
    # the parts through names
    ("        lo, hi = x.chunk(2, dim=-1)\n        a = lo * c - hi * s\n        b = hi * c + lo * s\n",
     "torch.cat((a, b), dim=-1)"),
])
def test_every_per_half_rotation_the_builder_reads_is_still_found(rules, halves, cat):
    code = HALVES.format(body=halves + f"        return {cat}\n")
    ast.parse(code)
    found = [(f.rule, f.class_name) for f in analyze(code, "m.py", [rules["ADP014"]]).findings]
    assert found == [("ADP014", "HalfRotary")], code
    func = next(n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef))
    assert HALF_PAIR in _mentions(func, code.split("\n"))
    assert HALF_PAIR in _mentions(func, None)


def _halves_matchers(rule):
    found = [m for m in matchers_for(rule) if any(key[0] == "halfpair" for key in m.word_keys)]
    assert found
    return found


def test_a_class_that_concatenates_without_halves_gets_no_graph(rules):
    code = """
import torch
from torch import nn


class Mix(nn.Module):
    def forward(self, a, b, c, s):
        return torch.cat((a * c - b * s, b * c + a * s), dim=-1) // 2
"""
    structure = module_structure(ast.parse(code), None, code, "m.py")
    for m in _halves_matchers(rules["ADP014"]):
        assert m.match_module(structure) == []
    assert structure.classes["Mix"]._flows == {}
    # the halves taken in a function the forward calls, but concatenated in the forward: the
    # builder reads halves only where it concatenates, so still no graph
    code = code.replace("    def forward(self, a, b, c, s):\n        return",
                        "    def halves(self, x):\n        return x.chunk(2, dim=-1)\n\n"
                        "    def forward(self, x, c, s):\n        a, b = self.halves(x)\n        return")
    structure = module_structure(ast.parse(code), None, code, "m.py")
    for m in _halves_matchers(rules["ADP014"]):
        assert m.match_module(structure) == []
    assert structure.classes["Mix"]._flows == {}


def test_a_helper_that_rotates_per_half_counts_for_the_root_that_calls_it(rules):
    code = """
import torch
from torch import nn


def rotate(x, c, s):
    lo, hi = x.chunk(2, dim=-1)
    return torch.cat((lo * c - hi * s, hi * c + lo * s), dim=-1)


class Rotary(nn.Module):
    def forward(self, x, c, s):
        return rotate(x, c, s)
"""
    structure = module_structure(ast.parse(code), None, code, "m.py")
    assert any(m.match_module(structure) for m in _halves_matchers(rules["ADP014"]))
    assert "forward" in structure.classes["Rotary"]._flows


def test_the_pseudo_word_is_read_off_text_and_tree_alike():
    for source, expected in (("def f(x):\n    return g((x[..., :n], x // 2))\n", True),
                             ("def f(x):\n    a, b = x.chunk(2, -1)\n    return g([a, b])\n", True),
                             ("def f(x):\n    a, b = x.unbind(-2)\n    return g((a, b))\n", True),
                             ("def f(x):\n    return g(x[..., :n], x // 2)\n", False),  # no tuple argument
                             ("def f(x):\n    return g((x[:n], x // 2))\n", False),  # no Ellipsis
                             ("def f(x):\n    return g((x[..., :n], x / 2))\n", False),  # no floor division
                             ("def f(x):\n    return g(('chunk', x[..., :n]))  # //\n", False)):
        func = ast.parse(source).body[0]
        assert (HALF_PAIR in _mentions(func, source.split("\n"))) is expected, source
        assert (HALF_PAIR in _mentions(func, None)) is expected, source


HEAD = """
from torch import nn
from torch.nn import CrossEntropyLoss


class Head(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, h, labels):
        logits = self.lm_head(h)
        {loss}
        return loss
"""


@pytest.mark.parametrize("loss", [
    "loss = CrossEntropyLoss()(logits.view(-1, self.config.vocab_size), labels.view(-1))",
    "loss = CrossEntropyLoss()(logits.contiguous().view(-1, self.vocab_size), labels.view(-1))",
    "loss = self.loss_function(logits, labels, self.vocab_size)",
])
def test_a_vocabulary_passed_by_position_is_still_found(rules, loss):
    code = HEAD.format(loss=loss)
    assert [f.rule for f in analyze(code, "m.py", [rules["ADP015"]]).findings] == ["ADP015"], code


def test_a_linear_and_a_loss_without_the_vocabulary_get_no_graph_from_those_alternatives(rules):
    needing = [m for m in matchers_for(rules["ADP015"]) if m.required_attributes]
    assert {m.alternative for m in needing} >= {0, 1, 4}
    assert all(("word", "vocab_size") in m.word_keys for m in needing)
    code = HEAD.format(loss="loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))")
    structure = module_structure(ast.parse(code), None, code, "m.py")
    for m in needing:
        assert m.match_module(structure) == []
    assert structure.classes["Head"]._flows == {}


def test_a_word_no_root_of_the_file_mentions_rules_out_every_class_at_once(rules):
    """Matcher.file_keys: a plain word a pattern needs (``vocab_size``) that no root of any
    class mentions ends match_module before any class's roots are filtered; mentioned in a
    root, the classes are visited and the site is found."""
    needing = [m for m in matchers_for(rules["ADP015"]) if ("word", "vocab_size") in m.file_keys]
    assert needing
    # vocab_size nowhere (__init__ counts: it is a root of the rules about code around the
    # model): no class is visited
    code = HEAD.format(loss="loss = self.loss_function(logits, labels, self.num_labels)")
    code = code.replace("vocab_size", "n_vocab")
    structure = module_structure(ast.parse(code), None, code, "m.py")
    for m in needing:
        assert m.match_module(structure) == []
    assert all("_match_words" not in cls.__dict__ for cls in structure.classes.values())
    code = HEAD.format(loss="loss = self.loss_function(logits, labels, self.vocab_size)")
    structure = module_structure(ast.parse(code), None, code, "m.py")
    assert any(m.match_module(structure) for m in needing)
    assert "_match_words" in structure.classes["Head"].__dict__


def test_matchers_with_the_same_word_keys_share_the_classes_candidate_roots(rules):
    """Matcher._candidates: the (class, roots) pairs are worked out once per file for every
    matcher with the same word keys and scope (variants of one alternative), by class name."""
    by_key: dict = {}
    for rule in rules.values():
        for m in matchers_for(rule):
            by_key.setdefault(m.roots_key, []).append(m)
    shared = next(ms for ms in by_key.values() if len(ms) > 1 and ms[0].file_keys == ())
    code = HEAD.format(loss="loss = self.loss_function(logits, labels, self.vocab_size)")
    structure = module_structure(ast.parse(code), None, code, "m.py")
    first = shared[0]._candidates(structure)
    assert all(m._candidates(structure) is first for m in shared[1:])
    assert all(isinstance(name, str) and roots for name, roots in first)
    assert len(structure.candidates) == 1


@pytest.mark.parametrize("split", [
    "torch.chunk(x, 2, dim=1)",  # halves of another axis
    "torch.chunk(x, 3, dim=-1)",  # thirds
    "torch.chunk(y, 2, dim=-1)",  # halves of another tensor than the one rotated
])
def test_a_function_chunk_that_is_not_the_halves_of_the_rotated_last_axis_is_not_rope(rules, split):
    body = f"        lo, hi = {split}\n        return torch.cat((lo * c - hi * s, hi * c + lo * s), dim=-1)\n"
    code = HALVES.format(body=body).replace("def forward(self, x, c, s):", "def forward(self, x, y, c, s):")
    found = analyze(code, "m.py", [rules["ADP014"]]).findings
    if "y" in split:  # the halves of y are rotated: y's RoPE, still one tensor's rotation
        assert [f.rule for f in found] == ["ADP014"]
    else:
        assert found == [], code


def test_rotate_half_through_the_function_chunk_is_the_half_rotation(rules):
    """``x1, x2 = torch.chunk(x, 2, dim=-1); torch.cat((-x2, x1), dim=-1)`` is rotate_half
    (canon.rotate_half), as ``x.chunk(2, dim=-1)`` is: LLaMA-style RoPE of q and k through it
    is found and fixed with the file's own helper."""
    code = """
import torch
from torch import nn


def rotate_half(x):
    x1, x2 = torch.chunk(x, 2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


class Attention(nn.Module):
    def forward(self, q, k, cos, sin):
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        return q @ k.transpose(-1, -2)
"""
    found = analyze(code, "m.py", [rules["ADP014"]]).findings
    assert [(f.rule, f.line) for f in found] == [("ADP014", 12)]
    fixed = fix_text(code, "m.py", [rules["ADP014"]]).text
    assert "q_embed, k_embed = liger_rope(q, k, cos, sin, rotate_half)" in fixed
    # with the halves of the second axis the helper rotates something else: not RoPE
    assert analyze(code.replace("torch.chunk(x, 2, dim=-1)", "torch.chunk(x, 2, dim=1)"), "m.py",
                   [rules["ADP014"]]).findings == []
