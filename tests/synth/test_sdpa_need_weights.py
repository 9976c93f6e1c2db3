"""Attention that hands its probabilities (or raw scores) back on every call: the fix adds a
``need_weights`` parameter (default True: the original path, so no outside caller sees a
change) and the callers in the file decline them where they do not use them (``x, _ = ...``,
``...[0]``, a name never read), pass their own condition where they read them only under an
``if`` (DINO's ``return_attention``), or their own new flag where they hand them back in turn
(Whisper's ``forward`` returning what ``qkv_attention`` did).  Stored attributes and
probabilities no caller declines stay not fixed, with the reason.

The modules are written for these tests; each fixed one runs beside the original in float64
(outputs, probabilities where asked for, input and parameter gradients; eval and train), the
fused call counted so that the fallback cannot pass for it, and scripted with TorchScript.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from adopter.engine import analyze  # noqa: E402
from adopter.synth.fixable import plan_findings  # noqa: E402
from adopter.synth import fix_text  # noqa: E402
from sdpa_modules import RULES, Counter, sdpa_fixed  # noqa: E402

F64 = torch.float64

DINO = textwrap.dedent('''
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim=16, num_heads=2, attn_drop=0.0):
            super().__init__()
            self.num_heads = num_heads
            self.scale = (dim // num_heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.attn_drop = nn.Dropout(attn_drop)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = (q @ k.transpose(-2, -1)) * self.scale
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = (attn @ v).transpose(1, 2).reshape(B, N, C)
            x = self.proj(x)
            return x, attn


    class Block(nn.Module):
        def __init__(self, dim=16, num_heads=2):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim)
            self.attn = Attention(dim, num_heads)
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = nn.Linear(dim, dim)

        def forward(self, x, return_attention: bool = False):
            y, attn = self.attn(self.norm1(x))
            if return_attention:
                return attn
            x = x + y
            return x + self.mlp(self.norm2(x))


    class Plain(nn.Module):
        def __init__(self, dim=16):
            super().__init__()
            self.attn = Attention(dim)

        def forward(self, x):
            x, _ = self.attn(x)
            return x
''')

# (Whisper's `qk.float()` rounds float64 scores to float32 before the softmax, which the fused
# call does not: its comparisons use torch.testing's float32 tolerances.)
F32_TOLERANCE = {"rtol": 1.3e-6, "atol": 1e-5}

# Whisper's layout: the attention in a helper that returns the raw scores beside the product,
# the forward returning what the helper handed it, the blocks keeping element 0.
WHISPER = textwrap.dedent('''
    from typing import Optional, Tuple

    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn


    class MultiHeadAttention(nn.Module):
        def __init__(self, n_state: int = 16, n_head: int = 2):
            super().__init__()
            self.n_head = n_head
            self.query = nn.Linear(n_state, n_state)
            self.key = nn.Linear(n_state, n_state, bias=False)
            self.value = nn.Linear(n_state, n_state)
            self.out = nn.Linear(n_state, n_state)

        def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
            q = self.query(x)
            k = self.key(x)
            v = self.value(x)
            wv, qk = self.qkv_attention(q, k, v, mask)
            return self.out(wv), qk

        def qkv_attention(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None
                          ) -> Tuple[Tensor, Tensor]:
            n_batch, n_ctx, n_state = q.shape
            scale = (n_state // self.n_head) ** -0.25
            q = q.view(q.shape[0], q.shape[1], self.n_head, -1).permute(0, 2, 1, 3) * scale
            k = k.view(k.shape[0], k.shape[1], self.n_head, -1).permute(0, 2, 3, 1) * scale
            v = v.view(v.shape[0], v.shape[1], self.n_head, -1).permute(0, 2, 1, 3)
            qk = q @ k
            if mask is not None:
                qk = qk + mask[:n_ctx, :n_ctx]
            qk = qk.float()
            w = F.softmax(qk, dim=-1).to(q.dtype)
            return (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2), qk.detach()


    class ResidualAttentionBlock(nn.Module):
        def __init__(self, n_state: int = 16, n_head: int = 2, cross: bool = False):
            super().__init__()
            self.attn = MultiHeadAttention(n_state, n_head)
            self.attn_ln = nn.LayerNorm(n_state)
            self.cross_attn = MultiHeadAttention(n_state, n_head) if cross else None

        def forward(self, x: Tensor, mask: Optional[Tensor] = None):
            x = x + self.attn(self.attn_ln(x), mask=mask)[0]
            if self.cross_attn is not None:
                x = x + self.cross_attn(x)[0]
            return x
''')

# TST's layout: the attention module built inline and called, its caller handing the
# probabilities back, and that caller's caller binding them to a name it never reads.
INLINE = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class ScaledDotProductAttention(nn.Module):
        def __init__(self, d_k: int):
            super().__init__()
            self.d_k = d_k

        def forward(self, q, k, v, mask=None):
            scores = torch.matmul(q, k) / (self.d_k ** 0.5)
            if mask is not None:
                scores = scores.masked_fill(mask, -1e9)
            attn = F.softmax(scores, dim=-1)
            context = torch.matmul(attn, v)
            return context, attn


    class MultiHead(nn.Module):
        def __init__(self, d_model=16, n_heads=2):
            super().__init__()
            self.n_heads, self.d_k = n_heads, d_model // n_heads
            self.W_Q = nn.Linear(d_model, d_model)
            self.W_K = nn.Linear(d_model, d_model)
            self.W_V = nn.Linear(d_model, d_model)

        def forward(self, Q, mask=None):
            bs = Q.size(0)
            q_s = self.W_Q(Q).view(bs, -1, self.n_heads, self.d_k).transpose(1, 2)
            k_s = self.W_K(Q).view(bs, -1, self.n_heads, self.d_k).permute(0, 2, 3, 1)
            v_s = self.W_V(Q).view(bs, -1, self.n_heads, self.d_k).transpose(1, 2)
            context, attn = ScaledDotProductAttention(self.d_k)(q_s, k_s, v_s, mask)
            context = context.transpose(1, 2).reshape(bs, -1, self.n_heads * self.d_k)
            return context, attn


    class EncoderLayer(nn.Module):
        def __init__(self, d_model=16):
            super().__init__()
            self.self_attn = MultiHead(d_model)

        def forward(self, src, mask=None):
            src2, attn = self.self_attn(src, mask=mask)
            return src + src2
''')


def _checked(source: str):
    """The findings as ``check`` reports them (fixable decided by the planning ``fix`` runs)."""
    return plan_findings(analyze(source, "attention.py", RULES), source, "attention.py")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _pair(source: str, fixed: str, name: str, cls: str, module_from_file, training: bool, count: bool = True,
          **kwargs):
    original = module_from_file(source, f"orig_{name}").__dict__
    new = module_from_file(fixed, f"new_{name}").__dict__
    counter = Counter(new) if count else None  # (TorchScript cannot compile the counting wrapper)
    torch.manual_seed(0)
    a = original[cls](**kwargs).to(F64).train(training)
    b = new[cls](**kwargs).to(F64).train(training)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b, counter


def _step(a, b, inputs, call_a, call_b, **tolerance):
    """One forward and backward of both; returns both outputs.  Float64 over a handful of keys
    and channels: torch.testing's float64 defaults, unless ``tolerance`` says otherwise."""
    ins_a = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
    ins_b = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out_a, out_b = call_a(a, ins_a), call_b(b, ins_b)
    main_a = out_a[0] if isinstance(out_a, tuple) else out_a
    main_b = out_b[0] if isinstance(out_b, tuple) else out_b
    torch.testing.assert_close(main_b, main_a, **tolerance)
    weight = torch.randn_like(main_a)
    (weight * main_a).sum().backward()
    (weight * main_b).sum().backward()
    for u, w in zip(ins_a, ins_b):
        if u.requires_grad:
            torch.testing.assert_close(w.grad, u.grad, **tolerance)
    grads = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, **tolerance)
    return out_a, out_b


