"""Forms found wrong while checking the blind batch research52 (vision, 3-D, diffusion, audio
and multimodal research code from seven packages new to the corpus: clipcap,
bidirectional-cross-attention, nerfstudio-gnt, all-in-one-mps, livechord-beat-refiner,
pdetransformer, audyn).  Both were false positives; the fixtures are ours.

- ADP006: ``activation: str | Callable = F.relu`` then ``if isinstance(activation, str):
  activation = get_activation(activation)`` in a layer that a block of the same file builds
  with ``**factory_kwargs``, a dict the block binds once to ``{"device": ..., "dtype": ...}``.
  The string path runs only for a string the file never gives: the layer's activation is ReLU
  (structure/layers.py ``_never_str_at`` with ``_splat_keys``, a literal dict splatted).  On
  main any ``**`` argument made the parameter unknown, and the string factory's GELU was
  reported.  A splat whose dict holds ``activation``, the caller's own ``**kwargs``, or a dict
  changed after it is built keep the finding; so does a block handing on its own parameter
  (``activation=activation``), whatever its default: torchtext's T5 layers are labelled so,
  their encoder getting the string from the package's config (audyn's swin block, the same in
  its file, stays a false positive of the batch).
- ADP010: Shaw relative attention (``attn @ v`` plus ``attn @ v_pos``, the position values per
  query-key pair) after an ``if share_heads:`` that only picks the position table: the
  probabilities are computed with again on every path, which SDPA never returns (match.py
  ``_computed_on`` walks on through a branch whose arms rejoin, counting a read that every path
  from the attention passes).  On main the walk stopped at the first branch.  A read only
  inside ``if need_weights:``, or a branch after which the probabilities are only returned,
  keep the site.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings

LAYER = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    def get_activation(activation):
        if activation == "relu":
            return nn.ReLU()
        elif activation == "gelu":
            return nn.GELU()
        raise RuntimeError(activation)


    class EncoderLayer(nn.Module):
        def __init__(self, d_model, dim_feedforward=2048, activation=F.relu, device=None, dtype=None):
            factory_kwargs = {"device": device, "dtype": dtype}
            super().__init__()
            self.linear1 = nn.Linear(d_model, dim_feedforward, **factory_kwargs)
            self.linear2 = nn.Linear(dim_feedforward, d_model, **factory_kwargs)
            if isinstance(activation, str):
                activation = get_activation(activation)
            self.activation = activation

        def forward(self, x):
            return self.linear2(self.activation(self.linear1(x)))


    class EncoderBlock(nn.Module):
        def __init__(self, d_model, num_layers=2, activation=F.relu, device=None, dtype=None):
            factory_kwargs = FACTORY
            super().__init__()
            self.layers = nn.ModuleList(
                [EncoderLayer(d_model, activation=activation, **factory_kwargs) for _ in range(num_layers)]
            )

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x
""")

FFN = "return self.linear2(self.activation(self.linear1(x)))"


def _layer(factory='{"device": device, "dtype": dtype}'):
    return LAYER.replace("FACTORY", factory)


def test_a_callers_own_parameter_handed_on_may_be_a_string():
    assert covered(_layer(), FFN, "ADP006")


def test_a_literal_splat_alone_keeps_the_string_path_off():
    code = _layer().replace("EncoderLayer(d_model, activation=activation, **factory_kwargs)",
                            "EncoderLayer(d_model, **factory_kwargs)")
    assert "EncoderLayer(d_model, **factory_kwargs)" in code
    assert not findings(code, "ADP006")


def test_a_splat_whose_dict_holds_the_activation_may_name_gelu():
    code = _layer(factory='{"device": device, "activation": "gelu"}').replace(
        "EncoderLayer(d_model, activation=activation, **factory_kwargs)", "EncoderLayer(d_model, **factory_kwargs)")
    assert covered(code, FFN, "ADP006")


def test_a_splat_of_the_callers_own_keywords_may_name_gelu():
    code = _layer().replace("EncoderLayer(d_model, activation=activation, **factory_kwargs)",
                            "EncoderLayer(d_model, **factory_kwargs)")
    code = code.replace("device=None, dtype=None):\n        factory_kwargs = {",
                        "**kwargs):\n        factory_kwargs = kwargs\n        unused = {")
    assert "factory_kwargs = kwargs" in code
    assert covered(code, FFN, "ADP006")


def test_a_splat_dict_changed_after_it_is_built_may_hold_the_activation():
    code = _layer().replace("EncoderLayer(d_model, activation=activation, **factory_kwargs)",
                            "EncoderLayer(d_model, **factory_kwargs)")
    code = code.replace("super().__init__()\n        self.layers",
                        "factory_kwargs.update(extra)\n        super().__init__()\n        self.layers")
    code = code.replace("device=None, dtype=None):\n        factory_kwargs = {\"device\"",
                        "device=None, dtype=None, extra=None):\n        factory_kwargs = {\"device\"", 1)
    assert "factory_kwargs.update(extra)" in code
    assert covered(code, FFN, "ADP006")


SHAW = textwrap.dedent("""\
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class RelativeAttention(nn.Module):
        def __init__(self, dim, heads, window, share_heads=True):
            super().__init__()
            self.heads = heads
            self.share_heads = share_heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.k_table = nn.Parameter(torch.zeros(2 * window - 1, dim // heads))
            self.v_table = nn.Parameter(torch.zeros(2 * window - 1, dim // heads))

        def table(self, t, n):
            idx = torch.arange(n)[:, None] - torch.arange(n)[None, :] + n - 1
            return t[idx]

        def forward(self, x, need_weights=False):
            b, n, c = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            d = q.size(-1)
            qk = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d)
            qk = qk + torch.einsum("bhid,ijd->bhij", q, self.table(self.k_table, n)) / math.sqrt(d)
            attn = F.softmax(qk, dim=-1)
            out = torch.matmul(attn, v)
            if self.share_heads:
                v_pos = self.table(self.v_table, n)
            else:
                v_pos = self.table(self.v_table, n) * 1.0
            READ_AGAIN
            out = out.transpose(1, 2).reshape(b, n, c)
            if need_weights:
                return out, attn
            return out
""")


def _shaw(read_again):
    return SHAW.replace("READ_AGAIN", read_again)


def test_probabilities_computed_with_after_a_rejoining_branch_are_no_sdpa_site():
    code = _shaw('out = out + torch.einsum("bhij,ijd->bhid", attn, v_pos)')
    assert not findings(code, "ADP010")


def test_probabilities_computed_with_only_under_a_flag_keep_the_site():
    code = _shaw('if need_weights:\n            out = out + torch.einsum("bhij,ijd->bhid", attn, v_pos)')
    assert covered(code, "attn = F.softmax(qk, dim=-1)", "ADP010")


def test_probabilities_only_returned_after_a_branch_keep_the_site():
    code = _shaw("out = out + v_pos.sum() * 0")
    assert covered(code, "attn = F.softmax(qk, dim=-1)", "ADP010")
