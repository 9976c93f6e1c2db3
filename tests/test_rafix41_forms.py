"""Research attention forms read in session 30 (rafix41): code shapes around the attention.
The fixtures are ours.

- ADP010: two cross-attentions written interleaved (slp's symmetric attention: both scores,
  then ``if mask is not None:`` adding the mask to both, both softmaxes and dropouts, both
  context products).  The other attention's statements inside the mask step's ``if`` are
  plain assignments the fused path keeps there, in their place: a later kept statement
  reassigning what they read (the other attention's ``s_b = F.softmax(s_b, dim=-1)``)
  changes nothing they read, so it is no "reassignment after the attention read it".  What
  the mask step itself or the if's test reads stays checked.  Only the first attention is
  fused: the second's statements then run in both branches of the guard's if, and its
  context product after it, so the next round declines it.
- ADP010: the bias added to the scores, when the context product falls back to a cast of the
  probabilities (yolov7's ``try: x = attn @ v`` / ``except: x = attn.half() @ v``), computed by
  a module between the steps (cnstd's Swin-v2 ``relative_position_bias`` from
  ``self.cpb_mlp(...)``): the guard needs its dtype before the attention.  The statements
  computing it move above the guard's ``if`` (on both paths) where they read nothing of the
  attention and the statements they move above change nothing in place and call no module.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import load_fixture as _load
from corpus_forms import rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

PAIR = textwrap.dedent("""\
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class CrossPair(nn.Module):
        def __init__(self, dim=8, p=0.1):
            super().__init__()
            self.dk = dim
            self.qa = nn.Linear(dim, dim, bias=False)
            self.ka = nn.Linear(dim, dim, bias=False)
            self.va = nn.Linear(dim, dim, bias=False)
            self.qb = nn.Linear(dim, dim, bias=False)
            self.kb = nn.Linear(dim, dim, bias=False)
            self.vb = nn.Linear(dim, dim, bias=False)
            self.drop = nn.Dropout(p)

        def forward(self, a, b, mask=None):
            k_a = self.ka(a)
            q_b = self.qb(b)
            v_a = self.va(a)
            k_b = self.kb(b)
            q_a = self.qa(a)
            v_b = self.vb(b)

            s_a = torch.bmm(q_b, k_a.transpose(1, 2)) / math.sqrt(self.dk)
            s_b = torch.bmm(q_a, k_b.transpose(1, 2)) / math.sqrt(self.dk)

            if mask is not None:
                s_a = s_a + ((1 - mask.unsqueeze(1)) * -1e5)
                s_b = s_b + ((1 - mask.unsqueeze(1)) * -1e5)
            s_a = F.softmax(s_a, dim=-1)
            s_a = self.drop(s_a)
            s_b = F.softmax(s_b, dim=-1)
            s_b = self.drop(s_b)

            out_a = torch.bmm(s_a, v_a)
            out_b = torch.bmm(s_b, v_b)
            return out_a, out_b
