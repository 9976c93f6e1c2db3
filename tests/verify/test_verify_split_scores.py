"""Attention split over two methods (the caller computes the scores, a helper takes them to the
context: ESPnet's ``forward_attention``), fixed and verified through the real pipeline
(``adopter fix`` on a copy, ``adopter verify`` on the original), and the inputs verify needs to
reach the fused path, which runs only without a mask:

- a required ``mask`` the code tests for None (SenseVoice's, None from its chunked caller): a
  guessed mask that runs takes the original path, so verify tries None in its place;
- the same where no guessed mask runs at all (a boolean [batch, 1, time] mask): None is the
  last candidate of a required mask;
- an empty tensor as the default (``mask=torch.ones((0, 0, 0))``, tested as ``mask.size(2) >
  0``: chatterbox): verify tries the argument at its default.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402

from adopter.verify.result import PASS  # noqa: E402


def test_each_split_attention_is_fixed_and_verified_on_its_fused_path(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "split_scores", "attention.py")
    rows = {r["class"]: r for r in patches if r["rule"] == "ADP010"}
    assert sorted(rows) == ["ChunkAttention", "EmptyMaskAttention", "PaddedChunkAttention"]
    assert all(r["verdict"] == PASS for r in rows.values()), rows
    assert "reached with mask=None (forward)" in rows["ChunkAttention"]["reason"]
    assert rows["PaddedChunkAttention"]["details"]["inputs"] == "float[2, 8, 32], None"
    assert "reached with mask=tensor([], size=(0, 0, 0), dtype=torch.bool)" in rows["EmptyMaskAttention"]["reason"]
