"""An activation function held as a value (``self.act = act`` with ``act=F.gelu``, a method or
table choosing ``F.relu`` or ``F.gelu``) is called like a layer and computes that function:
found where it is (or may be at run time) the kernel's activation.  Fixed since session 34
(fixrate2) behind a TorchScript guard: eager code passes the function to the kernel, and
TorchScript, which cannot pass a function as a value, compiles the original."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = select_rules(load_rules(), ["ADP006", "ADP013"])

CODE = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Given(nn.Module):
        def __init__(self, d, nonlinearity=F.gelu):
            super().__init__()
            self.up = nn.Linear(d, 4 * d)
            self.nonlinearity = nonlinearity

        def forward(self, x):
            return self.nonlinearity(self.up(x))


    class Picked(nn.Module):
        def __init__(self, d, kind: str = "relu"):
            super().__init__()
            self.up = nn.Linear(d, d)
            self.fn = self.choose(kind)

        def choose(self, kind):
            return {"relu": F.relu, "gelu": torch.nn.functional.gelu}[kind]

        def forward(self, x):
            return self.fn(self.up(x))


    class Fixed(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.up = nn.Linear(d, d)
            self.fn = F.relu
            self.squash = torch.tanh

        def forward(self, x):
            return self.squash(self.fn(self.up(x)))


    class Gate(nn.Module):
        def __init__(self, d, gate_fn=F.silu):
            super().__init__()
            self.gate = nn.Linear(d, d)
            self.up = nn.Linear(d, d)
            self.gate_fn = gate_fn

        def forward(self, x):
            return self.gate_fn(self.gate(x)) * self.up(x)
""")


def _line(needle: str) -> int:
    return next(i for i, line in enumerate(CODE.split("\n"), 1) if needle in line)


def test_activation_functions_held_as_values_are_found_and_fixed():
    found = {(f.rule, f.line) for f in analyze(CODE, "block.py", RULES).findings}
    assert found == {
        ("ADP006", _line("return self.nonlinearity(self.up(x))")),  # F.gelu by default
        ("ADP006", _line("return self.fn(self.up(x))")),  # F.gelu when "gelu" is passed
        ("ADP013", _line("return self.gate_fn(self.gate(x)) * self.up(x)")),
    }  # not Fixed: F.relu, then torch.tanh (no activation the kernels take)
    # passed to the kernel in eager code, the original under TorchScript (fixrate2, session 34:
    # tests/test_fixrate2_forms.py runs these patches, eager and scripted)
    result = fix_text(CODE, "block.py", RULES)
    assert result.error is None and len(result.applied) == 3 and result.skipped == []
    assert result.text.count("torch.jit.is_scripting() else ") == 3


def test_a_fixed_other_function_is_not_a_gelu():
    code = CODE.replace("nonlinearity=F.gelu", "nonlinearity=F.relu").replace('"gelu": torch.nn.functional.gelu',
                                                                              '"tanh": torch.tanh')
    found = {(f.rule, f.line) for f in analyze(code, "block.py", RULES).findings}
    assert found == {("ADP013", _line("return self.gate_fn(self.gate(x)) * self.up(x)"))}
