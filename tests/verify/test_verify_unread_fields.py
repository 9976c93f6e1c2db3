"""A config object read by attribute whose fields the class only stores (``adopter/verify/unread.py``).

An attention whose constructor takes a configuration defaulting to None and copies fields of it
onto ``self`` that nothing it runs reads again (``self.series = hp_bundle.series_count``) could not
be built: the fields' names say nothing verify can size, and None has no attributes.  Now such a
field is a small count in a namespace verify builds, and the verdict says so.  The same class also
takes a pairwise bias moved onto the scores by ``.permute(0, 3, 1, 2)`` beside
[batch, tokens, heads, width] inputs: one channel over the first input's tokens fits whatever the
heads (``inputs.py``, the pair candidates).  Fixture of ours.
"""

import ast
import importlib.util
import itertools
import tempfile
from pathlib import Path

from stand_in import adp010_verdicts

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.result import FAIL, PASS
from adopter.verify.unread import unread_fields

SOURCE = '''import math

import torch
from torch import nn


class SeriesAttention(nn.Module):
    def __init__(self, causal=False, dropout=0.1, hp_bundle=None):
        super().__init__()
        self.causal = causal
        self.drop = nn.Dropout(dropout)
        self.series = hp_bundle.series_count
        self.tag = hp_bundle.run_tag

    def forward(self, q, k, v, bias):
        b, l, h, e = q.shape
        scores = torch.einsum("blhe,bshe->bhls", q, k)
        if bias is not None:
            bias = bias.permute(0, 3, 1, 2)
            probs = self.drop(torch.softmax(scores / math.sqrt(e) + bias, dim=-1))
        else:
            probs = self.drop(torch.softmax(scores / math.sqrt(e), dim=-1))
        return torch.einsum("bhls,bshd->blhd", probs, v)
'''

SITE = '''        scores = torch.einsum("blhe,bshe->bhls", q, k)
        if bias is not None:
            bias = bias.permute(0, 3, 1, 2)
            probs = self.drop(torch.softmax(scores / math.sqrt(e) + bias, dim=-1))
        else:
            probs = self.drop(torch.softmax(scores / math.sqrt(e), dim=-1))
        return torch.einsum("bhls,bshd->blhd", probs, v)
'''

# the bias moved onto the scores with its token axes swapped: keys along the queries
WRONG_AXES = '''        bias = bias.permute(0, 3, 2, 1)
        return torch.nn.functional.scaled_dot_product_attention(
            q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3), attn_mask=bias,
            dropout_p=self.drop.p if self.training else 0.0, scale=1 / math.sqrt(e)).permute(0, 2, 1, 3)
'''


def test_a_config_whose_fields_are_only_stored_is_built_and_the_fix_verified(tmp_path, all_rules, quick):
    path = tmp_path / "series_attention.py"
    path.write_text(SOURCE)
    rules = [r for r in all_rules if r.id == "ADP010"]
    rows = [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick) if not r.combined]
    assert len(rows) == 2 and all(r.verdict == PASS for r in rows), rows  # the softmax of each branch
    row = rows[0]
    # the verdict names the namespace verify filled in, and why its values do not matter
    assert "`hp_bundle` is a namespace verify built" in row.reason, row.reason
    assert "series_count=" in row.reason and "run_tag=" in row.reason
    assert "(stored, read nowhere)" in row.details["built"]
    # the fused path ran: the bias was given (the patch keeps the original path without one)
    assert row.details["inputs"].count("float[") == 4, row.details["inputs"]


def test_a_wrong_bias_layout_still_fails(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "series_attention.py", SOURCE, (SITE, WRONG_AXES), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL, FAIL], results


# the per-head bias averaged over the heads before it is moved onto the scores: right only
# where every head has the same bias
WRONG_HEADS = WRONG_AXES.replace("bias.permute(0, 3, 2, 1)", "bias.mean(-1, keepdim=True).permute(0, 3, 1, 2)")


def test_a_bias_mixed_across_heads_fails(tmp_path, all_rules, quick):
    # a bias of one channel shared by all heads would let it pass: verify gives one per head first
    assert WRONG_HEADS != WRONG_AXES
    results = adp010_verdicts(tmp_path / "series_attention.py", SOURCE, (SITE, WRONG_HEADS), all_rules, quick)
    assert results and all(r.verdict == FAIL for r in results), results


