"""Forms found while checking the blind batch research76 (vision research code on PyPI: a
V-JEPA encoder, SAM-Med3D, medimm, beast, streamer, sssegmentation).  The fixtures are ours.

- ADP010: a hand-written attention helper that divides the scores by
  ``torch.sqrt(torch.tensor(k.size(-1), dtype=torch.float32))`` -- a 0-d tensor made from a
  Python number in float32 named outright, not in the scores' own dtype -- was declined ("may
  be a tensor that differs between keys").  A 0-d floating tensor promotes no floating scores
  and a full-precision one holds the number itself, so it is folded into the query like the
  0-d tensors of the scores' own dtype; a float16 copy stays declined, and so does a scale
  that differs between keys.
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
