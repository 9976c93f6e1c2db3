"""Forms found missing while checking the blind batches corpus18b (vision research code and
torchvision-style CNNs of fifteen packages new to the corpus).  Two forms, each with
near-misses; the fixtures are ours.

- Attention scores passed through a same-file module whose ``forward(self, x)`` returns its
  input plus a tensor computed from the module's own parameters and the input's shape only
  (``sim = self.pos_bias(sim)`` with ``return x + bias``: a continuous position bias, as in
  VQ-GAN attention blocks): the call adds that bias to the scores, which SDPA takes as an
  additive mask.  The bias has no expression in the attention's function; since fix21a the
  fixer passes the module's output for a stand-in of zeros of the scores (scaled by the
  temperature as they are) as the mask.  Near-misses: a module that reads the
  input's values (``x + self.proj(x)``), rebinds it before the sum, returns a dropout of the
  sum, or scales the input (``x * w + b``).
- A rotate-half written ``x = x.reshape((x.shape[0], -1, 2, x.shape[-1] // 2))``, ``a, b =
  x.unbind(dim=-2)``, ``torch.cat((-b, a), dim=-1)`` (poolformer's ``rotate_half``, applied to
  q and k in a mapped lambda): the halves of the last axis, the axes between merged (at rank 3,
  the rank at which the result has x's shape, the rotate-half of rotary embeddings; ADP014).
  Near-misses: the first size not the first axis's, the unbound axis not the halves'.
"""

from __future__ import annotations

import ast
import textwrap

from corpus_forms import finding_at, rules

from adopter.structure.formulas import bias_add_module
from adopter.synth import fix_text

BIAS_MODULE = """\
    class PairBias(nn.Module):
        def __init__(self, heads, hidden=16):
            super().__init__()
            self.embed = nn.Linear(2, hidden)
            self.out = nn.Linear(hidden, heads)

        def forward(self, x):
            n = x.shape[-1]
            side = int(n ** 0.5)
            pos = torch.arange(side, device=x.device)
            grid = torch.stack(torch.meshgrid(pos, pos, indexing="ij"), dim=-1).reshape(-1, 2)
            rel = (grid[:, None, :] - grid[None, :, :]).to(x.dtype)
            bias = self.out(torch.relu(self.embed(rel)))
            return {RETURN}
"""

ATTENTION = """\
    class CosineAttention(nn.Module):
        def __init__(self, dim, heads=4, dim_head=8):
            super().__init__()
            self.heads = heads
            self.temperature = nn.Parameter(torch.zeros(1, heads, 1, 1))
            self.pos_bias = PairBias(heads)
            self.drop = nn.Dropout(0.1)
            self.to_qkv = nn.Conv2d(dim, heads * dim_head * 3, 1, bias=False)
            self.to_out = nn.Conv2d(heads * dim_head, dim, 1)

        def forward(self, x):
            b, c, hh, ww = x.shape
            q, k, v = self.to_qkv(x).chunk(3, dim=1)
            q, k, v = (t.reshape(b, self.heads, -1, hh * ww) for t in (q, k, v))
            q, k = F.normalize(q, dim=2), F.normalize(k, dim=2)
            sim = torch.einsum("bhci,bhcj->bhij", q, k) * self.temperature.exp()
            sim = self.pos_bias(sim)
            attn = sim.softmax(dim=-1)  # softmax
            attn = self.drop(attn)
            out = torch.einsum("bhij,bhcj->bhci", attn, v)
            return self.to_out(out.reshape(b, -1, hh, ww))
"""

HEADER = """\
    import torch
    import torch.nn.functional as F
    from torch import nn


"""


def _code(ret: str = "x + bias.permute(2, 0, 1)", module: str = BIAS_MODULE) -> str:
    return (
        textwrap.dedent(HEADER)
        + textwrap.dedent(module.replace("{RETURN}", ret))
        + "\n\n"
        + textwrap.dedent(ATTENTION)
    )


def test_scores_through_a_bias_adding_module_are_attention():
    assert finding_at(_code(), "ADP010", "# softmax") is not None


def test_bias_first_in_the_sum_reads_the_same():
    assert (
        finding_at(_code("bias.permute(2, 0, 1) + x"), "ADP010", "# softmax")
        is not None
    )


def test_bias_adding_module_finding_is_fixed_with_a_stand_in_of_zeros():
    # (fix21a: report-only before) the mask is the module's output for zeros of the scores'
    # shape and dtype, scaled by the temperature as the scores are: 0 + bias is the bias
    import torch

    code = _code()
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and [f.rule for f in fixed.applied] == ["ADP010"]
    assert "self.pos_bias(" in fixed.text and "new_zeros(())" in fixed.text
    ns_a: dict = {}
    ns_b: dict = {}
    exec(compile(code, "original", "exec"), ns_a)
    exec(compile(fixed.text, "patched", "exec"), ns_b)
    torch.manual_seed(0)
    a = ns_a["CosineAttention"](6).double()
    b = ns_b["CosineAttention"](6).double()
    b.load_state_dict(a.state_dict())
    a.drop.p = b.drop.p = 0.0
    x = torch.randn(2, 6, 3, 3, dtype=torch.float64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_a, out_b = a(xa), b(xb)
        torch.testing.assert_close(out_b, out_a)
        weight = torch.randn_like(out_a)
        (weight * out_a).sum().backward()
        (weight * out_b).sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)
        for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad)
        a.zero_grad()
        b.zero_grad()


def test_module_reading_the_input_values_is_no_bias():
    code = _code("x + bias.permute(2, 0, 1) * x.mean()")
    assert finding_at(code, "ADP010", "# softmax") is None


