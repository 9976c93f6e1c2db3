"""Research attention forms read in session 29 (rafix38): code shapes around the attention.
The fixtures are ours.

- ADP010: a scale step under an ``if`` whose body first names the divisor (pytorch-forecasting's
  temporal-fusion attention: ``if self.scale: dimension = torch.as_tensor(k.size(-1),
  dtype=attn.dtype, device=attn.device).sqrt(); attn = attn / dimension``).  The name is read by
  the scale step alone (nowhere else in the function), its value reads only the scores' dtype
  and device (q's, before any upcast): the fused path computes it under the same test, and the
  0-d tensor of q's dtype is folded into the query only when the test holds
  (``q / (dimension if self.scale else 1.0)``, ``scale=1.0``).  The name read after the if, a
  body that does more, and a divisor of another dtype stay declined.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

GATED = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class GatedScaleAttention(nn.Module):
        def __init__(self, dropout=None, scale=True):
            super().__init__()
            self.dropout = nn.Dropout(p=dropout) if dropout is not None else None
            self.softmax = nn.Softmax(dim=2)
            self.scale = scale

        def forward(self, q, k, v, mask=None):
            attn = torch.bmm(q, k.permute(0, 2, 1))

            if self.scale:
                dimension = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()
                attn = attn / dimension

            if mask is not None:
                attn = attn.masked_fill(mask, float("-inf"))
            attn = self.softmax(attn)

            if self.dropout is not None:
                attn = self.dropout(attn)
            output = torch.bmm(attn, v)
            return output
""")


def _fix(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _variant(old: str, new: str) -> str:
    assert old in GATED
    return GATED.replace(old, new)


def _build(source: str):
    namespace: dict = {}
    exec(compile(source, "<fixture>", "exec"), namespace)  # noqa: S102 (our own fixture)
    return namespace["GatedScaleAttention"]


def _check_exact(source: str, must_fix: bool = True) -> str:
    fixed = _fix(source)
    if not must_fix and fixed == source:
        return fixed
    assert fixed != source and "scaled_dot_product_attention" in fixed
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 5, 8, dtype=torch.float64) for _ in range(3))
    mask = torch.zeros(3, 5, 5, dtype=torch.bool)
    mask[:, :, 3:] = True
    for scale in (True, False):
        original, patched = _build(source)(scale=scale).eval(), _build(fixed)(scale=scale).eval()
        for given in (None, mask):
            with torch.no_grad():
                assert torch.allclose(original(q, k, v, given), patched(q, k, v, given), atol=1e-12)
    return fixed


def test_scale_named_inside_its_if_fixed_exactly():
    fixed = _check_exact(GATED)
    # the divisor is computed under the same test on the fused path, read off q, not the scores
    assert "dtype=q.dtype, device=q.device" in fixed and "(dimension if self.scale else 1.0)" in fixed


def test_scale_named_inside_its_if_multiplied_fixed_exactly():
    source = _variant("dimension = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()\n"
                      "            attn = attn / dimension",
                      "inverse = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).rsqrt()\n"
                      "            attn = attn * inverse")
    _check_exact(source)


def test_scale_name_read_after_the_if_declined():
    source = _variant("        return output\n", "        return output / dimension\n")
    assert _fix(source) == source


def test_scale_if_doing_more_declined():
    source = _variant("            attn = attn / dimension\n",
                      "            self.seen = dimension\n            attn = attn / dimension\n")
    assert _fix(source) == source


def test_scale_of_another_dtype_declined():
    source = _variant("dtype=attn.dtype, device=attn.device", "dtype=torch.float16, device=attn.device")
    assert _fix(source) == source


def test_scale_read_off_the_scores_values_declined():
    source = _variant("torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()",
                      "attn.detach().abs().amax()")
    assert _fix(source) == source


# ADP010: the keys' name rebound to the values between the steps (learning3d's curve aggregation:
# ``w = F.softmax(torch.bmm(logits, keys), dim=-1)``, ``keys = self.convn(keys).transpose(1, 2)``,
# ``torch.bmm(w, keys)``).  The fused path keeps the old keys under a new name before the
# rebinding statement; the rebinding changes nothing in place, so the call reads the keys the
# product read and the values the context product read.

