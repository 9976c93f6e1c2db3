"""Forms found while checking the blind batch research45 (official paper code on PyPI: Boltz,
Protenix, StripedHyena, TorchMD-Net, SpeechTokenizer, muP).  The fixtures are ours.

- ADP010: the softmax through a same-file helper that keeps the input's dtype, OpenFold's
  ``softmax_no_cast`` (Boltz's triangular attention): ``d = t.dtype``; ``if d is
  torch.bfloat16:`` the softmax under ``with torch.autocast("cuda", enabled=False):``, ``else:``
  the plain softmax, each assigned to a name that the function returns after the ``if``.  The
  helper reader (structure/formulas.softmax_formula) took only branches that return; it now
  also follows a branch that falls through to the statements after its ``if``, reads a ``with``
  that turns autocast off as its body (the input's dtype), a name holding the tensor's metadata
  and a name holding the softmax, returned later.
- ADP013: ``a = F.silu(a, True)`` (in place, the flag by position; Protenix's AF3 Transition,
  eval path) then ``b *= a``.  The activation step ``$act($g)`` read the call as written (two
  positional arguments); a layer variable's call now reads a function call as its canonical
  view when that moves the extra positional arguments to keywords, as ``F.silu(a,
  inplace=True)`` already read.
- Fix layout: a call rewritten with a keyword added (ADP012's ``fused=True``) whose argument
  spans lines (Boltz-2's ``betas=(`` then one beta a line) had those lines indented a second
  time by the block's indentation: the new text, parsed outside the block, kept the file's
  absolute indentation, and the block added its own when printed (synth/apply._in_block).
"""

from __future__ import annotations

import ast
import textwrap

from corpus_forms import covered, finding_at, float64_pair, rules

from adopter.structure.formulas import softmax_formula
from adopter.structure.names import collect_names
from adopter.synth import fix_text

HELPER_SOFTMAX = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    def softmax_no_cast(t, dim=-1):
        d = t.dtype
        if d is torch.bfloat16:
            with torch.autocast("cuda", enabled=False):
                s = torch.nn.functional.softmax(t, dim=dim)
        else:
            s = torch.nn.functional.softmax(t, dim=dim)
        return s


    def _attention(query, key, value, bias):
        key = key.transpose(-1, -2)
        a = torch.matmul(query, key)
        a = a + bias
        a = softmax_no_cast(a, -1)
        a = torch.matmul(a, value)
        return a


    class PairAttention(nn.Module):
        def __init__(self, c=8, c_hidden=4, heads=2):
            super().__init__()
            self.c_hidden = c_hidden
            self.heads = heads
            self.linear_q = nn.Linear(c, c_hidden * heads, bias=False)
            self.linear_k = nn.Linear(c, c_hidden * heads, bias=False)
            self.linear_v = nn.Linear(c, c_hidden * heads, bias=False)
            self.linear_o = nn.Linear(c_hidden * heads, c, bias=False)

        def forward(self, q_x, kv_x, bias):
            q = self.linear_q(q_x)
            k = self.linear_k(kv_x)
            v = self.linear_v(kv_x)
            q = q.view(q.shape[:-1] + (self.heads, -1)).transpose(-2, -3)
            k = k.view(k.shape[:-1] + (self.heads, -1)).transpose(-2, -3)
            v = v.view(v.shape[:-1] + (self.heads, -1)).transpose(-2, -3)
            q = q / math.sqrt(self.c_hidden)
            o = _attention(q, k, v, bias)
            o = o.transpose(-2, -3)
            return self.linear_o(o.reshape(o.shape[:-2] + (-1,)))