# ------------------------------------------------------------------ DINO


def test_dino_callers_pass_their_condition_or_decline():
    fixed = sdpa_fixed(DINO)
    flat = _flat(fixed)
    assert "def forward(self, x, need_weights: bool = True):" in fixed
    assert "if ( need_weights or" in flat  # the caller's choice is the guard's first term
    assert "attn = None" in fixed
    assert "self.attn(self.norm1(x), need_weights=return_attention)" in fixed
    assert "x, _ = self.attn(x, need_weights=False)" in fixed
    [finding] = _checked(DINO)
    assert finding.fixable  # check says what fix does


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("need", [True, False])
def test_dino_attention_matches_with_and_without_the_probabilities(training, need, module_from_file):
    a, b, counter = _pair(DINO, sdpa_fixed(DINO), f"dino_attn_{training}_{need}", "Attention", module_from_file,
                          training)
    x = torch.randn(2, 5, 16, dtype=F64)
    (_, attn_a), (_, attn_b) = _step(a, b, [x], lambda m, i: m(*i), lambda m, i: m(*i, need_weights=need))
    if need:
        torch.testing.assert_close(attn_b, attn_a)
    else:
        assert attn_b is None
    assert counter.calls == (0 if need else 1)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("asked", [True, False])
def test_dino_block_takes_the_fused_path_unless_asked(training, asked, module_from_file):
    a, b, counter = _pair(DINO, sdpa_fixed(DINO), f"dino_block_{training}_{asked}", "Block", module_from_file,
                          training)
    x = torch.randn(2, 5, 16, dtype=F64)
    _step(a, b, [x], lambda m, i: m(*i, return_attention=asked), lambda m, i: m(*i, return_attention=asked))
    assert counter.calls == (0 if asked else 1)


