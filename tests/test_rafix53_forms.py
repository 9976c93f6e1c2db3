"""Research attention found but not fixed (rafix53): a step between the softmax and the value
product that only a setting of the module turns on.  The fixtures are ours.

- Area attention's optional top-k renormalisation, ``if self.top_k > 0:`` with ``top_k``
  assigned once in ``__init__`` (the finder's ``Match.settings``): on the path the settings
  choose by default the code is ``softmax(q k^T * s) -> dropout -> @ v``, which SDPA
  reproduces.  The match went around that ``if``, and the fixer's guard sends its test to the
  original path, where the top-k step runs as written; the fused call runs only where the test
  is false, so the step would not have run.  Reported, not fixed, before (the match's
  ``unfixable``); now patched, and the patch computes what the original does on both paths.
  The same with the setting's ``if`` nested in another setting's (the guard sends the outer
  test, under which the inner one lies).

- A mask the attention builds, between the scores' product and the fill, as a new tensor
  filled by index in a loop from the scores' sizes and device (UniZero's per-sample context
  mask: ``mask = torch.zeros(B, T, L + T, device=att.device)``, ``for i in range(B):
  mask[i] = ...``, ``mask.unsqueeze(1).expand(-1, att.size(1), -1, -1)``): the if runs on the
  fused path too, with those read off q and k, as a plain if reading them already did
  (``_fresh_tensor_stores``: stores only into a tensor the branch itself makes).

Near-misses that keep declining: the step in the ``else`` branch of a setting (``if self.dense:
pass else: <top-k>``), which the fused path would have to run; the loop writing into a slice of
a buffer instead of a tensor it makes.
"""

from __future__ import annotations

import textwrap

import pytest
import torch
from corpus_forms import found, rules

from adopter.synth import fix_text

SPARSE = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class SparseAttention(nn.Module):
        def __init__(self, dim=16, heads=2, top_k=0, dense=True, p=0.0):
            super().__init__()
            self.heads = heads
            self.top_k = top_k
            self.dense = dense
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.drop = nn.Dropout(p)

        def forward(self, x):
            b, n, d = x.shape
            q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
            k = self.to_k(x).view(b, n, self.heads, -1).transpose(1, 2)
            v = self.to_v(x).view(b, n, self.heads, -1).transpose(1, 2)
            sim = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            attn = sim.softmax(dim=-1)
    STEP
            attn = self.drop(attn)
            out = torch.matmul(attn, v)
            return out.transpose(1, 2).reshape(b, n, d)
""")

TOPK = [
    "kept = attn.topk(min(self.top_k, attn.shape[-1]), dim=-1).values[..., -1:]",
    "attn = torch.where(attn >= kept, attn, torch.zeros_like(attn))",
    "attn = attn / attn.sum(dim=-1, keepdim=True)",
]


def _code(head: list[str], depth: int) -> str:
    """SPARSE with the top-k step under the ``if`` lines ``head`` (the step ``depth`` levels in)."""
    lines = ["    " * (2 + i) + h for i, h in enumerate(head)] + ["    " * (2 + depth) + t for t in TOPK]
    return SPARSE.replace("STEP", "\n".join(lines))


SETTING = _code(["if self.top_k > 0:"], 1)
NESTED = _code(["if self.dense:", "if self.top_k > 0:"], 2)
IN_ELSE = SPARSE.replace("STEP", "\n".join(["        if self.dense:", "            pass", "        else:",
                                             *("            " + t for t in TOPK)]))


def _pair(original: str, fixed: str, dtype, **kwargs):
    """The original and the patched SparseAttention (seed 0, ``kwargs``), in ``dtype``, the
    patched one holding the original's state dict; and a counter of the fused calls made."""
    calls = []
    a_ns, b_ns = {}, {}
    exec(compile(original, "orig.py", "exec"), a_ns)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), b_ns)  # noqa: S102
    fused = b_ns.get("scaled_dot_product_attention")
    if fused is not None:
        b_ns["scaled_dot_product_attention"] = lambda *a, **kw: calls.append(1) or fused(*a, **kw)
    torch.manual_seed(0)
    a = a_ns["SparseAttention"](**kwargs).to(dtype)
    b = b_ns["SparseAttention"](**kwargs).to(dtype)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, calls


