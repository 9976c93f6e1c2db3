"""Forms found missing while checking the blind batch corpus14c (newer Hugging Face model files
and research LLM/encoder code: BERT/GPT reimplementations, T5 and LLaMA ports, training
frameworks' layers): each test states the semantic fact the engine now reads, and a near-miss it
must still leave alone.  The fixtures are ours."""

from __future__ import annotations

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

ALL = load_rules()


def _rules(*ids):
    return select_rules(ALL, list(ids))


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def _found(code: str, rule: str, path: str = "model.py") -> list:
    return [f for f in analyze(code, path, _rules(rule)).findings if f.rule == rule]


def _finding(code: str, rule: str, needle: str):
    line = _line(code, needle)
    return next((f for f in _found(code, rule) if f.line <= line <= f.end_line), None)


# ----------------------------------------------------------------- a reduction's axis= keyword

RMS_AXIS = """\
import torch
from torch import nn


class ScaleNormNoCenter(nn.Module):
    def __init__(self, width, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(width))

    def forward(self, h):
        return (
            h
            / torch.sqrt(torch.mean(torch.square(h), axis=-1, keepdim=True) + self.eps)  # last
            * self.gain
        )


class OverTime(nn.Module):
    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, h):
        return h / torch.sqrt(torch.mean(torch.square(h), axis=1, keepdim=True) + self.eps)  # time
"""


def test_mean_over_axis_keyword_is_rms_norm():
    # torch reads axis= as dim= (its NumPy alias): the mean of the square over axis=-1 is the
    # RMS statistic; over axis=1 it is a mean over another axis and stays unreported
    assert _finding(RMS_AXIS, "ADP011", "# last") is not None
    assert _finding(RMS_AXIS, "ADP011", "# time") is None


# ----------------------------------------------------------------- a head over the vocabulary less one

VOCAB_LESS_ONE = """\
from torch import nn
from torch.nn import CrossEntropyLoss


class PixelLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.WIDTH, bias=False)

    def forward(self, ids, labels=None):
        logits = self.lm_head(self.wte(ids))  # head
        loss = None
        if labels is not None:
            shift_logits = logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()
            loss_fct = CrossEntropyLoss()
            loss = loss_fct(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))
        return loss, logits
"""


def test_head_over_the_vocabulary_less_a_token():
    # a Linear to the embedding's size less one (ImageGPT never predicts its start token) maps
    # to the vocabulary: its shifted per-position loss is the pair; the same Linear to the
    # number of labels less one is a classifier
    assert (
        _finding(VOCAB_LESS_ONE.replace("WIDTH", "vocab_size - 1"), "ADP015", "# head")
        is not None
    )
    assert (
        _finding(VOCAB_LESS_ONE.replace("WIDTH", "num_labels - 1"), "ADP015", "# head")
        is None
    )


# ----------------------------------------------------------------- a head module adding its own bias

BIAS_HEAD = """\
import torch
from torch import nn
from torch.nn import CrossEntropyLoss


class Embed(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.tokens = nn.Embedding(config.vocab_size, config.hidden_size)

    def forward(self, ids):
        return self.tokens(ids)


class MaskedHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.shortcut = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, h):
        h = self.norm(torch.tanh(self.dense(h)))
        h = self.decoder(h) + self.bias
        return h


class MaskedLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = Embed(config)
        self.head = MaskedHead(config)

    def forward(self, ids, labels=None):
        scores = self.head(self.embed(ids))  # head
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(scores.view(-1, self.config.vocab_size), labels.view(-1))
        return loss, scores
"""


def test_head_module_returning_its_decoder_plus_a_held_bias():
    # a same-file head whose forward returns its vocabulary Linear's output plus a bias vector it
    # holds is a vocabulary head; plus another layer's output it is a sum of two projections
    assert _finding(BIAS_HEAD, "ADP015", "# head") is not None
    two = BIAS_HEAD.replace(
        "self.decoder(h) + self.bias", "self.decoder(h) + self.shortcut(h)"
    )
    assert _finding(two, "ADP015", "# head") is None
