"""Forms found while checking the blind batch research73 (generative and multimodal research
code: point-cloud networks, VQ tokenizers, a mesh generator, text-to-speech, diffusion
transformers, an image-text transformer).  The fixtures are ours.

- ADP015, an XLM-style vocabulary head built through same-file factories: ``def
  Embedding(num_embeddings, dim)`` and ``def Linear(in_features, out_features)`` build the
  torch layers from their parameters, so the sizes the file embeds tokens with and the head's
  width are what the calls pass (``Embedding(self.n_words, d)`` beside ``Linear(d,
  params.n_words)``), not the factories' parameter names.  Near-miss: a factory-built Linear to
  another size (an object classifier's classes) is no vocabulary head.
- ADP009, Point Transformer's vector attention: the positions come out of the call that
  groups the keys, so ``(v + pos)`` carries the key's step as well, and the weights computed
  from ``k - q + pos`` multiply it: the two operands of the product hold the three projections
  between them.  Near-miss: operands one of which holds the other's steps.
"""
from __future__ import annotations

import textwrap

from corpus_forms import covered

HEAD = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F


    def Embedding(num_embeddings, embedding_dim, padding_idx=None):
        m = nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx)
        nn.init.normal_(m.weight, mean=0, std=embedding_dim ** -0.5)
        return m


    def Linear(in_features, out_features, bias=True):
        m = nn.Linear(in_features, out_features, bias)
        return m


    class PredLayer(nn.Module):
        def __init__(self, params):
            super().__init__()
            self.n_out = params.{size}
            self.proj = Linear(params.emb_dim, params.{size}, bias=True)

        def forward(self, x, y):
            scores = self.proj(x).view(-1, self.n_out)
            loss = F.cross_entropy(scores, y, reduction="mean")
            return scores, loss


    class Model(nn.Module):
        def __init__(self, params):
            super().__init__()
            self.n_words = params.n_words
            self.embeddings = Embedding(self.n_words, params.emb_dim, padding_idx=0)
            self.pred_layer = PredLayer(params)

        def forward(self, x, y):
            return self.pred_layer(self.embeddings(x), y)
""")

HEAD_NEEDLE = "scores = self.proj(x)"


def test_factory_built_head_to_the_factory_built_embeddings_size_is_a_vocabulary_head():
    assert covered(HEAD.replace("{size}", "n_words"), HEAD_NEEDLE, "ADP015")


def test_factory_built_linear_to_another_size_is_no_vocabulary_head():
    assert not covered(HEAD.replace("{size}", "n_objects"), HEAD_NEEDLE, "ADP015")


POINT = textwrap.dedent("""\
    import torch
    import torch.nn as nn

    from .ops import group


    class PointAttention(nn.Module):
        def __init__(self, dim, nsample=16):
            super().__init__()
            self.nsample = nsample
            self.linear_q = nn.Linear(dim, dim)
            self.linear_k = nn.Linear(dim, dim)
            self.linear_v = nn.Linear(dim, dim)
            self.linear_p = nn.Linear(3, dim)
            self.softmax = nn.Softmax(dim=1)

        def forward(self, p, x):
            x_q, x_k, x_v = self.linear_q(x), self.linear_k(x), self.linear_v(x)
            x_k = group(self.nsample, p, x_k, use_xyz=True)
            x_v = group(self.nsample, p, x_v, use_xyz=False)
            p_r, x_k = x_k[:, :, 0:3], x_k[:, :, 3:]
            p_r = self.linear_p(p_r)
            w = self.softmax(x_k - x_q.unsqueeze(1) + p_r)
            return ({value} * w).sum(1)
""")

POINT_NEEDLE = "x_q, x_k, x_v = self.linear_q(x)"


def test_vector_attention_weights_times_values_with_grouped_positions_meet():
    assert covered(POINT.replace("{value}", "(x_v + p_r)"), POINT_NEEDLE, "ADP009")


def test_operands_one_holding_the_others_steps_do_not_meet():
    # (k + pos) times weights of (k - q + pos): no value projection in the product
    assert not covered(POINT.replace("{value}", "(x_k + p_r)"), POINT_NEEDLE, "ADP009")
