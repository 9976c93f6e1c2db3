"""Forms found while checking the blind batch research76 (vision research code on PyPI: a
V-JEPA encoder, SAM-Med3D, medimm, beast, streamer, sssegmentation).  The fixtures are ours.

- ADP010: a hand-written attention helper that divides the scores by
  ``torch.sqrt(torch.tensor(k.size(-1), dtype=torch.float32))`` -- a 0-d tensor made from a
  Python number in float32 named outright, not in the scores' own dtype -- was declined ("may
  be a tensor that differs between keys").  A 0-d floating tensor promotes no floating scores
  and a full-precision one holds the number itself, so it is folded into the query like the
  0-d tensors of the scores' own dtype; a float16 copy stays declined, and so does a scale
  that differs between keys.
- verify: a constructor argument the class calls as a layer only under ``if self.<it> is not
  None:`` (sssegmentation's SelfAttentionBlock ``query_downsample``), with no class of the file
  that fits it, stopped the check ("cannot infer argument ... (a class it calls)"): the class's
  own code handles None, so None is built, as for the other None-guarded arguments.
"""

from __future__ import annotations

import textwrap

import torch

from corpus_forms import rules

from adopter.synth import fix_text

HELPER = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F


    def attend(q, k, v, dropout_p=0.0):
        scores = torch.matmul(q, k.transpose(-2, -1))
        scores = scores / torch.sqrt(torch.tensor(k.size(-1), dtype=torch.float32))
        probs = F.softmax(scores, dim=-1)
        probs = F.dropout(probs, p=dropout_p)
        return torch.matmul(probs, v)
""")

SCALE = "torch.sqrt(torch.tensor(k.size(-1), dtype=torch.float32))"


def _fix(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _variant(new_scale: str) -> str:
    assert SCALE in HELPER
    return HELPER.replace(SCALE, new_scale)


def _outputs(source: str, dtype=torch.float64):
    namespace: dict = {}
    exec(compile(source, "<fixture>", "exec"), namespace)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=dtype) for _ in range(3))
    return namespace["attend"](q, k, v)


def test_scale_of_a_float32_zero_d_tensor_fixed_exactly():
    fixed = _fix(HELPER)
    assert fixed != HELPER and "scaled_dot_product_attention" in fixed
    # float64 inputs: the scale's float32 rounding is the same number on both paths
    assert torch.allclose(_outputs(HELPER), _outputs(fixed), atol=1e-12)
    # float32 inputs: one fused reduction of 8 products instead of two steps
    assert torch.allclose(_outputs(HELPER, torch.float32), _outputs(fixed, torch.float32), atol=1e-5)


def test_scale_of_a_float64_alias_fixed():
    source = _variant("torch.sqrt(torch.tensor(k.size(-1), dtype=torch.double))")
    fixed = _fix(source)
    assert "scaled_dot_product_attention" in fixed
    assert torch.allclose(_outputs(source), _outputs(fixed), atol=1e-12)


def test_scale_of_a_float16_zero_d_tensor_still_declined():
    source = _variant("torch.sqrt(torch.tensor(k.size(-1), dtype=torch.float16))")
    assert _fix(source) == source


def test_scale_that_differs_between_keys_declined():
    # a look-alike: one divisor per key (the keys' norms), not a number
    source = _variant("torch.sqrt(k.pow(2).sum(-1, keepdim=True)).transpose(-2, -1)")
    assert _fix(source) == source


# verify: a layer argument called only under its ``is not None`` test (the attention is ours)
GUARDED_LAYER = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class PoolingAttention(nn.Module):
        def __init__(self, channels, key_downsample, matmul_norm):
            super().__init__()
            self.key_downsample = key_downsample
            self.matmul_norm = matmul_norm
            self.channels = channels
            self.query = nn.Conv2d(channels, channels, 1)
            self.key = nn.Conv2d(channels, channels, 1)
            self.value = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            b = x.size(0)
            query = self.query(x).reshape(b, self.channels, -1).permute(0, 2, 1)
            key = self.key(x)
            value = self.value(x)
            if self.key_downsample is not None:
                key = self.key_downsample(key)
                value = self.key_downsample(value)
            key = key.reshape(b, self.channels, -1)
            value = value.reshape(b, self.channels, -1).permute(0, 2, 1)
            sim = torch.matmul(query, key)
            if self.matmul_norm:
                sim = (self.channels ** -0.5) * sim
            sim = F.softmax(sim, dim=-1)
            out = torch.matmul(sim, value)
            return out.permute(0, 2, 1).reshape(x.shape)
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


def test_a_layer_argument_called_only_when_not_none_verifies(tmp_path):
    from adopter.verify.result import PASS

    result = _verify_one(tmp_path, GUARDED_LAYER, "PoolingAttention")
    assert result.verdict == PASS, result


def test_a_layer_argument_called_unguarded_still_needs_a_factory(tmp_path):
    from adopter.verify.result import PASS

    # the look-alike: the layer is called on every path, so None would break the module
    source = GUARDED_LAYER.replace(
        "        if self.key_downsample is not None:\n"
        "            key = self.key_downsample(key)\n"
        "            value = self.key_downsample(value)\n",
        "        key = self.key_downsample(key)\n"
        "        value = self.key_downsample(value)\n")
    assert source != GUARDED_LAYER
    result = _verify_one(tmp_path, source, "PoolingAttention")
    assert result.verdict != PASS and "key_downsample" in str(result), result
