"""Forms found missing while checking the blind batch corpus13a (research transformers written
as plain PyTorch: book-style GPT and LLaMA ports, ViT/Swin/PVT attention zoos): each test states
the semantic fact the engine now reads, and near-misses it must still leave alone.  The fixtures
are ours: attention that fills the causal mask on the raw product and scales inside the softmax,
a GELU module written with ``torch.tensor`` constants, and a post-norm block whose feed-forward
``nn.Sequential`` ends in its dropout."""

from __future__ import annotations

import pytest
from corpus_forms import finding_at as _finding
from corpus_forms import line_of as _line
from corpus_forms import rules as _rules

from adopter.synth import fix_text

# ----------------------------------------------------------------- the fill before the scale

FILL_THEN_SCALE = """\
import torch
from torch import nn


class CausalAttention(nn.Module):
    def __init__(self, dim, context, p=0.1):
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.drop = nn.Dropout(p)
        self.register_buffer("future", torch.triu(torch.ones(context, context), diagonal=1))

    def forward(self, x):
        n = x.shape[1]
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = q @ k.transpose(1, 2)
        scores.masked_fill_(self.future.bool()[:n, :n], -torch.inf)
        weights = torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1)  # inplace-fill
        weights = self.drop(weights)
        return weights @ v


class CausalWhere(nn.Module):
    def __init__(self, context):
        super().__init__()
        self.register_buffer("causal", torch.tril(torch.ones(context, context, dtype=torch.bool)))

    def forward(self, q, k, v, attention_mask=None):
        t = q.shape[-2]
        scores = torch.matmul(q, k.transpose(-1, -2))
        scores = torch.where(self.causal[:t, :t], scores, float("-inf"))
        scores = scores / 8.0
        if attention_mask is not None:
            scores = scores + attention_mask
        weights = nn.functional.softmax(scores, dim=-1)  # where-scale-mask
        return torch.matmul(weights, v)


def grouped(q, k, v, mask):
    scores = q @ k.transpose(2, 3)
    scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(scores / q.shape[-1] ** 0.5, dim=-1)  # fill-param
    return weights @ v


def finite(q, k, v, mask):
    scores = torch.matmul(q, k.transpose(-1, -2))
    scores = scores.masked_fill(mask, -1e9)
    weights = (scores * 0.125).softmax(dim=-1)  # finite-fill
    return torch.matmul(weights, v)


class Tempered(nn.Module):
    def __init__(self):
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, q, k, v, mask):
        scores = q @ k.transpose(-2, -1)
        scores = scores.masked_fill(mask, -torch.inf)
        weights = (scores * self.temperature).softmax(dim=-1)  # tensor-scale
        return weights @ v


def over_queries(q, k, v, mask):
    scores = q @ k.transpose(-2, -1)
    scores = scores.masked_fill(mask, -torch.inf)
    weights = torch.softmax(scores / q.shape[-1] ** 0.5, dim=-2)  # query-axis
    return weights @ v


def refilled(q, k, v, mask):
    scores = q @ k.transpose(-2, -1)
    scores = scores.masked_fill(mask, -torch.inf)
    weights = torch.softmax(scores / q.shape[-1] ** 0.5, dim=-1)  # refilled
    weights = weights.masked_fill(mask, 0.0)
    return weights @ v
"""


def test_a_mask_filled_before_the_scale_is_attention():
    """``scores.masked_fill(m, -inf)`` on the product, then ``softmax(scores / sqrt(d))``:
    a filled -inf stays -inf whatever positive number scales it, so SDPA's mask-after-scale
    computes the same thing.  Near-misses: a softmax over the queries, probabilities filled
    again after the softmax."""
    code = FILL_THEN_SCALE
    for needle in ("# inplace-fill", "# fill-param", "# finite-fill", "# tensor-scale", "# where-scale-mask"):
        assert _finding(code, "ADP010", needle) is not None, needle
    assert _finding(code, "ADP010", "# query-axis") is None
    assert _finding(code, "ADP010", "# refilled") is None


def test_only_a_fill_scaled_by_a_number_is_rewritten():
    """The fix keeps the mask (``attn_mask=~mask``) where the fill is -inf and the scale a
    number; a finite fill is passed scaled as the scores are (research31: it ends where the
    scale puts it, ``(-1e9) * (0.125)``); a learned temperature (of any sign) is reported, not
    fixed."""
    code = FILL_THEN_SCALE
    result = fix_text(code, "model.py", _rules("ADP010"))
    assert result.error is None
    assert "attn_mask=~self.future.bool()[:n, :n]" in result.text
    assert "attn_mask=~mask" in result.text
    assert result.text.count("scaled_dot_product_attention(") == 4
    assert ".masked_fill(mask, (-1e9) * (0.125))" in result.text
    assert 'torch.where(~self.causal[:t, :t], float("-inf"), attention_mask)' in result.text
    for needle in ("# tensor-scale", "# query-axis", "# refilled"):
        assert code.splitlines()[_line(code, needle) - 1] in result.text.splitlines(), needle


