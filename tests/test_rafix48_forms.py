"""Research attention found but not fixed (rafix48): declines that were too cautious.  The
fixtures are ours.

- ADP010, a scale read from an element of ``x.size()`` (torch-multi-head-attention's ``dk =
  query.size()[-1]``, then ``/ math.sqrt(dk)``): an element of a ``torch.Size`` is a Python
  int, so ``math.sqrt`` of it is a number ``scale=`` takes.  Near-miss: an element of another
  call's result (a tensor) stays a tensor scale, declined.
- ADP010, a fill value the code does not spell (allennlp's ``util.min_value_of_dtype(scores.dtype)``,
  another module's function; pytorch-forecasting's ``self.mask_bias``, a constructor argument):
  the guard reads it before the attention and sends a call whose fill is not -inf or at most
  -1e4 to the original code; rows filled whole are tested in every step, as a literal fill's
  are.  Positives: a function of the dtype (here a same-file function of two statements, which
  no reading spells out), an attribute set from a constructor argument; both checked against
  the original in float64, with a small fill (the original path) and a row filled whole.
  A local bound before the attention is read as it is there.  Near-misses: a fill computed
  inside the attention from a tensor's values, a fill computed from the scores.
- ADP010, lucidrains' ``attend()`` (native-sparse-attention): ``scale = default(scale, q.shape[-1]
  ** -0.5)`` through a same-file function that returns one of its arguments as it is (a number
  when both are); ``masked_fill(~mask, mask_value // 10)`` with ``mask_value = max_neg_value(sim)``
  read at run time (float16's extreme // 10 is -6551: the guard sends it to the original); the
  scores read past ``if not return_sim: return out`` read under ``return_sim``.  Checked against
  the original in float64 (a row filled whole, a given scale, ``return_sim``) and in float16.
  Near-misses: the scores read after an ``if`` that does not return, a scale through a same-file
  function that computes (``v.mean()``).
- ADP010, a returned value holding several of the values only the original attention computes
  (rtdl's ``return x, {'attention_logits': logits, 'attention_probs': probs}``): on the fused
  path all are None, so ``None if logits is None else {...}``; a caller that discards it passes
  the flag.  Near-miss: a caller that reads it keeps the original (no caller declines).
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, float64_pair, line_of, rules

from adopter.synth import fix_text

CODE = textwrap.dedent("""\
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    def lowest(dtype):
        if dtype == torch.float16:
            return -1e4
        return torch.finfo(dtype).min


    class SizeTupleScale(nn.Module):
        def forward(self, query, key, value, mask=None):
            dk = query.size()[-1]
            scores = query.matmul(key.transpose(-2, -1)) / math.sqrt(dk)
            if mask is not None:
                scores = scores.masked_fill(mask == 0, -1e9)
            attention = F.softmax(scores, dim=-1)
            return attention.matmul(value)  # size tuple


    class IndexedTensorScale(nn.Module):
        def forward(self, query, key, value):
            dk = key.norm(dim=-1)[..., None, :]
            scores = query.matmul(key.transpose(-2, -1)) / dk
            attention = F.softmax(scores, dim=-1)
            return attention.matmul(value)  # indexed tensor


    class FillFromDtype(nn.Module):
        def forward(self, q, k, v, mask=None):
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            if mask is not None:
                scores = scores.masked_fill(~mask, lowest(scores.dtype))
            p = F.softmax(scores, dim=-1)
            return torch.matmul(p, v)  # fill from dtype


    class FillArgument(nn.Module):
        def __init__(self, mask_bias=-1e9):
            super().__init__()
            self.mask_bias = mask_bias

        def forward(self, q, k, v, mask):
            scores = torch.bmm(q, k.permute(0, 2, 1)) / math.sqrt(k.size(-1))
            scores = scores.masked_fill(mask, self.mask_bias)
            return torch.bmm(torch.softmax(scores, dim=2), v)  # fill argument


    class FillLocal(nn.Module):
        def forward(self, q, k, v, mask, bias):
            neg = bias.min() * 10
            scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(k.size(-1))
            scores = scores.masked_fill(mask, neg)
            return torch.bmm(torch.softmax(scores, dim=-1), v)  # fill local


    class FillInside(nn.Module):
        def forward(self, q, k, v, mask, bias):
            scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(k.size(-1))
            neg = bias.min() * 10
            scores = scores.masked_fill(mask, neg)
            return torch.bmm(torch.softmax(scores, dim=-1), v)  # fill inside


    class FillOfScores(nn.Module):
        def forward(self, q, k, v, mask):
            scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(k.size(-1))
            scores = scores.masked_fill(mask, scores.min() - 1e4)
            return torch.bmm(torch.softmax(scores, dim=-1), v)  # fill of scores


    def exists(v):
        return v is not None


    def default(v, d):
        return v if exists(v) else d


    def max_neg_value(t):
        return -torch.finfo(t.dtype).max


    def attend(q, k, v, mask=None, return_sim=False, scale=None):
        scale = default(scale, q.shape[-1] ** -0.5)
        sim = torch.einsum("bhid,bhjd->bhij", q, k) * scale
        mask_value = max_neg_value(sim)
        if exists(mask):
            sim = sim.masked_fill(~mask, mask_value // 10)
        attn = sim.softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)  # attend
        if not return_sim:
            return out
        return out, sim


    def attend_always(q, k, v, scale=None):
        scale = default(scale, q.shape[-1] ** -0.5)
        sim = torch.einsum("bhid,bhjd->bhij", q, k) * scale
        attn = sim.softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)  # attend always
        if out.shape[0] > 1:
            out = out * 2
        return out, sim


    def pick(v, d):
        return v.mean() if v is not None else d


    def attend_picked(q, k, v, scale=None):
        scale = pick(scale, q.shape[-1] ** -0.5)
        sim = torch.einsum("bhid,bhjd->bhij", q, k) * scale
        attn = sim.softmax(dim=-1)
        return torch.einsum("bhij,bhjd->bhid", attn, v)  # attend picked


    class StatsDict(nn.Module):
        def __init__(self, dim=8):
            super().__init__()
            self.proj = nn.Linear(dim, dim)

        def forward(self, q, k, v):
            logits = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
            probs = F.softmax(logits, dim=-1)
            x = probs @ v
            return self.proj(x), {"logits": logits, "probs": probs}  # stats dict


    class DiscardsStats(nn.Module):
        def __init__(self, dim=8):
            super().__init__()
            self.attn = StatsDict(dim)

        def forward(self, x):
            y, _ = self.attn(x, x, x)
            return y


    class StatsList(nn.Module):
        def forward(self, q, k, v):
            score = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
            prob = F.softmax(score, dim=-1)
            return prob @ v, [prob, score]  # stats list


    class ReadsStats(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = StatsList()

        def forward(self, x):
            y, stats = self.attn(x, x, x)
            return y + stats[0].sum()
""")


def _fixed():
    return fix_text(CODE, "model.py", rules("ADP010"))


def _method(text: str, cls: str) -> str:
    start = text.index(f"class {cls}(")
    ends = [e for e in (text.find("\nclass ", start + 1), text.find("\ndef ", start + 1)) if e != -1]
    return text[start:min(ends) if ends else len(text)]


def _reason(result, needle: str) -> str:
    at = line_of(result.text, needle)  # (a later round's decline: placed in its text)
    reasons = [why for f, why in result.skipped if f.line <= at <= f.end_line]
    assert reasons, f"no decline at {needle!r}"
    return reasons[0]


def _same(a, b, *inputs, train: bool = False):
    import torch

    a.train(train)
    b.train(train)
    xs = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    ys = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    oa, ob = a(*xs), b(*ys)
    torch.testing.assert_close(ob, oa)
    floats = [i for i, x in enumerate(inputs) if x.is_floating_point()]
    ga = torch.autograd.grad(oa.square().sum(), [xs[i] for i in floats])
    gb = torch.autograd.grad(ob.square().sum(), [ys[i] for i in floats])
    for x, y in zip(gb, ga):
        torch.testing.assert_close(x, y)


def _qkv(*shape):
    import torch

    torch.manual_seed(5)
    return [torch.randn(*shape, dtype=torch.float64) for _ in range(3)]


# ---------------------------------------------------------------- the scale
def test_scale_from_an_element_of_size_fixed_exactly():
    import torch

    text = _fixed().text
    assert "scaled_dot_product_attention(" in _method(text, "SizeTupleScale")
    assert "scale=1 / math.sqrt(dk)" in _method(text, "SizeTupleScale")
    a, b = float64_pair(CODE, text, "SizeTupleScale")
    q, k, v = _qkv(2, 3, 5, 4)
    _same(a, b, q, k, v)
    mask = (torch.rand(2, 1, 5, 5) > 0.3).long()
    mask[..., 0] = 1
    _same(a, b, q, k, v, mask)


def test_scale_from_an_element_of_a_tensor_declined():
    result = _fixed()
    assert covered(CODE, "# indexed tensor", "ADP010")
    assert _method(result.text, "IndexedTensorScale") == _method(CODE, "IndexedTensorScale")
    assert "may be a tensor" in _reason(result, "# indexed tensor")


# ---------------------------------------------------------------- fills read at run time
def test_fill_from_a_function_of_the_dtype_fixed_with_a_guard():
    import torch

    text = _fixed().text
    fixed = _method(text, "FillFromDtype")
    assert "scaled_dot_product_attention(" in fixed
    assert "not (lowest(q.dtype) <= -10000.0)" in fixed  # (the scores' dtype read off q)
    a, b = float64_pair(CODE, text, "FillFromDtype")
    q, k, v = _qkv(2, 2, 5, 4)
    mask = torch.rand(2, 1, 5, 5) > 0.3
    mask[..., 0] = True
    _same(a, b, q, k, v, mask)
    _same(a, b, q, k, v)
    blind = mask.clone()
    blind[0, 0, 2] = False  # (a row filled whole: the guard's row test takes the original)
    _same(a, b, q, k, v, blind)


def test_fill_from_a_constructor_argument_fixed_with_a_guard():
    import torch

    text = _fixed().text
    fixed = _method(text, "FillArgument")
    assert "scaled_dot_product_attention(" in fixed
    assert "not (self.mask_bias <= -10000.0)" in fixed
    q, k, v = _qkv(3, 5, 4)
    mask = torch.rand(3, 5, 5) > 0.6
    mask[..., 0] = False
    for bias in (-1e9, float("-inf"), -1.0, -50.0):  # (-1 and -50: no mask out; the original runs)
        a, b = float64_pair(CODE, text, "FillArgument", mask_bias=bias)
        _same(a, b, q, k, v, mask)
        _same(a, b, q, k, v, mask, train=True)
    whole = mask.clone()
    whole[1, 3] = True
    a, b = float64_pair(CODE, text, "FillArgument", mask_bias=-1e9)
    _same(a, b, q, k, v, whole, train=True)


def test_fill_bound_before_the_attention_fixed_with_a_guard():
    import torch

    text = _fixed().text
    assert "not (neg <= -10000.0)" in _method(text, "FillLocal")
    a, b = float64_pair(CODE, text, "FillLocal")
    q, k, v = _qkv(3, 5, 4)
    mask = torch.rand(3, 5, 5) > 0.6
    mask[..., 0] = False
    for low in (-5e3, -2.0, 1.0):  # (-5e4 and -20 as fills: the fused path, then the original)
        bias = torch.tensor([low, 3.0], dtype=torch.float64)
        _same(a, b, q, k, v, mask, bias)


def test_fill_computed_in_the_attention_or_from_the_scores_declined():
    result = _fixed()
    for cls, needle in (("FillInside", "# fill inside"), ("FillOfScores", "# fill of scores")):
        assert covered(CODE, needle, "ADP010")
        assert _method(result.text, cls) == _method(CODE, cls)
        assert "fill value" in _reason(result, needle)


# ---------------------------------------------------------------- several values returned together
def test_returned_dict_of_scores_and_probabilities_fixed_behind_the_flag():
    import torch

    text = _fixed().text
    fixed = _method(text, "StatsDict")
    assert "scaled_dot_product_attention(" in fixed
    assert 'None if logits is None else {"logits": logits, "probs": probs}' in fixed
    assert "need_weights=False" in _method(text, "DiscardsStats")
    a, b = float64_pair(CODE, text, "DiscardsStats")
    torch.manual_seed(2)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    _same(a, b, x)
    # a direct call (no flag) hands both back as before
    sa, sb = float64_pair(CODE, text, "StatsDict")
    ya, da = sa(x, x, x)
    yb, db = sb(x, x, x)
    torch.testing.assert_close(yb, ya)
    assert db.keys() == da.keys()
    for key in da:
        torch.testing.assert_close(db[key], da[key])


def test_returned_list_read_by_its_caller_declined():
    result = _fixed()
    assert covered(CODE, "# stats list", "ADP010")
    assert _method(result.text, "StatsList") == _method(CODE, "StatsList")
    assert "no caller in this file declines it" in _reason(result, "# stats list")


# ---------------------------------------------------------------- lucidrains' attend()
def _functions(text: str) -> tuple[dict, dict]:
    original, patched = {}, {}
    exec(compile(CODE, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(text, "fixed.py", "exec"), patched)  # noqa: S102
    return original, patched


def test_default_scale_fill_of_an_extreme_and_an_early_return_fixed_exactly():
    import torch

    text = _fixed().text
    body = text[text.index("def attend("):text.index("def attend_always(")]
    assert "scaled_dot_product_attention(" in body
    assert "scale=scale" in body  # (default(scale, q.shape[-1] ** -0.5): one of its arguments, a number)
    assert "((max_neg_value(q)) // 10) <= -10000.0" in body  # (float16's extreme // 10 is -6551: original)
    assert "or return_sim" in body  # (sim is read only past `if not return_sim: return out`)
    original, patched = _functions(text)
    torch.manual_seed(4)
    q, k, v = (torch.randn(2, 2, 5, 4, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(2, 1, 5, 5) > 0.3
    mask[..., 0] = True
    blind = mask.clone()
    blind[1, 0, 3] = False
    calls = []
    sdpa = patched["scaled_dot_product_attention"]
    patched["scaled_dot_product_attention"] = lambda *a, **kw: calls.append(1) or sdpa(*a, **kw)
    for m in (None, mask, blind):
        for scale in (None, 0.3):
            xs = [t.clone().requires_grad_() for t in (q, k, v)]
            ys = [t.clone().requires_grad_() for t in (q, k, v)]
            oa = original["attend"](*xs, mask=m, scale=scale)
            ob = patched["attend"](*ys, mask=m, scale=scale)
            torch.testing.assert_close(ob, oa)
            for x, y in zip(torch.autograd.grad(ob.square().sum(), ys), torch.autograd.grad(oa.square().sum(), xs)):
                torch.testing.assert_close(x, y)
    assert len(calls) == 4  # (the row filled whole takes the original)
    oa, sa = original["attend"](q, k, v, mask=mask, return_sim=True)
    ob, sb = patched["attend"](q, k, v, mask=mask, return_sim=True)
    torch.testing.assert_close(ob, oa)
    torch.testing.assert_close(sb, sa)
    assert len(calls) == 4
    half = [t.half() for t in (q, k, v)]  # (float16: the fill is -6551, the original runs)
    torch.testing.assert_close(patched["attend"](*half, mask=mask), original["attend"](*half, mask=mask))
    assert len(calls) == 4


def test_probabilities_read_after_an_if_that_does_not_return_declined():
    result = _fixed()
    assert covered(CODE, "# attend always", "ADP010")
    text = result.text
    assert text[text.index("def attend_always("):text.index("def pick(")] == \
        CODE[CODE.index("def attend_always("):CODE.index("def pick(")]


def test_scale_from_a_function_that_computes_declined():
    result = _fixed()
    assert covered(CODE, "# attend picked", "ADP010")
    assert "may be a tensor" in _reason(result, "# attend picked")
