"""Forms from hf26a's blind batch of newer Hugging Face files (transformers 4.45.2): attention
probabilities returned by a helper and then dropped out under the same name, a softmax shift
written in steps (a named row max, ``amax(-1).unsqueeze(-1)``, CogView's scale-shift-unscale),
and an LM head whose width is a field of a sub-configuration.  Our own fixtures, each with
near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

# ---------- ADP010: a helper returns the probabilities; the caller reassigns the name

ATTENTION = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, d=16, h=2):
            super().__init__()
            self.h, self.dh = h, d // h
            self.query = nn.Linear(d, d)
            self.key = nn.Linear(d, d)
            self.value = nn.Linear(d, d)
            self.dropout = nn.Dropout(0.0)

        def split(self, x):
            b, n, _ = x.shape
            return x.view(b, n, self.h, self.dh).permute(0, 2, 1, 3)

        def normalise(self, scores, alpha=32):
            BODY

        def forward(self, x, mask=None):
            q = self.split(self.query(x))
            k = self.split(self.key(x))
            v = self.split(self.value(x))
            scores = torch.matmul(q / math.sqrt(self.dh), k.transpose(-1, -2))
            if mask is not None:
                scores = scores + mask
            probs = PROBS
            probs = self.dropout(probs)
            out = torch.matmul(probs, v)
            return out.permute(0, 2, 1, 3).flatten(2)
""")


def attention(body: str, probs: str = "self.normalise(scores)") -> str:
    return ATTENTION.replace("BODY", textwrap.indent(textwrap.dedent(body), " " * 8).strip()).replace(
        "PROBS", probs)


def test_probabilities_from_a_helper_then_dropped_out_under_the_same_name():
    # the helper's returned softmax copied to ``probs``, then ``probs = self.dropout(probs)``:
    # the dropout's output is its own value (the copy no longer names the softmax)
    code = attention("return scores.softmax(dim=-1)")
    assert finding_at(code, "ADP010", "return scores.softmax(dim=-1)") is not None
    code = attention("p = nn.Softmax(dim=-1)(scores)\nreturn p")
    assert len(found(code, "ADP010")) == 1


def test_a_module_level_helper_too():
    code = attention("return scores", "row_softmax(scores)") + textwrap.dedent("""\


        def row_softmax(scores):
            return scores.softmax(dim=-1)
    """)
    assert len(found(code, "ADP010")) == 1


def test_helper_returning_something_else_is_no_attention():
    # the helper renormalises after the softmax (re-masking): not SDPA's probabilities
    code = attention("p = scores.softmax(dim=-1)\nreturn p / p.sum(dim=-1, keepdim=True).clamp(min=0.5)")
    assert found(code, "ADP010") == []
    # a softmax over the query axis
    code = attention("return scores.softmax(dim=-2)")
    assert found(code, "ADP010") == []


# ---------- ADP010: a softmax shift written in steps

def test_named_row_max_subtracted():
    code = attention("m = scores.amax(dim=-1, keepdim=True)\nreturn (scores - m).softmax(dim=-1)")
    assert len(found(code, "ADP010")) == 1
    code = attention("m = scores.max(-1, keepdim=True)[0].detach()\nshifted = scores - m\n"
                     "return nn.Softmax(dim=-1)(shifted)")
    assert len(found(code, "ADP010")) == 1


def test_row_max_without_keepdim_then_unsqueezed():
    code = attention("return (scores - scores.amax(dim=-1).unsqueeze(-1)).softmax(dim=-1)")
    assert len(found(code, "ADP010")) == 1
    code = attention("m = scores.max(dim=-1).values.unsqueeze(-1)\nreturn (scores - m).softmax(dim=-1)")
    assert len(found(code, "ADP010")) == 1


def test_scale_shift_unscale_relaxation():
    # CogView's precision-bottleneck relaxation: softmax((s / a - max(s / a)) * a) = softmax(s)
    code = attention("""\
        scaled = scores / alpha
        max_value = scaled.amax(dim=(-1)).unsqueeze(-1)
        new_scores = (scaled - max_value) * alpha
        return nn.Softmax(dim=-1)(new_scores)""")
    assert len(found(code, "ADP010")) == 1
    code = attention("""\
        scaled = scores / 32
        return (32 * (scaled - scaled.amax(dim=-1, keepdim=True))).softmax(dim=-1)""")
    assert len(found(code, "ADP010")) == 1