CURVES = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class CurveAttention(nn.Module):
        def __init__(self, channels=8, mid=6):
            super().__init__()
            self.convc = nn.Conv1d(channels, mid, 1)
            self.convn = nn.Conv1d(mid, mid, 1)
            self.convl = nn.Conv1d(mid, mid, 1)

        def forward(self, x, inter, intra):
            logits = self.convc(x).transpose(1, 2).contiguous()
            x_inter = F.softmax(torch.bmm(logits, inter), dim=-1)
            x_intra = F.softmax(torch.bmm(logits, intra), dim=-1)
            inter = self.convn(inter).transpose(1, 2).contiguous()
            intra = self.convl(intra).transpose(1, 2).contiguous()
            x_inter = torch.bmm(x_inter, inter)
            x_intra = torch.bmm(x_intra, intra)
            return torch.cat((x_inter, x_intra), dim=-1)
""")


def _curves(old: str = "", new: str = "") -> str:
    assert old in CURVES
    return CURVES.replace(old, new) if old else CURVES


def _check_curves(source: str) -> str:
    fixed = _fix(source)
    assert fixed != source and "scaled_dot_product_attention" in fixed
    namespace: dict = {}
    exec(compile(source, "<fixture>", "exec"), namespace)  # noqa: S102 (our own fixture)
    patched_ns: dict = {}
    exec(compile(fixed, "<fixture>", "exec"), patched_ns)  # noqa: S102
    torch.manual_seed(0)
    original = namespace["CurveAttention"]().double()
    patched = patched_ns["CurveAttention"]().double()
    patched.load_state_dict(original.state_dict())
    x = torch.randn(2, 8, 5, dtype=torch.float64)
    inter, intra = torch.randn(2, 6, 4, dtype=torch.float64), torch.randn(2, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(original(x, inter, intra), patched(x, inter, intra), atol=1e-12)
    return fixed


def test_keys_rebound_to_the_values_fixed_exactly():
    fixed = _check_curves(CURVES)
    assert "inter_before = inter" in fixed and "intra_before = intra" in fixed
    assert fixed.count("scaled_dot_product_attention(") == 2  # both attentions


def test_keys_rebound_with_the_before_name_taken_fixed_exactly():
    source = _curves("        logits = ", "        inter_before = None\n        logits = ")
    fixed = _check_curves(source)
    assert "inter_before_ = inter" in fixed


def test_keys_also_read_as_a_bias_declined():
    # the old keys read a second time by the scores (a bias of their mean): not the call's alone
    source = _curves("torch.bmm(logits, inter), dim=-1)", "torch.bmm(logits, inter) + inter.mean(), dim=-1)")
    fixed = _fix(source)
    assert "inter_before" not in fixed


def test_keys_changed_in_place_declined():
    # the rebinding statement changes the old tensor in place: no snapshot holds the keys read
    source = _curves("inter = self.convn(inter).transpose(1, 2).contiguous()",
                     "inter = inter.mul_(2.0).transpose(1, 2).contiguous()")
    assert "inter_before" not in _fix(source)


def test_keys_augmented_in_place_declined():
    source = _curves("        inter = self.convn(inter).transpose(1, 2).contiguous()\n",
                     "        inter += 1.0\n        inter = self.convn(inter).transpose(1, 2).contiguous()\n")
    assert "inter_before" not in _fix(source)


# verify: a later input the forward hands as it is to a 2-D convolution of its own (learning3d's
# ``self.line_conv_att(curves)`` beside the points of a Conv1d).  The harness's later-input
# guesses are 3-D, which a Conv2d reads as one unbatched image of the wrong channels; that
# convolution's own input is tried after every other guess.

CURVE_BLOCK = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class CurveBlock(nn.Module):
        def __init__(self, in_channel):
            super().__init__()
            mid = in_channel // 2
            self.conva = nn.Conv1d(in_channel, mid, 1)
            self.convc = nn.Conv1d(in_channel, mid, 1)
            self.convn = nn.Conv1d(mid, mid, 1)
            self.line_conv_att = nn.Conv2d(in_channel, 1, 1)

        def forward(self, x, curves):
            att = self.line_conv_att(curves)
            inter = torch.sum(curves * F.softmax(att, dim=-1), dim=-1)
            inter = self.conva(inter)
            logits = self.convc(x).transpose(1, 2).contiguous()
            weights = F.softmax(torch.bmm(logits, inter), dim=-1)
            inter = self.convn(inter).transpose(1, 2).contiguous()
            return torch.bmm(weights, inter)
""")