def test_dino_scripted(module_from_file):
    new = module_from_file(sdpa_fixed(DINO), "new_dino_script").__dict__
    original = module_from_file(DINO, "orig_dino_script").__dict__
    torch.manual_seed(0)
    a = original["Plain"]().to(F64).eval()
    b = new["Plain"]().to(F64).eval()
    b.load_state_dict(a.state_dict(), strict=True)
    scripted = torch.jit.script(b)
    x = torch.randn(2, 5, 16, dtype=F64)
    torch.testing.assert_close(scripted(x), a(x))
    attention = torch.jit.script(b.attn)
    out, attn = attention(x, need_weights=False)
    assert attn is None
    torch.testing.assert_close(out, a.attn(x)[0])
    torch.testing.assert_close(attention(x)[1], a.attn(x)[1])


# ------------------------------------------------------------------ Whisper


def test_whisper_flag_reaches_the_helper_through_the_forward():
    fixed = sdpa_fixed(WHISPER)
    flat = _flat(fixed)
    # (the def line the new parameter makes too long gets one parameter a line, as Black writes it)
    assert "def forward( self, x: Tensor, mask: Optional[Tensor] = None, need_weights: bool = True, " \
           ") -> Tuple[Tensor, Optional[Tensor]]:" in flat
    assert max(len(line) for line in fixed.split("\n")) < 100
    assert "self.qkv_attention(q, k, v, mask, need_weights=need_weights)" in fixed
    assert "self.attn(self.attn_ln(x), mask=mask, need_weights=False)[0]" in fixed
    assert "self.cross_attn(x, need_weights=False)[0]" in fixed
    # the causal mask's slice is added with values the file does not show (a buffer of another
    # class): a training step with a row it hides whole takes the original too (rafix50)
    assert "need_weights or ( mask is not None and ( not mask[:n_ctx, :n_ctx].is_floating_point()" in flat
    assert "mask[:n_ctx, :n_ctx].amax(-1).min() <= -100.0" in flat
    assert flat.count("Tuple[Tensor, Optional[Tensor]]") == 2  # both annotations widened
    # the fused path returns None where the scores were
    assert ".flatten(start_dim=2), None" in flat


HANGING = textwrap.dedent('''\
    import torch
    from torch import nn


    class SelfAttention(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.attn_dropout = nn.Dropout(0.1)

        def _attn(
            self, query_states_tensor, key_states_tensor, value_states_tensor, attention_mask_tensor
        ):
            attn_weights = torch.matmul(query_states_tensor, key_states_tensor.transpose(-1, -2))
            if attention_mask_tensor is not None:
                attn_weights = attn_weights + attention_mask_tensor
            attn_weights = nn.functional.softmax(attn_weights, dim=-1)
            attn_weights = self.attn_dropout(attn_weights)
            attn_output = torch.matmul(attn_weights, value_states_tensor)
            return attn_output, attn_weights

        def forward(self, x, attention_mask=None, output_attentions=False):
            b, t, c = x.shape
            q, k, v = self.qkv(x).split(c, dim=-1)
            q = q.view(b, t, self.heads, -1).transpose(1, 2)
            k = k.view(b, t, self.heads, -1).transpose(1, 2)
            v = v.view(b, t, self.heads, -1).transpose(1, 2)
            out, weights = self._attn(q, k, v, attention_mask)
            out = out.transpose(1, 2).reshape(b, t, c)
            if output_attentions:
                return out, weights
            return out, None
''')