def _outputs_and_grads(module, x, *rest):
    x = x.clone().requires_grad_(True)
    out = module(x, *rest)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return [out.detach(), x.grad, *(p.grad for p in module.parameters())]


@pytest.mark.parametrize("code", [SETTING, NESTED], ids=["setting", "nested"])
def test_step_under_a_setting_is_sent_to_the_original_and_the_rest_fused(code):
    assert len(found(code, "ADP010")) == 1
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 1, result.skipped
    assert "scaled_dot_product_attention(" in result.text
    guard = result.text.split("scaled_dot_product_attention(", 1)[0]
    assert ("self.top_k > 0" if code is SETTING else "self.dense") in guard.split("else:")[0]


# float32: SDPA's fused kernel sums the 6 keys' and 8 features' products in another order than
# matmul and softmax do (eps 1.2e-7 times a few terms of size ~1), gradients one more product
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("top_k, dense", [(0, True), (0, False), (3, True), (3, False)])
@pytest.mark.parametrize("code", [SETTING, NESTED], ids=["setting", "nested"])
def test_patch_equals_the_original_on_both_paths(code, top_k, dense, dtype, tol):
    fixed = fix_text(code, "model.py", rules("ADP010")).text
    # SETTING: the guard sends `self.top_k > 0` (dense is no setting of the step there);
    # NESTED: it sends the outer test, so a dense module takes the original at any top_k
    fused = top_k == 0 if code is SETTING else not dense
    for training in (False, True):  # p = 0: the dropout is an identity in training too
        a, b, calls = _pair(code, fixed, dtype, top_k=top_k, dense=dense)
        a.train(training)
        b.train(training)
        torch.manual_seed(1)
        x = torch.randn(2, 6, 16, dtype=dtype)  # 6 keys, head dim 8: sums of 6 and 8 terms
        want = _outputs_and_grads(a, x)
        got = _outputs_and_grads(b, x)
        assert bool(calls) == fused
        for w, g in zip(want, got):
            # the original path is the same code: equal; the fused call rounds differently
            torch.testing.assert_close(g, w, rtol=tol if fused else 0, atol=tol if fused else 0)


def test_top_k_changes_the_output_so_the_comparison_can_fail():
    a, _, _ = _pair(SETTING, SETTING, torch.float64, top_k=0)
    c, _, _ = _pair(SETTING, SETTING, torch.float64, top_k=3)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    assert (a(x) - c(x)).abs().max() > 1e-3


def test_step_in_the_else_branch_of_a_setting_stays_unfixed():
    assert len(found(IN_ELSE, "ADP010")) == 1  # reported: the default settings skip the step
    result = fix_text(IN_ELSE, "model.py", rules("ADP010"))
    assert result.applied == [] and result.text == IN_ELSE and result.skipped  # (declined with a reason)


# --------------------------------------------------------------------------- a mask made in a loop

CONTEXT = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class ContextAttention(nn.Module):
        def __init__(self, dim=16, heads=2, max_len=8):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.register_buffer("causal", torch.tril(torch.ones(max_len, max_len)))

        def forward(self, x, lengths=None):
            b, t, d = x.shape
            q, k, v = self.qkv(x).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            if lengths is not None:
                mask = torch.zeros(b, t, t, device=att.device)
                for i in range(b):
                    mask[i] = self.causal[:t, :t].clone()
                    mask[i, :, :t - lengths[i]] = 0
                mask = mask.unsqueeze(1).expand(-1, att.size(1), -1, -1)
            else:
                mask = self.causal[:t, :t]
            att = att.masked_fill(mask == 0, float("-inf"))
            att = torch.softmax(att, dim=-1)
            y = att @ v
            return y.transpose(1, 2).reshape(b, t, d)
