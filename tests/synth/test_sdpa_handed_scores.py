"""ADP010 where the caller computes the scores and hands them to a helper method that takes them
to the context (the ESPnet split: ``scores = q @ k^T / sqrt(d)`` in ``forward``, then
``return self.forward_attention(v, scores, mask)``, whose softmax, dropout and value product
run in the helper).  The fused call needs q and k, not the scores: the caller hands those over
(a new last parameter of the helper, None by default, so every other caller keeps the original
path) and passes None for the scores; the helper computes the scores as the caller did, from
what it was handed, on its original path.

The modules are written for this test.  Each is fixed with ADP010 alone and run beside the
original in float64 (eval and training, dropout 0, forward and backward), counting the fused
calls: the unmasked call takes the fused path, the masked one (probabilities re-masked after the
softmax) and another caller's own scores keep the original.  Near-misses stay declined with the
reason: the caller reads the scores again, changes an operand between the scores and the call,
or has a subclass overriding the helper; the helper reads the scores outside the attention, or
stores the probabilities on the module.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

SPLIT = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class SplitAttention(nn.Module):
        def __init__(self, width, heads, p=0.0):
            super().__init__()
            self.heads = heads
            self.size = width // heads
            self.q_proj = nn.Linear(width, width)
            self.k_proj = nn.Linear(width, width)
            self.v_proj = nn.Linear(width, width)
            self.o_proj = nn.Linear(width, width)
            self.drop = nn.Dropout(p)

        def split(self, x, proj):
            b = x.size(0)
            return proj(x).view(b, -1, self.heads, self.size).transpose(1, 2)

        def attend(self, values, scores, keep=None):
            b = values.size(0)
            if keep is not None:
                hidden = keep.unsqueeze(1).eq(0)
                scores = scores.masked_fill(hidden, -float("inf"))
                weights = torch.softmax(scores, dim=-1).masked_fill(hidden, 0.0)
            else:
                weights = torch.softmax(scores, dim=-1)
            weights = self.drop(weights)
            out = torch.matmul(weights, values)
            out = out.transpose(1, 2).reshape(b, -1, self.heads * self.size)
            return self.o_proj(out)

        def forward(self, x, keep=None):
            q = self.split(x, self.q_proj)
            k = self.split(x, self.k_proj)
            v = self.split(x, self.v_proj)
            logits = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.size)
            return self.attend(v, logits, keep)

        def forward_biased(self, x, bias):
            q = self.split(x, self.q_proj)
            k = self.split(x, self.k_proj)
            v = self.split(x, self.v_proj)
            scores = torch.matmul(q, k.transpose(-2, -1))
            scores = self.attend_bias(scores, bias)
            return self.attend(v, scores)

        def attend_bias(self, scores, bias):
            return scores * 0.5 + bias
''')

# the funasr form: q scaled before the product, the result used after the call, the helper
# taking an extra argument after the scores
PRESCALED = textwrap.dedent('''
    import torch
    from torch import nn


    class PrescaledAttention(nn.Module):
        def __init__(self, width, heads, p=0.0):
            super().__init__()
            self.h = heads
            self.d = width // heads
            self.qkv = nn.Linear(width, 3 * width)
            self.out = nn.Linear(width, width)
            self.dropout = nn.Dropout(p=p)

        def qkv_heads(self, x):
            b, t, _ = x.size()
            q, k, v = torch.split(self.qkv(x), self.h * self.d, dim=-1)
            q = q.reshape(b, t, self.h, self.d).transpose(1, 2)
            k = k.reshape(b, t, self.h, self.d).transpose(1, 2)
            v = v.reshape(b, t, self.h, self.d).transpose(1, 2)
            return q, k, v

        def mix(self, value, scores, mask, chunk=None):
            n = value.size(0)
            if mask is not None:
                if chunk is not None:
                    mask = mask * chunk
                mask = mask.unsqueeze(1).eq(0)
                scores = scores.masked_fill(mask, -float("inf"))
                attn = torch.softmax(scores, dim=-1).masked_fill(mask, 0.0)
            else:
                attn = torch.softmax(scores, dim=-1)
            p_attn = self.dropout(attn)
            x = torch.matmul(p_attn, value)
            x = x.transpose(1, 2).contiguous().view(n, -1, self.h * self.d)
            return self.out(x)

        def forward(self, x, mask=None):
            q_h, k_h, v_h = self.qkv_heads(x)
            q_h = q_h * self.d ** (-0.5)
            scores = torch.matmul(q_h, k_h.transpose(-2, -1))
            y = self.mix(v_h, scores, mask)
            return y + x
''')


def _declined(source: str) -> str:
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied, result.text
    assert result.skipped, "the attention was not found"
    return result.skipped[0][1]


def _pair(source, cls, *args):
    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original[cls](*args).to(F64)
    b = patched[cls](*args).to(F64)
    b.load_state_dict(a.state_dict())
    return fixed, a, b, counter


def _modes(a, b, inputs, counter, calls, **kwargs):
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, inputs, **kwargs)
        assert counter.calls - before == calls


def test_the_caller_hands_q_and_k_over_and_the_helper_computes_the_scores_only_on_its_original_path():
    fixed = sdpa_fixed(SPLIT)
    forward = fixed.split("    def forward(self, x, keep=None):")[1].split("    def forward_biased")[0]
    assert "logits" not in forward  # the scores are no longer computed by the caller
    assert "return self.attend(v, None, keep, qk=(q, k))" in forward
    # the new parameter typed for TorchScript (q and k are all it takes: tensors)
    assert "qk: Optional[Tuple[torch.Tensor, torch.Tensor]] = None," in fixed
    assert "from typing import Optional, Tuple" in fixed
    helper = fixed.split("    def attend(")[1].split("    def forward(")[0]
    assert "if ( qk is None or keep is not None or" in " ".join(helper.split())
    # the caller's own statement, under the helper's name for the scores, on the original path
    assert "if qk is not None:\n                q, k = qk\n                scores = torch.matmul(q, k.transpose(-2, -1)) " \
           "/ math.sqrt(self.size)" in helper
    assert "scale=1 / math.sqrt(self.size)" in helper
    # the other caller is left as it was
    assert fixed.split("    def forward_biased")[1] == SPLIT.split("    def forward_biased")[1]


@pytest.mark.parametrize("tokens", [5, 8])
def test_the_handed_over_attention_computes_what_the_original_does(tokens):
    _, a, b, counter = _pair(SPLIT, "SplitAttention", 16, 4)
    torch.manual_seed(1)
    x = torch.randn(2, tokens, 16, dtype=F64)
    _modes(a, b, [x], counter, calls=1)  # unmasked: fused
    keep = torch.ones(2, 1, tokens, dtype=torch.bool)
    keep[0, 0, -2:] = False
    _modes(a, b, [x], counter, calls=0, keep=keep)  # masked (re-masked after the softmax): the original
    bias = torch.randn(tokens, tokens, dtype=F64)
    for training in (False, True):  # the helper's other caller hands it scores of its own
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a.forward_biased, b.forward_biased, [x, bias])
        assert counter.calls == before


def test_dropout_is_the_modules_own_rate_in_training():
    fixed = sdpa_fixed(SPLIT)
    assert "dropout_p=self.drop.p if self.training else 0.0" in fixed


def test_a_prescaled_query_and_a_result_used_after_the_call():
    fixed, a, b, counter = _pair(PRESCALED, "PrescaledAttention", 16, 2)
    assert "y = self.mix(v_h, None, mask, qk=(q_h, k_h))" in fixed
    assert "scale=1.0" in fixed
    torch.manual_seed(2)
    x = torch.randn(3, 6, 16, dtype=F64)
    _modes(a, b, [x], counter, calls=1)
    mask = torch.ones(3, 1, 6)
    mask[1, 0, 4:] = 0
    _modes(a, b, [x], counter, calls=0, mask=mask)


def test_a_hook_on_the_dropout_takes_the_original_path():
    _, a, b, counter = _pair(SPLIT, "SplitAttention", 16, 4)
    seen = []
    b.drop.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    a.eval()
    b.eval()
    x = torch.randn(2, 5, 16, dtype=F64)
    assert_same_step(a, b, [x])
    assert counter.calls == 0 and seen == [(2, 4, 5, 5)]


def _changed(source: str, old: str, new: str) -> str:
    assert old in source
    return source.replace(old, new)


# ------------------------------------------------------------------------------ near-misses
def test_the_caller_reading_the_scores_again_is_declined():
    source = _changed(SPLIT, "        return self.attend(v, logits, keep)\n",
                           "        return self.attend(v, logits, keep), logits.detach()\n")
    assert "the caller also reads" in _declined(source)


def test_an_operand_changed_between_the_scores_and_the_call_is_declined():
    source = _changed(SPLIT, "        return self.attend(v, logits, keep)\n",
                           "        q = q * 2\n        return self.attend(v, logits, keep)\n")
    assert "the statement after them (line 41) is not one call of it" in _declined(source)


def test_a_subclass_overriding_the_helper_is_declined():
    source = SPLIT + textwrap.dedent('''

        class Louder(SplitAttention):
            def attend(self, values, scores, keep=None):
                return 2 * super().attend(values, scores, keep)
    ''')
    assert "which `Louder` overrides" in _declined(source)


def test_the_helper_reading_the_scores_after_the_attention_is_declined():
    source = _changed(SPLIT, "        return self.o_proj(out)\n",
                           "        assert torch.isfinite(scores).any()\n        return self.o_proj(out)\n")
    assert "`scores` (computed by the attention) is read at line 34 unconditionally" in _declined(source)
    # (without the masked branch the helper never assigns the scores it is handed)
    source = _changed(source, """\
        if keep is not None:
            hidden = keep.unsqueeze(1).eq(0)
            scores = scores.masked_fill(hidden, -float("inf"))
            weights = torch.softmax(scores, dim=-1).masked_fill(hidden, 0.0)
        else:
            weights = torch.softmax(scores, dim=-1)
