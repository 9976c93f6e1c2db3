"""An optional argument the forward throws away unless a constructor switch keeps it.

graphium's ``MultiheadAttentionMup.forward`` starts with ``if not self.biased_attention or
attn_bias is None: attn_bias = 0.0``, then adds ``attn_bias`` onto the scores; the fixer's guarded
patch takes the fused path only for a tensor bias with a padding mask.  Verify built the class
with the switch either way and gave the padding mask, but never the bias with the switch on
together, so every run took the patch's original path ("the patched code took its original
(guarded) path").  Now ``branches.kept_conditions`` reads such an ``if`` (an ``or`` test holding
``p is None`` whose body assigns ``p``): the constructor values that make the other parts false
(``biased=True``), tried with ``p`` given and with the arguments the edit's guards give.  By the
code's tests and assignments, not by any name.
"""

import pytest
from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.branches import kept_conditions
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class BiasedAttention(nn.Module):
    def __init__(self, biased, width: int = 16, heads: int = 2):
        super().__init__()
        self.biased = biased
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, pad=None, bias=None):
        if KEEP_TEST:
            bias = 0.0
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q = q / (c // self.heads)
        s = q @ k.transpose(-1, -2)
        s += bias
        if pad is not None:
            s = s.masked_fill(pad[:, None, None, :], float("-inf"))
        a = s.softmax(dim=-1) @ v
        return self.proj(a.transpose(1, 2).reshape(b, n, c))
'''

KEPT = SOURCE.replace("KEEP_TEST", "not self.biased or bias is None")

SITE = ("        s = q @ k.transpose(-1, -2)\n"
        "        s += bias\n"
        "        if pad is not None:\n"
        "            s = s.masked_fill(pad[:, None, None, :], float(\"-inf\"))\n"
        "        a = s.softmax(dim=-1) @ v\n")


def _guarded(mask: str, scale: str) -> str:
    """The fixer's shape: the fused call for a tensor bias with a padding mask, else the original."""
    original = "".join("    " + line for line in SITE.splitlines(True))
    return ("        if torch.is_tensor(bias) and pad is not None:\n"
            f"            a = F.scaled_dot_product_attention(q, k, v, attn_mask={mask}, scale={scale})\n"
            "        else:\n" + original)


RIGHT = _guarded('torch.where(pad[:, None, None, :], float("-inf"), bias)', "1.0")
DROPPED_BIAS = _guarded('torch.where(pad[:, None, None, :], float("-inf"), 0.0)', "1.0")
WRONG_SCALE = _guarded('torch.where(pad[:, None, None, :], float("-inf"), bias)', "None")


def _verify(tmp_path, source, edit, all_rules, quick):
    path = tmp_path / "biased_attention.py"
    path.write_text(source)
    assert edit[0] in source
    rules = [r for r in all_rules if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=_fix(*edit), options=quick)
            if not r.combined]


def test_the_right_patch_with_the_kept_bias_passes(tmp_path, all_rules, quick):
    results = _verify(tmp_path, KEPT, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "biased=True" in results[0].reason


@pytest.mark.parametrize("wrong", [DROPPED_BIAS, WRONG_SCALE])
def test_wrong_patches_with_the_kept_bias_fail(tmp_path, all_rules, quick, wrong):
    results = _verify(tmp_path, KEPT, (SITE, wrong), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_kept_conditions():
    assert kept_conditions(KEPT, "BiasedAttention") == {"bias": [("biased", True)]}
    # an ``and`` test, a test that assigns another name, a test of a forward argument: no switch
    assert kept_conditions(SOURCE.replace("KEEP_TEST", "not self.biased and bias is None"), "BiasedAttention") == {}
    assert kept_conditions(SOURCE.replace("KEEP_TEST", "not self.biased or pad is None").replace(
        "            bias = 0.0", "            other = 0.0"), "BiasedAttention") == {}
    assert kept_conditions(SOURCE.replace("KEEP_TEST", "not x.is_floating_point() or bias is None"),
                           "BiasedAttention") == {}


# the base's required arguments handed only through ``**kwargs`` (graphium's class over
# ``nn.MultiheadAttention(embed_dim, num_heads, ...)``): guessed as the base's own would be
THROUGH_KWARGS = '''import torch
from torch import nn


class Widths(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)


class HandedAttention(Widths):
    def __init__(self, scaled, **kwargs):
        super().__init__(**kwargs)
        self.scaled = scaled

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.scaled:
            q = q / (c // self.heads)
        s = q @ k.transpose(-1, -2)
        a = s.softmax(dim=-1) @ v
        return self.proj(a.transpose(1, 2).reshape(b, n, c))
'''

PLAIN_SITE = ("        s = q @ k.transpose(-1, -2)\n"
              "        a = s.softmax(dim=-1) @ v\n")
PLAIN_RIGHT = "        a = F.scaled_dot_product_attention(q, k, v, scale=1.0)\n"
PLAIN_WRONG = "        a = F.scaled_dot_product_attention(q, k, v, scale=0.5)\n"


def test_base_arguments_through_kwargs_are_guessed(tmp_path, all_rules, quick):
    source = "import torch.nn.functional as F\n" + THROUGH_KWARGS
    results = _verify(tmp_path, source, (PLAIN_SITE, PLAIN_RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    results = _verify(tmp_path, source, (PLAIN_SITE, PLAIN_WRONG), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results
