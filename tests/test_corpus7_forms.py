"""Forms found missing by the blind batch corpus7 (pytorch-forecasting's TFT attention, timm's
separable convolutions, tsai's star imports): each test states the semantic fact the engine
now reads, and a near-miss it must still leave alone."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

SDPA = select_rules(load_rules(), ["ADP010"])

TFT_LIKE = textwrap.dedent('''
    import torch
    from torch import nn


    class ScaledDotProductAttention(nn.Module):
        def __init__(self, dropout: float = None, scale: bool = True, mask_bias=-1e9):
            super().__init__()
            if dropout is not None:
                self.dropout = nn.Dropout(p=dropout)
            else:
                self.dropout = dropout
            self.softmax = nn.Softmax(dim=SOFTMAX_DIM)
            self.scale = scale
            self.mask_bias = mask_bias

        def forward(self, q, k, v, mask=None):
            attn = torch.bmm(q, k.permute(0, 2, 1))
            if self.scale:
                dimension = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()
                attn = attn / dimension
            if mask is not None:
                attn = attn.masked_fill(mask, self.mask_bias)
            attn = self.softmax(attn)
            if self.dropout is not None:
                attn = self.dropout(attn)
            output = torch.bmm(attn, v)
            return output, attn
''')


def _covered(code: str, needle: str, rules=SDPA) -> bool:
    line = next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)
    return any(f.line <= line <= f.end_line for f in analyze(code, "model.py", rules).findings)


def test_attention_over_bmm_with_softmax_dim_2_an_unknown_mask_and_a_dropout_that_may_be_none():
    """pytorch-forecasting's ScaledDotProductAttention: ``nn.Softmax(dim=2)`` of scores whose
    rank a mask of unknown rank hides; the probabilities go (through the dropout) only into
    ``torch.bmm``, which takes 3-D operands, so dim 2 is the key axis.  ``self.dropout`` is an
    nn.Dropout or None (the else branch of ``if dropout is not None``): no other layer."""
    assert _covered(TFT_LIKE.replace("SOFTMAX_DIM", "2"), "attn = self.softmax(attn)")
    # dim 1 of the same 3-D scores is the query axis: not attention sdpa computes
    assert not _covered(TFT_LIKE.replace("SOFTMAX_DIM", "1"), "attn = self.softmax(attn)")
    # probabilities read by something other than bmm (a mean over heads) say nothing of the rank
    other = TFT_LIKE.replace("SOFTMAX_DIM", "2").replace(
        "output = torch.bmm(attn, v)", "output = torch.bmm(attn, v) + attn.mean(1, keepdim=True)")
    assert not _covered(other, "attn = self.softmax(attn)")


def test_a_layer_attribute_bound_to_none_on_one_branch_is_that_layer_or_nothing():
    """``self.dropout = dropout`` in the else of ``if dropout is not None`` binds None, as
    ``self.dropout = None`` does; a name reassigned inside ``if act is None:`` is not None after."""
    code = TFT_LIKE.replace("SOFTMAX_DIM", "-1")
    assert _covered(code, "attn = self.softmax(attn)")
    assert _covered(code.replace("self.dropout = dropout", "self.dropout = None"), "attn = self.softmax(attn)")
    # a dropout attribute that may be any module the caller passes is no dropout
    branches = ("        if dropout is not None:\n            self.dropout = nn.Dropout(p=dropout)\n"
                "        else:\n            self.dropout = dropout\n")
    guarded = "        if self.dropout is not None:\n            attn = self.dropout(attn)\n"
    assert branches in code and guarded in code
    passed = code.replace(branches, "        self.dropout = dropout\n").replace(guarded, "        attn = self.dropout(attn)\n")
    assert not _covered(passed, "attn = self.softmax(attn)")
    gelu = select_rules(load_rules(), ["ADP006"])
    reassigned = textwrap.dedent('''
        from torch import nn


        class Block(nn.Module):
            def __init__(self, dim, act=None):
                super().__init__()
                self.fc = nn.Linear(dim, dim)
                if act is None:
                    act = nn.GELU()
                    self.act = act
                else:
                    self.act = nn.GELU()

            def forward(self, x):
                return self.act(self.fc(x))
    ''')
    assert _covered(reassigned, "return self.act(self.fc(x))", gelu)


DAL = select_rules(load_rules(), ["ADP005"])

POST_NORM = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class EncoderLayer(nn.Module):
        def __init__(self, attention, d):
            super().__init__()
            self.attention = attention
            self.conv1 = nn.Conv1d(d, 4 * d, 1)
            self.conv2 = nn.Conv1d(4 * d, d, 1)
            self.norm1 = nn.LayerNorm(d)
            self.norm2 = nn.LayerNorm(d)
            self.dropout = nn.Dropout(0.1)

        def forward(self, x, attn_mask=None):
            new_x, attn = self.attention(x, x, x, attn_mask=attn_mask)
            x = x + self.dropout(new_x)
            y = x = self.norm1(x)
            y = self.dropout(F.relu(self.conv1(y.transpose(-1, 1))))
            y = self.dropout(self.conv2(y).transpose(-1, 1))
            return self.norm2(x + y), attn
''')


def test_a_norm_returned_in_a_tuple_reads_only_its_value():
    """neuralforecast's TransEncoderLayer returns ``self.norm2(x + y), attn``: the tuple holds
    the norm's output, it does not read ``x + y``'s operands again (the dropout output ``y``).
    Returning ``y`` itself beside the norm does read it: no site."""
    assert _covered(POST_NORM, "return self.norm2(x + y), attn", DAL)
    assert _covered(POST_NORM, "y = x = self.norm1(x)", DAL)
    assert not _covered(POST_NORM.replace("return self.norm2(x + y), attn", "return self.norm2(x + y), y"),
                        "return self.norm2(x + y)", DAL)


def test_a_chained_assignment_binds_each_name_to_the_value():
    """``out = kept = self.dropout(h)``: both names are the dropout's output (a copy each), so
    the sum of ``out`` is that dropout's; reading ``kept`` afterwards is reading the dropout
    output (no site)."""
    code = textwrap.dedent('''
        from torch import nn


        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.dropout = nn.Dropout(0.1)
                self.norm = nn.LayerNorm(d)

            def forward(self, h, residual):
                out = kept = self.dropout(h)
                y = self.norm(out + residual)
                return y
    ''')
    assert _covered(code, "y = self.norm(out + residual)", DAL)
    assert not _covered(code.replace("return y", "return y, kept"), "y = self.norm(out + residual)", DAL)


def test_a_layer_class_returned_by_a_call_and_built_at_once():
    """byol-pytorch's ``MaybeSyncBatchnorm(is_distributed)(dim)``: a same-file function returns
    nn.SyncBatchNorm or nn.BatchNorm1d, called at once on the width.  One that returns a layer
    instance (``make_norm(dim)(x)`` would run it) builds nothing there."""
    linear_bn = select_rules(load_rules(), ["ADP008"])
    code = textwrap.dedent('''
        import torch.distributed as dist
        from torch import nn


        def maybe_sync_batchnorm(is_distributed=None):
            if is_distributed is None:
                is_distributed = dist.is_initialized() and dist.get_world_size() > 1
            return nn.SyncBatchNorm if is_distributed else nn.BatchNorm1d


        def mlp(dim, hidden, out, sync_batchnorm=None):
            return nn.Sequential(
                nn.Linear(dim, hidden),
                maybe_sync_batchnorm(sync_batchnorm)(hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, out),
            )


        class Projector(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.fc = nn.Linear(dim, dim)
                self.norm = maybe_sync_batchnorm()(dim)
                self.head = mlp(dim, 4 * dim, dim)

            def forward(self, x):
                return self.head(self.norm(self.fc(x)))
    ''')
    assert _covered(code, "maybe_sync_batchnorm(sync_batchnorm)(hidden)", linear_bn)
    assert _covered(code, "return self.head(self.norm(self.fc(x)))", linear_bn)
    instance = code.replace("return nn.SyncBatchNorm if is_distributed else nn.BatchNorm1d",
                            "return nn.Identity()")
    assert not _covered(instance, "maybe_sync_batchnorm(sync_batchnorm)(hidden)", linear_bn)


def test_an_activation_named_by_a_string_through_getattr_of_torch_nn():
    """neuralforecast's MLP: ``getattr(nn, activation)()`` with a run-time name may be nn.GELU
    (bias-GELU) or nn.SiLU (SwiGLU), as ``ACT2FN[config.act]`` may; ``getattr(nn, "ReLU")()`` is a
    ReLU, no GELU."""
    rules = select_rules(load_rules(), ["ADP006", "ADP013"])
    code = textwrap.dedent('''
        from torch import nn


        class MLP(nn.Module):
            def __init__(self, d, hidden, activation):
                super().__init__()
                self.activation = getattr(nn, activation)()
                self.layers = nn.Sequential(nn.Linear(d, hidden), self.activation, nn.Linear(hidden, d))
                self.gate = nn.Linear(d, hidden)
                self.up = nn.Linear(d, hidden)
                self.fc = nn.Linear(d, d)
                self.relu = getattr(nn, "ReLU")()

            def forward(self, x):
                h = self.activation(self.gate(x)) * self.up(x)
                return self.relu(self.fc(self.layers(x))) + h
    ''')
    found = {(f.rule, f.line) for f in analyze(code, "model.py", rules).findings}
    line = {needle: next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)
            for needle in ("self.layers = nn.Sequential", "h = self.activation", "return self.relu")}
    assert ("ADP006", line["self.layers = nn.Sequential"]) in found
    assert ("ADP013", line["h = self.activation"]) in found
    assert ("ADP006", line["h = self.activation"]) in found  # gate Linear -> the same activation
    assert not any(n == line["return self.relu"] for _, n in found)


def test_transformers_gelu_called_as_a_function_is_a_gelu():
    """RoBERTa-style LM heads call ``gelu`` imported from transformers.activations (an exact
    GELUActivation instance): dense -> gelu is a bias-GELU site, fixed with ``linear_gelu``;
    ``gelu_new`` there is the tanh approximation, not this kernel's exact GELU."""
    from adopter.synth import fix_text

    gelu = select_rules(load_rules(), ["ADP006"])
    code = textwrap.dedent('''
        from torch import nn
        from transformers.activations import gelu, gelu_new


        class LMHead(nn.Module):
            def __init__(self, d, vocab):
                super().__init__()
                self.dense = nn.Linear(d, d)
                self.other = nn.Linear(d, d)
                self.layer_norm = nn.LayerNorm(d)
                self.decoder = nn.Linear(d, vocab)

            def forward(self, features):
                x = self.dense(features)
                x = gelu(x)
                y = gelu_new(self.other(x))
                return self.decoder(self.layer_norm(x + y))
    ''')
    assert _covered(code, "x = gelu(x)", gelu)
    assert not _covered(code, "y = gelu_new(self.other(x))", gelu)
    fixed = fix_text(code, "model.py", gelu)
    assert fixed.error is None and "x = linear_gelu(features, self.dense)" in fixed.text
    assert "gelu_new(self.other(x))" in fixed.text