# a first input of three axes: the heads are made inside (``self.heads``), so only a pair bias
# of one channel shared by all heads is built
PAIR_SOURCE = '''import math

import torch
from torch import nn


class PairAttention(nn.Module):
    def __init__(self, dim=16, heads=2, dropout=0.1):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, bias):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        bias = bias.permute(0, 3, 1, 2)
        probs = self.drop(torch.softmax(scores + bias, dim=-1))
        return (probs @ v).transpose(1, 2).reshape(b, n, d)
'''

PAIR_SITE = '''        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        bias = bias.permute(0, 3, 1, 2)
        probs = self.drop(torch.softmax(scores + bias, dim=-1))
        return (probs @ v).transpose(1, 2).reshape(b, n, d)
'''

PAIR_HEADS_MEAN = '''        bias = bias.mean(-1, keepdim=True).permute(0, 3, 1, 2)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias,
            dropout_p=self.drop.p if self.training else 0.0)
        return out.transpose(1, 2).reshape(b, n, d)
'''


def test_a_pass_on_a_shared_bias_says_the_heads_went_unchecked(tmp_path, all_rules, quick):
    results = adp010_verdicts(tmp_path / "pair_attention.py", PAIR_SOURCE, (PAIR_SITE, PAIR_HEADS_MEAN),
                              all_rules, quick)
    assert results, results
    for r in results:
        assert r.verdict != PASS or "bias shared by all heads, per-head layout unchecked" in r.reason, r


_COUNTER = itertools.count()


def _fields(source: str, param: str = "cfg", name: str = "A") -> set[str]:
    """``unread_fields`` of class ``name`` of ``source``, imported from a file of its own."""
    folder = Path(tempfile.mkdtemp(prefix="unread-"))
    path = folder / f"unread_fixture_{next(_COUNTER)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    own = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    return unread_fields(getattr(module, name), param, own)


HEADER = "class A:\n    def __init__(self, cfg=None):\n"


def test_a_stored_field_read_nowhere_is_unread():
    assert _fields(HEADER + "        self.n = cfg.count\n        self.t = cfg['tag']\n"
                            "    def forward(self, x):\n        return x\n") == {"count", "tag"}


def test_look_alikes_are_not_unread():
    # the attribute is read by a method
    assert _fields(HEADER + "        self.n = cfg.count\n    def forward(self, x):\n        return x * self.n\n") == set()
    # the field is read another way too (a layer's size)
    assert _fields(HEADER + "        self.n = cfg.count\n        self.w = [0] * cfg.count\n") == set()
    # attributes read by string: any could be read
    assert _fields(HEADER + "        self.n = cfg.count\n    def forward(self, x):\n"
                            "        return getattr(self, 'n')\n") == set()
    # the config kept whole (its fields may be read through it later)
    assert _fields(HEADER + "        self.cfg = cfg\n        self.n = cfg.count\n") == set()
    # handed to another call whole
    assert _fields(HEADER + "        self.n = cfg.count\n        print(cfg)\n") == set()


def test_a_base_that_reads_the_attribute_makes_it_read():
    source = ("class Base:\n    def __init__(self, sizes):\n        self.hidden = sizes['hidden']\n"
              "        self.fc = sizes['fc']\n    def widths(self):\n        return self.hidden\n"
              "class A(Base):\n    def __init__(self, cfg):\n        super().__init__(cfg)\n")
    assert _fields(source) == {"fc"}
    reads_fc = source.replace("return self.hidden", "return self.fc")
    assert _fields(reads_fc) == {"hidden"}


def test_self_handed_whole_to_a_child_makes_no_unread_claim():
    # the child reads the parent's stored field through its argument: no field may be called unread
    handed = HEADER + "        self.w = cfg.width\n        self.inner = Inner(self)\n"
    assert _fields(handed) == set()
    kept = HEADER + "        self.w = cfg.width\n        self.me = [self]\n"
    assert _fields(kept) == set()
    # look-alikes: ``self`` only in super()/isinstance, or before an attribute -- still unread
    old_super = ("class A(object):\n    def __init__(self, cfg=None):\n        super(A, self).__init__()\n"
                 "        self.w = cfg.width\n        self.inner = Inner(self.w2)\n")
    assert _fields(old_super) == {"width"}
