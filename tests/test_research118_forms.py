"""Forms found while checking the blind batch research118 (video, graph-transformer, re-ID,
3-D captioning and recommender code).  The fixtures are ours.

- ADP010 fix: the scores scaled by a number and then, under ``if weights is not None:``, weighed
  by a tensor of the caller in a way an ``if``/``elif``/``else`` on a string chooses
  (``s = s * w`` or ``s = s + w``, else ``raise``): a 3-D captioning package's attention.  The
  one-level form (``if w is not None: s = s * w``) was fixed already (research42); the nested
  choice was declined ("the scale only runs under a condition, whose body also runs" the inner
  if).  The guard now sends the outer test to the original code, so the fused call runs
  exactly when no weights are given (synth/sdpa.py ``_branched_factor``).
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, float64_pair, rules

from adopter.synth import fix_text

CHOSEN = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class ChosenWeights(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads = heads
            self.dh = dim // heads
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)

        def forward(self, a, b, mask=None, weights=None, how="mul"):
            n, t = a.shape[:2]
            s = b.shape[1]
            q = self.to_q(a).view(n, t, self.heads, self.dh).permute(0, 2, 1, 3)
            k = self.to_k(b).view(n, s, self.heads, self.dh).permute(0, 2, 3, 1)
            v = self.to_v(b).view(n, s, self.heads, self.dh).permute(0, 2, 1, 3)
            att = torch.matmul(q, k) / math.sqrt(self.dh)
            if weights is not None:
                if how == "mul":
                    att = att * weights
                elif how == "add":
                    att = att + weights
                else:
                    raise NotImplementedError(how)
            if mask is not None:
                att = att.masked_fill(mask, float("-inf"))
            att = torch.softmax(att, -1)
            return torch.matmul(att, v).permute(0, 2, 1, 3).reshape(n, t, -1)


    class ChoiceAndCount(nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def forward(self, q, k, v, weights=None, how="mul"):
            w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            if weights is not None:
                if how == "mul":
                    w = w * weights
                    self.seen += 1
                else:
                    w = w + weights
            w = torch.softmax(w, -1)
            return torch.matmul(w, v)


    class ChoiceWithElse(nn.Module):
        def forward(self, q, k, v, weights=None, how="mul"):
            w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            if weights is not None:
                if how == "mul":
                    w = w * weights
                else:
                    w = w + weights
            else:
                w = w * 2.0
            w = torch.softmax(w, -1)
            return torch.matmul(w, v)


    class ChoiceReplaces(nn.Module):
        def forward(self, q, k, v, weights=None, how="mul"):
            w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
            if weights is not None:
                if how == "mul":
                    w = w * weights
                else:
                    w = weights
            w = torch.softmax(w, -1)
            return torch.matmul(w, v)
""")


def _region(text: str, cls: str) -> str:
    start = text.index(f"class {cls}(")
    end = text.find("\nclass ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_weights_chosen_by_a_string_are_found():
    assert covered(CHOSEN, "att = torch.softmax(att, -1)", "ADP010")


def test_weights_chosen_by_a_string_are_fixed_behind_the_outer_test():
    result = fix_text(CHOSEN, "model.py", rules("ADP010"))
    assert result.applied
    region = _region(result.text, "ChosenWeights")
    assert "scaled_dot_product_attention(" in region
    guard = region.split("scaled_dot_product_attention(")[0]
    assert "if weights is not None:" in guard
    assert "how ==" not in guard.split("if weights is not None:")[1].split("\n")[0]  # one term, not two


def test_weights_chosen_by_a_string_compute_the_same_and_the_fused_call_runs_without_them():
    import torch

    result = fix_text(CHOSEN, "model.py", rules("ADP010"))
    a, b = float64_pair(CHOSEN, result.text, "ChosenWeights")
    # the fixed forward reads its module's global, which a counting wrapper replaces
    space = b.forward.__func__.__globals__
    calls = []
    fused = space["scaled_dot_product_attention"]

    def counted(*args, **kwargs):
        calls.append(1)
        return fused(*args, **kwargs)

    space["scaled_dot_product_attention"] = counted
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    y = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.zeros(2, 2, 3, 5, dtype=torch.bool)
    mask[..., -1] = True
    weights = torch.rand(2, 2, 3, 5, dtype=torch.float64) + 0.5
    cases = [({}, 1), ({"mask": mask}, 1), ({"weights": weights}, 0),
             ({"weights": weights, "how": "add", "mask": mask}, 0)]
    for kwargs, expected in cases:
        calls.clear()
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        out_a, out_b = a(xa, y, **kwargs), b(xb, y, **kwargs)
        assert len(calls) == expected, kwargs
        torch.testing.assert_close(out_b, out_a)
        out_a.sum().backward()
        out_b.sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)
    for model in (a, b):  # an unknown choice still raises on either path
        try:
            model(x, y, weights=weights, how="max")
        except NotImplementedError:
            pass
        else:
            raise AssertionError("the original's raise was lost")


def test_a_choice_whose_branch_does_more_is_not_fixed():
    # near-miss: one branch also counts calls, which the fused path would skip
    result = fix_text(CHOSEN, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in _region(result.text, "ChoiceAndCount")


def test_a_branch_that_replaces_the_scores_is_not_fixed():
    # near-miss: one branch rebinds the scores to the caller's tensor, not a factor of them
    result = fix_text(CHOSEN, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" not in _region(result.text, "ChoiceReplaces")


def test_a_choice_whose_outer_if_has_an_else_keeps_the_else_factor():
    # the else scales the scores too: the existing branch reading (the fused call is the else
    # branch) takes it; _branched_factor (no else) does not apply, and both paths agree
    import torch

    result = fix_text(CHOSEN, "model.py", rules("ADP010"))
    assert "scale=2.0 / math.sqrt" in _region(result.text, "ChoiceWithElse")
    a, b = float64_pair(CHOSEN, result.text, "ChoiceWithElse")
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 3, 4, dtype=torch.float64) for _ in range(3))
    weights = torch.rand(2, 3, 3, dtype=torch.float64)
    for kwargs in ({}, {"weights": weights}, {"weights": weights, "how": "add"}):
        torch.testing.assert_close(b(q, k, v, **kwargs), a(q, k, v, **kwargs))
