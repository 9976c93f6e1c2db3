"""Forms found while checking the blind batch research37 (language- and sequence-model
reimplementations: an mlx-style GPT/Phi/Gemma/RoFormer collection, a LLaMA with torchtune
layers, a backend-switchable attention, JoeyNMT, Informer/Crossformer/Transformer-XL time-series
models, a from-scratch LLM lab).  The fixtures are ours.

- ``B, T, C = logits.shape`` then ``logits.view(B * T, C)`` into the cross-entropy: C is the
  logits' last size and B * T every row, so the view is ``logits.view(-1, logits.size(-1))``
  (ADP015, llmcollection's LLAMA).  Near-misses: the sizes of another tensor, and a last name
  that is not the last axis.
- Rotate-half written per half over the first ``self.dims`` features, mlx's RoPE ported to
  torch: ``x1 = x[..., : self.dims // 2]``, ``x2 = x[..., self.dims // 2 : self.dims]``,
  ``torch.concatenate([x1 * c - x2 * s, x1 * s + x2 * c], axis=-1)`` (ADP014, ohara's Phi and
  rotary module).  Two spellings were unread: ``axis=`` (numpy's name of ``dim``, which
  ``torch.cat``/``concatenate`` take) and a second half bounded above by the width.
  Near-misses: a second half bounded by another size, and a concatenation on axis 1.  The
  rotation is chosen by ``rope = self._compute_traditional_rope if self.traditional else
  self._compute_rope`` and called through the name: now read as an ``if`` calling each method,
  as a choice between two module functions already was.  Near-miss: a choice between two
  interleaved rotations.
- ``import torch.optim as optim`` inside ``with torch.device("cuda"):`` inside ``if __name__ ==
  "__main__":``: a with block opens no scope, so the import binds the module name (ADP012,
  ohara's MoE benchmark).  Near-miss: a with block importing another package's ``optim``.
- Informer's ``FullAttention``: ``scale = self.scale or 1. / sqrt(E)`` with ``from math import
  sqrt`` (ADP010: found, now fixed; the scale was read as a possible tensor: a module
  attribute, read as a number wherever it is used alone, ``or`` a number is a number, and
  ``sqrt`` imported from math is ``math.sqrt``; a bare parameter in such an ``or`` may still
  be a one-element tensor, folded into q as before, test_sdpa_layouts).  Near-miss: a
  same-file ``sqrt`` (which may return a tensor) keeps the site unfixed.
- JoeyNMT's fill ``torch.where(mask > 0, scores, scores.new_full([1], -np.inf))``: a tensor of
  -inf alone, whatever its shape, so the mask of the fused call (ADP010, fixed; before, the
  fill value read the scores).  Near-miss: ``new_full([1], 0.0)`` is no masking value.
"""

from __future__ import annotations

from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

# --------------------------------------------------------------------------- ADP015: B, T, C unpacked

LM = """\
import torch
import torch.nn as nn
from torch.nn import functional as F


class LM(nn.Module):
    def __init__(self, d_model, embedding_table):
        super().__init__()
        self.tok = embedding_table
        self.max_token_value = self.tok.weight.shape[0] - 1
        self.head = nn.Linear(in_features=d_model, out_features=self.max_token_value)

    def forward(self, idx, targets=None):
        x = self.tok(idx)
        logits = self.head(x)
        if targets is not None:
            UNPACK
            flat = logits.view(VIEW)
            loss = F.cross_entropy(input=flat, target=targets.view(-1))
        else:
            loss = None
        return logits, loss
"""


def lm(unpack="B, T, C = logits.shape", view="B * T, C"):
    return LM.replace("UNPACK", unpack).replace("VIEW", view)


def test_logits_viewed_to_their_unpacked_rows_are_the_heads_loss():
    assert finding_at(lm(), "ADP015", "logits = self.head(x)") is not None
    assert finding_at(lm("B, T, C = logits.size()"), "ADP015", "logits = self.head(x)") is not None
    assert finding_at(lm(view="-1, C"), "ADP015", "logits = self.head(x)") is not None


