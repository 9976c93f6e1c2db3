"""ADP010 on attention written with the heads folded into the batch (the fairseq manner), in
spellings of our own: the softmax computed by a same-file function that chooses between two
float32 spellings on a flag, the scores passed through a function of the class that returns
them unchanged, a cast of the probabilities read only for its dtype, an optional additive mask
reshaped under its test, and the probabilities returned only when asked (the name cleared
first, then set under the test).

The original and the patched module run side by side (forward and backward, in training with
dropout 0 and in evaluation, with and without the mask), counting the calls of
scaled_dot_product_attention so that a fallback cannot pass for the fused path.  The softmax is
computed in float32 on every path of the original, so the tolerances are float32's.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

from adopter.engine import analyze  # noqa: E402
from adopter.ruleset import load_rules  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64
# float32 softmax of rows of 6 keys, then float64 products: float32's resolution
F32_TOLERANCE = {"rtol": 1.3e-6, "atol": 1e-5}

FOLDED = textwrap.dedent('''
    from typing import Optional

    import torch
    from torch import Tensor, nn
    from torch.nn import functional as fn


    def row_softmax(logits: Tensor, axis: int, tracing: bool = False) -> Tensor:
        """float32 probabilities whatever the input dtype (two spellings for two back ends)"""
        if tracing:
            return fn.softmax(logits.float(), dim=axis)
        else:
            return fn.softmax(logits, dim=axis, dtype=torch.float32)


    class Mixer(nn.Module):
        def __init__(self, width=12, n_heads=3, p=0.0):
            super().__init__()
            self.n_heads = n_heads
            self.d = width // n_heads
            self.scaling = self.d ** -0.5
            self.wq = nn.Linear(width, width)
            self.wk = nn.Linear(width, width)
            self.wv = nn.Linear(width, width)
            self.wo = nn.Linear(width, width)
            self.p = p
            self.tracing = False

        @staticmethod
        def sparsify(logits, n_q: int, n_k: int):
            return logits

        def forward(self, x, bias: Optional[Tensor] = None, return_weights: bool = False):
            length, batch, width = x.size()
            q = self.wq(x)
            q *= self.scaling
            k = self.wk(x)
            v = self.wv(x)
            q = q.contiguous().view(length, batch * self.n_heads, self.d).transpose(0, 1)
            k = k.contiguous().view(-1, batch * self.n_heads, self.d).transpose(0, 1)
            v = v.contiguous().view(-1, batch * self.n_heads, self.d).transpose(0, 1)
            logits = torch.bmm(q, k.transpose(1, 2))
            logits = self.sparsify(logits, length, k.size(1))
            if bias is not None:
                bias = bias.unsqueeze(0)
                if self.tracing:
                    bias = bias.repeat(logits.size(0), 1, 1)
                logits += bias
            weights32 = row_softmax(logits, -1, tracing=self.tracing)
            logits = weights32.to(logits.dtype)
            probs = fn.dropout(weights32.type_as(logits), p=self.p, training=self.training)
            mixed = torch.bmm(probs, v)
            mixed = mixed.transpose(0, 1).contiguous().view(length, batch, width)
            out = self.wo(mixed)
            weights: Optional[Tensor] = None
            if return_weights:
                weights = weights32.view(batch, self.n_heads, length, -1).mean(dim=1)
            return out, weights
''')


def _pair(source: str, tracing: bool):
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["Mixer"]().to(F64)
    b = new["Mixer"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    a.tracing = b.tracing = tracing
    return a, b, counter


def _run(a, b, x, **kwargs):
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    (out_a, w_a), (out_b, w_b) = a(xa, **kwargs), b(xb, **kwargs)
    torch.testing.assert_close(out_b, out_a, **F32_TOLERANCE)
    if w_a is None:
        assert w_b is None
    else:
        torch.testing.assert_close(w_b, w_a)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, **F32_TOLERANCE)
    grads = dict(a.named_parameters())
    for name, param in b.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, **F32_TOLERANCE)


@pytest.mark.parametrize("tracing", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_folded_heads_with_a_two_path_softmax_function_are_fixed(tracing, masked, training):
    patched = sdpa_fixed(FOLDED)
    fused = patched.split("        else:\n")[1].split("        mixed = mixed.transpose")[0]  # the fused branch
    assert "scale=1.0" in fused and "attn_mask=bias" in fused
    # the cast read only for its dtype and the identity call are not on the fused path
    assert "sparsify" not in fused and "weights32" not in fused
    a, b, counter = _pair(FOLDED, tracing)
    a.train(training), b.train(training)
    x = torch.randn(6, 2, 12, dtype=F64)
    kwargs = {"bias": torch.triu(torch.full((6, 6), -1e4, dtype=F64), 1)} if masked else {}
    _run(a, b, x, **kwargs)
    assert counter.calls == 1
    # asked for the probabilities: the original path computes them
    _run(a, b, x, return_weights=True, **kwargs)
    assert counter.calls == 1


def test_a_bias_of_another_dtype_takes_the_original_path():
    # the scores are cast back to their own dtype, which a wider bias would give them
    a, b, counter = _pair(FOLDED, False)
    x = torch.randn(6, 2, 12, dtype=F64)
    a.half(), b.half()
    x = x.half()
    with torch.no_grad():
        out_a, _ = a(x, bias=torch.zeros(6, 6, dtype=torch.float32))
        out_b, _ = b(x, bias=torch.zeros(6, 6, dtype=torch.float32))
    assert counter.calls == 0
    assert torch.equal(out_a, out_b)


@pytest.mark.parametrize("change", [
    # the function's other path tempers the scores: not the softmax of the scores on every path
    ("return fn.softmax(logits.float(), dim=axis)", "return fn.softmax(logits.float() / 2, dim=axis)"),
    # one path keeps the input dtype, the other computes in float32
    ("return fn.softmax(logits.float(), dim=axis)", "return fn.softmax(logits, dim=axis)"),
])
def test_what_is_not_the_same_softmax_is_not_fixed(change):
    # (misses39) not one softmax (formulas.softmax_formula); the helper is then inlined with the
    # call's literal axis, each of its paths attention over the keys (tempered, or in another
    # dtype): reported at most, as the same code in the caller would be, never rewritten
    source = FOLDED.replace(*change)
    assert source != FOLDED
    assert fix_text(source, "attention.py", RULES).text == source


def test_a_capped_score_is_not_attention():
    # the class function caps the scores (tanh): SDPA cannot apply it
    source = FOLDED.replace("        return logits\n", "        return 30 * torch.tanh(logits / 30)\n")
    assert source != FOLDED
    assert analyze(source, "attention.py", RULES).findings == []


def test_a_cast_whose_values_are_read_is_a_step():
    # the cast's output read as values (not only for its dtype) after the product: it is what
    # the original computes, so the fused path may not drop it
    source = FOLDED.replace("        return out, weights\n", "        return out, weights, logits.sum()\n")
    assert source != FOLDED
    result = fix_text(source, "attention.py", RULES)
    assert [f.rule for f in result.applied] == []


def test_the_softmax_rule_does_not_drop_the_float32_the_function_computes_in():
    # ADP004 rewrites a softmax into adopter_kernels.softmax(x, dim=-1): for a call of the
    # float32 function that would drop the dtype (half in, half out instead of float32 out)
    softmax_rule = [r for r in load_rules() if r.id == "ADP004"]
    source = textwrap.dedent('''
        import torch
        from torch.nn import functional as fn


        def row_softmax(logits, axis, tracing=False):
            if tracing:
                return fn.softmax(logits.float(), dim=axis)
            return fn.softmax(logits, dim=axis, dtype=torch.float32)


        def shifted(logits, axis):
            return fn.softmax(logits - logits.amax(dim=axis, keepdim=True), dim=axis)


        def probabilities(x):
            return row_softmax(x, -1, tracing=False), shifted(x, -1)
    ''')
    result = fix_text(source, "probs.py", softmax_rule)
    line = source.splitlines().index("    return row_softmax(x, -1, tracing=False), shifted(x, -1)") + 1
    assert [f.line for f in result.applied] == [line]  # the shifted one: same dtype in and out
    [(_, why)] = result.skipped
    assert why == "the fused call would drop `dtype=`, which `row_softmax` computes in"
    assert "row_softmax(x, -1, tracing=False)" in result.text and "shifted(x, -1)" not in result.text