""")

NEEDLE = "a = softmax_no_cast(a, -1)"

# helper bodies that are not the softmax of their input over ``dim`` on every path
NOT_SOFTMAX = {
    "scaled after": "    s = torch.nn.functional.softmax(t, dim=dim)\n    s = s * 2.0\n    return s\n",
    "scaled by the scores after": "    s = torch.nn.functional.softmax(t, dim=dim)\n    s = s * t\n    return s\n",
    "autocast on": "    with torch.autocast(\"cuda\", enabled=True):\n"
                   "        s = torch.nn.functional.softmax(t, dim=dim)\n    return s\n",
    "other branch exp": "    if t.dtype is torch.bfloat16:\n        s = torch.nn.functional.softmax(t, dim=dim)\n"
                        "    else:\n        s = t.exp()\n    return s\n",
    "one branch only": "    if t.dtype is torch.bfloat16:\n        s = torch.nn.functional.softmax(t, dim=dim)\n"
                       "    return s\n",
    "dtypes differ": "    if t.dtype is torch.bfloat16:\n        s = torch.nn.functional.softmax(t, dim=dim)\n"
                     "    else:\n        s = torch.nn.functional.softmax(t, dim=dim, dtype=torch.float32)\n    return s\n",
    "fixed axis": "    s = torch.nn.functional.softmax(t, dim=0)\n    return s\n",
    "metadata cast back": "    d = t.dtype\n    s = torch.nn.functional.softmax(t, dim=dim)\n    return s.to(d)\n",
}


def _with_helper(body: str) -> str:
    start = HELPER_SOFTMAX.index("def softmax_no_cast")
    end = HELPER_SOFTMAX.index("def _attention")
    return HELPER_SOFTMAX[:start] + "def softmax_no_cast(t, dim=-1):\n" + body + "\n\n" + HELPER_SOFTMAX[end:]


def test_softmax_helper_with_fall_through_branches_is_found():
    assert covered(HELPER_SOFTMAX, NEEDLE, "ADP010")


def test_softmax_helper_assigned_then_returned_is_found():
    code = _with_helper("    s = torch.nn.functional.softmax(t, dim=dim)\n    return s\n")
    assert covered(code, NEEDLE, "ADP010")


def test_helpers_that_are_not_the_softmax_are_not_read_as_one():
    # formulas.softmax_formula: none of these is the softmax of its input over ``dim`` on every path
    for why, body in NOT_SOFTMAX.items():
        tree = ast.parse(_with_helper(body))
        func = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "softmax_no_cast")
        assert softmax_formula(func, collect_names(tree)) is None, why


def test_helpers_that_are_not_the_softmax_are_not_fixed():
    # (misses39) a helper the softmax reader refuses is inlined with the call's arguments, the
    # literal dim among them: a path whose steps are attention is then reported (a softmax on one
    # branch, a float32 softmax on one, a cast back to the input's dtype, autocast left on, a
    # number times the probabilities), as the same code written in the caller would be, and
    # declined by the fixer (the match spans the helper); none is rewritten
    for why, body in NOT_SOFTMAX.items():
        code = _with_helper(body)
        assert fix_text(code, "model.py", rules("ADP010")).text == code, why


def test_helpers_whose_paths_are_no_attention_are_not_found():
    for why in ("scaled by the scores after", "fixed axis"):
        assert not covered(_with_helper(NOT_SOFTMAX[why]), NEEDLE, "ADP010"), why


def test_helper_scaling_its_softmax_by_a_number_is_inlined_and_reported():
    # (misses39) the helper, inlined with the call's literal dim, computes softmax(a) * 2.0
    # before the value product: attention scaled by a number (misses37's head scale), reported
    # (not fixed: above), as when written in the caller
    assert finding_at(_with_helper(NOT_SOFTMAX["scaled after"]), "ADP010", NEEDLE) is not None


def test_softmax_helper_attention_fix_computes_the_same():
    import torch

    result = fix_text(HELPER_SOFTMAX, "model.py", rules("ADP010"))
    assert result.applied
    assert "scaled_dot_product_attention(" in result.text
    a, b = float64_pair(HELPER_SOFTMAX, result.text, "PairAttention")
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    y = torch.randn(2, 6, 8, dtype=torch.float64)
    bias = torch.randn(2, 2, 5, 6, dtype=torch.float64)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    out_a, out_b = a(xa, y, bias), b(xb, y, bias)
    torch.testing.assert_close(out_b, out_a)
    out_a.sum().backward()
    out_b.sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)


IN_PLACE_SWIGLU = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class Transition(nn.Module):
        def __init__(self, c=8, n=2):
            super().__init__()
            self.linear_a = nn.Linear(c, n * c, bias=False)
            self.linear_b = nn.Linear(c, n * c, bias=False)
            self.linear_out = nn.Linear(n * c, c, bias=False)

        def forward(self, y):
            a = self.linear_a(y)
            a = F.silu(a, True)
            b = self.linear_b(y)
            b *= a
            return self.linear_out(b)
""")


def test_silu_with_positional_inplace_flag_is_a_swiglu():
    assert covered(IN_PLACE_SWIGLU, "b *= a", "ADP013")


def test_positional_flag_of_another_activation_is_no_swiglu():
    code = IN_PLACE_SWIGLU.replace("F.silu(a, True)", "F.relu(a, True)")
    assert not covered(code, "b *= a", "ADP013")


def test_positional_inplace_silu_of_another_input_is_no_swiglu():
    code = IN_PLACE_SWIGLU.replace("def forward(self, y):", "def forward(self, y, z):").replace(
        "b = self.linear_b(y)", "b = self.linear_b(z)")
    assert not covered(code, "b *= a", "ADP013")


NESTED_OPTIMIZER = textwrap.dedent("""\
    import torch


    class Model(torch.nn.Module):
        def configure_optimizers(self):
            if self.decay:
                optimizer = torch.optim.AdamW(
                    self.parameters(),
                    betas=(
                        self.beta_1,
                        self.beta_2,
                    ),
                    lr=self.lr,
                )
            else:
                optimizer = torch.optim.AdamW(self.parameters(), betas=(self.beta_1, self.beta_2), lr=self.lr)
            return optimizer
""")


def test_multi_line_argument_keeps_its_indentation_when_a_keyword_is_added():
    # Boltz-2's configure_optimizers: the tuple's lines were indented a second time by the
    # block's indentation when the call was rewritten with fused=True (apply._in_block)
    result = fix_text(NESTED_OPTIMIZER, "model.py", rules("ADP012"))
    assert len(result.applied) == 2
    expected = NESTED_OPTIMIZER.replace(
        "                lr=self.lr,\n            )",
        "                lr=self.lr,\n                fused=True,\n            )").replace(
        "lr=self.lr)\n", "lr=self.lr, fused=True)\n")
    assert result.text == expected
    compile(result.text, "model.py", "exec")
