"""review49's leftovers (session 43, mend52).  The fixtures are ours.

1. ADP010's ``scale=self.scale`` where ``__init__`` stored in ``self.scale`` a constructor
   parameter that a caller may hand a tensor: the patch keeps the original for any value but a
   Python number (``not isinstance(self.scale, (int, float))``), as it does for a factor handed
   to the forward.  Look-alikes keep a plain ``scale=``: a literal, a size (``(dim // heads) **
   -0.5``), ViT's ``qk_scale or head_dim ** -0.5`` (None by default and where the file builds it),
   a number default every construction in the file keeps a number, GPT-J's 0-d tensor of a size.
2. ADP010 no longer reports a term that a module the flow does not follow computes from the
   scores (``s + self.gate(s)``): SDPA's mask is given before them.
3. ADP013's one-function gate/up form needs the function to be a projection of x.
"""

from __future__ import annotations

import pytest
from corpus_forms import FusedCalls as _Counted
from corpus_forms import float64_pair
from corpus_forms import sdpa_fixed as _fixed

torch = pytest.importorskip("torch")

STORED = """\
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2, temperature=None):
        super().__init__()
        self.heads = heads
        self.temperature = temperature
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.temperature
        probs = scores.softmax(dim=-1)
        out = torch.matmul(probs, v)
        return out.transpose(1, 2).reshape(b, n, d)
"""

# a number by default, but a construction in the file hands a learned per-head tensor
PASSED_TENSOR = STORED.replace("temperature=None", "temperature=0.5") + """

class Model(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.attn = Attention(dim, temperature=nn.Parameter(torch.ones(2, 1, 1)))
"""

# no default and no use as a size: whatever the caller passes
NO_DEFAULT = STORED.replace("dim=8, heads=2, temperature=None", "temperature, dim=8, heads=2").replace(
    "* self.temperature", "/ (self.temperature * 2)")

# a literal power of a required parameter, but a construction in the file hands it a tensor
POWER_OF_A_TENSOR = STORED.replace("dim=8, heads=2, temperature=None", "temperature, dim=8, heads=2").replace(
    "self.temperature = temperature", "self.temperature = temperature ** -1") + """

class Model(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.attn = Attention(nn.Parameter(torch.full((2, 1, 1), 2.0)), dim)
"""
# the same power, bound by a method other than ``__init__`` (no construction says what it takes)
POWER_IN_A_METHOD = STORED.replace("self.temperature = temperature", "self.set_temperature(temperature)").replace(
    "    def forward(self, x):", "    def set_temperature(self, t):\n        self.temperature = t ** -1\n\n    def forward(self, x):")

GUARDED = [("stored", STORED), ("passed_tensor", PASSED_TENSOR), ("no_default", NO_DEFAULT),
           ("power_of_a_tensor", POWER_OF_A_TENSOR), ("power_in_a_method", POWER_IN_A_METHOD)]


@pytest.mark.parametrize("name, source", GUARDED)
def test_a_stored_constructor_factor_is_guarded_to_be_a_number(name, source):
    fixed = _fixed(source)
    assert "not isinstance(self.temperature" in fixed, name
    assert "scaled_dot_product_attention(" in fixed


@pytest.mark.parametrize("name, source", GUARDED)
@pytest.mark.parametrize("factor, fused", [(0.3, 1), (2, 1), ("zero_d", 0), ("per_head", 0), ("pairwise", 0)])
def test_a_stored_factor_matches_the_original_whatever_it_is(name, source, factor, fused):
    torch.manual_seed(1)
    values = {"zero_d": torch.tensor(0.7, dtype=torch.float64),
              "per_head": torch.rand(2, 1, 1, dtype=torch.float64) + 0.5,
              "pairwise": torch.rand(5, 5, dtype=torch.float64) + 0.5}
    temperature = values.get(factor, factor)
    a, b = float64_pair(source, _fixed(source), "Attention", temperature=temperature)
    counter = _Counted(b)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_a, out_b = a(xa), b(xb)
        # float64, a reduction over 4 channels and 5 keys: the default tolerances hold
        torch.testing.assert_close(out_b, out_a)
        weight = torch.randn_like(out_a)
        (weight * out_a).sum().backward()
        (weight * out_b).sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)
        for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad)
    assert counter.calls == 2 * fused, name