""")


def _fix(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _pair(old: str, new: str) -> str:
    assert old in PAIR
    return PAIR.replace(old, new)


def test_interleaved_attentions_first_fixed_exactly():
    fixed = _fix(PAIR)
    # (both since sites97: the second attention's statements run after the first's guarded
    # region, and the next round fuses it -- tests/synth/test_sdpa_interleaved_tail.py)
    assert fixed.count("scaled_dot_product_attention(") == 2
    torch.manual_seed(0)
    original = _load(PAIR, "CrossPair")().double().eval()
    patched = _load(fixed, "CrossPair")().double().eval()
    patched.load_state_dict(original.state_dict())
    a, b = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.float64)
    mask[0, 3:] = 0.0
    for given in (None, mask):
        with torch.no_grad():
            for x, y in zip(original(a, b, given), patched(a, b, given)):
                assert torch.allclose(x, y, atol=1e-9)


def test_interleaved_mask_step_operand_reassigned_declined():
    # the first attention's mask step reads `bias`, which a kept statement then reassigns: the
    # fused call, after it, would read the new value
    source = _pair("        if mask is not None:\n"
                   "            s_a = s_a + ((1 - mask.unsqueeze(1)) * -1e5)\n"
                   "            s_b = s_b + ((1 - mask.unsqueeze(1)) * -1e5)\n",
                   "        bias = (1 - mask.unsqueeze(1)) * -1e5 if mask is not None else None\n"
                   "        if mask is not None:\n"
                   "            s_a = s_a + bias\n"
                   "            s_b = s_b + bias\n")
    source = source.replace("        s_a = self.drop(s_a)\n", "        s_a = self.drop(s_a)\n        bias = None\n")
    assert _fix(source) == source


def test_interleaved_if_test_reassigned_declined():
    # the if's test (the fused call's mask condition) reads `mask`, which a kept statement then
    # reassigns
    source = _pair("        s_a = self.drop(s_a)\n", "        s_a = self.drop(s_a)\n        mask = None\n")
    assert _fix(source) == source


WINDOW = textwrap.dedent("""\
    import math

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class CosineWindowAttention(nn.Module):
        def __init__(self, dim=16, heads=2, window=3):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))
            self.cpb_mlp = nn.Sequential(nn.Linear(2, 32), nn.ReLU(inplace=True), nn.Linear(32, heads, bias=False))
            self.register_buffer("coords", torch.randn(window * window, window * window, 2))
            self.attn_drop = nn.Dropout(0.0)
            self.softmax = nn.Softmax(dim=-1)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x, mask=None):
            B_, N, C = x.shape
            qkv = self.qkv(x).reshape(B_, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]

            attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            logit_scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
            attn = attn * logit_scale

            bias_table = self.cpb_mlp(self.coords)
            bias = bias_table.permute(2, 0, 1).contiguous()
            bias = 16 * torch.sigmoid(bias)
            attn = attn + bias.unsqueeze(0)

            if mask is not None:
                nW = mask.shape[0]
                attn = attn.view(B_ // nW, nW, self.heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.heads, N, N)
                attn = self.softmax(attn)
            else:
                attn = self.softmax(attn)

            attn = self.attn_drop(attn)

            try:
                x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
            except RuntimeError:
                x = (attn.half() @ v).transpose(1, 2).reshape(B_, N, C)
            return self.proj(x)
""")


def _window(old: str, new: str) -> str:
    assert old in WINDOW
    return WINDOW.replace(old, new)


def test_fallback_bias_from_a_module_hoisted_and_fixed_exactly():
    fixed = _fix(WINDOW)
    assert fixed.count("scaled_dot_product_attention(") == 1
    # computed once, above the guard, which reads its dtype
    assert fixed.count("bias = 16 * torch.sigmoid(bias)") == 1
    assert fixed.index("bias = 16 * torch.sigmoid(bias)") < fixed.index("        if (")
    assert 'getattr(bias, "dtype"' in fixed
    torch.manual_seed(0)
    original = _load(WINDOW, "CosineWindowAttention")().double().eval()
    patched = _load(fixed, "CosineWindowAttention")().double().eval()
    patched.load_state_dict(original.state_dict())
    x = torch.randn(4, 9, 16, dtype=torch.float64)
    mask = torch.zeros(2, 9, 9, dtype=torch.float64)
    mask[1, :, 5:] = -100.0
    for given in (None, mask):
        with torch.no_grad():
            assert torch.allclose(original(x, given), patched(x, given), atol=1e-9)


def test_fallback_bias_assigned_again_after_the_add_declined():
    # (the fused call would read the new value: declined before any move is tried)
    source = _window("        attn = attn + bias.unsqueeze(0)\n",
                     "        attn = attn + bias.unsqueeze(0)\n        bias = None\n")
    assert "scaled_dot_product_attention(" not in _fix(source)


def test_fallback_bias_moved_above_a_module_call_declined():
    # a statement before it calls a module (hooks run in order): the bias module may not move above
    source = _window("        attn = attn * logit_scale\n", "        attn = attn * logit_scale\n        shifted = self.proj(v)\n")
    assert "scaled_dot_product_attention(" not in _fix(source)


def test_fallback_bias_read_before_its_statements_declined():
    # a kept statement before the bias's statements reads the name: moving them would change it
    source = _window("        attn = attn * logit_scale\n",
                     "        attn = attn * logit_scale\n        bias = torch.zeros(())\n        seen = bias\n")
    assert "scaled_dot_product_attention(" not in _fix(source)


def test_fallback_bias_reading_the_scores_declined():
    source = _window("bias = 16 * torch.sigmoid(bias)", "bias = 16 * torch.sigmoid(bias) + attn.mean()")
    assert "scaled_dot_product_attention(" not in _fix(source)


HELPER = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    def soft_drop(x, p, training=True, bias=None, inplace=True):
        x = x.contiguous()
        if not inplace:
            x = x.clone()
        if bias is not None:
            x += bias
        return F.dropout(F.softmax(x, dim=-1), p=p, training=training)


    class HelperAttention(nn.Module):
        def __init__(self, dim=16, heads=4, p=0.0):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.p = p
            self.proj = nn.Linear(dim, dim * 3)

        def forward(self, x, bias=None, return_weights=False):
            b, n, d = x.shape
            q, k, v = self.proj(x).chunk(3, dim=-1)
            q = q.view(b, n, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, n, self.head_dim)
            k = k.view(b, n, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, n, self.head_dim)
            v = v.view(b, n, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, n, self.head_dim)
            q = q * self.head_dim ** -0.5
            scores = torch.bmm(q, k.transpose(1, 2))
            if not return_weights:
                probs = soft_drop(scores, self.p, self.training, bias=bias)
            else:
                scores += bias
                probs = soft_drop(scores, self.p, self.training, inplace=False)
            out = torch.bmm(probs, v)
            if not return_weights:
                return out
            else:
                return out, scores, probs
""")


