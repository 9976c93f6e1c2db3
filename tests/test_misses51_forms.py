"""Forms of session 36's research first-sight misses (helper misses51).  The fixtures are ours.

- ADP010, one-query (Luong) attention in the keys-first layout, as fastNLP's decoder attention
  and fairseq-era seq2seq code write it: ``s = torch.matmul(keys, x.unsqueeze(-1)).squeeze(-1)``,
  the squeezed scores upcast, filled and cast back (``s.float().masked_fill_(pad, -inf)
  .type_as(s)``), ``p = F.softmax(s, dim=-1)``, then ``torch.matmul(p.unsqueeze(1), keys)``.
  The unsqueeze puts the size-1 axis back at the *other* of the two last axes: the
  probabilities transposed (structure/singletons.py), at rank 3 when written from the front of
  a ``matmul`` (``assumed_rank``).  Casts and (keys-first only) a fill may sit between the
  squeeze and the softmax; the keys-first alternative of ADP010 takes an upcast before the fill
  and a cast after it.
- ADP010, Luong's general attention as wavencoder writes it: dims counted from the front of a
  matmul of unknown rank (``(q @ W).unsqueeze(1) @ v.transpose(1, 2)``, ``.squeeze(1)``,
  ``softmax(w, 1)``), read at rank 3 (assumed, checked by a fix at run time); the squeezed
  scores divided by a number (``/ math.sqrt(self.d)``); the value product written as a
  multiplication summed over the keys' axis (``torch.mul(p.unsqueeze(2).repeat(1, 1, D),
  v).sum(1)``, ``(p.unsqueeze(2) * v).sum(1)``), the probabilities' row times v.
- Look-alikes kept as no site: the probabilities unsqueezed at a batch axis, a softmax over the
  batch axis, a fill on *queries-first* squeezed scores (its mask would reach the fused call
  laid out for the squeezed scores), a tensor divisor, a squeeze of an axis no operand made size
  1, a mul + sum over the channels, of the row, with keepdim, or whose product is read again.
"""

from __future__ import annotations

import textwrap

import pytest
import torch

from corpus_forms import covered, finding_at, float64_pair, rules

from adopter.synth import fix_text

LUONG = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Luong(nn.Module):
        def __init__(self, d_in=6, d_key=5):
            super().__init__()
            self.input_proj = nn.Linear(d_in, d_key, bias=False)

        def forward(self, inp, keys, keep):
            x = self.input_proj(inp)
            s = torch.matmul(keys, x.unsqueeze(-1)).squeeze(-1)
            if keep is not None:
                s = s.float().masked_fill_(keep.eq(0), float("-inf")).type_as(s)
            p = F.softmax(s, dim=-1)
            ctx = torch.matmul(p.unsqueeze(1), keys).squeeze(1)
            return torch.tanh(ctx), p
""")
SOFTMAX = "p = F.softmax(s, dim=-1)"

# the same attention with the rank fixed by bmm, no mask, the probabilities not returned
BMM = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class OneQuery(nn.Module):
        def __init__(self, d=5):
            super().__init__()
            self.proj = nn.Linear(d, d)

        def forward(self, inp, keys):
            x = self.proj(inp)
            s = torch.bmm(keys, x.unsqueeze(2)).squeeze(2)
            p = F.softmax(s, dim=1)
            return torch.bmm(p.unsqueeze(1), keys).squeeze(1)
""")
BMM_SOFTMAX = "p = F.softmax(s, dim=1)"

# every dim written from the back of a matmul: no rank assumed
FROM_BACK = BMM.replace("torch.bmm(keys, x.unsqueeze(2)).squeeze(2)", "torch.matmul(keys, x.unsqueeze(-1)).squeeze(-1)") \
    .replace("F.softmax(s, dim=1)", "F.softmax(s, dim=-1)") \
    .replace("torch.bmm(p.unsqueeze(1), keys)", "torch.matmul(p.unsqueeze(-2), keys)")


def test_keys_first_luong_attention_with_a_cast_fill_is_a_site():
    assert finding_at(LUONG, "ADP010", SOFTMAX) is not None


def test_its_cast_round_trip_and_its_fill_each_alone_are_sites():
    cast_only = LUONG.replace('s.float().masked_fill_(keep.eq(0), float("-inf")).type_as(s)', "s.float()")
    fill_only = LUONG.replace('s.float().masked_fill_(keep.eq(0), float("-inf")).type_as(s)',
                              's.masked_fill(keep.eq(0), float("-inf"))')
    assert cast_only != LUONG and fill_only != LUONG
    assert finding_at(cast_only, "ADP010", SOFTMAX) is not None
    assert finding_at(fill_only, "ADP010", SOFTMAX) is not None


