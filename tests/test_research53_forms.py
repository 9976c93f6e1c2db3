"""Forms found while checking the blind batch research53 (well-known papers' code as published:
FireRedASR, LightZero/UniZero, the Dual Attention Transformer, MARLIN, Maia-2, Seed-VC,
MaskGCT).  The fixtures are ours.

- ADP015, missed: an LM head held in an ``nn.ModuleDict`` built from a local dict (the Dual
  Attention Transformer's language models: ``layers = dict(token_embedder=..., ...,
  final_out=nn.Linear(d_model, vocab_size))``, a member added under a flag with
  ``layers["positional_embedder"] = ...``, then ``self.layers = nn.ModuleDict(layers)``;
  forward calls ``self.layers.final_out(x)`` and hands the logits to ``F.cross_entropy``).
  The bindings read a ModuleDict's members only from a dict written inside the call
  (``nn.ModuleDict(dict(...))``, minGPT's); the layer typing now keeps, for a local name bound to
  a dict with string keys, its (key, value) pairs in order, adds each ``name["key"] = value``,
  and forgets them when the name is bound again, a key is computed, or a method of the dict is
  called; ``nn.ModuleDict(name)`` then binds each member under its key.
Near-misses: the dict changed by ``.update(...)`` before the ModuleDict is built (its members
are no longer known), a member put under a computed key, a head to the vocabulary whose logits
are returned without a loss.

- ADP009, false positive: three Linear heads of one pooled vector, one of them a hidden layer of
  a small MLP (Maia-2's ``return self.fc_1(x), self.fc_2(x), self.fc_3(relu(self.fc_3_1(x)))``),
  were read as a projection helper handing q, k and v to its caller: the two direct heads in the
  returned tuple were two steps.  A returned tuple holding the output of a small MLP whose hidden
  layer is one of the three (a Linear over an activation of the step's output) is a model's
  outputs, not raw projections handed on.
Near-misses (still reported): the helper returning q, k, v as they are, a helper returning them
reshaped into heads, and (test_research46_forms) a value projected again with no activation
between (``self.v2(self.v(x))``).
"""
from __future__ import annotations

import textwrap

from corpus_forms import covered

