"""Forms found missing (or reported wrongly) by the blind batch corpus8h (transformers 4.45.2
files: JetMoE's experts, Granite's LM head, ZoeDepth's patch transformer): each test states the
semantic fact the engine now reads, and a near-miss it must still leave alone."""

from __future__ import annotations

import textwrap
import types

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = {rid: select_rules(load_rules(), [rid]) for rid in ("ADP006", "ADP013", "ADP015")}


def _covered(code: str, needle: str, rule: str) -> bool:
    line = next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)
    return any(f.line <= line <= f.end_line for f in analyze(code, "model.py", RULES[rule]).findings)


EXPERTS = textwrap.dedent('''
    import torch
    from torch import nn
    from transformers.activations import ACT2FN


    class Experts(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.input_linear = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
            self.output_linear = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
            self.activation = ACT2FN[config.activation_function]

        def forward(self, x):
            h = self.input_linear(x)
            halves = h.chunk(2, dim=-1)
            h = self.activation(halves[GATE]) * halves[UP]
            return self.output_linear(h)
''')


def test_the_chunks_of_a_projection_read_by_index_are_its_halves():
    """``c = h.chunk(2, dim=-1)`` then ``act(c[0]) * c[1]`` (JetMoE's experts) is the SwiGLU of
    the two halves, as ``g, u = h.chunk(2, dim=-1)`` is; the product commutes, so gate second
    (``act(c[1]) * c[0]``) is the same kernel with the halves swapped."""
    needle = "h = self.activation("
    assert _covered(EXPERTS.replace("GATE", "0").replace("UP", "1"), needle, "ADP013")
    assert _covered(EXPERTS.replace("GATE", "1").replace("UP", "0"), needle, "ADP013")
    assert _covered(EXPERTS.replace("GATE", "-1").replace("UP", "0"), needle, "ADP013")
    # the same half twice is act(x) * x, no gated unit of two halves
    assert not _covered(EXPERTS.replace("GATE", "0").replace("UP", "0"), needle, "ADP013")
    # three chunks: halves[0] and halves[1] are not the two halves of the projection's last axis
    three = EXPERTS.replace("h.chunk(2, dim=-1)", "h.chunk(3, dim=-1)")
    assert not _covered(three.replace("GATE", "0").replace("UP", "1"), needle, "ADP013")
    # a whole use of the tuple later still reads both halves: not a site of a rule whose
    # intermediates must die (the gate half is read again)
    reread = EXPERTS.replace("GATE", "0").replace("UP", "1").replace(
        "return self.output_linear(h)", "return self.output_linear(h), halves")
    assert not _covered(reread, needle, "ADP013")


def test_a_chunk_tuple_rebound_before_the_read_is_not_the_projection_s_halves():
    read = "        h = self.activation("
    code = EXPERTS.replace("GATE", "0").replace("UP", "1")
    assert read in code
    assert not _covered(code.replace(read, "        halves = (x, x)\n" + read), read, "ADP013")


def test_the_fix_of_indexed_chunks_computes_what_the_original_does():
    torch = pytest.importorskip("torch")
    code = EXPERTS.replace("GATE", "1").replace("UP", "0").replace(
        "from transformers.activations import ACT2FN\n", "").replace(
        "ACT2FN[config.activation_function]", "nn.SiLU()")
    result = fix_text(code, "model.py", RULES["ADP013"])
    assert result.error is None and len(result.applied) == 1
    assert "liger_swiglu(halves[1], halves[0], self.activation)" in result.text
    config = types.SimpleNamespace(hidden_size=8, intermediate_size=6)
    modules = []
    for text in (code, result.text):
        namespace: dict = {}
        exec(compile(text, "model.py", "exec"), namespace)
        torch.manual_seed(0)
        modules.append(namespace["Experts"](config).double())
    modules[1].load_state_dict(modules[0].state_dict(), strict=True)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    # the same two operations on CPU (the kernel's fallback): equal to float64 rounding
    torch.testing.assert_close(modules[1](x), modules[0](x), rtol=1e-12, atol=1e-12)


ENCODER = textwrap.dedent('''
    from torch import nn
    from transformers.activations import ACT2FN


    class EncoderLayer(nn.Module):
        def __init__(self, config, dropout=0.1, activation="relu"):
            super().__init__()
            self.linear1 = nn.Linear(config.hidden_size, config.intermediate_size)
            self.dropout = nn.Dropout(dropout)
            self.linear2 = nn.Linear(config.intermediate_size, config.hidden_size)
            self.activation = ACT2FN[activation]

        def forward(self, src):
            return self.linear2(self.dropout(self.activation(self.linear1(src))))


    class Encoder(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.layers = nn.ModuleList([BUILD for _ in range(config.num_layers)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x
''')


def test_a_table_key_from_a_constructor_default_no_caller_in_the_file_changes():
    """ZoeDepth's patch transformer: ``ACT2FN[activation]`` with ``activation="relu"`` and the one
    construction in the file passing none is a fixed ReLU (as a constructor default of nn.SiLU
    is a fixed SiLU): not a GELU site.  A caller passing "gelu", or a key the callers choose at
    run time, keeps it one."""
    needle = "return self.linear2("
    assert not _covered(ENCODER.replace("BUILD", "EncoderLayer(config)"), needle, "ADP006")
    assert not _covered(ENCODER.replace("BUILD", 'EncoderLayer(config, activation="silu")'), needle, "ADP006")
    assert _covered(ENCODER.replace("BUILD", 'EncoderLayer(config, activation="gelu")'), needle, "ADP006")
    assert _covered(ENCODER.replace("BUILD", 'EncoderLayer(config, 0.1, "gelu")'), needle, "ADP006")
    assert _covered(ENCODER.replace("BUILD", "EncoderLayer(config, activation=config.act)"), needle, "ADP006")
    assert _covered(ENCODER.replace("BUILD", "EncoderLayer(config, **config.kwargs)"), needle, "ADP006")
    # the class handed on as a value (a factory may build it with any key): not decided here
    handed = ENCODER.replace("BUILD", "make(EncoderLayer, config)")
    assert _covered(handed, needle, "ADP006")
    # a subclass may pass another key to super().__init__
    sub = ENCODER.replace("BUILD", "EncoderLayer(config)") + textwrap.dedent('''

        class GeluLayer(EncoderLayer):
            def __init__(self, config):
                super().__init__(config, activation="gelu")
    ''')
    assert _covered(sub, needle, "ADP006")
