"""fix22 (session 21, second round): an attention whose steps are spread over a caller and
helpers in another way than one added bias (a module-level helper taking the scores, the
dropout rate and the training flag to the probabilities; products in TorchScript functions)
stays declined, and the decline says which steps run in which function and what a helper
also changes in place (``x += extra`` under an if: steps the match does not hold, which a
fused call in the caller would have to take over from the helper's arguments)."""

from __future__ import annotations

import textwrap

from corpus_forms import rules

from adopter.synth import fix_text

HEAD = textwrap.dedent("""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
""")

PROBS_HELPER = textwrap.dedent("""
    def probs_of(x, rate, training=True, extra=None):
        x = x.contiguous()
        if extra is not None:
            x += extra
        return F.dropout(F.softmax(x, dim=-1), p=rate, training=training)
""")

PLAIN_HELPER = textwrap.dedent("""
    def probs_of(x, rate, training=True):
        return F.dropout(F.softmax(x, dim=-1), p=rate, training=training)
""")

CALLER = textwrap.dedent("""
    class Mixer(nn.Module):
        def __init__(self, dim, heads=2, rate=0.1):
            super().__init__()
            self.heads = heads
            self.rate = rate
            self.qkv = nn.Linear(dim, dim * 3)
            self.scale = (dim // heads) ** -0.5

        def forward(self, x, bias=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            q = q * self.scale
            s = torch.matmul(q, k.transpose(-1, -2))
            a = probs_of(s, self.rate, self.training, CALL_EXTRA)
            o = torch.matmul(a, v)
            return o.transpose(1, 2).reshape(b, n, -1)
""")


def _declines(code: str) -> list[str]:
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None
    assert fixed.text == code  # nothing rewritten
    return [why for _, why in fixed.skipped]


def test_helper_adding_in_place_says_what_it_changes():
    code = HEAD + PROBS_HELPER + CALLER.replace("CALL_EXTRA", "extra=bias")
    (why,) = _declines(code)
    assert why.startswith("the match spans helpers inlined into their caller: ")
    assert "the scores' product and the context product in `forward`" in why
    assert "the softmax and the dropout in `probs_of` (line 6)" in why
    assert "changes a tensor in place at line 9 (`x += extra`), no step of the match" in why
    assert why.endswith("; rewrite it by hand")


def test_helper_with_only_the_steps_names_them_and_nothing_else():
    # near-miss of the above: no in-place change in the helper, none reported; the caller's
    # own statements (its scale) are not the helper's
    code = HEAD + PLAIN_HELPER + CALLER.replace(", CALL_EXTRA", "").replace("q = q * self.scale", "q *= self.scale")
    (why,) = _declines(code)
    assert "the softmax and the dropout in `probs_of` (line 6)" in why
    assert "in place" not in why


SCRIPTED = textwrap.dedent("""
    @torch.jit.script
    def scores_of(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.bmm(q, k.transpose(1, 2))


    @torch.jit.script
    def mix_values(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, v)


    class Cell(nn.Module):
        def __init__(self, rate: float = 0.1):
            super().__init__()
            self.drop = nn.Dropout(rate)

        def forward(self, q, k, v):
            s = scores_of(q, k)
            a = F.softmax(s, dim=-1)
            a = self.drop(a)
            return mix_values(a, v)
""")


def test_products_in_torchscript_functions_are_said_to_be():
    (why,) = _declines(HEAD + SCRIPTED)
    assert "the scores' product in `scores_of` (line 7, a TorchScript function)" in why
    assert "the softmax and the dropout in `forward`" in why
    assert "the context product in `mix_values` (line 12, a TorchScript function)" in why
