"""Attention that fills masked scores with a large negative number (``masked_fill(mask,
-1e4)``, ``torch.finfo(...).min``), on inputs where some query row has every key masked
(a query x key padding mask: the padded queries see nothing).

The original replaces those scores: the row's softmax is uniform whatever the scores were,
and the filled scores pass no gradient back to q and k.  ``scaled_dot_product_attention``
adds the float mask instead, so such a row keeps the differences of its scores when the fill
does not swamp them (-1e4 does not) and its gradient reaches q and k through every key.  The
patch therefore sends a call whose fill mask fills a whole row to the original path while
gradients are wanted, and keeps SDPA for every other call (counted here); a fill mask built from sizes alone (causal) needs no
such test; one the attention computes from an input after the scores is tested as that
computation reads the input, or left unfixed with a reason where it cannot be read so.  Modules are our own fixtures, fixed by the
real ``fix_text``, loaded from files, compared in float64 (outputs and every gradient).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adopter.ruleset import load_rules
from adopter.synth import fix_text

ADP010 = [r for r in load_rules() if r.id == "ADP010"]

HEADER = """
import torch
from torch import nn
import torch.nn.functional as F
"""

FILLED_PARAMETER = HEADER + """
class Attention(nn.Module):
    def forward(self, q, k, v, blocked):
        scores = torch.matmul(q, k.transpose(-2, -1)) / q.size(-1) ** 0.5
        scores = scores.masked_fill(blocked, FILL)
        probs = F.softmax(scores, dim=-1)
        return torch.matmul(probs, v)
"""

WHERE_BEFORE = HEADER + """
class Attention(nn.Module):
    def forward(self, q, k, v, pad):
        keep = ~(pad[:, None, :, None] | pad[:, None, None, :])
        scores = q @ k.transpose(-1, -2) * q.size(-1) ** -0.5
        scores = torch.where(keep, scores, torch.finfo(scores.dtype).min)
        return scores.softmax(dim=-1) @ v
"""

CAUSAL_IN_REGION = HEADER + """
class Attention(nn.Module):
    def forward(self, q, k, v):
        sim = q @ k.transpose(-1, -2) * q.size(-1) ** -0.5
        i, j = sim.shape[-2:]
        causal = torch.ones((i, j), dtype=torch.bool, device=sim.device).triu(j - i + 1)
        sim = sim.masked_fill(causal, -1e4)
        return sim.softmax(dim=-1) @ v
"""

INPUT_MASK_IN_REGION = HEADER + """
class Attention(nn.Module):
    def forward(self, q, k, v, pad):
        sim = q @ k.transpose(-1, -2) * q.size(-1) ** -0.5
        blocked = pad[:, None, :, None] | pad[:, None, None, :]
        sim = sim.masked_fill(blocked, -1e4)
        return sim.softmax(dim=-1) @ v
