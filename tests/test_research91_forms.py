"""Forms found while checking the blind batch research91 (graph neural networks, equivariant
networks, point clouds and 3-D generation: materials GNNs, a multi-view Gaussian-splat DiT, a
3-D shape DiT).  The fixtures are ours.

- A GELU module that records its settings (``__init__`` stores ``self.approximate``, its forward
  returns ``F.gelu(x.contiguous(), approximate=self.approximate)``): a GELU, so a Linear before
  it in a Sequential is a bias-GELU site; it was read only when ``__init__`` assigned nothing.
- A rotary module that defines ``__call__`` and no ``forward``, handed to a block's forward and
  called there as ``rope(q, k, ...)``: its ``__call__`` is what calling it runs.  With any
  ``forward`` elsewhere in the file it was unreachable and its RoPE unread.
- A graph convolution returning its node and edge updates, each normalized then activated
  (``silu(layer_norm(...))``), is a layer returning its results, not a projection helper
  handing q, k and v to a caller: no fused-qkv finding on its three Linears of one input.
Near-misses: a module that builds a layer in ``__init__``; a module whose ``__call__`` rotates
interleaved pairs; a projection helper returning q, k, v (q and k normalized) still reported.
"""

from __future__ import annotations

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

SETTINGS_GELU = """\
import torch
import torch.nn as nn


class GELU(nn.Module):
    def __init__(self, approximate='tanh'):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return nn.functional.gelu(input.contiguous(), approximate=self.approximate)


class Block(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(d, 4 * d, bias=True),
            GELU(approximate="tanh"),
            nn.Linear(4 * d, d, bias=True),
        )

    def forward(self, x):
        return self.mlp(x)
"""


