"""Forms found while checking the blind batch research135 (multimodal: CLIP-style dual encoders,
vision-language connectors, VQA/captioning, document retrieval).  The fixtures are ours.

- A module written as a dataclass (``@dataclass(eq=False) class Attention(nn.Module)`` with
  fields ``dim: int`` ...) writes no ``__init__``: the decorator generates one that stores the
  fields and then calls ``__post_init__``, where the module calls ``super().__init__()`` and
  builds its layers.  Only a written ``__init__`` was read for the layers a class holds, so
  every pair of such a module went unseen (uform's text encoder: a Linear into ``F.gelu``, three
  dropout-add-LayerNorms).  A dataclass's ``__post_init__`` is now read as its ``__init__`` when
  the class writes none.
Near-misses (silent): the same class without the decorator (nothing calls ``__post_init__``),
``@dataclass(init=False)`` (no generated ``__init__``), and a class that writes its own
``__init__`` beside ``__post_init__`` (the decorator keeps it, and it calls nothing).
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import edit, found, line_of, rules

from adopter.synth import fix_text

DATACLASS = textwrap.dedent("""\
    from dataclasses import dataclass

    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    @dataclass(eq=False)
    class Block(nn.Module):
        dim: int
        hidden: int = 32
        p: float = 0.1

        def __post_init__(self):
            super().__init__()
            self.fc = nn.Linear(self.dim, self.hidden)
            self.proj = nn.Linear(self.hidden, self.dim)
            self.drop = nn.Dropout(self.p)
            self.norm = nn.LayerNorm(self.dim)

        def forward(self, x):
            h = F.gelu(self.fc(x))  # gelu
            return self.norm(x + self.drop(self.proj(h)))  # norm
""")


def _lines(code: str, rule: str) -> list:
    return [(f.line, f.end_line) for f in found(code, rule)]


def _covers(code: str, rule: str, needle: str) -> bool:
    line = line_of(code, needle)
    return any(start <= line <= end for start, end in _lines(code, rule))


def test_a_dataclass_module_builds_its_layers_in_post_init():
    assert _covers(DATACLASS, "ADP006", "# gelu")
    assert _covers(DATACLASS, "ADP005", "# norm")
    assert len(_lines(DATACLASS, "ADP006")) == 1 and len(_lines(DATACLASS, "ADP005")) == 1


def test_the_module_qualified_decorator_counts_too():
    code = edit(edit(DATACLASS, "from dataclasses import dataclass", "import dataclasses"),
                "@dataclass(eq=False)", "@dataclasses.dataclass(eq=False)")
    assert _covers(code, "ADP006", "# gelu") and _covers(code, "ADP005", "# norm")


def test_the_fixed_dataclass_module_computes_what_it_did():
    import torch

    fixed = fix_text(DATACLASS, "model.py", rules("ADP005", "ADP006")).text
    assert "linear_gelu(" in fixed and "dropout_add_layer_norm(" in fixed
    assert "def __post_init__(self):" in fixed  # the edits stay in the forward; the method keeps its name
    original, patched = {}, {}
    exec(compile(DATACLASS, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Block"](16).double().eval()  # eval: dropout is the identity on both sides
    b = patched["Block"](16).double().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    out_a, out_b = a(x), b(y)
    # the same GELU of the same product, the same LayerNorm of the same sum (16 features)
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-12)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(y.grad, x.grad, rtol=0, atol=1e-10)


@pytest.mark.parametrize("old, new", [
    # no decorator: nothing calls __post_init__, the module holds no such layers
    ("@dataclass(eq=False)\n", ""),
    # the decorator asked for no __init__: none calls __post_init__ either
    ("@dataclass(eq=False)", "@dataclass(eq=False, init=False)"),
    # a written __init__ is kept by the decorator and calls nothing by itself
    ("    def __post_init__(self):\n        super().__init__()\n",
     "    def __init__(self, dim):\n        super().__init__()\n        self.dim = dim\n\n"
     "    def __post_init__(self):\n"),
])
def test_a_post_init_nothing_runs_at_construction_is_not_read(old, new):
    code = edit(DATACLASS, old, new)
    assert found(code, "ADP006") == [] and found(code, "ADP005") == []
