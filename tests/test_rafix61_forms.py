"""Research attention found but not fixed (session 38): steps in blocks and helpers.  The
fixtures are ours.

- The scores and the context product each an if / else on the queries' rank (``if
  len(q.size()) == 3: bmm else: matmul``, openspeech-style): a test that reads a local
  tensor's rank (``len(q.size())``, ``len(q.shape)``, ``q.dim()``) runs no code of the module,
  so read again before the attention it gives the same truth; the guard sends the other rank
  to the original.  Exact for 3-D and 4-D inputs, with or without a mask, train and eval.
  Where the probabilities are returned on every call it still declines (that reason, now).
- A helper method computing the probabilities, called by ``forward`` and by other code too
  (wavencoder's ``_get_weights``, also called to show the weights): the fused path runs the
  helper's other statements in ``forward`` alone and leaves the helper as it is, so the other
  callers get what they got.  Declined where the helper is rebound or handed on (its other
  uses are no calls), as before where ``forward`` calls it twice.
- Verify: a ``torch.bmm`` handed a 4-D tensor built from a guessed 3-D argument (a query that
  is one vector per row) is repaired by trying each 3-D argument without its middle axis.
"""

from __future__ import annotations

import pytest
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

torch = pytest.importorskip("torch")

RANKED = """\
import math

import torch
import torch.nn.functional as F
from torch import nn


class RankAttention(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.root = math.sqrt(dim)

    def forward(self, q, k, v, mask=None):
        if len(q.size()) == 3:
            s = torch.bmm(q, k.transpose(1, 2)) / self.root
        else:
            s = torch.matmul(q, k.transpose(2, 3)) / self.root

        if mask is not None:
            s = s.masked_fill(mask, float("-inf"))

        p = F.softmax(s, -1)

        if len(q.size()) == 3:
            out = torch.bmm(p, v)
        else:
            out = torch.matmul(p, v)

        return out
"""

# the probabilities handed back on every call: no caller declines them
RETURNED = RANKED.replace("        return out\n", "        return out, p\n")
# the test calls a method of the module: read again it need not give the same truth
CALLED = RANKED.replace("if len(q.size()) == 3:", "if self.folded(q):").replace(
    "    def forward(", "    def folded(self, q):\n        return q.dim() == 3\n\n    def forward(")
# the other spellings of a rank read
SHAPE_LEN = RANKED.replace("len(q.size()) == 3", "len(q.shape) == 3")
DIM = RANKED.replace("len(q.size()) == 3", "q.dim() == 3")


def _fixed(source: str) -> str:
    return fix_text(source, "model.py", rules("ADP010")).text


def _skipped(source: str) -> list[str]:
    return [why for _, why in fix_text(source, "model.py", rules("ADP010")).skipped]


@pytest.mark.parametrize("source", [RANKED, SHAPE_LEN, DIM], ids=["len-size", "len-shape", "dim"])
def test_if_else_on_the_queries_rank_is_fixed_with_the_other_rank_sent_to_the_original(source):
    assert len(found(source, "ADP010")) == 1
    fixed = _fixed(source)
    assert "scaled_dot_product_attention(" in fixed
    # the 4-D arms take the original: the rank test is in the guard
    guard = fixed.split("    def forward(self, q, k, v, mask=None):\n        if ", 1)[1].split(":\n", 1)[0]
    assert guard == "not ({})".format(source.split("        if ", 1)[1].split(":\n", 1)[0])


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_the_rank_chosen_attention_computes_the_same(rank, train, masked):
    fixed = _fixed(RANKED)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(RANKED, fixed, "RankAttention")
    a.train(train)
    b.train(train)
    lead = (2,) if rank == 3 else (2, 3)
    q = torch.randn(*lead, 5, 8, dtype=torch.float64, requires_grad=True)
    k = torch.randn(*lead, 7, 8, dtype=torch.float64, requires_grad=True)
    v = torch.randn(*lead, 7, 8, dtype=torch.float64, requires_grad=True)
    mask = None
    if masked:
        mask = torch.zeros(*lead, 5, 7, dtype=torch.bool)
        mask[..., 5:] = True  # the last two keys hidden, no row hidden entirely
    out_a, out_b = a(q, k, v, mask), b(q, k, v, mask)
    # float64, softmax over 7 keys of 8-wide products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grads_a = torch.autograd.grad(out_a.sum(), (q, k, v))
    grads_b = torch.autograd.grad(out_b.sum(), (q, k, v))
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)


