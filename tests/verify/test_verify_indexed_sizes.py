"""A constructor argument whose name says it is a size (``input_resolution``, ``grid_resolution``)
but that the class's code only indexes with constants (``input_resolution[0] //
window_size[0]``) is one size per axis: verify guesses a tuple of the size its name gives, one
entry per index read (``construct._param_candidates``), where it guessed the bare int before and
the build raised "'int' object is not subscriptable" (PhysicsNeMo's Pangu-Weather
``EarthAttention3D`` / ``EarthAttention2D``).  Fixture ``research/indexed_sizes`` (a window
attention of ours whose bias table has one slice per window row): fixed and verified; on main
its build stopped at a factory request."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify
from test_verify_window_modes import _candidates

from adopter.verify.result import PASS


def test_the_grid_window_attention_is_built_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "indexed_sizes", "attention.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [r["class"] for r in rows] == ["GridWindowAttention"]
    assert rows[0]["verdict"] == PASS, rows


def _source(use: str, name: str = "input_resolution") -> str:
    return (
        "class A:\n"
        f"    def __init__(self, {name}):\n"
        f"        {use}\n"
        "    def forward(self, x):\n"
        "        return x\n")


def test_a_size_indexed_with_constants_is_one_size_per_axis():
    found = _candidates(_source("self.n = input_resolution[0] * input_resolution[1]"), "input_resolution")
    assert found and all(isinstance(v, tuple) and len(v) == 2 and all(isinstance(i, int) for i in v) for v in found)
    found = _candidates(_source("self.n = input_resolution[2]"), "input_resolution")
    assert found and all(isinstance(v, tuple) and len(v) == 3 for v in found)


def test_a_size_used_otherwise_keeps_its_int():
    # not indexed: the int the name gives
    found = _candidates(_source("self.n = input_resolution"), "input_resolution")
    assert found and all(isinstance(v, int) for v in found)
    # indexed, but also divided as a number: not a tuple
    found = _candidates(_source("self.n = input_resolution[0] + input_resolution // 2"), "input_resolution")
    assert found and not any(isinstance(v, tuple) for v in found)
