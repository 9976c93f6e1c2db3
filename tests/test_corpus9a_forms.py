"""Forms found missing by the blind batch corpus9a (speech, audio, tabular and time-series research
code: s3prl's Mockingjay, espnet's and SenseVoice's attention, a-unet, stable-audio-tools): each
test states the semantic fact the engine now reads, and a near-miss it must still leave alone.  The
fixtures are ours, written in those projects' styles."""

from __future__ import annotations

import textwrap

from corpus_forms import covered as _covered
from corpus_forms import findings as _findings

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = load_rules()


# An activation table of the file whose entries are functions of the file: a hand-written erf
# GELU and a swish, looked up by a configuration string (BERT-era speech encoders).
FUNCTION_TABLE = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    def gelu(x):
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


    def swish(x):
        return x * torch.sigmoid(x)


    def softsign(x):
        return x / (1.0 + x.abs())


    ACT2FN = {"gelu": gelu, "relu": torch.nn.functional.relu, "swish": swish}
    OTHER = {"softsign": softsign, "relu": torch.nn.functional.relu}


    class Intermediate(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
            if isinstance(config.hidden_act, str):
                self.act = ACT2FN[config.hidden_act]
            else:
                self.act = config.hidden_act

        def forward(self, h):
            h = self.dense(h)
            h = self.act(h)  # may be gelu
            return h


    class NoGelu(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
            self.act = OTHER[config.hidden_act]

        def forward(self, h):
            h = self.dense(h)
            h = self.act(h)  # never gelu
            return h
''')


def test_a_same_file_gelu_function_in_an_activation_table_may_be_the_activation():
    assert _covered(FUNCTION_TABLE, "# may be gelu", "ADP006")
    # a table of functions none of which computes GELU (a softsign written out, a ReLU)
    assert not _covered(FUNCTION_TABLE, "# never gelu", "ADP006")
    # a function held as a value: passed to the kernel in eager code, the original under
    # TorchScript (fixrate2, session 34: tests/test_function_values.py runs such patches)
    result = fix_text(FUNCTION_TABLE, "model.py", select_rules(RULES, ["ADP006"]))
    assert [f.rule for f in result.applied] == ["ADP006"] and not result.skipped
    assert "jit.is_scripting() else bias_gelu(" in result.text


# A helper the attention calls with its scores, which assigns its `scores` parameter only on the
# masked branch (SenseVoice's SANM attention, espnet's forward_attention): on the unmasked way the
# helper still reads the caller's scores.
BRANCH_ASSIGNED_PARAM = textwrap.dedent('''
    import torch
    from torch import nn


    class SANMAttention(nn.Module):
        def __init__(self, n_head, n_feat, dropout_rate):
            super().__init__()
            self.d_k = n_feat // n_head
            self.h = n_head
            self.linear_out = nn.Linear(n_feat, n_feat)
            self.linear_q_k_v = nn.Linear(n_feat, n_feat * 3)
            self.dropout = nn.Dropout(p=dropout_rate)

        def forward_qkv(self, x):
            b, t, _ = x.size()
            q, k, v = torch.split(self.linear_q_k_v(x), self.h * self.d_k, dim=-1)
            q_h = torch.reshape(q, (b, t, self.h, self.d_k)).transpose(1, 2)
            k_h = torch.reshape(k, (b, t, self.h, self.d_k)).transpose(1, 2)
            v_h = torch.reshape(v, (b, t, self.h, self.d_k)).transpose(1, 2)
            return q_h, k_h, v_h

        def forward_attention(self, value, scores, mask):
            n_batch = value.size(0)
            if mask is not None:
                mask = mask.unsqueeze(1).eq(0)
                scores = scores.masked_fill(mask, -float("inf"))
                attn = torch.softmax(scores, dim=-1).masked_fill(mask, 0.0)  # re-masked
            else:
                attn = torch.softmax(scores, dim=-1)  # plain
            x = torch.matmul(self.dropout(attn), value)
            x = x.transpose(1, 2).contiguous().view(n_batch, -1, self.h * self.d_k)
            return self.linear_out(x)

        def forward(self, x, mask):
            q_h, k_h, v_h = self.forward_qkv(x)
            q_h = q_h * self.d_k ** (-0.5)
            scores = torch.matmul(q_h, k_h.transpose(-2, -1))
            return self.forward_attention(v_h, scores, mask)
''')


def test_a_parameter_assigned_on_one_branch_keeps_the_callers_value_on_the_other():
    assert _covered(BRANCH_ASSIGNED_PARAM, "# plain", "ADP010")
    assert not _covered(BRANCH_ASSIGNED_PARAM, "# re-masked", "ADP010")
    # the near-miss: probabilities re-masked on both ways, no way SDPA reproduces
    both = BRANCH_ASSIGNED_PARAM.replace(
        "attn = torch.softmax(scores, dim=-1)  # plain", "attn = torch.softmax(scores, dim=-1).masked_fill(scores == 0, 0.0)")
    assert not _findings(both, "ADP010")


# espnet's attention dropout: nn.Dropout(p) unless flash attention is on, then nn.Identity().
IDENTITY_OR_DROPOUT = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim, heads, rate, use_flash=False, act=False):
            super().__init__()
            self.d_k = dim // heads
            self.dropout = nn.Dropout(p=rate) if not use_flash else nn.Identity()

        def forward(self, q, k, v):
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
            attn = torch.softmax(scores, dim=-1)  # identity or dropout
            return torch.matmul(self.dropout(attn), v)


    class Other(nn.Module):
        def __init__(self, dim, heads, rate, act=False):
            super().__init__()
            self.d_k = dim // heads
            self.other = nn.Dropout(p=rate) if not act else nn.ReLU()

        def forward(self, q, k, v):
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
            attn = torch.softmax(scores, dim=-1)  # relu or dropout
            return torch.matmul(self.other(attn), v)
''')


def test_a_dropout_that_may_be_the_identity_is_the_attention_dropout():
    assert _covered(IDENTITY_OR_DROPOUT, "# identity or dropout", "ADP010")
    # a layer that may be a ReLU is not a dropout: the probabilities may be changed
    assert not _covered(IDENTITY_OR_DROPOUT, "# relu or dropout", "ADP010")


# X-MOD's output layer: dropout, residual add, then a helper whose only parameter is reassigned
# by one of two optional LayerNorms (an if / elif without else) before later code reads it.
LONE_PARAMETER = textwrap.dedent('''
    import torch
    from torch import nn


    class Output(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
            self.LayerNorm = nn.LayerNorm(config.hidden_size)
            self.ln_before_adapter = config.ln_before_adapter
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.adapter_norm = nn.LayerNorm(config.hidden_size) if config.adapter_norm else None
            self.reuse_norm = config.reuse_norm
            self.adapter = nn.Linear(config.hidden_size, config.hidden_size)

        def forward(self, hidden_states, input_tensor):
            hidden_states = self.dense(hidden_states)
            hidden_states = self.dropout(hidden_states)  # dropout
            hidden_states = hidden_states + input_tensor
            return self.adapt(hidden_states)

        def adapt(self, hidden_states):
            if not self.ln_before_adapter:
                residual = hidden_states
            if self.adapter_norm is not None:
                hidden_states = self.adapter_norm(hidden_states)
            elif self.reuse_norm:
                hidden_states = self.LayerNorm(hidden_states)
            if self.ln_before_adapter:
                residual = hidden_states
            parts = torch.split(hidden_states, 2, 0)
            hidden_states = torch.cat([self.adapter(p) for p in parts], 0)
            hidden_states = self.dropout(hidden_states)
            hidden_states += residual
            return hidden_states
''')


def test_the_lone_parameter_of_a_helper_assigned_on_one_branch():
    # on the way with ln_before_adapter, the sum goes only into a LayerNorm: a site; the
    # split after the if reads the normalised value, not the sum
    assert _covered(LONE_PARAMETER, "# dropout", "ADP005")
    # near-miss: the caller adds the sum again after the helper, so no way leaves it unread
    kept = LONE_PARAMETER.replace("return self.adapt(hidden_states)",
                                  "return self.adapt(hidden_states) + hidden_states")
    assert kept != LONE_PARAMETER
    assert not _covered(kept, "# dropout", "ADP005")


# espnet's relative-position attention classes: two subclasses whose forwards compute their
# scores and call the base class's forward_attention, one softmax in the file.
SHARED_HELPER = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class Base(nn.Module):
        def __init__(self, n_head, n_feat):
            super().__init__()
            self.d_k = n_feat // n_head
            self.h = n_head
            self.linear_out = nn.Linear(n_feat, n_feat)
            self.pos_bias_u = nn.Parameter(torch.zeros(n_head, self.d_k))

        def forward_attention(self, value, scores):
            n_batch = value.size(0)
            attn = torch.softmax(scores, dim=-1)  # shared
            x = torch.matmul(attn, value)
            return self.linear_out(x.transpose(1, 2).reshape(n_batch, -1, self.h * self.d_k))


    class RelA(Base):
        def forward(self, q, k, v, p):
            scores = (torch.matmul(q + self.pos_bias_u[:, None], k.transpose(-2, -1)) + p) / math.sqrt(self.d_k)
            return self.forward_attention(v, scores)


    class RelB(Base):
        def forward(self, q, k, v, p):
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k) + p
            return self.forward_attention(v, scores)
