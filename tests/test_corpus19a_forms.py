"""Forms from blind batch corpus19a (transformers 4.45.2 files: graphormer's fairseq-style
attention, NAT's optional natten kernels): our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import rules

# ---------- ADP010: a bias added in place (reshaped on the way), probabilities cast back to the scores

IN_PLACE_BIAS = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class GraphAttention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.drop = nn.Dropout(0.0)

        def forward(self, x, bias=None):
            b, n, d = x.shape
            h = self.heads
            q = (self.to_q(x) * self.scale).view(b, n, h, -1).transpose(1, 2).reshape(b * h, n, -1)
            k = self.to_k(x).view(b, n, h, -1).transpose(1, 2).reshape(b * h, n, -1)
            v = self.to_v(x).view(b, n, h, -1).transpose(1, 2).reshape(b * h, n, -1)
            scores = torch.bmm(q, k.transpose(1, 2))
            if bias is not None:
                scores += bias.view(b * h, n, n)
            probs32 = torch.softmax(scores, dim=-1)
            scores = probs32.type_as(scores)
            scores = self.drop(scores)
            out = torch.bmm(scores, v)
            return out.view(b, h, n, -1).transpose(1, 2).reshape(b, n, d)
""")

# the bias is a computed value (a layer of x), not a tensor read whole: its dtype cannot be
# checked before the attention, so the cast back to the scores' dtype stays declined
COMPUTED_BIAS = IN_PLACE_BIAS.replace(
    "        self.drop = nn.Dropout(0.0)\n",
    "        self.drop = nn.Dropout(0.0)\n        self.to_bias = nn.Linear(dim, heads)\n",
).replace(
    "scores += bias.view(b * h, n, n)",
    "scores += torch.log(self.to_bias(x)).transpose(1, 2).reshape(b * h, n, 1)",
)


def _pair(text, fixed):
    import torch

    before, after = {}, {}
    exec(compile(text, "before.py", "exec"), before)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "after.py", "exec"), after)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    original = before["GraphAttention"](16, 4).double().eval()
    patched = after["GraphAttention"](16, 4).double().eval()
    patched.load_state_dict(original.state_dict(), strict=True)
    return original, patched


