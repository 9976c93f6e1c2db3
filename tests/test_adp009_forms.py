"""ADP009 (fused QKV) read as the attention projection kernel (session 25, helper adp009): three
Linear projections of one input are a site only where two of their outputs meet as the operands
of one computation (a product, an attention call, a helper or module handed them together);
query projected before an ``if`` whose ``else`` projects key and value (the other branch reusing
a cache); and three projections of one slice of constants written three times.  Our own
fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text


def attention(forward: str, extra_init: str = "", head: str = "") -> str:
    """A module with q/k/v Linears (and ``extra_init``) whose forward body is ``forward``."""
    return textwrap.dedent(head) + textwrap.dedent("""\
        import torch
        import torch.nn.functional as F
        from torch import nn


        class Attention(nn.Module):
            def __init__(self, d=8):
                super().__init__()
                self.q = nn.Linear(d, d)
                self.k = nn.Linear(d, d)
                self.v = nn.Linear(d, d)
        EXTRA
            def forward(self, x, ctx=None, cache=None):
        BODY
        """).replace("EXTRA", textwrap.indent(textwrap.dedent(extra_init), " " * 8)).replace(
        "BODY", textwrap.indent(textwrap.dedent(forward), " " * 8))


# ---------- part 1: the outputs meet


HEADS = textwrap.dedent("""\
    import torch
    from torch import nn


    class Grader(nn.Module):
        def __init__(self, d=8):
            super().__init__()
            self.body = nn.Linear(d, d)
            self.fc_a = nn.Linear(d, 2)
            self.fc_b = nn.Linear(d, 3)
            self.fc_c = nn.Linear(d, 4)
            self.fc_d = nn.Linear(d, 2)

        def forward(self, x):
            x = torch.flatten(self.body(x), 1)
            a = self.fc_a(x)
            b = self.fc_b(x)
            c = self.fc_c(x)
            d = self.fc_d(x)
            return (a, b, c, d)
""")


def test_classifier_heads_of_one_vector_returned_in_a_tuple_are_not_fused_qkv():
    assert found(HEADS, "ADP009") == []
    # ... nor when the heads are gathered in a list or a dict
    assert found(HEADS.replace("return (a, b, c, d)", "return [a, b, c, d]"), "ADP009") == []
    assert found(HEADS.replace("return (a, b, c, d)", 'return {"a": a, "b": b, "c": c, "d": d}'), "ADP009") == []


TRIANGLE = textwrap.dedent("""\
    import torch
    from torch import einsum, nn


    class TriangleUpdate(nn.Module):
        def __init__(self, d=8, mix="outgoing"):
            super().__init__()
            self.left_proj = nn.Linear(d, d)
            self.right_proj = nn.Linear(d, d)
            self.left_gate = nn.Linear(d, d)
            self.right_gate = nn.Linear(d, d)
            self.out_gate = nn.Linear(d, d)
            if mix == "outgoing":
                self.eq = "b i k d, b j k d -> b i j d"
            else:
                self.eq = "b k j d, b k i d -> b i j d"
            self.to_out = nn.Linear(d, d)

        def forward(self, x):
            left = self.left_proj(x)
            right = self.right_proj(x)
            left_gate = self.left_gate(x).sigmoid()
            right_gate = self.right_gate(x).sigmoid()
            out_gate = self.out_gate(x).sigmoid()
            left = left * left_gate
            right = right * right_gate
            out = einsum(self.eq, left, right)
            return self.to_out(out * out_gate)
