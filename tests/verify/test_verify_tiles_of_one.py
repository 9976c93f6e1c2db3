"""verify20: a tiled attention that runs only on a batch of one with a window given as a pair.

The module cuts its input into windows (``k1, k2 = self.window``, a constructor argument that
defaults to None), attends within each window and writes the windows back into sample 0
(``assert b == 1``).  Every guessed build left the window None and every guessed input had a
batch of two, so verify skipped it.  Now a None-default argument that a method unpacks into k
names is given k sides, and an ``assert <batch> == 1`` on an unpacked shape cuts the inputs to
their first sample.
"""

import ast
import textwrap

import pytest
import torch
from stand_in import adp010_verdicts

from adopter.verify.build import _unpacked_attributes
from adopter.verify.inputs import batch_of_one_asserted
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
from torch import nn


class Tiled(nn.Module):
    def __init__(self, dim, heads, window=None):
        super().__init__()
        self.heads = heads
        self.window = window
        self.qkv = nn.Conv2d(dim, dim * 3, 1)
        self.out = nn.Conv2d(dim, dim, 1)
        self.scale = 0.5

    def tiles(self, x):
        b, c, h, w = x.shape
        assert b == 1
        k1, k2 = self.window
        k1, k2 = min(h, k1), min(w, k2)
        parts = []
        for i in range(0, h - k1 + 1, k1):
            for j in range(0, w - k2 + 1, k2):
                parts.append(x[:, :, i:i + k1, j:j + k2])
        return torch.cat(parts, dim=0), (h // k1, w // k2, k1, k2)

    def untile(self, out, grid, c):
        rows, cols, k1, k2 = grid
        whole = out.new_zeros(1, c, rows * k1, cols * k2)
        n = 0
        for i in range(rows):
            for j in range(cols):
                whole[0, :, i * k1:(i + 1) * k1, j * k2:(j + 1) * k2] = out[n]
                n += 1
        return whole

    def forward(self, x):
        c = x.shape[1]
        tiles, grid = self.tiles(self.qkv(x))
        t, _, k1, k2 = tiles.shape
        q, k, v = tiles.reshape(t, 3, self.heads, c // self.heads, k1 * k2).unbind(1)
        q, k, v = q.transpose(-2, -1), k.transpose(-2, -1), v.transpose(-2, -1)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        out = attn @ v
        out = out.transpose(-2, -1).reshape(t, c, k1, k2)
        return self.out(self.untile(out, grid, c))
'''

SITE = ('        attn = (q @ k.transpose(-2, -1)) * self.scale\n'
        '        attn = attn.softmax(dim=-1)\n'
        '        out = attn @ v\n')
RIGHT = '        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)\n'
WRONG = '        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n'


def test_the_tiled_attention_passes_with_a_pair_and_a_batch_of_one(tmp_path, all_rules, quick):
    (result,) = adp010_verdicts(tmp_path / "tiled.py", SOURCE, (SITE, RIGHT), all_rules, quick)
    assert result.verdict == PASS, result.reason
    assert "None cannot be unpacked into the 2 names self.window is" in result.details["built"]
    assert result.details["inputs"].startswith("float[1, ")  # cut to one sample


def test_a_patch_that_drops_the_scale_fails_there(tmp_path, all_rules, quick):
    (result,) = adp010_verdicts(tmp_path / "tiled.py", SOURCE, (SITE, WRONG), all_rules, quick)
    assert result.verdict == FAIL, result.reason


def test_only_attributes_unpacked_from_self_are_read():
    tree = ast.parse(SOURCE)
    assert _unpacked_attributes(tree, "Tiled") == {"window": 2}
    plain = ast.parse(SOURCE.replace("k1, k2 = self.window", "k1 = k2 = self.window"))
    assert _unpacked_attributes(plain, "Tiled") == {}


def _written(tmp_path, source: str) -> dict:
    """``source`` loaded from a file, so that its lines can be read back (as a model's are)."""
    import importlib.util

    path = tmp_path / "asserts.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location("asserts_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return vars(module)


@pytest.mark.parametrize("source, one", [
    ("def f(x):\n    b, c, h, w = x.shape\n    assert b == 1\n", True),
    ("def f(x):\n    b, n = x.size()\n    assert 1 == b\n", True),
    # the asserted name is not the first axis unpacked, or not 1, or not from a shape
    ("def f(x):\n    b, c, h, w = x.shape\n    assert c == 1\n", False),
    ("def f(x):\n    b, c, h, w = x.shape\n    assert b == 3\n", False),
    ("def f(x):\n    b, c = 2, x.shape[1]\n    assert b == 1\n", False),
    ("def f(x):\n    b, c, h, w = x.shape\n    assert b != 2 and h == 1\n", False),
])
def test_a_batch_of_one_is_read_only_off_an_assert_on_the_unpacked_batch(tmp_path, source, one):
    f = _written(tmp_path, source)["f"]
    x = torch.zeros(2, 3, 4, 5) if "x.shape" in source else torch.zeros(2, 3)
    with pytest.raises(AssertionError) as info:
        f(x)
    assert batch_of_one_asserted(info.value) is one


def test_other_errors_ask_for_no_batch_of_one():
    assert not batch_of_one_asserted(ValueError("b == 1"))