def test_the_fill_before_the_scale_computes_what_the_original_does():
    torch = pytest.importorskip("torch")
    code = FILL_THEN_SCALE
    fixed = fix_text(code, "model.py", _rules("ADP010")).text
    assert fixed.count("scaled_dot_product_attention(") == 4
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)
    exec(compile(fixed, "fixed.py", "exec"), patched)
    torch.manual_seed(0)
    a = original["CausalAttention"](16, 12).double().eval()
    b = patched["CausalAttention"](16, 12).double().eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-12)
    q, k, v = (torch.randn(2, 4, 7, 8, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(2, 1, 7, 7) > 0.7
    mask[..., 0] = False  # every query keeps a key
    assert torch.allclose(original["grouped"](q, k, v, mask), patched["grouped"](q, k, v, mask), atol=1e-12)
    a, b = original["CausalWhere"](10), patched["CausalWhere"](10)
    additive = torch.randn(2, 1, 7, 7, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(a(q, k, v), b(q, k, v), atol=1e-12)
        assert torch.allclose(a(q, k, v, additive), b(q, k, v, additive), atol=1e-12)


# ----------------------------------------------------------------- a GELU module with tensor constants

GELU_MODULE = """\
import torch
from torch import nn


class TanhGELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


class NotGELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.5 * torch.pow(x, 3))))


class ScaledByInput(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(x)) * (x + 0.044715 * torch.pow(x, 3))))


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(dim, 4 * dim),
            TanhGELU(),  # tanh-gelu
            nn.Linear(4 * dim, dim),
        )
        self.other = nn.Sequential(
            nn.Linear(dim, 4 * dim),
            NotGELU(),  # wrong-coefficient
            nn.Linear(4 * dim, dim),
            ScaledByInput(),  # tensor-of-input
        )

    def forward(self, x):
        return self.other(self.layers(x))
"""


def test_a_gelu_module_with_a_zero_dim_tensor_constant_is_gelu():
    """``torch.sqrt(torch.tensor(2.0 / torch.pi))`` is the number sqrt(2/pi) (a 0-d tensor
    promotes no dtype): the module computes the tanh GELU, and a Linear before it is a
    bias-GELU site.  Near-misses: another cubic coefficient; ``torch.tensor`` of the input."""
    code = GELU_MODULE
    assert _finding(code, "ADP006", "# tanh-gelu") is not None
    assert _finding(code, "ADP006", "# wrong-coefficient") is None
    assert _finding(code, "ADP006", "# tensor-of-input") is None


# ----------------------------------------------------------------- a Sequential ending in its dropout

POST_NORM = """\
from torch import nn


class Block(nn.Module):
    def __init__(self, dim, p=0.1):
        super().__init__()
        self.attn = nn.Linear(dim, dim)
        self.drop = nn.Dropout(p)
        self.norm_1 = nn.LayerNorm(dim)
        self.norm_2 = nn.LayerNorm(dim)
        self.norm_3 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            nn.Dropout(p),
        )
        self.head = nn.Sequential(nn.Dropout(p), nn.Linear(dim, dim))
        layers = [nn.Linear(dim, dim)]
        if p > 0:
            layers.append(nn.Dropout(p))
        self.maybe = nn.Sequential(*layers)

    def forward(self, x):
        y = self.norm_1(self.drop(self.attn(x)) + x)
        y = self.norm_2(self.mlp(y) + y)  # ends-in-dropout
        y = self.norm_3(self.head(y) + y)  # starts-with-dropout
        return self.norm_3(self.maybe(y) + y)  # optional-dropout
"""


def test_a_sequential_ending_in_its_dropout_outputs_a_dropout():
    """``norm(seq(y) + y)`` where every way through ``seq`` ends in its ``nn.Dropout``: the
    dropout's output is added to the residual and normalised, a dropout-add-LayerNorm site,
    reported and not fixed (the dropout is inside the container).  Near-misses: a Sequential
    whose dropout comes first, one whose dropout is appended only under an ``if``."""
    code = POST_NORM
    assert _finding(code, "ADP005", "# ends-in-dropout") is not None
    assert _finding(code, "ADP005", "# starts-with-dropout") is None
    assert _finding(code, "ADP005", "# optional-dropout") is None
    result = fix_text(code, "model.py", _rules("ADP005"))
    assert result.error is None and "dropout_add_layer_norm(self.attn(x), x" in result.text
    assert code.splitlines()[_line(code, "# ends-in-dropout") - 1] in result.text.splitlines()


def test_a_finite_fill_before_a_number_scale_computes_what_the_original_does():
    """research31: ``finite`` (fill -1e9, then ``* 0.125``), rewritten with the fill scaled."""
    torch = pytest.importorskip("torch")
    code = FILL_THEN_SCALE
    fixed = fix_text(code, "model.py", _rules("ADP010")).text
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float64) for _ in range(3))
    mask = torch.zeros(2, 3, 5, 5, dtype=torch.bool)
    mask[..., 3:] = True  # every row keeps keys 0-2
    torch.testing.assert_close(patched["finite"](q, k, v, mask), original["finite"](q, k, v, mask), rtol=0, atol=1e-12)