""", "        weights = torch.softmax(scores, dim=-1)\n")
    assert "`attend` reads the scores it is handed at line 29, after the attention" in _declined(source)


def test_the_helper_reading_the_scores_before_the_attention_is_declined():
    source = _changed(SPLIT, "        b = values.size(0)\n",
                           "        b = values.size(0) + 0 * scores.size(-1)\n")
    assert "reads before the attention's first step" in _declined(source)


def test_probabilities_stored_on_the_module_by_the_helper_are_declined():
    source = _changed(SPLIT, "            weights = torch.softmax(scores, dim=-1).masked_fill(hidden, 0.0)\n",
                      "            self.weights = torch.softmax(scores, dim=-1).masked_fill(hidden, 0.0)\n")
    source = _changed(source, "            weights = torch.softmax(scores, dim=-1)\n",
                      "            self.weights = torch.softmax(scores, dim=-1)\n")
    source = _changed(source, "        weights = self.drop(weights)\n", "        weights = self.drop(self.weights)\n")
    assert "stored in `self.weights`" in _declined(source)


def test_a_name_the_caller_imports_itself_is_handed_over():
    # (``import math`` inside the caller: the helper has no such name, so its value goes over)
    source = _changed(SPLIT, "        q = self.split(x, self.q_proj)\n        k = self.split(x, self.k_proj)\n"
                      "        v = self.split(x, self.v_proj)\n        logits",
                      "        import math as m\n        q = self.split(x, self.q_proj)\n"
                      "        k = self.split(x, self.k_proj)\n        v = self.split(x, self.v_proj)\n        logits")
    source = _changed(source, "/ math.sqrt(self.size)\n        return self.attend", "/ m.sqrt(self.size)\n"
                      "        return self.attend")
    fixed, a, b, counter = _pair(source, "SplitAttention", 16, 4)
    assert "return self.attend(v, None, keep, qk=(q, k, m))" in fixed
    x = torch.randn(2, 5, 16, dtype=F64)
    _modes(a, b, [x], counter, calls=1)
    keep = torch.ones(2, 1, 5, dtype=torch.bool)
    _modes(a, b, [x], counter, calls=0, keep=keep)
