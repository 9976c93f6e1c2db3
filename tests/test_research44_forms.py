"""Forms found missing while checking the blind batch research44 (vision, speech, diffusion,
multimodal and world-model research code from thirteen packages new to the corpus).  The
fixtures are ours.

- ADP010: attention weights computed in the static ``forward(ctx, q, k)`` of a same-file
  ``torch.autograd.Function`` (EDM's ``AttentionOp``: the weights in fp32 with a hand-written
  backward, the analytic gradient of the same function), called as ``AttentionOp.apply(q, k)``
  and multiplied with v by the caller: ``Fn.apply(...)`` runs that forward, so the flow inlines
  it there with its arguments bound after ``ctx`` (structure/graph.py), and a root that calls
  ``.apply`` of such a class reads the forward's words too (structure/model.py); also through a
  module-level name bound once to it (``attention_weights = AttentionWeights.apply``).  The match
  spans the Function and its caller, so the fixer reports it and declines the rewrite; a whole
  attention inside the forward whose probabilities are saved for the backward is declined too.
- verify: a forward that rearranges its input from a channel-first map (``x = rearrange(x, 'b c
  h w -> b h w c')``, metnet3's cross-covariance attention) is fed [batch, width, side, side]
  after the token-like guesses (verify/inputs.py, ``channels_first``); on main every guess was
  token-like and the class was skipped.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings, line_of, rules

from adopter.synth import fix_text

FUNCTION = textwrap.dedent("""\
    import numpy as np
    import torch
    from torch import nn


    class AttentionWeights(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k):
            w = torch.einsum("ncq,nck->nqk", q.to(torch.float32), (k / np.sqrt(k.shape[1])).to(torch.float32)).softmax(dim=2).to(q.dtype)
            ctx.save_for_backward(q, k, w)
            return w

        @staticmethod
        def backward(ctx, dw):
            q, k, w = ctx.saved_tensors
            db = w * (dw - (dw * w).sum(dim=2, keepdim=True))
            dq = torch.einsum("nck,nqk->ncq", k, db) / np.sqrt(k.shape[1])
            dk = torch.einsum("ncq,nqk->nck", q, db) / np.sqrt(k.shape[1])
            return dq, dk


    class OverQueries(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k):
            return torch.einsum("ncq,nck->nqk", q, k).softmax(dim=1)

        @staticmethod
        def backward(ctx, dw):
            return dw, dw


    class Plain:
        @staticmethod
        def apply(q, k):
            return q

        @staticmethod
        def forward(ctx, q, k):
            return torch.einsum("ncq,nck->nqk", q, k).softmax(dim=2)


    class FullAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v, scale):
            p = (q @ k.transpose(-2, -1) * scale).softmax(dim=-1)
            ctx.save_for_backward(q, k, v, p)
            return p @ v

        @staticmethod
        def backward(ctx, do):
            q, k, v, p = ctx.saved_tensors
            return do, do, do, None


    class Block(nn.Module):
        def __init__(self, channels=8, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Conv2d(channels, channels * 3, 1)

        def forward(self, x):
            q, k, v = self.qkv(x).reshape(x.shape[0] * self.heads, x.shape[1] // self.heads, 3, -1).unbind(2)
            w = AttentionWeights.apply(q, k)
            a = torch.einsum("nqk,nck->ncq", w, v)
            return a.reshape(*x.shape)


    class QueriesBlock(nn.Module):
        def __init__(self, channels=8, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Conv2d(channels, channels * 3, 1)

        def forward(self, x):
            q, k, v = self.qkv(x).reshape(x.shape[0] * self.heads, x.shape[1] // self.heads, 3, -1).unbind(2)
            w = OverQueries.apply(q, k)
            a = torch.einsum("nqk,nck->ncq", w, v)
            return a.reshape(*x.shape)


    class PlainBlock(nn.Module):
        def __init__(self, channels=8, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Conv2d(channels, channels * 3, 1)

        def forward(self, x):
            q, k, v = self.qkv(x).reshape(x.shape[0] * self.heads, x.shape[1] // self.heads, 3, -1).unbind(2)
            w = Plain.apply(q, k)
            a = torch.einsum("nqk,nck->ncq", w, v)
            return a.reshape(*x.shape)


    attention_weights = AttentionWeights.apply


    class AliasBlock(nn.Module):
        def __init__(self, channels=8, heads=2):
            super().__init__()
            self.heads = heads
            self.to_qkv = nn.Conv1d(channels, channels * 3, 1)

        def forward(self, x):
            q, k, v = self.to_qkv(x).reshape(x.shape[0] * self.heads, x.shape[1] // self.heads, 3, -1).unbind(2)
            probs = attention_weights(q, k)
            return torch.einsum("nqk,nck->ncq", probs, v).reshape(*x.shape)


    class Fused(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.to_qkv = nn.Linear(dim, dim * 3)

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            out = FullAttention.apply(q, k, v, q.shape[-1] ** -0.5)
            return out.transpose(1, 2).reshape(b, n, -1)
""")


def starts_at(code: str, needle: str, rule: str) -> bool:
    """Some finding of ``rule`` starts on the line holding ``needle`` (a finding that spans a
    Function and its caller lower in the file covers the lines between them too)."""
    line = line_of(code, needle)
    return any(f.line == line for f in findings(code, rule))


def test_attention_weights_of_an_autograd_function_are_found():
    assert covered(FUNCTION, 'w = torch.einsum("ncq,nck->nqk", q.to(torch.float32)', "ADP010")


def test_function_applied_through_a_module_level_name_is_found():
    # attention_weights = AttentionWeights.apply, called as attention_weights(q, k)
    probs = [f for f in findings(FUNCTION, "ADP010") if f.line == line_of(FUNCTION, 'w = torch.einsum("ncq,nck->nqk"')]
    assert any(f.end_line >= line_of(FUNCTION, 'return torch.einsum("nqk,nck->ncq", probs, v)') for f in probs)


def test_whole_attention_in_an_autograd_function_is_found():
    assert covered(FUNCTION, "p = (q @ k.transpose(-2, -1) * scale).softmax(dim=-1)", "ADP010")


def test_autograd_function_normalising_over_the_queries_is_no_attention():
    # (keys, queries) scores normalised over dim 1 of the rank-3 product: the queries
    assert not starts_at(FUNCTION, 'return torch.einsum("ncq,nck->nqk", q, k).softmax(dim=1)', "ADP010")


def test_apply_of_a_class_that_is_no_autograd_function_is_not_inlined():
    # Plain.apply is the class's own function (it returns q): its forward never runs
    assert not starts_at(FUNCTION, 'return torch.einsum("ncq,nck->nqk", q, k).softmax(dim=2)', "ADP010")


def test_attention_across_the_function_and_its_caller_is_not_rewritten():
    # the weights are the Function's output, and the Function is applied in two places here
    # (Block's call and the module-level alias): inlining it at one caller would replace its
    # work for that caller alone (rafix51 inlines a Function applied once: test_rafix51_forms.py)
    result = fix_text(FUNCTION, "model.py", rules("ADP010"))
    assert not result.applied
    assert result.text == FUNCTION
    line = line_of(FUNCTION, 'w = torch.einsum("ncq,nck->nqk", q.to(torch.float32)')
    assert any(f.line == line and "`AttentionWeights.apply` is called or named elsewhere" in why
               for f, why in result.skipped)


def test_probabilities_the_function_saves_for_its_backward_are_not_rewritten():
    # FullAttention.forward saves p for its backward: the fused call never forms p
    result = fix_text(FUNCTION, "model.py", rules("ADP010"))
    line = line_of(FUNCTION, "p = (q @ k.transpose(-2, -1) * scale).softmax(dim=-1)")
    assert any(f.line == line and "save_for_backward" in why for f, why in result.skipped)


# ---------------------------------------------------------------- verify: a channel-first input map

CROSS_COVARIANCE = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from einops import rearrange
    from torch import nn


    class CrossCovariance(nn.Module):
        def __init__(self, dim=16, heads=2, dim_head=8, scale=8):
            super().__init__()
            self.heads = heads
            self.scale = scale
            self.norm = nn.LayerNorm(dim)
            self.to_qkv = nn.Linear(dim, dim_head * heads * 3, bias=False)
            self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
            self.to_out = nn.Linear(dim_head * heads, dim)

        def forward(self, x):
            side = x.shape[-1]
            x = rearrange(x, "b c h w -> b (h w) c")
            x = self.norm(x)
            q, k, v = rearrange(self.to_qkv(x), "b n (qkv h d) -> qkv b h d n", qkv=3, h=self.heads)
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
            q = q * self.temperature.exp()
            sim = torch.einsum("b h i n, b h j n -> b h i j", q, k) * self.scale
            attn = sim.softmax(dim=-1)
            out = torch.einsum("b h i j, b h j n -> b h i n", attn, v)
            out = self.to_out(rearrange(out, "b h d n -> b n (h d)"))
            return rearrange(out, "b (h w) c -> b c h w", w=side)
""")


def test_cross_covariance_attention_of_a_channel_first_map_is_verified(tmp_path, capsys):
    # verify feeds [batch, width, side, side] to a forward that rearranges 'b c h w -> ...'
    import json

    from adopter.cli import main

    path = tmp_path / "xca.py"
    path.write_text(CROSS_COVARIANCE)
    main(["verify", str(path), "--no-config", "--no-benchmark", "--output-format", "json", "--select", "ADP010"])
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(r["class"], r["verdict"]) for r in rows if not r["combined"]] == [("CrossCovariance", "pass")], rows


def _channel_first_modules():
    import torch
    from einops import rearrange
    from torch import nn

    class ChannelFirst(nn.Module):
        def __init__(self, dim=16):
            super().__init__()
            self.norm = nn.LayerNorm(dim)

        def forward(self, x):
            x = rearrange(x, "b c h w -> b (h w) c")
            return self.norm(x)

    class ChannelLast(nn.Module):
        def forward(self, x):
            x = rearrange(x, "b h w c -> b c h w")
            return torch.relu(x)

    class Tokens(nn.Module):
        def forward(self, x):
            return rearrange(x, "b n (h d) -> b h n d", h=2)

    return ChannelFirst(), ChannelLast(), Tokens()


def test_an_input_rearranged_from_channel_first_is_a_channel_first_map():
    from adopter.verify.inputs import channels_first

    first, last, tokens = _channel_first_modules()
    assert channels_first(first.forward)
    # near-misses: a channel-last map moved to channel-first, and tokens split into heads
    assert not channels_first(last.forward)
    assert not channels_first(tokens.forward)
