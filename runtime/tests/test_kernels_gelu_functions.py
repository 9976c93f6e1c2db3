"""bias_gelu given a GELU held as a plain Python function (``self.act = gelu`` with BERT's ``def
gelu(x): return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))``, fixed by ADP006 since session 34):
probed once on float64 like a stateless module, fused when it computes F.gelu; a function that
computes something else in float64 (fairseq's float32 upcast) or has state of its own (a closure)
runs as written."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from adopter_kernels import bias_gelu
from adopter_kernels.activations import _gelu_mode
from torch import nn


def formula(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def tanh_formula(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def upcast(x):
    return F.gelu(x.float()).type_as(x)


def scaled(scale):
    def gelu_times(x):
        return scale * F.gelu(x)

    return gelu_times


@pytest.mark.parametrize("fn, mode", [(formula, "none"), (tanh_formula, "tanh"), (upcast, None),
                                      (scaled(1.0), None)])
def test_plain_functions_are_probed(fn, mode):
    assert _gelu_mode(fn) == ((mode, None, None) if mode is not None else None)


@pytest.mark.parametrize("fn", [formula, tanh_formula, upcast, scaled(2.0)])
def test_bias_gelu_of_a_function_matches_the_expression(fn, equivalent):
    linear = nn.Linear(8, 16).double()
    x = torch.randn(4, 8, dtype=torch.float64)
    equivalent(lambda t, m: fn(m(t)), lambda t, m: bias_gelu(t, m, fn), [linear], [x])
