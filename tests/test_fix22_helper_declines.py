"""fix22 (session 21, second round): an attention whose steps are spread over a caller and
helpers in another way than one added bias (a module-level helper taking the scores, the
dropout rate and the training flag to the probabilities; products in TorchScript functions)
stays declined, and the decline says which steps run in which function and what a helper
also changes in place (``x += extra`` under an if: steps the match does not hold, which a
fused call in the caller would have to take over from the helper's arguments)."""

from __future__ import annotations

import textwrap

from corpus_forms import line_of, rules

from adopter.synth import fix_text

HEAD = textwrap.dedent("""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
""")

PROBS_HELPER = textwrap.dedent("""
    def probs_of(x, rate, training=True, extra=None):
        x = x.contiguous()
        if extra is not None:
            x -= extra
        return F.dropout(F.softmax(x, dim=-1), p=rate, training=training)
""")

PLAIN_HELPER = textwrap.dedent("""
    def probs_of(x, rate, training=True):
        print(x.shape)
        return F.dropout(F.softmax(x, dim=-1), p=rate, training=training)
""")

CALLER = textwrap.dedent("""
    class Mixer(nn.Module):
        def __init__(self, dim, heads=2, rate=0.1):
            super().__init__()
            self.heads = heads
            self.rate = rate
            self.qkv = nn.Linear(dim, dim * 3)
            self.scale = (dim // heads) ** -0.5

        def forward(self, x, bias=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            q = q * self.scale
            s = torch.matmul(q, k.transpose(-1, -2))
            a = probs_of(s, self.rate, self.training, CALL_EXTRA)
            o = torch.matmul(a, v)
            return o.transpose(1, 2).reshape(b, n, -1)
""")


def _declines(code: str) -> list[str]:
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None
    assert fixed.text == code  # nothing rewritten
    return [why for _, why in fixed.skipped]


def test_helper_adding_in_place_says_what_it_changes():
    # (fix23: a helper *adding* its tensors in place, `x += extra`, is rewritten now --
    # tests/test_fix23_probs_helper.py; one subtracting them is no mask and stays declined)
    code = HEAD + PROBS_HELPER + CALLER.replace("CALL_EXTRA", "extra=bias")
    (why,) = _declines(code)
    assert why.startswith("the match spans helpers inlined into their caller: ")
    assert "the scores' product and the context product in `forward`" in why
    assert "the softmax and the dropout in `probs_of` (line 6)" in why
    assert "changes a tensor in place at line 9 (`x -= extra`), no step of the match" in why
    assert why.endswith("; rewrite it by hand")


def test_helper_with_only_the_steps_names_them_and_nothing_else():
    # near-miss of the above: no in-place change in the helper, none reported; the caller's
    # own statements (its scale) are not the helper's (fix23: the helper also prints, which
    # keeps it declined -- without that statement it is rewritten now)
    code = HEAD + PLAIN_HELPER + CALLER.replace(", CALL_EXTRA", "").replace("q = q * self.scale", "q *= self.scale")
    (why,) = _declines(code)
    assert "the softmax and the dropout in `probs_of` (line 6)" in why
    assert "in place" not in why


SCRIPTED = textwrap.dedent("""
    @torch.jit.script
    def scores_of(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.bmm(q, k.transpose(1, 2))


    @torch.jit.script
    def mix_values(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, v)


    class Cell(nn.Module):
        def __init__(self, rate: float = 0.1):
            super().__init__()
            self.drop = nn.Dropout(rate)

        def forward(self, q, k, v):
            s = scores_of(q, k)
            a = F.softmax(s, dim=-1)
            a = self.drop(a)
            return mix_values(a, v)
""")


def test_products_in_torchscript_functions_are_said_to_be():
    (why,) = _declines(HEAD + SCRIPTED)
    assert "the scores' product in `scores_of` (line 7, a TorchScript function)" in why
    assert "the softmax and the dropout in `forward`" in why
    assert "the context product in `mix_values` (line 12, a TorchScript function)" in why


