"""Forms from hf29's blind batch of newer Hugging Face files (transformers 4.45.2 files no label
named, 5.23.0 models new since 4.45, remote-code style models of other packages).  Our own
fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

# ---------- ADP005: the LayerNorm's output held in a list literal (Transformer-XL)

POST_NORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attn(nn.Module):
        def __init__(self, d=16):
            super().__init__()
            self.o_net = nn.Linear(d, d)
            self.drop = nn.Dropout(0.1)
            self.layer_norm = nn.LayerNorm(d)

        def forward(self, w, attn_vec, output_attentions=False):
            attn_out = self.o_net(attn_vec)
            attn_out = self.drop(attn_out)
            outputs = HELD
            if output_attentions:
                outputs.append(attn_vec)
            return outputs
""")


def test_layernorm_inside_a_list_one_name_holds():
    # ``outputs = [self.layer_norm(w + attn_out)]``: the list holds the norm's output, it does
    # not read the dropout's output or the sum again
    for held in ("[self.layer_norm(w + attn_out)]", "(self.layer_norm(attn_out + w),)"):
        code = POST_NORM.replace("HELD", held)
        assert finding_at(code, "ADP005", "outputs = ") is not None, held


def test_the_fix_keeps_the_list_and_computes_the_same():
    import torch

    code = POST_NORM.replace("HELD", "[self.layer_norm(w + attn_out)]")
    fixed = fix_text(code, "model.py", rules("ADP005")).text
    assert "outputs = [dropout_add_layer_norm(" in fixed
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a, b = original["Attn"]().double().eval(), patched["Attn"]().double().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    w, v = torch.randn(2, 3, 16, dtype=torch.float64), torch.randn(2, 3, 16, dtype=torch.float64)
    assert torch.allclose(a(w, v)[0], b(w, v)[0], atol=1e-12)


def test_a_list_that_also_holds_the_dropout_output_is_no_site():
    # the dropout's output (or the sum) is kept beside the norm: another use
    for held in ("[self.layer_norm(w + attn_out), attn_out]", "[w + attn_out, self.layer_norm(w + attn_out)]"):
        code = POST_NORM.replace("HELD", held)
        assert found(code, "ADP005") == [], held


# ---------- ADP011: a product computed and thrown away is no norm (Mega's RMSNorm)

RMS = textwrap.dedent("""\
    import torch
    from torch import nn


    class Norm(nn.Module):
        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, input):
            mean_square = torch.mean(torch.square(input), dim=-1, keepdim=True)
            if self.weight is not None:
                input = input * self.weight
            STEP
            return input
""")


def test_rms_product_as_a_bare_statement_is_no_norm():
    # the module returns x * weight: the normalised product is never read
    code = RMS.replace("STEP", "input * torch.rsqrt(mean_square + self.eps)")
    assert found(code, "ADP011") == []


def test_rms_product_assigned_is_still_a_norm():
    code = RMS.replace("STEP", "input = input * torch.rsqrt(mean_square + self.eps)")
    assert finding_at(code, "ADP011", "torch.rsqrt(") is not None


# ---------- ADP014: q upcast with .float() on both sides of the rotation (ModernBERT)

ROPE = textwrap.dedent("""\
    import torch
    from torch import nn


    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2 :]
        return torch.cat((-x2, x1), dim=-1)


    def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
        original_dtype = q.dtype
        cos = cos.unsqueeze(unsqueeze_dim)
        sin = sin.unsqueeze(unsqueeze_dim)
        q_embed = QROT
        k_embed = KROT
        return q_embed.to(original_dtype), k_embed.to(original_dtype)


    class Attention(nn.Module):
        def __init__(self, d=16, h=2):
            super().__init__()
            self.h, self.dh = h, d // h
            self.Wqkv = nn.Linear(d, 3 * d)

        def forward(self, x, cos, sin):
            b, n, _ = x.shape
            qkv = self.Wqkv(x).view(b, n, 3, self.h, self.dh)
            q, k, v = qkv.unbind(dim=2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            return q @ k.transpose(-1, -2) @ v
""")


def rope(q_rot: str, k_rot: str) -> str:
    return ROPE.replace("QROT", q_rot).replace("KROT", k_rot)