def test_a_hanging_parameter_line_the_new_parameter_overfills_gets_one_parameter_a_line(module_from_file):
    # Black's hanging form (every parameter on one line under the def, 95 characters) would
    # be 122 with need_weights appended: the header takes one parameter a line instead
    fixed = sdpa_fixed(HANGING)
    assert max(len(line) for line in fixed.split("\n")) < 100
    assert "    def _attn(\n        self,\n        query_states_tensor,\n" in fixed
    assert "        attention_mask_tensor,\n        need_weights: bool = True,\n    ):\n" in fixed
    assert "self._attn(q, k, v, attention_mask, need_weights=output_attentions)" in fixed
    a, b, counter = _pair(HANGING, fixed, "hanging", "SelfAttention", module_from_file, False)
    x = torch.randn(2, 5, 16, dtype=F64)
    out_a, _ = a(x)
    out_b, weights = b(x)
    torch.testing.assert_close(out_b, out_a)
    assert weights is None and counter.calls == 1


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("need", [True, False])
def test_whisper_attention_matches(training, masked, need, module_from_file):
    a, b, counter = _pair(WHISPER, sdpa_fixed(WHISPER), f"wh_{training}_{masked}_{need}", "MultiHeadAttention",
                          module_from_file, training)
    x = torch.randn(2, 5, 16, dtype=F64)
    mask = torch.empty(5, 5, dtype=F64).fill_(-float("inf")).triu_(1) if masked else None
    (_, qk_a), (_, qk_b) = _step(a, b, [x], lambda m, i: m(*i, mask=mask),
                                 lambda m, i: m(*i, mask=mask, need_weights=need), **F32_TOLERANCE)
    if need:
        torch.testing.assert_close(qk_b, qk_a)
    else:
        assert qk_b is None
    assert counter.calls == (0 if need else 1)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("scripted", [False, True])
def test_whisper_blocks_take_the_fused_path(training, scripted, module_from_file):
    a, b, counter = _pair(WHISPER, sdpa_fixed(WHISPER), f"wh_block_{training}_{scripted}", "ResidualAttentionBlock",
                          module_from_file, training, count=not scripted, cross=True)
    if scripted:
        a, b = torch.jit.script(a), torch.jit.script(b)
    x = torch.randn(2, 5, 16, dtype=F64)
    mask = torch.empty(5, 5, dtype=F64).fill_(-float("inf")).triu_(1)
    _step(a, b, [x], lambda m, i: m(*i, mask=mask), lambda m, i: m(*i, mask=mask), **F32_TOLERANCE)
    if not scripted:
        assert counter.calls == 2  # self-attention and cross-attention, both fused


# ------------------------------------------------------------------ inline module, name never read


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_inline_attention_module_declined_by_a_name_never_read(training, masked, module_from_file):
    fixed = sdpa_fixed(INLINE)
    # (the call the new argument makes too long is wrapped at its brackets)
    assert "ScaledDotProductAttention(self.d_k)( q_s, k_s, v_s, mask, need_weights=need_weights )" in _flat(fixed)
    assert "self.self_attn(src, mask=mask, need_weights=False)" in fixed
    a, b, counter = _pair(INLINE, fixed, f"inline_{training}_{masked}", "EncoderLayer", module_from_file, training)
    x = torch.randn(2, 5, 16, dtype=F64)
    mask = (torch.arange(5)[None, :] > torch.arange(5)[:, None]) if masked else None
    _step(a, b, [x], lambda m, i: m(*i, mask=mask), lambda m, i: m(*i, mask=mask))
    assert counter.calls == 1
    # the middle module, called by an outside caller, hands the probabilities back as before
    a2, b2, counter2 = _pair(INLINE, fixed, f"inline_mid_{training}_{masked}", "MultiHead", module_from_file, training)
    (_, attn_a), (_, attn_b) = _step(a2, b2, [x], lambda m, i: m(*i, mask=mask), lambda m, i: m(*i, mask=mask))
    torch.testing.assert_close(attn_b, attn_a)
    assert counter2.calls == 0


# ------------------------------------------------------------------ left alone, with the reason


def test_probabilities_no_caller_declines_are_not_fixed():
    source = DINO[:DINO.index("class Block")]
    result = fix_text(source, "attention.py", RULES)
    assert result.text == source and not result.applied
    [(finding, reason)] = result.skipped
    assert "no caller in this file declines it" in reason
    [finding] = _checked(source)
    assert not finding.fixable and "no caller in this file declines it" in finding.not_fixable


