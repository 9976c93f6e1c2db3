"""ADP009 where the three projections are arguments of one statement that assigns their input
(yolov5's TransformerLayer: ``x = self.ma(self.q(x), self.k(x), self.v(x))[0] + x``).  The
statement's target is assigned after its value is evaluated, so the projections read the input
as it was: the fused call goes before the statement.  An input assigned between the
projections (a walrus in the value, a statement between them) still blocks the fix.  The fixed
module runs beside the original in float64."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import load  # noqa: E402

from adopter.ruleset import load_rules  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

ADP009 = [r for r in load_rules() if r.id == "ADP009"]

ONE_STATEMENT = textwrap.dedent('''
    import torch.nn as nn


    class TransformerLayer(nn.Module):
        def __init__(self, c=16, num_heads=2):
            super().__init__()
            self.q = nn.Linear(c, c, bias=False)
            self.k = nn.Linear(c, c, bias=False)
            self.v = nn.Linear(c, c, bias=False)
            self.ma = nn.MultiheadAttention(embed_dim=c, num_heads=num_heads)
            self.fc1 = nn.Linear(c, c, bias=False)

        def forward(self, x):
            x = self.ma(self.q(x), self.k(x), self.v(x))[0] + x
            return self.fc1(x) + x
''')


def _fix(source: str):
    return fix_text(source, "layer.py", ADP009)


def test_the_fused_call_goes_before_the_statement():
    result = _fix(ONE_STATEMENT)
    assert [f.rule for f in result.applied] == ["ADP009"], result.skipped
    lines = [line.strip() for line in result.text.splitlines()]
    at = lines.index("q_out, k_out, v_out = fused_qkv(x, self.q, self.k, self.v)")
    assert lines[at + 1] == "x = self.ma(q_out, k_out, v_out)[0] + x"
    original, new = load(ONE_STATEMENT, "orig"), load(result.text, "new")
    torch.manual_seed(0)
    a = original["TransformerLayer"]().double().eval()
    b = new["TransformerLayer"]().double().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(5, 2, 16, dtype=torch.float64)
    # float64, one product over 16 channels: the default float64 tolerances
    torch.testing.assert_close(b(x), a(x))


def test_an_input_assigned_inside_the_value_still_blocks():
    source = ONE_STATEMENT.replace("self.ma(self.q(x), self.k(x), self.v(x))",
                                   "self.ma(self.q(x), self.k(x := x * 2), self.v(x))")
    assert ":=" in source
    result = _fix(source)
    assert not result.applied
