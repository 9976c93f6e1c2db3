"""Forms found while checking the blind batch research34 (nanoGPT/GPT-2 copies and their
training scripts, a DeepSeek-style MLA and MoE, BERT and NMT reimplementations, attention
libraries, time-series transformers).  The fixtures are ours.

- Hand-written attention in the ``except`` handler of a ``try`` whose body calls
  ``F.scaled_dot_product_attention`` (``except AttributeError:`` for an old torch): the match
  runs only when the fused call failed, the kernel is already adopted -- as for the other
  branch of ``if self.fused_attn:`` (ADP010, not reported).  Near-miss: a try whose body does
  something else (a log call) still has its handler's attention reported.
- A one-tensor rotate-half RoPE helper (``(x * cos) + (rotate_half(x) * sin)``) that nothing in
  its file calls (a module of helpers the attention modules import): the rotation read by two
  alternatives of the rule (its ``rotate_half`` inlined as the canonical rotation, and called by
  name) counted as two rotations in one root, like q and k rotated each with its own tables,
  and both were dropped (ADP014).  Near-miss: two rotations in one root with their own tables
  are still not a site.
- 2017-era attention that softmaxes a matrix of the scores' rows and views it back:
  ``self.softmax(attn.view(-1, attn.size(2))).view(*attn.size())`` with ``nn.Softmax(dim=-1)``
  (also ``F.softmax(..., dim=1)``, ``.view_as(attn)``, ``attn.shape[-1]``): the softmax of the
  3-D scores over their last axis (ADP010, torch-light's BERT in EasyTransformer).
  Near-misses: rows of another axis (``attn.size(1)`` of the 3-D scores), a view back to
  another tensor's shape, and a softmax over the matrix's first axis.
- A module function of hand-written attention that the file calls only as the fallback of
  SDPA: a dispatcher's ``if backend == "sdpa": return _sdpa_attention(...)`` (a helper calling
  ``F.scaled_dot_product_attention``) then ``return _naive_attention(...)``, and a flash
  path's handler that does the same (ADP010, not reported: the kernel is already adopted, as
  for the other branch of an ``if``).  Near-misses: the same function also called directly
  by another function, and a function nothing in the file calls (an API of its own).
- A module-level attention helper whose dropout is a parameter annotated ``dropout: nn.Dropout
  | None = None`` (or ``Optional[nn.Dropout]``) and applied under ``if dropout is not None:``,
  its callers in other files: the annotation says what the call computes (ADP010, attzoo's
  ``scaled_dot_product_attention``; reported, not fixed: the layer is the callers').
  Near-misses: the same parameter unannotated (an unknown callable on the probabilities),
  annotated with another layer class, or assigned again in the function.
- NJUNMT's mask, ``mask = mask.unsqueeze(1).expand_as(scores)`` before a finite fill
  (``-1e18``), under ``if mask is not None:``: the fix computes it for the fused call from q's
  and k's shapes (``.expand(<scores' shape>)``), and its guard tests the rows every key of which
  is filled on the mask before the expansion, which repeats entries along size-1 axes (ADP010,
  fixed; before, the statement read the scores and the if was declined).  Near-miss: the same
  attention returning its probabilities on every call stays unfixed.
- torch-light's fill of the scores' storage, ``attn.data.masked_fill_(attn_mask, -inf)`` as a
  statement: past it the scores hold the filled values, as after ``attn.masked_fill_(...)``;
  it was read as a statement on another object, so the match went around the fill and the fix
  declined (ADP010: now fixed with the mask).  Near-miss: ``attn.data.masked_fill(...)`` whose
  result is dropped changes nothing, and the fix still declines.
"""

from __future__ import annotations

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

# --------------------------------------------------------------------------- ADP010: try/except

