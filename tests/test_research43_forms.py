"""Forms found while checking the blind batch research43 (language- and sequence-model code:
a 109M decoder, a from-scratch LLaMA-style trainer, a recommender's attention and FFN modules,
an LLM training framework's GPT-2/LLaMA blocks, a hybrid gated-delta/attention model, the
Temporal Fusion Transformer, a molecule Graphormer, a recurrent transformer).  The fixtures are
ours.

- A manual RMSNorm or SwiGLU written as the fallback of Liger Kernel's functional kernel
  (``if self.use_liger and x.device.type != "cpu": return self.liger_rms_norm(x, w, eps)``
  then ``self._norm(x.float())``; ``if use_liger: h = liger_swiglu(w1(x), w2(x)) else: h =
  silu(w1(x)) * w2(x)``; optimus-dl's layer_norms.py and mlp.py): the code has adopted the
  kernel the rule names, as a fallback of ``F.rms_norm`` already was (ADP011, ADP013; the
  Liger rules ADP014 and ADP015 read their kernels' functional names the same way).
  Near-misses: the same manual forms whose other branch calls a function of another name (a
  plain ``torch.compile``-d helper), still reported.
- The attention's probabilities returned to the caller, which averages them over the heads and
  hands the average back (``scores.mean(dim=1)`` returned beside the output; tft-torch's
  InterpretableMultiHeadAttention): an average of the probabilities handed back is handed
  back, as the probabilities themselves were (ADP010: reported; not fixed, since every call
  hands them back).  Near-misses: the average added to a loss, and an entropy of the
  probabilities, computed on every path: still no site.
- Fix side: a masked_fill whose value is a class constant (``ATTENTION_MASK_VALUE = -1.0e6``
  in the class body, read as ``self.ATTENTION_MASK_VALUE``; freerec's attention): the value is
  known, so the fill is a large negative number and the site is fixed (equal in float64, with
  and without the mask).  Near-miss: the same name also assigned on ``self`` in ``__init__``
  (its value is then whatever ``__init__`` makes it): not fixed.
"""

from __future__ import annotations

import textwrap

from corpus_forms import float64_pair, found, rules

from adopter.synth import fix_text

# --------------------------------------------------------------------------- Liger fallbacks

RMS_NORM = """\
import torch
import torch.nn as nn

try:
    from liger_kernel.transformers.functional import KERNEL
    HAVE = True
except ImportError:
    KERNEL = None
    HAVE = False


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.use_kernel = HAVE
        self.kernel = KERNEL

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        if self.use_kernel and x.device.type != "cpu":
            return self.kernel(x, self.weight, self.eps)
        output = self._norm(x.float())
        return (output * self.weight).type_as(x)
"""

SWIGLU = """\
import torch
import torch.nn as nn

try:
    from liger_kernel.transformers.functional import KERNEL
except ImportError:
    KERNEL = None


class SwiGLU(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.w1 = nn.Linear(d, h, bias=False)
        self.w2 = nn.Linear(d, h, bias=False)
        self.c_proj = nn.Linear(h, d, bias=False)
        self.use_kernel = KERNEL is not None

    def forward(self, x):
        if self.use_kernel and x.device.type != "cpu":
            hidden = KERNEL(self.w1(x), self.w2(x))
        else:
            hidden = nn.functional.silu(self.w1(x)) * self.w2(x)
        return self.c_proj(hidden)
"""


def test_rms_norm_after_a_returned_liger_rms_norm_is_its_fallback():
    # the manual norm in a helper the forward calls only after `if ...: return
    # self.liger_rms_norm(...)` (an attribute holding Liger's functional kernel)
    code = RMS_NORM.replace("KERNEL", "liger_rms_norm").replace("self.kernel", "self.liger_rms_norm")
    assert found(code, "ADP011") == []


def test_rms_norm_after_another_returned_call_is_still_reported():
    code = RMS_NORM.replace("KERNEL", "compiled_norm").replace("self.kernel", "self.compiled_norm")
    assert len(found(code, "ADP011")) == 1


def test_swiglu_in_the_else_of_liger_swiglu_is_its_fallback():
    assert found(SWIGLU.replace("KERNEL", "liger_swiglu"), "ADP013") == []


def test_swiglu_in_the_else_of_another_call_is_still_reported():
    assert len(found(SWIGLU.replace("KERNEL", "fused_gate"), "ADP013")) == 1


# --------------------------------------------------------------------------- ADP010: averaged probabilities

AVERAGED = textwrap.dedent("""\
    import math

    import torch
    from torch import nn
    import torch.nn.functional as F


    class InterpretableAttention(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.d = d
            self.heads = heads
            self.w_q = nn.Linear(d, d * heads)
            self.w_k = nn.Linear(d, d * heads)
            self.w_v = nn.Linear(d, d)
            self.out = nn.Linear(d, d)

        def forward(self, q, k, v, mask=None):
            n = q.size(0)
            qh = self.w_q(q).view(n, -1, self.heads, self.d).transpose(1, 2)
            kh = self.w_k(k).view(n, -1, self.heads, self.d).transpose(1, 2)
            vh = self.w_v(v).repeat(1, 1, self.heads).view(n, -1, self.heads, self.d).transpose(1, 2)
            outs, probs = self.attention(qh, kh, vh, mask)
            USE
            return self.out(outs.mean(dim=1)), RETURNED

        def attention(self, q, k, v, mask=None):
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d)
            if mask is not None:
                scores = scores.masked_fill(mask, -1e9)
            scores = F.softmax(scores, dim=-1)
            return torch.matmul(scores, v), scores
""")


