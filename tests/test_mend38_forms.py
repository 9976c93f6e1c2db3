"""Mends of session 37's review of merged work (helper mend38).  The fixtures are ours.

- ADP010's value product written as mul + sum (structure/singletons.py ``_mul_sum``): a sum
  dim written from the front counts from the column's rank only where nothing adds a leading
  axis -- ``repeat`` with exactly that many sizes, the other factor an operand of the product
  (or what it was transposed from), ``expand_as`` of such an operand.  A fourth size to
  ``repeat``, a 4-D other factor or an ``expand_as`` of anything else move the front-counted
  axis: the product stays unread, where before it was rewritten with a changed output shape.
  Look-alike kept: a ``repeat`` with a size other than 1 before the last (more rows).
- ADP005, a LayerNorm written out under ``if not self.<flag>:``: read only where the flag stays
  False -- near-misses: the parameter rebound in ``__init__``, a method or a builder writing
  ``.<flag>`` (or ``setattr``) after ``__init__`` stored it.
- ADP006, ``nn.ReLU() if act == "relu" else nn.GELU()`` decided from the file's builds only
  where ``act`` is never rebound (a tuple unpacking, a loop target, ``:=``): the GELU branch
  stays a site otherwise.
- ADP010, one-query scores cast again before the softmax (``e.float().type_as(e)``): found, and
  the fixer declines it (sdpa.py's RECAST skip).
"""

from __future__ import annotations

import textwrap

import pytest

from corpus_forms import covered, finding_at, float64_pair, rules

from adopter.synth import fix_text

# one query per batch row, keys-first scores from bmm (rank 3), the value product written as
# the repeated column times the values, summed over the keys' axis counted from the front
ROW_SUM = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class RowSum(nn.Module):
        def forward(self, mem, state, extra):
            w = torch.bmm(mem, state.unsqueeze(2)).squeeze(2)
            p = F.softmax(w, 1)
            return torch.mul(p.unsqueeze(2).repeat(1, 1, mem.size(2)), mem).sum(1)
""")
ROW_SUM_SOFTMAX = "p = F.softmax(w, 1)"


def _inputs(torch):
    mem = torch.randn(3, 7, 5, dtype=torch.float64)
    state = torch.randn(3, 5, dtype=torch.float64)
    return mem, state, torch.randn(2, 3, 7, 5, dtype=torch.float64)


def test_front_counted_mul_sum_of_certain_rank_is_fixed_to_the_same_attention():
    import torch

    assert finding_at(ROW_SUM, "ADP010", ROW_SUM_SOFTMAX) is not None
    result = fix_text(ROW_SUM, "model.py", rules("ADP010"))
    assert len(result.applied) == 1 and "softmax" not in result.text
    a, b = float64_pair(ROW_SUM, result.text, "RowSum")
    args = _inputs(torch)
    out_a, out_b = a(*args), b(*args)
    assert out_a.shape == out_b.shape == (3, 5)
    # float64, sums over 7 keys and 5 channels: agreement to rounding
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("old, new", [
    # a fourth size puts a leading axis in front: sum(1) is then the batch axis
    (".repeat(1, 1, mem.size(2))", ".repeat(1, 1, 1, mem.size(2))"),
    # the other factor is 4-D: broadcasting puts a leading axis in front
    ("torch.mul(p.unsqueeze(2).repeat(1, 1, mem.size(2)), mem)", "(p.unsqueeze(2) * extra)"),
    # expand_as a tensor of unknown rank
    (".repeat(1, 1, mem.size(2))", ".expand_as(extra)"),
])
def test_front_counted_mul_sum_of_uncertain_rank_is_no_site(old, new):
    import torch

    code = ROW_SUM.replace(old, new)
    assert code != ROW_SUM
    a = float64_pair(code, code, "RowSum")[0]
    # the original reads another axis than the keys' (the output shape tells)
    assert a(*_inputs(torch)).shape != (3, 5)
    assert not covered(code, ROW_SUM_SOFTMAX, "ADP010")
    result = fix_text(code, "model.py", rules("ADP010"))
    assert not result.applied and result.text == code


@pytest.mark.parametrize("old, new", [
    (".repeat(1, 1, mem.size(2))", ".expand_as(mem)"),  # an operand of the product: rank 3
    ("torch.mul(p.unsqueeze(2).repeat(1, 1, mem.size(2)), mem).sum(1)",
     "(p.unsqueeze(2) * extra).sum(-2)"),  # written from the back: the keys' axis whatever leads
])
def test_mul_sum_whose_keys_axis_is_certain_is_fixed_to_the_same_attention(old, new):
    import torch

    code = ROW_SUM.replace(old, new)
    assert code != ROW_SUM
    assert finding_at(code, "ADP010", ROW_SUM_SOFTMAX) is not None
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 1 and "softmax" not in result.text
    a, b = float64_pair(code, result.text, "RowSum")
    args = _inputs(torch)
    out_a, out_b = a(*args), b(*args)
    assert out_a.shape == out_b.shape
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)


# ADP005: a LayerNorm written out under ``if not self.<flag>:`` (structure/formulas.py
# flagged_layer_norm_module), read as a LayerNorm only where the flag stays at its False
# default: every build leaves it, __init__ never rebinds the parameter, and nothing else in the
# file writes the attribute (layers.py ``_flag_left_off`` over ``_always_constant``)
GATED_NORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class GatedNorm(nn.Module):
        def __init__(self, width, eps=1e-6, scaled=False, cond=None):
            super().__init__()
            self.g = nn.Parameter(torch.ones(width))
            self.b = nn.Parameter(torch.zeros(width))
            self.eps = eps
            REBIND
            self.scaled = scaled
            self.proj = nn.Linear(width, width) if scaled else None

        def forward(self, x):
            if not self.scaled:
                mu = x.mean(-1, keepdim=True)
                var = (x - mu).pow(2).mean(-1, keepdim=True)
                return self.g * ((x - mu) / torch.sqrt(var + self.eps)) + self.b
            else:
                x, c = x
                return (self.g + self.proj(c)) * x + self.b

        METHOD


    class Block(nn.Module):
        def __init__(self, width, p):
            super().__init__()
            self.fc = nn.Linear(width, width)
            self.norm = GatedNorm(width, eps=1e-5)
            self.drop = nn.Dropout(p)
            AFTER

        def forward(self, h, skip):
            return self.norm(self.drop(self.fc(h)) + skip)
""")
GATED_NEEDLE = "return self.norm(self.drop(self.fc(h)) + skip)"


