"""rafix28: attention found but not fixed because its softmax's dim counts from the front of
scores whose rank the code does not fix.

flair's lemmatizer decodes with keys-first attention over encoder outputs handed in by the caller,
``softmax(matmul(enc, transpose(out, 1, 2)), dim=1)`` then ``transpose(matmul(transpose(enc, 1, 2),
p), 1, 2)``: attention over the keys only where the scores are 3-D (at rank 4, dim 1 is another
axis).  The engine reads that rank off the products (structure/ranks._contracted, the node's
``assumed_rank``) and the fixer declined.  Now the fused call is taken only where q, k and v
(the products' operands, up to transposes) have that rank, checked at run time; at any other
rank the original runs.  Operands the attention computes itself (not readable before it) keep
the decline.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import textwrap
import uuid

import pytest

from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULES = [r for r in load_rules() if r.id == "ADP010"]

KEYS_FIRST = textwrap.dedent('''\
    import torch
    from torch import nn


    class KeysFirstAttention(nn.Module):
        def __init__(self, dim=16):
            super().__init__()
            self.proj = nn.Linear(dim, dim)
            self.out = nn.Linear(2 * dim, dim)

        def forward(self, dec, enc):
            query = self.proj(dec)
            coeff = torch.softmax(torch.matmul(enc, torch.transpose(query, 1, 2)), dim=1)
            ctx = torch.transpose(torch.matmul(torch.transpose(enc, 1, 2), coeff), 1, 2)
            return self.out(torch.cat((query, ctx), dim=-1))
    ''')

# The same attention with the query's transpose computed between the steps' statements: the
# guard, read before the attention, could not read it.
COMPUTED_OPERAND = KEYS_FIRST.replace(
    "        coeff = torch.softmax(torch.matmul(enc, torch.transpose(query, 1, 2)), dim=1)\n",
    "        scores = torch.matmul(enc, torch.transpose(query, 1, 2))\n"
    "        query = query * 2\n"
    "        coeff = torch.softmax(scores, dim=1)\n")

# Near-miss: probabilities over dim 1 read directly by the product (no transpose moving the axis
# into place): no rank is read into it, not attention over the keys -- no finding to fix.
NO_MOVE = KEYS_FIRST.replace(
    "        ctx = torch.transpose(torch.matmul(torch.transpose(enc, 1, 2), coeff), 1, 2)\n",
    "        ctx = torch.matmul(coeff, enc)\n")


def _fix(source: str):
    return fix_text(source, "keys_first.py", RULES)


def _load(text: str):
    name = f"rafix28_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(text, name, "exec"), module.__dict__)
    return module


def test_the_variants_differ_from_the_first_fixture():
    assert COMPUTED_OPERAND != KEYS_FIRST and NO_MOVE != KEYS_FIRST


def test_keys_first_attention_of_unfixed_rank_is_fixed_with_a_rank_guard():
    result = _fix(KEYS_FIRST)
    assert result.applied, result.skipped
    tree = ast.parse(result.text)
    ifs = [n for n in ast.walk(tree) if isinstance(n, ast.If)]
    assert [ast.unparse(i.test) for i in ifs] == ["query.dim() != 3 or enc.dim() != 3"]
    assert "scaled_dot_product_attention(query, enc, enc, scale=1.0)" in result.text


def test_the_guarded_fix_equals_the_original_at_rank_3_and_falls_back_at_rank_4():
    torch = pytest.importorskip("torch")
    fixed = _fix(KEYS_FIRST)
    assert fixed.applied, fixed.skipped
    original, patched = _load(KEYS_FIRST), _load(fixed.text)
    a, b = original.KeysFirstAttention(), patched.KeysFirstAttention()
    b.load_state_dict(a.state_dict())
    torch.manual_seed(0)
    dec, enc = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    # float32, softmax over 7 keys and products of width 16: a few ulps of the outputs' size
    torch.testing.assert_close(b(dec, enc), a(dec, enc), rtol=1e-5, atol=1e-5)
    # rank 4 (every axis 16 wide, so that the original's products run): dim 1 is not the keys'
    # axis, and the fused call would differ; the guard sends it to the original, bit for bit
    dec4, enc4 = torch.randn(2, 16, 16, 16), torch.randn(2, 16, 16, 16)
    assert torch.equal(b(dec4, enc4), a(dec4, enc4))


def test_an_operand_computed_inside_the_attention_keeps_the_decline():
    result = _fix(COMPUTED_OPERAND)
    assert not result.applied
    assert any("rank the code does not fix" in str(s) or "reassigned" in str(s) for s in result.skipped), \
        result.skipped


def test_probabilities_read_directly_are_not_rewritten():
    assert not _fix(NO_MOVE).applied
