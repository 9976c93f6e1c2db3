"""fixver53 (session 43): verify builds a dataclass config whose required string field the
class only compares with strings where it reads it (``config.kind != "plain"`` inside a call),
so an attention taking such a config, with a property (``config.n_rep``) no attribute bag can
value, is built and checked instead of skipped ("cannot infer `config.n_rep`").  The string is
the first one the field is compared with, as a typed bag values a compared field stored on self.
"""

from __future__ import annotations

import ast

import pytest

torch = pytest.importorskip("torch")

from adopter.config import Config  # noqa: E402
from adopter.ruleset import load_rules  # noqa: E402
from adopter.verify import facts, verify_file  # noqa: E402
from adopter.verify.core import options_for  # noqa: E402
from adopter.verify.result import FAIL, PASS, SKIP  # noqa: E402

CONFIGURED = '''
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LatentConfig:
    label: str
    kind: str
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    options: dict = field(default_factory=dict)

    @property
    def n_rep(self) -> int:
        return self.n_heads // self.n_kv_heads


class GroupedAttention(nn.Module):
    def __init__(self, config: LatentConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.d_head = config.d_head
        self.n_rep = config.n_rep
        self.scale = 1.0 / math.sqrt(config.d_head)
        self.gated = config.options.get("gated", config.kind != "plain")
        self.q_proj = nn.Linear(config.d_model, config.n_heads * config.d_head)
        self.kv_proj = nn.Linear(config.d_model, 2 * config.n_kv_heads * config.d_head)
        self.o_proj = nn.Linear(config.n_heads * config.d_head, config.d_model)

    def forward(self, x, attention_mask=None):
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.n_heads, self.d_head).transpose(1, 2)
        k, v = self.kv_proj(x).view(b, n, 2, self.n_kv_heads, self.d_head).unbind(2)
        k = k.transpose(1, 2).repeat_interleave(self.n_rep, dim=1)
        v = v.transpose(1, 2).repeat_interleave(self.n_rep, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        causal = torch.triu(torch.full((n, n), float("-inf"), device=x.device, dtype=scores.dtype), diagonal=1)
        scores = scores + causal
        if attention_mask is not None:
            scores = scores + attention_mask
        weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(weights, v)
        out = out.transpose(1, 2).reshape(b, n, self.n_heads * self.d_head)
        if self.gated:
            out = out * torch.sigmoid(out)
        return self.o_proj(out)
'''


def _verdicts(tmp_path, source, fix=None):
    path = tmp_path / "attention.py"
    path.write_text(source)
    rules = [r for r in load_rules() if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, fix=fix,
                                   options=options_for(Config(), benchmark=False)) if not r.combined]


def test_a_config_whose_compared_string_field_is_required_is_built_and_passes(tmp_path):
    # main: skip ("cannot infer `config.n_rep` for GroupedAttention")
    results = _verdicts(tmp_path, CONFIGURED)
    assert [r.verdict for r in results] == [PASS], results
    assert "match" in results[0].reason, results[0].reason


def test_a_wrong_patch_of_the_configured_attention_still_fails(tmp_path):
    # the config is built, so a patch with the wrong scale is caught, not skipped
    from types import SimpleNamespace

    from adopter.synth import fix_text

    def wrong(text, path, rules, package=None, **kwargs):
        result = fix_text(text, path, rules, package)
        return SimpleNamespace(text=result.text.replace("scale=self.scale", "scale=2 * self.scale"),
                               applied=result.applied, skipped=result.skipped, error=result.error)

    fixed = wrong(CONFIGURED, "attention.py", [r for r in load_rules() if r.id == "ADP010"])
    assert "scale=2 * self.scale" in fixed.text, fixed.text
    results = _verdicts(tmp_path, CONFIGURED, wrong)
    assert [r.verdict for r in results] == [FAIL], results


def test_a_required_string_field_never_compared_is_still_not_guessed(tmp_path):
    # the look-alike: ``kind`` is handed to a callable, never compared with a string; nothing
    # says which string it holds, so the config stays unbuilt (the skip says why)
    source = CONFIGURED.replace('config.options.get("gated", config.kind != "plain")',
                                'config.options.get("gated", bool(len(config.kind) % 2))')
    results = _verdicts(tmp_path, source)
    assert [r.verdict for r in results] == [SKIP], results
    assert "n_rep" in results[0].reason or "kind" in results[0].reason, results[0].reason


def _reads_of(source: str, param: str = "config") -> facts.Reads:
    classes = facts.class_nodes(ast.parse(source))
    return facts.argument_reads(classes, "GroupedAttention")[param]


def test_the_compared_strings_of_a_read_field_are_recorded():
    assert _reads_of(CONFIGURED).attrs["kind"].compared == ["plain"]
    # ints compared on a field chain are left as they were (only strings are recorded there)
    source = CONFIGURED.replace('config.kind != "plain"', 'config.d_head == 64')
    assert _reads_of(source).attrs["d_head"].compared_ints == []
    assert "kind" not in _reads_of(source).attrs or _reads_of(source).attrs["kind"].compared == []
