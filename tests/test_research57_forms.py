"""Forms found while checking the blind batch research57 (speech and audio papers' code as
published: VibeVoice's diffusion head and tokenizer, FunCodec's attention, DualCodec's ConvNeXt
block, TangoFlux's training script, AudioLDM 2's attention, Audiobox Aesthetics' WavLM).  The
fixtures are ours.

- ADP006, missed: a feed-forward ``self.activation_fn(self.fc1(x))`` whose activation comes from
  a same-file factory keyed by a run-time string (``get_activation_fn(activation_fn)``, WavLM's,
  BEATs' and other fairseq-derived encoders), whose ``"gelu"`` branch returns the file's own
  ``def gelu(x): return F.gelu(x.float()).type_as(x)`` (GELU computed on an fp32 copy, cast back).
  A same-file function held as a value was read as a GELU only when its body writes the formula
  out (erf or tanh); one that calls ``F.gelu`` of its argument on every path, casts around it
  allowed, is the same activation (formulas.gelu_function, already used for sibling modules'
  functions).
Near-misses: the function shifts its argument (``F.gelu(x - 1)``), computes SiLU in fp32, or
scales the GELU (``F.gelu(x) * 2``); a factory whose every branch is a non-GELU.
"""
from __future__ import annotations

import textwrap

from corpus_forms import covered

FACTORY_FFN = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F


    def gelu(x):
        return F.gelu(x.float()).type_as(x)


    def get_activation_fn(activation):
        if activation == "relu":
            return F.relu
        elif activation == "gelu":
            return gelu
        elif activation == "linear":
            return lambda x: x
        else:
            raise RuntimeError(activation)


    class EncoderLayer(nn.Module):
        def __init__(self, dim, ffn_dim, activation_fn="relu"):
            super().__init__()
            self.activation_fn = get_activation_fn(activation_fn)
            self.fc1 = nn.Linear(dim, ffn_dim)
            self.fc2 = nn.Linear(ffn_dim, dim)

        def forward(self, x):
            x = self.activation_fn(self.fc1(x))
            return self.fc2(x)


    class Encoder(nn.Module):
        def __init__(self, args):
            super().__init__()
            self.layers = nn.ModuleList(
                [EncoderLayer(args.dim, args.ffn_dim, activation_fn=args.activation_fn) for _ in range(2)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x
    """)
FFN_NEEDLE = "x = self.activation_fn(self.fc1(x))"

HELD_FUNCTION = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F


    def gelu(x):
        return F.gelu(x.float()).type_as(x)


    class Mlp(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = gelu
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))
    """)
HELD_NEEDLE = "return self.fc2(self.act(self.fc1(x)))"


def test_factory_returning_a_same_file_fp32_gelu_function_is_found():
    assert covered(FACTORY_FFN, FFN_NEEDLE, "ADP006")


def test_same_file_fp32_gelu_function_held_as_an_attribute_is_found():
    assert covered(HELD_FUNCTION, HELD_NEEDLE, "ADP006")


def test_functions_that_are_not_gelu_are_not_read_as_gelu():
    body = "return F.gelu(x.float()).type_as(x)"
    for code in (FACTORY_FFN, HELD_FUNCTION):
        needle = FFN_NEEDLE if code is FACTORY_FFN else HELD_NEEDLE
        for other, why in (("return F.gelu(x - 1)", "a shifted input"),
                           ("return F.silu(x.float()).type_as(x)", "SiLU in fp32"),
                           ("return F.gelu(x) * 2", "a scaled GELU")):
            changed = code.replace(body, other)
            assert changed != code, why
            assert not covered(changed, needle, "ADP006"), why


def test_factory_without_a_gelu_branch_is_not_found():
    no_gelu = FACTORY_FFN.replace('    elif activation == "gelu":\n        return gelu\n', "")
    assert no_gelu != FACTORY_FFN
    assert not covered(no_gelu, FFN_NEEDLE, "ADP006")
