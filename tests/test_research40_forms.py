"""Forms found missing while checking the blind batch research40 (vision, speech, diffusion,
multimodal and world-model reimplementations from nine packages new to the corpus).  The
fixtures are ours.

- ADP010: heads laid out by a view whose rank the code states (``qkv.view([n, 3 * h, d, hw])``),
  then cut by ``q, k, v = qkv.chunk(3, dim=1)``, and the softmax written over a dim counted from
  the front (``(q @ kT).softmax(3)``, v-diffusion's SelfAttention2d): each piece of a chunk has
  the rank of the tensor cut (structure/ranks.py), so ``softmax(3)`` of the rank-4 scores is
  the softmax over the keys.
- ADP010: the attention written in a method that ``__init__`` stores, uncalled, in an attribute
  the forward calls (jukebox's ``self.qkv, self.attn, self.attn_mask = {0: (self.factored_qkv,
  self.dense_attn, ...), ...}[attn_func]``, then ``self.attn(q, k, v)``): the method runs where
  the forward calls the attribute (structure/model.py, ``_stored_methods``); it was dropped as
  code no forward reaches.  Also when __init__ first puts the methods in a local table
  (transformers' JukeboxAttention: ``ATTENTION_MAP = {"dense_attn": (self.dense_attn, ...),
  ...}``; ``self.attn, self.attn_mask = ATTENTION_MAP[attn_func]``), a dev-corpus miss.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings, float64_pair, rules

from adopter.synth import fix_text

# ---------------------------------------------------------------- ADP010: chunk pieces keep the rank

CHUNKED = textwrap.dedent("""\
    import torch
    from torch import nn


    class SpatialAttention(nn.Module):
        def __init__(self, c_in=8, n_head=2):
            super().__init__()
            self.n_head = n_head
            self.qkv_proj = nn.Conv2d(c_in, c_in * 3, 1)
            self.out_proj = nn.Conv2d(c_in, c_in, 1)

        def forward(self, input):
            n, c, h, w = input.shape
            qkv = self.qkv_proj(input)
            qkv = qkv.view([n, self.n_head * 3, c // self.n_head, h * w]).transpose(2, 3)
            q, k, v = qkv.chunk(3, dim=1)
            scale = k.shape[3] ** -0.25
            att = ((q * scale) @ (k.transpose(2, 3) * scale)).softmax(3)
            y = (att @ v).transpose(2, 3).contiguous().view([n, c, h, w])
            return input + self.out_proj(y)


    class UnknownRank(nn.Module):
        def forward(self, qkv):
            q, k, v = qkv.chunk(3, dim=1)
            att = (q @ k.transpose(2, 3)).softmax(3)
            return att @ v


    class OverQueries(nn.Module):
        def forward(self, x):
            n, c, t = x.shape
            qkv = x.view(n, 6, c // 2, t).transpose(2, 3)
            q, k, v = qkv.chunk(3, dim=1)
            att = (q @ k.transpose(2, 3)).softmax(2)
            return att @ v
""")


def test_softmax_from_the_front_of_chunked_rank_four_heads():
    assert covered(CHUNKED, "att = ((q * scale) @ (k.transpose(2, 3) * scale)).softmax(3)", "ADP010")


def test_chunk_of_a_tensor_of_unknown_rank_states_no_rank():
    # the cut tensor is a parameter: softmax(3) may be over any axis
    assert not covered(CHUNKED, "att = (q @ k.transpose(2, 3)).softmax(3)", "ADP010")


def test_chunked_heads_normalised_over_the_queries_are_not_attention():
    # rank 4 known through the chunk: softmax(2) is over the queries (dim -2)
    assert not covered(CHUNKED, "att = (q @ k.transpose(2, 3)).softmax(2)", "ADP010")


def test_chunked_heads_fix_computes_the_same():
    import torch

    result = fix_text(CHUNKED, "model.py", rules("ADP010"))
    assert result.applied
    assert "scaled_dot_product_attention(" in result.text
    a, b = float64_pair(CHUNKED, result.text, "SpatialAttention")
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    out_a, out_b = a(x), b(y)
    torch.testing.assert_close(out_b, out_a)
    out_a.sum().backward()
    out_b.sum().backward()
    torch.testing.assert_close(y.grad, x.grad)


# ---------------------------------------------------------------- ADP010: methods __init__ stores

STORED = textwrap.dedent("""\
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class FactoredAttention(nn.Module):
        def __init__(self, dim, heads, mode=0):
            super().__init__()
            self.heads = heads
            self.c_attn = nn.Linear(dim, dim * 3)
            self.c_proj = nn.Linear(dim, dim)
            self.qkv, self.attn = {
                0: (self.split_qkv, self.dense_attn),
                1: (self.split_qkv, self.block_attn),
            }[mode]

        def _attn(self, q, k, v):
            w = torch.matmul(q, k) / math.sqrt(q.shape[-1])
            w = F.softmax(w, dim=-1)
            return torch.matmul(w, v)

        def dense_attn(self, q, k, v):
            q = q.view(*q.shape[:-1], self.heads, -1).permute(0, 2, 1, 3)
            k = k.view(*k.shape[:-1], self.heads, -1).permute(0, 2, 3, 1)
            v = v.view(*v.shape[:-1], self.heads, -1).permute(0, 2, 1, 3)
            a = self._attn(q, k, v)
            return a.permute(0, 2, 1, 3).flatten(2)

        def block_attn(self, q, k, v):
            b, t, d = v.shape
            return self.dense_attn(q.reshape(b * 2, t // 2, d), k.reshape(b * 2, t // 2, d),
                                   v.reshape(b * 2, t // 2, d)).view(b, t, d)

        def split_qkv(self, x):
            return x.chunk(3, dim=2)

        def forward(self, x):
            query, key, value = self.qkv(self.c_attn(x))
            return self.c_proj(self.attn(query, key, value))


    class Tabled(nn.Module):
        def __init__(self, dim, kind="dense"):
            super().__init__()
            self.to_qkv = nn.Linear(dim, dim * 3)
            table = {
                "dense": (self.dense, "causal"),
                "plain": (self.dense, None),
            }
            self.attend, self.mask_kind = table[kind]

        def dense(self, q, k, v):
            scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
            probs = scores.softmax(dim=-1)
            return probs @ v

        def forward(self, x):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            return self.attend(q, k, v)


    class Hooked(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.proj = nn.Linear(dim, dim)
            self.handle = self.register_forward_hook(self.inspect)
            self.spare = self.probe

        def inspect(self, module, args, output):
            q = k = v = output
            w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
            return w @ v

        def probe(self, q, k, v):
            p = torch.softmax(q @ k.transpose(-2, -1) * 0.125, dim=-1)
            return p @ v

        def forward(self, x):
            return self.proj(x)
""")


def test_attention_in_a_method_init_stores_for_the_forward():
    assert covered(STORED, "w = F.softmax(w, dim=-1)", "ADP010")


def test_a_method_handed_to_a_call_in_init_is_not_forward_code():
    # register_forward_hook(self.inspect): an argument of a call, not a stored attribute
    assert not covered(STORED, "w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)", "ADP010")


def test_a_method_stored_where_no_forward_calls_it_is_not_forward_code():
    # self.spare = self.probe: nothing the forward reaches mentions ``spare``
    assert not covered(STORED, "p = torch.softmax(q @ k.transpose(-2, -1) * 0.125, dim=-1)", "ADP010")
    assert sorted(f.class_name for f in findings(STORED, "ADP010")) == ["FactoredAttention", "Tabled"]


def test_attention_in_a_method_init_puts_in_a_local_table_then_stores():
    # table = {"dense": (self.dense, ...)}; self.attend, self.mask_kind = table[kind] (HF jukebox)
    assert covered(STORED, "probs = scores.softmax(dim=-1)", "ADP010")