def test_callers_that_use_the_probabilities_do_not_count():
    # collected on every call (tab-transformer, ESM's batched forward): nothing declines them
    source = DINO.replace("""        y, attn = self.attn(self.norm1(x))
        if return_attention:
            return attn
""", """        y, attn = self.attn(self.norm1(x))
        self.maps.append(attn)
""").replace("        x, _ = self.attn(x)\n", "        x, w = self.attn(x)\n        print(w)\n")
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and "no caller in this file declines it" in result.skipped[0][1]


def test_a_condition_the_caller_reassigns_is_not_passed():
    source = DINO.replace("        if return_attention:\n",
                  "        return_attention = return_attention and not self.training\n"
                  "        if return_attention:\n")
    fixed = sdpa_fixed(source)  # Plain still declines them
    assert "need_weights=return_attention" not in fixed
    assert "self.attn(self.norm1(x))\n" in fixed


def test_stored_probabilities_are_not_fixed():
    # a visualization attribute may be read by whoever holds the module: only its user can say
    source = DINO.replace("        x = self.proj(x)\n        return x, attn\n",
                  "        x = self.proj(x)\n        self.scores = attn\n        return x\n"
                  ).replace("y, attn = self.attn(self.norm1(x))", "y = self.attn(self.norm1(x))").replace(
        "        if return_attention:\n            return attn\n", "").replace(
        "x, _ = self.attn(x)", "x = self.attn(x)")
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied
    assert "stored in `self.scores`" in result.skipped[0][1]
    inside = DINO.replace("        attn = self.attn_drop(attn)\n",
                  "        self.attn_map = attn\n        attn = self.attn_drop(attn)\n")
    result = fix_text(inside, "attention.py", RULES)
    assert not result.applied and "stored in `self.attn_map`" in result.skipped[0][1]


def test_the_flag_takes_a_name_the_module_does_not_use():
    source = DINO.replace("self.num_heads = num_heads", "self.num_heads = num_heads\n        need_weights = 1")
    assert source != DINO
    fixed = sdpa_fixed(source)
    assert "need_attn_weights: bool = True" in fixed and "need_weights=return_attention" not in fixed
    assert "need_attn_weights=return_attention" in fixed


def test_a_subclass_that_binds_the_attribute_to_another_module_keeps_the_call():
    # `Other.attn` is no `Attention`: Block's forward, which Other inherits, must not pass it the flag
    source = DINO + textwrap.dedent('''

        class Other(Block):
            def __init__(self, dim=16, num_heads=2):
                super().__init__(dim, num_heads)
                self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
    ''')
    fixed = sdpa_fixed(source)  # Plain still declines them
    assert "need_weights=return_attention" not in fixed and "x, _ = self.attn(x, need_weights=False)" in fixed


def test_a_helper_a_subclass_redefines_gets_no_flag():
    source = WHISPER + textwrap.dedent('''

        class Faster(MultiHeadAttention):
            def qkv_attention(self, q, k, v, mask=None):
                return q, None
    ''')
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and "no caller in this file declines it" in result.skipped[0][1]


# ------------------------------------------------------------------ layers in a ModuleList

# The classic encoder layout: the attention module hands its probabilities back, each layer
# hands them on, and the encoder walks its ModuleList keeping them only when asked for them.
LISTED = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class DotAttention(nn.Module):
        def __init__(self, temperature, rate=0.0):
            super().__init__()
            self.temperature = temperature
            self.dropout = nn.Dropout(rate)

        def forward(self, q, k, v, mask=None):
            attn = torch.matmul(q / self.temperature, k.transpose(2, 3))
            if mask is not None:
                attn = attn.masked_fill(mask == 0, -1e9)
            attn = self.dropout(F.softmax(attn, dim=-1))
            return torch.matmul(attn, v), attn


    class Layer(nn.Module):
        def __init__(self, d=16, heads=2):
            super().__init__()
            self.heads, self.dk = heads, d // heads
            self.qkv = nn.Linear(d, 3 * d)
            self.fc = nn.Linear(d, d)
            self.attention = DotAttention(temperature=self.dk ** 0.5)

        def forward(self, x, mask=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.dk).permute(2, 0, 3, 1, 4)
            out, attn = self.attention(q, k, v, mask=mask)
            return x + self.fc(out.transpose(1, 2).reshape(b, n, -1)), attn


    class Encoder(nn.Module):
        def __init__(self, depth=2):
            super().__init__()
            self.layer_stack = nn.ModuleList([Layer() for _ in range(depth)])

        def forward(self, x, mask=None, return_attns=False):
            maps = []
            for i, layer in enumerate(self.layer_stack):
                x, attn = layer(x, mask=mask)
                maps += [attn] if return_attns else []
            if return_attns:
                return x, maps
            return x