def test_the_mask_on_keys_first_scores_is_never_rewritten():
    """The fixer declines it: the squeezed scores' rank is not fixed by the code (a matmul) and
    the probabilities are returned besides (a fill on squeezed keys-first scores of a known rank
    is read since research107: tests/test_research107_forms.py); the file stays as written."""
    result = fix_text(LUONG, "model.py", rules("ADP010"))
    assert not result.applied and len(result.skipped) == 1 and result.text == LUONG


@pytest.mark.parametrize("code, cls_softmax", [(BMM, BMM_SOFTMAX), (FROM_BACK, "p = F.softmax(s, dim=-1)")])
def test_probabilities_unsqueezed_transposed_fix_to_the_same_attention(code, cls_softmax):
    import torch

    assert finding_at(code, "ADP010", cls_softmax) is not None
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 1 and not result.skipped
    fixed = result.text
    assert "scaled_dot_product_attention(" in fixed and "softmax" not in fixed
    a, b = float64_pair(code, fixed, "OneQuery")
    inp = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(3, 7, 5, dtype=torch.float64, requires_grad=True)
    inp2, keys2 = (t.detach().clone().requires_grad_(True) for t in (inp, keys))
    out_a, out_b = a(inp, keys), b(inp2, keys2)
    assert out_a.shape == out_b.shape == (3, 5)
    # float64, sums over 5 channels and 7 keys: agreement to rounding
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(inp2.grad, inp.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(keys2.grad, keys.grad, rtol=1e-12, atol=1e-12)


def test_probabilities_unsqueezed_at_a_batch_axis_are_no_site():
    code = BMM.replace("torch.bmm(p.unsqueeze(1), keys)", "torch.bmm(p.unsqueeze(0), keys)")
    assert code != BMM
    assert not covered(code, BMM_SOFTMAX, "ADP010")


def test_a_softmax_over_the_batch_axis_is_no_site():
    code = BMM.replace("F.softmax(s, dim=1)", "F.softmax(s, dim=0)")
    assert code != BMM
    assert not covered(code, "p = F.softmax(s, dim=0)", "ADP010")


def test_a_fill_on_queries_first_squeezed_scores_is_not_rewritten():
    """``(x.unsqueeze(-2) @ keys^T).squeeze(-2)`` filled, then the probabilities unsqueezed back
    at -2: the fill's mask is laid out for the squeezed (batch, keys) scores, which the fused
    call would broadcast against (batch, 1, keys) -- left unread, never rewritten.  The mask is
    a parameter (the fix could pass it on as written: only the reading's guard stops it)."""
    code = FROM_BACK.replace("torch.matmul(keys, x.unsqueeze(-1)).squeeze(-1)",
                             "torch.matmul(x.unsqueeze(-2), keys.transpose(-2, -1)).squeeze(-2)") \
        .replace("def forward(self, inp, keys):", "def forward(self, inp, keys, pad):") \
        .replace("        p = F.softmax", "        s = s.masked_fill(pad, float(\"-inf\"))\n        p = F.softmax")
    assert "masked_fill(pad" in code and "x.unsqueeze(-2)" in code and "keys, pad)" in code
    assert not covered(code, "p = F.softmax(s, dim=-1)", "ADP010")
    result = fix_text(code, "model.py", rules("ADP010"))
    assert not result.applied and result.text == code


# Luong's general (multiplicative) attention as research code writes it: every dim from the
# front of a matmul of unknown rank, the squeezed scores divided by a number
GENERAL = textwrap.dedent("""\
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class General(nn.Module):
        def __init__(self, d=5):
            super().__init__()
            self.d = d
            self.W = nn.Parameter(torch.randn(d, d))
            self.temp = nn.Parameter(torch.ones(7))

        def forward(self, values, query):
            w = (query @ self.W).unsqueeze(1) @ values.transpose(1, 2)
            w = w.squeeze(1) / math.sqrt(self.d)
            p = F.softmax(w, 1)
            return torch.bmm(p.unsqueeze(1), values).squeeze(1)
""")
GENERAL_SOFTMAX = "p = F.softmax(w, 1)"


def test_front_counted_one_query_attention_scaled_by_a_number_is_a_site():
    """Read at rank 3; since rafix65 the fix checks the ranks of the query operand's leaves at run
    time (`query.dim()`, `self.W.dim()`, `values.dim()`) and takes the fused call only where
    they hold, so the patched module computes what the original does."""
    assert finding_at(GENERAL, "ADP010", GENERAL_SOFTMAX) is not None
    patched = fix_text(GENERAL, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention" in patched and ".dim()" in patched
    spaces = [{}, {}]
    exec(compile(GENERAL, "original.py", "exec"), spaces[0])
    exec(compile(patched, "patched.py", "exec"), spaces[1])
    torch.manual_seed(0)
    original = spaces[0]["General"]().double()
    fused = spaces[1]["General"]().double()
    fused.load_state_dict(original.state_dict(), strict=True)
    values, query = torch.randn(3, 7, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    torch.testing.assert_close(fused(values, query), original(values, query))


@pytest.mark.parametrize("old, new", [
    ("/ math.sqrt(self.d)", "/ self.temp"),  # a tensor: laid out for the squeezed scores
    ("F.softmax(w, 1)", "F.softmax(w, 0)"),  # over the batch rows at rank 3
    ("(query @ self.W).unsqueeze(1)", "(query @ self.W).unsqueeze(2)"),  # no size-1 axis squeezed
])
def test_front_counted_look_alikes_are_no_site(old, new):
    code = GENERAL.replace(old, new)
    assert code != GENERAL
    needle = "p = F.softmax(w, 0)" if "softmax(w, 0)" in new else GENERAL_SOFTMAX
    assert not covered(code, needle, "ADP010")


# the value product written as a multiplication summed over the keys' axis
MUL_SUM = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class MulSum(nn.Module):
        def forward(self, values, query):
            w = torch.bmm(values, query.unsqueeze(2)).squeeze(2)
            p = F.softmax(w, 1)
            return (p.unsqueeze(2) * values).sum(1)
""")
MUL_SUM_SOFTMAX = "p = F.softmax(w, 1)"
# queries-first scores from the back, the column broadcast by repeat, torch.mul
MUL_SUM_REPEAT = MUL_SUM.replace("torch.bmm(values, query.unsqueeze(2)).squeeze(2)",
                                 "torch.matmul(query.unsqueeze(-2), values.transpose(-2, -1)).squeeze(-2)") \
    .replace("F.softmax(w, 1)", "F.softmax(w, -1)") \
    .replace("(p.unsqueeze(2) * values).sum(1)", "torch.mul(p.unsqueeze(-1).repeat(1, 1, values.size(-1)), values).sum(-2)")


@pytest.mark.parametrize("code, needle", [(MUL_SUM, MUL_SUM_SOFTMAX), (MUL_SUM_REPEAT, "p = F.softmax(w, -1)")])
def test_a_value_product_written_as_mul_and_sum_is_fixed_to_the_same_attention(code, needle):
    import torch

    assert finding_at(code, "ADP010", needle) is not None
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 1 and "softmax" not in result.text
    a, b = float64_pair(code, result.text, "MulSum")
    values = torch.randn(3, 7, 5, dtype=torch.float64, requires_grad=True)
    query = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    values2, query2 = (t.detach().clone().requires_grad_(True) for t in (values, query))
    out_a, out_b = a(values, query), b(values2, query2)
    assert out_a.shape == out_b.shape == (3, 5)
    # float64, sums over 5 channels and 7 keys: agreement to rounding
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(values2.grad, values.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(query2.grad, query.grad, rtol=1e-12, atol=1e-12)


def test_luong_general_attention_with_every_reading_at_once_is_a_site():
    """wavencoder's form: front-counted dims, a scale by a number after the squeeze, the value
    product as mul + sum of the repeated column, the scores made in a helper."""
    body = GENERAL.index("    def forward(")
    code = GENERAL[:body] + textwrap.indent(textwrap.dedent("""\
        def forward(self, values, query):
            w = self._scores(values, query)
            p = F.softmax(w, 1)
            return torch.mul(p.unsqueeze(2).repeat(1, 1, values.size(2)), values).sum(1)

        def _scores(self, values, query):
            w = (query @ self.W).unsqueeze(1) @ values.transpose(1, 2)
            return w.squeeze(1) / math.sqrt(self.d)
    """), " " * 4)
    assert "_scores" in code
    assert finding_at(code, "ADP010", GENERAL_SOFTMAX) is not None


@pytest.mark.parametrize("old, new", [
    ("(p.unsqueeze(2) * values).sum(1)", "(p.unsqueeze(2) * values).sum(2)"),  # over the channels
    ("(p.unsqueeze(2) * values).sum(1)", "(p.unsqueeze(1) * values).sum(1)"),  # the row: keys meet channels
    ("(p.unsqueeze(2) * values).sum(1)", "(p.unsqueeze(2) * values).sum(1, keepdim=True)"),
    ("return (p.unsqueeze(2) * values).sum(1)", "t = p.unsqueeze(2) * values\n        return t.sum(1), t"),
])
def test_mul_sum_look_alikes_are_no_site(old, new):
    code = MUL_SUM.replace(old, new)
    assert code != MUL_SUM
    assert not covered(code, MUL_SUM_SOFTMAX, "ADP010")