LOCAL_DICT_LM = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class TinyLM(nn.Module):
        def __init__(self, vocab_size, d_model, n_layers, max_len=0):
            super().__init__()
            layers = dict(
                token_embedder=nn.Embedding(vocab_size, d_model),
                blocks=nn.ModuleList([nn.Linear(d_model, d_model) for _ in range(n_layers)]),
                norm=nn.LayerNorm(d_model),
                final_out=nn.Linear(d_model, vocab_size, bias=False),
            )
            if max_len:
                layers["positions"] = nn.Embedding(max_len, d_model)
            self.layers = nn.ModuleDict(layers)
            self.layers.token_embedder.weight = self.layers.final_out.weight

        def forward(self, x, targets=None):
            x = self.layers.token_embedder(x)
            for block in self.layers.blocks:
                x = block(x)
            x = self.layers.norm(x)
            logits = self.layers.final_out(x)
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            return logits, loss
    """)
HEAD_NEEDLE = "logits = self.layers.final_out(x)"


def test_lm_head_in_a_module_dict_built_from_a_local_dict_is_found():
    assert covered(LOCAL_DICT_LM, HEAD_NEEDLE, "ADP015")


def test_local_dict_literal_and_a_member_added_by_key():
    literal = LOCAL_DICT_LM.replace("""layers = dict(
            token_embedder=nn.Embedding(vocab_size, d_model),
            blocks=nn.ModuleList([nn.Linear(d_model, d_model) for _ in range(n_layers)]),
            norm=nn.LayerNorm(d_model),
            final_out=nn.Linear(d_model, vocab_size, bias=False),
        )""", """layers = {
            "token_embedder": nn.Embedding(vocab_size, d_model),
            "blocks": nn.ModuleList([nn.Linear(d_model, d_model) for _ in range(n_layers)]),
            "norm": nn.LayerNorm(d_model),
        }
        layers["final_out"] = nn.Linear(d_model, vocab_size, bias=False)""")
    assert literal != LOCAL_DICT_LM
    assert covered(literal, HEAD_NEEDLE, "ADP015")


def test_module_dict_members_not_known_are_not_read():
    updated = LOCAL_DICT_LM.replace(
        '        self.layers = nn.ModuleDict(layers)\n',
        '        layers.update(extra)\n        self.layers = nn.ModuleDict(layers)\n').replace(
        "def __init__(self, vocab_size, d_model, n_layers, max_len=0):",
        "def __init__(self, vocab_size, d_model, n_layers, max_len=0, extra=None):")
    computed = LOCAL_DICT_LM.replace('layers["positions"] = ', 'layers[f"pos{max_len}"] = ')
    rebound = LOCAL_DICT_LM.replace(
        '        self.layers = nn.ModuleDict(layers)\n',
        '        layers = dict(token_embedder=layers["token_embedder"], blocks=layers["blocks"],\n'
        '                      norm=layers["norm"], final_out=nn.Identity())\n'
        '        self.layers = nn.ModuleDict(layers)\n')
    no_loss = LOCAL_DICT_LM.replace(
        "        if targets is not None:\n"
        "            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)\n",
        "")
    for code, why in ((updated, "members changed by update"), (computed, "a member under a computed key"),
                      (rebound, "the head replaced by an Identity"), (no_loss, "no loss")):
        assert code != LOCAL_DICT_LM, why
        assert not covered(code, HEAD_NEEDLE, "ADP015"), why


HEADS = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class Heads(nn.Module):
        def __init__(self, dim, n_moves):
            super().__init__()
            self.last_ln = nn.LayerNorm(dim)
            self.fc_1 = nn.Linear(dim, n_moves)
            self.fc_2 = nn.Linear(dim, n_moves + 141)
            self.fc_3 = nn.Linear(128, 1)
            self.fc_3_1 = nn.Linear(dim, 128)
            self.dropout = nn.Dropout(p=0.1)

        def forward(self, x):
            x = self.last_ln(x)
            logits_maia = self.fc_1(x)
            logits_side_info = self.fc_2(x)
            logits_value = self.fc_3(self.dropout(torch.relu(self.fc_3_1(x)))).squeeze(dim=-1)
            return logits_maia, logits_side_info, logits_value
    """)
HEADS_NEEDLE = "logits_maia = self.fc_1(x)"


def test_model_heads_one_of_them_an_mlp_hidden_layer_are_no_qkv():
    assert not covered(HEADS, HEADS_NEEDLE, "ADP009")
    # the activation a layer of the module, and a functional GELU
    layer = HEADS.replace("self.dropout = nn.Dropout(p=0.1)",
                          "self.dropout = nn.Dropout(p=0.1)\n        self.act = nn.GELU()").replace(
        "torch.relu(self.fc_3_1(x))", "self.act(self.fc_3_1(x))")
    functional = HEADS.replace("torch.relu(self.fc_3_1(x))", "torch.nn.functional.gelu(self.fc_3_1(x))")
    for code in (layer, functional):
        assert code != HEADS
        assert not covered(code, HEADS_NEEDLE, "ADP009")


def test_projection_helpers_returning_q_k_v_are_still_reported():
    as_they_are = HEADS.replace(
        "logits_value = self.fc_3(self.dropout(torch.relu(self.fc_3_1(x)))).squeeze(dim=-1)",
        "logits_value = self.fc_3_1(x)")
    reshaped = HEADS.replace(
        "logits_value = self.fc_3(self.dropout(torch.relu(self.fc_3_1(x)))).squeeze(dim=-1)\n"
        "        return logits_maia, logits_side_info, logits_value",
        "logits_value = self.fc_3_1(x)\n"
        "        b, n, _ = x.shape\n"
        "        return (logits_maia.view(b, n, 4, -1), logits_side_info.view(b, n, 4, -1),\n"
        "                logits_value.view(b, n, 4, -1))").replace(
        "nn.Linear(dim, n_moves + 141)", "nn.Linear(dim, n_moves)").replace(
        "nn.Linear(dim, 128)", "nn.Linear(dim, n_moves)")
    for code in (as_they_are, reshaped):
        assert code != HEADS
        assert covered(code, HEADS_NEEDLE, "ADP009")
