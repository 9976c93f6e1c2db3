"""An attention whose forward takes q, k, v (and an optional boolean mask) with no shape read:
verified with inputs of the rank the code's own axis swap states.

di-engine's ``ScaledDotProductAttention.forward(q, k, v, mask=None)`` computes
``torch.matmul(q / sqrt(d_k), k.transpose(2, 3))``: ``k`` has four axes at least, and q and v
meet it in the batched products, so they have as many.  Verify guessed [batch, seq, width] for
all three ("no inputs it accepts": axis 3 out of range).  Now ``inputs.matmul_peer_ranks`` reads
the least rank an axis swap states of a never-rebound input and hands it to the parameters that
meet it as operands of a product (through the local names computed from them), so the 4-D
guesses go first.  By what the code does with the inputs, not by any name.
"""

import ast
import importlib.util

from stand_in import adp010_verdicts

from adopter.verify.inputs import input_rank, matmul_peer_ranks, transposed_rank
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
import torch.nn.functional as F
from torch import nn


class ProductAttention(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.out = nn.Linear(width, width)

    def forward(self, a, b, c, keep=None):
        scores = torch.matmul(a, b.transpose(2, 3))
        if keep is not None:
            scores = scores.masked_fill(~keep, -1e9)
        weights = F.softmax(scores, dim=-1)
        mixed = torch.matmul(weights, c)
        return mixed
'''

SITE = ("        scores = torch.matmul(a, b.transpose(2, 3))\n"
        "        if keep is not None:\n"
        "            scores = scores.masked_fill(~keep, -1e9)\n"
        "        weights = F.softmax(scores, dim=-1)\n"
        "        mixed = torch.matmul(weights, c)\n")
RIGHT = ("        mixed = F.scaled_dot_product_attention(a, b, c, attn_mask=keep if keep is not None else None,\n"
         "                                               scale=1.0)\n")
# the default scale 1/sqrt(width) where the original has none
DROPPED_SCALE = ("        mixed = F.scaled_dot_product_attention(a, b, c, attn_mask=keep if keep is not None else None)\n")
# the mask left out (on the side where it is given)
DROPPED_MASK = ("        mixed = F.scaled_dot_product_attention(a, b, c, attn_mask=None if keep is not None else None,\n"
                "                                               scale=1.0)\n")


def test_the_right_patch_of_a_q_k_v_forward_passes(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "product.py", SOURCE, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "gradients match" in results[0].reason
    assert "also with keep given" in results[0].reason  # the masked path ran too


def test_a_dropped_scale_fails(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "product.py", SOURCE, (SITE, DROPPED_SCALE), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_a_dropped_mask_fails(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "product.py", SOURCE, (SITE, DROPPED_MASK), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def _def(params: str, body: str) -> ast.FunctionDef:
    text = f"def forward(self, {params}):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return ast.parse(text).body[0]


def _function(tmp_path, params: str, body: str):
    """A real function written to disk (the readers parse its source)."""
    text = "import torch\n\n\ndef forward(self, " + params + "):\n" + \
        "".join(f"    {line}\n" for line in body.splitlines())
    path = tmp_path / f"peers_{abs(hash(text))}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.forward


def test_transposed_rank():
    assert transposed_rank(_def("k", "return k.transpose(2, 3)"), "k") == 4
    assert transposed_rank(_def("k", "return k.swapaxes(1, 2)"), "k") == 3
    # look-alikes that state nothing: axes counted from the end, a rebound name, another name
    assert transposed_rank(_def("k", "return k.transpose(-2, -1)"), "k") is None
    assert transposed_rank(_def("k", "k = k.flatten(2)\nreturn k.transpose(2, 3)"), "k") is None
    assert transposed_rank(_def("k, j", "return j.transpose(2, 3)"), "k") is None


def test_matmul_peer_ranks(tmp_path):
    def peers(params, body):
        return matmul_peer_ranks(_function(tmp_path, params, body))

    body = "s = torch.matmul(q / 8, k.transpose(2, 3))\np = s.softmax(-1)\nreturn torch.matmul(p, v)"
    assert peers("q, k, v, mask=None", body) == {"q": 4, "k": 4, "v": 4}
    assert peers("q, k, v", "s = q @ k.transpose(2, 3)\nreturn s.softmax(-1) @ v") == {"q": 4, "k": 4, "v": 4}
    # look-alikes: a swap counted from the end states nothing; a parameter in no product (the
    # mask above, ``w`` here) gets nothing; products of separate parameters are separate groups
    assert peers("q, k, v", "s = q @ k.transpose(-2, -1)\nreturn s.softmax(-1) @ v") == {}
    assert peers("q, k, w", "return (q @ k.transpose(2, 3)) * w") == {"q": 4, "k": 4}
    assert peers("q, k, u, v", "a = q @ k.transpose(2, 3)\nb = u @ v\nreturn a, b") == {"q": 4, "k": 4}
    # two swaps in one group that disagree state nothing
    assert peers("q, k", "return q.transpose(1, 2) @ k.transpose(2, 3)") == {}


def test_the_first_input_takes_its_peers_rank(tmp_path):
    body = "s = torch.matmul(q, k.transpose(2, 3))\nreturn torch.matmul(s.softmax(-1), v)"
    assert input_rank(_function(tmp_path, "q, k, v", body)) == (4, True)
    # a three-axis swap states nothing beyond the usual guess
    body = "s = torch.matmul(q, k.transpose(1, 2))\nreturn torch.matmul(s.softmax(-1), v)"
    assert input_rank(_function(tmp_path, "q, k, v", body)) == (None, False)
