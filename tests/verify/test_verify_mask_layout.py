"""A guessed mask under which the original's output gets more axes (or a wider axis) than the
same call without it is no mask of that module's layout (verify27).

A single head whose scores are ``[batch, tokens, tokens]`` fills them out of place with a boolean
mask: handed the harness's ``[batch, 1, tokens, tokens]`` mask, the fill broadcasts the scores,
and so the original's output, to 4-D, which the fused call rightly refuses -- a ``fail`` for a
correct patch (transformers-from-scratch's two heads, research27).  Verify now sets such a call
aside, tries the mask with a size-1 axis dropped (the scores' own rank), and judges on that;
wrong patches (the mask dropped, a wrong scale) still fail on it."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from adopter.config import Config
from adopter.synth import fix_text
from adopter.verify import verify_file
from adopter.verify.build import Call, _narrowed_masks, _widened_by_mask
from adopter.verify.result import FAIL, PASS

HEADS = '''
import math

import torch
from torch import nn


class OneHead(nn.Module):
    """A single head whose scores are [batch, tokens, tokens]; True in the mask hides a key."""

    def __init__(self, width: int, head: int):
        super().__init__()
        self.norm = nn.Softmax(-1)
        self.query = nn.Linear(width, head, bias=False)
        self.key = nn.Linear(width, head, bias=False)
        self.value = nn.Linear(width, head, bias=False)

    def forward(self, x, mask=None):
        q, k, v = self.query(x), self.key(x), self.value(x)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(k.size(-1))
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        return torch.matmul(self.norm(scores), v)
'''


def _verify(tmp_path, all_rules, quick, edit=None):
    path = tmp_path / "heads.py"
    path.write_text(HEADS)
    rules = [r for r in all_rules if r.id == "ADP010"]

    def fix(text, path_, rules_, package=None):
        result = fix_text(text, path_, rules_, package)
        patched = result.text if edit is None else edit(result.text)
        return SimpleNamespace(text=patched, applied=result.applied, skipped=result.skipped, error=None)

    results = verify_file(str(path), rules, Config(), benchmark=False, fix=fix, options=quick)
    (head,) = [r for r in results if r.class_name == "OneHead" and not r.combined]
    return head


def test_a_mask_that_widens_the_output_is_not_used_a_narrower_one_is(tmp_path, all_rules, quick):
    """Before: ``fail`` (with mask given: the patched forward raised, the 4-D mask broadcast the
    3-D scores); now a pass on both sides, the mask given as [batch, tokens, tokens]."""
    head = _verify(tmp_path, all_rules, quick)
    assert head.verdict == PASS, head.reason
    assert "also with mask given" in head.reason, head.reason


def test_a_patch_that_drops_the_mask_still_fails(tmp_path, all_rules, quick):
    head = _verify(tmp_path, all_rules, quick,
                   edit=lambda text: text.replace("attn_mask=~mask if mask is not None else None", "attn_mask=None"))
    assert head.verdict == FAIL and head.reason.startswith("with mask given: "), head.reason


def test_a_patch_with_a_wrong_scale_still_fails(tmp_path, all_rules, quick):
    head = _verify(tmp_path, all_rules, quick,
                   edit=lambda text: text.replace("scale=1 / math.sqrt(k.size(-1))", "scale=1.1 / math.sqrt(k.size(-1))"))
    assert head.verdict == FAIL, head.reason


def test_widening_is_more_axes_or_a_wider_axis_never_the_same_shape():
    three, four = torch.zeros(2, 8, 4), torch.zeros(2, 2, 8, 4)
    assert _widened_by_mask(four, three)
    assert _widened_by_mask(torch.zeros(2, 9, 4), three)
    assert not _widened_by_mask(torch.ones(2, 8, 4), three)  # other values, same shape: a mask
    assert not _widened_by_mask(torch.zeros(2, 8, 2), three)  # narrower is not wider
    assert not _widened_by_mask((three, three), three)  # other structure: not compared
    assert _widened_by_mask((four, torch.zeros(2)), (three, torch.zeros(2)))


def test_narrowed_masks_drop_one_size_one_axis_of_a_guessed_mask_only():
    x, square, padding = torch.randn(2, 8, 4), torch.ones(2, 1, 8, 8, dtype=torch.bool), torch.ones(2, 1, 1, 8)
    call = Call((x, square), {"bias": padding}, masked=(1, "bias"))
    shapes = [(tuple(c.args[1].shape), tuple(c.kwargs["bias"].shape)) for c in _narrowed_masks(call)]
    assert shapes == [((2, 8, 8), (2, 1, 1, 8)), ((2, 1, 8, 8), (2, 1, 8))]  # [2, 1, 1, 8]: one narrower shape
    assert all(c.args[0] is x for c in _narrowed_masks(call))  # the other inputs as they were
    assert list(_narrowed_masks(Call((x, square), {}))) == []  # no guessed mask: nothing narrowed
