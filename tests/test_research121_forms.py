"""research121 (session 46): a bias-free ``nn.Linear`` subclass whose forward accumulates its
output in float32 is still a Linear head (ADP015).

Blind batch research121 (transformers 5.25.0 model files) met a vocabulary head written as an
``nn.Linear`` subclass built with ``bias=False`` whose forward casts its input and its weight and
returns ``F.linear`` of them in float32 (on CUDA without autograd: ``torch.mm`` of the input's
rows and the transposed weight with ``out_dtype=torch.float32``, reshaped back to the input's
leading axes), its logits going into a vocabulary cross-entropy.  The fixtures are ours.

1. The form: such a head, with an optional cast of the input under an ``if`` and the product
   under a ``with`` block, is reported by ADP015; its forward computes the Linear of the input
   with its weight (float64 and float32 against ``F.linear``, CPU, the ``mm`` arm run as
   written on the CPU too).
2. Look-alikes that stay silent: the same forward on a base built with a bias (the forward
   would leave the bias out), an arm scaling the output, an arm returning the input, a product
   with the untransposed weight, a reshape back that is not onto the input's leading axes, a
   name rebound to something else under an ``if``.
"""

from __future__ import annotations

import textwrap

import pytest
import torch
import torch.nn.functional as F

from corpus_forms import found, line_of, load_fixture

HEAD = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Fp32Head(nn.Linear):
        def __init__(self, d_in, d_out, *, cast_input=False, rows_path=False):
            super().__init__(d_in, d_out, BIAS)
            self.cast_input = cast_input
            self.rows_path = rows_path

        def forward(self, hidden):
            if self.cast_input:
                hidden = hidden.to(self.weight.dtype)
            weight = self.weight.to(hidden.dtype)
            with torch.autocast("cpu", enabled=False):
                if self.rows_path or hidden.is_cuda:
                    out = torch.mm(hidden.reshape(-1, weight.shape[1]), WEIGHT_T, out_dtype=torch.float32)
                    return out.reshape(BACK)
                RETURN


    class TinyLM(nn.Module):
        def __init__(self, vocab=11, dim=8):
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.lm_head = Fp32Head(dim, vocab, cast_input=True)
            self.vocab = vocab

        def forward(self, ids, labels):
            logits = self.lm_head(self.embed(ids))  # head
            return F.cross_entropy(logits.view(-1, self.vocab), labels.view(-1))
""")

FORM = {"BIAS": "bias=False", "WEIGHT_T": "weight.T", "BACK": "*hidden.shape[:-1], weight.shape[0]",
        "RETURN": "return F.linear(hidden.float(), weight.float())"}


def _code(**changes) -> str:
    code = HEAD
    for key, value in {**FORM, **changes}.items():
        code = code.replace(key, value)
    return code


def _reported(code: str) -> bool:
    line = line_of(code, "# head")
    return any(f.line <= line <= f.end_line for f in found(code, "ADP015"))


def test_cast_linear_head_is_reported():
    assert _reported(_code())


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_cast_linear_head_computes_the_linear(dtype, tol):
    # the head's output is F.linear(x, W) cast to float32: the reading's premise, on the CPU
    # (the F.linear arm); tolerance: a float32 sum of 8 products
    head_cls = load_fixture(_code(), "Fp32Head")
    torch.manual_seed(0)
    head = head_cls(8, 11).to(dtype)
    x = torch.randn(2, 3, 8, dtype=dtype)
    got = head(x)
    torch.testing.assert_close(got, F.linear(x.float(), head.weight.float()), rtol=0, atol=tol)
    assert got.shape == (2, 3, 11) and got.dtype == torch.float32


def test_rows_arm_is_the_linear():
    # the mm arm's premise (its out_dtype runs on CUDA only): the input's rows times the
    # transposed weight, put back on the input's leading axes, is F.linear -- and the
    # look-alike putting them back flat is not the same shape
    torch.manual_seed(0)
    x, w = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(11, 8, dtype=torch.float64)
    rows = torch.mm(x.reshape(-1, w.shape[1]), w.T)
    torch.testing.assert_close(rows.reshape(*x.shape[:-1], w.shape[0]), F.linear(x, w), rtol=0, atol=1e-12)
    assert rows.reshape(-1, w.shape[0]).shape != F.linear(x, w).shape


@pytest.mark.parametrize("changes", [
    {"BIAS": "bias=True"},  # the forward leaves the base's bias out
    {"RETURN": "return F.linear(hidden.float(), weight.float()) * 2.0"},
    {"RETURN": "return hidden"},
    {"WEIGHT_T": "weight"},  # no transpose: not the Linear's product
    {"BACK": "-1, weight.shape[0]"},  # rows not put back on the input's leading axes
    {"RETURN": "hidden = hidden.exp()\n            return F.linear(hidden, weight)"},
], ids=["biased-base", "scaled", "identity", "untransposed", "flat-back", "rebound-input"])
def test_look_alikes_stay_silent(changes):
    assert not _reported(_code(**changes))


def test_if_arm_rebinding_another_value_is_silent():
    code = _code().replace("hidden = hidden.to(self.weight.dtype)", "hidden = hidden.to(self.weight.dtype) + 1.0")
    assert not _reported(code)


# review63 (session 46): only casts that keep the values may be stripped.  A weight rounded
# through an integer or bool dtype, logits computed in float16 (``.half()`` on the operands, or
# an autocast to float16 around the product) are another computation -- a float16/bfloat16
# downcast of the logits is ``skip`` by GUIDE's session-46 ruling.
@pytest.mark.parametrize("changes", [
    {"RETURN": "return F.linear(hidden.half(), weight.half())"},
    {"RETURN": "return F.linear(hidden.float(), weight.to(torch.int8).to(hidden.dtype))"},
    {"RETURN": "return F.linear(hidden.float(), weight.type(torch.bool).float())"},
    {"RETURN": "return F.linear(hidden.bfloat16(), weight.float())"},
    {'enabled=False': 'dtype=torch.float16'},
    {"out_dtype=torch.float32": "out_dtype=torch.float16", "RETURN": "return F.linear(hidden.float(), weight.float())"},
], ids=["half", "int8-weight", "bool-weight", "bf16-input", "autocast-fp16", "mm-fp16"])
def test_rounding_casts_stay_silent(changes):
    code = _code(**{k: v for k, v in changes.items() if k.isupper()})
    for key, value in changes.items():
        if not key.isupper():
            code = code.replace(key, value)
    assert not _reported(code)


@pytest.mark.parametrize("ret", [
    "return F.linear(hidden.to(torch.float32), weight.to(dtype=torch.float64)).to(hidden.dtype)",
    "return F.linear(hidden.type(torch.float32), weight.type_as(hidden).float())",
], ids=["to-float", "type-float"])
def test_value_keeping_casts_still_found(ret):
    assert _reported(_code(RETURN=ret))


def test_rounded_weight_is_not_the_linear():
    # the look-alikes' premise: the int8-rounded weight (or float16 logits) differ from F.linear
    torch.manual_seed(0)
    x, w = torch.randn(4, 8), torch.randn(11, 8)
    ref = F.linear(x, w)
    assert (F.linear(x, w.to(torch.int8).to(x.dtype)) - ref).abs().max() > 0.1
    assert (F.linear(x.half(), w.half()).float() - ref).abs().max() > 1e-4
