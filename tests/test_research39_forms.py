"""Forms found while checking the blind batch research39 (language- and sequence-model
reimplementations: slp's attention modules, Titans memory models, compositional attention, a
GRPO trainer, a parallel-block transformer, a latent-MoE GQA model, a translation transformer,
a DeepSeek-V4 reference model, an efficient ESM-2).  The fixtures are ours.

- A rotate-half helper called as ``cls._rotate_half(x)`` inside a ``@classmethod`` (``return
  x * cos + cls._rotate_half(x) * sin``, ``_rotate_half`` a ``@staticmethod``): the class's own
  function, as ``ClassName._rotate_half(x)`` already was (ADP014, altamt's RotaryEmbedding; a
  helper that is itself a class method is not read).  Near-misses: a class method calling an
  interleaved rotation through ``cls``, and ``cls.f`` where ``f`` is a plain instance method (no
  function the call binds as written).
- ``q, k, v = self.q(x), self.k(x), self.v(x)`` in a helper that returns ``map(lambda t:
  rearrange(t, ...), (q, k, v))``, unpacked by the caller into three names that meet in the
  scores: each name is the lambda's body of its own element (ADP009, esm-efficient's
  FlashMultiheadAttention).  Near-misses: the three mapped projections concatenated by the
  caller (never meeting), and a same-file ``map`` that is not the builtin.
- ``shift_logits = logits[:, :-1].contiguous()`` then ``shift_logits.view(-1,
  shift_logits.shape[-1])`` into the cross-entropy (ADP015, nano-deepseek-v4): research39 read
  it; the lead took the reading out at the merge (rows of the slice's own last size do not say
  the vocabulary axis stayed whole: of 2-D logits the slice cuts it, and test_lm_heads keeps
  ``logits[:-1]`` viewed that way unfollowed).  The test keeps it unfollowed, and rows of the
  head's own ``logits.size(-1)`` followed.
- Fix side: compositional attention's ``einsum('b s i j, b r j d -> b s r i d', attn, v)``: the
  context has an axis (the retrievals) that only the values have.  The fixer unsqueezed the
  values alone, and the patched call broadcast q's searches against the values' retrievals
  (verify failed with a shape error): such a site is now declined.  Near-miss (fixed as before,
  and equal in float64): multi-query keys and values that lack the heads axis the queries have.
"""

from __future__ import annotations

from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

# --------------------------------------------------------------------------- ADP014: cls._rotate_half

ROTARY = """\
import torch
import torch.nn as nn


class Rotary(nn.Module):
    HELPER_DECORATOR
    def _rotate_half(HELPER_SELFx: torch.Tensor) -> torch.Tensor:
        half = x.size(-1) // 2
        x1, x2 = x[..., :half], x[..., half:]
        return ROTATED

    @classmethod
    def apply_rotary(cls, x, cos, sin):
        return x * cos + cls._rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)

    def forward(self, x, cos, sin):
        q = Rotary.apply_rotary(self.q_proj(x), cos, sin)
        k = Rotary.apply_rotary(self.k_proj(x), cos, sin)
        return q @ k.transpose(-1, -2)
"""


def rotary(decorator="@staticmethod", rotated="torch.cat([-x2, x1], dim=-1)", self_param=""):
    return (ROTARY.replace("HELPER_DECORATOR", decorator).replace("ROTATED", rotated)
            .replace("HELPER_SELF", self_param))


def test_a_static_rotate_half_called_through_cls_in_a_classmethod_is_rope():
    assert finding_at(rotary(), "ADP014", "return x * cos + cls._rotate_half(x) * sin") is not None


def test_an_interleaved_rotation_through_cls_is_not_rope():
    code = rotary(rotated="torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)")
    assert found(code, "ADP014") == []


def test_cls_naming_an_instance_method_is_no_helper():
    assert found(rotary("", self_param="self, "), "ADP014") == []


# --------------------------------------------------------------------------- ADP009: map over q, k, v

QKV = """\
import torch
import torch.nn as nn
from einops import rearrange

MAP_DEF

class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.num_heads = heads
        self.norm = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.out = nn.Linear(d, d)

    def _qkv(self, x):
        x = self.norm(x)
        q, k, v = self.q(x), self.k(x), self.v(x)
        return map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.num_heads), (q, k, v))

    def forward(self, x):
        q, k, v = self._qkv(x)
        TAIL
"""

ATTEND = """a = (q @ k.transpose(-1, -2)).softmax(dim=-1)
        return self.out(rearrange(a @ v, "b h n d -> b n (h d)"))"""


def qkv(map_def="", tail=ATTEND):
    return QKV.replace("MAP_DEF", map_def).replace("TAIL", tail)


def test_projections_mapped_by_a_returned_lambda_meet_in_the_callers_scores():
    assert finding_at(qkv(), "ADP009", "q, k, v = self.q(x), self.k(x), self.v(x)") is not None


def test_mapped_projections_concatenated_do_not_meet():
    assert found(qkv(tail="return self.out(torch.cat([q, k, v], dim=1).mean(1))"), "ADP009") == []


def test_a_same_file_map_is_not_the_builtin():
    shadow = "def map(fn, items):\n    return [fn(items[0] + items[1] + items[2])] * 3\n"
    assert found(qkv(shadow), "ADP009") == []


