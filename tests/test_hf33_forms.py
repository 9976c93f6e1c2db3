"""Forms from hf33's probe of the unlabelled transformers 5.23.0 model files (nemotron_h's and
blt's float32 upcast of the head's logits before the loss API, t5gemma's head module with the
vocabulary size passed by position).  Our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP015: the head's logits upcast to float32, then the loss API

CAUSAL_LM = textwrap.dedent("""\
    import torch
    from torch import nn


    class CausalLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.vocab_size = config.vocab_size
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

        def forward(self, hidden_states, labels=None, **kwargs):
            HEAD
            loss = None
            if labels is not None:
                loss = LOSS
            return loss, logits
""")

HEADS_UPCAST = (
    # the upcast on the head call (nemotron_h, blt)
    "logits = self.lm_head(hidden_states).float()",
    # the upcast as a statement of its own
    "logits = self.lm_head(hidden_states)\n        logits = logits.float()",
    # a logit scale, then the upcast
    "logits = self.lm_head(hidden_states) * self.config.logit_scale\n        logits = logits.float()",
)

LOSSES = (
    "self.loss_function(logits, labels, self.vocab_size, **kwargs)",
    "self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)",
    "self.loss_function(logits, labels, vocab_size=self.vocab_size, **kwargs)",
)


def _lm(head: str, loss: str) -> str:
    return CAUSAL_LM.replace("HEAD", head).replace("LOSS", loss)


def test_head_logits_upcast_before_the_loss_api_are_a_fused_linear_cross_entropy():
    for head in HEADS_UPCAST:
        for loss in LOSSES:
            code = _lm(head, loss)
            assert (
                finding_at(code, "ADP015", "self.lm_head(hidden_states)") is not None
            ), (head, loss)


def test_upcast_look_alikes_are_not_a_fused_linear_cross_entropy():
    for head in (
        # always soft-capped after the upcast: the loss is of the capped logits on every path
        (
            "logits = self.lm_head(hidden_states).float()\n"
            "        logits = torch.tanh(logits / 30.0) * 30.0"
        ),
        # the vocabulary columns cut after the upcast (inkling2's unpadded vocabulary)
        (
            "logits = self.lm_head(hidden_states).float()\n"
            "        logits = logits[..., : self.config.unpadded_vocab_size]"
        ),
        # the upcast of another tensor handed to the loss
        "logits = self.lm_head(hidden_states)\n        logits = hidden_states.float()",
    ):
        for loss in LOSSES:
            assert found(_lm(head, loss), "ADP015") == [], (head, loss)


def test_upcast_logits_returned_without_a_loss_are_not_reported():
    code = _lm("logits = self.lm_head(hidden_states).float()", "None")
    assert found(code, "ADP015") == []


# ---------- ADP015: a same-file head module, the vocabulary size passed by position

HEAD_MODULE = textwrap.dedent("""\
    import torch
    from torch import nn


    class LMHead(nn.Module):
        def __init__(self, hidden_size, vocab_size, bias=False):
            super().__init__()
            self.out_proj = nn.Linear(hidden_size, vocab_size, bias=bias)

        def forward(self, hidden_states):
            logits = self.out_proj(hidden_states)
            return logits


    class Seq2SeqLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.vocab_size = config.vocab_size
            self.num_labels = config.num_labels
            self.lm_head = LMHead(config.hidden_size, self.vocab_size)

        def forward(self, hidden_states, labels=None, **kwargs):
            logits = self.lm_head(hidden_states)
            CAP
            loss = None
            if labels is not None:
                loss = LOSS
            return loss, logits
""")

OPTIONAL_CAP = (
    "decoder_config = self.config.decoder\n"
    "        if decoder_config.final_logit_softcapping is not None:\n"
    "            logits = logits / decoder_config.final_logit_softcapping\n"
    "            logits = torch.tanh(logits)\n"
    "            logits = logits * decoder_config.final_logit_softcapping"
)


def _head_module(cap: str, loss: str) -> str:
    return HEAD_MODULE.replace("CAP", cap).replace("LOSS", loss)


def test_head_module_with_positional_vocab_size_is_a_fused_linear_cross_entropy():
    for cap in ("pass", OPTIONAL_CAP):
        code = _head_module(
            cap, "self.loss_function(logits, labels, self.vocab_size, **kwargs)"
        )
        assert (
            finding_at(code, "ADP015", "logits = self.lm_head(hidden_states)")
            is not None
        ), cap


def test_head_module_look_alikes_are_not_a_fused_linear_cross_entropy():
    for cap, loss in (
        # a third positional argument that is not the vocabulary
        ("pass", "self.loss_function(logits, labels, self.num_labels, **kwargs)"),
        # soft-capped on every path
        (
            "logits = torch.tanh(logits / 30.0) * 30.0",
            "self.loss_function(logits, labels, self.vocab_size, **kwargs)",
        ),
        # another tensor handed to the loss
        (
            "pass",
            "self.loss_function(hidden_states, labels, self.vocab_size, **kwargs)",
        ),
    ):
        assert found(_head_module(cap, loss), "ADP015") == [], (cap, loss)
