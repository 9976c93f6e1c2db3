"""sites85 (session 46): a relative-position attention whose bias is computed, when the caller
passes none, by an ``if`` between the scores' product and the add (bert-seq2seq's T5: ``if
position_bias is None:`` builds it from a module or as zeros of the scores' dtype, then adds
the mask); later layers get the first one's bias as a parameter.  The guard sends the ``if``'s
case to the original and reads the bias's dtype before the attention: where the test fails no
body ran, so the parameter is the bias the original adds.  Outputs and every gradient equal
the original's in float64, eval and train, bias passed or not; look-alikes (the bias also
reassigned outside the if; a bias bound before the region only under a condition) stay
declined."""

from __future__ import annotations

import textwrap

from corpus_forms import rules

from adopter.synth import fix_text

FORM = textwrap.dedent("""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class RelAttention(nn.Module):
        def __init__(self, dim, heads=2, has_bias=True, dropout=0.0):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.q = nn.Linear(dim, dim, bias=False)
            self.k = nn.Linear(dim, dim, bias=False)
            self.v = nn.Linear(dim, dim, bias=False)
            self.o = nn.Linear(dim, dim, bias=False)
            self.has_bias = has_bias
            self.dropout = dropout
            if has_bias:
                self.table = nn.Embedding(16, heads)

        def compute_bias(self, n, m):
            rel = (torch.arange(m)[None, :] - torch.arange(n)[:, None]).clamp(-7, 8) + 7
            return self.table(rel).permute(2, 0, 1).unsqueeze(0)

        def forward(self, x, mask=None, position_bias=None, output_attentions=False):
            b, n, _ = x.shape
            q = self.q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            k = self.k(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            v = self.v(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(3, 2))
            if position_bias is None:
                if not self.has_bias:
                    position_bias = torch.zeros((1, self.heads, n, n), device=scores.device, dtype=scores.dtype)
                else:
                    position_bias = self.compute_bias(n, n)
                if mask is not None:
                    position_bias = position_bias + mask
            scores += position_bias
            attn = F.softmax(scores.float(), dim=-1).type_as(scores)
            attn = F.dropout(attn, p=self.dropout, training=self.training)
            out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, -1)
            outputs = (self.o(out), position_bias)
            if output_attentions:
                outputs = outputs + (attn,)
            return outputs
""")


F32 = {"rtol": 1.3e-6, "atol": 1e-5}  # assert_close's float32 defaults


def _fix(code: str):
    return fix_text(code, "model.py", rules("ADP010"))


def _load(code: str, name: str):
    ns: dict = {}
    exec(compile(code, name, "exec"), ns)
    return ns


def _inputs(passed: bool, masked: bool = True):
    import torch

    torch.manual_seed(1)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    mask = torch.zeros(3, 1, 1, 5, dtype=torch.float64)
    mask[0, ..., 3:] = torch.finfo(torch.float64).min  # padded keys, as T5's extended mask
    bias = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    return {"x": x, "mask": mask if masked else None,
            "position_bias": (bias + mask if masked else bias) if passed else None}


def _same(patched: str, inputs: dict, has_bias=True, modes=(False, True), expect_fused=None) -> None:
    import torch

    ns_a, ns_b = _load(FORM, "original"), _load(patched, "patched")
    calls = []
    fused = ns_b["scaled_dot_product_attention"]
    ns_b["scaled_dot_product_attention"] = lambda *a, **k: calls.append(1) or fused(*a, **k)
    torch.manual_seed(0)
    a = ns_a["RelAttention"](8, has_bias=has_bias).double()
    b = ns_b["RelAttention"](8, has_bias=has_bias).double()
    b.load_state_dict(a.state_dict())
    for training in modes:
        a.train(training)
        b.train(training)
        args_a = {key: t.clone().requires_grad_(True) if torch.is_tensor(t) else t for key, t in inputs.items()}
        args_b = {key: t.clone().requires_grad_(True) if torch.is_tensor(t) else t for key, t in inputs.items()}
        (out_a, bias_a), (out_b, bias_b) = a(**args_a), b(**args_b)
        # (float64 everywhere but the original's softmax, upcast with `.float()`: it rounds the
        # probabilities to float32, so float32's tolerances; the fused call keeps float64)
        torch.testing.assert_close(out_b, out_a, **F32)
        torch.testing.assert_close(bias_b, bias_a, rtol=0, atol=0)
        weight = torch.randn_like(out_a)
        (weight * out_a).sum().backward()
        (weight * out_b).sum().backward()
        for key in inputs:
            if torch.is_tensor(args_a[key]):
                torch.testing.assert_close(args_b[key].grad, args_a[key].grad, msg=key, **F32)
        for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad, msg=name, **F32)
            pa.grad = pb.grad = None
    if expect_fused is not None:
        assert bool(calls) == expect_fused, calls