def _helper(old: str, new: str) -> str:
    assert old in HELPER
    return HELPER.replace(old, new)


def test_helper_called_in_both_arms_fixed_through_the_plain_arm():
    fixed = _fix(HELPER)
    assert fixed.count("scaled_dot_product_attention(") == 1
    # the arm returning the weights takes the original, said once and plainly
    assert "        if (\n            return_weights\n" in fixed and "not (not" not in fixed
    torch.manual_seed(0)
    original = _load(HELPER, "HelperAttention")().double().eval()
    patched = _load(fixed, "HelperAttention")().double().eval()
    patched.load_state_dict(original.state_dict())
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    bias = torch.randn(8, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        for given in (None, bias):
            torch.testing.assert_close(patched(x, given), original(x, given), rtol=0, atol=1e-12)
        for left, right in zip(patched(x, bias, True), original(x, bias, True)):
            torch.testing.assert_close(left, right, rtol=0, atol=0)


def test_helper_called_twice_in_one_arm_declined():
    source = _helper("            probs = soft_drop(scores, self.p, self.training, bias=bias)\n",
                     "            probs = soft_drop(scores, self.p, self.training, bias=bias)\n"
                     "            probs = soft_drop(probs, self.p, self.training)\n")
    assert "scaled_dot_product_attention(" not in _fix(source)


def test_helper_weights_returned_on_every_path_declined():
    source = _helper("        if not return_weights:\n            return out\n        else:\n"
                     "            return out, scores, probs\n", "        return out, scores, probs\n")
    assert "scaled_dot_product_attention(" not in _fix(source)


def test_helper_else_read_under_a_test_changed_after_the_attention_declined():
    source = _helper("        out = torch.bmm(probs, v)\n",
                     "        out = torch.bmm(probs, v)\n        return_weights = not return_weights\n")
    assert "scaled_dot_product_attention(" not in _fix(source)