def test_rank_chosen_attention_returning_its_probabilities_still_declines_for_that_reason():
    assert len(found(RETURNED, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(RETURNED)
    assert any("hands it back on every call" in why for why in _skipped(RETURNED))


def test_a_rank_test_through_a_method_of_the_module_is_not_read_again():
    assert len(found(CALLED, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(CALLED)
    assert any("inside a loop, with, try or else block" in why for why in _skipped(CALLED))


def test_plain_test_reads_only_a_local_tensors_rank():
    import ast

    from adopter.synth.sdpa import _plain_test

    def plain(text: str) -> bool:
        return _plain_test(ast.parse(text, mode="eval").body)

    for text in ("len(q.size()) == 3", "len(q.shape) == 3", "q.dim() == 4 and self.flag", "not x.training"):
        assert plain(text), text
    for text in ("self.folded(q)", "len(self.size()) == 3", "self.dim() == 3", "x.size(0) == 3",
                 "len(q.size(1)) == 2", "len(items) == 3", "q.dim(1) == 3", "f(q.dim()) == 3"):
        assert not plain(text), text


POOLED = """\
import torch
import torch.nn.functional as F
from torch import nn


class PooledDot(nn.Module):
    def forward(self, values, query):
        w = self._weights(values, query)
        pooled = torch.bmm(values.transpose(1, 2), w.unsqueeze(2)).squeeze(2)
        return pooled

    def _weights(self, values, query):
        hidden = query.squeeze(0)
        w = torch.bmm(values, hidden.unsqueeze(2)).squeeze(2)
        w = F.softmax(w, 1)
        return w


def show_weights(layer, values, query):
    return layer._weights(values, query)
"""

# the helper also called inside the module, by a method for display
SHOWN = POOLED.replace(
    "    def _weights(self, values, query):\n",
    "    def weights_for_display(self, values, query):\n        return self._weights(values, query)\n\n"
    "    def _weights(self, values, query):\n", 1)
# the helper rebound on the instance: the instance's may compute something else
REBOUND = POOLED.replace(
    "class PooledDot(nn.Module):\n",
    "class PooledDot(nn.Module):\n    def sharpen(self):\n        self._weights = lambda v, q: torch.ones(1)\n\n", 1)
# the helper handed on (a hook may call it with other inputs, or replace it)
HANDED = POOLED + "\n\nHOOKS = {'weights': PooledDot._weights}\n"
# forward calls it twice: once to pool, once to hand the weights back
TWICE = POOLED.replace("        return pooled\n", "        return pooled, self._weights(values, query)\n")


@pytest.mark.parametrize("source", [POOLED, SHOWN], ids=["called-by-a-function", "called-by-a-method"])
def test_a_helper_called_elsewhere_too_is_inlined_in_the_caller_alone(source):
    assert [f.line for f in found(source, "ADP010")] == [line_of(source, "pooled = torch.bmm(")]
    fixed = _fixed(source)
    assert "scaled_dot_product_attention(" in fixed
    # the helper itself is left as it is, for its other callers
    helper = source.split("    def _weights(self, values, query):\n", 1)[1].split("\n\n", 1)[0]
    assert helper in fixed
    # a subclass overriding the helper takes the original
    assert "type(self)._weights is not PooledDot._weights" in fixed


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("lead", [(2,), (1, 2)], ids=["query-rows", "query-with-a-step-axis"])
def test_the_inlined_helper_computes_the_same_and_its_other_callers_too(train, lead):
    fixed = _fixed(SHOWN)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(SHOWN, fixed, "PooledDot")
    a.train(train)
    b.train(train)
    values = torch.randn(2, 9, 6, dtype=torch.float64, requires_grad=True)
    query = torch.randn(*lead, 6, dtype=torch.float64, requires_grad=True)
    out_a, out_b = a(values, query), b(values, query)
    # float64, softmax over 9 keys of 6-wide products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grads_a = torch.autograd.grad(out_a.sum(), (values, query))
    grads_b = torch.autograd.grad(out_b.sum(), (values, query))
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)
    # the other caller still gets the weights
    torch.testing.assert_close(b.weights_for_display(values, query), a.weights_for_display(values, query),
                               rtol=0, atol=0)


@pytest.mark.parametrize("source", [REBOUND, HANDED, TWICE], ids=["rebound", "handed-on", "called-twice"])
def test_a_helper_whose_other_uses_are_no_plain_calls_is_not_inlined(source):
    assert len(found(source, "ADP010")) >= 1
    fixed = _fixed(source)
    assert "scaled_dot_product_attention(" not in fixed


def test_bmm_rank_repair_drops_the_middle_axis_of_each_3d_argument():
    from adopter.verify.build import Call
    from adopter.verify.inputs import repairs

    values, query = torch.randn(2, 8, 32), torch.randn(2, 8, 32)
    out = repairs(Call((values, query), {}), RuntimeError("batch2 must be a 3D tensor"))
    shapes = [tuple(t.shape for t in c.args) for c in out]
    assert ((2, 32), (2, 8, 32)) in shapes and ((2, 8, 32), (2, 32)) in shapes
    # another error, or no 3-D argument: nothing
    assert repairs(Call((values, query), {}), RuntimeError("mat1 and mat2 shapes cannot be multiplied")) == []
    assert repairs(Call((torch.randn(2, 32),), {}), RuntimeError("batch1 must be a 3D tensor")) == []


def test_pooled_dot_attention_verifies(tmp_path):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for
    from adopter.verify.result import PASS

    path = tmp_path / "model.py"
    path.write_text(POOLED)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    result = {r.class_name: r for r in results if not r.combined}["PooledDot"]
    assert result.verdict == PASS, result


RETURNED_SCORES = """\
import math

import torch
import torch.nn.functional as F
from torch import nn


class PooledBilinear(nn.Module):
    def __init__(self, enc=8, dec=6):
        super().__init__()
        self.dec = dec
        self.W = nn.Parameter(torch.randn(dec, enc))

    def forward(self, values, query):
        w = self._scores(values, query)
        w = F.softmax(w, dim=-1)
        return torch.matmul(w, values)

    def _scores(self, values, query):
        s = (query @ self.W) @ values.transpose(1, 2)
        return s / math.sqrt(self.dec)
"""

# the scores method also records them for code outside the call: no plain assignment
RECORDED = RETURNED_SCORES.replace("        return s / math.sqrt(self.dec)\n",
                                   "        self.last_scores = s\n        return s / math.sqrt(self.dec)\n")


def test_scores_returned_by_a_method_the_caller_calls_are_inlined():
    # the product's method calls the scores' method (not the other way round, ESPnet's split)
    assert [f.line for f in found(RETURNED_SCORES, "ADP010")] == [line_of(RETURNED_SCORES, "w = F.softmax(")]
    fixed = _fixed(RETURNED_SCORES)
    assert "scaled_dot_product_attention(" in fixed
    assert "type(self)._scores is not PooledBilinear._scores" in fixed
    assert "    def _scores(self, values, query):\n        s = (query @ self.W) @ values.transpose(1, 2)\n" in fixed


@pytest.mark.parametrize("train", [False, True])
def test_the_inlined_scores_method_computes_the_same(train):
    fixed = _fixed(RETURNED_SCORES)
    assert "scaled_dot_product_attention(" in fixed
    a, b = float64_pair(RETURNED_SCORES, fixed, "PooledBilinear")
    a.train(train)
    b.train(train)
    values = torch.randn(2, 9, 8, dtype=torch.float64, requires_grad=True)
    query = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    out_a, out_b = a(values, query), b(values, query)
    # float64, softmax over 9 keys of 8-wide products: rounding far below these
    torch.testing.assert_close(out_b, out_a, rtol=1e-10, atol=1e-12)
    grads_a = torch.autograd.grad(out_a.sum(), (values, query, a.W))
    grads_b = torch.autograd.grad(out_b.sum(), (values, query, b.W))
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-12)


def test_a_scores_method_that_records_them_is_not_inlined():
    assert len(found(RECORDED, "ADP010")) == 1
    assert "scaled_dot_product_attention(" not in _fixed(RECORDED)


# two such modules in one file, each with its own `_weights`: the first one's fused path reads
# `type(self)._weights is not PooledDot._weights` (an identity test, no use of the helper)
TWO_POOLED = POOLED + "\n\n" + POOLED.split("\n\n\n", 1)[1].split("\n\n\ndef ", 1)[0].replace(
    "class PooledDot(", "class PooledDotCopy(") + "\n"


def test_an_identity_test_of_the_helper_is_no_use_that_blocks_inlining():
    assert len(found(TWO_POOLED, "ADP010")) == 2
    fixed = _fixed(TWO_POOLED)
    assert fixed.count("scaled_dot_product_attention(") == 2
    assert "type(self)._weights is not PooledDotCopy._weights" in fixed