def test_gelu_module_that_records_its_settings_is_a_gelu():
    assert finding_at(SETTINGS_GELU, "ADP006", 'GELU(approximate="tanh"),') is not None
    # the patched block computes what the original does (the kernel runs the module's own
    # GELU: it holds a setting of its own, which the kernel does not read)
    import torch

    fixed = fix_text(SETTINGS_GELU, "model.py", rules("ADP006")).text
    assert fixed != SETTINGS_GELU
    original, patched = {}, {}
    exec(compile(SETTINGS_GELU, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Block"]().double()
    b = patched["Block"]().double()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_gelu_module_that_builds_a_layer_is_no_gelu():
    # a module holding a layer of its own computes what its forward says with it: not typed
    code = SETTINGS_GELU.replace("        self.approximate = approximate\n",
                                 "        self.approximate = approximate\n        self.proj = nn.Linear(8, 8)\n")
    assert found(code, "ADP006") == []
    # nor a setting computed by a call (a tensor it allocates)
    code = SETTINGS_GELU.replace("self.approximate = approximate", "self.approximate = torch.ones(1)")
    assert found(code, "ADP006") == []


CALL_ROPE = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Rope2d(nn.Module):
    def __init__(self, head_dim, theta=100.0):
        super().__init__()
        self.head_dim, self.theta = head_dim, theta

    def _table(self, n, device):
        inv = 1.0 / self.theta ** (torch.arange(self.head_dim // 2, device=device) / (self.head_dim // 2))
        ang = torch.arange(n, device=device)[:, None] * inv
        return torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def __call__(self, q, k):
        cos, sin = self._table(q.shape[-2], q.device)

        def rot(x):
            h = x.shape[-1] // 2
            return torch.cat([-x[..., h:], x[..., :h]], -1)
        return q * cos + rot(q) * sin, k * cos + rot(k) * sin


class Block(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)

    def forward(self, x, rope):
        B, T, D = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k = rope(q, k)
        return F.scaled_dot_product_attention(q, k, v)
"""


def test_module_call_method_is_its_forward():
    assert finding_at(CALL_ROPE, "ADP014", "return q * cos + rot(q) * sin") is not None


def test_module_call_method_rotating_interleaved_pairs_is_no_rope():
    code = CALL_ROPE.replace("return torch.cat([-x[..., h:], x[..., :h]], -1)",
                             "return torch.stack((-x[..., 1::2], x[..., ::2]), -1).flatten(-2)")
    assert found(code, "ADP014") == []


GRAPH_CONV = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


def scatter_sum(src, index, n):
    shape = [n]
    for d in range(1, src.dim()):
        shape.append(src.size(d))
    out = torch.zeros(shape, dtype=src.dtype, device=src.device)
    idx = index
    while idx.dim() < src.dim():
        idx = idx.unsqueeze(-1)
    out.scatter_add_(0, idx.expand_as(src), src)
    return out


class GatedGraphConv(nn.Module):
    def __init__(self, d=8, heads=2):
        super().__init__()
        self.heads = heads
        self.src_gate = nn.Linear(d, d)
        self.dst_gate = nn.Linear(d, d)
        self.edge_gate = nn.Linear(d, d)
        self.src_update = nn.Linear(d, d)
        self.dst_update = nn.Linear(d, d)
        self.attn_src = nn.Linear(d, heads)
        self.norm_nodes = nn.LayerNorm(d)
        self.norm_edges = nn.LayerNorm(d)

    def _weighted(self, proj, a):
        n = proj.shape[0]
        return (a.unsqueeze(-1) * proj.view(n, self.heads, -1)).view(n, -1)

    def forward(self, src, dst, x, y):
        a_src = torch.sigmoid(self.attn_src(x))
        e_src = self._weighted(self.src_gate(x), a_src)
        e_dst = self.dst_gate(x)
        m = e_src[src] + e_dst[dst] + self.edge_gate(y)
        sigma = torch.sigmoid(m)
        bh = self.dst_update(x)
        h = scatter_sum(bh[src] * sigma, dst, x.shape[0]) / (scatter_sum(sigma, dst, x.shape[0]) + 1e-6)
        x_new = self.src_update(x) + h
        x_new = F.silu(self.norm_nodes(x_new))
        y_new = F.silu(self.norm_edges(m))
        return x_new, y_new
"""

PROJECTIONS = """\
import torch.nn as nn


class Projections(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.q_norm = nn.LayerNorm(d)
        self.k_norm = nn.LayerNorm(d)

    def forward(self, x):
        return self.q_norm(self.q(x)), self.k_norm(self.k(x)), self.v(x)
"""


def test_graph_conv_returning_its_normalized_activated_updates_is_no_qkv():
    assert found(GRAPH_CONV, "ADP009") == []


def test_projection_helper_returning_normalized_queries_and_keys_is_still_qkv():
    assert finding_at(PROJECTIONS, "ADP009", "return self.q_norm(") is not None
    # activated without a normalization first (linear attention's feature maps): still handed on
    code = PROJECTIONS.replace("return self.q_norm(self.q(x)), self.k_norm(self.k(x)), self.v(x)",
                               "return nn.functional.elu(self.q(x)) + 1, nn.functional.elu(self.k(x)) + 1, self.v(x)")
    assert finding_at(code, "ADP009", "return nn.functional.elu(") is not None


def test_gelu_module_with_its_own_call_method_is_no_gelu():
    # calling the module runs its ``__call__`` (a ReLU here), not the GELU forward: not a GELU,
    # whether its __init__ records settings or it has none
    call = "\n    def __call__(self, input):\n        return torch.relu(input)\n"
    code = SETTINGS_GELU.replace("approximate=self.approximate)\n",
                                 "approximate=self.approximate)\n" + call, 1)
    assert code != SETTINGS_GELU
    assert found(code, "ADP006") == []
    stateless = code.replace("    def __init__(self, approximate='tanh'):\n        super().__init__()\n"
                             "        self.approximate = approximate\n\n", "")
    stateless = stateless.replace("approximate=self.approximate)", "approximate='tanh')", 1)
    assert "self.approximate = approximate" not in stateless
    assert found(stateless, "ADP006") == []
    # the look-alike without __call__ (the stateless GELU) is still one
    plain = stateless.replace(call, "\n")
    assert finding_at(plain, "ADP006", 'GELU(approximate="tanh"),') is not None