# ---------------------------------------------------------------------------------------------
# `del q, k` between the steps (memory freed early; unimol-tools' Attention after its helper,
# latent-diffusion's CrossAttention) and `del attn, v` after the context product: a `del` of
# names the attention only reads runs after the fused call; the probabilities a later `del`
# unbinds are bound to None on the fused path (which never computes them).

DEL_FORM = textwrap.dedent("""
    class Mixer(nn.Module):
        def __init__(self, dim, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.out = nn.Linear(dim, dim)
            self.scale = (dim // heads) ** -0.5

        def forward(self, x, mask=None):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            s = torch.matmul(q, k.transpose(-1, -2)) * self.scale
            del q, k
            if mask is not None:
                s = s + mask
            a = s.softmax(dim=-1)
            o = torch.matmul(a, v)
            del a, v
            return self.out(o.transpose(1, 2).reshape(b, n, -1))
""")


def _fixed(code: str) -> str:
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and [f.rule for f in fixed.applied] == ["ADP010"], fixed.skipped
    return fixed.text


def _same(code: str, patched: str, cls: str, make, inputs, dtype=None) -> None:
    """Outputs and every gradient of the original and patched classes, eval and train, in
    float64 (reordered sums of a few terms: rounding far below assert_close's float64 rtol)."""
    import torch

    ns_a: dict = {}
    ns_b: dict = {}
    exec(compile(code, "original", "exec"), ns_a)
    exec(compile(patched, "patched", "exec"), ns_b)
    torch.manual_seed(0)
    dtype = dtype or torch.float64
    a, b = make(ns_a[cls]).to(dtype), make(ns_b[cls]).to(dtype)
    b.load_state_dict(a.state_dict())
    for training in (False, True):
        a.train(training)
        b.train(training)
        args_a = [t.clone().requires_grad_(t.is_floating_point()) if t is not None else None for t in inputs]
        args_b = [t.clone().requires_grad_(t.is_floating_point()) if t is not None else None for t in inputs]
        out_a, out_b = a(*args_a), b(*args_b)
        torch.testing.assert_close(out_b, out_a)
        weight = torch.randn_like(out_a)
        (weight * out_a).sum().backward()
        (weight * out_b).sum().backward()
        for ta, tb in zip(args_a, args_b):
            if ta is not None and ta.grad is not None:
                torch.testing.assert_close(tb.grad, ta.grad)
        for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad)
        a.zero_grad()
        b.zero_grad()


def test_del_of_inputs_between_steps_runs_after_the_fused_call():
    import torch

    code = HEAD + DEL_FORM
    patched = _fixed(code)
    assert "scaled_dot_product_attention(" in patched
    body = patched[patched.index("scaled_dot_product_attention("):]
    assert body.index("del q, k") < body.index("del a, v")  # after the call, before the later del
    assert "a = None" in patched  # the later `del a, v` unbinds the probabilities on both paths
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    for m in (None, mask):
        _same(code, patched, "Mixer", lambda c: c(8), [x, m])


def test_del_of_a_value_of_the_attention_stays_declined():
    # near-miss: the scores deleted between the steps (the fused path never binds them)
    code = HEAD + DEL_FORM.replace("        del q, k\n", "").replace(
        "a = s.softmax(dim=-1)\n", "a = s.softmax(dim=-1)\n        del s\n")
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == code
    line = line_of(code, "del s")
    assert [why for _, why in fixed.skipped] == [f"the statement at line {line} deletes `s`, a value of the attention"]


def test_del_of_a_name_assigned_again_in_the_attention_stays_declined():
    # near-miss: `k` bound again after its del, before the context product: the fused call
    # would read another key than the scores used
    code = HEAD + DEL_FORM.replace("        del q, k\n", "        del q, k\n        k = v\n")
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == code
    line = line_of(code, "del q, k")
    assert [why for _, why in fixed.skipped] == [f"line {line} deletes `k`, which the attention assigns after it"]


def test_probabilities_read_before_their_later_del_stay_declined():
    # near-miss: the probabilities read after the context product, then deleted: binding
    # them to None for the `del` must not hide the read
    code = HEAD + DEL_FORM.replace("        del a, v\n", "        self.seen = a\n        del a, v\n")
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == code
    assert any(why.startswith("`a` (computed by the attention) is stored in `self.seen`") for _, why in fixed.skipped)


