"""Two forms of parti's attention (issue 12, session 19):

- a bias computed in a statement of its own inside the ``if`` that adds it (``pos_bias =
  self.rel_pos_bias(sim)`` then ``sim = sim + pos_bias``) by a module of the file whose forward
  reads only the scores' shape: on the fused path the module is handed a stand-in of the scores
  (their shape, q's dtype and device; no memory), so the bias is the original's value; a hook on
  the module sends the call to the original;
- probabilities left in float32 by an upcast softmax with no cast back (``attn =
  sim.softmax(dim=-1, dtype=torch.float32)`` then ``attn @ v``): the fused path only where q, k
  and v are float32 (the upcast is a no-op there); other dtypes go to the original, which raises
  for them (a float32 matrix times a lower- or higher-precision one) as before.

The modules are written for this test and run beside the original (float64 for the first,
float32 for the second: its fused path exists only there), eval and training with dropout 0,
forward and backward, counting the fused calls.  A bias module reading the scores' values stays
declined."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402


BIASED = textwrap.dedent('''
    import torch
    from torch import nn


    class GridBias(nn.Module):
        def __init__(self, heads, size):
            super().__init__()
            self.table = nn.Parameter(torch.randn(heads, size, size))

        def forward(self, scores):
            i, j = scores.shape[-2:]
            return self.table[:, :i, :j]


    class BiasedAttention(nn.Module):
        def __init__(self, width, heads, biased=True):
            super().__init__()
            self.scale = (width // heads) ** -0.5
            self.grid = None
            if biased:
                self.grid = GridBias(heads, 16)

        def forward(self, q, k, v, keep=None):
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
            if self.grid is not None:
                extra = self.grid(sim)
                sim = sim + extra
            if keep is not None:
                sim = sim.masked_fill(~keep, -torch.finfo(sim.dtype).max)
            attn = sim.softmax(dim=-1)
            return torch.einsum("b h i j, b h j d -> b h i d", attn, v)
''')

FLOAT32 = textwrap.dedent('''
    import torch
    from torch import nn


    class Float32Probs(nn.Module):
        def __init__(self, width, heads):
            super().__init__()
            self.scale = (width // heads) ** -0.5

        def forward(self, q, k, v):
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
            attn = sim.softmax(dim=-1, dtype=torch.float32)
            return torch.einsum("b h i j, b h j d -> b h i d", attn, v)
''')


def _qkv(dtype, queries=5, keys=7, heads=2, dim=4):
    torch.manual_seed(0)
    return [torch.randn(2, heads, n, dim, dtype=dtype) for n in (queries, keys, keys)]


def _pair(source, cls, *args, dtype=torch.float64):
    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(1)
    a = original[cls](*args).to(dtype)
    b = patched[cls](*args).to(dtype)
    b.load_state_dict(a.state_dict())
    return fixed, a, b, counter


def test_the_bias_statement_hands_its_module_a_stand_in_of_the_scores():
    fixed = sdpa_fixed(BIASED)
    fast = fixed.split("else:")[-1]
    assert "extra = self.grid(" in fast and "q.new_empty(()).expand(" in fast
    assert "attn_mask=" in fast and "sim" not in fast.split("extra = self.grid(")[1].split("scaled_dot")[0]


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_the_bias_statement_rewrite_computes_what_the_original_does(biased, masked):
    _assert_biased_matches(BIASED, biased, masked, calls=1)


def _assert_biased_matches(source, biased, masked, calls):
    """``source``'s BiasedAttention and its patch agree in float64, eval and training, with and
    without the ``keep`` mask, the patch making ``calls`` fused calls per step."""
    _, a, b, counter = _pair(source, "BiasedAttention", 8, 2, biased)
    b.load_state_dict(a.state_dict(), strict=True)
    q, k, v = _qkv(torch.float64)
    kwargs = {}
    if masked:
        keep = torch.ones(2, 1, 1, 7, dtype=torch.bool)
        keep[0, ..., 5:] = False
        kwargs["keep"] = keep
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [q, k, v], **kwargs)
        assert counter.calls - before == calls


def test_a_hook_on_the_bias_module_takes_the_original():
    _, a, b, counter = _pair(BIASED, "BiasedAttention", 8, 2)
    seen = []
    b.grid.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    assert_same_step(a, b, _qkv(torch.float64))
    assert counter.calls == 0 and seen == [(2, 2, 5, 7)]


def test_a_bias_module_reading_the_scores_values_is_declined():
    source = BIASED.replace("        return self.table[:, :i, :j]\n",
                            "        return self.table[:, :i, :j] + scores.mean()\n")
    assert source != BIASED
    # mend49: a term reading the scores' values is no mask; the path without the module (grid
    # None) is attention and the patch keeps the module's path as written.  mend50: checked in
    # float64 on both ways of ``if self.grid is not None`` (no fused call on the module's path)
    for biased in (True, False):
        for masked in (False, True):
            _assert_biased_matches(source, biased, masked, calls=0 if biased else 1)


def test_float32_probabilities_take_the_fused_path_only_in_float32():
    fixed, a, b, counter = _pair(FLOAT32, "Float32Probs", 8, 2, dtype=torch.float32)
    # (mend52: ``width`` and ``heads`` are constructor values with no default and no use as a size,
    # so the scale's number test joins the guard, before the dtype test)
    assert all(f"{t}.dtype != torch.float32" in fixed for t in "qkv")
    assert "not isinstance(self.scale, (int, float))" in fixed
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, _qkv(torch.float32))
        assert counter.calls - before == 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes_go_to_the_original_which_raises_as_before(dtype):
    _, a, b, counter = _pair(FLOAT32, "Float32Probs", 8, 2, dtype=torch.float32)
    q, k, v = _qkv(dtype)
    with pytest.raises(RuntimeError) as original:
        a(q, k, v)
    with pytest.raises(RuntimeError) as patched:
        b(q, k, v)
    assert str(patched.value) == str(original.value) and counter.calls == 0
