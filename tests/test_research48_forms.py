"""Forms found missing while checking the blind batch research48 (vision, speech, diffusion,
multimodal and medical-imaging research code from seven packages new to the corpus).  The
fixtures are ours.

- ADP014: the halves of a floating upcast of the rotated tensor, ``x1, x2 =
  t.float().chunk(2, dim=-1)`` (also ``t.to(torch.float32)``), rotated per half
  (``cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1)``, btvit's golden-gate N-d RoPE, a
  one-tensor module handed to the attention through a constructor parameter and applied to q
  and to k) or in place (``cat((-x2, x1), -1)``): an upcast keeps each element's value, so the
  halves of the copy are t's own halves (structure/graph.py ``_float_copy_of``).  On main the
  halves of a call were read as nobody's halves.  A copy that changes the values (``abs()``)
  or halves of two different tensors are no rotation of one tensor.
- verify: an attention module that replaces ``__call__`` and defines no ``forward``
  (score-models' ``SelfAttentionBlock`` and ``ScaledAttentionLayer``): calling the module runs
  that method, so verify reads its signature for the inputs (verify/build.py ``_own_call``); on
  main it read ``nn.Module.forward``'s and skipped the class.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings

GOLDEN_GATE = textwrap.dedent("""\
    import torch
    from torch import nn, cat
    from einops import rearrange, reduce


    class NdRope(nn.Module):
        def __init__(self, dim_head, n=16, p=2):
            super().__init__()
            self.register_buffer("freqs", torch.randn(n, dim_head // 2, p))

        def forward(self, input, pos):
            x, y = input.float().chunk(2, dim=-1)
            freqs = rearrange(self.freqs[:input.shape[2]], "n f p -> 1 1 n f p")
            positions = rearrange(pos.float(), "b n p -> b 1 n 1 p")
            theta = reduce(freqs * positions, "b h n f p -> b h n f", "sum")
            cos_theta = torch.cos(theta)
            sin_theta = torch.sin(theta)
            x_out = x * cos_theta - y * sin_theta
            y_out = x * sin_theta + y * cos_theta
            return cat((x_out, y_out), dim=-1).type_as(input)


    class Attention(nn.Module):
        def __init__(self, dim, heads=8, dim_head=64, rotary_emb=None):
            super().__init__()
            self.heads = heads
            self.rotary_emb = rotary_emb
            self.to_qkv = nn.Linear(dim, dim_head * heads * 3, bias=False)

        def forward(self, x, pos=None):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), (q, k, v))
            if self.rotary_emb is not None:
                q = self.rotary_emb(q, pos)
                k = self.rotary_emb(k, pos)
            return (q @ k.transpose(-1, -2)).softmax(dim=-1) @ v


    class Encoder(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.rope = NdRope(64)
            self.attn = Attention(dim, rotary_emb=self.rope)

        def forward(self, x, pos):
            return self.attn(x, pos)
""")

IN_PLACE = textwrap.dedent("""\
    import torch
    from torch import nn


    def apply_rope(t, cos, sin):
        x1, x2 = t.to(torch.float32).chunk(2, dim=-1)
        rotated = torch.cat((-x2, x1), dim=-1)
        return (t * cos + rotated * sin).type_as(t)


    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.to_qkv = nn.Linear(dim, dim * 3)

        def forward(self, x, cos, sin):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q = apply_rope(q, cos, sin)
            k = apply_rope(k, cos, sin)
            return (q @ k.transpose(-1, -2)).softmax(-1) @ v
""")


def test_per_half_rotation_of_a_float_copy_is_rope():
    assert covered(GOLDEN_GATE, "x_out = x * cos_theta - y * sin_theta", "ADP014")


def test_in_place_rotation_of_a_float32_copy_is_rope():
    assert covered(IN_PLACE, "rotated = torch.cat((-x2, x1), dim=-1)", "ADP014")


def test_halves_of_a_copy_that_changes_the_values_are_no_rope():
    code = GOLDEN_GATE.replace("x, y = input.float().chunk(2, dim=-1)", "x, y = input.abs().chunk(2, dim=-1)")
    assert not findings(code, "ADP014")


def test_halves_of_two_tensors_are_no_rotation_of_one():
    code = IN_PLACE.replace(
        "x1, x2 = t.to(torch.float32).chunk(2, dim=-1)",
        "x1, _ = t.float().chunk(2, dim=-1)\n    _, x2 = cos.float().chunk(2, dim=-1)")
    assert not findings(code, "ADP014")


def test_a_float_copy_whose_halves_are_not_combined_as_a_rotation_is_no_rope():
    # both halves times cos: a scaling of the copy, not a rotation
    code = GOLDEN_GATE.replace("x_out = x * cos_theta - y * sin_theta", "x_out = x * cos_theta - y * cos_theta")
    assert not findings(code, "ADP014")


CALL_OVERRIDE = textwrap.dedent("""\
    import torch
    from torch import nn


    class CallAttention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.query = nn.Linear(dim, dim)
            self.value = nn.Linear(dim, dim)
            self.to_out = nn.Linear(dim, dim)

        def __call__(self, query, context):
            q = self.query(query)
            v = self.value(context)
            scores = torch.bmm(q, context.transpose(1, 2)) / q.shape[-1] ** 0.5
            scores = torch.softmax(scores, dim=-1)
            return self.to_out(torch.bmm(scores, v))
""")


def _verdicts(tmp_path, capsys, code):
    import json

    from adopter.cli import main

    path = tmp_path / "call_attention.py"
    path.write_text(code)
    main(["verify", str(path), "--no-config", "--no-benchmark", "--output-format", "json", "--select", "ADP010"])
    rows = json.loads(capsys.readouterr().out)["results"]
    return [(r["class"], r["verdict"]) for r in rows if not r["combined"]]


def test_attention_in_a_call_override_is_verified(tmp_path, capsys):
    assert _verdicts(tmp_path, capsys, CALL_OVERRIDE) == [("CallAttention", "pass")]


def test_own_call_is_read_only_when_the_class_has_no_forward():
    import torch
    from torch import nn

    from adopter.verify.build import _own_call

    class Plain(nn.Module):
        def forward(self, x):
            return x

    class Both(nn.Module):
        def forward(self, x):
            return x

        def __call__(self, x, y):
            return x + y

    class CallOnly(nn.Module):
        def __call__(self, x, y):
            return x + y

    assert _own_call(Plain()) is None
    assert _own_call(Both()) is None  # its forward says what it takes
    assert _own_call(CallOnly()) is not None
    assert _own_call(CallOnly())(torch.ones(1), torch.ones(1)).item() == 2.0
