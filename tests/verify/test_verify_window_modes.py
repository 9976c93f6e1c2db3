"""What verify reads from a class's own code to build and feed it (fixture
``research/window_modes``, SCUNet-style shifted-window attention written for this test):

- a constructor argument only compared with strings (``if self.kind != "plain":``) is a mode:
  each string it is compared with is a candidate value (``facts.Reads.compared``);
- the rank of the first input is the rank of an einops pattern applied to the input's own name
  (``rearrange(x, 'b (w1 p1) (w2 p2) c -> ...')``) before the lowest rank of all the patterns,
  which may be of a table the forward builds (``'h p q -> h 1 1 p q'``).
"""

from __future__ import annotations

import inspect
import types

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402

from adopter.verify import facts  # noqa: E402
from adopter.verify.construct import ClassFacts, _param_candidates  # noqa: E402
from adopter.verify.result import PASS  # noqa: E402
from adopter.verify.sizes import VERIFY  # noqa: E402


def test_the_window_attention_is_built_fed_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "window_modes", "attention.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [r["class"] for r in rows] == ["ShiftedWindowAttention"]
    assert rows[0]["verdict"] == PASS, rows
    assert "kind='plain'" in rows[0]["details"]["built"]
    assert len(rows[0]["details"]["inputs"].split("[")[1].split(",")) == 4  # a 4-D image of tokens


def _candidates(source: str, name: str):
    import ast

    tree = ast.parse(source)
    cls = tree.body[0]
    init = facts.method(cls, "__init__")
    forward = facts.method(cls, "forward")
    reads = {name: facts.Reads()}
    collector = facts._Collector(reads)
    for func in (init, forward):
        for stmt in func.body:
            collector.visit(stmt)
    param = inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    info = ClassFacts(cls=object, params=[param], reads=reads, classes={})
    return _param_candidates(info, param, types.ModuleType("m"), VERIFY)


def test_a_string_mode_takes_the_strings_it_is_compared_with():
    source = (
        "class A:\n"
        "    def __init__(self, mode):\n"
        "        self.mode = mode\n"
        "    def forward(self, x):\n"
        "        if self.mode == 'shift' or self.mode in ('roll', 'pad'):\n"
        "            return x\n"
        "        return x\n")
    assert _candidates(source, "mode") == ["shift", "roll", "pad"]


def test_a_value_also_used_as_a_number_is_no_mode():
    source = (
        "class A:\n"
        "    def __init__(self, mode):\n"
        "        self.mode = mode\n"
        "        self.width = mode * 2\n"
        "    def forward(self, x):\n"
        "        if self.mode != 'plain':\n"
        "            return x\n"
        "        return x\n")
    found = _candidates(source, "mode")
    assert found and "plain" not in found  # multiplied like a number: small counts, as before


def test_the_input_rank_is_the_one_of_the_pattern_applied_to_the_input():
    import torch  # noqa: F401
    from torch import nn

    from adopter.verify.inputs import input_rank

    class Windows(nn.Module):
        def forward(self, x):
            from einops import rearrange
            x = x * 2
            table = rearrange(torch.zeros(2, 4, 4), "h p q -> h 1 1 p q")
            return rearrange(x, "b (w1 p1) (w2 p2) c -> b (w1 w2) (p1 p2) c", p1=2, p2=2) + table.sum()

    class Derived(nn.Module):
        def forward(self, x):
            from einops import rearrange
            t = x.flatten(1)
            return rearrange(t, "b (n d) -> b n d", n=2)

    assert input_rank(Windows().forward) == (4, False)
    assert input_rank(Derived().forward) == (2, False)  # no pattern of the input itself: the lowest


def test_raw_memory_weights_below_1e20_are_drawn_afresh():
    """A constructor that leaves weights as ``torch.empty`` memory (torchtext's T5 projections):
    entries of 1e14 are no initialisation (they saturate the softmax and flip verdicts), so they
    are drawn afresh; an initialised weight, even a large one (1e3), is left as it is."""
    import torch
    from torch import nn

    from adopter.verify.build import redraw_uninitialised

    module = nn.Module()
    module.raw = nn.Parameter(torch.full((4, 8), 1.5e14))
    module.kept = nn.Parameter(torch.full((4, 8), 1e3))
    module.small = nn.Parameter(torch.randn(4, 8))
    before = module.small.detach().clone()
    assert redraw_uninitialised(module) == 1
    assert float(module.raw.abs().max()) < 10
    assert float(module.kept.min()) == 1e3
    assert torch.equal(module.small.detach(), before)
