"""research56 (session 33): a blind batch of language/sequence research code (open-kimi's MLA,
MoE and Kimi-linear files, hrm-pytorch, utmos-pytorch's wav2vec2, stack-attention-pytorch) was
found in full at first sight (10/0/0).  What it showed is in verify: open-kimi's absorbed MLA
writes its latent KV cache into buffers registered with ``persistent=False``; the input search
runs the original alone (on longer sequences first), no state dict carries such buffers to the
patched module, so after one training step the two modules' caches differed in rows the
compared step never wrote, and a patch exact in float64 "failed" on ``train buffers``.  Verify
now gives the patched module the original's non-persistent buffers before comparing.  The
fixture (``tests/verify/fixtures/research/research56``) is ours."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn

from adopter.cli import main
from adopter.verify.core import _copy_unsaved_buffers
from adopter.verify.result import PASS

FIXTURES = Path(__file__).parent / "verify" / "fixtures" / "research" / "research56"


def _verify(tmp_path: Path, capsys, name: str) -> dict[str, dict]:
    original = tmp_path / "original"
    shutil.copytree(FIXTURES, original)
    main(["verify", str(original / name), "--no-config", "--no-benchmark", "--output-format", "json",
          "--select", "ADP010"])
    data = json.loads(capsys.readouterr().out)
    assert "errors" not in data
    return {r["class"]: r for r in data["results"] if not r["combined"] and r["rule"] == "ADP010"}


def test_attention_over_a_non_persistent_kv_cache_verifies(tmp_path, capsys):
    row = _verify(tmp_path, capsys, "kv_cache.py")["CachedAttention"]
    # main: fail "with mask given: train buffers: buffer cache_k differs" (rows 2.. that the
    # input search wrote into the original's cache only)
    assert row["verdict"] == PASS, row
    assert "with mask given" in row["reason"], row


class _Holder(nn.Module):
    def __init__(self, rows: int = 4):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.register_buffer("cache", torch.zeros(rows, 3), persistent=False)
        self.register_buffer("stats", torch.zeros(3))
        self.register_buffer("other", torch.zeros(2), persistent=False)


def test_only_unsaved_buffers_of_the_same_shape_are_copied():
    original, patched = _Holder(), _Holder()
    with torch.no_grad():
        original.cache.fill_(1.0)
        original.stats.fill_(2.0)
        original.lin.weight.fill_(3.0)
    _copy_unsaved_buffers(original, patched)
    assert bool((patched.cache == 1.0).all())
    # near-misses: a persistent buffer and a parameter are the state dict's business, left alone
    assert not bool(patched.stats.any())
    assert not bool((patched.lin.weight == 3.0).any())
    # near-miss: a buffer whose shape differs is left as built
    other = _Holder(rows=5)
    _copy_unsaved_buffers(original, other)
    assert not bool(other.cache.any())