def test_a_bias_added_in_place_through_a_view_is_fixed_and_computes_the_same():
    import torch

    from adopter.synth import fix_text

    result = fix_text(IN_PLACE_BIAS, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention" in result.text, result.skipped
    original, patched = _pair(IN_PLACE_BIAS, result.text)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    bias = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        # float64 softmax over 5 keys of 4-wide heads: rounding only
        torch.testing.assert_close(
            patched(x, bias), original(x, bias), rtol=1e-12, atol=1e-12
        )
        torch.testing.assert_close(patched(x), original(x), rtol=1e-12, atol=1e-12)


def test_a_bias_of_another_dtype_takes_the_original_path():
    """``scores += bias`` rounds a bias of another dtype into the scores' own; the fused call
    would see it unrounded (or refuse it): the guard sends that case to the original code."""
    import torch

    from adopter.synth import fix_text

    result = fix_text(IN_PLACE_BIAS, "model.py", rules("ADP010"))
    assert 'getattr(bias, "dtype", q.dtype) != q.dtype' in result.text
    original, patched = _pair(IN_PLACE_BIAS, result.text)
    torch.manual_seed(2)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    bias = torch.randn(2, 4, 5, 5, dtype=torch.float32)
    with torch.no_grad():
        got, expected = patched(x, bias), original(x, bias)
    assert got.dtype == expected.dtype == torch.float64
    assert torch.equal(got, expected)  # the same code ran


def test_a_computed_bias_leaves_the_cast_declined_with_the_reason():
    from adopter.synth import fix_text

    assert "self.to_bias(x)" in COMPUTED_BIAS

    result = fix_text(COMPUTED_BIAS, "model.py", rules("ADP010"))
    assert result.text == COMPUTED_BIAS
    assert any(
        "cast to the dtype of the scores" in reason for _, reason in result.skipped
    ), result.skipped


# ------------- verify: model code that raises a BaseException (transformers' optional kernels)

OPTIONAL_KERNEL = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class KernelMissing(BaseException):
        pass


    def windowed_scores(q, k):
        raise KernelMissing()


    class NeedsKernel(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.proj = nn.Linear(dim, dim)
            self.act = nn.GELU()
            self.out = nn.Linear(dim, dim)

        def forward(self, x):
            x = self.act(self.proj(x))
            return self.out(windowed_scores(x, x))


    class Plain(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.proj = nn.Linear(dim, dim)
            self.act = nn.GELU()

        def forward(self, x):
            return self.act(self.proj(x))
""")


def test_a_base_exception_from_model_code_is_a_skip_for_its_class_not_the_end_of_verify(
    tmp_path,
):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for
    from adopter.verify.result import PASS, SKIP

    path = tmp_path / "optional_kernel.py"
    path.write_text(OPTIONAL_KERNEL)
    results = verify_file(
        str(path),
        rules("ADP006"),
        Config(),
        benchmark=False,
        options=options_for(Config(), benchmark=False),
    )
    by_class = {r.class_name: r for r in results if not r.combined}
    assert by_class["Plain"].verdict == PASS, by_class["Plain"]
    assert by_class["NeedsKernel"].verdict == SKIP
    assert "KernelMissing" in by_class["NeedsKernel"].reason


def test_an_interrupt_from_model_code_still_stops_the_run():
    import pytest

    from adopter.verify.parallel import ModelCodeError, as_exception

    def interrupted():
        raise KeyboardInterrupt

    def missing():
        raise GeneratorExit

    with pytest.raises(KeyboardInterrupt):
        as_exception(interrupted)
    with pytest.raises(GeneratorExit):
        as_exception(missing)

    class Other(BaseException):
        pass

    def other():
        raise Other("no kernel")

    with pytest.raises(ModelCodeError, match="Other: no kernel"):
        as_exception(other)


# ------ ADP010: a mask name cleared to None on the way (fairseq's 0-d placeholder) before its if

CLEARED_MASK = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class SeqAttention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.scaling = (dim // heads) ** -0.5
            self.q_proj = nn.Linear(dim, dim)
            self.k_proj = nn.Linear(dim, dim)
            self.v_proj = nn.Linear(dim, dim)

        def forward(self, x, pad=None):
            b, n, d = x.shape
            h = self.heads
            q = (self.q_proj(x) * self.scaling).view(b, n, h, -1).transpose(1, 2).reshape(b * h, n, -1)
            k = self.k_proj(x).view(b, n, h, -1).transpose(1, 2).reshape(b * h, n, -1)
            v = self.v_proj(x).view(b, n, h, -1).transpose(1, 2).reshape(b * h, n, -1)
            w = torch.bmm(q, k.transpose(1, 2))
            if pad is not None and pad.dim() == 0:
                pad = None
            if pad is not None:
                w = w.view(b, h, n, n)
                w = w.masked_fill(pad[:, None, None, :], torch.finfo(w.dtype).min)
                w = w.view(b * h, n, n)
            w = torch.softmax(w, dim=-1)
            out = torch.bmm(w, v)
            return out.view(b, h, n, -1).transpose(1, 2).reshape(b, n, d)
""")

# the name is given another value on the way (not only cleared): testing it before the
# attention would read the wrong value
REBOUND_MASK = CLEARED_MASK.replace(
    "        if pad is not None and pad.dim() == 0:\n            pad = None\n",
    "        if pad is not None and pad.dim() == 1:\n            pad = pad[None, :].expand(b, n)\n",
)


def _seq_pair(text, fixed):
    import torch

    before, after = {}, {}
    exec(compile(text, "before.py", "exec"), before)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "after.py", "exec"), after)  # noqa: S102 (our own fixture)
    torch.manual_seed(0)
    original = before["SeqAttention"](16, 4).double().eval()
    patched = after["SeqAttention"](16, 4).double().eval()
    patched.load_state_dict(original.state_dict(), strict=True)
    return original, patched


def test_a_mask_only_cleared_to_none_before_its_if_is_tested_before_the_attention():
    import torch

    from adopter.synth import fix_text

    assert "pad = None" in CLEARED_MASK
    result = fix_text(CLEARED_MASK, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention" in result.text, result.skipped
    original, patched = _seq_pair(CLEARED_MASK, result.text)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    pad = torch.zeros(2, 5, dtype=torch.bool)
    pad[1, 3:] = True
    with torch.no_grad():
        # float64 softmax over 5 keys: rounding only
        for mask in (None, torch.tensor(0), pad):
            torch.testing.assert_close(
                patched(x, mask), original(x, mask), rtol=1e-12, atol=1e-12
            )


def test_a_mask_given_another_value_before_its_if_is_fixed_exactly():
    """The mask's re-binding (``pad = pad[None, :].expand(b, n)`` under its own if) was once
    declined as assigned after the attention began; the planner now carries that if into
    both branches of the guard (session 36), and the patch must equal the original for every
    mask the if can see: none, 1-D, 2-D, a fully hidden row, with and without grad."""
    import torch

    from adopter.synth import fix_text

    assert "pad = pad[None, :].expand(b, n)" in REBOUND_MASK
    result = fix_text(REBOUND_MASK, "model.py", rules("ADP010"))
    assert "scaled_dot_product_attention" in result.text, result.skipped
    assert result.text.count("pad = pad[None, :].expand(b, n)") == 2
    original, patched = _seq_pair(REBOUND_MASK, result.text)
    torch.manual_seed(1)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    two = torch.zeros(2, 5, dtype=torch.bool)
    two[1, 3:] = True
    one = torch.zeros(5, dtype=torch.bool)
    one[3:] = True
    hidden = torch.zeros(2, 5, dtype=torch.bool)
    hidden[1, :] = True
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            # float64 softmax over 5 keys: rounding only
            for mask in (None, two, one, hidden):
                torch.testing.assert_close(
                    patched(x, mask), original(x, mask), rtol=1e-12, atol=1e-12
                )