def test_bias_computed_in_a_sent_if_after_the_product_is_fixed_exactly():
    fixed = _fix(FORM)
    assert fixed.error is None and [f.rule for f in fixed.applied] == ["ADP010"], fixed.skipped
    patched = fixed.text
    assert "attn_mask=position_bias" in patched and "position_bias is None" in patched
    # a later layer: the first layer's bias (mask included) handed in -> the fused call
    _same(patched, _inputs(passed=True), expect_fused=True)
    _same(patched, _inputs(passed=True, masked=False), expect_fused=True)
    # the first layer: the bias computed by the if -> the original, mask or not, module or zeros
    _same(patched, _inputs(passed=False), expect_fused=False)
    _same(patched, _inputs(passed=False, masked=False), expect_fused=False)
    _same(patched, _inputs(passed=False), has_bias=False, expect_fused=False)


def test_handed_bias_of_another_dtype_takes_the_original():
    import torch

    patched = _fix(FORM).text
    ns = _load(patched, "patched")
    calls = []
    fused = ns["scaled_dot_product_attention"]
    ns["scaled_dot_product_attention"] = lambda *a, **k: calls.append(1) or fused(*a, **k)
    module = ns["RelAttention"](8).float()
    inputs = _inputs(passed=True)
    module(inputs["x"].float(), position_bias=inputs["position_bias"])  # a float64 bias, float32 q
    assert not calls


def test_dropout_in_training_runs_the_fused_call():
    import torch

    patched = _fix(FORM).text
    ns = _load(patched, "patched")
    calls = []
    fused = ns["scaled_dot_product_attention"]
    ns["scaled_dot_product_attention"] = lambda *a, **k: calls.append(k.get("dropout_p")) or fused(*a, **k)
    module = ns["RelAttention"](8, dropout=0.5).double().train()
    out, _ = module(**_inputs(passed=True))
    assert torch.isfinite(out).all() and calls == [0.5]
    module.eval()
    module(**_inputs(passed=True))
    assert calls == [0.5, 0.0]


def test_bias_reassigned_outside_the_if_stays_declined():
    # look-alike: the bias is also scaled after the if, on every path: the value the guard
    # would read before the attention is not the one added
    code = FORM.replace("        scores += position_bias\n",
                        "        position_bias = position_bias * 2.0\n        scores += position_bias\n")
    assert code != FORM
    fixed = _fix(code)
    assert fixed.error is None and fixed.text == code and not fixed.applied


def test_bias_not_bound_before_the_attention_stays_declined():
    # look-alike: no parameter holds the bias; only the if's body binds it (the first layer
    # always computes it). A guard reading it before the attention would raise where the
    # original runs the body and succeeds.
    code = FORM.replace("def forward(self, x, mask=None, position_bias=None, output_attentions=False):",
                        "def forward(self, x, mask=None, output_attentions=False):").replace(
        "            if position_bias is None:\n", "            if self.has_bias or mask is not None:\n")
    assert code != FORM and "position_bias=None" not in code
    fixed = _fix(code)
    assert fixed.error is None and fixed.text == code and not fixed.applied