""")
# the same mask written into a slice of the buffer (not a tensor the if makes): no fused path
INTO_BUFFER = CONTEXT.replace("mask = torch.zeros(b, t, t, device=att.device)", "mask = self.causal[:t, :t].expand(b, t, t)")


def test_mask_made_in_a_loop_from_the_scores_sizes_runs_on_the_fused_path():
    result = fix_text(CONTEXT, "model.py", rules("ADP010"))
    assert len(result.applied) == 1, result.skipped
    fused_path = result.text.split("scaled_dot_product_attention(\n", 1)[0]
    assert "att.device" not in fused_path and "device=q.device" in fused_path  # read off q, not the scores


def _context_pair(dtype):
    fixed = fix_text(CONTEXT, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a_ns, b_ns = {}, {}
    exec(compile(CONTEXT, "orig.py", "exec"), a_ns)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), b_ns)  # noqa: S102
    torch.manual_seed(0)
    a = a_ns["ContextAttention"]().to(dtype)
    b = b_ns["ContextAttention"]().to(dtype)
    b.load_state_dict(a.state_dict(), strict=True)
    torch.manual_seed(1)
    return a, b, torch.randn(2, 6, 16, dtype=dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("lengths", [None, [6, 6]])
def test_mask_made_in_a_loop_patch_equals_the_original(lengths, dtype, tol):
    a, b, x = _context_pair(dtype)
    lens = None if lengths is None else torch.tensor(lengths)
    want, got = _outputs_and_grads(a, x, lens), _outputs_and_grads(b, x, lens)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=tol, atol=tol)


def test_mask_made_in_a_loop_hiding_whole_rows_follows_the_minus_inf_convention():
    # lengths [6, 4] hide every key of the second sequence's first two queries: the original's
    # -inf fill makes those rows NaN, the fused call zeros (the fixer's convention for a -inf
    # fill of a mask the input gives, as for `masked_fill(pad[:, None, None, :], -inf)`); every
    # other row is the same
    a, b, x = _context_pair(torch.float64)
    lens = torch.tensor([6, 4])
    with torch.no_grad():
        want, got = a(x, lens), b(x, lens)
    hidden = torch.zeros(2, 6, dtype=torch.bool)
    hidden[1, :2] = True
    assert want[hidden].isnan().all() and (got[hidden] == 0).all()
    torch.testing.assert_close(got[~hidden], want[~hidden], rtol=1e-12, atol=1e-12)


def test_mask_written_into_a_tensor_not_made_there_stays_unfixed():
    result = fix_text(INTO_BUFFER, "model.py", rules("ADP010"))
    assert len(found(INTO_BUFFER, "ADP010")) == 1
    assert result.applied == [] and result.text == INTO_BUFFER


def test_a_setting_the_guard_does_not_send_declines_with_the_match_reason():
    # the fixer checks each setting the match went around is an if it sends to the original:
    # the same match, told of a setting no if of the region tests, keeps the match's reason
    import ast
    import dataclasses

    from adopter.engine import analyze
    from adopter.synth.plan import Edits, Planner, Skip
    from adopter.synth.sdpa import plan as sdpa_plan

    analysis = analyze(SETTING, "model.py", rules("ADP010"))
    (rule, match), = analysis.matches
    assert match.settings == ("self.top_k > 0",) and match.unfixable
    planner = Planner(SETTING, ast.parse(SETTING))
    sdpa_plan(planner, rule, match, Edits(), [])  # the setting is sent: planned
    other = dataclasses.replace(match, settings=("self.heads > 1",))
    with pytest.raises(Skip) as declined:
        sdpa_plan(planner, rule, other, Edits(), [])
    assert str(declined.value) == match.unfixable
