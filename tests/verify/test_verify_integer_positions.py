"""A later input the code reads as integer positions gets positions 0..T-1 per sample.

recurrentgemma's local attention takes ``segment_pos`` of shape (batch, time): it counts
segment starts where the positions are 0 (``torch.cumsum(segment_pos == 0, -1)``) in a
function of its file that it hands them to.  Verify guessed float tensors, which the code's
integer reads reject, so the fixed site was never run.  Now a later tensor the code reads as
integers (counted where it equals a whole number, cast to an integer dtype, used as an index,
compared with an ``arange``; also in a function of the file or a method it is handed to) gets
``arange(T)`` per sample first.  By what the code does with the input, not by its name.
"""

import pytest
from stand_in import adp010_verdicts

from adopter.verify.inputs import integer_positions
from adopter.verify.result import FAIL, PASS

SOURCE = '''import torch
from torch import nn


def _window_mask(where, window: int):
    starts = torch.cumsum(where == 0, dim=-1)
    same = starts[:, :, None] == starts[:, None, :]
    dist = where[:, :, None] - where[:, None, :]
    return same & (dist >= 0) & (dist < window)


def _turn(t, cos, sin):
    a, b = t.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class WindowedAttention(nn.Module):
    def __init__(self, width: int = 32, heads: int = 4, window: int = 3, longest: int = 64):
        super().__init__()
        self.heads = heads
        self.window = window
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        half = width // heads // 2
        angle = torch.arange(longest)[:, None] * (1.0 / 100.0 ** (torch.arange(half) / half))[None, :]
        self.register_buffer("cos", angle.cos(), persistent=False)
        self.register_buffer("sin", angle.sin(), persistent=False)

    def forward(self, x, where):
        b, t, c = x.shape
        assert where.shape == (b, t)
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        cos, sin = self.cos[where][:, None], self.sin[where][:, None]
        q, k = _turn(q, cos, sin), _turn(k, cos, sin)
        mask = _window_mask(where, self.window)
        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
        attn = scores.softmax(dim=-1)
        y = attn @ v
        return self.out(y.transpose(1, 2).reshape(b, t, c))
'''

SITE = ('        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)\n'
        '        scores = scores.masked_fill(~mask[:, None], float("-inf"))\n'
        '        attn = scores.softmax(dim=-1)\n'
        '        y = attn @ v\n')
RIGHT = '        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])\n'
DROPPED_MASK = '        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n'
WRONG_SCALE = ('        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None],\n'
               '                                                             scale=1.0)\n')


def test_the_right_patch_passes_with_positions(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "windowed.py", SOURCE, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "gradients match" in results[0].reason


@pytest.mark.parametrize("wrong", [DROPPED_MASK, WRONG_SCALE], ids=["dropped-mask", "wrong-scale"])
def test_wrong_patches_fail_with_positions(tmp_path, all_rules, quick, wrong):
    results = adp010_verdicts(tmp_path / "windowed.py", SOURCE, (SITE, wrong), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_integer_positions(tmp_path, monkeypatch):
    # the code is read from a file (``inspect.getsource``), so each case is written to one
    monkeypatch.syspath_prepend(str(tmp_path))
    cases = {
        "count": ("return torch.cumsum(p == 0, dim=-1)", True),
        "cast": ("return x * p.long()", True),
        "dtype": ("return p.to(torch.int64)", True),
        "index": ("return x[p]", True),
        "arange": ("r = torch.arange(x.shape[1])\nreturn p >= r", True),
        # look-alikes: a float mask compared with 0 for masked_fill, a scale, a float cast, another name
        "mask": ("return x.masked_fill(p == 0, 0.0)", False),
        "scale": ("return x * p", False),
        "float": ("return x * p.float()", False),
        "other": ("return torch.cumsum(q == 0, dim=-1)", False),
    }
    for key, (body, expected) in cases.items():
        text = f"import torch\n\n\ndef f(x, p):\n" + "".join(f"    {line}\n" for line in body.splitlines())
        (tmp_path / f"ip_{key}.py").write_text(text)
        module = __import__(f"ip_{key}")
        assert integer_positions(module.f, "p") is expected, key
    # handed as is to a function of the file that counts it
    (tmp_path / "ip_handed.py").write_text(
        "import torch\n\n\ndef starts(pos):\n    return torch.cumsum(pos == 0, -1)\n\n\n"
        "def f(x, p):\n    return x + starts(p)\n\n\ndef g(x, p):\n    return x + starts(x)\n")
    module = __import__("ip_handed")
    assert integer_positions(module.f, "p") is True
    assert integer_positions(module.g, "p") is False