def test_rotation_of_an_upcast_q_in_a_helper_the_forward_calls():
    # each ``q.float()`` is a new call; in one statement they cast one value, so the two
    # terms rotate one tensor
    code = rope("(q.float() * cos) + (rotate_half(q.float()) * sin)",
                "(k.float() * cos) + (rotate_half(k.float()) * sin)")
    assert finding_at(code, "ADP014", "q_embed = ") is not None


def test_two_different_casts_or_tensors_are_no_rotation():
    # a float32 copy times cos plus the rotation of a float16 copy; q's cast beside k's
    for q_rot, k_rot in (("(q.float() * cos) + (rotate_half(q.half()) * sin)",
                          "(k.float() * cos) + (rotate_half(k.half()) * sin)"),
                         ("(q.float() * cos) + (rotate_half(k.float()) * sin)",
                          "(k.float() * cos) + (rotate_half(q.float()) * sin)")):
        assert found(rope(q_rot, k_rot), "ADP014") == [], q_rot


def test_a_one_tensor_helper_inlined_twice_keeps_each_cast_its_own():
    # the same statement of a one-tensor helper, inlined for q and then for k: k's cast is
    # not q's (the cast is remembered by the value it casts, not by the name ``x``)
    code = ROPE.replace("QROT", "rot(q, cos, sin)").replace("KROT", "rot(k, cos, sin)") + textwrap.dedent("""\


        def rot(x, cos, sin):
            return (x.float() * cos) + (rotate_half(x.float()) * sin)
    """)
    assert finding_at(code, "ADP014", "return (x.float() * cos)") is not None
    swapped = code.replace("rot(k, cos, sin)", "rot(q, cos, sin) - rot(k, cos, sin) * 0")
    assert [f.line for f in found(swapped, "ADP014")] == [f.line for f in found(code, "ADP014")]


# ---------- ADP008: BatchNorm1d over the Linear's features moved to the channel axis (SuperGlue)

LINEAR_BN = textwrap.dedent("""\
    import torch
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, cin=6, cout=5):
            super().__init__()
            self.linear = nn.Linear(cin, cout)
            self.batch_norm = nn.BatchNorm1d(cout)
            self.activation = nn.ReLU()

        def forward(self, hidden_state):
            hidden_state = self.linear(hidden_state)
            hidden_state = hidden_state.transpose(@A, @B)
            hidden_state = self.batch_norm(hidden_state)
            hidden_state = hidden_state.transpose(@C, @D)
            return self.activation(hidden_state)
""")


def linear_bn(a="-1", b="-2", c="-1", d="-2") -> str:
    return LINEAR_BN.replace("@A", a).replace("@B", b).replace("@C", c).replace("@D", d)


def test_batchnorm1d_between_two_transposes_of_the_linear_output():
    for args in (("-1", "-2", "-1", "-2"), ("1", "2", "1", "2")):
        code = linear_bn(*args)
        assert finding_at(code, "ADP008", "self.batch_norm(hidden_state)") is not None, args


def test_the_fold_computes_what_the_two_layers_do():
    import torch

    code = linear_bn()
    fixed = fix_text(code, "model.py", rules("ADP008")).text
    assert "linear_bn(" in fixed and "transpose" not in fixed
    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a, b = original["MLP"]().double(), patched["MLP"]().double()
    with torch.no_grad():
        a.batch_norm.running_mean.uniform_(-1, 1)
        a.batch_norm.running_var.uniform_(0.5, 2)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    for train in (True, False):
        a.train(train)
        b.train(train)
        assert torch.allclose(a(x), b(x), atol=1e-12), train
    assert torch.allclose(a.batch_norm.running_var, b.batch_norm.running_var, atol=1e-12)


def test_transposes_that_do_not_bring_the_features_back_are_no_fold():
    # the batch and sequence axes swapped (the norm's channels are then the batch): not the
    # Linear's features.  (An output moved along other axes than the input was is a step
    # after a pair left channel-first, read since cnn34: test_cnn34_forms.py)
    for args in (("0", "1", "0", "1"), ("0", "1", "-1", "-2")):
        assert found(linear_bn(*args), "ADP008") == [], args