def test_sizes_of_another_tensor_are_not_the_logits_rows():
    assert found(lm("B, T, C = x.shape"), "ADP015") == []


def test_a_last_name_that_is_not_the_last_axis_is_not_the_vocabulary():
    assert found(lm("B, C, T = logits.shape"), "ADP015") == []


# --------------------------------------------------------------------------- ADP014: mlx-style halves

ROPE = """\
import torch
import torch.nn as nn


class RoPE(nn.Module):
    def __init__(self, dims: int, other: int = 8):
        super().__init__()
        self.dims = dims
        self.other = other

    def _compute_rope(self, costheta, sintheta, x):
        x1 = x[..., : FIRST]
        x2 = x[..., SECOND]
        rx1 = x1 * costheta - x2 * sintheta
        rx2 = x1 * sintheta + x2 * costheta
        if self.dims < x.shape[-1]:
            rx = torch.concatenate([rx1, rx2, x[..., self.dims :]], axis=-1)
        else:
            rx = torch.concatenate([rx1, rx2], AXIS)
        return rx

    def forward(self, x, cos, sin):
        return self._compute_rope(cos, sin, x)
"""


def rope(first="self.dims // 2", second="self.dims // 2 : self.dims", axis="axis=-1"):
    return ROPE.replace("FIRST", first).replace("SECOND", second).replace("AXIS", axis)


def test_halves_of_the_first_dims_features_concatenated_on_axis_minus_one_are_rope():
    assert finding_at(rope(), "ADP014", "rx1 = x1 * costheta") is not None


def test_halves_of_the_whole_last_axis_concatenated_with_axis_are_rope():
    code = rope("x.shape[-1] // 2", "x.shape[-1] // 2 :")
    assert finding_at(code, "ADP014", "rx1 = x1 * costheta") is not None


def test_a_second_half_bounded_by_another_size_is_not_rope():
    assert found(rope(second="self.dims // 2 : self.other"), "ADP014") == []


def test_a_concatenation_on_axis_one_is_not_rope():
    assert found(rope("x.shape[-1] // 2", "x.shape[-1] // 2 :", axis="axis=1"), "ADP014") == []


CHOSEN = """\
import torch
import torch.nn as nn


class RoPE(nn.Module):
    def __init__(self, dims: int, traditional: bool = False):
        super().__init__()
        self.dims = dims
        self.traditional = traditional

    def _compute_rope(self, costheta, sintheta, x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2 :]
        rx1 = x1 * costheta - x2 * sintheta
        rx2 = x1 * sintheta + x2 * costheta
        return torch.cat([rx1, rx2], dim=-1)

    def _compute_traditional_rope(self, costheta, sintheta, x):
        x1 = x[..., ::2]
        x2 = x[..., 1::2]
        rx1 = x1 * costheta - x2 * sintheta
        rx2 = x1 * sintheta + x2 * costheta
        return torch.cat([rx1[..., None], rx2[..., None]], dim=-1)

    def forward(self, x, cos, sin):
        rope = self._compute_traditional_rope if self.traditional else OTHER
        return rope(cos, sin, x)
"""


def test_a_rotation_chosen_between_two_methods_is_read_in_each():
    code = CHOSEN.replace("OTHER", "self._compute_rope")
    assert finding_at(code, "ADP014", "rx1 = x1 * costheta - x2 * sintheta") is not None
    assert len(found(code, "ADP014")) == 1  # the interleaved one is no rotate-half


def test_a_choice_between_two_interleaved_rotations_is_not_rope():
    code = CHOSEN.replace("OTHER", "self._compute_other").replace(
        "    def forward", "    def _compute_other(self, c, s, x):\n        return self._compute_traditional_rope(c, s, x)\n\n"
        "    def forward")
    assert found(code, "ADP014") == []


# --------------------------------------------------------------------------- ADP012: import in a with block

SCRIPT = """\
import torch
import torch.nn as nn

if __name__ == "__main__":
    with torch.device("cpu"):
        import MODULE as optim
        model = nn.Linear(3, 3)
        optimizer = optim.AdamW(model.parameters())
"""


