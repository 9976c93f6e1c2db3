"""Forms found while checking the blind batches research81 (research model code on PyPI: OCR,
3-D reconstruction, speech enhancement, remote sensing, continual learning).  The fixtures are
ours.

- ADP010: attention written in a closure that ``forward`` never calls but stores on another
  object's attribute (``self.inner.attention = attend``: a wrapper that monkey-patches the
  attention of the module it wraps, then runs that module; a 3-D reconstruction package's
  sparse-attention aggregator).  Whoever calls it there runs its body, so the model rules read
  it as they read a module function patched the same way; before, only the file-scope rules
  read such a closure.  A closure handed to a call (``self.inner.set_attention(attend)``) was
  read already and still is.  The fix computes what the closure computed (float64, with and
  without the padding mask).  Near-misses: the same closure renormalised after the softmax (a
  form SDPA cannot reproduce) is not reported, and a closure the parent only keeps in a local
  it never hands on is read as before (file-scope rules alone).
"""

from __future__ import annotations

import pytest
from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

WRAPPER = """\
import torch
import torch.nn.functional as F
from torch import nn


class Wrapper(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner  # another file's module, whose attention this wrapper replaces
        self.attention_mask = None

    def forward(self, q, k, v):
        def attend(query, key, value):
            scores = torch.matmul(query, key.transpose(-2, -1))
            scores = scores / (key.shape[-1] ** 0.5)
            if self.attention_mask is not None:
                mask = self.attention_mask.unsqueeze(1)
                scores = scores.masked_fill(mask == 0, -1e9)
            weights = F.softmax(scores, dim=-1)
            RENORM
            return torch.matmul(weights, value)

        HAND_ON
        return self.inner(q, k, v)
"""

STORED = WRAPPER.replace("            RENORM\n", "").replace("HAND_ON", "self.inner.attention = attend")


def _one_finding_over_the_softmax(code: str) -> bool:
    hits = found(code, "ADP010")
    softmax = line_of(code, "weights = F.softmax")
    return len(hits) == 1 and hits[0].line <= softmax <= hits[0].end_line


def test_a_closure_stored_on_a_wrapped_module_is_attention():
    assert _one_finding_over_the_softmax(STORED)


def test_a_closure_handed_to_a_call_is_attention():
    code = WRAPPER.replace("            RENORM\n", "").replace("HAND_ON", "self.inner.set_attention(attend)")
    assert _one_finding_over_the_softmax(code)


def test_a_closure_renormalised_after_the_softmax_is_not_reported():
    code = WRAPPER.replace(
        "RENORM", "weights = weights / (weights.sum(-1, keepdim=True) + 1e-6)").replace(
        "HAND_ON", "self.inner.attention = attend")
    assert found(code, "ADP010") == []


def test_a_closure_only_kept_in_a_local_is_read_as_before():
    code = WRAPPER.replace("            RENORM\n", "").replace("HAND_ON", "kept = attend")
    assert found(code, "ADP010") == []


def test_the_fixed_closure_computes_what_the_original_did():
    torch = pytest.importorskip("torch")

    class Inner(torch.nn.Module):  # the wrapped module: runs whatever attention it was given
        attention = None

        def forward(self, q, k, v):
            return self.attention(q, k, v)

    fixed = fix_text(STORED, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention" in fixed
    original, patched = {}, {}
    exec(compile(STORED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float64) for _ in range(3))
    padding = torch.ones(2, 5, 5, dtype=torch.long)
    padding[:, :, 3:] = 0
    for mask in (None, padding):
        a, b = original["Wrapper"](Inner()), patched["Wrapper"](Inner())
        a.attention_mask = b.attention_mask = mask
        # float64, softmax over 5 keys and a product over 5 values: rounding far below 1e-10
        torch.testing.assert_close(b(q, k, v), a(q, k, v), rtol=0, atol=1e-10)
