"""ADP010 where the bias module is handed to the attention by its caller (``sim = sim +
pos_emb(sim)`` with ``pos_emb`` a parameter of ``forward``: feedback-transformer's attention is
handed its model's relative position bias).  The classes of the file whose ``forward`` reads
that argument only for its sizes and device may take a stand-in of the scores; the guard sends
every other type of value (a subclass, another module, one with hooks) to the original.
Checked numerically against the original in float64, eval and training (dropout 0): outputs,
input and parameter gradients (the bias table's included), fused calls counted.  Where no class
of the file reads it for its sizes only, the site stays declined."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

HANDED = textwrap.dedent('''
    import torch
    from torch import nn


    class DistanceBias(nn.Module):
        def __init__(self, heads, reach=8):
            super().__init__()
            self.reach = reach
            self.table = nn.Embedding(reach, heads)

        def forward(self, dots):
            i, j, device = *dots.shape[-2:], dots.device
            rel = (torch.arange(j, device=device)[None, :] - torch.arange(i, device=device)[:, None]).abs()
            return self.table(rel.clamp(max=self.reach - 1)).permute(2, 0, 1)[None]


    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
            self.drop = nn.Dropout(0.0)

        def forward(self, x, pos_emb=None):
            b, n, d = x.shape
            q, k, v = self.to_qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            sim = torch.einsum('b h i d, b h j d -> b h i j', q * self.scale, k)
            if pos_emb is not None:
                sim = sim + pos_emb(sim)
            attn = sim.softmax(dim=-1)
            attn = self.drop(attn)
            out = torch.einsum('b h i j, b h j d -> b h i d', attn, v)
            return out.transpose(1, 2).reshape(b, n, d)


    class Model(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.pos_emb = DistanceBias(heads)
            self.attn = Attention(dim, heads)

        def forward(self, x):
            return self.attn(x, pos_emb=self.pos_emb)
''')


def test_the_handed_module_takes_a_stand_in_behind_a_type_guard():
    fixed = sdpa_fixed(HANDED)
    assert "type(pos_emb) is not DistanceBias" in fixed
    fast = " ".join(fixed.split("else:")[-1].split())
    assert "pos_emb((q * self.scale).new_empty(()).expand(" in fast.replace("( ", "(")


class _Sub:
    pass


@pytest.mark.parametrize("handed", ["same", "none", "subclass", "other", "hooked"])
def test_the_rewrite_computes_what_the_original_does(handed):
    fixed = sdpa_fixed(HANDED)
    original, patched = load(HANDED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["Attention"](8, 2).to(F64)
    b = patched["Attention"](8, 2).to(F64)
    b.load_state_dict(a.state_dict())
    bias_a = bias_b = None
    if handed in ("same", "hooked"):
        bias_a, bias_b = original["DistanceBias"](2).to(F64), patched["DistanceBias"](2).to(F64)
        if handed == "hooked":
            bias_b.register_forward_hook(lambda m, i, o: None)
    elif handed == "subclass":  # a subclass may read more of the scores: the original path
        sub_a = type("Scaled", (original["DistanceBias"],), {"forward": lambda self, s: super(type(self), self).forward(s) * s.std()})
        sub_b = type("Scaled", (patched["DistanceBias"],), {"forward": lambda self, s: super(type(self), self).forward(s) * s.std()})
        bias_a, bias_b = sub_a(2).to(F64), sub_b(2).to(F64)
    elif handed == "other":  # a module of another class, reading the scores' values
        bias_a = torch.nn.Tanh()
        bias_b = torch.nn.Tanh()
    if bias_a is not None and handed != "other":
        bias_b.load_state_dict(bias_a.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {} if bias_a is None else {"pos_emb": bias_a}
    kwargs_b = {} if bias_b is None else {"pos_emb": bias_b}

    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        xa = x.clone().requires_grad_()
        xb = x.clone().requires_grad_()
        out_a, out_b = a(xa, **kwargs), b(xb, **kwargs_b)
        torch.testing.assert_close(out_b, out_a)
        weight = torch.randn_like(out_a)
        (weight * out_a).sum().backward()
        (weight * out_b).sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)
        for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad)
        if bias_a is not None and handed != "other":
            for (name, pa), (_, pb) in zip(bias_a.named_parameters(), bias_b.named_parameters()):
                torch.testing.assert_close(pb.grad, pa.grad)
        a.zero_grad(), b.zero_grad()
        if bias_a is not None and handed != "other":
            bias_a.zero_grad(), bias_b.zero_grad()
        assert counter.calls - before == (1 if handed in ("same", "none") else 0)


def test_the_model_that_hands_it_over_computes_what_it_did():
    fixed = sdpa_fixed(HANDED)
    original, patched = load(HANDED, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["Model"](8, 2).to(F64)
    b = patched["Model"](8, 2).to(F64)
    b.load_state_dict(a.state_dict())
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [torch.randn(2, 5, 8, dtype=F64)])
    assert counter.calls == 2


def test_no_class_reading_only_the_sizes_leaves_it_declined():
    source = HANDED.replace("i, j, device = *dots.shape[-2:], dots.device",
                            "i, j, device = *dots.shape[-2:], dots.device\n        self.last = dots.detach()")
    assert source != HANDED
    result = fix_text(source, "attention.py", RULES)
    # mend49: a term that reads the scores' values is no mask; the path without it is attention,
    # the patch keeps the term's path as written (unverified numerically here: see RESULTS mend49)
    assert "self.last = dots.detach()" in result.text


SIZES_AND_STORES = HANDED.replace(
    "i, j, device = *dots.shape[-2:], dots.device",
    "i, j, device = *dots.shape[-2:], dots.device\n        self.last = dots.detach()")


@pytest.mark.parametrize("handed", [True, False])
def test_a_module_storing_the_scores_keeps_its_path_and_matches(handed):
    # mend50: the guarded patch, both ways of ``if pos_emb is not None``: the module's path runs
    # the original code (no fused call) and stores the same scores; float64, eval and training
    fixed = sdpa_fixed(SIZES_AND_STORES)
    original, patched = load(SIZES_AND_STORES, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["Attention"](8, 2).to(F64)
    b = patched["Attention"](8, 2).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    bias_a = original["DistanceBias"](2).to(F64)
    bias_b = patched["DistanceBias"](2).to(F64)
    bias_b.load_state_dict(bias_a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        kwargs_a = {"pos_emb": bias_a} if handed else {}
        kwargs_b = {"pos_emb": bias_b} if handed else {}
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_a, out_b = a(xa, **kwargs_a), b(xb, **kwargs_b)
        torch.testing.assert_close(out_b, out_a)
        weight = torch.randn_like(out_a)
        (weight * out_a).sum().backward()
        (weight * out_b).sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)
        for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad)
        if handed:
            torch.testing.assert_close(bias_b.last, bias_a.last)
            torch.testing.assert_close(bias_b.table.weight.grad, bias_a.table.weight.grad)
            bias_a.zero_grad(), bias_b.zero_grad()
        a.zero_grad(), b.zero_grad()
        assert counter.calls - before == (0 if handed else 1)
