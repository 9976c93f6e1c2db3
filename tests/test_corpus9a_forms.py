"""Forms found missing by the blind batch corpus9a (speech, audio, tabular and time-series research
code: s3prl's Mockingjay, espnet's and SenseVoice's attention, a-unet, stable-audio-tools): each
test states the semantic fact the engine now reads, and a near-miss it must still leave alone.  The
fixtures are ours, written in those projects' styles."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = load_rules()


def _findings(code: str, rule: str):
    return analyze(code, "model.py", select_rules(RULES, [rule])).findings


def _covered(code: str, needle: str, rule: str) -> bool:
    line = next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)
    return any(f.line <= line <= f.end_line for f in _findings(code, rule))


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
    # reported, not rewritten: the kernel takes a layer, not a function held as a value
    result = fix_text(FUNCTION_TABLE, "model.py", select_rules(RULES, ["ADP006"]))
    assert not result.applied and result.text == FUNCTION_TABLE
    assert [why for _, why in result.skipped] and all("function held as a value" in why for _, why in result.skipped)
