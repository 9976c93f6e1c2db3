"""Dev-corpus misses the file itself decides, read by what the code computes (session 42,
helper misses64).  The fixtures are ours.

- ADP006: an MLP whose layers are built as a comprehension of Linears, then put one by one
  into a list by ``for i, layer in enumerate(layers):`` (or ``for layer in layers:``), each
  followed by its activation, the list becoming ``nn.Sequential(*modules)`` (mnistvit's MLP):
  the loop variable is the comprehension's Linear, so a Linear -> GELU pair runs in the
  Sequential.  Near-misses: a fixed ReLU after each Linear, and a loop over a list of
  settings (no layer) whose body builds nothing the pair needs.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

LOOPED_MLP = textwrap.dedent("""\
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, sizes, activation="relu"):
            super().__init__()
            layers = [nn.Linear(i, j) for i, j in zip(sizes[:-1], sizes[1:])]
            modules = []
            for LOOP:
                modules.append(layer)
                if i < len(layers) - 1:
                    if activation == "relu":
                        modules.append(nn.ReLU())
                    elif activation == "gelu":
                        modules.append(ACT)  # pair
                    else:
                        raise ValueError(activation)
            self.stack = nn.Sequential(*modules)

        def forward(self, x):
            return self.stack(x)


    class Model(nn.Module):
        def __init__(self, head_activation="gelu"):
            super().__init__()
            self.head = MLP([8, 16, 4], activation=head_activation)

        def forward(self, x):
            return self.head(x)
""")


def _looped(loop: str = "i, layer in enumerate(layers)", act: str = "nn.GELU()") -> str:
    return LOOPED_MLP.replace("LOOP", loop).replace("ACT", act)


def test_comprehension_linears_appended_by_an_enumerate_loop_then_gelu():
    code = _looped()
    assert finding_at(code, "ADP006", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP006")).text
    assert "FoldingSequential(*modules)" in fixed
    a, b = float64_pair(code, fixed, "Model")
    x = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        y.copy_(x)
    # float64, 8- and 16-term dot products: far below 1e-10
    torch.testing.assert_close(b(y), a(x), rtol=0, atol=1e-10)
    a(x).sum().backward()
    b(y).sum().backward()
    torch.testing.assert_close(y.grad, x.grad, rtol=0, atol=1e-10)


def test_comprehension_linears_appended_by_a_plain_loop():
    code = _looped(loop="layer in layers").replace("if i < len(layers) - 1:", "if len(layers) > 1:")
    assert finding_at(code, "ADP006", "# pair") is not None


def test_looped_mlp_near_misses():
    # the activation after each Linear is a fixed ReLU on every path
    assert found(_looped(act="nn.ReLU()"), "ADP006") == []
    # the loop walks a list of settings, not layers: the appended value is no Linear
    settings = _looped().replace("layers = [nn.Linear(i, j) for i, j in zip(sizes[:-1], sizes[1:])]",
                                 "layers = [(i, j) for i, j in zip(sizes[:-1], sizes[1:])]")
    assert found(settings, "ADP006") == []