''')


def test_one_finding_for_a_helper_two_subclasses_run():
    line = next(n for n, text in enumerate(SHARED_HELPER.splitlines(), 1) if "# shared" in text)
    found = [f for f in _findings(SHARED_HELPER, "ADP010") if f.line <= line <= f.end_line]
    assert len(found) == 1


# stable-audio-tools' (x-transformers') rotary helper with an xpos scale on both products.
XPOS_HELPER = textwrap.dedent('''
    import torch
    from torch import nn
    from einops import rearrange


    def rotate_half(x):
        x = rearrange(x, '... (j d) -> ... j d', j=2)
        x1, x2 = x.unbind(dim=-2)
        return torch.cat((-x2, x1), dim=-1)


    def rotate_every_two(x):
        x1, x2 = x[..., ::2], x[..., 1::2]
        return torch.stack((-x2, x1), dim=-1).flatten(-2)


    def apply_rotary_pos_emb(t, freqs, scale=1):
        rot_dim, seq_len = freqs.shape[-1], t.shape[-2]
        freqs = freqs[-seq_len:, :]
        t, t_unrotated = t[..., :rot_dim], t[..., rot_dim:]
        t = (t * freqs.cos() * scale) + (rotate_half(t) * freqs.sin() * scale)  # xpos
        return torch.cat((t, t_unrotated), dim=-1)


    def apply_interleaved(t, freqs, scale=1):
        t = (t * freqs.cos() * scale) + (rotate_every_two(t) * freqs.sin() * scale)  # interleaved
        return t


    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)

        def forward(self, x, freqs):
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
            q, k = apply_rotary_pos_emb(q, freqs), apply_rotary_pos_emb(k, freqs)
            q2, k2 = apply_interleaved(q, freqs), apply_interleaved(k, freqs)
            return q @ k.transpose(-1, -2), q2 @ k2.transpose(-1, -2)
