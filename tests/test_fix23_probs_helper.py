"""fix23 (session 22): a module-level helper taking the scores to the probabilities, called
once by the attention (unimol-tools' ``softmax_dropout(attn, self.dropout, self.training,
mask=mask, bias=bias)``, whose body adds its optional tensors to the scores in place, then
returns the dropout of the softmax).  The fused call in the caller takes the helper's adds as
parts of the mask read from the call's arguments, and its dropout's rate and flag from the
call's arguments; the helper itself is left as it is (other callers keep it).  Numerical
checks: float64, eval and train (rate 0 in training), outputs, input and parameter gradients
(assert_close's float64 defaults: sums of <= 8 terms reordered)."""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import line_of, rules
from test_fix22_helper_declines import _same

from adopter.synth import fix_text

HEAD = textwrap.dedent("""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
""")

HELPER = textwrap.dedent('''
    def weigh(x, rate, training=True, pad=None, extra=None, in_place=True):
        """The probabilities of ``x`` plus the optional terms."""
        x = x.contiguous()
        if not in_place:
            x = x.clone()
        if pad is not None:
            x += pad
        if extra is not None:
            x += extra
        return F.dropout(F.softmax(x, dim=-1), p=rate, training=training)
''')

CALLER = textwrap.dedent("""
    class PairMixer(nn.Module):
        def __init__(self, dim, pair_dim=3, heads=2, rate=0.0):
            super().__init__()
            self.heads = heads
            self.rate = rate
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.pair_proj = nn.Linear(pair_dim, heads)
            self.out = nn.Linear(dim, dim)
            self.scale = (dim // heads) ** -0.5

        def forward(self, x, pair, attn_pad=None):
            b, n, _ = x.shape
            q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2) * self.scale
            k = self.to_k(x).view(b, n, self.heads, -1).transpose(1, 2)
            v = self.to_v(x).view(b, n, self.heads, -1).transpose(1, 2)
            s = torch.matmul(q, k.transpose(-1, -2))
            del q, k
            extra = self.pair_proj(pair).permute(0, 3, 1, 2)
            s = weigh(s, self.rate, self.training, pad=attn_pad, extra=extra)
            o = torch.matmul(s, v)
            return self.out(o.transpose(1, 2).reshape(b, n, -1))
""")


def _fixed(code: str) -> str:
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None and [f.rule for f in fixed.applied] == ["ADP010"], fixed.skipped
    return fixed.text


def _declined(code: str) -> list[str]:
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert fixed.error is None
    assert fixed.text == code, fixed.text
    return [why for _, why in fixed.skipped]


def _inputs(pad: str):
    import torch

    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    pair = torch.randn(2, 5, 5, 3, dtype=torch.float64)
    if pad == "none":
        return [x, pair, None]
    keep = torch.rand(2, 1, 1, 5) > 0.4
    keep[..., 0] = True  # every row keeps a key
    if pad == "bool":
        return [x, pair, ~keep]  # added as 0/1 by `x += pad`: the guard sends it to the original
    return [x, pair, torch.zeros(2, 1, 1, 5, dtype=torch.float64).masked_fill(~keep, -1e9)]


@pytest.mark.parametrize("pad", ["none", "float", "bool"])
def test_helper_adding_its_tensors_in_place_becomes_the_mask(pad):
    code = HEAD + HELPER + CALLER
    patched = _fixed(code)
    assert patched.count("scaled_dot_product_attention(") == 1
    fused = patched[patched.index("else:", patched.index("def forward")):]
    assert "attn_pad + extra.to(" in fused  # the caller's names, in the order the helper adds them
    assert "dropout_p=self.rate if self.training else 0.0" in fused
    assert "weigh(" not in fused
    assert patched.count("def weigh(") == 1 and HELPER.strip() in patched  # the helper itself unchanged
    _same(code, patched, "PairMixer", lambda c: c(8), _inputs(pad))


def test_the_fused_call_is_taken_for_a_float_mask():
    import torch

    code = HEAD + HELPER + CALLER
    patched = _fixed(code)
    ns: dict = {}
    exec(compile(patched, "patched", "exec"), ns)  # noqa: S102 (our own fixture)
    calls = []
    real = ns["scaled_dot_product_attention"]
    ns["scaled_dot_product_attention"] = lambda *a, **k: calls.append(1) or real(*a, **k)
    model = ns["PairMixer"](8).double().eval()
    for pad in ("none", "float", "bool"):
        with torch.no_grad():
            model(*_inputs(pad))
    assert len(calls) == 2  # not the bool mask


