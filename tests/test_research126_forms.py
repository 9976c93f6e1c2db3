"""Forms of session 46's speech blind batch (helper research126).  The fixtures are ours.

- q and k rotated (rotate-half RoPE) in one helper with one pair of tables, each tensor's
  halves concatenated first and both products written after them
  (``q * cos + q_rot * sin, k * cos + k_rot * sin``): one RoPE of both, one site (the
  two-tensor form is written in the other order of steps; its orders are too many to be
  generated).  Before: two findings, one per tensor.  Near-misses: each tensor with its own
  tables stays outside (Falcon), a one-tensor helper applied to q and to k stays one site.
"""

from __future__ import annotations

import textwrap

import pytest

from corpus_forms import found, line_of

# the module both fixtures call their two-tensor helper from
SELF_ATTN = textwrap.dedent('''
    class SelfAttn(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            q, k, v = self.qkv(x).view(b, t, 3, self.heads, -1).unbind(2)
            q, k = rope_both(q, k, cos, sin)
            return q, k, v
''')

ROTATED_FIRST = textwrap.dedent('''
    import torch
    from torch import nn


    def rope_both(xq, xk, cos, sin):
        n = xq.shape[-1]
        lo, hi = xq[..., :n // 2], xq[..., n // 2:]
        xq_turned = torch.cat((-hi, lo), dim=-1)
        n = xk.shape[-1]
        lo, hi = xk[..., :n // 2], xk[..., n // 2:]
        xk_turned = torch.cat((-hi, lo), dim=-1)
        return xq * cos + xq_turned * sin, xk * cos + xk_turned * sin

''') + SELF_ATTN

# The same with each rotation written just before its own products.
INTERLEAVED = textwrap.dedent('''
    import torch
    from torch import nn


    def rope_both(xq, xk, cos, sin):
        a, b = xq.chunk(2, dim=-1)
        turned = torch.cat((-b, a), dim=-1)
        q_out = xq * cos + turned * sin
        c, d = xk.chunk(2, dim=-1)
        k_turned = torch.cat((-d, c), dim=-1)
        k_out = xk * cos + k_turned * sin
        return q_out, k_out

''') + SELF_ATTN


def test_q_and_k_rotated_first_in_one_helper_are_one_site():
    assert [f.line for f in found(ROTATED_FIRST, "ADP014")] == [line_of(ROTATED_FIRST, "xq_turned = torch.cat")]


def test_q_and_k_rotated_in_turn_in_one_helper_are_one_site():
    assert [f.line for f in found(INTERLEAVED, "ADP014")] == [line_of(INTERLEAVED, "turned = torch.cat((-b")]


def test_own_tables_per_tensor_stay_outside():
    # Falcon-style: k rotated with tables of its own is not one RoPE of both
    code = ROTATED_FIRST.replace("def rope_both(xq, xk, cos, sin):", "def rope_both(xq, xk, cos, sin, k_cos, k_sin):") \
        .replace("xk * cos + xk_turned * sin", "xk * k_cos + xk_turned * k_sin") \
        .replace("rope_both(q, k, cos, sin)", "rope_both(q, k, cos, sin, cos.flip(-1), sin.flip(-1))")
    assert "xk * k_cos" in code
    assert found(code, "ADP014") == []


def test_one_tensor_helper_called_on_q_and_k_stays_one_site():
    code = textwrap.dedent('''
        import torch
        from torch import nn


        def rope_one(x, cos, sin):
            n = x.shape[-1]
            lo, hi = x[..., :n // 2], x[..., n // 2:]
            turned = torch.cat((-hi, lo), dim=-1)
            return x * cos + turned * sin


        class SelfAttn(nn.Module):
            def __init__(self, dim, heads):
                super().__init__()
                self.heads = heads
                self.qkv = nn.Linear(dim, 3 * dim)

            def forward(self, x, cos, sin):
                b, t, _ = x.shape
                q, k, v = self.qkv(x).view(b, t, 3, self.heads, -1).unbind(2)
                q = rope_one(q, cos, sin)
                k = rope_one(k, cos, sin)
                return q, k, v
    ''')
    assert len(found(code, "ADP014")) == 1


def test_the_fixture_is_rotate_half_rope_of_both():
    # the form really is x * cos + rotate_half(x) * sin for q and for k (float64, exact ops)
    torch = pytest.importorskip("torch")
    namespace: dict = {}
    exec(compile(ROTATED_FIRST, "<fixture>", "exec"), namespace)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 5, 3, 8, generator=g, dtype=torch.float64)
    k = torch.randn(2, 5, 3, 8, generator=g, dtype=torch.float64)
    angles = torch.randn(5, 1, 4, generator=g, dtype=torch.float64)
    cos, sin = torch.cat((angles.cos(), angles.cos()), -1), torch.cat((angles.sin(), angles.sin()), -1)

    def rotate_half(x):
        return torch.cat((-x[..., 4:], x[..., :4]), dim=-1)

    q_out, k_out = namespace["rope_both"](q, k, cos, sin)
    torch.testing.assert_close(q_out, q * cos + rotate_half(q) * sin, rtol=0, atol=1e-12)
    torch.testing.assert_close(k_out, k * cos + rotate_half(k) * sin, rtol=0, atol=1e-12)
    # and as complex multiplication of the paired halves by e^{i angle}
    z = torch.complex(q[..., :4], q[..., 4:]) * torch.polar(torch.ones_like(angles), angles)
    torch.testing.assert_close(q_out, torch.cat((z.real, z.imag), -1), rtol=0, atol=1e-12)