def test_module_returning_dropout_of_the_sum_is_no_bias():
    code = _code("torch.dropout(x + bias.permute(2, 0, 1), 0.1, self.training)")
    assert finding_at(code, "ADP010", "# softmax") is None


def test_module_scaling_its_input_is_no_bias():
    code = _code("x * 2.0 + bias.permute(2, 0, 1)")
    assert finding_at(code, "ADP010", "# softmax") is None


def test_module_rebinding_its_input_is_no_bias():
    module = BIAS_MODULE.replace(
        "            n = x.shape[-1]\n",
        "            x = x * 0.5\n            n = x.shape[-1]\n",
    )
    assert finding_at(_code(module=module), "ADP010", "# softmax") is None


def _class(source: str) -> ast.ClassDef:
    return next(
        n
        for n in ast.parse(textwrap.dedent(source)).body
        if isinstance(n, ast.ClassDef)
    )


def test_bias_add_module_reading():
    assert bias_add_module(_class(BIAS_MODULE.replace("{RETURN}", "x + bias")))
    # the input's values read, a second parameter, an early return: not a bias added
    assert not bias_add_module(
        _class(BIAS_MODULE.replace("{RETURN}", "x + self.out(x)"))
    )
    assert not bias_add_module(
        _class(
            BIAS_MODULE.replace(
                "def forward(self, x):", "def forward(self, x, y):"
            ).replace("{RETURN}", "x + y")
        )
    )
    assert not bias_add_module(
        _class(
            BIAS_MODULE.replace(
                "            n = x.shape[-1]\n",
                "            if x is None:\n                return x\n"
                "            n = x.shape[-1]\n",
            ).replace("{RETURN}", "x + bias")
        )
    )
    assert not bias_add_module(_class(BIAS_MODULE.replace("{RETURN}", "x + x")))


POSITION_THEN_NORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class AddPosition(nn.Module):
        def __init__(self, dim, n=64):
            super().__init__()
            self.table = nn.Parameter(torch.zeros(1, n, dim))

        def forward(self, x):
            return x + self.table[:, : x.shape[1]]


    class Embed(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.drop = nn.Dropout(0.1)
            self.pos = AddPosition(dim)
            self.norm = nn.LayerNorm(dim)

        def forward(self, x):
            x = self.drop(x)
            x = self.pos(x)
            return self.norm(x)  # norm
    """)


def test_dropout_then_position_module_then_norm_reads_as_the_inline_sum():
    # the same computation written ``x = x + self.pos.table[:, :n]`` is reported (ADP005: a
    # tensor added to a dropout output, then LayerNorm); through the module it reads the same,
    # report-only (the added tensor has no expression here), the file left unchanged by the fixer
    inline = POSITION_THEN_NORM.replace(
        "x = self.pos(x)", "x = x + self.pos.table[:, : x.shape[1]]"
    )
    assert finding_at(inline, "ADP005", "# norm") is not None
    assert finding_at(POSITION_THEN_NORM, "ADP005", "# norm") is not None
    fixed = fix_text(POSITION_THEN_NORM, "model.py", rules("ADP005"))
    assert fixed.error is None and fixed.text == POSITION_THEN_NORM


# rotate_half written as a reshape keeping the first axis and merging the others before the
# last, the halves of the last axis on a new second-to-last one, unbound and concatenated
# (poolformer's): at rank 3 the rotate-half of rotary embeddings (ADP014).
ROPE = textwrap.dedent("""\
    import torch
    from einops import rearrange
    from torch import nn


    def turn_half(x):
        x = x.reshape((SIZE, -1, 2, x.shape[-1] // 2))
        a, b = x.unbind(dim=UNBIND)
        return torch.cat((-b, a), dim=-1)


    def with_rotary(q, k, freqs):
        q, k = map(lambda t: (t * freqs.cos()) + (turn_half(t) * freqs.sin()), (q, k))  # rope
        return q, k


    class Attn(nn.Module):
        def __init__(self, dim, heads=4):
            super().__init__()
            self.heads = heads
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_k = nn.Linear(dim, dim, bias=False)

        def forward(self, x, freqs):
            q = rearrange(self.to_q(x), "b n (h d) -> (b h) n d", h=self.heads)
            k = rearrange(self.to_k(x), "b n (h d) -> (b h) n d", h=self.heads)
            q, k = with_rotary(q, k, freqs)
            return q @ k.transpose(-1, -2)
    """)


def _rope(size: str = "x.shape[0]", unbind: str = "-2") -> str:
    return ROPE.replace("SIZE", size).replace("UNBIND", unbind)


def test_reshape_halves_rotate_half_is_rope():
    assert finding_at(_rope(), "ADP014", "# rope") is not None
    assert finding_at(_rope("x.size(0)"), "ADP014", "# rope") is not None


def test_reshape_halves_near_misses():
    # the first size is not the first axis's, or the unbound axis is not the halves' axis
    assert finding_at(_rope("x.shape[1]"), "ADP014", "# rope") is None
    assert finding_at(_rope(unbind="-1"), "ADP014", "# rope") is None


def test_reshape_halves_rotate_exactly_as_slices_at_rank_3():
    torch = __import__("torch")
    x = torch.randn(6, 5, 8, dtype=torch.float64)
    parts = x.reshape((x.shape[0], -1, 2, x.shape[-1] // 2)).unbind(dim=-2)
    turned = torch.cat((-parts[1], parts[0]), dim=-1)
    half = x.shape[-1] // 2
    assert torch.equal(turned, torch.cat((-x[..., half:], x[..., :half]), dim=-1))
