"""Forms found while checking the blind batch research47 (language and sequence-model research
code on PyPI: nmtlab, allennlp-models' LM transformer, rtdl's FT-Transformer, physis-lm,
native-sparse-attention-pytorch, seq2seq-pytorch, torch-multi-head-attention, eole, lairgpt,
yet-another-retnet).  The fixtures are ours.

- ADP014: the rotation written per half (``cat((q1 * cos - q2 * sin, q1 * sin + q2 * cos))``)
  for q and for k in one function with one pair of half tables (eole's xdrope and rotary
  fallback) was two findings, one per tensor, where the rotate-half forms give one for both.
  A two-tensor per-half alternative (one table pair) now matches both and the larger match is
  kept (engine.match_rule).
- ADP010: ``einops.einsum`` patterns whose axis names are words (``"b h qh i d, b h j d -> b h
  qh i j"``: grouped queries, native-sparse-attention's ``attend``) were read with the spaces
  removed, ``qh`` as the two axes ``q`` and ``h``: no product.  canon.einops_equation gives
  each word a letter first (graph, ranks).
- ADP010: attention over keys gathered per query by indices a ranking chose (``k.gather(3,
  idx)`` with ``idx`` from ``topk``: native sparse attention's selected blocks, the queries'
  axis a batch axis of the product written between its rows and its keys) is a sparse
  attention of its own (GUIDE: top-k keys per query are not a site); the einops reading above
  made such a product readable.  Matcher._ranked_selection refuses them; one gathered key set
  for every query (ITTR, labelled a site) stays one.
- ADP006: ``cls = getattr(nn, name)`` then ``cls(*args)`` in a same-file factory (rtdl's
  ``_make_nn_module``) is the torch.nn class a run-time string names, as ``getattr(nn,
  name)(*args)`` in place already read (layers.LayerTyper._call): an activation that may be
  GELU.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings, float64_pair, rules

from adopter.structure import canon
from adopter.synth import fix_text

# -- ADP014: per-half rotation of q and k in one function --------------------------------------

HALVES_QK = textwrap.dedent("""\
    import torch


    def apply_rope(query, key, cos_sin):
        d = cos_sin.size(1)
        cos = cos_sin[:, : d // 2]
        sin = cos_sin[:, d // 2 :]
        q1, q2 = query[..., : d // 2], query[..., d // 2 :]
        k1, k2 = key[..., : d // 2], key[..., d // 2 :]
        q_out = torch.cat((q1 * cos - q2 * sin, q1 * sin + q2 * cos), dim=-1)
        k_out = torch.cat((k1 * cos - k2 * sin, k1 * sin + k2 * cos), dim=-1)
        return q_out, k_out
""")

Q_LINE, K_LINE = "q_out = torch.cat", "k_out = torch.cat"


def _lines(code: str, *needles: str) -> list[int]:
    return [next(n for n, text in enumerate(code.splitlines(), 1) if needle in text) for needle in needles]


def test_per_half_rotation_of_q_and_k_is_one_site():
    q_line, k_line = _lines(HALVES_QK, Q_LINE, K_LINE)
    found = findings(HALVES_QK, "ADP014")
    assert len(found) == 1
    assert found[0].line <= q_line and k_line <= found[0].end_line


def test_per_half_rotation_with_chunks_is_one_site():
    code = HALVES_QK.replace("q1, q2 = query[..., : d // 2], query[..., d // 2 :]", "q1, q2 = query.chunk(2, dim=-1)")
    code = code.replace("k1, k2 = key[..., : d // 2], key[..., d // 2 :]", "k1, k2 = key.chunk(2, dim=-1)")
    assert len(findings(code, "ADP014")) == 1


def test_per_half_rotations_with_their_own_tables_are_not_one_site():
    code = HALVES_QK.replace("def apply_rope(query, key, cos_sin):", "def apply_rope(query, key, cos_sin, k_cos, k_sin):")
    code = code.replace("torch.cat((k1 * cos - k2 * sin, k1 * sin + k2 * cos)",
                        "torch.cat((k1 * k_cos - k2 * k_sin, k1 * k_sin + k2 * k_cos)")
    q_line, k_line = _lines(code, Q_LINE, K_LINE)
    assert not any(f.line <= q_line and k_line <= f.end_line for f in findings(code, "ADP014"))


def test_interleaved_pairs_of_q_and_k_are_no_rope_site():
    code = HALVES_QK.replace("q1, q2 = query[..., : d // 2], query[..., d // 2 :]", "q1, q2 = query[..., 0::2], query[..., 1::2]")
    code = code.replace("k1, k2 = key[..., : d // 2], key[..., d // 2 :]", "k1, k2 = key[..., 0::2], key[..., 1::2]")
    code = code.replace("torch.cat((q1 * cos - q2 * sin, q1 * sin + q2 * cos), dim=-1)",
                        "torch.stack((q1 * cos - q2 * sin, q1 * sin + q2 * cos), dim=-1).flatten(-2)")
    code = code.replace("torch.cat((k1 * cos - k2 * sin, k1 * sin + k2 * cos), dim=-1)",
                        "torch.stack((k1 * cos - k2 * sin, k1 * sin + k2 * cos), dim=-1).flatten(-2)")
    assert not findings(code, "ADP014")


def test_per_half_products_that_add_both_halves_are_no_rope_site():
    code = HALVES_QK.replace("q1 * cos - q2 * sin, q1 * sin + q2 * cos", "q1 * cos + q2 * sin, q1 * sin + q2 * cos")
    code = code.replace("k1 * cos - k2 * sin, k1 * sin + k2 * cos", "k1 * cos + k2 * sin, k1 * sin + k2 * cos")
    assert not findings(code, "ADP014")


# -- ADP010: einops.einsum with word axis names ------------------------------------------------

GROUPED_EINOPS = textwrap.dedent("""\
    import torch
    from einops import einsum, rearrange
    from torch import nn


    def attend(q, k, v, mask=None):
        groups = q.shape[1] // k.shape[1]
        q = rearrange(q, 'b (h qh) ... -> b h qh ...', qh=groups)
        sim = einsum(q, k, 'b h qh i d, b h j d -> b h qh i j') * 0.25
        if mask is not None:
            sim = sim.masked_fill(~mask, -torch.finfo(sim.dtype).max)
        attn = sim.softmax(dim=-1)
        out = einsum(attn, v, 'b h qh i j, b h j d -> b h qh i d')
        return rearrange(out, 'b h qh ... -> b (h qh) ...')


    class GroupedAttention(nn.Module):
        def __init__(self, dim=16, heads=4, kv_heads=2):
            super().__init__()
            self.heads, self.kv_heads = heads, kv_heads
            self.to_q = nn.Linear(dim, 4 * heads, bias=False)
            self.to_kv = nn.Linear(dim, 8 * kv_heads, bias=False)
            self.to_out = nn.Linear(4 * heads, dim, bias=False)

        def forward(self, x):
            b, n, _ = x.shape
            q = self.to_q(x).view(b, n, self.heads, 4).transpose(1, 2)
            k, v = self.to_kv(x).view(b, n, 2, self.kv_heads, 4).permute(2, 0, 3, 1, 4)
            out = attend(q, k, v)
            return self.to_out(out.transpose(1, 2).reshape(b, n, -1))
""")

SOFTMAX = "attn = sim.softmax(dim=-1)"


def test_einops_words_read_as_one_axis_each():
    written = canon.einops_equation("b h qh i d, b h j d -> b h qh i j")
    assert written is not None and len(written.split("->")[1]) == 5
    assert canon.einsum_product(written)[0] == "matmul_t"
    assert canon.einops_equation("batch i d, batch j d -> batch i j") == canon.einops_equation("a i d, a j d -> a i j")
    assert canon.einops_equation("b i d, b j d -> b i j") == "bid,bjd->bij"
    assert canon.einops_equation("b i d, b j d") is None


def test_grouped_query_einops_attention_is_found():
    assert covered(GROUPED_EINOPS, SOFTMAX, "ADP010")


def test_einops_word_attention_fix_computes_the_same():
    import torch

    result = fix_text(GROUPED_EINOPS, "model.py", rules("ADP010"))
    assert result.applied
    assert "scaled_dot_product_attention(" in result.text
    a, b = float64_pair(GROUPED_EINOPS, result.text, "GroupedAttention")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    out_a, out_b = a(xa), b(xb)
    torch.testing.assert_close(out_b, out_a)
    out_a.sum().backward()
    out_b.sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)


def test_einops_word_products_over_other_axes_are_no_attention():
    over_queries = GROUPED_EINOPS.replace(SOFTMAX, "attn = sim.softmax(dim=-2)")
    assert not covered(over_queries, "attn = sim.softmax(dim=-2)", "ADP010")
    # the probabilities contracted over the query axis with the values: not p @ v
    other_axis = GROUPED_EINOPS.replace("'b h qh i j, b h j d -> b h qh i d'", "'b h qh i j, b h i d -> b h qh j d'")
    assert not covered(other_axis, SOFTMAX, "ADP010")


# -- ADP010: keys gathered per query by a ranking's indices -------------------------------------

GATHERED = textwrap.dedent("""\
    import torch
    from torch import nn


    class SelectedAttention(nn.Module):
        def __init__(self, select=2):
            super().__init__()
            self.select = select

        def forward(self, q, k, v, importance):
            idx = importance.topk(self.select, dim=-1).indices
            idx = idx[..., None].expand(-1, -1, -1, -1, k.shape[-1])
            fk = k[:, :, None].expand(-1, -1, q.shape[3], -1, -1).gather(3, idx)
            fv = v[:, :, None].expand(-1, -1, q.shape[3], -1, -1).gather(3, idx)
            sim = torch.einsum('bhgid,bhijd->bhgij', q, fk) * 0.25
            attn = sim.softmax(dim=-1)
            return torch.einsum('bhgij,bhijd->bhgid', attn, fv)
""")

# one gathered key set for every query (ITTR's keys pruned per image): still attention
SHARED = textwrap.dedent("""\
    import torch
    from torch import nn


    class SelectedAttention(nn.Module):
        def __init__(self, select=2):
            super().__init__()
            self.select = select

        def forward(self, q, k, v, importance):
            idx = importance.topk(self.select, dim=-1).indices
            idx = idx[..., None].expand(-1, -1, -1, k.shape[-1])
            fk = k.gather(2, idx)
            fv = v.gather(2, idx)
            sim = torch.einsum('bhid,bhjd->bhij', q, fk) * 0.25
            attn = sim.softmax(dim=-1)
            return torch.einsum('bhij,bhjd->bhid', attn, fv)
""")


def test_attention_over_top_k_keys_gathered_per_query_is_no_site():
    assert not covered(GATHERED, SOFTMAX, "ADP010")
    argsorted = GATHERED.replace("importance.topk(self.select, dim=-1).indices",
                                 "importance.argsort(dim=-1, descending=True)[..., : self.select]")
    assert not covered(argsorted, SOFTMAX, "ADP010")


def test_keys_gathered_for_every_query_or_by_indices_no_ranking_chose_stay_a_site():
    assert covered(SHARED, SOFTMAX, "ADP010")
    unranked = GATHERED.replace("idx = importance.topk(self.select, dim=-1).indices", "idx = importance.long()")
    assert covered(unranked, SOFTMAX, "ADP010")


# -- ADP006: getattr(nn, name) held, then called ------------------------------------------------

HELD_GETATTR = textwrap.dedent("""\
    import torch
    from torch import nn


    class ReGLU(nn.Module):
        def forward(self, x):
            a, b = x.chunk(2, dim=-1)
            return a * torch.relu(b)


    def make_module(module_type, *args):
        if isinstance(module_type, str):
            if module_type == "ReGLU":
                return ReGLU()
            try:
                cls = getattr(nn, module_type)
            except AttributeError as err:
                raise ValueError(module_type) from err
            return cls(*args)
        return module_type(*args)


    class Block(nn.Module):
        def __init__(self, *, d_in, d_out, activation, dropout):
            super().__init__()
            self.linear = nn.Linear(d_in, d_out)
            self.activation = make_module(activation)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.activation(self.linear(x)))
""")

ACTIVATION = "return self.dropout(self.activation(self.linear(x)))"


def test_class_held_from_getattr_nn_by_a_run_time_string_may_be_gelu():
    assert covered(HELD_GETATTR, ACTIVATION, "ADP006")


def test_class_held_from_getattr_nn_in_a_plain_factory_may_be_gelu():
    code = HELD_GETATTR.replace(
        HELD_GETATTR[HELD_GETATTR.index("def make_module"):HELD_GETATTR.index("class Block")],
        "def make_module(name, *args):\n    cls = getattr(nn, name)\n    return cls(*args)\n\n\n")
    assert covered(code, ACTIVATION, "ADP006")


def test_held_getattr_naming_another_class_or_module_is_no_gelu():
    literal = HELD_GETATTR.replace("cls = getattr(nn, module_type)", "cls = getattr(nn, \"ReLU\")")
    literal = literal.replace("return ReGLU()", "return nn.ReLU()")
    assert not covered(literal, ACTIVATION, "ADP006")
    default = HELD_GETATTR.replace("def __init__(self, *, d_in, d_out, activation, dropout):",
                                   "def __init__(self, *, d_in, d_out, dropout, activation=\"Tanh\"):")
    default = default.replace("make_module(activation)", "make_module(\"Tanh\")")
    assert not covered(default, ACTIVATION, "ADP006")
    other = HELD_GETATTR.replace("cls = getattr(nn, module_type)", "cls = getattr(torch, module_type)")
    other = other.replace("return ReGLU()", "return nn.ReLU()")
    assert not covered(other, ACTIVATION, "ADP006")