''')


def test_a_rotary_helper_with_a_scale_on_both_products():
    assert _covered(XPOS_HELPER, "# xpos", "ADP014")
    # interleaved pairs (rotate_every_two) are not the half rotation, scaled or not
    assert not _covered(XPOS_HELPER, "# interleaved", "ADP014")


# Mockingjay's TF-style layer norm, written out, after a dropout and a residual add; the same
# blocks with a norm over the channel axis (coqui's channels-first LayerNorm) and an RMSNorm.
WRITTEN_OUT_NORMS = textwrap.dedent('''
    import torch
    from torch import nn


    class TFLayerNorm(nn.Module):
        def __init__(self, hidden_size, eps=1e-12):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(hidden_size))
            self.bias = nn.Parameter(torch.zeros(hidden_size))
            self.variance_epsilon = eps

        def forward(self, x):
            u = x.mean(-1, keepdim=True)
            s = (x - u).pow(2).mean(-1, keepdim=True)
            x = (x - u) / torch.sqrt(s + self.variance_epsilon)
            return self.weight * x + self.bias


    class ChannelNorm(nn.Module):
        def __init__(self, channels, eps=1e-4):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(1, channels, 1))
            self.beta = nn.Parameter(torch.zeros(1, channels, 1))
            self.eps = eps

        def forward(self, x):
            mean = torch.mean(x, 1, keepdim=True)
            variance = torch.mean((x - mean) ** 2, 1, keepdim=True)
            x = (x - mean) * torch.rsqrt(variance + self.eps)
            return x * self.gamma + self.beta


    class RMSNorm(nn.Module):
        def __init__(self, dim, eps=1e-6):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim))
            self.eps = eps

        def forward(self, x):
            return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


    class Output(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.LayerNorm = TFLayerNorm(config.hidden_size)

        def forward(self, hidden_states, input_tensor):
            hidden_states = self.dropout(self.dense(hidden_states))
            hidden_states = hidden_states + input_tensor
            hidden_states = self.LayerNorm(hidden_states)  # norm
            return hidden_states
''')


def test_a_layer_norm_written_out_in_a_module_of_the_file_is_a_layer_norm():
    assert _covered(WRITTEN_OUT_NORMS, "# norm", "ADP005")
    result = fix_text(WRITTEN_OUT_NORMS, "model.py", select_rules(RULES, ["ADP005"]))
    assert not result.applied and result.text == WRITTEN_OUT_NORMS  # reported: no nn.LayerNorm attributes
    # over the channel axis, or without the mean subtracted (RMSNorm): not the kernel's LayerNorm
    for other in ("ChannelNorm", "RMSNorm"):
        code = WRITTEN_OUT_NORMS.replace("= TFLayerNorm(config", f"= {other}(config")
        assert code != WRITTEN_OUT_NORMS
        assert not _covered(code, "# norm", "ADP005"), other


# a-unet's plugin factories: the layers are built in a function defined inside a function.
NESTED_FACTORY = textwrap.dedent('''
    import torch
    from torch import nn


    def TimePlugin(net_t, num_layers=2):
        def Net(features=None, **kwargs):
            mlp = nn.Sequential(nn.Linear(features, features), nn.GELU())  # gelu
            act = nn.Sequential(nn.Linear(features, features), nn.SiLU())  # silu
            net = net_t(features=features, **kwargs)

            def forward(x, time):
                return net(x + mlp(time) + act(time))

            return forward

        return Net
''')


def test_a_sequential_built_in_a_nested_function():
    assert _covered(NESTED_FACTORY, "# gelu", "ADP006")
    assert not _covered(NESTED_FACTORY, "# silu", "ADP006")  # a fixed SiLU