# --------------------------------------------------------------------------- ADP015: lead slice, own rows

LM = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class LM(nn.Module):
    def __init__(self, d, vocab_size, n_classes):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, d)
        self.head = nn.Linear(d, WIDTH, bias=False)

    def forward(self, input_ids, labels=None):
        hidden_states = self.embed_tokens(input_ids)
        logits = self.head(hidden_states)
        loss = None
        if labels is not None:
            shift_logits = logits[:, :-1]CONTIGUOUS
            shift_labels = labels[:, 1:].contiguous()
            loss = F.cross_entropy(
                shift_logits.view(-1, shift_logits.SIZE),
                shift_labels.view(-1),
                ignore_index=-100,
            )
        return logits, loss
"""


def lm(width="vocab_size", contiguous=".contiguous()", size="shape[-1]"):
    return LM.replace("WIDTH", width).replace("CONTIGUOUS", contiguous).replace("SIZE", size)


def test_a_two_axis_shift_viewed_to_its_own_rows_is_not_followed():
    # The lead's ruling at the merge: rows of the slice's OWN last size say nothing about the
    # vocabulary (of 2-D logits, ``[:, :-1]`` cuts the vocabulary axis and the rows are still
    # "whole"), and tests/test_lm_heads.py keeps ``logits[:-1]`` viewed that way unfollowed.
    # Rows of the head's own ``logits.size(-1)`` are followed (the alternatives before).
    # Since misses38 (session 31, the lead's brief: nano-deepseek's "shift over two axes"), a
    # target that is the complementary shift of the same axes (``labels[:, 1:]`` beside
    # ``logits[:, :-1]``) says axis 1 holds the positions: followed then
    # (tests/test_misses38_forms.py); with a target shifted the same way, still not.
    needle = "logits = self.head(hidden_states)"
    assert finding_at(lm(), "ADP015", needle) is not None
    same_way = "shift_labels = labels[:, :-1].contiguous()"
    assert finding_at(lm().replace("shift_labels = labels[:, 1:].contiguous()", same_way),
                      "ADP015", needle) is None
    assert finding_at(lm(size="size(-1)").replace("shift_labels = labels[:, 1:].contiguous()", same_way),
                      "ADP015", needle) is None
    assert finding_at(lm().replace("shift_logits.SIZE", "logits.size(-1)").replace(
        "shift_logits.shape[-1]", "logits.size(-1)"), "ADP015", needle) is not None


def test_a_classifier_head_shifted_the_same_way_is_not_a_vocabulary_head():
    assert found(lm(width="n_classes"), "ADP015") == []


# --------------------------------------------------------------------------- ADP010: einsum broadcast

COMPOSITIONAL = """\
import torch
import torch.nn as nn
from torch import einsum


class Search(nn.Module):
    def __init__(self, d, searches=4, retrievals=2, dim_head=8):
        super().__init__()
        self.s, self.r = searches, retrievals
        self.scale = dim_head ** -0.5
        self.to_q = nn.Linear(d, searches * dim_head, bias=False)
        self.to_k = nn.Linear(d, searches * dim_head, bias=False)
        self.to_v = nn.Linear(d, retrievals * dim_head, bias=False)

    def forward(self, x):
        b, n, _ = x.shape
        q = self.to_q(x).view(b, n, self.s, -1).transpose(1, 2) * self.scale
        k = self.to_k(x).view(b, n, self.s, -1).transpose(1, 2)
        v = self.to_v(x).view(b, n, self.r, -1).transpose(1, 2)
        sim = einsum("b s i d, b s j d -> b s i j", q, k)
        attn = sim.softmax(dim=-1)
        return einsum("b s i j, b r j d -> b s r i d", attn, v)
"""

MULTI_QUERY = """\
import torch
import torch.nn as nn
from torch import einsum


class MultiQuery(nn.Module):
    def __init__(self, d, heads=4):
        super().__init__()
        self.h = heads
        self.scale = (d // heads) ** -0.5
        self.to_q = nn.Linear(d, d, bias=False)
        self.to_kv = nn.Linear(d, 2 * (d // heads), bias=False)

    def forward(self, x):
        b, n, _ = x.shape
        q = self.to_q(x).view(b, n, self.h, -1).transpose(1, 2) * self.scale
        k, v = self.to_kv(x).chunk(2, dim=-1)
        sim = einsum("b h i d, b j d -> b h i j", q, k)
        attn = sim.softmax(dim=-1)
        return einsum("b h i j, b j d -> b h i d", attn, v)
"""


def test_probabilities_broadcast_over_an_axis_of_the_values_are_not_fixed():
    assert finding_at(COMPOSITIONAL, "ADP010", "attn = sim.softmax(dim=-1)") is not None
    assert "scaled_dot_product_attention(" not in fix_text(COMPOSITIONAL, "model.py", rules("ADP010")).text


def test_multi_query_keys_and_values_broadcast_over_heads_are_still_fixed():
    import torch

    fixed = fix_text(MULTI_QUERY, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(MULTI_QUERY, fixed, "MultiQuery", d=16)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    assert torch.allclose(a(x), b(x), atol=1e-10)