''')


def test_layers_walked_in_a_module_list_pass_their_condition():
    fixed = sdpa_fixed(LISTED)
    assert "layer(x, mask=mask, need_weights=return_attns)" in fixed
    assert "self.attention(q, k, v, mask=mask, need_weights=need_weights)" in fixed
    # a loop name assigned again in the loop is not a member of the list: nothing is passed
    rebound = LISTED.replace("x, attn = layer(x, mask=mask)", "layer = layer\n            x, attn = layer(x, mask=mask)")
    assert "need_weights=return_attns" not in fix_text(rebound, "attention.py", RULES).text


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("asked", [True, False])
def test_module_list_encoder_takes_the_fused_path_unless_asked(training, asked, module_from_file):
    a, b, counter = _pair(LISTED, sdpa_fixed(LISTED), f"listed_{training}_{asked}", "Encoder", module_from_file,
                          training)
    x = torch.randn(2, 5, 16, dtype=F64)
    mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    mask[1, :, :, 3:] = False
    out_a, out_b = _step(a, b, [x, mask], lambda m, i: m(*i, return_attns=asked),
                         lambda m, i: m(*i, return_attns=asked))
    if asked:
        for map_a, map_b in zip(out_a[1], out_b[1]):
            torch.testing.assert_close(map_b, map_a)
    assert counter.calls == (0 if asked else 2)


# ------------------------------------------------------------------ a throwaway name bound again

# The caller unpacks the probabilities into a name it binds elsewhere too (``_, n, _ =
# k.size()``) and never reads: nothing reads what the attention hands back there.
THROWAWAY = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Scaled(nn.Module):
        def __init__(self, temperature, p=0.0):
            super().__init__()
            self.temperature = temperature
            self.drop = nn.Dropout(p)

        def forward(self, q, k, v, mask=None):
            w = torch.matmul(q / self.temperature, k.transpose(2, 3))
            if mask is not None:
                w = w.masked_fill(mask == 0, float("-inf"))
            w = self.drop(F.softmax(w, dim=-1))
            return torch.matmul(w, v), w


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.inner = Scaled((dim // heads) ** 0.5, 0.1)
            self.out = nn.Linear(dim, dim)

        def forward(self, x, mask=None):
            b, n, _ = x.size()
            _, m, _ = x.size()
            q, k, v = self.qkv(x).view(b, m, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            y, _ = self.inner(q, k, v, mask=mask)
            return self.out(y.transpose(1, 2).reshape(b, n, -1))
''')


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_a_throwaway_name_bound_elsewhere_too_declines(training, masked, module_from_file):
    fixed = sdpa_fixed(THROWAWAY)
    assert "def forward(self, q, k, v, mask=None, need_weights: bool = True):" in fixed
    assert "y, _ = self.inner(q, k, v, mask=mask, need_weights=False)" in fixed
    a, b, counter = _pair(THROWAWAY, fixed, f"throwaway_{training}_{masked}", "Heads", module_from_file, training)
    x = torch.randn(2, 5, 16, dtype=F64)
    mask = torch.ones(2, 1, 5, 5, dtype=torch.long)
    if masked:
        mask[1, :, :, 3:] = 0
    if training:  # the same dropout draws: none (p=0.1 would draw differently); the fused path is still taken
        a.inner.drop.p = b.inner.drop.p = 0.0
    _step(a, b, [x, mask], lambda m, i: m(*i), lambda m, i: m(*i))
    assert counter.calls == 1


def test_a_throwaway_name_read_elsewhere_does_not_decline():
    # ``_`` bound twice and read once: which binding the read sees cannot be told, so no caller
    # declines the probabilities
    source = THROWAWAY.replace("        return self.out(", "        print(_)\n        return self.out(")
    assert source != THROWAWAY
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and "no caller in this file declines it" in result.skipped[0][1]
    # nor where a frame-reading call could see it
    source = THROWAWAY.replace("        return self.out(", "        print(locals())\n        return self.out(")
    assert source != THROWAWAY
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied and "no caller in this file declines it" in result.skipped[0][1]
