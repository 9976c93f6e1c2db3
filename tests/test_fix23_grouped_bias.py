"""fix23 (session 22): a bias added per group of heads (tranception's ALiBi): the scores split
along the heads, each group plus the output of its own module of an ``nn.ModuleList`` (one
class of this file whose forward reads the group only for its sizes and device), put together
again with ``torch.cat`` -- which the graph reads as one add (the m2 step).  The fused path
splits a stand-in of zeros of the scores' shape instead (``0 + b`` is ``b`` exactly), so the
comprehension builds the biases and their concatenation is the mask's part; a forward hook on
any of the modules (it would see the stand-in) sends the call to the original.  Numerics:
float64, eval and train, outputs, input and parameter gradients (a fresh model per run: the
fixture caches nothing, but tranception's own modules cache their bias with its graph)."""

from __future__ import annotations

import textwrap

from corpus_forms import line_of, rules
from test_fix22_helper_declines import _same

from adopter.synth import fix_text

HEAD = textwrap.dedent("""
    import torch
    import torch.nn as nn
""")

BIAS = textwrap.dedent("""
    class DistanceBias(nn.Module):
        def __init__(self, heads):
            super().__init__()
            self.slopes = nn.Parameter(torch.linspace(0.1, 0.5, heads).view(heads, 1, 1))

        def forward(self, s):
            h, i, j = s.shape[-3:]
            dist = (torch.arange(j, device=s.device)[None, :] - torch.arange(i, device=s.device)[:, None]).abs()
            return -dist * self.slopes
""")

MIXER = textwrap.dedent("""
    class GroupedMixer(nn.Module):
        def __init__(self, dim, heads=4, groups=2, causal=False):
            super().__init__()
            self.heads, self.groups, self.causal = heads, groups, causal
            self.qkv = nn.Linear(dim, dim * 3)
            self.biases = nn.ModuleList([DistanceBias(heads // groups) for _ in range(groups)])
            self.scale = (dim // heads) ** -0.5

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            q = q * self.scale
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k)
            parts = sim.split(self.heads // self.groups, dim=1)
            parts = [bias(part) + part for bias, part in zip(self.biases, parts)]
            sim = torch.cat(parts, dim=1)
            if self.causal:
                i, j = sim.shape[-2:]
                causal_mask = torch.ones((i, j), dtype=torch.bool, device=x.device).triu(j - i + 1)
                sim = sim.masked_fill(causal_mask, -torch.finfo(sim.dtype).max)
            attn = sim.softmax(dim=-1)
            out = torch.einsum("b h i j, b h j d -> b h i d", attn, v)
            return out.transpose(1, 2).reshape(b, n, c)
""")

CODE = HEAD + BIAS + MIXER


def _fixed(code: str) -> str:
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and [f.rule for f in fixed.applied] == ["ADP010"], fixed.skipped
    return fixed.text


def _declined(code: str) -> str:
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == code, fixed.text
    (why,) = [why for _, why in fixed.skipped]
    return why


def test_grouped_bias_becomes_the_mask_built_from_a_stand_in():
    import torch

    patched = _fixed(CODE)
    fused = patched[patched.index("else:", patched.index("def forward")):]
    assert "new_zeros(()).expand(" in fused and ".split(self.heads // self.groups, dim=1)" in fused
    assert "torch.cat(parts, dim=1)" in fused.split("scaled_dot_product_attention(")[1]
    assert "for m in self.biases" in patched  # the modules' hooks send the call to the original
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    for causal in (False, True):
        _same(CODE, patched, "GroupedMixer", lambda c: c(8, causal=causal), [x])


def test_the_fused_call_runs_unless_a_module_is_hooked():
    import torch

    patched = _fixed(CODE)
    ns: dict = {}
    exec(compile(patched, "patched", "exec"), ns)  # noqa: S102 (our own fixture)
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention
    ns["scaled_dot_product_attention"] = lambda *a, **k: calls.append(1) or real(*a, **k)
    model = ns["GroupedMixer"](8, causal=True).double().eval()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    model(x)
    seen = []
    model.biases[1].register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    model(x)
    assert len(calls) == 1 and seen == [torch.Size([2, 2, 5, 5])]  # the hook saw the real scores' group


def test_a_module_reading_the_groups_values_stays_declined():
    code = CODE.replace("return -dist * self.slopes", "return -dist * self.slopes + s.mean()")
    why = _declined(code)
    assert why.startswith(f"the statement at line {line_of(code, 'parts = sim.split')} uses a value of the attention: "
                          "it reads the scores (`sim`)")


def test_groups_read_after_the_concatenation_stay_declined():
    # the fused path's `parts` hold the biases, not the scores' groups
    code = CODE.replace("return out.transpose(1, 2).reshape(b, n, c)",
                        "return out.transpose(1, 2).reshape(b, n, c), parts[0]")
    why = _declined(code)
    assert "uses a value of the attention" in why


def test_modules_of_two_classes_stay_declined():
    code = CODE.replace(
        "self.biases = nn.ModuleList([DistanceBias(heads // groups) for _ in range(groups)])",
        "self.biases = nn.ModuleList([DistanceBias(heads // groups), OtherBias(heads // groups)])",
    ) + BIAS.replace("DistanceBias", "OtherBias")
    why = _declined(code)
    assert "uses a value of the attention" in why
