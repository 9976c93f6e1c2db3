"""Verify's memory ceiling (``adopter/verify/memory.py``): a guessed build that would take more
memory than the ceiling is refused by an allocation failure and becomes a skip that names the
ceiling, instead of growing the process until the machine's OOM killer ends it (a monai UNet's
attention paths grew one verify process past 21 GB).  A build that fits the ceiling still passes.
"""

import resource

import pytest
import torch
from stand_in import adp010_verdicts

from adopter.verify import memory
from adopter.verify.result import PASS, SKIP

SOURCE = '''import torch
from torch import nn


class TableAttention(nn.Module):
    def __init__(self, width: int = 32, heads: int = 4, slots: int = {slots}):
        super().__init__()
        self.heads = heads
        self.table = nn.Parameter(torch.zeros(slots))
        self.qkv = nn.Linear(width, 3 * width)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        v = v + self.table[:4].sum()
        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        attn = scores.softmax(dim=-1)
        y = attn @ v
        return y.transpose(1, 2).reshape(b, t, c)
'''

SITE = ('        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)\n'
        '        attn = scores.softmax(dim=-1)\n'
        '        y = attn @ v\n')
RIGHT = '        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n'

# 3 GiB of float32 parameters (and 4 bytes * 3/4 G elements): far above a 1.5 GiB ceiling
OVERSIZED = 3 * (1 << 28)


def test_an_oversized_build_is_a_skip_naming_the_ceiling(tmp_path, all_rules, quick, monkeypatch):
    monkeypatch.setenv(memory.ENV, "1.5")
    before = resource.getrlimit(resource.RLIMIT_DATA)
    source = SOURCE.replace("{slots}", str(OVERSIZED))
    (result,) = adp010_verdicts(tmp_path / "table_attention.py", source, (SITE, RIGHT), all_rules, quick)
    assert result.verdict == SKIP
    assert memory.ENV in result.reason and "1.5 GB" in result.reason
    assert resource.getrlimit(resource.RLIMIT_DATA) == before  # the ceiling is lifted afterwards


def test_a_build_under_the_ceiling_still_passes(tmp_path, all_rules, quick, monkeypatch):
    monkeypatch.setenv(memory.ENV, "1.5")
    source = SOURCE.replace("{slots}", "64")
    (result,) = adp010_verdicts(tmp_path / "table_attention.py", source, (SITE, RIGHT), all_rules, quick)
    assert result.verdict == PASS, result.reason


def test_refused_allocations_are_recognised_and_others_are_not():
    with memory.ceiling() as limit:
        assert limit is not None
        with pytest.raises(RuntimeError) as caught:
            torch.empty(limit // 4 + (1 << 28), dtype=torch.float32)
    assert memory.out_of_memory(caught.value)
    assert memory.out_of_memory(MemoryError())
    assert not memory.out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    try:
        raise ValueError("size mismatch") from MemoryError()
    except ValueError as wrapped:
        assert memory.out_of_memory(wrapped)


def test_the_ceiling_follows_the_setting(monkeypatch):
    monkeypatch.setenv(memory.ENV, "2")
    assert memory.ceiling_bytes() == 2 << 30
    monkeypatch.setenv(memory.ENV, "0")
    assert memory.ceiling_bytes() is None
    monkeypatch.delenv(memory.ENV)
    total = memory.physical_memory()
    assert memory.ceiling_bytes() == (total // 2 if total else None)
    with memory.ceiling(on_cpu=False) as limit:  # a GPU run: CUDA maps host memory of its own
        assert limit is None


def test_the_ceiling_counts_what_verify_allocates_not_what_the_process_held_before(monkeypatch):
    """A long-lived process (a test worker, an editor) may hold gigabytes of data segment before
    verify starts: the ceiling is room to grow, so a small build still fits and a large one is
    still refused."""
    import mmap

    monkeypatch.setenv(memory.ENV, "0.5")
    held = mmap.mmap(-1, 2 << 30, flags=mmap.MAP_PRIVATE)  # 2 GiB reserved, never touched
    try:
        assert memory.data_segment() >= 2 << 30
        with memory.ceiling() as room:
            assert room == 1 << 29
            small = torch.ones(1 << 24)  # 64 MiB: fits the room
            assert float(small[-1]) == 1.0
            del small
            with pytest.raises(RuntimeError) as caught:
                torch.empty(3 << 27)  # 1.5 GiB: more than the room
        assert memory.out_of_memory(caught.value)
    finally:
        held.close()
