"""Forms from hf30's blind batch of newer Hugging Face files (transformers 4.45.2's maskformer,
5.23.0 models new since 4.45).  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP015: a scalar logit scale or divisor before the loss API (Cohere, Granite)

SCALED_LM = textwrap.dedent("""\
    import torch
    from torch import nn


    class Model(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)

        def forward(self, ids):
            return self.embed_tokens(ids)


    class ForCausalLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.model = Model(config)
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
            self.logit_scale = config.logit_scale

        def forward(self, ids, labels=None, **kwargs):
            hidden_states = self.model(ids)
            logits = self.lm_head(hidden_states)
            STEP
            loss = None
            if labels is not None:
                loss = self.loss_function(LOSS_ARGS)
            return loss, logits
""")

LOSS_CALLS = (
    "logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs",
    "logits, labels, vocab_size=self.config.vocab_size, **kwargs",
)


def test_a_scalar_scale_or_divisor_before_the_loss_api_keeps_the_head():
    # logits * scale (Cohere's logit_scale) or logits / scaling (Granite's logits_scaling):
    # a scalar on every logit, foldable into the head's input, then the HF causal-LM loss
    for step in ("logits = logits * self.logit_scale", "logits = logits / self.config.logits_scaling"):
        for loss_args in LOSS_CALLS:
            code = SCALED_LM.replace("STEP", step).replace("LOSS_ARGS", loss_args)
            assert finding_at(code, "ADP015", "logits = self.lm_head(") is not None, (step, loss_args)


def test_a_step_that_is_no_scale_before_the_loss_api_is_no_head():
    # logits + a bias table, or logits scaled then softmaxed, are no longer the head's logits
    for step in ("logits = torch.softmax(logits * self.logit_scale, dim=-1)",
                 "logits = self.model(logits)"):
        code = SCALED_LM.replace("STEP", step).replace("LOSS_ARGS", LOSS_CALLS[0])
        assert found(code, "ADP015") == [], step


# ---------- ADP015: a same-file head module whose decoder width is a constructor parameter (ESM C)

HEAD_MODULE = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class MaskedLMHead(nn.Module):
        def __init__(self, hidden_size, vocab_size, intermediate_size=None):
            super().__init__()
            intermediate_size = intermediate_size or hidden_size
            self.dense = nn.Linear(hidden_size, intermediate_size)
            self.layer_norm = nn.LayerNorm(intermediate_size)
            self.decoder = nn.Linear(intermediate_size, vocab_size)

        def forward(self, hidden_states):
            hidden_states = F.gelu(self.dense(hidden_states))
            hidden_states = self.layer_norm(hidden_states)
            return RETURNED


    class ForMaskedLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.lm_head = MaskedLMHead(config.hidden_size, config.vocab_size)

        def forward(self, hidden, labels=None, **kwargs):
            logits = self.lm_head(hidden)
            loss = None
            if labels is not None:
                loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
            return loss, logits
""")


def test_a_head_module_ending_in_a_linear_then_the_loss_api():
    code = HEAD_MODULE.replace("RETURNED", "self.decoder(hidden_states)")
    assert finding_at(code, "ADP015", "logits = self.lm_head(") is not None


def test_a_head_module_not_ending_in_a_linear_is_no_head():
    # the module returns the normed features (no projection last), or a softmax of the decoder's
    for returned in ("hidden_states", "torch.softmax(self.decoder(hidden_states), dim=-1)"):
        code = HEAD_MODULE.replace("RETURNED", returned)
        assert found(code, "ADP015") == [], returned


# ---------- ADP010: scores read again between the steps, the result computed on after (a sink scale)

SINK = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, heads=4, dim=32):
            super().__init__()
            self.heads, self.head_dim = heads, dim // heads
            self.scaling = self.head_dim ** -0.5
            self.sinks = nn.Parameter(torch.zeros(heads))
            self.use_sink = True

        def forward(self, query, key, value, attention_mask=None):
            attn_weights = torch.matmul(query, key.transpose(2, 3)) * self.scaling
            if attention_mask is not None:
                attn_weights = attn_weights + attention_mask
            CHECK
            lse = torch.logsumexp(attn_weights, dim=-1)
            sink_scale = (lse - self.sinks.view(1, -1, 1)).to(torch.float32).sigmoid()
            attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
            attn_output = torch.matmul(attn_weights, value)
            SCALE
            return attn_output.transpose(1, 2).contiguous(), attn_weights
""")


def test_scores_read_by_a_logsumexp_that_scales_the_output_is_no_site():
    # sigmoid(logsumexp(scores) - sink) multiplies the attention output on every path: the
    # scores are computed with again, which SDPA does not give back
    for scale in ("attn_output = attn_output * sink_scale.unsqueeze(-1)",
                  "attn_output = sink_scale.unsqueeze(-1) * attn_output"):
        code = SINK.replace("CHECK", "").replace("SCALE", scale)
        assert found(code, "ADP010") == [], scale


def test_scores_read_again_only_for_their_shape_or_under_a_setting_keep_the_site():
    # a shape check between the steps reads no element; a scale applied only under a setting
    # leaves a path that is plain attention (the rewrite guards the other)
    shape_check = ("if attn_weights.size(-1) != key.size(2):\n            raise ValueError('bad shape')")
    for check, scale in ((shape_check, ""),
                         ("", "if self.use_sink:\n            attn_output = attn_output * sink_scale.unsqueeze(-1)")):
        code = SINK.replace("CHECK", check).replace("SCALE", scale)
        assert finding_at(code, "ADP010", "F.softmax(") is not None, (check, scale)


# ---------- ADP015: a head's logits passed through a layer that is only ever nn.Identity (UltraBERT)

IDENTITY_AFTER_HEAD = textwrap.dedent("""\
    import torch
    from torch import nn


    class Model(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)

        def forward(self, ids):
            return self.embed_tokens(ids)


    class PredictionHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

        def forward(self, hidden_states):
            return self.decoder(torch.tanh(self.dense(hidden_states)))


    class ForMaskedLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.model = Model(config)
            self.head = PredictionHead(config)
            DECODER

        def forward(self, ids, labels=None, **kwargs):
            logits = self.decoder(self.head(self.model(ids)))
            loss = None
            if labels is not None:
                loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
            return loss, logits
""")


def test_logits_through_an_identity_layer_are_the_heads():
    code = IDENTITY_AFTER_HEAD.replace("DECODER", "self.decoder = nn.Identity()")
    assert finding_at(code, "ADP015", "logits = self.decoder(") is not None


def test_logits_through_a_layer_that_may_be_something_else_are_not():
    # a layer bound to nn.Identity on one branch only, or to another module, changes the logits
    for decoder in ("self.decoder = nn.Identity() if config.plain else nn.Tanh()",
                    "self.decoder = nn.Softmax(dim=-1)"):
        code = IDENTITY_AFTER_HEAD.replace("DECODER", decoder)
        assert found(code, "ADP015") == [], decoder
