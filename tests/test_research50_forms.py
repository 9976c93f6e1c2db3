"""Forms found while checking the blind batch research50 (research training code and
transformers outside NLP and vision: rl4co's routing attentions, replay-rec's sequential
recommenders, gReLU's genomics attention, CARTE's tabular graph attention, Aurora's weather
backbone).  The fixtures are ours.

- ADP010: the probabilities multiplied by two value tensors (rl4co's dual-aspect DAC attention:
  ``attn1 @ v_node`` then ``attn1 @ v_pos``, the two contexts concatenated).  The match took the
  second product and found nothing computing with the probabilities after it: the first
  product lay between its steps, and its result only reached a tuple.  A product of an
  intermediate between the steps, on every path to the last step, now makes the match no site
  (matcher: _second_product_between), as a product after the match already did.
- ADP010: the softmax in a helper that returns ``(dropout(attn), v)`` under ``if return_v:`` and
  the probabilities alone otherwise, its caller passing ``return_v=True`` and multiplying them
  with v (gReLU's enformer-style attention).  The flow joined both returns, so the caller's
  ``attn`` was not the dropout's output on every path.  A helper's parameter that the call fixes
  to a bool literal (passed, or left at its bool default) and that the helper never rebinds now
  sends ``if param:`` / ``if not param:`` one way (graph._bool_params, _param_flag).
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered

DUAL = textwrap.dedent("""\
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class DualAttention(nn.Module):
        def __init__(self, heads=2, dim=8):
            super().__init__()
            self.norm_factor = 1 / math.sqrt(dim // heads)
            self.w_q = nn.Parameter(torch.randn(heads, dim, dim // heads))
            self.w_k = nn.Parameter(torch.randn(heads, dim, dim // heads))
            self.w_v = nn.Parameter(torch.randn(heads, dim, dim // heads))
            self.w_p = nn.Parameter(torch.randn(heads, dim, dim // heads))

        def forward(self, h, g):
            q = torch.matmul(h, self.w_q)
            k = torch.matmul(h, self.w_k)
            v_node = torch.matmul(h, self.w_v)
            v_pos = torch.matmul(g, self.w_p)
            scores = self.norm_factor * torch.matmul(q, k.transpose(2, 3))
            attn = F.softmax(scores, dim=-1)
    SECOND
    """)
NEEDLE = "attn = F.softmax"

SECOND_PRODUCTS = {
    "two products, contexts concatenated": (
        "        out_node = torch.matmul(attn, v_node)\n"
        "        out_pos = torch.matmul(attn, v_pos)\n"
        "        return torch.cat((out_node, out_pos), -1)\n"),
    "two products, concatenated in a name": (
        "        out_node = torch.matmul(attn, v_node)\n"
        "        out_pos = torch.matmul(attn, v_pos)\n"
        "        out = torch.cat([out_node, out_pos], dim=-1)\n"
        "        return out\n"),
    "two products, the contexts returned together": (
        "        out_node = attn @ v_node\n"
        "        out_pos = attn @ v_pos\n"
        "        return out_node, out_pos\n"),
}

ONE_PRODUCT = {
    "one product, concatenated with the input": (
        "        out = torch.matmul(attn, v_node)\n"
        "        return torch.cat((out, g), -1)\n"),
    "a second product only on a path the caller asks for": (
        "        if g.requires_grad:\n"
        "            extra = torch.matmul(attn, v_pos)\n"
        "        out = torch.matmul(attn, v_node)\n"
        "        return out\n"),
    "the other value multiplied by the output, not by the probabilities": (
        "        out = torch.matmul(attn, v_node)\n"
        "        mixed = torch.matmul(out.transpose(2, 3), v_pos)\n"
        "        return out, mixed\n"),
}


def test_probabilities_multiplied_by_two_values_are_no_site():
    for why, tail in SECOND_PRODUCTS.items():
        assert not covered(DUAL.replace("SECOND\n", tail), NEEDLE, "ADP010"), why


def test_one_product_of_the_probabilities_is_still_a_site():
    for why, tail in ONE_PRODUCT.items():
        assert covered(DUAL.replace("SECOND\n", tail), NEEDLE, "ADP010"), why


FLAG_HELPER = textwrap.dedent("""\
    import torch
    from einops import rearrange
    from torch import einsum, nn


    class RelAttention(nn.Module):
        def __init__(self, dim=16, heads=2, dk=8):
            super().__init__()
            self.heads = heads
            self.dk = dk
            self.to_q = nn.Linear(dim, dk * heads, bias=False)
            self.to_k = nn.Linear(dim, dk * heads, bias=False)
            self.to_v = nn.Linear(dim, dk * heads, bias=False)
            self.to_out = nn.Linear(dk * heads, dim)
            self.content_bias = nn.Parameter(torch.zeros(1, heads, 1, dk))
            self.attn_dropout = nn.Dropout(0.1)

        def get_attn_scores(self, x, return_v=False, renorm=False):
            q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
            q, k, v = map(lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads), (q, k, v))
            q = q / (self.dk ** 0.5)
            logits = einsum("b h i d, b h j d -> b h i j", q + self.content_bias, k)
            attn = logits.softmax(dim=-1)
            if renorm:
                attn = attn / attn.sum(dim=-1, keepdim=True).clamp(min=1e-6)
            if return_v:
                return self.attn_dropout(attn), v
            else:
                return self.attn_dropout(attn)

        def forward(self, x):
            attn, v = CALL
            out = einsum("b h i j, b h j d -> b h i d", attn, v)
            out = rearrange(out, "b h n d -> b n (h d)")
            return self.to_out(out)
    """)
FLAG_NEEDLE = "attn = logits.softmax"

FLAG_CALLS_FOUND = {
    "keyword True": "self.get_attn_scores(x, return_v=True)",
    "positional True, renorm left at its default": "self.get_attn_scores(x, True)",
    "renorm passed False": "self.get_attn_scores(x, return_v=True, renorm=False)",
}

FLAG_CALLS_NOT_FOUND = {
    # the renormalisation after the softmax runs on the path the call fixes
    "renorm passed True": "self.get_attn_scores(x, return_v=True, renorm=True)",
    "renorm passed True by position": "self.get_attn_scores(x, True, True)",
}


def test_helper_branch_fixed_by_a_literal_argument_is_followed():
    for why, call in FLAG_CALLS_FOUND.items():
        assert covered(FLAG_HELPER.replace("CALL", call), FLAG_NEEDLE, "ADP010"), why


def test_helper_branch_the_literal_argument_takes_still_counts():
    for why, call in FLAG_CALLS_NOT_FOUND.items():
        assert not covered(FLAG_HELPER.replace("CALL", call), FLAG_NEEDLE, "ADP010"), why


def test_flag_the_helper_rebinds_is_not_fixed():
    # ``return_v`` rebound in the helper: the call no longer says which return runs
    code = FLAG_HELPER.replace("CALL", "self.get_attn_scores(x, return_v=True)").replace(
        "        if return_v:\n", "        return_v = return_v and x.shape[1] > 1\n        if return_v:\n")
    assert "return_v = return_v and" in code
    assert not covered(code, FLAG_NEEDLE, "ADP010")