# An if whose branches compute the scores two ways, one after recasting q and k (latent-
# diffusion's float32 branch, under a module-level switch): the fused path is the other branch,
# and the recast names it reads are the ones from before the if.
BRANCH_FORM = textwrap.dedent("""
    UPCAST = False


    class Mixer(nn.Module):
        def __init__(self, dim, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.scale = (dim // heads) ** -0.5

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            if UPCAST:
                with torch.autocast("cpu", enabled=False):
                    q, k = q.float(), k.float()
                    s = torch.matmul(q, k.transpose(-1, -2)) * self.scale
            else:
                s = torch.matmul(q, k.transpose(-1, -2)) * self.scale
            del q, k
            a = s.softmax(dim=-1)
            o = torch.matmul(a, v)
            return o.transpose(1, 2).reshape(b, n, -1)
""")


def test_recast_in_the_branch_sent_to_the_original_is_no_value_of_the_fused_path():
    import torch

    code = HEAD + BRANCH_FORM
    patched = _fixed(code)
    assert "scaled_dot_product_attention(" in patched and "UPCAST" in patched.split("def forward")[1]
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    _same(code, patched, "Mixer", lambda c: c(8), [x])
    # the switch on: the original path (the float32 recast) runs on both sides (in float32,
    # which the recast keeps: the same operations, so the same numbers)
    assert patched.count("UPCAST = False") == 1
    code_on, patched_on = code.replace("UPCAST = False", "UPCAST = True"), patched.replace("UPCAST = False", "UPCAST = True")
    _same(code_on, patched_on, "Mixer", lambda c: c(8), [x.float()], torch.float32)


def test_name_only_the_other_branch_assigns_read_by_the_context_stays_declined():
    # near-miss: the context statement reads `t`, which only the branch sent to the original
    # assigns and the fused branch never reads
    code = HEAD + BRANCH_FORM.replace(
        "                q, k = q.float(), k.float()\n", "                q, k = q.float(), k.float()\n                t = 2.0\n"
    ).replace("o = torch.matmul(a, v)", "o = torch.matmul(a, v) * t")
    assert "t = 2.0" in code
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == code
    assert any("also reads `t`" in why for _, why in fixed.skipped), fixed.skipped


def test_other_branch_changing_the_values_of_q_reads_them_from_before_the_if():
    # The branch sent to the original scales q (new values, not a recast): the fused branch,
    # which holds nothing but the attention's steps, reads q and k as they were before the if,
    # as the original does whenever the guard lets the fused path run (sites82: alphafold2's
    # tied-rows branch).  Was declined as a stand-in for torchvision's Swin, whose fused branch
    # assigns its scale (the near-miss below).
    import torch

    code = HEAD + BRANCH_FORM.replace("q, k = q.float(), k.float()", "q, k = q * 2.0, k.float()")
    patched = _fixed(code)
    assert "q * 2.0" in patched.split("def forward")[1]
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    _same(code, patched, "Mixer", lambda c: c(8), [x])
    code_on, patched_on = code.replace("UPCAST = False", "UPCAST = True"), patched.replace("UPCAST = False", "UPCAST = True")
    _same(code_on, patched_on, "Mixer", lambda c: c(8), [x.float()], torch.float32)


def test_other_branch_changing_q_beside_a_fused_branch_doing_more_than_steps_stays_declined():
    # near-miss (torchvision's Swin): the fused branch also assigns a name of its own (`t`,
    # read as the scale); the other branch's new q then stays a value only the original computes
    code = HEAD + BRANCH_FORM.replace("q, k = q.float(), k.float()", "q, k = q * 2.0, k.float()").replace(
        "        else:\n            s = torch.matmul(q, k.transpose(-1, -2)) * self.scale\n",
        "        else:\n            t = self.scale\n            s = torch.matmul(q, k.transpose(-1, -2)) * t\n")
    assert "t = self.scale" in code
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == code
    assert any("also reads `k`, which only the original attention computes" in why for _, why in fixed.skipped)
