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
"""

from __future__ import annotations

from corpus_forms import found

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
