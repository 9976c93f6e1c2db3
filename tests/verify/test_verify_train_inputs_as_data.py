"""A module that cannot take a training step on inputs that require grad.

Speech feature encoders (wav2vec2's family: unispeech_sat in hf26b, and ten more transformers
4.45 files) start with ``h = input[:, None]`` and, when training, ``h.requires_grad = True``
(gradient checkpointing needs a tensor that requires grad).  torch allows that only on a leaf:
verify's training step made every floating input require grad, so ``h`` was a view of a tensor
in the graph and the original raised "you can only change requires_grad flags of leaf
variables"; the patch was left unchecked in training (skip).  Now, when the original's training
step raises with inputs that require grad and runs without (the only difference between the two
tries), the step runs with the inputs as data: outputs and parameter gradients are compared,
input gradients are not, and the verdict says so.  A wrong patch still fails.
"""


import pytest
from stand_in import adp010_verdicts

from adopter.verify.result import FAIL, PASS, SKIP

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class FeaturesThenAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.feat = nn.Linear(dim, dim)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.track_input = True

    def forward(self, x):
        h = x[:, None]
        if self.track_input and self.training:
            h.requires_grad = True
        h = self.feat(h.squeeze(1))
        b, n, c = h.shape
        q, k, v = self.qkv(h).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        sim = q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5
        attn = sim.softmax(dim=-1)
        out = attn @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
'''

SITE = ("        sim = q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5\n"
        "        attn = sim.softmax(dim=-1)\n"
        "        out = attn @ v\n")
RIGHT = "        out = F.scaled_dot_product_attention(q, k, v)\n"
WRONG_SCALE = "        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)\n"
# the patch sets the flag on a non-leaf itself: the patched side raises where the original does not
BREAKS_TRAINING = ("        out = F.scaled_dot_product_attention(q, k, v)\n"
                   "        if self.training:\n"
                   "            out.requires_grad = True\n")



def _verify(tmp_path, new, all_rules, quick):
    return adp010_verdicts(tmp_path / "features_then_attention.py", SOURCE, (SITE, new), all_rules, quick)


def test_the_right_patch_passes_with_inputs_as_data(tmp_path, all_rules, quick):
    results = _verify(tmp_path, RIGHT, all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "input gradients not compared" in results[0].reason
    assert "leaf" in results[0].reason


@pytest.mark.parametrize("wrong", [WRONG_SCALE, BREAKS_TRAINING])
def test_wrong_patches_still_fail(tmp_path, all_rules, quick, wrong):
    results = _verify(tmp_path, wrong, all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_a_module_that_cannot_train_either_way_still_skips(tmp_path, all_rules, quick):
    source = SOURCE.replace("            h.requires_grad = True\n",
                            "            raise RuntimeError('this module does not train here')\n")
    results = adp010_verdicts(tmp_path / "never_trains.py", source, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [SKIP], results
    assert "does not train here" in results[0].reason
