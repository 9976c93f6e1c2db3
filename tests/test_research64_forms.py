"""Forms found while checking the blind batch of research64 (research model packages split over
several modules: layers in one, blocks in another, mixins that borrow the host model's layers in
a third).  The fixtures are ours.

- A mixin's forward that reads one row of the host's layer list through a local name
  (``origin = self.host.layers[i].mlp``) and calls a layer of that row (``origin.fc_in(x)``):
  the call is that row's layer applied to ``x``, so ``act(origin.fc_in(x)) * self.w2[i](x)``
  with a SiLU act is a SwiGLU gate (the kernel fuses ``silu(a) * b`` whatever computed a and b).
Near-misses: the same borrowed layer under a fixed sigmoid (GLU) or GELU (GeGLU) gate stays
unreported; so does a product whose second factor is not a projection of the same input.
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

BORROWED = """\
import torch
from torch import nn


class Row(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.mlp = nn.Module()
        self.mlp.fc_in = nn.Linear(dim, hidden)
        self.mlp.fc_out = nn.Linear(hidden, dim)


class Host(nn.Module):
    def __init__(self, dim, hidden, layers):
        super().__init__()
        self.layers = nn.ModuleList([Row(dim, hidden) for _ in range(layers)])


class GatedMixin(nn.Module):
    def __init__(self, host, layers, dim, hidden, act_layer=nn.SiLU):
        super().__init__()
        self.host = host
        self.w2 = nn.ModuleList([nn.Linear(dim, hidden) for _ in range(layers)])
        self.act = act_layer()

    def mlp_forward(self, x, layer_id):
        origin = self.host.layers[layer_id].mlp
        x1 = origin.fc_in(x)
        x2 = self.w2[layer_id](x)
        hidden = self.act(x1) * x2
        return origin.fc_out(hidden)
"""

LOOK_ALIKES = """\
import torch
from torch import nn


class SigmoidGate(nn.Module):
    def __init__(self, host, layers, dim, hidden):
        super().__init__()
        self.host = host
        self.w2 = nn.ModuleList([nn.Linear(dim, hidden) for _ in range(layers)])

    def mlp_forward(self, x, layer_id):
        origin = self.host.layers[layer_id].mlp
        hidden = torch.sigmoid(origin.fc_in(x)) * self.w2[layer_id](x)
        return origin.fc_out(hidden)


class GeluGate(nn.Module):
    def __init__(self, host, layers, dim, hidden):
        super().__init__()
        self.host = host
        self.w2 = nn.ModuleList([nn.Linear(dim, hidden) for _ in range(layers)])
        self.act = nn.GELU()

    def mlp_forward(self, x, layer_id):
        origin = self.host.layers[layer_id].mlp
        hidden = self.act(origin.fc_in(x)) * self.w2[layer_id](x)
        return origin.fc_out(hidden)


class OtherInput(nn.Module):
    def __init__(self, host, layers, dim, hidden):
        super().__init__()
        self.host = host
        self.w2 = nn.ModuleList([nn.Linear(dim, hidden) for _ in range(layers)])
        self.act = nn.SiLU()

    def mlp_forward(self, x, y, layer_id):
        origin = self.host.layers[layer_id].mlp
        hidden = self.act(origin.fc_in(x)) * self.w2[layer_id](y)
        return origin.fc_out(hidden)
"""


def test_gate_of_a_borrowed_row_layer_is_a_swiglu():
    lines = [(f.line, f.end_line) for f in found(BORROWED, "ADP013")]
    anchor = line_of(BORROWED, "hidden = self.act(x1) * x2")
    assert any(start <= anchor <= end for start, end in lines)


def test_borrowed_layers_under_other_gates_stay_unreported():
    assert found(LOOK_ALIKES, "ADP013") == []


def test_the_fix_computes_the_same_gate():
    import torch

    fixed = fix_text(BORROWED, "model.py", rules("ADP013")).text
    assert "liger_swiglu(origin.fc_in(x), self.w2[layer_id](x), self.act)" in fixed
    original, patched = {}, {}
    exec(compile(BORROWED, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    host = original["Host"](8, 16, 2).double()
    a = original["GatedMixin"](host, 2, 8, 16).double()
    b = patched["GatedMixin"](host, 2, 8, 16).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    # float64, the same operations in the same order on CPU (the kernel's fallback path): a
    # 16-wide output projection, agreement to rounding
    torch.testing.assert_close(b.mlp_forward(x, 1), a.mlp_forward(x, 1), rtol=1e-12, atol=1e-12)
