"""Two builds verify's guessed constructor call could not check (``adopter/verify/oversized.py``).

- A constructor whose size default makes a huge parameter (PEER's ``num_key_values = 1_000_000``
  multiplied into an embedding table): the build was refused as too large, so the fixed site went
  unchecked.  Now the build is retried with that size set small, to a square that is also a power
  of two (the code asserts ``sqrt(n).is_integer()`` and takes ``int(sqrt(n))``), and the verdict's
  build says so.
- A base class whose forward reads an attribute only its same-file subclasses set (sssegmentation's
  ``_NonLocalNd`` reads ``self.sub_sample``): built alone it raised on that read.  Now the build
  gets the attribute as every subclass sets it by default.
"""

import ast

from stand_in import adp010_verdicts

from adopter.verify.oversized import huge_sizes, subclass_attributes
from adopter.verify.result import FAIL, PASS

HUGE_SOURCE = '''from math import sqrt

import torch
from torch import nn


class SlotAttention(nn.Module):
    def __init__(self, width: int = 32, heads: int = 4, num_slots: int = 4_000_000):
        super().__init__()
        assert sqrt(num_slots).is_integer()
        self.heads = heads
        self.side = int(sqrt(num_slots))
        self.slots = nn.Parameter(torch.zeros(num_slots * 16))
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        v = v + self.slots[: self.side].sum()
        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        attn = scores.softmax(dim=-1)
        y = attn @ v
        return self.out(y.transpose(1, 2).reshape(b, t, c))
'''

HUGE_SITE = ('        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)\n'
             '        attn = scores.softmax(dim=-1)\n'
             '        y = attn @ v\n')
RIGHT = '        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n'
WRONG_SCALE = '        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)\n'

BASE_SOURCE = '''import torch
from torch import nn


class _Pooled(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.width = width
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.halve:
            k, v = k[:, ::2], v[:, ::2]
        scores = q @ k.transpose(-2, -1) / self.width ** 0.5
        attn = scores.softmax(dim=-1)
        return attn @ v


class PooledA(_Pooled):
    def __init__(self, width, halve=False, **kwargs):
        super().__init__(width, **kwargs)
        self.halve = halve


class PooledB(_Pooled):
    def __init__(self, width, halve=False):
        super().__init__(width)
        self.halve = halve
'''

BASE_SITE = ('        scores = q @ k.transpose(-2, -1) / self.width ** 0.5\n'
             '        attn = scores.softmax(dim=-1)\n'
             '        return attn @ v\n')
BASE_RIGHT = '        return torch.nn.functional.scaled_dot_product_attention(q, k, v)\n'
BASE_WRONG = '        return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)\n'


def test_a_huge_size_default_is_set_small_and_the_right_patch_passes(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "slots.py", HUGE_SOURCE, (HUGE_SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    assert "num_slots=256 (was 4_000_000)" in results[0].details["built"]


def test_a_huge_size_default_set_small_still_fails_a_wrong_patch(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "slots.py", HUGE_SOURCE, (HUGE_SITE, WRONG_SCALE), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_a_base_class_gets_what_only_its_subclasses_set(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "pooled.py", BASE_SOURCE, (BASE_SITE, BASE_RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results
    wrong = adp010_verdicts(tmp_path / "pooled2.py", BASE_SOURCE, (BASE_SITE, BASE_WRONG), all_rules, quick)
    assert [r.verdict for r in wrong] == [FAIL], wrong


def _class(text: str, name: str) -> type:
    space: dict = {}
    exec(compile(text, "<fixture>", "exec"), space)
    return space[name]


def test_huge_sizes_reads_only_sizes_handed_to_calls(tmp_path, monkeypatch):
    # the constructor is read from a file (``inspect.getsource``)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "hs_cases.py").write_text(
        "import torch\nfrom torch import nn\n\n\n"
        "class Handed(nn.Module):\n    def __init__(self, n=1_000_000, d=8):\n        super().__init__()\n"
        "        self.t = nn.Embedding(n * 2, d)\n\n\n"
        "class Kept(nn.Module):\n    def __init__(self, n=1_000_000, d=8):\n        super().__init__()\n"
        "        self.n = n\n        self.t = nn.Embedding(d, d)\n\n\n"
        "class Small(nn.Module):\n    def __init__(self, n=4000, d=8):\n        super().__init__()\n"
        "        self.t = nn.Embedding(n, d)\n")
    import hs_cases

    assert [c for c, _ in huge_sizes(hs_cases.Handed, {})] == [{"n": 256}, {"n": 4096}]
    assert huge_sizes(hs_cases.Handed, {"n": 64}) == []  # given small already
    assert huge_sizes(hs_cases.Kept, {}) == []  # stored, never sizes a layer
    assert huge_sizes(hs_cases.Small, {}) == []  # not huge


def test_subclass_attributes_look_alikes():
    tree = ast.parse(BASE_SOURCE)

    class Built:
        pass

    assert subclass_attributes(tree, "_Pooled", Built()) == [("halve", False)]
    had = Built()
    had.halve = True
    assert subclass_attributes(tree, "_Pooled", had) == []  # the build has it: left as built
    # subclasses that disagree on the value, or one that does not set it: nothing set
    disagree = ast.parse(BASE_SOURCE.replace("class PooledB(_Pooled):\n    def __init__(self, width, halve=False)",
                                             "class PooledB(_Pooled):\n    def __init__(self, width, halve=True)"))
    assert subclass_attributes(disagree, "_Pooled", Built()) == []
    unset = ast.parse(BASE_SOURCE.replace("        super().__init__(width)\n        self.halve = halve\n",
                                          "        super().__init__(width)\n"))
    assert subclass_attributes(unset, "_Pooled", Built()) == []
    assert subclass_attributes(tree, "PooledA", Built()) == []  # no subclass of its own