VIT = """\
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2, qk_scale=None):
        super().__init__()
        self.heads = heads
        head_dim = dim // heads
        self.scale = qk_scale or head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        return (attn @ v).transpose(1, 2).reshape(b, n, d)


class Block(nn.Module):
    def __init__(self, dim, heads, qk_scale=None):
        super().__init__()
        self.attn = Attention(dim, heads=heads, qk_scale=qk_scale)
"""

LOOK_ALIKES = [
    ("vit_qk_scale", VIT),
    ("size", VIT.replace("self.scale = qk_scale or head_dim ** -0.5", "self.scale = (dim // heads) ** -0.5")),
    ("literal", VIT.replace("self.scale = qk_scale or head_dim ** -0.5", "self.scale = 0.125")),
    ("number_default_kept", VIT.replace("qk_scale=None):\n        super().__init__()\n        self.heads",
                                        "qk_scale=0.25):\n        super().__init__()\n        self.heads")
     .replace("self.scale = qk_scale or head_dim ** -0.5", "self.scale = qk_scale")
     .replace("qk_scale=qk_scale)", "qk_scale=0.5)")),
    ("replaced_none", VIT.replace("self.scale = qk_scale or head_dim ** -0.5",
                                  "if qk_scale is None:\n            qk_scale = head_dim ** -0.5\n"
                                  "        self.scale = qk_scale")),
    ("zero_d_of_a_size", VIT.replace(
        "self.scale = qk_scale or head_dim ** -0.5",
        "self.scale = torch.sqrt(torch.tensor(head_dim, dtype=torch.float32)).to(torch.get_default_dtype())")
     .replace("* self.scale", "/ self.scale")),
]


EINOPS_HEADS = """\
import torch
from einops import rearrange
from torch import nn


class Attention(nn.Module):
    def __init__(self, heads, dim=8):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        heads = self.heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=heads) for t in (q, k, v))
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        return rearrange(attn @ v, "b h n d -> b n (h d)")
"""

# (heads, with no default: an einops axis length read through a local copy in the forward, a size)
LOOK_ALIKES.append(("einops_axis_length", EINOPS_HEADS))
# a required parameter used nowhere as a size, made a scale by a literal power (``qk_dim ** -0.5``)
LOOK_ALIKES.append(("power_of_a_required_parameter",
                    STORED.replace("dim=8, heads=2, temperature=None", "qk_dim, dim=8, heads=2")
                    .replace("self.temperature = temperature", "self.temperature = qk_dim ** -0.5")))
BUILT_WITH = {"einops_axis_length": {"heads": 2}, "power_of_a_required_parameter": {"qk_dim": 4}}


@pytest.mark.parametrize("name, source", LOOK_ALIKES)
def test_a_number_stored_in_init_keeps_a_plain_scale(name, source):
    fixed = _fixed(source)
    assert "isinstance(" not in fixed, name
    a, b = float64_pair(source, fixed, "Attention", **BUILT_WITH.get(name, {}))
    counter = _Counted(b)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x), a(x))
    assert counter.calls == 1


def test_a_block_handing_a_tensor_to_the_vit_scale_is_guarded():
    # the look-alike's own form, but the file's Block hands qk_scale a learned tensor
    source = VIT.replace("qk_scale=qk_scale)", "qk_scale=nn.Parameter(torch.ones(heads, 1, 1)))")
    assert "not isinstance(self.scale, (int, float))" in _fixed(source)


# 2. A term computed from the scores by a module the flow does not follow (another file's
#    class, a torch layer): SDPA's mask is given before the scores, so no site.  Look-alikes
#    stay sites: the same module handed only the scores' sizes, a module of this file whose
#    forward reads only their shape, a callable the caller hands in (the fixer's type guard).

