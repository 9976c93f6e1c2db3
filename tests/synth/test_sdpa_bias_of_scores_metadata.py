"""ADP010 where the attention reads of its scores only what they are -- device, dtype, sizes --
not their values (issue 12, session 18):

- an added bias cast to the scores' device and dtype (``bias(t).to(device=scores.device,
  dtype=scores.dtype)``, the proximal bias of Glow-TTS-style text encoders): computed before the
  fused call from q, whose dtype the scores still have when only a number scaled them;
- a bias module handed the scores whose ``forward`` reads only their shape and device (an ALiBi
  bias: ``h, i, j, device = *sim.shape[-3:], sim.device``): handed a stand-in of the scores'
  shape, device and dtype instead, under the same ``if`` as the causal fill beside it (two mask
  parts under one test are one condition); a forward hook on the module sends the call to the
  original;
- probabilities cast back to the scores' dtype after a scale by a 0-d tensor made from a number
  (``attn / torch.sqrt(torch.tensor(q.shape[-1]))``): a 0-d tensor does not widen the scores;
- a finite fill whose mask is reshaped in the attention only by adding size-1 axes before its
  last (``rearrange(mask, "b s -> b () () () s")`` under ``if mask.ndim == 2``): the rows it
  fills entirely, which the training guard tests before the region, are the same.

The modules are written for this test.  Each is fixed with ADP010 alone and run beside the
original in float64 (eval and training, dropout 0, forward and backward), counting the fused
calls; the near-misses (a bias that reads the scores' values, a module that does, a cast after a
tensor scale, a mask reshape that moves its last axis) stay declined.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("einops")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64


def _declined(source: str) -> str:
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied, result.text
    assert result.skipped, "the attention was not found"
    return result.skipped[0][1]


def _modes(a, b, inputs, counter, calls=1, **kwargs):
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, inputs, **kwargs)
        assert counter.calls - before == calls


# --------------------------------------------------------------- a bias cast to the scores' dtype
PROXIMAL = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class ProximalAttention(nn.Module):
        def __init__(self, channels=8, heads=2, proximal=True, p=0.0):
            super().__init__()
            self.heads, self.head_dim = heads, channels // heads
            self.proximal = proximal
            self.q = nn.Conv1d(channels, channels, 1)
            self.kv = nn.Conv1d(channels, 2 * channels, 1)
            self.drop = nn.Dropout(p)

        def forward(self, x, c, mask=None):
            b, ch, t = x.shape
            q = self.q(x).view(b, self.heads, self.head_dim, t).transpose(2, 3)
            k, v = self.kv(c).view(b, 2, self.heads, self.head_dim, -1).transpose(3, 4).unbind(1)
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            if self.proximal:
                scores = scores + self.nearness(t).to(device=scores.device, dtype=scores.dtype)
            if mask is not None:
                scores = scores.masked_fill(mask == 0, -1e4)
            probs = self.drop(torch.softmax(scores, dim=-1))
            out = torch.matmul(probs, v)
            return out.transpose(2, 3).reshape(b, ch, t)

        @staticmethod
        def nearness(length):
            r = torch.arange(length, dtype=torch.float32)
            return -torch.log1p((r[None, :] - r[:, None]).abs())[None, None]
''')


def test_a_bias_cast_to_the_scores_device_and_dtype_reads_them_off_q():
    fixed = sdpa_fixed(PROXIMAL)
    assert "self.nearness(t).to(device=q.device, dtype=q.dtype)" in fixed
    assert "scores.dtype" not in fixed.split("else:")[-1]


@pytest.mark.parametrize("proximal", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_the_proximal_bias_matches_the_original(proximal, masked):
    _assert_proximal_matches(PROXIMAL, proximal, masked, calls=1)


def _assert_proximal_matches(source, proximal, masked, calls):
    """``source``'s ProximalAttention and its patch agree in float64, eval and training, with
    and without a padding mask, the patch making ``calls`` fused calls per step."""
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["ProximalAttention"](proximal=proximal).to(F64)
    b = new["ProximalAttention"](proximal=proximal).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 8, 5, dtype=F64)
    kwargs = {}
    if masked:
        mask = torch.ones(2, 1, 1, 5, dtype=torch.long)
        mask[0, ..., 3:] = 0
        kwargs["mask"] = mask
    _modes(a, b, [x, x.clone()], counter, calls=calls, **kwargs)


def test_the_proximal_bias_keeps_a_half_precision_dtype():
    # bfloat16 scores: the bias is cast to bfloat16 on both paths (q's dtype is the scores')
    original, new = load(PROXIMAL, "orig"), load(sdpa_fixed(PROXIMAL), "new")
    torch.manual_seed(0)
    a = original["ProximalAttention"]().to(torch.bfloat16).eval()
    b = new["ProximalAttention"]().to(torch.bfloat16).eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 8, 5, dtype=torch.bfloat16)
    out_a, out_b = a(x, x), b(x, x)
    assert out_b.dtype == out_a.dtype == torch.bfloat16
    # bfloat16's tolerance over 5 keys and 4 channels
    torch.testing.assert_close(out_b, out_a, rtol=1.6e-2, atol=1.6e-2)


PROXIMAL_STD = PROXIMAL.replace(
    ".to(device=scores.device, dtype=scores.dtype)",
    ".to(device=scores.device, dtype=scores.dtype) * scores.detach().std()")


def test_a_bias_that_reads_the_scores_values_stays_declined():
    source = PROXIMAL_STD
    assert "scores.detach().std()" in source
    # mend49: a term that reads the scores' values is no mask; the path without it is attention,
    # the patch keeps the term's path as written (checked numerically in the next test)
    fixed = fix_text(source, "model.py", RULES).text
    assert "* scores.detach().std()" in fixed and "scaled_dot_product_attention(" in fixed


@pytest.mark.parametrize("proximal", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_a_bias_reading_the_scores_values_keeps_its_path_and_matches(proximal, masked):
    # mend50: the guarded patch, both ways of ``if self.proximal``: the term's path runs the
    # original code (no fused call), the other the fused call; float64, eval and training
    _assert_proximal_matches(PROXIMAL_STD, proximal, masked, calls=0 if proximal else 1)


def test_a_bias_cast_to_scores_a_tensor_scaled_stays_declined():
    # a learned temperature (a float32 parameter) may widen bfloat16 scores: their dtype is not q's
    source = PROXIMAL.replace(
        "self.drop = nn.Dropout(p)",
        "self.drop = nn.Dropout(p)\n        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))")
    source = source.replace("/ math.sqrt(self.head_dim)", "* self.temperature")
    assert source.count("self.temperature") == 2
    assert "computed by the attention" in _declined(source)


# --------------------------------------------------------------- a bias module reading the shape
ALIBI = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class SlopeBias(nn.Module):
        def __init__(self, heads):
            super().__init__()
            slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])
            self.register_buffer("slopes", slopes.view(heads, 1, 1), persistent=False)

        def forward(self, sim):
            h, i, j, device = *sim.shape[-3:], sim.device
            rows = torch.arange(j - i, j, device=device)
            cols = torch.arange(j, device=device)
            return -(cols[None, :] - rows[:, None]).abs() * self.slopes[:h]


    class CausalSlopeAttention(nn.Module):
        def __init__(self, dim=8, heads=2, causal=True):
            super().__init__()
            self.heads, self.causal = heads, causal
            self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
            if causal:
                self.pos_bias = SlopeBias(heads)
            self.drop = nn.Dropout(0.0)

        def forward(self, x, bias=None):
            b, n, d = x.shape
            q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            sim = torch.einsum("b h i d, b h j d -> b h i j", q, k) * (q.shape[-1] ** -0.5)
            i, j = sim.shape[-2:]
            if bias is not None:
                sim = sim + bias
            if self.causal:
                sim = sim + self.pos_bias(sim)
                causal_mask = torch.ones((i, j), device=x.device, dtype=torch.bool).triu(j - i + 1)
                sim = sim.masked_fill(causal_mask, -torch.finfo(sim.dtype).max)
            attn = self.drop(sim.softmax(dim=-1))
            out = torch.einsum("b h i j, b h j d -> b h i d", attn, v)
            return out.transpose(1, 2).reshape(b, n, d)
''')


def test_a_bias_module_that_reads_only_the_shape_gets_a_stand_in():
    fixed = sdpa_fixed(ALIBI)
    assert "self.pos_bias(q.new_empty(()).expand(" in fixed.replace("\n", "").replace(" ", "")
    fast = fixed.split("else:")[-1]
    assert "sim" not in fast.replace("simple", "")  # the fused path computes no scores


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("with_bias", [False, True])
def test_the_shape_only_bias_module_matches_the_original(causal, with_bias):
    original, new = load(ALIBI, "orig"), load(sdpa_fixed(ALIBI), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["CausalSlopeAttention"](causal=causal).to(F64)
    b = new["CausalSlopeAttention"](causal=causal).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {"bias": torch.randn(2, 2, 5, 5, dtype=F64)} if with_bias else {}
    _modes(a, b, [x], counter, **kwargs)


def test_a_hook_on_the_bias_module_takes_the_original():
    original, new = load(ALIBI, "orig"), load(sdpa_fixed(ALIBI), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["CausalSlopeAttention"]().to(F64)
    b = new["CausalSlopeAttention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    seen = []
    for module in (a, b):
        module.pos_bias.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach().clone()))
    x = torch.randn(2, 5, 8, dtype=F64)
    _modes(a, b, [x], counter, calls=0)
    torch.testing.assert_close(seen[1], seen[0])  # the hook saw the scores on both


@pytest.mark.parametrize("body, why", [
    # reads the scores' values
    (("h, i, j, device = *sim.shape[-3:], sim.device\n"
      "        rows = torch.arange(j - i, j, device=device) + sim.detach().mean()"), "values"),
    # hands them on
    (("h, i, j, device = *sim.shape[-3:], sim.device\n"
      "        rows = torch.arange(j - i, j, device=device) + torch.zeros_like(sim).sum()"), "handed"),
])
def test_a_bias_module_that_reads_more_than_the_shape_stays_declined(body, why):
    source = ALIBI.replace(
        "h, i, j, device = *sim.shape[-3:], sim.device\n        rows = torch.arange(j - i, j, device=device)",
        body)
    assert source != ALIBI, why
    # mend49: a term that reads the scores' values is no mask; the path without it is attention,
    # the patch keeps the term's path as written (unverified numerically here: see RESULTS mend49)
    result = fix_text(source, "model.py", RULES)
    assert result.text == source or all(line in result.text for line in body.split("\n")), why


@pytest.mark.parametrize("body", [
    ("h, i, j, device = *sim.shape[-3:], sim.device\n"
     "        rows = torch.arange(j - i, j, device=device) + sim.detach().mean()"),
    ("h, i, j, device = *sim.shape[-3:], sim.device\n"
     "        rows = torch.arange(j - i, j, device=device) + torch.zeros_like(sim).sum()"),
])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("with_bias", [False, True])
def test_a_bias_module_reading_more_than_the_shape_keeps_its_path_and_matches(body, causal, with_bias):
    # mend50: the guarded patch, both ways of ``if self.causal`` (the module's path runs the
    # original code, no fused call); float64, eval and training, forward and backward
    source = ALIBI.replace(
        "h, i, j, device = *sim.shape[-3:], sim.device\n        rows = torch.arange(j - i, j, device=device)",
        body)
    assert source != ALIBI
    original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["CausalSlopeAttention"](causal=causal).to(F64)
    b = new["CausalSlopeAttention"](causal=causal).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {"bias": torch.randn(2, 2, 5, 5, dtype=F64)} if with_bias else {}
    _modes(a, b, [x], counter, calls=0 if causal else 1, **kwargs)


def test_a_bias_module_after_a_tensor_scale_stays_declined():
    # a learned per-head temperature folded into q may broadcast the scores beyond q's own axes
    source = ALIBI.replace("self.drop = nn.Dropout(0.0)",
                           "self.drop = nn.Dropout(0.0)\n        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))")
    source = source.replace("* (q.shape[-1] ** -0.5)", "* self.temperature")
    assert source.count("self.temperature") == 2
    assert "computed by the attention" in _declined(source)


def test_a_bias_module_defining_call_stays_declined():
    # (mend52: a module whose call the flow does not follow, handed the scores, may compute the
    # term from them: that path is no site any more, rather than a site the fixer declines)
    source = ALIBI.replace("    def forward(self, sim):\n        h, i",
                           "    def __call__(self, sim):\n        return self.forward(sim)\n\n"
                           "    def forward(self, sim):\n        h, i", 1)
    assert "__call__" in source
    # the site now is the path ``if self.causal`` turns off; the fix sends the causal path (the
    # module's call) to the original: float64, both settings, eval and training
    for causal in (True, False):
        original, new = load(source, "orig"), load(sdpa_fixed(source), "new")
        counter = Counter(new)
        torch.manual_seed(0)
        a = original["CausalSlopeAttention"](causal=causal).to(F64)
        b = new["CausalSlopeAttention"](causal=causal).to(F64)
        b.load_state_dict(a.state_dict(), strict=True)
        _modes(a, b, [torch.randn(2, 5, 8, dtype=F64)], counter, calls=0 if causal else 1)


# --------------------------------------------------------------- a cast after a 0-d tensor scale
ZERO_D = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    def attend(q, k, v, attention_mask=None):
        attn = torch.matmul(q, k.transpose(-1, -2))
        attn = attn / torch.sqrt(torch.tensor(q.shape[-1]))
        if attention_mask is not None:
            attn = attn.masked_fill(attention_mask == 0, float("-inf"))
        attn_float = F.softmax(attn, dim=-1)
        attn = attn_float.type_as(attn)
        return torch.matmul(attn, v)


    class TensorScaledAttention(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x, mask=None):
            b, n, d = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            return attend(q, k, v, mask).transpose(1, 2).reshape(b, n, d)
''')


def test_a_cast_back_after_a_zero_d_tensor_scale_is_fixed():
    fixed = sdpa_fixed(ZERO_D)
    assert "torch.sqrt(torch.tensor(q.shape[-1]))" in fixed.split("scaled_dot_product_attention(")[-1]


@pytest.mark.parametrize("masked", [False, True])
def test_the_zero_d_scale_matches_the_original(masked):
    original, new = load(ZERO_D, "orig"), load(sdpa_fixed(ZERO_D), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["TensorScaledAttention"]().to(F64)
    b = new["TensorScaledAttention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    kwargs = {}
    if masked:
        mask = torch.ones(2, 1, 1, 5, dtype=torch.long)
        mask[1, ..., 2:] = 0
        kwargs["mask"] = mask
    _modes(a, b, [x], counter, **kwargs)


def test_the_zero_d_scale_keeps_bfloat16():
    original, new = load(ZERO_D, "orig"), load(sdpa_fixed(ZERO_D), "new")
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 4, dtype=torch.bfloat16) for _ in range(3))
    out_a, out_b = original["attend"](q, k, v), new["attend"](q, k, v)
    assert out_a.dtype == out_b.dtype == torch.bfloat16
    torch.testing.assert_close(out_b, out_a, rtol=1.6e-2, atol=1.6e-2)


@pytest.mark.parametrize("scale", ["torch.full((1,), q.shape[-1] ** 0.5)", "torch.tensor([float(q.shape[-1])]).sqrt()"])
def test_a_cast_back_after_a_tensor_scale_stays_declined(scale):
    # a one-element 1-d tensor takes part in type promotion (float32 widens bfloat16 scores)
    source = ZERO_D.replace("torch.sqrt(torch.tensor(q.shape[-1]))", scale)
    assert scale in source
    reason = _declined(source)
    assert "cast to the dtype of the scores" in reason or "differs between keys" in reason


# --------------------------------------------------------------- a fill mask reshaped in the attention
GROUPED = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn
    from einops import rearrange


    def grouped_attention(query, key, value, mask=None, is_causal=False):
        bq, hq, nq, dq = query.shape
        nk = key.shape[-2]
        query = query / dq ** 0.5
        query = rearrange(query, "b (h g) n d -> b g h n d", g=hq // key.shape[1])
        similarity = torch.einsum("bghnd,bhsd->bghns", query, key)
        if is_causal:
            mask = torch.ones((bq, nq, nk), device=query.device, dtype=torch.bool).tril_()
        if mask is not None:
            if mask.ndim == 2:
                mask = rearrange(mask, "b s -> b () () () s")
            elif mask.ndim == 3:
                mask = rearrange(mask, "b n s -> b () () n s")
            similarity.masked_fill_(~mask, torch.finfo(similarity.dtype).min)
        attention = F.softmax(similarity, dim=-1)
        out = torch.einsum("bghns,bhsd->bghnd", attention, value)
        return rearrange(out, "b g h n d -> b (h g) n d")


    class GroupedAttention(nn.Module):
        def __init__(self, dim=16, heads=4, kv_heads=2):
            super().__init__()
            self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(dim, 2 * kv_heads * self.head_dim)

        def forward(self, x, mask=None, is_causal=False):
            b, n, _ = x.shape
            q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
            k, v = self.kv(x).view(b, n, 2, self.kv_heads, -1).permute(2, 0, 3, 1, 4)
            out = grouped_attention(q, k, v, mask=mask, is_causal=is_causal)
            return out.transpose(1, 2).reshape(b, n, -1)
''')


def test_the_rows_guard_reads_the_mask_through_its_unit_axes():
    fixed = sdpa_fixed(GROUPED)
    guard = fixed.split("similarity = ")[0]
    assert ".all(-1).any()" in guard and "rearrange(mask" not in guard


@pytest.mark.parametrize("kind", ["none", "causal", "keys", "rows", "keys blind", "rows blind"])
def test_the_reshaped_fill_mask_matches_the_original(kind):
    original, new = load(GROUPED, "orig"), load(sdpa_fixed(GROUPED), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["GroupedAttention"]().to(F64)
    b = new["GroupedAttention"]().to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 16, dtype=F64)
    kwargs = {"is_causal": kind == "causal"}
    if kind.startswith("keys"):
        mask = torch.ones(2, 5, dtype=torch.bool)
        mask[1, 3:] = False
        if kind.endswith("blind"):
            mask[0] = False  # every key hidden: the training step goes to the original
        kwargs["mask"] = mask
    elif kind.startswith("rows"):
        mask = torch.ones(2, 5, 5, dtype=torch.bool).tril()
        if kind.endswith("blind"):
            mask[1, 2] = False  # one query sees no key
        kwargs["mask"] = mask
    blind = kind.endswith("blind")
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        if blind and not training:
            # no gradients wanted: the row differs (uniform vs the row's own scores) where the fill
            # does not swamp them; compare the rows that see a key
            with torch.no_grad():
                out_a, out_b = a(x, **kwargs), b(x, **kwargs)
            seen = kwargs["mask"].reshape(2, -1, 5).any(-1)
            seen = seen if seen.shape[1] == 5 else seen.expand(2, 5)
            torch.testing.assert_close(out_b[seen], out_a[seen])
            assert counter.calls - before == 1
            continue
        assert_same_step(a, b, [x], **kwargs)
        assert counter.calls - before == (0 if blind and training else 1)


def test_a_mask_reshape_that_moves_its_last_axis_stays_declined():
    source = GROUPED.replace('mask = rearrange(mask, "b n s -> b () () n s")',
                             'mask = rearrange(mask, "b n s -> b () () s n")')
    assert source != GROUPED
    assert "cannot be checked" in _declined(source)