TRY_FALLBACK = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, d, h, p=0.0):
        super().__init__()
        self.h = h
        self.scale = (d // h) ** -0.5
        self.qkv = nn.Linear(d, 3 * d)
        self.drop = nn.Dropout(p)

    def forward(self, x, mask=None):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        try:
            BODY
        except AttributeError:
            s = torch.matmul(q, k.transpose(-2, -1)) * self.scale
            if mask is not None:
                s = s.masked_fill(mask == 0, float("-inf"))
            w = F.softmax(s, dim=-1)
            w = self.drop(w)
            out = torch.matmul(w, v)
        return out.transpose(1, 2).reshape(b, t, d)
"""


def test_attention_in_the_handler_of_a_try_calling_sdpa_is_not_reported():
    code = TRY_FALLBACK.replace("BODY", "out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)")
    assert found(code, "ADP010") == []


def test_attention_in_the_handler_of_a_try_doing_something_else_is_reported():
    code = TRY_FALLBACK.replace("BODY", "print(q.shape)")
    assert finding_at(code, "ADP010", "w = F.softmax(s, dim=-1)") is not None


# --------------------------------------------------------------------------- ADP014: lone helper

ROPE_HELPER = """\
import torch


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    if cos.dim() == 2:
        cos, sin = cos[None, None], sin[None, None]
    else:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return (x * cos) + (rotate_half(x) * sin)
"""


def test_a_one_tensor_rope_helper_nothing_in_its_file_calls_is_reported():
    assert finding_at(ROPE_HELPER, "ADP014", "return (x * cos) + (rotate_half(x) * sin)") is not None
    assert len(found(ROPE_HELPER, "ADP014")) == 1


def test_two_rotations_with_their_own_tables_in_one_root_are_not_a_site():
    code = ROPE_HELPER.replace(
        "def apply_rope(x, cos, sin):", "def apply_rope(x, y, cos, sin, cos2, sin2):"
    ).replace(
        "    return (x * cos) + (rotate_half(x) * sin)",
        "    a = (x * cos) + (rotate_half(x) * sin)\n    b = (y * cos2) + (rotate_half(y) * sin2)\n    return a + b",
    )
    assert found(code, "ADP014") == []


# --------------------------------------------------------------------------- ADP010: 2-D softmax

ROWS = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class ScaledDotProductAttention(nn.Module):
    def __init__(self, d_k, p):
        super().__init__()
        self.temper = d_k ** 0.5
        self.dropout = nn.Dropout(p)
        self.softmax = nn.Softmax(dim=SOFTMAX_DIM)

    def forward(self, q, k, v, attn_mask):
        attn = torch.bmm(q, k.transpose(1, 2)) / self.temper
        attn = attn.masked_fill(attn_mask, -float("inf"))
        attn = SOFTMAX
        attn = self.dropout(attn)
        return torch.bmm(attn, v)
"""


def rows(softmax, dim="-1"):
    return ROWS.replace("SOFTMAX_DIM", dim).replace("SOFTMAX", softmax)


def test_softmax_of_the_rows_viewed_back_is_the_attentions_softmax():
    for softmax, dim in (
        ("self.softmax(attn.view(-1, attn.size(2))).view(*attn.size())", "-1"),
        ("self.softmax(attn.view(-1, attn.size(2))).view(*attn.size())", "1"),
        ("F.softmax(attn.view(-1, attn.size(-1)), dim=1).view_as(attn)", "-1"),
        ("attn.reshape(-1, attn.shape[2]).softmax(dim=-1).reshape(attn.shape)", "-1"),
    ):
        code = rows(softmax, dim)
        assert finding_at(code, "ADP010", "attn = " + softmax.split("(")[0]) is not None, softmax


def test_rows_of_another_axis_are_not_the_attentions_softmax():
    assert found(rows("self.softmax(attn.view(-1, attn.size(1))).view(*attn.size())"), "ADP010") == []


def test_a_view_back_to_another_shape_is_not_read_as_the_softmax():
    assert found(rows("self.softmax(attn.view(-1, attn.size(2))).view(*q.size())"), "ADP010") == []


def test_a_softmax_over_the_first_axis_of_the_matrix_is_not_read_as_the_softmax():
    assert found(rows("F.softmax(attn.view(-1, attn.size(2)), dim=0).view(*attn.size())"), "ADP010") == []


# --------------------------------------------------------------------------- ADP010: dispatcher

DISPATCH = """\
import torch
import torch.nn.functional as F

_BACKEND = "auto"


def _sdpa_attention(q, k, v, mask, dropout):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


def _naive_attention(q, k, v, mask, dropout):
    attn = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if mask is not None:
        attn = attn + mask
    attn = F.softmax(attn, dim=-1)
    if dropout > 0 and torch.is_grad_enabled():
        attn = F.dropout(attn, p=dropout)
    return attn @ v


def efficient_attention(q, k, v, mask=None, dropout=0.0):
    if _BACKEND == "sdpa":
        return _sdpa_attention(q, k, v, mask, dropout)
    return _naive_attention(q, k, v, mask, dropout)


def _flash_attention(q, k, v, mask=None, dropout=0.0):
    try:
        from flash_attn import flash_attn_func
        return flash_attn_func(q, k, v, dropout_p=dropout)
    except Exception:
        if torch.cuda.is_available():
            return _sdpa_attention(q, k, v, mask, dropout)
        return _naive_attention(q, k, v, mask, dropout)
"""


def test_attention_function_called_only_as_the_fallback_of_sdpa_is_not_reported():
    assert found(DISPATCH, "ADP010") == []


def test_attention_function_also_called_directly_is_reported():
    code = DISPATCH + """

def plain(q, k, v):
    return _naive_attention(q, k, v, None, 0.0)
"""
    assert finding_at(code, "ADP010", "attn = F.softmax(attn, dim=-1)") is not None


def test_attention_function_nothing_calls_is_reported():
    code = DISPATCH.split("def efficient_attention")[0]
    assert finding_at(code, "ADP010", "attn = F.softmax(attn, dim=-1)") is not None


# --------------------------------------------------------------------------- ADP010: annotated dropout

ANNOTATED = """\
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as functional


def attention(query, key, value, mask=None, DROPOUT = None, temperature: float = 1.0):
    d_k = query.size(-1)
    scores = torch.matmul(query, key.transpose(-2, -1)) / (math.sqrt(d_k) * temperature)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        else:
            scores = scores + mask
    weights = functional.softmax(scores, dim=-1)
    if dropout is not None:
        EXTRA
        weights = dropout(weights)
    output = torch.matmul(weights, value)
    return output, weights
"""


def annotated(dropout, extra="pass"):
    return ANNOTATED.replace("DROPOUT", dropout).replace("EXTRA", extra)


def test_a_dropout_parameter_annotated_as_the_layer_is_read_as_the_layer():
    for note in ("dropout: nn.Dropout | None", "dropout: Optional[nn.Dropout]", "dropout: torch.nn.Dropout"):
        code = annotated(note)
        assert finding_at(code, "ADP010", "weights = functional.softmax(scores, dim=-1)") is not None, note


def test_an_unannotated_dropout_parameter_stays_unknown():
    assert found(annotated("dropout"), "ADP010") == []


def test_a_parameter_annotated_with_another_layer_is_not_a_dropout():
    assert found(annotated("dropout: nn.Linear | None"), "ADP010") == []


def test_an_annotated_parameter_assigned_again_stays_unknown():
    code = annotated("dropout: nn.Dropout | None", "dropout = make(dropout)")
    assert found(code, "ADP010") == []


# --------------------------------------------------------------------------- ADP010: expand_as mask

EXPANDED_MASK = """\
import math
import torch
import torch.nn as nn


class MultiHeadedAttention(nn.Module):
    def __init__(self, model_dim, head_count, dropout=0.1):
        super().__init__()
        self.head_count = head_count
        self.dim_per_head = model_dim // head_count
        self.linear_keys = nn.Linear(model_dim, model_dim)
        self.linear_values = nn.Linear(model_dim, model_dim)
        self.linear_query = nn.Linear(model_dim, model_dim)
        self.sm = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)
        self.final_linear = nn.Linear(model_dim, model_dim)

    def _split_heads(self, x):
        return x.view(x.size(0), -1, self.head_count, self.dim_per_head).transpose(1, 2)

    def forward(self, key, value, query, mask=None):
        b = key.size(0)
        key_up = self._split_heads(self.linear_keys(key))
        value_up = self._split_heads(self.linear_values(value))
        query_up = self._split_heads(self.linear_query(query))
        query_up = query_up / math.sqrt(self.dim_per_head)
        scores = torch.matmul(query_up, key_up.transpose(2, 3))
        if mask is not None:
            mask = mask.unsqueeze(1).expand_as(scores)
            scores = scores.masked_fill(mask, -1e18)
        attn = self.sm(scores)
        drop_attn = self.dropout(attn)
        context = torch.matmul(drop_attn, value_up).transpose(1, 2).reshape(b, -1, self.head_count * self.dim_per_head)
        return self.final_linear(context)
"""


def _run(code, mask):
    import torch

    space: dict = {}
    exec(compile(code, "model.py", "exec"), space)  # noqa: S102 (our fixture and its patch)
    torch.manual_seed(0)
    module = space["MultiHeadedAttention"](8, 2).double().eval()
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    return module, x, (lambda m: m(x, x, x, mask))


def test_a_mask_expanded_to_the_scores_is_built_from_q_and_k_for_the_fused_call():
    import torch

    result = fix_text(EXPANDED_MASK, "model.py", rules("ADP010"))
    fixed = result.text
    assert "scaled_dot_product_attention(" in fixed
    assert "mask.unsqueeze(1).all(-1).any()" in fixed
    mask = torch.zeros(2, 5, 5, dtype=torch.bool)
    mask[:, :, 3:] = True  # padding keys; no row filled entirely
    original, _, call = _run(EXPANDED_MASK, mask)
    patched, _, _ = _run(fixed, mask)
    patched.load_state_dict(original.state_dict())
    assert torch.allclose(call(original), call(patched), atol=1e-10)


def test_the_same_attention_returning_its_probabilities_stays_unfixed():
    code = EXPANDED_MASK.replace("return self.final_linear(context)", "return self.final_linear(context), attn")
    assert "scaled_dot_product_attention(" not in fix_text(code, "model.py", rules("ADP010")).text


# --------------------------------------------------------------------------- ADP010: .data fill

DATA_FILL = ROWS.replace(
    'attn = attn.masked_fill(attn_mask, -float("inf"))', 'attn.data.masked_fill_(attn_mask, -float("inf"))'
).replace("SOFTMAX_DIM", "-1").replace("SOFTMAX", "self.softmax(attn)")


def test_a_fill_of_the_scores_storage_is_the_attentions_mask():
    fixed = fix_text(DATA_FILL, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    assert "attn_mask=~attn_mask" in fixed


def test_a_fill_of_the_storage_whose_result_is_dropped_is_no_mask():
    code = DATA_FILL.replace("attn.data.masked_fill_(", "attn.data.masked_fill(")
    assert "scaled_dot_product_attention(" not in fix_text(code, "model.py", rules("ADP010")).text
