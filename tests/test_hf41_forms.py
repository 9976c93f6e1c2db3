"""Blind batch hf41 (transformers 4.45.2 model files): the form read by its computation.  The
fixtures are ours.

A module whose forward runs a GELU through a same-file ``torch.autograd.Function`` in training
and the same GELU formula itself otherwise (``if self.training: return Fn.apply(x)`` then
``return formula(x)``) computes GELU on every path, so a Linear straight into it is a
bias-GELU site (ADP006), as the Function-only module already was.  Near-misses: the eval path
returns its input (an identity), or another activation.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at

MLP = textwrap.dedent("""\
    import torch
    from torch import nn


    def tanh_gelu(x):
        return x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))


    def sigmoid_gate(x):
        return x * torch.sigmoid(1.702 * x)


    class TanhGeluFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            ctx.save_for_backward(inp)
            return tanh_gelu(inp)

        @staticmethod
        def backward(ctx, grad):
            (inp,) = ctx.saved_tensors
            t = torch.tanh(0.79788456 * inp * (1 + 0.044715 * inp * inp))
            return grad * (0.5 * (1 + t) + 0.5 * inp * (1 - t * t) * (0.79788456 + 0.1070322243 * inp * inp))


    class TrainEvalGelu(nn.Module):
        def __init__(self):
            super().__init__()

        def forward(self, x):
            if self.training:
                return TanhGeluFunction.apply(x)
            else:
                return EVAL(x)


    class Feedforward(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.up = nn.Linear(width, 4 * width)
            self.act = TrainEvalGelu()
            self.down = nn.Linear(4 * width, width)

        def forward(self, x):
            x = self.act(self.up(x))  # site
            return self.down(x)
""")


def test_linear_into_a_train_eval_gelu_module_is_a_bias_gelu_site():
    assert (
        finding_at(MLP.replace("EVAL(x)", "tanh_gelu(x)"), "ADP006", "# site")
        is not None
    )


def test_eval_path_returning_the_input_is_no_gelu():
    code = MLP.replace("return EVAL(x)", "return x")
    assert finding_at(code, "ADP006", "# site") is None


def test_eval_path_of_another_activation_is_no_gelu():
    assert (
        finding_at(MLP.replace("EVAL(x)", "sigmoid_gate(x)"), "ADP006", "# site")
        is None
    )