""")


def test_gated_projections_of_a_triangle_update_are_not_fused_qkv():
    # the einsum's equation is picked at run time (what it contracts is unknown), each operand
    # mixes a projection with a gate, and the out gate only multiplies the result
    assert found(TRIANGLE, "ADP009") == []


# Attention-free attention (lead ruling, session 39): the keys turned into weights (an exp, or a
# softmax over the sequence) multiply the values element-wise, summed over the sequence (or
# mixed by a position-bias matrix), and a sigmoid of the query gates the result
ATTENTION_FREE = {
    "exp, summed": "return torch.sigmoid(q) * (k.exp() * v).sum(1, keepdim=True)",
    "softmax over the sequence": "w = torch.mul(torch.softmax(k, 1), v).sum(dim=1, keepdim=True)\n"
                                 "return torch.mul(torch.sigmoid(q), w)",
    "position bias": "e = torch.exp(k)\nreturn torch.sigmoid(q) * (self.bias.exp() @ (e * v)) / (self.bias.exp() @ e)",
}


def test_keys_weighing_the_values_elementwise_are_fused_qkv():
    for name, tail in ATTENTION_FREE.items():
        code = attention("q = self.q(x)\nk = self.k(x)\nv = self.v(x)\n" + tail,
                         extra_init="self.bias = nn.Parameter(torch.randn(5, 5))\n")
        assert len(found(code, "ADP009")) == 1, name
        result = fix_text(code, "model.py", rules("ADP009"))
        assert "q, k, v = fused_qkv(x, self.q, self.k, self.v)" in result.text, name
        import torch

        a, b = float64_pair(code, result.text, "Attention")
        x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
        # float64 and a handful of terms per output: agreement to rounding
        assert torch.allclose(a(x), b(x), rtol=1e-12, atol=1e-12), name


def test_projections_only_gated_or_multiplied_as_they_are_are_not_fused_qkv():
    for tail in ("return torch.sigmoid(q) * (k * v)",  # a gated unit: two steps as they are
                 "return torch.sigmoid(q) * (torch.sigmoid(k) * v)",  # a gate, not weights
                 "return q * (k.exp() + v)",  # weights added, not applied to the values
                 "return (k.exp() * x).sum(1) + q + v",  # weights of another value
                 "return self.out(torch.cat([q, k.exp(), v], -1))"):  # concatenated into a feed-forward
        code = attention("q = self.q(x)\nk = self.k(x)\nv = self.v(x)\n" + tail,
                         extra_init="self.out = nn.Linear(24, 8)\n")
        assert found(code, "ADP009") == [], tail


MEETINGS = {
    "matmul": "return (q @ k.transpose(-1, -2)).softmax(-1) @ v",
    "sdpa": "return F.scaled_dot_product_attention(q, k, v)",
    "sdpa keywords": "return F.scaled_dot_product_attention(query=q, key=k, value=v)",
    "literal einsum": 'return torch.einsum("bid,bjd->bij", q, k).softmax(-1) @ v',
    "helper of another module": "return flash_attn_func(q, k, v)",
    "module": "return self.inner(q, k, v)",
    "cache written first": "k, v = cache.update(k.to(q.dtype), v)\nreturn torch.bmm(q, k.transpose(1, 2))",
    "one value out of a cache": "k = cache.update(k, v)\nreturn torch.bmm(q, k.transpose(1, 2))",
    "the key's width read beside the query": ("d = k.shape[-1]\nq = q.view(2, -1, d) * d ** -0.5\n"
                                              "return (q @ k.view(2, -1, d).transpose(-1, -2)).softmax(-1) @ v"),
    "distances of query and key, then the value": ("d = (q.unsqueeze(2) - k.unsqueeze(1)).pow(2).sum(-1)\n"
                                                   "return torch.einsum('bij,bjd->bid', (-d).softmax(-1), v)"),
    "heads split by a generator": ("b, n, _ = q.shape\n"
                                   "q, k, v = (t.view(b, n, 2, -1).transpose(1, 2) for t in (q, k, v))\n"
                                   "return (q @ k.transpose(-1, -2)).softmax(-1) @ v"),
}


def test_projections_that_meet_in_an_attention_are_still_fused_qkv():
    for name, tail in MEETINGS.items():
        code = attention("q = self.q(x)\nk = self.k(x)\nv = self.v(x)\n" + tail,
                         extra_init="self.inner = nn.MultiheadAttention(d, 2)\n",
                         head="from flash_attn import flash_attn_func\n")
        assert len(found(code, "ADP009")) == 1, name


def test_a_tuple_of_the_three_calls_bound_at_once_is_still_fused_qkv():
    code = attention("""\
        x, k, v = (
            self.q(x),
            self.k(x),
            self.v(x),
        )
        return F.scaled_dot_product_attention(x, k, v)
    """)
    assert len(found(code, "ADP009")) == 1


def test_a_projection_module_returning_its_three_outputs_is_still_fused_qkv():
    # returned together for a caller to compute with, nothing else in the tuple (as before the
    # ruling: the caller is not read)
    code = attention("""\
        q = self.q(x)
        k = self.k(x)
        v = self.v(x)
        return q, k, v
    """)
    assert len(found(code, "ADP009")) == 1
    assert len(found(code.replace("return q, k, v", "return [q.view(2, -1), k, v]"), "ADP009")) == 1
    # ... but not beside another value of the input in the tuple (heads of a classifier)
    assert found(code.replace("return q, k, v", "return q, k, v, x.mean(0)"), "ADP009") == []


def test_two_projections_or_a_cross_attention_are_not_fused_qkv():
    two = attention("""\
        q = self.q(x)
        k = self.k(x)
        return (q @ k.transpose(-1, -2)).softmax(-1)
    """)
    assert found(two, "ADP009") == []
    cross = attention("""\
        q = self.q(x)
        k = self.k(ctx)
        v = self.v(ctx)
        return (q @ k.transpose(-1, -2)).softmax(-1) @ v
    """)
    assert found(cross, "ADP009") == []


# ---------- part 2: key and value projected in the else of an if that reuses a cache


SHARED = attention("""\
    q = self.q(x)
    if cache is not None:
        k = cache["k"].to(q.dtype)
        v = cache["v"].to(q.dtype)
    else:
        k = self.k(x)
        v = self.v(x)
    return (q @ k.transpose(-1, -2)).softmax(-1) @ v