def _verify_one(tmp_path, text, cls):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for

    path = tmp_path / "model.py"
    path.write_text(text)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    return {r.class_name: r for r in results if not r.combined}[cls]


def test_a_later_input_of_a_conv2d_verifies(tmp_path):
    from adopter.verify.result import PASS

    result = _verify_one(tmp_path, CURVE_BLOCK, "CurveBlock")
    assert result.verdict == PASS, result


def test_late_guesses_come_after_every_earlier_try(tmp_path, monkeypatch):
    # a module an earlier guess fits is called first with the inputs it was before: the late
    # guess (the Conv2d's own input) comes after every other try
    import importlib

    from adopter.verify.inputs import MAX_LATE_TRIES, input_options
    from adopter.verify.sizes import VERIFY

    (tmp_path / "rafix38_curve_block.py").write_text(CURVE_BLOCK)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("rafix38_curve_block")
    calls = list(input_options(module.CurveBlock(8), {}, VERIFY, {}))
    four = [i for i, call in enumerate(calls)
            if len(call.args) > 1 and isinstance(call.args[1], torch.Tensor) and call.args[1].dim() == 4]
    assert four and min(four) > 0 and min(four) >= len(calls) - MAX_LATE_TRIES


# ADP010: q's name rebound to the scores by the product that reads it (linformer's ``Q =
# torch.matmul(Q, K)``, then ``P = Q / torch.sqrt(torch.tensor(d).type(Q.type())).to(Q.device)``).
# Only the steps rebind it, so on the fused path (which runs none of them) it still holds q up to
# the call; the scale reads the scores' type and device only, q's.

REBOUND = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class RebindingHead(nn.Module):
        def __init__(self, dim=8, dropout=0.0):
            super().__init__()
            self.dim = dim
            self.dropout = nn.Dropout(dropout)

        def forward(self, Q, K, V):
            K = K.transpose(1, 2)
            Q = torch.matmul(Q, K)
            P_bar = Q / torch.sqrt(torch.tensor(self.dim).type(Q.type())).to(Q.device)
            P_bar = P_bar.softmax(dim=-1)
            P_bar = self.dropout(P_bar)
            out = torch.matmul(P_bar, V)
            return out
""")


def _rebound(old: str = "", new: str = "") -> str:
    assert old in REBOUND
    return REBOUND.replace(old, new) if old else REBOUND


def _check_rebound(source: str, must_fix: bool = True) -> str:
    fixed = _fix(source)
    if not must_fix and fixed == source:
        return fixed
    assert fixed != source and "scaled_dot_product_attention" in fixed
    original_ns: dict = {}
    patched_ns: dict = {}
    exec(compile(source, "<fixture>", "exec"), original_ns)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "<fixture>", "exec"), patched_ns)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 5, 8, dtype=torch.float64) for _ in range(3))
    original, patched = original_ns["RebindingHead"]().eval(), patched_ns["RebindingHead"]().eval()
    with torch.no_grad():
        a, b = original(q, k, v), patched(q, k, v)
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        assert torch.allclose(x, y, atol=1e-12)
    return fixed


def test_query_name_rebound_to_the_scores_fixed_exactly():
    fixed = _check_rebound(REBOUND)
    # the call reads Q (q on the fused path) and its type and device for the scale
    assert "Q / torch.sqrt(torch.tensor(self.dim).type(Q.type())).to(Q.device)" in fixed.split("else:")[-1]


def test_query_name_rebound_read_by_dtype_fixed_exactly():
    _check_rebound(_rebound("torch.tensor(self.dim).type(Q.type())).to(Q.device)",
                            "torch.tensor(self.dim, device=Q.device)).to(Q.dtype)"))


def test_query_name_read_after_the_attention_kept_exact():
    # the scores read after the region under the rebound name: never q in their place
    _check_rebound(_rebound("        return out\n", "        return out, Q\n"), must_fix=False)


def test_query_name_read_for_its_values_declined():
    source = _rebound("torch.sqrt(torch.tensor(self.dim).type(Q.type())).to(Q.device)", "Q.detach().abs().amax()")
    assert _fix(source) == source


def test_query_name_rebound_by_another_statement_declined():
    # a statement that is no step rebinds it between the steps: q's meaning would change
    source = _rebound("        P_bar = P_bar.softmax(dim=-1)\n",
                      "        Q = Q * 0.5\n        P_bar = P_bar.softmax(dim=-1)\n")
    assert "scaled_dot_product_attention" not in _fix(source)
