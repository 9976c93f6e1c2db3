"""Forms read while scoring blind batch research99 (GPT-2-style causal attention in seq2seq
research code).  The fixtures are ours.

- A scale under ``if self.<setting>:`` and, between it and the fused call, a causal fill read
  from a registered buffer (``torch.where(mask, w, self.masked_bias.to(w.dtype))``): the cast
  of a buffer returns a new tensor and changes nothing the instance holds, so the setting the
  fused call reads is the one the step read.  Near-misses: ``.to()`` on a submodule (moves its
  parameters in place) and a "buffer" the class also assigns declines as before.
- The ``if`` around the causal step keeps ``mask = self.tri[...]`` on the fused path; that
  kept statement is read when the setting's scale is checked (it was read as text and the
  planner failed with an internal error instead of fixing the site).
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, rules

from adopter.synth import fix_text

CAUSAL = """\
import torch
from torch import nn


class CausalScaled(nn.Module):
    def __init__(self, dim=8, n_ctx=16, scale=True, cross=False):
        super().__init__()
        self.scale = scale
        self.is_cross = cross
        self.register_buffer("tri", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.uint8)).view(1, n_ctx, n_ctx))
        self.register_buffer("neg", torch.tensor(float("-inf")))
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        #INIT

    def forward(self, x):
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        w = torch.matmul(q, k.transpose(-1, -2))
        if self.scale:
            w = w / (float(v.size(-1)) ** 0.5)
        nd, ns = w.size(-2), w.size(-1)
        if not self.is_cross:
            mask = self.tri[:, ns - nd: ns, :ns]
            w = torch.where(mask.bool(), w, FILL)
        w = nn.Softmax(dim=-1)(w)
        return torch.matmul(w, v)
"""

BUFFER_FILL = CAUSAL.replace("FILL", "self.neg.to(w.dtype)")
LITERAL_FILL = CAUSAL.replace("FILL", 'float("-inf")')


def _fix(source: str):
    return fix_text(source, "model.py", rules("ADP010"))


def _same(source: str, fixed: str, **kwargs) -> None:
    torch = pytest.importorskip("torch")
    a, b = float64_pair(source, fixed, "CausalScaled", **kwargs)
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x), a(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("cross", [True, False])
def test_a_cast_of_a_registered_buffer_after_the_setting_scale_is_still_fixed(scale, cross):
    result = _fix(BUFFER_FILL)
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    assert "if self.scale else 1.0" in result.text
    _same(BUFFER_FILL, result.text, scale=scale, cross=cross)


def test_to_on_a_submodule_after_the_setting_scale_declines():
    # look-alike: ``.to()`` on a module moves its parameters in place
    text = BUFFER_FILL.replace("self.neg.to(w.dtype)", "self.neg.to(self.to_q.to(w.dtype).weight.dtype)")
    result = _fix(text)
    assert "scaled_dot_product_attention(" not in result.text
    assert any("may change it before the fused call" in why for _, why in result.skipped), result.skipped


def test_a_buffer_the_class_also_assigns_declines():
    # look-alike: ``self.neg`` is also stored as a plain attribute, so it may be anything
    text = BUFFER_FILL.replace("        #INIT", "        self.neg = nn.Identity()")
    result = _fix(text)
    assert "scaled_dot_product_attention(" not in result.text
    assert any("may change it before the fused call" in why for _, why in result.skipped), result.skipped


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("cross", [True, False])
def test_the_kept_causal_slice_beside_a_setting_scale_is_read_and_fixed(scale, cross):
    result = _fix(LITERAL_FILL)
    assert not any("internal error" in why for _, why in result.skipped), result.skipped
    assert "scaled_dot_product_attention(" in result.text, result.skipped
    _same(LITERAL_FILL, result.text, scale=scale, cross=cross)
