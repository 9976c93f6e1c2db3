"""The float64 second opinion of a module that makes tensors without naming a dtype.

A causal mask built as ``torch.full((n, n), torch.finfo(x.dtype).min)`` (Hugging Face's
``_make_causal_mask``, which OwlViT's and InstructBLIP's text towers call) is float32 by the
default dtype: in the float64 reference run the float64 minimum does not fit in it and the
reference raised, so whole models (OwlViTModel) whose gradients differ by float32 rounding
through a long backward failed with no second opinion (corpus24).  While the reference runs the
default dtype is now float64 too, and an integer or boolean tensor cast to float32 (a padding
mask made float, VitsModel's) is float64 there (``compare.kept_double``).  The module below also
averages its output with a boolean causal pattern made float, which needs the second.  With the tolerance set to exact
equality every rounding difference goes to the second opinion: the right patch passes; patches
that drop the learned position bias or the mask fail.
"""



import pytest
import torch
from stand_in import exact_adp010_verdicts

from adopter.verify.compare import kept_double
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class MaskMadeAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2, tokens: int = 8):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.pos = nn.Parameter(torch.randn(heads, tokens, tokens) * 0.1)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        mask = torch.full((n, n), torch.finfo(x.dtype).min).triu(1)
        bias = mask + self.pos[:, :n, :n]
        sim = q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5
        sim = sim + bias
        attn = sim.softmax(dim=-1)
        out = attn @ v
        y = self.proj(out.transpose(1, 2).reshape(b, n, c))
        pool = (torch.arange(n)[:, None] >= torch.arange(n)[None, :]).float() / n
        return y + pool @ y
'''

SITE = ("        sim = q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5\n"
        "        sim = sim + bias\n"
        "        attn = sim.softmax(dim=-1)\n"
        "        out = attn @ v\n")
RIGHT = "        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)\n"
NO_POSITION_BIAS = "        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n"
NO_MASK = "        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.pos[:, :n, :n])\n"



def _verify(tmp_path, edit, all_rules, quick):
    return exact_adp010_verdicts(tmp_path / "mask_made.py", SOURCE, edit, all_rules, quick)


def test_the_right_patch_passes_on_the_second_opinion(tmp_path, all_rules, quick):
    results = _verify(tmp_path, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "float64 run" in results[0].reason


@pytest.mark.parametrize("wrong", [NO_POSITION_BIAS, NO_MASK])
def test_wrong_patches_still_fail(tmp_path, all_rules, quick, wrong):
    results = _verify(tmp_path, (SITE, wrong), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_kept_double_makes_float64_by_default_and_puts_it_back():
    before = torch.get_default_dtype()
    with kept_double():
        assert torch.zeros(2).dtype == torch.float64
        assert torch.full((2,), torch.finfo(torch.float64).min).dtype == torch.float64
        assert torch.zeros(2, dtype=torch.float32).dtype == torch.float32  # a named dtype is kept
        assert torch.ones(2, dtype=torch.long).float().dtype == torch.float64  # integers: working precision
        assert torch.ones(2, dtype=torch.bool).to(torch.float32).dtype == torch.float64
        assert torch.ones(2, dtype=torch.float16).float().dtype == torch.float32  # a half tensor: left alone
    assert torch.get_default_dtype() == before
    with pytest.raises(RuntimeError):
        with kept_double():
            raise RuntimeError("inside")
    assert torch.get_default_dtype() == before
