"""Forms from blind batch hf26b's misses on newer Hugging Face files (transformers 4.45.2).
Our own fixtures, each with near-misses that must not match."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

# ---------- ADP007: a Conv2d subclass whose forward pads, then calls torch's own _conv_forward

PADDED_CONV = textwrap.dedent("""\
    import torch
    from torch import nn


    class PaddedConv(nn.Conv2d):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.pad = nn.ZeroPad2d((1, 1, 1, 1))

        def forward(self, x):
            return self._conv_forward(self.pad(x), self.weight, self.bias)


    class Stem(nn.Module):
        def __init__(self, cin, cout, use_bn=True):
            super().__init__()
            self.conv = PaddedConv(cin, cout, kernel_size=3, bias=False)
            self.bn = nn.BatchNorm2d(cout) if use_bn else nn.Identity()
            self.act = nn.ReLU()

        def forward(self, x):
            x = self.conv(x)
            x = self.bn(x)
            return self.act(x)
""")


def test_a_padded_conv_subclass_calling_conv_forward_then_batchnorm():
    hit = finding_at(PADDED_CONV, "ADP007", "x = self.bn(x)")
    assert hit is not None
    # its own forward pads first: reported, not folded into a plain convolution
    assert fix_text(PADDED_CONV, "model.py", rules("ADP007")).text == PADDED_CONV


def test_conv_forward_near_misses():
    # the class defines its own _conv_forward (not torch's)
    own = PADDED_CONV.replace("    def forward(self, x):\n        return self._conv_forward",
                              "    def _conv_forward(self, x, w, b):\n        return x\n\n"
                              "    def forward(self, x):\n        return self._conv_forward")
    assert found(own, "ADP007") == []
    # another weight than its own
    assert found(PADDED_CONV.replace("self.pad(x), self.weight, self.bias", "self.pad(x), self.weight * 2, self.bias"),
                 "ADP007") == []
    # no bias argument of its own
    assert found(PADDED_CONV.replace("self.pad(x), self.weight, self.bias", "self.pad(x), self.weight, None"),
                 "ADP007") == []
    # its own weight in the input
    assert found(PADDED_CONV.replace("self.pad(x), self.weight, self.bias", "self.pad(x) * self.weight.sum(), "
                                     "self.weight, self.bias"), "ADP007") == []
    # a Conv1d subclass then BatchNorm1d: not the conv-BN2d pair
    one_d = PADDED_CONV.replace("nn.Conv2d", "nn.Conv1d").replace("nn.BatchNorm2d", "nn.BatchNorm1d").replace(
        "nn.ZeroPad2d((1, 1, 1, 1))", "nn.ZeroPad1d((1, 1))")
    assert found(one_d, "ADP007") == []


# ---------- ADP010: softmax(dim=3) of scores an einsum makes 4-D (a one-operand einsum subtracted: 4-D too)

REL_ATTENTION = textwrap.dedent("""\
    import torch
    from torch import nn


    class RelAttention(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.q = nn.Parameter(torch.randn(d, h, d // h))
            self.k = nn.Parameter(torch.randn(d, h, d // h))
            self.v = nn.Parameter(torch.randn(d, h, d // h))
            self.u = nn.Parameter(torch.zeros(h, d // h))
            self.scale = 1 / (d // h) ** 0.5
            self.dropout = nn.Dropout(0.1)

        def core(self, qh, kh, vh, pos, mask=None, head_mask=None):
            ac = torch.einsum("ibnd,jbnd->bnij", qh + self.u, kh)
            bd = torch.einsum("ibnd,jbnd->bnij", qh, pos)
            score = (ac + bd) * self.scale
            if mask is not None:
                score = score - 1e30 * torch.einsum("ijbn->bnij", mask)
            prob = nn.functional.softmax(score, dim=3)
            prob = self.dropout(prob)
            if head_mask is not None:
                prob = prob * torch.einsum("ijbn->bnij", head_mask)
            return torch.einsum("bnij,jbnd->ibnd", prob, vh)

        def forward(self, x, pos, mask=None, head_mask=None):
            qh = torch.einsum("ibh,hnd->ibnd", x, self.q)
            kh = torch.einsum("ibh,hnd->ibnd", x, self.k)
            vh = torch.einsum("ibh,hnd->ibnd", x, self.v)
            return self.core(qh, kh, vh, pos, mask, head_mask)
""")


def test_softmax_dim_3_of_4d_einsum_scores_is_over_the_keys():
    assert finding_at(REL_ATTENTION, "ADP010", "prob = nn.functional.softmax(score, dim=3)") is not None


def test_the_relative_attention_fix_equals_the_original():
    import torch

    fixed = fix_text(REL_ATTENTION, "model.py", rules("ADP010")).text
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(REL_ATTENTION, fixed, "RelAttention", d=32, h=4)
    with torch.no_grad():
        a.u.normal_()
        b.u.copy_(a.u)
    x = torch.randn(7, 2, 32, dtype=torch.float64)
    pos = torch.randn(7, 2, 4, 8, dtype=torch.float64)
    a.eval()
    b.eval()
    # float64, a softmax over 7 keys of scores of magnitude ~10: 1e-12 is far above rounding
    torch.testing.assert_close(b(x, pos), a(x, pos), rtol=0, atol=1e-12)
    a.train()
    b.train()
    a.dropout.p = b.dropout.p = 0.0
    a(x, pos).sum().backward()
    b(x, pos).sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pb.grad, pa.grad, rtol=0, atol=1e-11, msg=name)
    mask = torch.zeros(7, 7, 2, 4, dtype=torch.float64)
    mask[:, -2:] = 1.0
    # the subtracted mask is fused too since maskfix (attn_mask=-(1e30 * mask)): equal up to rounding
    torch.testing.assert_close(b(x, pos, mask), a(x, pos, mask), rtol=0, atol=1e-12)


def test_softmax_dim_near_misses():
    # dim=2 of 4-D probabilities: over the queries, not the keys
    assert found(REL_ATTENTION.replace("softmax(score, dim=3)", "softmax(score, dim=2)"), "ADP010") == []
    # a mask of unknown rank subtracted: it may broadcast the scores wider, dim=3 is not known last
    wide = REL_ATTENTION.replace('score - 1e30 * torch.einsum("ijbn->bnij", mask)', "score - 1e30 * mask")
    assert "1e30 * mask" in wide
    assert found(wide, "ADP010") == []
    # a step that may lower the rank (a sum) before the einsum: no bound read through it
    summed = REL_ATTENTION.replace("prob = prob * torch.einsum(\"ijbn->bnij\", head_mask)",
                                   "prob = prob.sum(0)")
    assert "prob.sum(0)" in summed
    always = summed.replace("if head_mask is not None:\n            prob = prob.sum(0)", "prob = prob.sum(0)")
    assert "head_mask is not None:\n            prob = prob.sum" not in always
    assert found(always, "ADP010") == []


# ---------- ADP010: softmax written as exp(x - logsumexp(x, dim=-1, keepdim=True))

LSE_ATTENTION = textwrap.dedent("""\
    import torch
    from torch import nn


    class LocalAttention(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.query = nn.Linear(d, d)
            self.key = nn.Linear(d, d)
            self.value = nn.Linear(d, d)
            self.p = 0.1

        def forward(self, x, mask=None):
            q = self.query(x)
            k = self.key(x) / 8.0
            v = self.value(x)
            dots = torch.matmul(q, k.transpose(-1, -2))
            if mask is not None:
                dots = torch.where(mask, dots, torch.tensor(-1e9))
            logits = torch.logsumexp(dots, dim=-1, keepdim=True)
            probs = torch.exp(dots - logits)
            del logits
            probs = nn.functional.dropout(probs, p=self.p, training=self.training)
            return torch.matmul(probs, v)
""")


def test_exp_minus_logsumexp_is_the_softmax_of_the_scores():
    assert finding_at(LSE_ATTENTION, "ADP010", "probs = torch.exp(dots - logits)") is not None
    # the method spelling, keepdim given by position
    method = LSE_ATTENTION.replace("torch.logsumexp(dots, dim=-1, keepdim=True)", "dots.logsumexp(-1, True)")
    assert finding_at(method, "ADP010", "probs = torch.exp(dots - logits)") is not None
    # reported, not fixed: the fused call would not form the scores the log-sum-exp reads
    assert fix_text(LSE_ATTENTION, "model.py", rules("ADP010")).text == LSE_ATTENTION


def test_logsumexp_near_misses():
    # the log-sum-exp is read again (returned): a result the softmax does not give
    returned = LSE_ATTENTION.replace("        del logits\n", "").replace(
        "return torch.matmul(probs, v)", "return torch.matmul(probs, v), logits")
    assert found(returned, "ADP010") == []
    # the scores rebound between the log-sum-exp and the exponent
    rebound = LSE_ATTENTION.replace("        probs = torch.exp(dots - logits)",
                                    "        dots = dots * 2.0\n        probs = torch.exp(dots - logits)")
    assert "dots = dots * 2.0" in rebound
    assert found(rebound, "ADP010") == []
    # no keepdim: the subtraction would broadcast the other way
    assert found(LSE_ATTENTION.replace("dim=-1, keepdim=True", "dim=-1"), "ADP010") == []
    # over the queries (dim=-2): not a softmax over the keys
    assert found(LSE_ATTENTION.replace("dim=-1, keepdim=True", "dim=-2, keepdim=True"), "ADP010") == []
    # the log-sum-exp of another tensor
    other = LSE_ATTENTION.replace("torch.logsumexp(dots,", "torch.logsumexp(q,")
    assert found(other, "ADP010") == []
    # exp without the shift: not normalised
    assert found(LSE_ATTENTION.replace("torch.exp(dots - logits)", "torch.exp(dots)"), "ADP010") == []
