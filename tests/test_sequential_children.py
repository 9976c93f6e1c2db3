"""A module an nn.Sequential subclass's ``__init__`` sets on ``self`` is a member (review35).

``nn.Module.__setattr__`` registers a module value as a child after those already there, and
nn.Sequential's forward runs every child in order: ``self.append(conv); self.extra =
nn.ReLU(); self.append(bn)`` runs conv, ReLU, BN -- no conv -> BatchNorm pair.  The same for
``setattr(self, "extra", nn.ReLU())``.  A setting stored as a constant (``self.stride = 2``)
registers nothing: the pair stays.  Fixtures ours (misses45's counter base and block).
"""

from __future__ import annotations

import textwrap

import torch
from test_misses45_forms import COUNTER_BASE, _block, _pairs

STACK_BASE = textwrap.dedent("""\
    import torch
    from torch import nn


    class Stack(nn.Sequential):
        def __init__(self):
            super().__init__()
            self.frozen = False
""")

CHILDREN = ("self.extra = nn.ReLU()", 'setattr(self, "extra", nn.ReLU())', "self.extra: nn.Module = nn.ReLU()")


def _run_order(code: str) -> list:
    """The layer classes the built block runs, in order (torch itself, for the docstring's claim)."""
    space: dict = {}
    exec(compile(code, "<fixture>", "exec"), space)
    block = space["PointConv"](2, 3)
    return [type(m).__name__ for m in block]


def test_a_child_set_between_appends_runs_between():
    code = COUNTER_BASE + _block(middle=CHILDREN[0])
    assert _run_order(code)[:3] == ["Conv2d", "ReLU", "BatchNorm2d"]


def test_a_child_set_between_appends_breaks_the_pair():
    for base, text in (("Chain", COUNTER_BASE), ("Stack", STACK_BASE)):
        for child in CHILDREN:
            assert not _pairs(text + _block(base, middle=child)), (base, child)


def test_a_constant_setting_between_appends_keeps_the_pair():
    for base, text in (("Chain", COUNTER_BASE), ("Stack", STACK_BASE)):
        code = text + _block(base, middle="self.stride = 2")
        assert _run_order(code)[:2] == ["Conv2d", "BatchNorm2d"]
        assert _pairs(code), base


def test_the_base_counter_written_again_replaces_a_member():
    """``self.count = 0`` between appends: the next append reuses the name "0", and
    ``add_module`` under a used name replaces that member where it stands (the conv is gone)."""
    code = COUNTER_BASE + _block(middle="self.count = 0")
    assert _run_order(code)[:2] == ["BatchNorm2d", "ReLU"]
    assert not _pairs(code)
    # a setting of its own (not the base's state) changes no name: the pair stays
    assert _pairs(COUNTER_BASE + _block(middle="self.width = 0"))