def test_probabilities_averaged_over_heads_and_handed_back_are_a_site():
    code = AVERAGED.replace("USE", "weights = probs.mean(dim=1)").replace("RETURNED", "weights")
    assert len(found(code, "ADP010")) == 1


def test_probabilities_averaged_by_torch_mean_and_handed_back_are_a_site():
    code = AVERAGED.replace("USE", "weights = torch.mean(probs, dim=1)").replace("RETURNED", "weights")
    assert len(found(code, "ADP010")) == 1


def test_probabilities_summed_with_another_live_tensor_are_no_site():
    # near-miss: torch.sum of a product of the probabilities with themselves is computation
    code = AVERAGED.replace("USE", "weights = torch.sum(probs * probs, dim=-1)").replace("RETURNED", "weights")
    assert found(code, "ADP010") == []


def test_probabilities_averaged_into_a_loss_are_no_site():
    code = AVERAGED.replace("USE", "penalty = probs.mean(dim=1).pow(2).sum()").replace("RETURNED", "penalty")
    assert found(code, "ADP010") == []


def test_an_entropy_of_the_probabilities_is_no_site():
    code = AVERAGED.replace("USE", "entropy = -(probs * probs.clamp_min(1e-9).log()).sum(-1)").replace(
        "RETURNED", "entropy")
    assert found(code, "ADP010") == []


# --------------------------------------------------------------------------- fix: class-constant fill

CONSTANT_FILL = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    class Attention(nn.Module):
        MASK_VALUE = -1.0e6

        def __init__(self, d, heads=2):
            super().__init__()
            self.heads = heads
            self.dh = d // heads
            self.to_q = nn.Linear(d, d, bias=False)
            self.to_k = nn.Linear(d, d, bias=False)
            self.to_v = nn.Linear(d, d, bias=False)
            self.drop = nn.Dropout(0.0)
            INIT

        def forward(self, x, mask=None):
            b, n, _ = x.shape
            q = self.to_q(x).view(b, n, self.heads, self.dh).transpose(1, 2)
            k = self.to_k(x).view(b, n, self.heads, self.dh).transpose(1, 2)
            v = self.to_v(x).view(b, n, self.heads, self.dh).transpose(1, 2)
            scores = torch.einsum("bhmd,bhnd->bhmn", q, k) / math.sqrt(self.dh)
            if mask is not None:
                scores = scores.masked_fill(mask, self.MASK_VALUE)
            scores = self.drop(scores.softmax(dim=-1))
            out = torch.einsum("bhmn,bhnd->bhmd", scores, v)
            return out.transpose(1, 2).reshape(b, n, -1)
""")


def test_a_class_constant_fill_value_is_fixed():
    code = CONSTANT_FILL.replace("INIT", "pass")
    result = fix_text(code, "model.py", rules("ADP010"))
    assert result.applied
    assert "scaled_dot_product_attention(" in result.text


def test_a_class_constant_fill_fix_computes_the_same():
    import torch

    code = CONSTANT_FILL.replace("INIT", "pass")
    result = fix_text(code, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention(" in result.text
    a, b = float64_pair(code, result.text, "Attention", d=8)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.zeros(5, 5, dtype=torch.bool).triu(1)
    for kwargs in ({}, {"mask": mask}):
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        out_a, out_b = a(xa, **kwargs), b(xb, **kwargs)
        torch.testing.assert_close(out_b, out_a)
        out_a.sum().backward()
        out_b.sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)
    # a query row whose every key is filled: the original averages the values there (its
    # scores all -1e6); -1e6 does not swamp the scores, so the fused call must not take it,
    # with or without gradients
    full = mask.clone()
    full[-1] = True
    with torch.no_grad():
        torch.testing.assert_close(b(x, mask=full), a(x, mask=full))


def test_a_class_constant_also_set_on_self_is_not_read():
    # near-miss: __init__ rebinds the name on self, so the class value is not what the fill reads
    code = CONSTANT_FILL.replace("INIT", "self.MASK_VALUE = mask_value()").replace(
        "import math\n", "import math\n\n\ndef mask_value():\n    return 0.0\n")
    result = fix_text(code, "model.py", rules("ADP010"))
    # (since rafix48 the fill is read at run time, by the guard, not as the class's -1.0e6: the
    # instance's 0.0 masks nothing out, so every call with a mask takes the original code)
    assert "not (self.MASK_VALUE <= -10000.0)" in result.text
    assert "-1.0e6" not in result.text.split("else:")[-1]
    import torch

    a, b = float64_pair(code, result.text, "Attention", d=8)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.zeros(5, 5, dtype=torch.bool).triu(1)
    with torch.no_grad():
        torch.testing.assert_close(b(x, mask=mask), a(x, mask=mask))
        torch.testing.assert_close(b(x), a(x))
