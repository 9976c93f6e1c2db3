"""Forms found while measuring the fix rate per rule (fixrate1, session 33): findings that
``adopter fix`` reported but did not patch.

- A Linear and its GELU as adjacent members of an ``nn.Sequential`` (the MLP of most ViTs and
  research transformers: ``nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Dropout(p),
  nn.Linear(h, d))``) were found (ADP006) and declined: "the matched layers run inside a
  container (nn.Sequential); rewrite it by hand".  The container's class now becomes
  ``adopter_kernels.FoldingSequential`` (as for ADP007's conv-BN pairs), which runs each adjacent
  Linear -> GELU pair as ``adopter_kernels.bias_gelu`` does: fused when the Linear is plain and
  the activation a GELU, the two members as written otherwise.  Same members, same state-dict
  keys.
Near-misses (still declined): a same-file ``nn.Sequential`` subclass defining its own forward,
a Linear in the container whose GELU is applied outside it.
"""

from __future__ import annotations

import textwrap

from corpus_forms import float64_pair, found, rules

from adopter.synth import fix_text

MLP = textwrap.dedent("""
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self, d=8, h=16):
            super().__init__()
            self.norm = nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, h), nn.GELU(approximate="tanh"), nn.Dropout(0.0), nn.Linear(h, d))

        def forward(self, x):
            return x + self.mlp(self.norm(x))
""")


def _fix(code: str):
    return fix_text(code, "model.py", rules("ADP006"))


def test_sequential_linear_gelu_is_patched_and_matches():
    import torch

    assert found(MLP, "ADP006")
    result = _fix(MLP)
    assert [f.rule for f in result.applied] == ["ADP006"], result.skipped
    assert "self.mlp = FoldingSequential(nn.Linear(d, h)" in result.text
    a, b = float64_pair(MLP, result.text, "Block")
    assert set(a.state_dict()) == set(b.state_dict())
    for mode in ("train", "eval"):
        getattr(a, mode)()
        getattr(b, mode)()
        x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
        y = x.detach().clone().requires_grad_(True)
        out_a, out_b = a(x), b(y)
        torch.testing.assert_close(out_b, out_a)
        out_a.square().sum().backward()
        out_b.square().sum().backward()
        torch.testing.assert_close(y.grad, x.grad)
        for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad, msg=name)
            pa.grad = pb.grad = None


def test_sequential_subclass_with_own_forward_still_declined():
    code = textwrap.dedent("""
        from torch import nn


        class Mlp(nn.Sequential):
            def __init__(self, d, h):
                super().__init__(nn.Linear(d, h), nn.GELU(), nn.Linear(h, d))

            def forward(self, x):
                return super().forward(x) * 2


        class Block(nn.Module):
            def __init__(self, d=8):
                super().__init__()
                self.mlp = Mlp(d, 4 * d)

            def forward(self, x):
                return self.mlp(x)
    """)
    result = _fix(code)
    assert not result.applied and result.skipped


def test_gelu_outside_the_container_still_declined():
    code = textwrap.dedent("""
        from torch import nn


        class Block(nn.Module):
            def __init__(self, d=8):
                super().__init__()
                self.proj = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 4 * d))
                self.act = nn.GELU()

            def forward(self, x):
                return self.act(self.proj(x))
    """)
    result = _fix(code)
    assert not any(f.rule == "ADP006" for f in result.applied)