def test_arguments_left_at_their_defaults_and_a_none_are_no_parts():
    code = HEAD + HELPER + CALLER.replace("pad=attn_pad, extra=extra", "extra=None")
    patched = _fixed(code)
    fused = patched[patched.index("scaled_dot_product_attention(", patched.index("def forward")):]
    assert "attn_mask" not in fused.split(")\n")[0]
    _same(code, patched, "PairMixer", lambda c: c(8), _inputs("none"))


def test_dropout_rate_and_flag_read_from_positional_and_keyword_arguments():
    code = HEAD + HELPER + CALLER.replace(
        "weigh(s, self.rate, self.training, pad=attn_pad, extra=extra)",
        "weigh(s, training=self.training, rate=self.rate, extra=extra)")
    patched = _fixed(code)
    assert "dropout_p=self.rate if self.training else 0.0" in patched
    _same(code, patched, "PairMixer", lambda c: c(8), _inputs("none"))


# ----------------------------------------------------------------------------- near-misses

def test_scores_read_after_the_helper_changed_them_stays_declined():
    # the helper added the terms to `s` in place: the original's `s` is no longer the scores,
    # and the fused path has no `s` at all
    code = HEAD + HELPER + CALLER.replace(
        "s = weigh(s, self.rate", "p = weigh(s, self.rate").replace(
        "o = torch.matmul(s, v)", "o = torch.matmul(p, v)\n        self.seen = s")
    (why,) = _declined(code)
    assert "`s` (computed by the attention) is stored in `self.seen`" in why


def test_helper_doing_more_than_adding_stays_declined():
    code = HEAD + HELPER.replace("        x += extra\n", "        x += extra\n    print(x.shape)\n") + CALLER
    (why,) = _declined(code)
    assert why.startswith("the match spans helpers inlined into their caller: ")


def test_helper_subtracting_stays_declined():
    code = HEAD + HELPER.replace("x += extra", "x -= extra") + CALLER
    (why,) = _declined(code)
    assert "changes a tensor in place at lines" in why and "`x -= extra`" in why


def test_an_added_argument_that_is_no_name_stays_declined():
    code = HEAD + HELPER + CALLER.replace("extra=extra)", "extra=extra * 2.0)")
    (why,) = _declined(code)
    assert why == (f"`extra` of `weigh`, added to the scores, is handed `extra * 2.0` at line "
                   f"{line_of(code, 'weigh(s,')}: not a name the fused call can read again")


def test_helper_called_twice_stays_declined():
    code = HEAD + HELPER + CALLER.replace(
        "        o = torch.matmul(s, v)\n",
        "        o = torch.matmul(s, v)\n        o = o + weigh(o, 0.0)\n")
    (why,) = _declined(code)
    assert why == ("the helper `weigh` taking the scores to the probabilities is called in other ways (2 times in "
                   f"`forward`, at lines {line_of(code, 'weigh(s,')}, {line_of(code, 'weigh(o,')}); rewrite it by hand")


def test_argument_assigned_again_before_the_context_stays_declined():
    code = HEAD + HELPER + CALLER.replace(
        "        o = torch.matmul(s, v)\n", "        extra = None\n        o = torch.matmul(s, v)\n")
    (why,) = _declined(code)
    assert why == (f"`extra`, handed to the helper at line {line_of(code, 'weigh(s,')}, is assigned again before "
                   "the attention ends")


def test_helper_adding_a_global_stays_declined():
    code = HEAD + "BIAS = 0.0\n" + HELPER.replace("x += extra", "x += BIAS") + CALLER
    (why,) = _declined(code)
    assert why.startswith("the match spans helpers inlined into their caller: ")


def test_an_argument_computed_by_a_call_stays_declined():
    # the fused call reads the rate once, after the region's statements (and `in_place` not at
    # all): an argument that calls something could do more than give a value
    code = HEAD + HELPER + CALLER.replace("extra=extra)", "extra=extra, in_place=bool(len(extra)))")
    (why,) = _declined(code)
    assert why == (f"the call of `weigh` at line {line_of(code, 'weigh(s,')} computes an argument "
                   "(`bool(len(extra))`) the fused call would not compute as the call does")


def test_a_module_name_the_caller_binds_stays_declined():
    # the helper's dropout rate is a module constant, which the fused call would read in the
    # caller, where a local of that name is something else
    code = HEAD + "RATE = 0.0\n" + HELPER.replace("p=rate,", "p=RATE,") + CALLER.replace(
        "        b, n, _ = x.shape\n", "        b, n, _ = x.shape\n        RATE = 0.5\n")
    assert "RATE = 0.5" in code
    (why,) = _declined(code)
    assert why == "the helper `weigh` reads `RATE`, which its caller binds; rewrite it by hand"