"""


def _fixed(source: str, monkeypatch, module_from_file):
    """The original module and the fixed one (SDPA calls counted from its import on)."""
    result = fix_text(source, "attention.py", ADP010)
    assert result.error is None
    calls = []
    real = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    original = module_from_file(source, "filled_original")
    patched = module_from_file(result.text, "filled_patched")
    return result, original.Attention(), patched.Attention(), calls


def _inputs(padded_queries: bool):
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 6, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, 4:] = True  # the last two positions of the second sequence are padding
    if not padded_queries:
        return q, k, v, pad[:, None, None, :], pad  # keys masked only: every query sees a key
    return q, k, v, pad[:, None, :, None] | pad[:, None, None, :], pad


def _same(original, patched, *args):
    """Outputs and the gradients of q, k and v agree (float64 defaults)."""
    q, k, v, *rest = args
    grads = []
    for module in (original, patched):
        for t in (q, k, v):
            t.grad = None
        out = module(q, k, v, *rest)
        out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape))
        grads.append((out.detach(), *(t.grad.clone() for t in (q, k, v))))
    for name, theirs, ours in zip(("output", "dq", "dk", "dv"), *grads):
        torch.testing.assert_close(ours, theirs, msg=lambda m: f"{name}: {m}")


def _padded_queries_then_none(original, patched, calls):
    """Modules taking the padding itself: padded queries (the original path), then no padding
    (SDPA), each compared with the original."""
    for padded_queries, sdpa_calls in ((True, 0), (False, 1)):
        calls.clear()
        q, k, v, _, pad = _inputs(padded_queries)
        if not padded_queries:
            pad = torch.zeros_like(pad)
        _same(original, patched, q, k, v, pad)
        assert len(calls) == sdpa_calls


@pytest.mark.parametrize("fill", ["-1e4", "torch.finfo(scores.dtype).min", "-torch.finfo(q.dtype).max"])
def test_rows_the_fill_covers_entirely_take_the_original_path(fill, monkeypatch, module_from_file):
    result, original, patched, calls = _fixed(FILLED_PARAMETER.replace("FILL", fill), monkeypatch, module_from_file)
    assert len(result.applied) == 1
    q, k, v, blocked, _ = _inputs(padded_queries=True)
    _same(original, patched, q, k, v, blocked)
    assert calls == []  # padded queries see no key: the original path
    q, k, v, blocked, _ = _inputs(padded_queries=False)
    _same(original, patched, q, k, v, blocked)
    assert len(calls) == 1  # every query sees a key: SDPA
    if "finfo" in fill:
        # without gradients (inference, torch.export) no data-dependent test: SDPA, and the
        # rows with no key agree because the fill swamps their scores
        q, k, v, blocked, _ = _inputs(padded_queries=True)
        with torch.no_grad():
            torch.testing.assert_close(patched(q, k, v, blocked), original(q, k, v, blocked))
        assert len(calls) == 2


def test_a_keep_mask_of_where_computed_before_the_scores(monkeypatch, module_from_file):
    result, original, patched, calls = _fixed(WHERE_BEFORE, monkeypatch, module_from_file)
    assert len(result.applied) == 1
    _padded_queries_then_none(original, patched, calls)


def test_a_causal_mask_built_from_sizes_needs_no_test(monkeypatch, module_from_file):
    result, original, patched, calls = _fixed(CAUSAL_IN_REGION, monkeypatch, module_from_file)
    assert len(result.applied) == 1
    assert ".all(-1)" not in result.text
    q, k, v, _, _ = _inputs(padded_queries=False)
    _same(original, patched, q, k, v)
    assert len(calls) == 1


def test_a_mask_the_attention_computes_from_an_input_is_read_before_it(monkeypatch, module_from_file):
    # ``blocked = pad[...] | pad[...]`` after the scores: the guard reads that value of ``pad``
    result, original, patched, calls = _fixed(INPUT_MASK_IN_REGION, monkeypatch, module_from_file)
    assert len(result.applied) == 1
    assert "and (pad[:, None, :, None] | pad[:, None, None, :]).all(-1).any()" in result.text
    _padded_queries_then_none(original, patched, calls)


def test_a_mask_the_attention_chooses_on_an_if_else_is_read_as_the_branch_gives_it(monkeypatch, module_from_file):
    # (session 19: declined before; the guard now reads the value each branch gives the mask)
    source = INPUT_MASK_IN_REGION.replace(
        "        blocked = pad[:, None, :, None] | pad[:, None, None, :]\n",
        "        if self.training:\n"
        "            blocked = pad[:, None, None, :]\n"
        "        else:\n"
        "            blocked = pad[:, None, :, None] | pad[:, None, None, :]\n")
    assert source != INPUT_MASK_IN_REGION
    result, original, patched, calls = _fixed(source, monkeypatch, module_from_file)
    assert len(result.applied) == 1
    assert "(pad[:, None, None, :] if self.training else (pad[:, None, :, None] | pad[:, None, None, :]))" \
        ".all(-1).any()" in result.text
    original.eval()
    patched.eval()
    _padded_queries_then_none(original, patched, calls)  # padded queries see no key: the original
    original.train()
    patched.train()
    calls.clear()
    q, k, v, _, pad = _inputs(padded_queries=True)
    _same(original, patched, q, k, v, pad)  # training hides padded keys only: every query sees a key
    assert len(calls) == 1


def test_a_mask_the_attention_chooses_from_the_scores_is_left_with_a_reason():
    source = INPUT_MASK_IN_REGION.replace(
        "        blocked = pad[:, None, :, None] | pad[:, None, None, :]\n",
        "        if self.training:\n"
        "            blocked = pad[:, None, None, :]\n"
        "        else:\n"
        "            blocked = pad[:, None, None, :] | (sim < -30)\n")
    assert source != INPUT_MASK_IN_REGION
    result = fix_text(source, "attention.py", ADP010)
    assert result.applied == [] and result.text == source
    (reason,) = [why for _, why in result.skipped]
    assert "reads a value of the attention" in reason