""")


def test_key_and_value_in_the_else_of_a_cache_reuse_are_reported_not_fixed():
    finding = finding_at(SHARED, "ADP009", "q = self.q(x)")
    assert finding is not None
    assert not finding.fixable
    result = fix_text(SHARED, "model.py", rules("ADP009"))
    assert result.text == SHARED


def test_key_and_value_of_another_input_in_the_other_branch_are_not_fused_qkv():
    # self or cross attention chosen per call: the layers project the encoder's states there
    code = SHARED.replace('cache["k"].to(q.dtype)', "self.k(ctx)").replace('cache["v"].to(q.dtype)', "self.v(ctx)")
    assert found(code, "ADP009") == []
    # key and value each projected on its own branch: where one runs the other does not
    apart = attention("""\
        q = self.q(x)
        if cache is None:
            k = self.k(x)
            v = cache
        else:
            k = cache
            v = self.v(x)
        return (q @ k.transpose(-1, -2)).softmax(-1) @ v
    """)
    assert found(apart, "ADP009") == []
    # a third projection only under a setting, after the other two (a residual mix): the
    # first two run together and the third is no value of theirs
    mixed = attention("""\
        q = self.q(x)
        k = self.k(x)
        if self.mix is not None:
            k = k * self.mix(x).sigmoid()
        return F.scaled_dot_product_attention(q, k, k)
    """, extra_init="self.mix = nn.Linear(d, d) if d > 4 else None\n")
    assert found(mixed, "ADP009") == []


def test_a_gate_before_the_if_does_not_take_the_unfused_branch_s_site():
    # timm-style: a gate projection of x before ``if self.qkv is not None``, the unfused q, k, v
    # in the else (the rotated query typed as the value): the site is the else's three, fixed
    code = attention("""\
        gate = self.gate(x).sigmoid()
        if self.qkv is not None:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            q = self.q(x)
            k = self.k(x)
            v = self.v(x)
        q = (q * 2).type_as(v)
        return F.scaled_dot_product_attention(q, k, v) * gate
    """, extra_init="self.gate = nn.Linear(d, d)\nself.qkv = None\n")
    finding = finding_at(code, "ADP009", "q = self.q(x)")
    assert finding is not None and finding.fixable
    assert finding_at(code, "ADP009", "gate = self.gate(x)") is None


# ---------- part 3: one slice of constants written three times


SLICED = attention("""\
    q = self.q(x[:, 1:])
    k = self.k(x[:, 1:])
    v = self.v(x[:, 1:])
    return (q @ k.transpose(-1, -2)).softmax(-1) @ v
""")


def test_projections_of_one_slice_written_three_times_are_fused():
    assert len(found(SLICED, "ADP009")) == 1
    result = fix_text(SLICED, "model.py", rules("ADP009"))
    assert "q, k, v = fused_qkv(x[:, 1:], self.q, self.k, self.v)" in result.text
    import torch

    a, b = float64_pair(SLICED, result.text, "Attention")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    assert torch.allclose(a(x), b(x))
    # the leading-axis slice alone, too
    rows = SLICED.replace("x[:, 1:]", "x[1:]")
    assert len(found(rows, "ADP009")) == 1


def test_different_slices_or_a_name_reassigned_between_are_not_fused_qkv():
    other = SLICED.replace("k = self.k(x[:, 1:])", "k = self.k(x[:, :1])")
    assert found(other, "ADP009") == []
    step = SLICED.replace("self.q(x[:, 1:])", "self.q(x[:, 2:])")
    assert found(step, "ADP009") == []
    reassigned = SLICED.replace("k = self.k(x[:, 1:])", "x = x * 2\n        k = self.k(x[:, 1:])")
    assert found(reassigned, "ADP009") == []
    cross = SLICED.replace("self.k(x[:, 1:])", "self.k(ctx[:, 1:])").replace("self.v(x[:, 1:])", "self.v(ctx[:, 1:])")
    assert found(cross, "ADP009") == []
