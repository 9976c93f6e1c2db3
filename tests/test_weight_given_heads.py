"""An LM head built with the token embedding's weight: a head module whose forward returns a
Linear's output, the Linear's weight set to a weight the module is built with (in ``__init__``
or in a method ``__init__`` calls with it), and the model building it with its ``nn.Embedding``'s
``.weight`` (OpenAI GPT's tied decoder).  Its logits flattened over their own last axis into a
cross-entropy are the vocabulary's.  Near-miss: the same head built with another Linear's
weight is not a vocabulary head."""

from __future__ import annotations

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

ADP015 = select_rules(load_rules(), ["ADP015"])

TIED = """\
from torch import nn
from torch.nn import CrossEntropyLoss


class Head(nn.Module):
    def __init__(self, weights, width):
        super().__init__()
        self.width = width
        self.set_weights(weights)

    def set_weights(self, weights):
        rows, cols = weights.shape
        self.decoder = nn.Linear(cols, rows, bias=False)
        self.decoder.weight = weights

    def forward(self, h):
        return self.decoder(h)


class Body(nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.mix = nn.Linear(width, width)

    def forward(self, ids):
        return self.mix(self.tokens(ids))


class LM(nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.body = Body(vocab, width)
        self.head = Head(self.body.SOURCE.weight, width)

    def forward(self, ids, labels=None):
        logits = self.head(self.body(ids))
        if labels is not None:
            shifted = logits[..., :-1, :].contiguous()
            return CrossEntropyLoss()(shifted.view(-1, shifted.size(-1)), labels[..., 1:].reshape(-1))
        return logits
"""


def _found(code):
    return [f for f in analyze(code, "model.py", ADP015).findings if f.rule == "ADP015"]


def test_a_head_built_with_the_token_embedding_weight_is_the_lm_head():
    code = TIED.replace("SOURCE", "tokens")
    found = _found(code)
    line = next(
        n for n, t in enumerate(code.splitlines(), 1) if "logits = self.head(" in t
    )
    assert [f.line for f in found] == [line]


def test_the_same_head_built_with_another_linear_weight_is_not():
    assert _found(TIED.replace("SOURCE", "mix")) == []