def _gated(rebind="pass", method="pass", after="pass"):
    return GATED_NORM.replace("REBIND", rebind).replace("METHOD", method).replace("AFTER", after)


def test_flagged_layer_norm_left_off_everywhere_is_a_layer_norm():
    assert finding_at(_gated(), "ADP005", GATED_NEEDLE) is not None


@pytest.mark.parametrize("parts", [
    {"rebind": "if cond is not None:\n            scaled = True"},  # the parameter rebound
    {"method": "def condition(self):\n            self.scaled = True"},  # a method turns it on
    {"after": "self.norm.scaled = True"},  # a builder turns it on after __init__
    {"after": "setattr(self.norm, 'scaled', True)"},
])
def test_flagged_layer_norm_whose_flag_may_turn_on_is_not(parts):
    code = _gated(**parts)
    assert code != _gated()
    assert finding_at(code, "ADP005", GATED_NEEDLE) is None


# ADP006: ``nn.ReLU() if act == "relu" else nn.GELU()`` decided by what the file's builds pass
# (layers.py ``_built_key_branch``) only where the function never rebinds ``act``
KEYED_ACT = textwrap.dedent("""\
    from torch import nn


    class MixerLayer(nn.Module):
        def __init__(self, width, hidden, act="relu", wide=False):
            super().__init__()
            REBIND
            self.mlp = nn.Sequential(
                nn.Linear(width, hidden),
                nn.ReLU() if act == "relu" else nn.GELU(),
                nn.Linear(hidden, width),
            )

        def forward(self, x):
            return x + self.mlp(x)


    class Mixer(nn.Module):
        def __init__(self, depth, width, hidden):
            super().__init__()
            self.layers = nn.ModuleList([MixerLayer(width, hidden, wide=True) for _ in range(depth)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x
""")
KEYED_NEEDLE = "nn.Linear(width, hidden),"


def test_keyed_activation_every_build_leaves_at_relu_is_no_site():
    assert finding_at(KEYED_ACT.replace("REBIND", "pass"), "ADP006", KEYED_NEEDLE) is None


@pytest.mark.parametrize("rebind", [
    'act, _ = ("gelu", 0) if wide else (act, 0)',
    'for act in ["gelu"] if wide else []: pass',
    'if wide: (act := "gelu")',
])
def test_keyed_activation_whose_parameter_is_rebound_keeps_its_gelu_branch(rebind):
    assert finding_at(KEYED_ACT.replace("REBIND", rebind), "ADP006", KEYED_NEEDLE) is not None


def test_repeat_of_the_column_along_a_leading_axis_is_no_site():
    """``repeat`` broadcasts the column along the last axis only when every other size is 1: a 2
    on the batch axis doubles the rows (sum(1) then sums another tensor's keys)."""
    code = ROW_SUM.replace(".repeat(1, 1, mem.size(2))", ".repeat(2, 1, mem.size(2))")
    assert code != ROW_SUM
    assert not covered(code, ROW_SUM_SOFTMAX, "ADP010")
    assert not fix_text(code, "model.py", rules("ADP010")).applied


# one-query keys-first attention whose squeezed scores are upcast then cast back before the
# softmax (sdpa.py RECAST): the softmax computes in the recast dtype, which the plan does not follow
RECAST_SCORES = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Pointer(nn.Module):
        def __init__(self, d_in=6, d_key=5):
            super().__init__()
            self.lift = nn.Linear(d_in, d_key, bias=False)

        def forward(self, state, bank):
            h = self.lift(state)
            e = torch.matmul(bank, h.unsqueeze(-1)).squeeze(-1)
            e = e.float().type_as(e)
            a = F.softmax(e, dim=-1)
            return torch.tanh(torch.matmul(a.unsqueeze(-2), bank).squeeze(-2))
""")


def test_scores_cast_again_before_the_softmax_are_found_and_not_rewritten():
    assert finding_at(RECAST_SCORES, "ADP010", "a = F.softmax(e, dim=-1)") is not None
    result = fix_text(RECAST_SCORES, "model.py", rules("ADP010"))
    assert not result.applied and result.text == RECAST_SCORES
    # (misses52's cast-back reading, merged beside this test, now names the cast's dtype first:
    # either reason declines the re-cast scores)
    reason = str(result.skipped[0][1]) if len(result.skipped) == 1 else ""
    assert "cast again" in reason or "cast to the dtype of `e`" in reason
