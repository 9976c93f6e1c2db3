"""Blind batch hf42 (the last transformers 4.45.2 model files): found, but not fixed.  The
fixtures are ours.

- ADP010, the llama-style eager attention of transformers 4.45 (llama, mistral, mixtral, qwen2,
  phi, gemma): after the product a shape check ``if attn_output.size() != (...): raise
  ValueError(...)``, then ``if not output_attentions: attn_weights = None`` and ``return
  attn_output, attn_weights``.  The probabilities are read at the return only when
  ``output_attentions`` holds, so the guard sends that case to the original.  The shape check
  ends in a ``raise``: it is an error exit, which stops both paths alike, not a branch that
  chooses what runs after it -- read as one, its test (the product's own shape) was "assigned
  after the attention begins" and every such attention was declined.  Checked against the
  original in float64, with and without ``output_attentions``, with a mask and without.
  Near-miss: the same shape check, then the probabilities returned on every call with no caller
  in the file to decline them: still declined (the raise makes no read conditional).
- Early exits that ``return`` (``if not return_sim: return out``) still make the reads after
  them conditional (rafix48's test keeps that).
"""

from __future__ import annotations

import textwrap

from corpus_forms import float64_pair, rules

from adopter.engine import analyze
from adopter.synth import fix_text

CODE = textwrap.dedent("""\
    import math
    import torch
    import torch.nn as nn


    class CheckedAttention(nn.Module):
        def __init__(self, dim=8, heads=2, p=0.0):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.p = p
            self.q_proj = nn.Linear(dim, dim, bias=False)
            self.k_proj = nn.Linear(dim, dim, bias=False)
            self.v_proj = nn.Linear(dim, dim, bias=False)

        def forward(self, x, attention_mask=None, output_attentions=False):
            b, n, _ = x.shape
            q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            k = self.k_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            v = self.v_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            attn_weights = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
            if attention_mask is not None:
                causal_mask = attention_mask[:, :, :, : k.shape[-2]]
                attn_weights = attn_weights + causal_mask
            attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(q.dtype)
            attn_weights = nn.functional.dropout(attn_weights, p=self.p, training=self.training)
            attn_output = torch.matmul(attn_weights, v)

            if attn_output.size() != (b, self.heads, n, self.head_dim):
                raise ValueError(f"attn_output has size {attn_output.size()}")

            attn_output = attn_output.transpose(1, 2).reshape(b, n, -1)
            if not output_attentions:
                attn_weights = None
            return attn_output, attn_weights  # checked, cleared


    class CheckedAlwaysReturned(nn.Module):
        def forward(self, q, k, v):
            attn_weights = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(q.size(-1))
            attn_weights = nn.functional.softmax(attn_weights, dim=-1)
            attn_output = torch.matmul(attn_weights, v)
            if attn_output.size() != q.size():
                raise ValueError("bad size")
            return attn_output, attn_weights  # checked, always returned
""")


def _method(text: str, cls: str) -> str:
    start = text.index(f"class {cls}(")
    end = text.find("\nclass ", start + 1)
    return text[start:end if end != -1 else len(text)]


def test_shape_check_raise_is_no_guard_and_cleared_weights_are_read_under_output_attentions():
    assert any(f.rule == "ADP010" and f.class_name == "CheckedAttention"
               for f in analyze(CODE, "model.py", rules("ADP010")).findings)
    text = fix_text(CODE, "model.py", rules("ADP010")).text
    body = _method(text, "CheckedAttention")
    assert "scaled_dot_product_attention(" in body
    assert "if output_attentions:" in body  # (the weights are read only then: the original runs)
    assert "raise ValueError" in body  # (the shape check stays, after both paths)


def test_checked_attention_fixed_exactly_with_and_without_weights():
    import torch

    text = fix_text(CODE, "model.py", rules("ADP010")).text
    original, patched = float64_pair(CODE, text, "CheckedAttention")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    causal = torch.full((5, 5), float("-inf"), dtype=torch.float64).triu(1)[None, None].expand(2, 1, 5, 5)
    # The original rounds the probabilities to float32 (``dtype=torch.float32`` then ``.to(q.dtype)``),
    # the fused call keeps float64: each probability differs by at most half a float32 ulp of
    # itself, so an output row (a convex sum of value rows) by at most eps32 / 2 * max|v|.
    bound = torch.finfo(torch.float32).eps * original.v_proj(x).abs().max().item()
    for mask in (None, causal):
        for weights in (False, True):
            out_a, w_a = original(x, attention_mask=mask, output_attentions=weights)
            out_b, w_b = patched(x, attention_mask=mask, output_attentions=weights)
            torch.testing.assert_close(out_b, out_a, rtol=0, atol=bound)
            assert (w_a is None) == (w_b is None) == (not weights)
            if weights:
                torch.testing.assert_close(w_b, w_a, rtol=0, atol=0)


def test_weights_returned_on_every_call_after_a_shape_check_stay_declined():
    assert any(f.rule == "ADP010" and f.class_name == "CheckedAlwaysReturned"
               for f in analyze(CODE, "model.py", rules("ADP010")).findings)
    text = fix_text(CODE, "model.py", rules("ADP010")).text
    assert _method(text, "CheckedAlwaysReturned") == _method(CODE, "CheckedAlwaysReturned")
