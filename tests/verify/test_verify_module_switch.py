"""An edit under a branch that a module-level switch compared with a literal decides.

latent-diffusion's ``_ATTN_PRECISION = os.environ.get("ATTN_PRECISION", "fp32")`` and
``if _ATTN_PRECISION == "fp32": <upcast> else: <the patched attention>``: the default value keeps
the edited side from running, so verify skipped.  Now, when every read of the switch in the module
is a comparison with a literal, verify sets it (on the original and the patched module alike) to a
value that takes the edited side, and names it in the verdict.  A switch read any other way is left
alone (a made-up value could change more than the branch).  Each stand-in patch below is judged:
the right one passes, one with the wrong scale fails (both skipped before).
"""


from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.branches import guards, switch_value
from adopter.verify.result import FAIL, PASS, SKIP

SOURCE = '''import os

import torch
import torch.nn.functional as F
from torch import nn

_PRECISION = os.environ.get("ADOPTER_TEST_SWITCH_PRECISION", "fp32")


class SwitchAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        EXTRA

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if _PRECISION == "fp32":
            scores = (q.float() @ k.float().transpose(-2, -1)) * self.scale
            out = scores.softmax(dim=-1) @ v
        else:
            scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
            out = torch.softmax(scores, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
'''

SITE = ("            scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale\n"
        "            out = torch.softmax(scores, dim=-1) @ v\n")
RIGHT = "            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)\n"
WRONG = "            out = F.scaled_dot_product_attention(q, k, v, scale=1.0)\n"


def _verify(tmp_path, source, edit, all_rules, quick):
    path = tmp_path / "switch_model.py"
    path.write_text(source)
    rules = [r for r in all_rules if r.id == "ADP010"]
    # (the upcast side's finding is left as written by the stand-in patch: no verdict to judge)
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=_fix(*edit), options=quick)
            if not r.combined and "changes no line" not in r.reason]


PLAIN = SOURCE.replace("        EXTRA\n", "")


def test_the_right_patch_passes_with_the_switch_named(tmp_path, all_rules, quick):
    results = _verify(tmp_path, PLAIN, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "_PRECISION='not fp32'" in results[0].reason


def test_a_wrong_patch_under_the_switch_fails(tmp_path, all_rules, quick):
    results = _verify(tmp_path, PLAIN, (SITE, WRONG), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_the_equal_side_of_a_switch_is_reached_too(tmp_path, all_rules, quick):
    # ``if _PRECISION == "fp16": <edit>`` with the default "fp32": the variant sets "fp16"
    source = PLAIN.replace('if _PRECISION == "fp32":', 'if _PRECISION != "fp16":')
    results = _verify(tmp_path, source, (SITE, WRONG), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results
    results = _verify(tmp_path, source, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "_PRECISION='fp16'" in results[0].reason


def test_a_switch_read_otherwise_is_left_alone(tmp_path, all_rules, quick):
    # the module also formats the switch's value: a made-up value is no honest setting
    source = SOURCE.replace("EXTRA", "self.tag = _PRECISION.upper()")
    results = _verify(tmp_path, source, (SITE, WRONG), all_rules, quick)
    assert [r.verdict for r in results] == [SKIP], results
    assert "never ran" in results[0].reason


def test_switch_values():
    text = 'M = "a"\nif M == "a":\n    pass\nelif M in ("b", "c"):\n    pass\n'
    assert switch_value(text, "M", "a", differ=True) == "b"
    assert switch_value(text, "M", "b", differ=False) == "b"
    assert switch_value('N = 1\nif N != 1:\n    pass\n', "N", 1, differ=True) == 2
    assert switch_value('M = "a"\nif M == "a":\n    pass\n', "M", "a", differ=True) == "not a"
    assert switch_value('M = "a"\nif M == "a":\n    pass\nprint(M)\n', "M", "a", differ=True) is None
    assert switch_value('M = "a"\ndef f():\n    global M\n    M = "b"\n', "M", "a", differ=True) is None


def test_the_guard_names_the_switch():
    line = PLAIN.splitlines().index(SITE.splitlines()[0]) + 1
    found = guards(PLAIN, {line})
    assert [(g.kind, g.name, g.want) for g in found] == [("param_ne", "_PRECISION", "fp32")]