GATED = """\
import torch
from torch import nn
from elsewhere import ScoreGate


class Attention(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.gate = GATE

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-2, -1)) * 0.5
        scores = scores + TERM
        probs = scores.softmax(dim=-1)
        out = torch.matmul(probs, v)
        return out.transpose(1, 2).reshape(b, n, d)
"""

SIZED_HERE = """

class SizedBias(nn.Module):
    def __init__(self, heads=2):
        super().__init__()
        self.slopes = nn.Parameter(torch.ones(heads, 1, 1))

    def forward(self, sim):
        i, j = sim.shape[-2:]
        pos = torch.arange(j, device=sim.device) - torch.arange(i, device=sim.device)[:, None]
        return self.slopes * pos.abs().neg()
"""


def _gated(gate: str, term: str, extra: str = "") -> str:
    return GATED.replace("GATE", gate).replace("TERM", term) + extra


@pytest.mark.parametrize("gate", ["ScoreGate(heads)", "nn.Linear(4, 4)", "nn.Tanh()"])
def test_a_term_an_unread_module_computes_from_the_scores_is_no_site(gate):
    from corpus_forms import found

    assert found(_gated(gate, "self.gate(scores)"), "ADP010") == []
    # (the same module read in forms SDPA cannot take either: handed the scores by keyword)
    assert found(_gated(gate, "self.gate(x=scores)"), "ADP010") == []


@pytest.mark.parametrize("code", [
    _gated("ScoreGate(heads)", "self.gate(*scores.shape[-2:])"),
    _gated("SizedBias(heads)", "self.gate(scores)", SIZED_HERE),
    _gated("None", "pos_emb(scores)").replace("def forward(self, x):", "def forward(self, x, pos_emb):"),
])
def test_a_term_given_before_the_scores_stays_a_site(code):
    from corpus_forms import finding_at

    assert finding_at(code, "ADP010", "probs = scores.softmax") is not None


# 3. ADP013's one function called twice on x with a weight each (an extension's quantized GEMM
#    held by the module): the callable must be a projection, what the kernel fuses the product
#    of -- F.linear or matmul, a same-file function or module whose result is a linear map of
#    x, or one the file cannot read.  ``torch.mul(x, w)`` and a same-file element-wise function
#    are not.

ONE_FUNCTION = """\
import torch
import torch.nn.functional as F
from torch import nn
from elsewhere import quant_ext


class QuantMLP(nn.Module):
    def __init__(self, d=8, h=16, gemm=None):
        super().__init__()
        self.register_buffer("w_gate", torch.randn(h, d))
        self.register_buffer("w_up", torch.randn(h, d))
        self.down = nn.Linear(h, d)
        self.gemm = GEMM

    def forward(self, x):
        gate = self.gemm(x, self.w_gate)
        up = self.gemm(x, self.w_up)
        return self.down(F.silu(gate) * up)  # product


def scaled_gemm(x, w):
    y = x @ w.t()
    return y * 0.5


def gated_mix(x, w):
    return torch.sigmoid(x) * w.sum()


class RowGemm(nn.Module):
    def forward(self, x, w):
        return F.linear(x, w).contiguous()


class RowMix(nn.Module):
    def forward(self, x, w):
        return x * w.mean()
"""


@pytest.mark.parametrize("gemm", ["torch.mul", "gated_mix", "RowMix()"])
def test_a_one_function_swiglu_needs_a_projection(gemm):
    from corpus_forms import found

    assert found(ONE_FUNCTION.replace("GEMM", gemm), "ADP013") == []


@pytest.mark.parametrize("gemm", ["gemm", "quant_ext.gemm_forward", "F.linear", "scaled_gemm", "RowGemm()"])
def test_a_one_function_swiglu_over_a_projection_stays_a_site(gemm):
    from corpus_forms import finding_at

    assert finding_at(ONE_FUNCTION.replace("GEMM", gemm), "ADP013", "# product") is not None