def test_shift_near_misses():
    # a max over another axis: no shift along the softmax's axis
    code = attention("m = scores.amax(dim=-2, keepdim=True)\nreturn (scores - m).softmax(dim=-1)")
    assert found(code, "ADP010") == []
    # the max of another tensor
    code = attention("m = (scores * 2).amax(dim=-1, keepdim=True)\nreturn (scores - m).softmax(dim=-1)")
    assert found(code, "ADP010") == []
    # the name reassigned between the max and the subtraction: the max of the earlier value
    code = attention("m = scores.amax(dim=-1, keepdim=True)\nscores = scores * 2\n"
                     "return (scores - m).softmax(dim=-1)")
    assert found(code, "ADP010") == []
    # unsqueezed on another axis, or keepdim and unsqueeze together
    code = attention("return (scores - scores.amax(dim=-1).unsqueeze(1)).softmax(dim=-1)")
    assert found(code, "ADP010") == []
    code = attention("return (scores - scores.amax(dim=-1, keepdim=True).unsqueeze(-1)).softmax(dim=-1)")
    assert found(code, "ADP010") == []
    # scaled back by another factor than the one divided by: softmax of 2s, not of s
    code = attention("""\
        scaled = scores / alpha
        return ((scaled - scaled.amax(dim=-1, keepdim=True)) * (2 * alpha)).softmax(dim=-1)""")
    assert found(code, "ADP010") == []
    # the divided name reassigned before the unscaling
    code = attention("""\
        scaled = scores / alpha
        scaled = scaled + 1
        return ((scaled - scaled.amax(dim=-1, keepdim=True)) * alpha).softmax(dim=-1)""")
    assert found(code, "ADP010") == []


def test_unsqueezed_row_max_in_the_forward_is_fixed_and_matches():
    import torch

    code = attention("return scores", "(scores - scores.amax(dim=-1).unsqueeze(-1)).softmax(dim=-1)")
    assert finding_at(code, "ADP010", "probs = (scores - scores.amax") is not None
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "Attention")
    a.eval(), b.eval()
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    mask = torch.zeros(3, 1, 1, 5, dtype=torch.float64)
    mask[0, ..., 3:] = torch.finfo(torch.float64).min
    # float64, 8-wide dot products, 5-key softmax: agreement to rounding
    with torch.no_grad():
        torch.testing.assert_close(b(x, mask), a(x, mask), rtol=0, atol=1e-12)
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


# ---------- ADP015: an LM head whose width is a field of a sub-configuration

HEAD = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss


    class TextEmbeddings(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.words = nn.Embedding(config.vocab_size, config.hidden_size)

        def forward(self, ids):
            return self.words(ids)


    class MaskedHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.decoder = nn.Linear(config.hidden_size, WIDTH, bias=False)
            self.bias = nn.Parameter(torch.zeros(WIDTH))

        def forward(self, x):
            return self.decoder(torch.tanh(self.dense(x))) + self.bias


    class ForMaskedLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.embeddings = TextEmbeddings(config.text_config)
            self.head = MaskedHead(config)

        def forward(self, ids, labels=None):
            logits = self.head(self.embeddings(ids))
            loss = None
            if labels is not None:
                loss = CrossEntropyLoss()(logits.view(-1, WIDTH_SELF), labels.view(-1))
            return loss, logits
""")


def head(width: str) -> str:
    return HEAD.replace("WIDTH_SELF", width.replace("config.", "self.config.", 1)).replace("WIDTH", width)


def test_head_width_read_from_a_sub_configuration():
    assert finding_at(head("config.text_config.vocab_size"), "ADP015", "logits = self.head(") is not None


def test_sub_configuration_near_misses():
    # another field of the sub-configuration: a width the file embeds nothing with
    assert found(head("config.text_config.num_labels"), "ADP015") == []
    # the field under another root name than the one the embedding reads
    assert found(head("cfg.text_config.vocab_size").replace("def __init__(self, config):\n        super().__init__()\n"
                                                            "        self.dense",
                                                            "def __init__(self, config, cfg=None):\n"
                                                            "        super().__init__()\n        self.dense"),
                  "ADP015") == []
    # two levels down: not read
    assert found(head("config.text_config.inner.vocab_size"), "ADP015") == []


def test_relaxation_in_a_method_is_reported_and_declined_with_its_steps_named():
    # the fused call would replace statements of the forward and of the helper method: declined,
    # and the decline names the shift (not the pattern's variable)
    code = attention("""\
        scaled = scores / alpha
        max_value = scaled.amax(dim=(-1)).unsqueeze(-1)
        return nn.Softmax(dim=-1)((scaled - max_value) * alpha)""")
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == code
    (why,) = [why for _, why in fixed.skipped]
    assert "the shift by the row maximum and the softmax in `normalise`" in why