def test_an_import_in_a_module_level_with_block_binds_the_optimizers_module():
    assert finding_at(SCRIPT.replace("MODULE", "torch.optim"), "ADP012", "optim.AdamW") is not None


def test_a_with_block_importing_another_packages_optim_is_not_torchs():
    assert found(SCRIPT.replace("MODULE", "mylib.optim"), "ADP012") == []


# --------------------------------------------------------------------------- ADP010: Informer's scale

FULL = """\
import torch
import torch.nn as nn
from math import sqrt
SQRT_DEF

class FullAttention(nn.Module):
    def __init__(self, mask_flag=False, scale=None, attention_dropout=0.0):
        super().__init__()
        self.scale = scale
        self.mask_flag = mask_flag
        self.dropout = nn.Dropout(attention_dropout)

    def forward(self, queries, keys, values, attn_mask=None):
        B, L, H, E = queries.shape
        scale = self.scale or 1. / sqrt(E)
        scores = torch.einsum("blhe,bshe->bhls", queries, keys)
        if self.mask_flag:
            scores.masked_fill_(attn_mask, -float("inf"))
        A = self.dropout(torch.softmax(scale * scores, dim=-1))
        V = torch.einsum("bhls,bshd->blhd", A, values)
        return V.contiguous()
"""


def test_a_scale_of_self_scale_or_one_over_sqrt_is_a_number_and_fixed():
    import torch

    fixed = fix_text(FULL.replace("SQRT_DEF", ""), "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    for kwargs in ({}, {"scale": 0.3}, {"mask_flag": True}):
        a, b = float64_pair(FULL.replace("SQRT_DEF", ""), fixed, "FullAttention", **kwargs)
        q, k, v = (torch.randn(2, 5, 3, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
        mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1) if kwargs.get("mask_flag") else None
        out_a, out_b = a(q, k, v, mask), b(q, k, v, mask)
        torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-10)
        grads_a = torch.autograd.grad(out_a.sum(), (q, k, v))
        grads_b = torch.autograd.grad(out_b.sum(), (q, k, v))
        for ga, gb in zip(grads_a, grads_b):
            torch.testing.assert_close(gb, ga, rtol=0, atol=1e-10)


def test_a_same_file_sqrt_may_be_a_tensor_and_stays_unfixed():
    code = FULL.replace("from math import sqrt\n", "").replace(
        "SQRT_DEF", "\n\ndef sqrt(x):\n    return torch.sqrt(torch.as_tensor(x)).expand(4)\n")
    assert finding_at(code, "ADP010", "torch.softmax") is not None
    assert "scaled_dot_product_attention(" not in fix_text(code, "model.py", rules("ADP010")).text


# --------------------------------------------------------------------------- ADP010: new_full fill

LUONG = """\
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Luong(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.key_layer = nn.Linear(size, size, bias=False)

    def forward(self, query, keys, values, mask):
        proj_keys = self.key_layer(keys)
        scores = query @ proj_keys.transpose(1, 2)
        scores = torch.where(mask > 0, scores, scores.new_full([1], FILL))
        alphas = F.softmax(scores, dim=-1)
        return alphas @ values
"""


def test_a_fill_of_new_full_minus_inf_is_the_attentions_mask():
    import torch

    code = LUONG.replace("FILL", "-np.inf")
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "Luong", size=4)
    q = torch.randn(2, 1, 4, dtype=torch.float64)
    k = torch.randn(2, 6, 4, dtype=torch.float64)
    v = torch.randn(2, 6, 3, dtype=torch.float64)
    mask = torch.ones(2, 1, 6, dtype=torch.bool)
    mask[0, :, 4:] = False
    torch.testing.assert_close(b(q, k, v, mask), a(q, k, v, mask), rtol=0, atol=1e-10)


def test_a_fill_of_new_full_zero_is_no_mask():
    code = LUONG.replace("FILL", "0.0")
    assert "scaled_dot_product_attention(" not in fix_text(code, "model.py", rules("ADP010")).text
