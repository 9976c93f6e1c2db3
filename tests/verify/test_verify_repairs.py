"""Inputs repaired from a module's own error (``adopter.verify.inputs.repairs``) stay small: a
guess that multiplies axes is dropped when it would hold more than MAX_REPAIR_ELEMENTS, instead
of allocating gigabytes (timm's LeViT asked verify for 14 GB and was killed)."""

from __future__ import annotations

import pytest
import torch

from adopter.verify.build import Call
from adopter.verify.inputs import MAX_REPAIR_ELEMENTS, repairs


def test_tokens_repeated_into_a_grid_when_the_module_unpacks_four_axes():
    x = torch.randn(2, 6, 8)
    with pytest.raises(ValueError) as info:
        b, h, w, c = x.shape  # what the module's forward does with its input
    (call,) = repairs(Call((x,)), info.value)
    assert call.args[0].shape == (2, 6, 6, 8)


def test_a_grid_that_would_be_too_large_is_not_tried():
    side = int(MAX_REPAIR_ELEMENTS ** 0.5) + 1  # [1, side, side, 1] is just over the limit
    x = torch.randn(1, side, 1)
    assert repairs(Call((x,)), ValueError("not enough values to unpack (expected 4, got 3)")) == []
    small = torch.randn(1, side // 4, 1)
    assert [c.args[0].shape for c in repairs(Call((small,)), ValueError(
        "not enough values to unpack (expected 4, got 3)"))] == [(1, side // 4, side // 4, 1)]


def test_a_length_a_table_fixes_is_not_grown_past_the_limit():
    text = "The size of tensor a (8) must match the size of tensor b (4096) at non-singleton dimension 1"
    wide = torch.randn(2, 8, 3000)  # [2, 4096, 3000] is over the limit
    assert repairs(Call((wide,)), RuntimeError(text)) == []
    narrow = torch.randn(2, 8, 16)
    (call,) = repairs(Call((narrow,)), RuntimeError(text))
    assert call.args[0].shape == (2, 4096, 16)
