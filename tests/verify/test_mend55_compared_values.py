"""mend55 (session 43): verify values a required ``str`` config field that the class compares with
strings (fixver53) by each of those strings in turn, then by one equal to none of them.  The
default build takes the first value that builds (``if config.bias_kind == "fused": raise`` no
longer ends in a skip), and a pass is checked again with the other values: a patch wrong only on
the path another value takes (a learned bias made when ``bias_kind != "none"``) fails, and the
pass says which values it also passed with and which did not build.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from adopter.config import Config  # noqa: E402
from adopter.ruleset import load_rules  # noqa: E402
from adopter.verify import verify_file  # noqa: E402
from adopter.verify.construct import compared_values  # noqa: E402
from adopter.verify.core import options_for  # noqa: E402
from adopter.verify.result import FAIL, PASS  # noqa: E402

BIASED = '''
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class BiasConfig:
    bias_kind: str
    n_heads: int
    d_model: int
    seq_len: int


class BiasedAttention(nn.Module):
    def __init__(self, config: BiasConfig):
        super().__init__()
        if config.bias_kind == "fused":
            raise ValueError("this kind is built elsewhere")
        self.n_heads = config.n_heads
        self.q = nn.Linear(config.d_model, config.d_model)
        self.k = nn.Linear(config.d_model, config.d_model)
        self.v = nn.Linear(config.d_model, config.d_model)
        self.bias = nn.Parameter(torch.randn(config.n_heads, config.seq_len, config.seq_len)) \\
            if config.bias_kind != "none" else None

    def forward(self, x):
        b, n, c = x.shape
        q = self.q(x).view(b, n, self.n_heads, -1).transpose(1, 2)
        k = self.k(x).view(b, n, self.n_heads, -1).transpose(1, 2)
        v = self.v(x).view(b, n, self.n_heads, -1).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        if self.bias is not None:
            scores = scores + self.bias
        attn = torch.softmax(scores, dim=-1)
        return torch.matmul(attn, v).transpose(1, 2).reshape(b, n, c)
'''

# the look-alike: the field has a default, so verify chooses nothing and varies nothing
DEFAULTED = BIASED.replace("    bias_kind: str\n    n_heads: int\n    d_model: int\n    seq_len: int\n",
                           "    n_heads: int\n    d_model: int\n    seq_len: int\n    bias_kind: str = \"none\"\n")


def _rules():
    return [r for r in load_rules() if r.id == "ADP010"]


def _verdicts(tmp_path, source, fix=None):
    path = tmp_path / "biased.py"
    path.write_text(source)
    return [r for r in verify_file(str(path), _rules(), Config(), benchmark=False, fix=fix,
                                   options=options_for(Config(), benchmark=False)) if not r.combined]


def _bias_dropped(text, path, rules, package=None, **kwargs):
    # a patch wrong only where the bias exists: the fused call is handed no mask at all
    from adopter.synth import fix_text

    result = fix_text(text, path, rules, package)
    patched = result.text.replace("attn_mask=self.bias", "attn_mask=None")
    return SimpleNamespace(text=patched, applied=result.applied, skipped=result.skipped, error=result.error)


def test_the_values_tried_are_the_compared_strings_in_order_then_another():
    assert compared_values(["none"]) == ["none", "other"]
    assert compared_values(["fused", "none"]) == ["fused", "none", "other"]
    # bounded, and the added string is equal to none of the compared ones
    assert compared_values(["other", "a", "b", "c"]) == ["other", "a", "b", "other2"]


def test_a_value_whose_construction_raises_gives_way_to_the_next(tmp_path):
    # main: skip ("BiasedAttention(config=BiasConfig(bias_kind='fused', ...)) raised ValueError")
    source = BIASED
    (result,) = _verdicts(tmp_path, source)
    assert result.verdict == PASS, result.reason
    assert "bias_kind='none'" in result.details["built"], result.details
    assert "config.bias_kind='fused' does not build (ValueError" in result.reason, result.reason
    # the other value takes the path that makes and adds the bias, and passes there too
    assert "also passes with config.bias_kind='other'" in result.reason, result.reason


def test_a_patch_wrong_only_on_another_values_path_fails(tmp_path):
    # main: the wrong patch passes where the class builds (it is checked with bias None only)
    fixed = _bias_dropped(BIASED, "biased.py", _rules())
    assert "attn_mask=None" in fixed.text and "attn_mask=self.bias" not in fixed.text
    (result,) = _verdicts(tmp_path, BIASED, _bias_dropped)
    assert result.verdict == FAIL, result.reason
    assert result.reason.startswith("with config.bias_kind='other': "), result.reason


def test_a_field_with_a_default_is_not_varied(tmp_path):
    # the look-alike: the default "none" is what the class is built with; no other value is tried,
    # so the same wrong patch is reached only as the default build reaches it (its no-bias path)
    assert "bias_kind: str = \"none\"" in DEFAULTED
    (right,) = _verdicts(tmp_path, DEFAULTED)
    assert right.verdict == PASS and "config.bias_kind" not in right.reason, right.reason
    (wrong,) = _verdicts(tmp_path, DEFAULTED, _bias_dropped)
    assert wrong.verdict == PASS and "config.bias_kind" not in wrong.reason, wrong.reason
